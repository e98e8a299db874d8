/* tiling.c - overlap-tile: mirror extension, tile grid, extraction, stitching,
 * streaming application, random training tiles and a picture of the grid. */
#include "tiling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

UnetStatus unet_tile_grid_init(UnetTileGrid *g, int image_width, int image_height, int input_size,
                               int output_size, UnetError *err)
{
    memset(g, 0, sizeof *g);
    if (image_width < 1 || image_height < 1)
        return unet_error_set(err, UNET_ERR_INVALID, "cannot tile an empty image (%d x %d)", image_width, image_height);
    if (output_size < 1 || input_size < output_size)
        return unet_error_set(err, UNET_ERR_INVALID, "tile sizes input %d, output %d are invalid: the output tile "
                              "must be at least 1 pixel and not larger than the input tile", input_size, output_size);
    if ((input_size - output_size) % 2)
        return unet_error_set(err, UNET_ERR_INVALID, "tile sizes input %d, output %d are invalid: their difference "
                              "must be even (the same border on each side)", input_size, output_size);
    g->image_width = image_width;
    g->image_height = image_height;
    g->input_size = input_size;
    g->output_size = output_size;
    g->border = (input_size - output_size) / 2;
    g->tiles_x = (image_width + output_size - 1) / output_size;
    g->tiles_y = (image_height + output_size - 1) / output_size;
    return UNET_OK;
}

int unet_tile_grid_count(const UnetTileGrid *g)
{
    return g->tiles_x * g->tiles_y;
}

void unet_tile_grid_tile(const UnetTileGrid *g, int index, UnetTile *t)
{
    t->index = index;
    t->tx = index % g->tiles_x;
    t->ty = index / g->tiles_x;
    t->out_x = t->tx * g->output_size;
    t->out_y = t->ty * g->output_size;
    t->valid_w = g->image_width - t->out_x < g->output_size ? g->image_width - t->out_x : g->output_size;
    t->valid_h = g->image_height - t->out_y < g->output_size ? g->image_height - t->out_y : g->output_size;
    t->in_x = t->out_x - g->border;
    t->in_y = t->out_y - g->border;
}

void unet_tile_iter_init(UnetTileIter *it, const UnetTileGrid *g)
{
    it->grid = g;
    it->next = 0;
}

bool unet_tile_iter_next(UnetTileIter *it, UnetTile *tile)
{
    if (it->next >= unet_tile_grid_count(it->grid))
        return false;
    unet_tile_grid_tile(it->grid, it->next++, tile);
    return true;
}

int unet_mirror_index(int i, int n)
{
    if (i >= 0 && i < n)
        return i;
    if (n <= 1)
        return 0;
    long period = 2L * n;
    long m = (long)i % period;
    if (m < 0)
        m += period;
    return (int)(m < n ? m : period - 1 - m);
}

/* Column indices of a crop; NULL when the crop lies inside the image (or when
 * out of memory, in which case callers compute them per pixel). */
static int *crop_columns(int width, int x0, int crop_w, int *inside)
{
    *inside = x0 >= 0 && x0 + crop_w <= width;
    if (*inside)
        return NULL;
    int *xs = malloc(sizeof(int) * (size_t)crop_w);
    if (xs)
        for (int x = 0; x < crop_w; x++)
            xs[x] = unet_mirror_index(x0 + x, width);
    return xs;
}

void unet_mirror_crop(float *dst, const float *src, int channels, int height, int width, int x0, int y0,
                      int crop_w, int crop_h)
{
    int inside;
    int *xs = crop_columns(width, x0, crop_w, &inside);
    size_t plane = (size_t)width * height;
    for (int c = 0; c < channels; c++) {
        const float *sp = src + c * plane;
        float *dp = dst + (size_t)c * crop_w * crop_h;
        for (int y = 0; y < crop_h; y++) {
            const float *row = sp + (size_t)unet_mirror_index(y0 + y, height) * width;
            float *out = dp + (size_t)y * crop_w;
            if (inside)
                memcpy(out, row + x0, sizeof(float) * (size_t)crop_w);
            else if (xs)
                for (int x = 0; x < crop_w; x++)
                    out[x] = row[xs[x]];
            else
                for (int x = 0; x < crop_w; x++)
                    out[x] = row[unet_mirror_index(x0 + x, width)];
        }
    }
    free(xs);
}

