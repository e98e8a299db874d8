/* trainer.c - the training thread: epochs of prefetched tiles, validation,
 * checkpoints, early stopping, divergence, pause/stop, resume, and the LR
 * range test. */
#include "trainer.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "fileutil.h"
#include "image.h"
#include "inference.h"
#include "model.h"
#include "train-private.h"
#include "unet-config.h"

#define TRY(x)                        \
    do {                              \
        UnetStatus st_ = (x);         \
        if (st_ != UNET_OK)           \
            return st_;               \
    } while (0)

/* Counters that make a run resumable; saved as "trainer_state" in every
 * checkpoint. */
typedef struct TrainState {
    int epoch;                 /* epochs completed */
    int64_t batch;             /* batches done in the current epoch */
    int64_t step;              /* optimizer updates */
    double epoch_loss_sum;     /* micro-batch losses of the current epoch */
    int64_t epoch_loss_count;
    double ema, ema_pow, ema_best; /* smoothed update loss for the divergence test */
    int64_t ema_n;
    double best_metric;        /* monitored value of the best epoch */
    int best_epoch;
    int bad_epochs;
    double best_val_loss;
    UnetSegMetrics best_metrics;
    double seconds;            /* wall time of the run so far */
    double train_seconds;      /* time in training steps (throughput) */
    double wait_seconds;       /* of which waiting for samples */
    int64_t samples;
    int finished;              /* 1: epochs done or stopped early */
    int early_stopped;
    double last_train_loss, last_val_loss;
} TrainState;

struct UnetTrainer {
    UnetTrainConfig cfg;
    UnetTrainCallback cb;
    void *user;
    UnetTrainMode mode;
    pthread_t thread;
    int started, joined;
    atomic_int stop_flag, pause_flag;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    UnetStatus status;
    UnetError err;
    UnetTrainSummary summary;
    UnetLrTestResult lr_result;
    int have_lr_result;

    /* trainer thread only */
    UnetBackend *be;
    UnetModel *model;
    UnetOptimizer *opt;
    UnetLrSchedule sched;
    UnetDataset *ds, *val_ds;
    TrainSet train, val;
    RunFolder run;
    int have_run;
    int in_size, out_size, classes, metric_classes;
    UnetLossKind loss_kind;
    SampleSpec spec;
    int64_t batches_per_epoch, updates_per_epoch;
    UnetTensor x, target, weight, loss, dlogits;
    float *hx, *ht, *hw;
    TrainState st;
    double session_start, seconds_base;
    double epoch_train_s, epoch_wait_s;
    int64_t epoch_samples;
    uint8_t **val_pred;        /* 8-bit predictions of the epoch, for val-best/ */

    /* CUDA graph of forward + loss + backward (cfg.cuda_graphs) */
    int graph_state;           /* GRAPH_* below */
    UnetBackendGraph *graph;
    int64_t graph_nbt;         /* batch-norm batches one replay counts */
    int loss_slot;             /* read slot of the next queued loss */
};

/* The graph's life: a step runs uncaptured (cuDNN measures its algorithms,
 * workspaces and scratch grow), the next one is captured and launched, later
 * ones launch it; anything that frees memory the graph uses (validation's
 * other shapes) sends it back to WARM. OFF after a failed capture. */
enum { GRAPH_OFF = 0, GRAPH_WARM, GRAPH_CAPTURE, GRAPH_READY };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double elapsed(const UnetTrainer *t)
{
    return t->seconds_base + (now_s() - t->session_start);
}

static void emit(UnetTrainer *t, UnetTrainEvent *ev)
{
    ev->epochs = t->cfg.epochs;
    ev->steps_per_epoch = t->updates_per_epoch;
    ev->seconds_elapsed = elapsed(t);
    if (t->cb)
        t->cb(ev, t->user);
}

static void warn(UnetTrainer *t, const char *fmt, ...) UNET_PRINTF(2, 3);
static void warn(UnetTrainer *t, const char *fmt, ...)
{
    char msg[UNET_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (t->have_run)
        run_log(&t->run, "warning: %s", msg);
    UnetTrainEvent ev = { .kind = UNET_EVENT_WARNING, .message = msg, .epoch = t->st.epoch + 1,
                          .step = t->st.step };
    emit(t, &ev);
}

static UnetStatus backend_fail(UnetTrainer *t, UnetError *err, const char *what)
{
    UnetStatus st = t->be->error.status ? t->be->error.status : UNET_ERR_BACKEND;
    if (st == UNET_ERR_NOMEM)
        return unet_error_set(err, st, "%s: %s; " UNET_MEMORY_ADVICE, what, t->be->error.message);
    return unet_error_set(err, st, "%s: %s", what, t->be->error.message);
}

/* ---- setup ---------------------------------------------------------------------- */

static UnetStatus open_data(UnetTrainer *t, UnetError *err)
{
    UnetTrainConfig *c = &t->cfg;
    if (c->model.classes >= 2 && c->dataset.classes == 0 && c->dataset.mask_mode != UNET_MASK_BINARY &&
        c->dataset.mask_mode != UNET_MASK_INSTANCE)
        c->dataset.classes = c->model.classes;
    if (unet_dataset_open(c->data_dir, &c->dataset, &t->ds, err))
        return unet_error_prefix(err, "training data: ");
    int n = unet_dataset_count(t->ds);
    UnetSplit split = { 0 };
    const int *train_idx = NULL;
    int n_train = n;
    int workers = c->workers;
    if (c->val_dir[0]) {
        if (unet_dataset_open(c->val_dir, &c->dataset, &t->val_ds, err))
            return unet_error_prefix(err, "validation data: ");
    } else if (c->val_fraction > 0.0) {
        if (n < 2)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "%s has only one image pair: nothing is left to validate on; "
                                  "give a --val folder or --val-split 0", c->data_dir);
        TRY(unet_dataset_split(t->ds, c->val_fraction, c->seed, &split, err));
        train_idx = split.train;
        n_train = split.n_train;
    }
    const UnetWeightMapConfig *w = c->weight_map ? &c->weights : NULL;
    UnetStatus st = train_set_load(&t->train, t->ds, train_idx, n_train, w, workers, err);
    if (st == UNET_OK) {
        if (t->val_ds)
            st = train_set_load(&t->val, t->val_ds, NULL, unet_dataset_count(t->val_ds), w, workers,
                                err);
        else if (split.n_val > 0)
            st = train_set_load(&t->val, t->ds, split.val, split.n_val, w, workers, err);
    }
    unet_split_free(&split);
    if (st)
        return st;
    if (t->val.count == 0 && t->mode == UNET_TRAIN_FIT)
        warn(t, "no validation images: early stopping and best.safetensors follow the training "
                "loss (give --val DIR or --val-split F)");
    if (t->val.count && t->val.channels != t->train.channels)
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "validation images have %d channels but training images have %d; "
                              "use the same colour mode for both",
                              t->val.channels, t->train.channels);
    return UNET_OK;
}

static UnetStatus check_model_vs_data(UnetTrainer *t, UnetError *err)
{
    UnetTrainConfig *c = &t->cfg;
    if (c->model.in_channels == 0)
        c->model.in_channels = t->train.channels;
    if (c->model.in_channels != t->train.channels)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "the images have %d channel%s but the model takes %d; set "
                              "--in-channels %d or convert the images (--color grey or rgb)",
                              t->train.channels, t->train.channels == 1 ? "" : "s",
                              c->model.in_channels, t->train.channels);
    t->classes = c->model.classes;
    t->metric_classes = t->classes == 1 ? 2 : t->classes;
    int max_label = t->train.max_label > t->val.max_label ? t->train.max_label : t->val.max_label;
    if (max_label >= t->metric_classes)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "the masks hold class %d but the model has %d class%s; set --classes "
                              "%d (or check the mask mode)",
                              max_label, t->classes, t->classes == 1 ? " (binary)" : "es",
                              max_label + 1);
    t->loss_kind = c->loss == UNET_LOSS_DEFAULT ? unet_model_default_loss(&c->model) : c->loss;
    return UNET_OK;
}

