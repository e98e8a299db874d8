// kernels-norm.cu - batch norm and instance norm, forward and backward.
//
// A segment is the set one mean/invstd describes: channel c over (n,h,w) for
// batch norm, (n,c) over (h,w) for instance norm. Partial sums per segment
// and chunk go to scratch in double; a finish kernel adds them in order.
#include <math.h>

#include "cuda-common.cuh"
#include "kernels.h"

enum { UNET_NORM_STATS = 0, UNET_NORM_GRADS = 1 };

__host__ __device__ static inline size_t unet_norm_segments(int n, int c, int per_image)
{
    return per_image ? (size_t)n * c : (size_t)c;
}

// grid (chunks, c, per_image ? n : 1). STATS: sum x, sum x^2.
// GRADS: sum dy, sum dy * xhat (a = dy, b = x).
template <int MODE>
__global__ void unet_norm_partial_kernel(double *partial, const float *a, const float *b,
                                         const float *mean, const float *invstd, int n, int c,
                                         size_t hw, int per_image)
{
    const int chunk = blockIdx.x, chunks = gridDim.x, ch = blockIdx.y;
    const int img0 = per_image ? (int)blockIdx.z : 0, img1 = per_image ? img0 + 1 : n;
    const size_t seg = per_image ? (size_t)img0 * c + ch : (size_t)ch;
    float m = 0.0f, is = 0.0f;
    if (MODE == UNET_NORM_GRADS) {
        m = mean[seg];
        is = invstd[seg];
    }
    size_t lo, hi;
    unet_chunk_range(hw, chunk, chunks, &lo, &hi);
    double v[2] = { 0.0, 0.0 };
    for (int img = img0; img < img1; img++) {
        size_t base = ((size_t)img * c + ch) * hw;
        for (size_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
            float av = a[base + i];
            if (MODE == UNET_NORM_STATS) {
                v[0] += av;
                v[1] += (double)av * av;
            } else {
                float xhat = unet_k_norm(b[base + i], m, is, 1.0f, 0.0f);
                v[0] += av;
                v[1] += (double)av * xhat;
            }
        }
    }
    unet_block_sum<2>(v);
    if (threadIdx.x == 0) {
        partial[(seg * chunks + chunk) * 2 + 0] = v[0];
        partial[(seg * chunks + chunk) * 2 + 1] = v[1];
    }
}

__global__ void unet_norm_stats_finish_kernel(float *save_mean, float *save_invstd,
                                              float *running_mean, float *running_var,
                                              const double *partial, size_t segments, int chunks,
                                              int c, double count, float momentum, float eps)
{
    size_t seg = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (seg >= segments)
        return;
    double s0 = 0.0, s1 = 0.0;
    for (int k = 0; k < chunks; k++) {
        s0 += partial[(seg * chunks + k) * 2 + 0];
        s1 += partial[(seg * chunks + k) * 2 + 1];
    }
    double mean = s0 / count;
    double var = s1 / count - mean * mean;
    if (var < 0.0)
        var = 0.0;
    save_mean[seg] = (float)mean;
    save_invstd[seg] = (float)(1.0 / sqrt(var + (double)eps));
    int ch = (int)(seg % c); // batch norm: seg is the channel
    if (running_mean)
        running_mean[ch] = unet_k_running_update(running_mean[ch], (float)mean, momentum);
    if (running_var)
        running_var[ch] = unet_k_running_update(running_var[ch],
                                                (float)(var * count / (count - 1.0)), momentum);
}

__global__ void unet_norm_apply_kernel(float *y, const float *x, const float *mean,
                                       const float *invstd, const float *gamma, const float *beta,
                                       size_t count, int c, size_t hw, int per_image)
{
    UNET_GRID_STRIDE(i, count) {
        size_t plane = i / hw;
        int ch = (int)(plane % c);
        size_t seg = per_image ? plane : (size_t)ch;
        y[i] = unet_k_norm(x[i], mean[seg], invstd[seg], gamma ? gamma[ch] : 1.0f,
                           beta ? beta[ch] : 0.0f);
    }
}

extern "C" size_t unet_norm_scratch(int n, int c, int per_image, int chunks)
{
    // partial sums (2 per segment and chunk), then 2 floats per segment
    return unet_norm_segments(n, c, per_image) * (2 * (size_t)chunks + 1);
}

extern "C" cudaError_t unet_norm_forward_cuda(cudaStream_t s, float *y, const float *x,
                                              const float *gamma, const float *beta,
                                              float *save_mean, float *save_invstd,
                                              float *running_mean, float *running_var,
                                              float momentum, float eps, int n, int c, size_t hw,
                                              int per_image, int chunks, double *scratch)
{
    size_t segments = unet_norm_segments(n, c, per_image), count = (size_t)n * c * hw;
    if (!count)
        return cudaSuccess;
    float *terms = (float *)(scratch + segments * 2 * (size_t)chunks);
    if (!save_mean) // statistics the caller does not keep
        save_mean = terms;
    if (!save_invstd)
        save_invstd = terms + segments;
    dim3 grid(chunks, c, per_image ? n : 1);
    UNET_LAUNCH(unet_norm_partial_kernel<UNET_NORM_STATS>, grid, UNET_CUDA_BLOCK, s)(
        scratch, x, NULL, NULL, NULL, n, c, hw, per_image);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    double per_segment = per_image ? (double)hw : (double)n * (double)hw;
    unsigned finish_blocks = (unsigned)((segments + UNET_CUDA_BLOCK - 1) / UNET_CUDA_BLOCK);
    UNET_LAUNCH(unet_norm_stats_finish_kernel, finish_blocks, UNET_CUDA_BLOCK, s)(
        save_mean, save_invstd, per_image ? NULL : running_mean, per_image ? NULL : running_var,
        scratch, segments, chunks, c, per_segment, momentum, eps);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    UNET_LAUNCH(unet_norm_apply_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        y, x, save_mean, save_invstd, gamma, beta, count, c, hw, per_image);
    return cudaGetLastError();
}

