/* unet-plot.c - UnetPlot: live line chart drawn with Cairo, with min/max
 * bucket decimation kept up to date on append and redraws at frame rate. */
#include "unet-plot-private.h"

#include <cairo-svg.h>
#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

/* Buckets per series: a bucket keeps the leftmost, rightmost, lowest and
 * highest point of the x interval it covers, which is all a line drawn at
 * pixel resolution needs (M4 aggregation); 4096 buckets cover 2 per pixel of
 * any reasonable plot width. */
#define N_BUCKETS 4096

typedef struct Bucket {
    guint count;
    double u_first, u_last; /* leftmost and rightmost x (axis space) */
    double y_first, y_last; /* y at those points */
    double y_min, y_max;
    double y_min_pos;       /* smallest y > 0 (INFINITY: none), for log y */
} Bucket;

typedef struct Series {
    char *name;
    GdkRGBA color;
    double line_width;
    gboolean visible;
    GArray *x, *y;          /* raw points, in arrival order */
    gboolean sorted;        /* x never decreased */
    /* Buckets over [origin, origin + N_BUCKETS * width) in axis space. */
    Bucket *buckets;
    double origin, width;   /* width 0: all drawable points share one x so far */
    gsize n_drawable;       /* points in the buckets */
    /* Extents of drawable points (axis-space x, data y). */
    double u_min, u_max;
    double y_min, y_max, y_min_pos, y_max_pos;
} Series;

typedef struct Marker {
    double x;
    char *label;
    GdkRGBA color;
    gboolean has_color;
} Marker;

struct _UnetPlot {
    GtkWidget parent_instance;
    GPtrArray *series;      /* Series* */
    GArray *markers;        /* Marker */
    char *x_label, *y_label, *placeholder;
    gboolean log_x, log_y;
    gboolean manual_y, manual_x;
    double y_range[2], x_range[2];
    guint tick_id;
    guint draw_count;
    /* Hover read-out. */
    gboolean hover;
    double hover_wx, hover_wy;
};

G_DEFINE_FINAL_TYPE(UnetPlot, unet_plot, GTK_TYPE_WIDGET)

static const GdkRGBA palette[] = {
    { 0.11, 0.44, 0.85, 1 }, /* blue */
    { 0.90, 0.38, 0.00, 1 }, /* orange */
    { 0.18, 0.62, 0.29, 1 }, /* green */
    { 0.75, 0.11, 0.16, 1 }, /* red */
    { 0.57, 0.25, 0.67, 1 }, /* purple */
    { 0.55, 0.42, 0.24, 1 }, /* brown */
};

/* ---- Axis space ---- */

static gboolean x_to_axis(const UnetPlot *plot, double x, double *u)
{
    if (!isfinite(x))
        return FALSE;
    if (plot->log_x) {
        if (x <= 0)
            return FALSE;
        *u = log10(x);
    } else {
        *u = x;
    }
    return TRUE;
}

/* ---- Buckets ---- */

static void bucket_clear(Bucket *b)
{
    memset(b, 0, sizeof *b);
    b->y_min_pos = INFINITY;
}

static void bucket_add(Bucket *b, double u, double y)
{
    if (b->count == 0) {
        b->u_first = b->u_last = u;
        b->y_first = b->y_last = y;
        b->y_min = b->y_max = y;
    } else {
        if (u < b->u_first) {
            b->u_first = u;
            b->y_first = y;
        }
        if (u >= b->u_last) {
            b->u_last = u;
            b->y_last = y;
        }
        b->y_min = MIN(b->y_min, y);
        b->y_max = MAX(b->y_max, y);
    }
    if (y > 0 && y < b->y_min_pos)
        b->y_min_pos = y;
    b->count++;
}

static void bucket_merge(Bucket *dst, const Bucket *a, const Bucket *b)
{
    if (!a->count) {
        *dst = *b;
        return;
    }
    if (!b->count) {
        *dst = *a;
        return;
    }
    Bucket r = *a;
    if (b->u_first < r.u_first) {
        r.u_first = b->u_first;
        r.y_first = b->y_first;
    }
    if (b->u_last >= r.u_last) {
        r.u_last = b->u_last;
        r.y_last = b->y_last;
    }
    r.y_min = MIN(a->y_min, b->y_min);
    r.y_max = MAX(a->y_max, b->y_max);
    r.y_min_pos = MIN(a->y_min_pos, b->y_min_pos);
    r.count = a->count + b->count;
    *dst = r;
}

static void series_reset_buckets(Series *s)
{
    for (int i = 0; i < N_BUCKETS; i++)
        bucket_clear(&s->buckets[i]);
    s->n_drawable = 0;
    s->width = 0;
    s->origin = 0;
    s->u_min = s->y_min = s->y_min_pos = INFINITY;
    s->u_max = s->y_max = s->y_max_pos = -INFINITY;
}

static void series_insert(UnetPlot *plot, Series *s, double u, double y);

/* Lays the buckets over the drawable points with room on both sides, so
 * growth either way needs a rebuild or a pair merge only after the span
 * has grown by a constant factor (amortised O(1) per append). */
static void series_rebuild(UnetPlot *plot, Series *s)
{
    double lo = INFINITY, hi = -INFINITY;
    const double *xs = (const double *)s->x->data, *ys = (const double *)s->y->data;
    for (guint i = 0; i < s->x->len; i++) {
        double u;
        if (!isfinite(ys[i]) || !x_to_axis(plot, xs[i], &u))
            continue;
        lo = MIN(lo, u);
        hi = MAX(hi, u);
    }
    series_reset_buckets(s);
    if (!(lo <= hi))
        return;
    double span = hi - lo;
    if (span > 0) {
        s->origin = lo - 0.25 * span;
        s->width = 1.5 * span / N_BUCKETS;
    } else {
        s->origin = lo;
        s->width = 0;
    }
    for (guint i = 0; i < s->x->len; i++) {
        double u;
        if (!isfinite(ys[i]) || !x_to_axis(plot, xs[i], &u))
            continue;
        series_insert(plot, s, u, ys[i]);
    }
}

static void series_merge_pairs(Series *s)
{
    for (int i = 0; i < N_BUCKETS / 2; i++)
        bucket_merge(&s->buckets[i], &s->buckets[2 * i], &s->buckets[2 * i + 1]);
    for (int i = N_BUCKETS / 2; i < N_BUCKETS; i++)
        bucket_clear(&s->buckets[i]);
    s->width *= 2;
}

