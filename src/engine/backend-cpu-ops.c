/* backend-cpu-ops.c - the CPU backend's pooling, resampling, skip, activation
 * and normalisation ops: threaded loops over either layout.
 *
 * A tensor of block width b is walked as [N][C/b][H][W][b]; the innermost
 * loop runs over the b channels of one pixel (one vector with b = 16 or 8)
 * and plain NCHW is the same walk with b = 1. When an op's operands come in
 * different layouts the inputs are staged into the output's layout first.
 * All arithmetic comes from kernels.h. */
#include "backend-cpu-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define TRY(expr)                    \
    do {                             \
        UnetStatus try_st_ = (expr); \
        if (try_st_ != UNET_OK)      \
            return try_st_;          \
    } while (0)

/* ---- checks ------------------------------------------------------------- */

static UnetStatus need(UnetBackend *be, const char *op, const char *name, const UnetTensor *t)
{
    if (!t || !t->data)
        return cpu_shape_error(be, op, "%s is missing (NULL tensor)", name);
    if (t->n < 1 || t->c < 1 || t->h < 1 || t->w < 1)
        return cpu_shape_error(be, op, "%s has empty shape [%d,%d,%d,%d]", name, t->n, t->c,
                               t->h, t->w);
    return UNET_OK;
}

static UnetStatus need_shape(UnetBackend *be, const char *op, const char *name,
                             const UnetTensor *t, int n, int c, int h, int w)
{
    TRY(need(be, op, name, t));
    if (t->n != n || t->c != c || t->h != h || t->w != w)
        return cpu_shape_error(be, op, "%s is [%d,%d,%d,%d] but must be [%d,%d,%d,%d]", name,
                               t->n, t->c, t->h, t->w, n, c, h, w);
    return UNET_OK;
}

static UnetStatus need_like(UnetBackend *be, const char *op, const char *name,
                            const UnetTensor *t, const UnetTensor *ref)
{
    return need_shape(be, op, name, t, ref->n, ref->c, ref->h, ref->w);
}

/* Per-channel vectors (gamma, beta, statistics) are read as count flat floats. */
static UnetStatus need_vector(UnetBackend *be, const char *op, const char *name,
                              const UnetTensor *t, size_t count)
{
    TRY(need(be, op, name, t));
    if (unet_tensor_numel(t) != count)
        return cpu_shape_error(be, op, "%s holds %zu values but must hold %zu", name,
                               unet_tensor_numel(t), count);
    if (t->layout != 0)
        return cpu_shape_error(be, op, "%s must be a plain tensor", name);
    return UNET_OK;
}

static inline float store(float old, float v, int accumulate)
{
    return accumulate ? old + v : v;
}

/* ---- max pooling --------------------------------------------------------- */

/* The larger of m and v, NaN counting as the maximum. */
static inline float max_nan(float m, float v)
{
    return v > m || (isnan(v) && !isnan(m)) ? v : m;
}

/* Index 0..3 (row-major in the window) of the first maximum, NaN counting as
 * the maximum (PyTorch's rule). */
static inline int argmax4(float a, float b, float c, float d)
{
    int i = 0;
    float m = a;
    if (b > m || (isnan(b) && !isnan(m))) {
        m = b;
        i = 1;
    }
    if (c > m || (isnan(c) && !isnan(m))) {
        m = c;
        i = 2;
    }
    if (d > m || (isnan(d) && !isnan(m)))
        i = 3;
    return i;
}

static UnetStatus check_pool(UnetBackend *be, const char *op, const UnetTensor *x)
{
    TRY(need(be, op, "input x", x));
    if (x->h < 2 || x->w < 2)
        return cpu_shape_error(be, op, "input [%d,%d,%d,%d] is smaller than the 2x2 window", x->n,
                               x->c, x->h, x->w);
    return UNET_OK;
}

static UnetStatus cpu_maxpool2x2_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    static const char op[] = "maxpool2x2_forward";
    TRY(check_pool(be, op, x));
    TRY(need_shape(be, op, "output y", y, x->n, x->c, x->h / 2, x->w / 2));
    CpuBackend *cpu = cpu_impl(be);
    const int b = cpu_block_of(y);
    const float *xd = cpu_stage_in(be, x, b, CPU_SCRATCH_A, op);
    if (!xd)
        return be->error.status;
    const int W = x->w, OH = y->h, OW = y->w;
    const long rows = (long)y->n * (y->c / b) * OH;
    const size_t HW = (size_t)x->h * (size_t)W;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(x));
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long r = 0; r < rows; r++) {
        const long plane = r / OH;
        const int oy = (int)(r % OH);
        const float *x0 = xd + ((size_t)plane * HW + (size_t)(2 * oy) * W) * b;
        const float *x1 = x0 + (size_t)W * b;
        float *yr = y->data + ((size_t)plane * OH * OW + (size_t)oy * OW) * b;
        for (int ox = 0; ox < OW; ox++) {
            const float *a = x0 + (size_t)(2 * ox) * b, *c = x1 + (size_t)(2 * ox) * b;
            CPU_OMP("omp simd")
            for (int l = 0; l < b; l++) {
                yr[(size_t)ox * b + l] = max_nan(max_nan(max_nan(a[l], a[b + l]), c[l]), c[b + l]);
            }
        }
    }
    return UNET_OK;
}

