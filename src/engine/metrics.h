/* metrics.h - segmentation quality: per-class Dice/IoU, pixel error, and the
 * ISBI 2012 challenge's foreground-restricted Rand and information scores.
 *
 * V_rand and V_info follow Arganda-Carreras et al. 2015 (Front. Neuroanat.
 * 9:142): the contingency table of the proposal's segments S against the
 * ground truth's segments T is built only over ground-truth foreground
 * pixels (T label > 0); proposal pixels labelled 0 there (predicted
 * boundary) count as singletons, each its own segment. With p_ij the joint
 * probability, s_i and t_j its marginals:
 *   V_rand_split = sum p_ij^2 / sum t_j^2,  V_rand_merge = sum p_ij^2 / sum s_i^2,
 *   V_rand = 2 sum p_ij^2 / (sum s_i^2 + sum t_j^2)
 *   V_info_split = I(S;T) / H(S),  V_info_merge = I(S;T) / H(T),
 *   V_info = 2 I(S;T) / (H(S) + H(T))
 * All are in [0,1], 1 meaning a perfect segmentation. */
#ifndef UNET_METRICS_H
#define UNET_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define UNET_METRICS_MAX_CLASSES 256

typedef struct UnetRandInfo {
    double v_rand, v_rand_split, v_rand_merge;
    double v_info, v_info_split, v_info_merge;
} UnetRandInfo;

typedef struct UnetSegMetrics {
    int classes;
    /* Per class c in [0, classes): Dice/F1 and IoU of the pixels labelled c.
     * A class absent from both truth and prediction scores 1. */
    double class_dice[UNET_METRICS_MAX_CLASSES];
    double class_iou[UNET_METRICS_MAX_CLASSES];
    /* Mean over the foreground classes 1..classes-1 (for a binary mask: the
     * foreground's Dice and IoU). */
    double dice, iou;
    double pixel_error;      /* fraction of pixels whose class differs */
    UnetRandInfo rand_info;  /* on the connected components of class > 0 */
} UnetSegMetrics;

/* Rand and information scores of two segment-label maps (0 = boundary /
 * background, other values = segment ids) of n pixels. */
UnetStatus unet_rand_info_scores(const int32_t *truth_segments, const int32_t *proposal_segments,
                                 size_t n, UnetRandInfo *out, UnetError *err);

/* Everything above for class-label maps (values in [0, classes)) of w x h
 * pixels. Segments for V_rand/V_info are the 4-connected components of the
 * foreground (class > 0) in each map. */
UnetStatus unet_segmentation_metrics(const int32_t *truth, const int32_t *prediction, int width,
                                     int height, int classes, UnetSegMetrics *out, UnetError *err);

/* Running mean of metrics over images (each image weighs the same). */
typedef struct UnetMetricsMean {
    UnetSegMetrics sum;
    int count;
} UnetMetricsMean;

void unet_metrics_mean_init(UnetMetricsMean *m, int classes);
void unet_metrics_mean_add(UnetMetricsMean *m, const UnetSegMetrics *x);
void unet_metrics_mean_get(const UnetMetricsMean *m, UnetSegMetrics *out);

#endif
