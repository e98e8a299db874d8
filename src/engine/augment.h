/* augment.h - data augmentation for segmentation: a pipeline of random transforms
 * that moves an image, its label mask and (optionally) its weight map together.
 *
 * Two steps, so that what training sees can be shown, logged and replayed:
 *   unet_augment_sample(): (config, seed, input size) -> UnetAugmentRecord, every
 *       random choice made (which transforms run, angles, scales, noise variances,
 *       per-step seeds of the per-pixel random fields);
 *   unet_augment_apply(): (record, image, mask, weight) -> outputs, a pure function.
 * The same (config, seed, size) always gives the same record and the same pixels.
 *
 * Geometry: pixel centres are at integer coordinates; every geometric transform
 * says, for each output pixel, where in its input to sample. Images and weight
 * maps are sampled bilinearly, masks by nearest neighbour, and samples outside
 * the input are reflected (OpenCV's BORDER_REFLECT_101: dcb|abcd|cba), so masks
 * only ever hold labels of their input. Images are planar (channel planes of
 * width*height floats, NCHW without N); values are expected in
 * [0, intensity_max], and noise variances are given on a 0..255 scale of it.
 *
 * Transforms (albumentations names and semantics unless said otherwise):
 *   hflip, vflip, transpose, rotate90 (k quarter turns counter-clockwise, k
 *     uniform in 0..3, like np.rot90);
 *   shift_scale_rotate: angle U(-rotate, rotate) degrees about the image centre,
 *     scale 1 + U(-scale, scale), shift U(-shift, shift) * size;
 *   gauss_noise: variance U(var_min, var_max) on a 0..255 scale, per channel;
 *   multiplicative_noise: each pixel times U(mult_min, mult_max), shared by
 *     the channels unless per_channel;
 *   elastic: albumentations' ElasticTransform: a random affine map that moves
 *     three points around the centre by U(-alpha_affine, alpha_affine) px, then
 *     a displacement field alpha * blur(U(-1, 1), sigma) per axis. blur
 *     "gaussian": exact separable Gaussian, radius round(4 sigma), reflected
 *     borders, as scipy.ndimage.gaussian_filter (2.5x slower); "box" (default):
 *     three running-sum boxes of about the same sigma (Kovesi 2010) on noise
 *     grown by their reach, scaled so the field has the Gaussian field's
 *     variance - same displacement statistics (test-augment checks sd and
 *     smoothness against "gaussian"), O(1) per pixel. Unlike albumentations
 *     the affine map and the field are composed and the image is resampled
 *     once, not twice;
 *   grid_elastic: the U-Net paper's: a grid x grid array of random displacement
 *     vectors (normal, sd grid_sd px) spanning the image, interpolated to every
 *     pixel by bicubic convolution (Keys, a = -0.5, linear extrapolation past the
 *     outer points);
 *   brightness_contrast: out = (1 + U(-contrast, contrast)) * in
 *     + U(-brightness, brightness) * intensity_max, no clipping;
 *   pad_if_needed: reflect-pad to at least min_width x min_height, centred.
 *
 * Default pipeline (the seed notebook's): one_of(hflip, vflip, transpose,
 * rotate90) p 0.5; shift_scale_rotate(0.0625, 0.1, 45) p 0.5; gauss_noise(0..20)
 * p 0.5; multiplicative_noise(0.9..1.1) p 0.5; elastic(alpha 35, sigma 5,
 * alpha_affine 3) p 0.5; brightness_contrast(0.15, 0.15) p 0.5;
 * pad_if_needed(572, 572) p 1. unet_augment_config_paper() gives the paper's:
 * one_of(flips, transpose, rotate90) p 0.5 and grid_elastic(3, 10 px) p 1. */
#ifndef UNET_AUGMENT_H
#define UNET_AUGMENT_H

#include <stdint.h>

#include "error.h"
#include "scratch.h"

typedef enum UnetAugmentKind {
    UNET_AUG_HFLIP = 0,
    UNET_AUG_VFLIP,
    UNET_AUG_TRANSPOSE,
    UNET_AUG_ROTATE90,
    UNET_AUG_SHIFT_SCALE_ROTATE,
    UNET_AUG_GAUSS_NOISE,
    UNET_AUG_MULT_NOISE,
    UNET_AUG_ELASTIC,
    UNET_AUG_GRID_ELASTIC,
    UNET_AUG_BRIGHTNESS_CONTRAST,
    UNET_AUG_PAD_IF_NEEDED,
    UNET_AUG_KIND_COUNT
} UnetAugmentKind;

#define UNET_AUGMENT_MAX_STAGES 16
#define UNET_AUGMENT_MAX_CHOICES 8
#define UNET_AUGMENT_MAX_GRID 9
#define UNET_AUGMENT_MAX_SIDE 16384

/* How elastic blurs its random fields. */
typedef enum UnetBlur {
    UNET_BLUR_GAUSSIAN = 0, /* exact FIR Gaussian, radius round(4 sigma), as scipy */
    UNET_BLUR_BOX,          /* three running-sum boxes (Kovesi) of about the same sigma,
                             * on a grown field, scaled to the Gaussian field's variance */
} UnetBlur;

