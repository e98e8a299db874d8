/* checkpoint.c - model and optimizer state to and from safetensors files. */
#include "checkpoint.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileutil.h"
#include "image.h"
#include "safetensors.h"

#define OPT_PREFIX "optimizer."
#define NBT_SUFFIX ".num_batches_tracked"
#define MEAN_SUFFIX ".running_mean"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int starts_with(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

/* out = s with its suffix old replaced by new; 0 when s lacks old or out is too small. */
static int swap_suffix(char *out, size_t size, const char *s, const char *old, const char *new_)
{
    if (!ends_with(s, old))
        return 0;
    size_t stem = strlen(s) - strlen(old), tail = strlen(new_);
    if (stem + tail + 1 > size)
        return 0;
    memcpy(out, s, stem);
    memcpy(out + stem, new_, tail + 1);
    return 1;
}

/* "<norm>.num_batches_tracked" for a "<norm>.running_mean" buffer; 0 otherwise. */
static int nbt_name_for(const char *buffer_name, char *out, size_t size)
{
    return swap_suffix(out, size, buffer_name, MEAN_SUFFIX, NBT_SUFFIX);
}

static void info_shape(const UnetParamInfo *p, int64_t *shape)
{
    for (int i = 0; i < p->ndim; i++)
        shape[i] = p->shape[i];
}

void unet_checkpoint_meta_free(UnetCheckpointMeta *meta)
{
    if (!meta)
        return;
    for (size_t i = 0; i < meta->count; i++) {
        free(meta->keys[i]);
        free(meta->values[i]);
    }
    free(meta->keys);
    free(meta->values);
    memset(meta, 0, sizeof *meta);
}

const char *unet_checkpoint_meta_get(const UnetCheckpointMeta *meta, const char *key)
{
    for (size_t i = 0; meta && i < meta->count; i++)
        if (!strcmp(meta->keys[i], key))
            return meta->values[i];
    return NULL;
}

/* ---- saving ----------------------------------------------------------- */

static float *download(UnetBackend *be, const float *src, size_t count, const char *what,
                       const char *path, UnetError *err)
{
    float *host = malloc((count ? count : 1) * sizeof *host);
    if (!host) {
        unet_error_set(err, UNET_ERR_NOMEM, "cannot write '%s': out of memory for the %s (%zu values)",
                       path, what, count);
        return NULL;
    }
    if (count && be->buffer_download(be, host, src, count) != UNET_OK) {
        if (err) {
            *err = be->error;
            unet_error_prefix(err, "cannot write '%s': reading the %s from the %s backend: ", path,
                              what, be->name);
        }
        free(host);
        return NULL;
    }
    return host;
}

static char *optimizer_meta_json(const UnetOptimizer *opt)
{
    char *cfg = unet_optimizer_config_to_json(unet_optimizer_config(opt));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "config", json_tokener_parse(cfg ? cfg : "{}"));
    json_object_object_add(o, "step", json_object_new_int64(unet_optimizer_step_count(opt)));
    json_object_object_add(o, "lr", json_object_new_double(unet_optimizer_lr(opt)));
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    free(cfg);
    return text;
}

