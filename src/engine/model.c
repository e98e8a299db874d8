/* model.c - UnetModel: arenas, initialisation, geometry, and the forward and
 * backward walks over the layer graph with their memory schedule. */
#include "model-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct UnetModel {
    UnetModelConfig cfg;
    UnetBackend *be;   /* NULL: description only */
    int dry;           /* running on the counting backend: no arenas */
    UnetGraph g;
    float *param_arena, *grad_arena, *buffer_arena;
    UnetTensor *pview, *gview, *bview; /* per slice, into the arenas */
    int64_t num_batches;

    int prep_n, prep_h, prep_w; /* prepared input shape, 0 when none */
    int pending_backward;       /* a training forward awaits its backward */
    UnetTensor probs;
    int probs_live;
    size_t act_bytes, act_peak;
    int (*cancel)(void *user);  /* polled between layers of a forward pass */
    void *cancel_user;
};

/* ---- small helpers -------------------------------------------------------- */

static UnetStatus backend_error(UnetModel *m, UnetError *err, const char *what)
{
    UnetStatus st = m->be->error.status != UNET_OK ? m->be->error.status : UNET_ERR_BACKEND;
    if (st == UNET_ERR_NOMEM)
        return unet_error_set(err, st, "%s: %s; " UNET_MEMORY_ADVICE, what, m->be->error.message);
    return unet_error_set(err, st, "%s: %s", what, m->be->error.message);
}

#define BE_TRY(call, what)                          \
    do {                                            \
        if ((call) != UNET_OK)                      \
            return backend_error(m, err, (what));   \
    } while (0)

#define TRY(call)                     \
    do {                              \
        UnetStatus st_ = (call);      \
        if (st_ != UNET_OK)           \
            return st_;               \
    } while (0)

static size_t tensor_bytes(const UnetTensor *t)
{
    return unet_tensor_numel(t) * sizeof(float);
}

static UnetStatus act_alloc(UnetModel *m, UnetTensor *t, int *live, int n, int c, int h, int w,
                            const char *what, UnetError *err)
{
    if (*live) {
        if (t->n == n && t->c == c && t->h == h && t->w == w)
            return UNET_OK;
        m->act_bytes -= tensor_bytes(t);
        m->be->tensor_release(m->be, t);
        *live = 0;
    }
    BE_TRY(m->be->tensor_init(m->be, t, n, c, h, w), what);
    *live = 1;
    m->act_bytes += tensor_bytes(t);
    if (m->act_bytes > m->act_peak)
        m->act_peak = m->act_bytes;
    return UNET_OK;
}

static void act_free(UnetModel *m, UnetTensor *t, int *live)
{
    if (!*live)
        return;
    m->act_bytes -= tensor_bytes(t);
    m->be->tensor_release(m->be, t);
    *live = 0;
}

static void free_out(UnetModel *m, UnetNode *n)
{
    if (n->op == UNET_NODE_INPUT) { /* the caller's x, borrowed */
        n->out_live = 0;
        memset(&n->out, 0, sizeof n->out);
        return;
    }
    act_free(m, &n->out, &n->out_live);
}

static void free_grad(UnetModel *m, UnetNode *n)
{
    if (n->grad_borrowed) { /* the caller's dlogits */
        n->grad_live = n->grad_borrowed = 0;
        memset(&n->grad, 0, sizeof n->grad);
        return;
    }
    act_free(m, &n->grad, &n->grad_live);
}

/* The backward of op reads its own output (activation, pooling) ... */
static int reads_own_output(const UnetNode *n)
{
    return (n->op == UNET_NODE_CONV && n->act) || n->op == UNET_NODE_MAXPOOL;
}

/* ... or its (first) input (weight gradients, pooling). */
static int reads_input(const UnetNode *n)
{
    return n->op == UNET_NODE_CONV || n->op == UNET_NODE_UPCONV || n->op == UNET_NODE_MAXPOOL;
}

static UnetNode *node(UnetModel *m, int i)
{
    return &m->g.nodes[i];
}

static UnetNode *last_node(UnetModel *m)
{
    return &m->g.nodes[m->g.n_nodes - 1];
}

static UnetTensor *pv(UnetModel *m, int idx)
{
    return idx >= 0 ? &m->pview[idx] : NULL;
}

static UnetTensor *gv(UnetModel *m, int idx)
{
    return idx >= 0 ? &m->gview[idx] : NULL;
}

/* Frees every run-time tensor; the logits survive when keep_logits. */
static void drop_run_tensors(UnetModel *m, int keep_logits)
{
    for (int i = 0; i < m->g.n_nodes; i++) {
        UnetNode *n = node(m, i);
        if (!(keep_logits && i == m->g.n_nodes - 1))
            free_out(m, n);
        act_free(m, &n->z, &n->z_live);
        free_grad(m, n);
    }
    m->pending_backward = 0;
}

/* Frees everything that depends on the input shape. */
static void drop_shape_tensors(UnetModel *m)
{
    if (!m->be)
        return;
    drop_run_tensors(m, 0);
    for (int i = 0; i < m->g.n_nodes; i++) {
        UnetNode *n = node(m, i);
        act_free(m, &n->mean, &n->mean_live);
        act_free(m, &n->invstd, &n->invstd_live);
        act_free(m, &n->scratch_mean, &n->smean_live);
        act_free(m, &n->scratch_var, &n->svar_live);
    }
    act_free(m, &m->probs, &m->probs_live);
    m->prep_n = m->prep_h = m->prep_w = 0;
}

/* ---- construction --------------------------------------------------------- */

