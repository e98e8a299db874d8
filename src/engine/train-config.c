/* train-config.c - the training configuration: defaults, checks and its JSON form (config.json). */
#include "trainer.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fileutil.h"
#include "model.h"

#define RUN_FORMAT "unet-workbench-run-1"

void unet_lr_test_config_default(UnetLrTestConfig *cfg)
{
    cfg->min_lr = 1e-7;
    cfg->max_lr = 10.0;
    cfg->iterations = 100;
    cfg->diverge_factor = 200.0;
    cfg->beta = 0.98;
}

/* The notebook's pipeline minus pad_if_needed: the trainer cuts its own
 * tiles and mirrors their context, so padding a tile to 572 would only cost. */
static void augment_default(UnetAugmentConfig *a)
{
    unet_augment_config_default(a);
    int k = 0;
    for (int i = 0; i < a->count; i++)
        if (!(a->stages[i].count == 1 && a->stages[i].ops[0].kind == UNET_AUG_PAD_IF_NEEDED))
            a->stages[k++] = a->stages[i];
    a->count = k;
}

void unet_train_config_default(UnetTrainConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->val_fraction = 0.2;
    unet_dataset_options_default(&cfg->dataset);
    unet_model_config_default(&cfg->model, UNET_ARCH_UNET);
    cfg->model.in_channels = 0;
    unet_optimizer_config_default(&cfg->optimizer, UNET_OPTIM_SGD);
    cfg->optimizer.lr = 0.0;
    unet_lr_schedule_config_default(&cfg->schedule, UNET_LR_CONSTANT);
    cfg->batch = 1;
    cfg->epochs = 50;
    cfg->patience = 10;
    cfg->monitor = UNET_MONITOR_VAL_LOSS;
    cfg->loss = UNET_LOSS_DEFAULT;
    cfg->weight_map = 1;
    unet_weightmap_config_default(&cfg->weights);
    cfg->augment = 1;
    augment_default(&cfg->augmentation);
    cfg->seed = 1;
    cfg->divergence_factor = 100.0;
    unet_lr_test_config_default(&cfg->lr_test);
    snprintf(cfg->device, sizeof cfg->device, "auto");
    cfg->precision = UNET_PRECISION_TF32;
    cfg->workers = 2;
    cfg->previews = 1;
    cfg->save_predictions = 64;
}

const char *unet_monitor_name(UnetMonitor m)
{
    return m == UNET_MONITOR_VAL_DICE ? "val_dice" : "val_loss";
}

UnetStatus unet_monitor_parse(const char *s, UnetMonitor *out, UnetError *err)
{
    if (!strcasecmp(s, "val_loss") || !strcasecmp(s, "loss"))
        *out = UNET_MONITOR_VAL_LOSS;
    else if (!strcasecmp(s, "val_dice") || !strcasecmp(s, "dice"))
        *out = UNET_MONITOR_VAL_DICE;
    else
        return unet_error_set(err, UNET_ERR_INVALID,
                              "unknown monitor '%s': use val_loss or val_dice", s);
    return UNET_OK;
}

static const char *loss_name(UnetLossKind k)
{
    switch ((int)k) {
    case UNET_LOSS_BCE: return "bce";
    case UNET_LOSS_SOFTMAX_CE: return "softmax_ce";
    case UNET_LOSS_DICE: return "dice";
    default: return "default";
    }
}

static UnetStatus loss_parse(const char *s, UnetLossKind *out, UnetError *err)
{
    if (!strcasecmp(s, "default") || !strcasecmp(s, "auto"))
        *out = UNET_LOSS_DEFAULT;
    else if (!strcasecmp(s, "bce"))
        *out = UNET_LOSS_BCE;
    else if (!strcasecmp(s, "softmax_ce") || !strcasecmp(s, "ce"))
        *out = UNET_LOSS_SOFTMAX_CE;
    else if (!strcasecmp(s, "dice"))
        *out = UNET_LOSS_DICE;
    else
        return unet_error_set(err, UNET_ERR_INVALID,
                              "unknown loss '%s': use default, bce, softmax_ce or dice", s);
    return UNET_OK;
}

