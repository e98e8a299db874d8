/* unet-dataset-browser.c - UnetDatasetBrowser: the dataset sidebar. */
#include "unet-dataset-browser.h"

#include <glib/gi18n.h>

struct _UnetDatasetBrowser {
    GtkWidget parent_instance;
    GtkWidget *box;
    GtkLabel *title_label, *summary_label, *problems_label;
    GtkSearchEntry *search_entry;
    GtkStack *stack;
    GtkSpinner *spinner;
    GtkListView *list_view;
    GtkRevealer *problems_revealer;

    UnetSession *session;
    GtkFilterListModel *filtered;
    GtkCustomFilter *filter;
    GtkSingleSelection *selection;
    char *filter_text;
    gboolean syncing;
};

G_DEFINE_FINAL_TYPE(UnetDatasetBrowser, unet_dataset_browser, GTK_TYPE_WIDGET)

/* ---- Rows ---- */

typedef struct Row {
    GtkWidget *image, *mask, *name, *split, *flag;
} Row;

static void setup_row(GtkSignalListItemFactory *f, GtkListItem *li, gpointer data)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_widget_set_margin_top(box, 3);
    gtk_widget_set_margin_bottom(box, 3);
    Row *row = g_new0(Row, 1);
    row->image = gtk_picture_new();
    row->mask = gtk_picture_new();
    for (int i = 0; i < 2; i++) {
        GtkWidget *p = i ? row->mask : row->image;
        gtk_widget_set_size_request(p, 44, 44);
        gtk_picture_set_can_shrink(GTK_PICTURE(p), TRUE);
        gtk_picture_set_content_fit(GTK_PICTURE(p), GTK_CONTENT_FIT_CONTAIN);
        gtk_widget_add_css_class(p, "unet-thumbnail");
        gtk_box_append(GTK_BOX(box), p);
    }
    GtkWidget *vbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    gtk_widget_set_valign(vbox, GTK_ALIGN_CENTER);
    gtk_widget_set_hexpand(vbox, TRUE);
    row->name = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(row->name), 0);
    gtk_label_set_ellipsize(GTK_LABEL(row->name), PANGO_ELLIPSIZE_MIDDLE);
    row->split = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(row->split), 0);
    gtk_widget_add_css_class(row->split, "caption");
    gtk_box_append(GTK_BOX(vbox), row->name);
    gtk_box_append(GTK_BOX(vbox), row->split);
    gtk_box_append(GTK_BOX(box), vbox);
    row->flag = gtk_image_new_from_icon_name("dialog-warning-symbolic");
    gtk_widget_add_css_class(row->flag, "warning");
    gtk_widget_set_valign(row->flag, GTK_ALIGN_CENTER);
    gtk_box_append(GTK_BOX(box), row->flag);
    g_object_set_data_full(G_OBJECT(box), "row", row, g_free);
    gtk_list_item_set_child(li, box);
}

static void bind_row(GtkSignalListItemFactory *f, GtkListItem *li, gpointer data)
{
    UnetPairItem *item = gtk_list_item_get_item(li);
    GtkWidget *box = gtk_list_item_get_child(li);
    Row *row = g_object_get_data(G_OBJECT(box), "row");
    gtk_picture_set_paintable(GTK_PICTURE(row->image), GDK_PAINTABLE(unet_pair_item_get_image_thumbnail(item)));
    gtk_picture_set_paintable(GTK_PICTURE(row->mask), GDK_PAINTABLE(unet_pair_item_get_mask_thumbnail(item)));
    gtk_label_set_text(GTK_LABEL(row->name), unet_pair_item_get_name(item));
    gboolean val = unet_pair_item_get_validation(item);
    gtk_label_set_text(GTK_LABEL(row->split), val ? _("Validation") : _("Training"));
    if (val) {
        gtk_widget_add_css_class(row->split, "accent");
        gtk_widget_remove_css_class(row->split, "dim-label");
    } else {
        gtk_widget_add_css_class(row->split, "dim-label");
        gtk_widget_remove_css_class(row->split, "accent");
    }
    const char *problems = unet_pair_item_get_problems(item);
    gtk_widget_set_visible(row->flag, problems != NULL);
    gtk_widget_set_tooltip_text(row->flag, problems);
    gtk_widget_set_tooltip_text(box, problems);
    char *desc = g_strdup_printf(problems ? _("%s, %s, has problems") : "%s, %s", unet_pair_item_get_name(item),
                                 val ? _("Validation") : _("Training"));
    gtk_accessible_update_property(GTK_ACCESSIBLE(box), GTK_ACCESSIBLE_PROPERTY_LABEL, desc, -1);
    g_free(desc);
}

