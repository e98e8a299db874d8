/* model-graph.c - building the layer graph: named parameter slices, nodes,
 * and the per-axis geometry every model shares. */
#include "model-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void unet_graph_free(UnetGraph *g)
{
    free(g->params.items);
    free(g->buffers.items);
    free(g->param_inits);
    free(g->buffer_inits);
    free(g->nodes);
    memset(g, 0, sizeof *g);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    size_t n = *cap ? *cap * 2 : 32;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return 0;
    *p = q;
    *cap = n;
    return 1;
}

static int table_add(UnetParamTable *t, size_t *cap, const char *name, int ndim, const int *shape)
{
    if (!grow((void **)&t->items, cap, t->len + 1, sizeof *t->items))
        return -1;
    UnetParamInfo *p = &t->items[t->len];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->count = 1;
    for (int i = 0; i < 4; i++) {
        p->shape[i] = i < ndim ? shape[i] : 1;
        p->count *= (size_t)p->shape[i];
    }
    p->offset = t->total;
    t->total += p->count;
    return (int)t->len++;
}

int unet_graph_param(UnetGraph *g, const char *name, int ndim, int s0, int s1, int s2, int s3,
                     int init, int fan_in)
{
    const int shape[4] = { s0, s1, s2, s3 };
    if (!grow((void **)&g->param_inits, &g->param_inits_cap, g->params.len + 1,
              sizeof *g->param_inits)) {
        g->oom = 1;
        return -1;
    }
    int idx = table_add(&g->params, &g->params_cap, name, ndim, shape);
    if (idx < 0) {
        g->oom = 1;
        return -1;
    }
    g->param_inits[idx].init = init;
    g->param_inits[idx].fan_in = fan_in;
    return idx;
}

int unet_graph_buffer(UnetGraph *g, const char *name, int c, int init)
{
    const int shape[4] = { c, 1, 1, 1 };
    if (!grow((void **)&g->buffer_inits, &g->buffer_inits_cap, g->buffers.len + 1,
              sizeof *g->buffer_inits)) {
        g->oom = 1;
        return -1;
    }
    int idx = table_add(&g->buffers, &g->buffers_cap, name, 1, shape);
    if (idx < 0) {
        g->oom = 1;
        return -1;
    }
    g->buffer_inits[idx].init = init;
    g->buffer_inits[idx].fan_in = 0;
    return idx;
}

void unet_graph_conv_params(UnetGraph *g, UnetConvParams *p, const char *conv_name,
                            const char *norm_name, int cin, int cout, int k, int bias,
                            UnetNorm norm, int affine)
{
    char name[UNET_PARAM_NAME_MAX + 32];
    memset(p, 0, sizeof *p);
    p->cin = cin;
    p->cout = cout;
    p->k = k;
    p->norm = norm;
    p->b = p->gamma = p->beta = p->mean = p->var = -1;
    snprintf(name, sizeof name, "%s.weight", conv_name);
    p->w = unet_graph_param(g, name, 4, cout, cin, k, k, UNET_INIT_HE, k * k * cin);
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", conv_name);
        p->b = unet_graph_param(g, name, 1, cout, 1, 1, 1, UNET_INIT_ZERO, 0);
    }
    if (norm != UNET_NORM_NONE && affine) {
        snprintf(name, sizeof name, "%s.weight", norm_name);
        p->gamma = unet_graph_param(g, name, 1, cout, 1, 1, 1, UNET_INIT_ONE, 0);
        snprintf(name, sizeof name, "%s.bias", norm_name);
        p->beta = unet_graph_param(g, name, 1, cout, 1, 1, 1, UNET_INIT_ZERO, 0);
    }
    if (norm == UNET_NORM_BATCH) {
        snprintf(name, sizeof name, "%s.running_mean", norm_name);
        p->mean = unet_graph_buffer(g, name, cout, UNET_INIT_ZERO);
        snprintf(name, sizeof name, "%s.running_var", norm_name);
        p->var = unet_graph_buffer(g, name, cout, UNET_INIT_ONE);
    }
}

