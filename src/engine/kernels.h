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

#endif
