/* optim.c - SGD/Adam/AdamW over flat arenas, learning-rate schedules, and
 * their JSON forms. */
#include "optim.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const optim_names[] = { "sgd", "adam", "adamw" };
static const char *const schedule_names[] = { "constant", "exponential", "plateau", "cosine" };

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

const char *unet_optim_kind_name(UnetOptimKind k)
{
    return (unsigned)k < (unsigned)COUNT(optim_names) ? optim_names[k] : "?";
}

UnetStatus unet_optim_kind_parse(const char *s, UnetOptimKind *out, UnetError *err)
{
    int v = 0;
    UnetStatus st = parse_name(optim_names, COUNT(optim_names), "optimizer", s, &v, err);
    if (st == UNET_OK)
        *out = (UnetOptimKind)v;
    return st;
}

const char *unet_lr_schedule_name(UnetLrScheduleKind k)
{
    return (unsigned)k < (unsigned)COUNT(schedule_names) ? schedule_names[k] : "?";
}

UnetStatus unet_lr_schedule_parse(const char *s, UnetLrScheduleKind *out, UnetError *err)
{
    int v = 0;
    UnetStatus st = parse_name(schedule_names, COUNT(schedule_names), "learning-rate schedule", s,
                               &v, err);
    if (st == UNET_OK)
        *out = (UnetLrScheduleKind)v;
    return st;
}

/* ---- optimizer config ------------------------------------------------- */

/* A JSON number written with the fewest digits that read back exactly
 * (0.99, not json-c's 0.98999999999999999). */
static json_object *json_double(double v)
{
    char buf[40];
    if (!isfinite(v))
        return json_object_new_double(v);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eEn")) /* keep it a double when read back */
        strcat(buf, ".0");
    return json_object_new_double_s(v, buf);
}

void unet_optimizer_config_default(UnetOptimizerConfig *cfg, UnetOptimKind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->accumulate = 1;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    switch (kind) {
    case UNET_OPTIM_SGD:
        cfg->lr = 0.01;
        cfg->momentum = 0.99;
        break;
    case UNET_OPTIM_ADAM:
        cfg->lr = 1e-3;
        break;
    case UNET_OPTIM_ADAMW:
        cfg->lr = 1e-3;
        cfg->weight_decay = 0.01;
        break;
    }
}

UnetStatus unet_optimizer_config_validate(const UnetOptimizerConfig *cfg, UnetError *err)
{
    if ((unsigned)cfg->kind >= (unsigned)COUNT(optim_names))
        return unet_error_set(err, UNET_ERR_INVALID, "optimizer kind %d is unknown", cfg->kind);
    if (!(cfg->lr >= 0.0 && isfinite(cfg->lr)))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "learning rate is %g; it must be a finite number >= 0", cfg->lr);
    if (!(cfg->weight_decay >= 0.0 && isfinite(cfg->weight_decay)))
        return unet_error_set(err, UNET_ERR_INVALID, "weight_decay is %g; it must be >= 0",
                              cfg->weight_decay);
    if (cfg->accumulate < 1 || cfg->accumulate > 65536)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "accumulate is %d; it must be between 1 and 65536 micro-batches",
                              cfg->accumulate);
    if (cfg->kind == UNET_OPTIM_SGD) {
        if (!(cfg->momentum >= 0.0 && cfg->momentum < 1.0))
            return unet_error_set(err, UNET_ERR_INVALID, "momentum is %g; it must be in [0, 1)",
                                  cfg->momentum);
        if (cfg->nesterov && cfg->momentum == 0.0)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "Nesterov momentum needs momentum > 0");
    } else {
        if (!(cfg->beta1 >= 0.0 && cfg->beta1 < 1.0))
            return unet_error_set(err, UNET_ERR_INVALID, "beta1 is %g; it must be in [0, 1)",
                                  cfg->beta1);
        if (!(cfg->beta2 >= 0.0 && cfg->beta2 < 1.0))
            return unet_error_set(err, UNET_ERR_INVALID, "beta2 is %g; it must be in [0, 1)",
                                  cfg->beta2);
        if (!(cfg->eps > 0.0 && isfinite(cfg->eps)))
            return unet_error_set(err, UNET_ERR_INVALID, "eps is %g; it must be > 0", cfg->eps);
    }
    return UNET_OK;
}

