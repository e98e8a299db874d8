/* unet-dataset-store.c - UnetDatasetStore and UnetPairItem: the dataset
 * browser's model, filled by a worker thread. */
#include "unet-dataset-store.h"

#include <glib/gi18n.h>
#include <string.h>

G_DEFINE_QUARK(unet-dataset-error-quark, unet_dataset_error)

/* ---- Shared ownership of the engine dataset ---- */

/* Worker threads loading a pair keep the dataset alive while the main
 * thread may already have opened another one. */
typedef struct DatasetRef {
    UnetDataset *ds;
} DatasetRef;

static void dataset_ref_clear(gpointer data)
{
    DatasetRef *r = data;
    unet_dataset_free(r->ds);
}

static DatasetRef *dataset_ref_new(UnetDataset *ds)
{
    DatasetRef *r = g_atomic_rc_box_new0(DatasetRef);
    r->ds = ds;
    return r;
}

static void dataset_ref_unref(DatasetRef *r)
{
    if (r)
        g_atomic_rc_box_release_full(r, dataset_ref_clear);
}

/* ---- UnetPairItem ---- */

struct _UnetPairItem {
    GObject parent_instance;
    int index;
    char *name, *image_path, *mask_path, *problems;
    gboolean validation;
    int width, height;
    /* Thumbnails as RGBA bytes from the worker; textures made on first use
     * on the main thread. */
    GBytes *image_px, *mask_px;
    int thumb_w, thumb_h;
    GdkTexture *image_tex, *mask_tex;
};

G_DEFINE_FINAL_TYPE(UnetPairItem, unet_pair_item, G_TYPE_OBJECT)

static void unet_pair_item_finalize(GObject *object)
{
    UnetPairItem *item = UNET_PAIR_ITEM(object);
    g_free(item->name);
    g_free(item->image_path);
    g_free(item->mask_path);
    g_free(item->problems);
    g_clear_pointer(&item->image_px, g_bytes_unref);
    g_clear_pointer(&item->mask_px, g_bytes_unref);
    g_clear_object(&item->image_tex);
    g_clear_object(&item->mask_tex);
    G_OBJECT_CLASS(unet_pair_item_parent_class)->finalize(object);
}

static void unet_pair_item_class_init(UnetPairItemClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = unet_pair_item_finalize;
}

static void unet_pair_item_init(UnetPairItem *item)
{
}

int unet_pair_item_get_index(UnetPairItem *item)
{
    return item->index;
}

const char *unet_pair_item_get_name(UnetPairItem *item)
{
    return item->name;
}

const char *unet_pair_item_get_image_path(UnetPairItem *item)
{
    return item->image_path;
}

const char *unet_pair_item_get_mask_path(UnetPairItem *item)
{
    return item->mask_path;
}

gboolean unet_pair_item_get_validation(UnetPairItem *item)
{
    return item->validation;
}

const char *unet_pair_item_get_problems(UnetPairItem *item)
{
    return item->problems;
}

void unet_pair_item_get_size(UnetPairItem *item, int *width, int *height)
{
    *width = item->width;
    *height = item->height;
}

static GdkTexture *make_texture(GBytes *px, int w, int h, GdkTexture **cache)
{
    if (!*cache && px)
        *cache = gdk_memory_texture_new(w, h, GDK_MEMORY_R8G8B8A8, px, (gsize)w * 4);
    return *cache;
}

GdkTexture *unet_pair_item_get_image_thumbnail(UnetPairItem *item)
{
    return make_texture(item->image_px, item->thumb_w, item->thumb_h, &item->image_tex);
}

GdkTexture *unet_pair_item_get_mask_thumbnail(UnetPairItem *item)
{
    return make_texture(item->mask_px, item->thumb_w, item->thumb_h, &item->mask_tex);
}

/* ---- Thumbnails (worker thread) ---- */

static void thumb_size(int w, int h, int *tw, int *th)
{
    double s = MIN(1.0, (double)UNET_THUMBNAIL_SIZE / MAX(w, h));
    *tw = MAX(1, (int)(w * s + 0.5));
    *th = MAX(1, (int)(h * s + 0.5));
}

