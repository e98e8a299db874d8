/* weightmap.c - U-Net border weight maps: exact fast d1/d2 and the per-cell reference. */
#include "weightmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "components.h"
#include "edt.h"
#include "scratch.h"

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

static UnetStatus check_args(const UnetWeightMapConfig *cfg, const int32_t *classes,
                             const int32_t *instances, int w, int h, UnetError *err)
{
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
    return UNET_OK;
}

/* cls, cell: width*height int32 each; work: width*height + 1 int32. */
static UnetStatus prep_init(Prep *p, const UnetWeightMapConfig *cfg, const int32_t *classes,
                            const int32_t *instances, int w, int h, int32_t *cls, int32_t *cell,
                            int32_t *work, UnetError *err)
{
    memset(p, 0, sizeof *p);
    UnetStatus st;
    p->w = w;
    p->h = h;
    p->n = (size_t)w * h;
    p->cls = cls;
    p->cell = cell;
    int32_t max_id = 0;
    for (size_t i = 0; i < p->n; i++) {
        int32_t c = classes ? classes[i] : 0;
        if (c < 0 || c >= UNET_WEIGHTMAP_MAX_CLASSES) {
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "weight map: class %d at pixel (%zu, %zu) is outside 0..%d",
                                  (int)c, i % (size_t)w, i / (size_t)w,
                                  UNET_WEIGHTMAP_MAX_CLASSES - 1);
        }
        if (instances) {
            int32_t id = instances[i];
            if (id < 0 || id > MAX_INSTANCE_ID) {
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
        st = unet_components_label_values_ws(p->cell, p->cls, w, h, 8, &p->ncells, work, err);
        if (st != UNET_OK) {
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

/* Row y's row stage: d1 (lower envelope of the column distances) and d2
 * (outward scan over columns, skipping the nearest cell's label). */
/* Top two distinct cells of row y's background pixels by scanning columns
 * outwards (exact: see weightmap.h), for rows where background is sparse. */
static void row_scan(const UnetWeightMapConfig *cfg, const Prep *p, UnetWeightMapOutputs *out,
                     int y, const int32_t *G1, const int32_t *L1, const int32_t *G2,
                     const int32_t *L2)
{
    int w = p->w;
    size_t row = (size_t)y * w;
    int kmax = (int)floor(p->cutoff);
    for (int x = 0; x < w; x++) {
        size_t i = row + x;
        int32_t c = p->cls[i];
        if (c != 0) {
            float wc = p->class_weights[c];
            if (out->weight)
                out->weight[i] = wc;
            if (out->class_weight)
                out->class_weight[i] = wc;
            continue;
        }
        int64_t b1 = INT64_MAX, b2 = INT64_MAX;
        int32_t l1 = 0;
        for (int k = 0; k <= kmax; k++) {
            int64_t kk = (int64_t)k * k;
            if (kk >= b2)
                break;
            for (int side = 0; side < 2; side++) {
                int xx = side ? x + k : x - k;
                if ((side && (!k || xx >= w)) || xx < 0)
                    continue;
                for (int t = 0; t < 2; t++) {
                    int32_t g = t ? G2[xx] : G1[xx];
                    if (g >= COL_NONE)
                        break;
                    int64_t v = kk + (int64_t)g * g;
                    int32_t l = t ? L2[xx] : L1[xx];
                    if (v < b1) {
                        if (l != l1)
                            b2 = b1;
                        b1 = v;
                        l1 = l;
                    } else if (v < b2 && l != l1) {
                        b2 = v;
                    }
                }
            }
        }
        /* both are proven once no unscanned column could beat b2; otherwise
         * d2 > kmax >= R - d1 and the border term is below the tolerance */
        double d1 = b1 == INT64_MAX ? INFINITY : sqrt((double)b1);
        double d2 = b2 <= (int64_t)(kmax + 1) * (kmax + 1) ? sqrt((double)b2) : INFINITY;
        if (isfinite(d2) && d1 + d2 > p->cutoff + 1e-9)
            d2 = INFINITY; /* outside the exactness region: report as not computed */
        emit(cfg, p, out, i, d1, d2);
    }
}

static void row_stage(const UnetWeightMapConfig *cfg, const Prep *p, UnetWeightMapOutputs *out,
                      int y, const int32_t *G1, const int32_t *L1, const int32_t *G2,
                      const int32_t *L2, int32_t *f, int32_t *arg, int64_t *F1, int64_t *env)
{
    int w = p->w;
    size_t row = (size_t)y * w;
    double R = p->cutoff;
    int need_all = out->d1 || out->d2 || cfg->exact_d2;
    if (!need_all) {
        int background = 0;
        for (int x = 0; x < w; x++)
            background += p->cls[row + x] == 0;
        /* few background pixels: scanning them is cheaper than the envelope */
        if (4 * background <= w) {
            row_scan(cfg, p, out, y, G1, L1, G2, L2);
            return;
        }
    }
    for (int x = 0; x < w; x++)
        f[x] = G1[x] >= COL_NONE ? -1 : G1[x] * G1[x];
    unet_edt_envelope_1d(F1, arg, f, w, env);
    for (int x = 0; x < w; x++) {
        size_t i = row + x;
        int32_t c = p->cls[i];
        if (c != 0 && !need_all) { /* inside a cell only w_c matters */
            float wc = p->class_weights[c];
            if (out->weight)
                out->weight[i] = wc;
            if (out->class_weight)
                out->class_weight[i] = wc;
            continue;
        }
        if (F1[x] < 0) { /* no cell at all */
            emit(cfg, p, out, i, INFINITY, INFINITY);
            continue;
        }
        double d1 = sqrt((double)F1[x]);
        int kmax;
        if (cfg->exact_d2)
            kmax = w;
        else if (c == 0 && d1 <= R)
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

/* Column pass: a downward scan stores, per pixel, the nearest cell above
 * (inclusive) and the nearest above with another label; the upward scan
 * merges them with its own two into the column's top two distinct cells and
 * runs the row stage on each finished row. */
static void distances_fast(const UnetWeightMapConfig *cfg, const Prep *p,
                           UnetWeightMapOutputs *out, int32_t *down, int32_t *rows)
{
    int w = p->w, h = p->h;
    size_t n = p->n;
    int32_t *DLa = down, *DGa = down + n, *DLb = down + 2 * n, *DGb = down + 3 * n;
    int32_t *la = rows, *ra = rows + w, *lb = rows + 2 * w, *rb = rows + 3 * w;
    int32_t *G1 = rows + 4 * w, *L1 = rows + 5 * w, *G2 = rows + 6 * w, *L2 = rows + 9 * w;
    int32_t *f = rows + 7 * w, *arg = rows + 8 * w;
    int64_t *F1 = (int64_t *)(rows + 10 * w), *env = F1 + w;
    const int32_t *cell = p->cell;

    for (int x = 0; x < w; x++) {
        la[x] = lb[x] = 0;
        ra[x] = rb[x] = -COL_NONE;
    }
    for (int y = 0; y < h; y++) {
        const int32_t *c = cell + (size_t)y * w;
        size_t o = (size_t)y * w;
        for (int x = 0; x < w; x++) {
            int32_t v = c[x];
            if (v) {
                if (v != la[x]) {
                    lb[x] = la[x];
                    rb[x] = ra[x];
                    la[x] = v;
                }
                ra[x] = y;
            }
            int32_t da = y - ra[x], db = y - rb[x];
            DLa[o + x] = la[x];
            DGa[o + x] = da < COL_NONE ? da : COL_NONE;
            DLb[o + x] = lb[x];
            DGb[o + x] = db < COL_NONE ? db : COL_NONE;
        }
    }
    for (int x = 0; x < w; x++) {
        la[x] = lb[x] = 0;
        ra[x] = rb[x] = 2 * COL_NONE;
    }
    for (int y = h - 1; y >= 0; y--) {
        const int32_t *c = cell + (size_t)y * w;
        size_t o = (size_t)y * w;
        for (int x = 0; x < w; x++) {
            int32_t v = c[x];
            if (v) {
                if (v != la[x]) {
                    lb[x] = la[x];
                    rb[x] = ra[x];
                    la[x] = v;
                }
                ra[x] = y;
            }
            int32_t ua = ra[x] - y, ub = rb[x] - y;
            ua = ua < COL_NONE ? ua : COL_NONE;
            ub = ub < COL_NONE ? ub : COL_NONE;
            int32_t dla = DLa[o + x], dga = DGa[o + x], dlb = DLb[o + x], dgb = DGb[o + x];
            int32_t fl = dga <= ua ? dla : la[x];
            int32_t fg = dga <= ua ? dga : ua;
            /* best of each side whose label differs from the first */
            int32_t sg_d = dla != fl ? dga : dgb;
            int32_t sg_u = la[x] != fl ? ua : ub;
            L1[x] = fg < COL_NONE ? fl : 0;
            G1[x] = fg;
            G2[x] = sg_d <= sg_u ? sg_d : sg_u;
            int32_t sl = sg_d <= sg_u ? (dla != fl ? dla : dlb) : (la[x] != fl ? la[x] : lb[x]);
            L2[x] = G2[x] < COL_NONE ? sl : 0;
        }
        row_stage(cfg, p, out, y, G1, L1, G2, L2, f, arg, F1, env);
    }
}

UnetStatus unet_weightmap_compute(const UnetWeightMapConfig *cfg, const int32_t *classes,
                                  const int32_t *instances, int width, int height,
                                  UnetWeightMapOutputs *out, UnetWeightMapInfo *info,
                                  UnetScratch *scratch, UnetError *err)
{
    UnetStatus st = check_args(cfg, classes, instances, width, height, err);
    if (st != UNET_OK)
        return st;
    size_t n = (size_t)width * height;
    /* cls, cell, four down-scan planes (the labelling's work space first), row buffers */
    /* row buffers: 4w scan state, G1, L1, G2, L2, f, arg (6w), F1 (w int64), env (3w int64) */
    size_t ints = 6 * n + 20 * (size_t)width + 8;
    UnetScratch local = { 0 };
    UnetScratch *s = scratch ? scratch : &local;
    int32_t *mem = unet_scratch_reserve(s, ints * sizeof(int32_t));
    if (!mem)
        return unet_error_set(err, UNET_ERR_NOMEM, "weight map: out of memory for %dx%d (%.0f MB of "
                              "work space); crop or downscale the mask", width, height,
                              (double)ints * 4 / 1e6);
    Prep p;
    st = prep_init(&p, cfg, classes, instances, width, height, mem, mem + n, mem + 2 * n, err);
    if (st == UNET_OK) {
        UnetWeightMapOutputs none = { 0 };
        if (!out)
            out = &none;
        /* F1 and env are int64: keep them 8-byte aligned */
        int32_t *rows = mem + 6 * n;
        if (((uintptr_t)(rows + 10 * (size_t)width)) % 8)
            rows++;
        distances_fast(cfg, &p, out, mem + 2 * n, rows);
        emit_maps(&p, out);
        fill_info(info, &p);
    }
    if (!scratch)
        unet_scratch_free(&local);
    return st;
}

UnetStatus unet_weightmap_reference(const UnetWeightMapConfig *cfg, const int32_t *classes,
                                    const int32_t *instances, int width, int height,
                                    UnetWeightMapOutputs *out, UnetWeightMapInfo *info,
                                    UnetError *err)
{
    UnetStatus st = check_args(cfg, classes, instances, width, height, err);
    if (st != UNET_OK)
        return st;
    size_t n = (size_t)width * height;
    int32_t *cls = malloc(n * sizeof *cls);
    int32_t *cell = malloc(n * sizeof *cell);
    float *b1 = malloc(n * sizeof *b1);
    float *b2 = malloc(n * sizeof *b2);
    float *dj = malloc((n + 1) * sizeof *dj);
    uint8_t *sites = malloc(n);
    Prep p;
    if (!cls || !cell || !b1 || !b2 || !dj || !sites) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "weight map: out of memory for %dx%d; crop or "
                            "downscale the mask", width, height);
        goto done;
    }
    st = prep_init(&p, cfg, classes, instances, width, height, cls, cell, (int32_t *)dj, err);
    if (st != UNET_OK)
        goto done;
    UnetWeightMapOutputs none = { 0 };
    if (!out)
        out = &none;
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
done:
    free(cls); free(cell); free(b1); free(b2); free(dj); free(sites);
    return st;
}
