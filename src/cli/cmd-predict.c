/* cmd-predict.c - `unet predict`: segments images of any size with a checkpoint
 * (overlap-tile, optional test-time augmentation) and writes masks,
 * probabilities and overlays. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-predict-common.h"
#include "commands.h"
#include "fileutil.h"

typedef struct PredictArgs {
    const char *ckpt, *out, *device, *color;
    int tile, batch, tta, threads, save_probs, overlay, scale_classes, quiet;
    UnetPrecision precision;
    float threshold, opacity;
    int threshold_given;
} PredictArgs;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: unet predict --model CKPT --out DIR [OPTIONS] IMAGE...\n\n"
            "Segments each IMAGE (PNG, TIFF, .npy; every page of a multi-page TIFF) with the\n"
            "checkpoint CKPT, tile by tile with mirrored context (overlap-tile), and writes\n"
            "  DIR/STEM.png           the mask: 0/255 for a one-class model; for K classes the\n"
            "                         class ids 0..K-1 as grey values (8-bit, 16-bit above 256\n"
            "                         classes), or spread over 0..255 with --scale-classes\n"
            "  DIR/STEM.npy           with --save-probabilities: float32 [classes, H, W]\n"
            "  DIR/STEM-overlay.png   with --overlay: the image with the classes tinted\n"
            "Pages of a multi-page TIFF are written as STEM-P (P from 1). Images are\n"
            "normalised as stored in the checkpoint (minmax when it stores nothing).\n\n"
            "  -m, --model CKPT          checkpoint (.safetensors) written by unet\n"
            "  -o, --out DIR             output folder (created when missing)\n"
            "  --tile N                  network input tile side, a valid input side of the\n"
            "                            model (see 'unet info'); default: the one up to 1.5 x\n"
            "                            572 that computes the fewest pixels (for the paper's\n"
            "                            net: one tile of 700 for a 512 x 512 image)\n"
            "  --tta                     average the 8 rotations/flips (8x slower)\n"
            "  --threshold T             one-class models: foreground where p > T (default 0.5)\n"
            "  --save-probabilities      also write DIR/STEM.npy\n"
            "  --overlay                 also write DIR/STEM-overlay.png\n"
            "  --opacity A               overlay tint, 0..1 (default 0.4)\n"
            "  --scale-classes           K-class masks: id * 255 / (K-1) instead of raw ids\n"
            "  --color keep|grey|rgb     override the checkpoint's colour conversion\n"
            "  --batch N                 tiles per network pass (default 1 on CPU, 4 on CUDA)\n"
            "  --device auto|cpu|cuda|reference   compute device (default auto)\n"
            "  --precision P             convolutions in fp32, tf32 (default; fp32 on the CPU)\n"
            "                            or bf16 (CUDA only)\n"
            "  --threads N               CPU threads (default: all cores)\n"
            "  -q, --quiet               no per-image lines\n");
}

/* 8- or 16-bit grey mask of the probabilities. */
static UnetStatus write_mask(const char *path, const float *probs, int classes, int h, int w,
                             const PredictArgs *a, int32_t *labels, UnetError *err)
{
    const size_t n = (size_t)h * w;
    unet_probs_to_labels(probs, classes, h, w, a->threshold, labels);
    const int wide = classes > 256 && !a->scale_classes;
    void *px = malloc(n * (wide ? 2 : 1));
    if (!px)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for the mask of %s", path);
    for (size_t i = 0; i < n; i++) {
        int v = labels[i];
        if (classes == 1)
            v = v ? 255 : 0;
        else if (a->scale_classes)
            v = (int)((long)v * 255 / (classes - 1));
        if (wide)
            ((uint16_t *)px)[i] = (uint16_t)v;
        else
            ((uint8_t *)px)[i] = (uint8_t)v;
    }
    UnetStatus st = unet_png_save(path, px, w, h, 1, wide ? 16 : 8, err);
    free(px);
    return st;
}

static char *out_path(const char *dir, const char *stem, int page, int pages, const char *suffix)
{
    char name[PATH_MAX];
    if (pages > 1)
        snprintf(name, sizeof name, "%s-%d%s", stem, page + 1, suffix);
    else
        snprintf(name, sizeof name, "%s%s", stem, suffix);
    return unet_path_join(dir, name);
}

/* 1 when writing `path` would replace `input` (the same file). */
static int same_file(const char *path, const char *input)
{
    char a[PATH_MAX], b[PATH_MAX];
    return realpath(path, a) && realpath(input, b) && !strcmp(a, b);
}

