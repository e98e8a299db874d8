/* cuda-backend.c - the CUDA backend: start-up, memory, transfers and error reporting. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda-launch.h"
#include "cuda-private.h"

/* Floats per pinned staging slot (4 MiB); the ring of slots
 * (UNET_CUDA_STAGING_SLOTS) lets uploads fill slots while earlier ones copy. */
#define UNET_CUDA_STAGING_FLOATS ((size_t)1 << 20)

/* Default cuDNN workspace budget when UNET_CUDA_WORKSPACE_MB is not set:
 * this, or a quarter of the free memory at start if that is less. */
#define UNET_CUDA_WORKSPACE_DEFAULT ((size_t)1 << 30)

/* "cudaMemcpyAsync(dst, ...)" -> "cudaMemcpyAsync" for messages. */
static void call_name(const char *call, char *buf, size_t size)
{
    size_t len = strcspn(call, "(");
    if (len >= size)
        len = size - 1;
    memcpy(buf, call, len);
    buf[len] = '\0';
}

UnetStatus unet_cuda_fail(UnetCudaBackend *cb, cudaError_t e, const char *op, const char *call)
{
    char name[64];
    call_name(call, name, sizeof name);
    (void)cudaGetLastError(); /* a handled error must not resurface at the next launch check */
    UnetStatus st = e == cudaErrorMemoryAllocation ? UNET_ERR_NOMEM : UNET_ERR_BACKEND;
    if (e == cudaErrorMemoryAllocation) {
        size_t free_b = 0, total_b = 0;
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess)
            (void)cudaGetLastError();
        /* At start-up only a few small buffers are asked for: batch and
         * tile sizes are not the cause. Later the model or trainer adds
         * what to lower (UNET_MEMORY_ADVICE). */
        if (!strncmp(op, "start", 5))
            return unet_error_set(&cb->base.error, st,
                                  "cuda %s: %s: out of GPU memory at start-up (%.0f MiB free of "
                                  "%.0f MiB); other processes hold the GPU's memory (see "
                                  "nvidia-smi), or use --device cpu",
                                  op, name, free_b / 1048576.0, total_b / 1048576.0);
        return unet_error_set(&cb->base.error, st,
                              "cuda %s: %s: out of GPU memory (%.0f MiB free of %.0f MiB)",
                              op, name, free_b / 1048576.0, total_b / 1048576.0);
    }
    return unet_error_set(&cb->base.error, st, "cuda %s: %s failed: %s (%s)", op, name,
                          cudaGetErrorString(e), cudaGetErrorName(e));
}

UnetStatus unet_cudnn_fail(UnetCudaBackend *cb, cudnnStatus_t s, const char *op, const char *call)
{
    char name[64], detail[256];
    call_name(call, name, sizeof name);
    cudnnGetLastErrorString(detail, sizeof detail);
    (void)cudaGetLastError();
    UnetStatus st = s == CUDNN_STATUS_ALLOC_FAILED ? UNET_ERR_NOMEM : UNET_ERR_BACKEND;
    return unet_error_set(&cb->base.error, st, "cuda %s: %s failed: %s%s%s", op, name,
                          cudnnGetErrorString(s), detail[0] ? ": " : "", detail);
}

