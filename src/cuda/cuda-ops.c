/* cuda-ops.c - pooling, resampling, skip joins, activations, norms, losses and
 * optimizer updates: shape checks on the host, then the kernels of the .cu files. */
#include <math.h>
#include <string.h>

#include "cuda-launch.h"
#include "cuda-private.h"

#define CHECK(expr)                    \
    do {                               \
        UnetStatus st_ = (expr);       \
        if (st_ != UNET_OK)            \
            return st_;                \
    } while (0)

static size_t plane(const UnetTensor *t)
{
    return (size_t)t->h * t->w;
}

/* ---- pooling and resampling -------------------------------------------- */

static UnetStatus cuda_maxpool2x2_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    const char *op = "maxpool2x2_forward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "x", x));
    if (x->h < 2 || x->w < 2)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: input %dx%d is smaller than the 2x2 window", op, x->h,
                              x->w);
    CHECK(unet_cuda_check_shape(cb, op, "y", y, x->n, x->c, x->h / 2, x->w / 2));
    UNET_CUDA_LAUNCH(cb, op, unet_maxpool2x2_forward_cuda(cb->stream, y->data, x->data,
                                                          (size_t)x->n * x->c, x->h, x->w));
    return UNET_OK;
}

static UnetStatus cuda_maxpool2x2_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                           const UnetTensor *x, const UnetTensor *y,
                                           int accumulate)
{
    const char *op = "maxpool2x2_backward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "x", x));
    CHECK(unet_cuda_check_shape(cb, op, "dx", dx, x->n, x->c, x->h, x->w));
    CHECK(unet_cuda_check_shape(cb, op, "dy", dy, x->n, x->c, x->h / 2, x->w / 2));
    if (y) /* the window maxima are found again from x, so y is only checked */
        CHECK(unet_cuda_check_shape(cb, op, "y", y, x->n, x->c, x->h / 2, x->w / 2));
    UNET_CUDA_LAUNCH(cb, op, unet_maxpool2x2_backward_cuda(cb->stream, dx->data, dy->data, x->data,
                                                           (size_t)x->n * x->c, x->h, x->w,
                                                           accumulate));
    return UNET_OK;
}

static UnetStatus resize_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                 const char *op)
{
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "x", x));
    CHECK(unet_cuda_check_tensor(cb, op, "y", y));
    if (y->n != x->n || y->c != x->c)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: y is [%d,%d,%d,%d] but x is [%d,%d,%d,%d] (N and C must "
                              "match)",
                              op, y->n, y->c, y->h, y->w, x->n, x->c, x->h, x->w);
    UNET_CUDA_LAUNCH(cb, op, unet_resize_bilinear_forward_cuda(cb->stream, y->data, x->data,
                                                               (size_t)x->n * x->c, x->h, x->w,
                                                               y->h, y->w));
    return UNET_OK;
}

static UnetStatus resize_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                  int accumulate, const char *op)
{
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "dx", dx));
    CHECK(unet_cuda_check_tensor(cb, op, "dy", dy));
    if (dy->n != dx->n || dy->c != dx->c)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: dy is [%d,%d,%d,%d] but dx is [%d,%d,%d,%d] (N and C "
                              "must match)",
                              op, dy->n, dy->c, dy->h, dy->w, dx->n, dx->c, dx->h, dx->w);
    UNET_CUDA_LAUNCH(cb, op, unet_resize_bilinear_backward_cuda(cb->stream, dx->data, dy->data,
                                                                (size_t)dx->n * dx->c, dx->h,
                                                                dx->w, dy->h, dy->w, accumulate));
    return UNET_OK;
}

static UnetStatus cuda_upsample2x_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    const char *op = "upsample2x_forward";
    CHECK(unet_cuda_check_tensor(unet_cuda(be), op, "x", x));
    CHECK(unet_cuda_check_shape(unet_cuda(be), op, "y", y, x->n, x->c, 2 * x->h, 2 * x->w));
    return resize_forward(be, y, x, op);
}

