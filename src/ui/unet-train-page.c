/* unet-train-page.c - UnetTrainPage: training form, live charts, previews, log. */
#include "unet-train-page.h"

#include <glib/gi18n.h>
#include <math.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "unet-form.h"
#include "unet-image-view.h"
#include "unet-run-config.h"
#include "unet-ui-util.h"

struct _UnetTrainPage {
    GtkWidget parent_instance;
    GtkWidget *box;
    GtkGrid *form_grid;
    GtkLabel *config_message, *status_label;
    GtkProgressBar *progress;
    UnetPlot *loss_plot, *metrics_plot;
    UnetImageView *preview_image, *preview_truth, *preview_prediction;
    GtkLabel *preview_image_value, *preview_truth_value, *preview_prediction_value;
    GtkListBox *log_list;

    UnetPlot *lr_plot;
    GtkWidget *device_cpu, *device_cuda;
    GtkWidget *precision, *cuda_graphs; /* sensitive only with CUDA chosen */
    GtkWidget *resume_button;

    UnetSession *session;
    UnetViewTransform *transform;
    UnetRunState state;
    gboolean can_start;
    gboolean config_ok;
    gboolean resuming;
    guint log_rows;
    guint64 step_events;
    char *run_dir;    /* the folder of the running or last run */
    char *opened_run; /* a run folder opened to look at or resume */
};

