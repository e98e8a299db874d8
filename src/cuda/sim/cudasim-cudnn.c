/* cudasim-cudnn.c - the legacy cuDNN 9 convolution calls the backend makes, as direct loops on the simulated device.
 *
 * Descriptors are validated as cuDNN does (shape or type mismatch:
 * CUDNN_STATUS_BAD_PARAM with a message for cudnnGetLastErrorString), the
 * convolutions run in stream order on the handle's stream with cuDNN's
 * alpha/beta rule (beta == 0: the output is not read). NCHW, float or
 * bfloat16 data (uint16 bit patterns, accumulated in float, rounded to
 * nearest even), float compute. Find*AlgorithmEx reports two algorithms:
 * one needing a workspace (reported faster) and one needing none, so the
 * backend's workspace budget code has something to choose; both compute
 * the same loops. Nothing here models cuDNN's real numerics or speed. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "cudasim.h"
#include "kernels.h"

typedef struct SimTensor {
    int set;
    cudnnDataType_t type;
    int n, c, h, w;
} SimTensor;

struct cudnnTensorStruct {
    SimTensor t;
};

struct cudnnFilterStruct {
    int set;
    cudnnDataType_t type;
    int k, c, h, w;
};

struct cudnnConvolutionStruct {
    int set;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};

struct cudnnContext {
    cudaStream_t stream;
};

static __thread char last_message[256];

static cudnnStatus_t fail(cudnnStatus_t s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return s;
}

size_t cudnnGetVersion(void)
{
    return CUDNN_VERSION;
}

cudnnStatus_t cudnnOpsVersionCheck(void)
{
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCnnVersionCheck(void)
{
    return CUDNN_STATUS_SUCCESS;
}

const char *cudnnGetErrorString(cudnnStatus_t s)
{
    switch (s) {
    case CUDNN_STATUS_SUCCESS:
        return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED:
        return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM:
        return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_BAD_PARAM_NULL_POINTER:
        return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case CUDNN_STATUS_NOT_SUPPORTED:
        return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED:
        return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
    case CUDNN_STATUS_EXECUTION_FAILED:
        return "CUDNN_STATUS_EXECUTION_FAILED";
    default:
        return "CUDNN_STATUS_UNKNOWN";
    }
}

void cudnnGetLastErrorString(char *message, size_t max_size)
{
    if (!message || !max_size)
        return;
    snprintf(message, max_size, "%s", last_message);
    last_message[0] = '\0';
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *handle)
{
    if (!handle)
        return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnCreate: handle is NULL");
    if (!cudasim_device_ok())
        return fail(CUDNN_STATUS_NOT_INITIALIZED, "cudnnCreate: no CUDA device");
    *handle = calloc(1, sizeof **handle);
    return *handle ? CUDNN_STATUS_SUCCESS
                   : fail(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, "out of memory");
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    free(handle);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream)
{
    if (!handle)
        return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetStream: handle is NULL");
    handle->stream = stream;
    return CUDNN_STATUS_SUCCESS;
}

#define CREATE_DESTROY(Type, type)                                                        \
    cudnnStatus_t cudnnCreate##Type##Descriptor(cudnn##Type##Descriptor_t *d)             \
    {                                                                                     \
        if (!d)                                                                           \
            return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "descriptor pointer is NULL"); \
        *d = calloc(1, sizeof(struct type));                                              \
        return *d ? CUDNN_STATUS_SUCCESS                                                  \
                  : fail(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, "out of memory"); \
    }                                                                                     \
    cudnnStatus_t cudnnDestroy##Type##Descriptor(cudnn##Type##Descriptor_t d)             \
    {                                                                                     \
        free(d);                                                                          \
        return CUDNN_STATUS_SUCCESS;                                                      \
    }

CREATE_DESTROY(Tensor, cudnnTensorStruct)
CREATE_DESTROY(Filter, cudnnFilterStruct)
CREATE_DESTROY(Convolution, cudnnConvolutionStruct)

static int type_ok(cudnnDataType_t t)
{
    return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_BFLOAT16;
}

static size_t type_size(cudnnDataType_t t)
{
    return t == CUDNN_DATA_FLOAT ? 4 : 2;
}

/* What cudnnSetTensor4dDescriptor and cudnnSetFilter4dDescriptor check
 * (what: "tensors" or "filters"). */
