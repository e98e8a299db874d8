/* test-image.c - PNG, TIFF and .npy reading/writing (test files written with
 * libpng and libtiff directly), damaged and unsupported files, conversion of
 * images into network input, and silence on stderr. */
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

#include "fileutil.h"
#include "image.h"
#include "test-common.h"

static char *tmpdir;
static TestRng rng;

static char *tmp_path(const char *name)
{
    return unet_path_join(tmpdir, name);
}

/* ---- Writing PNGs with libpng itself ---- */

typedef struct PngSpec {
    int width, height, color_type, bit_depth, interlace;
    const uint16_t *samples; /* interleaved, one value per sample */
    const png_color *palette;
    int npal;
    const png_byte *trns;
    int ntrns;
} PngSpec;

static int channels_of(int color_type)
{
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;
    }
}

static int write_png_spec(const char *path, const PngSpec *s)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int ch = channels_of(s->color_type);
    size_t bytes = s->bit_depth == 16 ? 2 : 1;
    unsigned char *row = malloc((size_t)s->width * ch * bytes);
    unsigned char **rows = malloc(sizeof(unsigned char *) * (size_t)s->height);
    unsigned char *all = malloc((size_t)s->width * ch * bytes * s->height);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        free(row), free(rows), free(all);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)s->width, (png_uint_32)s->height, s->bit_depth, s->color_type,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->npal);
    if (s->trns)
        png_set_tRNS(png, info, s->trns, s->ntrns, NULL);
    png_write_info(png, info);
    if (s->bit_depth < 8)
        png_set_packing(png);
    for (int y = 0; y < s->height; y++) {
        rows[y] = all + (size_t)y * s->width * ch * bytes;
        for (int i = 0; i < s->width * ch; i++) {
            uint16_t v = s->samples[(size_t)y * s->width * ch + i];
            if (bytes == 2) {
                rows[y][2 * i] = (unsigned char)(v >> 8);
                rows[y][2 * i + 1] = (unsigned char)v;
            } else {
                rows[y][i] = (unsigned char)v;
            }
        }
    }
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(row), free(rows), free(all);
    return 0;
}

static void png_case(int color_type, int bit_depth, int with_trns, int interlace)
{
    char name[96];
    snprintf(name, sizeof name, "png-t%d-b%d-r%d-i%d.png", color_type, bit_depth, with_trns, interlace);
    char *path = tmp_path(name);
    int w = 13, h = 7, ch = channels_of(color_type);
    uint16_t *samples = malloc(sizeof(uint16_t) * (size_t)w * h * ch);
    png_color pal[256];
    png_byte trns[256];
    int npal = 0, ntrns = 0;
    int top = (1 << bit_depth) - 1;
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        npal = top + 1 < 20 ? top + 1 : 20;
        for (int i = 0; i < npal; i++) {
            pal[i].red = (png_byte)(i * 11 + 3);
            pal[i].green = (png_byte)(255 - i * 7);
            pal[i].blue = (png_byte)(i * 13 % 256);
            trns[i] = (png_byte)(i * 17 % 256);
        }
        ntrns = with_trns ? (npal > 1 ? npal - 1 : 1) : 0; /* last entry opaque by omission */
        top = npal - 1;
    }
    for (int i = 0; i < w * h * ch; i++)
        samples[i] = (uint16_t)(test_rng_uniform(&rng, 0.0f, (float)top + 0.999f));
    samples[0] = 0;
    samples[1] = (uint16_t)top; /* the extremes are present */
    PngSpec spec = { w, h, color_type, bit_depth, interlace, samples, npal ? pal : NULL, npal,
                     ntrns ? trns : NULL, ntrns };
    CHECK(write_png_spec(path, &spec) == 0);

    UnetError err = { 0 };
    UnetImage img;
    UnetStatus st = unet_image_load(path, &img, &err);
    CHECK_MSG(st == UNET_OK, "%s: %s", name, err.message);
    if (st != UNET_OK) {
        free(samples);
        free(path);
        return;
    }
    CHECK(img.width == w && img.height == h && img.format == UNET_IMAGE_FORMAT_PNG);
    CHECK(img.bit_depth == bit_depth && img.sample_type == UNET_SAMPLE_UINT);
    size_t plane = (size_t)w * h;
    int bad = 0;
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        CHECK(img.palette == 1 && img.max_value == 255.0f);
        CHECK(img.channels == (with_trns ? 4 : 3) && img.has_alpha == with_trns);
        for (size_t i = 0; i < plane; i++) {
            int k = samples[i];
            bad += img.data[i] != pal[k].red || img.data[plane + i] != pal[k].green ||
                   img.data[2 * plane + i] != pal[k].blue;
            if (with_trns)
                bad += img.data[3 * plane + i] != (k < ntrns ? trns[k] : 255);
        }
        /* As a mask the same file gives its indices. */
        UnetLabels lab;
        CHECK(unet_labels_load(path, 0, &lab, &err) == UNET_OK);
        for (size_t i = 0; i < plane; i++)
            bad += lab.data[i] != samples[i];
        unet_labels_free(&lab);
    } else {
        CHECK(img.channels == ch && img.palette == 0);
        CHECK(img.has_alpha == (ch == 2 || ch == 4));
        CHECK(img.max_value == (float)((1 << bit_depth) - 1));
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < ch; c++)
                bad += img.data[c * plane + i] != samples[i * ch + c];
    }
    CHECK_MSG(bad == 0, "%s: %d samples differ", name, bad);

    /* Written back by our writer and read again: the same values. */
    if (color_type != PNG_COLOR_TYPE_PALETTE) {
        char *again = tmp_path("again.png");
        CHECK(unet_image_save_png(again, &img, bit_depth == 16 ? 16 : 8, &err) == UNET_OK);
        UnetImage back;
        CHECK(unet_image_load(again, &back, &err) == UNET_OK);
        CHECK(back.channels == img.channels && back.has_alpha == img.has_alpha);
        CHECK(back.bit_depth == (bit_depth == 16 ? 16 : 8));
        CHECK(test_max_rel_diff(back.data, img.data, plane * ch, NULL) == 0.0);
        unet_image_free(&back);
        free(again);
    }
    unet_image_free(&img);
    free(samples);
    free(path);
}

