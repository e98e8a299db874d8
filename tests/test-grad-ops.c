/* test-grad-ops.c - finite-difference checks of every backward op of the reference backend. */
/*
 * Each op's forward defines a scalar L: L = sum(r * y) with a fixed random r
 * for layers, the loss value itself for losses. Its analytic gradient (the
 * backward op with dy = r) is compared with central differences
 *   dL/du ~ (L(u + h) - L(u - h)) / ((u + h) - (u - h))    (h = 1e-2, in float)
 * for every input element (a strided sample of ~300 on larger tensors).
 *
 * Tolerance: max |fd - analytic| <= TOL * max |analytic| over the tensor, TOL = 2e-3.
 * Why that is tight enough and loose enough: the truncation error of the
 * central difference is h^2/6 * |L'''| ~ 2e-5 for our O(1) inputs; L is a
 * float sum of at most a few hundred rounded outputs, so its rounding error is
 * ~1e-6 |L| and contributes ~1e-6 / (2h) = 5e-5 to fd. Both sit well below
 * 2e-3 of the gradient's scale, while any wrong term (a missing 1/M, a wrong
 * index, a flipped sign, a missed crop offset) moves it by >= 1e-1.
 * Kinks are avoided: activation inputs stay >= 0.05 away from 0 and maxpool
 * windows have maxima >= 0.05 above the runner-up, so h never crosses one.
 *
 * Accumulate semantics are checked on the same calls: dx overwritten when
 * accumulate == 0 (pre-filled with garbage), added when accumulate == 1
 * (pre-filled with known values); dw, db, dgamma, dbeta always added.
 */
#include <math.h>
#include <string.h>

#include "backend.h"
#include "test-common.h"

#define H_STEP 1e-2f
#define TOL 2e-3
#define MAX_PROBES 300

static UnetBackend *be;
static TestRng rng;

/* Everything an objective may read. */
typedef struct Ctx {
    UnetTensor x, w, b, y, gamma, beta, rm, rv, sm, si, skip, up, target, weight, loss;
    UnetConvDesc d;
    int bias, affine, out_h, out_w, upsample;
    UnetActivation act;
    float slope;
    UnetLossKind kind;
    const float *cw;
    float *r; /* objective weights, numel(y) */
} Ctx;

typedef double (*Objective)(Ctx *c);

static UnetTensor tensor(int n, int ch, int h, int w)
{
    UnetTensor t;
    CHECK(be->tensor_init(be, &t, n, ch, h, w) == UNET_OK);
    be->tensor_fill(be, &t, 0.0f);
    return t;
}

static UnetTensor rand_tensor(int n, int ch, int h, int w, float lo, float hi)
{
    UnetTensor t = tensor(n, ch, h, w);
    test_fill_uniform(&rng, t.data, unet_tensor_numel(&t), lo, hi);
    return t;
}

static void release_ctx(Ctx *c)
{
    UnetTensor *all[] = { &c->x,  &c->w,  &c->b,    &c->y,  &c->gamma,  &c->beta,   &c->rm,  &c->rv,
                          &c->sm, &c->si, &c->skip, &c->up, &c->target, &c->weight, &c->loss };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->data)
            be->tensor_release(be, all[i]);
    free(c->r);
}

static float *objective_weights(const UnetTensor *y)
{
    size_t n = unet_tensor_numel(y);
    float *r = malloc(n * sizeof(float));
    test_fill_uniform(&rng, r, n, -1.0f, 1.0f);
    return r;
}

static double dot_r(const Ctx *c, const UnetTensor *y)
{
    double s = 0.0;
    for (size_t i = 0; i < unet_tensor_numel(y); i++)
        s += (double)c->r[i] * y->data[i];
    return s;
}

