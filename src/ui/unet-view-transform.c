/* unet-view-transform.c - shared zoom/pan/hover state of linked image views. */
#include "unet-view-transform.h"

struct _UnetViewTransform {
    GObject parent_instance;
    gboolean fit;
    double scale, cx, cy;
    int hover_x, hover_y;
};

enum { SIGNAL_CHANGED, SIGNAL_HOVER_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(UnetViewTransform, unet_view_transform, G_TYPE_OBJECT)

static void unet_view_transform_class_init(UnetViewTransformClass *klass)
{
    signals[SIGNAL_CHANGED] = g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                           NULL, NULL, G_TYPE_NONE, 0);
    signals[SIGNAL_HOVER_CHANGED] = g_signal_new("hover-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                                 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void unet_view_transform_init(UnetViewTransform *t)
{
    t->fit = TRUE;
    t->scale = 1;
    t->hover_x = t->hover_y = -1;
}

UnetViewTransform *unet_view_transform_new(void)
{
    return g_object_new(UNET_TYPE_VIEW_TRANSFORM, NULL);
}

gboolean unet_view_transform_get_fit(UnetViewTransform *t)
{
    g_return_val_if_fail(UNET_IS_VIEW_TRANSFORM(t), TRUE);
    return t->fit;
}

void unet_view_transform_set_fit(UnetViewTransform *t)
{
    g_return_if_fail(UNET_IS_VIEW_TRANSFORM(t));
    if (t->fit)
        return;
    t->fit = TRUE;
    g_signal_emit(t, signals[SIGNAL_CHANGED], 0);
}

void unet_view_transform_set_view(UnetViewTransform *t, double scale, double cx, double cy)
{
    g_return_if_fail(UNET_IS_VIEW_TRANSFORM(t));
    scale = CLAMP(scale, UNET_VIEW_MIN_SCALE, UNET_VIEW_MAX_SCALE);
    if (!t->fit && t->scale == scale && t->cx == cx && t->cy == cy)
        return;
    t->fit = FALSE;
    t->scale = scale;
    t->cx = cx;
    t->cy = cy;
    g_signal_emit(t, signals[SIGNAL_CHANGED], 0);
}

void unet_view_transform_get_view(UnetViewTransform *t, double *scale, double *cx, double *cy)
{
    g_return_if_fail(UNET_IS_VIEW_TRANSFORM(t));
    *scale = t->scale;
    *cx = t->cx;
    *cy = t->cy;
}

void unet_view_transform_set_hover(UnetViewTransform *t, int x, int y)
{
    g_return_if_fail(UNET_IS_VIEW_TRANSFORM(t));
    if (t->hover_x == x && t->hover_y == y)
        return;
    t->hover_x = x;
    t->hover_y = y;
    g_signal_emit(t, signals[SIGNAL_HOVER_CHANGED], 0);
}

void unet_view_transform_get_hover(UnetViewTransform *t, int *x, int *y)
{
    g_return_if_fail(UNET_IS_VIEW_TRANSFORM(t));
    *x = t->hover_x;
    *y = t->hover_y;
}
