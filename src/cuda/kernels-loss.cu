// kernels-loss.cu - the three losses (BCE, softmax cross-entropy, soft Dice) and their gradients.
//
// Definitions as in backend.h (the reference backend is the spec): per image
// sum(w * l) / sum(w) for BCE and CE (l of CE carries the class weight of the
// target), 1 - mean over classes of the weighted soft Dice for Dice; then the
// mean over the batch. Three launches: per-image partial sums (double), a
// one-block finish that writes the loss and per-image coefficients, and the
// per-pixel gradient. Target values that are not class ids (K > 1) are
// recorded in `bad` and the pixel is skipped; the host reports them.
#include <math.h>

#include "backend.h"
#include "cuda-common.cuh"
#include "kernels.h"

__host__ __device__ static inline int unet_loss_planes(int kind, int k)
{
    return kind == UNET_LOSS_DICE ? k : 1;
}

__host__ __device__ static inline int unet_loss_values(int kind)
{
    return kind == UNET_LOSS_DICE ? 3 : 2;
}

// Class id of target value t, recording the first invalid one.
__device__ __forceinline__ int unet_loss_class(float t, int k, int img, size_t i, int width,
                                               UnetCudaBadTarget *bad)
{
    int id = unet_k_class_id(t, k);
    if (id < 0 && atomicCAS(&bad->flag, 0, 1) == 0) {
        bad->image = img;
        bad->y = (int)(i / width);
        bad->x = (int)(i % width);
        bad->classes = k;
        bad->value = t;
    }
    return id;
}

// grid (chunks, n, planes): partial sums of one image (and class, for Dice).
__global__ void unet_loss_partial_kernel(double *partial, const float *logits, const float *target,
                                         const float *weight, const float *class_weight, int kind,
                                         int k, size_t hw, int width, UnetCudaBadTarget *bad)
{
    const int chunk = blockIdx.x, chunks = gridDim.x, img = blockIdx.y, cls = blockIdx.z;
    const float *x = logits + (size_t)img * k * hw;
    const float *t = target + (size_t)img * hw;
    const float *wp = weight ? weight + (size_t)img * hw : NULL;
    size_t lo, hi;
    unet_chunk_range(hw, chunk, chunks, &lo, &hi);
    double v[3] = { 0.0, 0.0, 0.0 };
    for (size_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        double w = wp ? wp[i] : 1.0;
        if (kind == UNET_LOSS_BCE) {
            v[0] += w * unet_k_bce_with_logits(x[i], t[i]);
            v[1] += w;
        } else if (kind == UNET_LOSS_SOFTMAX_CE) {
            int id = unet_loss_class(t[i], k, img, i, width, bad);
            if (id < 0)
                continue;
            float m, s;
            unet_k_softmax_stats(x + i, k, hw, &m, &s);
            double l = (double)(class_weight ? class_weight[id] : 1.0f) *
                       unet_k_softmax_ce(x[(size_t)id * hw + i], m, s);
            v[0] += w * l;
            v[1] += w;
        } else if (k == 1) { // Dice on the sigmoid, soft target
            double p = unet_k_sigmoid(x[i]);
            v[0] += w * p * t[i];
            v[1] += w * p;
            v[2] += w * t[i];
        } else { // Dice on the softmax, one-hot target
            int id = unet_loss_class(t[i], k, img, i, width, bad);
            if (id < 0)
                continue;
            float m, s;
            unet_k_softmax_stats(x + i, k, hw, &m, &s);
            double p = unet_k_softmax_prob(x[(size_t)cls * hw + i], m, s);
            v[1] += w * p;
            if (id == cls) {
                v[0] += w * p;
                v[2] += w;
            }
        }
    }
    unet_block_sum<3>(v);
    if (threadIdx.x == 0) {
        const int nv = unet_loss_values(kind);
        size_t at = (((size_t)img * gridDim.z + cls) * chunks + chunk) * nv;
        for (int j = 0; j < nv; j++)
            partial[at + j] = v[j];
    }
}

// Float region after the partial sums: per image loss [n], gradient
// coefficient [n], Dice sums inter/psum/tsum [n * planes * 3].
struct UnetLossTerms {
    float *image_loss, *coef, *dice;
};

__host__ __device__ static inline UnetLossTerms unet_loss_terms(double *scratch, int kind, int n,
                                                                int k, int chunks)
{
    size_t partial = (size_t)n * unet_loss_planes(kind, k) * chunks * unet_loss_values(kind);
    float *f = (float *)(scratch + partial);
    UnetLossTerms t;
    t.image_loss = f;
    t.coef = f + n;
    t.dice = f + 2 * (size_t)n;
    return t;
}

