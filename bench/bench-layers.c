/* bench-layers.c - forward, backward-data and backward-weights time of every
 * convolution and up-convolution of the default U-Net (Ronneberger 2015:
 * 1 channel, depth 5, base 64, valid 3x3 convolutions, 2x2 up-convolutions,
 * 1x1 head) at one input size, on one backend; ms and GFLOP/s per layer and
 * the total. bench/train-step.py --layers prints PyTorch's beside it.
 *
 *   bench-layers [--device cpu|reference] [--threads N] [--size 572]
 *                [--reps R] [--json] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"

typedef struct Layer {
    char name[32];
    int up;          /* 1: 2x2 stride-2 up-convolution */
    int ci, co, h, k; /* input channels and side, output channels, kernel */
    int first;       /* no backward-data (the network input needs no gradient) */
} Layer;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double d = *(const double *)a - *(const double *)b;
    return d > 0 ? 1 : d < 0 ? -1 : 0;
}

/* The layers of the default U-Net for an input side of size. */
static int unet_layers(Layer *l, int size)
{
    int n = 0, s = size, c_in = 1;
    for (int i = 0; i < 5; i++) {
        int c = 64 << i;
        if (i > 0)
            s /= 2;
        l[n++] = (Layer){ "", 0, c_in, c, s, 3, i == 0 };
        snprintf(l[n - 1].name, sizeof l[0].name, "enc%d.conv1", i);
        l[n++] = (Layer){ "", 0, c, c, s - 2, 3, 0 };
        snprintf(l[n - 1].name, sizeof l[0].name, "enc%d.conv2", i);
        s -= 4;
        c_in = c;
    }
    for (int j = 0; j < 4; j++) {
        int c = 1024 >> j;
        l[n++] = (Layer){ "", 1, c, c / 2, s, 2, 0 };
        snprintf(l[n - 1].name, sizeof l[0].name, "dec%d.upconv", j);
        s *= 2;
        l[n++] = (Layer){ "", 0, c, c / 2, s, 3, 0 };
        snprintf(l[n - 1].name, sizeof l[0].name, "dec%d.conv1", j);
        l[n++] = (Layer){ "", 0, c / 2, c / 2, s - 2, 3, 0 };
        snprintf(l[n - 1].name, sizeof l[0].name, "dec%d.conv2", j);
        s -= 4;
    }
    l[n++] = (Layer){ "head", 0, 64, 1, s, 1, 0 };
    return n;
}

#define FAIL(...)                                  \
    do {                                           \
        fprintf(stderr, "bench-layers: ");         \
        fprintf(stderr, __VA_ARGS__);              \
        fputc('\n', stderr);                       \
        exit(1);                                   \
    } while (0)

static void fill(float *p, size_t n, unsigned seed)
{
    uint64_t r = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(r >> 40) / 16777216.0 - 0.5) * 0.1f;
    }
}

/* Uploads random values into an activation tensor. */
static void act(UnetBackend *be, UnetTensor *t, int n, int c, int h, int w, unsigned seed)
{
    if (be->tensor_init(be, t, n, c, h, w) != UNET_OK)
        FAIL("%s", be->error.message);
    size_t count = unet_tensor_numel(t);
    float *host = malloc(count * sizeof(float));
    fill(host, count, seed);
    if (be->tensor_upload(be, t, host) != UNET_OK)
        FAIL("%s", be->error.message);
    free(host);
}

static float *param(UnetBackend *be, UnetTensor *t, int n, int c, int h, int w, unsigned seed)
{
    size_t count = (size_t)n * c * h * w;
    float *buf = be->buffer_alloc(be, count);
    float *host = malloc(count * sizeof(float));
    if (!buf || !host)
        FAIL("out of memory");
    fill(host, count, seed);
    be->buffer_upload(be, buf, host, count);
    be->tensor_view(be, t, buf, n, c, h, w);
    free(host);
    return buf;
}

enum { FWD, BWD_DATA, BWD_WEIGHTS };

/* Best and median seconds of reps runs of one pass (after one untimed run). */
static void time_pass(UnetBackend *be, const Layer *l, int pass, int reps, double *best,
                      double *median)
{
    UnetTensor x, y, dx, dy, w, b, dw, db;
    const int ho = l->up ? 2 * l->h : l->h - l->k + 1;
    act(be, &x, 1, l->ci, l->h, l->h, 1);
    act(be, &y, 1, l->co, ho, ho, 2);
    act(be, &dy, 1, l->co, ho, ho, 3);
    act(be, &dx, 1, l->ci, l->h, l->h, 4);
    float *wb = l->up ? param(be, &w, l->ci, l->co, 2, 2, 5)
                      : param(be, &w, l->co, l->ci, l->k, l->k, 5);
    float *dwb = l->up ? param(be, &dw, l->ci, l->co, 2, 2, 6)
                       : param(be, &dw, l->co, l->ci, l->k, l->k, 6);
    float *bb = param(be, &b, l->co, 1, 1, 1, 7);
    float *dbb = param(be, &db, l->co, 1, 1, 1, 8);
    UnetConvDesc d = { l->k, 1, 0 };
    double *t = malloc((size_t)(reps + 1) * sizeof(double));
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s();
        UnetStatus s;
        if (pass == FWD)
            s = l->up ? be->upconv2x2_forward(be, &y, &x, &w, &b)
                      : be->conv2d_forward(be, &y, &x, &w, &b, &d);
        else if (pass == BWD_DATA)
            s = l->up ? be->upconv2x2_backward(be, &dx, NULL, NULL, &dy, &x, &w, 0)
                      : be->conv2d_backward(be, &dx, NULL, NULL, &dy, &x, &w, &d, 0);
        else
            s = l->up ? be->upconv2x2_backward(be, NULL, &dw, &db, &dy, &x, &w, 0)
                      : be->conv2d_backward(be, NULL, &dw, &db, &dy, &x, &w, &d, 0);
        if (s != UNET_OK)
            FAIL("%s: %s", l->name, be->error.message);
        be->synchronize(be);
        t[r] = now_s() - t0;
    }
    qsort(t + 1, (size_t)reps, sizeof(double), cmp_double);
    *best = t[1];
    *median = t[1 + reps / 2];
    free(t);
    UnetTensor *acts[] = { &x, &y, &dx, &dy };
    for (int i = 0; i < 4; i++)
        be->tensor_release(be, acts[i]);
    float *bufs[] = { wb, dwb, bb, dbb };
    for (int i = 0; i < 4; i++)
        be->buffer_free(be, bufs[i]);
}

