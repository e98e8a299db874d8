/* params.h - named slices of a flat arena.
 *
 * A model's parameters live in one backend buffer; gradients and optimizer
 * state (momentum, Adam m and v) use the same layout, so an update is one
 * flat pass and a checkpoint is a walk over the named slices. Non-trainable
 * state (batch-norm running mean/var) lives in a second arena with its own
 * table. Names and shapes follow PyTorch's state_dict of the natural module
 * tree (e.g. "encoder.blocks.0.conv_1.weight", shape [64,1,3,3]). */
#ifndef UNET_PARAMS_H
#define UNET_PARAMS_H

#include <stddef.h>

#define UNET_PARAM_NAME_MAX 96

typedef struct UnetParamInfo {
    char name[UNET_PARAM_NAME_MAX];
    int ndim;        /* 1..4 */
    int shape[4];    /* PyTorch order; unused trailing dims are 1 */
    size_t offset;   /* in floats from the start of the arena */
    size_t count;    /* product of shape */
} UnetParamInfo;

typedef struct UnetParamTable {
    UnetParamInfo *items;
    size_t len;
    size_t total;    /* floats in the arena = sum of counts */
} UnetParamTable;

const UnetParamInfo *unet_param_table_find(const UnetParamTable *t, const char *name);

#endif
