/* cudasim-runtime.c - the CUDA runtime API functions the backend calls, on a simulated device in host memory.
 *
 * A stream is a FIFO of deferred operations (kernels, copies, memsets,
 * event records, stream-ordered frees, cuDNN calls) that runs only at a
 * synchronisation point, so host code that reads a result or reuses a
 * staging buffer before synchronising sees stale data, as on a GPU under
 * load. While a stream captures, operations go into its graph instead. Device
 * memory is host memory with exact accounting against a budget; every device
 * pointer given to a copy, a memset or a kernel is checked against the live
 * allocations (out of range, freed or foreign pointers are a sticky fault,
 * cudasim_fault). Environment: UNET_CUDASIM_DEVICES=N (0: no device),
 * UNET_CUDASIM_NO_DRIVER=1, UNET_CUDASIM_MEMORY_MB=N (default 4096),
 * UNET_CUDASIM_SMS=N (multiprocessors, default 8). */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cuda_runtime_api.h>

#include "cudasim.h"

#define SIM_ALIGN 256
#define SIM_DEVICE_NAME "CUDA simulator (CPU)"
#define SIM_DRIVER_VERSION 13000

/* ---- global state -------------------------------------------------------- */

static pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread cudaError_t last_error = cudaSuccess;
static __thread int current_device = 0;

static int env_read;
static int env_devices = 1, env_no_driver;
static int sm_count = 8; /* UNET_CUDASIM_SMS: 132 makes reductions split as on an H100 */
static size_t mem_budget = (size_t)4096 << 20;
static size_t mem_used;

/* UNET_CUDASIM_STATS=1: counts printed to stderr at exit. */
static struct {
    unsigned long long launches, kernels_run, copies, captures, graph_launches, syncs;
    size_t peak;
} stats;

static void print_stats(void)
{
    fprintf(stderr,
            "cudasim: %llu kernel launches (%llu run), %llu copies, %llu captures, %llu graph "
            "launches, %llu synchronisations, peak device memory %.1f MiB\n",
            stats.launches, stats.kernels_run, stats.copies, stats.captures, stats.graph_launches,
            stats.syncs, stats.peak / 1048576.0);
}

static void read_env(void)
{
    if (env_read)
        return;
    env_read = 1;
    const char *st = getenv("UNET_CUDASIM_STATS");
    if (st && !strcmp(st, "1"))
        atexit(print_stats);
    const char *s = getenv("UNET_CUDASIM_DEVICES");
    if (s && *s)
        env_devices = atoi(s) < 0 ? 0 : atoi(s);
    s = getenv("UNET_CUDASIM_NO_DRIVER");
    env_no_driver = s && !strcmp(s, "1");
    s = getenv("UNET_CUDASIM_SMS");
    if (s && atoi(s) > 0)
        sm_count = atoi(s);
    s = getenv("UNET_CUDASIM_MEMORY_MB");
    if (s && *s) {
        char *end = NULL;
        unsigned long long mb = strtoull(s, &end, 10);
        if (end != s && !*end)
            mem_budget = (size_t)mb << 20;
    }
}

static cudaError_t ret(cudaError_t e)
{
    if (e != cudaSuccess)
        last_error = e;
    return e;
}

/* The first fault (cudaSuccess: none). Like a CUDA context after a kernel
 * fault, the simulated device is then unusable: every call returns it and
 * nothing queued runs. Every misuse is sticky here, even those a real GPU
 * would report once (a bad cudaFree), so that no test can miss it. */
static volatile cudaError_t sticky_error = cudaSuccess;

cudaError_t cudasim_fault(cudaError_t code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("cudasim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (sticky_error == cudaSuccess)
        sticky_error = code;
    last_error = sticky_error;
    return sticky_error;
}

cudaError_t cudasim_sticky(void)
{
    return sticky_error;
}

/* The error every device call returns on a machine without one. */
static cudaError_t no_device_error(void)
{
    read_env();
    if (env_no_driver)
        return cudaErrorInsufficientDriver;
    if (env_devices == 0)
        return cudaErrorNoDevice;
    return cudaSuccess;
}

int cudasim_device_ok(void)
{
    pthread_mutex_lock(&sim_lock);
    int ok = no_device_error() == cudaSuccess;
    pthread_mutex_unlock(&sim_lock);
    return ok;
}

#define LOCKED_ENTRY()                          \
    pthread_mutex_lock(&sim_lock);              \
    do {                                        \
        cudaError_t e0_ = no_device_error();    \
        if (e0_ == cudaSuccess)                 \
            e0_ = sticky_error;                 \
        if (e0_ != cudaSuccess) {               \
            pthread_mutex_unlock(&sim_lock);    \
            return ret(e0_);                    \
        }                                       \
    } while (0)

/* A fault during the call (a kernel it ran, a copy it made) wins over
 * the call's own answer. */
#define UNLOCK_RETURN(e)                        \
    do {                                        \
        cudaError_t e1_ = (e);                  \
        if (e1_ == cudaSuccess)                 \
            e1_ = sticky_error;                 \
        pthread_mutex_unlock(&sim_lock);        \
        return ret(e1_);                        \
    } while (0)

/* ---- allocations ---------------------------------------------------------- */

typedef struct Alloc {
    char *base;
    size_t size;    /* as asked */
    size_t charged; /* against the budget */
    int pending_free; /* cudaFreeAsync called, not yet reached in its stream */
    int graph_owned;
} Alloc;

typedef struct AllocSet {
    Alloc *a;
    size_t count, cap;
} AllocSet;

static AllocSet device_allocs, host_allocs;

/* Index of the allocation containing p, or -1. */
static long alloc_find(const AllocSet *s, const void *p)
{
    const char *c = p;
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < s->a[mid].base)
            hi = mid;
        else if (c >= s->a[mid].base + (s->a[mid].size ? s->a[mid].size : 1))
            lo = mid + 1;
        else
            return (long)mid;
    }
    return -1;
}

