/* unet-segment-page.c - UnetSegmentPage: image, probability and segmentation views. */
#include "unet-segment-page.h"

#include <glib/gi18n.h>
#include <math.h>

#include <string.h>

#include "backend.h"
#include "components.h"
#include "inference.h"
#include "unet-form.h"
#include "unet-run-config.h"
#include "unet-ui-util.h"

struct _UnetSegmentPage {
    GtkWidget parent_instance;
    GtkWidget *box;
    GtkGrid *form_grid;
    GtkLabel *segment_info, *status_label;
    GtkProgressBar *progress;
    UnetImageView *image_view, *probability_view, *result_view;
    GtkLabel *image_value, *probability_value, *result_value;

    GtkLabel *image_label, *model_label;
    UnetSession *session;
    UnetViewTransform *transform;
    UnetImage image;
    char *image_path;
    GCancellable *cancel;
    UnetRunState state;
    gboolean can_start;

    GCancellable *run_cancel;  /* the segmentation running, NULL: none */
    guint progress_id;
    gint progress_done, progress_total; /* atomics written by the worker */
    gboolean segment_when_loaded;
    /* The last result, for the image shown. */
    float *probs;      /* classes x h x w */
    float *foreground; /* P(not background), h x w */
    gint32 *labels, *overlay, *objects;
    int classes, res_w, res_h, n_objects;
    int selected_object;
    GtkLabel *object_label;
    GtkWidget *export_mask, *export_probs;
};

static void page_iface_init(UnetPageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(UnetSegmentPage, unet_segment_page, GTK_TYPE_WIDGET,
                              G_IMPLEMENT_INTERFACE(UNET_TYPE_PAGE, page_iface_init))

/* ---- Loading an image ---- */

static void image_free(gpointer data)
{
    UnetImage *img = data;
    unet_image_free(img);
    g_free(img);
}

static void load_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    const char *path = data;
    UnetImage *img = g_new0(UnetImage, 1);
    UnetError err = { 0 };
    if (unet_image_load(path, img, &err) != UNET_OK) {
        g_free(img);
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
        return;
    }
    g_task_return_pointer(task, img, image_free);
}

static void show_image_info(UnetSegmentPage *page)
{
    if (!page->image.data) {
        gtk_label_set_text(page->segment_info, "");
        return;
    }
    const UnetImage *im = &page->image;
    char *t = g_strdup_printf(g_dngettext(NULL, "%d × %d pixels, %d channel, %s, %d-bit",
                                          "%d × %d pixels, %d channels, %s, %d-bit", im->channels),
                              im->width, im->height, im->channels, unet_image_format_name(im->format),
                              im->bit_depth);
    gtk_label_set_text(page->segment_info, t);
    g_free(t);
}

static void clear_result(UnetSegmentPage *page)
{
    g_clear_pointer(&page->probs, g_free);
    g_clear_pointer(&page->foreground, g_free);
    g_clear_pointer(&page->labels, g_free);
    g_clear_pointer(&page->overlay, g_free);
    g_clear_pointer(&page->objects, g_free);
    page->res_w = page->res_h = page->n_objects = 0;
    page->selected_object = 0;
    if (page->object_label)
        gtk_label_set_text(page->object_label, "");
    if (page->export_mask) {
        gtk_widget_set_sensitive(page->export_mask, FALSE);
        gtk_widget_set_sensitive(page->export_probs, FALSE);
    }
}

static gboolean has_checkpoint(UnetSegmentPage *page)
{
    if (!page->session)
        return FALSE;
    char *path = g_settings_get_string(unet_session_get_settings(page->session), "segment-checkpoint");
    gboolean ok = *path != 0;
    g_free(path);
    return ok;
}

