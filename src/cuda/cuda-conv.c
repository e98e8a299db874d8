/* cuda-conv.c - convolutions and 2x2 transposed convolutions through cuDNN.
 *
 * The legacy cuDNN convolution API (cudnn_cnn.h, still shipped in cuDNN 9).
 * For each shape and direction the algorithm is chosen once by measurement
 * (cudnnFind*AlgorithmEx, fastest that fits the workspace budget) and
 * cached. A 2x2 stride-2 transposed convolution is the backward-data pass of
 * the convolution it transposes: its input gradient is that convolution's
 * forward pass and its weight gradient the backward-filter pass with the
 * roles of input and output swapped. NCHW float32 throughout, except in
 * BF16 precision: there each pass converts its two inputs into bf16 copies
 * in a scratch buffer, cuDNN computes with bf16 tensors and fp32
 * accumulation (CUDNN_DATA_FLOAT compute type, tensor cores) into a bf16
 * output, and a kernel writes or adds that output into the fp32 tensor. */
#include <stdlib.h>
#include <string.h>

#include "cuda-launch.h"
#include "cuda-private.h"

UnetStatus unet_cuda_conv_init(UnetCudaBackend *cb)
{
    const char *op = "start (cuDNN descriptors)";
    UNET_CUDNN_TRY(cb, op, cudnnCreateTensorDescriptor(&cb->x_desc));
    UNET_CUDNN_TRY(cb, op, cudnnCreateTensorDescriptor(&cb->y_desc));
    UNET_CUDNN_TRY(cb, op, cudnnCreateFilterDescriptor(&cb->w_desc));
    UNET_CUDNN_TRY(cb, op, cudnnCreateConvolutionDescriptor(&cb->conv_desc));
    return UNET_OK;
}

void unet_cuda_conv_destroy(UnetCudaBackend *cb)
{
    unet_cuda_free(cb, cb->workspace);
    cb->workspace = NULL;
    cb->workspace_size = 0;
    if (cb->conv_desc)
        cudnnDestroyConvolutionDescriptor(cb->conv_desc);
    if (cb->w_desc)
        cudnnDestroyFilterDescriptor(cb->w_desc);
    if (cb->y_desc)
        cudnnDestroyTensorDescriptor(cb->y_desc);
    if (cb->x_desc)
        cudnnDestroyTensorDescriptor(cb->x_desc);
    free(cb->algos);
    cb->algos = NULL;
    cb->algo_count = cb->algo_cap = 0;
    unet_cuda_free(cb, cb->bf16);
    cb->bf16 = NULL;
    cb->bf16_count = 0;
}

/* The arithmetic convolutions run in now: the backend's precision, with
 * TF32 turned into FP32 by UNET_CUDA_TF32=0. */
static UnetPrecision conv_precision(const UnetCudaBackend *cb)
{
    if (cb->base.precision == UNET_PRECISION_TF32 && cb->tf32_env_off)
        return UNET_PRECISION_FP32;
    return cb->base.precision;
}

static size_t elem_size(UnetPrecision p)
{
    return p == UNET_PRECISION_BF16 ? sizeof(uint16_t) : sizeof(float);
}

static cudnnMathType_t math_type(UnetPrecision p)
{
    /* As PyTorch: DEFAULT lets cuDNN use TF32 tensor cores for float data on
     * Ampere and newer; FMA forbids them (full fp32, for parity tests);
     * bf16 data runs on tensor cores. ALLOW_CONVERSION is avoided: it also
     * permits fp16 down-conversion. */
    return p == UNET_PRECISION_BF16   ? CUDNN_TENSOR_OP_MATH
           : p == UNET_PRECISION_TF32 ? CUDNN_DEFAULT_MATH
                                      : CUDNN_FMA_MATH;
}