static int alloc_insert(AllocSet *s, Alloc a)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        Alloc *grown = realloc(s->a, cap * sizeof *grown);
        if (!grown)
            return 0;
        s->a = grown;
        s->cap = cap;
    }
    size_t at = 0;
    while (at < s->count && s->a[at].base < a.base) /* binary search would do; lists stay small */
        at++;
    memmove(&s->a[at + 1], &s->a[at], (s->count - at) * sizeof *s->a);
    s->a[at] = a;
    s->count++;
    return 1;
}

static void alloc_remove(AllocSet *s, long i)
{
    memmove(&s->a[i], &s->a[i + 1], (s->count - (size_t)i - 1) * sizeof *s->a);
    s->count--;
}

static size_t charge_of(size_t bytes)
{
    return (bytes + 511) & ~(size_t)511;
}

/* Blocks this large (cuDNN workspaces of up to 1 GiB) are mapped directly:
 * malloc would touch every page under MALLOC_PERTURB_ (meson test sets it). */
#define SIM_MMAP_BYTES ((size_t)64 << 20)

/* Freed blocks wait in a quarantine (up to 256 MiB, oldest out first)
 * filled with 0xff, so a stale pointer neither finds a new allocation at
 * its address (the kernel pointer checks then name it) nor reads the old
 * values. */
#define SIM_QUARANTINE_BYTES ((size_t)256 << 20)
#define SIM_QUARANTINE_BLOCKS 4096
static struct {
    void *p[SIM_QUARANTINE_BLOCKS];
    size_t size[SIM_QUARANTINE_BLOCKS];
    size_t head, count, bytes;
} quarantine;

/* size: the bytes allocated (malloc'd blocks), charged: the accounting. */
static void release_block(void *p, size_t size, size_t charged)
{
    if (charged >= SIM_MMAP_BYTES) {
        munmap(p, charged);
        return;
    }
    memset(p, 0xff, size < ((size_t)16 << 20) ? size : ((size_t)16 << 20));
    while (quarantine.count &&
           (quarantine.count == SIM_QUARANTINE_BLOCKS ||
            quarantine.bytes + size > SIM_QUARANTINE_BYTES)) {
        free(quarantine.p[quarantine.head]);
        quarantine.bytes -= quarantine.size[quarantine.head];
        quarantine.head = (quarantine.head + 1) % SIM_QUARANTINE_BLOCKS;
        quarantine.count--;
    }
    size_t at = (quarantine.head + quarantine.count) % SIM_QUARANTINE_BLOCKS;
    quarantine.p[at] = p;
    quarantine.size[at] = size;
    quarantine.count++;
    quarantine.bytes += size;
}