__global__ void unet_batchnorm_running_kernel(float *mean, float *invstd, const float *running_mean,
                                              const float *running_var, int c, float eps)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    mean[ch] = running_mean[ch];
    invstd[ch] = (float)(1.0 / sqrt((double)running_var[ch] + (double)eps));
}

extern "C" cudaError_t unet_batchnorm_inference_cuda(cudaStream_t s, float *y, const float *x,
                                                     const float *gamma, const float *beta,
                                                     const float *running_mean,
                                                     const float *running_var, float eps, int n,
                                                     int c, size_t hw, double *scratch)
{
    size_t count = (size_t)n * c * hw;
    if (!count)
        return cudaSuccess;
    float *mean = (float *)scratch, *invstd = mean + c;
    UNET_LAUNCH(unet_batchnorm_running_kernel, (c + UNET_CUDA_BLOCK - 1) / UNET_CUDA_BLOCK, UNET_CUDA_BLOCK, s)(mean, invstd, running_mean, running_var, c, eps);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    UNET_LAUNCH(unet_norm_apply_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        y, x, mean, invstd, gamma, beta, count, c, hw, 0);
    return cudaGetLastError();
}

// One thread per channel, images in order, so dgamma/dbeta of instance norm
// sum the same way every time. terms: mean(dy), mean(dy * xhat) per segment.
__global__ void unet_norm_grads_finish_kernel(float *terms, float *dgamma, float *dbeta,
                                              const double *partial, int n, int c, int chunks,
                                              size_t hw, int per_image)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    const size_t segments = unet_norm_segments(n, c, per_image);
    const double count = per_image ? (double)hw : (double)n * (double)hw;
    double g_sum = 0.0, b_sum = 0.0;
    for (int img = 0; img < (per_image ? n : 1); img++) {
        size_t seg = per_image ? (size_t)img * c + ch : (size_t)ch;
        double s0 = 0.0, s1 = 0.0;
        for (int k = 0; k < chunks; k++) {
            s0 += partial[(seg * chunks + k) * 2 + 0];
            s1 += partial[(seg * chunks + k) * 2 + 1];
        }
        terms[seg] = (float)(s0 / count);
        terms[segments + seg] = (float)(s1 / count);
        b_sum += s0;
        g_sum += s1;
    }
    if (dgamma)
        dgamma[ch] += (float)g_sum;
    if (dbeta)
        dbeta[ch] += (float)b_sum;
}

__global__ void unet_norm_dx_kernel(float *dx, const float *dy, const float *x, const float *gamma,
                                    const float *mean, const float *invstd, const float *terms,
                                    size_t segments, size_t count, int c, size_t hw, int per_image,
                                    int accumulate)
{
    UNET_GRID_STRIDE(i, count) {
        size_t plane = i / hw;
        int ch = (int)(plane % c);
        size_t seg = per_image ? plane : (size_t)ch;
        float xhat = unet_k_norm(x[i], mean[seg], invstd[seg], 1.0f, 0.0f);
        float g = unet_k_norm_grad(dy[i], xhat, (gamma ? gamma[ch] : 1.0f) * invstd[seg],
                                   terms[seg], terms[segments + seg]);
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

extern "C" cudaError_t unet_norm_backward_cuda(cudaStream_t s, float *dx, float *dgamma,
                                               float *dbeta, const float *dy, const float *x,
                                               const float *gamma, const float *save_mean,
                                               const float *save_invstd, int n, int c, size_t hw,
                                               int per_image, int accumulate, int chunks,
                                               double *scratch)
{
    size_t segments = unet_norm_segments(n, c, per_image), count = (size_t)n * c * hw;
    if (!count)
        return cudaSuccess;
    float *terms = (float *)(scratch + segments * 2 * (size_t)chunks);
    dim3 grid(chunks, c, per_image ? n : 1);
    UNET_LAUNCH(unet_norm_partial_kernel<UNET_NORM_GRADS>, grid, UNET_CUDA_BLOCK, s)(
        scratch, dy, x, save_mean, save_invstd, n, c, hw, per_image);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    UNET_LAUNCH(unet_norm_grads_finish_kernel, (c + UNET_CUDA_BLOCK - 1) / UNET_CUDA_BLOCK, UNET_CUDA_BLOCK, s)(terms, dgamma, dbeta, scratch, n, c, chunks, hw,
                                         per_image);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    if (!dx)
        return cudaSuccess;
    UNET_LAUNCH(unet_norm_dx_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        dx, dy, x, gamma, save_mean, save_invstd, terms, segments, count, c, hw, per_image,
        accumulate);
    return cudaGetLastError();
}
