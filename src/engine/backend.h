/* backend.h - the compute backend interface every model, loss and optimizer is
 * written against.
 *
 * A backend is a struct of function pointers filled once (reference CPU, fast
 * CPU, CUDA). The model code calls only these; backends differ only in how each
 * op is computed. Conventions, as in llm.c:
 *   - arguments: outputs first, then inputs, then weights, then descriptors;
 *   - tensors are NCHW float32 as far as callers can see. A backend may keep an
 *     activation tensor in a private layout (tensor->layout != 0); upload and
 *     download convert at the edges. Tensors made with tensor_view over a
 *     buffer (parameters, gradients, optimizer state) are always plain NCHW /
 *     PyTorch layout so the arenas are flat and checkpoints are slice walks;
 *   - backward ops ADD into parameter gradients (dw, db, dgamma, dbeta), so
 *     gradient accumulation over samples is free and zero_grad is one fill;
 *   - backward ops write input gradients (dx): overwrite when accumulate == 0,
 *     add when accumulate != 0 (the U-Net skip joins two gradient paths);
 *   - every op returns UNET_OK or a status with be->error filled (shape
 *     mismatch, device failure). Ops never exit. */
#ifndef UNET_BACKEND_H
#define UNET_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct UnetBackend UnetBackend;

/* A captured piece of work a backend can replay (CUDA Graphs); opaque. */
typedef struct UnetBackendGraph UnetBackendGraph;

/* Non-blocking reads (read_begin/read_end): slots and floats per slot. */
#define UNET_BACKEND_READ_SLOTS 4
#define UNET_BACKEND_READ_MAX 16

/* Activation, parameter or gradient tensor living in backend memory. */
typedef struct UnetTensor {
    int n, c, h, w;
    float *data;     /* backend memory (host for CPU backends, device for CUDA) */
    int layout;      /* 0: plain NCHW; other values are private to the backend */
    int is_view;     /* 1: data points into a buffer this tensor does not own */
    void *priv;      /* backend-private per-tensor state, NULL when unused */
} UnetTensor;

