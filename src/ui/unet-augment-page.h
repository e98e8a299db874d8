/* unet-augment-page.h - UnetAugmentPage: augmentation and loss-weight
 * settings beside a 3x3 panel for the selected pair: the image, mask and
 * overlay; the augmented image (with an optional grid showing where its
 * pixels came from), mask and overlay (unet_augment_sample/apply with the
 * seed shown); the augmented image's histogram with mean and +-2 sd marked,
 * the augmented mask's class histogram and its loss weight map (Ronneberger
 * et al. eq. 2). Below, the overlap-tile geometry of the Training page's
 * model on the image (tiling.h). Everything is computed in one worker thread
 * whenever the pair, an aug-*, weight-* or model setting changes; a newer
 * job cancels the older one. */
#ifndef UNET_AUGMENT_PAGE_H
#define UNET_AUGMENT_PAGE_H

#include <gtk/gtk.h>

#include "tiling.h"
#include "unet-image-view.h"
#include "unet-plot.h"

G_BEGIN_DECLS

#define UNET_TYPE_AUGMENT_PAGE (unet_augment_page_get_type())
G_DECLARE_FINAL_TYPE(UnetAugmentPage, unet_augment_page, UNET, AUGMENT_PAGE, GtkWidget)

typedef enum {
    UNET_AUGMENT_VIEW_IMAGE,       /* the pair's normalised image */
    UNET_AUGMENT_VIEW_MASK,        /* its class mask */
    UNET_AUGMENT_VIEW_OVERLAY,     /* image with the mask over it */
    UNET_AUGMENT_VIEW_AUG_IMAGE,   /* augmented image */
    UNET_AUGMENT_VIEW_AUG_MASK,    /* augmented class mask */
    UNET_AUGMENT_VIEW_AUG_OVERLAY, /* the two together */
    UNET_AUGMENT_VIEW_WEIGHT,      /* weight map of the augmented mask */
    UNET_AUGMENT_N_VIEWS
} UnetAugmentView;

UnetImageView *unet_augment_page_get_view(UnetAugmentPage *page, UnetAugmentView which);
UnetImageView *unet_augment_page_get_weight_view(UnetAugmentPage *page);
UnetImageView *unet_augment_page_get_augmented_view(UnetAugmentPage *page);
/* The tiling picture and its grid; NULL while there is none (no pair, or the
 * form's model is invalid). grid may be NULL. */
UnetImageView *unet_augment_page_get_tiling_view(UnetAugmentPage *page, UnetTileGrid *grid);
/* Intensity histogram (marker 0: the mean, 1 and 2: mean -+ 2 sd) and class histogram. */
UnetPlot *unet_augment_page_get_histogram(UnetAugmentPage *page);
UnetPlot *unet_augment_page_get_class_histogram(UnetAugmentPage *page);
/* Seed of the augmented sample shown. */
guint64 unet_augment_page_get_seed(UnetAugmentPage *page);
/* Line segments of the displacement grid of the sample shown. */
gsize unet_augment_page_get_displacement_segments(UnetAugmentPage *page);
GtkWidget *unet_augment_page_get_new_sample_button(UnetAugmentPage *page);
/* Shows an augmented sample (planar float image in [0, 1] and its class labels). */
void unet_augment_page_set_augmented(UnetAugmentPage *page, const float *image, int width, int height,
                                     int channels, const gint32 *labels);
/* The weight map shown (NULL: none), width x height floats. */
const float *unet_augment_page_get_weight_map(UnetAugmentPage *page, int *width, int *height);
/* Augmented samples shown so far (each pair, setting or seed change adds one). */
guint unet_augment_page_get_augment_count(UnetAugmentPage *page);
/* Weight maps computed so far (one with each augmented sample). */
guint unet_augment_page_get_weight_count(UnetAugmentPage *page);

G_END_DECLS

#endif