static cudaError_t device_alloc(void **out, size_t bytes, int graph_owned)
{
    *out = NULL;
    size_t charged = charge_of(bytes ? bytes : 1);
    if (charged > mem_budget - mem_used || charged < bytes)
        return cudaErrorMemoryAllocation;
    void *p = NULL;
    if (charged >= SIM_MMAP_BYTES) {
        p = mmap(NULL, charged, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return cudaErrorMemoryAllocation;
    } else if (posix_memalign(&p, SIM_ALIGN, bytes ? bytes : 1) != 0) {
        return cudaErrorMemoryAllocation;
    }
    /* (Exactly the bytes asked, not the charge: under ASan a kernel that
     * writes past its buffer is caught even inside the accounting granule.) */
    /* Fresh device memory holds garbage on a GPU: make reads of unwritten
     * memory show (NaN bit patterns) instead of convenient zeros. Only the
     * first 16 MiB of huge blocks (cuDNN workspaces), to spare the pages. */
    memset(p, 0xff, bytes < ((size_t)16 << 20) ? bytes : ((size_t)16 << 20));
    Alloc a = { p, bytes, charged, 0, graph_owned };
    if (!alloc_insert(&device_allocs, a)) {
        release_block(p, bytes ? bytes : 1, charged);
        return cudaErrorMemoryAllocation;
    }
    mem_used += charged;
    if (mem_used > stats.peak)
        stats.peak = mem_used;
    *out = p;
    return cudaSuccess;
}

static void device_release(long i)
{
    Alloc a = device_allocs.a[i];
    alloc_remove(&device_allocs, i);
    if (!a.pending_free)
        mem_used -= a.charged;
    release_block(a.base, a.size ? a.size : 1, a.charged);
}

/* at_run: the op is running in stream order, so memory whose
 * cudaFreeAsync comes later in the stream is still valid. */
/* A call's misuse is cudaErrorInvalidValue, as the runtime answers it; an
 * op found wrong while it runs in its stream is an illegal address. */
static cudaError_t range_fault(int at_run)
{
    return at_run ? cudaErrorIllegalAddress : cudaErrorInvalidValue;
}

static cudaError_t check_range(const void *p, size_t bytes, const char *what, int at_run)
{
    if (!bytes)
        return cudaSuccess;
    long i = alloc_find(&device_allocs, p);
    if (i < 0) {
        long h = alloc_find(&host_allocs, p);
        return cudasim_fault(range_fault(at_run), "%s: %p is not device memory (%s)", what, p,
                             h >= 0 ? "it is pinned host memory"
                                    : "not in any live allocation: freed, never allocated, or a "
                                      "host pointer");
    }
    const Alloc *a = &device_allocs.a[i];
    if (a->pending_free && !at_run)
        return cudasim_fault(range_fault(at_run),
                             "%s: %p lies in an allocation of %zu bytes that cudaFreeAsync has "
                             "freed",
                             what, p, a->size);
    size_t off = (size_t)((const char *)p - a->base);
    if (bytes > a->size - off)
        return cudasim_fault(range_fault(at_run),
                             "%s: %zu bytes at offset %zu of an allocation of %zu bytes (%zu past "
                             "its end)",
                             what, bytes, off, a->size, bytes - (a->size - off));
    return cudaSuccess;
}

static cudaError_t check_range_locked(const void *p, size_t bytes, const char *what)
{
    return check_range(p, bytes, what, 0);
}

static int running_op; /* the checks below come from an op running in stream order */

cudaError_t cudasim_check_device_range(const void *p, size_t bytes, const char *what)
{
    return check_range(p, bytes, what, running_op);
}

cudaError_t cudasim_check_kernel_pointer(const char *name, int index, const void *p,
                                         const char *when)
{
    if (!p)
        return cudaSuccess;
    long i = alloc_find(&device_allocs, p);
    if (i < 0) {
        long h = alloc_find(&host_allocs, p);
        return cudasim_fault(range_fault(running_op),
                             "kernel %s %s: pointer argument %d (%p) is not device memory (%s)",
                             name, when, index, p,
                             h >= 0 ? "pinned host memory"
                                    : "freed, never allocated, or a host pointer");
    }
    if (device_allocs.a[i].pending_free && !running_op)
        return cudasim_fault(range_fault(running_op),
                             "kernel %s %s: pointer argument %d (%p) is in memory freed by "
                             "cudaFreeAsync before the kernel was launched",
                             name, when, index, p);
    return cudaSuccess;
}

static int is_pinned(const void *p, size_t bytes)
{
    long i = alloc_find(&host_allocs, p);
    if (i < 0)
        return 0;
    const Alloc *a = &host_allocs.a[i];
    return bytes <= a->size - (size_t)((const char *)p - a->base);
}

/* ---- streams, events, graphs ------------------------------------------- */

enum { OP_KERNEL, OP_COPY, OP_MEMSET, OP_EVENT, OP_FREE, OP_HOST, OP_WAIT, OP_NOP };

typedef struct Op Op;
struct Op {
    int kind;
    Op *next;
    CudasimKernel *kernel;
    void *dst;
    const void *src;
    size_t bytes;
    int value;
    enum cudaMemcpyKind copy_kind;
    struct CUevent_st *event;
    unsigned long long seq;
    void (*host_run)(void *ctx);
    void (*host_destroy)(void *ctx);
    void *host_ctx;
    int *host_refs;
    const char *name;
};

struct CUstream_st {
    Op *head, *tail;
    unsigned flags;
    int capturing;      /* 1 active, 2 invalidated */
    struct CUgraph_st *graph;
    pthread_t capture_thread;
    struct CUstream_st *next_live;
};

struct CUevent_st {
    unsigned long long recorded, done;
    struct CUstream_st *stream; /* of the latest record */
    int captured;               /* recorded during a capture */
    unsigned flags;
};

/* Memory cudaMallocAsync gave a capture (graph memory): it lives as long
 * as the graph or any executable graph made from it. */
typedef struct GraphMemory {
    int refs;
    Alloc *a;
    size_t count;
} GraphMemory;

struct CUgraph_st {
    Op *head, *tail;
    GraphMemory *memory;
};

struct CUgraphExec_st {
    struct CUgraph_st *graph; /* a private copy */
};

struct CUmemPoolHandle_st {
    unsigned long long release_threshold;
};

static struct CUstream_st default_stream;
static struct CUstream_st *live_streams = &default_stream;
static struct CUmemPoolHandle_st default_pool;
static int pageable_noted;

static struct CUstream_st *resolve_stream(cudaStream_t s)
{
    if (!s || s == cudaStreamLegacy || s == cudaStreamPerThread)
        return &default_stream;
    for (struct CUstream_st *l = live_streams; l; l = l->next_live)
        if (l == s)
            return l;
    return NULL;
}

static void op_free(Op *op)
{
    if (op->kind == OP_COPY) /* a snapshot of pageable memory, or NULL */
        free(op->host_ctx);
    if (op->kind == OP_KERNEL)
        cudasim_kernel_release(op->kernel);
    if (op->kind == OP_HOST && --*op->host_refs == 0) {
        if (op->host_destroy)
            op->host_destroy(op->host_ctx);
        free(op->host_refs);
    }
    free(op);
}

static Op *op_clone(const Op *op)
{
    Op *c = malloc(sizeof *c);
    if (!c) {
        cudasim_fault(cudaErrorMemoryAllocation, "out of host memory for a queued operation");
        return NULL;
    }
    *c = *op;
    c->next = NULL;
    if (c->kind == OP_KERNEL)
        c->kernel->refs++;
    if (c->kind == OP_HOST)
        ++*c->host_refs;
    return c;
}

static void list_append(Op **head, Op **tail, Op *op)
{
    op->next = NULL;
    if (*tail)
        (*tail)->next = op;
    else
        *head = op;
    *tail = op;
}

static void run_op(struct CUstream_st *s, Op *op);

/* Runs the first queued op of s. */
static void step_stream(struct CUstream_st *s)
{
    Op *op = s->head;
    s->head = op->next;
    if (!s->head)
        s->tail = NULL;
    run_op(s, op);
    op_free(op);
}

static void drain(struct CUstream_st *s)
{
    while (s->head)
        step_stream(s);
}

static void drain_all(void)
{
    for (struct CUstream_st *l = live_streams; l; l = l->next_live)
        drain(l);
}

static void event_wait(struct CUevent_st *e)
{
    while (e->done < e->recorded) {
        if (sticky_error != cudaSuccess)
            return; /* the queue was dropped */
        if (!e->stream || !e->stream->head) {
            cudasim_fault(cudaErrorIllegalState, "event recorded but its record is not in any stream");
            return;
        }
        step_stream(e->stream);
    }
}

/* Runs op unless the device has faulted (then queued work is dropped, as
 * a faulted CUDA context drops it). */
static void run_op(struct CUstream_st *s, Op *op)
{
    (void)s;
    if (sticky_error != cudaSuccess)
        return;
    running_op = 1;
    switch (op->kind) {
    case OP_KERNEL:
        if (op->kernel->check_args(op->kernel, "when it runs") == cudaSuccess) {
            cudasim_run_kernel(op->kernel);
            stats.kernels_run++;
        }
        break;
    case OP_COPY: {
        int to_device = op->copy_kind == cudaMemcpyHostToDevice ||
                        op->copy_kind == cudaMemcpyDeviceToDevice;
        int from_device = op->copy_kind == cudaMemcpyDeviceToHost ||
                          op->copy_kind == cudaMemcpyDeviceToDevice;
        if ((!to_device || check_range(op->dst, op->bytes,
                                       "cudaMemcpyAsync destination (when it runs)", 1) == cudaSuccess) &&
            (!from_device ||
             check_range(op->src, op->bytes, "cudaMemcpyAsync source (when it runs)", 1) ==
                 cudaSuccess)) {
            memmove(op->dst, op->src, op->bytes);
            stats.copies++;
        }
        break;
    }
    case OP_MEMSET:
        if (check_range(op->dst, op->bytes, "cudaMemsetAsync (when it runs)", 1) == cudaSuccess)
            memset(op->dst, op->value, op->bytes);
        break;
    case OP_EVENT:
        if (op->seq > op->event->done)
            op->event->done = op->seq;
        break;
    case OP_FREE: {
        long i = alloc_find(&device_allocs, op->dst);
        if (i < 0 || device_allocs.a[i].base != op->dst)
            cudasim_fault(cudaErrorIllegalAddress,
                          "cudaFreeAsync(%p) reached in its stream, but the memory is gone",
                          op->dst);
        else
            device_release(i);
        break;
    }
    case OP_HOST:
        op->host_run(op->host_ctx);
        break;
    case OP_WAIT:
        if (op->event->done < op->seq)
            event_wait(op->event);
        break;
    case OP_NOP:
        break;
    }
    running_op = 0;
}

/* Appends op to s, or to its graph while it captures. */
static cudaError_t enqueue(struct CUstream_st *s, Op *op)
{
    if (!op) /* op_new ran out of memory: a fault */
        return sticky_error;
    if (s->capturing == 2) {
        op_free(op);
        return cudaErrorStreamCaptureInvalidated;
    }
    if (s->capturing) {
        if (!pthread_equal(s->capture_thread, pthread_self())) {
            op_free(op);
            return cudaErrorStreamCaptureWrongThread;
        }
        list_append(&s->graph->head, &s->graph->tail, op);
        return cudaSuccess;
    }
    list_append(&s->head, &s->tail, op);
    return cudaSuccess;
}

static Op *op_new(int kind)
{
    Op *op = calloc(1, sizeof *op);
    if (!op) {
        cudasim_fault(cudaErrorMemoryAllocation, "out of host memory for a queued operation");
        return NULL;
    }
    op->kind = kind;
    return op;
}

/* Any stream of this thread capturing in global or thread-local mode makes
 * unsafe calls (cudaMalloc, synchronous copies) fail and invalidates it. */
static int capture_forbids(void)
{
    int hit = 0;
    for (struct CUstream_st *l = live_streams; l; l = l->next_live)
        if (l->capturing == 1 && pthread_equal(l->capture_thread, pthread_self())) {
            l->capturing = 2;
            hit = 1;
        }
    return hit;
}

void cudasim_kernel_release(CudasimKernel *k)
{
    if (k && --k->refs == 0)
        k->destroy(k);
}

cudaError_t cudasim_launch(cudaStream_t stream, CudasimKernel *k)
{
    LOCKED_ENTRY();
    unsigned long long threads = (unsigned long long)k->block[0] * k->block[1] * k->block[2];
    if (!k->block[0] || !k->block[1] || !k->block[2] || threads > 1024 || k->block[2] > 64 ||
        !k->grid[0] || !k->grid[1] || !k->grid[2] || k->grid[0] > 0x7fffffffu ||
        k->grid[1] > 65535 || k->grid[2] > 65535) {
        cudasim_kernel_release(k);
        UNLOCK_RETURN(cudaErrorInvalidConfiguration);
    }
    struct CUstream_st *s = resolve_stream(stream);
    if (!s) {
        cudasim_kernel_release(k);
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    }
    Op *op = k->check_args(k, "at launch") == cudaSuccess ? op_new(OP_KERNEL) : NULL;
    if (!op) {
        cudasim_kernel_release(k);
        UNLOCK_RETURN(sticky_error);
    }
    stats.launches++;
    op->kernel = k;
    UNLOCK_RETURN(enqueue(s, op));
}

cudaError_t cudasim_enqueue_host(cudaStream_t stream, void (*run)(void *ctx),
                                 void (*destroy)(void *ctx), void *ctx, const char *name)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s) {
        if (destroy)
            destroy(ctx);
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    }
    Op *op = op_new(OP_HOST);
    int *refs = op ? malloc(sizeof *refs) : NULL;
    if (!refs) {
        free(op);
        if (destroy)
            destroy(ctx);
        UNLOCK_RETURN(cudasim_fault(cudaErrorMemoryAllocation,
                                    "out of host memory for a queued operation"));
    }
    op->host_run = run;
    op->host_destroy = destroy;
    op->host_ctx = ctx;
    op->host_refs = refs;
    *op->host_refs = 1;
    op->name = name;
    UNLOCK_RETURN(enqueue(s, op));
}