char *unet_optimizer_config_to_json(const UnetOptimizerConfig *cfg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "optimizer", json_object_new_string(unet_optim_kind_name(cfg->kind)));
    json_object_object_add(o, "lr", json_double(cfg->lr));
    if (cfg->kind == UNET_OPTIM_SGD) {
        json_object_object_add(o, "momentum", json_double(cfg->momentum));
        json_object_object_add(o, "nesterov", json_object_new_boolean(cfg->nesterov));
    } else {
        json_object_object_add(o, "beta1", json_double(cfg->beta1));
        json_object_object_add(o, "beta2", json_double(cfg->beta2));
        json_object_object_add(o, "eps", json_double(cfg->eps));
    }
    json_object_object_add(o, "weight_decay", json_double(cfg->weight_decay));
    json_object_object_add(o, "accumulate", json_object_new_int(cfg->accumulate));
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static UnetStatus json_number(json_object *v, const char *what, const char *key, double *out,
                              UnetError *err)
{
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: '%s' must be a number", what, key);
    double x = json_object_get_double(v);
    if (!isfinite(x)) /* 1e400 reads as infinity */
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: '%s' is out of range", what, key);
    *out = x;
    return UNET_OK;
}

static UnetStatus json_int(json_object *v, const char *what, const char *key, int64_t lo,
                           int64_t hi, int64_t *out, UnetError *err)
{
    if (!json_object_is_type(v, json_type_int))
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: '%s' must be an integer", what, key);
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: '%s' is %lld; it must be between %lld and %lld",
                              what, key, (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return UNET_OK;
}

static json_object *parse_object(const char *json, const char *what, UnetError *err)
{
    json_object *root = json_tokener_parse(json ? json : "");
    if (!root || !json_object_is_type(root, json_type_object)) {
        if (root)
            json_object_put(root);
        unet_error_set(err, UNET_ERR_FORMAT, "%s is not a JSON object", what);
        return NULL;
    }
    return root;
}

/* Reads an enum name under key (if present) into *out, as a FORMAT error. */
static UnetStatus json_kind(json_object *root, const char *key, const char *const *names, int count,
                            const char *what, int *out, UnetError *err)
{
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v))
        return UNET_OK;
    if (!json_object_is_type(v, json_type_string))
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: '%s' must be a string", what, key);
    UnetStatus st = parse_name(names, count, key, json_object_get_string(v), out, err);
    if (st != UNET_OK) {
        unet_error_prefix(err, "%s: ", what);
        if (err)
            err->status = UNET_ERR_FORMAT;
        return UNET_ERR_FORMAT;
    }
    return UNET_OK;
}

static UnetStatus not_for_kind(const char *what, const char *key, const char *kind, UnetError *err)
{
    return unet_error_set(err, UNET_ERR_FORMAT, "%s: '%s' does not apply to %s", what, key, kind);
}

