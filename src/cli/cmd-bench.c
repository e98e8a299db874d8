/* cmd-bench.c - `unet bench`: times training steps, inference forwards, whole-image
 * prediction, weight maps and augmentation, and prints seconds per step,
 * GFLOP/s, peak RSS and the activation peak as text or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "augment.h"
#include "cli-model-options.h"
#include "cli-predict-common.h"
#include "commands.h"
#include "synthetic-cells.h"
#include "weightmap.h"

typedef enum BenchKind { BENCH_TRAIN, BENCH_FORWARD, BENCH_PREDICT, BENCH_WEIGHTMAP, BENCH_AUGMENT } BenchKind;

static const char *const bench_names[] = { "train-step", "forward", "predict", "weightmap", "augment" };

typedef struct BenchArgs {
    BenchKind kind;
    UnetCliModelOptions model;
    const char *device;
    UnetPrecision precision;
    int size, batch, steps, warmup, threads, json, profile, tile, tta, paper;
    int cuda_graphs;
} BenchArgs;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: unet bench train-step|forward|predict [model options] [OPTIONS]\n"
            "       unet bench weightmap|augment [--size S] [--steps N] [--warmup N] [--json]\n\n"
            "Times one piece of work repeatedly and prints the time per step (median and best),\n"
            "GFLOP/s, images per second, the peak RSS of the process and the peak of the model's\n"
            "activation memory.\n"
            "  train-step  zero_grad, training forward, loss (the model's default), backward and\n"
            "              an SGD update (momentum 0.99) on a batch of S x S inputs\n"
            "  forward     an inference forward pass of a batch of S x S inputs\n"
            "  predict     unet_predict of one S x S image (overlap-tile, --tile, --tta, --batch\n"
            "              tiles per pass), the same work as 'unet predict'\n"
            "  weightmap   the paper's loss weight map of an S x S synthetic cell mask\n"
            "  augment     sampling and applying the augmentation pipeline (the notebook's, or\n"
            "              --paper) to an S x S image, mask and weight map\n"
            "FLOPs count the convolutions and up-convolutions: 2 x multiply-adds of the\n"
            "forward pass, from the model's layer list; a training step counts 3 x that\n"
            "(forward, gradient of the input, gradient of the weights).\n\n"
            "  --size S       input side (default 572; predict 512; S must be a valid input side\n"
            "                 for train-step and forward, see 'unet info')\n"
            "  --batch B      images per step (predict: tiles per network pass; default 1)\n"
            "  --steps N      timed steps (default 5)\n"
            "  --warmup N     untimed steps first (default 1)\n"
            "  --tile N, --tta  predict: tile side and test-time augmentation\n"
            "  --paper        augment: the paper's pipeline instead of the notebook's\n"
            "  --device auto|cpu|cuda|reference   (default auto)\n"
            "  --precision fp32|tf32|bf16  convolution arithmetic (default tf32, which is fp32\n"
            "                 on the CPU; bf16 needs CUDA)\n"
            "  --threads N    CPU threads (default: all cores)\n"
            "  --cuda-graphs on|off  train-step: replay zero_grad, forward, loss and backward as\n"
            "                 one CUDA graph (captured on the second warm-up step; give\n"
            "                 --warmup 2 or more), the SGD update runs after it (default off)\n"
            "  --profile      time every backend call, summed by op and shape (on stderr\n"
            "                 with --json); each call is synchronised\n"
            "  --json         one JSON object: seconds_per_step, ms_per_step, ms_per_image,\n"
            "                 gflops, images_per_second, peak_rss_mb, activation_peak_mb, ...\n\n");
    unet_cli_model_options_help(f);
}

/* ---- per-op profile: the backend's function pointers are wrapped ------------ */

typedef struct OpStat {
    char key[96];
    double seconds, flops;
    long calls;
} OpStat;

#define MAX_STATS 512
static OpStat stats[MAX_STATS];
static int nstats;
static UnetBackend real; /* the unwrapped function table */

static void account(UnetBackend *be, const char *key, double t0, double flops)
{
    be->synchronize(be);
    double seconds = unet_cli_now() - t0;
    int i;
    for (i = 0; i < nstats; i++)
        if (!strcmp(stats[i].key, key))
            break;
    if (i == nstats) {
        if (nstats == MAX_STATS)
            return;
        snprintf(stats[nstats++].key, sizeof stats[0].key, "%s", key);
    }
    stats[i].seconds += seconds;
    stats[i].flops += flops;
    stats[i].calls++;
}

static double conv_flops(const UnetTensor *x, const UnetTensor *y, int k)
{
    return 2.0 * y->n * y->c * (double)x->c * k * k * y->h * y->w;
}

static UnetStatus w_conv_fwd(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                             const UnetTensor *w, const UnetTensor *b, const UnetConvDesc *d)
{
    double t = unet_cli_now();
    UnetStatus s = real.conv2d_forward(be, y, x, w, b, d);
    char key[96];
    snprintf(key, sizeof key, "conv%d fwd   %4d->%-4d %4dx%-4d", d->kernel, x->c, y->c, y->h, y->w);
    account(be, key, t, conv_flops(x, y, d->kernel));
    return s;
}

