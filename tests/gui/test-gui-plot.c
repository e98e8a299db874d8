/* test-gui-plot.c - UnetPlot: tick placement and labels, min/max decimation
 * keeping a one-point spike, the rendered chart (series colour in every
 * pixel column it spans, the spike at the top of its column, markers), the
 * hover read-out, manual ranges, log axes, and PNG/SVG export. */
#include <math.h>
#include <string.h>

#include "gui-test-util.h"
#include "unet-plot-private.h"

#define N 20000
#define SPIKE_X 12345.0

static gboolean is_red(const guint8 *p)
{
    return p[0] > 180 && p[1] < 90 && p[2] < 90;
}

static void test_ticks(void)
{
    UnetPlotTick t[UNET_PLOT_MAX_TICKS];
    int n = unet_plot_compute_ticks(0, 1, FALSE, 5, t, UNET_PLOT_MAX_TICKS);
    CHECK(n == 6);
    CHECK(n == 6 && fabs(t[1].value - 0.2) < 1e-12 && !strcmp(t[1].label, "0.2") && !strcmp(t[0].label, "0.0"));
    n = unet_plot_compute_ticks(0, 12345, FALSE, 5, t, UNET_PLOT_MAX_TICKS);
    CHECK(n >= 4);
    for (int i = 1; i < n; i++) {
        double step = t[i].value - t[i - 1].value;
        double m = step / pow(10, floor(log10(step)));
        CHECK_MSG(fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9, "step %g is not 1-2-5", step);
    }
    /* Log axis over seven decades: the powers of ten, with minor ticks. */
    n = unet_plot_compute_ticks(-7, 0, TRUE, 8, t, UNET_PLOT_MAX_TICKS);
    int majors = 0, minors = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].major) {
            majors++;
            CHECK(fabs(t[i].value - round(t[i].value)) < 1e-12);
        } else {
            minors++;
        }
    }
    CHECK_MSG(majors == 8, "%d decade ticks", majors);
    CHECK(minors > 0);
    CHECK(!strcmp(t[0].label, "10⁻⁷"));
    /* Less than a decade: 1-2-5 multiples. */
    n = unet_plot_compute_ticks(log10(0.0009), log10(0.0055), TRUE, 5, t, UNET_PLOT_MAX_TICKS);
    CHECK_MSG(n == 3, "%d ticks in 0.0009..0.0055", n);
    CHECK(n == 3 && !strcmp(t[0].label, "10⁻³") && !strcmp(t[1].label, "0.002") && !strcmp(t[2].label, "0.005"));
    /* Less than a decade with too few 1-2-5 multiples: every multiple. */
    n = unet_plot_compute_ticks(0, log10(4.05), TRUE, 5, t, UNET_PLOT_MAX_TICKS);
    CHECK_MSG(n == 4 && !strcmp(t[0].label, "1") && !strcmp(t[2].label, "3") && !strcmp(t[3].label, "4"),
              "%d ticks in 1..4.05", n);
    char buf[32];
    unet_plot_format_power(-3, buf, sizeof buf);
    CHECK(!strcmp(buf, "10⁻³"));
    unet_plot_format_power(12, buf, sizeof buf);
    CHECK(!strcmp(buf, "10¹²"));
    unet_plot_format_linear(1500000, 500000, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "1.5×10⁶"), "got %s", buf);
    unet_plot_format_linear(2e-5, 1e-5, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "2×10⁻⁵"), "got %s", buf);
    unet_plot_format_linear(-0.25, 0.05, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "-0.25"), "got %s", buf);
}