static UnetStatus cuda_upsample2x_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                           int accumulate)
{
    const char *op = "upsample2x_backward";
    CHECK(unet_cuda_check_tensor(unet_cuda(be), op, "dx", dx));
    CHECK(unet_cuda_check_shape(unet_cuda(be), op, "dy", dy, dx->n, dx->c, 2 * dx->h, 2 * dx->w));
    return resize_backward(be, dx, dy, accumulate, op);
}

static UnetStatus cuda_resize_bilinear_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    return resize_forward(be, y, x, "resize_bilinear_forward");
}

static UnetStatus cuda_resize_bilinear_backward(UnetBackend *be, UnetTensor *dx,
                                                const UnetTensor *dy, int accumulate)
{
    return resize_backward(be, dx, dy, accumulate, "resize_bilinear_backward");
}

/* ---- skip connections ---------------------------------------------------- */

static UnetStatus cuda_crop_concat_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *skip,
                                           const UnetTensor *up)
{
    const char *op = "crop_concat_forward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "skip", skip));
    CHECK(unet_cuda_check_tensor(cb, op, "up", up));
    if (skip->n != up->n || skip->h < up->h || skip->w < up->w)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: skip [%d,%d,%d,%d] cannot be cropped to up [%d,%d,%d,%d]",
                              op, skip->n, skip->c, skip->h, skip->w, up->n, up->c, up->h, up->w);
    CHECK(unet_cuda_check_shape(cb, op, "y", y, up->n, skip->c + up->c, up->h, up->w));
    UNET_CUDA_LAUNCH(cb, op, unet_crop_concat_forward_cuda(cb->stream, y->data, skip->data,
                                                           up->data, up->n, skip->c, skip->h,
                                                           skip->w, up->c, up->h, up->w));
    return UNET_OK;
}

static UnetStatus cuda_crop_concat_backward(UnetBackend *be, UnetTensor *dskip, UnetTensor *dup,
                                            const UnetTensor *dy, int accumulate_skip,
                                            int accumulate_up)
{
    const char *op = "crop_concat_backward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "dy", dy));
    if (!dskip && !dup)
        return UNET_OK;
    int cs, cu;
    if (dskip && dup) {
        cs = dskip->c;
        cu = dup->c;
    } else if (dskip) {
        cs = dskip->c;
        cu = dy->c - cs;
    } else {
        cu = dup->c;
        cs = dy->c - cu;
    }
    if (dskip) {
        CHECK(unet_cuda_check_tensor(cb, op, "dskip", dskip));
        if (dskip->n != dy->n || dskip->h < dy->h || dskip->w < dy->w)
            return unet_error_set(&be->error, UNET_ERR_INVALID,
                                  "cuda %s: dskip [%d,%d,%d,%d] does not match dy [%d,%d,%d,%d]",
                                  op, dskip->n, dskip->c, dskip->h, dskip->w, dy->n, dy->c, dy->h,
                                  dy->w);
    }
    if (dup)
        CHECK(unet_cuda_check_shape(cb, op, "dup", dup, dy->n, cu, dy->h, dy->w));
    if (cs < 1 || cu < 1 || cs + cu != dy->c)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: dy has %d channels, expected %d (skip) + %d (up)", op,
                              dy->c, cs, cu);
    UNET_CUDA_LAUNCH(cb, op, unet_crop_concat_backward_cuda(
                                 cb->stream, dskip ? dskip->data : NULL, dup ? dup->data : NULL,
                                 dy->data, dy->n, cs, dskip ? dskip->h : dy->h,
                                 dskip ? dskip->w : dy->w, cu, dy->h, dy->w, accumulate_skip,
                                 accumulate_up));
    return UNET_OK;
}

/* ---- activations -------------------------------------------------------- */

static UnetStatus same_shape(UnetCudaBackend *cb, const char *op, const char *name,
                             const UnetTensor *t, const UnetTensor *like)
{
    return unet_cuda_check_shape(cb, op, name, t, like->n, like->c, like->h, like->w);
}