static UnetStatus w_conv_bwd(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                             const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                             const UnetConvDesc *d, int acc)
{
    double t = unet_cli_now();
    UnetStatus s = real.conv2d_backward(be, dx, dw, db, dy, x, w, d, acc);
    char key[96];
    snprintf(key, sizeof key, "conv%d bwd   %4d->%-4d %4dx%-4d", d->kernel, x->c, dy->c, dy->h,
             dy->w);
    account(be, key, t, conv_flops(x, dy, d->kernel) * ((dx ? 1 : 0) + (dw ? 1 : 0)));
    return s;
}

static UnetStatus w_up_fwd(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                           const UnetTensor *w, const UnetTensor *b)
{
    double t = unet_cli_now();
    UnetStatus s = real.upconv2x2_forward(be, y, x, w, b);
    char key[96];
    snprintf(key, sizeof key, "upconv fwd  %4d->%-4d %4dx%-4d", x->c, y->c, y->h, y->w);
    account(be, key, t, 2.0 * y->n * y->c * (double)x->c * y->h * y->w);
    return s;
}

static UnetStatus w_up_bwd(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                           const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w, int acc)
{
    double t = unet_cli_now();
    UnetStatus s = real.upconv2x2_backward(be, dx, dw, db, dy, x, w, acc);
    char key[96];
    snprintf(key, sizeof key, "upconv bwd  %4d->%-4d %4dx%-4d", x->c, dy->c, dy->h, dy->w);
    account(be, key, t,
            2.0 * dy->n * dy->c * (double)x->c * dy->h * dy->w * ((dx ? 1 : 0) + (dw ? 1 : 0)));
    return s;
}

/* The other ops are timed by name only. */
#define WRAP(field, label, params, args)            \
    static UnetStatus w_##field params              \
    {                                               \
        double t0_ = unet_cli_now();                \
        UnetStatus s_ = real.field args;            \
        account(be, label, t0_, 0.0);               \
        return s_;                                  \
    }

WRAP(maxpool2x2_forward, "maxpool fwd", (UnetBackend *be, UnetTensor *y, const UnetTensor *x),
     (be, y, x))
WRAP(maxpool2x2_backward, "maxpool bwd",
     (UnetBackend *be, UnetTensor *dx, const UnetTensor *dy, const UnetTensor *x,
      const UnetTensor *y, int a), (be, dx, dy, x, y, a))
WRAP(crop_concat_forward, "crop_concat fwd",
     (UnetBackend *be, UnetTensor *y, const UnetTensor *s1, const UnetTensor *u), (be, y, s1, u))
WRAP(crop_concat_backward, "crop_concat bwd",
     (UnetBackend *be, UnetTensor *ds, UnetTensor *du, const UnetTensor *dy, int a1, int a2),
     (be, ds, du, dy, a1, a2))
WRAP(activation_forward, "activation fwd",
     (UnetBackend *be, UnetTensor *y, const UnetTensor *x, UnetActivation a, float sl),
     (be, y, x, a, sl))
WRAP(activation_backward, "activation bwd",
     (UnetBackend *be, UnetTensor *dx, const UnetTensor *dy, const UnetTensor *y, UnetActivation a,
      float sl, int acc), (be, dx, dy, y, a, sl, acc))
WRAP(upsample2x_forward, "upsample fwd", (UnetBackend *be, UnetTensor *y, const UnetTensor *x),
     (be, y, x))
WRAP(upsample2x_backward, "upsample bwd",
     (UnetBackend *be, UnetTensor *dx, const UnetTensor *dy, int a), (be, dx, dy, a))
WRAP(resize_bilinear_forward, "resize fwd", (UnetBackend *be, UnetTensor *y, const UnetTensor *x),
     (be, y, x))
WRAP(resize_bilinear_backward, "resize bwd",
     (UnetBackend *be, UnetTensor *dx, const UnetTensor *dy, int a), (be, dx, dy, a))
WRAP(sigmoid_forward, "sigmoid", (UnetBackend *be, UnetTensor *y, const UnetTensor *x), (be, y, x))
WRAP(softmax_forward, "softmax", (UnetBackend *be, UnetTensor *y, const UnetTensor *x), (be, y, x))
WRAP(batchnorm_forward, "batchnorm fwd",
     (UnetBackend *be, UnetTensor *y, const UnetTensor *x, const UnetTensor *g, const UnetTensor *b,
      UnetTensor *rm, UnetTensor *rv, UnetTensor *sm, UnetTensor *si, float mo, float eps, int tr),
     (be, y, x, g, b, rm, rv, sm, si, mo, eps, tr))
WRAP(batchnorm_backward, "batchnorm bwd",
     (UnetBackend *be, UnetTensor *dx, UnetTensor *dg, UnetTensor *db, const UnetTensor *dy,
      const UnetTensor *x, const UnetTensor *g, const UnetTensor *sm, const UnetTensor *si, int a),
     (be, dx, dg, db, dy, x, g, sm, si, a))
