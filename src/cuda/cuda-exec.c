/* cuda-exec.c - the CUDA backend's execution entries: non-blocking reads of
 * small tensors (the loss) and CUDA Graph capture of the training step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda-private.h"

struct UnetBackendGraph {
    cudaGraphExec_t exec;
    unsigned long free_epoch; /* cb->free_epoch when captured */
};

/* ---- pointer lists ------------------------------------------------------- */

static int list_push(UnetCudaPtrList *l, void *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        void **grown = realloc(l->p, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->p = grown;
        l->cap = cap;
    }
    l->p[l->n++] = p;
    return 0;
}

/* Removes p; returns 1 when it was there. */
static int list_remove(UnetCudaPtrList *l, const void *p)
{
    for (size_t i = l->n; i-- > 0;)
        if (l->p[i] == p) {
            l->p[i] = l->p[--l->n];
            return 1;
        }
    return 0;
}

static void list_free(UnetCudaPtrList *l)
{
    free(l->p);
    memset(l, 0, sizeof *l);
}

/* ---- capture bookkeeping ------------------------------------------------- */

UnetStatus unet_cuda_capture_refuse(UnetCudaBackend *cb, const char *op, const char *why)
{
    if (!cb->capture_refused[0])
        snprintf(cb->capture_refused, sizeof cb->capture_refused, "%s: %s", op, why);
    return unet_error_set(&cb->base.error, UNET_ERR_UNSUPPORTED,
                          "cuda %s: cannot run inside a CUDA graph capture: %s", op, why);
}

UnetStatus unet_cuda_capture_track(UnetCudaBackend *cb, void *p, const char *op)
{
    if (p && list_push(&cb->capture_allocs, p) != 0) {
        /* the pointer belongs to the capture: it dies with it */
        (void)cudaFreeAsync(p, cb->stream);
        return unet_cuda_capture_refuse(cb, op, "out of host memory for the capture's records");
    }
    return UNET_OK;
}

int unet_cuda_capture_release(UnetCudaBackend *cb, void *p)
{
    if (cb->dead.n && list_remove(&cb->dead, p))
        return 1; /* its capture was discarded: the address never held memory */
    if (!cb->capturing) {
        cb->free_epoch++;
        return 0;
    }
    if (list_remove(&cb->capture_allocs, p))
        return 0; /* a free node of the graph */
    /* A free node may only release a graph allocation: free it after the
     * capture, which cannot be replayed (the memory it reads would move). */
    if (list_push(&cb->capture_deferred, p) != 0)
        return 0; /* freed now; the capture fails on it and is discarded */
    unet_cuda_capture_refuse(cb, "free", "the step frees memory allocated before the capture");
    return 1;
}

/* ---- reads ---------------------------------------------------------------- */

static UnetStatus check_slot(UnetCudaBackend *cb, int slot, size_t count, const char *op)
{
    if (slot < 0 || slot >= UNET_BACKEND_READ_SLOTS || count > UNET_BACKEND_READ_MAX)
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                              "cuda %s: slot %d or %zu values out of range (%d slots of %d)", op,
                              slot, count, UNET_BACKEND_READ_SLOTS, UNET_BACKEND_READ_MAX);
    return UNET_OK;
}

static UnetStatus cuda_read_begin(UnetBackend *be, int slot, const UnetTensor *t)
{
    const char *op = "read_begin";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    UnetStatus st = unet_cuda_check_tensor(cb, op, "t", t);
    if (st == UNET_OK)
        st = check_slot(cb, slot, unet_tensor_numel(t), op);
    if (st != UNET_OK)
        return st;
    if (cb->capturing)
        return unet_cuda_capture_refuse(cb, op, "reads belong outside the captured step");
    float *dst = cb->reads + (size_t)slot * UNET_BACKEND_READ_MAX;
    UNET_CUDA_TRY(cb, op, cudaMemcpyAsync(dst, t->data, unet_tensor_numel(t) * sizeof(float),
                                          cudaMemcpyDeviceToHost, cb->stream));
    UNET_CUDA_TRY(cb, op, cudaEventRecord(cb->read_event[slot], cb->stream));
    return UNET_OK;
}