void unet_mirror_crop_i32(int32_t *dst, const int32_t *src, int height, int width, int x0, int y0, int crop_w,
                          int crop_h)
{
    int inside;
    int *xs = crop_columns(width, x0, crop_w, &inside);
    for (int y = 0; y < crop_h; y++) {
        const int32_t *row = src + (size_t)unet_mirror_index(y0 + y, height) * width;
        int32_t *out = dst + (size_t)y * crop_w;
        if (inside)
            memcpy(out, row + x0, sizeof(int32_t) * (size_t)crop_w);
        else if (xs)
            for (int x = 0; x < crop_w; x++)
                out[x] = row[xs[x]];
        else
            for (int x = 0; x < crop_w; x++)
                out[x] = row[unet_mirror_index(x0 + x, width)];
    }
    free(xs);
}

UnetStatus unet_mirror_extend(const UnetImage *src, int border, UnetImage *dst, UnetError *err)
{
    if (border < 0)
        return unet_error_set(err, UNET_ERR_INVALID, "mirror border %d is negative", border);
    UnetStatus st = unet_image_alloc(dst, src->width + 2 * border, src->height + 2 * border, src->channels, err);
    if (st)
        return st;
    unet_mirror_crop(dst->data, src->data, src->channels, src->height, src->width, -border, -border, dst->width,
                     dst->height);
    dst->format = src->format;
    dst->sample_type = src->sample_type;
    dst->bit_depth = src->bit_depth;
    dst->has_alpha = src->has_alpha;
    dst->max_value = src->max_value;
    return UNET_OK;
}

void unet_tile_extract(const UnetTileGrid *g, const UnetTile *t, const float *image, int channels, float *tile_in)
{
    unet_mirror_crop(tile_in, image, channels, g->image_height, g->image_width, t->in_x, t->in_y, g->input_size,
                     g->input_size);
}

void unet_tile_stitch(const UnetTileGrid *g, const UnetTile *t, const float *tile_out, int channels, float *map)
{
    size_t plane = (size_t)g->image_width * g->image_height;
    size_t tplane = (size_t)g->output_size * g->output_size;
    for (int c = 0; c < channels; c++)
        for (int y = 0; y < t->valid_h; y++)
            memcpy(map + c * plane + (size_t)(t->out_y + y) * g->image_width + t->out_x,
                   tile_out + c * tplane + (size_t)y * g->output_size, sizeof(float) * (size_t)t->valid_w);
}

UnetStatus unet_tiling_apply(const UnetTileGrid *g, const float *image, int in_channels, int out_channels,
                             float *map, UnetTileFn fn, void *user, UnetError *err)
{
    float *tin = malloc(sizeof(float) * (size_t)in_channels * g->input_size * g->input_size);
    float *tout = malloc(sizeof(float) * (size_t)out_channels * g->output_size * g->output_size);
    UnetStatus st = UNET_OK;
    if (!tin || !tout) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory for %d-pixel tiles", g->input_size);
    } else {
        UnetTileIter it;
        UnetTile t;
        unet_tile_iter_init(&it, g);
        while (st == UNET_OK && unet_tile_iter_next(&it, &t)) {
            unet_tile_extract(g, &t, image, in_channels, tin);
            st = fn(tin, tout, &t, user, err);
            if (st == UNET_OK)
                unet_tile_stitch(g, &t, tout, out_channels, map);
        }
    }
    free(tin);
    free(tout);
    return st;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, n]. */
static int uniform_upto(uint64_t *rng, int n)
{
    uint64_t r = splitmix64(rng) >> 11;
    return (int)((double)r * (double)(n + 1) / 9007199254740992.0);
}

void unet_tile_random_position(int image_width, int image_height, int output_size, uint64_t *rng, int *out_x,
                               int *out_y)
{
    int rx = image_width > output_size ? image_width - output_size : 0;
    int ry = image_height > output_size ? image_height - output_size : 0;
    *out_x = uniform_upto(rng, rx);
    *out_y = uniform_upto(rng, ry);
}

