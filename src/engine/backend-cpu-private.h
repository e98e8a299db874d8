/* backend-cpu-private.h - what the files of the fast CPU backend share: its
 * state, the blocked activation layout and the op entry points.
 *
 * Activation tensors whose channel count is a multiple of the block size B
 * (16 with AVX-512, 8 otherwise) are kept in oneDNN's nChw<B>c layout:
 * element (n, c, h, w) lives at ((n*C/B + c/B)*H*W + h*W + w)*B + c%B, so the
 * B channels of one pixel are one vector register and no channel padding is
 * ever needed. Every other tensor (views, small channel counts) is plain NCHW,
 * which is the same formula with B = 1; the loops below are written once for
 * any B. */
#ifndef UNET_BACKEND_CPU_PRIVATE_H
#define UNET_BACKEND_CPU_PRIVATE_H

#include <stddef.h>

#include "backend.h"
#include "unet-config.h"

#if UNET_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#ifdef _OPENMP
#include <omp.h>
/* OpenMP, the runtime Debian's oneDNN is built on, also threads our own
 * loops: one pool of threads, no oversubscription. */
#define CPU_OMP(directive) _Pragma(directive)
#else
#define CPU_OMP(directive)
#endif

/* Growable scratch buffers, each reused by one purpose across ops. */
enum {
    CPU_SCRATCH_PAD = 0,   /* oneDNN scratchpad (user mode) */
    CPU_SCRATCH_WEIGHTS,   /* weights, or their gradient, in a primitive's format */
    CPU_SCRATCH_DBIAS,     /* bias gradient before it is added to db */
    CPU_SCRATCH_A,         /* operands staged into another layout, or outputs */
    CPU_SCRATCH_B,         /* computed aside, then converted or added */
    CPU_SCRATCH_C,
    CPU_SCRATCH_COUNT
};

typedef struct CpuConvPlan CpuConvPlan;

/* Pages of freed large blocks kept for reuse (backend-cpu-alloc.c). */
typedef struct CpuPiece {
    char *base;
    size_t len;
} CpuPiece;

typedef struct CpuPool {
    CpuPiece *kept;    /* oldest first; each within one mapping */
    int nkept, cap;
    size_t kept_bytes;
    size_t live;       /* bytes of mapped blocks in use */
    size_t peak;       /* largest live total so far */
} CpuPool;

typedef struct CpuBackend {
    int threads;
    int block; /* B of the blocked layout; 0 when every tensor stays plain */
    int winograd; /* 3x3 Winograd kernels: 0 never, 1 where offered, 2 where faster */
    void *scratch[CPU_SCRATCH_COUNT];
    size_t scratch_size[CPU_SCRATCH_COUNT];
#if UNET_HAVE_DNNL
    dnnl_engine_t engine;
    dnnl_stream_t stream;
#endif
    CpuConvPlan *plans; /* convolution primitives per shape (backend-cpu-conv.c) */
    CpuPool pool;
} CpuBackend;

static inline CpuBackend *cpu_impl(UnetBackend *be)
{
    return (CpuBackend *)be->impl;
}

/* Block width of a tensor's layout: 1 for plain NCHW. */
static inline int cpu_block_of(const UnetTensor *t)
{
    return t->layout > 0 ? t->layout : 1;
}

/* Flat offset of element (n, c, h, w) of a tensor in its layout. */
static inline size_t cpu_offset(const UnetTensor *t, int n, int c, int h, int w)
{
    int b = cpu_block_of(t);
    return (((size_t)n * (size_t)(t->c / b) + (size_t)(c / b)) * (size_t)t->h * (size_t)t->w +
            (size_t)h * (size_t)t->w + (size_t)w) * (size_t)b + (size_t)(c % b);
}

/* Applies the backend's thread count to the calling thread's OpenMP state,
 * which oneDNN reads (the trainer calls ops from its own thread). */
static inline void cpu_set_threads(CpuBackend *cpu)
{
#ifdef _OPENMP
    if (omp_get_max_threads() != cpu->threads)
        omp_set_num_threads(cpu->threads);
#else
    (void)cpu;
#endif
}

/* 64-byte aligned host memory; contents undefined (zero when fresh). */
void *cpu_mem_alloc(CpuBackend *cpu, size_t bytes);
void cpu_mem_free(CpuBackend *cpu, void *p);
void cpu_mem_release_all(CpuBackend *cpu);

/* Returns a buffer of at least bytes (64-byte aligned) for slot, or NULL with
 * be->error filled. Contents are undefined. */
void *cpu_scratch(UnetBackend *be, int slot, size_t bytes, const char *op);

/* be->error = "<op>: <shape message>", returns UNET_ERR_INVALID. */
UnetStatus cpu_shape_error(UnetBackend *be, const char *op, const char *fmt, ...)
    UNET_PRINTF(3, 4);

