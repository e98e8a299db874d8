/* test-gui-workflow.c - the workbench doing the real work on a generated
 * sample set: a tiny model trained from the window (plots match the step
 * events, Stop leaves loadable checkpoints, a run folder reopens), an image
 * segmented with it (the overlay equals unet_predict's thresholded output),
 * a short LR range test, the weight map against unet_weightmap_compute, the
 * main loop never stalling above 100 ms while training or segmenting, Pause
 * and Resume, and closing the window mid-run (confirmation, Stop, a loadable
 * last.safetensors). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gui-test-util.h"
#include "inference.h"
#include "sample-data.h"
#include "scratch.h"
#include "unet-application.h"
#include "unet-augment-page.h"
#include "unet-lr-page.h"
#include "unet-page.h"
#include "unet-run-config.h"
#include "unet-segment-page.h"
#include "unet-train-page.h"
#include "unet-window.h"
#include "weightmap.h"

static UnetWindow *win;
static UnetSession *session;

/* ---- Main-loop stall watch: a 5 ms timer records the longest gap ----
 * Wall time between ticks, and the main thread's own CPU time in that gap:
 * work done on the main thread shows in both, while a machine busy with
 * other jobs only stretches the wall time. The wall limit applies when the
 * load average is below the core count; the CPU limit always. */

static gint64 last_tick, max_gap, last_cpu, max_cpu_gap;
static gint64 thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static gboolean tick(gpointer data)
{
    gint64 now = g_get_monotonic_time(), cpu = thread_cpu_us();
    if (last_tick && now - last_tick > max_gap) {
        max_gap = now - last_tick;
        if (g_getenv("UNET_TEST_VERBOSE"))
            fprintf(stderr, "gap %.1f ms (cpu %.1f ms) at %" G_GINT64_FORMAT "\n", max_gap / 1000.0,
                    (cpu - last_cpu) / 1000.0, now / 1000);
    }
    if (last_tick && cpu - last_cpu > max_cpu_gap)
        max_cpu_gap = cpu - last_cpu;
    last_tick = now;
    last_cpu = cpu;
    return G_SOURCE_CONTINUE;
}

static void watch_start(void)
{
    last_tick = 0;
    max_gap = 0;
    max_cpu_gap = 0;
}

static gboolean machine_quiet(void)
{
    double load = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = 0;
        fclose(f);
    }
    return load < (double)g_get_num_processors();
}

static void check_stall(const char *what)
{
    printf("longest main-loop gap while %s: %.1f ms wall, %.1f ms main-thread CPU\n", what, max_gap / 1000.0,
           max_cpu_gap / 1000.0);
    CHECK_MSG(max_cpu_gap < GUI_TEST_STALL_LIMIT_MS * 1000, "main thread busy %.1f ms at once while %s", max_cpu_gap / 1000.0, what);
    if (machine_quiet())
        CHECK_MSG(max_gap < GUI_TEST_STALL_LIMIT_MS * 1000, "main loop stalled %.1f ms while %s", max_gap / 1000.0, what);
    else
        printf("(machine loaded beyond its cores: the wall-time limit is not applied)\n");
}

static gboolean dataset_ready(gpointer data)
{
    UnetDatasetStore *store = unet_session_get_store(session);
    return !unet_dataset_store_get_loading(store) && g_list_model_get_n_items(G_LIST_MODEL(store)) == 8 &&
           unet_session_get_loaded_pair(session);
}

static gboolean steps_seen(gpointer data)
{
    return unet_train_page_get_step_events(data) >= 8 &&
           unet_plot_get_n_points(unet_train_page_get_metrics_plot(data), 0) >= 1;
}

static guint64 step_target;
static gboolean steps_reached(gpointer data)
{
    return unet_train_page_get_step_events(data) >= step_target;
}

static UnetRunState run_state(UnetWindow *w)
{
    UnetRunInfo info;
    unet_page_get_run_info(UNET_PAGE(unet_window_get_page(w, "training")), &info);
    return info.state;
}

