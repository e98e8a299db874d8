/* op-harness.c - the op comparison harness: a case table run on a test and a reference backend. */
#include "op-harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

/* ---- the case table ------------------------------------------------------------- */

typedef enum CaseKind {
    K_TENSOR,
    K_CONV,
    K_UPCONV,
    K_MAXPOOL,
    K_UPSAMPLE,
    K_RESIZE,
    K_CROP,
    K_ACT,
    K_SIGMOID,
    K_SOFTMAX,
    K_BATCHNORM,
    K_INSTNORM,
    K_LOSS,
    K_SGD,
    K_ADAM,
} CaseKind;

enum {
    F_BIAS = 1 << 0,    /* conv/upconv bias */
    F_ACC = 1 << 1,     /* backward accumulate (crop: accumulate_skip) */
    F_ACC_UP = 1 << 2,  /* crop: accumulate_up */
    F_NODX = 1 << 3,    /* conv/upconv backward with dx = NULL (first layer) */
    F_INPLACE = 1 << 4, /* activation: y == x and dx == dy */
    F_TRAIN = 1 << 5,   /* batch norm training mode */
    F_AFFINE = 1 << 6,  /* instance norm gamma/beta */
    F_WEIGHT = 1 << 7,  /* loss: pixel weights */
    F_CLASSW = 1 << 8,  /* loss: class weights */
    F_NOGRAD = 1 << 9,  /* loss: dlogits = NULL */
    F_TIES = 1 << 10,   /* maxpool: integer inputs, many equal maxima */
    F_NESTEROV = 1 << 11,
    F_DECOUPLED = 1 << 12, /* AdamW */
    F_NOSKIP = 1 << 13,    /* crop backward: dskip = NULL */
    F_NOUP = 1 << 14,      /* crop backward: dup = NULL */
};

typedef struct OpCase {
    CaseKind kind;
    int n, c, h, w; /* input shape (optimizers: count = n*c*h*w) */
    int co;         /* conv/upconv output channels; crop: up channels; loss: classes */
    int oh, ow;     /* resize target size; crop: up size */
    int k, stride, pad;
    int flags;
    int act;     /* UnetActivation, UnetLossKind for losses */
    float slope; /* leaky slope; loss: grad_scale; optimizers: momentum */
} OpCase;

#define MAX_CASES 160

typedef struct CaseTable {
    OpCase c[MAX_CASES];
    int len;
} CaseTable;

static void add(CaseTable *t, OpCase c)
{
    if (t->len < MAX_CASES)
        t->c[t->len++] = c;
}

static void add_conv(CaseTable *t, int n, int c, int h, int w, int co, int k, int s, int pad,
                     int flags)
{
    add(t, (OpCase){ .kind = K_CONV,
                     .n = n,
                     .c = c,
                     .h = h,
                     .w = w,
                     .co = co,
                     .k = k,
                     .stride = s,
                     .pad = pad,
                     .flags = flags });
}

static void add_shape(CaseTable *t, CaseKind kind, int n, int c, int h, int w, int flags)
{
    add(t, (OpCase){ .kind = kind, .n = n, .c = c, .h = h, .w = w, .flags = flags });
}

static void add_upconv(CaseTable *t, int n, int c, int h, int w, int co, int flags)
{
    add(t, (OpCase){ .kind = K_UPCONV, .n = n, .c = c, .h = h, .w = w, .co = co, .flags = flags });
}

static void add_resize(CaseTable *t, int n, int c, int h, int w, int oh, int ow, int flags)
{
    add(t,
        (OpCase){
            .kind = K_RESIZE, .n = n, .c = c, .h = h, .w = w, .oh = oh, .ow = ow, .flags = flags });
}

/* skip [n,cs,hs,ws] cropped to up [n,cu,h,w]. */
static void add_crop(CaseTable *t, int n, int cs, int hs, int ws, int cu, int h, int w, int flags)
{
    add(t, (OpCase){ .kind = K_CROP,
                     .n = n,
                     .c = cs,
                     .h = hs,
                     .w = ws,
                     .co = cu,
                     .oh = h,
                     .ow = w,
                     .flags = flags });
}

static void add_act(CaseTable *t, int n, int c, int h, int w, UnetActivation act, float slope,
                    int flags)
{
    add(t, (OpCase){ .kind = K_ACT,
                     .n = n,
                     .c = c,
                     .h = h,
                     .w = w,
                     .act = act,
                     .slope = slope,
                     .flags = flags });
}

static void add_loss(CaseTable *t, UnetLossKind kind, int n, int k, int h, int w, float scale,
                     int flags)
{
    add(t, (OpCase){ .kind = K_LOSS,
                     .n = n,
                     .co = k,
                     .h = h,
                     .w = w,
                     .act = kind,
                     .slope = scale,
                     .flags = flags });
}

static void add_optimizer(CaseTable *t, CaseKind kind, int count, float momentum, int flags)
{
    add(t,
        (OpCase){
            .kind = kind, .n = 1, .c = 1, .h = 1, .w = count, .slope = momentum, .flags = flags });
}

