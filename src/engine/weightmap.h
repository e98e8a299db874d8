/* weightmap.h - the U-Net loss weight map (Ronneberger et al. 2015, eq. 2).
 *
 *   w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))   on background pixels,
 *   w(x) = w_c(x)                                               elsewhere,
 *
 * d1, d2: Euclidean distances (pixel centres) to the nearest and the
 * second-nearest cell. Cells are the 8-connected components of pixels of
 * equal non-zero class, or the instances of an instance-id image.
 *
 * Exactness: d1 is exact everywhere. The border term is below `tolerance`
 * wherever d1 + d2 > R = sigma * sqrt(2 ln(w0 / tolerance)), so the fast path
 * looks for the second cell only up to R - d1 from each background pixel;
 * the weight map then differs from the exact one by less than `tolerance`
 * (1e-5 by default; R = 26.3 px for w0 = 10, sigma = 5). d2 is exact where
 * d1 + d2 <= R (every pixel with exact_d2 set); elsewhere it is exact or
 * +INFINITY (not computed).
 *
 * Method (exact, linear time for d1, O(d2) per background pixel for d2):
 * one column pass keeps, per pixel, the nearest two distinct cells of its
 * column; then d1 and the nearest cell come from the row lower envelope, and
 * d2 = min over columns x' of (x-x')^2 + g(x') where g(x') is the column
 * distance to the nearest cell other than the nearest cell of x - a scan
 * outwards from x that stops once (x-x')^2 exceeds the best value. Keeping
 * two distinct cells per column is enough: a cell that is third in a column
 * is beaten there by two distinct cells, so it can be neither first nor
 * second overall. When only the weight map is asked for, rows with at most
 * 25% background skip the envelope: their background pixels scan the columns
 * outwards for the two nearest cells at once (same exactness, less work on
 * membrane-like masks). */
#ifndef UNET_WEIGHTMAP_H
#define UNET_WEIGHTMAP_H

#include <stdint.h>

#include "error.h"
#include "scratch.h"

#define UNET_WEIGHTMAP_MAX_CLASSES 256

typedef enum UnetClassBalance {
    UNET_BALANCE_MAX = 0, /* w_c = max class frequency / class frequency (the notebook) */
    UNET_BALANCE_INVERSE, /* w_c = 1 / frequency, normalised so the pixel mean of w_c is 1 */
    UNET_BALANCE_NONE,    /* w_c = 1 */
} UnetClassBalance;

typedef struct UnetWeightMapConfig {
    float w0;                 /* border weight, 10 */
    float sigma;              /* border width in pixels, 5 */
    UnetClassBalance balance; /* UNET_BALANCE_MAX */
    float tolerance;          /* largest border term the fast path may drop, 1e-5 */
    int separate_touching;    /* instances only: pixels of an instance 8-adjacent to another
                               * instance of the same class become background (the border the
                               * term is for); 1 */
    int exact_d2;             /* compute d2 exactly at every pixel (slower, for display); 0 */
} UnetWeightMapConfig;

/* Outputs, each width*height or NULL when not wanted. */
typedef struct UnetWeightMapOutputs {
    float *weight;       /* w(x) */
    float *class_weight; /* w_c(x) */
    float *d1;           /* distance to the nearest cell, 0 inside a cell; +INF with no cell */
    float *d2;           /* distance to the second-nearest cell (see exactness above) */
    int32_t *cells;      /* cell id per pixel, 1..cells, 0 outside cells */
    int32_t *classes;    /* the class map used: the input with carved borders */
} UnetWeightMapOutputs;

typedef struct UnetWeightMapInfo {
    int cells;                                     /* number of cells */
    int classes;                                   /* largest class value + 1 */
    float class_weights[UNET_WEIGHTMAP_MAX_CLASSES]; /* w_c per class (0 for absent classes) */
    float cutoff;                                  /* R above, in pixels */
} UnetWeightMapInfo;

void unet_weightmap_config_default(UnetWeightMapConfig *cfg);
UnetStatus unet_weightmap_config_validate(const UnetWeightMapConfig *cfg, UnetError *err);

const char *unet_class_balance_name(UnetClassBalance b);
/* "max", "inverse" or "none" */
UnetStatus unet_class_balance_parse(const char *s, UnetClassBalance *out, UnetError *err);

/* classes: class per pixel, 0 = background, values 0..255 (a binary mask is
 * classes 0/1). instances: NULL, or an instance id per pixel (0 = none,
 * otherwise 1..16777215; pixels with an id and class 0 count as class 1).
 * With instances NULL, cells are the 8-connected components of equal class.
 * out and info may be NULL; scratch may be NULL (then it allocates), or a
 * scratch kept by the caller between calls (about 24 bytes per pixel). */
UnetStatus unet_weightmap_compute(const UnetWeightMapConfig *cfg, const int32_t *classes,
                                  const int32_t *instances, int width, int height,
                                  UnetWeightMapOutputs *out, UnetWeightMapInfo *info,
                                  UnetScratch *scratch, UnetError *err);

/* The notebook's method, kept as the reference: one exact distance
 * transform per cell over the whole image, then the two smallest per pixel.
 * Exact d1, d2 everywhere; O(cells * pixels). Same arguments but scratch. */
UnetStatus unet_weightmap_reference(const UnetWeightMapConfig *cfg, const int32_t *classes,
                                    const int32_t *instances, int width, int height,
                                    UnetWeightMapOutputs *out, UnetWeightMapInfo *info,
                                    UnetError *err);

#endif
