/* bf16-check.c - bf16 convolutions and training of a backend checked against the fp32 reference within the bounds of bf16-check.h. */
#include "bf16-check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-compare.h"
#include "model.h"
#include "test-common.h"

/* One logical tensor on the test backend ([0]) and the reference ([1]);
 * parameters are views of buffers, as the models make them. */
typedef struct Dual {
    UnetBackend *be[2];
    UnetTensor t[2];
    float *buf[2];
    size_t count;
} Dual;

static Dual dual(UnetBackend *test, UnetBackend *ref, int param, int n, int c, int h, int w,
                 const float *host)
{
    Dual d;
    memset(&d, 0, sizeof d);
    d.be[0] = test;
    d.be[1] = ref;
    d.count = (size_t)n * c * h * w;
    for (int i = 0; i < 2; i++) {
        UnetBackend *be = d.be[i];
        if (param) {
            d.buf[i] = be->buffer_alloc(be, d.count);
            CHECK_MSG(d.buf[i] != NULL, "%s", be->error.message);
            if (d.buf[i])
                be->tensor_view(be, &d.t[i], d.buf[i], n, c, h, w);
            if (d.buf[i] && host)
                CHECK_MSG(be->buffer_upload(be, d.buf[i], host, d.count) == UNET_OK, "%s",
                          be->error.message);
        } else {
            CHECK_MSG(be->tensor_init(be, &d.t[i], n, c, h, w) == UNET_OK, "%s",
                      be->error.message);
            if (host)
                CHECK_MSG(be->tensor_upload(be, &d.t[i], host) == UNET_OK, "%s",
                          be->error.message);
        }
    }
    return d;
}

static void dual_get(const Dual *d, int i, float *host)
{
    UnetBackend *be = d->be[i];
    UnetStatus st = d->buf[i] ? be->buffer_download(be, host, d->buf[i], d->count)
                              : be->tensor_download(be, host, &d->t[i]);
    CHECK_MSG(st == UNET_OK, "%s", be->error.message);
}

static void dual_free(Dual *d)
{
    for (int i = 0; i < 2; i++) {
        d->be[i]->tensor_release(d->be[i], &d->t[i]);
        if (d->buf[i])
            d->be[i]->buffer_free(d->be[i], d->buf[i]);
    }
}

static float *random_host(TestRng *rng, size_t count, float lo, float hi)
{
    float *p = malloc(count * sizeof(float));
    test_fill_uniform(rng, p, count, lo, hi);
    return p;
}

static float *abs_copy(const float *x, size_t count)
{
    float *p = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++)
        p[i] = fabsf(x[i]);
    return p;
}

/* Reference tensor from host data (activation or parameter view). */
static void ref_put(UnetBackend *ref, UnetTensor *t, float **buf, int param, int n, int c, int h,
                    int w, const float *host)
{
    size_t count = (size_t)n * c * h * w;
    *buf = NULL;
    if (param) {
        *buf = ref->buffer_alloc(ref, count);
        CHECK(*buf != NULL);
        ref->tensor_view(ref, t, *buf, n, c, h, w);
        CHECK(ref->buffer_upload(ref, *buf, host, count) == UNET_OK);
    } else {
        CHECK(ref->tensor_init(ref, t, n, c, h, w) == UNET_OK);
        CHECK(ref->tensor_upload(ref, t, host) == UNET_OK);
    }
}

static void ref_drop(UnetBackend *ref, UnetTensor *t, float *buf)
{
    ref->tensor_release(ref, t);
    if (buf)
        ref->buffer_free(ref, buf);
}

/* Compares one output of the test backend with the reference against the
 * element bound for sums of K products with absolute sums S (host). */
static double check_output(const char *what, const Dual *d, const float *S, size_t K,
                           double *nmse_out)
{
    float *a = malloc(d->count * sizeof(float)), *r = malloc(d->count * sizeof(float));
    dual_get(d, 0, a);
    dual_get(d, 1, r);
    size_t where = 0;
    double ratio = bf16_worst_ratio(a, r, S, d->count, K, &where);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < d->count; i++) {
        num += ((double)a[i] - r[i]) * ((double)a[i] - r[i]);
        den += (double)r[i] * r[i];
    }
    double nmse = den > 0.0 ? num / den : num;
    CHECK_MSG(ratio <= 1.0,
              "%s: element %zu is %.8g, fp32 %.8g: error %.3g is %.3g x the bf16 bound (S %.4g, "
              "K %zu)",
              what, where, (double)a[where], (double)r[where],
              fabs((double)a[where] - r[where]), ratio, (double)S[where], K);
    CHECK_MSG(nmse <= BF16_NMSE, "%s: nmse %.3g above %.3g", what, nmse, BF16_NMSE);
    printf("  %-46s worst %.2f of the bound, nmse %.2e\n", what, ratio, nmse);
    free(a);
    free(r);
    if (nmse_out)
        *nmse_out = nmse;
    return ratio;
}