static void page_iface_init(UnetPageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(UnetTrainPage, unet_train_page, GTK_TYPE_WIDGET,
                              G_IMPLEMENT_INTERFACE(UNET_TYPE_PAGE, page_iface_init))

#define MAX_LOG_ROWS 200

/* ---- Model configuration from the form ---- */

gboolean unet_train_page_get_model_config(UnetTrainPage *page, UnetModelConfig *cfg, GError **error)
{
    g_return_val_if_fail(UNET_IS_TRAIN_PAGE(page) && page->session, FALSE);
    const UnetLoadedPair *p = unet_session_get_loaded_pair(page->session);
    return unet_ui_model_config_from_settings(unet_session_get_settings(page->session),
                                              p ? p->pair.image.channels : 0, cfg, error);
}

static void check_config(UnetTrainPage *page)
{
    UnetModelConfig cfg;
    GError *error = NULL;
    page->config_ok = unet_train_page_get_model_config(page, &cfg, &error);
    unet_page_run_changed(UNET_PAGE(page));
    if (!page->config_ok) {
        gtk_label_set_text(page->config_message, error->message);
        gtk_widget_add_css_class(GTK_WIDGET(page->config_message), "error");
        gtk_widget_remove_css_class(GTK_WIDGET(page->config_message), "dim-label");
        g_error_free(error);
        return;
    }
    char *json = unet_model_config_to_json(&cfg);
    /* Translators: the model the form describes, as the JSON saved with checkpoints. */
    char *t = g_strdup_printf(_("Model: %s"), json ? json : "");
    gtk_label_set_text(page->config_message, t);
    gtk_widget_remove_css_class(GTK_WIDGET(page->config_message), "error");
    gtk_widget_add_css_class(GTK_WIDGET(page->config_message), "dim-label");
    g_free(t);
    free(json);
}

static void show_device(UnetTrainPage *page);

static void on_settings_changed(GSettings *s, const char *key, UnetTrainPage *page)
{
    if (!g_strcmp0(key, "device"))
        show_device(page);
    check_config(page);
}

/* ---- Events ---- */

static void log_add(UnetTrainPage *page, const char *icon, const char *text)
{
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_set_margin_start(row, 8);
    gtk_widget_set_margin_end(row, 8);
    gtk_widget_set_margin_top(row, 4);
    gtk_widget_set_margin_bottom(row, 4);
    GtkWidget *img = gtk_image_new_from_icon_name(icon);
    gtk_accessible_update_property(GTK_ACCESSIBLE(img), GTK_ACCESSIBLE_PROPERTY_LABEL, "", -1);
    gtk_box_append(GTK_BOX(row), img);
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_selectable(GTK_LABEL(l), TRUE);
    gtk_box_append(GTK_BOX(row), l);
    gtk_list_box_prepend(page->log_list, row);
    if (++page->log_rows > MAX_LOG_ROWS) {
        GtkListBoxRow *last = gtk_list_box_get_row_at_index(page->log_list, MAX_LOG_ROWS);
        if (last)
            gtk_list_box_remove(page->log_list, GTK_WIDGET(last));
        page->log_rows--;
    }
}

static void set_state(UnetTrainPage *page, UnetRunState state)
{
    if (page->state == state)
        return;
    page->state = state;
    unet_page_run_changed(UNET_PAGE(page));
}

static void format_duration(double seconds, char *buf, gsize size)
{
    long s = (long)MAX(0, seconds);
    if (s >= 3600)
        g_snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        g_snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

static void show_progress(UnetTrainPage *page, const UnetTrainEvent *ev)
{
    double total = (double)ev->epochs * (double)ev->steps_per_epoch;
    if (total > 0) {
        double f = CLAMP(ev->step / total, 0, 1);
        gtk_progress_bar_set_fraction(page->progress, f);
        char *t = g_strdup_printf(_("Epoch %d of %d"), ev->epoch, ev->epochs);
        gtk_progress_bar_set_text(page->progress, t);
        g_free(t);
        char el[32], left[32];
        format_duration(ev->seconds_elapsed, el, sizeof el);
        format_duration(f > 0 ? ev->seconds_elapsed * (1 - f) / f : 0, left, sizeof left);
        char step[32];
        g_snprintf(step, sizeof step, "%" G_GINT64_FORMAT, ev->step);
        /* Translators: step count, throughput, elapsed and remaining time of a run. */
        char *s = g_strdup_printf(_("step %s · %.1f samples/s · %s elapsed · %s left"), step,
                                  ev->samples_per_second, el, left);
        gtk_label_set_text(page->status_label, s);
        g_free(s);
    }
}

static void show_preview(UnetImageView *view, const uint8_t *plane, int w, int h)
{
    if (plane)
        unet_image_view_set_grey8(view, plane, w, h);
    else
        unet_image_view_clear(view);
}

static void on_train_events(UnetSession *s, gpointer events_ptr, guint n, UnetTrainPage *page)
{
    UnetUiEvent *const *events = events_ptr;
    const char *owner = unet_session_get_run_owner(s);
    gboolean mine = !g_strcmp0(owner, "training");
    const UnetTrainEvent *last_progress = NULL;
    for (guint i = 0; i < n; i++) {
        const UnetTrainEvent *ev = &events[i]->ev;
        switch (ev->kind) {
        case UNET_EVENT_STARTED:
            if (!mine)
                break;
            if (!page->resuming) {
                unet_plot_clear(page->loss_plot);
                unet_plot_clear(page->metrics_plot);
                unet_plot_clear(page->lr_plot);
            }
            set_state(page, UNET_RUN_RUNNING);
            log_add(page, "media-playback-start-symbolic", ev->message ? ev->message : _("Training started"));
            break;
        case UNET_EVENT_STEP:
            if (!mine)
                break;
            unet_plot_append(page->loss_plot, UNET_TRAIN_SERIES_STEP_LOSS, (double)ev->step, ev->loss);
            unet_plot_append(page->loss_plot, UNET_TRAIN_SERIES_STEP_SMOOTHED, (double)ev->step, ev->smoothed_loss);
            unet_plot_append(page->lr_plot, 0, (double)ev->step, ev->lr);
            page->step_events++;
            last_progress = ev;
            break;
        case UNET_EVENT_PAUSED:
            if (mine) {
                set_state(page, UNET_RUN_PAUSED);
                log_add(page, "media-playback-pause-symbolic", _("Paused"));
            }
            break;
        case UNET_EVENT_RESUMED:
            if (mine) {
                set_state(page, UNET_RUN_RUNNING);
                log_add(page, "media-playback-start-symbolic", _("Resumed"));
            }
            break;
        case UNET_EVENT_EPOCH: {
            if (!mine)
                break;
            unet_plot_append(page->loss_plot, UNET_TRAIN_SERIES_TRAIN_LOSS, (double)ev->step, ev->train_loss);
            unet_plot_append(page->loss_plot, UNET_TRAIN_SERIES_VAL_LOSS, (double)ev->step, ev->val_loss);
            unet_plot_append(page->metrics_plot, UNET_TRAIN_SERIES_DICE, ev->epoch, ev->metrics.dice);
            unet_plot_append(page->metrics_plot, UNET_TRAIN_SERIES_IOU, ev->epoch, ev->metrics.iou);
            unet_plot_append(page->metrics_plot, UNET_TRAIN_SERIES_PIXEL_ERROR, ev->epoch, ev->metrics.pixel_error);
            unet_plot_append(page->metrics_plot, UNET_TRAIN_SERIES_VRAND, ev->epoch,
                             ev->metrics.rand_info.v_rand);
            last_progress = ev;
            char *t = g_strdup_printf(_("Epoch %d: training loss %.4g, validation loss %.4g, Dice %.3f%s"),
                                      ev->epoch, ev->train_loss, ev->val_loss, ev->metrics.dice,
                                      ev->is_best ? _(" (best so far)") : "");
            log_add(page, "emblem-ok-symbolic", t);
            g_free(t);
            break;
        }
        case UNET_EVENT_PREVIEW:
            if (mine && ev->preview) {
                const UnetPreview *p = ev->preview;
                show_preview(page->preview_image, p->image, p->width, p->height);
                show_preview(page->preview_truth, p->truth, p->width, p->height);
                show_preview(page->preview_prediction, p->prediction, p->width, p->height);
            }
            break;
        case UNET_EVENT_CHECKPOINT: {
            if (!mine)
                break;
            /* The Segment page uses the newest best model. */
            if (ev->path && g_str_has_suffix(ev->path, "best.safetensors"))
                g_settings_set_string(unet_session_get_settings(s), "segment-checkpoint", ev->path);
            char *t = g_strdup_printf(_("Checkpoint of epoch %d saved to %s"), ev->epoch, ev->path ? ev->path : "");
            log_add(page, "document-save-symbolic", t);
            g_free(t);
            break;
        }
        case UNET_EVENT_WARNING:
            if (mine)
                log_add(page, "dialog-warning-symbolic", ev->message ? ev->message : "");
            break;
        case UNET_EVENT_ERROR:
            if (!mine)
                break;
            log_add(page, "dialog-error-symbolic", ev->message ? ev->message : "");
            unet_session_message(s, TRUE, _("Training stopped: %s"), ev->message ? ev->message : "");
            break;
        case UNET_EVENT_FINISHED:
            if (!mine)
                break;
            log_add(page, "emblem-default-symbolic", ev->message ? ev->message : _("Training finished"));
            gtk_label_set_text(page->status_label, ev->message ? ev->message : _("Training finished"));
            break;
        case UNET_EVENT_LR_TEST_POINT:
        default:
            break;
        }
    }
    if (last_progress)
        show_progress(page, last_progress);
}

/* ---- UnetPage ---- */

static void get_run_info(UnetPage *p, UnetRunInfo *info)
{
    UnetTrainPage *page = UNET_TRAIN_PAGE(p);
    info->state = page->state;
    info->can_start = page->can_start && page->state == UNET_RUN_IDLE && page->config_ok && page->session &&
                      !unet_session_is_running(page->session) &&
                      unet_dataset_store_get_path(unet_session_get_store(page->session)) != NULL;
    info->start_label = _("Start Training (F5)");
}

void unet_train_page_set_run_state(UnetTrainPage *page, UnetRunState state, gboolean can_start)
{
    g_return_if_fail(UNET_IS_TRAIN_PAGE(page));
    page->can_start = can_start;
    page->state = state == UNET_RUN_NONE ? UNET_RUN_IDLE : state;
    unet_page_run_changed(UNET_PAGE(page));
}

/* ---- Running ---- */

static void update_resume_button(UnetTrainPage *page)
{
    gboolean ok = FALSE;
    if (page->opened_run && page->session && !unet_session_is_running(page->session)) {
        char *last = g_build_filename(page->opened_run, "last.safetensors", NULL);
        ok = g_file_test(last, G_FILE_TEST_IS_REGULAR);
        g_free(last);
    }
    gtk_widget_set_sensitive(page->resume_button, ok);
}

static void start_run(UnetTrainPage *page, const char *resume_dir)
{
    UnetSession *session = page->session;
    if (!session)
        return;
    GSettings *s = unet_session_get_settings(session);
    GError *error = NULL;
    UnetTrainConfig *cfg = g_new0(UnetTrainConfig, 1);
    char *dir = NULL;
    if (resume_dir) {
        UnetError err = { 0 };
        unet_train_config_default(cfg);
        if (unet_train_config_load_run(cfg, resume_dir, &err) != UNET_OK) {
            unet_session_message(session, TRUE, _("Could not resume the run: %s"), err.message);
            g_free(cfg);
            return;
        }
        dir = g_strdup(resume_dir);
    } else {
        UnetModelConfig mc;
        const char *data = unet_dataset_store_get_path(unet_session_get_store(session));
        if (!unet_train_page_get_model_config(page, &mc, &error) ||
            !unet_ui_train_config_from_settings(s, data, &mc, cfg, &error) ||
            !(dir = unet_ui_new_run_dir(s, &error))) {
            unet_session_message(session, TRUE, _("Could not start training: %s"), error->message);
            g_error_free(error);
            g_free(cfg);
            return;
        }
        g_strlcpy(cfg->out_dir, dir, sizeof cfg->out_dir);
    }
    page->resuming = resume_dir != NULL;
    if (!page->resuming) {
        unet_plot_clear(page->loss_plot);
        unet_plot_clear(page->metrics_plot);
        unet_plot_clear(page->lr_plot);
    }
    page->step_events = 0;
    if (!unet_session_start_trainer(session, cfg, UNET_TRAIN_FIT, "training", &error)) {
        unet_session_message(session, TRUE, _("Could not start training: %s"), error->message);
        g_error_free(error);
        g_free(cfg);
        g_free(dir);
        return;
    }
    g_free(cfg);
    g_free(page->run_dir);
    page->run_dir = dir;
    char *t = g_strdup_printf(_("Run folder: %s"), dir);
    log_add(page, "folder-symbolic", t);
    g_free(t);
    gtk_progress_bar_set_fraction(page->progress, 0);
    gtk_label_set_text(page->status_label, _("Preparing the data…"));
    set_state(page, UNET_RUN_RUNNING);
    update_resume_button(page);
}

static void run_start(UnetPage *p)
{
    start_run(UNET_TRAIN_PAGE(p), NULL);
}

static void run_pause(UnetPage *p)
{
    UnetTrainPage *page = UNET_TRAIN_PAGE(p);
    int paused = page->session ? unet_session_toggle_pause(page->session, "training") : -1;
    if (paused >= 0)
        set_state(page, paused ? UNET_RUN_PAUSED : UNET_RUN_RUNNING);
}

static void run_stop(UnetPage *p)
{
    UnetTrainPage *page = UNET_TRAIN_PAGE(p);
    if (page->session && unet_session_stop_run(page->session, "training"))
        gtk_label_set_text(page->status_label, _("Stopping after this step…"));
}

static void on_run_finished(UnetSession *s, const char *owner, int status, const char *message, UnetTrainPage *page)
{
    if (g_strcmp0(owner, "training")) {
        unet_page_run_changed(UNET_PAGE(page));
        return;
    }
    page->resuming = FALSE;
    set_state(page, UNET_RUN_IDLE);
    unet_page_run_changed(UNET_PAGE(page));
    if (page->run_dir) {
        g_free(page->opened_run);
        page->opened_run = g_strdup(page->run_dir);
        char *best = g_build_filename(page->run_dir, "best.safetensors", NULL);
        if (g_file_test(best, G_FILE_TEST_IS_REGULAR))
            g_settings_set_string(unet_session_get_settings(s), "segment-checkpoint", best);
        g_free(best);
    }
    update_resume_button(page);
    if (status == UNET_OK)
        unet_session_message(s, FALSE, _("Training ended; the Segment page now uses its best model."));
}

/* ---- Run folders ---- */

static gboolean load_metrics_csv(UnetTrainPage *page, const char *dir, GError **error)
{
    char *path = g_build_filename(dir, "metrics.csv", NULL);
    char *text = NULL;
    gboolean ok = g_file_get_contents(path, &text, NULL, error);
    g_free(path);
    if (!ok)
        return FALSE;
    unet_plot_clear(page->loss_plot);
    unet_plot_clear(page->metrics_plot);
    unet_plot_clear(page->lr_plot);
    char **lines = g_strsplit(text, "\n", -1);
    double avg = 0;
    int n = 0;
    for (int i = 1; lines[i]; i++) {
        char **f = g_strsplit(lines[i], ",", -1);
        if (g_strv_length(f) >= 12) {
            double step = g_ascii_strtod(f[2], NULL), lr = g_ascii_strtod(f[3], NULL);
            if (!strcmp(f[0], "step")) {
                double loss = g_ascii_strtod(f[4], NULL);
                /* The trainer's smoothing: bias-corrected moving average, beta 0.98. */
                avg = 0.98 * avg + 0.02 * loss;
                n++;
                unet_plot_append(page->loss_plot, UNET_TRAIN_SERIES_STEP_LOSS, step, loss);
                unet_plot_append(page->loss_plot, UNET_TRAIN_SERIES_STEP_SMOOTHED, step, avg / (1 - pow(0.98, n)));
                unet_plot_append(page->lr_plot, 0, step, lr);
            } else if (!strcmp(f[0], "epoch")) {
                double ep = g_ascii_strtod(f[1], NULL);
                unet_plot_append(page->loss_plot, UNET_TRAIN_SERIES_TRAIN_LOSS, step, g_ascii_strtod(f[5], NULL));
                unet_plot_append(page->loss_plot, UNET_TRAIN_SERIES_VAL_LOSS, step, g_ascii_strtod(f[6], NULL));
                unet_plot_append(page->metrics_plot, UNET_TRAIN_SERIES_DICE, ep, g_ascii_strtod(f[7], NULL));
                unet_plot_append(page->metrics_plot, UNET_TRAIN_SERIES_IOU, ep, g_ascii_strtod(f[8], NULL));
                unet_plot_append(page->metrics_plot, UNET_TRAIN_SERIES_PIXEL_ERROR, ep, g_ascii_strtod(f[9], NULL));
                unet_plot_append(page->metrics_plot, UNET_TRAIN_SERIES_VRAND, ep, g_ascii_strtod(f[10], NULL));
            }
        }
        g_strfreev(f);
    }
    g_strfreev(lines);
    g_free(text);
    return TRUE;
}

gboolean unet_train_page_open_run(UnetTrainPage *page, const char *dir, GError **error)
{
    g_return_val_if_fail(UNET_IS_TRAIN_PAGE(page), FALSE);
    if (page->session && unet_session_is_running(page->session)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY, _("Stop the running training first."));
        return FALSE;
    }
    if (!load_metrics_csv(page, dir, error))
        return FALSE;
    /* dir may be page->run_dir itself. */
    char *copy = g_strdup(dir);
    g_free(page->opened_run);
    page->opened_run = g_strdup(copy);
    g_free(page->run_dir);
    page->run_dir = copy;
    dir = copy;
    char *t = g_strdup_printf(_("Opened the run %s"), dir);
    log_add(page, "folder-open-symbolic", t);
    gtk_label_set_text(page->status_label, t);
    g_free(t);
    /* How it ran, from its config.json: a resume runs the same way. */
    UnetTrainConfig *cfg = g_new0(UnetTrainConfig, 1);
    UnetError err = { 0 };
    unet_train_config_default(cfg);
    if (unet_train_config_load_run(cfg, dir, &err) == UNET_OK) {
        char *name = g_path_get_basename(dir);
        /* Translators: run folder name, device (cpu, cuda), precision (fp32, tf32, bf16) and CUDA graphs
         * (on, off) of an opened run. */
        t = g_strdup_printf(_("Run %s: device %s, precision %s, CUDA graphs %s"), name, cfg->device,
                            unet_precision_name(cfg->precision),
                            cfg->cuda_graphs ? C_("CUDA graphs", "on") : C_("CUDA graphs", "off"));
        log_add(page, "emblem-system-symbolic", t);
        gtk_label_set_text(page->status_label, t);
        g_free(t);
        g_free(name);
    }
    g_free(cfg);
    char *best = g_build_filename(dir, "best.safetensors", NULL);
    if (page->session && g_file_test(best, G_FILE_TEST_IS_REGULAR))
        g_settings_set_string(unet_session_get_settings(page->session), "segment-checkpoint", best);
    g_free(best);
    update_resume_button(page);
    return TRUE;
}

gboolean unet_train_page_resume_run(UnetTrainPage *page)
{
    g_return_val_if_fail(UNET_IS_TRAIN_PAGE(page), FALSE);
    if (!page->opened_run)
        return FALSE;
    char *dir = g_strdup(page->opened_run);
    start_run(page, dir);
    g_free(dir);
    return page->session && unet_session_is_running(page->session);
}

const char *unet_train_page_get_run_dir(UnetTrainPage *page)
{
    return page->run_dir;
}

guint64 unet_train_page_get_step_events(UnetTrainPage *page)
{
    return page->step_events;
}

const char *unet_train_page_get_status(UnetTrainPage *page)
{
    return gtk_label_get_text(page->status_label);
}

UnetPlot *unet_train_page_get_lr_plot(UnetTrainPage *page)
{
    return page->lr_plot;
}

static void run_folder_chosen(GFile *file, gpointer data)
{
    UnetTrainPage *page = data;
    char *path = g_file_get_path(file);
    GError *error = NULL;
    if (path && !unet_train_page_open_run(page, path, &error)) {
        if (page->session)
            unet_session_message(page->session, TRUE, _("Could not open the run: %s"), error->message);
        g_error_free(error);
    }
    g_free(path);
}

static void on_open_run(GtkButton *b, UnetTrainPage *page)
{
    unet_ui_choose_folder(GTK_WIDGET(page), _("Open a Run Folder"), run_folder_chosen, g_object_ref(page),
                          g_object_unref);
}

static void on_resume(GtkButton *b, UnetTrainPage *page)
{
    unet_train_page_resume_run(page);
}

/* ---- Device ---- */

static void show_device(UnetTrainPage *page)
{
    if (!page->session || !page->device_cpu)
        return;
    char *dev = g_settings_get_string(unet_session_get_settings(page->session), "device");
    gboolean cuda = !g_strcmp0(dev, "cuda") && unet_ui_devices()->cuda;
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(cuda ? page->device_cuda : page->device_cpu), TRUE);
    g_free(dev);
    /* On the CPU both settings have no effect; the controls keep their
     * values for when the GPU is chosen again. */
    if (page->precision)
        gtk_widget_set_sensitive(page->precision, cuda);
    if (page->cuda_graphs)
        gtk_widget_set_sensitive(page->cuda_graphs, cuda);
}