UnetStatus unet_train_config_validate(const UnetTrainConfig *cfg, UnetError *err)
{
    if (!cfg->data_dir[0])
        return unet_error_set(err, UNET_ERR_INVALID,
                              "no training data: give the folder with images/ and masks/");
    if (!cfg->val_dir[0] && !(cfg->val_fraction >= 0.0 && cfg->val_fraction < 1.0))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "validation fraction %g is out of range: use 0 (no validation) up to "
                              "but not including 1", cfg->val_fraction);
    UnetStatus st = unet_dataset_options_validate(&cfg->dataset, err);
    if (st)
        return unet_error_prefix(err, "dataset options: ");
    UnetModelConfig m = cfg->model;
    if (m.in_channels == 0)
        m.in_channels = 1;
    if ((st = unet_model_config_validate(&m, err)))
        return unet_error_prefix(err, "model: ");
    if (cfg->optimizer.lr == 0.0) {
        UnetOptimizerConfig o = cfg->optimizer;
        o.lr = 1e-3;
        st = unet_optimizer_config_validate(&o, err);
    } else {
        st = unet_optimizer_config_validate(&cfg->optimizer, err);
    }
    if (st)
        return unet_error_prefix(err, "optimizer: ");
    UnetLrScheduleConfig sc = cfg->schedule;
    if (sc.kind == UNET_LR_COSINE && sc.t_max == 0)
        sc.t_max = 1;
    if ((st = unet_lr_schedule_config_validate(&sc, err)))
        return unet_error_prefix(err, "schedule: ");
    if (cfg->batch < 1 || cfg->batch > 4096)
        return unet_error_set(err, UNET_ERR_INVALID, "batch size %d is out of range (1..4096)",
                              cfg->batch);
    if (cfg->epochs < 1 || cfg->epochs > 1000000)
        return unet_error_set(err, UNET_ERR_INVALID, "epochs %d is out of range (1..1000000)",
                              cfg->epochs);
    if (cfg->patience < 0)
        return unet_error_set(err, UNET_ERR_INVALID, "patience %d is negative (0 turns early "
                              "stopping off)", cfg->patience);
    if (cfg->steps_per_epoch < 0)
        return unet_error_set(err, UNET_ERR_INVALID, "steps per epoch %d is negative (0: cover "
                              "every training image once)", cfg->steps_per_epoch);
    if (cfg->tile < 0 || cfg->tile > 16384)
        return unet_error_set(err, UNET_ERR_INVALID, "tile size %d is out of range (0 = auto, "
                              "up to 16384)", cfg->tile);
    if (cfg->loss != UNET_LOSS_DEFAULT && cfg->loss != UNET_LOSS_BCE &&
        cfg->loss != UNET_LOSS_SOFTMAX_CE && cfg->loss != UNET_LOSS_DICE)
        return unet_error_set(err, UNET_ERR_INVALID, "unknown loss kind %d", (int)cfg->loss);
    if (cfg->loss == UNET_LOSS_BCE && cfg->model.classes != 1)
        return unet_error_set(err, UNET_ERR_INVALID, "loss bce needs a 1-class model; this one "
                              "has %d classes (use softmax_ce)", cfg->model.classes);
    if (cfg->loss == UNET_LOSS_SOFTMAX_CE && cfg->model.classes < 2)
        return unet_error_set(err, UNET_ERR_INVALID, "loss softmax_ce needs at least 2 classes "
                              "(use bce for a 1-class model)");
    if ((st = unet_weightmap_config_validate(&cfg->weights, err)))
        return unet_error_prefix(err, "weight map: ");
    if (cfg->augment && (st = unet_augment_config_validate(&cfg->augmentation, err)))
        return st;
    if (!(cfg->divergence_factor == 0.0 || cfg->divergence_factor > 1.0))
        return unet_error_set(err, UNET_ERR_INVALID, "divergence factor %g must be above 1 (or 0 "
                              "to stop only on NaN/Inf)", cfg->divergence_factor);
    const UnetLrTestConfig *lt = &cfg->lr_test;
    if (!(lt->min_lr > 0.0 && lt->max_lr > lt->min_lr && isfinite(lt->max_lr)))
        return unet_error_set(err, UNET_ERR_INVALID, "LR test range %g..%g is not valid: it needs "
                              "0 < min < max", lt->min_lr, lt->max_lr);
    if (lt->iterations < 5 || lt->iterations > 100000)
        return unet_error_set(err, UNET_ERR_INVALID, "LR test iterations %d out of range (5..100000)",
                              lt->iterations);
    if (!(lt->diverge_factor > 1.0))
        return unet_error_set(err, UNET_ERR_INVALID, "LR test divergence factor %g must be above 1",
                              lt->diverge_factor);
    if (!(lt->beta >= 0.0 && lt->beta < 1.0))
        return unet_error_set(err, UNET_ERR_INVALID, "LR test smoothing %g must be in [0, 1)",
                              lt->beta);
    if (cfg->precision != UNET_PRECISION_FP32 && cfg->precision != UNET_PRECISION_TF32 &&
        cfg->precision != UNET_PRECISION_BF16)
        return unet_error_set(err, UNET_ERR_INVALID, "precision %d is not fp32, tf32 or bf16",
                              (int)cfg->precision);
    if (cfg->threads < 0 || cfg->threads > 1024)
        return unet_error_set(err, UNET_ERR_INVALID, "threads %d out of range (0 = all cores)",
                              cfg->threads);
    if (cfg->workers < 1 || cfg->workers > 64)
        return unet_error_set(err, UNET_ERR_INVALID, "data workers %d out of range (1..64)",
                              cfg->workers);
    if (cfg->prefetch < 0 || cfg->prefetch > 4096)
        return unet_error_set(err, UNET_ERR_INVALID, "prefetch depth %d out of range (0 = auto)",
                              cfg->prefetch);
    if (cfg->previews < 0 || cfg->save_predictions < 0)
        return unet_error_set(err, UNET_ERR_INVALID, "preview and prediction counts must be >= 0");
    return UNET_OK;
}

