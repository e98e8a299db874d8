/* train-data.c - the training images in memory, random training tiles that
 * depend only on (seed, epoch, index), and the worker threads that prepare
 * them ahead of the compute thread. */
#include "train-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tiling.h"

/* ---- loading --------------------------------------------------------------- */

typedef struct LoadJob {
    TrainSet *set;
    const UnetDataset *ds;
    const int *idx;
    const UnetWeightMapConfig *wcfg;
    pthread_mutex_t mu;
    int next;
    UnetStatus status;
    UnetError err;
} LoadJob;

static UnetStatus load_one(LoadJob *job, int k, UnetError *err)
{
    int i = job->idx ? job->idx[k] : k;
    TrainImage *ti = &job->set->items[k];
    UnetPair pair = { 0 };
    UnetStatus st = unet_dataset_load(job->ds, i, &pair, err);
    if (st)
        return st;
    ti->name = strdup(unet_dataset_name(job->ds, i));
    ti->width = pair.image.width;
    ti->height = pair.image.height;
    size_t px = (size_t)ti->width * (size_t)ti->height;
    /* The pair's buffers move into the set. */
    ti->image = pair.image.data;
    pair.image.data = NULL;
    ti->labels = pair.labels.data;
    pair.labels.data = NULL;
    if (!ti->name) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory loading the training set");
        goto done;
    }
    if (job->wcfg) {
        ti->weight = malloc(px * sizeof(float));
        if (!ti->weight) {
            st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory for the weight map of %s",
                                ti->name);
            goto done;
        }
        UnetWeightMapOutputs out = { 0 };
        out.weight = ti->weight;
        UnetWeightMapInfo info;
        st = unet_weightmap_compute(job->wcfg, ti->labels, pair.instances.data, ti->width,
                                    ti->height, &out, &info, NULL, err);
        if (st) {
            unet_error_prefix(err, "weight map of %s: ", ti->name);
            goto done;
        }
    }
    ti->channels = pair.image.channels;
done:
    unet_pair_free(&pair);
    return st;
}

static void *load_thread(void *arg)
{
    LoadJob *job = arg;
    for (;;) {
        pthread_mutex_lock(&job->mu);
        int k = job->status == UNET_OK && job->next < job->set->count ? job->next++ : -1;
        pthread_mutex_unlock(&job->mu);
        if (k < 0)
            break;
        UnetError e = { 0 };
        UnetStatus st = load_one(job, k, &e);
        if (st) {
            pthread_mutex_lock(&job->mu);
            if (job->status == UNET_OK) {
                job->status = st;
                job->err = e;
            }
            pthread_mutex_unlock(&job->mu);
        }
    }
    return NULL;
}

UnetStatus train_set_load(TrainSet *set, const UnetDataset *ds, const int *idx, int n,
                          const UnetWeightMapConfig *wcfg, int threads, UnetError *err)
{
    memset(set, 0, sizeof *set);
    if (n <= 0)
        return unet_error_set(err, UNET_ERR_INVALID, "no images to load");
    set->items = calloc((size_t)n, sizeof *set->items);
    if (!set->items)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for %d images", n);
    set->count = n;
    LoadJob job = { .set = set, .ds = ds, .idx = idx, .wcfg = wcfg };
    pthread_mutex_init(&job.mu, NULL);
    if (threads < 1)
        threads = 1;
    if (threads > n)
        threads = n;
    pthread_t tids[64];
    int started = 0;
    for (int i = 1; i < threads && i < 64; i++)
        if (pthread_create(&tids[started], NULL, load_thread, &job) == 0)
            started++;
    load_thread(&job);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&job.mu);
    if (job.status) {
        if (err)
            *err = job.err;
        train_set_free(set);
        return job.status;
    }
    int max_label = 0;
    set->channels = set->items[0].channels;
    for (int k = 0; k < n; k++) {
        const TrainImage *ti = &set->items[k];
        if (ti->channels != set->channels) {
            UnetStatus st = unet_error_set(err, UNET_ERR_FORMAT,
                                           "image %s has %d channels but %s has %d; convert them "
                                           "to one colour mode (e.g. --color grey or rgb)",
                                           ti->name, ti->channels, set->items[0].name,
                                           set->channels);
            train_set_free(set);
            return st;
        }
        size_t px = (size_t)ti->width * (size_t)ti->height;
        for (size_t p = 0; p < px; p++)
            if (ti->labels[p] > max_label)
                max_label = ti->labels[p];
    }
    set->max_label = max_label;
    return UNET_OK;
}

