/* unet-window.c - UnetWindow: header bar, welcome page, dataset browser,
 * page stack, drag and drop, run controls. */
#include "unet-window.h"

#include <glib/gi18n.h>

#include "unet-augment-page.h"
#include "unet-data-page.h"
#include "unet-dataset-browser.h"
#include "unet-lr-page.h"
#include "unet-page.h"
#include "unet-sample-job.h"
#include "unet-segment-page.h"
#include "unet-train-page.h"
#include "unet-ui-util.h"

struct _UnetWindow {
    GtkApplicationWindow parent_instance;
    GtkHeaderBar *header_bar;
    GtkStackSwitcher *switcher;
    GtkWidget *sidebar_button;
    GtkWidget *run_box;
    GtkLabel *run_status_label;
    GtkButton *run_start_button, *run_pause_button, *run_stop_button;
    GtkRevealer *banner_revealer;
    GtkWidget *banner;
    GtkImage *banner_icon;
    GtkLabel *banner_label;
    GtkButton *banner_close;
    GtkStack *main_stack, *page_stack;
    GtkPaned *paned;
    UnetDatasetBrowser *browser;
    GtkWidget *welcome_progress_box;
    GtkProgressBar *welcome_progress;
    GtkLabel *welcome_progress_label;
    GtkWidget *data_page, *augment_page, *train_page, *lr_page, *segment_page;

    GSettings *settings;
    UnetSession *session;
    GCancellable *sample_cancel;
    guint banner_timeout;
    gboolean image_opened;
};

G_DEFINE_FINAL_TYPE(UnetWindow, unet_window, GTK_TYPE_APPLICATION_WINDOW)


/* ---- Messages ---- */

static void hide_banner(UnetWindow *win)
{
    gtk_revealer_set_reveal_child(win->banner_revealer, FALSE);
    g_clear_handle_id(&win->banner_timeout, g_source_remove);
}

static gboolean banner_timeout(gpointer data)
{
    UnetWindow *win = data;
    win->banner_timeout = 0;
    gtk_revealer_set_reveal_child(win->banner_revealer, FALSE);
    return G_SOURCE_REMOVE;
}

static void on_message(UnetSession *s, const char *text, gboolean error, UnetWindow *win)
{
    gtk_label_set_text(win->banner_label, text);
    gtk_image_set_from_icon_name(win->banner_icon, error ? "dialog-warning-symbolic" : "emblem-ok-symbolic");
    if (error)
        gtk_widget_add_css_class(win->banner, "error");
    else
        gtk_widget_remove_css_class(win->banner, "error");
    gtk_revealer_set_reveal_child(win->banner_revealer, TRUE);
    g_clear_handle_id(&win->banner_timeout, g_source_remove);
    /* Errors stay until dismissed; confirmations go away by themselves. */
    if (!error)
        win->banner_timeout = g_timeout_add_seconds(5, banner_timeout, win);
}

static void on_banner_close(GtkButton *b, UnetWindow *win)
{
    hide_banner(win);
}

/* ---- Mode: welcome or workbench ---- */

static void update_mode(UnetWindow *win)
{
    UnetDatasetStore *store = unet_session_get_store(win->session);
    gboolean work = unet_dataset_store_get_path(store) || unet_dataset_store_get_loading(store) || win->image_opened;
    gtk_stack_set_visible_child_name(win->main_stack, work ? "workbench" : "welcome");
    gtk_widget_set_visible(GTK_WIDGET(win->switcher), work);
    gtk_widget_set_visible(GTK_WIDGET(win->sidebar_button), work);
}

static void on_store_notify(GObject *store, GParamSpec *pspec, UnetWindow *win)
{
    update_mode(win);
}

/* ---- Pages and run controls ---- */

static UnetPage *visible_page(UnetWindow *win)
{
    GtkWidget *child = gtk_stack_get_visible_child(win->page_stack);
    return child && UNET_IS_PAGE(child) ? UNET_PAGE(child) : NULL;
}

static void set_action_enabled(UnetWindow *win, const char *name, gboolean enabled)
{
    GAction *a = g_action_map_lookup_action(G_ACTION_MAP(win), name);
    if (a)
        g_simple_action_set_enabled(G_SIMPLE_ACTION(a), enabled);
}