/* Compares analytic[] with central differences of f over the elements of in. */
static void fd_check(const char *name, const char *what, Ctx *c, Objective f, UnetTensor *in,
                     const float *analytic)
{
    size_t n = unet_tensor_numel(in);
    size_t stride = n > MAX_PROBES ? n / MAX_PROBES + 1 : 1;
    double scale = 0.0, worst = 0.0;
    size_t worst_at = 0;
    double worst_fd = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)analytic[i]));
    CHECK_MSG(scale > 0.0, "%s %s: analytic gradient is all zero (test would prove nothing)", name,
              what);
    for (size_t i = 0; i < n; i += stride) {
        float orig = in->data[i];
        float up = orig + H_STEP, down = orig - H_STEP;
        in->data[i] = up;
        double lp = f(c);
        in->data[i] = down;
        double lm = f(c);
        in->data[i] = orig;
        double fd = (lp - lm) / ((double)up - (double)down);
        double err = fabs(fd - analytic[i]);
        if (err > worst) {
            worst = err;
            worst_at = i;
            worst_fd = fd;
        }
    }
    f(c); /* leave the outputs of the unperturbed inputs behind */
    double rel = worst / scale;
    CHECK_MSG(
        rel <= TOL,
        "%s %s: |fd - analytic| / max|analytic| = %.2e > %.0e at %zu (fd %.7g, analytic %.7g)",
        name, what, rel, TOL, worst_at, worst_fd, (double)analytic[worst_at]);
    if (getenv("UNET_TEST_VERBOSE"))
        printf("%-28s %-7s rel err %.2e (n=%zu)\n", name, what, rel, n);
}

/* ---- accumulate bookkeeping ------------------------------------------------------------ */

/* Gradient buffers with the pre-fill each accumulate mode is checked against. */
typedef struct Grad {
    UnetTensor t;
    float *prefill; /* what was there before the call */
    float *value;   /* the call's contribution: after - prefill (or after when overwriting) */
} Grad;

static void grad_init(Grad *g, const UnetTensor *like)
{
    g->t = tensor(like->n, like->c, like->h, like->w);
    size_t n = unet_tensor_numel(like);
    g->prefill = malloc(n * sizeof(float));
    g->value = malloc(n * sizeof(float));
}

static void grad_prefill(Grad *g, float lo, float hi)
{
    size_t n = unet_tensor_numel(&g->t);
    test_fill_uniform(&rng, g->prefill, n, lo, hi);
    memcpy(g->t.data, g->prefill, n * sizeof(float));
}

/* value = t - prefill when added, t when overwritten. */
static void grad_take(Grad *g, int added)
{
    size_t n = unet_tensor_numel(&g->t);
    for (size_t i = 0; i < n; i++)
        g->value[i] = added ? g->t.data[i] - g->prefill[i] : g->t.data[i];
}

/* After a second call with accumulate = 1 over fresh known values: the
 * contribution must equal the first call's (to float rounding of the sum). */
static void grad_check_same(const char *name, const char *what, Grad *g)
{
    size_t n = unet_tensor_numel(&g->t);
    double scale = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)g->value[i]) + fabs((double)g->prefill[i]));
    for (size_t i = 0; i < n; i++) {
        double contrib = (double)g->t.data[i] - g->prefill[i];
        worst = fmax(worst, fabs(contrib - g->value[i]));
    }
    CHECK_MSG(worst <= 1e-6 * scale,
              "%s %s: accumulate = 1 did not add the same gradient (diff %.3g)", name, what, worst);
}

static void grad_free(Grad *g)
{
    be->tensor_release(be, &g->t);
    free(g->prefill);
    free(g->value);
}

/* ---- convolutions ---------------------------------------------------------------------- */

static double obj_conv(Ctx *c)
{
    CHECK(be->conv2d_forward(be, &c->y, &c->x, &c->w, c->bias ? &c->b : NULL, &c->d) == UNET_OK);
    return dot_r(c, &c->y);
}

