/* model-archs.c - the three networks as layer graphs: unet (Ronneberger et
 * al. 2015, generalised), the light U-Net and the FCN baseline of the JSRT
 * chest X-ray exercise. Parameters are registered in state_dict order. */
#include "model-private.h"

#include <stdio.h>

#define NAME_MAX_LEN (UNET_PARAM_NAME_MAX - 16)

static UnetStatus require_fixed(const UnetModelConfig *cfg, const char *arch, UnetError *err)
{
    if (cfg->padding != UNET_PAD_SAME || cfg->norm != UNET_NORM_INSTANCE ||
        cfg->upsample != UNET_UP_BILINEAR)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "the %s model always uses same padding, instance norm and bilinear "
                              "upsampling (got padding %s, norm %s, upsample %s); leave those "
                              "settings at their defaults",
                              arch, unet_padding_name(cfg->padding), unet_norm_name(cfg->norm),
                              unet_upsample_name(cfg->upsample));
    return UNET_OK;
}

UnetStatus unet_build_unet(UnetGraph *g, const UnetModelConfig *cfg, UnetError *err)
{
    const int depth = cfg->depth, base = cfg->base;
    const int pad = cfg->padding == UNET_PAD_SAME ? 1 : 0;
    const int bias = cfg->norm == UNET_NORM_NONE;
    char conv[NAME_MAX_LEN], norm[NAME_MAX_LEN];
    int skips[8];
    UnetConvParams up[8], b1[8], b2[8], head;

    int cur = unet_graph_node(g, UNET_NODE_INPUT, "input", -1, -1, cfg->in_channels);
    int cin = cfg->in_channels;
    for (int i = 0; i < depth && !g->oom; i++) {
        const int c = base << i;
        UnetConvParams p1, p2;
        snprintf(conv, sizeof conv, "encoder.blocks.%d.conv_1", i);
        snprintf(norm, sizeof norm, "encoder.blocks.%d.norm_1", i);
        unet_graph_conv_params(g, &p1, conv, norm, cin, c, 3, bias, cfg->norm, 1);
        snprintf(conv, sizeof conv, "encoder.blocks.%d.conv_2", i);
        snprintf(norm, sizeof norm, "encoder.blocks.%d.norm_2", i);
        unet_graph_conv_params(g, &p2, conv, norm, c, c, 3, bias, cfg->norm, 1);
        if (i > 0) {
            snprintf(conv, sizeof conv, "encoder.pool.%d", i);
            cur = unet_graph_node(g, UNET_NODE_MAXPOOL, conv, cur, -1, cin);
        }
        snprintf(conv, sizeof conv, "encoder.blocks.%d.conv_1", i);
        cur = unet_graph_conv_node(g, conv, cur, &p1, 1, pad, 1);
        snprintf(conv, sizeof conv, "encoder.blocks.%d.conv_2", i);
        cur = unet_graph_conv_node(g, conv, cur, &p2, 1, pad, 1);
        skips[i] = cur;
        cin = c;
    }

    /* decoder level j = 0 is the deepest: it upsamples base << (depth-1) channels */
    for (int j = 0; j + 1 < depth && !g->oom; j++) {
        const int c = base << (depth - 1 - j);
        snprintf(conv, sizeof conv, "decoder.upconvs.%d", j);
        if (cfg->upsample == UNET_UP_TRANSPOSE) {
            char name[UNET_PARAM_NAME_MAX];
            up[j] = (UnetConvParams){ .cin = c, .cout = c / 2, .k = 2, .gamma = -1, .beta = -1,
                                      .mean = -1, .var = -1, .norm = UNET_NORM_NONE };
            snprintf(name, sizeof name, "%s.weight", conv);
            /* each output of a 2x2 stride-2 up-convolution sees c inputs */
            up[j].w = unet_graph_param(g, name, 4, c, c / 2, 2, 2, UNET_INIT_HE, c);
            snprintf(name, sizeof name, "%s.bias", conv);
            up[j].b = unet_graph_param(g, name, 1, c / 2, 1, 1, 1, UNET_INIT_ZERO, 0);
        } else {
            unet_graph_conv_params(g, &up[j], conv, NULL, c, c / 2, 1, 1, UNET_NORM_NONE, 0);
        }
    }
    for (int j = 0; j + 1 < depth && !g->oom; j++) {
        const int c = base << (depth - 1 - j);
        snprintf(conv, sizeof conv, "decoder.blocks.%d.conv_1", j);
        snprintf(norm, sizeof norm, "decoder.blocks.%d.norm_1", j);
        unet_graph_conv_params(g, &b1[j], conv, norm, c, c / 2, 3, bias, cfg->norm, 1);
        snprintf(conv, sizeof conv, "decoder.blocks.%d.conv_2", j);
        snprintf(norm, sizeof norm, "decoder.blocks.%d.norm_2", j);
        unet_graph_conv_params(g, &b2[j], conv, norm, c / 2, c / 2, 3, bias, cfg->norm, 1);
    }
    for (int j = 0; j + 1 < depth && !g->oom; j++) {
        const int c = base << (depth - 1 - j);
        int u;
        snprintf(conv, sizeof conv, "decoder.upconvs.%d", j);
        if (cfg->upsample == UNET_UP_TRANSPOSE) {
            u = unet_graph_node(g, UNET_NODE_UPCONV, conv, cur, -1, c / 2);
            if (u >= 0) {
                g->nodes[u].p_w = up[j].w;
                g->nodes[u].p_b = up[j].b;
            }
        } else {
            snprintf(norm, sizeof norm, "decoder.upsample.%d", j);
            int s = unet_graph_node(g, UNET_NODE_UPSAMPLE, norm, cur, -1, c);
            u = unet_graph_conv_node(g, conv, s, &up[j], 1, 0, 0);
        }
        snprintf(conv, sizeof conv, "decoder.concat.%d", j);
        cur = unet_graph_node(g, UNET_NODE_CONCAT, conv, skips[depth - 2 - j], u, c);
        snprintf(conv, sizeof conv, "decoder.blocks.%d.conv_1", j);
        cur = unet_graph_conv_node(g, conv, cur, &b1[j], 1, pad, 1);
        snprintf(conv, sizeof conv, "decoder.blocks.%d.conv_2", j);
        cur = unet_graph_conv_node(g, conv, cur, &b2[j], 1, pad, 1);
    }
    unet_graph_conv_params(g, &head, "head", NULL, base, cfg->classes, 1, 1, UNET_NORM_NONE, 0);
    unet_graph_conv_node(g, "head", cur, &head, 1, 0, 0);
    return UNET_OK;
}

