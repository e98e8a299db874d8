/* backend-cpu-conv.c - convolutions and 2x2 up-convolutions of the CPU
 * backend through oneDNN primitives, created once per shape and cached.
 *
 * Each shape has a plan with up to three passes (forward, backward-data,
 * backward-weights). A pass picks the operand layouts oneDNN serves with a
 * JIT kernel, trying in turn: both activations blocked (nChw16c / nChw8c,
 * zero-padded when the channel count is not a multiple of the block), plain
 * source with blocked destination (oneDNN's first-layer kernels for a few
 * input channels), then both plain (its im2col + GEMM kernels); operands in
 * another layout are staged through scratch buffers. A 3x3 stride-1 pass on
 * blocked operands may also get oneDNN's Winograd kernel when its scratchpad
 * is small, when asked for: UNET_CPU_WINOGRAD=1 in the environment takes
 * it wherever offered, =auto times both on the first calls and keeps the
 * faster (pass_add_winograd). The default stays with the direct kernels,
 * whose results repeat from run to run.
 *
 * The 2x2 stride-2 up-convolution runs on the convolution primitives with
 * the roles swapped (its forward is a convolution's backward-data, its
 * backward-data a convolution's forward, PyTorch's [Ci,Co,2,2] weights
 * being the convolution's [O,I,2,2]); oneDNN's deconvolution primitive does
 * the same but adds the bias through a temporary as large as the output.
 * On blocked tensors its forward, its weight gradient on large images, and
 * the 1x1 head to a few plain channels use backend-cpu-kernels.c instead,
 * which measured faster on the U-Net's shapes (and needs no padded copies).
 *
 * Parameters stay in PyTorch layout: weights are reordered into the
 * primitive's format on every call, because the backend cannot see every
 * write to a parameter arena, and weight gradients are reordered back with
 * a sum post-op so that they add into dw. Every oneDNN status is checked;
 * a failure names the op, the shapes and the pass. */
#include "backend-cpu-private.h"

#include <oneapi/dnnl/dnnl_debug.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PASS_FWD = 0, PASS_BWD_DATA, PASS_BWD_WEIGHTS, PASS_COUNT };
static const char *const pass_names[PASS_COUNT] = { "forward", "backward-data",
                                                    "backward-weights" };

/* Older plans are dropped past this many (tiled inference of odd sizes). */
#define CPU_MAX_PLANS 96

/* Winograd is tried only where its scratchpad stays this small: on the
 * U-Net's large images it needs 60-450 MB for most passes, which would
 * undo the memory the blocked layout and the page recycling save. */
#define CPU_WINO_MAX_SCRATCH ((size_t)16 << 20)
/* Runs of each candidate before the faster one is kept. */
#define CPU_TIMING_RUNS 2

typedef struct CpuPass {
    int ready;
    int xb, yb;                /* block width of the x/dx and y/dy operands */
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t wreorder_pd;
    dnnl_primitive_t wreorder; /* plain -> primitive weights (fwd, bwd-data; NULL when the
                                * same), or primitive diff weights -> plain with += */
    size_t weights_bytes;      /* size of the primitive's (diff) weights */
    size_t scratchpad_bytes;
    const char *impl;
    /* Winograd candidate while the two are being timed; NULL once decided */
    struct CpuPass *alt;
    double best_s;             /* fastest run so far, seconds */
    int runs;
} CpuPass;

struct CpuConvPlan {
    CpuConvPlan *next;
    int deconv;
    int n, ci, h, w, co, k, stride, pad, ho, wo, has_bias;
    dnnl_memory_desc_t wplain; /* oihw: conv [Co,Ci,k,k], or up-conv [Ci,Co,2,2] */
    CpuPass pass[PASS_COUNT];
};

static void plan_name(const CpuConvPlan *pl, char *buf, size_t size)
{
    if (pl->deconv)
        snprintf(buf, size, "upconv2x2 [%d,%d,%d,%d] -> [%d,%d,%d,%d]", pl->n, pl->ci, pl->h,
                 pl->w, pl->n, pl->co, pl->ho, pl->wo);
    else
        snprintf(buf, size, "conv2d %dx%d stride %d pad %d [%d,%d,%d,%d] -> [%d,%d,%d,%d]",
                 pl->k, pl->k, pl->stride, pl->pad, pl->n, pl->ci, pl->h, pl->w, pl->n, pl->co,
                 pl->ho, pl->wo);
}

static UnetStatus dnnl_fail(UnetBackend *be, const CpuConvPlan *pl, int pass, const char *call,
                            dnnl_status_t st)
{
    char name[160];
    plan_name(pl, name, sizeof name);
    return unet_error_set(&be->error, UNET_ERR_BACKEND, "%s %s: oneDNN %s failed: %s", name,
                          pass_names[pass], call, dnnl_status2str(st));
}

