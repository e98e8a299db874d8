/* optim.h - optimizers (SGD with momentum, Adam, AdamW) over flat arenas, and
 * learning-rate schedules.
 *
 * An optimizer owns its state arenas (momentum, Adam's m and v), allocated in
 * backend memory with the same layout as the parameter arena, so one update
 * is one backend call per arena (sgd_update / adam_update) and the state can
 * be saved slice by slice under the parameter names. Semantics are PyTorch's
 * torch.optim.SGD / Adam / AdamW (1.13) so runs and checkpoints can be
 * compared with it.
 *
 * Gradient accumulation over N micro-batches (config.accumulate = N):
 *   - the caller scales each micro-batch's loss gradient by 1/N (grad_scale
 *     of loss_forward_backward), so the backward ops ADD g_i / N into the
 *     gradient arena and after N micro-batches it holds the mean gradient;
 *   - the caller calls unet_optimizer_step() after every micro-batch; the
 *     optimizer counts them and applies an update on every N-th call only,
 *     then zeroes the gradient arena for the next group;
 *   - at the end of an epoch, unet_optimizer_flush() applies a last partial
 *     group (k < N micro-batches: the update uses sum(g_i)/N, as a PyTorch
 *     loop that steps on the last batch does).
 * Every applied update first calls the backend's gradient_allreduce (when
 * it has one) on the whole gradient arena (backend.h: data-parallel replicas).
 * Schedules move on with each applied update (unet_lr_schedule_step) or each
 * epoch (unet_lr_schedule_epoch_end), never with micro-batches. */
#ifndef UNET_OPTIM_H
#define UNET_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "error.h"
#include "params.h"

typedef enum UnetOptimKind {
    UNET_OPTIM_SGD = 0,
    UNET_OPTIM_ADAM,
    UNET_OPTIM_ADAMW,
} UnetOptimKind;

typedef struct UnetOptimizerConfig {
    UnetOptimKind kind;
    double lr;
    double momentum;     /* SGD; the paper uses 0.99 */
    int nesterov;        /* SGD; needs momentum > 0 */
    double weight_decay; /* SGD, Adam: L2 added to the gradient; AdamW: decoupled */
    double beta1, beta2; /* Adam, AdamW */
    double eps;          /* Adam, AdamW */
    int accumulate;      /* micro-batches per update, >= 1 */
} UnetOptimizerConfig;

/* SGD: lr 0.01, momentum 0.99 (paper), no Nesterov, no decay.
 * Adam: lr 1e-3, betas 0.9/0.999, eps 1e-8, no decay.
 * AdamW: as Adam with weight_decay 0.01 (PyTorch's default). accumulate 1. */
void unet_optimizer_config_default(UnetOptimizerConfig *cfg, UnetOptimKind kind);
UnetStatus unet_optimizer_config_validate(const UnetOptimizerConfig *cfg, UnetError *err);

/* "sgd", "adam", "adamw". */
const char *unet_optim_kind_name(UnetOptimKind k);
UnetStatus unet_optim_kind_parse(const char *s, UnetOptimKind *out, UnetError *err);

/* {"optimizer":"sgd","lr":0.01,"momentum":0.99,"nesterov":false,
 *  "weight_decay":0,"accumulate":1} (Adam: "beta1","beta2","eps" instead of
 * momentum/nesterov). Caller frees. */
char *unet_optimizer_config_to_json(const UnetOptimizerConfig *cfg);
/* Missing keys take the kind's defaults; unknown keys and keys that do not
 * apply to the kind ("momentum" for adam) are refused by name. */
UnetStatus unet_optimizer_config_from_json(UnetOptimizerConfig *cfg, const char *json,
                                           UnetError *err);

typedef struct UnetOptimizer UnetOptimizer;

/* An optimizer over params/grads (count = table->total floats each, backend
 * memory, both borrowed: they must outlive the optimizer). table names the
 * slices for checkpoints and is borrowed too. State arenas are allocated with
 * be->buffer_alloc and zeroed; the gradient arena is not touched. */
UnetOptimizer *unet_optimizer_new(UnetBackend *be, const UnetOptimizerConfig *cfg,
                                  const UnetParamTable *table, float *params, float *grads,
                                  UnetError *err);
void unet_optimizer_free(UnetOptimizer *opt);

/* Call once per micro-batch, after its backward pass. Applies the update on
 * every accumulate-th call (then zeroes the gradient arena); *stepped (may be
 * NULL) says whether it did. */
UnetStatus unet_optimizer_step(UnetOptimizer *opt, int *stepped, UnetError *err);
/* Applies a pending partial group, if any (see above). */
UnetStatus unet_optimizer_flush(UnetOptimizer *opt, int *stepped, UnetError *err);
/* Zeroes the gradient arena and forgets pending micro-batches. */
UnetStatus unet_optimizer_zero_grad(UnetOptimizer *opt, UnetError *err);
/* Zeroes the state arenas and the step counter (a fresh optimizer). */
UnetStatus unet_optimizer_reset_state(UnetOptimizer *opt, UnetError *err);

