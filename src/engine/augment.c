/* augment.c - sampling and applying augmentation records (geometry, noise, elastic fields). */
#include "augment.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- random numbers: xoshiro256** seeded by splitmix64, ziggurat normals ---- */

typedef struct Rng {
    uint64_t s[4];
} Rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(Rng *r, uint64_t seed)
{
    uint64_t z = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&z);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(Rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static inline double rng_uniform(Rng *r) /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static inline double rng_range(Rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_uniform(r);
}

/* Two floats U(lo, hi) per 64-bit draw; n values. */
static void rng_fill_uniform(Rng *r, float *x, size_t n, float lo, float hi)
{
    const float scale = (hi - lo) * 0x1.0p-24f;
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        uint64_t u = rng_next(r);
        x[i] = lo + (float)(uint32_t)(u >> 40) * scale;
        x[i + 1] = lo + (float)(uint32_t)((u >> 8) & 0xFFFFFF) * scale;
    }
    if (i < n)
        x[i] = lo + (float)(uint32_t)(rng_next(r) >> 40) * scale;
}

/* Marsaglia & Tsang's ziggurat (128 layers) on 64-bit draws: the low 7 bits
 * pick the layer, the high 32 the signed abscissa. */
static uint32_t zig_k[128];
static float zig_w[128], zig_f[128];
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;

static void zig_init(void)
{
    const double m1 = 2147483648.0;
    double dn = 3.442619855899, tn = dn, vn = 9.91256303526217e-3;
    double q = vn / exp(-0.5 * dn * dn);
    zig_k[0] = (uint32_t)((dn / q) * m1);
    zig_k[1] = 0;
    zig_w[0] = (float)(q / m1);
    zig_w[127] = (float)(dn / m1);
    zig_f[0] = 1.0f;
    zig_f[127] = (float)exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; i--) {
        dn = sqrt(-2.0 * log(vn / dn + exp(-0.5 * dn * dn)));
        zig_k[i + 1] = (uint32_t)((dn / tn) * m1);
        tn = dn;
        zig_f[i] = (float)exp(-0.5 * dn * dn);
        zig_w[i] = (float)(dn / m1);
    }
}

static float zig_tail(Rng *r, int32_t hz, int iz)
{
    const double rr = 3.442619855899;
    for (;;) {
        double x = (double)hz * zig_w[iz];
        if (iz == 0) {
            double xx, y;
            do {
                xx = -log(1.0 - rng_uniform(r)) / rr;
                y = -log(1.0 - rng_uniform(r));
            } while (y + y < xx * xx);
            return (float)(hz > 0 ? rr + xx : -rr - xx);
        }
        if (zig_f[iz] + rng_uniform(r) * (zig_f[iz - 1] - zig_f[iz]) < exp(-0.5 * x * x))
            return (float)x;
        uint64_t u = rng_next(r);
        hz = (int32_t)(uint32_t)(u >> 32);
        iz = (int)(u & 127);
        if ((uint32_t)abs(hz) < zig_k[iz])
            return (float)hz * zig_w[iz];
    }
}

/* n normals times scale: draws are made 256 at a time so the generator's
 * state stays in registers; the ziggurat's rare slow path draws more. */
static void rng_fill_normal(Rng *r, float *out, size_t n, float scale)
{
    uint64_t buf[256];
    for (size_t i = 0; i < n;) {
        size_t m = n - i < 256 ? n - i : 256;
        Rng local = *r;
        for (size_t j = 0; j < m; j++)
            buf[j] = rng_next(&local);
        *r = local;
        for (size_t j = 0; j < m; j++) {
            uint64_t u = buf[j];
            int32_t hz = (int32_t)(uint32_t)(u >> 32);
            int iz = (int)(u & 127);
            float v;
            if (hz != INT32_MIN && (uint32_t)abs(hz) < zig_k[iz])
                v = (float)hz * zig_w[iz];
            else
                v = zig_tail(r, hz == INT32_MIN ? INT32_MIN + 1 : hz, iz);
            out[i + j] = v * scale;
        }
        i += m;
    }
}

