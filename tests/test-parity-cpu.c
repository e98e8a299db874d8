/* test-parity-cpu.c - the fast CPU backend against the reference backend, op by op. */
/*
 * Part 1 runs the shared op harness (every op, odd sizes, valid crops,
 * stride 2, accumulation) at tolerance 1e-4: the CPU backend sums in float
 * in another order (oneDNN's blocked kernels) while the reference sums in
 * double, so a few 1e-7 of the output's scale is the expected difference.
 * Part 2 adds what the harness's small shapes do not reach: the default
 * U-Net's channel counts (blocked layout with many blocks, the 1-channel
 * first layer and head, 1024 -> 512 up-convolution), operands that arrive
 * in different layouts (a plain view beside a blocked tensor), and the
 * error messages of refused shapes. Part 3 runs whole models of model.h
 * (unet with and without batch norm, light, fcn; small widths and images)
 * through a training step on both backends and compares logits, loss and
 * every parameter gradient.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "model.h"
#include "op-harness.h"
#include "test-common.h"

#define TOL 1e-4

static UnetBackend *be[2]; /* 0: cpu, 1: reference */
static TestRng rng;

/* One logical tensor on both backends. */
typedef struct Dual {
    UnetTensor t[2];
    float *buf[2];
} Dual;

static float *host_rand(size_t count, float lo, float hi)
{
    float *p = malloc(count * sizeof(float));
    test_fill_uniform(&rng, p, count, lo, hi);
    return p;
}

/* Activation (tensor_init + upload); as_view makes the cpu side a plain view. */
static void dual_act(Dual *d, int n, int c, int h, int w, float lo, float hi, int as_view)
{
    size_t count = (size_t)n * c * h * w;
    float *host = host_rand(count, lo, hi);
    memset(d, 0, sizeof *d);
    for (int b = 0; b < 2; b++) {
        if (as_view && b == 0) {
            d->buf[b] = be[b]->buffer_alloc(be[b], count);
            CHECK(d->buf[b] && be[b]->buffer_upload(be[b], d->buf[b], host, count) == UNET_OK);
            be[b]->tensor_view(be[b], &d->t[b], d->buf[b], n, c, h, w);
        } else {
            CHECK(be[b]->tensor_init(be[b], &d->t[b], n, c, h, w) == UNET_OK);
            CHECK(be[b]->tensor_upload(be[b], &d->t[b], host) == UNET_OK);
        }
    }
    free(host);
}

/* Parameter-style plain view. */
static void dual_param(Dual *d, int n, int c, int h, int w, float lo, float hi)
{
    dual_act(d, n, c, h, w, lo, hi, 0);
    size_t count = (size_t)n * c * h * w;
    float *host = host_rand(count, lo, hi);
    for (int b = 0; b < 2; b++) {
        be[b]->tensor_release(be[b], &d->t[b]);
        d->buf[b] = be[b]->buffer_alloc(be[b], count);
        CHECK(d->buf[b] && be[b]->buffer_upload(be[b], d->buf[b], host, count) == UNET_OK);
        be[b]->tensor_view(be[b], &d->t[b], d->buf[b], n, c, h, w);
    }
    free(host);
}

static void dual_free(Dual *d)
{
    for (int b = 0; b < 2; b++) {
        be[b]->tensor_release(be[b], &d->t[b]);
        if (d->buf[b])
            be[b]->buffer_free(be[b], d->buf[b]);
    }
    memset(d, 0, sizeof *d);
}

/* max |cpu - ref| / max |ref| over the tensor. */
static void expect_same(const Dual *d, const char *what)
{
    size_t count = unet_tensor_numel(&d->t[1]);
    float *a = malloc(count * sizeof(float)), *r = malloc(count * sizeof(float));
    CHECK(be[0]->tensor_download(be[0], a, &d->t[0]) == UNET_OK);
    CHECK(be[1]->tensor_download(be[1], r, &d->t[1]) == UNET_OK);
    double scale = 0.0, worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < count; i++)
        if (fabs(r[i]) > scale)
            scale = fabs(r[i]);
    for (size_t i = 0; i < count; i++) {
        double e = fabs((double)a[i] - (double)r[i]);
        if (!(e <= worst)) {
            worst = e;
            at = i;
        }
    }
    double rel = scale > 0.0 ? worst / scale : worst;
    CHECK_MSG(rel <= TOL, "%s: max error %.3g at %zu (cpu %g, reference %g)", what, rel, at,
              (double)a[at], (double)r[at]);
    free(a);
    free(r);
}

