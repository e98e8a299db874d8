/* test-edt.c - exact EDT and feature transform against brute force on random binary images. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edt.h"
#include "test-common.h"

static void check_image(TestRng *rng, int w, int h, float density)
{
    size_t n = (size_t)w * h;
    uint8_t *s = malloc(n);
    float *d2 = malloc(n * sizeof *d2);
    float *d = malloc(n * sizeof *d);
    int32_t *near = malloc(n * sizeof *near);
    int sites = 0;
    for (size_t i = 0; i < n; i++) {
        s[i] = test_rng_uniform(rng, 0.0f, 1.0f) < density;
        sites += s[i];
    }
    CHECK(unet_edt_squared(d2, s, w, h, NULL) == UNET_OK);
    CHECK(unet_edt(d, s, w, h, NULL) == UNET_OK);
    float *d2f = malloc(n * sizeof *d2f);
    CHECK(unet_edt_feature(d2f, near, s, w, h, NULL) == UNET_OK);
    int bad = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            long best = -1;
            for (int yy = 0; yy < h; yy++)
                for (int xx = 0; xx < w; xx++)
                    if (s[(size_t)yy * w + xx]) {
                        long v = (long)(x - xx) * (x - xx) + (long)(y - yy) * (y - yy);
                        if (best < 0 || v < best)
                            best = v;
                    }
            size_t i = (size_t)y * w + x;
            float want = best < 0 ? INFINITY : (float)best;
            if (d2[i] != want || d2f[i] != want || d[i] != sqrtf(want))
                bad++;
            if (best < 0) {
                if (near[i] != -1)
                    bad++;
            } else {
                int nx = near[i] % w, ny = near[i] / w;
                long v = (long)(x - nx) * (x - nx) + (long)(y - ny) * (y - ny);
                if (near[i] < 0 || !s[near[i]] || v != best)
                    bad++;
            }
        }
    CHECK_MSG(bad == 0, "%dx%d density %g (%d sites): %d wrong pixels", w, h, (double)density,
              sites, bad);
    free(s); free(d2); free(d); free(near); free(d2f);
}

int main(void)
{
    TestRng rng;
    test_rng_seed(&rng, 7);
    const int sizes[][2] = { { 1, 1 }, { 1, 9 }, { 11, 1 }, { 13, 17 }, { 64, 48 }, { 100, 5 },
                             { 37, 71 } };
    const float densities[] = { 0.0f, 0.002f, 0.02f, 0.2f, 0.7f, 1.0f };
    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++)
        for (size_t b = 0; b < sizeof densities / sizeof densities[0]; b++)
            for (int rep = 0; rep < 2; rep++)
                check_image(&rng, sizes[a][0], sizes[a][1], densities[b]);

    /* one site: distances to a point, including the far corner */
    {
        int w = 300, h = 200;
        uint8_t *s = calloc((size_t)w * h, 1);
        float *d2 = malloc((size_t)w * h * sizeof *d2);
        s[(size_t)150 * w + 7] = 1;
        CHECK(unet_edt_squared(d2, s, w, h, NULL) == UNET_OK);
        CHECK(d2[0] == 150.0f * 150.0f + 49.0f);
        CHECK(d2[(size_t)(h - 1) * w + w - 1] == 49.0f * 49.0f + 292.0f * 292.0f);
        free(s);
        free(d2);
    }

    UnetError err = { 0 };
    float out[4];
    uint8_t in[4] = { 0 };
    CHECK(unet_edt(out, in, 0, 4, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "0x4") != NULL);
    return test_finish("edt");
}