static void series_insert(UnetPlot *plot, Series *s, double u, double y)
{
    if (s->n_drawable > 0 && s->width == 0 && u != s->origin) {
        /* The second distinct x: now the buckets get a width. Rebuild reads
         * the raw arrays, which already hold this point. */
        series_rebuild(plot, s);
        return;
    }
    if (s->width > 0 && u < s->origin) {
        series_rebuild(plot, s);
        return;
    }
    if (s->n_drawable == 0 && s->width == 0)
        s->origin = u;
    int idx = 0;
    if (s->width > 0) {
        while (u >= s->origin + N_BUCKETS * s->width)
            series_merge_pairs(s);
        idx = (int)((u - s->origin) / s->width);
        idx = CLAMP(idx, 0, N_BUCKETS - 1);
    }
    bucket_add(&s->buckets[idx], u, y);
    s->n_drawable++;
    s->u_min = MIN(s->u_min, u);
    s->u_max = MAX(s->u_max, u);
    s->y_min = MIN(s->y_min, y);
    s->y_max = MAX(s->y_max, y);
    if (y > 0) {
        s->y_min_pos = MIN(s->y_min_pos, y);
        s->y_max_pos = MAX(s->y_max_pos, y);
    }
}

static void series_free(gpointer data)
{
    Series *s = data;
    g_free(s->name);
    g_array_unref(s->x);
    g_array_unref(s->y);
    g_free(s->buckets);
    g_free(s);
}

static Series *get_series(UnetPlot *plot, int series)
{
    g_return_val_if_fail(series >= 0 && (guint)series < plot->series->len, NULL);
    return g_ptr_array_index(plot->series, series);
}

/* ---- Ticks ---- */

static const char *superscript_digit(int d)
{
    static const char *const sup[] = { "⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹" };
    return sup[d];
}

void unet_plot_format_power(int k, char *buf, gsize size)
{
    if (k == 0) {
        g_strlcpy(buf, "1", size);
        return;
    }
    if (k == 1) {
        g_strlcpy(buf, "10", size);
        return;
    }
    GString *s = g_string_new("10");
    if (k < 0)
        g_string_append(s, "⁻");
    char digits[16];
    g_snprintf(digits, sizeof digits, "%d", ABS(k));
    for (const char *p = digits; *p; p++)
        g_string_append(s, superscript_digit(*p - '0'));
    g_strlcpy(buf, s->str, size);
    g_string_free(s, TRUE);
}

void unet_plot_format_linear(double value, double step, char *buf, gsize size)
{
    if (fabs(value) < step * 1e-6)
        value = 0;
    double mag = fabs(value);
    int step_exp = (int)floor(log10(step) + 1e-9);
    if (value != 0 && (mag >= 1e6 || step_exp < -4)) {
        /* m×10ᵏ with k the exponent of the value's leading digit. */
        int k = (int)floor(log10(mag));
        int decimals = MAX(0, k - step_exp);
        decimals = MIN(decimals, 6);
        char mant[32], pw[24];
        g_snprintf(mant, sizeof mant, "%.*f", decimals, value / pow(10, k));
        unet_plot_format_power(k, pw, sizeof pw);
        g_snprintf(buf, size, "%s×%s", mant, pw);
        return;
    }
    int decimals = MAX(0, -step_exp);
    g_snprintf(buf, size, "%.*f", decimals, value);
}

static double nice_step(double raw)
{
    double mag = pow(10, floor(log10(raw)));
    double norm = raw / mag;
    double f = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
    return f * mag;
}

static int linear_ticks(double lo, double hi, int target, UnetPlotTick *ticks, int max_ticks)
{
    if (!(hi > lo) || target < 1)
        return 0;
    double step = nice_step((hi - lo) / target);
    int n = 0;
    double first = ceil(lo / step - 1e-9);
    for (double i = first; n < max_ticks; i++) {
        double v = i * step;
        if (v > hi + step * 1e-9)
            break;
        ticks[n].value = v;
        ticks[n].major = TRUE;
        unet_plot_format_linear(v, step, ticks[n].label, sizeof ticks[n].label);
        n++;
    }
    return n;
}

int unet_plot_compute_ticks(double lo, double hi, gboolean log_axis, int target, UnetPlotTick *ticks,
                            int max_ticks)
{
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi) || max_ticks < 1)
        return 0;
    target = MAX(target, 1);
    if (!log_axis)
        return linear_ticks(lo, hi, target, ticks, max_ticks);

    double decades = hi - lo;
    int k0 = (int)ceil(lo - 1e-9), k1 = (int)floor(hi + 1e-9);
    int n = 0;
    if (k1 - k0 + 1 >= 2) {
        int kstep = MAX(1, (int)ceil((k1 - k0 + 1) / (double)(target + 1)));
        gboolean minor = decades <= 8 && kstep == 1;
        for (int k = (int)floor(lo) ; k <= k1 && n < max_ticks; k++) {
            if (k >= k0 && (k % kstep) == 0) {
                ticks[n].value = k;
                ticks[n].major = TRUE;
                unet_plot_format_power(k, ticks[n].label, sizeof ticks[n].label);
                n++;
            }
            for (int m = 2; minor && m <= 9 && n < max_ticks; m++) {
                double v = k + log10(m);
                if (v < lo - 1e-9 || v > hi + 1e-9)
                    continue;
                ticks[n].value = v;
                ticks[n].major = FALSE;
                ticks[n].label[0] = '\0';
                n++;
            }
        }
        return n;
    }
    /* Under two decades labelled: 1-2-5 multiples, else every multiple
     * 1..9, else linear ticks in data space. */
    static const int m125[] = { 1, 2, 5 }, m19[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    for (int pass = 0; pass < 2; pass++) {
        const int *mult = pass ? m19 : m125;
        int nm = pass ? 9 : 3;
        n = 0;
        for (int k = (int)floor(lo) - 1; k <= (int)ceil(hi) && n < max_ticks; k++) {
            for (int j = 0; j < nm && n < max_ticks; j++) {
                double v = k + log10(mult[j]);
                if (v < lo - 1e-9 || v > hi + 1e-9)
                    continue;
                ticks[n].value = v;
                ticks[n].major = TRUE;
                if (mult[j] == 1)
                    unet_plot_format_power(k, ticks[n].label, sizeof ticks[n].label);
                else
                    unet_plot_format_linear(mult[j] * pow(10, k), pow(10, k), ticks[n].label, sizeof ticks[n].label);
                n++;
            }
        }
        if (n >= 3 || (pass == 1 && n >= 2))
            return n;
    }
    UnetPlotTick lin[UNET_PLOT_MAX_TICKS];
    int m = linear_ticks(pow(10, lo), pow(10, hi), target, lin, MIN(max_ticks, UNET_PLOT_MAX_TICKS));
    n = 0;
    for (int i = 0; i < m; i++) {
        if (lin[i].value <= 0)
            continue;
        ticks[n] = lin[i];
        ticks[n].value = log10(lin[i].value);
        n++;
    }
    return n;
}

/* ---- Layout ---- */

typedef struct Style {
    GdkRGBA fg;
    GdkRGBA bg;          /* alpha 0: leave the widget background */
    GdkRGBA window_bg;   /* the theme's window colour, for boxes drawn over the data */
    const PangoFontDescription *font;
} Style;

typedef struct Layout {
    double width, height;
    double left, right, top, bottom; /* plot area in widget pixels */
    double ux0, ux1, uy0, uy1;       /* view in axis space */
    gboolean empty;
} Layout;