/* ---- JSON ------------------------------------------------------------------ */

/* Shortest text that reads back as the same double. */
static json_object *num(double v)
{
    if (!isfinite(v))
        return json_object_new_double(v);
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
    return json_object_new_double_s(v, buf);
}

static json_object *parse_or_null(char *text)
{
    json_object *o = text ? json_tokener_parse(text) : NULL;
    free(text);
    return o;
}

char *unet_train_config_to_json(const UnetTrainConfig *cfg)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, "format", json_object_new_string(RUN_FORMAT));

    json_object *d = json_object_new_object();
    json_object_object_add(d, "train", json_object_new_string(cfg->data_dir));
    json_object_object_add(d, "val", cfg->val_dir[0] ? json_object_new_string(cfg->val_dir) : NULL);
    json_object_object_add(d, "val_fraction", num(cfg->val_fraction));
    json_object_object_add(d, "mask_mode",
                           json_object_new_string(unet_mask_mode_name(cfg->dataset.mask_mode)));
    json_object_object_add(d, "classes", json_object_new_int(cfg->dataset.classes));
    json_object_object_add(d, "instance_border",
                           json_object_new_boolean(cfg->dataset.instance_border));
    json_object_object_add(d, "intensity",
                           json_object_new_string(unet_intensity_name(cfg->dataset.input.intensity)));
    json_object_object_add(d, "range_lo", num(cfg->dataset.input.range_lo));
    json_object_object_add(d, "range_hi", num(cfg->dataset.input.range_hi));
    json_object_object_add(d, "color",
                           json_object_new_string(unet_color_name(cfg->dataset.input.color)));
    json_object_object_add(root, "data", d);

    json_object_object_add(root, "model", parse_or_null(unet_model_config_to_json(&cfg->model)));
    json_object_object_add(root, "optimizer",
                           parse_or_null(unet_optimizer_config_to_json(&cfg->optimizer)));
    json_object_object_add(root, "schedule",
                           parse_or_null(unet_lr_schedule_config_to_json(&cfg->schedule)));

    json_object *t = json_object_new_object();
    json_object_object_add(t, "batch", json_object_new_int(cfg->batch));
    json_object_object_add(t, "epochs", json_object_new_int(cfg->epochs));
    json_object_object_add(t, "patience", json_object_new_int(cfg->patience));
    json_object_object_add(t, "monitor", json_object_new_string(unet_monitor_name(cfg->monitor)));
    json_object_object_add(t, "steps_per_epoch", json_object_new_int(cfg->steps_per_epoch));
    json_object_object_add(t, "tile", json_object_new_int(cfg->tile));
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
    json_object_object_add(t, "seed", json_object_new_string(seed));
    json_object_object_add(t, "divergence_factor", num(cfg->divergence_factor));
    json_object_object_add(root, "training", t);

    json_object *l = json_object_new_object();
    json_object_object_add(l, "kind", json_object_new_string(loss_name(cfg->loss)));
    json_object_object_add(l, "weight_map", json_object_new_boolean(cfg->weight_map));
    json_object_object_add(l, "w0", num(cfg->weights.w0));
    json_object_object_add(l, "sigma", num(cfg->weights.sigma));
    json_object_object_add(l, "balance",
                           json_object_new_string(unet_class_balance_name(cfg->weights.balance)));
    json_object_object_add(l, "tolerance", num(cfg->weights.tolerance));
    json_object_object_add(l, "separate_touching",
                           json_object_new_boolean(cfg->weights.separate_touching));
    json_object_object_add(root, "loss", l);

    json_object_object_add(root, "augmentation",
                           cfg->augment ? parse_or_null(unet_augment_config_to_json(&cfg->augmentation))
                                        : NULL);

    json_object *r = json_object_new_object();
    json_object_object_add(r, "min_lr", num(cfg->lr_test.min_lr));
    json_object_object_add(r, "max_lr", num(cfg->lr_test.max_lr));
    json_object_object_add(r, "iterations", json_object_new_int(cfg->lr_test.iterations));
    json_object_object_add(r, "diverge_factor", num(cfg->lr_test.diverge_factor));
    json_object_object_add(r, "beta", num(cfg->lr_test.beta));
    json_object_object_add(root, "lr_test", r);

    json_object *e = json_object_new_object();
    json_object_object_add(e, "device", json_object_new_string(cfg->device));
    json_object_object_add(e, "precision",
                           json_object_new_string(unet_precision_name(cfg->precision)));
    json_object_object_add(e, "threads", json_object_new_int(cfg->threads));
    json_object_object_add(e, "workers", json_object_new_int(cfg->workers));
    json_object_object_add(e, "prefetch", json_object_new_int(cfg->prefetch));
    json_object_object_add(e, "previews", json_object_new_int(cfg->previews));
    json_object_object_add(e, "save_predictions", json_object_new_int(cfg->save_predictions));
    json_object_object_add(e, "cuda_graphs", json_object_new_boolean(cfg->cuda_graphs));
    json_object_object_add(root, "execution", e);

    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_SPACED |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = s ? strdup(s) : NULL;
    json_object_put(root);
    return out;
}

