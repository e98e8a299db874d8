/* synthetic-cells.h - ISBI-like cell masks (Voronoi cells split by thin membranes) from a seed. */
#ifndef UNET_SYNTHETIC_CELLS_H
#define UNET_SYNTHETIC_CELLS_H

#include <stdint.h>

#include "error.h"

/* mask[i] = 1 inside a cell, 0 on a membrane: `cells` seed points drawn
 * uniformly from `seed`, and a pixel is membrane when it lies within
 * membrane/2 pixels of the bisector between its nearest and second-nearest
 * seed point. A 512x512 mask with 120 cells and membrane 1.5 looks like an
 * ISBI 2012 label (some cells touch the border or split into pieces, so the
 * number of 8-connected cells is close to, not exactly, `cells`). */
UnetStatus unet_synthetic_cells(int32_t *mask, int width, int height, int cells, float membrane,
                                uint64_t seed, UnetError *err);

#endif
