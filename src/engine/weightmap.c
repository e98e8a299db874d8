/* weightmap.c - U-Net border weight maps: exact fast d1/d2 and the per-cell reference. */
#include "weightmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "components.h"
#include "edt.h"

#define COL_NONE 0x3fffffff
#define MAX_INSTANCE_ID 16777215

void unet_weightmap_config_default(UnetWeightMapConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->w0 = 10.0f;
    cfg->sigma = 5.0f;
    cfg->balance = UNET_BALANCE_MAX;
    cfg->tolerance = 1e-5f;
    cfg->separate_touching = 1;
    cfg->exact_d2 = 0;
}

UnetStatus unet_weightmap_config_validate(const UnetWeightMapConfig *cfg, UnetError *err)
{
    if (!(cfg->w0 >= 0.0f) || !isfinite(cfg->w0))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "weight map: w0 is %g; it must be a finite number >= 0",
                              (double)cfg->w0);
    if (!(cfg->sigma > 0.0f) || !isfinite(cfg->sigma))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "weight map: sigma is %g; it must be a finite number > 0",
                              (double)cfg->sigma);
    if (!(cfg->tolerance > 0.0f) || !(cfg->tolerance < 1.0f))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "weight map: tolerance is %g; it must be in (0, 1)",
                              (double)cfg->tolerance);
    if (cfg->balance < UNET_BALANCE_MAX || cfg->balance > UNET_BALANCE_NONE)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "weight map: unknown class balance %d", (int)cfg->balance);
    return UNET_OK;
}

static const char *const balance_names[] = { "max", "inverse", "none" };

const char *unet_class_balance_name(UnetClassBalance b)
{
    return b >= UNET_BALANCE_MAX && b <= UNET_BALANCE_NONE ? balance_names[b] : "?";
}

UnetStatus unet_class_balance_parse(const char *s, UnetClassBalance *out, UnetError *err)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, balance_names[i])) {
            *out = (UnetClassBalance)i;
            return UNET_OK;
        }
    return unet_error_set(err, UNET_ERR_INVALID,
                          "unknown class balance '%s': use max, inverse or none", s ? s : "");
}

/* Everything both methods share: the class map actually used, the cells,
 * the class weights. */
typedef struct Prep {
    int w, h;
    size_t n;
    int32_t *cls;   /* class per pixel, borders carved */
    int32_t *cell;  /* 1..ncells, 0 outside cells */
    int ncells;
    int nclasses;
    float class_weights[UNET_WEIGHTMAP_MAX_CLASSES];
    float cutoff;
} Prep;

static void prep_free(Prep *p)
{
    free(p->cls);
    free(p->cell);
}

