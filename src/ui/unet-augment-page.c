/* unet-augment-page.c - UnetAugmentPage: augmentation form, 3x3 sample panel, overlap-tile view. */
#include "unet-augment-page.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "unet-form.h"
#include "unet-page.h"
#include "unet-run-config.h"
#include "unet-ui-util.h"
#include "augment.h"
#include "model.h"
#include "scratch.h"
#include "tiling.h"
#include "weightmap.h"

#define HIST_BINS 64
#define MAX_CLASSES 256

struct _UnetAugmentPage {
    GtkWidget parent_instance;
    GtkWidget *box;
    GtkGrid *form_grid, *view_grid;
    GtkLabel *weight_info, *sample_info, *tiling_info;
    GtkCheckButton *displacement_check;
    UnetImageView *tiling_view;
    UnetImageView *views[UNET_AUGMENT_N_VIEWS];
    GtkLabel *values[UNET_AUGMENT_N_VIEWS];
    UnetPlot *histogram, *class_histogram;
    GtkWidget *grid_area, *reroll;

    UnetSession *session;
    UnetViewTransform *transform;
    GCancellable *cancel;
    guint debounce_id;
    guint weight_count, aug_count;
    float *weight;
    int weight_w, weight_h;
    guint64 seed;
    gboolean has_grid;
    UnetTileGrid grid;
    float *segments; /* x0 y0 x1 y1 in pixel-centre image coordinates */
    gsize n_segments;
};