static void check_ok(int b, UnetStatus s, const char *what)
{
    CHECK_MSG(s == UNET_OK, "%s on %s: %s", what, be[b]->name, be[b]->error.message);
}

/* Forward and backward of a convolution; x_view puts x and dx in a plain
 * view on the cpu side. */
static void conv_case(int n, int ci, int h, int w, int co, int k, int s, int pad, int with_dx,
                      int acc, int x_view)
{
    char name[128];
    snprintf(name, sizeof name, "conv k%d s%d p%d [%d,%d,%d,%d]->%d%s%s%s", k, s, pad, n, ci, h, w,
             co, with_dx ? "" : " nodx", acc ? " acc" : "", x_view ? " view" : "");
    UnetConvDesc d = { k, s, pad };
    int ho = unet_conv_out_size(h, &d), wo = unet_conv_out_size(w, &d);
    Dual x, wt, bias, y, dy, dx, dw, db;
    dual_act(&x, n, ci, h, w, -1, 1, x_view);
    dual_param(&wt, co, ci, k, k, -0.1f, 0.1f);
    dual_param(&bias, co, 1, 1, 1, -0.5f, 0.5f);
    dual_act(&y, n, co, ho, wo, -9, 9, 0);
    dual_act(&dy, n, co, ho, wo, -1, 1, 0);
    dual_act(&dx, n, ci, h, w, -1, 1, x_view);
    dual_param(&dw, co, ci, k, k, -1, 1);
    dual_param(&db, co, 1, 1, 1, -1, 1);
    for (int b = 0; b < 2; b++) {
        check_ok(b, be[b]->conv2d_forward(be[b], &y.t[b], &x.t[b], &wt.t[b], &bias.t[b], &d), name);
        check_ok(b, be[b]->conv2d_backward(be[b], with_dx ? &dx.t[b] : NULL, &dw.t[b], &db.t[b],
                                           &dy.t[b], &x.t[b], &wt.t[b], &d, acc), name);
    }
    char what[160];
    snprintf(what, sizeof what, "%s y", name);
    expect_same(&y, what);
    snprintf(what, sizeof what, "%s dx", name);
    expect_same(&dx, what);
    snprintf(what, sizeof what, "%s dw", name);
    expect_same(&dw, what);
    snprintf(what, sizeof what, "%s db", name);
    expect_same(&db, what);
    Dual *all[] = { &x, &wt, &bias, &y, &dy, &dx, &dw, &db };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dual_free(all[i]);
}

static void upconv_case(int n, int ci, int h, int w, int co, int acc)
{
    char name[96];
    snprintf(name, sizeof name, "upconv [%d,%d,%d,%d]->%d%s", n, ci, h, w, co, acc ? " acc" : "");
    Dual x, wt, bias, y, dy, dx, dw, db;
    dual_act(&x, n, ci, h, w, -1, 1, 0);
    dual_param(&wt, ci, co, 2, 2, -0.1f, 0.1f);
    dual_param(&bias, co, 1, 1, 1, -0.5f, 0.5f);
    dual_act(&y, n, co, 2 * h, 2 * w, -9, 9, 0);
    dual_act(&dy, n, co, 2 * h, 2 * w, -1, 1, 0);
    dual_act(&dx, n, ci, h, w, -1, 1, 0);
    dual_param(&dw, ci, co, 2, 2, -1, 1);
    dual_param(&db, co, 1, 1, 1, -1, 1);
    for (int b = 0; b < 2; b++) {
        check_ok(b, be[b]->upconv2x2_forward(be[b], &y.t[b], &x.t[b], &wt.t[b], &bias.t[b]), name);
        check_ok(b, be[b]->upconv2x2_backward(be[b], &dx.t[b], &dw.t[b], &db.t[b], &dy.t[b],
                                              &x.t[b], &wt.t[b], acc), name);
    }
    expect_same(&y, "upconv y");
    expect_same(&dx, "upconv dx");
    expect_same(&dw, "upconv dw");
    expect_same(&db, "upconv db");
    Dual *all[] = { &x, &wt, &bias, &y, &dy, &dx, &dw, &db };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dual_free(all[i]);
}

