/* edt.c - exact Euclidean distance transforms (Felzenszwalb-Huttenlocher, integer arithmetic). */
#include "edt.h"

#include <math.h>
#include <stdlib.h>

/* Column distances saturate here; anything this large means "no site". */
#define COL_NONE 0x3fffffff

void unet_edt_envelope_1d(int64_t *out, int32_t *arg, const int32_t *f, int n, int64_t *scratch)
{
    int64_t *v = scratch;          /* parabola apexes on the envelope */
    int64_t *zn = scratch + n;     /* left breakpoint of v[k] = zn[k] / zd[k], zd > 0 */
    int64_t *zd = scratch + 2 * n;
    int k = -1;
    for (int q = 0; q < n; q++) {
        if (f[q] < 0)
            continue;
        int64_t fq = (int64_t)f[q] + (int64_t)q * q;
        while (k > 0) {
            int64_t p = v[k];
            int64_t num = fq - ((int64_t)f[p] + p * p);
            int64_t den = 2 * (q - p);
            /* the new parabola hides v[k] if they cross left of v[k]'s breakpoint */
            if (num * zd[k] <= zn[k] * den)
                k--;
            else
                break;
        }
        k++;
        v[k] = q;
        if (k > 0) {
            int64_t p = v[k - 1];
            zn[k] = fq - ((int64_t)f[p] + p * p);
            zd[k] = 2 * (q - p);
        }
    }
    if (k < 0) {
        for (int x = 0; x < n; x++) {
            out[x] = -1;
            if (arg)
                arg[x] = -1;
        }
        return;
    }
    int m = k + 1;
    k = 0;
    for (int x = 0; x < n; x++) {
        int64_t d = x - v[k];
        int64_t best = d * d + f[v[k]];
        while (k + 1 < m) {
            int64_t d1 = x - v[k + 1];
            int64_t next = d1 * d1 + f[v[k + 1]];
            if (next > best)
                break;
            best = next;
            k++;
        }
        out[x] = best;
        if (arg)
            arg[x] = (int32_t)v[k];
    }
}

static UnetStatus check_size(int width, int height, UnetError *err)
{
    if (width < 1 || height < 1 || width > UNET_EDT_MAX_SIDE || height > UNET_EDT_MAX_SIDE)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "distance transform: image size %dx%d is outside 1..%d per side",
                              width, height, UNET_EDT_MAX_SIDE);
    return UNET_OK;
}

/* g = distance in rows to the nearest site of the same column (COL_NONE if none).
 * Row-wise loops so the compiler can vectorise across columns. */
static void column_pass(int32_t *g, const uint8_t *sites, int w, int h)
{
    for (int x = 0; x < w; x++)
        g[x] = sites[x] ? 0 : COL_NONE;
    for (int y = 1; y < h; y++) {
        const int32_t *up = g + (size_t)(y - 1) * w;
        int32_t *row = g + (size_t)y * w;
        const uint8_t *s = sites + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            int32_t d = up[x] + 1;
            d = d < COL_NONE ? d : COL_NONE;
            row[x] = s[x] ? 0 : d;
        }
    }
    for (int y = h - 2; y >= 0; y--) {
        const int32_t *down = g + (size_t)(y + 1) * w;
        int32_t *row = g + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            int32_t d = down[x] + 1;
            row[x] = d < row[x] ? d : row[x];
        }
    }
}

UnetStatus unet_edt_feature(float *dist2, int32_t *nearest, const uint8_t *sites, int width,
                            int height, UnetError *err)
{
    UnetStatus st = check_size(width, height, err);
    if (st != UNET_OK)
        return st;
    size_t n = (size_t)width * height;
    int32_t *g = malloc(n * sizeof *g);
    int32_t *f = malloc((size_t)width * sizeof *f);
    int32_t *arg = malloc((size_t)width * sizeof *arg);
    int64_t *out = malloc((size_t)width * sizeof *out);
    int64_t *scratch = malloc((size_t)width * 3 * sizeof *scratch);
    if (!g || !f || !arg || !out || !scratch) {
        free(g); free(f); free(arg); free(out); free(scratch);
        return unet_error_set(err, UNET_ERR_NOMEM, "distance transform: out of memory for %dx%d",
                              width, height);
    }
    column_pass(g, sites, width, height);
    for (int y = 0; y < height; y++) {
        const int32_t *row = g + (size_t)y * width;
        for (int x = 0; x < width; x++)
            f[x] = row[x] >= COL_NONE ? -1 : row[x] * row[x];
        unet_edt_envelope_1d(out, nearest ? arg : NULL, f, width, scratch);
        for (int x = 0; x < width; x++) {
            size_t i = (size_t)y * width + x;
            if (dist2)
                dist2[i] = out[x] < 0 ? INFINITY : (float)out[x];
            if (nearest) {
                if (out[x] < 0) {
                    nearest[i] = -1;
                } else {
                    /* the column distance says how far; look up (first above) which row */
                    int q = arg[x];
                    int d = g[(size_t)y * width + q];
                    int yy = (y - d >= 0 && sites[(size_t)(y - d) * width + q]) ? y - d : y + d;
                    nearest[i] = (int32_t)((size_t)yy * width + q);
                }
            }
        }
    }
    free(g); free(f); free(arg); free(out); free(scratch);
    return UNET_OK;
}

UnetStatus unet_edt_squared(float *dist2, const uint8_t *sites, int width, int height,
                            UnetError *err)
{
    return unet_edt_feature(dist2, NULL, sites, width, height, err);
}

UnetStatus unet_edt(float *dist, const uint8_t *sites, int width, int height, UnetError *err)
{
    UnetStatus st = unet_edt_feature(dist, NULL, sites, width, height, err);
    if (st != UNET_OK)
        return st;
    size_t n = (size_t)width * height;
    for (size_t i = 0; i < n; i++)
        dist[i] = sqrtf(dist[i]);
    return UNET_OK;
}