static UnetStatus prep_init(Prep *p, const UnetWeightMapConfig *cfg, const int32_t *classes,
                            const int32_t *instances, int w, int h, UnetError *err)
{
    memset(p, 0, sizeof *p);
    UnetStatus st = unet_weightmap_config_validate(cfg, err);
    if (st != UNET_OK)
        return st;
    if (w < 1 || h < 1 || w > UNET_EDT_MAX_SIDE || h > UNET_EDT_MAX_SIDE)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "weight map: mask size %dx%d is outside 1..%d per side", w, h,
                              UNET_EDT_MAX_SIDE);
    if (!classes && !instances)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "weight map: give a class mask, an instance mask or both");
    p->w = w;
    p->h = h;
    p->n = (size_t)w * h;
    p->cls = malloc(p->n * sizeof *p->cls);
    p->cell = malloc(p->n * sizeof *p->cell);
    if (!p->cls || !p->cell) {
        prep_free(p);
        return unet_error_set(err, UNET_ERR_NOMEM, "weight map: out of memory for %dx%d", w, h);
    }
    int32_t max_id = 0;
    for (size_t i = 0; i < p->n; i++) {
        int32_t c = classes ? classes[i] : 0;
        if (c < 0 || c >= UNET_WEIGHTMAP_MAX_CLASSES) {
            prep_free(p);
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "weight map: class %d at pixel (%zu, %zu) is outside 0..%d",
                                  (int)c, i % (size_t)w, i / (size_t)w,
                                  UNET_WEIGHTMAP_MAX_CLASSES - 1);
        }
        if (instances) {
            int32_t id = instances[i];
            if (id < 0 || id > MAX_INSTANCE_ID) {
                prep_free(p);
                return unet_error_set(err, UNET_ERR_INVALID,
                                      "weight map: instance id %d at pixel (%zu, %zu) is outside "
                                      "0..%d; relabel the instances",
                                      (int)id, i % (size_t)w, i / (size_t)w, MAX_INSTANCE_ID);
            }
            if (id && !c)
                c = 1;
            if (id > max_id)
                max_id = id;
        }
        p->cls[i] = c;
    }

    if (instances) {
        /* carve: instance pixels that touch another instance of the same class */
        if (cfg->separate_touching) {
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    size_t i = (size_t)y * w + x;
                    int32_t a = instances[i];
                    p->cell[i] = a;
                    if (!a)
                        continue;
                    int carve = 0;
                    for (int dy = -1; dy <= 1 && !carve; dy++)
                        for (int dx = -1; dx <= 1; dx++) {
                            int xx = x + dx, yy = y + dy;
                            if ((!dx && !dy) || xx < 0 || yy < 0 || xx >= w || yy >= h)
                                continue;
                            size_t j = (size_t)yy * w + xx;
                            int32_t b = instances[j];
                            int32_t cb = classes ? classes[j] : 0;
                            if (b && !cb)
                                cb = 1;
                            if (b && b != a && cb == p->cls[i]) {
                                carve = 1;
                                break;
                            }
                        }
                    if (carve)
                        p->cell[i] = -1;
                }
            for (size_t i = 0; i < p->n; i++)
                if (p->cell[i] < 0) {
                    p->cell[i] = 0;
                    p->cls[i] = 0;
                }
        } else {
            memcpy(p->cell, instances, p->n * sizeof *p->cell);
        }
        /* compact ids to 1..n in raster order of first appearance */
        int32_t *map = calloc((size_t)max_id + 1, sizeof *map);
        if (!map) {
            prep_free(p);
            return unet_error_set(err, UNET_ERR_NOMEM, "weight map: out of memory for instance ids");
        }
        int32_t count = 0;
        for (size_t i = 0; i < p->n; i++) {
            int32_t id = p->cell[i];
            if (!id)
                continue;
            if (!map[id])
                map[id] = ++count;
            p->cell[i] = map[id];
        }
        free(map);
        p->ncells = count;
    } else {
        st = unet_components_label_values(p->cell, p->cls, w, h, 8, &p->ncells, err);
        if (st != UNET_OK) {
            prep_free(p);
            return unet_error_prefix(err, "weight map: ");
        }
    }

    /* class weights */
    size_t counts[UNET_WEIGHTMAP_MAX_CLASSES] = { 0 };
    for (size_t i = 0; i < p->n; i++)
        counts[p->cls[i]]++;
    int present = 0;
    size_t maxc = 0;
    p->nclasses = 1;
    for (int c = 0; c < UNET_WEIGHTMAP_MAX_CLASSES; c++)
        if (counts[c]) {
            present++;
            p->nclasses = c + 1;
            if (counts[c] > maxc)
                maxc = counts[c];
        }
    for (int c = 0; c < UNET_WEIGHTMAP_MAX_CLASSES; c++) {
        float wc = 0.0f;
        if (counts[c]) {
            if (cfg->balance == UNET_BALANCE_MAX)
                wc = (float)((double)maxc / (double)counts[c]);
            else if (cfg->balance == UNET_BALANCE_INVERSE)
                wc = (float)((double)p->n / ((double)present * (double)counts[c]));
            else
                wc = 1.0f;
        }
        p->class_weights[c] = wc;
    }
    p->cutoff = cfg->w0 > cfg->tolerance
                    ? (float)(cfg->sigma * sqrt(2.0 * log((double)cfg->w0 / cfg->tolerance)))
                    : 0.0f;
    return UNET_OK;
}

static void fill_info(UnetWeightMapInfo *info, const Prep *p)
{
    if (!info)
        return;
    info->cells = p->ncells;
    info->classes = p->nclasses;
    memcpy(info->class_weights, p->class_weights, sizeof info->class_weights);
    info->cutoff = p->cutoff;
}

/* Writes the outputs for one pixel from its exact (or dropped) distances. */
static inline void emit(const UnetWeightMapConfig *cfg, const Prep *p, UnetWeightMapOutputs *out,
                        size_t i, double d1, double d2)
{
    int32_t c = p->cls[i];
    float wc = p->class_weights[c];
    if (out->class_weight)
        out->class_weight[i] = wc;
    if (out->d1)
        out->d1[i] = (float)d1;
    if (out->d2)
        out->d2[i] = (float)d2;
    if (out->weight) {
        double wv = wc;
        if (c == 0 && isfinite(d2)) {
            double s = d1 + d2;
            wv += cfg->w0 * exp(-s * s / (2.0 * (double)cfg->sigma * cfg->sigma));
        }
        out->weight[i] = (float)wv;
    }
}

static void emit_maps(const Prep *p, UnetWeightMapOutputs *out)
{
    if (out->cells)
        memcpy(out->cells, p->cell, p->n * sizeof *p->cell);
    if (out->classes)
        memcpy(out->classes, p->cls, p->n * sizeof *p->cls);
}

