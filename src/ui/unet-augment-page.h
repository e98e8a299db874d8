/* unet-augment-page.h - UnetAugmentPage: augmentation settings and the loss
 * weight map (Ronneberger et al. eq. 2: class balance plus a border term
 * between touching cells) of the selected pair, computed in a worker thread
 * whenever the pair or w0, sigma or the class balance change. The augmented
 * sample view is filled by the augmentation engine (augment.h) once it is in
 * the build: see unet_augment_page_set_augmented(). */
#ifndef UNET_AUGMENT_PAGE_H
#define UNET_AUGMENT_PAGE_H

#include <gtk/gtk.h>

#include "unet-image-view.h"

G_BEGIN_DECLS

#define UNET_TYPE_AUGMENT_PAGE (unet_augment_page_get_type())
G_DECLARE_FINAL_TYPE(UnetAugmentPage, unet_augment_page, UNET, AUGMENT_PAGE, GtkWidget)

UnetImageView *unet_augment_page_get_weight_view(UnetAugmentPage *page);
UnetImageView *unet_augment_page_get_augmented_view(UnetAugmentPage *page);
/* Shows an augmented sample (planar float image and its class labels). */
void unet_augment_page_set_augmented(UnetAugmentPage *page, const float *image, int width, int height,
                                     int channels, const gint32 *labels);
/* The weight map shown (NULL: none), width x height floats. */
const float *unet_augment_page_get_weight_map(UnetAugmentPage *page, int *width, int *height);
/* Augmented samples shown so far (each pair, aug-* setting or seed change
 * adds one; computed in a worker thread with unet_augment_sample/apply). */
guint unet_augment_page_get_augment_count(UnetAugmentPage *page);
/* Weight maps computed so far (for tests: each pair and form change adds one). */
guint unet_augment_page_get_weight_count(UnetAugmentPage *page);

G_END_DECLS

#endif
