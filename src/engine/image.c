/* image.c - PNG (libpng), TIFF (libtiff) and .npy reading and writing, label
 * maps, and the conversion of images into normalised network input. */
#include "image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <tiffio.h>

#include "fileutil.h"

/* Images larger than this many samples are refused rather than attempted. */
#define MAX_SAMPLES ((size_t)1 << 31)

static UnetStatus check_size(const char *path, long long w, long long h, long long c, UnetError *err)
{
    if (w <= 0 || h <= 0 || c <= 0)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: image has an empty size (%lld x %lld, %lld channels)",
                              path, w, h, c);
    if ((unsigned long long)w * (unsigned long long)h * (unsigned long long)c > MAX_SAMPLES)
        return unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s: image of %lld x %lld x %lld samples is too large "
                              "(at most 2^31 samples); crop or tile it first", path, w, h, c);
    return UNET_OK;
}

UnetStatus unet_image_alloc(UnetImage *img, int width, int height, int channels, UnetError *err)
{
    memset(img, 0, sizeof *img);
    UnetStatus st = check_size("image", width, height, channels, err);
    if (st)
        return st;
    img->data = calloc((size_t)width * height * channels, sizeof(float));
    if (!img->data)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for a %d x %d x %d image", width, height, channels);
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->sample_type = UNET_SAMPLE_FLOAT;
    img->bit_depth = 32;
    img->pages = 1;
    return UNET_OK;
}

void unet_image_free(UnetImage *img)
{
    if (img) {
        free(img->data);
        memset(img, 0, sizeof *img);
    }
}

UnetStatus unet_labels_alloc(UnetLabels *lab, int width, int height, UnetError *err)
{
    memset(lab, 0, sizeof *lab);
    UnetStatus st = check_size("label map", width, height, 1, err);
    if (st)
        return st;
    lab->data = calloc((size_t)width * height, sizeof(int32_t));
    if (!lab->data)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for a %d x %d label map", width, height);
    lab->width = width;
    lab->height = height;
    return UNET_OK;
}

void unet_labels_free(UnetLabels *lab)
{
    if (lab) {
        free(lab->data);
        memset(lab, 0, sizeof *lab);
    }
}

/* ---- Format detection ---- */

static int read_head(const char *path, unsigned char *head, int n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int got = (int)fread(head, 1, (size_t)n, f);
    fclose(f);
    return got;
}

static UnetImageFormat sniff_bytes(const unsigned char *h, int n)
{
    static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a };
    if (n >= 8 && !memcmp(h, png_sig, 8))
        return UNET_IMAGE_FORMAT_PNG;
    if (n >= 4 && ((h[0] == 'I' && h[1] == 'I' && (h[2] == 42 || h[2] == 43) && h[3] == 0) ||
                   (h[0] == 'M' && h[1] == 'M' && h[2] == 0 && (h[3] == 42 || h[3] == 43))))
        return UNET_IMAGE_FORMAT_TIFF;
    if (n >= 6 && !memcmp(h, "\x93NUMPY", 6))
        return UNET_IMAGE_FORMAT_NPY;
    return UNET_IMAGE_FORMAT_NONE;
}

UnetImageFormat unet_image_sniff(const char *path)
{
    unsigned char h[8];
    int n = read_head(path, h, 8);
    return n > 0 ? sniff_bytes(h, n) : UNET_IMAGE_FORMAT_NONE;
}

const char *unet_image_format_name(UnetImageFormat f)
{
    switch (f) {
    case UNET_IMAGE_FORMAT_PNG: return "PNG";
    case UNET_IMAGE_FORMAT_TIFF: return "TIFF";
    case UNET_IMAGE_FORMAT_NPY: return "NPY";
    case UNET_IMAGE_FORMAT_NONE: break;
    }
    return "none";
}

/* A file's bytes when they are already in memory (mem != NULL), else only
 * its name; path names it in messages either way. */
typedef struct ImageSource {
    const char *path;
    const unsigned char *mem;
    size_t size;
} ImageSource;