static void image_loaded(GObject *source, GAsyncResult *result, gpointer data)
{
    GError *error = NULL;
    UnetImage *img = g_task_propagate_pointer(G_TASK(result), &error);
    if (!img) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            UnetSegmentPage *page = data;
            if (page->session)
                unet_session_message(page->session, TRUE, _("Could not open the image: %s"), error->message);
        }
        g_error_free(error);
        return;
    }
    UnetSegmentPage *page = data;
    const char *path = g_task_get_task_data(G_TASK(result));
    unet_image_free(&page->image);
    page->image = *img;
    g_free(img);
    g_free(page->image_path);
    page->image_path = g_strdup(path);
    char *base = g_path_get_basename(path);
    gtk_label_set_text(page->image_label, base);
    gtk_widget_set_tooltip_text(GTK_WIDGET(page->image_label), path);
    g_free(base);
    const UnetImage *im = &page->image;
    unet_image_view_set_image(page->image_view, im->data, im->width, im->height, im->channels, 0, 0);
    unet_image_view_set_image(page->result_view, im->data, im->width, im->height, im->channels, 0, 0);
    unet_image_view_clear(page->probability_view);
    unet_view_transform_set_fit(page->transform);
    show_image_info(page);
    clear_result(page);
    unet_page_run_changed(UNET_PAGE(page));
    if (page->session)
        g_settings_set_string(unet_session_get_settings(page->session), "last-image", path);
    if (page->segment_when_loaded && has_checkpoint(page))
        unet_page_run_start(UNET_PAGE(page));
    page->segment_when_loaded = FALSE;
}

void unet_segment_page_open_image(UnetSegmentPage *page, const char *path)
{
    g_return_if_fail(UNET_IS_SEGMENT_PAGE(page));
    g_return_if_fail(path != NULL);
    if (page->cancel)
        g_cancellable_cancel(page->cancel);
    g_clear_object(&page->cancel);
    page->cancel = g_cancellable_new();
    page->segment_when_loaded = TRUE;
    GTask *task = g_task_new(NULL, page->cancel, image_loaded, page);
    g_task_set_task_data(task, g_strdup(path), g_free);
    g_task_run_in_thread(task, load_thread);
    g_object_unref(task);
}

const UnetImage *unet_segment_page_get_image(UnetSegmentPage *page)
{
    return page->image.data ? &page->image : NULL;
}

const char *unet_segment_page_get_image_path(UnetSegmentPage *page)
{
    return page->image_path;
}

void unet_segment_page_set_result(UnetSegmentPage *page, const float *probability, const gint32 *labels, int width,
                                  int height)
{
    g_return_if_fail(UNET_IS_SEGMENT_PAGE(page));
    if (probability)
        unet_image_view_set_map(page->probability_view, probability, width, height, 0, 1, _("P(foreground)"));
    if (labels)
        unet_image_view_set_overlay(page->result_view, labels, width, height);
}

/* ---- Result: threshold, objects, selection ---- */

/* The overlay: the labels, with the selected object's outline in its own
 * colour (label classes + 1). */
static void show_overlay(UnetSegmentPage *page)
{
    if (!page->labels)
        return;
    gsize n = (gsize)page->res_w * page->res_h;
    memcpy(page->overlay, page->labels, n * sizeof(gint32));
    int sel = page->selected_object, w = page->res_w, h = page->res_h;
    if (sel > 0) {
        gint32 mark = MAX(2, page->classes) + 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (page->objects[(gsize)y * w + x] != sel)
                    continue;
                gboolean edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 ||
                                page->objects[(gsize)y * w + x - 1] != sel ||
                                page->objects[(gsize)y * w + x + 1] != sel ||
                                page->objects[(gsize)(y - 1) * w + x] != sel ||
                                page->objects[(gsize)(y + 1) * w + x] != sel;
                if (edge)
                    page->overlay[(gsize)y * w + x] = mark;
            }
        }
    }
    unet_image_view_set_overlay(page->result_view, page->overlay, w, h);
}

static void apply_threshold(UnetSegmentPage *page)
{
    if (!page->probs)
        return;
    double thr = g_settings_get_double(unet_session_get_settings(page->session), "segment-threshold");
    gsize n = (gsize)page->res_w * page->res_h;
    unet_probs_to_labels(page->probs, page->classes, page->res_h, page->res_w, (float)thr, page->labels);
    guint8 *fg = g_malloc(n);
    for (gsize i = 0; i < n; i++)
        fg[i] = page->labels[i] != 0;
    UnetError err = { 0 };
    if (unet_components_label(page->objects, fg, page->res_w, page->res_h, 4, &page->n_objects, &err) != UNET_OK)
        page->n_objects = 0;
    g_free(fg);
    page->selected_object = 0;
    gtk_label_set_text(page->object_label, "");
    show_overlay(page);
    gsize on = 0;
    for (gsize i = 0; i < n; i++)
        on += page->labels[i] != 0;
    char *t = g_strdup_printf(_("%d objects, %.1f %% of the image foreground; click an object to measure it."),
                              page->n_objects, 100.0 * on / MAX(1, n));
    gtk_label_set_text(page->status_label, t);
    g_free(t);
}