static void build_table(CaseTable *t)
{
    t->len = 0;
    add_shape(t, K_TENSOR, 1, 3, 7, 5, 0);
    add_shape(t, K_TENSOR, 2, 8, 4, 6, 0);
    add_shape(t, K_TENSOR, 2, 21, 3, 5, 0);
    add_shape(t, K_TENSOR, 1, 32, 5, 3, 0);

    /* The U-Net's convolutions: first layer (dx NULL), valid and same, 1x1 head. */
    add_conv(t, 1, 1, 17, 13, 8, 3, 1, 1, F_BIAS | F_NODX);
    add_conv(t, 2, 1, 14, 11, 16, 3, 1, 0, F_BIAS | F_NODX);
    add_conv(t, 2, 3, 15, 12, 5, 3, 1, 0, F_BIAS);
    add_conv(t, 2, 8, 12, 10, 16, 3, 1, 1, F_ACC);
    add_conv(t, 1, 16, 10, 10, 16, 3, 1, 0, F_BIAS | F_ACC);
    add_conv(t, 2, 24, 8, 9, 32, 3, 1, 1, F_BIAS);
    add_conv(t, 1, 32, 7, 6, 8, 3, 1, 0, 0);
    add_conv(t, 2, 16, 9, 7, 3, 1, 1, 0, F_BIAS);
    add_conv(t, 1, 64, 5, 5, 2, 1, 1, 0, F_BIAS | F_ACC);
    /* Stride 2 (strided downsampling variants), odd and even sizes. */
    add_conv(t, 1, 16, 13, 11, 8, 3, 2, 1, F_BIAS);
    add_conv(t, 2, 5, 11, 14, 7, 3, 2, 0, F_BIAS | F_ACC);
    add_conv(t, 2, 8, 12, 12, 16, 3, 2, 1, 0);
    add_conv(t, 1, 8, 10, 9, 8, 1, 2, 0, F_ACC);

    /* Random shapes, fixed seed so a failure can be replayed. */
    TestRng r;
    test_rng_seed(&r, 20240601);
    for (int i = 0; i < 6; i++) {
        int k = test_rng_uniform(&r, 0, 1) < 0.7f ? 3 : 1;
        int s = test_rng_uniform(&r, 0, 1) < 0.7f ? 1 : 2;
        int pad = test_rng_uniform(&r, 0, 1) < 0.5f ? 0 : k / 2;
        int n = 1 + (int)test_rng_uniform(&r, 0, 1.999f);
        int c = 1 + (int)test_rng_uniform(&r, 0, 20);
        int co = 1 + (int)test_rng_uniform(&r, 0, 20);
        int h = k + (int)test_rng_uniform(&r, 0, 12);
        int w = k + (int)test_rng_uniform(&r, 0, 12);
        int flags = (i & 1 ? F_BIAS : 0) | (i & 2 ? F_ACC : 0);
        add_conv(t, n, c, h, w, co, k, s, pad, flags);
    }

    add_upconv(t, 1, 16, 5, 7, 8, F_BIAS);
    add_upconv(t, 2, 3, 4, 3, 5, F_ACC);
    add_upconv(t, 1, 8, 6, 6, 16, F_BIAS | F_ACC);
    add_upconv(t, 2, 32, 3, 5, 16, F_BIAS);
    add_upconv(t, 1, 24, 1, 1, 7, F_BIAS | F_NODX);

    add_shape(t, K_MAXPOOL, 1, 3, 9, 7, 0);
    add_shape(t, K_MAXPOOL, 2, 8, 8, 10, F_ACC);
    add_shape(t, K_MAXPOOL, 1, 16, 5, 5, 0);
    add_shape(t, K_MAXPOOL, 2, 5, 6, 7, F_TIES);
    add_shape(t, K_MAXPOOL, 1, 16, 8, 8, F_TIES | F_ACC);

    add_shape(t, K_UPSAMPLE, 1, 3, 5, 7, 0);
    add_shape(t, K_UPSAMPLE, 2, 8, 4, 4, F_ACC);
    add_shape(t, K_UPSAMPLE, 1, 16, 1, 3, 0);
    add_shape(t, K_UPSAMPLE, 2, 1, 6, 5, F_ACC);

    add_resize(t, 1, 3, 5, 7, 17, 9, 0);
    add_resize(t, 2, 1, 16, 12, 7, 5, F_ACC);
    add_resize(t, 1, 8, 6, 6, 6, 6, 0);
    add_resize(t, 2, 8, 3, 4, 12, 16, 0);
    add_resize(t, 1, 16, 9, 4, 4, 11, F_ACC);

    /* Valid padding: skip 2*k larger than up, odd differences floor the offset. */
    add_crop(t, 1, 3, 17, 13, 5, 9, 9, 0);
    add_crop(t, 2, 8, 10, 10, 8, 10, 10, F_ACC | F_ACC_UP);
    add_crop(t, 1, 16, 9, 8, 8, 4, 5, F_ACC);
    add_crop(t, 2, 64, 64, 64, 64, 56, 56, F_ACC_UP);
    add_crop(t, 1, 5, 12, 11, 3, 8, 7, F_NOSKIP);
    add_crop(t, 2, 4, 7, 9, 6, 3, 4, F_NOUP | F_ACC);

    add_act(t, 2, 3, 7, 5, UNET_ACT_RELU, 0.0f, 0);
    add_act(t, 1, 8, 6, 6, UNET_ACT_RELU, 0.0f, F_ACC);
    add_act(t, 2, 16, 5, 3, UNET_ACT_RELU, 0.0f, F_INPLACE);
    add_act(t, 1, 5, 9, 4, UNET_ACT_LEAKY, 0.01f, 0);
    add_act(t, 2, 8, 3, 3, UNET_ACT_LEAKY, 0.2f, F_ACC);
    add_act(t, 1, 24, 4, 5, UNET_ACT_LEAKY, 0.1f, F_INPLACE);

    add_shape(t, K_SIGMOID, 2, 1, 7, 9, 0);
    add_shape(t, K_SIGMOID, 1, 8, 3, 5, 0);
    add_shape(t, K_SOFTMAX, 2, 4, 5, 6, 0);
    add_shape(t, K_SOFTMAX, 1, 3, 7, 3, 0);
    add_shape(t, K_SOFTMAX, 1, 16, 2, 5, 0);
    add_shape(t, K_SOFTMAX, 2, 1, 3, 3, 0);

    add_shape(t, K_BATCHNORM, 2, 3, 7, 5, F_TRAIN);
    add_shape(t, K_BATCHNORM, 1, 8, 6, 6, F_TRAIN | F_ACC);
    add_shape(t, K_BATCHNORM, 2, 16, 4, 5, F_TRAIN);
    add_shape(t, K_BATCHNORM, 2, 16, 4, 4, 0);
    add_shape(t, K_BATCHNORM, 1, 5, 3, 7, 0);

    add_shape(t, K_INSTNORM, 2, 3, 5, 7, F_AFFINE);
    add_shape(t, K_INSTNORM, 2, 8, 4, 6, 0);
    add_shape(t, K_INSTNORM, 1, 16, 9, 9, F_AFFINE | F_ACC);
    add_shape(t, K_INSTNORM, 1, 5, 3, 2, F_ACC);

    add_loss(t, UNET_LOSS_BCE, 2, 1, 7, 9, 1.0f, F_WEIGHT);
    add_loss(t, UNET_LOSS_BCE, 1, 1, 6, 5, 0.5f, 0);
    add_loss(t, UNET_LOSS_BCE, 2, 1, 4, 4, 1.0f, F_NOGRAD);
    add_loss(t, UNET_LOSS_SOFTMAX_CE, 2, 3, 6, 5, 1.0f, F_WEIGHT | F_CLASSW);
    add_loss(t, UNET_LOSS_SOFTMAX_CE, 1, 2, 7, 7, 1.0f, 0);
    add_loss(t, UNET_LOSS_SOFTMAX_CE, 2, 5, 3, 8, 0.25f, F_WEIGHT);
    add_loss(t, UNET_LOSS_SOFTMAX_CE, 1, 8, 4, 4, 1.0f, F_CLASSW);
    add_loss(t, UNET_LOSS_DICE, 2, 1, 8, 7, 1.0f, F_WEIGHT);
    add_loss(t, UNET_LOSS_DICE, 1, 1, 5, 5, 0.5f, 0);
    add_loss(t, UNET_LOSS_DICE, 2, 4, 5, 6, 1.0f, 0);
    add_loss(t, UNET_LOSS_DICE, 1, 3, 6, 4, 1.0f, F_WEIGHT);

    add_optimizer(t, K_SGD, 1001, 0.9f, 0);
    add_optimizer(t, K_SGD, 1000, 0.99f, F_NESTEROV);
    add_optimizer(t, K_SGD, 17, 0.0f, 0);
    add_optimizer(t, K_ADAM, 1001, 0.0f, 0);
    add_optimizer(t, K_ADAM, 1000, 0.0f, F_DECOUPLED);
}