/* Opens path's head and names what it is when it is no image we read. */
static UnetStatus detect(const ImageSource *src, UnetImageFormat *fmt, UnetError *err)
{
    const char *path = src->path;
    unsigned char h[8];
    int n;
    if (src->mem) {
        n = (int)(src->size < sizeof h ? src->size : sizeof h);
        memcpy(h, src->mem, (size_t)n);
    } else {
        /* a folder reads as empty and a FIFO would block: say what it is */
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            return unet_error_set(err, UNET_ERR_IO, "%s is a folder, not an image file", path);
        if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
            return unet_error_set(err, UNET_ERR_IO, "%s is not a regular file (a device, pipe or socket); give "
                                  "an image file", path);
        FILE *f = fopen(path, "rb");
        if (!f)
            return unet_error_set(err, UNET_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        n = (int)fread(h, 1, sizeof h, f);
        fclose(f);
    }
    if (n <= 0)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s is empty (0 bytes); replace it with a PNG or TIFF image", path);
    *fmt = sniff_bytes(h, n);
    if (*fmt != UNET_IMAGE_FORMAT_NONE)
        return UNET_OK;
    if (n >= 3 && h[0] == 0xff && h[1] == 0xd8 && h[2] == 0xff)
        return unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s is a JPEG file; JPEG is not supported (its lossy "
                              "compression alters masks); convert it to PNG or TIFF", path);
    return unet_error_set(err, UNET_ERR_FORMAT, "%s is not a PNG, TIFF or .npy image (unrecognised content); "
                          "the file is damaged or in another format", path);
}

/* ---- PNG reading ---- */

typedef struct PngRead {
    FILE *f;
    size_t file_size;   /* bytes of the whole file; 0 when unknown */
    int expand_palette;
    png_structp png;
    png_infop info;
    unsigned char *pixels;
    png_bytep *rows;
    /* geometry after transforms */
    png_uint_32 width, height;
    int bit_depth, color_type, channels, out_depth, has_trns;
    size_t rowbytes;
    int nomem;
    char message[400];
    char warning[200];
} PngRead;

static void png_read_error_cb(png_structp png, png_const_charp msg)
{
    PngRead *r = png_get_error_ptr(png);
    snprintf(r->message, sizeof r->message, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
    PngRead *r = png_get_error_ptr(png);
    if (!r->warning[0])
        snprintf(r->warning, sizeof r->warning, "%s", msg);
}

/* The only function with setjmp: everything it allocates lives in r. */
static int png_decode(PngRead *r)
{
    if (setjmp(png_jmpbuf(r->png)))
        return -1;
    png_init_io(r->png, r->f);
    png_read_info(r->png, r->info);
    int interlace;
    png_get_IHDR(r->png, r->info, &r->width, &r->height, &r->bit_depth, &r->color_type, &interlace, NULL, NULL);
    r->has_trns = png_get_valid(r->png, r->info, PNG_INFO_tRNS) != 0;
    /* deflate packs at most 1032 bytes into one, so a header that declares
     * more pixel bytes than that allows is damaged or hostile: refuse it
     * before allocating for it. */
    double stored = (double)png_get_rowbytes(r->png, r->info) * r->height;
    if (r->file_size && stored > 1032.0 * (double)r->file_size + 4096.0) {
        snprintf(r->message, sizeof r->message, "the header declares %u x %u pixels (%.0f MB of samples) but "
                 "the file holds only %zu bytes, more than deflate can pack into it", (unsigned)r->width,
                 (unsigned)r->height, stored / 1e6, r->file_size);
        return -1;
    }
    if (r->color_type == PNG_COLOR_TYPE_PALETTE) {
        if (r->expand_palette) {
            png_set_palette_to_rgb(r->png);
            if (r->has_trns)
                png_set_tRNS_to_alpha(r->png);
        } else {
            png_set_packing(r->png);
        }
    } else if (r->bit_depth < 8) {
        png_set_packing(r->png); /* keep 0..2^b-1, no scaling */
    }
    if (interlace != PNG_INTERLACE_NONE)
        png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    r->channels = png_get_channels(r->png, r->info);
    r->out_depth = png_get_bit_depth(r->png, r->info);
    r->rowbytes = png_get_rowbytes(r->png, r->info);
    if (r->rowbytes != (size_t)r->width * r->channels * (r->out_depth / 8)) {
        snprintf(r->message, sizeof r->message, "unexpected row layout after decoding");
        return -1;
    }
    if ((size_t)r->width * r->height * r->channels > MAX_SAMPLES) {
        snprintf(r->message, sizeof r->message, "image of %u x %u is too large", (unsigned)r->width,
                 (unsigned)r->height);
        return -1;
    }
    r->pixels = malloc(r->rowbytes * r->height);
    r->rows = malloc(sizeof(png_bytep) * r->height);
    if (!r->pixels || !r->rows) {
        r->nomem = 1;
        return -1;
    }
    for (png_uint_32 y = 0; y < r->height; y++)
        r->rows[y] = r->pixels + (size_t)y * r->rowbytes;
    png_read_image(r->png, r->rows);
    png_read_end(r->png, NULL);
    return 0;
}

static UnetStatus load_png(const ImageSource *src, int expand_palette, UnetImage *img, UnetError *err)
{
    const char *path = src->path;
    PngRead r;
    memset(&r, 0, sizeof r);
    r.expand_palette = expand_palette;
    if (src->mem) {
        r.f = fmemopen((void *)src->mem, src->size, "rb");
        r.file_size = src->size;
    } else {
        r.f = fopen(path, "rb");
        struct stat sb;
        if (r.f && fstat(fileno(r.f), &sb) == 0 && S_ISREG(sb.st_mode))
            r.file_size = (size_t)sb.st_size;
    }
    if (!r.f)
        return unet_error_set(err, UNET_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_read_error_cb, png_warning_cb);
    if (r.png)
        r.info = png_create_info_struct(r.png);
    int rc = (r.png && r.info) ? png_decode(&r) : -1;
    if (!r.png || !r.info)
        r.nomem = 1;
    int at_eof = feof(r.f);
    png_destroy_read_struct(&r.png, &r.info, NULL);
    fclose(r.f);
    free(r.rows);
    if (rc != 0) {
        free(r.pixels);
        if (r.nomem)
            return unet_error_set(err, UNET_ERR_NOMEM, "out of memory reading %s", path);
        if (at_eof)
            return unet_error_set(err, UNET_ERR_FORMAT, "cannot read PNG %s: the file ends early (truncated "
                                  "download or copy?); libpng says: %s", path, r.message);
        return unet_error_set(err, UNET_ERR_FORMAT, "cannot read PNG %s: %s (the file is damaged)%s%s", path,
                              r.message, r.warning[0] ? "; warning: " : "", r.warning);
    }
    UnetStatus st = unet_image_alloc(img, (int)r.width, (int)r.height, r.channels, err);
    if (st) {
        free(r.pixels);
        return unet_error_prefix(err, "%s: ", path);
    }
    size_t plane = (size_t)r.width * r.height;
    for (png_uint_32 y = 0; y < r.height; y++) {
        const unsigned char *row = r.pixels + (size_t)y * r.rowbytes;
        for (png_uint_32 x = 0; x < r.width; x++) {
            for (int c = 0; c < r.channels; c++) {
                size_t k = (size_t)x * r.channels + c;
                float v = r.out_depth == 16 ? (float)((row[2 * k] << 8) | row[2 * k + 1]) : (float)row[k];
                img->data[c * plane + (size_t)y * r.width + x] = v;
            }
        }
    }
    free(r.pixels);
    int palette = r.color_type == PNG_COLOR_TYPE_PALETTE;
    img->format = UNET_IMAGE_FORMAT_PNG;
    img->sample_type = UNET_SAMPLE_UINT;
    img->bit_depth = r.bit_depth;
    img->palette = palette;
    img->has_alpha = (r.color_type & PNG_COLOR_MASK_ALPHA) || (palette && expand_palette && r.has_trns);
    img->max_value = (palette && expand_palette) ? 255.0f : (float)((1u << r.bit_depth) - 1u);
    img->page = 0;
    img->pages = 1;
    return UNET_OK;
}

/* ---- TIFF reading ---- */

typedef struct TiffMsg {
    char error[400];
    char warning[200];
    uint64_t file_size; /* 0 when unknown */
} TiffMsg;

static int tiff_error_cb(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    TiffMsg *m = user;
    if (m && !m->error[0])
        vsnprintf(m->error, sizeof m->error, fmt, ap);
    return 1; /* handled: libtiff must not print it */
}

static int tiff_warning_cb(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    TiffMsg *m = user;
    if (m && !m->warning[0])
        vsnprintf(m->warning, sizeof m->warning, fmt, ap);
    return 1;
}

/* Messages libtiff raises before a handle exists go to the global handlers;
 * libunet never prints, so those are switched off once. */
static pthread_once_t tiff_once = PTHREAD_ONCE_INIT;
static void tiff_silence(void)
{
    TIFFSetErrorHandler(NULL);
    TIFFSetWarningHandler(NULL);
}

/* A read-only file in memory for TIFFClientOpenExt. */
typedef struct TiffMem {
    const unsigned char *data;
    size_t size, pos;
} TiffMem;

static tmsize_t tiff_mem_read(thandle_t h, void *buf, tmsize_t n)
{
    TiffMem *m = h;
    if (n <= 0 || m->pos >= m->size)
        return 0;
    size_t k = (size_t)n < m->size - m->pos ? (size_t)n : m->size - m->pos;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}

static tmsize_t tiff_mem_write(thandle_t h, void *buf, tmsize_t n)
{
    errno = EBADF;
    return -1;
}

static toff_t tiff_mem_seek(thandle_t h, toff_t off, int whence)
{
    TiffMem *m = h;
    uint64_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->size : 0;
    uint64_t to = base + off; /* libtiff passes negative offsets as wrapped toff_t */
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) {
        errno = EINVAL;
        return (toff_t)-1;
    }
    m->pos = (size_t)to;
    return to;
}

static int tiff_mem_close(thandle_t h) { return 0; }
static toff_t tiff_mem_size(thandle_t h) { return ((TiffMem *)h)->size; }
static int tiff_mem_map(thandle_t h, void **base, toff_t *size) { return 0; }
static void tiff_mem_unmap(thandle_t h, void *base, toff_t size) {}

/* mem: NULL to open path, else the file's bytes (path names it). */
static TIFF *tiff_open(const char *path, TiffMem *mem, TiffMsg *m, UnetError *err)
{
    pthread_once(&tiff_once, tiff_silence);
    memset(m, 0, sizeof *m);
    if (!mem) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            unet_error_set(err, UNET_ERR_IO, "cannot open %s: %s", path, strerror(errno));
            return NULL;
        }
        fclose(f);
    }
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!o) {
        unet_error_set(err, UNET_ERR_NOMEM, "out of memory opening %s", path);
        return NULL;
    }
    TIFFOpenOptionsSetErrorHandlerExtR(o, tiff_error_cb, m);
    TIFFOpenOptionsSetWarningHandlerExtR(o, tiff_warning_cb, m);
    TIFF *t = mem ? TIFFClientOpenExt(path, "rm", mem, tiff_mem_read, tiff_mem_write, tiff_mem_seek,
                                      tiff_mem_close, tiff_mem_size, tiff_mem_map, tiff_mem_unmap, o)
                  : TIFFOpenExt(path, "r", o);
    TIFFOpenOptionsFree(o);
    if (!t)
        unet_error_set(err, UNET_ERR_FORMAT, "cannot read TIFF %s: %s (the file is damaged or not a TIFF)", path,
                       m->error[0] ? m->error : "libtiff could not open it");
    return t;
}

