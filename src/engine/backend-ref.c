/* backend-ref.c - the reference backend: every backend.h op as plain loops over NCHW memory. */
/*
 * Written for clarity, not speed: single-threaded, straight loops, double
 * accumulators in every reduction (convolution sums, norm statistics, loss
 * sums). All element-wise math comes from kernels.h. The fast CPU and CUDA
 * backends are tested against this file (tests/op-harness.c), and this file is
 * tested against finite differences (tests/test-grad-ops.c) and PyTorch
 * golden values (tests/test-ref-ops.c).
 */
#include "backend.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define TRY(expr)                    \
    do {                             \
        UnetStatus try_st_ = (expr); \
        if (try_st_ != UNET_OK)      \
            return try_st_;          \
    } while (0)

/* ---- shape checks ----------------------------------------------------------- */

typedef struct ShapeStr {
    char s[64];
} ShapeStr;

static ShapeStr shape_str(const UnetTensor *t)
{
    ShapeStr r;
    snprintf(r.s, sizeof r.s, "[%d,%d,%d,%d]", t->n, t->c, t->h, t->w);
    return r;
}

static size_t at(const UnetTensor *t, int n, int c, int y, int x)
{
    return (((size_t)n * (size_t)t->c + (size_t)c) * (size_t)t->h + (size_t)y) * (size_t)t->w +
           (size_t)x;
}

/* A tensor this backend can read: present, plain layout, positive sizes. */
static UnetStatus present(UnetBackend *be, const char *op, const char *name, const UnetTensor *t)
{
    if (!t || !t->data)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "%s: %s is missing (NULL tensor)", op,
                              name);
    if (t->layout != 0)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: %s %s has private layout %d; the reference backend reads only "
                              "plain NCHW tensors (layout 0)",
                              op, name, shape_str(t).s, t->layout);
    if (t->n < 1 || t->c < 1 || t->h < 1 || t->w < 1)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "%s: %s has empty shape %s", op, name,
                              shape_str(t).s);
    return UNET_OK;
}

static UnetStatus expect(UnetBackend *be, const char *op, const char *name, const UnetTensor *t,
                         int n, int c, int h, int w)
{
    TRY(present(be, op, name, t));
    if (t->n != n || t->c != c || t->h != h || t->w != w)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: %s is %s but must be [%d,%d,%d,%d]", op, name, shape_str(t).s, n,
                              c, h, w);
    return UNET_OK;
}

/* Per-channel vectors (bias, gamma, beta, statistics) may be shaped [C], [1,C,1,1]... */
static UnetStatus expect_count(UnetBackend *be, const char *op, const char *name,
                               const UnetTensor *t, size_t count)
{
    TRY(present(be, op, name, t));
    if (unet_tensor_numel(t) != count)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: %s %s holds %zu values but must hold %zu", op, name,
                              shape_str(t).s, unet_tensor_numel(t), count);
    return UNET_OK;
}

static UnetStatus same_shape(UnetBackend *be, const char *op, const char *name, const UnetTensor *t,
                             const UnetTensor *ref)
{
    return expect(be, op, name, t, ref->n, ref->c, ref->h, ref->w);
}

static UnetStatus no_memory(UnetBackend *be, const char *op, size_t bytes)
{
    return unet_error_set(&be->error, UNET_ERR_NOMEM,
                          "%s: cannot allocate %zu bytes of host memory for the reference backend",
                          op, bytes);
}

/* dx = v (overwrite) or dx += v (accumulate). */
static void store(float *dst, double v, int accumulate)
{
    *dst = accumulate ? *dst + (float)v : (float)v;
}

/* ---- memory ------------------------------------------------------------------- */

static void ref_destroy(UnetBackend *be)
{
    free(be);
}

static float *ref_buffer_alloc(UnetBackend *be, size_t count)
{
    if (count > SIZE_MAX / sizeof(float)) {
        unet_error_set(&be->error, UNET_ERR_NOMEM,
                       "buffer_alloc: %zu floats do not fit in the address space", count);
        return NULL;
    }
    float *p = malloc((count ? count : 1) * sizeof(float));
    if (!p)
        no_memory(be, "buffer_alloc", count * sizeof(float));
    return p;
}

static void ref_buffer_free(UnetBackend *be, float *buf)
{
    free(buf);
}

static UnetStatus ref_buffer_fill(UnetBackend *be, float *buf, size_t count, float value)
{
    if (!buf && count)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "buffer_fill: buffer is NULL");
    for (size_t i = 0; i < count; i++)
        buf[i] = value;
    return UNET_OK;
}

static UnetStatus ref_buffer_upload(UnetBackend *be, float *dst, const float *host_src,
                                    size_t count)
{
    if ((!dst || !host_src) && count)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "buffer_upload: NULL buffer");
    if (count)
        memmove(dst, host_src, count * sizeof(float));
    return UNET_OK;
}

static UnetStatus ref_buffer_download(UnetBackend *be, float *host_dst, const float *src,
                                      size_t count)
{
    if ((!host_dst || !src) && count)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "buffer_download: NULL buffer");
    if (count)
        memmove(host_dst, src, count * sizeof(float));
    return UNET_OK;
}

static UnetStatus ref_tensor_init(UnetBackend *be, UnetTensor *t, int n, int c, int h, int w)
{
    if (!t)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "tensor_init: tensor is NULL");
    memset(t, 0, sizeof *t);
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "tensor_init: shape [%d,%d,%d,%d] has an empty dimension", n, c, h,
                              w);
    size_t count = (size_t)n * (size_t)c * (size_t)h * (size_t)w;
    float *p = ref_buffer_alloc(be, count);
    if (!p)
        return unet_error_prefix(&be->error, "tensor_init [%d,%d,%d,%d]: ", n, c, h, w);
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->data = p;
    return UNET_OK;
}

static void ref_tensor_view(UnetBackend *be, UnetTensor *t, float *buf, int n, int c, int h, int w)
{
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->data = buf;
    t->layout = 0;
    t->is_view = 1;
    t->priv = NULL;
}

static void ref_tensor_release(UnetBackend *be, UnetTensor *t)
{
    if (!t)
        return;
    if (!t->is_view)
        free(t->data);
    memset(t, 0, sizeof *t);
}

static UnetStatus ref_tensor_upload(UnetBackend *be, UnetTensor *t, const float *host_nchw)
{
    TRY(present(be, "tensor_upload", "tensor", t));
    if (!host_nchw)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "tensor_upload: host source is NULL");
    memmove(t->data, host_nchw, unet_tensor_numel(t) * sizeof(float));
    return UNET_OK;
}

