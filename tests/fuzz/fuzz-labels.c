/* fuzz-labels.c - masks: unet_labels_load_memory, then every mask mode of
 * unet_mask_interpret and, for small masks, the weight map. */
#include <string.h>

#include "dataset.h"
#include "fuzz-common.h"
#include "image.h"
#include "weightmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    UnetLabels raw;
    UnetError err = { 0 };
    UnetStatus st = unet_labels_load_memory(data, size, "fuzz-mask.png", 0, &raw, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st != UNET_OK)
        return 0;
    FUZZ_CHECK(raw.width > 0 && raw.height > 0 && raw.data);
    size_t n = (size_t)raw.width * raw.height;
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(raw.data[i] >= 0);
    if (n <= 256 * 256) {
        static const UnetMaskMode modes[] = { UNET_MASK_AUTO, UNET_MASK_BINARY, UNET_MASK_MULTICLASS,
                                              UNET_MASK_INSTANCE };
        for (int m = 0; m < 4; m++) {
            int classes = modes[m] == UNET_MASK_MULTICLASS || m == 0 ? 3 : 0;
            UnetLabels labels, inst;
            memset(&labels, 0, sizeof labels);
            memset(&inst, 0, sizeof inst);
            UnetMaskMode applied;
            UnetError e2 = { 0 };
            UnetStatus s2 = unet_mask_interpret(&raw, modes[m], classes, 1, "fuzz-mask.png", &labels, &inst,
                                                &applied, &e2);
            FUZZ_CHECK_ERROR(s2, e2);
            if (s2 != UNET_OK)
                continue;
            FUZZ_CHECK(labels.width == raw.width && labels.height == raw.height);
            int32_t top = 0;
            for (size_t i = 0; i < n; i++) {
                FUZZ_CHECK(labels.data[i] >= 0);
                if (labels.data[i] > top)
                    top = labels.data[i];
            }
            if (top < 256 && n <= 64 * 64) {
                UnetWeightMapConfig wc;
                unet_weightmap_config_default(&wc);
                float *w = malloc(n * sizeof *w);
                FUZZ_CHECK(w);
                UnetWeightMapOutputs out;
                memset(&out, 0, sizeof out);
                out.weight = w;
                UnetError e3 = { 0 };
                UnetStatus s3 = unet_weightmap_compute(&wc, labels.data, inst.data, raw.width, raw.height, &out,
                                                       NULL, NULL, &e3);
                FUZZ_CHECK_ERROR(s3, e3);
                if (s3 == UNET_OK)
                    for (size_t i = 0; i < n; i++)
                        FUZZ_CHECK(w[i] >= 0.0f && w[i] < 1e30f);
                free(w);
            }
            unet_labels_free(&labels);
            unet_labels_free(&inst);
        }
    }
    unet_labels_free(&raw);
    return 0;
}
