/* cudasim-exec.c - runs a simulated kernel: blocks one after another, a block's threads as cooperative fibers.
 *
 * A thread runs until it finishes or reaches a barrier (__syncthreads, or a
 * warp shuffle, which is two warp barriers). When every live thread of the
 * block waits at __syncthreads they all go on; when every live lane of a
 * warp waits at a shuffle, that warp goes on. Nothing runnable and not all
 * finished is a deadlock (a barrier some threads skip, or a warp that
 * diverges around one): reported with the kernel's name as a fault
 * (cudasim_fault), which stops the kernel and leaves the device unusable.
 *
 * Kernels that never reach a barrier in their first block run later blocks
 * without fibers (each thread to its end in turn), which is one legal
 * schedule for code without barriers and much faster. UNET_CUDASIM_FIBERS=1
 * runs every block on fibers; UNET_CUDASIM_REVERSE=1 runs blocks and threads
 * last first (results that change are order-dependent: a race). */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <vector_types.h>

#include "cudasim.h"

#if defined(__SANITIZE_ADDRESS__)
#define CUDASIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDASIM_ASAN 1
#endif
#endif

#ifdef CUDASIM_ASAN
#include <sanitizer/common_interface_defs.h>
#define FIBER_STACK (512u << 10)
#else
#define FIBER_STACK (64u << 10)
#endif

__thread uint3 threadIdx, blockIdx, blockDim, gridDim;

/* Context switch. On x86-64 a six-register switch (ucontext's swapcontext
 * makes a sigprocmask system call per switch, and reductions switch
 * thousands of times per block); ucontext elsewhere. */
#if defined(__x86_64__) && !defined(UNET_CUDASIM_UCONTEXT)
#define FAST_SWITCH 1
__asm__(".text\n"
        ".globl unet_cudasim_switch\n"
        ".hidden unet_cudasim_switch\n"
        ".type unet_cudasim_switch,@function\n"
        "unet_cudasim_switch:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size unet_cudasim_switch, .-unet_cudasim_switch\n"
        ".section .note.GNU-stack,\"\",@progbits\n"
        ".text\n");
/* Saves the callee-saved registers and stack pointer in *save, resumes to. */
void unet_cudasim_switch(void **save, void *to);
#endif

enum { F_READY, F_WAIT_BLOCK, F_WAIT_WARP, F_DONE };

typedef struct Fiber {
#ifdef FAST_SWITCH
    void *sp;
#else
    ucontext_t ctx;
#endif
    char *stack;      /* mmap'd, with a guard page below */
    int state;
    unsigned linear;  /* thread index within the block */
    uint3 idx;
    unsigned mask;    /* at a warp barrier: the mask given */
    const char *what; /* at a warp barrier: the call */
    int phase;        /* warp exchange: 0 posting, 1 reading */
} Fiber;

/* One simulated block at a time (the runtime's lock is held). */
static Fiber *fibers;
static unsigned fiber_cap;
static unsigned block_threads;
static Fiber *current;
#ifdef FAST_SWITCH
static void *sched_sp;
#define SWITCH_TO_SCHED(f) unet_cudasim_switch(&(f)->sp, sched_sp)
#define SWITCH_TO_FIBER(f) unet_cudasim_switch(&sched_sp, (f)->sp)
#else
static ucontext_t sched_ctx;
#define SWITCH_TO_SCHED(f) swapcontext(&(f)->ctx, &sched_ctx)
#define SWITCH_TO_FIBER(f) swapcontext(&sched_ctx, &(f)->ctx)
#endif
static CudasimKernel *running;
static unsigned long long *warp_slots; /* one 8-byte slot per thread */
static int direct_mode;                /* running a block without fibers */
static int reverse_order;              /* UNET_CUDASIM_REVERSE=1: last block and thread first */
#ifdef CUDASIM_ASAN
static const void *sched_stack_bottom;
static size_t sched_stack_size;
#endif