void train_set_free(TrainSet *set)
{
    for (int k = 0; k < set->count; k++) {
        free(set->items[k].name);
        free(set->items[k].image);
        free(set->items[k].labels);
        free(set->items[k].weight);
    }
    free(set->items);
    memset(set, 0, sizeof *set);
}

/* ---- deterministic samples ---------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t s = a ^ splitmix(&b);
    return splitmix(&s);
}

int train_sample_image(const SampleSpec *spec, int64_t epoch, int64_t index)
{
    int n = spec->set->count;
    int64_t cycle = index / n, pos = index % n;
    uint64_t rng = mix(mix(mix(spec->seed, spec->stream ^ 0x6f72646572ULL), (uint64_t)epoch),
                       (uint64_t)cycle);
    /* Fisher-Yates up to position pos only: the rest is never read. */
    int *perm = malloc((size_t)n * sizeof(int));
    if (!perm)
        return (int)((uint64_t)index % (uint64_t)n);
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = 0; i <= pos; i++) {
        int j = i + (int)(splitmix(&rng) % (uint64_t)(n - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int r = perm[pos];
    free(perm);
    return r;
}

void sample_scratch_free(SampleScratch *s)
{
    for (int i = 0; i < 7; i++)
        free(s->buf[i]);
    unet_scratch_free(&s->augment);
    memset(s, 0, sizeof *s);
}

enum { SC_IMG, SC_LAB, SC_WGT, SC_IMG_AUG, SC_LAB_AUG, SC_WGT_AUG, SC_TILE };

/* Buffer i of at least `bytes`, or NULL when out of memory. */
static void *scratch(SampleScratch *s, int i, size_t bytes)
{
    if (s->cap[i] < bytes) {
        void *q = realloc(s->buf[i], bytes);
        if (!q)
            return NULL;
        s->buf[i] = q;
        s->cap[i] = bytes;
    }
    return s->buf[i];
}

UnetStatus train_sample_alloc(TrainSample *s, const SampleSpec *spec, UnetError *err)
{
    memset(s, 0, sizeof *s);
    size_t in = (size_t)spec->in_size * (size_t)spec->in_size;
    size_t out = (size_t)spec->out_size * (size_t)spec->out_size;
    s->x = malloc(in * (size_t)spec->channels * sizeof(float));
    s->target = malloc(out * sizeof(float));
    s->weight = malloc(out * sizeof(float));
    if (!s->x || !s->target || !s->weight) {
        train_sample_free(s);
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for a training tile of %d px",
                              spec->in_size);
    }
    return UNET_OK;
}

void train_sample_free(TrainSample *s)
{
    free(s->x);
    free(s->target);
    free(s->weight);
    memset(s, 0, sizeof *s);
}

UnetStatus train_sample_make(const SampleSpec *spec, int64_t epoch, int64_t index, TrainSample *out,
                             SampleScratch *sc, UnetError *err)
{
    const int C = spec->channels, in = spec->in_size, os = spec->out_size;
    const int border = (in - os) / 2;
    int k = train_sample_image(spec, epoch, index);
    const TrainImage *ti = &spec->set->items[k];
    uint64_t rng = mix(mix(mix(spec->seed, spec->stream), (uint64_t)epoch), (uint64_t)index);
    int ox, oy;
    unet_tile_random_position(ti->width, ti->height, os, &rng, &ox, &oy);
    out->image = k;
    out->out_x = ox;
    out->out_y = oy;
    out->epoch = epoch;
    out->index = index;
    const size_t opx = (size_t)os * (size_t)os;
    int32_t *tile = scratch(sc, SC_TILE, opx * sizeof(int32_t));
    if (!tile)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for a training tile");

    if (!spec->augment) {
        unet_mirror_crop(out->x, ti->image, C, ti->height, ti->width, ox - border, oy - border, in,
                         in);
        unet_mirror_crop_i32(tile, ti->labels, ti->height, ti->width, ox, oy, os, os);
        for (size_t p = 0; p < opx; p++)
            out->target[p] = (float)tile[p];
        if (spec->use_weight && ti->weight)
            unet_mirror_crop(out->weight, ti->weight, 1, ti->height, ti->width, ox, oy, os, os);
        else
            for (size_t p = 0; p < opx; p++)
                out->weight[p] = 1.0f;
        return UNET_OK;
    }

    /* Augment a region with a margin of real (or mirrored) context around the
     * input tile, so rotations and elastic moves bring image content, not
     * reflections of the tile, into its corners; then cut the tile from the
     * centre. */
    const int margin = (in / 4 + 1) & ~1;
    const int R = in + 2 * margin;
    const size_t rpx = (size_t)R * (size_t)R;
    const int have_w = spec->use_weight && ti->weight;
    float *img = scratch(sc, SC_IMG, rpx * (size_t)C * sizeof(float));
    int32_t *lab = scratch(sc, SC_LAB, rpx * sizeof(int32_t));
    float *wgt = have_w ? scratch(sc, SC_WGT, rpx * sizeof(float)) : NULL;
    if (!img || !lab || (have_w && !wgt))
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for an augmentation region");
    const int rx = ox - border - margin, ry = oy - border - margin;
    unet_mirror_crop(img, ti->image, C, ti->height, ti->width, rx, ry, R, R);
    unet_mirror_crop_i32(lab, ti->labels, ti->height, ti->width, rx, ry, R, R);
    if (have_w)
        unet_mirror_crop(wgt, ti->weight, 1, ti->height, ti->width, rx, ry, R, R);

    UnetAugmentRecord rec;
    UnetStatus st = unet_augment_sample(&rec, spec->augmentation, splitmix(&rng), R, R, err);
    if (st)
        return st;
    const size_t apx = (size_t)rec.out_w * (size_t)rec.out_h;
    float *img_aug = scratch(sc, SC_IMG_AUG, apx * (size_t)C * sizeof(float));
    int32_t *lab_aug = scratch(sc, SC_LAB_AUG, apx * sizeof(int32_t));
    float *wgt_aug = have_w ? scratch(sc, SC_WGT_AUG, apx * sizeof(float)) : NULL;
    if (!img_aug || !lab_aug || (have_w && !wgt_aug))
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for an augmentation result");
    st = unet_augment_apply(&rec, img, C, lab, wgt, img_aug, lab_aug, wgt_aug, &sc->augment, err);
    if (st)
        return st;
    /* A pipeline that changes the size (pad_if_needed) is centred on the tile. */
    const int cx = (rec.out_w - in) / 2, cy = (rec.out_h - in) / 2;
    unet_mirror_crop(out->x, img_aug, C, rec.out_h, rec.out_w, cx, cy, in, in);
    unet_mirror_crop_i32(tile, lab_aug, rec.out_h, rec.out_w, cx + border, cy + border, os, os);
    for (size_t p = 0; p < opx; p++)
        out->target[p] = (float)tile[p];
    if (have_w)
        unet_mirror_crop(out->weight, wgt_aug, 1, rec.out_h, rec.out_w, cx + border, cy + border,
                         os, os);
    else
        for (size_t p = 0; p < opx; p++)
            out->weight[p] = 1.0f;
    return UNET_OK;
}

/* ---- prefetch queue ------------------------------------------------------------ */

static void *prefetch_thread(void *arg)
{
    Prefetcher *p = arg;
    SampleScratch sc = { 0 };
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && !p->failed && p->next_claim - p->consumed >= p->capacity)
            pthread_cond_wait(&p->space, &p->mu);
        if (p->stop || p->failed)
            break;
        int64_t seq = p->next_claim++;
        pthread_mutex_unlock(&p->mu);

        int slot = (int)(seq % p->capacity);
        int64_t abs = p->start_index + seq;
        int64_t epoch = p->start_epoch + abs / p->spec.samples_per_epoch;
        int64_t index = abs % p->spec.samples_per_epoch;
        UnetError e = { 0 };
        UnetStatus st = train_sample_make(&p->spec, epoch, index, &p->slots[slot], &sc, &e);

        pthread_mutex_lock(&p->mu);
        if (st) {
            if (!p->failed) {
                p->failed = 1;
                p->err = e;
            }
            pthread_cond_broadcast(&p->ready);
            pthread_cond_broadcast(&p->space);
            break;
        }
        p->slot_seq[slot] = seq;
        pthread_cond_broadcast(&p->ready);
    }
    pthread_mutex_unlock(&p->mu);
    sample_scratch_free(&sc);
    return NULL;
}

