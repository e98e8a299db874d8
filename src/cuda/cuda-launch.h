/* cuda-launch.h - C entry points of the CUDA kernels (launchers end in _cuda).
 *
 * Included by the C host code (gcc) and by the .cu files (nvcc). Every
 * launcher enqueues its kernels on the given stream and returns
 * cudaGetLastError() of the launches; none synchronises. Shapes have been
 * checked by the caller. Reductions are deterministic: blocks write partial
 * sums (double) into a scratch buffer of the size given by the matching
 * *_scratch function, and a second kernel adds them in a fixed order. */
#ifndef UNET_CUDA_LAUNCH_H
#define UNET_CUDA_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UNET_CUDA_BLOCK 256

/* Number of blocks a reduction splits each segment of seg_len elements into,
 * so that segments x chunks blocks keep about 4 blocks per SM busy. */
static inline int unet_cuda_chunks(size_t seg_len, size_t segments, int sm_count)
{
    size_t target = (size_t)(sm_count > 0 ? sm_count : 1) * 4;
    size_t chunks = (target + segments - 1) / segments;
    size_t by_len = (seg_len + 2047) / 2048; /* at least ~2048 elements per block */
    if (chunks > by_len)
        chunks = by_len;
    if (chunks > 1024)
        chunks = 1024;
    return chunks < 1 ? 1 : (int)chunks;
}

/* ---- kernels-elementwise.cu ------------------------------------------- */
cudaError_t unet_fill_cuda(cudaStream_t s, float *x, size_t count, float value);
/* y[n,c,:,:] += b[c] */
cudaError_t unet_bias_add_cuda(cudaStream_t s, float *y, const float *b, int n, int c, size_t hw);
/* db[c] += sum over n, h, w of dy[n,c,h,w]; scratch: unet_bias_grad_scratch doubles. */
size_t unet_bias_grad_scratch(int c, int chunks);
cudaError_t unet_bias_grad_cuda(cudaStream_t s, float *db, const float *dy, int n, int c, size_t hw,
                                int chunks, double *scratch);
cudaError_t unet_activation_forward_cuda(cudaStream_t s, float *y, const float *x, size_t count,
                                         int leaky, float slope);
cudaError_t unet_activation_backward_cuda(cudaStream_t s, float *dx, const float *dy, const float *y,
                                          size_t count, int leaky, float slope, int accumulate);
cudaError_t unet_sigmoid_forward_cuda(cudaStream_t s, float *y, const float *x, size_t count);
/* Softmax over the channels of [n,c,hw]. */
cudaError_t unet_softmax_forward_cuda(cudaStream_t s, float *y, const float *x, int n, int c,
                                      size_t hw);
/* momentum_buf may be NULL when momentum == 0. */
cudaError_t unet_sgd_update_cuda(cudaStream_t s, float *param, const float *grad,
                                 float *momentum_buf, size_t count, float lr, float momentum,
                                 int nesterov, float weight_decay);
cudaError_t unet_adam_update_cuda(cudaStream_t s, float *param, const float *grad, float *m,
                                  float *v, size_t count, float lr, float beta1, float beta2,
                                  float eps, float weight_decay, int decoupled, float bc1,
                                  float bc2);

/* ---- kernels-resample.cu ---------------------------------------------- */
/* planes = n*c; x [planes,h,w], y [planes,h/2,w/2] */
cudaError_t unet_maxpool2x2_forward_cuda(cudaStream_t s, float *y, const float *x, size_t planes,
                                         int h, int w);
cudaError_t unet_maxpool2x2_backward_cuda(cudaStream_t s, float *dx, const float *dy,
                                          const float *x, size_t planes, int h, int w,
                                          int accumulate);
/* y [planes,ho,wo] from x [planes,hi,wi], align_corners=False */
cudaError_t unet_resize_bilinear_forward_cuda(cudaStream_t s, float *y, const float *x,
                                              size_t planes, int hi, int wi, int ho, int wo);
