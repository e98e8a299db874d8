/* cli-model-options.c - parsing the shared model options into a UnetModelConfig. */
#include "cli-model-options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const option_names[] = {
    "model",    "in-channels", "classes",    "depth",       "base", "padding",
    "norm",     "upsample",    "activation", "leaky-slope", "seed",
};
#define N_OPTIONS ((int)(sizeof option_names / sizeof option_names[0]))

void unet_cli_model_options_init(UnetCliModelOptions *o)
{
    memset(o, 0, sizeof *o);
    unet_model_config_default(&o->given, UNET_ARCH_UNET);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int int_option(const char *cmd, const char *name, const char *arg, long lo, long hi,
                      int *out)
{
    long v;
    if (parse_long(arg, lo, hi, &v)) {
        fprintf(stderr, "unet %s: --%s '%s' is not a whole number between %ld and %ld\n", cmd,
                name, arg, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 1;
}

static int name_option(const char *cmd, const char *arg, UnetStatus st, const UnetError *err)
{
    (void)arg;
    if (st == UNET_OK)
        return 1;
    fprintf(stderr, "unet %s: %s\n", cmd, err->message);
    return -1;
}

int unet_cli_model_option_getopt(UnetCliModelOptions *o, const char *cmd, int code,
                                 const char *arg)
{
    if (code < UNET_CLI_OPT_MODEL || code >= UNET_CLI_OPT_END)
        return 0;
    const int k = code - UNET_CLI_OPT_MODEL;
    const char *name = option_names[k];
    UnetModelConfig *g = &o->given;
    UnetError err = { 0 };
    int rc = 1;
    if (!arg) {
        fprintf(stderr, "unet %s: option '--%s' needs a value\n", cmd, name);
        return -1;
    }
    switch (code) {
    case UNET_CLI_OPT_MODEL:
        rc = name_option(cmd, arg, unet_arch_parse(arg, &g->arch, &err), &err);
        break;
    case UNET_CLI_OPT_IN_CHANNELS:
        rc = int_option(cmd, name, arg, 1, 64, &g->in_channels);
        break;
    case UNET_CLI_OPT_CLASSES:
        rc = int_option(cmd, name, arg, 1, 256, &g->classes);
        break;
    case UNET_CLI_OPT_DEPTH:
        rc = int_option(cmd, name, arg, 1, 8, &g->depth);
        break;
    case UNET_CLI_OPT_BASE:
        rc = int_option(cmd, name, arg, 1, 1024, &g->base);
        break;
    case UNET_CLI_OPT_PADDING:
        rc = name_option(cmd, arg, unet_padding_parse(arg, &g->padding, &err), &err);
        break;
    case UNET_CLI_OPT_NORM:
        rc = name_option(cmd, arg, unet_norm_parse(arg, &g->norm, &err), &err);
        break;
    case UNET_CLI_OPT_UPSAMPLE:
        rc = name_option(cmd, arg, unet_upsample_parse(arg, &g->upsample, &err), &err);
        break;
    case UNET_CLI_OPT_ACTIVATION:
        rc = name_option(cmd, arg, unet_activation_parse(arg, &g->activation, &err), &err);
        break;
    case UNET_CLI_OPT_LEAKY_SLOPE: {
        char *end;
        errno = 0;
        double v = strtod(arg, &end);
        if (errno || end == arg || *end || !(v > 0.0 && v < 1.0)) {
            fprintf(stderr, "unet %s: --leaky-slope '%s' must be a number in (0, 1)\n", cmd, arg);
            return -1;
        }
        g->leaky_slope = (float)v;
        break;
    }
    case UNET_CLI_OPT_SEED: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 10);
        if (errno || end == arg || *end || arg[0] == '-') {
            fprintf(stderr, "unet %s: --seed '%s' is not a non-negative whole number\n", cmd, arg);
            return -1;
        }
        g->seed = (uint64_t)v;
        break;
    }
    }
    if (rc == 1)
        o->mask |= 1u << k;
    return rc;
}

int unet_cli_model_option_argv(UnetCliModelOptions *o, const char *cmd, int argc, char **argv,
                               int *i)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2))
        return 0;
    a += 2;
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    for (int k = 0; k < N_OPTIONS; k++) {
        if (strlen(option_names[k]) != len || strncmp(a, option_names[k], len))
            continue;
        const char *value = NULL;
        if (eq)
            value = eq + 1;
        else if (*i + 1 < argc)
            value = argv[++*i];
        return unet_cli_model_option_getopt(o, cmd, UNET_CLI_OPT_MODEL + k, value);
    }
    return 0;
}

