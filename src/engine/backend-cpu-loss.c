/* backend-cpu-loss.c - the CPU backend's losses and optimizer updates:
 * threaded passes over plain memory with the formulas of kernels.h and the
 * reductions (in double) the reference backend defines. */
#include "backend-cpu-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* Class id of a softmax CE / multi-class Dice target value, or -1. */
static inline int class_id(float t, int k)
{
    if (!(t >= 0.0f) || t >= (float)k || t != floorf(t))
        return -1;
    return (int)t;
}

static UnetStatus need_shape(UnetBackend *be, const char *op, const char *name,
                             const UnetTensor *t, int n, int c, int h, int w)
{
    if (!t || !t->data)
        return cpu_shape_error(be, op, "%s is missing (NULL tensor)", name);
    if (t->n != n || t->c != c || t->h != h || t->w != w)
        return cpu_shape_error(be, op, "%s is [%d,%d,%d,%d] but must be [%d,%d,%d,%d]", name,
                               t->n, t->c, t->h, t->w, n, c, h, w);
    return UNET_OK;
}

/* Sums of one image's Dice terms: inter, psum, tsum per class, each thread
 * its own row of partials (merged in a fixed order, so results repeat). */
static void dice_sums(CpuBackend *cpu, const float *x, const float *t, const float *w, int K,
                      size_t plane, double *partial, double *sums)
{
    const int nt = cpu_threads_for(cpu, plane * (size_t)K);
    memset(partial, 0, (size_t)cpu->threads * 3 * (size_t)K * sizeof(double));
    CPU_OMP("omp parallel num_threads(nt)")
    {
#ifdef _OPENMP
        double *acc = partial + (size_t)omp_get_thread_num() * 3 * (size_t)K;
#else
        double *acc = partial;
#endif
        double *inter = acc, *psum = acc + K, *tsum = acc + 2 * K;
        CPU_OMP("omp for schedule(static)")
        for (size_t i = 0; i < plane; i++) {
            double wi = w ? w[i] : 1.0;
            if (K == 1) {
                double p = unet_k_sigmoid(x[i]);
                inter[0] += wi * p * t[i];
                psum[0] += wi * p;
                tsum[0] += wi * t[i];
            } else {
                int ti = class_id(t[i], K);
                float mx, sx;
                unet_k_softmax_stats(x + i, K, plane, &mx, &sx);
                for (int c = 0; c < K; c++) {
                    double p = unet_k_softmax_prob(x[(size_t)c * plane + i], mx, sx);
                    psum[c] += wi * p;
                    if (c == ti) {
                        inter[c] += wi * p;
                        tsum[c] += wi;
                    }
                }
            }
        }
    }
    memset(sums, 0, 3 * (size_t)K * sizeof(double));
    for (int th = 0; th < cpu->threads; th++)
        for (int j = 0; j < 3 * K; j++)
            sums[j] += partial[(size_t)th * 3 * K + j];
}

