/* metrics.c - Dice/IoU, pixel error, V_rand and V_info. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "components.h"

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sum of squares and entropy of the sizes of equal keys in a sorted array;
 * counts are normalised by total. */
static void group_stats(const uint64_t *keys, size_t m, double total, double *sum_sq,
                        double *entropy)
{
    *sum_sq = 0.0;
    *entropy = 0.0;
    for (size_t i = 0; i < m;) {
        size_t j = i + 1;
        while (j < m && keys[j] == keys[i])
            j++;
        double p = (double)(j - i) / total;
        *sum_sq += p * p;
        *entropy -= p * log(p);
        i = j;
    }
}

UnetStatus unet_rand_info_scores(const int32_t *truth, const int32_t *proposal, size_t n,
                                 UnetRandInfo *out, UnetError *err)
{
    memset(out, 0, sizeof *out);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += truth[i] > 0;
    if (m == 0) {
        /* No ground-truth foreground: nothing can be split or merged. */
        out->v_rand = out->v_rand_split = out->v_rand_merge = 1.0;
        out->v_info = out->v_info_split = out->v_info_merge = 1.0;
        return UNET_OK;
    }
    uint64_t *joint = malloc(m * sizeof *joint);
    uint64_t *t_keys = malloc(m * sizeof *t_keys);
    uint64_t *s_keys = malloc(m * sizeof *s_keys);
    if (!joint || !t_keys || !s_keys) {
        free(joint);
        free(t_keys);
        free(s_keys);
        return unet_error_set(err, UNET_ERR_NOMEM, "not enough memory for the Rand score of %zu pixels", n);
    }
    /* Predicted-boundary pixels become singletons: give each a unique id
     * above every real segment id (ids are non-negative int32). */
    uint64_t singleton = (uint64_t)1 << 32;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (truth[i] <= 0)
            continue;
        uint64_t s = proposal[i] > 0 ? (uint64_t)proposal[i] : singleton++;
        uint64_t t = (uint64_t)truth[i];
        t_keys[k] = t;
        s_keys[k] = s;
        /* s needs up to 33 bits (singletons), t fits in 31: pack t high. */
        joint[k] = (t << 33) | s;
        k++;
    }
    qsort(joint, m, sizeof *joint, compare_u64);
    qsort(t_keys, m, sizeof *t_keys, compare_u64);
    qsort(s_keys, m, sizeof *s_keys, compare_u64);

    double sum_p2, sum_t2, sum_s2, h_joint, h_t, h_s;
    group_stats(joint, m, (double)m, &sum_p2, &h_joint);
    group_stats(t_keys, m, (double)m, &sum_t2, &h_t);
    group_stats(s_keys, m, (double)m, &sum_s2, &h_s);
    free(joint);
    free(t_keys);
    free(s_keys);

    out->v_rand_split = sum_p2 / sum_t2;
    out->v_rand_merge = sum_p2 / sum_s2;
    out->v_rand = 2.0 * sum_p2 / (sum_s2 + sum_t2);

    double mutual = h_s + h_t - h_joint;
    if (mutual < 0.0)
        mutual = 0.0; /* rounding */
    /* One segment on a side has zero entropy: it cannot be split (or merged)
     * further, so that side's score is perfect. */
    out->v_info_split = h_s > 0.0 ? mutual / h_s : 1.0;
    out->v_info_merge = h_t > 0.0 ? mutual / h_t : 1.0;
    out->v_info = h_s + h_t > 0.0 ? 2.0 * mutual / (h_s + h_t) : 1.0;
    return UNET_OK;
}