static void test_png(void)
{
    static const int grey_depths[] = { 1, 2, 4, 8, 16 };
    for (int i = 0; i < 5; i++)
        png_case(PNG_COLOR_TYPE_GRAY, grey_depths[i], 0, 0);
    for (int bd = 8; bd <= 16; bd += 8) {
        png_case(PNG_COLOR_TYPE_GRAY_ALPHA, bd, 0, 0);
        png_case(PNG_COLOR_TYPE_RGB, bd, 0, 0);
        png_case(PNG_COLOR_TYPE_RGB_ALPHA, bd, 0, 0);
    }
    for (int bd = 1; bd <= 8; bd *= 2) {
        png_case(PNG_COLOR_TYPE_PALETTE, bd, 0, 0);
        png_case(PNG_COLOR_TYPE_PALETTE, bd, 1, 0);
    }
    png_case(PNG_COLOR_TYPE_RGB, 8, 0, 1);
    png_case(PNG_COLOR_TYPE_GRAY, 16, 0, 1);

    /* Our writers: 8-bit grey/RGB/RGBA, 16-bit grey, interleaved buffers. */
    UnetError err = { 0 };
    char *path = tmp_path("w.png");
    uint8_t rgb[2 * 3 * 3];
    for (int i = 0; i < 18; i++)
        rgb[i] = (uint8_t)(i * 14);
    CHECK(unet_png_save(path, rgb, 3, 2, 3, 8, &err) == UNET_OK);
    UnetImage img;
    CHECK(unet_image_load(path, &img, &err) == UNET_OK);
    CHECK(img.channels == 3 && img.width == 3 && img.height == 2);
    CHECK(img.data[0] == 0 && img.data[6] == 14 && img.data[1] == 42); /* planar R, then G */
    unet_image_free(&img);
    uint16_t g16[4] = { 0, 1, 300, 65535 };
    CHECK(unet_png_save(path, g16, 2, 2, 1, 16, &err) == UNET_OK);
    CHECK(unet_image_load(path, &img, &err) == UNET_OK);
    CHECK(img.bit_depth == 16 && img.data[2] == 300 && img.data[3] == 65535);
    unet_image_free(&img);
    CHECK(unet_png_save(path, g16, 2, 2, 5, 8, &err) == UNET_ERR_INVALID);
    CHECK(unet_png_save(path, g16, 2, 2, 1, 12, &err) == UNET_ERR_INVALID);
    /* Labels: 8-bit when they fit, 16-bit beyond 255. */
    UnetLabels lab, back;
    CHECK(unet_labels_alloc(&lab, 4, 3, &err) == UNET_OK);
    lab.data[5] = 313;
    CHECK(unet_labels_save_png(path, &lab, &err) == UNET_OK);
    CHECK(unet_image_load(path, &img, &err) == UNET_OK && img.bit_depth == 16);
    unet_image_free(&img);
    CHECK(unet_labels_load(path, 0, &back, &err) == UNET_OK && back.data[5] == 313 && back.data[4] == 0);
    unet_labels_free(&back);
    lab.data[5] = -2;
    CHECK(unet_labels_save_png(path, &lab, &err) == UNET_ERR_INVALID);
    unet_labels_free(&lab);
    free(path);
}

/* ---- TIFFs with libtiff itself ---- */

typedef struct TiffSpec {
    int width, height, spp, bits, fmt, photo, planar, tile, compression, alpha;
} TiffSpec;