/* Scalar normal for record-level draws (Box-Muller in double). */
static double rng_normal_double(Rng *r)
{
    double u1 = 1.0 - rng_uniform(r), u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* ---- names and defaults ---- */

static const char *const kind_names[UNET_AUG_KIND_COUNT] = {
    "hflip", "vflip", "transpose", "rotate90", "shift_scale_rotate", "gauss_noise",
    "multiplicative_noise", "elastic", "grid_elastic", "brightness_contrast", "pad_if_needed",
};

const char *unet_augment_kind_name(UnetAugmentKind kind)
{
    return kind >= 0 && kind < UNET_AUG_KIND_COUNT ? kind_names[kind] : "?";
}

UnetStatus unet_augment_kind_parse(const char *name, UnetAugmentKind *out, UnetError *err)
{
    for (int i = 0; i < UNET_AUG_KIND_COUNT; i++)
        if (name && !strcmp(name, kind_names[i])) {
            *out = (UnetAugmentKind)i;
            return UNET_OK;
        }
    return unet_error_set(err, UNET_ERR_INVALID,
                          "unknown transform '%s': use hflip, vflip, transpose, rotate90, "
                          "shift_scale_rotate, gauss_noise, multiplicative_noise, elastic, "
                          "grid_elastic, brightness_contrast or pad_if_needed",
                          name ? name : "");
}

void unet_augment_op_default(UnetAugmentOp *op, UnetAugmentKind kind)
{
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->weight = 1.0f;
    op->shift = 0.0625f;
    op->scale = 0.1f;
    op->rotate = 45.0f;
    op->var_min = 0.0f;
    op->var_max = 20.0f;
    op->mult_min = 0.9f;
    op->mult_max = 1.1f;
    op->per_channel = kind == UNET_AUG_GAUSS_NOISE;
    op->alpha = 35.0f;
    op->sigma = 5.0f;
    op->alpha_affine = 3.0f;
    op->blur = UNET_BLUR_BOX;
    op->grid = 3;
    op->grid_sd = 10.0f;
    op->brightness = 0.15f;
    op->contrast = 0.15f;
    op->min_width = 572;
    op->min_height = 572;
}

static void add_stage(UnetAugmentConfig *cfg, float p, int count, const UnetAugmentKind *kinds)
{
    UnetAugmentStage *s = &cfg->stages[cfg->count++];
    s->p = p;
    s->count = count;
    for (int i = 0; i < count; i++)
        unet_augment_op_default(&s->ops[i], kinds[i]);
}

void unet_augment_config_default(UnetAugmentConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->intensity_max = 1.0f;
    const UnetAugmentKind dihedral[] = { UNET_AUG_HFLIP, UNET_AUG_VFLIP, UNET_AUG_TRANSPOSE,
                                         UNET_AUG_ROTATE90 };
    add_stage(cfg, 0.5f, 4, dihedral);
    const UnetAugmentKind rest[] = { UNET_AUG_SHIFT_SCALE_ROTATE, UNET_AUG_GAUSS_NOISE,
                                     UNET_AUG_MULT_NOISE, UNET_AUG_ELASTIC,
                                     UNET_AUG_BRIGHTNESS_CONTRAST };
    for (int i = 0; i < 5; i++)
        add_stage(cfg, 0.5f, 1, &rest[i]);
    const UnetAugmentKind pad = UNET_AUG_PAD_IF_NEEDED;
    add_stage(cfg, 1.0f, 1, &pad);
}

void unet_augment_config_paper(UnetAugmentConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->intensity_max = 1.0f;
    const UnetAugmentKind dihedral[] = { UNET_AUG_HFLIP, UNET_AUG_VFLIP, UNET_AUG_TRANSPOSE,
                                         UNET_AUG_ROTATE90 };
    add_stage(cfg, 0.5f, 4, dihedral);
    const UnetAugmentKind grid = UNET_AUG_GRID_ELASTIC;
    add_stage(cfg, 1.0f, 1, &grid);
}

/* name of stage i / choice j for messages: "transforms[2]" or "transforms[0].one_of[1]" */
static void op_path(char *buf, size_t size, const UnetAugmentStage *s, int i, int j)
{
    if (s->count > 1)
        snprintf(buf, size, "transforms[%d].one_of[%d]", i, j);
    else
        snprintf(buf, size, "transforms[%d]", i);
}

#define RANGE(field, lo, hi, key)                                                              \
    do {                                                                                       \
        if (!((double)op->field >= (lo) && (double)op->field <= (hi)))                         \
            return unet_error_set(err, UNET_ERR_INVALID,                                       \
                                  "augment config: %s.%s is %g; it must be between %g and %g", \
                                  path, key, (double)op->field, (double)(lo), (double)(hi));   \
    } while (0)

static UnetStatus validate_op(const UnetAugmentOp *op, const char *path, UnetError *err)
{
    RANGE(weight, 0.0, 1e6, "weight");
    switch (op->kind) {
    case UNET_AUG_HFLIP:
    case UNET_AUG_VFLIP:
    case UNET_AUG_TRANSPOSE:
    case UNET_AUG_ROTATE90:
        break;
    case UNET_AUG_SHIFT_SCALE_ROTATE:
        RANGE(shift, 0.0, 1.0, "shift");
        RANGE(scale, 0.0, 0.99, "scale");
        RANGE(rotate, 0.0, 180.0, "rotate");
        break;
    case UNET_AUG_GAUSS_NOISE:
        RANGE(var_min, 0.0, 1e6, "var_min");
        RANGE(var_max, op->var_min, 1e6, "var_max");
        break;
    case UNET_AUG_MULT_NOISE:
        RANGE(mult_min, 0.0, 100.0, "mult_min");
        RANGE(mult_max, op->mult_min, 100.0, "mult_max");
        break;
    case UNET_AUG_ELASTIC:
        RANGE(alpha, 0.0, 1e4, "alpha");
        RANGE(sigma, 0.05, 100.0, "sigma");
        RANGE(alpha_affine, 0.0, 1e3, "alpha_affine");
        if (op->blur != UNET_BLUR_GAUSSIAN && op->blur != UNET_BLUR_BOX)
            return unet_error_set(err, UNET_ERR_INVALID, "augment config: %s.blur is %d; use "
                                  "gaussian or box", path, (int)op->blur);
        break;
    case UNET_AUG_GRID_ELASTIC:
        RANGE(grid, 2, UNET_AUGMENT_MAX_GRID, "grid");
        RANGE(grid_sd, 0.0, 1e3, "grid_sd");
        break;
    case UNET_AUG_BRIGHTNESS_CONTRAST:
        RANGE(brightness, 0.0, 10.0, "brightness");
        RANGE(contrast, 0.0, 1.0, "contrast");
        break;
    case UNET_AUG_PAD_IF_NEEDED:
        RANGE(min_width, 0, UNET_AUGMENT_MAX_SIDE, "min_width");
        RANGE(min_height, 0, UNET_AUGMENT_MAX_SIDE, "min_height");
        break;
    default:
        return unet_error_set(err, UNET_ERR_INVALID, "augment config: %s has unknown kind %d",
                              path, (int)op->kind);
    }
    return UNET_OK;
}

UnetStatus unet_augment_config_validate(const UnetAugmentConfig *cfg, UnetError *err)
{
    if (!(cfg->intensity_max > 0.0f) || !isfinite(cfg->intensity_max))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "augment config: intensity_max is %g; it must be > 0",
                              (double)cfg->intensity_max);
    if (cfg->count < 0 || cfg->count > UNET_AUGMENT_MAX_STAGES)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "augment config: %d transforms; at most %d are allowed", cfg->count,
                              UNET_AUGMENT_MAX_STAGES);
    for (int i = 0; i < cfg->count; i++) {
        const UnetAugmentStage *s = &cfg->stages[i];
        char path[64];
        snprintf(path, sizeof path, "transforms[%d]", i);
        if (!(s->p >= 0.0f && s->p <= 1.0f))
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "augment config: %s.p is %g; it must be between 0 and 1", path,
                                  (double)s->p);
        if (s->count < 1 || s->count > UNET_AUGMENT_MAX_CHOICES)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "augment config: %s.one_of has %d transforms; use 1 to %d",
                                  path, s->count, UNET_AUGMENT_MAX_CHOICES);
        double total = 0.0;
        for (int j = 0; j < s->count; j++) {
            op_path(path, sizeof path, s, i, j);
            UnetStatus st = validate_op(&s->ops[j], path, err);
            if (st != UNET_OK)
                return st;
            total += s->ops[j].weight;
        }
        if (s->count > 1 && !(total > 0.0))
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "augment config: transforms[%d].one_of: the weights add up to "
                                  "0; give at least one a positive weight", i);
    }
    return UNET_OK;
}

/* ---- sampling ---- */

static int is_geometric(UnetAugmentKind k)
{
    return k != UNET_AUG_GAUSS_NOISE && k != UNET_AUG_MULT_NOISE &&
           k != UNET_AUG_BRIGHTNESS_CONTRAST;
}

/* Solves src = A (dst, 1) from three point pairs; returns 0 if degenerate. */
static int affine_from_points(double A[6], const double dst[3][2], const double src[3][2])
{
    double det = dst[0][0] * (dst[1][1] - dst[2][1]) - dst[0][1] * (dst[1][0] - dst[2][0]) +
                 (dst[1][0] * dst[2][1] - dst[2][0] * dst[1][1]);
    if (fabs(det) < 1e-9)
        return 0;
    /* inverse of [[x0 y0 1][x1 y1 1][x2 y2 1]] times the source column */
    double inv[3][3] = {
        { dst[1][1] - dst[2][1], dst[2][1] - dst[0][1], dst[0][1] - dst[1][1] },
        { dst[2][0] - dst[1][0], dst[0][0] - dst[2][0], dst[1][0] - dst[0][0] },
        { dst[1][0] * dst[2][1] - dst[2][0] * dst[1][1], dst[2][0] * dst[0][1] - dst[0][0] * dst[2][1],
          dst[0][0] * dst[1][1] - dst[1][0] * dst[0][1] },
    };
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++)
            A[r * 3 + c] = (inv[c][0] * src[0][r] + inv[c][1] * src[1][r] + inv[c][2] * src[2][r]) / det;
    return 1;
}

