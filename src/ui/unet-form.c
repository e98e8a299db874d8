/* unet-form.c - settings-bound form rows. */
#include "unet-form.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void unet_form_init(UnetForm *form, GtkGrid *grid, GSettings *settings)
{
    form->grid = grid;
    form->settings = settings;
    form->row = 0;
    gtk_grid_set_row_spacing(grid, 8);
    gtk_grid_set_column_spacing(grid, 12);
}

void unet_form_heading(UnetForm *form, const char *text)
{
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_widget_add_css_class(l, "heading");
    if (form->row > 0)
        gtk_widget_set_margin_top(l, 12);
    gtk_grid_attach(form->grid, l, 0, form->row++, 2, 1);
}

void unet_form_row(UnetForm *form, const char *label, GtkWidget *control)
{
    unet_form_row_full(form, label, control, control);
}

void unet_form_row_full(UnetForm *form, const char *label, GtkWidget *control, GtkWidget *target)
{
    GtkWidget *l = gtk_label_new_with_mnemonic(label);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(l), 22);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), target);
    gtk_widget_set_hexpand(control, TRUE);
    gtk_widget_set_valign(l, GTK_ALIGN_CENTER);
    gtk_grid_attach(form->grid, l, 0, form->row, 1, 1);
    gtk_grid_attach(form->grid, control, 1, form->row, 1, 1);
    form->row++;
}

static void set_tooltip(GtkWidget *w, const char *tooltip)
{
    if (tooltip)
        gtk_widget_set_tooltip_text(w, tooltip);
}

GtkWidget *unet_form_spin(UnetForm *form, const char *label, const char *key, double lower, double upper,
                          double step, int digits, const char *tooltip)
{
    GtkWidget *spin = gtk_spin_button_new_with_range(lower, upper, step);
    gtk_spin_button_set_digits(GTK_SPIN_BUTTON(spin), digits);
    gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(spin), TRUE);
    set_tooltip(spin, tooltip);
    if (form->settings && key)
        g_settings_bind(form->settings, key, spin, "value", G_SETTINGS_BIND_DEFAULT);
    unet_form_row(form, label, spin);
    return spin;
}

/* ---- Log spin: the adjustment holds log10 of the value ---- */

static gboolean log_output(GtkSpinButton *spin, gpointer data)
{
    double v = pow(10, gtk_adjustment_get_value(gtk_spin_button_get_adjustment(spin)));
    char buf[32];
    g_snprintf(buf, sizeof buf, "%.3g", v);
    if (strcmp(buf, gtk_editable_get_text(GTK_EDITABLE(spin))))
        gtk_editable_set_text(GTK_EDITABLE(spin), buf);
    return TRUE;
}

static int log_input(GtkSpinButton *spin, double *new_value, gpointer data)
{
    const char *text = gtk_editable_get_text(GTK_EDITABLE(spin));
    char *end;
    double v = g_ascii_strtod(text, &end);
    if (end == text || !(v > 0) || !isfinite(v)) {
        /* Try the locale's decimal separator too. */
        v = strtod(text, &end);
        if (end == text || !(v > 0) || !isfinite(v))
            return GTK_INPUT_ERROR;
    }
    *new_value = log10(v);
    return TRUE;
}

static gboolean log_get_mapping(GValue *value, GVariant *variant, gpointer data)
{
    double v = g_variant_get_double(variant);
    if (!(v > 0))
        return FALSE;
    g_value_set_double(value, log10(v));
    return TRUE;
}

static GVariant *log_set_mapping(const GValue *value, const GVariantType *type, gpointer data)
{
    /* Three significant digits, so 1e-3 stays 0.001 and not 0.00099999. */
    char buf[32];
    g_snprintf(buf, sizeof buf, "%.3g", pow(10, g_value_get_double(value)));
    return g_variant_new_double(g_ascii_strtod(buf, NULL));
}

GtkWidget *unet_form_log_spin(UnetForm *form, const char *label, const char *key, double lower, double upper,
                              const char *tooltip)
{
    GtkWidget *spin = gtk_spin_button_new_with_range(log10(lower), log10(upper), 0.1);
    gtk_spin_button_set_digits(GTK_SPIN_BUTTON(spin), 3);
    gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(spin), FALSE);
    g_signal_connect(spin, "output", G_CALLBACK(log_output), NULL);
    g_signal_connect(spin, "input", G_CALLBACK(log_input), NULL);
    g_object_set_data(G_OBJECT(spin), "unet-log-spin", GINT_TO_POINTER(1));
    set_tooltip(spin, tooltip);
    if (form->settings && key)
        g_settings_bind_with_mapping(form->settings, key, spin, "value", G_SETTINGS_BIND_DEFAULT, log_get_mapping,
                                     log_set_mapping, NULL, NULL);
    unet_form_row(form, label, spin);
    return spin;
}

double unet_form_log_spin_get_value(GtkWidget *spin)
{
    return pow(10, gtk_spin_button_get_value(GTK_SPIN_BUTTON(spin)));
}

void unet_form_log_spin_set_value(GtkWidget *spin, double value)
{
    if (value > 0)
        gtk_spin_button_set_value(GTK_SPIN_BUTTON(spin), log10(value));
}

GtkWidget *unet_form_switch(UnetForm *form, const char *label, const char *key, const char *tooltip)
{
    GtkWidget *sw = gtk_switch_new();
    gtk_widget_set_halign(sw, GTK_ALIGN_START);
    set_tooltip(sw, tooltip);
    if (form->settings && key)
        g_settings_bind(form->settings, key, sw, "active", G_SETTINGS_BIND_DEFAULT);
    unet_form_row(form, label, sw);
    gtk_widget_set_hexpand(sw, FALSE);
    return sw;
}

/* ---- Drop-downs bound to string keys ---- */

static gboolean dd_get_mapping(GValue *value, GVariant *variant, gpointer data)
{
    const char *const *ids = data;
    const char *s = g_variant_get_string(variant, NULL);
    for (guint i = 0; ids[i]; i++) {
        if (!strcmp(ids[i], s)) {
            g_value_set_uint(value, i);
            return TRUE;
        }
    }
    return FALSE;
}

static GVariant *dd_set_mapping(const GValue *value, const GVariantType *type, gpointer data)
{
    const char *const *ids = data;
    guint i = g_value_get_uint(value);
    if (i >= g_strv_length((char **)ids))
        return NULL;
    return g_variant_new_string(ids[i]);
}

GtkWidget *unet_form_dropdown(UnetForm *form, const char *label, const char *key, const char *const *ids,
                              const char *const *labels, const char *tooltip)
{
    GtkWidget *dd = gtk_drop_down_new_from_strings(labels);
    g_object_set_data(G_OBJECT(dd), "unet-ids", (gpointer)ids);
    set_tooltip(dd, tooltip);
    if (form->settings && key)
        g_settings_bind_with_mapping(form->settings, key, dd, "selected", G_SETTINGS_BIND_DEFAULT, dd_get_mapping,
                                     dd_set_mapping, (gpointer)ids, NULL);
    unet_form_row(form, label, dd);
    return dd;
}

const char *unet_form_dropdown_get_id(GtkWidget *dropdown)
{
    const char *const *ids = g_object_get_data(G_OBJECT(dropdown), "unet-ids");
    guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(dropdown));
    if (!ids || i >= g_strv_length((char **)ids))
        return NULL;
    return ids[i];
}