/* "[n,c,h,w]" of a tensor into buf. */
const char *cpu_shape_str(const UnetTensor *t, char *buf, size_t size);

/* A tensor's memory as the loops see it: block width b (1: plain NCHW) and
 * cp >= c channels, the ones past c being zero padding (oneDNN pads a blocked
 * operand whose channel count is not a multiple of the block). */
typedef struct CpuView {
    float *data;
    int n, c, h, w;
    int b, cp;
} CpuView;

static inline CpuView cpu_view(const UnetTensor *t)
{
    CpuView v = { t->data, t->n, t->c, t->h, t->w, cpu_block_of(t), t->c };
    return v;
}

static inline size_t cpu_view_numel(const CpuView *v)
{
    return (size_t)v->n * (size_t)v->cp * (size_t)v->h * (size_t)v->w;
}

/* Copies src into dst (same n, c, h, w; any layouts), zeroing dst's padding
 * channels; dst += src instead when accumulate (padding untouched). */
void cpu_view_convert(CpuBackend *cpu, const CpuView *dst, const CpuView *src, int accumulate);

/* Operand staging, for ops whose operands come in different layouts (a
 * view beside a blocked tensor, a channel count the block does not divide):
 * cpu_stage_in gives t's data in block width b (t itself when it already is,
 * else a copy in scratch slot, zero-padded to whole blocks); cpu_out_buffer
 * gives where to write t in block width b (t itself when that overwrites it
 * correctly, else scratch) and cpu_stage_out moves such a scratch result into
 * t, adding when accumulate. NULL with be->error filled when out of memory. */
const float *cpu_stage_in(UnetBackend *be, const UnetTensor *t, int b, int slot, const char *op);
float *cpu_out_buffer(UnetBackend *be, const UnetTensor *t, int b, int accumulate, int slot,
                      const char *op);
void cpu_stage_out(UnetBackend *be, UnetTensor *t, const float *buf, int b, int accumulate);

static inline int cpu_round_up(int v, int b)
{
    return (v + b - 1) / b * b;
}

/* Number of parallel threads worth using for a loop over count elements. */
static inline int cpu_threads_for(const CpuBackend *cpu, size_t count)
{
    return count < 32768 ? 1 : cpu->threads;
}

/* ---- backend-cpu-conv.c (oneDNN) or backend-cpu-conv-plain.c ----------- */
UnetStatus cpu_conv2d_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                              const UnetTensor *w, const UnetTensor *b, const UnetConvDesc *d);
UnetStatus cpu_conv2d_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                               const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                               const UnetConvDesc *d, int accumulate);
UnetStatus cpu_upconv2x2_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                 const UnetTensor *w, const UnetTensor *b);
UnetStatus cpu_upconv2x2_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                                  const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                                  int accumulate);
/* Sets cpu->block and whatever the convolution code needs. */
UnetStatus cpu_conv_init(UnetBackend *be, UnetError *err);
void cpu_conv_destroy(UnetBackend *be);

/* ---- backend-cpu-kernels.c: hand-written kernels on blocked tensors -----
 * x, y/dy and dx share one block width B (8 or 16) that divides Ci and Co.
 * w is PyTorch's [Ci,Co,2,2]; wp/dwp are Ci*Co*4-float work buffers. */
void cpu_upconv_blocked_forward(CpuBackend *cpu, UnetTensor *y, const UnetTensor *x,
                                const float *w, const float *bias, float *wp);
void cpu_upconv_blocked_backward_weights(CpuBackend *cpu, float *dw, const UnetTensor *x,
                                         const UnetTensor *dy, float *dwp);
/* The 1x1 head: x (and dx) blocked, y/dy plain with at most CPU_HEAD_MAX_CO
 * channels, Ci <= CPU_HEAD_MAX_CI; w is [Co,Ci]. part holds
 * threads * Co * (Ci + 1) doubles. */
#define CPU_HEAD_MAX_CO 16
#define CPU_HEAD_MAX_CI 1024
void cpu_head_forward(CpuBackend *cpu, UnetTensor *y, const UnetTensor *x, const float *w,
                      const float *bias);
void cpu_head_backward_data(CpuBackend *cpu, UnetTensor *dx, const UnetTensor *dy,
                            const float *w, int accumulate);
void cpu_head_backward_weights(CpuBackend *cpu, float *dw, float *db, const UnetTensor *x,
                               const UnetTensor *dy, double *part);

/* ---- backend-cpu-ops.c: pooling, resampling, skip, activations, norms -- */
void cpu_ops_install(UnetBackend *be);
/* ---- backend-cpu-loss.c: losses and optimizers ------------------------- */
void cpu_loss_install(UnetBackend *be);

#endif
