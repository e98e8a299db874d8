/* fuzz-run-config.c - a run's config.json (unet_train_config_from_json onto
 * the defaults); an accepted config must validate or be refused with a
 * message, and round-trip through to_json unchanged. */
#include <string.h>

#include "fuzz-common.h"
#include "trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = fuzz_strndup(data, size);
    static UnetTrainConfig cfg, again; /* large: off the stack */
    unet_train_config_default(&cfg);
    UnetError err = { 0 };
    UnetStatus st = unet_train_config_from_json(&cfg, json, &err);
    FUZZ_CHECK_ERROR(st, err);
    free(json);
    if (st != UNET_OK)
        return 0;
    UnetError e2 = { 0 };
    UnetStatus valid = unet_train_config_validate(&cfg, &e2);
    FUZZ_CHECK_ERROR(valid, e2);
    char *text = unet_train_config_to_json(&cfg);
    FUZZ_CHECK(text);
    unet_train_config_default(&again);
    memset(&e2, 0, sizeof e2);
    st = unet_train_config_from_json(&again, text, &e2);
    if (st != UNET_OK) {
        fprintf(stderr, "round trip of %s: %s\n", text, e2.message);
        FUZZ_CHECK(!"run config round trip");
    }
    char *text2 = unet_train_config_to_json(&again);
    FUZZ_CHECK(text2);
    if (strcmp(text, text2)) {
        fprintf(stderr, "first:\n%s\nsecond:\n%s\n", text, text2);
        FUZZ_CHECK(!"run config changes on a round trip");
    }
    free(text);
    free(text2);
    return 0;
}