/* db comes from fp32 dy in every precision: fp32 agreement. */
static void check_fp32(const char *what, const Dual *d)
{
    float *a = malloc(d->count * sizeof(float)), *r = malloc(d->count * sizeof(float));
    dual_get(d, 0, a);
    dual_get(d, 1, r);
    size_t where = 0;
    double diff = test_max_rel_diff(a, r, d->count, &where);
    CHECK_MSG(diff <= 1e-4, "%s: %.3g at %zu (it is not a bf16 quantity)", what, diff, where);
    free(a);
    free(r);
}

/* Passes of one layer on backend be: a convolution (d) or, d NULL, a 2x2
 * up-convolution. */
static UnetStatus layer_forward(UnetBackend *be, const UnetConvDesc *d, UnetTensor *y,
                                const UnetTensor *x, const UnetTensor *w, const UnetTensor *b)
{
    return d ? be->conv2d_forward(be, y, x, w, b, d) : be->upconv2x2_forward(be, y, x, w, b);
}

static UnetStatus layer_backward(UnetBackend *be, const UnetConvDesc *d, UnetTensor *dx,
                                 UnetTensor *dw, UnetTensor *db, const UnetTensor *dy,
                                 const UnetTensor *x, const UnetTensor *w, int acc)
{
    return d ? be->conv2d_backward(be, dx, dw, db, dy, x, w, d, acc)
             : be->upconv2x2_backward(be, dx, dw, db, dy, x, w, acc);
}

/* bf16_check_conv (d) and bf16_check_upconv (d NULL): x [n,ci,h,w], the
 * filter [co,ci,k,k] (up-convolution: [ci,co,2,2]), y [n,co,ho,wo]. */
