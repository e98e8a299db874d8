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
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* d sigmoid / dx through the output y = sigmoid(x). */
UNET_HD float unet_k_sigmoid_grad(float dy, float y)
{
    return dy * y * (1.0f - y);
}

/* ---- softmax over the K channels of one pixel, x[i * stride] ---------------- */

/* The two numbers every softmax quantity needs: m = max_i x_i and
 * s = sum_i exp(x_i - m) (so no term overflows). Kept apart rather than folded
 * into logsumexp = m + log(s), which loses digits when |m| is large. */
UNET_HD void unet_k_softmax_stats(const float *x, int k, size_t stride, float *max_out,
                                  float *sum_out)
{
    float m = x[0];
    for (int i = 1; i < k; i++)
        m = fmaxf(m, x[(size_t)i * stride]);
    float s = 0.0f;
    for (int i = 0; i < k; i++)
        s += expf(x[(size_t)i * stride] - m);
    *max_out = m;
    *sum_out = s;
}

/* softmax_i = exp(x_i - m) / s. */
UNET_HD float unet_k_softmax_prob(float x, float max_x, float sum)
{
    return expf(x - max_x) / sum;
}

/* Cross-entropy of one pixel, -log softmax_target = (m - x_target) + log(s). */
UNET_HD float unet_k_softmax_ce(float x_target, float max_x, float sum)
{
    return (max_x - x_target) + logf(sum);
}

/* d CE / d x_i = softmax_i - [i == target]. */
UNET_HD float unet_k_softmax_ce_grad(float x, float max_x, float sum, int is_target)
{
    return expf(x - max_x) / sum - (is_target ? 1.0f : 0.0f);
}

/* ---- soft Dice of one image and class ----------------------------------------
 * inter = sum w*p*t, psum = sum w*p, tsum = sum w*t over the image's pixels;
 * loss = 1 - (2*inter + smooth) / (psum + tsum + smooth). */
#define UNET_DICE_SMOOTH 1.0f

UNET_HD float unet_k_dice_loss(float inter, float psum, float tsum, float smooth)
{
    return 1.0f - (2.0f * inter + smooth) / (psum + tsum + smooth);
}

/* d loss / d p_i of one pixel with target t and pixel weight w. */
UNET_HD float unet_k_dice_grad(float t, float w, float inter, float psum, float tsum, float smooth)
{
    float den = psum + tsum + smooth;
    return w * ((2.0f * inter + smooth) - 2.0f * t * den) / (den * den);
}

/* ---- batch / instance normalisation -------------------------------------- */

/* y = gamma * (x - mean) * invstd + beta. */
UNET_HD float unet_k_norm(float x, float mean, float invstd, float gamma, float beta)
{
    return gamma * (x - mean) * invstd + beta;
}

/* dx of a normalisation over a group of M values (batch norm: N*H*W, instance
 * norm: H*W): scale = gamma * invstd, xhat = (x - mean) * invstd,
 * mean_dy = sum(dy) / M, mean_dy_xhat = sum(dy * xhat) / M. */
UNET_HD float unet_k_norm_grad(float dy, float xhat, float scale, float mean_dy, float mean_dy_xhat)
{
    return scale * (dy - mean_dy - xhat * mean_dy_xhat);
}

/* PyTorch's running-statistics update: (1 - momentum) * running + momentum * batch. */
UNET_HD float unet_k_running_update(float running, float batch, float momentum)
{
    return (1.0f - momentum) * running + momentum * batch;
}

/* ---- bilinear resampling, align_corners = False ------------------------------
 * Source taps of destination index dst when resizing in -> out along one axis
 * (PyTorch: src = (dst + 0.5) * in / out - 0.5, clamped at 0). The value is
 * (1 - l1) * v[i0] + l1 * v[i1]. */
UNET_HD void unet_k_bilinear_taps(int dst, int in, int out, int *i0, int *i1, float *l1)
{
    float scale = (float)in / (float)out;
    float src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    int i = (int)src;
    if (i > in - 1)
        i = in - 1;
    float l = src - (float)i;
    *i0 = i;
    *i1 = i < in - 1 ? i + 1 : i;
    *l1 = l > 1.0f ? 1.0f : l;
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

/* ---- additions used by the CUDA backend ---------------------------------- */

/* Bilinear value from the four taps of unet_k_bilinear_taps (ly, lx = l1 of
 * each axis). */
UNET_HD float unet_k_bilinear_blend(float v00, float v01, float v10, float v11, float ly, float lx)
{
    return (1.0f - ly) * ((1.0f - lx) * v00 + lx * v01) + ly * ((1.0f - lx) * v10 + lx * v11);
}

/* Weight of input index i in destination index dst along one axis (0 when i
 * is not one of its taps): the backward pass as a gather, without atomics. */
UNET_HD float unet_k_bilinear_weight(int dst, int in, int out, int i)
{
    int i0, i1;
    float l1;
    unet_k_bilinear_taps(dst, in, out, &i0, &i1, &l1);
    return (i0 == i ? 1.0f - l1 : 0.0f) + (i1 == i ? l1 : 0.0f);
}

/* Offset (0..3, row-major in the 2x2 window) of the first maximum; NaN counts
 * as the maximum (the first NaN wins), as in PyTorch. */
UNET_HD int unet_k_argmax4(float a, float b, float c, float d)
{
    const float v[4] = { a, b, c, d };
    int best = 0;
    for (int i = 1; i < 4; i++)
        if (v[i] > v[best] || (v[i] != v[i] && v[best] == v[best]))
            best = i;
    return best;
}

/* Top/left offset of a centre crop of size small out of size big (U-Net skip
 * connections; the difference is even in the paper's valid network). */
UNET_HD int unet_k_crop_offset(int big, int small)
{
    return (big - small) / 2;
}

/* Class id of a softmax CE / multi-class Dice target value, or -1 when it is
 * not one of 0..k-1 (such targets are refused). */
UNET_HD int unet_k_class_id(float t, int k)
{
    if (!(t >= 0.0f) || t >= (float)k || t != floorf(t))
        return -1;
    return (int)t;
}

/* ---- bfloat16 (the CUDA backend's bf16 precision) ------------------------
 * A bf16 value is the upper 16 bits of an IEEE float (8 exponent bits, 7
 * stored mantissa bits), kept as a uint16_t bit pattern so gcc and nvcc
 * share this code. float -> bf16 rounds to nearest, ties to even (relative
 * error <= 2^-8); NaN stays a quiet NaN with its sign; infinities and
 * overflow past the largest bf16 give inf; denormals round like any other
 * value (bf16 has float's exponent range). bf16 -> float is exact. */
UNET_HD uint32_t unet_k_float_bits(float f)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

UNET_HD float unet_k_bits_float(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

UNET_HD uint16_t unet_k_float_to_bf16(float f)
{
    uint32_t u = unet_k_float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and top payload, force quiet */
        return (uint16_t)((u >> 16) | 0x0040u);
    /* adding 0x7fff plus the lowest kept bit rounds half-way cases to even;
     * a carry into the exponent is the correct rounding (up to inf) */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

UNET_HD float unet_k_bf16_to_float(uint16_t h)
{
    return unet_k_bits_float((uint32_t)h << 16);
}

#endif
