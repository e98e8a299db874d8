/* unet-preferences.h - UnetPreferences: the preferences window (style, colour
 * map, overlay colour and opacity, dataset reading and splitting, sample
 * dataset folder), every control bound to the settings. */
#ifndef UNET_PREFERENCES_H
#define UNET_PREFERENCES_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define UNET_TYPE_PREFERENCES (unet_preferences_get_type())
G_DECLARE_FINAL_TYPE(UnetPreferences, unet_preferences, UNET, PREFERENCES, GtkWindow)

UnetPreferences *unet_preferences_new(GtkWindow *parent, GSettings *settings);

G_END_DECLS

#endif