gboolean unet_segment_page_select_object(UnetSegmentPage *page, int x, int y)
{
    g_return_val_if_fail(UNET_IS_SEGMENT_PAGE(page), FALSE);
    if (!page->objects || x < 0 || y < 0 || x >= page->res_w || y >= page->res_h)
        return FALSE;
    int id = page->objects[(gsize)y * page->res_w + x];
    page->selected_object = id;
    show_overlay(page);
    if (!id) {
        gtk_label_set_text(page->object_label, _("Background: no object here."));
        return FALSE;
    }
    gsize n = (gsize)page->res_w * page->res_h, area = 0;
    double sum = 0;
    for (gsize i = 0; i < n; i++) {
        if (page->objects[i] == id) {
            area++;
            sum += page->foreground[i];
        }
    }
    char *t = g_strdup_printf(_("Object %d: %lu pixels, mean probability %.3f"), id, (unsigned long)area,
                              sum / MAX(1, area));
    gtk_label_set_text(page->object_label, t);
    g_free(t);
    return TRUE;
}

const gint32 *unet_segment_page_get_labels(UnetSegmentPage *page, int *width, int *height)
{
    if (width)
        *width = page->res_w;
    if (height)
        *height = page->res_h;
    return page->labels;
}

const gint32 *unet_segment_page_get_objects(UnetSegmentPage *page, int *count)
{
    if (count)
        *count = page->n_objects;
    return page->objects;
}

int unet_segment_page_get_selected_object(UnetSegmentPage *page)
{
    return page->selected_object;
}

static void on_result_pressed(GtkGestureClick *g, int n_press, double wx, double wy, UnetSegmentPage *page)
{
    double ix, iy;
    if (unet_image_view_widget_to_image(page->result_view, wx, wy, &ix, &iy))
        unet_segment_page_select_object(page, (int)floor(ix), (int)floor(iy));
}

/* ---- Segmentation job ---- */

typedef struct SegmentJob {
    UnetSegmentPage *page; /* progress only, through atomics */
    char *checkpoint;
    char device[16];
    UnetPrecision precision; /* on the GPU; the CPU computes fp32 */
    int tile;
    UnetImage image;
    GCancellable *cancel;
    float *probs;
    int classes, width, height;
} SegmentJob;

static void segment_job_free(gpointer data)
{
    SegmentJob *job = data;
    g_free(job->checkpoint);
    unet_image_free(&job->image);
    g_clear_object(&job->cancel);
    g_free(job->probs);
    g_object_unref(job->page);
    g_free(job);
}

static int segment_progress(long done, long total, void *user)
{
    SegmentJob *job = user;
    g_atomic_int_set(&job->page->progress_done, (gint)done);
    g_atomic_int_set(&job->page->progress_total, (gint)total);
    return g_cancellable_is_cancelled(job->cancel);
}

static void segment_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    SegmentJob *job = data;
    UnetError err = { 0 };
    /* One core stays with the window. */
    UnetBackend *be = unet_backend_open(job->device, MAX(1, (int)g_get_num_processors() - 1), NULL, 0, &err);
    UnetModel *model = NULL;
    UnetInputSpec spec;
    UnetImage in = { 0 };
    UnetStatus st = be ? UNET_OK : UNET_ERR_INVALID;
    if (st == UNET_OK)
        st = unet_backend_set_precision(be, strcmp(be->name, "cuda") ? UNET_PRECISION_FP32 : job->precision, &err);
    if (st == UNET_OK)
        st = unet_checkpoint_open_model(job->checkpoint, be, &model, &spec, NULL, NULL, &err);
    if (st == UNET_OK)
        st = unet_image_to_input(&job->image, &spec, &in, &err);
    if (st == UNET_OK) {
        const UnetModelConfig *cfg = unet_model_config(model);
        if (in.channels != cfg->in_channels) {
            st = unet_error_set(&err, UNET_ERR_INVALID,
                                "the model takes %d input channels, the image gives %d; choose a model trained on "
                                "such images",
                                cfg->in_channels, in.channels);
        } else {
            job->classes = cfg->classes;
            job->width = in.width;
            job->height = in.height;
            job->probs = g_try_malloc((gsize)cfg->classes * in.width * in.height * sizeof(float));
            UnetPredictOptions opt;
            unet_predict_options_default(&opt);
            opt.progress = segment_progress;
            opt.progress_user = job;
            /* The form's tile when the model takes it, else the model's default. */
            UnetPredictGeometry geo;
            opt.tile = job->tile;
            if (unet_predict_geometry(cfg, be, in.width, in.height, &opt, &geo, NULL) != UNET_OK)
                opt.tile = 0;
            if (!job->probs)
                st = unet_error_set(&err, UNET_ERR_NOMEM, "out of memory for the probabilities");
            else
                st = unet_predict(model, in.data, in.channels, in.height, in.width, &opt, job->probs, &err);
        }
    }
    unet_image_free(&in);
    unet_model_free(model);
    unet_backend_destroy(be);
    if (st == UNET_ERR_CANCELLED || g_cancellable_is_cancelled(job->cancel)) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s", _("Segmentation cancelled"));
        return;
    }
    if (st != UNET_OK) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
        return;
    }
    g_task_return_boolean(task, TRUE);
}

