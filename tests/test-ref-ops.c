/* test-ref-ops.c - the reference backend against hand-checked cases and PyTorch golden values. */
/*
 * Golden arrays: tests/ref-ops-golden.h, produced once by
 * `/usr/bin/python3 tests/gen-ref-ops-golden.py` with PyTorch 1.13 (see that
 * script for each case's module and arguments). Tolerances: the reference
 * computes in float with double sums and PyTorch in float, so results agree
 * to a few float ulps; 2e-6 relative (|a-b| / max(1,|b|)) leaves room for
 * that and nothing else - a wrong index or formula is off by >= 1e-2.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "ref-ops-golden.h"
#include "test-common.h"

#define TOL 2e-6
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static UnetBackend *be;

/* Tensor holding v (or NaN everywhere when v is NULL, so any element an op
 * forgets to write shows up). */
static UnetTensor tensor(int n, int c, int h, int w, const float *v)
{
    UnetTensor t;
    CHECK(be->tensor_init(be, &t, n, c, h, w) == UNET_OK);
    if (v)
        CHECK(be->tensor_upload(be, &t, v) == UNET_OK);
    else
        CHECK(be->tensor_fill(be, &t, NAN) == UNET_OK);
    return t;
}

static UnetTensor zeros(int n, int c, int h, int w)
{
    UnetTensor t = tensor(n, c, h, w, NULL);
    CHECK(be->tensor_fill(be, &t, 0.0f) == UNET_OK);
    return t;
}

static void expect_near(const char *what, const UnetTensor *t, const float *want, size_t count,
                        double scale, double tol)
{
    CHECK_MSG(unet_tensor_numel(t) == count, "%s: %zu values, golden has %zu", what,
              unet_tensor_numel(t), count);
    float *got = malloc(count * sizeof(float));
    float *ref = malloc(count * sizeof(float));
    CHECK(be->tensor_download(be, got, t) == UNET_OK);
    for (size_t i = 0; i < count; i++)
        ref[i] = (float)(want[i] * scale);
    size_t at;
    double d = test_max_rel_diff(got, ref, count, &at);
    CHECK_MSG(d <= tol, "%s: max rel diff %.3g at %zu (got %.9g, want %.9g)", what, d, at,
              (double)got[at], (double)ref[at]);
    free(got);
    free(ref);
}

#define EXPECT(what, t, golden) expect_near(what, t, golden, N_OF(golden), 1.0, TOL)
#define EXPECT2(what, t, golden) expect_near(what, t, golden, N_OF(golden), 2.0, TOL)

static void release(UnetTensor *t)
{
    be->tensor_release(be, t);
}

/* ---- convolutions ---------------------------------------------------------- */

/* conv_a: Conv2d(2,3,3) valid with bias on [2,2,5,4]; conv_b: Conv2d(2,2,3,
 * stride=2, padding=1, bias=False) on [1,2,5,6]. Backward twice: first
 * accumulate = 0 over a NaN-filled dx, then accumulate = 1, which doubles dx,
 * and dw/db are always added, so they double too. */