static void on_device_toggled(GtkToggleButton *b, UnetTrainPage *page)
{
    if (!gtk_toggle_button_get_active(b) || !page->session)
        return;
    const char *id = GTK_WIDGET(b) == page->device_cuda ? "cuda" : "cpu";
    GSettings *s = unet_session_get_settings(page->session);
    char *cur = g_settings_get_string(s, "device");
    if (g_strcmp0(cur, id))
        g_settings_set_string(s, "device", id);
    g_free(cur);
}

static const char *const precision_ids[] = { "fp32", "tf32", "bf16", NULL };

/* Device toggle, then precision and CUDA graphs, which apply to the GPU only. */
static void device_row(UnetTrainPage *page, UnetForm *f)
{
    const UnetUiDevices *d = unet_ui_devices();
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_widget_add_css_class(box, "linked");
    page->device_cpu = gtk_toggle_button_new_with_label(_("CPU"));
    gtk_widget_set_tooltip_text(page->device_cpu, d->cpu);
    char *cuda_label = d->cuda ? g_strdup_printf(_("CUDA: %s"), d->cuda_name) : g_strdup(_("CUDA"));
    page->device_cuda = gtk_toggle_button_new_with_label(cuda_label);
    g_free(cuda_label);
    gtk_label_set_ellipsize(GTK_LABEL(gtk_button_get_child(GTK_BUTTON(page->device_cuda))), PANGO_ELLIPSIZE_END);
    gtk_toggle_button_set_group(GTK_TOGGLE_BUTTON(page->device_cuda), GTK_TOGGLE_BUTTON(page->device_cpu));
    if (!d->cuda) {
        gtk_widget_set_sensitive(page->device_cuda, FALSE);
        char *t = g_strdup_printf(_("No GPU: %s"), d->cuda_reason);
        gtk_widget_set_tooltip_text(page->device_cuda, t);
        g_free(t);
    } else {
        gtk_widget_set_tooltip_text(page->device_cuda, d->cuda_name);
    }
    gtk_box_append(GTK_BOX(box), page->device_cpu);
    gtk_box_append(GTK_BOX(box), page->device_cuda);
    unet_form_row_full(f, _("De_vice"), box, page->device_cpu);

    const char *prec_labels[] = { _("fp32 (full precision)"), _("tf32 (tensor cores)"),
                                  _("bf16 (bfloat16 convolutions)"), NULL };
    page->precision = unet_form_dropdown(
        f, _("Pre_cision"), "precision", precision_ids, prec_labels,
        _("Number format of the convolutions on the GPU.\n"
          "fp32: full single precision everywhere.\n"
          "tf32: fp32 numbers; convolutions run on the tensor cores of Ampere and newer GPUs.\n"
          "bf16: convolutions computed in bfloat16 with fp32 master weights, gradients and optimizer; CUDA "
          "only.\n"
          "On the CPU every precision computes fp32 and bf16 is refused, so CPU runs use fp32."));
    page->cuda_graphs = unet_form_switch(
        f, _("CUDA grap_hs"), "cuda-graphs",
        _("Capture each training step once as a CUDA graph and replay it: fewer kernel launches for the "
          "CPU to issue. CUDA only."));
    show_device(page);
    g_signal_connect(page->device_cpu, "toggled", G_CALLBACK(on_device_toggled), page);
    g_signal_connect(page->device_cuda, "toggled", G_CALLBACK(on_device_toggled), page);
}

