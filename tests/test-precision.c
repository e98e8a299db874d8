/* test-precision.c - the bf16 conversion of kernels.h, the precision setting (names, CPU backends, config.json), and the bf16 error bounds of bf16-check.h on an emulated bf16 backend. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bf16-check.h"
#include "kernels.h"
#include "model.h"
#include "op-harness.h"
#include "test-common.h"
#include "trainer.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round to nearest even by another route: the two bf16 neighbours of f
 * (truncation and the next pattern up in magnitude) compared in double. */
static uint16_t slow_bf16(float f)
{
    if (isnan(f))
        return (uint16_t)((bits(f) >> 16) | 0x40u);
    uint16_t lo = (uint16_t)(bits(f) >> 16);
    uint16_t hi = (uint16_t)(lo + 1);
    double v = fabs((double)f);
    double a = fabs((double)unet_k_bf16_to_float(lo));
    /* the pattern above 0x7f7f is inf: the midpoint to it is 2^128 - 2^119 */
    double b = (hi & 0x7fffu) == 0x7f80u ? ldexp(1.0, 128) : fabs((double)unet_k_bf16_to_float(hi));
    if (isinf(f))
        return lo;
    if (v - a < b - v)
        return lo;
    if (v - a > b - v)
        return hi;
    return (lo & 1u) ? hi : lo;
}

