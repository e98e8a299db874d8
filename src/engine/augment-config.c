/* augment-config.c - the JSON form of augmentation configs and records (json-c). */
#include "augment.h"

#include <errno.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_FLOAT, P_INT, P_BOOL, P_BLUR };

static const char *const blur_names[] = { "gaussian", "box" };

#define K(kind) (1u << (kind))

/* Which keys each kind takes; one table drives parsing and writing. */
typedef struct ParamDesc {
    const char *key;
    size_t offset;
    int type;
    unsigned kinds;
} ParamDesc;

static const ParamDesc param_table[] = {
    { "shift", offsetof(UnetAugmentOp, shift), P_FLOAT, K(UNET_AUG_SHIFT_SCALE_ROTATE) },
    { "scale", offsetof(UnetAugmentOp, scale), P_FLOAT, K(UNET_AUG_SHIFT_SCALE_ROTATE) },
    { "rotate", offsetof(UnetAugmentOp, rotate), P_FLOAT, K(UNET_AUG_SHIFT_SCALE_ROTATE) },
    { "var_min", offsetof(UnetAugmentOp, var_min), P_FLOAT, K(UNET_AUG_GAUSS_NOISE) },
    { "var_max", offsetof(UnetAugmentOp, var_max), P_FLOAT, K(UNET_AUG_GAUSS_NOISE) },
    { "mult_min", offsetof(UnetAugmentOp, mult_min), P_FLOAT, K(UNET_AUG_MULT_NOISE) },
    { "mult_max", offsetof(UnetAugmentOp, mult_max), P_FLOAT, K(UNET_AUG_MULT_NOISE) },
    { "per_channel", offsetof(UnetAugmentOp, per_channel), P_BOOL,
      K(UNET_AUG_GAUSS_NOISE) | K(UNET_AUG_MULT_NOISE) },
    { "alpha", offsetof(UnetAugmentOp, alpha), P_FLOAT, K(UNET_AUG_ELASTIC) },
    { "sigma", offsetof(UnetAugmentOp, sigma), P_FLOAT, K(UNET_AUG_ELASTIC) },
    { "alpha_affine", offsetof(UnetAugmentOp, alpha_affine), P_FLOAT, K(UNET_AUG_ELASTIC) },
    { "blur", offsetof(UnetAugmentOp, blur), P_BLUR, K(UNET_AUG_ELASTIC) },
    { "grid", offsetof(UnetAugmentOp, grid), P_INT, K(UNET_AUG_GRID_ELASTIC) },
    { "grid_sd", offsetof(UnetAugmentOp, grid_sd), P_FLOAT, K(UNET_AUG_GRID_ELASTIC) },
    { "brightness", offsetof(UnetAugmentOp, brightness), P_FLOAT, K(UNET_AUG_BRIGHTNESS_CONTRAST) },
    { "contrast", offsetof(UnetAugmentOp, contrast), P_FLOAT, K(UNET_AUG_BRIGHTNESS_CONTRAST) },
    { "min_width", offsetof(UnetAugmentOp, min_width), P_INT, K(UNET_AUG_PAD_IF_NEEDED) },
    { "min_height", offsetof(UnetAugmentOp, min_height), P_INT, K(UNET_AUG_PAD_IF_NEEDED) },
};

#define PARAM_COUNT ((int)(sizeof param_table / sizeof param_table[0]))

static UnetStatus fail(UnetError *err, const char *fmt, const char *path, const char *key)
{
    char where[160];
    if (key)
        snprintf(where, sizeof where, "%s%s%s", path, *path ? "." : "", key);
    else
        snprintf(where, sizeof where, "%s", path);
    return unet_error_set(err, UNET_ERR_FORMAT, fmt, where);
}

static int is_number(json_object *v)
{
    return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
}