static UnetModel *model_create(const UnetModelConfig *cfg, UnetBackend *be, int dry,
                               UnetError *err)
{
    UnetModel *m = calloc(1, sizeof *m);
    if (!m) {
        unet_error_set(err, UNET_ERR_NOMEM, "out of memory creating the model");
        return NULL;
    }
    m->cfg = *cfg;
    m->be = be;
    m->dry = dry;
    if (unet_graph_build(&m->g, cfg, err) != UNET_OK) {
        free(m);
        return NULL;
    }
    if (!be)
        return m;
    const size_t np = m->g.params.len, nb = m->g.buffers.len;
    m->pview = calloc(np ? np : 1, sizeof *m->pview);
    m->gview = calloc(np ? np : 1, sizeof *m->gview);
    m->bview = calloc(nb ? nb : 1, sizeof *m->bview);
    if (!m->pview || !m->gview || !m->bview) {
        unet_error_set(err, UNET_ERR_NOMEM, "out of memory creating the model");
        unet_model_free(m);
        return NULL;
    }
    if (!dry) {
        const size_t total = m->g.params.total;
        m->param_arena = be->buffer_alloc(be, total);
        m->grad_arena = m->param_arena ? be->buffer_alloc(be, total) : NULL;
        if (m->grad_arena && m->g.buffers.total)
            m->buffer_arena = be->buffer_alloc(be, m->g.buffers.total);
        if (!m->param_arena || !m->grad_arena || (m->g.buffers.total && !m->buffer_arena)) {
            unet_error_set(err, be->error.status ? be->error.status : UNET_ERR_NOMEM,
                           "cannot allocate the %s model's %zu parameters (%.1f MB with their "
                           "gradients) on the %s backend: %s; use a smaller --base or --depth",
                           unet_arch_name(cfg->arch), total, 2.0 * (double)total * 4 / 1e6,
                           be->name, be->error.message);
            unet_model_free(m);
            return NULL;
        }
    }
    for (size_t i = 0; i < np; i++) {
        const UnetParamInfo *p = &m->g.params.items[i];
        float *pa = m->param_arena ? m->param_arena + p->offset : NULL;
        float *ga = m->grad_arena ? m->grad_arena + p->offset : NULL;
        be->tensor_view(be, &m->pview[i], pa, p->shape[0], p->shape[1], p->shape[2], p->shape[3]);
        be->tensor_view(be, &m->gview[i], ga, p->shape[0], p->shape[1], p->shape[2], p->shape[3]);
    }
    for (size_t i = 0; i < nb; i++) {
        const UnetParamInfo *p = &m->g.buffers.items[i];
        float *ba = m->buffer_arena ? m->buffer_arena + p->offset : NULL;
        be->tensor_view(be, &m->bview[i], ba, p->shape[0], p->shape[1], p->shape[2], p->shape[3]);
    }
    return m;
}

UnetModel *unet_model_new(const UnetModelConfig *cfg, UnetBackend *be, UnetError *err)
{
    if (!cfg) {
        unet_error_set(err, UNET_ERR_INVALID, "unet_model_new: no model config given");
        return NULL;
    }
    UnetModel *m = model_create(cfg, be, 0, err);
    if (!m || !be)
        return m;
    if (unet_model_init_params(m, cfg->seed, err) != UNET_OK ||
        unet_model_zero_grad(m, err) != UNET_OK) {
        unet_model_free(m);
        return NULL;
    }
    return m;
}

void unet_model_free(UnetModel *m)
{
    if (!m)
        return;
    if (m->be) {
        drop_shape_tensors(m);
        if (m->param_arena)
            m->be->buffer_free(m->be, m->param_arena);
        if (m->grad_arena)
            m->be->buffer_free(m->be, m->grad_arena);
        if (m->buffer_arena)
            m->be->buffer_free(m->be, m->buffer_arena);
    }
    free(m->pview);
    free(m->gview);
    free(m->bview);
    unet_graph_free(&m->g);
    free(m);
}

const UnetModelConfig *unet_model_config(const UnetModel *m) { return &m->cfg; }
UnetBackend *unet_model_backend(const UnetModel *m) { return m->be; }
const UnetParamTable *unet_model_params(const UnetModel *m) { return &m->g.params; }
const UnetParamTable *unet_model_buffers(const UnetModel *m) { return &m->g.buffers; }
size_t unet_model_param_count(const UnetModel *m) { return m->g.params.total; }
float *unet_model_param_arena(UnetModel *m) { return m->param_arena; }
float *unet_model_grad_arena(UnetModel *m) { return m->grad_arena; }
float *unet_model_buffer_arena(UnetModel *m) { return m->buffer_arena; }
int64_t unet_model_num_batches_tracked(const UnetModel *m) { return m->num_batches; }
void unet_model_set_num_batches_tracked(UnetModel *m, int64_t count) { m->num_batches = count; }
size_t unet_model_activation_bytes(const UnetModel *m) { return m->act_bytes; }
size_t unet_model_activation_peak(const UnetModel *m) { return m->act_peak; }
void unet_model_reset_activation_peak(UnetModel *m) { m->act_peak = m->act_bytes; }

void unet_model_release_activations(UnetModel *m)
{
    drop_shape_tensors(m);
}

static UnetStatus need_arenas(const UnetModel *m, const char *what, UnetError *err)
{
    if (!m->be || !m->param_arena)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "%s: this model was built without a compute backend (description "
                              "only); create it with a backend",
                              what);
    return UNET_OK;
}