WRAP(instancenorm_forward, "instancenorm fwd",
     (UnetBackend *be, UnetTensor *y, const UnetTensor *x, const UnetTensor *g,
      const UnetTensor *b, UnetTensor *sm, UnetTensor *si, float eps), (be, y, x, g, b, sm, si, eps))
WRAP(instancenorm_backward, "instancenorm bwd",
     (UnetBackend *be, UnetTensor *dx, UnetTensor *dg, UnetTensor *db, const UnetTensor *dy,
      const UnetTensor *x, const UnetTensor *g, const UnetTensor *sm, const UnetTensor *si, int a),
     (be, dx, dg, db, dy, x, g, sm, si, a))
WRAP(loss_forward_backward, "loss",
     (UnetBackend *be, UnetTensor *l, UnetTensor *dl, const UnetTensor *x, const UnetTensor *t,
      const UnetTensor *w, const float *cw, UnetLossKind k, float gs),
     (be, l, dl, x, t, w, cw, k, gs))
WRAP(sgd_update, "sgd update",
     (UnetBackend *be, float *p, const float *g, float *m, size_t n, const UnetOptimizerStep *s1),
     (be, p, g, m, n, s1))
WRAP(buffer_fill, "zero_grad (fill)", (UnetBackend *be, float *b, size_t n, float v),
     (be, b, n, v))
WRAP(tensor_upload, "upload", (UnetBackend *be, UnetTensor *t, const float *h), (be, t, h))
WRAP(tensor_download, "download", (UnetBackend *be, float *h, const UnetTensor *t), (be, h, t))

static void wrap_backend(UnetBackend *be)
{
    real = *be;
    be->conv2d_forward = w_conv_fwd;
    be->conv2d_backward = w_conv_bwd;
    be->upconv2x2_forward = w_up_fwd;
    be->upconv2x2_backward = w_up_bwd;
    be->maxpool2x2_forward = w_maxpool2x2_forward;
    be->maxpool2x2_backward = w_maxpool2x2_backward;
    be->crop_concat_forward = w_crop_concat_forward;
    be->crop_concat_backward = w_crop_concat_backward;
    be->activation_forward = w_activation_forward;
    be->activation_backward = w_activation_backward;
    be->upsample2x_forward = w_upsample2x_forward;
    be->upsample2x_backward = w_upsample2x_backward;
    be->resize_bilinear_forward = w_resize_bilinear_forward;
    be->resize_bilinear_backward = w_resize_bilinear_backward;
    be->sigmoid_forward = w_sigmoid_forward;
    be->softmax_forward = w_softmax_forward;
    be->batchnorm_forward = w_batchnorm_forward;
    be->batchnorm_backward = w_batchnorm_backward;
    be->instancenorm_forward = w_instancenorm_forward;
    be->instancenorm_backward = w_instancenorm_backward;
    be->loss_forward_backward = w_loss_forward_backward;
    be->sgd_update = w_sgd_update;
    be->buffer_fill = w_buffer_fill;
    be->tensor_upload = w_tensor_upload;
    be->tensor_download = w_tensor_download;
}

static int cmp_stat(const void *a, const void *b)
{
    double d = ((const OpStat *)b)->seconds - ((const OpStat *)a)->seconds;
    return d > 0 ? 1 : d < 0 ? -1 : 0;
}

static void print_profile(FILE *o, int steps, double median)
{
    double total_flops = 0.0, total = 0.0;
    for (int i = 0; i < nstats; i++) {
        total_flops += stats[i].flops;
        total += stats[i].seconds;
    }
    qsort(stats, (size_t)nstats, sizeof stats[0], cmp_stat);
    fprintf(o, "per-op profile over %d steps (ms per step; GFLOP/s where counted):\n", steps);
    for (int i = 0; i < nstats; i++) {
        double ms = stats[i].seconds * 1e3 / steps;
        if (stats[i].flops > 0)
            fprintf(o, "  %-40s %8.1f ms %7.1f GFLOP/s\n", stats[i].key, ms,
                    stats[i].flops / stats[i].seconds * 1e-9);
        else
            fprintf(o, "  %-40s %8.1f ms\n", stats[i].key, ms);
    }
    if (total > 0)
        fprintf(o, "  %-40s %8.1f ms %7.1f GFLOP/s (ops %.1f GFLOP per step); outside ops %.1f ms\n",
                "all ops", total * 1e3 / steps, total_flops / total * 1e-9,
                total_flops * 1e-9 / steps, (median - total / steps) * 1e3);
}

/* ---- FLOPs from the layer list ---------------------------------------------- */

/* 2 x multiply-adds of the convolutions and up-convolutions of one forward
 * pass over an h x w input (batch 1). */