static gboolean show_segment_progress(gpointer data)
{
    UnetSegmentPage *page = data;
    int total = g_atomic_int_get(&page->progress_total), done = g_atomic_int_get(&page->progress_done);
    if (total > 0) {
        gtk_progress_bar_set_fraction(page->progress, CLAMP((double)done / total, 0, 1));
        char *t = g_strdup_printf(_("Tile %d of %d"), done, total);
        gtk_progress_bar_set_text(page->progress, t);
        g_free(t);
    } else {
        gtk_progress_bar_pulse(page->progress);
    }
    return G_SOURCE_CONTINUE;
}

static void set_running(UnetSegmentPage *page, gboolean running)
{
    page->state = running ? UNET_RUN_RUNNING : UNET_RUN_IDLE;
    gtk_widget_set_visible(gtk_widget_get_parent(GTK_WIDGET(page->progress)), running);
    if (running && !page->progress_id)
        page->progress_id = g_timeout_add(100, show_segment_progress, page);
    else if (!running)
        g_clear_handle_id(&page->progress_id, g_source_remove);
    unet_page_run_changed(UNET_PAGE(page));
}

static void segment_done(GObject *source, GAsyncResult *result, gpointer data)
{
    UnetSegmentPage *page = data;
    SegmentJob *job = g_task_get_task_data(G_TASK(result));
    GError *error = NULL;
    gboolean ok = g_task_propagate_boolean(G_TASK(result), &error);
    if (page->run_cancel == job->cancel) {
        g_clear_object(&page->run_cancel);
        set_running(page, FALSE);
    }
    if (!ok) {
        if (page->session && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            unet_session_message(page->session, TRUE, _("Could not segment the image: %s"), error->message);
        else
            gtk_label_set_text(page->status_label, error->message);
        g_error_free(error);
        g_object_unref(page);
        return;
    }
    /* A result for another image than the one shown now is dropped. */
    if (page->image.data && page->image.width == job->width && page->image.height == job->height) {
        clear_result(page);
        gsize n = (gsize)job->width * job->height;
        page->probs = g_steal_pointer(&job->probs);
        page->classes = job->classes;
        page->res_w = job->width;
        page->res_h = job->height;
        page->foreground = g_new(float, n);
        if (page->classes == 1) {
            memcpy(page->foreground, page->probs, n * sizeof(float));
        } else {
            for (gsize i = 0; i < n; i++)
                page->foreground[i] = 1.0f - page->probs[i];
        }
        page->labels = g_new(gint32, n);
        page->overlay = g_new(gint32, n);
        page->objects = g_new(gint32, n);
        unet_image_view_set_map(page->probability_view, page->foreground, page->res_w, page->res_h, 0, 1,
                                _("P(foreground)"));
        apply_threshold(page);
        gtk_widget_set_sensitive(page->export_mask, TRUE);
        gtk_widget_set_sensitive(page->export_probs, TRUE);
    }
    g_object_unref(page);
}

gboolean unet_segment_page_segment(UnetSegmentPage *page)
{
    g_return_val_if_fail(UNET_IS_SEGMENT_PAGE(page), FALSE);
    if (!page->session || !page->image.data || page->run_cancel)
        return FALSE;
    GSettings *s = unet_session_get_settings(page->session);
    char *ckpt = g_settings_get_string(s, "segment-checkpoint");
    if (!*ckpt) {
        unet_session_message(page->session, TRUE, "%s",
                             _("No model to segment with: train one on the Training page or choose a checkpoint."));
        g_free(ckpt);
        return FALSE;
    }
    SegmentJob *job = g_new0(SegmentJob, 1);
    job->page = g_object_ref(page);
    job->checkpoint = ckpt;
    char *dev = g_settings_get_string(s, "device");
    g_strlcpy(job->device, dev, sizeof job->device);
    job->precision = unet_ui_precision_from_settings(s, !g_strcmp0(dev, "cuda"));
    g_free(dev);
    job->tile = g_settings_get_int(s, "tile-size");
    UnetError err = { 0 };
    const UnetImage *im = &page->image;
    if (unet_image_alloc(&job->image, im->width, im->height, im->channels, &err) != UNET_OK) {
        unet_session_message(page->session, TRUE, _("Could not segment the image: %s"), err.message);
        segment_job_free(job);
        return FALSE;
    }
    UnetImage keep = job->image;
    job->image = *im;
    job->image.data = keep.data;
    memcpy(job->image.data, im->data, (gsize)im->width * im->height * im->channels * sizeof(float));
    job->cancel = g_cancellable_new();
    page->run_cancel = g_object_ref(job->cancel);
    g_atomic_int_set(&page->progress_done, 0);
    g_atomic_int_set(&page->progress_total, 0);
    gtk_progress_bar_set_fraction(page->progress, 0);
    char *base = g_path_get_basename(job->checkpoint);
    char *t = g_strdup_printf(_("Segmenting with %s…"), base);
    gtk_label_set_text(page->status_label, t);
    g_free(t);
    g_free(base);
    set_running(page, TRUE);
    GTask *task = g_task_new(NULL, NULL, segment_done, g_object_ref(page));
    g_task_set_task_data(task, job, segment_job_free);
    g_task_run_in_thread(task, segment_thread);
    g_object_unref(task);
    return TRUE;
}

gboolean unet_segment_page_is_busy(UnetSegmentPage *page)
{
    return page->run_cancel != NULL;
}

void unet_segment_page_cancel(UnetSegmentPage *page)
{
    if (page->run_cancel)
        g_cancellable_cancel(page->run_cancel);
}

/* ---- Export ---- */

static void mask_chosen(GFile *file, gpointer data)
{
    UnetSegmentPage *page = data;
    char *path = g_file_get_path(file);
    if (path && page->labels) {
        GError *error = NULL;
        if (!unet_segment_page_export_mask(page, path, &error)) {
            unet_session_message(page->session, TRUE, "%s", error->message);
            g_error_free(error);
        }
    }
    g_free(path);
}

static void probs_chosen(GFile *file, gpointer data)
{
    UnetSegmentPage *page = data;
    char *path = g_file_get_path(file);
    if (path && page->probs) {
        GError *error = NULL;
        if (!unet_segment_page_export_probabilities(page, path, &error)) {
            unet_session_message(page->session, TRUE, "%s", error->message);
            g_error_free(error);
        }
    }
    g_free(path);
}

gboolean unet_segment_page_export_mask(UnetSegmentPage *page, const char *path, GError **error)
{
    if (!page->labels) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Nothing segmented yet."));
        return FALSE;
    }
    gsize n = (gsize)page->res_w * page->res_h;
    /* A binary mask is written 0/255 like the training masks. */
    UnetLabels lab = { 0 };
    UnetError err = { 0 };
    if (unet_labels_alloc(&lab, page->res_w, page->res_h, &err) != UNET_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
        return FALSE;
    }
    int two = page->classes <= 2;
    for (gsize i = 0; i < n; i++)
        lab.data[i] = two && page->labels[i] ? 255 : page->labels[i];
    UnetStatus st = unet_labels_save_png(path, &lab, &err);
    unet_labels_free(&lab);
    if (st != UNET_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not save the mask: %s"), err.message);
        return FALSE;
    }
    unet_session_message(page->session, FALSE, _("Mask saved to %s"), path);
    return TRUE;
}