static const char *kind_name(CaseKind k)
{
    switch (k) {
    case K_TENSOR: return "tensor";
    case K_CONV: return "conv2d";
    case K_UPCONV: return "upconv2x2";
    case K_MAXPOOL: return "maxpool2x2";
    case K_UPSAMPLE: return "upsample2x";
    case K_RESIZE: return "resize_bilinear";
    case K_CROP: return "crop_concat";
    case K_ACT: return "activation";
    case K_SIGMOID: return "sigmoid";
    case K_SOFTMAX: return "softmax";
    case K_BATCHNORM: return "batchnorm";
    case K_INSTNORM: return "instancenorm";
    case K_LOSS: return "loss";
    case K_SGD: return "sgd";
    case K_ADAM: return "adam";
    }
    return "?";
}

static void case_name(const OpCase *c, char *buf, size_t size)
{
    const char *op = kind_name(c->kind);
    const char *acc = c->flags & F_ACC ? " acc" : "";
    switch (c->kind) {
    case K_CONV:
        snprintf(buf, size, "%s k%d s%d p%d x[%d,%d,%d,%d]->%d%s%s%s", op, c->k, c->stride, c->pad,
                 c->n, c->c, c->h, c->w, c->co, c->flags & F_BIAS ? " bias" : "",
                 c->flags & F_NODX ? " nodx" : "", acc);
        break;
    case K_UPCONV:
        snprintf(buf, size, "%s x[%d,%d,%d,%d]->%d%s%s%s", op, c->n, c->c, c->h, c->w, c->co,
                 c->flags & F_BIAS ? " bias" : "", c->flags & F_NODX ? " nodx" : "", acc);
        break;
    case K_RESIZE:
        snprintf(buf, size, "%s x[%d,%d,%d,%d]->%dx%d%s", op, c->n, c->c, c->h, c->w, c->oh, c->ow,
                 acc);
        break;
    case K_CROP:
        snprintf(buf, size, "%s skip[%d,%d,%d,%d] up[%d,%d,%d,%d]%s%s%s%s", op, c->n, c->c, c->h,
                 c->w, c->n, c->co, c->oh, c->ow, acc, c->flags & F_ACC_UP ? " accup" : "",
                 c->flags & F_NOSKIP ? " noskip" : "", c->flags & F_NOUP ? " noup" : "");
        break;
    case K_ACT:
        snprintf(buf, size, "%s %s%s x[%d,%d,%d,%d]%s%s", op,
                 c->act == UNET_ACT_LEAKY ? "leaky" : "relu",
                 c->act == UNET_ACT_LEAKY ? (c->slope < 0.05f   ? "0.01"
                                             : c->slope < 0.15f ? "0.1"
                                                                : "0.2")
                                          : "",
                 c->n, c->c, c->h, c->w, c->flags & F_INPLACE ? " inplace" : "", acc);
        break;
    case K_BATCHNORM:
    case K_INSTNORM:
        snprintf(buf, size, "%s %s x[%d,%d,%d,%d]%s", op,
                 c->kind == K_INSTNORM ? (c->flags & F_AFFINE ? "affine" : "plain")
                                       : (c->flags & F_TRAIN ? "train" : "eval"),
                 c->n, c->c, c->h, c->w, acc);
        break;
    case K_LOSS:
        snprintf(buf, size, "%s %s K%d x[%d,%d,%d,%d]%s%s%s scale%g", op,
                 c->act == UNET_LOSS_BCE          ? "bce"
                 : c->act == UNET_LOSS_SOFTMAX_CE ? "ce"
                                                  : "dice",
                 c->co, c->n, c->co, c->h, c->w, c->flags & F_WEIGHT ? " weighted" : "",
                 c->flags & F_CLASSW ? " classw" : "", c->flags & F_NOGRAD ? " nograd" : "",
                 (double)c->slope);
        break;
    case K_SGD:
        snprintf(buf, size, "%s n%d momentum%g%s", op, c->w, (double)c->slope,
                 c->flags & F_NESTEROV ? " nesterov" : "");
        break;
    case K_ADAM:
        snprintf(buf, size, "%s n%d%s", op, c->w, c->flags & F_DECOUPLED ? " adamw" : "");
        break;
    default:
        snprintf(buf, size, "%s x[%d,%d,%d,%d]%s%s", op, c->n, c->c, c->h, c->w,
                 c->flags & F_TIES ? " ties" : "", acc);
        break;
    }
}

static int matches(const char *name, const char *filter)
{
    if (!filter || !*filter)
        return 1;
    const char *p = filter;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) {
            char part[128];
            if (len >= sizeof part)
                len = sizeof part - 1;
            memcpy(part, p, len);
            part[len] = '\0';
            if (strstr(name, part))
                return 1;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* ---- running one case on both backends ---------------------------------------------- */

enum { TB = 0, RB = 1 }; /* test backend, reference backend */

/* One logical tensor living on both backends. */
typedef struct Pair {
    UnetTensor t[2];
    float *buf[2]; /* parameter buffers behind tensor_view; NULL for activations */
    int used;
} Pair;

#define MAX_PAIRS 24
#define MAX_HOST 64

typedef struct Harness {
    UnetBackend *be[2];
    Pair pool[MAX_PAIRS]; /* the tensors of the current case */
    int npool;
    double tol;
    TestRng rng;
    float *host[MAX_HOST];
    int nhost;
    /* verdict of the current case */
    int failed;
    double worst, worst_nmse;
    char worst_what[32];
    char detail[768];
    char why[UNET_ERROR_MESSAGE_MAX + 128];
} Harness;

static void fail(Harness *h, const char *fmt, ...) UNET_PRINTF(2, 3);
static void fail(Harness *h, const char *fmt, ...)
{
    if (!h->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->why, sizeof h->why, fmt, ap);
        va_end(ap);
    }
    h->failed = 1;
}

