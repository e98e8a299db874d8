/* train-private.h - what crosses files inside the trainer: the in-memory
 * training set, deterministic sample generation and the prefetch queue
 * (train-data.c), the run folder (run-folder.c) and the LR test (lr-test.c). */
#ifndef UNET_TRAIN_PRIVATE_H
#define UNET_TRAIN_PRIVATE_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "scratch.h"
#include "trainer.h"

/* ---- in-memory images -------------------------------------------------- */

typedef struct TrainImage {
    char *name;
    int width, height, channels;
    float *image;     /* channels x height x width, normalised */
    int32_t *labels;  /* class ids, height x width */
    float *weight;    /* loss weight per pixel, or NULL (all ones) */
} TrainImage;

typedef struct TrainSet {
    TrainImage *items;
    int count;
    int channels;
    int max_label;    /* largest class id seen */
} TrainSet;

/* Loads pairs idx[0..n) of ds (all of them when idx is NULL) with `threads`
 * threads, computing the weight maps when wcfg is not NULL. */
UnetStatus train_set_load(TrainSet *set, const UnetDataset *ds, const int *idx, int n,
                          const UnetWeightMapConfig *wcfg, int threads, UnetError *err);
void train_set_free(TrainSet *set);

/* ---- samples ------------------------------------------------------------- */

/* Sample streams: the training epochs and the LR test draw from different
 * domains of the same seed. */
#define TRAIN_STREAM_FIT 0x666974ULL
#define TRAIN_STREAM_LR_TEST 0x6c7274ULL

typedef struct SampleSpec {
    const TrainSet *set;
    uint64_t seed;
    uint64_t stream;
    int64_t samples_per_epoch;
    int in_size, out_size, channels;
    int use_weight;
    int augment;
    const UnetAugmentConfig *augmentation;
} SampleSpec;

typedef struct TrainSample {
    float *x;       /* channels x in x in */
    float *target;  /* out x out: 0/1 or class ids */
    float *weight;  /* out x out (all ones without a weight map) */
    int image;      /* index into the set */
    int out_x, out_y; /* output tile position in the image, before augmentation */
    int64_t epoch, index;
} TrainSample;

/* Per-thread work buffers of train_sample_make. */
typedef struct SampleScratch {
    void *buf[7];
    size_t cap[7];
    UnetScratch augment;
} SampleScratch;

void sample_scratch_free(SampleScratch *s);
UnetStatus train_sample_alloc(TrainSample *s, const SampleSpec *spec, UnetError *err);
void train_sample_free(TrainSample *s);

/* Sample `index` of `epoch`: depends only on (spec, epoch, index). */
UnetStatus train_sample_make(const SampleSpec *spec, int64_t epoch, int64_t index, TrainSample *out,
                             SampleScratch *scratch, UnetError *err);

/* Which image sample `index` of `epoch` shows: each cycle of count samples
 * visits every image once, in a seeded order. */
int train_sample_image(const SampleSpec *spec, int64_t epoch, int64_t index);

/* ---- prefetch queue ------------------------------------------------------ */

typedef struct Prefetcher {
    SampleSpec spec;
    int capacity;
    TrainSample *slots;
    int64_t *slot_seq;          /* sequence number held when ready, -1 otherwise */
    pthread_mutex_t mu;
    pthread_cond_t ready, space;
    int64_t start_epoch, start_index; /* sequence 0 */
    int64_t next_claim, consumed;
    int stop, failed;
    UnetError err;
    pthread_t *threads;
    int nthreads, started;
} Prefetcher;

/* Starts `workers` threads producing the stream from (epoch, index) on, at
 * most `capacity` samples ahead of the consumer. */
UnetStatus prefetcher_start(Prefetcher *p, const SampleSpec *spec, int workers, int capacity,
                            int64_t epoch, int64_t index, UnetError *err);
/* The next sample in stream order; *waited (may be NULL) gets the seconds
 * spent blocked. Valid until prefetcher_release. */
UnetStatus prefetcher_next(Prefetcher *p, const TrainSample **out, double *waited, UnetError *err);
void prefetcher_release(Prefetcher *p);
/* Stops and joins the workers, frees the slots (safe on a zeroed struct). */
void prefetcher_stop(Prefetcher *p);

/* ---- run folder ------------------------------------------------------------ */

typedef struct RunFolder {
    char *dir;
    FILE *metrics;   /* metrics.csv, append */
    FILE *log;       /* log.txt, append */
} RunFolder;

/* path inside the run folder; malloc'd */
char *run_path(const RunFolder *r, const char *name);
/* A new run: creates dir, refuses one that already holds a run. */
UnetStatus run_folder_create(RunFolder *r, const char *dir, UnetError *err);
/* An existing run: keeps the metrics rows up to (epoch rows <= epochs_done,
 * step rows <= steps) and opens the files for appending. */
UnetStatus run_folder_reopen(RunFolder *r, const char *dir, int epochs_done, int64_t steps,
                             UnetError *err);
void run_folder_close(RunFolder *r);
UnetStatus run_write_config(RunFolder *r, const UnetTrainConfig *cfg, UnetError *err);
void run_log(RunFolder *r, const char *fmt, ...) UNET_PRINTF(2, 3);

typedef struct MetricsRow {
    const char *kind;     /* "step" or "epoch" */
    int epoch;
    int64_t step;
    double lr;
    double loss;          /* step rows */
    double train_loss, val_loss; /* epoch rows (NaN: none) */
    const UnetSegMetrics *metrics; /* epoch rows, NULL without validation */
    double samples_per_second, data_wait_fraction, seconds;
} MetricsRow;
void run_metrics_row(RunFolder *r, const MetricsRow *row);

/* File name for a dataset item name: letters, digits, '-', '_', '.', '[', ']'
 * kept, anything else '_' (so no name can leave the folder). */
void run_safe_name(char *dst, size_t size, const char *name);


#endif