static UnetStatus set_descriptors(UnetCudaBackend *cb, const UnetCudaConvShape *s, UnetPrecision p,
                                  const char *op)
{
    /* bf16 tensors with fp32 compute (cuDNN's "pseudo bf16" configuration) */
    cudnnDataType_t dt = p == UNET_PRECISION_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    UNET_CUDNN_TRY(cb, op, cudnnSetTensor4dDescriptor(cb->x_desc, CUDNN_TENSOR_NCHW, dt, s->n,
                                                      s->ci, s->h, s->w));
    UNET_CUDNN_TRY(cb, op, cudnnSetTensor4dDescriptor(cb->y_desc, CUDNN_TENSOR_NCHW, dt, s->n,
                                                      s->co, s->ho, s->wo));
    UNET_CUDNN_TRY(cb, op, cudnnSetFilter4dDescriptor(cb->w_desc, dt, CUDNN_TENSOR_NCHW, s->co,
                                                      s->ci, s->k, s->k));
    UNET_CUDNN_TRY(cb, op, cudnnSetConvolution2dDescriptor(cb->conv_desc, s->pad, s->pad,
                                                           s->stride, s->stride, 1, 1,
                                                           CUDNN_CROSS_CORRELATION,
                                                           CUDNN_DATA_FLOAT));
    UNET_CUDNN_TRY(cb, op, cudnnSetConvolutionMathType(cb->conv_desc, math_type(p)));
    int dims[4];
    UNET_CUDNN_TRY(cb, op, cudnnGetConvolution2dForwardOutputDim(cb->conv_desc, cb->x_desc,
                                                                 cb->w_desc, &dims[0], &dims[1],
                                                                 &dims[2], &dims[3]));
    if (dims[0] != s->n || dims[1] != s->co || dims[2] != s->ho || dims[3] != s->wo)
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                              "cuda %s: cuDNN computes output [%d,%d,%d,%d] for this convolution, "
                              "expected [%d,%d,%d,%d]",
                              op, dims[0], dims[1], dims[2], dims[3], s->n, s->co, s->ho, s->wo);
    return UNET_OK;
}

static UnetStatus ensure_workspace(UnetCudaBackend *cb, size_t bytes, const char *op)
{
    if (bytes <= cb->workspace_size)
        return UNET_OK;
    if (cb->capturing)
        return unet_cuda_capture_refuse(cb, op, "the cuDNN workspace would grow");
    unet_cuda_free(cb, cb->workspace);
    cb->workspace = NULL;
    cb->workspace_size = 0;
    UnetStatus st = unet_cuda_malloc(cb, &cb->workspace, bytes, op);
    if (st == UNET_OK)
        cb->workspace_size = bytes;
    return st;
}

/* Temporary workspace for measuring: the budget, or less when memory is
 * short (algorithms that do not fit are then not tried). */
static void *measure_workspace(UnetCudaBackend *cb, size_t *size)
{
    for (size_t bytes = cb->workspace_limit; bytes >= ((size_t)1 << 20); bytes /= 2) {
        void *p = NULL;
        if (unet_cuda_malloc(cb, &p, bytes, "measure") == UNET_OK) {
            *size = bytes;
            return p;
        }
        unet_error_clear(&cb->base.error);
    }
    *size = 0;
    return NULL;
}

/* Picks the fastest successful result within the budget; the perf structs
 * of the three directions share these leading fields. */
#define PICK_ALGO(perf, returned, out)                                               \
    do {                                                                             \
        for (int i_ = 0; i_ < (returned); i_++) {                                    \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS &&                         \
                (perf)[i_].memory <= cb->workspace_limit) {                          \
                (out)->algo = (int)(perf)[i_].algo;                                  \
                (out)->math = (out)->precision != UNET_PRECISION_FP32                \
                                  ? (perf)[i_].mathType                              \
                                  : CUDNN_FMA_MATH;                                  \
                (out)->workspace = (perf)[i_].memory;                                \
                found = 1;                                                           \
                break;                                                               \
            }                                                                        \
        }                                                                            \
    } while (0)

/* Runs cudnnFind*AlgorithmEx for one direction. Inputs are the real
 * tensors; the output goes to a temporary buffer so accumulating outputs
 * (dx, dw) keep their contents. */