/* One transform and its parameters (only those of its kind are used). */
typedef struct UnetAugmentOp {
    UnetAugmentKind kind;
    float weight;                     /* inside one_of: relative chance of being picked */
    float shift, scale, rotate;       /* shift_scale_rotate: fraction, fraction, degrees */
    float var_min, var_max;           /* gauss_noise: variance on a 0..255 scale */
    float mult_min, mult_max;         /* multiplicative_noise */
    int per_channel;                  /* gauss_noise (default 1), multiplicative_noise (0) */
    float alpha, sigma, alpha_affine; /* elastic */
    UnetBlur blur;                    /* elastic: field blur (default box) */
    int grid;                         /* grid_elastic: control points per side, 2..9 */
    float grid_sd;                    /* grid_elastic: displacement sd in pixels */
    float brightness, contrast;       /* brightness_contrast */
    int min_width, min_height;        /* pad_if_needed */
} UnetAugmentOp;

/* One entry of the pipeline: runs with probability p; with count > 1 it is a
 * one_of group that picks one of ops[] (chance proportional to weight). */
typedef struct UnetAugmentStage {
    float p;
    int count;
    UnetAugmentOp ops[UNET_AUGMENT_MAX_CHOICES];
} UnetAugmentStage;

typedef struct UnetAugmentConfig {
    float intensity_max; /* images lie in [0, intensity_max]; 1 */
    int count;
    UnetAugmentStage stages[UNET_AUGMENT_MAX_STAGES];
} UnetAugmentConfig;

/* One transform as sampled: everything needed to apply it again. */
typedef struct UnetAugmentStep {
    UnetAugmentKind kind;
    int stage;                     /* index of the pipeline stage it came from */
    int in_w, in_h, out_w, out_h;
    UnetAugmentOp op;              /* the parameters it was sampled with */
    uint64_t seed;                 /* per-pixel random fields (noise, elastic) */
    int k;                         /* rotate90: quarter turns counter-clockwise */
    double angle, scale, dx, dy;   /* shift_scale_rotate: degrees, factor, pixels */
    double affine[6];              /* source = [a b c; d e f] (x, y, 1): shift_scale_rotate, elastic */
    float var;                     /* gauss_noise: variance (0..255 scale) */
    float alpha, beta;             /* brightness_contrast: out = alpha * in + beta * intensity_max */
    int pad_top, pad_bottom, pad_left, pad_right;
    float grid_dx[UNET_AUGMENT_MAX_GRID * UNET_AUGMENT_MAX_GRID]; /* grid_elastic, row-major */
    float grid_dy[UNET_AUGMENT_MAX_GRID * UNET_AUGMENT_MAX_GRID];
} UnetAugmentStep;

typedef struct UnetAugmentRecord {
    uint64_t seed;
    int in_w, in_h, out_w, out_h;
    float intensity_max;
    int count; /* steps that run, in order */
    UnetAugmentStep steps[UNET_AUGMENT_MAX_STAGES];
} UnetAugmentRecord;

const char *unet_augment_kind_name(UnetAugmentKind kind);
UnetStatus unet_augment_kind_parse(const char *name, UnetAugmentKind *out, UnetError *err);

/* An op of this kind with the default parameters above. */
void unet_augment_op_default(UnetAugmentOp *op, UnetAugmentKind kind);
void unet_augment_config_default(UnetAugmentConfig *cfg);
void unet_augment_config_paper(UnetAugmentConfig *cfg);
/* Parameter ranges; the message names the stage and key. */
UnetStatus unet_augment_config_validate(const UnetAugmentConfig *cfg, UnetError *err);

/* JSON form (augment-config.c):
 *   {"intensity_max": 1, "transforms": [
 *      {"one_of": [{"type": "hflip"}, {"type": "vflip", "weight": 2}], "p": 0.5},
 *      {"type": "shift_scale_rotate", "p": 0.5, "shift": 0.0625, "scale": 0.1, "rotate": 45},
 *      ...]}
 * Keys a transform leaves out keep their defaults; unknown keys are errors,
 * and every error names the offending key ("transforms[1].shift: ..."). */
UnetStatus unet_augment_config_from_json(UnetAugmentConfig *cfg, const char *json, UnetError *err);
UnetStatus unet_augment_config_load(UnetAugmentConfig *cfg, const char *path, UnetError *err);
char *unet_augment_config_to_json(const UnetAugmentConfig *cfg); /* caller frees */
char *unet_augment_record_to_json(const UnetAugmentRecord *rec); /* caller frees */

/* Draws every random choice for an input of width x height from seed. */
UnetStatus unet_augment_sample(UnetAugmentRecord *rec, const UnetAugmentConfig *cfg, uint64_t seed,
                               int width, int height, UnetError *err);

/* Applies rec to an input of rec->in_w x rec->in_h. image (channels planes),
 * mask and weight may each be NULL (then their output is too); outputs are
 * rec->out_w x rec->out_h and must not overlap the inputs. scratch: NULL, or
 * kept by the caller between calls to save the allocations. */
UnetStatus unet_augment_apply(const UnetAugmentRecord *rec, const float *image, int channels,
                              const int32_t *mask, const float *weight, float *image_out,
                              int32_t *mask_out, float *weight_out, UnetScratch *scratch,
                              UnetError *err);

/* For display: for each output pixel, the input coordinates it was sampled
 * from through all geometric steps (after border reflection), so
 * (sx - x, sy - y) is the displacement field when sizes agree. */
UnetStatus unet_augment_source_coords(const UnetAugmentRecord *rec, float *sx, float *sy,
                                      UnetError *err);

#endif