static UnetStatus sample_step(UnetAugmentStep *st, const UnetAugmentOp *op, Rng *r, int w, int h,
                              UnetError *err)
{
    memset(st, 0, sizeof *st);
    st->kind = op->kind;
    st->op = *op;
    st->in_w = st->out_w = w;
    st->in_h = st->out_h = h;
    double cx = (w - 1) * 0.5, cy = (h - 1) * 0.5;
    switch (op->kind) {
    case UNET_AUG_TRANSPOSE:
        st->out_w = h;
        st->out_h = w;
        break;
    case UNET_AUG_ROTATE90:
        st->k = (int)(rng_uniform(r) * 4.0);
        if (st->k & 1) {
            st->out_w = h;
            st->out_h = w;
        }
        break;
    case UNET_AUG_SHIFT_SCALE_ROTATE: {
        st->angle = rng_range(r, -op->rotate, op->rotate);
        st->scale = 1.0 + rng_range(r, -op->scale, op->scale);
        st->dx = rng_range(r, -op->shift, op->shift) * w;
        st->dy = rng_range(r, -op->shift, op->shift) * h;
        /* forward map as cv2.getRotationMatrix2D + shift; we store its inverse */
        double t = st->angle * M_PI / 180.0;
        double a = st->scale * cos(t), b = st->scale * sin(t);
        double tx = (1 - a) * cx - b * cy + st->dx, ty = b * cx + (1 - a) * cy + st->dy;
        double det = a * a + b * b;
        st->affine[0] = a / det;
        st->affine[1] = -b / det;
        st->affine[3] = b / det;
        st->affine[4] = a / det;
        st->affine[2] = -(st->affine[0] * tx + st->affine[1] * ty);
        st->affine[5] = -(st->affine[3] * tx + st->affine[4] * ty);
        break;
    }
    case UNET_AUG_GAUSS_NOISE:
        st->var = (float)rng_range(r, op->var_min, op->var_max);
        break;
    case UNET_AUG_ELASTIC: {
        double sq = (double)((w < h ? w : h) / 3);
        double src[3][2] = { { cx + sq, cy + sq }, { cx + sq, cy - sq }, { cx - sq, cy - sq } };
        double dst[3][2];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 2; j++)
                dst[i][j] = src[i][j] + rng_range(r, -op->alpha_affine, op->alpha_affine);
        if (sq < 1.0) {
            double id[6] = { 1, 0, 0, 0, 1, 0 };
            memcpy(st->affine, id, sizeof id);
        } else if (!affine_from_points(st->affine, dst, src)) {
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "augment: elastic alpha_affine %g is too large for a %dx%d image",
                                  (double)op->alpha_affine, w, h);
        }
        break;
    }
    case UNET_AUG_GRID_ELASTIC:
        for (int i = 0; i < op->grid * op->grid; i++) {
            st->grid_dx[i] = (float)(rng_normal_double(r) * op->grid_sd);
            st->grid_dy[i] = (float)(rng_normal_double(r) * op->grid_sd);
        }
        break;
    case UNET_AUG_BRIGHTNESS_CONTRAST:
        st->alpha = (float)(1.0 + rng_range(r, -op->contrast, op->contrast));
        st->beta = (float)rng_range(r, -op->brightness, op->brightness);
        break;
    case UNET_AUG_PAD_IF_NEEDED:
        if (w < op->min_width) {
            st->pad_left = (op->min_width - w) / 2;
            st->pad_right = op->min_width - w - st->pad_left;
        }
        if (h < op->min_height) {
            st->pad_top = (op->min_height - h) / 2;
            st->pad_bottom = op->min_height - h - st->pad_top;
        }
        st->out_w = w + st->pad_left + st->pad_right;
        st->out_h = h + st->pad_top + st->pad_bottom;
        break;
    default:
        break;
    }
    st->seed = rng_next(r);
    return UNET_OK;
}

UnetStatus unet_augment_sample(UnetAugmentRecord *rec, const UnetAugmentConfig *cfg, uint64_t seed,
                               int width, int height, UnetError *err)
{
    UnetStatus status = unet_augment_config_validate(cfg, err);
    if (status != UNET_OK)
        return status;
    if (width < 1 || height < 1 || width > UNET_AUGMENT_MAX_SIDE || height > UNET_AUGMENT_MAX_SIDE)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "augment: image size %dx%d is outside 1..%d per side", width,
                              height, UNET_AUGMENT_MAX_SIDE);
    memset(rec, 0, sizeof *rec);
    rec->seed = seed;
    rec->in_w = width;
    rec->in_h = height;
    rec->intensity_max = cfg->intensity_max;
    int w = width, h = height;
    for (int i = 0; i < cfg->count; i++) {
        const UnetAugmentStage *s = &cfg->stages[i];
        /* each stage draws from its own stream, so editing one stage leaves
         * the others' draws alone */
        uint64_t mix = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(i + 1));
        Rng r;
        rng_seed(&r, mix);
        double u = rng_uniform(&r);
        double pick = rng_uniform(&r);
        if (!(u < s->p))
            continue;
        int j = 0;
        if (s->count > 1) {
            double total = 0.0, acc = 0.0;
            for (int c = 0; c < s->count; c++)
                total += s->ops[c].weight;
            pick *= total;
            for (j = 0; j < s->count - 1; j++) {
                acc += s->ops[j].weight;
                if (pick < acc && s->ops[j].weight > 0)
                    break;
            }
        }
        UnetAugmentStep *st = &rec->steps[rec->count];
        status = sample_step(st, &s->ops[j], &r, w, h, err);
        if (status != UNET_OK)
            return status;
        st->stage = i;
        if (st->out_w > UNET_AUGMENT_MAX_SIDE || st->out_h > UNET_AUGMENT_MAX_SIDE)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "augment: transforms[%d] would make a %dx%d image; at most %d "
                                  "per side", i, st->out_w, st->out_h, UNET_AUGMENT_MAX_SIDE);
        w = st->out_w;
        h = st->out_h;
        rec->count++;
    }
    rec->out_w = w;
    rec->out_h = h;
    return UNET_OK;
}

/* ---- resampling ---- */

static inline int reflect101(int i, int n)
{
    if ((unsigned)i < (unsigned)n)
        return i;
    if (n == 1)
        return 0;
    if (i < 0 && i > -n) /* one reflection, the common case */
        return -i;
    if (i >= n && i < 2 * n - 1)
        return 2 * n - 2 - i;
    int p = 2 * (n - 1);
    i %= p;
    if (i < 0)
        i += p;
    return i < n ? i : p - i;
}

static inline double reflect101_continuous(double u, int n)
{
    if (u >= 0.0 && u <= n - 1)
        return u;
    if (n == 1)
        return 0.0;
    double p = 2.0 * (n - 1);
    u = fmod(fabs(u), p);
    return u <= n - 1 ? u : p - u;
}