static UnetStatus measure(UnetCudaBackend *cb, UnetCudaConvAlgo *a, const void *x,
                          const void *w, const void *y, const char *op)
{
    const UnetCudaConvShape *s = &a->shape;
    size_t out_count = a->dir == UNET_CUDA_CONV_FWD        ? (size_t)s->n * s->co * s->ho * s->wo
                       : a->dir == UNET_CUDA_CONV_BWD_DATA ? (size_t)s->n * s->ci * s->h * s->w
                                                           : (size_t)s->co * s->ci * s->k * s->k;
    void *out = NULL;
    UnetStatus st = unet_cuda_malloc(cb, &out, out_count * elem_size(a->precision), op);
    if (st != UNET_OK)
        return st;
    size_t ws_size = 0;
    void *ws = measure_workspace(cb, &ws_size);
    int returned = 0, found = 0;
    cudnnStatus_t cs;
    const char *call;
    enum { MAX_PERF = 16 };
    if (a->dir == UNET_CUDA_CONV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[MAX_PERF];
        call = "cudnnFindConvolutionForwardAlgorithmEx";
        cs = cudnnFindConvolutionForwardAlgorithmEx(cb->cudnn, cb->x_desc, x, cb->w_desc, w,
                                                    cb->conv_desc, cb->y_desc, out, MAX_PERF,
                                                    &returned, perf, ws, ws_size);
        if (cs == CUDNN_STATUS_SUCCESS)
            PICK_ALGO(perf, returned, a);
    } else if (a->dir == UNET_CUDA_CONV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_PERF];
        call = "cudnnFindConvolutionBackwardDataAlgorithmEx";
        cs = cudnnFindConvolutionBackwardDataAlgorithmEx(cb->cudnn, cb->w_desc, w, cb->y_desc, y,
                                                         cb->conv_desc, cb->x_desc, out, MAX_PERF,
                                                         &returned, perf, ws, ws_size);
        if (cs == CUDNN_STATUS_SUCCESS)
            PICK_ALGO(perf, returned, a);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_PERF];
        call = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
        cs = cudnnFindConvolutionBackwardFilterAlgorithmEx(cb->cudnn, cb->x_desc, x, cb->y_desc,
                                                           y, cb->conv_desc, cb->w_desc, out,
                                                           MAX_PERF, &returned, perf, ws,
                                                           ws_size);
        if (cs == CUDNN_STATUS_SUCCESS)
            PICK_ALGO(perf, returned, a);
    }
    unet_cuda_free(cb, ws);
    unet_cuda_free(cb, out);
    if (cs != CUDNN_STATUS_SUCCESS)
        return unet_cudnn_fail(cb, cs, op, call);
    if (!found)
        return unet_error_set(&cb->base.error, UNET_ERR_BACKEND,
                              "cuda %s: no cuDNN algorithm runs the convolution [%d,%d,%d,%d] -> "
                              "[%d,%d,%d,%d] (kernel %d, stride %d, pad %d) within the %zu MiB "
                              "workspace budget (UNET_CUDA_WORKSPACE_MB)",
                              op, s->n, s->ci, s->h, s->w, s->n, s->co, s->ho, s->wo, s->k,
                              s->stride, s->pad, cb->workspace_limit >> 20);
    return UNET_OK;
}

/* Sets the descriptors for shape s and returns its measured algorithm for
 * dir (measuring on first use), with the workspace ready. */