static void put_sample(unsigned char *p, size_t k, int bits, int fmt, double v)
{
    switch (bits) {
    case 8:
        if (fmt == SAMPLEFORMAT_INT)
            ((int8_t *)p)[k] = (int8_t)v;
        else
            p[k] = (uint8_t)v;
        break;
    case 16:
        if (fmt == SAMPLEFORMAT_INT)
            ((int16_t *)p)[k] = (int16_t)v;
        else
            ((uint16_t *)p)[k] = (uint16_t)v;
        break;
    case 32:
        if (fmt == SAMPLEFORMAT_IEEEFP)
            ((float *)p)[k] = (float)v;
        else
            ((uint32_t *)p)[k] = (uint32_t)v;
        break;
    }
}

/* Writes one directory of `values` (interleaved, spp per pixel). */
static void tiff_put_page(TIFF *t, const TiffSpec *s, const double *values)
{
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)s->width);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)s->height);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)s->spp);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)s->bits);
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, (uint16_t)s->fmt);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)s->photo);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, (uint16_t)s->planar);
    TIFFSetField(t, TIFFTAG_COMPRESSION, (uint16_t)s->compression);
    if (s->alpha) {
        uint16_t extra = EXTRASAMPLE_UNASSALPHA;
        TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra);
    }
    int per = s->planar == PLANARCONFIG_SEPARATE ? 1 : s->spp;
    int planes = s->planar == PLANARCONFIG_SEPARATE ? s->spp : 1;
    size_t bps = (size_t)s->bits / 8;
    if (s->tile) {
        TIFFSetField(t, TIFFTAG_TILEWIDTH, (uint32_t)s->tile);
        TIFFSetField(t, TIFFTAG_TILELENGTH, (uint32_t)s->tile);
        unsigned char *buf = calloc(1, (size_t)TIFFTileSize(t));
        for (int p = 0; p < planes; p++)
            for (int ty = 0; ty < s->height; ty += s->tile)
                for (int tx = 0; tx < s->width; tx += s->tile) {
                    memset(buf, 0, (size_t)TIFFTileSize(t));
                    for (int y = 0; y < s->tile; y++)
                        for (int x = 0; x < s->tile; x++)
                            for (int c = 0; c < per; c++) {
                                int X = tx + x, Y = ty + y, C = planes > 1 ? p : c;
                                if (X < s->width && Y < s->height)
                                    put_sample(buf, ((size_t)y * s->tile + x) * per + c, s->bits, s->fmt,
                                               values[((size_t)Y * s->width + X) * s->spp + C]);
                            }
                    TIFFWriteTile(t, buf, (uint32_t)tx, (uint32_t)ty, 0, (uint16_t)p);
                }
        free(buf);
    } else {
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)5);
        unsigned char *row = calloc((size_t)s->width * per, bps);
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < s->height; y++) {
                for (int x = 0; x < s->width; x++)
                    for (int c = 0; c < per; c++)
                        put_sample(row, (size_t)x * per + c, s->bits, s->fmt,
                                   values[((size_t)y * s->width + x) * s->spp + (planes > 1 ? p : c)]);
                TIFFWriteScanline(t, row, (uint32_t)y, (uint16_t)p);
            }
        free(row);
    }
    TIFFWriteDirectory(t);
}

static double *tiff_values(const TiffSpec *s, double lo, double hi, int integral)
{
    size_t n = (size_t)s->width * s->height * s->spp;
    double *v = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) {
        double x = test_rng_uniform(&rng, (float)lo, (float)hi);
        v[i] = integral ? floor(x) : x;
    }
    v[0] = lo;
    return v;
}

static void compare_tiff(const char *name, const UnetImage *img, const TiffSpec *s, const double *v)
{
    CHECK_MSG(img->width == s->width && img->height == s->height && img->channels == s->spp, "%s: shape", name);
    size_t plane = (size_t)s->width * s->height;
    int bad = 0;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < s->spp; c++)
            bad += img->data[c * plane + i] != (float)v[i * s->spp + c];
    CHECK_MSG(bad == 0, "%s: %d samples differ", name, bad);
}

static void tiff_case(const char *name, TiffSpec s, double lo, double hi)
{
    char *path = tmp_path(name);
    int integral = s.fmt != SAMPLEFORMAT_IEEEFP;
    double *v = tiff_values(&s, lo, hi, integral);
    TIFF *t = TIFFOpen(path, "w");
    tiff_put_page(t, &s, v);
    TIFFClose(t);
    UnetError err = { 0 };
    UnetImage img;
    UnetStatus st = unet_image_load(path, &img, &err);
    CHECK_MSG(st == UNET_OK, "%s: %s", name, err.message);
    if (st == UNET_OK) {
        compare_tiff(name, &img, &s, v);
        CHECK(img.format == UNET_IMAGE_FORMAT_TIFF && img.bit_depth == s.bits && img.pages == 1);
        CHECK(img.has_alpha == s.alpha);
        unet_image_free(&img);
    }
    free(v);
    free(path);
}

