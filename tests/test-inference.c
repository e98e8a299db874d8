/* test-inference.c - overlap-tile prediction against one forward pass over the
 * mirrored whole image (valid and same padding, several tile sizes, batches),
 * test-time augmentation against transforms done by hand and its symmetry,
 * cancellation, default geometry, label maps, overlays, and the model and
 * input spec read back from a checkpoint. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "inference.h"
#include "model.h"
#include "test-common.h"
#include "tiling.h"

static UnetBackend *be;

static UnetModel *make_model(int depth, int base, UnetPadding pad, UnetUpsample up, int in_ch,
                             int classes, uint64_t seed)
{
    UnetModelConfig cfg;
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    cfg.depth = depth;
    cfg.base = base;
    cfg.padding = pad;
    cfg.upsample = up;
    cfg.in_channels = in_ch;
    cfg.classes = classes;
    cfg.seed = seed;
    UnetError err = { 0 };
    UnetModel *m = unet_model_new(&cfg, be, &err);
    CHECK_MSG(m != NULL, "%s", err.message);
    return m;
}

/* One forward pass over an image already grown to a valid size; probs
 * (classes x oh x ow) downloaded. */
static void forward_whole(UnetModel *m, const float *img, int c, int h, int w, float *probs)
{
    UnetTensor x = { 0 }, *p = NULL;
    UnetError err = { 0 };
    CHECK(be->tensor_init(be, &x, 1, c, h, w) == UNET_OK);
    CHECK(be->tensor_upload(be, &x, img) == UNET_OK);
    CHECK_MSG(unet_model_predict(m, &x, &p, &err) == UNET_OK, "%s", err.message);
    if (p)
        CHECK(be->tensor_download(be, probs, p) == UNET_OK);
    be->tensor_release(be, &x);
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double d = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d))
            d = e;
    }
    return d;
}

/* The tiled map against one pass over the image mirrored by `grow` on every
 * side, whose output is cropped by `crop` (same padding) to the image. */