static UnetStatus prepare(UnetCudaBackend *cb, UnetCudaConvDir dir, const UnetCudaConvShape *s,
                          const void *x, const void *w, const void *y, const char *op,
                          const UnetCudaConvAlgo **out)
{
    const UnetPrecision p = conv_precision(cb);
    UnetStatus st = set_descriptors(cb, s, p, op);
    if (st != UNET_OK)
        return st;
    UnetCudaConvAlgo *a = NULL;
    for (size_t i = 0; i < cb->algo_count; i++)
        if (cb->algos[i].dir == dir && cb->algos[i].precision == p &&
            !memcmp(&cb->algos[i].shape, s, sizeof *s)) {
            a = &cb->algos[i];
            break;
        }
    if (!a) {
        if (cb->algo_count == cb->algo_cap) {
            size_t cap = cb->algo_cap ? 2 * cb->algo_cap : 32;
            UnetCudaConvAlgo *grown = realloc(cb->algos, cap * sizeof *grown);
            if (!grown)
                return unet_error_set(&cb->base.error, UNET_ERR_NOMEM,
                                      "cuda %s: out of host memory", op);
            cb->algos = grown;
            cb->algo_cap = cap;
        }
        if (cb->capturing)
            return unet_cuda_capture_refuse(cb, op, "a convolution shape has no measured "
                                                    "algorithm yet");
        UnetCudaConvAlgo fresh;
        memset(&fresh, 0, sizeof fresh);
        fresh.dir = dir;
        fresh.precision = p;
        fresh.shape = *s;
        st = measure(cb, &fresh, x, w, y, op);
        if (st != UNET_OK)
            return st;
        cb->algos[cb->algo_count] = fresh;
        a = &cb->algos[cb->algo_count++];
    }
    UNET_CUDNN_TRY(cb, op, cudnnSetConvolutionMathType(cb->conv_desc, a->math));
    st = ensure_workspace(cb, a->workspace, op);
    if (st != UNET_OK)
        return st;
    *out = a;
    return UNET_OK;
}

/* ---- BF16 operands ------------------------------------------------------ */

/* Element counts of the three tensors of shape s: x-space, y-space, filter. */
static size_t count_x(const UnetCudaConvShape *s)
{
    return (size_t)s->n * s->ci * s->h * s->w;
}

static size_t count_y(const UnetCudaConvShape *s)
{
    return (size_t)s->n * s->co * s->ho * s->wo;
}

static size_t count_w(const UnetCudaConvShape *s)
{
    return (size_t)s->co * s->ci * s->k * s->k;
}

/* 256-byte steps, so each part of the scratch is as aligned as a fresh
 * allocation for cuDNN's vector loads. */
static size_t bf16_round(size_t count)
{
    return (count + 127) & ~(size_t)127;
}

/* The bf16 copies of a pass's two inputs (a: count_a values converted from
 * src_a, likewise b) and room for its bf16 output, in cb->bf16. */
static UnetStatus bf16_operands(UnetCudaBackend *cb, const float *src_a, size_t count_a,
                                const float *src_b, size_t count_b, size_t count_out,
                                uint16_t **a, uint16_t **b, uint16_t **out, const char *op)
{
    size_t need = bf16_round(count_a) + bf16_round(count_b) + bf16_round(count_out);
    if (need > cb->bf16_count) {
        unet_cuda_free(cb, cb->bf16);
        cb->bf16 = NULL;
        cb->bf16_count = 0;
        UnetStatus st = unet_cuda_malloc(cb, (void **)&cb->bf16, need * sizeof(uint16_t), op);
        if (st != UNET_OK)
            return st;
        cb->bf16_count = need;
    }
    *a = cb->bf16;
    *b = *a + bf16_round(count_a);
    *out = *b + bf16_round(count_b);
    UNET_CUDA_LAUNCH(cb, op, unet_float_to_bf16_cuda(cb->stream, *a, src_a, count_a));
    UNET_CUDA_LAUNCH(cb, op, unet_float_to_bf16_cuda(cb->stream, *b, src_b, count_b));
    return UNET_OK;
}

/* ---- the three cuDNN passes ---------------------------------------------- */

/* One pass: FWD y = conv(x, w) (+ y when beta is 1), BWD_DATA dx =
 * conv^T(dy, w) (+ dx), BWD_FILTER dw (+)= correlation of x with dy (beta
 * 1: added). in_a and in_b are the pass's inputs in the order of `roles`.
 * In BF16 precision cuDNN writes a bf16 result (beta 0) that is then written
 * or added in fp32. */