int main(void)
{
    gui_test_init();
    test_ticks();

    GtkWidget *window = gtk_window_new();
    GtkWidget *w = unet_plot_new();
    UnetPlot *plot = UNET_PLOT(w);
    gtk_widget_set_size_request(w, 640, 400);
    gtk_window_set_child(GTK_WINDOW(window), w);
    gtk_window_present(GTK_WINDOW(window));
    GdkRGBA red = { 1, 0, 0, 1 };
    int s = unet_plot_add_series(plot, "loss", &red);
    unet_plot_set_x_label(plot, "step");
    unet_plot_set_y_label(plot, "loss");
    CHECK(s == 0 && unet_plot_get_n_series(plot) == 1);

    /* Dense data with a single-point spike. */
    double *x = g_new(double, N), *y = g_new(double, N);
    for (int i = 0; i < N; i++) {
        x[i] = i;
        y[i] = 0.5 + 0.3 * sin(i * 0.001) + 0.05 * sin(i * 1.7);
    }
    x[(int)SPIKE_X] = SPIKE_X;
    y[(int)SPIKE_X] = 5.0;
    unet_plot_append_many(plot, s, x, y, N);
    CHECK(unet_plot_get_n_points(plot, s) == N);

    /* Decimation keeps the spike in its column. */
    double ymin[100], ymax[100];
    unet_plot_series_columns(plot, s, 0, N - 1, 100, ymin, ymax);
    int spike_col = (int)(SPIKE_X / (N - 1) * 100);
    double other_max = 0;
    for (int c = 0; c < 100; c++)
        if (abs(c - spike_col) > 1 && !isnan(ymax[c]))
            other_max = MAX(other_max, ymax[c]);
    CHECK_MSG(ymax[spike_col] == 5.0 || ymax[spike_col - 1] == 5.0 || ymax[spike_col + 1] == 5.0,
              "spike lost: column max %g", ymax[spike_col]);
    CHECK(other_max < 1.0);
    for (int c = 0; c < 100; c++)
        CHECK(!isnan(ymin[c]) && ymin[c] >= -0.01);

    double vx0, vx1, vy0, vy1;
    CHECK(unet_plot_get_view(plot, &vx0, &vx1, &vy0, &vy1));
    CHECK(vx0 == 0 && vx1 == N - 1 && vy1 >= 5.0 && vy0 < 0.3);

    CHECK(gui_test_wait_frames(w, 3, 5000));
    GdkTexture *tex = gui_test_render(w);
    CHECK(tex != NULL);
    if (!tex)
        return test_finish("gui-plot");
    char *path = gui_test_save(tex, "plot-dense");
    g_free(path);
    int pw, ph;
    guint8 *px = gui_test_pixels(tex, &pw, &ph);
    g_object_unref(tex);
    /* Red spans the plot area: nearly every column between the first and
     * last red column holds red. */
    int first = -1, last = -1, top_y = ph, top_x = -1;
    int *col_red = g_new0(int, pw);
    for (int xx = 0; xx < pw; xx++) {
        for (int yy = 0; yy < ph; yy++) {
            if (is_red(gui_test_px(px, pw, xx, yy))) {
                col_red[xx]++;
                if (first < 0)
                    first = xx;
                last = xx;
                if (yy < top_y) {
                    top_y = yy;
                    top_x = xx;
                }
            }
        }
    }
    CHECK_MSG(first >= 0 && last - first > pw * 0.7, "red spans columns %d..%d of %d", first, last, pw);
    int filled = 0;
    for (int xx = first; xx <= last && first >= 0; xx++)
        filled += col_red[xx] > 0;
    CHECK_MSG(first >= 0 && filled >= (last - first + 1) * 0.98, "red in %d of %d columns", filled,
              last - first + 1);
    /* The spike is the topmost red, at its x. */
    double spike_px = first + (last - first) * (SPIKE_X / (N - 1));
    CHECK_MSG(fabs(top_x - spike_px) <= 3, "topmost red at x %d, spike expected at %.1f", top_x, spike_px);
    CHECK_MSG(top_y < ph * 0.15, "spike top at y %d of %d", top_y, ph);
    g_free(col_red);
    g_free(px);

    /* Hover read-out: the point nearest the spike's top is the spike. */
    int hs;
    double hx, hy;
    CHECK(unet_plot_find_nearest(plot, top_x, top_y, 8, &hs, &hx, &hy));
    CHECK_MSG(hs == 0 && hx == SPIKE_X && hy == 5.0, "nearest (%d, %g, %g)", hs, hx, hy);
    CHECK(!unet_plot_find_nearest(plot, 1, 1, 3, &hs, &hx, &hy));

    /* Manual y range and markers. */
    unet_plot_set_y_range(plot, 0, 1);
    CHECK(unet_plot_get_view(plot, &vx0, &vx1, &vy0, &vy1) && vy0 == 0 && vy1 == 1);
    GdkRGBA green = { 0, 0.8, 0, 1 };
    unet_plot_add_marker(plot, 5000, "here", &green);
    CHECK(unet_plot_get_n_markers(plot) == 1);
    CHECK(gui_test_wait_frames(w, 2, 5000));
    tex = gui_test_render(w);
    px = gui_test_pixels(tex, &pw, &ph);
    path = gui_test_save(tex, "plot-marker");
    g_free(path);
    g_object_unref(tex);
    /* The y labels changed, so the plot area did: find it again. */
    first = -1;
    for (int xx = 0; xx < pw; xx++) {
        for (int yy = 0; yy < ph; yy++) {
            if (is_red(gui_test_px(px, pw, xx, yy))) {
                if (first < 0)
                    first = xx;
                last = xx;
                break;
            }
        }
    }
    int green_col = -1, green_n = 0;
    for (int xx = 0; xx < pw; xx++) {
        int n = 0;
        for (int yy = 0; yy < ph; yy++) {
            const guint8 *p = gui_test_px(px, pw, xx, yy);
            n += p[1] > 150 && p[0] < 90 && p[2] < 90;
        }
        if (n > green_n) {
            green_n = n;
            green_col = xx;
        }
    }
    CHECK_MSG(green_n > ph / 4, "marker line %d px tall", green_n);
    CHECK_MSG(fabs(green_col - (first + (last - first) * 5000.0 / (N - 1))) <= 3, "marker at %d, want %.1f",
              green_col, first + (last - first) * 5000.0 / (N - 1));
    g_free(px);
    unet_plot_set_y_auto(plot);

    /* Export: PNG with the series colour, SVG with paths. */
    char *tmp = test_make_temp_dir("gui-plot");
    char *png = g_build_filename(tmp, "chart.png", NULL), *svg = g_build_filename(tmp, "chart.svg", NULL);
    GError *error = NULL;
    CHECK(unet_plot_export_png(plot, png, 800, 500, &error));
    CHECK(unet_plot_export_svg(plot, svg, 800, 500, &error));
    GdkTexture *exp = gdk_texture_new_from_filename(png, &error);
    CHECK(exp && gdk_texture_get_width(exp) == 800 && gdk_texture_get_height(exp) == 500);
    if (exp) {
        px = gui_test_pixels(exp, &pw, &ph);
        int reds = 0, whites = 0;
        for (int i = 0; i < pw * ph; i++) {
            reds += is_red(px + i * 4);
            whites += px[i * 4] == 255 && px[i * 4 + 1] == 255 && px[i * 4 + 2] == 255;
        }
        CHECK(reds > 500 && whites > pw * ph / 2);
        g_free(px);
        g_object_unref(exp);
    }
    char *text = NULL;
    CHECK(g_file_get_contents(svg, &text, NULL, NULL) && strstr(text, "<svg") && strstr(text, "<path"));
    g_free(text);
    CHECK(!unet_plot_export_png(plot, png, 10, 10, &error) && error);
    g_clear_error(&error);
    char *bad = g_build_filename(tmp, "no-such-dir", "x.png", NULL);
    CHECK(!unet_plot_export_png(plot, bad, 200, 200, &error) && error);
    g_clear_error(&error);

    /* Log x over learning rates: points at 1e-6..1 all land in the plot. */
    unet_plot_clear(plot);
    CHECK(unet_plot_get_n_points(plot, s) == 0);
    unet_plot_set_log_x(plot, TRUE);
    unet_plot_set_log_y(plot, TRUE);
    for (int i = 0; i <= 60; i++)
        unet_plot_append(plot, s, pow(10, -6 + i * 0.1), 1.0 + i * 0.05);
    unet_plot_append(plot, s, 0, 1);     /* not drawable on a log axis */
    unet_plot_append(plot, s, 0.5, NAN); /* a diverged loss */
    CHECK(unet_plot_get_view(plot, &vx0, &vx1, &vy0, &vy1));
    CHECK_MSG(fabs(log10(vx0) + 6) < 1e-9 && fabs(log10(vx1)) < 1e-9, "log x view %g..%g", vx0, vx1);
    CHECK(gui_test_wait_frames(w, 2, 5000));
    tex = gui_test_render(w);
    path = gui_test_save(tex, "plot-log");
    g_free(path);
    px = gui_test_pixels(tex, &pw, &ph);
    int reds = 0;
    for (int i = 0; i < pw * ph; i++)
        reds += is_red(px + i * 4);
    CHECK(reds > 300);
    g_free(px);
    g_object_unref(tex);

    /* Appends between frames cost no redraw each: one per frame at most. */
    guint before = unet_plot_get_draw_count(plot);
    for (int i = 0; i < 5000; i++)
        unet_plot_append(plot, s, 1 + i * 1e-4, 2);
    CHECK(unet_plot_get_draw_count(plot) == before);
    gui_test_wait_frames(w, 2, 5000);
    CHECK(unet_plot_get_draw_count(plot) > before && unet_plot_get_draw_count(plot) <= before + 4);

    gtk_window_destroy(GTK_WINDOW(window));
    g_free(x);
    g_free(y);
    g_free(png);
    g_free(svg);
    g_free(bad);
    free(tmp);
    return test_finish("gui-plot");
}
