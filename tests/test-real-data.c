/* test-real-data.c - the shared real datasets load completely with the right
 * sizes, bit depths and value ranges (skips when ../shared/data is absent). */
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "fileutil.h"
#include "image.h"
#include "test-common.h"

static void usiigaci(const char *root)
{
    char *dir = unet_path_join(root, "usiigaci-phc");
    UnetError err = { 0 };
    UnetDataset *ds;
    CHECK_MSG(unet_dataset_open(dir, NULL, &ds, &err) == UNET_OK, "%s", err.message);
    if (!ds) {
        free(dir);
        return;
    }
    CHECK(unet_dataset_count(ds) == 18);
    int ids_max = 0, ids_min = 1 << 30;
    for (int i = 0; i < unet_dataset_count(ds); i++) {
        UnetImage raw;
        UnetLabels mask;
        CHECK_MSG(unet_dataset_load_raw(ds, i, &raw, &mask, &err) == UNET_OK, "%s", err.message);
        if (!raw.data)
            continue;
        CHECK(raw.width == 1024 && raw.height == 1022 && raw.channels == 1);
        CHECK(raw.format == UNET_IMAGE_FORMAT_TIFF && raw.bit_depth == 16 && raw.max_value == 65535.0f);
        float lo = 1e9f, hi = -1e9f;
        for (size_t k = 0; k < (size_t)1024 * 1022; k++) {
            lo = raw.data[k] < lo ? raw.data[k] : lo;
            hi = raw.data[k] > hi ? raw.data[k] : hi;
        }
        CHECK_MSG(lo >= 3000.0f && lo < 20000.0f && hi > 30000.0f && hi <= 65535.0f, "%s: %g..%g",
                  unet_dataset_name(ds, i), (double)lo, (double)hi);
        int bad = 0;
        for (size_t k = 0; k < (size_t)1024 * 1022; k++)
            bad += mask.data[k] != 0 && mask.data[k] != 255;
        CHECK(bad == 0);
        unet_image_free(&raw);
        unet_labels_free(&mask);

        /* The instance ids beside the binary masks: 8-bit, dozens of cells. */
        char rel[256];
        snprintf(rel, sizeof rel, "masks_instance/%s.png", unet_dataset_name(ds, i));
        char *ip = unet_path_join(dir, rel);
        UnetLabels ids, bin, sep;
        CHECK_MSG(unet_labels_load(ip, 0, &ids, &err) == UNET_OK, "%s", err.message);
        if (ids.data) {
            int top = 0;
            for (size_t k = 0; k < (size_t)ids.width * ids.height; k++)
                top = ids.data[k] > top ? ids.data[k] : top;
            ids_max = top > ids_max ? top : ids_max;
            ids_min = top < ids_min ? top : ids_min;
            UnetMaskMode m;
            CHECK(unet_mask_interpret(&ids, UNET_MASK_AUTO, 0, 1, ip, &bin, &sep, &m, &err) == UNET_OK);
            CHECK(m == UNET_MASK_INSTANCE);
            /* Cells touch here: the cut border removes some foreground, never adds. */
            long fg_ids = 0, fg_bin = 0;
            for (size_t k = 0; k < (size_t)ids.width * ids.height; k++) {
                fg_ids += ids.data[k] > 0;
                fg_bin += bin.data[k];
            }
            CHECK(fg_bin <= fg_ids && fg_bin > fg_ids * 9 / 10);
            unet_labels_free(&bin);
            unet_labels_free(&sep);
            unet_labels_free(&ids);
        }
        free(ip);
    }
    CHECK_MSG(ids_min >= 40 && ids_max <= 120 && ids_max >= 100, "instance counts %d..%d", ids_min, ids_max);

    UnetPair p;
    CHECK(unet_dataset_load(ds, 0, &p, &err) == UNET_OK);
    CHECK(p.image.channels == 1 && p.mode == UNET_MASK_BINARY);
    float lo = 1e9f, hi = -1e9f;
    for (size_t k = 0; k < (size_t)1024 * 1022; k++) {
        lo = p.image.data[k] < lo ? p.image.data[k] : lo;
        hi = p.image.data[k] > hi ? p.image.data[k] : hi;
    }
    CHECK(lo == 0.0f && hi == 1.0f);
    unet_pair_free(&p);
    unet_dataset_free(ds);
    free(dir);
}

