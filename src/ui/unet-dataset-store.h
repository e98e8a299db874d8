/* unet-dataset-store.h - the open dataset as a GListModel of UnetPairItems
 * (name, split, thumbnails, problems) for the browser, and the loading of
 * pairs for display. Scanning, checking and thumbnailing run in a worker
 * thread (GTask); the model changes only on the main thread. */
#ifndef UNET_DATASET_STORE_H
#define UNET_DATASET_STORE_H

#include <gio/gio.h>
#include <gtk/gtk.h>

#include "dataset.h"

G_BEGIN_DECLS

#define UNET_THUMBNAIL_SIZE 56

/* ---- One image/mask pair of the list ---- */

#define UNET_TYPE_PAIR_ITEM (unet_pair_item_get_type())
G_DECLARE_FINAL_TYPE(UnetPairItem, unet_pair_item, UNET, PAIR_ITEM, GObject)

int unet_pair_item_get_index(UnetPairItem *item);
const char *unet_pair_item_get_name(UnetPairItem *item);
const char *unet_pair_item_get_image_path(UnetPairItem *item);
const char *unet_pair_item_get_mask_path(UnetPairItem *item);
/* TRUE when the pair is in the validation split. */
gboolean unet_pair_item_get_validation(UnetPairItem *item);
/* The problems found with this pair's files, one per line; NULL when none. */
const char *unet_pair_item_get_problems(UnetPairItem *item);
/* Image and mask thumbnails (at most UNET_THUMBNAIL_SIZE pixels); NULL when
 * the pair could not be read. */
GdkTexture *unet_pair_item_get_image_thumbnail(UnetPairItem *item);
GdkTexture *unet_pair_item_get_mask_thumbnail(UnetPairItem *item);
void unet_pair_item_get_size(UnetPairItem *item, int *width, int *height);

/* ---- The dataset ---- */

#define UNET_TYPE_DATASET_STORE (unet_dataset_store_get_type())
G_DECLARE_FINAL_TYPE(UnetDatasetStore, unet_dataset_store, UNET, DATASET_STORE, GObject)

#define UNET_DATASET_ERROR (unet_dataset_error_quark())
GQuark unet_dataset_error_quark(void);

UnetDatasetStore *unet_dataset_store_new(void);

/* Opens `path` (a folder, or a TIFF stack whose partner is found beside
 * it) with these options, splits off val_fraction for validation with
 * split_seed, checks every pair and makes thumbnails. On success the model
 * holds the new pairs; on failure it is unchanged and the error message is
 * the engine's sentence. */
void unet_dataset_store_open_async(UnetDatasetStore *store, const char *path, const UnetDatasetOptions *options,
                                   double val_fraction, guint64 split_seed, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
gboolean unet_dataset_store_open_finish(UnetDatasetStore *store, GAsyncResult *result, GError **error);

/* Empties the store. */
void unet_dataset_store_close(UnetDatasetStore *store);

/* The open dataset (owned by the store; NULL when none). Read-only: it may be
 * used from worker threads while the store keeps it. */
const UnetDataset *unet_dataset_store_get_dataset(UnetDatasetStore *store);
const char *unet_dataset_store_get_path(UnetDatasetStore *store);
gboolean unet_dataset_store_get_loading(UnetDatasetStore *store);
/* Split as index lists (valid while the dataset stays open). */
const UnetSplit *unet_dataset_store_get_split(UnetDatasetStore *store);
/* Problems that concern no single pair (missing folders, stray files...),
 * one per line, or NULL; and the number of pairs with problems. */
const char *unet_dataset_store_get_general_problems(UnetDatasetStore *store);
int unet_dataset_store_get_n_problem_pairs(UnetDatasetStore *store);
UnetPairItem *unet_dataset_store_get_item(UnetDatasetStore *store, int index);

/* ---- One pair loaded for display ---- */

typedef struct UnetLoadedPair {
    int index;
    UnetImage raw;        /* image values as stored */
    UnetLabels raw_mask;  /* mask values as stored */
    UnetPair pair;        /* normalised input, class ids (and instance ids) */
} UnetLoadedPair;

void unet_loaded_pair_free(UnetLoadedPair *p);

void unet_dataset_store_load_pair_async(UnetDatasetStore *store, int index, GCancellable *cancellable,
                                        GAsyncReadyCallback callback, gpointer user_data);
/* Free the result with unet_loaded_pair_free. */
UnetLoadedPair *unet_dataset_store_load_pair_finish(UnetDatasetStore *store, GAsyncResult *result,
                                                    GError **error);

G_END_DECLS

#endif