static void page_iface_init(UnetPageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(UnetAugmentPage, unet_augment_page, GTK_TYPE_WIDGET,
                              G_IMPLEMENT_INTERFACE(UNET_TYPE_PAGE, page_iface_init))

/* ---- The job: augmented sample, its statistics and weight map, the tiling ---- */

typedef struct AugJob {
    UnetAugmentConfig cfg;
    UnetWeightMapConfig wcfg;
    guint64 seed;
    gboolean model_ok;
    UnetModelConfig model;
    char *model_error;
    int tile_near;
    int width, height, channels;
    float *image;
    gint32 *labels;
    /* Results. */
    UnetAugmentRecord rec;
    float *image_out;
    gint32 *labels_out;
    float *weight;
    UnetWeightMapInfo info;
    char *weight_error;
    double hist[HIST_BINS];
    double mean, sd;
    double class_count[MAX_CLASSES];
    int n_classes;
    GArray *segments; /* float */
    UnetImage tiling;
    UnetTileGrid grid;
    int tile_in, tile_out;
    char *tiling_error;
} AugJob;

static void aug_job_free(gpointer data)
{
    AugJob *job = data;
    g_free(job->model_error);
    g_free(job->image);
    g_free(job->labels);
    g_free(job->image_out);
    g_free(job->labels_out);
    g_free(job->weight);
    g_free(job->weight_error);
    if (job->segments)
        g_array_unref(job->segments);
    unet_image_free(&job->tiling);
    g_free(job->tiling_error);
    g_free(job);
}

/* Crossing of level c on the edge from (xa, ya, va) to (xb, yb, vb). */
static gboolean edge_cross(double c, double xa, double ya, double va, double xb, double yb, double vb, float *pt)
{
    if ((va < c) == (vb < c))
        return FALSE;
    double t = (c - va) / (vb - va);
    pt[0] = (float)(xa + t * (xb - xa));
    pt[1] = (float)(ya + t * (yb - ya));
    return TRUE;
}

/* Iso-lines of a source coordinate field v (w x h) at multiples of step:
 * where the lines of a regular grid over the input ended up (marching squares). */
static void isolines(const float *v, int w, int h, double step, GArray *out)
{
    for (int y = 0; y + 1 < h; y++) {
        for (int x = 0; x + 1 < w; x++) {
            double v00 = v[(gsize)y * w + x], v10 = v[(gsize)y * w + x + 1];
            double v01 = v[(gsize)(y + 1) * w + x], v11 = v[(gsize)(y + 1) * w + x + 1];
            double lo = MIN(MIN(v00, v10), MIN(v01, v11)), hi = MAX(MAX(v00, v10), MAX(v01, v11));
            for (double k = ceil(lo / step); k * step <= hi; k++) {
                double c = k * step;
                float pts[8];
                int n = 0;
                n += edge_cross(c, x, y, v00, x + 1, y, v10, pts + 2 * n);
                n += edge_cross(c, x + 1, y, v10, x + 1, y + 1, v11, pts + 2 * n);
                n += edge_cross(c, x + 1, y + 1, v11, x, y + 1, v01, pts + 2 * n);
                n += edge_cross(c, x, y + 1, v01, x, y, v00, pts + 2 * n);
                if (n >= 2)
                    g_array_append_vals(out, pts, 4);
                if (n == 4)
                    g_array_append_vals(out, pts + 4, 4);
            }
        }
    }
}

static void statistics(AugJob *job)
{
    gsize n = (gsize)job->rec.out_w * job->rec.out_h, nv = n * job->channels;
    double sum = 0, sum2 = 0, top = job->cfg.intensity_max > 0 ? job->cfg.intensity_max : 1.0;
    for (gsize i = 0; i < nv; i++) {
        double v = job->image_out[i];
        sum += v;
        sum2 += v * v;
        int b = (int)floor(v / top * HIST_BINS);
        job->hist[CLAMP(b, 0, HIST_BINS - 1)] += 1;
    }
    job->mean = nv ? sum / nv : 0;
    job->sd = nv ? sqrt(MAX(0.0, sum2 / nv - job->mean * job->mean)) : 0;
    for (gsize i = 0; i < n; i++) {
        int c = job->labels_out[i];
        if (c >= 0 && c < MAX_CLASSES) {
            job->class_count[c] += 1;
            job->n_classes = MAX(job->n_classes, c + 1);
        }
    }
}

static void tiling(AugJob *job)
{
    UnetError err = { 0 };
    if (!job->model_ok) {
        job->tiling_error = g_strdup(job->model_error);
        return;
    }
    if (unet_model_valid_input_size(&job->model, job->tile_near, &job->tile_in, &job->tile_out) != 0) {
        job->tiling_error = g_strdup(_("The model of the Training page has no valid tile size."));
        return;
    }
    UnetImage im = { .width = job->width, .height = job->height, .channels = job->channels, .data = job->image };
    if (unet_tile_grid_init(&job->grid, job->width, job->height, job->tile_in, job->tile_out, &err) != UNET_OK ||
        unet_tiling_draw(&job->grid, &im, 0, 1024, &job->tiling, &err) != UNET_OK)
        job->tiling_error = g_strdup(err.message);
}

static void aug_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    AugJob *job = data;
    UnetError err = { 0 };
    UnetStatus st = unet_augment_sample(&job->rec, &job->cfg, job->seed, job->width, job->height, &err);
    gsize n = 0;
    if (st == UNET_OK) {
        n = (gsize)job->rec.out_w * job->rec.out_h;
        job->image_out = g_new(float, n * job->channels);
        job->labels_out = g_new(gint32, n);
        st = unet_augment_apply(&job->rec, job->image, job->channels, job->labels, NULL, job->image_out,
                                job->labels_out, NULL, NULL, &err);
    }
    if (st != UNET_OK) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
        return;
    }
    if (g_task_return_error_if_cancelled(task))
        return;
    statistics(job);
    /* Weights of the sample the network would see: the transformed mask. */
    job->weight = g_new(float, n);
    UnetWeightMapOutputs wout = { .weight = job->weight };
    UnetScratch scratch = { 0 };
    if (unet_weightmap_compute(&job->wcfg, job->labels_out, NULL, job->rec.out_w, job->rec.out_h, &wout, &job->info,
                               &scratch, &err) != UNET_OK) {
        job->weight_error = g_strdup(err.message);
        g_clear_pointer(&job->weight, g_free);
    }
    unet_scratch_free(&scratch);
    if (g_task_return_error_if_cancelled(task))
        return;
    float *sx = g_new(float, n), *sy = g_new(float, n);
    job->segments = g_array_new(FALSE, FALSE, sizeof(float));
    if (unet_augment_source_coords(&job->rec, sx, sy, &err) == UNET_OK) {
        double step = MAX(job->width, job->height) / 12.0;
        isolines(sx, job->rec.out_w, job->rec.out_h, step, job->segments);
        isolines(sy, job->rec.out_w, job->rec.out_h, step, job->segments);
    }
    g_free(sx);
    g_free(sy);
    tiling(job);
    g_task_return_boolean(task, TRUE);
}