UnetStatus unet_optimizer_config_from_json(UnetOptimizerConfig *cfg, const char *json,
                                           UnetError *err)
{
    const char *what = "optimizer config";
    json_object *root = parse_object(json, what, err);
    if (!root)
        return UNET_ERR_FORMAT;
    int kind = UNET_OPTIM_SGD;
    UnetStatus st = json_kind(root, "optimizer", optim_names, COUNT(optim_names), what, &kind, err);
    if (st == UNET_OK)
        unet_optimizer_config_default(cfg, (UnetOptimKind)kind);
    const char *kname = unet_optim_kind_name((UnetOptimKind)kind);
    int sgd = kind == UNET_OPTIM_SGD;
    json_object_object_foreach(root, key, val) {
        if (st != UNET_OK)
            break;
        int64_t i64 = 0;
        if (!strcmp(key, "optimizer"))
            continue;
        else if (!strcmp(key, "lr"))
            st = json_number(val, what, key, &cfg->lr, err);
        else if (!strcmp(key, "weight_decay"))
            st = json_number(val, what, key, &cfg->weight_decay, err);
        else if (!strcmp(key, "accumulate")) {
            if ((st = json_int(val, what, key, 1, 65536, &i64, err)) == UNET_OK)
                cfg->accumulate = (int)i64;
        } else if (!strcmp(key, "momentum"))
            st = sgd ? json_number(val, what, key, &cfg->momentum, err)
                     : not_for_kind(what, key, kname, err);
        else if (!strcmp(key, "nesterov")) {
            if (!sgd)
                st = not_for_kind(what, key, kname, err);
            else if (!json_object_is_type(val, json_type_boolean))
                st = unet_error_set(err, UNET_ERR_FORMAT, "%s: 'nesterov' must be true or false",
                                    what);
            else
                cfg->nesterov = json_object_get_boolean(val);
        } else if (!strcmp(key, "beta1") || !strcmp(key, "beta2") || !strcmp(key, "eps")) {
            double *dst = key[0] == 'e' ? &cfg->eps : key[4] == '1' ? &cfg->beta1 : &cfg->beta2;
            st = !sgd ? json_number(val, what, key, dst, err) : not_for_kind(what, key, kname, err);
        } else {
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s: unknown key '%s'", what, key);
        }
    }
    json_object_put(root);
    if (st == UNET_OK && (st = unet_optimizer_config_validate(cfg, err)) != UNET_OK) {
        unet_error_prefix(err, "%s: ", what);
        if (err)
            err->status = UNET_ERR_FORMAT;
        st = UNET_ERR_FORMAT;
    }
    return st;
}

/* ---- optimizer -------------------------------------------------------- */

#define MAX_SLOTS 2

struct UnetOptimizer {
    UnetBackend *be;
    UnetOptimizerConfig cfg;
    const UnetParamTable *table;
    float *params, *grads;
    float *slots[MAX_SLOTS];
    const char *slot_names[MAX_SLOTS];
    int nslots;
    double lr;
    int64_t steps;
    int pending;
};

static UnetStatus backend_failed(UnetOptimizer *opt, UnetStatus st, const char *doing,
                                 UnetError *err)
{
    if (err) {
        *err = opt->be->error;
        err->status = st;
        unet_error_prefix(err, "optimizer %s: ", doing);
    }
    return st;
}

UnetOptimizer *unet_optimizer_new(UnetBackend *be, const UnetOptimizerConfig *cfg,
                                  const UnetParamTable *table, float *params, float *grads,
                                  UnetError *err)
{
    if (unet_optimizer_config_validate(cfg, err) != UNET_OK)
        return NULL;
    if (!be || !table || (table->total && (!params || !grads))) {
        unet_error_set(err, UNET_ERR_INVALID, "optimizer: backend, parameter table and arenas are required");
        return NULL;
    }
    UnetOptimizer *opt = calloc(1, sizeof *opt);
    if (!opt) {
        unet_error_set(err, UNET_ERR_NOMEM, "optimizer: out of memory");
        return NULL;
    }
    opt->be = be;
    opt->cfg = *cfg;
    opt->table = table;
    opt->params = params;
    opt->grads = grads;
    opt->lr = cfg->lr;
    if (cfg->kind == UNET_OPTIM_SGD) {
        if (cfg->momentum != 0.0)
            opt->slot_names[opt->nslots++] = "momentum_buffer";
    } else {
        opt->slot_names[opt->nslots++] = "exp_avg";
        opt->slot_names[opt->nslots++] = "exp_avg_sq";
    }
    for (int i = 0; i < opt->nslots; i++) {
        opt->slots[i] = be->buffer_alloc(be, table->total ? table->total : 1);
        if (!opt->slots[i]) {
            if (err) {
                *err = be->error;
                err->status = UNET_ERR_NOMEM;
                unet_error_prefix(err, "optimizer state (%s, %zu floats): ", opt->slot_names[i],
                                  table->total);
            }
            unet_optimizer_free(opt);
            return NULL;
        }
    }
    if (unet_optimizer_reset_state(opt, err) != UNET_OK) {
        unet_optimizer_free(opt);
        return NULL;
    }
    return opt;
}

void unet_optimizer_free(UnetOptimizer *opt)
{
    if (!opt)
        return;
    for (int i = 0; i < opt->nslots; i++)
        if (opt->slots[i])
            opt->be->buffer_free(opt->be, opt->slots[i]);
    free(opt);
}

