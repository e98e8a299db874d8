/* test-parity-ref-self.c - the op harness on itself: ref vs ref exact, planted bugs caught. */
#include <string.h>

#include "backend.h"
#include "op-harness.h"
#include "test-common.h"

/* The real reference ops, called by the sabotaged wrappers below. */
static UnetBackend *real;

/* Bug: dx always overwritten, whatever accumulate says. */
static UnetStatus conv_backward_no_acc(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                       UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                                       const UnetTensor *w, const UnetConvDesc *d, int accumulate)
{
    UnetStatus st = real->conv2d_backward(real, dx, dw, db, dy, x, w, d, 0);
    be->error = real->error;
    return st;
}

/* Bug: nesterov ignored. */
static UnetStatus sgd_no_nesterov(UnetBackend *be, float *param, const float *grad, float *buf,
                                  size_t count, const UnetOptimizerStep *s)
{
    UnetOptimizerStep t = *s;
    t.nesterov = 0;
    return real->sgd_update(real, param, grad, buf, count, &t);
}

/* Bug: running statistics updated with the wrong momentum. */
static UnetStatus bn_wrong_momentum(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                    const UnetTensor *gamma, const UnetTensor *beta, UnetTensor *rm,
                                    UnetTensor *rv, UnetTensor *sm, UnetTensor *si, float momentum,
                                    float eps, int training)
{
    return real->batchnorm_forward(real, y, x, gamma, beta, rm, rv, sm, si, 2.0f * momentum, eps,
                                   training);
}

/* Bug: grad_scale ignored. */
static UnetStatus loss_no_scale(UnetBackend *be, UnetTensor *loss, UnetTensor *dl,
                                const UnetTensor *logits, const UnetTensor *target,
                                const UnetTensor *weight, const float *cw, UnetLossKind kind,
                                float grad_scale)
{
    return real->loss_forward_backward(real, loss, dl, logits, target, weight, cw, kind, 1.0f);
}

/* Bug: a tiny error in one output element, far below any test's notice but the harness's. */
static UnetStatus upsample_off_by_a_bit(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    UnetStatus st = real->upsample2x_forward(real, y, x);
    y->data[unet_tensor_numel(y) - 1] += 1e-3f;
    return st;
}

/* Bug: an op that says it cannot do the work. */
static UnetStatus softmax_unsupported(UnetBackend *be, UnetTensor *y, const UnetTensor *x)
{
    return unet_error_set(&be->error, UNET_ERR_UNSUPPORTED, "softmax_forward: planted refusal");
}

static void expect_caught(UnetBackend *bad, UnetBackend *ref, const char *filter, int all)
{
    OpHarnessStats st;
    int failed = op_harness_compare_ex(bad, ref, 1e-5, filter, NULL, &st);
    CHECK_MSG(st.cases > 0, "filter '%s' selected no case", filter);
    CHECK_MSG(failed == st.failed, "return value %d != stats %d", failed, st.failed);
    if (all)
        CHECK_MSG(failed == st.cases, "'%s': %d of %d cases failed, expected all", filter, failed,
                  st.cases);
    else
        CHECK_MSG(failed > 0 && failed < st.cases,
                  "'%s': %d of %d cases failed, expected some but not all", filter, failed,
                  st.cases);
}

int main(void)
{
    UnetError err = { 0 };
    UnetBackend *ref = unet_backend_reference_new(&err);
    UnetBackend *same = unet_backend_reference_new(&err);
    real = unet_backend_reference_new(&err);
    if (!ref || !same || !real) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }

    /* Deterministic single-threaded code on identical inputs: bit-identical,
     * so tolerance 0 must pass every case. */
    OpHarnessStats st;
    int failed = op_harness_compare_ex(same, ref, 0.0, NULL, stdout, &st);
    CHECK_MSG(failed == 0, "%d cases differ between two reference backends", failed);
    CHECK(st.cases >= 60);
    CHECK(st.worst_max == 0.0);

    /* The filter selects by substring, several separated by commas. */
    OpHarnessStats some;
    op_harness_compare_ex(same, ref, 0.0, "maxpool,sgd", NULL, &some);
    CHECK(some.cases > 2 && some.cases < st.cases);

    /* Planted bugs: the harness must see each one, and only where it matters. */
    UnetBackend *bad = unet_backend_reference_new(&err);
    bad->name = "sabotaged";
    bad->conv2d_backward = conv_backward_no_acc;
    bad->sgd_update = sgd_no_nesterov;
    bad->batchnorm_forward = bn_wrong_momentum;
    bad->loss_forward_backward = loss_no_scale;
    bad->upsample2x_forward = upsample_off_by_a_bit;
    bad->softmax_forward = softmax_unsupported;
    expect_caught(bad, ref, "conv2d", 0);    /* only the accumulate cases with dx */
    expect_caught(bad, ref, "sgd", 0);       /* only the nesterov case */
    expect_caught(bad, ref, "batchnorm", 0); /* train cases (running stats), not eval */
    expect_caught(bad, ref, "loss", 0);      /* cases with scale != 1 and a gradient */
    expect_caught(bad, ref, "upsample2x", 1);
    expect_caught(bad, ref, "softmax", 1);
    OpHarnessStats clean;
    CHECK(op_harness_compare_ex(bad, ref, 1e-5, "upconv,maxpool,crop,instancenorm,adam", NULL,
                                &clean) == 0);
    CHECK(clean.cases > 10);

    unet_backend_destroy(bad);
    unet_backend_destroy(real);
    unet_backend_destroy(same);
    unet_backend_destroy(ref);
    return test_finish("parity-ref-self");
}