static UnetStatus ref_tensor_download(UnetBackend *be, float *host_nchw, const UnetTensor *t)
{
    TRY(present(be, "tensor_download", "tensor", t));
    if (!host_nchw)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "tensor_download: host destination is NULL");
    memmove(host_nchw, t->data, unet_tensor_numel(t) * sizeof(float));
    return UNET_OK;
}

static UnetStatus ref_tensor_fill(UnetBackend *be, UnetTensor *t, float value)
{
    TRY(present(be, "tensor_fill", "tensor", t));
    return ref_buffer_fill(be, t->data, unet_tensor_numel(t), value);
}

static UnetStatus ref_synchronize(UnetBackend *be)
{
    return UNET_OK;
}

/* ---- convolution ------------------------------------------------------------ */

/* Checks x, w [Co,Ci,k,k], b [Co] (optional) and the descriptor; gives Ho, Wo. */
static UnetStatus check_conv(UnetBackend *be, const char *op, const UnetTensor *x,
                             const UnetTensor *w, const UnetTensor *b, const UnetConvDesc *d,
                             int *ho, int *wo)
{
    if (!d)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "%s: convolution descriptor is NULL",
                              op);
    if (d->kernel < 1 || d->stride < 1 || d->pad < 0)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: bad descriptor kernel %d stride %d pad %d (need kernel >= 1, "
                              "stride >= 1, pad >= 0)",
                              op, d->kernel, d->stride, d->pad);
    TRY(present(be, op, "input x", x));
    TRY(present(be, op, "weight w", w));
    if (w->c != x->c || w->h != d->kernel || w->w != d->kernel)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: weight %s does not fit input %s with a %dx%d kernel (need "
                              "[Co,%d,%d,%d])",
                              op, shape_str(w).s, shape_str(x).s, d->kernel, d->kernel, x->c,
                              d->kernel, d->kernel);
    if (b)
        TRY(expect_count(be, op, "bias b", b, (size_t)w->n));
    *ho = unet_conv_out_size(x->h, d);
    *wo = unet_conv_out_size(x->w, d);
    if (x->h + 2 * d->pad < d->kernel || x->w + 2 * d->pad < d->kernel)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: input %s is smaller than the %dx%d kernel with pad %d", op,
                              shape_str(x).s, d->kernel, d->kernel, d->pad);
    return UNET_OK;
}

static UnetStatus ref_conv2d_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                     const UnetTensor *w, const UnetTensor *b,
                                     const UnetConvDesc *d)
{
    const char *op = "conv2d_forward";
    int Ho, Wo;
    TRY(check_conv(be, op, x, w, b, d, &Ho, &Wo));
    TRY(expect(be, op, "output y", y, x->n, w->n, Ho, Wo));
    const int N = x->n, Ci = x->c, H = x->h, W = x->w, Co = w->n;
    const int k = d->kernel, s = d->stride, p = d->pad;
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Co; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double acc = b ? (double)b->data[co] : 0.0;
                    for (int ci = 0; ci < Ci; ci++)
                        for (int ky = 0; ky < k; ky++) {
                            int iy = oy * s - p + ky;
                            if (iy < 0 || iy >= H)
                                continue;
                            for (int kx = 0; kx < k; kx++) {
                                int ix = ox * s - p + kx;
                                if (ix < 0 || ix >= W)
                                    continue;
                                acc += (double)x->data[at(x, n, ci, iy, ix)] *
                                       (double)w->data[at(w, co, ci, ky, kx)];
                            }
                        }
                    y->data[at(y, n, co, oy, ox)] = (float)acc;
                }
    return UNET_OK;
}

static UnetStatus ref_conv2d_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                      UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                                      const UnetTensor *w, const UnetConvDesc *d, int accumulate)
{
    const char *op = "conv2d_backward";
    int Ho, Wo;
    TRY(check_conv(be, op, x, w, NULL, d, &Ho, &Wo));
    TRY(expect(be, op, "output gradient dy", dy, x->n, w->n, Ho, Wo));
    TRY(same_shape(be, op, "weight gradient dw", dw, w));
    if (db)
        TRY(expect_count(be, op, "bias gradient db", db, (size_t)w->n));
    if (dx)
        TRY(same_shape(be, op, "input gradient dx", dx, x));
    const int N = x->n, Ci = x->c, H = x->h, W = x->w, Co = w->n;
    const int k = d->kernel, s = d->stride, p = d->pad;

    /* dx[n,ci,iy,ix] = sum over the outputs whose window covers (iy,ix). */
    if (dx)
        for (int n = 0; n < N; n++)
            for (int ci = 0; ci < Ci; ci++)
                for (int iy = 0; iy < H; iy++)
                    for (int ix = 0; ix < W; ix++) {
                        double acc = 0.0;
                        for (int co = 0; co < Co; co++)
                            for (int ky = 0; ky < k; ky++) {
                                int ty = iy + p - ky;
                                if (ty < 0 || ty % s != 0 || ty / s >= Ho)
                                    continue;
                                for (int kx = 0; kx < k; kx++) {
                                    int tx = ix + p - kx;
                                    if (tx < 0 || tx % s != 0 || tx / s >= Wo)
                                        continue;
                                    acc += (double)dy->data[at(dy, n, co, ty / s, tx / s)] *
                                           (double)w->data[at(w, co, ci, ky, kx)];
                                }
                            }
                        store(&dx->data[at(dx, n, ci, iy, ix)], acc, accumulate);
                    }

    for (int co = 0; co < Co; co++)
        for (int ci = 0; ci < Ci; ci++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    double acc = 0.0;
                    for (int n = 0; n < N; n++)
                        for (int oy = 0; oy < Ho; oy++) {
                            int iy = oy * s - p + ky;
                            if (iy < 0 || iy >= H)
                                continue;
                            for (int ox = 0; ox < Wo; ox++) {
                                int ix = ox * s - p + kx;
                                if (ix < 0 || ix >= W)
                                    continue;
                                acc += (double)dy->data[at(dy, n, co, oy, ox)] *
                                       (double)x->data[at(x, n, ci, iy, ix)];
                            }
                        }
                    dw->data[at(dw, co, ci, ky, kx)] += (float)acc;
                }

    if (db)
        for (int co = 0; co < Co; co++) {
            double acc = 0.0;
            for (int n = 0; n < N; n++)
                for (int oy = 0; oy < Ho; oy++)
                    for (int ox = 0; ox < Wo; ox++)
                        acc += (double)dy->data[at(dy, n, co, oy, ox)];
            db->data[co] += (float)acc;
        }
    return UNET_OK;
}