UnetStatus unet_checkpoint_save(const char *path, UnetModel *model, const UnetOptimizer *optimizer,
                                const UnetKeyValue *extra, size_t n_extra, UnetError *err)
{
    UnetBackend *be = unet_model_backend(model);
    if (!be)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "cannot write '%s': the model has no backend (description only)", path);
    const UnetParamTable *pt = unet_model_params(model), *bt = unet_model_buffers(model);
    if (optimizer && unet_optimizer_table(optimizer)->total != pt->total)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "cannot write '%s': the optimizer was made for %zu parameters, the "
                              "model has %zu", path, unet_optimizer_table(optimizer)->total, pt->total);
    for (size_t i = 0; i < n_extra; i++)
        if (!strcmp(extra[i].key, "format") || !strcmp(extra[i].key, "model_config") ||
            !strcmp(extra[i].key, "optimizer"))
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "cannot write '%s': metadata key '%s' is reserved", path,
                                  extra[i].key);

    UnetStatus st = UNET_OK;
    UnetSafetensorsWriter *w = unet_safetensors_writer_new();
    float *params = NULL, *buffers = NULL, *slots[4] = { NULL };
    char *cfg_json = NULL, *opt_json = NULL;
    int64_t nbt = unet_model_num_batches_tracked(model);
    int nslots = optimizer ? unet_optimizer_slot_count(optimizer) : 0;
    char name[UNET_PARAM_NAME_MAX + 64];
    int64_t shape[4];
    if (!w) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "cannot write '%s': out of memory", path);
        goto out;
    }
    if (!(params = download(be, unet_model_param_arena(model), pt->total, "parameters", path, err)) ||
        !(buffers = download(be, unet_model_buffer_arena(model), bt->total, "running statistics",
                             path, err))) {
        st = err ? err->status : UNET_ERR_BACKEND;
        goto out;
    }
    for (size_t i = 0; i < pt->len && st == UNET_OK; i++) {
        const UnetParamInfo *p = &pt->items[i];
        info_shape(p, shape);
        st = unet_safetensors_writer_add(w, p->name, UNET_DTYPE_F32, p->ndim, shape,
                                         params + p->offset, err);
    }
    for (size_t i = 0; i < bt->len && st == UNET_OK; i++) {
        const UnetParamInfo *p = &bt->items[i];
        info_shape(p, shape);
        st = unet_safetensors_writer_add(w, p->name, UNET_DTYPE_F32, p->ndim, shape,
                                         buffers + p->offset, err);
        if (st == UNET_OK && nbt_name_for(p->name, name, sizeof name))
            st = unet_safetensors_writer_add(w, name, UNET_DTYPE_I64, 0, NULL, &nbt, err);
    }
    for (int s = 0; s < nslots && st == UNET_OK; s++) {
        if (!(slots[s] = download(be, unet_optimizer_slot(optimizer, s), pt->total,
                                  "optimizer state", path, err))) {
            st = err ? err->status : UNET_ERR_BACKEND;
            break;
        }
        const char *slot = unet_optimizer_slot_name(optimizer, s);
        for (size_t i = 0; i < pt->len && st == UNET_OK; i++) {
            const UnetParamInfo *p = &pt->items[i];
            info_shape(p, shape);
            snprintf(name, sizeof name, OPT_PREFIX "%s.%s", p->name, slot);
            st = unet_safetensors_writer_add(w, name, UNET_DTYPE_F32, p->ndim, shape,
                                             slots[s] + p->offset, err);
        }
    }
    if (st != UNET_OK)
        goto out;
    cfg_json = unet_model_config_to_json(unet_model_config(model));
    opt_json = optimizer ? optimizer_meta_json(optimizer) : NULL;
    if (!cfg_json || (optimizer && !opt_json)) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "cannot write '%s': out of memory", path);
        goto out;
    }
    if ((st = unet_safetensors_writer_set_metadata(w, "format", UNET_CHECKPOINT_FORMAT, err)) ||
        (st = unet_safetensors_writer_set_metadata(w, "model_config", cfg_json, err)) ||
        (opt_json && (st = unet_safetensors_writer_set_metadata(w, "optimizer", opt_json, err))))
        goto out;
    for (size_t i = 0; i < n_extra && st == UNET_OK; i++)
        st = unet_safetensors_writer_set_metadata(w, extra[i].key, extra[i].value ? extra[i].value : "",
                                                  err);
    if (st == UNET_OK)
        st = unet_safetensors_writer_save(w, path, err);
out:
    unet_safetensors_writer_free(w);
    free(params);
    free(buffers);
    for (int s = 0; s < 4; s++)
        free(slots[s]);
    free(cfg_json);
    free(opt_json);
    return st;
}

/* ---- loading ---------------------------------------------------------- */

UnetStatus unet_checkpoint_read_config(const char *path, UnetModelConfig *cfg, UnetError *err)
{
    UnetSafetensors *st = NULL;
    UnetStatus s = unet_safetensors_open(&st, path, err);
    if (s != UNET_OK)
        return s;
    const char *json = unet_safetensors_metadata(st, "model_config");
    if (!json) {
        s = unet_error_set(err, UNET_ERR_FORMAT,
                           "%s has no model_config metadata (it was not written by unet); give "
                           "the model options explicitly", path);
    } else if ((s = unet_model_config_from_json(cfg, json, err)) != UNET_OK) {
        unet_error_prefix(err, "%s: ", path);
    }
    unet_safetensors_close(st);
    return s;
}