static void grad_conv(int n, int ci, int h, int w, int co, int k, int s, int pad, int bias)
{
    char name[96];
    snprintf(name, sizeof name, "conv k%d s%d p%d [%d,%d,%d,%d]->%d%s", k, s, pad, n, ci, h, w, co,
             bias ? " bias" : "");
    Ctx c = { 0 };
    c.d = (UnetConvDesc){ k, s, pad };
    c.bias = bias;
    c.x = rand_tensor(n, ci, h, w, -1, 1);
    c.w = rand_tensor(co, ci, k, k, -0.5f, 0.5f);
    if (bias)
        c.b = rand_tensor(co, 1, 1, 1, -0.5f, 0.5f);
    c.y = tensor(n, co, unet_conv_out_size(h, &c.d), unet_conv_out_size(w, &c.d));
    c.r = objective_weights(&c.y);
    UnetTensor dy = tensor(c.y.n, c.y.c, c.y.h, c.y.w);
    memcpy(dy.data, c.r, unet_tensor_numel(&dy) * sizeof(float));

    Grad dx, dw, db;
    grad_init(&dx, &c.x);
    grad_init(&dw, &c.w);
    grad_init(&db, bias ? &c.b : &c.w);
    grad_prefill(&dx, 100, 200);
    grad_prefill(&dw, -1, 1);
    grad_prefill(&db, -1, 1);
    CHECK(be->conv2d_backward(be, &dx.t, &dw.t, bias ? &db.t : NULL, &dy, &c.x, &c.w, &c.d, 0) ==
          UNET_OK);
    grad_take(&dx, 0);
    grad_take(&dw, 1);
    grad_take(&db, 1);
    fd_check(name, "dx", &c, obj_conv, &c.x, dx.value);
    fd_check(name, "dw", &c, obj_conv, &c.w, dw.value);
    if (bias)
        fd_check(name, "db", &c, obj_conv, &c.b, db.value);

    grad_prefill(&dx, -1, 1);
    grad_prefill(&dw, -1, 1);
    grad_prefill(&db, -1, 1);
    CHECK(be->conv2d_backward(be, &dx.t, &dw.t, bias ? &db.t : NULL, &dy, &c.x, &c.w, &c.d, 1) ==
          UNET_OK);
    grad_check_same(name, "dx", &dx);
    grad_check_same(name, "dw", &dw);
    if (bias)
        grad_check_same(name, "db", &db);
    /* dx = NULL (first layer): weight gradient unchanged. */
    grad_prefill(&dw, -1, 1);
    CHECK(be->conv2d_backward(be, NULL, &dw.t, NULL, &dy, &c.x, &c.w, &c.d, 0) == UNET_OK);
    grad_check_same(name, "dw (dx NULL)", &dw);

    grad_free(&dx);
    grad_free(&dw);
    grad_free(&db);
    be->tensor_release(be, &dy);
    release_ctx(&c);
}

static double obj_upconv(Ctx *c)
{
    CHECK(be->upconv2x2_forward(be, &c->y, &c->x, &c->w, c->bias ? &c->b : NULL) == UNET_OK);
    return dot_r(c, &c->y);
}

static void grad_upconv(int n, int ci, int h, int w, int co, int bias)
{
    char name[96];
    snprintf(name, sizeof name, "upconv [%d,%d,%d,%d]->%d%s", n, ci, h, w, co, bias ? " bias" : "");
    Ctx c = { 0 };
    c.bias = bias;
    c.x = rand_tensor(n, ci, h, w, -1, 1);
    c.w = rand_tensor(ci, co, 2, 2, -0.5f, 0.5f);
    if (bias)
        c.b = rand_tensor(co, 1, 1, 1, -0.5f, 0.5f);
    c.y = tensor(n, co, 2 * h, 2 * w);
    c.r = objective_weights(&c.y);
    UnetTensor dy = tensor(n, co, 2 * h, 2 * w);
    memcpy(dy.data, c.r, unet_tensor_numel(&dy) * sizeof(float));
    Grad dx, dw, db;
    grad_init(&dx, &c.x);
    grad_init(&dw, &c.w);
    grad_init(&db, bias ? &c.b : &c.w);
    grad_prefill(&dx, 100, 200);
    grad_prefill(&dw, -1, 1);
    grad_prefill(&db, -1, 1);
    CHECK(be->upconv2x2_backward(be, &dx.t, &dw.t, bias ? &db.t : NULL, &dy, &c.x, &c.w, 0) ==
          UNET_OK);
    grad_take(&dx, 0);
    grad_take(&dw, 1);
    grad_take(&db, 1);
    fd_check(name, "dx", &c, obj_upconv, &c.x, dx.value);
    fd_check(name, "dw", &c, obj_upconv, &c.w, dw.value);
    if (bias)
        fd_check(name, "db", &c, obj_upconv, &c.b, db.value);
    grad_prefill(&dx, -1, 1);
    grad_prefill(&dw, -1, 1);
    grad_prefill(&db, -1, 1);
    CHECK(be->upconv2x2_backward(be, &dx.t, &dw.t, bias ? &db.t : NULL, &dy, &c.x, &c.w, 1) ==
          UNET_OK);
    grad_check_same(name, "dx", &dx);
    grad_check_same(name, "dw", &dw);
    if (bias)
        grad_check_same(name, "db", &db);
    grad_free(&dx);
    grad_free(&dw);
    grad_free(&db);
    be->tensor_release(be, &dy);
    release_ctx(&c);
}