static void update_run_controls(UnetWindow *win)
{
    UnetRunInfo info = { 0 };
    UnetPage *page = visible_page(win);
    if (page)
        unet_page_get_run_info(page, &info);
    gboolean active = info.state == UNET_RUN_RUNNING || info.state == UNET_RUN_PAUSED;
    gtk_widget_set_visible(win->run_box, info.state != UNET_RUN_NONE);
    set_action_enabled(win, "run-start", info.state != UNET_RUN_NONE && info.can_start);
    set_action_enabled(win, "run-pause", active);
    set_action_enabled(win, "run-stop", active);
    if (info.start_label)
        gtk_widget_set_tooltip_text(GTK_WIDGET(win->run_start_button), info.start_label);
    gboolean paused = info.state == UNET_RUN_PAUSED;
    gtk_button_set_icon_name(win->run_pause_button,
                             paused ? "media-playback-start-symbolic" : "media-playback-pause-symbolic");
    gtk_widget_set_tooltip_text(GTK_WIDGET(win->run_pause_button), paused ? _("Resume (F6)") : _("Pause (F6)"));
    gtk_label_set_text(win->run_status_label,
                       info.state == UNET_RUN_RUNNING ? _("Running") : paused ? _("Paused") : "");
}

static void on_run_changed(UnetPage *page, UnetWindow *win)
{
    if (page == visible_page(win))
        update_run_controls(win);
}

static void on_visible_page(GtkStack *stack, GParamSpec *pspec, UnetWindow *win)
{
    const char *name = gtk_stack_get_visible_child_name(stack);
    if (name) {
        GAction *a = g_action_map_lookup_action(G_ACTION_MAP(win), "page");
        if (a)
            g_simple_action_set_state(G_SIMPLE_ACTION(a), g_variant_new_string(name));
        if (win->settings)
            g_settings_set_string(win->settings, "last-page", name);
    }
    update_run_controls(win);
}

void unet_window_show_page(UnetWindow *win, const char *name)
{
    g_return_if_fail(UNET_IS_WINDOW(win));
    if (gtk_stack_get_child_by_name(win->page_stack, name))
        gtk_stack_set_visible_child_name(win->page_stack, name);
}

GtkWidget *unet_window_get_page(UnetWindow *win, const char *name)
{
    g_return_val_if_fail(UNET_IS_WINDOW(win), NULL);
    return gtk_stack_get_child_by_name(win->page_stack, name);
}

const char *unet_window_get_visible_page(UnetWindow *win)
{
    return gtk_stack_get_visible_child_name(win->page_stack);
}

const char *unet_window_get_mode(UnetWindow *win)
{
    return gtk_stack_get_visible_child_name(win->main_stack);
}

GtkWidget *unet_window_get_browser(UnetWindow *win)
{
    return GTK_WIDGET(win->browser);
}

UnetSession *unet_window_get_session(UnetWindow *win)
{
    return win->session;
}

/* ---- Opening things ---- */

void unet_window_open_dataset(UnetWindow *win, const char *path)
{
    g_return_if_fail(UNET_IS_WINDOW(win));
    hide_banner(win);
    unet_session_open_dataset(win->session, path);
    if (!g_strcmp0(unet_window_get_visible_page(win), "segment"))
        unet_window_show_page(win, "data");
    update_mode(win);
}

void unet_window_open_image(UnetWindow *win, const char *path)
{
    g_return_if_fail(UNET_IS_WINDOW(win));
    win->image_opened = TRUE;
    unet_segment_page_open_image(UNET_SEGMENT_PAGE(win->segment_page), path);
    unet_window_show_page(win, "segment");
    update_mode(win);
}

void unet_window_open_file(UnetWindow *win, GFile *file)
{
    g_return_if_fail(UNET_IS_WINDOW(win));
    char *path = g_file_get_path(file);
    if (!path) {
        char *uri = g_file_get_uri(file);
        unet_session_message(win->session, TRUE, _("Only local files can be opened, not %s."), uri);
        g_free(uri);
        return;
    }
    if (g_file_test(path, G_FILE_TEST_IS_DIR))
        unet_window_open_dataset(win, path);
    else if (g_file_test(path, G_FILE_TEST_EXISTS))
        unet_window_open_image(win, path);
    else
        unet_session_message(win->session, TRUE, _("There is no file or folder “%s”."), path);
    g_free(path);
}

static void folder_chosen(GFile *file, gpointer data)
{
    unet_window_open_file(UNET_WINDOW(data), file);
}