/* ---- Filter and selection ---- */

static gboolean filter_func(gpointer item, gpointer data)
{
    UnetDatasetBrowser *b = data;
    if (!b->filter_text || !*b->filter_text)
        return TRUE;
    char *name = g_utf8_casefold(unet_pair_item_get_name(item), -1);
    gboolean match = strstr(name, b->filter_text) != NULL;
    g_free(name);
    return match;
}

void unet_dataset_browser_set_filter(UnetDatasetBrowser *b, const char *text)
{
    g_free(b->filter_text);
    b->filter_text = text && *text ? g_utf8_casefold(text, -1) : NULL;
    gtk_filter_changed(GTK_FILTER(b->filter), GTK_FILTER_CHANGE_DIFFERENT);
}

static void on_search_changed(GtkSearchEntry *entry, UnetDatasetBrowser *b)
{
    unet_dataset_browser_set_filter(b, gtk_editable_get_text(GTK_EDITABLE(entry)));
}

static void select_session_pair(UnetDatasetBrowser *b)
{
    if (!b->session)
        return;
    int want = unet_session_get_selected(b->session);
    guint n = g_list_model_get_n_items(G_LIST_MODEL(b->filtered));
    guint pos = GTK_INVALID_LIST_POSITION;
    for (guint i = 0; i < n && want >= 0; i++) {
        UnetPairItem *item = g_list_model_get_item(G_LIST_MODEL(b->filtered), i);
        gboolean hit = unet_pair_item_get_index(item) == want;
        g_object_unref(item);
        if (hit) {
            pos = i;
            break;
        }
    }
    b->syncing = TRUE;
    gtk_single_selection_set_selected(b->selection, pos);
    b->syncing = FALSE;
    if (pos != GTK_INVALID_LIST_POSITION)
        gtk_widget_activate_action(GTK_WIDGET(b->list_view), "list.scroll-to-item", "u", pos);
}

static void on_selection_changed(GtkSingleSelection *sel, GParamSpec *pspec, UnetDatasetBrowser *b)
{
    if (b->syncing || !b->session)
        return;
    UnetPairItem *item = gtk_single_selection_get_selected_item(sel);
    if (item)
        unet_session_set_selected(b->session, unet_pair_item_get_index(item));
}

static void on_session_selected(UnetSession *s, GParamSpec *pspec, UnetDatasetBrowser *b)
{
    select_session_pair(b);
}

/* ---- Summary ---- */

static void update_state(UnetDatasetBrowser *b)
{
    UnetDatasetStore *store = unet_session_get_store(b->session);
    gboolean loading = unet_dataset_store_get_loading(store);
    const char *path = unet_dataset_store_get_path(store);
    guint n = g_list_model_get_n_items(G_LIST_MODEL(store));
    gtk_spinner_set_spinning(b->spinner, loading);
    if (loading)
        gtk_stack_set_visible_child_name(b->stack, "loading");
    else
        gtk_stack_set_visible_child_name(b->stack, path ? "list" : "empty");
    gtk_widget_set_visible(GTK_WIDGET(b->search_entry), path && !loading && n > 0);

    if (!path) {
        gtk_label_set_text(b->title_label, _("No Dataset"));
        gtk_label_set_text(b->summary_label, "");
        gtk_widget_set_visible(GTK_WIDGET(b->summary_label), FALSE);
        gtk_revealer_set_reveal_child(b->problems_revealer, FALSE);
        return;
    }
    char *base = g_path_get_basename(path);
    gtk_label_set_text(b->title_label, base);
    gtk_widget_set_tooltip_text(GTK_WIDGET(b->title_label), path);
    g_free(base);

    const UnetSplit *split = unet_dataset_store_get_split(store);
    int n_problem = unet_dataset_store_get_n_problem_pairs(store);
    GString *s = g_string_new(NULL);
    g_string_printf(s, g_dngettext(NULL, "%u pair", "%u pairs", n), n);
    if (split) {
        g_string_append(s, " · ");
        g_string_append_printf(s, _("%d training, %d validation"), split->n_train, split->n_val);
    }
    if (n_problem > 0) {
        g_string_append(s, " · ");
        g_string_append_printf(s, g_dngettext(NULL, "%d with problems", "%d with problems", n_problem), n_problem);
    }
    gtk_label_set_text(b->summary_label, s->str);
    gtk_widget_set_visible(GTK_WIDGET(b->summary_label), TRUE);
    g_string_free(s, TRUE);

    const char *general = unet_dataset_store_get_general_problems(store);
    gtk_label_set_text(b->problems_label, general ? general : "");
    gtk_revealer_set_reveal_child(b->problems_revealer, general != NULL);
}