/* Column pass: per pixel, the nearest two distinct cells of its column
 * (label, distance in rows), from a downward and an upward scan. */
static void column_top2(int32_t *g1, int32_t *l1, int32_t *g2, int32_t *l2, const int32_t *cell,
                        int w, int h, int32_t *state)
{
    int32_t *la = state, *ra = state + w, *lb = state + 2 * w, *rb = state + 3 * w;
    for (int x = 0; x < w; x++) {
        la[x] = lb[x] = 0;
        ra[x] = rb[x] = -COL_NONE;
    }
    /* downward: nearest above (inclusive), and nearest above with another label */
    for (int y = 0; y < h; y++) {
        const int32_t *c = cell + (size_t)y * w;
        int32_t *G1 = g1 + (size_t)y * w, *L1 = l1 + (size_t)y * w;
        int32_t *G2 = g2 + (size_t)y * w, *L2 = l2 + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            int32_t v = c[x];
            if (v) {
                if (v == la[x]) {
                    ra[x] = y;
                } else {
                    lb[x] = la[x];
                    rb[x] = ra[x];
                    la[x] = v;
                    ra[x] = y;
                }
            }
            int32_t da = y - ra[x], db = y - rb[x];
            L1[x] = la[x];
            G1[x] = da < COL_NONE ? da : COL_NONE;
            L2[x] = lb[x];
            G2[x] = db < COL_NONE ? db : COL_NONE;
        }
    }
    for (int x = 0; x < w; x++) {
        la[x] = lb[x] = 0;
        ra[x] = rb[x] = 2 * COL_NONE;
    }
    /* upward, merged with the downward candidates into the top two */
    for (int y = h - 1; y >= 0; y--) {
        const int32_t *c = cell + (size_t)y * w;
        int32_t *G1 = g1 + (size_t)y * w, *L1 = l1 + (size_t)y * w;
        int32_t *G2 = g2 + (size_t)y * w, *L2 = l2 + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            int32_t v = c[x];
            if (v) {
                if (v == la[x]) {
                    ra[x] = y;
                } else {
                    lb[x] = la[x];
                    rb[x] = ra[x];
                    la[x] = v;
                    ra[x] = y;
                }
            }
            int32_t ua = ra[x] - y, ub = rb[x] - y;
            ua = ua < COL_NONE ? ua : COL_NONE;
            ub = ub < COL_NONE ? ub : COL_NONE;
            int32_t dla = L1[x], dga = G1[x], dlb = L2[x], dgb = G2[x];
            int32_t fl, fg;
            if (dga <= ua) {
                fl = dla;
                fg = dga;
            } else {
                fl = la[x];
                fg = ua;
            }
            /* best of each side whose label differs from the first */
            int32_t sg_d = dla != fl ? dga : dgb, sl_d = dla != fl ? dla : dlb;
            int32_t sg_u = la[x] != fl ? ua : ub, sl_u = la[x] != fl ? la[x] : lb[x];
            L1[x] = fg < COL_NONE ? fl : 0;
            G1[x] = fg;
            if (sg_d <= sg_u) {
                L2[x] = sg_d < COL_NONE ? sl_d : 0;
                G2[x] = sg_d;
            } else {
                L2[x] = sg_u < COL_NONE ? sl_u : 0;
                G2[x] = sg_u;
            }
        }
    }
}