/* Parses one transform object (not a one_of) into op; in_one_of: "weight" allowed, "p" not. */
static UnetStatus parse_op(json_object *o, const char *path, int in_one_of, UnetAugmentOp *op,
                           float *p, UnetError *err)
{
    if (!json_object_is_type(o, json_type_object))
        return fail(err, "augment config: %s must be an object", path, NULL);
    json_object *tv;
    if (!json_object_object_get_ex(o, "type", &tv))
        return fail(err, "augment config: %s needs a 'type'", path, NULL);
    if (!json_object_is_type(tv, json_type_string))
        return fail(err, "augment config: %s must be a string", path, "type");
    UnetAugmentKind kind;
    UnetStatus st = unet_augment_kind_parse(json_object_get_string(tv), &kind, err);
    if (st != UNET_OK) {
        unet_error_prefix(err, "augment config: %s.type: ", path);
        if (err)
            err->status = UNET_ERR_FORMAT;
        return UNET_ERR_FORMAT;
    }
    unet_augment_op_default(op, kind);
    *p = kind == UNET_AUG_PAD_IF_NEEDED ? 1.0f : 0.5f;
    json_object_object_foreach(o, key, val) {
        if (!strcmp(key, "type"))
            continue;
        if (!strcmp(key, "p")) {
            if (in_one_of)
                return fail(err, "augment config: %s: inside one_of a transform has a 'weight', "
                                 "not a 'p'", path, key);
            if (!is_number(val))
                return fail(err, "augment config: %s must be a number", path, key);
            *p = (float)json_object_get_double(val);
            continue;
        }
        if (!strcmp(key, "weight")) {
            if (!in_one_of)
                return fail(err, "augment config: %s: only transforms inside one_of take a "
                                 "weight; use 'p'", path, key);
            if (!is_number(val))
                return fail(err, "augment config: %s must be a number", path, key);
            op->weight = (float)json_object_get_double(val);
            continue;
        }
        const ParamDesc *d = NULL;
        for (int i = 0; i < PARAM_COUNT; i++)
            if (!strcmp(key, param_table[i].key) && (param_table[i].kinds & K(kind)))
                d = &param_table[i];
        if (!d) {
            char msg[200];
            snprintf(msg, sizeof msg, "augment config: %%s is not a parameter of %s",
                     unet_augment_kind_name(kind));
            return fail(err, msg, path, key);
        }
        char *field = (char *)op + d->offset;
        if (d->type == P_FLOAT) {
            if (!is_number(val))
                return fail(err, "augment config: %s must be a number", path, key);
            float f = (float)json_object_get_double(val);
            memcpy(field, &f, sizeof f);
        } else if (d->type == P_INT) {
            if (!json_object_is_type(val, json_type_int))
                return fail(err, "augment config: %s must be an integer", path, key);
            int64_t x = json_object_get_int64(val);
            int i = x > 1000000000 ? 1000000000 : x < -1000000000 ? -1000000000 : (int)x;
            memcpy(field, &i, sizeof i);
        } else if (d->type == P_BLUR) {
            const char *name = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;
            int b = -1;
            for (int i = 0; i < 2 && name; i++)
                if (!strcmp(name, blur_names[i]))
                    b = i;
            if (b < 0)
                return fail(err, "augment config: %s must be \"gaussian\" or \"box\"", path, key);
            UnetBlur v = (UnetBlur)b;
            memcpy(field, &v, sizeof v);
        } else {
            if (!json_object_is_type(val, json_type_boolean))
                return fail(err, "augment config: %s must be true or false", path, key);
            int b = json_object_get_boolean(val) ? 1 : 0;
            memcpy(field, &b, sizeof b);
        }
    }
    return UNET_OK;
}

static UnetStatus parse_stage(json_object *o, int index, UnetAugmentStage *s, UnetError *err)
{
    char path[64];
    snprintf(path, sizeof path, "transforms[%d]", index);
    if (!json_object_is_type(o, json_type_object))
        return fail(err, "augment config: %s must be an object", path, NULL);
    json_object *list;
    memset(s, 0, sizeof *s);
    if (!json_object_object_get_ex(o, "one_of", &list)) {
        s->count = 1;
        return parse_op(o, path, 0, &s->ops[0], &s->p, err);
    }
    if (!json_object_is_type(list, json_type_array))
        return fail(err, "augment config: %s must be an array of transforms", path, "one_of");
    size_t n = json_object_array_length(list);
    if (n < 1 || n > UNET_AUGMENT_MAX_CHOICES) {
        char msg[160];
        snprintf(msg, sizeof msg, "augment config: %%s has %zu transforms; use 1 to %d", n,
                 UNET_AUGMENT_MAX_CHOICES);
        return fail(err, msg, path, "one_of");
    }
    s->p = 0.5f;
    json_object_object_foreach(o, key, val) {
        if (!strcmp(key, "one_of"))
            continue;
        if (!strcmp(key, "p")) {
            if (!is_number(val))
                return fail(err, "augment config: %s must be a number", path, key);
            s->p = (float)json_object_get_double(val);
        } else {
            return fail(err, "augment config: %s: unknown key (a one_of group has 'one_of' and "
                             "'p')", path, key);
        }
    }
    s->count = (int)n;
    for (size_t j = 0; j < n; j++) {
        char sub[96];
        snprintf(sub, sizeof sub, "%s.one_of[%zu]", path, j);
        json_object *child = json_object_array_get_idx(list, j);
        if (json_object_is_type(child, json_type_object) &&
            json_object_object_get_ex(child, "one_of", NULL))
            return fail(err, "augment config: %s: one_of groups cannot be nested", sub, NULL);
        float unused;
        UnetStatus st = parse_op(child, sub, 1, &s->ops[j], &unused, err);
        if (st != UNET_OK)
            return st;
    }
    return UNET_OK;
}

