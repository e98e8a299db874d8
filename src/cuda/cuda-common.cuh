// cuda-common.cuh - launch geometry and deterministic block reductions shared by the .cu files.
#ifndef UNET_CUDA_COMMON_CUH
#define UNET_CUDA_COMMON_CUH

#include <stddef.h>

#include <cuda_runtime.h>

#include "cuda-launch.h"

// Kernel launch on stream s with no dynamic shared memory:
//   UNET_LAUNCH(kernel, grid, block, s)(args...)
// One spelling for every launch, so that tests/cudasim can compile these
// files with a host compiler and run the kernels on the CPU.
#ifndef UNET_LAUNCH
#define UNET_LAUNCH(kernel, grid, block, s) kernel<<<(grid), (block), 0, (s)>>>
#endif

// Blocks for a grid-stride loop over count elements.
static inline unsigned unet_cuda_grid(size_t count)
{
    size_t blocks = (count + UNET_CUDA_BLOCK - 1) / UNET_CUDA_BLOCK;
    if (blocks > (1u << 20))
        blocks = 1u << 20;
    return blocks ? (unsigned)blocks : 1u;
}

#define UNET_GRID_STRIDE(i, count)                                                  \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (count);   \
         i += (size_t)gridDim.x * blockDim.x)

// Sums NV doubles over the block (blockDim.x == UNET_CUDA_BLOCK); the result
// is valid in thread 0. The order of additions is fixed, so results repeat.
template <int NV>
__device__ __forceinline__ void unet_block_sum(double (&v)[NV])
{
    __shared__ double sh[NV][UNET_CUDA_BLOCK / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int j = 0; j < NV; j++) {
        for (int o = 16; o > 0; o >>= 1)
            v[j] += __shfl_down_sync(0xffffffffu, v[j], o);
        if (lane == 0)
            sh[j][warp] = v[j];
    }
    __syncthreads();
    if (warp == 0) {
#pragma unroll
        for (int j = 0; j < NV; j++) {
            v[j] = lane < UNET_CUDA_BLOCK / 32 ? sh[j][lane] : 0.0;
            for (int o = 16; o > 0; o >>= 1)
                v[j] += __shfl_down_sync(0xffffffffu, v[j], o);
        }
    }
    __syncthreads(); // sh may be reused by a following call
}

// Range [*lo, *hi) of chunk `chunk` of `chunks` over len elements.
__device__ __forceinline__ void unet_chunk_range(size_t len, int chunk, int chunks, size_t *lo,
                                                 size_t *hi)
{
    *lo = len * (size_t)chunk / (size_t)chunks;
    *hi = len * (size_t)(chunk + 1) / (size_t)chunks;
}

#endif