/* Kernels (by name) that reached a barrier in their first block. */
typedef struct KernelNote {
    const char *name;
    int barriers;
} KernelNote;
static KernelNote *notes;
static size_t note_count, note_cap;
static int kernel_uses_barrier; /* set by the device functions while a block runs */

/* Where a thread run without fibers (run_block_direct) leaves its block
 * after a fault. */
static jmp_buf direct_escape;

/* 0, or -1 after a fault. */
static int ensure_fibers(unsigned n)
{
    if (n <= fiber_cap)
        return 0;
    Fiber *grown = realloc(fibers, n * sizeof *grown);
    if (grown)
        fibers = grown;
    unsigned long long *slots = realloc(warp_slots, ((n + 31) & ~31u) * sizeof *slots);
    if (slots)
        warp_slots = slots;
    if (!grown || !slots) {
        cudasim_fault(cudaErrorMemoryAllocation, "out of host memory for %u simulated threads", n);
        return -1;
    }
    long page = sysconf(_SC_PAGESIZE);
    for (unsigned i = fiber_cap; i < n; i++) {
        char *m = mmap(NULL, FIBER_STACK + (size_t)page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            fiber_cap = i;
            cudasim_fault(cudaErrorMemoryAllocation,
                          "cannot map a fiber stack for simulated thread %u", i);
            return -1;
        }
        mprotect(m, (size_t)page, PROT_NONE); /* overflow faults instead of corrupting */
        memset(&fibers[i], 0, sizeof fibers[i]);
        fibers[i].stack = m + page;
    }
    fiber_cap = n;
    return 0;
}

static void set_indices(const Fiber *f)
{
    threadIdx = f->idx;
}

/* From a fiber back to the scheduler. */
static void yield_to_scheduler(int finishing)
{
    Fiber *f = current;
#ifdef CUDASIM_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(finishing ? NULL : &fake, sched_stack_bottom, sched_stack_size);
    SWITCH_TO_SCHED(f);
    __sanitizer_finish_switch_fiber(fake, &sched_stack_bottom, &sched_stack_size);
#else
    (void)finishing;
    SWITCH_TO_SCHED(f);
#endif
    set_indices(f); /* resumed */
}

static void fiber_main(void)
{
#ifdef CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(NULL, &sched_stack_bottom, &sched_stack_size);
#endif
    set_indices(current);
    running->thread(running);
    current->state = F_DONE;
    yield_to_scheduler(1);
    __builtin_unreachable(); /* a finished fiber is never resumed */
}

static void switch_to(Fiber *f)
{
    current = f;
    set_indices(f);
#ifdef CUDASIM_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, f->stack, FIBER_STACK);
    SWITCH_TO_FIBER(f);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    SWITCH_TO_FIBER(f);
#endif
    current = NULL;
}

static const char *state_name(int s)
{
    return s == F_READY ? "running" : s == F_WAIT_BLOCK ? "at __syncthreads" : s == F_WAIT_WARP ? "at a warp shuffle" : "finished";
}