UnetStatus unet_model_zero_grad(UnetModel *m, UnetError *err)
{
    TRY(need_arenas(m, "zero_grad", err));
    BE_TRY(m->be->buffer_fill(m->be, m->grad_arena, m->g.params.total, 0.0f), "zero_grad");
    return UNET_OK;
}

/* ---- initialisation: our own RNG, identical on every IEEE-754 machine ----- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * 0x1.0p-53;
}

/* Natural log for x in (0, 1] from exact operations only (frexp, + - * /),
 * so no libm version can change the drawn values. */
static double det_log(double x)
{
    static const double inv_odd[] = { 1.0,        1.0 / 3.0,  1.0 / 5.0,  1.0 / 7.0,  1.0 / 9.0,
                                      1.0 / 11.0, 1.0 / 13.0, 1.0 / 15.0, 1.0 / 17.0, 1.0 / 19.0,
                                      1.0 / 21.0, 1.0 / 23.0, 1.0 / 25.0, 1.0 / 27.0 };
    const int terms = (int)(sizeof inv_odd / sizeof inv_odd[0]);
    int e;
    double mant = frexp(x, &e); /* [0.5, 1) */
    if (mant < 0.70710678118654752440) {
        mant *= 2.0;
        e--;
    }
    /* log(m) = 2 atanh(t), |t| <= 0.172: the series converges to 1 ulp well
     * before its 14th term */
    double t = (mant - 1.0) / (mant + 1.0), t2 = t * t, sum = 0.0;
    for (int k = terms - 1; k >= 0; k--)
        sum = sum * t2 + inv_odd[k];
    return 2.0 * t * sum + (double)e * 0.69314718055994530942;
}

typedef struct InitRng {
    uint64_t s;
    double spare;
    int has_spare;
} InitRng;

static double init_normal(InitRng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, q;
    do {
        u = 2.0 * uniform01(&r->s) - 1.0;
        v = 2.0 * uniform01(&r->s) - 1.0;
        q = u * u + v * v;
    } while (q >= 1.0 || q == 0.0);
    double f = sqrt(-2.0 * det_log(q) / q);
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}

static void init_slice(float *dst, const UnetParamInfo *p, const UnetSliceInit *how, uint64_t seed)
{
    if (how->init == UNET_INIT_ZERO || how->init == UNET_INIT_ONE) {
        const float v = how->init == UNET_INIT_ONE ? 1.0f : 0.0f;
        for (size_t i = 0; i < p->count; i++)
            dst[i] = v;
        return;
    }
    /* one stream per slice, keyed by its name: a layer's values do not depend
     * on the sizes of the layers before it */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = p->name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    InitRng r = { .s = seed ^ h };
    splitmix64(&r.s);
    const double std = sqrt(2.0 / (double)how->fan_in);
    for (size_t i = 0; i < p->count; i++)
        dst[i] = (float)(init_normal(&r) * std);
}

UnetStatus unet_model_init_host(const UnetModel *m, uint64_t seed, float *params, float *buffers,
                                UnetError *err)
{
    if (!params)
        return unet_error_set(err, UNET_ERR_INVALID, "init: no host buffer for the parameters");
    for (size_t i = 0; i < m->g.params.len; i++)
        init_slice(params + m->g.params.items[i].offset, &m->g.params.items[i],
                   &m->g.param_inits[i], seed);
    if (buffers)
        for (size_t i = 0; i < m->g.buffers.len; i++)
            init_slice(buffers + m->g.buffers.items[i].offset, &m->g.buffers.items[i],
                       &m->g.buffer_inits[i], seed);
    return UNET_OK;
}

UnetStatus unet_model_init_params(UnetModel *m, uint64_t seed, UnetError *err)
{
    TRY(need_arenas(m, "init", err));
    const size_t np = m->g.params.total, nb = m->g.buffers.total;
    float *host = malloc((np + nb) * sizeof(float));
    if (!host)
        return unet_error_set(err, UNET_ERR_NOMEM,
                              "init: cannot allocate %.1f MB of host memory for the initial weights",
                              (double)(np + nb) * 4 / 1e6);
    UnetStatus st = unet_model_init_host(m, seed, host, host + np, err);
    if (st == UNET_OK && m->be->buffer_upload(m->be, m->param_arena, host, np) != UNET_OK)
        st = backend_error(m, err, "init: uploading the parameters");
    if (st == UNET_OK && nb &&
        m->be->buffer_upload(m->be, m->buffer_arena, host + np, nb) != UNET_OK)
        st = backend_error(m, err, "init: uploading the running statistics");
    free(host);
    if (st == UNET_OK)
        m->num_batches = 0;
    return st;
}

/* ---- geometry ------------------------------------------------------------- */

int unet_model_output_size(const UnetModelConfig *cfg, int in)
{
    UnetGraph g;
    if (unet_graph_build(&g, cfg, NULL) != UNET_OK)
        return -1;
    int *sizes = malloc((size_t)g.n_nodes * sizeof(int));
    int out = sizes ? unet_graph_axis_sizes(&g, in, sizes, NULL, 0) : -1;
    free(sizes);
    unet_graph_free(&g);
    return out;
}

/* Search window: wide enough for the sparsest valid sizes (every 2^depth). */
#define VALID_SEARCH 4096

static void neighbours(const UnetGraph *g, int *sizes, int near, int *below, int *above)
{
    *below = *above = -1;
    for (int s = near; s >= 1 && s > near - VALID_SEARCH; s--)
        if (unet_graph_axis_sizes(g, s, sizes, NULL, 0) > 0) {
            *below = s;
            break;
        }
    for (int s = near < 1 ? 1 : near; s < near + VALID_SEARCH; s++)
        if (unet_graph_axis_sizes(g, s, sizes, NULL, 0) > 0) {
            *above = s;
            break;
        }
}

