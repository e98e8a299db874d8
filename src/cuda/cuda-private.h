/* cuda-private.h - state of the CUDA backend and helpers shared by its host files. */
#ifndef UNET_CUDA_PRIVATE_H
#define UNET_CUDA_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "backend.h"
#include "cuda-launch.h"

/* One measured cuDNN algorithm for one convolution shape and direction. */
typedef enum UnetCudaConvDir {
    UNET_CUDA_CONV_FWD = 0,
    UNET_CUDA_CONV_BWD_DATA,
    UNET_CUDA_CONV_BWD_FILTER,
} UnetCudaConvDir;

/* The cuDNN convolution x[n,ci,h,w] -> y[n,co,ho,wo] with filter [co,ci,k,k]
 * (a transposed convolution is run as the convolution it transposes). */
typedef struct UnetCudaConvShape {
    int n, ci, h, w, co, ho, wo, k, stride, pad;
} UnetCudaConvShape;

typedef struct UnetCudaConvAlgo {
    UnetCudaConvDir dir;
    UnetCudaConvShape shape;
    UnetPrecision precision; /* arithmetic it was measured for (FP32, TF32 or BF16) */
    int algo;              /* cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
    cudnnMathType_t math;
    size_t workspace;      /* bytes */
} UnetCudaConvAlgo;

/* A growable list of device pointers (graph capture bookkeeping). */
typedef struct UnetCudaPtrList {
    void **p;
    size_t n, cap;
} UnetCudaPtrList;

/* Upload staging slots: a step's uploads (batch, targets, weights) take a
 * few slots; with more slots than that, an upload waits only for copies of
 * the step before, never for the compute queued since (the overlap). */
#define UNET_CUDA_STAGING_SLOTS 8

typedef struct UnetCudaBackend {
    UnetBackend base;
    int device;
    int sm_count;
    int tf32_env_off;      /* UNET_CUDA_TF32=0: a TF32 request runs as full fp32 */
    int pools;             /* stream-ordered allocator available */
    cudaMemPool_t pool;    /* the device's default pool, when pools */
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;

    /* Pinned staging for transfers: a ring of UNET_CUDA_STAGING_SLOTS slots
     * of staging_slot floats (downloads use the first two), each
     * with an event that fires when the device is done with it. */
    float *staging;
    size_t staging_slot;
    cudaEvent_t staging_event[UNET_CUDA_STAGING_SLOTS];
    int staging_next;

    void *workspace;       /* cuDNN workspace, grown up to workspace_limit */
    size_t workspace_size, workspace_limit;
    double *scratch;       /* reduction partial sums */
    size_t scratch_count;
    UnetCudaBadTarget *bad_dev; /* written by the loss kernels (device memory) */
    UnetCudaBadTarget *bad;     /* pinned copy, refreshed after every loss */
    float *class_weight;   /* device copy of the loss's class weights */
    size_t class_weight_count;

    UnetCudaConvAlgo *algos;
    size_t algo_count, algo_cap;

    /* Non-blocking reads (read_begin/read_end): pinned slots, one event each. */
    float *reads;          /* UNET_BACKEND_READ_SLOTS x UNET_BACKEND_READ_MAX floats */
    cudaEvent_t read_event[UNET_BACKEND_READ_SLOTS];

    /* Graph capture (cuda-exec.c). */
    int capturing;             /* between graph_begin and graph_end */
    char capture_refused[256]; /* first reason the capture cannot be used */
    UnetCudaPtrList capture_allocs;  /* allocated in the capture, not yet freed */
    UnetCudaPtrList capture_deferred; /* allocated before it, freed in it: freed after */
    UnetCudaPtrList dead;      /* allocations of a discarded capture: frees are dropped */
    unsigned long free_epoch;  /* frees outside captures; a graph is stale once it moves */
    /* BF16 precision: bf16 copies of a convolution's inputs and its bf16
     * output, one buffer grown on demand (uint16_t bit patterns). */
    uint16_t *bf16;
    size_t bf16_count;
} UnetCudaBackend;

static inline UnetCudaBackend *unet_cuda(UnetBackend *be)
{
    return (UnetCudaBackend *)be->impl;
}

/* Fill be->error with "cuda <op>: <call> failed: <error string>" and return
 * UNET_ERR_BACKEND (UNET_ERR_NOMEM for allocation failures). */
UnetStatus unet_cuda_fail(UnetCudaBackend *cb, cudaError_t e, const char *op, const char *call);
UnetStatus unet_cudnn_fail(UnetCudaBackend *cb, cudnnStatus_t s, const char *op, const char *call);