typedef struct LoadCtx {
    const char *path;
    const UnetSafetensors *st;
    char *file_cfg;  /* model_config of the file, or a note */
    char *model_cfg;
    int problems;    /* mismatches after the first one */
    UnetError *err;
    UnetStatus status;
} LoadCtx;

/* Records a mismatch: the first one writes the message, later ones are counted. */
static void mismatch(LoadCtx *c, const char *fmt, ...) UNET_PRINTF(2, 3);
static void mismatch(LoadCtx *c, const char *fmt, ...)
{
    if (c->status != UNET_OK) {
        c->problems++;
        return;
    }
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    c->status = unet_error_set(c->err, UNET_ERR_FORMAT, "%s does not fit this model: %s", c->path,
                               what);
}

static void finish_mismatch(LoadCtx *c)
{
    if (c->status == UNET_OK || !c->err)
        return;
    char tail[UNET_ERROR_MESSAGE_MAX], more[64] = "";
    if (c->problems)
        snprintf(more, sizeof more, " (and %d more difference%s)", c->problems,
                 c->problems == 1 ? "" : "s");
    snprintf(tail, sizeof tail, "%s; file's model: %s; this model: %s", more, c->file_cfg,
             c->model_cfg);
    size_t len = strlen(c->err->message);
    snprintf(c->err->message + len, sizeof c->err->message - len, "%s", tail);
}

/* Checks one float tensor of the model's table against the file. */
static const UnetStTensor *expect_tensor(LoadCtx *c, const char *name, int ndim, const int64_t *shape)
{
    const UnetStTensor *t = unet_safetensors_find(c->st, name);
    char want[160], got[160];
    unet_shape_format(want, sizeof want, ndim, shape);
    if (!t) {
        mismatch(c, "tensor '%s' %s is missing from the file", name, want);
        return NULL;
    }
    unet_shape_format(got, sizeof got, t->ndim, t->shape);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        mismatch(c, "tensor '%s' has shape %s in the file but %s in the model", name, got, want);
        return NULL;
    }
    return t;
}

static int is_float_dtype(UnetDtype d)
{
    return d == UNET_DTYPE_F32 || d == UNET_DTYPE_F64 || d == UNET_DTYPE_F16 || d == UNET_DTYPE_BF16;
}

static UnetStatus read_table(LoadCtx *c, const UnetParamTable *t, const char *prefix,
                             const char *suffix, float *host)
{
    char name[UNET_PARAM_NAME_MAX + 64];
    int64_t shape[4];
    for (size_t i = 0; i < t->len; i++) {
        const UnetParamInfo *p = &t->items[i];
        snprintf(name, sizeof name, "%s%s%s", prefix, p->name, suffix);
        info_shape(p, shape);
        const UnetStTensor *f = expect_tensor(c, name, p->ndim, shape);
        if (!f)
            continue;
        if (!is_float_dtype(f->dtype)) {
            mismatch(c, "tensor '%s' is %s, a floating-point type was expected", name,
                     unet_dtype_name(f->dtype));
            continue;
        }
        if (c->status == UNET_OK && host) {
            UnetStatus s = unet_safetensors_read_f32(c->st, f, host + p->offset, p->count, c->err);
            if (s != UNET_OK)
                return c->status = s;
        }
    }
    return c->status;
}

static UnetStatus upload(UnetBackend *be, float *dst, const float *src, size_t count,
                         const char *what, const char *path, UnetError *err)
{
    if (!count || be->buffer_upload(be, dst, src, count) == UNET_OK)
        return UNET_OK;
    if (err) {
        *err = be->error;
        unet_error_prefix(err, "loading '%s': copying the %s to the %s backend: ", path, what,
                          be->name);
    }
    return err ? err->status : UNET_ERR_BACKEND;
}

