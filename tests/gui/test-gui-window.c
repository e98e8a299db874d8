/* test-gui-window.c - the workbench window end to end on a generated sample
 * dataset: welcome page, opening the dataset, every page rendered to PNG
 * with checks on what the pixels show, trainer events reaching the charts,
 * the sample-dataset job, actions and accelerators, and an accessible name
 * on every control. */
#include <glib/gi18n.h>
#include <locale.h>
#include <math.h>
#include <string.h>

#include "gui-test-util.h"
#include "image.h"
#include "sample-data.h"
#include "unet-application.h"
#include "unet-augment-page.h"
#include "unet-data-page.h"
#include "unet-dataset-browser.h"
#include "unet-lr-page.h"
#include "unet-run-config.h"
#include "unet-segment-page.h"
#include "unet-train-page.h"
#include "unet-ui-config.h"
#include "unet-window.h"

static UnetWindow *win;
static const char *lang; /* UNET_TEST_LANG: run translated, screenshots named -LANG */

static gboolean dataset_ready(gpointer data)
{
    int want = GPOINTER_TO_INT(data);
    UnetSession *s = unet_window_get_session(win);
    UnetDatasetStore *store = unet_session_get_store(s);
    UnetDataPage *page = UNET_DATA_PAGE(unet_window_get_page(win, "data"));
    return !unet_dataset_store_get_loading(store) &&
           (int)g_list_model_get_n_items(G_LIST_MODEL(store)) == want && unet_session_get_loaded_pair(s) &&
           unet_data_page_get_shown_pair(page) == unet_session_get_selected(s);
}

static gboolean weights_ready(gpointer data)
{
    return unet_augment_page_get_weight_count(data) > 0;
}

static gboolean segment_image_ready(gpointer data)
{
    return unet_segment_page_get_image(data) != NULL;
}

static gboolean plot_has_points(gpointer data)
{
    return unet_plot_get_n_points(data, 0) > 0;
}

/* Renders the window, saves it, and returns its pixels. */
static guint8 *shoot(const char *name, int *w, int *h)
{
    gui_test_wait_frames(GTK_WIDGET(win), 3, 3000);
    GdkTexture *tex = gui_test_render(GTK_WIDGET(win));
    CHECK_MSG(tex != NULL, "window %s did not render", name);
    if (!tex)
        return NULL;
    char *full = lang ? g_strdup_printf("%s-%s", name, lang) : g_strdup(name);
    char *path = gui_test_save(tex, full);
    g_free(full);
    printf("screenshot %s\n", path);
    g_free(path);
    guint8 *px = gui_test_pixels(tex, w, h);
    g_object_unref(tex);
    return px;
}

/* Distinct colours inside a widget's area of the window shot. */
static int colors_in(const guint8 *px, int pw, int ph, GtkWidget *widget, int inset)
{
    int x, y, w, h;
    if (!gui_test_bounds(widget, GTK_WIDGET(win), &x, &y, &w, &h))
        return 0;
    int x0 = CLAMP(x + inset, 0, pw), y0 = CLAMP(y + inset, 0, ph);
    int x1 = CLAMP(x + w - inset, 0, pw), y1 = CLAMP(y + h - inset, 0, ph);
    if (x1 <= x0 || y1 <= y0)
        return 0;
    return gui_test_distinct_colors(px, pw, x0, y0, x1, y1);
}

/* Pixels near a colour inside a widget's area. */
static int count_color(const guint8 *px, int pw, int ph, GtkWidget *widget, const GdkRGBA *c, int tol)
{
    int x, y, w, h, n = 0;
    if (!gui_test_bounds(widget, GTK_WIDGET(win), &x, &y, &w, &h))
        return 0;
    int r = (int)lround(c->red * 255), g = (int)lround(c->green * 255), b = (int)lround(c->blue * 255);
    for (int yy = MAX(0, y); yy < MIN(ph, y + h); yy++) {
        for (int xx = MAX(0, x); xx < MIN(pw, x + w); xx++) {
            const guint8 *p = gui_test_px(px, pw, xx, yy);
            if (abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol)
                n++;
        }
    }
    return n;
}