/* ---- reading ---------------------------------------------------------------- */

typedef struct Reader {
    UnetError *err;
    const char *section;
} Reader;

static UnetStatus check_keys(Reader *r, json_object *o, const char *const *keys)
{
    json_object_object_foreach(o, key, val) {
        (void)val;
        int ok = 0;
        for (const char *const *k = keys; *k; k++)
            if (!strcmp(*k, key))
                ok = 1;
        if (!ok)
            return unet_error_set(r->err, UNET_ERR_FORMAT, "%s: unknown key \"%s\"", r->section,
                                  key);
    }
    return UNET_OK;
}

static UnetStatus get_num(Reader *r, json_object *o, const char *key, double *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return UNET_OK;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return unet_error_set(r->err, UNET_ERR_FORMAT, "%s.%s must be a number", r->section, key);
    *out = json_object_get_double(v);
    return UNET_OK;
}

static UnetStatus get_float(Reader *r, json_object *o, const char *key, float *out)
{
    double d = *out;
    UnetStatus st = get_num(r, o, key, &d);
    *out = (float)d;
    return st;
}

static UnetStatus get_int(Reader *r, json_object *o, const char *key, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return UNET_OK;
    if (!json_object_is_type(v, json_type_int))
        return unet_error_set(r->err, UNET_ERR_FORMAT, "%s.%s must be a whole number", r->section,
                              key);
    int64_t x = json_object_get_int64(v);
    if (x < -2147483647 || x > 2147483647)
        return unet_error_set(r->err, UNET_ERR_FORMAT, "%s.%s is out of range", r->section, key);
    *out = (int)x;
    return UNET_OK;
}

