/* test-cli-predict.c - `unet predict` and `unet evaluate` end to end with
 * checkpoints of hand-set "threshold" networks (the mask they must produce is
 * known for every pixel): mask sizes and values for odd sizes, images smaller
 * and larger than a tile, RGB and K-class models, probabilities and overlays,
 * hand-computed evaluation metrics, and the messages and exit codes of bad
 * input. */
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fileutil.h"
#include "image.h"
#include "inference.h"
#include "model.h"
#include "test-common.h"

static const char *unet;
static char *tmp;
static UnetBackend *be;

/* Runs `unet ARGS` with stdout and stderr in tmp/stdout.txt and tmp/stderr.txt; returns the exit status. */
static int run(const char *fmt, ...) UNET_PRINTF(1, 2);
static int run(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = test_run_captured(tmp, "", unet, fmt, ap);
    va_end(ap);
    return st;
}

static char *slurp(const char *name)
{
    return test_slurp(tmp, name);
}

static int err_has(const char *s)
{
    char *e = slurp("stderr.txt");
    int ok = strstr(e, s) != NULL;
    if (!ok)
        fprintf(stderr, "  stderr was: %s\n", e);
    free(e);
    return ok;
}

static char *path_of(const char *name)
{
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, name);
    return buf[k];
}

/* A depth-2 valid unet (base 1) whose output at a pixel depends only on input
 * channel 0 there: centre taps of 1 carry it through the first level and the
 * skip connection; everything else is 0 except the head: logit_c =
 * head_w[c] * x + head_b[c]. */
static void write_threshold_model(const char *name, int in_ch, int classes, const float *head_w,
                                  const float *head_b, int store_norm)
{
    UnetModelConfig cfg;
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    cfg.depth = 2;
    cfg.base = 1;
    cfg.in_channels = in_ch;
    cfg.classes = classes;
    UnetError err = { 0 };
    UnetModel *m = unet_model_new(&cfg, be, &err);
    CHECK_MSG(m != NULL, "%s", err.message);
    if (!m)
        return;
    const UnetParamTable *t = unet_model_params(m);
    float *p = calloc(t->total, sizeof(float));
    const char *centre[] = { "encoder.blocks.0.conv_1.weight", "encoder.blocks.0.conv_2.weight",
                             "decoder.blocks.0.conv_1.weight", "decoder.blocks.0.conv_2.weight" };
    for (int i = 0; i < 4; i++) {
        const UnetParamInfo *pi = unet_param_table_find(t, centre[i]);
        CHECK(pi != NULL);
        if (pi)
            p[pi->offset + 4] = 1.0f; /* [0][0][1][1]: channel 0 (the skip in the decoder) */
    }
    const UnetParamInfo *hw = unet_param_table_find(t, "head.weight");
    const UnetParamInfo *hb = unet_param_table_find(t, "head.bias");
    CHECK(hw && hb && hw->count == (size_t)classes);
    for (int c = 0; hw && hb && c < classes; c++) {
        p[hw->offset + c] = head_w[c];
        p[hb->offset + c] = head_b[c];
    }
    CHECK(be->buffer_upload(be, unet_model_param_arena(m), p, t->total) == UNET_OK);
    UnetInputSpec spec;
    unet_input_spec_default(&spec);
    char *json = unet_input_spec_to_json(&spec);
    UnetKeyValue kv[1] = { { UNET_META_NORMALIZATION, json } };
    CHECK_MSG(unet_checkpoint_save(path_of(name), m, NULL, kv, store_norm ? 1 : 0, &err) == UNET_OK,
              "%s", err.message);
    free(json);
    free(p);
    unet_model_free(m);
}

static void save_grey(const char *name, const uint8_t *px, int w, int h)
{
    UnetError err = { 0 };
    CHECK_MSG(unet_png_save(path_of(name), px, w, h, 1, 8, &err) == UNET_OK, "%s", err.message);
}

/* Loads an 8-bit grey PNG written by unet predict; checks its size. */
static float *load_mask(const char *name, int w, int h, int channels)
{
    UnetImage img = { 0 };
    UnetError err = { 0 };
    if (unet_image_load(path_of(name), &img, &err) != UNET_OK) {
        CHECK_MSG(0, "%s", err.message);
        return NULL;
    }
    CHECK_MSG(img.width == w && img.height == h && img.channels == channels,
              "%s is %dx%dx%d, expected %dx%dx%d", name, img.width, img.height, img.channels, w, h,
              channels);
    if (img.width != w || img.height != h || img.channels != channels) {
        unet_image_free(&img);
        return NULL;
    }
    return img.data;
}

