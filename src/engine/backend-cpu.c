/* backend-cpu.c - the fast CPU backend: construction, memory, tensors and
 * layout conversion. Convolutions are in backend-cpu-conv.c (oneDNN) or
 * backend-cpu-conv-plain.c (builds without oneDNN), the other ops in
 * backend-cpu-ops.c and backend-cpu-loss.c. */
#include "backend-cpu-private.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CPU_ALIGN 64
#define CPU_HUGE_PAGE ((size_t)2 << 20)
#define CPU_MAP_MIN ((size_t)4 << 20)
#define CPU_HEADER_MAGIC 0x756e657443505521ull

/* Sits just below every pointer cpu_alloc returns. */
typedef struct CpuAllocHeader {
    uint64_t magic;
    void *base;   /* what to free or unmap */
    size_t len;   /* mapping length; 0 for a calloc block */
} CpuAllocHeader;

/* Zeroed, 64-byte aligned memory. Large blocks are mapped on 2 MB
 * boundaries and offered to transparent huge pages: the model allocates
 * and frees its activations every step, and first-touch faults on 4 KB
 * pages cost about 0.4 ms per MB (over 2 GB of them per training step of
 * the default U-Net), six times what 2 MB pages cost. Mapped memory is
 * lazily committed, and unmapped (so returned to the system) on free. */
static void *cpu_alloc(size_t bytes)
{
    const size_t head = CPU_ALIGN; /* room for the header, keeps the alignment */
    if (bytes > SIZE_MAX - CPU_HUGE_PAGE - head)
        return NULL;
    if (bytes >= CPU_MAP_MIN) {
        size_t len = bytes + head + CPU_HUGE_PAGE;
        void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
            return NULL;
        uintptr_t start = ((uintptr_t)base + CPU_HUGE_PAGE - 1) & ~(uintptr_t)(CPU_HUGE_PAGE - 1);
#ifdef MADV_HUGEPAGE
        if (!getenv("UNET_NO_THP")) madvise((void *)start, (uintptr_t)base + len - start, MADV_HUGEPAGE);
#endif
        /* the header's page is the last one below the huge-page run */
        if (start - (uintptr_t)base < head)
            start += CPU_HUGE_PAGE;
        CpuAllocHeader *h = (CpuAllocHeader *)(start - sizeof(CpuAllocHeader));
        h->magic = CPU_HEADER_MAGIC;
        h->base = base;
        h->len = len;
        return (void *)start;
    }
    void *raw = calloc(1, bytes + 2 * head);
    if (!raw)
        return NULL;
    uintptr_t p = ((uintptr_t)raw + head + CPU_ALIGN - 1) & ~(uintptr_t)(CPU_ALIGN - 1);
    CpuAllocHeader *h = (CpuAllocHeader *)(p - sizeof(CpuAllocHeader));
    h->magic = CPU_HEADER_MAGIC;
    h->base = raw;
    h->len = 0;
    return (void *)p;
}

static void cpu_free(void *p)
{
    if (!p)
        return;
    CpuAllocHeader *h = (CpuAllocHeader *)((uintptr_t)p - sizeof(CpuAllocHeader));
    if (h->len)
        munmap(h->base, h->len);
    else
        free(h->base);
}

void *cpu_scratch(UnetBackend *be, int slot, size_t bytes, const char *op)
{
    CpuBackend *cpu = cpu_impl(be);
    if (bytes == 0)
        bytes = 1;
    if (cpu->scratch_size[slot] >= bytes)
        return cpu->scratch[slot];
    cpu_free(cpu->scratch[slot]);
    cpu->scratch[slot] = cpu_alloc(bytes);
    cpu->scratch_size[slot] = cpu->scratch[slot] ? bytes : 0;
    if (!cpu->scratch[slot])
        unet_error_set(&be->error, UNET_ERR_NOMEM,
                       "%s: out of memory allocating %.1f MB of scratch space; use a smaller "
                       "tile or batch", op, (double)bytes / 1048576.0);
    return cpu->scratch[slot];
}