static void check_against_whole(UnetModel *m, int w, int h, int grow, int crop, const int *tiles,
                                int ntiles, int margin, TestRng *rng)
{
    const UnetModelConfig *cfg = unet_model_config(m);
    const int c = cfg->in_channels, k = cfg->classes;
    const int gw = w + 2 * grow, gh = h + 2 * grow;
    float *img = malloc(sizeof(float) * c * w * h);
    float *ext = malloc(sizeof(float) * c * gw * gh);
    float *whole = malloc(sizeof(float) * k * gw * gh);
    float *want = malloc(sizeof(float) * k * w * h);
    float *got = malloc(sizeof(float) * k * w * h);
    test_fill_uniform(rng, img, (size_t)c * w * h, 0.0f, 1.0f);
    unet_mirror_crop(ext, img, c, h, w, -grow, -grow, gw, gh);
    forward_whole(m, ext, c, gh, gw, whole);
    const int ow = unet_model_output_size(cfg, gw), oh = unet_model_output_size(cfg, gh);
    CHECK(ow - 2 * crop == w && oh - 2 * crop == h);
    for (int ch = 0; ch < k; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                want[((size_t)ch * h + y) * w + x] =
                    whole[((size_t)ch * oh + y + crop) * ow + x + crop];
    for (int t = 0; t < ntiles; t++)
        for (int batch = 1; batch <= 3; batch += 2) {
            UnetPredictOptions opt;
            unet_predict_options_default(&opt);
            opt.tile = tiles[t];
            opt.margin = margin;
            opt.batch = batch;
            UnetError err = { 0 };
            UnetPredictGeometry g;
            CHECK_MSG(unet_predict_geometry(cfg, be, w, h, &opt, &g, &err) == UNET_OK, "%s",
                      err.message);
            memset(got, 0xff, sizeof(float) * k * w * h); /* NaN: every pixel must be written */
            CHECK_MSG(unet_predict(m, img, c, h, w, &opt, got, &err) == UNET_OK, "%s", err.message);
            double d = max_abs_diff(got, want, (size_t)k * w * h);
            CHECK_MSG(d < 1e-5, "%s %dx%d tile %d (%dx%d tiles) batch %d: max diff %g",
                      unet_padding_name(cfg->padding), w, h, g.tile_in, g.tiles_x, g.tiles_y,
                      batch, d);
        }
    free(img);
    free(ext);
    free(whole);
    free(want);
    free(got);
}

/* Valid padding, one pooling level: output tiles of even side keep the pooling
 * grid of the whole image, so any such tiling equals one pass over the image
 * mirrored by the border. */
static void test_valid_exact(TestRng *rng)
{
    for (int k = 1; k <= 3; k += 2) {
        UnetModel *m = make_model(2, 4, UNET_PAD_VALID, UNET_UP_TRANSPOSE, 1, k, 7 + k);
        if (!m)
            return;
        const UnetModelConfig *cfg = unet_model_config(m);
        int in, out;
        CHECK(unet_model_valid_input_size(cfg, 40, &in, &out) == 0);
        const int border = (in - out) / 2;
        int tiles[] = { 20, 26, 34, 0 };
        for (int t = 0; t < 3; t++)
            CHECK(unet_model_output_size(cfg, tiles[t]) % 2 == 0);
        check_against_whole(m, 30, 22, border, 0, tiles, 4, -1, rng);
        check_against_whole(m, 6, 4, border, 0, tiles, 4, -1, rng); /* smaller than a tile */
        unet_model_free(m);
    }
}

/* Same padding: with a margin of at least the receptive-field radius and
 * tile offsets on the pooling grid, the tiles meet without seams. */
static void test_same_exact(TestRng *rng)
{
    for (int up = 0; up < 2; up++) {
        UnetModel *m = make_model(3, 2, UNET_PAD_SAME, up ? UNET_UP_BILINEAR : UNET_UP_TRANSPOSE,
                                  2, 2, 21 + up);
        if (!m)
            return;
        const UnetModelConfig *cfg = unet_model_config(m);
        UnetPredictGeometry g;
        UnetError err = { 0 };
        CHECK_MSG(unet_predict_geometry(cfg, be, 36, 20, NULL, &g, &err) == UNET_OK, "%s",
                  err.message);
        const int margin = g.margin;
        CHECK_MSG(margin > 0 && margin % 4 == 0, "margin %d", margin);
        CHECK(g.stride == g.tile_in - 2 * margin && g.tile_out == g.tile_in);
        int tiles[] = { 2 * margin + 4, 2 * margin + 12, 0 };
        check_against_whole(m, 36, 20, margin, margin, tiles, 3, margin, rng);
        check_against_whole(m, 4, 8, margin, margin, tiles, 3, margin, rng);
        unet_model_free(m);
    }
}

/* ---- test-time augmentation ---------------------------------------------------------- */

/* Our own copy of the eight transforms (rotate k & 3 quarter turns
 * counter-clockwise after mirroring when k & 4), written differently from
 * the library's on purpose. */
static void transform(float *dst, const float *src, int planes, int n, int k, int inverse)
{
    float *a = malloc(sizeof(float) * planes * n * n), *b = malloc(sizeof(float) * planes * n * n);
    memcpy(a, src, sizeof(float) * planes * n * n);
    int steps = inverse ? (4 - (k & 3)) % 4 : k & 3;
    if (inverse && (k & 4)) { /* undo: rotate back, then mirror */
        for (int s = 0; s < steps; s++) {
            for (int p = 0; p < planes; p++)
                for (int y = 0; y < n; y++)
                    for (int x = 0; x < n; x++)
                        b[(p * n + (n - 1 - x)) * n + y] = a[(p * n + y) * n + x];
            memcpy(a, b, sizeof(float) * planes * n * n);
        }
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < n; y++)
                for (int x = 0; x < n; x++)
                    b[(p * n + y) * n + x] = a[(p * n + y) * n + n - 1 - x];
        memcpy(a, b, sizeof(float) * planes * n * n);
    } else {
        if (k & 4) {
            for (int p = 0; p < planes; p++)
                for (int y = 0; y < n; y++)
                    for (int x = 0; x < n; x++)
                        b[(p * n + y) * n + x] = a[(p * n + y) * n + n - 1 - x];
            memcpy(a, b, sizeof(float) * planes * n * n);
        }
        for (int s = 0; s < steps; s++) {
            for (int p = 0; p < planes; p++)
                for (int y = 0; y < n; y++)
                    for (int x = 0; x < n; x++)
                        b[(p * n + (n - 1 - x)) * n + y] = a[(p * n + y) * n + x];
            memcpy(a, b, sizeof(float) * planes * n * n);
        }
    }
    memcpy(dst, a, sizeof(float) * planes * n * n);
    free(a);
    free(b);
}

