/* backend-cpu-alloc.c - host memory of the CPU backend: 64-byte aligned
 * blocks, large ones mapped directly and their pages recycled without
 * raising the peak.
 *
 * The model allocates and frees its activations and gradients every
 * training step (recompute-and-release), about 3 GB of blocks per step for
 * the default U-Net at 572x572. A fresh page costs a fault and a zeroing,
 * about 0.4 ms per MB, and those faults land inside the convolutions that
 * first write each output. So the pages of a freed large block are kept, as
 * long as live plus kept memory stays within the largest live total seen so
 * far (keeping them never raises the peak resident memory above what the
 * live blocks alone reached), and a new block is built from kept pages:
 * the head of one kept piece when one is large enough (no system call),
 * else pieces moved into a fresh range with mremap, which moves page-table
 * entries, not data. Kept pieces are unmapped oldest first when live memory
 * grows into their room. Each kept piece lies within one mapping, which
 * mremap requires. Not thread-safe, like the rest of a backend. */
#include "backend-cpu-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CPU_ALIGN 64
#define CPU_MAP_MIN ((size_t)256 << 10) /* smaller blocks come from calloc */
#define CPU_MIN_PIECE ((size_t)64 << 10) /* smaller leftovers are unmapped */
#define CPU_MAX_PIECES 64                /* per block built from kept pages */

/* Sits in the 64 bytes below every pointer handed out. */
typedef struct CpuAllocHeader {
    void *base;        /* calloc block, or the start of the mapped range */
    size_t len;        /* mapped length; 0 for a calloc block */
    int npieces;       /* mappings the range is made of (1: one) */
    CpuPiece *pieces;  /* their extents when npieces > 1 (malloc'd) */
} CpuAllocHeader;

static CpuAllocHeader *header_of(void *p)
{
    return (CpuAllocHeader *)((uintptr_t)p - CPU_ALIGN);
}

static size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

static void pool_remove(CpuPool *pool, int i)
{
    memmove(pool->kept + i, pool->kept + i + 1, (size_t)(pool->nkept - i - 1) * sizeof(CpuPiece));
    pool->nkept--;
}

/* Unmaps kept pieces, oldest first, until live + kept <= max(peak, live). */
static void pool_trim(CpuPool *pool)
{
    const size_t limit = pool->live > pool->peak ? pool->live : pool->peak;
    while (pool->nkept && pool->live + pool->kept_bytes > limit) {
        CpuPiece *k = &pool->kept[0];
        size_t over = pool->live + pool->kept_bytes - limit;
        if (over < k->len && k->len - over >= CPU_MIN_PIECE) {
            /* drop the tail only (sizes stay page multiples) */
            size_t ps = page_size(), cut = (over + ps - 1) / ps * ps;
            munmap(k->base + (k->len - cut), cut);
            k->len -= cut;
            pool->kept_bytes -= cut;
            break;
        }
        munmap(k->base, k->len);
        pool->kept_bytes -= k->len;
        pool_remove(pool, 0);
    }
}

/* Keeps a freed piece as far as the peak allows, unmapping the rest. */
static void pool_keep(CpuPool *pool, char *base, size_t len)
{
    const size_t ps = page_size();
    size_t room = pool->peak > pool->live + pool->kept_bytes
                      ? pool->peak - pool->live - pool->kept_bytes : 0;
    size_t keep = len < room ? len : room / ps * ps;
    if (keep >= CPU_MIN_PIECE && pool->nkept == pool->cap) {
        int cap = pool->cap ? 2 * pool->cap : 64;
        CpuPiece *grown = realloc(pool->kept, (size_t)cap * sizeof(CpuPiece));
        if (grown) {
            pool->kept = grown;
            pool->cap = cap;
        }
    }
    if (keep < CPU_MIN_PIECE || pool->nkept == pool->cap) {
        munmap(base, len);
        return;
    }
    if (keep < len)
        munmap(base + keep, len - keep);
    pool->kept[pool->nkept].base = base;
    pool->kept[pool->nkept].len = keep;
    pool->nkept++;
    pool->kept_bytes += keep;
}