cudaError_t cudasim_stream_drain(cudaStream_t stream)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (s->capturing)
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    drain(s);
    UNLOCK_RETURN(cudaSuccess);
}

/* ---- errors and versions ---------------------------------------------- */

/* A fault is sticky: it is not cleared by reading it. */
cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error != cudaSuccess ? last_error : sticky_error;
    last_error = sticky_error;
    return e;
}

cudaError_t cudaPeekAtLastError(void)
{
    return last_error != cudaSuccess ? last_error : sticky_error;
}

static const struct {
    cudaError_t e;
    const char *name, *text;
} error_table[] = {
    { cudaSuccess, "cudaSuccess", "no error" },
    { cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument" },
    { cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory" },
    { cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error" },
    { cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration",
      "invalid configuration argument" },
    { cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal" },
    { cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection",
      "invalid copy direction for memcpy" },
    { cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver",
      "CUDA driver version is insufficient for CUDA runtime version" },
    { cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected" },
    { cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle",
      "invalid resource handle" },
    { cudaErrorIllegalState, "cudaErrorIllegalState", "the operation cannot be performed in the present state" },
    { cudaErrorNotReady, "cudaErrorNotReady", "device not ready" },
    { cudaErrorIllegalAddress, "cudaErrorIllegalAddress",
      "an illegal memory access was encountered" },
    { cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure" },
    { cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported",
      "operation not permitted when stream is capturing" },
    { cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated",
      "operation failed due to a previous error during capture" },
    { cudaErrorStreamCaptureUnmatched, "cudaErrorStreamCaptureUnmatched",
      "capture was not ended in the same stream as it began" },
    { cudaErrorStreamCaptureWrongThread, "cudaErrorStreamCaptureWrongThread",
      "attempt to terminate a thread-local capture sequence from another thread" },
    { cudaErrorCapturedEvent, "cudaErrorCapturedEvent",
      "operation not permitted on an event last recorded in a capturing stream" },
};

const char *cudaGetErrorString(cudaError_t e)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].e == e)
            return error_table[i].text;
    return "unrecognized error code";
}

const char *cudaGetErrorName(cudaError_t e)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].e == e)
            return error_table[i].name;
    return "cudaErrorUnknown";
}

