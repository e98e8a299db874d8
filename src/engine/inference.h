/* inference.h - whole-image prediction with the overlap-tile strategy, test-time
 * augmentation, label maps and overlays, and opening a checkpoint for it.
 *
 * unet_predict runs a model over an image of any size: the image is cut into
 * square tiles (tiling.h: output tiles laid edge to edge, each input tile the
 * output tile grown by its context, mirrored at the image edges), the network
 * runs on a batch of tiles at a time, and the probabilities of each tile's
 * valid part are written into the caller's map. Only the image, the map and a
 * few tiles are in memory at once, so an 8000 x 8000 image costs its input
 * and output maps plus a few tiles.
 *
 * Geometry per model (unet_predict_geometry):
 *   valid padding (unet): the tile is a valid input side, the context is the
 *     network's own border ((input - output) / 2) and nothing is cropped.
 *   same padding (unet without instance norm): output = input side; each
 *     tile's outer `margin` pixels are computed but dropped (zero padding at a
 *     tile edge would differ from the image), the default margin being the
 *     receptive-field radius rounded up to the pooling factor (112 for the
 *     paper's net with same padding). Tiles then meet seamlessly: the map
 *     equals one forward pass over the image mirrored by the margin.
 *   Default tile for both: the valid side up to 1.5 x the one nearest 572 (858
 *     for the paper's net, about twice the activation memory of 572) that
 *     computes the fewest input pixels in all (tiles x side^2): one 700-pixel
 *     tile for a 512 x 512 image, the smallest covering tile for a small
 *     image, the largest tiles for a huge one.
 *   instance norm (light, fcn, unet with instance norm): statistics are taken
 *     per tile, so the default is one tile over the whole image while its
 *     inference activations stay within 1 GiB; larger images are tiled with
 *     the valid side nearest 572 and a margin of an eighth of it.
 *
 * Test-time augmentation: the 8 dihedral transforms of each square tile (the
 * identity, three rotations and their mirror images) go through the network
 * and the probabilities are averaged after inverting each transform. */
#ifndef UNET_INFERENCE_H
#define UNET_INFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "error.h"
#include "image.h"
#include "model.h"

/* Called after every forward batch with work items (tile x transform) done
 * and the total; return nonzero to cancel (unet_predict then returns
 * UNET_ERR_CANCELLED). Also called once with done = 0 before any work. */
typedef int (*UnetPredictProgress)(long done, long total, void *user);

typedef struct UnetPredictOptions {
    int tile;      /* network input side; 0: the default above */
    int margin;    /* same-padding models: pixels dropped on each tile side; -1: default */
    int batch;     /* network inputs per forward; 0: 1 on CPU backends, 4 on CUDA */
    int tta;       /* 1: average the 8 dihedral transforms */
    UnetPredictProgress progress; /* may be NULL */
    void *progress_user;
} UnetPredictOptions;

/* tile 0, margin -1, batch 0, no TTA, no progress callback. */
void unet_predict_options_default(UnetPredictOptions *opt);

typedef struct UnetPredictGeometry {
    int tile_in;      /* network input side */
    int tile_out;     /* network output side */
    int margin;       /* dropped from each side of the network output */
    int stride;       /* tile_out - 2 * margin: the output tile laid on the image */
    int context;      /* (tile_in - stride) / 2: input pixels beyond the output tile per side */
    int tiles_x, tiles_y;
    int transforms;   /* 1, or 8 with TTA */
    int batch;        /* network inputs per forward */
    long forwards;    /* tiles * transforms: network inputs in all */
} UnetPredictGeometry;

/* The tiling unet_predict will use for a width x height image (be may be NULL:
 * the batch then defaults as on a CPU backend). A tile that is not a valid
 * input side, or a margin that leaves no output, is refused naming the
 * nearest valid sides. */
UnetStatus unet_predict_geometry(const UnetModelConfig *cfg, const UnetBackend *be, int width,
                                 int height, const UnetPredictOptions *opt, UnetPredictGeometry *g,
                                 UnetError *err);

/* Probabilities of a whole image. image_chw: the network input (already
 * normalised, see unet_image_to_input), channels x height x width, channels
 * equal to the model's in_channels. probs_out: classes x height x width,
 * written completely on success: sigmoid for 1 class, softmax over classes
 * for K. opt may be NULL (defaults). The model runs in inference mode (batch
 * norm uses its running statistics). */
UnetStatus unet_predict(UnetModel *m, const float *image_chw, int channels, int height, int width,
                        const UnetPredictOptions *opt, float *probs_out, UnetError *err);

/* labels[y * width + x] from probabilities [classes, height, width]: one class
 * gives 1 where p > threshold, else 0; K classes give the most probable class
 * (the lowest id on ties; threshold unused). */
void unet_probs_to_labels(const float *probs, int classes, int height, int width, float threshold,
                          int32_t *labels);

/* Colour of class id c >= 1 in overlays (a fixed table of distinct colours,
 * repeating after 12); id 0 is background and not drawn. */
void unet_class_color(int c, uint8_t rgb[3]);

/* Interleaved 8-bit RGB (height x width x 3) of the image with the labelled
 * pixels tinted: the image (1 channel grey, or its first 3 channels as RGB)
 * min-max scaled to 0..255, and every pixel with label c > 0 blended as
 * (1 - opacity) * image + opacity * colour(c). opacity in [0, 1]. */
UnetStatus unet_overlay_render(const float *image_chw, int channels, int height, int width,
                               const int32_t *labels, float opacity, uint8_t *rgb, UnetError *err);

/* ---- input normalisation stored with a checkpoint ------------------------- */
/* The checkpoint metadata key "normalization" holds the UnetInputSpec the model
 * was trained with, as JSON: {"intensity":"minmax","range_lo":0,"range_hi":255,
 * "color":"keep"} (the same keys as a run's config.json "data" object). */
#define UNET_META_NORMALIZATION "normalization"

/* JSON text of spec (malloc'd, caller frees); NULL when out of memory. */
char *unet_input_spec_to_json(const UnetInputSpec *spec);
/* Parses that text; keys not given keep the defaults, unknown keys are refused. */
UnetStatus unet_input_spec_from_json(UnetInputSpec *spec, const char *json, UnetError *err);

/* The spec of a checkpoint's metadata: "normalization", or else the "data"
 * object of "training_config" (its intensity/range/colour keys). *found is 0
 * and spec the default when neither is present. */
UnetStatus unet_input_spec_from_meta(const UnetCheckpointMeta *meta, UnetInputSpec *spec,
                                     int *found, UnetError *err);

/* Builds the model stored in path on be and loads its weights: config from
 * the file, then unet_checkpoint_load. input (may be NULL) gets its input
 * spec and *input_found (may be NULL) whether the file stored one; meta (may
 * be NULL) all metadata (free with unet_checkpoint_meta_free). */
UnetStatus unet_checkpoint_open_model(const char *path, UnetBackend *be, UnetModel **model,
                                      UnetInputSpec *input, int *input_found,
                                      UnetCheckpointMeta *meta, UnetError *err);

#endif