UnetStatus unet_augment_config_from_json(UnetAugmentConfig *cfg, const char *json, UnetError *err)
{
    enum json_tokener_error jerr = json_tokener_success;
    json_object *root = json_tokener_parse_verbose(json ? json : "", &jerr);
    if (!root)
        return unet_error_set(err, UNET_ERR_FORMAT, "augment config is not valid JSON: %s",
                              json_tokener_error_desc(jerr));
    UnetStatus st = UNET_OK;
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return unet_error_set(err, UNET_ERR_FORMAT, "augment config must be a JSON object");
    }
    UnetAugmentConfig c;
    memset(&c, 0, sizeof c);
    c.intensity_max = 1.0f;
    int have_transforms = 0;
    json_object_object_foreach(root, key, val) {
        if (st != UNET_OK)
            break;
        if (!strcmp(key, "intensity_max")) {
            if (!is_number(val))
                st = fail(err, "augment config: %s must be a number", "", key);
            else
                c.intensity_max = (float)json_object_get_double(val);
        } else if (!strcmp(key, "transforms")) {
            have_transforms = 1;
            if (!json_object_is_type(val, json_type_array)) {
                st = fail(err, "augment config: %s must be an array", "", key);
                continue;
            }
            size_t n = json_object_array_length(val);
            if (n > UNET_AUGMENT_MAX_STAGES) {
                st = unet_error_set(err, UNET_ERR_FORMAT,
                                    "augment config: transforms has %zu entries; at most %d",
                                    n, UNET_AUGMENT_MAX_STAGES);
                continue;
            }
            c.count = (int)n;
            for (size_t i = 0; i < n && st == UNET_OK; i++)
                st = parse_stage(json_object_array_get_idx(val, i), (int)i, &c.stages[i], err);
        } else {
            st = fail(err, "augment config: unknown key '%s' (use intensity_max and transforms)",
                      "", key);
        }
    }
    json_object_put(root);
    if (st == UNET_OK && !have_transforms)
        st = unet_error_set(err, UNET_ERR_FORMAT, "augment config: 'transforms' is missing");
    if (st == UNET_OK) {
        st = unet_augment_config_validate(&c, err);
        if (st != UNET_OK) {
            if (err)
                err->status = UNET_ERR_FORMAT;
            st = UNET_ERR_FORMAT;
        }
    }
    if (st == UNET_OK)
        *cfg = c;
    return st;
}

UnetStatus unet_augment_config_load(UnetAugmentConfig *cfg, const char *path, UnetError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return unet_error_set(err, UNET_ERR_IO, "cannot open augment config %s: %s", path,
                              strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (len + 1 < cap || got == 0)
            break;
        if (cap > (64u << 20)) {
            free(buf);
            fclose(f);
            return unet_error_set(err, UNET_ERR_FORMAT, "augment config %s is too large", path);
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory reading %s", path);
    if (bad) {
        free(buf);
        return unet_error_set(err, UNET_ERR_IO, "cannot read augment config %s: %s", path, strerror(bad));
    }
    buf[len] = '\0';
    UnetStatus st = unet_augment_config_from_json(cfg, buf, err);
    free(buf);
    if (st != UNET_OK)
        unet_error_prefix(err, "%s: ", path);
    return st;
}

static void add_params(json_object *o, const UnetAugmentOp *op)
{
    for (int i = 0; i < PARAM_COUNT; i++) {
        const ParamDesc *d = &param_table[i];
        if (!(d->kinds & K(op->kind)))
            continue;
        const char *field = (const char *)op + d->offset;
        if (d->type == P_FLOAT) {
            float f;
            memcpy(&f, field, sizeof f);
            json_object_object_add(o, d->key, json_object_new_double(f));
        } else if (d->type == P_BLUR) {
            UnetBlur v;
            memcpy(&v, field, sizeof v);
            json_object_object_add(o, d->key, json_object_new_string(blur_names[v == UNET_BLUR_BOX]));
        } else {
            int v;
            memcpy(&v, field, sizeof v);
            json_object_object_add(o, d->key, d->type == P_BOOL ? json_object_new_boolean(v)
                                                                : json_object_new_int(v));
        }
    }
}

static char *to_text(json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    char *text = s ? strdup(s) : NULL;
    json_object_put(o);
    return text;
}

char *unet_augment_config_to_json(const UnetAugmentConfig *cfg)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, "intensity_max", json_object_new_double(cfg->intensity_max));
    json_object *list = json_object_new_array();
    for (int i = 0; i < cfg->count; i++) {
        const UnetAugmentStage *s = &cfg->stages[i];
        json_object *o = json_object_new_object();
        if (s->count > 1) {
            json_object *arr = json_object_new_array();
            for (int j = 0; j < s->count; j++) {
                json_object *c = json_object_new_object();
                json_object_object_add(c, "type",
                                       json_object_new_string(unet_augment_kind_name(s->ops[j].kind)));
                json_object_object_add(c, "weight", json_object_new_double(s->ops[j].weight));
                add_params(c, &s->ops[j]);
                json_object_array_add(arr, c);
            }
            json_object_object_add(o, "one_of", arr);
        } else {
            json_object_object_add(o, "type",
                                   json_object_new_string(unet_augment_kind_name(s->ops[0].kind)));
            add_params(o, &s->ops[0]);
        }
        json_object_object_add(o, "p", json_object_new_double(s->p));
        json_object_array_add(list, o);
    }
    json_object_object_add(root, "transforms", list);
    return to_text(root);
}

