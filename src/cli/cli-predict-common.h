/* cli-predict-common.h - what `unet predict`, `unet evaluate` and `unet bench`
 * share: number parsing, the compute device, a checkpoint opened for
 * prediction with its input spec, and a terminal progress line. */
#ifndef UNET_CLI_PREDICT_COMMON_H
#define UNET_CLI_PREDICT_COMMON_H

#include "backend.h"
#include "image.h"
#include "inference.h"
#include "model.h"

/* Parse a whole-string number in [lo, hi]; 0 on success, -1 otherwise. */
int unet_cli_parse_int(const char *s, long lo, long hi, int *out);
int unet_cli_parse_float(const char *s, double lo, double hi, float *out);

/* Opens device (auto|cpu|cuda|reference) with threads (0: all cores) in
 * the given precision and prints "unet CMD: note" when auto falls back to
 * the CPU and verbose is set. NULL after printing why (bf16 off CUDA). */
UnetBackend *unet_cli_open_backend(const char *cmd, const char *device, UnetPrecision precision,
                                   int threads, int verbose);
/* --precision fp32|tf32|bf16: 0, or -1 for any other value. */
int unet_cli_parse_precision(const char *s, UnetPrecision *out);

/* A checkpoint opened for prediction. */
typedef struct UnetCliModel {
    UnetBackend *be;
    UnetModel *model;
    UnetInputSpec input; /* from the checkpoint (or the default), colour overridable */
    int input_found;
} UnetCliModel;

/* Opens the backend and loads path; color (may be NULL) overrides the
 * stored colour conversion ("keep", "grey", "rgb"). Returns 0, or 1 after
 * printing why (2 for a bad --color). */
int unet_cli_model_open(UnetCliModel *cm, const char *cmd, const char *path, const char *device,
                        UnetPrecision precision,
                        int threads, const char *color, int verbose);
void unet_cli_model_close(UnetCliModel *cm);

/* Checks that an input image (after the spec's colour conversion) has the
 * model's channel count; prints a message naming the image and returns 1
 * when it has not. */
int unet_cli_check_channels(const char *cmd, const char *name, const UnetImage *raw,
                            const UnetCliModel *cm);

/* Progress callback for unet_predict drawing "\r  NAME: tiles D/T" on a
 * terminal; user is a UnetCliProgress. It also returns nonzero after SIGINT
 * when unet_cli_catch_interrupt was called. */
typedef struct UnetCliProgress {
    const char *name;
    int tty;
} UnetCliProgress;
int unet_cli_predict_progress(long done, long total, void *user);
void unet_cli_catch_interrupt(void);
int unet_cli_interrupted(void);

double unet_cli_now(void);

#endif
