/* bench-data.c - weight maps and augmentation, ours beside the anchors (OpenCV/scipy). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "augment.h"
#include "components.h"
#include "edt.h"
#include "fileutil.h"
#include "image.h"
#include "sample-data.h"
#include "synthetic-cells.h"
#include "weightmap.h"

/* CPU time of this thread: the machine may be shared, wall time would count
 * the neighbours. Both sides (here and data-anchors.py) measure the same way. */
static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct Timing {
    double min, median;
} Timing;

static Timing summarise(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return (Timing){ t[0], t[n / 2] };
}

static void report(const char *what, Timing t)
{
    printf("  %-46s %9.3f ms   (median %.3f)\n", what, t.min, t.median);
}

#define TIME(reps, stmt)                                \
    ({                                                  \
        double _t[256];                                 \
        int _n = (reps) < 256 ? (reps) : 256;           \
        for (int _i = 0; _i < _n; _i++) {               \
            double _t0 = cpu_ms();                      \
            stmt;                                       \
            _t[_i] = cpu_ms() - _t0;                    \
        }                                               \
        summarise(_t, _n);                              \
    })

static void one_stage(UnetAugmentConfig *c, UnetAugmentKind k)
{
    memset(c, 0, sizeof *c);
    c->intensity_max = 255.0f;
    c->count = 1;
    c->stages[0].p = 1.0f;
    c->stages[0].count = 1;
    unet_augment_op_default(&c->stages[0].ops[0], k);
}

static int bench_weightmap(const char *dir, int reps, char *label_path, size_t label_size,
                           float **ours_out)
{
    const int w = 512, h = 512;
    size_t n = (size_t)w * h;
    UnetError err = { 0 };
    int32_t *mask = malloc(n * sizeof *mask), *cells = malloc(n * sizeof *cells);
    uint8_t *u8 = malloc(n);
    float *wt = malloc(n * sizeof *wt), *d1 = malloc(n * sizeof *d1), *d2 = malloc(n * sizeof *d2);
    if (!mask || !cells || !u8 || !wt || !d1 || !d2) {
        fprintf(stderr, "bench-data: out of memory\n");
        return 1;
    }
    if (unet_synthetic_cells(mask, NULL, w, h, 120, 1, 1, &err))
        goto fail;
    for (size_t i = 0; i < n; i++)
        u8[i] = mask[i] ? 255 : 0;
    snprintf(label_path, label_size, "%s/bench-label-512.png", dir);
    if (unet_png_save(label_path, u8, w, h, 1, 8, &err))
        goto fail;
    int count = 0;
    unet_components_label_values(cells, mask, w, h, 8, &count, NULL);
    printf("weight map: 512 x 512 Voronoi label, %d cells (8-connected), 1-2 px membranes, "
           "w0 10, sigma 5 (%s)\n", count, label_path);

    UnetWeightMapConfig cfg;
    unet_weightmap_config_default(&cfg);
    UnetScratch scratch = { 0 };
    UnetWeightMapOutputs wonly = { wt, NULL, NULL, NULL, NULL, NULL };
    UnetWeightMapOutputs all = { wt, NULL, d1, d2, NULL, NULL };
    report("ours: weight map (fast, exact to 1e-5)",
           TIME(reps, unet_weightmap_compute(&cfg, mask, NULL, w, h, &wonly, NULL, &scratch, NULL)));
    UnetWeightMapConfig cx = cfg;
    cx.exact_d2 = 1;
    report("ours: weight map + d1, d2 exact everywhere",
           TIME(reps, unet_weightmap_compute(&cx, mask, NULL, w, h, &all, NULL, &scratch, NULL)));
    report("ours: per-cell EDT reference (notebook's way)",
           TIME(reps < 3 ? reps : 3, unet_weightmap_reference(&cfg, mask, NULL, w, h, &wonly, NULL, NULL)));
    report("ours: one EDT of the whole label",
           TIME(reps, unet_edt(d1, u8, w, h, NULL)));
    report("ours: 8-connected components",
           TIME(reps, unet_components_label(cells, u8, w, h, 8, &count, NULL)));
    /* the weight map the anchor will be compared with */
    unet_weightmap_compute(&cfg, mask, NULL, w, h, &wonly, NULL, &scratch, NULL);
    unet_scratch_free(&scratch);
    *ours_out = wt;
    free(mask); free(cells); free(u8); free(d1); free(d2);
    return 0;
fail:
    fprintf(stderr, "bench-data: %s\n", err.message);
    return 1;
}