static gboolean y_to_axis(const UnetPlot *plot, double y, double *v)
{
    if (!isfinite(y))
        return FALSE;
    if (plot->log_y) {
        if (y <= 0)
            return FALSE;
        *v = log10(y);
    } else {
        *v = y;
    }
    return TRUE;
}

static void compute_ranges(UnetPlot *plot, Layout *lay)
{
    double ux0 = INFINITY, ux1 = -INFINITY, vy0 = INFINITY, vy1 = -INFINITY;
    for (guint i = 0; i < plot->series->len; i++) {
        Series *s = g_ptr_array_index(plot->series, i);
        if (!s->visible || !s->n_drawable)
            continue;
        ux0 = MIN(ux0, s->u_min);
        ux1 = MAX(ux1, s->u_max);
        if (plot->log_y) {
            if (s->y_max_pos > 0) {
                vy0 = MIN(vy0, log10(s->y_min_pos));
                vy1 = MAX(vy1, log10(s->y_max_pos));
            }
        } else {
            vy0 = MIN(vy0, s->y_min);
            vy1 = MAX(vy1, s->y_max);
        }
    }
    if (plot->manual_x) {
        double a, b;
        if (x_to_axis(plot, plot->x_range[0], &a) && x_to_axis(plot, plot->x_range[1], &b)) {
            ux0 = a;
            ux1 = b;
        }
    }
    lay->empty = !(ux0 <= ux1) || !(vy0 <= vy1);
    if (lay->empty) {
        ux0 = 0;
        ux1 = 1;
        vy0 = 0;
        vy1 = 1;
    }
    if (ux1 == ux0) {
        ux0 -= 0.5;
        ux1 += 0.5;
    }
    if (vy1 == vy0) {
        double d = plot->log_y ? 0.5 : (vy0 != 0 ? fabs(vy0) * 0.1 : 1);
        vy0 -= d;
        vy1 += d;
    } else {
        double pad = 0.05 * (vy1 - vy0);
        vy0 -= pad;
        vy1 += pad;
    }
    if (plot->manual_y) {
        double a, b;
        if (y_to_axis(plot, plot->y_range[0], &a) && y_to_axis(plot, plot->y_range[1], &b)) {
            vy0 = a;
            vy1 = b;
        }
    }
    lay->ux0 = ux0;
    lay->ux1 = ux1;
    lay->uy0 = vy0;
    lay->uy1 = vy1;
}

static void text_size(PangoLayout *pl, const char *text, double *w, double *h)
{
    pango_layout_set_text(pl, text, -1);
    int pw, ph;
    pango_layout_get_pixel_size(pl, &pw, &ph);
    *w = pw;
    *h = ph;
}

static int tick_target(double pixels, double spacing)
{
    return MAX(2, (int)(pixels / spacing));
}

static void compute_layout(UnetPlot *plot, PangoLayout *pl, double width, double height, Layout *lay)
{
    lay->width = width;
    lay->height = height;
    compute_ranges(plot, lay);
    double tw, th;
    text_size(pl, "0", &tw, &th);
    /* y tick labels decide the left margin. */
    UnetPlotTick ticks[UNET_PLOT_MAX_TICKS];
    int n = unet_plot_compute_ticks(lay->uy0, lay->uy1, plot->log_y, tick_target(height, 3.5 * th), ticks,
                                    UNET_PLOT_MAX_TICKS);
    double label_w = 0;
    for (int i = 0; i < n; i++) {
        if (!ticks[i].major)
            continue;
        double w, h;
        text_size(pl, ticks[i].label, &w, &h);
        label_w = MAX(label_w, w);
    }
    lay->left = 8 + label_w + 6 + (plot->y_label ? th + 4 : 0);
    lay->right = width - 14;
    lay->top = 10;
    lay->bottom = height - (6 + th + 4 + (plot->x_label ? th + 2 : 0));
    if (lay->right < lay->left + 10)
        lay->right = lay->left + 10;
    if (lay->bottom < lay->top + 10)
        lay->bottom = lay->top + 10;
}

static inline double map_x(const Layout *l, double u)
{
    return l->left + (u - l->ux0) / (l->ux1 - l->ux0) * (l->right - l->left);
}

static inline double map_y(const Layout *l, double v)
{
    return l->bottom - (v - l->uy0) / (l->uy1 - l->uy0) * (l->bottom - l->top);
}

/* ---- Drawing ---- */

static void set_color(cairo_t *cr, const GdkRGBA *c, double alpha)
{
    cairo_set_source_rgba(cr, c->red, c->green, c->blue, c->alpha * alpha);
}

/* Pixel-column aggregation on the draw path: points (or buckets) come in x
 * order and are merged per pixel column into first, last, lowest and
 * highest point. */
typedef struct Column {
    long col;
    double xf, yf, xl, yl; /* screen coordinates */
    double top, bottom;    /* smallest and largest screen y */
    int count;
} Column;

typedef struct ColumnSet {
    GArray *cols;          /* Column */
} ColumnSet;

static void column_add(ColumnSet *set, double xf, double yf, double xl, double yl, double top, double bottom,
                       int count)
{
    long col = (long)floor(xf);
    if (set->cols->len) {
        Column *c = &g_array_index(set->cols, Column, set->cols->len - 1);
        if (c->col == col) {
            c->xl = xl;
            c->yl = yl;
            c->top = MIN(c->top, top);
            c->bottom = MAX(c->bottom, bottom);
            c->count += count;
            return;
        }
    }
    Column c = { col, xf, yf, xl, yl, top, bottom, count };
    g_array_append_val(set->cols, c);
}

/* Renders the columns: where data is dense (a column holds several points,
 * or follows one that does), each column is one filled bar from its lowest
 * to its highest point, joined to its left neighbour - what a stroked
 * polyline would cover at pixel resolution, for the cost of a rectangle.
 * Elsewhere the points are joined by a stroked polyline. */
static void columns_draw(const ColumnSet *set, cairo_t *cr, double lw)
{
    const Column *cols = (const Column *)set->cols->data;
    guint n = set->cols->len;
    /* Bars first, as one fill. */
    for (guint i = 0; i < n; i++) {
        const Column *c = &cols[i];
        gboolean adjacent = i > 0 && cols[i - 1].col == c->col - 1;
        gboolean dense = c->count > 1 || (adjacent && cols[i - 1].count > 1);
        if (!dense)
            continue;
        double top = c->top, bottom = c->bottom;
        if (adjacent) {
            top = MIN(top, cols[i - 1].yl);
            bottom = MAX(bottom, cols[i - 1].yl);
        }
        cairo_rectangle(cr, c->col + 0.5 - lw / 2, top - lw / 2, lw, bottom - top + lw);
    }
    cairo_fill(cr);
    /* Then the polyline through the sparse parts, and the joins across gaps. */
    gboolean open = FALSE;
    for (guint i = 0; i < n; i++) {
        const Column *c = &cols[i];
        gboolean adjacent = i > 0 && cols[i - 1].col == c->col - 1;
        gboolean dense = c->count > 1 || (adjacent && cols[i - 1].count > 1);
        if (dense && adjacent) {
            open = FALSE;
            continue;
        }
        if (!open) {
            if (i > 0)
                cairo_move_to(cr, cols[i - 1].xl, cols[i - 1].yl);
            else
                cairo_move_to(cr, c->xf, c->yf);
            open = TRUE;
        }
        cairo_line_to(cr, c->xf, c->yf);
        if (c->count > 1)
            cairo_line_to(cr, c->xl, c->yl);
        if (dense)
            open = FALSE;
    }
    cairo_stroke(cr);
}

