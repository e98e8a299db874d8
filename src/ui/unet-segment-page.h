/* unet-segment-page.h - UnetSegmentPage: applying a trained model to an
 * image. Opens any image the engine reads (file chooser, drag and drop,
 * command line), keeps the chosen checkpoint, tile size and threshold in
 * GSettings, and shows image, foreground probability (colour map with colour
 * bar) and segmentation overlay in three linked views.
 *
 * For the inference integration (inference.h, unet_predict): run it in a
 * GTask on unet_segment_page_get_image() with the checkpoint from the
 * "segment-checkpoint" key, then hand the maps to
 * unet_segment_page_set_result(); report state with
 * unet_segment_page_set_run_state(). */
#ifndef UNET_SEGMENT_PAGE_H
#define UNET_SEGMENT_PAGE_H

#include <gtk/gtk.h>

#include "image.h"
#include "unet-image-view.h"
#include "unet-page.h"

G_BEGIN_DECLS

#define UNET_TYPE_SEGMENT_PAGE (unet_segment_page_get_type())
G_DECLARE_FINAL_TYPE(UnetSegmentPage, unet_segment_page, UNET, SEGMENT_PAGE, GtkWidget)

/* Loads the image in a worker thread; errors go to the session banner. */
void unet_segment_page_open_image(UnetSegmentPage *page, const char *path);
/* The image shown (values as stored), NULL when none. */
const UnetImage *unet_segment_page_get_image(UnetSegmentPage *page);
const char *unet_segment_page_get_image_path(UnetSegmentPage *page);

/* Shows a result of the image's size: foreground probability in [0, 1]
 * (may be NULL) and class labels (may be NULL). */
void unet_segment_page_set_result(UnetSegmentPage *page, const float *probability, const gint32 *labels, int width,
                                  int height);
/* Segments the image shown with the "segment-checkpoint" model by
 * unet_predict in a worker thread (progress bar, cancel with Stop). FALSE
 * when it cannot start (no image, no model, one running). Opening an image,
 * or selecting a dataset pair while this page is shown, segments it. */
gboolean unet_segment_page_segment(UnetSegmentPage *page);
gboolean unet_segment_page_is_busy(UnetSegmentPage *page);
void unet_segment_page_cancel(UnetSegmentPage *page);
/* The thresholded labels of the last result (NULL: none) and the connected
 * objects of its foreground (4-connected, ids 1..count). */
const gint32 *unet_segment_page_get_labels(UnetSegmentPage *page, int *width, int *height);
const gint32 *unet_segment_page_get_objects(UnetSegmentPage *page, int *count);
/* Selects the object under image pixel (x, y): its outline is drawn and its
 * area and mean probability shown. FALSE on background. */
gboolean unet_segment_page_select_object(UnetSegmentPage *page, int x, int y);
int unet_segment_page_get_selected_object(UnetSegmentPage *page);
/* Mask as PNG (0/255 for two classes, else class ids); probabilities as a
 * classes x height x width float32 .npy. */
gboolean unet_segment_page_export_mask(UnetSegmentPage *page, const char *path, GError **error);
gboolean unet_segment_page_export_probabilities(UnetSegmentPage *page, const char *path, GError **error);
void unet_segment_page_set_run_state(UnetSegmentPage *page, UnetRunState state, gboolean can_start);

UnetImageView *unet_segment_page_get_image_view(UnetSegmentPage *page);
UnetImageView *unet_segment_page_get_probability_view(UnetSegmentPage *page);
UnetImageView *unet_segment_page_get_result_view(UnetSegmentPage *page);

G_END_DECLS

#endif