static int predict_page(UnetCliModel *cm, const char *path, const char *stem, int page, int pages,
                        const PredictArgs *a, const UnetPredictOptions *popt)
{
    const UnetModelConfig *cfg = unet_model_config(cm->model);
    UnetError err = { 0 };
    UnetImage raw = { 0 }, in = { 0 };
    char label[PATH_MAX];
    if (pages > 1)
        snprintf(label, sizeof label, "%s (page %d of %d)", path, page + 1, pages);
    else
        snprintf(label, sizeof label, "%s", path);
    if (unet_image_load_page(path, page, &raw, &err) != UNET_OK) {
        fprintf(stderr, "unet predict: %s\n", err.message);
        return 1;
    }
    if (unet_cli_check_channels("predict", label, &raw, cm)) {
        unet_image_free(&raw);
        return 1;
    }
    UnetStatus st = unet_image_to_input(&raw, &cm->input, &in, &err);
    unet_image_free(&raw);
    if (st != UNET_OK) {
        fprintf(stderr, "unet predict: %s: %s\n", label, err.message);
        return 1;
    }
    const int w = in.width, h = in.height, K = cfg->classes;
    const size_t n = (size_t)w * h;
    float *probs = malloc(sizeof(float) * n * K);
    int32_t *labels = malloc(sizeof(int32_t) * n);
    char *mask_path = out_path(a->out, stem, page, pages, ".png");
    char *npy_path = out_path(a->out, stem, page, pages, ".npy");
    char *ov_path = out_path(a->out, stem, page, pages, "-overlay.png");
    int rc = 1;
    if (!probs || !labels || !mask_path || !npy_path || !ov_path) {
        fprintf(stderr, "unet predict: %s: out of memory for a %d x %d image\n", label, w, h);
        goto done;
    }
    if (same_file(mask_path, path) || (a->save_probs && same_file(npy_path, path)) ||
        (a->overlay && same_file(ov_path, path))) {
        fprintf(stderr, "unet predict: writing the results of %s into %s would replace the image "
                        "itself; choose another --out folder\n", path, a->out);
        goto done;
    }
    UnetCliProgress prog = { label, !a->quiet && isatty(STDERR_FILENO) };
    UnetPredictOptions opt = *popt;
    opt.progress = unet_cli_predict_progress;
    opt.progress_user = &prog;
    UnetPredictGeometry g;
    double t0 = unet_cli_now();
    if (unet_predict_geometry(cfg, cm->be, w, h, &opt, &g, &err) != UNET_OK ||
        unet_predict(cm->model, in.data, in.channels, h, w, &opt, probs, &err) != UNET_OK) {
        if (prog.tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "unet predict: %s: %s\n", label, err.message);
        goto done;
    }
    const double secs = unet_cli_now() - t0;
    /* the folder appears with the first result, not for inputs that fail */
    if (unet_mkdir_p(a->out, &err) != UNET_OK) {
        fprintf(stderr, "unet predict: %s\n", err.message);
        goto done;
    }
    if (write_mask(mask_path, probs, K, h, w, a, labels, &err) != UNET_OK) {
        fprintf(stderr, "unet predict: %s\n", err.message);
        goto done;
    }
    if (a->save_probs) {
        int shape[3] = { K, h, w };
        if (unet_npy_save(npy_path, probs, 3, shape, &err) != UNET_OK) {
            fprintf(stderr, "unet predict: %s\n", err.message);
            goto done;
        }
    }
    if (a->overlay) {
        uint8_t *rgb = malloc(n * 3);
        if (!rgb) {
            fprintf(stderr, "unet predict: out of memory for the overlay of %s\n", label);
            goto done;
        }
        st = unet_overlay_render(in.data, in.channels, h, w, labels, a->opacity, rgb, &err);
        if (st == UNET_OK)
            st = unet_png_save(ov_path, rgb, w, h, 3, 8, &err);
        free(rgb);
        if (st != UNET_OK) {
            fprintf(stderr, "unet predict: %s\n", err.message);
            goto done;
        }
    }
    if (!a->quiet)
        printf("%s: %d x %d, %d tile%s of %d%s, %.2f s -> %s\n", label, w, h, g.tiles_x * g.tiles_y,
               g.tiles_x * g.tiles_y == 1 ? "" : "s", g.tile_in, g.transforms > 1 ? " x 8 (TTA)" : "",
               secs, mask_path);
    rc = 0;
done:
    free(probs);
    free(labels);
    free(mask_path);
    free(npy_path);
    free(ov_path);
    unet_image_free(&in);
    return rc;
}

enum {
    OPT_TILE = 0x100, OPT_TTA, OPT_THRESHOLD, OPT_SAVE_PROBS, OPT_OVERLAY, OPT_OPACITY,
    OPT_SCALE_CLASSES, OPT_COLOR, OPT_BATCH, OPT_DEVICE, OPT_THREADS,
    OPT_PRECISION,
};

