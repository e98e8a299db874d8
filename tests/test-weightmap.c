/* test-weightmap.c - U-Net weight maps: fast path and per-cell reference against brute force. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "synthetic-cells.h"
#include "test-common.h"
#include "weightmap.h"

typedef struct Maps {
    float *w, *wc, *d1, *d2;
    int32_t *cells, *cls;
    UnetWeightMapOutputs out;
} Maps;

static void maps_init(Maps *m, size_t n)
{
    m->w = malloc(n * sizeof(float));
    m->wc = malloc(n * sizeof(float));
    m->d1 = malloc(n * sizeof(float));
    m->d2 = malloc(n * sizeof(float));
    m->cells = malloc(n * sizeof(int32_t));
    m->cls = malloc(n * sizeof(int32_t));
    m->out = (UnetWeightMapOutputs){ m->w, m->wc, m->d1, m->d2, m->cells, m->cls };
}

static void maps_free(Maps *m)
{
    free(m->w); free(m->wc); free(m->d1); free(m->d2); free(m->cells); free(m->cls);
}

/* Brute force d1, d2 from a cell map: every pixel against every cell pixel. */
static void brute_distances(float *d1, float *d2, const int32_t *cells, int ncells, int w, int h)
{
    size_t n = (size_t)w * h;
    long *best = malloc(((size_t)ncells + 1) * sizeof *best);
    for (size_t i = 0; i < n; i++) {
        int x = (int)(i % w), y = (int)(i / w);
        for (int c = 0; c <= ncells; c++)
            best[c] = -1;
        for (size_t j = 0; j < n; j++) {
            int c = cells[j];
            if (!c)
                continue;
            long dx = x - (long)(j % w), dy = y - (long)(j / w), v = dx * dx + dy * dy;
            if (best[c] < 0 || v < best[c])
                best[c] = v;
        }
        long b1 = -1, b2 = -1;
        for (int c = 1; c <= ncells; c++) {
            long v = best[c];
            if (v < 0)
                continue;
            if (b1 < 0 || v < b1) {
                b2 = b1;
                b1 = v;
            } else if (b2 < 0 || v < b2) {
                b2 = v;
            }
        }
        d1[i] = b1 < 0 ? INFINITY : (float)sqrt((double)b1);
        d2[i] = b2 < 0 ? INFINITY : (float)sqrt((double)b2);
    }
    free(best);
}

static float brute_weight(const UnetWeightMapConfig *cfg, const UnetWeightMapInfo *info, int cls,
                          float d1, float d2)
{
    double v = info->class_weights[cls];
    if (cls == 0 && isfinite(d2)) {
        double s = (double)d1 + d2;
        v += cfg->w0 * exp(-s * s / (2.0 * cfg->sigma * cfg->sigma));
    }
    return (float)v;
}