static void report_deadlock(void)
{
    fprintf(stderr, "cudasim: kernel %s block (%u,%u,%u): deadlock, no thread can go on:\n",
            running->name, blockIdx.x, blockIdx.y, blockIdx.z);
    unsigned warps = (block_threads + 31) / 32;
    for (unsigned w = 0; w < warps; w++) {
        int counts[4] = { 0, 0, 0, 0 };
        unsigned lo = w * 32, hi = lo + 32 < block_threads ? lo + 32 : block_threads;
        for (unsigned i = lo; i < hi; i++)
            counts[fibers[i].state]++;
        if (counts[F_WAIT_BLOCK] && counts[F_WAIT_WARP])
            fprintf(stderr, "  warp %u diverges around a barrier: %d lanes at __syncthreads, %d at "
                            "a warp shuffle, %d finished\n",
                    w, counts[F_WAIT_BLOCK], counts[F_WAIT_WARP], counts[F_DONE]);
        else if (counts[F_WAIT_WARP])
            fprintf(stderr, "  warp %u: %d lanes at a warp shuffle, %d finished (some lanes the "
                            "mask names never arrive)\n",
                    w, counts[F_WAIT_WARP], counts[F_DONE]);
    }
    unsigned waiting_block = 0, done = 0;
    for (unsigned i = 0; i < block_threads; i++) {
        waiting_block += fibers[i].state == F_WAIT_BLOCK;
        done += fibers[i].state == F_DONE;
    }
    fprintf(stderr, "  %u threads at __syncthreads, %u finished, %u in all (thread 0 is %s)\n",
            waiting_block, done, block_threads, state_name(fibers[0].state));
    cudasim_fault(cudaErrorLaunchFailure,
                  "kernel %s deadlocks (a barrier that not every thread reaches)", running->name);
}

/* Releases a warp whose live lanes all wait at a warp barrier; checks that
 * the mask names exactly those lanes. Returns 1 when released, -1 after a
 * fault. */
static int try_release_warp(unsigned w)
{
    unsigned lo = w * 32, hi = lo + 32 < block_threads ? lo + 32 : block_threads;
    unsigned live = 0, waiting = 0;
    for (unsigned i = lo; i < hi; i++) {
        if (fibers[i].state != F_DONE)
            live |= 1u << (i - lo);
        if (fibers[i].state == F_WAIT_WARP)
            waiting |= 1u << (i - lo);
    }
    if (!waiting || waiting != live)
        return 0;
    for (unsigned i = lo; i < hi; i++) {
        if (fibers[i].state != F_WAIT_WARP)
            continue;
        if (fibers[i].mask != fibers[lo + __builtin_ctz(waiting)].mask) {
            cudasim_fault(cudaErrorLaunchFailure,
                          "kernel %s block (%u,%u,%u) warp %u: lanes give different masks to %s",
                          running->name, blockIdx.x, blockIdx.y, blockIdx.z, w, fibers[i].what);
            return -1;
        }
        if ((fibers[i].mask & live) != live || (fibers[i].mask & ~live) != 0) {
            unsigned exist = hi - lo == 32 ? 0xffffffffu : (1u << (hi - lo)) - 1;
            cudasim_fault(cudaErrorLaunchFailure,
                          "kernel %s block (%u,%u,%u) warp %u: %s with mask 0x%08x but the lanes "
                          "that reach it are 0x%08x (of 0x%08x in the block): a lane in the mask "
                          "has exited or diverged",
                          running->name, blockIdx.x, blockIdx.y, blockIdx.z, w, fibers[i].what,
                          fibers[i].mask, live, exist);
            return -1;
        }
        fibers[i].state = F_READY;
    }
    return 1;
}

/* A fresh context that starts in fiber_main on f's stack (kept out of the
 * caller: getcontext returns twice). */
__attribute__((noinline)) static void fiber_prepare(Fiber *f)
{
#ifdef FAST_SWITCH
    /* Stack as unet_cudasim_switch leaves it: six registers, then the
     * return address (fiber_main, entered with the stack aligned as after
     * a call), then a never-used return address of fiber_main. */
    uintptr_t top = ((uintptr_t)f->stack + FIBER_STACK) & ~(uintptr_t)15;
    void **sp = (void **)(top - 16);
    sp[1] = NULL;
    sp[0] = (void *)(uintptr_t)fiber_main;
    sp -= 6;
    for (int r = 0; r < 6; r++)
        sp[r] = NULL;
    f->sp = sp;
#else
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack;
    f->ctx.uc_stack.ss_size = FIBER_STACK;
    f->ctx.uc_link = NULL;
    makecontext(&f->ctx, fiber_main, 0);
#endif
}