static UnetStatus get_bool(Reader *r, json_object *o, const char *key, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return UNET_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return unet_error_set(r->err, UNET_ERR_FORMAT, "%s.%s must be true or false", r->section,
                              key);
    *out = json_object_get_boolean(v);
    return UNET_OK;
}

/* *out gets NULL for a JSON null. */
static UnetStatus get_str(Reader *r, json_object *o, const char *key, const char **out, int *present)
{
    json_object *v;
    *present = json_object_object_get_ex(o, key, &v);
    if (!*present)
        return UNET_OK;
    if (v == NULL) {
        *out = NULL;
        return UNET_OK;
    }
    if (!json_object_is_type(v, json_type_string))
        return unet_error_set(r->err, UNET_ERR_FORMAT, "%s.%s must be a string", r->section, key);
    *out = json_object_get_string(v);
    return UNET_OK;
}

static UnetStatus copy_path(Reader *r, const char *key, const char *s, char *dst, size_t size)
{
    if (strlen(s) >= size)
        return unet_error_set(r->err, UNET_ERR_FORMAT, "%s.%s: the path is too long", r->section,
                              key);
    snprintf(dst, size, "%s", s);
    return UNET_OK;
}

#define TRY(x)                          \
    do {                                \
        UnetStatus st_ = (x);           \
        if (st_ != UNET_OK)             \
            return st_;                 \
    } while (0)

static UnetStatus read_data(Reader *r, json_object *o, UnetTrainConfig *cfg)
{
    static const char *const keys[] = { "train", "val", "val_fraction", "mask_mode", "classes",
                                        "instance_border", "intensity", "range_lo", "range_hi",
                                        "color", NULL };
    TRY(check_keys(r, o, keys));
    const char *s;
    int present;
    TRY(get_str(r, o, "train", &s, &present));
    if (present)
        TRY(copy_path(r, "train", s ? s : "", cfg->data_dir, sizeof cfg->data_dir));
    TRY(get_str(r, o, "val", &s, &present));
    if (present)
        TRY(copy_path(r, "val", s ? s : "", cfg->val_dir, sizeof cfg->val_dir));
    TRY(get_num(r, o, "val_fraction", &cfg->val_fraction));
    TRY(get_str(r, o, "mask_mode", &s, &present));
    if (present && s && unet_mask_mode_parse(s, &cfg->dataset.mask_mode, r->err))
        return unet_error_prefix(r->err, "data.mask_mode: ");
    TRY(get_int(r, o, "classes", &cfg->dataset.classes));
    TRY(get_bool(r, o, "instance_border", &cfg->dataset.instance_border));
    TRY(get_str(r, o, "intensity", &s, &present));
    if (present && s && unet_intensity_parse(s, &cfg->dataset.input.intensity, r->err))
        return unet_error_prefix(r->err, "data.intensity: ");
    TRY(get_float(r, o, "range_lo", &cfg->dataset.input.range_lo));
    TRY(get_float(r, o, "range_hi", &cfg->dataset.input.range_hi));
    TRY(get_str(r, o, "color", &s, &present));
    if (present && s && unet_color_parse(s, &cfg->dataset.input.color, r->err))
        return unet_error_prefix(r->err, "data.color: ");
    return UNET_OK;
}

