/* test-train-cuda-sim.c - (-Dcudasim=true builds only) `unet train --device cuda` and `unet predict --device cuda` end to end on the simulated GPU: the trained checkpoint predicts the same probabilities on cuda as on cpu, a run with blocks and threads in reverse order gives bitwise the same losses, a batch that does not fit in the simulated memory fails with the out-of-memory message, exit 1, no crash, and so does a start-up without memory; the step replayed as a CUDA graph gives the same metrics bit for bit, and a bf16 run trains with a first loss within 1% of fp32. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileutil.h"
#include "test-common.h"

static const char *unet;
static char *tmp;

/* Runs `ENV unet ARGS` with stdout and stderr in tmp/stdout.txt, tmp/stderr.txt; returns the exit status. */
static int run(const char *env, const char *fmt, ...) UNET_PRINTF(2, 3);
static int run(const char *env, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = test_run_captured(tmp, env, unet, fmt, ap);
    va_end(ap);
    return st;
}

static char *slurp(const char *name)
{
    return test_slurp(tmp, name);
}

static void show_output(void)
{
    char *o = slurp("stdout.txt"), *e = slurp("stderr.txt");
    fprintf(stderr, "  stdout: %s\n  stderr: %s\n", o, e);
    free(o);
    free(e);
}

/* float32 values of a version 1 .npy file (the header is not interpreted
 * beyond its type); NULL when unreadable. */
static float *read_npy(const char *name, size_t *count)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    unsigned char *data = NULL;
    size_t len;
    UnetError err;
    *count = 0;
    if (unet_read_file(path, &data, &len, &err) != UNET_OK)
        return NULL;
    if (len < 10 || memcmp(data, "\x93NUMPY", 6) != 0 || data[6] != 1) {
        free(data);
        return NULL;
    }
    size_t header = 10 + (size_t)(data[8] | data[9] << 8);
    if (header > len || !strstr((const char *)data + 10, "'<f4'")) {
        free(data);
        return NULL;
    }
    *count = (len - header) / sizeof(float);
    float *v = malloc(*count * sizeof *v + 1);
    memcpy(v, data + header, *count * sizeof *v);
    free(data);
    return v;
}

/* How many times needle stands in text (advice must be given once). */
static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *at = strstr(text, needle); at; at = strstr(at + 1, needle))
        n++;
    return n;
}

/* Number of metrics.csv lines of tmp/a and tmp/b whose first 12 fields
 * (kind, epoch, step, lr, losses, metrics; throughput and times follow)
 * agree to the byte; -1 when a line differs or the counts differ. */
static int same_metrics(const char *a_name, const char *b_name)
{
    char *m1 = slurp(a_name), *m2 = slurp(b_name);
    int lines = 0, same = 1;
    char *a = m1, *b = m2;
    for (; *a && *b; lines++) {
        size_t la = 0, lb = 0;
        for (int f = 0; f < 12 && a[la] && a[la] != '\n'; la++)
            f += a[la] == ',';
        for (int f = 0; f < 12 && b[lb] && b[lb] != '\n'; lb++)
            f += b[lb] == ',';
        if (la != lb || memcmp(a, b, la) != 0) {
            fprintf(stderr, "  metrics differ: %.*s | %.*s\n", (int)la, a, (int)lb, b);
            same = 0;
        }
        a += strcspn(a, "\n");
        b += strcspn(b, "\n");
        a += *a == '\n';
        b += *b == '\n';
    }
    same = same && !*a && !*b;
    free(m1);
    free(m2);
    return same ? lines : -1;
}

/* The loss of the first step row of a metrics.csv (column 5: kind, epoch,
 * step, lr, loss); -1 when there is none. */
static double first_loss(const char *name)
{
    char *m = slurp(name);
    double loss = -1.0;
    for (char *line = m; *line; line += strcspn(line, "\n"), line += *line == '\n') {
        if (strncmp(line, "step,", 5) != 0)
            continue;
        char *field = line;
        for (int f = 0; f < 4 && field; f++) {
            field = strchr(field, ',');
            field = field ? field + 1 : NULL;
        }
        if (field)
            loss = strtod(field, NULL);
        break;
    }
    free(m);
    return loss;
}