UnetStatus prefetcher_start(Prefetcher *p, const SampleSpec *spec, int workers, int capacity,
                            int64_t epoch, int64_t index, UnetError *err)
{
    memset(p, 0, sizeof *p);
    p->spec = *spec;
    if (capacity < 1)
        capacity = 1;
    if (workers < 1)
        workers = 1;
    p->capacity = capacity;
    p->start_epoch = epoch;
    p->start_index = index;
    p->slots = calloc((size_t)capacity, sizeof *p->slots);
    p->slot_seq = malloc((size_t)capacity * sizeof *p->slot_seq);
    p->threads = calloc((size_t)workers, sizeof *p->threads);
    if (!p->slots || !p->slot_seq || !p->threads) {
        prefetcher_stop(p);
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for the prefetch queue");
    }
    for (int i = 0; i < capacity; i++) {
        p->slot_seq[i] = -1;
        UnetStatus st = train_sample_alloc(&p->slots[i], spec, err);
        if (st) {
            prefetcher_stop(p);
            return st;
        }
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->ready, NULL);
    pthread_cond_init(&p->space, NULL);
    p->started = 1;
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&p->threads[p->nthreads], NULL, prefetch_thread, p) != 0)
            break;
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        prefetcher_stop(p);
        return unet_error_set(err, UNET_ERR_NOMEM, "cannot start the data worker threads");
    }
    return UNET_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

