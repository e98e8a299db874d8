/* unet-segment-page.c - UnetSegmentPage: image, probability and segmentation views. */
#include "unet-segment-page.h"

#include <glib/gi18n.h>
#include <math.h>

#include "unet-form.h"
#include "unet-ui-util.h"

struct _UnetSegmentPage {
    GtkWidget parent_instance;
    GtkWidget *box;
    GtkGrid *form_grid;
    GtkLabel *segment_info, *status_label;
    GtkProgressBar *progress;
    UnetImageView *image_view, *probability_view, *result_view;
    GtkLabel *image_value, *probability_value, *result_value;

    GtkLabel *image_label, *model_label;
    UnetSession *session;
    UnetViewTransform *transform;
    UnetImage image;
    char *image_path;
    GCancellable *cancel;
    UnetRunState state;
    gboolean can_start;
};

static void page_iface_init(UnetPageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(UnetSegmentPage, unet_segment_page, GTK_TYPE_WIDGET,
                              G_IMPLEMENT_INTERFACE(UNET_TYPE_PAGE, page_iface_init))

/* ---- Loading an image ---- */

static void image_free(gpointer data)
{
    UnetImage *img = data;
    unet_image_free(img);
    g_free(img);
}

static void load_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    const char *path = data;
    UnetImage *img = g_new0(UnetImage, 1);
    UnetError err = { 0 };
    if (unet_image_load(path, img, &err) != UNET_OK) {
        g_free(img);
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
        return;
    }
    g_task_return_pointer(task, img, image_free);
}

static void show_image_info(UnetSegmentPage *page)
{
    if (!page->image.data) {
        gtk_label_set_text(page->segment_info, "");
        return;
    }
    const UnetImage *im = &page->image;
    char *t = g_strdup_printf(g_dngettext(NULL, "%d × %d pixels, %d channel, %s, %d-bit",
                                          "%d × %d pixels, %d channels, %s, %d-bit", im->channels),
                              im->width, im->height, im->channels, unet_image_format_name(im->format),
                              im->bit_depth);
    gtk_label_set_text(page->segment_info, t);
    g_free(t);
}

static void image_loaded(GObject *source, GAsyncResult *result, gpointer data)
{
    GError *error = NULL;
    UnetImage *img = g_task_propagate_pointer(G_TASK(result), &error);
    if (!img) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            UnetSegmentPage *page = data;
            if (page->session)
                unet_session_message(page->session, TRUE, _("Could not open the image: %s"), error->message);
        }
        g_error_free(error);
        return;
    }
    UnetSegmentPage *page = data;
    const char *path = g_task_get_task_data(G_TASK(result));
    unet_image_free(&page->image);
    page->image = *img;
    g_free(img);
    g_free(page->image_path);
    page->image_path = g_strdup(path);
    char *base = g_path_get_basename(path);
    gtk_label_set_text(page->image_label, base);
    gtk_widget_set_tooltip_text(GTK_WIDGET(page->image_label), path);
    g_free(base);
    const UnetImage *im = &page->image;
    unet_image_view_set_image(page->image_view, im->data, im->width, im->height, im->channels, 0, 0);
    unet_image_view_set_image(page->result_view, im->data, im->width, im->height, im->channels, 0, 0);
    unet_image_view_clear(page->probability_view);
    unet_view_transform_set_fit(page->transform);
    show_image_info(page);
    if (page->session)
        g_settings_set_string(unet_session_get_settings(page->session), "last-image", path);
}

void unet_segment_page_open_image(UnetSegmentPage *page, const char *path)
{
    g_return_if_fail(UNET_IS_SEGMENT_PAGE(page));
    g_return_if_fail(path != NULL);
    if (page->cancel)
        g_cancellable_cancel(page->cancel);
    g_clear_object(&page->cancel);
    page->cancel = g_cancellable_new();
    GTask *task = g_task_new(NULL, page->cancel, image_loaded, page);
    g_task_set_task_data(task, g_strdup(path), g_free);
    g_task_run_in_thread(task, load_thread);
    g_object_unref(task);
}

const UnetImage *unet_segment_page_get_image(UnetSegmentPage *page)
{
    return page->image.data ? &page->image : NULL;
}

const char *unet_segment_page_get_image_path(UnetSegmentPage *page)
{
    return page->image_path;
}

