/* fuzz-checkpoint.c - checkpoint files: the model config and metadata they
 * carry (unet_checkpoint_read_config, _describe, _has_optimizer), then, when
 * the config describes a small model, loading the weights with and without
 * optimizer state. */
#include <string.h>

#include "checkpoint.h"
#include "fuzz-common.h"
#include "model.h"
#include "optim.h"

/* Larger models are skipped: building them costs time, not coverage. */
#define MAX_PARAMS 200000

static UnetBackend *backend(void)
{
    static UnetBackend *be;
    if (!be) {
        UnetError err = { 0 };
        be = unet_backend_reference_new(&err);
        FUZZ_CHECK(be);
    }
    return be;
}

static void try_load(const char *path, const UnetModelConfig *cfg)
{
    UnetError err = { 0 };
    UnetModel *desc = unet_model_new(cfg, NULL, &err);
    FUZZ_CHECK(desc || err.message[0]);
    if (!desc)
        return;
    size_t count = unet_model_param_count(desc);
    unet_model_free(desc);
    if (count > MAX_PARAMS)
        return;
    UnetModel *m = unet_model_new(cfg, backend(), &err);
    FUZZ_CHECK(m || err.message[0]);
    if (!m)
        return;
    UnetCheckpointMeta meta;
    memset(&err, 0, sizeof err);
    UnetStatus st = unet_checkpoint_load(path, m, NULL, &meta, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st == UNET_OK) {
        for (size_t i = 0; i < meta.count; i++)
            FUZZ_CHECK(meta.keys[i] && meta.values[i]);
        unet_checkpoint_meta_free(&meta);
    }
    for (int kind = UNET_OPTIM_SGD; kind <= UNET_OPTIM_ADAM; kind++) {
        UnetOptimizerConfig oc;
        unet_optimizer_config_default(&oc, (UnetOptimKind)kind);
        memset(&err, 0, sizeof err);
        UnetOptimizer *o = unet_optimizer_new(backend(), &oc, unet_model_params(m), unet_model_param_arena(m),
                                              unet_model_grad_arena(m), &err);
        FUZZ_CHECK(o || err.message[0]);
        if (!o)
            continue;
        memset(&err, 0, sizeof err);
        st = unet_checkpoint_load(path, m, o, NULL, &err);
        FUZZ_CHECK_ERROR(st, err);
        unet_optimizer_free(o);
    }
    unet_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = fuzz_write_file("input.safetensors", data, size);
    UnetModelConfig cfg;
    UnetError err = { 0 };
    UnetStatus st = unet_checkpoint_read_config(path, &cfg, &err);
    FUZZ_CHECK_ERROR(st, err);
    memset(&err, 0, sizeof err);
    char *text = unet_checkpoint_describe(path, &err);
    FUZZ_CHECK(text || err.message[0]);
    free(text);
    (void)unet_checkpoint_has_optimizer(path);
    if (st == UNET_OK)
        try_load(path, &cfg);
    free(path);
    return 0;
}