static UnetStatus choose_tile(UnetTrainer *t, UnetError *err)
{
    UnetTrainConfig *c = &t->cfg;
    int in, out;
    if (c->tile == 0) {
        /* the largest output tile up to 256 that fits the smallest image */
        int side = 256;
        for (int i = 0; i < t->train.count; i++) {
            int s = t->train.items[i].width < t->train.items[i].height ? t->train.items[i].width
                                                                        : t->train.items[i].height;
            if (s < side)
                side = s;
        }
        if (side < 16)
            side = 16;
        int vin, vout;
        if (unet_model_valid_input_size(&c->model, 572, &vin, &vout) < 0)
            return unet_error_set(err, UNET_ERR_INVALID, "the model has no valid input size");
        int below, above;
        unet_model_valid_input_neighbours(&c->model, side + (vin - vout), &below, &above);
        in = below > 0 ? below : above;
        if (in <= 0)
            return unet_error_set(err, UNET_ERR_INVALID, "no valid tile size near %d for this model",
                                  side + (vin - vout));
        out = unet_model_output_size(&c->model, in);
    } else {
        if (unet_model_valid_input_size(&c->model, c->tile, &in, &out) < 0 || in <= 0)
            return unet_error_set(err, UNET_ERR_INVALID, "no valid tile size near %d for this model",
                                  c->tile);
        if (in != c->tile)
            warn(t, "tile %d does not fit this model's poolings and convolutions; using %d "
                    "(output %d)", c->tile, in, out);
    }
    c->tile = in;
    t->in_size = in;
    t->out_size = out;
    return UNET_OK;
}

/* Tiles in an epoch when none is given: enough output tiles to cover every
 * training image once. */
static int64_t default_batches(const UnetTrainer *t)
{
    int64_t tiles = 0;
    for (int i = 0; i < t->train.count; i++) {
        int64_t tx = (t->train.items[i].width + t->out_size - 1) / t->out_size;
        int64_t ty = (t->train.items[i].height + t->out_size - 1) / t->out_size;
        tiles += tx * ty;
    }
    return (tiles + t->cfg.batch - 1) / t->cfg.batch;
}

static UnetStatus alloc_io(UnetTrainer *t, UnetError *err)
{
    const int B = t->cfg.batch, C = t->train.channels, in = t->in_size, os = t->out_size;
    UnetBackend *be = t->be;
    if (be->tensor_init(be, &t->x, B, C, in, in) || be->tensor_init(be, &t->target, B, 1, os, os) ||
        be->tensor_init(be, &t->weight, B, 1, os, os) || be->tensor_init(be, &t->loss, 1, 1, 1, 1) ||
        be->tensor_init(be, &t->dlogits, B, t->classes, os, os))
        return backend_fail(t, err, "allocating the training batch");
    t->hx = malloc((size_t)B * (size_t)C * (size_t)in * (size_t)in * sizeof(float));
    t->ht = malloc((size_t)B * (size_t)os * (size_t)os * sizeof(float));
    t->hw = malloc((size_t)B * (size_t)os * (size_t)os * sizeof(float));
    if (!t->hx || !t->ht || !t->hw)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for the training batch");
    return UNET_OK;
}

static int prefetch_depth(const UnetTrainer *t)
{
    return t->cfg.prefetch > 0 ? t->cfg.prefetch : 4 * t->cfg.batch + t->cfg.workers;
}

/* ---- one micro-batch ------------------------------------------------------------- */

/* Forward, loss and backward of the uploaded batch: the work a graph replays. */
static UnetStatus step_body(UnetTrainer *t, float grad_scale, UnetError *err)
{
    UnetTensor *logits;
    TRY(unet_model_forward(t->model, &t->x, &logits, 1, err));
    TRY(unet_model_loss(t->model, logits, &t->target, t->cfg.weight_map ? &t->weight : NULL, NULL,
                        t->loss_kind, grad_scale, &t->loss, &t->dlogits, err));
    return unet_model_backward(t->model, &t->dlogits, err);
}

static void graph_drop(UnetTrainer *t)
{
    if (t->graph)
        t->be->graph_free(t->be, t->graph);
    t->graph = NULL;
}

/* Captures step_body into t->graph and launches it once. A capture the
 * backend refuses turns graphs off with one warning; the step then runs
 * uncaptured (nothing ran on the device while capturing). */
static UnetStatus step_capture(UnetTrainer *t, float grad_scale, UnetError *err)
{
    UnetBackend *be = t->be;
    const int64_t nbt = unet_model_num_batches_tracked(t->model);
    UnetError cap_err = { 0 };
    UnetStatus st = be->graph_begin(be);
    if (st != UNET_OK) {
        cap_err = be->error;
    } else {
        st = step_body(t, grad_scale, &cap_err);
        UnetBackendGraph *g = NULL;
        UnetStatus end = be->graph_end(be, &g);
        if (st == UNET_OK && end != UNET_OK) {
            st = end;
            cap_err = be->error;
        }
        if (st == UNET_OK) {
            t->graph = g;
            t->graph_nbt = unet_model_num_batches_tracked(t->model) - nbt;
            t->graph_state = GRAPH_READY;
            if (be->graph_launch(be, t->graph) == UNET_OK)
                return UNET_OK;
            cap_err = be->error;
            g = t->graph;
            t->graph = NULL;
        }
        if (g)
            be->graph_free(be, g);
    }
    t->graph_state = GRAPH_OFF;
    warn(t, "CUDA graphs off, training continues without them: %s", cap_err.message);
    unet_error_clear(&be->error);
    /* the model's tensors may point into the discarded capture */
    unet_model_release_activations(t->model);
    unet_model_set_num_batches_tracked(t->model, nbt);
    return step_body(t, grad_scale, err);
}

/* Fills the batch from the queue, uploads it and queues forward, loss and
 * backward (replaying the graph when there is one), then queues the loss's
 * copy into a read slot (micro_batch_loss reads it). *wait_s adds the time
 * spent waiting for samples. */
static UnetStatus micro_batch_queue(UnetTrainer *t, Prefetcher *pf, float grad_scale,
                                    double *wait_s, int *slot, UnetError *err)
{
    const int B = t->cfg.batch;
    const size_t xs = (size_t)t->train.channels * (size_t)t->in_size * (size_t)t->in_size;
    const size_t ts = (size_t)t->out_size * (size_t)t->out_size;
    for (int b = 0; b < B; b++) {
        const TrainSample *s;
        double w = 0.0;
        TRY(prefetcher_next(pf, &s, &w, err));
        *wait_s += w;
        memcpy(t->hx + (size_t)b * xs, s->x, xs * sizeof(float));
        memcpy(t->ht + (size_t)b * ts, s->target, ts * sizeof(float));
        memcpy(t->hw + (size_t)b * ts, s->weight, ts * sizeof(float));
        prefetcher_release(pf);
    }
    UnetBackend *be = t->be;
    /* the batch tensors keep their addresses: a graph reads them in place */
    if (be->tensor_upload(be, &t->x, t->hx) || be->tensor_upload(be, &t->target, t->ht) ||
        be->tensor_upload(be, &t->weight, t->hw))
        return backend_fail(t, err, "uploading the batch");
    UnetStatus st = UNET_OK;
    if (t->graph_state == GRAPH_READY) {
        if (be->graph_launch(be, t->graph) == UNET_OK) {
            unet_model_set_num_batches_tracked(
                t->model, unet_model_num_batches_tracked(t->model) + t->graph_nbt);
        } else if (be->error.status == UNET_ERR_UNSUPPORTED) {
            /* memory the graph used was freed (validation): run this step
             * uncaptured and capture the next one */
            unet_error_clear(&be->error);
            graph_drop(t);
            st = step_body(t, grad_scale, err);
            t->graph_state = GRAPH_CAPTURE;
        } else {
            return backend_fail(t, err, "launching the captured training step");
        }
    } else if (t->graph_state == GRAPH_CAPTURE) {
        st = step_capture(t, grad_scale, err);
    } else {
        st = step_body(t, grad_scale, err);
        if (st == UNET_OK && t->graph_state == GRAPH_WARM)
            t->graph_state = GRAPH_CAPTURE;
    }
    TRY(st);
    *slot = t->loss_slot;
    t->loss_slot = (t->loss_slot + 1) % UNET_BACKEND_READ_SLOTS;
    if (be->read_begin) {
        if (be->read_begin(be, *slot, &t->loss))
            return backend_fail(t, err, "reading the loss");
    } else if (be->tensor_download(be, &be->read_host[*slot][0], &t->loss)) {
        return backend_fail(t, err, "reading the loss");
    }
    return UNET_OK;
}