UnetStatus unet_optimizer_reset_state(UnetOptimizer *opt, UnetError *err)
{
    for (int i = 0; i < opt->nslots; i++) {
        UnetStatus st = opt->be->buffer_fill(opt->be, opt->slots[i], opt->table->total, 0.0f);
        if (st != UNET_OK)
            return backend_failed(opt, st, "reset", err);
    }
    opt->steps = 0;
    opt->pending = 0;
    return UNET_OK;
}

UnetStatus unet_optimizer_zero_grad(UnetOptimizer *opt, UnetError *err)
{
    opt->pending = 0;
    if (!opt->table->total)
        return UNET_OK;
    UnetStatus st = opt->be->buffer_fill(opt->be, opt->grads, opt->table->total, 0.0f);
    return st == UNET_OK ? UNET_OK : backend_failed(opt, st, "zero_grad", err);
}

static UnetStatus apply_update(UnetOptimizer *opt, UnetError *err)
{
    UnetBackend *be = opt->be;
    const UnetOptimizerConfig *c = &opt->cfg;
    UnetOptimizerStep s = {
        .lr = (float)opt->lr,
        .momentum = (float)c->momentum,
        .nesterov = c->nesterov,
        .weight_decay = (float)c->weight_decay,
        .decoupled_decay = c->kind == UNET_OPTIM_ADAMW,
        .beta1 = (float)c->beta1,
        .beta2 = (float)c->beta2,
        .eps = (float)c->eps,
        .step = opt->steps + 1,
    };
    size_t n = opt->table->total;
    UnetStatus st = UNET_OK;
    /* data-parallel replicas agree on the gradient here: after the last
     * backward of the group, before the update (backend.h) */
    if (n && be->gradient_allreduce) {
        st = be->gradient_allreduce(be, opt->grads, n);
        if (st != UNET_OK)
            return backend_failed(opt, st, "gradient all-reduce", err);
    }
    if (n) {
        if (c->kind == UNET_OPTIM_SGD)
            st = be->sgd_update(be, opt->params, opt->grads, opt->nslots ? opt->slots[0] : NULL, n,
                                &s);
        else
            st = be->adam_update(be, opt->params, opt->grads, opt->slots[0], opt->slots[1], n, &s);
        if (st != UNET_OK)
            return backend_failed(opt, st, "update", err);
    }
    opt->steps++;
    return unet_optimizer_zero_grad(opt, err);
}

UnetStatus unet_optimizer_step(UnetOptimizer *opt, int *stepped, UnetError *err)
{
    if (stepped)
        *stepped = 0;
    if (++opt->pending < opt->cfg.accumulate)
        return UNET_OK;
    UnetStatus st = apply_update(opt, err);
    if (st == UNET_OK && stepped)
        *stepped = 1;
    return st;
}

UnetStatus unet_optimizer_flush(UnetOptimizer *opt, int *stepped, UnetError *err)
{
    if (stepped)
        *stepped = 0;
    if (!opt->pending)
        return UNET_OK;
    UnetStatus st = apply_update(opt, err);
    if (st == UNET_OK && stepped)
        *stepped = 1;
    return st;
}

double unet_optimizer_lr(const UnetOptimizer *opt) { return opt->lr; }
void unet_optimizer_set_lr(UnetOptimizer *opt, double lr) { opt->lr = lr; }
int64_t unet_optimizer_step_count(const UnetOptimizer *opt) { return opt->steps; }
void unet_optimizer_set_step_count(UnetOptimizer *opt, int64_t steps) { opt->steps = steps; }
int unet_optimizer_pending(const UnetOptimizer *opt) { return opt->pending; }
const UnetOptimizerConfig *unet_optimizer_config(const UnetOptimizer *opt) { return &opt->cfg; }
const UnetParamTable *unet_optimizer_table(const UnetOptimizer *opt) { return opt->table; }
UnetBackend *unet_optimizer_backend(const UnetOptimizer *opt) { return opt->be; }
int unet_optimizer_slot_count(const UnetOptimizer *opt) { return opt->nslots; }