/* Values in 0..100 or 160..255: the mask is v > 127.5 after minmax (0..255 kept). */
static void fill_binary_pattern(uint8_t *px, int n, TestRng *r, uint8_t *want)
{
    for (int i = 0; i < n; i++) {
        int fg = test_rng_uniform(r, 0.0f, 1.0f) < 0.4f;
        px[i] = (uint8_t)(fg ? 160 + (int)test_rng_uniform(r, 0.0f, 95.99f)
                             : (int)test_rng_uniform(r, 0.0f, 100.99f));
        want[i] = fg ? 255 : 0;
    }
    px[0] = 0;
    want[0] = 0;
    px[n - 1] = 255;
    want[n - 1] = 255;
}

static int count_diff(const float *got, const uint8_t *want, int n)
{
    int d = 0;
    for (int i = 0; got && i < n; i++)
        d += got[i] != (float)want[i];
    return got ? d : -1;
}

static void test_predict_binary(TestRng *r)
{
    const float w1 = 20.0f, b1 = -10.0f; /* p > 0.5 where x > 0.5 */
    write_threshold_model("bin.safetensors", 1, 1, &w1, &b1, 1);
    const int sizes[3][2] = { { 37, 23 }, { 5, 3 }, { 1000, 451 } };
    const char *names[3] = { "odd.png", "tiny.png", "big.png" };
    uint8_t *px[3], *want[3];
    for (int k = 0; k < 3; k++) {
        int n = sizes[k][0] * sizes[k][1];
        px[k] = malloc(n);
        want[k] = malloc(n);
        fill_binary_pattern(px[k], n, r, want[k]);
        save_grey(names[k], px[k], sizes[k][0], sizes[k][1]);
    }
    int rc = run("predict --model %s --out %s --device cpu --threads 1 --save-probabilities "
                 "--overlay %s %s %s", path_of("bin.safetensors"), path_of("out"), path_of("odd.png"),
                 path_of("tiny.png"), path_of("big.png"));
    CHECK_MSG(rc == 0, "predict exit %d", rc);
    if (rc)
        err_has("");
    for (int k = 0; k < 3; k++) {
        char name[64], stem[16];
        snprintf(stem, sizeof stem, "%.*s", (int)(strlen(names[k]) - 4), names[k]);
        snprintf(name, sizeof name, "out/%s.png", stem);
        float *m = load_mask(name, sizes[k][0], sizes[k][1], 1);
        int d = count_diff(m, want[k], sizes[k][0] * sizes[k][1]);
        CHECK_MSG(d == 0, "%s: %d pixels differ from the thresholded input", name, d);
        free(m);
        /* probabilities [1,H,W] agree with the mask */
        snprintf(name, sizeof name, "out/%s.npy", stem);
        float *pr = NULL;
        int nd = 0, shape[UNET_NPY_MAX_DIMS];
        UnetError err = { 0 };
        CHECK_MSG(unet_npy_load(path_of(name), &pr, &nd, shape, &err) == UNET_OK, "%s", err.message);
        CHECK(nd == 3 && shape[0] == 1 && shape[1] == sizes[k][1] && shape[2] == sizes[k][0]);
        int bad = 0;
        for (int i = 0; pr && nd == 3 && i < sizes[k][0] * sizes[k][1]; i++)
            bad += (pr[i] > 0.5f) != (want[k][i] == 255) || !(pr[i] >= 0.0f && pr[i] <= 1.0f);
        CHECK_MSG(bad == 0, "%s: %d probabilities disagree with the mask", name, bad);
        free(pr);
        snprintf(name, sizeof name, "out/%s-overlay.png", stem);
        free(load_mask(name, sizes[k][0], sizes[k][1], 3));
    }
    char *out = slurp("stdout.txt");
    CHECK_MSG(strstr(out, "big.png: 1000 x 451, 2 tiles of 516") != NULL, "stdout: %s", out);
    free(out);

    /* TTA: the network is symmetric (centre taps), so the mask is the same */
    rc = run("predict -m %s -o %s --tta --quiet %s", path_of("bin.safetensors"), path_of("tta"),
             path_of("odd.png"));
    CHECK(rc == 0);
    float *m = load_mask("tta/odd.png", 37, 23, 1);
    CHECK(count_diff(m, want[0], 37 * 23) == 0);
    free(m);
    /* a threshold moves the cut: everything is foreground at 0 */
    rc = run("predict -m %s -o %s --threshold 0 -q %s", path_of("bin.safetensors"), path_of("t0"),
             path_of("tiny.png"));
    CHECK(rc == 0);
    m = load_mask("t0/tiny.png", 5, 3, 1);
    for (int i = 0; m && i < 15; i++)
        CHECK(m[i] == 255.0f);
    free(m);

    /* an invalid tile names the valid neighbours */
    CHECK(run("predict -m %s -o %s --tile 571 %s", path_of("bin.safetensors"), path_of("x"),
              path_of("odd.png")) == 2);
    CHECK(err_has("tile 571 is not a valid input side") && err_has("570 and 572"));
    /* two inputs with one stem */
    CHECK(run("predict -m %s -o %s %s %s", path_of("bin.safetensors"), path_of("x"),
              path_of("odd.png"), path_of("out/odd.png")) == 2);
    CHECK(err_has("would both be written as odd.png"));
    /* writing into the input's own folder would replace it */
    CHECK(run("predict -m %s -o %s %s", path_of("bin.safetensors"), tmp, path_of("odd.png")) == 1);
    CHECK(err_has("would replace the image itself"));
    /* a missing image fails with its name; the others are still written */
    CHECK(run("predict -m %s -o %s %s %s", path_of("bin.safetensors"), path_of("partial"),
              path_of("nothere.png"), path_of("tiny.png")) == 1);
    CHECK(err_has("nothere.png"));
    m = load_mask("partial/tiny.png", 5, 3, 1);
    CHECK(m != NULL);
    free(m);
    for (int k = 0; k < 3; k++) {
        free(px[k]);
        free(want[k]);
    }
}

