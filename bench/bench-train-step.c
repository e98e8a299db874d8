/* bench-train-step.c - times whole SGD training steps (zero_grad, forward,
 * loss, backward, update) of a model built from model.h, with the time of
 * every backend op summed by op and shape, and prints the figures as text or
 * JSON. bench/train-step.py runs it beside PyTorch.
 *
 *   bench-train-step [--device cpu|reference] [--threads N] [--size S]
 *                    [--model unet|light|fcn] [--base B] [--steps K]
 *                    [--warmup W] [--profile] [--json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backend.h"
#include "model.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* ---- per-op timing: the backend's function pointers are wrapped ---------- */

typedef struct OpStat {
    char key[96];   /* op and shape */
    double seconds;
    double flops;
    long calls;
} OpStat;

#define MAX_STATS 512
static OpStat stats[MAX_STATS];
static int nstats;
static UnetBackend real; /* the unwrapped function table */

static void account(const char *key, double seconds, double flops)
{
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
    double t = now_s();
    UnetStatus s = real.conv2d_forward(be, y, x, w, b, d);
    char key[96];
    snprintf(key, sizeof key, "conv%d fwd   %4d->%-4d %4dx%-4d", d->kernel, x->c, y->c, y->h, y->w);
    account(key, now_s() - t, conv_flops(x, y, d->kernel));
    return s;
}

static UnetStatus w_conv_bwd(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                             const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                             const UnetConvDesc *d, int acc)
{
    double t = now_s();
    UnetStatus s = real.conv2d_backward(be, dx, dw, db, dy, x, w, d, acc);
    char key[96];
    snprintf(key, sizeof key, "conv%d bwd   %4d->%-4d %4dx%-4d", d->kernel, x->c, dy->c, dy->h,
             dy->w);
    account(key, now_s() - t, conv_flops(x, dy, d->kernel) * ((dx ? 1 : 0) + (dw ? 1 : 0)));
    return s;
}

static UnetStatus w_up_fwd(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                           const UnetTensor *w, const UnetTensor *b)
{
    double t = now_s();
    UnetStatus s = real.upconv2x2_forward(be, y, x, w, b);
    char key[96];
    snprintf(key, sizeof key, "upconv fwd  %4d->%-4d %4dx%-4d", x->c, y->c, y->h, y->w);
    account(key, now_s() - t, 2.0 * y->n * y->c * (double)x->c * y->h * y->w);
    return s;
}

static UnetStatus w_up_bwd(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                           const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w, int acc)
{
    double t = now_s();
    UnetStatus s = real.upconv2x2_backward(be, dx, dw, db, dy, x, w, acc);
    char key[96];
    snprintf(key, sizeof key, "upconv bwd  %4d->%-4d %4dx%-4d", x->c, dy->c, dy->h, dy->w);
    account(key, now_s() - t,
            2.0 * dy->n * dy->c * (double)x->c * dy->h * dy->w * ((dx ? 1 : 0) + (dw ? 1 : 0)));
    return s;
}

/* The other ops are timed by name only. */
#define WRAP(field, label, params, args)              \
    static UnetStatus w_##field params                \
    {                                                 \
        double t0_ = now_s();                         \
        UnetStatus s_ = real.field args;              \
        account(label, now_s() - t0_, 0.0);           \
        return s_;                                    \
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
    be->instancenorm_forward = w_instancenorm_forward;
    be->instancenorm_backward = w_instancenorm_backward;
    be->loss_forward_backward = w_loss_forward_backward;
    be->sgd_update = w_sgd_update;
    be->buffer_fill = w_buffer_fill;
}

static int cmp_stat(const void *a, const void *b)
{
    double d = ((const OpStat *)b)->seconds - ((const OpStat *)a)->seconds;
    return d > 0 ? 1 : d < 0 ? -1 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double d = *(const double *)a - *(const double *)b;
    return d > 0 ? 1 : d < 0 ? -1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench-train-step [--device cpu|reference] [--threads N] [--size S] "
                    "[--model unet|light|fcn] [--base B] [--steps K] [--warmup W] [--profile] "
                    "[--json]\n");
    return 2;
}

#define FAIL(...)                                      \
    do {                                               \
        fprintf(stderr, "bench-train-step: ");         \
        fprintf(stderr, __VA_ARGS__);                  \
        fputc('\n', stderr);                           \
        return 1;                                      \
    } while (0)

