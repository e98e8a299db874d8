/* inference.c - overlap-tile prediction of whole images (batched tiles, test-time
 * augmentation, cancellation), label maps, overlays, and the input spec and
 * model stored in a checkpoint. */
#include "inference.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiling.h"

#define DEFAULT_TILE_NEAR 572
/* Instance-norm models run the whole image as one tile up to this much
 * inference activation memory. */
#define WHOLE_IMAGE_BUDGET ((size_t)1 << 30)
#define CUDA_DEFAULT_BATCH 4
#define TTA_TRANSFORMS 8

void unet_predict_options_default(UnetPredictOptions *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->margin = -1;
}

/* ---- geometry --------------------------------------------------------------- */

/* Factor by which the deepest level is smaller than the input: tile offsets
 * that are multiples of it keep every pooling window where a pass over the
 * whole image would put it. */
static int pool_factor(const UnetModelConfig *cfg)
{
    if (cfg->arch == UNET_ARCH_FCN)
        return 4;
    return 1 << (cfg->depth - 1);
}

static int round_up(int v, int a)
{
    return (v + a - 1) / a * a;
}

/* Statistics of instance norm depend on the whole tile. */
static int per_tile_statistics(const UnetModelConfig *cfg)
{
    return cfg->arch != UNET_ARCH_UNET || cfg->norm == UNET_NORM_INSTANCE;
}

/* Receptive-field radius of a same-padding unet: the border of the same net
 * with valid padding, plus pooling-factor - 1 because a pixel's pooling
 * windows need not be centred on it, plus one low-resolution pixel per
 * bilinear upsampling (the interpolation reads a neighbour the valid count
 * does not see). */
static int same_padding_radius(const UnetModelConfig *cfg)
{
    UnetModelConfig v = *cfg;
    v.padding = UNET_PAD_VALID;
    int in, out;
    int r = 0;
    if (unet_model_valid_input_size(&v, DEFAULT_TILE_NEAR, &in, &out) == 0 && out > 0)
        r = (in - out) / 2;
    r += pool_factor(cfg) - 1;
    if (cfg->upsample == UNET_UP_BILINEAR)
        r += 1 << cfg->depth;
    return r;
}

/* Smallest valid side >= from whose output minus 2 * margin is >= need;
 * -1 when none below limit. */
static int smallest_covering(const UnetModelConfig *cfg, int from, int need, int margin, int limit)
{
    for (int s = from < 1 ? 1 : from; s <= limit; s++) {
        int below, above;
        unet_model_valid_input_neighbours(cfg, s, &below, &above);
        if (above < 0 || above > limit)
            return -1;
        if (unet_model_output_size(cfg, above) - 2 * margin >= need)
            return above;
        s = above;
    }
    return -1;
}

/* The default tile: the valid side up to `cap` that computes the fewest input
 * pixels over the whole image (tiles x side^2), so a 512 x 512 image takes one
 * 700-pixel tile of the paper's net rather than four of 572, and large
 * images take large tiles (less context recomputed per output pixel). Ties go
 * to the smaller side. -1 when no side up to cap leaves output beyond the
 * margins. */
static int least_work_tile(const UnetModelConfig *cfg, int width, int height, int margin, int cap)
{
    int best = -1;
    double best_work = 0.0;
    for (int s = 1; s <= cap; s++) {
        int below, above;
        unet_model_valid_input_neighbours(cfg, s, &below, &above);
        if (above < 0 || above > cap)
            break;
        s = above;
        const int o = unet_model_output_size(cfg, s) - 2 * margin;
        if (o < 1)
            continue;
        const double work = (double)((width + o - 1) / o) * ((height + o - 1) / o) * s * s;
        if (best < 0 || work < best_work) {
            best = s;
            best_work = work;
        }
        if (o >= width && o >= height)
            break; /* one tile covers the image: larger ones only add work */
    }
    return best;
}

static UnetStatus invalid_tile(const UnetModelConfig *cfg, int tile, UnetError *err)
{
    int below, above;
    unet_model_valid_input_neighbours(cfg, tile, &below, &above);
    return unet_error_set(err, UNET_ERR_INVALID,
                          "tile %d is not a valid input side of the %s model; the nearest valid "
                          "sides are %d and %d", tile, unet_arch_name(cfg->arch), below, above);
}