static void show_histograms(UnetAugmentPage *page, AugJob *job)
{
    unet_plot_clear(page->histogram);
    unet_plot_clear_markers(page->histogram);
    double top = job->cfg.intensity_max > 0 ? job->cfg.intensity_max : 1.0, bw = top / HIST_BINS;
    double total = (double)job->rec.out_w * job->rec.out_h * job->channels;
    /* Bars as a step outline: each bin a rise, a top and a fall. */
    for (int b = 0; b < HIST_BINS; b++) {
        double f = total > 0 ? job->hist[b] / total : 0;
        double xs[4] = { b * bw, b * bw, (b + 1) * bw, (b + 1) * bw }, ys[4] = { 0, f, f, 0 };
        unet_plot_append_many(page->histogram, 0, xs, ys, 4);
    }
    GdkRGBA red = { 0.86, 0.2, 0.18, 1 }, orange = { 0.9, 0.55, 0.1, 1 };
    unet_plot_add_marker(page->histogram, job->mean, _("mean"), &red);
    unet_plot_add_marker(page->histogram, job->mean - 2 * job->sd, _("−2 sd"), &orange);
    unet_plot_add_marker(page->histogram, job->mean + 2 * job->sd, _("+2 sd"), &orange);

    unet_plot_clear(page->class_histogram);
    double pixels = (double)job->rec.out_w * job->rec.out_h;
    for (int c = 0; c < job->n_classes; c++) {
        double f = pixels > 0 ? job->class_count[c] / pixels : 0;
        double xs[4] = { c - 0.4, c - 0.4, c + 0.4, c + 0.4 }, ys[4] = { 0, f, f, 0 };
        unet_plot_append_many(page->class_histogram, 0, xs, ys, 4);
    }
    unet_plot_set_x_range(page->class_histogram, -0.5, MAX(job->n_classes, 2) - 0.5);
}

static void show_weights(UnetAugmentPage *page, AugJob *job)
{
    UnetImageView *wv = page->views[UNET_AUGMENT_VIEW_WEIGHT];
    g_clear_pointer(&page->weight, g_free);
    if (!job->weight) {
        char *t = g_strdup_printf(_("No weight map: %s"), job->weight_error);
        gtk_label_set_text(page->weight_info, t);
        g_free(t);
        unet_image_view_clear(wv);
        return;
    }
    unet_image_view_set_map(wv, job->weight, job->rec.out_w, job->rec.out_h, 0, 0, "w(x)");
    page->weight = g_steal_pointer(&job->weight);
    page->weight_w = job->rec.out_w;
    page->weight_h = job->rec.out_h;
    page->weight_count++;
    gsize n = (gsize)page->weight_w * page->weight_h;
    float lo = INFINITY, hi = -INFINITY;
    for (gsize i = 0; i < n; i++) {
        lo = MIN(lo, page->weight[i]);
        hi = MAX(hi, page->weight[i]);
    }
    GString *cw = g_string_new(NULL);
    for (int c = 0; c < job->info.classes && c < 8; c++)
        g_string_append_printf(cw, "%s%.3g", c ? ", " : "", job->info.class_weights[c]);
    char *t = g_strdup_printf(_("Weight map of the augmented mask: %d cells; class weights %s; weights %.3g to "
                                "%.3g; border term cut off beyond %.1f px"),
                              job->info.cells, cw->str, lo, hi, job->info.cutoff);
    gtk_label_set_text(page->weight_info, t);
    g_free(t);
    g_string_free(cw, TRUE);
}

static void show_tiling(UnetAugmentPage *page, AugJob *job)
{
    page->has_grid = job->tiling_error == NULL;
    if (!page->has_grid) {
        unet_image_view_clear(page->tiling_view);
        gtk_label_set_text(page->tiling_info, job->tiling_error);
        return;
    }
    page->grid = job->grid;
    unet_image_view_set_image(page->tiling_view, job->tiling.data, job->tiling.width, job->tiling.height, 3, 0,
                              255);
    unet_image_view_zoom_fit(page->tiling_view);
    char *t = g_strdup_printf(_("The Training page's model maps a %d px input tile to a %d px output tile (%d px of "
                                "context on each side): %d x %d tiles cover this %d x %d image. Green: output tiles; "
                                "red: the first output tile, its input tile outlined in blue; yellow dashes: the "
                                "mirror lines, with the mirrored context dimmed beyond them."),
                              job->tile_in, job->tile_out, job->grid.border, job->grid.tiles_x, job->grid.tiles_y,
                              job->width, job->height);
    gtk_label_set_text(page->tiling_info, t);
    g_free(t);
}

