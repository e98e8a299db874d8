/* synthetic-cells.c - Voronoi cell masks with membranes, for tests, benchmarks and demos. */
#include "synthetic-cells.h"

#include <stdlib.h>

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

UnetStatus unet_synthetic_cells(int32_t *mask, int32_t *instances, int width, int height,
                                int cells, int membrane, uint64_t seed, UnetError *err)
{
    if (width < 1 || height < 1 || cells < 1 || cells > 1000000 || (membrane != 1 && membrane != 2))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "synthetic cells: size %dx%d, %d cells, membrane %d: need a "
                              "non-empty size, 1..1000000 cells and membrane 1 or 2",
                              width, height, cells, membrane);
    size_t n = (size_t)width * height;
    double *px = malloc((size_t)cells * 2 * sizeof *px);
    int32_t *region = malloc(n * sizeof *region);
    if (!px || !region) {
        free(px);
        free(region);
        return unet_error_set(err, UNET_ERR_NOMEM, "synthetic cells: out of memory");
    }
    double *py = px + cells;
    uint64_t s = seed;
    for (int c = 0; c < cells; c++) {
        px[c] = (double)(splitmix64(&s) >> 11) / 9007199254740992.0 * width;
        py[c] = (double)(splitmix64(&s) >> 11) / 9007199254740992.0 * height;
    }
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            double best = 0.0;
            int arg = 0;
            for (int c = 0; c < cells; c++) {
                double dx = x - px[c], dy = y - py[c], d = dx * dx + dy * dy;
                if (c == 0 || d < best) {
                    best = d;
                    arg = c;
                }
            }
            region[(size_t)y * width + x] = arg + 1;
        }
    /* forward half of the 8-neighbourhood (membrane 1) or all of it (2) */
    static const int fwd[8][2] = { { 1, 0 }, { -1, 1 }, { 0, 1 }, { 1, 1 },
                                   { -1, 0 }, { 1, -1 }, { 0, -1 }, { -1, -1 } };
    int dirs = membrane == 1 ? 4 : 8;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            size_t i = (size_t)y * width + x;
            int edge = 0;
            for (int k = 0; k < dirs && !edge; k++) {
                int xx = x + fwd[k][0], yy = y + fwd[k][1];
                if (xx >= 0 && yy >= 0 && xx < width && yy < height &&
                    region[(size_t)yy * width + xx] != region[i])
                    edge = 1;
            }
            mask[i] = !edge;
            if (instances)
                instances[i] = edge ? 0 : region[i];
        }
    free(px);
    free(region);
    return UNET_OK;
}