UnetStatus cpu_shape_error(UnetBackend *be, const char *op, const char *fmt, ...)
{
    char msg[UNET_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return unet_error_set(&be->error, UNET_ERR_INVALID, "%s (cpu backend): %s", op, msg);
}

const char *cpu_shape_str(const UnetTensor *t, char *buf, size_t size)
{
    if (!t)
        snprintf(buf, size, "(none)");
    else
        snprintf(buf, size, "[%d,%d,%d,%d]", t->n, t->c, t->h, t->w);
    return buf;
}

/* ---- layout conversion ------------------------------------------------- */

static inline float *view_channel(const CpuView *v, int n, int c)
{
    return v->data + (((size_t)n * (size_t)(v->cp / v->b) + (size_t)(c / v->b)) *
                      (size_t)v->h * (size_t)v->w) * (size_t)v->b + (size_t)(c % v->b);
}

void cpu_view_convert(CpuBackend *cpu, const CpuView *dst, const CpuView *src, int accumulate)
{
    const int g = dst->b > src->b ? dst->b : src->b; /* channels moved together */
    const int groups = (dst->cp + g - 1) / g;
    const size_t hw = (size_t)dst->h * (size_t)dst->w;
    const long jobs = (long)dst->n * groups;
    const size_t sb = (size_t)src->b, db = (size_t)dst->b;
    const int nt = cpu_threads_for(cpu, cpu_view_numel(dst));

CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long job = 0; job < jobs; job++) {
        int n = (int)(job / groups), c0 = (int)(job % groups) * g;
        for (int c = c0; c < c0 + g && c < dst->cp; c++) {
            float *d = view_channel(dst, n, c);
            if (c >= dst->c) {
                if (!accumulate)
                    for (size_t p = 0; p < hw; p++)
                        d[p * db] = 0.0f;
                continue;
            }
            const float *s = view_channel(src, n, c);
            if (accumulate)
                for (size_t p = 0; p < hw; p++)
                    d[p * db] += s[p * sb];
            else
                for (size_t p = 0; p < hw; p++)
                    d[p * db] = s[p * sb];
        }
    }
}

const float *cpu_stage_in(UnetBackend *be, const UnetTensor *t, int b, int slot, const char *op)
{
    if (cpu_block_of(t) == b)
        return t->data;
    CpuView dst = { NULL, t->n, t->c, t->h, t->w, b, cpu_round_up(t->c, b) };
    dst.data = cpu_scratch(be, slot, cpu_view_numel(&dst) * sizeof(float), op);
    if (!dst.data)
        return NULL;
    CpuView src = cpu_view(t);
    cpu_view_convert(cpu_impl(be), &dst, &src, 0);
    return dst.data;
}

float *cpu_out_buffer(UnetBackend *be, const UnetTensor *t, int b, int accumulate, int slot,
                      const char *op)
{
    if (cpu_block_of(t) == b && !accumulate)
        return t->data;
    CpuView v = { NULL, t->n, t->c, t->h, t->w, b, cpu_round_up(t->c, b) };
    return cpu_scratch(be, slot, cpu_view_numel(&v) * sizeof(float), op);
}

void cpu_stage_out(UnetBackend *be, UnetTensor *t, const float *buf, int b, int accumulate)
{
    if (buf == t->data)
        return;
    CpuView src = { (float *)buf, t->n, t->c, t->h, t->w, b, cpu_round_up(t->c, b) };
    CpuView dst = cpu_view(t);
    cpu_view_convert(cpu_impl(be), &dst, &src, accumulate);
}

/* ---- memory ------------------------------------------------------------ */

static float *cpu_buffer_alloc(UnetBackend *be, size_t count)
{
    if (count > SIZE_MAX / sizeof(float)) {
        unet_error_set(&be->error, UNET_ERR_NOMEM, "buffer_alloc: %zu floats is too large", count);
        return NULL;
    }
    float *p = cpu_alloc(count * sizeof(float));
    if (!p)
        unet_error_set(&be->error, UNET_ERR_NOMEM,
                       "buffer_alloc: out of memory allocating %.1f MB; use a smaller model",
                       (double)count * 4.0 / 1048576.0);
    return p;
}

static void cpu_buffer_free(UnetBackend *be, float *buf)
{
    (void)be;
    cpu_free(buf);
}

static void fill_floats(CpuBackend *cpu, float *p, size_t count, float value)
{
    const int nt = cpu_threads_for(cpu, count);
CPU_OMP("omp parallel for simd num_threads(nt) schedule(static)")
    for (size_t i = 0; i < count; i++)
        p[i] = value;
}

static void copy_floats(CpuBackend *cpu, float *dst, const float *src, size_t count)
{
    const int nt = cpu_threads_for(cpu, count);
CPU_OMP("omp parallel for simd num_threads(nt) schedule(static)")
    for (size_t i = 0; i < count; i++)
        dst[i] = src[i];
}

static UnetStatus cpu_buffer_fill(UnetBackend *be, float *buf, size_t count, float value)
{
    fill_floats(cpu_impl(be), buf, count, value);
    return UNET_OK;
}

static UnetStatus cpu_buffer_upload(UnetBackend *be, float *dst, const float *host_src, size_t count)
{
    copy_floats(cpu_impl(be), dst, host_src, count);
    return UNET_OK;
}

static UnetStatus cpu_buffer_download(UnetBackend *be, float *host_dst, const float *src, size_t count)
{
    copy_floats(cpu_impl(be), host_dst, src, count);
    return UNET_OK;
}

/* ---- tensors ----------------------------------------------------------- */