#define DNNL_TRY(be, pl, pass, call)                                  \
    do {                                                              \
        dnnl_status_t st_ = (call);                                   \
        if (st_ != dnnl_success)                                      \
            return dnnl_fail((be), (pl), (pass), #call, st_);         \
    } while (0)

/* ---- plans and passes -------------------------------------------------- */

static dnnl_status_t act_md(dnnl_memory_desc_t *md, int n, int c, int h, int w, int b)
{
    dnnl_dims_t dims = { n, c, h, w };
    dnnl_format_tag_t tag = b == 16 ? dnnl_nChw16c : b == 8 ? dnnl_nChw8c : dnnl_nchw;
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

/* The pass whose descriptor hints the others: the convolution forward. */
static int hint_pass(const CpuConvPlan *pl)
{
    return pl->deconv ? PASS_BWD_DATA : PASS_FWD;
}

/* oneDNN's convolution kind for one of our passes. */
static int conv_kind(const CpuConvPlan *pl, int pass)
{
    if (!pl->deconv)
        return pass;
    return pass == PASS_FWD ? PASS_BWD_DATA : pass == PASS_BWD_DATA ? PASS_FWD : PASS_BWD_WEIGHTS;
}

static dnnl_status_t pass_make_pd(CpuBackend *cpu, const CpuConvPlan *pl, int pass, int xb,
                                  int yb, dnnl_alg_kind_t alg, const_dnnl_primitive_attr_t attr,
                                  dnnl_primitive_desc_t *pd)
{
    /* The convolution oneDNN sees: src -> dst with weights [O,I,k,k]. */
    dnnl_memory_desc_t src, dst, wany, bias;
    dnnl_status_t st;
    if (!pl->deconv)
        st = act_md(&src, pl->n, pl->ci, pl->h, pl->w, xb);
    else
        st = act_md(&src, pl->n, pl->co, pl->ho, pl->wo, yb);
    if (st != dnnl_success)
        return st;
    if (!pl->deconv)
        st = act_md(&dst, pl->n, pl->co, pl->ho, pl->wo, yb);
    else
        st = act_md(&dst, pl->n, pl->ci, pl->h, pl->w, xb);
    if (st != dnnl_success)
        return st;
    dnnl_dims_t wd = { pl->deconv ? pl->ci : pl->co, pl->deconv ? pl->co : pl->ci, pl->k, pl->k };
    dnnl_dims_t bd = { pl->co };
    if ((st = dnnl_memory_desc_init_by_tag(&wany, 4, wd, dnnl_f32, dnnl_format_tag_any)) ||
        (st = dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_x)))
        return st;
    const dnnl_dims_t strides = { pl->stride, pl->stride };
    const dnnl_dims_t pad_l = { pl->pad, pl->pad };
    /* Right padding that makes oneDNN's size relation give PyTorch's floor. */
    const int sh = pl->deconv ? pl->ho : pl->h, sw = pl->deconv ? pl->wo : pl->w;
    const int dh = pl->deconv ? pl->h : pl->ho, dw = pl->deconv ? pl->w : pl->wo;
    const dnnl_dims_t pad_r = { (dh - 1) * pl->stride + pl->k - sh - pl->pad,
                                (dw - 1) * pl->stride + pl->k - sw - pl->pad };
    /* oneDNN adds the bias of a plain convolution; an up-convolution's is ours. */
    const dnnl_memory_desc_t *bp = pl->has_bias && !pl->deconv ? &bias : NULL;
    const int kind = conv_kind(pl, pass);
    const_dnnl_primitive_desc_t hint = pass == hint_pass(pl) ? NULL : pl->pass[hint_pass(pl)].pd;
    dnnl_convolution_desc_t desc;
    if (kind == PASS_FWD)
        st = dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, alg, &src, &wany, bp,
                                                &dst, strides, pad_l, pad_r);
    else if (kind == PASS_BWD_DATA)
        st = dnnl_convolution_backward_data_desc_init(&desc, alg, &src, &wany, &dst, strides,
                                                      pad_l, pad_r);
    else
        st = dnnl_convolution_backward_weights_desc_init(&desc, alg, &src, &wany, bp, &dst,
                                                         strides, pad_l, pad_r);
    if (st != dnnl_success)
        return st;
    return dnnl_primitive_desc_create(pd, &desc, attr, cpu->engine, hint);
}

static const char *pd_impl(const_dnnl_primitive_desc_t pd)
{
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s)
        return "?";
    return s;
}

/* Fills ps from its primitive descriptor pd (which it takes over): the
 * primitive, sizes, and the weight reorder. */
static UnetStatus pass_finish(UnetBackend *be, CpuConvPlan *pl, int pass, CpuPass *ps,
                              dnnl_primitive_desc_t pd)
{
    CpuBackend *cpu = cpu_impl(be);
    dnnl_status_t st;
    ps->pd = pd;
    ps->impl = pd_impl(pd);
    DNNL_TRY(be, pl, pass, dnnl_primitive_create(&ps->prim, ps->pd));

    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(
        ps->pd, pass == PASS_BWD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(ps->pd, dnnl_query_scratchpad_md, 0);
    ps->weights_bytes = dnnl_memory_desc_get_size(wmd);
    ps->scratchpad_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (pass == PASS_BWD_WEIGHTS) {
        dnnl_primitive_attr_t sum_attr = NULL;
        dnnl_post_ops_t po = NULL;
        DNNL_TRY(be, pl, pass, dnnl_primitive_attr_create(&sum_attr));
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success)
            st = dnnl_post_ops_append_sum(po, 1.0f);
        if (st == dnnl_success)
            st = dnnl_primitive_attr_set_post_ops(sum_attr, po);
        if (st == dnnl_success)
            st = dnnl_reorder_primitive_desc_create(&ps->wreorder_pd, wmd, cpu->engine,
                                                    &pl->wplain, cpu->engine, sum_attr);
        if (po)
            dnnl_post_ops_destroy(po);
        dnnl_primitive_attr_destroy(sum_attr);
        if (st != dnnl_success)
            return dnnl_fail(be, pl, pass, "reorder of the weight gradient", st);
        DNNL_TRY(be, pl, pass, dnnl_primitive_create(&ps->wreorder, ps->wreorder_pd));
    } else if (!dnnl_memory_desc_equal(wmd, &pl->wplain)) {
        DNNL_TRY(be, pl, pass, dnnl_reorder_primitive_desc_create(&ps->wreorder_pd, &pl->wplain,
                                                                  cpu->engine, wmd, cpu->engine,
                                                                  NULL));
        DNNL_TRY(be, pl, pass, dnnl_primitive_create(&ps->wreorder, ps->wreorder_pd));
    }
    ps->ready = 1;
    return UNET_OK;
}

