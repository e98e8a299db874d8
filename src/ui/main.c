/* main.c - unet-workbench: starts the GTK application. */
#include <glib/gi18n.h>
#include <locale.h>

#include "unet-application.h"
#include "unet-ui-config.h"

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    /* UNET_LOCALEDIR lets an uninstalled build find its translations. */
    const char *localedir = g_getenv("UNET_LOCALEDIR");
    bindtextdomain(GETTEXT_PACKAGE, localedir && *localedir ? localedir : UNET_UI_LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    GError *error = NULL;
    UnetApplication *app = unet_application_new(G_APPLICATION_DEFAULT_FLAGS, &error);
    if (!app) {
        g_printerr("unet-workbench: %s\n", error->message);
        g_error_free(error);
        return 1;
    }
    int status = g_application_run(G_APPLICATION(app), argc, argv);
    g_object_unref(app);
    return status;
}