/* One decoder join of the U-Net: crop+concat, relu, pooling, with one
 * operand of each op a plain view on the cpu side. */
static void skip_case(void)
{
    Dual skip, up, y, dy, dskip, dup, p, dp;
    dual_act(&skip, 1, 64, 24, 22, -2, 2, 0);
    dual_act(&up, 1, 64, 16, 15, -2, 2, 1);
    dual_act(&y, 1, 128, 16, 15, -9, 9, 0);
    dual_act(&dy, 1, 128, 16, 15, -1, 1, 0);
    dual_act(&dskip, 1, 64, 24, 22, -1, 1, 0);
    dual_act(&dup, 1, 64, 16, 15, -1, 1, 1);
    dual_act(&p, 1, 64, 12, 11, -9, 9, 1);
    dual_act(&dp, 1, 64, 12, 11, -1, 1, 0);
    for (int b = 0; b < 2; b++) {
        check_ok(b, be[b]->crop_concat_forward(be[b], &y.t[b], &skip.t[b], &up.t[b]), "concat");
        check_ok(b, be[b]->activation_forward(be[b], &y.t[b], &y.t[b], UNET_ACT_RELU, 0), "relu");
        check_ok(b, be[b]->activation_backward(be[b], &dy.t[b], &dy.t[b], &y.t[b], UNET_ACT_RELU,
                                               0, 0), "relu backward");
        check_ok(b, be[b]->crop_concat_backward(be[b], &dskip.t[b], &dup.t[b], &dy.t[b], 0, 1),
                 "concat backward");
        check_ok(b, be[b]->maxpool2x2_forward(be[b], &p.t[b], &skip.t[b]), "maxpool");
        check_ok(b, be[b]->maxpool2x2_backward(be[b], &dskip.t[b], &dp.t[b], &skip.t[b], &p.t[b], 1),
                 "maxpool backward");
    }
    expect_same(&y, "concat+relu y");
    expect_same(&dy, "relu backward");
    expect_same(&dup, "concat backward dup");
    expect_same(&p, "maxpool y");
    expect_same(&dskip, "concat+maxpool backward dskip");
    Dual *all[] = { &skip, &up, &y, &dy, &dskip, &dup, &p, &dp };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dual_free(all[i]);
}

/* max |a - r| / max |r| of two host arrays. */
static double rel_error(const float *a, const float *r, size_t count)
{
    double scale = 0.0, worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        if (fabs(r[i]) > scale)
            scale = fabs(r[i]);
        double e = fabs((double)a[i] - (double)r[i]);
        if (!(e <= worst))
            worst = e;
    }
    return scale > 0.0 ? worst / scale : worst;
}

/* One training forward, loss and backward of cfg on both backends from the
 * same parameters and data. */
