/* unet-augment-page.c - UnetAugmentPage: augmentation form and loss weight map. */
#include "unet-augment-page.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "unet-form.h"
#include "unet-page.h"
#include "unet-run-config.h"
#include "unet-ui-util.h"
#include "augment.h"
#include "scratch.h"
#include "weightmap.h"

struct _UnetAugmentPage {
    GtkWidget parent_instance;
    GtkWidget *box;
    GtkGrid *form_grid;
    GtkLabel *weight_info;
    UnetImageView *image_view, *augmented_view, *mask_view, *weight_view;
    GtkLabel *image_value, *augmented_value, *mask_value, *weight_value;

    UnetSession *session;
    UnetViewTransform *transform;
    GCancellable *cancel;
    guint debounce_id;
    guint weight_count;
    float *weight;
    int weight_w, weight_h;
    GCancellable *aug_cancel;
    guint aug_debounce_id;
    guint aug_count;
};

static void page_iface_init(UnetPageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(UnetAugmentPage, unet_augment_page, GTK_TYPE_WIDGET,
                              G_IMPLEMENT_INTERFACE(UNET_TYPE_PAGE, page_iface_init))

/* ---- Weight map job ---- */

typedef struct WeightJob {
    UnetWeightMapConfig cfg;
    int width, height;
    gint32 *classes, *instances;
    float *weight;
    UnetWeightMapInfo info;
} WeightJob;

static void weight_job_free(gpointer data)
{
    WeightJob *job = data;
    g_free(job->classes);
    g_free(job->instances);
    g_free(job->weight);
    g_free(job);
}

static void weight_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    WeightJob *job = data;
    job->weight = g_new(float, (gsize)job->width * job->height);
    UnetWeightMapOutputs out = { .weight = job->weight };
    UnetError err = { 0 };
    UnetScratch scratch = { 0 };
    UnetStatus st = unet_weightmap_compute(&job->cfg, job->classes, job->instances, job->width, job->height, &out,
                                           &job->info, &scratch, &err);
    unet_scratch_free(&scratch);
    if (st != UNET_OK) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
        return;
    }
    g_task_return_boolean(task, TRUE);
}

static void weight_done(GObject *source, GAsyncResult *result, gpointer data)
{
    GError *error = NULL;
    if (!g_task_propagate_boolean(G_TASK(result), &error)) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            UnetAugmentPage *page = data;
            char *t = g_strdup_printf(_("No weight map: %s"), error->message);
            gtk_label_set_text(page->weight_info, t);
            g_free(t);
            unet_image_view_clear(page->weight_view);
        }
        g_error_free(error);
        return;
    }
    UnetAugmentPage *page = data;
    WeightJob *job = g_task_get_task_data(G_TASK(result));
    unet_image_view_set_map(page->weight_view, job->weight, job->width, job->height, 0, 0, "w(x)");
    g_free(page->weight);
    page->weight = g_steal_pointer(&job->weight);
    page->weight_w = job->width;
    page->weight_h = job->height;
    page->weight_count++;
    gsize n = (gsize)job->width * job->height;
    float lo = INFINITY, hi = -INFINITY;
    for (gsize i = 0; i < n; i++) {
        lo = MIN(lo, page->weight[i]);
        hi = MAX(hi, page->weight[i]);
    }
    GString *cw = g_string_new(NULL);
    for (int c = 0; c < job->info.classes && c < 8; c++)
        g_string_append_printf(cw, "%s%.3g", c ? ", " : "", job->info.class_weights[c]);
    char *t = g_strdup_printf(_("%d cells; class weights %s; weights %.3g to %.3g; border term cut off beyond "
                                "%.1f px"),
                              job->info.cells, cw->str, lo, hi, job->info.cutoff);
    gtk_label_set_text(page->weight_info, t);
    g_free(t);
    g_string_free(cw, TRUE);
}

static void compute_weights(UnetAugmentPage *page)
{
    if (page->cancel) {
        g_cancellable_cancel(page->cancel);
        g_clear_object(&page->cancel);
    }
    const UnetLoadedPair *p = page->session ? unet_session_get_loaded_pair(page->session) : NULL;
    if (!p) {
        unet_image_view_clear(page->weight_view);
        gtk_label_set_text(page->weight_info, "");
        return;
    }
    GSettings *s = unet_session_get_settings(page->session);
    WeightJob *job = g_new0(WeightJob, 1);
    unet_ui_weightmap_config_from_settings(s, &job->cfg);
    const UnetLabels *lab = &p->pair.labels;
    job->width = lab->width;
    job->height = lab->height;
    gsize n = (gsize)lab->width * lab->height;
    job->classes = g_memdup2(lab->data, n * sizeof(gint32));
    if (p->pair.instances.data)
        job->instances = g_memdup2(p->pair.instances.data, n * sizeof(gint32));
    page->cancel = g_cancellable_new();
    GTask *task = g_task_new(NULL, page->cancel, weight_done, page);
    g_task_set_task_data(task, job, weight_job_free);
    g_task_run_in_thread(task, weight_thread);
    g_object_unref(task);
}

