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

static double loss_with(Run *r, float *slot, float v)
{
    r->be->buffer_upload(r->be, slot, &v, 1);
    return forward_loss(r);
}

/* Float32 losses resolve about 1e-7, so steps are h = 5e-3 and 1e-2 and
 * estimates Richardson-extrapolated (error O(h^2)). A relu or max-pool kink
 * close to the point spoils the estimates that straddle it but leaves the
 * one-sided estimate on its other side clean: the analytic gradient must
 * match one of central, left and right; when it matches none while those
 * disagree with each other the point sits between kinks and is skipped.
 * Returns 1 checked, 0 skipped, -1 mismatch. */
typedef struct Fd {
    double central, left, right;
} Fd;

static Fd fd_estimates(double lm2, double lm1, double l0, double lp1, double lp2, double h)
{
    Fd e;
    e.central = (4 * (lp1 - lm1) / (2 * h) - (lp2 - lm2) / (4 * h)) / 3;
    e.right = 2 * (lp1 - l0) / h - (lp2 - l0) / (2 * h);
    e.left = 2 * (l0 - lm1) / h - (l0 - lm2) / (2 * h);
    return e;
}

static int compare(const char *label, const char *what, double g, Fd e)
{
    const double rtol = 2e-2, atol_c = 1e-4, atol_s = 3e-4;
    if (fabs(g - e.central) <= atol_c + rtol * fabs(g) ||
        fabs(g - e.right) <= atol_s + rtol * fabs(g) || fabs(g - e.left) <= atol_s + rtol * fabs(g))
        return 1;
    const double spread = fmax(fabs(e.right - e.left),
                               fmax(fabs(e.central - e.left), fabs(e.central - e.right)));
    if (spread > atol_s + rtol * fabs(e.central))
        return 0;
    fprintf(stderr, "%s: %s: analytic %.6g, finite differences %.6g (left %.6g, right %.6g)\n",
            label, what, g, e.central, e.left, e.right);
    return -1;
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

    /* He init leaves biases and norm shifts at exactly 0: a dead channel then
     * feeds a constant to its norm, which outputs exactly 0 into the next
     * relu, a kink no difference quotient can see past. Move every parameter
     * off such points. */
    const UnetParamTable *t = unet_model_params(r.m);
    float *grad = malloc(t->total * sizeof(float)), *param = malloc(t->total * sizeof(float));
    be->buffer_download(be, param, unet_model_param_arena(r.m), t->total);
    for (size_t i = 0; i < t->total; i++)
        param[i] += test_rng_uniform(&rng, -0.2f, 0.2f);
    be->buffer_upload(be, unet_model_param_arena(r.m), param, t->total);

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
    be->buffer_download(be, grad, unet_model_grad_arena(r.m), t->total);
    size_t nonzero = 0;
    for (size_t i = 0; i < t->total; i++)
        nonzero += grad[i] != 0.0f;
    CHECK_MSG(nonzero > t->total / 2, "%s: only %zu of %zu gradients are non-zero", label,
              nonzero, t->total);

    /* one random element of every slice */
    int checked = 0, skipped = 0;
    float *arena = unet_model_param_arena(r.m);
    for (size_t s = 0; s < t->len; s++) {
        const UnetParamInfo *p = &t->items[s];
        size_t i = p->offset + (size_t)test_rng_uniform(&rng, 0.0f, (float)p->count - 1e-3f);
        const double h = 5e-3;
        const float w0 = param[i];
        double lm2 = loss_with(&r, arena + i, (float)(w0 - 2 * h));
        double lm1 = loss_with(&r, arena + i, (float)(w0 - h));
        double lp1 = loss_with(&r, arena + i, (float)(w0 + h));
        double lp2 = loss_with(&r, arena + i, (float)(w0 + 2 * h));
        be->buffer_upload(be, arena + i, &w0, 1);
        char what[160];
        snprintf(what, sizeof what, "%s[%zu]", p->name, i - p->offset);
        int res = compare(label, what, grad[i], fd_estimates(lm2, lm1, l0, lp1, lp2, h));
        CHECK_MSG(res >= 0, "%s: gradient of %s is wrong", label, what);
        checked += res == 1;
        skipped += res == 0;
    }
    CHECK_MSG(skipped * 4 <= (int)t->len, "%s: %d of %zu points sat between kinks", label,
              skipped, t->len);

    /* the loss glue: dlogits against differences of the loss in the logits */
    CHECK(unet_model_forward(r.m, &r.x, &logits, 1, &err) == UNET_OK);
    const size_t nl = unet_tensor_numel(logits);
    float *lh = malloc(nl * sizeof(float)), *dh = malloc(nl * sizeof(float));
    be->tensor_download(be, lh, logits);
    CHECK(loss_of(&r, logits, &r.dlogits, &l0) == UNET_OK);
    be->tensor_download(be, dh, &r.dlogits);
    for (int k = 0; k < 6; k++) {
        size_t i = (size_t)test_rng_uniform(&rng, 0.0f, (float)nl - 1e-3f);
        const double h = 5e-3;
        const float keep = lh[i];
        double l[5];
        for (int j = -2; j <= 2; j++) {
            lh[i] = (float)(keep + j * h);
            be->tensor_upload(be, logits, lh);
            loss_of(&r, logits, NULL, &l[j + 2]);
        }
        lh[i] = keep;
        be->tensor_upload(be, logits, lh);
        char what[64];
        snprintf(what, sizeof what, "dlogits[%zu]", i);
        CHECK_MSG(compare(label, what, dh[i], fd_estimates(l[0], l[1], l[2], l[3], l[4], h)) == 1,
                  "%s: %s is wrong", label, what);
    }
    printf("%-44s %dx%d -> %dx%d, %zu params: %d slices checked, %d between kinks, loss %.5f\n", label,
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
