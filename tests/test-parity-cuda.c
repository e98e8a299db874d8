/* test-parity-cuda.c - the CUDA backend against the reference backend: every op of the harness, U-Net-sized convolutions, large shapes that split reductions over many blocks, transfers larger than the staging buffer, deferred target errors, three training steps of each model, and the bf16 precision (every convolution pass within the bounds of bf16-check.h, 3 training steps of unet against fp32). Skips (77) without a GPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bf16-check.h"
#include "model-compare.h"
#include "model.h"
#include "op-harness.h"
#include "test-common.h"

/* fp32 parity (TF32 off): the brief's bar is NMSE <= 1e-6; the max error
 * (relative to the largest reference value) catches a few wrong elements. */
#define FP32_NMSE 1e-6
#define FP32_MAX 1e-3
/* TF32 tensor cores (10-bit mantissa) in convolutions. */
#define TF32_NMSE 1e-4
#define TF32_MAX 3e-2

static UnetBackend *cuda, *ref;
static TestRng rng;

/* One logical tensor on both backends; parameters (weights, biases, norm
 * affines and statistics, their gradients) are plain views of buffers, as the
 * models make them. */
typedef struct Pair {
    UnetTensor t[2]; /* [0] on cuda, [1] on ref */
    float *buf[2];   /* parameter buffers, NULL for activations */
} Pair;

static Pair pair_new(int n, int c, int h, int w, const float *host)
{
    Pair p;
    memset(&p, 0, sizeof p);
    UnetBackend *be[2] = { cuda, ref };
    for (int i = 0; i < 2; i++) {
        CHECK_MSG(be[i]->tensor_init(be[i], &p.t[i], n, c, h, w) == UNET_OK, "%s",
                  be[i]->error.message);
        if (host)
            CHECK_MSG(be[i]->tensor_upload(be[i], &p.t[i], host) == UNET_OK, "%s",
                      be[i]->error.message);
    }
    return p;
}

static Pair pair_random(int n, int c, int h, int w, float lo, float hi)
{
    size_t count = (size_t)n * c * h * w;
    float *host = malloc(count * sizeof(float));
    test_fill_uniform(&rng, host, count, lo, hi);
    Pair p = pair_new(n, c, h, w, host);
    free(host);
    return p;
}

static Pair param_random(int n, int c, int h, int w, float lo, float hi)
{
    size_t count = (size_t)n * c * h * w;
    float *host = malloc(count * sizeof(float));
    test_fill_uniform(&rng, host, count, lo, hi);
    Pair p;
    memset(&p, 0, sizeof p);
    UnetBackend *be[2] = { cuda, ref };
    for (int i = 0; i < 2; i++) {
        p.buf[i] = be[i]->buffer_alloc(be[i], count);
        CHECK_MSG(p.buf[i] && be[i]->buffer_upload(be[i], p.buf[i], host, count) == UNET_OK, "%s",
                  be[i]->error.message);
        be[i]->tensor_view(be[i], &p.t[i], p.buf[i], n, c, h, w);
    }
    free(host);
    return p;
}

static void pair_free(Pair *p)
{
    UnetBackend *be[2] = { cuda, ref };
    for (int i = 0; i < 2; i++) {
        be[i]->tensor_release(be[i], &p->t[i]);
        if (p->buf[i])
            be[i]->buffer_free(be[i], p->buf[i]);
    }
}

/* Downloads both sides and compares; returns the NMSE. */
static double compare(const char *what, const Pair *p, double max_tol, double nmse_tol)
{
    size_t count = unet_tensor_numel(&p->t[1]);
    float *a = malloc(count * sizeof(float)), *r = malloc(count * sizeof(float));
    CHECK_MSG(cuda->tensor_download(cuda, a, &p->t[0]) == UNET_OK, "%s: %s", what,
              cuda->error.message);
    CHECK(ref->tensor_download(ref, r, &p->t[1]) == UNET_OK);
    double num = 0.0, den = 0.0, diff = 0.0, big = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = (double)a[i] - r[i];
        num += d * d;
        den += (double)r[i] * r[i];
        diff = fmax(diff, fabs(d));
        big = fmax(big, fabs(r[i]));
        if (isnan(a[i]) != isnan(r[i]))
            diff = INFINITY;
    }
    double nmse = den > 0.0 ? num / den : num;
    double max = big > 0.0 ? diff / big : diff;
    CHECK_MSG(max <= max_tol && nmse <= nmse_tol, "%s: max error %.3g, nmse %.3g", what, max,
              nmse);
    printf("  %-44s max %.2e  nmse %.2e\n", what, max, nmse);
    free(a);
    free(r);
    return nmse;
}