/* The loss queued in slot by micro_batch_queue; waits for it only. */
static UnetStatus micro_batch_loss(UnetTrainer *t, int slot, double *loss_out, UnetError *err)
{
    UnetBackend *be = t->be;
    float l = be->read_host[slot][0];
    if (be->read_end && be->read_end(be, slot, &l, 1))
        return backend_fail(t, err, "reading the loss");
    *loss_out = l;
    return UNET_OK;
}

static UnetStatus micro_batch(UnetTrainer *t, Prefetcher *pf, float grad_scale, double *loss_out,
                              double *wait_s, UnetError *err)
{
    int slot;
    TRY(micro_batch_queue(t, pf, grad_scale, wait_s, &slot, err));
    return micro_batch_loss(t, slot, loss_out, err);
}

/* ---- pause and stop ------------------------------------------------------------------ */

/* Returns 1 when a stop was asked for. */
static int poll_flags(UnetTrainer *t)
{
    if (atomic_load(&t->pause_flag) && !atomic_load(&t->stop_flag)) {
        UnetTrainEvent ev = { .kind = UNET_EVENT_PAUSED, .epoch = t->st.epoch + 1, .step = t->st.step };
        emit(t, &ev);
        if (t->have_run)
            run_log(&t->run, "paused at epoch %d, step %lld", t->st.epoch + 1,
                    (long long)t->st.step);
        pthread_mutex_lock(&t->mu);
        while (atomic_load(&t->pause_flag) && !atomic_load(&t->stop_flag))
            pthread_cond_wait(&t->cv, &t->mu);
        pthread_mutex_unlock(&t->mu);
        UnetTrainEvent ev2 = { .kind = UNET_EVENT_RESUMED, .epoch = t->st.epoch + 1, .step = t->st.step };
        emit(t, &ev2);
        if (t->have_run)
            run_log(&t->run, "resumed");
    }
    return atomic_load(&t->stop_flag) != 0;
}

/* ---- host copies of the model (LR test) ---------------------------------------------- */

typedef struct Snapshot {
    float *params, *buffers;
    size_t np, nb;
    int64_t nbt;
} Snapshot;

static UnetStatus snapshot_take(UnetTrainer *t, Snapshot *s, UnetError *err)
{
    memset(s, 0, sizeof *s);
    s->np = unet_model_params(t->model)->total;
    s->nb = unet_model_buffers(t->model)->total;
    s->params = malloc((s->np ? s->np : 1) * sizeof(float));
    s->buffers = malloc((s->nb ? s->nb : 1) * sizeof(float));
    if (!s->params || !s->buffers)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory saving the model for the LR test");
    if (t->be->buffer_download(t->be, s->params, unet_model_param_arena(t->model), s->np) ||
        (s->nb && t->be->buffer_download(t->be, s->buffers, unet_model_buffer_arena(t->model), s->nb)))
        return backend_fail(t, err, "saving the model for the LR test");
    s->nbt = unet_model_num_batches_tracked(t->model);
    return UNET_OK;
}

static UnetStatus snapshot_restore(UnetTrainer *t, const Snapshot *s, UnetError *err)
{
    if (t->be->buffer_upload(t->be, unet_model_param_arena(t->model), s->params, s->np) ||
        (s->nb && t->be->buffer_upload(t->be, unet_model_buffer_arena(t->model), s->buffers, s->nb)))
        return backend_fail(t, err, "restoring the model after the LR test");
    unet_model_set_num_batches_tracked(t->model, s->nbt);
    return UNET_OK;
}

static void snapshot_free(Snapshot *s)
{
    free(s->params);
    free(s->buffers);
    memset(s, 0, sizeof *s);
}

/* ---- LR range test ----------------------------------------------------------------------- */

static UnetStatus lr_range_test(UnetTrainer *t, UnetError *err)
{
    const UnetLrTestConfig *lc = &t->cfg.lr_test;
    const int N = lc->iterations;
    UnetLrTestResult *r = &t->lr_result;
    unet_lr_test_result_free(r);
    memset(r, 0, sizeof *r);
    r->lr = malloc((size_t)N * sizeof(double));
    r->loss = malloc((size_t)N * sizeof(double));
    r->smoothed = malloc((size_t)N * sizeof(double));
    t->have_lr_result = 1;
    if (!r->lr || !r->loss || !r->smoothed)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for the LR test");

    Snapshot snap;
    UnetStatus st = snapshot_take(t, &snap, err);
    /* A separate optimizer (one update per iteration, fresh state) leaves the
     * run's optimizer untouched; the model's weights and statistics are put
     * back afterwards. */
    UnetOptimizerConfig oc = t->cfg.optimizer;
    oc.accumulate = 1;
    oc.lr = lc->min_lr;
    UnetOptimizer *opt = NULL;
    if (st == UNET_OK) {
        opt = unet_optimizer_new(t->be, &oc, unet_model_params(t->model),
                                 unet_model_param_arena(t->model), unet_model_grad_arena(t->model),
                                 err);
        if (!opt)
            st = err->status;
    }
    SampleSpec spec = t->spec;
    spec.stream = TRAIN_STREAM_LR_TEST;
    spec.samples_per_epoch = (int64_t)N * t->cfg.batch;
    Prefetcher pf = { 0 };
    if (st == UNET_OK)
        st = prefetcher_start(&pf, &spec, t->cfg.workers, prefetch_depth(t), 0, 0, err);
    if (st == UNET_OK)
        st = unet_optimizer_zero_grad(opt, err);
    double avg = 0.0, bpow = 1.0, best = INFINITY;
    const double ratio = lc->max_lr / lc->min_lr;
    int stopped = 0;
    for (int i = 0; st == UNET_OK && i < N; i++) {
        if (poll_flags(t)) {
            stopped = 1;
            break;
        }
        double lr = lc->min_lr * pow(ratio, (double)i / (double)(N - 1));
        unet_optimizer_set_lr(opt, lr);
        double loss, wait = 0.0;
        if ((st = micro_batch(t, &pf, 1.0f, &loss, &wait, err)))
            break;
        if (!isfinite(loss)) {
            r->diverged = 1;
            break;
        }
        if ((st = unet_optimizer_step(opt, NULL, err)))
            break;
        avg = lc->beta * avg + (1.0 - lc->beta) * loss;
        bpow *= lc->beta;
        double sm = avg / (1.0 - bpow);
        r->lr[r->count] = lr;
        r->loss[r->count] = loss;
        r->smoothed[r->count] = sm;
        r->count++;
        UnetTrainEvent ev = { .kind = UNET_EVENT_LR_TEST_POINT, .step = i, .lr = lr, .loss = loss,
                              .smoothed_loss = sm };
        emit(t, &ev);
        if (sm < best)
            best = sm;
        if (i > 0 && sm > lc->diverge_factor * best) {
            r->diverged = 1;
            break;
        }
    }
    prefetcher_stop(&pf);
    unet_optimizer_free(opt);
    if (st == UNET_OK)
        st = snapshot_restore(t, &snap, err);
    if (st == UNET_OK)
        st = unet_model_zero_grad(t->model, err);
    snapshot_free(&snap);
    if (st)
        return st;
    if (stopped && r->count < 3)
        return unet_error_set(err, UNET_ERR_CANCELLED, "the LR range test was stopped");
    TRY(unet_lr_test_analyse(r, lc->beta, err));
    UnetTrainEvent ev = { .kind = UNET_EVENT_LR_TEST_DONE, .lr = r->suggested_lr, .message = r->note,
                          .step = r->count };
    emit(t, &ev);
    return UNET_OK;
}

/* ---- validation ------------------------------------------------------------------------------ */

static int predict_progress(long done, long total, void *user)
{
    (void)done;
    (void)total;
    UnetTrainer *t = user;
    return atomic_load(&t->stop_flag) != 0;
}

static int stop_requested(void *user)
{
    UnetTrainer *t = user;
    return atomic_load(&t->stop_flag) != 0;
}

/* Class probabilities [K, H, W] of a whole image by overlap-tile (inference.h,
 * its default tiles: seamless for same-padding models). */
static UnetStatus predict_image(UnetTrainer *t, const TrainImage *im, float *probs, UnetError *err)
{
    UnetPredictOptions opt;
    unet_predict_options_default(&opt);
    opt.progress = predict_progress;
    opt.progress_user = t;
    return unet_predict(t->model, im->image, t->train.channels, im->height, im->width, &opt, probs,
                        err);
}

