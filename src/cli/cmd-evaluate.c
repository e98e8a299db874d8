/* cmd-evaluate.c - `unet evaluate`: predicts every image of a dataset folder with
 * a checkpoint and scores it against its mask (Dice, IoU, pixel error, V_rand,
 * V_info), per image and on average, as a table, CSV or JSON. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-predict-common.h"
#include "commands.h"
#include "dataset.h"
#include "fileutil.h"
#include "metrics.h"

typedef struct EvalArgs {
    const char *ckpt, *data, *csv, *device, *color, *mask_mode;
    int tile, batch, tta, threads, json, quiet;
    UnetPrecision precision;
    float threshold;
} EvalArgs;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: unet evaluate --model CKPT --data DIR [--csv FILE] [--json] [OPTIONS]\n\n"
            "Predicts every image of the dataset DIR (DIR/images + DIR/masks, or an ISBI-style\n"
            "pair of TIFF stacks; see 'unet dataset') with CKPT and prints, per image and as\n"
            "the mean over images: dice and iou (foreground; the mean over classes 1..K-1 for\n"
            "K classes), pixel_error (fraction of pixels with the wrong class), v_rand and\n"
            "v_info (ISBI 2012 foreground-restricted Rand and information scores of the\n"
            "connected components; 1 is perfect).\n\n"
            "  -m, --model CKPT        checkpoint written by unet\n"
            "  -d, --data DIR          dataset folder\n"
            "  --csv FILE              also write the table as CSV (the mean as the last row)\n"
            "  --json                  print one JSON object {\"mean\": {...}, \"images\": [...]}\n"
            "  --mask-mode MODE        auto|binary|multiclass|instance (default auto)\n"
            "  --tile N, --tta, --threshold T, --batch N, --color keep|grey|rgb\n"
            "                          as for 'unet predict'\n"
            "  --device auto|cpu|cuda|reference, --threads N\n"
            "  --precision fp32|tf32|bf16  convolution arithmetic (default tf32, fp32 on the CPU;\n"
            "                          bf16 needs CUDA)\n"
            "  -q, --quiet             no progress lines\n");
}

static const char *const metric_names[5] = { "dice", "iou", "pixel_error", "v_rand", "v_info" };

static void metric_values(const UnetSegMetrics *m, double v[5])
{
    v[0] = m->dice;
    v[1] = m->iou;
    v[2] = m->pixel_error;
    v[3] = m->rand_info.v_rand;
    v[4] = m->rand_info.v_info;
}

static json_object *metrics_json(const char *name, const UnetSegMetrics *m)
{
    json_object *o = json_object_new_object();
    if (name)
        json_object_object_add(o, "name", json_object_new_string(name));
    double v[5];
    metric_values(m, v);
    for (int k = 0; k < 5; k++)
        json_object_object_add(o, metric_names[k], json_object_new_double(v[k]));
    if (m->classes > 2) {
        json_object *cd = json_object_new_array(), *ci = json_object_new_array();
        for (int c = 0; c < m->classes; c++) {
            json_object_array_add(cd, json_object_new_double(m->class_dice[c]));
            json_object_array_add(ci, json_object_new_double(m->class_iou[c]));
        }
        json_object_object_add(o, "class_dice", cd);
        json_object_object_add(o, "class_iou", ci);
    }
    return o;
}

static void row(FILE *f, const char *name, int width, const UnetSegMetrics *m, int csv)
{
    double v[5];
    metric_values(m, v);
    if (csv) {
        /* names with a comma or quote are quoted */
        if (strpbrk(name, ",\"\n")) {
            fputc('"', f);
            for (const char *p = name; *p; p++) {
                if (*p == '"')
                    fputc('"', f);
                fputc(*p, f);
            }
            fputc('"', f);
        } else {
            fputs(name, f);
        }
        for (int k = 0; k < 5; k++)
            fprintf(f, ",%.6f", v[k]);
        fputc('\n', f);
    } else {
        fprintf(f, "%-*s %8.4f %8.4f %12.4f %8.4f %8.4f\n", width, name, v[0], v[1], v[2], v[3],
                v[4]);
    }
}

enum {
    OPT_CSV = 0x100, OPT_JSON, OPT_MASK_MODE, OPT_TILE, OPT_TTA, OPT_THRESHOLD, OPT_BATCH,
    OPT_COLOR, OPT_DEVICE, OPT_THREADS,
    OPT_PRECISION,
};

typedef struct CsvCtx {
    const UnetSegMetrics *per;
    char **names;
    int n;
    const UnetSegMetrics *mean;
} CsvCtx;