/* ---- 2x2 stride-2 transposed convolution ------------------------------------------ */

static UnetStatus check_upconv(UnetBackend *be, const char *op, const UnetTensor *x,
                               const UnetTensor *w, const UnetTensor *b)
{
    TRY(present(be, op, "input x", x));
    TRY(present(be, op, "weight w", w));
    if (w->n != x->c || w->h != 2 || w->w != 2)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: weight %s does not fit input %s (need [%d,Co,2,2], PyTorch "
                              "ConvTranspose2d layout)",
                              op, shape_str(w).s, shape_str(x).s, x->c);
    if (b)
        TRY(expect_count(be, op, "bias b", b, (size_t)w->c));
    return UNET_OK;
}

static UnetStatus ref_upconv2x2_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                        const UnetTensor *w, const UnetTensor *b)
{
    const char *op = "upconv2x2_forward";
    TRY(check_upconv(be, op, x, w, b));
    TRY(expect(be, op, "output y", y, x->n, w->c, 2 * x->h, 2 * x->w));
    const int N = x->n, Ci = x->c, Co = w->c;
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Co; co++)
            for (int oy = 0; oy < y->h; oy++)
                for (int ox = 0; ox < y->w; ox++) {
                    double acc = b ? (double)b->data[co] : 0.0;
                    for (int ci = 0; ci < Ci; ci++)
                        acc += (double)x->data[at(x, n, ci, oy / 2, ox / 2)] *
                               (double)w->data[at(w, ci, co, oy % 2, ox % 2)];
                    y->data[at(y, n, co, oy, ox)] = (float)acc;
                }
    return UNET_OK;
}

static UnetStatus ref_upconv2x2_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                         UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                                         const UnetTensor *w, int accumulate)
{
    const char *op = "upconv2x2_backward";
    TRY(check_upconv(be, op, x, w, NULL));
    TRY(expect(be, op, "output gradient dy", dy, x->n, w->c, 2 * x->h, 2 * x->w));
    TRY(same_shape(be, op, "weight gradient dw", dw, w));
    if (db)
        TRY(expect_count(be, op, "bias gradient db", db, (size_t)w->c));
    if (dx)
        TRY(same_shape(be, op, "input gradient dx", dx, x));
    const int N = x->n, Ci = x->c, H = x->h, W = x->w, Co = w->c;

    if (dx)
        for (int n = 0; n < N; n++)
            for (int ci = 0; ci < Ci; ci++)
                for (int iy = 0; iy < H; iy++)
                    for (int ix = 0; ix < W; ix++) {
                        double acc = 0.0;
                        for (int co = 0; co < Co; co++)
                            for (int a = 0; a < 2; a++)
                                for (int c = 0; c < 2; c++)
                                    acc += (double)dy->data[at(dy, n, co, 2 * iy + a, 2 * ix + c)] *
                                           (double)w->data[at(w, ci, co, a, c)];
                        store(&dx->data[at(dx, n, ci, iy, ix)], acc, accumulate);
                    }

    for (int ci = 0; ci < Ci; ci++)
        for (int co = 0; co < Co; co++)
            for (int a = 0; a < 2; a++)
                for (int c = 0; c < 2; c++) {
                    double acc = 0.0;
                    for (int n = 0; n < N; n++)
                        for (int iy = 0; iy < H; iy++)
                            for (int ix = 0; ix < W; ix++)
                                acc += (double)x->data[at(x, n, ci, iy, ix)] *
                                       (double)dy->data[at(dy, n, co, 2 * iy + a, 2 * ix + c)];
                    dw->data[at(dw, ci, co, a, c)] += (float)acc;
                }

    if (db)
        for (int co = 0; co < Co; co++) {
            double acc = 0.0;
            for (int n = 0; n < N; n++)
                for (int oy = 0; oy < dy->h; oy++)
                    for (int ox = 0; ox < dy->w; ox++)
                        acc += (double)dy->data[at(dy, n, co, oy, ox)];
            db->data[co] += (float)acc;
        }
    return UNET_OK;
}

/* ---- max pooling ------------------------------------------------------------------ */

static UnetStatus check_pool_input(UnetBackend *be, const char *op, const UnetTensor *x)
{
    TRY(present(be, op, "input x", x));
    if (x->h < 2 || x->w < 2)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: input %s is smaller than the 2x2 pooling window", op,
                              shape_str(x).s);
    return UNET_OK;
}

/* Offset (0..3, row-major in the window) of the first maximum; NaN counts as
 * the maximum, as in PyTorch. */
static int window_argmax(const UnetTensor *x, int n, int c, int oy, int ox)
{
    int best = 0;
    float bv = x->data[at(x, n, c, 2 * oy, 2 * ox)];
    for (int i = 1; i < 4; i++) {
        float v = x->data[at(x, n, c, 2 * oy + i / 2, 2 * ox + i % 2)];
        if (v > bv || (isnan(v) && !isnan(bv))) {
            bv = v;
            best = i;
        }
    }
    return best;
}

static UnetStatus ref_maxpool2x2_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    const char *op = "maxpool2x2_forward";
    TRY(check_pool_input(be, op, x));
    TRY(expect(be, op, "output y", y, x->n, x->c, x->h / 2, x->w / 2));
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++)
            for (int oy = 0; oy < y->h; oy++)
                for (int ox = 0; ox < y->w; ox++) {
                    int i = window_argmax(x, n, c, oy, ox);
                    y->data[at(y, n, c, oy, ox)] =
                        x->data[at(x, n, c, 2 * oy + i / 2, 2 * ox + i % 2)];
                }
    return UNET_OK;
}

static UnetStatus ref_maxpool2x2_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                          const UnetTensor *x, const UnetTensor *y, int accumulate)
{
    const char *op = "maxpool2x2_backward";
    TRY(check_pool_input(be, op, x));
    TRY(same_shape(be, op, "input gradient dx", dx, x));
    TRY(expect(be, op, "output gradient dy", dy, x->n, x->c, x->h / 2, x->w / 2));
    if (y)
        TRY(same_shape(be, op, "output y", y, dy));
    if (!accumulate)
        ref_buffer_fill(be, dx->data, unet_tensor_numel(dx), 0.0f);
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++)
            for (int oy = 0; oy < dy->h; oy++)
                for (int ox = 0; ox < dy->w; ox++) {
                    int i = window_argmax(x, n, c, oy, ox);
                    dx->data[at(dx, n, c, 2 * oy + i / 2, 2 * ox + i % 2)] +=
                        dy->data[at(dy, n, c, oy, ox)];
                }
    return UNET_OK;
}

