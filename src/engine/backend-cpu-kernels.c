/* backend-cpu-kernels.c - hand-written kernels of the CPU backend for the
 * blocked layout: the 2x2 stride-2 up-convolution and the 1x1 head.
 *
 * The taps of this transposed convolution do not overlap, so its forward
 * is a matrix product per pixel, y[2i+a,2j+b,co] = sum_ci x[i,j,ci] *
 * w[ci,co,a,b], and its weight gradient a product summed over pixels.
 * Written here for the nChw16c / nChw8c layouts (a vector holds the B
 * channels of one pixel; an inner loop broadcasts one input value against a
 * few weight vectors into a tile of accumulators that stays in registers),
 * they run 0-20% faster than oneDNN's strided convolutions on the U-Net's
 * shapes, the weight gradient only on large images (backend-cpu-conv.c
 * picks); oneDNN keeps the backward-data pass, where it is as fast or
 * faster.
 *
 * The 1x1 head maps a blocked input to a few plain output channels (one or
 * K classes), which oneDNN computes only through padded 16-channel copies;
 * here it is a short dot product per pixel. Built with -ffp-contract=fast
 * so that the compiler fuses the multiply-adds. */
#include "backend-cpu-private.h"

#include <string.h>

/* The small loops over a register tile must unroll completely for the
 * accumulators to stay in registers. */
#define UNROLL _Pragma("GCC unroll 16")