void unet_segment_page_set_result(UnetSegmentPage *page, const float *probability, const gint32 *labels, int width,
                                  int height)
{
    g_return_if_fail(UNET_IS_SEGMENT_PAGE(page));
    if (probability)
        unet_image_view_set_map(page->probability_view, probability, width, height, 0, 1, _("P(foreground)"));
    if (labels)
        unet_image_view_set_overlay(page->result_view, labels, width, height);
}

/* ---- Run controls ---- */

static void get_run_info(UnetPage *p, UnetRunInfo *info)
{
    UnetSegmentPage *page = UNET_SEGMENT_PAGE(p);
    info->state = page->state;
    info->can_start = page->can_start && page->state == UNET_RUN_IDLE;
    info->start_label = _("Segment Image (F5)");
}

void unet_segment_page_set_run_state(UnetSegmentPage *page, UnetRunState state, gboolean can_start)
{
    g_return_if_fail(UNET_IS_SEGMENT_PAGE(page));
    page->can_start = can_start;
    page->state = state == UNET_RUN_NONE ? UNET_RUN_IDLE : state;
    unet_page_run_changed(UNET_PAGE(page));
}

/* ---- Form ---- */

static void show_checkpoint(UnetSegmentPage *page)
{
    char *path = g_settings_get_string(unet_session_get_settings(page->session), "segment-checkpoint");
    if (*path) {
        char *base = g_path_get_basename(path);
        gtk_label_set_text(page->model_label, base);
        g_free(base);
    } else {
        gtk_label_set_text(page->model_label, _("No model chosen"));
    }
    gtk_widget_set_tooltip_text(GTK_WIDGET(page->model_label), *path ? path : NULL);
    g_free(path);
}

static void checkpoint_chosen(GFile *file, gpointer data)
{
    UnetSegmentPage *page = data;
    char *path = g_file_get_path(file);
    if (path && page->session)
        g_settings_set_string(unet_session_get_settings(page->session), "segment-checkpoint", path);
    g_free(path);
}

static void on_choose_model(GtkButton *b, UnetSegmentPage *page)
{
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, _("Checkpoints (safetensors)"));
    gtk_file_filter_add_suffix(f, "safetensors");
    unet_ui_choose_open_file(GTK_WIDGET(page), _("Choose a Trained Model"), f, checkpoint_chosen,
                             g_object_ref(page), g_object_unref);
}

static GtkWidget *file_row(UnetForm *f, const char *label, GtkLabel **value, const char *button_label,
                           const char *action, GCallback clicked, gpointer data, const char *tooltip)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *l = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_MIDDLE);
    gtk_label_set_width_chars(GTK_LABEL(l), 16);
    gtk_widget_set_hexpand(l, TRUE);
    gtk_box_append(GTK_BOX(box), l);
    GtkWidget *b = gtk_button_new_with_mnemonic(button_label);
    gtk_widget_set_tooltip_text(b, tooltip);
    if (action)
        gtk_actionable_set_action_name(GTK_ACTIONABLE(b), action);
    if (clicked)
        g_signal_connect(b, "clicked", clicked, data);
    gtk_box_append(GTK_BOX(box), b);
    unet_form_row_full(f, label, box, b);
    *value = GTK_LABEL(l);
    return b;
}

static void build_form(UnetSegmentPage *page, GSettings *s)
{
    UnetForm f;
    unet_form_init(&f, page->form_grid, s);
    unet_form_heading(&f, _("Input"));
    file_row(&f, _("_Image"), &page->image_label, _("_Open…"), "win.open-image", NULL, NULL,
             _("Open an image to segment (Ctrl+Shift+O)"));
    gtk_label_set_text(page->image_label, _("No image open"));
    file_row(&f, _("_Model"), &page->model_label, _("_Choose…"), NULL, G_CALLBACK(on_choose_model), page,
             _("Choose the checkpoint of a trained model"));
    show_checkpoint(page);
    unet_form_heading(&f, _("Segmentation"));
    unet_form_spin(&f, _("_Tile size (px)"), "tile-size", 16, 4096, 4, 0,
                   _("Side of the network input tile; large images are segmented tile by tile with mirrored "
                     "borders"));
    unet_form_spin(&f, _("_Threshold"), "segment-threshold", 0, 1, 0.05, 2,
                   _("Probability above which a pixel counts as foreground"));
    unet_form_spin(&f, _("Overlay o_pacity"), "overlay-opacity", 0, 1, 0.05, 2,
                   _("Opacity of the segmentation drawn over the image"));
}