/* ---- bilinear resampling ------------------------------------------------------------ */

static void resize_forward(UnetTensor *y, const UnetTensor *x)
{
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++)
            for (int oy = 0; oy < y->h; oy++) {
                int y0, y1;
                float ly;
                unet_k_bilinear_taps(oy, x->h, y->h, &y0, &y1, &ly);
                for (int ox = 0; ox < y->w; ox++) {
                    int x0, x1;
                    float lx;
                    unet_k_bilinear_taps(ox, x->w, y->w, &x0, &x1, &lx);
                    double v = (1.0 - ly) * ((1.0 - lx) * x->data[at(x, n, c, y0, x0)] +
                                             lx * x->data[at(x, n, c, y0, x1)]) +
                               ly * ((1.0 - lx) * x->data[at(x, n, c, y1, x0)] +
                                     lx * x->data[at(x, n, c, y1, x1)]);
                    y->data[at(y, n, c, oy, ox)] = (float)v;
                }
            }
}

/* Scatters dy back through the same taps, one plane at a time in doubles. */
static UnetStatus resize_backward(UnetBackend *be, const char *op, UnetTensor *dx,
                                  const UnetTensor *dy, int accumulate)
{
    size_t plane = (size_t)dx->h * (size_t)dx->w;
    double *acc = malloc(plane * sizeof(double));
    if (!acc)
        return no_memory(be, op, plane * sizeof(double));
    for (int n = 0; n < dx->n; n++)
        for (int c = 0; c < dx->c; c++) {
            for (size_t i = 0; i < plane; i++)
                acc[i] = 0.0;
            for (int oy = 0; oy < dy->h; oy++) {
                int y0, y1;
                float ly;
                unet_k_bilinear_taps(oy, dx->h, dy->h, &y0, &y1, &ly);
                for (int ox = 0; ox < dy->w; ox++) {
                    int x0, x1;
                    float lx;
                    unet_k_bilinear_taps(ox, dx->w, dy->w, &x0, &x1, &lx);
                    double g = dy->data[at(dy, n, c, oy, ox)];
                    acc[(size_t)y0 * dx->w + x0] += g * (1.0 - ly) * (1.0 - lx);
                    acc[(size_t)y0 * dx->w + x1] += g * (1.0 - ly) * lx;
                    acc[(size_t)y1 * dx->w + x0] += g * ly * (1.0 - lx);
                    acc[(size_t)y1 * dx->w + x1] += g * ly * lx;
                }
            }
            float *out = &dx->data[at(dx, n, c, 0, 0)];
            for (size_t i = 0; i < plane; i++)
                store(&out[i], acc[i], accumulate);
        }
    free(acc);
    return UNET_OK;
}

static UnetStatus ref_upsample2x_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    const char *op = "upsample2x_forward";
    TRY(present(be, op, "input x", x));
    TRY(expect(be, op, "output y", y, x->n, x->c, 2 * x->h, 2 * x->w));
    resize_forward(y, x);
    return UNET_OK;
}

static UnetStatus ref_upsample2x_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                          int accumulate)
{
    const char *op = "upsample2x_backward";
    TRY(present(be, op, "input gradient dx", dx));
    TRY(expect(be, op, "output gradient dy", dy, dx->n, dx->c, 2 * dx->h, 2 * dx->w));
    return resize_backward(be, op, dx, dy, accumulate);
}

static UnetStatus ref_resize_bilinear_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    const char *op = "resize_bilinear_forward";
    TRY(present(be, op, "input x", x));
    TRY(present(be, op, "output y", y));
    TRY(expect(be, op, "output y", y, x->n, x->c, y->h, y->w));
    resize_forward(y, x);
    return UNET_OK;
}

static UnetStatus ref_resize_bilinear_backward(UnetBackend *be, UnetTensor *dx,
                                               const UnetTensor *dy, int accumulate)
{
    const char *op = "resize_bilinear_backward";
    TRY(present(be, op, "input gradient dx", dx));
    TRY(present(be, op, "output gradient dy", dy));
    TRY(expect(be, op, "output gradient dy", dy, dx->n, dx->c, dy->h, dy->w));
    return resize_backward(be, op, dx, dy, accumulate);
}

/* ---- skip connection: centre crop and channel concatenation ------------------------ */

static UnetStatus ref_crop_concat_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *skip,
                                          const UnetTensor *up)
{
    const char *op = "crop_concat_forward";
    TRY(present(be, op, "skip", skip));
    TRY(present(be, op, "up", up));
    if (skip->n != up->n || skip->h < up->h || skip->w < up->w)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: skip %s cannot be centre-cropped to match up %s (need the same "
                              "batch and skip at least as large)",
                              op, shape_str(skip).s, shape_str(up).s);
    TRY(expect(be, op, "output y", y, up->n, skip->c + up->c, up->h, up->w));
    const int oy = (skip->h - up->h) / 2, ox = (skip->w - up->w) / 2;
    for (int n = 0; n < y->n; n++)
        for (int c = 0; c < y->c; c++)
            for (int iy = 0; iy < y->h; iy++)
                for (int ix = 0; ix < y->w; ix++)
                    y->data[at(y, n, c, iy, ix)] =
                        c < skip->c ? skip->data[at(skip, n, c, iy + oy, ix + ox)]
                                    : up->data[at(up, n, c - skip->c, iy, ix)];
    return UNET_OK;
}