static void test_tta(TestRng *rng)
{
    UnetModel *m = make_model(2, 4, UNET_PAD_VALID, UNET_UP_TRANSPOSE, 1, 2, 5);
    if (!m)
        return;
    const int n = 12, tile = 28, K = 2; /* tile 28 -> output 12: one tile, centred */
    CHECK(unet_model_output_size(unet_model_config(m), tile) == n);
    float img[144], t_img[144], plain[288], tta[288], manual[288], one[288], back[288];
    test_fill_uniform(rng, img, 144, 0.0f, 1.0f);
    UnetPredictOptions opt;
    unet_predict_options_default(&opt);
    opt.tile = tile;
    UnetError err = { 0 };
    CHECK(unet_predict(m, img, 1, n, n, &opt, plain, &err) == UNET_OK);

    /* by hand: average of T^-1 f(T x) */
    memset(manual, 0, sizeof manual);
    for (int k = 0; k < 8; k++) {
        transform(t_img, img, 1, n, k, 0);
        CHECK(unet_predict(m, t_img, 1, n, n, &opt, one, &err) == UNET_OK);
        transform(back, one, K, n, k, 1);
        for (int i = 0; i < 288; i++)
            manual[i] += back[i] / 8.0f;
    }
    opt.tta = 1;
    CHECK(unet_predict(m, img, 1, n, n, &opt, tta, &err) == UNET_OK);
    CHECK_MSG(max_abs_diff(tta, manual, 288) < 1e-5, "TTA vs by hand: %g", max_abs_diff(tta, manual, 288));
    CHECK_MSG(max_abs_diff(tta, plain, 288) > 1e-4, "TTA changed nothing");
    /* the inverse of our helper really inverts */
    transform(t_img, img, 1, n, 5, 0);
    transform(back, t_img, 1, n, 5, 1);
    CHECK(max_abs_diff(back, img, 144) == 0.0);

    /* A D4-symmetric input gives a D4-symmetric TTA map, unlike the plain one. */
    float sym[144];
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            float dy = y - 5.5f, dx = x - 5.5f;
            sym[y * n + x] = cosf(0.4f * sqrtf(dx * dx + dy * dy)) + 0.1f * fabsf(dx * dy);
        }
    opt.tta = 0;
    CHECK(unet_predict(m, sym, 1, n, n, &opt, plain, &err) == UNET_OK);
    opt.tta = 1;
    CHECK(unet_predict(m, sym, 1, n, n, &opt, tta, &err) == UNET_OK);
    double worst_tta = 0.0, worst_plain = 0.0;
    for (int k = 1; k < 8; k++) {
        transform(back, tta, K, n, k, 0);
        double d = max_abs_diff(back, tta, 288);
        worst_tta = d > worst_tta ? d : worst_tta;
        transform(back, plain, K, n, k, 0);
        d = max_abs_diff(back, plain, 288);
        worst_plain = d > worst_plain ? d : worst_plain;
    }
    CHECK_MSG(worst_tta < 1e-5, "TTA map of a symmetric input is not symmetric: %g", worst_tta);
    CHECK_MSG(worst_plain > 1e-4, "the plain map was symmetric already (%g): the test shows nothing",
              worst_plain);

    /* TTA over several tiles and batches: batch 1 and batch 5 agree. */
    float big[40 * 26], b1[2 * 40 * 26], b5[2 * 40 * 26];
    test_fill_uniform(rng, big, 40 * 26, 0.0f, 1.0f);
    opt.tile = 20;
    opt.batch = 1;
    CHECK(unet_predict(m, big, 1, 26, 40, &opt, b1, &err) == UNET_OK);
    opt.batch = 5;
    CHECK(unet_predict(m, big, 1, 26, 40, &opt, b5, &err) == UNET_OK);
    CHECK_MSG(max_abs_diff(b1, b5, 2 * 40 * 26) < 1e-6, "TTA batch 1 vs 5: %g",
              max_abs_diff(b1, b5, 2 * 40 * 26));
    /* softmax: probabilities sum to one */
    double worst = 0.0;
    for (int i = 0; i < 40 * 26; i++)
        worst = fmax(worst, fabs(b5[i] + b5[40 * 26 + i] - 1.0));
    CHECK(worst < 1e-5);
    unet_model_free(m);
}

