/* unet-application.c - UnetApplication: settings, style, accelerators, app actions. */
#include "unet-application.h"

#include <glib/gi18n.h>

#include "unet-preferences.h"
#include "unet-ui-config.h"
#include "unet-window.h"

struct _UnetApplication {
    GtkApplication parent_instance;
    GSettings *settings;
};

G_DEFINE_FINAL_TYPE(UnetApplication, unet_application, GTK_TYPE_APPLICATION)

GSettings *unet_application_create_settings(GError **error)
{
    GSettingsSchemaSource *def = g_settings_schema_source_get_default();
    GSettingsSchema *schema = def ? g_settings_schema_source_lookup(def, UNET_APP_ID, TRUE) : NULL;
    if (!schema) {
        GSettingsSchemaSource *build =
            g_settings_schema_source_new_from_directory(UNET_UI_BUILD_SCHEMA_DIR, def, FALSE, NULL);
        if (build) {
            schema = g_settings_schema_source_lookup(build, UNET_APP_ID, FALSE);
            g_settings_schema_source_unref(build);
        }
    }
    if (!schema) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    _("The settings schema %s is not installed. Install the workbench (meson install) or run it "
                      "with GSETTINGS_SCHEMA_DIR set to the folder holding its compiled schema."),
                    UNET_APP_ID);
        return NULL;
    }
    GSettings *s = g_settings_new_full(schema, NULL, NULL);
    g_settings_schema_unref(schema);
    return s;
}

static void apply_style(UnetApplication *app)
{
    GtkSettings *gs = gtk_settings_get_default();
    if (gs)
        g_object_set(gs, "gtk-application-prefer-dark-theme", g_settings_get_boolean(app->settings, "dark-style"),
                     NULL);
}

static void on_dark_style(GSettings *s, const char *key, UnetApplication *app)
{
    apply_style(app);
}

static UnetWindow *active_window(UnetApplication *app)
{
    GtkWindow *w = gtk_application_get_active_window(GTK_APPLICATION(app));
    return UNET_IS_WINDOW(w) ? UNET_WINDOW(w) : NULL;
}

static UnetWindow *ensure_window(UnetApplication *app)
{
    UnetWindow *win = active_window(app);
    if (!win) {
        win = unet_window_new(GTK_APPLICATION(app), app->settings);
        /* Reopen the last dataset when it is still there. */
        char *last = g_settings_get_string(app->settings, "last-dataset");
        if (*last && g_file_test(last, G_FILE_TEST_IS_DIR))
            unet_window_open_dataset(win, last);
        g_free(last);
    }
    return win;
}

static void unet_application_activate(GApplication *gapp)
{
    gtk_window_present(GTK_WINDOW(ensure_window(UNET_APPLICATION(gapp))));
}

static void unet_application_open(GApplication *gapp, GFile **files, int n_files, const char *hint)
{
    UnetApplication *app = UNET_APPLICATION(gapp);
    UnetWindow *win = active_window(app);
    if (!win)
        win = unet_window_new(GTK_APPLICATION(app), app->settings);
    for (int i = 0; i < n_files; i++)
        unet_window_open_file(win, files[i]);
    gtk_window_present(GTK_WINDOW(win));
}

static void action_quit(GSimpleAction *a, GVariant *p, gpointer data)
{
    GApplication *app = data;
    /* Close each window so its size and state are saved. */
    GList *copy = g_list_copy(gtk_application_get_windows(GTK_APPLICATION(app)));
    for (GList *it = copy; it; it = it->next)
        gtk_window_close(it->data);
    g_list_free(copy);
    g_application_quit(app);
}

static void action_preferences(GSimpleAction *a, GVariant *p, gpointer data)
{
    UnetApplication *app = data;
    GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(app));
    UnetPreferences *prefs = unet_preferences_new(parent, app->settings);
    gtk_window_present(GTK_WINDOW(prefs));
}

