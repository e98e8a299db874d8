/* synthetic-cells.h - ISBI-like cell masks (Voronoi cells split by thin membranes) from a seed. */
#ifndef UNET_SYNTHETIC_CELLS_H
#define UNET_SYNTHETIC_CELLS_H

#include <stdint.h>

#include "error.h"

/* mask[i] = 1 inside a cell, 0 on a membrane. `cells` seed points are drawn
 * uniformly from `seed`; every pixel belongs to its nearest seed point.
 * membrane 1: a pixel is membrane when its right, lower or lower-diagonal
 * neighbour belongs to another seed (1-2 px membranes); membrane 2: when any
 * 8-neighbour does (2-3 px). Either way cells never touch, even diagonally,
 * so the 8-connected cells are the Voronoi regions (a region cut by the
 * membranes into pieces, rare, counts once per piece). instances (may be
 * NULL) gets the region number 1..cells inside cells and 0 on membranes. */
UnetStatus unet_synthetic_cells(int32_t *mask, int32_t *instances, int width, int height,
                                int cells, int membrane, uint64_t seed, UnetError *err);

#endif