/* ---- cancellation ----------------------------------------------------------------- */

typedef struct Counter {
    int calls;
    long last_done;
    long cancel_at; /* cancel when done reaches this */
} Counter;

static int on_progress(long done, long total, void *user)
{
    Counter *c = user;
    c->calls++;
    c->last_done = done;
    (void)total;
    return done >= c->cancel_at;
}

static void test_cancel(void)
{
    UnetModel *m = make_model(2, 4, UNET_PAD_VALID, UNET_UP_TRANSPOSE, 1, 1, 3);
    if (!m)
        return;
    float *img = calloc(60 * 60, sizeof(float)), *probs = calloc(60 * 60, sizeof(float));
    UnetPredictOptions opt;
    unet_predict_options_default(&opt);
    opt.tile = 20; /* output 4: 225 tiles */
    opt.progress = on_progress;
    Counter c = { 0, -1, 1 };
    opt.progress_user = &c;
    UnetError err = { 0 };
    CHECK(unet_predict(m, img, 1, 60, 60, &opt, probs, &err) == UNET_ERR_CANCELLED);
    CHECK_MSG(c.calls == 2 && c.last_done == 1, "calls %d, last done %ld", c.calls, c.last_done);
    CHECK(strstr(err.message, "cancel") != NULL);
    c = (Counter){ 0, -1, 0 };
    CHECK(unet_predict(m, img, 1, 60, 60, &opt, probs, &err) == UNET_ERR_CANCELLED);
    CHECK(c.calls == 1 && c.last_done == 0);
    c = (Counter){ 0, -1, 1000000 };
    CHECK(unet_predict(m, img, 1, 60, 60, &opt, probs, &err) == UNET_OK);
    CHECK_MSG(c.calls == 226 && c.last_done == 225, "calls %d, last %ld", c.calls, c.last_done);
    free(img);
    free(probs);
    unet_model_free(m);
}

/* ---- geometry and errors ------------------------------------------------------------ */

