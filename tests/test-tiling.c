/* test-tiling.c - mirror extension against a brute-force reflection, exact
 * reassembly through an identity "network" for many image sizes and tile
 * geometries, the streaming walk, random training tiles and the grid picture. */
#include <stdlib.h>
#include <string.h>

#include "test-common.h"
#include "tiling.h"

/* Reflection by walking: bounce off the edges until inside. */
static int brute_reflect(int i, int n)
{
    if (n == 1)
        return 0;
    while (i < 0 || i >= n) {
        if (i < 0)
            i = -i - 1;
        if (i >= n)
            i = 2 * n - 1 - i;
    }
    return i;
}

static void test_mirror(TestRng *rng)
{
    /* The paper's picture: ... c b a | a b c ... */
    CHECK(unet_mirror_index(-1, 5) == 0 && unet_mirror_index(-2, 5) == 1 && unet_mirror_index(-3, 5) == 2);
    CHECK(unet_mirror_index(5, 5) == 4 && unet_mirror_index(6, 5) == 3);
    CHECK(unet_mirror_index(-6, 5) == 4 && unet_mirror_index(-11, 5) == 0 && unet_mirror_index(10, 5) == 0);
    int bad = 0;
    for (int n = 1; n <= 9; n++)
        for (int i = -100; i <= 100; i++)
            bad += unet_mirror_index(i, n) != brute_reflect(i, n);
    CHECK_MSG(bad == 0, "%d mirror indices differ from the brute-force reflection", bad);

    /* Whole-image extension, borders smaller and much larger than the image. */
    UnetError err = { 0 };
    int sizes[][2] = { { 1, 1 }, { 5, 7 }, { 13, 4 }, { 30, 30 } };
    int borders[] = { 0, 1, 3, 20, 92 };
    for (size_t s = 0; s < 4; s++)
        for (size_t b = 0; b < 5; b++) {
            UnetImage img, ext;
            int w = sizes[s][0], h = sizes[s][1], B = borders[b];
            CHECK(unet_image_alloc(&img, w, h, 2, &err) == UNET_OK);
            test_fill_uniform(rng, img.data, (size_t)w * h * 2, -1.0f, 1.0f);
            CHECK(unet_mirror_extend(&img, B, &ext, &err) == UNET_OK);
            CHECK(ext.width == w + 2 * B && ext.height == h + 2 * B && ext.channels == 2);
            int diff = 0;
            for (int c = 0; c < 2; c++)
                for (int y = 0; y < ext.height; y++)
                    for (int x = 0; x < ext.width; x++) {
                        float want = img.data[((size_t)c * h + brute_reflect(y - B, h)) * w + brute_reflect(x - B, w)];
                        diff += ext.data[((size_t)c * ext.height + y) * ext.width + x] != want;
                    }
            CHECK_MSG(diff == 0, "%dx%d border %d: %d pixels differ", w, h, B, diff);
            unet_image_free(&img);
            unet_image_free(&ext);
        }

    /* Integer crops (labels) follow the same rule. */
    int32_t lab[3 * 4];
    for (int i = 0; i < 12; i++)
        lab[i] = i;
    int32_t crop[9 * 8];
    unet_mirror_crop_i32(crop, lab, 3, 4, -3, -2, 9, 8);
    int diff = 0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 9; x++)
            diff += crop[y * 9 + x] != lab[brute_reflect(y - 2, 3) * 4 + brute_reflect(x - 3, 4)];
    CHECK(diff == 0);
}

/* The identity "network": the output tile is the centre crop of the input. */
typedef struct Identity {
    int border, in_size, out_size, channels, calls;
} Identity;

static UnetStatus identity_net(const float *tile_in, float *tile_out, const UnetTile *t, void *user, UnetError *err)
{
    Identity *id = user;
    id->calls++;
    for (int c = 0; c < id->channels; c++)
        for (int y = 0; y < id->out_size; y++)
            memcpy(tile_out + ((size_t)c * id->out_size + y) * id->out_size,
                   tile_in + ((size_t)c * id->in_size + y + id->border) * id->in_size + id->border,
                   sizeof(float) * (size_t)id->out_size);
    return UNET_OK;
}

static UnetStatus failing_net(const float *tile_in, float *tile_out, const UnetTile *t, void *user, UnetError *err)
{
    int *calls = user;
    if (++*calls == 3)
        return unet_error_set(err, UNET_ERR_CANCELLED, "stopped at tile %d", t->index);
    memset(tile_out, 0, sizeof(float));
    return UNET_OK;
}