static UnetStatus ref_crop_concat_backward(UnetBackend *be, UnetTensor *dskip, UnetTensor *dup,
                                           const UnetTensor *dy, int accumulate_skip,
                                           int accumulate_up)
{
    const char *op = "crop_concat_backward";
    TRY(present(be, op, "output gradient dy", dy));
    if (!dskip && !dup)
        return UNET_OK;
    if (dskip)
        TRY(present(be, op, "skip gradient dskip", dskip));
    if (dup)
        TRY(present(be, op, "up gradient dup", dup));
    const int cs = dskip ? dskip->c : dy->c - dup->c;
    const int cu = dy->c - cs;
    if (cs < 1 || cu < 1 || (dup && dup->c != cu))
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: dy %s does not split into dskip %s and dup %s channels", op,
                              shape_str(dy).s, dskip ? shape_str(dskip).s : "(none)",
                              dup ? shape_str(dup).s : "(none)");
    if (dup)
        TRY(expect(be, op, "up gradient dup", dup, dy->n, cu, dy->h, dy->w));
    if (dskip && (dskip->n != dy->n || dskip->h < dy->h || dskip->w < dy->w))
        return unet_error_set(
            &be->error, UNET_ERR_INVALID,
            "%s: skip gradient dskip %s is smaller than dy %s or has another batch", op,
            shape_str(dskip).s, shape_str(dy).s);
    if (dskip) {
        const int oy = (dskip->h - dy->h) / 2, ox = (dskip->w - dy->w) / 2;
        if (!accumulate_skip)
            ref_buffer_fill(be, dskip->data, unet_tensor_numel(dskip), 0.0f);
        for (int n = 0; n < dy->n; n++)
            for (int c = 0; c < cs; c++)
                for (int iy = 0; iy < dy->h; iy++)
                    for (int ix = 0; ix < dy->w; ix++)
                        dskip->data[at(dskip, n, c, iy + oy, ix + ox)] +=
                            dy->data[at(dy, n, c, iy, ix)];
    }
    if (dup)
        for (int n = 0; n < dy->n; n++)
            for (int c = 0; c < cu; c++)
                for (int iy = 0; iy < dy->h; iy++)
                    for (int ix = 0; ix < dy->w; ix++)
                        store(&dup->data[at(dup, n, c, iy, ix)],
                              dy->data[at(dy, n, cs + c, iy, ix)], accumulate_up);
    return UNET_OK;
}

/* ---- activations ------------------------------------------------------------------- */

static UnetStatus check_act(UnetBackend *be, const char *op, UnetActivation act, float slope)
{
    if (act != UNET_ACT_RELU && act != UNET_ACT_LEAKY)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "%s: unknown activation %d", op,
                              (int)act);
    if (act == UNET_ACT_LEAKY && !(slope >= 0.0f))
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: leaky relu slope %g must be >= 0 (the backward pass reads the "
                              "sign of x from y)",
                              op, (double)slope);
    return UNET_OK;
}

static UnetStatus ref_activation_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                         UnetActivation act, float slope)
{
    const char *op = "activation_forward";
    TRY(check_act(be, op, act, slope));
    TRY(present(be, op, "input x", x));
    TRY(same_shape(be, op, "output y", y, x));
    const int leaky = act == UNET_ACT_LEAKY;
    size_t count = unet_tensor_numel(x);
    for (size_t i = 0; i < count; i++)
        y->data[i] = unet_k_activation(x->data[i], leaky, slope);
    return UNET_OK;
}

static UnetStatus ref_activation_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                          const UnetTensor *y, UnetActivation act, float slope,
                                          int accumulate)
{
    const char *op = "activation_backward";
    TRY(check_act(be, op, act, slope));
    TRY(present(be, op, "output y", y));
    TRY(same_shape(be, op, "output gradient dy", dy, y));
    TRY(same_shape(be, op, "input gradient dx", dx, y));
    const int leaky = act == UNET_ACT_LEAKY;
    size_t count = unet_tensor_numel(y);
    for (size_t i = 0; i < count; i++)
        store(&dx->data[i], unet_k_activation_grad(dy->data[i], y->data[i], leaky, slope),
              accumulate);
    return UNET_OK;
}

static UnetStatus ref_sigmoid_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    const char *op = "sigmoid_forward";
    TRY(present(be, op, "input x", x));
    TRY(same_shape(be, op, "output y", y, x));
    size_t count = unet_tensor_numel(x);
    for (size_t i = 0; i < count; i++)
        y->data[i] = unet_k_sigmoid(x->data[i]);
    return UNET_OK;
}

static UnetStatus ref_softmax_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    const char *op = "softmax_forward";
    TRY(present(be, op, "input x", x));
    TRY(same_shape(be, op, "output y", y, x));
    size_t plane = (size_t)x->h * (size_t)x->w;
    for (int n = 0; n < x->n; n++)
        for (size_t i = 0; i < plane; i++) {
            const float *px = &x->data[at(x, n, 0, 0, 0) + i];
            float *py = &y->data[at(y, n, 0, 0, 0) + i];
            float m, s;
            unet_k_softmax_stats(px, x->c, plane, &m, &s);
            for (int c = 0; c < x->c; c++)
                py[(size_t)c * plane] = unet_k_softmax_prob(px[(size_t)c * plane], m, s);
        }
    return UNET_OK;
}

/* ---- normalisation ------------------------------------------------------------------ */

static UnetStatus check_affine(UnetBackend *be, const char *op, const UnetTensor *gamma,
                               const UnetTensor *beta, int channels)
{
    if (gamma)
        TRY(expect_count(be, op, "gamma", gamma, (size_t)channels));
    if (beta)
        TRY(expect_count(be, op, "beta", beta, (size_t)channels));
    return UNET_OK;
}

static UnetStatus ref_batchnorm_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                        const UnetTensor *gamma, const UnetTensor *beta,
                                        UnetTensor *running_mean, UnetTensor *running_var,
                                        UnetTensor *save_mean, UnetTensor *save_invstd,
                                        float momentum, float eps, int training)
{
    const char *op = "batchnorm_forward";
    TRY(present(be, op, "input x", x));
    TRY(same_shape(be, op, "output y", y, x));
    const int C = x->c;
    TRY(check_affine(be, op, gamma, beta, C));
    if (running_mean)
        TRY(expect_count(be, op, "running_mean", running_mean, (size_t)C));
    if (running_var)
        TRY(expect_count(be, op, "running_var", running_var, (size_t)C));
    if (save_mean)
        TRY(expect_count(be, op, "save_mean", save_mean, (size_t)C));
    if (save_invstd)
        TRY(expect_count(be, op, "save_invstd", save_invstd, (size_t)C));
    if (!(eps > 0.0f))
        return unet_error_set(&be->error, UNET_ERR_INVALID, "%s: eps %g must be > 0", op,
                              (double)eps);
    const size_t plane = (size_t)x->h * (size_t)x->w;
    const size_t M = (size_t)x->n * plane;
    if (training && M < 2)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: input %s has one value per channel; training batch norm needs "
                              "more than one",
                              op, shape_str(x).s);
    if (!training && (!running_mean || !running_var))
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: evaluation mode needs running_mean and running_var", op);

    for (int c = 0; c < C; c++) {
        float mean, invstd;
        if (training) {
            double sum = 0.0, sq = 0.0;
            for (int n = 0; n < x->n; n++) {
                const float *px = &x->data[at(x, n, c, 0, 0)];
                for (size_t i = 0; i < plane; i++)
                    sum += px[i];
            }
            double m = sum / (double)M;
            for (int n = 0; n < x->n; n++) {
                const float *px = &x->data[at(x, n, c, 0, 0)];
                for (size_t i = 0; i < plane; i++)
                    sq += ((double)px[i] - m) * ((double)px[i] - m);
            }
            double var = sq / (double)M;
            mean = (float)m;
            invstd = (float)(1.0 / sqrt(var + (double)eps));
            if (save_mean)
                save_mean->data[c] = mean;
            if (save_invstd)
                save_invstd->data[c] = invstd;
            if (running_mean)
                running_mean->data[c] =
                    unet_k_running_update(running_mean->data[c], mean, momentum);
            if (running_var)
                running_var->data[c] = unet_k_running_update(
                    running_var->data[c], (float)(sq / (double)(M - 1)), momentum);
        } else {
            mean = running_mean->data[c];
            invstd = (float)(1.0 / sqrt((double)running_var->data[c] + (double)eps));
        }
        float g = gamma ? gamma->data[c] : 1.0f, b = beta ? beta->data[c] : 0.0f;
        for (int n = 0; n < x->n; n++) {
            const float *px = &x->data[at(x, n, c, 0, 0)];
            float *py = &y->data[at(y, n, c, 0, 0)];
            for (size_t i = 0; i < plane; i++)
                py[i] = unet_k_norm(px[i], mean, invstd, g, b);
        }
    }
    return UNET_OK;
}

