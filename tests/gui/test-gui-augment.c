/* test-gui-augment.c - the Augmentation page's panel on a generated sample
 * set: the augmented image and mask views hold what unet_augment_sample and
 * unet_augment_apply give for the seed shown, the histogram's markers sit at
 * the augmented image's mean and +-2 sd, the weight map is
 * unet_weightmap_compute of the augmented mask, "New Sample" changes seed and
 * image, the displacement grid draws, and the tiling view shows the Training
 * form's model (and follows it). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gui-test-util.h"
#include "model.h"
#include "sample-data.h"
#include "unet-application.h"
#include "unet-augment-page.h"
#include "unet-run-config.h"
#include "unet-window.h"
#include "weightmap.h"

static UnetWindow *win;
static UnetSession *session;
static UnetAugmentPage *page;

static gboolean dataset_ready(gpointer data)
{
    UnetDatasetStore *store = unet_session_get_store(session);
    return !unet_dataset_store_get_loading(store) && g_list_model_get_n_items(G_LIST_MODEL(store)) == 4 &&
           unet_session_get_loaded_pair(session);
}

static guint count_target;
static gboolean aug_done(gpointer data)
{
    return unet_augment_page_get_augment_count(page) >= count_target;
}

/* Waits for the next sample after a change (a setting change is debounced). */
static gboolean next_sample(void)
{
    count_target = unet_augment_page_get_augment_count(page) + 1;
    gboolean ok = gui_test_wait_until(aug_done, NULL, 20000);
    gui_test_spin(150); /* a newer job may still follow from a second change */
    count_target = unet_augment_page_get_augment_count(page);
    return ok;
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

/* Distinct colours a view shows in the window now. */
static int view_colors(GtkWidget *w)
{
    gui_test_wait_frames(GTK_WIDGET(win), 2, 2000);
    GdkTexture *tex = gui_test_render(GTK_WIDGET(win));
    if (!tex)
        return 0;
    int pw, ph, x, y, bw, bh, n = 0;
    guint8 *px = gui_test_pixels(tex, &pw, &ph);
    if (gui_test_bounds(w, GTK_WIDGET(win), &x, &y, &bw, &bh) && bw > 8 && bh > 8)
        n = gui_test_distinct_colors(px, pw, MAX(x + 2, 0), MAX(y + 2, 0), MIN(x + bw - 2, pw), MIN(y + bh - 2, ph));
    g_free(px);
    g_object_unref(tex);
    return n;
}

/* The panel against the engine, for the seed and settings in force. */
static void check_panel(GSettings *s, const char *when)
{
    const UnetLoadedPair *p = unet_session_get_loaded_pair(session);
    CHECK(p != NULL);
    if (!p)
        return;
    guint64 seed = unet_augment_page_get_seed(page);
    CHECK_MSG(seed == g_settings_get_uint64(s, "aug-seed"), "%s: page shows seed %" G_GUINT64_FORMAT
              ", the setting is %" G_GUINT64_FORMAT, when, seed, g_settings_get_uint64(s, "aug-seed"));
    UnetAugmentConfig cfg;
    unet_ui_augment_config_from_settings(s, &cfg);
    UnetAugmentRecord rec;
    UnetError err = { 0 };
    const UnetImage *im = &p->pair.image;
    CHECK(unet_augment_sample(&rec, &cfg, seed, im->width, im->height, &err) == UNET_OK);
    gsize n = (gsize)rec.out_w * rec.out_h;
    float *want = g_new(float, n * im->channels);
    gint32 *want_lab = g_new(gint32, n);
    CHECK(unet_augment_apply(&rec, im->data, im->channels, p->pair.labels.data, NULL, want, want_lab, NULL, NULL,
                             &err) == UNET_OK);

    int w, h, c;
    const float *shown = unet_image_view_get_values(unet_augment_page_get_view(page, UNET_AUGMENT_VIEW_AUG_IMAGE),
                                                    &w, &h, &c);
    CHECK_MSG(shown && w == rec.out_w && h == rec.out_h && c == (im->channels >= 3 ? 3 : 1),
              "%s: augmented view %dx%dx%d, engine %dx%d", when, w, h, c, rec.out_w, rec.out_h);
    int diff = 0;
    for (gsize i = 0; shown && i < n * c; i++)
        diff += shown[i] != want[i];
    CHECK_MSG(shown && diff == 0, "%s: %d augmented image values differ from unet_augment_apply", when, diff);
    const gint32 *lab = unet_image_view_get_labels(unet_augment_page_get_view(page, UNET_AUGMENT_VIEW_AUG_MASK), &w,
                                                   &h);
    const gint32 *ov = unet_image_view_get_overlay(unet_augment_page_get_view(page, UNET_AUGMENT_VIEW_AUG_OVERLAY));
    int ldiff = 0, odiff = 0;
    for (gsize i = 0; lab && ov && i < n; i++) {
        ldiff += lab[i] != want_lab[i];
        odiff += ov[i] != want_lab[i];
    }
    CHECK_MSG(lab && ov && ldiff == 0 && odiff == 0, "%s: augmented mask differs in %d, overlay in %d pixels", when,
              ldiff, odiff);

    /* Histogram markers: mean, mean - 2 sd, mean + 2 sd of all values. */
    double sum = 0, sum2 = 0;
    gsize nv = n * im->channels;
    for (gsize i = 0; i < nv; i++) {
        sum += want[i];
        sum2 += (double)want[i] * want[i];
    }
    double mean = sum / nv, sd = sqrt(MAX(0.0, sum2 / nv - mean * mean));
    UnetPlot *hist = unet_augment_page_get_histogram(page);
    double mx = NAN, lo = NAN, hi = NAN;
    CHECK(unet_plot_get_n_markers(hist) == 3 && unet_plot_get_marker(hist, 0, &mx, NULL) &&
          unet_plot_get_marker(hist, 1, &lo, NULL) && unet_plot_get_marker(hist, 2, &hi, NULL));
    CHECK_MSG(fabs(mx - mean) < 1e-9, "%s: mean marker at %.9g, the augmented image's mean is %.9g", when, mx, mean);
    CHECK_MSG(fabs(lo - (mean - 2 * sd)) < 1e-9 && fabs(hi - (mean + 2 * sd)) < 1e-9,
              "%s: sd markers %.6g %.6g, want %.6g %.6g", when, lo, hi, mean - 2 * sd, mean + 2 * sd);
    CHECK(unet_plot_get_n_points(hist, 0) == 4 * 64);
    CHECK(unet_plot_get_n_points(unet_augment_page_get_class_histogram(page), 0) >= 4 * 2);

    /* Weight map of the augmented mask. */
    UnetWeightMapConfig wc;
    unet_ui_weightmap_config_from_settings(s, &wc);
    float *want_w = g_new(float, n);
    UnetWeightMapOutputs out = { .weight = want_w };
    CHECK(unet_weightmap_compute(&wc, want_lab, NULL, rec.out_w, rec.out_h, &out, NULL, NULL, &err) == UNET_OK);
    int ww, wh;
    const float *wm = unet_augment_page_get_weight_map(page, &ww, &wh);
    const float *wv = unet_image_view_get_values(unet_augment_page_get_weight_view(page), NULL, NULL, NULL);
    int wdiff = 0;
    for (gsize i = 0; wm && wv && i < n; i++)
        wdiff += (wm[i] != want_w[i]) + (wv[i] != want_w[i]);
    CHECK_MSG(wm && wv && ww == rec.out_w && wh == rec.out_h && wdiff == 0,
              "%s: %d weight values differ from unet_weightmap_compute of the augmented mask", when, wdiff);
    g_free(want);
    g_free(want_lab);
    g_free(want_w);
}

static void check_tiling(GSettings *s, const char *when)
{
    const UnetLoadedPair *p = unet_session_get_loaded_pair(session);
    UnetModelConfig mc;
    GError *error = NULL;
    CHECK(p && unet_ui_model_config_from_settings(s, p->pair.image.channels, &mc, &error));
    int in = 0, out = 0;
    CHECK(unet_model_valid_input_size(&mc, g_settings_get_int(s, "tile-size"), &in, &out) == 0);
    UnetTileGrid g, want;
    UnetImageView *tv = unet_augment_page_get_tiling_view(page, &g);
    CHECK_MSG(tv && g.input_size == in && g.output_size == out, "%s: tiling view for %d -> %d, model %d -> %d", when,
              tv ? g.input_size : -1, tv ? g.output_size : -1, in, out);
    if (!tv || !p)
        return;
    UnetError err = { 0 };
    UnetImage rgb = { 0 };
    CHECK(unet_tile_grid_init(&want, p->pair.image.width, p->pair.image.height, in, out, &err) == UNET_OK &&
          unet_tiling_draw(&want, &p->pair.image, 0, 1024, &rgb, &err) == UNET_OK);
    int w, h, c;
    const float *v = unet_image_view_get_values(tv, &w, &h, &c);
    CHECK_MSG(v && w == rgb.width && h == rgb.height && c == 3 &&
                  !memcmp(v, rgb.data, sizeof(float) * 3 * (gsize)w * h),
              "%s: the tiling view is not unet_tiling_draw's picture", when);
    unet_image_free(&rgb);
}

int main(void)
{
    gui_test_init();
    char *tmp, *ds_dir;
    UnetApplication *app;
    win = gui_test_open_window("gui-augment", 4, 96, &tmp, &ds_dir, &app);
    if (!win)
        return test_finish("gui-augment");
    gtk_window_set_default_size(GTK_WINDOW(win), 1280, 800);
    session = unet_window_get_session(win);
    GSettings *s = unet_application_get_settings(app);
    g_settings_set_int(s, "depth", 2);
    g_settings_set_string(s, "padding", "valid");
    g_settings_set_int(s, "tile-size", 60);
    unet_window_open_dataset(win, ds_dir);
    CHECK(gui_test_wait_until(dataset_ready, NULL, 20000));
    unet_window_show_page(win, "augment");
    page = UNET_AUGMENT_PAGE(unet_window_get_page(win, "augment"));
    count_target = 1;
    CHECK(gui_test_wait_until(aug_done, NULL, 20000));

    /* Every transform on, always: the sample differs from the image. */
    const char *kinds[] = { "flip", "ssr", "noise", "mult", "elastic", "grid", "bc" };
    for (int i = 0; i < 7; i++) {
        char key[32];
        g_snprintf(key, sizeof key, "aug-%s", kinds[i]);
        g_settings_set_boolean(s, key, TRUE);
        g_snprintf(key, sizeof key, "aug-%s-p", kinds[i]);
        g_settings_set_double(s, key, 1.0);
    }
    g_settings_set_uint64(s, "aug-seed", 12345);
    g_settings_set_double(s, "weight-w0", 7.0);
    CHECK(next_sample());
    check_panel(s, "all transforms");
    check_tiling(s, "depth 2");

    /* The displacement grid. */
    g_settings_set_boolean(s, "show-displacement", TRUE);
    gui_test_spin(50);
    CHECK(unet_augment_page_get_displacement_segments(page) > 20);
    GtkWidget *aug_view = GTK_WIDGET(unet_augment_page_get_view(page, UNET_AUGMENT_VIEW_AUG_IMAGE));
    GtkWidget *grid_area = gtk_widget_get_next_sibling(aug_view);
    CHECK(grid_area && gtk_widget_get_visible(grid_area));
    CHECK(view_colors(GTK_WIDGET(unet_augment_page_get_view(page, UNET_AUGMENT_VIEW_AUG_MASK))) >= 2);
    CHECK(view_colors(GTK_WIDGET(unet_augment_page_get_weight_view(page))) >= 3);
    CHECK(view_colors(GTK_WIDGET(unet_augment_page_get_histogram(page))) >= 3);
    shoot("augment-panel");

    /* "New Sample": another seed, another image. */
    int w, h, c;
    const float *v = unet_image_view_get_values(UNET_IMAGE_VIEW(aug_view), &w, &h, &c);
    CHECK(v != NULL);
    if (!v)
        return test_finish("gui-augment");
    float *before = g_memdup2(v, sizeof(float) * (gsize)w * h * c);
    guint64 seed0 = unet_augment_page_get_seed(page);
    g_signal_emit_by_name(unet_augment_page_get_new_sample_button(page), "clicked");
    CHECK(next_sample());
    CHECK_MSG(unet_augment_page_get_seed(page) != seed0, "New Sample kept seed %" G_GUINT64_FORMAT, seed0);
    int w2, h2, c2, diff = 0;
    v = unet_image_view_get_values(UNET_IMAGE_VIEW(aug_view), &w2, &h2, &c2);
    for (int i = 0; v && w2 == w && h2 == h && c2 == c && i < w * h * c; i++)
        diff += v[i] != before[i];
    CHECK_MSG(diff > w * h / 2, "New Sample changed only %d values", diff);
    g_free(before);
    check_panel(s, "new sample");

    /* The tiling view follows the Training form's model. */
    g_settings_set_int(s, "depth", 3);
    g_settings_set_int(s, "tile-size", 92);
    CHECK(next_sample());
    check_tiling(s, "depth 3");
    UnetTileGrid g;
    GtkWidget *tv = GTK_WIDGET(unet_augment_page_get_tiling_view(page, &g));
    CHECK(tv != NULL);
    if (tv) {
        GtkWidget *sw = gtk_widget_get_ancestor(tv, GTK_TYPE_SCROLLED_WINDOW);
        GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
        gui_test_wait_frames(GTK_WIDGET(win), 2, 2000);
        gtk_adjustment_set_value(adj, gtk_adjustment_get_upper(adj));
        CHECK(view_colors(tv) >= 6);
        shoot("augment-tiling");
    }

    gtk_window_destroy(GTK_WINDOW(win));
    gui_test_spin(100);
    g_object_unref(app);
    g_free(tmp);
    g_free(ds_dir);
    return test_finish("gui-augment");
}
