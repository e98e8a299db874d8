/* model-config.c - defaults, validation, names and the JSON form of UnetModelConfig. */
#include "model-config.h"

#include <float.h>
#include <math.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void unet_model_config_default(UnetModelConfig *cfg, UnetArch arch)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = arch;
    cfg->in_channels = 1;
    cfg->leaky_slope = 0.01f;
    cfg->seed = 42;
    switch (arch) {
    case UNET_ARCH_UNET:
        cfg->classes = 1;
        cfg->depth = 5;
        cfg->base = 64;
        cfg->padding = UNET_PAD_VALID;
        cfg->norm = UNET_NORM_NONE;
        cfg->upsample = UNET_UP_TRANSPOSE;
        cfg->activation = UNET_ACT_RELU;
        break;
    case UNET_ARCH_LIGHT:
        cfg->classes = 6;
        cfg->depth = 4;
        cfg->base = 64;
        cfg->padding = UNET_PAD_SAME;
        cfg->norm = UNET_NORM_INSTANCE;
        cfg->upsample = UNET_UP_BILINEAR;
        cfg->activation = UNET_ACT_LEAKY;
        break;
    case UNET_ARCH_FCN:
        cfg->classes = 6;
        cfg->depth = 4;
        cfg->base = 16;
        cfg->padding = UNET_PAD_SAME;
        cfg->norm = UNET_NORM_INSTANCE;
        cfg->upsample = UNET_UP_BILINEAR;
        cfg->activation = UNET_ACT_LEAKY;
        break;
    }
}

UnetStatus unet_model_config_validate(const UnetModelConfig *cfg, UnetError *err)
{
    if (cfg->in_channels < 1 || cfg->in_channels > 64)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "in_channels is %d; it must be between 1 and 64", cfg->in_channels);
    if (cfg->classes < 1 || cfg->classes > 256)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "classes is %d; it must be between 1 and 256", cfg->classes);
    if (cfg->arch == UNET_ARCH_UNET && (cfg->depth < 1 || cfg->depth > 8))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "depth is %d; it must be between 1 and 8 levels", cfg->depth);
    if (cfg->base < 1 || cfg->base > 1024)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "base channels is %d; it must be between 1 and 1024", cfg->base);
    if (cfg->activation == UNET_ACT_LEAKY && !(cfg->leaky_slope > 0.0f && cfg->leaky_slope < 1.0f))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "leaky_slope is %g; it must be in (0, 1)", (double)cfg->leaky_slope);
    return UNET_OK;
}

/* One table per enum keeps names, parsing and the JSON form in step. */
static const char *const arch_names[] = { "unet", "light", "fcn" };
static const char *const padding_names[] = { "valid", "same" };
static const char *const norm_names[] = { "none", "batch", "instance" };
static const char *const upsample_names[] = { "transpose", "bilinear" };
static const char *const activation_names[] = { "relu", "leaky" };

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *name_of(const char *const *names, int count, int value)
{
    return value >= 0 && value < count ? names[value] : "?";
}

static UnetStatus parse_name(const char *const *names, int count, const char *what, const char *s,
                             int *out, UnetError *err)
{
    for (int i = 0; i < count; i++)
        if (s && !strcmp(s, names[i])) {
            *out = i;
            return UNET_OK;
        }
    char choices[256] = "";
    for (int i = 0; i < count; i++) {
        strcat(choices, names[i]);
        if (i + 1 < count)
            strcat(choices, i + 2 < count ? ", " : " or ");
    }
    return unet_error_set(err, UNET_ERR_INVALID, "unknown %s '%s': use %s", what, s ? s : "",
                          choices);
}

const char *unet_arch_name(UnetArch a) { return name_of(arch_names, COUNT(arch_names), a); }
const char *unet_padding_name(UnetPadding p) { return name_of(padding_names, COUNT(padding_names), p); }
const char *unet_norm_name(UnetNorm n) { return name_of(norm_names, COUNT(norm_names), n); }
const char *unet_upsample_name(UnetUpsample u) { return name_of(upsample_names, COUNT(upsample_names), u); }
const char *unet_activation_name(UnetActivation a) { return name_of(activation_names, COUNT(activation_names), a); }

#define DEFINE_PARSE(fn, type, table, what)                                  \
    UnetStatus fn(const char *s, type *out, UnetError *err)                  \
    {                                                                        \
        int v = 0;                                                           \
        UnetStatus st = parse_name(table, COUNT(table), what, s, &v, err);  \
        if (st == UNET_OK)                                                   \
            *out = (type)v;                                                  \
        return st;                                                           \
    }

DEFINE_PARSE(unet_arch_parse, UnetArch, arch_names, "model")
DEFINE_PARSE(unet_padding_parse, UnetPadding, padding_names, "padding")
DEFINE_PARSE(unet_norm_parse, UnetNorm, norm_names, "norm")
DEFINE_PARSE(unet_upsample_parse, UnetUpsample, upsample_names, "upsampling")
DEFINE_PARSE(unet_activation_parse, UnetActivation, activation_names, "activation")