void unet_cuda_explain(cudaError_t e, char *buf, size_t size)
{
    int driver = 0, runtime = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess)
        driver = 0;
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess)
        runtime = 0;
    (void)cudaGetLastError();
    if (e == cudaErrorInsufficientDriver && driver == 0)
        snprintf(buf, size,
                 "no NVIDIA driver is installed (libcuda.so.1 could not be loaded); install the "
                 "NVIDIA driver to use the GPU, or use --device cpu");
    else if (e == cudaErrorInsufficientDriver)
        snprintf(buf, size,
                 "the NVIDIA driver supports CUDA %d.%d but this build uses the CUDA %d.%d "
                 "runtime; update the NVIDIA driver, or use --device cpu",
                 driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
    else if (e == cudaErrorNoDevice)
        snprintf(buf, size,
                 "no CUDA device is visible (the driver is installed; check nvidia-smi and "
                 "CUDA_VISIBLE_DEVICES), or use --device cpu");
    else
        snprintf(buf, size, "CUDA cannot start: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
}

static _Thread_local int thread_device = -1;

UnetStatus unet_cuda_enter(UnetCudaBackend *cb, const char *op)
{
    if (thread_device != cb->device) {
        UNET_CUDA_TRY(cb, op, cudaSetDevice(cb->device));
        thread_device = cb->device;
    }
    return UNET_OK;
}

UnetStatus unet_cuda_malloc(UnetCudaBackend *cb, void **out, size_t bytes, const char *op)
{
    *out = NULL;
    if (!bytes)
        return UNET_OK;
    UNET_CUDA_ENTER(cb, op);
    if (cb->capturing && !cb->pools)
        return unet_cuda_capture_refuse(cb, op, "the device has no stream-ordered allocator");
    if (cb->pools)
        UNET_CUDA_TRY(cb, op, cudaMallocAsync(out, bytes, cb->stream));
    else
        UNET_CUDA_TRY(cb, op, cudaMalloc(out, bytes));
    if (cb->capturing)
        return unet_cuda_capture_track(cb, *out, op);
    return UNET_OK;
}

void unet_cuda_free(UnetCudaBackend *cb, void *p)
{
    if (!p || unet_cuda_enter(cb, "free") != UNET_OK)
        return;
    if (unet_cuda_capture_release(cb, p))
        return;
    cudaError_t e = cb->pools ? cudaFreeAsync(p, cb->stream) : cudaFree(p);
    if (e != cudaSuccess)
        unet_cuda_fail(cb, e, "free", cb->pools ? "cudaFreeAsync" : "cudaFree");
}

UnetStatus unet_cuda_scratch(UnetCudaBackend *cb, size_t count, const char *op, double **out)
{
    if (count > cb->scratch_count && cb->capturing)
        return unet_cuda_capture_refuse(cb, op, "its reduction scratch would grow");
    if (count > cb->scratch_count) {
        unet_cuda_free(cb, cb->scratch);
        cb->scratch = NULL;
        cb->scratch_count = 0;
        size_t want = count < 4096 ? 4096 : count;
        UnetStatus st = unet_cuda_malloc(cb, (void **)&cb->scratch, want * sizeof(double), op);
        if (st != UNET_OK)
            return st;
        cb->scratch_count = want;
    }
    *out = cb->scratch;
    return UNET_OK;
}

UnetStatus unet_cuda_upload(UnetCudaBackend *cb, float *dst, const float *src, size_t count,
                            const char *op)
{
    UNET_CUDA_ENTER(cb, op);
    if (cb->capturing)
        return unet_cuda_capture_refuse(cb, op, "uploads reuse pinned staging slots");
    for (size_t done = 0; done < count;) {
        size_t len = count - done < cb->staging_slot ? count - done : cb->staging_slot;
        int slot = cb->staging_next;
        cb->staging_next = (cb->staging_next + 1) % UNET_CUDA_STAGING_SLOTS;
        float *stage = cb->staging + (size_t)slot * cb->staging_slot;
        UNET_CUDA_TRY(cb, op, cudaEventSynchronize(cb->staging_event[slot]));
        memcpy(stage, src + done, len * sizeof(float));
        UNET_CUDA_TRY(cb, op, cudaMemcpyAsync(dst + done, stage, len * sizeof(float),
                                              cudaMemcpyHostToDevice, cb->stream));
        UNET_CUDA_TRY(cb, op, cudaEventRecord(cb->staging_event[slot], cb->stream));
        done += len;
    }
    return UNET_OK;
}

/* Device to host: chunk i is copied into a slot while chunk i-1 is moved out
 * of the other one; returns when dst holds everything. */
static UnetStatus cuda_download(UnetCudaBackend *cb, float *dst, const float *src, size_t count,
                                const char *op)
{
    UNET_CUDA_ENTER(cb, op);
    if (cb->capturing)
        return unet_cuda_capture_refuse(cb, op, "a download waits for the device");
    const size_t slot_len = cb->staging_slot;
    size_t chunks = (count + slot_len - 1) / slot_len;
    for (size_t i = 0; i <= chunks; i++) {
        if (i < chunks) {
            size_t off = i * slot_len, len = count - off < slot_len ? count - off : slot_len;
            float *stage = cb->staging + (i & 1) * slot_len;
            UNET_CUDA_TRY(cb, op, cudaMemcpyAsync(stage, src + off, len * sizeof(float),
                                                  cudaMemcpyDeviceToHost, cb->stream));
            UNET_CUDA_TRY(cb, op, cudaEventRecord(cb->staging_event[i & 1], cb->stream));
        }
        if (i > 0) {
            size_t j = i - 1, off = j * slot_len;
            size_t len = count - off < slot_len ? count - off : slot_len;
            UNET_CUDA_TRY(cb, op, cudaEventSynchronize(cb->staging_event[j & 1]));
            memcpy(dst + off, cb->staging + (j & 1) * slot_len, len * sizeof(float));
        }
    }
    cb->staging_next = (int)(chunks & 1);
    return unet_cuda_check_deferred(cb);
}

UnetStatus unet_cuda_check_deferred(UnetCudaBackend *cb)
{
    const volatile UnetCudaBadTarget *bad = cb->bad;
    if (!bad->flag)
        return UNET_OK;
    UnetCudaBadTarget seen = { 0, bad->image, bad->y, bad->x, bad->classes, bad->value };
    memset(cb->bad, 0, sizeof *cb->bad);
    UNET_CUDA_TRY(cb, "loss_forward_backward",
                  cudaMemsetAsync(cb->bad_dev, 0, sizeof *cb->bad_dev, cb->stream));
    return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                          "cuda loss_forward_backward: target value %g at image %d pixel (%d,%d) "
                          "is not a class id in 0..%d",
                          (double)seen.value, seen.image, seen.y, seen.x, seen.classes - 1);
}

