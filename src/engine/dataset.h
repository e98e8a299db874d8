/* dataset.h - a training set on disk: image/mask pairs found by name, loaded
 * lazily, split into training and validation, and checked for problems.
 *
 * Layouts:
 *   DIR/images/NAME.ext + DIR/masks/NAME.ext (or DIR/labels/): pairs matched
 *     by stem; ext is png, tif, tiff or npy in any letter case, and may differ
 *     between image and mask. A multi-page TIFF pair gives one pair per page
 *     (named "NAME[p]", p from 1). Hidden files are ignored.
 *   two multi-page TIFF stacks (ISBI 2012 train-volume.tif + train-labels.tif):
 *     unet_dataset_open_stacks(), or unet_dataset_open(DIR) on a folder with no
 *     images/ folder, where a stack whose name holds "label(s)" or "mask(s)" is
 *     paired with the one whose name is the same with "volume", "image(s)",
 *     "raw" or "input" in its place.
 *
 * Mask modes (what the integers of a mask mean):
 *   binary      any two values; a pixel is 1 when above the midpoint of the
 *               mask's smallest and largest value (0/255 -> threshold 127.5,
 *               like the notebook's 128); a one-valued mask is 0 when that
 *               value is 0, else 1.
 *   multiclass  class ids 0..K-1 (K = classes, required).
 *   instance    object ids (0 background, 1..N objects): foreground 1, with a
 *               one-pixel background border cut between touching objects (the
 *               lower id gives up its pixels that touch a higher id, 8-neighbour
 *               sense), as Ronneberger et al. made their masks.
 *   auto        per mask: values all below K when classes K >= 3 -> multiclass;
 *               otherwise at most two distinct values -> binary; otherwise
 *               (more values, e.g. ids 0..N, or values reaching K) -> instance. */
#ifndef UNET_DATASET_H
#define UNET_DATASET_H

#include <stdint.h>

#include "error.h"
#include "image.h"

typedef enum UnetMaskMode {
    UNET_MASK_AUTO = 0,
    UNET_MASK_BINARY,
    UNET_MASK_MULTICLASS,
    UNET_MASK_INSTANCE,
} UnetMaskMode;

typedef struct UnetDatasetOptions {
    UnetMaskMode mask_mode;
    int classes;          /* K for multiclass (2..65536); 0 when not given */
    int instance_border;  /* 1: cut a 1-pixel border between touching instances (default); 0: don't */
    UnetInputSpec input;  /* normalisation and colour of the images */
} UnetDatasetOptions;

/* auto masks, no class count, border on, default input spec. */
void unet_dataset_options_default(UnetDatasetOptions *opt);
UnetStatus unet_dataset_options_validate(const UnetDatasetOptions *opt, UnetError *err);

const char *unet_mask_mode_name(UnetMaskMode m);
UnetStatus unet_mask_mode_parse(const char *s, UnetMaskMode *out, UnetError *err);

typedef struct UnetDataset UnetDataset;

/* Scans path (see the layouts above); file contents are read only when a pair
 * is loaded. Fails on a structural problem (no images, a missing partner, a
 * page-count mismatch...) naming the first one and the count; run
 * unet_dataset_check for the whole list. */
UnetStatus unet_dataset_open(const char *path, const UnetDatasetOptions *opt, UnetDataset **out, UnetError *err);
UnetStatus unet_dataset_open_stacks(const char *images_tif, const char *labels_tif, const UnetDatasetOptions *opt,
                                    UnetDataset **out, UnetError *err);
void unet_dataset_free(UnetDataset *ds);

int unet_dataset_count(const UnetDataset *ds);
const char *unet_dataset_name(const UnetDataset *ds, int i);        /* stem, or "stem[p]" for a page */
const char *unet_dataset_image_path(const UnetDataset *ds, int i, int *page); /* page may be NULL */
const char *unet_dataset_mask_path(const UnetDataset *ds, int i, int *page);
const UnetDatasetOptions *unet_dataset_options(const UnetDataset *ds);

/* One loaded pair. */
typedef struct UnetPair {
    UnetImage image;      /* network input: normalised float CHW per the options */
    UnetLabels labels;    /* class ids: 0/1 for binary and instance masks, 0..K-1 for multiclass */
    UnetLabels instances; /* instance masks only: the ids after border cutting (0 = background);
                             empty (data NULL) otherwise */
    UnetMaskMode mode;    /* the mode applied (auto resolved) */
} UnetPair;

UnetStatus unet_dataset_load(const UnetDataset *ds, int i, UnetPair *pair, UnetError *err);
void unet_pair_free(UnetPair *pair);

/* The pair as stored: image values un-normalised, mask raw values. */
UnetStatus unet_dataset_load_raw(const UnetDataset *ds, int i, UnetImage *image, UnetLabels *mask, UnetError *err);

/* Mask interpretation on its own. labels gets the class ids; instances (may be
 * NULL) the separated ids for instance masks; applied (may be NULL) the mode
 * used. name is used in messages. */
UnetStatus unet_mask_interpret(const UnetLabels *raw, UnetMaskMode mode, int classes, int instance_border,
                               const char *name, UnetLabels *labels, UnetLabels *instances,
                               UnetMaskMode *applied, UnetError *err);

/* Foreground 1 where ids > 0, with the border rule above when border != 0;
 * separated (may be NULL) gets the ids with the cut pixels set to 0. */
UnetStatus unet_instances_to_binary(const UnetLabels *ids, int border, UnetLabels *binary, UnetLabels *separated,
                                    UnetError *err);

/* Train/validation split: round(val_fraction * count) pairs go to
 * validation (at least 1 and at most count-1 when val_fraction > 0 and count
 * >= 2), chosen by a seeded shuffle; both lists are ascending. val_fraction 0
 * puts everything in training (use it with a separate validation folder,
 * opened as its own dataset). */
typedef struct UnetSplit {
    int *train, n_train;
    int *val, n_val;
} UnetSplit;
UnetStatus unet_dataset_split(const UnetDataset *ds, double val_fraction, uint64_t seed, UnetSplit *split,
                              UnetError *err);
void unet_split_free(UnetSplit *split);

/* Every problem of a dataset folder at once, each naming its file. */
typedef struct UnetDatasetProblem {
    char *file;     /* path of the file (or folder) concerned */
    char *message;  /* what is wrong and what to do */
} UnetDatasetProblem;

typedef struct UnetDatasetReport {
    UnetDatasetProblem *problems;
    int count;
    int pairs;                 /* complete pairs (pages counted) */
    int images, masks;         /* image and mask files found */
    int binary, multiclass, instance; /* pairs read per applied mask mode */
} UnetDatasetReport;

/* Scans and reads every pair: missing partners, duplicate names, unreadable
 * or damaged files, size mismatches, masks with values the mode does not
 * allow, empty or missing folders. Returns UNET_OK when the check ran (the
 * problems are in report), an error only for bad options or lack of memory. */
UnetStatus unet_dataset_check(const char *path, const UnetDatasetOptions *opt, UnetDatasetReport *report,
                              UnetError *err);
UnetStatus unet_dataset_check_stacks(const char *images_tif, const char *labels_tif, const UnetDatasetOptions *opt,
                                     UnetDatasetReport *report, UnetError *err);
void unet_dataset_report_free(UnetDatasetReport *report);

#endif