static UnetStatus cpu_maxpool2x2_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                          const UnetTensor *x, const UnetTensor *y, int accumulate)
{
    static const char op[] = "maxpool2x2_backward";
    TRY(check_pool(be, op, x));
    TRY(need_like(be, op, "input gradient dx", dx, x));
    TRY(need_shape(be, op, "output gradient dy", dy, x->n, x->c, x->h / 2, x->w / 2));
    if (y)
        TRY(need_like(be, op, "output y", y, dy));
    CpuBackend *cpu = cpu_impl(be);
    const int b = cpu_block_of(dx);
    const float *xd = cpu_stage_in(be, x, b, CPU_SCRATCH_A, op);
    const float *dyd = cpu_stage_in(be, dy, b, CPU_SCRATCH_B, op);
    if (!xd || !dyd)
        return be->error.status;
    const int H = x->h, W = x->w, OH = dy->h, OW = dy->w;
    const size_t HW = (size_t)H * W;
    const long planes = (long)x->n * (x->c / b);
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(x));
    /* Windows do not overlap: each writes its own four pixels, and the row
     * and column a floor-sized output never reads are cleared. */
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long r = 0; r < planes * H; r++) {
        const long plane = r / H;
        const int iy = (int)(r % H);
        float *dr = dx->data + ((size_t)plane * HW + (size_t)iy * W) * b;
        if (iy >= 2 * OH) {
            if (!accumulate)
                memset(dr, 0, (size_t)W * b * sizeof(float));
            continue;
        }
        if (iy & 1)
            continue; /* the even row's job handles both rows of its windows */
        const int oy = iy / 2;
        const float *x0 = xd + ((size_t)plane * HW + (size_t)iy * W) * b;
        const float *x1 = x0 + (size_t)W * b;
        float *d0 = dr, *d1 = dr + (size_t)W * b;
        const float *g = dyd + ((size_t)plane * OH * OW + (size_t)oy * OW) * b;
        for (int ox = 0; ox < OW; ox++) {
            const size_t o = (size_t)(2 * ox) * b;
            CPU_OMP("omp simd")
            for (int l = 0; l < b; l++) {
                int i = argmax4(x0[o + l], x0[o + b + l], x1[o + l], x1[o + b + l]);
                float gv = g[(size_t)ox * b + l];
                d0[o + l] = store(d0[o + l], i == 0 ? gv : 0.0f, accumulate);
                d0[o + b + l] = store(d0[o + b + l], i == 1 ? gv : 0.0f, accumulate);
                d1[o + l] = store(d1[o + l], i == 2 ? gv : 0.0f, accumulate);
                d1[o + b + l] = store(d1[o + b + l], i == 3 ? gv : 0.0f, accumulate);
            }
        }
        if (!accumulate && W > 2 * OW) {
            memset(d0 + (size_t)(W - 1) * b, 0, (size_t)b * sizeof(float));
            memset(d1 + (size_t)(W - 1) * b, 0, (size_t)b * sizeof(float));
        }
    }
    return UNET_OK;
}

/* ---- bilinear resampling ------------------------------------------------- */

typedef struct Taps {
    int *i0, *i1;
    float *l1;
} Taps;

static int taps_make(Taps *t, int in, int out)
{
    t->i0 = malloc((size_t)out * sizeof(int));
    t->i1 = malloc((size_t)out * sizeof(int));
    t->l1 = malloc((size_t)out * sizeof(float));
    if (!t->i0 || !t->i1 || !t->l1)
        return 0;
    for (int o = 0; o < out; o++)
        unet_k_bilinear_taps(o, in, out, &t->i0[o], &t->i1[o], &t->l1[o]);
    return 1;
}

static void taps_free(Taps *t)
{
    free(t->i0);
    free(t->i1);
    free(t->l1);
}

static UnetStatus resize_forward(UnetBackend *be, const char *op, UnetTensor *y,
                                 const UnetTensor *x)
{
    CpuBackend *cpu = cpu_impl(be);
    const int b = cpu_block_of(y);
    const float *xd = cpu_stage_in(be, x, b, CPU_SCRATCH_A, op);
    if (!xd)
        return be->error.status;
    Taps ty = { 0 }, tx = { 0 };
    if (!taps_make(&ty, x->h, y->h) || !taps_make(&tx, x->w, y->w)) {
        taps_free(&ty);
        taps_free(&tx);
        return unet_error_set(&be->error, UNET_ERR_NOMEM, "%s: out of memory", op);
    }
    const int W = x->w, OH = y->h, OW = y->w;
    const size_t HW = (size_t)x->h * W;
    const long rows = (long)y->n * (y->c / b) * OH;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(y));
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long r = 0; r < rows; r++) {
        const long plane = r / OH;
        const int oy = (int)(r % OH);
        const float ly = ty.l1[oy];
        const float *r0 = xd + ((size_t)plane * HW + (size_t)ty.i0[oy] * W) * b;
        const float *r1 = xd + ((size_t)plane * HW + (size_t)ty.i1[oy] * W) * b;
        float *yr = y->data + ((size_t)plane * OH * OW + (size_t)oy * OW) * b;
        for (int ox = 0; ox < OW; ox++) {
            const size_t a0 = (size_t)tx.i0[ox] * b, a1 = (size_t)tx.i1[ox] * b;
            const float lx = tx.l1[ox];
            CPU_OMP("omp simd")
            for (int l = 0; l < b; l++)
                yr[(size_t)ox * b + l] =
                    (1.0f - ly) * ((1.0f - lx) * r0[a0 + l] + lx * r0[a1 + l]) +
                    ly * ((1.0f - lx) * r1[a0 + l] + lx * r1[a1 + l]);
        }
    }
    taps_free(&ty);
    taps_free(&tx);
    return UNET_OK;
}