static UnetStatus distances_fast(const UnetWeightMapConfig *cfg, const Prep *p,
                                 UnetWeightMapOutputs *out, UnetError *err)
{
    int w = p->w, h = p->h;
    size_t n = p->n;
    int32_t *g1 = malloc(n * sizeof *g1);
    int32_t *l1 = malloc(n * sizeof *l1);
    int32_t *g2 = malloc(n * sizeof *g2);
    int32_t *l2 = malloc(n * sizeof *l2);
    int32_t *state = malloc((size_t)4 * w * sizeof *state);
    int32_t *f = malloc((size_t)w * sizeof *f);
    int32_t *arg = malloc((size_t)w * sizeof *arg);
    int64_t *F1 = malloc((size_t)w * sizeof *F1);
    int64_t *scratch = malloc((size_t)3 * w * sizeof *scratch);
    if (!g1 || !l1 || !g2 || !l2 || !state || !f || !arg || !F1 || !scratch) {
        free(g1); free(l1); free(g2); free(l2); free(state); free(f); free(arg); free(F1);
        free(scratch);
        return unet_error_set(err, UNET_ERR_NOMEM, "weight map: out of memory for %dx%d", w, h);
    }
    column_top2(g1, l1, g2, l2, p->cell, w, h, state);

    double R = p->cutoff;
    for (int y = 0; y < h; y++) {
        size_t row = (size_t)y * w;
        const int32_t *G1 = g1 + row, *L1 = l1 + row, *G2 = g2 + row;
        for (int x = 0; x < w; x++)
            f[x] = G1[x] >= COL_NONE ? -1 : G1[x] * G1[x];
        unet_edt_envelope_1d(F1, arg, f, w, scratch);
        for (int x = 0; x < w; x++) {
            size_t i = row + x;
            if (F1[x] < 0) { /* no cell at all */
                emit(cfg, p, out, i, INFINITY, INFINITY);
                continue;
            }
            double d1 = sqrt((double)F1[x]);
            int kmax;
            if (cfg->exact_d2)
                kmax = w;
            else if (p->cls[i] == 0 && d1 <= R)
                kmax = (int)floor(R - d1);
            else
                kmax = -1;
            int64_t best = INT64_MAX;
            if (kmax >= 0) {
                int32_t a = L1[arg[x]];
                for (int k = 0; k <= kmax; k++) {
                    int64_t kk = (int64_t)k * k;
                    if (kk >= best)
                        break;
                    int xl = x - k, xr = x + k;
                    if (xl >= 0) {
                        int32_t g = L1[xl] != a ? G1[xl] : G2[xl];
                        if (g < COL_NONE) {
                            int64_t v = kk + (int64_t)g * g;
                            best = v < best ? v : best;
                        }
                    }
                    if (k && xr < w) {
                        int32_t g = L1[xr] != a ? G1[xr] : G2[xr];
                        if (g < COL_NONE) {
                            int64_t v = kk + (int64_t)g * g;
                            best = v < best ? v : best;
                        }
                    }
                }
                /* proven only if no unscanned column could do better */
                if (!cfg->exact_d2 && best > (int64_t)(kmax + 1) * (kmax + 1))
                    best = INT64_MAX;
            }
            double d2 = best == INT64_MAX ? INFINITY : sqrt((double)best);
            emit(cfg, p, out, i, d1, d2);
        }
    }
    free(g1); free(l1); free(g2); free(l2); free(state); free(f); free(arg); free(F1);
    free(scratch);
    return UNET_OK;
}

UnetStatus unet_weightmap_compute(const UnetWeightMapConfig *cfg, const int32_t *classes,
                                  const int32_t *instances, int width, int height,
                                  UnetWeightMapOutputs *out, UnetWeightMapInfo *info,
                                  UnetError *err)
{
    Prep p;
    UnetStatus st = prep_init(&p, cfg, classes, instances, width, height, err);
    if (st != UNET_OK)
        return st;
    UnetWeightMapOutputs none = { 0 };
    if (!out)
        out = &none;
    st = distances_fast(cfg, &p, out, err);
    if (st == UNET_OK) {
        emit_maps(&p, out);
        fill_info(info, &p);
    }
    prep_free(&p);
    return st;
}

UnetStatus unet_weightmap_reference(const UnetWeightMapConfig *cfg, const int32_t *classes,
                                    const int32_t *instances, int width, int height,
                                    UnetWeightMapOutputs *out, UnetWeightMapInfo *info,
                                    UnetError *err)
{
    Prep p;
    UnetStatus st = prep_init(&p, cfg, classes, instances, width, height, err);
    if (st != UNET_OK)
        return st;
    UnetWeightMapOutputs none = { 0 };
    if (!out)
        out = &none;
    size_t n = p.n;
    float *b1 = malloc(n * sizeof *b1);
    float *b2 = malloc(n * sizeof *b2);
    float *dj = malloc(n * sizeof *dj);
    uint8_t *sites = malloc(n);
    if (!b1 || !b2 || !dj || !sites) {
        free(b1); free(b2); free(dj); free(sites);
        prep_free(&p);
        return unet_error_set(err, UNET_ERR_NOMEM, "weight map: out of memory for %dx%d",
                              width, height);
    }
    for (size_t i = 0; i < n; i++)
        b1[i] = b2[i] = INFINITY;
    for (int j = 1; j <= p.ncells && st == UNET_OK; j++) {
        for (size_t i = 0; i < n; i++)
            sites[i] = p.cell[i] == j;
        st = unet_edt_squared(dj, sites, width, height, err);
        for (size_t i = 0; i < n && st == UNET_OK; i++) {
            float d = dj[i];
            if (d < b1[i]) {
                b2[i] = b1[i];
                b1[i] = d;
            } else if (d < b2[i]) {
                b2[i] = d;
            }
        }
    }
    if (st == UNET_OK) {
        for (size_t i = 0; i < n; i++)
            emit(cfg, &p, out, i, sqrt((double)b1[i]), sqrt((double)b2[i]));
        emit_maps(&p, out);
        fill_info(info, &p);
    }
    free(b1); free(b2); free(dj); free(sites);
    prep_free(&p);
    return st;
}
