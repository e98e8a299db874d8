/* kernels.h - element-wise math shared by every backend.
 *
 * Each formula (activations, loss terms, optimizer steps) is written once here
 * and compiled by gcc for the CPU backends and by nvcc for the CUDA kernels;
 * UNET_HD marks the functions __host__ __device__ under nvcc. No second copy
 * of any of these formulas may live in a backend. */
#ifndef UNET_KERNELS_H
#define UNET_KERNELS_H

#ifdef __CUDACC__
#define UNET_HD __host__ __device__ __forceinline__
#else
#define UNET_HD static inline
#endif

#include <math.h>

UNET_HD float unet_k_activation(float x, int leaky, float slope)
{
    return x > 0.0f ? x : (leaky ? slope * x : 0.0f);
}

/* Derivative expressed through the output y; valid because y > 0 iff x > 0
 * for relu and for leaky relu with a positive slope. */
UNET_HD float unet_k_activation_grad(float dy, float y, int leaky, float slope)
{
    return y > 0.0f ? dy : (leaky ? slope * dy : 0.0f);
}

UNET_HD float unet_k_sigmoid(float x)
{
    return x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

/* Binary cross-entropy with logits, stable form: max(x,0) - x*t + log(1+exp(-|x|)). */
UNET_HD float unet_k_bce_with_logits(float x, float t)
{
    return fmaxf(x, 0.0f) - x * t + log1pf(expf(-fabsf(x)));
}

UNET_HD float unet_k_bce_with_logits_grad(float x, float t)
{
    return unet_k_sigmoid(x) - t;
}

/* SGD with momentum and weight decay, PyTorch semantics. Returns the new
 * parameter and updates *buf (momentum buffer; untouched when momentum == 0). */
UNET_HD float unet_k_sgd(float p, float g, float *buf, float lr, float momentum, int nesterov,
                         float weight_decay)
{
    g += weight_decay * p;
    if (momentum != 0.0f) {
        *buf = momentum * *buf + g;
        g = nesterov ? g + momentum * *buf : *buf;
    }
    return p - lr * g;
}

/* Adam (weight_decay as L2 on the gradient) or AdamW (decoupled), PyTorch
 * semantics. bc1 = 1 - beta1^t, bc2 = 1 - beta2^t are computed once per step. */
UNET_HD float unet_k_adam(float p, float g, float *m, float *v, float lr, float beta1, float beta2,
                          float eps, float weight_decay, int decoupled, float bc1, float bc2)
{
    if (decoupled)
        p -= lr * weight_decay * p;
    else
        g += weight_decay * p;
    *m = beta1 * *m + (1.0f - beta1) * g;
    *v = beta2 * *v + (1.0f - beta2) * g * g;
    float mhat = *m / bc1;
    float denom = sqrtf(*v / bc2) + eps;
    return p - lr * mhat / denom;
}

/* ---- resampling and skip connections ---------------------------------- */

/* One output coordinate of a bilinear resize with align_corners=False
 * (PyTorch's area_pixel_compute_source_index): the two input taps and their
 * weights. scale = in/out (0.5 for an exact x2 upsample). */
typedef struct UnetBilinearTap {
    int i0, i1;
    float l0, l1;
} UnetBilinearTap;

UNET_HD UnetBilinearTap unet_k_bilinear_tap(int dst, float scale, int in_size)
{
    float src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    UnetBilinearTap t;
    t.i0 = (int)src;
    t.i1 = t.i0 < in_size - 1 ? t.i0 + 1 : t.i0;
    t.l1 = src - (float)t.i0;
    t.l0 = 1.0f - t.l1;
    return t;
}

UNET_HD float unet_k_bilinear_scale(int in_size, int out_size)
{
    return (float)in_size / (float)out_size;
}

/* Bilinear blend of the four taps (PyTorch's order of operations). */
UNET_HD float unet_k_bilinear_blend(float v00, float v01, float v10, float v11, UnetBilinearTap ty,
                                    UnetBilinearTap tx)
{
    return ty.l0 * (tx.l0 * v00 + tx.l1 * v01) + ty.l1 * (tx.l0 * v10 + tx.l1 * v11);
}

/* Weight of input index i in output index dst (0 when not a tap); the
 * backward pass gathers with it so every backend sums the same terms. */
UNET_HD float unet_k_bilinear_weight(int dst, float scale, int in_size, int i)
{
    UnetBilinearTap t = unet_k_bilinear_tap(dst, scale, in_size);
    return (t.i0 == i ? t.l0 : 0.0f) + (t.i1 == i ? t.l1 : 0.0f);
}

/* Index (0..3, row-major) of the first maximum of a 2x2 window; NaNs win
 * (the last one), as in PyTorch's max pooling. */
UNET_HD int unet_k_argmax4(float a, float b, float c, float d)
{
    int idx = 0;
    float m = a;
    if (b > m || b != b) {
        m = b;
        idx = 1;
    }
    if (c > m || c != c) {
        m = c;
        idx = 2;
    }
    if (d > m || d != d)
        idx = 3;
    return idx;
}

/* Top/left offset of a centre crop of size small out of size big (U-Net skip
 * connections; the difference is even in the paper's valid network). */
UNET_HD int unet_k_crop_offset(int big, int small)
{
    return (big - small) / 2;
}

/* ---- normalisation (batch and instance norm, biased batch variance) ---- */

UNET_HD float unet_k_invstd(float var, float eps)
{
    return 1.0f / sqrtf(var + eps);
}

UNET_HD float unet_k_norm_forward(float x, float mean, float invstd, float gamma, float beta)
{
    return (x - mean) * invstd * gamma + beta;
}

/* dx of y = gamma * xhat + beta when the statistics come from the same batch:
 * mean_dy = mean(dy), mean_dy_xhat = mean(dy * xhat) over the normalised set. */
UNET_HD float unet_k_norm_backward(float dy, float xhat, float gamma, float invstd, float mean_dy,
                                   float mean_dy_xhat)
{
    return gamma * invstd * (dy - mean_dy - xhat * mean_dy_xhat);
}

/* PyTorch's running statistics: (1 - momentum) * running + momentum * batch. */
UNET_HD float unet_k_running_update(float running, float batch, float momentum)
{
    return (1.0f - momentum) * running + momentum * batch;
}

/* ---- softmax, cross-entropy and Dice ----------------------------------- */

/* Class id stored as a float in a target map; -1 (pixel ignored by the
 * losses) when it is not one of 0..k-1. */
UNET_HD int unet_k_class_id(float t, int k)
{
    float r = floorf(t + 0.5f);
    return (r >= 0.0f && r < (float)k) ? (int)r : -1;
}

/* -log softmax(x)[t] from the logit of the target class and
 * lse = max + log(sum(exp(x - max))). */
UNET_HD float unet_k_softmax_ce(float x_target, float lse)
{
    return lse - x_target;
}

/* d(-log softmax[t]) / dx_k = p_k - [k == t]. */
UNET_HD float unet_k_softmax_ce_grad(float p, int is_target)
{
    return p - (is_target ? 1.0f : 0.0f);
}

/* Backward through softmax: dx_j = p_j * (g_j - sum_k p_k g_k). */
UNET_HD float unet_k_softmax_backward(float p, float g, float dot_pg)
{
    return p * (g - dot_pg);
}

/* Backward through sigmoid from its output p. */
UNET_HD float unet_k_sigmoid_backward(float p, float g)
{
    return g * p * (1.0f - p);
}

/* Soft Dice of one class of one image from the weighted sums
 * inter = sum(w p t), psum = sum(w p), tsum = sum(w t); the smoothing term
 * keeps empty masks finite (dice = 1 when both are empty). The loss is
 * 1 - mean over classes of dice (all K classes for softmax, the one class
 * for sigmoid). */
#define UNET_DICE_SMOOTH 1.0f

UNET_HD float unet_k_dice(float inter, float psum, float tsum)
{
    return (2.0f * inter + UNET_DICE_SMOOTH) / (psum + tsum + UNET_DICE_SMOOTH);
}

/* d dice / d p for a pixel of weight w and target t. */
UNET_HD float unet_k_dice_grad(float w, float t, float inter, float psum, float tsum)
{
    float d = psum + tsum + UNET_DICE_SMOOTH;
    return w * (2.0f * t * d - (2.0f * inter + UNET_DICE_SMOOTH)) / (d * d);
}

#endif