static void pass_destroy(CpuPass *ps);

/* A 3x3 stride-1 pass on blocked operands may also have oneDNN's Winograd
 * F(4x4,3x3) kernel, 1.3-2x faster on some of the U-Net's passes and slower
 * on others (measured): both are kept and timed on the first calls
 * (pass_pick, pass_timed) unless cpu->winograd forces the choice. */
static UnetStatus pass_add_winograd(UnetBackend *be, CpuConvPlan *pl, int pass, CpuPass *ps)
{
    CpuBackend *cpu = cpu_impl(be);
    if (cpu->winograd == 0 || pl->deconv || pl->k != 3 || pl->stride != 1 || ps->xb == 1 ||
        ps->yb == 1)
        return UNET_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success)
        st = pass_make_pd(cpu, pl, pass, ps->xb, ps->yb, dnnl_convolution_winograd, attr, &pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) /* not offered for this shape or machine */
        return UNET_OK;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (!strstr(pd_impl(pd), "wino") || (smd && dnnl_memory_desc_get_size(smd) >
                                                    CPU_WINO_MAX_SCRATCH)) {
        dnnl_primitive_desc_destroy(pd);
        return UNET_OK;
    }
    CpuPass *alt = calloc(1, sizeof *alt);
    if (!alt) {
        dnnl_primitive_desc_destroy(pd);
        return unet_error_set(&be->error, UNET_ERR_NOMEM, "cpu backend: out of memory");
    }
    alt->xb = ps->xb;
    alt->yb = ps->yb;
    UnetStatus s = pass_finish(be, pl, pass, alt, pd);
    if (s != UNET_OK) {
        pass_destroy(alt);
        free(alt);
        return s;
    }
    if (cpu->winograd == 1) { /* forced: Winograd replaces the direct kernel */
        CpuPass direct = *ps;
        *ps = *alt;
        free(alt);
        pass_destroy(&direct);
        ps->ready = 1;
        return UNET_OK;
    }
    ps->alt = alt;
    return UNET_OK;
}

static UnetStatus pass_create(UnetBackend *be, CpuConvPlan *pl, int pass)
{
    CpuBackend *cpu = cpu_impl(be);
    CpuPass *ps = &pl->pass[pass];
    const int B = cpu->block;
    /* x/y layouts to try, best first (see the top of the file). */
    const int cand[3][2] = { { B, B }, { 1, B }, { 1, 1 } };

    dnnl_primitive_attr_t attr = NULL;
    DNNL_TRY(be, pl, pass, dnnl_primitive_attr_create(&attr));
    dnnl_status_t st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return dnnl_fail(be, pl, pass, "dnnl_primitive_attr_set_scratchpad_mode", st);
    }
    dnnl_primitive_desc_t best = NULL;
    dnnl_status_t last = dnnl_unimplemented;
    for (int i = 0; i < 3; i++) {
        dnnl_primitive_desc_t pd = NULL;
        last = pass_make_pd(cpu, pl, pass, cand[i][0], cand[i][1], dnnl_convolution_direct, attr,
                            &pd);
        if (last != dnnl_success)
            continue;
        int is_ref = !strncmp(pd_impl(pd), "ref", 3);
        if (!best || !is_ref) {
            if (best)
                dnnl_primitive_desc_destroy(best);
            best = pd;
            ps->xb = cand[i][0];
            ps->yb = cand[i][1];
        } else {
            dnnl_primitive_desc_destroy(pd);
        }
        if (!is_ref)
            break;
    }
    dnnl_primitive_attr_destroy(attr);
    if (!best)
        return dnnl_fail(be, pl, pass, "dnnl_primitive_desc_create", last);
    UnetStatus us = pass_finish(be, pl, pass, ps, best);
    if (us == UNET_OK)
        us = pass_add_winograd(be, pl, pass, ps);
    return us;
}

static void pass_destroy(CpuPass *ps)
{
    if (ps->alt) {
        pass_destroy(ps->alt);
        free(ps->alt);
    }
    if (ps->wreorder)
        dnnl_primitive_destroy(ps->wreorder);
    if (ps->wreorder_pd)
        dnnl_primitive_desc_destroy(ps->wreorder_pd);
    if (ps->prim)
        dnnl_primitive_destroy(ps->prim);
    if (ps->pd)
        dnnl_primitive_desc_destroy(ps->pd);
    memset(ps, 0, sizeof *ps);
}

static void plan_free(CpuConvPlan *pl)
{
    for (int i = 0; i < PASS_COUNT; i++)
        pass_destroy(&pl->pass[i]);
    free(pl);
}

