/* unet-plot-private.h - UnetPlot internals shared with its tests: tick
 * placement, tick labels, and counters of appends and redraws. */
#ifndef UNET_PLOT_PRIVATE_H
#define UNET_PLOT_PRIVATE_H

#include "unet-plot.h"

G_BEGIN_DECLS

#define UNET_PLOT_MAX_TICKS 64

typedef struct UnetPlotTick {
    double value;   /* in axis space: the value itself, or log10 of it on a log axis */
    gboolean major; /* labelled, with a grid line */
    char label[32];
} UnetPlotTick;

/* Ticks of an axis showing [lo, hi] (axis space), about `target` labelled
 * ones: 1-2-5 steps on a linear axis, powers of ten (with 2..9 minor ticks
 * when few decades show) on a log axis. Returns the count. */
int unet_plot_compute_ticks(double lo, double hi, gboolean log_axis, int target, UnetPlotTick *ticks,
                            int max_ticks);

/* Label of a linear-axis value at tick spacing `step`. */
void unet_plot_format_linear(double value, double step, char *buf, gsize size);
/* "10⁻³" style label of 10^k. */
void unet_plot_format_power(int k, char *buf, gsize size);

/* Number of times the widget has drawn itself (for the frame-rate tests). */
guint unet_plot_get_draw_count(UnetPlot *plot);

/* Column min/max of a series over the drawn pixel columns, from its buckets,
 * as the draw path sees them: for x in [x0, x1] split into `columns` equal
 * columns, ymin[c] and ymax[c] (NAN when empty). For tests of decimation. */
void unet_plot_series_columns(UnetPlot *plot, int series, double x0, double x1, int columns, double *ymin,
                              double *ymax);

G_END_DECLS

#endif
