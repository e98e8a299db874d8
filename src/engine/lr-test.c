/* lr-test.c - the learning-rate range test's curve analysis: smoothing and the suggested rate. */
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

UnetStatus unet_lr_test_analyse(UnetLrTestResult *r, double beta, UnetError *err)
{
    const int n = r->count;
    if (n < 3)
        return unet_error_set(err, UNET_ERR_NUMERIC,
                              "the LR range test measured only %d point%s before the loss diverged; "
                              "lower --min-lr", n, n == 1 ? "" : "s");
    if (!r->smoothed) {
        r->smoothed = malloc((size_t)n * sizeof(double));
        if (!r->smoothed)
            return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    }
    /* exponential moving average with bias correction (Smith 2017, fastai) */
    double avg = 0.0, bpow = 1.0;
    r->best_index = 0;
    for (int i = 0; i < n; i++) {
        avg = beta * avg + (1.0 - beta) * r->loss[i];
        bpow *= beta;
        r->smoothed[i] = avg / (1.0 - bpow);
        if (r->smoothed[i] < r->smoothed[r->best_index])
            r->best_index = i;
    }
    /* Steepest descent of the smoothed loss against log(lr), from the end of
     * the noisy start to the minimum (past it the loss rises: too fast). The
     * slope at i is a least-squares fit over i +- h points: differences of
     * neighbouring points follow the sample-to-sample noise that the moving
     * average has not yet damped at the start of the curve. */
    const int h = n / 20 > 1 ? n / 20 : 1;
    int lo = n / 10 > h ? n / 10 : h;
    int hi = r->best_index;
    int best = -1;
    double best_g = 0.0;
    for (int i = lo; i <= hi && i < n; i++) {
        int a = i - h < 0 ? 0 : i - h, b = i + h >= n ? n - 1 : i + h;
        double mx = 0.0, my = 0.0;
        for (int j = a; j <= b; j++) {
            mx += log(r->lr[j]);
            my += r->smoothed[j];
        }
        mx /= b - a + 1;
        my /= b - a + 1;
        double sxy = 0.0, sxx = 0.0;
        for (int j = a; j <= b; j++) {
            double dx = log(r->lr[j]) - mx;
            sxy += dx * (r->smoothed[j] - my);
            sxx += dx * dx;
        }
        if (!(sxx > 0.0))
            continue;
        double g = sxy / sxx;
        if (best < 0 || g < best_g) {
            best = i;
            best_g = g;
        }
    }
    if (best >= 0 && best_g < 0.0) {
        r->suggested_index = best;
        r->suggested_lr = r->lr[best];
        snprintf(r->note, sizeof r->note,
                 "steepest descent of the smoothed loss at lr %.3g (slope %.3g per e-fold); the "
                 "loss is lowest at lr %.3g",
                 r->suggested_lr, best_g, r->lr[r->best_index]);
    } else {
        /* No descent to speak of: a tenth of the rate at the minimum, the
         * usual fallback; the note says so. */
        r->suggested_index = r->best_index;
        for (int i = r->best_index; i >= 0; i--) {
            r->suggested_index = i;
            if (r->lr[i] <= r->lr[r->best_index] / 10.0)
                break;
        }
        r->suggested_lr = r->lr[r->suggested_index];
        snprintf(r->note, sizeof r->note,
                 "the smoothed loss did not descend before its minimum at lr %.3g; suggesting "
                 "about a tenth of that (%.3g): widen the range (--min-lr, --max-lr)",
                 r->lr[r->best_index], r->suggested_lr);
    }
    return UNET_OK;
}

void unet_lr_test_result_free(UnetLrTestResult *r)
{
    if (!r)
        return;
    free(r->lr);
    free(r->loss);
    free(r->smoothed);
    r->lr = r->loss = r->smoothed = NULL;
    r->count = 0;
}
