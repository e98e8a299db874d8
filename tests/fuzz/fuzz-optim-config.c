/* fuzz-optim-config.c - the optimizer and learning-rate schedule JSON: the
 * first byte picks optimizer config, schedule config or schedule state
 * (resume counters); accepted configs must round-trip and run a few steps. */
#include <math.h>
#include <string.h>

#include "fuzz-common.h"
#include "optim.h"

static void optimizer(const char *json)
{
    UnetOptimizerConfig cfg, again;
    UnetError err = { 0 };
    UnetStatus st = unet_optimizer_config_from_json(&cfg, json, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st != UNET_OK)
        return;
    (void)unet_optimizer_config_validate(&cfg, &err);
    char *text = unet_optimizer_config_to_json(&cfg);
    FUZZ_CHECK(text);
    memset(&err, 0, sizeof err);
    st = unet_optimizer_config_from_json(&again, text, &err);
    if (st != UNET_OK) {
        fprintf(stderr, "round trip of %s: %s\n", text, err.message);
        FUZZ_CHECK(!"optimizer config round trip");
    }
    char *text2 = unet_optimizer_config_to_json(&again);
    FUZZ_CHECK(text2 && !strcmp(text, text2));
    free(text);
    free(text2);
}

static void schedule(const char *json, const char *state_json)
{
    UnetLrScheduleConfig cfg, again;
    UnetError err = { 0 };
    UnetStatus st = unet_lr_schedule_config_from_json(&cfg, json, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st != UNET_OK)
        return;
    char *text = unet_lr_schedule_config_to_json(&cfg);
    FUZZ_CHECK(text);
    memset(&err, 0, sizeof err);
    st = unet_lr_schedule_config_from_json(&again, text, &err);
    if (st != UNET_OK) {
        fprintf(stderr, "round trip of %s: %s\n", text, err.message);
        FUZZ_CHECK(!"schedule config round trip");
    }
    free(text);
    if (cfg.kind == UNET_LR_COSINE && cfg.t_max == 0)
        cfg.t_max = 100;
    UnetLrSchedule s;
    memset(&err, 0, sizeof err);
    st = unet_lr_schedule_init(&s, &cfg, 0.01, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st != UNET_OK)
        return;
    if (state_json) {
        memset(&err, 0, sizeof err);
        st = unet_lr_schedule_state_from_json(&s, state_json, &err);
        FUZZ_CHECK_ERROR(st, err);
        if (st != UNET_OK)
            return;
        char *state = unet_lr_schedule_state_to_json(&s);
        FUZZ_CHECK(state);
        UnetLrSchedule t;
        FUZZ_CHECK(unet_lr_schedule_init(&t, &cfg, 0.01, NULL) == UNET_OK);
        memset(&err, 0, sizeof err);
        st = unet_lr_schedule_state_from_json(&t, state, &err);
        if (st != UNET_OK) {
            fprintf(stderr, "round trip of %s: %s\n", state, err.message);
            FUZZ_CHECK(!"schedule state round trip");
        }
        free(state);
    }
    for (int i = 0; i < 5; i++) {
        (void)unet_lr_schedule_step(&s);
        (void)unet_lr_schedule_epoch_end(&s, i == 2 ? NAN : 1.0 / (i + 1));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *json = fuzz_strndup(data + 1, size - 1);
    switch (data[0] % 3) {
    case 0:
        optimizer(json);
        break;
    case 1:
        schedule(json, NULL);
        break;
    default: {
        /* "CONFIG\nSTATE": a schedule config, then its resume counters */
        char *nl = strchr(json, '\n');
        if (nl) {
            *nl = '\0';
            schedule(json, nl + 1);
        }
        break;
    }
    }
    free(json);
    return 0;
}