static UnetStatus cuda_read_end(UnetBackend *be, int slot, float *host, size_t count)
{
    const char *op = "read_end";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    UnetStatus st = check_slot(cb, slot, count, op);
    if (st != UNET_OK)
        return st;
    if (cb->capturing)
        return unet_cuda_capture_refuse(cb, op, "it waits for the device");
    /* waits for this copy only: work queued after it keeps the GPU busy */
    UNET_CUDA_TRY(cb, op, cudaEventSynchronize(cb->read_event[slot]));
    memcpy(host, cb->reads + (size_t)slot * UNET_BACKEND_READ_MAX, count * sizeof(float));
    /* a bad class id found by a loss before the copy is reported now */
    return unet_cuda_check_deferred(cb);
}

/* ---- graphs ----------------------------------------------------------------- */

static UnetStatus cuda_graph_begin(UnetBackend *be)
{
    const char *op = "graph_begin";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    if (cb->capturing)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: a capture is already under way", op);
    if (!cb->pools)
        return unet_error_set(&be->error, UNET_ERR_UNSUPPORTED,
                              "cuda %s: the device has no stream-ordered allocator, which graphs "
                              "need for the step's activations",
                              op);
    enum cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    UNET_CUDA_TRY(cb, op, cudaStreamIsCapturing(cb->stream, &status));
    if (status != cudaStreamCaptureStatusNone)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: the stream is already being captured", op);
    cb->capture_refused[0] = '\0';
    cb->capture_allocs.n = 0;
    cb->capture_deferred.n = 0;
    UNET_CUDA_TRY(cb, op, cudaStreamBeginCapture(cb->stream, cudaStreamCaptureModeThreadLocal));
    cb->capturing = 1;
    return UNET_OK;
}

static UnetStatus cuda_graph_end(UnetBackend *be, UnetBackendGraph **out)
{
    const char *op = "graph_end";
    UnetCudaBackend *cb = unet_cuda(be);
    *out = NULL;
    if (!cb->capturing)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "cuda %s: no capture is under way",
                              op);
    UNET_CUDA_ENTER(cb, op);
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(cb->stream, &graph);
    cb->capturing = 0;
    /* Allocations the capture kept would need the graph launched (and
     * freed) before the next replay: refuse them, and let later frees of
     * those addresses pass as no-ops. */
    if (cb->capture_allocs.n && !cb->capture_refused[0])
        snprintf(cb->capture_refused, sizeof cb->capture_refused,
                 "the step keeps %zu allocation(s) made during the capture",
                 cb->capture_allocs.n);
    for (size_t i = 0; i < cb->capture_allocs.n; i++)
        if (list_push(&cb->dead, cb->capture_allocs.p[i]) != 0)
            break;
    cb->capture_allocs.n = 0;
    for (size_t i = 0; i < cb->capture_deferred.n; i++)
        unet_cuda_free(cb, cb->capture_deferred.p[i]);
    cb->capture_deferred.n = 0;
    if (e != cudaSuccess) {
        if (graph)
            cudaGraphDestroy(graph);
        UnetStatus st = unet_cuda_fail(cb, e, op, "cudaStreamEndCapture");
        if (cb->capture_refused[0])
            unet_error_set(&be->error, UNET_ERR_UNSUPPORTED, "cuda %s: %s", op,
                           cb->capture_refused);
        else
            be->error.status = st == UNET_ERR_NOMEM ? st : UNET_ERR_UNSUPPORTED;
        return be->error.status;
    }
    if (cb->capture_refused[0]) {
        cudaGraphDestroy(graph);
        return unet_error_set(&be->error, UNET_ERR_UNSUPPORTED, "cuda %s: %s", op,
                              cb->capture_refused);
    }
    UnetBackendGraph *g = calloc(1, sizeof *g);
    if (!g) {
        cudaGraphDestroy(graph);
        return unet_error_set(&be->error, UNET_ERR_NOMEM, "cuda %s: out of host memory", op);
    }
    e = cudaGraphInstantiate(&g->exec, graph, 0);
    cudaGraphDestroy(graph); /* the executable graph keeps what it needs */
    if (e != cudaSuccess) {
        free(g);
        UnetStatus st = unet_cuda_fail(cb, e, op, "cudaGraphInstantiate");
        be->error.status = st == UNET_ERR_NOMEM ? st : UNET_ERR_UNSUPPORTED;
        return be->error.status;
    }
    g->free_epoch = cb->free_epoch;
    /* The graph has its own memory for the step's activations: hand back
     * the blocks the uncaptured steps left in the stream-ordered pool. */
    if (cudaMemPoolTrimTo(cb->pool, 0) != cudaSuccess)
        (void)cudaGetLastError();
    *out = g;
    return UNET_OK;
}

