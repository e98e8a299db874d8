/* checkpoint.h - a model (and optionally its optimizer state) saved to and
 * loaded from a safetensors file that PyTorch can read.
 *
 * Tensors:
 *   <param name>                 F32, the model's parameter table (PyTorch
 *                                state_dict names, e.g. encoder.blocks.0.conv_1.weight)
 *   <norm>.running_mean|var      F32, batch norm buffers (buffer table)
 *   <norm>.num_batches_tracked   I64 scalar, one per batch norm (PyTorch's
 *                                buffer; the model keeps one count for all)
 *   optimizer.<param>.<slot>     F32, optimizer state when saved with one
 *                                ("momentum_buffer", "exp_avg", "exp_avg_sq")
 * __metadata__ (all values strings, most of them JSON):
 *   "format"        "unet-workbench-1"
 *   "model_config"  unet_model_config_to_json
 *   "optimizer"     {"config":{...optimizer config...},"step":N,"lr":x}, when saved with one
 *   plus the caller's key/value list, by convention "normalization",
 *   "epoch", "step", "losses", "training_config" (JSON text each).
 * The model's part is exactly a PyTorch state_dict: tests/torch_models.py
 * loads it with load_state_dict(strict=True) after dropping optimizer.*. */
#ifndef UNET_CHECKPOINT_H
#define UNET_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model-config.h"
#include "model.h"
#include "optim.h"

#define UNET_CHECKPOINT_FORMAT "unet-workbench-1"

typedef struct UnetKeyValue {
    const char *key;
    const char *value;
} UnetKeyValue;

/* Metadata read back from a checkpoint: every __metadata__ entry, in file order. */
typedef struct UnetCheckpointMeta {
    size_t count;
    char **keys;
    char **values;
} UnetCheckpointMeta;

const char *unet_checkpoint_meta_get(const UnetCheckpointMeta *meta, const char *key);
void unet_checkpoint_meta_free(UnetCheckpointMeta *meta);

/* Writes model (and optimizer, may be NULL) to path atomically (see
 * unet_safetensors_writer_save: on failure the previous file is intact).
 * extra: the caller's metadata entries (n_extra may be 0); the reserved keys
 * "format", "model_config" and "optimizer" are refused. Downloads the arenas
 * from backend memory; the model must have a backend. */
UnetStatus unet_checkpoint_save(const char *path, UnetModel *model, const UnetOptimizer *optimizer,
                                const UnetKeyValue *extra, size_t n_extra, UnetError *err);

/* The model config stored in path, so the caller can build the model before
 * loading it. Refuses files without one (not written by unet). */
UnetStatus unet_checkpoint_read_config(const char *path, UnetModelConfig *cfg, UnetError *err);

/* A model config from any file that holds one: a checkpoint (safetensors), a
 * model config JSON ({"model": "unet", ...}) or a run's config.json (the
 * model config under its "model" key). *is_checkpoint (may be NULL) says
 * which it was. */
UnetStatus unet_model_config_from_file(const char *path, UnetModelConfig *cfg, int *is_checkpoint,
                                       UnetError *err);

/* Loads the weights (and batch norm buffers) of path into model, uploading
 * them to backend memory. The file must hold exactly the model's tensors with
 * the same shapes: a missing tensor, an unexpected one or a shape mismatch is
 * refused with a message naming the tensor, both shapes and both model
 * configs, and the model is left unchanged. optimizer (may be NULL): its state
 * slots and step count are restored too; the file must then hold state of the
 * same kind. Without an optimizer any optimizer.* tensors are ignored.
 * meta_out (may be NULL) receives all metadata; free with
 * unet_checkpoint_meta_free. Files without unet metadata (e.g. written from
 * PyTorch) load as long as the tensors fit. */
UnetStatus unet_checkpoint_load(const char *path, UnetModel *model, UnetOptimizer *optimizer,
                                UnetCheckpointMeta *meta_out, UnetError *err);

/* 1 when path holds optimizer state (checked by name, without loading). */
int unet_checkpoint_has_optimizer(const char *path);

/* A human-readable description for `unet info CKPT`: file, format, model
 * config, parameter count, optimizer, epoch/step/losses and the other
 * metadata. malloc'd text, caller frees; NULL and err on failure. */
char *unet_checkpoint_describe(const char *path, UnetError *err);

#endif