cudaError_t cudaDriverGetVersion(int *version)
{
    if (!version)
        return ret(cudaErrorInvalidValue);
    pthread_mutex_lock(&sim_lock);
    read_env();
    *version = env_no_driver ? 0 : SIM_DRIVER_VERSION;
    pthread_mutex_unlock(&sim_lock);
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *version)
{
    if (!version)
        return ret(cudaErrorInvalidValue);
    *version = CUDART_VERSION;
    return cudaSuccess;
}

/* ---- devices -------------------------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count)
{
    if (!count)
        return ret(cudaErrorInvalidValue);
    pthread_mutex_lock(&sim_lock);
    cudaError_t e = no_device_error();
    *count = e == cudaSuccess ? env_devices : 0;
    pthread_mutex_unlock(&sim_lock);
    return ret(e);
}

cudaError_t cudaSetDevice(int device)
{
    LOCKED_ENTRY();
    if (device < 0 || device >= env_devices)
        UNLOCK_RETURN(cudaErrorInvalidDevice);
    current_device = device;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaGetDevice(int *device)
{
    LOCKED_ENTRY();
    if (!device)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    *device = current_device;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    LOCKED_ENTRY();
    if (!prop)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    if (device < 0 || device >= env_devices)
        UNLOCK_RETURN(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "%s", SIM_DEVICE_NAME);
    prop->totalGlobalMem = mem_budget;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = sm_count;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024;
    prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 0x7fffffff;
    prop->maxGridSize[1] = 65535;
    prop->maxGridSize[2] = 65535;
    prop->sharedMemPerBlock = 48 << 10;
    prop->memoryPoolsSupported = 1;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    LOCKED_ENTRY();
    if (!value)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    if (device < 0 || device >= env_devices)
        UNLOCK_RETURN(cudaErrorInvalidDevice);
    switch (attr) {
    case cudaDevAttrComputeCapabilityMajor:
        *value = 9;
        break;
    case cudaDevAttrComputeCapabilityMinor:
        *value = 0;
        break;
    case cudaDevAttrMultiProcessorCount:
        *value = sm_count;
        break;
    case cudaDevAttrMemoryPoolsSupported:
        *value = 1;
        break;
    case cudaDevAttrMaxThreadsPerBlock:
        *value = 1024;
        break;
    case cudaDevAttrWarpSize:
        *value = 32;
        break;
    default:
        UNLOCK_RETURN(cudaErrorInvalidValue);
    }
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    LOCKED_ENTRY();
    if (!free_b || !total_b)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    *free_b = mem_budget - mem_used;
    *total_b = mem_budget;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaDeviceSynchronize(void)
{
    LOCKED_ENTRY();
    if (capture_forbids())
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    drain_all();
    UNLOCK_RETURN(cudaSuccess);
}

/* ---- memory ------------------------------------------------------------- */

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    LOCKED_ENTRY();
    if (!p)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    *p = NULL;
    if (capture_forbids())
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    if (!bytes)
        UNLOCK_RETURN(cudaSuccess);
    UNLOCK_RETURN(device_alloc(p, bytes, 0));
}