/* The plan of a shape, most recently used first. */
static CpuConvPlan *plan_get(UnetBackend *be, int deconv, int n, int ci, int h, int w, int co,
                             int ho, int wo, int k, int stride, int pad, int has_bias)
{
    CpuBackend *cpu = cpu_impl(be);
    CpuConvPlan **link = &cpu->plans;
    int count = 0;
    for (CpuConvPlan *pl = cpu->plans; pl; link = &pl->next, pl = pl->next, count++) {
        if (pl->deconv == deconv && pl->n == n && pl->ci == ci && pl->h == h && pl->w == w &&
            pl->co == co && pl->k == k && pl->stride == stride && pl->pad == pad &&
            pl->has_bias == has_bias) {
            *link = pl->next;
            pl->next = cpu->plans;
            cpu->plans = pl;
            return pl;
        }
    }
    CpuConvPlan *pl = calloc(1, sizeof *pl);
    if (!pl) {
        unet_error_set(&be->error, UNET_ERR_NOMEM, "cpu backend: out of memory for a plan");
        return NULL;
    }
    pl->deconv = deconv;
    pl->n = n, pl->ci = ci, pl->h = h, pl->w = w, pl->co = co, pl->ho = ho, pl->wo = wo;
    pl->k = k, pl->stride = stride, pl->pad = pad, pl->has_bias = has_bias;
    dnnl_dims_t wd = { deconv ? ci : co, deconv ? co : ci, k, k };
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&pl->wplain, 4, wd, dnnl_f32, dnnl_oihw);
    if (st != dnnl_success) {
        dnnl_fail(be, pl, PASS_FWD, "weights descriptor", st);
        free(pl);
        return NULL;
    }
    pl->next = cpu->plans;
    cpu->plans = pl;
    if (count >= CPU_MAX_PLANS) {
        CpuConvPlan *prev = pl;
        while (prev->next && prev->next->next)
            prev = prev->next;
        if (prev->next) {
            plan_free(prev->next);
            prev->next = NULL;
        }
    }
    return pl;
}

/* The kernel to run this call: while a Winograd candidate is being timed,
 * the one with fewer runs (the direct one first). */
static CpuPass *pass_pick(CpuPass *ps)
{
    return ps->alt && ps->alt->runs < ps->runs ? ps->alt : ps;
}

static UnetStatus pass_get(UnetBackend *be, CpuConvPlan *pl, int pass, CpuPass **out)
{
    /* Backward passes take the convolution forward's descriptor as a hint. */
    const int hp = hint_pass(pl);
    if (!pl->pass[hp].ready) {
        UnetStatus s = pass_create(be, pl, hp);
        if (s != UNET_OK) {
            pass_destroy(&pl->pass[hp]);
            return s;
        }
    }
    if (!pl->pass[pass].ready) {
        UnetStatus s = pass_create(be, pl, pass);
        if (s != UNET_OK) {
            pass_destroy(&pl->pass[pass]);
            return s;
        }
    }
    *out = pass_pick(&pl->pass[pass]);
    return UNET_OK;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Records a run of used (primary itself or its Winograd candidate) and,
 * once both have CPU_TIMING_RUNS runs, keeps the faster in primary. */
static void pass_timed(CpuPass *primary, CpuPass *used, double seconds)
{
    if (!primary->alt)
        return;
    if (!used->runs || seconds < used->best_s)
        used->best_s = seconds;
    used->runs++;
    CpuPass *alt = primary->alt;
    if (primary->runs < CPU_TIMING_RUNS || alt->runs < CPU_TIMING_RUNS)
        return;
    primary->alt = NULL;
    if (alt->best_s < primary->best_s) {
        CpuPass loser = *primary;
        *primary = *alt;
        pass_destroy(&loser);
    } else {
        pass_destroy(alt);
    }
    free(alt);
}

/* ---- execution --------------------------------------------------------- */

typedef struct ExecArgs {
    dnnl_exec_arg_t a[8];
    int count;
} ExecArgs;

static void args_release(ExecArgs *ea)
{
    for (int i = 0; i < ea->count; i++)
        dnnl_memory_destroy(ea->a[i].memory);
    ea->count = 0;
}

static UnetStatus args_add(UnetBackend *be, const CpuConvPlan *pl, int pass, ExecArgs *ea,
                           const_dnnl_primitive_desc_t pd, int arg, const void *ptr)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    dnnl_memory_t m = NULL;
    dnnl_status_t st = md ? dnnl_memory_create(&m, md, cpu_impl(be)->engine, (void *)ptr)
                          : dnnl_invalid_arguments;
    if (st != dnnl_success)
        return dnnl_fail(be, pl, pass, "dnnl_memory_create", st);
    ea->a[ea->count].arg = arg;
    ea->a[ea->count].memory = m;
    ea->count++;
    return UNET_OK;
}

static UnetStatus execute(UnetBackend *be, const CpuConvPlan *pl, int pass,
                          const_dnnl_primitive_t prim, ExecArgs *ea)
{
    CpuBackend *cpu = cpu_impl(be);
    dnnl_status_t st = dnnl_primitive_execute(prim, cpu->stream, ea->count, ea->a);
    if (st == dnnl_success)
        st = dnnl_stream_wait(cpu->stream);
    args_release(ea);
    if (st != dnnl_success)
        return dnnl_fail(be, pl, pass, "dnnl_primitive_execute", st);
    return UNET_OK;
}

/* Weights in the pass's format: w itself or reordered into scratch. */
static UnetStatus weights_for(UnetBackend *be, const CpuConvPlan *pl, int pass, CpuPass *ps,
                              const UnetTensor *w, const float **out, const char *op)
{
    if (!ps->wreorder) {
        *out = w->data;
        return UNET_OK;
    }
    float *buf = cpu_scratch(be, CPU_SCRATCH_WEIGHTS, ps->weights_bytes, op);
    if (!buf)
        return be->error.status;
    ExecArgs ea = { .count = 0 };
    UnetStatus s = args_add(be, pl, pass, &ea, ps->wreorder_pd, DNNL_ARG_FROM, w->data);
    if (s == UNET_OK)
        s = args_add(be, pl, pass, &ea, ps->wreorder_pd, DNNL_ARG_TO, buf);
    if (s != UNET_OK) {
        args_release(&ea);
        return s;
    }
    *out = buf;
    return execute(be, pl, pass, ps->wreorder, &ea);
}