int main(int argc, char **argv)
{
    const char *device = "cpu", *arch = "unet";
    int threads = 2, size = 572, steps = 5, warmup = 1, json = 0, profile = 0, base = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--profile"))
            profile = 1;
        else if (!v)
            return usage();
        else if (!strcmp(a, "--device"))
            device = v, i++;
        else if (!strcmp(a, "--model"))
            arch = v, i++;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v), i++;
        else if (!strcmp(a, "--size"))
            size = atoi(v), i++;
        else if (!strcmp(a, "--steps"))
            steps = atoi(v), i++;
        else if (!strcmp(a, "--warmup"))
            warmup = atoi(v), i++;
        else if (!strcmp(a, "--base"))
            base = atoi(v), i++;
        else
            return usage();
    }
    if (steps < 1 || steps > 1000 || warmup < 0 || size < 1)
        return usage();

    UnetError err = { 0 };
    UnetModelConfig cfg;
    UnetArch a;
    if (unet_arch_parse(arch, &a, &err) != UNET_OK)
        FAIL("%s", err.message);
    unet_model_config_default(&cfg, a);
    if (base > 0)
        cfg.base = base;
    int in, out;
    if (unet_model_valid_input_size(&cfg, size, &in, &out) != 0)
        FAIL("invalid model configuration");
    if (in != size)
        FAIL("%d is not a valid input size for this model (nearest: %d)", size, in);

    UnetBackend *be = unet_backend_open(device, threads, NULL, 0, &err);
    if (!be)
        FAIL("%s", err.message);
    if (profile)
        wrap_backend(be);
    UnetModel *m = unet_model_new(&cfg, be, &err);
    if (!m)
        FAIL("%s", err.message);
    const size_t np = unet_model_param_count(m);
    float *momentum = be->buffer_alloc(be, np);
    if (!momentum || be->buffer_fill(be, momentum, np, 0.0f) != UNET_OK)
        FAIL("%s", be->error.message);

    /* input in [0,1), 0/1 target, fixed seed */
    UnetTensor x, target, loss, dlogits;
    size_t nx = (size_t)cfg.in_channels * size * size, ny = (size_t)out * out;
    float *hx = malloc(nx * sizeof(float)), *hy = malloc(ny * sizeof(float));
    uint64_t r = 12345;
    for (size_t i = 0; i < nx; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        hx[i] = (float)(r >> 40) / 16777216.0f;
    }
    for (size_t i = 0; i < ny; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        hy[i] = cfg.classes == 1 ? (float)((r >> 40) & 1) : (float)((r >> 40) % cfg.classes);
    }
    if (be->tensor_init(be, &x, 1, cfg.in_channels, size, size) != UNET_OK ||
        be->tensor_upload(be, &x, hx) != UNET_OK ||
        be->tensor_init(be, &target, 1, 1, out, out) != UNET_OK ||
        be->tensor_upload(be, &target, hy) != UNET_OK ||
        be->tensor_init(be, &loss, 1, 1, 1, 1) != UNET_OK ||
        be->tensor_init(be, &dlogits, 1, cfg.classes, out, out) != UNET_OK)
        FAIL("%s", be->error.message);

    UnetOptimizerStep sgd = { .lr = 0.01f, .momentum = 0.99f };
    double *times = calloc((size_t)steps, sizeof(double));
    float last_loss = 0.0f;
    long faults0 = 0;
    double cpu0 = 0.0, sys0 = 0.0;
    for (int s = -warmup; s < steps; s++) {
        if (s == 0) { /* the profile, faults and CPU time cover the timed steps */
            memset(stats, 0, sizeof stats);
            nstats = 0;
            struct rusage ru0;
            getrusage(RUSAGE_SELF, &ru0);
            faults0 = ru0.ru_minflt;
            cpu0 = tv_s(ru0.ru_utime) + tv_s(ru0.ru_stime);
            sys0 = tv_s(ru0.ru_stime);
        }
        double t0 = now_s();
        UnetTensor *logits;
        if (unet_model_zero_grad(m, &err) != UNET_OK ||
            unet_model_forward(m, &x, &logits, 1, &err) != UNET_OK ||
            unet_model_loss(m, logits, &target, NULL, NULL, UNET_LOSS_DEFAULT, 1.0f, &loss,
                            &dlogits, &err) != UNET_OK ||
            unet_model_backward(m, &dlogits, &err) != UNET_OK)
            FAIL("%s", err.message);
        if (be->sgd_update(be, unet_model_param_arena(m), unet_model_grad_arena(m), momentum, np,
                           &sgd) != UNET_OK ||
            be->tensor_download(be, &last_loss, &loss) != UNET_OK)
            FAIL("%s", be->error.message);
        if (s >= 0)
            times[s] = now_s() - t0;
    }

    double total_flops = 0.0, total_op = 0.0;
    for (int i = 0; i < nstats; i++) {
        total_flops += stats[i].flops;
        total_op += stats[i].seconds;
    }
    double *sorted = malloc((size_t)steps * sizeof(double));
    memcpy(sorted, times, (size_t)steps * sizeof(double));
    qsort(sorted, (size_t)steps, sizeof(double), cmp_double);
    const double best = sorted[0], median = sorted[steps / 2];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double peak_mb = (double)ru.ru_maxrss / 1024.0;
    const double faults = (double)(ru.ru_minflt - faults0) / steps;
    const double cpu_s = (tv_s(ru.ru_utime) + tv_s(ru.ru_stime) - cpu0) / steps;
    const double sys_s = (tv_s(ru.ru_stime) - sys0) / steps;
    const double act_mb = (double)unet_model_activation_peak(m) / 1048576.0;
    const double step_flops = profile ? total_flops / steps : 0.0;

    if (json) {
        printf("{\"device\":\"%s\",\"model\":\"%s\",\"threads\":%d,\"size\":%d,\"out\":%d,"
               "\"params\":%zu,\"steps\":[", be->name, arch, threads, size, out, np);
        for (int s = 0; s < steps; s++)
            printf("%s%.4f", s ? "," : "", times[s]);
        printf("],\"best_s\":%.4f,\"median_s\":%.4f,\"step_gflop\":%.2f,\"peak_rss_mb\":%.1f,"
               "\"activation_peak_mb\":%.1f,\"page_faults_per_step\":%.0f,\"cpu_s_per_step\":%.3f,"
               "\"sys_s_per_step\":%.3f,\"loss\":%.6f}\n", best, median, step_flops * 1e-9,
               peak_mb, act_mb, faults, cpu_s, sys_s, (double)last_loss);
    } else {
        printf("%s on %s, %d threads, %dx%d -> %dx%d, %zu parameters\n", arch, be->name, threads,
               size, size, out, out, np);
        for (int s = 0; s < steps; s++)
            printf("  step %d: %.3f s\n", s + 1, times[s]);
        printf("best %.3f s, median %.3f s per step; peak RSS %.0f MB (activations %.0f MB); "
               "%.0f page faults per step; loss %.5f\n", best, median, peak_mb, act_mb, faults,
               (double)last_loss);
        printf("CPU time %.3f s per step (system %.3f s) over %d threads\n", cpu_s, sys_s,
               threads);
    }
    if (profile) {
        qsort(stats, (size_t)nstats, sizeof stats[0], cmp_stat);
        FILE *o = json ? stderr : stdout;
        fprintf(o, "per-op profile over %d steps (ms per step; GFLOP/s where counted):\n", steps);
        for (int i = 0; i < nstats; i++) {
            double ms = stats[i].seconds * 1e3 / steps;
            if (stats[i].flops > 0)
                fprintf(o, "  %-40s %8.1f ms %7.1f GFLOP/s\n", stats[i].key, ms,
                        stats[i].flops / stats[i].seconds * 1e-9);
            else
                fprintf(o, "  %-40s %8.1f ms\n", stats[i].key, ms);
        }
        fprintf(o, "  %-40s %8.1f ms %7.1f GFLOP/s (ops %.1f GFLOP per step); outside ops %.1f ms\n",
                "all ops", total_op * 1e3 / steps, total_flops / total_op * 1e-9,
                total_flops * 1e-9 / steps, (median - total_op / steps) * 1e3);
    }
    free(sorted);
    free(times);
    free(hx);
    free(hy);
    be->tensor_release(be, &x);
    be->tensor_release(be, &target);
    be->tensor_release(be, &loss);
    be->tensor_release(be, &dlogits);
    be->buffer_free(be, momentum);
    unet_model_free(m);
    unet_backend_destroy(be);
    return 0;
}