/* 0, or -1 after a fault (the block's remaining fibers are dropped). */
static int run_block_fibers(CudasimKernel *k)
{
    unsigned bx = k->block[0], by = k->block[1];
    for (unsigned i = 0; i < block_threads; i++) {
        Fiber *f = &fibers[i];
        f->state = F_READY;
        f->linear = i;
        f->idx.x = i % bx;
        f->idx.y = i / bx % by;
        f->idx.z = i / (bx * by);
        fiber_prepare(f);
    }
    unsigned live = block_threads;
    while (live) {
        int ran = 0;
        for (unsigned j = 0; j < block_threads; j++) {
            unsigned i = reverse_order ? block_threads - 1 - j : j;
            if (fibers[i].state == F_READY) {
                switch_to(&fibers[i]);
                ran = 1;
                if (cudasim_sticky() != cudaSuccess)
                    return -1; /* a thread faulted */
            }
        }
        live = 0;
        unsigned at_block = 0;
        for (unsigned i = 0; i < block_threads; i++) {
            live += fibers[i].state != F_DONE;
            at_block += fibers[i].state == F_WAIT_BLOCK;
        }
        if (!live)
            break;
        int released = 0;
        for (unsigned w = 0; w < (block_threads + 31) / 32; w++) {
            int r = try_release_warp(w);
            if (r < 0)
                return -1;
            released |= r;
        }
        if (!released && at_block == live) {
            for (unsigned i = 0; i < block_threads; i++)
                if (fibers[i].state == F_WAIT_BLOCK)
                    fibers[i].state = F_READY;
            released = 1;
        }
        (void)ran;
        if (!released) {
            report_deadlock();
            return -1;
        }
    }
    return 0;
}

/* Each thread of the block to its end in turn. */
__attribute__((noinline)) static void run_threads_direct(CudasimKernel *k)
{
    unsigned bx = k->block[0], by = k->block[1];
    for (unsigned j = 0; j < block_threads; j++) {
        unsigned i = reverse_order ? block_threads - 1 - j : j;
        threadIdx.x = i % bx;
        threadIdx.y = i / bx % by;
        threadIdx.z = i / (bx * by);
        k->thread(k);
    }
}

/* 0, or -1 after a fault (a thread left through direct_escape). A kernel's
 * frames hold trivially destructible values only, so leaving them by
 * longjmp is safe. */
static int run_block_direct(CudasimKernel *k)
{
    direct_mode = 1;
    if (setjmp(direct_escape) == 0) { /* the forms of setjmp C allows */
        run_threads_direct(k);
        direct_mode = 0;
        return 0;
    }
    direct_mode = 0;
    return -1;
}

static KernelNote *note_for(const char *name)
{
    for (size_t i = 0; i < note_count; i++)
        if (notes[i].name == name || !strcmp(notes[i].name, name))
            return &notes[i];
    if (note_count == note_cap) {
        size_t cap = note_cap ? 2 * note_cap : 32;
        KernelNote *grown = realloc(notes, cap * sizeof *grown);
        if (!grown) {
            cudasim_fault(cudaErrorMemoryAllocation, "out of host memory");
            return NULL;
        }
        notes = grown;
        note_cap = cap;
    }
    notes[note_count].name = name;
    notes[note_count].barriers = -1; /* not known yet */
    return &notes[note_count++];
}