const char *unet_optimizer_slot_name(const UnetOptimizer *opt, int i)
{
    return i >= 0 && i < opt->nslots ? opt->slot_names[i] : NULL;
}

float *unet_optimizer_slot(const UnetOptimizer *opt, int i)
{
    return i >= 0 && i < opt->nslots ? opt->slots[i] : NULL;
}

int unet_optimizer_slot_find(const UnetOptimizer *opt, const char *name)
{
    for (int i = 0; i < opt->nslots; i++)
        if (!strcmp(opt->slot_names[i], name))
            return i;
    return -1;
}

/* ---- learning-rate schedules ------------------------------------------ */

void unet_lr_schedule_config_default(UnetLrScheduleConfig *cfg, UnetLrScheduleKind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->gamma = 0.999;
    cfg->factor = 0.1;
    cfg->patience = 10;
    cfg->threshold = 1e-4;
    cfg->cooldown = 0;
    cfg->min_lr = 0.0;
    cfg->t_max = 0;
    cfg->eta_min = 0.0;
}

UnetStatus unet_lr_schedule_config_validate(const UnetLrScheduleConfig *cfg, UnetError *err)
{
    switch (cfg->kind) {
    case UNET_LR_CONSTANT:
        return UNET_OK;
    case UNET_LR_EXPONENTIAL:
        if (!(cfg->gamma > 0.0 && cfg->gamma <= 1.0))
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "exponential schedule: gamma is %g; it must be in (0, 1]",
                                  cfg->gamma);
        return UNET_OK;
    case UNET_LR_PLATEAU:
        if (!(cfg->factor > 0.0 && cfg->factor < 1.0))
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "plateau schedule: factor is %g; it must be in (0, 1)",
                                  cfg->factor);
        if (cfg->patience < 0 || cfg->cooldown < 0)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "plateau schedule: patience and cooldown must be >= 0");
        if (!(cfg->threshold >= 0.0 && cfg->threshold < 1.0))
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "plateau schedule: threshold is %g; it must be in [0, 1)",
                                  cfg->threshold);
        if (!(cfg->min_lr >= 0.0))
            return unet_error_set(err, UNET_ERR_INVALID, "plateau schedule: min_lr must be >= 0");
        return UNET_OK;
    case UNET_LR_COSINE:
        if (cfg->t_max < 0)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "cosine schedule: t_max is %lld; it must be >= 1 (0: the whole run)",
                                  (long long)cfg->t_max);
        if (!(cfg->eta_min >= 0.0))
            return unet_error_set(err, UNET_ERR_INVALID, "cosine schedule: eta_min must be >= 0");
        return UNET_OK;
    }
    return unet_error_set(err, UNET_ERR_INVALID, "learning-rate schedule kind %d is unknown",
                          cfg->kind);
}

char *unet_lr_schedule_config_to_json(const UnetLrScheduleConfig *cfg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "schedule", json_object_new_string(unet_lr_schedule_name(cfg->kind)));
    switch (cfg->kind) {
    case UNET_LR_CONSTANT:
        break;
    case UNET_LR_EXPONENTIAL:
        json_object_object_add(o, "gamma", json_double(cfg->gamma));
        break;
    case UNET_LR_PLATEAU:
        json_object_object_add(o, "factor", json_double(cfg->factor));
        json_object_object_add(o, "patience", json_object_new_int(cfg->patience));
        json_object_object_add(o, "threshold", json_double(cfg->threshold));
        json_object_object_add(o, "cooldown", json_object_new_int(cfg->cooldown));
        json_object_object_add(o, "min_lr", json_double(cfg->min_lr));
        json_object_object_add(o, "mode", json_object_new_string(cfg->mode_max ? "max" : "min"));
        break;
    case UNET_LR_COSINE:
        json_object_object_add(o, "t_max", json_object_new_int64(cfg->t_max));
        json_object_object_add(o, "eta_min", json_double(cfg->eta_min));
        break;
    }
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