char *unet_augment_record_to_json(const UnetAugmentRecord *rec)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, "seed", json_object_new_uint64(rec->seed));
    json_object *in = json_object_new_array(), *out = json_object_new_array();
    json_object_array_add(in, json_object_new_int(rec->in_w));
    json_object_array_add(in, json_object_new_int(rec->in_h));
    json_object_array_add(out, json_object_new_int(rec->out_w));
    json_object_array_add(out, json_object_new_int(rec->out_h));
    json_object_object_add(root, "input_size", in);
    json_object_object_add(root, "output_size", out);
    json_object *list = json_object_new_array();
    for (int i = 0; i < rec->count; i++) {
        const UnetAugmentStep *s = &rec->steps[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string(unet_augment_kind_name(s->kind)));
        json_object_object_add(o, "stage", json_object_new_int(s->stage));
        switch (s->kind) {
        case UNET_AUG_ROTATE90:
            json_object_object_add(o, "k", json_object_new_int(s->k));
            break;
        case UNET_AUG_SHIFT_SCALE_ROTATE:
            json_object_object_add(o, "angle", json_object_new_double(s->angle));
            json_object_object_add(o, "scale", json_object_new_double(s->scale));
            json_object_object_add(o, "dx", json_object_new_double(s->dx));
            json_object_object_add(o, "dy", json_object_new_double(s->dy));
            break;
        case UNET_AUG_GAUSS_NOISE:
            json_object_object_add(o, "var", json_object_new_double(s->var));
            break;
        case UNET_AUG_BRIGHTNESS_CONTRAST:
            json_object_object_add(o, "alpha", json_object_new_double(s->alpha));
            json_object_object_add(o, "beta", json_object_new_double(s->beta));
            break;
        case UNET_AUG_PAD_IF_NEEDED: {
            json_object *pad = json_object_new_array();
            json_object_array_add(pad, json_object_new_int(s->pad_top));
            json_object_array_add(pad, json_object_new_int(s->pad_bottom));
            json_object_array_add(pad, json_object_new_int(s->pad_left));
            json_object_array_add(pad, json_object_new_int(s->pad_right));
            json_object_object_add(o, "pad_top_bottom_left_right", pad);
            break;
        }
        case UNET_AUG_GRID_ELASTIC: {
            json_object *gx = json_object_new_array(), *gy = json_object_new_array();
            for (int j = 0; j < s->op.grid * s->op.grid; j++) {
                json_object_array_add(gx, json_object_new_double(s->grid_dx[j]));
                json_object_array_add(gy, json_object_new_double(s->grid_dy[j]));
            }
            json_object_object_add(o, "grid_dx", gx);
            json_object_object_add(o, "grid_dy", gy);
            break;
        }
        default:
            break;
        }
        if (s->kind == UNET_AUG_ELASTIC) {
            json_object *a = json_object_new_array();
            for (int j = 0; j < 6; j++)
                json_object_array_add(a, json_object_new_double(s->affine[j]));
            json_object_object_add(o, "affine", a);
        }
        if (s->kind == UNET_AUG_GAUSS_NOISE || s->kind == UNET_AUG_MULT_NOISE ||
            s->kind == UNET_AUG_ELASTIC)
            json_object_object_add(o, "field_seed", json_object_new_uint64(s->seed));
        add_params(o, &s->op);
        json_object_array_add(list, o);
    }
    json_object_object_add(root, "steps", list);
    return to_text(root);
}