int unet_cli_model_options_count(const UnetCliModelOptions *o)
{
    int n = 0;
    for (int k = 0; k < N_OPTIONS; k++)
        n += (o->mask >> k) & 1u;
    return n;
}

static int given(const UnetCliModelOptions *o, int code)
{
    return (o->mask >> (code - UNET_CLI_OPT_MODEL)) & 1u;
}

int unet_cli_model_options_finish(const UnetCliModelOptions *o, const char *cmd,
                                  UnetModelConfig *cfg)
{
    const UnetModelConfig *g = &o->given;
    unet_model_config_default(cfg, g->arch);
    if (g->arch != UNET_ARCH_UNET) {
        static const int unet_only[] = { UNET_CLI_OPT_PADDING, UNET_CLI_OPT_NORM,
                                         UNET_CLI_OPT_UPSAMPLE };
        for (size_t k = 0; k < sizeof unet_only / sizeof unet_only[0]; k++)
            if (given(o, unet_only[k])) {
                fprintf(stderr,
                        "unet %s: --%s applies to --model unet only; the %s model always uses "
                        "same padding, instance norm and bilinear upsampling\n",
                        cmd, option_names[unet_only[k] - UNET_CLI_OPT_MODEL],
                        unet_arch_name(g->arch));
                return 2;
            }
        if (g->arch == UNET_ARCH_FCN && given(o, UNET_CLI_OPT_DEPTH) && g->depth != 4) {
            fprintf(stderr, "unet %s: --depth does not apply to --model fcn, which has four conv "
                            "groups\n", cmd);
            return 2;
        }
    }
    if (given(o, UNET_CLI_OPT_IN_CHANNELS))
        cfg->in_channels = g->in_channels;
    if (given(o, UNET_CLI_OPT_CLASSES))
        cfg->classes = g->classes;
    if (given(o, UNET_CLI_OPT_DEPTH))
        cfg->depth = g->depth;
    if (given(o, UNET_CLI_OPT_BASE))
        cfg->base = g->base;
    if (given(o, UNET_CLI_OPT_PADDING))
        cfg->padding = g->padding;
    if (given(o, UNET_CLI_OPT_NORM))
        cfg->norm = g->norm;
    if (given(o, UNET_CLI_OPT_UPSAMPLE))
        cfg->upsample = g->upsample;
    if (given(o, UNET_CLI_OPT_ACTIVATION))
        cfg->activation = g->activation;
    if (given(o, UNET_CLI_OPT_LEAKY_SLOPE))
        cfg->leaky_slope = g->leaky_slope;
    if (given(o, UNET_CLI_OPT_SEED))
        cfg->seed = g->seed;
    if (given(o, UNET_CLI_OPT_LEAKY_SLOPE) && cfg->activation != UNET_ACT_LEAKY) {
        fprintf(stderr, "unet %s: --leaky-slope needs --activation leaky\n", cmd);
        return 2;
    }
    UnetError err = { 0 };
    if (unet_model_config_validate(cfg, &err) != UNET_OK) {
        fprintf(stderr, "unet %s: %s\n", cmd, err.message);
        return 2;
    }
    return 0;
}

void unet_cli_model_options_help(FILE *out)
{
    fprintf(out,
            "model options (defaults: the paper's U-Net, or the chosen model's settings):\n"
            "  --model unet|light|fcn       network (default unet)\n"
            "  --in-channels N              image channels (default 1)\n"
            "  --classes N                  1: sigmoid/BCE; K >= 2: softmax over K classes\n"
            "                               (default unet 1, light/fcn 6)\n"
            "  --depth N                    levels incl. the bottom one (unet 5, light 4; fcn: 4)\n"
            "  --base N                     channels of the first level (unet/light 64, fcn 16)\n"
            "  --padding valid|same         unet only (default valid: 572 -> 388)\n"
            "  --norm none|batch|instance   unet only (default none)\n"
            "  --upsample transpose|bilinear  unet only: 2x2 up-conv or bilinear + 1x1 conv\n"
            "  --activation relu|leaky      default unet relu, light/fcn leaky\n"
            "  --leaky-slope X              negative slope of leaky relu (default 0.01)\n"
            "  --seed K                     He initialisation seed (default 42)\n");
}