/* Scatters dy back through the forward taps, one plane per thread so that
 * no two threads add into the same dx element. */
static UnetStatus resize_backward(UnetBackend *be, const char *op, UnetTensor *dx,
                                  const UnetTensor *dy, int accumulate)
{
    CpuBackend *cpu = cpu_impl(be);
    const int b = cpu_block_of(dx);
    const float *g = cpu_stage_in(be, dy, b, CPU_SCRATCH_A, op);
    if (!g)
        return be->error.status;
    Taps ty = { 0 }, tx = { 0 };
    if (!taps_make(&ty, dx->h, dy->h) || !taps_make(&tx, dx->w, dy->w)) {
        taps_free(&ty);
        taps_free(&tx);
        return unet_error_set(&be->error, UNET_ERR_NOMEM, "%s: out of memory", op);
    }
    const int W = dx->w, OH = dy->h, OW = dy->w;
    const size_t HW = (size_t)dx->h * W, OHW = (size_t)OH * OW;
    const long planes = (long)dx->n * (dx->c / b);
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(dy));
    CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
    for (long plane = 0; plane < planes; plane++) {
        float *d = dx->data + (size_t)plane * HW * b;
        if (!accumulate)
            memset(d, 0, HW * b * sizeof(float));
        const float *gp = g + (size_t)plane * OHW * b;
        for (int oy = 0; oy < OH; oy++) {
            const float ly = ty.l1[oy];
            float *r0 = d + (size_t)ty.i0[oy] * W * b, *r1 = d + (size_t)ty.i1[oy] * W * b;
            for (int ox = 0; ox < OW; ox++) {
                const size_t a0 = (size_t)tx.i0[ox] * b, a1 = (size_t)tx.i1[ox] * b;
                const float lx = tx.l1[ox];
                const float *gv = gp + ((size_t)oy * OW + ox) * b;
                CPU_OMP("omp simd")
                for (int l = 0; l < b; l++) {
                    r0[a0 + l] += gv[l] * (1.0f - ly) * (1.0f - lx);
                    r0[a1 + l] += gv[l] * (1.0f - ly) * lx;
                    r1[a0 + l] += gv[l] * ly * (1.0f - lx);
                    r1[a1 + l] += gv[l] * ly * lx;
                }
            }
        }
    }
    taps_free(&ty);
    taps_free(&tx);
    return UNET_OK;
}

static UnetStatus cpu_upsample2x_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    static const char op[] = "upsample2x_forward";
    TRY(need(be, op, "input x", x));
    TRY(need_shape(be, op, "output y", y, x->n, x->c, 2 * x->h, 2 * x->w));
    return resize_forward(be, op, y, x);
}

static UnetStatus cpu_upsample2x_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                          int accumulate)
{
    static const char op[] = "upsample2x_backward";
    TRY(need(be, op, "input gradient dx", dx));
    TRY(need_shape(be, op, "output gradient dy", dy, dx->n, dx->c, 2 * dx->h, 2 * dx->w));
    return resize_backward(be, op, dx, dy, accumulate);
}

static UnetStatus cpu_resize_bilinear_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    static const char op[] = "resize_bilinear_forward";
    TRY(need(be, op, "input x", x));
    TRY(need(be, op, "output y", y));
    TRY(need_shape(be, op, "output y", y, x->n, x->c, y->h, y->w));
    return resize_forward(be, op, y, x);
}

static UnetStatus cpu_resize_bilinear_backward(UnetBackend *be, UnetTensor *dx,
                                               const UnetTensor *dy, int accumulate)
{
    static const char op[] = "resize_bilinear_backward";
    TRY(need(be, op, "input gradient dx", dx));
    TRY(need(be, op, "output gradient dy", dy));
    TRY(need_shape(be, op, "output gradient dy", dy, dx->n, dx->c, dy->h, dy->w));
    return resize_backward(be, op, dx, dy, accumulate);
}

/* ---- skip connection: centre crop and concatenation ---------------------- */

/* Copies the h x w window at (oy, ox) of channels [c0, c0+count) of src into
 * channels [d0, d0+count) of dst (h x w) or back (to_src); with equal block
 * widths dividing c0, d0 and count it moves whole pixel vectors. */