static gsize lower_bound(const UnetPlot *plot, const Series *s, double u)
{
    /* First index whose axis-space x is >= u, for sorted series. On a log
     * axis non-positive x sort first and map below every u. */
    const double *xs = (const double *)s->x->data;
    gsize lo = 0, hi = s->x->len;
    while (lo < hi) {
        gsize mid = lo + (hi - lo) / 2;
        double v;
        if (!x_to_axis(plot, xs[mid], &v))
            v = -INFINITY;
        if (v < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static gboolean draw_raw(UnetPlot *plot, const Series *s, const Layout *lay, ColumnSet *set, gsize max_points,
                         gsize *drawn)
{
    /* Sparse or zoomed-in series are drawn from their points: exact, and the
     * bucket grid would be coarser than a pixel. */
    if (!s->sorted)
        return FALSE;
    double du = (lay->ux1 - lay->ux0) / (lay->right - lay->left);
    gsize i0 = lower_bound(plot, s, lay->ux0 - 2 * du);
    gsize i1 = lower_bound(plot, s, lay->ux1 + 2 * du);
    if (i0 > 0)
        i0--;
    if (i1 < s->x->len)
        i1++;
    if (i1 - i0 > max_points)
        return FALSE;
    const double *xs = (const double *)s->x->data, *ys = (const double *)s->y->data;
    gsize n = 0;
    for (gsize i = i0; i < i1; i++) {
        double u, v;
        if (!x_to_axis(plot, xs[i], &u) || !y_to_axis(plot, ys[i], &v))
            continue;
        double px = map_x(lay, u), py = map_y(lay, v);
        column_add(set, px, py, px, py, py, py, 1);
        n++;
    }
    *drawn = n;
    return TRUE;
}

static void draw_buckets(UnetPlot *plot, const Series *s, const Layout *lay, ColumnSet *set)
{
    for (int i = 0; i < N_BUCKETS; i++) {
        const Bucket *b = &s->buckets[i];
        if (!b->count)
            continue;
        if (b->u_last < lay->ux0 && i + 1 < N_BUCKETS && s->buckets[i + 1].count &&
            s->buckets[i + 1].u_first < lay->ux0)
            continue;
        double yf = b->y_first, yl = b->y_last, y0 = b->y_min, y1 = b->y_max;
        if (plot->log_y) {
            if (!(b->y_min_pos < INFINITY))
                continue;
            y0 = b->y_min_pos;
            if (yf <= 0)
                yf = y0;
            if (yl <= 0)
                yl = y0;
            if (y1 <= 0)
                y1 = y0;
            yf = log10(yf);
            yl = log10(yl);
            y0 = log10(y0);
            y1 = log10(y1);
        }
        double xf = map_x(lay, b->u_first), xl = map_x(lay, b->u_last);
        column_add(set, xf, map_y(lay, yf), xl, map_y(lay, yl), map_y(lay, y1), map_y(lay, y0), (int)b->count);
        if (b->u_first > lay->ux1)
            break;
    }
}

static void draw_series(UnetPlot *plot, const Series *s, const Layout *lay, cairo_t *cr)
{
    if (!s->visible || !s->n_drawable)
        return;
    double plot_w = lay->right - lay->left;
    gsize drawn = 0;
    set_color(cr, &s->color, 1);
    cairo_set_line_width(cr, s->line_width);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    ColumnSet set = { g_array_sized_new(FALSE, FALSE, sizeof(Column), (guint)plot_w + 8) };
    gboolean raw = draw_raw(plot, s, lay, &set, (gsize)(4 * plot_w), &drawn);
    if (!raw) {
        g_array_set_size(set.cols, 0);
        draw_buckets(plot, s, lay, &set);
    }
    columns_draw(&set, cr, s->line_width);
    g_array_unref(set.cols);
    /* Dots where points are few enough to tell apart (epoch curves). */
    if (raw && drawn > 0 && drawn * 10 < plot_w) {
        const double *xs = (const double *)s->x->data, *ys = (const double *)s->y->data;
        for (guint i = 0; i < s->x->len; i++) {
            double u, v;
            if (!x_to_axis(plot, xs[i], &u) || !y_to_axis(plot, ys[i], &v))
                continue;
            if (u < lay->ux0 || u > lay->ux1)
                continue;
            cairo_new_sub_path(cr);
            cairo_arc(cr, map_x(lay, u), map_y(lay, v), s->line_width + 1.5, 0, 2 * G_PI);
        }
        cairo_fill(cr);
    }
}

static void show_text(cairo_t *cr, PangoLayout *pl, const char *text, double x, double y, double ax, double ay)
{
    double w, h;
    text_size(pl, text, &w, &h);
    cairo_move_to(cr, x - ax * w, y - ay * h);
    pango_cairo_show_layout(cr, pl);
}

static void draw_axes(UnetPlot *plot, const Layout *lay, const Style *st, cairo_t *cr, PangoLayout *pl)
{
    double tw, th;
    text_size(pl, "0", &tw, &th);
    UnetPlotTick ticks[UNET_PLOT_MAX_TICKS];

    /* Grid and ticks. */
    cairo_set_line_width(cr, 1);
    int nx = unet_plot_compute_ticks(lay->ux0, lay->ux1, plot->log_x,
                                     tick_target(lay->right - lay->left, 90), ticks, UNET_PLOT_MAX_TICKS);
    for (int i = 0; i < nx; i++) {
        double x = round(map_x(lay, ticks[i].value)) + 0.5;
        if (x < lay->left - 0.5 || x > lay->right + 0.5)
            continue;
        set_color(cr, &st->fg, ticks[i].major ? 0.12 : 0.05);
        cairo_move_to(cr, x, lay->top);
        cairo_line_to(cr, x, lay->bottom);
        cairo_stroke(cr);
        set_color(cr, &st->fg, 0.55);
        cairo_move_to(cr, x, lay->bottom);
        cairo_line_to(cr, x, lay->bottom + (ticks[i].major ? 5 : 3));
        cairo_stroke(cr);
        if (ticks[i].major) {
            set_color(cr, &st->fg, 0.8);
            show_text(cr, pl, ticks[i].label, x, lay->bottom + 6, 0.5, 0);
        }
    }
    int ny = unet_plot_compute_ticks(lay->uy0, lay->uy1, plot->log_y, tick_target(lay->bottom - lay->top, 3.5 * th),
                                     ticks, UNET_PLOT_MAX_TICKS);
    for (int i = 0; i < ny; i++) {
        double y = round(map_y(lay, ticks[i].value)) + 0.5;
        if (y < lay->top - 0.5 || y > lay->bottom + 0.5)
            continue;
        set_color(cr, &st->fg, ticks[i].major ? 0.12 : 0.05);
        cairo_move_to(cr, lay->left, y);
        cairo_line_to(cr, lay->right, y);
        cairo_stroke(cr);
        set_color(cr, &st->fg, 0.55);
        cairo_move_to(cr, lay->left, y);
        cairo_line_to(cr, lay->left - (ticks[i].major ? 5 : 3), y);
        cairo_stroke(cr);
        if (ticks[i].major) {
            set_color(cr, &st->fg, 0.8);
            show_text(cr, pl, ticks[i].label, lay->left - 7, y, 1, 0.5);
        }
    }
    /* Frame. */
    set_color(cr, &st->fg, 0.45);
    cairo_rectangle(cr, round(lay->left) + 0.5, round(lay->top) + 0.5, round(lay->right - lay->left),
                    round(lay->bottom - lay->top));
    cairo_stroke(cr);

    set_color(cr, &st->fg, 0.8);
    if (plot->x_label)
        show_text(cr, pl, plot->x_label, (lay->left + lay->right) / 2, lay->height - 4, 0.5, 1);
    if (plot->y_label) {
        double w, h;
        text_size(pl, plot->y_label, &w, &h);
        cairo_save(cr);
        cairo_translate(cr, 4, (lay->top + lay->bottom) / 2 + w / 2);
        cairo_rotate(cr, -G_PI / 2);
        cairo_move_to(cr, 0, 0);
        pango_cairo_show_layout(cr, pl);
        cairo_restore(cr);
    }
}

static void draw_markers(UnetPlot *plot, const Layout *lay, const Style *st, cairo_t *cr, PangoLayout *pl)
{
    static const double dash[] = { 5, 4 };
    for (guint i = 0; i < plot->markers->len; i++) {
        const Marker *m = &g_array_index(plot->markers, Marker, i);
        double u;
        if (!x_to_axis(plot, m->x, &u) || u < lay->ux0 || u > lay->ux1)
            continue;
        double x = round(map_x(lay, u)) + 0.5;
        const GdkRGBA *c = m->has_color ? &m->color : &st->fg;
        set_color(cr, c, 0.9);
        cairo_set_line_width(cr, 1.5);
        cairo_set_dash(cr, dash, 2, 0);
        cairo_move_to(cr, x, lay->top);
        cairo_line_to(cr, x, lay->bottom);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        if (m->label && *m->label) {
            double w, h;
            text_size(pl, m->label, &w, &h);
            /* Label beside the line, on the side with room. */
            double tx = x + 4 + w <= lay->right ? x + 4 : x - 4 - w;
            double ty = lay->top + 4 + (i % 3) * (h + 2);
            cairo_move_to(cr, tx, ty);
            pango_cairo_show_layout(cr, pl);
        }
    }
}

/* How much of the data and the marker labels a legend box at (x, y)
 * would cover: the legend goes to the emptiest corner. */
static double legend_cost(UnetPlot *plot, const Layout *lay, double x, double y, double w, double h)
{
    double cost = 0;
    for (guint i = 0; i < plot->series->len; i++) {
        const Series *s = g_ptr_array_index(plot->series, i);
        if (!s->visible || !s->n_drawable)
            continue;
        for (int b = 0; b < N_BUCKETS; b++) {
            const Bucket *k = &s->buckets[b];
            if (!k->count)
                continue;
            double px = map_x(lay, 0.5 * (k->u_first + k->u_last));
            if (px < x || px > x + w)
                continue;
            double ys[2] = { k->y_min, k->y_max };
            for (int j = 0; j < 2; j++) {
                double v;
                if (!y_to_axis(plot, ys[j], &v))
                    continue;
                double py = map_y(lay, v);
                cost += py >= y && py <= y + h;
            }
            /* A line crossing the box from below to above counts too. */
            double v0, v1;
            if (y_to_axis(plot, k->y_min, &v0) && y_to_axis(plot, k->y_max, &v1) && map_y(lay, v0) > y + h &&
                map_y(lay, v1) < y)
                cost += 2;
        }
    }
    for (guint i = 0; i < plot->markers->len; i++) {
        const Marker *m = &g_array_index(plot->markers, Marker, i);
        double u;
        if (!x_to_axis(plot, m->x, &u))
            continue;
        double mx = map_x(lay, u);
        /* The marker's label sits at the top, within ~120 px right of it. */
        if (y < lay->top + 60 && mx + 120 >= x && mx - 4 <= x + w)
            cost += 1e6;
    }
    return cost;
}

static GdkRGBA legend_background(const Style *st)
{
    if (st->bg.alpha > 0)
        return st->bg;
    if (st->window_bg.alpha > 0)
        return st->window_bg;
    return (GdkRGBA){ 1 - st->fg.red, 1 - st->fg.green, 1 - st->fg.blue, 1 };
}

static void draw_legend(UnetPlot *plot, const Layout *lay, const Style *st, cairo_t *cr, PangoLayout *pl)
{
    double w_max = 0, h = 0;
    int n = 0;
    for (guint i = 0; i < plot->series->len; i++) {
        Series *s = g_ptr_array_index(plot->series, i);
        if (!s->visible || !s->name || !*s->name)
            continue;
        double w;
        text_size(pl, s->name, &w, &h);
        w_max = MAX(w_max, w);
        n++;
    }
    if (n == 0)
        return;
    double swatch = 18, pad = 6;
    double bw = pad + swatch + 6 + w_max + pad, bh = pad + n * h + (n - 1) * 2 + pad;
    double xs[2] = { lay->right - bw - 8, lay->left + 8 }, ys[2] = { lay->top + 8, lay->bottom - bh - 8 };
    double x = xs[0], y = ys[0], best = INFINITY;
    for (int j = 0; j < 2; j++) {
        for (int i = 0; i < 2; i++) {
            double c = legend_cost(plot, lay, xs[i], ys[j], bw, bh);
            if (c < best) {
                best = c;
                x = xs[i];
                y = ys[j];
            }
        }
    }
    GdkRGBA bg = legend_background(st);
    set_color(cr, &bg, 0.9);
    cairo_rectangle(cr, x, y, bw, bh);
    cairo_fill(cr);
    set_color(cr, &st->fg, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, round(x) + 0.5, round(y) + 0.5, round(bw), round(bh));
    cairo_stroke(cr);
    double ty = y + pad;
    for (guint i = 0; i < plot->series->len; i++) {
        Series *s = g_ptr_array_index(plot->series, i);
        if (!s->visible || !s->name || !*s->name)
            continue;
        set_color(cr, &s->color, 1);
        cairo_set_line_width(cr, MAX(2, s->line_width));
        cairo_move_to(cr, x + pad, ty + h / 2);
        cairo_line_to(cr, x + pad + swatch, ty + h / 2);
        cairo_stroke(cr);
        set_color(cr, &st->fg, 0.9);
        pango_layout_set_text(pl, s->name, -1);
        cairo_move_to(cr, x + pad + swatch + 6, ty);
        pango_cairo_show_layout(cr, pl);
        ty += h + 2;
    }
}

static void format_value(double v, char *buf, gsize size)
{
    if (!isfinite(v))
        g_snprintf(buf, size, "%g", v);
    else if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e6))
        g_snprintf(buf, size, "%.3e", v);
    else
        g_snprintf(buf, size, "%.5g", v);
}

static void draw_hover(UnetPlot *plot, const Layout *lay, const Style *st, cairo_t *cr, PangoLayout *pl)
{
    int si;
    double x, y;
    if (!plot->hover || !unet_plot_find_nearest(plot, plot->hover_wx, plot->hover_wy, 40, &si, &x, &y))
        return;
    Series *s = g_ptr_array_index(plot->series, si);
    double u, v;
    if (!x_to_axis(plot, x, &u) || !y_to_axis(plot, y, &v))
        return;
    double px = map_x(lay, u), py = map_y(lay, v);
    set_color(cr, &s->color, 1);
    cairo_arc(cr, px, py, 4, 0, 2 * G_PI);
    cairo_fill(cr);

    char xs[48], ys[48];
    format_value(x, xs, sizeof xs);
    format_value(y, ys, sizeof ys);
    /* Translators: hover read-out of a chart: series name, x value, y value. */
    char *text = g_strdup_printf(_("%s\nx = %s\ny = %s"), s->name ? s->name : "", xs, ys);
    double w, h;
    text_size(pl, text, &w, &h);
    double bx = px + 10, by = py - h - 10;
    if (bx + w + 12 > lay->right)
        bx = px - w - 22;
    if (by < lay->top)
        by = py + 10;
    GdkRGBA bg = legend_background(st);
    set_color(cr, &bg, 0.92);
    cairo_rectangle(cr, bx, by, w + 12, h + 8);
    cairo_fill(cr);
    set_color(cr, &s->color, 1);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, round(bx) + 0.5, round(by) + 0.5, round(w + 12), round(h + 8));
    cairo_stroke(cr);
    set_color(cr, &st->fg, 1);
    cairo_move_to(cr, bx + 6, by + 4);
    pango_cairo_show_layout(cr, pl);
    g_free(text);
}