static const char *photometric_name(int p)
{
    switch (p) {
    case PHOTOMETRIC_MINISWHITE: return "grey (min-is-white)";
    case PHOTOMETRIC_MINISBLACK: return "grey";
    case PHOTOMETRIC_RGB: return "RGB";
    case PHOTOMETRIC_PALETTE: return "palette";
    case PHOTOMETRIC_MASK: return "transparency mask";
    case PHOTOMETRIC_SEPARATED: return "CMYK (separated)";
    case PHOTOMETRIC_YCBCR: return "YCbCr";
    case PHOTOMETRIC_CIELAB: return "CIE L*a*b*";
    case PHOTOMETRIC_ICCLAB: return "ICC L*a*b*";
    case PHOTOMETRIC_ITULAB: return "ITU L*a*b*";
    case PHOTOMETRIC_LOGL: return "LogL";
    case PHOTOMETRIC_LOGLUV: return "LogLuv";
    default: return "unknown colour layout";
    }
}

static const char *sample_format_name(int f)
{
    switch (f) {
    case SAMPLEFORMAT_UINT: return "unsigned";
    case SAMPLEFORMAT_INT: return "signed";
    case SAMPLEFORMAT_IEEEFP: return "float";
    case SAMPLEFORMAT_VOID: return "untyped";
    case SAMPLEFORMAT_COMPLEXINT: return "complex integer";
    case SAMPLEFORMAT_COMPLEXIEEEFP: return "complex float";
    default: return "unknown-type";
    }
}

static inline double tiff_fetch(const unsigned char *row, size_t k, int bits, int fmt)
{
    switch (bits) {
    case 1:
        return (row[k >> 3] >> (7 - (k & 7))) & 1;
    case 8:
        return fmt == SAMPLEFORMAT_INT ? (double)(int8_t)row[k] : (double)row[k];
    case 16: {
        uint16_t v;
        memcpy(&v, row + 2 * k, 2);
        return fmt == SAMPLEFORMAT_INT ? (double)(int16_t)v : (double)v;
    }
    case 32: {
        uint32_t v;
        memcpy(&v, row + 4 * k, 4);
        if (fmt == SAMPLEFORMAT_IEEEFP) {
            float f;
            memcpy(&f, &v, 4);
            return f;
        }
        return fmt == SAMPLEFORMAT_INT ? (double)(int32_t)v : (double)v;
    }
    case 64: {
        double d;
        memcpy(&d, row + 8 * k, 8);
        return d;
    }
    }
    return 0.0;
}

/* A damaged or hostile header can declare a huge image in a few bytes. Before
 * allocating for it, check that the file can hold that many pixels: at least
 * one strip entry per strip, and no more decoded bytes than the codec can
 * pack into the stored ones (codecs without a known bound are not checked). */
static UnetStatus tiff_check_plausible(TIFF *tif, const char *path, int page, uint32_t w, uint32_t h, int spp,
                                       int bits, int comp, int tiled, uint64_t file_size, UnetError *err)
{
    /* The decoding buffer holds one row or one tile. */
    if (tiled) {
        uint32_t tw = 0, th = 0;
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
        if (tw == 0 || th == 0 || (double)tw * th > 4.0 * w * h + (double)(1 << 20))
            return unet_error_set(err, UNET_ERR_FORMAT, "%s (page %d): tiles of %u x %u pixels for a %u x %u "
                                  "image; the file is damaged", path, page + 1, (unsigned)tw, (unsigned)th,
                                  (unsigned)w, (unsigned)h);
    }
    tmsize_t block = tiled ? TIFFTileSize(tif) : TIFFScanlineSize(tif);
    if (block <= 0 || (uint64_t)block > ((uint64_t)1 << 28))
        return unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s (page %d): %s of %lld bytes; the file is damaged, "
                              "or its rows are too long to read (at most 256 MB)", path, page + 1,
                              tiled ? "tiles" : "rows", (long long)block);
    if (!file_size)
        return UNET_OK;
    uint64_t n = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    double decoded = (double)w * h * spp * bits / 8.0;
    if (n > file_size)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s (page %d): the header declares %u x %u pixels in %llu "
                              "%s, more than a %llu-byte file can hold; it is damaged or truncated", path, page + 1,
                              (unsigned)w, (unsigned)h, (unsigned long long)n, tiled ? "tiles" : "strips",
                              (unsigned long long)file_size);
    /* The most a codec can pack into one byte: exact for these; for the others
     * (CCITT codes a blank row in one bit, zstd, LZMA...) 100000 samples, far
     * beyond real images but a stop to small files that unpack to GBs. */
    int bounded = comp == COMPRESSION_NONE || comp == COMPRESSION_PACKBITS || comp == COMPRESSION_LZW ||
                  comp == COMPRESSION_DEFLATE || comp == COMPRESSION_ADOBE_DEFLATE;
    double ratio = comp == COMPRESSION_NONE ? 1.0
                 : comp == COMPRESSION_PACKBITS ? 64.0
                 : comp == COMPRESSION_LZW ? 2600.0
                 : (comp == COMPRESSION_DEFLATE || comp == COMPRESSION_ADOBE_DEFLATE) ? 1032.0 : 1e5;
    if (!bounded)
        decoded = (double)w * h * spp;
    double stored = 0.0;
    for (uint64_t i = 0; i < n && stored * ratio < decoded; i++)
        stored += (double)TIFFGetStrileByteCount(tif, (uint32_t)i);
    if (stored > (double)file_size)
        stored = (double)file_size;
    if (decoded > stored * ratio + 65536.0)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s (page %d): the header declares %u x %u pixels (%.1f million "
                              "samples) but the file stores only %.0f bytes of pixel data; it is damaged or "
                              "truncated", path, page + 1, (unsigned)w, (unsigned)h, (double)w * h * spp / 1e6,
                              stored);
    if (!bounded) {
        /* For a large image, decode the last row (tile) first, which a damaged
         * or truncated file cannot give, before allocating the whole image. */
        if ((double)w * h * spp < (double)(1 << 26)) /* 256 MB of floats */
            return UNET_OK;
        unsigned char *buf = malloc((size_t)block);
        if (!buf)
            return unet_error_set(err, UNET_ERR_NOMEM, "out of memory reading %s", path);
        uint16_t planar = PLANARCONFIG_CONTIG;
        TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
        uint16_t s = planar == PLANARCONFIG_SEPARATE ? (uint16_t)(spp - 1) : 0;
        tmsize_t got = tiled ? TIFFReadTile(tif, buf, w - 1, h - 1, 0, s) : TIFFReadScanline(tif, buf, h - 1, s);
        free(buf);
        if (got < 0)
            return unet_error_set(err, UNET_ERR_FORMAT, "%s (page %d): the header declares %u x %u pixels but "
                                  "the last row cannot be decoded; the file is damaged or truncated", path,
                                  page + 1, (unsigned)w, (unsigned)h);
    }
    return UNET_OK;
}