static void test_tiff(void)
{
    UnetError err = { 0 };
    TiffSpec g8 = { 37, 23, 1, 8, SAMPLEFORMAT_UINT, PHOTOMETRIC_MINISBLACK, PLANARCONFIG_CONTIG, 0, COMPRESSION_LZW, 0 };
    tiff_case("g8.tif", g8, 0, 256);
    TiffSpec g16 = g8;
    g16.bits = 16;
    g16.compression = COMPRESSION_ADOBE_DEFLATE;
    tiff_case("g16.tif", g16, 0, 65536);
    TiffSpec f32 = g8;
    f32.bits = 32;
    f32.fmt = SAMPLEFORMAT_IEEEFP;
    f32.compression = COMPRESSION_NONE;
    tiff_case("f32.tif", f32, -3.5, 1000.25);
    TiffSpec i16 = g16;
    i16.fmt = SAMPLEFORMAT_INT;
    tiff_case("i16.tif", i16, -32768, 32768);
    TiffSpec rgb = g8;
    rgb.spp = 3;
    rgb.photo = PHOTOMETRIC_RGB;
    tiff_case("rgb8.tif", rgb, 0, 256);
    TiffSpec rgba = rgb;
    rgba.spp = 4;
    rgba.alpha = 1;
    tiff_case("rgba8.tif", rgba, 0, 256);
    TiffSpec planar = rgb;
    planar.bits = 16;
    planar.planar = PLANARCONFIG_SEPARATE;
    tiff_case("rgb16-planar.tif", planar, 0, 65536);
    TiffSpec tiled = g8;
    tiled.width = 40;
    tiled.height = 33;
    tiled.tile = 16;
    tiff_case("tiled8.tif", tiled, 0, 256);
    TiffSpec tiled16p = planar;
    tiled16p.tile = 16;
    tiff_case("tiled16-planar.tif", tiled16p, 0, 65536);

    /* Min-is-white is inverted to min-is-black. */
    char *path = tmp_path("white.tif");
    double *v = tiff_values(&g8, 0, 256, 1);
    TiffSpec w = g8;
    w.photo = PHOTOMETRIC_MINISWHITE;
    TIFF *t = TIFFOpen(path, "w");
    tiff_put_page(t, &w, v);
    TIFFClose(t);
    UnetImage img;
    CHECK(unet_image_load(path, &img, &err) == UNET_OK);
    CHECK(img.data[0] == 255.0f - (float)v[0] && img.data[7] == 255.0f - (float)v[7]);
    unet_image_free(&img);
    free(v);
    free(path);

    /* Palette: colours for images, indices for masks. */
    path = tmp_path("palette.tif");
    TiffSpec pal = g8;
    pal.photo = PHOTOMETRIC_PALETTE;
    pal.compression = COMPRESSION_NONE;
    v = tiff_values(&pal, 0, 256, 1);
    uint16_t cr[256], cg[256], cb[256];
    for (int i = 0; i < 256; i++)
        cr[i] = (uint16_t)(i * 257), cg[i] = (uint16_t)((255 - i) * 257), cb[i] = (uint16_t)((i * 3 % 256) * 257);
    t = TIFFOpen(path, "w");
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8); /* the colour map's length follows it */
    TIFFSetField(t, TIFFTAG_COLORMAP, cr, cg, cb);
    tiff_put_page(t, &pal, v);
    TIFFClose(t);
    CHECK(unet_image_load(path, &img, &err) == UNET_OK);
    CHECK(img.channels == 3 && img.palette == 1);
    size_t plane = (size_t)pal.width * pal.height;
    int k = (int)v[9];
    CHECK(img.data[9] == k && img.data[plane + 9] == 255 - k && img.data[2 * plane + 9] == k * 3 % 256);
    unet_image_free(&img);
    UnetLabels lab;
    CHECK(unet_labels_load(path, 0, &lab, &err) == UNET_OK && lab.data[9] == k);
    unet_labels_free(&lab);
    free(v);
    free(path);

    /* 1-bit bilevel. */
    path = tmp_path("bilevel.tif");
    t = TIFFOpen(path, "w");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 11u);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 3u);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 1);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 3u);
    for (uint32_t y = 0; y < 3; y++) {
        unsigned char row[2] = { (unsigned char)(0xA5 >> y), 0x40 }; /* bit 9 set */
        TIFFWriteScanline(t, row, y, 0);
    }
    TIFFClose(t);
    CHECK(unet_image_load(path, &img, &err) == UNET_OK);
    CHECK(img.bit_depth == 1 && img.max_value == 1.0f);
    CHECK(img.data[0] == 1 && img.data[1] == 0 && img.data[2] == 1 && img.data[9] == 1 && img.data[10] == 0);
    CHECK(img.data[11 + 0] == 0 && img.data[11 + 1] == 1); /* 0xA5 >> 1 = 0x52 */
    unet_image_free(&img);
    free(path);

    /* Multi-page stack, pages of different content (ISBI train-volume.tif style). */
    path = tmp_path("stack.tif");
    TiffSpec page = g8;
    page.width = 20, page.height = 10, page.compression = COMPRESSION_NONE;
    double *pv[3];
    t = TIFFOpen(path, "w");
    for (int p = 0; p < 3; p++) {
        pv[p] = tiff_values(&page, 0, 256, 1);
        tiff_put_page(t, &page, pv[p]);
    }
    TIFFClose(t);
    int pages = 0;
    CHECK(unet_image_page_count(path, &pages, &err) == UNET_OK && pages == 3);
    for (int p = 0; p < 3; p++) {
        CHECK(unet_image_load_page(path, p, &img, &err) == UNET_OK);
        compare_tiff("stack page", &img, &page, pv[p]);
        CHECK(img.page == p && img.pages == 3);
        unet_image_free(&img);
    }
    CHECK(unet_image_load(path, &img, &err) == UNET_OK && img.page == 0);
    unet_image_free(&img);
    CHECK(unet_image_load_page(path, 3, &img, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, path) && strstr(err.message, "3 pages"));
    for (int p = 0; p < 3; p++)
        free(pv[p]);
    free(path);
}