void unet_model_valid_input_neighbours(const UnetModelConfig *cfg, int near, int *below,
                                       int *above)
{
    UnetGraph g;
    *below = *above = -1;
    if (unet_graph_build(&g, cfg, NULL) != UNET_OK)
        return;
    int *sizes = malloc((size_t)g.n_nodes * sizeof(int));
    if (sizes)
        neighbours(&g, sizes, near, below, above);
    free(sizes);
    unet_graph_free(&g);
}

int unet_model_valid_input_size(const UnetModelConfig *cfg, int near, int *in, int *out)
{
    int below, above;
    unet_model_valid_input_neighbours(cfg, near, &below, &above);
    int best = above;
    if (below > 0 && (above < 0 || near - below < above - near))
        best = below;
    if (best < 0)
        return -1;
    if (in)
        *in = best;
    if (out)
        *out = unet_model_output_size(cfg, best);
    return 0;
}

/* Computes every node's output size for an N x H x W input and drops the
 * tensors of the previous shape. */
static UnetStatus prepare(UnetModel *m, int n, int h, int w, UnetError *err)
{
    if (m->prep_n == n && m->prep_h == h && m->prep_w == w)
        return UNET_OK;
    drop_shape_tensors(m);
    int *hs = malloc(2 * (size_t)m->g.n_nodes * sizeof(int));
    if (!hs)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory preparing the model");
    int *ws = hs + m->g.n_nodes;
    char why[256];
    UnetStatus st = UNET_OK;
    for (int axis = 0; axis < 2 && st == UNET_OK; axis++) {
        int side = axis ? w : h;
        if (unet_graph_axis_sizes(&m->g, side, axis ? ws : hs, why, sizeof why) < 1) {
            int below, above;
            neighbours(&m->g, axis ? ws : hs, side, &below, &above);
            st = unet_error_set(err, UNET_ERR_INVALID,
                                "input %dx%d does not fit the %s model: %s; the nearest valid "
                                "sides are %d and %d (see 'unet info --size %d')",
                                w, h, unet_arch_name(m->cfg.arch), why, below, above, side);
        }
    }
    if (st == UNET_OK) {
        for (int i = 0; i < m->g.n_nodes; i++) {
            node(m, i)->h = hs[i];
            node(m, i)->w = ws[i];
        }
        m->prep_n = n;
        m->prep_h = h;
        m->prep_w = w;
    }
    free(hs);
    return st;
}

/* ---- forward ------------------------------------------------------------- */

/* Norm statistics: per channel for batch norm, per image and channel for
 * instance norm; the scratch pair receives the running statistics of a
 * batch norm recompute. */
static UnetStatus ensure_stats(UnetModel *m, UnetNode *n, UnetError *err)
{
    const int rows = n->norm == UNET_NORM_INSTANCE ? m->prep_n : 1;
    TRY(act_alloc(m, &n->mean, &n->mean_live, rows, n->c, 1, 1, n->name, err));
    return act_alloc(m, &n->invstd, &n->invstd_live, rows, n->c, 1, 1, n->name, err);
}

static UnetStatus ensure_scratch(UnetModel *m, UnetNode *n, UnetError *err)
{
    TRY(act_alloc(m, &n->scratch_mean, &n->smean_live, 1, n->c, 1, 1, n->name, err));
    return act_alloc(m, &n->scratch_var, &n->svar_live, 1, n->c, 1, 1, n->name, err);
}

/* Runs one node. recompute: rebuilding an output during backward (keep z,
 * leave the running statistics alone). */
static UnetStatus compute_node(UnetModel *m, int i, int training, int recompute, UnetError *err)
{
    UnetBackend *be = m->be;
    UnetNode *n = node(m, i);
    const UnetTensor *x = &node(m, n->in0)->out;
    const int N = m->prep_n;
    const float slope = m->cfg.leaky_slope;
    TRY(act_alloc(m, &n->out, &n->out_live, N, n->c, n->h, n->w, n->name, err));
    switch (n->op) {
    case UNET_NODE_INPUT:
        break;
    case UNET_NODE_CONV: {
        const UnetTensor *wt = pv(m, n->p_w), *bt = pv(m, n->p_b);
        if (n->norm == UNET_NORM_NONE) {
            BE_TRY(be->conv2d_forward(be, &n->out, x, wt, bt, &n->conv), n->name);
        } else {
            /* a kept z rebuilds the output without the convolution */
            if (!(recompute && n->z_live)) {
                TRY(act_alloc(m, &n->z, &n->z_live, N, n->c, n->h, n->w, n->name, err));
                BE_TRY(be->conv2d_forward(be, &n->z, x, wt, bt, &n->conv), n->name);
            }
            TRY(ensure_stats(m, n, err));
            if (n->norm == UNET_NORM_BATCH) {
                UnetTensor *rm = &m->bview[n->b_mean], *rv = &m->bview[n->b_var];
                if (training && recompute) {
                    TRY(ensure_scratch(m, n, err));
                    rm = &n->scratch_mean;
                    rv = &n->scratch_var;
                }
                BE_TRY(be->batchnorm_forward(be, &n->out, &n->z, pv(m, n->p_gamma),
                                             pv(m, n->p_beta), rm, rv, &n->mean, &n->invstd,
                                             UNET_BN_MOMENTUM, UNET_NORM_EPS, training),
                       n->name);
            } else {
                BE_TRY(be->instancenorm_forward(be, &n->out, &n->z, pv(m, n->p_gamma),
                                                pv(m, n->p_beta), &n->mean, &n->invstd,
                                                UNET_NORM_EPS),
                       n->name);
            }
            if (!(training && (n->keep_z || recompute)))
                act_free(m, &n->z, &n->z_live);
        }
        if (n->act)
            BE_TRY(be->activation_forward(be, &n->out, &n->out, m->cfg.activation, slope), n->name);
        break;
    }
    case UNET_NODE_MAXPOOL:
        BE_TRY(be->maxpool2x2_forward(be, &n->out, x), n->name);
        break;
    case UNET_NODE_UPCONV:
        BE_TRY(be->upconv2x2_forward(be, &n->out, x, pv(m, n->p_w), pv(m, n->p_b)), n->name);
        break;
    case UNET_NODE_UPSAMPLE:
        BE_TRY(be->upsample2x_forward(be, &n->out, x), n->name);
        break;
    case UNET_NODE_CONCAT:
        BE_TRY(be->crop_concat_forward(be, &n->out, x, &node(m, n->in1)->out), n->name);
        break;
    case UNET_NODE_RESIZE:
        BE_TRY(be->resize_bilinear_forward(be, &n->out, x), n->name);
        break;
    }
    return UNET_OK;
}

