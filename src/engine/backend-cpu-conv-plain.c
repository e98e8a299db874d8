/* backend-cpu-conv-plain.c - the CPU backend's convolutions for builds
 * without oneDNN (-Ddnnl=disabled): direct loops over plain NCHW, threaded
 * over output planes, the innermost loop running along an image row so the
 * compiler vectorises it. Every tensor stays plain (block 0); this is a
 * correct, moderately fast fallback, several times slower than oneDNN. */
#include "backend-cpu-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same_shape(const UnetTensor *a, int n, int c, int h, int w)
{
    return a && a->n == n && a->c == c && a->h == h && a->w == w;
}

static UnetStatus check_plain(UnetBackend *be, const char *op, const UnetTensor *const *ts, int n)
{
    for (int i = 0; i < n; i++)
        if (ts[i] && ts[i]->layout != 0)
            return cpu_shape_error(be, op, "tensor %d has private layout %d", i, ts[i]->layout);
    return UNET_OK;
}

static UnetStatus check_conv(UnetBackend *be, const char *op, const UnetTensor *y,
                             const UnetTensor *x, const UnetTensor *w, const UnetTensor *b,
                             const UnetConvDesc *d)
{
    char sx[64], sy[64], sw[64];
    if (!x || !y || !w || !d)
        return cpu_shape_error(be, op, "a required tensor or the descriptor is missing");
    if (d->kernel < 1 || d->stride < 1 || d->pad < 0 || d->pad >= d->kernel)
        return cpu_shape_error(be, op, "kernel %d, stride %d, pad %d is not a valid convolution",
                               d->kernel, d->stride, d->pad);
    int ho = unet_conv_out_size(x->h, d), wo = unet_conv_out_size(x->w, d);
    if (ho < 1 || wo < 1)
        return cpu_shape_error(be, op, "input %s is smaller than the %dx%d kernel",
                               cpu_shape_str(x, sx, sizeof sx), d->kernel, d->kernel);
    if (!same_shape(w, y->c, x->c, d->kernel, d->kernel) || !same_shape(y, x->n, y->c, ho, wo))
        return cpu_shape_error(be, op, "x %s, w %s, y %s do not fit a %dx%d stride %d pad %d "
                               "convolution (want w [Co,%d,%d,%d], y [%d,Co,%d,%d])",
                               cpu_shape_str(x, sx, sizeof sx), cpu_shape_str(w, sw, sizeof sw),
                               cpu_shape_str(y, sy, sizeof sy), d->kernel, d->kernel, d->stride,
                               d->pad, x->c, d->kernel, d->kernel, x->n, ho, wo);
    if (b && unet_tensor_numel(b) != (size_t)y->c)
        return cpu_shape_error(be, op, "bias has %zu values for %d output channels",
                               unet_tensor_numel(b), y->c);
    return UNET_OK;
}

static UnetStatus check_upconv(UnetBackend *be, const char *op, const UnetTensor *y,
                               const UnetTensor *x, const UnetTensor *w, const UnetTensor *b)
{
    char sx[64], sy[64], sw[64];
    if (!x || !y || !w)
        return cpu_shape_error(be, op, "a required tensor is missing");
    if (!same_shape(w, x->c, y->c, 2, 2) || !same_shape(y, x->n, y->c, 2 * x->h, 2 * x->w))
        return cpu_shape_error(be, op, "x %s, w %s, y %s do not fit a 2x2 stride-2 transposed "
                               "convolution (want w [%d,Co,2,2], y [%d,Co,%d,%d])",
                               cpu_shape_str(x, sx, sizeof sx), cpu_shape_str(w, sw, sizeof sw),
                               cpu_shape_str(y, sy, sizeof sy), x->c, x->n, 2 * x->h, 2 * x->w);
    if (b && unet_tensor_numel(b) != (size_t)y->c)
        return cpu_shape_error(be, op, "bias has %zu values for %d output channels",
                               unet_tensor_numel(b), y->c);
    return UNET_OK;
}