int main(int argc, char **argv)
{
    const char *device = "cpu";
    int threads = 2, size = 572, reps = 5, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (v && !strcmp(argv[i], "--device"))
            device = v, i++;
        else if (v && !strcmp(argv[i], "--threads"))
            threads = atoi(v), i++;
        else if (v && !strcmp(argv[i], "--size"))
            size = atoi(v), i++;
        else if (v && !strcmp(argv[i], "--reps"))
            reps = atoi(v), i++;
        else {
            fprintf(stderr, "usage: bench-layers [--device cpu|reference] [--threads N] "
                            "[--size 572] [--reps R] [--json]\n");
            return 2;
        }
    }
    if (reps < 1 || size < 188 || (size - 188) % 16 != 0)
        FAIL("--reps must be >= 1 and --size 188 + 16k (a valid U-Net input side)");
    UnetError err = { 0 };
    UnetBackend *be = unet_backend_open(device, threads, NULL, 0, &err);
    if (!be)
        FAIL("%s", err.message);

    Layer layers[32];
    int nl = unet_layers(layers, size);
    double tot_flops = 0.0, tot_best[3] = { 0 }, tot_med[3] = { 0 };
    if (json)
        printf("{\"device\":\"%s\",\"threads\":%d,\"size\":%d,\"layers\":[", be->name, threads,
               size);
    else
        printf("%s backend, %d threads, U-Net %dx%d; ms (best of %d) and GFLOP/s per pass\n"
               "%-12s %-22s %16s %16s %16s\n", be->name, threads, size, size, reps, "layer",
               "shape", "forward", "backward-data", "backward-weights");
    for (int i = 0; i < nl; i++) {
        const Layer *l = &layers[i];
        const int ho = l->up ? 2 * l->h : l->h - l->k + 1;
        const double flops = 2.0 * l->co * (double)l->ci * (l->up ? 1 : l->k * l->k) * ho * ho;
        double best[3] = { 0 }, med[3] = { 0 };
        for (int p = 0; p < 3; p++)
            if (!(p == BWD_DATA && l->first))
                time_pass(be, l, p, reps, &best[p], &med[p]);
        char shape[48];
        snprintf(shape, sizeof shape, "%d->%d %s%d %dx%d", l->ci, l->co, l->up ? "up" : "k",
                 l->up ? 2 : l->k, ho, ho);
        if (json) {
            printf("%s{\"name\":\"%s\",\"shape\":\"%s\",\"gflop\":%.4f,\"best_ms\":[%.3f,%.3f,%.3f],"
                   "\"median_ms\":[%.3f,%.3f,%.3f]}", i ? "," : "", l->name, shape, flops * 1e-9,
                   best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, med[0] * 1e3, med[1] * 1e3,
                   med[2] * 1e3);
        } else {
            printf("%-12s %-22s", l->name, shape);
            for (int p = 0; p < 3; p++) {
                if (best[p] > 0)
                    printf(" %7.1f ms %5.0f", best[p] * 1e3, flops / best[p] * 1e-9);
                else
                    printf(" %16s", "-");
            }
            printf("\n");
        }
        for (int p = 0; p < 3; p++) {
            tot_best[p] += best[p];
            tot_med[p] += med[p];
            if (best[p] > 0)
                tot_flops += flops;
        }
    }
    double tb = tot_best[0] + tot_best[1] + tot_best[2];
    double tm = tot_med[0] + tot_med[1] + tot_med[2];
    if (json)
        printf("],\"total_gflop\":%.2f,\"total_best_ms\":%.1f,\"total_median_ms\":%.1f}\n",
               tot_flops * 1e-9, tb * 1e3, tm * 1e3);
    else
        printf("total: forward %.0f ms, backward-data %.0f ms, backward-weights %.0f ms; all "
               "%.0f ms (median %.0f ms) for %.1f GFLOP = %.0f GFLOP/s\n", tot_best[0] * 1e3,
               tot_best[1] * 1e3, tot_best[2] * 1e3, tb * 1e3, tm * 1e3, tot_flops * 1e-9,
               tot_flops / tb * 1e-9);
    unet_backend_destroy(be);
    return 0;
}
