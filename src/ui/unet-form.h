/* unet-form.h - builds the settings forms of the pages from short calls:
 * each row is a mnemonic label and a control bound to a GSettings key, so
 * every control has an accessible name and its value survives restarts. */
#ifndef UNET_FORM_H
#define UNET_FORM_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef struct UnetForm {
    GtkGrid *grid;
    GSettings *settings; /* may be NULL: controls stay unbound */
    int row;
} UnetForm;

void unet_form_init(UnetForm *form, GtkGrid *grid, GSettings *settings);
void unet_form_heading(UnetForm *form, const char *text);

/* Number entry; digits after the point. */
GtkWidget *unet_form_spin(UnetForm *form, const char *label, const char *key, double lower, double upper,
                          double step, int digits, const char *tooltip);
/* Positive number on a logarithmic scale (learning rates): the arrows
 * multiply or divide by about 1.26, the text shows e.g. "0.001" or "1e-06". */
GtkWidget *unet_form_log_spin(UnetForm *form, const char *label, const char *key, double lower, double upper,
                              const char *tooltip);
GtkWidget *unet_form_switch(UnetForm *form, const char *label, const char *key, const char *tooltip);
/* Choice of ids[i] (the key's values) shown as labels[i]; both NULL-terminated. */
GtkWidget *unet_form_dropdown(UnetForm *form, const char *label, const char *key, const char *const *ids,
                              const char *const *labels, const char *tooltip);
/* Any other control in the value column, labelled. */
void unet_form_row(UnetForm *form, const char *label, GtkWidget *control);
/* Same with the label's mnemonic going to `target` inside `control`. */
void unet_form_row_full(UnetForm *form, const char *label, GtkWidget *control, GtkWidget *target);

/* Value of a log spin. */
double unet_form_log_spin_get_value(GtkWidget *spin);
void unet_form_log_spin_set_value(GtkWidget *spin, double value);

/* The id currently chosen in a form dropdown. */
const char *unet_form_dropdown_get_id(GtkWidget *dropdown);

G_END_DECLS

#endif