static UnetStatus run_pass(UnetCudaBackend *cb, UnetCudaConvDir dir, const UnetCudaConvShape *s,
                           float *out, const float *in_a, const float *in_b, float beta,
                           const char *op)
{
    /* Tensor roles of in_a, in_b and out per direction: 0 x, 1 w, 2 y. */
    static const int roles[3][3] = { { 0, 1, 2 }, { 2, 1, 0 }, { 0, 2, 1 } };
    const int *r = roles[dir];
    const size_t count[3] = { count_x(s), count_w(s), count_y(s) };
    const void *t[3]; /* x, w, y as cuDNN gets them; the output's slot stays NULL */
    t[r[0]] = in_a;
    t[r[1]] = in_b;
    t[r[2]] = NULL;
    void *outp = out;
    float b = beta;
    uint16_t *ab = NULL, *bb = NULL, *ob = NULL;
    UnetStatus st;
    if (conv_precision(cb) == UNET_PRECISION_BF16) {
        st = bf16_operands(cb, in_a, count[r[0]], in_b, count[r[1]], count[r[2]], &ab, &bb, &ob,
                           op);
        if (st != UNET_OK)
            return st;
        t[r[0]] = ab;
        t[r[1]] = bb;
        outp = ob;
        b = 0.0f;
    }
    const UnetCudaConvAlgo *a = NULL;
    st = prepare(cb, dir, s, t[0], t[1], t[2], op, &a);
    if (st != UNET_OK)
        return st;
    const float one = 1.0f;
    if (dir == UNET_CUDA_CONV_FWD)
        UNET_CUDNN_TRY(cb, op, cudnnConvolutionForward(cb->cudnn, &one, cb->x_desc, t[0],
                                                       cb->w_desc, t[1], cb->conv_desc,
                                                       (cudnnConvolutionFwdAlgo_t)a->algo,
                                                       cb->workspace, a->workspace, &b,
                                                       cb->y_desc, outp));
    else if (dir == UNET_CUDA_CONV_BWD_DATA)
        UNET_CUDNN_TRY(cb, op, cudnnConvolutionBackwardData(cb->cudnn, &one, cb->w_desc, t[1],
                                                            cb->y_desc, t[2], cb->conv_desc,
                                                            (cudnnConvolutionBwdDataAlgo_t)a->algo,
                                                            cb->workspace, a->workspace, &b,
                                                            cb->x_desc, outp));
    else
        UNET_CUDNN_TRY(cb, op, cudnnConvolutionBackwardFilter(
                                   cb->cudnn, &one, cb->x_desc, t[0], cb->y_desc, t[2],
                                   cb->conv_desc, (cudnnConvolutionBwdFilterAlgo_t)a->algo,
                                   cb->workspace, a->workspace, &b, cb->w_desc, outp));
    if (ob)
        UNET_CUDA_LAUNCH(cb, op, unet_bf16_to_float_cuda(cb->stream, out, ob, count[r[2]],
                                                         beta != 0.0f));
    return UNET_OK;
}

static UnetStatus bias_grad(UnetCudaBackend *cb, UnetTensor *db, const UnetTensor *dy,
                            const char *op)
{
    size_t hw = (size_t)dy->h * dy->w;
    int chunks = unet_cuda_chunks((size_t)dy->n * hw, (size_t)dy->c, cb->sm_count);
    double *scratch;
    UnetStatus st = unet_cuda_scratch(cb, unet_bias_grad_scratch(dy->c, chunks), op, &scratch);
    if (st != UNET_OK)
        return st;
    UNET_CUDA_LAUNCH(cb, op, unet_bias_grad_cuda(cb->stream, db->data, dy->data, dy->n, dy->c, hw,
                                                 chunks, scratch));
    return UNET_OK;
}

/* ---- conv2d ------------------------------------------------------------ */

