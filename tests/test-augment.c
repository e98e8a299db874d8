/* test-augment.c - augmentation invariants, determinism, statistics and config JSON errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "test-common.h"

static void one_stage(UnetAugmentConfig *cfg, UnetAugmentKind kind, float p)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->intensity_max = 1.0f;
    cfg->count = 1;
    cfg->stages[0].p = p;
    cfg->stages[0].count = 1;
    unet_augment_op_default(&cfg->stages[0].ops[0], kind);
}

static void push_stage(UnetAugmentConfig *cfg, UnetAugmentKind kind, float p)
{
    UnetAugmentStage *s = &cfg->stages[cfg->count++];
    memset(s, 0, sizeof *s);
    s->p = p;
    s->count = 1;
    unet_augment_op_default(&s->ops[0], kind);
}

/* Applies rec to (img, mask) into freshly allocated outputs. */
static void run(const UnetAugmentRecord *rec, const float *img, int c, const int32_t *mask,
                float **img_out, int32_t **mask_out)
{
    size_t n = (size_t)rec->out_w * rec->out_h;
    *img_out = img ? malloc(n * c * sizeof(float)) : NULL;
    *mask_out = mask ? malloc(n * sizeof(int32_t)) : NULL;
    UnetError err = { 0 };
    static UnetScratch scratch; /* reused across calls and sizes */
    CHECK_MSG(unet_augment_apply(rec, img, c, mask, NULL, *img_out, *mask_out, NULL, &scratch, &err) == UNET_OK,
              "%s", err.message);
}

static void check_involution(UnetAugmentKind kind, int w, int h, const float *img, const int32_t *mask)
{
    UnetAugmentConfig cfg;
    one_stage(&cfg, kind, 1.0f);
    UnetAugmentRecord rec, back;
    CHECK(unet_augment_sample(&rec, &cfg, 1, w, h, NULL) == UNET_OK && rec.count == 1);
    float *a;
    int32_t *am;
    run(&rec, img, 2, mask, &a, &am);
    CHECK(unet_augment_sample(&back, &cfg, 1, rec.out_w, rec.out_h, NULL) == UNET_OK);
    float *b;
    int32_t *bm;
    run(&back, a, 2, am, &b, &bm);
    CHECK_MSG(back.out_w == w && back.out_h == h && !memcmp(b, img, (size_t)w * h * 2 * sizeof(float)) &&
                  !memcmp(bm, mask, (size_t)w * h * sizeof(int32_t)),
              "%s twice is not the identity", unet_augment_kind_name(kind));
    CHECK_MSG(memcmp(a, img, (size_t)w * h * sizeof(float)) != 0, "%s changed nothing",
              unet_augment_kind_name(kind));
    free(a); free(am); free(b); free(bm);
}

