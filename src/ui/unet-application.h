/* unet-application.h - UnetApplication: the GtkApplication of the workbench:
 * settings, style, accelerators, app actions (preferences, about, quit) and
 * opening folders and images given on the command line. */
#ifndef UNET_APPLICATION_H
#define UNET_APPLICATION_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define UNET_APP_ID "org.unetworkbench.Workbench"

#define UNET_TYPE_APPLICATION (unet_application_get_type())
G_DECLARE_FINAL_TYPE(UnetApplication, unet_application, UNET, APPLICATION, GtkApplication)

/* flags: G_APPLICATION_DEFAULT_FLAGS for the desktop, NON_UNIQUE for tests.
 * Returns NULL (with a message in error) when the settings schema is not
 * installed and not in the build tree. */
UnetApplication *unet_application_new(GApplicationFlags flags, GError **error);

GSettings *unet_application_get_settings(UnetApplication *app);

/* The settings of the workbench: the installed schema, else the one
 * compiled in the build tree (running uninstalled); NULL with error when
 * neither is found. */
GSettings *unet_application_create_settings(GError **error);

G_END_DECLS

#endif