static void test_conv_golden(void)
{
    UnetTensor x = tensor(2, 2, 5, 4, conv_a_x), w = tensor(3, 2, 3, 3, conv_a_w);
    UnetTensor b = tensor(3, 1, 1, 1, conv_a_b), y = tensor(2, 3, 3, 2, NULL);
    UnetConvDesc d = { 3, 1, 0 };
    CHECK(be->conv2d_forward(be, &y, &x, &w, &b, &d) == UNET_OK);
    EXPECT("conv_a y", &y, conv_a_y);
    UnetTensor dy = tensor(2, 3, 3, 2, conv_a_dy), dx = tensor(2, 2, 5, 4, NULL);
    UnetTensor dw = zeros(3, 2, 3, 3), db = zeros(3, 1, 1, 1);
    CHECK(be->conv2d_backward(be, &dx, &dw, &db, &dy, &x, &w, &d, 0) == UNET_OK);
    EXPECT("conv_a dx", &dx, conv_a_dx);
    EXPECT("conv_a dw", &dw, conv_a_dw);
    EXPECT("conv_a db", &db, conv_a_db);
    CHECK(be->conv2d_backward(be, &dx, &dw, &db, &dy, &x, &w, &d, 1) == UNET_OK);
    EXPECT2("conv_a dx accumulated", &dx, conv_a_dx);
    EXPECT2("conv_a dw accumulated", &dw, conv_a_dw);
    EXPECT2("conv_a db accumulated", &db, conv_a_db);
    UnetTensor *all[] = { &x, &w, &b, &y, &dy, &dx, &dw, &db };
    for (size_t i = 0; i < N_OF(all); i++)
        release(all[i]);

    UnetTensor xb = tensor(1, 2, 5, 6, conv_b_x), wb = tensor(2, 2, 3, 3, conv_b_w);
    UnetTensor yb = tensor(1, 2, 3, 3, NULL);
    UnetConvDesc db2 = { 3, 2, 1 };
    CHECK(be->conv2d_forward(be, &yb, &xb, &wb, NULL, &db2) == UNET_OK);
    EXPECT("conv_b y", &yb, conv_b_y);
    UnetTensor dyb = tensor(1, 2, 3, 3, conv_b_dy), dxb = tensor(1, 2, 5, 6, NULL);
    UnetTensor dwb = zeros(2, 2, 3, 3);
    CHECK(be->conv2d_backward(be, &dxb, &dwb, NULL, &dyb, &xb, &wb, &db2, 0) == UNET_OK);
    EXPECT("conv_b dx", &dxb, conv_b_dx);
    EXPECT("conv_b dw", &dwb, conv_b_dw);
    UnetTensor *allb[] = { &xb, &wb, &yb, &dyb, &dxb, &dwb };
    for (size_t i = 0; i < N_OF(allb); i++)
        release(allb[i]);
}