static void window_copy(CpuBackend *cpu, const CpuView *big, int c0, const CpuView *small, int d0,
                        int count, int oy, int ox, int to_big, int accumulate)
{
    const int H = small->h, W = small->w;
    if (big->b == small->b && c0 % big->b == 0 && d0 % big->b == 0 && count % big->b == 0) {
        const int b = big->b;
        const long blocks = count / b;
        const long rows = (long)small->n * blocks * H;
        const size_t row_len = (size_t)W * b;
        const int nt = cpu_threads_for(cpu, (size_t)rows * row_len);
        CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
        for (long r = 0; r < rows; r++) {
            const int n = (int)(r / (blocks * H));
            const int k = (int)(r / H % blocks);
            const int y = (int)(r % H);
            float *bp = big->data + ((((size_t)n * (big->cp / b) + (size_t)(c0 / b + k)) *
                                          big->h + (size_t)(y + oy)) * big->w + (size_t)ox) * b;
            float *sp = small->data + ((((size_t)n * (small->cp / b) + (size_t)(d0 / b + k)) *
                                            H + (size_t)y) * W) * b;
            float *dst = to_big ? bp : sp;
            const float *src = to_big ? sp : bp;
            if (accumulate) {
                CPU_OMP("omp simd")
                for (size_t i = 0; i < row_len; i++)
                    dst[i] += src[i];
            } else {
                memcpy(dst, src, row_len * sizeof(float));
            }
        }
        return;
    }
    const long jobs = (long)small->n * count;
    const int nt = cpu_threads_for(cpu, (size_t)jobs * H * W);
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long j = 0; j < jobs; j++) {
        const int n = (int)(j / count), k = (int)(j % count);
        const int cb = c0 + k, cs = d0 + k;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                size_t ob = ((((size_t)n * (big->cp / big->b) + (size_t)(cb / big->b)) * big->h +
                              (size_t)(y + oy)) * big->w + (size_t)(x + ox)) * big->b +
                            (size_t)(cb % big->b);
                size_t os = ((((size_t)n * (small->cp / small->b) + (size_t)(cs / small->b)) *
                                  H + (size_t)y) * W + (size_t)x) * small->b +
                            (size_t)(cs % small->b);
                float *dst = to_big ? &big->data[ob] : &small->data[os];
                float v = to_big ? small->data[os] : big->data[ob];
                *dst = store(*dst, v, accumulate);
            }
    }
}

static UnetStatus cpu_crop_concat_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *skip,
                                          const UnetTensor *up)
{
    static const char op[] = "crop_concat_forward";
    TRY(need(be, op, "skip", skip));
    TRY(need(be, op, "up", up));
    if (skip->n != up->n || skip->h < up->h || skip->w < up->w)
        return cpu_shape_error(be, op, "skip [%d,%d,%d,%d] cannot be centre-cropped to match up "
                               "[%d,%d,%d,%d] (need the same batch and skip at least as large)",
                               skip->n, skip->c, skip->h, skip->w, up->n, up->c, up->h, up->w);
    TRY(need_shape(be, op, "output y", y, up->n, skip->c + up->c, up->h, up->w));
    CpuBackend *cpu = cpu_impl(be);
    CpuView vy = cpu_view(y), vs = cpu_view(skip), vu = cpu_view(up);
    const int oy = (skip->h - up->h) / 2, ox = (skip->w - up->w) / 2;
    window_copy(cpu, &vs, 0, &vy, 0, skip->c, oy, ox, 0, 0);
    window_copy(cpu, &vy, skip->c, &vu, 0, up->c, 0, 0, 1, 0);
    return UNET_OK;
}

static UnetStatus cpu_crop_concat_backward(UnetBackend *be, UnetTensor *dskip, UnetTensor *dup,
                                           const UnetTensor *dy, int accumulate_skip,
                                           int accumulate_up)
{
    static const char op[] = "crop_concat_backward";
    TRY(need(be, op, "output gradient dy", dy));
    if (!dskip && !dup)
        return UNET_OK;
    if (dskip)
        TRY(need(be, op, "skip gradient dskip", dskip));
    if (dup)
        TRY(need(be, op, "up gradient dup", dup));
    const int cs = dskip ? dskip->c : dy->c - dup->c;
    const int cu = dy->c - cs;
    if (cs < 1 || cu < 1 || (dup && dup->c != cu))
        return cpu_shape_error(be, op, "dy [%d,%d,%d,%d] does not split into the skip and up "
                               "gradients' channels", dy->n, dy->c, dy->h, dy->w);
    if (dup)
        TRY(need_shape(be, op, "up gradient dup", dup, dy->n, cu, dy->h, dy->w));
    if (dskip && (dskip->n != dy->n || dskip->h < dy->h || dskip->w < dy->w))
        return cpu_shape_error(be, op, "skip gradient dskip [%d,%d,%d,%d] is smaller than dy "
                               "[%d,%d,%d,%d] or has another batch", dskip->n, dskip->c, dskip->h,
                               dskip->w, dy->n, dy->c, dy->h, dy->w);
    CpuBackend *cpu = cpu_impl(be);
    CpuView vy = cpu_view(dy);
    if (dskip) {
        CpuView vs = cpu_view(dskip);
        const int oy = (dskip->h - dy->h) / 2, ox = (dskip->w - dy->w) / 2;
        if (!accumulate_skip && (dskip->h != dy->h || dskip->w != dy->w)) {
            size_t count = unet_tensor_numel(dskip);
            float *p = dskip->data;
            const int nt = cpu_threads_for(cpu, count);
            CPU_OMP("omp parallel for simd num_threads(nt) schedule(static)")
            for (size_t i = 0; i < count; i++)
                p[i] = 0.0f;
        }
        window_copy(cpu, &vs, 0, &vy, 0, cs, oy, ox, 1, accumulate_skip);
    }
    if (dup) {
        CpuView vu = cpu_view(dup);
        window_copy(cpu, &vy, cs, &vu, 0, cu, 0, 0, 0, accumulate_up);
    }
    return UNET_OK;
}

/* ---- activations --------------------------------------------------------- */

static UnetStatus check_act(UnetBackend *be, const char *op, UnetActivation act, float slope)
{
    if (act != UNET_ACT_RELU && act != UNET_ACT_LEAKY)
        return cpu_shape_error(be, op, "unknown activation %d", (int)act);
    if (act == UNET_ACT_LEAKY && !(slope >= 0.0f))
        return cpu_shape_error(be, op, "leaky relu slope %g must be >= 0 (the backward pass "
                               "reads the sign of x from y)", (double)slope);
    return UNET_OK;
}

