/* unet-data-page.h - UnetDataPage: the selected pair of the dataset as image,
 * mask and overlay (linked zoom and pan, pixel values under the pointer),
 * with its files, size, value range, mask interpretation, split and problems. */
#ifndef UNET_DATA_PAGE_H
#define UNET_DATA_PAGE_H

#include <gtk/gtk.h>

#include "unet-image-view.h"

G_BEGIN_DECLS

#define UNET_TYPE_DATA_PAGE (unet_data_page_get_type())
G_DECLARE_FINAL_TYPE(UnetDataPage, unet_data_page, UNET, DATA_PAGE, GtkWidget)

/* The three views (for tests and for pages that link to them). */
UnetImageView *unet_data_page_get_image_view(UnetDataPage *page);
UnetImageView *unet_data_page_get_mask_view(UnetDataPage *page);
UnetImageView *unet_data_page_get_overlay_view(UnetDataPage *page);
/* Index of the pair shown, -1 when none. */
int unet_data_page_get_shown_pair(UnetDataPage *page);

G_END_DECLS

#endif