static void test_stitch(TestRng *rng)
{
    int geoms[][2] = { { 572, 388 }, { 188, 4 }, { 188, 100 }, { 100, 100 }, { 9, 1 }, { 44, 20 } };
    UnetError err = { 0 };
    for (size_t g = 0; g < sizeof geoms / sizeof geoms[0]; g++) {
        int in = geoms[g][0], out = geoms[g][1];
        int sizes[][2] = { { 1, 1 }, { 5, 7 }, { out - 1 > 0 ? out - 1 : 1, out }, { out, out }, { out + 1, out + 1 },
                           { 1000, 37 }, { 37, 1000 }, { in + 3, 2 * out + 1 } };
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            int w = sizes[s][0], h = sizes[s][1], C = 2;
            if (out <= 4 && (size_t)w * h > 40000)
                continue; /* thousands of 188-pixel tiles: covered by the smaller sizes */
            UnetTileGrid grid;
            CHECK(unet_tile_grid_init(&grid, w, h, in, out, &err) == UNET_OK);
            CHECK(grid.border == (in - out) / 2);
            CHECK(grid.tiles_x == (w + out - 1) / out && grid.tiles_y == (h + out - 1) / out);
            float *img = malloc(sizeof(float) * (size_t)w * h * C);
            float *map = malloc(sizeof(float) * (size_t)w * h * C);
            test_fill_uniform(rng, img, (size_t)w * h * C, -5.0f, 5.0f);
            for (size_t i = 0; i < (size_t)w * h * C; i++)
                map[i] = 1e30f;
            Identity id = { grid.border, in, out, C, 0 };
            CHECK(unet_tiling_apply(&grid, img, C, C, map, identity_net, &id, &err) == UNET_OK);
            CHECK(id.calls == unet_tile_grid_count(&grid));
            CHECK_MSG(memcmp(img, map, sizeof(float) * (size_t)w * h * C) == 0,
                      "identity tiling of %dx%d with %d/%d does not reproduce the image", w, h, in, out);
            free(img);
            free(map);
        }
    }

    /* The iterator walks row by row and crops the last tiles. */
    UnetTileGrid grid;
    CHECK(unet_tile_grid_init(&grid, 1000, 37, 572, 388, &err) == UNET_OK);
    UnetTileIter it;
    UnetTile t;
    unet_tile_iter_init(&it, &grid);
    int count = 0, last_w = 0, last_h = 0;
    while (unet_tile_iter_next(&it, &t)) {
        CHECK(t.index == count && t.out_x == (count % 3) * 388 && t.in_x == t.out_x - 92 && t.in_y == -92);
        last_w = t.valid_w, last_h = t.valid_h;
        count++;
    }
    CHECK(count == 3 && last_w == 1000 - 776 && last_h == 37);

    /* A failing network stops the walk and its status comes back. */
    CHECK(unet_tile_grid_init(&grid, 50, 50, 12, 10, &err) == UNET_OK);
    float *img = calloc(2500, sizeof(float)), *map = calloc(2500, sizeof(float));
    int calls = 0;
    CHECK(unet_tiling_apply(&grid, img, 1, 1, map, failing_net, &calls, &err) == UNET_ERR_CANCELLED);
    CHECK(calls == 3 && strstr(err.message, "tile 2"));
    free(img);
    free(map);

    CHECK(unet_tile_grid_init(&grid, 10, 10, 100, 101, &err) == UNET_ERR_INVALID);
    CHECK(unet_tile_grid_init(&grid, 10, 10, 101, 100, &err) == UNET_ERR_INVALID && strstr(err.message, "even"));
    CHECK(unet_tile_grid_init(&grid, 0, 10, 100, 100, &err) == UNET_ERR_INVALID);
    CHECK(unet_tile_grid_init(&grid, 10, 10, 100, 0, &err) == UNET_ERR_INVALID);
}

