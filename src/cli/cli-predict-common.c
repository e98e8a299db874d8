/* cli-predict-common.c - number parsing, device and checkpoint opening, and the
 * progress line shared by `unet predict`, `unet evaluate` and `unet bench`. */
#include "cli-predict-common.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int unet_cli_parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int unet_cli_parse_float(const char *s, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = (float)v;
    return 0;
}

int unet_cli_parse_precision(const char *s, UnetPrecision *out)
{
    UnetError err = { 0 };
    return unet_precision_parse(s, out, &err) == UNET_OK ? 0 : -1;
}

UnetBackend *unet_cli_open_backend(const char *cmd, const char *device, UnetPrecision precision,
                                   int threads, int verbose)
{
    UnetError err = { 0 };
    char note[512];
    UnetBackend *be = unet_backend_open(device, threads, note, sizeof note, &err);
    if (!be) {
        fprintf(stderr, "unet %s: %s\n", cmd, err.message);
        return NULL;
    }
    if (unet_backend_set_precision(be, precision, &err) != UNET_OK) {
        fprintf(stderr, "unet %s: %s\n", cmd, err.message);
        unet_backend_destroy(be);
        return NULL;
    }
    if (verbose && note[0])
        fprintf(stderr, "unet %s: %s\n", cmd, note);
    return be;
}

static volatile sig_atomic_t interrupted;

static int cli_cancelled(void *user)
{
    (void)user;
    return interrupted != 0;
}

int unet_cli_model_open(UnetCliModel *cm, const char *cmd, const char *path, const char *device,
                        UnetPrecision precision,
                        int threads, const char *color, int verbose)
{
    memset(cm, 0, sizeof *cm);
    UnetError err = { 0 };
    UnetColor col = UNET_COLOR_KEEP;
    if (color && unet_color_parse(color, &col, &err) != UNET_OK) {
        fprintf(stderr, "unet %s: --color: %s\n", cmd, err.message);
        return 2;
    }
    /* a missing file is named before any device starts */
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "unet %s: cannot open checkpoint '%s': %s\n", cmd, path, strerror(errno));
        return 1;
    }
    fclose(f);
    cm->be = unet_cli_open_backend(cmd, device, precision, threads, verbose);
    if (!cm->be)
        return 1;
    if (unet_checkpoint_open_model(path, cm->be, &cm->model, &cm->input, &cm->input_found, NULL,
                                   &err) != UNET_OK) {
        fprintf(stderr, "unet %s: %s\n", cmd, err.message);
        unet_cli_model_close(cm);
        return 1;
    }
    if (color)
        cm->input.color = col;
    /* Ctrl-C (once unet_cli_catch_interrupt is on) stops within one layer */
    unet_model_set_cancel(cm->model, cli_cancelled, NULL);
    return 0;
}

void unet_cli_model_close(UnetCliModel *cm)
{
    unet_model_free(cm->model);
    unet_backend_destroy(cm->be);
    memset(cm, 0, sizeof *cm);
}

int unet_cli_check_channels(const char *cmd, const char *name, const UnetImage *raw,
                            const UnetCliModel *cm)
{
    const int want = unet_model_config(cm->model)->in_channels;
    const int got = unet_input_channels(raw->channels, raw->has_alpha, &cm->input);
    if (got == want)
        return 0;
    const int colour = raw->channels - (raw->has_alpha ? 1 : 0);
    const char *hint = want == 1 ? "; --color grey converts colour images to grey"
                       : want == 3 && colour == 1 ? "; --color rgb repeats a grey image into RGB"
                                                  : "";
    fprintf(stderr,
            "unet %s: %s has %d channel%s (%s) but the model takes %d%s\n", cmd, name, got,
            got == 1 ? "" : "s", colour == 1 ? "grey" : colour == 3 ? "colour" : "after conversion",
            want, hint);
    return 1;
}


static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

void unet_cli_catch_interrupt(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

int unet_cli_interrupted(void)
{
    return interrupted != 0;
}

int unet_cli_predict_progress(long done, long total, void *user)
{
    const UnetCliProgress *p = user;
    if (p && p->tty) {
        fprintf(stderr, "\r  %s: tile %ld of %ld ", p->name, done, total);
        if (done == total)
            fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    return interrupted != 0;
}

double unet_cli_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