/* One image state: planes, mask and weight map (each may be NULL). */
typedef struct Planes {
    int w, h, c;
    float *img;
    int32_t *mask;
    float *wt;
} Planes;

/* Bilinear (image, weight) and nearest (mask) samples for one output row.
 * Two passes: indices and weights first (the branchy part), then plain
 * gathers per plane. idx holds 5 * (xe - xs) int32, wgt 2 * (xe - xs) floats. */
static void sample_row(const Planes *in, Planes *out, int y, int xs, int xe, const float *fx,
                       const float *fy, int32_t *idx, float *wgt)
{
    int w = in->w, h = in->h, n = xe - xs, C = in->img ? in->c : 0;
    size_t in_n = (size_t)w * h, out_n = (size_t)out->w * out->h;
    size_t row = (size_t)y * out->w + xs;
    int32_t *I00 = idx, *I01 = idx + n, *I10 = idx + 2 * n, *I11 = idx + 3 * n, *IN = idx + 4 * n;
    float *AX = wgt, *AY = wgt + n;
    const float lim = 1e7f; /* keeps float-to-int conversions defined; NaN goes to -lim */
    for (int x = 0; x < n; x++) {
        float X = fx[x], Y = fy[x];
        X = X > -lim ? X : -lim; /* comparisons, not fminf: NaN must become -lim */
        X = X < lim ? X : lim;
        Y = Y > -lim ? Y : -lim;
        Y = Y < lim ? Y : lim;
        /* floor by truncation (|X| <= 1e7); gcc does not always inline floorf */
        int x0 = (int)X, y0 = (int)Y;
        x0 -= X < (float)x0;
        y0 -= Y < (float)y0;
        float ax = X - (float)x0, ay = Y - (float)y0;
        int32_t i00, i01, i10, i11;
        if (x0 >= 0 && y0 >= 0 && x0 < w - 1 && y0 < h - 1) {
            i00 = y0 * w + x0;
            i01 = i00 + 1;
            i10 = i00 + w;
            i11 = i10 + 1;
        } else {
            int32_t xa = reflect101(x0, w), xb = reflect101(x0 + 1, w);
            int32_t ya = reflect101(y0, h) * w, yb = reflect101(y0 + 1, h) * w;
            i00 = ya + xa;
            i01 = ya + xb;
            i10 = yb + xa;
            i11 = yb + xb;
        }
        I00[x] = i00;
        I01[x] = i01;
        I10[x] = i10;
        I11[x] = i11;
        /* nearest: the corner whose bilinear weight is largest */
        IN[x] = ay >= 0.5f ? (ax >= 0.5f ? i11 : i10) : (ax >= 0.5f ? i01 : i00);
        AX[x] = ax;
        AY[x] = ay;
    }
    for (int c = 0; c <= C; c++) {
        const float *p = c < C ? in->img + c * in_n : in->wt;
        float *d = c < C ? out->img + c * out_n + row : (out->wt ? out->wt + row : NULL);
        if (!p || !d)
            continue;
        for (int x = 0; x < n; x++) {
            float ax = AX[x], ay = AY[x];
            float top = (1 - ax) * p[I00[x]] + ax * p[I01[x]];
            float bot = (1 - ax) * p[I10[x]] + ax * p[I11[x]];
            d[x] = (1 - ay) * top + ay * bot;
        }
    }
    if (in->mask) {
        const int32_t *m = in->mask;
        int32_t *d = out->mask + row;
        for (int x = 0; x < n; x++)
            d[x] = m[IN[x]];
    }
}

/* Exact index maps (flips, transpose, quarter turns, padding):
 * source = (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]), reflected. */
static void index_map(const UnetAugmentStep *s, int m[6])
{
    int W = s->in_w, H = s->in_h;
    int id[6] = { 1, 0, 0, 0, 1, 0 };
    memcpy(m, id, sizeof id);
    switch (s->kind) {
    case UNET_AUG_HFLIP: m[0] = -1; m[2] = W - 1; break;
    case UNET_AUG_VFLIP: m[4] = -1; m[5] = H - 1; break;
    case UNET_AUG_TRANSPOSE: m[0] = 0; m[1] = 1; m[3] = 1; m[4] = 0; break;
    case UNET_AUG_ROTATE90:
        if (s->k == 1) { m[0] = 0; m[1] = -1; m[2] = W - 1; m[3] = 1; m[4] = 0; }
        if (s->k == 2) { m[0] = -1; m[2] = W - 1; m[4] = -1; m[5] = H - 1; }
        if (s->k == 3) { m[0] = 0; m[1] = 1; m[3] = -1; m[4] = 0; m[5] = H - 1; }
        break;
    case UNET_AUG_PAD_IF_NEEDED: m[2] = -s->pad_left; m[5] = -s->pad_top; break;
    default: break;
    }
}

static void apply_index_map(const UnetAugmentStep *s, const Planes *in, Planes *out)
{
    int m[6];
    index_map(s, m);
    size_t in_n = (size_t)in->w * in->h, out_n = (size_t)out->w * out->h;
    for (int y = 0; y < out->h; y++) {
        size_t row = (size_t)y * out->w;
        for (int x = 0; x < out->w; x++) {
            int sx = reflect101(m[0] * x + m[1] * y + m[2], in->w);
            int sy = reflect101(m[3] * x + m[4] * y + m[5], in->h);
            size_t src = (size_t)sy * in->w + sx;
            for (int c = 0; c < in->c && in->img; c++)
                out->img[c * out_n + row + x] = in->img[c * in_n + src];
            if (in->mask)
                out->mask[row + x] = in->mask[src];
            if (in->wt)
                out->wt[row + x] = in->wt[src];
        }
    }
}

/* Gaussian blur, separable, radius round(4 sigma), symmetric (half-sample)
 * reflection as scipy.ndimage's mode 'reflect'. Eight lanes at a time. */
typedef float v8f __attribute__((vector_size(32)));

static inline v8f load8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline int reflect_sym(int i, int n)
{
    if ((unsigned)i < (unsigned)n)
        return i;
    int p = 2 * n;
    i %= p;
    if (i < 0)
        i += p;
    return i < n ? i : p - 1 - i;
}