/* ---- layers with only an input gradient ----------------------------------------------------- */

typedef UnetStatus (*Backward1)(Ctx *c, UnetTensor *dx, const UnetTensor *dy, int accumulate);

/* The common part: dx overwritten (garbage pre-fill) matches fd, accumulate adds it. */
static void check_dx_only(const char *name, Ctx *c, Objective f, Backward1 bwd)
{
    c->r = objective_weights(&c->y);
    f(c);
    UnetTensor dy = tensor(c->y.n, c->y.c, c->y.h, c->y.w);
    memcpy(dy.data, c->r, unet_tensor_numel(&dy) * sizeof(float));
    Grad dx;
    grad_init(&dx, &c->x);
    grad_prefill(&dx, 100, 200);
    CHECK(bwd(c, &dx.t, &dy, 0) == UNET_OK);
    grad_take(&dx, 0);
    fd_check(name, "dx", c, f, &c->x, dx.value);
    grad_prefill(&dx, -1, 1);
    CHECK(bwd(c, &dx.t, &dy, 1) == UNET_OK);
    grad_check_same(name, "dx", &dx);
    grad_free(&dx);
    be->tensor_release(be, &dy);
}

static double obj_pool(Ctx *c)
{
    CHECK(be->maxpool2x2_forward(be, &c->y, &c->x) == UNET_OK);
    return dot_r(c, &c->y);
}

static UnetStatus bwd_pool(Ctx *c, UnetTensor *dx, const UnetTensor *dy, int acc)
{
    return be->maxpool2x2_backward(be, dx, dy, &c->x, &c->y, acc);
}

/* Inputs are a shuffled ladder 0.05 apart, so no window has a near tie. */
static void grad_pool(int n, int ch, int h, int w)
{
    char name[64];
    snprintf(name, sizeof name, "maxpool [%d,%d,%d,%d]", n, ch, h, w);
    Ctx c = { 0 };
    c.x = tensor(n, ch, h, w);
    size_t count = unet_tensor_numel(&c.x);
    for (size_t i = 0; i < count; i++)
        c.x.data[i] = 0.05f * (float)i - 0.025f * (float)count;
    for (size_t i = count - 1; i > 0; i--) {
        size_t j = (size_t)test_rng_uniform(&rng, 0, (float)i + 0.999f);
        float t = c.x.data[i];
        c.x.data[i] = c.x.data[j];
        c.x.data[j] = t;
    }
    c.y = tensor(n, ch, h / 2, w / 2);
    check_dx_only(name, &c, obj_pool, bwd_pool);
    release_ctx(&c);
}

static double obj_resize(Ctx *c)
{
    if (c->upsample)
        CHECK(be->upsample2x_forward(be, &c->y, &c->x) == UNET_OK);
    else
        CHECK(be->resize_bilinear_forward(be, &c->y, &c->x) == UNET_OK);
    return dot_r(c, &c->y);
}

static UnetStatus bwd_resize(Ctx *c, UnetTensor *dx, const UnetTensor *dy, int acc)
{
    return c->upsample ? be->upsample2x_backward(be, dx, dy, acc)
                       : be->resize_bilinear_backward(be, dx, dy, acc);
}

static void grad_resize(int n, int ch, int h, int w, int oh, int ow, int upsample)
{
    char name[64];
    snprintf(name, sizeof name, "%s [%d,%d,%d,%d]->%dx%d", upsample ? "upsample2x" : "resize", n,
             ch, h, w, oh, ow);
    Ctx c = { 0 };
    c.upsample = upsample;
    c.x = rand_tensor(n, ch, h, w, -1, 1);
    c.y = tensor(n, ch, oh, ow);
    check_dx_only(name, &c, obj_resize, bwd_resize);
    release_ctx(&c);
}

static double obj_act(Ctx *c)
{
    CHECK(be->activation_forward(be, &c->y, &c->x, c->act, c->slope) == UNET_OK);
    return dot_r(c, &c->y);
}

static UnetStatus bwd_act(Ctx *c, UnetTensor *dx, const UnetTensor *dy, int acc)
{
    return be->activation_backward(be, dx, dy, &c->y, c->act, c->slope, acc);
}