static UnetStatus add_scratchpad(UnetBackend *be, const CpuConvPlan *pl, int pass, CpuPass *ps,
                                 ExecArgs *ea, const char *op)
{
    if (!ps->scratchpad_bytes)
        return UNET_OK;
    void *pad = cpu_scratch(be, CPU_SCRATCH_PAD, ps->scratchpad_bytes, op);
    if (!pad)
        return be->error.status;
    return args_add(be, pl, pass, ea, ps->pd, DNNL_ARG_SCRATCHPAD, pad);
}

/* y[n,c,:,:] += b[c] (the up-convolution's bias). */
static void add_bias(CpuBackend *cpu, UnetTensor *y, const float *b)
{
    const int B = cpu_block_of(y);
    const size_t hw = (size_t)y->h * (size_t)y->w;
    const long planes = (long)y->n * (y->c / B);
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(y));
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (long pl = 0; pl < planes; pl++) {
        const float *bb = b + (pl % (y->c / B)) * B;
        float *p = y->data + (size_t)pl * hw * B;
        for (size_t i = 0; i < hw; i++)
            CPU_OMP("omp simd")
            for (int l = 0; l < B; l++)
                p[i * B + l] += bb[l];
    }
}

/* db[c] += sum over images and pixels of dy[n,c,:,:], in double per channel. */
static void add_bias_grad(CpuBackend *cpu, float *db, const UnetTensor *dy)
{
    const int B = cpu_block_of(dy), cb = dy->c / B;
    const size_t hw = (size_t)dy->h * (size_t)dy->w;
    const int nt = cpu_threads_for(cpu, unet_tensor_numel(dy));
    CPU_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (int k = 0; k < cb; k++) {
        double acc[16] = { 0 };
        for (int n = 0; n < dy->n; n++) {
            const float *p = dy->data + ((size_t)n * cb + (size_t)k) * hw * B;
            for (size_t i = 0; i < hw; i++)
                for (int l = 0; l < B; l++)
                    acc[l] += p[i * B + l];
        }
        for (int l = 0; l < B; l++)
            db[k * B + l] += (float)acc[l];
    }
}

static UnetStatus run_forward(UnetBackend *be, CpuConvPlan *pl, UnetTensor *y,
                              const UnetTensor *x, const UnetTensor *w, const UnetTensor *b,
                              const char *op)
{
    CpuPass *ps;
    UnetStatus s = pass_get(be, pl, PASS_FWD, &ps);
    if (s != UNET_OK)
        return s;
    const double t0 = now_s();
    const float *wbuf;
    if ((s = weights_for(be, pl, PASS_FWD, ps, w, &wbuf, op)) != UNET_OK)
        return s;
    const float *xs = cpu_stage_in(be, x, ps->xb, CPU_SCRATCH_A, op);
    float *ys = cpu_out_buffer(be, y, ps->yb, 0, CPU_SCRATCH_B, op);
    if (!xs || !ys)
        return be->error.status;
    ExecArgs ea = { .count = 0 };
    const int dc = pl->deconv;
    if ((s = args_add(be, pl, PASS_FWD, &ea, ps->pd, dc ? DNNL_ARG_DIFF_DST : DNNL_ARG_SRC, xs)) ||
        (s = args_add(be, pl, PASS_FWD, &ea, ps->pd, DNNL_ARG_WEIGHTS, wbuf)) ||
        (b && !dc && (s = args_add(be, pl, PASS_FWD, &ea, ps->pd, DNNL_ARG_BIAS, b->data))) ||
        (s = args_add(be, pl, PASS_FWD, &ea, ps->pd, dc ? DNNL_ARG_DIFF_SRC : DNNL_ARG_DST, ys)) ||
        (s = add_scratchpad(be, pl, PASS_FWD, ps, &ea, op))) {
        args_release(&ea);
        return s;
    }
    if ((s = execute(be, pl, PASS_FWD, ps->prim, &ea)) != UNET_OK)
        return s;
    const int yb = ps->yb; /* ps may be freed once timed */
    pass_timed(&pl->pass[PASS_FWD], ps, now_s() - t0);
    cpu_stage_out(be, y, ys, yb, 0);
    if (b && dc)
        add_bias(cpu_impl(be), y, b->data);
    return UNET_OK;
}

