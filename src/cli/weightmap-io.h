/* weightmap-io.h - what `unet weightmap` and `unet augment` share: reading a mask
 * as classes or instances, and writing a float map as .npy or viridis .png. */
#ifndef UNET_CLI_WEIGHTMAP_IO_H
#define UNET_CLI_WEIGHTMAP_IO_H

#include <stdint.h>

#include "error.h"
#include "weightmap.h"

typedef enum UnetMaskKind {
    UNET_MASK_BINARY = 0, /* non-zero = foreground; cells = 8-connected components */
    UNET_MASK_CLASSES,    /* values are class ids 0..255 */
    UNET_MASK_INSTANCES,  /* values are instance ids; non-zero = foreground */
} UnetMaskKind;

/* "binary", "classes" or "instances". */
int unet_cli_mask_kind_parse(const char *s, UnetMaskKind *out);

/* Weight map of a label image read as `kind`; out as for unet_weightmap_compute. */
UnetStatus unet_cli_weightmap(const UnetWeightMapConfig *cfg, UnetMaskKind kind,
                              const int32_t *labels, int width, int height,
                              UnetWeightMapOutputs *out, UnetWeightMapInfo *info,
                              UnetScratch *scratch, UnetError *err);

/* Writes values as float32 .npy ([H,W]) or, for .png, viridis from 0 to the
 * largest finite value (*shown_max gets it). Other extensions are refused. */
UnetStatus unet_cli_save_map(const char *path, const float *values, int width, int height,
                             float *shown_max, UnetError *err);

#endif