static UnetStatus gaussian_blur(float *x, int w, int h, float sigma, float *tmp, UnetError *err)
{
    int r = (int)(4.0f * sigma + 0.5f);
    if (r < 1)
        return UNET_OK;
    float *k = malloc(((size_t)r + 1 + (size_t)w + 2 * (size_t)r) * sizeof *k);
    const float **rows = malloc(((size_t)2 * r + 1) * sizeof *rows);
    if (!k || !rows) {
        free(k);
        free(rows);
        return unet_error_set(err, UNET_ERR_NOMEM, "augment: out of memory for the blur");
    }
    double sum = 0.0;
    double kd[1024];
    for (int j = 0; j <= r; j++) {
        kd[j] = exp(-0.5 * j * j / ((double)sigma * sigma));
        sum += j ? 2.0 * kd[j] : kd[j];
    }
    for (int j = 0; j <= r; j++)
        k[j] = (float)(kd[j] / sum);
    float *pad = k + r + 1;
    /* four vectors at a time: independent sums hide the add latency; every
     * lane adds in the same order as the scalar tail, so results agree */
    for (int y = 0; y < h; y++) {
        const float *src = x + (size_t)y * w;
        for (int i = -r; i < w + r; i++)
            pad[i + r] = src[reflect_sym(i, w)];
        float *dst = tmp + (size_t)y * w;
        const float *c = pad + r;
        int i = 0;
        for (; i + 32 <= w; i += 32) {
            v8f a0 = k[0] * load8(c + i), a1 = k[0] * load8(c + i + 8);
            v8f a2 = k[0] * load8(c + i + 16), a3 = k[0] * load8(c + i + 24);
            for (int j = 1; j <= r; j++) {
                float kj = k[j];
                a0 += kj * (load8(c + i - j) + load8(c + i + j));
                a1 += kj * (load8(c + i + 8 - j) + load8(c + i + 8 + j));
                a2 += kj * (load8(c + i + 16 - j) + load8(c + i + 16 + j));
                a3 += kj * (load8(c + i + 24 - j) + load8(c + i + 24 + j));
            }
            memcpy(dst + i, &a0, sizeof a0);
            memcpy(dst + i + 8, &a1, sizeof a1);
            memcpy(dst + i + 16, &a2, sizeof a2);
            memcpy(dst + i + 24, &a3, sizeof a3);
        }
        for (; i < w; i++) {
            float acc = k[0] * c[i];
            for (int j = 1; j <= r; j++)
                acc += k[j] * (c[i - j] + c[i + j]);
            dst[i] = acc;
        }
    }
    /* columns in strips of 64: the 2r + 1 rows a strip needs stay in L1
     * while y advances, instead of streaming whole rows from L2 */
    int x0 = 0;
    for (; x0 + 64 <= w; x0 += 64) {
        for (int y = 0; y < h; y++) {
            for (int j = -r; j <= r; j++)
                rows[j + r] = tmp + (size_t)reflect_sym(y + j, h) * w + x0;
            const float **c = rows + r;
            v8f a[8];
            for (int q = 0; q < 8; q++)
                a[q] = k[0] * load8(c[0] + 8 * q);
            for (int j = 1; j <= r; j++) {
                float kj = k[j];
                const float *m = c[-j], *p = c[j];
                for (int q = 0; q < 8; q++)
                    a[q] += kj * (load8(m + 8 * q) + load8(p + 8 * q));
            }
            memcpy(x + (size_t)y * w + x0, a, sizeof a);
        }
    }
    for (int y = 0; y < h && x0 < w; y++) {
        for (int j = -r; j <= r; j++)
            rows[j + r] = tmp + (size_t)reflect_sym(y + j, h) * w;
        float *dst = x + (size_t)y * w;
        const float **c = rows + r;
        int i = x0;
        for (; i + 8 <= w; i += 8) {
            v8f acc = k[0] * load8(c[0] + i);
            for (int j = 1; j <= r; j++)
                acc += k[j] * (load8(c[-j] + i) + load8(c[j] + i));
            memcpy(dst + i, &acc, sizeof acc);
        }
        for (; i < w; i++) {
            float acc = k[0] * c[0][i];
            for (int j = 1; j <= r; j++)
                acc += k[j] * (c[-j][i] + c[j][i]);
            dst[i] = acc;
        }
    }
    free(k);
    free(rows);
    return UNET_OK;
}

/* Kovesi's three box widths (odd) whose cascade has a standard deviation
 * close to sigma; r[] gets their radii. */
static void box_radii(float sigma, int r[3])
{
    double wi = sqrt(12.0 * sigma * sigma / 3.0 + 1.0);
    int wl = (int)floor(wi);
    if (wl % 2 == 0)
        wl--;
    if (wl < 1)
        wl = 1;
    int m = (int)lround((12.0 * sigma * sigma - 3.0 * wl * wl - 12.0 * wl - 9.0) / (-4.0 * wl - 4.0));
    for (int i = 0; i < 3; i++)
        r[i] = ((i < m ? wl : wl + 2) - 1) / 2;
}

/* sum of squares of a normalised 1-D kernel: the Gaussian of gaussian_blur,
 * or the cascade of three boxes of radii r[] */
static double gauss_sq_sum(float sigma)
{
    int r = (int)(4.0f * sigma + 0.5f);
    double s = 0, q = 0;
    for (int j = -r; j <= r; j++)
        s += exp(-0.5 * j * j / ((double)sigma * sigma));
    for (int j = -r; j <= r; j++) {
        double g = exp(-0.5 * j * j / ((double)sigma * sigma)) / s;
        q += g * g;
    }
    return q;
}

static double box_sq_sum(const int r[3])
{
    int len = 1 + 2 * (r[0] + r[1] + r[2]);
    double k[2048] = { 0 }, t[2048];
    k[0] = 1.0;
    int cur = 1;
    for (int b = 0; b < 3; b++) {
        int wdt = 2 * r[b] + 1;
        for (int i = 0; i < cur + wdt - 1; i++) {
            t[i] = 0;
            for (int j = 0; j < wdt; j++)
                if (i - j >= 0 && i - j < cur)
                    t[i] += k[i - j] / wdt;
        }
        cur += wdt - 1;
        memcpy(k, t, (size_t)cur * sizeof *k);
    }
    double q = 0;
    for (int i = 0; i < len; i++)
        q += k[i] * k[i];
    return q;
}

/* Floats of temporary an elastic step needs (see elastic_fields). */
static size_t elastic_tmp_floats(const UnetAugmentStep *s)
{
    size_t n = (size_t)s->out_w * s->out_h;
    if (s->op.blur != UNET_BLUR_BOX)
        return n;
    int r[3];
    box_radii(s->op.sigma, r);
    size_t R = (size_t)(r[0] + r[1] + r[2]);
    size_t ext = (s->out_w + 2 * R) * (s->out_h + 2 * R);
    return 2 * ext > n ? 2 * ext : n;
}

/* Three running-sum box passes down the columns of src (rows x cols),
 * leaving rows - 2R rows in dst; vectorised across columns. a is scratch of
 * rows x cols and may be dst; src is overwritten; dst must not be src. */
static void box_columns(float *dst, float *src, float *a, int rows, int cols, const int r[3])
{
    float *cur = src;
    int len = rows;
    for (int k = 0; k < 3; k++) {
        int wd = 2 * r[k] + 1, n = len - 2 * r[k];
        float *o = k == 2 ? dst : (cur == src ? a : src);
        for (int x = 0; x < cols; x++)
            o[x] = 0;
        for (int i = 0; i < wd; i++)
            for (int x = 0; x < cols; x++)
                o[x] += cur[(size_t)i * cols + x];
        for (int y = 1; y < n; y++) {
            const float *add = cur + (size_t)(y + wd - 1) * cols, *sub = cur + (size_t)(y - 1) * cols;
            const float *prev = o + (size_t)(y - 1) * cols;
            float *row = o + (size_t)y * cols;
            int x = 0;
            for (; x + 8 <= cols; x += 8) {
                v8f v = load8(prev + x) + load8(add + x) - load8(sub + x);
                memcpy(row + x, &v, sizeof v);
            }
            for (; x < cols; x++)
                row[x] = prev[x] + add[x] - sub[x];
        }
        cur = o;
        len = n;
    }
}