static UnetStatus check_input(UnetModel *m, const UnetTensor *x, const char *what, UnetError *err)
{
    TRY(need_arenas(m, what, err));
    if (!x || !x->n || !x->c || !x->h || !x->w)
        return unet_error_set(err, UNET_ERR_INVALID, "%s: no input tensor given", what);
    if (x->c != m->cfg.in_channels)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "%s: the input has %d channels but the model expects %d "
                              "(in_channels)",
                              what, x->c, m->cfg.in_channels);
    return UNET_OK;
}

/* Batch norm's unbiased running variance needs two values per channel. */
static UnetStatus check_batch_stats(UnetModel *m, UnetError *err)
{
    for (int i = 0; i < m->g.n_nodes; i++) {
        const UnetNode *n = node(m, i);
        if (n->op == UNET_NODE_CONV && n->norm == UNET_NORM_BATCH &&
            (size_t)m->prep_n * (size_t)n->h * (size_t)n->w < 2)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "%s sees a single value per channel (batch %d, %dx%d); batch "
                                  "norm training needs a larger batch or input",
                                  n->name, m->prep_n, n->w, n->h);
    }
    return UNET_OK;
}

static UnetStatus forward_impl(UnetModel *m, const UnetTensor *x, int training, UnetError *err)
{
    TRY(prepare(m, x->n, x->h, x->w, err));
    if (training)
        TRY(check_batch_stats(m, err));
    drop_run_tensors(m, 1);

    UnetGraph *g = &m->g;
    for (int i = 0; i < g->n_nodes; i++) {
        UnetNode *n = node(m, i);
        n->fwd_left = n->consumers;
        n->need_left = 0;
        n->bwd_done = 0;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (reads_input(node(m, i)))
            node(m, node(m, i)->in0)->need_left++;
    for (int i = 0; i < g->n_nodes; i++) {
        UnetNode *n = node(m, i);
        const int needed = training && !n->recompute && (reads_own_output(n) || n->need_left > 0);
        /* a normalised conv keeps only its pre-norm output: norm and
         * activation are rebuilt from it when backward reads the output */
        const int normed = n->op == UNET_NODE_CONV && n->norm != UNET_NORM_NONE;
        n->keep = needed && !normed && i != g->n_nodes - 1;
        n->keep_z = needed && normed;
    }

    UnetNode *in = node(m, 0);
    in->out = *x;
    in->out.is_view = 1;
    in->out_live = 1;
    for (int i = 1; i < g->n_nodes; i++) {
        /* a large tile on a slow device takes seconds: stop between layers */
        if (m->cancel && m->cancel(m->cancel_user))
            return unet_error_set(err, UNET_ERR_CANCELLED, "cancelled");
        TRY(compute_node(m, i, training, 0, err));
        UnetNode *n = node(m, i);
        const int ins[2] = { n->in0, n->in1 };
        for (int k = 0; k < 2; k++) {
            if (ins[k] < 0)
                continue;
            UnetNode *p = node(m, ins[k]);
            if (--p->fwd_left == 0 && !p->keep)
                free_out(m, p);
        }
    }
    if (training) {
        if (m->cfg.arch == UNET_ARCH_UNET && m->cfg.norm == UNET_NORM_BATCH)
            m->num_batches++;
        m->pending_backward = 1;
    } else {
        free_out(m, in);
    }
    return UNET_OK;
}

void unet_model_set_cancel(UnetModel *m, int (*cancelled)(void *user), void *user)
{
    m->cancel = cancelled;
    m->cancel_user = user;
}

UnetStatus unet_model_forward(UnetModel *m, const UnetTensor *x, UnetTensor **logits, int training,
                              UnetError *err)
{
    TRY(check_input(m, x, "forward", err));
    UnetStatus st = forward_impl(m, x, training, err);
    if (st != UNET_OK) {
        drop_run_tensors(m, 0);
        return st;
    }
    if (logits)
        *logits = &last_node(m)->out;
    return UNET_OK;
}

UnetStatus unet_model_predict(UnetModel *m, const UnetTensor *x, UnetTensor **probs,
                              UnetError *err)
{
    UnetTensor *logits;
    TRY(unet_model_forward(m, x, &logits, 0, err));
    TRY(act_alloc(m, &m->probs, &m->probs_live, logits->n, logits->c, logits->h, logits->w,
                  "predict", err));
    if (m->cfg.classes == 1)
        BE_TRY(m->be->sigmoid_forward(m->be, &m->probs, logits), "predict: sigmoid");
    else
        BE_TRY(m->be->softmax_forward(m->be, &m->probs, logits), "predict: softmax");
    if (probs)
        *probs = &m->probs;
    return UNET_OK;
}

/* ---- backward ------------------------------------------------------------ */

static int needed_later(const UnetNode *n)
{
    return (reads_own_output(n) && !n->bwd_done) || n->need_left > 0;
}

/* Rebuilds a dropped output (and, recursively, dropped inputs it needs);
 * inputs rebuilt only for it are freed again at once. */
static UnetStatus recompute(UnetModel *m, int i, UnetError *err)
{
    UnetNode *n = node(m, i);
    const int ins[2] = { n->in0, n->in1 };
    const int from_z = n->op == UNET_NODE_CONV && n->z_live; /* needs no input */
    int rebuilt[2] = { 0, 0 };
    for (int k = 0; k < 2 && !from_z; k++)
        if (ins[k] >= 0 && !node(m, ins[k])->out_live) {
            if (node(m, ins[k])->op == UNET_NODE_INPUT)
                return unet_error_set(err, UNET_ERR_INVALID,
                                      "backward: the input of the training forward is gone");
            TRY(recompute(m, ins[k], err));
            rebuilt[k] = 1;
        }
    TRY(compute_node(m, i, 1, 1, err));
    for (int k = 0; k < 2; k++)
        if (rebuilt[k] && !needed_later(node(m, ins[k])))
            free_out(m, node(m, ins[k]));
    return UNET_OK;
}

/* Where the gradient for input k goes: NULL for the network input. */
static UnetStatus grad_target(UnetModel *m, int k, UnetTensor **dst, int *accumulate,
                              UnetError *err)
{
    UnetNode *p = node(m, k);
    *dst = NULL;
    *accumulate = 0;
    if (p->op == UNET_NODE_INPUT)
        return UNET_OK;
    *accumulate = p->grad_live;
    TRY(act_alloc(m, &p->grad, &p->grad_live, m->prep_n, p->c, p->h, p->w, p->name, err));
    *dst = &p->grad;
    return UNET_OK;
}

static UnetStatus backward_conv(UnetModel *m, UnetNode *n, UnetError *err)
{
    UnetBackend *be = m->be;
    const int N = m->prep_n;
    UnetTensor *dy = &n->grad, tmp, dz;
    int tmp_live = 0, dz_live = 0;
    UnetStatus st = UNET_OK;
    if (n->act) {
        if (n->grad_borrowed) { /* never write into the caller's dlogits */
            TRY(act_alloc(m, &tmp, &tmp_live, N, n->c, n->h, n->w, n->name, err));
            dy = &tmp;
        }
        if (be->activation_backward(be, dy, &n->grad, &n->out, m->cfg.activation,
                                    m->cfg.leaky_slope, 0) != UNET_OK) {
            st = backend_error(m, err, n->name);
            goto done;
        }
    }
    /* the output is dead once the activation's gradient is taken */
    if (n != last_node(m))
        free_out(m, n);
    if (n->norm != UNET_NORM_NONE) {
        st = act_alloc(m, &dz, &dz_live, N, n->c, n->h, n->w, n->name, err);
        if (st != UNET_OK)
            goto done;
        if (n->norm == UNET_NORM_BATCH)
            st = be->batchnorm_backward(be, &dz, gv(m, n->p_gamma), gv(m, n->p_beta), dy, &n->z,
                                        pv(m, n->p_gamma), &n->mean, &n->invstd, 0);
        else
            st = be->instancenorm_backward(be, &dz, gv(m, n->p_gamma), gv(m, n->p_beta), dy, &n->z,
                                           pv(m, n->p_gamma), &n->mean, &n->invstd, 0);
        if (st != UNET_OK) {
            st = backend_error(m, err, n->name);
            goto done;
        }
        act_free(m, &tmp, &tmp_live);
        free_grad(m, n);
        act_free(m, &n->z, &n->z_live);
        dy = &dz;
    }
    UnetTensor *dx;
    int acc;
    st = grad_target(m, n->in0, &dx, &acc, err);
    if (st != UNET_OK)
        goto done;
    if (be->conv2d_backward(be, dx, gv(m, n->p_w), gv(m, n->p_b), dy, &node(m, n->in0)->out,
                            pv(m, n->p_w), &n->conv, acc) != UNET_OK)
        st = backend_error(m, err, n->name);
done:
    act_free(m, &tmp, &tmp_live);
    act_free(m, &dz, &dz_live);
    return st;
}

static UnetStatus backward_node(UnetModel *m, int i, UnetError *err)
{
    UnetBackend *be = m->be;
    UnetNode *n = node(m, i);
    UnetTensor *dx, *dup;
    int acc, acc_up;
    switch (n->op) {
    case UNET_NODE_INPUT:
        break;
    case UNET_NODE_CONV:
        TRY(backward_conv(m, n, err));
        break;
    case UNET_NODE_MAXPOOL:
        TRY(grad_target(m, n->in0, &dx, &acc, err));
        BE_TRY(be->maxpool2x2_backward(be, dx, &n->grad, &node(m, n->in0)->out, &n->out, acc),
               n->name);
        break;
    case UNET_NODE_UPCONV:
        TRY(grad_target(m, n->in0, &dx, &acc, err));
        BE_TRY(be->upconv2x2_backward(be, dx, gv(m, n->p_w), gv(m, n->p_b), &n->grad,
                                      &node(m, n->in0)->out, pv(m, n->p_w), acc),
               n->name);
        break;
    case UNET_NODE_UPSAMPLE:
        TRY(grad_target(m, n->in0, &dx, &acc, err));
        BE_TRY(be->upsample2x_backward(be, dx, &n->grad, acc), n->name);
        break;
    case UNET_NODE_CONCAT:
        TRY(grad_target(m, n->in0, &dx, &acc, err));
        TRY(grad_target(m, n->in1, &dup, &acc_up, err));
        BE_TRY(be->crop_concat_backward(be, dx, dup, &n->grad, acc, acc_up), n->name);
        break;
    case UNET_NODE_RESIZE:
        TRY(grad_target(m, n->in0, &dx, &acc, err));
        BE_TRY(be->resize_bilinear_backward(be, dx, &n->grad, acc), n->name);
        break;
    }
    return UNET_OK;
}

static UnetStatus backward_impl(UnetModel *m, const UnetTensor *dlogits, UnetError *err)
{
    UnetNode *last = last_node(m);
    last->grad = *dlogits;
    last->grad.is_view = 1;
    last->grad_live = last->grad_borrowed = 1;
    for (int i = m->g.n_nodes - 1; i >= 1; i--) {
        UnetNode *n = node(m, i);
        if (!n->grad_live)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "backward: no gradient reached %s (the layer graph is not "
                                  "connected to the output)",
                                  n->name);
        if (reads_own_output(n) && !n->out_live)
            TRY(recompute(m, i, err));
        if (reads_input(n) && !node(m, n->in0)->out_live)
            TRY(recompute(m, n->in0, err));
        TRY(backward_node(m, i, err));
        n->bwd_done = 1;
        free_grad(m, n);
        act_free(m, &n->z, &n->z_live);
        if (n != last)
            free_out(m, n);
        if (reads_input(n)) {
            UnetNode *p = node(m, n->in0);
            if (--p->need_left == 0 && !needed_later(p))
                free_out(m, p);
        }
    }
    return UNET_OK;
}

