/* crash-model.h - the model test-crash-safe and crash-writer agree on: large
 * enough (about 80k parameters, 330 kB) that a save takes a few
 * milliseconds, so kills land inside writes. */
#ifndef UNET_CRASH_MODEL_H
#define UNET_CRASH_MODEL_H

#include "model-config.h"

static inline void crash_model_config(UnetModelConfig *cfg)
{
    unet_model_config_default(cfg, UNET_ARCH_UNET);
    cfg->depth = 3;
    cfg->base = 12;
    cfg->padding = UNET_PAD_SAME;
}

#endif