static void test_geometry(void)
{
    UnetModelConfig cfg;
    UnetPredictGeometry g;
    UnetError err = { 0 };
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    /* least work: one 700-pixel tile (0.49 Mpx) beats four of 572 (1.31 Mpx) */
    CHECK(unet_predict_geometry(&cfg, NULL, 512, 512, NULL, &g, &err) == UNET_OK);
    CHECK_MSG(g.tile_in == 700 && g.tile_out == 516 && g.margin == 0 && g.context == 92 &&
              g.tiles_x == 1 && g.tiles_y == 1 && g.batch == 1 && g.forwards == 1,
              "tile %d -> %d, %dx%d tiles", g.tile_in, g.tile_out, g.tiles_x, g.tiles_y);
    UnetPredictOptions t572 = { .tile = 572, .margin = -1 };
    CHECK(unet_predict_geometry(&cfg, NULL, 512, 512, &t572, &g, &err) == UNET_OK);
    CHECK(g.tile_in == 572 && g.tile_out == 388 && g.tiles_x == 2 && g.tiles_y == 2 &&
          g.forwards == 4 && g.context == 92);
    /* 1024 x 1022: 2 x 2 tiles of 700 (1.96 Mpx) beat 3 x 3 of 572 (2.94 Mpx) */
    CHECK(unet_predict_geometry(&cfg, NULL, 1024, 1022, NULL, &g, &err) == UNET_OK);
    CHECK_MSG(g.tile_in == 700 && g.tiles_x == 2 && g.tiles_y == 2, "1024: tile %d", g.tile_in);
    CHECK(unet_predict_geometry(&cfg, NULL, 100, 60, NULL, &g, &err) == UNET_OK);
    CHECK_MSG(g.tile_out >= 100 && g.tile_out < 116 && g.tiles_x == 1 && g.tiles_y == 1,
              "small image: tile %d -> %d", g.tile_in, g.tile_out);
    UnetPredictOptions opt;
    unet_predict_options_default(&opt);
    opt.tile = 570;
    CHECK(unet_predict_geometry(&cfg, NULL, 512, 512, &opt, &g, &err) == UNET_ERR_INVALID);
    CHECK_MSG(strstr(err.message, "556") && strstr(err.message, "572"), "%s", err.message);
    opt.tile = 0;
    opt.tta = 1;
    opt.batch = 3;
    CHECK(unet_predict_geometry(&cfg, NULL, 8000, 8000, &opt, &g, &err) == UNET_OK);
    /* a huge image takes large tiles, never above 858 (1.5 x 572) */
    CHECK_MSG(g.tile_in > 700 && g.tile_in <= 858 && g.tiles_x == (8000 + g.tile_out - 1) / g.tile_out &&
              g.tiles_x < 21 && g.transforms == 8 && g.forwards == (long)g.tiles_x * g.tiles_x * 8 &&
              g.batch == 3, "8000: tile %d, %d tiles", g.tile_in, g.tiles_x);

    cfg.padding = UNET_PAD_SAME;
    CHECK(unet_predict_geometry(&cfg, NULL, 2000, 1000, NULL, &g, &err) == UNET_OK);
    CHECK_MSG(g.tile_in == 736 && g.margin == 112 && g.stride == 512 && g.context == 112 &&
              g.tiles_x == 4 && g.tiles_y == 2,
              "same: tile %d margin %d", g.tile_in, g.margin);
    CHECK(unet_predict_geometry(&cfg, NULL, 100, 100, NULL, &g, &err) == UNET_OK);
    CHECK_MSG(g.tile_in == 336 && g.stride >= 100 && g.tiles_x == 1, "same small: %d", g.tile_in);
    opt = (UnetPredictOptions){ .tile = 64, .margin = 32 };
    CHECK(unet_predict_geometry(&cfg, NULL, 100, 100, &opt, &g, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "margin") != NULL);

    unet_model_config_default(&cfg, UNET_ARCH_LIGHT);
    CHECK(unet_predict_geometry(&cfg, NULL, 250, 250, NULL, &g, &err) == UNET_OK);
    CHECK_MSG(g.tile_in == 256 && g.margin == 0 && g.tiles_x == 1, "light: tile %d margin %d",
              g.tile_in, g.margin);
    unet_model_config_default(&cfg, UNET_ARCH_FCN);
    CHECK(unet_predict_geometry(&cfg, NULL, 9000, 300, NULL, &g, &err) == UNET_OK);
    CHECK_MSG(g.tiles_x > 1 && g.margin > 0 && g.margin % 4 == 0, "fcn large: tile %d margin %d",
              g.tile_in, g.margin);

    /* a model with 3 input channels refuses a grey image */
    UnetModel *m = make_model(2, 2, UNET_PAD_VALID, UNET_UP_TRANSPOSE, 3, 1, 1);
    if (m) {
        float img[16] = { 0 }, p[16];
        CHECK(unet_predict(m, img, 1, 4, 4, NULL, p, &err) == UNET_ERR_INVALID);
        CHECK_MSG(strstr(err.message, "1 channel") && strstr(err.message, "takes 3"), "%s",
                  err.message);
        unet_model_free(m);
    }
}

