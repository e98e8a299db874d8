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
#include <unistd.h>

void *cpu_scratch(UnetBackend *be, int slot, size_t bytes, const char *op)
{
    CpuBackend *cpu = cpu_impl(be);
    if (bytes == 0)
        bytes = 1;
    if (cpu->scratch_size[slot] >= bytes)
        return cpu->scratch[slot];
    cpu_mem_free(cpu, cpu->scratch[slot]);
    cpu->scratch[slot] = cpu_mem_alloc(cpu, bytes);
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
    float *p = cpu_mem_alloc(cpu_impl(be), count * sizeof(float));
    if (!p)
        unet_error_set(&be->error, UNET_ERR_NOMEM,
                       "buffer_alloc: out of memory allocating %.1f MB; use a smaller model",
                       (double)count * 4.0 / 1048576.0);
    return p;
}

static void cpu_buffer_free(UnetBackend *be, float *buf)
{
    cpu_mem_free(cpu_impl(be), buf);
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
    if (!t)
        return;
    if (!t->is_view)
        cpu_mem_free(cpu_impl(be), t->data);
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
            cpu_mem_free(cpu, cpu->scratch[i]);
        cpu_mem_release_all(cpu);
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
    be->read_begin = unet_backend_host_read_begin;
    be->read_end = unet_backend_host_read_end;
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