/* 3x3 input, 2x2 kernel of ones, bias 1: each output is its window sum + 1. */
static void test_conv_hand(void)
{
    const float xv[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    const float wv[4] = { 1, 1, 1, 1 };
    const float bv[1] = { 1 };
    const float want[4] = { 13, 17, 25, 29 };
    UnetTensor x = tensor(1, 1, 3, 3, xv), w = tensor(1, 1, 2, 2, wv), b = tensor(1, 1, 1, 1, bv);
    UnetTensor y = tensor(1, 1, 2, 2, NULL);
    UnetConvDesc d = { 2, 1, 0 };
    CHECK(be->conv2d_forward(be, &y, &x, &w, &b, &d) == UNET_OK);
    EXPECT("conv hand", &y, want);

    /* Shape mismatches are refused with a message naming the op and shapes. */
    UnetTensor bad = tensor(1, 1, 3, 3, NULL);
    CHECK(be->conv2d_forward(be, &bad, &x, &w, &b, &d) == UNET_ERR_INVALID);
    CHECK_MSG(strstr(be->error.message, "conv2d_forward") &&
                  strstr(be->error.message, "[1,1,3,3]") && strstr(be->error.message, "[1,1,2,2]"),
              "message: %s", be->error.message);
    UnetTensor w3 = tensor(1, 2, 2, 2, NULL);
    CHECK(be->conv2d_forward(be, &y, &x, &w3, &b, &d) == UNET_ERR_INVALID);
    CHECK_MSG(strstr(be->error.message, "weight [1,2,2,2]"), "message: %s", be->error.message);
    UnetConvDesc big = { 5, 1, 0 };
    CHECK(be->conv2d_forward(be, &y, &x, &w, &b, &big) == UNET_ERR_INVALID);
    release(&w3);
    release(&bad);
    release(&x);
    release(&w);
    release(&b);
    release(&y);
}

static void test_upconv_golden(void)
{
    UnetTensor x = tensor(1, 3, 2, 3, upconv_x), w = tensor(3, 2, 2, 2, upconv_w);
    UnetTensor b = tensor(2, 1, 1, 1, upconv_b), y = tensor(1, 2, 4, 6, NULL);
    CHECK(be->upconv2x2_forward(be, &y, &x, &w, &b) == UNET_OK);
    EXPECT("upconv y", &y, upconv_y);
    UnetTensor dy = tensor(1, 2, 4, 6, upconv_dy), dx = tensor(1, 3, 2, 3, NULL);
    UnetTensor dw = zeros(3, 2, 2, 2), db = zeros(2, 1, 1, 1);
    CHECK(be->upconv2x2_backward(be, &dx, &dw, &db, &dy, &x, &w, 0) == UNET_OK);
    EXPECT("upconv dx", &dx, upconv_dx);
    EXPECT("upconv dw", &dw, upconv_dw);
    EXPECT("upconv db", &db, upconv_db);
    CHECK(be->upconv2x2_backward(be, &dx, &dw, &db, &dy, &x, &w, 1) == UNET_OK);
    EXPECT2("upconv dx accumulated", &dx, upconv_dx);
    EXPECT2("upconv dw accumulated", &dw, upconv_dw);
    UnetTensor *all[] = { &x, &w, &b, &y, &dy, &dx, &dw, &db };
    for (size_t i = 0; i < N_OF(all); i++)
        release(all[i]);
}

/* ---- pooling and resampling ---------------------------------------------------- */

/* 5x5 input (floor to 2x2); plane 1 is all ties: the gradient goes to the
 * first maximum in row-major window order, as in PyTorch. */
static void test_pool_golden(void)
{
    UnetTensor x = tensor(1, 2, 5, 5, pool_x), y = tensor(1, 2, 2, 2, NULL);
    CHECK(be->maxpool2x2_forward(be, &y, &x) == UNET_OK);
    EXPECT("maxpool y", &y, pool_y);
    UnetTensor dy = tensor(1, 2, 2, 2, pool_dy), dx = tensor(1, 2, 5, 5, NULL);
    CHECK(be->maxpool2x2_backward(be, &dx, &dy, &x, &y, 0) == UNET_OK);
    EXPECT("maxpool dx", &dx, pool_dx);
    CHECK(be->maxpool2x2_backward(be, &dx, &dy, &x, &y, 1) == UNET_OK);
    EXPECT2("maxpool dx accumulated", &dx, pool_dx);
    UnetTensor *all[] = { &x, &y, &dy, &dx };
    for (size_t i = 0; i < N_OF(all); i++)
        release(all[i]);
}

static void test_resample_golden(void)
{
    UnetTensor x = tensor(1, 2, 3, 4, up2_x), y = tensor(1, 2, 6, 8, NULL);
    CHECK(be->upsample2x_forward(be, &y, &x) == UNET_OK);
    EXPECT("upsample2x y", &y, up2_y);
    UnetTensor dy = tensor(1, 2, 6, 8, up2_dy), dx = tensor(1, 2, 3, 4, NULL);
    CHECK(be->upsample2x_backward(be, &dx, &dy, 0) == UNET_OK);
    EXPECT("upsample2x dx", &dx, up2_dx);
    CHECK(be->upsample2x_backward(be, &dx, &dy, 1) == UNET_OK);
    EXPECT2("upsample2x dx accumulated", &dx, up2_dx);
    release(&x);
    release(&y);
    release(&dy);
    release(&dx);

    struct {
        const char *name;
        int h, w, oh, ow;
        const float *x, *y, *dy, *dx;
    } cases[] = {
        { "resize 5x7->3x4", 5, 7, 3, 4, resize_down_x, resize_down_y, resize_down_dy,
          resize_down_dx },
        { "resize 3x2->7x5", 3, 2, 7, 5, resize_up_x, resize_up_y, resize_up_dy, resize_up_dx },
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        size_t nin = (size_t)cases[i].h * cases[i].w, nout = (size_t)cases[i].oh * cases[i].ow;
        UnetTensor rx = tensor(1, 1, cases[i].h, cases[i].w, cases[i].x);
        UnetTensor ry = tensor(1, 1, cases[i].oh, cases[i].ow, NULL);
        CHECK(be->resize_bilinear_forward(be, &ry, &rx) == UNET_OK);
        expect_near(cases[i].name, &ry, cases[i].y, nout, 1.0, TOL);
        UnetTensor rdy = tensor(1, 1, cases[i].oh, cases[i].ow, cases[i].dy);
        UnetTensor rdx = tensor(1, 1, cases[i].h, cases[i].w, NULL);
        CHECK(be->resize_bilinear_backward(be, &rdx, &rdy, 0) == UNET_OK);
        expect_near(cases[i].name, &rdx, cases[i].dx, nin, 1.0, TOL);
        release(&rx);
        release(&ry);
        release(&rdy);
        release(&rdx);
    }
}

/* Skip [1,1,5,6] cropped to 2x3: offsets (5-2)/2 = 1 and (6-3)/2 = 1 (floor). */
static void test_crop_concat_hand(void)
{
    float sv[30], uv[6];
    for (int i = 0; i < 30; i++)
        sv[i] = (float)i;
    for (int i = 0; i < 6; i++)
        uv[i] = 100.0f + (float)i;
    const float want[12] = { 7, 8, 9, 13, 14, 15, 100, 101, 102, 103, 104, 105 };
    UnetTensor skip = tensor(1, 1, 5, 6, sv), up = tensor(1, 1, 2, 3, uv),
               y = tensor(1, 2, 2, 3, NULL);
    CHECK(be->crop_concat_forward(be, &y, &skip, &up) == UNET_OK);
    EXPECT("crop_concat y", &y, want);

    /* Backward: dskip is dy's first channel in the centre and 0 around it. */
    UnetTensor dskip = tensor(1, 1, 5, 6, NULL), dup = tensor(1, 1, 2, 3, NULL);
    CHECK(be->crop_concat_backward(be, &dskip, &dup, &y, 0, 0) == UNET_OK);
    float ds[30];
    be->tensor_download(be, ds, &dskip);
    for (int i = 0; i < 30; i++) {
        int r = i / 6, c = i % 6;
        float w = (r >= 1 && r < 3 && c >= 1 && c < 4) ? sv[i] : 0.0f;
        CHECK_MSG(ds[i] == w, "dskip[%d] = %g, want %g", i, ds[i], w);
    }
    EXPECT("crop_concat dup", &dup, uv);
    CHECK(be->crop_concat_backward(be, &dskip, &dup, &y, 1, 1) == UNET_OK);
    be->tensor_download(be, ds, &dskip);
    CHECK(ds[7] == 14.0f && ds[0] == 0.0f);
    EXPECT2("crop_concat dup accumulated", &dup, uv);

    /* A skip smaller than up cannot be cropped. */
    UnetTensor y2 = tensor(1, 2, 5, 6, NULL);
    CHECK(be->crop_concat_forward(be, &y2, &up, &skip) == UNET_ERR_INVALID);
    CHECK_MSG(strstr(be->error.message, "crop_concat_forward") &&
                  strstr(be->error.message, "[1,1,2,3]"),
              "message: %s", be->error.message);
    UnetTensor *all[] = { &skip, &up, &y, &dskip, &dup, &y2 };
    for (size_t i = 0; i < N_OF(all); i++)
        release(all[i]);
}

/* ---- activations and heads -------------------------------------------------------- */

static void test_activation_hand(void)
{
    const float xv[4] = { -2.0f, -0.5f, 0.0f, 3.0f };
    const float relu[4] = { 0, 0, 0, 3 };
    const float leaky[4] = { -0.02f, -0.005f, 0, 3 };
    const float dyv[4] = { 1, 2, 3, 4 };
    const float drelu[4] = { 0, 0, 0, 4 };
    const float dleaky[4] = { 0.01f, 0.02f, 0.03f, 4 };
    UnetTensor x = tensor(1, 1, 2, 2, xv), y = tensor(1, 1, 2, 2, NULL);
    UnetTensor dy = tensor(1, 1, 2, 2, dyv), dx = tensor(1, 1, 2, 2, NULL);
    CHECK(be->activation_forward(be, &y, &x, UNET_ACT_RELU, 0.0f) == UNET_OK);
    EXPECT("relu", &y, relu);
    CHECK(be->activation_backward(be, &dx, &dy, &y, UNET_ACT_RELU, 0.0f, 0) == UNET_OK);
    EXPECT("relu grad", &dx, drelu);
    CHECK(be->activation_forward(be, &y, &x, UNET_ACT_LEAKY, 0.01f) == UNET_OK);
    EXPECT("leaky", &y, leaky);
    CHECK(be->activation_backward(be, &dx, &dy, &y, UNET_ACT_LEAKY, 0.01f, 0) == UNET_OK);
    EXPECT("leaky grad", &dx, dleaky);
    CHECK(be->activation_backward(be, &dx, &dy, &y, UNET_ACT_LEAKY, 0.01f, 1) == UNET_OK);
    EXPECT2("leaky grad accumulated", &dx, dleaky);
    /* In place. */
    CHECK(be->activation_forward(be, &x, &x, UNET_ACT_RELU, 0.0f) == UNET_OK);
    EXPECT("relu in place", &x, relu);

    const float hv[6] = { 0.0f, 100.0f, -100.0f, 1.0f, 2.0f, 3.0f };
    UnetTensor h = tensor(1, 1, 2, 3, hv), s = tensor(1, 1, 2, 3, NULL);
    CHECK(be->sigmoid_forward(be, &s, &h) == UNET_OK);
    float sv[6];
    be->tensor_download(be, sv, &s);
    CHECK(sv[0] == 0.5f && sv[1] == 1.0f && sv[2] >= 0.0f && sv[2] < 1e-40f);
    CHECK(fabsf(sv[3] - 0.7310586f) < 1e-7f);
    /* Softmax over 3 channels of 2 pixels, with a large logit that would overflow exp. */
    const float lv[6] = { 1.0f, 1000.0f, 2.0f, 1000.0f, 3.0f, 0.0f };
    UnetTensor l = tensor(1, 3, 1, 2, lv), p = tensor(1, 3, 1, 2, NULL);
    CHECK(be->softmax_forward(be, &p, &l) == UNET_OK);
    float pv[6];
    be->tensor_download(be, pv, &p);
    double e = exp(1.0) + exp(2.0) + exp(3.0);
    CHECK(fabs(pv[0] - exp(1.0) / e) < 1e-7 && fabs(pv[2] - exp(2.0) / e) < 1e-7 &&
          fabs(pv[4] - exp(3.0) / e) < 1e-7);
    CHECK(fabsf(pv[1] - 0.5f) < 1e-7f && fabsf(pv[3] - 0.5f) < 1e-7f && pv[5] == 0.0f);
    UnetTensor *all[] = { &x, &y, &dy, &dx, &h, &s, &l, &p };
    for (size_t i = 0; i < N_OF(all); i++)
        release(all[i]);
}

/* ---- normalisation -------------------------------------------------------------------- */

/* BatchNorm2d(3, momentum=0.1): one training step (y, running stats with the
 * unbiased variance, backward), then evaluation with the new running stats. */
static void test_batchnorm_golden(void)
{
    UnetTensor x = tensor(2, 3, 2, 3, bn_x), y = tensor(2, 3, 2, 3, NULL);
    UnetTensor g = tensor(3, 1, 1, 1, bn_gamma), b = tensor(3, 1, 1, 1, bn_beta);
    UnetTensor rm = tensor(3, 1, 1, 1, bn_rm0), rv = tensor(3, 1, 1, 1, bn_rv0);
    UnetTensor sm = tensor(1, 3, 1, 1, NULL), si = tensor(1, 3, 1, 1, NULL);
    CHECK(be->batchnorm_forward(be, &y, &x, &g, &b, &rm, &rv, &sm, &si, 0.1f, 1e-5f, 1) == UNET_OK);
    EXPECT("batchnorm y", &y, bn_y);
    EXPECT("batchnorm running_mean", &rm, bn_rm1);
    EXPECT("batchnorm running_var", &rv, bn_rv1);
    UnetTensor dy = tensor(2, 3, 2, 3, bn_dy), dx = tensor(2, 3, 2, 3, NULL);
    UnetTensor dg = zeros(3, 1, 1, 1), db = zeros(3, 1, 1, 1);
    CHECK(be->batchnorm_backward(be, &dx, &dg, &db, &dy, &x, &g, &sm, &si, 0) == UNET_OK);
    EXPECT("batchnorm dx", &dx, bn_dx);
    EXPECT("batchnorm dgamma", &dg, bn_dgamma);
    EXPECT("batchnorm dbeta", &db, bn_dbeta);
    CHECK(be->batchnorm_backward(be, &dx, &dg, &db, &dy, &x, &g, &sm, &si, 1) == UNET_OK);
    EXPECT2("batchnorm dx accumulated", &dx, bn_dx);
    EXPECT2("batchnorm dgamma accumulated", &dg, bn_dgamma);

    UnetTensor ex = tensor(1, 3, 2, 2, bn_eval_x), ey = tensor(1, 3, 2, 2, NULL);
    CHECK(be->batchnorm_forward(be, &ey, &ex, &g, &b, &rm, &rv, NULL, NULL, 0.1f, 1e-5f, 0) ==
          UNET_OK);
    EXPECT("batchnorm eval y", &ey, bn_eval_y);
    EXPECT("batchnorm eval leaves running_mean", &rm, bn_rm1);

    /* One value per channel cannot be normalised in training (PyTorch refuses too). */
    UnetTensor one = tensor(1, 3, 1, 1, NULL), oy = tensor(1, 3, 1, 1, NULL);
    CHECK(be->batchnorm_forward(be, &oy, &one, &g, &b, &rm, &rv, &sm, &si, 0.1f, 1e-5f, 1) ==
          UNET_ERR_INVALID);
    UnetTensor *all[] = { &x,  &y,  &g,  &b,  &rm, &rv, &sm,  &si,
                          &dy, &dx, &dg, &db, &ex, &ey, &one, &oy };
    for (size_t i = 0; i < N_OF(all); i++)
        release(all[i]);
}

static void test_instancenorm_golden(void)
{
    UnetTensor x = tensor(2, 2, 3, 3, in_x), y = tensor(2, 2, 3, 3, NULL);
    UnetTensor g = tensor(2, 1, 1, 1, in_gamma), b = tensor(2, 1, 1, 1, in_beta);
    UnetTensor sm = tensor(2, 2, 1, 1, NULL), si = tensor(2, 2, 1, 1, NULL);
    CHECK(be->instancenorm_forward(be, &y, &x, &g, &b, &sm, &si, 1e-5f) == UNET_OK);
    EXPECT("instancenorm y", &y, in_y);
    UnetTensor dy = tensor(2, 2, 3, 3, in_dy), dx = tensor(2, 2, 3, 3, NULL);
    UnetTensor dg = zeros(2, 1, 1, 1), db = zeros(2, 1, 1, 1);
    CHECK(be->instancenorm_backward(be, &dx, &dg, &db, &dy, &x, &g, &sm, &si, 0) == UNET_OK);
    EXPECT("instancenorm dx", &dx, in_dx);
    EXPECT("instancenorm dgamma", &dg, in_dgamma);
    EXPECT("instancenorm dbeta", &db, in_dbeta);
    UnetTensor *all[] = { &x, &y, &g, &b, &sm, &si, &dy, &dx, &dg, &db };
    for (size_t i = 0; i < N_OF(all); i++)
        release(all[i]);
}

/* ---- losses ---------------------------------------------------------------------------------- */

static void loss_case(const char *name, UnetLossKind kind, int n, int k, int h, int w,
                      const float *logits, const float *target, const float *weight,
                      const float *cw, const float *want_loss, const float *want_grad)
{
    UnetTensor x = tensor(n, k, h, w, logits), t = tensor(n, 1, h, w, target);
    UnetTensor wt = { 0 };
    if (weight)
        wt = tensor(n, 1, h, w, weight);
    UnetTensor l = tensor(1, 1, 1, 1, NULL), d = tensor(n, k, h, w, NULL);
    CHECK(be->loss_forward_backward(be, &l, &d, &x, &t, weight ? &wt : NULL, cw, kind, 1.0f) ==
          UNET_OK);
    size_t count = (size_t)n * k * h * w;
    char what[96];
    snprintf(what, sizeof what, "%s loss", name);
    expect_near(what, &l, want_loss, 1, 1.0, TOL);
    snprintf(what, sizeof what, "%s dlogits", name);
    expect_near(what, &d, want_grad, count, 1.0, TOL);
    /* grad_scale scales the gradient only. */
    CHECK(be->loss_forward_backward(be, &l, &d, &x, &t, weight ? &wt : NULL, cw, kind, 0.5f) ==
          UNET_OK);
    expect_near(what, &d, want_grad, count, 0.5, TOL);
    expect_near(name, &l, want_loss, 1, 1.0, TOL);
    release(&x);
    release(&t);
    if (weight)
        release(&wt);
    release(&l);
    release(&d);
}

static void test_losses_golden(void)
{
    loss_case("softmax ce", UNET_LOSS_SOFTMAX_CE, 2, 3, 2, 3, ce_logits, ce_target, ce_w, ce_cw,
              ce_loss, ce_dlogits);
    loss_case("bce", UNET_LOSS_BCE, 2, 1, 2, 3, bce_logits, bce_target, bce_w, NULL, bce_loss,
              bce_dlogits);
    loss_case("dice K=1", UNET_LOSS_DICE, 2, 1, 3, 3, dice1_logits, dice1_target, dice1_w, NULL,
              dice1_loss, dice1_dlogits);
    loss_case("dice K=3", UNET_LOSS_DICE, 2, 3, 2, 3, dice3_logits, dice3_target, NULL, NULL,
              dice3_loss, dice3_dlogits);

    /* A target that is not a class id is refused, naming the pixel. */
    float bad_target[12];
    memcpy(bad_target, ce_target, sizeof bad_target);
    bad_target[4] = 3.0f;
    UnetTensor x = tensor(2, 3, 2, 3, ce_logits), t = tensor(2, 1, 2, 3, bad_target);
    UnetTensor l = tensor(1, 1, 1, 1, NULL);
    CHECK(be->loss_forward_backward(be, &l, NULL, &x, &t, NULL, NULL, UNET_LOSS_SOFTMAX_CE, 1.0f) ==
          UNET_ERR_INVALID);
    CHECK_MSG(strstr(be->error.message, "target value 3") && strstr(be->error.message, "0..2"),
              "message: %s", be->error.message);
    /* BCE needs one channel. */
    CHECK(be->loss_forward_backward(be, &l, NULL, &x, &t, NULL, NULL, UNET_LOSS_BCE, 1.0f) ==
          UNET_ERR_INVALID);
    release(&x);
    release(&t);
    release(&l);
}

/* ---- optimizers --------------------------------------------------------------------------- */

static void opt_case(const char *name, const UnetOptimizerStep *base, int adam, const float *want)
{
    float p[7], m[7] = { 0 }, v[7] = { 0 };
    memcpy(p, opt_p0, sizeof p);
    const float *grads[2] = { opt_g1, opt_g2 };
    UnetOptimizerStep s = *base;
    for (int step = 1; step <= 2; step++) {
        s.step = step;
        if (adam)
            CHECK(be->adam_update(be, p, grads[step - 1], m, v, 7, &s) == UNET_OK);
        else
            CHECK(be->sgd_update(be, p, grads[step - 1], m, 7, &s) == UNET_OK);
    }
    size_t at;
    double d = test_max_rel_diff(p, want, 7, &at);
    CHECK_MSG(d <= TOL, "%s: max rel diff %.3g at %zu (got %.9g, want %.9g)", name, d, at,
              (double)p[at], (double)want[at]);
}

static void test_optimizers_golden(void)
{
    UnetOptimizerStep sgd = { .lr = 0.1f, .momentum = 0.9f, .nesterov = 1, .weight_decay = 0.01f };
    opt_case("sgd nesterov", &sgd, 0, opt_sgd_nesterov);
    sgd.nesterov = 0;
    sgd.weight_decay = 0.0f;
    opt_case("sgd momentum", &sgd, 0, opt_sgd_momentum);
    UnetOptimizerStep adam = {
        .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f
    };
    opt_case("adam", &adam, 1, opt_adam);
    adam.decoupled_decay = 1;
    adam.weight_decay = 0.1f;
    opt_case("adamw", &adam, 1, opt_adamw);
    adam.step = 0;
    float p = 0, g = 0, m = 0, v = 0;
    CHECK(be->adam_update(be, &p, &g, &m, &v, 1, &adam) == UNET_ERR_INVALID);
}

/* ---- memory ---------------------------------------------------------------------------------- */

static void test_memory(void)
{
    CHECK(be->buffer_alloc(be, SIZE_MAX / 2) == NULL);
    CHECK(be->error.status == UNET_ERR_NOMEM && strstr(be->error.message, "buffer_alloc"));
    UnetTensor t;
    CHECK(be->tensor_init(be, &t, 1, 0, 4, 4) == UNET_ERR_INVALID);
    float *buf = be->buffer_alloc(be, 12);
    CHECK(buf != NULL);
    CHECK(be->buffer_fill(be, buf, 12, 2.5f) == UNET_OK);
    UnetTensor view;
    be->tensor_view(be, &view, buf, 1, 3, 2, 2);
    CHECK(view.is_view && view.layout == 0 && view.data == buf);
    float host[12];
    CHECK(be->tensor_download(be, host, &view) == UNET_OK);
    CHECK(host[0] == 2.5f && host[11] == 2.5f);
    be->tensor_release(be, &view); /* does not free buf */
    CHECK(view.data == NULL);
    CHECK(be->buffer_download(be, host, buf, 12) == UNET_OK && host[5] == 2.5f);
    be->buffer_free(be, buf);
    CHECK(be->synchronize(be) == UNET_OK);
}

int main(void)
{
    UnetError err = { 0 };
    be = unet_backend_reference_new(&err);
    if (!be) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    CHECK(!strcmp(be->name, "reference"));
    test_conv_hand();
    test_conv_golden();
    test_upconv_golden();
    test_pool_golden();
    test_resample_golden();
    test_crop_concat_hand();
    test_activation_hand();
    test_batchnorm_golden();
    test_instancenorm_golden();
    test_losses_golden();
    test_optimizers_golden();
    test_memory();
    unet_backend_destroy(be);
    return test_finish("ref-ops");
}
