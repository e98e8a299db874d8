/* trainer.h - training, the learning-rate range test and their events.
 *
 * A trainer runs in its own thread and owns the compute backend for its whole
 * life (only that thread touches it). Progress reaches the caller as
 * plain-data events through one callback, called on the trainer thread: the
 * callback must copy what it needs and return quickly (the GUI pushes events
 * into a queue and drains it on the main loop; the CLI prints a progress
 * line). Pause, resume and stop are flags the trainer polls between steps;
 * stop always leaves the last good checkpoint on disk. */
#ifndef UNET_TRAINER_H
#define UNET_TRAINER_H

#include <stdint.h>

#include "error.h"
#include "metrics.h"

typedef enum UnetTrainEventKind {
    UNET_EVENT_STARTED = 0,    /* message: backend and data summary */
    UNET_EVENT_STEP,           /* step, epoch, loss, lr, samples_per_second */
    UNET_EVENT_EPOCH,          /* epoch, train_loss, val_loss, metrics, lr, is_best */
    UNET_EVENT_LR_TEST_POINT,  /* step, lr, loss, smoothed_loss */
    UNET_EVENT_CHECKPOINT,     /* path, epoch */
    UNET_EVENT_PREVIEW,        /* epoch, preview (image, truth, prediction) */
    UNET_EVENT_WARNING,        /* message */
    UNET_EVENT_ERROR,          /* status, message: the run stopped */
    UNET_EVENT_FINISHED,       /* message: why it ended (epochs done, early stop, stopped) */
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
    int64_t steps_per_epoch;
    double loss;              /* STEP: this step's loss; LR_TEST_POINT: raw loss */
    double smoothed_loss;     /* LR_TEST_POINT */
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

#endif