/* Unaligned, aliasing-safe vector of B floats, and its loads/stores. */
#define DEFINE_VEC(B, ...)                                                              \
    typedef float vf##B __attribute__((vector_size(4 * (B))));                          \
    typedef float vf##B##u __attribute__((vector_size(4 * (B)), aligned(4), may_alias)); \
    static inline vf##B ld##B(const float *p)                                          \
    {                                                                                   \
        return *(const vf##B##u *)p;                                                    \
    }                                                                                   \
    static inline void st##B(float *p, vf##B v)                                        \
    {                                                                                   \
        *(vf##B##u *)p = v;                                                             \
    }                                                                                   \
    static inline vf##B bc##B(float s)                                                 \
    {                                                                                   \
        return (vf##B){ __VA_ARGS__ };                                                  \
    }

DEFINE_VEC(16, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s)
DEFINE_VEC(8, s, s, s, s, s, s, s, s)

/* ---- forward ------------------------------------------------------------
 * wp: [Co/B][Ci][4][B] (weights of output block cob, input channel ci, tap
 * a*2+b, output lanes). A job is one input row of one image and output
 * block; J pixels of the row at a time, 4 taps each: 4*J accumulators. */
#define DEFINE_FWD(B, J)                                                                     \
    static void up_fwd_row##B(float *y, const float *x, const float *wp, const float *bias,  \
                              int Ci, int H, int W, int n, int cob, int i)                   \
    {                                                                                        \
        const int CIB = Ci / (B);                                                            \
        const size_t plane = (size_t)H * W * (B);                                            \
        const float *xr = x + ((size_t)n * CIB * H + (size_t)i) * W * (B);                   \
        const float *w = wp + (size_t)cob * Ci * 4 * (B);                                    \
        float *y0 = y + (size_t)(2 * i) * 2 * W * (B); /* y: this image's block cob */      \
        float *y1 = y0 + (size_t)2 * W * (B);                                                \
        const vf##B bv = bias ? ld##B(bias + (size_t)cob * (B)) : bc##B(0.0f);               \
        /* J-pixel tiles; the last one overlaps its neighbour and stores only  \
         * its new pixels, so the register tile serves every pixel of a row    \
         * at least J wide */                                                  \
        int j0 = 0;                                                                          \
        for (int done = 0; W >= (J) && done < W; done = j0 + (J)) {                          \
            j0 = done + (J) <= W ? done : W - (J);                                           \
            const int skip = done - j0;                                                      \
            vf##B acc[J][4];                                                                 \
            UNROLL for (int jj = 0; jj < (J); jj++)                                                 \
                UNROLL for (int t = 0; t < 4; t++)                                                  \
                    acc[jj][t] = bv;                                                         \
            for (int cb = 0; cb < CIB; cb++) {                                               \
                const float *xp = xr + (size_t)cb * plane + (size_t)j0 * (B);                \
                const float *wc = w + (size_t)cb * (B) * 4 * (B);                            \
                for (int l = 0; l < (B); l++) {                                              \
                    const vf##B w0 = ld##B(wc + (size_t)(4 * l + 0) * (B));                  \
                    const vf##B w1 = ld##B(wc + (size_t)(4 * l + 1) * (B));                  \
                    const vf##B w2 = ld##B(wc + (size_t)(4 * l + 2) * (B));                  \
                    const vf##B w3 = ld##B(wc + (size_t)(4 * l + 3) * (B));                  \
                    UNROLL for (int jj = 0; jj < (J); jj++) {                                       \
                        const vf##B s = bc##B(xp[(size_t)jj * (B) + l]);                     \
                        acc[jj][0] += s * w0;                                                \
                        acc[jj][1] += s * w1;                                                \
                        acc[jj][2] += s * w2;                                                \
                        acc[jj][3] += s * w3;                                                \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
            UNROLL for (int jj = 0; jj < (J); jj++) {                                               \
                if (jj < skip)                                                               \
                    continue;                                                                \
                const size_t o = (size_t)(2 * (j0 + jj)) * (B);                              \
                st##B(y0 + o, acc[jj][0]);                                                   \
                st##B(y0 + o + (B), acc[jj][1]);                                             \
                st##B(y1 + o, acc[jj][2]);                                                   \
                st##B(y1 + o + (B), acc[jj][3]);                                             \
            }                                                                                \
        }                                                                                    \
        for (j0 = W >= (J) ? W : 0; j0 < W; j0++) {                                          \
            vf##B acc[4] = { bv, bv, bv, bv };                                               \
            for (int cb = 0; cb < CIB; cb++) {                                               \
                const float *xp = xr + (size_t)cb * plane + (size_t)j0 * (B);                \
                const float *wc = w + (size_t)cb * (B) * 4 * (B);                            \
                for (int l = 0; l < (B); l++) {                                              \
                    const vf##B s = bc##B(xp[l]);                                            \
                    UNROLL for (int t = 0; t < 4; t++)                                              \
                        acc[t] += s * ld##B(wc + (size_t)(4 * l + t) * (B));                 \
                }                                                                            \
            }                                                                                \
            const size_t o = (size_t)(2 * j0) * (B);                                         \
            st##B(y0 + o, acc[0]);                                                           \
            st##B(y0 + o + (B), acc[1]);                                                     \
            st##B(y1 + o, acc[2]);                                                           \
            st##B(y1 + o + (B), acc[3]);                                                     \
        }                                                                                    \
    }

DEFINE_FWD(16, 6)
DEFINE_FWD(8, 3)

/* ---- backward-weights ---------------------------------------------------
 * dwp: [Co/B][Ci][4][B] sums, the layout of wp. A job is one output block
 * cob and a range of input channels over all images; per row of x, the dy
 * rows of cob stay in cache while each tile of T input channels runs its
 * 4*T accumulators along the row (kept in dwp between rows). */
#define DEFINE_BWW(B, T)                                                                      \
    static void up_bww_job##B(float *dwp, const float *x, const float *dy, int N, int Ci,     \
                              int Co, int H, int W, int cob, int c0, int c1)                  \
    {                                                                                         \
        const int COB = Co / (B), CIB = Ci / (B);                                             \
        float *dwb = dwp + ((size_t)cob * Ci + c0) * 4 * (B);                                 \
        memset(dwb, 0, (size_t)(c1 - c0) * 4 * (B) * sizeof(float));                         \
        for (int n = 0; n < N; n++)                                                           \
            for (int i = 0; i < H; i++) {                                                     \
                const float *r0 = dy + (((size_t)n * COB + cob) * 2 * H + (size_t)2 * i) * 2  \
                                           * W * (B);                                         \
                const float *r1 = r0 + (size_t)2 * W * (B);                                   \
                for (int ci0 = c0; ci0 < c1; ci0 += (T)) {                                    \
                    const int nt = c1 - ci0 < (T) ? c1 - ci0 : (T);                           \
                    float *d = dwp + ((size_t)cob * Ci + ci0) * 4 * (B);                      \
                    vf##B acc[T][4];                                                          \
                    const float *xs[T];                                                       \
                    UNROLL for (int tt = 0; tt < (T); tt++) {                                        \
                        const int ci = ci0 + (tt < nt ? tt : 0);                              \
                        xs[tt] = x + (((size_t)n * CIB + ci / (B)) * H + (size_t)i) * W * (B) \
                                 + ci % (B);                                                  \
                        UNROLL for (int t = 0; t < 4; t++)                                           \
                            acc[tt][t] = tt < nt ? ld##B(d + (size_t)(4 * tt + t) * (B))      \
                                                 : bc##B(0.0f);                               \
                    }                                                                         \
                    for (int j = 0; j < W; j++) {                                             \
                        const size_t o = (size_t)(2 * j) * (B);                               \
                        const vf##B d0 = ld##B(r0 + o), d1 = ld##B(r0 + o + (B));             \
                        const vf##B d2 = ld##B(r1 + o), d3 = ld##B(r1 + o + (B));             \
                        UNROLL for (int tt = 0; tt < (T); tt++) {                                    \
                            const vf##B s = bc##B(xs[tt][(size_t)j * (B)]);                   \
                            acc[tt][0] += s * d0;                                             \
                            acc[tt][1] += s * d1;                                             \
                            acc[tt][2] += s * d2;                                             \
                            acc[tt][3] += s * d3;                                             \
                        }                                                                     \
                    }                                                                         \
                    for (int tt = 0; tt < nt; tt++)                                           \
                        UNROLL for (int t = 0; t < 4; t++)                                           \
                            st##B(d + (size_t)(4 * tt + t) * (B), acc[tt][t]);                \
                }                                                                             \
            }                                                                                 \
    }

DEFINE_BWW(16, 6)
DEFINE_BWW(8, 3)

/* ---- drivers ------------------------------------------------------------- */

void cpu_upconv_blocked_forward(CpuBackend *cpu, UnetTensor *y, const UnetTensor *x,
                                const float *w, const float *bias, float *wp)
{
    const int B = cpu_block_of(x), Ci = x->c, Co = y->c, H = x->h, W = x->w, N = x->n;
    const int COB = Co / B;
    /* [Ci][Co][4] -> [Co/B][Ci][4][B] */
    const int nw = cpu_threads_for(cpu, (size_t)Ci * Co * 4);
    CPU_OMP("omp parallel for num_threads(nw) schedule(static)")
    for (int ci = 0; ci < Ci; ci++)
        for (int co = 0; co < Co; co++)
            UNROLL for (int t = 0; t < 4; t++)
                wp[(((size_t)(co / B) * Ci + ci) * 4 + t) * B + co % B] =
                    w[((size_t)ci * Co + co) * 4 + t];
    const long jobs = (long)N * COB * H;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(y) * (size_t)Ci / 16);
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long job = 0; job < jobs; job++) {
        const int n = (int)(job / ((long)COB * H)), cob = (int)(job / H % COB), i = (int)(job % H);
        /* y of image n, output block cob */
        float *yb = y->data + ((size_t)n * COB + cob) * (size_t)4 * H * W * B;
        if (B == 16)
            up_fwd_row16(yb, x->data, wp, bias, Ci, H, W, n, cob, i);
        else
            up_fwd_row8(yb, x->data, wp, bias, Ci, H, W, n, cob, i);
    }
}

void cpu_upconv_blocked_backward_weights(CpuBackend *cpu, float *dw, const UnetTensor *x,
                                         const UnetTensor *dy, float *dwp)
{
    const int B = cpu_block_of(x), Ci = x->c, Co = dy->c, H = x->h, W = x->w, N = x->n;
    const int COB = Co / B;
    /* input channels split in parts of whole tiles so both threads have work
     * when there are few output blocks */
    const int T = B == 16 ? 6 : 3, parts = COB >= 2 * cpu->threads ? 1 : 2 * cpu->threads;
    const int per = ((Ci + parts - 1) / parts + T - 1) / T * T;
    const long jobs = (long)COB * parts;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(dy) * (size_t)Ci / 16);
    CPU_OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
    for (long job = 0; job < jobs; job++) {
        const int cob = (int)(job / parts), c0 = (int)(job % parts) * per;
        const int c1 = c0 + per < Ci ? c0 + per : Ci;
        if (c0 >= c1)
            continue;
        if (B == 16)
            up_bww_job16(dwp, x->data, dy->data, N, Ci, Co, H, W, cob, c0, c1);
        else
            up_bww_job8(dwp, x->data, dy->data, N, Ci, Co, H, W, cob, c0, c1);
    }
    /* [Co/B][Ci][4][B] -> += [Ci][Co][4] */
    const int nw = cpu_threads_for(cpu, (size_t)Ci * Co * 4);
    CPU_OMP("omp parallel for num_threads(nw) schedule(static)")
    for (int ci = 0; ci < Ci; ci++)
        for (int co = 0; co < Co; co++)
            UNROLL for (int t = 0; t < 4; t++)
                dw[((size_t)ci * Co + co) * 4 + t] +=
                    dwp[(((size_t)(co / B) * Ci + ci) * 4 + t) * B + co % B];
}

/* ---- 1x1 head: blocked x [N,Ci,H,W] to plain y [N,Co,H,W] ----------------
 * Co is small (a head's classes), so each pixel keeps Co vectors of B
 * partial sums over the input blocks and folds them at the end. */
#define HEAD_MAX_CO CPU_HEAD_MAX_CO
#define HEAD_MAX_CI CPU_HEAD_MAX_CI

void cpu_head_forward(CpuBackend *cpu, UnetTensor *y, const UnetTensor *x, const float *w,
                      const float *bias)
{
    const int B = cpu_block_of(x), CIB = x->c / B, Ci = x->c, Co = y->c;
    const size_t P = (size_t)x->h * x->w;
    const long rows = (long)x->n * x->h;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(x));
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / x->h);
        const size_t p0 = (size_t)(r % x->h) * x->w;
        for (size_t p = p0; p < p0 + (size_t)x->w; p++) {
            float acc[HEAD_MAX_CO][16];
            for (int o = 0; o < Co; o++)
                for (int l = 0; l < B; l++)
                    acc[o][l] = 0.0f;
            for (int cb = 0; cb < CIB; cb++) {
                const float *xv = x->data + (((size_t)n * CIB + cb) * P + p) * B;
                for (int o = 0; o < Co; o++) {
                    const float *wv = w + (size_t)o * Ci + (size_t)cb * B;
                    CPU_OMP("omp simd")
                    for (int l = 0; l < B; l++)
                        acc[o][l] += wv[l] * xv[l];
                }
            }
            for (int o = 0; o < Co; o++) {
                float sum = bias ? bias[o] : 0.0f;
                for (int l = 0; l < B; l++)
                    sum += acc[o][l];
                y->data[((size_t)n * Co + o) * P + p] = sum;
            }
        }
    }
}