static UnetStatus tiff_read_page(TIFF *tif, const char *path, int page, int expand_palette, TiffMsg *m,
                                 UnetImage *img, UnetError *err)
{
    int pages = (int)TIFFNumberOfDirectories(tif);
    if (page < 0 || page >= pages)
        return unet_error_set(err, UNET_ERR_INVALID, "%s has %d page%s; page %d does not exist", path, pages,
                              pages == 1 ? "" : "s", page + 1);
    if (!TIFFSetDirectory(tif, (tdir_t)page))
        return unet_error_set(err, UNET_ERR_FORMAT, "cannot read page %d of TIFF %s: %s", page + 1, path,
                              m->error[0] ? m->error : "bad directory");

    uint32_t w = 0, h = 0;
    uint16_t spp = 1, bits = 1, fmt = SAMPLEFORMAT_UINT, photo = 0, planar = PLANARCONFIG_CONTIG, comp = 1;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h))
        return unet_error_set(err, UNET_ERR_FORMAT, "TIFF %s (page %d) has no image size", path, page + 1);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo))
        photo = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    if (fmt == SAMPLEFORMAT_VOID)
        fmt = SAMPLEFORMAT_UINT;
    int tiled = TIFFIsTiled(tif);

    const TIFFCodec *codec = TIFFFindCODEC(comp);
    char layout[300];
    snprintf(layout, sizeof layout, "%u x %u, %d-bit %s, %d sample%s per pixel, %s, %s, %s, %s compression",
             (unsigned)w, (unsigned)h, bits, sample_format_name(fmt), spp, spp == 1 ? "" : "s",
             photometric_name(photo), tiled ? "tiled" : "stripped",
             planar == PLANARCONFIG_SEPARATE ? "planar" : "interleaved", codec ? codec->name : "unknown");

    bool bits_ok = ((fmt == SAMPLEFORMAT_UINT) && (bits == 1 || bits == 8 || bits == 16 || bits == 32)) ||
                   ((fmt == SAMPLEFORMAT_INT) && (bits == 8 || bits == 16 || bits == 32)) ||
                   ((fmt == SAMPLEFORMAT_IEEEFP) && (bits == 32 || bits == 64));
    if (!bits_ok)
        return unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s (page %d): unsupported TIFF layout (%s); supported "
                              "are 1/8/16/32-bit integer and 32/64-bit float samples; convert it (e.g. with ImageJ "
                              "or tifffile) to 8/16-bit or float", path, page + 1, layout);
    bool photo_ok = photo == PHOTOMETRIC_MINISBLACK || photo == PHOTOMETRIC_MINISWHITE ||
                    (photo == PHOTOMETRIC_RGB && spp >= 3) ||
                    (photo == PHOTOMETRIC_PALETTE && spp == 1 && fmt == SAMPLEFORMAT_UINT && bits <= 16);
    if (!photo_ok)
        return unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s (page %d): unsupported TIFF layout (%s); supported "
                              "are grey, RGB(A) and palette images; save it as grey or RGB", path, page + 1, layout);
    if (spp < 1 || spp > 16)
        return unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s (page %d): unsupported TIFF layout (%s); at most "
                              "16 samples per pixel are supported", path, page + 1, layout);
    UnetStatus st = check_size(path, w, h, spp, err);
    if (st)
        return st;
    if ((st = tiff_check_plausible(tif, path, page, w, h, spp, bits, comp, tiled, m->file_size, err)))
        return st;

    int has_alpha = 0;
    uint16_t nextra = 0;
    uint16_t *extra = NULL;
    if (TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra) && nextra > 0 && (spp == 2 || spp == 4) &&
        (extra[nextra - 1] == EXTRASAMPLE_ASSOCALPHA || extra[nextra - 1] == EXTRASAMPLE_UNASSALPHA))
        has_alpha = 1;

    UnetImage raw;
    if ((st = unet_image_alloc(&raw, (int)w, (int)h, spp, err)))
        return unet_error_prefix(err, "%s: ", path);
    size_t plane = (size_t)w * h;
    int nplanes = planar == PLANARCONFIG_SEPARATE ? spp : 1;
    int per_read = planar == PLANARCONFIG_SEPARATE ? 1 : spp; /* samples per pixel in one buffer */
    unsigned char *buf = NULL;
    if (tiled) {
        uint32_t tw = 0, th = 0;
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
        tmsize_t tsize = TIFFTileSize(tif), trow = TIFFTileRowSize(tif);
        if (tw == 0 || th == 0 || tsize <= 0 || trow <= 0) {
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s (page %d): bad tile layout (%s)", path, page + 1, layout);
            goto done;
        }
        buf = malloc((size_t)tsize);
        if (!buf) {
            st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory reading %s", path);
            goto done;
        }
        for (int s = 0; s < nplanes; s++)
            for (uint32_t ty = 0; ty < h; ty += th)
                for (uint32_t tx = 0; tx < w; tx += tw) {
                    if (TIFFReadTile(tif, buf, tx, ty, 0, (uint16_t)s) < 0) {
                        st = unet_error_set(err, UNET_ERR_FORMAT, "cannot read TIFF %s (page %d, tile at %u,%u): %s "
                                            "(the file is damaged or truncated)", path, page + 1, (unsigned)tx,
                                            (unsigned)ty, m->error[0] ? m->error : "read error");
                        goto done;
                    }
                    uint32_t ny = th < h - ty ? th : h - ty, nx = tw < w - tx ? tw : w - tx;
                    for (uint32_t yy = 0; yy < ny; yy++) {
                        const unsigned char *row = buf + (size_t)yy * trow;
                        for (uint32_t xx = 0; xx < nx; xx++)
                            for (int c = 0; c < per_read; c++) {
                                int ch = nplanes > 1 ? s : c;
                                raw.data[ch * plane + (size_t)(ty + yy) * w + tx + xx] =
                                    (float)tiff_fetch(row, (size_t)xx * per_read + c, bits, fmt);
                            }
                    }
                }
    } else {
        tmsize_t sl = TIFFScanlineSize(tif);
        if (sl <= 0) {
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s (page %d): bad strip layout (%s)", path, page + 1, layout);
            goto done;
        }
        buf = malloc((size_t)sl);
        if (!buf) {
            st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory reading %s", path);
            goto done;
        }
        for (int s = 0; s < nplanes; s++)
            for (uint32_t y = 0; y < h; y++) {
                if (TIFFReadScanline(tif, buf, y, (uint16_t)s) < 0) {
                    st = unet_error_set(err, UNET_ERR_FORMAT, "cannot read TIFF %s (page %d, row %u): %s (the "
                                        "file is damaged or truncated)", path, page + 1, (unsigned)y,
                                        m->error[0] ? m->error : "read error");
                    goto done;
                }
                for (uint32_t x = 0; x < w; x++)
                    for (int c = 0; c < per_read; c++) {
                        int ch = nplanes > 1 ? s : c;
                        raw.data[ch * plane + (size_t)y * w + x] = (float)tiff_fetch(buf, (size_t)x * per_read + c, bits, fmt);
                    }
            }
    }

    float maxv = fmt == SAMPLEFORMAT_IEEEFP ? 0.0f
               : fmt == SAMPLEFORMAT_INT   ? (float)((1ull << (bits - 1)) - 1)
                                           : (float)((1ull << bits) - 1);
    if (photo == PHOTOMETRIC_MINISWHITE && fmt != SAMPLEFORMAT_IEEEFP) {
        int color = spp - has_alpha;
        for (size_t i = 0; i < (size_t)color * plane; i++)
            raw.data[i] = maxv - raw.data[i];
    }
    raw.format = UNET_IMAGE_FORMAT_TIFF;
    raw.sample_type = fmt == SAMPLEFORMAT_IEEEFP ? UNET_SAMPLE_FLOAT : fmt == SAMPLEFORMAT_INT ? UNET_SAMPLE_INT : UNET_SAMPLE_UINT;
    raw.bit_depth = bits;
    raw.has_alpha = has_alpha;
    raw.max_value = maxv;
    raw.page = page;
    raw.pages = pages;

    if (photo == PHOTOMETRIC_PALETTE) {
        raw.palette = 1;
        if (expand_palette) {
            uint16_t *pr, *pg, *pb;
            if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &pr, &pg, &pb)) {
                st = unet_error_set(err, UNET_ERR_FORMAT, "%s (page %d): palette TIFF without a colour map", path,
                                    page + 1);
                goto done;
            }
            UnetImage rgb;
            if ((st = unet_image_alloc(&rgb, (int)w, (int)h, 3, err)))
                goto done;
            size_t entries = (size_t)1 << bits;
            for (size_t i = 0; i < plane; i++) {
                size_t idx = (size_t)raw.data[i];
                if (idx >= entries)
                    idx = entries - 1;
                rgb.data[i] = (float)(pr[idx] >> 8);
                rgb.data[plane + i] = (float)(pg[idx] >> 8);
                rgb.data[2 * plane + i] = (float)(pb[idx] >> 8);
            }
            rgb.format = raw.format;
            rgb.sample_type = UNET_SAMPLE_UINT;
            rgb.bit_depth = bits;
            rgb.palette = 1;
            rgb.max_value = 255.0f;
            rgb.page = page;
            rgb.pages = pages;
            unet_image_free(&raw);
            raw = rgb;
        }
    }
    *img = raw;
    raw.data = NULL;