static void aug_done(GObject *source, GAsyncResult *result, gpointer data)
{
    GError *error = NULL;
    if (!g_task_propagate_boolean(G_TASK(result), &error)) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            UnetAugmentPage *page = data;
            char *t = g_strdup_printf(_("No augmented sample: %s"), error->message);
            gtk_label_set_text(page->sample_info, t);
            g_free(t);
        }
        g_error_free(error);
        return;
    }
    UnetAugmentPage *page = data;
    AugJob *job = g_task_get_task_data(G_TASK(result));
    unet_augment_page_set_augmented(page, job->image_out, job->rec.out_w, job->rec.out_h, job->channels,
                                    job->labels_out);
    page->seed = job->seed;
    GString *steps = g_string_new(NULL);
    for (int i = 0; i < job->rec.count; i++)
        g_string_append_printf(steps, "%s%s", i ? ", " : "", unet_augment_kind_name(job->rec.steps[i].kind));
    if (!job->rec.count)
        g_string_assign(steps, _("no transform drawn"));
    char seed[32];
    g_snprintf(seed, sizeof seed, "%" G_GUINT64_FORMAT, job->seed);
    char *t = g_strdup_printf(_("Seed %s: %s. Augmented image: mean %.3g, sd %.3g."), seed, steps->str, job->mean,
                              job->sd);
    gtk_label_set_text(page->sample_info, t);
    g_free(t);
    g_string_free(steps, TRUE);
    show_histograms(page, job);
    show_weights(page, job);
    g_free(page->segments);
    page->n_segments = job->segments->len / 4;
    page->segments = (float *)g_array_free(g_steal_pointer(&job->segments), FALSE);
    gtk_widget_queue_draw(page->grid_area);
    show_tiling(page, job);
    page->aug_count++;
}

static void compute_all(UnetAugmentPage *page)
{
    if (page->cancel) {
        g_cancellable_cancel(page->cancel);
        g_clear_object(&page->cancel);
    }
    const UnetLoadedPair *p = page->session ? unet_session_get_loaded_pair(page->session) : NULL;
    if (!p)
        return;
    GSettings *s = unet_session_get_settings(page->session);
    AugJob *job = g_new0(AugJob, 1);
    unet_ui_augment_config_from_settings(s, &job->cfg);
    unet_ui_weightmap_config_from_settings(s, &job->wcfg);
    job->seed = g_settings_get_uint64(s, "aug-seed");
    const UnetImage *im = &p->pair.image;
    GError *error = NULL;
    job->model_ok = unet_ui_model_config_from_settings(s, im->channels, &job->model, &error);
    if (!job->model_ok) {
        job->model_error = g_strdup(error->message);
        g_error_free(error);
    }
    job->tile_near = g_settings_get_int(s, "tile-size");
    job->width = im->width;
    job->height = im->height;
    job->channels = im->channels;
    gsize n = (gsize)im->width * im->height;
    job->image = g_memdup2(im->data, n * im->channels * sizeof(float));
    job->labels = g_memdup2(p->pair.labels.data, n * sizeof(gint32));
    page->cancel = g_cancellable_new();
    GTask *task = g_task_new(NULL, page->cancel, aug_done, page);
    g_task_set_task_data(task, job, aug_job_free);
    g_task_run_in_thread(task, aug_thread);
    g_object_unref(task);
}

static gboolean debounced(gpointer data)
{
    UnetAugmentPage *page = data;
    page->debounce_id = 0;
    compute_all(page);
    return G_SOURCE_REMOVE;
}

/* Keys of the Training form that decide the model's tile geometry. */
static const char *const model_keys[] = { "arch", "depth", "base-channels", "padding", "norm", "upsample",
                                          "activation", "classes", "tile-size", NULL };

static void on_setting(GSettings *s, const char *key, UnetAugmentPage *page)
{
    if (!g_strcmp0(key, "colormap"))
        unet_image_view_set_colormap(page->views[UNET_AUGMENT_VIEW_WEIGHT], unet_ui_settings_colormap(s));
    if (!g_strcmp0(key, "show-displacement"))
        gtk_widget_set_visible(page->grid_area, g_settings_get_boolean(s, key));
    if (!g_str_has_prefix(key, "aug-") && !g_str_has_prefix(key, "weight-") && !g_strv_contains(model_keys, key))
        return;
    if (page->debounce_id)
        g_source_remove(page->debounce_id);
    page->debounce_id = g_timeout_add(60, debounced, page);
}

static void on_new_sample(GtkButton *b, UnetAugmentPage *page)
{
    if (!page->session)
        return;
    GSettings *s = unet_session_get_settings(page->session);
    guint64 old = g_settings_get_uint64(s, "aug-seed"), seed;
    do
        seed = (guint64)g_random_int_range(0, 1000000000);
    while (seed == old);
    g_settings_set_uint64(s, "aug-seed", seed);
}

/* ---- Displacement grid over the augmented image ---- */