/* The close confirmation: a GtkMessageDialog among the toplevels. */
static GtkWidget *find_message_dialog(void)
{
    GListModel *tops = gtk_window_get_toplevels();
    GtkWidget *found = NULL;
    for (guint i = 0; i < g_list_model_get_n_items(tops) && !found; i++) {
        GObject *o = g_list_model_get_item(tops, i);
        G_GNUC_BEGIN_IGNORE_DEPRECATIONS
        if (GTK_IS_MESSAGE_DIALOG(o) && gtk_widget_get_visible(GTK_WIDGET(o)))
            found = GTK_WIDGET(o);
        G_GNUC_END_IGNORE_DEPRECATIONS
        g_object_unref(o);
    }
    return found;
}

static gboolean run_over(gpointer data)
{
    return !unet_session_is_running(session);
}

static gboolean segment_over(gpointer data)
{
    return !unet_segment_page_is_busy(data) && unet_segment_page_get_labels(data, NULL, NULL);
}

static gboolean image_ready(gpointer data)
{
    return unet_segment_page_get_image(data) != NULL;
}

static guint weight_target;
static gboolean weights_done(gpointer data)
{
    return unet_augment_page_get_weight_count(data) >= weight_target;
}

static UnetAugmentPage *aug_page;
static gboolean aug_more(gpointer data)
{
    return unet_augment_page_get_augment_count(aug_page) > GPOINTER_TO_UINT(data);
}

static void shoot(const char *name)
{
    gui_test_wait_frames(GTK_WIDGET(win), 3, 3000);
    GdkTexture *tex = gui_test_render(GTK_WIDGET(win));
    CHECK_MSG(tex != NULL, "window %s did not render", name);
    if (!tex)
        return;
    char *path = gui_test_save(tex, name);
    printf("screenshot %s\n", path);
    g_free(path);
    g_object_unref(tex);
}

static int count_rows(const char *csv, const char *kind)
{
    char *text = NULL;
    if (!g_file_get_contents(csv, &text, NULL, NULL))
        return -1;
    int n = 0;
    char **lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i]; i++)
        n += g_str_has_prefix(lines[i], kind);
    g_strfreev(lines);
    g_free(text);
    return n;
}

/* The JSON value of "key" in text, after the object "section" opens (the
 * raw token up to the next comma, brace or line end). */
static char *json_value_after(const char *text, const char *section, const char *key)
{
    char *sec = g_strdup_printf("\"%s\"", section), *k = g_strdup_printf("\"%s\"", key);
    const char *p = text ? strstr(text, sec) : NULL;
    p = p ? strstr(p, k) : NULL;
    char *v = NULL;
    if (p) {
        p += strlen(k);
        while (*p == ' ' || *p == ':')
            p++;
        size_t n = strcspn(p, ",}\n");
        v = g_strstrip(g_strndup(p, n));
    }
    g_free(sec);
    g_free(k);
    return v;
}

static gboolean loadable(const char *path)
{
    UnetError err = { 0 };
    UnetBackend *be = unet_backend_open("cpu", 1, NULL, 0, &err);
    UnetModel *m = NULL;
    UnetStatus st = be ? unet_checkpoint_open_model(path, be, &m, NULL, NULL, NULL, &err) : UNET_ERR_INVALID;
    if (st != UNET_OK)
        fprintf(stderr, "%s: %s\n", path, err.message);
    unet_model_free(m);
    unet_backend_destroy(be);
    return st == UNET_OK;
}