static const char *const arch_ids[] = { "unet", "light", "fcn", NULL };
static const char *const padding_ids[] = { "valid", "same", NULL };
static const char *const norm_ids[] = { "none", "batch", "instance", NULL };
static const char *const upsample_ids[] = { "transpose", "bilinear", NULL };
static const char *const activation_ids[] = { "relu", "leaky", NULL };
static const char *const optimizer_ids[] = { "sgd", "adam", "adamw", NULL };
static const char *const schedule_ids[] = { "constant", "exponential", "plateau", "cosine", NULL };

static void build_form(UnetTrainPage *page, GSettings *s)
{
    UnetForm f;
    unet_form_init(&f, page->form_grid, s);
    unet_form_heading(&f, _("Model"));
    const char *arch_labels[] = { _("U-Net"), _("Light U-Net"), _("Fully convolutional"), NULL };
    unet_form_dropdown(&f, _("_Architecture"), "arch", arch_ids, arch_labels,
                       _("U-Net of Ronneberger et al., a lightweight U-Net, or a plain fully convolutional net"));
    unet_form_spin(&f, _("_Depth"), "depth", 2, 7, 1, 0, _("Levels of the U-Net, the bottom one included"));
    unet_form_spin(&f, _("_Base channels"), "base-channels", 2, 256, 1, 0,
                   _("Feature channels of the first level; each level below doubles them"));
    const char *padding_labels[] = { _("Valid (the paper)"), _("Same"), NULL };
    unet_form_dropdown(&f, _("_Padding"), "padding", padding_ids, padding_labels,
                       _("Valid convolutions shrink each tile; same padding keeps its size"));
    const char *norm_labels[] = { _("None"), _("Batch"), _("Instance"), NULL };
    unet_form_dropdown(&f, _("_Normalisation"), "norm", norm_ids, norm_labels,
                       _("Normalisation after each convolution"));
    const char *up_labels[] = { _("Transposed convolution"), _("Bilinear"), NULL };
    unet_form_dropdown(&f, _("_Upsampling"), "upsample", upsample_ids, up_labels,
                       _("How the expanding path doubles the resolution"));
    const char *act_labels[] = { _("ReLU"), _("Leaky ReLU"), NULL };
    unet_form_dropdown(&f, _("Ac_tivation"), "activation", activation_ids, act_labels, NULL);

    unet_form_heading(&f, _("Optimisation"));
    const char *opt_labels[] = { _("SGD with momentum"), _("Adam"), _("AdamW"), NULL };
    unet_form_dropdown(&f, _("_Optimizer"), "optimizer", optimizer_ids, opt_labels, NULL);
    unet_form_log_spin(&f, _("_Learning rate"), "learning-rate", 1e-7, 10,
                       _("Initial learning rate; the LR Test page helps to choose it"));
    unet_form_spin(&f, _("_Momentum"), "momentum", 0, 0.999, 0.01, 3, _("SGD momentum; the paper uses 0.99"));
    unet_form_spin(&f, _("_Weight decay"), "weight-decay", 0, 1, 0.0001, 4, NULL);
    const char *sched_labels[] = { _("Constant"), _("Exponential decay"), _("Reduce on plateau"), _("Cosine"),
                                   NULL };
    unet_form_dropdown(&f, _("_Schedule"), "lr-schedule", schedule_ids, sched_labels,
                       _("How the learning rate changes during training"));
    unet_form_spin(&f, _("_Epochs"), "epochs", 1, 100000, 1, 0, NULL);
    unet_form_spin(&f, _("_Patience (epochs)"), "patience", 0, 10000, 1, 0,
                   _("Stop early after this many epochs without a better validation loss; 0: never"));
    unet_form_spin(&f, _("Steps per e_poch"), "steps-per-epoch", 0, 1000000, 10, 0,
                   _("Optimizer updates per epoch; 0: enough tiles to cover every training image once"));
    unet_form_spin(&f, _("Batch si_ze"), "batch-size", 1, 256, 1, 0, _("Tiles per optimizer step"));

    unet_form_heading(&f, _("Data"));
    unet_form_spin(&f, _("_Tile size (px)"), "tile-size", 16, 4096, 4, 0,
                   _("Side of the network input tile; the paper uses 572"));
    unet_form_spin(&f, _("_Validation share"), "val-fraction", 0, 0.9, 0.05, 2,
                   _("Share of the pairs held out for validation; takes effect when the dataset is opened"));
    unet_form_switch(&f, _("Au_gment tiles"), "use-augmentation",
                     _("Apply the settings of the Augmentation page to training tiles"));
    unet_form_switch(&f, _("Weighted _loss"), "use-weight-map",
                     _("Weight the loss with the border weight map of the Augmentation page"));

    unet_form_heading(&f, _("Run"));
    device_row(page, &f);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *open = gtk_button_new_with_mnemonic(_("Open _Run Folder…"));
    gtk_widget_set_tooltip_text(open, _("Show the curves of an earlier run and resume it"));
    g_signal_connect(open, "clicked", G_CALLBACK(on_open_run), page);
    page->resume_button = gtk_button_new_with_mnemonic(_("Res_ume Run"));
    gtk_widget_set_tooltip_text(page->resume_button, _("Continue the opened run from its last checkpoint"));
    g_signal_connect(page->resume_button, "clicked", G_CALLBACK(on_resume), page);
    gtk_widget_set_sensitive(page->resume_button, FALSE);
    gtk_box_append(GTK_BOX(box), open);
    gtk_box_append(GTK_BOX(box), page->resume_button);
    unet_form_row_full(&f, _("Earlier r_uns"), box, open);
}