static cudnnStatus_t check_4d(const void *d, const char *call, const char *what,
                              cudnnTensorFormat_t format, cudnnDataType_t type, int n, int c,
                              int h, int w)
{
    if (!d)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: descriptor is NULL", call);
    if (format != CUDNN_TENSOR_NCHW)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudasim: only NCHW %s are simulated", what);
    if (!type_ok(type))
        return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudasim: data type %d is not simulated",
                    (int)type);
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: bad dims [%d,%d,%d,%d]", call, n, c, h, w);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w)
{
    cudnnStatus_t s = check_4d(d, "cudnnSetTensor4dDescriptor", "tensors", format, type, n, c, h,
                               w);
    if (s == CUDNN_STATUS_SUCCESS)
        d->t = (SimTensor){ 1, type, n, c, h, w };
    return s;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w)
{
    cudnnStatus_t s = check_4d(d, "cudnnSetFilter4dDescriptor", "filters", format, type, k, c, h,
                               w);
    if (s == CUDNN_STATUS_SUCCESS)
        *d = (struct cudnnFilterStruct){ 1, type, k, c, h, w };
    return s;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w,
                                              int u, int v, int dil_h, int dil_w,
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute)
{
    if (!d)
        return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolution2dDescriptor: descriptor is NULL");
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dil_h <= 0 || dil_w <= 0 ||
        (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION))
        return fail(CUDNN_STATUS_BAD_PARAM,
                    "cudnnSetConvolution2dDescriptor: pad %d,%d stride %d,%d dilation %d,%d "
                    "mode %d",
                    pad_h, pad_w, u, v, dil_h, dil_w, (int)mode);
    if (compute != CUDNN_DATA_FLOAT)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudasim: compute type %d is not simulated",
                    (int)compute);
    d->set = 1;
    d->pad_h = pad_h;
    d->pad_w = pad_w;
    d->u = u;
    d->v = v;
    d->dil_h = dil_h;
    d->dil_w = dil_w;
    d->mode = mode;
    d->compute = compute;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math)
{
    if (!d)
        return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionMathType: descriptor is NULL");
    if (math != CUDNN_DEFAULT_MATH && math != CUDNN_TENSOR_OP_MATH &&
        math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && math != CUDNN_FMA_MATH)
        return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionMathType: math type %d",
                    (int)math);
    d->math = math;
    return CUDNN_STATUS_SUCCESS;
}

static int out_dim(int in, int pad, int k, int dil, int stride)
{
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t conv,
                                                    const cudnnTensorDescriptor_t x,
                                                    const cudnnFilterDescriptor_t w, int *n,
                                                    int *c, int *h, int *wo)
{
    if (!conv || !x || !w || !n || !c || !h || !wo || !conv->set || !x->t.set || !w->set)
        return fail(CUDNN_STATUS_BAD_PARAM,
                    "cudnnGetConvolution2dForwardOutputDim: NULL or unset descriptor");
    if (x->t.c != w->c)
        return fail(CUDNN_STATUS_BAD_PARAM,
                    "cudnnGetConvolution2dForwardOutputDim: input has %d channels, filter %d",
                    x->t.c, w->c);
    *n = x->t.n;
    *c = w->k;
    *h = out_dim(x->t.h, conv->pad_h, w->h, conv->dil_h, conv->u);
    *wo = out_dim(x->t.w, conv->pad_w, w->w, conv->dil_w, conv->v);
    if (*h < 1 || *wo < 1)
        return fail(CUDNN_STATUS_BAD_PARAM, "convolution output would be %dx%d", *h, *wo);
    return CUDNN_STATUS_SUCCESS;
}