/* Optimizer metadata: kind and step count. */
static UnetStatus read_optimizer_meta(LoadCtx *c, const UnetOptimizer *opt, int64_t *step)
{
    const char *json = unet_safetensors_metadata(c->st, "optimizer");
    const char *want = unet_optim_kind_name(unet_optimizer_config(opt)->kind);
    if (!json)
        return c->status = unet_error_set(c->err, UNET_ERR_FORMAT,
                                          "%s holds no optimizer state (saved without it); load "
                                          "the weights alone to start a fresh %s optimizer",
                                          c->path, want);
    json_object *root = json_tokener_parse(json), *cfg = NULL, *stepv = NULL;
    UnetOptimizerConfig fc;
    UnetError sub = { 0 };
    UnetStatus s = UNET_OK;
    if (!root || !json_object_object_get_ex(root, "config", &cfg) ||
        !json_object_object_get_ex(root, "step", &stepv) || !json_object_is_type(stepv, json_type_int) ||
        json_object_get_int64(stepv) < 0 ||
        unet_optimizer_config_from_json(&fc, json_object_to_json_string(cfg), &sub) != UNET_OK) {
        s = unet_error_set(c->err, UNET_ERR_FORMAT, "%s: the optimizer metadata is damaged%s%s",
                           c->path, sub.message[0] ? ": " : "", sub.message);
    } else if (fc.kind != unet_optimizer_config(opt)->kind &&
               !(fc.kind != UNET_OPTIM_SGD && unet_optimizer_config(opt)->kind != UNET_OPTIM_SGD)) {
        /* Adam and AdamW share their state; SGD's differs. */
        s = unet_error_set(c->err, UNET_ERR_FORMAT,
                           "%s holds %s optimizer state, which a %s optimizer cannot resume; load "
                           "the weights alone or use --optimizer %s",
                           c->path, unet_optim_kind_name(fc.kind), want, unet_optim_kind_name(fc.kind));
    } else {
        *step = json_object_get_int64(stepv);
    }
    if (root)
        json_object_put(root);
    return c->status = s;
}

UnetStatus unet_checkpoint_load(const char *path, UnetModel *model, UnetOptimizer *optimizer,
                                UnetCheckpointMeta *meta_out, UnetError *err)
{
    if (meta_out)
        memset(meta_out, 0, sizeof *meta_out);
    UnetBackend *be = unet_model_backend(model);
    if (!be)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "cannot load '%s': the model has no backend (description only)", path);
    const UnetParamTable *pt = unet_model_params(model), *bt = unet_model_buffers(model);
    if (optimizer && unet_optimizer_table(optimizer)->total != pt->total)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "cannot load '%s': the optimizer was made for %zu parameters, the "
                              "model has %zu", path, unet_optimizer_table(optimizer)->total, pt->total);
    UnetSafetensors *st = NULL;
    UnetStatus s = unet_safetensors_open(&st, path, err);
    if (s != UNET_OK)
        return s;

    LoadCtx c = { .path = path, .st = st, .err = err, .status = UNET_OK };
    const char *format = unet_safetensors_metadata(st, "format");
    if (format && strcmp(format, UNET_CHECKPOINT_FORMAT)) {
        /* the message quotes format, which lives in st: write it first */
        s = unet_error_set(err, UNET_ERR_FORMAT, "%s is in format '%s'; this version of unet reads '%s'", path,
                           format, UNET_CHECKPOINT_FORMAT);
        unet_safetensors_close(st);
        return s;
    }
    const char *fcfg = unet_safetensors_metadata(st, "model_config");
    c.file_cfg = strdup(fcfg ? fcfg : "not stored");
    c.model_cfg = unet_model_config_to_json(unet_model_config(model));

    int nslots = optimizer ? unet_optimizer_slot_count(optimizer) : 0;
    float *params = malloc((pt->total ? pt->total : 1) * sizeof(float));
    float *buffers = malloc((bt->total ? bt->total : 1) * sizeof(float));
    float *slots[4] = { NULL };
    for (int i = 0; i < nslots; i++)
        slots[i] = malloc((pt->total ? pt->total : 1) * sizeof(float));
    int64_t nbt = 0, opt_step = 0;
    int oom = !params || !buffers || !c.file_cfg || !c.model_cfg;
    for (int i = 0; i < nslots; i++)
        oom |= !slots[i];
    if (oom) {
        s = unet_error_set(err, UNET_ERR_NOMEM, "cannot load '%s': out of memory", path);
        goto out;
    }

    /* 1. every tensor the model needs, with its shape */
    read_table(&c, pt, "", "", params);
    read_table(&c, bt, "", "", buffers);
    char name[UNET_PARAM_NAME_MAX + 64];
    int have_nbt = 0;
    for (size_t i = 0; i < bt->len; i++) {
        if (!nbt_name_for(bt->items[i].name, name, sizeof name))
            continue;
        const UnetStTensor *t = unet_safetensors_find(st, name);
        if (!t) {
            mismatch(&c, "tensor '%s' [] is missing from the file", name);
        } else if (t->ndim > 1 || t->numel != 1 || is_float_dtype(t->dtype)) {
            char got[160];
            unet_shape_format(got, sizeof got, t->ndim, t->shape);
            mismatch(&c, "tensor '%s' is %s %s in the file; an integer scalar was expected", name,
                     unet_dtype_name(t->dtype), got);
        } else if (c.status == UNET_OK && !have_nbt) {
            if ((c.status = unet_safetensors_read_i64(st, t, &nbt, 1, err)) != UNET_OK)
                goto fail;
            have_nbt = 1;
        }
    }
    /* 2. optimizer state, when asked for */
    if (optimizer && c.status == UNET_OK) {
        if (read_optimizer_meta(&c, optimizer, &opt_step) != UNET_OK)
            goto fail;
        for (int i = 0; i < nslots; i++) {
            char suffix[64];
            snprintf(suffix, sizeof suffix, ".%s", unet_optimizer_slot_name(optimizer, i));
            read_table(&c, pt, OPT_PREFIX, suffix, slots[i]);
        }
    }
    /* 3. nothing the model does not know */
    for (size_t i = 0; i < unet_safetensors_count(st); i++) {
        const char *n = unet_safetensors_at(st, i)->name;
        if (unet_param_table_find(pt, n) || unet_param_table_find(bt, n))
            continue;
        if (swap_suffix(name, sizeof name, n, NBT_SUFFIX, MEAN_SUFFIX) &&
            unet_param_table_find(bt, name))
            continue;
        if (starts_with(n, OPT_PREFIX)) {
            if (!optimizer)
                continue; /* weights only: the state is not wanted */
            const char *rest = n + strlen(OPT_PREFIX), *dot = strrchr(rest, '.');
            if (dot && unet_optimizer_slot_find(optimizer, dot + 1) >= 0) {
                snprintf(name, sizeof name, "%.*s", (int)(dot - rest), rest);
                if (unet_param_table_find(pt, name))
                    continue;
            }
        }
        mismatch(&c, "the file has tensor '%s', which this model does not have", n);
    }