/* 1 when the call succeeded; otherwise records why the case failed. */
static int ok(Harness *h, int b, UnetStatus st, const char *call)
{
    if (st == UNET_OK)
        return 1;
    fail(h, "%s backend '%s': %s failed (%s): %s", b == TB ? "test" : "reference", h->be[b]->name,
         call, unet_status_name(st), h->be[b]->error.message);
    return 0;
}

static float *host_array(Harness *h, size_t count)
{
    float *p = calloc(count ? count : 1, sizeof(float));
    if (!p || h->nhost == MAX_HOST) {
        free(p);
        fail(h, "harness: out of host memory or scratch slots");
        return NULL;
    }
    h->host[h->nhost++] = p;
    return p;
}

static float *rand_array(Harness *h, size_t count, float lo, float hi)
{
    float *p = host_array(h, count);
    if (p)
        test_fill_uniform(&h->rng, p, count, lo, hi);
    return p;
}

/* Activation tensor (tensor_init + tensor_upload) holding host on both backends. */
static int pair_act(Harness *h, Pair *p, int n, int c, int hh, int w, const float *host)
{
    if (!host)
        return 0;
    for (int b = 0; b < 2; b++) {
        UnetBackend *be = h->be[b];
        if (!ok(h, b, be->tensor_init(be, &p->t[b], n, c, hh, w), "tensor_init"))
            return 0;
        p->used = 1;
        if (!ok(h, b, be->tensor_upload(be, &p->t[b], host), "tensor_upload"))
            return 0;
    }
    return 1;
}

/* Parameter-style tensor: a plain buffer (buffer_alloc, buffer_upload) seen through tensor_view. */
static int pair_param(Harness *h, Pair *p, int n, int c, int hh, int w, const float *host)
{
    if (!host)
        return 0;
    size_t count = (size_t)n * c * hh * w;
    for (int b = 0; b < 2; b++) {
        UnetBackend *be = h->be[b];
        p->buf[b] = be->buffer_alloc(be, count);
        if (!p->buf[b])
            return ok(h, b, be->error.status ? be->error.status : UNET_ERR_NOMEM, "buffer_alloc");
        p->used = 1;
        if (!ok(h, b, be->buffer_upload(be, p->buf[b], host, count), "buffer_upload"))
            return 0;
        be->tensor_view(be, &p->t[b], p->buf[b], n, c, hh, w);
    }
    return 1;
}

/* A fresh, empty pair from the case's pool (a spare one when the pool is spent). */
static Pair *P(Harness *h)
{
    static Pair spare;
    if (h->npool == MAX_PAIRS) {
        fail(h, "harness: more than %d tensors in one case", MAX_PAIRS);
        memset(&spare, 0, sizeof spare);
        return &spare;
    }
    Pair *p = &h->pool[h->npool++];
    memset(p, 0, sizeof *p);
    return p;
}

static UnetTensor *T(Pair *p, int b)
{
    return p->used ? &p->t[b] : NULL;
}

static void pair_free(Harness *h, Pair *p)
{
    for (int b = 0; b < 2; b++) {
        UnetBackend *be = h->be[b];
        if (p->t[b].data || p->t[b].priv)
            be->tensor_release(be, &p->t[b]);
        if (p->buf[b])
            be->buffer_free(be, p->buf[b]);
    }
    memset(p, 0, sizeof *p);
}

static void case_reset(Harness *h)
{
    for (int i = 0; i < h->npool; i++)
        pair_free(h, &h->pool[i]);
    h->npool = 0;
    for (int i = 0; i < h->nhost; i++)
        free(h->host[i]);
    h->nhost = 0;
}

static void add_detail(Harness *h, const char *fmt, ...) UNET_PRINTF(2, 3);
static void add_detail(Harness *h, const char *fmt, ...)
{
    size_t len = strlen(h->detail);
    if (len + 1 >= sizeof h->detail)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->detail + len, sizeof h->detail - len, fmt, ap);
    va_end(ap);
}

/* Compares two host arrays (a: test, r: reference) and folds the result into the case. */
static void compare_arrays(Harness *h, const char *what, const float *a, const float *r,
                           size_t count)
{
    double scale = 0.0, maxd = 0.0, se = 0.0, sr = 0.0;
    size_t where = 0;
    int nan = 0;
    for (size_t i = 0; i < count; i++)
        scale = fmax(scale, fabs((double)r[i]));
    if (scale == 0.0)
        scale = 1.0;
    for (size_t i = 0; i < count; i++) {
        double d = (double)a[i] - (double)r[i];
        if (isnan(d) || isinf(d)) {
            if (!nan)
                where = i;
            nan = 1;
            continue;
        }
        if (fabs(d) > maxd) {
            maxd = fabs(d);
            if (!nan)
                where = i;
        }
        se += d * d;
        sr += (double)r[i] * r[i];
    }
    double max = nan ? INFINITY : maxd / scale;
    double nmse = nan ? INFINITY : (sr > 0.0 ? se / sr : se);
    add_detail(h, " %s=%.1e", what, max);
    if (max > h->worst || h->worst_what[0] == '\0') {
        h->worst = max;
        snprintf(h->worst_what, sizeof h->worst_what, "%s", what);
    }
    if (nmse > h->worst_nmse)
        h->worst_nmse = nmse;
    if (!(max <= h->tol))
        fail(h, "%s differs: max error %.3e > tol %.1e at index %zu (test %.8g, reference %.8g)",
             what, max, h->tol, where, (double)a[where], (double)r[where]);
}

/* Downloads p from both backends and compares. */
static void compare_pair(Harness *h, const char *what, Pair *p)
{
    if (h->failed || !p->used)
        return;
    const UnetTensor *t = &p->t[RB];
    size_t count = unet_tensor_numel(t);
    float *host[2];
    for (int b = 0; b < 2; b++) {
        UnetBackend *be = h->be[b];
        host[b] = host_array(h, count);
        if (!host[b])
            return;
        UnetStatus st = p->buf[b] ? be->buffer_download(be, host[b], p->buf[b], count)
                                  : be->tensor_download(be, host[b], &p->t[b]);
        if (!ok(h, b, st, p->buf[b] ? "buffer_download" : "tensor_download"))
            return;
    }
    compare_arrays(h, what, host[TB], host[RB], count);
}