static void action_about(GSimpleAction *a, GVariant *p, gpointer data)
{
    UnetApplication *app = data;
    GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(app));
    const char *authors[] = { _("The U-Net Workbench contributors"), NULL };
    gtk_show_about_dialog(parent, "program-name", _("U-Net Workbench"), "logo-icon-name", UNET_APP_ID,
                          "version", UNET_UI_VERSION, "comments",
                          _("Train U-Net models to segment biomedical images, and apply them."), "license-type",
                          GTK_LICENSE_MIT_X11, "authors", authors, "translator-credits",
                          _("translator-credits"), "copyright", "© 2026 The U-Net Workbench contributors",
                          "modal", TRUE, NULL);
}

static const GActionEntry app_actions[] = {
    { "quit", action_quit, NULL, NULL, NULL, { 0 } },
    { "preferences", action_preferences, NULL, NULL, NULL, { 0 } },
    { "about", action_about, NULL, NULL, NULL, { 0 } },
};

static void set_accels(GtkApplication *app)
{
    static const struct {
        const char *action;
        const char *accels[3];
    } accels[] = {
        { "app.quit", { "<Control>q", NULL } },
        { "app.preferences", { "<Control>comma", NULL } },
        { "window.close", { "<Control>w", NULL } },
        { "win.open-dataset", { "<Control>o", NULL } },
        { "win.open-image", { "<Control><Shift>o", NULL } },
        { "win.show-sidebar", { "F9", NULL } },
        { "win.page::data", { "<Alt>1", NULL } },
        { "win.page::augment", { "<Alt>2", NULL } },
        { "win.page::training", { "<Alt>3", NULL } },
        { "win.page::lrtest", { "<Alt>4", NULL } },
        { "win.page::segment", { "<Alt>5", NULL } },
        { "win.next-pair", { "<Alt>Down", NULL } },
        { "win.previous-pair", { "<Alt>Up", NULL } },
        { "win.run-start", { "F5", NULL } },
        { "win.run-pause", { "F6", NULL } },
        { "win.run-stop", { "<Shift>F5", NULL } },
    };
    for (guint i = 0; i < G_N_ELEMENTS(accels); i++)
        gtk_application_set_accels_for_action(app, accels[i].action, accels[i].accels);
}

static void unet_application_startup(GApplication *gapp)
{
    G_APPLICATION_CLASS(unet_application_parent_class)->startup(gapp);
    UnetApplication *app = UNET_APPLICATION(gapp);
    g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
    set_accels(GTK_APPLICATION(app));
    GtkCssProvider *css = gtk_css_provider_new();
    gtk_css_provider_load_from_resource(css, "/org/unetworkbench/Workbench/style.css");
    gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css),
                                               GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    g_object_unref(css);
    g_signal_connect_object(app->settings, "changed::dark-style", G_CALLBACK(on_dark_style), app, 0);
    apply_style(app);
    gtk_window_set_default_icon_name(UNET_APP_ID);
}

static void unet_application_dispose(GObject *object)
{
    UnetApplication *app = UNET_APPLICATION(object);
    g_clear_object(&app->settings);
    G_OBJECT_CLASS(unet_application_parent_class)->dispose(object);
}

static void unet_application_class_init(UnetApplicationClass *klass)
{
    G_OBJECT_CLASS(klass)->dispose = unet_application_dispose;
    GApplicationClass *app_class = G_APPLICATION_CLASS(klass);
    app_class->startup = unet_application_startup;
    app_class->activate = unet_application_activate;
    app_class->open = unet_application_open;
}

static void unet_application_init(UnetApplication *app)
{
}

UnetApplication *unet_application_new(GApplicationFlags flags, GError **error)
{
    GSettings *settings = unet_application_create_settings(error);
    if (!settings)
        return NULL;
    UnetApplication *app = g_object_new(UNET_TYPE_APPLICATION, "application-id", UNET_APP_ID, "flags",
                                        flags | G_APPLICATION_HANDLES_OPEN, "resource-base-path",
                                        "/org/unetworkbench/Workbench", NULL);
    app->settings = settings;
    return app;
}

GSettings *unet_application_get_settings(UnetApplication *app)
{
    return app->settings;
}