static UnetStatus read_training(Reader *r, json_object *o, UnetTrainConfig *cfg)
{
    static const char *const keys[] = { "batch", "epochs", "patience", "monitor",
                                        "steps_per_epoch", "tile", "seed", "divergence_factor",
                                        NULL };
    TRY(check_keys(r, o, keys));
    TRY(get_int(r, o, "batch", &cfg->batch));
    TRY(get_int(r, o, "epochs", &cfg->epochs));
    TRY(get_int(r, o, "patience", &cfg->patience));
    TRY(get_int(r, o, "steps_per_epoch", &cfg->steps_per_epoch));
    TRY(get_int(r, o, "tile", &cfg->tile));
    TRY(get_num(r, o, "divergence_factor", &cfg->divergence_factor));
    const char *s;
    int present;
    TRY(get_str(r, o, "monitor", &s, &present));
    if (present && s && unet_monitor_parse(s, &cfg->monitor, r->err))
        return unet_error_prefix(r->err, "training.monitor: ");
    /* A string keeps all 64 bits; a plain number is accepted too. */
    json_object *v;
    if (json_object_object_get_ex(o, "seed", &v)) {
        if (json_object_is_type(v, json_type_string)) {
            char *end;
            const char *txt = json_object_get_string(v);
            unsigned long long x = strtoull(txt, &end, 10);
            if (end == txt || *end || txt[0] == '-')
                return unet_error_set(r->err, UNET_ERR_FORMAT,
                                      "training.seed \"%s\" is not a whole number", txt);
            cfg->seed = x;
        } else if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0) {
            cfg->seed = (uint64_t)json_object_get_int64(v);
        } else {
            return unet_error_set(r->err, UNET_ERR_FORMAT,
                                  "training.seed must be a non-negative whole number");
        }
    }
    return UNET_OK;
}

static UnetStatus read_loss(Reader *r, json_object *o, UnetTrainConfig *cfg)
{
    static const char *const keys[] = { "kind", "weight_map", "w0", "sigma", "balance",
                                        "tolerance", "separate_touching", NULL };
    TRY(check_keys(r, o, keys));
    const char *s;
    int present;
    TRY(get_str(r, o, "kind", &s, &present));
    if (present && s && loss_parse(s, &cfg->loss, r->err))
        return unet_error_prefix(r->err, "loss.kind: ");
    TRY(get_bool(r, o, "weight_map", &cfg->weight_map));
    TRY(get_float(r, o, "w0", &cfg->weights.w0));
    TRY(get_float(r, o, "sigma", &cfg->weights.sigma));
    TRY(get_float(r, o, "tolerance", &cfg->weights.tolerance));
    TRY(get_bool(r, o, "separate_touching", &cfg->weights.separate_touching));
    TRY(get_str(r, o, "balance", &s, &present));
    if (present && s && unet_class_balance_parse(s, &cfg->weights.balance, r->err))
        return unet_error_prefix(r->err, "loss.balance: ");
    return UNET_OK;
}