static void draw_plot(UnetPlot *plot, cairo_t *cr, double width, double height, const Style *st,
                      gboolean with_hover)
{
    PangoLayout *pl = pango_cairo_create_layout(cr);
    if (st->font)
        pango_layout_set_font_description(pl, st->font);
    if (st->bg.alpha > 0) {
        set_color(cr, &st->bg, 1);
        cairo_paint(cr);
    }
    Layout lay;
    compute_layout(plot, pl, width, height, &lay);
    draw_axes(plot, &lay, st, cr, pl);

    cairo_save(cr);
    cairo_rectangle(cr, lay.left, lay.top, lay.right - lay.left, lay.bottom - lay.top);
    cairo_clip(cr);
    if (!lay.empty) {
        for (guint i = 0; i < plot->series->len; i++)
            draw_series(plot, g_ptr_array_index(plot->series, i), &lay, cr);
    }
    draw_markers(plot, &lay, st, cr, pl);
    cairo_restore(cr);

    if (lay.empty) {
        if (plot->placeholder) {
            set_color(cr, &st->fg, 0.55);
            pango_layout_set_width(pl, (int)((lay.right - lay.left - 20) * PANGO_SCALE));
            pango_layout_set_alignment(pl, PANGO_ALIGN_CENTER);
            show_text(cr, pl, plot->placeholder, (lay.left + lay.right) / 2, (lay.top + lay.bottom) / 2, 0.5, 0.5);
        }
    } else {
        draw_legend(plot, &lay, st, cr, pl);
        if (with_hover)
            draw_hover(plot, &lay, st, cr, pl);
    }
    g_object_unref(pl);
}