#define BOTH(call_cuda, call_ref)                                                          \
    do {                                                                                   \
        UnetStatus s0_ = (call_cuda), s1_ = (call_ref);                                    \
        CHECK_MSG(s0_ == UNET_OK, "cuda: %s", cuda->error.message);                        \
        CHECK_MSG(s1_ == UNET_OK, "reference: %s", ref->error.message);                    \
    } while (0)

/* Convolutions with the default U-Net's channel counts (cuDNN picks other
 * algorithms for them than for the harness's small shapes). */
static void unet_sized_conv(int n, int ci, int h, int w, int co, int k, int pad, int acc)
{
    UnetConvDesc d = { k, 1, pad };
    int ho = unet_conv_out_size(h, &d), wo = unet_conv_out_size(w, &d);
    Pair x = pair_random(n, ci, h, w, -1, 1), wt = param_random(co, ci, k, k, -0.1f, 0.1f);
    Pair b = param_random(1, co, 1, 1, -0.5f, 0.5f), y = pair_new(n, co, ho, wo, NULL);
    Pair dy = pair_random(n, co, ho, wo, -1, 1), dx = pair_random(n, ci, h, w, -1, 1);
    Pair dw = param_random(co, ci, k, k, -1, 1), db = param_random(1, co, 1, 1, -1, 1);
    BOTH(cuda->conv2d_forward(cuda, &y.t[0], &x.t[0], &wt.t[0], &b.t[0], &d),
         ref->conv2d_forward(ref, &y.t[1], &x.t[1], &wt.t[1], &b.t[1], &d));
    BOTH(cuda->conv2d_backward(cuda, &dx.t[0], &dw.t[0], &db.t[0], &dy.t[0], &x.t[0], &wt.t[0], &d,
                               acc),
         ref->conv2d_backward(ref, &dx.t[1], &dw.t[1], &db.t[1], &dy.t[1], &x.t[1], &wt.t[1], &d,
                              acc));
    char what[96];
    snprintf(what, sizeof what, "conv%dx%d [%d,%d,%d,%d]->%d y", k, k, n, ci, h, w, co);
    compare(what, &y, FP32_MAX, FP32_NMSE);
    compare("  dx", &dx, FP32_MAX, FP32_NMSE);
    compare("  dw", &dw, FP32_MAX, FP32_NMSE);
    compare("  db", &db, FP32_MAX, FP32_NMSE);
    Pair *all[] = { &x, &wt, &b, &y, &dy, &dx, &dw, &db };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pair_free(all[i]);
}

static void unet_sized_upconv(int n, int ci, int h, int w, int co, int acc)
{
    Pair x = pair_random(n, ci, h, w, -1, 1), wt = param_random(ci, co, 2, 2, -0.1f, 0.1f);
    Pair b = param_random(1, co, 1, 1, -0.5f, 0.5f), y = pair_new(n, co, 2 * h, 2 * w, NULL);
    Pair dy = pair_random(n, co, 2 * h, 2 * w, -1, 1), dx = pair_random(n, ci, h, w, -1, 1);
    Pair dw = param_random(ci, co, 2, 2, -1, 1), db = param_random(1, co, 1, 1, -1, 1);
    BOTH(cuda->upconv2x2_forward(cuda, &y.t[0], &x.t[0], &wt.t[0], &b.t[0]),
         ref->upconv2x2_forward(ref, &y.t[1], &x.t[1], &wt.t[1], &b.t[1]));
    BOTH(cuda->upconv2x2_backward(cuda, &dx.t[0], &dw.t[0], &db.t[0], &dy.t[0], &x.t[0], &wt.t[0],
                                  acc),
         ref->upconv2x2_backward(ref, &dx.t[1], &dw.t[1], &db.t[1], &dy.t[1], &x.t[1], &wt.t[1],
                                 acc));
    char what[96];
    snprintf(what, sizeof what, "upconv [%d,%d,%d,%d]->%d y", n, ci, h, w, co);
    compare(what, &y, FP32_MAX, FP32_NMSE);
    compare("  dx", &dx, FP32_MAX, FP32_NMSE);
    compare("  dw", &dw, FP32_MAX, FP32_NMSE);
    compare("  db", &db, FP32_MAX, FP32_NMSE);
    Pair *all[] = { &x, &wt, &b, &y, &dy, &dx, &dw, &db };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pair_free(all[i]);
}