static double check_layer(UnetBackend *test, UnetBackend *ref, const UnetConvDesc *d, int n,
                          int ci, int h, int w, int co, int acc, uint64_t seed)
{
    TestRng rng;
    test_rng_seed(&rng, seed);
    const int k = d ? d->kernel : 2;
    const int ho = d ? unet_conv_out_size(h, d) : 2 * h, wo = d ? unet_conv_out_size(w, d) : 2 * w;
    const int w0 = d ? co : ci, w1 = d ? ci : co;
    size_t nx = (size_t)n * ci * h * w, nw = (size_t)co * ci * k * k;
    size_t ny = (size_t)n * co * ho * wo;
    float *hx = random_host(&rng, nx, -1, 1), *hw = random_host(&rng, nw, -0.1f, 0.1f);
    float *hb = random_host(&rng, (size_t)co, -0.5f, 0.5f), *hdy = random_host(&rng, ny, -1, 1);
    float *hdx = random_host(&rng, nx, -1, 1), *hdw = random_host(&rng, nw, -1, 1);
    float *hdb = random_host(&rng, (size_t)co, -1, 1);
    Dual x = dual(test, ref, 0, n, ci, h, w, hx), wt = dual(test, ref, 1, w0, w1, k, k, hw);
    Dual b = dual(test, ref, 1, 1, co, 1, 1, hb), y = dual(test, ref, 0, n, co, ho, wo, NULL);
    Dual dy = dual(test, ref, 0, n, co, ho, wo, hdy), dx = dual(test, ref, 0, n, ci, h, w, hdx);
    Dual dw = dual(test, ref, 1, w0, w1, k, k, hdw), db = dual(test, ref, 1, 1, co, 1, 1, hdb);
    for (int i = 0; i < 2; i++) {
        UnetBackend *be = i ? ref : test;
        CHECK_MSG(layer_forward(be, d, &y.t[i], &x.t[i], &wt.t[i], &b.t[i]) == UNET_OK, "%s: %s",
                  be->name, be->error.message);
        CHECK_MSG(layer_backward(be, d, &dx.t[i], &dw.t[i], &db.t[i], &dy.t[i], &x.t[i],
                                 &wt.t[i], acc) == UNET_OK,
                  "%s: %s", be->name, be->error.message);
    }
    /* S of every output: the same passes on |inputs| (dw from zero) */
    float *ax = abs_copy(hx, nx), *aw = abs_copy(hw, nw), *ady = abs_copy(hdy, ny);
    float *zero = calloc(nw, sizeof(float));
    float *Sy = malloc(ny * sizeof(float)), *Sdx = malloc(nx * sizeof(float));
    float *Sdw = malloc(nw * sizeof(float));
    UnetTensor tx, tw, tdy, ty, tdx, tdw;
    float *bw, *bdw, *unused;
    ref_put(ref, &tx, &unused, 0, n, ci, h, w, ax);
    ref_put(ref, &tw, &bw, 1, w0, w1, k, k, aw);
    ref_put(ref, &tdy, &unused, 0, n, co, ho, wo, ady);
    ref_put(ref, &ty, &unused, 0, n, co, ho, wo, ady);
    ref_put(ref, &tdx, &unused, 0, n, ci, h, w, ax);
    ref_put(ref, &tdw, &bdw, 1, w0, w1, k, k, zero);
    CHECK(layer_forward(ref, d, &ty, &tx, &tw, NULL) == UNET_OK);
    CHECK(layer_backward(ref, d, &tdx, &tdw, NULL, &tdy, &tx, &tw, 0) == UNET_OK);
    CHECK(ref->tensor_download(ref, Sy, &ty) == UNET_OK);
    CHECK(ref->tensor_download(ref, Sdx, &tdx) == UNET_OK);
    CHECK(ref->buffer_download(ref, Sdw, bdw, nw) == UNET_OK);
    char what[128];
    if (d)
        snprintf(what, sizeof what, "conv%dx%d/%d [%d,%d,%d,%d]->%d%s y", k, k, d->stride, n, ci,
                 h, w, co, acc ? " acc" : "");
    else
        snprintf(what, sizeof what, "upconv [%d,%d,%d,%d]->%d%s y", n, ci, h, w, co,
                 acc ? " acc" : "");
    /* terms per output: y sums ci taps per filter position (k*k of them in a
     * convolution, one in a stride-2 up-convolution), dw one per y (conv) or
     * x (up-convolution) pixel */
    double worst = check_output(what, &y, Sy, d ? (size_t)ci * k * k : (size_t)ci, NULL);
    worst = fmax(worst, check_output(d ? "  dx (backward-data)" : "  dx", &dx, Sdx,
                                     (size_t)co * k * k, NULL));
    worst = fmax(worst, check_output(d ? "  dw (backward-filter, added)" : "  dw (added)", &dw,
                                     Sdw, d ? (size_t)n * ho * wo : (size_t)n * h * w, NULL));
    check_fp32("  db", &db);
    ref_drop(ref, &tx, NULL);
    ref_drop(ref, &tw, bw);
    ref_drop(ref, &tdy, NULL);
    ref_drop(ref, &ty, NULL);
    ref_drop(ref, &tdx, NULL);
    ref_drop(ref, &tdw, bdw);
    Dual *all[] = { &x, &wt, &b, &y, &dy, &dx, &dw, &db };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dual_free(all[i]);
    float *hosts[] = { hx, hw, hb, hdy, hdx, hdw, hdb, ax, aw, ady, zero, Sy, Sdx, Sdw };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        free(hosts[i]);
    return worst;
}

double bf16_check_conv(UnetBackend *test, UnetBackend *ref, int n, int ci, int h, int w, int co,
                       int k, int stride, int pad, int acc, uint64_t seed)
{
    UnetConvDesc d = { k, stride, pad };
    return check_layer(test, ref, &d, n, ci, h, w, co, acc, seed);
}

double bf16_check_upconv(UnetBackend *test, UnetBackend *ref, int n, int ci, int h, int w, int co,
                         int acc, uint64_t seed)
{
    return check_layer(test, ref, NULL, n, ci, h, w, co, acc, seed);
}

void bf16_check_training(UnetBackend *test, UnetBackend *ref, uint64_t seed,
                         double *worst_loss_rel, double *delta_nmse)
{
    UnetModelConfig cfg;
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    cfg.depth = 3;
    cfg.base = 8;
    cfg.seed = 11;
    TestRng rng;
    test_rng_seed(&rng, seed);
    const ModelCompare mc = { "unet bf16", { "bf16", "fp32" }, BF16_LOSS_REL, BF16_DELTA_NMSE,
                              1e-4 };
    model_compare(test, ref, &cfg, 2, 60, UNET_LOSS_BCE, &rng, &mc, worst_loss_rel, delta_nmse);
}