static inline size_t unet_tensor_numel(const UnetTensor *t)
{
    return (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

typedef enum UnetActivation {
    UNET_ACT_RELU = 0,
    UNET_ACT_LEAKY = 1, /* negative slope given separately, PyTorch default 0.01 */
} UnetActivation;

typedef struct UnetConvDesc {
    int kernel;  /* square kernel: 1 or 3 */
    int stride;  /* 1 or 2 */
    int pad;     /* zero padding on every side: 0 (valid) or kernel/2 (same) */
} UnetConvDesc;

/* Output size of a convolution along one axis (PyTorch's floor formula). */
static inline int unet_conv_out_size(int in, const UnetConvDesc *d)
{
    return (in + 2 * d->pad - d->kernel) / d->stride + 1;
}

typedef struct UnetOptimizerStep {
    float lr;
    float momentum;      /* SGD */
    int nesterov;        /* SGD */
    float weight_decay;  /* SGD, Adam: L2 added to the gradient; AdamW: decoupled */
    int decoupled_decay; /* 1 for AdamW */
    float beta1, beta2, eps; /* Adam */
    int64_t step;        /* Adam: 1-based step count for bias correction */
} UnetOptimizerStep;

typedef enum UnetLossKind {
    UNET_LOSS_BCE = 0,     /* one class, logits [N,1,H,W], target 0/1 */
    UNET_LOSS_SOFTMAX_CE,  /* K classes, logits [N,K,H,W], target class ids */
    UNET_LOSS_DICE,        /* soft Dice on sigmoid (1 class) or softmax (K) probabilities */
} UnetLossKind;

/* Arithmetic of the convolutions (forward, backward-data, backward-filter,
 * up-convolution). Every other op is fp32 on every backend, and parameters,
 * gradients and optimizer state stay fp32 in every mode (the master weights).
 *   FP32: full fp32 (cuDNN without tensor cores).
 *   TF32: TF32 tensor cores allowed (CUDA on Ampere and newer; the CUDA
 *         default). The CPU backends have no TF32: there it means FP32.
 *   BF16: inputs rounded to bfloat16, products accumulated in fp32, the
 *         result rounded to bf16 and written (or added) as fp32. CUDA only. */
typedef enum UnetPrecision {
    UNET_PRECISION_FP32 = 0,
    UNET_PRECISION_TF32 = 1,
    UNET_PRECISION_BF16 = 2,
} UnetPrecision;

struct UnetBackend {
    const char *name;      /* "reference", "cpu", "cuda" */
    UnetError error;       /* filled by a failing op */
    void *impl;            /* backend-private state */

    void (*destroy)(UnetBackend *be);

    /* Precision in effect (CPU backends: always FP32). Change it only with
     * unet_backend_set_precision; set_precision is NULL on backends that
     * compute fp32 only. */
    UnetPrecision precision;
    UnetStatus (*set_precision)(UnetBackend *be, UnetPrecision p);

    /* ---- memory -------------------------------------------------------- */
    /* Flat buffer of count floats in backend memory (parameter, gradient and
     * optimizer arenas). Returns NULL and fills be->error on failure. */
    float *(*buffer_alloc)(UnetBackend *be, size_t count);
    void (*buffer_free)(UnetBackend *be, float *buf);
    UnetStatus (*buffer_fill)(UnetBackend *be, float *buf, size_t count, float value);
    UnetStatus (*buffer_upload)(UnetBackend *be, float *dst, const float *host_src, size_t count);
    UnetStatus (*buffer_download)(UnetBackend *be, float *host_dst, const float *src, size_t count);

    /* Activation tensor owned by the backend, contents undefined. */
    UnetStatus (*tensor_init)(UnetBackend *be, UnetTensor *t, int n, int c, int h, int w);
    /* Plain-layout view of count = n*c*h*w floats at buf (no ownership). */
    void (*tensor_view)(UnetBackend *be, UnetTensor *t, float *buf, int n, int c, int h, int w);
    void (*tensor_release)(UnetBackend *be, UnetTensor *t); /* frees if owned; zeroes *t */
    UnetStatus (*tensor_upload)(UnetBackend *be, UnetTensor *t, const float *host_nchw);
    UnetStatus (*tensor_download)(UnetBackend *be, float *host_nchw, const UnetTensor *t);
    UnetStatus (*tensor_fill)(UnetBackend *be, UnetTensor *t, float value);

    /* Waits for queued work (no-op on CPU backends). */
    UnetStatus (*synchronize)(UnetBackend *be);

    /* ---- convolutions -------------------------------------------------- */
    /* y[N,Co,Ho,Wo] = conv(x[N,Ci,H,W], w[Co,Ci,k,k]) + b[Co]; b may be NULL. */
    UnetStatus (*conv2d_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                 const UnetTensor *w, const UnetTensor *b, const UnetConvDesc *d);
    /* dx may be NULL (first layer); db may be NULL (no bias). Adds into dw, db. */
    UnetStatus (*conv2d_backward)(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                                  const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                                  const UnetConvDesc *d, int accumulate);

    /* 2x2 stride-2 transposed convolution ("up-convolution"):
     * y[N,Co,2H,2W] from x[N,Ci,H,W], w[Ci,Co,2,2] (PyTorch ConvTranspose2d layout), b[Co]. */
    UnetStatus (*upconv2x2_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                    const UnetTensor *w, const UnetTensor *b);
    UnetStatus (*upconv2x2_backward)(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                                     const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                                     int accumulate);

    /* ---- pooling, resampling, skip ------------------------------------- */
    /* 2x2 max pooling, stride 2, floor(H/2) x floor(W/2) output. */
    UnetStatus (*maxpool2x2_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x);
    /* Gradient goes to the first maximum of each window (PyTorch's tie rule). */
    UnetStatus (*maxpool2x2_backward)(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                      const UnetTensor *x, const UnetTensor *y, int accumulate);

    /* Bilinear x2, F.interpolate(scale_factor=2, mode='bilinear', align_corners=False). */
    UnetStatus (*upsample2x_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x);
    UnetStatus (*upsample2x_backward)(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy, int accumulate);

    /* Bilinear resize to y's H x W (same align_corners=False semantics); the
     * fcn baseline uses it to return to the input size. */
    UnetStatus (*resize_bilinear_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x);
    UnetStatus (*resize_bilinear_backward)(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy, int accumulate);

    /* y[N, Cs+Cu, H, W] = concat(centre_crop(skip[N,Cs,Hs,Ws], H, W), up[N,Cu,H,W]).
     * With Hs == H, Ws == W this is a plain channel concatenation. */
    UnetStatus (*crop_concat_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *skip,
                                      const UnetTensor *up);
    /* Splits dy back: dskip gets the centre region (zero outside it when not
     * accumulating), dup the rest. Either output may be NULL. */
    UnetStatus (*crop_concat_backward)(UnetBackend *be, UnetTensor *dskip, UnetTensor *dup,
                                       const UnetTensor *dy, int accumulate_skip, int accumulate_up);

    /* ---- activations --------------------------------------------------- */
    /* y = act(x); y == x (in place) is allowed. */
    UnetStatus (*activation_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                     UnetActivation act, float slope);
    /* dx = dy * act'(.) computed from the output y (valid for relu/leaky with
     * slope > 0); dx == dy is allowed when not accumulating. */
    UnetStatus (*activation_backward)(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                      const UnetTensor *y, UnetActivation act, float slope,
                                      int accumulate);
    /* Inference heads: sigmoid elementwise, softmax over channels. */
    UnetStatus (*sigmoid_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x);
    UnetStatus (*softmax_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x);

    /* ---- normalisation ------------------------------------------------- */
    /* Batch norm over (N,H,W) per channel. training != 0: normalise with the
     * batch statistics (biased variance), store mean and 1/sqrt(var+eps) in
     * save_mean/save_invstd [C], update running stats with momentum using the
     * unbiased variance (PyTorch). training == 0: use running stats. */
    UnetStatus (*batchnorm_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                    const UnetTensor *gamma, const UnetTensor *beta,
                                    UnetTensor *running_mean, UnetTensor *running_var,
                                    UnetTensor *save_mean, UnetTensor *save_invstd,
                                    float momentum, float eps, int training);
    UnetStatus (*batchnorm_backward)(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                     UnetTensor *dbeta, const UnetTensor *dy, const UnetTensor *x,
                                     const UnetTensor *gamma, const UnetTensor *save_mean,
                                     const UnetTensor *save_invstd, int accumulate);
    /* Instance norm over (H,W) per image and channel, always batch statistics;
     * gamma/beta [C] may be NULL (PyTorch InstanceNorm2d affine=False);
     * save_mean/save_invstd hold N*C values (tensor [N,C,1,1]). */
    UnetStatus (*instancenorm_forward)(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                       const UnetTensor *gamma, const UnetTensor *beta,
                                       UnetTensor *save_mean, UnetTensor *save_invstd, float eps);
    UnetStatus (*instancenorm_backward)(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                        UnetTensor *dbeta, const UnetTensor *dy, const UnetTensor *x,
                                        const UnetTensor *gamma, const UnetTensor *save_mean,
                                        const UnetTensor *save_invstd, int accumulate);

    /* ---- losses -------------------------------------------------------- */
    /* Pixel-weighted loss: per image sum(w * loss) / sum(w), then mean over
     * the batch. target: [N,1,H,W] (0/1 for BCE, class ids for softmax CE and
     * for Dice with K > 1). weight: [N,1,H,W] or NULL (all ones).
     * class_weight: K floats on the host or NULL (softmax CE only).
     * Writes the scalar into loss (a [1,1,1,1] tensor, read with
     * tensor_download when reporting) and, when dlogits != NULL, the gradient
     * of that scalar times grad_scale (1/accumulation steps).
     * Exact definitions (the reference backend is the spec):
     *   BCE: l = BCEWithLogits(x, t) per pixel.
     *   softmax CE: l = class_weight[t] * (logsumexp(x) - x[t]) per pixel
     *     (PyTorch's weighted CE before reduction); the per-image reduction
     *     still divides by sum(w), not by sum(w * class_weight[t]).
     *   An image whose pixel weights sum to 0 contributes 0 to the batch mean.
     *   Dice: p = sigmoid(x) (K == 1, target in [0,1]) or softmax(x) with a
     *     one-hot target (K > 1, every class including background); per image
     *     and class I = sum w*p*t, P = sum w*p, T = sum w*t and
     *     dice = 1 - (2I + s) / (P + T + s) with smoothing s = UNET_DICE_SMOOTH
     *     = 1 (kernels.h); the loss is the mean over images and classes (pixel
     *     weights enter the sums instead of the sum(w) reduction).
     *   class_weight is ignored by BCE and Dice. Softmax CE and K > 1 Dice
     *   refuse target values that are not class ids 0..K-1. */
    UnetStatus (*loss_forward_backward)(UnetBackend *be, UnetTensor *loss, UnetTensor *dlogits,
                                        const UnetTensor *logits, const UnetTensor *target,
                                        const UnetTensor *weight, const float *class_weight,
                                        UnetLossKind kind, float grad_scale);

    /* ---- optimizers: one pass over a whole arena ------------------------ */
    /* SGD with momentum (PyTorch semantics: buf = m*buf + g; nesterov: g + m*buf). */
    UnetStatus (*sgd_update)(UnetBackend *be, float *param, const float *grad, float *momentum_buf,
                             size_t count, const UnetOptimizerStep *s);
    /* Adam / AdamW (PyTorch semantics, bias-corrected). */
    UnetStatus (*adam_update)(UnetBackend *be, float *param, const float *grad, float *m, float *v,
                              size_t count, const UnetOptimizerStep *s);

    /* ---- execution: overlap, graphs, replicas --------------------------- */
    /* Non-blocking read of a small tensor (the loss): read_begin queues a
     * copy of t (at most UNET_BACKEND_READ_MAX floats) into slot (0 ..
     * UNET_BACKEND_READ_SLOTS-1) behind the work already queued and returns
     * at once; read_end waits for that copy only and writes count floats to
     * host. Work queued after read_begin may run while the host waits, so a
     * caller can queue step N+1 before reading step N's loss. read_end also
     * reports an error a kernel found before the copy (a bad class id). NULL
     * in both: use tensor_download. CPU backends copy at read_begin
     * (unet_backend_host_read_begin/end below). */
    UnetStatus (*read_begin)(UnetBackend *be, int slot, const UnetTensor *t);
    UnetStatus (*read_end)(UnetBackend *be, int slot, float *host, size_t count);

    /* Graph capture (NULL: not available). Between graph_begin and graph_end
     * the calling thread's ops are recorded, not run; graph_end ends the
     * capture in every case and gives a graph that graph_launch replays with
     * the same tensors (same addresses, same shapes, same scalars) and
     * graph_free frees. An op that cannot be recorded (one that would
     * allocate scratch, measure an algorithm, upload or synchronise) fails
     * with UNET_ERR_UNSUPPORTED naming the reason; graph_end then fails too
     * and the caller runs the work uncaptured. Memory allocated and released
     * inside the capture belongs to the graph. graph_launch fails with
     * UNET_ERR_UNSUPPORTED when memory the graph may use was freed since the
     * capture (a different input shape, validation, workspace growth): free
     * the graph, run the work uncaptured and capture again. */
    UnetStatus (*graph_begin)(UnetBackend *be);
    UnetStatus (*graph_end)(UnetBackend *be, UnetBackendGraph **out);
    UnetStatus (*graph_launch)(UnetBackend *be, UnetBackendGraph *g);
    void (*graph_free)(UnetBackend *be, UnetBackendGraph *g);

    /* Data-parallel hook (NULL: a single device). Called by the optimizer
     * (optim.c) once per update, after the last backward of the step (all
     * accumulated micro-batches) and before the update kernel, with the
     * whole gradient arena. A multi-GPU backend (one UnetBackend per replica,
     * each running the same model code on its share of the batch) must
     * replace grad_arena on every replica by the MEAN over replicas (each
     * replica's arena is already a mean over its micro-batches; the loss
     * scale stays 1/accumulate), ordered on the compute stream after the
     * backward and before the update (ncclAllReduce with ncclSum then a
     * 1/replicas scale, or ncclAvg, on that stream), without a host wait.
     * Model, loss and optimizer code need no change. */
    UnetStatus (*gradient_allreduce)(UnetBackend *be, float *grad_arena, size_t count);

    /* Host slots of the CPU backends' read_begin (unet_backend_host_read_*). */
    float read_host[UNET_BACKEND_READ_SLOTS][UNET_BACKEND_READ_MAX];
};

/* read_begin/read_end for backends whose memory is the host's: read_begin
 * copies (tensor_download) into be->read_host[slot]. */
UnetStatus unet_backend_host_read_begin(UnetBackend *be, int slot, const UnetTensor *t);
UnetStatus unet_backend_host_read_end(UnetBackend *be, int slot, float *host, size_t count);

/* Backends available in this build. Each returns NULL and fills err when it
 * cannot start (the CUDA one names the reason: no driver, no device). */
UnetBackend *unet_backend_reference_new(UnetError *err);
UnetBackend *unet_backend_cpu_new(int threads, UnetError *err);
UnetBackend *unet_backend_cuda_new(int device_index, UnetError *err);

/* "auto" | "cpu" | "reference" | "cuda". auto tries CUDA then CPU and, when it
 * falls back, writes why into *note (may be NULL). */
UnetBackend *unet_backend_open(const char *device, int threads, char *note, size_t note_size,
                               UnetError *err);

/* "fp32", "tf32", "bf16". */
const char *unet_precision_name(UnetPrecision p);
UnetStatus unet_precision_parse(const char *s, UnetPrecision *out, UnetError *err);
/* Applies p to the backend. Backends without set_precision accept FP32 and
 * TF32 (both fp32 there) and refuse BF16 with UNET_ERR_UNSUPPORTED ("bf16
 * needs the CUDA backend; ..."). */
UnetStatus unet_backend_set_precision(UnetBackend *be, UnetPrecision p, UnetError *err);

static inline void unet_backend_destroy(UnetBackend *be)
{
    if (be)
        be->destroy(be);
}

#endif