static void model_case(const UnetModelConfig *cfg, int n, int near)
{
    char name[96];
    snprintf(name, sizeof name, "model %s base %d depth %d norm %s classes %d",
             unet_arch_name(cfg->arch), cfg->base, cfg->depth, unet_norm_name(cfg->norm),
             cfg->classes);
    int in, out;
    CHECK(unet_model_valid_input_size(cfg, near, &in, &out) == 0);
    UnetError err = { 0 };
    UnetModel *m[2];
    float *grad[2] = { NULL, NULL }, *logit[2] = { NULL, NULL }, lossv[2] = { 0, 0 };
    size_t nx = (size_t)n * cfg->in_channels * in * in, ny = (size_t)n * out * out;
    float *hx = host_rand(nx, 0, 1), *ht = host_rand(ny, 0, 1);
    for (size_t i = 0; i < ny; i++)
        ht[i] = cfg->classes == 1 ? (ht[i] > 0.5f) : (float)(int)(ht[i] * cfg->classes * 0.999f);
    size_t nl = (size_t)n * cfg->classes * out * out;
    for (int b = 0; b < 2; b++) {
        m[b] = unet_model_new(cfg, be[b], &err);
        CHECK_MSG(m[b], "%s: %s", name, err.message);
        if (!m[b])
            return;
        UnetTensor x, t, loss, dl, *logits = NULL;
        CHECK(be[b]->tensor_init(be[b], &x, n, cfg->in_channels, in, in) == UNET_OK);
        CHECK(be[b]->tensor_upload(be[b], &x, hx) == UNET_OK);
        CHECK(be[b]->tensor_init(be[b], &t, n, 1, out, out) == UNET_OK);
        CHECK(be[b]->tensor_upload(be[b], &t, ht) == UNET_OK);
        CHECK(be[b]->tensor_init(be[b], &loss, 1, 1, 1, 1) == UNET_OK);
        CHECK(be[b]->tensor_init(be[b], &dl, n, cfg->classes, out, out) == UNET_OK);
        UnetStatus s = unet_model_zero_grad(m[b], &err);
        if (s == UNET_OK)
            s = unet_model_forward(m[b], &x, &logits, 1, &err);
        logit[b] = malloc(nl * sizeof(float));
        if (s == UNET_OK)
            s = be[b]->tensor_download(be[b], logit[b], logits);
        if (s == UNET_OK)
            s = unet_model_loss(m[b], logits, &t, NULL, NULL, UNET_LOSS_DEFAULT, 1.0f, &loss, &dl,
                                &err);
        if (s == UNET_OK)
            s = unet_model_backward(m[b], &dl, &err);
        CHECK_MSG(s == UNET_OK, "%s on %s: %s", name, be[b]->name, err.message);
        size_t np = unet_model_param_count(m[b]);
        grad[b] = malloc(np * sizeof(float));
        CHECK(be[b]->buffer_download(be[b], grad[b], unet_model_grad_arena(m[b]), np) == UNET_OK);
        CHECK(be[b]->tensor_download(be[b], &lossv[b], &loss) == UNET_OK);
        UnetTensor *ts[] = { &x, &t, &loss, &dl };
        for (int i = 0; i < 4; i++)
            be[b]->tensor_release(be[b], ts[i]);
    }
    double el = rel_error(logit[0], logit[1], nl);
    CHECK_MSG(el <= TOL, "%s: logits differ by %.3g", name, el);
    CHECK_MSG(fabs(lossv[0] - lossv[1]) <= TOL * fabs(lossv[1]), "%s: loss %g vs %g", name,
              (double)lossv[0], (double)lossv[1]);
    /* each parameter's gradient on its own scale; a convolution bias ahead
     * of instance norm has an exact gradient of 0, which both backends give
     * as rounding noise: such a gradient only has to stay noise */
    const UnetParamTable *tab = unet_model_params(m[1]);
    double gmax = 0.0, worst = 0.0;
    for (size_t i = 0; i < tab->total; i++)
        if (fabs(grad[1][i]) > gmax)
            gmax = fabs(grad[1][i]);
    const char *where = "";
    for (size_t i = 0; i < tab->len; i++) {
        const UnetParamInfo *p = &tab->items[i];
        double rmax = 0.0, amax = 0.0;
        for (size_t j = 0; j < p->count; j++) {
            rmax = fmax(rmax, fabs(grad[1][p->offset + j]));
            amax = fmax(amax, fabs(grad[0][p->offset + j]));
        }
        /* noise passes while below 1e-3 of the largest gradient (scaled to TOL) */
        double e = rmax < 1e-4 * gmax
                       ? amax / (1e-3 * gmax) * TOL
                       : rel_error(grad[0] + p->offset, grad[1] + p->offset, p->count);
        if (!(e <= worst)) {
            worst = e;
            where = p->name;
        }
    }
    CHECK_MSG(worst <= TOL, "%s: gradient of %s differs by %.3g", name, where, worst);
    printf("%-56s %dx%d: logits %.2g, loss %.2g, worst gradient %.2g (%s)\n", name, in, in, el,
           fabs(lossv[0] - lossv[1]) / fabs(lossv[1]), worst, where);
    for (int b = 0; b < 2; b++) {
        unet_model_free(m[b]);
        free(grad[b]);
        free(logit[b]);
    }
    free(hx);
    free(ht);
}

static void models(void)
{
    UnetModelConfig cfg;
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    cfg.base = 16;
    cfg.depth = 3;
    model_case(&cfg, 1, 60);
    cfg.padding = UNET_PAD_SAME;
    cfg.norm = UNET_NORM_BATCH;
    cfg.upsample = UNET_UP_BILINEAR;
    cfg.classes = 3;
    cfg.in_channels = 2;
    model_case(&cfg, 2, 24);
    unet_model_config_default(&cfg, UNET_ARCH_LIGHT);
    cfg.base = 16;
    cfg.depth = 3;
    model_case(&cfg, 1, 32);
    unet_model_config_default(&cfg, UNET_ARCH_FCN);
    cfg.base = 8;
    model_case(&cfg, 2, 20);
}