/* Garbage that must be overwritten (or added to) by the op. */
static float *garbage(Harness *h, size_t count)
{
    return rand_array(h, count, -3.0f, 3.0f);
}

#define SIZE4(n, c, hh, w) ((size_t)(n) * (size_t)(c) * (size_t)(hh) * (size_t)(w))

/* Runs call on both backends (be and b are in scope in call); leaves the case on failure. */
#define BOTH(call, label)             \
    for (int b = 0; b < 2; b++) {     \
        UnetBackend *be = h->be[b];   \
        if (!ok(h, b, (call), label)) \
            return;                   \
    }

static void run_tensor(Harness *h, const OpCase *c)
{
    Pair *x = P(h), *f = P(h), *p = P(h);
    size_t count = SIZE4(c->n, c->c, c->h, c->w);
    if (!pair_act(h, x, c->n, c->c, c->h, c->w, rand_array(h, count, -5, 5)))
        return;
    compare_pair(h, "upload", x);
    if (!pair_act(h, f, c->n, c->c, c->h, c->w, garbage(h, count)))
        return;
    BOTH(be->tensor_fill(be, T(f, b), 0.375f), "tensor_fill");
    compare_pair(h, "fill", f);
    if (!pair_param(h, p, c->n, c->c, c->h, c->w, garbage(h, count)))
        return;
    BOTH(be->buffer_fill(be, p->buf[b], count, -1.25f), "buffer_fill");
    BOTH(be->synchronize(be), "synchronize");
    compare_pair(h, "buffer_fill", p);
}

static void run_conv(Harness *h, const OpCase *c)
{
    Pair *x = P(h), *w = P(h), *bias = P(h), *y = P(h), *dy = P(h), *dx = P(h), *dw = P(h),
         *db = P(h);
    UnetConvDesc d = { c->k, c->stride, c->pad };
    int ho = unet_conv_out_size(c->h, &d), wo = unet_conv_out_size(c->w, &d);
    float bound = 1.0f / sqrtf((float)(c->c * c->k * c->k));
    int acc = !!(c->flags & F_ACC);
    if (!pair_act(h, x, c->n, c->c, c->h, c->w,
                  rand_array(h, SIZE4(c->n, c->c, c->h, c->w), -1, 1)) ||
        !pair_param(h, w, c->co, c->c, c->k, c->k,
                    rand_array(h, SIZE4(c->co, c->c, c->k, c->k), -bound, bound)) ||
        ((c->flags & F_BIAS) &&
         !pair_param(h, bias, c->co, 1, 1, 1, rand_array(h, c->co, -0.5f, 0.5f))) ||
        !pair_act(h, y, c->n, c->co, ho, wo, garbage(h, SIZE4(c->n, c->co, ho, wo))))
        return;
    BOTH(be->conv2d_forward(be, T(y, b), T(x, b), T(w, b), T(bias, b), &d), "conv2d_forward");
    compare_pair(h, "y", y);
    if (!pair_act(h, dy, c->n, c->co, ho, wo, rand_array(h, SIZE4(c->n, c->co, ho, wo), -1, 1)) ||
        (!(c->flags & F_NODX) &&
         !pair_act(h, dx, c->n, c->c, c->h, c->w, garbage(h, SIZE4(c->n, c->c, c->h, c->w)))) ||
        !pair_param(h, dw, c->co, c->c, c->k, c->k, garbage(h, SIZE4(c->co, c->c, c->k, c->k))) ||
        ((c->flags & F_BIAS) && !pair_param(h, db, c->co, 1, 1, 1, garbage(h, c->co))))
        return;
    BOTH(be->conv2d_backward(be, T(dx, b), T(dw, b), T(db, b), T(dy, b), T(x, b), T(w, b), &d, acc),
         "conv2d_backward");
    compare_pair(h, "dx", dx);
    compare_pair(h, "dw", dw);
    compare_pair(h, "db", db);
}

static void run_upconv(Harness *h, const OpCase *c)
{
    Pair *x = P(h), *w = P(h), *bias = P(h), *y = P(h), *dy = P(h), *dx = P(h), *dw = P(h),
         *db = P(h);
    int ho = 2 * c->h, wo = 2 * c->w;
    float bound = 1.0f / sqrtf((float)(c->co * 4));
    int acc = !!(c->flags & F_ACC);
    if (!pair_act(h, x, c->n, c->c, c->h, c->w,
                  rand_array(h, SIZE4(c->n, c->c, c->h, c->w), -1, 1)) ||
        !pair_param(h, w, c->c, c->co, 2, 2,
                    rand_array(h, SIZE4(c->c, c->co, 2, 2), -bound, bound)) ||
        ((c->flags & F_BIAS) &&
         !pair_param(h, bias, c->co, 1, 1, 1, rand_array(h, c->co, -0.5f, 0.5f))) ||
        !pair_act(h, y, c->n, c->co, ho, wo, garbage(h, SIZE4(c->n, c->co, ho, wo))))
        return;
    BOTH(be->upconv2x2_forward(be, T(y, b), T(x, b), T(w, b), T(bias, b)), "upconv2x2_forward");
    compare_pair(h, "y", y);
    if (!pair_act(h, dy, c->n, c->co, ho, wo, rand_array(h, SIZE4(c->n, c->co, ho, wo), -1, 1)) ||
        (!(c->flags & F_NODX) &&
         !pair_act(h, dx, c->n, c->c, c->h, c->w, garbage(h, SIZE4(c->n, c->c, c->h, c->w)))) ||
        !pair_param(h, dw, c->c, c->co, 2, 2, garbage(h, SIZE4(c->c, c->co, 2, 2))) ||
        ((c->flags & F_BIAS) && !pair_param(h, db, c->co, 1, 1, 1, garbage(h, c->co))))
        return;
    BOTH(be->upconv2x2_backward(be, T(dx, b), T(dw, b), T(db, b), T(dy, b), T(x, b), T(w, b), acc),
         "upconv2x2_backward");
    compare_pair(h, "dx", dx);
    compare_pair(h, "dw", dw);
    compare_pair(h, "db", db);
}