static UnetStatus run_backward(UnetBackend *be, CpuConvPlan *pl, UnetTensor *dx, UnetTensor *dw,
                               UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                               const UnetTensor *w, int accumulate, const char *op)
{
    CpuPass *ps;
    UnetStatus s;
    const int dc = pl->deconv;
    if (dw || (db && !dc)) {
        if ((s = pass_get(be, pl, PASS_BWD_WEIGHTS, &ps)) != UNET_OK)
            return s;
        const int P = PASS_BWD_WEIGHTS;
        const double t0 = now_s();
        const float *xs = cpu_stage_in(be, x, ps->xb, CPU_SCRATCH_A, op);
        const float *dys = cpu_stage_in(be, dy, ps->yb, CPU_SCRATCH_B, op);
        /* the weight gradient shares the weights' scratch: backward-data
         * reorders the weights only after it has been added into dw */
        float *dwbuf = cpu_scratch(be, CPU_SCRATCH_WEIGHTS, ps->weights_bytes, op);
        float *dbbuf = pl->has_bias && !dc ? cpu_scratch(be, CPU_SCRATCH_DBIAS,
                                                         (size_t)pl->co * sizeof(float), op) : NULL;
        if (!xs || !dys || !dwbuf || (pl->has_bias && !dc && !dbbuf))
            return be->error.status;
        ExecArgs ea = { .count = 0 };
        if ((s = args_add(be, pl, P, &ea, ps->pd, DNNL_ARG_SRC, dc ? dys : xs)) ||
            (s = args_add(be, pl, P, &ea, ps->pd, DNNL_ARG_DIFF_DST, dc ? xs : dys)) ||
            (s = args_add(be, pl, P, &ea, ps->pd, DNNL_ARG_DIFF_WEIGHTS, dwbuf)) ||
            (dbbuf && (s = args_add(be, pl, P, &ea, ps->pd, DNNL_ARG_DIFF_BIAS, dbbuf))) ||
            (s = add_scratchpad(be, pl, P, ps, &ea, op))) {
            args_release(&ea);
            return s;
        }
        if ((s = execute(be, pl, P, ps->prim, &ea)) != UNET_OK)
            return s;
        if (dw) {
            if ((s = args_add(be, pl, P, &ea, ps->wreorder_pd, DNNL_ARG_FROM, dwbuf)) ||
                (s = args_add(be, pl, P, &ea, ps->wreorder_pd, DNNL_ARG_TO, dw->data))) {
                args_release(&ea);
                return s;
            }
            if ((s = execute(be, pl, P, ps->wreorder, &ea)) != UNET_OK)
                return s;
        }
        pass_timed(&pl->pass[P], ps, now_s() - t0);
        if (db && dbbuf)
            for (int o = 0; o < pl->co; o++)
                db->data[o] += dbbuf[o];
    }
    if (db && dc)
        add_bias_grad(cpu_impl(be), db->data, dy);
    if (dx) {
        if ((s = pass_get(be, pl, PASS_BWD_DATA, &ps)) != UNET_OK)
            return s;
        const int P = PASS_BWD_DATA;
        const double t0 = now_s();
        const float *wbuf;
        if ((s = weights_for(be, pl, P, ps, w, &wbuf, op)) != UNET_OK)
            return s;
        const float *dys = cpu_stage_in(be, dy, ps->yb, CPU_SCRATCH_B, op);
        float *dxs = cpu_out_buffer(be, dx, ps->xb, accumulate, CPU_SCRATCH_A, op);
        if (!dys || !dxs)
            return be->error.status;
        ExecArgs ea = { .count = 0 };
        if ((s = args_add(be, pl, P, &ea, ps->pd, dc ? DNNL_ARG_SRC : DNNL_ARG_DIFF_DST, dys)) ||
            (s = args_add(be, pl, P, &ea, ps->pd, DNNL_ARG_WEIGHTS, wbuf)) ||
            (s = args_add(be, pl, P, &ea, ps->pd, dc ? DNNL_ARG_DST : DNNL_ARG_DIFF_SRC, dxs)) ||
            (s = add_scratchpad(be, pl, P, ps, &ea, op))) {
            args_release(&ea);
            return s;
        }
        if ((s = execute(be, pl, P, ps->prim, &ea)) != UNET_OK)
            return s;
        const int xb = ps->xb; /* ps may be freed once timed */
        pass_timed(&pl->pass[P], ps, now_s() - t0);
        cpu_stage_out(be, dx, dxs, xb, accumulate);
    }
    return UNET_OK;
}

/* ---- shape checks ------------------------------------------------------ */

static int same_shape(const UnetTensor *a, int n, int c, int h, int w)
{
    return a && a->n == n && a->c == c && a->h == h && a->w == w;
}

static UnetStatus check_conv(UnetBackend *be, const char *op, const UnetTensor *y,
                             const UnetTensor *x, const UnetTensor *w, const UnetTensor *b,
                             const UnetConvDesc *d)
{
    char sx[64], sy[64], sw[64];
    if (!x || !y || !w || !d)
        return cpu_shape_error(be, op, "a required tensor or the descriptor is missing");
    if (d->kernel < 1 || d->stride < 1 || d->pad < 0 || d->pad >= d->kernel)
        return cpu_shape_error(be, op, "kernel %d, stride %d, pad %d is not a valid convolution",
                               d->kernel, d->stride, d->pad);
    int ho = unet_conv_out_size(x->h, d), wo = unet_conv_out_size(x->w, d);
    if (ho < 1 || wo < 1)
        return cpu_shape_error(be, op, "input %s is smaller than the %dx%d kernel",
                               cpu_shape_str(x, sx, sizeof sx), d->kernel, d->kernel);
    if (!same_shape(w, y->c, x->c, d->kernel, d->kernel) || !same_shape(y, x->n, y->c, ho, wo))
        return cpu_shape_error(be, op, "x %s, w %s, y %s do not fit a %dx%d stride %d pad %d "
                               "convolution (want w [Co,%d,%d,%d], y [%d,Co,%d,%d])",
                               cpu_shape_str(x, sx, sizeof sx), cpu_shape_str(w, sw, sizeof sw),
                               cpu_shape_str(y, sy, sizeof sy), d->kernel, d->kernel, d->stride,
                               d->pad, x->c, d->kernel, d->kernel, x->n, ho, wo);
    if (b && unet_tensor_numel(b) != (size_t)y->c)
        return cpu_shape_error(be, op, "bias has %zu values for %d output channels",
                               unet_tensor_numel(b), y->c);
    return UNET_OK;
}