static void error_messages(void)
{
    UnetTensor x, y, w;
    float wbuf[64 * 9];
    UnetBackend *cpu = be[0];
    CHECK(cpu->tensor_init(cpu, &x, 1, 64, 10, 10) == UNET_OK);
    CHECK(cpu->tensor_init(cpu, &y, 1, 64, 9, 9) == UNET_OK);
    cpu->tensor_view(cpu, &w, wbuf, 1, 64, 3, 3);
    UnetConvDesc d = { 3, 1, 0 };
    CHECK(cpu->conv2d_forward(cpu, &y, &x, &w, NULL, &d) == UNET_ERR_INVALID);
    CHECK_MSG(strstr(cpu->error.message, "conv2d_forward") &&
                  strstr(cpu->error.message, "[1,64,9,9]"), "message: %s", cpu->error.message);
    CHECK(cpu->maxpool2x2_forward(cpu, &y, &x) == UNET_ERR_INVALID);
    CHECK_MSG(strstr(cpu->error.message, "maxpool2x2_forward") &&
                  strstr(cpu->error.message, "[1,64,5,5]"), "message: %s", cpu->error.message);
    cpu->tensor_release(cpu, &x);
    cpu->tensor_release(cpu, &y);
}

int main(int argc, char **argv)
{
    UnetError err = { 0 };
    be[1] = unet_backend_reference_new(&err);
    be[0] = be[1] ? unet_backend_cpu_new(2, &err) : NULL;
    if (!be[0] || !be[1]) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    /* which blocked layout this run exercises (8 under ONEDNN_MAX_CPU_ISA=AVX2) */
    UnetTensor probe;
    CHECK(be[0]->tensor_init(be[0], &probe, 1, 16, 4, 4) == UNET_OK);
    printf("cpu backend: a 16-channel activation has layout %d\n", probe.layout);
    const char *isa = getenv("ONEDNN_MAX_CPU_ISA");
    if (isa && !strcmp(isa, "AVX2"))
        CHECK(probe.layout == 8);
    be[0]->tensor_release(be[0], &probe);

    OpHarnessStats st;
    int failed = op_harness_compare_ex(be[0], be[1], TOL, argc > 1 ? argv[1] : NULL, stdout, &st);
    printf("harness: %d cases, %d failed, worst max error %.3g (%s), worst nmse %.3g\n", st.cases,
           st.failed, st.worst_max, st.worst_case, st.worst_nmse);
    CHECK(failed == 0);
    if (argc > 1) /* a filtered harness run only */
        return test_finish("parity-cpu");

    test_rng_seed(&rng, 572);
    conv_case(2, 1, 30, 27, 64, 3, 1, 0, 0, 0, 0);    /* first layer */
    conv_case(1, 64, 22, 19, 64, 3, 1, 0, 1, 0, 0);   /* encoder level 1 */
    conv_case(1, 128, 18, 17, 64, 3, 1, 0, 1, 1, 0);  /* decoder after concat, accumulate */
    conv_case(1, 64, 13, 12, 1, 1, 1, 0, 1, 0, 0);    /* 1x1 head to one class */
    conv_case(2, 64, 9, 11, 6, 1, 1, 0, 1, 1, 0);     /* 1x1 head to six classes */
    conv_case(1, 64, 15, 14, 32, 3, 2, 1, 1, 0, 1);   /* strided, x a plain view */
    conv_case(1, 48, 10, 9, 64, 3, 1, 1, 1, 1, 1);    /* same padding, view, accumulate */
    /* one shape again and again: the backend times oneDNN's direct and
     * Winograd kernels on the first calls and keeps the faster */
    for (int i = 0; i < 6; i++)
        conv_case(1, 64, 20, 18, 64, 3, 1, 0, 1, i & 1, 0);
    upconv_case(1, 1024, 4, 3, 512, 0);
    upconv_case(2, 128, 6, 7, 64, 1);
    upconv_case(1, 48, 5, 13, 32, 1); /* several pixel tiles, the last overlapping */
    upconv_case(2, 32, 64, 66, 16, 1); /* large enough for our weight-gradient kernel */
    skip_case();
    error_messages();
    models();

    unet_backend_destroy(be[0]);
    unet_backend_destroy(be[1]);
    return test_finish("parity-cpu");
}