double unet_optimizer_lr(const UnetOptimizer *opt);
void unet_optimizer_set_lr(UnetOptimizer *opt, double lr);
/* Updates applied so far (Adam's bias correction uses it; saved in checkpoints). */
int64_t unet_optimizer_step_count(const UnetOptimizer *opt);
void unet_optimizer_set_step_count(UnetOptimizer *opt, int64_t steps);
/* Micro-batches accumulated since the last update. */
int unet_optimizer_pending(const UnetOptimizer *opt);
const UnetOptimizerConfig *unet_optimizer_config(const UnetOptimizer *opt);
const UnetParamTable *unet_optimizer_table(const UnetOptimizer *opt);
UnetBackend *unet_optimizer_backend(const UnetOptimizer *opt);

/* Named state slots, PyTorch's names: "momentum_buffer" (SGD with momentum;
 * none without), "exp_avg" and "exp_avg_sq" (Adam, AdamW). Each is an arena
 * of table->total floats in backend memory laid out like the parameters. */
int unet_optimizer_slot_count(const UnetOptimizer *opt);
const char *unet_optimizer_slot_name(const UnetOptimizer *opt, int i);
float *unet_optimizer_slot(const UnetOptimizer *opt, int i);
/* Index of the slot called name, or -1. */
int unet_optimizer_slot_find(const UnetOptimizer *opt, const char *name);

/* ---- learning-rate schedules ------------------------------------------ */

typedef enum UnetLrScheduleKind {
    UNET_LR_CONSTANT = 0,
    UNET_LR_EXPONENTIAL, /* lr = base * gamma^steps (ExponentialLR stepped per update) */
    UNET_LR_PLATEAU,     /* ReduceLROnPlateau on an epoch metric */
    UNET_LR_COSINE,      /* CosineAnnealingLR stepped per update */
} UnetLrScheduleKind;

typedef struct UnetLrScheduleConfig {
    UnetLrScheduleKind kind;
    double gamma;     /* exponential: factor per optimizer update (default 0.999) */
    double factor;    /* plateau: lr *= factor on a plateau (0.1) */
    int patience;     /* plateau: epochs without improvement tolerated (10) */
    double threshold; /* plateau: relative improvement that counts (1e-4, PyTorch 'rel') */
    int cooldown;     /* plateau: epochs to wait after a reduction (0) */
    double min_lr;    /* plateau: floor (0) */
    int mode_max;     /* plateau: 0 'min' (a loss, default), 1 'max' (a score such as Dice) */
    int64_t t_max;    /* cosine: updates in one half period; 0 = the caller fills in the
                       * run's total updates before unet_lr_schedule_init */
    double eta_min;   /* cosine: lowest lr (0) */
} UnetLrScheduleConfig;

typedef struct UnetLrSchedule {
    UnetLrScheduleConfig cfg;
    double base_lr;
    double lr;          /* the rate to use for the next update */
    int64_t steps;      /* updates seen */
    int64_t epochs;     /* epochs seen */
    double best;        /* plateau: best metric so far */
    int bad_epochs;     /* plateau */
    int cooldown_left;  /* plateau */
} UnetLrSchedule;

void unet_lr_schedule_config_default(UnetLrScheduleConfig *cfg, UnetLrScheduleKind kind);
UnetStatus unet_lr_schedule_config_validate(const UnetLrScheduleConfig *cfg, UnetError *err);

/* "constant", "exponential", "plateau", "cosine". */
const char *unet_lr_schedule_name(UnetLrScheduleKind k);
UnetStatus unet_lr_schedule_parse(const char *s, UnetLrScheduleKind *out, UnetError *err);

/* {"schedule":"plateau","factor":0.1,"patience":10,"threshold":0.0001,
 *  "cooldown":0,"min_lr":0,"mode":"min"}: only the kind's own keys; caller
 * frees. from_json refuses unknown keys and keys of another kind. */
char *unet_lr_schedule_config_to_json(const UnetLrScheduleConfig *cfg);
UnetStatus unet_lr_schedule_config_from_json(UnetLrScheduleConfig *cfg, const char *json,
                                             UnetError *err);

/* Starts at base_lr (the optimizer's lr). Refuses an invalid config and a
 * cosine schedule with t_max < 1. */
UnetStatus unet_lr_schedule_init(UnetLrSchedule *s, const UnetLrScheduleConfig *cfg,
                                 double base_lr, UnetError *err);
/* After each applied optimizer update; returns the lr for the next one
 * (exponential, cosine; others unchanged). Like PyTorch's CosineAnnealingLR,
 * past t_max the cosine rises again, so set t_max to the run's length. */
double unet_lr_schedule_step(UnetLrSchedule *s);
/* After each epoch with its validation metric (plateau; others only count
 * epochs); returns the lr to use from now on. A NaN metric never counts as an
 * improvement. */
double unet_lr_schedule_epoch_end(UnetLrSchedule *s, double metric);

/* The schedule's counters for resuming a run:
 * {"base_lr":..,"lr":..,"steps":..,"epochs":..,"best":..,"bad_epochs":..,
 *  "cooldown_left":..} ("best" is null while infinite). Caller frees. */
char *unet_lr_schedule_state_to_json(const UnetLrSchedule *s);
/* Restores those counters into s, which must already be initialised with
 * its config. */
UnetStatus unet_lr_schedule_state_from_json(UnetLrSchedule *s, const char *json, UnetError *err);

#endif