static void test_random_tiles(TestRng *rng)
{
    UnetError err = { 0 };
    int sizes[][2] = { { 300, 200 }, { 50, 40 }, { 388, 388 } };
    for (int s = 0; s < 3; s++) {
        UnetImage img;
        UnetLabels lab;
        int w = sizes[s][0], h = sizes[s][1];
        CHECK(unet_image_alloc(&img, w, h, 3, &err) == UNET_OK);
        CHECK(unet_labels_alloc(&lab, w, h, &err) == UNET_OK);
        test_fill_uniform(rng, img.data, (size_t)w * h * 3, 0.0f, 1.0f);
        for (int i = 0; i < w * h; i++)
            lab.data[i] = i;
        int in = 188, out = 100, B = 44;
        float *tile = malloc(sizeof(float) * 3 * in * in), *ref = malloc(sizeof(float) * 3 * in * in);
        int32_t *tl = malloc(sizeof(int32_t) * out * out), *tl2 = malloc(sizeof(int32_t) * out * out);
        uint64_t r1 = 42, r2 = 42;
        int seen_x_lo = 1 << 30, seen_x_hi = -1;
        for (int k = 0; k < 200; k++) {
            int ox, oy, ox2, oy2;
            CHECK(unet_tile_sample(&img, &lab, in, out, &r1, tile, tl, &ox, &oy, &err) == UNET_OK);
            CHECK(unet_tile_sample(&img, &lab, in, out, &r2, ref, tl2, &ox2, &oy2, &err) == UNET_OK);
            CHECK(ox == ox2 && oy == oy2 && !memcmp(tile, ref, sizeof(float) * 3 * in * in)); /* seeded */
            int maxx = w > out ? w - out : 0, maxy = h > out ? h - out : 0;
            CHECK(ox >= 0 && ox <= maxx && oy >= 0 && oy <= maxy);
            seen_x_lo = ox < seen_x_lo ? ox : seen_x_lo;
            seen_x_hi = ox > seen_x_hi ? ox : seen_x_hi;
            /* The input tile is the output tile grown by the mirrored border. */
            unet_mirror_crop(ref, img.data, 3, h, w, ox - B, oy - B, in, in);
            CHECK(!memcmp(tile, ref, sizeof(float) * 3 * in * in));
            CHECK(tl[0] == lab.data[unet_mirror_index(oy, h) * w + unet_mirror_index(ox, w)]);
            CHECK(tl[out * out - 1] == lab.data[unet_mirror_index(oy + out - 1, h) * w + unet_mirror_index(ox + out - 1, w)]);
        }
        if (w > out + 50)
            CHECK(seen_x_lo < 20 && seen_x_hi > w - out - 20); /* the whole range gets used */
        uint64_t r3 = 43;
        int ox3, oy3, ox1, oy1;
        r1 = 42;
        unet_tile_random_position(w, h, out, &r1, &ox1, &oy1);
        unet_tile_random_position(w, h, out, &r3, &ox3, &oy3);
        if (w > out && h > out)
            CHECK(ox1 != ox3 || oy1 != oy3);
        free(tile), free(ref), free(tl), free(tl2);
        unet_image_free(&img);
        unet_labels_free(&lab);
    }
}

static void test_draw(void)
{
    UnetError err = { 0 };
    UnetImage img, pic;
    CHECK(unet_image_alloc(&img, 200, 150, 1, &err) == UNET_OK);
    for (int i = 0; i < 200 * 150; i++)
        img.data[i] = (float)(i % 200);
    UnetTileGrid g;
    CHECK(unet_tile_grid_init(&g, 200, 150, 188, 100, &err) == UNET_OK);
    CHECK(unet_tiling_draw(&g, &img, 0, 0, &pic, &err) == UNET_OK);
    int W = 2 * 100 + 88, H = 2 * 100 + 88;
    CHECK(pic.width == W && pic.height == H && pic.channels == 3);
    size_t plane = (size_t)W * H;
#define PX(c, x, y) pic.data[(size_t)(c) * plane + (size_t)(y) * W + (x)]
    /* Inside tile 0's output area: red tint (R well above G). */
    CHECK(PX(0, 44 + 50, 44 + 50) > PX(1, 44 + 50, 44 + 50) + 40);
    /* Tile 1's output area inside the image: plain grey (R = G = B). */
    CHECK(PX(0, 44 + 150, 44 + 30) == PX(1, 44 + 150, 44 + 30) && PX(1, 44 + 150, 44 + 30) == PX(2, 44 + 150, 44 + 30));
    /* Blue outline of tile 0's input area along the picture's left edge. */
    CHECK(PX(2, 0, 120) > 200 && PX(0, 0, 120) < 100);
    /* Green grid line between tiles 0 and 1 (x = 100 in the image) below the highlight. */
    CHECK(PX(1, 44 + 100, 44 + 130) > 150 && PX(0, 44 + 100, 44 + 130) < 100);
    /* Cropped area of the last row (image ends at y = 150): darker than the image above it. */
    CHECK(PX(1, 44 + 150, 44 + 180) < PX(1, 44 + 150, 44 + 120) * 0.5f + 1.0f);
#undef PX
    unet_image_free(&pic);
    CHECK(unet_tiling_draw(&g, &img, -1, 100, &pic, &err) == UNET_OK);
    CHECK(pic.width == 100 && pic.height == 100);
    unet_image_free(&pic);
    CHECK(unet_tiling_draw(&g, NULL, 3, 0, &pic, &err) == UNET_OK);
    unet_image_free(&pic);
    UnetTileGrid other;
    CHECK(unet_tile_grid_init(&other, 20, 20, 188, 100, &err) == UNET_OK);
    CHECK(unet_tiling_draw(&other, &img, 0, 0, &pic, &err) == UNET_ERR_INVALID);
    unet_image_free(&img);
}

int main(void)
{
    TestRng rng;
    test_rng_seed(&rng, 7);
    test_mirror(&rng);
    test_stitch(&rng);
    test_random_tiles(&rng);
    test_draw();
    return test_finish("tiling");
}