/* ---- Damaged and unsupported files ---- */

static void expect_fail(const char *path, UnetStatus want, const char *fragment)
{
    UnetError err = { 0 };
    UnetImage img;
    UnetStatus st = unet_image_load(path, &img, &err);
    CHECK_MSG(st != UNET_OK, "%s loaded although damaged", path);
    if (st == UNET_OK) {
        unet_image_free(&img);
        return;
    }
    if (want != UNET_OK)
        CHECK_MSG(st == want, "%s: status %s, expected %s (%s)", path, unet_status_name(st), unet_status_name(want),
                  err.message);
    CHECK_MSG(strstr(err.message, path) != NULL, "message does not name the file: %s", err.message);
    if (fragment)
        CHECK_MSG(strstr(err.message, fragment) != NULL, "message lacks '%s': %s", fragment, err.message);
    UnetLabels lab;
    CHECK(unet_labels_load(path, 0, &lab, &err) != UNET_OK);
}

static void write_bytes(const char *path, const unsigned char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static void test_bad_files(void)
{
    UnetError err = { 0 };
    /* A good PNG, then truncated copies of it. */
    char *good = tmp_path("good.png");
    uint8_t pix[64 * 48];
    for (int i = 0; i < 64 * 48; i++)
        pix[i] = (uint8_t)(test_rng_uniform(&rng, 0, 255.99f));
    CHECK(unet_png_save(good, pix, 64, 48, 1, 8, &err) == UNET_OK);
    unsigned char *data;
    size_t len;
    CHECK(unet_read_file(good, &data, &len, &err) == UNET_OK);
    size_t cuts[] = { 0, 4, 8, 16, 30, 33, 41, 60, len / 2, len - 13, len - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "trunc-%zu.png", cuts[i]);
        char *p = tmp_path(name);
        write_bytes(p, data, cuts[i]);
        expect_fail(p, UNET_OK, NULL);
        free(p);
    }
    /* A flipped byte inside the image data: CRC error. */
    data[len / 2] ^= 0x5a;
    char *flip = tmp_path("flipped.png");
    write_bytes(flip, data, len);
    expect_fail(flip, UNET_ERR_FORMAT, "PNG");
    free(flip);
    free(data);
    free(good);

    char *garbage = tmp_path("garbage.png");
    unsigned char junk[300];
    for (int i = 0; i < 300; i++)
        junk[i] = (unsigned char)(test_rng_uniform(&rng, 0, 255.99f));
    junk[0] = 'x';
    write_bytes(garbage, junk, sizeof junk);
    expect_fail(garbage, UNET_ERR_FORMAT, "not a PNG, TIFF or .npy");
    free(garbage);
    char *empty = tmp_path("empty.png");
    write_bytes(empty, NULL, 0);
    expect_fail(empty, UNET_ERR_FORMAT, "empty");
    free(empty);
    char *jpeg = tmp_path("photo.png");
    write_bytes(jpeg, (const unsigned char *)"\xff\xd8\xff\xe0\0\x10JFIF", 10);
    expect_fail(jpeg, UNET_ERR_UNSUPPORTED, "JPEG");
    free(jpeg);
    char *missing = tmp_path("does-not-exist.png");
    expect_fail(missing, UNET_ERR_IO, "cannot open");
    free(missing);

    /* Unsupported TIFF layouts: tiled 12-bit, CMYK, 2-bit. */
    char *p12 = tmp_path("tiled12.tif");
    TIFF *t = TIFFOpen(p12, "w");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 32u);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 32u);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 12);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_TILEWIDTH, 16u);
    TIFFSetField(t, TIFFTAG_TILELENGTH, 16u);
    unsigned char *tile = calloc(1, (size_t)TIFFTileSize(t));
    for (uint32_t y = 0; y < 32; y += 16)
        for (uint32_t x = 0; x < 32; x += 16)
            TIFFWriteTile(t, tile, x, y, 0, 0);
    free(tile);
    TIFFClose(t);
    expect_fail(p12, UNET_ERR_UNSUPPORTED, "12-bit");
    UnetImage img;
    unet_image_load(p12, &img, &err);
    CHECK(strstr(err.message, "tiled") != NULL);
    free(p12);

    char *cmyk = tmp_path("cmyk.tif");
    TiffSpec sc = { 8, 8, 4, 8, SAMPLEFORMAT_UINT, PHOTOMETRIC_SEPARATED, PLANARCONFIG_CONTIG, 0, COMPRESSION_NONE, 0 };
    double *v = tiff_values(&sc, 0, 256, 1);
    t = TIFFOpen(cmyk, "w");
    tiff_put_page(t, &sc, v);
    TIFFClose(t);
    free(v);
    expect_fail(cmyk, UNET_ERR_UNSUPPORTED, "CMYK");
    free(cmyk);

    char *two = tmp_path("two-bit.tif");
    t = TIFFOpen(two, "w");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 8u);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 2u);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 2);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    unsigned char row2[2] = { 0x1b, 0xe4 };
    TIFFWriteScanline(t, row2, 0, 0);
    TIFFWriteScanline(t, row2, 1, 0);
    TIFFClose(t);
    expect_fail(two, UNET_ERR_UNSUPPORTED, "2-bit");
    free(two);

    /* Truncated TIFFs: header only, and half the pixel data. */
    char *tt = tmp_path("trunc.tif");
    TiffSpec big = { 64, 64, 1, 16, SAMPLEFORMAT_UINT, PHOTOMETRIC_MINISBLACK, PLANARCONFIG_CONTIG, 0,
                     COMPRESSION_NONE, 0 };
    v = tiff_values(&big, 0, 65536, 1);
    t = TIFFOpen(tt, "w");
    tiff_put_page(t, &big, v);
    TIFFClose(t);
    free(v);
    CHECK(unet_read_file(tt, &data, &len, &err) == UNET_OK);
    write_bytes(tt, data, 6);
    expect_fail(tt, UNET_ERR_FORMAT, "TIFF");
    /* libtiff puts the directory after the pixels: cut into the pixels and keep
     * the directory by moving it is complex; cut the middle out instead. */
    write_bytes(tt, data, len / 2);
    expect_fail(tt, UNET_ERR_FORMAT, NULL);
    free(data);
    free(tt);
}