static UnetStatus write_csv(FILE *f, void *user, UnetError *err)
{
    const CsvCtx *c = user;
    fprintf(f, "image");
    for (int k = 0; k < 5; k++)
        fprintf(f, ",%s", metric_names[k]);
    fputc('\n', f);
    for (int i = 0; i < c->n; i++)
        row(f, c->names[i], 0, &c->per[i], 1);
    row(f, "mean", 0, c->mean, 1);
    return ferror(f) ? unet_error_set(err, UNET_ERR_IO, "write error") : UNET_OK;
}

int unet_cmd_evaluate(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "model", required_argument, NULL, 'm' },
        { "data", required_argument, NULL, 'd' },
        { "csv", required_argument, NULL, OPT_CSV },
        { "json", no_argument, NULL, OPT_JSON },
        { "mask-mode", required_argument, NULL, OPT_MASK_MODE },
        { "tile", required_argument, NULL, OPT_TILE },
        { "tta", no_argument, NULL, OPT_TTA },
        { "threshold", required_argument, NULL, OPT_THRESHOLD },
        { "batch", required_argument, NULL, OPT_BATCH },
        { "color", required_argument, NULL, OPT_COLOR },
        { "colour", required_argument, NULL, OPT_COLOR },
        { "device", required_argument, NULL, OPT_DEVICE },
        { "precision", required_argument, NULL, OPT_PRECISION },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    EvalArgs a = { .device = "auto", .precision = UNET_PRECISION_TF32, .threshold = 0.5f,
                   .mask_mode = "auto" };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:d:qh", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': a.ckpt = optarg; break;
        case 'd': a.data = optarg; break;
        case 'q': a.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case OPT_CSV: a.csv = optarg; break;
        case OPT_JSON: a.json = 1; break;
        case OPT_MASK_MODE: a.mask_mode = optarg; break;
        case OPT_TILE: bad = unet_cli_parse_int(optarg, 1, 1 << 16, &a.tile); break;
        case OPT_TTA: a.tta = 1; break;
        case OPT_THRESHOLD: bad = unet_cli_parse_float(optarg, 0.0, 1.0, &a.threshold); break;
        case OPT_BATCH: bad = unet_cli_parse_int(optarg, 1, 4096, &a.batch); break;
        case OPT_COLOR: a.color = optarg; break;
        case OPT_DEVICE: a.device = optarg; break;
        case OPT_PRECISION: bad = unet_cli_parse_precision(optarg, &a.precision); break;
        case OPT_THREADS: bad = unet_cli_parse_int(optarg, 1, 4096, &a.threads); break;
        default: /* ':' (no value) or an unknown option */
            return unet_cli_getopt_error("evaluate", c, argv, usage);
        }
        if (bad)
            return unet_cli_bad_value("evaluate", argv);
    }
    if (!a.ckpt || !a.data || optind < argc) {
        if (optind < argc)
            fprintf(stderr, "unet evaluate: unexpected argument '%s'\n\n", argv[optind]);
        else
            fprintf(stderr, "unet evaluate: give --model CKPT and --data DIR\n\n");
        usage(stderr);
        return 2;
    }
    UnetError err = { 0 };
    UnetDatasetOptions dopt;
    unet_dataset_options_default(&dopt);
    if (unet_mask_mode_parse(a.mask_mode, &dopt.mask_mode, &err) != UNET_OK) {
        fprintf(stderr, "unet evaluate: --mask-mode: %s\n", err.message);
        return 2;
    }
    if (!unet_path_is_dir(a.data)) {
        fprintf(stderr, "unet evaluate: dataset folder '%s' does not exist\n", a.data);
        return 1;
    }
    UnetCliModel cm;
    int rc = unet_cli_model_open(&cm, "evaluate", a.ckpt, a.device, a.precision, a.threads, a.color,
                                 !a.quiet && !a.json);
    if (rc)
        return rc;
    const UnetModelConfig *cfg = unet_model_config(cm.model);
    const int K = cfg->classes, mclasses = K < 2 ? 2 : K;
    dopt.input = cm.input;
    if (K >= 2)
        dopt.classes = K;
    if (mclasses > UNET_METRICS_MAX_CLASSES) {
        fprintf(stderr, "unet evaluate: the model has %d classes; metrics go up to %d\n", K,
                UNET_METRICS_MAX_CLASSES);
        unet_cli_model_close(&cm);
        return 1;
    }
    UnetDataset *ds = NULL;
    if (unet_dataset_open(a.data, &dopt, &ds, &err) != UNET_OK) {
        fprintf(stderr, "unet evaluate: %s\n", err.message);
        unet_cli_model_close(&cm);
        return 1;
    }
    UnetPredictOptions popt;
    unet_predict_options_default(&popt);
    popt.tile = a.tile;
    popt.batch = a.batch;
    popt.tta = a.tta;
    const int n = unet_dataset_count(ds);
    UnetSegMetrics *per = calloc((size_t)n, sizeof *per);
    char **names = calloc((size_t)n, sizeof *names);
    UnetMetricsMean mean;
    unet_metrics_mean_init(&mean, mclasses);
    int width = 5, done = 0;
    if (!per || !names) {
        fprintf(stderr, "unet evaluate: out of memory\n");
        rc = 1;
    }
    unet_cli_catch_interrupt();
    const int tty = !a.quiet && isatty(STDERR_FILENO);
    for (int i = 0; i < n && !rc; i++) {
        const char *name = unet_dataset_name(ds, i);
        UnetPair pair = { 0 };
        float *probs = NULL;
        int32_t *pred = NULL;
        if (unet_dataset_load(ds, i, &pair, &err) != UNET_OK) {
            fprintf(stderr, "unet evaluate: %s\n", err.message);
            rc = 1;
        } else if (pair.image.channels != cfg->in_channels) {
            fprintf(stderr, "unet evaluate: %s: the image has %d channel%s but the model takes %d%s\n",
                    unet_dataset_image_path(ds, i, NULL), pair.image.channels,
                    pair.image.channels == 1 ? "" : "s", cfg->in_channels,
                    cfg->in_channels == 1 ? "; --color grey converts colour images to grey"
                                          : "; --color rgb repeats grey images into RGB");
            rc = 1;
        } else {
            const int w = pair.image.width, h = pair.image.height;
            probs = malloc(sizeof(float) * (size_t)w * h * K);
            pred = malloc(sizeof(int32_t) * (size_t)w * h);
            UnetCliProgress prog = { name, tty };
            popt.progress = unet_cli_predict_progress;
            popt.progress_user = &prog;
            if (!probs || !pred) {
                fprintf(stderr, "unet evaluate: out of memory for %s\n", name);
                rc = 1;
            } else if (unet_predict(cm.model, pair.image.data, pair.image.channels, h, w, &popt,
                                    probs, &err) != UNET_OK) {
                if (tty)
                    fputs("\r\033[K", stderr);
                fprintf(stderr, "unet evaluate: %s: %s\n", name, err.message);
                rc = 1;
            } else {
                unet_probs_to_labels(probs, K, h, w, a.threshold, pred);
                if (unet_segmentation_metrics(pair.labels.data, pred, w, h, mclasses, &per[i],
                                              &err) != UNET_OK) {
                    fprintf(stderr, "unet evaluate: %s: %s\n", name, err.message);
                    rc = 1;
                } else {
                    unet_metrics_mean_add(&mean, &per[i]);
                    names[i] = strdup(name);
                    if (!names[i]) {
                        rc = 1;
                    } else {
                        int len = (int)strlen(name);
                        width = len > width ? len : width;
                        done++;
                    }
                }
            }
        }
        free(probs);
        free(pred);
        unet_pair_free(&pair);
    }
    if (!rc && unet_cli_interrupted()) {
        fprintf(stderr, "unet evaluate: interrupted\n");
        rc = 1;
    }
    UnetSegMetrics avg;
    if (!rc) {
        unet_metrics_mean_get(&mean, &avg);
        if (a.json) {
            json_object *o = json_object_new_object(), *imgs = json_object_new_array();
            json_object_object_add(o, "model", json_object_new_string(a.ckpt));
            json_object_object_add(o, "data", json_object_new_string(a.data));
            json_object_object_add(o, "classes", json_object_new_int(K));
            json_object_object_add(o, "count", json_object_new_int(done));
            json_object_object_add(o, "mean", metrics_json(NULL, &avg));
            for (int i = 0; i < done; i++)
                json_object_array_add(imgs, metrics_json(names[i], &per[i]));
            json_object_object_add(o, "images", imgs);
            printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
            json_object_put(o);
        } else {
            printf("%-*s %8s %8s %12s %8s %8s\n", width, "image", "dice", "iou", "pixel_error",
                   "v_rand", "v_info");
            for (int i = 0; i < done; i++)
                row(stdout, names[i], width, &per[i], 0);
            row(stdout, "mean", width, &avg, 0);
        }
        if (a.csv) {
            CsvCtx ctx = { per, names, done, &avg };
            if (unet_write_file_atomic(a.csv, write_csv, &ctx, &err) != UNET_OK) {
                fprintf(stderr, "unet evaluate: %s\n", err.message);
                rc = 1;
            }
        }
    }
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    free(per);
    unet_dataset_free(ds);
    unet_cli_model_close(&cm);
    return rc;
}