cudaError_t cudaFree(void *p)
{
    LOCKED_ENTRY();
    if (!p)
        UNLOCK_RETURN(cudaSuccess);
    if (capture_forbids())
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    drain_all(); /* cudaFree synchronises the device */
    long i = alloc_find(&device_allocs, p);
    if (i < 0 || device_allocs.a[i].base != p)
        UNLOCK_RETURN(cudasim_fault(cudaErrorInvalidValue,
                                    "cudaFree(%p): not the start of a live device allocation "
                                    "(double free?)",
                                    p));
    if (device_allocs.a[i].pending_free)
        UNLOCK_RETURN(cudasim_fault(cudaErrorInvalidValue,
                                    "cudaFree(%p): already freed by cudaFreeAsync", p));
    device_release(i);
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t stream)
{
    LOCKED_ENTRY();
    if (!p)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    *p = NULL;
    struct CUstream_st *s = resolve_stream(stream);
    if (!s)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (s->capturing == 2)
        UNLOCK_RETURN(cudaErrorStreamCaptureInvalidated);
    if (!bytes)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    /* Memory freed earlier on any stream is already uncharged, so stream
     * order can never make this fail where the pool would not. During a
     * capture the allocation belongs to the graph (fixed address on every
     * launch, as a graph memory node). */
    cudaError_t e = device_alloc(p, bytes, s->capturing == 1);
    if (e == cudaSuccess && s->capturing == 1) {
        GraphMemory *m = s->graph->memory;
        if (!m && !(m = s->graph->memory = calloc(1, sizeof *m)))
            UNLOCK_RETURN(cudasim_fault(cudaErrorMemoryAllocation,
                                        "out of host memory for a graph's allocations"));
        m->refs = 1;
        Alloc *grown = realloc(m->a, (m->count + 1) * sizeof *grown);
        if (!grown)
            UNLOCK_RETURN(cudasim_fault(cudaErrorMemoryAllocation,
                                        "out of host memory for a graph's allocations"));
        m->a = grown;
        m->a[m->count++] = device_allocs.a[alloc_find(&device_allocs, *p)];
    }
    UNLOCK_RETURN(e);
}

cudaError_t cudaFreeAsync(void *p, cudaStream_t stream)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (!p)
        UNLOCK_RETURN(cudaSuccess);
    long i = alloc_find(&device_allocs, p);
    if (i < 0 || device_allocs.a[i].base != p)
        UNLOCK_RETURN(cudasim_fault(cudaErrorInvalidValue,
                                    "cudaFreeAsync(%p): not the start of a live device allocation "
                                    "(double free?)",
                                    p));
    Alloc *a = &device_allocs.a[i];
    if (a->pending_free)
        UNLOCK_RETURN(cudasim_fault(cudaErrorInvalidValue, "cudaFreeAsync(%p): freed twice", p));
    if (s->capturing == 1) {
        /* Graph memory: freed with the graph; the free node does nothing. */
        if (!a->graph_owned)
            UNLOCK_RETURN(cudasim_fault(cudaErrorInvalidValue,
                                        "cudaFreeAsync(%p) while capturing: memory allocated "
                                        "outside the capture (the graph would free it at every "
                                        "launch)",
                                        p));
        UNLOCK_RETURN(enqueue(s, op_new(OP_NOP)));
    }
    Op *op = op_new(OP_FREE);
    if (!op)
        UNLOCK_RETURN(sticky_error);
    a->pending_free = 1;
    mem_used -= a->charged;
    op->dst = p;
    UNLOCK_RETURN(enqueue(s, op));
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int device)
{
    LOCKED_ENTRY();
    if (!pool)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    if (device < 0 || device >= env_devices)
        UNLOCK_RETURN(cudaErrorInvalidDevice);
    *pool = &default_pool;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, enum cudaMemPoolAttr attr, void *value)
{
    LOCKED_ENTRY();
    if (pool != &default_pool || !value)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    if (attr == cudaMemPoolAttrReleaseThreshold)
        pool->release_threshold = *(unsigned long long *)value;
    else if (attr != cudaMemPoolReuseFollowEventDependencies &&
             attr != cudaMemPoolReuseAllowOpportunistic &&
             attr != cudaMemPoolReuseAllowInternalDependencies)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep)
{
    (void)keep;
    LOCKED_ENTRY();
    if (pool != &default_pool)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    UNLOCK_RETURN(cudaSuccess); /* freed blocks are returned at once here */
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags)
{
    (void)flags;
    LOCKED_ENTRY();
    if (!p)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    *p = NULL;
    void *m = NULL;
    if (posix_memalign(&m, 4096, bytes ? bytes : 1) != 0)
        UNLOCK_RETURN(cudaErrorMemoryAllocation);
    memset(m, 0xff, bytes);
    Alloc a = { m, bytes ? bytes : 1, 0, 0, 0 };
    if (!alloc_insert(&host_allocs, a)) {
        free(m);
        UNLOCK_RETURN(cudaErrorMemoryAllocation);
    }
    *p = m;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
    return cudaHostAlloc(p, bytes, 0);
}

cudaError_t cudaFreeHost(void *p)
{
    LOCKED_ENTRY();
    if (!p)
        UNLOCK_RETURN(cudaSuccess);
    drain_all(); /* copies into or out of it finish first */
    long i = alloc_find(&host_allocs, p);
    if (i < 0 || host_allocs.a[i].base != p)
        UNLOCK_RETURN(cudasim_fault(cudaErrorInvalidValue,
                                    "cudaFreeHost(%p): not pinned memory from cudaHostAlloc", p));
    alloc_remove(&host_allocs, i);
    free(p);
    UNLOCK_RETURN(cudaSuccess);
}