static UnetStatus cpu_activation_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                         UnetActivation act, float slope)
{
    static const char op[] = "activation_forward";
    TRY(check_act(be, op, act, slope));
    TRY(need(be, op, "input x", x));
    TRY(need_like(be, op, "output y", y, x));
    CpuBackend *cpu = cpu_impl(be);
    const float *xd = cpu_stage_in(be, x, cpu_block_of(y), CPU_SCRATCH_A, op);
    if (!xd)
        return be->error.status;
    const int leaky = act == UNET_ACT_LEAKY;
    const size_t count = unet_tensor_numel(y);
    float *yd = y->data;
    const int nt = cpu_threads_for(cpu, count);
    CPU_OMP("omp parallel for simd num_threads(nt) schedule(static)")
    for (size_t i = 0; i < count; i++)
        yd[i] = unet_k_activation(xd[i], leaky, slope);
    return UNET_OK;
}

static UnetStatus cpu_activation_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                          const UnetTensor *y, UnetActivation act, float slope,
                                          int accumulate)
{
    static const char op[] = "activation_backward";
    TRY(check_act(be, op, act, slope));
    TRY(need(be, op, "output y", y));
    TRY(need_like(be, op, "output gradient dy", dy, y));
    TRY(need_like(be, op, "input gradient dx", dx, y));
    CpuBackend *cpu = cpu_impl(be);
    const int b = cpu_block_of(dx);
    const float *yd = cpu_stage_in(be, y, b, CPU_SCRATCH_A, op);
    const float *g = cpu_stage_in(be, dy, b, CPU_SCRATCH_B, op);
    if (!yd || !g)
        return be->error.status;
    const int leaky = act == UNET_ACT_LEAKY;
    const size_t count = unet_tensor_numel(dx);
    float *d = dx->data;
    const int nt = cpu_threads_for(cpu, count);
    if (accumulate) {
        CPU_OMP("omp parallel for simd num_threads(nt) schedule(static)")
        for (size_t i = 0; i < count; i++)
            d[i] += unet_k_activation_grad(g[i], yd[i], leaky, slope);
    } else {
        CPU_OMP("omp parallel for simd num_threads(nt) schedule(static)")
        for (size_t i = 0; i < count; i++)
            d[i] = unet_k_activation_grad(g[i], yd[i], leaky, slope);
    }
    return UNET_OK;
}

static UnetStatus cpu_sigmoid_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    static const char op[] = "sigmoid_forward";
    TRY(need(be, op, "input x", x));
    TRY(need_like(be, op, "output y", y, x));
    CpuBackend *cpu = cpu_impl(be);
    const float *xd = cpu_stage_in(be, x, cpu_block_of(y), CPU_SCRATCH_A, op);
    if (!xd)
        return be->error.status;
    const size_t count = unet_tensor_numel(y);
    float *yd = y->data;
    const int nt = cpu_threads_for(cpu, count);
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (size_t i = 0; i < count; i++)
        yd[i] = unet_k_sigmoid(xd[i]);
    return UNET_OK;
}

/* Softmax over the channels of each pixel. A pixel's channels are evenly
 * spaced in plain layout; in blocked layout they are gathered first. */
static UnetStatus cpu_softmax_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    static const char op[] = "softmax_forward";
    TRY(need(be, op, "input x", x));
    TRY(need_like(be, op, "output y", y, x));
    CpuBackend *cpu = cpu_impl(be);
    const int b = cpu_block_of(y);
    const float *xd = cpu_stage_in(be, x, b, CPU_SCRATCH_A, op);
    if (!xd)
        return be->error.status;
    const int K = x->c;
    const size_t HW = (size_t)x->h * x->w;
    const long pixels = (long)x->n * (long)HW;
    float *tmp = NULL;
    if (b > 1 && !(tmp = malloc((size_t)cpu->threads * (size_t)K * sizeof(float))))
        return unet_error_set(&be->error, UNET_ERR_NOMEM, "%s: out of memory", op);
    const int nt = cpu_threads_for(cpu, (size_t)pixels * K);
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long q = 0; q < pixels; q++) {
        const int n = (int)(q / (long)HW);
        const size_t p = (size_t)(q % (long)HW);
        if (b == 1) {
            const float *px = xd + (size_t)n * K * HW + p;
            float *py = y->data + (size_t)n * K * HW + p;
            float m, sum;
            unet_k_softmax_stats(px, K, HW, &m, &sum);
            for (int c = 0; c < K; c++)
                py[(size_t)c * HW] = unet_k_softmax_prob(px[(size_t)c * HW], m, sum);
        } else {
#ifdef _OPENMP
            float *v = tmp + (size_t)omp_get_thread_num() * K;
#else
            float *v = tmp;
#endif
            for (int c = 0; c < K; c++)
                v[c] = xd[(((size_t)n * (K / b) + c / b) * HW + p) * b + c % b];
            float m, sum;
            unet_k_softmax_stats(v, K, 1, &m, &sum);
            for (int c = 0; c < K; c++)
                y->data[(((size_t)n * (K / b) + c / b) * HW + p) * b + c % b] =
                    unet_k_softmax_prob(v[c], m, sum);
        }
    }
    free(tmp);
    return UNET_OK;
}

