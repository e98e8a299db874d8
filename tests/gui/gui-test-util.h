/* gui-test-util.h - helpers of the GUI tests: a display or SKIP, waiting for
 * frames and conditions on the main loop, rendering a widget in-process to a
 * texture, saving it under the build dir, and reading its pixels. */
#ifndef UNET_GUI_TEST_UTIL_H
#define UNET_GUI_TEST_UTIL_H

#include <gtk/gtk.h>

#include "test-common.h"
#include "unet-application.h"
#include "unet-window.h"

/* gtk_init, or exit 77 when there is no display. */
void gui_test_init(void);

/* The start of every whole-window test: writes `count` generated sample
 * images of side `size` into <temp>/sample (temp: a fresh folder named after
 * the test), starts the application and returns its window, or NULL after a
 * failed CHECK. Skips (77) when the application cannot start. *tmp_out,
 * *sample_dir_out (g_free) and *app_out (g_object_unref) belong to the caller. */
UnetWindow *gui_test_open_window(const char *test, int count, int size, char **tmp_out,
                                 char **sample_dir_out, UnetApplication **app_out);

/* Runs the main loop until `frames` frames of widget's frame clock have
 * been painted (or timeout_ms passed); FALSE on timeout. */
gboolean gui_test_wait_frames(GtkWidget *widget, int frames, int timeout_ms);

/* Runs the main loop until cond(data) or timeout_ms; returns cond's last value. */
gboolean gui_test_wait_until(gboolean (*cond)(gpointer), gpointer data, int timeout_ms);

/* Runs the main loop for ms milliseconds. */
void gui_test_spin(int ms);

/* The widget drawn as it is now, at its allocated size. */
GdkTexture *gui_test_render(GtkWidget *widget);

/* Saves under $UNET_BUILD_ROOT/tests/gui/screenshots/<name>.png (or /tmp);
 * returns the path (g_free). */
char *gui_test_save(GdkTexture *texture, const char *name);

/* RGBA pixels, 8 bits each, not premultiplied (texture is opaque where it
 * matters); free with g_free. */
guint8 *gui_test_pixels(GdkTexture *texture, int *width, int *height);

/* Pixel (x, y) of an RGBA buffer of width w. */
static inline const guint8 *gui_test_px(const guint8 *px, int w, int x, int y)
{
    return px + ((gsize)y * w + x) * 4;
}

/* Number of distinct grey/colour values (quantised to 6 bits) in a
 * rectangle: 1 means uniform. */
int gui_test_distinct_colors(const guint8 *px, int w, int x0, int y0, int x1, int y1);

/* Rectangle of a widget inside an ancestor, in the ancestor's pixels. */
gboolean gui_test_bounds(GtkWidget *widget, GtkWidget *ancestor, int *x, int *y, int *w, int *h);

/* The main loop may not stall above 100 ms. Under AddressSanitizer every
 * draw runs several times slower, so sanitized builds check a looser bound;
 * the 100 ms promise is the release build's. */
#if defined(__SANITIZE_ADDRESS__)
#define GUI_TEST_STALL_LIMIT_MS 400
#else
#define GUI_TEST_STALL_LIMIT_MS 100
#endif

#endif