/* Batch norm with 15360 values per channel (several blocks per channel). */
static void large_batchnorm(void)
{
    Pair x = pair_random(2, 4, 96, 80, -2.0f, 3.0f), y = pair_random(2, 4, 96, 80, 0, 1);
    Pair g = param_random(1, 4, 1, 1, 0.5f, 1.5f), b = param_random(1, 4, 1, 1, -1, 1);
    Pair rm = param_random(1, 4, 1, 1, -0.1f, 0.1f), rv = param_random(1, 4, 1, 1, 0.9f, 1.1f);
    Pair sm = param_random(1, 4, 1, 1, 0, 1), si = param_random(1, 4, 1, 1, 0, 1);
    BOTH(cuda->batchnorm_forward(cuda, &y.t[0], &x.t[0], &g.t[0], &b.t[0], &rm.t[0], &rv.t[0],
                                 &sm.t[0], &si.t[0], 0.1f, 1e-5f, 1),
         ref->batchnorm_forward(ref, &y.t[1], &x.t[1], &g.t[1], &b.t[1], &rm.t[1], &rv.t[1],
                                &sm.t[1], &si.t[1], 0.1f, 1e-5f, 1));
    compare("batchnorm [2,4,96,80] y", &y, 1e-4, 1e-8);
    compare("batchnorm save_mean", &sm, 1e-4, 1e-8);
    compare("batchnorm save_invstd", &si, 1e-4, 1e-8);
    compare("batchnorm running_mean", &rm, 1e-4, 1e-8);
    compare("batchnorm running_var", &rv, 1e-4, 1e-8);

    Pair dy = pair_random(2, 4, 96, 80, -1, 1), dx = pair_random(2, 4, 96, 80, -1, 1);
    Pair dg = param_random(1, 4, 1, 1, -1, 1), db = param_random(1, 4, 1, 1, -1, 1);
    BOTH(cuda->batchnorm_backward(cuda, &dx.t[0], &dg.t[0], &db.t[0], &dy.t[0], &x.t[0], &g.t[0],
                                  &sm.t[0], &si.t[0], 1),
         ref->batchnorm_backward(ref, &dx.t[1], &dg.t[1], &db.t[1], &dy.t[1], &x.t[1], &g.t[1],
                                 &sm.t[1], &si.t[1], 1));
    compare("batchnorm dx (accumulate)", &dx, 1e-4, 1e-8);
    compare("batchnorm dgamma", &dg, 1e-4, 1e-8);
    compare("batchnorm dbeta", &db, 1e-4, 1e-8);

    /* Evaluation mode with the updated running statistics. */
    BOTH(cuda->batchnorm_forward(cuda, &y.t[0], &x.t[0], &g.t[0], &b.t[0], &rm.t[0], &rv.t[0],
                                 NULL, NULL, 0.1f, 1e-5f, 0),
         ref->batchnorm_forward(ref, &y.t[1], &x.t[1], &g.t[1], &b.t[1], &rm.t[1], &rv.t[1],
                                NULL, NULL, 0.1f, 1e-5f, 0));
    compare("batchnorm eval y", &y, 1e-4, 1e-8);
    Pair *all[] = { &x, &y, &g, &b, &rm, &rv, &sm, &si, &dy, &dx, &dg, &db };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pair_free(all[i]);
}

