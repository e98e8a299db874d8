/* model.h - the segmentation networks (unet, light, fcn), written once against
 * the backend interface: parameters, initialisation, geometry, forward and
 * backward passes, and the layer summary behind `unet info`.
 *
 * Parameter names follow the PyTorch state_dict of the modules in
 * tests/torch_models.py, in state_dict order ({i}: level, 0 = outermost for the
 * encoder, 0 = deepest, i.e. first applied, for the decoder):
 *
 *   unet   encoder.blocks.{i}.conv_1.weight [C,Cin,3,3]   .bias [C] (no norm only)
 *          encoder.blocks.{i}.norm_1.weight [C]           .bias [C] (batch/instance norm)
 *          encoder.blocks.{i}.conv_2.* , encoder.blocks.{i}.norm_2.*
 *          decoder.upconvs.{i}.weight   transpose: ConvTranspose2d [C,C/2,2,2]
 *                                       bilinear:  Conv2d 1x1 [C/2,C,1,1] applied after
 *                                                  bilinear x2 upsampling
 *          decoder.upconvs.{i}.bias [C/2]
 *          decoder.blocks.{i}.conv_1.* [C/2,C,3,3], norm_1.*, conv_2.*, norm_2.*
 *          head.weight [classes,base,1,1], head.bias [classes]
 *          Convolutions carry a bias only without a norm (the norm's shift makes
 *          it redundant); norms are affine. Batch norm buffers (second table):
 *          ...norm_{1,2}.running_mean [C], ...norm_{1,2}.running_var [C]; PyTorch's
 *          per-norm num_batches_tracked is one count for the whole model.
 *   light  encoder.blocks.{i}.conv.weight|bias  3x3, width base*2^i, stride 1
 *                                               for i = 0 and 2 otherwise
 *          decoder.blocks.{i}.conv.weight|bias  3x3 over concat(skip, bilinear x2)
 *          head.weight|bias                     1x1
 *          every conv is followed by non-affine instance norm and the activation.
 *   fcn    blocks.{i}.conv.weight|bias  3x3, widths base, 2 base, 4 base, 4 base,
 *                                       strides 2, 2, 1, 1, each with non-affine
 *                                       instance norm and the activation
 *          head.weight|bias             3x3 classifier; logits are resized
 *                                       bilinearly to the input size.
 *
 * light uses cfg->depth as its number of levels; fcn has a fixed depth of four
 * groups. Both always use same padding, instance norm and bilinear upsampling.
 *
 * Memory: a training forward keeps only what the backward pass reads: the
 * post-activation output of a plain conv, only the pre-norm output of a
 * normalised one (norm and activation are rebuilt from it). Pooling,
 * concatenation and upsampling outputs and the first convolution are
 * recomputed during backward, gradients are allocated when first written,
 * and every tensor is released after its last use; the geometry, the norm
 * statistics and the logits stay cached per input shape. The input x given
 * to a training forward must therefore stay unchanged until
 * unet_model_backward returns. */
#ifndef UNET_MODEL_H
#define UNET_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "error.h"
#include "model-config.h"
#include "params.h"

typedef struct UnetModel UnetModel;

/* Batch norm settings (PyTorch defaults); instance norm uses the same eps. */
#define UNET_BN_MOMENTUM 0.1f
#define UNET_NORM_EPS 1e-5f

/* Builds the network for cfg on be and initialises it (He normal from
 * cfg->seed). With be == NULL the model is a description only: tables,
 * geometry and summary work, arenas are NULL and forward fails. */
UnetModel *unet_model_new(const UnetModelConfig *cfg, UnetBackend *be, UnetError *err);
/* What to say after an out-of-memory status from the backend: activation
 * memory grows with batch x tile area x base channels. */
#define UNET_MEMORY_ADVICE \
    "lower the batch size or the tile size (--batch, --tile), or the model's --base"

void unet_model_free(UnetModel *m);

const UnetModelConfig *unet_model_config(const UnetModel *m);
UnetBackend *unet_model_backend(const UnetModel *m);

/* ---- parameters ---------------------------------------------------------- */
/* Trainable parameters (one arena; gradients share the layout). */
const UnetParamTable *unet_model_params(const UnetModel *m);
/* Non-trainable buffers (batch norm running mean/var); len 0 otherwise. */
const UnetParamTable *unet_model_buffers(const UnetModel *m);
size_t unet_model_param_count(const UnetModel *m);

/* Backend memory (buffer_alloc); NULL for a description-only model and for an
 * empty buffer table. */
float *unet_model_param_arena(UnetModel *m);
float *unet_model_grad_arena(UnetModel *m);
float *unet_model_buffer_arena(UnetModel *m);
UnetStatus unet_model_zero_grad(UnetModel *m, UnetError *err);

/* He normal (std sqrt(2 / fan_in), fan_in = k*k*C_in for convolutions and C_in
 * for the 2x2 stride-2 up-convolution whose taps do not overlap), biases 0,
 * norm weight 1 / bias 0, running mean 0 / var 1, batch count 0. The RNG is
 * our own (splitmix64 per slice, seeded by seed and the slice name, Marsaglia
 * polar normals with a series logarithm) so every machine draws the same
 * values. Initialises on the host and uploads. */
UnetStatus unet_model_init_params(UnetModel *m, uint64_t seed, UnetError *err);
/* The same values on the host: fills params (param_count floats) and buffers
 * (buffer table total, may be NULL) without a backend. */