UnetStatus unet_lr_schedule_config_from_json(UnetLrScheduleConfig *cfg, const char *json,
                                             UnetError *err)
{
    const char *what = "learning-rate schedule";
    json_object *root = parse_object(json, what, err);
    if (!root)
        return UNET_ERR_FORMAT;
    int kind = UNET_LR_CONSTANT;
    UnetStatus st = json_kind(root, "schedule", schedule_names, COUNT(schedule_names), what, &kind,
                              err);
    if (st == UNET_OK)
        unet_lr_schedule_config_default(cfg, (UnetLrScheduleKind)kind);
    const char *kname = unet_lr_schedule_name((UnetLrScheduleKind)kind);
    json_object_object_foreach(root, key, val) {
        if (st != UNET_OK)
            break;
        int64_t i64 = 0;
        int exp = kind == UNET_LR_EXPONENTIAL, pla = kind == UNET_LR_PLATEAU,
            cos_ = kind == UNET_LR_COSINE;
        if (!strcmp(key, "schedule"))
            continue;
        else if (!strcmp(key, "gamma"))
            st = exp ? json_number(val, what, key, &cfg->gamma, err) : not_for_kind(what, key, kname, err);
        else if (!strcmp(key, "factor"))
            st = pla ? json_number(val, what, key, &cfg->factor, err) : not_for_kind(what, key, kname, err);
        else if (!strcmp(key, "threshold"))
            st = pla ? json_number(val, what, key, &cfg->threshold, err) : not_for_kind(what, key, kname, err);
        else if (!strcmp(key, "min_lr"))
            st = pla ? json_number(val, what, key, &cfg->min_lr, err) : not_for_kind(what, key, kname, err);
        else if (!strcmp(key, "patience") || !strcmp(key, "cooldown")) {
            if (!pla)
                st = not_for_kind(what, key, kname, err);
            else if ((st = json_int(val, what, key, 0, 1000000, &i64, err)) == UNET_OK)
                *(key[0] == 'p' ? &cfg->patience : &cfg->cooldown) = (int)i64;
        } else if (!strcmp(key, "mode")) {
            int m = 0;
            static const char *const modes[] = { "min", "max" };
            if (!pla)
                st = not_for_kind(what, key, kname, err);
            else if ((st = json_kind(root, "mode", modes, 2, what, &m, err)) == UNET_OK)
                cfg->mode_max = m;
        } else if (!strcmp(key, "t_max")) {
            if (!cos_)
                st = not_for_kind(what, key, kname, err);
            else if ((st = json_int(val, what, key, 0, INT64_MAX, &i64, err)) == UNET_OK)
                cfg->t_max = i64;
        } else if (!strcmp(key, "eta_min"))
            st = cos_ ? json_number(val, what, key, &cfg->eta_min, err) : not_for_kind(what, key, kname, err);
        else
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s: unknown key '%s'", what, key);
    }
    json_object_put(root);
    if (st == UNET_OK && (st = unet_lr_schedule_config_validate(cfg, err)) != UNET_OK) {
        if (err)
            err->status = UNET_ERR_FORMAT;
        st = UNET_ERR_FORMAT;
    }
    return st;
}

UnetStatus unet_lr_schedule_init(UnetLrSchedule *s, const UnetLrScheduleConfig *cfg,
                                 double base_lr, UnetError *err)
{
    UnetStatus st = unet_lr_schedule_config_validate(cfg, err);
    if (st != UNET_OK)
        return st;
    if (cfg->kind == UNET_LR_COSINE && cfg->t_max < 1)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "cosine schedule: t_max is %lld; set it to the run's number of "
                              "optimizer updates", (long long)cfg->t_max);
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->base_lr = base_lr;
    s->lr = base_lr;
    s->best = cfg->mode_max ? -INFINITY : INFINITY;
    return UNET_OK;
}

double unet_lr_schedule_step(UnetLrSchedule *s)
{
    s->steps++;
    switch (s->cfg.kind) {
    case UNET_LR_EXPONENTIAL:
        s->lr = s->base_lr * pow(s->cfg.gamma, (double)s->steps);
        break;
    case UNET_LR_COSINE: {
        /* CosineAnnealingLR's closed form, equal to its recursive update. */
        const double pi = 3.14159265358979323846;
        double e = (double)s->steps, t = (double)s->cfg.t_max;
        s->lr = s->cfg.eta_min + (s->base_lr - s->cfg.eta_min) * (1.0 + cos(pi * e / t)) / 2.0;
        break;
    }
    default:
        break;
    }
    return s->lr;
}

