/* test-grad-model.c - finite-difference check of whole-model gradients on the
 * reference backend: one random element of every parameter slice and a few
 * logits, through the real loss, for small variants of unet, light and fcn. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "test-common.h"

typedef struct Run {
    UnetBackend *be;
    UnetModel *m;
    UnetTensor x, target, weight, loss, dlogits;
    int weighted;
    float class_weight[8];
    int use_class_weight;
} Run;

static UnetStatus loss_of(Run *r, UnetTensor *logits, UnetTensor *dlogits, double *out)
{
    UnetError err = { 0 };
    UnetStatus st = unet_model_loss(r->m, logits, &r->target, r->weighted ? &r->weight : NULL,
                                    r->use_class_weight ? r->class_weight : NULL,
                                    UNET_LOSS_DEFAULT, 1.0f, &r->loss, dlogits, &err);
    if (st != UNET_OK) {
        fprintf(stderr, "loss: %s\n", err.message);
        return st;
    }
    float l = 0;
    r->be->tensor_download(r->be, &l, &r->loss);
    *out = l;
    return UNET_OK;
}

static double forward_loss(Run *r)
{
    UnetError err = { 0 };
    UnetTensor *logits;
    double l = NAN;
    if (unet_model_forward(r->m, &r->x, &logits, 1, &err) != UNET_OK) {
        fprintf(stderr, "forward: %s\n", err.message);
        return NAN;
    }
    loss_of(r, logits, NULL, &l);
    return l;
}

static double param_fd(Run *r, float *slot, float w0, double eps)
{
    float v = (float)(w0 + eps);
    r->be->buffer_upload(r->be, slot, &v, 1);
    double lp = forward_loss(r);
    v = (float)(w0 - eps);
    r->be->buffer_upload(r->be, slot, &v, 1);
    double lm = forward_loss(r);
    r->be->buffer_upload(r->be, slot, &w0, 1);
    return (lp - lm) / (2 * eps);
}

/* Compares an analytic gradient with central differences at eps and eps/2;
 * when those two disagree the step crossed a kink (relu, max pooling) and
 * the point is skipped. Returns 1 checked, 0 skipped, -1 mismatch. */
static int compare(const char *label, const char *what, double g, double fd1, double fd2,
                   double scale)
{
    const double atol = 2e-4 * scale, rtol = 3e-2;
    if (fabs(fd1 - fd2) > atol + rtol * fabs(fd2))
        return 0;
    double fd = (4 * fd2 - fd1) / 3; /* Richardson: cancels the eps^2 term */
    if (fabs(fd - g) > atol + rtol * fmax(fabs(g), fabs(fd))) {
        fprintf(stderr, "%s: %s: analytic %.6g, finite difference %.6g\n", label, what, g, fd);
        return -1;
    }
    return 1;
}