static UnetStatus check_upconv(UnetBackend *be, const char *op, const UnetTensor *y,
                               const UnetTensor *x, const UnetTensor *w, const UnetTensor *b)
{
    char sx[64], sy[64], sw[64];
    if (!x || !y || !w)
        return cpu_shape_error(be, op, "a required tensor is missing");
    if (!same_shape(w, x->c, y->c, 2, 2) || !same_shape(y, x->n, y->c, 2 * x->h, 2 * x->w))
        return cpu_shape_error(be, op, "x %s, w %s, y %s do not fit a 2x2 stride-2 transposed "
                               "convolution (want w [%d,Co,2,2], y [%d,Co,%d,%d])",
                               cpu_shape_str(x, sx, sizeof sx), cpu_shape_str(w, sw, sizeof sw),
                               cpu_shape_str(y, sy, sizeof sy), x->c, x->n, 2 * x->h, 2 * x->w);
    if (b && unet_tensor_numel(b) != (size_t)y->c)
        return cpu_shape_error(be, op, "bias has %zu values for %d output channels",
                               unet_tensor_numel(b), y->c);
    return UNET_OK;
}

static UnetStatus check_grads(UnetBackend *be, const char *op, const UnetTensor *dx,
                              const UnetTensor *dw, const UnetTensor *db, const UnetTensor *x,
                              const UnetTensor *w)
{
    char s1[64], s2[64];
    if (dx && !same_shape(dx, x->n, x->c, x->h, x->w))
        return cpu_shape_error(be, op, "dx %s differs from x %s", cpu_shape_str(dx, s1, sizeof s1),
                               cpu_shape_str(x, s2, sizeof s2));
    if (dw && unet_tensor_numel(dw) != unet_tensor_numel(w))
        return cpu_shape_error(be, op, "dw %s differs from w %s", cpu_shape_str(dw, s1, sizeof s1),
                               cpu_shape_str(w, s2, sizeof s2));
    if (db && db->layout != 0)
        return cpu_shape_error(be, op, "db must be a plain view");
    if ((dw && dw->layout != 0) || w->layout != 0)
        return cpu_shape_error(be, op, "weights and their gradient must be plain views");
    return UNET_OK;
}

/* ---- the ops ------------------------------------------------------------ */

/* A 1x1 head from blocked x to a few plain channels (backend-cpu-kernels.c). */
static int is_head(const CpuBackend *cpu, const UnetTensor *x, const UnetTensor *y,
                   const UnetTensor *dx, const UnetConvDesc *d)
{
    return cpu->block > 0 && d->kernel == 1 && d->stride == 1 && d->pad == 0 &&
           x->layout == cpu->block && y->layout == 0 && y->c <= CPU_HEAD_MAX_CO &&
           x->c <= CPU_HEAD_MAX_CI && (!dx || dx->layout == cpu->block);
}

UnetStatus cpu_conv2d_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                              const UnetTensor *w, const UnetTensor *b, const UnetConvDesc *d)
{
    static const char op[] = "conv2d_forward";
    UnetStatus s = check_conv(be, op, y, x, w, b, d);
    if (s != UNET_OK)
        return s;
    if (is_head(cpu_impl(be), x, y, NULL, d)) {
        cpu_head_forward(cpu_impl(be), y, x, w->data, b ? b->data : NULL);
        return UNET_OK;
    }
    cpu_set_threads(cpu_impl(be));
    CpuConvPlan *pl = plan_get(be, 0, x->n, x->c, x->h, x->w, y->c, y->h, y->w, d->kernel,
                               d->stride, d->pad, b != NULL);
    if (!pl)
        return be->error.status;
    return run_forward(be, pl, y, x, w, b, op);
}

UnetStatus cpu_conv2d_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                               const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                               const UnetConvDesc *d, int accumulate)
{
    static const char op[] = "conv2d_backward";
    UnetStatus s = check_conv(be, op, dy, x, w, NULL, d);
    if (s == UNET_OK)
        s = check_grads(be, op, dx, dw, db, x, w);
    if (s == UNET_OK && db && unet_tensor_numel(db) != (size_t)dy->c)
        s = cpu_shape_error(be, op, "db has %zu values for %d output channels",
                            unet_tensor_numel(db), dy->c);
    if (s != UNET_OK)
        return s;
    CpuBackend *cpu = cpu_impl(be);
    if (is_head(cpu, x, dy, dx, d)) {
        if (dw || db) {
            double *part = cpu_scratch(be, CPU_SCRATCH_WEIGHTS, (size_t)cpu->threads * dy->c *
                                       (x->c + 1) * sizeof(double), op);
            if (!part)
                return be->error.status;
            float *dwd = dw ? dw->data : cpu_scratch(be, CPU_SCRATCH_DBIAS, (size_t)dy->c *
                                                     x->c * sizeof(float), op);
            if (!dwd)
                return be->error.status;
            cpu_head_backward_weights(cpu, dwd, db ? db->data : NULL, x, dy, part);
        }
        if (dx)
            cpu_head_backward_data(cpu, dx, dy, w->data, accumulate);
        return UNET_OK;
    }
    cpu_set_threads(cpu);
    CpuConvPlan *pl = plan_get(be, 0, x->n, x->c, x->h, x->w, dy->c, dy->h, dy->w, d->kernel,
                               d->stride, d->pad, db != NULL);
    if (!pl)
        return be->error.status;
    return run_backward(be, pl, dx, dw, db, dy, x, w, accumulate, op);
}