UnetStatus unet_predict_geometry(const UnetModelConfig *cfg, const UnetBackend *be, int width,
                                 int height, const UnetPredictOptions *opt, UnetPredictGeometry *g,
                                 UnetError *err)
{
    UnetPredictOptions defaults;
    if (!opt) {
        unet_predict_options_default(&defaults);
        opt = &defaults;
    }
    UnetStatus st = unet_model_config_validate(cfg, err);
    if (st != UNET_OK)
        return st;
    if (width < 1 || height < 1)
        return unet_error_set(err, UNET_ERR_INVALID, "cannot predict a %d x %d image", width,
                              height);
    if (opt->tile < 0 || opt->batch < 0)
        return unet_error_set(err, UNET_ERR_INVALID, "tile %d and batch %d must not be negative",
                              opt->tile, opt->batch);
    memset(g, 0, sizeof *g);
    const int side = width > height ? width : height;
    const int a = pool_factor(cfg);
    int near_in, near_out;
    if (unet_model_valid_input_size(cfg, DEFAULT_TILE_NEAR, &near_in, &near_out) != 0)
        return unet_error_set(err, UNET_ERR_INVALID, "the %s model has no valid input size",
                              unet_arch_name(cfg->arch));
    const int limit = near_in + 2 * side + 4096;
    /* default tiles stay within about twice the activation memory of near_in */
    int cap, cap_above;
    unet_model_valid_input_neighbours(cfg, near_in * 3 / 2, &cap, &cap_above);
    if (cap < near_in)
        cap = near_in;

    int tile = opt->tile, margin = 0;
    if (tile && unet_model_output_size(cfg, tile) < 1)
        return invalid_tile(cfg, tile, err);

    if (cfg->arch == UNET_ARCH_UNET && cfg->padding == UNET_PAD_VALID) {
        /* The net's own border is the context; nothing to drop. */
        if (!tile)
            tile = least_work_tile(cfg, width, height, 0, cap);
        if (opt->margin > 0)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "a margin applies to same-padding models only; this valid-"
                                  "padding model takes its context from its own border");
    } else if (!per_tile_statistics(cfg)) {
        const int radius_margin = round_up(same_padding_radius(cfg), a);
        if (opt->margin >= 0) {
            margin = opt->margin;
        } else if (tile) {
            /* a small tile given by hand keeps at least half of its side */
            int cap = tile / 4 / a * a;
            margin = radius_margin < cap ? radius_margin : cap;
        } else {
            margin = radius_margin;
        }
        if (!tile) {
            tile = least_work_tile(cfg, width, height, margin, cap);
            if (tile < 0) /* no default-sized tile fits the margin */
                tile = smallest_covering(cfg, cap, a, margin, limit);
        }
    } else {
        if (!tile) {
            int whole = smallest_covering(cfg, side, side, 0, limit);
            UnetMemoryEstimate est;
            UnetError e2;
            if (whole > 0 && unet_model_memory_estimate(cfg, 1, whole, whole, &est, &e2) == UNET_OK &&
                est.infer_peak_bytes <= WHOLE_IMAGE_BUDGET)
                tile = whole;
            else
                tile = near_in;
        }
        if (opt->margin >= 0)
            margin = opt->margin;
        else if (unet_model_output_size(cfg, tile) >= side)
            margin = 0; /* one tile covers the image */
        else
            margin = round_up(tile / 8, a);
    }
    if (tile < 1)
        return unet_error_set(err, UNET_ERR_INVALID, "no valid tile side fits the %d-pixel margin",
                              margin);
    g->tile_in = tile;
    g->tile_out = unet_model_output_size(cfg, tile);
    g->margin = margin;
    g->stride = g->tile_out - 2 * margin;
    if (g->stride < 1)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "a margin of %d pixels on each side leaves nothing of the %d-pixel "
                              "output of tile %d; use a larger tile or a smaller margin", margin,
                              g->tile_out, tile);
    g->context = (g->tile_in - g->stride) / 2;
    g->tiles_x = (width + g->stride - 1) / g->stride;
    g->tiles_y = (height + g->stride - 1) / g->stride;
    g->transforms = opt->tta ? TTA_TRANSFORMS : 1;
    g->forwards = (long)g->tiles_x * g->tiles_y * g->transforms;
    int batch = opt->batch;
    if (!batch)
        batch = be && !strcmp(be->name, "cuda") ? CUDA_DEFAULT_BATCH : 1;
    g->batch = (long)batch > g->forwards ? (int)g->forwards : batch;
    return UNET_OK;
}

/* ---- dihedral transforms of square planes --------------------------------- */