static void test_predict_rgb_and_classes(TestRng *r)
{
    /* RGB model reading the red channel */
    const float w1 = 20.0f, b1 = -10.0f;
    write_threshold_model("rgb.safetensors", 3, 1, &w1, &b1, 1);
    const int W = 13, H = 9, n = W * H;
    uint8_t red[117], want[117], rgb[117 * 3];
    fill_binary_pattern(red, n, r, want);
    for (int i = 0; i < n; i++) {
        rgb[3 * i] = red[i];
        rgb[3 * i + 1] = (uint8_t)test_rng_uniform(r, 0.0f, 255.0f);
        rgb[3 * i + 2] = (uint8_t)test_rng_uniform(r, 0.0f, 255.0f);
    }
    UnetError err = { 0 };
    CHECK(unet_png_save(path_of("colour.png"), rgb, W, H, 3, 8, &err) == UNET_OK);
    CHECK(run("predict -m %s -o %s %s", path_of("rgb.safetensors"), path_of("rgbout"),
              path_of("colour.png")) == 0);
    float *m = load_mask("rgbout/colour.png", W, H, 1);
    CHECK_MSG(count_diff(m, want, n) == 0, "RGB model: %d pixels differ", count_diff(m, want, n));
    free(m);
    /* channel mismatches, both ways, name the image and the fix */
    CHECK(run("predict -m %s -o %s %s", path_of("rgb.safetensors"), path_of("x"),
              path_of("odd.png")) == 1);
    CHECK(err_has("odd.png has 1 channel (grey) but the model takes 3") && err_has("--color rgb"));
    CHECK(run("predict -m %s -o %s %s", path_of("bin.safetensors"), path_of("x"),
              path_of("colour.png")) == 1);
    CHECK(err_has("colour.png has 3 channels (colour) but the model takes 1") &&
          err_has("--color grey"));
    CHECK(run("predict -m %s -o %s --color grey %s", path_of("bin.safetensors"), path_of("grey"),
              path_of("colour.png")) == 0);

    /* three classes: 0 below x = 0.3, 1 up to 0.9, 2 above */
    const float wk[3] = { 0.0f, 10.0f, 20.0f }, bk[3] = { 0.0f, -3.0f, -12.0f };
    write_threshold_model("k3.safetensors", 1, 3, wk, bk, 0);
    uint8_t px[5 * 7], ids[5 * 7];
    for (int i = 0; i < 35; i++) {
        int c = i % 3;
        px[i] = (uint8_t)(c == 0 ? (int)test_rng_uniform(r, 0.0f, 60.0f)
                          : c == 1 ? 90 + (int)test_rng_uniform(r, 0.0f, 110.0f)
                                   : 240 + (int)test_rng_uniform(r, 0.0f, 15.0f));
        ids[i] = (uint8_t)c;
    }
    px[0] = 0;
    px[2] = 255;
    save_grey("k.png", px, 7, 5);
    CHECK(run("predict -m %s -o %s %s", path_of("k3.safetensors"), path_of("kout"),
              path_of("k.png")) == 0);
    CHECK(err_has("stores no input normalisation; using minmax"));
    m = load_mask("kout/k.png", 7, 5, 1);
    CHECK_MSG(count_diff(m, ids, 35) == 0, "class ids: %d differ", count_diff(m, ids, 35));
    free(m);
    CHECK(run("predict -m %s -o %s --scale-classes %s", path_of("k3.safetensors"),
              path_of("kscaled"), path_of("k.png")) == 0);
    m = load_mask("kscaled/k.png", 7, 5, 1);
    for (int i = 0; i < 35; i++)
        ids[i] = (uint8_t)(ids[i] * 127 + (ids[i] == 2));
    CHECK_MSG(count_diff(m, ids, 35) == 0, "scaled ids: %d differ", count_diff(m, ids, 35));
    free(m);
    CHECK(run("predict -m %s -o %s --threshold 0.3 %s", path_of("k3.safetensors"), path_of("x"),
              path_of("k.png")) == 2);
    CHECK(err_has("--threshold applies to one-class models"));
}