gboolean unet_segment_page_export_probabilities(UnetSegmentPage *page, const char *path, GError **error)
{
    if (!page->probs) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Nothing segmented yet."));
        return FALSE;
    }
    int shape[3] = { page->classes, page->res_h, page->res_w };
    UnetError err = { 0 };
    if (unet_npy_save(path, page->probs, 3, shape, &err) != UNET_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not save the probabilities: %s"), err.message);
        return FALSE;
    }
    unet_session_message(page->session, FALSE, _("Probabilities saved to %s"), path);
    return TRUE;
}

static char *export_name(UnetSegmentPage *page, const char *suffix)
{
    char *base = page->image_path ? g_path_get_basename(page->image_path) : g_strdup("image");
    char *dot = strrchr(base, '.');
    if (dot)
        *dot = 0;
    char *name = g_strconcat(base, suffix, NULL);
    g_free(base);
    return name;
}

static void on_export_mask(GtkButton *b, UnetSegmentPage *page)
{
    char *name = export_name(page, "-mask.png");
    unet_ui_choose_save_file(GTK_WIDGET(page), _("Save the Mask"), name, mask_chosen, g_object_ref(page),
                             g_object_unref);
    g_free(name);
}

static void on_export_probs(GtkButton *b, UnetSegmentPage *page)
{
    char *name = export_name(page, "-probabilities.npy");
    unet_ui_choose_save_file(GTK_WIDGET(page), _("Save the Probabilities"), name, probs_chosen, g_object_ref(page),
                             g_object_unref);
    g_free(name);
}

