/* image.h - images and label maps in memory, their PNG/TIFF/.npy files, and
 * the conversion of an image into network input.
 *
 * A UnetImage holds the values the file stored, as float32 in planar CHW
 * order, with no scaling: an 8-bit PNG gives 0..255, a 16-bit TIFF 0..65535,
 * a float TIFF its floats. unet_image_to_input() then normalises. Masks are
 * read into UnetLabels (int32 ids) and are never normalised. */
#ifndef UNET_IMAGE_H
#define UNET_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum UnetImageFormat {
    UNET_IMAGE_FORMAT_NONE = 0, /* made in memory */
    UNET_IMAGE_FORMAT_PNG,
    UNET_IMAGE_FORMAT_TIFF,
    UNET_IMAGE_FORMAT_NPY,
} UnetImageFormat;

typedef enum UnetSampleType {
    UNET_SAMPLE_UINT = 0,
    UNET_SAMPLE_INT,
    UNET_SAMPLE_FLOAT,
} UnetSampleType;

typedef struct UnetImage {
    int width, height, channels;
    float *data;             /* data[(c * height + y) * width + x] */
    /* What the file held. */
    UnetImageFormat format;
    UnetSampleType sample_type;
    int bit_depth;           /* bits per stored sample (PNG 1..16, TIFF 1..64; palette: index bits) */
    int has_alpha;           /* the last channel is alpha */
    int palette;             /* palette file (expanded to RGB/RGBA, or indices for masks) */
    float max_value;         /* largest value the samples can take (255, 65535...); 0 for floats */
    int page, pages;         /* TIFF page read (0-based) and the file's page count; 0, 1 otherwise */
} UnetImage;

/* Integer label map: a mask's raw values, or class ids / instance ids. */
typedef struct UnetLabels {
    int width, height;
    int32_t *data;           /* data[y * width + x] */
} UnetLabels;

/* Zero-filled image of the given size (format NONE, float samples). */
UnetStatus unet_image_alloc(UnetImage *img, int width, int height, int channels, UnetError *err);
void unet_image_free(UnetImage *img);
UnetStatus unet_labels_alloc(UnetLabels *lab, int width, int height, UnetError *err);
void unet_labels_free(UnetLabels *lab);

/* Format from the file's first bytes (not its name); NONE when unknown. */
UnetImageFormat unet_image_sniff(const char *path);
const char *unet_image_format_name(UnetImageFormat f);

/* Loads a PNG, TIFF (page 0) or .npy file, chosen by content.
 *  PNG: 1..16-bit grey, grey+alpha, RGB, RGBA; palette expanded to RGB (RGBA
 *       when it has transparency). Grey below 8 bits keeps its values (0..2^b-1).
 *  TIFF: 1, 8, 16, 32-bit unsigned or signed integers, 32/64-bit floats; grey
 *       (min-is-black, min-is-white inverted), RGB(A), palette; strips or tiles,
 *       contiguous or planar; any compression libtiff was built with. Other
 *       layouts are refused with a message naming the file and the layout.
 *  .npy: [H,W], [C,H,W] or [H,W,C] with C <= 4 (the shorter of the first and
 *       last axis is the channel axis, [C,H,W] on a tie); any integer or float
 *       dtype, little-endian, C order. */
UnetStatus unet_image_load(const char *path, UnetImage *img, UnetError *err);

/* Same for one page of a multi-page TIFF (page 0 for other formats). */
UnetStatus unet_image_load_page(const char *path, int page, UnetImage *img, UnetError *err);

/* The same for a file already in memory (PNG, TIFF or .npy bytes; the buffer
 * is read, not kept); name stands for the file in messages. */
UnetStatus unet_image_load_memory(const void *bytes, size_t size, const char *name, int page, UnetImage *img,
                                  UnetError *err);

/* Number of pages (TIFF directories); 1 for PNG and .npy. */
UnetStatus unet_image_page_count(const char *path, int *pages, UnetError *err);

/* Loads a mask as integer labels: palette PNG/TIFF give their indices, RGB
 * masks must have R = G = B, alpha is dropped, float values must be whole
 * numbers >= 0. */