/* The loss of the training objective on probabilities (host side). */
static double host_loss(const UnetTrainer *t, const float *probs, const TrainImage *im)
{
    const size_t n = (size_t)im->width * (size_t)im->height;
    const int K = t->classes;
    const double eps = 1e-7;
    const float *w = t->cfg.weight_map ? im->weight : NULL;
    if (t->loss_kind == UNET_LOSS_DICE) {
        int classes = K == 1 ? 1 : K;
        double total = 0.0;
        for (int k = 0; k < classes; k++) {
            double I = 0.0, P = 0.0, T = 0.0;
            const float *pk = probs + (size_t)k * n;
            for (size_t i = 0; i < n; i++) {
                double wi = w ? w[i] : 1.0;
                double ti = K == 1 ? (double)im->labels[i] : (im->labels[i] == k ? 1.0 : 0.0);
                I += wi * pk[i] * ti;
                P += wi * pk[i];
                T += wi * ti;
            }
            total += 1.0 - (2.0 * I + 1.0) / (P + T + 1.0);
        }
        return total / classes;
    }
    double sum = 0.0, wsum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        double l;
        if (K == 1) {
            double p = probs[i] < eps ? eps : probs[i] > 1.0 - eps ? 1.0 - eps : probs[i];
            l = im->labels[i] ? -log(p) : -log(1.0 - p);
        } else {
            double p = probs[(size_t)im->labels[i] * n + i];
            l = -log(p < eps ? eps : p);
        }
        sum += wi * l;
        wsum += wi;
    }
    return wsum > 0.0 ? sum / wsum : 0.0;
}

/* Class ids and an 8-bit picture (probability for 1 class, class id scaled
 * for K) of a prediction. */
static void to_classes(const UnetTrainer *t, const float *probs, const TrainImage *im, int32_t *cls,
                       uint8_t *vis)
{
    const int K = t->classes;
    const size_t n = (size_t)im->width * (size_t)im->height;
    unet_probs_to_labels(probs, K, im->height, im->width, 0.5f, cls);
    for (size_t i = 0; i < n; i++) {
        if (K == 1) {
            float v = probs[i] * 255.0f + 0.5f;
            vis[i] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
        } else {
            vis[i] = (uint8_t)(cls[i] * 255 / (K - 1));
        }
    }
}

/* Returns UNET_ERR_CANCELLED when a stop arrived in the middle. */
static UnetStatus validate(UnetTrainer *t, double *val_loss, UnetSegMetrics *mean_out, UnetError *err)
{
    UnetMetricsMean mean;
    unet_metrics_mean_init(&mean, t->metric_classes);
    double loss_sum = 0.0;
    UnetStatus st = UNET_OK;
    for (int v = 0; v < t->val.count && st == UNET_OK; v++) {
        if (atomic_load(&t->stop_flag))
            return UNET_ERR_CANCELLED;
        const TrainImage *im = &t->val.items[v];
        size_t n = (size_t)im->width * (size_t)im->height;
        float *probs = malloc(n * (size_t)t->classes * sizeof(float));
        int32_t *cls = malloc(n * sizeof(int32_t));
        uint8_t *vis = malloc(n);
        if (!probs || !cls || !vis) {
            st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory validating %s", im->name);
        } else {
            /* validation is inference: a stop may end it within one layer */
            unet_model_set_cancel(t->model, stop_requested, t);
            st = predict_image(t, im, probs, err);
            unet_model_set_cancel(t->model, NULL, NULL);
        }
        if (st == UNET_OK) {
            loss_sum += host_loss(t, probs, im);
            to_classes(t, probs, im, cls, vis);
            UnetSegMetrics m;
            st = unet_segmentation_metrics(im->labels, cls, im->width, im->height,
                                           t->metric_classes, &m, err);
            if (st == UNET_OK)
                unet_metrics_mean_add(&mean, &m);
            if (st == UNET_OK && v < t->cfg.previews) {
                uint8_t *img8 = malloc(n), *truth8 = malloc(n);
                if (img8 && truth8) {
                    float lo = INFINITY, hi = -INFINITY;
                    for (size_t i = 0; i < n; i++) {
                        lo = im->image[i] < lo ? im->image[i] : lo;
                        hi = im->image[i] > hi ? im->image[i] : hi;
                    }
                    float sc = hi > lo ? 255.0f / (hi - lo) : 0.0f;
                    int den = t->metric_classes - 1;
                    for (size_t i = 0; i < n; i++) {
                        img8[i] = (uint8_t)((im->image[i] - lo) * sc + 0.5f);
                        truth8[i] = (uint8_t)(im->labels[i] * 255 / den);
                    }
                    UnetPreview pv = { im->width, im->height, img8, truth8, vis, im->name };
                    UnetTrainEvent ev = { .kind = UNET_EVENT_PREVIEW, .epoch = t->st.epoch + 1,
                                          .step = t->st.step, .preview = &pv };
                    emit(t, &ev);
                }
                free(img8);
                free(truth8);
            }
            if (st == UNET_OK && t->val_pred && v < t->cfg.save_predictions) {
                free(t->val_pred[v]);
                t->val_pred[v] = vis;
                vis = NULL;
            }
        }
        free(probs);
        free(cls);
        free(vis);
    }
    if (st)
        return st;
    *val_loss = loss_sum / t->val.count;
    unet_metrics_mean_get(&mean, mean_out);
    return UNET_OK;
}

static void save_val_predictions(UnetTrainer *t)
{
    if (!t->have_run || !t->val_pred)
        return;
    char *dir = run_path(&t->run, "val-best");
    UnetError e = { 0 };
    if (!dir || unet_mkdir_p(dir, &e)) {
        warn(t, "cannot write the validation predictions: %s", e.message);
        free(dir);
        return;
    }
    for (int v = 0; v < t->val.count && v < t->cfg.save_predictions; v++) {
        if (!t->val_pred[v])
            continue;
        char name[300];
        run_safe_name(name, sizeof name - 4, t->val.items[v].name);
        strcat(name, ".png");
        char *path = unet_path_join(dir, name);
        if (path && unet_png_save(path, t->val_pred[v], t->val.items[v].width,
                                  t->val.items[v].height, 1, 8, &e)) {
            warn(t, "%s", e.message);
            free(path);
            break;
        }
        free(path);
    }
    free(dir);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

static json_object *jnum(double v)
{
    return isfinite(v) ? json_object_new_double(v) : NULL;
}

static json_object *metrics_json(const UnetSegMetrics *m)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "dice", jnum(m->dice));
    json_object_object_add(o, "iou", jnum(m->iou));
    json_object_object_add(o, "pixel_error", jnum(m->pixel_error));
    json_object_object_add(o, "v_rand", jnum(m->rand_info.v_rand));
    json_object_object_add(o, "v_info", jnum(m->rand_info.v_info));
    return o;
}

static char *state_json(const UnetTrainer *t)
{
    const TrainState *s = &t->st;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "epoch", json_object_new_int(s->epoch));
    json_object_object_add(o, "batch", json_object_new_int64(s->batch));
    json_object_object_add(o, "step", json_object_new_int64(s->step));
    json_object_object_add(o, "epoch_loss_sum", jnum(s->epoch_loss_sum));
    json_object_object_add(o, "epoch_loss_count", json_object_new_int64(s->epoch_loss_count));
    json_object_object_add(o, "ema", jnum(s->ema));
    json_object_object_add(o, "ema_pow", jnum(s->ema_pow));
    json_object_object_add(o, "ema_best", jnum(s->ema_best));
    json_object_object_add(o, "ema_n", json_object_new_int64(s->ema_n));
    json_object_object_add(o, "best_metric", jnum(s->best_metric));
    json_object_object_add(o, "best_epoch", json_object_new_int(s->best_epoch));
    json_object_object_add(o, "bad_epochs", json_object_new_int(s->bad_epochs));
    json_object_object_add(o, "best_val_loss", jnum(s->best_val_loss));
    json_object_object_add(o, "best_metrics", metrics_json(&s->best_metrics));
    json_object_object_add(o, "seconds", jnum(s->seconds));
    json_object_object_add(o, "train_seconds", jnum(s->train_seconds));
    json_object_object_add(o, "wait_seconds", jnum(s->wait_seconds));
    json_object_object_add(o, "samples", json_object_new_int64(s->samples));
    json_object_object_add(o, "finished", json_object_new_boolean(s->finished));
    json_object_object_add(o, "early_stopped", json_object_new_boolean(s->early_stopped));
    json_object_object_add(o, "last_train_loss", jnum(s->last_train_loss));
    json_object_object_add(o, "last_val_loss", jnum(s->last_val_loss));
    char *sched = unet_lr_schedule_state_to_json(&t->sched);
    json_object_object_add(o, "schedule", sched ? json_tokener_parse(sched) : NULL);
    free(sched);
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static double jget_d(json_object *o, const char *k, double def)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return def;
    if (v == NULL)
        return !strcmp(k, "best_metric") || !strcmp(k, "ema_best") || !strcmp(k, "best_val_loss")
                   ? NAN
                   : def;
    return json_object_get_double(v);
}