/* Box-filtered thumbnail of a normalised [0,1] input (1 or 3 channels). */
static GBytes *image_thumbnail(const UnetImage *img, int tw, int th)
{
    guint8 *px = g_malloc((gsize)tw * th * 4);
    gsize plane = (gsize)img->width * img->height;
    for (int ty = 0; ty < th; ty++) {
        int y0 = ty * img->height / th, y1 = MAX(y0 + 1, (ty + 1) * img->height / th);
        for (int tx = 0; tx < tw; tx++) {
            int x0 = tx * img->width / tw, x1 = MAX(x0 + 1, (tx + 1) * img->width / tw);
            double sum[3] = { 0, 0, 0 };
            for (int y = y0; y < y1; y++) {
                for (int x = x0; x < x1; x++) {
                    gsize i = (gsize)y * img->width + x;
                    for (int c = 0; c < 3; c++)
                        sum[c] += img->data[(img->channels >= 3 ? c : 0) * plane + i];
                }
            }
            double n = (double)(y1 - y0) * (x1 - x0);
            guint8 *p = px + ((gsize)ty * tw + tx) * 4;
            for (int c = 0; c < 3; c++)
                p[c] = (guint8)CLAMP(sum[c] / n * 255 + 0.5, 0, 255);
            p[3] = 255;
        }
    }
    return g_bytes_new_take(px, (gsize)tw * th * 4);
}

/* Nearest-sampled class map: 0 black, 1 white, more classes in grey steps. */
static GBytes *mask_thumbnail(const UnetLabels *lab, int tw, int th)
{
    int maxc = 1;
    gsize n = (gsize)lab->width * lab->height;
    for (gsize i = 0; i < n; i++)
        maxc = MAX(maxc, lab->data[i]);
    guint8 *px = g_malloc((gsize)tw * th * 4);
    for (int ty = 0; ty < th; ty++) {
        int y = MIN(lab->height - 1, (int)((ty + 0.5) * lab->height / th));
        for (int tx = 0; tx < tw; tx++) {
            int x = MIN(lab->width - 1, (int)((tx + 0.5) * lab->width / tw));
            int c = lab->data[(gsize)y * lab->width + x];
            guint8 v = (guint8)(255 * CLAMP(c, 0, maxc) / maxc);
            guint8 *p = px + ((gsize)ty * tw + tx) * 4;
            p[0] = p[1] = p[2] = v;
            p[3] = 255;
        }
    }
    return g_bytes_new_take(px, (gsize)tw * th * 4);
}

/* ---- UnetDatasetStore ---- */

struct _UnetDatasetStore {
    GObject parent_instance;
    GPtrArray *items;        /* UnetPairItem* */
    DatasetRef *ref;
    UnetSplit split;
    char *path;
    char *general_problems;
    int n_problem_pairs;
    gboolean loading;
    guint generation;        /* drops results of superseded opens */
};

enum { PROP_0, PROP_PATH, PROP_LOADING, N_PROPS };
static GParamSpec *props[N_PROPS];

static void list_model_iface_init(GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(UnetDatasetStore, unet_dataset_store, G_TYPE_OBJECT,
                              G_IMPLEMENT_INTERFACE(G_TYPE_LIST_MODEL, list_model_iface_init))

static GType get_item_type(GListModel *model)
{
    return UNET_TYPE_PAIR_ITEM;
}

static guint get_n_items(GListModel *model)
{
    return UNET_DATASET_STORE(model)->items->len;
}

static gpointer get_item(GListModel *model, guint position)
{
    UnetDatasetStore *store = UNET_DATASET_STORE(model);
    if (position >= store->items->len)
        return NULL;
    return g_object_ref(g_ptr_array_index(store->items, position));
}

static void list_model_iface_init(GListModelInterface *iface)
{
    iface->get_item_type = get_item_type;
    iface->get_n_items = get_n_items;
    iface->get_item = get_item;
}

static void clear_contents(UnetDatasetStore *store)
{
    guint removed = store->items->len;
    g_ptr_array_set_size(store->items, 0);
    unet_split_free(&store->split);
    memset(&store->split, 0, sizeof store->split);
    dataset_ref_unref(store->ref);
    store->ref = NULL;
    g_clear_pointer(&store->path, g_free);
    g_clear_pointer(&store->general_problems, g_free);
    store->n_problem_pairs = 0;
    if (removed)
        g_list_model_items_changed(G_LIST_MODEL(store), 0, removed, 0);
}

static void unet_dataset_store_finalize(GObject *object)
{
    UnetDatasetStore *store = UNET_DATASET_STORE(object);
    g_ptr_array_set_size(store->items, 0);
    unet_split_free(&store->split);
    dataset_ref_unref(store->ref);
    g_free(store->path);
    g_free(store->general_problems);
    g_ptr_array_unref(store->items);
    G_OBJECT_CLASS(unet_dataset_store_parent_class)->finalize(object);
}

static void unet_dataset_store_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
    UnetDatasetStore *store = UNET_DATASET_STORE(object);
    switch (id) {
    case PROP_PATH:
        g_value_set_string(value, store->path);
        break;
    case PROP_LOADING:
        g_value_set_boolean(value, store->loading);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    }
}