/* Source pixel of (y, x) under transform k of an n x n square: k & 4 mirrors
 * x, then k & 3 quarter turns. */
static inline void dihedral_source(int k, int n, int y, int x, int *sy, int *sx)
{
    if (k & 4)
        x = n - 1 - x;
    switch (k & 3) {
    case 0: *sy = y; *sx = x; break;
    case 1: *sy = x; *sx = n - 1 - y; break;
    case 2: *sy = n - 1 - y; *sx = n - 1 - x; break;
    default: *sy = n - 1 - x; *sx = y; break;
    }
}

/* dst = T_k(src) per plane, or its inverse. */
static void dihedral(float *dst, const float *src, int planes, int n, int k, int inverse)
{
    const size_t plane = (size_t)n * n;
    for (int p = 0; p < planes; p++) {
        const float *s = src + p * plane;
        float *d = dst + p * plane;
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) {
                int sy, sx;
                dihedral_source(k, n, y, x, &sy, &sx);
                if (inverse)
                    d[(size_t)sy * n + sx] = s[(size_t)y * n + x];
                else
                    d[(size_t)y * n + x] = s[(size_t)sy * n + sx];
            }
    }
}

/* ---- prediction --------------------------------------------------------------- */

static UnetStatus backend_failed(UnetBackend *be, UnetError *err, const char *what)
{
    UnetStatus st = be->error.status != UNET_OK ? be->error.status : UNET_ERR_BACKEND;
    return unet_error_set(err, st, "predict: %s: %s", what, be->error.message);
}

typedef struct PredictRun {
    UnetModel *m;
    UnetBackend *be;
    UnetPredictGeometry g;
    UnetTileGrid grid;
    int channels, classes;
    const float *image;
    float *probs;
    float *xhost, *yhost;   /* batch of network inputs / outputs */
    float *tile_in;         /* the current tile's input before its transform */
    float *turned;          /* one output after the inverse transform */
    float *acc;             /* per tile in flight: sum over transforms, stride^2 per class */
    int slots;
    int cached_tile;
    UnetTensor x;
    int x_live;
} PredictRun;

static void put_input(PredictRun *r, int j, long item)
{
    const int tile = (int)(item / r->g.transforms), k = (int)(item % r->g.transforms);
    const size_t n_in = (size_t)r->channels * r->g.tile_in * r->g.tile_in;
    UnetTile t;
    unet_tile_grid_tile(&r->grid, tile, &t);
    if (r->g.transforms == 1) {
        unet_tile_extract(&r->grid, &t, r->image, r->channels, r->xhost + j * n_in);
        return;
    }
    if (r->cached_tile != tile) {
        unet_tile_extract(&r->grid, &t, r->image, r->channels, r->tile_in);
        r->cached_tile = tile;
    }
    dihedral(r->xhost + j * n_in, r->tile_in, r->channels, r->g.tile_in, k, 0);
}

static void take_output(PredictRun *r, int j, long item)
{
    const int tile = (int)(item / r->g.transforms), k = (int)(item % r->g.transforms);
    const int to = r->g.tile_out, s = r->g.stride, mg = r->g.margin;
    const size_t n_out = (size_t)r->classes * to * to;
    const float *y = r->yhost + j * n_out;
    UnetTile t;
    unet_tile_grid_tile(&r->grid, tile, &t);
    if (r->g.transforms == 1 && mg == 0) {
        unet_tile_stitch(&r->grid, &t, y, r->classes, r->probs);
        return;
    }
    if (r->g.transforms > 1) {
        dihedral(r->turned, y, r->classes, to, k, 1);
        y = r->turned;
    }
    float *acc = r->acc + (size_t)(tile % r->slots) * r->classes * s * s;
    for (int c = 0; c < r->classes; c++)
        for (int yy = 0; yy < s; yy++) {
            const float *src = y + ((size_t)c * to + yy + mg) * to + mg;
            float *dst = acc + ((size_t)c * s + yy) * s;
            if (k == 0)
                memcpy(dst, src, sizeof(float) * (size_t)s);
            else
                for (int xx = 0; xx < s; xx++)
                    dst[xx] += src[xx];
        }
    if (k == r->g.transforms - 1) {
        if (r->g.transforms > 1) {
            const float inv = 1.0f / (float)r->g.transforms;
            for (size_t i = 0; i < (size_t)r->classes * s * s; i++)
                acc[i] *= inv;
        }
        unet_tile_stitch(&r->grid, &t, acc, r->classes, r->probs);
    }
}