UnetStatus unet_cuda_check_tensor(UnetCudaBackend *cb, const char *op, const char *name,
                                  const UnetTensor *t)
{
    if (!t || !t->data)
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                              "cuda %s: tensor %s is missing or has no memory", op, name);
    if (t->layout != 0)
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                              "cuda %s: tensor %s has layout %d, which this backend did not make",
                              op, name, t->layout);
    return UNET_OK;
}

UnetStatus unet_cuda_check_shape(UnetCudaBackend *cb, const char *op, const char *name,
                                 const UnetTensor *t, int n, int c, int h, int w)
{
    UnetStatus st = unet_cuda_check_tensor(cb, op, name, t);
    if (st != UNET_OK)
        return st;
    if (t->n != n || t->c != c || t->h != h || t->w != w)
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                              "cuda %s: %s is [%d,%d,%d,%d], expected [%d,%d,%d,%d]", op, name,
                              t->n, t->c, t->h, t->w, n, c, h, w);
    return UNET_OK;
}

UnetStatus unet_cuda_check_count(UnetCudaBackend *cb, const char *op, const char *name,
                                 const UnetTensor *t, size_t count)
{
    UnetStatus st = unet_cuda_check_tensor(cb, op, name, t);
    if (st != UNET_OK)
        return st;
    if (unet_tensor_numel(t) != count)
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                              "cuda %s: %s has %zu values, expected %zu", op, name,
                              unet_tensor_numel(t), count);
    return UNET_OK;
}

/* ---- memory ------------------------------------------------------------ */

static float *cuda_buffer_alloc(UnetBackend *be, size_t count)
{
    void *p = NULL;
    if (count > SIZE_MAX / sizeof(float)) {
        unet_error_set(&be->error, UNET_ERR_NOMEM,
                       "cuda buffer_alloc: %zu floats do not fit in the address space", count);
        return NULL;
    }
    /* An empty arena still gets a distinct pointer, as malloc(1) would. */
    size_t bytes = (count ? count : 1) * sizeof(float);
    if (unet_cuda_malloc(unet_cuda(be), &p, bytes, "buffer_alloc") != UNET_OK)
        return NULL;
    return p;
}

static UnetStatus check_pointer(UnetBackend *be, const void *p, size_t count, const char *op)
{
    if (!p && count)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "cuda %s: host or device pointer is NULL",
                              op);
    return UNET_OK;
}

static void cuda_buffer_free(UnetBackend *be, float *buf)
{
    unet_cuda_free(unet_cuda(be), buf);
}

static UnetStatus cuda_buffer_fill(UnetBackend *be, float *buf, size_t count, float value)
{
    UNET_CUDA_ENTER(unet_cuda(be), "buffer_fill");
    UnetStatus st = check_pointer(be, buf, count, "buffer_fill");
    if (st != UNET_OK)
        return st;
    UNET_CUDA_LAUNCH(unet_cuda(be), "buffer_fill",
                     unet_fill_cuda(unet_cuda(be)->stream, buf, count, value));
    return UNET_OK;
}