UnetStatus unet_tile_sample(const UnetImage *image, const UnetLabels *labels, int input_size, int output_size,
                            uint64_t *rng, float *tile_in, int32_t *tile_labels, int *out_x, int *out_y,
                            UnetError *err)
{
    UnetTileGrid g;
    UnetStatus st = unet_tile_grid_init(&g, image->width, image->height, input_size, output_size, err);
    if (st)
        return st;
    if (labels && (labels->width != image->width || labels->height != image->height))
        return unet_error_set(err, UNET_ERR_INVALID, "label map %d x %d does not match its image %d x %d",
                              labels->width, labels->height, image->width, image->height);
    int ox, oy;
    unet_tile_random_position(image->width, image->height, output_size, rng, &ox, &oy);
    unet_mirror_crop(tile_in, image->data, image->channels, image->height, image->width, ox - g.border,
                     oy - g.border, input_size, input_size);
    if (labels && tile_labels)
        unet_mirror_crop_i32(tile_labels, labels->data, labels->height, labels->width, ox, oy, output_size,
                             output_size);
    if (out_x)
        *out_x = ox;
    if (out_y)
        *out_y = oy;
    return UNET_OK;
}

/* ---- Picture of the grid ---- */

typedef struct Canvas {
    float *r, *g, *b;
    int w, h, border;
    double scale;
} Canvas;

static int canvas_coord(const Canvas *cv, int world, int limit)
{
    int c = (int)floor((world + cv->border) * cv->scale);
    return c < 0 ? 0 : (c >= limit ? limit - 1 : c);
}

static void put(Canvas *cv, int x, int y, const float rgb[3])
{
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h)
        return;
    size_t i = (size_t)y * cv->w + x;
    cv->r[i] = rgb[0];
    cv->g[i] = rgb[1];
    cv->b[i] = rgb[2];
}

/* Vertical line at world x from world y0 to y1 (exclusive), `thick` pixels. */
static void vline(Canvas *cv, int x, int y0, int y1, const float rgb[3], int dashed, int thick)
{
    int cx = canvas_coord(cv, x, cv->w), a = canvas_coord(cv, y0, cv->h), b = canvas_coord(cv, y1, cv->h);
    for (int k = 0; k < thick; k++)
        for (int y = a; y <= b; y++)
            if (!dashed || !((y / 4) & 1))
                put(cv, cx + (x > 0 ? -k : k), y, rgb);
}

static void hline(Canvas *cv, int y, int x0, int x1, const float rgb[3], int dashed, int thick)
{
    int cy = canvas_coord(cv, y, cv->h), a = canvas_coord(cv, x0, cv->w), b = canvas_coord(cv, x1, cv->w);
    for (int k = 0; k < thick; k++)
        for (int x = a; x <= b; x++)
            if (!dashed || !((x / 4) & 1))
                put(cv, x, cy + (y > 0 ? -k : k), rgb);
}

static void rect(Canvas *cv, int x0, int y0, int x1, int y1, const float rgb[3], int thick)
{
    vline(cv, x0, y0, y1, rgb, 0, thick);
    vline(cv, x1, y0, y1, rgb, 0, thick);
    hline(cv, y0, x0, x1, rgb, 0, thick);
    hline(cv, y1, x0, x1, rgb, 0, thick);
}

