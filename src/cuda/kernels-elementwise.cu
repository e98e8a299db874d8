// kernels-elementwise.cu - fill, bias, activations, sigmoid/softmax and the optimizer updates.
#include <math.h>

#include "cuda-common.cuh"
#include "kernels.h"

__global__ void unet_fill_kernel(float *x, size_t count, float value)
{
    UNET_GRID_STRIDE(i, count)
        x[i] = value;
}

extern "C" cudaError_t unet_fill_cuda(cudaStream_t s, float *x, size_t count, float value)
{
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_fill_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(x, count, value);
    return cudaGetLastError();
}

__global__ void unet_bias_add_kernel(float *y, const float *b, size_t count, int c, size_t hw)
{
    UNET_GRID_STRIDE(i, count)
        y[i] += b[(i / hw) % (size_t)c];
}

extern "C" cudaError_t unet_bias_add_cuda(cudaStream_t s, float *y, const float *b, int n, int c,
                                          size_t hw)
{
    size_t count = (size_t)n * (size_t)c * hw;
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_bias_add_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(y, b, count, c, hw);
    return cudaGetLastError();
}

// grid (chunks, c): partial[c * chunks + chunk] = sum of dy over its share of (n, hw).
__global__ void unet_bias_grad_partial_kernel(double *partial, const float *dy, int n, int c,
                                              size_t hw)
{
    const int ch = blockIdx.y, chunk = blockIdx.x, chunks = gridDim.x;
    size_t lo, hi;
    unet_chunk_range(hw, chunk, chunks, &lo, &hi);
    double v[1] = { 0.0 };
    for (int img = 0; img < n; img++) {
        const float *p = dy + ((size_t)img * c + ch) * hw;
        for (size_t i = lo + threadIdx.x; i < hi; i += blockDim.x)
            v[0] += p[i];
    }
    unet_block_sum<1>(v);
    if (threadIdx.x == 0)
        partial[(size_t)ch * chunks + chunk] = v[0];
}

__global__ void unet_bias_grad_finish_kernel(float *db, const double *partial, int c, int chunks)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    double sum = 0.0;
    for (int k = 0; k < chunks; k++)
        sum += partial[(size_t)ch * chunks + k];
    db[ch] += (float)sum;
}

extern "C" size_t unet_bias_grad_scratch(int c, int chunks)
{
    return (size_t)c * (size_t)chunks;
}

extern "C" cudaError_t unet_bias_grad_cuda(cudaStream_t s, float *db, const float *dy, int n, int c,
                                           size_t hw, int chunks, double *scratch)
{
    if (!c)
        return cudaSuccess;
    UNET_LAUNCH(unet_bias_grad_partial_kernel, dim3(chunks, c), UNET_CUDA_BLOCK, s)(scratch, dy, n, c,
                                                                              hw);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    UNET_LAUNCH(unet_bias_grad_finish_kernel, (c + UNET_CUDA_BLOCK - 1) / UNET_CUDA_BLOCK, UNET_CUDA_BLOCK, s)(db, scratch, c, chunks);
    return cudaGetLastError();
}

__global__ void unet_activation_forward_kernel(float *y, const float *x, size_t count, int leaky,
                                               float slope)
{
    UNET_GRID_STRIDE(i, count)
        y[i] = unet_k_activation(x[i], leaky, slope);
}

extern "C" cudaError_t unet_activation_forward_cuda(cudaStream_t s, float *y, const float *x,
                                                    size_t count, int leaky, float slope)
{
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_activation_forward_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(y, x, count,
                                                                                    leaky, slope);
    return cudaGetLastError();
}