static void run_case(UnetBackend *be, const char *label, const UnetModelConfig *cfg, int n,
                     int near, int weighted, int class_weights, uint64_t seed)
{
    UnetError err = { 0 };
    Run r = { .be = be, .weighted = weighted, .use_class_weight = class_weights };
    r.m = unet_model_new(cfg, be, &err);
    CHECK_MSG(r.m != NULL, "%s: %s", label, err.message);
    if (!r.m)
        return;
    int in = 0, out = 0;
    CHECK(unet_model_valid_input_size(cfg, near, &in, &out) == 0);
    const int K = cfg->classes;
    TestRng rng;
    test_rng_seed(&rng, seed);

    be->tensor_init(be, &r.x, n, cfg->in_channels, in, in);
    be->tensor_init(be, &r.target, n, 1, out, out);
    be->tensor_init(be, &r.weight, n, 1, out, out);
    be->tensor_init(be, &r.loss, 1, 1, 1, 1);
    be->tensor_init(be, &r.dlogits, n, K, out, out);
    const size_t nx = unet_tensor_numel(&r.x), nt = unet_tensor_numel(&r.target);
    float *host = malloc((nx > nt ? nx : nt) * sizeof(float));
    test_fill_uniform(&rng, host, nx, -1.0f, 1.0f);
    be->tensor_upload(be, &r.x, host);
    for (size_t i = 0; i < nt; i++)
        host[i] = (float)(int)test_rng_uniform(&rng, 0.0f, (float)(K == 1 ? 2 : K) - 1e-3f);
    be->tensor_upload(be, &r.target, host);
    test_fill_uniform(&rng, host, nt, 0.5f, 2.0f);
    be->tensor_upload(be, &r.weight, host);
    for (int k = 0; k < K && k < 8; k++)
        r.class_weight[k] = 0.5f + 0.25f * (float)k;

    /* analytic gradients */
    UnetTensor *logits = NULL;
    double l0 = NAN;
    CHECK(unet_model_zero_grad(r.m, &err) == UNET_OK);
    CHECK_MSG(unet_model_forward(r.m, &r.x, &logits, 1, &err) == UNET_OK, "%s: %s", label,
              err.message);
    CHECK(loss_of(&r, logits, &r.dlogits, &l0) == UNET_OK);
    CHECK_MSG(unet_model_backward(r.m, &r.dlogits, &err) == UNET_OK, "%s: %s", label,
              err.message);
    CHECK(isfinite(l0));
    const UnetParamTable *t = unet_model_params(r.m);
    float *grad = malloc(t->total * sizeof(float)), *param = malloc(t->total * sizeof(float));
    be->buffer_download(be, grad, unet_model_grad_arena(r.m), t->total);
    be->buffer_download(be, param, unet_model_param_arena(r.m), t->total);
    double scale = 0;
    for (size_t i = 0; i < t->total; i++)
        scale = fmax(scale, fabs(grad[i]));
    CHECK_MSG(scale > 0, "%s: all gradients are zero", label);

    /* one random element of every slice */
    int checked = 0, skipped = 0;
    float *arena = unet_model_param_arena(r.m);
    for (size_t s = 0; s < t->len; s++) {
        const UnetParamInfo *p = &t->items[s];
        size_t i = p->offset + (size_t)test_rng_uniform(&rng, 0.0f, (float)p->count - 1e-3f);
        const double eps = 1e-2;
        double fd1 = param_fd(&r, arena + i, param[i], eps);
        double fd2 = param_fd(&r, arena + i, param[i], eps / 2);
        char what[160];
        snprintf(what, sizeof what, "%s[%zu]", p->name, i - p->offset);
        int res = compare(label, what, grad[i], fd1, fd2, scale);
        CHECK_MSG(res >= 0, "%s: gradient of %s is wrong", label, what);
        checked += res == 1;
        skipped += res == 0;
    }
    CHECK_MSG(skipped * 5 <= (int)t->len, "%s: %d of %zu points sat on kinks", label, skipped,
              t->len);

    /* the loss glue: dlogits against differences of the loss in the logits */
    CHECK(unet_model_forward(r.m, &r.x, &logits, 1, &err) == UNET_OK);
    const size_t nl = unet_tensor_numel(logits);
    float *lh = malloc(nl * sizeof(float)), *dh = malloc(nl * sizeof(float));
    be->tensor_download(be, lh, logits);
    CHECK(loss_of(&r, logits, &r.dlogits, &l0) == UNET_OK);
    be->tensor_download(be, dh, &r.dlogits);
    double dscale = 0;
    for (size_t i = 0; i < nl; i++)
        dscale = fmax(dscale, fabs(dh[i]));
    for (int k = 0; k < 6; k++) {
        size_t i = (size_t)test_rng_uniform(&rng, 0.0f, (float)nl - 1e-3f);
        double fd[2];
        for (int e = 0; e < 2; e++) {
            const double eps = e ? 5e-3 : 1e-2;
            double lp = 0, lm = 0;
            const float keep = lh[i];
            lh[i] = (float)(keep + eps);
            be->tensor_upload(be, logits, lh);
            loss_of(&r, logits, NULL, &lp);
            lh[i] = (float)(keep - eps);
            be->tensor_upload(be, logits, lh);
            loss_of(&r, logits, NULL, &lm);
            lh[i] = keep;
            be->tensor_upload(be, logits, lh);
            fd[e] = (lp - lm) / (2 * eps);
        }
        char what[64];
        snprintf(what, sizeof what, "dlogits[%zu]", i);
        CHECK_MSG(compare(label, what, dh[i], fd[0], fd[1], dscale) == 1,
                  "%s: %s is wrong", label, what);
    }
    printf("%-44s %dx%d -> %dx%d, %zu params: %d slices checked, %d on kinks, loss %.5f\n", label,
           in, in, out, out, t->total, checked, skipped, l0);

    free(lh);
    free(dh);
    free(grad);
    free(param);
    free(host);
    be->tensor_release(be, &r.x);
    be->tensor_release(be, &r.target);
    be->tensor_release(be, &r.weight);
    be->tensor_release(be, &r.loss);
    be->tensor_release(be, &r.dlogits);
    unet_model_free(r.m);
}