static UnetStatus read_lr_test(Reader *r, json_object *o, UnetTrainConfig *cfg)
{
    static const char *const keys[] = { "min_lr", "max_lr", "iterations", "diverge_factor", "beta",
                                        NULL };
    TRY(check_keys(r, o, keys));
    TRY(get_num(r, o, "min_lr", &cfg->lr_test.min_lr));
    TRY(get_num(r, o, "max_lr", &cfg->lr_test.max_lr));
    TRY(get_int(r, o, "iterations", &cfg->lr_test.iterations));
    TRY(get_num(r, o, "diverge_factor", &cfg->lr_test.diverge_factor));
    TRY(get_num(r, o, "beta", &cfg->lr_test.beta));
    return UNET_OK;
}

static UnetStatus read_execution(Reader *r, json_object *o, UnetTrainConfig *cfg)
{
    static const char *const keys[] = { "device", "precision", "threads", "workers", "prefetch",
                                        "previews", "save_predictions",
                                        "cuda_graphs",
                                        NULL };
    TRY(check_keys(r, o, keys));
    const char *s;
    int present;
    TRY(get_str(r, o, "device", &s, &present));
    if (present && s)
        TRY(copy_path(r, "device", s, cfg->device, sizeof cfg->device));
    TRY(get_str(r, o, "precision", &s, &present));
    if (present && s && unet_precision_parse(s, &cfg->precision, r->err))
        return unet_error_prefix(r->err, "execution.precision: ");
    TRY(get_int(r, o, "threads", &cfg->threads));
    TRY(get_int(r, o, "workers", &cfg->workers));
    TRY(get_int(r, o, "prefetch", &cfg->prefetch));
    TRY(get_int(r, o, "previews", &cfg->previews));
    TRY(get_int(r, o, "save_predictions", &cfg->save_predictions));
    TRY(get_bool(r, o, "cuda_graphs", &cfg->cuda_graphs));
    return UNET_OK;
}

static UnetStatus section(json_object *root, const char *key, json_object **out, UnetError *err)
{
    *out = NULL;
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || v == NULL)
        return UNET_OK;
    if (!json_object_is_type(v, json_type_object))
        return unet_error_set(err, UNET_ERR_FORMAT, "\"%s\" must be an object", key);
    *out = v;
    return UNET_OK;
}