static void on_pair_loaded(UnetSession *s, gpointer pair, UnetTrainPage *page)
{
    check_config(page);
}

static void set_session(UnetPage *p, UnetSession *session)
{
    UnetTrainPage *page = UNET_TRAIN_PAGE(p);
    g_return_if_fail(page->session == NULL);
    page->session = g_object_ref(session);
    GSettings *s = unet_session_get_settings(session);
    build_form(page, s);
    g_signal_connect_object(s, "changed", G_CALLBACK(on_settings_changed), page, 0);
    g_signal_connect_object(session, "train-events", G_CALLBACK(on_train_events), page, 0);
    g_signal_connect_object(session, "pair-loaded", G_CALLBACK(on_pair_loaded), page, 0);
    g_signal_connect_object(session, "run-finished", G_CALLBACK(on_run_finished), page, 0);
    check_config(page);
}

static void page_iface_init(UnetPageInterface *iface)
{
    iface->set_session = set_session;
    iface->get_run_info = get_run_info;
    iface->run_start = run_start;
    iface->run_pause = run_pause;
    iface->run_stop = run_stop;
}

UnetPlot *unet_train_page_get_loss_plot(UnetTrainPage *page)
{
    return page->loss_plot;
}

UnetPlot *unet_train_page_get_metrics_plot(UnetTrainPage *page)
{
    return page->metrics_plot;
}