UnetStatus unet_tiling_draw(const UnetTileGrid *g, const UnetImage *image, int highlight, int max_side,
                            UnetImage *rgb, UnetError *err)
{
    if (image && (image->width != g->image_width || image->height != g->image_height))
        return unet_error_set(err, UNET_ERR_INVALID, "image %d x %d does not match the tile grid %d x %d",
                              image->width, image->height, g->image_width, g->image_height);
    int b = g->border, out = g->output_size;
    int ext_w = g->tiles_x * out + 2 * b, ext_h = g->tiles_y * out + 2 * b;
    double scale = 1.0;
    int longest = ext_w > ext_h ? ext_w : ext_h;
    if (max_side > 0 && longest > max_side)
        scale = (double)max_side / longest;
    int cw = (int)floor(ext_w * scale), ch = (int)floor(ext_h * scale);
    cw = cw < 1 ? 1 : cw;
    ch = ch < 1 ? 1 : ch;
    UnetStatus st = unet_image_alloc(rgb, cw, ch, 3, err);
    if (st)
        return st;
    rgb->sample_type = UNET_SAMPLE_UINT;
    rgb->bit_depth = 8;
    rgb->max_value = 255.0f;
    size_t cplane = (size_t)cw * ch;
    Canvas cv = { rgb->data, rgb->data + cplane, rgb->data + 2 * cplane, cw, ch, b, scale };

    /* Display scaling of the image: min-max over its colour channels. */
    int W = g->image_width, H = g->image_height;
    size_t plane = (size_t)W * H;
    int color = 0;
    float lo = 0.0f, hi = 1.0f;
    if (image) {
        color = image->channels - (image->has_alpha ? 1 : 0);
        color = color >= 3 ? 3 : 1;
        lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < plane * color; i++)
            if (isfinite(image->data[i])) {
                lo = image->data[i] < lo ? image->data[i] : lo;
                hi = image->data[i] > hi ? image->data[i] : hi;
            }
        if (!(hi > lo)) {
            hi = lo + 1.0f;
            if (!isfinite(lo))
                lo = 0.0f, hi = 1.0f;
        }
    }
    UnetTile ht;
    int have_highlight = highlight >= 0 && highlight < unet_tile_grid_count(g);
    if (have_highlight)
        unet_tile_grid_tile(g, highlight, &ht);
    int cover_w = g->tiles_x * out, cover_h = g->tiles_y * out;
    for (int cy = 0; cy < ch; cy++) {
        int wy = (int)floor((cy + 0.5) / scale) - b;
        for (int cx = 0; cx < cw; cx++) {
            int wx = (int)floor((cx + 0.5) / scale) - b;
            float v[3] = { 128.0f, 128.0f, 128.0f };
            if (image) {
                size_t i = (size_t)unet_mirror_index(wy, H) * W + unet_mirror_index(wx, W);
                for (int k = 0; k < 3; k++) {
                    float s = image->data[(color == 3 ? k : 0) * plane + i];
                    v[k] = isfinite(s) ? 255.0f * (s - lo) / (hi - lo) : 0.0f;
                }
            }
            float f = 1.0f;
            bool in_image = wx >= 0 && wy >= 0 && wx < W && wy < H;
            bool in_cover = wx >= 0 && wy >= 0 && wx < cover_w && wy < cover_h;
            if (!in_image)
                f = in_cover ? 0.3f : 0.55f;
            size_t i = (size_t)cy * cw + cx;
            float px[3] = { v[0] * f, v[1] * f, v[2] * f };
            if (have_highlight && wx >= ht.out_x && wx < ht.out_x + out && wy >= ht.out_y && wy < ht.out_y + out) {
                px[0] = 0.65f * px[0] + 0.35f * 255.0f;
                px[1] = 0.65f * px[1] + 0.35f * 40.0f;
                px[2] = 0.65f * px[2] + 0.35f * 40.0f;
            }
            cv.r[i] = px[0];
            cv.g[i] = px[1];
            cv.b[i] = px[2];
        }
    }
    static const float green[3] = { 40, 210, 60 }, yellow[3] = { 255, 215, 0 }, blue[3] = { 60, 130, 255 },
                       red[3] = { 255, 50, 50 };
    for (int k = 0; k <= g->tiles_x; k++)
        vline(&cv, k * out, 0, cover_h, green, 0, 1);
    for (int k = 0; k <= g->tiles_y; k++)
        hline(&cv, k * out, 0, cover_w, green, 0, 1);
    vline(&cv, 0, -b, cover_h + b, yellow, 1, 1);
    vline(&cv, W, -b, cover_h + b, yellow, 1, 1);
    hline(&cv, 0, -b, cover_w + b, yellow, 1, 1);
    hline(&cv, H, -b, cover_w + b, yellow, 1, 1);
    if (have_highlight) {
        rect(&cv, ht.out_x, ht.out_y, ht.out_x + out, ht.out_y + out, red, 2);
        rect(&cv, ht.in_x, ht.in_y, ht.in_x + g->input_size, ht.in_y + g->input_size, blue, 2);
    }
    return UNET_OK;
}