static gboolean debounced(gpointer data)
{
    UnetAugmentPage *page = data;
    page->debounce_id = 0;
    compute_weights(page);
    return G_SOURCE_REMOVE;
}

static void on_weight_setting(GSettings *s, const char *key, UnetAugmentPage *page)
{
    if (!g_strcmp0(key, "colormap"))
        unet_image_view_set_colormap(page->weight_view, unet_ui_settings_colormap(s));
    if (!g_str_has_prefix(key, "weight-"))
        return;
    if (page->debounce_id)
        g_source_remove(page->debounce_id);
    page->debounce_id = g_timeout_add(150, debounced, page);
}

/* ---- Augmented sample ---- */

typedef struct AugJob {
    UnetAugmentConfig cfg;
    guint64 seed;
    int width, height, channels;
    float *image, *image_out;
    gint32 *labels, *labels_out;
    int out_w, out_h;
} AugJob;

static void aug_job_free(gpointer data)
{
    AugJob *job = data;
    g_free(job->image);
    g_free(job->image_out);
    g_free(job->labels);
    g_free(job->labels_out);
    g_free(job);
}

static void aug_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    AugJob *job = data;
    UnetError err = { 0 };
    UnetAugmentRecord rec;
    UnetStatus st = unet_augment_sample(&rec, &job->cfg, job->seed, job->width, job->height, &err);
    if (st == UNET_OK) {
        job->out_w = rec.out_w;
        job->out_h = rec.out_h;
        gsize n = (gsize)rec.out_w * rec.out_h;
        job->image_out = g_new(float, n * job->channels);
        job->labels_out = g_new(gint32, n);
        st = unet_augment_apply(&rec, job->image, job->channels, job->labels, NULL, job->image_out,
                                job->labels_out, NULL, NULL, &err);
    }
    if (st != UNET_OK) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
        return;
    }
    g_task_return_boolean(task, TRUE);
}

static void aug_done(GObject *source, GAsyncResult *result, gpointer data)
{
    GError *error = NULL;
    if (!g_task_propagate_boolean(G_TASK(result), &error)) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            UnetAugmentPage *page = data;
            if (page->session)
                unet_session_message(page->session, TRUE, _("No augmented sample: %s"), error->message);
        }
        g_error_free(error);
        return;
    }
    UnetAugmentPage *page = data;
    AugJob *job = g_task_get_task_data(G_TASK(result));
    unet_augment_page_set_augmented(page, job->image_out, job->out_w, job->out_h, job->channels, job->labels_out);
    page->aug_count++;
}

static void compute_augmented(UnetAugmentPage *page)
{
    if (page->aug_cancel) {
        g_cancellable_cancel(page->aug_cancel);
        g_clear_object(&page->aug_cancel);
    }
    const UnetLoadedPair *p = page->session ? unet_session_get_loaded_pair(page->session) : NULL;
    if (!p) {
        unet_image_view_clear(page->augmented_view);
        return;
    }
    GSettings *s = unet_session_get_settings(page->session);
    AugJob *job = g_new0(AugJob, 1);
    unet_ui_augment_config_from_settings(s, &job->cfg);
    job->seed = g_settings_get_uint64(s, "aug-seed");
    const UnetImage *im = &p->pair.image;
    job->width = im->width;
    job->height = im->height;
    job->channels = im->channels;
    gsize n = (gsize)im->width * im->height;
    job->image = g_memdup2(im->data, n * im->channels * sizeof(float));
    job->labels = g_memdup2(p->pair.labels.data, n * sizeof(gint32));
    page->aug_cancel = g_cancellable_new();
    GTask *task = g_task_new(NULL, page->aug_cancel, aug_done, page);
    g_task_set_task_data(task, job, aug_job_free);
    g_task_run_in_thread(task, aug_thread);
    g_object_unref(task);
}

