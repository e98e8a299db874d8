/* trainer.h - training, the learning-rate range test and their events.
 *
 * A trainer runs in its own thread and owns the compute backend for its whole
 * life (only that thread touches it). Progress reaches the caller as
 * plain-data events through one callback, called on the trainer thread: the
 * callback must copy what it needs and return quickly (the GUI pushes events
 * into a queue and drains it on the main loop; the CLI prints a progress
 * line). Pause, resume and stop are flags the trainer polls between optimizer
 * updates; stop always leaves the last good checkpoint on disk.
 *
 * What one training run does (defaults: the paper where it is explicit, the
 * seed notebook where it is not):
 *   - loads the training images into memory with their U-Net weight maps
 *     (w0 10, sigma 5, class balance "max"), and the validation images (a
 *     --val folder, or a seeded split of the data, 20 %);
 *   - each epoch draws steps_per_epoch batches of random tiles: the input
 *     tile side comes from the model geometry (a valid-padding model's targets
 *     and weights are cropped to its smaller output), the position is uniform
 *     over the image, context beyond the image edge is mirrored, and the
 *     augmentation pipeline moves image, mask and weight map together. Every
 *     sample depends only on (seed, epoch, index in epoch), so the stream is
 *     the same whatever the thread timing; worker threads prepare samples
 *     ahead into a bounded queue (the time the compute thread still waits is
 *     reported as data_wait_fraction);
 *   - SGD with momentum 0.99, batch 1; learning rate 0 means "from the range
 *     test": the LR range test runs first and its suggestion is used (and
 *     written into config.json so the run can be replayed);
 *   - after each epoch: validation on whole images by overlap-tile
 *     (unet_predict; loss on the probabilities with the same weight maps,
 *     Dice/IoU/pixel error/V_rand/V_info at threshold 0.5), previews,
 *     early stopping with patience 10 on the validation loss, best.safetensors
 *     on improvement, last.safetensors always (model, optimizer state, epoch,
 *     losses, config and the trainer's counters);
 *   - divergence (a NaN/Inf loss, or a smoothed loss above
 *     divergence_factor x its best) stops the run with UNET_ERR_NUMERIC and
 *     leaves last.safetensors from before it.
 *
 * The run folder (out_dir) holds config.json (everything needed to replay the
 * run, seeds included, data paths made absolute; it names no output path, so
 * a config can never make the program write outside the run folder it is
 * given), metrics.csv (a row per optimizer update
 * and per epoch), log.txt, last.safetensors, best.safetensors, val-best/ (the
 * validation predictions of the best epoch as PNG) and, when the LR test
 * chose the rate, lr-test.csv. Checkpoint metadata (checkpoint.h): "epoch",
 * "step", "losses" {"train","val"}, "normalization" (inference.h),
 * "training_config" (config.json's text) and "trainer_state" (the counters:
 * position in the epoch, best epoch and metric, patience, divergence average,
 * schedule state, times). A run resumes from its folder with the same curves
 * as an uninterrupted run: the same next-epoch losses and metrics. */
#ifndef UNET_TRAINER_H
#define UNET_TRAINER_H

#include <stdint.h>

#include "augment.h"
#include "backend.h"
#include "dataset.h"
#include "error.h"
#include "metrics.h"
#include "model-config.h"
#include "model.h"
#include "optim.h"
#include "weightmap.h"

typedef enum UnetTrainEventKind {
    UNET_EVENT_STARTED = 0,    /* message: backend and data summary */
    UNET_EVENT_STEP,           /* step, epoch, loss, lr, samples_per_second, data_wait_fraction */
    UNET_EVENT_EPOCH,          /* epoch, train_loss, val_loss, metrics, lr, is_best */
    UNET_EVENT_LR_TEST_POINT,  /* step, lr, loss, smoothed_loss */
    UNET_EVENT_CHECKPOINT,     /* path, epoch */
    UNET_EVENT_PREVIEW,        /* epoch, preview (image, truth, prediction) */
    UNET_EVENT_WARNING,        /* message */
    UNET_EVENT_ERROR,          /* status, message: the run stopped */
    UNET_EVENT_FINISHED,       /* status, message: why it ended (epochs done, early stop, stopped) */
    UNET_EVENT_LR_TEST_DONE,   /* lr: the suggested rate; message: how it was chosen */
    UNET_EVENT_PAUSED,         /* step, epoch */
    UNET_EVENT_RESUMED,        /* step, epoch */
} UnetTrainEventKind;

/* One validation image for display: grey input, truth and prediction as
 * 8-bit planes of width x height (valid only during the callback). */
typedef struct UnetPreview {
    int width, height;
    const uint8_t *image;
    const uint8_t *truth;
    const uint8_t *prediction;
    const char *name;
} UnetPreview;