/* Runs fast (both d2 modes) and reference on one mask and checks all against brute force. */
static void check_mask(const char *what, const UnetWeightMapConfig *base, const int32_t *classes,
                       const int32_t *instances, int w, int h)
{
    size_t n = (size_t)w * h;
    Maps fast, exact, ref;
    maps_init(&fast, n);
    maps_init(&exact, n);
    maps_init(&ref, n);
    UnetWeightMapConfig cfg = *base, cfgx = *base;
    cfgx.exact_d2 = 1;
    UnetWeightMapInfo i1, i2, i3;
    UnetError err = { 0 };
    static UnetScratch scratch; /* reused across masks of different sizes */
    CHECK_MSG(unet_weightmap_compute(&cfg, classes, instances, w, h, &fast.out, &i1, &scratch, &err) == UNET_OK,
              "%s: %s", what, err.message);
    CHECK(unet_weightmap_compute(&cfgx, classes, instances, w, h, &exact.out, &i2, NULL, NULL) == UNET_OK);
    CHECK(unet_weightmap_reference(&cfg, classes, instances, w, h, &ref.out, &i3, NULL) == UNET_OK);
    /* weight only: rows with little background take the column-scan path */
    float *wonly = malloc(n * sizeof *wonly);
    UnetWeightMapOutputs wo = { wonly, NULL, NULL, NULL, NULL, NULL };
    CHECK(unet_weightmap_compute(&cfg, classes, instances, w, h, &wo, NULL, &scratch, NULL) == UNET_OK);
    CHECK(i1.cells == i3.cells && i2.cells == i3.cells && i1.classes == i3.classes);
    CHECK(!memcmp(fast.cells, ref.cells, n * sizeof(int32_t)));
    CHECK(!memcmp(fast.cls, ref.cls, n * sizeof(int32_t)));

    float *bd1 = malloc(n * sizeof *bd1), *bd2 = malloc(n * sizeof *bd2);
    brute_distances(bd1, bd2, ref.cells, i3.cells, w, h);
    int bad_d1 = 0, bad_d2 = 0, bad_exact = 0, bad_ref = 0, bad_w = 0, terms = 0;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (fast.d1[i] != bd1[i] || exact.d1[i] != bd1[i] || ref.d1[i] != bd1[i])
            bad_d1++;
        if (exact.d2[i] != bd2[i])
            bad_exact++;
        if (ref.d2[i] != bd2[i])
            bad_ref++;
        /* the fast path must be exact wherever the border term can matter */
        if (ref.cls[i] == 0 && (double)bd1[i] + bd2[i] <= i1.cutoff && fast.d2[i] != bd2[i])
            bad_d2++;
        if (isfinite(fast.d2[i]) && fast.d2[i] != bd2[i])
            bad_d2++;
        float want = brute_weight(&cfg, &i3, ref.cls[i], bd1[i], bd2[i]);
        double e = fabs((double)fast.w[i] - want);
        if (e > worst)
            worst = e;
        if (e > 1e-4 || fabs((double)exact.w[i] - want) > 1e-5 || fabs((double)ref.w[i] - want) > 1e-5)
            bad_w++;
        if (ref.cls[i] == 0 && want > i3.class_weights[0] + 1e-3)
            terms++;
        if (fast.wc[i] != i3.class_weights[ref.cls[i]])
            bad_w++;
        if (fabs((double)wonly[i] - want) > 1e-4)
            bad_w++;
    }
    CHECK_MSG(!bad_d1 && !bad_d2 && !bad_exact && !bad_ref && !bad_w,
              "%s: %dx%d, %d cells: d1 %d, fast d2 %d, exact d2 %d, reference d2 %d, weight %d "
              "wrong pixels (worst weight error %g)",
              what, w, h, i3.cells, bad_d1, bad_d2, bad_exact, bad_ref, bad_w, worst);
    if (i3.cells >= 2)
        CHECK_MSG(terms > 0, "%s: no border term anywhere", what);
    free(bd1);
    free(bd2);
    free(wonly);
    maps_free(&fast);
    maps_free(&exact);
    maps_free(&ref);
}

/* Random disks and rectangles of classes 1..classes on a background. */
static void random_blobs(TestRng *rng, int32_t *m, int w, int h, int count, int classes)
{
    memset(m, 0, (size_t)w * h * sizeof *m);
    for (int b = 0; b < count; b++) {
        float cx = test_rng_uniform(rng, 0, (float)w), cy = test_rng_uniform(rng, 0, (float)h);
        float r = test_rng_uniform(rng, 0.5f, 5.0f);
        int cls = 1 + (int)test_rng_uniform(rng, 0, (float)classes - 0.001f);
        int disk = test_rng_uniform(rng, 0, 1) < 0.5f;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float dx = x - cx, dy = y - cy;
                int in = disk ? dx * dx + dy * dy <= r * r : fabsf(dx) <= r && fabsf(dy) <= r * 0.5f;
                if (in)
                    m[(size_t)y * w + x] = cls;
            }
    }
}