static int64_t jget_i(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && v ? json_object_get_int64(v) : 0;
}

static UnetStatus state_from_json(UnetTrainer *t, const char *text, const char *path, UnetError *err)
{
    json_object *o = text ? json_tokener_parse(text) : NULL;
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s has no trainer state: it was not written by unet train and "
                              "cannot be resumed", path);
    }
    TrainState *s = &t->st;
    s->epoch = (int)jget_i(o, "epoch");
    s->batch = jget_i(o, "batch");
    s->step = jget_i(o, "step");
    s->epoch_loss_sum = jget_d(o, "epoch_loss_sum", 0.0);
    s->epoch_loss_count = jget_i(o, "epoch_loss_count");
    s->ema = jget_d(o, "ema", 0.0);
    s->ema_pow = jget_d(o, "ema_pow", 1.0);
    s->ema_best = jget_d(o, "ema_best", NAN);
    if (isnan(s->ema_best))
        s->ema_best = INFINITY;
    s->ema_n = jget_i(o, "ema_n");
    s->best_metric = jget_d(o, "best_metric", NAN);
    if (isnan(s->best_metric))
        s->best_metric = t->cfg.monitor == UNET_MONITOR_VAL_DICE ? -INFINITY : INFINITY;
    s->best_epoch = (int)jget_i(o, "best_epoch");
    s->bad_epochs = (int)jget_i(o, "bad_epochs");
    s->best_val_loss = jget_d(o, "best_val_loss", NAN);
    s->seconds = jget_d(o, "seconds", 0.0);
    s->train_seconds = jget_d(o, "train_seconds", 0.0);
    s->wait_seconds = jget_d(o, "wait_seconds", 0.0);
    s->samples = jget_i(o, "samples");
    s->finished = (int)jget_i(o, "finished");
    s->early_stopped = (int)jget_i(o, "early_stopped");
    s->last_train_loss = jget_d(o, "last_train_loss", NAN);
    s->last_val_loss = jget_d(o, "last_val_loss", NAN);
    json_object *m;
    memset(&s->best_metrics, 0, sizeof s->best_metrics);
    if (json_object_object_get_ex(o, "best_metrics", &m) && m) {
        s->best_metrics.classes = t->metric_classes;
        s->best_metrics.dice = jget_d(m, "dice", NAN);
        s->best_metrics.iou = jget_d(m, "iou", NAN);
        s->best_metrics.pixel_error = jget_d(m, "pixel_error", NAN);
        s->best_metrics.rand_info.v_rand = jget_d(m, "v_rand", NAN);
        s->best_metrics.rand_info.v_info = jget_d(m, "v_info", NAN);
    }
    UnetStatus st = UNET_OK;
    json_object *sc;
    if (json_object_object_get_ex(o, "schedule", &sc) && sc)
        st = unet_lr_schedule_state_from_json(&t->sched, json_object_to_json_string(sc), err);
    json_object_put(o);
    return st;
}

static UnetStatus save_checkpoint(UnetTrainer *t, const char *name, UnetError *err)
{
    if (!t->have_run)
        return UNET_OK;
    /* metrics.csv must reach the disk before the checkpoint that covers its
     * rows: after a crash, resuming trims rows past the checkpoint, but rows
     * lost in a buffer would stay lost */
    if (t->run.metrics)
        fflush(t->run.metrics);
    char *path = run_path(&t->run, name);
    char *cfg = unet_train_config_to_json(&t->cfg);
    char *state = state_json(t);
    char epoch[32], step[32], losses[128];
    snprintf(epoch, sizeof epoch, "%d", t->st.epoch);
    snprintf(step, sizeof step, "%lld", (long long)t->st.step);
    json_object *lo = json_object_new_object();
    json_object_object_add(lo, "train", jnum(t->st.last_train_loss));
    json_object_object_add(lo, "val", jnum(t->st.last_val_loss));
    snprintf(losses, sizeof losses, "%s", json_object_to_json_string_ext(lo, JSON_C_TO_STRING_PLAIN));
    json_object_put(lo);
    char *norm = unet_input_spec_to_json(&t->cfg.dataset.input);
    UnetStatus st;
    if (!path || !cfg || !state || !norm) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory saving a checkpoint");
    } else {
        UnetKeyValue kv[] = {
            { "epoch", epoch },           { "step", step },
            { "losses", losses },         { UNET_META_NORMALIZATION, norm },
            { "training_config", cfg },   { "trainer_state", state },
        };
        st = unet_checkpoint_save(path, t->model, t->opt, kv, sizeof kv / sizeof kv[0], err);
        if (st == UNET_OK) {
            UnetTrainEvent ev = { .kind = UNET_EVENT_CHECKPOINT, .path = path, .epoch = t->st.epoch,
                                  .step = t->st.step };
            emit(t, &ev);
        }
    }
    free(path);
    free(cfg);
    free(state);
    free(norm);
    return st;
}

/* ---- the run --------------------------------------------------------------------------------- */

static void save_state_times(UnetTrainer *t)
{
    t->st.seconds = elapsed(t);
}

static UnetStatus diverged(UnetTrainer *t, const char *why, UnetError *err)
{
    char msg[512];
    snprintf(msg, sizeof msg,
             "training diverged at epoch %d, step %lld: %s. The last good checkpoint is "
             "%s/last.safetensors (epoch %d); lower the learning rate (--lr) or run 'unet lr-test'",
             t->st.epoch + 1, (long long)t->st.step + 1, why, t->have_run ? t->run.dir : "(no run folder)",
             t->st.epoch);
    return unet_error_set(err, UNET_ERR_NUMERIC, "%s", msg);
}

/* One update's bookkeeping: the divergence test on the smoothed loss. */
static UnetStatus after_update(UnetTrainer *t, double loss, UnetError *err)
{
    TrainState *s = &t->st;
    const double beta = 0.98;
    s->ema = beta * s->ema + (1.0 - beta) * loss;
    s->ema_pow *= beta;
    s->ema_n++;
    double sm = s->ema / (1.0 - s->ema_pow);
    if (sm < s->ema_best)
        s->ema_best = sm;
    if (t->cfg.divergence_factor > 0.0 && s->ema_n > 10 &&
        sm > t->cfg.divergence_factor * s->ema_best) {
        char why[160];
        snprintf(why, sizeof why, "the smoothed loss %.4g is more than %g x its best %.4g", sm,
                 t->cfg.divergence_factor, s->ema_best);
        return diverged(t, why, err);
    }
    return UNET_OK;
}

static int better(const UnetTrainer *t, double v)
{
    if (isnan(v))
        return 0;
    return t->cfg.monitor == UNET_MONITOR_VAL_DICE && t->val.count ? v > t->st.best_metric
                                                                    : v < t->st.best_metric;
}

/* A micro-batch whose work is queued and whose loss is not read yet. */
typedef struct QueuedBatch {
    int slot;      /* read slot of its loss */
    int stepped;   /* its optimizer call applied an update */
    double lr;     /* that update's rate */
} QueuedBatch;

/* Reads a queued micro-batch's loss and does its bookkeeping: the NaN and
 * divergence tests, the epoch sums and, after an update, the STEP event and
 * metrics row. Batches are finished in the order they were queued. */