static double forward_flops(const UnetModel *m, int h, int w)
{
    size_t n = 0;
    UnetLayerInfo *layers = unet_model_layers(m, h, w, &n);
    const UnetParamTable *pt = unet_model_params(m);
    double flops = 0.0;
    for (size_t i = 0; layers && i < n; i++) {
        char name[UNET_PARAM_NAME_MAX + 8];
        snprintf(name, sizeof name, "%s.weight", layers[i].name);
        const UnetParamInfo *p = unet_param_table_find(pt, name);
        if (!p || p->ndim != 4 || layers[i].h < 1)
            continue;
        /* conv [Co,Ci,k,k]: Co*Ci*k*k per output pixel; the 2x2 stride-2
         * up-convolution [Ci,Co,2,2] touches one tap per output pixel */
        double per_pixel = (double)p->count;
        if (p->shape[2] == 2 && p->shape[3] == 2)
            per_pixel /= 4.0;
        flops += 2.0 * per_pixel * layers[i].h * layers[i].w;
    }
    free(layers);
    return flops;
}

/* ---- timing loop and report ------------------------------------------------- */

typedef struct BenchResult {
    double *times;
    int steps;
    double best, median;
    double flops_per_step;   /* 0 when not counted */
    double images_per_step;
    double activation_peak;  /* bytes; < 0 when not applicable */
    double loss;             /* train-step */
    int have_loss;
    struct rusage ru0;       /* at the first timed step */
    char detail[256];        /* text line describing the work */
    char json_extra[512];    /* extra ",\"key\":value" pairs */
} BenchResult;

static int cmp_double(const void *a, const void *b)
{
    double d = *(const double *)a - *(const double *)b;
    return d > 0 ? 1 : d < 0 ? -1 : 0;
}

static void finish_times(BenchResult *r)
{
    double *sorted = malloc(sizeof(double) * (size_t)r->steps);
    if (!sorted)
        return;
    memcpy(sorted, r->times, sizeof(double) * (size_t)r->steps);
    qsort(sorted, (size_t)r->steps, sizeof(double), cmp_double);
    r->best = sorted[0];
    r->median = r->steps % 2 ? sorted[r->steps / 2]
                             : 0.5 * (sorted[r->steps / 2 - 1] + sorted[r->steps / 2]);
    free(sorted);
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static void report(const BenchArgs *a, const BenchResult *r, const char *device, int threads)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double rss_mb = (double)ru.ru_maxrss / 1024.0;
    const double gflops = r->flops_per_step > 0 ? r->flops_per_step / r->median * 1e-9 : 0.0;
    const double ips = r->images_per_step / r->median;
    if (a->json) {
        printf("{\"command\":\"%s\",\"device\":\"%s\",\"threads\":%d,\"size\":%d,\"batch\":%d,",
               bench_names[a->kind], device, threads, a->size, a->batch);
        printf("\"steps\":[");
        for (int s = 0; s < r->steps; s++)
            printf("%s%.6f", s ? "," : "", r->times[s]);
        printf("],\"best_s\":%.6f,\"median_s\":%.6f,\"seconds_per_step\":%.6f,"
               "\"ms_per_step\":%.3f,\"ms\":%.3f,\"ms_per_image\":%.3f,\"images_per_second\":%.4f,"
               "\"step_gflop\":%.3f,\"gflops\":%.2f,\"peak_rss_mb\":%.1f",
               r->best, r->median, r->median, r->median * 1e3, r->median * 1e3,
               r->median * 1e3 / r->images_per_step, ips, r->flops_per_step * 1e-9, gflops, rss_mb);
        if (r->activation_peak >= 0)
            printf(",\"activation_peak_mb\":%.1f", r->activation_peak / 1048576.0);
        if (r->have_loss)
            printf(",\"loss\":%.6f", r->loss);
        printf(",\"page_faults_per_step\":%.0f,\"cpu_s_per_step\":%.4f,\"sys_s_per_step\":%.4f%s}\n",
               (double)(ru.ru_minflt - r->ru0.ru_minflt) / r->steps,
               (tv_s(ru.ru_utime) + tv_s(ru.ru_stime) - tv_s(r->ru0.ru_utime) -
                tv_s(r->ru0.ru_stime)) / r->steps,
               (tv_s(ru.ru_stime) - tv_s(r->ru0.ru_stime)) / r->steps, r->json_extra);
    } else {
        printf("%s: %s\n", bench_names[a->kind], r->detail);
        for (int s = 0; s < r->steps; s++)
            printf("  step %d: %.4f s\n", s + 1, r->times[s]);
        printf("median %.4f s per step (best %.4f s), %.2f images/s", r->median, r->best, ips);
        if (r->flops_per_step > 0)
            printf(", %.1f GFLOP per step, %.1f GFLOP/s", r->flops_per_step * 1e-9, gflops);
        printf("\npeak RSS %.0f MB", rss_mb);
        if (r->activation_peak >= 0)
            printf(", activation peak %.1f MB", r->activation_peak / 1048576.0);
        if (r->have_loss)
            printf(", loss %.5f", r->loss);
        printf("\n");
    }
    if (a->profile)
        print_profile(a->json ? stderr : stdout, r->steps, r->median);
}