/* dx[c] = sum_o w[o,c] dy[o] per pixel (added when accumulate): one vector
 * of B input channels at a time. */
#define DEFINE_HEAD_BWD(B)                                                                    \
    static void head_bwd_row##B(float *dx, const float *dy, const float *w, int Ci, int Co,  \
                                size_t P, int n, size_t p0, int len, int accumulate)          \
    {                                                                                         \
        const int CIB = Ci / (B);                                                             \
        for (size_t p = p0; p < p0 + (size_t)len; p++) {                                      \
            vf##B g[CPU_HEAD_MAX_CO];                                                         \
            for (int o = 0; o < Co; o++)                                                      \
                g[o] = bc##B(dy[((size_t)n * Co + o) * P + p]);                               \
            for (int cb = 0; cb < CIB; cb++) {                                                \
                float *d = dx + (((size_t)n * CIB + cb) * P + p) * (B);                       \
                vf##B v = accumulate ? ld##B(d) : bc##B(0.0f);                                \
                for (int o = 0; o < Co; o++)                                                  \
                    v += g[o] * ld##B(w + (size_t)o * Ci + (size_t)cb * (B));                 \
                st##B(d, v);                                                                  \
            }                                                                                 \
        }                                                                                     \
    }

DEFINE_HEAD_BWD(16)
DEFINE_HEAD_BWD(8)