/* Uploads items [first, first + nb), runs the network, stitches the results. */
static UnetStatus run_batch(PredictRun *r, long first, int nb, UnetError *err)
{
    UnetBackend *be = r->be;
    for (int j = 0; j < nb; j++)
        put_input(r, j, first + j);
    if (r->x_live && r->x.n != nb) {
        be->tensor_release(be, &r->x);
        r->x_live = 0;
    }
    if (!r->x_live) {
        if (be->tensor_init(be, &r->x, nb, r->channels, r->g.tile_in, r->g.tile_in) != UNET_OK)
            return backend_failed(be, err, "allocating the input tiles");
        r->x_live = 1;
    }
    if (be->tensor_upload(be, &r->x, r->xhost) != UNET_OK)
        return backend_failed(be, err, "uploading the input tiles");
    UnetTensor *probs = NULL;
    UnetStatus st = unet_model_predict(r->m, &r->x, &probs, err);
    if (st != UNET_OK)
        return unet_error_prefix(err, "predict: ");
    if (probs->n != nb || probs->c != r->classes || probs->h != r->g.tile_out ||
        probs->w != r->g.tile_out)
        return unet_error_set(err, UNET_ERR_BACKEND,
                              "predict: the model returned %dx%dx%dx%d probabilities for %d "
                              "tiles of %d", probs->n, probs->c, probs->h, probs->w, nb,
                              r->g.tile_out);
    if (be->tensor_download(be, r->yhost, probs) != UNET_OK)
        return backend_failed(be, err, "downloading the probabilities");
    for (int j = 0; j < nb; j++)
        take_output(r, j, first + j);
    return UNET_OK;
}

static void run_free(PredictRun *r)
{
    if (r->x_live)
        r->be->tensor_release(r->be, &r->x);
    free(r->xhost);
    free(r->yhost);
    free(r->tile_in);
    free(r->turned);
    free(r->acc);
}

UnetStatus unet_predict(UnetModel *m, const float *image_chw, int channels, int height, int width,
                        const UnetPredictOptions *opt, float *probs_out, UnetError *err)
{
    UnetPredictOptions defaults;
    if (!opt) {
        unet_predict_options_default(&defaults);
        opt = &defaults;
    }
    if (!m || !image_chw || !probs_out)
        return unet_error_set(err, UNET_ERR_INVALID, "predict: model, image and output are required");
    const UnetModelConfig *cfg = unet_model_config(m);
    UnetBackend *be = unet_model_backend(m);
    if (!be)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "predict: the model has no compute backend (built as a description)");
    if (channels != cfg->in_channels)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "predict: the image has %d channel%s but the model takes %d",
                              channels, channels == 1 ? "" : "s", cfg->in_channels);

    PredictRun r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.be = be;
    r.channels = channels;
    r.classes = cfg->classes;
    r.image = image_chw;
    r.probs = probs_out;
    r.cached_tile = -1;
    UnetStatus st = unet_predict_geometry(cfg, be, width, height, opt, &r.g, err);
    if (st != UNET_OK)
        return st;
    st = unet_tile_grid_init(&r.grid, width, height, r.g.tile_in, r.g.stride, err);
    if (st != UNET_OK)
        return st;

    const size_t n_in = (size_t)channels * r.g.tile_in * r.g.tile_in;
    const size_t n_out = (size_t)r.classes * r.g.tile_out * r.g.tile_out;
    const size_t n_acc = (size_t)r.classes * r.g.stride * r.g.stride;
    /* tiles with unfinished transforms at once: those one batch can touch */
    r.slots = r.g.batch / r.g.transforms + 2;
    r.xhost = malloc(sizeof(float) * n_in * r.g.batch);
    r.yhost = malloc(sizeof(float) * n_out * r.g.batch);
    int ok = r.xhost && r.yhost;
    if (r.g.transforms > 1) {
        r.tile_in = malloc(sizeof(float) * n_in);
        r.turned = malloc(sizeof(float) * n_out);
        ok = ok && r.tile_in && r.turned;
    }
    if (r.g.transforms > 1 || r.g.margin > 0) {
        r.acc = malloc(sizeof(float) * n_acc * r.slots);
        ok = ok && r.acc;
    }
    if (!ok) {
        run_free(&r);
        return unet_error_set(err, UNET_ERR_NOMEM, "predict: out of memory for %d tiles of %d pixels",
                              r.g.batch, r.g.tile_in);
    }

    const long total = r.g.forwards;
    if (opt->progress && opt->progress(0, total, opt->progress_user))
        st = unet_error_set(err, UNET_ERR_CANCELLED, "predict: cancelled");
    for (long done = 0; st == UNET_OK && done < total;) {
        int nb = total - done < r.g.batch ? (int)(total - done) : r.g.batch;
        st = run_batch(&r, done, nb, err);
        done += nb;
        if (st == UNET_OK && opt->progress && opt->progress(done, total, opt->progress_user) &&
            done < total)
            st = unet_error_set(err, UNET_ERR_CANCELLED, "predict: cancelled after %ld of %ld "
                                "tiles", done, total);
    }
    run_free(&r);
    return st;
}