/* ---- .npy ---- */

static void write_npy_raw(const char *path, const char *dict, const void *payload, size_t n)
{
    char head[128];
    size_t dl = strlen(dict);
    size_t total = 10 + dl + 1;
    size_t pad = (64 - total % 64) % 64;
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (char)((dl + pad + 1) & 0xff);
    head[9] = (char)((dl + pad + 1) >> 8);
    FILE *f = fopen(path, "wb");
    fwrite(head, 1, 10, f);
    fwrite(dict, 1, dl, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(payload, 1, n, f);
    fclose(f);
}

static void test_npy(void)
{
    UnetError err = { 0 };
    char *path = tmp_path("a.npy");
    float v[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        v[i] = (float)i * 0.5f - 3.0f;
    int shape3[3] = { 2, 3, 4 };
    CHECK(unet_npy_save(path, v, 3, shape3, &err) == UNET_OK);
    float *back;
    int ndim, shape[UNET_NPY_MAX_DIMS];
    CHECK(unet_npy_load(path, &back, &ndim, shape, &err) == UNET_OK);
    CHECK(ndim == 3 && shape[0] == 2 && shape[1] == 3 && shape[2] == 4 && !memcmp(back, v, sizeof v));
    free(back);
    unsigned char *raw;
    size_t len;
    CHECK(unet_read_file(path, &raw, &len, &err) == UNET_OK);
    CHECK(len == 128 + sizeof v && strstr((char *)raw + 10, "'shape': (2, 3, 4)") && raw[127] == '\n');
    free(raw);
    UnetImage img;
    CHECK(unet_image_load(path, &img, &err) == UNET_OK);
    CHECK(img.channels == 2 && img.height == 3 && img.width == 4 && img.format == UNET_IMAGE_FORMAT_NPY);
    CHECK(!memcmp(img.data, v, sizeof v) && img.sample_type == UNET_SAMPLE_FLOAT);
    /* [H,W] for one channel. */
    img.channels = 1;
    CHECK(unet_image_save_npy(path, &img, &err) == UNET_OK);
    CHECK(unet_npy_load(path, &back, &ndim, shape, &err) == UNET_OK && ndim == 2 && shape[0] == 3 && shape[1] == 4);
    free(back);
    unet_image_free(&img);
    int shape1[1] = { 5 };
    CHECK(unet_npy_save(path, v, 1, shape1, &err) == UNET_OK);
    CHECK(unet_read_file(path, &raw, &len, &err) == UNET_OK && strstr((char *)raw + 10, "(5,)"));
    free(raw);

    /* Other dtypes, HWC order. */
    uint8_t hwc[4 * 5 * 3];
    for (int i = 0; i < 60; i++)
        hwc[i] = (uint8_t)(i * 4);
    write_npy_raw(path, "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 5, 3), }", hwc, sizeof hwc);
    CHECK(unet_image_load(path, &img, &err) == UNET_OK);
    CHECK(img.channels == 3 && img.height == 4 && img.width == 5 && img.max_value == 255.0f);
    CHECK(img.data[0] == 0 && img.data[20] == 4 && img.data[40] == 8 && img.data[1] == 12);
    unet_image_free(&img);
    int16_t s16[6] = { -5, 0, 7, 300, -32768, 32767 };
    write_npy_raw(path, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }", s16, sizeof s16);
    CHECK(unet_image_load(path, &img, &err) == UNET_OK);
    CHECK(img.sample_type == UNET_SAMPLE_INT && img.data[0] == -5 && img.data[4] == -32768);
    unet_image_free(&img);

    write_npy_raw(path, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", v, 24);
    expect_fail(path, UNET_ERR_UNSUPPORTED, "big-endian");
    write_npy_raw(path, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", v, 24);
    expect_fail(path, UNET_ERR_UNSUPPORTED, "Fortran");
    write_npy_raw(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (20, 30), }", v, 24);
    expect_fail(path, UNET_ERR_FORMAT, "truncated");
    write_npy_raw(path, "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", v, 48);
    expect_fail(path, UNET_ERR_UNSUPPORTED, "dtype");
    write_npy_raw(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2, 3), }", v, 96);
    expect_fail(path, UNET_ERR_UNSUPPORTED, "not an image");
    free(path);
}

/* ---- Masks as labels ---- */

static void test_labels(void)
{
    UnetError err = { 0 };
    UnetImage img;
    UnetLabels lab;
    CHECK(unet_image_alloc(&img, 3, 2, 3, &err) == UNET_OK);
    for (int i = 0; i < 18; i++)
        img.data[i] = (float)(i % 6) * 2.0f;
    CHECK(unet_labels_from_image(&img, "m.png", &lab, &err) == UNET_OK && lab.data[5] == 10);
    unet_labels_free(&lab);
    img.data[6 + 4] = 1.0f; /* G differs from R at pixel 4 */
    CHECK(unet_labels_from_image(&img, "m.png", &lab, &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "m.png") && strstr(err.message, "colour"));
    unet_image_free(&img);
    CHECK(unet_image_alloc(&img, 2, 2, 1, &err) == UNET_OK);
    img.data[3] = 0.5f;
    CHECK(unet_labels_from_image(&img, "f.tif", &lab, &err) == UNET_ERR_FORMAT && strstr(err.message, "whole"));
    img.data[3] = -1.0f;
    CHECK(unet_labels_from_image(&img, "f.tif", &lab, &err) == UNET_ERR_FORMAT && strstr(err.message, "negative"));
    unet_image_free(&img);
    /* RGBA mask with R = G = B: alpha ignored. */
    CHECK(unet_image_alloc(&img, 2, 1, 4, &err) == UNET_OK);
    img.has_alpha = 1;
    float px[8] = { 0, 255, 0, 255, 0, 255, 7, 9 };
    memcpy(img.data, px, sizeof px);
    CHECK(unet_labels_from_image(&img, "rgba.png", &lab, &err) == UNET_OK && lab.data[0] == 0 && lab.data[1] == 255);
    unet_labels_free(&lab);
    unet_image_free(&img);
}

/* ---- Network input ---- */

static void test_input(void)
{
    UnetError err = { 0 };
    UnetInputSpec spec;
    unet_input_spec_default(&spec);
    CHECK(spec.intensity == UNET_INTENSITY_MINMAX && spec.color == UNET_COLOR_KEEP);
    UnetImage rgba, out;
    CHECK(unet_image_alloc(&rgba, 4, 3, 4, &err) == UNET_OK);
    rgba.has_alpha = 1;
    size_t plane = 12;
    for (size_t i = 0; i < plane; i++) {
        rgba.data[i] = (float)(10 + i);          /* R */
        rgba.data[plane + i] = (float)(20 + i);  /* G */
        rgba.data[2 * plane + i] = (float)(30 + 2 * i); /* B */
        rgba.data[3 * plane + i] = 255.0f;       /* alpha */
    }
    CHECK(unet_input_channels(4, 1, &spec) == 3);
    CHECK(unet_image_to_input(&rgba, &spec, &out, &err) == UNET_OK);
    CHECK(out.channels == 3 && out.width == 4 && out.height == 3);
    float lo = 1e9f, hi = -1e9f;
    for (size_t i = 0; i < 3 * plane; i++) {
        lo = out.data[i] < lo ? out.data[i] : lo;
        hi = out.data[i] > hi ? out.data[i] : hi;
    }
    CHECK(lo == 0.0f && fabsf(hi - 1.0f) < 1e-6f);
    CHECK(fabsf(out.data[0] - 0.0f) < 1e-6f && fabsf(out.data[2 * plane + 11] - 1.0f) < 1e-6f);
    CHECK(fabsf(out.data[plane] - 10.0f / 42.0f) < 1e-6f); /* joint min-max over channels: (20-10)/(52-10) */
    unet_image_free(&out);

    spec.color = UNET_COLOR_GREY;
    spec.intensity = UNET_INTENSITY_NONE;
    CHECK(unet_image_to_input(&rgba, &spec, &out, &err) == UNET_OK && out.channels == 1);
    CHECK(fabsf(out.data[5] - (0.299f * 15 + 0.587f * 25 + 0.114f * 40)) < 1e-4f);
    unet_image_free(&out);

    spec.color = UNET_COLOR_KEEP;
    spec.intensity = UNET_INTENSITY_ZSCORE;
    CHECK(unet_image_to_input(&rgba, &spec, &out, &err) == UNET_OK);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < 3 * plane; i++)
        s += out.data[i], s2 += (double)out.data[i] * out.data[i];
    CHECK(fabs(s / 36) < 1e-5 && fabs(s2 / 36 - 1.0) < 1e-4);
    unet_image_free(&out);

    spec.intensity = UNET_INTENSITY_RANGE;
    spec.range_lo = 15.0f;
    spec.range_hi = 35.0f;
    CHECK(unet_image_to_input(&rgba, &spec, &out, &err) == UNET_OK);
    CHECK(out.data[0] == 0.0f && out.data[2 * plane + 11] == 1.0f && fabsf(out.data[plane] - 0.25f) < 1e-6f);
    unet_image_free(&out);
    spec.range_hi = 15.0f;
    CHECK(unet_image_to_input(&rgba, &spec, &out, &err) == UNET_ERR_INVALID);
    unet_image_free(&rgba);

    /* Grey repeated into RGB; a constant image normalises to 0. */
    UnetImage grey;
    CHECK(unet_image_alloc(&grey, 5, 2, 1, &err) == UNET_OK);
    for (int i = 0; i < 10; i++)
        grey.data[i] = 77.0f;
    spec.intensity = UNET_INTENSITY_MINMAX;
    spec.color = UNET_COLOR_RGB;
    CHECK(unet_image_to_input(&grey, &spec, &out, &err) == UNET_OK && out.channels == 3);
    int nonzero = 0;
    for (int i = 0; i < 30; i++)
        nonzero += out.data[i] != 0.0f;
    CHECK(nonzero == 0);
    unet_image_free(&out);
    grey.data[3] = 100.0f;
    CHECK(unet_image_to_input(&grey, &spec, &out, &err) == UNET_OK);
    CHECK(out.data[3] == 1.0f && out.data[10 + 3] == 1.0f && out.data[20 + 3] == 1.0f && out.data[0] == 0.0f);
    unet_image_free(&out);
    unet_image_free(&grey);

    UnetIntensity in;
    UnetColor co;
    CHECK(unet_intensity_parse("zscore", &in, &err) == UNET_OK && in == UNET_INTENSITY_ZSCORE);
    CHECK(unet_intensity_parse("bogus", &in, &err) == UNET_ERR_INVALID && strstr(err.message, "bogus"));
    CHECK(unet_color_parse("gray", &co, &err) == UNET_OK && co == UNET_COLOR_GREY);
    CHECK(unet_color_parse("cmyk", &co, &err) == UNET_ERR_INVALID);
}

int main(void)
{
    test_rng_seed(&rng, 2024);
    tmpdir = test_make_temp_dir("image");
    if (!tmpdir) {
        fprintf(stderr, "cannot make a temporary folder\n");
        return 1;
    }
    /* Everything libpng/libtiff might say must end up in our messages, not on
     * stderr: capture stderr while the loaders run. */
    char *capture = tmp_path("stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    int before = test_failures;

    test_png();
    test_tiff();
    test_bad_files();
    test_npy();
    test_labels();
    test_input();

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    unsigned char *said;
    size_t len;
    UnetError err = { 0 };
    CHECK(unet_read_file(capture, &said, &len, &err) == UNET_OK);
    /* Our own CHECK failures go there too; show them. */
    if (len)
        fprintf(stderr, "%s", said);
    CHECK_MSG(test_failures > before || len == 0, "the libraries printed to stderr: %s", said);
    free(said);
    free(capture);
    printf("temporary files in %s\n", tmpdir);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (test_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    free(tmpdir);
    return test_finish("image");
}