int unet_graph_node(UnetGraph *g, UnetNodeOp op, const char *name, int in0, int in1, int c)
{
    size_t cap = (size_t)g->nodes_cap;
    if (!grow((void **)&g->nodes, &cap, (size_t)g->n_nodes + 1, sizeof *g->nodes)) {
        g->oom = 1;
        return -1;
    }
    g->nodes_cap = (int)cap;
    UnetNode *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->in0 = in0;
    n->in1 = in1;
    n->c = c;
    n->p_w = n->p_b = n->p_gamma = n->p_beta = n->b_mean = n->b_var = -1;
    if (in0 >= 0)
        g->nodes[in0].consumers++;
    if (in1 >= 0)
        g->nodes[in1].consumers++;
    /* Cheap to rebuild during backward, so never kept: pooling,
     * upsampling and concatenation outputs. */
    n->recompute = op == UNET_NODE_MAXPOOL || op == UNET_NODE_UPSAMPLE || op == UNET_NODE_CONCAT;
    return g->n_nodes++;
}

int unet_graph_conv_node(UnetGraph *g, const char *name, int in, const UnetConvParams *p,
                         int stride, int pad, int act)
{
    int idx = unet_graph_node(g, UNET_NODE_CONV, name, in, -1, p->cout);
    if (idx < 0)
        return -1;
    UnetNode *n = &g->nodes[idx];
    n->conv.kernel = p->k;
    n->conv.stride = stride;
    n->conv.pad = pad;
    n->norm = p->norm;
    n->act = act;
    n->p_w = p->w;
    n->p_b = p->b;
    n->p_gamma = p->gamma;
    n->p_beta = p->beta;
    n->b_mean = p->mean;
    n->b_var = p->var;
    /* The first convolution reads only the network input (few channels),
     * so recomputing it costs little and saves its full-resolution output. */
    n->recompute = in >= 0 && g->nodes[in].op == UNET_NODE_INPUT;
    return idx;
}

UnetStatus unet_graph_build(UnetGraph *g, const UnetModelConfig *cfg, UnetError *err)
{
    memset(g, 0, sizeof *g);
    UnetStatus st = unet_model_config_validate(cfg, err);
    if (st != UNET_OK)
        return st;
    switch (cfg->arch) {
    case UNET_ARCH_UNET:
        st = unet_build_unet(g, cfg, err);
        break;
    case UNET_ARCH_LIGHT:
        st = unet_build_light(g, cfg, err);
        break;
    case UNET_ARCH_FCN:
        st = unet_build_fcn(g, cfg, err);
        break;
    default:
        st = unet_error_set(err, UNET_ERR_INVALID, "unknown model architecture %d", (int)cfg->arch);
    }
    if (st == UNET_OK && g->oom)
        st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory while building the model tables");
    if (st != UNET_OK)
        unet_graph_free(g);
    return st;
}

int unet_graph_axis_sizes(const UnetGraph *g, int in, int *sizes, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    if (in < 1) {
        if (why)
            snprintf(why, why_size, "the input side must be at least 1");
        return -1;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const UnetNode *n = &g->nodes[i];
        int a = n->in0 >= 0 ? sizes[n->in0] : in;
        int s = -1;
        switch (n->op) {
        case UNET_NODE_INPUT:
            s = in;
            break;
        case UNET_NODE_CONV:
            s = unet_conv_out_size(a, &n->conv);
            if (s < 1 || a + 2 * n->conv.pad < n->conv.kernel) {
                if (why)
                    snprintf(why, why_size, "%s would receive %d pixels, fewer than its %dx%d kernel",
                             n->name, a, n->conv.kernel, n->conv.kernel);
                return -1;
            }
            break;
        case UNET_NODE_MAXPOOL:
            if (a % 2 || a < 2) {
                if (why)
                    snprintf(why, why_size, "%s would pool an odd side of %d pixels", n->name, a);
                return -1;
            }
            s = a / 2;
            break;
        case UNET_NODE_UPCONV:
        case UNET_NODE_UPSAMPLE:
            s = 2 * a;
            break;
        case UNET_NODE_CONCAT: {
            int up = sizes[n->in1];
            if (a < up || (a - up) % 2) {
                if (why)
                    snprintf(why, why_size,
                             "%s: the skip (%d pixels) cannot be centre-cropped to the upsampled "
                             "side (%d pixels)",
                             n->name, a, up);
                return -1;
            }
            s = up;
            break;
        }
        case UNET_NODE_RESIZE:
            s = in;
            break;
        }
        sizes[i] = s;
    }
    return sizes[g->n_nodes - 1];
}
