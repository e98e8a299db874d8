/* fuzz-augment-config.c - unet_augment_config_from_json; an accepted config
 * must validate, round-trip through to_json, sample a record for a small
 * input and apply it to an image, a mask and a weight map. */
#include <string.h>

#include "augment.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = fuzz_strndup(data, size);
    UnetAugmentConfig cfg;
    UnetError err = { 0 };
    UnetStatus st = unet_augment_config_from_json(&cfg, json, &err);
    FUZZ_CHECK_ERROR(st, err);
    free(json);
    if (st != UNET_OK)
        return 0;
    UnetError e2 = { 0 };
    st = unet_augment_config_validate(&cfg, &e2);
    if (st != UNET_OK) {
        fprintf(stderr, "accepted but invalid: %s\n", e2.message);
        FUZZ_CHECK(!"from_json accepted a config that does not validate");
    }
    char *text = unet_augment_config_to_json(&cfg);
    FUZZ_CHECK(text);
    UnetAugmentConfig again;
    st = unet_augment_config_from_json(&again, text, &e2);
    if (st != UNET_OK) {
        fprintf(stderr, "round trip of %s: %s\n", text, e2.message);
        FUZZ_CHECK(!"augment config round trip");
    }
    char *text2 = unet_augment_config_to_json(&again);
    FUZZ_CHECK(text2 && !strcmp(text, text2));
    free(text);
    free(text2);

    enum { W = 23, H = 17, C = 2 };
    float image[C * W * H], weight[W * H];
    int32_t mask[W * H];
    for (int i = 0; i < W * H; i++) {
        image[i] = (float)(i % 7) / 7.0f;
        image[W * H + i] = (float)(i % 5) / 5.0f;
        weight[i] = 1.0f + (float)(i % 3);
        mask[i] = (i / W + i % W) % 3;
    }
    uint64_t seed = size ? data[0] : 0;
    for (int k = 0; k < 2; k++) {
        UnetAugmentRecord rec;
        memset(&e2, 0, sizeof e2);
        st = unet_augment_sample(&rec, &cfg, seed + (uint64_t)k, W, H, &e2);
        FUZZ_CHECK_ERROR(st, e2);
        if (st != UNET_OK)
            continue;
        FUZZ_CHECK(rec.out_w > 0 && rec.out_h > 0);
        size_t n = (size_t)rec.out_w * rec.out_h;
        if (n > 256 * 256) /* pad_if_needed can ask for 16384^2: costs time, adds nothing */
            continue;
        char *rj = unet_augment_record_to_json(&rec);
        FUZZ_CHECK(rj);
        free(rj);
        float *io = malloc(C * n * sizeof(float)), *wo = malloc(n * sizeof(float));
        int32_t *mo = malloc(n * sizeof(int32_t));
        float *sx = malloc(n * sizeof(float)), *sy = malloc(n * sizeof(float));
        FUZZ_CHECK(io && wo && mo && sx && sy);
        UnetScratch scratch = { 0 };
        memset(&e2, 0, sizeof e2);
        st = unet_augment_apply(&rec, image, C, mask, weight, io, mo, wo, &scratch, &e2);
        FUZZ_CHECK_ERROR(st, e2);
        if (st == UNET_OK)
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(mo[i] >= 0 && mo[i] <= 2);
        memset(&e2, 0, sizeof e2);
        st = unet_augment_source_coords(&rec, sx, sy, &e2);
        FUZZ_CHECK_ERROR(st, e2);
        unet_scratch_free(&scratch);
        free(io);
        free(wo);
        free(mo);
        free(sx);
        free(sy);
    }
    return 0;
}
