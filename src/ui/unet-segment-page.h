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
void unet_segment_page_set_run_state(UnetSegmentPage *page, UnetRunState state, gboolean can_start);

UnetImageView *unet_segment_page_get_image_view(UnetSegmentPage *page);
UnetImageView *unet_segment_page_get_probability_view(UnetSegmentPage *page);
UnetImageView *unet_segment_page_get_result_view(UnetSegmentPage *page);

G_END_DECLS

#endif