static UnetModelConfig unet_cfg(int depth, UnetPadding pad, UnetNorm norm, UnetUpsample up,
                                UnetActivation act, int classes)
{
    UnetModelConfig c;
    unet_model_config_default(&c, UNET_ARCH_UNET);
    c.depth = depth;
    c.base = 2;
    c.padding = pad;
    c.norm = norm;
    c.upsample = up;
    c.activation = act;
    c.leaky_slope = 0.1f;
    c.classes = classes;
    c.seed = 1234 + (uint64_t)depth;
    return c;
}

int main(void)
{
    UnetError err = { 0 };
    UnetBackend *be = unet_backend_reference_new(&err);
    if (!be) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    UnetModelConfig c;
    c = unet_cfg(2, UNET_PAD_VALID, UNET_NORM_BATCH, UNET_UP_TRANSPOSE, UNET_ACT_RELU, 1);
    run_case(be, "unet valid batchnorm transpose relu", &c, 2, 20, 1, 0, 1);
    c = unet_cfg(2, UNET_PAD_SAME, UNET_NORM_BATCH, UNET_UP_BILINEAR, UNET_ACT_LEAKY, 2);
    run_case(be, "unet same batchnorm bilinear leaky, 2 cls", &c, 2, 8, 0, 1, 2);
    c = unet_cfg(3, UNET_PAD_VALID, UNET_NORM_NONE, UNET_UP_BILINEAR, UNET_ACT_RELU, 1);
    c.in_channels = 2;
    run_case(be, "unet valid depth 3 bilinear relu, 2 in", &c, 1, 44, 1, 0, 3);
    c = unet_cfg(3, UNET_PAD_SAME, UNET_NORM_INSTANCE, UNET_UP_TRANSPOSE, UNET_ACT_LEAKY, 3);
    run_case(be, "unet same instancenorm transpose, 3 cls", &c, 1, 8, 1, 1, 4);

    unet_model_config_default(&c, UNET_ARCH_LIGHT);
    c.depth = 3;
    c.base = 2;
    c.in_channels = 2;
    c.classes = 3;
    c.leaky_slope = 0.1f;
    run_case(be, "light depth 3 base 2, 3 cls", &c, 2, 8, 1, 0, 5);

    unet_model_config_default(&c, UNET_ARCH_FCN);
    c.base = 2;
    c.classes = 2;
    c.leaky_slope = 0.1f;
    run_case(be, "fcn base 2, 2 cls, odd size", &c, 1, 13, 1, 1, 6);

    unet_backend_destroy(be);
    return test_finish("grad-model");
}
