/* unet-image-view.c - UnetImageView: zoomable, pannable image with overlay,
 * colour map and colour bar, drawn with Cairo in snapshot. */
#include "unet-image-view.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#define COLORBAR_WIDTH 76
#define ZOOM_STEP 1.25

typedef enum BaseKind { BASE_NONE = 0, BASE_IMAGE, BASE_LABELS, BASE_MAP } BaseKind;

struct _UnetImageView {
    GtkWidget parent_instance;
    BaseKind kind;
    int width, height, channels;
    float *values;          /* BASE_IMAGE / BASE_MAP: planar floats */
    gint32 *labels;         /* BASE_LABELS */
    double lo, hi;          /* display range */
    char *map_title;
    UnetColormap colormap;
    cairo_surface_t *base;  /* RGB24, rendered from the data */
    gint32 *overlay_labels;
    cairo_surface_t *overlay; /* ARGB32 */
    double overlay_opacity;
    guint8 overlay_rgb[3];
    char *placeholder;
    UnetViewTransform *transform;
    gulong changed_id, hover_id;
    /* Pan in progress. */
    double drag_cx, drag_cy, drag_scale;
    /* Last pointer position, the centre of wheel zooming. */
    gboolean pointer_in;
    double pointer_x, pointer_y;
};

enum { SIGNAL_PIXEL_HOVERED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(UnetImageView, unet_image_view, GTK_TYPE_WIDGET)

/* ---- Rendering the data into surfaces ---- */

static void free_data(UnetImageView *view)
{
    g_clear_pointer(&view->values, g_free);
    g_clear_pointer(&view->labels, g_free);
    g_clear_pointer(&view->base, cairo_surface_destroy);
    g_clear_pointer(&view->map_title, g_free);
    view->kind = BASE_NONE;
}

static void data_range(const float *v, gsize n, double *lo, double *hi)
{
    double a = INFINITY, b = -INFINITY;
    for (gsize i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        a = MIN(a, v[i]);
        b = MAX(b, v[i]);
    }
    if (!(a <= b)) {
        a = 0;
        b = 1;
    }
    *lo = a;
    *hi = b;
}

static inline guint8 to_byte(double v, double lo, double hi)
{
    if (!(hi > lo))
        return 0;
    double t = (v - lo) / (hi - lo);
    if (!(t > 0))
        return 0;
    if (t >= 1)
        return 255;
    return (guint8)lrint(t * 255);
}

static gboolean labels_binary(const gint32 *labels, gsize n)
{
    for (gsize i = 0; i < n; i++)
        if (labels[i] != 0 && labels[i] != 1)
            return FALSE;
    return TRUE;
}

static void render_base(UnetImageView *view)
{
    g_clear_pointer(&view->base, cairo_surface_destroy);
    if (view->kind == BASE_NONE)
        return;
    int w = view->width, h = view->height;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_surface_flush(s);
    guint8 *pix = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    gsize plane = (gsize)w * h;
    gboolean binary = view->kind == BASE_LABELS && labels_binary(view->labels, plane);
    for (int y = 0; y < h; y++) {
        guint32 *row = (guint32 *)(pix + (gsize)y * stride);
        for (int x = 0; x < w; x++) {
            gsize i = (gsize)y * w + x;
            guint8 rgb[3];
            switch (view->kind) {
            case BASE_IMAGE:
                if (view->channels >= 3) {
                    for (int c = 0; c < 3; c++)
                        rgb[c] = to_byte(view->values[c * plane + i], view->lo, view->hi);
                } else {
                    rgb[0] = rgb[1] = rgb[2] = to_byte(view->values[i], view->lo, view->hi);
                }
                break;
            case BASE_MAP: {
                double v = view->values[i];
                double t = view->hi > view->lo ? (v - view->lo) / (view->hi - view->lo) : 0;
                unet_colormap_lookup(view->colormap, t, rgb);
                break;
            }
            case BASE_LABELS:
                if (binary) {
                    rgb[0] = rgb[1] = rgb[2] = view->labels[i] ? 255 : 0;
                } else {
                    unet_label_color(view->labels[i], NULL, rgb);
                }
                break;
            default:
                rgb[0] = rgb[1] = rgb[2] = 0;
            }
            row[x] = 0xff000000u | ((guint32)rgb[0] << 16) | ((guint32)rgb[1] << 8) | rgb[2];
        }
    }
    cairo_surface_mark_dirty(s);
    view->base = s;
}

static void render_overlay(UnetImageView *view)
{
    g_clear_pointer(&view->overlay, cairo_surface_destroy);
    if (!view->overlay_labels)
        return;
    int w = view->width, h = view->height;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_surface_flush(s);
    guint8 *pix = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < h; y++) {
        guint32 *row = (guint32 *)(pix + (gsize)y * stride);
        for (int x = 0; x < w; x++) {
            gint32 l = view->overlay_labels[(gsize)y * w + x];
            if (l <= 0) {
                row[x] = 0;
                continue;
            }
            guint8 rgb[3];
            unet_label_color(l, view->overlay_rgb, rgb);
            row[x] = 0xff000000u | ((guint32)rgb[0] << 16) | ((guint32)rgb[1] << 8) | rgb[2];
        }
    }
    cairo_surface_mark_dirty(s);
    view->overlay = s;
}