/* Instance norm with 9216 values per plane. */
static void large_instancenorm(void)
{
    Pair x = pair_random(2, 3, 96, 96, -1.0f, 4.0f), y = pair_new(2, 3, 96, 96, NULL);
    Pair g = param_random(1, 3, 1, 1, 0.5f, 1.5f), b = param_random(1, 3, 1, 1, -1, 1);
    Pair sm = param_random(2, 3, 1, 1, 0, 1), si = param_random(2, 3, 1, 1, 0, 1);
    BOTH(cuda->instancenorm_forward(cuda, &y.t[0], &x.t[0], &g.t[0], &b.t[0], &sm.t[0], &si.t[0],
                                    1e-5f),
         ref->instancenorm_forward(ref, &y.t[1], &x.t[1], &g.t[1], &b.t[1], &sm.t[1], &si.t[1],
                                   1e-5f));
    compare("instancenorm [2,3,96,96] y", &y, 1e-4, 1e-8);
    compare("instancenorm save_invstd", &si, 1e-4, 1e-8);
    Pair dy = pair_random(2, 3, 96, 96, -1, 1), dx = pair_new(2, 3, 96, 96, NULL);
    Pair dg = param_random(1, 3, 1, 1, -1, 1), db = param_random(1, 3, 1, 1, -1, 1);
    BOTH(cuda->instancenorm_backward(cuda, &dx.t[0], &dg.t[0], &db.t[0], &dy.t[0], &x.t[0],
                                     &g.t[0], &sm.t[0], &si.t[0], 0),
         ref->instancenorm_backward(ref, &dx.t[1], &dg.t[1], &db.t[1], &dy.t[1], &x.t[1], &g.t[1],
                                    &sm.t[1], &si.t[1], 0));
    compare("instancenorm dx", &dx, 1e-4, 1e-8);
    compare("instancenorm dgamma", &dg, 1e-4, 1e-8);
    compare("instancenorm dbeta", &db, 1e-4, 1e-8);
    Pair *all[] = { &x, &y, &g, &b, &sm, &si, &dy, &dx, &dg, &db };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pair_free(all[i]);
}

static Pair class_targets(int n, int h, int w, int k)
{
    size_t count = (size_t)n * h * w;
    float *t = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++)
        t[i] = k == 1 ? (test_rng_uniform(&rng, 0, 1) < 0.3f ? 1.0f : 0.0f)
                      : (float)(int)test_rng_uniform(&rng, 0, (float)k - 0.001f);
    Pair p = pair_new(n, 1, h, w, t);
    free(t);
    return p;
}

/* The losses over 12288 pixels per image, twice on the GPU to see the sums repeat. */
static void large_losses(void)
{
    static const struct {
        UnetLossKind kind;
        int k, weighted, class_weighted;
        const char *name;
    } cases[] = {
        { UNET_LOSS_BCE, 1, 1, 0, "bce weighted" },
        { UNET_LOSS_SOFTMAX_CE, 3, 1, 1, "softmax ce weighted, class weights" },
        { UNET_LOSS_SOFTMAX_CE, 2, 0, 0, "softmax ce" },
        { UNET_LOSS_DICE, 1, 1, 0, "dice sigmoid weighted" },
        { UNET_LOSS_DICE, 4, 0, 0, "dice softmax" },
    };
    const int n = 2, h = 128, w = 96;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int k = cases[c].k;
        Pair x = pair_random(n, k, h, w, -4, 4), t = class_targets(n, h, w, k);
        Pair wt = pair_random(n, 1, h, w, 0.5f, 5.0f);
        Pair loss = pair_new(1, 1, 1, 1, NULL), dl = pair_new(n, k, h, w, NULL);
        float cw[4] = { 0.5f, 2.0f, 1.0f, 3.0f };
        const float *cwp = cases[c].class_weighted ? cw : NULL;
        BOTH(cuda->loss_forward_backward(cuda, &loss.t[0], &dl.t[0], &x.t[0], &t.t[0],
                                         cases[c].weighted ? &wt.t[0] : NULL, cwp, cases[c].kind,
                                         0.5f),
             ref->loss_forward_backward(ref, &loss.t[1], &dl.t[1], &x.t[1], &t.t[1],
                                        cases[c].weighted ? &wt.t[1] : NULL, cwp, cases[c].kind,
                                        0.5f));
        char what[96];
        snprintf(what, sizeof what, "loss %s [%d,%d,%d,%d]", cases[c].name, n, k, h, w);
        compare(what, &loss, 1e-5, 1e-10);
        snprintf(what, sizeof what, "dlogits %s", cases[c].name);
        compare(what, &dl, 1e-4, 1e-8);

        size_t count = unet_tensor_numel(&dl.t[0]);
        float *first = malloc(count * sizeof(float)), *second = malloc(count * sizeof(float));
        CHECK(cuda->tensor_download(cuda, first, &dl.t[0]) == UNET_OK);
        CHECK(cuda->loss_forward_backward(cuda, &loss.t[0], &dl.t[0], &x.t[0], &t.t[0],
                                          cases[c].weighted ? &wt.t[0] : NULL, cwp,
                                          cases[c].kind, 0.5f) == UNET_OK);
        CHECK(cuda->tensor_download(cuda, second, &dl.t[0]) == UNET_OK);
        CHECK_MSG(!memcmp(first, second, count * sizeof(float)), "%s: gradient not repeatable",
                  cases[c].name);
        free(first);
        free(second);
        Pair *all[] = { &x, &t, &wt, &loss, &dl };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            pair_free(all[i]);
    }
}