int main(void)
{
    gui_test_init();
    char *tmp, *ds_dir;
    UnetApplication *app;
    win = gui_test_open_window("gui-workflow", 8, 64, &tmp, &ds_dir, &app);
    GError *error = NULL;
    if (!win)
        return test_finish("gui-workflow");
    session = unet_window_get_session(win);
    GSettings *s = unet_application_get_settings(app);
    /* Run folders go under the test's temporary folder. */
    char *runs = g_build_filename(tmp, "runs", NULL);
    g_settings_set_string(s, "run-dir", runs);
    g_free(runs);
    /* A tiny model: two levels, four channels, 32 px tiles. */
    g_settings_set_int(s, "depth", 2);
    g_settings_set_int(s, "base-channels", 4);
    g_settings_set_string(s, "padding", "same");
    g_settings_set_int(s, "tile-size", 32);
    g_settings_set_int(s, "epochs", 50);
    g_settings_set_int(s, "steps-per-epoch", 6);
    g_settings_set_double(s, "val-fraction", 0.25);
    g_settings_set_int(s, "lr-test-steps", 20);
    /* GPU settings left on bf16 with graphs: a CPU run still trains, in fp32
     * (the CPU refuses bf16), and so does segmentation below. */
    g_settings_set_string(s, "device", "cpu");
    g_settings_set_string(s, "precision", "bf16");
    g_settings_set_boolean(s, "cuda-graphs", TRUE);
    unet_window_open_dataset(win, ds_dir);
    CHECK(gui_test_wait_until(dataset_ready, NULL, 20000));
    guint timer = g_timeout_add(5, tick, NULL);

    /* ---- Training from the window's Start action ---- */
    unet_window_show_page(win, "training");
    UnetTrainPage *train = UNET_TRAIN_PAGE(unet_window_get_page(win, "training"));
    gui_test_spin(50);
    CHECK_MSG(g_action_group_get_action_enabled(G_ACTION_GROUP(win), "run-start"), "Start is not offered");
    watch_start();
    if (g_getenv("UNET_TEST_VERBOSE"))
        fprintf(stderr, "start at %" G_GINT64_FORMAT "\n", g_get_monotonic_time() / 1000);
    g_action_group_activate_action(G_ACTION_GROUP(win), "run-start", NULL);
    if (g_getenv("UNET_TEST_VERBOSE"))
        fprintf(stderr, "started at %" G_GINT64_FORMAT "\n", g_get_monotonic_time() / 1000);
    CHECK(unet_session_is_running(session));
    CHECK(gui_test_wait_until(steps_seen, train, 60000));
    g_action_group_activate_action(G_ACTION_GROUP(win), "run-stop", NULL);
    CHECK(gui_test_wait_until(run_over, NULL, 30000));
    gui_test_spin(50);
    check_stall("training");
    shoot("workflow-training");
    const char *run = unet_train_page_get_run_dir(train);
    CHECK(run != NULL);
    char *run1 = g_strdup(run); /* the page's string goes with the next run */
    char *csv = g_build_filename(run, "metrics.csv", NULL);
    int rows = count_rows(csv, "step,");
    guint64 steps = unet_train_page_get_step_events(train);
    UnetPlot *loss = unet_train_page_get_loss_plot(train);
    CHECK_MSG(unet_plot_get_n_points(loss, UNET_TRAIN_SERIES_STEP_LOSS) == steps &&
                  unet_plot_get_n_points(loss, UNET_TRAIN_SERIES_STEP_SMOOTHED) == steps &&
                  unet_plot_get_n_points(unet_train_page_get_lr_plot(train), 0) == steps,
              "plot points %zu, step events %" G_GUINT64_FORMAT,
              unet_plot_get_n_points(loss, UNET_TRAIN_SERIES_STEP_LOSS), steps);
    CHECK_MSG(rows == (int)steps, "metrics.csv has %d step rows, %" G_GUINT64_FORMAT " step events", rows, steps);
    char *best = g_build_filename(run, "best.safetensors", NULL);
    char *last = g_build_filename(run, "last.safetensors", NULL);
    CHECK(loadable(best) && loadable(last));
    char *ckpt = g_settings_get_string(s, "segment-checkpoint");
    CHECK_MSG(!strcmp(ckpt, best), "segment checkpoint %s", ckpt);
    g_free(ckpt);
    CHECK(g_action_group_get_action_enabled(G_ACTION_GROUP(win), "run-start"));

    /* config.json holds how it ran: the CPU in fp32, no CUDA graphs. */
    {
        char *cfg_path = g_build_filename(run, "config.json", NULL);
        char *text = NULL;
        CHECK(g_file_get_contents(cfg_path, &text, NULL, NULL));
        char *prec = json_value_after(text, "execution", "precision");
        CHECK_MSG(prec && !strcmp(prec, "\"fp32\""), "execution.precision in config.json: %s", prec ? prec : "(none)");
        g_free(prec);
        UnetTrainConfig *rc = g_new0(UnetTrainConfig, 1);
        unet_train_config_default(rc);
        UnetError lerr = { 0 };
        CHECK_MSG(unet_train_config_load_run(rc, run, &lerr) == UNET_OK, "%s", lerr.message);
        CHECK_MSG(!strcmp(rc->device, "cpu") && rc->precision == UNET_PRECISION_FP32 && !rc->cuda_graphs,
                  "run config: device %s precision %s graphs %d", rc->device, unet_precision_name(rc->precision),
                  rc->cuda_graphs);
        g_free(rc);
        g_free(text);
        g_free(cfg_path);
    }

    /* The run folder reopens with the same curves and says how it ran. */
    gsize epochs_drawn = unet_plot_get_n_points(loss, UNET_TRAIN_SERIES_VAL_LOSS);
    CHECK(unet_train_page_open_run(train, run, &error));
    CHECK(unet_plot_get_n_points(loss, UNET_TRAIN_SERIES_STEP_LOSS) == steps);
    CHECK(unet_plot_get_n_points(loss, UNET_TRAIN_SERIES_VAL_LOSS) == epochs_drawn);
    const char *status = unet_train_page_get_status(train);
    CHECK_MSG(strstr(status, "device cpu, precision fp32, CUDA graphs off"), "status after opening: %s", status);

    /* ---- Segmentation of a dataset image with the run's best model ---- */
    unet_window_show_page(win, "segment");
    UnetSegmentPage *seg = UNET_SEGMENT_PAGE(unet_window_get_page(win, "segment"));
    /* A larger image than the training tiles: several tiles to predict. */
    char *big_dir = g_build_filename(tmp, "big", NULL);
    UnetSampleDataOptions opt;
    unet_sample_data_options_default(&opt);
    UnetError err = { 0 };
    opt.count = 1;
    opt.size = 192;
    opt.seed = 7;
    CHECK(unet_sample_data_write(big_dir, &opt, NULL, NULL, &err) == UNET_OK);
    char *img_path = g_build_filename(big_dir, "images", "000.png", NULL);
    g_free(big_dir);
    watch_start();
    unet_segment_page_open_image(seg, img_path);
    CHECK(gui_test_wait_until(image_ready, seg, 10000));
    CHECK(gui_test_wait_until(segment_over, seg, 30000));
    check_stall("segmenting");
    int lw, lh;
    const gint32 *labels = unet_segment_page_get_labels(seg, &lw, &lh);
    {
        UnetBackend *be = unet_backend_open("cpu", 0, NULL, 0, &err);
        UnetModel *m = NULL;
        UnetInputSpec spec;
        UnetImage raw = { 0 }, in = { 0 };
        CHECK(be && unet_checkpoint_open_model(best, be, &m, &spec, NULL, NULL, &err) == UNET_OK);
        CHECK(unet_image_load(img_path, &raw, &err) == UNET_OK && unet_image_to_input(&raw, &spec, &in, &err) == UNET_OK);
        if (m && in.data) {
            int K = unet_model_config(m)->classes;
            float *probs = g_new(float, (gsize)K * in.width * in.height);
            gint32 *want = g_new(gint32, (gsize)in.width * in.height);
            CHECK(unet_predict(m, in.data, in.channels, in.height, in.width, NULL, probs, &err) == UNET_OK);
            unet_probs_to_labels(probs, K, in.height, in.width, (float)g_settings_get_double(s, "segment-threshold"),
                                 want);
            CHECK(lw == in.width && lh == in.height);
            int diff = 0, fg = 0;
            for (int i = 0; labels && i < lw * lh; i++) {
                diff += labels[i] != want[i];
                fg += want[i] != 0;
            }
            CHECK_MSG(labels && diff == 0, "%d pixels differ from unet_predict's labels", diff);
            printf("segmentation: %d of %d pixels foreground\n", fg, lw * lh);
            g_free(probs);
            g_free(want);
        }
        unet_image_free(&raw);
        unet_image_free(&in);
        unet_model_free(m);
        unet_backend_destroy(be);
    }
    /* Clicking an object selects it. */
    int n_obj = 0;
    const gint32 *objects = unet_segment_page_get_objects(seg, &n_obj);
    for (int i = 0; objects && i < lw * lh; i++) {
        if (objects[i] > 0) {
            CHECK(unet_segment_page_select_object(seg, i % lw, i / lw));
            CHECK(unet_segment_page_get_selected_object(seg) == objects[i]);
            break;
        }
    }
    char *mask_out = g_build_filename(tmp, "mask.png", NULL), *npy_out = g_build_filename(tmp, "p.npy", NULL);
    CHECK(unet_segment_page_export_mask(seg, mask_out, NULL) && unet_segment_page_export_probabilities(seg, npy_out, NULL));
    UnetLabels back = { 0 };
    CHECK(unet_labels_load(mask_out, 0, &back, &err) == UNET_OK && back.width == lw);
    unet_labels_free(&back);
    shoot("workflow-segment");

    /* ---- LR range test ---- */
    unet_window_show_page(win, "lrtest");
    UnetLrPage *lrp = UNET_LR_PAGE(unet_window_get_page(win, "lrtest"));
    gui_test_spin(50);
    CHECK(g_action_group_get_action_enabled(G_ACTION_GROUP(win), "run-start"));
    g_action_group_activate_action(G_ACTION_GROUP(win), "run-start", NULL);
    CHECK(gui_test_wait_until(run_over, NULL, 60000));
    gui_test_spin(50);
    gsize pts = unet_plot_get_n_points(unet_lr_page_get_plot(lrp), UNET_LR_SERIES_RAW);
    CHECK_MSG(pts >= 3 && pts <= 20, "LR test drew %zu points", pts);
    UnetLrSuggestion sg;
    unet_lr_page_get_suggestion(lrp, &sg);
    CHECK_MSG(sg.has_suggestion && unet_plot_get_n_markers(unet_lr_page_get_plot(lrp)) >= 1,
              "no suggestion marker after the range test");
    shoot("workflow-lrtest");

    /* ---- Weight map follows its slider ---- */
    unet_window_show_page(win, "augment");
    UnetAugmentPage *aug = UNET_AUGMENT_PAGE(unet_window_get_page(win, "augment"));
    aug_page = aug;
    weight_target = 1;
    CHECK(gui_test_wait_until(weights_done, aug, 20000));
    weight_target = unet_augment_page_get_weight_count(aug) + 1;
    g_settings_set_double(s, "weight-w0", 3.5);
    CHECK(gui_test_wait_until(weights_done, aug, 20000));
    gui_test_spin(50);
    /* The weights are those of the augmented mask the page shows. */
    int ww = 0, wh = 0, mw = 0, mh = 0;
    const float *shown = unet_augment_page_get_weight_map(aug, &ww, &wh);
    const gint32 *aug_mask =
        unet_image_view_get_labels(unet_augment_page_get_view(aug, UNET_AUGMENT_VIEW_AUG_MASK), &mw, &mh);
    CHECK(aug_mask && shown && ww == mw && wh == mh);
    if (aug_mask && shown) {
        UnetWeightMapConfig wc;
        unet_ui_weightmap_config_from_settings(s, &wc);
        CHECK(wc.w0 == 3.5f);
        float *want = g_new(float, (gsize)ww * wh);
        UnetWeightMapOutputs out = { .weight = want };
        CHECK(unet_weightmap_compute(&wc, aug_mask, NULL, ww, wh, &out, NULL, NULL, &err) == UNET_OK);
        int diff = 0;
        for (int i = 0; i < ww * wh; i++)
            diff += shown[i] != want[i];
        CHECK_MSG(diff == 0, "%d weight pixels differ from unet_weightmap_compute", diff);
        g_free(want);
    }
    /* The augmented sample follows the transforms' settings. */
    guint aug_before = unet_augment_page_get_augment_count(aug);
    g_settings_set_boolean(s, "aug-grid", TRUE);
    g_settings_set_double(s, "aug-grid-p", 1.0);
    CHECK(gui_test_wait_until(aug_more, GUINT_TO_POINTER(aug_before), 20000));
    int aw, ah;
    CHECK(unet_image_view_get_image_size(unet_augment_page_get_augmented_view(aug), &aw, &ah) && aw == ww);
    shoot("workflow-augment");

    /* ---- Pause and resume: no step events while paused ---- */
    unet_window_show_page(win, "training");
    gui_test_spin(50);
    step_target = unet_train_page_get_step_events(train) + 3;
    g_action_group_activate_action(G_ACTION_GROUP(win), "run-start", NULL);
    CHECK(unet_session_is_running(session));
    CHECK(gui_test_wait_until(steps_reached, train, 60000));
    char *run2 = g_strdup(unet_train_page_get_run_dir(train));
    CHECK(run2 != NULL && g_strcmp0(run2, run1) != 0);
    g_free(run1);
    g_action_group_activate_action(G_ACTION_GROUP(win), "run-pause", NULL);
    CHECK(run_state(win) == UNET_RUN_PAUSED);
    gui_test_spin(400); /* the step under way when Pause came may still report */
    guint64 paused_at = unet_train_page_get_step_events(train);
    gui_test_spin(1000);
    CHECK_MSG(unet_train_page_get_step_events(train) == paused_at, "%" G_GUINT64_FORMAT
              " step events arrived while paused", unet_train_page_get_step_events(train) - paused_at);
    CHECK(unet_session_is_running(session));
    g_action_group_activate_action(G_ACTION_GROUP(win), "run-pause", NULL);
    CHECK(run_state(win) == UNET_RUN_RUNNING);
    step_target = paused_at + 2;
    CHECK_MSG(gui_test_wait_until(steps_reached, train, 30000), "no step events after Resume");

    /* ---- Closing the window while training asks first; Stop keeps a checkpoint ---- */
    gtk_window_close(GTK_WINDOW(win));
    gui_test_spin(100);
    GtkWidget *dialog = find_message_dialog();
    CHECK_MSG(dialog != NULL, "no confirmation dialog when closing during training");
    CHECK(unet_session_is_running(session));
    g_source_remove(timer);
    if (dialog) {
        gtk_dialog_response(GTK_DIALOG(dialog), GTK_RESPONSE_ACCEPT);
        gui_test_spin(200);
        CHECK(!unet_session_is_running(session));
        CHECK(find_message_dialog() == NULL);
        char *last2 = g_build_filename(run2, "last.safetensors", NULL);
        CHECK_MSG(loadable(last2), "no loadable %s after Stop and Close", last2);
        g_free(last2);
    } else {
        gtk_window_destroy(GTK_WINDOW(win));
    }
    g_free(run2);
    g_free(mask_out);
    g_free(npy_out);
    g_free(img_path);
    g_free(csv);
    g_free(best);
    g_free(last);
    gui_test_spin(100);
    g_object_unref(app);
    g_free(tmp);
    g_free(ds_dir);
    return test_finish("gui-workflow");
}
