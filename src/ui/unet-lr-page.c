/* unet-lr-page.c - UnetLrPage: learning-rate range test chart and suggestion. */
#include "unet-lr-page.h"

#include <glib/gi18n.h>
#include <math.h>

#include "unet-form.h"
#include "unet-run-config.h"
#include "unet-ui-util.h"

struct _UnetLrPage {
    GtkWidget parent_instance;
    GtkWidget *box;
    GtkGrid *form_grid;
    GtkLabel *suggestion_label, *status_label;
    GtkButton *use_button;
    GtkProgressBar *progress;
    UnetPlot *lr_plot;

    UnetSession *session;
    GArray *lr, *smoothed;   /* points received, for the suggestion */
    UnetLrSuggestion suggestion;
    UnetRunState state;
    gboolean can_start;
};

static void page_iface_init(UnetPageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(UnetLrPage, unet_lr_page, GTK_TYPE_WIDGET,
                              G_IMPLEMENT_INTERFACE(UNET_TYPE_PAGE, page_iface_init))

static void set_state(UnetLrPage *page, UnetRunState state)
{
    if (page->state == state)
        return;
    page->state = state;
    unet_page_run_changed(UNET_PAGE(page));
}

static void reset(UnetLrPage *page)
{
    unet_plot_clear(page->lr_plot);
    unet_plot_clear_markers(page->lr_plot);
    g_array_set_size(page->lr, 0);
    g_array_set_size(page->smoothed, 0);
    unet_plot_set_y_auto(page->lr_plot);
    page->suggestion = (UnetLrSuggestion){ 0 };
    gtk_label_set_text(page->suggestion_label, "");
    gtk_widget_set_sensitive(GTK_WIDGET(page->use_button), FALSE);
}

static void update_suggestion(UnetLrPage *page)
{
    double factor = page->session ? g_settings_get_double(unet_session_get_settings(page->session),
                                                          "lr-test-divergence")
                                  : 4.0;
    unet_lr_suggest((const double *)page->lr->data, (const double *)page->smoothed->data, page->lr->len, factor,
                    &page->suggestion);
    const UnetLrSuggestion *sg = &page->suggestion;
    unet_plot_clear_markers(page->lr_plot);
    GdkRGBA green = { 0.18, 0.62, 0.29, 1 }, red = { 0.75, 0.11, 0.16, 1 };
    GString *t = g_string_new(NULL);
    if (sg->has_suggestion) {
        char label[64];
        g_snprintf(label, sizeof label, _("suggested %.2g"), sg->suggested_lr);
        unet_plot_add_marker(page->lr_plot, sg->suggested_lr, label, &green);
        g_string_append_printf(t, _("Suggested learning rate: %.3g (steepest fall of the smoothed loss)."),
                               sg->suggested_lr);
    }
    if (sg->has_minimum) {
        if (t->len)
            g_string_append_c(t, '\n');
        g_string_append_printf(t, _("Lowest smoothed loss %.4g at %.3g."), sg->min_loss, sg->min_lr);
    }
    if (sg->diverged) {
        char label[64];
        g_snprintf(label, sizeof label, _("diverged %.2g"), sg->diverged_lr);
        unet_plot_add_marker(page->lr_plot, sg->diverged_lr, label, &red);
        if (t->len)
            g_string_append_c(t, '\n');
        g_string_append_printf(t, _("The loss diverged at %.3g."), sg->diverged_lr);
    }
    gtk_label_set_text(page->suggestion_label, t->str);
    g_string_free(t, TRUE);

    /* Keep the useful part in view: the loss up to divergence, not the
     * blow-up after it. */
    const double *lr = (const double *)page->lr->data, *sm = (const double *)page->smoothed->data;
    double lo = INFINITY, hi = -INFINITY;
    for (guint i = 0; i < page->lr->len; i++) {
        if (!isfinite(sm[i]) || (sg->diverged && lr[i] > sg->diverged_lr))
            continue;
        lo = MIN(lo, sm[i]);
        hi = MAX(hi, sm[i]);
    }
    if (sg->diverged && hi > lo) {
        double pad = 0.1 * (hi - lo);
        unet_plot_set_y_range(page->lr_plot, MAX(0, lo - pad), hi + pad);
    } else {
        unet_plot_set_y_auto(page->lr_plot);
    }
    gtk_widget_set_sensitive(GTK_WIDGET(page->use_button), sg->has_suggestion);
}

static void on_train_events(UnetSession *s, gpointer events_ptr, guint n, UnetLrPage *page)
{
    UnetUiEvent *const *events = events_ptr;
    gboolean mine = !g_strcmp0(unet_session_get_run_owner(s), "lrtest");
    gboolean points = FALSE;
    const UnetTrainEvent *last = NULL;
    for (guint i = 0; i < n; i++) {
        const UnetTrainEvent *ev = &events[i]->ev;
        switch (ev->kind) {
        case UNET_EVENT_STARTED:
            if (mine) {
                reset(page);
                set_state(page, UNET_RUN_RUNNING);
            }
            break;
        case UNET_EVENT_LR_TEST_POINT:
            /* A new curve (also the one a training run with rate 0 measures first). */
            if (ev->step == 0 && page->lr->len)
                reset(page);
            unet_plot_append(page->lr_plot, UNET_LR_SERIES_RAW, ev->lr, ev->loss);
            unet_plot_append(page->lr_plot, UNET_LR_SERIES_SMOOTHED, ev->lr, ev->smoothed_loss);
            g_array_append_val(page->lr, ev->lr);
            g_array_append_val(page->smoothed, ev->smoothed_loss);
            points = TRUE;
            last = ev;
            break;
        case UNET_EVENT_ERROR:
            if (mine)
                unet_session_message(s, TRUE, _("The range test stopped: %s"), ev->message ? ev->message : "");
            break;
        case UNET_EVENT_FINISHED:
            if (mine)
                gtk_label_set_text(page->status_label, ev->message ? ev->message : _("Range test finished"));
            break;
        case UNET_EVENT_LR_TEST_DONE:
            if (mine && ev->message)
                gtk_label_set_text(page->status_label, ev->message);
            break;
        default:
            break;
        }
    }
    if (points)
        update_suggestion(page);
    if (last && page->session) {
        int steps = g_settings_get_int(unet_session_get_settings(page->session), "lr-test-steps");
        double f = steps > 0 ? CLAMP((double)page->lr->len / steps, 0, 1) : 0;
        gtk_progress_bar_set_fraction(page->progress, f);
        char *t = g_strdup_printf(_("Rate %.3g, loss %.4g"), last->lr, last->smoothed_loss);
        gtk_label_set_text(page->status_label, t);
        g_free(t);
    }
}

static void on_use(GtkButton *b, UnetLrPage *page)
{
    if (!page->suggestion.has_suggestion || !page->session)
        return;
    /* Three significant digits, like the form shows. */
    char buf[32];
    g_snprintf(buf, sizeof buf, "%.3g", page->suggestion.suggested_lr);
    double lr = g_ascii_strtod(buf, NULL);
    GSettings *s = unet_session_get_settings(page->session);
    if (!g_settings_set_double(s, "learning-rate", lr))
        unet_session_message(page->session, TRUE, _("The learning rate %g is outside the allowed range."), lr);
    else
        unet_session_message(page->session, FALSE, _("The Training page now uses the learning rate %g."), lr);
}

static void get_run_info(UnetPage *p, UnetRunInfo *info)
{
    UnetLrPage *page = UNET_LR_PAGE(p);
    info->state = page->state;
    info->can_start = page->can_start && page->state == UNET_RUN_IDLE && page->session &&
                      !unet_session_is_running(page->session) &&
                      unet_dataset_store_get_path(unet_session_get_store(page->session)) != NULL;
    info->start_label = _("Start Range Test (F5)");
}

static void run_start(UnetPage *p)
{
    UnetLrPage *page = UNET_LR_PAGE(p);
    if (!page->session)
        return;
    GSettings *s = unet_session_get_settings(page->session);
    GError *error = NULL;
    UnetModelConfig mc;
    UnetTrainConfig *cfg = g_new0(UnetTrainConfig, 1);
    const char *data = unet_dataset_store_get_path(unet_session_get_store(page->session));
    /* The range test trains the Training page's model; nothing is written. */
    gboolean ok = unet_ui_model_config_from_settings(s, 0, &mc, &error) &&
                  unet_ui_train_config_from_settings(s, data, &mc, cfg, &error) &&
                  unet_session_start_trainer(page->session, cfg, UNET_TRAIN_LR_TEST, "lrtest", &error);
    g_free(cfg);
    if (!ok) {
        unet_session_message(page->session, TRUE, _("Could not start the range test: %s"), error->message);
        g_error_free(error);
        return;
    }
    reset(page);
    gtk_progress_bar_set_fraction(page->progress, 0);
    gtk_label_set_text(page->status_label, _("Preparing the data…"));
    set_state(page, UNET_RUN_RUNNING);
}

static void run_pause(UnetPage *p)
{
    UnetLrPage *page = UNET_LR_PAGE(p);
    int paused = page->session ? unet_session_toggle_pause(page->session, "lrtest") : -1;
    if (paused >= 0)
        set_state(page, paused ? UNET_RUN_PAUSED : UNET_RUN_RUNNING);
}

static void run_stop(UnetPage *p)
{
    UnetLrPage *page = UNET_LR_PAGE(p);
    if (page->session)
        unet_session_stop_run(page->session, "lrtest");
}

static void on_run_finished(UnetSession *s, const char *owner, int status, const char *message, UnetLrPage *page)
{
    if (!g_strcmp0(owner, "lrtest"))
        set_state(page, UNET_RUN_IDLE);
    unet_page_run_changed(UNET_PAGE(page));
}

static void on_pair_loaded(UnetSession *s, gpointer pair, UnetLrPage *page)
{
    unet_page_run_changed(UNET_PAGE(page));
}

void unet_lr_page_set_run_state(UnetLrPage *page, UnetRunState state, gboolean can_start)
{
    g_return_if_fail(UNET_IS_LR_PAGE(page));
    page->can_start = can_start;
    page->state = state == UNET_RUN_NONE ? UNET_RUN_IDLE : state;
    unet_page_run_changed(UNET_PAGE(page));
}

static void on_divergence_changed(GSettings *s, const char *key, UnetLrPage *page)
{
    if (page->lr->len)
        update_suggestion(page);
}

static void build_form(UnetLrPage *page, GSettings *s)
{
    UnetForm f;
    unet_form_init(&f, page->form_grid, s);
    unet_form_heading(&f, _("Range Test"));
    unet_form_log_spin(&f, _("_Smallest rate"), "lr-test-min", 1e-10, 1, _("The test starts at this learning rate"));
    unet_form_log_spin(&f, _("_Largest rate"), "lr-test-max", 1e-6, 100,
                       _("The test ends at this rate, or earlier when the loss diverges"));
    unet_form_spin(&f, _("S_teps"), "lr-test-steps", 10, 10000, 10, 0,
                   _("Optimizer steps from the smallest to the largest rate, spaced evenly on a log scale"));
    unet_form_spin(&f, _("Loss s_moothing"), "lr-test-smoothing", 0, 0.999, 0.01, 3,
                   _("Factor of the exponential moving average of the loss"));
    unet_form_spin(&f, _("_Divergence factor"), "lr-test-divergence", 1.5, 100, 0.5, 1,
                   _("The loss counts as diverged above this multiple of its minimum"));
}

static void set_session(UnetPage *p, UnetSession *session)
{
    UnetLrPage *page = UNET_LR_PAGE(p);
    g_return_if_fail(page->session == NULL);
    page->session = g_object_ref(session);
    GSettings *s = unet_session_get_settings(session);
    build_form(page, s);
    g_signal_connect_object(session, "train-events", G_CALLBACK(on_train_events), page, 0);
    g_signal_connect_object(s, "changed::lr-test-divergence", G_CALLBACK(on_divergence_changed), page, 0);
    g_signal_connect_object(session, "run-finished", G_CALLBACK(on_run_finished), page, 0);
    g_signal_connect_object(session, "pair-loaded", G_CALLBACK(on_pair_loaded), page, 0);
}

static void page_iface_init(UnetPageInterface *iface)
{
    iface->set_session = set_session;
    iface->get_run_info = get_run_info;
    iface->run_start = run_start;
    iface->run_pause = run_pause;
    iface->run_stop = run_stop;
}

UnetPlot *unet_lr_page_get_plot(UnetLrPage *page)
{
    return page->lr_plot;
}

void unet_lr_page_get_suggestion(UnetLrPage *page, UnetLrSuggestion *out)
{
    *out = page->suggestion;
}

static void export_action(GtkWidget *widget, const char *action, GVariant *param)
{
    UnetLrPage *page = UNET_LR_PAGE(widget);
    unet_ui_export_plot(widget, page->lr_plot, g_str_has_suffix(action, "svg"), "lr-test", page->session);
}

static void unet_lr_page_dispose(GObject *object)
{
    UnetLrPage *page = UNET_LR_PAGE(object);
    gtk_widget_dispose_template(GTK_WIDGET(page), UNET_TYPE_LR_PAGE);
    g_clear_object(&page->session);
    G_OBJECT_CLASS(unet_lr_page_parent_class)->dispose(object);
}

static void unet_lr_page_finalize(GObject *object)
{
    UnetLrPage *page = UNET_LR_PAGE(object);
    g_array_unref(page->lr);
    g_array_unref(page->smoothed);
    G_OBJECT_CLASS(unet_lr_page_parent_class)->finalize(object);
}

static void unet_lr_page_class_init(UnetLrPageClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_lr_page_dispose;
    object_class->finalize = unet_lr_page_finalize;
    g_type_ensure(UNET_TYPE_PLOT);
    gtk_widget_class_set_template_from_resource(widget_class, "/org/unetworkbench/Workbench/ui/unet-lr-page.ui");
    gtk_widget_class_bind_template_child(widget_class, UnetLrPage, box);
    gtk_widget_class_bind_template_child(widget_class, UnetLrPage, form_grid);
    gtk_widget_class_bind_template_child(widget_class, UnetLrPage, suggestion_label);
    gtk_widget_class_bind_template_child(widget_class, UnetLrPage, status_label);
    gtk_widget_class_bind_template_child(widget_class, UnetLrPage, use_button);
    gtk_widget_class_bind_template_child(widget_class, UnetLrPage, progress);
    gtk_widget_class_bind_template_child(widget_class, UnetLrPage, lr_plot);
    gtk_widget_class_install_action(widget_class, "lr.export-png", "s", export_action);
    gtk_widget_class_install_action(widget_class, "lr.export-svg", "s", export_action);
    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void unet_lr_page_init(UnetLrPage *page)
{
    gtk_widget_init_template(GTK_WIDGET(page));
    page->state = UNET_RUN_IDLE;
    page->can_start = TRUE;
    page->lr = g_array_new(FALSE, FALSE, sizeof(double));
    page->smoothed = g_array_new(FALSE, FALSE, sizeof(double));
    unet_plot_set_log_x(page->lr_plot, TRUE);
    unet_plot_set_x_label(page->lr_plot, _("Learning rate"));
    unet_plot_set_y_label(page->lr_plot, _("Loss"));
    unet_plot_set_placeholder(page->lr_plot, _("The loss at each learning rate appears here while the range test "
                                               "runs."));
    GdkRGBA light = { 0.11, 0.44, 0.85, 0.35 }, blue = { 0.11, 0.44, 0.85, 1 };
    unet_plot_add_series(page->lr_plot, _("Loss"), &light);
    unet_plot_add_series(page->lr_plot, _("Smoothed loss"), &blue);
    unet_plot_set_series_width(page->lr_plot, UNET_LR_SERIES_SMOOTHED, 2);
    g_signal_connect(page->use_button, "clicked", G_CALLBACK(on_use), page);
}
