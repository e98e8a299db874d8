/* unet-data-page.c - UnetDataPage: one image/mask pair up close. */
#include "unet-data-page.h"

#include <glib/gi18n.h>
#include <math.h>

#include "unet-page.h"
#include "unet-ui-util.h"

struct _UnetDataPage {
    GtkWidget parent_instance;
    GtkStack *stack;
    GtkLabel *pair_title, *image_value, *mask_value, *overlay_value, *problems_label;
    GtkScale *opacity_scale;
    GtkAdjustment *opacity_adjustment;
    GtkButton *zoom_in_button, *zoom_out_button, *zoom_fit_button;
    UnetImageView *image_view, *mask_view, *overlay_view;
    GtkGrid *info_grid;

    UnetSession *session;
    UnetViewTransform *transform;
    int shown;
};

static void page_iface_init(UnetPageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(UnetDataPage, unet_data_page, GTK_TYPE_WIDGET,
                              G_IMPLEMENT_INTERFACE(UNET_TYPE_PAGE, page_iface_init))

static void info_row(UnetDataPage *page, int row, const char *label, const char *value)
{
    GtkWidget *l = gtk_label_new(label);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_widget_add_css_class(l, "dim-label");
    GtkWidget *v = gtk_label_new(value);
    gtk_label_set_xalign(GTK_LABEL(v), 0);
    gtk_label_set_selectable(GTK_LABEL(v), TRUE);
    gtk_label_set_ellipsize(GTK_LABEL(v), PANGO_ELLIPSIZE_MIDDLE);
    gtk_widget_set_hexpand(v, TRUE);
    gtk_grid_attach(page->info_grid, l, 0, row, 1, 1);
    gtk_grid_attach(page->info_grid, v, 1, row, 1, 1);
}

static void clear_info(UnetDataPage *page)
{
    GtkWidget *child;
    while ((child = gtk_widget_get_first_child(GTK_WIDGET(page->info_grid))))
        gtk_grid_remove(page->info_grid, child);
}

static const char *format_name(UnetImageFormat f)
{
    return unet_image_format_name(f);
}

static const char *mode_label(UnetMaskMode m)
{
    switch (m) {
    case UNET_MASK_BINARY:
        return _("binary");
    case UNET_MASK_MULTICLASS:
        return _("class ids");
    case UNET_MASK_INSTANCE:
        return _("object ids");
    default:
        return _("automatic");
    }
}

static void show_problems(UnetDataPage *page, UnetPairItem *item)
{
    const char *problems = item ? unet_pair_item_get_problems(item) : NULL;
    gtk_label_set_text(page->problems_label, problems ? problems : "");
    gtk_widget_set_visible(GTK_WIDGET(page->problems_label), problems != NULL);
}

/* The selected pair could not be read: its files and problems, no pixels. */
static void show_unreadable(UnetDataPage *page, int index)
{
    UnetPairItem *item = unet_dataset_store_get_item(unet_session_get_store(page->session), index);
    page->shown = -1;
    UnetImageView *views[] = { page->image_view, page->mask_view, page->overlay_view };
    for (int i = 0; i < 3; i++) {
        unet_image_view_clear(views[i]);
        unet_image_view_set_placeholder(views[i], _("This pair could not be read."));
    }
    gtk_label_set_text(page->pair_title, item ? unet_pair_item_get_name(item) : "");
    if (item) {
        info_row(page, 0, _("Image file"), unet_pair_item_get_image_path(item));
        info_row(page, 1, _("Mask file"), unet_pair_item_get_mask_path(item));
    }
    show_problems(page, item);
    gtk_stack_set_visible_child_name(page->stack, "pair");
}

static void show_pair(UnetDataPage *page, const UnetLoadedPair *p)
{
    clear_info(page);
    if (!p) {
        int selected = page->session ? unet_session_get_selected(page->session) : -1;
        if (selected >= 0) {
            show_unreadable(page, selected);
            return;
        }
        page->shown = -1;
        unet_image_view_clear(page->image_view);
        unet_image_view_clear(page->mask_view);
        unet_image_view_clear(page->overlay_view);
        gtk_stack_set_visible_child_name(page->stack, "empty");
        return;
    }
    page->shown = p->index;
    UnetDatasetStore *store = unet_session_get_store(page->session);
    UnetPairItem *item = unet_dataset_store_get_item(store, p->index);
    const UnetImage *raw = &p->raw;
    const UnetLabels *lab = &p->pair.labels;

    unet_image_view_set_image(page->image_view, raw->data, raw->width, raw->height, raw->channels, 0, 0);
    unet_image_view_set_labels(page->mask_view, lab->data, lab->width, lab->height);
    unet_image_view_set_image(page->overlay_view, raw->data, raw->width, raw->height, raw->channels, 0, 0);
    if (lab->width == raw->width && lab->height == raw->height)
        unet_image_view_set_overlay(page->overlay_view, lab->data, lab->width, lab->height);

    gtk_label_set_text(page->pair_title, item ? unet_pair_item_get_name(item) : "");
    int row = 0;
    if (item) {
        info_row(page, row++, _("Image file"), unet_pair_item_get_image_path(item));
        info_row(page, row++, _("Mask file"), unet_pair_item_get_mask_path(item));
    }
    /* Size and storage. */
    char *size = g_strdup_printf(g_dngettext(NULL, "%d × %d pixels, %d channel, %s, %d-bit",
                                             "%d × %d pixels, %d channels, %s, %d-bit", raw->channels),
                                 raw->width, raw->height, raw->channels, format_name(raw->format), raw->bit_depth);
    info_row(page, row++, _("Size"), size);
    g_free(size);
    double lo = INFINITY, hi = -INFINITY;
    gsize n = (gsize)raw->width * raw->height * raw->channels;
    for (gsize i = 0; i < n; i++) {
        lo = MIN(lo, raw->data[i]);
        hi = MAX(hi, raw->data[i]);
    }
    char *range = g_strdup_printf(_("%g to %g"), lo, hi);
    info_row(page, row++, _("Values"), range);
    g_free(range);
    /* Mask: mode applied, classes present, foreground share. */
    gsize npx = (gsize)lab->width * lab->height, fg = 0;
    int maxc = 0;
    for (gsize i = 0; i < npx; i++) {
        fg += lab->data[i] > 0;
        maxc = MAX(maxc, lab->data[i]);
    }
    char *mask = g_strdup_printf(_("%s, classes 0 to %d, foreground %.1f %%"), mode_label(p->pair.mode), maxc,
                                 npx ? 100.0 * fg / npx : 0.0);
    info_row(page, row++, _("Mask"), mask);
    g_free(mask);
    if (item)
        info_row(page, row++, _("Split"), unet_pair_item_get_validation(item) ? _("Validation") : _("Training"));

    show_problems(page, item);
    gtk_stack_set_visible_child_name(page->stack, "pair");
}

static void on_pair_loaded(UnetSession *s, gpointer pair, UnetDataPage *page)
{
    show_pair(page, pair);
}

static void on_pixel_hovered(UnetImageView *view, int x, int y, UnetDataPage *page)
{
    unet_ui_show_pixel(page->image_view, page->image_value, x, y);
    unet_ui_show_pixel(page->mask_view, page->mask_value, x, y);
    unet_ui_show_pixel(page->overlay_view, page->overlay_value, x, y);
}

static void on_opacity(GtkAdjustment *adj, UnetDataPage *page)
{
    unet_image_view_set_overlay_opacity(page->overlay_view, gtk_adjustment_get_value(adj));
}

static void on_zoom_in(GtkButton *b, UnetDataPage *page)
{
    unet_image_view_zoom(page->image_view, 1.25);
}

static void on_zoom_out(GtkButton *b, UnetDataPage *page)
{
    unet_image_view_zoom(page->image_view, 0.8);
}

static void on_zoom_fit(GtkButton *b, UnetDataPage *page)
{
    unet_image_view_zoom_fit(page->image_view);
}

static void apply_preferences(UnetDataPage *page)
{
    GSettings *s = unet_session_get_settings(page->session);
    char *color = g_settings_get_string(s, "overlay-color");
    GdkRGBA rgba;
    if (gdk_rgba_parse(&rgba, color))
        unet_image_view_set_overlay_color(page->overlay_view, &rgba);
    g_free(color);
}

static void on_settings_changed(GSettings *s, const char *key, UnetDataPage *page)
{
    apply_preferences(page);
}

static void set_session(UnetPage *p, UnetSession *session)
{
    UnetDataPage *page = UNET_DATA_PAGE(p);
    g_return_if_fail(page->session == NULL);
    page->session = g_object_ref(session);
    g_signal_connect_object(session, "pair-loaded", G_CALLBACK(on_pair_loaded), page, 0);
    GSettings *s = unet_session_get_settings(session);
    g_settings_bind(s, "overlay-opacity", page->opacity_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
    g_signal_connect_object(s, "changed::overlay-color", G_CALLBACK(on_settings_changed), page, 0);
    apply_preferences(page);
    show_pair(page, unet_session_get_loaded_pair(session));
}

static void page_iface_init(UnetPageInterface *iface)
{
    iface->set_session = set_session;
}

UnetImageView *unet_data_page_get_image_view(UnetDataPage *page)
{
    return page->image_view;
}

UnetImageView *unet_data_page_get_mask_view(UnetDataPage *page)
{
    return page->mask_view;
}

UnetImageView *unet_data_page_get_overlay_view(UnetDataPage *page)
{
    return page->overlay_view;
}

int unet_data_page_get_shown_pair(UnetDataPage *page)
{
    return page->shown;
}

static void unet_data_page_dispose(GObject *object)
{
    UnetDataPage *page = UNET_DATA_PAGE(object);
    gtk_widget_dispose_template(GTK_WIDGET(page), UNET_TYPE_DATA_PAGE);
    g_clear_object(&page->session);
    g_clear_object(&page->transform);
    G_OBJECT_CLASS(unet_data_page_parent_class)->dispose(object);
}

static void unet_data_page_class_init(UnetDataPageClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_data_page_dispose;
    g_type_ensure(UNET_TYPE_IMAGE_VIEW);
    gtk_widget_class_set_template_from_resource(widget_class, "/org/unetworkbench/Workbench/ui/unet-data-page.ui");
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, stack);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, pair_title);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, image_value);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, mask_value);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, overlay_value);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, problems_label);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, opacity_scale);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, opacity_adjustment);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, zoom_in_button);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, zoom_out_button);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, zoom_fit_button);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, image_view);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, mask_view);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, overlay_view);
    gtk_widget_class_bind_template_child(widget_class, UnetDataPage, info_grid);
    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void unet_data_page_init(UnetDataPage *page)
{
    gtk_widget_init_template(GTK_WIDGET(page));
    page->shown = -1;
    page->transform = unet_view_transform_new();
    UnetImageView *views[] = { page->image_view, page->mask_view, page->overlay_view };
    for (int i = 0; i < 3; i++) {
        unet_image_view_set_transform(views[i], page->transform);
        g_signal_connect(views[i], "pixel-hovered", G_CALLBACK(on_pixel_hovered), page);
    }
    unet_image_view_set_overlay_opacity(page->overlay_view, gtk_adjustment_get_value(page->opacity_adjustment));
    g_signal_connect(page->opacity_adjustment, "value-changed", G_CALLBACK(on_opacity), page);
    g_signal_connect(page->zoom_in_button, "clicked", G_CALLBACK(on_zoom_in), page);
    g_signal_connect(page->zoom_out_button, "clicked", G_CALLBACK(on_zoom_out), page);
    g_signal_connect(page->zoom_fit_button, "clicked", G_CALLBACK(on_zoom_fit), page);
}
