/* synthetic-cells.c - Voronoi cell masks with membranes, for tests, benchmarks and demos. */
#include "synthetic-cells.h"

#include <math.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

UnetStatus unet_synthetic_cells(int32_t *mask, int width, int height, int cells, float membrane,
                                uint64_t seed, UnetError *err)
{
    if (width < 1 || height < 1 || cells < 1 || cells > 1000000 || !(membrane >= 0.0f))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "synthetic cells: size %dx%d, %d cells, membrane %g: need a "
                              "non-empty size, 1..1000000 cells and membrane >= 0",
                              width, height, cells, (double)membrane);
    double *px = malloc((size_t)cells * 2 * sizeof *px);
    if (!px)
        return unet_error_set(err, UNET_ERR_NOMEM, "synthetic cells: out of memory");
    double *py = px + cells;
    uint64_t s = seed;
    for (int c = 0; c < cells; c++) {
        px[c] = (double)(splitmix64(&s) >> 11) / 9007199254740992.0 * width;
        py[c] = (double)(splitmix64(&s) >> 11) / 9007199254740992.0 * height;
    }
    double half = membrane * 0.5;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            double b1 = INFINITY, b2 = INFINITY;
            int c1 = -1, c2 = -1;
            for (int c = 0; c < cells; c++) {
                double dx = x - px[c], dy = y - py[c], d = dx * dx + dy * dy;
                if (d < b1) {
                    b2 = b1; c2 = c1;
                    b1 = d; c1 = c;
                } else if (d < b2) {
                    b2 = d; c2 = c;
                }
            }
            int inside = 1;
            if (c2 >= 0) {
                /* distance to the bisector of the two nearest seeds */
                double sx = px[c1] - px[c2], sy = py[c1] - py[c2];
                double gap = (b2 - b1) / (2.0 * sqrt(sx * sx + sy * sy));
                inside = gap >= half;
            }
            mask[(size_t)y * width + x] = inside;
        }
    free(px);
    return UNET_OK;
}