cudaError_t unet_resize_bilinear_backward_cuda(cudaStream_t s, float *dx, const float *dy,
                                               size_t planes, int hi, int wi, int ho, int wo,
                                               int accumulate);
/* y [n,cs+cu,h,w]; skip [n,cs,hs,ws]; up [n,cu,h,w] */
cudaError_t unet_crop_concat_forward_cuda(cudaStream_t s, float *y, const float *skip,
                                          const float *up, int n, int cs, int hs, int ws, int cu,
                                          int h, int w);
/* Either of dskip, dup may be NULL. */
cudaError_t unet_crop_concat_backward_cuda(cudaStream_t s, float *dskip, float *dup,
                                           const float *dy, int n, int cs, int hs, int ws, int cu,
                                           int h, int w, int accumulate_skip, int accumulate_up);

/* ---- kernels-norm.cu -------------------------------------------------- */
/* Statistics over (n,h,w) per channel (per_image == 0, batch norm) or over
 * (h,w) per image and channel (per_image == 1, instance norm). gamma/beta
 * may be NULL (1 and 0). */
size_t unet_norm_scratch(int n, int c, int per_image, int chunks);
/* Training/instance statistics: writes mean and invstd (n*c values when
 * per_image, else c), updates running stats when running_mean != NULL
 * (batch norm only; needs n*hw > 1), then y. */
cudaError_t unet_norm_forward_cuda(cudaStream_t s, float *y, const float *x, const float *gamma,
                                   const float *beta, float *save_mean, float *save_invstd,
                                   float *running_mean, float *running_var, float momentum,
                                   float eps, int n, int c, size_t hw, int per_image, int chunks,
                                   double *scratch);
/* Batch norm with running statistics (inference). */
cudaError_t unet_batchnorm_inference_cuda(cudaStream_t s, float *y, const float *x,
                                          const float *gamma, const float *beta,
                                          const float *running_mean, const float *running_var,
                                          float eps, int n, int c, size_t hw, double *scratch);
/* dx may be NULL; dgamma/dbeta may be NULL; they are added into. */
cudaError_t unet_norm_backward_cuda(cudaStream_t s, float *dx, float *dgamma, float *dbeta,
                                    const float *dy, const float *x, const float *gamma,
                                    const float *save_mean, const float *save_invstd, int n, int c,
                                    size_t hw, int per_image, int accumulate, int chunks,
                                    double *scratch);

/* ---- kernels-convert.cu ---------------------------------------------- */
/* bf16 values are uint16_t bit patterns (kernels.h: round to nearest even). */
cudaError_t unet_float_to_bf16_cuda(cudaStream_t s, uint16_t *dst, const float *src, size_t count);
/* dst = float(src), or dst += float(src) when accumulate != 0. */
cudaError_t unet_bf16_to_float_cuda(cudaStream_t s, float *dst, const uint16_t *src, size_t count,
                                    int accumulate);

/* ---- kernels-loss.cu -------------------------------------------------- */
/* First target value that is not a class id (K > 1), recorded by the loss
 * kernels in device memory, copied to pinned host memory after the loss and
 * reported at the next synchronisation. */
typedef struct UnetCudaBadTarget {
    int flag;   /* 0: none seen */
    int image, y, x, classes;
    float value;
} UnetCudaBadTarget;

/* kind: UnetLossKind. logits [n,k,h,w]; target [n,1,h,w]; weight [n,1,h,w]
 * or NULL; class_weight: k floats in device memory or NULL. */
size_t unet_loss_scratch(int kind, int n, int k, int chunks);
cudaError_t unet_loss_cuda(cudaStream_t s, float *loss, float *dlogits, const float *logits,
                           const float *target, const float *weight, const float *class_weight,
                           int kind, int n, int k, int h, int w, float grad_scale, int chunks,
                           double *scratch, UnetCudaBadTarget *bad);

#ifdef __cplusplus
}
#endif

#endif