static void test_bad_input(void)
{
    CHECK(run("predict -m %s -o %s %s", path_of("missing.safetensors"), path_of("x"),
              path_of("odd.png")) == 1);
    CHECK(err_has("unet predict: cannot open checkpoint") && err_has("missing.safetensors"));
    /* a PNG is not a checkpoint */
    CHECK(run("predict -m %s -o %s %s", path_of("odd.png"), path_of("x"), path_of("tiny.png")) == 1);
    CHECK(err_has("unet predict: ") && err_has("odd.png"));
    CHECK(run("predict -m %s %s", path_of("bin.safetensors"), path_of("odd.png")) == 2);
    CHECK(err_has("give --model CKPT, --out DIR and at least one image"));
    CHECK(run("predict -m %s -o %s", path_of("bin.safetensors"), path_of("x")) == 2);
    CHECK(run("predict -m %s -o %s --tile abc %s", path_of("bin.safetensors"), path_of("x"),
              path_of("odd.png")) == 2);
    CHECK(err_has("'abc' is not a valid value for --tile"));
    CHECK(run("predict --bogus") == 2);
    CHECK(run("predict --help") == 0);
    CHECK(run("evaluate -m %s --data %s", path_of("bin.safetensors"), path_of("nodata")) == 1);
    CHECK(err_has("nodata"));
    CHECK(run("evaluate -m %s", path_of("bin.safetensors")) == 2);
    CHECK(run("evaluate -m %s --data %s", path_of("missing.safetensors"), path_of("ds")) == 1);
    CHECK(err_has("missing.safetensors"));
}

/* ---- evaluate against hand-computed metrics ---------------------------------- */

static void block(uint8_t *px, int w, int y0, int y1, int x0, int x1)
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            px[y * w + x] = 255;
}

static double jget(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : NAN;
}