/* ---- Geometry ---- */

typedef struct Geometry {
    double area_w, area_h; /* image area (the colour bar takes the rest) */
    double scale, ox, oy;  /* widget = o + scale * image */
} Geometry;

static gboolean has_colorbar(UnetImageView *view, double widget_w)
{
    return view->kind == BASE_MAP && widget_w > 3 * COLORBAR_WIDTH;
}

static gboolean geometry(UnetImageView *view, Geometry *g)
{
    double w = gtk_widget_get_width(GTK_WIDGET(view)), h = gtk_widget_get_height(GTK_WIDGET(view));
    if (view->kind == BASE_NONE || w <= 0 || h <= 0)
        return FALSE;
    g->area_w = w - (has_colorbar(view, w) ? COLORBAR_WIDTH : 0);
    g->area_h = h;
    double scale, cx, cy;
    if (unet_view_transform_get_fit(view->transform)) {
        scale = MIN(g->area_w / view->width, g->area_h / view->height);
        cx = view->width / 2.0;
        cy = view->height / 2.0;
    } else {
        unet_view_transform_get_view(view->transform, &scale, &cx, &cy);
    }
    g->scale = scale;
    g->ox = g->area_w / 2 - cx * scale;
    g->oy = g->area_h / 2 - cy * scale;
    return TRUE;
}

gboolean unet_image_view_widget_to_image(UnetImageView *view, double wx, double wy, double *ix, double *iy)
{
    g_return_val_if_fail(UNET_IS_IMAGE_VIEW(view), FALSE);
    Geometry g;
    if (!geometry(view, &g))
        return FALSE;
    *ix = (wx - g.ox) / g.scale;
    *iy = (wy - g.oy) / g.scale;
    return TRUE;
}

/* ---- Drawing ---- */

static void draw_colorbar(UnetImageView *view, cairo_t *cr, double x0, double h, const GdkRGBA *fg)
{
    PangoLayout *pl = gtk_widget_create_pango_layout(GTK_WIDGET(view), NULL);
    pango_cairo_update_layout(cr, pl);
    int tw, th;
    pango_layout_set_text(pl, "0", -1);
    pango_layout_get_pixel_size(pl, &tw, &th);
    double top = 10 + (view->map_title ? th + 6 : 0), bottom = h - 10 - th / 2.0;
    double bx = x0 + 10, bw = 14;
    if (bottom - top < 20) {
        g_object_unref(pl);
        return;
    }
    int n = (int)(bottom - top);
    for (int i = 0; i < n; i++) {
        guint8 rgb[3];
        unet_colormap_lookup(view->colormap, 1.0 - (i + 0.5) / n, rgb);
        cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
        cairo_rectangle(cr, bx, top + i, bw, 1);
        cairo_fill(cr);
    }
    cairo_set_source_rgba(cr, fg->red, fg->green, fg->blue, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, round(bx) + 0.5, round(top) + 0.5, bw - 1, n - 1);
    cairo_stroke(cr);
    cairo_set_source_rgba(cr, fg->red, fg->green, fg->blue, 0.9);
    for (int k = 0; k <= 4; k++) {
        double t = k / 4.0;
        double v = view->lo + t * (view->hi - view->lo);
        double y = bottom - t * (bottom - top);
        char buf[32];
        if (v != 0 && (fabs(v) < 1e-2 || fabs(v) >= 1e5))
            g_snprintf(buf, sizeof buf, "%.1e", v);
        else
            g_snprintf(buf, sizeof buf, "%.3g", v);
        cairo_move_to(cr, bx + bw, round(y) + 0.5);
        cairo_line_to(cr, bx + bw + 4, round(y) + 0.5);
        cairo_stroke(cr);
        pango_layout_set_text(pl, buf, -1);
        cairo_move_to(cr, bx + bw + 6, y - th / 2.0);
        pango_cairo_show_layout(cr, pl);
    }
    if (view->map_title) {
        pango_layout_set_text(pl, view->map_title, -1);
        pango_layout_set_width(pl, (COLORBAR_WIDTH - 8) * PANGO_SCALE);
        pango_layout_set_ellipsize(pl, PANGO_ELLIPSIZE_END);
        cairo_move_to(cr, x0 + 4, 6);
        pango_cairo_show_layout(cr, pl);
    }
    g_object_unref(pl);
}