static void grad_act(UnetActivation act, float slope)
{
    char name[64];
    snprintf(name, sizeof name, "activation %s %g", act == UNET_ACT_RELU ? "relu" : "leaky",
             (double)slope);
    Ctx c = { 0 };
    c.act = act;
    c.slope = slope;
    c.x = rand_tensor(2, 3, 4, 5, 0.05f, 2.0f);
    for (size_t i = 0; i < unet_tensor_numel(&c.x); i++) /* half negative, none within 0.05 of 0 */
        if (test_rng_uniform(&rng, 0, 1) < 0.5f)
            c.x.data[i] = -c.x.data[i];
    c.y = tensor(2, 3, 4, 5);
    check_dx_only(name, &c, obj_act, bwd_act);
    release_ctx(&c);
}

/* ---- crop-concat ----------------------------------------------------------------------------- */

static double obj_crop(Ctx *c)
{
    CHECK(be->crop_concat_forward(be, &c->y, &c->skip, &c->up) == UNET_OK);
    return dot_r(c, &c->y);
}

static void grad_crop(int n, int cs, int hs, int ws, int cu, int h, int w)
{
    char name[80];
    snprintf(name, sizeof name, "crop_concat [%d,%d,%d,%d]+[%d,%d,%d,%d]", n, cs, hs, ws, n, cu, h,
             w);
    Ctx c = { 0 };
    c.skip = rand_tensor(n, cs, hs, ws, -1, 1);
    c.up = rand_tensor(n, cu, h, w, -1, 1);
    c.y = tensor(n, cs + cu, h, w);
    c.r = objective_weights(&c.y);
    UnetTensor dy = tensor(n, cs + cu, h, w);
    memcpy(dy.data, c.r, unet_tensor_numel(&dy) * sizeof(float));
    Grad ds, du;
    grad_init(&ds, &c.skip);
    grad_init(&du, &c.up);
    grad_prefill(&ds, 100, 200);
    grad_prefill(&du, 100, 200);
    CHECK(be->crop_concat_backward(be, &ds.t, &du.t, &dy, 0, 0) == UNET_OK);
    grad_take(&ds, 0);
    grad_take(&du, 0);
    fd_check(name, "dskip", &c, obj_crop, &c.skip, ds.value);
    fd_check(name, "dup", &c, obj_crop, &c.up, du.value);
    /* Each side's accumulate flag on its own. */
    grad_prefill(&ds, -1, 1);
    grad_prefill(&du, 100, 200);
    CHECK(be->crop_concat_backward(be, &ds.t, &du.t, &dy, 1, 0) == UNET_OK);
    grad_check_same(name, "dskip", &ds);
    CHECK(!memcmp(du.t.data, du.value, unet_tensor_numel(&du.t) * sizeof(float)));
    grad_prefill(&du, -1, 1);
    CHECK(be->crop_concat_backward(be, NULL, &du.t, &dy, 0, 1) == UNET_OK);
    grad_check_same(name, "dup", &du);
    grad_free(&ds);
    grad_free(&du);
    be->tensor_release(be, &dy);
    release_ctx(&c);
}

/* ---- normalisation --------------------------------------------------------------------------- */

static double obj_bn(Ctx *c)
{
    CHECK(be->batchnorm_forward(be, &c->y, &c->x, &c->gamma, &c->beta, &c->rm, &c->rv, &c->sm,
                                &c->si, 0.1f, 1e-5f, 1) == UNET_OK);
    return dot_r(c, &c->y);
}

static double obj_in(Ctx *c)
{
    CHECK(be->instancenorm_forward(be, &c->y, &c->x, c->affine ? &c->gamma : NULL,
                                   c->affine ? &c->beta : NULL, &c->sm, &c->si, 1e-5f) == UNET_OK);
    return dot_r(c, &c->y);
}