static void unet_dataset_store_class_init(UnetDatasetStoreClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    object_class->finalize = unet_dataset_store_finalize;
    object_class->get_property = unet_dataset_store_get_property;
    props[PROP_PATH] = g_param_spec_string("path", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
    props[PROP_LOADING] =
        g_param_spec_boolean("loading", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(object_class, N_PROPS, props);
}

static void unet_dataset_store_init(UnetDatasetStore *store)
{
    store->items = g_ptr_array_new_with_free_func(g_object_unref);
}

UnetDatasetStore *unet_dataset_store_new(void)
{
    return g_object_new(UNET_TYPE_DATASET_STORE, NULL);
}

/* ---- Opening ---- */

typedef struct OpenJob {
    char *path;
    UnetDatasetOptions options;
    double val_fraction;
    guint64 seed;
    guint generation;
    /* Results. */
    DatasetRef *ref;
    UnetSplit split;
    GPtrArray *items;
    GString *general;
    int n_problem_pairs;
} OpenJob;

static void open_job_free(gpointer data)
{
    OpenJob *job = data;
    g_free(job->path);
    dataset_ref_unref(job->ref);
    unet_split_free(&job->split);
    if (job->items)
        g_ptr_array_unref(job->items);
    if (job->general)
        g_string_free(job->general, TRUE);
    g_free(job);
}

static void append_line(char **dst, const char *line)
{
    char *old = *dst;
    *dst = old ? g_strconcat(old, "\n", line, NULL) : g_strdup(line);
    g_free(old);
}

static void open_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    OpenJob *job = data;
    UnetError err = { 0 };
    UnetDataset *ds = NULL;
    if (unet_dataset_open(job->path, &job->options, &ds, &err) != UNET_OK) {
        g_task_return_new_error(task, UNET_DATASET_ERROR, err.status, "%s", err.message);
        return;
    }
    job->ref = dataset_ref_new(ds);
    int n = unet_dataset_count(ds);
    if (unet_dataset_split(ds, job->val_fraction, job->seed, &job->split, &err) != UNET_OK) {
        g_task_return_new_error(task, UNET_DATASET_ERROR, err.status, "%s", err.message);
        return;
    }
    UnetDatasetReport report = { 0 };
    if (unet_dataset_check(job->path, &job->options, &report, &err) != UNET_OK) {
        g_task_return_new_error(task, UNET_DATASET_ERROR, err.status, "%s", err.message);
        return;
    }
    job->items = g_ptr_array_new_with_free_func(g_object_unref);
    job->general = g_string_new(NULL);
    for (int i = 0; i < n; i++) {
        UnetPairItem *item = g_object_new(UNET_TYPE_PAIR_ITEM, NULL);
        item->index = i;
        item->name = g_strdup(unet_dataset_name(ds, i));
        item->image_path = g_strdup(unet_dataset_image_path(ds, i, NULL));
        item->mask_path = g_strdup(unet_dataset_mask_path(ds, i, NULL));
        g_ptr_array_add(job->items, item);
    }
    for (int v = 0; v < job->split.n_val; v++) {
        int i = job->split.val[v];
        if (i >= 0 && i < n)
            ((UnetPairItem *)job->items->pdata[i])->validation = TRUE;
    }
    for (int p = 0; p < report.count; p++) {
        const UnetDatasetProblem *pr = &report.problems[p];
        gboolean matched = FALSE;
        for (int i = 0; i < n && pr->file; i++) {
            UnetPairItem *item = job->items->pdata[i];
            if (!g_strcmp0(pr->file, item->image_path) || !g_strcmp0(pr->file, item->mask_path)) {
                append_line(&item->problems, pr->message);
                matched = TRUE;
            }
        }
        if (!matched) {
            if (job->general->len)
                g_string_append_c(job->general, '\n');
            g_string_append(job->general, pr->message);
        }
    }
    unet_dataset_report_free(&report);

    for (int i = 0; i < n; i++) {
        if (g_cancellable_is_cancelled(cancellable))
            break;
        UnetPairItem *item = job->items->pdata[i];
        UnetPair pair;
        memset(&pair, 0, sizeof pair);
        if (unet_dataset_load(ds, i, &pair, &err) != UNET_OK) {
            if (!item->problems || !strstr(item->problems, err.message))
                append_line(&item->problems, err.message);
            continue;
        }
        item->width = pair.image.width;
        item->height = pair.image.height;
        thumb_size(pair.image.width, pair.image.height, &item->thumb_w, &item->thumb_h);
        item->image_px = image_thumbnail(&pair.image, item->thumb_w, item->thumb_h);
        item->mask_px = mask_thumbnail(&pair.labels, item->thumb_w, item->thumb_h);
        unet_pair_free(&pair);
    }
    for (int i = 0; i < n; i++)
        job->n_problem_pairs += ((UnetPairItem *)job->items->pdata[i])->problems != NULL;
    if (g_task_return_error_if_cancelled(task))
        return;
    g_task_return_boolean(task, TRUE);
}

static void set_loading(UnetDatasetStore *store, gboolean loading)
{
    if (store->loading == loading)
        return;
    store->loading = loading;
    g_object_notify_by_pspec(G_OBJECT(store), props[PROP_LOADING]);
}

void unet_dataset_store_open_async(UnetDatasetStore *store, const char *path, const UnetDatasetOptions *options,
                                   double val_fraction, guint64 split_seed, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
    g_return_if_fail(UNET_IS_DATASET_STORE(store));
    g_return_if_fail(path != NULL && options != NULL);
    OpenJob *job = g_new0(OpenJob, 1);
    job->path = g_strdup(path);
    job->options = *options;
    job->val_fraction = val_fraction;
    job->seed = split_seed;
    job->generation = ++store->generation;
    GTask *task = g_task_new(store, cancellable, callback, user_data);
    g_task_set_source_tag(task, unet_dataset_store_open_async);
    g_task_set_task_data(task, job, open_job_free);
    set_loading(store, TRUE);
    g_task_run_in_thread(task, open_thread);
    g_object_unref(task);
}

gboolean unet_dataset_store_open_finish(UnetDatasetStore *store, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, store), FALSE);
    GTask *task = G_TASK(result);
    OpenJob *job = g_task_get_task_data(task);
    gboolean current = job->generation == store->generation;
    if (current)
        set_loading(store, FALSE);
    if (!g_task_propagate_boolean(task, error))
        return FALSE;
    if (!current) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, _("Opening “%s” was superseded by a later request."),
                    job->path);
        return FALSE;
    }
    clear_contents(store);
    store->ref = job->ref;
    job->ref = NULL;
    store->split = job->split;
    memset(&job->split, 0, sizeof job->split);
    store->path = g_strdup(job->path);
    store->general_problems = job->general->len ? g_strdup(job->general->str) : NULL;
    store->n_problem_pairs = job->n_problem_pairs;
    for (guint i = 0; i < job->items->len; i++)
        g_ptr_array_add(store->items, g_object_ref(job->items->pdata[i]));
    g_object_notify_by_pspec(G_OBJECT(store), props[PROP_PATH]);
    if (store->items->len)
        g_list_model_items_changed(G_LIST_MODEL(store), 0, 0, store->items->len);
    return TRUE;
}

