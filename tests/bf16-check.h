/* bf16-check.h - the error bounds of bf16 convolutions (fp32 accumulation) against fp32, shared by test-precision.c and test-parity-cuda.c. */
/*
 * Derivation. Every output of a convolution pass (forward, backward-data,
 * backward-filter, and the up-convolution's passes, which are the same
 * three) is r = sum_k a_k * b_k over K terms. In BF16 precision:
 *   - each input is rounded to bf16: 8 significant bits (7 stored), round
 *     to nearest even, so a'_k = a_k (1 + alpha_k) with |alpha_k| <= u =
 *     2^-8 (half the spacing 2^-7 of [1, 2)), same for b;
 *   - the product of two bf16 values has <= 16 significant bits, so it is
 *     exact in fp32; the sum is accumulated in fp32, which errs by at most
 *     gamma_K * S with gamma_K = K 2^-24 / (1 - K 2^-24) and
 *     S = sum_k |a_k b_k|;
 *   - the result is rounded to bf16 (|omega| <= u) and then written or added
 *     in fp32 (one more fp32 rounding, <= 2^-24 of the stored value).
 * Hence |bf16 - exact| <= ((1+u)^2 (1+u) - 1) S + gamma_K S (1+u) + u |r|
 *                       <= (3u + 4u^2 + 1.01 gamma_K) S + u |r|
 * and, since the fp32 reference itself errs by <= gamma_K S and |r| <= S,
 *   |bf16 - fp32| <= (4u + 4u^2 + 2.02 gamma_K) S + 2^-23 |stored|.
 * bf16_element_bound() is that bound; a test computes S by running the
 * reference convolution on |a| and |b|.
 *
 * Norm-wise (the op harness's max and nmse metrics): with random inputs the
 * rounding errors are independent and zero-mean with variance ~u^2/3 each,
 * so an output's error has a standard deviation of about
 * sqrt(2u^2/3 sum p_k^2 + u^2/3 r^2), i.e. nmse ~ u^2/3 .. u^2 (1.3e-5 ..
 * 1.5e-5; measured on an exact emulation: up to 1e-5). BF16_NMSE = 16 u^2 =
 * 2.4e-4. The largest error over a tensor is a few standard deviations,
 * about 2.5u = 1e-2 of the largest |r| at most (measured: 4.7e-3);
 * BF16_MAX = 8u = 2^-5 (the element bound above is the strict test).
 *
 * Training (3 SGD steps, lr 0.01, momentum 0.9, of the `unet` model, depth
 * 3, base 8, BCE): the logits pass through 15 convolutions and 2
 * up-convolutions, each adding an independent zero-mean relative error of
 * rms ~u, so the logits move by ~4u = 1.6e-2 rms relative. The BCE loss
 * averages the per-pixel changes (|d loss / d logit| <= 1) over the
 * output pixels of 2 images, which cancels most of it: BF16_LOSS_REL = 1e-2
 * of the loss (measured on the emulation: <= 1.6e-3). The parameter change after 3
 * steps is lr x (gradients) whose relative error grows by ~u per layer over
 * ~17 layers of backward and both the data and filter passes: nmse ~ 2 x 17
 * u^2 = 5e-4, and the momentum carries it into later steps (measured:
 * 1.2e-3); BF16_DELTA_NMSE = 1e-2. A wrong pass (gradient overwritten
 * instead of added, bad conversion) gives errors of order 1.
 */
#ifndef UNET_TEST_BF16_CHECK_H
#define UNET_TEST_BF16_CHECK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "model.h"

#define BF16_U (1.0 / 256.0)       /* unit roundoff of bf16: 2^-8 */
#define BF16_NMSE (16.0 * BF16_U * BF16_U)
#define BF16_MAX (1.0 / 32.0)
#define BF16_LOSS_REL 1e-2
#define BF16_DELTA_NMSE 1e-2

/* Largest allowed |bf16 result - fp32 result| of one output with K terms,
 * sum of absolute products S and stored value v. */
static inline double bf16_element_bound(double S, double v, size_t K)
{
    const double u = BF16_U;
    double kk = (double)K * 0x1p-24;
    double gamma = kk / (1.0 - kk);
    return (4.0 * u + 4.0 * u * u + 2.02 * gamma) * S + 0x1p-23 * fabs(v);
}

/* Worst ratio |a_i - r_i| / bound_i over n outputs (<= 1 passes; NaN or a
 * mismatch where the bound is 0 gives INFINITY). *where gets its index. */
static inline double bf16_worst_ratio(const float *a, const float *r, const float *S, size_t n,
                                      size_t K, size_t *where)
{
    double worst = 0.0;
    *where = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)r[i]);
        double b = bf16_element_bound(S[i], r[i], K);
        double q = isnan(d) ? INFINITY : d == 0.0 ? 0.0 : b > 0.0 ? d / b : INFINITY;
        if (q > worst) {
            worst = q;
            *where = i;
        }
    }
    return worst;
}

/* bf16-check.c: the backend `test` (in BF16 precision) against the fp32
 * reference from the same random inputs (seed). Every output of the forward,
 * backward-data and backward-filter passes is held to bf16_element_bound
 * (S from the reference on |inputs|) and BF16_NMSE; db to fp32 agreement.
 * Return the worst error / bound ratio, printing one line per output. */
double bf16_check_conv(UnetBackend *test, UnetBackend *ref, int n, int ci, int h, int w, int co,
                       int k, int stride, int pad, int acc, uint64_t seed);
double bf16_check_upconv(UnetBackend *test, UnetBackend *ref, int n, int ci, int h, int w, int co,
                         int acc, uint64_t seed);
/* Three SGD steps (lr 0.01, momentum 0.9) of the `unet` model (depth 3,
 * base 8, model seed 11, BCE, 2 images of side ~60, data from seed) on
 * both backends from the same initialisation and data: each step's loss
 * within BF16_LOSS_REL, the parameter change within BF16_DELTA_NMSE. Gives
 * back the worst loss difference and the change's nmse. */
void bf16_check_training(UnetBackend *test, UnetBackend *ref, uint64_t seed,
                         double *worst_loss_rel, double *delta_nmse);

#endif
