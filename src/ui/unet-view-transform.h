/* unet-view-transform.h - UnetViewTransform: the zoom, pan and hovered pixel
 * that several UnetImageViews share, so image, mask and prediction move
 * together. */
#ifndef UNET_VIEW_TRANSFORM_H
#define UNET_VIEW_TRANSFORM_H

#include <glib-object.h>

G_BEGIN_DECLS

#define UNET_TYPE_VIEW_TRANSFORM (unet_view_transform_get_type())
G_DECLARE_FINAL_TYPE(UnetViewTransform, unet_view_transform, UNET, VIEW_TRANSFORM, GObject)

#define UNET_VIEW_MIN_SCALE (1.0 / 64)
#define UNET_VIEW_MAX_SCALE 64.0

/* Starts in fit mode: each view scales the whole image into its area. */
UnetViewTransform *unet_view_transform_new(void);

gboolean unet_view_transform_get_fit(UnetViewTransform *t);
void unet_view_transform_set_fit(UnetViewTransform *t);

/* Explicit view: `scale` screen pixels per image pixel (clamped to
 * UNET_VIEW_MIN_SCALE..UNET_VIEW_MAX_SCALE), image point (cx, cy) at the
 * centre of each view. Leaves fit mode. Emits "changed". */
void unet_view_transform_set_view(UnetViewTransform *t, double scale, double cx, double cy);
/* Only meaningful when not in fit mode. */
void unet_view_transform_get_view(UnetViewTransform *t, double *scale, double *cx, double *cy);

/* The image pixel under the pointer in any linked view (-1, -1: none);
 * emits "hover-changed". */
void unet_view_transform_set_hover(UnetViewTransform *t, int x, int y);
void unet_view_transform_get_hover(UnetViewTransform *t, int *x, int *y);

G_END_DECLS

#endif