UnetStatus unet_model_backward(UnetModel *m, const UnetTensor *dlogits, UnetError *err)
{
    TRY(need_arenas(m, "backward", err));
    if (!m->pending_backward)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "backward: run a training forward (training = 1) first; each "
                              "forward allows one backward");
    const UnetTensor *lg = &last_node(m)->out;
    if (!dlogits || dlogits->n != lg->n || dlogits->c != lg->c || dlogits->h != lg->h ||
        dlogits->w != lg->w)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "backward: dlogits must have the logits' shape [%d,%d,%d,%d]", lg->n,
                              lg->c, lg->h, lg->w);
    m->pending_backward = 0;
    UnetStatus st = backward_impl(m, dlogits, err);
    drop_run_tensors(m, 1);
    return st;
}

/* ---- loss ------------------------------------------------------------------- */

UnetLossKind unet_model_default_loss(const UnetModelConfig *cfg)
{
    return cfg->classes == 1 ? UNET_LOSS_BCE : UNET_LOSS_SOFTMAX_CE;
}

static int same_nhw(const UnetTensor *a, const UnetTensor *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w;
}

UnetStatus unet_model_loss(UnetModel *m, const UnetTensor *logits, const UnetTensor *target,
                           const UnetTensor *weight, const float *class_weight, UnetLossKind kind,
                           float grad_scale, UnetTensor *loss, UnetTensor *dlogits,
                           UnetError *err)
{
    TRY(need_arenas(m, "loss", err));
    const int K = m->cfg.classes;
    if (kind == UNET_LOSS_DEFAULT)
        kind = unet_model_default_loss(&m->cfg);
    if (kind == UNET_LOSS_BCE && K != 1)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "loss: binary cross-entropy needs a 1-class model but this one has "
                              "%d classes; use softmax cross-entropy",
                              K);
    if (kind == UNET_LOSS_SOFTMAX_CE && K < 2)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "loss: softmax cross-entropy needs at least 2 classes; this model "
                              "has 1 (use binary cross-entropy)");
    if (kind != UNET_LOSS_BCE && kind != UNET_LOSS_SOFTMAX_CE && kind != UNET_LOSS_DICE)
        return unet_error_set(err, UNET_ERR_INVALID, "loss: unknown loss kind %d", (int)kind);
    if (!logits || !target || !loss)
        return unet_error_set(err, UNET_ERR_INVALID, "loss: logits, target and loss are required");
    if (logits->c != K)
        return unet_error_set(err, UNET_ERR_INVALID, "loss: logits have %d channels, expected %d",
                              logits->c, K);
    if (!same_nhw(target, logits) || target->c != 1)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "loss: the target is [%d,%d,%d,%d] but must be [%d,1,%d,%d] to match "
                              "the logits (crop labels to the output size)",
                              target->n, target->c, target->h, target->w, logits->n, logits->h,
                              logits->w);
    if (weight && (!same_nhw(weight, logits) || weight->c != 1))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "loss: the weight map is [%d,%d,%d,%d] but must be [%d,1,%d,%d]",
                              weight->n, weight->c, weight->h, weight->w, logits->n, logits->h,
                              logits->w);
    if (dlogits && (!same_nhw(dlogits, logits) || dlogits->c != K))
        return unet_error_set(err, UNET_ERR_INVALID, "loss: dlogits must have the logits' shape");
    if (unet_tensor_numel(loss) != 1)
        return unet_error_set(err, UNET_ERR_INVALID, "loss: the loss tensor must hold one value");
    BE_TRY(m->be->loss_forward_backward(m->be, loss, dlogits, logits, target, weight,
                                        kind == UNET_LOSS_SOFTMAX_CE ? class_weight : NULL, kind,
                                        grad_scale),
           "loss");
    return UNET_OK;
}

