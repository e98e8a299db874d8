/* fuzz-npy.c - files on disk: unet_npy_load, and unet_image_load /
 * unet_image_page_count on the same bytes (the path-based loaders). */
#include <string.h>

#include "fuzz-common.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = fuzz_write_file("input.npy", data, size);
    float *values = NULL;
    int ndim = 0, shape[UNET_NPY_MAX_DIMS];
    UnetError err = { 0 };
    UnetStatus st = unet_npy_load(path, &values, &ndim, shape, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st == UNET_OK) {
        FUZZ_CHECK(ndim >= 1 && ndim <= UNET_NPY_MAX_DIMS && values);
        size_t count = 1;
        for (int i = 0; i < ndim; i++) {
            FUZZ_CHECK(shape[i] > 0);
            count *= (size_t)shape[i];
        }
        volatile float sink = 0.0f;
        for (size_t i = 0; i < count; i++)
            sink += values[i];
        (void)sink;
        free(values);
    }
    UnetImage img;
    memset(&err, 0, sizeof err);
    st = unet_image_load(path, &img, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st == UNET_OK) {
        FUZZ_CHECK(img.width > 0 && img.height > 0 && img.channels > 0 && img.data);
        volatile float sink = img.data[(size_t)img.width * img.height * img.channels - 1];
        (void)sink;
        unet_image_free(&img);
    }
    int pages = 0;
    memset(&err, 0, sizeof err);
    st = unet_image_page_count(path, &pages, &err);
    FUZZ_CHECK_ERROR(st, err);
    FUZZ_CHECK(st != UNET_OK || pages >= 1);
    free(path);
    return 0;
}