/* One box-blurred noise field: U(-1, 1) noise on the field grown by the
 * cascade's reach (so no border rule is needed), drawn column-major so the
 * x passes run down columns too; then a transpose and the y passes. */
static void box_field(Rng *rng, float *out, int w, int h, const int r[3], float scale, float *tmp)
{
    int R = r[0] + r[1] + r[2];
    int W = w + 2 * R, H = h + 2 * R;
    float *a = tmp, *b = tmp + (size_t)W * H;
    rng_fill_uniform(rng, a, (size_t)W * H, -1.0f, 1.0f); /* a[x][y], W x H */
    box_columns(b, a, b, W, H, r);                      /* b: w x H (x passes) */
    for (int y0 = 0; y0 < H; y0 += 32)                  /* a = transpose: H x w */
        for (int x0 = 0; x0 < w; x0 += 32)
            for (int x = x0; x < x0 + 32 && x < w; x++)
                for (int y = y0; y < y0 + 32 && y < H; y++)
                    a[(size_t)y * w + x] = b[(size_t)x * H + y];
    box_columns(out, a, b, H, w, r);                    /* out: h x w (y passes) */
    for (size_t i = 0; i < (size_t)w * h; i++)
        out[i] *= scale;
}

/* The displacement fields of an elastic step at its output size: dx, dy
 * (pixels). tmp holds elastic_tmp_floats(s) floats. */
static UnetStatus elastic_fields(const UnetAugmentStep *s, float *dx, float *dy, float *tmp,
                                 UnetError *err)
{
    int w = s->out_w, h = s->out_h;
    size_t n = (size_t)w * h;
    Rng r;
    rng_seed(&r, s->seed);
    float a = s->op.alpha;
    if (s->op.blur == UNET_BLUR_BOX) {
        int rad[3];
        box_radii(s->op.sigma, rad);
        double norm = 1.0;
        for (int i = 0; i < 3; i++)
            norm *= 2 * rad[i] + 1;
        /* same field variance as the exact Gaussian blur */
        float scale = (float)(a * (gauss_sq_sum(s->op.sigma) / box_sq_sum(rad)) / (norm * norm));
        box_field(&r, dx, w, h, rad, scale, tmp);
        box_field(&r, dy, w, h, rad, scale, tmp);
        return UNET_OK;
    }
    rng_fill_uniform(&r, dx, n, -1.0f, 1.0f);
    rng_fill_uniform(&r, dy, n, -1.0f, 1.0f);
    UnetStatus st = gaussian_blur(dx, w, h, s->op.sigma, tmp, err);
    if (st == UNET_OK)
        st = gaussian_blur(dy, w, h, s->op.sigma, tmp, err);
    for (size_t i = 0; i < n; i++) {
        dx[i] *= a;
        dy[i] *= a;
    }
    return st;
}

/* Keys cubic convolution weights (a = -0.5) for offset t in [0, 1). */
static void cubic_weights(double t, double wt[4])
{
    const double a = -0.5;
    double t1 = 1 + t, t2 = t, t3 = 1 - t, t4 = 2 - t;
    wt[0] = ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a;
    wt[1] = ((a + 2) * t2 - (a + 3)) * t2 * t2 + 1;
    wt[2] = ((a + 2) * t3 - (a + 3)) * t3 * t3 + 1;
    wt[3] = ((a * t4 - 5 * a) * t4 + 8 * a) * t4 - 4 * a;
}

/* Control value i of a g-point line with linearly extrapolated ghosts. */
static double grid_at(const double *v, int g, int i)
{
    if (i < 0)
        return 2 * v[0] - v[1];
    if (i >= g)
        return 2 * v[g - 1] - v[g - 2];
    return v[i];
}

/* Per-pixel displacement of a grid_elastic step (bicubic over the control grid).
 * tmp holds 5 * width floats. */
static void grid_fields(const UnetAugmentStep *s, float *dx, float *dy, float *tmp)
{
    int w = s->out_w, h = s->out_h, g = s->op.grid;
    /* per column: the first of its 4 control columns and their weights */
    int *cix = (int *)tmp;
    float *cwx = tmp + w;
    for (int x = 0; x < w; x++) {
        double gx = w > 1 ? (double)x * (g - 1) / (w - 1) : 0.0;
        int ix = (int)floor(gx);
        if (ix > g - 2)
            ix = g - 2;
        double wt[4];
        cubic_weights(gx - ix, wt);
        cix[x] = ix; /* control columns ix-1 .. ix+2, shifted by one for the ghost */
        for (int t = 0; t < 4; t++)
            cwx[4 * x + t] = (float)wt[t];
    }
    for (int y = 0; y < h; y++) {
        double gy = h > 1 ? (double)y * (g - 1) / (h - 1) : 0.0;
        int iy = (int)floor(gy);
        if (iy > g - 2)
            iy = g - 2;
        double wy[4];
        cubic_weights(gy - iy, wy);
        /* this row's value at every control column, with a ghost on each side */
        float colx[UNET_AUGMENT_MAX_GRID + 2], coly[UNET_AUGMENT_MAX_GRID + 2];
        double cx[UNET_AUGMENT_MAX_GRID], cy[UNET_AUGMENT_MAX_GRID];
        for (int j = 0; j < g; j++) {
            double lx[UNET_AUGMENT_MAX_GRID], ly[UNET_AUGMENT_MAX_GRID];
            for (int i = 0; i < g; i++) {
                lx[i] = s->grid_dx[i * g + j];
                ly[i] = s->grid_dy[i * g + j];
            }
            cx[j] = cy[j] = 0.0;
            for (int t = 0; t < 4; t++) {
                cx[j] += wy[t] * grid_at(lx, g, iy - 1 + t);
                cy[j] += wy[t] * grid_at(ly, g, iy - 1 + t);
            }
        }
        for (int j = -1; j <= g; j++) {
            colx[j + 1] = (float)grid_at(cx, g, j);
            coly[j + 1] = (float)grid_at(cy, g, j);
        }
        float *rx = dx + (size_t)y * w, *ry = dy + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            const float *wt = cwx + 4 * x, *px = colx + cix[x], *py = coly + cix[x];
            rx[x] = wt[0] * px[0] + wt[1] * px[1] + wt[2] * px[2] + wt[3] * px[3];
            ry[x] = wt[0] * py[0] + wt[1] * py[1] + wt[2] * py[2] + wt[3] * py[3];
        }
    }
}

/* Source coordinates of every output pixel of a resampling step
 * (shift_scale_rotate, elastic, grid_elastic), row by row into fx, fy. */
