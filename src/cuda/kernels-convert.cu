// kernels-convert.cu - float <-> bf16 conversions around the bf16 convolutions.
#include "cuda-common.cuh"
#include "kernels.h"

__global__ void unet_float_to_bf16_kernel(uint16_t *dst, const float *src, size_t count)
{
    UNET_GRID_STRIDE(i, count)
        dst[i] = unet_k_float_to_bf16(src[i]);
}

extern "C" cudaError_t unet_float_to_bf16_cuda(cudaStream_t s, uint16_t *dst, const float *src,
                                               size_t count)
{
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_float_to_bf16_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(dst, src,
                                                                                     count);
    return cudaGetLastError();
}

__global__ void unet_bf16_to_float_kernel(float *dst, const uint16_t *src, size_t count,
                                          int accumulate)
{
    UNET_GRID_STRIDE(i, count)
    {
        float v = unet_k_bf16_to_float(src[i]);
        dst[i] = accumulate ? dst[i] + v : v;
    }
}

extern "C" cudaError_t unet_bf16_to_float_cuda(cudaStream_t s, float *dst, const uint16_t *src,
                                               size_t count, int accumulate)
{
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_bf16_to_float_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        dst, src, count, accumulate);
    return cudaGetLastError();
}
