/* sample-data.c - synthetic EM-like cell tissue with exact membrane masks. */
#include "sample-data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileutil.h"
#include "image.h"

void unet_sample_data_options_default(UnetSampleDataOptions *opt)
{
    opt->count = 30;
    opt->size = 256;
    opt->seed = 1;
}

/* ---- Randomness ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct Rng {
    uint64_t s;
} Rng;

static uint64_t rng_next(Rng *r)
{
    return mix64(r->s += 0x9E3779B97F4A7C15ull);
}

static float rng_uniform(Rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rng_next(r) >> 11) / 9007199254740992.0);
}

static float rng_normal(Rng *r)
{
    double u1 = ((double)(rng_next(r) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(rng_next(r) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Smooth value noise in [-1, 1] with feature size `scale` pixels. */
typedef struct Noise {
    uint64_t key;
    float inv_scale;
} Noise;

static float lattice(uint64_t key, int x, int y)
{
    uint64_t h = mix64(key ^ ((uint64_t)(uint32_t)x * 0x9E3779B1ull) ^ ((uint64_t)(uint32_t)y << 32));
    return (float)((double)(h >> 11) / 4503599627370496.0 - 1.0);
}

static float noise_at(const Noise *n, float x, float y)
{
    float fx = x * n->inv_scale, fy = y * n->inv_scale;
    int ix = (int)floorf(fx), iy = (int)floorf(fy);
    float tx = fx - ix, ty = fy - iy;
    tx = tx * tx * (3.0f - 2.0f * tx);
    ty = ty * ty * (3.0f - 2.0f * ty);
    float a = lattice(n->key, ix, iy), b = lattice(n->key, ix + 1, iy);
    float c = lattice(n->key, ix, iy + 1), d = lattice(n->key, ix + 1, iy + 1);
    return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

static Noise make_noise(Rng *r, float scale)
{
    Noise n = { rng_next(r), 1.0f / scale };
    return n;
}

/* ---- Cells ---- */

typedef struct Seed {
    float x, y, weight, brightness;
} Seed;

typedef struct Tissue {
    int size, gx, gy;
    float spacing;
    Seed *seeds;
} Tissue;

/* Nearest and second-nearest seed of a (warped) point under additive weights;
 * *gap gets the distance to the bisector between them, first-order. */
static void nearest_two(const Tissue *t, float px, float py, int *first, int *second, float *gap)
{
    int cx = (int)floorf(px / t->spacing) + 1, cy = (int)floorf(py / t->spacing) + 1;
    float d1 = INFINITY, d2 = INFINITY;
    int i1 = 0, i2 = 0;
    float u1x = 0, u1y = 0, u2x = 0, u2y = 0;
    for (int j = cy - 2; j <= cy + 2; j++) {
        if (j < 0 || j >= t->gy)
            continue;
        for (int i = cx - 2; i <= cx + 2; i++) {
            if (i < 0 || i >= t->gx)
                continue;
            int id = j * t->gx + i;
            const Seed *s = &t->seeds[id];
            float dx = px - s->x, dy = py - s->y;
            float r = sqrtf(dx * dx + dy * dy) + 1e-6f;
            float d = r - s->weight;
            if (d < d1) {
                d2 = d1, i2 = i1, u2x = u1x, u2y = u1y;
                d1 = d, i1 = id, u1x = dx / r, u1y = dy / r;
            } else if (d < d2) {
                d2 = d, i2 = id, u2x = dx / r, u2y = dy / r;
            }
        }
    }
    float gx = u1x - u2x, gy = u1y - u2y;
    float grad = sqrtf(gx * gx + gy * gy);
    *first = i1;
    *second = i2;
    *gap = (d2 - d1) / (grad > 0.2f ? grad : 0.2f);
}

static void blur_gaussian(float *img, float *tmp, int n, float sigma)
{
    int r = (int)ceilf(3.0f * sigma);
    float k[32];
    if (r > 15)
        r = 15;
    float sum = 0.0f;
    for (int i = -r; i <= r; i++)
        sum += k[i + r] = expf(-(float)(i * i) / (2.0f * sigma * sigma));
    for (int i = 0; i <= 2 * r; i++)
        k[i] /= sum;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            float acc = 0.0f;
            for (int i = -r; i <= r; i++) {
                int xx = x + i;
                xx = xx < 0 ? -xx - 1 : (xx >= n ? 2 * n - xx - 1 : xx);
                acc += k[i + r] * img[(size_t)y * n + xx];
            }
            tmp[(size_t)y * n + x] = acc;
        }
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            float acc = 0.0f;
            for (int i = -r; i <= r; i++) {
                int yy = y + i;
                yy = yy < 0 ? -yy - 1 : (yy >= n ? 2 * n - yy - 1 : yy);
                acc += k[i + r] * tmp[(size_t)yy * n + x];
            }
            img[(size_t)y * n + x] = acc;
        }
}