/* ---- the convolution job ------------------------------------------------- */

enum { DIR_FWD, DIR_BWD_DATA, DIR_BWD_FILTER };

typedef struct Job {
    int dir;
    SimTensor x, y; /* x: the convolution's input, y: its output */
    struct cudnnFilterStruct w;
    struct cudnnConvolutionStruct conv;
    const void *in_a, *in_b; /* FWD: x, w; BWD_DATA: w, dy; BWD_FILTER: x, dy */
    void *out;
    float alpha, beta;
} Job;

static size_t tensor_count(const SimTensor *t)
{
    return (size_t)t->n * t->c * t->h * t->w;
}

static size_t filter_count(const struct cudnnFilterStruct *w)
{
    return (size_t)w->k * w->c * w->h * w->w;
}

static cudnnStatus_t check_job(const char *call, const Job *j)
{
    const SimTensor *x = &j->x, *y = &j->y;
    const struct cudnnFilterStruct *w = &j->w;
    const struct cudnnConvolutionStruct *c = &j->conv;
    if (!x->set || !y->set || !w->set || !c->set)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: a descriptor was never set", call);
    if (x->type != y->type || x->type != w->type)
        return fail(CUDNN_STATUS_BAD_PARAM,
                    "%s: data types differ (x %d, y %d, filter %d)", call, (int)x->type,
                    (int)y->type, (int)w->type);
    int ho = out_dim(x->h, c->pad_h, w->h, c->dil_h, c->u);
    int wo = out_dim(x->w, c->pad_w, w->w, c->dil_w, c->v);
    if (x->c != w->c || y->n != x->n || y->c != w->k || y->h != ho || y->w != wo)
        return fail(CUDNN_STATUS_BAD_PARAM,
                    "%s: x [%d,%d,%d,%d] with filter [%d,%d,%d,%d] (pad %d,%d stride %d,%d) "
                    "gives [%d,%d,%d,%d], but y is [%d,%d,%d,%d]",
                    call, x->n, x->c, x->h, x->w, w->k, w->c, w->h, w->w, c->pad_h, c->pad_w,
                    c->u, c->v, x->n, w->k, ho, wo, y->n, y->c, y->h, y->w);
    if (!j->in_a || !j->in_b || !j->out)
        return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "%s: a data pointer is NULL", call);
    return CUDNN_STATUS_SUCCESS;
}

/* Float copy of count values of type t (or the data itself when float). */
static const float *load(const void *p, size_t count, cudnnDataType_t t, float **owned)
{
    *owned = NULL;
    if (t == CUDNN_DATA_FLOAT)
        return p;
    float *f = malloc(count * sizeof *f);
    if (!f) {
        cudasim_fault(cudaErrorMemoryAllocation, "out of host memory for a bf16 convolution");
        return NULL;
    }
    for (size_t i = 0; i < count; i++)
        f[i] = unet_k_bf16_to_float(((const uint16_t *)p)[i]);
    *owned = f;
    return f;
}

/* Output positions o in [0, out) whose input o*stride + off lies in [0, in). */
static void valid_range(int out, int in, int stride, int off, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int b = in - off <= 0 ? 0 : (in - off - 1) / stride + 1;
    *lo = a;
    *hi = b < out ? b : out;
    if (*hi < *lo)
        *hi = *lo;
}

static float tap(const Job *j, const float *w, int co, int ci, int kh, int kw)
{
    const struct cudnnFilterStruct *f = &j->w;
    if (j->conv.mode == CUDNN_CONVOLUTION) {
        kh = f->h - 1 - kh;
        kw = f->w - 1 - kw;
    }
    return w[(((size_t)co * f->c + ci) * f->h + kh) * f->w + kw];
}