static UnetStatus check_act(UnetCudaBackend *cb, const char *op, UnetActivation act, float slope)
{
    if (act != UNET_ACT_RELU && act != UNET_ACT_LEAKY)
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID, "cuda %s: unknown activation %d",
                              op, (int)act);
    if (act == UNET_ACT_LEAKY && !(slope >= 0.0f))
        return unet_error_set(&cb->base.error, UNET_ERR_INVALID,
                              "cuda %s: leaky relu slope %g must be >= 0 (the backward pass reads "
                              "the sign of x from y)",
                              op, (double)slope);
    return UNET_OK;
}

static UnetStatus cuda_activation_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                          UnetActivation act, float slope)
{
    const char *op = "activation_forward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(check_act(cb, op, act, slope));
    CHECK(unet_cuda_check_tensor(cb, op, "x", x));
    CHECK(same_shape(cb, op, "y", y, x));
    UNET_CUDA_LAUNCH(cb, op, unet_activation_forward_cuda(cb->stream, y->data, x->data,
                                                          unet_tensor_numel(x),
                                                          act == UNET_ACT_LEAKY, slope));
    return UNET_OK;
}

static UnetStatus cuda_activation_backward(UnetBackend *be, UnetTensor *dx, const UnetTensor *dy,
                                           const UnetTensor *y, UnetActivation act, float slope,
                                           int accumulate)
{
    const char *op = "activation_backward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(check_act(cb, op, act, slope));
    CHECK(unet_cuda_check_tensor(cb, op, "y", y));
    CHECK(same_shape(cb, op, "dy", dy, y));
    CHECK(same_shape(cb, op, "dx", dx, y));
    UNET_CUDA_LAUNCH(cb, op, unet_activation_backward_cuda(cb->stream, dx->data, dy->data, y->data,
                                                           unet_tensor_numel(y),
                                                           act == UNET_ACT_LEAKY, slope,
                                                           accumulate));
    return UNET_OK;
}

static UnetStatus cuda_sigmoid_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    const char *op = "sigmoid_forward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "x", x));
    CHECK(same_shape(cb, op, "y", y, x));
    UNET_CUDA_LAUNCH(cb, op, unet_sigmoid_forward_cuda(cb->stream, y->data, x->data,
                                                       unet_tensor_numel(x)));
    return UNET_OK;
}

static UnetStatus cuda_softmax_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    const char *op = "softmax_forward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "x", x));
    CHECK(same_shape(cb, op, "y", y, x));
    UNET_CUDA_LAUNCH(cb, op, unet_softmax_forward_cuda(cb->stream, y->data, x->data, x->n, x->c,
                                                       plane(x)));
    return UNET_OK;
}

/* ---- normalisation ------------------------------------------------------ */

static UnetStatus check_optional_count(UnetCudaBackend *cb, const char *op, const char *name,
                                       const UnetTensor *t, size_t count)
{
    return t ? unet_cuda_check_count(cb, op, name, t, count) : UNET_OK;
}