static void conversion(void)
{
    /* exact values */
    CHECK(unet_k_float_to_bf16(1.0f) == 0x3f80);
    CHECK(unet_k_float_to_bf16(-2.0f) == 0xc000);
    CHECK(unet_k_float_to_bf16(0.0f) == 0x0000);
    CHECK(unet_k_float_to_bf16(-0.0f) == 0x8000);
    CHECK(unet_k_float_to_bf16(0.15625f) == 0x3e20);
    CHECK(unet_k_bf16_to_float(0x3f80) == 1.0f);
    CHECK(unet_k_bf16_to_float(0x4049) == 3.140625f);
    CHECK(signbit(unet_k_bf16_to_float(0x8000)) && unet_k_bf16_to_float(0x8000) == 0.0f);
    /* every non-NaN pattern survives the round trip; NaN patterns stay NaN */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = unet_k_bf16_to_float((uint16_t)h);
        if (bits(f) != h << 16)
            bad++;
        uint16_t back = unet_k_float_to_bf16(f);
        if (isnan(f) ? !isnan(unet_k_bf16_to_float(back)) : back != h)
            bad++;
    }
    CHECK_MSG(bad == 0, "%d of 65536 bf16 patterns do not round-trip", bad);

    /* ties go to the even neighbour, anything past the tie goes away from it */
    CHECK(unet_k_float_to_bf16(1.0f + 0x1p-8f) == 0x3f80);          /* tie, 0x3f80 even */
    CHECK(unet_k_float_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);      /* tie, 0x3f81 odd */
    CHECK(unet_k_float_to_bf16(from_bits(0x3f808001u)) == 0x3f81);  /* just past the tie */
    CHECK(unet_k_float_to_bf16(from_bits(0x3f807fffu)) == 0x3f80);  /* just before it */
    CHECK(unet_k_float_to_bf16(-(1.0f + 3 * 0x1p-8f)) == 0xbf82);
    CHECK(unet_k_float_to_bf16(from_bits(0x3fff8000u)) == 0x4000);  /* carry into the exponent */

    /* NaN: quiet, sign kept; a signalling NaN whose payload is all in the low
     * bits must not truncate to inf */
    CHECK(unet_k_float_to_bf16(from_bits(0x7fc00000u)) == 0x7fc0);
    CHECK(unet_k_float_to_bf16(from_bits(0x7f800001u)) == 0x7fc0);
    CHECK(unet_k_float_to_bf16(from_bits(0xff800001u)) == 0xffc0);
    CHECK(unet_k_float_to_bf16(from_bits(0x7fffffffu)) == 0x7fff);
    CHECK(isnan(unet_k_bf16_to_float(unet_k_float_to_bf16(NAN))));

    /* infinities, and overflow past the largest bf16 (0x7f7f) */
    CHECK(unet_k_float_to_bf16(INFINITY) == 0x7f80);
    CHECK(unet_k_float_to_bf16(-INFINITY) == 0xff80);
    CHECK(unet_k_float_to_bf16(FLT_MAX) == 0x7f80);
    CHECK(unet_k_float_to_bf16(-FLT_MAX) == 0xff80);
    CHECK(unet_k_float_to_bf16(from_bits(0x7f7f7fffu)) == 0x7f7f); /* below the tie to inf */
    CHECK(unet_k_float_to_bf16(from_bits(0x7f7f8000u)) == 0x7f80); /* tie: 0x7f7f is odd */

    /* denormals round like everything else */
    CHECK(unet_k_float_to_bf16(from_bits(0x00000001u)) == 0x0000);
    CHECK(unet_k_float_to_bf16(from_bits(0x00008000u)) == 0x0000); /* tie to even 0 */
    CHECK(unet_k_float_to_bf16(from_bits(0x00018000u)) == 0x0002); /* tie to even 2 */
    CHECK(unet_k_float_to_bf16(from_bits(0x00008001u)) == 0x0001);
    CHECK(unet_k_float_to_bf16(from_bits(0x80010000u)) == 0x8001);
    CHECK(bits(unet_k_bf16_to_float(0x0001)) == 0x00010000u);
    CHECK(unet_k_float_to_bf16(from_bits(0x007fffffu)) == 0x0080); /* largest denormal -> FLT_MIN */

    /* against the slow rounding: random patterns and every pattern near a
     * tie; relative error <= 2^-8 (half the spacing of [1,2)) for normal values */
    TestRng rng;
    test_rng_seed(&rng, 9);
    int mismatches = 0;
    double worst_rel = 0.0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)(test_rng_uniform(&rng, 0, 65536.0f)) << 16 |
                     (uint32_t)test_rng_uniform(&rng, 0, 65536.0f);
        if (i % 4 == 1)
            u = (u & 0xffff0000u) | (0x7ffeu + (uint32_t)(i % 3)); /* 0x7ffe, 0x7fff, 0x8000 */
        if (i % 4 == 2)
            u = (u & 0xffff0000u) | (0x8000u + (uint32_t)(i % 3));
        float f = from_bits(u);
        uint16_t fast = unet_k_float_to_bf16(f), slow = slow_bf16(f);
        if (fast != slow && !(isnan(f) && fast == slow)) {
            if (mismatches++ < 5)
                fprintf(stderr, "0x%08x: 0x%04x, expected 0x%04x\n", u, fast, slow);
        }
        if (isfinite(f) && fabsf(f) >= FLT_MIN && fabsf(f) <= 0x1.fep127f) {
            double rel = fabs((double)unet_k_bf16_to_float(fast) - f) / fabs((double)f);
            worst_rel = fmax(worst_rel, rel);
        }
    }
    CHECK_MSG(mismatches == 0, "%d conversions differ from round-to-nearest-even", mismatches);
    CHECK_MSG(worst_rel <= 0x1p-8 && worst_rel > 0x1p-9, "worst relative error %.4g (2^-8 = %.4g)",
              worst_rel, 0x1p-8);
    printf("bf16 conversion: round trip of 65536 patterns, 2M random values, worst relative error "
           "%.4g\n", worst_rel);
}

