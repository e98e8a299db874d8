/* unet-image-view.h - UnetImageView: one image (grey, colour, a class mask
 * or a colour-mapped float map with its colour bar) with an optional mask
 * overlay, zoomed with the scroll wheel and panned by dragging. Views that
 * share a UnetViewTransform zoom and pan together and show the hovered
 * pixel in each. */
#ifndef UNET_IMAGE_VIEW_H
#define UNET_IMAGE_VIEW_H

#include <gtk/gtk.h>

#include "unet-colormap.h"
#include "unet-view-transform.h"

G_BEGIN_DECLS

#define UNET_TYPE_IMAGE_VIEW (unet_image_view_get_type())
G_DECLARE_FINAL_TYPE(UnetImageView, unet_image_view, UNET, IMAGE_VIEW, GtkWidget)

GtkWidget *unet_image_view_new(void);

/* Removes the image and the overlay; the placeholder text shows instead. */
void unet_image_view_clear(UnetImageView *view);
void unet_image_view_set_placeholder(UnetImageView *view, const char *text);

/* Planar float image (channels 1 = grey, 3 = RGB; 2 and 4 have alpha, which
 * is ignored) with [lo, hi] shown black to white; lo >= hi: the image's own
 * minimum and maximum. The data is copied. */
void unet_image_view_set_image(UnetImageView *view, const float *data, int width, int height, int channels,
                               double lo, double hi);
/* 8-bit grey plane (trainer previews). */
void unet_image_view_set_grey8(UnetImageView *view, const guint8 *data, int width, int height);
/* Class mask: 0 black; with classes {0, 1} only, 1 white; otherwise label colours. */
void unet_image_view_set_labels(UnetImageView *view, const gint32 *labels, int width, int height);
/* Float map through the colour map, [lo, hi] (lo >= hi: data range), with a
 * colour bar titled `title` (may be NULL) at the right. */
void unet_image_view_set_map(UnetImageView *view, const float *data, int width, int height, double lo, double hi,
                             const char *title);
void unet_image_view_set_colormap(UnetImageView *view, UnetColormap map);

/* Mask drawn over the image: labels > 0 in label colours, at `opacity`.
 * NULL removes it. Must have the image's size. */
void unet_image_view_set_overlay(UnetImageView *view, const gint32 *labels, int width, int height);
void unet_image_view_set_overlay_opacity(UnetImageView *view, double opacity);
/* Colour of label 1 in overlays (the preference). */
void unet_image_view_set_overlay_color(UnetImageView *view, const GdkRGBA *color);

/* Links this view to others: they share zoom, pan and hovered pixel. */
void unet_image_view_set_transform(UnetImageView *view, UnetViewTransform *transform);
UnetViewTransform *unet_image_view_get_transform(UnetImageView *view);

gboolean unet_image_view_get_image_size(UnetImageView *view, int *width, int *height);
/* The data shown: planar floats of set_image/set_map (channels 1 or 3, NULL
 * otherwise), the class mask of set_labels, the overlay (NULL when none). */
const float *unet_image_view_get_values(UnetImageView *view, int *width, int *height, int *channels);
const gint32 *unet_image_view_get_labels(UnetImageView *view, int *width, int *height);
const gint32 *unet_image_view_get_overlay(UnetImageView *view);

/* Text for the pixel's value ("0.532", "R 12 G 40 B 3", "class 1", with the
 * overlay's class appended); NULL outside the image. Free with g_free. */
char *unet_image_view_describe_pixel(UnetImageView *view, int x, int y);

/* Zoom by factor about the view centre or about widget point (wx, wy). */
void unet_image_view_zoom(UnetImageView *view, double factor);
void unet_image_view_zoom_at(UnetImageView *view, double factor, double wx, double wy);
void unet_image_view_zoom_fit(UnetImageView *view);

/* Widget point to image coordinates (continuous); FALSE when no image. */
gboolean unet_image_view_widget_to_image(UnetImageView *view, double wx, double wy, double *ix, double *iy);

/* Signal "pixel-hovered" (int x, int y): the image pixel under the pointer,
 * or (-1, -1) when the pointer leaves the image. */

G_END_DECLS

#endif