/* Backward of one normalisation group: the planes of channel c of images n0..n1-1. */
static void norm_group_backward(UnetTensor *dx, UnetTensor *dgamma, UnetTensor *dbeta,
                                const UnetTensor *dy, const UnetTensor *x, int c, int n0, int n1,
                                float mean, float invstd, float g, int accumulate)
{
    const size_t plane = (size_t)x->h * (size_t)x->w;
    const double M = (double)(n1 - n0) * (double)plane;
    double sdy = 0.0, sdyx = 0.0;
    for (int n = n0; n < n1; n++) {
        const float *px = &x->data[at(x, n, c, 0, 0)];
        const float *pdy = &dy->data[at(dy, n, c, 0, 0)];
        for (size_t i = 0; i < plane; i++) {
            sdy += pdy[i];
            sdyx += (double)pdy[i] * ((double)px[i] - mean) * invstd;
        }
    }
    if (dgamma)
        dgamma->data[c] += (float)sdyx;
    if (dbeta)
        dbeta->data[c] += (float)sdy;
    if (!dx)
        return;
    const float mdy = (float)(sdy / M), mdyx = (float)(sdyx / M);
    for (int n = n0; n < n1; n++) {
        const float *px = &x->data[at(x, n, c, 0, 0)];
        const float *pdy = &dy->data[at(dy, n, c, 0, 0)];
        float *pdx = &dx->data[at(dx, n, c, 0, 0)];
        for (size_t i = 0; i < plane; i++) {
            float xhat = (px[i] - mean) * invstd;
            store(&pdx[i], unet_k_norm_grad(pdy[i], xhat, g * invstd, mdy, mdyx), accumulate);
        }
    }
}

static UnetStatus ref_batchnorm_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                         UnetTensor *dbeta, const UnetTensor *dy,
                                         const UnetTensor *x, const UnetTensor *gamma,
                                         const UnetTensor *save_mean, const UnetTensor *save_invstd,
                                         int accumulate)
{
    const char *op = "batchnorm_backward";
    TRY(present(be, op, "input x", x));
    TRY(same_shape(be, op, "output gradient dy", dy, x));
    if (dx)
        TRY(same_shape(be, op, "input gradient dx", dx, x));
    const int C = x->c;
    TRY(check_affine(be, op, gamma, NULL, C));
    if (dgamma)
        TRY(expect_count(be, op, "dgamma", dgamma, (size_t)C));
    if (dbeta)
        TRY(expect_count(be, op, "dbeta", dbeta, (size_t)C));
    TRY(expect_count(be, op, "save_mean", save_mean, (size_t)C));
    TRY(expect_count(be, op, "save_invstd", save_invstd, (size_t)C));
    for (int c = 0; c < C; c++)
        norm_group_backward(dx, dgamma, dbeta, dy, x, c, 0, x->n, save_mean->data[c],
                            save_invstd->data[c], gamma ? gamma->data[c] : 1.0f, accumulate);
    return UNET_OK;
}

static UnetStatus ref_instancenorm_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                           const UnetTensor *gamma, const UnetTensor *beta,
                                           UnetTensor *save_mean, UnetTensor *save_invstd,
                                           float eps)
{
    const char *op = "instancenorm_forward";
    TRY(present(be, op, "input x", x));
    TRY(same_shape(be, op, "output y", y, x));
    TRY(check_affine(be, op, gamma, beta, x->c));
    const size_t groups = (size_t)x->n * (size_t)x->c;
    if (save_mean)
        TRY(expect_count(be, op, "save_mean", save_mean, groups));
    if (save_invstd)
        TRY(expect_count(be, op, "save_invstd", save_invstd, groups));
    if (!(eps > 0.0f))
        return unet_error_set(&be->error, UNET_ERR_INVALID, "%s: eps %g must be > 0", op,
                              (double)eps);
    const size_t plane = (size_t)x->h * (size_t)x->w;
    if (plane < 2)
        return unet_error_set(
            &be->error, UNET_ERR_INVALID,
            "%s: input %s has one pixel per plane; instance norm needs more than one", op,
            shape_str(x).s);
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            const float *px = &x->data[at(x, n, c, 0, 0)];
            float *py = &y->data[at(y, n, c, 0, 0)];
            double sum = 0.0, sq = 0.0;
            for (size_t i = 0; i < plane; i++)
                sum += px[i];
            double m = sum / (double)plane;
            for (size_t i = 0; i < plane; i++)
                sq += ((double)px[i] - m) * ((double)px[i] - m);
            float mean = (float)m;
            float invstd = (float)(1.0 / sqrt(sq / (double)plane + (double)eps));
            size_t g = (size_t)n * (size_t)x->c + (size_t)c;
            if (save_mean)
                save_mean->data[g] = mean;
            if (save_invstd)
                save_invstd->data[g] = invstd;
            float ga = gamma ? gamma->data[c] : 1.0f, b = beta ? beta->data[c] : 0.0f;
            for (size_t i = 0; i < plane; i++)
                py[i] = unet_k_norm(px[i], mean, invstd, ga, b);
        }
    return UNET_OK;
}