static UnetStatus check_grads(UnetBackend *be, const char *op, const UnetTensor *dx,
                              const UnetTensor *dw, const UnetTensor *db, const UnetTensor *x,
                              const UnetTensor *w, int co)
{
    char s1[64], s2[64];
    if (dx && !same_shape(dx, x->n, x->c, x->h, x->w))
        return cpu_shape_error(be, op, "dx %s differs from x %s", cpu_shape_str(dx, s1, sizeof s1),
                               cpu_shape_str(x, s2, sizeof s2));
    if (dw && unet_tensor_numel(dw) != unet_tensor_numel(w))
        return cpu_shape_error(be, op, "dw %s differs from w %s", cpu_shape_str(dw, s1, sizeof s1),
                               cpu_shape_str(w, s2, sizeof s2));
    if (db && unet_tensor_numel(db) != (size_t)co)
        return cpu_shape_error(be, op, "db has %zu values for %d output channels",
                               unet_tensor_numel(db), co);
    return UNET_OK;
}

/* Output columns ox with 0 <= ox*s + kx - pad < W: [*lo, *hi). */
static void col_range(int W, int Wo, int s, int kx, int pad, int *lo, int *hi)
{
    int a = pad - kx; /* first ox with ox*s >= a */
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    int b = W - 1 + pad - kx; /* last ox with ox*s <= b */
    *hi = b < 0 ? 0 : b / s + 1;
    if (*hi > Wo)
        *hi = Wo;
    if (*lo > *hi)
        *lo = *hi;
}

UnetStatus cpu_conv2d_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                              const UnetTensor *w, const UnetTensor *b, const UnetConvDesc *d)
{
    static const char op[] = "conv2d_forward";
    UnetStatus st = check_conv(be, op, y, x, w, b, d);
    const UnetTensor *ts[] = { y, x, w, b };
    if (st == UNET_OK)
        st = check_plain(be, op, ts, 4);
    if (st != UNET_OK)
        return st;
    CpuBackend *cpu = cpu_impl(be);
    const int N = x->n, Ci = x->c, H = x->h, W = x->w, Co = y->c, Ho = y->h, Wo = y->w;
    const int K = d->kernel, S = d->stride, P = d->pad;
    const long planes = (long)N * Co;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(y) * (size_t)Ci * K * K);
    CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
    for (long pl = 0; pl < planes; pl++) {
        const int n = (int)(pl / Co), o = (int)(pl % Co);
        float *yp = y->data + (size_t)pl * Ho * Wo;
        const float bv = b ? b->data[o] : 0.0f;
        for (size_t i = 0; i < (size_t)Ho * Wo; i++)
            yp[i] = bv;
        for (int c = 0; c < Ci; c++) {
            const float *xp = x->data + ((size_t)n * Ci + c) * H * W;
            const float *wp = w->data + ((size_t)o * Ci + c) * K * K;
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++) {
                    const float wv = wp[ky * K + kx];
                    int lo, hi;
                    col_range(W, Wo, S, kx, P, &lo, &hi);
                    for (int oy = 0; oy < Ho; oy++) {
                        const int iy = oy * S + ky - P;
                        if (iy < 0 || iy >= H)
                            continue;
                        const long off = (long)iy * W + kx - P;
                        float *yr = yp + (size_t)oy * Wo;
                        if (S == 1) {
                            CPU_OMP("omp simd")
                            for (int ox = lo; ox < hi; ox++)
                                yr[ox] += wv * xp[off + ox];
                        } else {
                            for (int ox = lo; ox < hi; ox++)
                                yr[ox] += wv * xp[off + (long)ox * S];
                        }
                    }
                }
        }
    }
    return UNET_OK;
}

