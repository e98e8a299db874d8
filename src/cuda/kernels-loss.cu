// kernels-loss.cu - the three losses (BCE, softmax cross-entropy, soft Dice) and their gradients.
//
// Reduction: per image sum(w * loss) / sum(w) (BCE, CE; the class weight of a
// pixel's target multiplies w) or 1 - mean over classes of the weighted soft
// Dice; then the mean over the batch. Three launches: per-image partial sums
// (double), a one-block finish that writes the loss and per-image
// coefficients, and the per-pixel gradient. Pixels whose class id is not in
// 0..K-1 are ignored (weight 0).
#include <float.h>
#include <math.h>

#include "backend.h"
#include "cuda-common.cuh"
#include "kernels.h"

// Dice over K > 1 classes uses softmax probabilities, over 1 class sigmoid.
static inline int unet_loss_values(int kind)
{
    return kind == UNET_LOSS_DICE ? 3 : 2;
}

__host__ __device__ static inline int unet_loss_planes(int kind, int k)
{
    return kind == UNET_LOSS_DICE ? k : 1;
}

// log(sum(exp(x_k))) over the k channels of one pixel (xp[k * hw]).
__device__ __forceinline__ float unet_logsumexp(const float *xp, int k, size_t hw)
{
    float m = -FLT_MAX;
    for (int j = 0; j < k; j++)
        m = fmaxf(m, xp[(size_t)j * hw]);
    float sum = 0.0f;
    for (int j = 0; j < k; j++)
        sum += expf(xp[(size_t)j * hw] - m);
    return m + logf(sum);
}

// grid (chunks, n, planes): partial sums of one image (and class, for Dice).
__global__ void unet_loss_partial_kernel(double *partial, const float *logits, const float *target,
                                         const float *weight, const float *class_weight, int kind,
                                         int k, size_t hw)
{
    const int chunk = blockIdx.x, chunks = gridDim.x, img = blockIdx.y, cls = blockIdx.z;
    const float *x = logits + (size_t)img * k * hw;
    const float *t = target + (size_t)img * hw;
    const float *wp = weight ? weight + (size_t)img * hw : NULL;
    size_t lo, hi;
    unet_chunk_range(hw, chunk, chunks, &lo, &hi);
    double v[3] = { 0.0, 0.0, 0.0 };
    for (size_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        float w = wp ? wp[i] : 1.0f;
        if (kind == UNET_LOSS_BCE) {
            v[0] += (double)(w * unet_k_bce_with_logits(x[i], t[i]));
            v[1] += w;
        } else if (kind == UNET_LOSS_SOFTMAX_CE) {
            int id = unet_k_class_id(t[i], k);
            if (id < 0)
                continue;
            w *= class_weight ? class_weight[id] : 1.0f;
            float lse = unet_logsumexp(x + i, k, hw);
            v[0] += (double)(w * unet_k_softmax_ce(x[(size_t)id * hw + i], lse));
            v[1] += w;
        } else {
            float p, tv;
            if (k == 1) {
                p = unet_k_sigmoid(x[i]);
                tv = t[i];
            } else {
                int id = unet_k_class_id(t[i], k);
                if (id < 0)
                    continue;
                p = expf(x[(size_t)cls * hw + i] - unet_logsumexp(x + i, k, hw));
                tv = id == cls ? 1.0f : 0.0f;
            }
            v[0] += (double)(w * p * tv);
            v[1] += (double)(w * p);
            v[2] += (double)(w * tv);
        }
    }
    unet_block_sum<3>(v);
    if (threadIdx.x == 0) {
        const int nv = kind == UNET_LOSS_DICE ? 3 : 2;
        size_t at = (((size_t)img * gridDim.z + cls) * chunks + chunk) * nv;
        for (int j = 0; j < nv; j++)
            partial[at + j] = v[j];
    }
}

// Float region after the partials: per image loss [n], coefficient [n],
// Dice sums inter/psum/tsum [n * planes * 3].
struct UnetLossTerms {
    float *image_loss, *coef, *dice;
};

__host__ __device__ static inline UnetLossTerms unet_loss_terms(double *scratch, int kind, int n,
                                                                int k, int chunks)
{
    int planes = unet_loss_planes(kind, k), nv = kind == UNET_LOSS_DICE ? 3 : 2;
    float *f = (float *)(scratch + (size_t)n * planes * chunks * nv);
    UnetLossTerms t;
    t.image_loss = f;
    t.coef = f + n;
    t.dice = f + 2 * (size_t)n;
    return t;
}