/* ---- Accessibility: every control has a name ---- */

static gboolean has_text_child(GtkWidget *w)
{
    for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
        if (GTK_IS_LABEL(c) && *gtk_label_get_text(GTK_LABEL(c)))
            return TRUE;
        if (has_text_child(c))
            return TRUE;
    }
    return FALSE;
}

static int unnamed;

static void check_names(GtkWidget *w, const char *where)
{
    gboolean control = GTK_IS_BUTTON(w) || GTK_IS_MENU_BUTTON(w) || GTK_IS_SPIN_BUTTON(w) ||
                       GTK_IS_DROP_DOWN(w) || GTK_IS_SWITCH(w) || GTK_IS_SCALE(w) || GTK_IS_CHECK_BUTTON(w) ||
                       GTK_IS_SEARCH_ENTRY(w) || GTK_IS_ENTRY(w);
    /* Buttons inside composite controls (spin arrows, drop-down popover
     * rows, stack switcher buttons) are named by their parent widget. */
    GtkWidget *parent = gtk_widget_get_parent(w);
    gboolean inner = parent && (GTK_IS_SPIN_BUTTON(parent) || GTK_IS_DROP_DOWN(parent) ||
                                GTK_IS_MENU_BUTTON(parent) || GTK_IS_STACK_SWITCHER(parent) ||
                                GTK_IS_SEARCH_ENTRY(parent) || GTK_IS_COLOR_BUTTON(parent) ||
                                GTK_IS_WINDOW_CONTROLS(parent));
    if (control && !inner && gtk_widget_get_visible(w)) {
        GList *mn = gtk_widget_list_mnemonic_labels(w);
        gboolean named = mn != NULL || gtk_widget_get_tooltip_text(w) != NULL || has_text_child(w) ||
                         (GTK_IS_BUTTON(w) && gtk_button_get_label(GTK_BUTTON(w)));
        g_list_free(mn);
        if (!named) {
            fprintf(stderr, "%s: %s in %s in %s without label, mnemonic label or tooltip\n", where,
                    G_OBJECT_TYPE_NAME(w), G_OBJECT_TYPE_NAME(parent),
                    G_OBJECT_TYPE_NAME(gtk_widget_get_parent(parent)));
            unnamed++;
        }
    }
    for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c))
        check_names(c, where);
}

/* The control a form label (its mnemonic text, as translated) points to. */
static GtkWidget *form_control(GtkWidget *w, const char *label)
{
    if (GTK_IS_LABEL(w) && !g_strcmp0(gtk_label_get_label(GTK_LABEL(w)), label))
        return gtk_label_get_mnemonic_widget(GTK_LABEL(w));
    for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
        GtkWidget *found = form_control(c, label);
        if (found)
            return found;
    }
    return NULL;
}

/* Scrolls the scrolled window holding w to its end (the form's Run rows). */
static void scroll_to_end(GtkWidget *w)
{
    GtkWidget *sw = gtk_widget_get_ancestor(w, GTK_TYPE_SCROLLED_WINDOW);
    if (!sw)
        return;
    GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
    gtk_adjustment_set_value(adj, gtk_adjustment_get_upper(adj) - gtk_adjustment_get_page_size(adj));
}

/* ---- Synthetic trainer events, pushed from a thread like the trainer's ---- */