static void fill_uniform(float *x, size_t n, uint64_t seed)
{
    uint64_t r = seed;
    for (size_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)(r >> 40) / 16777216.0f;
    }
}

#define FAIL(...)                                                        \
    do {                                                                 \
        fprintf(stderr, "unet bench %s: ", bench_names[a->kind]);        \
        fprintf(stderr, __VA_ARGS__);                                    \
        fputc('\n', stderr);                                             \
        rc = 1;                                                          \
        goto done;                                                       \
    } while (0)

/* zero_grad, forward, loss, backward: what a CUDA graph replays. */
static UnetStatus train_body(UnetModel *m, UnetTensor *x, UnetTensor *target, UnetTensor *loss,
                             UnetTensor *dlogits, UnetError *err)
{
    UnetTensor *logits;
    if (unet_model_zero_grad(m, err) != UNET_OK ||
        unet_model_forward(m, x, &logits, 1, err) != UNET_OK ||
        unet_model_loss(m, logits, target, NULL, NULL, UNET_LOSS_DEFAULT, 1.0f, loss, dlogits,
                        err) != UNET_OK)
        return err->status;
    return unet_model_backward(m, dlogits, err);
}

/* One training step's body, with a CUDA graph when asked: *state 1 runs it
 * and moves to 2, 2 captures and launches it (3), 3 launches; a capture the
 * backend refuses prints one line and runs uncaptured from then on (0). */
static UnetStatus train_body_graph(UnetBackend *be, UnetModel *m, UnetTensor *x,
                                   UnetTensor *target, UnetTensor *loss, UnetTensor *dlogits,
                                   int *state, UnetBackendGraph **graph, UnetError *err)
{
    if (*state == 3) {
        if (be->graph_launch(be, *graph) == UNET_OK)
            return UNET_OK;
        return unet_error_set(err, be->error.status, "%s", be->error.message);
    }
    if (*state != 2) {
        UnetStatus st = train_body(m, x, target, loss, dlogits, err);
        if (st == UNET_OK && *state == 1)
            *state = 2;
        return st;
    }
    UnetError cap = { 0 };
    UnetBackendGraph *g = NULL;
    UnetStatus st = be->graph_begin(be);
    if (st != UNET_OK) {
        cap = be->error;
    } else {
        st = train_body(m, x, target, loss, dlogits, &cap);
        UnetStatus end = be->graph_end(be, &g);
        if (st == UNET_OK && end != UNET_OK) {
            st = end;
            cap = be->error;
        }
        if (st == UNET_OK && be->graph_launch(be, g) == UNET_OK) {
            *graph = g;
            *state = 3;
            return UNET_OK;
        }
        if (st == UNET_OK)
            cap = be->error;
        if (g)
            be->graph_free(be, g);
    }
    fprintf(stderr, "unet bench: CUDA graphs off: %s\n", cap.message);
    unet_error_clear(&be->error);
    *state = 0;
    unet_model_release_activations(m);
    return train_body(m, x, target, loss, dlogits, err);
}