static int bench_augment(const char *dir, int reps, char *tile_path, char *tile_mask_path,
                         size_t size)
{
    const int w = 572, h = 572;
    size_t n = (size_t)w * h;
    UnetError err = { 0 };
    uint8_t *img8 = malloc(n), *mask8 = malloc(n);
    float *img = malloc(n * sizeof *img), *out = malloc(n * sizeof *out), *wt = malloc(n * sizeof *wt);
    int32_t *mask = malloc(n * sizeof *mask), *mout = malloc(n * sizeof *mout);
    if (!img8 || !mask8 || !img || !out || !wt || !mask || !mout) {
        fprintf(stderr, "bench-data: out of memory\n");
        return 1;
    }
    if (unet_sample_data_generate(w, 1, 0, img8, mask8, &err))
        goto fail;
    snprintf(tile_path, size, "%s/bench-tile-572.png", dir);
    snprintf(tile_mask_path, size, "%s/bench-tile-572-mask.png", dir);
    if (unet_png_save(tile_path, img8, w, h, 1, 8, &err) ||
        unet_png_save(tile_mask_path, mask8, w, h, 1, 8, &err))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        img[i] = img8[i];
        mask[i] = mask8[i] ? 1 : 0;
    }
    printf("\naugmentation: 572 x 572 tile, 1 channel + mask (%s)\n", tile_path);
    UnetScratch sa = { 0 }, sw = { 0 };
    UnetAugmentConfig cfg;
    UnetAugmentRecord rec;
    for (int k = 0; k < UNET_AUG_KIND_COUNT; k++) {
        one_stage(&cfg, (UnetAugmentKind)k);
        if (k == UNET_AUG_PAD_IF_NEEDED)
            cfg.stages[0].ops[0].min_width = cfg.stages[0].ops[0].min_height = 600;
        if (unet_augment_sample(&rec, &cfg, 1, w, h, &err))
            goto fail;
        float *o = malloc((size_t)rec.out_w * rec.out_h * sizeof *o);
        int32_t *m = malloc((size_t)rec.out_w * rec.out_h * sizeof *m);
        char what[96];
        snprintf(what, sizeof what, "ours: %s", unet_augment_kind_name((UnetAugmentKind)k));
        report(what, TIME(reps, unet_augment_apply(&rec, img, 1, mask, NULL, o, m, NULL, &sa, NULL)));
        free(o);
        free(m);
    }
    unet_augment_config_default(&cfg);
    cfg.intensity_max = 255.0f;
    UnetWeightMapConfig wcfg;
    unet_weightmap_config_default(&wcfg);
    UnetWeightMapOutputs wo = { wt, NULL, NULL, NULL, NULL, NULL };
    for (int all = 0; all < 2; all++) {
        if (all)
            for (int i = 0; i < cfg.count; i++)
                cfg.stages[i].p = 1.0f;
        int samples = reps * 4 < 256 ? reps * 4 : 256;
        double ta[256], tw[256], tt[256];
        for (int s = 0; s < samples; s++) {
            unet_augment_sample(&rec, &cfg, (uint64_t)s, w, h, NULL);
            double t0 = cpu_ms();
            unet_augment_apply(&rec, img, 1, mask, NULL, out, mout, NULL, &sa, NULL);
            double t1 = cpu_ms();
            unet_weightmap_compute(&wcfg, mout, NULL, rec.out_w, rec.out_h, &wo, NULL, &sw, NULL);
            double t2 = cpu_ms();
            ta[s] = t1 - t0;
            tw[s] = t2 - t1;
            tt[s] = t2 - t0;
        }
        double mean = 0;
        for (int s = 0; s < samples; s++)
            mean += tt[s];
        Timing a = summarise(ta, samples), b = summarise(tw, samples), t = summarise(tt, samples);
        printf("  ours: %s, %d seeds: augmentation median %.3f, weight map median %.3f,\n"
               "        sample + weight map median %.3f ms, mean %.3f, worst %.3f\n",
               all ? "every stage (p = 1)" : "default pipeline", samples, a.median, b.median,
               t.median, mean / samples, tt[samples - 1]);
    }
    unet_scratch_free(&sa);
    unet_scratch_free(&sw);
    free(img8); free(mask8); free(img); free(out); free(wt); free(mask); free(mout);
    return 0;