static gpointer push_training_events(gpointer data)
{
    UnetEventQueue *q = data;
    UnetTrainEvent ev = { 0 };
    ev.epochs = 3;
    ev.steps_per_epoch = 100;
    ev.kind = UNET_EVENT_STARTED;
    ev.message = "test run";
    unet_event_queue_push(q, &ev);
    for (int e = 1; e <= 3; e++) {
        for (int s = 0; s < 100; s++) {
            ev.kind = UNET_EVENT_STEP;
            ev.epoch = e;
            ev.step = (e - 1) * 100 + s + 1;
            ev.loss = 0.7 * exp(-ev.step / 120.0) + 0.05 * sin(ev.step * 0.7) + 0.1;
            ev.samples_per_second = 12.5;
            ev.seconds_elapsed = ev.step * 0.1;
            unet_event_queue_push(q, &ev);
        }
        UnetTrainEvent ep = ev;
        ep.kind = UNET_EVENT_EPOCH;
        ep.train_loss = 0.6 / e;
        ep.val_loss = 0.65 / e;
        ep.metrics.dice = 0.5 + 0.1 * e;
        ep.metrics.iou = 0.4 + 0.1 * e;
        ep.metrics.pixel_error = 0.2 / e;
        ep.metrics.rand_info.v_rand = 0.6 + 0.05 * e;
        ep.is_best = 1;
        unet_event_queue_push(q, &ep);
    }
    static guint8 img[64 * 64], truth[64 * 64], pred[64 * 64];
    for (int i = 0; i < 64 * 64; i++) {
        img[i] = (guint8)(i * 7);
        truth[i] = (i % 64) < 32 ? 255 : 0;
        pred[i] = (i % 64) < 30 ? 255 : 0;
    }
    UnetPreview pv = { 64, 64, img, truth, pred, "000" };
    UnetTrainEvent pe = { .kind = UNET_EVENT_PREVIEW, .epoch = 3, .preview = &pv };
    unet_event_queue_push(q, &pe);
    UnetTrainEvent fin = { .kind = UNET_EVENT_FINISHED, .message = "3 epochs done" };
    unet_event_queue_push(q, &fin);
    return NULL;
}

static gpointer push_lr_events(gpointer data)
{
    UnetEventQueue *q = data;
    UnetTrainEvent ev = { 0 };
    double smooth = 0;
    for (int i = 0; i < 100; i++) {
        double lr = 1e-6 * pow(1e6, i / 99.0);
        /* Flat, then falling fastest around 1e-3, then diverging past 1e-1. */
        double loss = 0.7 - 0.5 / (1 + exp(-(log10(lr) + 3) * 3)) + (lr > 0.1 ? (lr - 0.1) * 20 : 0);
        smooth = i ? 0.7 * smooth + 0.3 * loss : loss;
        ev.kind = UNET_EVENT_LR_TEST_POINT;
        ev.step = i;
        ev.lr = lr;
        ev.loss = loss;
        ev.smoothed_loss = smooth;
        unet_event_queue_push(q, &ev);
    }
    return NULL;
}