__global__ void unet_activation_backward_kernel(float *dx, const float *dy, const float *y,
                                                size_t count, int leaky, float slope,
                                                int accumulate)
{
    UNET_GRID_STRIDE(i, count) {
        float g = unet_k_activation_grad(dy[i], y[i], leaky, slope);
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

extern "C" cudaError_t unet_activation_backward_cuda(cudaStream_t s, float *dx, const float *dy,
                                                     const float *y, size_t count, int leaky,
                                                     float slope, int accumulate)
{
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_activation_backward_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        dx, dy, y, count, leaky, slope, accumulate);
    return cudaGetLastError();
}

__global__ void unet_sigmoid_forward_kernel(float *y, const float *x, size_t count)
{
    UNET_GRID_STRIDE(i, count)
        y[i] = unet_k_sigmoid(x[i]);
}

extern "C" cudaError_t unet_sigmoid_forward_cuda(cudaStream_t s, float *y, const float *x,
                                                 size_t count)
{
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_sigmoid_forward_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(y, x, count);
    return cudaGetLastError();
}

// One thread per pixel; channels are hw apart, so neighbouring threads read
// neighbouring floats.
__global__ void unet_softmax_forward_kernel(float *y, const float *x, int n, int c, size_t hw)
{
    size_t pixels = (size_t)n * hw;
    UNET_GRID_STRIDE(p, pixels) {
        size_t img = p / hw, i = p % hw;
        const float *xp = x + img * (size_t)c * hw + i;
        float *yp = y + img * (size_t)c * hw + i;
        float m, sum;
        unet_k_softmax_stats(xp, c, hw, &m, &sum);
        for (int k = 0; k < c; k++)
            yp[(size_t)k * hw] = unet_k_softmax_prob(xp[(size_t)k * hw], m, sum);
    }
}

extern "C" cudaError_t unet_softmax_forward_cuda(cudaStream_t s, float *y, const float *x, int n,
                                                 int c, size_t hw)
{
    size_t pixels = (size_t)n * hw;
    if (!pixels || !c)
        return cudaSuccess;
    UNET_LAUNCH(unet_softmax_forward_kernel, unet_cuda_grid(pixels), UNET_CUDA_BLOCK, s)(y, x, n, c, hw);
    return cudaGetLastError();
}

__global__ void unet_sgd_update_kernel(float *param, const float *grad, float *momentum_buf,
                                       size_t count, float lr, float momentum, int nesterov,
                                       float weight_decay)
{
    UNET_GRID_STRIDE(i, count) {
        float buf = momentum_buf ? momentum_buf[i] : 0.0f;
        param[i] = unet_k_sgd(param[i], grad[i], &buf, lr, momentum, nesterov, weight_decay);
        if (momentum_buf)
            momentum_buf[i] = buf;
    }
}

extern "C" cudaError_t unet_sgd_update_cuda(cudaStream_t s, float *param, const float *grad,
                                            float *momentum_buf, size_t count, float lr,
                                            float momentum, int nesterov, float weight_decay)
{
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_sgd_update_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        param, grad, momentum != 0.0f ? momentum_buf : NULL, count, lr, momentum, nesterov,
        weight_decay);
    return cudaGetLastError();
}

__global__ void unet_adam_update_kernel(float *param, const float *grad, float *m, float *v,
                                        size_t count, float lr, float beta1, float beta2, float eps,
                                        float weight_decay, int decoupled, float bc1, float bc2)
{
    UNET_GRID_STRIDE(i, count) {
        float mi = m[i], vi = v[i];
        param[i] = unet_k_adam(param[i], grad[i], &mi, &vi, lr, beta1, beta2, eps, weight_decay,
                               decoupled, bc1, bc2);
        m[i] = mi;
        v[i] = vi;
    }
}

extern "C" cudaError_t unet_adam_update_cuda(cudaStream_t s, float *param, const float *grad,
                                             float *m, float *v, size_t count, float lr,
                                             float beta1, float beta2, float eps,
                                             float weight_decay, int decoupled, float bc1,
                                             float bc2)
{
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_adam_update_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        param, grad, m, v, count, lr, beta1, beta2, eps, weight_decay, decoupled, bc1, bc2);
    return cudaGetLastError();
}