/* ---- labels, overlays, specs, checkpoints -------------------------------------------- */

static void test_labels_overlay(void)
{
    float p1[4] = { 0.2f, 0.5f, 0.51f, 0.9f };
    int32_t lab[4];
    unet_probs_to_labels(p1, 1, 2, 2, 0.5f, lab);
    CHECK(lab[0] == 0 && lab[1] == 0 && lab[2] == 1 && lab[3] == 1);
    unet_probs_to_labels(p1, 1, 2, 2, 0.1f, lab);
    CHECK(lab[0] == 1);
    /* 3 classes, 2 pixels; a tie goes to the lower id */
    float p3[6] = { 0.2f, 0.4f, 0.5f, 0.4f, 0.3f, 0.2f };
    int32_t l3[2];
    unet_probs_to_labels(p3, 3, 1, 2, 0.5f, l3);
    CHECK(l3[0] == 1 && l3[1] == 0);

    float img[4] = { 0.0f, 1.0f, 2.0f, 4.0f };
    int32_t ov[4] = { 0, 1, 0, 2 };
    uint8_t rgb[12], col[3];
    UnetError err = { 0 };
    CHECK(unet_overlay_render(img, 1, 2, 2, ov, 0.5f, rgb, &err) == UNET_OK);
    CHECK(rgb[0] == 0 && rgb[1] == 0 && rgb[2] == 0);
    CHECK(rgb[6] == 128 && rgb[7] == 128 && rgb[8] == 128); /* 2 of 0..4 */
    unet_class_color(1, col);
    CHECK(rgb[3] == (uint8_t)(0.5f * 63.75f + 0.5f * col[0] + 0.5f));
    unet_class_color(2, col);
    CHECK(rgb[9] == (uint8_t)(0.5f * 255.0f + 0.5f * col[0] + 0.5f));
    CHECK(unet_overlay_render(img, 1, 2, 2, ov, 1.5f, rgb, &err) == UNET_ERR_INVALID);
}