UnetStatus unet_build_light(UnetGraph *g, const UnetModelConfig *cfg, UnetError *err)
{
    UnetStatus st = require_fixed(cfg, "light", err);
    if (st != UNET_OK)
        return st;
    if (cfg->depth < 1 || cfg->depth > 8)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "depth is %d; the light model needs between 1 and 8 levels",
                              cfg->depth);
    const int depth = cfg->depth, base = cfg->base;
    char conv[NAME_MAX_LEN], norm[NAME_MAX_LEN];
    int skips[8];
    UnetConvParams p;

    int cur = unet_graph_node(g, UNET_NODE_INPUT, "input", -1, -1, cfg->in_channels);
    int cin = cfg->in_channels;
    for (int i = 0; i < depth && !g->oom; i++) {
        const int c = base << i;
        snprintf(conv, sizeof conv, "encoder.blocks.%d.conv", i);
        snprintf(norm, sizeof norm, "encoder.blocks.%d.norm", i);
        unet_graph_conv_params(g, &p, conv, norm, cin, c, 3, 1, UNET_NORM_INSTANCE, 0);
        cur = unet_graph_conv_node(g, conv, cur, &p, i == 0 ? 1 : 2, 1, 1);
        skips[i] = cur;
        cin = c;
    }
    for (int j = 0; j + 1 < depth && !g->oom; j++) {
        const int cu = base << (depth - 1 - j), cs = base << (depth - 2 - j);
        snprintf(conv, sizeof conv, "decoder.blocks.%d.conv", j);
        snprintf(norm, sizeof norm, "decoder.blocks.%d.norm", j);
        unet_graph_conv_params(g, &p, conv, norm, cs + cu, cs, 3, 1, UNET_NORM_INSTANCE, 0);
        snprintf(norm, sizeof norm, "decoder.upsample.%d", j);
        int u = unet_graph_node(g, UNET_NODE_UPSAMPLE, norm, cur, -1, cu);
        snprintf(norm, sizeof norm, "decoder.concat.%d", j);
        cur = unet_graph_node(g, UNET_NODE_CONCAT, norm, skips[depth - 2 - j], u, cs + cu);
        cur = unet_graph_conv_node(g, conv, cur, &p, 1, 1, 1);
    }
    unet_graph_conv_params(g, &p, "head", NULL, base, cfg->classes, 1, 1, UNET_NORM_NONE, 0);
    unet_graph_conv_node(g, "head", cur, &p, 1, 0, 0);
    return UNET_OK;
}

UnetStatus unet_build_fcn(UnetGraph *g, const UnetModelConfig *cfg, UnetError *err)
{
    UnetStatus st = require_fixed(cfg, "fcn", err);
    if (st != UNET_OK)
        return st;
    if (cfg->depth != 4)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "depth is %d; the fcn model has a fixed depth of 4 conv groups",
                              cfg->depth);
    const int b = cfg->base;
    const int widths[4] = { b, 2 * b, 4 * b, 4 * b };
    const int strides[4] = { 2, 2, 1, 1 };
    char conv[NAME_MAX_LEN], norm[NAME_MAX_LEN];
    UnetConvParams p;

    int cur = unet_graph_node(g, UNET_NODE_INPUT, "input", -1, -1, cfg->in_channels);
    int cin = cfg->in_channels;
    for (int i = 0; i < 4 && !g->oom; i++) {
        snprintf(conv, sizeof conv, "blocks.%d.conv", i);
        snprintf(norm, sizeof norm, "blocks.%d.norm", i);
        unet_graph_conv_params(g, &p, conv, norm, cin, widths[i], 3, 1, UNET_NORM_INSTANCE, 0);
        cur = unet_graph_conv_node(g, conv, cur, &p, strides[i], 1, 1);
        cin = widths[i];
    }
    unet_graph_conv_params(g, &p, "head", NULL, cin, cfg->classes, 3, 1, UNET_NORM_NONE, 0);
    cur = unet_graph_conv_node(g, "head", cur, &p, 1, 1, 0);
    unet_graph_node(g, UNET_NODE_RESIZE, "resize", cur, -1, cfg->classes);
    return UNET_OK;
}