/* ---- label maps and overlays ------------------------------------------------ */

void unet_probs_to_labels(const float *probs, int classes, int height, int width, float threshold,
                          int32_t *labels)
{
    const size_t n = (size_t)height * width;
    if (classes == 1) {
        for (size_t i = 0; i < n; i++)
            labels[i] = probs[i] > threshold;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        float bv = probs[i];
        for (int c = 1; c < classes; c++)
            if (probs[(size_t)c * n + i] > bv) {
                bv = probs[(size_t)c * n + i];
                best = c;
            }
        labels[i] = best;
    }
}

void unet_class_color(int c, uint8_t rgb[3])
{
    static const uint8_t table[12][3] = {
        { 230, 25, 75 },  { 60, 180, 75 },  { 0, 130, 200 },  { 255, 225, 25 },
        { 245, 130, 48 }, { 145, 30, 180 }, { 70, 240, 240 }, { 240, 50, 230 },
        { 210, 245, 60 }, { 0, 128, 128 },  { 170, 110, 40 }, { 128, 0, 0 },
    };
    const uint8_t *t = table[(c < 1 ? 0 : c - 1) % 12];
    rgb[0] = t[0];
    rgb[1] = t[1];
    rgb[2] = t[2];
}

UnetStatus unet_overlay_render(const float *image_chw, int channels, int height, int width,
                               const int32_t *labels, float opacity, uint8_t *rgb, UnetError *err)
{
    if (channels < 1 || height < 1 || width < 1)
        return unet_error_set(err, UNET_ERR_INVALID, "overlay: cannot draw a %d-channel %d x %d image",
                              channels, width, height);
    if (!(opacity >= 0.0f && opacity <= 1.0f))
        return unet_error_set(err, UNET_ERR_INVALID, "overlay: opacity %g is not in [0, 1]",
                              (double)opacity);
    const size_t n = (size_t)height * width;
    const int used = channels >= 3 ? 3 : 1;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n * used; i++)
        if (isfinite(image_chw[i])) {
            lo = image_chw[i] < lo ? image_chw[i] : lo;
            hi = image_chw[i] > hi ? image_chw[i] : hi;
        }
    const float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float px[3];
        for (int c = 0; c < 3; c++) {
            float v = image_chw[(size_t)(used == 3 ? c : 0) * n + i];
            px[c] = isfinite(v) ? (v - lo) * scale : 0.0f;
        }
        if (labels && labels[i] > 0) {
            uint8_t col[3];
            unet_class_color(labels[i], col);
            for (int c = 0; c < 3; c++)
                px[c] = (1.0f - opacity) * px[c] + opacity * col[c];
        }
        for (int c = 0; c < 3; c++) {
            float v = px[c] + 0.5f;
            rgb[i * 3 + c] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
        }
    }
    return UNET_OK;
}

/* ---- input spec in checkpoint metadata ------------------------------------- */

char *unet_input_spec_to_json(const UnetInputSpec *spec)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "intensity", json_object_new_string(unet_intensity_name(spec->intensity)));
    json_object_object_add(o, "range_lo", json_object_new_double((double)spec->range_lo));
    json_object_object_add(o, "range_hi", json_object_new_double((double)spec->range_hi));
    json_object_object_add(o, "color", json_object_new_string(unet_color_name(spec->color)));
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    char *copy = s ? strdup(s) : NULL;
    json_object_put(o);
    return copy;
}

