/* model-compare.c - three SGD steps of a model on two backends compared (see model-compare.h). */
#include "model-compare.h"

#include <math.h>
#include <stdlib.h>

void model_compare(UnetBackend *test, UnetBackend *ref, const UnetModelConfig *cfg, int n,
                   int near, UnetLossKind kind, TestRng *rng, const ModelCompare *mc,
                   double *worst_loss_rel, double *delta_nmse)
{
    const char *name = mc->name;
    UnetError err = { 0 };
    *worst_loss_rel = INFINITY;
    *delta_nmse = INFINITY;
    int side, out;
    CHECK(unet_model_valid_input_size(cfg, near, &side, &out) == 0);
    UnetBackend *be[2] = { test, ref };
    UnetModel *m[2] = { NULL, NULL };
    for (int b = 0; b < 2; b++) {
        m[b] = unet_model_new(cfg, be[b], &err);
        CHECK_MSG(m[b] != NULL, "%s on %s: %s", name, be[b]->name, err.message);
    }
    if (!m[0] || !m[1]) {
        unet_model_free(m[0]);
        unet_model_free(m[1]);
        return;
    }
    const size_t count = unet_model_param_count(m[0]);
    CHECK(count == unet_model_param_count(m[1]));
    const int in = cfg->in_channels, k = cfg->classes;
    size_t xn = (size_t)n * in * side * side, tn = (size_t)n * out * out;
    float *hx = malloc(xn * sizeof(float)), *ht = malloc(tn * sizeof(float));
    test_fill_uniform(rng, hx, xn, -1, 1);
    for (size_t i = 0; i < tn; i++)
        ht[i] = k == 1 ? (float)(test_rng_uniform(rng, 0, 1) < 0.4f)
                       : (float)(int)test_rng_uniform(rng, 0, (float)k - 0.001f);
    UnetTensor x[2], t[2], loss[2], dl[2];
    float *mom[2];
    for (int b = 0; b < 2; b++) {
        CHECK(be[b]->tensor_init(be[b], &x[b], n, in, side, side) == UNET_OK);
        CHECK(be[b]->tensor_upload(be[b], &x[b], hx) == UNET_OK);
        CHECK(be[b]->tensor_init(be[b], &t[b], n, 1, out, out) == UNET_OK);
        CHECK(be[b]->tensor_upload(be[b], &t[b], ht) == UNET_OK);
        CHECK(be[b]->tensor_init(be[b], &loss[b], 1, 1, 1, 1) == UNET_OK);
        CHECK(be[b]->tensor_init(be[b], &dl[b], n, k, out, out) == UNET_OK);
        mom[b] = be[b]->buffer_alloc(be[b], count);
        CHECK(mom[b] && be[b]->buffer_fill(be[b], mom[b], count, 0.0f) == UNET_OK);
    }
    UnetOptimizerStep sgd = { .lr = 0.01f, .momentum = 0.9f };
    double worst = 0.0;
    for (int step = 0; step < 3; step++) {
        float l[2] = { 0, 0 };
        for (int b = 0; b < 2; b++) {
            UnetTensor *logits = NULL;
            int ok = unet_model_zero_grad(m[b], &err) == UNET_OK &&
                     unet_model_forward(m[b], &x[b], &logits, 1, &err) == UNET_OK &&
                     unet_model_loss(m[b], logits, &t[b], NULL, NULL, kind, 1.0f, &loss[b],
                                     &dl[b], &err) == UNET_OK &&
                     unet_model_backward(m[b], &dl[b], &err) == UNET_OK;
            CHECK_MSG(ok, "%s step %d on %s: %s", name, step, be[b]->name, err.message);
            CHECK(be[b]->sgd_update(be[b], unet_model_param_arena(m[b]),
                                    unet_model_grad_arena(m[b]), mom[b], count, &sgd) == UNET_OK);
            CHECK(be[b]->tensor_download(be[b], &l[b], &loss[b]) == UNET_OK);
        }
        double rel = fabs((double)l[0] - l[1]) / fmax(fabs((double)l[1]), 1e-6);
        if (!(rel <= worst)) /* a NaN loss is the worst */
            worst = rel;
        CHECK_MSG(rel <= mc->loss_tol, "%s step %d: loss %.7g (%s) vs %.7g (%s)", name, step,
                  (double)l[0], mc->labels[0], (double)l[1], mc->labels[1]);
        printf("  %-22s side %3d step %d  loss %.6f (%s) vs %.6f (%s)  rel %.1e\n", name, side,
               step, (double)l[0], mc->labels[0], (double)l[1], mc->labels[1], rel);
    }
    float *p0 = malloc(count * sizeof(float)), *pc = malloc(count * sizeof(float));
    float *pr = malloc(count * sizeof(float));
    CHECK(unet_model_init_host(m[1], cfg->seed, p0, NULL, &err) == UNET_OK);
    CHECK(test->buffer_download(test, pc, unet_model_param_arena(m[0]), count) == UNET_OK);
    CHECK(ref->buffer_download(ref, pr, unet_model_param_arena(m[1]), count) == UNET_OK);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < count; i++) {
        double dc = (double)pc[i] - p0[i], dr = (double)pr[i] - p0[i];
        num += (dc - dr) * (dc - dr);
        den += dr * dr;
    }
    double nmse = den > 0.0 ? num / den : num;
    CHECK_MSG(den > 0.0 && nmse <= mc->delta_nmse, "%s: parameter change nmse %.3g above %.3g",
              name, nmse, mc->delta_nmse);
    printf("  %-22s %zu parameters, change after 3 steps: nmse %.2e (bound %.1e)\n", name, count,
           nmse, mc->delta_nmse);
    const UnetParamTable *buffers = unet_model_buffers(m[0]);
    if (buffers->total) {
        float *bc = malloc(buffers->total * sizeof(float));
        float *br = malloc(buffers->total * sizeof(float));
        CHECK(test->buffer_download(test, bc, unet_model_buffer_arena(m[0]), buffers->total) ==
              UNET_OK);
        CHECK(ref->buffer_download(ref, br, unet_model_buffer_arena(m[1]), buffers->total) ==
              UNET_OK);
        size_t where = 0;
        double diff = test_max_rel_diff(bc, br, buffers->total, &where);
        CHECK_MSG(diff <= mc->stats_tol, "%s: running statistics differ by %.3g at %zu", name,
                  diff, where);
        free(bc);
        free(br);
    }
    *worst_loss_rel = worst;
    *delta_nmse = nmse;
    for (int b = 0; b < 2; b++) {
        be[b]->tensor_release(be[b], &x[b]);
        be[b]->tensor_release(be[b], &t[b]);
        be[b]->tensor_release(be[b], &loss[b]);
        be[b]->tensor_release(be[b], &dl[b]);
        be[b]->buffer_free(be[b], mom[b]);
        unet_model_free(m[b]);
    }
    free(hx);
    free(ht);
    free(p0);
    free(pc);
    free(pr);
}