static void on_store_notify(GObject *store, GParamSpec *pspec, UnetDatasetBrowser *b)
{
    update_state(b);
}

static void on_items_changed(GListModel *model, guint pos, guint removed, guint added, UnetDatasetBrowser *b)
{
    update_state(b);
    select_session_pair(b);
}

void unet_dataset_browser_set_session(UnetDatasetBrowser *b, UnetSession *session)
{
    g_return_if_fail(UNET_IS_DATASET_BROWSER(b));
    g_return_if_fail(b->session == NULL);
    b->session = g_object_ref(session);
    UnetDatasetStore *store = unet_session_get_store(session);
    gtk_filter_list_model_set_model(b->filtered, G_LIST_MODEL(store));
    g_signal_connect_object(store, "notify", G_CALLBACK(on_store_notify), b, 0);
    g_signal_connect_object(store, "items-changed", G_CALLBACK(on_items_changed), b, 0);
    g_signal_connect_object(session, "notify::selected", G_CALLBACK(on_session_selected), b, 0);
    update_state(b);
}

GtkWidget *unet_dataset_browser_get_list_view(UnetDatasetBrowser *b)
{
    return GTK_WIDGET(b->list_view);
}

guint unet_dataset_browser_get_n_shown(UnetDatasetBrowser *b)
{
    return g_list_model_get_n_items(G_LIST_MODEL(b->filtered));
}

/* ---- GObject ---- */

static void unet_dataset_browser_dispose(GObject *object)
{
    UnetDatasetBrowser *b = UNET_DATASET_BROWSER(object);
    gtk_widget_dispose_template(GTK_WIDGET(b), UNET_TYPE_DATASET_BROWSER);
    g_clear_object(&b->selection);
    g_clear_object(&b->session);
    g_clear_pointer(&b->filter_text, g_free);
    G_OBJECT_CLASS(unet_dataset_browser_parent_class)->dispose(object);
}

static void unet_dataset_browser_class_init(UnetDatasetBrowserClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = unet_dataset_browser_dispose;
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/unetworkbench/Workbench/ui/unet-dataset-browser.ui");
    gtk_widget_class_bind_template_child(widget_class, UnetDatasetBrowser, box);
    gtk_widget_class_bind_template_child(widget_class, UnetDatasetBrowser, title_label);
    gtk_widget_class_bind_template_child(widget_class, UnetDatasetBrowser, summary_label);
    gtk_widget_class_bind_template_child(widget_class, UnetDatasetBrowser, problems_label);
    gtk_widget_class_bind_template_child(widget_class, UnetDatasetBrowser, search_entry);
    gtk_widget_class_bind_template_child(widget_class, UnetDatasetBrowser, stack);
    gtk_widget_class_bind_template_child(widget_class, UnetDatasetBrowser, spinner);
    gtk_widget_class_bind_template_child(widget_class, UnetDatasetBrowser, list_view);
    gtk_widget_class_bind_template_child(widget_class, UnetDatasetBrowser, problems_revealer);
    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
    gtk_widget_class_set_css_name(widget_class, "unetdatasetbrowser");
}

static void unet_dataset_browser_init(UnetDatasetBrowser *b)
{
    gtk_widget_init_template(GTK_WIDGET(b));
    b->filter = gtk_custom_filter_new(filter_func, b, NULL);
    b->filtered = gtk_filter_list_model_new(NULL, GTK_FILTER(b->filter));
    b->selection = gtk_single_selection_new(G_LIST_MODEL(b->filtered));
    gtk_single_selection_set_autoselect(b->selection, FALSE);
    gtk_single_selection_set_can_unselect(b->selection, TRUE);
    g_signal_connect(b->selection, "notify::selected", G_CALLBACK(on_selection_changed), b);
    GtkListItemFactory *factory = gtk_signal_list_item_factory_new();
    g_signal_connect(factory, "setup", G_CALLBACK(setup_row), NULL);
    g_signal_connect(factory, "bind", G_CALLBACK(bind_row), NULL);
    gtk_list_view_set_model(b->list_view, GTK_SELECTION_MODEL(b->selection));
    gtk_list_view_set_factory(b->list_view, factory);
    g_object_unref(factory);
    g_signal_connect(b->search_entry, "search-changed", G_CALLBACK(on_search_changed), b);
}
