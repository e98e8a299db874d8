/* test-components.c - connected components against a flood-fill reference. */
#include <stdlib.h>
#include <string.h>

#include "components.h"
#include "test-common.h"

/* Breadth-first flood fill from each unlabelled pixel in raster order. */
static int flood_reference(int32_t *lab, const int32_t *v, int w, int h, int conn)
{
    size_t n = (size_t)w * h;
    int32_t *queue = malloc(n * sizeof *queue);
    memset(lab, 0, n * sizeof *lab);
    int count = 0;
    for (size_t start = 0; start < n; start++) {
        if (!v[start] || lab[start])
            continue;
        lab[start] = ++count;
        size_t head = 0, tail = 0;
        queue[tail++] = (int32_t)start;
        while (head < tail) {
            int p = queue[head++];
            int x = p % w, y = p / w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    if ((!dx && !dy) || (conn == 4 && dx && dy))
                        continue;
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= w || yy >= h)
                        continue;
                    size_t q = (size_t)yy * w + xx;
                    if (v[q] == v[p] && !lab[q]) {
                        lab[q] = count;
                        queue[tail++] = (int32_t)q;
                    }
                }
        }
    }
    free(queue);
    return count;
}

static void check_case(TestRng *rng, int w, int h, float density, int classes, int conn)
{
    size_t n = (size_t)w * h;
    int32_t *v = malloc(n * sizeof *v);
    uint8_t *fg = malloc(n);
    int32_t *got = malloc(n * sizeof *got);
    int32_t *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) {
        int on = test_rng_uniform(rng, 0.0f, 1.0f) < density;
        v[i] = on ? 1 + (int)test_rng_uniform(rng, 0.0f, (float)classes - 0.001f) : 0;
        fg[i] = on ? (uint8_t)(1 + i % 200) : 0; /* any non-zero value is foreground */
    }
    int count = -1;
    CHECK(unet_components_label_values(got, v, w, h, conn, &count, NULL) == UNET_OK);
    int ref = flood_reference(want, v, w, h, conn);
    CHECK_MSG(count == ref && !memcmp(got, want, n * sizeof *got),
              "values %dx%d density %g classes %d conn %d: count %d vs %d", w, h,
              (double)density, classes, conn, count, ref);
    for (size_t i = 0; i < n; i++)
        v[i] = fg[i] != 0;
    ref = flood_reference(want, v, w, h, conn);
    CHECK(unet_components_label(got, fg, w, h, conn, &count, NULL) == UNET_OK);
    CHECK_MSG(count == ref && !memcmp(got, want, n * sizeof *got),
              "binary %dx%d density %g conn %d: count %d vs %d", w, h, (double)density, conn,
              count, ref);
    free(v); free(fg); free(got); free(want);
}

int main(void)
{
    TestRng rng;
    test_rng_seed(&rng, 11);
    const int sizes[][2] = { { 1, 1 }, { 1, 40 }, { 40, 1 }, { 7, 5 }, { 64, 64 }, { 200, 31 } };
    const float densities[] = { 0.0f, 0.3f, 0.45f, 0.6f, 0.9f, 1.0f };
    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++)
        for (size_t b = 0; b < sizeof densities / sizeof densities[0]; b++)
            for (int classes = 1; classes <= 3; classes += 2) {
                check_case(&rng, sizes[a][0], sizes[a][1], densities[b], classes, 4);
                check_case(&rng, sizes[a][0], sizes[a][1], densities[b], classes, 8);
            }

    /* a diagonal chain is one component in 8- and many in 4-connectivity */
    uint8_t diag[25] = { 0 };
    for (int i = 0; i < 5; i++)
        diag[i * 5 + i] = 1;
    int32_t lab[25];
    int count = 0;
    CHECK(unet_components_label(lab, diag, 5, 5, 8, &count, NULL) == UNET_OK && count == 1);
    CHECK(unet_components_label(lab, diag, 5, 5, 4, &count, NULL) == UNET_OK && count == 5);
    /* a U shape whose arms meet late needs the union step */
    const char *u = "#...#"
                    "#...#"
                    "#.#.#"
                    "#####";
    uint8_t um[20];
    for (int i = 0; i < 20; i++)
        um[i] = u[i] == '#';
    CHECK(unet_components_label(lab, um, 5, 4, 4, &count, NULL) == UNET_OK && count == 1);
    CHECK(lab[4] == 1 && lab[12] == 1);

    UnetError err = { 0 };
    CHECK(unet_components_label(lab, diag, 5, 5, 6, &count, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "connectivity") != NULL);
    return test_finish("components");
}