/* ---- Run controls ---- */

static void get_run_info(UnetPage *p, UnetRunInfo *info)
{
    UnetSegmentPage *page = UNET_SEGMENT_PAGE(p);
    info->state = page->state;
    info->can_start = page->can_start && page->state == UNET_RUN_IDLE && page->image.data && has_checkpoint(page);
    info->start_label = _("Segment Image (F5)");
}

static void run_start(UnetPage *p)
{
    unet_segment_page_segment(UNET_SEGMENT_PAGE(p));
}

static void run_stop(UnetPage *p)
{
    unet_segment_page_cancel(UNET_SEGMENT_PAGE(p));
}

void unet_segment_page_set_run_state(UnetSegmentPage *page, UnetRunState state, gboolean can_start)
{
    g_return_if_fail(UNET_IS_SEGMENT_PAGE(page));
    page->can_start = can_start;
    page->state = state == UNET_RUN_NONE ? UNET_RUN_IDLE : state;
    unet_page_run_changed(UNET_PAGE(page));
}

/* ---- Form ---- */

static void show_checkpoint(UnetSegmentPage *page)
{
    char *path = g_settings_get_string(unet_session_get_settings(page->session), "segment-checkpoint");
    if (*path) {
        char *base = g_path_get_basename(path);
        gtk_label_set_text(page->model_label, base);
        g_free(base);
    } else {
        gtk_label_set_text(page->model_label, _("No model chosen"));
    }
    gtk_widget_set_tooltip_text(GTK_WIDGET(page->model_label), *path ? path : NULL);
    g_free(path);
}

static void checkpoint_chosen(GFile *file, gpointer data)
{
    UnetSegmentPage *page = data;
    char *path = g_file_get_path(file);
    if (path && page->session)
        g_settings_set_string(unet_session_get_settings(page->session), "segment-checkpoint", path);
    g_free(path);
}

static void on_choose_model(GtkButton *b, UnetSegmentPage *page)
{
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, _("Checkpoints (safetensors)"));
    gtk_file_filter_add_suffix(f, "safetensors");
    unet_ui_choose_open_file(GTK_WIDGET(page), _("Choose a Trained Model"), f, checkpoint_chosen,
                             g_object_ref(page), g_object_unref);
}

static GtkWidget *file_row(UnetForm *f, const char *label, GtkLabel **value, const char *button_label,
                           const char *action, GCallback clicked, gpointer data, const char *tooltip)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *l = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_MIDDLE);
    gtk_label_set_width_chars(GTK_LABEL(l), 16);
    gtk_widget_set_hexpand(l, TRUE);
    gtk_box_append(GTK_BOX(box), l);
    GtkWidget *b = gtk_button_new_with_mnemonic(button_label);
    gtk_widget_set_tooltip_text(b, tooltip);
    if (action)
        gtk_actionable_set_action_name(GTK_ACTIONABLE(b), action);
    if (clicked)
        g_signal_connect(b, "clicked", clicked, data);
    gtk_box_append(GTK_BOX(box), b);
    unet_form_row_full(f, label, box, b);
    *value = GTK_LABEL(l);
    return b;
}