static void image_chosen(GFile *file, gpointer data)
{
    UnetWindow *win = data;
    char *path = g_file_get_path(file);
    if (path)
        unet_window_open_image(win, path);
    g_free(path);
}

static void action_open_dataset(GSimpleAction *a, GVariant *p, gpointer data)
{
    unet_ui_choose_folder(GTK_WIDGET(data), _("Open Dataset Folder"), folder_chosen, g_object_ref(data),
                          g_object_unref);
}

static void action_open_image(GSimpleAction *a, GVariant *p, gpointer data)
{
    unet_ui_choose_open_file(GTK_WIDGET(data), _("Open Image to Segment"), unet_ui_image_filter(), image_chosen,
                             g_object_ref(data), g_object_unref);
}

/* ---- Sample dataset ---- */

static void sample_progress(int done, int total, gpointer data)
{
    UnetWindow *win = data;
    gtk_progress_bar_set_fraction(win->welcome_progress, total > 0 ? (double)done / total : 0);
    char *t = g_strdup_printf(_("Writing pair %d of %d…"), done, total);
    gtk_label_set_text(win->welcome_progress_label, t);
    g_free(t);
}

static void sample_done(GObject *source, GAsyncResult *result, gpointer data)
{
    UnetWindow *win = data;
    GError *error = NULL;
    char *dir = unet_sample_job_run_finish(result, &error);
    gtk_widget_set_visible(win->welcome_progress_box, FALSE);
    set_action_enabled(win, "generate-sample", TRUE);
    g_clear_object(&win->sample_cancel);
    if (!dir) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            unet_session_message(win->session, TRUE, _("Could not write the sample dataset: %s"), error->message);
        g_error_free(error);
        g_object_unref(win);
        return;
    }
    unet_window_open_dataset(win, dir);
    g_free(dir);
    g_object_unref(win);
}

void unet_window_generate_sample(UnetWindow *win, const char *dir, int count, int size)
{
    g_return_if_fail(UNET_IS_WINDOW(win));
    if (win->sample_cancel)
        return;
    char *target = NULL;
    if (dir)
        target = g_strdup(dir);
    else if (win->settings)
        target = g_settings_get_string(win->settings, "sample-data-dir");
    if (!target || !*target) {
        g_free(target);
        target = unet_sample_job_default_dir();
    }
    set_action_enabled(win, "generate-sample", FALSE);
    gtk_widget_set_visible(win->welcome_progress_box, TRUE);
    gtk_progress_bar_set_fraction(win->welcome_progress, 0);
    gtk_label_set_text(win->welcome_progress_label, _("Writing the sample dataset…"));
    if (!g_strcmp0(unet_window_get_mode(win), "workbench"))
        unet_session_message(win->session, FALSE, _("Writing the sample dataset to %s…"), target);
    win->sample_cancel = g_cancellable_new();
    unet_sample_job_run_async(target, count > 0 ? count : 30, size > 0 ? size : 256, 1, sample_progress, win,
                              win->sample_cancel, sample_done, g_object_ref(win));
    g_free(target);
}

static void action_generate_sample(GSimpleAction *a, GVariant *p, gpointer data)
{
    unet_window_generate_sample(UNET_WINDOW(data), NULL, 0, 0);
}

/* ---- Other actions ---- */

static void action_show_sidebar(GSimpleAction *a, GVariant *state, gpointer data)
{
    UnetWindow *win = data;
    gboolean show = g_variant_get_boolean(state);
    g_simple_action_set_state(a, state);
    gtk_widget_set_visible(GTK_WIDGET(win->browser), show);
    if (win->settings)
        g_settings_set_boolean(win->settings, "sidebar-visible", show);
}

static void action_page(GSimpleAction *a, GVariant *param, gpointer data)
{
    UnetWindow *win = data;
    const char *name = g_variant_get_string(param, NULL);
    if (!g_strcmp0(unet_window_get_mode(win), "welcome"))
        return;
    unet_window_show_page(win, name);
}

static void move_selection(UnetWindow *win, int delta)
{
    UnetDatasetStore *store = unet_session_get_store(win->session);
    int n = (int)g_list_model_get_n_items(G_LIST_MODEL(store));
    if (n == 0)
        return;
    int cur = unet_session_get_selected(win->session);
    int next = cur < 0 ? 0 : CLAMP(cur + delta, 0, n - 1);
    unet_session_set_selected(win->session, next);
}