static void apply_preferences(UnetSegmentPage *page)
{
    GSettings *s = unet_session_get_settings(page->session);
    unet_image_view_set_colormap(page->probability_view, unet_ui_settings_colormap(s));
    GdkRGBA c;
    unet_ui_settings_overlay_color(s, &c);
    unet_image_view_set_overlay_color(page->result_view, &c);
    unet_image_view_set_overlay_opacity(page->result_view, g_settings_get_double(s, "overlay-opacity"));
}

static void on_settings_changed(GSettings *s, const char *key, UnetSegmentPage *page)
{
    if (!g_strcmp0(key, "segment-checkpoint"))
        show_checkpoint(page);
    else
        apply_preferences(page);
}

static void set_session(UnetPage *p, UnetSession *session)
{
    UnetSegmentPage *page = UNET_SEGMENT_PAGE(p);
    g_return_if_fail(page->session == NULL);
    page->session = g_object_ref(session);
    GSettings *s = unet_session_get_settings(session);
    build_form(page, s);
    apply_preferences(page);
    g_signal_connect_object(s, "changed", G_CALLBACK(on_settings_changed), page, 0);
}

static void page_iface_init(UnetPageInterface *iface)
{
    iface->set_session = set_session;
    iface->get_run_info = get_run_info;
}

UnetImageView *unet_segment_page_get_image_view(UnetSegmentPage *page)
{
    return page->image_view;
}

UnetImageView *unet_segment_page_get_probability_view(UnetSegmentPage *page)
{
    return page->probability_view;
}

UnetImageView *unet_segment_page_get_result_view(UnetSegmentPage *page)
{
    return page->result_view;
}

static void on_pixel_hovered(UnetImageView *view, int x, int y, UnetSegmentPage *page)
{
    unet_ui_show_pixel(page->image_view, page->image_value, x, y);
    unet_ui_show_pixel(page->probability_view, page->probability_value, x, y);
    unet_ui_show_pixel(page->result_view, page->result_value, x, y);
}

static void unet_segment_page_dispose(GObject *object)
{
    UnetSegmentPage *page = UNET_SEGMENT_PAGE(object);
    if (page->cancel)
        g_cancellable_cancel(page->cancel);
    g_clear_object(&page->cancel);
    gtk_widget_dispose_template(GTK_WIDGET(page), UNET_TYPE_SEGMENT_PAGE);
    g_clear_object(&page->session);
    g_clear_object(&page->transform);
    G_OBJECT_CLASS(unet_segment_page_parent_class)->dispose(object);
}

static void unet_segment_page_finalize(GObject *object)
{
    UnetSegmentPage *page = UNET_SEGMENT_PAGE(object);
    unet_image_free(&page->image);
    g_free(page->image_path);
    G_OBJECT_CLASS(unet_segment_page_parent_class)->finalize(object);
}

static void unet_segment_page_class_init(UnetSegmentPageClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_segment_page_dispose;
    object_class->finalize = unet_segment_page_finalize;
    g_type_ensure(UNET_TYPE_IMAGE_VIEW);
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/unetworkbench/Workbench/ui/unet-segment-page.ui");
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, box);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, form_grid);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, segment_info);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, status_label);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, progress);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, image_view);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, probability_view);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, result_view);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, image_value);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, probability_value);
    gtk_widget_class_bind_template_child(widget_class, UnetSegmentPage, result_value);
    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void unet_segment_page_init(UnetSegmentPage *page)
{
    gtk_widget_init_template(GTK_WIDGET(page));
    page->state = UNET_RUN_IDLE;
    page->transform = unet_view_transform_new();
    UnetImageView *views[] = { page->image_view, page->probability_view, page->result_view };
    for (int i = 0; i < 3; i++) {
        unet_image_view_set_transform(views[i], page->transform);
        g_signal_connect(views[i], "pixel-hovered", G_CALLBACK(on_pixel_hovered), page);
    }
    unet_image_view_set_placeholder(page->image_view, _("Open an image, or drop one on the window."));
    unet_image_view_set_placeholder(page->probability_view, _("The model's foreground probability"));
    unet_image_view_set_placeholder(page->result_view, _("The segmentation over the image"));
    /* The status row shows while a segmentation runs. */
    gtk_label_set_text(page->status_label, "");
    gtk_widget_set_visible(gtk_widget_get_parent(GTK_WIDGET(page->progress)), FALSE);
}