static void dsb(const char *root)
{
    char *dir = unet_path_join(root, "dsb2018-nuclei");
    UnetError err = { 0 };
    UnetDataset *ds;
    CHECK_MSG(unet_dataset_open(dir, NULL, &ds, &err) == UNET_OK, "%s", err.message);
    if (!ds) {
        free(dir);
        return;
    }
    CHECK(unet_dataset_count(ds) == 58);
    static const int sizes[][2] = { { 256, 256 }, { 320, 256 }, { 696, 520 }, { 360, 360 },
                                    { 640, 512 }, { 347, 260 }, { 1024, 1024 } };
    int per_size[7] = { 0 }, colour = 0, over255 = 0, max_ids = 0;
    for (int i = 0; i < unet_dataset_count(ds); i++) {
        UnetImage raw;
        UnetLabels mask;
        CHECK_MSG(unet_dataset_load_raw(ds, i, &raw, &mask, &err) == UNET_OK, "%s", err.message);
        if (!raw.data)
            continue;
        CHECK(raw.channels == 4 && raw.has_alpha && raw.bit_depth == 8 && raw.format == UNET_IMAGE_FORMAT_PNG);
        int s = -1;
        for (int k = 0; k < 7; k++)
            if (raw.width == sizes[k][0] && raw.height == sizes[k][1])
                s = k;
        CHECK_MSG(s >= 0, "unexpected size %d x %d", raw.width, raw.height);
        if (s >= 0)
            per_size[s]++;
        size_t plane = (size_t)raw.width * raw.height;
        int alpha_ok = 1, grey = 1;
        for (size_t k = 0; k < plane; k++) {
            alpha_ok &= raw.data[3 * plane + k] == 255.0f;
            grey &= raw.data[k] == raw.data[plane + k] && raw.data[k] == raw.data[2 * plane + k];
        }
        CHECK(alpha_ok);
        colour += !grey;
        unet_image_free(&raw);
        unet_labels_free(&mask);

        char rel[256];
        snprintf(rel, sizeof rel, "masks_instance/%s.png", unet_dataset_name(ds, i));
        char *ip = unet_path_join(dir, rel);
        UnetImage idimg;
        CHECK(unet_image_load(ip, &idimg, &err) == UNET_OK && idimg.bit_depth == 16 && idimg.channels == 1);
        unet_image_free(&idimg);
        UnetLabels ids;
        CHECK(unet_labels_load(ip, 0, &ids, &err) == UNET_OK);
        int top = 0;
        for (size_t k = 0; k < (size_t)ids.width * ids.height; k++)
            top = ids.data[k] > top ? ids.data[k] : top;
        over255 += top > 255;
        max_ids = top > max_ids ? top : max_ids;
        unet_labels_free(&ids);
        free(ip);
    }
    static const int want[7] = { 20, 12, 10, 8, 4, 2, 2 };
    for (int k = 0; k < 7; k++)
        CHECK_MSG(per_size[k] == want[k], "%d images of %dx%d, expected %d", per_size[k], sizes[k][0], sizes[k][1],
                  want[k]);
    CHECK_MSG(colour >= 10 && colour <= 14, "%d colour images", colour);
    CHECK_MSG(over255 >= 1 && max_ids == 313, "max instance id %d", max_ids);

    /* Network input: alpha dropped, colour kept or made grey, range 0..1. */
    UnetPair p;
    CHECK(unet_dataset_load(ds, 0, &p, &err) == UNET_OK);
    CHECK(p.image.channels == 3 && p.mode == UNET_MASK_BINARY);
    unet_pair_free(&p);
    UnetDatasetOptions opt;
    unet_dataset_options_default(&opt);
    opt.input.color = UNET_COLOR_GREY;
    UnetDataset *grey;
    CHECK(unet_dataset_open(dir, &opt, &grey, &err) == UNET_OK);
    CHECK(unet_dataset_load(grey, 5, &p, &err) == UNET_OK && p.image.channels == 1);
    unet_pair_free(&p);
    unet_dataset_free(grey);

    UnetDatasetReport r;
    CHECK(unet_dataset_check(dir, NULL, &r, &err) == UNET_OK && r.count == 0 && r.pairs == 58 && r.binary == 58);
    unet_dataset_report_free(&r);
    unet_dataset_free(ds);
    free(dir);
}

int main(void)
{
    const char *root = test_shared_data_dir();
    if (!root)
        test_skip("UNET_SHARED_DATA is not set or not a folder");
    usiigaci(root);
    dsb(root);
    return test_finish("real-data");
}