static void conv_forward(const Job *j, const float *restrict x, const float *restrict w,
                         float *restrict acc)
{
    const SimTensor *X = &j->x, *Y = &j->y;
    const struct cudnnConvolutionStruct *c = &j->conv;
    const size_t ohw = (size_t)Y->h * Y->w;
    memset(acc, 0, tensor_count(Y) * sizeof *acc);
    for (int n = 0; n < X->n; n++)
        for (int co = 0; co < Y->c; co++) {
            float *restrict out = acc + ((size_t)n * Y->c + co) * ohw;
            for (int ci = 0; ci < X->c; ci++) {
                const float *restrict in = x + ((size_t)n * X->c + ci) * X->h * X->w;
                for (int kh = 0; kh < j->w.h; kh++) {
                    int oh_lo, oh_hi, ow_lo, ow_hi;
                    valid_range(Y->h, X->h, c->u, kh * c->dil_h - c->pad_h, &oh_lo, &oh_hi);
                    for (int kw = 0; kw < j->w.w; kw++) {
                        const float t = tap(j, w, co, ci, kh, kw);
                        const int offw = kw * c->dil_w - c->pad_w;
                        valid_range(Y->w, X->w, c->v, offw, &ow_lo, &ow_hi);
                        for (int oh = oh_lo; oh < oh_hi; oh++) {
                            const float *restrict row =
                                in + (size_t)(oh * c->u + kh * c->dil_h - c->pad_h) * X->w + offw;
                            float *restrict o = out + (size_t)oh * Y->w;
                            if (c->v == 1)
                                for (int ow = ow_lo; ow < ow_hi; ow++)
                                    o[ow] += t * row[ow];
                            else
                                for (int ow = ow_lo; ow < ow_hi; ow++)
                                    o[ow] += t * row[(size_t)ow * c->v];
                        }
                    }
                }
            }
        }
}

static void conv_backward_data(const Job *j, const float *restrict w, const float *restrict dy,
                               float *restrict acc)
{
    const SimTensor *X = &j->x, *Y = &j->y;
    const struct cudnnConvolutionStruct *c = &j->conv;
    const size_t ohw = (size_t)Y->h * Y->w;
    memset(acc, 0, tensor_count(X) * sizeof *acc);
    for (int n = 0; n < X->n; n++)
        for (int ci = 0; ci < X->c; ci++) {
            float *restrict dx = acc + ((size_t)n * X->c + ci) * X->h * X->w;
            for (int co = 0; co < Y->c; co++) {
                const float *restrict g = dy + ((size_t)n * Y->c + co) * ohw;
                for (int kh = 0; kh < j->w.h; kh++) {
                    int oh_lo, oh_hi, ow_lo, ow_hi;
                    valid_range(Y->h, X->h, c->u, kh * c->dil_h - c->pad_h, &oh_lo, &oh_hi);
                    for (int kw = 0; kw < j->w.w; kw++) {
                        const float t = tap(j, w, co, ci, kh, kw);
                        const int offw = kw * c->dil_w - c->pad_w;
                        valid_range(Y->w, X->w, c->v, offw, &ow_lo, &ow_hi);
                        for (int oh = oh_lo; oh < oh_hi; oh++) {
                            float *restrict row =
                                dx + (size_t)(oh * c->u + kh * c->dil_h - c->pad_h) * X->w + offw;
                            const float *restrict gi = g + (size_t)oh * Y->w;
                            if (c->v == 1)
                                for (int ow = ow_lo; ow < ow_hi; ow++)
                                    row[ow] += t * gi[ow];
                            else
                                for (int ow = ow_lo; ow < ow_hi; ow++)
                                    row[(size_t)ow * c->v] += t * gi[ow];
                        }
                    }
                }
            }
        }
}