UnetStatus unet_model_init_host(const UnetModel *m, uint64_t seed, float *params, float *buffers,
                                UnetError *err);

/* PyTorch's num_batches_tracked (batch norm only): training forwards so far. */
int64_t unet_model_num_batches_tracked(const UnetModel *m);
void unet_model_set_num_batches_tracked(UnetModel *m, int64_t count);

/* ---- geometry ------------------------------------------------------------ */
/* Output side for a square input side in, or -1 when in is not valid (a 2x2
 * pooling would see an odd size, a valid convolution would reach zero, a skip
 * would not match). Applies to each axis separately. */
int unet_model_output_size(const UnetModelConfig *cfg, int in);
/* Nearest valid input side to near (ties go to the larger); writes it and its
 * output side. Returns 0, or -1 when the config is invalid. */
int unet_model_valid_input_size(const UnetModelConfig *cfg, int near, int *in, int *out);
/* Largest valid side <= near and smallest valid side >= near (-1 when none). */
void unet_model_valid_input_neighbours(const UnetModelConfig *cfg, int near, int *below,
                                       int *above);

/* ---- passes -------------------------------------------------------------- */
/* cancelled (may be NULL) is polled between the layers of every forward
 * pass; when it returns nonzero the pass stops with UNET_ERR_CANCELLED, so a
 * long inference ends within one layer. Meant for inference: a training
 * forward stopped half-way has already updated the batch-norm running
 * statistics of the layers it ran. */
void unet_model_set_cancel(UnetModel *m, int (*cancelled)(void *user), void *user);

/* x: [N, in_channels, H, W] backend tensor with valid H and W. *logits gets a
 * model-owned tensor [N, classes, Ho, Wo] valid until the next forward or
 * unet_model_free. training != 0 uses batch statistics, updates running
 * stats and keeps what backward needs; training == 0 keeps nothing. */
UnetStatus unet_model_forward(UnetModel *m, const UnetTensor *x, UnetTensor **logits, int training,
                              UnetError *err);
/* After a training forward: dlogits has the logits' shape; parameter
 * gradients are ADDED into the grad arena (call zero_grad between steps
 * unless accumulating). No gradient is computed for x. */
UnetStatus unet_model_backward(UnetModel *m, const UnetTensor *dlogits, UnetError *err);
/* Inference forward followed by sigmoid (1 class) or softmax over classes;
 * *probs is model-owned like the logits. */
UnetStatus unet_model_predict(UnetModel *m, const UnetTensor *x, UnetTensor **probs,
                              UnetError *err);

/* ---- loss ------------------------------------------------------------------ */
/* UNET_LOSS_DEFAULT: BCE for 1 class, softmax cross-entropy for K > 1. */
#define UNET_LOSS_DEFAULT ((UnetLossKind)-1)
UnetLossKind unet_model_default_loss(const UnetModelConfig *cfg);
/* Thin checked wrapper of be->loss_forward_backward: target [N,1,Ho,Wo]
 * (0/1 or class ids), weight [N,1,Ho,Wo] or NULL, class_weight (classes
 * host floats) or NULL, loss a [1,1,1,1] tensor, dlogits (the logits' shape)
 * or NULL for the loss alone. */
UnetStatus unet_model_loss(UnetModel *m, const UnetTensor *logits, const UnetTensor *target,
                           const UnetTensor *weight, const float *class_weight, UnetLossKind kind,
                           float grad_scale, UnetTensor *loss, UnetTensor *dlogits,
                           UnetError *err);

/* ---- summary and memory ------------------------------------------------- */
typedef struct UnetLayerInfo {
    char name[UNET_PARAM_NAME_MAX]; /* module name, e.g. "encoder.blocks.0.conv_1" */
    char kind[64];                  /* e.g. "conv3x3 + batchnorm + relu" */
    int c, h, w;                    /* output for the given input; h = w = -1 if invalid */
    size_t params;                  /* trainable parameters of this layer */
} UnetLayerInfo;

/* Layers in execution order for an input of in_h x in_w (the input itself
 * first); malloc'd array of *count entries, caller frees. NULL when out of
 * memory. */
UnetLayerInfo *unet_model_layers(const UnetModel *m, int in_h, int in_w, size_t *count);

typedef struct UnetMemoryEstimate {
    size_t param_bytes;      /* parameter arena; the grad arena is the same size */
    size_t buffer_bytes;     /* running statistics */
    size_t input_bytes;      /* the caller's x */
    size_t logits_bytes;     /* logits, and again for the caller's dlogits when training */
    size_t infer_peak_bytes; /* model-owned activations, peak of an inference forward */
    size_t train_peak_bytes; /* model-owned activations + dlogits, peak of forward+backward */
} UnetMemoryEstimate;

/* Runs the exact forward/backward schedule on a counting backend (no memory
 * is touched) for an N x in_channels x H x W input. */
UnetStatus unet_model_memory_estimate(const UnetModelConfig *cfg, int n, int h, int w,
                                      UnetMemoryEstimate *est, UnetError *err);

/* Bytes of model-owned activation tensors now alive and the peak since the
 * last reset (measured on the real backend). */
size_t unet_model_activation_bytes(const UnetModel *m);
/* Releases every model-owned activation, the cached logits and norm
 * statistics included; the next forward allocates afresh (a caller whose
 * backend discarded memory, e.g. a failed graph capture, starts clean). */
void unet_model_release_activations(UnetModel *m);
size_t unet_model_activation_peak(const UnetModel *m);
void unet_model_reset_activation_peak(UnetModel *m);

#endif