static void widget_style(UnetPlot *plot, Style *st)
{
    GtkWidget *w = GTK_WIDGET(plot);
#if GTK_CHECK_VERSION(4, 10, 0)
    gtk_widget_get_color(w, &st->fg);
#else
    gtk_style_context_get_color(gtk_widget_get_style_context(w), &st->fg);
#endif
    st->bg = (GdkRGBA){ 0, 0, 0, 0 };
    st->window_bg = (GdkRGBA){ 0, 0, 0, 0 };
    G_GNUC_BEGIN_IGNORE_DEPRECATIONS
    /* GTK 4.10 names it window_bg_color, 4.8 theme_bg_color. */
    GtkStyleContext *ctx = gtk_widget_get_style_context(w);
    if (!gtk_style_context_lookup_color(ctx, "window_bg_color", &st->window_bg) &&
        !gtk_style_context_lookup_color(ctx, "theme_bg_color", &st->window_bg))
        st->window_bg.alpha = 0;
    G_GNUC_END_IGNORE_DEPRECATIONS
    st->font = pango_context_get_font_description(gtk_widget_get_pango_context(w));
}

static void unet_plot_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
    UnetPlot *plot = UNET_PLOT(widget);
    int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
    if (w <= 0 || h <= 0)
        return;
    Style st;
    widget_style(plot, &st);
    cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
    draw_plot(plot, cr, w, h, &st, TRUE);
    cairo_destroy(cr);
    plot->draw_count++;
}

/* ---- Redraw at frame rate ---- */

static gboolean redraw_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
    UnetPlot *plot = UNET_PLOT(widget);
    plot->tick_id = 0;
    gtk_widget_queue_draw(widget);
    return G_SOURCE_REMOVE;
}

static void schedule_redraw(UnetPlot *plot)
{
    if (plot->tick_id || !gtk_widget_get_mapped(GTK_WIDGET(plot)))
        return;
    plot->tick_id = gtk_widget_add_tick_callback(GTK_WIDGET(plot), redraw_tick, NULL, NULL);
}

static void unet_plot_unmap(GtkWidget *widget)
{
    UnetPlot *plot = UNET_PLOT(widget);
    if (plot->tick_id) {
        gtk_widget_remove_tick_callback(widget, plot->tick_id);
        plot->tick_id = 0;
    }
    GTK_WIDGET_CLASS(unet_plot_parent_class)->unmap(widget);
}

/* ---- Hover ---- */

static void on_motion(GtkEventControllerMotion *c, double x, double y, UnetPlot *plot)
{
    plot->hover = TRUE;
    plot->hover_wx = x;
    plot->hover_wy = y;
    schedule_redraw(plot);
}

static void on_leave(GtkEventControllerMotion *c, UnetPlot *plot)
{
    plot->hover = FALSE;
    schedule_redraw(plot);
}