static void draw_grid(GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer data)
{
    UnetAugmentPage *page = data;
    UnetImageView *view = page->views[UNET_AUGMENT_VIEW_AUG_IMAGE];
    double ax, ay, bx, by;
    if (!page->segments || !unet_image_view_widget_to_image(view, 0, 0, &ax, &ay) ||
        !unet_image_view_widget_to_image(view, 100, 100, &bx, &by) || bx == ax || by == ay)
        return;
    /* The view maps widget to image by a scale and a shift. */
    double sx = 100 / (bx - ax), sy = 100 / (by - ay);
    cairo_set_line_width(cr, 1.0);
    cairo_set_source_rgba(cr, 1.0, 0.85, 0.1, 0.85);
    for (gsize i = 0; i < page->n_segments; i++) {
        const float *s = page->segments + 4 * i;
        cairo_move_to(cr, (s[0] + 0.5 - ax) * sx, (s[1] + 0.5 - ay) * sy);
        cairo_line_to(cr, (s[2] + 0.5 - ax) * sx, (s[3] + 0.5 - ay) * sy);
    }
    cairo_stroke(cr);
}

static void on_transform_changed(UnetViewTransform *t, UnetAugmentPage *page)
{
    gtk_widget_queue_draw(page->grid_area);
}

/* ---- Pair ---- */

static void on_pair_loaded(UnetSession *s, gpointer pair, UnetAugmentPage *page)
{
    const UnetLoadedPair *p = pair;
    for (int i = UNET_AUGMENT_VIEW_AUG_IMAGE; i < UNET_AUGMENT_N_VIEWS; i++)
        unet_image_view_clear(page->views[i]);
    g_clear_pointer(&page->segments, g_free);
    page->n_segments = 0;
    unet_plot_clear(page->histogram);
    unet_plot_clear_markers(page->histogram);
    unet_plot_clear(page->class_histogram);
    if (!p) {
        for (int i = 0; i < UNET_AUGMENT_VIEW_AUG_IMAGE; i++)
            unet_image_view_clear(page->views[i]);
        unet_image_view_clear(page->tiling_view);
        gtk_label_set_text(page->sample_info, "");
        gtk_label_set_text(page->weight_info, "");
        gtk_label_set_text(page->tiling_info, "");
        if (page->cancel)
            g_cancellable_cancel(page->cancel);
        return;
    }
    const UnetImage *im = &p->pair.image;
    const UnetLabels *lab = &p->pair.labels;
    unet_image_view_set_image(page->views[UNET_AUGMENT_VIEW_IMAGE], im->data, im->width, im->height, im->channels,
                              0, 1);
    unet_image_view_set_labels(page->views[UNET_AUGMENT_VIEW_MASK], lab->data, lab->width, lab->height);
    unet_image_view_set_image(page->views[UNET_AUGMENT_VIEW_OVERLAY], im->data, im->width, im->height,
                              im->channels, 0, 1);
    unet_image_view_set_overlay(page->views[UNET_AUGMENT_VIEW_OVERLAY], lab->data, lab->width, lab->height);
    compute_all(page);
}

static void on_pixel_hovered(UnetImageView *view, int x, int y, UnetAugmentPage *page)
{
    for (int i = 0; i < UNET_AUGMENT_N_VIEWS; i++)
        unet_ui_show_pixel(page->views[i], page->values[i], x, y);
}

void unet_augment_page_set_augmented(UnetAugmentPage *page, const float *image, int width, int height,
                                     int channels, const gint32 *labels)
{
    g_return_if_fail(UNET_IS_AUGMENT_PAGE(page));
    /* Images lie in [0, 1] (augment.h intensity_max): shown on that scale so
     * brightness changes show. */
    unet_image_view_set_image(page->views[UNET_AUGMENT_VIEW_AUG_IMAGE], image, width, height, channels, 0, 1);
    unet_image_view_set_image(page->views[UNET_AUGMENT_VIEW_AUG_OVERLAY], image, width, height, channels, 0, 1);
    if (labels) {
        unet_image_view_set_labels(page->views[UNET_AUGMENT_VIEW_AUG_MASK], labels, width, height);
        unet_image_view_set_overlay(page->views[UNET_AUGMENT_VIEW_AUG_OVERLAY], labels, width, height);
    } else {
        unet_image_view_clear(page->views[UNET_AUGMENT_VIEW_AUG_MASK]);
    }
}

UnetImageView *unet_augment_page_get_view(UnetAugmentPage *page, UnetAugmentView which)
{
    g_return_val_if_fail(UNET_IS_AUGMENT_PAGE(page) && which >= 0 && which < UNET_AUGMENT_N_VIEWS, NULL);
    return page->views[which];
}