static void widget_fg(GtkWidget *w, GdkRGBA *fg)
{
#if GTK_CHECK_VERSION(4, 10, 0)
    gtk_widget_get_color(w, fg);
#else
    gtk_style_context_get_color(gtk_widget_get_style_context(w), fg);
#endif
}

static void unet_image_view_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
    UnetImageView *view = UNET_IMAGE_VIEW(widget);
    int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
    if (w <= 0 || h <= 0)
        return;
    GdkRGBA fg;
    widget_fg(widget, &fg);
    cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
    Geometry g;
    if (!geometry(view, &g)) {
        if (view->placeholder) {
            PangoLayout *pl = gtk_widget_create_pango_layout(widget, view->placeholder);
            pango_cairo_update_layout(cr, pl);
            pango_layout_set_width(pl, (w - 24) * PANGO_SCALE);
            pango_layout_set_alignment(pl, PANGO_ALIGN_CENTER);
            pango_layout_set_wrap(pl, PANGO_WRAP_WORD_CHAR);
            int tw, th;
            pango_layout_get_pixel_size(pl, &tw, &th);
            cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.55);
            cairo_move_to(cr, 12, (h - th) / 2.0);
            pango_cairo_show_layout(cr, pl);
            g_object_unref(pl);
        }
        cairo_destroy(cr);
        return;
    }
    cairo_save(cr);
    cairo_rectangle(cr, 0, 0, g.area_w, g.area_h);
    cairo_clip(cr);
    cairo_translate(cr, g.ox, g.oy);
    cairo_scale(cr, g.scale, g.scale);
    /* Crisp pixels when magnified, smooth when reduced. */
    cairo_filter_t filter = g.scale >= 1 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD;
    cairo_set_source_surface(cr, view->base, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), filter);
    cairo_rectangle(cr, 0, 0, view->width, view->height);
    cairo_fill(cr);
    if (view->overlay && view->overlay_opacity > 0) {
        cairo_set_source_surface(cr, view->overlay, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), filter);
        cairo_rectangle(cr, 0, 0, view->width, view->height);
        cairo_clip(cr);
        cairo_paint_with_alpha(cr, view->overlay_opacity);
    }
    cairo_restore(cr);

    /* The pixel hovered in any linked view. */
    int hx, hy;
    unet_view_transform_get_hover(view->transform, &hx, &hy);
    if (hx >= 0 && hy >= 0 && hx < view->width && hy < view->height) {
        double px = g.ox + hx * g.scale, py = g.oy + hy * g.scale, s = MAX(g.scale, 1.0);
        cairo_set_line_width(cr, 1);
        cairo_set_source_rgba(cr, 1, 0.85, 0, 0.95);
        if (g.scale >= 6) {
            cairo_rectangle(cr, px + 0.5, py + 0.5, s - 1, s - 1);
        } else {
            double cx = px + s / 2, cy = py + s / 2;
            cairo_move_to(cr, cx - 8, cy);
            cairo_line_to(cr, cx - 3, cy);
            cairo_move_to(cr, cx + 3, cy);
            cairo_line_to(cr, cx + 8, cy);
            cairo_move_to(cr, cx, cy - 8);
            cairo_line_to(cr, cx, cy - 3);
            cairo_move_to(cr, cx, cy + 3);
            cairo_line_to(cr, cx, cy + 8);
        }
        cairo_stroke(cr);
    }
    if (has_colorbar(view, w))
        draw_colorbar(view, cr, g.area_w, h, &fg);
    cairo_destroy(cr);
}