__global__ void unet_loss_finish_kernel(float *loss, double *scratch, int kind, int n, int k,
                                        int chunks, float grad_scale)
{
    const int planes = unet_loss_planes(kind, k), nv = unet_loss_values(kind);
    const UnetLossTerms terms = unet_loss_terms(scratch, kind, n, k, chunks);
    for (int img = threadIdx.x; img < n; img += blockDim.x) {
        if (kind != UNET_LOSS_DICE) {
            double sl = 0.0, sw = 0.0;
            for (int j = 0; j < chunks; j++) {
                sl += scratch[((size_t)img * chunks + j) * 2 + 0];
                sw += scratch[((size_t)img * chunks + j) * 2 + 1];
            }
            // An image whose weights sum to zero contributes 0 and no gradient.
            terms.image_loss[img] = sw > 0.0 ? (float)(sl / sw) : 0.0f;
            terms.coef[img] = sw > 0.0 ? (float)((double)grad_scale / ((double)n * sw)) : 0.0f;
        } else {
            double image_loss = 0.0;
            for (int cls = 0; cls < planes; cls++) {
                double s[3] = { 0.0, 0.0, 0.0 };
                for (int j = 0; j < chunks; j++)
                    for (int q = 0; q < 3; q++)
                        s[q] += scratch[(((size_t)img * planes + cls) * chunks + j) * nv + q];
                float *d = terms.dice + ((size_t)img * planes + cls) * 3;
                d[0] = (float)s[0];
                d[1] = (float)s[1];
                d[2] = (float)s[2];
                image_loss += unet_k_dice_loss(d[0], d[1], d[2], UNET_DICE_SMOOTH);
            }
            terms.image_loss[img] = (float)(image_loss / planes);
            terms.coef[img] = (float)((double)grad_scale / ((double)n * (double)planes));
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int img = 0; img < n; img++)
            total += terms.image_loss[img];
        loss[0] = (float)(total / n);
    }
}

__global__ void unet_loss_grad_kernel(float *dlogits, const float *logits, const float *target,
                                      const float *weight, const float *class_weight,
                                      double *scratch, int kind, int n, int k, size_t hw,
                                      int chunks)
{
    const UnetLossTerms terms = unet_loss_terms(scratch, kind, n, k, chunks);
    size_t pixels = (size_t)n * hw;
    UNET_GRID_STRIDE(p, pixels) {
        size_t img = p / hw, i = p % hw;
        const float *x = logits + img * k * hw + i;
        float *d = dlogits + img * k * hw + i;
        const float w = weight ? weight[p] : 1.0f, t = target[p], coef = terms.coef[img];
        if (kind == UNET_LOSS_BCE) {
            d[0] = (w * coef) * unet_k_bce_with_logits_grad(x[0], t);
            continue;
        }
        if (kind == UNET_LOSS_DICE && k == 1) {
            const float *s = terms.dice + img * 3;
            float g = unet_k_dice_grad(t, w, s[0], s[1], s[2], UNET_DICE_SMOOTH);
            d[0] = unet_k_sigmoid_grad(coef * g, unet_k_sigmoid(x[0]));
            continue;
        }
        int id = unet_k_class_id(t, k);
        if (id < 0) { // recorded by the partial kernel; the op fails at the next sync
            for (int c = 0; c < k; c++)
                d[(size_t)c * hw] = 0.0f;
            continue;
        }
        float m, s;
        unet_k_softmax_stats(x, k, hw, &m, &s);
        if (kind == UNET_LOSS_SOFTMAX_CE) {
            float wc = (w * coef) * (class_weight ? class_weight[id] : 1.0f);
            for (int c = 0; c < k; c++)
                d[(size_t)c * hw] = wc * unet_k_softmax_ce_grad(x[(size_t)c * hw], m, s, c == id);
            continue;
        }
        // Dice through the softmax: dx_c = p_c * (g_c - sum_j g_j p_j).
        const float *sums = terms.dice + img * k * 3;
        double gp = 0.0;
        for (int c = 0; c < k; c++) {
            float pc = unet_k_softmax_prob(x[(size_t)c * hw], m, s);
            float gc = unet_k_dice_grad(c == id ? 1.0f : 0.0f, w, sums[3 * c], sums[3 * c + 1],
                                        sums[3 * c + 2], UNET_DICE_SMOOTH);
            gp += (double)gc * pc;
        }
        for (int c = 0; c < k; c++) {
            float pc = unet_k_softmax_prob(x[(size_t)c * hw], m, s);
            float gc = unet_k_dice_grad(c == id ? 1.0f : 0.0f, w, sums[3 * c], sums[3 * c + 1],
                                        sums[3 * c + 2], UNET_DICE_SMOOTH);
            d[(size_t)c * hw] = coef * pc * (gc - (float)gp);
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
                                      int n, int k, int h, int w, float grad_scale, int chunks,
                                      double *scratch, UnetCudaBadTarget *bad)
{
    const size_t hw = (size_t)h * w;
    dim3 grid(chunks, n, unet_loss_planes(kind, k));
    UNET_LAUNCH(unet_loss_partial_kernel, grid, UNET_CUDA_BLOCK, s)(scratch, logits, target, weight,
                                                              class_weight, kind, k, hw, w, bad);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    UNET_LAUNCH(unet_loss_finish_kernel, 1, UNET_CUDA_BLOCK, s)(loss, scratch, kind, n, k, chunks,
                                                          grad_scale);
    if ((e = cudaGetLastError()) != cudaSuccess || !dlogits)
        return e;
    size_t pixels = (size_t)n * hw;
    UNET_LAUNCH(unet_loss_grad_kernel, unet_cuda_grid(pixels), UNET_CUDA_BLOCK, s)(
        dlogits, logits, target, weight, class_weight, scratch, kind, n, k, hw, chunks);
    return cudaGetLastError();
}
