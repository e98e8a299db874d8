/* fuzz-safetensors.c - the safetensors reader over memory: header JSON,
 * offsets, dtypes, shapes, metadata, and reading every tensor. */
#include <string.h>

#include "fuzz-common.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    UnetSafetensors *st = NULL;
    UnetError err = { 0 };
    UnetStatus s = unet_safetensors_open_memory(&st, data, size, "fuzz.safetensors", &err);
    FUZZ_CHECK_ERROR(s, err);
    if (s != UNET_OK) {
        FUZZ_CHECK(st == NULL);
        return 0;
    }
    size_t data_start = size >= 8 ? 8 : size;
    size_t n = unet_safetensors_count(st);
    uint64_t prev_end = 0;
    for (size_t i = 0; i < n; i++) {
        const UnetStTensor *t = unet_safetensors_at(st, i);
        FUZZ_CHECK(t && t->name && t->ndim >= 0 && t->ndim <= UNET_ST_MAX_DIMS);
        FUZZ_CHECK(t->begin <= t->end && t->end <= size - data_start);
        FUZZ_CHECK(t->end - t->begin == t->numel * unet_dtype_size(t->dtype));
        FUZZ_CHECK(t->begin >= prev_end); /* file order, no overlap */
        prev_end = t->end;
        FUZZ_CHECK(unet_safetensors_find(st, t->name) == t);
        char shape[256];
        unet_shape_format(shape, sizeof shape, t->ndim, t->shape);
        if (t->numel > ((uint64_t)1 << 20))
            continue;
        size_t count = (size_t)t->numel;
        void *buf = malloc(count ? count * 8 : 8);
        FUZZ_CHECK(buf);
        UnetError e2 = { 0 };
        UnetStatus s2 = unet_safetensors_read_f32(st, t, buf, count, &e2);
        FUZZ_CHECK_ERROR(s2, e2);
        memset(&e2, 0, sizeof e2);
        s2 = unet_safetensors_read_i64(st, t, buf, count, &e2);
        FUZZ_CHECK_ERROR(s2, e2);
        memset(&e2, 0, sizeof e2);
        s2 = unet_safetensors_read_f32(st, t, buf, count + 1, &e2); /* a wrong count is refused */
        FUZZ_CHECK(s2 != UNET_OK && e2.message[0]);
        free(buf);
    }
    size_t m = unet_safetensors_metadata_count(st);
    for (size_t i = 0; i < m; i++) {
        const char *k = unet_safetensors_metadata_key(st, i);
        FUZZ_CHECK(k);
        const char *v = unet_safetensors_metadata(st, k);
        FUZZ_CHECK(v);
    }
    unet_safetensors_close(st);
    return 0;
}