static void warp(const UnetAugmentStep *s, const Planes *in, Planes *out, const float *dx,
                 const float *dy, float *fx, float *fy, int32_t *idx, float *wgt)
{
    const double *A = s->affine;
    int grid = s->kind == UNET_AUG_GRID_ELASTIC;
    float a0 = (float)A[0], a1 = (float)A[1], a2 = (float)A[2];
    float a3 = (float)A[3], a4 = (float)A[4], a5 = (float)A[5];
    /* blocks of output pixels, so the source footprint stays in cache when
     * the map rotates (row-by-row sweeps would cross the whole source) */
    const int BW = 256, BH = 16;
    for (int by = 0; by < out->h; by += BH)
        for (int bx = 0; bx < out->w; bx += BW) {
            int ye = by + BH < out->h ? by + BH : out->h;
            int xe = bx + BW < out->w ? bx + BW : out->w;
            for (int y = by; y < ye; y++) {
                size_t row = (size_t)y * out->w;
                float cxr = (float)(A[1] * y + A[2]), cyr = (float)(A[4] * y + A[5]);
                if (grid) {
                    for (int x = bx; x < xe; x++) {
                        fx[x - bx] = (float)x + dx[row + x];
                        fy[x - bx] = (float)y + dy[row + x];
                    }
                } else if (dx) {
                    for (int x = bx; x < xe; x++) {
                        float u = (float)x + dx[row + x], v = (float)y + dy[row + x];
                        fx[x - bx] = a0 * u + a1 * v + a2;
                        fy[x - bx] = a3 * u + a4 * v + a5;
                    }
                } else {
                    for (int x = bx; x < xe; x++) {
                        fx[x - bx] = a0 * (float)x + cxr;
                        fy[x - bx] = a3 * (float)x + cyr;
                    }
                }
                sample_row(in, out, y, bx, xe, fx, fy, idx, wgt);
            }
        }
}

static void gauss_noise(const UnetAugmentStep *s, Planes *p, float intensity_max, float *tmp)
{
    size_t n = (size_t)p->w * p->h;
    float sd = sqrtf(s->var) / 255.0f * intensity_max;
    Rng r;
    rng_seed(&r, s->seed);
    /* hz = INT32_MIN has no abs: rng_fill_normal sends it down the slow path */
    int planes = s->op.per_channel ? p->c : 1;
    for (int c = 0; c < planes; c++) {
        rng_fill_normal(&r, tmp, n, sd);
        for (int k = s->op.per_channel ? c : 0; k < (s->op.per_channel ? c + 1 : p->c); k++) {
            float *img = p->img + k * n;
            for (size_t i = 0; i < n; i++)
                img[i] += tmp[i];
        }
    }
}

static void mult_noise(const UnetAugmentStep *s, Planes *p, float *tmp)
{
    size_t n = (size_t)p->w * p->h;
    Rng r;
    rng_seed(&r, s->seed);
    if (s->op.per_channel) {
        for (int c = 0; c < p->c; c++) {
            rng_fill_uniform(&r, tmp, n, s->op.mult_min, s->op.mult_max);
            for (size_t i = 0; i < n; i++)
                p->img[c * n + i] *= tmp[i];
        }
    } else {
        rng_fill_uniform(&r, tmp, n, s->op.mult_min, s->op.mult_max);
        for (int c = 0; c < p->c; c++)
            for (size_t i = 0; i < n; i++)
                p->img[c * n + i] *= tmp[i];
    }
}

static size_t record_max_pixels(const UnetAugmentRecord *rec)
{
    size_t m = (size_t)rec->in_w * rec->in_h;
    for (int i = 0; i < rec->count; i++) {
        size_t o = (size_t)rec->steps[i].out_w * rec->steps[i].out_h;
        if (o > m)
            m = o;
    }
    return m;
}

static UnetStatus check_record(const UnetAugmentRecord *rec, UnetError *err)
{
    if (rec->in_w < 1 || rec->in_h < 1 || rec->count < 0 || rec->count > UNET_AUGMENT_MAX_STAGES)
        return unet_error_set(err, UNET_ERR_INVALID, "augment: the record is not initialised");
    int w = rec->in_w, h = rec->in_h;
    for (int i = 0; i < rec->count; i++) {
        const UnetAugmentStep *s = &rec->steps[i];
        if (s->in_w != w || s->in_h != h || s->out_w < 1 || s->out_h < 1 ||
            s->out_w > UNET_AUGMENT_MAX_SIDE || s->out_h > UNET_AUGMENT_MAX_SIDE ||
            s->kind < 0 || s->kind >= UNET_AUG_KIND_COUNT)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "augment: step %d of the record does not fit its input", i);
        w = s->out_w;
        h = s->out_h;
    }
    if (w != rec->out_w || h != rec->out_h)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "augment: the record's output size does not match its steps");
    return UNET_OK;
}

