/* sample-data.h - a synthetic electron-microscopy-like training set (ISBI 2012
 * style) for trying the workbench without data.
 *
 * Each image is a tissue of irregular cells (a jittered-seed Voronoi tiling on
 * warped coordinates, with cell sizes varied) separated by thin dark membranes
 * 1-3 px wide; the cells carry texture, dark organelles and vesicles (blobs as
 * dark as membranes, so a global threshold cannot separate the two), and the
 * picture is blurred, unevenly lit and noisy (Poisson-like + Gaussian), 8-bit
 * grey. The mask is exact: 0 on membranes, 255 inside cells, like ISBI 2012.
 * The same (seed, index) always gives the same pair. */
#ifndef UNET_SAMPLE_DATA_H
#define UNET_SAMPLE_DATA_H

#include <stdint.h>

#include "error.h"

#define UNET_SAMPLE_DATA_MIN_SIZE 32
#define UNET_SAMPLE_DATA_MAX_SIZE 8192

typedef struct UnetSampleDataOptions {
    int count;     /* pairs to write (default 30) */
    int size;      /* side in pixels (default 256) */
    uint64_t seed; /* default 1 */
} UnetSampleDataOptions;

void unet_sample_data_options_default(UnetSampleDataOptions *opt);

/* Renders pair `index` of the set made with `seed`: image and mask are
 * size*size bytes, row-major. */
UnetStatus unet_sample_data_generate(int size, uint64_t seed, int index, uint8_t *image, uint8_t *mask,
                                     UnetError *err);

/* Called after each pair is written. */
typedef void (*UnetSampleDataProgress)(int done, int total, void *user);

/* Writes dir/images/NNN.png and dir/masks/NNN.png (NNN = 000, 001, ...),
 * creating the folders; each file is written atomically. */
UnetStatus unet_sample_data_write(const char *dir, const UnetSampleDataOptions *opt, UnetSampleDataProgress progress,
                                  void *user, UnetError *err);

#endif