static cudaError_t check_copy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                              const char *call)
{
    char what[96];
    cudaError_t e;
    switch (kind) {
    case cudaMemcpyHostToDevice:
        snprintf(what, sizeof what, "%s host-to-device destination", call);
        if ((e = check_range_locked(dst, bytes, what)) != cudaSuccess)
            return e;
        if (alloc_find(&device_allocs, src) >= 0)
            return cudasim_fault(cudaErrorInvalidValue,
                                 "%s host-to-device: source %p is device memory", call, src);
        return cudaSuccess;
    case cudaMemcpyDeviceToHost:
        snprintf(what, sizeof what, "%s device-to-host source", call);
        if ((e = check_range_locked(src, bytes, what)) != cudaSuccess)
            return e;
        if (alloc_find(&device_allocs, dst) >= 0)
            return cudasim_fault(cudaErrorInvalidValue,
                                 "%s device-to-host: destination %p is device memory", call, dst);
        return cudaSuccess;
    case cudaMemcpyDeviceToDevice:
        snprintf(what, sizeof what, "%s device-to-device source", call);
        if ((e = check_range_locked(src, bytes, what)) != cudaSuccess)
            return e;
        snprintf(what, sizeof what, "%s device-to-device destination", call);
        return check_range_locked(dst, bytes, what);
    default:
        return cudaErrorInvalidMemcpyDirection;
    }
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (!bytes)
        UNLOCK_RETURN(cudaSuccess);
    if (!dst || !src)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpyAsync");
    if (e != cudaSuccess)
        UNLOCK_RETURN(e);
    Op *op = op_new(OP_COPY);
    if (!op)
        UNLOCK_RETURN(sticky_error);
    op->dst = dst;
    op->src = src;
    op->bytes = bytes;
    op->copy_kind = kind;
    const void *host = kind == cudaMemcpyHostToDevice ? src
                       : kind == cudaMemcpyDeviceToHost ? dst
                                                        : NULL;
    int pageable = host && !is_pinned(host, bytes);
    if (pageable && !pageable_noted) {
        pageable_noted = 1;
        fprintf(stderr, "cudasim: note: cudaMemcpyAsync with pageable host memory %p (%zu bytes): "
                        "the GPU copies it synchronously; pin it with cudaHostAlloc\n",
                host, bytes);
    }
    if (pageable && s->capturing) {
        op_free(op);
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    }
    if (pageable && kind == cudaMemcpyHostToDevice) {
        /* The driver stages pageable memory before returning: snapshot. */
        void *copy = malloc(bytes);
        if (!copy) {
            op_free(op);
            UNLOCK_RETURN(cudasim_fault(cudaErrorMemoryAllocation,
                                        "out of host memory staging a pageable copy"));
        }
        memcpy(copy, src, bytes);
        op->src = copy;
        op->host_ctx = copy;
    }
    e = enqueue(s, op);
    if (e == cudaSuccess && pageable && kind == cudaMemcpyDeviceToHost)
        drain(s); /* returns once the copy (the last op of s) is done */
    UNLOCK_RETURN(e);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
    LOCKED_ENTRY();
    if (capture_forbids())
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    if (!bytes)
        UNLOCK_RETURN(cudaSuccess);
    cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpy");
    if (e != cudaSuccess)
        UNLOCK_RETURN(e);
    /* The legacy default stream waits for blocking streams only. */
    for (struct CUstream_st *l = live_streams; l; l = l->next_live)
        if (!(l->flags & cudaStreamNonBlocking))
            drain(l);
    if (sticky_error != cudaSuccess)
        UNLOCK_RETURN(sticky_error);
    memmove(dst, src, bytes);
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (!bytes)
        UNLOCK_RETURN(cudaSuccess);
    cudaError_t e = check_range_locked(p, bytes, "cudaMemsetAsync");
    if (e != cudaSuccess)
        UNLOCK_RETURN(e);
    Op *op = op_new(OP_MEMSET);
    if (!op)
        UNLOCK_RETURN(sticky_error);
    op->dst = p;
    op->bytes = bytes;
    op->value = value;
    UNLOCK_RETURN(enqueue(s, op));
}

