/* unet-ui-util.h - small helpers the pages share: file choosers, chart
 * export, the pixel read-out under image views. */
#ifndef UNET_UI_UTIL_H
#define UNET_UI_UTIL_H

#include <gtk/gtk.h>

#include "unet-image-view.h"
#include "unet-plot.h"
#include "unet-session.h"

G_BEGIN_DECLS

/* Called only when the user chose a file; destroy (may be NULL) frees
 * user_data after the dialog closes either way. */
typedef void (*UnetFileChosen)(GFile *file, gpointer user_data);

void unet_ui_choose_folder(GtkWidget *parent, const char *title, UnetFileChosen callback, gpointer user_data,
                           GDestroyNotify destroy);
/* filter may be NULL; it is consumed. */
void unet_ui_choose_open_file(GtkWidget *parent, const char *title, GtkFileFilter *filter, UnetFileChosen callback,
                              gpointer user_data, GDestroyNotify destroy);
void unet_ui_choose_save_file(GtkWidget *parent, const char *title, const char *suggested_name,
                              UnetFileChosen callback, gpointer user_data,
                           GDestroyNotify destroy);

/* A filter for the image formats the engine reads (PNG, TIFF, .npy). */
GtkFileFilter *unet_ui_image_filter(void);

/* Asks for a file name and writes the chart (1200 x 720 pixels) as PNG or
 * SVG; errors go to the session's message banner. */
void unet_ui_export_plot(GtkWidget *parent, UnetPlot *plot, gboolean svg, const char *basename,
                         UnetSession *session);

/* Puts "x, y: value" of view's pixel into label ("" outside the image). */
void unet_ui_show_pixel(UnetImageView *view, GtkLabel *label, int x, int y);

/* The colour map and overlay colour of the preferences. */
UnetColormap unet_ui_settings_colormap(GSettings *settings);
void unet_ui_settings_overlay_color(GSettings *settings, GdkRGBA *color);

G_END_DECLS

#endif