done:
    free(buf);
    unet_image_free(&raw);
    return st;
}

static UnetStatus load_tiff(const ImageSource *src, int page, int expand_palette, UnetImage *img, UnetError *err)
{
    const char *path = src->path;
    TiffMsg m;
    TiffMem mem = { src->mem, src->size, 0 };
    TIFF *tif = tiff_open(path, src->mem ? &mem : NULL, &m, err);
    if (!tif)
        return err ? err->status : UNET_ERR_FORMAT;
    struct stat sb;
    if (src->mem)
        m.file_size = src->size;
    else if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        m.file_size = (uint64_t)sb.st_size;
    UnetStatus st = tiff_read_page(tif, path, page, expand_palette, &m, img, err);
    TIFFClose(tif);
    return st;
}

/* ---- .npy ---- */

typedef struct NpyHeader {
    char kind;      /* 'f', 'i', 'u', 'b' */
    int itemsize;
    int ndim;
    long long shape[UNET_NPY_MAX_DIMS];
    size_t offset;  /* of the data */
} NpyHeader;

static UnetStatus npy_parse(const char *path, const unsigned char *buf, size_t len, NpyHeader *h, UnetError *err)
{
    memset(h, 0, sizeof *h);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6))
        return unet_error_set(err, UNET_ERR_FORMAT, "%s is not a .npy file", path);
    size_t hlen, start;
    if (buf[6] == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        start = 10;
    } else if (buf[6] == 2 || buf[6] == 3) {
        if (len < 12)
            return unet_error_set(err, UNET_ERR_FORMAT, "%s: .npy header is truncated", path);
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        start = 12;
    } else {
        return unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s: .npy format version %d is not supported", path, buf[6]);
    }
    if (start + hlen > len || hlen > 65536)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: .npy header is truncated", path);
    char *text = malloc(hlen + 1);
    if (!text)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory reading %s", path);
    memcpy(text, buf + start, hlen);
    text[hlen] = 0;
    UnetStatus st = UNET_OK;
    const char *d = strstr(text, "'descr'");
    const char *fo = strstr(text, "'fortran_order'");
    const char *sh = strstr(text, "'shape'");
    char descr[16] = "";
    if (d && (d = strchr(d + 7, '\''))) {
        const char *e = strchr(d + 1, '\'');
        if (e && e - d - 1 < (long)sizeof descr) {
            memcpy(descr, d + 1, (size_t)(e - d - 1));
            descr[e - d - 1] = 0;
        }
    }
    if (!descr[0] || !fo || !sh) {
        st = unet_error_set(err, UNET_ERR_FORMAT, "%s: .npy header is malformed (%s)", path, text);
        goto out;
    }
    char endian = descr[0];
    h->kind = descr[1];
    h->itemsize = atoi(descr + 2);
    bool kind_ok = (h->kind == 'f' && (h->itemsize == 4 || h->itemsize == 8)) ||
                   ((h->kind == 'i' || h->kind == 'u') &&
                    (h->itemsize == 1 || h->itemsize == 2 || h->itemsize == 4 || h->itemsize == 8)) ||
                   (h->kind == 'b' && h->itemsize == 1);
    if (!kind_ok) {
        st = unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s: .npy dtype '%s' is not supported (use float32, "
                            "float64 or an integer type)", path, descr);
        goto out;
    }
    if (endian == '>' && h->itemsize > 1) {
        st = unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s: big-endian .npy arrays ('%s') are not supported; save "
                            "with arr.astype('<f4')", path, descr);
        goto out;
    }
    const char *v = fo + 15;
    while (*v == ' ' || *v == ':')
        v++;
    if (!strncmp(v, "True", 4)) {
        st = unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s: Fortran-ordered .npy arrays are not supported; save "
                            "np.ascontiguousarray(arr)", path);
        goto out;
    }
    const char *p = strchr(sh, '(');
    if (!p) {
        st = unet_error_set(err, UNET_ERR_FORMAT, "%s: .npy header has no shape", path);
        goto out;
    }
    p++;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        char *end;
        long long dim = strtoll(p, &end, 10);
        if (end == p || dim < 0) {
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s: .npy shape is malformed", path);
            goto out;
        }
        if (h->ndim == UNET_NPY_MAX_DIMS) {
            st = unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s: .npy arrays with more than %d dimensions are not "
                                "supported", path, UNET_NPY_MAX_DIMS);
            goto out;
        }
        h->shape[h->ndim++] = dim;
        p = end;
    }
    if (h->ndim == 0) {
        st = unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s: .npy holds a scalar, not an array", path);
        goto out;
    }
    unsigned long long count = 1;
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] == 0 || h->shape[i] > (long long)MAX_SAMPLES) {
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s: .npy array is empty or too large", path);
            goto out;
        }
        count *= (unsigned long long)h->shape[i];
        if (count > MAX_SAMPLES) {
            st = unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s: .npy array is too large (at most 2^31 values)", path);
            goto out;
        }
    }
    h->offset = start + hlen;
    if (len - h->offset < count * (unsigned long long)h->itemsize)
        st = unet_error_set(err, UNET_ERR_FORMAT, "%s: .npy data is truncated (%zu of %llu bytes)", path,
                            len - h->offset, count * (unsigned long long)h->itemsize);
out:
    free(text);
    return st;
}