static UnetStatus conv_shape(UnetCudaBackend *cb, UnetCudaConvShape *s, const UnetTensor *x,
                             const UnetTensor *w, const UnetConvDesc *d, const char *op)
{
    UnetStatus st;
    if ((st = unet_cuda_check_tensor(cb, op, "x", x)) != UNET_OK ||
        (st = unet_cuda_check_tensor(cb, op, "w", w)) != UNET_OK)
        return st;
    if (!d || d->kernel < 1 || d->stride < 1 || d->pad < 0)
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                              "cuda %s: invalid convolution (kernel %d, stride %d, pad %d)", op,
                              d ? d->kernel : 0, d ? d->stride : 0, d ? d->pad : 0);
    memset(s, 0, sizeof *s);
    s->n = x->n;
    s->ci = x->c;
    s->h = x->h;
    s->w = x->w;
    s->co = w->n;
    s->k = d->kernel;
    s->stride = d->stride;
    s->pad = d->pad;
    s->ho = unet_conv_out_size(x->h, d);
    s->wo = unet_conv_out_size(x->w, d);
    if (s->ho < 1 || s->wo < 1)
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                              "cuda %s: input %dx%d is too small for a %dx%d kernel with pad %d",
                              op, x->h, x->w, d->kernel, d->kernel, d->pad);
    return unet_cuda_check_shape(cb, op, "w", w, s->co, s->ci, s->k, s->k);
}

static UnetStatus cuda_conv2d_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                      const UnetTensor *w, const UnetTensor *b,
                                      const UnetConvDesc *d)
{
    const char *op = "conv2d_forward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    UnetCudaConvShape s;
    UnetStatus st = conv_shape(cb, &s, x, w, d, op);
    if (st == UNET_OK)
        st = unet_cuda_check_shape(cb, op, "y", y, s.n, s.co, s.ho, s.wo);
    if (st == UNET_OK && b)
        st = unet_cuda_check_count(cb, op, "b", b, (size_t)s.co);
    if (st == UNET_OK)
        st = run_pass(cb, UNET_CUDA_CONV_FWD, &s, y->data, x->data, w->data, 0.0f, op);
    if (st != UNET_OK)
        return st;
    if (b)
        UNET_CUDA_LAUNCH(cb, op, unet_bias_add_cuda(cb->stream, y->data, b->data, s.n, s.co,
                                                    (size_t)s.ho * s.wo));
    return UNET_OK;
}

static UnetStatus cuda_conv2d_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                       UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                                       const UnetTensor *w, const UnetConvDesc *d, int accumulate)
{
    const char *op = "conv2d_backward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    UnetCudaConvShape s;
    UnetStatus st = conv_shape(cb, &s, x, w, d, op);
    if (st == UNET_OK)
        st = unet_cuda_check_shape(cb, op, "dy", dy, s.n, s.co, s.ho, s.wo);
    if (st == UNET_OK)
        st = unet_cuda_check_shape(cb, op, "dw", dw, s.co, s.ci, s.k, s.k);
    if (st == UNET_OK && dx)
        st = unet_cuda_check_shape(cb, op, "dx", dx, s.n, s.ci, s.h, s.w);
    if (st == UNET_OK && db)
        st = unet_cuda_check_count(cb, op, "db", db, (size_t)s.co);
    if (st == UNET_OK && dx)
        st = run_pass(cb, UNET_CUDA_CONV_BWD_DATA, &s, dx->data, dy->data, w->data,
                         accumulate ? 1.0f : 0.0f, op);
    if (st == UNET_OK)
        st = run_pass(cb, UNET_CUDA_CONV_BWD_FILTER, &s, dw->data, x->data, dy->data, 1.0f, op);
    if (st == UNET_OK && db)
        st = bias_grad(cb, db, dy, op);
    return st;
}

/* ---- 2x2 stride-2 transposed convolution ------------------------------- */

/* The convolution that upconv(x[n,ci,h,w], w[ci,co,2,2]) -> y[n,co,2h,2w]
 * transposes: from y's space [n,co,2h,2w] to x's [n,ci,h,w], filter
 * [ci,co,2,2] (ConvTranspose2d's weight layout is that filter). */