/* ---- summary and memory ---------------------------------------------------- */

static void node_kind(const UnetModel *m, const UnetNode *n, const int *hs, char *buf,
                      size_t size)
{
    switch (n->op) {
    case UNET_NODE_INPUT:
        snprintf(buf, size, "input");
        break;
    case UNET_NODE_CONV:
        snprintf(buf, size, "conv%dx%d%s%s%s%s", n->conv.kernel, n->conv.kernel,
                 n->conv.stride == 2 ? " stride 2" : "",
                 n->conv.kernel > 1 ? (n->conv.pad ? " same" : " valid") : "",
                 n->norm == UNET_NORM_BATCH      ? " + batchnorm"
                 : n->norm == UNET_NORM_INSTANCE ? " + instancenorm"
                                                 : "",
                 !n->act                                ? ""
                 : m->cfg.activation == UNET_ACT_LEAKY ? " + leaky relu"
                                                        : " + relu");
        break;
    case UNET_NODE_MAXPOOL:
        snprintf(buf, size, "maxpool 2x2");
        break;
    case UNET_NODE_UPCONV:
        snprintf(buf, size, "up-conv 2x2 (transposed)");
        break;
    case UNET_NODE_UPSAMPLE:
        snprintf(buf, size, "bilinear x2");
        break;
    case UNET_NODE_CONCAT: {
        int cropped = hs && hs[n->in0] > 0 && hs[n->in0] != hs[n->in1];
        snprintf(buf, size, "%sconcat (skip %d + up %d ch)", cropped ? "crop + " : "",
                 m->g.nodes[n->in0].c, m->g.nodes[n->in1].c);
        break;
    }
    case UNET_NODE_RESIZE:
        snprintf(buf, size, "bilinear resize to the input");
        break;
    }
}

