/* test-train-data.c - training tiles: geometry of valid-padding crops, the
 * image order, and a prefetched stream identical to the samples made one by
 * one whatever the number of worker threads and the starting point. */
#include <string.h>

#include "sample-data.h"
#include "test-common.h"
#include "train-private.h"

#define N_IMAGES 5
#define SIDE 64

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static uint64_t sample_hash(const SampleSpec *spec, const TrainSample *s)
{
    size_t xs = (size_t)spec->channels * spec->in_size * spec->in_size;
    size_t ts = (size_t)spec->out_size * spec->out_size;
    uint64_t h = 1469598103934665603ULL;
    h = fnv(s->x, xs * sizeof(float), h);
    h = fnv(s->target, ts * sizeof(float), h);
    h = fnv(s->weight, ts * sizeof(float), h);
    return h;
}

static void test_geometry(const TrainSet *set)
{
    /* valid padding: input 60 around an output of 20 (border 20), no augmentation */
    SampleSpec spec = { .set = set, .seed = 3, .stream = TRAIN_STREAM_FIT, .samples_per_epoch = 12,
                        .in_size = 60, .out_size = 20, .channels = 1, .use_weight = 1 };
    TrainSample s;
    UnetError err = { 0 };
    CHECK(train_sample_alloc(&s, &spec, &err) == UNET_OK);
    SampleScratch sc = { 0 };
    for (int i = 0; i < 12; i++) {
        CHECK(train_sample_make(&spec, 0, i, &s, &sc, &err) == UNET_OK);
        const TrainImage *im = &set->items[s.image];
        CHECK(s.out_x >= 0 && s.out_x + 20 <= im->width && s.out_y >= 0 && s.out_y + 20 <= im->height);
        int bad_t = 0, bad_w = 0, bad_x = 0;
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 20; x++) {
                size_t p = (size_t)(s.out_y + y) * im->width + (s.out_x + x);
                bad_t += s.target[y * 20 + x] != (float)im->labels[p];
                bad_w += s.weight[y * 20 + x] != im->weight[p];
                /* the output tile sits in the middle of the input tile */
                bad_x += s.x[(y + 20) * 60 + (x + 20)] != im->image[p];
            }
        CHECK(bad_t == 0 && bad_w == 0 && bad_x == 0);
        /* context outside the image is mirrored, never garbage */
        for (int k = 0; k < 60 * 60; k++)
            CHECK(s.x[k] >= 0.0f && s.x[k] <= 1.0f);
    }
    /* the weight map is the U-Net's: above 1 somewhere near touching cells */
    float wmax = 0.0f;
    for (int k = 0; k < SIDE * SIDE; k++)
        wmax = set->items[0].weight[k] > wmax ? set->items[0].weight[k] : wmax;
    CHECK(wmax > 2.0f);
    sample_scratch_free(&sc);
    train_sample_free(&s);
}

static void test_order(const TrainSet *set)
{
    SampleSpec spec = { .set = set, .seed = 11, .stream = TRAIN_STREAM_FIT,
                        .samples_per_epoch = 3 * N_IMAGES };
    int differs = 0;
    for (int e = 0; e < 4; e++) {
        for (int cycle = 0; cycle < 3; cycle++) {
            int seen[N_IMAGES] = { 0 };
            for (int i = 0; i < N_IMAGES; i++)
                seen[train_sample_image(&spec, e, cycle * N_IMAGES + i)]++;
            for (int k = 0; k < N_IMAGES; k++)
                CHECK(seen[k] == 1);
        }
        for (int i = 0; i < N_IMAGES; i++)
            differs += train_sample_image(&spec, e, i) != train_sample_image(&spec, e + 1, i);
    }
    CHECK(differs > 0);
    /* the LR test draws from another stream */
    SampleSpec lr = spec;
    lr.stream = TRAIN_STREAM_LR_TEST;
    int same = 0;
    for (int i = 0; i < N_IMAGES; i++)
        same += train_sample_image(&spec, 0, i) == train_sample_image(&lr, 0, i);
    CHECK(same < N_IMAGES);
}