__global__ void unet_loss_finish_kernel(float *loss, double *scratch, int kind, int n, int k,
                                        int chunks, float grad_scale)
{
    const int planes = unet_loss_planes(kind, k), nv = kind == UNET_LOSS_DICE ? 3 : 2;
    const UnetLossTerms terms = unet_loss_terms(scratch, kind, n, k, chunks);
    for (int img = threadIdx.x; img < n; img += blockDim.x) {
        if (kind != UNET_LOSS_DICE) {
            double s0 = 0.0, s1 = 0.0;
            for (int j = 0; j < chunks; j++) {
                s0 += scratch[((size_t)img * chunks + j) * 2 + 0];
                s1 += scratch[((size_t)img * chunks + j) * 2 + 1];
            }
            terms.image_loss[img] = s1 > 0.0 ? (float)(s0 / s1) : 0.0f;
            terms.coef[img] = s1 > 0.0 ? (float)((double)grad_scale / ((double)n * s1)) : 0.0f;
        } else {
            double dice_sum = 0.0;
            for (int cls = 0; cls < planes; cls++) {
                double s[3] = { 0.0, 0.0, 0.0 };
                for (int j = 0; j < chunks; j++)
                    for (int q = 0; q < 3; q++)
                        s[q] += scratch[(((size_t)img * planes + cls) * chunks + j) * nv + q];
                float *d = terms.dice + ((size_t)img * planes + cls) * 3;
                d[0] = (float)s[0];
                d[1] = (float)s[1];
                d[2] = (float)s[2];
                dice_sum += unet_k_dice(d[0], d[1], d[2]);
            }
            terms.image_loss[img] = (float)(1.0 - dice_sum / planes);
            terms.coef[img] = -grad_scale / ((float)n * (float)planes);
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double sum = 0.0;
        for (int img = 0; img < n; img++)
            sum += terms.image_loss[img];
        loss[0] = (float)(sum / n);
    }
}

__global__ void unet_loss_grad_kernel(float *dlogits, const float *logits, const float *target,
                                      const float *weight, const float *class_weight,
                                      const double *scratch, int kind, int n, int k, size_t hw,
                                      int chunks)
{
    const UnetLossTerms terms = unet_loss_terms((double *)scratch, kind, n, k, chunks);
    size_t pixels = (size_t)n * hw;
    UNET_GRID_STRIDE(p, pixels) {
        size_t img = p / hw, i = p % hw;
        const float *x = logits + img * k * hw + i;
        float *d = dlogits + img * k * hw + i;
        float w = weight ? weight[p] : 1.0f, t = target[p], coef = terms.coef[img];
        if (kind == UNET_LOSS_BCE) {
            d[0] = coef * w * unet_k_bce_with_logits_grad(x[0], t);
        } else if (kind == UNET_LOSS_DICE && k == 1) { // Dice on the sigmoid
            const float *s = terms.dice + img * 3;
            float g = coef * unet_k_dice_grad(w, t, s[0], s[1], s[2]);
            d[0] = unet_k_sigmoid_backward(unet_k_sigmoid(x[0]), g);
        } else {
            int id = unet_k_class_id(t, k);
            if (id < 0) {
                for (int j = 0; j < k; j++)
                    d[(size_t)j * hw] = 0.0f;
                continue;
            }
            float lse = unet_logsumexp(x, k, hw);
            if (kind == UNET_LOSS_SOFTMAX_CE) {
                w *= class_weight ? class_weight[id] : 1.0f;
                for (int j = 0; j < k; j++)
                    d[(size_t)j * hw] =
                        coef * w * unet_k_softmax_ce_grad(expf(x[(size_t)j * hw] - lse), j == id);
            } else { // Dice on the softmax: g_j = dL/dp_j, then the softmax Jacobian
                const float *s = terms.dice + img * k * 3;
                float dot = 0.0f;
                for (int j = 0; j < k; j++) {
                    float pj = expf(x[(size_t)j * hw] - lse);
                    dot += pj * coef *
                           unet_k_dice_grad(w, j == id ? 1.0f : 0.0f, s[3 * j], s[3 * j + 1],
                                            s[3 * j + 2]);
                }
                for (int j = 0; j < k; j++) {
                    float pj = expf(x[(size_t)j * hw] - lse);
                    float gj = coef * unet_k_dice_grad(w, j == id ? 1.0f : 0.0f, s[3 * j],
                                                       s[3 * j + 1], s[3 * j + 2]);
                    d[(size_t)j * hw] = unet_k_softmax_backward(pj, gj, dot);
                }
            }
        }
    }
}

extern "C" size_t unet_loss_scratch(int kind, int n, int k, int chunks)
{
    size_t planes = (size_t)unet_loss_planes(kind, k);
    size_t partial = (size_t)n * planes * chunks * unet_loss_values(kind);
    size_t floats = 2 * (size_t)n + 3 * (size_t)n * planes;
    return partial + (floats + 1) / 2;
}

extern "C" cudaError_t unet_loss_cuda(cudaStream_t s, float *loss, float *dlogits,
                                      const float *logits, const float *target,
                                      const float *weight, const float *class_weight, int kind,
                                      int n, int k, size_t hw, float grad_scale, int chunks,
                                      double *scratch)
{
    dim3 grid(chunks, n, unet_loss_planes(kind, k));
    unet_loss_partial_kernel<<<grid, UNET_CUDA_BLOCK, 0, s>>>(scratch, logits, target, weight,
                                                              class_weight, kind, k, hw);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    unet_loss_finish_kernel<<<1, UNET_CUDA_BLOCK, 0, s>>>(loss, scratch, kind, n, k, chunks,
                                                          grad_scale);
    if ((e = cudaGetLastError()) != cudaSuccess || !dlogits)
        return e;
    size_t pixels = (size_t)n * hw;
    unet_loss_grad_kernel<<<unet_cuda_grid(pixels), UNET_CUDA_BLOCK, 0, s>>>(
        dlogits, logits, target, weight, class_weight, scratch, kind, n, k, hw, chunks);
    return cudaGetLastError();
}