UnetStatus unet_augment_apply(const UnetAugmentRecord *rec, const float *image, int channels,
                              const int32_t *mask, const float *weight, float *image_out,
                              int32_t *mask_out, float *weight_out, UnetScratch *scratch,
                              UnetError *err)
{
    UnetStatus status = check_record(rec, err);
    if (status != UNET_OK)
        return status;
    if (image && (channels < 1 || channels > 64))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "augment: %d image channels; use 1 to 64", channels);
    if ((image && !image_out) || (mask && !mask_out) || (weight && !weight_out))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "augment: an input was given without its output buffer");
    pthread_once(&zig_once, zig_init);
    int C = image ? channels : 0;
    size_t maxn = record_max_pixels(rec), n0 = (size_t)rec->in_w * rec->in_h;
    /* two image states to ping-pong between, and field buffers */
    size_t tmpn = maxn;
    for (int i = 0; i < rec->count; i++)
        if (rec->steps[i].kind == UNET_AUG_ELASTIC && elastic_tmp_floats(&rec->steps[i]) > tmpn)
            tmpn = elastic_tmp_floats(&rec->steps[i]);
    size_t floats = maxn * ((size_t)2 * C + (weight ? 2 : 0) + 2) + tmpn + (size_t)16 * UNET_AUGMENT_MAX_SIDE;
    UnetScratch local = { 0 };
    UnetScratch *sc = scratch ? scratch : &local;
    float *fbuf = unet_scratch_reserve(sc, floats * sizeof(float) + (mask ? maxn * 2 * sizeof(int32_t) : 0));
    if (!fbuf)
        return unet_error_set(err, UNET_ERR_NOMEM, "augment: out of memory for %zu pixels", maxn);
    int32_t *mbuf = mask ? (int32_t *)(fbuf + floats) : NULL;
    float *cursor = fbuf;
    Planes st[2];
    for (int b = 0; b < 2; b++) {
        st[b].c = C;
        st[b].img = C ? cursor : NULL;
        cursor += maxn * C;
        st[b].wt = weight ? cursor : NULL;
        cursor += weight ? maxn : 0;
        st[b].mask = mask ? mbuf + b * maxn : NULL;
    }
    /* fields dx, dy, and a temporary of max(pixels, 5 rows) */
    float *fa = cursor, *fb = cursor + maxn, *ft = cursor + 2 * maxn;
    float *rowx = ft + tmpn + 5 * UNET_AUGMENT_MAX_SIDE, *rowy = rowx + UNET_AUGMENT_MAX_SIDE;
    float *rwgt = rowy + UNET_AUGMENT_MAX_SIDE;
    int32_t *ridx = (int32_t *)(rwgt + 2 * UNET_AUGMENT_MAX_SIDE);

    /* Route the data so nothing is copied needlessly: the last geometric step
     * writes straight into the outputs, earlier ones alternate between the
     * two scratch states; the input is only read (copied once if an intensity
     * step comes before any geometric one). */
    Planes input = { rec->in_w, rec->in_h, C, (float *)image, (int32_t *)mask, (float *)weight };
    Planes output = { rec->out_w, rec->out_h, C, image_out, mask_out, weight_out };
    int geometric_left = 0;
    for (int i = 0; i < rec->count; i++)
        geometric_left += is_geometric(rec->steps[i].kind);
    Planes *cur = &input;
    for (int i = 0; i < rec->count && status == UNET_OK; i++) {
        const UnetAugmentStep *s = &rec->steps[i];
        if (!is_geometric(s->kind)) {
            if (!C)
                continue;
            if (cur == &input) {
                Planes *dst = geometric_left ? &st[0] : &output;
                dst->w = cur->w;
                dst->h = cur->h;
                memcpy(dst->img, image, n0 * C * sizeof(float));
                if (weight)
                    memcpy(dst->wt, weight, n0 * sizeof(float));
                if (mask)
                    memcpy(dst->mask, mask, n0 * sizeof(int32_t));
                cur = dst;
            }
            size_t n = (size_t)cur->w * cur->h;
            if (s->kind == UNET_AUG_GAUSS_NOISE) {
                gauss_noise(s, cur, rec->intensity_max, fa);
            } else if (s->kind == UNET_AUG_MULT_NOISE) {
                mult_noise(s, cur, fa);
            } else {
                float a = s->alpha, b = s->beta * rec->intensity_max;
                for (size_t j = 0; j < n * C; j++)
                    cur->img[j] = a * cur->img[j] + b;
            }
            continue;
        }
        Planes *nxt = --geometric_left == 0 ? &output : (cur == &st[0] ? &st[1] : &st[0]);
        nxt->w = s->out_w;
        nxt->h = s->out_h;
        switch (s->kind) {
        case UNET_AUG_SHIFT_SCALE_ROTATE:
            warp(s, cur, nxt, NULL, NULL, rowx, rowy, ridx, rwgt);
            break;
        case UNET_AUG_ELASTIC:
            status = elastic_fields(s, fa, fb, ft, err);
            if (status == UNET_OK)
                warp(s, cur, nxt, fa, fb, rowx, rowy, ridx, rwgt);
            break;
        case UNET_AUG_GRID_ELASTIC:
            grid_fields(s, fa, fb, ft);
            warp(s, cur, nxt, fa, fb, rowx, rowy, ridx, rwgt);
            break;
        default:
            apply_index_map(s, cur, nxt);
            break;
        }
        cur = nxt;
    }
    if (status == UNET_OK && cur == &input) { /* no step touched the data */
        if (C)
            memcpy(image_out, image, n0 * C * sizeof(float));
        if (weight)
            memcpy(weight_out, weight, n0 * sizeof(float));
        if (mask)
            memcpy(mask_out, mask, n0 * sizeof(int32_t));
    }
    if (!scratch)
        unet_scratch_free(&local);
    return status;
}

/* ---- composite source coordinates for display ---- */

static double field_at(const float *f, int w, int h, double x, double y)
{
    double x0 = floor(x), y0 = floor(y), ax = x - x0, ay = y - y0;
    int xa = reflect101((int)x0, w), xb = reflect101((int)x0 + 1, w);
    int ya = reflect101((int)y0, h), yb = reflect101((int)y0 + 1, h);
    return (1 - ay) * ((1 - ax) * f[(size_t)ya * w + xa] + ax * f[(size_t)ya * w + xb]) +
           ay * ((1 - ax) * f[(size_t)yb * w + xa] + ax * f[(size_t)yb * w + xb]);
}

UnetStatus unet_augment_source_coords(const UnetAugmentRecord *rec, float *sx, float *sy,
                                      UnetError *err)
{
    UnetStatus status = check_record(rec, err);
    if (status != UNET_OK)
        return status;
    size_t n = (size_t)rec->out_w * rec->out_h, maxn = record_max_pixels(rec);
    double *px = malloc(n * 2 * sizeof *px);
    size_t tmpn = maxn;
    for (int i = 0; i < rec->count; i++)
        if (rec->steps[i].kind == UNET_AUG_ELASTIC && elastic_tmp_floats(&rec->steps[i]) > tmpn)
            tmpn = elastic_tmp_floats(&rec->steps[i]);
    float *f = malloc((maxn * 2 + tmpn + 5 * UNET_AUGMENT_MAX_SIDE) * sizeof *f);
    if (!px || !f) {
        free(px);
        free(f);
        return unet_error_set(err, UNET_ERR_NOMEM, "augment: out of memory for %zu pixels", n);
    }
    double *py = px + n;
    for (size_t i = 0; i < n; i++) {
        px[i] = (double)(i % rec->out_w);
        py[i] = (double)(i / rec->out_w);
    }
    for (int k = rec->count - 1; k >= 0 && status == UNET_OK; k--) {
        const UnetAugmentStep *s = &rec->steps[k];
        if (!is_geometric(s->kind))
            continue;
        float *dx = f, *dy = f + maxn;
        if (s->kind == UNET_AUG_ELASTIC)
            status = elastic_fields(s, dx, dy, f + 2 * maxn, err);
        else if (s->kind == UNET_AUG_GRID_ELASTIC)
            grid_fields(s, dx, dy, f + 2 * maxn);
        if (status != UNET_OK)
            break;
        int m[6];
        index_map(s, m);
        const double *A = s->affine;
        for (size_t i = 0; i < n; i++) {
            double u = px[i], v = py[i], a, b;
            switch (s->kind) {
            case UNET_AUG_SHIFT_SCALE_ROTATE:
                a = A[0] * u + A[1] * v + A[2];
                b = A[3] * u + A[4] * v + A[5];
                break;
            case UNET_AUG_ELASTIC:
            case UNET_AUG_GRID_ELASTIC: {
                double uu = u + field_at(dx, s->out_w, s->out_h, u, v);
                double vv = v + field_at(dy, s->out_w, s->out_h, u, v);
                if (s->kind == UNET_AUG_ELASTIC) {
                    a = A[0] * uu + A[1] * vv + A[2];
                    b = A[3] * uu + A[4] * vv + A[5];
                } else {
                    a = uu;
                    b = vv;
                }
                break;
            }
            default:
                a = m[0] * u + m[1] * v + m[2];
                b = m[3] * u + m[4] * v + m[5];
                break;
            }
            px[i] = reflect101_continuous(a, s->in_w);
            py[i] = reflect101_continuous(b, s->in_h);
        }
    }
    if (status == UNET_OK)
        for (size_t i = 0; i < n; i++) {
            sx[i] = (float)px[i];
            sy[i] = (float)py[i];
        }
    free(px);
    free(f);
    return status;
}