/* 1 when every given tensor is in the backend's blocked layout: the
 * up-convolution then runs on the kernels of backend-cpu-upconv.c. */
static int all_blocked(const CpuBackend *cpu, const UnetTensor *a, const UnetTensor *b,
                       const UnetTensor *c)
{
    const UnetTensor *ts[3] = { a, b, c };
    for (int i = 0; i < 3; i++)
        if (ts[i] && ts[i]->layout != cpu->block)
            return 0;
    return cpu->block > 0;
}

UnetStatus cpu_upconv2x2_forward(UnetBackend *be, UnetTensor *y, const UnetTensor *x,
                                 const UnetTensor *w, const UnetTensor *b)
{
    static const char op[] = "upconv2x2_forward";
    UnetStatus s = check_upconv(be, op, y, x, w, b);
    if (s != UNET_OK)
        return s;
    CpuBackend *cpu = cpu_impl(be);
    if (all_blocked(cpu, y, x, NULL)) {
        float *wp = cpu_scratch(be, CPU_SCRATCH_WEIGHTS, unet_tensor_numel(w) * sizeof(float), op);
        if (!wp)
            return be->error.status;
        cpu_upconv_blocked_forward(cpu, y, x, w->data, b ? b->data : NULL, wp);
        return UNET_OK;
    }
    cpu_set_threads(cpu);
    CpuConvPlan *pl = plan_get(be, 1, x->n, x->c, x->h, x->w, y->c, y->h, y->w, 2, 2, 0,
                               b != NULL);
    if (!pl)
        return be->error.status;
    return run_forward(be, pl, y, x, w, b, op);
}

UnetStatus cpu_upconv2x2_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw, UnetTensor *db,
                                  const UnetTensor *dy, const UnetTensor *x, const UnetTensor *w,
                                  int accumulate)
{
    static const char op[] = "upconv2x2_backward";
    UnetStatus s = check_upconv(be, op, dy, x, w, NULL);
    if (s == UNET_OK)
        s = check_grads(be, op, dx, dw, db, x, w);
    if (s == UNET_OK && db && unet_tensor_numel(db) != (size_t)dy->c)
        s = cpu_shape_error(be, op, "db has %zu values for %d output channels",
                            unet_tensor_numel(db), dy->c);
    if (s != UNET_OK)
        return s;
    CpuBackend *cpu = cpu_impl(be);
    const size_t wbytes = unet_tensor_numel(w) * sizeof(float);
    /* measured on the U-Net's shapes: our weight-gradient kernel wins from
     * about 100x100 inputs up, oneDNN below and for the data gradient */
    const int direct_w = all_blocked(cpu, x, dy, NULL) && (size_t)x->h * x->w >= 4096;
    if (direct_w && (dw || db)) {
        if (dw) {
            float *dwp = cpu_scratch(be, CPU_SCRATCH_WEIGHTS, wbytes, op);
            if (!dwp)
                return be->error.status;
            cpu_upconv_blocked_backward_weights(cpu, dw->data, x, dy, dwp);
        }
        if (db)
            add_bias_grad(cpu, db->data, dy);
    }
    /* what the blocked kernels did not take goes to oneDNN */
    if (direct_w)
        dw = db = NULL;
    if (!dx && !dw && !db)
        return UNET_OK;
    cpu_set_threads(cpu);
    CpuConvPlan *pl = plan_get(be, 1, x->n, x->c, x->h, x->w, dy->c, dy->h, dy->w, 2, 2, 0,
                               db != NULL);
    if (!pl)
        return be->error.status;
    return run_backward(be, pl, dx, dw, db, dy, x, w, accumulate, op);
}

/* ---- setup ------------------------------------------------------------- */

UnetStatus cpu_conv_init(UnetBackend *be, UnetError *err)
{
    CpuBackend *cpu = cpu_impl(be);
    dnnl_status_t st = dnnl_engine_create(&cpu->engine, dnnl_cpu, 0);
    if (st == dnnl_success)
        st = dnnl_stream_create(&cpu->stream, cpu->engine, dnnl_stream_default_flags);
    if (st != dnnl_success)
        return unet_error_set(err, UNET_ERR_BACKEND,
                              "cpu backend: oneDNN could not start a CPU engine (%s)",
                              dnnl_status2str(st));
    /* oneDNN's blocked kernels use 16 channels per block with AVX-512 and 8
     * with AVX2 or less. */
    /* Direct kernels by default: a choice made by timing differs from run
     * to run, and an exact resume needs the same kernels every run.
     * UNET_CPU_WINOGRAD=1 takes Winograd wherever it is offered within the
     * scratch limit; =auto lets each pass keep whichever its first runs
     * found faster (fastest, not repeatable). */
    const char *wino = getenv("UNET_CPU_WINOGRAD");
    cpu->winograd = wino && !strcmp(wino, "1") ? 1 : wino && !strcmp(wino, "auto") ? 2 : 0;
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    cpu->block = ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core) ==
                         (unsigned)dnnl_cpu_isa_avx512_core ? 16 : 8;
    return UNET_OK;
}

void cpu_conv_destroy(UnetBackend *be)
{
    CpuBackend *cpu = cpu_impl(be);
    while (cpu->plans) {
        CpuConvPlan *next = cpu->plans->next;
        plan_free(cpu->plans);
        cpu->plans = next;
    }
    if (cpu->stream)
        dnnl_stream_destroy(cpu->stream);
    if (cpu->engine)
        dnnl_engine_destroy(cpu->engine);
    cpu->stream = NULL;
    cpu->engine = NULL;
}