/* ---- Input ---- */

void unet_image_view_zoom_at(UnetImageView *view, double factor, double wx, double wy)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    Geometry g;
    if (!geometry(view, &g) || !(factor > 0))
        return;
    /* Keep the image point under (wx, wy) in place. */
    double ix = (wx - g.ox) / g.scale, iy = (wy - g.oy) / g.scale;
    double s = CLAMP(g.scale * factor, UNET_VIEW_MIN_SCALE, UNET_VIEW_MAX_SCALE);
    double cx = ix - (wx - g.area_w / 2) / s, cy = iy - (wy - g.area_h / 2) / s;
    unet_view_transform_set_view(view->transform, s, cx, cy);
}

void unet_image_view_zoom(UnetImageView *view, double factor)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    Geometry g;
    if (!geometry(view, &g))
        return;
    unet_image_view_zoom_at(view, factor, g.area_w / 2, g.area_h / 2);
}

void unet_image_view_zoom_fit(UnetImageView *view)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    unet_view_transform_set_fit(view->transform);
}

static gboolean on_scroll(GtkEventControllerScroll *c, double dx, double dy, UnetImageView *view)
{
    double wx = view->pointer_x, wy = view->pointer_y;
    if (!view->pointer_in) {
        wx = gtk_widget_get_width(GTK_WIDGET(view)) / 2.0;
        wy = gtk_widget_get_height(GTK_WIDGET(view)) / 2.0;
    }
    if (dy != 0)
        unet_image_view_zoom_at(view, pow(ZOOM_STEP, -dy), wx, wy);
    return TRUE;
}

static void on_drag_begin(GtkGestureDrag *gesture, double x, double y, UnetImageView *view)
{
    Geometry g;
    if (!geometry(view, &g)) {
        gtk_gesture_set_state(GTK_GESTURE(gesture), GTK_EVENT_SEQUENCE_DENIED);
        return;
    }
    view->drag_scale = g.scale;
    view->drag_cx = (g.area_w / 2 - g.ox) / g.scale;
    view->drag_cy = (g.area_h / 2 - g.oy) / g.scale;
    gtk_widget_grab_focus(GTK_WIDGET(view));
}

static void on_drag_update(GtkGestureDrag *gesture, double dx, double dy, UnetImageView *view)
{
    if (view->drag_scale <= 0)
        return;
    unet_view_transform_set_view(view->transform, view->drag_scale, view->drag_cx - dx / view->drag_scale,
                                 view->drag_cy - dy / view->drag_scale);
}

static void on_drag_end(GtkGestureDrag *gesture, double dx, double dy, UnetImageView *view)
{
    view->drag_scale = 0;
}

static void on_click(GtkGestureClick *gesture, int n_press, double x, double y, UnetImageView *view)
{
    if (n_press == 2)
        unet_image_view_zoom_fit(view);
}

static void report_hover(UnetImageView *view, double wx, double wy)
{
    double ix, iy;
    int px = -1, py = -1;
    if (unet_image_view_widget_to_image(view, wx, wy, &ix, &iy) && ix >= 0 && iy >= 0 && ix < view->width &&
        iy < view->height) {
        px = (int)ix;
        py = (int)iy;
    }
    unet_view_transform_set_hover(view->transform, px, py);
    g_signal_emit(view, signals[SIGNAL_PIXEL_HOVERED], 0, px, py);
}

static void on_motion(GtkEventControllerMotion *c, double x, double y, UnetImageView *view)
{
    view->pointer_in = TRUE;
    view->pointer_x = x;
    view->pointer_y = y;
    report_hover(view, x, y);
}

static void on_leave(GtkEventControllerMotion *c, UnetImageView *view)
{
    view->pointer_in = FALSE;
    unet_view_transform_set_hover(view->transform, -1, -1);
    g_signal_emit(view, signals[SIGNAL_PIXEL_HOVERED], 0, -1, -1);
}