static void run_maxpool(Harness *h, const OpCase *c)
{
    Pair *x = P(h), *y = P(h), *dy = P(h), *dx = P(h);
    size_t cx = SIZE4(c->n, c->c, c->h, c->w), cy = SIZE4(c->n, c->c, c->h / 2, c->w / 2);
    float *xv = rand_array(h, cx, -2, 2);
    if (!xv)
        return;
    if (c->flags & F_TIES) /* three levels only: most windows have equal maxima */
        for (size_t i = 0; i < cx; i++)
            xv[i] = floorf(xv[i] * 0.75f);
    if (!pair_act(h, x, c->n, c->c, c->h, c->w, xv) ||
        !pair_act(h, y, c->n, c->c, c->h / 2, c->w / 2, garbage(h, cy)))
        return;
    BOTH(be->maxpool2x2_forward(be, T(y, b), T(x, b)), "maxpool2x2_forward");
    compare_pair(h, "y", y);
    if (!pair_act(h, dy, c->n, c->c, c->h / 2, c->w / 2, rand_array(h, cy, -1, 1)) ||
        !pair_act(h, dx, c->n, c->c, c->h, c->w, garbage(h, cx)))
        return;
    BOTH(be->maxpool2x2_backward(be, T(dx, b), T(dy, b), T(x, b), T(y, b), !!(c->flags & F_ACC)),
         "maxpool2x2_backward");
    compare_pair(h, "dx", dx);
}

static void run_resize(Harness *h, const OpCase *c, int upsample)
{
    Pair *x = P(h), *y = P(h), *dy = P(h), *dx = P(h);
    int oh = upsample ? 2 * c->h : c->oh, ow = upsample ? 2 * c->w : c->ow;
    size_t cx = SIZE4(c->n, c->c, c->h, c->w), cy = SIZE4(c->n, c->c, oh, ow);
    int acc = !!(c->flags & F_ACC);
    if (!pair_act(h, x, c->n, c->c, c->h, c->w, rand_array(h, cx, -2, 2)) ||
        !pair_act(h, y, c->n, c->c, oh, ow, garbage(h, cy)))
        return;
    if (upsample) {
        BOTH(be->upsample2x_forward(be, T(y, b), T(x, b)), "upsample2x_forward");
    } else {
        BOTH(be->resize_bilinear_forward(be, T(y, b), T(x, b)), "resize_bilinear_forward");
    }
    compare_pair(h, "y", y);
    if (!pair_act(h, dy, c->n, c->c, oh, ow, rand_array(h, cy, -1, 1)) ||
        !pair_act(h, dx, c->n, c->c, c->h, c->w, garbage(h, cx)))
        return;
    if (upsample) {
        BOTH(be->upsample2x_backward(be, T(dx, b), T(dy, b), acc), "upsample2x_backward");
    } else {
        BOTH(be->resize_bilinear_backward(be, T(dx, b), T(dy, b), acc), "resize_bilinear_backward");
    }
    compare_pair(h, "dx", dx);
}

static void run_crop(Harness *h, const OpCase *c)
{
    Pair *skip = P(h), *up = P(h), *y = P(h), *dy = P(h), *dskip = P(h), *dup = P(h);
    int cy = c->c + c->co;
    if (!pair_act(h, skip, c->n, c->c, c->h, c->w,
                  rand_array(h, SIZE4(c->n, c->c, c->h, c->w), -2, 2)) ||
        !pair_act(h, up, c->n, c->co, c->oh, c->ow,
                  rand_array(h, SIZE4(c->n, c->co, c->oh, c->ow), -2, 2)) ||
        !pair_act(h, y, c->n, cy, c->oh, c->ow, garbage(h, SIZE4(c->n, cy, c->oh, c->ow))))
        return;
    BOTH(be->crop_concat_forward(be, T(y, b), T(skip, b), T(up, b)), "crop_concat_forward");
    compare_pair(h, "y", y);
    if (!pair_act(h, dy, c->n, cy, c->oh, c->ow,
                  rand_array(h, SIZE4(c->n, cy, c->oh, c->ow), -1, 1)) ||
        (!(c->flags & F_NOSKIP) &&
         !pair_act(h, dskip, c->n, c->c, c->h, c->w, garbage(h, SIZE4(c->n, c->c, c->h, c->w)))) ||
        (!(c->flags & F_NOUP) && !pair_act(h, dup, c->n, c->co, c->oh, c->ow,
                                           garbage(h, SIZE4(c->n, c->co, c->oh, c->ow)))))
        return;
    BOTH(be->crop_concat_backward(be, T(dskip, b), T(dup, b), T(dy, b), !!(c->flags & F_ACC),
                                  !!(c->flags & F_ACC_UP)),
         "crop_concat_backward");
    compare_pair(h, "dskip", dskip);
    compare_pair(h, "dup", dup);
}

static void run_act(Harness *h, const OpCase *c)
{
    Pair *x = P(h), *y = P(h), *dy = P(h), *dx = P(h);
    size_t count = SIZE4(c->n, c->c, c->h, c->w);
    int inplace = !!(c->flags & F_INPLACE), acc = !!(c->flags & F_ACC);
    UnetActivation act = (UnetActivation)c->act;
    if (!pair_act(h, x, c->n, c->c, c->h, c->w, rand_array(h, count, -2, 2)))
        return;
    Pair *out = x;
    if (!inplace) {
        if (!pair_act(h, y, c->n, c->c, c->h, c->w, garbage(h, count)))
            return;
        out = y;
    }
    BOTH(be->activation_forward(be, T(out, b), T(x, b), act, c->slope), "activation_forward");
    compare_pair(h, "y", out);
    if (!pair_act(h, dy, c->n, c->c, c->h, c->w, rand_array(h, count, -1, 1)))
        return;
    Pair *grad = dy;
    if (!inplace || acc) {
        if (!pair_act(h, dx, c->n, c->c, c->h, c->w, garbage(h, count)))
            return;
        grad = dx;
    }
    BOTH(be->activation_backward(be, T(grad, b), T(dy, b), T(out, b), act, c->slope, acc),
         "activation_backward");
    compare_pair(h, "dx", grad);
}

static void run_head(Harness *h, const OpCase *c, int softmax)
{
    Pair *x = P(h), *y = P(h);
    size_t count = SIZE4(c->n, c->c, c->h, c->w);
    if (!pair_act(h, x, c->n, c->c, c->h, c->w, rand_array(h, count, -12, 12)) ||
        !pair_act(h, y, c->n, c->c, c->h, c->w, garbage(h, count)))
        return;
    if (softmax) {
        BOTH(be->softmax_forward(be, T(y, b), T(x, b)), "softmax_forward");
    } else {
        BOTH(be->sigmoid_forward(be, T(y, b), T(x, b)), "sigmoid_forward");
    }
    compare_pair(h, "y", y);
}