void cpu_head_backward_data(CpuBackend *cpu, UnetTensor *dx, const UnetTensor *dy,
                            const float *w, int accumulate)
{
    const int B = cpu_block_of(dx);
    const size_t P = (size_t)dx->h * dx->w;
    const long rows = (long)dx->n * dx->h;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(dx));
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / dx->h);
        const size_t p0 = (size_t)(r % dx->h) * dx->w;
        if (B == 16)
            head_bwd_row16(dx->data, dy->data, w, dx->c, dy->c, P, n, p0, dx->w, accumulate);
        else
            head_bwd_row8(dx->data, dy->data, w, dx->c, dy->c, P, n, p0, dx->w, accumulate);
    }
}

/* dw[o,c] += sum over pixels of x[c] dy[o], db[o] += sum dy[o]: float sums
 * along a row, double across rows, one partial table per thread merged in
 * thread order. part: threads * Co * (Ci + 1) doubles. */
void cpu_head_backward_weights(CpuBackend *cpu, float *dw, float *db, const UnetTensor *x,
                               const UnetTensor *dy, double *part)
{
    const int B = cpu_block_of(x), CIB = x->c / B, Ci = x->c, Co = dy->c;
    const size_t P = (size_t)x->h * x->w, stride = (size_t)Co * (Ci + 1);
    const long rows = (long)x->n * x->h;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(x));
    memset(part, 0, (size_t)cpu->threads * stride * sizeof(double));
    CPU_OMP("omp parallel num_threads(nt)")
    {
#ifdef _OPENMP
        double *acc = part + (size_t)omp_get_thread_num() * stride;
#else
        double *acc = part;
#endif
        float row[HEAD_MAX_CO][HEAD_MAX_CI + 1];
        CPU_OMP("omp for schedule(static)")
        for (long r = 0; r < rows; r++) {
            const int n = (int)(r / x->h);
            const size_t p0 = (size_t)(r % x->h) * x->w;
            for (int o = 0; o < Co; o++)
                for (int c = 0; c <= Ci; c++)
                    row[o][c] = 0.0f;
            for (size_t p = p0; p < p0 + (size_t)x->w; p++)
                for (int o = 0; o < Co; o++) {
                    const float g = dy->data[((size_t)n * Co + o) * P + p];
                    row[o][Ci] += g;
                    for (int cb = 0; cb < CIB; cb++) {
                        const float *xv = x->data + (((size_t)n * CIB + cb) * P + p) * B;
                        float *rv = &row[o][cb * B];
                        CPU_OMP("omp simd")
                        for (int l = 0; l < B; l++)
                            rv[l] += g * xv[l];
                    }
                }
            for (int o = 0; o < Co; o++)
                for (int c = 0; c <= Ci; c++)
                    acc[(size_t)o * (Ci + 1) + c] += row[o][c];
        }
    }
    for (int t = 1; t < cpu->threads; t++)
        for (size_t k = 0; k < stride; k++)
            part[k] += part[(size_t)t * stride + k];
    for (int o = 0; o < Co; o++) {
        const double *a = part + (size_t)o * (Ci + 1);
        for (int c = 0; c < Ci; c++)
            dw[(size_t)o * Ci + c] += (float)a[c];
        if (db)
            db[o] += (float)a[Ci];
    }
}
