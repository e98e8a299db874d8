/* unet-colormap.h - colour maps for float images (viridis, magma, grey) and
 * the colours of class labels in masks and overlays. */
#ifndef UNET_UI_COLORMAP_H
#define UNET_UI_COLORMAP_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum UnetColormap {
    UNET_COLORMAP_VIRIDIS = 0,
    UNET_COLORMAP_MAGMA,
    UNET_COLORMAP_GREY,
} UnetColormap;

/* rgb of the map at t in [0, 1] (clamped; NaN gives the lowest colour). */
void unet_colormap_lookup(UnetColormap map, double t, guint8 rgb[3]);

/* "viridis", "magma", "grey"; parse returns FALSE for an unknown name. */
const char *unet_colormap_id(UnetColormap map);
gboolean unet_colormap_parse(const char *id, UnetColormap *map);

/* Colour of class `label` >= 1 in masks and overlays: label 1 gets `first`
 * (the preference colour) when given, the others a fixed palette of
 * distinct colours. Label 0 is background (black). */
void unet_label_color(int label, const guint8 *first, guint8 rgb[3]);

G_END_DECLS

#endif
