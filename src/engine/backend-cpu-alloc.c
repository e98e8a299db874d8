/* backend-cpu-alloc.c - host memory of the CPU backend: 64-byte aligned
 * blocks, large ones mapped directly and recycled without raising the peak.
 *
 * The model allocates and frees its activations and gradients every
 * training step (recompute-and-release), about 3 GB of blocks per step for
 * the default U-Net at 572x572. Fresh pages cost a fault and a zeroing
 * each, about 0.4 ms per MB, which made a fifth of the step time. Freed
 * large blocks are therefore kept for reuse, but only while live plus kept
 * memory stays within the largest live total seen so far: keeping them never
 * raises the peak resident memory above what the live tensors alone needed
 * at their peak. A request takes the smallest kept block that is at least
 * as large and at most twice as large; kept blocks are unmapped oldest
 * first when live memory grows into the room they take. Not thread-safe,
 * like the rest of a backend (one thread drives it). */
#include "backend-cpu-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CPU_ALIGN 64
#define CPU_MAP_MIN ((size_t)256 << 10) /* smaller blocks come from calloc */

/* Sits just below every pointer handed out. */
typedef struct CpuAllocHeader {
    void *base;    /* what to free or unmap */
    size_t len;    /* mapping length; 0 for a calloc block */
    size_t usable; /* bytes from the returned pointer to the end of the mapping */
} CpuAllocHeader;

static CpuAllocHeader *header_of(void *p)
{
    return (CpuAllocHeader *)((uintptr_t)p - sizeof(CpuAllocHeader));
}

static size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

/* Keeps resident = live + kept within max(peak, live) by unmapping the
 * oldest kept blocks. */
static void pool_trim(CpuPool *pool)
{
    const size_t limit = pool->live > pool->peak ? pool->live : pool->peak;
    int drop = 0;
    while (drop < pool->count && pool->live + pool->kept > limit) {
        CpuAllocHeader *h = header_of(pool->blocks[drop]);
        pool->kept -= h->len;
        munmap(h->base, h->len);
        drop++;
    }
    if (drop) {
        memmove(pool->blocks, pool->blocks + drop, (size_t)(pool->count - drop) * sizeof(void *));
        pool->count -= drop;
    }
}

void *cpu_mem_alloc(CpuBackend *cpu, size_t bytes)
{
    const size_t head = CPU_ALIGN; /* room for the header, keeps the alignment */
    if (bytes > SIZE_MAX / 2)
        return NULL;
    if (bytes < CPU_MAP_MIN) {
        void *raw = calloc(1, bytes + 2 * head);
        if (!raw)
            return NULL;
        uintptr_t p = ((uintptr_t)raw + head + CPU_ALIGN - 1) & ~(uintptr_t)(CPU_ALIGN - 1);
        CpuAllocHeader *h = header_of((void *)p);
        h->base = raw;
        h->len = 0;
        h->usable = bytes;
        return (void *)p;
    }
    CpuPool *pool = &cpu->pool;
    int best = -1;
    for (int i = 0; i < pool->count; i++) {
        size_t u = header_of(pool->blocks[i])->usable;
        if (u >= bytes && u - bytes <= bytes &&
            (best < 0 || u < header_of(pool->blocks[best])->usable))
            best = i;
    }
    void *p;
    if (best >= 0) {
        p = pool->blocks[best];
        memmove(pool->blocks + best, pool->blocks + best + 1,
                (size_t)(pool->count - best - 1) * sizeof(void *));
        pool->count--;
        pool->kept -= header_of(p)->len;
    } else {
        const size_t ps = page_size();
        const size_t len = (bytes + head + ps - 1) / ps * ps;
        void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
            return NULL;
        p = (char *)base + head;
        CpuAllocHeader *h = header_of(p);
        h->base = base;
        h->len = len;
        h->usable = len - head;
    }
    pool->live += header_of(p)->len;
    pool_trim(pool);
    if (pool->live > pool->peak)
        pool->peak = pool->live;
    return p;
}

void cpu_mem_free(CpuBackend *cpu, void *p)
{
    if (!p)
        return;
    CpuAllocHeader *h = header_of(p);
    if (!h->len) {
        free(h->base);
        return;
    }
    CpuPool *pool = &cpu->pool;
    pool->live -= h->len;
    if (pool->live + pool->kept + h->len <= pool->peak) {
        if (pool->count == pool->cap) {
            int cap = pool->cap ? 2 * pool->cap : 32;
            void **nb = realloc(pool->blocks, (size_t)cap * sizeof(void *));
            if (!nb) {
                munmap(h->base, h->len);
                return;
            }
            pool->blocks = nb;
            pool->cap = cap;
        }
        pool->blocks[pool->count++] = p;
        pool->kept += h->len;
        return;
    }
    munmap(h->base, h->len);
}

void cpu_mem_release_all(CpuBackend *cpu)
{
    CpuPool *pool = &cpu->pool;
    for (int i = 0; i < pool->count; i++) {
        CpuAllocHeader *h = header_of(pool->blocks[i]);
        munmap(h->base, h->len);
    }
    free(pool->blocks);
    memset(pool, 0, sizeof *pool);
}