UnetStatus unet_segmentation_metrics(const int32_t *truth, const int32_t *prediction, int width,
                                     int height, int classes, UnetSegMetrics *out, UnetError *err)
{
    memset(out, 0, sizeof *out);
    if (classes < 2 || classes > UNET_METRICS_MAX_CLASSES)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "metrics need between 2 and %d classes, not %d",
                              UNET_METRICS_MAX_CLASSES, classes);
    if (width <= 0 || height <= 0)
        return unet_error_set(err, UNET_ERR_INVALID, "metrics of an empty %dx%d image", width, height);
    size_t n = (size_t)width * (size_t)height;
    out->classes = classes;

    long long *tp = calloc((size_t)classes * 3, sizeof *tp);
    if (!tp)
        return unet_error_set(err, UNET_ERR_NOMEM, "not enough memory for metrics");
    long long *fp = tp + classes, *fn = fp + classes;
    long long wrong = 0;
    for (size_t i = 0; i < n; i++) {
        int t = truth[i], p = prediction[i];
        if (t < 0 || t >= classes || p < 0 || p >= classes) {
            free(tp);
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "label %d at pixel (%zu, %zu) is outside the %d classes",
                                  (t < 0 || t >= classes) ? t : p, i % (size_t)width,
                                  i / (size_t)width, classes);
        }
        if (t == p) {
            tp[t]++;
        } else {
            wrong++;
            fp[p]++;
            fn[t]++;
        }
    }
    out->pixel_error = (double)wrong / (double)n;
    for (int c = 0; c < classes; c++) {
        double denom_dice = 2.0 * tp[c] + fp[c] + fn[c];
        double denom_iou = (double)(tp[c] + fp[c] + fn[c]);
        out->class_dice[c] = denom_dice > 0 ? 2.0 * tp[c] / denom_dice : 1.0;
        out->class_iou[c] = denom_iou > 0 ? tp[c] / denom_iou : 1.0;
        if (c > 0) {
            out->dice += out->class_dice[c] / (classes - 1);
            out->iou += out->class_iou[c] / (classes - 1);
        }
    }
    free(tp);

    /* Segments: connected components of the foreground in each map. */
    uint8_t *fg = malloc(n);
    int32_t *truth_seg = malloc(n * sizeof *truth_seg);
    int32_t *pred_seg = malloc(n * sizeof *pred_seg);
    UnetStatus st = UNET_OK;
    if (!fg || !truth_seg || !pred_seg) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "not enough memory for the Rand score");
    } else {
        for (size_t i = 0; i < n; i++)
            fg[i] = truth[i] > 0;
        st = unet_components_label(truth_seg, fg, width, height, 4, NULL, err);
        for (size_t i = 0; i < n && st == UNET_OK; i++)
            fg[i] = prediction[i] > 0;
        if (st == UNET_OK)
            st = unet_components_label(pred_seg, fg, width, height, 4, NULL, err);
        if (st == UNET_OK)
            st = unet_rand_info_scores(truth_seg, pred_seg, n, &out->rand_info, err);
    }
    free(fg);
    free(truth_seg);
    free(pred_seg);
    return st;
}

void unet_metrics_mean_init(UnetMetricsMean *m, int classes)
{
    memset(m, 0, sizeof *m);
    m->sum.classes = classes;
}

void unet_metrics_mean_add(UnetMetricsMean *m, const UnetSegMetrics *x)
{
    UnetSegMetrics *s = &m->sum;
    for (int c = 0; c < s->classes; c++) {
        s->class_dice[c] += x->class_dice[c];
        s->class_iou[c] += x->class_iou[c];
    }
    s->dice += x->dice;
    s->iou += x->iou;
    s->pixel_error += x->pixel_error;
    s->rand_info.v_rand += x->rand_info.v_rand;
    s->rand_info.v_rand_split += x->rand_info.v_rand_split;
    s->rand_info.v_rand_merge += x->rand_info.v_rand_merge;
    s->rand_info.v_info += x->rand_info.v_info;
    s->rand_info.v_info_split += x->rand_info.v_info_split;
    s->rand_info.v_info_merge += x->rand_info.v_info_merge;
    m->count++;
}

void unet_metrics_mean_get(const UnetMetricsMean *m, UnetSegMetrics *out)
{
    *out = m->sum;
    if (m->count == 0)
        return;
    double k = 1.0 / m->count;
    for (int c = 0; c < out->classes; c++) {
        out->class_dice[c] *= k;
        out->class_iou[c] *= k;
    }
    out->dice *= k;
    out->iou *= k;
    out->pixel_error *= k;
    out->rand_info.v_rand *= k;
    out->rand_info.v_rand_split *= k;
    out->rand_info.v_rand_merge *= k;
    out->rand_info.v_info *= k;
    out->rand_info.v_info_split *= k;
    out->rand_info.v_info_merge *= k;
}