#define UNET_CUDA_TRY(cb, op, call)                                \
    do {                                                           \
        cudaError_t unet_e_ = (call);                              \
        if (unet_e_ != cudaSuccess)                                \
            return unet_cuda_fail((cb), unet_e_, (op), #call);     \
    } while (0)

#define UNET_CUDNN_TRY(cb, op, call)                               \
    do {                                                           \
        cudnnStatus_t unet_s_ = (call);                            \
        if (unet_s_ != CUDNN_STATUS_SUCCESS)                       \
            return unet_cudnn_fail((cb), unet_s_, (op), #call);    \
    } while (0)

/* Kernel launchers return cudaGetLastError(); this names the op on failure. */
#define UNET_CUDA_LAUNCH(cb, op, call) UNET_CUDA_TRY(cb, op, call)

/* Makes the backend's device current on the calling thread (the trainer
 * thread may not be the one that created the backend); cheap when it is. */
UnetStatus unet_cuda_enter(UnetCudaBackend *cb, const char *op);

#define UNET_CUDA_ENTER(cb, op)                                    \
    do {                                                           \
        UnetStatus unet_st_ = unet_cuda_enter((cb), (op));         \
        if (unet_st_ != UNET_OK)                                   \
            return unet_st_;                                       \
    } while (0)

/* Device memory on the backend's stream (stream-ordered when available). */
UnetStatus unet_cuda_malloc(UnetCudaBackend *cb, void **out, size_t bytes, const char *op);
void unet_cuda_free(UnetCudaBackend *cb, void *p);

/* Scratch of at least count doubles for a reduction. */
UnetStatus unet_cuda_scratch(UnetCudaBackend *cb, size_t count, const char *op, double **out);

/* Host to device through the pinned staging slots; returns once src may be
 * reused, without waiting for the copy to reach the device. */
UnetStatus unet_cuda_upload(UnetCudaBackend *cb, float *dst, const float *src, size_t count,
                            const char *op);

/* After a synchronisation: UNET_ERR_INVALID when a loss kernel saw a
 * target that is not a class id since the last check (then clears it). */
UnetStatus unet_cuda_check_deferred(UnetCudaBackend *cb);

/* Shape checks: "cuda <op>: <name> is [..], expected [..]" on mismatch. */
UnetStatus unet_cuda_check_tensor(UnetCudaBackend *cb, const char *op, const char *name,
                                  const UnetTensor *t);
UnetStatus unet_cuda_check_shape(UnetCudaBackend *cb, const char *op, const char *name,
                                 const UnetTensor *t, int n, int c, int h, int w);
UnetStatus unet_cuda_check_count(UnetCudaBackend *cb, const char *op, const char *name,
                                 const UnetTensor *t, size_t count);

/* Explains why CUDA cannot be used from a cudaGetDeviceCount/cudaSetDevice
 * failure: no driver, driver too old, no device. */
void unet_cuda_explain(cudaError_t e, char *buf, size_t size);

/* cuda-conv.c: the convolution entries of the vtable (and set_precision),
 * and cleanup. */
void unet_cuda_conv_install(UnetBackend *be);
UnetStatus unet_cuda_conv_init(UnetCudaBackend *cb);
void unet_cuda_conv_destroy(UnetCudaBackend *cb);

/* cuda-ops.c: every other op. */
void unet_cuda_ops_install(UnetBackend *be);

/* cuda-exec.c: non-blocking reads and graph capture (read_begin, read_end,
 * graph_*). init allocates the pinned read slots; destroy frees them. */
UnetStatus unet_cuda_exec_init(UnetCudaBackend *cb);
void unet_cuda_exec_install(UnetBackend *be);
void unet_cuda_exec_destroy(UnetCudaBackend *cb);
/* During a capture: records why it cannot be used (first reason wins) and
 * returns UNET_ERR_UNSUPPORTED "cuda <op>: cannot run inside a CUDA graph
 * capture: <why>". */
UnetStatus unet_cuda_capture_refuse(UnetCudaBackend *cb, const char *op, const char *why);
/* Allocation bookkeeping of a capture, called by unet_cuda_malloc/free:
 * track records a pointer allocated while capturing; release returns 1 when
 * the free of p was handled here (dropped or deferred), 0 to free it now. */
UnetStatus unet_cuda_capture_track(UnetCudaBackend *cb, void *p, const char *op);
int unet_cuda_capture_release(UnetCudaBackend *cb, void *p);

#endif
