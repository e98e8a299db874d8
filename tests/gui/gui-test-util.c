/* gui-test-util.c - main-loop, rendering and pixel helpers of the GUI tests. */
#include "gui-test-util.h"

#include <glib/gstdio.h>

#include "sample-data.h"

void gui_test_init(void)
{
    if (!g_getenv("DISPLAY") && !g_getenv("WAYLAND_DISPLAY"))
        test_skip("no display (run under xvfb-run)");
    if (!gtk_init_check())
        test_skip("GTK could not open the display");
    /* Screenshots of finished states, not of cross-fades. */
    g_object_set(gtk_settings_get_default(), "gtk-enable-animations", FALSE, NULL);
}

UnetWindow *gui_test_open_window(const char *test, int count, int size, char **tmp_out,
                                 char **sample_dir_out, UnetApplication **app_out)
{
    char *tmp = test_make_temp_dir(test);
    CHECK(tmp != NULL);
    char *ds_dir = g_build_filename(tmp ? tmp : "/nonexistent", "sample", NULL);
    *tmp_out = tmp;
    *sample_dir_out = ds_dir;
    *app_out = NULL;
    if (!tmp)
        return NULL;
    UnetSampleDataOptions opt;
    unet_sample_data_options_default(&opt);
    opt.count = count;
    opt.size = size;
    UnetError err = { 0 };
    CHECK_MSG(unet_sample_data_write(ds_dir, &opt, NULL, NULL, &err) == UNET_OK, "%s", err.message);

    GError *error = NULL;
    UnetApplication *app = unet_application_new(G_APPLICATION_NON_UNIQUE, &error);
    if (!app)
        test_skip(error->message);
    *app_out = app;
    CHECK(g_application_register(G_APPLICATION(app), NULL, &error));
    g_application_activate(G_APPLICATION(app));
    UnetWindow *win = UNET_WINDOW(gtk_application_get_active_window(GTK_APPLICATION(app)));
    CHECK(win != NULL);
    return win;
}

static gboolean count_frame(GtkWidget *w, GdkFrameClock *clock, gpointer data)
{
    (*(int *)data)++;
    return G_SOURCE_CONTINUE;
}

static gboolean timeout_flag(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

gboolean gui_test_wait_frames(GtkWidget *widget, int frames, int timeout_ms)
{
    int count = 0;
    gboolean timed_out = FALSE;
    guint tick = gtk_widget_add_tick_callback(widget, count_frame, &count, NULL);
    guint to = g_timeout_add(timeout_ms, timeout_flag, &timed_out);
    while (count < frames && !timed_out) {
        gtk_widget_queue_draw(widget);
        g_main_context_iteration(NULL, TRUE);
    }
    gtk_widget_remove_tick_callback(widget, tick);
    if (!timed_out)
        g_source_remove(to);
    return count >= frames;
}

gboolean gui_test_wait_until(gboolean (*cond)(gpointer), gpointer data, int timeout_ms)
{
    gboolean timed_out = FALSE;
    guint to = g_timeout_add(timeout_ms, timeout_flag, &timed_out);
    gboolean ok;
    while (!(ok = cond(data)) && !timed_out)
        g_main_context_iteration(NULL, TRUE);
    if (!timed_out)
        g_source_remove(to);
    return ok;
}

void gui_test_spin(int ms)
{
    gboolean done = FALSE;
    g_timeout_add(ms, timeout_flag, &done);
    while (!done)
        g_main_context_iteration(NULL, TRUE);
}

GdkTexture *gui_test_render(GtkWidget *widget)
{
    int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
    if (w <= 0 || h <= 0)
        return NULL;
    GdkPaintable *p = gtk_widget_paintable_new(widget);
    GtkSnapshot *snap = gtk_snapshot_new();
    gdk_paintable_snapshot(p, snap, w, h);
    GskRenderNode *node = gtk_snapshot_free_to_node(snap);
    g_object_unref(p);
    if (!node)
        return NULL;
    GskRenderer *r = gtk_native_get_renderer(gtk_widget_get_native(widget));
    GdkTexture *tex = gsk_renderer_render_texture(r, node, &GRAPHENE_RECT_INIT(0, 0, w, h));
    gsk_render_node_unref(node);
    return tex;
}

char *gui_test_save(GdkTexture *texture, const char *name)
{
    const char *root = g_getenv("UNET_BUILD_ROOT");
    char *dir = g_build_filename(root ? root : g_get_tmp_dir(), "tests", "gui", "screenshots", NULL);
    g_mkdir_with_parents(dir, 0755);
    char *file = g_strdup_printf("%s.png", name);
    char *path = g_build_filename(dir, file, NULL);
    g_free(file);
    g_free(dir);
    if (!gdk_texture_save_to_png(texture, path))
        fprintf(stderr, "could not save %s\n", path);
    return path;
}

guint8 *gui_test_pixels(GdkTexture *texture, int *width, int *height)
{
    int w = gdk_texture_get_width(texture), h = gdk_texture_get_height(texture);
    guint8 *argb = g_malloc((gsize)w * h * 4);
    gdk_texture_download(texture, argb, (gsize)w * 4);
    /* Cairo ARGB32: native-endian premultiplied 0xAARRGGBB. */
    guint8 *rgba = g_malloc((gsize)w * h * 4);
    for (gsize i = 0; i < (gsize)w * h; i++) {
        guint32 v = ((guint32 *)argb)[i];
        guint8 a = v >> 24;
        guint8 r = (v >> 16) & 0xff, g = (v >> 8) & 0xff, b = v & 0xff;
        if (a > 0 && a < 255) {
            r = (guint8)MIN(255, r * 255 / a);
            g = (guint8)MIN(255, g * 255 / a);
            b = (guint8)MIN(255, b * 255 / a);
        }
        rgba[i * 4] = r;
        rgba[i * 4 + 1] = g;
        rgba[i * 4 + 2] = b;
        rgba[i * 4 + 3] = a;
    }
    g_free(argb);
    *width = w;
    *height = h;
    return rgba;
}

int gui_test_distinct_colors(const guint8 *px, int w, int x0, int y0, int x1, int y1)
{
    GHashTable *seen = g_hash_table_new(NULL, NULL);
    for (int y = y0; y < y1; y++) {
        for (int x = x0; x < x1; x++) {
            const guint8 *p = gui_test_px(px, w, x, y);
            guint key = ((guint)(p[0] >> 2) << 12) | ((guint)(p[1] >> 2) << 6) | (p[2] >> 2);
            g_hash_table_add(seen, GUINT_TO_POINTER(key + 1));
        }
    }
    int n = (int)g_hash_table_size(seen);
    g_hash_table_unref(seen);
    return n;
}

gboolean gui_test_bounds(GtkWidget *widget, GtkWidget *ancestor, int *x, int *y, int *w, int *h)
{
    graphene_rect_t r;
    if (!gtk_widget_compute_bounds(widget, ancestor, &r))
        return FALSE;
    *x = (int)r.origin.x;
    *y = (int)r.origin.y;
    *w = (int)r.size.width;
    *h = (int)r.size.height;
    return TRUE;
}
