/* unet-window.h - UnetWindow: the workbench window. Header bar (open
 * dataset, open image, page switcher, run controls, main menu), a welcome
 * page that offers the sample dataset, the dataset browser and the stack of
 * pages; opens folders and images dropped on it. */
#ifndef UNET_WINDOW_H
#define UNET_WINDOW_H

#include <gtk/gtk.h>

#include "unet-session.h"

G_BEGIN_DECLS

#define UNET_TYPE_WINDOW (unet_window_get_type())
G_DECLARE_FINAL_TYPE(UnetWindow, unet_window, UNET, WINDOW, GtkApplicationWindow)

UnetWindow *unet_window_new(GtkApplication *app, GSettings *settings);

UnetSession *unet_window_get_session(UnetWindow *win);

/* A folder opens as dataset; a file opens as image on the Segment page. */
void unet_window_open_file(UnetWindow *win, GFile *file);
void unet_window_open_dataset(UnetWindow *win, const char *path);
void unet_window_open_image(UnetWindow *win, const char *path);

/* Writes the sample dataset (30 pairs of 256 x 256 unless count/size > 0)
 * into dir (NULL: the preference, else the user data folder) in a worker
 * thread and opens it. */
void unet_window_generate_sample(UnetWindow *win, const char *dir, int count, int size);

/* Page names: "data", "augment", "training", "lrtest", "segment". */
void unet_window_show_page(UnetWindow *win, const char *name);
GtkWidget *unet_window_get_page(UnetWindow *win, const char *name);
const char *unet_window_get_visible_page(UnetWindow *win);
/* "welcome" or "workbench". */
const char *unet_window_get_mode(UnetWindow *win);
GtkWidget *unet_window_get_browser(UnetWindow *win);

G_END_DECLS

#endif