/* ---- normalisation -------------------------------------------------------- */

#define MAX_BLOCK 16

/* Per-lane sum over images n0..n1-1 of channel block cb. */
static void block_sum(const float *x, int b, int cblocks, size_t HW, int n0, int n1, int cb,
                      double *sum)
{
    for (int l = 0; l < b; l++)
        sum[l] = 0.0;
    for (int n = n0; n < n1; n++) {
        const float *p = x + ((size_t)n * cblocks + cb) * HW * b;
        for (size_t i = 0; i < HW; i++)
            for (int l = 0; l < b; l++)
                sum[l] += p[i * b + l];
    }
}

/* Per-lane sum of squared deviations from mean (the second of the
 * reference's two passes). */
static void block_sqdev(const float *x, int b, int cblocks, size_t HW, int n0, int n1, int cb,
                        const double *mean, double *sq)
{
    for (int l = 0; l < b; l++)
        sq[l] = 0.0;
    for (int n = n0; n < n1; n++) {
        const float *p = x + ((size_t)n * cblocks + cb) * HW * b;
        for (size_t i = 0; i < HW; i++)
            for (int l = 0; l < b; l++) {
                double dv = (double)p[i * b + l] - mean[l];
                sq[l] += dv * dv;
            }
    }
}

static UnetStatus cpu_batchnorm_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                        const UnetTensor *gamma, const UnetTensor *beta,
                                        UnetTensor *running_mean, UnetTensor *running_var,
                                        UnetTensor *save_mean, UnetTensor *save_invstd,
                                        float momentum, float eps, int training)
{
    static const char op[] = "batchnorm_forward";
    TRY(need(be, op, "input x", x));
    TRY(need_like(be, op, "output y", y, x));
    const int C = x->c;
    if (gamma)
        TRY(need_vector(be, op, "gamma", gamma, (size_t)C));
    if (beta)
        TRY(need_vector(be, op, "beta", beta, (size_t)C));
    if (running_mean)
        TRY(need_vector(be, op, "running_mean", running_mean, (size_t)C));
    if (running_var)
        TRY(need_vector(be, op, "running_var", running_var, (size_t)C));
    if (save_mean)
        TRY(need_vector(be, op, "save_mean", save_mean, (size_t)C));
    if (save_invstd)
        TRY(need_vector(be, op, "save_invstd", save_invstd, (size_t)C));
    if (!(eps > 0.0f))
        return cpu_shape_error(be, op, "eps %g must be > 0", (double)eps);
    const size_t HW = (size_t)x->h * x->w;
    const size_t M = (size_t)x->n * HW;
    if (training && M < 2)
        return cpu_shape_error(be, op, "input [%d,%d,%d,%d] has one value per channel; training "
                               "batch norm needs more than one", x->n, x->c, x->h, x->w);
    if (!training && (!running_mean || !running_var))
        return cpu_shape_error(be, op, "evaluation mode needs running_mean and running_var");
    CpuBackend *cpu = cpu_impl(be);
    const int b = cpu_block_of(y);
    const float *xd = cpu_stage_in(be, x, b, CPU_SCRATCH_A, op);
    if (!xd)
        return be->error.status;
    const int cblocks = C / b;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(x));
    CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
    for (int cb = 0; cb < cblocks; cb++) {
        double sum[MAX_BLOCK], sq[MAX_BLOCK];
        float mean[MAX_BLOCK], invstd[MAX_BLOCK], g[MAX_BLOCK], bt[MAX_BLOCK];
        if (training) {
            double dmean[MAX_BLOCK];
            block_sum(xd, b, cblocks, HW, 0, x->n, cb, sum);
            for (int l = 0; l < b; l++) {
                dmean[l] = sum[l] / (double)M;
                mean[l] = (float)dmean[l];
            }
            block_sqdev(xd, b, cblocks, HW, 0, x->n, cb, dmean, sq);
            for (int l = 0; l < b; l++) {
                const int c = cb * b + l;
                invstd[l] = (float)(1.0 / sqrt(sq[l] / (double)M + (double)eps));
                if (save_mean)
                    save_mean->data[c] = mean[l];
                if (save_invstd)
                    save_invstd->data[c] = invstd[l];
                if (running_mean)
                    running_mean->data[c] =
                        unet_k_running_update(running_mean->data[c], mean[l], momentum);
                if (running_var)
                    running_var->data[c] = unet_k_running_update(
                        running_var->data[c], (float)(sq[l] / (double)(M - 1)), momentum);
            }
        } else {
            for (int l = 0; l < b; l++) {
                const int c = cb * b + l;
                mean[l] = running_mean->data[c];
                invstd[l] = (float)(1.0 / sqrt((double)running_var->data[c] + (double)eps));
            }
        }
        for (int l = 0; l < b; l++) {
            g[l] = gamma ? gamma->data[cb * b + l] : 1.0f;
            bt[l] = beta ? beta->data[cb * b + l] : 0.0f;
        }
        for (int n = 0; n < x->n; n++) {
            const size_t base = ((size_t)n * cblocks + cb) * HW * b;
            const float *p = xd + base;
            float *q = y->data + base;
            for (size_t i = 0; i < HW; i++)
                CPU_OMP("omp simd")
                for (int l = 0; l < b; l++)
                    q[i * b + l] = unet_k_norm(p[i * b + l], mean[l], invstd[l], g[l], bt[l]);
        }
    }
    return UNET_OK;
}

