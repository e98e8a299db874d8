/* edt.h - exact Euclidean distance transforms of binary images in linear time.
 *
 * Felzenszwalb & Huttenlocher (2012): a scan per column gives the distance to
 * the nearest site in that column, then the lower envelope of parabolas along
 * each row gives the exact squared distance. All arithmetic is in integers
 * (the envelope's breakpoints are compared by cross-multiplication), so the
 * squared distances are exact; as floats they are exact below 2^24, i.e. for
 * every pixel of images up to 2896 x 2896. Sides are limited to 32767 pixels. */
#ifndef UNET_EDT_H
#define UNET_EDT_H

#include <stdint.h>

#include "error.h"

#define UNET_EDT_MAX_SIDE 32767

/* dist2[i] = squared distance from pixel i to the nearest pixel whose
 * sites[] value is non-zero (0 on sites; +INFINITY everywhere when there is
 * no site). Both arrays are width*height, row-major. */
UnetStatus unet_edt_squared(float *dist2, const uint8_t *sites, int width, int height,
                            UnetError *err);

/* Same, plain (not squared) distance. */
UnetStatus unet_edt(float *dist, const uint8_t *sites, int width, int height, UnetError *err);

/* Feature transform: like unet_edt_squared, and nearest[i] (may be NULL)
 * gets the index y*width+x of a nearest site (-1 when there is none). Ties
 * go to the site with the larger x, then (within a column) the nearer row,
 * upper first. dist2 may be NULL. */
UnetStatus unet_edt_feature(float *dist2, int32_t *nearest, const uint8_t *sites, int width,
                            int height, UnetError *err);

/* The 1-D building block, for callers that carry their own sampled
 * function: out[x] = min over q with f[q] >= 0 of (x-q)^2 + f[q], and
 * arg[x] (may be NULL) the minimising q; out = -1 and arg = -1 when every
 * f[q] < 0 (no site). f values must be < 2^30. scratch holds 3*n int64. */
void unet_edt_envelope_1d(int64_t *out, int32_t *arg, const int32_t *f, int n, int64_t *scratch);

#endif