static void grad_norm(int instance, int affine, int n, int ch, int h, int w)
{
    char name[80];
    snprintf(name, sizeof name, "%s%s [%d,%d,%d,%d]", instance ? "instancenorm" : "batchnorm train",
             instance ? (affine ? " affine" : " plain") : "", n, ch, h, w);
    Ctx c = { 0 };
    c.affine = affine;
    c.x = rand_tensor(n, ch, h, w, -1, 2);
    c.gamma = rand_tensor(ch, 1, 1, 1, 0.5f, 1.5f);
    c.beta = rand_tensor(ch, 1, 1, 1, -0.5f, 0.5f);
    c.rm = tensor(ch, 1, 1, 1);
    c.rv = tensor(ch, 1, 1, 1);
    be->tensor_fill(be, &c.rv, 1.0f);
    c.sm = tensor(instance ? n : 1, ch, 1, 1);
    c.si = tensor(instance ? n : 1, ch, 1, 1);
    c.y = tensor(n, ch, h, w);
    Objective f = instance ? obj_in : obj_bn;
    c.r = objective_weights(&c.y);
    f(&c);
    UnetTensor dy = tensor(n, ch, h, w);
    memcpy(dy.data, c.r, unet_tensor_numel(&dy) * sizeof(float));
    Grad dx, dg, db;
    grad_init(&dx, &c.x);
    grad_init(&dg, &c.gamma);
    grad_init(&db, &c.beta);
    for (int acc = 0; acc < 2; acc++) {
        grad_prefill(&dx, acc ? -1 : 100, acc ? 1 : 200);
        grad_prefill(&dg, -1, 1);
        grad_prefill(&db, -1, 1);
        UnetTensor *pg = affine ? &dg.t : NULL, *pb = affine ? &db.t : NULL;
        UnetStatus st =
            instance
                ? be->instancenorm_backward(be, &dx.t, pg, pb, &dy, &c.x, affine ? &c.gamma : NULL,
                                            &c.sm, &c.si, acc)
                : be->batchnorm_backward(be, &dx.t, pg, pb, &dy, &c.x, &c.gamma, &c.sm, &c.si, acc);
        CHECK(st == UNET_OK);
        if (!acc) {
            grad_take(&dx, 0);
            grad_take(&dg, 1);
            grad_take(&db, 1);
            fd_check(name, "dx", &c, f, &c.x, dx.value);
            if (affine) {
                fd_check(name, "dgamma", &c, f, &c.gamma, dg.value);
                fd_check(name, "dbeta", &c, f, &c.beta, db.value);
            }
        } else {
            grad_check_same(name, "dx", &dx);
            if (affine) {
                grad_check_same(name, "dgamma", &dg);
                grad_check_same(name, "dbeta", &db);
            }
        }
    }
    grad_free(&dx);
    grad_free(&dg);
    grad_free(&db);
    be->tensor_release(be, &dy);
    release_ctx(&c);
}

/* ---- losses ---------------------------------------------------------------------------------- */

static double obj_loss(Ctx *c)
{
    CHECK(be->loss_forward_backward(be, &c->loss, NULL, &c->x, &c->target,
                                    c->weight.data ? &c->weight : NULL, c->cw, c->kind,
                                    1.0f) == UNET_OK);
    return c->loss.data[0];
}

static void grad_loss(UnetLossKind kind, int n, int k, int h, int w, int weighted, const float *cw)
{
    char name[80];
    snprintf(name, sizeof name, "loss %s K%d [%d,%d,%d]%s%s",
             kind == UNET_LOSS_BCE          ? "bce"
             : kind == UNET_LOSS_SOFTMAX_CE ? "ce"
                                            : "dice",
             k, n, h, w, weighted ? " weighted" : "", cw ? " classw" : "");
    Ctx c = { 0 };
    c.kind = kind;
    c.cw = cw;
    c.x = rand_tensor(n, k, h, w, -3, 3);
    c.target = tensor(n, 1, h, w);
    for (size_t i = 0; i < unet_tensor_numel(&c.target); i++)
        c.target.data[i] = k == 1 ? (test_rng_uniform(&rng, 0, 1) < 0.5f ? 1.0f : 0.0f)
                                  : floorf(test_rng_uniform(&rng, 0, (float)k - 0.001f));
    if (weighted)
        c.weight = rand_tensor(n, 1, h, w, 0.2f, 3.0f);
    c.loss = tensor(1, 1, 1, 1);
    UnetTensor d = tensor(n, k, h, w);
    CHECK(be->loss_forward_backward(be, &c.loss, &d, &c.x, &c.target, weighted ? &c.weight : NULL,
                                    cw, kind, 1.0f) == UNET_OK);
    fd_check(name, "dlogits", &c, obj_loss, &c.x, d.data);
    /* grad_scale multiplies the gradient and leaves the loss alone. */
    float loss1 = c.loss.data[0];
    UnetTensor d2 = tensor(n, k, h, w);
    CHECK(be->loss_forward_backward(be, &c.loss, &d2, &c.x, &c.target, weighted ? &c.weight : NULL,
                                    cw, kind, 0.25f) == UNET_OK);
    CHECK(c.loss.data[0] == loss1);
    for (size_t i = 0; i < unet_tensor_numel(&d); i++)
        CHECK_MSG(fabsf(d2.data[i] - 0.25f * d.data[i]) <= 1e-6f * fabsf(d.data[i]) + 1e-12f,
                  "%s: grad_scale 0.25 at %zu: %g vs %g", name, i, d2.data[i], d.data[i]);
    be->tensor_release(be, &d);
    be->tensor_release(be, &d2);
    release_ctx(&c);
}