static UnetStatus cuda_batchnorm_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                         const UnetTensor *gamma, const UnetTensor *beta,
                                         UnetTensor *running_mean, UnetTensor *running_var,
                                         UnetTensor *save_mean, UnetTensor *save_invstd,
                                         float momentum, float eps, int training)
{
    const char *op = "batchnorm_forward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "x", x));
    const size_t c = (size_t)x->c, hw = plane(x);
    CHECK(same_shape(cb, op, "y", y, x));
    CHECK(check_optional_count(cb, op, "gamma", gamma, c));
    CHECK(check_optional_count(cb, op, "beta", beta, c));
    CHECK(check_optional_count(cb, op, "running_mean", running_mean, c));
    CHECK(check_optional_count(cb, op, "running_var", running_var, c));
    CHECK(check_optional_count(cb, op, "save_mean", save_mean, c));
    CHECK(check_optional_count(cb, op, "save_invstd", save_invstd, c));
    if (!(eps > 0.0f))
        return unet_error_set(&be->error, UNET_ERR_INVALID, "cuda %s: eps %g must be > 0", op,
                              (double)eps);
    double *scratch;
    if (!training) {
        if (!running_mean || !running_var)
            return unet_error_set(&be->error, UNET_ERR_INVALID,
                                  "cuda %s: evaluation mode needs running_mean and running_var",
                                  op);
        CHECK(unet_cuda_scratch(cb, c, op, &scratch));
        UNET_CUDA_LAUNCH(cb, op, unet_batchnorm_inference_cuda(
                                     cb->stream, y->data, x->data, gamma ? gamma->data : NULL,
                                     beta ? beta->data : NULL, running_mean->data,
                                     running_var->data, eps, x->n, x->c, hw, scratch));
        return UNET_OK;
    }
    if ((size_t)x->n * hw < 2)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: input [%d,%d,%d,%d] has one value per channel; training "
                              "batch norm needs more than one",
                              op, x->n, x->c, x->h, x->w);
    int chunks = unet_cuda_chunks((size_t)x->n * hw, c, cb->sm_count);
    CHECK(unet_cuda_scratch(cb, unet_norm_scratch(x->n, x->c, 0, chunks), op, &scratch));
    UNET_CUDA_LAUNCH(cb, op, unet_norm_forward_cuda(
                                 cb->stream, y->data, x->data, gamma ? gamma->data : NULL,
                                 beta ? beta->data : NULL, save_mean ? save_mean->data : NULL,
                                 save_invstd ? save_invstd->data : NULL,
                                 running_mean ? running_mean->data : NULL,
                                 running_var ? running_var->data : NULL, momentum, eps, x->n,
                                 x->c, hw, 0, chunks, scratch));
    return UNET_OK;
}

static UnetStatus norm_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                UnetTensor *dbeta, const UnetTensor *dy, const UnetTensor *x,
                                const UnetTensor *gamma, const UnetTensor *save_mean,
                                const UnetTensor *save_invstd, int accumulate, int per_image,
                                const char *op)
{
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "x", x));
    const size_t c = (size_t)x->c, hw = plane(x), stats = per_image ? (size_t)x->n * c : c;
    CHECK(same_shape(cb, op, "dy", dy, x));
    if (dx)
        CHECK(same_shape(cb, op, "dx", dx, x));
    CHECK(check_optional_count(cb, op, "gamma", gamma, c));
    CHECK(check_optional_count(cb, op, "dgamma", dgamma, c));
    CHECK(check_optional_count(cb, op, "dbeta", dbeta, c));
    CHECK(unet_cuda_check_count(cb, op, "save_mean", save_mean, stats));
    CHECK(unet_cuda_check_count(cb, op, "save_invstd", save_invstd, stats));
    int chunks = unet_cuda_chunks(per_image ? hw : (size_t)x->n * hw, stats, cb->sm_count);
    double *scratch;
    CHECK(unet_cuda_scratch(cb, unet_norm_scratch(x->n, x->c, per_image, chunks), op, &scratch));
    UNET_CUDA_LAUNCH(cb, op, unet_norm_backward_cuda(
                                 cb->stream, dx ? dx->data : NULL, dgamma ? dgamma->data : NULL,
                                 dbeta ? dbeta->data : NULL, dy->data, x->data,
                                 gamma ? gamma->data : NULL, save_mean->data, save_invstd->data,
                                 x->n, x->c, hw, per_image, accumulate, chunks, scratch));
    return UNET_OK;
}

static UnetStatus cuda_batchnorm_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                          UnetTensor *dbeta, const UnetTensor *dy,
                                          const UnetTensor *x, const UnetTensor *gamma,
                                          const UnetTensor *save_mean,
                                          const UnetTensor *save_invstd, int accumulate)
{
    return norm_backward(be, dx, dgamma, dbeta, dy, x, gamma, save_mean, save_invstd, accumulate,
                         0, "batchnorm_backward");
}