static gboolean on_key(GtkEventControllerKey *c, guint keyval, guint keycode, GdkModifierType state,
                       UnetImageView *view)
{
    if (state & (GDK_CONTROL_MASK | GDK_ALT_MASK))
        return FALSE;
    Geometry g;
    double step = 40;
    switch (keyval) {
    case GDK_KEY_plus:
    case GDK_KEY_equal:
    case GDK_KEY_KP_Add:
        unet_image_view_zoom(view, ZOOM_STEP);
        return TRUE;
    case GDK_KEY_minus:
    case GDK_KEY_KP_Subtract:
        unet_image_view_zoom(view, 1 / ZOOM_STEP);
        return TRUE;
    case GDK_KEY_0:
    case GDK_KEY_KP_0:
        unet_image_view_zoom_fit(view);
        return TRUE;
    case GDK_KEY_1:
    case GDK_KEY_KP_1:
        if (geometry(view, &g))
            unet_image_view_zoom(view, 1.0 / g.scale);
        return TRUE;
    case GDK_KEY_Left:
    case GDK_KEY_Right:
    case GDK_KEY_Up:
    case GDK_KEY_Down:
        if (!geometry(view, &g))
            return FALSE;
        {
            double cx = (g.area_w / 2 - g.ox) / g.scale, cy = (g.area_h / 2 - g.oy) / g.scale;
            double d = step / g.scale;
            cx += keyval == GDK_KEY_Left ? -d : keyval == GDK_KEY_Right ? d : 0;
            cy += keyval == GDK_KEY_Up ? -d : keyval == GDK_KEY_Down ? d : 0;
            unet_view_transform_set_view(view->transform, g.scale, cx, cy);
        }
        return TRUE;
    default:
        return FALSE;
    }
}

/* ---- Public API ---- */

GtkWidget *unet_image_view_new(void)
{
    return g_object_new(UNET_TYPE_IMAGE_VIEW, NULL);
}

static void changed(UnetImageView *view)
{
    gtk_widget_queue_draw(GTK_WIDGET(view));
}

void unet_image_view_clear(UnetImageView *view)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    free_data(view);
    g_clear_pointer(&view->overlay_labels, g_free);
    g_clear_pointer(&view->overlay, cairo_surface_destroy);
    view->width = view->height = 0;
    changed(view);
}

void unet_image_view_set_placeholder(UnetImageView *view, const char *text)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    g_free(view->placeholder);
    view->placeholder = g_strdup(text);
    changed(view);
}

static gboolean check_size(int width, int height)
{
    return width > 0 && height > 0 && width <= 65536 && height <= 65536;
}

/* A new image of another size invalidates the overlay. */
static void set_size(UnetImageView *view, int width, int height)
{
    if (view->overlay_labels && (view->width != width || view->height != height)) {
        g_clear_pointer(&view->overlay_labels, g_free);
        g_clear_pointer(&view->overlay, cairo_surface_destroy);
    }
    view->width = width;
    view->height = height;
}

void unet_image_view_set_image(UnetImageView *view, const float *data, int width, int height, int channels,
                               double lo, double hi)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    g_return_if_fail(data && check_size(width, height) && channels >= 1 && channels <= 4);
    free_data(view);
    set_size(view, width, height);
    int shown = channels >= 3 ? 3 : 1;
    gsize n = (gsize)width * height * shown;
    view->values = g_memdup2(data, n * sizeof(float));
    view->channels = shown;
    view->kind = BASE_IMAGE;
    if (!(hi > lo))
        data_range(view->values, n, &lo, &hi);
    view->lo = lo;
    view->hi = hi;
    render_base(view);
    changed(view);
}

void unet_image_view_set_grey8(UnetImageView *view, const guint8 *data, int width, int height)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    g_return_if_fail(data && check_size(width, height));
    gsize n = (gsize)width * height;
    float *f = g_new(float, n);
    for (gsize i = 0; i < n; i++)
        f[i] = data[i];
    unet_image_view_set_image(view, f, width, height, 1, 0, 255);
    g_free(f);
}

void unet_image_view_set_labels(UnetImageView *view, const gint32 *labels, int width, int height)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    g_return_if_fail(labels && check_size(width, height));
    free_data(view);
    set_size(view, width, height);
    view->labels = g_memdup2(labels, (gsize)width * height * sizeof(gint32));
    view->channels = 1;
    view->kind = BASE_LABELS;
    render_base(view);
    changed(view);
}