UnetStatus cpu_conv2d_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                               const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                               const UnetConvDesc *d, int accumulate)
{
    static const char op[] = "conv2d_backward";
    UnetStatus st = check_conv(be, op, dy, x, w, NULL, d);
    if (st == UNET_OK)
        st = check_grads(be, op, dx, dw, db, x, w, dy->c);
    const UnetTensor *ts[] = { dx, dw, db, dy, x, w };
    if (st == UNET_OK)
        st = check_plain(be, op, ts, 6);
    if (st != UNET_OK)
        return st;
    CpuBackend *cpu = cpu_impl(be);
    const int N = x->n, Ci = x->c, H = x->h, W = x->w, Co = dy->c, Ho = dy->h, Wo = dy->w;
    const int K = d->kernel, S = d->stride, P = d->pad;
    const size_t work = unet_tensor_numel(dy) * (size_t)Ci * K * K;
    const int nt = cpu_threads_for(cpu, work);
    if (dw || db) {
        /* one (o, c) weight plane per job: no two jobs add into one element */
        const long jobs = (long)Co * Ci;
        CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 4)")
        for (long j = 0; j < jobs; j++) {
            const int o = (int)(j / Ci), c = (int)(j % Ci);
            if (dw)
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        int lo, hi;
                        col_range(W, Wo, S, kx, P, &lo, &hi);
                        double acc = 0.0;
                        for (int n = 0; n < N; n++) {
                            const float *xp = x->data + ((size_t)n * Ci + c) * H * W;
                            const float *gp = dy->data + ((size_t)n * Co + o) * Ho * Wo;
                            for (int oy = 0; oy < Ho; oy++) {
                                const int iy = oy * S + ky - P;
                                if (iy < 0 || iy >= H)
                                    continue;
                                const long off = (long)iy * W + kx - P;
                                const float *gr = gp + (size_t)oy * Wo;
                                float row = 0.0f;
                                if (S == 1) {
                                    CPU_OMP("omp simd reduction(+:row)")
                                    for (int ox = lo; ox < hi; ox++)
                                        row += gr[ox] * xp[off + ox];
                                } else {
                                    for (int ox = lo; ox < hi; ox++)
                                        row += gr[ox] * xp[off + (long)ox * S];
                                }
                                acc += row;
                            }
                        }
                        dw->data[((size_t)o * Ci + c) * K * K + ky * K + kx] += (float)acc;
                    }
            if (db && c == 0) {
                double acc = 0.0;
                for (int n = 0; n < N; n++) {
                    const float *gp = dy->data + ((size_t)n * Co + o) * Ho * Wo;
                    for (size_t i = 0; i < (size_t)Ho * Wo; i++)
                        acc += gp[i];
                }
                db->data[o] += (float)acc;
            }
        }
    }
    if (dx) {
        const long planes = (long)N * Ci;
        CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
        for (long pl = 0; pl < planes; pl++) {
            const int n = (int)(pl / Ci), c = (int)(pl % Ci);
            float *dp = dx->data + (size_t)pl * H * W;
            if (!accumulate)
                memset(dp, 0, (size_t)H * W * sizeof(float));
            for (int o = 0; o < Co; o++) {
                const float *gp = dy->data + ((size_t)n * Co + o) * Ho * Wo;
                const float *wp = w->data + ((size_t)o * Ci + c) * K * K;
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        const float wv = wp[ky * K + kx];
                        int lo, hi;
                        col_range(W, Wo, S, kx, P, &lo, &hi);
                        for (int oy = 0; oy < Ho; oy++) {
                            const int iy = oy * S + ky - P;
                            if (iy < 0 || iy >= H)
                                continue;
                            const long off = (long)iy * W + kx - P;
                            const float *gr = gp + (size_t)oy * Wo;
                            if (S == 1) {
                                CPU_OMP("omp simd")
                                for (int ox = lo; ox < hi; ox++)
                                    dp[off + ox] += wv * gr[ox];
                            } else {
                                for (int ox = lo; ox < hi; ox++)
                                    dp[off + (long)ox * S] += wv * gr[ox];
                            }
                        }
                    }
            }
        }
    }
    return UNET_OK;
}

UnetStatus cpu_upconv2x2_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                 const UnetTensor *w, const UnetTensor *b)
{
    static const char op[] = "upconv2x2_forward";
    UnetStatus st = check_upconv(be, op, y, x, w, b);
    const UnetTensor *ts[] = { y, x, w, b };
    if (st == UNET_OK)
        st = check_plain(be, op, ts, 4);
    if (st != UNET_OK)
        return st;
    CpuBackend *cpu = cpu_impl(be);
    const int N = x->n, Ci = x->c, H = x->h, W = x->w, Co = y->c;
    const long planes = (long)N * Co;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(y) * (size_t)Ci);
    CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
    for (long pl = 0; pl < planes; pl++) {
        const int n = (int)(pl / Co), o = (int)(pl % Co);
        float *yp = y->data + (size_t)pl * 4 * H * W;
        const float bv = b ? b->data[o] : 0.0f;
        for (size_t i = 0; i < (size_t)4 * H * W; i++)
            yp[i] = bv;
        for (int c = 0; c < Ci; c++) {
            const float *xp = x->data + ((size_t)n * Ci + c) * H * W;
            const float *wp = w->data + ((size_t)c * Co + o) * 4;
            for (int iy = 0; iy < H; iy++)
                for (int a = 0; a < 2; a++) {
                    float *yr = yp + (size_t)(2 * iy + a) * 2 * W;
                    const float *xr = xp + (size_t)iy * W;
                    const float w0 = wp[2 * a], w1 = wp[2 * a + 1];
                    for (int ix = 0; ix < W; ix++) {
                        yr[2 * ix] += w0 * xr[ix];
                        yr[2 * ix + 1] += w1 * xr[ix];
                    }
                }
        }
    }
    return UNET_OK;
}