UnetImageView *unet_augment_page_get_weight_view(UnetAugmentPage *page)
{
    return page->views[UNET_AUGMENT_VIEW_WEIGHT];
}

UnetImageView *unet_augment_page_get_augmented_view(UnetAugmentPage *page)
{
    return page->views[UNET_AUGMENT_VIEW_AUG_IMAGE];
}

UnetImageView *unet_augment_page_get_tiling_view(UnetAugmentPage *page, UnetTileGrid *grid)
{
    if (grid && page->has_grid)
        *grid = page->grid;
    return page->has_grid ? page->tiling_view : NULL;
}

UnetPlot *unet_augment_page_get_histogram(UnetAugmentPage *page)
{
    return page->histogram;
}

UnetPlot *unet_augment_page_get_class_histogram(UnetAugmentPage *page)
{
    return page->class_histogram;
}

guint64 unet_augment_page_get_seed(UnetAugmentPage *page)
{
    return page->seed;
}

gsize unet_augment_page_get_displacement_segments(UnetAugmentPage *page)
{
    return page->n_segments;
}

GtkWidget *unet_augment_page_get_new_sample_button(UnetAugmentPage *page)
{
    return page->reroll;
}

const float *unet_augment_page_get_weight_map(UnetAugmentPage *page, int *width, int *height)
{
    if (width)
        *width = page->weight_w;
    if (height)
        *height = page->weight_h;
    return page->weight;
}

guint unet_augment_page_get_weight_count(UnetAugmentPage *page)
{
    return page->weight_count;
}

guint unet_augment_page_get_augment_count(UnetAugmentPage *page)
{
    return page->aug_count;
}

/* ---- Form ---- */

static const char *const balance_ids[] = { "max", "inverse", "none", NULL };

static void build_form(UnetAugmentPage *page, GSettings *s)
{
    UnetForm f;
    unet_form_init(&f, page->form_grid, s);
    unet_form_heading(&f, _("Augmentation"));
    unet_form_switch(&f, _("_Flips and right-angle rotations"), "aug-flip",
                     _("One of: mirror left-right, mirror up-down, transpose, or a quarter turn"));
    unet_form_spin(&f, _("Probability"), "aug-flip-p", 0, 1, 0.05, 2, NULL);
    unet_form_switch(&f, _("_Shift, scale and rotation"), "aug-ssr",
                     _("A random shift, zoom and rotation about the centre"));
    unet_form_spin(&f, _("Probability"), "aug-ssr-p", 0, 1, 0.05, 2, NULL);
    unet_form_spin(&f, _("Shift (fraction of the size)"), "aug-shift", 0, 0.5, 0.01, 3, NULL);
    unet_form_spin(&f, _("Scale (±)"), "aug-scale", 0, 0.9, 0.01, 2, NULL);
    unet_form_spin(&f, _("_Rotation (± degrees)"), "aug-rotate", 0, 180, 5, 0, NULL);
    unet_form_switch(&f, _("Gaussian _noise"), "aug-noise", _("Added noise with a random variance"));
    unet_form_spin(&f, _("Probability"), "aug-noise-p", 0, 1, 0.05, 2, NULL);
    unet_form_spin(&f, _("Largest variance (0–255 scale)"), "aug-noise-var", 0, 2000, 1, 0, NULL);
    unet_form_switch(&f, _("_Multiplicative noise"), "aug-mult", _("Each pixel times a random factor near 1"));
    unet_form_spin(&f, _("Probability"), "aug-mult-p", 0, 1, 0.05, 2, NULL);
    unet_form_spin(&f, _("Factor range (±)"), "aug-mult-range", 0, 0.9, 0.01, 2, NULL);
    unet_form_switch(&f, _("_Elastic deformation"), "aug-elastic",
                     _("A smooth random displacement field (albumentations ElasticTransform)"));
    unet_form_spin(&f, _("Probability"), "aug-elastic-p", 0, 1, 0.05, 2, NULL);
    unet_form_spin(&f, _("Strength alpha (px)"), "aug-elastic-alpha", 0, 500, 1, 1, NULL);
    unet_form_spin(&f, _("Smoothness sigma (px)"), "aug-elastic-sigma", 0.5, 100, 0.5, 1, NULL);
    unet_form_spin(&f, _("Affine range (px)"), "aug-elastic-affine", 0, 100, 0.5, 1, NULL);
    unet_form_switch(&f, _("_Grid deformation (paper)"), "aug-grid",
                     _("Random displacement vectors on a coarse grid, interpolated bicubically, as in the U-Net "
                       "paper"));
    unet_form_spin(&f, _("Probability"), "aug-grid-p", 0, 1, 0.05, 2, NULL);
    unet_form_spin(&f, _("Grid points per side"), "aug-grid-points", 2, 9, 1, 0, NULL);
    unet_form_spin(&f, _("Displacement sd (px)"), "aug-grid-sd", 0, 100, 1, 1, NULL);
    unet_form_switch(&f, _("_Brightness and contrast"), "aug-bc", _("A random change of brightness and contrast"));
    unet_form_spin(&f, _("Probability"), "aug-bc-p", 0, 1, 0.05, 2, NULL);
    unet_form_spin(&f, _("Brightness (±)"), "aug-brightness", 0, 1, 0.01, 2, NULL);
    unet_form_spin(&f, _("Contrast (±)"), "aug-contrast", 0, 1, 0.01, 2, NULL);
    unet_form_spin(&f, _("Preview s_eed"), "aug-seed", 0, 1e9, 1, 0, _("Seed of the augmented sample shown"));
    GtkWidget *reroll = gtk_button_new_with_mnemonic(_("_New Sample"));
    gtk_widget_set_tooltip_text(reroll, _("Draw a new random seed for the augmented sample"));
    g_signal_connect(reroll, "clicked", G_CALLBACK(on_new_sample), page);
    unet_form_row_full(&f, _("Sample"), reroll, reroll);
    page->reroll = reroll;

    unet_form_heading(&f, _("Loss Weights"));
    unet_form_spin(&f, _("Border weight _w0"), "weight-w0", 0, 100, 1, 1,
                   _("Extra weight of background pixels between touching cells; the paper uses 10"));
    unet_form_spin(&f, _("Border _width σ (px)"), "weight-sigma", 0.5, 50, 0.5, 1,
                   _("How far the border weight reaches; the paper uses 5"));
    const char *balance_labels[] = { _("Largest class frequency"), _("Inverse frequency"), _("None"), NULL };
    unet_form_dropdown(&f, _("Class _balance"), "weight-balance", balance_ids, balance_labels,
                       _("How class frequencies are evened out in the loss"));
}