static void action_next_pair(GSimpleAction *a, GVariant *p, gpointer data)
{
    move_selection(UNET_WINDOW(data), 1);
}

static void action_previous_pair(GSimpleAction *a, GVariant *p, gpointer data)
{
    move_selection(UNET_WINDOW(data), -1);
}

static void action_run_start(GSimpleAction *a, GVariant *p, gpointer data)
{
    UnetPage *page = visible_page(UNET_WINDOW(data));
    if (page)
        unet_page_run_start(page);
}

static void action_run_pause(GSimpleAction *a, GVariant *p, gpointer data)
{
    UnetPage *page = visible_page(UNET_WINDOW(data));
    if (page)
        unet_page_run_pause(page);
}

static void action_run_stop(GSimpleAction *a, GVariant *p, gpointer data)
{
    UnetPage *page = visible_page(UNET_WINDOW(data));
    if (page)
        unet_page_run_stop(page);
}

static const GActionEntry win_actions[] = {
    { "open-dataset", action_open_dataset, NULL, NULL, NULL, { 0 } },
    { "open-image", action_open_image, NULL, NULL, NULL, { 0 } },
    { "generate-sample", action_generate_sample, NULL, NULL, NULL, { 0 } },
    { "show-sidebar", NULL, NULL, "true", action_show_sidebar, { 0 } },
    { "page", action_page, "s", "'data'", NULL, { 0 } },
    { "next-pair", action_next_pair, NULL, NULL, NULL, { 0 } },
    { "previous-pair", action_previous_pair, NULL, NULL, NULL, { 0 } },
    { "run-start", action_run_start, NULL, NULL, NULL, { 0 } },
    { "run-pause", action_run_pause, NULL, NULL, NULL, { 0 } },
    { "run-stop", action_run_stop, NULL, NULL, NULL, { 0 } },
};

/* ---- Drag and drop ---- */

static gboolean on_drop(GtkDropTarget *target, const GValue *value, double x, double y, UnetWindow *win)
{
    if (!G_VALUE_HOLDS(value, GDK_TYPE_FILE_LIST))
        return FALSE;
    GSList *files = gdk_file_list_get_files(g_value_get_boxed(value));
    if (!files)
        return FALSE;
    unet_window_open_file(win, files->data);
    g_slist_free(files);
    return TRUE;
}

/* ---- Window state ---- */

static void on_close_answer(GtkDialog *dialog, int response, UnetWindow *win)
{
    gtk_window_destroy(GTK_WINDOW(dialog));
    if (response != GTK_RESPONSE_ACCEPT)
        return;
    /* Stop leaves the last good checkpoint; the join waits for it. */
    unet_session_stop_trainer_wait(win->session);
    gtk_window_close(GTK_WINDOW(win));
}

static gboolean unet_window_close_request(GtkWindow *window)
{
    UnetWindow *win = UNET_WINDOW(window);
    if (win->session && unet_session_is_running(win->session)) {
        /* GtkAlertDialog needs GTK 4.10; 4.8 has GtkMessageDialog. */
        G_GNUC_BEGIN_IGNORE_DEPRECATIONS
        GtkWidget *d = gtk_message_dialog_new(window, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                              GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE, "%s",
                                              _("Stop the running job and close?"));
        gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "%s",
                                                 _("Training stops after the current step and keeps its last "
                                                   "checkpoint, so the run can be resumed later."));
        gtk_dialog_add_button(GTK_DIALOG(d), _("_Cancel"), GTK_RESPONSE_CANCEL);
        GtkWidget *b = gtk_dialog_add_button(GTK_DIALOG(d), _("_Stop and Close"), GTK_RESPONSE_ACCEPT);
        gtk_widget_add_css_class(b, "destructive-action");
        gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
        G_GNUC_END_IGNORE_DEPRECATIONS
        g_signal_connect(d, "response", G_CALLBACK(on_close_answer), win);
        gtk_window_present(GTK_WINDOW(d));
        return TRUE;
    }
    if (win->settings) {
        int w, h;
        gtk_window_get_default_size(window, &w, &h);
        gboolean max = gtk_window_is_maximized(window);
        if (!max && w > 0 && h > 0) {
            g_settings_set_int(win->settings, "window-width", w);
            g_settings_set_int(win->settings, "window-height", h);
        }
        g_settings_set_boolean(win->settings, "window-maximized", max);
    }
    if (win->sample_cancel)
        g_cancellable_cancel(win->sample_cancel);
    return GTK_WINDOW_CLASS(unet_window_parent_class)->close_request(window);
}