static UnetStatus finish_batch(UnetTrainer *t, const QueuedBatch *q, double *group_loss,
                               int *group_n, UnetError *err)
{
    UnetTrainConfig *c = &t->cfg;
    TrainState *s = &t->st;
    double loss;
    TRY(micro_batch_loss(t, q->slot, &loss, err));
    if (c->poison_step > 0 && s->step + 1 == c->poison_step)
        loss = NAN;
    if (!isfinite(loss))
        return diverged(t, isnan(loss) ? "the loss is NaN" : "the loss is infinite", err);
    s->batch++;
    s->epoch_loss_sum += loss;
    s->epoch_loss_count++;
    *group_loss += loss;
    (*group_n)++;
    t->epoch_samples += c->batch;
    s->samples += c->batch;
    if (!q->stepped)
        return UNET_OK;
    double gl = *group_loss / *group_n;
    *group_loss = 0.0;
    *group_n = 0;
    s->step++;
    TRY(after_update(t, gl, err));
    UnetTrainEvent ev = {
        .kind = UNET_EVENT_STEP, .step = s->step, .epoch = s->epoch + 1, .loss = gl,
        .smoothed_loss = s->ema / (1.0 - s->ema_pow), .lr = q->lr,
        .samples_per_second = t->epoch_train_s > 0 ? t->epoch_samples / t->epoch_train_s : 0,
        .data_wait_fraction = t->epoch_train_s > 0 ? t->epoch_wait_s / t->epoch_train_s : 0,
    };
    emit(t, &ev);
    MetricsRow row = { .kind = "step", .epoch = s->epoch + 1, .step = s->step, .lr = q->lr,
                       .loss = gl, .train_loss = NAN, .val_loss = NAN,
                       .samples_per_second = ev.samples_per_second,
                       .data_wait_fraction = ev.data_wait_fraction, .seconds = elapsed(t) };
    run_metrics_row(&t->run, &row);
    return UNET_OK;
}

/* Wall time since *mark counts as training time. */
static void account_time(UnetTrainer *t, double *mark)
{
    double now = now_s(), dt = now - *mark;
    *mark = now;
    t->epoch_train_s += dt;
    t->st.train_seconds += dt;
}

static UnetStatus train_epochs(UnetTrainer *t, UnetError *err)
{
    UnetTrainConfig *c = &t->cfg;
    TrainState *s = &t->st;
    Prefetcher pf = { 0 };
    UnetStatus st = prefetcher_start(&pf, &t->spec, c->workers, prefetch_depth(t), s->epoch,
                                     s->batch * c->batch, err);
    if (st)
        return st;
    const float grad_scale = 1.0f / (float)c->optimizer.accumulate;
    int stopped = 0;
    if (c->cuda_graphs && !t->be->graph_begin)
        warn(t, "the %s backend has no CUDA graphs; --cuda-graphs is ignored", t->be->name);
    t->graph_state = c->cuda_graphs && t->be->graph_begin ? GRAPH_WARM : GRAPH_OFF;
    /* The lag pays only where the device runs behind the host; on CPU
     * backends every loss is read at once, so a stop or pause asked for by
     * a STEP event's handler lands before the next step (with the lag it
     * lands one step later: that step is already queued). */
    const int lag = c->loss_lag > 0 || (c->loss_lag == 0 && t->be->read_begin &&
                                         t->be->read_begin != unet_backend_host_read_begin);
    while (s->epoch < c->epochs && st == UNET_OK) {
        t->epoch_train_s = t->epoch_wait_s = 0.0;
        t->epoch_samples = 0;
        double group_loss = 0.0, mark = now_s();
        int group_n = 0, have_q = 0;
        QueuedBatch q = { 0 };
        int64_t queued = s->batch;
        while (queued < t->batches_per_epoch) {
            /* a pause or stop sees every queued step reported first */
            if (unet_optimizer_pending(t->opt) == 0 &&
                (atomic_load(&t->pause_flag) || atomic_load(&t->stop_flag))) {
                if (have_q) {
                    account_time(t, &mark);
                    have_q = 0;
                    if ((st = finish_batch(t, &q, &group_loss, &group_n, err)))
                        break;
                }
                if (poll_flags(t)) {
                    stopped = 1;
                    break;
                }
                mark = now_s();
            }
            QueuedBatch next = { 0 };
            double wait = 0.0;
            if ((st = micro_batch_queue(t, &pf, grad_scale, &wait, &next.slot, err)))
                break;
            t->epoch_wait_s += wait;
            s->wait_seconds += wait;
            if ((st = unet_optimizer_step(t->opt, &next.stepped, err)))
                break;
            if (!next.stepped && queued + 1 == t->batches_per_epoch &&
                (st = unet_optimizer_flush(t->opt, &next.stepped, err)))
                break;
            queued++;
            if (next.stepped) {
                next.lr = unet_optimizer_lr(t->opt);
                unet_optimizer_set_lr(t->opt, unet_lr_schedule_step(&t->sched));
            }
            /* step N's loss is read once step N+1 is queued: the device always
             * has work while the host waits for and uploads the next batch */
            if (have_q) {
                account_time(t, &mark);
                have_q = 0;
                if ((st = finish_batch(t, &q, &group_loss, &group_n, err)))
                    break;
            }
            q = next;
            have_q = 1;
            if (!lag) {
                account_time(t, &mark);
                have_q = 0;
                if ((st = finish_batch(t, &q, &group_loss, &group_n, err)))
                    break;
            }
        }
        if (st == UNET_OK && have_q) {
            account_time(t, &mark);
            st = finish_batch(t, &q, &group_loss, &group_n, err);
        }
        if (st || stopped)
            break;

        /* end of epoch: validation, best, last */
        double train_loss = s->epoch_loss_count ? s->epoch_loss_sum / s->epoch_loss_count : NAN;
        double val_loss = NAN;
        UnetSegMetrics m;
        memset(&m, 0, sizeof m);
        if (t->val.count) {
            st = validate(t, &val_loss, &m, err);
            if (st == UNET_ERR_CANCELLED) {
                st = UNET_OK;
                stopped = 1;
                break;
            }
            if (st)
                break;
            if (!isfinite(val_loss)) {
                st = diverged(t, "the validation loss is not finite", err);
                break;
            }
        }
        s->epoch++;
        s->batch = 0;
        s->epoch_loss_sum = 0.0;
        s->epoch_loss_count = 0;
        s->last_train_loss = train_loss;
        s->last_val_loss = val_loss;
        double monitored = !t->val.count ? train_loss
                           : c->monitor == UNET_MONITOR_VAL_DICE ? m.dice : val_loss;
        int is_best = better(t, monitored);
        if (is_best) {
            s->best_metric = monitored;
            s->best_epoch = s->epoch;
            s->best_val_loss = val_loss;
            s->best_metrics = m;
            s->bad_epochs = 0;
        } else {
            s->bad_epochs++;
        }
        double sched_metric = t->sched.cfg.mode_max ? m.dice : (t->val.count ? val_loss : train_loss);
        double lr_now = unet_optimizer_lr(t->opt);
        unet_optimizer_set_lr(t->opt, unet_lr_schedule_epoch_end(&t->sched, sched_metric));
        if (c->patience > 0 && s->bad_epochs >= c->patience) {
            s->finished = 1;
            s->early_stopped = 1;
        }
        if (s->epoch >= c->epochs)
            s->finished = 1;
        save_state_times(t);
        double sps = t->epoch_train_s > 0 ? t->epoch_samples / t->epoch_train_s : 0.0;
        double wf = t->epoch_train_s > 0 ? t->epoch_wait_s / t->epoch_train_s : 0.0;
        /* the epoch's row before its checkpoints (see save_checkpoint) */
        MetricsRow row = { .kind = "epoch", .epoch = s->epoch, .step = s->step, .lr = lr_now,
                           .loss = NAN, .train_loss = train_loss, .val_loss = val_loss,
                           .metrics = t->val.count ? &m : NULL, .samples_per_second = sps,
                           .data_wait_fraction = wf, .seconds = elapsed(t) };
        run_metrics_row(&t->run, &row);
        if (is_best) {
            if ((st = save_checkpoint(t, "best.safetensors", err)))
                break;
            save_val_predictions(t);
        }
        if ((st = save_checkpoint(t, "last.safetensors", err)))
            break;
        UnetTrainEvent ev = { .kind = UNET_EVENT_EPOCH, .step = s->step, .epoch = s->epoch,
                              .train_loss = train_loss, .val_loss = val_loss, .metrics = m,
                              .lr = lr_now, .is_best = is_best, .samples_per_second = sps,
                              .data_wait_fraction = wf };
        emit(t, &ev);
        if (t->have_run)
            run_log(&t->run,
                    "epoch %d/%d: train loss %.5f, val loss %.5f, dice %.4f, iou %.4f, pixel error "
                    "%.4f, V_rand %.4f, V_info %.4f, lr %.4g, %.1f samples/s, data wait %.1f%%%s",
                    s->epoch, c->epochs, train_loss, val_loss, m.dice, m.iou, m.pixel_error,
                    m.rand_info.v_rand, m.rand_info.v_info, lr_now, sps, 100.0 * wf,
                    is_best ? " (best)" : "");
        if (s->early_stopped)
            break;
    }
    prefetcher_stop(&pf);
    graph_drop(t);
    t->graph_state = GRAPH_OFF;
    if (st == UNET_OK && stopped) {
        save_state_times(t);
        st = save_checkpoint(t, "last.safetensors", err);
        t->summary.stopped = 1;
    }
    return st;
}