/* train-step, forward, predict */
static int bench_model(const BenchArgs *a)
{
    int rc = 0;
    UnetModelConfig cfg;
    if (unet_cli_model_options_finish(&a->model, "bench", &cfg))
        return 2;
    UnetError err = { 0 };
    UnetBackend *be = NULL;
    UnetModel *m = NULL;
    UnetTensor x = { 0 }, target = { 0 }, loss = { 0 }, dlogits = { 0 };
    float *hx = NULL, *hy = NULL, *momentum = NULL, *probs = NULL;
    UnetBackendGraph *graph = NULL;
    BenchResult r = { 0 };
    r.steps = a->steps;
    r.times = calloc((size_t)a->steps, sizeof(double));
    r.activation_peak = -1;
    const int S = a->size, B = a->batch;
    int out = 0;
    if (a->kind != BENCH_PREDICT) {
        out = unet_model_output_size(&cfg, S);
        if (out < 1) {
            int below, above;
            unet_model_valid_input_neighbours(&cfg, S, &below, &above);
            fprintf(stderr, "unet bench %s: %d is not a valid input side of this %s model; the "
                            "nearest are %d and %d\n", bench_names[a->kind], S,
                    unet_arch_name(cfg.arch), below, above);
            free(r.times);
            return 2;
        }
    }
    be = unet_cli_open_backend("bench", a->device, a->precision, a->threads, !a->json);
    if (!be) {
        free(r.times);
        return 1;
    }
    if (a->profile)
        wrap_backend(be);
    m = unet_model_new(&cfg, be, &err);
    if (!m)
        FAIL("%s", err.message);
    const size_t np = unet_model_param_count(m);
    const double fwd1 = forward_flops(m, S, S);

    if (a->kind == BENCH_PREDICT) {
        UnetPredictOptions opt;
        unet_predict_options_default(&opt);
        opt.tile = a->tile;
        opt.tta = a->tta;
        opt.batch = a->batch;
        UnetPredictGeometry g;
        if (unet_predict_geometry(&cfg, be, S, S, &opt, &g, &err) != UNET_OK)
            FAIL("%s", err.message);
        hx = malloc(sizeof(float) * cfg.in_channels * S * S);
        probs = malloc(sizeof(float) * cfg.classes * S * S);
        if (!hx || !probs || !r.times)
            FAIL("out of memory");
        fill_uniform(hx, (size_t)cfg.in_channels * S * S, 12345);
        for (int s = -a->warmup; s < a->steps; s++) {
            if (s == 0) { /* the profile covers the timed steps */
                memset(stats, 0, sizeof stats);
                nstats = 0;
                unet_model_reset_activation_peak(m);
                getrusage(RUSAGE_SELF, &r.ru0);
            }
            double t0 = unet_cli_now();
            if (unet_predict(m, hx, cfg.in_channels, S, S, &opt, probs, &err) != UNET_OK)
                FAIL("%s", err.message);
            if (s >= 0)
                r.times[s] = unet_cli_now() - t0;
        }
        r.flops_per_step = (double)g.forwards * forward_flops(m, g.tile_in, g.tile_in);
        r.images_per_step = 1;
        snprintf(r.detail, sizeof r.detail,
                 "%s on %s, %dx%d image, %d x %d tiles of %d -> %d%s, batch %d, %zu parameters",
                 unet_arch_name(cfg.arch), be->name, S, S, g.tiles_x, g.tiles_y, g.tile_in,
                 g.tile_out, g.transforms > 1 ? " x 8 (TTA)" : "", g.batch, np);
        snprintf(r.json_extra, sizeof r.json_extra,
                 ",\"model\":\"%s\",\"params\":%zu,\"tile\":%d,\"tile_out\":%d,\"tiles\":%d,"
                 "\"transforms\":%d,\"forwards\":%ld", unet_arch_name(cfg.arch), np, g.tile_in,
                 g.tile_out, g.tiles_x * g.tiles_y, g.transforms, g.forwards);
    } else {
        const size_t nx = (size_t)B * cfg.in_channels * S * S, ny = (size_t)B * out * out;
        hx = malloc(sizeof(float) * nx);
        hy = malloc(sizeof(float) * ny);
        if (!hx || !hy || !r.times)
            FAIL("out of memory");
        fill_uniform(hx, nx, 12345);
        fill_uniform(hy, ny, 777);
        for (size_t i = 0; i < ny; i++)
            hy[i] = cfg.classes == 1 ? (float)(hy[i] > 0.5f)
                                     : (float)((int)(hy[i] * cfg.classes) % cfg.classes);
        if (be->tensor_init(be, &x, B, cfg.in_channels, S, S) != UNET_OK ||
            be->tensor_upload(be, &x, hx) != UNET_OK)
            FAIL("%s", be->error.message);
        const int train = a->kind == BENCH_TRAIN;
        UnetOptimizerStep sgd = { .lr = 0.01f, .momentum = 0.99f };
        if (train) {
            momentum = be->buffer_alloc(be, np);
            if (!momentum || be->buffer_fill(be, momentum, np, 0.0f) != UNET_OK ||
                be->tensor_init(be, &target, B, 1, out, out) != UNET_OK ||
                be->tensor_upload(be, &target, hy) != UNET_OK ||
                be->tensor_init(be, &loss, 1, 1, 1, 1) != UNET_OK ||
                be->tensor_init(be, &dlogits, B, cfg.classes, out, out) != UNET_OK)
                FAIL("%s", be->error.message);
        }
        float last_loss = 0.0f;
        int graph_state = 0;
        if (train && a->cuda_graphs) {
            if (be->graph_begin)
                graph_state = 1;
            else
                fprintf(stderr, "unet bench: the %s backend has no CUDA graphs; --cuda-graphs is "
                                "ignored\n", be->name);
        }
        for (int s = -a->warmup; s < a->steps; s++) {
            if (s == 0) { /* the profile covers the timed steps */
                memset(stats, 0, sizeof stats);
                nstats = 0;
                unet_model_reset_activation_peak(m);
                getrusage(RUSAGE_SELF, &r.ru0);
            }
            double t0 = unet_cli_now();
            UnetTensor *logits;
            if (train) {
                if (train_body_graph(be, m, &x, &target, &loss, &dlogits, &graph_state, &graph,
                                     &err) != UNET_OK)
                    FAIL("%s", err.message);
                /* the graph is everything but this one update kernel */
                if (be->sgd_update(be, unet_model_param_arena(m), unet_model_grad_arena(m),
                                   momentum, np, &sgd) != UNET_OK ||
                    be->tensor_download(be, &last_loss, &loss) != UNET_OK)
                    FAIL("%s", be->error.message);
            } else {
                if (unet_model_forward(m, &x, &logits, 0, &err) != UNET_OK)
                    FAIL("%s", err.message);
                if (be->synchronize(be) != UNET_OK)
                    FAIL("%s", be->error.message);
            }
            if (s >= 0)
                r.times[s] = unet_cli_now() - t0;
        }
        r.activation_peak = (double)unet_model_activation_peak(m);
        r.flops_per_step = (train ? 3.0 : 1.0) * B * fwd1;
        r.images_per_step = B;
        if (train) {
            r.loss = last_loss;
            r.have_loss = 1;
        }
        snprintf(r.detail, sizeof r.detail, "%s on %s, batch %d of %dx%d -> %dx%d, %zu parameters",
                 unet_arch_name(cfg.arch), be->name, B, S, S, out, out, np);
        snprintf(r.json_extra, sizeof r.json_extra,
                 ",\"model\":\"%s\",\"params\":%zu,\"out\":%d,\"cuda_graph\":%s",
                 unet_arch_name(cfg.arch), np, out, graph_state == 3 ? "true" : "false");
        if (graph_state == 3)
            snprintf(r.detail + strlen(r.detail), sizeof r.detail - strlen(r.detail),
                     ", one CUDA graph per step");
    }
    if (a->kind == BENCH_PREDICT)
        r.activation_peak = (double)unet_model_activation_peak(m);
    finish_times(&r);
    size_t len = strlen(r.json_extra);
    snprintf(r.json_extra + len, sizeof r.json_extra - len, ",\"precision\":\"%s\"",
             unet_precision_name(be->precision));
    len = strlen(r.detail);
    snprintf(r.detail + len, sizeof r.detail - len, ", %s convolutions",
             unet_precision_name(be->precision));
    /* only the CPU backend runs threads of its own */
    report(a, &r, be->name,
           strcmp(be->name, "cpu") ? 1 : a->threads > 0 ? a->threads
                                                         : (int)sysconf(_SC_NPROCESSORS_ONLN));
done:
    free(hx);
    free(hy);
    free(probs);
    free(r.times);
    if (be) {
        if (graph)
            be->graph_free(be, graph);
        be->tensor_release(be, &x);
        be->tensor_release(be, &target);
        be->tensor_release(be, &loss);
        be->tensor_release(be, &dlogits);
        if (momentum)
            be->buffer_free(be, momentum);
    }
    unet_model_free(m);
    unet_backend_destroy(be);
    return rc;
}