UnetStatus prefetcher_next(Prefetcher *p, const TrainSample **out, double *waited, UnetError *err)
{
    int slot = (int)(p->consumed % p->capacity);
    double t0 = 0.0;
    int blocked = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->failed && p->slot_seq[slot] != p->consumed) {
        if (!blocked) {
            blocked = 1;
            t0 = now_seconds();
        }
        pthread_cond_wait(&p->ready, &p->mu);
    }
    int failed = p->failed && p->slot_seq[slot] != p->consumed;
    if (failed && err)
        *err = p->err;
    UnetStatus st = failed ? p->err.status : UNET_OK;
    pthread_mutex_unlock(&p->mu);
    if (waited)
        *waited = blocked ? now_seconds() - t0 : 0.0;
    if (st)
        return st;
    *out = &p->slots[slot];
    return UNET_OK;
}

void prefetcher_release(Prefetcher *p)
{
    pthread_mutex_lock(&p->mu);
    p->slot_seq[p->consumed % p->capacity] = -1;
    p->consumed++;
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->mu);
}

void prefetcher_stop(Prefetcher *p)
{
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->space);
        pthread_cond_broadcast(&p->ready);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->nthreads; i++)
            pthread_join(p->threads[i], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->ready);
        pthread_cond_destroy(&p->space);
    }
    if (p->slots)
        for (int i = 0; i < p->capacity; i++)
            train_sample_free(&p->slots[i]);
    free(p->slots);
    free(p->slot_seq);
    free(p->threads);
    memset(p, 0, sizeof *p);
}
