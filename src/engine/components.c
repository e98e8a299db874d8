/* components.c - two-pass union-find connected-component labelling. */
#include "components.h"

#include <stdlib.h>

/* Roots are always the smaller provisional label, and provisional labels
 * are handed out in raster order, so a component's root is the label of its
 * first pixel; compacting roots in order gives the flood-fill numbering. */
static int32_t find_root(int32_t *parent, int32_t a)
{
    int32_t r = a;
    while (parent[r] != r)
        r = parent[r];
    while (parent[a] != r) {
        int32_t next = parent[a];
        parent[a] = r;
        a = next;
    }
    return r;
}

static int32_t unite(int32_t *parent, int32_t a, int32_t b)
{
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a < b) {
        parent[b] = a;
        return a;
    }
    parent[a] = b;
    return b;
}

static UnetStatus label_impl(int32_t *labels, const int32_t *v, int w, int h, int connectivity,
                             int *count, int32_t *work, UnetError *err)
{
    if (w < 1 || h < 1)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "connected components: image size %dx%d is empty", w, h);
    if (connectivity != 4 && connectivity != 8)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "connected components: connectivity is %d; use 4 or 8",
                              connectivity);
    size_t n = (size_t)w * h;
    if (n >= (size_t)INT32_MAX)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "connected components: image %dx%d has too many pixels", w, h);
    /* provisional labels: at most one per pixel, plus the unused 0 */
    int32_t *parent = work ? work : malloc((n + 1) * sizeof *parent);
    if (!parent)
        return unet_error_set(err, UNET_ERR_NOMEM,
                              "connected components: out of memory for %dx%d", w, h);
    int32_t next = 1;
    parent[0] = 0;
    for (int y = 0; y < h; y++) {
        const int32_t *row = v + (size_t)y * w;
        const int32_t *up = y > 0 ? row - w : NULL;
        int32_t *lab = labels + (size_t)y * w;
        const int32_t *lup = y > 0 ? lab - w : NULL;
        for (int x = 0; x < w; x++) {
            int32_t c = row[x];
            if (!c) {
                lab[x] = 0;
                continue;
            }
            int west = x > 0 && row[x - 1] == c;
            int north = up && up[x] == c;
            int32_t l;
            if (connectivity == 4) {
                if (north && west)
                    l = lup[x] == lab[x - 1] ? lup[x] : unite(parent, lup[x], lab[x - 1]);
                else if (north)
                    l = lup[x];
                else if (west)
                    l = lab[x - 1];
                else
                    l = 0;
            } else {
                int nw = up && x > 0 && up[x - 1] == c;
                int ne = up && x + 1 < w && up[x + 1] == c;
                /* N touches W, NW and NE, which are already merged with it */
                if (north) {
                    l = lup[x];
                } else if (ne) {
                    l = lup[x + 1];
                    if (west)
                        l = unite(parent, l, lab[x - 1]);
                    else if (nw)
                        l = unite(parent, l, lup[x - 1]);
                } else if (nw) {
                    l = lup[x - 1];
                } else if (west) {
                    l = lab[x - 1];
                } else {
                    l = 0;
                }
            }
            if (!l) {
                l = next++;
                parent[l] = l;
            }
            lab[x] = l;
        }
    }
    /* compact: roots get 1..count in order of creation. parent[l] < l for
     * every non-root, and smaller labels already hold -(final label). */
    int32_t total = 0;
    for (int32_t l = 1; l < next; l++) {
        if (parent[l] == l)
            parent[l] = -(++total);
        else
            parent[l] = parent[parent[l]];
    }
    for (size_t i = 0; i < n; i++)
        labels[i] = labels[i] ? -parent[labels[i]] : 0;
    if (!work)
        free(parent);
    if (count)
        *count = total;
    return UNET_OK;
}

UnetStatus unet_components_label_values(int32_t *labels, const int32_t *values, int width,
                                        int height, int connectivity, int *count, UnetError *err)
{
    return label_impl(labels, values, width, height, connectivity, count, NULL, err);
}

UnetStatus unet_components_label_values_ws(int32_t *labels, const int32_t *values, int width,
                                           int height, int connectivity, int *count,
                                           int32_t *work, UnetError *err)
{
    return label_impl(labels, values, width, height, connectivity, count, work, err);
}

UnetStatus unet_components_label(int32_t *labels, const uint8_t *fg, int width, int height,
                                 int connectivity, int *count, UnetError *err)
{
    if (width < 1 || height < 1)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "connected components: image size %dx%d is empty", width, height);
    size_t n = (size_t)width * height;
    int32_t *v = malloc(n * sizeof *v);
    if (!v)
        return unet_error_set(err, UNET_ERR_NOMEM,
                              "connected components: out of memory for %dx%d", width, height);
    for (size_t i = 0; i < n; i++)
        v[i] = fg[i] != 0;
    UnetStatus st = label_impl(labels, v, width, height, connectivity, count, NULL, err);
    free(v);
    return st;
}
