/* unet-lr-suggest.h - reading a learning-rate range test: where the smoothed
 * loss falls fastest (the suggested rate) and where it diverges. */
#ifndef UNET_LR_SUGGEST_H
#define UNET_LR_SUGGEST_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct UnetLrSuggestion {
    gboolean has_suggestion;
    double suggested_lr;   /* steepest descent of the smoothed loss over log10(lr) */
    gboolean has_minimum;
    double min_lr, min_loss;
    gboolean diverged;
    double diverged_lr;    /* first rate after the minimum where loss > factor * min_loss */
} UnetLrSuggestion;

/* lr ascending, smoothed loss per point (non-finite values end the usable
 * range: a NaN loss counts as divergence). Slopes are taken over a window of
 * points spanning at least 1/10 of a decade so noise does not decide. */
void unet_lr_suggest(const double *lr, const double *smoothed_loss, gsize n, double divergence_factor,
                     UnetLrSuggestion *out);

G_END_DECLS

#endif
