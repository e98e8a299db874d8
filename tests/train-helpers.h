/* train-helpers.h - shared by the training tests: generated data sets, a small
 * model config, and an event recorder that can stop or pause the trainer. */
#ifndef UNET_TEST_TRAIN_HELPERS_H
#define UNET_TEST_TRAIN_HELPERS_H

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "fileutil.h"
#include "sample-data.h"
#include "test-common.h"
#include "trainer.h"

/* `unet sample-data` pairs in dir (count images of side x side). */
static inline int th_make_data(const char *dir, int count, int side, uint64_t seed)
{
    UnetError err = { 0 };
    UnetSampleDataOptions so;
    unet_sample_data_options_default(&so);
    so.count = count;
    so.size = side;
    so.seed = seed;
    if (unet_sample_data_write(dir, &so, NULL, NULL, &err)) {
        fprintf(stderr, "sample data: %s\n", err.message);
        return -1;
    }
    return 0;
}

/* A small same-padding U-Net on the CPU, one compute thread (the test
 * machine's cores are shared), a fixed rate and no LR test. */
static inline void th_config(UnetTrainConfig *c, const char *data, const char *out)
{
    unet_train_config_default(c);
    snprintf(c->data_dir, sizeof c->data_dir, "%s", data);
    if (out)
        snprintf(c->out_dir, sizeof c->out_dir, "%s", out);
    c->model.depth = 3;
    c->model.base = 8;
    c->model.padding = UNET_PAD_SAME;
    c->model.seed = 2;
    c->seed = 2;
    c->optimizer.lr = 0.003;
    c->epochs = 3;
    c->steps_per_epoch = 6;
    c->val_fraction = 0.25;
    snprintf(c->device, sizeof c->device, "cpu");
    c->threads = 1;
    c->workers = 2;
}

#define TH_MAX 4096

typedef struct Recorder {
    UnetTrainer *trainer;
    int epochs;
    double train_loss[TH_MAX], val_loss[TH_MAX], dice[TH_MAX];
    int epoch_no[TH_MAX];
    int steps;
    double step_loss[TH_MAX];
    int64_t step_no[TH_MAX];
    int lr_points, lr_done, previews, checkpoints, warnings, errors, finished;
    atomic_int paused, resumed;
    UnetStatus finish_status;
    char error[UNET_ERROR_MESSAGE_MAX];
    char finish_message[UNET_ERROR_MESSAGE_MAX];
    int64_t stop_at_step;  /* call unet_trainer_stop from the callback at this step */
    int stop_at_epoch;     /* ... or after this epoch */
    int64_t pause_at_step;
    int preview_ok;
} Recorder;

static inline void th_record(const UnetTrainEvent *e, void *user)
{
    Recorder *r = user;
    switch (e->kind) {
    case UNET_EVENT_STEP:
        if (r->steps < TH_MAX) {
            r->step_loss[r->steps] = e->loss;
            r->step_no[r->steps] = e->step;
            r->steps++;
        }
        if (r->stop_at_step && e->step == r->stop_at_step)
            unet_trainer_stop(r->trainer);
        if (r->pause_at_step && e->step == r->pause_at_step)
            unet_trainer_pause(r->trainer);
        break;
    case UNET_EVENT_EPOCH:
        if (r->epochs < TH_MAX) {
            r->train_loss[r->epochs] = e->train_loss;
            r->val_loss[r->epochs] = e->val_loss;
            r->dice[r->epochs] = e->metrics.dice;
            r->epoch_no[r->epochs] = e->epoch;
            r->epochs++;
        }
        if (r->stop_at_epoch && e->epoch == r->stop_at_epoch)
            unet_trainer_stop(r->trainer);
        break;
    case UNET_EVENT_PREVIEW:
        r->previews++;
        r->preview_ok = e->preview && e->preview->width > 0 && e->preview->image &&
                        e->preview->truth && e->preview->prediction && e->preview->name;
        break;
    case UNET_EVENT_LR_TEST_POINT:
        r->lr_points++;
        break;
    case UNET_EVENT_LR_TEST_DONE:
        r->lr_done++;
        break;
    case UNET_EVENT_CHECKPOINT:
        r->checkpoints++;
        break;
    case UNET_EVENT_WARNING:
        r->warnings++;
        break;
    case UNET_EVENT_ERROR:
        r->errors++;
        snprintf(r->error, sizeof r->error, "%s", e->message);
        break;
    case UNET_EVENT_FINISHED:
        r->finished++;
        r->finish_status = e->status;
        snprintf(r->finish_message, sizeof r->finish_message, "%s", e->message);
        break;
    case UNET_EVENT_PAUSED:
        atomic_store(&r->paused, 1);
        break;
    case UNET_EVENT_RESUMED:
        atomic_store(&r->resumed, 1);
        break;
    case UNET_EVENT_STARTED:
        break;
    }
}

/* Runs cfg to the end with r recording; returns the status. */
static inline UnetStatus th_run(const UnetTrainConfig *cfg, UnetTrainMode mode, Recorder *r,
                                UnetTrainSummary *summary, UnetError *err)
{
    if (summary)
        memset(summary, 0, sizeof *summary);
    UnetTrainer *t = unet_trainer_new(cfg, th_record, r, err);
    if (!t)
        return err->status;
    r->trainer = t;
    UnetStatus st = unet_trainer_start(t, mode, err);
    if (st == UNET_OK)
        st = unet_trainer_wait(t, err);
    if (summary)
        *summary = *unet_trainer_summary(t);
    unet_trainer_free(t);
    r->trainer = NULL;
    return st;
}

static inline void th_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A checkpoint loads into a fresh model and holds optimizer state; *epoch and *step
 * come from its metadata. Returns 0 on success. */
static inline int th_load_checkpoint(const char *path, int *epoch, long long *step, int *finite)
{
    UnetError err = { 0 };
    UnetModelConfig mc;
    if (unet_checkpoint_read_config(path, &mc, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    UnetBackend *be = unet_backend_reference_new(&err);
    UnetModel *m = be ? unet_model_new(&mc, be, &err) : NULL;
    UnetCheckpointMeta meta = { 0 };
    int rc = -1;
    if (m && unet_checkpoint_load(path, m, NULL, &meta, &err) == UNET_OK) {
        const char *e = unet_checkpoint_meta_get(&meta, "epoch");
        const char *s = unet_checkpoint_meta_get(&meta, "step");
        *epoch = e ? atoi(e) : -1;
        *step = s ? atoll(s) : -1;
        const float *p = unet_model_param_arena(m);
        *finite = 1;
        for (size_t i = 0; i < unet_model_param_count(m); i++)
            if (!isfinite(p[i]))
                *finite = 0;
        rc = unet_checkpoint_meta_get(&meta, "trainer_state") && unet_checkpoint_has_optimizer(path)
                 ? 0
                 : -1;
    } else {
        fprintf(stderr, "%s\n", err.message);
    }
    unet_checkpoint_meta_free(&meta);
    unet_model_free(m);
    unet_backend_destroy(be);
    return rc;
}

#endif