static void set_session(UnetPage *p, UnetSession *session)
{
    UnetAugmentPage *page = UNET_AUGMENT_PAGE(p);
    g_return_if_fail(page->session == NULL);
    page->session = g_object_ref(session);
    GSettings *s = unet_session_get_settings(session);
    build_form(page, s);
    unet_image_view_set_colormap(page->views[UNET_AUGMENT_VIEW_WEIGHT], unet_ui_settings_colormap(s));
    g_settings_bind(s, "show-displacement", page->displacement_check, "active", G_SETTINGS_BIND_DEFAULT);
    gtk_widget_set_visible(page->grid_area, g_settings_get_boolean(s, "show-displacement"));
    g_signal_connect_object(session, "pair-loaded", G_CALLBACK(on_pair_loaded), page, 0);
    g_signal_connect_object(s, "changed", G_CALLBACK(on_setting), page, 0);
    on_pair_loaded(session, (gpointer)unet_session_get_loaded_pair(session), page);
}

static void page_iface_init(UnetPageInterface *iface)
{
    iface->set_session = set_session;
}

static void unet_augment_page_dispose(GObject *object)
{
    UnetAugmentPage *page = UNET_AUGMENT_PAGE(object);
    if (page->cancel)
        g_cancellable_cancel(page->cancel);
    g_clear_object(&page->cancel);
    g_clear_handle_id(&page->debounce_id, g_source_remove);
    if (page->transform)
        g_signal_handlers_disconnect_by_data(page->transform, page);
    gtk_widget_dispose_template(GTK_WIDGET(page), UNET_TYPE_AUGMENT_PAGE);
    g_clear_object(&page->session);
    g_clear_object(&page->transform);
    g_clear_pointer(&page->weight, g_free);
    g_clear_pointer(&page->segments, g_free);
    G_OBJECT_CLASS(unet_augment_page_parent_class)->dispose(object);
}

static void unet_augment_page_class_init(UnetAugmentPageClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_augment_page_dispose;
    g_type_ensure(UNET_TYPE_IMAGE_VIEW);
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/unetworkbench/Workbench/ui/unet-augment-page.ui");
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, box);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, form_grid);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, view_grid);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, weight_info);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, sample_info);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, tiling_info);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, tiling_view);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, displacement_check);
    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

