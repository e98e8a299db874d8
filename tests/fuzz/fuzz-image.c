/* fuzz-image.c - PNG, TIFF and .npy decoding through unet_image_load_memory,
 * then the conversion to network input. */
#include <string.h>

#include "fuzz-common.h"
#include "image.h"

static void check_image(const UnetImage *img)
{
    FUZZ_CHECK(img->width > 0 && img->height > 0 && img->channels >= 1 && img->data);
    size_t n = (size_t)img->width * img->height * img->channels;
    volatile float sink = 0.0f;
    for (size_t i = 0; i < n; i++)  /* every sample must be inside the buffer */
        sink += img->data[i];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    UnetImage img;
    UnetError err = { 0 };
    UnetStatus st = unet_image_load_memory(data, size, "fuzz.img", 0, &img, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st == UNET_OK) {
        check_image(&img);
        if ((size_t)img.width * img.height * img.channels <= ((size_t)1 << 20)) {
            UnetInputSpec spec;
            unet_input_spec_default(&spec);
            for (int color = UNET_COLOR_KEEP; color <= UNET_COLOR_RGB; color++) {
                spec.color = (UnetColor)color;
                spec.intensity = (UnetIntensity)(color % 3);
                UnetImage in;
                UnetError e2 = { 0 };
                UnetStatus s2 = unet_image_to_input(&img, &spec, &in, &e2);
                FUZZ_CHECK_ERROR(s2, e2);
                if (s2 == UNET_OK) {
                    check_image(&in);
                    unet_image_free(&in);
                }
            }
        }
        int tiff = img.format == UNET_IMAGE_FORMAT_TIFF && img.pages > 1;
        unet_image_free(&img);
        if (tiff) { /* the second page of a stack */
            memset(&err, 0, sizeof err);
            st = unet_image_load_memory(data, size, "fuzz.tif", 1, &img, &err);
            FUZZ_CHECK_ERROR(st, err);
            if (st == UNET_OK) {
                check_image(&img);
                unet_image_free(&img);
            }
        }
    }
    return 0;
}