int main(void)
{
    TestRng rng;
    test_rng_seed(&rng, 21);
    int w = 37, h = 23;
    size_t n = (size_t)w * h;
    float *img = malloc(n * 2 * sizeof(float));
    int32_t *mask = malloc(n * sizeof(int32_t));
    test_fill_uniform(&rng, img, n * 2, 0.0f, 1.0f);
    for (size_t i = 0; i < n; i++)
        mask[i] = (int32_t)(test_rng_uniform(&rng, 0, 3) ) * 3 + ((i % 5) == 0); /* {0,1,3,4,6,7} */

    /* flips and transpose are involutions; four quarter turns are the identity */
    check_involution(UNET_AUG_HFLIP, w, h, img, mask);
    check_involution(UNET_AUG_VFLIP, w, h, img, mask);
    check_involution(UNET_AUG_TRANSPOSE, w, h, img, mask);
    {
        UnetAugmentConfig cfg;
        one_stage(&cfg, UNET_AUG_ROTATE90, 1.0f);
        float *cur = malloc(n * 2 * sizeof(float));
        int32_t *cm = malloc(n * sizeof(int32_t));
        memcpy(cur, img, n * 2 * sizeof(float));
        memcpy(cm, mask, n * sizeof(int32_t));
        int cw = w, ch = h;
        for (int t = 0; t < 4; t++) {
            UnetAugmentRecord rec;
            CHECK(unet_augment_sample(&rec, &cfg, 5, cw, ch, NULL) == UNET_OK);
            rec.steps[0].k = 1;
            rec.steps[0].out_w = rec.out_w = ch;
            rec.steps[0].out_h = rec.out_h = cw;
            float *o;
            int32_t *om;
            run(&rec, cur, 2, cm, &o, &om);
            if (t == 0) /* np.rot90: out(x, y) = in(W-1-y, x) */
                CHECK(o[(size_t)2 * ch + 5] == img[(size_t)5 * w + (w - 1 - 2)]);
            free(cur);
            free(cm);
            cur = o;
            cm = om;
            cw = rec.out_w;
            ch = rec.out_h;
        }
        CHECK(cw == w && ch == h && !memcmp(cur, img, n * 2 * sizeof(float)) &&
              !memcmp(cm, mask, n * sizeof(int32_t)));
        free(cur);
        free(cm);
    }

    /* the default pipeline: label set kept, size padded to 572, deterministic per seed */
    {
        UnetAugmentConfig cfg;
        unet_augment_config_default(&cfg);
        float *prev = NULL;
        int differ = 0;
        for (uint64_t seed = 0; seed < 12; seed++) {
            UnetAugmentRecord rec, rec2;
            CHECK(unet_augment_sample(&rec, &cfg, seed, w, h, NULL) == UNET_OK);
            CHECK(unet_augment_sample(&rec2, &cfg, seed, w, h, NULL) == UNET_OK);
            CHECK(!memcmp(&rec, &rec2, sizeof rec));
            CHECK(rec.out_w == 572 && rec.out_h == 572);
            float *a, *b;
            int32_t *am, *bm;
            run(&rec, img, 2, mask, &a, &am);
            run(&rec2, img, 2, mask, &b, &bm);
            size_t m = (size_t)rec.out_w * rec.out_h;
            CHECK_MSG(!memcmp(a, b, m * 2 * sizeof(float)) && !memcmp(am, bm, m * sizeof(int32_t)),
                      "seed %llu: same record, different output", (unsigned long long)seed);
            int outside = 0;
            for (size_t i = 0; i < m; i++) {
                int32_t l = am[i];
                if (!(l == 0 || l == 1 || l == 3 || l == 4 || l == 6 || l == 7))
                    outside++;
            }
            CHECK_MSG(!outside, "seed %llu: %d mask pixels outside the label set",
                      (unsigned long long)seed, outside);
            if (prev && memcmp(prev, a, m * sizeof(float)))
                differ++;
            free(prev);
            prev = a;
            free(b); free(am); free(bm);
        }
        CHECK_MSG(differ == 11, "only %d of 11 seed changes changed the image", differ);
        free(prev);
        /* shapes: a wide image stays padded in both directions */
        UnetAugmentRecord rec;
        CHECK(unet_augment_sample(&rec, &cfg, 3, 600, 500, NULL) == UNET_OK);
        CHECK((rec.out_w == 600 && rec.out_h == 572) || (rec.out_w == 572 && rec.out_h == 600));
    }

    /* image and mask stay aligned: a label image resampled as image and as mask */
    {
        int W = 120, H = 90;
        size_t N = (size_t)W * H;
        int32_t *lab = malloc(N * sizeof(int32_t));
        float *limg = malloc(N * sizeof(float));
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int on = ((x / 9) + (y / 7)) % 2 || (x - 60) * (x - 60) + (y - 40) * (y - 40) < 300;
                lab[(size_t)y * W + x] = on;
                limg[(size_t)y * W + x] = (float)on;
            }
        /* one resampling: bilinear and nearest agree but for corners; the whole
         * chain resamples the image three times, which rounds the edges more */
        const UnetAugmentKind chain[] = { UNET_AUG_SHIFT_SCALE_ROTATE, UNET_AUG_ELASTIC,
                                          UNET_AUG_GRID_ELASTIC, UNET_AUG_HFLIP };
        for (int variant = 0; variant < 4; variant++) {
            UnetAugmentConfig cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.intensity_max = 1.0f;
            if (variant < 3) {
                push_stage(&cfg, chain[variant], 1.0f);
            } else {
                push_stage(&cfg, UNET_AUG_HFLIP, 0.5f);
                for (int k = 0; k < 3; k++)
                    push_stage(&cfg, chain[k], 1.0f);
            }
            double need = variant < 3 ? 0.99 : 0.9;
            for (uint64_t seed = 0; seed < 3; seed++) {
                UnetAugmentRecord rec;
                CHECK(unet_augment_sample(&rec, &cfg, seed, W, H, NULL) == UNET_OK);
                float *v = malloc(N * sizeof(float)), *wt = malloc(N * sizeof(float));
                int32_t *m = malloc(N * sizeof(int32_t));
                CHECK(unet_augment_apply(&rec, limg, 1, lab, limg, v, m, wt, NULL, NULL) == UNET_OK);
                int contradict = 0, agree = 0;
                for (size_t i = 0; i < N; i++) {
                    if ((v[i] == 1.0f && m[i] != 1) || (v[i] == 0.0f && m[i] != 0))
                        contradict++;
                    agree += (v[i] > 0.5f) == (m[i] == 1);
                }
                CHECK_MSG(!contradict && agree > need * N,
                          "variant %d seed %llu: image and mask disagree (%d contradictions, "
                          "%.4f agree)", variant, (unsigned long long)seed, contradict,
                          agree / (double)N);
                CHECK(!memcmp(v, wt, N * sizeof(float))); /* weight maps move like images */
                free(v); free(wt); free(m);
            }
        }
        /* source coordinates reproduce single-interpolation steps */
        UnetAugmentConfig c2;
        memset(&c2, 0, sizeof c2);
        c2.intensity_max = 1.0f;
        push_stage(&c2, UNET_AUG_TRANSPOSE, 1.0f);
        push_stage(&c2, UNET_AUG_SHIFT_SCALE_ROTATE, 1.0f);
        UnetAugmentRecord rec;
        CHECK(unet_augment_sample(&rec, &c2, 77, W, H, NULL) == UNET_OK);
        size_t M = (size_t)rec.out_w * rec.out_h;
        float *sx = malloc(M * sizeof(float)), *sy = malloc(M * sizeof(float));
        int32_t *m = malloc(M * sizeof(int32_t));
        CHECK(unet_augment_apply(&rec, NULL, 0, lab, NULL, NULL, m, NULL, NULL, NULL) == UNET_OK);
        CHECK(unet_augment_source_coords(&rec, sx, sy, NULL) == UNET_OK);
        int mismatch = 0;
        for (size_t i = 0; i < M; i++) {
            int xx = (int)floorf(sx[i] + 0.5f), yy = (int)floorf(sy[i] + 0.5f);
            if (xx < 0 || yy < 0 || xx >= W || yy >= H || lab[(size_t)yy * W + xx] != m[i])
                mismatch++;
        }
        CHECK_MSG(mismatch <= (int)(M / 1000), "source coordinates: %d of %zu pixels disagree",
                  mismatch, M);
        free(sx); free(sy); free(m);
        free(lab);
        free(limg);
    }

    /* zero-strength elastic and grid transforms are the identity */
    {
        UnetAugmentConfig cfg;
        one_stage(&cfg, UNET_AUG_ELASTIC, 1.0f);
        cfg.stages[0].ops[0].alpha = 0.0f;
        cfg.stages[0].ops[0].alpha_affine = 0.0f;
        UnetAugmentRecord rec;
        CHECK(unet_augment_sample(&rec, &cfg, 9, w, h, NULL) == UNET_OK);
        float *a;
        int32_t *am;
        run(&rec, img, 2, mask, &a, &am);
        CHECK(!memcmp(a, img, n * 2 * sizeof(float)) && !memcmp(am, mask, n * sizeof(int32_t)));
        free(a); free(am);
        one_stage(&cfg, UNET_AUG_GRID_ELASTIC, 1.0f);
        cfg.stages[0].ops[0].grid_sd = 0.0f;
        CHECK(unet_augment_sample(&rec, &cfg, 9, w, h, NULL) == UNET_OK);
        run(&rec, img, 2, mask, &a, &am);
        CHECK(!memcmp(a, img, n * 2 * sizeof(float)) && !memcmp(am, mask, n * sizeof(int32_t)));
        free(a); free(am);
        /* the bicubic field passes through the control vectors */
        cfg.stages[0].ops[0].grid_sd = 10.0f;
        int W = 200, H = 150;
        CHECK(unet_augment_sample(&rec, &cfg, 4, W, H, NULL) == UNET_OK);
        float *sx = malloc((size_t)W * H * sizeof(float)), *sy = malloc((size_t)W * H * sizeof(float));
        CHECK(unet_augment_source_coords(&rec, sx, sy, NULL) == UNET_OK);
        const UnetAugmentStep *s = &rec.steps[0];
        size_t mid = (size_t)(H - 1) / 2 * W + (W - 1) / 2 + ((W - 1) % 2 ? 0 : 0);
        double want_x = (W - 1) / 2.0 + s->grid_dx[4], want_y = (H - 1) / 2.0 + s->grid_dy[4];
        if ((W - 1) % 2 == 1 || (H - 1) % 2 == 1) {
            /* the centre control point lies between pixels: check the far corner instead */
            want_x = fabs((W - 1) + s->grid_dx[8]);
            want_y = fabs((H - 1) + s->grid_dy[8]);
            if (want_x > W - 1) want_x = 2.0 * (W - 1) - want_x;
            if (want_y > H - 1) want_y = 2.0 * (H - 1) - want_y;
            mid = (size_t)W * H - 1;
        }
        CHECK_MSG(fabs(sx[mid] - want_x) < 1e-3 && fabs(sy[mid] - want_y) < 1e-3,
                  "grid control point: (%g, %g) want (%g, %g)", (double)sx[mid], (double)sy[mid],
                  want_x, want_y);
        free(sx); free(sy);
    }

    /* elastic fields: the box blur matches the Gaussian's displacement sd and smoothness */
    {
        int W = 300, H = 300;
        size_t N = (size_t)W * H;
        float *sx = malloc(N * sizeof(float)), *sy = malloc(N * sizeof(float));
        double sd[2], corr[2];
        for (int b = 0; b < 2; b++) {
            UnetAugmentConfig cfg;
            one_stage(&cfg, UNET_AUG_ELASTIC, 1.0f);
            cfg.stages[0].ops[0].alpha_affine = 0.0f;
            cfg.stages[0].ops[0].blur = b ? UNET_BLUR_BOX : UNET_BLUR_GAUSSIAN;
            double ss = 0, lag = 0;
            long cnt = 0;
            for (uint64_t seed = 0; seed < 8; seed++) {
                UnetAugmentRecord rec;
                CHECK(unet_augment_sample(&rec, &cfg, seed, W, H, NULL) == UNET_OK);
                CHECK(unet_augment_source_coords(&rec, sx, sy, NULL) == UNET_OK);
                for (int y = 30; y < H - 30; y++)
                    for (int x = 30; x < W - 30; x++) {
                        size_t i = (size_t)y * W + x;
                        double d = sx[i] - x, e = sx[i + 1] - (x + 1);
                        ss += d * d;
                        lag += d * e;
                        cnt++;
                    }
            }
            sd[b] = sqrt(ss / cnt);
            corr[b] = lag / ss;
        }
        /* alpha 35 * sd(U(-1,1)) * sum of squared 1-D Gaussian weights (sigma 5): ~1.14 px */
        CHECK_MSG(fabs(sd[0] - 1.14) < 0.08 && fabs(sd[1] / sd[0] - 1.0) < 0.06 &&
                      fabs(corr[1] - corr[0]) < 0.005,
                  "elastic fields: sd gaussian %g box %g, lag-1 correlation %g vs %g", sd[0],
                  sd[1], corr[0], corr[1]);
        free(sx);
        free(sy);
    }

    /* noise and intensity statistics */
    {
        int W = 256, H = 256;
        size_t N = (size_t)W * H;
        float *zero = calloc(N, sizeof(float)), *out = malloc(N * sizeof(float));
        UnetAugmentConfig cfg;
        one_stage(&cfg, UNET_AUG_GAUSS_NOISE, 1.0f);
        cfg.stages[0].ops[0].var_min = cfg.stages[0].ops[0].var_max = 100.0f;
        UnetAugmentRecord rec;
        CHECK(unet_augment_sample(&rec, &cfg, 2, W, H, NULL) == UNET_OK);
        CHECK(unet_augment_apply(&rec, zero, 1, NULL, NULL, out, NULL, NULL, NULL, NULL) == UNET_OK);
        double sum = 0, sq = 0;
        size_t within = 0;
        double sd = 10.0 / 255.0;
        for (size_t i = 0; i < N; i++) {
            sum += out[i];
            sq += (double)out[i] * out[i];
            within += fabs(out[i]) < sd;
        }
        double mean = sum / N, std = sqrt(sq / N - mean * mean);
        CHECK_MSG(fabs(mean) < 0.01 * sd && fabs(std / sd - 1.0) < 0.01 &&
                      fabs(within / (double)N - 0.6827) < 0.006,
                  "gauss noise: mean %g std %g (want %g), %.4f within 1 sd", mean, std, sd,
                  within / (double)N);
        for (size_t i = 0; i < N; i++)
            zero[i] = 1.0f;
        one_stage(&cfg, UNET_AUG_MULT_NOISE, 1.0f);
        CHECK(unet_augment_sample(&rec, &cfg, 2, W, H, NULL) == UNET_OK);
        CHECK(unet_augment_apply(&rec, zero, 1, NULL, NULL, out, NULL, NULL, NULL, NULL) == UNET_OK);
        float lo = 2, hi = 0;
        sum = 0;
        for (size_t i = 0; i < N; i++) {
            lo = out[i] < lo ? out[i] : lo;
            hi = out[i] > hi ? out[i] : hi;
            sum += out[i];
        }
        CHECK(lo >= 0.9f && hi <= 1.1f && lo < 0.901f && hi > 1.099f && fabs(sum / N - 1.0) < 1e-3);
        one_stage(&cfg, UNET_AUG_BRIGHTNESS_CONTRAST, 1.0f);
        cfg.intensity_max = 255.0f;
        CHECK(unet_augment_sample(&rec, &cfg, 8, W, H, NULL) == UNET_OK);
        for (size_t i = 0; i < N; i++)
            zero[i] = (float)(i % 256);
        CHECK(unet_augment_apply(&rec, zero, 1, NULL, NULL, out, NULL, NULL, NULL, NULL) == UNET_OK);
        const UnetAugmentStep *s = &rec.steps[0];
        CHECK(fabsf(out[100] - (s->alpha * 100.0f + s->beta * 255.0f)) < 1e-3f);
        CHECK(s->alpha >= 0.85f && s->alpha <= 1.15f && s->beta >= -0.15f && s->beta <= 0.15f);
        free(zero);
        free(out);
    }

    /* reflect padding (BORDER_REFLECT_101), centred */
    {
        UnetAugmentConfig cfg;
        one_stage(&cfg, UNET_AUG_PAD_IF_NEEDED, 1.0f);
        cfg.stages[0].ops[0].min_width = 9;
        cfg.stages[0].ops[0].min_height = 4;
        float in[20];
        for (int i = 0; i < 20; i++)
            in[i] = (float)i;
        UnetAugmentRecord rec;
        CHECK(unet_augment_sample(&rec, &cfg, 0, 5, 4, NULL) == UNET_OK);
        CHECK(rec.out_w == 9 && rec.out_h == 4 && rec.steps[0].pad_left == 2);
        float out[36];
        CHECK(unet_augment_apply(&rec, in, 1, NULL, NULL, out, NULL, NULL, NULL, NULL) == UNET_OK);
        CHECK(out[0] == 2.0f && out[1] == 1.0f && out[2] == 0.0f && out[7] == 3.0f && out[8] == 2.0f);
    }

    /* config JSON: round trip, and errors that name the key */
    {
        UnetAugmentConfig cfg, back;
        unet_augment_config_default(&cfg);
        char *text = unet_augment_config_to_json(&cfg);
        CHECK(text && unet_augment_config_from_json(&back, text, NULL) == UNET_OK);
        CHECK(!memcmp(&cfg, &back, sizeof cfg));
        free(text);
        unet_augment_config_paper(&cfg);
        text = unet_augment_config_to_json(&cfg);
        CHECK(text && unet_augment_config_from_json(&back, text, NULL) == UNET_OK);
        CHECK(!memcmp(&cfg, &back, sizeof cfg));
        free(text);
        UnetAugmentRecord rec;
        CHECK(unet_augment_sample(&rec, &cfg, 1, 64, 64, NULL) == UNET_OK);
        text = unet_augment_record_to_json(&rec);
        CHECK(text && strstr(text, "grid_elastic") && strstr(text, "grid_dx"));
        free(text);

        const char *cases[][2] = {
            { "{\"transforms\": [{\"type\": \"shift_scale_rotate\", \"shift\": \"big\"}]}",
              "transforms[0].shift" },
            { "{\"transforms\": [{\"type\": \"hflip\"}, {\"type\": \"elastic\", \"alpha\": -1}]}",
              "transforms[1].alpha" },
            { "{\"transforms\": [{\"one_of\": [{\"type\": \"hflip\"}, {\"type\": \"vflip\", \"foo\": 1}]}]}",
              "transforms[0].one_of[1].foo" },
            { "{\"transforms\": [{\"type\": \"flip\"}]}", "transforms[0].type" },
            { "{\"transforms\": [{\"type\": \"hflip\", \"p\": 2}]}", "transforms[0].p" },
            { "{\"transform\": []}", "'transform'" },
            { "{\"transforms\": [{\"type\": \"grid_elastic\", \"grid\": 1.5}]}", "transforms[0].grid" },
            { "{\"transforms\": [{\"type\": \"gauss_noise\", \"var_min\": 5, \"var_max\": 1}]}",
              "transforms[0].var_max" },
            { "{\"transforms\": [{\"type\": \"hflip\", \"weight\": 1}]}", "transforms[0].weight" },
            { "{\"transforms\": [{\"p\": 0.5}]}", "transforms[0] needs a 'type'" },
            { "{\"intensity_max\": 0, \"transforms\": []}", "intensity_max" },
            { "{\"transforms\": [", "not valid JSON" },
            { "{\"transforms\": [{\"type\": \"elastic\", \"blur\": \"median\"}]}", "transforms[0].blur" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            UnetError err = { 0 };
            UnetStatus st = unet_augment_config_from_json(&back, cases[i][0], &err);
            CHECK_MSG(st == UNET_ERR_FORMAT && strstr(err.message, cases[i][1]),
                      "case %zu: status %d, message '%s' lacks '%s'", i, (int)st, err.message,
                      cases[i][1]);
        }
        UnetError err = { 0 };
        CHECK(unet_augment_config_load(&back, "/nonexistent/aug.json", &err) == UNET_ERR_IO);
        CHECK(strstr(err.message, "/nonexistent/aug.json") != NULL);
        CHECK(unet_augment_sample(&rec, &cfg, 1, 0, 10, &err) == UNET_ERR_INVALID);
        CHECK(unet_augment_sample(&rec, &cfg, 1, 10, 10, NULL) == UNET_OK);
        float o[100];
        CHECK(unet_augment_apply(&rec, img, 0, NULL, NULL, o, NULL, NULL, NULL, &err) == UNET_ERR_INVALID);
    }
    free(img);
    free(mask);
    return test_finish("augment");
}