/* A mapped range of len bytes, from kept pages where there are any. */
static char *pool_take(CpuPool *pool, size_t len, int *npieces, CpuPiece **pieces)
{
    *npieces = 1;
    *pieces = NULL;
    /* the smallest kept piece that holds len: its head, no system call */
    int best = -1;
    for (int i = 0; i < pool->nkept; i++)
        if (pool->kept[i].len >= len && (best < 0 || pool->kept[i].len < pool->kept[best].len))
            best = i;
    if (best >= 0) {
        CpuPiece *k = &pool->kept[best];
        char *base = k->base;
        pool->kept_bytes -= len;
        if (k->len - len >= CPU_MIN_PIECE) {
            k->base += len;
            k->len -= len;
        } else {
            if (k->len > len)
                munmap(k->base + len, k->len - len);
            pool->kept_bytes -= k->len - len;
            pool_remove(pool, best);
        }
        return base;
    }
    char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
#ifdef MREMAP_FIXED
    /* move kept pieces into the fresh range, newest first (the oldest are
     * the first to be trimmed anyway) */
    CpuPiece parts[CPU_MAX_PIECES];
    int n = 0;
    size_t filled = 0;
    while (pool->nkept && filled < len && n < CPU_MAX_PIECES - 1) {
        CpuPiece *k = &pool->kept[pool->nkept - 1];
        size_t take = k->len < len - filled ? k->len : len - filled;
        void *to = mremap(k->base, take, take, MREMAP_MAYMOVE | MREMAP_FIXED, base + filled);
        if (to == MAP_FAILED)
            break;
        parts[n].base = base + filled;
        parts[n].len = take;
        n++;
        filled += take;
        pool->kept_bytes -= take;
        if (take < k->len) {
            k->base += take;
            k->len -= take;
            if (k->len < CPU_MIN_PIECE) {
                munmap(k->base, k->len);
                pool->kept_bytes -= k->len;
                pool->nkept--;
            }
        } else {
            pool->nkept--;
        }
    }
    if (n > 0) {
        if (filled < len) {
            parts[n].base = base + filled;
            parts[n].len = len - filled;
            n++;
        }
        if (n > 1) {
            *pieces = malloc((size_t)n * sizeof(CpuPiece));
            if (*pieces) {
                memcpy(*pieces, parts, (size_t)n * sizeof(CpuPiece));
                *npieces = n;
            } else {
                /* without the list the pieces cannot be kept apart later:
                 * unmap them one by one and start over with a plain range */
                for (int i = 0; i < n; i++)
                    munmap(parts[i].base, parts[i].len);
                base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                return base == MAP_FAILED ? NULL : base;
            }
        }
    }
#endif
    return base;
}

void *cpu_mem_alloc(CpuBackend *cpu, size_t bytes)
{
    if (bytes > SIZE_MAX / 2)
        return NULL;
    if (bytes < CPU_MAP_MIN) {
        void *raw = calloc(1, bytes + 2 * CPU_ALIGN);
        if (!raw)
            return NULL;
        uintptr_t p = ((uintptr_t)raw + 2 * CPU_ALIGN - 1) & ~(uintptr_t)(CPU_ALIGN - 1);
        CpuAllocHeader *h = header_of((void *)p);
        memset(h, 0, sizeof *h);
        h->base = raw;
        return (void *)p;
    }
    CpuPool *pool = &cpu->pool;
    const size_t ps = page_size();
    const size_t len = (bytes + CPU_ALIGN + ps - 1) / ps * ps;
    int npieces;
    CpuPiece *pieces;
    char *base = pool_take(pool, len, &npieces, &pieces);
    if (!base)
        return NULL;
    void *p = base + CPU_ALIGN;
    CpuAllocHeader *h = header_of(p);
    h->base = base;
    h->len = len;
    h->npieces = npieces;
    h->pieces = pieces;
    pool->live += len;
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
    char *base = h->base;
    const size_t len = h->len;
    const int n = h->npieces;
    CpuPiece *pieces = h->pieces; /* the header is in the block: read it first */
    pool->live -= len;
    if (n > 1) {
        for (int i = 0; i < n; i++)
            pool_keep(pool, pieces[i].base, pieces[i].len);
        free(pieces);
    } else {
        pool_keep(pool, base, len);
    }
}

void cpu_mem_release_all(CpuBackend *cpu)
{
    CpuPool *pool = &cpu->pool;
    for (int i = 0; i < pool->nkept; i++)
        munmap(pool->kept[i].base, pool->kept[i].len);
    free(pool->kept);
    memset(pool, 0, sizeof *pool);
}