typedef struct UnetTrainEvent {
    UnetTrainEventKind kind;
    int64_t step;             /* optimizer steps since the run began */
    int epoch;                /* 1-based */
    int epochs;               /* planned */
    int64_t steps_per_epoch;  /* optimizer updates per epoch */
    double loss;              /* STEP: this step's loss; LR_TEST_POINT: raw loss */
    double smoothed_loss;     /* STEP, LR_TEST_POINT: bias-corrected moving average */
    double lr;
    double train_loss, val_loss;
    double samples_per_second;
    double data_wait_fraction; /* share of step time spent waiting for samples */
    double seconds_elapsed;
    int is_best;
    UnetSegMetrics metrics;   /* EPOCH: validation means */
    const UnetPreview *preview;
    UnetStatus status;
    const char *path;
    const char *message;
} UnetTrainEvent;

typedef void (*UnetTrainCallback)(const UnetTrainEvent *event, void *user);

/* ---- configuration ------------------------------------------------------ */

#define UNET_TRAIN_PATH_MAX 4096

typedef enum UnetMonitor {
    UNET_MONITOR_VAL_LOSS = 0, /* lower is better */
    UNET_MONITOR_VAL_DICE,     /* higher is better */
} UnetMonitor;

/* Smith (2017) range test: lr_i = min_lr * (max_lr / min_lr)^(i / (iterations - 1)). */
typedef struct UnetLrTestConfig {
    double min_lr;         /* 1e-7 */
    double max_lr;         /* 10 */
    int iterations;        /* 100 */
    double diverge_factor; /* stop when the smoothed loss exceeds this x its best: 200 */
    double beta;           /* moving-average factor of the smoothed curve: 0.98 */
} UnetLrTestConfig;

typedef struct UnetTrainConfig {
    /* data (read only; never written) */
    char data_dir[UNET_TRAIN_PATH_MAX];
    char val_dir[UNET_TRAIN_PATH_MAX]; /* "": validation split from data_dir */
    double val_fraction;               /* 0.2; with val_dir or 0: no split */
    UnetDatasetOptions dataset;

    UnetModelConfig model;             /* in_channels 0: taken from the images */

    UnetOptimizerConfig optimizer;     /* SGD, momentum 0.99; lr 0: from the LR range test */
    UnetLrScheduleConfig schedule;     /* constant */
    int batch;                         /* tiles per forward pass: 1 */
    int epochs;                        /* 50 */
    int patience;                      /* epochs without improvement before stopping: 10; 0: off */
    UnetMonitor monitor;               /* validation loss */
    int steps_per_epoch;               /* batches per epoch; 0: enough tiles to cover every
                                        * training image once */
    int tile;                          /* network input side; 0: up to 256, fitted to the data
                                        * and snapped to the nearest valid size */

    UnetLossKind loss;                 /* UNET_LOSS_DEFAULT (-1): BCE for 1 class, softmax CE */
    int weight_map;                    /* 1: the U-Net weight map; 0: every pixel weighs 1 */
    UnetWeightMapConfig weights;       /* w0 10, sigma 5, balance max */

    int augment;                       /* 1: augmentation on */
    UnetAugmentConfig augmentation;    /* the notebook's pipeline without pad_if_needed */

    uint64_t seed;                     /* sample order, tile positions, augmentation, split */
    double divergence_factor;          /* 100; 0: only NaN/Inf stop the run */
    UnetLrTestConfig lr_test;

    /* execution: not part of what the run computes */
    char device[32];                   /* "auto", "cpu", "reference", "cuda" */
    UnetPrecision precision;           /* convolutions: TF32 (fp32 on the CPU backends) */
    int threads;                       /* compute threads of the CPU backend; 0: all cores */
    int workers;                       /* sample-preparing threads: 2 */
    int prefetch;                      /* samples prepared ahead: 0 = 4 x batch + workers */
    int previews;                      /* validation images sent as PREVIEW events per epoch: 1 */
    int save_predictions;              /* validation PNGs of the best epoch, at most this many: 64 */
    int cuda_graphs;                   /* 1: replay the training step as a CUDA graph: 0 */

    /* not saved in config.json */
    char out_dir[UNET_TRAIN_PATH_MAX]; /* run folder; "" (LR test only): nothing is written */
    int resume;                        /* 1: continue the run in out_dir */
    int64_t poison_step;               /* tests: the loss of this update reads NaN; 0: never */
    int loss_lag;                      /* read step N's loss after queuing step N+1: 0 when the
                                        * backend reads asynchronously (CUDA), 1 always, -1 never
                                        * (tests compare the two) */
} UnetTrainConfig;

void unet_lr_test_config_default(UnetLrTestConfig *cfg);
void unet_train_config_default(UnetTrainConfig *cfg);
/* Ranges and combinations; the message names the field. Paths are checked
 * when the run starts. */
UnetStatus unet_train_config_validate(const UnetTrainConfig *cfg, UnetError *err);

