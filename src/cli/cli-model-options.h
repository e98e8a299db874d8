/* cli-model-options.h - the model options every model-building subcommand
 * takes (--model, --in-channels, --classes, --depth, --base, --padding, --norm,
 * --upsample, --activation, --leaky-slope, --seed), parsed in any order: the
 * architecture's defaults apply to whatever is not given.
 *
 * Two ways in: a hand-written argv loop calls unet_cli_model_option_argv for
 * each argument; a getopt_long loop puts UNET_CLI_MODEL_LONGOPTS into its own
 * option table and hands the codes to unet_cli_model_option_getopt. Errors
 * are printed as "unet CMD: message" and reported as exit status 2. */
#ifndef UNET_CLI_MODEL_OPTIONS_H
#define UNET_CLI_MODEL_OPTIONS_H

#include <getopt.h>
#include <stdio.h>

#include "model-config.h"

enum {
    UNET_CLI_OPT_MODEL = 0x4d00,
    UNET_CLI_OPT_IN_CHANNELS,
    UNET_CLI_OPT_CLASSES,
    UNET_CLI_OPT_DEPTH,
    UNET_CLI_OPT_BASE,
    UNET_CLI_OPT_PADDING,
    UNET_CLI_OPT_NORM,
    UNET_CLI_OPT_UPSAMPLE,
    UNET_CLI_OPT_ACTIVATION,
    UNET_CLI_OPT_LEAKY_SLOPE,
    UNET_CLI_OPT_SEED,
    UNET_CLI_OPT_END,
};

#define UNET_CLI_MODEL_LONGOPTS                                               \
    { "model", required_argument, NULL, UNET_CLI_OPT_MODEL },                 \
    { "in-channels", required_argument, NULL, UNET_CLI_OPT_IN_CHANNELS },     \
    { "classes", required_argument, NULL, UNET_CLI_OPT_CLASSES },             \
    { "depth", required_argument, NULL, UNET_CLI_OPT_DEPTH },                 \
    { "base", required_argument, NULL, UNET_CLI_OPT_BASE },                   \
    { "padding", required_argument, NULL, UNET_CLI_OPT_PADDING },             \
    { "norm", required_argument, NULL, UNET_CLI_OPT_NORM },                   \
    { "upsample", required_argument, NULL, UNET_CLI_OPT_UPSAMPLE },           \
    { "activation", required_argument, NULL, UNET_CLI_OPT_ACTIVATION },       \
    { "leaky-slope", required_argument, NULL, UNET_CLI_OPT_LEAKY_SLOPE },     \
    { "seed", required_argument, NULL, UNET_CLI_OPT_SEED }

typedef struct UnetCliModelOptions {
    UnetModelConfig given; /* values of the options given */
    unsigned mask;         /* bit (code - UNET_CLI_OPT_MODEL) set per option given */
} UnetCliModelOptions;

void unet_cli_model_options_init(UnetCliModelOptions *o);

/* 1 when argv[*i] was a model option (consumed, with its value: "--classes 2"
 * or "--classes=2"; *i then points at its last word), 0 when it is not one,
 * -1 after printing an error. */
int unet_cli_model_option_argv(UnetCliModelOptions *o, const char *cmd, int argc, char **argv,
                               int *i);
/* The same for a getopt_long code and its optarg. */
int unet_cli_model_option_getopt(UnetCliModelOptions *o, const char *cmd, int code,
                                 const char *arg);

/* Number of model options given (0: the caller may take the config from a
 * file instead). */
int unet_cli_model_options_count(const UnetCliModelOptions *o);

/* The architecture's defaults with the given options on top, validated.
 * Returns 0, or 2 after printing why (an option the architecture does not
 * have, an out-of-range value). */
int unet_cli_model_options_finish(const UnetCliModelOptions *o, const char *cmd,
                                  UnetModelConfig *cfg);

/* The options' help lines, for a command's --help. */
void unet_cli_model_options_help(FILE *out);

#endif