static UnetStatus cpu_loss_forward_backward(UnetBackend *be, UnetTensor *loss, UnetTensor *dlogits,
                                            const UnetTensor *logits, const UnetTensor *target,
                                            const UnetTensor *weight, const float *class_weight,
                                            UnetLossKind kind, float grad_scale)
{
    static const char op[] = "loss_forward_backward";
    if (!logits || !logits->data)
        return cpu_shape_error(be, op, "logits are missing (NULL tensor)");
    const int N = logits->n, K = logits->c, H = logits->h, W = logits->w;
    UnetStatus s;
    if ((s = need_shape(be, op, "loss", loss, 1, 1, 1, 1)) ||
        (s = need_shape(be, op, "target", target, N, 1, H, W)) ||
        (weight && (s = need_shape(be, op, "pixel weight", weight, N, 1, H, W))) ||
        (dlogits && (s = need_shape(be, op, "dlogits", dlogits, N, K, H, W))))
        return s;
    if (kind == UNET_LOSS_BCE && K != 1)
        return cpu_shape_error(be, op, "BCE needs one logit channel, logits are [%d,%d,%d,%d]",
                               N, K, H, W);
    if (kind == UNET_LOSS_SOFTMAX_CE && K < 2)
        return cpu_shape_error(be, op, "softmax cross-entropy needs at least 2 classes, logits "
                               "are [%d,%d,%d,%d]", N, K, H, W);
    if (kind != UNET_LOSS_BCE && kind != UNET_LOSS_SOFTMAX_CE && kind != UNET_LOSS_DICE)
        return cpu_shape_error(be, op, "unknown loss kind %d", (int)kind);

    CpuBackend *cpu = cpu_impl(be);
    const size_t plane = (size_t)H * (size_t)W;
    /* Targets and weights have one channel and so are always plain. */
    const float *tg = target->data;
    const float *wt = weight ? weight->data : NULL;
    if (K > 1) {
        const size_t total = (size_t)N * plane;
        size_t bad = total;
        const int nt = cpu_threads_for(cpu, total);
        CPU_OMP("omp parallel for num_threads(nt) reduction(min:bad)")
        for (size_t i = 0; i < total; i++)
            if (class_id(tg[i], K) < 0 && i < bad)
                bad = i;
        if (bad < total) {
            size_t n = bad / plane, i = bad % plane;
            return cpu_shape_error(be, op, "target value %g at image %zu pixel (%zu,%zu) is not "
                                   "a class id in 0..%d", (double)tg[bad], n, i / (size_t)W,
                                   i % (size_t)W, K - 1);
        }
    }
    const float *xl = cpu_stage_in(be, logits, 1, CPU_SCRATCH_A, op);
    float *dl = dlogits ? cpu_out_buffer(be, dlogits, 1, 0, CPU_SCRATCH_B, op) : NULL;
    if (!xl || (dlogits && !dl))
        return be->error.status;

    double *partial = NULL, *sums = NULL;
    if (kind == UNET_LOSS_DICE) {
        partial = malloc(((size_t)cpu->threads + 1) * 3 * (size_t)K * sizeof(double));
        if (!partial)
            return unet_error_set(&be->error, UNET_ERR_NOMEM, "%s: out of memory", op);
        sums = partial + (size_t)cpu->threads * 3 * (size_t)K;
    }

    const int nt = cpu_threads_for(cpu, plane * (size_t)K);
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = xl + (size_t)n * K * plane;
        const float *t = tg + (size_t)n * plane;
        const float *w = wt ? wt + (size_t)n * plane : NULL;
        float *d = dl ? dl + (size_t)n * K * plane : NULL;

        if (kind == UNET_LOSS_BCE || kind == UNET_LOSS_SOFTMAX_CE) {
            double sw = 0.0, sl = 0.0;
            CPU_OMP("omp parallel for num_threads(nt) schedule(static) reduction(+:sw,sl)")
            for (size_t i = 0; i < plane; i++) {
                double wi = w ? w[i] : 1.0;
                double li;
                if (kind == UNET_LOSS_BCE) {
                    li = unet_k_bce_with_logits(x[i], t[i]);
                } else {
                    int ti = class_id(t[i], K);
                    float mx, sx;
                    unet_k_softmax_stats(x + i, K, plane, &mx, &sx);
                    li = (double)(class_weight ? class_weight[ti] : 1.0f) *
                         unet_k_softmax_ce(x[(size_t)ti * plane + i], mx, sx);
                }
                sw += wi;
                sl += wi * li;
            }
            /* An image whose weights sum to zero contributes 0 (and no gradient). */
            if (sw > 0.0)
                total += sl / sw;
            if (!d)
                continue;
            const float coef = sw > 0.0 ? (float)((double)grad_scale / ((double)N * sw)) : 0.0f;
            CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
            for (size_t i = 0; i < plane; i++) {
                float wi = (w ? w[i] : 1.0f) * coef;
                if (kind == UNET_LOSS_BCE) {
                    d[i] = wi * unet_k_bce_with_logits_grad(x[i], t[i]);
                } else {
                    int ti = class_id(t[i], K);
                    float mx, sx;
                    unet_k_softmax_stats(x + i, K, plane, &mx, &sx);
                    float cw = class_weight ? class_weight[ti] : 1.0f;
                    for (int c = 0; c < K; c++)
                        d[(size_t)c * plane + i] =
                            wi * cw * unet_k_softmax_ce_grad(x[(size_t)c * plane + i], mx, sx, c == ti);
                }
            }
            continue;
        }

        /* Soft Dice, one per class, on sigmoid (K == 1) or softmax probabilities. */
        dice_sums(cpu, x, t, w, K, plane, partial, sums);
        const double *inter = sums, *psum = sums + K, *tsum = sums + 2 * K;
        double image_loss = 0.0;
        for (int c = 0; c < K; c++)
            image_loss += unet_k_dice_loss((float)inter[c], (float)psum[c], (float)tsum[c],
                                           UNET_DICE_SMOOTH);
        total += image_loss / K;
        if (!d)
            continue;
        const float coef = (float)((double)grad_scale / ((double)N * (double)K));
        int oom = 0;
        CPU_OMP("omp parallel num_threads(nt) reduction(|:oom)")
        {
            float *pg = K > 1 ? malloc(2 * (size_t)K * sizeof(float)) : NULL;
            if (K > 1 && !pg)
                oom = 1;
            CPU_OMP("omp for schedule(static)")
            for (size_t i = 0; i < plane; i++) {
                float wi = w ? w[i] : 1.0f;
                if (K == 1) {
                    float p = unet_k_sigmoid(x[i]);
                    float g = unet_k_dice_grad(t[i], wi, (float)inter[0], (float)psum[0],
                                               (float)tsum[0], UNET_DICE_SMOOTH);
                    d[i] = unet_k_sigmoid_grad(coef * g, p);
                } else if (pg) {
                    /* Through the softmax: dx_j = p_j * (g_j - sum_c g_c p_c). */
                    int ti = class_id(t[i], K);
                    float mx, sx;
                    unet_k_softmax_stats(x + i, K, plane, &mx, &sx);
                    float *p = pg, *g = pg + K;
                    double gp = 0.0;
                    for (int c = 0; c < K; c++) {
                        p[c] = unet_k_softmax_prob(x[(size_t)c * plane + i], mx, sx);
                        g[c] = unet_k_dice_grad(c == ti ? 1.0f : 0.0f, wi, (float)inter[c],
                                                (float)psum[c], (float)tsum[c], UNET_DICE_SMOOTH);
                        gp += (double)g[c] * p[c];
                    }
                    for (int c = 0; c < K; c++)
                        d[(size_t)c * plane + i] = coef * p[c] * (g[c] - (float)gp);
                }
            }
            free(pg);
        }
        if (oom) {
            free(partial);
            return unet_error_set(&be->error, UNET_ERR_NOMEM, "%s: out of memory", op);
        }
    }
    free(partial);
    loss->data[0] = (float)(total / N);
    if (dlogits)
        cpu_stage_out(be, dlogits, dl, 1, 0);
    return UNET_OK;
}

