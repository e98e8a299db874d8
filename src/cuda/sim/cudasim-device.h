// cudasim-device.h - CUDA device-side language for the host C++ compiler (forced into the .cu files of a -Dcudasim build).
//
// The real <cuda_runtime.h> compiles under g++ (types, dim3, the runtime
// prototypes); this adds what only nvcc knows: the built-in index
// variables, __shared__ (a function-static: blocks run one at a time),
// barriers and warp shuffles (cudasim-exec.c runs a block's threads as
// fibers), atomics, and UNET_LAUNCH, which enqueues a closure holding the
// kernel's arguments by value on the simulated stream.
#ifndef UNET_CUDASIM_DEVICE_H
#define UNET_CUDASIM_DEVICE_H

#ifndef __cplusplus
#error "cudasim-device.h is for the .cu files built as C++"
#endif

#include <cuda_runtime.h>

#include <string.h>

#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cudasim.h"

#undef __shared__
#define __shared__ static
#undef __global__
#define __global__
#undef __device__
#define __device__
#undef __host__
#define __host__
#undef __forceinline__
#define __forceinline__ inline
#ifndef __restrict__
#define __restrict__ __restrict
#endif

extern "C" {
extern __thread uint3 threadIdx;
extern __thread uint3 blockIdx;
extern __thread uint3 blockDim;
extern __thread uint3 gridDim;
}

static const int warpSize = 32;

inline void __syncthreads()
{
    cudasim_syncthreads();
}

template <class T>
inline T cudasim_shfl(unsigned mask, T v, int src, const char *what)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                  "warp shuffles move up to 8 bytes");
    unsigned long long mine = 0, got;
    memcpy(&mine, &v, sizeof v);
    got = cudasim_warp_exchange(mask, mine, src, what);
    T r;
    memcpy(&r, &got, sizeof r);
    return r;
}

// Source lanes outside the segment of `width` lanes return the caller's own
// value, as on the GPU.
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    int lane = (int)cudasim_lane(), seg = lane & ~(width - 1);
    int src = (lane - seg) + (int)delta < width ? lane + (int)delta : lane;
    return cudasim_shfl(mask, v, src, "__shfl_down_sync");
}

template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    int lane = (int)cudasim_lane(), seg = lane & ~(width - 1);
    int src = lane - seg >= (int)delta ? lane - (int)delta : lane;
    return cudasim_shfl(mask, v, src, "__shfl_up_sync");
}

template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    int lane = (int)cudasim_lane(), seg = lane & ~(width - 1);
    int src = lane ^ lane_mask;
    if (src >= seg + width)
        src = lane;
    return cudasim_shfl(mask, v, src, "__shfl_xor_sync");
}

template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32)
{
    int lane = (int)cudasim_lane(), seg = lane & ~(width - 1);
    return cudasim_shfl(mask, v, seg + (src_lane & (width - 1)), "__shfl_sync");
}

// Blocks and their threads run one at a time on one host thread, so a
// read-modify-write cannot be interrupted.
template <class T>
inline T atomicCAS(T *p, T compare, T val)
{
    T old = *p;
    if (old == compare)
        *p = val;
    return old;
}

template <class T>
inline T atomicAdd(T *p, T val)
{
    T old = *p;
    *p = old + val;
    return old;
}

template <class T>
inline T atomicExch(T *p, T val)
{
    T old = *p;
    *p = val;
    return old;
}

namespace cudasim {

template <class T>
inline cudaError_t check_arg(const char *name, int index, const T &v, const char *when)
{
    if constexpr (std::is_pointer<T>::value)
        return cudasim_check_kernel_pointer(name, index, (const void *)v, when);
    return cudaSuccess;
}

template <class... P>
struct Closure : CudasimKernel {
    void (*fn)(P...);
    std::tuple<P...> args;

    static void run(CudasimKernel *k)
    {
        Closure *c = static_cast<Closure *>(k);
        std::apply(c->fn, c->args); // each thread gets its own copies
    }
    static void free_(CudasimKernel *k)
    {
        delete static_cast<Closure *>(k);
    }
    // Stops at the first bad argument (the fault is sticky).
    template <size_t... I>
    cudaError_t check(const char *when, std::index_sequence<I...>)
    {
        cudaError_t e = cudaSuccess;
        ((e = e == cudaSuccess ? check_arg(name, (int)I, std::get<I>(args), when) : e), ...);
        return e;
    }
    static cudaError_t check_all(CudasimKernel *k, const char *when)
    {
        return static_cast<Closure *>(k)->check(when, std::index_sequence_for<P...>{});
    }
};

template <class... P>
struct Launcher {
    void (*fn)(P...);
    const char *name;
    dim3 grid, block;
    cudaStream_t stream;

    // The parameters have the kernel's types, so arguments convert at the
    // call as they do for a <<<>>> launch (NULL to a pointer, int to size_t).
    void operator()(P... a) const
    {
        Closure<P...> *c = new (std::nothrow) Closure<P...>();
        if (!c) { // kept for cudaGetLastError(), like a launch error
            (void)cudasim_fault(cudaErrorMemoryAllocation, "out of host memory launching %s",
                                name);
            return;
        }
        c->refs = 1;
        c->name = name;
        c->grid[0] = grid.x;
        c->grid[1] = grid.y;
        c->grid[2] = grid.z;
        c->block[0] = block.x;
        c->block[1] = block.y;
        c->block[2] = block.z;
        c->thread = &Closure<P...>::run;
        c->destroy = &Closure<P...>::free_;
        c->check_args = &Closure<P...>::check_all;
        c->fn = fn;
        c->args = std::tuple<P...>(a...);
        (void)cudasim_launch(stream, c); // the error is kept for cudaGetLastError()
    }
};

template <class... P>
inline Launcher<P...> launch(void (*fn)(P...), const char *name, dim3 grid, dim3 block,
                             cudaStream_t s)
{
    return Launcher<P...>{ fn, name, grid, block, s };
}

} // namespace cudasim

#define UNET_LAUNCH(kernel, grid, block, s) \
    ::cudasim::launch(kernel, #kernel, dim3(grid), dim3(block), (s))

#endif