static UnetStatus cuda_buffer_upload(UnetBackend *be, float *dst, const float *host_src,
                                     size_t count)
{
    UnetStatus st = check_pointer(be, host_src, count, "buffer_upload");
    if (st == UNET_OK)
        st = check_pointer(be, dst, count, "buffer_upload");
    if (st != UNET_OK)
        return st;
    return unet_cuda_upload(unet_cuda(be), dst, host_src, count, "buffer_upload");
}

static UnetStatus cuda_buffer_download(UnetBackend *be, float *host_dst, const float *src,
                                       size_t count)
{
    UnetStatus st = check_pointer(be, host_dst, count, "buffer_download");
    if (st == UNET_OK)
        st = check_pointer(be, src, count, "buffer_download");
    if (st != UNET_OK)
        return st;
    return cuda_download(unet_cuda(be), host_dst, src, count, "buffer_download");
}

static UnetStatus cuda_tensor_init(UnetBackend *be, UnetTensor *t, int n, int c, int h, int w)
{
    memset(t, 0, sizeof *t);
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda tensor_init: invalid shape [%d,%d,%d,%d]", n, c, h, w);
    size_t bytes = (size_t)n * c * h * w * sizeof(float);
    void *p = NULL;
    UnetStatus st = unet_cuda_malloc(unet_cuda(be), &p, bytes, "tensor_init");
    if (st != UNET_OK)
        return st;
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->data = p;
    return UNET_OK;
}

static void cuda_tensor_view(UnetBackend *be, UnetTensor *t, float *buf, int n, int c, int h,
                             int w)
{
    (void)be;
    memset(t, 0, sizeof *t);
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->data = buf;
    t->is_view = 1;
}

static void cuda_tensor_release(UnetBackend *be, UnetTensor *t)
{
    if (!t)
        return;
    if (!t->is_view)
        unet_cuda_free(unet_cuda(be), t->data);
    memset(t, 0, sizeof *t);
}

static UnetStatus cuda_tensor_upload(UnetBackend *be, UnetTensor *t, const float *host_nchw)
{
    UnetStatus st = unet_cuda_check_tensor(unet_cuda(be), "tensor_upload", "t", t);
    if (st == UNET_OK)
        st = check_pointer(be, host_nchw, 1, "tensor_upload");
    if (st != UNET_OK)
        return st;
    return unet_cuda_upload(unet_cuda(be), t->data, host_nchw, unet_tensor_numel(t),
                            "tensor_upload");
}

static UnetStatus cuda_tensor_download(UnetBackend *be, float *host_nchw, const UnetTensor *t)
{
    UnetStatus st = unet_cuda_check_tensor(unet_cuda(be), "tensor_download", "t", t);
    if (st == UNET_OK)
        st = check_pointer(be, host_nchw, 1, "tensor_download");
    if (st != UNET_OK)
        return st;
    return cuda_download(unet_cuda(be), host_nchw, t->data, unet_tensor_numel(t),
                         "tensor_download");
}

static UnetStatus cuda_tensor_fill(UnetBackend *be, UnetTensor *t, float value)
{
    UnetStatus st = unet_cuda_check_tensor(unet_cuda(be), "tensor_fill", "t", t);
    if (st != UNET_OK)
        return st;
    return cuda_buffer_fill(be, t->data, unet_tensor_numel(t), value);
}

static UnetStatus cuda_synchronize(UnetBackend *be)
{
    UNET_CUDA_ENTER(unet_cuda(be), "synchronize");
    if (unet_cuda(be)->capturing)
        return unet_cuda_capture_refuse(unet_cuda(be), "synchronize", "it waits for the device");
    UNET_CUDA_TRY(unet_cuda(be), "synchronize", cudaStreamSynchronize(unet_cuda(be)->stream));
    return unet_cuda_check_deferred(unet_cuda(be));
}

/* ---- life cycle -------------------------------------------------------- */