/* ---- optimizers ---------------------------------------------------------- */

static UnetStatus cpu_sgd_update(UnetBackend *be, float *param, const float *grad,
                                 float *momentum_buf, size_t count, const UnetOptimizerStep *s)
{
    if (!s || (count && (!param || !grad)))
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "sgd_update: parameter, gradient or step settings missing");
    if (s->momentum != 0.0f && !momentum_buf && count)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "sgd_update: momentum %g needs a momentum buffer",
                              (double)s->momentum);
    CpuBackend *cpu = cpu_impl(be);
    const float lr = s->lr, mom = s->momentum, wd = s->weight_decay;
    const int nesterov = s->nesterov;
    const int nt = cpu_threads_for(cpu, count);
    if (momentum_buf) {
        CPU_OMP("omp parallel for simd num_threads(nt) schedule(static)")
        for (size_t i = 0; i < count; i++)
            param[i] = unet_k_sgd(param[i], grad[i], &momentum_buf[i], lr, mom, nesterov, wd);
    } else {
        CPU_OMP("omp parallel for simd num_threads(nt) schedule(static)")
        for (size_t i = 0; i < count; i++) {
            float unused = 0.0f;
            param[i] = unet_k_sgd(param[i], grad[i], &unused, lr, mom, nesterov, wd);
        }
    }
    return UNET_OK;
}

static UnetStatus cpu_adam_update(UnetBackend *be, float *param, const float *grad, float *m,
                                  float *v, size_t count, const UnetOptimizerStep *s)
{
    if (!s || (count && (!param || !grad || !m || !v)))
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "adam_update: parameter, gradient, moment buffers or step settings "
                              "missing");
    if (s->step < 1)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "adam_update: step %lld must be >= 1 (bias correction)",
                              (long long)s->step);
    CpuBackend *cpu = cpu_impl(be);
    const float bc1 = (float)(1.0 - pow((double)s->beta1, (double)s->step));
    const float bc2 = (float)(1.0 - pow((double)s->beta2, (double)s->step));
    const float lr = s->lr, b1 = s->beta1, b2 = s->beta2, eps = s->eps, wd = s->weight_decay;
    const int decoupled = s->decoupled_decay;
    const int nt = cpu_threads_for(cpu, count);
    CPU_OMP("omp parallel for simd num_threads(nt) schedule(static)")
    for (size_t i = 0; i < count; i++)
        param[i] = unet_k_adam(param[i], grad[i], &m[i], &v[i], lr, b1, b2, eps, wd, decoupled,
                               bc1, bc2);
    return UNET_OK;
}

void cpu_loss_install(UnetBackend *be)
{
    be->loss_forward_backward = cpu_loss_forward_backward;
    be->sgd_update = cpu_sgd_update;
    be->adam_update = cpu_adam_update;
}
