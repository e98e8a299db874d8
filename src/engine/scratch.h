/* scratch.h - a reusable scratch buffer, so hot per-sample calls (augmentation, weight
 * maps) do not allocate and fault in fresh pages every time. */
#ifndef UNET_SCRATCH_H
#define UNET_SCRATCH_H

#include <stddef.h>

/* Zero-initialise (UnetScratch s = { 0 }), pass to calls that take one, free
 * with unet_scratch_free. One scratch per thread: calls use it exclusively. */
typedef struct UnetScratch {
    void *data;
    size_t size;
} UnetScratch;

/* At least `bytes` bytes, 64-byte aligned, contents undefined; NULL when out of
 * memory. Growing discards the old contents. */
void *unet_scratch_reserve(UnetScratch *s, size_t bytes);
void unet_scratch_free(UnetScratch *s);

#endif