/* Reads the spec keys of object o; strict: other keys are refused. */
static UnetStatus spec_from_object(UnetInputSpec *spec, json_object *o, int strict, UnetError *err)
{
    json_object_object_foreach(o, key, val)
    {
        UnetStatus st = UNET_OK;
        if (!strcmp(key, "intensity") || !strcmp(key, "color")) {
            if (!json_object_is_type(val, json_type_string))
                return unet_error_set(err, UNET_ERR_FORMAT, "'%s' must be a string", key);
            const char *s = json_object_get_string(val);
            st = !strcmp(key, "intensity") ? unet_intensity_parse(s, &spec->intensity, err)
                                           : unet_color_parse(s, &spec->color, err);
        } else if (!strcmp(key, "range_lo") || !strcmp(key, "range_hi")) {
            if (!json_object_is_type(val, json_type_double) && !json_object_is_type(val, json_type_int))
                return unet_error_set(err, UNET_ERR_FORMAT, "'%s' must be a number", key);
            float v = (float)json_object_get_double(val);
            if (!strcmp(key, "range_lo"))
                spec->range_lo = v;
            else
                spec->range_hi = v;
        } else if (strict) {
            return unet_error_set(err, UNET_ERR_FORMAT,
                                  "unknown key '%s' (expected intensity, range_lo, range_hi, color)",
                                  key);
        }
        if (st != UNET_OK)
            return st;
    }
    if (spec->intensity == UNET_INTENSITY_RANGE && !(spec->range_hi > spec->range_lo))
        return unet_error_set(err, UNET_ERR_FORMAT, "intensity range [%g, %g] is empty",
                              (double)spec->range_lo, (double)spec->range_hi);
    return UNET_OK;
}

UnetStatus unet_input_spec_from_json(UnetInputSpec *spec, const char *json, UnetError *err)
{
    unet_input_spec_default(spec);
    json_object *o = json_tokener_parse(json);
    if (!o || !json_object_is_type(o, json_type_object)) {
        if (o)
            json_object_put(o);
        return unet_error_set(err, UNET_ERR_FORMAT, "input normalisation is not a JSON object: %.80s",
                              json);
    }
    UnetStatus st = spec_from_object(spec, o, 1, err);
    json_object_put(o);
    return st;
}

UnetStatus unet_input_spec_from_meta(const UnetCheckpointMeta *meta, UnetInputSpec *spec,
                                     int *found, UnetError *err)
{
    unet_input_spec_default(spec);
    if (found)
        *found = 0;
    const char *norm = meta ? unet_checkpoint_meta_get(meta, UNET_META_NORMALIZATION) : NULL;
    if (norm) {
        UnetStatus st = unet_input_spec_from_json(spec, norm, err);
        if (st != UNET_OK)
            return unet_error_prefix(err, "metadata '%s': ", UNET_META_NORMALIZATION);
        if (found)
            *found = 1;
        return UNET_OK;
    }
    const char *tc = meta ? unet_checkpoint_meta_get(meta, "training_config") : NULL;
    if (!tc)
        return UNET_OK;
    json_object *o = json_tokener_parse(tc), *data = NULL;
    UnetStatus st = UNET_OK;
    if (o && json_object_object_get_ex(o, "data", &data) &&
        json_object_is_type(data, json_type_object)) {
        st = spec_from_object(spec, data, 0, err);
        if (st != UNET_OK)
            unet_error_prefix(err, "metadata 'training_config' data: ");
        else if (found)
            *found = 1;
    }
    if (o)
        json_object_put(o);
    return st;
}

UnetStatus unet_checkpoint_open_model(const char *path, UnetBackend *be, UnetModel **model,
                                      UnetInputSpec *input, int *input_found,
                                      UnetCheckpointMeta *meta, UnetError *err)
{
    *model = NULL;
    UnetModelConfig cfg;
    UnetStatus st = unet_checkpoint_read_config(path, &cfg, err);
    if (st != UNET_OK)
        return st;
    UnetModel *m = unet_model_new(&cfg, be, err);
    if (!m)
        return err && err->status != UNET_OK ? err->status : UNET_ERR_NOMEM;
    UnetCheckpointMeta local = { 0 };
    st = unet_checkpoint_load(path, m, NULL, &local, err);
    UnetInputSpec spec;
    int found = 0;
    if (st == UNET_OK) {
        st = unet_input_spec_from_meta(&local, &spec, &found, err);
        if (st != UNET_OK)
            unet_error_prefix(err, "%s: ", path);
    }
    if (st != UNET_OK) {
        unet_checkpoint_meta_free(&local);
        unet_model_free(m);
        return st;
    }
    if (input)
        *input = spec;
    if (input_found)
        *input_found = found;
    if (meta)
        *meta = local;
    else
        unet_checkpoint_meta_free(&local);
    *model = m;
    return UNET_OK;
}