static UnetStatus cuda_instancenorm_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                            const UnetTensor *gamma, const UnetTensor *beta,
                                            UnetTensor *save_mean, UnetTensor *save_invstd,
                                            float eps)
{
    const char *op = "instancenorm_forward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "x", x));
    const size_t c = (size_t)x->c, hw = plane(x), stats = (size_t)x->n * c;
    CHECK(same_shape(cb, op, "y", y, x));
    CHECK(check_optional_count(cb, op, "gamma", gamma, c));
    CHECK(check_optional_count(cb, op, "beta", beta, c));
    CHECK(check_optional_count(cb, op, "save_mean", save_mean, stats));
    CHECK(check_optional_count(cb, op, "save_invstd", save_invstd, stats));
    if (!(eps > 0.0f))
        return unet_error_set(&be->error, UNET_ERR_INVALID, "cuda %s: eps %g must be > 0", op,
                              (double)eps);
    if (hw < 2)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: input [%d,%d,%d,%d] has one pixel per plane; instance "
                              "norm needs more than one",
                              op, x->n, x->c, x->h, x->w);
    int chunks = unet_cuda_chunks(hw, stats, cb->sm_count);
    double *scratch;
    CHECK(unet_cuda_scratch(cb, unet_norm_scratch(x->n, x->c, 1, chunks), op, &scratch));
    UNET_CUDA_LAUNCH(cb, op, unet_norm_forward_cuda(
                                 cb->stream, y->data, x->data, gamma ? gamma->data : NULL,
                                 beta ? beta->data : NULL, save_mean ? save_mean->data : NULL,
                                 save_invstd ? save_invstd->data : NULL, NULL, NULL, 0.0f, eps,
                                 x->n, x->c, hw, 1, chunks, scratch));
    return UNET_OK;
}

static UnetStatus cuda_instancenorm_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dgamma,
                                             UnetTensor *dbeta, const UnetTensor *dy,
                                             const UnetTensor *x, const UnetTensor *gamma,
                                             const UnetTensor *save_mean,
                                             const UnetTensor *save_invstd, int accumulate)
{
    return norm_backward(be, dx, dgamma, dbeta, dy, x, gamma, save_mean, save_invstd, accumulate,
                         1, "instancenorm_backward");
}

/* ---- losses --------------------------------------------------------------- */

static UnetStatus cuda_loss_forward_backward(UnetBackend *be, UnetTensor *loss,
                                             UnetTensor *dlogits, const UnetTensor *logits,
                                             const UnetTensor *target, const UnetTensor *weight,
                                             const float *class_weight, UnetLossKind kind,
                                             float grad_scale)
{
    const char *op = "loss_forward_backward";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    CHECK(unet_cuda_check_tensor(cb, op, "logits", logits));
    const int n = logits->n, k = logits->c;
    CHECK(unet_cuda_check_count(cb, op, "loss", loss, 1));
    CHECK(unet_cuda_check_shape(cb, op, "target", target, n, 1, logits->h, logits->w));
    if (weight)
        CHECK(unet_cuda_check_shape(cb, op, "weight", weight, n, 1, logits->h, logits->w));
    if (dlogits)
        CHECK(same_shape(cb, op, "dlogits", dlogits, logits));
    if (kind == UNET_LOSS_BCE && k != 1)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: binary cross-entropy needs 1 logit channel, got %d", op, k);
    if (kind == UNET_LOSS_SOFTMAX_CE && k < 2)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: softmax cross-entropy needs 2 or more classes, got %d", op,
                              k);
    if (kind != UNET_LOSS_BCE && kind != UNET_LOSS_SOFTMAX_CE && kind != UNET_LOSS_DICE)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "cuda %s: unknown loss kind %d", op,
                              (int)kind);
    const float *cw = NULL;
    if (class_weight && kind == UNET_LOSS_SOFTMAX_CE) {
        if (cb->class_weight_count < (size_t)k) {
            unet_cuda_free(cb, cb->class_weight);
            cb->class_weight = NULL;
            cb->class_weight_count = 0;
            CHECK(unet_cuda_malloc(cb, (void **)&cb->class_weight, (size_t)k * sizeof(float), op));
            cb->class_weight_count = (size_t)k;
        }
        CHECK(unet_cuda_upload(cb, cb->class_weight, class_weight, (size_t)k, op));
        cw = cb->class_weight;
    }
    size_t hw = plane(logits);
    int planes = kind == UNET_LOSS_DICE ? k : 1;
    int chunks = unet_cuda_chunks(hw, (size_t)n * planes, cb->sm_count);
    double *scratch;
    CHECK(unet_cuda_scratch(cb, unet_loss_scratch((int)kind, n, k, chunks), op, &scratch));
    UNET_CUDA_LAUNCH(cb, op, unet_loss_cuda(cb->stream, loss->data,
                                            dlogits ? dlogits->data : NULL, logits->data,
                                            target->data, weight ? weight->data : NULL, cw,
                                            (int)kind, n, k, logits->h, logits->w, grad_scale,
                                            chunks, scratch, cb->bad_dev));
    /* The record of a bad target travels back with the next sync point. */
    if (k > 1)
        UNET_CUDA_TRY(cb, op, cudaMemcpyAsync(cb->bad, cb->bad_dev, sizeof *cb->bad,
                                              cudaMemcpyDeviceToHost, cb->stream));
    return UNET_OK;
}