/* Backward of one normalisation group per lane: the planes of the b channels
 * of block cb over images n0..n1-1. mean/invstd/g are per lane. */
static void norm_block_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                                const float *x, int b, int cblocks, size_t HW, int n0, int n1,
                                int cb, const float *mean, const float *invstd, const float *g,
                                int accumulate)
{
    double sdy[MAX_BLOCK], sdyx[MAX_BLOCK];
    for (int l = 0; l < b; l++)
        sdy[l] = sdyx[l] = 0.0;
    for (int n = n0; n < n1; n++) {
        const size_t base = ((size_t)n * cblocks + cb) * HW * b;
        for (size_t i = 0; i < HW; i++)
            for (int l = 0; l < b; l++) {
                double gv = dy[base + i * b + l];
                sdy[l] += gv;
                sdyx[l] += gv * ((double)x[base + i * b + l] - mean[l]) * invstd[l];
            }
    }
    for (int l = 0; l < b; l++) {
        if (dgamma)
            dgamma[cb * b + l] += (float)sdyx[l];
        if (dbeta)
            dbeta[cb * b + l] += (float)sdy[l];
    }
    if (!dx)
        return;
    const double M = (double)(n1 - n0) * (double)HW;
    float mdy[MAX_BLOCK], mdyx[MAX_BLOCK], scale[MAX_BLOCK];
    for (int l = 0; l < b; l++) {
        mdy[l] = (float)(sdy[l] / M);
        mdyx[l] = (float)(sdyx[l] / M);
        scale[l] = g[l] * invstd[l];
    }
    for (int n = n0; n < n1; n++) {
        const size_t base = ((size_t)n * cblocks + cb) * HW * b;
        for (size_t i = 0; i < HW; i++)
            CPU_OMP("omp simd")
            for (int l = 0; l < b; l++) {
                const size_t o = base + i * b + l;
                float xhat = (x[o] - mean[l]) * invstd[l];
                float v = unet_k_norm_grad(dy[o], xhat, scale[l], mdy[l], mdyx[l]);
                dx[o] = store(dx[o], v, accumulate);
            }
    }
}

static UnetStatus cpu_batchnorm_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                         UnetTensor *dbeta, const UnetTensor *dy,
                                         const UnetTensor *x, const UnetTensor *gamma,
                                         const UnetTensor *save_mean,
                                         const UnetTensor *save_invstd, int accumulate)
{
    static const char op[] = "batchnorm_backward";
    TRY(need(be, op, "input x", x));
    TRY(need_like(be, op, "output gradient dy", dy, x));
    if (dx)
        TRY(need_like(be, op, "input gradient dx", dx, x));
    const int C = x->c;
    if (gamma)
        TRY(need_vector(be, op, "gamma", gamma, (size_t)C));
    if (dgamma)
        TRY(need_vector(be, op, "dgamma", dgamma, (size_t)C));
    if (dbeta)
        TRY(need_vector(be, op, "dbeta", dbeta, (size_t)C));
    TRY(need_vector(be, op, "save_mean", save_mean, (size_t)C));
    TRY(need_vector(be, op, "save_invstd", save_invstd, (size_t)C));
    CpuBackend *cpu = cpu_impl(be);
    const int b = dx ? cpu_block_of(dx) : cpu_block_of(x);
    const float *xd = cpu_stage_in(be, x, b, CPU_SCRATCH_A, op);
    const float *g = cpu_stage_in(be, dy, b, CPU_SCRATCH_B, op);
    if (!xd || !g)
        return be->error.status;
    const size_t HW = (size_t)x->h * x->w;
    const int cblocks = C / b;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(x));
    CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
    for (int cb = 0; cb < cblocks; cb++) {
        float ga[MAX_BLOCK];
        for (int l = 0; l < b; l++)
            ga[l] = gamma ? gamma->data[cb * b + l] : 1.0f;
        norm_block_backward(dx ? dx->data : NULL, dgamma ? dgamma->data : NULL,
                            dbeta ? dbeta->data : NULL, g, xd, b, cblocks, HW, 0, x->n, cb,
                            save_mean->data + cb * b, save_invstd->data + cb * b, ga, accumulate);
    }
    return UNET_OK;
}