void unet_image_view_set_map(UnetImageView *view, const float *data, int width, int height, double lo, double hi,
                             const char *title)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    g_return_if_fail(data && check_size(width, height));
    free_data(view);
    set_size(view, width, height);
    gsize n = (gsize)width * height;
    view->values = g_memdup2(data, n * sizeof(float));
    view->channels = 1;
    view->kind = BASE_MAP;
    view->map_title = g_strdup(title);
    if (!(hi > lo))
        data_range(view->values, n, &lo, &hi);
    view->lo = lo;
    view->hi = hi;
    render_base(view);
    changed(view);
}

void unet_image_view_set_colormap(UnetImageView *view, UnetColormap map)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    if (view->colormap == map)
        return;
    view->colormap = map;
    if (view->kind == BASE_MAP)
        render_base(view);
    changed(view);
}

void unet_image_view_set_overlay(UnetImageView *view, const gint32 *labels, int width, int height)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    g_clear_pointer(&view->overlay_labels, g_free);
    g_clear_pointer(&view->overlay, cairo_surface_destroy);
    if (labels) {
        g_return_if_fail(view->kind != BASE_NONE && width == view->width && height == view->height);
        view->overlay_labels = g_memdup2(labels, (gsize)width * height * sizeof(gint32));
        render_overlay(view);
    }
    changed(view);
}

void unet_image_view_set_overlay_opacity(UnetImageView *view, double opacity)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    view->overlay_opacity = CLAMP(opacity, 0.0, 1.0);
    changed(view);
}

void unet_image_view_set_overlay_color(UnetImageView *view, const GdkRGBA *color)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    view->overlay_rgb[0] = (guint8)lround(CLAMP(color->red, 0, 1) * 255);
    view->overlay_rgb[1] = (guint8)lround(CLAMP(color->green, 0, 1) * 255);
    view->overlay_rgb[2] = (guint8)lround(CLAMP(color->blue, 0, 1) * 255);
    render_overlay(view);
    changed(view);
}

static void on_transform_changed(UnetViewTransform *t, UnetImageView *view)
{
    gtk_widget_queue_draw(GTK_WIDGET(view));
}

void unet_image_view_set_transform(UnetImageView *view, UnetViewTransform *transform)
{
    g_return_if_fail(UNET_IS_IMAGE_VIEW(view));
    g_return_if_fail(UNET_IS_VIEW_TRANSFORM(transform));
    if (view->transform == transform)
        return;
    if (view->transform) {
        g_signal_handler_disconnect(view->transform, view->changed_id);
        g_signal_handler_disconnect(view->transform, view->hover_id);
        g_object_unref(view->transform);
    }
    view->transform = g_object_ref(transform);
    view->changed_id = g_signal_connect(transform, "changed", G_CALLBACK(on_transform_changed), view);
    view->hover_id = g_signal_connect(transform, "hover-changed", G_CALLBACK(on_transform_changed), view);
    changed(view);
}

UnetViewTransform *unet_image_view_get_transform(UnetImageView *view)
{
    g_return_val_if_fail(UNET_IS_IMAGE_VIEW(view), NULL);
    return view->transform;
}

gboolean unet_image_view_get_image_size(UnetImageView *view, int *width, int *height)
{
    g_return_val_if_fail(UNET_IS_IMAGE_VIEW(view), FALSE);
    if (view->kind == BASE_NONE)
        return FALSE;
    *width = view->width;
    *height = view->height;
    return TRUE;
}

const float *unet_image_view_get_values(UnetImageView *view, int *width, int *height, int *channels)
{
    g_return_val_if_fail(UNET_IS_IMAGE_VIEW(view), NULL);
    if (width)
        *width = view->width;
    if (height)
        *height = view->height;
    if (channels)
        *channels = view->values ? view->channels : 0;
    return view->values;
}

const gint32 *unet_image_view_get_labels(UnetImageView *view, int *width, int *height)
{
    g_return_val_if_fail(UNET_IS_IMAGE_VIEW(view), NULL);
    if (width)
        *width = view->width;
    if (height)
        *height = view->height;
    return view->labels;
}

const gint32 *unet_image_view_get_overlay(UnetImageView *view)
{
    g_return_val_if_fail(UNET_IS_IMAGE_VIEW(view), NULL);
    return view->overlay_labels;
}