/* The replayable part as JSON (config.json): data, model, optimizer,
 * schedule, training, loss, augmentation, lr_test, execution. Caller frees. */
char *unet_train_config_to_json(const UnetTrainConfig *cfg);
/* Parses that text onto cfg (missing sections keep cfg's values; unknown
 * keys are refused by name). */
UnetStatus unet_train_config_from_json(UnetTrainConfig *cfg, const char *json, UnetError *err);
/* Reads RUN/config.json into cfg (defaults first), sets out_dir = run_dir and
 * resume = 1. */
UnetStatus unet_train_config_load_run(UnetTrainConfig *cfg, const char *run_dir, UnetError *err);

const char *unet_monitor_name(UnetMonitor m); /* "val_loss", "val_dice" */
UnetStatus unet_monitor_parse(const char *s, UnetMonitor *out, UnetError *err);

/* ---- LR range test result ------------------------------------------------ */

typedef struct UnetLrTestResult {
    int count;            /* points measured */
    double *lr;           /* count values each */
    double *loss;         /* raw loss of each iteration */
    double *smoothed;     /* bias-corrected exponential moving average (beta) */
    int diverged;         /* 1: stopped early on divergence or a non-finite loss */
    int best_index;       /* lowest smoothed loss */
    int suggested_index;  /* steepest descent of the smoothed loss over log(lr) */
    double suggested_lr;
    char note[256];       /* how the suggestion was chosen */
} UnetLrTestResult;

/* Fills smoothed, best_index, suggested_index/lr and note from lr and loss
 * (count points, with beta). The suggestion is the point of steepest descent
 * of the smoothed loss against log(lr) (slope fitted over a window of count/10
 * points), searched after the first tenth of the curve and up to its minimum
 * (fastai's "steep", with Smith's cut at the minimum). When the curve never
 * descends, a tenth of the rate at the minimum (the note says so). Needs
 * count >= 3. */
UnetStatus unet_lr_test_analyse(UnetLrTestResult *r, double beta, UnetError *err);
void unet_lr_test_result_free(UnetLrTestResult *r);
/* iteration,lr,loss,smoothed_loss,suggested rows, written atomically. */
UnetStatus unet_lr_test_write_csv(const UnetLrTestResult *r, const char *path, UnetError *err);

/* ---- the trainer -------------------------------------------------------- */

typedef enum UnetTrainMode {
    UNET_TRAIN_FIT = 0, /* train (running the LR test first when optimizer.lr is 0) */
    UNET_TRAIN_LR_TEST, /* the range test alone; the model is restored afterwards */
} UnetTrainMode;

/* What a finished run reached. */
typedef struct UnetTrainSummary {
    int epochs_done;
    int best_epoch;           /* 0: none */
    double best_val_loss;
    UnetSegMetrics best_metrics;
    double lr;                /* the learning rate used (after the LR test) */
    int64_t steps;
    double samples_per_second; /* training throughput, validation excluded */
    double data_wait_fraction; /* whole run */
    double seconds;
    int early_stopped;
    int stopped;              /* by unet_trainer_stop */
} UnetTrainSummary;

typedef struct UnetTrainer UnetTrainer;

/* Copies cfg; nothing runs yet. callback may be NULL. */
UnetTrainer *unet_trainer_new(const UnetTrainConfig *cfg, UnetTrainCallback callback, void *user,
                              UnetError *err);
/* Starts the trainer thread. Errors found later (data, checkpoint, divergence)
 * arrive as an ERROR event and as the status of unet_trainer_wait. */
UnetStatus unet_trainer_start(UnetTrainer *t, UnetTrainMode mode, UnetError *err);
/* Flags, safe from any thread including the callback. */
void unet_trainer_pause(UnetTrainer *t);
void unet_trainer_resume(UnetTrainer *t);
void unet_trainer_stop(UnetTrainer *t);
int unet_trainer_is_paused(const UnetTrainer *t);
/* Joins the thread; returns the run's status (UNET_OK also after a stop or an
 * early stop: see the summary) and its message in err. */
UnetStatus unet_trainer_wait(UnetTrainer *t, UnetError *err);
/* Valid after unet_trainer_wait. */
const UnetTrainSummary *unet_trainer_summary(const UnetTrainer *t);
/* The LR test's curve (NULL when none ran); owned by the trainer. */
const UnetLrTestResult *unet_trainer_lr_test_result(const UnetTrainer *t);
/* The config as the run used it (tile, lr and in_channels filled in). */
const UnetTrainConfig *unet_trainer_config(const UnetTrainer *t);
/* Stops and joins a running thread first. */
void unet_trainer_free(UnetTrainer *t);

/* Blocking convenience: unet_trainer_new, start, wait, free. */
UnetStatus unet_train_run(const UnetTrainConfig *cfg, UnetTrainMode mode, UnetTrainCallback callback,
                          void *user, UnetTrainSummary *summary, UnetError *err);

#endif