gboolean unet_plot_find_nearest(UnetPlot *plot, double wx, double wy, double radius, int *series, double *x,
                                double *y)
{
    g_return_val_if_fail(UNET_IS_PLOT(plot), FALSE);
    int w = gtk_widget_get_width(GTK_WIDGET(plot)), h = gtk_widget_get_height(GTK_WIDGET(plot));
    if (w <= 0 || h <= 0)
        return FALSE;
    PangoLayout *pl = gtk_widget_create_pango_layout(GTK_WIDGET(plot), NULL);
    Layout lay;
    compute_layout(plot, pl, w, h, &lay);
    g_object_unref(pl);
    if (lay.empty)
        return FALSE;
    double best = radius * radius;
    gboolean found = FALSE;
    double du = (lay.ux1 - lay.ux0) / (lay.right - lay.left);
    for (guint si = 0; si < plot->series->len; si++) {
        Series *s = g_ptr_array_index(plot->series, si);
        if (!s->visible || !s->n_drawable)
            continue;
        const double *xs = (const double *)s->x->data, *ys = (const double *)s->y->data;
        gsize i0 = 0, i1 = s->x->len;
        if (s->sorted) {
            double u0 = lay.ux0 + (wx - radius - lay.left) * du, u1 = lay.ux0 + (wx + radius - lay.left) * du;
            i0 = lower_bound(plot, s, u0);
            i1 = lower_bound(plot, s, u1);
            if (i1 < s->x->len)
                i1++;
        }
        /* Dense data: every point in the window would be needless work;
         * a stride still finds the curve near the pointer. */
        gsize stride = MAX((gsize)1, (i1 - i0) / 20000);
        for (gsize i = i0; i < i1; i += stride) {
            double u, v;
            if (!x_to_axis(plot, xs[i], &u) || !y_to_axis(plot, ys[i], &v))
                continue;
            double dx = map_x(&lay, u) - wx, dy = map_y(&lay, v) - wy;
            double d = dx * dx + dy * dy;
            if (d <= best) {
                best = d;
                found = TRUE;
                *series = (int)si;
                *x = xs[i];
                *y = ys[i];
            }
        }
    }
    return found;
}

/* ---- Export ---- */

static void export_style(UnetPlot *plot, Style *st)
{
    st->fg = (GdkRGBA){ 0.13, 0.13, 0.13, 1 };
    st->bg = (GdkRGBA){ 1, 1, 1, 1 };
    st->window_bg = st->bg;
    st->font = pango_context_get_font_description(gtk_widget_get_pango_context(GTK_WIDGET(plot)));
}

static gboolean check_size(int width, int height, GError **error)
{
    if (width < 50 || height < 50 || width > 20000 || height > 20000) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("A chart image must be 50 to 20000 pixels wide and high, not %d × %d."), width, height);
        return FALSE;
    }
    return TRUE;
}

gboolean unet_plot_export_png(UnetPlot *plot, const char *path, int width, int height, GError **error)
{
    g_return_val_if_fail(UNET_IS_PLOT(plot), FALSE);
    if (!check_size(width, height, error))
        return FALSE;
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    cairo_t *cr = cairo_create(surf);
    Style st;
    export_style(plot, &st);
    draw_plot(plot, cr, width, height, &st, FALSE);
    cairo_destroy(cr);
    cairo_status_t status = cairo_surface_write_to_png(surf, path);
    cairo_surface_destroy(surf);
    if (status != CAIRO_STATUS_SUCCESS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not write the chart to “%s”: %s."), path,
                    cairo_status_to_string(status));
        return FALSE;
    }
    return TRUE;
}

gboolean unet_plot_export_svg(UnetPlot *plot, const char *path, int width, int height, GError **error)
{
    g_return_val_if_fail(UNET_IS_PLOT(plot), FALSE);
    if (!check_size(width, height, error))
        return FALSE;
    cairo_surface_t *surf = cairo_svg_surface_create(path, width, height);
    cairo_status_t status = cairo_surface_status(surf);
    if (status == CAIRO_STATUS_SUCCESS) {
        cairo_t *cr = cairo_create(surf);
        Style st;
        export_style(plot, &st);
        draw_plot(plot, cr, width, height, &st, FALSE);
        cairo_destroy(cr);
        cairo_surface_finish(surf);
        status = cairo_surface_status(surf);
    }
    cairo_surface_destroy(surf);
    if (status != CAIRO_STATUS_SUCCESS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not write the chart to “%s”: %s."), path,
                    cairo_status_to_string(status));
        return FALSE;
    }
    return TRUE;
}

/* ---- Public API ---- */

GtkWidget *unet_plot_new(void)
{
    return g_object_new(UNET_TYPE_PLOT, NULL);
}

static void replace_string(char **dst, const char *src)
{
    g_free(*dst);
    *dst = src && *src ? g_strdup(src) : NULL;
}

void unet_plot_set_x_label(UnetPlot *plot, const char *label)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    replace_string(&plot->x_label, label);
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

void unet_plot_set_y_label(UnetPlot *plot, const char *label)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    replace_string(&plot->y_label, label);
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

void unet_plot_set_placeholder(UnetPlot *plot, const char *text)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    replace_string(&plot->placeholder, text);
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

int unet_plot_add_series(UnetPlot *plot, const char *name, const GdkRGBA *color)
{
    g_return_val_if_fail(UNET_IS_PLOT(plot), -1);
    Series *s = g_new0(Series, 1);
    s->name = g_strdup(name);
    s->color = color ? *color : palette[plot->series->len % G_N_ELEMENTS(palette)];
    s->line_width = 1.5;
    s->visible = TRUE;
    s->sorted = TRUE;
    s->x = g_array_new(FALSE, FALSE, sizeof(double));
    s->y = g_array_new(FALSE, FALSE, sizeof(double));
    s->buckets = g_new(Bucket, N_BUCKETS);
    series_reset_buckets(s);
    g_ptr_array_add(plot->series, s);
    gtk_widget_queue_draw(GTK_WIDGET(plot));
    return (int)plot->series->len - 1;
}

int unet_plot_get_n_series(UnetPlot *plot)
{
    g_return_val_if_fail(UNET_IS_PLOT(plot), 0);
    return (int)plot->series->len;
}