static UnetStatus upconv_shape(UnetCudaBackend *cb, UnetCudaConvShape *s, const UnetTensor *x,
                               const UnetTensor *w, const char *op)
{
    UnetStatus st;
    if ((st = unet_cuda_check_tensor(cb, op, "x", x)) != UNET_OK ||
        (st = unet_cuda_check_tensor(cb, op, "w", w)) != UNET_OK)
        return st;
    memset(s, 0, sizeof *s);
    s->n = x->n;
    s->ci = w->c; /* transposed conv's output channels */
    s->h = 2 * x->h;
    s->w = 2 * x->w;
    s->co = x->c;
    s->ho = x->h;
    s->wo = x->w;
    s->k = 2;
    s->stride = 2;
    s->pad = 0;
    return unet_cuda_check_shape(cb, op, "w", w, x->c, w->c, 2, 2);
}

static UnetStatus cuda_upconv2x2_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                         const UnetTensor *w, const UnetTensor *b)
{
    const char *op = "upconv2x2_forward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    UnetCudaConvShape s;
    UnetStatus st = upconv_shape(cb, &s, x, w, op);
    if (st == UNET_OK)
        st = unet_cuda_check_shape(cb, op, "y", y, s.n, s.ci, s.h, s.w);
    if (st == UNET_OK && b)
        st = unet_cuda_check_count(cb, op, "b", b, (size_t)s.ci);
    if (st == UNET_OK)
        st = run_pass(cb, UNET_CUDA_CONV_BWD_DATA, &s, y->data, x->data, w->data, 0.0f, op);
    if (st != UNET_OK)
        return st;
    if (b)
        UNET_CUDA_LAUNCH(cb, op, unet_bias_add_cuda(cb->stream, y->data, b->data, s.n, s.ci,
                                                    (size_t)s.h * s.w));
    return UNET_OK;
}

static UnetStatus cuda_upconv2x2_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                          UnetTensor *db, const UnetTensor *dy,
                                          const UnetTensor *x, const UnetTensor *w, int accumulate)
{
    const char *op = "upconv2x2_backward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    UnetCudaConvShape s;
    UnetStatus st = upconv_shape(cb, &s, x, w, op);
    if (st == UNET_OK)
        st = unet_cuda_check_shape(cb, op, "dy", dy, s.n, s.ci, s.h, s.w);
    if (st == UNET_OK)
        st = unet_cuda_check_shape(cb, op, "dw", dw, s.co, s.ci, 2, 2);
    if (st == UNET_OK && dx)
        st = unet_cuda_check_shape(cb, op, "dx", dx, s.n, s.co, s.ho, s.wo);
    if (st == UNET_OK && db)
        st = unet_cuda_check_count(cb, op, "db", db, (size_t)s.ci);
    if (st == UNET_OK && dx)
        st = run_pass(cb, UNET_CUDA_CONV_FWD, &s, dx->data, dy->data, w->data,
                         accumulate ? 1.0f : 0.0f, op);
    if (st == UNET_OK)
        st = run_pass(cb, UNET_CUDA_CONV_BWD_FILTER, &s, dw->data, dy->data, x->data, 1.0f, op);
    if (st == UNET_OK && db)
        st = bias_grad(cb, db, dy, op);
    return st;
}

static UnetStatus cuda_set_precision(UnetBackend *be, UnetPrecision p)
{
    if (p != UNET_PRECISION_FP32 && p != UNET_PRECISION_TF32 && p != UNET_PRECISION_BF16)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda set_precision: precision %d is not fp32, tf32 or bf16", (int)p);
    /* measured algorithms are kept per precision; nothing else changes */
    be->precision = p;
    return UNET_OK;
}

void unet_cuda_conv_install(UnetBackend *be)
{
    be->set_precision = cuda_set_precision;
    be->conv2d_forward = cuda_conv2d_forward;
    be->conv2d_backward = cuda_conv2d_backward;
    be->upconv2x2_forward = cuda_upconv2x2_forward;
    be->upconv2x2_backward = cuda_upconv2x2_backward;
}