int unet_cmd_predict(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "model", required_argument, NULL, 'm' },
        { "out", required_argument, NULL, 'o' },
        { "tile", required_argument, NULL, OPT_TILE },
        { "tta", no_argument, NULL, OPT_TTA },
        { "threshold", required_argument, NULL, OPT_THRESHOLD },
        { "save-probabilities", no_argument, NULL, OPT_SAVE_PROBS },
        { "overlay", no_argument, NULL, OPT_OVERLAY },
        { "opacity", required_argument, NULL, OPT_OPACITY },
        { "scale-classes", no_argument, NULL, OPT_SCALE_CLASSES },
        { "color", required_argument, NULL, OPT_COLOR },
        { "colour", required_argument, NULL, OPT_COLOR },
        { "batch", required_argument, NULL, OPT_BATCH },
        { "device", required_argument, NULL, OPT_DEVICE },
        { "precision", required_argument, NULL, OPT_PRECISION },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    PredictArgs a = { .device = "auto", .precision = UNET_PRECISION_TF32, .threshold = 0.5f,
                      .opacity = 0.4f };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:o:qh", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': a.ckpt = optarg; break;
        case 'o': a.out = optarg; break;
        case 'q': a.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case OPT_TILE: bad = unet_cli_parse_int(optarg, 1, 1 << 16, &a.tile); break;
        case OPT_TTA: a.tta = 1; break;
        case OPT_THRESHOLD:
            bad = unet_cli_parse_float(optarg, 0.0, 1.0, &a.threshold);
            a.threshold_given = 1;
            break;
        case OPT_SAVE_PROBS: a.save_probs = 1; break;
        case OPT_OVERLAY: a.overlay = 1; break;
        case OPT_OPACITY: bad = unet_cli_parse_float(optarg, 0.0, 1.0, &a.opacity); break;
        case OPT_SCALE_CLASSES: a.scale_classes = 1; break;
        case OPT_COLOR: a.color = optarg; break;
        case OPT_BATCH: bad = unet_cli_parse_int(optarg, 1, 4096, &a.batch); break;
        case OPT_DEVICE: a.device = optarg; break;
        case OPT_PRECISION: bad = unet_cli_parse_precision(optarg, &a.precision); break;
        case OPT_THREADS: bad = unet_cli_parse_int(optarg, 1, 4096, &a.threads); break;
        default: /* ':' (no value) or an unknown option */
            return unet_cli_getopt_error("predict", c, argv, usage);
        }
        if (bad)
            return unet_cli_bad_value("predict", argv);
    }
    if (!a.ckpt || !a.out || optind >= argc) {
        fprintf(stderr, "unet predict: give --model CKPT, --out DIR and at least one image\n\n");
        usage(stderr);
        return 2;
    }
    /* outputs are named by stem: two inputs with one stem would overwrite each other */
    const int n_images = argc - optind;
    char **stems = calloc((size_t)n_images, sizeof *stems);
    if (!stems)
        return 1;
    int rc = 0;
    for (int i = 0; i < n_images && !rc; i++) {
        stems[i] = unet_path_stem(argv[optind + i]);
        if (!stems[i])
            rc = 1;
        for (int j = 0; j < i && !rc; j++)
            if (!strcmp(stems[i], stems[j])) {
                fprintf(stderr, "unet predict: %s and %s would both be written as %s.png; predict "
                                "them into different --out folders\n", argv[optind + j],
                        argv[optind + i], stems[i]);
                rc = 2;
            }
    }
    UnetCliModel cm = { 0 };
    if (!rc)
        rc = unet_cli_model_open(&cm, "predict", a.ckpt, a.device, a.precision, a.threads,
                                 a.color, !a.quiet);
    if (!rc && a.threshold_given && unet_model_config(cm.model)->classes > 1) {
        fprintf(stderr, "unet predict: --threshold applies to one-class models; this one has %d "
                        "classes and takes the most probable one\n",
                unet_model_config(cm.model)->classes);
        rc = 2;
    }
    UnetError err = { 0 };
    struct stat sb;
    if (!rc && stat(a.out, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "unet predict: cannot create folder %s: a file of that name is in the way\n", a.out);
        rc = 1;
    }
    if (!rc && !cm.input_found && !a.quiet)
        fprintf(stderr, "unet predict: %s stores no input normalisation; using minmax\n", a.ckpt);
    UnetPredictOptions popt;
    unet_predict_options_default(&popt);
    popt.tile = a.tile;
    popt.batch = a.batch;
    popt.tta = a.tta;
    if (!rc) {
        UnetPredictGeometry g;
        if (unet_predict_geometry(unet_model_config(cm.model), cm.be, 1, 1, &popt, &g, &err) !=
            UNET_OK) {
            fprintf(stderr, "unet predict: --tile: %s\n", err.message);
            rc = 2;
        }
    }
    int failed = 0;
    if (!rc) {
        unet_cli_catch_interrupt();
        for (int i = 0; i < n_images && !unet_cli_interrupted(); i++) {
            const char *path = argv[optind + i];
            int pages = 1;
            if (unet_image_sniff(path) == UNET_IMAGE_FORMAT_TIFF &&
                unet_image_page_count(path, &pages, &err) != UNET_OK) {
                fprintf(stderr, "unet predict: %s\n", err.message);
                failed++;
                continue;
            }
            for (int p = 0; p < pages && !unet_cli_interrupted(); p++)
                failed += predict_page(&cm, path, stems[i], p, pages, &a, &popt);
        }
        if (unet_cli_interrupted()) {
            fprintf(stderr, "unet predict: interrupted\n");
            rc = 1;
        } else if (failed) {
            rc = 1;
        }
    }
    unet_cli_model_close(&cm);
    for (int i = 0; i < n_images; i++)
        free(stems[i]);
    free(stems);
    return rc;
}