static void scale_row(UnetForm *f, GSettings *s, const char *label, const char *key, const char *tooltip)
{
    GtkWidget *scale = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 0, 1, 0.01);
    gtk_scale_set_digits(GTK_SCALE(scale), 2);
    gtk_scale_set_draw_value(GTK_SCALE(scale), TRUE);
    gtk_widget_set_hexpand(scale, TRUE);
    gtk_widget_set_tooltip_text(scale, tooltip);
    g_settings_bind(s, key, gtk_range_get_adjustment(GTK_RANGE(scale)), "value", G_SETTINGS_BIND_DEFAULT);
    unet_form_row(f, label, scale);
}

static void on_selected(UnetSession *session, GParamSpec *pspec, UnetSegmentPage *page)
{
    /* Clicking a thumbnail while this page is shown segments that image. */
    if (!gtk_widget_get_mapped(GTK_WIDGET(page)))
        return;
    int i = unet_session_get_selected(session);
    UnetPairItem *item = i >= 0 ? unet_dataset_store_get_item(unet_session_get_store(session), i) : NULL;
    if (!item)
        return;
    page->segment_when_loaded = TRUE;
    unet_segment_page_open_image(page, unet_pair_item_get_image_path(item));
}

static void build_form(UnetSegmentPage *page, GSettings *s)
{
    UnetForm f;
    unet_form_init(&f, page->form_grid, s);
    unet_form_heading(&f, _("Input"));
    file_row(&f, _("_Image"), &page->image_label, _("_Open…"), "win.open-image", NULL, NULL,
             _("Open an image to segment (Ctrl+Shift+O)"));
    gtk_label_set_text(page->image_label, _("No image open"));
    file_row(&f, _("_Model"), &page->model_label, _("_Choose…"), NULL, G_CALLBACK(on_choose_model), page,
             _("Choose the checkpoint of a trained model"));
    show_checkpoint(page);
    unet_form_heading(&f, _("Segmentation"));
    unet_form_spin(&f, _("_Tile size (px)"), "tile-size", 16, 4096, 4, 0,
                   _("Side of the network input tile; large images are segmented tile by tile with mirrored "
                     "borders"));
    scale_row(&f, s, _("_Threshold"), "segment-threshold",
              _("Probability above which a pixel counts as foreground"));
    scale_row(&f, s, _("Overlay o_pacity"), "overlay-opacity", _("Opacity of the segmentation drawn over the image"));
    unet_form_heading(&f, _("Result"));
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    page->export_mask = gtk_button_new_with_mnemonic(_("Save _Mask…"));
    gtk_widget_set_tooltip_text(page->export_mask, _("Save the segmentation as a PNG mask"));
    g_signal_connect(page->export_mask, "clicked", G_CALLBACK(on_export_mask), page);
    page->export_probs = gtk_button_new_with_mnemonic(_("Save _Probabilities…"));
    gtk_widget_set_tooltip_text(page->export_probs, _("Save the class probabilities as a NumPy .npy array"));
    g_signal_connect(page->export_probs, "clicked", G_CALLBACK(on_export_probs), page);
    gtk_widget_set_sensitive(page->export_mask, FALSE);
    gtk_widget_set_sensitive(page->export_probs, FALSE);
    gtk_box_append(GTK_BOX(box), page->export_mask);
    gtk_box_append(GTK_BOX(box), page->export_probs);
    unet_form_row_full(&f, _("E_xport"), box, page->export_mask);
    GtkWidget *l = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_selectable(GTK_LABEL(l), TRUE);
    page->object_label = GTK_LABEL(l);
    gtk_grid_attach(f.grid, l, 0, f.row++, 2, 1);
}

static void apply_preferences(UnetSegmentPage *page)
{
    GSettings *s = unet_session_get_settings(page->session);
    unet_image_view_set_colormap(page->probability_view, unet_ui_settings_colormap(s));
    GdkRGBA c;
    unet_ui_settings_overlay_color(s, &c);
    unet_image_view_set_overlay_color(page->result_view, &c);
    unet_image_view_set_overlay_opacity(page->result_view, g_settings_get_double(s, "overlay-opacity"));
}

static void on_settings_changed(GSettings *s, const char *key, UnetSegmentPage *page)
{
    if (!g_strcmp0(key, "segment-checkpoint")) {
        show_checkpoint(page);
        unet_page_run_changed(UNET_PAGE(page));
    } else if (!g_strcmp0(key, "segment-threshold")) {
        apply_threshold(page);
    } else {
        apply_preferences(page);
    }
}