static void cuda_destroy(UnetBackend *be)
{
    UnetCudaBackend *cb = unet_cuda(be);
    if (unet_cuda_enter(cb, "destroy") != UNET_OK)
        (void)cudaGetLastError();
    if (cb->stream && cudaStreamSynchronize(cb->stream) != cudaSuccess)
        (void)cudaGetLastError();
    unet_cuda_exec_destroy(cb);
    unet_cuda_conv_destroy(cb);
    unet_cuda_free(cb, cb->scratch);
    unet_cuda_free(cb, cb->class_weight);
    unet_cuda_free(cb, cb->bad_dev);
    if (cb->stream && cudaStreamSynchronize(cb->stream) != cudaSuccess)
        (void)cudaGetLastError();
    /* Give the pooled blocks back to the driver (tensors the caller did not
     * release stay allocated). */
    if (cb->pools && cudaMemPoolTrimTo(cb->pool, 0) != cudaSuccess)
        (void)cudaGetLastError();
    for (int i = 0; i < UNET_CUDA_STAGING_SLOTS; i++)
        if (cb->staging_event[i])
            cudaEventDestroy(cb->staging_event[i]);
    if (cb->staging)
        cudaFreeHost(cb->staging);
    if (cb->bad)
        cudaFreeHost(cb->bad);
    if (cb->cudnn)
        cudnnDestroy(cb->cudnn);
    if (cb->stream)
        cudaStreamDestroy(cb->stream);
    (void)cudaGetLastError();
    free(cb);
}

static size_t env_size_mb(const char *name, size_t fallback)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return fallback;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end)
        return fallback;
    return (size_t)v << 20;
}

/* Fills the error from a start-up failure, names the device, and frees cb. */
static UnetBackend *fail_start(UnetCudaBackend *cb, UnetError *err)
{
    unet_error_set(err, cb->base.error.status, "CUDA device %d: %s", cb->device,
                   cb->base.error.message);
    cuda_destroy(&cb->base);
    return NULL;
}

UnetBackend *unet_backend_cuda_new(int device_index, UnetError *err)
{
    char why[512];
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        unet_cuda_explain(e, why, sizeof why);
        unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s", why);
        return NULL;
    }
    if (count == 0) {
        unet_cuda_explain(cudaErrorNoDevice, why, sizeof why);
        unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s", why);
        return NULL;
    }
    if (device_index < 0 || device_index >= count) {
        unet_error_set(err, UNET_ERR_INVALID,
                       "there is no CUDA device %d: this machine has %d (0 to %d)", device_index,
                       count, count - 1);
        return NULL;
    }

    UnetCudaBackend *cb = calloc(1, sizeof *cb);
    if (!cb) {
        unet_error_set(err, UNET_ERR_NOMEM, "out of host memory starting the CUDA backend");
        return NULL;
    }
    UnetBackend *be = &cb->base;
    be->name = "cuda";
    be->impl = cb;
    be->destroy = cuda_destroy;
    cb->device = device_index;
    const char *op = "start";