int main(void)
{
    setlocale(LC_ALL, "");
    lang = g_getenv("UNET_TEST_LANG");
    const char *localedir = g_getenv("UNET_LOCALEDIR");
    if (localedir)
        bindtextdomain(GETTEXT_PACKAGE, localedir);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);
    gui_test_init();
    char *tmp, *ds_dir;
    UnetApplication *app;
    win = gui_test_open_window("gui-window", 6, 128, &tmp, &ds_dir, &app);
    if (!win)
        return test_finish("gui-window");
    UnetSession *session = unet_window_get_session(win);

    /* Translated run: the page titles come from the catalogue. */
    if (lang && !strcmp(lang, "de")) {
        GtkStack *stack = GTK_STACK(gtk_widget_get_parent(unet_window_get_page(win, "data")));
        GtkStackPage *sp = gtk_stack_get_page(stack, unet_window_get_page(win, "data"));
        CHECK_MSG(!strcmp(gtk_stack_page_get_title(sp), "Daten"), "Data page title is %s",
                  gtk_stack_page_get_title(sp));
    }

    /* First start: the welcome page offers the sample dataset. */
    CHECK(!strcmp(unet_window_get_mode(win), "welcome"));
    int pw, ph;
    guint8 *px = shoot("window-welcome", &pw, &ph);
    CHECK(px && gui_test_distinct_colors(px, pw, 0, 0, pw, ph) > 20);
    g_free(px);

    /* Accelerators and actions. */
    char **acc = gtk_application_get_accels_for_action(GTK_APPLICATION(app), "win.open-dataset");
    CHECK(acc && acc[0] && !strcmp(acc[0], "<Control>o"));
    g_strfreev(acc);
    acc = gtk_application_get_accels_for_action(GTK_APPLICATION(app), "win.run-start");
    CHECK(acc && acc[0] && !strcmp(acc[0], "F5"));
    g_strfreev(acc);
    CHECK(g_action_group_has_action(G_ACTION_GROUP(win), "show-help-overlay"));

    /* Open the dataset (what a dropped folder does). */
    GFile *f = g_file_new_for_path(ds_dir);
    unet_window_open_file(win, f);
    g_object_unref(f);
    CHECK(gui_test_wait_until(dataset_ready, GINT_TO_POINTER(6), 20000));
    CHECK(!strcmp(unet_window_get_mode(win), "workbench"));
    UnetDatasetBrowser *browser = UNET_DATASET_BROWSER(unet_window_get_browser(win));
    CHECK(unet_dataset_browser_get_n_shown(browser) == 6);
    UnetPairItem *item = unet_dataset_store_get_item(unet_session_get_store(session), 0);
    CHECK(item && unet_pair_item_get_image_thumbnail(item) && unet_pair_item_get_mask_thumbnail(item));
    int n_val = 0;
    for (int i = 0; i < 6; i++)
        n_val += unet_pair_item_get_validation(unet_dataset_store_get_item(unet_session_get_store(session), i));
    CHECK_MSG(n_val == 1, "validation pairs %d, want round(0.2 * 6) = 1", n_val);
    unet_dataset_browser_set_filter(browser, "003");
    CHECK(unet_dataset_browser_get_n_shown(browser) == 1);
    unet_dataset_browser_set_filter(browser, NULL);

    /* Data page: the image has texture, the mask is black and white. */
    unet_window_show_page(win, "data");
    UnetDataPage *data_page = UNET_DATA_PAGE(unet_window_get_page(win, "data"));
    px = shoot("window-data", &pw, &ph);
    if (px) {
        int img_colors = colors_in(px, pw, ph, GTK_WIDGET(unet_data_page_get_image_view(data_page)), 30);
        int mask_colors = colors_in(px, pw, ph, GTK_WIDGET(unet_data_page_get_mask_view(data_page)), 30);
        int ov_colors = colors_in(px, pw, ph, GTK_WIDGET(unet_data_page_get_overlay_view(data_page)), 30);
        CHECK_MSG(img_colors > 30, "image view shows %d colours", img_colors);
        CHECK_MSG(mask_colors >= 2 && mask_colors < img_colors, "mask view shows %d colours", mask_colors);
        CHECK_MSG(ov_colors > 30, "overlay view shows %d colours", ov_colors);
        CHECK(colors_in(px, pw, ph, unet_window_get_browser(win), 0) > 20);
    }
    g_free(px);
    /* Hovering a pixel reports its value in each view. */
    char *v = unet_image_view_describe_pixel(unet_data_page_get_image_view(data_page), 10, 10);
    CHECK(v != NULL);
    g_free(v);
    v = unet_image_view_describe_pixel(unet_data_page_get_mask_view(data_page), 10, 10);
    char *c0 = g_strdup_printf(_("class %d"), 0), *c1 = g_strdup_printf(_("class %d"), 1);
    CHECK(v && (!strcmp(v, c0) || !strcmp(v, c1)));
    g_free(c0);
    g_free(c1);
    g_free(v);

    /* Next pair from the keyboard action. */
    g_action_group_activate_action(G_ACTION_GROUP(win), "next-pair", NULL);
    CHECK(unet_session_get_selected(session) == 1);
    CHECK(gui_test_wait_until(dataset_ready, GINT_TO_POINTER(6), 10000));
    CHECK(unet_data_page_get_shown_pair(data_page) == 1);

    /* Augmentation page: the weight map of the pair. */
    g_action_group_activate_action(G_ACTION_GROUP(win), "page", g_variant_new_string("augment"));
    CHECK(!strcmp(unet_window_get_visible_page(win), "augment"));
    UnetAugmentPage *aug = UNET_AUGMENT_PAGE(unet_window_get_page(win, "augment"));
    CHECK(gui_test_wait_until(weights_ready, aug, 20000));
    px = shoot("window-augment", &pw, &ph);
    if (px) {
        int wc = colors_in(px, pw, ph, GTK_WIDGET(unet_augment_page_get_weight_view(aug)), 30);
        CHECK_MSG(wc > 10, "weight map shows %d colours", wc);
    }
    g_free(px);

    /* Training page: events from a thread reach the charts. */
    unet_window_show_page(win, "training");
    UnetTrainPage *train = UNET_TRAIN_PAGE(unet_window_get_page(win, "training"));
    unet_session_set_run_owner(session, "training");
    GThread *t = g_thread_new("trainer", push_training_events, unet_session_get_event_queue(session));
    g_thread_join(t);
    UnetPlot *loss = unet_train_page_get_loss_plot(train);
    CHECK(gui_test_wait_until(plot_has_points, loss, 5000));
    gui_test_spin(100);
    CHECK(unet_plot_get_n_points(loss, UNET_TRAIN_SERIES_STEP_LOSS) == 300);
    CHECK(unet_plot_get_n_points(loss, UNET_TRAIN_SERIES_VAL_LOSS) == 3);
    CHECK(unet_plot_get_n_points(unet_train_page_get_metrics_plot(train), UNET_TRAIN_SERIES_DICE) == 3);
    UnetModelConfig cfg;
    CHECK(unet_train_page_get_model_config(train, &cfg, NULL));
    px = shoot("window-training", &pw, &ph);
    if (px) {
        GdkRGBA orange;
        unet_plot_get_series_color(loss, UNET_TRAIN_SERIES_VAL_LOSS, &orange);
        int n = count_color(px, pw, ph, GTK_WIDGET(loss), &orange, 40);
        CHECK_MSG(n > 20, "validation loss colour found at %d pixels", n);
    }
    g_free(px);

    /* LR test page: points, suggestion and divergence markers. */
    unet_window_show_page(win, "lrtest");
    UnetLrPage *lr = UNET_LR_PAGE(unet_window_get_page(win, "lrtest"));
    unet_session_set_run_owner(session, "lrtest");
    t = g_thread_new("lrtest", push_lr_events, unet_session_get_event_queue(session));
    g_thread_join(t);
    CHECK(gui_test_wait_until(plot_has_points, unet_lr_page_get_plot(lr), 5000));
    gui_test_spin(100);
    UnetLrSuggestion sg;
    unet_lr_page_get_suggestion(lr, &sg);
    CHECK_MSG(sg.has_suggestion && sg.suggested_lr > 1e-4 && sg.suggested_lr < 1e-2, "suggested %g",
              sg.suggested_lr);
    CHECK(sg.diverged && sg.diverged_lr > 0.05);
    CHECK(unet_plot_get_n_markers(unet_lr_page_get_plot(lr)) == 2);
    px = shoot("window-lrtest", &pw, &ph);
    g_free(px);
    unet_session_set_run_owner(session, NULL);

    /* Segment page: an image opened as a dropped file would be. */
    char *img_path = g_build_filename(ds_dir, "images", "002.png", NULL);
    f = g_file_new_for_path(img_path);
    unet_window_open_file(win, f);
    g_object_unref(f);
    CHECK(!strcmp(unet_window_get_visible_page(win), "segment"));
    UnetSegmentPage *seg = UNET_SEGMENT_PAGE(unet_window_get_page(win, "segment"));
    CHECK(gui_test_wait_until(segment_image_ready, seg, 10000));
    px = shoot("window-segment", &pw, &ph);
    if (px) {
        int c = colors_in(px, pw, ph, GTK_WIDGET(unet_segment_page_get_image_view(seg)), 30);
        CHECK_MSG(c > 30, "segment image view shows %d colours", c);
    }
    g_free(px);
    g_free(img_path);

    /* A file that is not an image: a message, no crash. */
    char *bad = g_build_filename(tmp, "not-an-image.png", NULL);
    g_file_set_contents(bad, "hello", -1, NULL);
    unet_window_open_image(win, bad);
    gui_test_spin(300);
    CHECK(unet_segment_page_get_image(seg) != NULL);
    g_free(bad);

    check_names(GTK_WIDGET(win), "window");
    CHECK_MSG(unnamed == 0, "%d controls without an accessible name", unnamed);

    /* Form values live in the settings: a changed key reaches the model. */
    GSettings *settings = unet_application_get_settings(app);
    g_settings_set_int(settings, "depth", 4);
    CHECK(unet_train_page_get_model_config(train, &cfg, NULL) && cfg.depth == 4);
    g_settings_set_int(settings, "base-channels", 3);
    GError *cfg_error = NULL;
    CHECK(!unet_train_page_get_model_config(train, &cfg, &cfg_error) || cfg.base == 3);
    g_clear_error(&cfg_error);
    g_settings_reset(settings, "base-channels");

    /* Precision and CUDA graphs reach the trainer config; the CPU always
     * gets fp32 and no graphs, whatever the controls hold. */
    {
        const UnetUiDevices *dev = unet_ui_devices();
        const char *data = unet_dataset_store_get_path(unet_session_get_store(session));
        UnetTrainConfig *tc = g_new0(UnetTrainConfig, 1);
        char *def = g_settings_get_string(settings, "precision");
        CHECK_MSG(!strcmp(def, "tf32") && !g_settings_get_boolean(settings, "cuda-graphs"),
                  "defaults: precision %s, cuda-graphs %d", def, g_settings_get_boolean(settings, "cuda-graphs"));
        g_free(def);
        CHECK(unet_train_page_get_model_config(train, &cfg, NULL));
        g_settings_set_string(settings, "precision", "bf16");
        g_settings_set_boolean(settings, "cuda-graphs", TRUE);
        g_settings_set_string(settings, "device", "cpu");
        CHECK(unet_ui_train_config_from_settings(settings, data, &cfg, tc, NULL));
        CHECK_MSG(!strcmp(tc->device, "cpu") && tc->precision == UNET_PRECISION_FP32 && !tc->cuda_graphs,
                  "cpu: device %s precision %s graphs %d", tc->device, unet_precision_name(tc->precision),
                  tc->cuda_graphs);
        g_settings_set_string(settings, "device", "cuda");
        CHECK(unet_ui_train_config_from_settings(settings, data, &cfg, tc, NULL));
        if (dev->cuda) {
            CHECK_MSG(!strcmp(tc->device, "cuda") && tc->precision == UNET_PRECISION_BF16 && tc->cuda_graphs,
                      "cuda: device %s precision %s graphs %d", tc->device, unet_precision_name(tc->precision),
                      tc->cuda_graphs);
            g_settings_set_string(settings, "precision", "fp32");
            g_settings_set_boolean(settings, "cuda-graphs", FALSE);
            CHECK(unet_ui_train_config_from_settings(settings, data, &cfg, tc, NULL));
            CHECK(tc->precision == UNET_PRECISION_FP32 && !tc->cuda_graphs);
            g_settings_set_string(settings, "precision", "tf32");
            CHECK(unet_ui_train_config_from_settings(settings, data, &cfg, tc, NULL));
            CHECK(tc->precision == UNET_PRECISION_TF32);
            g_settings_set_string(settings, "precision", "bf16");
            g_settings_set_boolean(settings, "cuda-graphs", TRUE);
        } else {
            /* No GPU: a cuda setting left from elsewhere trains on the CPU, in fp32. */
            CHECK_MSG(!strcmp(tc->device, "cpu") && tc->precision == UNET_PRECISION_FP32 && !tc->cuda_graphs,
                      "no GPU: device %s precision %s graphs %d", tc->device, unet_precision_name(tc->precision),
                      tc->cuda_graphs);
        }
        g_free(tc);

        /* The controls: sensitive only with a usable GPU chosen; they keep
         * their values while insensitive. */
        GtkWidget *prec = form_control(GTK_WIDGET(train), _("Pre_cision"));
        GtkWidget *graphs = form_control(GTK_WIDGET(train), _("CUDA grap_hs"));
        CHECK(prec && GTK_IS_DROP_DOWN(prec) && graphs && GTK_IS_SWITCH(graphs));
        if (prec && graphs) {
            CHECK(gtk_drop_down_get_selected(GTK_DROP_DOWN(prec)) == 2 && gtk_switch_get_active(GTK_SWITCH(graphs)));
            CHECK(gtk_widget_get_tooltip_text(prec) && strstr(gtk_widget_get_tooltip_text(prec), "bf16"));
            CHECK_MSG(gtk_widget_get_sensitive(prec) == dev->cuda && gtk_widget_get_sensitive(graphs) == dev->cuda,
                      "device cuda, GPU %d: precision sensitive %d, graphs sensitive %d", dev->cuda,
                      gtk_widget_get_sensitive(prec), gtk_widget_get_sensitive(graphs));
            g_settings_set_string(settings, "device", "cpu");
            CHECK(!gtk_widget_get_sensitive(prec) && !gtk_widget_get_sensitive(graphs));
            CHECK(gtk_drop_down_get_selected(GTK_DROP_DOWN(prec)) == 2 && gtk_switch_get_active(GTK_SWITCH(graphs)));
            /* The drop-down writes the key. */
            gtk_drop_down_set_selected(GTK_DROP_DOWN(prec), 0);
            char *p = g_settings_get_string(settings, "precision");
            CHECK_MSG(!strcmp(p, "fp32"), "precision key %s after choosing fp32", p);
            g_free(p);
            g_settings_set_string(settings, "precision", "bf16");
            unet_window_show_page(win, "training");
            scroll_to_end(prec);
            px = shoot("window-training-run", &pw, &ph);
            g_free(px);
            if (dev->cuda) {
                g_settings_set_string(settings, "device", "cuda");
                CHECK(gtk_widget_get_sensitive(prec) && gtk_widget_get_sensitive(graphs));
                px = shoot("window-training-run-cuda", &pw, &ph);
                g_free(px);
            }
        }
        g_settings_reset(settings, "device");
        g_settings_reset(settings, "precision");
        g_settings_reset(settings, "cuda-graphs");
    }

    /* F9: the dataset list hides and comes back. */
    GtkWidget *browser_w = unet_window_get_browser(win);
    g_action_group_change_action_state(G_ACTION_GROUP(win), "show-sidebar", g_variant_new_boolean(FALSE));
    CHECK(!gtk_widget_get_visible(browser_w) && !g_settings_get_boolean(settings, "sidebar-visible"));
    g_action_group_change_action_state(G_ACTION_GROUP(win), "show-sidebar", g_variant_new_boolean(TRUE));
    CHECK(gtk_widget_get_visible(browser_w));

    /* Preferences and the keyboard shortcuts window open, named and drawn. */
    g_action_group_activate_action(G_ACTION_GROUP(app), "preferences", NULL);
    gui_test_spin(200);
    GtkWindow *prefs = NULL;
    for (GList *l = gtk_window_list_toplevels(); l; l = g_list_delete_link(l, l))
        if (!strcmp(G_OBJECT_TYPE_NAME(l->data), "UnetPreferences"))
            prefs = l->data;
    CHECK(prefs != NULL);
    if (prefs) {
        gui_test_wait_frames(GTK_WIDGET(prefs), 2, 3000);
        GdkTexture *tex = gui_test_render(GTK_WIDGET(prefs));
        CHECK(tex != NULL);
        if (tex) {
            char *path = gui_test_save(tex, "window-preferences");
            g_free(path);
            g_object_unref(tex);
        }
        unnamed = 0;
        check_names(GTK_WIDGET(prefs), "preferences");
        CHECK_MSG(unnamed == 0, "%d preference controls without an accessible name", unnamed);
        g_settings_set_string(settings, "colormap", "magma");
        gtk_window_destroy(prefs);
    }
    g_action_group_activate_action(G_ACTION_GROUP(win), "show-help-overlay", NULL);
    gui_test_spin(200);
    GtkWindow *help = gtk_application_window_get_help_overlay(GTK_APPLICATION_WINDOW(win))
                          ? GTK_WINDOW(gtk_application_window_get_help_overlay(GTK_APPLICATION_WINDOW(win)))
                          : NULL;
    CHECK(help != NULL && gtk_widget_get_visible(GTK_WIDGET(help)));
    if (help) {
        gui_test_wait_frames(GTK_WIDGET(help), 2, 3000);
        GdkTexture *tex = gui_test_render(GTK_WIDGET(help));
        CHECK(tex != NULL);
        if (tex) {
            char *path = gui_test_save(tex, "window-shortcuts");
            g_free(path);
            g_object_unref(tex);
        }
        gtk_widget_set_visible(GTK_WIDGET(help), FALSE);
    }

    /* The sample-dataset job writes a set in a thread and opens it. */
    char *gen_dir = g_build_filename(tmp, "generated", NULL);
    unet_window_generate_sample(win, gen_dir, 4, 64);
    CHECK(gui_test_wait_until(dataset_ready, GINT_TO_POINTER(4), 30000));
    CHECK(!g_strcmp0(unet_dataset_store_get_path(unet_session_get_store(session)), gen_dir));
    g_free(gen_dir);

    /* A pair whose mask has the wrong size is flagged, with the reason. */
    char *bad_dir = g_build_filename(tmp, "flawed", NULL);
    UnetSampleDataOptions opt;
    unet_sample_data_options_default(&opt);
    UnetError err = { 0 };
    opt.count = 3;
    opt.size = 64;
    CHECK(unet_sample_data_write(bad_dir, &opt, NULL, NULL, &err) == UNET_OK);
    guint8 small[32 * 32];
    memset(small, 255, sizeof small);
    char *bad_mask = g_build_filename(bad_dir, "masks", "001.png", NULL);
    CHECK(unet_png_save(bad_mask, small, 32, 32, 1, 8, &err) == UNET_OK);
    unet_window_open_dataset(win, bad_dir);
    CHECK(gui_test_wait_until(dataset_ready, GINT_TO_POINTER(3), 20000));
    UnetDatasetStore *store = unet_session_get_store(session);
    CHECK(unet_pair_item_get_problems(unet_dataset_store_get_item(store, 0)) == NULL);
    const char *problems = unet_pair_item_get_problems(unet_dataset_store_get_item(store, 1));
    CHECK_MSG(problems && strstr(problems, "001"), "problems of the bad pair: %s", problems ? problems : "(none)");
    CHECK(unet_dataset_store_get_n_problem_pairs(store) == 1);
    unet_session_set_selected(session, 1);
    gui_test_spin(500);
    CHECK(unet_session_get_loaded_pair(session) == NULL);
    CHECK(unet_data_page_get_shown_pair(data_page) == -1);
    CHECK(!unet_image_view_get_image_size(unet_data_page_get_image_view(data_page), &pw, &ph));
    unet_window_show_page(win, "data");
    px = shoot("window-problem", &pw, &ph);
    g_free(px);
    g_free(bad_mask);
    g_free(bad_dir);

    /* A folder that is no dataset: a message, the old dataset stays. */
    unet_window_open_dataset(win, tmp);
    gui_test_spin(500);
    CHECK(g_list_model_get_n_items(G_LIST_MODEL(unet_session_get_store(session))) == 3);

    gtk_window_destroy(GTK_WINDOW(win));
    g_object_unref(app);
    g_free(ds_dir);
    free(tmp);
    return test_finish("gui-window");
}
