/* unet-dataset-browser.h - UnetDatasetBrowser: the sidebar listing the open
 * dataset's pairs (image and mask thumbnails, training/validation mark,
 * problem flag with the problems as tooltip), filtered by name. Selecting a
 * row selects the pair in the session, and the other way round. */
#ifndef UNET_DATASET_BROWSER_H
#define UNET_DATASET_BROWSER_H

#include <gtk/gtk.h>

#include "unet-session.h"

G_BEGIN_DECLS

#define UNET_TYPE_DATASET_BROWSER (unet_dataset_browser_get_type())
G_DECLARE_FINAL_TYPE(UnetDatasetBrowser, unet_dataset_browser, UNET, DATASET_BROWSER, GtkWidget)

void unet_dataset_browser_set_session(UnetDatasetBrowser *browser, UnetSession *session);
/* The list widget (for focus and tests). */
GtkWidget *unet_dataset_browser_get_list_view(UnetDatasetBrowser *browser);
/* Rows shown after filtering. */
guint unet_dataset_browser_get_n_shown(UnetDatasetBrowser *browser);
void unet_dataset_browser_set_filter(UnetDatasetBrowser *browser, const char *text);

G_END_DECLS

#endif