static UnetStatus setup_model(UnetTrainer *t, UnetError *err)
{
    UnetTrainConfig *c = &t->cfg;
    t->model = unet_model_new(&c->model, t->be, err);
    if (!t->model)
        return err->status;
    if (unet_model_output_size(&c->model, t->in_size) != t->out_size)
        return unet_error_set(err, UNET_ERR_INVALID, "tile %d gives output %d, expected %d",
                              t->in_size, unet_model_output_size(&c->model, t->in_size), t->out_size);
    UnetOptimizerConfig oc = c->optimizer;
    if (oc.lr == 0.0)
        oc.lr = c->lr_test.min_lr; /* replaced by the LR test's suggestion */
    t->opt = unet_optimizer_new(t->be, &oc, unet_model_params(t->model),
                                unet_model_param_arena(t->model), unet_model_grad_arena(t->model), err);
    if (!t->opt)
        return err->status;
    return unet_optimizer_zero_grad(t->opt, err);
}

static UnetStatus init_schedule(UnetTrainer *t, UnetError *err)
{
    UnetLrScheduleConfig sc = t->cfg.schedule;
    if (sc.kind == UNET_LR_COSINE && sc.t_max == 0)
        sc.t_max = (int64_t)t->cfg.epochs * t->updates_per_epoch;
    TRY(unet_lr_schedule_init(&t->sched, &sc, t->cfg.optimizer.lr, err));
    unet_optimizer_set_lr(t->opt, t->sched.lr);
    return UNET_OK;
}

static UnetStatus resolve_data_paths(UnetTrainConfig *c, UnetError *err)
{
    char *paths[2] = { c->data_dir, c->val_dir };
    for (int i = 0; i < 2; i++) {
        if (!paths[i][0])
            continue;
        char *abs = realpath(paths[i], NULL);
        if (!abs)
            return unet_error_set(err, UNET_ERR_IO, "%s folder %s does not exist",
                                  i ? "validation" : "training", paths[i]);
        if (strlen(abs) >= UNET_TRAIN_PATH_MAX) {
            free(abs);
            return unet_error_set(err, UNET_ERR_INVALID, "path %s is too long", paths[i]);
        }
        snprintf(paths[i], UNET_TRAIN_PATH_MAX, "%s", abs);
        free(abs);
    }
    return UNET_OK;
}

static UnetStatus run(UnetTrainer *t, UnetError *err)
{
    UnetTrainConfig *c = &t->cfg;
    t->session_start = now_s();
    TRY(unet_train_config_validate(c, err));
    TRY(resolve_data_paths(c, err));
    char note[512];
    t->be = unet_backend_open(c->device, c->threads, note, sizeof note, err);
    if (!t->be)
        return err->status;
    TRY(unet_backend_set_precision(t->be, c->precision, err));
#if !UNET_HAVE_CUDA
    note[0] = '\0'; /* "auto" on a build without CUDA is the CPU; nothing to explain */
#endif
    TRY(open_data(t, err));
    TRY(check_model_vs_data(t, err));
    TRY(choose_tile(t, err));
    t->batches_per_epoch = c->steps_per_epoch > 0 ? c->steps_per_epoch : default_batches(t);
    t->updates_per_epoch =
        (t->batches_per_epoch + c->optimizer.accumulate - 1) / c->optimizer.accumulate;
    t->spec = (SampleSpec){ .set = &t->train, .seed = c->seed, .stream = TRAIN_STREAM_FIT,
                            .samples_per_epoch = t->batches_per_epoch * c->batch,
                            .in_size = t->in_size, .out_size = t->out_size,
                            .channels = t->train.channels, .use_weight = c->weight_map,
                            .augment = c->augment, .augmentation = &c->augmentation };
    TRY(setup_model(t, err));
    TRY(alloc_io(t, err));
    if (t->val.count) {
        t->val_pred = calloc((size_t)t->val.count, sizeof *t->val_pred);
        if (!t->val_pred)
            return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    }
    t->st.best_metric = c->monitor == UNET_MONITOR_VAL_DICE && t->val.count ? -INFINITY : INFINITY;
    t->st.ema_pow = 1.0;
    t->st.ema_best = INFINITY;
    t->st.best_val_loss = NAN;
    t->st.last_train_loss = t->st.last_val_loss = NAN;

    if (t->mode == UNET_TRAIN_LR_TEST) {
        char msg[512];
        snprintf(msg, sizeof msg, "LR range test of %s (%zu parameters) on %s (%s): %d iterations from "
                 "%g to %g, %d training images, tile %d",
                 unet_arch_name(c->model.arch), unet_model_param_count(t->model), t->be->name,
                 unet_precision_name(t->be->precision),
                 c->lr_test.iterations, c->lr_test.min_lr, c->lr_test.max_lr, t->train.count,
                 t->in_size);
        UnetTrainEvent ev = { .kind = UNET_EVENT_STARTED, .message = msg };
        emit(t, &ev);
        TRY(lr_range_test(t, err));
        t->summary.lr = t->lr_result.suggested_lr;
        return UNET_OK;
    }

    int resumed = 0;
    if (c->resume) {
        char *last = unet_path_join(c->out_dir, "last.safetensors");
        if (!last)
            return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
        UnetCheckpointMeta meta = { 0 };
        UnetStatus st = unet_path_is_file(last)
                            ? unet_checkpoint_load(last, t->model, t->opt, &meta, err)
                            : unet_error_set(err, UNET_ERR_IO, "%s has no last.safetensors: the "
                                             "run never saved a checkpoint; start it again",
                                             c->out_dir);
        if (st == UNET_OK) {
            TRY(init_schedule(t, err));
            st = state_from_json(t, unet_checkpoint_meta_get(&meta, "trainer_state"), last, err);
            unet_optimizer_set_lr(t->opt, t->sched.lr);
        }
        unet_checkpoint_meta_free(&meta);
        free(last);
        TRY(st);
        TRY(run_folder_reopen(&t->run, c->out_dir, t->st.epoch, t->st.step, err));
        t->have_run = 1;
        resumed = 1;
        t->seconds_base = t->st.seconds;
        t->session_start = now_s();
        if (t->st.epoch >= c->epochs || t->st.early_stopped) {
            t->st.finished = 1;
        } else {
            t->st.finished = 0;
        }
        TRY(run_write_config(&t->run, c, err));
    } else {
        if (c->out_dir[0]) {
            TRY(run_folder_create(&t->run, c->out_dir, err));
            t->have_run = 1;
        }
        if (c->optimizer.lr == 0.0) {
            TRY(lr_range_test(t, err));
            c->optimizer.lr = t->lr_result.suggested_lr;
            if (t->have_run) {
                char *csv = run_path(&t->run, "lr-test.csv");
                UnetStatus st = csv ? unet_lr_test_write_csv(&t->lr_result, csv, err)
                                    : unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
                free(csv);
                TRY(st);
                run_log(&t->run, "LR range test: %s", t->lr_result.note);
            }
        }
        TRY(init_schedule(t, err));
        if (t->have_run) {
            TRY(run_write_config(&t->run, c, err));
            TRY(save_checkpoint(t, "last.safetensors", err));
        }
    }

    char msg[1024];
    snprintf(msg, sizeof msg,
             "%s %s (depth %d, base %d, %s padding, %d class%s; %zu parameters) on %s (%s)%s%s: %d "
             "training and %d validation images, tile %d -> %d, batch %d, %lld steps per epoch, "
             "%s lr %.4g, %d data workers",
             resumed ? "resuming" : "training", unet_arch_name(c->model.arch), c->model.depth,
             c->model.base, unet_padding_name(c->model.padding), c->model.classes,
             c->model.classes == 1 ? "" : "es", unet_model_param_count(t->model), t->be->name,
             unet_precision_name(t->be->precision), note[0] ? "; " : "", note, t->train.count, t->val.count, t->in_size, t->out_size,
             c->batch, (long long)t->updates_per_epoch, unet_optim_kind_name(c->optimizer.kind),
             c->optimizer.lr, c->workers);
    if (t->have_run)
        run_log(&t->run, "%s", msg);
    UnetTrainEvent ev = { .kind = UNET_EVENT_STARTED, .message = msg, .epoch = t->st.epoch + 1,
                          .step = t->st.step };
    emit(t, &ev);
    if (resumed) {
        char rmsg[256];
        snprintf(rmsg, sizeof rmsg, "continuing after epoch %d, step %lld", t->st.epoch,
                 (long long)t->st.step);
        if (t->have_run)
            run_log(&t->run, "%s", rmsg);
    }

    UnetStatus st = t->st.finished ? UNET_OK : train_epochs(t, err);
    return st;
}