int main(void)
{
    unet = getenv("UNET_EXE");
    if (!unet)
        test_skip("UNET_EXE is not set");
    tmp = test_make_temp_dir("train-cuda-sim");
    const char *fp32 = "UNET_CUDA_TF32=0";
    const char *small = "--depth 2 --base 4 --padding same --threads 1 --workers 1 "
                        "--steps-per-epoch 3";

    CHECK(run("", "sample-data --out '%s/data' --count 6 --size 64 --seed 3", tmp) == 0);

    /* Training on the simulated GPU: loss, validation, checkpoints. */
    int rc = run(fp32, "train --data '%s/data' %s --epochs 2 --lr 0.01 --device cuda --out '%s/run'",
                 tmp, small, tmp);
    CHECK_MSG(rc == 0, "train --device cuda exited %d", rc);
    char *out = slurp("stdout.txt");
    CHECK_MSG(strstr(out, "on cuda:") || strstr(out, "on cuda"), "train did not run on cuda");
    CHECK(strstr(out, "epoch 2/2: train loss") != NULL);
    free(out);
    if (rc != 0)
        show_output();

    /* The same run with blocks and threads in reverse order and every block
     * on fibers: the backend's reductions have a fixed order and no
     * atomics, so every loss and metric must repeat bit for bit (a race
     * between threads or blocks would show here). */
    rc = run("UNET_CUDA_TF32=0 UNET_CUDASIM_REVERSE=1 UNET_CUDASIM_FIBERS=1",
             "train --data '%s/data' %s --epochs 2 --lr 0.01 --device cuda --out '%s/rev'", tmp,
             small, tmp);
    CHECK_MSG(rc == 0, "reverse-order train exited %d", rc);
    int lines = same_metrics("run/metrics.csv", "rev/metrics.csv");
    CHECK_MSG(lines >= 9, "reverse order: %d identical metrics lines", lines);
    printf("reverse block/thread order: %d metrics.csv lines, losses and metrics identical\n",
           lines);

    /* The step replayed as a CUDA graph (captured on the second step,
     * recaptured after each validation) computes exactly what the ops run
     * one by one compute: same kernels, same arguments, same order. */
    rc = run("UNET_CUDA_TF32=0 UNET_CUDASIM_STATS=1",
             "train --data '%s/data' %s --epochs 2 --lr 0.01 --device cuda --cuda-graphs on "
             "--out '%s/graph'",
             tmp, small, tmp);
    CHECK_MSG(rc == 0, "train --cuda-graphs on exited %d", rc);
    char *err = slurp("stderr.txt");
    unsigned long long captures = 0, graph_launches = 0;
    const char *stats = strstr(err, "cudasim: ");
    const char *cap_at = stats ? strstr(stats, " copies, ") : NULL;
    const char *launch_at = stats ? strstr(stats, " captures, ") : NULL;
    if (cap_at && launch_at) {
        captures = strtoull(cap_at + strlen(" copies, "), NULL, 10);
        graph_launches = strtoull(launch_at + strlen(" captures, "), NULL, 10);
    }
    CHECK_MSG(!strstr(err, "CUDA graphs off"), "the capture was refused: %s", err);
    CHECK_MSG(captures >= 1 && graph_launches >= 2,
              "%llu captures and %llu graph launches (stderr: %s)", captures, graph_launches, err);
    free(err);
    lines = same_metrics("run/metrics.csv", "graph/metrics.csv");
    CHECK_MSG(lines >= 9, "CUDA graphs: %d identical metrics lines", lines);
    printf("CUDA graphs: %llu captures, %llu graph launches, %d metrics.csv lines identical\n",
           captures, graph_launches, lines);

    /* bf16 convolutions: trains, says so, and its first loss stays within
     * bf16 rounding of fp32's (the same initial weights and batch). */
    rc = run("", "train --data '%s/data' %s --epochs 1 --lr 0.01 --device cuda --precision bf16 "
                 "--out '%s/bf16'",
             tmp, small, tmp);
    CHECK_MSG(rc == 0, "train --precision bf16 exited %d", rc);
    out = slurp("stdout.txt");
    CHECK_MSG(strstr(out, "(bf16)") != NULL, "the start message names no bf16: %s", out);
    free(out);
    double l32 = first_loss("run/metrics.csv"), l16 = first_loss("bf16/metrics.csv");
    CHECK_MSG(l32 > 0.0 && l16 > 0.0 && fabs(l16 - l32) <= 1e-2 * l32,
              "first loss fp32 %.6f, bf16 %.6f", l32, l16);
    printf("bf16: first loss %.6f against fp32 %.6f\n", l16, l32);

    /* The same checkpoint on both devices. Both compute in fp32 (the
     * simulator's convolutions accumulate in float like cuDNN without
     * TF32), so probabilities differ only by rounding: ~1e-6 for this
     * depth-2 net; 1e-4 leaves a wide margin while a wrong index, tile
     * offset or normalisation moves probabilities by 1e-2 and more. */
    const char *image = "data/images/000.png";
    rc = run(fp32, "predict --model '%s/run/last.safetensors' --out '%s/pc' --device cuda "
                   "--save-probabilities --quiet '%s/%s'",
             tmp, tmp, tmp, image);
    CHECK_MSG(rc == 0, "predict --device cuda exited %d", rc);
    if (rc != 0)
        show_output();
    rc = run("", "predict --model '%s/run/last.safetensors' --out '%s/pp' --device cpu "
                 "--save-probabilities --quiet '%s/%s'",
             tmp, tmp, tmp, image);
    CHECK_MSG(rc == 0, "predict --device cpu exited %d", rc);
    size_t nc = 0, np = 0;
    float *pc = read_npy("pc/000.npy", &nc), *pp = read_npy("pp/000.npy", &np);
    CHECK_MSG(pc && pp && nc == np && nc == 64 * 64, "probabilities: %zu (cuda) and %zu (cpu) values",
              nc, np);
    if (pc && pp && nc == np) {
        double worst = 0.0, mean = 0.0;
        for (size_t i = 0; i < nc; i++) {
            double d = pc[i] > pp[i] ? pc[i] - pp[i] : pp[i] - pc[i];
            worst = d > worst ? d : worst;
            mean += pc[i];
        }
        printf("predict cuda vs cpu: %zu probabilities, max abs difference %.2e (mean p %.4f)\n",
               nc, worst, mean / (double)nc);
        CHECK_MSG(worst <= 1e-4, "max abs difference %.3e", worst);
    }
    free(pc);
    free(pp);

    /* Out of simulated GPU memory: a message, exit 1, no crash. */
    rc = run("UNET_CUDASIM_MEMORY_MB=64",
             "train --data '%s/data' --depth 2 --base 16 --padding same --threads 1 --workers 1 "
             "--steps-per-epoch 1 --epochs 1 --batch 64 --tile 64 --device cuda --out '%s/oom'",
             tmp, tmp);
    err = slurp("stderr.txt");
    CHECK_MSG(rc == 1, "out-of-memory training exited %d", rc);
    CHECK_MSG(strstr(err, "out of GPU memory") && strstr(err, "of 64 MiB") &&
                  count_of(err, "lower the batch size") == 1 && !strstr(err, "smaller batch"),
              "stderr: %s", err);
    printf("out of memory: %s", err);
    free(err);

    /* No memory at all: the start-up says so without blaming batch or tile. */
    rc = run("UNET_CUDASIM_MEMORY_MB=0",
             "predict --model '%s/run/last.safetensors' --out '%s/p0' --device cuda --quiet '%s/%s'",
             tmp, tmp, tmp, image);
    err = slurp("stderr.txt");
    CHECK_MSG(rc == 1 && strstr(err, "out of GPU memory at start-up") &&
                  !strstr(err, "smaller batch"),
              "exit %d, stderr: %s", rc, err);
    free(err);

    /* No simulated device: --device cuda names the reason. */
    rc = run("UNET_CUDASIM_DEVICES=0", "train --data '%s/data' %s --epochs 1 --device cuda --out '%s/nodev'",
             tmp, small, tmp);
    err = slurp("stderr.txt");
    CHECK_MSG(rc == 1 && strstr(err, "no CUDA device is visible"), "exit %d, stderr: %s", rc, err);
    free(err);

    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    free(tmp);
    return test_finish("train-cuda-sim");
}
