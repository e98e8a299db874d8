/* model-config.h - the small struct that says which network to build; it is
 * saved with every checkpoint (as JSON in the safetensors metadata) and in a
 * run's config.json, so a model can always be rebuilt from its file. */
#ifndef UNET_MODEL_CONFIG_H
#define UNET_MODEL_CONFIG_H

#include <stdint.h>

#include "backend.h"
#include "error.h"

typedef enum UnetArch {
    UNET_ARCH_UNET = 0, /* Ronneberger et al., generalised */
    UNET_ARCH_LIGHT,    /* lightweight U-Net of the JSRT chest X-ray exercise */
    UNET_ARCH_FCN,      /* that exercise's fully convolutional baseline */
} UnetArch;

typedef enum UnetPadding { UNET_PAD_VALID = 0, UNET_PAD_SAME } UnetPadding;
typedef enum UnetNorm { UNET_NORM_NONE = 0, UNET_NORM_BATCH, UNET_NORM_INSTANCE } UnetNorm;
typedef enum UnetUpsample { UNET_UP_TRANSPOSE = 0, UNET_UP_BILINEAR } UnetUpsample;

typedef struct UnetModelConfig {
    UnetArch arch;
    int in_channels;
    int classes;          /* 1: sigmoid/BCE head; K >= 2: softmax head */
    int depth;            /* unet: levels including the bottom one (paper: 5) */
    int base;             /* unet: channels of the first level (paper: 64); fcn: first width */
    UnetPadding padding;  /* unet only; light and fcn are always 'same' */
    UnetNorm norm;        /* unet; light and fcn use instance norm */
    UnetUpsample upsample;/* unet; light uses bilinear */
    UnetActivation activation;
    float leaky_slope;    /* for UNET_ACT_LEAKY (PyTorch default 0.01) */
    uint64_t seed;        /* He initialisation */
} UnetModelConfig;

/* The paper's defaults for arch (unet: 1 in, 1 class, depth 5, base 64,
 * valid, no norm, transpose, relu; light/fcn: the exercise's settings). */
void unet_model_config_default(UnetModelConfig *cfg, UnetArch arch);

/* Checks ranges and combinations; the message names the offending field. */
UnetStatus unet_model_config_validate(const UnetModelConfig *cfg, UnetError *err);

/* Name tables used by the CLI, the JSON form and the GUI. */
const char *unet_arch_name(UnetArch a);
const char *unet_padding_name(UnetPadding p);
const char *unet_norm_name(UnetNorm n);
const char *unet_upsample_name(UnetUpsample u);
const char *unet_activation_name(UnetActivation a);
UnetStatus unet_arch_parse(const char *s, UnetArch *out, UnetError *err);
UnetStatus unet_padding_parse(const char *s, UnetPadding *out, UnetError *err);
UnetStatus unet_norm_parse(const char *s, UnetNorm *out, UnetError *err);
UnetStatus unet_upsample_parse(const char *s, UnetUpsample *out, UnetError *err);
UnetStatus unet_activation_parse(const char *s, UnetActivation *out, UnetError *err);

/* JSON object text, e.g. {"model":"unet","in_channels":1,...}; caller frees. */
char *unet_model_config_to_json(const UnetModelConfig *cfg);
/* Parses that text; unknown keys are refused, missing keys take the arch's
 * defaults. */
UnetStatus unet_model_config_from_json(UnetModelConfig *cfg, const char *json, UnetError *err);

#endif
