/* test-crash-safe.c - checkpoints survive kill -9 at any moment of a save.
 *
 * crash-writer (argv[1]) saves a small model to one path in a loop; this test
 * starts it, kills it with SIGKILL after a random delay, and checks after each
 * kill that the path holds a whole checkpoint (it loads, and its weights are
 * exactly those of the step its metadata names: never a mix of two saves),
 * that steps never go back, and that at most one temporary file is left
 * (the next writer removes what a killed one left). */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "crash-model.h"
#include "test-common.h"

#define ITERATIONS 40

static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp-"))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Starts the writer; with wait_ready, returns once its first save is done. */
static pid_t start_writer(const char *exe, const char *path, long first_step, int wait_ready)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char step[32];
        snprintf(step, sizeof step, "%ld", first_step);
        execl(exe, exe, path, step, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (wait_ready) {
        char line[16] = "";
        ssize_t n = read(fds[0], line, sizeof line - 1);
        CHECK_MSG(n > 0 && !strncmp(line, "ready", 5), "writer did not start (read %zd)", n);
    }
    close(fds[0]);
    return pid;
}

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

/* Loads path and checks it is one whole save; returns its step or -1. */
static long check_whole(const char *path, UnetModel *m, float *expect, float *got)
{
    UnetCheckpointMeta meta;
    UnetError err = { 0 };
    if (unet_checkpoint_load(path, m, NULL, &meta, &err) != UNET_OK) {
        CHECK_MSG(0, "checkpoint does not load after a kill: %s", err.message);
        return -1;
    }
    const char *s = unet_checkpoint_meta_get(&meta, "step");
    long step = s ? atol(s) : -1;
    unet_checkpoint_meta_free(&meta);
    CHECK_MSG(step >= 0, "checkpoint has no step");
    if (step < 0)
        return -1;
    size_t n = unet_model_param_count(m);
    UnetBackend *be = unet_model_backend(m);
    CHECK(unet_model_init_host(m, (uint64_t)step, expect, NULL, &err) == UNET_OK);
    CHECK(be->buffer_download(be, got, unet_model_param_arena(m), n) == UNET_OK);
    CHECK_MSG(memcmp(expect, got, n * sizeof(float)) == 0, "weights are not those of step %ld: a torn save",
              step);
    return step;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        test_skip("needs the crash-writer executable as argument");
    const char *exe = argv[1];
    char *dir = test_make_temp_dir("crash-safe");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);

    UnetError err = { 0 };
    UnetModelConfig cfg;
    crash_model_config(&cfg);
    UnetBackend *be = unet_backend_reference_new(&err);
    UnetModel *m = be ? unet_model_new(&cfg, be, &err) : NULL;
    CHECK_MSG(m, "%s", err.message);
    if (!m)
        return test_finish("crash-safe");
    size_t n = unet_model_param_count(m);
    float *expect = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));

    /* the first checkpoint */
    pid_t pid = start_writer(exe, path, 0, 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    long last = -1;
    int torn_writes = 0, max_temps = 0;
    for (int it = 1; it <= ITERATIONS; it++) {
        long first = (long)it * 1000000;
        /* odd iterations may die before their first save is done */
        pid = start_writer(exe, path, first, it % 2 == 0);
        sleep_us(rand() % 30000);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFSIGNALED(status), "iteration %d: the writer ended by itself (status %d)", it, status);
        int temps = count_temps(dir);
        if (temps > max_temps)
            max_temps = temps;
        torn_writes += temps > 0;
        CHECK_MSG(temps <= 1, "iteration %d: %d temporary files beside the checkpoint", it, temps);
        long step = check_whole(path, m, expect, got);
        CHECK_MSG(step >= last, "iteration %d: step went back from %ld to %ld", it, last, step);
        if (step >= 0)
            last = step;
    }
    printf("%d kills (seed %u): %d landed inside a save (a temporary file was left), at most %d temporary "
           "file(s) at once; last step %ld\n", ITERATIONS, seed, torn_writes, max_temps, last);
    CHECK_MSG(torn_writes > 0, "no kill landed inside a save: the test proved nothing");

    /* a writer that completes a save removes what the killed ones left */
    pid = start_writer(exe, path, 99000000, 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK(count_temps(dir) <= 1);

    free(expect);
    free(got);
    unet_model_free(m);
    unet_backend_destroy(be);
    free(dir);
    return test_finish("crash-safe");
}