static UnetStatus ref_instancenorm_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                            UnetTensor *dbeta, const UnetTensor *dy,
                                            const UnetTensor *x, const UnetTensor *gamma,
                                            const UnetTensor *save_mean,
                                            const UnetTensor *save_invstd, int accumulate)
{
    const char *op = "instancenorm_backward";
    TRY(present(be, op, "input x", x));
    TRY(same_shape(be, op, "output gradient dy", dy, x));
    if (dx)
        TRY(same_shape(be, op, "input gradient dx", dx, x));
    TRY(check_affine(be, op, gamma, NULL, x->c));
    if (dgamma)
        TRY(expect_count(be, op, "dgamma", dgamma, (size_t)x->c));
    if (dbeta)
        TRY(expect_count(be, op, "dbeta", dbeta, (size_t)x->c));
    const size_t groups = (size_t)x->n * (size_t)x->c;
    TRY(expect_count(be, op, "save_mean", save_mean, groups));
    TRY(expect_count(be, op, "save_invstd", save_invstd, groups));
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            size_t g = (size_t)n * (size_t)x->c + (size_t)c;
            norm_group_backward(dx, dgamma, dbeta, dy, x, c, n, n + 1, save_mean->data[g],
                                save_invstd->data[g], gamma ? gamma->data[c] : 1.0f, accumulate);
        }
    return UNET_OK;
}

/* ---- losses ------------------------------------------------------------------------- */

/* Class id of a softmax CE / multi-class Dice target value, or -1 when it is not one. */
static int class_id(float t, int k)
{
    if (!(t >= 0.0f) || t >= (float)k || t != floorf(t))
        return -1;
    return (int)t;
}

static UnetStatus ref_loss_forward_backward(UnetBackend *be, UnetTensor *loss, UnetTensor *dlogits,
                                            const UnetTensor *logits, const UnetTensor *target,
                                            const UnetTensor *weight, const float *class_weight,
                                            UnetLossKind kind, float grad_scale)
{
    const char *op = "loss_forward_backward";
    TRY(present(be, op, "logits", logits));
    const int N = logits->n, K = logits->c, H = logits->h, W = logits->w;
    TRY(expect(be, op, "loss", loss, 1, 1, 1, 1));
    TRY(expect(be, op, "target", target, N, 1, H, W));
    if (weight)
        TRY(expect(be, op, "pixel weight", weight, N, 1, H, W));
    if (dlogits)
        TRY(same_shape(be, op, "dlogits", dlogits, logits));
    if (kind == UNET_LOSS_BCE && K != 1)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: BCE needs one logit channel, logits are %s", op,
                              shape_str(logits).s);
    if (kind == UNET_LOSS_SOFTMAX_CE && K < 2)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s: softmax cross-entropy needs at least 2 classes, logits are %s",
                              op, shape_str(logits).s);
    if (kind != UNET_LOSS_BCE && kind != UNET_LOSS_SOFTMAX_CE && kind != UNET_LOSS_DICE)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "%s: unknown loss kind %d", op,
                              (int)kind);
    const size_t plane = (size_t)H * (size_t)W;
    if (K > 1)
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < plane; i++) {
                float t = target->data[(size_t)n * plane + i];
                if (class_id(t, K) < 0)
                    return unet_error_set(&be->error, UNET_ERR_INVALID,
                                          "%s: target value %g at image %d pixel (%zu,%zu) is not "
                                          "a class id in 0..%d",
                                          op, (double)t, n, i / (size_t)W, i % (size_t)W, K - 1);
            }

    /* Per-class sums (Dice) and per-pixel scratch (softmax Dice gradient). */
    double *sums = NULL;
    float *scratch = NULL;
    if (kind == UNET_LOSS_DICE) {
        sums = malloc(3 * (size_t)K * sizeof(double));
        scratch = malloc(2 * (size_t)K * sizeof(float));
        if (!sums || !scratch) {
            free(sums);
            free(scratch);
            return no_memory(be, op,
                             3 * (size_t)K * sizeof(double) + 2 * (size_t)K * sizeof(float));
        }
    }

    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = &logits->data[at(logits, n, 0, 0, 0)];
        const float *t = &target->data[(size_t)n * plane];
        const float *w = weight ? &weight->data[(size_t)n * plane] : NULL;
        float *d = dlogits ? &dlogits->data[at(dlogits, n, 0, 0, 0)] : NULL;

        if (kind == UNET_LOSS_BCE || kind == UNET_LOSS_SOFTMAX_CE) {
            double sw = 0.0, sl = 0.0;
            for (size_t i = 0; i < plane; i++) {
                double wi = w ? w[i] : 1.0;
                double li;
                if (kind == UNET_LOSS_BCE) {
                    li = unet_k_bce_with_logits(x[i], t[i]);
                } else {
                    int ti = class_id(t[i], K);
                    float m, s;
                    unet_k_softmax_stats(x + i, K, plane, &m, &s);
                    li = (double)(class_weight ? class_weight[ti] : 1.0f) *
                         unet_k_softmax_ce(x[(size_t)ti * plane + i], m, s);
                }
                sw += wi;
                sl += wi * li;
            }
            /* An image whose weights sum to zero contributes 0 (and no gradient). */
            if (sw > 0.0)
                total += sl / sw;
            if (!d)
                continue;
            const float coef = sw > 0.0 ? (float)((double)grad_scale / ((double)N * sw)) : 0.0f;
            for (size_t i = 0; i < plane; i++) {
                float wi = (w ? w[i] : 1.0f) * coef;
                if (kind == UNET_LOSS_BCE) {
                    d[i] = wi * unet_k_bce_with_logits_grad(x[i], t[i]);
                } else {
                    int ti = class_id(t[i], K);
                    float m, s;
                    unet_k_softmax_stats(x + i, K, plane, &m, &s);
                    float cw = class_weight ? class_weight[ti] : 1.0f;
                    for (int c = 0; c < K; c++)
                        d[(size_t)c * plane + i] =
                            wi * cw *
                            unet_k_softmax_ce_grad(x[(size_t)c * plane + i], m, s, c == ti);
                }
            }
            continue;
        }

        /* Soft Dice: probabilities by sigmoid (K == 1, target in [0,1]) or
         * softmax (K > 1, one-hot of the class id); one Dice per class. */
        double *inter = sums, *psum = sums + K, *tsum = sums + 2 * K;
        for (int c = 0; c < 3 * K; c++)
            sums[c] = 0.0;
        for (size_t i = 0; i < plane; i++) {
            double wi = w ? w[i] : 1.0;
            if (K == 1) {
                double p = unet_k_sigmoid(x[i]);
                inter[0] += wi * p * t[i];
                psum[0] += wi * p;
                tsum[0] += wi * t[i];
            } else {
                int ti = class_id(t[i], K);
                float m, s;
                unet_k_softmax_stats(x + i, K, plane, &m, &s);
                for (int c = 0; c < K; c++) {
                    double p = unet_k_softmax_prob(x[(size_t)c * plane + i], m, s);
                    psum[c] += wi * p;
                    if (c == ti) {
                        inter[c] += wi * p;
                        tsum[c] += wi;
                    }
                }
            }
        }
        double image_loss = 0.0;
        for (int c = 0; c < K; c++)
            image_loss +=
                unet_k_dice_loss((float)inter[c], (float)psum[c], (float)tsum[c], UNET_DICE_SMOOTH);
        total += image_loss / K;
        if (!d)
            continue;
        const float coef = (float)((double)grad_scale / ((double)N * (double)K));
        for (size_t i = 0; i < plane; i++) {
            float wi = w ? w[i] : 1.0f;
            if (K == 1) {
                float p = unet_k_sigmoid(x[i]);
                float g = unet_k_dice_grad(t[i], wi, (float)inter[0], (float)psum[0],
                                           (float)tsum[0], UNET_DICE_SMOOTH);
                d[i] = unet_k_sigmoid_grad(coef * g, p);
            } else {
                /* Through the softmax: dx_j = p_j * (g_j - sum_c g_c p_c). */
                int ti = class_id(t[i], K);
                float m, s;
                unet_k_softmax_stats(x + i, K, plane, &m, &s);
                float *p = scratch, *g = scratch + K;
                double gp = 0.0;
                for (int c = 0; c < K; c++) {
                    p[c] = unet_k_softmax_prob(x[(size_t)c * plane + i], m, s);
                    g[c] = unet_k_dice_grad(c == ti ? 1.0f : 0.0f, wi, (float)inter[c],
                                            (float)psum[c], (float)tsum[c], UNET_DICE_SMOOTH);
                    gp += (double)g[c] * p[c];
                }
                for (int c = 0; c < K; c++)
                    d[(size_t)c * plane + i] = coef * p[c] * (g[c] - (float)gp);
            }
        }
    }
    free(sums);
    free(scratch);
    loss->data[0] = (float)(total / N);
    return UNET_OK;
}