fail:
    fprintf(stderr, "bench-data: %s\n", err.message);
    return 1;
}

/* Runs the anchors if python3 with OpenCV and scipy is there; relays their
 * lines and compares the notebook's weight map with ours. */
static void run_anchors(const char *script, const char *dir, const char *what, const char *label,
                        const char *tile, const char *tile_mask, int reps, const float *ours)
{
    const char *py = getenv("UNET_BENCH_PYTHON");
    if (!py)
        py = "/usr/bin/python3";
    char check[1024];
    snprintf(check, sizeof check, "%s -c 'import cv2, scipy, numpy' 2>/dev/null", py);
    if (system(check) != 0) {
        printf("\nanchors: skipped (%s with cv2, scipy and numpy not found; set UNET_BENCH_PYTHON)\n", py);
        return;
    }
    char npy[1024];
    snprintf(npy, sizeof npy, "%s/bench-notebook-weight.npy", dir);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 %s '%s' --what %s --label '%s' --tile '%s' "
             "--tile-mask '%s' --repeat %d --save-weight '%s'",
             py, script, what, label ? label : "", tile ? tile : "", tile_mask ? tile_mask : "", reps,
             npy);
    printf("\nanchors (%s, one thread):\n", py);
    fflush(stdout);
    if (system(cmd) != 0) {
        printf("  anchors failed: %s\n", cmd);
        return;
    }
    if (!ours)
        return;
    float *theirs = NULL;
    int ndim = 0, shape[UNET_NPY_MAX_DIMS];
    UnetError err = { 0 };
    if (unet_npy_load(npy, &theirs, &ndim, shape, &err)) {
        printf("  (cannot read the notebook's weight map: %s)\n", err.message);
        return;
    }
    if (ndim == 2 && shape[0] == 512 && shape[1] == 512) {
        double worst = 0;
        for (size_t i = 0; i < (size_t)512 * 512; i++) {
            double d = fabs((double)ours[i] - theirs[i]);
            worst = d > worst ? d : worst;
        }
        printf("  agreement: max |w_ours - w_notebook| = %.3g over the 512 x 512 label\n", worst);
    }
    free(theirs);
}

int main(int argc, char **argv)
{
    const char *what = "all";
    int reps = 20, anchors = 1;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "weightmap") || !strcmp(argv[i], "augment") || !strcmp(argv[i], "all"))
            what = argv[i];
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-anchors"))
            anchors = 0;
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: bench-data [weightmap|augment|all] [--repeat N] [--dir DIR] "
                            "[--no-anchors]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 256) {
        fprintf(stderr, "bench-data: --repeat must be 1..256\n");
        return 2;
    }
    char tmpdir[] = "/tmp/unet-bench-data-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmpdir))) {
        fprintf(stderr, "bench-data: cannot make a temporary folder: %s\n", strerror(errno));
        return 1;
    }
    UnetError err = { 0 };
    if (unet_mkdir_p(dir, &err)) {
        fprintf(stderr, "bench-data: %s\n", err.message);
        return 1;
    }
    printf("bench-data: thread CPU time, min over %d runs (median beside it)\n\n", reps);
    char label[1024] = "", tile[1024] = "", tile_mask[1024] = "";
    float *ours = NULL;
    int rc = 0;
    if (strcmp(what, "augment"))
        rc |= bench_weightmap(dir, reps, label, sizeof label, &ours);
    if (!rc && strcmp(what, "weightmap"))
        rc |= bench_augment(dir, reps, tile, tile_mask, sizeof tile);
    if (!rc && anchors) {
        const char *src = getenv("UNET_SOURCE_ROOT");
        char script[1024];
        snprintf(script, sizeof script, "%s/bench/data-anchors.py", src ? src : UNET_SOURCE_DIR);
        run_anchors(script, dir, what, label, tile, tile_mask, reps, ours);
    }
    free(ours);
    return rc;
}
