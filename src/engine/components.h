/* components.h - connected-component labelling (4- or 8-connectivity).
 *
 * Two raster passes with union-find. Labels run 1..count in the raster
 * order of each component's first pixel (the order a top-to-bottom,
 * left-to-right flood fill would give); background pixels get 0. */
#ifndef UNET_COMPONENTS_H
#define UNET_COMPONENTS_H

#include <stdint.h>

#include "error.h"

/* Components of the non-zero pixels of fg (any non-zero value counts as
 * foreground). labels and fg are width*height, row-major; connectivity is
 * 4 or 8; *count (may be NULL) gets the number of components. */
UnetStatus unet_components_label(int32_t *labels, const uint8_t *fg, int width, int height,
                                 int connectivity, int *count, UnetError *err);

/* Components of equal non-zero values: neighbours join only when their
 * values are equal, so touching regions of different classes stay apart
 * (pixels of value 0 are background). */
UnetStatus unet_components_label_values(int32_t *labels, const int32_t *values, int width,
                                        int height, int connectivity, int *count,
                                        UnetError *err);

/* Same, with caller-provided work space of width*height + 1 int32 (no
 * allocation), for hot loops. */
UnetStatus unet_components_label_values_ws(int32_t *labels, const int32_t *values, int width,
                                           int height, int connectivity, int *count,
                                           int32_t *work, UnetError *err);

#endif