static void names_and_cpu_backends(void)
{
    UnetError err = { 0 };
    UnetPrecision p;
    const char *names[] = { "fp32", "tf32", "bf16" };
    for (int i = 0; i < 3; i++) {
        CHECK(unet_precision_parse(names[i], &p, &err) == UNET_OK);
        CHECK(!strcmp(unet_precision_name(p), names[i]));
    }
    CHECK(unet_precision_parse("fp16", &p, &err) == UNET_ERR_INVALID);
    CHECK_MSG(strstr(err.message, "unknown precision 'fp16': use fp32, tf32 or bf16") != NULL,
              "message: %s", err.message);

    UnetBackend *be[2] = { unet_backend_reference_new(&err), unet_backend_cpu_new(1, &err) };
    for (int i = 0; i < 2; i++) {
        CHECK_MSG(be[i] != NULL, "%s", err.message);
        if (!be[i])
            continue;
        CHECK(be[i]->precision == UNET_PRECISION_FP32);
        CHECK(unet_backend_set_precision(be[i], UNET_PRECISION_TF32, &err) == UNET_OK);
        CHECK(be[i]->precision == UNET_PRECISION_FP32); /* no TF32 on the CPU */
        CHECK(unet_backend_set_precision(be[i], UNET_PRECISION_FP32, &err) == UNET_OK);
        unet_error_clear(&err);
        CHECK(unet_backend_set_precision(be[i], UNET_PRECISION_BF16, &err) ==
              UNET_ERR_UNSUPPORTED);
        CHECK_MSG(strstr(err.message, "bf16 needs the CUDA backend; use --precision fp32 or "
                                      "--device cuda") != NULL,
                  "message: %s", err.message);
        CHECK(be[i]->precision == UNET_PRECISION_FP32);
        CHECK(unet_backend_set_precision(be[i], (UnetPrecision)7, &err) == UNET_ERR_INVALID);
        unet_backend_destroy(be[i]);
    }
}

static void train_config(void)
{
    UnetTrainConfig cfg, back;
    unet_train_config_default(&cfg);
    CHECK(cfg.precision == UNET_PRECISION_TF32);
    cfg.precision = UNET_PRECISION_BF16;
    char *json = unet_train_config_to_json(&cfg);
    CHECK(json && strstr(json, "\"precision\": \"bf16\"") != NULL);
    UnetError err = { 0 };
    unet_train_config_default(&back);
    CHECK_MSG(json && unet_train_config_from_json(&back, json, &err) == UNET_OK, "%s",
              err.message);
    CHECK(back.precision == UNET_PRECISION_BF16);
    free(json);
    /* a config without the key (older runs) keeps the default */
    unet_train_config_default(&back);
    CHECK(unet_train_config_from_json(&back, "{\"execution\":{\"device\":\"cpu\"}}", &err) ==
          UNET_OK);
    CHECK(back.precision == UNET_PRECISION_TF32);
    CHECK(unet_train_config_from_json(&back, "{\"execution\":{\"precision\":\"half\"}}", &err) !=
          UNET_OK);
    CHECK_MSG(strstr(err.message, "precision") && strstr(err.message, "half"), "message: %s",
              err.message);
    back.precision = (UnetPrecision)5;
    CHECK(unet_train_config_validate(&back, &err) == UNET_ERR_INVALID);
}

/* ---- an emulated bf16 backend: the reference with its convolutions fed
 * bf16-rounded inputs and their results rounded to bf16, exactly the
 * arithmetic the CUDA backend's BF16 precision specifies. It checks that the
 * bounds of bf16-check.h hold for that arithmetic (and are not vacuous). */

static UnetBackend *ref;
static UnetBackend emu;

static void round_host(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = unet_k_bf16_to_float(unet_k_float_to_bf16(x[i]));
}

/* A reference tensor holding a bf16-rounded copy of t (or zeros). */
static UnetStatus rounded(UnetTensor *out, const UnetTensor *t, int zero)
{
    UnetStatus st = ref->tensor_init(ref, out, t->n, t->c, t->h, t->w);
    if (st != UNET_OK)
        return st;
    size_t n = unet_tensor_numel(t);
    float *h = malloc(n * sizeof(float));
    if (!h)
        return UNET_ERR_NOMEM;
    if (zero)
        memset(h, 0, n * sizeof(float));
    else {
        st = ref->tensor_download(ref, h, t);
        round_host(h, n);
    }
    if (st == UNET_OK)
        st = ref->tensor_upload(ref, out, h);
    free(h);
    return st;
}

/* dst = (add ? dst : 0) + bf16(src) */
static UnetStatus store(UnetTensor *dst, const UnetTensor *src, int add)
{
    size_t n = unet_tensor_numel(dst);
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    UnetStatus st = ref->tensor_download(ref, b, src);
    if (st == UNET_OK && add)
        st = ref->tensor_download(ref, a, dst);
    round_host(b, n);
    for (size_t i = 0; st == UNET_OK && i < n; i++)
        a[i] = add ? a[i] + b[i] : b[i];
    if (st == UNET_OK)
        st = ref->tensor_upload(ref, dst, a);
    free(a);
    free(b);
    return st;
}

