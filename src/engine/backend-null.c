/* backend-null.c - a backend that computes nothing and owns no memory, so the
 * model's real forward/backward schedule can be replayed to count the bytes
 * it would allocate (unet_model_memory_estimate). */
#include <stdlib.h>
#include <string.h>

#include "model-private.h"

static void null_destroy(UnetBackend *be)
{
    free(be);
}

static float *null_buffer_alloc(UnetBackend *be, size_t count)
{
    unet_error_set(&be->error, UNET_ERR_UNSUPPORTED,
                   "the counting backend holds no memory (%zu floats requested)", count);
    return NULL;
}

static void null_buffer_free(UnetBackend *be, float *buf) { (void)be; (void)buf; }

static UnetStatus null_buffer_fill(UnetBackend *be, float *buf, size_t count, float value)
{
    return UNET_OK;
}

static UnetStatus null_buffer_copy(UnetBackend *be, float *dst, const float *src, size_t count)
{
    return UNET_OK;
}

static UnetStatus null_buffer_download(UnetBackend *be, float *dst, const float *src, size_t count)
{
    return UNET_OK;
}

static UnetStatus null_tensor_init(UnetBackend *be, UnetTensor *t, int n, int c, int h, int w)
{
    memset(t, 0, sizeof *t);
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "tensor_init: shape [%d,%d,%d,%d] has an empty dimension", n, c, h, w);
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    return UNET_OK;
}

static void null_tensor_view(UnetBackend *be, UnetTensor *t, float *buf, int n, int c, int h, int w)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->data = buf;
    t->is_view = 1;
}

static void null_tensor_release(UnetBackend *be, UnetTensor *t)
{
    memset(t, 0, sizeof *t);
}

static UnetStatus null_tensor_upload(UnetBackend *be, UnetTensor *t, const float *h) { return UNET_OK; }
static UnetStatus null_tensor_download(UnetBackend *be, float *h, const UnetTensor *t) { return UNET_OK; }
static UnetStatus null_tensor_fill(UnetBackend *be, UnetTensor *t, float v) { return UNET_OK; }
static UnetStatus null_synchronize(UnetBackend *be) { return UNET_OK; }

static UnetStatus null_conv2d_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                      const UnetTensor *w, const UnetTensor *b,
                                      const UnetConvDesc *d)
{
    return UNET_OK;
}

static UnetStatus null_conv2d_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                       UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                                       const UnetTensor *w, const UnetConvDesc *d, int acc)
{
    return UNET_OK;
}

static UnetStatus null_upconv_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                      const UnetTensor *w, const UnetTensor *b)
{
    return UNET_OK;
}

static UnetStatus null_upconv_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                       UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                                       const UnetTensor *w, int acc)
{
    return UNET_OK;
}

static UnetStatus null_unary_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    return UNET_OK;
}

static UnetStatus null_maxpool_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                        const UnetTensor *x, const UnetTensor *y, int acc)
{
    return UNET_OK;
}

static UnetStatus null_resample_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                         int acc)
{
    return UNET_OK;
}

static UnetStatus null_concat_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *skip,
                                      const UnetTensor *up)
{
    return UNET_OK;
}

static UnetStatus null_concat_backward(UnetBackend *be, UnetTensor *dskip, UnetTensor *dup,
                                       const UnetTensor *dy, int acc_skip, int acc_up)
{
    return UNET_OK;
}

static UnetStatus null_act_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                   UnetActivation act, float slope)
{
    return UNET_OK;
}

static UnetStatus null_act_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                    const UnetTensor *y, UnetActivation act, float slope, int acc)
{
    return UNET_OK;
}

static UnetStatus null_bn_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                  const UnetTensor *gamma, const UnetTensor *beta,
                                  UnetTensor *running_mean, UnetTensor *running_var,
                                  UnetTensor *save_mean, UnetTensor *save_invstd, float momentum,
                                  float eps, int training)
{
    return UNET_OK;
}

static UnetStatus null_norm_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                     UnetTensor *dbeta, const UnetTensor *dy, const UnetTensor *x,
                                     const UnetTensor *gamma, const UnetTensor *save_mean,
                                     const UnetTensor *save_invstd, int acc)
{
    return UNET_OK;
}

static UnetStatus null_in_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                  const UnetTensor *gamma, const UnetTensor *beta,
                                  UnetTensor *save_mean, UnetTensor *save_invstd, float eps)
{
    return UNET_OK;
}

static UnetStatus null_loss(UnetBackend *be, UnetTensor *loss, UnetTensor *dlogits,
                            const UnetTensor *logits, const UnetTensor *target,
                            const UnetTensor *weight, const float *class_weight, UnetLossKind kind,
                            float grad_scale)
{
    return UNET_OK;
}

static UnetStatus null_sgd(UnetBackend *be, float *param, const float *grad, float *buf,
                           size_t count, const UnetOptimizerStep *s)
{
    return UNET_OK;
}

static UnetStatus null_adam(UnetBackend *be, float *param, const float *grad, float *mm, float *v,
                            size_t count, const UnetOptimizerStep *s)
{
    return UNET_OK;
}

UnetBackend *unet_backend_null_new(UnetError *err)
{
    UnetBackend *be = calloc(1, sizeof *be);
    if (!be) {
        unet_error_set(err, UNET_ERR_NOMEM, "out of memory creating the counting backend");
        return NULL;
    }
    be->name = "null";
    be->destroy = null_destroy;
    be->buffer_alloc = null_buffer_alloc;
    be->buffer_free = null_buffer_free;
    be->buffer_fill = null_buffer_fill;
    be->buffer_upload = null_buffer_copy;
    be->buffer_download = null_buffer_download;
    be->tensor_init = null_tensor_init;
    be->tensor_view = null_tensor_view;
    be->tensor_release = null_tensor_release;
    be->tensor_upload = null_tensor_upload;
    be->tensor_download = null_tensor_download;
    be->tensor_fill = null_tensor_fill;
    be->synchronize = null_synchronize;
    be->conv2d_forward = null_conv2d_forward;
    be->conv2d_backward = null_conv2d_backward;
    be->upconv2x2_forward = null_upconv_forward;
    be->upconv2x2_backward = null_upconv_backward;
    be->maxpool2x2_forward = null_unary_forward;
    be->maxpool2x2_backward = null_maxpool_backward;
    be->upsample2x_forward = null_unary_forward;
    be->upsample2x_backward = null_resample_backward;
    be->resize_bilinear_forward = null_unary_forward;
    be->resize_bilinear_backward = null_resample_backward;
    be->crop_concat_forward = null_concat_forward;
    be->crop_concat_backward = null_concat_backward;
    be->activation_forward = null_act_forward;
    be->activation_backward = null_act_backward;
    be->sigmoid_forward = null_unary_forward;
    be->softmax_forward = null_unary_forward;
    be->batchnorm_forward = null_bn_forward;
    be->batchnorm_backward = null_norm_backward;
    be->instancenorm_forward = null_in_forward;
    be->instancenorm_backward = null_norm_backward;
    be->loss_forward_backward = null_loss;
    be->sgd_update = null_sgd;
    be->adam_update = null_adam;
    return be;
}
