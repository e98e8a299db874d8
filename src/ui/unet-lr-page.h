/* unet-lr-page.h - UnetLrPage: the learning-rate range test. Its settings
 * (rates, steps, smoothing, divergence factor) are kept in GSettings; the
 * chart plots LR_TEST_POINT events (raw and smoothed loss over a log rate
 * axis) and marks, after every batch, the suggested rate (steepest descent
 * of the smoothed loss) and the divergence point; "Use Suggested Rate" puts
 * the suggestion into the Training page's learning rate.
 *
 * For the trainer integration: start the range test with the settings keys
 * lr-test-*, set unet_session_set_run_owner(session, "lrtest") and report
 * the state with unet_lr_page_set_run_state(). */
#ifndef UNET_LR_PAGE_H
#define UNET_LR_PAGE_H

#include <gtk/gtk.h>

#include "unet-lr-suggest.h"
#include "unet-page.h"
#include "unet-plot.h"

G_BEGIN_DECLS

#define UNET_TYPE_LR_PAGE (unet_lr_page_get_type())
G_DECLARE_FINAL_TYPE(UnetLrPage, unet_lr_page, UNET, LR_PAGE, GtkWidget)

UnetPlot *unet_lr_page_get_plot(UnetLrPage *page);
/* The current reading of the points received. */
void unet_lr_page_get_suggestion(UnetLrPage *page, UnetLrSuggestion *out);
void unet_lr_page_set_run_state(UnetLrPage *page, UnetRunState state, gboolean can_start);

enum { UNET_LR_SERIES_RAW = 0, UNET_LR_SERIES_SMOOTHED };

G_END_DECLS

#endif