UnetStatus unet_labels_load(const char *path, int page, UnetLabels *lab, UnetError *err);

/* unet_labels_load for a file's bytes in memory; name stands for the file. */
UnetStatus unet_labels_load_memory(const void *bytes, size_t size, const char *name, int page, UnetLabels *lab,
                                   UnetError *err);

/* The same check and conversion for an image already in memory; name is used
 * in messages. */
UnetStatus unet_labels_from_image(const UnetImage *img, const char *name, UnetLabels *lab, UnetError *err);

/* Writes interleaved samples as PNG: channels 1 grey, 2 grey+alpha, 3 RGB,
 * 4 RGBA; bit_depth 8 (uint8_t samples) or 16 (uint16_t, host order). */
UnetStatus unet_png_save(const char *path, const void *pixels, int width, int height,
                         int channels, int bit_depth, UnetError *err);

/* Writes a UnetImage (1..4 channels) as 8- or 16-bit PNG: values are rounded
 * and clamped to 0..255 or 0..65535, no scaling. */
UnetStatus unet_image_save_png(const char *path, const UnetImage *img, int bit_depth, UnetError *err);

/* Writes labels as grey PNG: 8-bit when all ids fit, else 16-bit; ids must lie
 * in 0..65535. */
UnetStatus unet_labels_save_png(const char *path, const UnetLabels *lab, UnetError *err);

#define UNET_NPY_MAX_DIMS 4

/* float32 little-endian .npy (format 1.0), C order; ndim 1..4. */
UnetStatus unet_npy_save(const char *path, const float *data, int ndim, const int *shape, UnetError *err);

/* Reads any integer/float dtype into float32; *data is malloc'ed. */
UnetStatus unet_npy_load(const char *path, float **data, int *ndim, int shape[UNET_NPY_MAX_DIMS], UnetError *err);

/* Shape [H,W] for one channel, [C,H,W] otherwise. */
UnetStatus unet_image_save_npy(const char *path, const UnetImage *img, UnetError *err);

/* ---- Conversion to network input ---- */

typedef enum UnetIntensity {
    UNET_INTENSITY_MINMAX = 0, /* (x - min) / (max - min) over the whole image, all channels */
    UNET_INTENSITY_ZSCORE,     /* (x - mean) / std over the whole image */
    UNET_INTENSITY_RANGE,      /* (x - lo) / (hi - lo), clamped to [0,1] */
    UNET_INTENSITY_NONE,       /* values as stored */
} UnetIntensity;

typedef enum UnetColor {
    UNET_COLOR_KEEP = 0, /* grey stays 1 channel, colour stays 3 */
    UNET_COLOR_GREY,     /* colour becomes luminance 0.299 R + 0.587 G + 0.114 B */
    UNET_COLOR_RGB,      /* grey is repeated into 3 channels */
} UnetColor;

typedef struct UnetInputSpec {
    UnetIntensity intensity;
    float range_lo, range_hi; /* for UNET_INTENSITY_RANGE */
    UnetColor color;
} UnetInputSpec;

/* min-max, colour kept, range [0,255]. */
void unet_input_spec_default(UnetInputSpec *spec);

/* Channels unet_image_to_input will produce for an image with these channels
 * (alpha counted in src_channels when has_alpha). */
int unet_input_channels(int src_channels, int has_alpha, const UnetInputSpec *spec);

/* dst = src with alpha dropped, colour converted and intensities normalised.
 * A constant image normalises to 0. dst is allocated (and must not be src). */
UnetStatus unet_image_to_input(const UnetImage *src, const UnetInputSpec *spec, UnetImage *dst, UnetError *err);

/* Name tables: "minmax", "zscore", "range", "none"; "keep", "grey" (or "gray"), "rgb". */
const char *unet_intensity_name(UnetIntensity i);
const char *unet_color_name(UnetColor c);
UnetStatus unet_intensity_parse(const char *s, UnetIntensity *out, UnetError *err);
UnetStatus unet_color_parse(const char *s, UnetColor *out, UnetError *err);

#endif
