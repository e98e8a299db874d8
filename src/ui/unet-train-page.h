/* unet-train-page.h - UnetTrainPage: the model and training settings (kept
 * in GSettings, the model part checked live with unet_model_config_validate)
 * beside live charts of the loss and the validation metrics, the validation
 * previews and the run log, all fed by trainer events from the session's
 * queue (one redraw per drained batch).
 *
 * For the trainer integration: unet_train_page_get_model_config() and the
 * settings keys give the run's configuration; starting a run means calling
 * unet_session_set_run_owner(session, "training"), starting the trainer with
 * unet_event_queue_callback / unet_session_get_event_queue() as its callback,
 * and reporting the state with unet_train_page_set_run_state(). */
#ifndef UNET_TRAIN_PAGE_H
#define UNET_TRAIN_PAGE_H

#include <gtk/gtk.h>

#include "model-config.h"
#include "unet-page.h"
#include "unet-plot.h"

G_BEGIN_DECLS

#define UNET_TYPE_TRAIN_PAGE (unet_train_page_get_type())
G_DECLARE_FINAL_TYPE(UnetTrainPage, unet_train_page, UNET, TRAIN_PAGE, GtkWidget)

/* The model the form describes (input channels from the open dataset).
 * Returns FALSE with the engine's message in error when it is not valid. */
gboolean unet_train_page_get_model_config(UnetTrainPage *page, UnetModelConfig *config, GError **error);

UnetPlot *unet_train_page_get_loss_plot(UnetTrainPage *page);
UnetPlot *unet_train_page_get_metrics_plot(UnetTrainPage *page);

/* Run state shown by the page and the header bar's controls; can_start says
 * whether Start is offered. */
void unet_train_page_set_run_state(UnetTrainPage *page, UnetRunState state, gboolean can_start);

/* Shows the curves of a run folder (metrics.csv), its device, precision and
 * CUDA graphs (config.json), and offers to resume it; its best checkpoint
 * becomes the Segment page's model. */
gboolean unet_train_page_open_run(UnetTrainPage *page, const char *dir, GError **error);
/* Continues the opened run (or the last one) from its last checkpoint. */
gboolean unet_train_page_resume_run(UnetTrainPage *page);
/* The folder of the running or last run, NULL before any. */
const char *unet_train_page_get_run_dir(UnetTrainPage *page);
/* STEP events of the current run drawn so far. */
guint64 unet_train_page_get_step_events(UnetTrainPage *page);
UnetPlot *unet_train_page_get_lr_plot(UnetTrainPage *page);
/* The status line under the charts (progress, or the opened run and how it ran). */
const char *unet_train_page_get_status(UnetTrainPage *page);

/* Series indices of the charts. */
enum {
    UNET_TRAIN_SERIES_STEP_LOSS = 0,
    UNET_TRAIN_SERIES_TRAIN_LOSS,
    UNET_TRAIN_SERIES_VAL_LOSS,
    UNET_TRAIN_SERIES_STEP_SMOOTHED,
};
enum {
    UNET_TRAIN_SERIES_DICE = 0,
    UNET_TRAIN_SERIES_IOU,
    UNET_TRAIN_SERIES_PIXEL_ERROR,
    UNET_TRAIN_SERIES_VRAND,
};

G_END_DECLS

#endif
