/* colormap.h - viridis, a perceptually uniform colour map, for false-colour pictures
 * of weight maps and distance maps (the CLI's .png outputs; the GUI's views). */
#ifndef UNET_COLORMAP_H
#define UNET_COLORMAP_H

#include <stddef.h>
#include <stdint.h>

/* t in [0, 1] (clamped; NaN gives 0) to 8-bit RGB, 256 levels. */
void unet_colormap_viridis(float t, uint8_t rgb[3]);

/* rgb (3n bytes, interleaved) = viridis((values - lo) / (hi - lo)). */
void unet_colormap_apply(uint8_t *rgb, const float *values, size_t n, float lo, float hi);

#endif