void cudasim_run_kernel(CudasimKernel *k)
{
    static int fibers_always = -1;
    if (fibers_always < 0) {
        const char *s = getenv("UNET_CUDASIM_FIBERS");
        fibers_always = s && !strcmp(s, "1");
        s = getenv("UNET_CUDASIM_REVERSE");
        reverse_order = s && !strcmp(s, "1");
    }
    block_threads = k->block[0] * k->block[1] * k->block[2];
    KernelNote *note = ensure_fibers(block_threads) == 0 ? note_for(k->name) : NULL;
    if (!note)
        return;
    running = k;
    blockDim.x = k->block[0];
    blockDim.y = k->block[1];
    blockDim.z = k->block[2];
    gridDim.x = k->grid[0];
    gridDim.y = k->grid[1];
    gridDim.z = k->grid[2];
    const unsigned long long blocks = (unsigned long long)k->grid[0] * k->grid[1] * k->grid[2];
    for (unsigned long long j = 0; j < blocks; j++) {
        unsigned long long b = reverse_order ? blocks - 1 - j : j;
        blockIdx.x = (unsigned)(b % k->grid[0]);
        blockIdx.y = (unsigned)(b / k->grid[0] % k->grid[1]);
        blockIdx.z = (unsigned)(b / ((unsigned long long)k->grid[0] * k->grid[1]));
        if (note->barriers == 0 && !fibers_always) {
            if (run_block_direct(k) < 0)
                break;
            continue;
        }
        kernel_uses_barrier = 0;
        if (run_block_fibers(k) < 0)
            break;
        if (note->barriers < 0)
            note->barriers = kernel_uses_barrier;
    }
    running = NULL;
}

/* Ends the calling simulated thread after a fault; the scheduler then stops
 * the kernel. */
__attribute__((noreturn)) static void end_faulted_thread(void)
{
    if (direct_mode)
        longjmp(direct_escape, 1);
    current->state = F_DONE;
    yield_to_scheduler(1);
    __builtin_unreachable(); /* the faulted kernel's fibers are dropped */
}

/* For the device functions with barriers: 1 when called by a thread on a
 * fiber. A thread run without one ends with a fault; a call from outside
 * any kernel is a fault that returns 0. */
static int on_fiber(const char *what)
{
    if (direct_mode) {
        cudasim_fault(cudaErrorLaunchFailure,
                      "kernel %s reached %s in block (%u,%u,%u) but not in its first block; run "
                      "with UNET_CUDASIM_FIBERS=1",
                      running ? running->name : "?", what, blockIdx.x, blockIdx.y, blockIdx.z);
        end_faulted_thread();
    }
    if (!current) {
        cudasim_fault(cudaErrorLaunchFailure, "%s called outside a simulated kernel", what);
        return 0;
    }
    return 1;
}

void cudasim_syncthreads(void)
{
    if (!on_fiber("__syncthreads"))
        return;
    kernel_uses_barrier = 1;
    current->state = F_WAIT_BLOCK;
    yield_to_scheduler(0);
}

unsigned cudasim_lane(void)
{
    return on_fiber("a warp function") ? current->linear & 31 : 0;
}

unsigned long long cudasim_warp_exchange(unsigned mask, unsigned long long mine, int src_lane,
                                         const char *what)
{
    if (!on_fiber(what))
        return mine;
    kernel_uses_barrier = 1;
    Fiber *f = current;
    unsigned base = f->linear & ~31u;
    if (!(mask >> (f->linear & 31) & 1)) {
        cudasim_fault(cudaErrorLaunchFailure,
                      "kernel %s: lane %u calls %s with mask 0x%08x, which does not name it",
                      running->name, f->linear & 31, what, mask);
        end_faulted_thread();
    }
    warp_slots[f->linear] = mine;
    f->mask = mask;
    f->what = what;
    f->state = F_WAIT_WARP;
    yield_to_scheduler(0);
    unsigned src = base + (unsigned)src_lane;
    if (src_lane < 0 || src_lane > 31 || src >= block_threads || !(mask >> src_lane & 1)) {
        cudasim_fault(cudaErrorLaunchFailure,
                      "kernel %s: lane %u reads lane %d in %s (mask 0x%08x): not a lane that "
                      "took part",
                      running->name, f->linear & 31, src_lane, what, mask);
        end_faulted_thread();
    }
    unsigned long long got = warp_slots[src];
    f->state = F_WAIT_WARP; /* nobody posts again before everyone has read */
    yield_to_scheduler(0);
    return got;
}