/* db[c] += sum of dy over n, h, w (fp32 in every precision) */
static UnetStatus bias_grad(UnetTensor *db, const UnetTensor *dy)
{
    size_t n = unet_tensor_numel(dy), hw = (size_t)dy->h * dy->w;
    float *h = malloc(n * sizeof(float)), *g = malloc((size_t)dy->c * sizeof(float));
    UnetStatus st = ref->tensor_download(ref, h, dy);
    if (st == UNET_OK)
        st = ref->tensor_download(ref, g, db);
    for (int c = 0; st == UNET_OK && c < dy->c; c++) {
        double s = 0.0;
        for (int i = 0; i < dy->n; i++)
            for (size_t j = 0; j < hw; j++)
                s += h[((size_t)i * dy->c + c) * hw + j];
        g[c] += (float)s;
    }
    if (st == UNET_OK)
        st = ref->tensor_upload(ref, db, g);
    free(h);
    free(g);
    return st;
}

static UnetStatus bias_add(UnetTensor *y, const UnetTensor *b)
{
    size_t n = unet_tensor_numel(y), hw = (size_t)y->h * y->w;
    float *h = malloc(n * sizeof(float)), *bb = malloc((size_t)y->c * sizeof(float));
    UnetStatus st = ref->tensor_download(ref, h, y);
    if (st == UNET_OK)
        st = ref->tensor_download(ref, bb, b);
    for (size_t i = 0; st == UNET_OK && i < n; i++)
        h[i] += bb[(i / hw) % (size_t)y->c];
    if (st == UNET_OK)
        st = ref->tensor_upload(ref, y, h);
    free(h);
    free(bb);
    return st;
}

#define EMU_TRY(call)                 \
    do {                              \
        if ((st = (call)) != UNET_OK) \
            goto out;                 \
    } while (0)

/* The emulated passes of a convolution (d) or, d NULL, a 2x2 up-convolution:
 * rounded inputs, the reference's fp32 pass into rounded zeros, the result
 * rounded and written or added. */
static UnetStatus emu_forward(UnetTensor *y, const UnetTensor *x, const UnetTensor *w,
                              const UnetTensor *b, const UnetConvDesc *d)
{
    UnetTensor xr = { 0 }, wr = { 0 }, yt = { 0 };
    UnetStatus st;
    EMU_TRY(rounded(&xr, x, 0));
    EMU_TRY(rounded(&wr, w, 0));
    EMU_TRY(rounded(&yt, y, 1));
    EMU_TRY(d ? ref->conv2d_forward(ref, &yt, &xr, &wr, NULL, d)
              : ref->upconv2x2_forward(ref, &yt, &xr, &wr, NULL));
    EMU_TRY(store(y, &yt, 0));
    if (b)
        EMU_TRY(bias_add(y, b));
out:
    ref->tensor_release(ref, &xr);
    ref->tensor_release(ref, &wr);
    ref->tensor_release(ref, &yt);
    return st;
}

static UnetStatus emu_backward(UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                               const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                               const UnetConvDesc *d, int accumulate)
{
    UnetTensor xr = { 0 }, wr = { 0 }, dyr = { 0 }, dxt = { 0 }, dwt = { 0 };
    UnetStatus st;
    EMU_TRY(rounded(&xr, x, 0));
    EMU_TRY(rounded(&wr, w, 0));
    EMU_TRY(rounded(&dyr, dy, 0));
    EMU_TRY(rounded(&dwt, dw, 1));
    if (dx)
        EMU_TRY(rounded(&dxt, dx, 1));
    EMU_TRY(d ? ref->conv2d_backward(ref, dx ? &dxt : NULL, &dwt, NULL, &dyr, &xr, &wr, d, 0)
              : ref->upconv2x2_backward(ref, dx ? &dxt : NULL, &dwt, NULL, &dyr, &xr, &wr, 0));
    if (dx)
        EMU_TRY(store(dx, &dxt, accumulate));
    EMU_TRY(store(dw, &dwt, 1));
    if (db)
        EMU_TRY(bias_grad(db, dy));
out:
    ref->tensor_release(ref, &xr);
    ref->tensor_release(ref, &wr);
    ref->tensor_release(ref, &dyr);
    ref->tensor_release(ref, &dxt);
    ref->tensor_release(ref, &dwt);
    return st;
}