static void fill_summary(UnetTrainer *t)
{
    UnetTrainSummary *s = &t->summary;
    s->epochs_done = t->st.epoch;
    s->best_epoch = t->st.best_epoch;
    s->best_val_loss = t->st.best_val_loss;
    s->best_metrics = t->st.best_metrics;
    if (t->mode == UNET_TRAIN_FIT)
        s->lr = t->cfg.optimizer.lr;
    s->steps = t->st.step;
    s->samples_per_second = t->st.train_seconds > 0 ? t->st.samples / t->st.train_seconds : 0.0;
    s->data_wait_fraction = t->st.train_seconds > 0 ? t->st.wait_seconds / t->st.train_seconds : 0.0;
    s->seconds = t->session_start > 0 ? elapsed(t) : 0.0;
    s->early_stopped = t->st.early_stopped;
}

static void cleanup(UnetTrainer *t)
{
    if (t->be) {
        graph_drop(t);
        t->be->tensor_release(t->be, &t->x);
        t->be->tensor_release(t->be, &t->target);
        t->be->tensor_release(t->be, &t->weight);
        t->be->tensor_release(t->be, &t->loss);
        t->be->tensor_release(t->be, &t->dlogits);
    }
    free(t->hx);
    free(t->hw);
    free(t->ht);
    t->hx = t->hw = t->ht = NULL;
    unet_optimizer_free(t->opt);
    t->opt = NULL;
    unet_model_free(t->model);
    t->model = NULL;
    unet_backend_destroy(t->be);
    t->be = NULL;
    if (t->val_pred)
        for (int v = 0; v < t->val.count; v++)
            free(t->val_pred[v]);
    free(t->val_pred);
    t->val_pred = NULL;
    train_set_free(&t->train);
    train_set_free(&t->val);
    unet_dataset_free(t->ds);
    unet_dataset_free(t->val_ds);
    t->ds = t->val_ds = NULL;
    if (t->have_run)
        run_folder_close(&t->run);
    t->have_run = 0;
}

static void *thread_main(void *arg)
{
    UnetTrainer *t = arg;
    UnetError err = { 0 };
    UnetStatus st = run(t, &err);
    fill_summary(t);
    char msg[UNET_ERROR_MESSAGE_MAX + 64];
    if (st) {
        if (t->have_run)
            run_log(&t->run, "error: %s", err.message);
        UnetTrainEvent ev = { .kind = UNET_EVENT_ERROR, .status = st, .message = err.message,
                              .epoch = t->st.epoch, .step = t->st.step };
        emit(t, &ev);
        snprintf(msg, sizeof msg, "%s", err.message);
    } else if (t->mode == UNET_TRAIN_LR_TEST) {
        snprintf(msg, sizeof msg, "LR range test done: suggested lr %.4g (%s)",
                 t->lr_result.suggested_lr, t->lr_result.note);
    } else if (t->summary.stopped) {
        snprintf(msg, sizeof msg, "stopped at epoch %d, step %lld; resume with --resume %.900s",
                 t->st.epoch + 1, (long long)t->st.step, t->cfg.out_dir);
    } else if (t->st.early_stopped) {
        snprintf(msg, sizeof msg,
                 "early stop after epoch %d: no improvement for %d epochs; best epoch %d",
                 t->st.epoch, t->cfg.patience, t->st.best_epoch);
    } else {
        snprintf(msg, sizeof msg, "finished %d epochs; best epoch %d", t->st.epoch,
                 t->st.best_epoch);
    }
    if (st == UNET_OK && t->have_run)
        run_log(&t->run, "%s", msg);
    UnetTrainEvent ev = { .kind = UNET_EVENT_FINISHED, .status = st, .message = msg,
                          .epoch = t->st.epoch, .step = t->st.step };
    emit(t, &ev);
    cleanup(t);
    t->status = st;
    t->err = err;
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------ */

UnetTrainer *unet_trainer_new(const UnetTrainConfig *cfg, UnetTrainCallback callback, void *user,
                              UnetError *err)
{
    if (unet_train_config_validate(cfg, err))
        return NULL;
    UnetTrainer *t = calloc(1, sizeof *t);
    if (!t) {
        unet_error_set(err, UNET_ERR_NOMEM, "out of memory creating the trainer");
        return NULL;
    }
    t->cfg = *cfg;
    t->cb = callback;
    t->user = user;
    atomic_init(&t->stop_flag, 0);
    atomic_init(&t->pause_flag, 0);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    return t;
}

UnetStatus unet_trainer_start(UnetTrainer *t, UnetTrainMode mode, UnetError *err)
{
    if (t->started)
        return unet_error_set(err, UNET_ERR_INVALID, "the trainer has already run; make a new one");
    t->mode = mode;
    /* the thread's stack holds several large structs (augmentation records) */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 16u << 20);
    int rc = pthread_create(&t->thread, &attr, thread_main, t);
    pthread_attr_destroy(&attr);
    if (rc)
        return unet_error_set(err, UNET_ERR_NOMEM, "cannot start the trainer thread");
    t->started = 1;
    return UNET_OK;
}

void unet_trainer_pause(UnetTrainer *t)
{
    atomic_store(&t->pause_flag, 1);
}

void unet_trainer_resume(UnetTrainer *t)
{
    pthread_mutex_lock(&t->mu);
    atomic_store(&t->pause_flag, 0);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void unet_trainer_stop(UnetTrainer *t)
{
    pthread_mutex_lock(&t->mu);
    atomic_store(&t->stop_flag, 1);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

int unet_trainer_is_paused(const UnetTrainer *t)
{
    return atomic_load(&((UnetTrainer *)t)->pause_flag);
}

UnetStatus unet_trainer_wait(UnetTrainer *t, UnetError *err)
{
    if (!t->started)
        return unet_error_set(err, UNET_ERR_INVALID, "the trainer was not started");
    if (!t->joined) {
        pthread_join(t->thread, NULL);
        t->joined = 1;
    }
    if (t->status && err)
        *err = t->err;
    return t->status;
}

const UnetTrainSummary *unet_trainer_summary(const UnetTrainer *t)
{
    return &t->summary;
}

const UnetLrTestResult *unet_trainer_lr_test_result(const UnetTrainer *t)
{
    return t->have_lr_result && t->lr_result.count ? &t->lr_result : NULL;
}

const UnetTrainConfig *unet_trainer_config(const UnetTrainer *t)
{
    return &t->cfg;
}

void unet_trainer_free(UnetTrainer *t)
{
    if (!t)
        return;
    if (t->started && !t->joined) {
        unet_trainer_stop(t);
        pthread_join(t->thread, NULL);
    }
    unet_lr_test_result_free(&t->lr_result);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

UnetStatus unet_train_run(const UnetTrainConfig *cfg, UnetTrainMode mode, UnetTrainCallback callback,
                          void *user, UnetTrainSummary *summary, UnetError *err)
{
    UnetTrainer *t = unet_trainer_new(cfg, callback, user, err);
    if (!t)
        return err ? err->status : UNET_ERR_INVALID;
    UnetStatus st = unet_trainer_start(t, mode, err);
    if (st == UNET_OK)
        st = unet_trainer_wait(t, err);
    if (summary)
        *summary = t->summary;
    unet_trainer_free(t);
    return st;
}