/* weightmap, augment: CPU work on a synthetic cell mask */
static int bench_data(const BenchArgs *a)
{
    int rc = 0;
    const int S = a->size;
    const size_t n = (size_t)S * S;
    UnetError err = { 0 };
    UnetScratch scratch = { 0 };
    BenchResult r = { 0 };
    r.steps = a->steps;
    r.times = calloc((size_t)a->steps, sizeof(double));
    r.activation_peak = -1;
    r.images_per_step = 1;
    int32_t *mask = malloc(sizeof(int32_t) * n), *inst = malloc(sizeof(int32_t) * n);
    float *weight = malloc(sizeof(float) * n), *image = malloc(sizeof(float) * n);
    float *img_out = NULL, *w_out = NULL;
    int32_t *m_out = NULL;
    const int cells = (int)(n / 1024) > 4 ? (int)(n / 1024) : 4;
    if (!r.times || !mask || !inst || !weight || !image)
        FAIL("out of memory for a %d x %d image", S, S);
    if (unet_synthetic_cells(mask, inst, S, S, cells, 1, 7, &err) != UNET_OK)
        FAIL("%s", err.message);
    UnetWeightMapConfig wcfg;
    unet_weightmap_config_default(&wcfg);
    UnetWeightMapOutputs wout = { .weight = weight };
    UnetWeightMapInfo info;
    if (a->kind == BENCH_WEIGHTMAP) {
        for (int s = -a->warmup; s < a->steps; s++) {
            if (s == 0)
                getrusage(RUSAGE_SELF, &r.ru0);
            double t0 = unet_cli_now();
            if (unet_weightmap_compute(&wcfg, mask, inst, S, S, &wout, &info, &scratch, &err) !=
                UNET_OK)
                FAIL("%s", err.message);
            if (s >= 0)
                r.times[s] = unet_cli_now() - t0;
        }
        snprintf(r.detail, sizeof r.detail, "%dx%d synthetic cell mask, %d cells, w0 %g, sigma %g",
                 S, S, info.cells, (double)wcfg.w0, (double)wcfg.sigma);
        snprintf(r.json_extra, sizeof r.json_extra, ",\"cells\":%d", info.cells);
    } else {
        UnetAugmentConfig acfg;
        if (a->paper)
            unet_augment_config_paper(&acfg);
        else
            unet_augment_config_default(&acfg);
        if (unet_weightmap_compute(&wcfg, mask, inst, S, S, &wout, NULL, &scratch, &err) != UNET_OK)
            FAIL("%s", err.message);
        fill_uniform(image, n, 99);
        UnetAugmentRecord rec;
        size_t cap = 0;
        for (int s = -a->warmup; s < a->steps; s++) {
            if (s == 0)
                getrusage(RUSAGE_SELF, &r.ru0);
            double t0 = unet_cli_now();
            if (unet_augment_sample(&rec, &acfg, (uint64_t)(s + 1000), S, S, &err) != UNET_OK)
                FAIL("%s", err.message);
            size_t need = (size_t)rec.out_w * rec.out_h;
            if (need > cap) { /* the output size can change with padding */
                free(img_out);
                free(w_out);
                free(m_out);
                img_out = malloc(sizeof(float) * need);
                w_out = malloc(sizeof(float) * need);
                m_out = malloc(sizeof(int32_t) * need);
                cap = need;
                if (!img_out || !w_out || !m_out)
                    FAIL("out of memory");
                t0 = unet_cli_now();
            }
            if (unet_augment_apply(&rec, image, 1, mask, weight, img_out, m_out, w_out, &scratch,
                                   &err) != UNET_OK)
                FAIL("%s", err.message);
            if (s >= 0)
                r.times[s] = unet_cli_now() - t0;
        }
        snprintf(r.detail, sizeof r.detail, "%s pipeline on a %dx%d image + mask + weight map",
                 a->paper ? "the paper's" : "the notebook's", S, S);
        snprintf(r.json_extra, sizeof r.json_extra, ",\"pipeline\":\"%s\"",
                 a->paper ? "paper" : "notebook");
    }
    finish_times(&r);
    report(a, &r, "cpu", 1);
done:
    unet_scratch_free(&scratch);
    free(r.times);
    free(mask);
    free(inst);
    free(weight);
    free(image);
    free(img_out);
    free(w_out);
    free(m_out);
    return rc;
}