/* ---- Chart export ---- */

static void export_action(GtkWidget *widget, const char *action, GVariant *param)
{
    UnetTrainPage *page = UNET_TRAIN_PAGE(widget);
    const char *which = g_variant_get_string(param, NULL);
    gboolean metrics = !g_strcmp0(which, "metrics_plot");
    UnetPlot *plot = metrics ? page->metrics_plot : page->loss_plot;
    gboolean svg = g_str_has_suffix(action, "svg");
    unet_ui_export_plot(widget, plot, svg, metrics ? "metrics" : "loss", page->session);
}

static void on_pixel_hovered(UnetImageView *view, int x, int y, UnetTrainPage *page)
{
    unet_ui_show_pixel(page->preview_image, page->preview_image_value, x, y);
    unet_ui_show_pixel(page->preview_truth, page->preview_truth_value, x, y);
    unet_ui_show_pixel(page->preview_prediction, page->preview_prediction_value, x, y);
}

static void unet_train_page_dispose(GObject *object)
{
    UnetTrainPage *page = UNET_TRAIN_PAGE(object);
    gtk_widget_dispose_template(GTK_WIDGET(page), UNET_TYPE_TRAIN_PAGE);
    g_clear_object(&page->session);
    g_clear_object(&page->transform);
    G_OBJECT_CLASS(unet_train_page_parent_class)->dispose(object);
}