static void conv_backward_filter(const Job *j, const float *restrict x, const float *restrict dy,
                                 float *restrict acc)
{
    const SimTensor *X = &j->x, *Y = &j->y;
    const struct cudnnFilterStruct *f = &j->w;
    const struct cudnnConvolutionStruct *c = &j->conv;
    const size_t ohw = (size_t)Y->h * Y->w;
    for (int co = 0; co < f->k; co++)
        for (int ci = 0; ci < f->c; ci++)
            for (int kh = 0; kh < f->h; kh++) {
                int oh_lo, oh_hi, ow_lo, ow_hi;
                valid_range(Y->h, X->h, c->u, kh * c->dil_h - c->pad_h, &oh_lo, &oh_hi);
                for (int kw = 0; kw < f->w; kw++) {
                    const int offw = kw * c->dil_w - c->pad_w;
                    valid_range(Y->w, X->w, c->v, offw, &ow_lo, &ow_hi);
                    double sum = 0.0;
                    for (int n = 0; n < X->n; n++) {
                        const float *restrict in = x + ((size_t)n * X->c + ci) * X->h * X->w;
                        const float *restrict g = dy + ((size_t)n * Y->c + co) * ohw;
                        for (int oh = oh_lo; oh < oh_hi; oh++) {
                            const float *restrict row =
                                in + (size_t)(oh * c->u + kh * c->dil_h - c->pad_h) * X->w + offw;
                            const float *restrict gi = g + (size_t)oh * Y->w;
                            float s = 0.0f;
                            for (int ow = ow_lo; ow < ow_hi; ow++)
                                s += gi[ow] * row[(size_t)ow * c->v];
                            sum += s;
                        }
                    }
                    int fh = kh, fw = kw; /* the tap this sum is the gradient of */
                    if (c->mode == CUDNN_CONVOLUTION) {
                        fh = f->h - 1 - kh;
                        fw = f->w - 1 - kw;
                    }
                    acc[(((size_t)co * f->c + ci) * f->h + fh) * f->w + fw] = (float)sum;
                }
            }
}

static size_t job_out_count(const Job *j)
{
    return j->dir == DIR_FWD        ? tensor_count(&j->y)
           : j->dir == DIR_BWD_DATA ? tensor_count(&j->x)
                                    : filter_count(&j->w);
}

/* The first bad operand is a fault (cudasim_fault), returned. */
static cudaError_t check_job_memory(const Job *j, const char *when)
{
    const size_t es = type_size(j->x.type);
    const void *ptr[3] = { j->in_a, j->in_b, j->out };
    const size_t count[3] = {
        j->dir == DIR_BWD_DATA ? filter_count(&j->w) : tensor_count(&j->x),
        j->dir == DIR_FWD ? filter_count(&j->w) : tensor_count(&j->y),
        job_out_count(j),
    };
    const char *names[3][3] = { { "x", "w", "y" }, { "w", "dy", "dx" }, { "x", "dy", "dw" } };
    for (int i = 0; i < 3; i++) {
        char what[128];
        snprintf(what, sizeof what, "cuDNN convolution (%s) %s", names[j->dir][i], when);
        cudaError_t e = cudasim_check_device_range(ptr[i], count[i] * es, what);
        if (e != cudaSuccess)
            return e;
    }
    return cudaSuccess;
}

static void run_job(void *ctx)
{
    const Job *j = ctx;
    if (check_job_memory(j, "when it runs") != cudaSuccess)
        return;
    size_t na = j->dir == DIR_BWD_DATA ? filter_count(&j->w) : tensor_count(&j->x);
    size_t nb = j->dir == DIR_FWD ? filter_count(&j->w) : tensor_count(&j->y);
    size_t nout = job_out_count(j);
    float *own_a, *own_b;
    const float *a = load(j->in_a, na, j->x.type, &own_a);
    const float *b = load(j->in_b, nb, j->x.type, &own_b);
    float *acc = a && b ? malloc(nout * sizeof *acc) : NULL;
    if (!acc) {
        if (a && b)
            cudasim_fault(cudaErrorMemoryAllocation, "out of host memory for a convolution");
        free(own_a);
        free(own_b);
        return;
    }
    if (j->dir == DIR_FWD)
        conv_forward(j, a, b, acc);
    else if (j->dir == DIR_BWD_DATA)
        conv_backward_data(j, a, b, acc);
    else
        conv_backward_filter(j, a, b, acc);
    if (j->x.type == CUDNN_DATA_FLOAT) {
        float *out = j->out;
        for (size_t i = 0; i < nout; i++)
            out[i] = j->beta == 0.0f ? j->alpha * acc[i] : j->alpha * acc[i] + j->beta * out[i];
    } else {
        uint16_t *out = j->out;
        for (size_t i = 0; i < nout; i++) {
            float v = j->alpha * acc[i];
            if (j->beta != 0.0f)
                v += j->beta * unet_k_bf16_to_float(out[i]);
            out[i] = unet_k_float_to_bf16(v);
        }
    }
    free(acc);
    free(own_a);
    free(own_b);
}