/* ---- streams and events ------------------------------------------------- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *out, unsigned int flags)
{
    LOCKED_ENTRY();
    if (!out)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    struct CUstream_st *s = calloc(1, sizeof *s);
    if (!s)
        UNLOCK_RETURN(cudaErrorMemoryAllocation);
    s->flags = flags;
    s->next_live = default_stream.next_live;
    default_stream.next_live = s;
    *out = s;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaStreamCreate(cudaStream_t *out)
{
    return cudaStreamCreateWithFlags(out, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s || s == &default_stream)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (s->capturing)
        UNLOCK_RETURN(cudaErrorIllegalState);
    drain(s); /* queued work still completes */
    for (struct CUstream_st *l = &default_stream; l; l = l->next_live)
        if (l->next_live == s) {
            l->next_live = s->next_live;
            break;
        }
    free(s);
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (s->capturing) {
        s->capturing = 2;
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    }
    if (capture_forbids())
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    drain(s);
    stats.syncs++;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *out, unsigned int flags)
{
    LOCKED_ENTRY();
    if (!out)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    struct CUevent_st *e = calloc(1, sizeof *e);
    if (!e)
        UNLOCK_RETURN(cudaErrorMemoryAllocation);
    e->flags = flags;
    *out = e;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaEventCreate(cudaEvent_t *out)
{
    return cudaEventCreateWithFlags(out, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    LOCKED_ENTRY();
    if (!event)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    /* Records still queued must not touch freed memory: let them run. */
    if (event->done < event->recorded && event->stream && !event->captured)
        event_wait(event);
    free(event);
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s || !event)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    Op *op = op_new(OP_EVENT);
    if (!op)
        UNLOCK_RETURN(sticky_error);
    op->event = event;
    if (s->capturing) {
        /* In a capture, a record only orders work inside the graph. */
        event->captured = 1;
        op->kind = OP_NOP;
        UNLOCK_RETURN(enqueue(s, op));
    }
    op->seq = ++event->recorded;
    event->stream = s;
    event->captured = 0;
    cudaError_t e = enqueue(s, op);
    if (e != cudaSuccess)
        event->recorded--;
    UNLOCK_RETURN(e);
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    LOCKED_ENTRY();
    if (!event)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (event->captured)
        UNLOCK_RETURN(cudaErrorCapturedEvent);
    if (capture_forbids())
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    event_wait(event); /* never recorded: returns at once, as on the GPU */
    stats.syncs++;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaEventQuery(cudaEvent_t event)
{
    LOCKED_ENTRY();
    if (!event)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (event->captured)
        UNLOCK_RETURN(cudaErrorCapturedEvent);
    /* Work runs only at synchronisation points: not done until waited for. */
    UNLOCK_RETURN(event->done < event->recorded ? cudaErrorNotReady : cudaSuccess);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    (void)flags;
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s || !event)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    Op *op = op_new(OP_WAIT);
    if (!op)
        UNLOCK_RETURN(sticky_error);
    op->event = event;
    op->seq = event->recorded;
    if (s->capturing || event->captured)
        op->kind = OP_NOP; /* ordering inside one simulated queue holds already */
    UNLOCK_RETURN(enqueue(s, op));
}

/* ---- graphs ----------------------------------------------------------------- */

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (s == &default_stream)
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    if (s->capturing)
        UNLOCK_RETURN(cudaErrorIllegalState);
    if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
        mode != cudaStreamCaptureModeRelaxed)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    struct CUgraph_st *g = calloc(1, sizeof *g);
    if (!g)
        UNLOCK_RETURN(cudaErrorMemoryAllocation);
    s->graph = g;
    s->capturing = 1;
    stats.captures++;
    s->capture_thread = pthread_self();
    UNLOCK_RETURN(cudaSuccess);
}

static void graph_free(struct CUgraph_st *g)
{
    for (Op *op = g->head, *next; op; op = next) {
        next = op->next;
        op_free(op);
    }
    GraphMemory *m = g->memory;
    if (m && --m->refs == 0) {
        drain_all(); /* launches still queued use the memory */
        for (size_t i = 0; i < m->count; i++) {
            long at = alloc_find(&device_allocs, m->a[i].base);
            if (at >= 0 && device_allocs.a[at].base == m->a[i].base)
                device_release(at);
        }
        free(m->a);
        free(m);
    }
    free(g);
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s || !graph)
        UNLOCK_RETURN(s ? cudaErrorInvalidValue : cudaErrorInvalidResourceHandle);
    *graph = NULL;
    if (!s->capturing)
        UNLOCK_RETURN(cudaErrorIllegalState);
    if (!pthread_equal(s->capture_thread, pthread_self()))
        UNLOCK_RETURN(cudaErrorStreamCaptureWrongThread);
    struct CUgraph_st *g = s->graph;
    int invalid = s->capturing == 2;
    s->capturing = 0;
    s->graph = NULL;
    if (invalid) {
        graph_free(g);
        UNLOCK_RETURN(cudaErrorStreamCaptureInvalidated);
    }
    *graph = g;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *status)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s || !status)
        UNLOCK_RETURN(s ? cudaErrorInvalidValue : cudaErrorInvalidResourceHandle);
    *status = s->capturing == 1   ? cudaStreamCaptureStatusActive
              : s->capturing == 2 ? cudaStreamCaptureStatusInvalidated
                                  : cudaStreamCaptureStatusNone;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                 unsigned long long flags)
{
    (void)flags;
    LOCKED_ENTRY();
    if (!exec || !graph)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    struct CUgraphExec_st *x = calloc(1, sizeof *x);
    struct CUgraph_st *copy = calloc(1, sizeof *copy);
    if (!x || !copy) {
        free(x);
        free(copy);
        UNLOCK_RETURN(cudaErrorMemoryAllocation);
    }
    for (Op *op = graph->head; op; op = op->next) {
        Op *c = op_clone(op);
        if (!c)
            break; /* a fault: the device is unusable now */
        list_append(&copy->head, &copy->tail, c);
    }
    copy->memory = graph->memory; /* outlives cudaGraphDestroy of the graph */
    if (copy->memory)
        copy->memory->refs++;
    x->graph = copy;
    *exec = x;
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream)
{
    LOCKED_ENTRY();
    struct CUstream_st *s = resolve_stream(stream);
    if (!s || !exec)
        UNLOCK_RETURN(cudaErrorInvalidResourceHandle);
    if (s->capturing)
        UNLOCK_RETURN(cudaErrorStreamCaptureUnsupported);
    stats.graph_launches++;
    for (Op *op = exec->graph->head; op && sticky_error == cudaSuccess; op = op->next) {
        if (op->kind == OP_KERNEL && op->kernel->check_args(op->kernel, "at graph launch"))
            break;
        Op *c = op_clone(op);
        if (c)
            list_append(&s->head, &s->tail, c);
    }
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    LOCKED_ENTRY();
    if (!exec)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    graph_free(exec->graph);
    free(exec);
    UNLOCK_RETURN(cudaSuccess);
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    LOCKED_ENTRY();
    if (!graph)
        UNLOCK_RETURN(cudaErrorInvalidValue);
    graph_free(graph);
    UNLOCK_RETURN(cudaSuccess);
}