static void test_spec_and_checkpoint(void)
{
    UnetInputSpec s, back;
    UnetError err = { 0 };
    unet_input_spec_default(&s);
    s.intensity = UNET_INTENSITY_RANGE;
    s.range_lo = 10.0f;
    s.range_hi = 1000.5f;
    s.color = UNET_COLOR_GREY;
    char *json = unet_input_spec_to_json(&s);
    CHECK(json != NULL);
    CHECK(unet_input_spec_from_json(&back, json, &err) == UNET_OK);
    CHECK(back.intensity == s.intensity && back.range_lo == s.range_lo &&
          back.range_hi == s.range_hi && back.color == s.color);
    CHECK(unet_input_spec_from_json(&back, "{\"mean\":[0.5]}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "mean") != NULL);
    CHECK(unet_input_spec_from_json(&back, "{\"intensity\":\"bogus\"}", &err) != UNET_OK);

    /* from metadata: normalization first, then training_config's data */
    char *keys[2] = { "training_config", "normalization" };
    char *vals[2] = { "{\"data\":{\"train\":\"x\",\"intensity\":\"zscore\",\"color\":\"rgb\"}}", json };
    UnetCheckpointMeta meta = { 1, keys, vals };
    int found = 0;
    CHECK(unet_input_spec_from_meta(&meta, &back, &found, &err) == UNET_OK);
    CHECK(found && back.intensity == UNET_INTENSITY_ZSCORE && back.color == UNET_COLOR_RGB);
    meta.count = 2;
    CHECK(unet_input_spec_from_meta(&meta, &back, &found, &err) == UNET_OK);
    CHECK(found && back.intensity == UNET_INTENSITY_RANGE);
    CHECK(unet_input_spec_from_meta(NULL, &back, &found, &err) == UNET_OK);
    CHECK(!found && back.intensity == UNET_INTENSITY_MINMAX);

    /* a checkpoint opens into a model that predicts the same */
    char *dir = test_make_temp_dir("inference");
    char path[1024], junk[1024];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    snprintf(junk, sizeof junk, "%s/junk.safetensors", dir);
    UnetModel *m = make_model(2, 4, UNET_PAD_VALID, UNET_UP_TRANSPOSE, 1, 1, 99);
    UnetKeyValue kv[1] = { { UNET_META_NORMALIZATION, json } };
    CHECK_MSG(unet_checkpoint_save(path, m, NULL, kv, 1, &err) == UNET_OK, "%s", err.message);
    UnetModel *m2 = NULL;
    UnetInputSpec got;
    CHECK_MSG(unet_checkpoint_open_model(path, be, &m2, &got, &found, NULL, &err) == UNET_OK, "%s",
              err.message);
    CHECK(found && got.intensity == UNET_INTENSITY_RANGE && got.range_hi == 1000.5f);
    if (m2) {
        float img[20 * 20], a[20 * 20], b[20 * 20];
        for (int i = 0; i < 400; i++)
            img[i] = (float)((i * 37) % 17) / 17.0f;
        CHECK(unet_predict(m, img, 1, 20, 20, NULL, a, &err) == UNET_OK);
        CHECK(unet_predict(m2, img, 1, 20, 20, NULL, b, &err) == UNET_OK);
        CHECK(max_abs_diff(a, b, 400) == 0.0);
        unet_model_free(m2);
    }
    FILE *f = fopen(junk, "w");
    fputs("this is not a checkpoint", f);
    fclose(f);
    CHECK(unet_checkpoint_open_model(junk, be, &m2, NULL, NULL, NULL, &err) != UNET_OK && !m2);
    CHECK(strstr(err.message, "junk.safetensors") != NULL);
    unlink(path);
    unlink(junk);
    rmdir(dir);
    free(dir);
    free(json);
    unet_model_free(m);
}

/* The fast CPU backend (private layouts, batched tiles) gives the reference's map. */
static void test_cpu_backend(TestRng *rng)
{
    UnetError err = { 0 };
    UnetBackend *cpu = unet_backend_cpu_new(1, &err);
    if (!cpu) {
        CHECK_MSG(0, "%s", err.message);
        return;
    }
    UnetModelConfig cfg;
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    cfg.depth = 3;
    cfg.base = 8;
    cfg.classes = 3;
    cfg.norm = UNET_NORM_BATCH;
    UnetModel *a = unet_model_new(&cfg, be, &err), *b = unet_model_new(&cfg, cpu, &err);
    CHECK(a && b);
    const int w = 61, h = 47;
    float *img = malloc(sizeof(float) * w * h), *pa = malloc(sizeof(float) * 3 * w * h),
          *pb = malloc(sizeof(float) * 3 * w * h);
    test_fill_uniform(rng, img, (size_t)w * h, 0.0f, 1.0f);
    UnetPredictOptions opt;
    unet_predict_options_default(&opt);
    opt.tile = 60;
    opt.tta = 1;
    opt.batch = 3;
    if (a && b) {
        CHECK(unet_predict(a, img, 1, h, w, &opt, pa, &err) == UNET_OK);
        CHECK_MSG(unet_predict(b, img, 1, h, w, &opt, pb, &err) == UNET_OK, "%s", err.message);
        double d = max_abs_diff(pa, pb, (size_t)3 * w * h);
        CHECK_MSG(d < 1e-4, "cpu vs reference: %g", d);
    }
    free(img);
    free(pa);
    free(pb);
    unet_model_free(a);
    unet_model_free(b);
    unet_backend_destroy(cpu);
}

int main(void)
{
    UnetError err = { 0 };
    be = unet_backend_reference_new(&err);
    if (!be) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    TestRng rng;
    test_rng_seed(&rng, 2015);
    test_geometry();
    test_valid_exact(&rng);
    test_same_exact(&rng);
    test_tta(&rng);
    test_cancel();
    test_cpu_backend(&rng);
    test_labels_overlay();
    test_spec_and_checkpoint();
    unet_backend_destroy(be);
    return test_finish("inference");
}