UnetLayerInfo *unet_model_layers(const UnetModel *m, int in_h, int in_w, size_t *count)
{
    const int nn = m->g.n_nodes;
    UnetLayerInfo *out = calloc((size_t)nn, sizeof *out);
    int *hs = malloc(2 * (size_t)nn * sizeof(int));
    if (!out || !hs) {
        free(out);
        free(hs);
        return NULL;
    }
    int *ws = hs + nn;
    int ok = unet_graph_axis_sizes(&m->g, in_h, hs, NULL, 0) > 0 &&
             unet_graph_axis_sizes(&m->g, in_w, ws, NULL, 0) > 0;
    for (int i = 0; i < nn; i++) {
        const UnetNode *n = &m->g.nodes[i];
        UnetLayerInfo *l = &out[i];
        snprintf(l->name, sizeof l->name, "%s", n->name);
        node_kind(m, n, ok ? hs : NULL, l->kind, sizeof l->kind);
        l->c = n->c;
        l->h = ok ? hs[i] : -1;
        l->w = ok ? ws[i] : -1;
        const int idx[4] = { n->p_w, n->p_b, n->p_gamma, n->p_beta };
        for (int k = 0; k < 4; k++)
            if (idx[k] >= 0)
                l->params += m->g.params.items[idx[k]].count;
    }
    free(hs);
    *count = (size_t)nn;
    return out;
}

UnetStatus unet_model_memory_estimate(const UnetModelConfig *cfg, int n, int h, int w,
                                      UnetMemoryEstimate *est, UnetError *err)
{
    memset(est, 0, sizeof *est);
    if (n < 1)
        return unet_error_set(err, UNET_ERR_INVALID, "memory estimate: batch must be at least 1");
    UnetBackend *be = unet_backend_null_new(err);
    if (!be)
        return err ? err->status : UNET_ERR_NOMEM;
    UnetModel *m = model_create(cfg, be, 1, err);
    if (!m) {
        unet_backend_destroy(be);
        return err ? err->status : UNET_ERR_INVALID;
    }
    UnetTensor x, dlogits, *logits = NULL;
    be->tensor_init(be, &x, n, cfg->in_channels, h, w);
    est->param_bytes = m->g.params.total * sizeof(float);
    est->buffer_bytes = m->g.buffers.total * sizeof(float);
    est->input_bytes = unet_tensor_numel(&x) * sizeof(float);

    /* the null backend has no memory, so the model's own counters are the figures */
    UnetStatus st = forward_impl(m, &x, 0, err);
    if (st == UNET_OK) {
        est->infer_peak_bytes = m->act_peak;
        logits = &last_node(m)->out;
        est->logits_bytes = tensor_bytes(logits);
        drop_shape_tensors(m);
        m->act_bytes = m->act_peak = 0;
        st = forward_impl(m, &x, 1, err);
    }
    if (st == UNET_OK) {
        logits = &last_node(m)->out;
        be->tensor_init(be, &dlogits, logits->n, logits->c, logits->h, logits->w);
        m->act_bytes += est->logits_bytes; /* the caller's dlogits lives through backward */
        if (m->act_bytes > m->act_peak)
            m->act_peak = m->act_bytes;
        st = backward_impl(m, &dlogits, err);
        m->act_bytes -= est->logits_bytes;
        est->train_peak_bytes = m->act_peak;
        drop_run_tensors(m, 1);
    }
    unet_model_free(m);
    unet_backend_destroy(be);
    return st;
}