static void run_batchnorm(Harness *h, const OpCase *c)
{
    Pair *x = P(h), *y = P(h), *g = P(h), *be_ = P(h), *rm = P(h), *rv = P(h), *sm = P(h),
         *si = P(h), *dy = P(h), *dx = P(h), *dg = P(h), *dbt = P(h);
    size_t count = SIZE4(c->n, c->c, c->h, c->w);
    int training = !!(c->flags & F_TRAIN);
    float *xv = rand_array(h, count, -2, 2);
    if (!xv)
        return;
    for (size_t i = 0; i < count; i++) /* channel offsets so the means differ */
        xv[i] += (float)((i / ((size_t)c->h * c->w)) % c->c) * 0.5f;
    if (!pair_act(h, x, c->n, c->c, c->h, c->w, xv) ||
        !pair_act(h, y, c->n, c->c, c->h, c->w, garbage(h, count)) ||
        !pair_param(h, g, c->c, 1, 1, 1, rand_array(h, c->c, 0.5f, 1.5f)) ||
        !pair_param(h, be_, c->c, 1, 1, 1, rand_array(h, c->c, -0.5f, 0.5f)) ||
        !pair_param(h, rm, c->c, 1, 1, 1, rand_array(h, c->c, -0.5f, 0.5f)) ||
        !pair_param(h, rv, c->c, 1, 1, 1, rand_array(h, c->c, 0.5f, 2.0f)) ||
        !pair_act(h, sm, 1, c->c, 1, 1, garbage(h, c->c)) ||
        !pair_act(h, si, 1, c->c, 1, 1, garbage(h, c->c)))
        return;
    BOTH(be->batchnorm_forward(be, T(y, b), T(x, b), T(g, b), T(be_, b), T(rm, b), T(rv, b),
                               T(sm, b), T(si, b), 0.1f, 1e-5f, training),
         "batchnorm_forward");
    compare_pair(h, "y", y);
    compare_pair(h, "running_mean", rm);
    compare_pair(h, "running_var", rv);
    if (!training)
        return;
    compare_pair(h, "save_mean", sm);
    compare_pair(h, "save_invstd", si);
    if (!pair_act(h, dy, c->n, c->c, c->h, c->w, rand_array(h, count, -1, 1)) ||
        !pair_act(h, dx, c->n, c->c, c->h, c->w, garbage(h, count)) ||
        !pair_param(h, dg, c->c, 1, 1, 1, garbage(h, c->c)) ||
        !pair_param(h, dbt, c->c, 1, 1, 1, garbage(h, c->c)))
        return;
    BOTH(be->batchnorm_backward(be, T(dx, b), T(dg, b), T(dbt, b), T(dy, b), T(x, b), T(g, b),
                                T(sm, b), T(si, b), !!(c->flags & F_ACC)),
         "batchnorm_backward");
    compare_pair(h, "dx", dx);
    compare_pair(h, "dgamma", dg);
    compare_pair(h, "dbeta", dbt);
}

static void run_instnorm(Harness *h, const OpCase *c)
{
    Pair *x = P(h), *y = P(h), *g = P(h), *bt = P(h), *sm = P(h), *si = P(h), *dy = P(h),
         *dx = P(h), *dg = P(h), *dbt = P(h);
    size_t count = SIZE4(c->n, c->c, c->h, c->w);
    int affine = !!(c->flags & F_AFFINE);
    if (!pair_act(h, x, c->n, c->c, c->h, c->w, rand_array(h, count, -1, 3)) ||
        !pair_act(h, y, c->n, c->c, c->h, c->w, garbage(h, count)) ||
        (affine && !pair_param(h, g, c->c, 1, 1, 1, rand_array(h, c->c, 0.5f, 1.5f))) ||
        (affine && !pair_param(h, bt, c->c, 1, 1, 1, rand_array(h, c->c, -0.5f, 0.5f))) ||
        !pair_act(h, sm, c->n, c->c, 1, 1, garbage(h, (size_t)c->n * c->c)) ||
        !pair_act(h, si, c->n, c->c, 1, 1, garbage(h, (size_t)c->n * c->c)))
        return;
    BOTH(be->instancenorm_forward(be, T(y, b), T(x, b), T(g, b), T(bt, b), T(sm, b), T(si, b),
                                  1e-5f),
         "instancenorm_forward");
    compare_pair(h, "y", y);
    compare_pair(h, "save_mean", sm);
    compare_pair(h, "save_invstd", si);
    if (!pair_act(h, dy, c->n, c->c, c->h, c->w, rand_array(h, count, -1, 1)) ||
        !pair_act(h, dx, c->n, c->c, c->h, c->w, garbage(h, count)) ||
        (affine && !pair_param(h, dg, c->c, 1, 1, 1, garbage(h, c->c))) ||
        (affine && !pair_param(h, dbt, c->c, 1, 1, 1, garbage(h, c->c))))
        return;
    BOTH(be->instancenorm_backward(be, T(dx, b), T(dg, b), T(dbt, b), T(dy, b), T(x, b), T(g, b),
                                   T(sm, b), T(si, b), !!(c->flags & F_ACC)),
         "instancenorm_backward");
    compare_pair(h, "dx", dx);
    compare_pair(h, "dgamma", dg);
    compare_pair(h, "dbeta", dbt);
}

static void run_loss(Harness *h, const OpCase *c)
{
    Pair *logits = P(h), *target = P(h), *weight = P(h), *loss = P(h), *dl = P(h);
    int K = c->co;
    size_t plane = (size_t)c->h * c->w, count = (size_t)c->n * K * plane;
    UnetLossKind kind = (UnetLossKind)c->act;
    float *tv = host_array(h, (size_t)c->n * plane);
    float cw[16];
    if (!tv)
        return;
    for (size_t i = 0; i < (size_t)c->n * plane; i++)
        tv[i] = K == 1 ? (test_rng_uniform(&h->rng, 0, 1) < 0.4f ? 1.0f : 0.0f)
                       : floorf(test_rng_uniform(&h->rng, 0, (float)K - 0.001f));
    for (int k = 0; k < K && k < 16; k++)
        cw[k] = test_rng_uniform(&h->rng, 0.25f, 4.0f);
    if (!pair_act(h, logits, c->n, K, c->h, c->w, rand_array(h, count, -4, 4)) ||
        !pair_act(h, target, c->n, 1, c->h, c->w, tv) ||
        ((c->flags & F_WEIGHT) && !pair_act(h, weight, c->n, 1, c->h, c->w,
                                            rand_array(h, (size_t)c->n * plane, 0.2f, 3.0f))) ||
        !pair_act(h, loss, 1, 1, 1, 1, garbage(h, 1)) ||
        (!(c->flags & F_NOGRAD) && !pair_act(h, dl, c->n, K, c->h, c->w, garbage(h, count))))
        return;
    BOTH(be->loss_forward_backward(be, T(loss, b), T(dl, b), T(logits, b), T(target, b),
                                   T(weight, b), (c->flags & F_CLASSW) ? cw : NULL, kind, c->slope),
         "loss_forward_backward");
    compare_pair(h, "loss", loss);
    compare_pair(h, "dlogits", dl);
}