int main(void)
{
    TestRng rng;
    test_rng_seed(&rng, 3);
    UnetWeightMapConfig cfg;
    unet_weightmap_config_default(&cfg);

    /* small random masks, binary and multi-class, several sigmas */
    for (int rep = 0; rep < 12; rep++) {
        int w = 20 + rep * 3, h = 36 - rep;
        int32_t *m = malloc((size_t)w * h * sizeof *m);
        random_blobs(&rng, m, w, h, 3 + rep, rep % 3 == 2 ? 3 : 1);
        UnetWeightMapConfig c = cfg;
        c.sigma = rep % 4 == 3 ? 2.0f : 5.0f;
        c.balance = (UnetClassBalance)(rep % 3);
        char what[64];
        snprintf(what, sizeof what, "random blobs %d", rep);
        check_mask(what, &c, m, NULL, w, h);
        free(m);
    }

    /* ISBI-like Voronoi cells with 1-2 px membranes */
    {
        int w = 96, h = 80;
        int32_t *m = malloc((size_t)w * h * sizeof *m);
        CHECK(unet_synthetic_cells(m, NULL, w, h, 24, 1, 5, NULL) == UNET_OK);
        check_mask("voronoi", &cfg, m, NULL, w, h);
        /* and as instances: one id per Voronoi cell, membranes removed so cells touch */
        free(m);
    }
    /* larger generated mask: fast against the per-cell reference only */
    {
        int w = 200, h = 160;
        size_t n = (size_t)w * h;
        int32_t *m = malloc(n * sizeof *m);
        CHECK(unet_synthetic_cells(m, NULL, w, h, 60, 2, 9, NULL) == UNET_OK);
        Maps fast, ref;
        maps_init(&fast, n);
        maps_init(&ref, n);
        UnetWeightMapInfo i1, i2;
        CHECK(unet_weightmap_compute(&cfg, m, NULL, w, h, &fast.out, &i1, NULL, NULL) == UNET_OK);
        CHECK(unet_weightmap_reference(&cfg, m, NULL, w, h, &ref.out, &i2, NULL) == UNET_OK);
        CHECK(i1.cells == i2.cells && i1.cells > 40);
        float *wonly = malloc(n * sizeof *wonly);
        UnetWeightMapOutputs wo = { wonly, NULL, NULL, NULL, NULL, NULL };
        CHECK(unet_weightmap_compute(&cfg, m, NULL, w, h, &wo, NULL, NULL, NULL) == UNET_OK);
        int bad = 0;
        for (size_t i = 0; i < n; i++)
            if (fabsf(fast.w[i] - ref.w[i]) > 1e-4f || fast.d1[i] != ref.d1[i] ||
                fabsf(wonly[i] - ref.w[i]) > 1e-4f)
                bad++;
        free(wonly);
        CHECK_MSG(bad == 0, "generated 200x160: %d pixels differ from the reference", bad);
        maps_free(&fast);
        maps_free(&ref);
        free(m);
    }

    /* a real instance mask with touching cells (skipped without ../shared/data) */
    const char *shared = test_shared_data_dir();
    if (shared) {
        char path[4096];
        snprintf(path, sizeof path, "%s/usiigaci-phc/masks_instance/train_set1.png", shared);
        UnetLabels lab = { 0 };
        UnetError err = { 0 };
        if (unet_labels_load(path, 0, &lab, &err) == UNET_OK) {
            size_t n = (size_t)lab.width * lab.height;
            float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
            UnetWeightMapOutputs oa = { a, NULL, NULL, NULL, NULL, NULL };
            UnetWeightMapOutputs ob = { b, NULL, NULL, NULL, NULL, NULL };
            UnetWeightMapInfo ia, ib;
            CHECK(unet_weightmap_compute(&cfg, NULL, lab.data, lab.width, lab.height, &oa, &ia, NULL, NULL) == UNET_OK);
            CHECK(unet_weightmap_reference(&cfg, NULL, lab.data, lab.width, lab.height, &ob, &ib, NULL) == UNET_OK);
            double worst = 0;
            for (size_t i = 0; i < n; i++)
                worst = fmax(worst, fabs((double)a[i] - b[i]));
            CHECK_MSG(ia.cells == ib.cells && ia.cells > 10 && worst <= 1e-4,
                      "%s: %d cells, fast vs reference differ by %g", path, ia.cells, worst);
            free(a);
            free(b);
            unet_labels_free(&lab);
        } else {
            CHECK_MSG(0, "%s", err.message);
        }
    } else {
        printf("note: ../shared/data absent, real instance mask not checked\n");
    }

    /* class balance on a known mask: 80 background, 20 foreground pixels */
    {
        int32_t m[100] = { 0 };
        for (int i = 0; i < 20; i++)
            m[i] = 1;
        UnetWeightMapInfo info;
        UnetWeightMapConfig c = cfg;
        CHECK(unet_weightmap_compute(&c, m, NULL, 10, 10, NULL, &info, NULL, NULL) == UNET_OK);
        CHECK(info.class_weights[0] == 1.0f && info.class_weights[1] == 4.0f && info.cells == 1);
        c.balance = UNET_BALANCE_INVERSE;
        CHECK(unet_weightmap_compute(&c, m, NULL, 10, 10, NULL, &info, NULL, NULL) == UNET_OK);
        CHECK(info.class_weights[0] == 0.625f && info.class_weights[1] == 2.5f);
        c.balance = UNET_BALANCE_NONE;
        CHECK(unet_weightmap_compute(&c, m, NULL, 10, 10, NULL, &info, NULL, NULL) == UNET_OK);
        CHECK(info.class_weights[0] == 1.0f && info.class_weights[1] == 1.0f);
        UnetClassBalance b;
        CHECK(unet_class_balance_parse("inverse", &b, NULL) == UNET_OK && b == UNET_BALANCE_INVERSE);
        CHECK(unet_class_balance_parse("median", &b, NULL) == UNET_ERR_INVALID);
    }

    /* touching instances of one class get a carved border with a high weight;
     * touching instances of different classes do not */
    {
        int w = 20, h = 12;
        int32_t inst[240] = { 0 }, cls[240] = { 0 };
        for (int y = 3; y < 9; y++)
            for (int x = 4; x < 16; x++) {
                inst[y * w + x] = x < 10 ? 5 : 9;
                cls[y * w + x] = x < 10 ? 1 : 2;
            }
        float wgt[240], d1[240], d2[240];
        int32_t used[240];
        UnetWeightMapOutputs out = { wgt, NULL, d1, d2, NULL, used };
        UnetWeightMapInfo info;
        CHECK(unet_weightmap_compute(&cfg, NULL, inst, w, h, &out, &info, NULL, NULL) == UNET_OK);
        CHECK(info.cells == 2);
        CHECK(used[5 * w + 9] == 0 && used[5 * w + 10] == 0 && used[5 * w + 8] == 1);
        CHECK(d1[5 * w + 9] == 1.0f && d2[5 * w + 9] == 2.0f);
        float want = info.class_weights[0] + 10.0f * expf(-9.0f / 50.0f);
        CHECK_MSG(fabsf(wgt[5 * w + 9] - want) < 1e-5f, "carved border weight %g, want %g",
                  (double)wgt[5 * w + 9], (double)want);
        check_mask("touching instances", &cfg, NULL, inst, w, h);
        CHECK(unet_weightmap_compute(&cfg, cls, inst, w, h, &out, &info, NULL, NULL) == UNET_OK);
        CHECK(used[5 * w + 9] == 1 && used[5 * w + 10] == 2 && info.classes == 3);
        check_mask("touching classes", &cfg, cls, inst, w, h);
        UnetWeightMapConfig c = cfg;
        c.separate_touching = 0;
        CHECK(unet_weightmap_compute(&c, NULL, inst, w, h, &out, &info, NULL, NULL) == UNET_OK);
        CHECK(used[5 * w + 9] == 1 && used[5 * w + 10] == 1 && info.cells == 2);
    }

    /* no cell and one cell: no border term */
    {
        int32_t m[64] = { 0 };
        float wgt[64], d1[64], d2[64];
        UnetWeightMapOutputs out = { wgt, NULL, d1, d2, NULL, NULL };
        UnetWeightMapInfo info;
        CHECK(unet_weightmap_compute(&cfg, m, NULL, 8, 8, &out, &info, NULL, NULL) == UNET_OK);
        CHECK(info.cells == 0 && wgt[10] == 1.0f && isinf(d1[10]) && isinf(d2[10]));
        m[9] = m[10] = 1;
        CHECK(unet_weightmap_compute(&cfg, m, NULL, 8, 8, &out, &info, NULL, NULL) == UNET_OK);
        CHECK(info.cells == 1 && wgt[25] == 1.0f && d1[25] == 2.0f && isinf(d2[25]));
    }

    /* errors name the problem */
    {
        UnetError err = { 0 };
        int32_t m[4] = { 0, 300, 0, 0 };
        CHECK(unet_weightmap_compute(&cfg, m, NULL, 2, 2, NULL, NULL, NULL, &err) == UNET_ERR_INVALID);
        CHECK(strstr(err.message, "class 300") != NULL);
        int32_t inst[4] = { 0, -2, 0, 0 };
        CHECK(unet_weightmap_compute(&cfg, NULL, inst, 2, 2, NULL, NULL, NULL, &err) == UNET_ERR_INVALID);
        CHECK(strstr(err.message, "instance id -2") != NULL);
        UnetWeightMapConfig c = cfg;
        c.sigma = 0.0f;
        m[1] = 1;
        CHECK(unet_weightmap_compute(&c, m, NULL, 2, 2, NULL, NULL, NULL, &err) == UNET_ERR_INVALID);
        CHECK(strstr(err.message, "sigma") != NULL);
        CHECK(unet_weightmap_compute(&cfg, NULL, NULL, 2, 2, NULL, NULL, NULL, &err) == UNET_ERR_INVALID);
    }
    return test_finish("weightmap");
}