char *unet_image_view_describe_pixel(UnetImageView *view, int x, int y)
{
    g_return_val_if_fail(UNET_IS_IMAGE_VIEW(view), NULL);
    if (view->kind == BASE_NONE || x < 0 || y < 0 || x >= view->width || y >= view->height)
        return NULL;
    gsize i = (gsize)y * view->width + x, plane = (gsize)view->width * view->height;
    GString *s = g_string_new(NULL);
    switch (view->kind) {
    case BASE_IMAGE:
        if (view->channels >= 3)
            g_string_printf(s, "R %.4g  G %.4g  B %.4g", view->values[i], view->values[plane + i],
                            view->values[2 * plane + i]);
        else
            g_string_printf(s, "%.4g", view->values[i]);
        break;
    case BASE_MAP:
        g_string_printf(s, "%.4g", view->values[i]);
        break;
    case BASE_LABELS:
        /* Translators: the class of a mask pixel. */
        g_string_printf(s, _("class %d"), view->labels[i]);
        break;
    default:
        break;
    }
    if (view->overlay_labels) {
        /* Translators: appended to a pixel value: the overlay mask's class there. */
        g_string_append_printf(s, _(", mask %d"), view->overlay_labels[i]);
    }
    return g_string_free(s, FALSE);
}

static void unet_image_view_measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                                    int *natural, int *minimum_baseline, int *natural_baseline)
{
    *minimum = 64;
    *natural = 320;
}

static void unet_image_view_dispose(GObject *object)
{
    UnetImageView *view = UNET_IMAGE_VIEW(object);
    if (view->transform) {
        g_signal_handler_disconnect(view->transform, view->changed_id);
        g_signal_handler_disconnect(view->transform, view->hover_id);
        g_clear_object(&view->transform);
    }
    G_OBJECT_CLASS(unet_image_view_parent_class)->dispose(object);
}

static void unet_image_view_finalize(GObject *object)
{
    UnetImageView *view = UNET_IMAGE_VIEW(object);
    free_data(view);
    g_free(view->overlay_labels);
    g_clear_pointer(&view->overlay, cairo_surface_destroy);
    g_free(view->placeholder);
    G_OBJECT_CLASS(unet_image_view_parent_class)->finalize(object);
}

static void unet_image_view_class_init(UnetImageViewClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_image_view_dispose;
    object_class->finalize = unet_image_view_finalize;
    widget_class->snapshot = unet_image_view_snapshot;
    widget_class->measure = unet_image_view_measure;
    gtk_widget_class_set_css_name(widget_class, "unetimageview");
    gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);

    signals[SIGNAL_PIXEL_HOVERED] = g_signal_new("pixel-hovered", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                                 NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_INT);
}

static void unet_image_view_init(UnetImageView *view)
{
    GtkWidget *w = GTK_WIDGET(view);
    gtk_widget_set_focusable(w, TRUE);
    gtk_widget_set_overflow(w, GTK_OVERFLOW_HIDDEN);
    view->overlay_opacity = 0.45;
    view->overlay_rgb[0] = 255;
    view->overlay_rgb[1] = 0;
    view->overlay_rgb[2] = 170;
    UnetViewTransform *t = unet_view_transform_new();
    unet_image_view_set_transform(view, t);
    g_object_unref(t);

    GtkEventController *scroll = gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
    g_signal_connect(scroll, "scroll", G_CALLBACK(on_scroll), view);
    gtk_widget_add_controller(w, scroll);

    GtkGesture *drag = gtk_gesture_drag_new();
    g_signal_connect(drag, "drag-begin", G_CALLBACK(on_drag_begin), view);
    g_signal_connect(drag, "drag-update", G_CALLBACK(on_drag_update), view);
    g_signal_connect(drag, "drag-end", G_CALLBACK(on_drag_end), view);
    gtk_widget_add_controller(w, GTK_EVENT_CONTROLLER(drag));

    GtkGesture *click = gtk_gesture_click_new();
    g_signal_connect(click, "pressed", G_CALLBACK(on_click), view);
    gtk_widget_add_controller(w, GTK_EVENT_CONTROLLER(click));

    GtkEventController *motion = gtk_event_controller_motion_new();
    g_signal_connect(motion, "motion", G_CALLBACK(on_motion), view);
    g_signal_connect(motion, "leave", G_CALLBACK(on_leave), view);
    gtk_widget_add_controller(w, motion);

    GtkEventController *key = gtk_event_controller_key_new();
    g_signal_connect(key, "key-pressed", G_CALLBACK(on_key), view);
    gtk_widget_add_controller(w, key);
}