static UnetStatus from_json_root(UnetTrainConfig *cfg, json_object *root, UnetError *err)
{
    if (!json_object_is_type(root, json_type_object))
        return unet_error_set(err, UNET_ERR_FORMAT, "the training config must be a JSON object");
    static const char *const keys[] = { "format", "data", "model", "optimizer", "schedule",
                                        "training", "loss", "augmentation", "lr_test",
                                        "execution", NULL };
    Reader r = { err, "config" };
    TRY(check_keys(&r, root, keys));
    json_object *v;
    if (json_object_object_get_ex(root, "format", &v) &&
        (!json_object_is_type(v, json_type_string) || strcmp(json_object_get_string(v), RUN_FORMAT)))
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "format is not \"%s\"; this config was written by another program "
                              "or version", RUN_FORMAT);
    json_object *o;
    TRY(section(root, "data", &o, err));
    if (o) {
        r.section = "data";
        TRY(read_data(&r, o, cfg));
    }
    TRY(section(root, "model", &o, err));
    if (o) {
        int in_channels_auto = 0;
        json_object *ic;
        if (json_object_object_get_ex(o, "in_channels", &ic) && json_object_is_type(ic, json_type_int) &&
            json_object_get_int(ic) == 0) {
            /* 0 ("from the images") is a trainer convention the model config does not know. */
            in_channels_auto = 1;
            json_object_object_add(o, "in_channels", json_object_new_int(1));
        }
        if (unet_model_config_from_json(&cfg->model, json_object_to_json_string(o), err))
            return unet_error_prefix(err, "model: ");
        if (in_channels_auto)
            cfg->model.in_channels = 0;
    }
    TRY(section(root, "optimizer", &o, err));
    if (o) {
        /* lr 0 means "from the LR test"; the optimizer's own check refuses it. */
        json_object *lr;
        int lr_auto = json_object_object_get_ex(o, "lr", &lr) && json_object_get_double(lr) == 0.0;
        if (lr_auto)
            json_object_object_add(o, "lr", json_object_new_double(1.0));
        if (unet_optimizer_config_from_json(&cfg->optimizer, json_object_to_json_string(o), err))
            return unet_error_prefix(err, "optimizer: ");
        if (lr_auto)
            cfg->optimizer.lr = 0.0;
    }
    TRY(section(root, "schedule", &o, err));
    if (o && unet_lr_schedule_config_from_json(&cfg->schedule, json_object_to_json_string(o), err))
        return unet_error_prefix(err, "schedule: ");
    TRY(section(root, "training", &o, err));
    if (o) {
        r.section = "training";
        TRY(read_training(&r, o, cfg));
    }
    TRY(section(root, "loss", &o, err));
    if (o) {
        r.section = "loss";
        TRY(read_loss(&r, o, cfg));
    }
    if (json_object_object_get_ex(root, "augmentation", &v)) {
        if (v == NULL) {
            cfg->augment = 0;
        } else {
            cfg->augment = 1;
            if (unet_augment_config_from_json(&cfg->augmentation, json_object_to_json_string(v), err))
                return unet_error_prefix(err, "augmentation: ");
        }
    }
    TRY(section(root, "lr_test", &o, err));
    if (o) {
        r.section = "lr_test";
        TRY(read_lr_test(&r, o, cfg));
    }
    TRY(section(root, "execution", &o, err));
    if (o) {
        r.section = "execution";
        TRY(read_execution(&r, o, cfg));
    }
    return UNET_OK;
}

UnetStatus unet_train_config_from_json(UnetTrainConfig *cfg, const char *json, UnetError *err)
{
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory parsing the training config");
    json_object *root = json_tokener_parse_ex(tok, json, (int)strlen(json));
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        json_object_put(root);
        return unet_error_set(err, UNET_ERR_FORMAT, "the training config is not valid JSON: %s",
                              json_tokener_error_desc(jerr));
    }
    UnetTrainConfig tmp = *cfg;
    UnetStatus st = from_json_root(&tmp, root, err);
    json_object_put(root);
    if (st == UNET_OK)
        *cfg = tmp;
    return st;
}

UnetStatus unet_train_config_load_run(UnetTrainConfig *cfg, const char *run_dir, UnetError *err)
{
    char *path = unet_path_join(run_dir, "config.json");
    if (!path)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    unsigned char *text = NULL;
    size_t len = 0;
    UnetStatus st;
    if (!unet_path_is_dir(run_dir)) {
        st = unet_error_set(err, UNET_ERR_IO, "run folder %s does not exist", run_dir);
        goto done;
    }
    if (!unet_path_is_file(path)) {
        st = unet_error_set(err, UNET_ERR_IO, "%s has no config.json: it is not a training run "
                            "folder (start a new run with --out)", run_dir);
        goto done;
    }
    if ((st = unet_read_file(path, &text, &len, err)))
        goto done;
    UnetTrainConfig tmp;
    unet_train_config_default(&tmp);
    if ((st = unet_train_config_from_json(&tmp, (const char *)text, err))) {
        unet_error_prefix(err, "%s: ", path);
        goto done;
    }
    if (strlen(run_dir) >= sizeof tmp.out_dir) {
        st = unet_error_set(err, UNET_ERR_INVALID, "run folder path is too long");
        goto done;
    }
    snprintf(tmp.out_dir, sizeof tmp.out_dir, "%s", run_dir);
    tmp.resume = 1;
    *cfg = tmp;
done:
    free(text);
    free(path);
    return st;
}
