/* cudasim.h - what the simulator's runtime, executor, cuDNN and device header share (C and C++). */
#ifndef UNET_CUDASIM_H
#define UNET_CUDASIM_H

#include <stddef.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One kernel launch: the geometry and a closure that runs one thread (the
 * thread's indices are set in the thread-local variables below before it
 * is called). Reference counted: a captured launch lives in its graph and
 * in every stream the graph is launched on. */
typedef struct CudasimKernel CudasimKernel;
struct CudasimKernel {
    int refs;
    const char *name;
    unsigned grid[3], block[3];
    void (*thread)(CudasimKernel *k);
    void (*destroy)(CudasimKernel *k);
    /* Checks every pointer argument against the live device allocations;
     * the first bad one is a fault (cudasim_fault), returned. */
    cudaError_t (*check_args)(CudasimKernel *k, const char *when);
};

/* Takes the kernel (one reference): validates the geometry (the error is
 * returned and kept for cudaGetLastError), then enqueues it on s or, while
 * s is capturing, records it in the graph. */
cudaError_t cudasim_launch(cudaStream_t s, CudasimKernel *k);
void cudasim_kernel_release(CudasimKernel *k);

/* Runs every block of k now (cudasim-exec.c). */
void cudasim_run_kernel(CudasimKernel *k);

/* Device side (called from kernels through cudasim-device.h). */
void cudasim_syncthreads(void);
/* Warp exchange: posts 8 bytes, waits for the warp (mask: the lanes that
 * take part), returns the 8 bytes src_lane posted. */
unsigned long long cudasim_warp_exchange(unsigned mask, unsigned long long mine, int src_lane,
                                         const char *what);
unsigned cudasim_lane(void);

/* Kernel pointer argument i of kernel `name`: must lie in a live device
 * allocation (NULL is allowed); otherwise a fault, returned. */
cudaError_t cudasim_check_kernel_pointer(const char *name, int index, const void *p,
                                         const char *when);

/* Device memory checks of the runtime: [p, p + bytes) must lie in one live
 * allocation; otherwise a fault naming `what`, returned. */
cudaError_t cudasim_check_device_range(const void *p, size_t bytes, const char *what);

/* Host function on a stream (cuDNN calls): run(ctx) at its turn, then
 * destroy(ctx). Returns cudaErrorStreamCaptureUnsupported when s captures
 * and the op cannot be captured (it can: cuDNN calls are captured too). */
cudaError_t cudasim_enqueue_host(cudaStream_t s, void (*run)(void *ctx), void (*destroy)(void *ctx),
                                 void *ctx, const char *name);
/* Runs everything queued on s (cuDNN Find*: it measures synchronously). */
cudaError_t cudasim_stream_drain(cudaStream_t s);
/* 0 when no device (UNET_CUDASIM_DEVICES=0 or UNET_CUDASIM_NO_DRIVER=1). */
int cudasim_device_ok(void);

/* A bug the real GPU would punish, or a failure of the simulator itself
 * (out of host memory): prints "cudasim: <message>" and makes the device
 * unusable, as a kernel fault leaves a CUDA context: from then on every
 * runtime call returns the first fault's code and queued work is dropped.
 * Returns that code. */
#ifdef __GNUC__
__attribute__((format(printf, 2, 3)))
#endif
cudaError_t cudasim_fault(cudaError_t code, const char *fmt, ...);
/* The first fault, or cudaSuccess. */
cudaError_t cudasim_sticky(void);

#ifdef __cplusplus
}
#endif

#endif