static UnetStatus cpu_instancenorm_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                           const UnetTensor *gamma, const UnetTensor *beta,
                                           UnetTensor *save_mean, UnetTensor *save_invstd,
                                           float eps)
{
    static const char op[] = "instancenorm_forward";
    TRY(need(be, op, "input x", x));
    TRY(need_like(be, op, "output y", y, x));
    const int C = x->c;
    const size_t groups = (size_t)x->n * (size_t)C;
    if (gamma)
        TRY(need_vector(be, op, "gamma", gamma, (size_t)C));
    if (beta)
        TRY(need_vector(be, op, "beta", beta, (size_t)C));
    if (save_mean)
        TRY(need_vector(be, op, "save_mean", save_mean, groups));
    if (save_invstd)
        TRY(need_vector(be, op, "save_invstd", save_invstd, groups));
    if (!(eps > 0.0f))
        return cpu_shape_error(be, op, "eps %g must be > 0", (double)eps);
    const size_t HW = (size_t)x->h * x->w;
    if (HW < 2)
        return cpu_shape_error(be, op, "input [%d,%d,%d,%d] has one pixel per plane; instance "
                               "norm needs more than one", x->n, x->c, x->h, x->w);
    CpuBackend *cpu = cpu_impl(be);
    const int b = cpu_block_of(y);
    const float *xd = cpu_stage_in(be, x, b, CPU_SCRATCH_A, op);
    if (!xd)
        return be->error.status;
    const int cblocks = C / b;
    const long jobs = (long)x->n * cblocks;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(x));
    CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
    for (long j = 0; j < jobs; j++) {
        const int n = (int)(j / cblocks), cb = (int)(j % cblocks);
        double sum[MAX_BLOCK], sq[MAX_BLOCK];
        float mean[MAX_BLOCK], invstd[MAX_BLOCK], g[MAX_BLOCK], bt[MAX_BLOCK];
        double dmean[MAX_BLOCK];
        block_sum(xd, b, cblocks, HW, n, n + 1, cb, sum);
        for (int l = 0; l < b; l++) {
            dmean[l] = sum[l] / (double)HW;
            mean[l] = (float)dmean[l];
        }
        block_sqdev(xd, b, cblocks, HW, n, n + 1, cb, dmean, sq);
        const float *p = xd + ((size_t)n * cblocks + cb) * HW * b;
        for (int l = 0; l < b; l++) {
            const int c = cb * b + l;
            const size_t gi = (size_t)n * C + c;
            invstd[l] = (float)(1.0 / sqrt(sq[l] / (double)HW + (double)eps));
            if (save_mean)
                save_mean->data[gi] = mean[l];
            if (save_invstd)
                save_invstd->data[gi] = invstd[l];
            g[l] = gamma ? gamma->data[c] : 1.0f;
            bt[l] = beta ? beta->data[c] : 0.0f;
        }
        float *q = y->data + ((size_t)n * cblocks + cb) * HW * b;
        for (size_t i = 0; i < HW; i++)
            CPU_OMP("omp simd")
            for (int l = 0; l < b; l++)
                q[i * b + l] = unet_k_norm(p[i * b + l], mean[l], invstd[l], g[l], bt[l]);
    }
    return UNET_OK;
}

static UnetStatus cpu_instancenorm_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                            UnetTensor *dbeta, const UnetTensor *dy,
                                            const UnetTensor *x, const UnetTensor *gamma,
                                            const UnetTensor *save_mean,
                                            const UnetTensor *save_invstd, int accumulate)
{
    static const char op[] = "instancenorm_backward";
    TRY(need(be, op, "input x", x));
    TRY(need_like(be, op, "output gradient dy", dy, x));
    if (dx)
        TRY(need_like(be, op, "input gradient dx", dx, x));
    const int C = x->c;
    const size_t groups = (size_t)x->n * (size_t)C;
    if (gamma)
        TRY(need_vector(be, op, "gamma", gamma, (size_t)C));
    if (dgamma)
        TRY(need_vector(be, op, "dgamma", dgamma, (size_t)C));
    if (dbeta)
        TRY(need_vector(be, op, "dbeta", dbeta, (size_t)C));
    TRY(need_vector(be, op, "save_mean", save_mean, groups));
    TRY(need_vector(be, op, "save_invstd", save_invstd, groups));
    CpuBackend *cpu = cpu_impl(be);
    const int b = dx ? cpu_block_of(dx) : cpu_block_of(x);
    const float *xd = cpu_stage_in(be, x, b, CPU_SCRATCH_A, op);
    const float *g = cpu_stage_in(be, dy, b, CPU_SCRATCH_B, op);
    if (!xd || !g)
        return be->error.status;
    const size_t HW = (size_t)x->h * x->w;
    const int cblocks = C / b;
    /* dgamma/dbeta sum over images: images of one channel block stay on one
     * thread so that no two threads add into the same element. */
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(x));
    CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
    for (int cb = 0; cb < cblocks; cb++) {
        float ga[MAX_BLOCK];
        for (int l = 0; l < b; l++)
            ga[l] = gamma ? gamma->data[cb * b + l] : 1.0f;
        for (int n = 0; n < x->n; n++) {
            const size_t gi = (size_t)n * C + (size_t)cb * b;
            norm_block_backward(dx ? dx->data : NULL, dgamma ? dgamma->data : NULL,
                                dbeta ? dbeta->data : NULL, g, xd, b, cblocks, HW, n, n + 1, cb,
                                save_mean->data + gi, save_invstd->data + gi, ga, accumulate);
        }
    }
    return UNET_OK;
}

void cpu_ops_install(UnetBackend *be)
{
    be->maxpool2x2_forward = cpu_maxpool2x2_forward;
    be->maxpool2x2_backward = cpu_maxpool2x2_backward;
    be->upsample2x_forward = cpu_upsample2x_forward;
    be->upsample2x_backward = cpu_upsample2x_backward;
    be->resize_bilinear_forward = cpu_resize_bilinear_forward;
    be->resize_bilinear_backward = cpu_resize_bilinear_backward;
    be->crop_concat_forward = cpu_crop_concat_forward;
    be->crop_concat_backward = cpu_crop_concat_backward;
    be->activation_forward = cpu_activation_forward;
    be->activation_backward = cpu_activation_backward;
    be->sigmoid_forward = cpu_sigmoid_forward;
    be->softmax_forward = cpu_softmax_forward;
    be->batchnorm_forward = cpu_batchnorm_forward;
    be->batchnorm_backward = cpu_batchnorm_backward;
    be->instancenorm_forward = cpu_instancenorm_forward;
    be->instancenorm_backward = cpu_instancenorm_backward;
}