/* ---- optimizers --------------------------------------------------------------------- */

static UnetStatus ref_sgd_update(UnetBackend *be, float *param, const float *grad,
                                 float *momentum_buf, size_t count, const UnetOptimizerStep *s)
{
    if (!s || (count && (!param || !grad)))
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "sgd_update: parameter, gradient or step settings missing");
    if (s->momentum != 0.0f && !momentum_buf && count)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "sgd_update: momentum %g needs a momentum buffer",
                              (double)s->momentum);
    float dummy = 0.0f;
    for (size_t i = 0; i < count; i++)
        param[i] = unet_k_sgd(param[i], grad[i], momentum_buf ? &momentum_buf[i] : &dummy, s->lr,
                              s->momentum, s->nesterov, s->weight_decay);
    return UNET_OK;
}

static UnetStatus ref_adam_update(UnetBackend *be, float *param, const float *grad, float *m,
                                  float *v, size_t count, const UnetOptimizerStep *s)
{
    if (!s || (count && (!param || !grad || !m || !v)))
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "adam_update: parameter, gradient, moment buffers or step settings "
                              "missing");
    if (s->step < 1)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "adam_update: step %lld must be >= 1 (bias correction)",
                              (long long)s->step);
    const float bc1 = (float)(1.0 - pow((double)s->beta1, (double)s->step));
    const float bc2 = (float)(1.0 - pow((double)s->beta2, (double)s->step));
    for (size_t i = 0; i < count; i++)
        param[i] = unet_k_adam(param[i], grad[i], &m[i], &v[i], s->lr, s->beta1, s->beta2, s->eps,
                               s->weight_decay, s->decoupled_decay, bc1, bc2);
    return UNET_OK;
}

/* ---- construction -------------------------------------------------------------------- */

UnetBackend *unet_backend_reference_new(UnetError *err)
{
    UnetBackend *be = calloc(1, sizeof *be);
    if (!be) {
        unet_error_set(err, UNET_ERR_NOMEM, "cannot allocate the reference backend");
        return NULL;
    }
    be->name = "reference";
    be->destroy = ref_destroy;
    be->buffer_alloc = ref_buffer_alloc;
    be->buffer_free = ref_buffer_free;
    be->buffer_fill = ref_buffer_fill;
    be->buffer_upload = ref_buffer_upload;
    be->buffer_download = ref_buffer_download;
    be->tensor_init = ref_tensor_init;
    be->tensor_view = ref_tensor_view;
    be->tensor_release = ref_tensor_release;
    be->tensor_upload = ref_tensor_upload;
    be->tensor_download = ref_tensor_download;
    be->tensor_fill = ref_tensor_fill;
    be->synchronize = ref_synchronize;
    be->read_begin = unet_backend_host_read_begin;
    be->read_end = unet_backend_host_read_end;
    be->conv2d_forward = ref_conv2d_forward;
    be->conv2d_backward = ref_conv2d_backward;
    be->upconv2x2_forward = ref_upconv2x2_forward;
    be->upconv2x2_backward = ref_upconv2x2_backward;
    be->maxpool2x2_forward = ref_maxpool2x2_forward;
    be->maxpool2x2_backward = ref_maxpool2x2_backward;
    be->upsample2x_forward = ref_upsample2x_forward;
    be->upsample2x_backward = ref_upsample2x_backward;
    be->resize_bilinear_forward = ref_resize_bilinear_forward;
    be->resize_bilinear_backward = ref_resize_bilinear_backward;
    be->crop_concat_forward = ref_crop_concat_forward;
    be->crop_concat_backward = ref_crop_concat_backward;
    be->activation_forward = ref_activation_forward;
    be->activation_backward = ref_activation_backward;
    be->sigmoid_forward = ref_sigmoid_forward;
    be->softmax_forward = ref_softmax_forward;
    be->batchnorm_forward = ref_batchnorm_forward;
    be->batchnorm_backward = ref_batchnorm_backward;
    be->instancenorm_forward = ref_instancenorm_forward;
    be->instancenorm_backward = ref_instancenorm_backward;
    be->loss_forward_backward = ref_loss_forward_backward;
    be->sgd_update = ref_sgd_update;
    be->adam_update = ref_adam_update;
    return be;
}
