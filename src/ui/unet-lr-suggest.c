/* unet-lr-suggest.c - suggestion and divergence point of an LR range test. */
#include "unet-lr-suggest.h"

#include <math.h>

void unet_lr_suggest(const double *lr, const double *loss, gsize n, double factor, UnetLrSuggestion *out)
{
    *out = (UnetLrSuggestion){ 0 };
    /* Usable prefix: positive rates and finite losses. */
    gsize m = 0;
    while (m < n && lr[m] > 0 && isfinite(lr[m]) && isfinite(loss[m]))
        m++;
    if (m < n) {
        out->diverged = TRUE;
        out->diverged_lr = lr[m];
    }
    if (m == 0)
        return;
    gsize imin = 0;
    for (gsize i = 1; i < m; i++)
        if (loss[i] < loss[imin])
            imin = i;
    out->has_minimum = TRUE;
    out->min_lr = lr[imin];
    out->min_loss = loss[imin];
    for (gsize i = imin + 1; i < m; i++) {
        if (loss[i] > factor * loss[imin] && loss[imin] > 0) {
            out->diverged = TRUE;
            out->diverged_lr = lr[i];
            break;
        }
    }
    /* Steepest descent up to the minimum: slope over a window reaching at
     * least 0.1 decade to the right of each point. */
    double best = 0;
    for (gsize i = 0; i < imin; i++) {
        gsize j = i + 1;
        while (j < imin && log10(lr[j]) - log10(lr[i]) < 0.1)
            j++;
        double dx = log10(lr[j]) - log10(lr[i]);
        if (dx <= 0)
            continue;
        double slope = (loss[j] - loss[i]) / dx;
        if (slope < best) {
            best = slope;
            /* The middle of the window, geometrically. */
            out->suggested_lr = sqrt(lr[i] * lr[j]);
            out->has_suggestion = TRUE;
        }
    }
}