static UnetStatus cpu_tensor_init(UnetBackend *be, UnetTensor *t, int n, int c, int h, int w)
{
    CpuBackend *cpu = cpu_impl(be);
    memset(t, 0, sizeof *t);
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return cpu_shape_error(be, "tensor_init", "shape [%d,%d,%d,%d] has an empty dimension",
                               n, c, h, w);
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    /* Blocked only where it buys vector access: whole blocks of channels
     * over a spatial extent (per-channel statistics stay plain). */
    t->layout = cpu->block && c % cpu->block == 0 && (size_t)h * (size_t)w > 1 ? cpu->block : 0;
    size_t numel = unet_tensor_numel(t);
    t->data = cpu_buffer_alloc(be, numel);
    if (!t->data) {
        unet_error_prefix(&be->error, "tensor [%d,%d,%d,%d]: ", n, c, h, w);
        memset(t, 0, sizeof *t);
        return UNET_ERR_NOMEM;
    }
    return UNET_OK;
}

static void cpu_tensor_view(UnetBackend *be, UnetTensor *t, float *buf, int n, int c, int h, int w)
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

static void cpu_tensor_release(UnetBackend *be, UnetTensor *t)
{
    (void)be;
    if (!t)
        return;
    if (!t->is_view)
        cpu_free(t->data);
    memset(t, 0, sizeof *t);
}

static UnetStatus cpu_tensor_upload(UnetBackend *be, UnetTensor *t, const float *host_nchw)
{
    CpuBackend *cpu = cpu_impl(be);
    if (t->layout == 0) {
        copy_floats(cpu, t->data, host_nchw, unet_tensor_numel(t));
        return UNET_OK;
    }
    CpuView src = { (float *)host_nchw, t->n, t->c, t->h, t->w, 1, t->c };
    CpuView dst = cpu_view(t);
    cpu_view_convert(cpu, &dst, &src, 0);
    return UNET_OK;
}

static UnetStatus cpu_tensor_download(UnetBackend *be, float *host_nchw, const UnetTensor *t)
{
    CpuBackend *cpu = cpu_impl(be);
    if (t->layout == 0) {
        copy_floats(cpu, host_nchw, t->data, unet_tensor_numel(t));
        return UNET_OK;
    }
    CpuView dst = { host_nchw, t->n, t->c, t->h, t->w, 1, t->c };
    CpuView src = cpu_view(t);
    cpu_view_convert(cpu, &dst, &src, 0);
    return UNET_OK;
}

static UnetStatus cpu_tensor_fill(UnetBackend *be, UnetTensor *t, float value)
{
    /* Blocked tensors have no padding, so a flat fill is layout-free. */
    fill_floats(cpu_impl(be), t->data, unet_tensor_numel(t), value);
    return UNET_OK;
}

static UnetStatus cpu_synchronize(UnetBackend *be)
{
    (void)be;
    return UNET_OK;
}

/* ---- construction ------------------------------------------------------ */

static void cpu_destroy(UnetBackend *be)
{
    if (!be)
        return;
    CpuBackend *cpu = cpu_impl(be);
    if (cpu) {
        cpu_conv_destroy(be);
        for (int i = 0; i < CPU_SCRATCH_COUNT; i++)
            cpu_free(cpu->scratch[i]);
        free(cpu);
    }
    free(be);
}

UnetBackend *unet_backend_cpu_new(int threads, UnetError *err)
{
    UnetBackend *be = calloc(1, sizeof *be);
    CpuBackend *cpu = calloc(1, sizeof *cpu);
    if (!be || !cpu) {
        free(be);
        free(cpu);
        unet_error_set(err, UNET_ERR_NOMEM, "cpu backend: out of memory");
        return NULL;
    }
    if (threads <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        threads = online > 0 ? (int)online : 1;
    }
    cpu->threads = threads;
    be->name = "cpu";
    be->impl = cpu;
    be->destroy = cpu_destroy;
    be->buffer_alloc = cpu_buffer_alloc;
    be->buffer_free = cpu_buffer_free;
    be->buffer_fill = cpu_buffer_fill;
    be->buffer_upload = cpu_buffer_upload;
    be->buffer_download = cpu_buffer_download;
    be->tensor_init = cpu_tensor_init;
    be->tensor_view = cpu_tensor_view;
    be->tensor_release = cpu_tensor_release;
    be->tensor_upload = cpu_tensor_upload;
    be->tensor_download = cpu_tensor_download;
    be->tensor_fill = cpu_tensor_fill;
    be->synchronize = cpu_synchronize;
    be->conv2d_forward = cpu_conv2d_forward;
    be->conv2d_backward = cpu_conv2d_backward;
    be->upconv2x2_forward = cpu_upconv2x2_forward;
    be->upconv2x2_backward = cpu_upconv2x2_backward;
    cpu_ops_install(be);
    cpu_loss_install(be);

    cpu_set_threads(cpu);
    if (cpu_conv_init(be, err) != UNET_OK) {
        cpu_destroy(be);
        return NULL;
    }
    return be;
}