static UnetStatus emu_conv_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                   const UnetTensor *w, const UnetTensor *b,
                                   const UnetConvDesc *d)
{
    (void)be;
    return emu_forward(y, x, w, b, d);
}

static UnetStatus emu_conv_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                    UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                                    const UnetTensor *w, const UnetConvDesc *d, int accumulate)
{
    (void)be;
    return emu_backward(dx, dw, db, dy, x, w, d, accumulate);
}

static UnetStatus emu_upconv_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                     const UnetTensor *w, const UnetTensor *b)
{
    (void)be;
    return emu_forward(y, x, w, b, NULL);
}

static UnetStatus emu_upconv_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                      UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                                      const UnetTensor *w, int accumulate)
{
    (void)be;
    return emu_backward(dx, dw, db, dy, x, w, NULL, accumulate);
}

static void emulated_bounds(void)
{
    UnetError err = { 0 };
    ref = unet_backend_reference_new(&err);
    CHECK_MSG(ref != NULL, "%s", err.message);
    if (!ref)
        return;
    emu = *ref; /* shares the reference's state; only the convolutions differ */
    emu.name = "bf16-emulated";
    emu.precision = UNET_PRECISION_BF16;
    emu.conv2d_forward = emu_conv_forward;
    emu.conv2d_backward = emu_conv_backward;
    emu.upconv2x2_forward = emu_upconv_forward;
    emu.upconv2x2_backward = emu_upconv_backward;

    printf("emulated bf16 against fp32, element bounds:\n");
    double worst = 0.0;
    worst = fmax(worst, bf16_check_conv(&emu, ref, 2, 3, 21, 19, 16, 3, 1, 0, 0, 1));
    worst = fmax(worst, bf16_check_conv(&emu, ref, 1, 64, 14, 13, 32, 3, 1, 1, 1, 2));
    worst = fmax(worst, bf16_check_conv(&emu, ref, 2, 24, 9, 11, 8, 3, 2, 1, 0, 3));
    worst = fmax(worst, bf16_check_conv(&emu, ref, 1, 32, 10, 9, 2, 1, 1, 0, 1, 4));
    worst = fmax(worst, bf16_check_upconv(&emu, ref, 1, 64, 5, 4, 32, 0, 5));
    worst = fmax(worst, bf16_check_upconv(&emu, ref, 2, 16, 6, 7, 8, 1, 6));
    /* the bound is a bound, and not so loose that a wrong result would pass */
    CHECK_MSG(worst <= 1.0 && worst > 0.02, "worst error %.3g of the bound", worst);

    printf("emulated bf16 against fp32, op harness convolutions (max %.3g, nmse %.3g):\n",
           BF16_MAX, BF16_NMSE);
    OpHarnessStats st;
    int failed = op_harness_compare_ex(&emu, ref, BF16_MAX, "conv", NULL, &st);
    CHECK_MSG(failed == 0, "%d of %d cases above max error %.3g", failed, st.cases, BF16_MAX);
    CHECK_MSG(st.worst_nmse <= BF16_NMSE, "worst nmse %.3g", st.worst_nmse);
    CHECK_MSG(st.worst_nmse > 0.0, "bf16 rounding changed nothing");
    printf("  %d cases, worst max error %.3g (%s), worst nmse %.3g\n", st.cases, st.worst_max,
           st.worst_case, st.worst_nmse);

    printf("emulated bf16 against fp32, 3 SGD steps of unet (depth 3, base 8):\n");
    double loss_rel, nmse;
    bf16_check_training(&emu, ref, 21, &loss_rel, &nmse);
    CHECK_MSG(nmse > 0.0, "bf16 rounding changed no parameter");
    unet_backend_destroy(ref);
}

int main(void)
{
    conversion();
    names_and_cpu_backends();
    train_config();
    emulated_bounds();
    return test_finish("precision");
}