#define START_TRY(call)                                          \
    do {                                                         \
        cudaError_t e_ = (call);                                 \
        if (e_ != cudaSuccess) {                                 \
            unet_cuda_fail(cb, e_, op, #call);                   \
            return fail_start(cb, err);                          \
        }                                                        \
    } while (0)
#define START_CUDNN_TRY(call)                                    \
    do {                                                         \
        cudnnStatus_t s_ = (call);                               \
        if (s_ != CUDNN_STATUS_SUCCESS) {                        \
            unet_cudnn_fail(cb, s_, op, #call);                  \
            return fail_start(cb, err);                          \
        }                                                        \
    } while (0)

    if (unet_cuda_enter(cb, op) != UNET_OK)
        return fail_start(cb, err);
    int major = 0, minor = 0, pools = 0;
    START_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_index));
    START_TRY(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device_index));
    START_TRY(cudaDeviceGetAttribute(&cb->sm_count, cudaDevAttrMultiProcessorCount, device_index));
    START_TRY(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device_index));
    if (major < 8) {
        unet_error_set(&be->error, UNET_ERR_UNSUPPORTED,
                       "compute capability %d.%d is too old: this build has GPU code for 8.0 and "
                       "newer (sm_80, sm_90, compute_90)",
                       major, minor);
        return fail_start(cb, err);
    }
    /* The stream-ordered pool keeps freed blocks for reuse instead of
     * returning them to the driver at every synchronisation. */
    if (pools) {
        uint64_t keep = UINT64_MAX;
        START_TRY(cudaDeviceGetDefaultMemPool(&cb->pool, device_index));
        START_TRY(cudaMemPoolSetAttribute(cb->pool, cudaMemPoolAttrReleaseThreshold, &keep));
        cb->pools = 1;
    }
    START_TRY(cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking));

    size_t free_b = 0, total_b = 0;
    START_TRY(cudaMemGetInfo(&free_b, &total_b));
    size_t ws_default = free_b / 4 < UNET_CUDA_WORKSPACE_DEFAULT ? free_b / 4
                                                                 : UNET_CUDA_WORKSPACE_DEFAULT;
    cb->workspace_limit = env_size_mb("UNET_CUDA_WORKSPACE_MB", ws_default);
    const char *tf32 = getenv("UNET_CUDA_TF32");
    cb->tf32_env_off = tf32 && !strcmp(tf32, "0");
    be->precision = UNET_PRECISION_TF32;

    cb->staging_slot = UNET_CUDA_STAGING_FLOATS;
    START_TRY(cudaHostAlloc((void **)&cb->staging,
                            UNET_CUDA_STAGING_SLOTS * cb->staging_slot * sizeof(float),
                            cudaHostAllocDefault));
    for (int i = 0; i < UNET_CUDA_STAGING_SLOTS; i++)
        START_TRY(cudaEventCreateWithFlags(&cb->staging_event[i], cudaEventDisableTiming));
    START_TRY(cudaHostAlloc((void **)&cb->bad, sizeof *cb->bad, cudaHostAllocDefault));
    memset(cb->bad, 0, sizeof *cb->bad);
    if (unet_cuda_malloc(cb, (void **)&cb->bad_dev, sizeof *cb->bad_dev, op) != UNET_OK)
        return fail_start(cb, err);
    START_TRY(cudaMemsetAsync(cb->bad_dev, 0, sizeof *cb->bad_dev, cb->stream));
    if (unet_cuda_exec_init(cb) != UNET_OK)
        return fail_start(cb, err);

    /* cuDNN: the library, then the sublibraries we call, so a missing
     * libcudnn_cnn.so.9 is reported here rather than at the first conv. */
    size_t cudnn_version = cudnnGetVersion();
    if (cudnn_version / 10000 != CUDNN_MAJOR) {
        unet_error_set(&be->error, UNET_ERR_BACKEND,
                       "cuDNN %zu.%zu is loaded but this build needs cuDNN %d; check "
                       "LD_LIBRARY_PATH",
                       cudnn_version / 10000, cudnn_version % 10000 / 100, CUDNN_MAJOR);
        return fail_start(cb, err);
    }
    op = "start (cuDNN)";
    START_CUDNN_TRY(cudnnCreate(&cb->cudnn));
    START_CUDNN_TRY(cudnnOpsVersionCheck());
    START_CUDNN_TRY(cudnnCnnVersionCheck());
    START_CUDNN_TRY(cudnnSetStream(cb->cudnn, cb->stream));
    if (unet_cuda_conv_init(cb) != UNET_OK)
        return fail_start(cb, err);

    /* A first kernel proves this build's GPU code runs on the device. */
    op = "start (test kernel)";
    double *probe = NULL;
    if (unet_cuda_scratch(cb, 4096, op, &probe) != UNET_OK)
        return fail_start(cb, err);
    START_TRY(unet_fill_cuda(cb->stream, (float *)probe, 16, 0.0f));
    START_TRY(cudaStreamSynchronize(cb->stream));
#undef START_TRY
#undef START_CUDNN_TRY

    be->buffer_alloc = cuda_buffer_alloc;
    be->buffer_free = cuda_buffer_free;
    be->buffer_fill = cuda_buffer_fill;
    be->buffer_upload = cuda_buffer_upload;
    be->buffer_download = cuda_buffer_download;
    be->tensor_init = cuda_tensor_init;
    be->tensor_view = cuda_tensor_view;
    be->tensor_release = cuda_tensor_release;
    be->tensor_upload = cuda_tensor_upload;
    be->tensor_download = cuda_tensor_download;
    be->tensor_fill = cuda_tensor_fill;
    be->synchronize = cuda_synchronize;
    unet_cuda_conv_install(be);
    unet_cuda_ops_install(be);
    unet_cuda_exec_install(be);
    unet_error_clear(&be->error);
    return be;
}