void unet_dataset_store_close(UnetDatasetStore *store)
{
    g_return_if_fail(UNET_IS_DATASET_STORE(store));
    store->generation++;
    set_loading(store, FALSE);
    clear_contents(store);
    g_object_notify_by_pspec(G_OBJECT(store), props[PROP_PATH]);
}

const UnetDataset *unet_dataset_store_get_dataset(UnetDatasetStore *store)
{
    g_return_val_if_fail(UNET_IS_DATASET_STORE(store), NULL);
    return store->ref ? store->ref->ds : NULL;
}

const char *unet_dataset_store_get_path(UnetDatasetStore *store)
{
    g_return_val_if_fail(UNET_IS_DATASET_STORE(store), NULL);
    return store->path;
}

gboolean unet_dataset_store_get_loading(UnetDatasetStore *store)
{
    g_return_val_if_fail(UNET_IS_DATASET_STORE(store), FALSE);
    return store->loading;
}

const UnetSplit *unet_dataset_store_get_split(UnetDatasetStore *store)
{
    g_return_val_if_fail(UNET_IS_DATASET_STORE(store), NULL);
    return store->ref ? &store->split : NULL;
}

const char *unet_dataset_store_get_general_problems(UnetDatasetStore *store)
{
    g_return_val_if_fail(UNET_IS_DATASET_STORE(store), NULL);
    return store->general_problems;
}