/* Bias gradient over 18000 values per channel; bilinear gathers with a x16 reach. */
static void large_reductions_and_resize(void)
{
    Pair x = pair_random(2, 3, 100, 90, -1, 1), wgt = param_random(2, 3, 1, 1, -1, 1);
    Pair dy = pair_random(2, 2, 100, 90, -1, 1), dw = param_random(2, 3, 1, 1, -1, 1);
    Pair db = param_random(1, 2, 1, 1, -1, 1), dx = pair_new(2, 3, 100, 90, NULL);
    UnetConvDesc d = { 1, 1, 0 };
    BOTH(cuda->conv2d_backward(cuda, &dx.t[0], &dw.t[0], &db.t[0], &dy.t[0], &x.t[0], &wgt.t[0],
                               &d, 0),
         ref->conv2d_backward(ref, &dx.t[1], &dw.t[1], &db.t[1], &dy.t[1], &x.t[1], &wgt.t[1], &d,
                              0));
    compare("conv1x1 [2,3,100,90] dx", &dx, FP32_MAX, FP32_NMSE);
    compare("conv1x1 dw (18000 terms)", &dw, FP32_MAX, FP32_NMSE);
    compare("conv1x1 db (18000 terms)", &db, 1e-4, 1e-8);
    Pair *all[] = { &x, &wgt, &dy, &dw, &db, &dx };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pair_free(all[i]);

    static const int sizes[][4] = { { 5, 7, 80, 112 }, { 97, 61, 20, 13 }, { 33, 40, 66, 80 } };
    for (int i = 0; i < 3; i++) {
        int hi = sizes[i][0], wi = sizes[i][1], ho = sizes[i][2], wo = sizes[i][3];
        Pair in = pair_random(1, 2, hi, wi, -1, 1), out = pair_new(1, 2, ho, wo, NULL);
        Pair g = pair_random(1, 2, ho, wo, -1, 1), gin = pair_random(1, 2, hi, wi, -1, 1);
        BOTH(cuda->resize_bilinear_forward(cuda, &out.t[0], &in.t[0]),
             ref->resize_bilinear_forward(ref, &out.t[1], &in.t[1]));
        BOTH(cuda->resize_bilinear_backward(cuda, &gin.t[0], &g.t[0], 1),
             ref->resize_bilinear_backward(ref, &gin.t[1], &g.t[1], 1));
        char what[96];
        snprintf(what, sizeof what, "resize %dx%d -> %dx%d y", hi, wi, ho, wo);
        compare(what, &out, 1e-5, 1e-10);
        snprintf(what, sizeof what, "resize %dx%d -> %dx%d dx (accumulate)", hi, wi, ho, wo);
        compare(what, &gin, 1e-5, 1e-10);
        Pair *rs[] = { &in, &out, &g, &gin };
        for (size_t j = 0; j < 4; j++)
            pair_free(rs[j]);
    }
}