fail:
    finish_mismatch(&c);
    if ((s = c.status) != UNET_OK)
        goto out;

    /* 4. all checked: copy into backend memory */
    if ((s = upload(be, unet_model_param_arena(model), params, pt->total, "parameters", path, err)) ||
        (s = upload(be, unet_model_buffer_arena(model), buffers, bt->total, "running statistics",
                    path, err)))
        goto out;
    if (have_nbt)
        unet_model_set_num_batches_tracked(model, nbt);
    for (int i = 0; i < nslots; i++)
        if ((s = upload(be, unet_optimizer_slot(optimizer, i), slots[i], pt->total,
                        "optimizer state", path, err)))
            goto out;
    if (optimizer)
        unet_optimizer_set_step_count(optimizer, opt_step);
    if (meta_out) {
        size_t n = unet_safetensors_metadata_count(st);
        meta_out->keys = calloc(n ? n : 1, sizeof(char *));
        meta_out->values = calloc(n ? n : 1, sizeof(char *));
        if (!meta_out->keys || !meta_out->values) {
            s = unet_error_set(err, UNET_ERR_NOMEM, "loading '%s': out of memory", path);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const char *k = unet_safetensors_metadata_key(st, i);
            meta_out->keys[i] = strdup(k);
            meta_out->values[i] = strdup(unet_safetensors_metadata(st, k));
            meta_out->count++;
            if (!meta_out->keys[i] || !meta_out->values[i]) {
                s = unet_error_set(err, UNET_ERR_NOMEM, "loading '%s': out of memory", path);
                goto out;
            }
        }
    }