/* Darkens a soft-edged ellipse towards `level` (0..1 strength). */
static void draw_blob(float *img, int n, float cx, float cy, float ra, float rb, float angle, float level,
                      float strength)
{
    float c = cosf(angle), s = sinf(angle);
    int x0 = (int)floorf(cx - ra - 2), x1 = (int)ceilf(cx + ra + 2);
    int y0 = (int)floorf(cy - ra - 2), y1 = (int)ceilf(cy + ra + 2);
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < n; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < n; x++) {
            float dx = x - cx, dy = y - cy;
            float u = (dx * c + dy * s) / ra, v = (-dx * s + dy * c) / rb;
            float rr = sqrtf(u * u + v * v);
            /* about one pixel of soft edge */
            float edge = (1.0f - rr) * (ra < rb ? ra : rb) + 0.5f;
            float a = edge <= 0.0f ? 0.0f : (edge >= 1.0f ? 1.0f : edge);
            a *= strength;
            float *p = &img[(size_t)y * n + x];
            *p = *p * (1.0f - a) + level * a;
        }
}

UnetStatus unet_sample_data_generate(int size, uint64_t seed, int index, uint8_t *image, uint8_t *mask,
                                     UnetError *err)
{
    if (size < UNET_SAMPLE_DATA_MIN_SIZE || size > UNET_SAMPLE_DATA_MAX_SIZE)
        return unet_error_set(err, UNET_ERR_INVALID, "sample image size %d is out of range (%d..%d)", size,
                              UNET_SAMPLE_DATA_MIN_SIZE, UNET_SAMPLE_DATA_MAX_SIZE);
    if (index < 0)
        return unet_error_set(err, UNET_ERR_INVALID, "sample index %d is negative", index);
    const int n = size;
    const size_t np = (size_t)n * n;
    Rng rng = { mix64(seed * 0x9E3779B97F4A7C15ull + 0x5851F42D4C957F2Dull) ^ mix64((uint64_t)index + 1) };

    Tissue t;
    t.size = n;
    t.spacing = rng_uniform(&rng, 24.0f, 38.0f);
    t.gx = (int)ceilf(n / t.spacing) + 3;
    t.gy = t.gx;
    t.seeds = malloc(sizeof(Seed) * (size_t)t.gx * t.gy);
    int *cell = malloc(sizeof(int) * np);
    float *gap = malloc(sizeof(float) * np);
    float *img = malloc(sizeof(float) * np);
    float *tmp = malloc(sizeof(float) * np);
    if (!t.seeds || !cell || !gap || !img || !tmp) {
        free(t.seeds), free(cell), free(gap), free(img), free(tmp);
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for a %d x %d sample image", n, n);
    }
    for (int j = 0; j < t.gy; j++)
        for (int i = 0; i < t.gx; i++) {
            Seed *s = &t.seeds[j * t.gx + i];
            s->x = (i - 1 + 0.5f + rng_uniform(&rng, -0.42f, 0.42f)) * t.spacing;
            s->y = (j - 1 + 0.5f + rng_uniform(&rng, -0.42f, 0.42f)) * t.spacing;
            s->weight = rng_uniform(&rng, -0.12f, 0.12f) * t.spacing;
            s->brightness = rng_uniform(&rng, 0.60f, 0.82f);
        }

    /* Geometry: warped weighted Voronoi. */
    Noise warp_x = make_noise(&rng, t.spacing * 1.3f), warp_y = make_noise(&rng, t.spacing * 1.3f);
    float warp_amp = rng_uniform(&rng, 0.12f, 0.22f) * t.spacing;
    Noise thick_noise = make_noise(&rng, 9.0f);
    uint64_t edge_key = rng_next(&rng);
    float *mdark = tmp; /* membrane darkness per pixel, reused below */
    uint8_t *memb = mask;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            size_t k = (size_t)y * n + x;
            float px = x + warp_amp * noise_at(&warp_x, (float)x, (float)y);
            float py = y + warp_amp * noise_at(&warp_y, (float)x, (float)y);
            int a, b;
            float g;
            nearest_two(&t, px, py, &a, &b, &g);
            cell[k] = a;
            gap[k] = g;
            /* Each wall has its own thickness (1-3 px) and darkness, varying along it. */
            uint64_t e = mix64(edge_key ^ ((uint64_t)(a < b ? a : b) << 32) ^ (uint64_t)(a < b ? b : a));
            float base_t = 0.9f + 2.1f * (float)((e >> 11) & 0xffff) / 65535.0f;
            float thick = base_t * (1.0f + 0.3f * noise_at(&thick_noise, (float)x, (float)y));
            memb[k] = g < 0.5f * thick;
            float dark = 0.10f + 0.16f * (float)((e >> 40) & 0xffff) / 65535.0f;
            /* soft profile for the picture: full darkness inside, fading over ~1 px */
            float prof = 0.5f * thick + 0.6f - g;
            prof = prof <= 0.0f ? 0.0f : (prof >= 1.0f ? 1.0f : prof);
            mdark[k] = prof > 0.0f ? dark + (1.0f - prof) * 0.5f : -1.0f;
        }
    /* Walls closed everywhere: the lower cell id yields its pixels touching a
     * higher one, so cells never touch (8-neighbour sense) in the mask. */
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            size_t k = (size_t)y * n + x;
            if (memb[k] == 1)
                continue;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if (yy < 0 || xx < 0 || yy >= n || xx >= n)
                        continue;
                    if (cell[(size_t)yy * n + xx] > cell[k])
                        memb[k] = 2;
                }
        }

    /* Picture: cytoplasm with texture. */
    Noise fine = make_noise(&rng, rng_uniform(&rng, 2.5f, 4.0f)), mid = make_noise(&rng, 11.0f);
    float fine_amp = rng_uniform(&rng, 0.05f, 0.09f), mid_amp = rng_uniform(&rng, 0.04f, 0.08f);
    for (size_t k = 0; k < np; k++) {
        float x = (float)(k % n), y = (float)(k / n);
        float v = t.seeds[cell[k]].brightness + fine_amp * noise_at(&fine, x, y) + mid_amp * noise_at(&mid, x, y);
        if (memb[k]) {
            /* membrane pixel of the mask: dark; thin 1-px walls a little lighter */
            float d = mdark[k] >= 0.0f ? mdark[k] : 0.32f;
            v = d + 0.08f * noise_at(&fine, y, x);
        } else if (mdark[k] >= 0.0f) {
            v = 0.5f * (v + mdark[k] + 0.15f); /* the soft edge just outside a wall */
        }
        img[k] = v;
    }

    /* Organelles and vesicles: dark blobs inside cells, away from the walls. */
    int ncells = t.gx * t.gy;
    float cell_area = t.spacing * t.spacing;
    for (int c = 0; c < ncells; c++) {
        const Seed *s = &t.seeds[c];
        if (s->x < -t.spacing || s->y < -t.spacing || s->x > n + t.spacing || s->y > n + t.spacing)
            continue;
        int blobs = (int)(cell_area / 220.0f * rng_uniform(&rng, 0.5f, 1.5f));
        for (int b = 0; b < blobs; b++) {
            int kind = (int)(rng_next(&rng) % 10); /* 0-3 mitochondria, 4-8 vesicles, 9 dense granule */
            float ra, rb, level, strength = 1.0f;
            if (kind < 4) {
                ra = rng_uniform(&rng, 3.0f, 7.0f);
                rb = rng_uniform(&rng, 1.5f, 2.8f);
                level = rng_uniform(&rng, 0.12f, 0.30f);
            } else if (kind < 9) {
                ra = rb = rng_uniform(&rng, 1.3f, 3.2f);
                level = rng_uniform(&rng, 0.10f, 0.32f);
                strength = rng_uniform(&rng, 0.75f, 1.0f);
            } else {
                ra = rb = rng_uniform(&rng, 3.0f, 5.0f);
                level = rng_uniform(&rng, 0.2f, 0.35f);
                strength = 0.8f;
            }
            float ang = rng_uniform(&rng, 0.0f, 3.14159265f);
            for (int attempt = 0; attempt < 6; attempt++) {
                float cx = s->x + rng_uniform(&rng, -0.45f, 0.45f) * t.spacing;
                float cy = s->y + rng_uniform(&rng, -0.45f, 0.45f) * t.spacing;
                int ix = (int)cx, iy = (int)cy;
                if (ix < 0 || iy < 0 || ix >= n || iy >= n)
                    break;
                size_t k = (size_t)iy * n + ix;
                if (cell[k] != c || gap[k] < ra + 2.5f)
                    continue;
                draw_blob(img, n, cx, cy, ra, rb, ang, level, strength);
                break;
            }
        }
    }
    /* Blobs are placed clear of the walls; they change only the picture, so
     * the mask stays exact either way. */

    blur_gaussian(img, tmp, n, rng_uniform(&rng, 0.7f, 1.1f));

    /* Uneven illumination, offset/gain, Poisson-like and Gaussian noise. */
    Noise light = make_noise(&rng, n * rng_uniform(&rng, 0.35f, 0.7f));
    float light_amp = rng_uniform(&rng, 0.15f, 0.28f);
    float grad_x = rng_uniform(&rng, -0.25f, 0.25f), grad_y = rng_uniform(&rng, -0.25f, 0.25f);
    float gain = rng_uniform(&rng, 190.0f, 240.0f), offset = rng_uniform(&rng, 5.0f, 25.0f);
    float shot = rng_uniform(&rng, 0.6f, 1.4f), read = rng_uniform(&rng, 3.0f, 7.0f);
    for (size_t k = 0; k < np; k++) {
        float x = (float)(k % n), y = (float)(k / n);
        float l = 1.0f + light_amp * noise_at(&light, x, y) + grad_x * (x / n - 0.5f) + grad_y * (y / n - 0.5f);
        float v = offset + gain * img[k] * l;
        v = v < 0.0f ? 0.0f : v;
        v += sqrtf(v * shot) * rng_normal(&rng) + read * rng_normal(&rng);
        v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
        image[k] = (uint8_t)lrintf(v);
        mask[k] = memb[k] ? 0 : 255;
    }
    free(t.seeds);
    free(cell);
    free(gap);
    free(img);
    free(tmp);
    return UNET_OK;
}

