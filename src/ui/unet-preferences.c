/* unet-preferences.c - UnetPreferences: settings-bound preferences window. */
#include "unet-preferences.h"

#include <glib/gi18n.h>

#include "unet-form.h"
#include "unet-sample-job.h"
#include "unet-ui-util.h"

struct _UnetPreferences {
    GtkWindow parent_instance;
    GtkGrid *form_grid;
    GSettings *settings;
    GtkWidget *color_button;
    GtkLabel *sample_label;
};

G_DEFINE_FINAL_TYPE(UnetPreferences, unet_preferences, GTK_TYPE_WINDOW)

static const char *const colormap_ids[] = { "viridis", "magma", "grey", NULL };
static const char *const mask_mode_ids[] = { "auto", "binary", "multiclass", "instance", NULL };

G_GNUC_BEGIN_IGNORE_DEPRECATIONS

static void on_color_set(GtkColorButton *button, UnetPreferences *prefs)
{
    GdkRGBA c;
    gtk_color_chooser_get_rgba(GTK_COLOR_CHOOSER(button), &c);
    char *s = g_strdup_printf("#%02x%02x%02x", (int)(c.red * 255 + 0.5), (int)(c.green * 255 + 0.5),
                              (int)(c.blue * 255 + 0.5));
    g_settings_set_string(prefs->settings, "overlay-color", s);
    g_free(s);
}

static GtkWidget *color_button_new(GSettings *settings)
{
    GdkRGBA c;
    unet_ui_settings_overlay_color(settings, &c);
    GtkWidget *b = gtk_color_button_new_with_rgba(&c);
    gtk_color_chooser_set_use_alpha(GTK_COLOR_CHOOSER(b), FALSE);
    return b;
}

G_GNUC_END_IGNORE_DEPRECATIONS

static void show_sample_dir(UnetPreferences *prefs)
{
    char *dir = g_settings_get_string(prefs->settings, "sample-data-dir");
    if (!*dir) {
        g_free(dir);
        dir = unet_sample_job_default_dir();
    }
    gtk_label_set_text(prefs->sample_label, dir);
    gtk_widget_set_tooltip_text(GTK_WIDGET(prefs->sample_label), dir);
    g_free(dir);
}

static void sample_dir_chosen(GFile *file, gpointer data)
{
    UnetPreferences *prefs = data;
    char *path = g_file_get_path(file);
    if (path)
        g_settings_set_string(prefs->settings, "sample-data-dir", path);
    g_free(path);
    show_sample_dir(prefs);
}

static void on_choose_sample_dir(GtkButton *b, UnetPreferences *prefs)
{
    unet_ui_choose_folder(GTK_WIDGET(prefs), _("Folder for the Sample Dataset"), sample_dir_chosen,
                          g_object_ref(prefs), g_object_unref);
}

static void build(UnetPreferences *prefs)
{
    UnetForm f;
    unet_form_init(&f, prefs->form_grid, prefs->settings);
    unet_form_heading(&f, _("Appearance"));
    unet_form_switch(&f, _("_Dark style"), "dark-style", _("Use the dark variant of the theme"));
    const char *cmap_labels[] = { _("Viridis"), _("Magma"), _("Grey"), NULL };
    unet_form_dropdown(&f, _("_Colour map"), "colormap", colormap_ids, cmap_labels,
                       _("Colour map of probability and weight maps"));
    prefs->color_button = color_button_new(prefs->settings);
    gtk_widget_set_tooltip_text(prefs->color_button, _("Colour of the foreground when masks are drawn over images"));
    gtk_widget_set_halign(prefs->color_button, GTK_ALIGN_START);
    g_signal_connect(prefs->color_button, "color-set", G_CALLBACK(on_color_set), prefs);
    unet_form_row(&f, _("Mask _overlay colour"), prefs->color_button);
    gtk_widget_set_hexpand(prefs->color_button, FALSE);
    unet_form_spin(&f, _("Overlay o_pacity"), "overlay-opacity", 0, 1, 0.05, 2,
                   _("Opacity of masks drawn over images"));

    unet_form_heading(&f, _("Datasets"));
    const char *mode_labels[] = { _("Automatic"), _("Binary"), _("Class ids"), _("Object ids"), NULL };
    unet_form_dropdown(&f, _("_Mask values"), "mask-mode", mask_mode_ids, mode_labels,
                       _("How mask values are read; takes effect when a dataset is opened"));
    unet_form_spin(&f, _("Number of c_lasses"), "classes", 0, 256, 1, 0,
                   _("Class count of masks holding class ids; 0 when not given"));
    unet_form_spin(&f, _("_Validation share"), "val-fraction", 0, 0.9, 0.05, 2,
                   _("Share of the pairs held out for validation"));
    unet_form_spin(&f, _("Split _seed"), "split-seed", 0, 1e9, 1, 0,
                   _("Seed of the shuffle that chooses the validation pairs"));

    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *l = gtk_label_new(NULL);
    gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_START);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_widget_set_hexpand(l, TRUE);
    prefs->sample_label = GTK_LABEL(l);
    GtkWidget *b = gtk_button_new_with_mnemonic(_("C_hoose…"));
    gtk_widget_set_tooltip_text(b, _("Choose where the sample dataset is written"));
    g_signal_connect(b, "clicked", G_CALLBACK(on_choose_sample_dir), prefs);
    gtk_box_append(GTK_BOX(box), l);
    gtk_box_append(GTK_BOX(box), b);
    unet_form_row_full(&f, _("Sample dataset _folder"), box, b);
    show_sample_dir(prefs);
}

static void unet_preferences_dispose(GObject *object)
{
    UnetPreferences *prefs = UNET_PREFERENCES(object);
    g_clear_object(&prefs->settings);
    G_OBJECT_CLASS(unet_preferences_parent_class)->dispose(object);
}

static void unet_preferences_class_init(UnetPreferencesClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_preferences_dispose;
    gtk_widget_class_set_template_from_resource(widget_class, "/org/unetworkbench/Workbench/ui/unet-preferences.ui");
    gtk_widget_class_bind_template_child(widget_class, UnetPreferences, form_grid);
    gtk_widget_class_add_binding_action(widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void unet_preferences_init(UnetPreferences *prefs)
{
    gtk_widget_init_template(GTK_WIDGET(prefs));
}

UnetPreferences *unet_preferences_new(GtkWindow *parent, GSettings *settings)
{
    UnetPreferences *prefs = g_object_new(UNET_TYPE_PREFERENCES, "transient-for", parent, NULL);
    prefs->settings = g_object_ref(settings);
    build(prefs);
    return prefs;
}