out:
    if (s != UNET_OK && meta_out)
        unet_checkpoint_meta_free(meta_out);
    free(params);
    free(buffers);
    for (int i = 0; i < 4; i++)
        free(slots[i]);
    free(c.file_cfg);
    free(c.model_cfg);
    unet_safetensors_close(st);
    return s;
}

int unet_checkpoint_has_optimizer(const char *path)
{
    UnetSafetensors *st = NULL;
    if (unet_safetensors_open(&st, path, NULL) != UNET_OK)
        return 0;
    int has = unet_safetensors_metadata(st, "optimizer") != NULL;
    for (size_t i = 0; !has && i < unet_safetensors_count(st); i++)
        has = starts_with(unet_safetensors_at(st, i)->name, OPT_PREFIX);
    unet_safetensors_close(st);
    return has;
}

/* ---- description ------------------------------------------------------ */

static void group_digits(char *buf, size_t size, unsigned long long v)
{
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%llu", v), j = 0;
    for (int i = 0; i < n && (size_t)j + 2 < size; i++) {
        if (i && (n - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = raw[i];
    }
    buf[j] = '\0';
}

char *unet_checkpoint_describe(const char *path, UnetError *err)
{
    UnetSafetensors *st = NULL;
    if (unet_safetensors_open(&st, path, err) != UNET_OK)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        unet_safetensors_close(st);
        unet_error_set(err, UNET_ERR_NOMEM, "describing '%s': out of memory", path);
        return NULL;
    }
    unsigned long long params = 0, buffers = 0, opt = 0;
    size_t n_params = 0, n_buffers = 0, n_opt = 0;
    for (size_t i = 0; i < unet_safetensors_count(st); i++) {
        const UnetStTensor *t = unet_safetensors_at(st, i);
        if (starts_with(t->name, OPT_PREFIX))
            opt += t->numel, n_opt++;
        else if (ends_with(t->name, MEAN_SUFFIX) || ends_with(t->name, ".running_var") ||
                 ends_with(t->name, NBT_SUFFIX))
            buffers += t->numel, n_buffers++;
        else
            params += t->numel, n_params++;
    }
    char num[48];
    const char *format = unet_safetensors_metadata(st, "format");
    fprintf(out, "checkpoint:      %s\n", path);
    fprintf(out, "format:          %s\n", format ? format : "(none: not written by unet)");
    const char *cfg_json = unet_safetensors_metadata(st, "model_config");
    UnetModelConfig cfg;
    if (cfg_json && unet_model_config_from_json(&cfg, cfg_json, NULL) == UNET_OK) {
        fprintf(out, "model:           %s, %d input channel%s, %d class%s", unet_arch_name(cfg.arch),
                cfg.in_channels, cfg.in_channels == 1 ? "" : "s", cfg.classes,
                cfg.classes == 1 ? "" : "es");
        if (cfg.arch == UNET_ARCH_UNET)
            fprintf(out, ", depth %d, base %d, %s padding, norm %s, %s upsampling, %s", cfg.depth,
                    cfg.base, unet_padding_name(cfg.padding), unet_norm_name(cfg.norm),
                    unet_upsample_name(cfg.upsample), unet_activation_name(cfg.activation));
        else
            fprintf(out, ", depth %d, base %d, %s", cfg.depth, cfg.base,
                    unet_activation_name(cfg.activation));
        fprintf(out, ", seed %llu\n", (unsigned long long)cfg.seed);
    } else {
        fprintf(out, "model:           %s\n", cfg_json ? cfg_json : "(no model_config stored)");
    }
    group_digits(num, sizeof num, params);
    fprintf(out, "parameters:      %s in %zu tensors\n", num, n_params);
    if (n_buffers) {
        group_digits(num, sizeof num, buffers);
        fprintf(out, "buffers:         %s in %zu tensors (batch norm statistics)\n", num, n_buffers);
    }
    const char *ojson = unet_safetensors_metadata(st, "optimizer");
    if (ojson || n_opt) {
        json_object *o = ojson ? json_tokener_parse(ojson) : NULL, *c = NULL, *v = NULL;
        fprintf(out, "optimizer:       ");
        if (o && json_object_object_get_ex(o, "config", &c) &&
            json_object_object_get_ex(c, "optimizer", &v))
            fprintf(out, "%s", json_object_get_string(v));
        if (o && json_object_object_get_ex(o, "step", &v))
            fprintf(out, ", %lld updates", (long long)json_object_get_int64(v));
        if (o && json_object_object_get_ex(o, "lr", &v))
            fprintf(out, ", lr %g", json_object_get_double(v));
        group_digits(num, sizeof num, opt);
        fprintf(out, " (state: %s values in %zu tensors)\n", num, n_opt);
        if (o)
            json_object_put(o);
    } else {
        fprintf(out, "optimizer:       none stored (weights only)\n");
    }
    static const char *const known[] = { "epoch", "step", "losses", "normalization",
                                         "training_config" };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *v = unet_safetensors_metadata(st, known[i]);
        if (v)
            fprintf(out, "%s:%*s %s\n", known[i], (int)(15 - strlen(known[i])), "", v);
    }
    for (size_t i = 0; i < unet_safetensors_metadata_count(st); i++) {
        const char *k = unet_safetensors_metadata_key(st, i);
        int skip = !strcmp(k, "format") || !strcmp(k, "model_config") || !strcmp(k, "optimizer");
        for (size_t j = 0; j < sizeof known / sizeof known[0]; j++)
            skip |= !strcmp(k, known[j]);
        if (!skip)
            fprintf(out, "%s:%*s %s\n", k, strlen(k) < 15 ? (int)(15 - strlen(k)) : 0, "",
                    unet_safetensors_metadata(st, k));
    }
    unet_safetensors_close(st);
    if (fclose(out) != 0 || !text) {
        free(text);
        unet_error_set(err, UNET_ERR_NOMEM, "describing '%s': out of memory", path);
        return NULL;
    }
    return text;
}

