/* unet-run-config.h - the engine configurations the workbench settings
 * describe: augmentation pipeline, weight map, the trainer's whole config,
 * the run folder and the compute devices on offer. Training, the LR test,
 * the Augmentation page and the tests build them here so they agree. */
#ifndef UNET_RUN_CONFIG_H
#define UNET_RUN_CONFIG_H

#include <gio/gio.h>

#include "augment.h"
#include "trainer.h"
#include "weightmap.h"

G_BEGIN_DECLS

/* The aug-* keys as a pipeline: each switched-on transform one stage with its
 * probability and parameters, in augment.h's default order. */
void unet_ui_augment_config_from_settings(GSettings *s, UnetAugmentConfig *cfg);
/* weight-w0, weight-sigma, weight-balance. */
void unet_ui_weightmap_config_from_settings(GSettings *s, UnetWeightMapConfig *cfg);

/* The model of the Training form (arch, depth, base, padding, norm,
 * upsampling, activation, classes); in_channels as given (0: from the data).
 * FALSE with the engine's message when it is not valid. */
gboolean unet_ui_model_config_from_settings(GSettings *s, int in_channels, UnetModelConfig *cfg, GError **error);

/* The precision key for a run on the GPU (cuda TRUE), else FP32: the CPU
 * computes fp32 whatever is chosen. */
UnetPrecision unet_ui_precision_from_settings(GSettings *s, gboolean cuda);

/* The trainer config of the form: data_dir, model (from the Training page),
 * optimizer, schedule, epochs, patience, steps, tile (snapped to the nearest
 * valid side), split, loss weights, augmentation, LR test, device, precision
 * and CUDA graphs (FP32 and no graphs when the device is the CPU). out_dir
 * stays empty. FALSE with the engine's message when it is not valid. */
gboolean unet_ui_train_config_from_settings(GSettings *s, const char *data_dir, const UnetModelConfig *model,
                                            UnetTrainConfig *cfg, GError **error);

/* Creates and returns a new run folder: run-dir, else
 * g_get_user_data_dir()/unet-workbench/runs, then /<date-time>. */
char *unet_ui_new_run_dir(GSettings *s, GError **error);

typedef struct UnetUiDevices {
    char cpu[192];          /* "CPU: <model>, N cores" */
    gboolean cuda;          /* a usable GPU */
    char cuda_name[256];    /* its name */
    char cuda_reason[512];  /* why not, when !cuda */
} UnetUiDevices;

/* Asks devices.h once (cached). */
const UnetUiDevices *unet_ui_devices(void);

G_END_DECLS

#endif
