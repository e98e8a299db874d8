/* test-metrics.c - Dice/IoU, pixel error, V_rand and V_info on hand-computed cases. */
#include <math.h>
#include <string.h>

#include "metrics.h"
#include "test-common.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

static UnetRandInfo scores(const int32_t *truth, const int32_t *prop, size_t n)
{
    UnetRandInfo r;
    UnetError err = { 0 };
    CHECK(unet_rand_info_scores(truth, prop, n, &r, &err) == UNET_OK);
    return r;
}

int main(void)
{
    /* Perfect agreement, ids permuted: every score is 1. */
    {
        const int32_t t[] = { 1, 1, 2, 2, 0, 3 };
        const int32_t p[] = { 7, 7, 5, 5, 0, 9 };
        UnetRandInfo r = scores(t, p, 6);
        CHECK(NEAR(r.v_rand, 1) && NEAR(r.v_rand_split, 1) && NEAR(r.v_rand_merge, 1));
        CHECK(NEAR(r.v_info, 1) && NEAR(r.v_info_split, 1) && NEAR(r.v_info_merge, 1));
    }
    /* Split: one true segment of 4 pixels cut in two halves.
     * sum p^2 = 1/2, sum t^2 = 1, sum s^2 = 1/2; I = 0, H(S) = ln 2, H(T) = 0. */
    {
        const int32_t t[] = { 1, 1, 1, 1 };
        const int32_t p[] = { 1, 1, 2, 2 };
        UnetRandInfo r = scores(t, p, 4);
        CHECK(NEAR(r.v_rand_split, 0.5) && NEAR(r.v_rand_merge, 1.0));
        CHECK(NEAR(r.v_rand, 2.0 / 3.0));
        CHECK(NEAR(r.v_info_split, 0.0) && NEAR(r.v_info_merge, 1.0) && NEAR(r.v_info, 0.0));
    }
    /* Merge: two true segments of 2 pixels joined into one. */
    {
        const int32_t t[] = { 1, 1, 2, 2 };
        const int32_t p[] = { 4, 4, 4, 4 };
        UnetRandInfo r = scores(t, p, 4);
        CHECK(NEAR(r.v_rand_split, 1.0) && NEAR(r.v_rand_merge, 0.5));
        CHECK(NEAR(r.v_rand, 2.0 / 3.0));
        CHECK(NEAR(r.v_info_split, 1.0) && NEAR(r.v_info_merge, 0.0));
    }
    /* One pixel of B leaks into A's segment.
     * p = {A1: 4/8, B1: 1/8, B2: 3/8}: sum p^2 = 26/64, sum t^2 = 32/64,
     * sum s^2 = (25+9)/64. H(T) = ln 2, H(S) = -(5/8 ln 5/8 + 3/8 ln 3/8),
     * H(S,T) = -(1/2 ln 1/2 + 1/8 ln 1/8 + 3/8 ln 3/8). Truth's 0 pixels are ignored. */
    {
        const int32_t t[] = { 1, 1, 1, 1, 2, 2, 2, 2, 0, 0 };
        const int32_t p[] = { 1, 1, 1, 1, 1, 2, 2, 2, 1, 2 };
        UnetRandInfo r = scores(t, p, 10);
        CHECK(NEAR(r.v_rand_split, 26.0 / 32.0));
        CHECK(NEAR(r.v_rand_merge, 26.0 / 34.0));
        CHECK(NEAR(r.v_rand, 52.0 / 66.0));
        double ht = log(2.0);
        double hs = -(5.0 / 8 * log(5.0 / 8) + 3.0 / 8 * log(3.0 / 8));
        double hst = -(0.5 * log(0.5) + 1.0 / 8 * log(1.0 / 8) + 3.0 / 8 * log(3.0 / 8));
        double mi = hs + ht - hst;
        CHECK(NEAR(r.v_info_split, mi / hs) && NEAR(r.v_info_merge, mi / ht));
        CHECK(NEAR(r.v_info, 2 * mi / (hs + ht)));
    }
    /* Predicted boundary inside a true segment: each such pixel is a singleton.
     * p = {1/2, 1/4, 1/4}: sum p^2 = 3/8 = sum s^2, sum t^2 = 1. */
    {
        const int32_t t[] = { 1, 1, 1, 1 };
        const int32_t p[] = { 1, 1, 0, 0 };
        UnetRandInfo r = scores(t, p, 4);
        CHECK(NEAR(r.v_rand_split, 0.375) && NEAR(r.v_rand_merge, 1.0));
    }
    /* Dice, IoU and pixel error of a binary map; Rand through 4-connected
     * components: two cells separated by a boundary column, merged in the
     * prediction (the boundary is missing), one pixel missed. */
    {
        const int32_t truth[] = {
            1, 1, 0, 1, 1,
            1, 1, 0, 1, 1,
        };
        const int32_t pred[] = {
            1, 1, 1, 1, 1,
            1, 1, 1, 1, 0,
        };
        UnetSegMetrics m;
        UnetError err = { 0 };
        CHECK(unet_segmentation_metrics(truth, pred, 5, 2, 2, &m, &err) == UNET_OK);
        /* class 1: tp = 7, fp = 2, fn = 1; class 0: tp = 0, fp = 1, fn = 2 */
        CHECK(NEAR(m.class_dice[1], 14.0 / 17.0) && NEAR(m.class_iou[1], 7.0 / 10.0));
        CHECK(NEAR(m.class_dice[0], 0.0) && NEAR(m.dice, 14.0 / 17.0));
        CHECK(NEAR(m.pixel_error, 3.0 / 10.0));
        /* The missed pixel is a singleton: p = {A1: 4/8, B1: 3/8, B0: 1/8}. */
        CHECK(NEAR(m.rand_info.v_rand_split, 26.0 / 32.0));
        CHECK(NEAR(m.rand_info.v_rand_merge, 26.0 / 50.0));
        /* Diagonal contact does not join 4-connected segments. */
        const int32_t diag_t[] = { 1, 0, 0, 1 };
        CHECK(unet_segmentation_metrics(diag_t, diag_t, 2, 2, 2, &m, &err) == UNET_OK);
        CHECK(NEAR(m.rand_info.v_rand, 1.0) && NEAR(m.dice, 1.0) && NEAR(m.pixel_error, 0.0));
        /* Out-of-range labels are refused with the pixel named. */
        const int32_t bad[] = { 0, 3, 0, 0 };
        CHECK(unet_segmentation_metrics(diag_t, bad, 2, 2, 2, &m, &err) == UNET_ERR_INVALID);
        CHECK(strstr(err.message, "(1, 0)") != NULL);
    }
    /* Means weigh images equally. */
    {
        UnetMetricsMean mean;
        unet_metrics_mean_init(&mean, 2);
        UnetSegMetrics a = { .classes = 2, .dice = 1.0, .pixel_error = 0.0 };
        UnetSegMetrics b = { .classes = 2, .dice = 0.5, .pixel_error = 0.2 };
        unet_metrics_mean_add(&mean, &a);
        unet_metrics_mean_add(&mean, &b);
        UnetSegMetrics out;
        unet_metrics_mean_get(&mean, &out);
        CHECK(NEAR(out.dice, 0.75) && NEAR(out.pixel_error, 0.1));
    }
    return test_finish("metrics");
}
