/* fuzz-model-config.c - unet_model_config_from_json; an accepted config must
 * validate, survive a to_json/from_json round trip unchanged, and describe a
 * model (tables and geometry, no weights). */
#include <string.h>

#include "fuzz-common.h"
#include "model-config.h"
#include "model.h"

static int same(const UnetModelConfig *a, const UnetModelConfig *b)
{
    return a->arch == b->arch && a->in_channels == b->in_channels && a->classes == b->classes &&
           a->depth == b->depth && a->base == b->base && a->padding == b->padding && a->norm == b->norm &&
           a->upsample == b->upsample && a->activation == b->activation && a->leaky_slope == b->leaky_slope &&
           a->seed == b->seed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = fuzz_strndup(data, size);
    UnetModelConfig cfg;
    UnetError err = { 0 };
    UnetStatus st = unet_model_config_from_json(&cfg, json, &err);
    FUZZ_CHECK_ERROR(st, err);
    free(json);
    if (st != UNET_OK)
        return 0;
    UnetError e2 = { 0 };
    UnetStatus valid = unet_model_config_validate(&cfg, &e2);
    FUZZ_CHECK_ERROR(valid, e2);
    char *text = unet_model_config_to_json(&cfg);
    FUZZ_CHECK(text);
    UnetModelConfig again;
    memset(&e2, 0, sizeof e2);
    st = unet_model_config_from_json(&again, text, &e2);
    if (st != UNET_OK || !same(&cfg, &again)) {
        fprintf(stderr, "round trip of %s: %s\n", text, e2.message);
        FUZZ_CHECK(!"model config round trip");
    }
    free(text);
    if (valid == UNET_OK) {
        UnetModel *m = unet_model_new(&cfg, NULL, &e2);
        FUZZ_CHECK(m || e2.message[0]);
        if (m) {
            int in = 0, out = 0;
            (void)unet_model_valid_input_size(&cfg, 572, &in, &out);
            (void)unet_model_param_count(m);
            unet_model_free(m);
        }
    }
    return 0;
}
