/* test-cpu-alloc.c - the CPU backend's block recycling: random allocations and frees of large buffers keep every live block's contents intact. */
/*
 * Large blocks are built from the kept pages of freed ones (the head of one
 * kept piece, or several pieces moved together with mremap), so a bug there
 * shows as two live blocks sharing pages or a block losing its data. Each
 * live block holds a pattern of its own, checked before it is freed and
 * after every step.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "test-common.h"

#define SLOTS 12

typedef struct Slot {
    float *p;
    size_t count;
    uint32_t tag;
} Slot;

static void fill(Slot *s)
{
    for (size_t i = 0; i < s->count; i += 97)
        s->p[i] = (float)(s->tag ^ (uint32_t)i);
    s->p[s->count - 1] = (float)(s->tag ^ (uint32_t)(s->count - 1));
}

static int intact(const Slot *s)
{
    for (size_t i = 0; i < s->count; i += 97)
        if (s->p[i] != (float)(s->tag ^ (uint32_t)i))
            return 0;
    return s->p[s->count - 1] == (float)(s->tag ^ (uint32_t)(s->count - 1));
}

int main(void)
{
    UnetError err = { 0 };
    UnetBackend *be = unet_backend_cpu_new(2, &err);
    if (!be) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    TestRng rng;
    test_rng_seed(&rng, 7);
    Slot slot[SLOTS] = { { 0 } };
    uint32_t next_tag = 1;
    for (int it = 0; it < 600; it++) {
        int k = (int)test_rng_uniform(&rng, 0, SLOTS - 0.001f);
        Slot *s = &slot[k];
        if (s->p) {
            CHECK_MSG(intact(s), "block %u lost its contents before being freed", s->tag);
            be->buffer_free(be, s->p);
            s->p = NULL;
        } else {
            /* 50 KB .. 12 MB: small (calloc) and large (recycled) blocks */
            float u = test_rng_uniform(&rng, 0, 1);
            s->count = (size_t)(12500 + u * u * 3000000);
            s->p = be->buffer_alloc(be, s->count);
            CHECK(s->p != NULL);
            if (!s->p)
                break;
            s->tag = next_tag++ * 2654435761u % 16777216u;
            fill(s);
        }
        for (int j = 0; j < SLOTS; j++)
            if (slot[j].p)
                CHECK_MSG(intact(&slot[j]), "block %u changed at step %d", slot[j].tag, it);
        if (test_failures)
            break;
    }
    /* activation tensors go through the same blocks */
    UnetTensor t;
    CHECK(be->tensor_init(be, &t, 1, 64, 100, 100) == UNET_OK);
    CHECK(be->tensor_fill(be, &t, 1.5f) == UNET_OK);
    for (int j = 0; j < SLOTS; j++)
        if (slot[j].p) {
            CHECK(intact(&slot[j]));
            be->buffer_free(be, slot[j].p);
        }
    float *host = malloc(unet_tensor_numel(&t) * sizeof(float));
    CHECK(be->tensor_download(be, host, &t) == UNET_OK);
    CHECK(host[0] == 1.5f && host[unet_tensor_numel(&t) - 1] == 1.5f);
    free(host);
    be->tensor_release(be, &t);
    unet_backend_destroy(be);
    return test_finish("cpu-alloc");
}