/* A titled cell of the panel: heading, content, read-out line (may be NULL). */
static void add_cell(UnetAugmentPage *page, int col, int row, const char *title, GtkWidget *content,
                     GtkLabel **value)
{
    GtkWidget *cell = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    GtkWidget *heading = gtk_label_new(title);
    gtk_label_set_xalign(GTK_LABEL(heading), 0);
    gtk_label_set_ellipsize(GTK_LABEL(heading), PANGO_ELLIPSIZE_END);
    gtk_widget_add_css_class(heading, "heading");
    gtk_box_append(GTK_BOX(cell), heading);
    gtk_widget_set_size_request(content, -1, 200);
    gtk_widget_set_hexpand(content, TRUE);
    gtk_widget_set_vexpand(content, TRUE);
    gtk_box_append(GTK_BOX(cell), content);
    if (value) {
        GtkWidget *l = gtk_label_new("");
        gtk_label_set_xalign(GTK_LABEL(l), 0);
        gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
        gtk_widget_add_css_class(l, "dim-label");
        gtk_widget_add_css_class(l, "numeric");
        gtk_box_append(GTK_BOX(cell), l);
        *value = GTK_LABEL(l);
    }
    gtk_grid_attach(page->view_grid, cell, col, row, 1, 1);
}

static void unet_augment_page_init(UnetAugmentPage *page)
{
    gtk_widget_init_template(GTK_WIDGET(page));
    page->transform = unet_view_transform_new();
    g_signal_connect(page->transform, "changed", G_CALLBACK(on_transform_changed), page);
    static const char *const titles[UNET_AUGMENT_N_VIEWS] = {
        N_("Image"), N_("Mask"), N_("Overlay"), N_("Augmented Image"), N_("Augmented Mask"),
        N_("Augmented Overlay"), N_("Augmented Weight Map"),
    };
    for (int i = 0; i < UNET_AUGMENT_N_VIEWS; i++) {
        page->views[i] = UNET_IMAGE_VIEW(unet_image_view_new());
        unet_image_view_set_transform(page->views[i], page->transform);
        g_signal_connect(page->views[i], "pixel-hovered", G_CALLBACK(on_pixel_hovered), page);
        gtk_accessible_update_property(GTK_ACCESSIBLE(page->views[i]), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                       _(titles[i]), -1);
    }
    for (int i = 0; i < 6; i++) {
        GtkWidget *content = GTK_WIDGET(page->views[i]);
        if (i == UNET_AUGMENT_VIEW_AUG_IMAGE) {
            /* The displacement grid lies over the augmented image. */
            content = gtk_overlay_new();
            gtk_overlay_set_child(GTK_OVERLAY(content), GTK_WIDGET(page->views[i]));
            page->grid_area = gtk_drawing_area_new();
            gtk_widget_set_can_target(page->grid_area, FALSE);
            gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(page->grid_area), draw_grid, page, NULL);
            gtk_overlay_add_overlay(GTK_OVERLAY(content), page->grid_area);
            gtk_widget_set_visible(page->grid_area, FALSE);
        }
        add_cell(page, i % 3, i / 3, _(titles[i]), content, &page->values[i]);
    }
    page->histogram = UNET_PLOT(unet_plot_new());
    unet_plot_add_series(page->histogram, "", NULL);
    unet_plot_set_x_label(page->histogram, _("Intensity"));
    unet_plot_set_x_range(page->histogram, 0, 1);
    unet_plot_set_placeholder(page->histogram, _("Histogram of the augmented image"));
    add_cell(page, 0, 2, _("Augmented Intensities"), GTK_WIDGET(page->histogram), NULL);
    page->class_histogram = UNET_PLOT(unet_plot_new());
    unet_plot_add_series(page->class_histogram, "", NULL);
    unet_plot_set_x_label(page->class_histogram, _("Class"));
    unet_plot_set_y_range(page->class_histogram, 0, 1);
    unet_plot_set_placeholder(page->class_histogram, _("Classes of the augmented mask"));
    add_cell(page, 1, 2, _("Augmented Classes"), GTK_WIDGET(page->class_histogram), NULL);
    add_cell(page, 2, 2, _(titles[UNET_AUGMENT_VIEW_WEIGHT]), GTK_WIDGET(page->views[UNET_AUGMENT_VIEW_WEIGHT]),
             &page->values[UNET_AUGMENT_VIEW_WEIGHT]);
    unet_image_view_set_placeholder(page->views[UNET_AUGMENT_VIEW_IMAGE], _("Select a pair in the dataset list."));
    unet_image_view_set_placeholder(page->views[UNET_AUGMENT_VIEW_AUG_IMAGE],
                                    _("Augmented sample of the selected pair"));
    unet_image_view_set_placeholder(page->tiling_view, _("Select a pair to see how the model tiles it."));
}
