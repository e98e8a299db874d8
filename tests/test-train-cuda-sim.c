/* test-train-cuda-sim.c - (-Dcudasim=true builds only) `unet train --device cuda` and `unet predict --device cuda` end to end on the simulated GPU: the trained checkpoint predicts the same probabilities on cuda as on cpu, a run with blocks and threads in reverse order gives bitwise the same losses, a batch that does not fit in the simulated memory fails with the out-of-memory message, exit 1, no crash, and so does a start-up without memory. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fileutil.h"
#include "test-common.h"

static const char *unet;
static char *tmp;

/* Runs `ENV unet ARGS` with stdout and stderr in tmp/out.txt, tmp/err.txt; returns the exit status. */
static int run(const char *env, const char *fmt, ...) UNET_PRINTF(2, 3);
static int run(const char *env, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s '%s' %s >'%s/out.txt' 2>'%s/err.txt'", env, unet, args, tmp,
             tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    unsigned char *data = NULL;
    size_t len;
    UnetError err;
    if (unet_read_file(path, &data, &len, &err) != UNET_OK)
        return strdup("");
    return (char *)data;
}

static void show_output(void)
{
    char *o = slurp("out.txt"), *e = slurp("err.txt");
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
    char *out = slurp("out.txt");
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
    char *m1 = slurp("run/metrics.csv"), *m2 = slurp("rev/metrics.csv");
    int lines = 0, same = 1;
    for (char *a = m1, *b = m2; *a && *b; lines++) {
        /* kind, epoch, step, lr, loss, train/val loss, metrics: 12 fields;
         * throughput and times follow */
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
    CHECK_MSG(same && lines >= 9, "reverse order: %d metrics lines, same %d", lines, same);
    printf("reverse block/thread order: %d metrics.csv lines, losses and metrics identical\n",
           lines);
    free(m1);
    free(m2);

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
    char *err = slurp("err.txt");
    CHECK_MSG(rc == 1, "out-of-memory training exited %d", rc);
    CHECK_MSG(strstr(err, "out of GPU memory") && strstr(err, "of 64 MiB") &&
                  strstr(err, "smaller batch or tile size"),
              "stderr: %s", err);
    printf("out of memory: %s", err);
    free(err);

    /* No memory at all: the start-up says so without blaming batch or tile. */
    rc = run("UNET_CUDASIM_MEMORY_MB=0",
             "predict --model '%s/run/last.safetensors' --out '%s/p0' --device cuda --quiet '%s/%s'",
             tmp, tmp, tmp, image);
    err = slurp("err.txt");
    CHECK_MSG(rc == 1 && strstr(err, "out of GPU memory at start-up") &&
                  !strstr(err, "smaller batch"),
              "exit %d, stderr: %s", rc, err);
    free(err);

    /* No simulated device: --device cuda names the reason. */
    rc = run("UNET_CUDASIM_DEVICES=0", "train --data '%s/data' %s --epochs 1 --device cuda --out '%s/nodev'",
             tmp, small, tmp);
    err = slurp("err.txt");
    CHECK_MSG(rc == 1 && strstr(err, "no CUDA device is visible"), "exit %d, stderr: %s", rc, err);
    free(err);

    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    free(tmp);
    return test_finish("train-cuda-sim");
}