/* ---- optimizers ----------------------------------------------------------- */

static UnetStatus cuda_sgd_update(UnetBackend *be, float *param, const float *grad,
                                  float *momentum_buf, size_t count, const UnetOptimizerStep *s)
{
    const char *op = "sgd_update";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    if (!param || !grad || !s || (s->momentum != 0.0f && !momentum_buf))
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: missing parameter, gradient or momentum buffer", op);
    UNET_CUDA_LAUNCH(cb, op, unet_sgd_update_cuda(cb->stream, param, grad, momentum_buf, count,
                                                  s->lr, s->momentum, s->nesterov,
                                                  s->weight_decay));
    return UNET_OK;
}

static UnetStatus cuda_adam_update(UnetBackend *be, float *param, const float *grad, float *m,
                                   float *v, size_t count, const UnetOptimizerStep *s)
{
    const char *op = "adam_update";
    UnetCudaBackend *cb = unet_cuda(be);
    UNET_CUDA_ENTER(cb, op);
    if (!param || !grad || !m || !v || !s)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: missing parameter, gradient or moment buffer", op);
    if (s->step < 1)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "cuda %s: step must count from 1, got %lld", op, (long long)s->step);
    /* Bias corrections in double, as PyTorch computes them in Python. */
    float bc1 = (float)(1.0 - pow((double)s->beta1, (double)s->step));
    float bc2 = (float)(1.0 - pow((double)s->beta2, (double)s->step));
    UNET_CUDA_LAUNCH(cb, op, unet_adam_update_cuda(cb->stream, param, grad, m, v, count, s->lr,
                                                   s->beta1, s->beta2, s->eps, s->weight_decay,
                                                   s->decoupled_decay, bc1, bc2));
    return UNET_OK;
}

void unet_cuda_ops_install(UnetBackend *be)
{
    be->maxpool2x2_forward = cuda_maxpool2x2_forward;
    be->maxpool2x2_backward = cuda_maxpool2x2_backward;
    be->upsample2x_forward = cuda_upsample2x_forward;
    be->upsample2x_backward = cuda_upsample2x_backward;
    be->resize_bilinear_forward = cuda_resize_bilinear_forward;
    be->resize_bilinear_backward = cuda_resize_bilinear_backward;
    be->crop_concat_forward = cuda_crop_concat_forward;
    be->crop_concat_backward = cuda_crop_concat_backward;
    be->activation_forward = cuda_activation_forward;
    be->activation_backward = cuda_activation_backward;
    be->sigmoid_forward = cuda_sigmoid_forward;
    be->softmax_forward = cuda_softmax_forward;
    be->batchnorm_forward = cuda_batchnorm_forward;
    be->batchnorm_backward = cuda_batchnorm_backward;
    be->instancenorm_forward = cuda_instancenorm_forward;
    be->instancenorm_backward = cuda_instancenorm_backward;
    be->loss_forward_backward = cuda_loss_forward_backward;
    be->sgd_update = cuda_sgd_update;
    be->adam_update = cuda_adam_update;
}