static void unet_window_dispose(GObject *object)
{
    UnetWindow *win = UNET_WINDOW(object);
    g_clear_handle_id(&win->banner_timeout, g_source_remove);
    if (win->sample_cancel)
        g_cancellable_cancel(win->sample_cancel);
    g_clear_object(&win->sample_cancel);
    g_clear_object(&win->session);
    g_clear_object(&win->settings);
    G_OBJECT_CLASS(unet_window_parent_class)->dispose(object);
}

static void unet_window_class_init(UnetWindowClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    GtkWindowClass *window_class = GTK_WINDOW_CLASS(klass);
    object_class->dispose = unet_window_dispose;
    window_class->close_request = unet_window_close_request;
    g_type_ensure(UNET_TYPE_DATASET_BROWSER);
    g_type_ensure(UNET_TYPE_DATA_PAGE);
    g_type_ensure(UNET_TYPE_AUGMENT_PAGE);
    g_type_ensure(UNET_TYPE_TRAIN_PAGE);
    g_type_ensure(UNET_TYPE_LR_PAGE);
    g_type_ensure(UNET_TYPE_SEGMENT_PAGE);
    gtk_widget_class_set_template_from_resource(widget_class, "/org/unetworkbench/Workbench/ui/unet-window.ui");
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, header_bar);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, switcher);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, sidebar_button);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, run_box);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, run_status_label);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, run_start_button);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, run_pause_button);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, run_stop_button);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, banner_revealer);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, banner);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, banner_icon);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, banner_label);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, banner_close);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, main_stack);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, page_stack);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, paned);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, browser);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, welcome_progress_box);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, welcome_progress);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, welcome_progress_label);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, data_page);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, augment_page);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, train_page);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, lr_page);
    gtk_widget_class_bind_template_child(widget_class, UnetWindow, segment_page);
}

static void unet_window_init(UnetWindow *win)
{
    gtk_widget_init_template(GTK_WIDGET(win));
    g_action_map_add_action_entries(G_ACTION_MAP(win), win_actions, G_N_ELEMENTS(win_actions), win);
    g_signal_connect(win->banner_close, "clicked", G_CALLBACK(on_banner_close), win);
    GtkDropTarget *drop = gtk_drop_target_new(GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
    g_signal_connect(drop, "drop", G_CALLBACK(on_drop), win);
    gtk_widget_add_controller(GTK_WIDGET(win), GTK_EVENT_CONTROLLER(drop));
}

UnetWindow *unet_window_new(GtkApplication *app, GSettings *settings)
{
    g_return_val_if_fail(G_IS_SETTINGS(settings), NULL);
    UnetWindow *win = g_object_new(UNET_TYPE_WINDOW, "application", app, NULL);
    win->settings = g_object_ref(settings);
    win->session = unet_session_new(settings);

    gtk_window_set_default_size(GTK_WINDOW(win), g_settings_get_int(settings, "window-width"),
                                g_settings_get_int(settings, "window-height"));
    if (g_settings_get_boolean(settings, "window-maximized"))
        gtk_window_maximize(GTK_WINDOW(win));

    unet_dataset_browser_set_session(win->browser, win->session);
    GtkWidget *pages[] = { win->data_page, win->augment_page, win->train_page, win->lr_page, win->segment_page };
    for (guint i = 0; i < G_N_ELEMENTS(pages); i++) {
        unet_page_set_session(UNET_PAGE(pages[i]), win->session);
        g_signal_connect(pages[i], "run-changed", G_CALLBACK(on_run_changed), win);
    }
    g_signal_connect_object(win->session, "message", G_CALLBACK(on_message), win, 0);
    UnetDatasetStore *store = unet_session_get_store(win->session);
    g_signal_connect_object(store, "notify", G_CALLBACK(on_store_notify), win, 0);
    g_signal_connect(win->page_stack, "notify::visible-child", G_CALLBACK(on_visible_page), win);

    gboolean sidebar = g_settings_get_boolean(settings, "sidebar-visible");
    g_action_group_change_action_state(G_ACTION_GROUP(win), "show-sidebar", g_variant_new_boolean(sidebar));
    char *last_page = g_settings_get_string(settings, "last-page");
    unet_window_show_page(win, last_page);
    g_free(last_page);
    update_run_controls(win);
    update_mode(win);
    return win;
}
