/* unet-ui-util.c - file choosers, chart export and read-out helpers. */
#include "unet-ui-util.h"

#include <glib/gi18n.h>

G_GNUC_BEGIN_IGNORE_DEPRECATIONS

typedef struct Chooser {
    UnetFileChosen callback;
    gpointer data;
    GDestroyNotify destroy;
} Chooser;

static void on_response(GtkNativeDialog *dialog, int response, gpointer data)
{
    Chooser *c = data;
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        if (file) {
            c->callback(file, c->data);
            g_object_unref(file);
        }
    }
    if (c->destroy)
        c->destroy(c->data);
    g_free(c);
    gtk_native_dialog_destroy(dialog);
    g_object_unref(dialog);
}

static void run_chooser(GtkWidget *parent, const char *title, GtkFileChooserAction action, const char *accept,
                        GtkFileFilter *filter, const char *name, UnetFileChosen callback, gpointer data,
                        GDestroyNotify destroy)
{
    GtkRoot *root = parent ? gtk_widget_get_root(parent) : NULL;
    GtkFileChooserNative *d =
        gtk_file_chooser_native_new(title, GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL, action, accept, NULL);
    gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(d), TRUE);
    if (filter)
        gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d), filter);
    if (filter)
        g_object_unref(filter);
    if (name)
        gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(d), name);
    Chooser *c = g_new(Chooser, 1);
    c->callback = callback;
    c->data = data;
    c->destroy = destroy;
    g_signal_connect(d, "response", G_CALLBACK(on_response), c);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

G_GNUC_END_IGNORE_DEPRECATIONS

void unet_ui_choose_folder(GtkWidget *parent, const char *title, UnetFileChosen callback, gpointer user_data,
                           GDestroyNotify destroy)
{
    run_chooser(parent, title, GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Open"), NULL, NULL, callback, user_data,
                destroy);
}

void unet_ui_choose_open_file(GtkWidget *parent, const char *title, GtkFileFilter *filter, UnetFileChosen callback,
                              gpointer user_data, GDestroyNotify destroy)
{
    run_chooser(parent, title, GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), filter, NULL, callback, user_data, destroy);
}

void unet_ui_choose_save_file(GtkWidget *parent, const char *title, const char *suggested_name,
                              UnetFileChosen callback, gpointer user_data, GDestroyNotify destroy)
{
    run_chooser(parent, title, GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), NULL, suggested_name, callback, user_data,
                destroy);
}

GtkFileFilter *unet_ui_image_filter(void)
{
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, _("Images (PNG, TIFF, NumPy)"));
    gtk_file_filter_add_suffix(f, "png");
    gtk_file_filter_add_suffix(f, "tif");
    gtk_file_filter_add_suffix(f, "tiff");
    gtk_file_filter_add_suffix(f, "npy");
    return f;
}

typedef struct ExportJob {
    UnetPlot *plot;
    gboolean svg;
    UnetSession *session;
} ExportJob;

static void export_chosen(GFile *file, gpointer data)
{
    ExportJob *job = data;
    char *path = g_file_get_path(file);
    GError *error = NULL;
    gboolean ok = path && (job->svg ? unet_plot_export_svg(job->plot, path, 1200, 720, &error)
                                    : unet_plot_export_png(job->plot, path, 1200, 720, &error));
    if (!ok && job->session)
        unet_session_message(job->session, TRUE, "%s",
                             error ? error->message : _("Charts can only be saved to local files."));
    else if (ok && job->session)
        unet_session_message(job->session, FALSE, _("Chart saved to %s"), path);
    g_clear_error(&error);
    g_free(path);
}

static void export_job_free(gpointer data)
{
    ExportJob *job = data;
    g_clear_object(&job->plot);
    g_clear_object(&job->session);
    g_free(job);
}

void unet_ui_export_plot(GtkWidget *parent, UnetPlot *plot, gboolean svg, const char *basename,
                         UnetSession *session)
{
    ExportJob *job = g_new0(ExportJob, 1);
    job->plot = g_object_ref(plot);
    job->svg = svg;
    job->session = session ? g_object_ref(session) : NULL;
    char *name = g_strdup_printf("%s.%s", basename, svg ? "svg" : "png");
    unet_ui_choose_save_file(parent, svg ? _("Export Chart as SVG") : _("Export Chart as PNG"), name,
                             export_chosen, job, export_job_free);
    g_free(name);
}

void unet_ui_show_pixel(UnetImageView *view, GtkLabel *label, int x, int y)
{
    char *v = unet_image_view_describe_pixel(view, x, y);
    if (v) {
        /* Translators: pixel position and its value under the pointer. */
        char *t = g_strdup_printf(_("x %d, y %d: %s"), x, y, v);
        gtk_label_set_text(label, t);
        g_free(t);
    } else {
        gtk_label_set_text(label, "");
    }
    g_free(v);
}

UnetColormap unet_ui_settings_colormap(GSettings *settings)
{
    char *id = g_settings_get_string(settings, "colormap");
    UnetColormap map = UNET_COLORMAP_VIRIDIS;
    unet_colormap_parse(id, &map);
    g_free(id);
    return map;
}

void unet_ui_settings_overlay_color(GSettings *settings, GdkRGBA *color)
{
    char *s = g_settings_get_string(settings, "overlay-color");
    if (!gdk_rgba_parse(color, s))
        *color = (GdkRGBA){ 1, 0, 0.667, 1 };
    g_free(s);
}
