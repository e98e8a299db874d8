/* unet-train-page.c - UnetTrainPage: training form, live charts, previews, log. */
#include "unet-train-page.h"

#include <glib/gi18n.h>
#include <math.h>

#include "unet-form.h"
#include "unet-image-view.h"
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

    UnetSession *session;
    UnetViewTransform *transform;
    UnetRunState state;
    gboolean can_start;
    guint log_rows;
};

static void page_iface_init(UnetPageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(UnetTrainPage, unet_train_page, GTK_TYPE_WIDGET,
                              G_IMPLEMENT_INTERFACE(UNET_TYPE_PAGE, page_iface_init))

#define MAX_LOG_ROWS 200

/* ---- Model configuration from the form ---- */

gboolean unet_train_page_get_model_config(UnetTrainPage *page, UnetModelConfig *cfg, GError **error)
{
    g_return_val_if_fail(UNET_IS_TRAIN_PAGE(page) && page->session, FALSE);
    GSettings *s = unet_session_get_settings(page->session);
    UnetError err = { 0 };
    char *arch = g_settings_get_string(s, "arch");
    UnetArch a = UNET_ARCH_UNET;
    unet_arch_parse(arch, &a, NULL);
    g_free(arch);
    unet_model_config_default(cfg, a);
    if (a == UNET_ARCH_UNET) {
        cfg->depth = g_settings_get_int(s, "depth");
        char *v = g_settings_get_string(s, "padding");
        unet_padding_parse(v, &cfg->padding, NULL);
        g_free(v);
        v = g_settings_get_string(s, "norm");
        unet_norm_parse(v, &cfg->norm, NULL);
        g_free(v);
        v = g_settings_get_string(s, "upsample");
        unet_upsample_parse(v, &cfg->upsample, NULL);
        g_free(v);
    }
    if (a != UNET_ARCH_LIGHT)
        cfg->base = g_settings_get_int(s, "base-channels");
    char *act = g_settings_get_string(s, "activation");
    unet_activation_parse(act, &cfg->activation, NULL);
    g_free(act);
    /* Classes: the multiclass count, else the paper's two-class softmax. */
    int classes = g_settings_get_int(s, "classes");
    cfg->classes = classes >= 2 ? classes : 2;
    const UnetLoadedPair *p = unet_session_get_loaded_pair(page->session);
    if (p)
        cfg->in_channels = p->pair.image.channels;
    if (unet_model_config_validate(cfg, &err) != UNET_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s", err.message);
        return FALSE;
    }
    return TRUE;
}

static void check_config(UnetTrainPage *page)
{
    UnetModelConfig cfg;
    GError *error = NULL;
    if (!unet_train_page_get_model_config(page, &cfg, &error)) {
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

static void on_settings_changed(GSettings *s, const char *key, UnetTrainPage *page)
{
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
    gboolean mine = !owner || !g_strcmp0(owner, "training");
    const UnetTrainEvent *last_progress = NULL;
    for (guint i = 0; i < n; i++) {
        const UnetTrainEvent *ev = &events[i]->ev;
        switch (ev->kind) {
        case UNET_EVENT_STARTED:
            if (!mine)
                break;
            unet_plot_clear(page->loss_plot);
            unet_plot_clear(page->metrics_plot);
            set_state(page, UNET_RUN_RUNNING);
            log_add(page, "media-playback-start-symbolic", ev->message ? ev->message : _("Training started"));
            break;
        case UNET_EVENT_STEP:
            unet_plot_append(page->loss_plot, UNET_TRAIN_SERIES_STEP_LOSS, (double)ev->step, ev->loss);
            last_progress = ev;
            break;
        case UNET_EVENT_EPOCH: {
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
            if (ev->preview) {
                const UnetPreview *p = ev->preview;
                show_preview(page->preview_image, p->image, p->width, p->height);
                show_preview(page->preview_truth, p->truth, p->width, p->height);
                show_preview(page->preview_prediction, p->prediction, p->width, p->height);
            }
            break;
        case UNET_EVENT_CHECKPOINT: {
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
            set_state(page, UNET_RUN_IDLE);
            break;
        case UNET_EVENT_FINISHED:
            if (!mine)
                break;
            log_add(page, "emblem-default-symbolic", ev->message ? ev->message : _("Training finished"));
            gtk_label_set_text(page->status_label, ev->message ? ev->message : _("Training finished"));
            set_state(page, UNET_RUN_IDLE);
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
    info->can_start = page->can_start && page->state == UNET_RUN_IDLE;
    info->start_label = _("Start Training (F5)");
}

void unet_train_page_set_run_state(UnetTrainPage *page, UnetRunState state, gboolean can_start)
{
    g_return_if_fail(UNET_IS_TRAIN_PAGE(page));
    page->can_start = can_start;
    page->state = state == UNET_RUN_NONE ? UNET_RUN_IDLE : state;
    unet_page_run_changed(UNET_PAGE(page));
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
    check_config(page);
}

static void page_iface_init(UnetPageInterface *iface)
{
    iface->set_session = set_session;
    iface->get_run_info = get_run_info;
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

static void unet_train_page_class_init(UnetTrainPageClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_train_page_dispose;
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