UnetStatus unet_sample_data_write(const char *dir, const UnetSampleDataOptions *opt, UnetSampleDataProgress progress,
                                  void *user, UnetError *err)
{
    if (opt->count < 1 || opt->count > 100000)
        return unet_error_set(err, UNET_ERR_INVALID, "sample count %d is out of range (1..100000)", opt->count);
    if (opt->size < UNET_SAMPLE_DATA_MIN_SIZE || opt->size > UNET_SAMPLE_DATA_MAX_SIZE)
        return unet_error_set(err, UNET_ERR_INVALID, "sample image size %d is out of range (%d..%d)", opt->size,
                              UNET_SAMPLE_DATA_MIN_SIZE, UNET_SAMPLE_DATA_MAX_SIZE);
    char *images = unet_path_join(dir, "images"), *masks = unet_path_join(dir, "masks");
    size_t np = (size_t)opt->size * opt->size;
    uint8_t *img = malloc(np), *msk = malloc(np);
    size_t plen = strlen(dir) + 64;
    char *path = malloc(plen);
    UnetStatus st = UNET_OK;
    if (!images || !masks || !img || !msk || !path) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory writing sample data");
        goto out;
    }
    if ((st = unet_mkdir_p(images, err)) || (st = unet_mkdir_p(masks, err)))
        goto out;
    for (int i = 0; i < opt->count; i++) {
        if ((st = unet_sample_data_generate(opt->size, opt->seed, i, img, msk, err)))
            goto out;
        snprintf(path, plen, "%s/%03d.png", images, i);
        if ((st = unet_png_save(path, img, opt->size, opt->size, 1, 8, err)))
            goto out;
        snprintf(path, plen, "%s/%03d.png", masks, i);
        if ((st = unet_png_save(path, msk, opt->size, opt->size, 1, 8, err)))
            goto out;
        if (progress)
            progress(i + 1, opt->count, user);
    }
out:
    free(images);
    free(masks);
    free(img);
    free(msk);
    free(path);
    return st;
}