static void unet_train_page_finalize(GObject *object)
{
    UnetTrainPage *page = UNET_TRAIN_PAGE(object);
    g_free(page->run_dir);
    g_free(page->opened_run);
    G_OBJECT_CLASS(unet_train_page_parent_class)->finalize(object);
}

static void unet_train_page_class_init(UnetTrainPageClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_train_page_dispose;
    object_class->finalize = unet_train_page_finalize;
    g_type_ensure(UNET_TYPE_IMAGE_VIEW);
    g_type_ensure(UNET_TYPE_PLOT);
    gtk_widget_class_set_template_from_resource(widget_class, "/org/unetworkbench/Workbench/ui/unet-train-page.ui");
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, box);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, form_grid);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, config_message);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, status_label);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, progress);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, loss_plot);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, metrics_plot);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, preview_image);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, preview_truth);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, preview_prediction);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, preview_image_value);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, preview_truth_value);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, preview_prediction_value);
    gtk_widget_class_bind_template_child(widget_class, UnetTrainPage, log_list);
    gtk_widget_class_install_action(widget_class, "train.export-png", "s", export_action);
    gtk_widget_class_install_action(widget_class, "train.export-svg", "s", export_action);
    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void unet_train_page_init(UnetTrainPage *page)
{
    gtk_widget_init_template(GTK_WIDGET(page));
    page->state = UNET_RUN_IDLE;
    page->can_start = TRUE;
    unet_plot_set_x_label(page->loss_plot, _("Step"));
    unet_plot_set_y_label(page->loss_plot, _("Loss"));
    unet_plot_set_placeholder(page->loss_plot, _("The loss appears here while a model trains."));
    GdkRGBA light = { 0.11, 0.44, 0.85, 0.35 };
    unet_plot_add_series(page->loss_plot, _("Training (step)"), &light);
    unet_plot_set_series_width(page->loss_plot, UNET_TRAIN_SERIES_STEP_LOSS, 1);
    GdkRGBA blue = { 0.11, 0.44, 0.85, 1 }, orange = { 0.90, 0.38, 0.0, 1 };
    unet_plot_add_series(page->loss_plot, _("Training (epoch)"), &blue);
    unet_plot_add_series(page->loss_plot, _("Validation"), &orange);
    unet_plot_set_series_width(page->loss_plot, UNET_TRAIN_SERIES_TRAIN_LOSS, 2);
    unet_plot_set_series_width(page->loss_plot, UNET_TRAIN_SERIES_VAL_LOSS, 2);
    GdkRGBA mid = { 0.05, 0.30, 0.60, 1 };
    unet_plot_add_series(page->loss_plot, _("Training (smoothed)"), &mid);
    unet_plot_set_series_width(page->loss_plot, UNET_TRAIN_SERIES_STEP_SMOOTHED, 1.5);

    /* The learning rate beside the two charts of the template. */
    GtkWidget *charts = gtk_widget_get_parent(gtk_widget_get_parent(GTK_WIDGET(page->loss_plot)));
    GtkWidget *col = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    GtkWidget *title = gtk_label_new(_("Learning Rate"));
    gtk_label_set_xalign(GTK_LABEL(title), 0);
    gtk_widget_add_css_class(title, "heading");
    gtk_widget_set_margin_top(title, 6);
    gtk_widget_set_margin_bottom(title, 6);
    gtk_box_append(GTK_BOX(col), title);
    page->lr_plot = UNET_PLOT(unet_plot_new());
    gtk_widget_set_vexpand(GTK_WIDGET(page->lr_plot), TRUE);
    gtk_widget_set_hexpand(GTK_WIDGET(page->lr_plot), TRUE);
    gtk_accessible_update_property(GTK_ACCESSIBLE(page->lr_plot), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                   _("Learning rate per step"), -1);
    unet_plot_set_x_label(page->lr_plot, _("Step"));
    unet_plot_set_placeholder(page->lr_plot, _("The learning rate of each step appears here."));
    unet_plot_add_series(page->lr_plot, _("Learning rate"), NULL);
    gtk_box_append(GTK_BOX(col), GTK_WIDGET(page->lr_plot));
    gtk_box_append(GTK_BOX(charts), col);

    unet_plot_set_x_label(page->metrics_plot, _("Epoch"));
    unet_plot_set_placeholder(page->metrics_plot, _("Validation scores appear here after each epoch."));
    unet_plot_add_series(page->metrics_plot, _("Dice"), NULL);
    unet_plot_add_series(page->metrics_plot, _("IoU"), NULL);
    unet_plot_add_series(page->metrics_plot, _("Pixel error"), NULL);
    unet_plot_add_series(page->metrics_plot, _("V_rand"), NULL);
    unet_plot_set_y_range(page->metrics_plot, 0, 1);

    page->transform = unet_view_transform_new();
    UnetImageView *views[] = { page->preview_image, page->preview_truth, page->preview_prediction };
    for (int i = 0; i < 3; i++) {
        unet_image_view_set_transform(views[i], page->transform);
        g_signal_connect(views[i], "pixel-hovered", G_CALLBACK(on_pixel_hovered), page);
        unet_image_view_set_placeholder(views[i], _("Shown after each validation pass"));
    }
}