void unet_plot_set_series_visible(UnetPlot *plot, int series, gboolean visible)
{
    Series *s = get_series(plot, series);
    if (!s)
        return;
    s->visible = visible;
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

void unet_plot_set_series_width(UnetPlot *plot, int series, double line_width)
{
    Series *s = get_series(plot, series);
    if (!s)
        return;
    s->line_width = CLAMP(line_width, 0.5, 10);
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

void unet_plot_get_series_color(UnetPlot *plot, int series, GdkRGBA *color)
{
    Series *s = get_series(plot, series);
    if (s)
        *color = s->color;
}

static void append_one(UnetPlot *plot, Series *s, double x, double y)
{
    if (s->x->len > 0 && x < g_array_index(s->x, double, s->x->len - 1))
        s->sorted = FALSE;
    g_array_append_val(s->x, x);
    g_array_append_val(s->y, y);
    double u;
    if (isfinite(y) && x_to_axis(plot, x, &u))
        series_insert(plot, s, u, y);
}

void unet_plot_append(UnetPlot *plot, int series, double x, double y)
{
    Series *s = get_series(plot, series);
    if (!s)
        return;
    append_one(plot, s, x, y);
    schedule_redraw(plot);
}

void unet_plot_append_many(UnetPlot *plot, int series, const double *x, const double *y, gsize n)
{
    Series *s = get_series(plot, series);
    if (!s)
        return;
    for (gsize i = 0; i < n; i++)
        append_one(plot, s, x[i], y[i]);
    schedule_redraw(plot);
}

gsize unet_plot_get_n_points(UnetPlot *plot, int series)
{
    Series *s = get_series(plot, series);
    return s ? s->x->len : 0;
}

void unet_plot_clear(UnetPlot *plot)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    for (guint i = 0; i < plot->series->len; i++) {
        Series *s = g_ptr_array_index(plot->series, i);
        g_array_set_size(s->x, 0);
        g_array_set_size(s->y, 0);
        s->sorted = TRUE;
        series_reset_buckets(s);
    }
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

static void rebuild_all(UnetPlot *plot)
{
    for (guint i = 0; i < plot->series->len; i++)
        series_rebuild(plot, g_ptr_array_index(plot->series, i));
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

void unet_plot_set_log_x(UnetPlot *plot, gboolean log_x)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    if (plot->log_x == !!log_x)
        return;
    plot->log_x = !!log_x;
    rebuild_all(plot);
}

void unet_plot_set_log_y(UnetPlot *plot, gboolean log_y)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    plot->log_y = !!log_y;
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

gboolean unet_plot_get_log_x(UnetPlot *plot)
{
    return plot->log_x;
}

gboolean unet_plot_get_log_y(UnetPlot *plot)
{
    return plot->log_y;
}

void unet_plot_set_y_range(UnetPlot *plot, double min, double max)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    g_return_if_fail(min < max);
    plot->manual_y = TRUE;
    plot->y_range[0] = min;
    plot->y_range[1] = max;
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

void unet_plot_set_y_auto(UnetPlot *plot)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    plot->manual_y = FALSE;
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

void unet_plot_set_x_range(UnetPlot *plot, double min, double max)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    g_return_if_fail(min < max);
    plot->manual_x = TRUE;
    plot->x_range[0] = min;
    plot->x_range[1] = max;
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

void unet_plot_set_x_auto(UnetPlot *plot)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    plot->manual_x = FALSE;
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

gboolean unet_plot_get_view(UnetPlot *plot, double *x0, double *x1, double *y0, double *y1)
{
    g_return_val_if_fail(UNET_IS_PLOT(plot), FALSE);
    Layout lay;
    compute_ranges(plot, &lay);
    *x0 = plot->log_x ? pow(10, lay.ux0) : lay.ux0;
    *x1 = plot->log_x ? pow(10, lay.ux1) : lay.ux1;
    *y0 = plot->log_y ? pow(10, lay.uy0) : lay.uy0;
    *y1 = plot->log_y ? pow(10, lay.uy1) : lay.uy1;
    return !lay.empty;
}

int unet_plot_add_marker(UnetPlot *plot, double x, const char *label, const GdkRGBA *color)
{
    g_return_val_if_fail(UNET_IS_PLOT(plot), -1);
    Marker m = { .x = x, .label = g_strdup(label), .has_color = color != NULL };
    if (color)
        m.color = *color;
    g_array_append_val(plot->markers, m);
    gtk_widget_queue_draw(GTK_WIDGET(plot));
    return (int)plot->markers->len - 1;
}

void unet_plot_clear_markers(UnetPlot *plot)
{
    g_return_if_fail(UNET_IS_PLOT(plot));
    for (guint i = 0; i < plot->markers->len; i++)
        g_free(g_array_index(plot->markers, Marker, i).label);
    g_array_set_size(plot->markers, 0);
    gtk_widget_queue_draw(GTK_WIDGET(plot));
}

int unet_plot_get_n_markers(UnetPlot *plot)
{
    g_return_val_if_fail(UNET_IS_PLOT(plot), 0);
    return (int)plot->markers->len;
}

gboolean unet_plot_get_marker(UnetPlot *plot, int index, double *x, const char **label)
{
    g_return_val_if_fail(UNET_IS_PLOT(plot), FALSE);
    if (index < 0 || (guint)index >= plot->markers->len)
        return FALSE;
    const Marker *m = &g_array_index(plot->markers, Marker, index);
    if (x)
        *x = m->x;
    if (label)
        *label = m->label;
    return TRUE;
}

guint unet_plot_get_draw_count(UnetPlot *plot)
{
    return plot->draw_count;
}

void unet_plot_series_columns(UnetPlot *plot, int series, double x0, double x1, int columns, double *ymin,
                              double *ymax)
{
    Series *s = get_series(plot, series);
    for (int c = 0; c < columns; c++)
        ymin[c] = ymax[c] = NAN;
    if (!s)
        return;
    double u0, u1;
    if (!x_to_axis(plot, x0, &u0) || !x_to_axis(plot, x1, &u1) || !(u1 > u0))
        return;
    for (int i = 0; i < N_BUCKETS; i++) {
        const Bucket *b = &s->buckets[i];
        if (!b->count)
            continue;
        /* A bucket is charged to the column of its leftmost point, as the
         * draw path does. */
        int c = (int)floor((b->u_first - u0) / (u1 - u0) * columns);
        if (c < 0 || c >= columns)
            continue;
        ymin[c] = isnan(ymin[c]) ? b->y_min : MIN(ymin[c], b->y_min);
        ymax[c] = isnan(ymax[c]) ? b->y_max : MAX(ymax[c], b->y_max);
    }
}

static void unet_plot_measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                              int *natural, int *minimum_baseline, int *natural_baseline)
{
    if (orientation == GTK_ORIENTATION_HORIZONTAL) {
        *minimum = 160; /* three side by side fit the Augmentation page at 1280 px */
        *natural = 480;
    } else {
        *minimum = 140;
        *natural = 260;
    }
}

static void unet_plot_finalize(GObject *object)
{
    UnetPlot *plot = UNET_PLOT(object);
    unet_plot_clear_markers(plot);
    g_array_unref(plot->markers);
    g_ptr_array_unref(plot->series);
    g_free(plot->x_label);
    g_free(plot->y_label);
    g_free(plot->placeholder);
    G_OBJECT_CLASS(unet_plot_parent_class)->finalize(object);
}

static void unet_plot_class_init(UnetPlotClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->finalize = unet_plot_finalize;
    widget_class->snapshot = unet_plot_snapshot;
    widget_class->measure = unet_plot_measure;
    widget_class->unmap = unet_plot_unmap;
    gtk_widget_class_set_css_name(widget_class, "unetplot");
    gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void unet_plot_init(UnetPlot *plot)
{
    plot->series = g_ptr_array_new_with_free_func(series_free);
    plot->markers = g_array_new(FALSE, FALSE, sizeof(Marker));
    GtkEventController *motion = gtk_event_controller_motion_new();
    g_signal_connect(motion, "motion", G_CALLBACK(on_motion), plot);
    g_signal_connect(motion, "leave", G_CALLBACK(on_leave), plot);
    gtk_widget_add_controller(GTK_WIDGET(plot), motion);
}