int unet_cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    BenchArgs a = { .device = "auto", .precision = UNET_PRECISION_TF32, .batch = 1, .steps = 5, .warmup = 1 };
    int k;
    for (k = 0; k < 5; k++)
        if (!strcmp(argv[1], bench_names[k]))
            break;
    if (k == 5) {
        fprintf(stderr, "unet bench: unknown benchmark '%s'; use train-step, forward, predict, "
                        "weightmap or augment\n", argv[1]);
        return 2;
    }
    a.kind = (BenchKind)k;
    a.size = a.kind == BENCH_PREDICT ? 512 : 572;
    unet_cli_model_options_init(&a.model);
    const int model_kind = a.kind <= BENCH_PREDICT;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (model_kind) {
            int mr = unet_cli_model_option_argv(&a.model, "bench", argc, argv, &i);
            if (mr < 0)
                return 2;
            if (mr > 0)
                continue;
        }
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(o, "--json")) {
            a.json = 1;
            continue;
        }
        if (!strcmp(o, "--profile") && model_kind) {
            a.profile = 1;
            continue;
        }
        if (!strcmp(o, "--tta") && a.kind == BENCH_PREDICT) {
            a.tta = 1;
            continue;
        }
        if (!strcmp(o, "--cuda-graphs") && a.kind == BENCH_TRAIN) {
            const char *v = i + 1 < argc ? argv[++i] : "";
            if (strcmp(v, "on") && strcmp(v, "off")) {
                fprintf(stderr, "unet bench %s: --cuda-graphs takes on or off, not '%s'\n",
                        bench_names[a.kind], v);
                return 2;
            }
            a.cuda_graphs = !strcmp(v, "on");
            continue;
        }
        if (!strcmp(o, "--paper") && a.kind == BENCH_AUGMENT) {
            a.paper = 1;
            continue;
        }
        int *target = NULL;
        long lo = 1, hi = 1 << 16;
        const char *dev = NULL, *prec = NULL;
        if (!strcmp(o, "--size"))
            target = &a.size;
        else if (!strcmp(o, "--steps"))
            target = &a.steps, hi = 100000;
        else if (!strcmp(o, "--warmup"))
            target = &a.warmup, lo = 0, hi = 100000;
        else if (!strcmp(o, "--batch") && model_kind)
            target = &a.batch, hi = 4096;
        else if (!strcmp(o, "--threads") && model_kind)
            target = &a.threads, hi = 4096;
        else if (!strcmp(o, "--tile") && a.kind == BENCH_PREDICT)
            target = &a.tile;
        else if (!strcmp(o, "--device") && model_kind)
            dev = o;
        else if (!strcmp(o, "--precision") && model_kind)
            prec = o;
        else {
            fprintf(stderr, "unet bench %s: unknown option '%s'\n", bench_names[a.kind], o);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "unet bench %s: option '%s' needs a value\n", bench_names[a.kind], o);
            return 2;
        }
        const char *v = argv[++i];
        if (dev) {
            a.device = v;
        } else if (prec) {
            if (unet_cli_parse_precision(v, &a.precision)) {
                fprintf(stderr, "unet bench %s: '%s' is not a valid value for %s (fp32, tf32 or "
                                "bf16)\n", bench_names[a.kind], v, o);
                return 2;
            }
        } else if (unet_cli_parse_int(v, lo, hi, target)) {
            fprintf(stderr, "unet bench %s: '%s' is not a valid value for %s (%ld..%ld)\n",
                    bench_names[a.kind], v, o, lo, hi);
            return 2;
        }
    }
    return model_kind ? bench_model(&a) : bench_data(&a);
}