static void run_optimizer(Harness *h, const OpCase *c, int adam)
{
    Pair *p = P(h), *g = P(h), *m = P(h), *v = P(h);
    size_t count = (size_t)c->w;
    if (!pair_param(h, p, 1, 1, 1, c->w, rand_array(h, count, -1, 1)) ||
        !pair_param(h, g, 1, 1, 1, c->w, rand_array(h, count, -1, 1)) ||
        !pair_param(h, m, 1, 1, 1, c->w, rand_array(h, count, -0.1f, 0.1f)) ||
        (adam && !pair_param(h, v, 1, 1, 1, c->w, rand_array(h, count, 0.0f, 0.01f))))
        return;
    UnetOptimizerStep s = { .lr = adam ? 1e-3f : 0.05f,
                            .momentum = c->slope,
                            .nesterov = !!(c->flags & F_NESTEROV),
                            .weight_decay = 1e-2f,
                            .decoupled_decay = !!(c->flags & F_DECOUPLED),
                            .beta1 = 0.9f,
                            .beta2 = 0.999f,
                            .eps = 1e-8f };
    for (int step = 1; step <= 3; step++) {
        float *gv = rand_array(h, count, -1, 1);
        if (!gv)
            return;
        BOTH(be->buffer_upload(be, g->buf[b], gv, count), "buffer_upload");
        s.step = step;
        if (adam) {
            BOTH(be->adam_update(be, p->buf[b], g->buf[b], m->buf[b], v->buf[b], count, &s),
                 "adam_update");
        } else {
            BOTH(be->sgd_update(be, p->buf[b], g->buf[b], m->buf[b], count, &s), "sgd_update");
        }
    }
    compare_pair(h, "param", p);
    compare_pair(h, adam ? "m" : "momentum", m);
    compare_pair(h, "v", v);
}

static void run_case(Harness *h, const OpCase *c)
{
    switch (c->kind) {
    case K_TENSOR: run_tensor(h, c); break;
    case K_CONV: run_conv(h, c); break;
    case K_UPCONV: run_upconv(h, c); break;
    case K_MAXPOOL: run_maxpool(h, c); break;
    case K_UPSAMPLE: run_resize(h, c, 1); break;
    case K_RESIZE: run_resize(h, c, 0); break;
    case K_CROP: run_crop(h, c); break;
    case K_ACT: run_act(h, c); break;
    case K_SIGMOID: run_head(h, c, 0); break;
    case K_SOFTMAX: run_head(h, c, 1); break;
    case K_BATCHNORM: run_batchnorm(h, c); break;
    case K_INSTNORM: run_instnorm(h, c); break;
    case K_LOSS: run_loss(h, c); break;
    case K_SGD: run_optimizer(h, c, 0); break;
    case K_ADAM: run_optimizer(h, c, 1); break;
    }
}

/* ---- public entry points ------------------------------------------------------------- */

void op_harness_list(FILE *out)
{
    CaseTable *t = malloc(sizeof *t);
    if (!t)
        return;
    build_table(t);
    char name[160];
    for (int i = 0; i < t->len; i++) {
        case_name(&t->c[i], name, sizeof name);
        fprintf(out, "%s\n", name);
    }
    free(t);
}

int op_harness_compare_ex(UnetBackend *test, UnetBackend *ref, double tol, const char *filter,
                          FILE *out, OpHarnessStats *stats)
{
    OpHarnessStats st;
    memset(&st, 0, sizeof st);
    CaseTable *t = malloc(sizeof *t);
    Harness *h = calloc(1, sizeof *h);
    if (!t || !h) {
        free(t);
        free(h);
        if (out)
            fprintf(out, "op-harness: out of memory\n");
        st.failed = 1;
        if (stats)
            *stats = st;
        return 1;
    }
    build_table(t);
    h->be[TB] = test;
    h->be[RB] = ref;
    h->tol = tol;
    char name[160];
    for (int i = 0; i < t->len; i++) {
        const OpCase *c = &t->c[i];
        case_name(c, name, sizeof name);
        if (!matches(name, filter))
            continue;
        /* The same seed for every case whatever the filter, so a case's inputs
         * never depend on which other cases ran. */
        test_rng_seed(&h->rng, 1000 + (uint64_t)i);
        h->failed = 0;
        h->worst = 0.0;
        h->worst_nmse = 0.0;
        h->worst_what[0] = '\0';
        h->detail[0] = '\0';
        h->why[0] = '\0';
        run_case(h, c);
        case_reset(h);
        st.cases++;
        if (h->failed)
            st.failed++;
        if (h->worst > st.worst_max || (st.worst_case[0] == '\0' && h->worst_what[0])) {
            st.worst_max = h->worst;
            snprintf(st.worst_case, sizeof st.worst_case, "%s", name);
        }
        if (h->worst_nmse > st.worst_nmse)
            st.worst_nmse = h->worst_nmse;
        if (out) {
            fprintf(out, "%-4s %-58s max %.2e nmse %.2e (%s)\n", h->failed ? "FAIL" : "ok", name,
                    h->worst, h->worst_nmse, h->worst_what[0] ? h->worst_what : "-");
            if (h->failed)
                fprintf(out, "       %s\n       errors:%s\n", h->why, h->detail);
        }
    }
    if (out)
        fprintf(out,
                "op-harness: %s vs %s, tol %.1e: %d/%d cases passed; worst max error %.2e (%s), "
                "worst nmse %.2e\n",
                test->name, ref->name, tol, st.cases - st.failed, st.cases, st.worst_max,
                st.worst_case[0] ? st.worst_case : "-", st.worst_nmse);
    free(t);
    free(h);
    if (stats)
        *stats = st;
    return st.failed;
}

int op_harness_compare(UnetBackend *test, UnetBackend *ref, double tol, const char *filter)
{
    return op_harness_compare_ex(test, ref, tol, filter, stdout, NULL);
}
