/* tiling.h - the overlap-tile strategy of Ronneberger et al. (2015), Fig. 2.
 *
 * A valid-padding U-Net maps an input tile of side `input_size` to an output
 * tile of side `output_size` = input_size - 2 * border: each output pixel sees
 * `border` pixels of context on every side. An image of any size is covered by
 * output tiles laid with stride output_size (the last row/column cropped at
 * the image edge); each input tile is the output tile grown by `border`, with
 * the missing context outside the image filled by mirroring the image at its
 * edges (symmetric reflection, edge pixel repeated: ... c b a | a b c ...).
 * The sizes come from the model's geometry; this module takes them as numbers
 * (a same-padding model has input_size == output_size, border 0).
 *
 * All float buffers are planar CHW, one image (no batch dimension). */
#ifndef UNET_TILING_H
#define UNET_TILING_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "image.h"

typedef struct UnetTileGrid {
    int image_width, image_height;
    int input_size;     /* side of a network input tile */
    int output_size;    /* side of a network output tile = stride */
    int border;         /* (input_size - output_size) / 2 */
    int tiles_x, tiles_y;
} UnetTileGrid;

typedef struct UnetTile {
    int index;          /* ty * tiles_x + tx */
    int tx, ty;
    int out_x, out_y;   /* top-left of the output tile in image coordinates */
    int valid_w, valid_h; /* part of the output tile inside the image (the rest is cropped) */
    int in_x, in_y;     /* top-left of the input tile: out - border (may be negative) */
} UnetTile;

/* input_size >= output_size >= 1 and input_size - output_size even. */
UnetStatus unet_tile_grid_init(UnetTileGrid *g, int image_width, int image_height, int input_size,
                               int output_size, UnetError *err);
int unet_tile_grid_count(const UnetTileGrid *g);
void unet_tile_grid_tile(const UnetTileGrid *g, int index, UnetTile *tile);

/* Walks the tiles row by row: while (unet_tile_iter_next(&it, &tile)) ... */
typedef struct UnetTileIter {
    const UnetTileGrid *grid;
    int next;
} UnetTileIter;
void unet_tile_iter_init(UnetTileIter *it, const UnetTileGrid *g);
bool unet_tile_iter_next(UnetTileIter *it, UnetTile *tile);

/* Index i of an axis of length n >= 1 reflected into [0, n): symmetric
 * reflection with the edge repeated, applied as often as needed (so borders
 * larger than the image work): n = 3 gives ... 1 0 0 | 0 1 2 | 2 1 0 0 1 ... */
int unet_mirror_index(int i, int n);

/* dst[c][y][x] = src[c][mirror(y0 + y)][mirror(x0 + x)] for a crop_w x crop_h
 * window whose top-left (x0, y0) may lie outside the image. */
void unet_mirror_crop(float *dst, const float *src, int channels, int height, int width,
                      int x0, int y0, int crop_w, int crop_h);
void unet_mirror_crop_i32(int32_t *dst, const int32_t *src, int height, int width,
                          int x0, int y0, int crop_w, int crop_h);

/* The whole image grown by `border` on every side (paper Fig. 2, left). */
UnetStatus unet_mirror_extend(const UnetImage *src, int border, UnetImage *dst, UnetError *err);

/* Input tile (channels x input_size x input_size) of `tile` from image
 * (channels x image_height x image_width). */
void unet_tile_extract(const UnetTileGrid *g, const UnetTile *tile, const float *image, int channels,
                       float *tile_in);

/* Copies the valid part of an output tile (channels x output_size x
 * output_size) into map (channels x image_height x image_width). */
void unet_tile_stitch(const UnetTileGrid *g, const UnetTile *tile, const float *tile_out, int channels, float *map);

/* Runs the network over the whole image one tile at a time: only one input
 * and one output tile exist beside the image and the map. fn returns UNET_OK
 * to go on; any other status stops the walk and is returned. */
typedef UnetStatus (*UnetTileFn)(const float *tile_in, float *tile_out, const UnetTile *tile, void *user,
                                 UnetError *err);
UnetStatus unet_tiling_apply(const UnetTileGrid *g, const float *image, int in_channels, int out_channels,
                             float *map, UnetTileFn fn, void *user, UnetError *err);

/* Training tiles: a random output-tile position, uniform over the positions
 * that keep the output tile inside the image (0 on an axis shorter than the
 * tile, which is then mirror-filled). rng is a splitmix64 state: any seed
 * value, advanced by each call. */
void unet_tile_random_position(int image_width, int image_height, int output_size, uint64_t *rng,
                               int *out_x, int *out_y);

/* Cuts the input tile (image channels x input_size^2, mirrored context) and,
 * when labels and tile_labels are given, the matching output_size^2 label tile
 * at a random position; *out_x, *out_y (may be NULL) say where. */
UnetStatus unet_tile_sample(const UnetImage *image, const UnetLabels *labels, int input_size, int output_size,
                            uint64_t *rng, float *tile_in, int32_t *tile_labels, int *out_x, int *out_y,
                            UnetError *err);

/* Picture of the tiling for display, as an 8-bit RGB UnetImage (values
 * 0..255) covering the image plus the mirrored context of every tile: image
 * (min-max scaled) in the middle, mirrored context dimmed, the part of the
 * last tiles cropped away darker still; yellow dashed mirror lines at the
 * image edges; green output-tile grid; tile `highlight` (-1: none) with its
 * output area shaded red and its input area outlined in blue. image may be
 * NULL (grey canvas). The picture is scaled down so its longer side is at most
 * max_side pixels (0: full size). */
UnetStatus unet_tiling_draw(const UnetTileGrid *g, const UnetImage *image, int highlight, int max_side,
                            UnetImage *rgb, UnetError *err);

#endif