int main(void)
{
    UnetError err = { 0 };
    be = unet_backend_reference_new(&err);
    if (!be) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    test_rng_seed(&rng, 7);

    grad_conv(2, 3, 6, 5, 4, 3, 1, 1, 1); /* same padding, bias, batch */
    grad_conv(1, 2, 7, 6, 3, 3, 1, 0, 0); /* valid, no bias */
    grad_conv(2, 2, 7, 8, 3, 3, 2, 1, 1); /* stride 2, same */
    grad_conv(1, 3, 9, 7, 2, 3, 2, 0, 0); /* stride 2, valid, odd size */
    grad_conv(2, 4, 3, 4, 3, 1, 1, 0, 1); /* 1x1 head */
    grad_upconv(2, 3, 3, 2, 2, 1);
    grad_upconv(1, 4, 2, 3, 3, 0);
    grad_pool(2, 2, 5, 6);
    grad_pool(1, 3, 4, 4);
    grad_resize(1, 2, 3, 4, 6, 8, 1);
    grad_resize(2, 1, 5, 7, 3, 4, 0);
    grad_resize(1, 1, 3, 2, 7, 5, 0);
    grad_resize(1, 2, 4, 4, 9, 6, 0);
    grad_crop(2, 2, 7, 6, 3, 3, 4); /* odd crop offsets: (7-3)/2 = 2, (6-4)/2 = 1 */
    grad_crop(1, 3, 8, 9, 2, 3, 4); /* (8-3)/2 = 2, (9-4)/2 = 2 (floor) */
    grad_crop(1, 2, 4, 4, 2, 4, 4); /* plain concatenation */
    grad_act(UNET_ACT_RELU, 0.0f);
    grad_act(UNET_ACT_LEAKY, 0.1f);
    grad_act(UNET_ACT_LEAKY, 0.01f);
    grad_norm(0, 1, 2, 3, 3, 2); /* batch norm, training mode */
    grad_norm(0, 1, 1, 2, 4, 5);
    grad_norm(1, 1, 2, 3, 3, 4); /* instance norm, affine */
    grad_norm(1, 0, 2, 2, 4, 3); /* instance norm, no affine */

    const float cw3[3] = { 0.5f, 2.0f, 1.25f };
    const float cw4[4] = { 1.0f, 0.3f, 3.0f, 1.5f };
    grad_loss(UNET_LOSS_BCE, 2, 1, 3, 4, 1, NULL);
    grad_loss(UNET_LOSS_BCE, 1, 1, 4, 4, 0, NULL);
    grad_loss(UNET_LOSS_SOFTMAX_CE, 2, 3, 3, 3, 1, cw3);
    grad_loss(UNET_LOSS_SOFTMAX_CE, 2, 4, 2, 3, 0, cw4);
    grad_loss(UNET_LOSS_SOFTMAX_CE, 1, 2, 4, 3, 1, NULL);
    grad_loss(UNET_LOSS_DICE, 2, 1, 3, 4, 1, NULL);
    grad_loss(UNET_LOSS_DICE, 1, 1, 4, 4, 0, NULL);
    grad_loss(UNET_LOSS_DICE, 2, 3, 3, 3, 1, NULL);
    grad_loss(UNET_LOSS_DICE, 1, 4, 3, 4, 0, NULL);

    unet_backend_destroy(be);
    return test_finish("grad-ops");
}