/* safetensors starts with an 8-byte little-endian header length (far below
 * 2^48 in practice) followed by the JSON header's '{'. */
static int looks_like_safetensors(const unsigned char *head, size_t len)
{
    if (len < 9 || head[8] != '{')
        return 0;
    /* a damaged length is still binary; a JSON text has only text before its '{' */
    for (int i = 0; i < 8; i++)
        if (head[i] < 0x20 && head[i] != '\t' && head[i] != '\n' && head[i] != '\r')
            return 1;
    return head[7] == 0 && head[6] == 0;
}

UnetStatus unet_model_config_from_file(const char *path, UnetModelConfig *cfg, int *is_checkpoint,
                                       UnetError *err)
{
    unsigned char head[9];
    size_t got = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        got = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    if (looks_like_safetensors(head, got)) {
        if (is_checkpoint)
            *is_checkpoint = 1;
        return unet_checkpoint_read_config(path, cfg, err);
    }
    if (is_checkpoint)
        *is_checkpoint = 0;
    unsigned char *data = NULL;
    size_t len = 0;
    UnetStatus st = unet_read_file(path, &data, &len, err);
    if (st != UNET_OK)
        return st;
    if (len > (64u << 20)) {
        free(data);
        return unet_error_set(err, UNET_ERR_FORMAT, "%s is too large for a config file", path);
    }
    char *text = malloc(len + 1);
    if (!text) {
        free(data);
        return unet_error_set(err, UNET_ERR_NOMEM, "not enough memory to read %s", path);
    }
    memcpy(text, data, len);
    text[len] = '\0';
    free(data);
    json_object *root = json_tokener_parse(text), *inner;
    if (!root) {
        /* not JSON at all: say what it is rather than how JSON failed */
        UnetImageFormat fmt = unet_image_sniff(path);
        if (fmt != UNET_IMAGE_FORMAT_NONE)
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s is a %s image, not a checkpoint (.safetensors) or a "
                                "JSON model config", path, unet_image_format_name(fmt));
        else if (!text[0])
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s is empty; give a checkpoint (.safetensors) or a JSON "
                                "model config", path);
        else
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s is neither a checkpoint (.safetensors) nor a JSON "
                                "model config", path);
        free(text);
        return st;
    }
    if (root && json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "model", &inner) &&
        json_object_is_type(inner, json_type_object))
        st = unet_model_config_from_json(cfg, json_object_to_json_string(inner), err);
    else
        st = unet_model_config_from_json(cfg, text, err);
    json_object_put(root);
    free(text);
    if (st != UNET_OK)
        unet_error_prefix(err, "%s: ", path);
    return st;
}