static double npy_fetch(const unsigned char *p, char kind, int size)
{
    switch (kind) {
    case 'f':
        if (size == 4) {
            float f;
            memcpy(&f, p, 4);
            return f;
        } else {
            double d;
            memcpy(&d, p, 8);
            return d;
        }
    case 'b':
        return p[0] != 0;
    case 'u':
        switch (size) {
        case 1: return p[0];
        case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
        default: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    default:
        switch (size) {
        case 1: return (int8_t)p[0];
        case 2: { int16_t v; memcpy(&v, p, 2); return v; }
        case 4: { int32_t v; memcpy(&v, p, 4); return v; }
        default: { int64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    }
}

/* mem: the file's bytes, or NULL to read path. */
static UnetStatus npy_load_raw(const char *path, const unsigned char *mem, size_t mem_size, float **data,
                               NpyHeader *h, UnetError *err)
{
    *data = NULL;
    unsigned char *buf = NULL;
    size_t len = mem_size;
    UnetStatus st;
    if (!mem && (st = unet_read_file(path, &buf, &len, err)))
        return st;
    if ((st = npy_parse(path, mem ? mem : buf, len, h, err))) {
        free(buf);
        return st;
    }
    size_t count = 1;
    for (int i = 0; i < h->ndim; i++)
        count *= (size_t)h->shape[i];
    float *out = malloc(count * sizeof(float));
    if (!out) {
        free(buf);
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory reading %s", path);
    }
    const unsigned char *p = (mem ? mem : buf) + h->offset;
    for (size_t i = 0; i < count; i++)
        out[i] = (float)npy_fetch(p + i * (size_t)h->itemsize, h->kind, h->itemsize);
    free(buf);
    *data = out;
    return UNET_OK;
}

UnetStatus unet_npy_load(const char *path, float **data, int *ndim, int shape[UNET_NPY_MAX_DIMS], UnetError *err)
{
    NpyHeader h;
    *ndim = 0;
    UnetStatus st = npy_load_raw(path, NULL, 0, data, &h, err);
    if (st)
        return st;
    *ndim = h.ndim;
    for (int i = 0; i < UNET_NPY_MAX_DIMS; i++)
        shape[i] = i < h.ndim ? (int)h.shape[i] : 1;
    return UNET_OK;
}

typedef struct NpyWrite {
    const float *data;
    int ndim;
    const int *shape;
    size_t count;
} NpyWrite;

static UnetStatus npy_write(FILE *f, void *user, UnetError *err)
{
    NpyWrite *w = user;
    char dict[256], dims[160] = "";
    size_t n = 0;
    for (int i = 0; i < w->ndim; i++)
        n += (size_t)snprintf(dims + n, sizeof dims - n, i ? ", %d" : "%d", w->shape[i]);
    if (w->ndim == 1)
        snprintf(dims + n, sizeof dims - n, ","); /* a 1-tuple: "(N,)" */
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    int total = 10 + dl + 1;
    int pad = (64 - total % 64) % 64;
    unsigned char head[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0 };
    int hlen = dl + pad + 1;
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    if (fwrite(head, 1, 10, f) != 10 || fwrite(dict, 1, (size_t)dl, f) != (size_t)dl)
        return unet_error_set(err, UNET_ERR_IO, "%s", strerror(errno));
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    const uint16_t probe = 1;
    int little = *(const unsigned char *)&probe == 1;
    if (little) {
        if (fwrite(w->data, sizeof(float), w->count, f) != w->count)
            return unet_error_set(err, UNET_ERR_IO, "%s", strerror(errno));
    } else {
        for (size_t i = 0; i < w->count; i++) {
            unsigned char b[4], s[4];
            memcpy(b, &w->data[i], 4);
            s[0] = b[3], s[1] = b[2], s[2] = b[1], s[3] = b[0];
            if (fwrite(s, 1, 4, f) != 4)
                return unet_error_set(err, UNET_ERR_IO, "%s", strerror(errno));
        }
    }
    return UNET_OK;
}

UnetStatus unet_npy_save(const char *path, const float *data, int ndim, const int *shape, UnetError *err)
{
    if (ndim < 1 || ndim > UNET_NPY_MAX_DIMS)
        return unet_error_set(err, UNET_ERR_INVALID, "cannot write %s: %d dimensions (1..%d allowed)", path, ndim,
                              UNET_NPY_MAX_DIMS);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return unet_error_set(err, UNET_ERR_INVALID, "cannot write %s: dimension %d is %d", path, i, shape[i]);
        count *= (size_t)shape[i];
    }
    NpyWrite w = { data, ndim, shape, count };
    return unet_write_file_atomic(path, npy_write, &w, err);
}

UnetStatus unet_image_save_npy(const char *path, const UnetImage *img, UnetError *err)
{
    int shape[3] = { img->channels, img->height, img->width };
    if (img->channels == 1)
        return unet_npy_save(path, img->data, 2, shape + 1, err);
    return unet_npy_save(path, img->data, 3, shape, err);
}

static UnetStatus load_npy(const ImageSource *src, UnetImage *img, UnetError *err)
{
    const char *path = src->path;
    float *data;
    NpyHeader hd;
    UnetStatus st = npy_load_raw(path, src->mem, src->size, &data, &hd, err);
    if (st)
        return st;
    long long *shape = hd.shape;
    int c, h, w, hwc = 0;
    if (hd.ndim == 2) {
        c = 1, h = (int)shape[0], w = (int)shape[1];
    } else if (hd.ndim == 3 && shape[0] <= 4 && shape[0] <= shape[2]) {
        c = (int)shape[0], h = (int)shape[1], w = (int)shape[2];
    } else if (hd.ndim == 3 && shape[2] <= 4) {
        /* the channel axis is the short one; [C,H,W] wins a tie */
        h = (int)shape[0], w = (int)shape[1], c = (int)shape[2], hwc = 1;
    } else {
        free(data);
        char dims[96] = "";
        size_t n = 0;
        for (int i = 0; i < hd.ndim; i++)
            n += (size_t)snprintf(dims + n, sizeof dims - n, i ? ",%lld" : "%lld", shape[i]);
        return unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s: an array of shape [%s] is not an image; expected "
                              "[H,W], [C,H,W] or [H,W,C] with at most 4 channels", path, dims);
    }
    memset(img, 0, sizeof *img);
    if (hwc) {
        if ((st = unet_image_alloc(img, w, h, c, err))) {
            free(data);
            return st;
        }
        size_t plane = (size_t)w * h;
        for (size_t i = 0; i < plane; i++)
            for (int k = 0; k < c; k++)
                img->data[k * plane + i] = data[i * c + k];
        free(data);
    } else {
        img->width = w, img->height = h, img->channels = c;
        img->data = data;
    }
    img->sample_type = hd.kind == 'f' ? UNET_SAMPLE_FLOAT : hd.kind == 'i' ? UNET_SAMPLE_INT : UNET_SAMPLE_UINT;
    img->bit_depth = hd.kind == 'b' ? 1 : hd.itemsize * 8;
    if (hd.kind == 'u' && hd.itemsize <= 2)
        img->max_value = (float)((1u << (8 * hd.itemsize)) - 1u);
    else if (hd.kind == 'b')
        img->max_value = 1.0f;
    img->format = UNET_IMAGE_FORMAT_NPY;
    img->pages = 1;
    return UNET_OK;
}

/* ---- Dispatch ---- */

static UnetStatus load_any(const ImageSource *src, int page, int expand_palette, UnetImage *img, UnetError *err)
{
    const char *path = src->path;
    memset(img, 0, sizeof *img);
    UnetImageFormat fmt;
    UnetStatus st = detect(src, &fmt, err);
    if (st)
        return st;
    if (fmt != UNET_IMAGE_FORMAT_TIFF && page != 0)
        return unet_error_set(err, UNET_ERR_INVALID, "%s is a %s file with one page; page %d does not exist", path,
                              unet_image_format_name(fmt), page + 1);
    switch (fmt) {
    case UNET_IMAGE_FORMAT_PNG: return load_png(src, expand_palette, img, err);
    case UNET_IMAGE_FORMAT_TIFF: return load_tiff(src, page, expand_palette, img, err);
    case UNET_IMAGE_FORMAT_NPY: return load_npy(src, img, err);
    case UNET_IMAGE_FORMAT_NONE: break;
    }
    return unet_error_set(err, UNET_ERR_FORMAT, "%s: unknown image format", path);
}

UnetStatus unet_image_load(const char *path, UnetImage *img, UnetError *err)
{
    ImageSource src = { path, NULL, 0 };
    return load_any(&src, 0, 1, img, err);
}

UnetStatus unet_image_load_page(const char *path, int page, UnetImage *img, UnetError *err)
{
    ImageSource src = { path, NULL, 0 };
    return load_any(&src, page, 1, img, err);
}

UnetStatus unet_image_load_memory(const void *bytes, size_t size, const char *name, int page, UnetImage *img,
                                  UnetError *err)
{
    memset(img, 0, sizeof *img);
    if (!name)
        name = "image in memory";
    if (!bytes || size == 0)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s is empty (0 bytes); replace it with a PNG or TIFF image", name);
    ImageSource src = { name, bytes, size };
    return load_any(&src, page, 1, img, err);
}

UnetStatus unet_image_page_count(const char *path, int *pages, UnetError *err)
{
    *pages = 0;
    UnetImageFormat fmt;
    ImageSource src = { path, NULL, 0 };
    UnetStatus st = detect(&src, &fmt, err);
    if (st)
        return st;
    if (fmt != UNET_IMAGE_FORMAT_TIFF) {
        *pages = 1;
        return UNET_OK;
    }
    TiffMsg m;
    TIFF *tif = tiff_open(path, NULL, &m, err);
    if (!tif)
        return err ? err->status : UNET_ERR_FORMAT;
    *pages = (int)TIFFNumberOfDirectories(tif);
    TIFFClose(tif);
    if (*pages <= 0)
        return unet_error_set(err, UNET_ERR_FORMAT, "TIFF %s has no pages%s%s", path, m.error[0] ? ": " : "", m.error);
    return UNET_OK;
}

/* ---- Labels ---- */

UnetStatus unet_labels_from_image(const UnetImage *img, const char *name, UnetLabels *lab, UnetError *err)
{
    memset(lab, 0, sizeof *lab);
    int color = img->channels - (img->has_alpha ? 1 : 0);
    if (color < 1)
        color = 1;
    size_t plane = (size_t)img->width * img->height;
    if (color > 1) {
        for (size_t i = 0; i < plane; i++)
            for (int c = 1; c < color; c++)
                if (img->data[c * plane + i] != img->data[i])
                    return unet_error_set(err, UNET_ERR_FORMAT, "mask %s is a colour image (channels differ at "
                                          "x=%zu, y=%zu); masks must be grey label images (0/255 or ids 0..N)",
                                          name, i % (size_t)img->width, i / (size_t)img->width);
    }
    UnetStatus st = unet_labels_alloc(lab, img->width, img->height, err);
    if (st)
        return st;
    for (size_t i = 0; i < plane; i++) {
        float v = img->data[i];
        if (!(v >= 0.0f) || v > 2147483520.0f || v != floorf(v)) {
            size_t x = i % (size_t)img->width, y = i / (size_t)img->width;
            unet_labels_free(lab);
            if (v < 0.0f)
                return unet_error_set(err, UNET_ERR_FORMAT, "mask %s has a negative value %g at x=%zu, y=%zu; "
                                      "labels must be 0 or more", name, (double)v, x, y);
            return unet_error_set(err, UNET_ERR_FORMAT, "mask %s has value %g at x=%zu, y=%zu, which is not a whole "
                                  "number; masks must hold integer labels", name, (double)v, x, y);
        }
        lab->data[i] = (int32_t)v;
    }
    return UNET_OK;
}

static UnetStatus labels_load(const ImageSource *src, int page, UnetLabels *lab, UnetError *err)
{
    UnetImage img;
    memset(lab, 0, sizeof *lab);
    UnetStatus st = load_any(src, page, 0, &img, err);
    if (st)
        return st;
    st = unet_labels_from_image(&img, src->path, lab, err);
    unet_image_free(&img);
    return st;
}

UnetStatus unet_labels_load(const char *path, int page, UnetLabels *lab, UnetError *err)
{
    ImageSource src = { path, NULL, 0 };
    return labels_load(&src, page, lab, err);
}

UnetStatus unet_labels_load_memory(const void *bytes, size_t size, const char *name, int page, UnetLabels *lab,
                                   UnetError *err)
{
    memset(lab, 0, sizeof *lab);
    if (!name)
        name = "mask in memory";
    if (!bytes || size == 0)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s is empty (0 bytes); replace it with a PNG or TIFF image", name);
    ImageSource src = { name, bytes, size };
    return labels_load(&src, page, lab, err);
}

/* ---- PNG writing ---- */

typedef struct PngWrite {
    const void *pixels;
    int width, height, channels, bit_depth;
    png_structp png;
    png_infop info;
    unsigned char *row;
    int sys_errno;      /* errno when libpng gave up ("Write Error" alone says too little) */
    char message[300];
} PngWrite;

static void png_write_error_cb(png_structp png, png_const_charp msg)
{
    PngWrite *w = png_get_error_ptr(png);
    w->sys_errno = errno;
    snprintf(w->message, sizeof w->message, "%s", msg);
    png_longjmp(png, 1);
}

static void png_write_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static int png_encode(PngWrite *w, FILE *f)
{
    if (setjmp(png_jmpbuf(w->png)))
        return -1;
    static const int types[5] = { 0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                  PNG_COLOR_TYPE_RGB_ALPHA };
    png_init_io(w->png, f);
    png_set_IHDR(w->png, w->info, (png_uint_32)w->width, (png_uint_32)w->height, w->bit_depth,
                 types[w->channels], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(w->png, w->info);
    size_t n = (size_t)w->width * w->channels;
    for (int y = 0; y < w->height; y++) {
        if (w->bit_depth == 8) {
            memcpy(w->row, (const uint8_t *)w->pixels + (size_t)y * n, n);
        } else {
            const uint16_t *src = (const uint16_t *)w->pixels + (size_t)y * n;
            for (size_t i = 0; i < n; i++) {
                w->row[2 * i] = (unsigned char)(src[i] >> 8);
                w->row[2 * i + 1] = (unsigned char)(src[i] & 0xff);
            }
        }
        png_write_row(w->png, w->row);
    }
    png_write_end(w->png, NULL);
    return 0;
}

static UnetStatus png_write_file(FILE *f, void *user, UnetError *err)
{
    PngWrite *w = user;
    w->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, w, png_write_error_cb, png_write_warning_cb);
    if (w->png)
        w->info = png_create_info_struct(w->png);
    w->row = malloc((size_t)w->width * w->channels * (w->bit_depth / 8));
    int rc = (w->png && w->info && w->row) ? png_encode(w, f) : -2;
    png_destroy_write_struct(&w->png, &w->info);
    free(w->row);
    w->row = NULL;
    if (rc == -2)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    if (rc != 0 && ferror(f) && w->sys_errno)
        return unet_error_set(err, UNET_ERR_IO, "%s", strerror(w->sys_errno));
    if (rc != 0)
        return unet_error_set(err, UNET_ERR_IO, "%s", w->message);
    return UNET_OK;
}

UnetStatus unet_png_save(const char *path, const void *pixels, int width, int height, int channels, int bit_depth,
                         UnetError *err)
{
    if (width <= 0 || height <= 0 || width > 1000000 || height > 1000000)
        return unet_error_set(err, UNET_ERR_INVALID, "cannot write %s: image size %d x %d is out of range", path,
                              width, height);
    if (channels < 1 || channels > 4)
        return unet_error_set(err, UNET_ERR_INVALID, "cannot write %s: %d channels (PNG takes 1 to 4)", path, channels);
    if (bit_depth != 8 && bit_depth != 16)
        return unet_error_set(err, UNET_ERR_INVALID, "cannot write %s: bit depth %d (8 or 16 allowed)", path, bit_depth);
    PngWrite w;
    memset(&w, 0, sizeof w);
    w.pixels = pixels;
    w.width = width;
    w.height = height;
    w.channels = channels;
    w.bit_depth = bit_depth;
    return unet_write_file_atomic(path, png_write_file, &w, err);
}

UnetStatus unet_image_save_png(const char *path, const UnetImage *img, int bit_depth, UnetError *err)
{
    if (bit_depth != 8 && bit_depth != 16)
        return unet_error_set(err, UNET_ERR_INVALID, "cannot write %s: bit depth %d (8 or 16 allowed)", path, bit_depth);
    if (img->channels < 1 || img->channels > 4)
        return unet_error_set(err, UNET_ERR_INVALID, "cannot write %s: %d channels (PNG takes 1 to 4)", path,
                              img->channels);
    size_t plane = (size_t)img->width * img->height;
    int c = img->channels;
    float top = bit_depth == 8 ? 255.0f : 65535.0f;
    void *buf = malloc(plane * c * (bit_depth / 8));
    if (!buf)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory writing %s", path);
    for (size_t i = 0; i < plane; i++)
        for (int k = 0; k < c; k++) {
            float v = img->data[k * plane + i];
            v = v > 0.0f ? (v < top ? v : top) : 0.0f; /* NaN becomes 0 */
            unsigned q = (unsigned)lrintf(v);
            if (bit_depth == 8)
                ((uint8_t *)buf)[i * c + k] = (uint8_t)q;
            else
                ((uint16_t *)buf)[i * c + k] = (uint16_t)q;
        }
    UnetStatus st = unet_png_save(path, buf, img->width, img->height, c, bit_depth, err);
    free(buf);
    return st;
}

UnetStatus unet_labels_save_png(const char *path, const UnetLabels *lab, UnetError *err)
{
    size_t n = (size_t)lab->width * lab->height;
    int32_t top = 0;
    for (size_t i = 0; i < n; i++) {
        if (lab->data[i] < 0 || lab->data[i] > 65535)
            return unet_error_set(err, UNET_ERR_INVALID, "cannot write %s: label %d does not fit a 16-bit PNG", path,
                                  (int)lab->data[i]);
        if (lab->data[i] > top)
            top = lab->data[i];
    }
    int bd = top > 255 ? 16 : 8;
    void *buf = malloc(n * (bd / 8));
    if (!buf)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory writing %s", path);
    for (size_t i = 0; i < n; i++) {
        if (bd == 8)
            ((uint8_t *)buf)[i] = (uint8_t)lab->data[i];
        else
            ((uint16_t *)buf)[i] = (uint16_t)lab->data[i];
    }
    UnetStatus st = unet_png_save(path, buf, lab->width, lab->height, 1, bd, err);
    free(buf);
    return st;
}

/* ---- Network input ---- */

void unet_input_spec_default(UnetInputSpec *spec)
{
    spec->intensity = UNET_INTENSITY_MINMAX;
    spec->range_lo = 0.0f;
    spec->range_hi = 255.0f;
    spec->color = UNET_COLOR_KEEP;
}

int unet_input_channels(int src_channels, int has_alpha, const UnetInputSpec *spec)
{
    int color = src_channels - (has_alpha ? 1 : 0);
    if (color < 1)
        color = 1;
    switch (spec->color) {
    case UNET_COLOR_GREY: return 1;
    case UNET_COLOR_RGB: return color == 1 ? 3 : color;
    case UNET_COLOR_KEEP: break;
    }
    return color;
}

UnetStatus unet_image_to_input(const UnetImage *src, const UnetInputSpec *spec, UnetImage *dst, UnetError *err)
{
    if (spec->intensity == UNET_INTENSITY_RANGE && !(spec->range_hi > spec->range_lo))
        return unet_error_set(err, UNET_ERR_INVALID, "intensity range [%g, %g] is empty; give lo < hi",
                              (double)spec->range_lo, (double)spec->range_hi);
    int color = src->channels - (src->has_alpha ? 1 : 0);
    if (color < 1)
        color = 1;
    int outc = unet_input_channels(src->channels, src->has_alpha, spec);
    UnetStatus st = unet_image_alloc(dst, src->width, src->height, outc, err);
    if (st)
        return st;
    size_t plane = (size_t)src->width * src->height;
    const float *s = src->data;
    float *d = dst->data;
    if (outc == color) {
        memcpy(d, s, plane * color * sizeof(float));
    } else if (outc == 1) {
        for (size_t i = 0; i < plane; i++) {
            if (color == 3) {
                d[i] = 0.299f * s[i] + 0.587f * s[plane + i] + 0.114f * s[2 * plane + i];
            } else {
                float acc = 0.0f;
                for (int c = 0; c < color; c++)
                    acc += s[c * plane + i];
                d[i] = acc / (float)color;
            }
        }
    } else { /* grey repeated into RGB */
        for (int c = 0; c < outc; c++)
            memcpy(d + c * plane, s, plane * sizeof(float));
    }
    size_t n = plane * outc;
    /* (x - shift) / denom; denom 0 maps everything to 0 (a constant image) */
    float shift = 0.0f, denom = 1.0f;
    int clamp = 0;
    if (spec->intensity == UNET_INTENSITY_MINMAX) {
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++)
            if (isfinite(d[i])) {
                lo = d[i] < lo ? d[i] : lo;
                hi = d[i] > hi ? d[i] : hi;
            }
        shift = isfinite(lo) ? lo : 0.0f;
        denom = (isfinite(lo) && hi > lo) ? hi - lo : 0.0f;
    } else if (spec->intensity == UNET_INTENSITY_ZSCORE) {
        double sum = 0.0, sum2 = 0.0;
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++)
            if (isfinite(d[i])) {
                sum += d[i];
                cnt++;
            }
        double mean = cnt ? sum / (double)cnt : 0.0;
        for (size_t i = 0; i < n; i++)
            if (isfinite(d[i]))
                sum2 += (d[i] - mean) * (d[i] - mean);
        double sd = cnt ? sqrt(sum2 / (double)cnt) : 0.0;
        shift = (float)mean;
        denom = sd > 1e-12 * (fabs(mean) + 1.0) ? (float)sd : 0.0f;
    } else if (spec->intensity == UNET_INTENSITY_RANGE) {
        shift = spec->range_lo;
        denom = spec->range_hi - spec->range_lo;
        clamp = 1;
    }
    if (spec->intensity != UNET_INTENSITY_NONE) {
        for (size_t i = 0; i < n; i++) {
            float v = (isfinite(d[i]) && denom > 0.0f) ? (d[i] - shift) / denom : 0.0f;
            if (clamp)
                v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
            d[i] = v;
        }
    }
    dst->format = src->format;
    dst->sample_type = UNET_SAMPLE_FLOAT;
    dst->bit_depth = 32;
    dst->page = src->page;
    dst->pages = src->pages;
    return UNET_OK;
}