char *unet_model_config_to_json(const UnetModelConfig *cfg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "model", json_object_new_string(unet_arch_name(cfg->arch)));
    json_object_object_add(o, "in_channels", json_object_new_int(cfg->in_channels));
    json_object_object_add(o, "classes", json_object_new_int(cfg->classes));
    json_object_object_add(o, "depth", json_object_new_int(cfg->depth));
    json_object_object_add(o, "base", json_object_new_int(cfg->base));
    json_object_object_add(o, "padding", json_object_new_string(unet_padding_name(cfg->padding)));
    json_object_object_add(o, "norm", json_object_new_string(unet_norm_name(cfg->norm)));
    json_object_object_add(o, "upsample", json_object_new_string(unet_upsample_name(cfg->upsample)));
    json_object_object_add(o, "activation",
                           json_object_new_string(unet_activation_name(cfg->activation)));
    /* Shortest text that reads back as the same float (not 0.0099999997...). */
    char slope[32];
    snprintf(slope, sizeof slope, "%.9g", (double)cfg->leaky_slope);
    for (int digits = 1; digits < 9; digits++) {
        char shorter[32];
        snprintf(shorter, sizeof shorter, "%.*g", digits, (double)cfg->leaky_slope);
        if (strtof(shorter, NULL) == cfg->leaky_slope) {
            memcpy(slope, shorter, sizeof slope);
            break;
        }
    }
    json_object_object_add(o, "leaky_slope", json_object_new_double_s(strtod(slope, NULL), slope));
    json_object_object_add(o, "seed", json_object_new_int64((int64_t)cfg->seed));
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static UnetStatus json_get_int(json_object *v, const char *key, int lo, int hi, int *out,
                               UnetError *err)
{
    if (!json_object_is_type(v, json_type_int))
        return unet_error_set(err, UNET_ERR_FORMAT, "model config: '%s' must be an integer", key);
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "model config: '%s' is %lld; it must be between %d and %d", key,
                              (long long)x, lo, hi);
    *out = (int)x;
    return UNET_OK;
}

static UnetStatus json_get_name(json_object *v, const char *key, const char *const *names,
                                int count, int *out, UnetError *err)
{
    if (!json_object_is_type(v, json_type_string))
        return unet_error_set(err, UNET_ERR_FORMAT, "model config: '%s' must be a string", key);
    UnetStatus st = parse_name(names, count, key, json_object_get_string(v), out, err);
    if (st != UNET_OK) {
        unet_error_prefix(err, "model config: ");
        if (err)
            err->status = UNET_ERR_FORMAT;
        st = UNET_ERR_FORMAT;
    }
    return st;
}

UnetStatus unet_model_config_from_json(UnetModelConfig *cfg, const char *json, UnetError *err)
{
    json_object *root = json_tokener_parse(json ? json : "");
    if (!root || !json_object_is_type(root, json_type_object)) {
        if (root)
            json_object_put(root);
        return unet_error_set(err, UNET_ERR_FORMAT, "model config is not a JSON object");
    }
    UnetStatus st = UNET_OK;
    int arch = UNET_ARCH_UNET;
    json_object *v;
    if (json_object_object_get_ex(root, "model", &v))
        st = json_get_name(v, "model", arch_names, COUNT(arch_names), &arch, err);
    if (st == UNET_OK)
        unet_model_config_default(cfg, (UnetArch)arch);

    json_object_object_foreach(root, key, val) {
        if (st != UNET_OK)
            break;
        int tmp = 0;
        if (!strcmp(key, "model"))
            continue;
        else if (!strcmp(key, "in_channels"))
            st = json_get_int(val, key, 1, 64, &cfg->in_channels, err);
        else if (!strcmp(key, "classes"))
            st = json_get_int(val, key, 1, 256, &cfg->classes, err);
        else if (!strcmp(key, "depth"))
            st = json_get_int(val, key, 1, 8, &cfg->depth, err);
        else if (!strcmp(key, "base"))
            st = json_get_int(val, key, 1, 1024, &cfg->base, err);
        else if (!strcmp(key, "padding")) {
            if ((st = json_get_name(val, key, padding_names, COUNT(padding_names), &tmp, err)) == UNET_OK)
                cfg->padding = (UnetPadding)tmp;
        } else if (!strcmp(key, "norm")) {
            if ((st = json_get_name(val, key, norm_names, COUNT(norm_names), &tmp, err)) == UNET_OK)
                cfg->norm = (UnetNorm)tmp;
        } else if (!strcmp(key, "upsample")) {
            if ((st = json_get_name(val, key, upsample_names, COUNT(upsample_names), &tmp, err)) == UNET_OK)
                cfg->upsample = (UnetUpsample)tmp;
        } else if (!strcmp(key, "activation")) {
            if ((st = json_get_name(val, key, activation_names, COUNT(activation_names), &tmp, err)) == UNET_OK)
                cfg->activation = (UnetActivation)tmp;
        } else if (!strcmp(key, "leaky_slope")) {
            if (!json_object_is_type(val, json_type_double) && !json_object_is_type(val, json_type_int))
                st = unet_error_set(err, UNET_ERR_FORMAT, "model config: 'leaky_slope' must be a number");
            else if (!(fabs(json_object_get_double(val)) <= FLT_MAX)) /* 1e400, 5e42: no float */
                st = unet_error_set(err, UNET_ERR_FORMAT, "model config: 'leaky_slope' is out of range");
            else
                cfg->leaky_slope = (float)json_object_get_double(val);
        } else if (!strcmp(key, "seed")) {
            if (!json_object_is_type(val, json_type_int) || json_object_get_int64(val) < 0)
                st = unet_error_set(err, UNET_ERR_FORMAT, "model config: 'seed' must be a non-negative integer");
            else
                cfg->seed = (uint64_t)json_object_get_int64(val);
        } else {
            st = unet_error_set(err, UNET_ERR_FORMAT, "model config: unknown key '%s'", key);
        }
    }
    json_object_put(root);
    if (st == UNET_OK)
        st = unet_model_config_validate(cfg, err);
    return st;
}