static UnetStatus cuda_graph_launch(UnetBackend *be, UnetBackendGraph *g)
{
    const char *op = "graph_launch";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    if (!g || cb->capturing)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: no graph given, or a capture is under way", op);
    if (g->free_epoch != cb->free_epoch)
        return unet_error_set(&be->error, UNET_ERR_UNSUPPORTED,
                              "cuda %s: memory the graph uses was freed since its capture; "
                              "capture the step again",
                              op);
    UNET_CUDA_TRY(cb, op, cudaGraphLaunch(g->exec, cb->stream));
    return UNET_OK;
}

static void cuda_graph_free(UnetBackend *be, UnetBackendGraph *g)
{
    if (!g)
        return;
    UnetCudaBackend *cb = unet_cuda(be);
    if (unet_cuda_enter(cb, "graph_free") == UNET_OK && g->exec &&
        cudaGraphExecDestroy(g->exec) != cudaSuccess)
        (void)cudaGetLastError();
    free(g);
}

/* ---- life cycle ------------------------------------------------------------- */

UnetStatus unet_cuda_exec_init(UnetCudaBackend *cb)
{
    const char *op = "start (read slots)";
    UNET_CUDA_TRY(cb, op, cudaHostAlloc((void **)&cb->reads,
                                        (size_t)UNET_BACKEND_READ_SLOTS * UNET_BACKEND_READ_MAX *
                                            sizeof(float),
                                        cudaHostAllocDefault));
    memset(cb->reads, 0, (size_t)UNET_BACKEND_READ_SLOTS * UNET_BACKEND_READ_MAX * sizeof(float));
    for (int i = 0; i < UNET_BACKEND_READ_SLOTS; i++)
        UNET_CUDA_TRY(cb, op, cudaEventCreateWithFlags(&cb->read_event[i], cudaEventDisableTiming));
    return UNET_OK;
}

void unet_cuda_exec_install(UnetBackend *be)
{
    be->read_begin = cuda_read_begin;
    be->read_end = cuda_read_end;
    be->graph_begin = cuda_graph_begin;
    be->graph_end = cuda_graph_end;
    be->graph_launch = cuda_graph_launch;
    be->graph_free = cuda_graph_free;
    /* gradient_allreduce stays NULL: one device */
}

void unet_cuda_exec_destroy(UnetCudaBackend *cb)
{
    if (cb->capturing) {
        UnetBackendGraph *g = NULL;
        if (cuda_graph_end(&cb->base, &g) == UNET_OK)
            cuda_graph_free(&cb->base, g);
    }
    for (int i = 0; i < UNET_BACKEND_READ_SLOTS; i++)
        if (cb->read_event[i])
            cudaEventDestroy(cb->read_event[i]);
    if (cb->reads)
        cudaFreeHost(cb->reads);
    cb->reads = NULL;
    list_free(&cb->capture_allocs);
    list_free(&cb->capture_deferred);
    list_free(&cb->dead);
    (void)cudaGetLastError();
}