const char *unet_intensity_name(UnetIntensity i)
{
    switch (i) {
    case UNET_INTENSITY_MINMAX: return "minmax";
    case UNET_INTENSITY_ZSCORE: return "zscore";
    case UNET_INTENSITY_RANGE: return "range";
    case UNET_INTENSITY_NONE: return "none";
    }
    return "unknown";
}

const char *unet_color_name(UnetColor c)
{
    switch (c) {
    case UNET_COLOR_KEEP: return "keep";
    case UNET_COLOR_GREY: return "grey";
    case UNET_COLOR_RGB: return "rgb";
    }
    return "unknown";
}

UnetStatus unet_intensity_parse(const char *s, UnetIntensity *out, UnetError *err)
{
    for (int i = UNET_INTENSITY_MINMAX; i <= UNET_INTENSITY_NONE; i++)
        if (!strcasecmp(s, unet_intensity_name((UnetIntensity)i))) {
            *out = (UnetIntensity)i;
            return UNET_OK;
        }
    return unet_error_set(err, UNET_ERR_INVALID, "unknown normalisation '%s'; use minmax, zscore, range or none", s);
}

UnetStatus unet_color_parse(const char *s, UnetColor *out, UnetError *err)
{
    if (!strcasecmp(s, "gray")) {
        *out = UNET_COLOR_GREY;
        return UNET_OK;
    }
    for (int i = UNET_COLOR_KEEP; i <= UNET_COLOR_RGB; i++)
        if (!strcasecmp(s, unet_color_name((UnetColor)i))) {
            *out = (UnetColor)i;
            return UNET_OK;
        }
    return unet_error_set(err, UNET_ERR_INVALID, "unknown colour mode '%s'; use keep, grey or rgb", s);
}