/* 3M parameters: uploads and downloads through several staging slots. */
static void large_optimizers(void)
{
    const size_t count = 3 * 1000 * 1000 + 7;
    float *host = malloc(count * sizeof(float)), *a = malloc(count * sizeof(float));
    float *r = malloc(count * sizeof(float));
    float *buf[2][4];
    UnetBackend *be[2] = { cuda, ref };
    for (int j = 0; j < 4; j++) {
        test_fill_uniform(&rng, host, count, j == 3 ? 0.0f : -1.0f, 1.0f);
        for (int i = 0; i < 2; i++) {
            buf[i][j] = be[i]->buffer_alloc(be[i], count);
            CHECK(buf[i][j] && be[i]->buffer_upload(be[i], buf[i][j], host, count) == UNET_OK);
        }
    }
    /* Round trip first: what went up comes back bit for bit. */
    CHECK(cuda->buffer_download(cuda, a, buf[0][3], count) == UNET_OK);
    CHECK(!memcmp(a, host, count * sizeof(float)));

    UnetOptimizerStep sgd = { .lr = 0.01f, .momentum = 0.9f, .nesterov = 1, .weight_decay = 1e-4f };
    UnetOptimizerStep adam = { .lr = 1e-3f, .weight_decay = 1e-2f, .decoupled_decay = 1,
                               .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 3 };
    for (int i = 0; i < 2; i++) {
        CHECK(be[i]->sgd_update(be[i], buf[i][0], buf[i][1], buf[i][2], count, &sgd) == UNET_OK);
        CHECK(be[i]->adam_update(be[i], buf[i][1], buf[i][0], buf[i][2], buf[i][3], count,
                                 &adam) == UNET_OK);
    }
    for (int j = 0; j < 4; j++) {
        CHECK(cuda->buffer_download(cuda, a, buf[0][j], count) == UNET_OK);
        CHECK(ref->buffer_download(ref, r, buf[1][j], count) == UNET_OK);
        size_t where = 0;
        double diff = test_max_rel_diff(a, r, count, &where);
        CHECK_MSG(diff <= 1e-6, "optimizer buffer %d: %.3g at %zu", j, diff, where);
        printf("  optimizer arena %d (%zu floats)          max rel %.2e\n", j, count, diff);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            be[i]->buffer_free(be[i], buf[i][j]);
    free(host);
    free(a);
    free(r);
}

/* A target that is not a class id is reported at the next download, once. */
static void deferred_target_error(void)
{
    const int n = 1, k = 3, h = 5, w = 6;
    float logits[3 * 5 * 6], target[5 * 6];
    test_fill_uniform(&rng, logits, sizeof logits / sizeof logits[0], -1, 1);
    for (int i = 0; i < h * w; i++)
        target[i] = (float)(i % k);
    target[2 * w + 4] = 3.0f; /* pixel (2,4): out of range */
    UnetTensor x, t, loss, dl;
    CHECK(cuda->tensor_init(cuda, &x, n, k, h, w) == UNET_OK);
    CHECK(cuda->tensor_init(cuda, &t, n, 1, h, w) == UNET_OK);
    CHECK(cuda->tensor_init(cuda, &loss, 1, 1, 1, 1) == UNET_OK);
    CHECK(cuda->tensor_init(cuda, &dl, n, k, h, w) == UNET_OK);
    CHECK(cuda->tensor_upload(cuda, &x, logits) == UNET_OK);
    CHECK(cuda->tensor_upload(cuda, &t, target) == UNET_OK);
    UnetLossKind kinds[2] = { UNET_LOSS_SOFTMAX_CE, UNET_LOSS_DICE };
    for (int i = 0; i < 2; i++) {
        CHECK(cuda->loss_forward_backward(cuda, &loss, &dl, &x, &t, NULL, NULL, kinds[i], 1.0f) ==
              UNET_OK);
        float value;
        UnetStatus st = cuda->tensor_download(cuda, &value, &loss);
        CHECK(st == UNET_ERR_INVALID);
        CHECK_MSG(strstr(cuda->error.message, "target value 3 at image 0 pixel (2,4) is not a "
                                              "class id in 0..2") != NULL,
                  "message: %s", cuda->error.message);
        CHECK(cuda->tensor_download(cuda, &value, &loss) == UNET_OK);
    }
    target[2 * w + 4] = 1.5f; /* not an integer */
    CHECK(cuda->tensor_upload(cuda, &t, target) == UNET_OK);
    CHECK(cuda->loss_forward_backward(cuda, &loss, NULL, &x, &t, NULL, NULL, UNET_LOSS_SOFTMAX_CE,
                                      1.0f) == UNET_OK);
    CHECK(cuda->synchronize(cuda) == UNET_ERR_INVALID);
    CHECK(cuda->synchronize(cuda) == UNET_OK);
    cuda->tensor_release(cuda, &x);
    cuda->tensor_release(cuda, &t);
    cuda->tensor_release(cuda, &loss);
    cuda->tensor_release(cuda, &dl);
}

/* A refused call names the op and leaves the backend usable. */
static void shape_errors(void)
{
    UnetTensor x, wt, y;
    CHECK(cuda->tensor_init(cuda, &x, 1, 4, 10, 10) == UNET_OK);
    CHECK(cuda->tensor_init(cuda, &wt, 8, 4, 3, 3) == UNET_OK);
    CHECK(cuda->tensor_init(cuda, &y, 1, 8, 10, 10) == UNET_OK);
    UnetConvDesc valid = { 3, 1, 0 }, same = { 3, 1, 1 };
    CHECK(cuda->tensor_fill(cuda, &x, 1.0f) == UNET_OK);
    CHECK(cuda->tensor_fill(cuda, &wt, 0.5f) == UNET_OK);
    CHECK(cuda->conv2d_forward(cuda, &y, &x, &wt, NULL, &valid) == UNET_ERR_INVALID);
    CHECK_MSG(strstr(cuda->error.message, "cuda conv2d_forward: y is [1,8,10,10], expected "
                                          "[1,8,8,8]") != NULL,
              "message: %s", cuda->error.message);
    CHECK(cuda->conv2d_forward(cuda, &y, &x, &wt, NULL, &same) == UNET_OK);
    float out[8 * 10 * 10];
    CHECK(cuda->tensor_download(cuda, out, &y) == UNET_OK);
    CHECK_MSG(fabsf(out[55] - 18.0f) < 1e-4f, "interior %g, expected 18", (double)out[55]);
    cuda->tensor_release(cuda, &x);
    cuda->tensor_release(cuda, &wt);
    cuda->tensor_release(cuda, &y);
}

/* Three SGD steps of a model on both backends from the same initialisation
 * and data: the losses of every step and the parameters' change must agree. */
#define MODEL_LOSS_TOL 1e-4  /* relative difference of each step's loss */
#define MODEL_DELTA_NMSE 1e-5 /* nmse of the parameter change after 3 steps */

static void model_case(const char *name, const UnetModelConfig *cfg, int n, int near,
                       UnetLossKind kind)
{
    const ModelCompare mc = { name, { "cuda", "reference" }, MODEL_LOSS_TOL, MODEL_DELTA_NMSE,
                              1e-4 };
    double loss_rel, nmse;
    model_compare(cuda, ref, cfg, n, near, kind, &rng, &mc, &loss_rel, &nmse);
}

static void models(void)
{
    UnetModelConfig cfg;
    unet_model_config_default(&cfg, UNET_ARCH_UNET); /* the paper's U-Net, small */
    cfg.depth = 3;
    cfg.base = 8;
    cfg.seed = 11;
    model_case("unet small", &cfg, 2, 60, UNET_LOSS_BCE);

    cfg.padding = UNET_PAD_SAME; /* batch norm, leaky relu, bilinear, 3 classes */
    cfg.norm = UNET_NORM_BATCH;
    cfg.upsample = UNET_UP_BILINEAR;
    cfg.activation = UNET_ACT_LEAKY;
    cfg.leaky_slope = 0.01f;
    cfg.classes = 3;
    model_case("unet small bn/bilinear", &cfg, 2, 32, UNET_LOSS_SOFTMAX_CE);

    unet_model_config_default(&cfg, UNET_ARCH_LIGHT);
    cfg.depth = 3;
    cfg.base = 8;
    cfg.seed = 12;
    model_case("light", &cfg, 2, 32, UNET_LOSS_DICE);

    unet_model_config_default(&cfg, UNET_ARCH_FCN);
    cfg.base = 8;
    cfg.classes = 2;
    cfg.seed = 13;
    model_case("fcn", &cfg, 2, 32, UNET_LOSS_SOFTMAX_CE);
}

/* BF16 precision: bf16 convolutions with fp32 accumulation, everything
 * else fp32. Tolerances and their derivation: bf16-check.h (u = 2^-8). */
static void bf16_section(void)
{
    UnetError err = { 0 };
    CHECK_MSG(unet_backend_set_precision(cuda, UNET_PRECISION_BF16, &err) == UNET_OK, "%s",
              err.message);
    CHECK(cuda->precision == UNET_PRECISION_BF16);
    printf("bf16 convolutions, element bounds (U-Net shapes):\n");
    double worst = 0.0;
    worst = fmax(worst, bf16_check_conv(cuda, ref, 2, 1, 30, 27, 64, 3, 1, 0, 0, 31));
    worst = fmax(worst, bf16_check_conv(cuda, ref, 1, 64, 22, 19, 64, 3, 1, 0, 1, 32));
    worst = fmax(worst, bf16_check_conv(cuda, ref, 1, 128, 18, 17, 64, 3, 1, 0, 0, 33));
    worst = fmax(worst, bf16_check_conv(cuda, ref, 1, 64, 13, 12, 2, 1, 1, 0, 0, 34));
    worst = fmax(worst, bf16_check_conv(cuda, ref, 1, 48, 10, 9, 64, 3, 1, 1, 1, 35));
    worst = fmax(worst, bf16_check_conv(cuda, ref, 2, 24, 9, 11, 8, 3, 2, 1, 0, 36));
    worst = fmax(worst, bf16_check_upconv(cuda, ref, 1, 1024, 4, 3, 512, 0, 37));
    worst = fmax(worst, bf16_check_upconv(cuda, ref, 2, 128, 6, 7, 64, 1, 38));
    CHECK_MSG(worst > 0.0, "bf16 results equal fp32 exactly: the convolutions are not in bf16");
    printf("bf16: worst error %.2f of the bound\n", worst);

    printf("bf16 convolutions, op harness (max %.3g, nmse %.3g):\n", BF16_MAX, BF16_NMSE);
    OpHarnessStats st;
    int failed = op_harness_compare_ex(cuda, ref, BF16_MAX, "conv", NULL, &st);
    CHECK_MSG(failed == 0, "bf16: %d of %d convolution cases failed", failed, st.cases);
    CHECK_MSG(st.worst_nmse <= BF16_NMSE, "bf16 worst nmse %.3g", st.worst_nmse);
    printf("  %d cases, worst max error %.3g (%s), worst nmse %.3g\n", st.cases, st.worst_max,
           st.worst_case, st.worst_nmse);

    printf("bf16 training, 3 SGD steps of unet against the fp32 reference:\n");
    double loss_rel, nmse;
    bf16_check_training(cuda, ref, 41, &loss_rel, &nmse);

    /* back to fp32: the algorithm cache is per precision, results are fp32 again */
    CHECK(unet_backend_set_precision(cuda, UNET_PRECISION_FP32, &err) == UNET_OK);
    unet_sized_conv(1, 64, 22, 19, 64, 3, 0, 1);
}

int main(void)
{
    UnetError err = { 0 };
    setenv("UNET_CUDA_TF32", "0", 1);
    cuda = unet_backend_cuda_new(0, &err);
    if (!cuda)
        test_skip(err.message);
    ref = unet_backend_reference_new(&err);
    if (!ref) {
        fprintf(stderr, "reference backend: %s\n", err.message);
        return 1;
    }
    test_rng_seed(&rng, 572);

    printf("harness, fp32 (UNET_CUDA_TF32=0):\n");
    OpHarnessStats st;
    int failed = op_harness_compare_ex(cuda, ref, FP32_MAX, NULL, stdout, &st);
    CHECK_MSG(failed == 0, "%d of %d harness cases failed", failed, st.cases);
    CHECK_MSG(st.worst_nmse <= FP32_NMSE, "worst nmse %.3g", st.worst_nmse);
    printf("fp32: %d cases, worst max error %.3g (%s), worst nmse %.3g\n", st.cases, st.worst_max,
           st.worst_case, st.worst_nmse);

    printf("U-Net-sized convolutions:\n");
    unet_sized_conv(2, 1, 30, 27, 64, 3, 0, 0);   /* first layer */
    unet_sized_conv(1, 64, 22, 19, 64, 3, 0, 1);  /* encoder, accumulate */
    unet_sized_conv(1, 128, 18, 17, 64, 3, 0, 0); /* decoder after concat */
    unet_sized_conv(1, 64, 13, 12, 2, 1, 0, 0);   /* 1x1 head */
    unet_sized_conv(1, 48, 10, 9, 64, 3, 1, 1);   /* same padding */
    unet_sized_upconv(1, 1024, 4, 3, 512, 0);
    unet_sized_upconv(2, 128, 6, 7, 64, 1);

    printf("large shapes:\n");
    large_batchnorm();
    large_instancenorm();
    large_losses();
    large_reductions_and_resize();
    large_optimizers();
    deferred_target_error();
    shape_errors();

    printf("models, 3 SGD steps (momentum 0.9, lr 0.01):\n");
    models();

    setenv("UNET_CUDA_TF32", "1", 1);
    UnetBackend *tf32 = unet_backend_cuda_new(0, &err);
    CHECK_MSG(tf32 != NULL, "%s", err.message);
    if (tf32) {
        failed = op_harness_compare_ex(tf32, ref, TF32_MAX, "conv", NULL, &st);
        CHECK_MSG(failed == 0, "TF32: %d of %d convolution cases failed", failed, st.cases);
        CHECK_MSG(st.worst_nmse <= TF32_NMSE, "TF32 worst nmse %.3g", st.worst_nmse);
        printf("tf32 convolutions: %d cases, worst max error %.3g, worst nmse %.3g\n", st.cases,
               st.worst_max, st.worst_nmse);
    }
    unet_backend_destroy(tf32);

    bf16_section();
    unet_backend_destroy(cuda);
    unet_backend_destroy(ref);
    return test_finish("parity-cuda");
}