static void test_evaluate(void)
{
    UnetError err = { 0 };
    CHECK(unet_mkdir_p(path_of("ds/images"), &err) == UNET_OK);
    CHECK(unet_mkdir_p(path_of("ds/masks"), &err) == UNET_OK);
    /* a (10x10): truth objects A (rows 2-3, cols 1-4) and B (rows 2-3, cols
     * 6-9); the image, hence the prediction, has A and the left half of B.
     *   dice 2*12/(12+16) = 6/7, iou 12/16, pixel error 4/100;
     *   over the 16 truth pixels: segments A (8), B' (4) and 4 singletons;
     *   sum p^2 = 1/4 + 1/16 + 4/256 = sum s^2, sum t^2 = 1/2:
     *   v_rand = 2 * 0.328125 / 0.828125; H(S) = 2 ln 2, H(T) = ln 2,
     *   I = ln 2: v_info = 2/3.
     * b (13x7): the prediction equals the truth (two objects): all perfect. */
    uint8_t a_img[100] = { 0 }, a_mask[100] = { 0 }, b_img[91] = { 0 };
    block(a_mask, 10, 2, 3, 1, 4);
    block(a_mask, 10, 2, 3, 6, 9);
    block(a_img, 10, 2, 3, 1, 4);
    block(a_img, 10, 2, 3, 6, 7);
    block(b_img, 13, 1, 2, 1, 5);
    block(b_img, 13, 4, 5, 7, 11);
    save_grey("ds/images/a.png", a_img, 10, 10);
    save_grey("ds/masks/a.png", a_mask, 10, 10);
    save_grey("ds/images/b.png", b_img, 13, 7);
    save_grey("ds/masks/b.png", b_img, 13, 7);
    int rc = run("evaluate -m %s --data %s --json --csv %s --device reference",
                 path_of("bin.safetensors"), path_of("ds"), path_of("m.csv"));
    CHECK_MSG(rc == 0, "evaluate exit %d", rc);
    char *out = slurp("stdout.txt");
    json_object *o = json_tokener_parse(out), *imgs = NULL, *mean = NULL;
    CHECK_MSG(o && json_object_object_get_ex(o, "images", &imgs) &&
              json_object_object_get_ex(o, "mean", &mean), "JSON: %s", out);
    free(out);
    if (!o || !imgs || !mean) {
        if (o)
            json_object_put(o);
        return;
    }
    const double a_want[5] = { 6.0 / 7.0, 0.75, 0.04, 0.65625 / 0.828125, 2.0 / 3.0 };
    const char *keys[5] = { "dice", "iou", "pixel_error", "v_rand", "v_info" };
    CHECK(json_object_array_length(imgs) == 2);
    json_object *ia = json_object_array_get_idx(imgs, 0), *ib = json_object_array_get_idx(imgs, 1);
    json_object *nm;
    CHECK(json_object_object_get_ex(ia, "name", &nm) && !strcmp(json_object_get_string(nm), "a"));
    for (int k = 0; k < 5; k++) {
        double b_want = k == 2 ? 0.0 : 1.0;
        CHECK_MSG(fabs(jget(ia, keys[k]) - a_want[k]) < 1e-6, "a %s %g, want %g", keys[k],
                  jget(ia, keys[k]), a_want[k]);
        CHECK_MSG(fabs(jget(ib, keys[k]) - b_want) < 1e-6, "b %s %g", keys[k], jget(ib, keys[k]));
        CHECK_MSG(fabs(jget(mean, keys[k]) - 0.5 * (a_want[k] + b_want)) < 1e-6, "mean %s %g",
                  keys[k], jget(mean, keys[k]));
    }
    json_object_put(o);
    char *csv = slurp("m.csv");
    CHECK_MSG(!strncmp(csv, "image,dice,iou,pixel_error,v_rand,v_info\na,0.857143,0.750000,0.040000,"
                       "0.792453,0.666667\nb,1.000000,1.000000,0.000000,1.000000,1.000000\nmean,",
                       120), "CSV: %s", csv);
    free(csv);
    /* the table */
    CHECK(run("evaluate -m %s -d %s -q", path_of("bin.safetensors"), path_of("ds")) == 0);
    out = slurp("stdout.txt");
    CHECK_MSG(strstr(out, "image     dice      iou  pixel_error   v_rand   v_info") &&
              strstr(out, "a       0.8571   0.7500       0.0400   0.7925   0.6667") &&
              strstr(out, "mean    0.9286   0.8750       0.0200   0.8962   0.8333"), "table: %s", out);
    free(out);
    /* a colour model on this grey dataset is refused with the fix */
    CHECK(run("evaluate -m %s -d %s", path_of("rgb.safetensors"), path_of("ds")) == 1);
    CHECK(err_has("takes 3") && err_has("--color rgb"));
}

int main(void)
{
    unet = getenv("UNET_EXE");
    if (!unet)
        test_skip("UNET_EXE is not set");
    UnetError err = { 0 };
    be = unet_backend_reference_new(&err);
    tmp = test_make_temp_dir("cli-predict");
    if (!be || !tmp)
        return 1;
    TestRng r;
    test_rng_seed(&r, 572);
    test_predict_binary(&r);
    test_predict_rgb_and_classes(&r);
    test_evaluate();
    test_bad_input();
    if (!test_failures && !getenv("KEEP")) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
    }
    free(tmp);
    unet_backend_destroy(be);
    return test_finish("cli-predict");
}
