/* model-private.h - the small layer-graph core shared by the model files:
 * parameter registration, nodes, and the builders of each architecture. */
#ifndef UNET_MODEL_PRIVATE_H
#define UNET_MODEL_PRIVATE_H

#include "model.h"

typedef enum UnetNodeOp {
    UNET_NODE_INPUT = 0,
    UNET_NODE_CONV,     /* conv [+ norm] [+ activation] */
    UNET_NODE_MAXPOOL,  /* 2x2, stride 2 */
    UNET_NODE_UPCONV,   /* 2x2 stride-2 transposed convolution */
    UNET_NODE_UPSAMPLE, /* bilinear x2 */
    UNET_NODE_CONCAT,   /* concat(centre_crop(in0), in1) */
    UNET_NODE_RESIZE,   /* bilinear to the network input's size */
} UnetNodeOp;

enum { UNET_INIT_HE = 0, UNET_INIT_ZERO, UNET_INIT_ONE };

typedef struct UnetNode {
    UnetNodeOp op;
    char name[UNET_PARAM_NAME_MAX];
    int in0, in1;          /* producer nodes, -1 when unused */
    int c;                 /* output channels */
    UnetConvDesc conv;
    UnetNorm norm;         /* UNET_NORM_NONE / BATCH / INSTANCE */
    int act;               /* 1: activation after conv (and norm) */
    int p_w, p_b, p_gamma, p_beta; /* parameter indices, -1 when absent */
    int b_mean, b_var;     /* buffer indices (batch norm), -1 when absent */
    int recompute;         /* output dropped after forward, rebuilt in backward */
    int consumers;         /* nodes reading this one */

    /* geometry for the prepared input */
    int h, w;

    /* run-time state */
    UnetTensor out, z, grad;          /* z: pre-norm conv output */
    UnetTensor mean, invstd;          /* norm statistics, cached per shape */
    UnetTensor scratch_mean, scratch_var; /* running stats sink for a recompute */
    int out_live, z_live, grad_live, grad_borrowed;
    int mean_live, invstd_live, smean_live, svar_live;
    int keep;              /* training forward keeps out for backward */
    int keep_z;            /* ... keeps z, from which out is rebuilt */
    int fwd_left;          /* consumers not yet run in this forward */
    int need_left;         /* consumers whose backward still reads out */
    int bwd_done;
} UnetNode;

typedef struct UnetSliceInit {
    int init;   /* UNET_INIT_* */
    int fan_in; /* He: std = sqrt(2 / fan_in) */
} UnetSliceInit;

typedef struct UnetGraph {
    UnetParamTable params, buffers;
    UnetSliceInit *param_inits, *buffer_inits; /* parallel to the tables */
    size_t params_cap, buffers_cap, param_inits_cap, buffer_inits_cap;
    UnetNode *nodes;
    int n_nodes, nodes_cap;
    int oom; /* an allocation failed while building */
} UnetGraph;

/* Conv parameters registered ahead of the node that uses them, so the
 * table follows PyTorch's state_dict order whatever the execution order. */
typedef struct UnetConvParams {
    int w, b, gamma, beta, mean, var;
    int cin, cout, k;
    UnetNorm norm;
} UnetConvParams;

void unet_graph_free(UnetGraph *g);
/* Registers a slice; returns its index or -1 (out of memory, g->oom set). */
int unet_graph_param(UnetGraph *g, const char *name, int ndim, int s0, int s1, int s2, int s3,
                     int init, int fan_in);
int unet_graph_buffer(UnetGraph *g, const char *name, int c, int init);
/* conv_name.weight [cout,cin,k,k], conv_name.bias (when bias), then
 * norm_name.weight|bias (affine norms) and norm_name.running_mean|var (batch). */
void unet_graph_conv_params(UnetGraph *g, UnetConvParams *p, const char *conv_name,
                            const char *norm_name, int cin, int cout, int k, int bias,
                            UnetNorm norm, int affine);
int unet_graph_node(UnetGraph *g, UnetNodeOp op, const char *name, int in0, int in1, int c);
int unet_graph_conv_node(UnetGraph *g, const char *name, int in, const UnetConvParams *p,
                         int stride, int pad, int act);

/* Architecture builders: fill an empty graph (node 0 is the input). */
UnetStatus unet_build_unet(UnetGraph *g, const UnetModelConfig *cfg, UnetError *err);
UnetStatus unet_build_light(UnetGraph *g, const UnetModelConfig *cfg, UnetError *err);
UnetStatus unet_build_fcn(UnetGraph *g, const UnetModelConfig *cfg, UnetError *err);
UnetStatus unet_graph_build(UnetGraph *g, const UnetModelConfig *cfg, UnetError *err);

/* Output sizes of every node along one axis for input side in, written into
 * sizes[n_nodes]; returns the network's output side or -1 with the reason
 * in why (may be NULL). */
int unet_graph_axis_sizes(const UnetGraph *g, int in, int *sizes, char *why, size_t why_size);

/* A backend that allocates nothing and computes nothing: tensors get shapes
 * and NULL data, every op succeeds. The memory estimate runs the real
 * schedule on it. */
UnetBackend *unet_backend_null_new(UnetError *err);

#endif