static gboolean aug_debounced(gpointer data)
{
    UnetAugmentPage *page = data;
    page->aug_debounce_id = 0;
    compute_augmented(page);
    return G_SOURCE_REMOVE;
}

static void on_aug_setting(GSettings *s, const char *key, UnetAugmentPage *page)
{
    if (!g_str_has_prefix(key, "aug-"))
        return;
    if (page->aug_debounce_id)
        g_source_remove(page->aug_debounce_id);
    page->aug_debounce_id = g_timeout_add(60, aug_debounced, page);
}

static void on_new_sample(GtkButton *b, UnetAugmentPage *page)
{
    if (!page->session)
        return;
    GSettings *s = unet_session_get_settings(page->session);
    g_settings_set_uint64(s, "aug-seed", g_random_int_range(0, 1000000000));
}

guint unet_augment_page_get_augment_count(UnetAugmentPage *page)
{
    return page->aug_count;
}

/* ---- Pair ---- */

static void on_pair_loaded(UnetSession *s, gpointer pair, UnetAugmentPage *page)
{
    const UnetLoadedPair *p = pair;
    unet_image_view_clear(page->augmented_view);
    if (!p) {
        unet_image_view_clear(page->image_view);
        unet_image_view_clear(page->mask_view);
    } else {
        unet_image_view_set_image(page->image_view, p->raw.data, p->raw.width, p->raw.height, p->raw.channels, 0,
                                  0);
        unet_image_view_set_labels(page->mask_view, p->pair.labels.data, p->pair.labels.width,
                                   p->pair.labels.height);
    }
    compute_weights(page);
    compute_augmented(page);
}

static void on_pixel_hovered(UnetImageView *view, int x, int y, UnetAugmentPage *page)
{
    unet_ui_show_pixel(page->image_view, page->image_value, x, y);
    unet_ui_show_pixel(page->augmented_view, page->augmented_value, x, y);
    unet_ui_show_pixel(page->mask_view, page->mask_value, x, y);
    unet_ui_show_pixel(page->weight_view, page->weight_value, x, y);
}

void unet_augment_page_set_augmented(UnetAugmentPage *page, const float *image, int width, int height,
                                     int channels, const gint32 *labels)
{
    g_return_if_fail(UNET_IS_AUGMENT_PAGE(page));
    unet_image_view_set_image(page->augmented_view, image, width, height, channels, 0, 0);
    if (labels)
        unet_image_view_set_overlay(page->augmented_view, labels, width, height);
}

UnetImageView *unet_augment_page_get_weight_view(UnetAugmentPage *page)
{
    return page->weight_view;
}

UnetImageView *unet_augment_page_get_augmented_view(UnetAugmentPage *page)
{
    return page->augmented_view;
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
    unet_image_view_set_colormap(page->weight_view, unet_ui_settings_colormap(s));
    g_signal_connect_object(session, "pair-loaded", G_CALLBACK(on_pair_loaded), page, 0);
    g_signal_connect_object(s, "changed", G_CALLBACK(on_weight_setting), page, 0);
    g_signal_connect_object(s, "changed", G_CALLBACK(on_aug_setting), page, 0);
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
    if (page->aug_cancel)
        g_cancellable_cancel(page->aug_cancel);
    g_clear_object(&page->aug_cancel);
    g_clear_handle_id(&page->aug_debounce_id, g_source_remove);
    gtk_widget_dispose_template(GTK_WIDGET(page), UNET_TYPE_AUGMENT_PAGE);
    g_clear_object(&page->session);
    g_clear_object(&page->transform);
    g_clear_pointer(&page->weight, g_free);
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
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, weight_info);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, image_view);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, augmented_view);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, mask_view);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, weight_view);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, image_value);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, augmented_value);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, mask_value);
    gtk_widget_class_bind_template_child(widget_class, UnetAugmentPage, weight_value);
    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void unet_augment_page_init(UnetAugmentPage *page)
{
    gtk_widget_init_template(GTK_WIDGET(page));
    page->transform = unet_view_transform_new();
    UnetImageView *views[] = { page->image_view, page->augmented_view, page->mask_view, page->weight_view };
    for (int i = 0; i < 4; i++) {
        unet_image_view_set_transform(views[i], page->transform);
        g_signal_connect(views[i], "pixel-hovered", G_CALLBACK(on_pixel_hovered), page);
    }
    unet_image_view_set_placeholder(page->image_view, _("Select a pair in the dataset list."));
    unet_image_view_set_placeholder(page->augmented_view, _("Augmented sample of the selected pair"));
}