/* Workspace the first (faster) of the two simulated algorithms wants. */
static size_t algo_workspace(const Job *j, int algo)
{
    if (algo == 0)
        return 0;
    return (size_t)j->w.c * j->w.h * j->w.w * j->y.h * j->y.w * sizeof(float) / 4 + 4096;
}

static cudnnStatus_t make_job(Job *j, int dir, const cudnnTensorDescriptor_t x,
                              const cudnnFilterDescriptor_t w,
                              const cudnnConvolutionDescriptor_t conv,
                              const cudnnTensorDescriptor_t y, const char *call)
{
    memset(j, 0, sizeof *j);
    j->dir = dir;
    if (!x || !w || !conv || !y)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: NULL descriptor", call);
    j->x = x->t;
    j->y = y->t;
    j->w = *w;
    j->conv = *conv;
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t enqueue_job(cudnnHandle_t h, Job *j, int algo, void *ws, size_t ws_size,
                                 const char *call)
{
    if (algo < 0 || algo > 1)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: algorithm %d is not simulated", call, algo);
    if (ws_size < algo_workspace(j, algo))
        return fail(CUDNN_STATUS_BAD_PARAM,
                    "%s: algorithm %d needs %zu bytes of workspace, %zu given", call, algo,
                    algo_workspace(j, algo), ws_size);
    if (ws_size) {
        if (!ws)
            return fail(CUDNN_STATUS_BAD_PARAM, "%s: workspace size %zu with a NULL workspace",
                        call, ws_size);
        if (cudasim_check_device_range(ws, ws_size, "cuDNN workspace") != cudaSuccess)
            return fail(CUDNN_STATUS_BAD_PARAM, "%s: the workspace is not device memory", call);
    }
    if (check_job_memory(j, "at the call") != cudaSuccess)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: an operand is not device memory", call);
    Job *copy = malloc(sizeof *copy);
    if (!copy)
        return fail(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, "out of memory");
    *copy = *j;
    cudaError_t e = cudasim_enqueue_host(h->stream, run_job, free, copy, call);
    if (e != cudaSuccess)
        return fail(CUDNN_STATUS_EXECUTION_FAILED, "%s: %s", call, cudaGetErrorString(e));
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t scaling(const void *alpha, const void *beta, Job *j, const char *call)
{
    if (!alpha || !beta)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: alpha or beta is NULL", call);
    j->alpha = *(const float *)alpha;
    j->beta = *(const float *)beta;
    return CUDNN_STATUS_SUCCESS;
}

/* The three convolution calls: descriptors in the convolution's roles (x
 * its input, w its filter, y its output), data pointers in the call's order
 * (in_a, in_b, out; see Job). */
static cudnnStatus_t convolution(cudnnHandle_t handle, int dir, const void *alpha,
                                 const void *beta, const cudnnTensorDescriptor_t xDesc,
                                 const cudnnFilterDescriptor_t wDesc,
                                 const cudnnConvolutionDescriptor_t convDesc,
                                 const cudnnTensorDescriptor_t yDesc, const void *in_a,
                                 const void *in_b, void *out, int algo, void *workSpace,
                                 size_t workSpaceSizeInBytes, const char *call)
{
    Job j;
    cudnnStatus_t s;
    if (!handle)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: handle is NULL", call);
    if ((s = make_job(&j, dir, xDesc, wDesc, convDesc, yDesc, call)) != CUDNN_STATUS_SUCCESS)
        return s;
    j.in_a = in_a;
    j.in_b = in_b;
    j.out = out;
    if ((s = check_job(call, &j)) != CUDNN_STATUS_SUCCESS ||
        (s = scaling(alpha, beta, &j, call)) != CUDNN_STATUS_SUCCESS)
        return s;
    return enqueue_job(handle, &j, algo, workSpace, workSpaceSizeInBytes, call);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void *x,
                                      const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void *workSpace,
                                      size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y)
{
    return convolution(handle, DIR_FWD, alpha, beta, xDesc, wDesc, convDesc, yDesc, x, w, y,
                       (int)algo, workSpace, workSpaceSizeInBytes, "cudnnConvolutionForward");
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void *w,
                                           const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                           size_t workSpaceSizeInBytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    return convolution(handle, DIR_BWD_DATA, alpha, beta, dxDesc, wDesc, convDesc, dyDesc, w, dy,
                       dx, (int)algo, workSpace, workSpaceSizeInBytes,
                       "cudnnConvolutionBackwardData");
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void *x,
                                             const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace,
                                             size_t workSpaceSizeInBytes, const void *beta,
                                             const cudnnFilterDescriptor_t dwDesc, void *dw)
{
    return convolution(handle, DIR_BWD_FILTER, alpha, beta, xDesc, dwDesc, convDesc, dyDesc, x, dy,
                       dw, (int)algo, workSpace, workSpaceSizeInBytes,
                       "cudnnConvolutionBackwardFilter");
}

/* Find*Ex: runs the convolution once (synchronously, like cuDNN, which
 * times it) into the given output and reports the two algorithms: the one
 * with a workspace first when it fits in what was given. Arguments as for
 * convolution(); the results go to r and their count to *returned. */
typedef struct FindResult {
    int n;
    int algo[2];
    cudnnStatus_t status[2];
    size_t memory[2];
    float time[2];
    cudnnMathType_t math[2];
} FindResult;

static cudnnStatus_t find(cudnnHandle_t handle, int dir, const cudnnTensorDescriptor_t xDesc,
                          const cudnnFilterDescriptor_t wDesc,
                          const cudnnConvolutionDescriptor_t convDesc,
                          const cudnnTensorDescriptor_t yDesc, const void *in_a, const void *in_b,
                          void *out, int requested, int *returned, const void *perf, void *ws,
                          size_t ws_size, const char *call, FindResult *r)
{
    Job j;
    cudnnStatus_t s = make_job(&j, dir, xDesc, wDesc, convDesc, yDesc, call);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    if (!returned)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: returnedAlgoCount is NULL", call);
    j.in_a = in_a;
    j.in_b = in_b;
    j.out = out;
    if (!perf)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: perfResults is NULL", call);
    if (requested > 2)
        requested = 2;
    if (!handle || requested < 1)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: bad handle, count or result pointer", call);
    if ((s = check_job(call, &j)) != CUDNN_STATUS_SUCCESS)
        return s;
    j.alpha = 1.0f;
    j.beta = 0.0f;
    cudaError_t e = cudasim_stream_drain(handle->stream);
    if (e != cudaSuccess)
        return fail(CUDNN_STATUS_EXECUTION_FAILED, "%s: %s", call, cudaGetErrorString(e));
    if ((s = enqueue_job(handle, &j, 0, NULL, 0, call)) != CUDNN_STATUS_SUCCESS)
        return s;
    if ((e = cudasim_stream_drain(handle->stream)) != cudaSuccess)
        return fail(CUDNN_STATUS_EXECUTION_FAILED, "%s: %s", call, cudaGetErrorString(e));
    int n = 0;
    int order[2] = { 1, 0 };
    for (int i = 0; i < 2 && n < requested; i++) {
        int algo = order[i];
        size_t mem = algo_workspace(&j, algo);
        r->algo[n] = algo;
        r->memory[n] = mem;
        r->status[n] = mem <= ws_size && (mem == 0 || ws) ? CUDNN_STATUS_SUCCESS
                                                          : CUDNN_STATUS_NOT_SUPPORTED;
        r->time[n] = algo == 1 ? 1.0f : 2.0f;
        r->math[n] = j.conv.math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
        n++;
    }
    /* cuDNN lists the successful results first. */
    if (n == 2 && r->status[0] != CUDNN_STATUS_SUCCESS && r->status[1] == CUDNN_STATUS_SUCCESS) {
        int ta = r->algo[0];
        r->algo[0] = r->algo[1];
        r->algo[1] = ta;
        cudnnStatus_t ts = r->status[0];
        r->status[0] = r->status[1];
        r->status[1] = ts;
        size_t tm = r->memory[0];
        r->memory[0] = r->memory[1];
        r->memory[1] = tm;
    }
    r->n = n;
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

/* The perf structs of the three directions differ only in their algo type. */
#define FILL_PERF(perf, AlgoType, r)                          \
    for (int i_ = 0; i_ < (r).n; i_++) {                      \
        memset(&(perf)[i_], 0, sizeof(perf)[i_]);             \
        (perf)[i_].algo = (AlgoType)(r).algo[i_];             \
        (perf)[i_].status = (r).status[i_];                   \
        (perf)[i_].time = (r).time[i_];                       \
        (perf)[i_].memory = (r).memory[i_];                   \
        (perf)[i_].determinism = CUDNN_DETERMINISTIC;         \
        (perf)[i_].mathType = (r).math[i_];                   \
    }

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t yDesc, void *y, const int requestedAlgoCount,
    int *returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t *perfResults, void *workSpace,
    size_t workSpaceSizeInBytes)
{
    FindResult r = { 0 };
    cudnnStatus_t s = find(handle, DIR_FWD, xDesc, wDesc, convDesc, yDesc, x, w, y,
                           requestedAlgoCount, returnedAlgoCount, perfResults, workSpace,
                           workSpaceSizeInBytes, "cudnnFindConvolutionForwardAlgorithmEx", &r);
    if (s == CUDNN_STATUS_SUCCESS)
        FILL_PERF(perfResults, cudnnConvolutionFwdAlgo_t, r);
    return s;
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void *dx,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t *perfResults, void *workSpace, size_t workSpaceSizeInBytes)
{
    FindResult r = { 0 };
    cudnnStatus_t s = find(handle, DIR_BWD_DATA, dxDesc, wDesc, convDesc, dyDesc, w, dy, dx,
                           requestedAlgoCount, returnedAlgoCount, perfResults, workSpace,
                           workSpaceSizeInBytes, "cudnnFindConvolutionBackwardDataAlgorithmEx",
                           &r);
    if (s == CUDNN_STATUS_SUCCESS)
        FILL_PERF(perfResults, cudnnConvolutionBwdDataAlgo_t, r);
    return s;
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t dyDesc, const void *y,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void *dw,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t *perfResults, void *workSpace,
    size_t workSpaceSizeInBytes)
{
    FindResult r = { 0 };
    cudnnStatus_t s = find(handle, DIR_BWD_FILTER, xDesc, dwDesc, convDesc, dyDesc, x, y, dw,
                           requestedAlgoCount, returnedAlgoCount, perfResults, workSpace,
                           workSpaceSizeInBytes, "cudnnFindConvolutionBackwardFilterAlgorithmEx",
                           &r);
    if (s == CUDNN_STATUS_SUCCESS)
        FILL_PERF(perfResults, cudnnConvolutionBwdFilterAlgo_t, r);
    return s;
}