static void set_session(UnetPage *p, UnetSession *session)
{
    UnetSegmentPage *page = UNET_SEGMENT_PAGE(p);
    g_return_if_fail(page->session == NULL);
    page->session = g_object_ref(session);
    GSettings *s = unet_session_get_settings(session);
    build_form(page, s);
    apply_preferences(page);
    g_signal_connect_object(s, "changed", G_CALLBACK(on_settings_changed), page, 0);
    g_signal_connect_object(session, "notify::selected", G_CALLBACK(on_selected), page, 0);
}

static void page_iface_init(UnetPageInterface *iface)
{
    iface->set_session = set_session;
    iface->get_run_info = get_run_info;
    iface->run_start = run_start;
    iface->run_stop = run_stop;
}

UnetImageView *unet_segment_page_get_image_view(UnetSegmentPage *page)
{
    return page->image_view;
}

UnetImageView *unet_segment_page_get_probability_view(UnetSegmentPage *page)
{
    return page->probability_view;
}

UnetImageView *unet_segment_page_get_result_view(UnetSegmentPage *page)
{
    return page->result_view;
}

static void on_pixel_hovered(UnetImageView *view, int x, int y, UnetSegmentPage *page)
{
    unet_ui_show_pixel(page->image_view, page->image_value, x, y);
    unet_ui_show_pixel(page->probability_view, page->probability_value, x, y);
    unet_ui_show_pixel(page->result_view, page->result_value, x, y);
}

static void unet_segment_page_dispose(GObject *object)
{
    UnetSegmentPage *page = UNET_SEGMENT_PAGE(object);
    if (page->cancel)
        g_cancellable_cancel(page->cancel);
    g_clear_object(&page->cancel);
    if (page->run_cancel)
        g_cancellable_cancel(page->run_cancel);
    g_clear_object(&page->run_cancel);
    g_clear_handle_id(&page->progress_id, g_source_remove);
    page->object_label = NULL;
    page->export_mask = page->export_probs = NULL;
    gtk_widget_dispose_template(GTK_WIDGET(page), UNET_TYPE_SEGMENT_PAGE);
    g_clear_object(&page->session);
    g_clear_object(&page->transform);
    G_OBJECT_CLASS(unet_segment_page_parent_class)->dispose(object);
}

static void unet_segment_page_finalize(GObject *object)
{
    UnetSegmentPage *page = UNET_SEGMENT_PAGE(object);
    unet_image_free(&page->image);
    g_free(page->image_path);
    clear_result(page);
    G_OBJECT_CLASS(unet_segment_page_parent_class)->finalize(object);
}

static void unet_segment_page_class_init(UnetSegmentPageClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_segment_page_dispose;
    object_class->finalize = unet_segment_page_finalize;
    g_type_ensure(UNET_TYPE_IMAGE_VIEW);
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/unetworkbench/Workbench/ui/unet-segment-page.ui");
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, box);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, form_grid);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, segment_info);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, status_label);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, progress);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, image_view);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, probability_view);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, result_view);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, image_value);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, probability_value);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, result_value);
    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void unet_segment_page_init(UnetSegmentPage *page)
{
    gtk_widget_init_template(GTK_WIDGET(page));
    page->state = UNET_RUN_IDLE;
    page->can_start = TRUE;
    GtkGesture *click = gtk_gesture_click_new();
    g_signal_connect(click, "pressed", G_CALLBACK(on_result_pressed), page);
    gtk_widget_add_controller(GTK_WIDGET(page->result_view), GTK_EVENT_CONTROLLER(click));
    page->transform = unet_view_transform_new();
    UnetImageView *views[] = { page->image_view, page->probability_view, page->result_view };
    for (int i = 0; i < 3; i++) {
        unet_image_view_set_transform(views[i], page->transform);
        g_signal_connect(views[i], "pixel-hovered", G_CALLBACK(on_pixel_hovered), page);
    }
    unet_image_view_set_placeholder(page->image_view, _("Open an image, or drop one on the window."));
    unet_image_view_set_placeholder(page->probability_view, _("The model's foreground probability"));
    unet_image_view_set_placeholder(page->result_view, _("The segmentation over the image"));
    /* The status row shows while a segmentation runs. */
    gtk_label_set_text(page->status_label, "");
    gtk_widget_set_visible(gtk_widget_get_parent(GTK_WIDGET(page->progress)), FALSE);
}
