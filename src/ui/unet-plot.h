/* unet-plot.h - UnetPlot, the live line chart of the workbench (loss curves,
 * metrics, the learning-rate test).
 *
 * Series take points as they come (thousands per second are fine): each
 * append updates a fixed number of min/max buckets per series, so drawing
 * costs the same however many points there are, and the widget redraws at
 * most once per frame. Axes are linear or log10 with 1-2-5 ticks; the y
 * range is automatic unless set by hand. The same drawing code renders the
 * widget and the PNG/SVG exports. */
#ifndef UNET_PLOT_H
#define UNET_PLOT_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define UNET_TYPE_PLOT (unet_plot_get_type())
G_DECLARE_FINAL_TYPE(UnetPlot, unet_plot, UNET, PLOT, GtkWidget)

GtkWidget *unet_plot_new(void);

/* Axis titles and the text shown while no series has a point. */
void unet_plot_set_x_label(UnetPlot *plot, const char *label);
void unet_plot_set_y_label(UnetPlot *plot, const char *label);
void unet_plot_set_placeholder(UnetPlot *plot, const char *text);

/* Adds a series drawn as a line in x order; returns its index. color NULL
 * picks the next colour of the built-in palette. */
int unet_plot_add_series(UnetPlot *plot, const char *name, const GdkRGBA *color);
int unet_plot_get_n_series(UnetPlot *plot);
void unet_plot_set_series_visible(UnetPlot *plot, int series, gboolean visible);
void unet_plot_set_series_width(UnetPlot *plot, int series, double line_width);
void unet_plot_get_series_color(UnetPlot *plot, int series, GdkRGBA *color);

/* Points with a non-finite y (a diverged loss) are kept for the read-out but
 * not drawn; on a log axis, values <= 0 are not drawn. */
void unet_plot_append(UnetPlot *plot, int series, double x, double y);
void unet_plot_append_many(UnetPlot *plot, int series, const double *x, const double *y, gsize n);
gsize unet_plot_get_n_points(UnetPlot *plot, int series);

/* Removes the points of every series (series and markers stay). */
void unet_plot_clear(UnetPlot *plot);

void unet_plot_set_log_x(UnetPlot *plot, gboolean log_x);
void unet_plot_set_log_y(UnetPlot *plot, gboolean log_y);
gboolean unet_plot_get_log_x(UnetPlot *plot);
gboolean unet_plot_get_log_y(UnetPlot *plot);

/* Fixed y range (min < max; both > 0 on a log axis) or back to automatic. */
void unet_plot_set_y_range(UnetPlot *plot, double min, double max);
void unet_plot_set_y_auto(UnetPlot *plot);
void unet_plot_set_x_range(UnetPlot *plot, double min, double max);
void unet_plot_set_x_auto(UnetPlot *plot);

/* The axis ranges as drawn now (after auto-scaling); FALSE when nothing to draw. */
gboolean unet_plot_get_view(UnetPlot *plot, double *x0, double *x1, double *y0, double *y1);

/* Vertical marker line at x with a short label (LR-test suggestion,
 * divergence); color NULL: the foreground colour. Returns its index. */
int unet_plot_add_marker(UnetPlot *plot, double x, const char *label, const GdkRGBA *color);
void unet_plot_clear_markers(UnetPlot *plot);
int unet_plot_get_n_markers(UnetPlot *plot);
/* Position and label of marker `index`; FALSE when there is none. */
gboolean unet_plot_get_marker(UnetPlot *plot, int index, double *x, const char **label);

/* Point nearest to widget coordinates (wx, wy) within radius pixels; FALSE
 * when none. This is what the hover read-out shows. */
gboolean unet_plot_find_nearest(UnetPlot *plot, double wx, double wy, double radius, int *series,
                                double *x, double *y);

/* Renders the chart at width x height pixels on a white background (dark
 * text) to a PNG or SVG file. */
gboolean unet_plot_export_png(UnetPlot *plot, const char *path, int width, int height, GError **error);
gboolean unet_plot_export_svg(UnetPlot *plot, const char *path, int width, int height, GError **error);

G_END_DECLS

#endif