int unet_dataset_store_get_n_problem_pairs(UnetDatasetStore *store)
{
    g_return_val_if_fail(UNET_IS_DATASET_STORE(store), 0);
    return store->n_problem_pairs;
}

UnetPairItem *unet_dataset_store_get_item(UnetDatasetStore *store, int index)
{
    g_return_val_if_fail(UNET_IS_DATASET_STORE(store), NULL);
    if (index < 0 || (guint)index >= store->items->len)
        return NULL;
    return g_ptr_array_index(store->items, index);
}

/* ---- Loading one pair ---- */

void unet_loaded_pair_free(UnetLoadedPair *p)
{
    if (!p)
        return;
    unet_image_free(&p->raw);
    unet_labels_free(&p->raw_mask);
    unet_pair_free(&p->pair);
    g_free(p);
}

typedef struct LoadJob {
    DatasetRef *ref;
    int index;
} LoadJob;

static void load_job_free(gpointer data)
{
    LoadJob *job = data;
    dataset_ref_unref(job->ref);
    g_free(job);
}

static void load_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    LoadJob *job = data;
    UnetLoadedPair *p = g_new0(UnetLoadedPair, 1);
    p->index = job->index;
    UnetError err = { 0 };
    if (unet_dataset_load_raw(job->ref->ds, job->index, &p->raw, &p->raw_mask, &err) != UNET_OK ||
        unet_dataset_load(job->ref->ds, job->index, &p->pair, &err) != UNET_OK) {
        unet_loaded_pair_free(p);
        g_task_return_new_error(task, UNET_DATASET_ERROR, err.status, "%s", err.message);
        return;
    }
    g_task_return_pointer(task, p, (GDestroyNotify)unet_loaded_pair_free);
}

void unet_dataset_store_load_pair_async(UnetDatasetStore *store, int index, GCancellable *cancellable,
                                        GAsyncReadyCallback callback, gpointer user_data)
{
    g_return_if_fail(UNET_IS_DATASET_STORE(store));
    GTask *task = g_task_new(store, cancellable, callback, user_data);
    g_task_set_source_tag(task, unet_dataset_store_load_pair_async);
    if (!store->ref || index < 0 || index >= unet_dataset_count(store->ref->ds)) {
        g_task_return_new_error(task, UNET_DATASET_ERROR, UNET_ERR_INVALID,
                                _("There is no pair number %d in the open dataset."), index + 1);
        g_object_unref(task);
        return;
    }
    LoadJob *job = g_new0(LoadJob, 1);
    job->ref = g_atomic_rc_box_acquire(store->ref);
    job->index = index;
    g_task_set_task_data(task, job, load_job_free);
    g_task_run_in_thread(task, load_thread);
    g_object_unref(task);
}

UnetLoadedPair *unet_dataset_store_load_pair_finish(UnetDatasetStore *store, GAsyncResult *result,
                                                    GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, store), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}
