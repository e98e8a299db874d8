/* unet-colormap.c - colour map tables and label colours. */
#include "unet-colormap.h"

#include <math.h>
#include <string.h>

#include "colormap.h"
#include "unet-colormap-tables.h"

void unet_colormap_lookup(UnetColormap map, double t, guint8 rgb[3])
{
    if (isnan(t))
        t = 0;
    t = CLAMP(t, 0.0, 1.0);
    int i = (int)lround(t * 255.0);
    switch (map) {
    case UNET_COLORMAP_MAGMA:
        memcpy(rgb, unet_cmap_magma[i], 3);
        break;
    case UNET_COLORMAP_GREY:
        rgb[0] = rgb[1] = rgb[2] = (guint8)i;
        break;
    case UNET_COLORMAP_VIRIDIS:
    default:
        unet_colormap_viridis((float)t, rgb);
        break;
    }
}

static const char *const ids[] = { "viridis", "magma", "grey" };

const char *unet_colormap_id(UnetColormap map)
{
    return (unsigned)map < G_N_ELEMENTS(ids) ? ids[map] : ids[0];
}

gboolean unet_colormap_parse(const char *id, UnetColormap *map)
{
    for (unsigned i = 0; id && i < G_N_ELEMENTS(ids); i++) {
        if (!strcmp(id, ids[i])) {
            *map = (UnetColormap)i;
            return TRUE;
        }
    }
    return FALSE;
}

void unet_label_color(int label, const guint8 *first, guint8 rgb[3])
{
    /* Distinct, mostly saturated colours (Glasbey-like), cycled. */
    static const guint8 pal[][3] = {
        { 255, 0, 170 }, { 0, 200, 255 }, { 255, 200, 0 }, { 0, 220, 90 }, { 255, 90, 40 },
        { 140, 90, 255 }, { 0, 140, 120 }, { 200, 120, 255 }, { 180, 255, 60 }, { 255, 140, 180 },
    };
    if (label <= 0) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    if (label == 1 && first) {
        memcpy(rgb, first, 3);
        return;
    }
    memcpy(rgb, pal[(label - 1) % G_N_ELEMENTS(pal)], 3);
}