double unet_lr_schedule_epoch_end(UnetLrSchedule *s, double metric)
{
    s->epochs++;
    if (s->cfg.kind != UNET_LR_PLATEAU)
        return s->lr;
    /* torch.optim.lr_scheduler.ReduceLROnPlateau, threshold_mode 'rel'. */
    const UnetLrScheduleConfig *c = &s->cfg;
    int better = c->mode_max ? metric > s->best * (1.0 + c->threshold)
                             : metric < s->best * (1.0 - c->threshold);
    if (better) {
        s->best = metric;
        s->bad_epochs = 0;
    } else {
        s->bad_epochs++;
    }
    if (s->cooldown_left > 0) {
        s->cooldown_left--;
        s->bad_epochs = 0;
    }
    if (s->bad_epochs > c->patience) {
        double reduced = fmax(s->lr * c->factor, c->min_lr);
        if (s->lr - reduced > 1e-8)
            s->lr = reduced;
        s->cooldown_left = c->cooldown;
        s->bad_epochs = 0;
    }
    return s->lr;
}

char *unet_lr_schedule_state_to_json(const UnetLrSchedule *s)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "base_lr", json_double(s->base_lr));
    json_object_object_add(o, "lr", json_double(s->lr));
    json_object_object_add(o, "steps", json_object_new_int64(s->steps));
    json_object_object_add(o, "epochs", json_object_new_int64(s->epochs));
    json_object_object_add(o, "best", isfinite(s->best) ? json_double(s->best) : NULL);
    json_object_object_add(o, "bad_epochs", json_object_new_int(s->bad_epochs));
    json_object_object_add(o, "cooldown_left", json_object_new_int(s->cooldown_left));
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

/* Resumed counters keep room to count on (steps++ must not overflow). */
#define COUNTER_MAX ((int64_t)1 << 53)

UnetStatus unet_lr_schedule_state_from_json(UnetLrSchedule *s, const char *json, UnetError *err)
{
    const char *what = "learning-rate schedule state";
    json_object *root = parse_object(json, what, err);
    if (!root)
        return UNET_ERR_FORMAT;
    UnetLrSchedule t = *s;
    t.best = t.cfg.mode_max ? -INFINITY : INFINITY;
    UnetStatus st = UNET_OK;
    int seen = 0;
    json_object_object_foreach(root, key, val) {
        if (st != UNET_OK)
            break;
        int64_t i64 = 0;
        if (!strcmp(key, "base_lr"))
            st = json_number(val, what, key, &t.base_lr, err), seen |= 1;
        else if (!strcmp(key, "lr"))
            st = json_number(val, what, key, &t.lr, err), seen |= 2;
        else if (!strcmp(key, "steps")) {
            if ((st = json_int(val, what, key, 0, COUNTER_MAX, &i64, err)) == UNET_OK)
                t.steps = i64, seen |= 4;
        } else if (!strcmp(key, "epochs")) {
            if ((st = json_int(val, what, key, 0, COUNTER_MAX, &i64, err)) == UNET_OK)
                t.epochs = i64;
        } else if (!strcmp(key, "best")) {
            if (val)
                st = json_number(val, what, key, &t.best, err);
        } else if (!strcmp(key, "bad_epochs")) {
            if ((st = json_int(val, what, key, 0, INT32_MAX / 2, &i64, err)) == UNET_OK)
                t.bad_epochs = (int)i64;
        } else if (!strcmp(key, "cooldown_left")) {
            if ((st = json_int(val, what, key, 0, INT32_MAX / 2, &i64, err)) == UNET_OK)
                t.cooldown_left = (int)i64;
        } else {
            st = unet_error_set(err, UNET_ERR_FORMAT, "%s: unknown key '%s'", what, key);
        }
    }
    json_object_put(root);
    if (st == UNET_OK && seen != 7)
        st = unet_error_set(err, UNET_ERR_FORMAT, "%s: 'base_lr', 'lr' and 'steps' are required",
                            what);
    if (st == UNET_OK)
        *s = t;
    return st;
}
