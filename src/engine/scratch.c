/* scratch.c - the growable scratch buffer. */
#include "scratch.h"

#include <stdlib.h>

void *unet_scratch_reserve(UnetScratch *s, size_t bytes)
{
    if (bytes <= s->size && s->data)
        return s->data;
    free(s->data);
    s->size = 0;
    /* round up so aligned_alloc's size is a multiple of the alignment, with headroom */
    size_t want = ((bytes + bytes / 8) + 63) & ~(size_t)63;
    s->data = aligned_alloc(64, want ? want : 64);
    if (s->data)
        s->size = want;
    return s->data;
}

void unet_scratch_free(UnetScratch *s)
{
    free(s->data);
    s->data = NULL;
    s->size = 0;
}