static void test_prefetch(const TrainSet *set)
{
    UnetAugmentConfig aug;
    UnetTrainConfig defaults;
    unet_train_config_default(&defaults);
    aug = defaults.augmentation;
    const int S = 7; /* samples per epoch, not a multiple of the image count */
    SampleSpec spec = { .set = set, .seed = 5, .stream = TRAIN_STREAM_FIT, .samples_per_epoch = S,
                        .in_size = 44, .out_size = 44, .channels = 1, .use_weight = 1,
                        .augment = 1, .augmentation = &aug };
    const int total = 3 * S;
    uint64_t direct[3 * 7];
    TrainSample s;
    UnetError err = { 0 };
    CHECK(train_sample_alloc(&s, &spec, &err) == UNET_OK);
    SampleScratch sc = { 0 };
    for (int k = 0; k < total; k++) {
        CHECK(train_sample_make(&spec, k / S, k % S, &s, &sc, &err) == UNET_OK);
        direct[k] = sample_hash(&spec, &s);
    }
    /* again: a pure function of (seed, epoch, index) */
    CHECK(train_sample_make(&spec, 1, 2, &s, &sc, &err) == UNET_OK);
    CHECK(sample_hash(&spec, &s) == direct[S + 2]);
    /* augmentation changes the tiles from epoch to epoch */
    int distinct = 0;
    for (int k = 1; k < total; k++)
        distinct += direct[k] != direct[0];
    CHECK(distinct == total - 1);
    /* another seed, another stream */
    SampleSpec other = spec;
    other.seed = 6;
    CHECK(train_sample_make(&other, 0, 0, &s, &sc, &err) == UNET_OK);
    CHECK(sample_hash(&spec, &s) != direct[0]);
    sample_scratch_free(&sc);
    train_sample_free(&s);

    const int workers[] = { 1, 2, 4 };
    const int capacity[] = { 1, 3, 8 };
    for (int w = 0; w < 3; w++) {
        for (int start = 0; start < 2; start++) {
            int64_t e0 = start ? 1 : 0, i0 = start ? 3 : 0;
            Prefetcher pf;
            CHECK(prefetcher_start(&pf, &spec, workers[w], capacity[w], e0, i0, &err) == UNET_OK);
            int bad = 0;
            for (int k = (int)(e0 * S + i0); k < total; k++) {
                const TrainSample *got;
                double waited;
                CHECK(prefetcher_next(&pf, &got, &waited, &err) == UNET_OK);
                bad += sample_hash(&spec, got) != direct[k];
                bad += got->epoch != k / S || got->index != k % S;
                CHECK(waited >= 0.0);
                prefetcher_release(&pf);
            }
            CHECK_MSG(bad == 0, "%d workers, capacity %d, start (%lld,%lld): %d mismatches",
                      workers[w], capacity[w], (long long)e0, (long long)i0, bad);
            prefetcher_stop(&pf);
        }
    }
    /* stopping with samples still queued and workers blocked is clean */
    Prefetcher pf;
    CHECK(prefetcher_start(&pf, &spec, 3, 2, 0, 0, &err) == UNET_OK);
    const TrainSample *got;
    CHECK(prefetcher_next(&pf, &got, NULL, &err) == UNET_OK);
    prefetcher_release(&pf);
    prefetcher_stop(&pf);
}

int main(void)
{
    char *dir = test_make_temp_dir("train-data");
    UnetError err = { 0 };
    UnetSampleDataOptions so;
    unet_sample_data_options_default(&so);
    so.count = N_IMAGES;
    so.size = SIDE;
    so.seed = 4;
    CHECK_MSG(unet_sample_data_write(dir, &so, NULL, NULL, &err) == UNET_OK, "%s", err.message);
    UnetDataset *ds = NULL;
    CHECK_MSG(unet_dataset_open(dir, NULL, &ds, &err) == UNET_OK, "%s", err.message);
    if (!ds)
        return test_finish("train-data");
    UnetWeightMapConfig wc;
    unet_weightmap_config_default(&wc);
    TrainSet set;
    CHECK_MSG(train_set_load(&set, ds, NULL, N_IMAGES, &wc, 3, &err) == UNET_OK, "%s", err.message);
    CHECK(set.count == N_IMAGES && set.channels == 1 && set.max_label == 1);
    /* loading with one thread gives the same set */
    TrainSet one;
    CHECK(train_set_load(&one, ds, NULL, N_IMAGES, &wc, 1, &err) == UNET_OK);
    for (int k = 0; k < N_IMAGES; k++) {
        CHECK(!strcmp(one.items[k].name, set.items[k].name));
        CHECK(!memcmp(one.items[k].weight, set.items[k].weight, SIDE * SIDE * sizeof(float)));
    }
    train_set_free(&one);
    test_geometry(&set);
    test_order(&set);
    test_prefetch(&set);
    train_set_free(&set);
    unet_dataset_free(ds);
    free(dir);
    return test_finish("train-data");
}