UnetStatus cpu_upconv2x2_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                                  const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                                  int accumulate)
{
    static const char op[] = "upconv2x2_backward";
    UnetStatus st = check_upconv(be, op, dy, x, w, NULL);
    if (st == UNET_OK)
        st = check_grads(be, op, dx, dw, db, x, w, dy->c);
    const UnetTensor *ts[] = { dx, dw, db, dy, x, w };
    if (st == UNET_OK)
        st = check_plain(be, op, ts, 6);
    if (st != UNET_OK)
        return st;
    CpuBackend *cpu = cpu_impl(be);
    const int N = x->n, Ci = x->c, H = x->h, W = x->w, Co = dy->c;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(dy) * (size_t)Ci);
    if (dw || db) {
        const long jobs = (long)Ci * Co;
        CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 4)")
        for (long j = 0; j < jobs; j++) {
            const int c = (int)(j / Co), o = (int)(j % Co);
            if (dw) {
                double acc[4] = { 0, 0, 0, 0 };
                for (int n = 0; n < N; n++) {
                    const float *xp = x->data + ((size_t)n * Ci + c) * H * W;
                    const float *gp = dy->data + ((size_t)n * Co + o) * 4 * H * W;
                    for (int iy = 0; iy < H; iy++)
                        for (int a = 0; a < 2; a++) {
                            const float *gr = gp + (size_t)(2 * iy + a) * 2 * W;
                            const float *xr = xp + (size_t)iy * W;
                            float s0 = 0.0f, s1 = 0.0f;
                            for (int ix = 0; ix < W; ix++) {
                                s0 += xr[ix] * gr[2 * ix];
                                s1 += xr[ix] * gr[2 * ix + 1];
                            }
                            acc[2 * a] += s0;
                            acc[2 * a + 1] += s1;
                        }
                }
                for (int k = 0; k < 4; k++)
                    dw->data[((size_t)c * Co + o) * 4 + k] += (float)acc[k];
            }
            if (db && c == 0) {
                double acc = 0.0;
                for (int n = 0; n < N; n++) {
                    const float *gp = dy->data + ((size_t)n * Co + o) * 4 * H * W;
                    for (size_t i = 0; i < (size_t)4 * H * W; i++)
                        acc += gp[i];
                }
                db->data[o] += (float)acc;
            }
        }
    }
    if (dx) {
        const long planes = (long)N * Ci;
        CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
        for (long pl = 0; pl < planes; pl++) {
            const int n = (int)(pl / Ci), c = (int)(pl % Ci);
            float *dp = dx->data + (size_t)pl * H * W;
            if (!accumulate)
                memset(dp, 0, (size_t)H * W * sizeof(float));
            for (int o = 0; o < Co; o++) {
                const float *gp = dy->data + ((size_t)n * Co + o) * 4 * H * W;
                const float *wp = w->data + ((size_t)c * Co + o) * 4;
                for (int iy = 0; iy < H; iy++) {
                    float *dr = dp + (size_t)iy * W;
                    const float *g0 = gp + (size_t)(2 * iy) * 2 * W, *g1 = g0 + 2 * W;
                    for (int ix = 0; ix < W; ix++)
                        dr[ix] += wp[0] * g0[2 * ix] + wp[1] * g0[2 * ix + 1] +
                                  wp[2] * g1[2 * ix] + wp[3] * g1[2 * ix + 1];
                }
            }
        }
    }
    return UNET_OK;
}

UnetStatus cpu_conv_init(UnetBackend *be, UnetError *err)
{
    (void)err;
    cpu_impl(be)->block = 0; /* every tensor plain */
    return UNET_OK;
}

void cpu_conv_destroy(UnetBackend *be)
{
    (void)be;
}
