/* test-train-config.c - the training config's JSON round trip and checks, and
 * the LR range test's curve analysis on synthetic curves. */
#include <math.h>
#include <string.h>

#include "test-common.h"
#include "trainer.h"

static void test_defaults(void)
{
    UnetTrainConfig c;
    unet_train_config_default(&c);
    /* the paper where explicit, the notebook where not */
    CHECK(c.optimizer.kind == UNET_OPTIM_SGD);
    CHECK(fabs(c.optimizer.momentum - 0.99) < 1e-12);
    CHECK(c.batch == 1);
    CHECK(c.weights.w0 == 10.0f && c.weights.sigma == 5.0f);
    CHECK(c.optimizer.lr == 0.0); /* from the range test */
    CHECK(c.patience == 10);
    CHECK(c.augment == 1);
    for (int i = 0; i < c.augmentation.count; i++)
        CHECK(!(c.augmentation.stages[i].count == 1 &&
                c.augmentation.stages[i].ops[0].kind == UNET_AUG_PAD_IF_NEEDED));
    UnetError err = { 0 };
    /* no data folder yet */
    CHECK(unet_train_config_validate(&c, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "training data") != NULL);
    strcpy(c.data_dir, "/some/where");
    CHECK(unet_train_config_validate(&c, &err) == UNET_OK);
    c.batch = 0;
    CHECK(unet_train_config_validate(&c, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "batch") != NULL);
    c.batch = 1;
    c.loss = UNET_LOSS_SOFTMAX_CE; /* 1-class model */
    CHECK(unet_train_config_validate(&c, &err) == UNET_ERR_INVALID);
    c.loss = UNET_LOSS_DEFAULT;
    c.lr_test.max_lr = c.lr_test.min_lr / 2;
    CHECK(unet_train_config_validate(&c, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "LR test") != NULL);
}

static void test_json_round_trip(void)
{
    UnetTrainConfig a, b;
    unet_train_config_default(&a);
    strcpy(a.data_dir, "/data/train");
    strcpy(a.val_dir, "/data/val \"quoted\"");
    a.model.in_channels = 0;
    a.model.depth = 3;
    a.model.base = 8;
    a.model.padding = UNET_PAD_SAME;
    a.model.norm = UNET_NORM_BATCH;
    a.optimizer.lr = 0.0123;
    a.optimizer.nesterov = 1;
    a.optimizer.accumulate = 4;
    unet_lr_schedule_config_default(&a.schedule, UNET_LR_PLATEAU);
    a.schedule.patience = 3;
    a.batch = 2;
    a.epochs = 7;
    a.patience = 0;
    a.monitor = UNET_MONITOR_VAL_DICE;
    a.steps_per_epoch = 33;
    a.tile = 124;
    a.loss = UNET_LOSS_DICE;
    a.weight_map = 0;
    a.weights.w0 = 7.5f;
    a.weights.sigma = 3.25f;
    a.seed = 18446744073709551615ULL; /* all 64 bits survive */
    a.divergence_factor = 0.0;
    a.lr_test.iterations = 77;
    a.workers = 3;
    a.threads = 1;
    a.val_fraction = 0.1;
    snprintf(a.device, sizeof a.device, "reference");
    char *json = unet_train_config_to_json(&a);
    CHECK(json != NULL);
    unet_train_config_default(&b);
    UnetError err = { 0 };
    CHECK_MSG(unet_train_config_from_json(&b, json, &err) == UNET_OK, "%s", err.message);
    char *json2 = unet_train_config_to_json(&b);
    CHECK(json2 && !strcmp(json, json2));
    CHECK(b.seed == a.seed);
    CHECK(b.model.in_channels == 0);
    CHECK(b.optimizer.lr == 0.0123 && b.optimizer.accumulate == 4 && b.optimizer.nesterov);
    CHECK(!strcmp(b.val_dir, a.val_dir));
    CHECK(b.tile == 124 && b.loss == UNET_LOSS_DICE && !b.weight_map && b.weights.w0 == 7.5f);
    CHECK(b.monitor == UNET_MONITOR_VAL_DICE && b.schedule.kind == UNET_LR_PLATEAU &&
          b.schedule.patience == 3);
    /* no output path is stored: a replayed config cannot write elsewhere */
    CHECK(strstr(json, "out_dir") == NULL);
    free(json2);

    /* augmentation off round-trips as null */
    a.augment = 0;
    free(json);
    json = unet_train_config_to_json(&a);
    unet_train_config_default(&b);
    CHECK(unet_train_config_from_json(&b, json, &err) == UNET_OK && b.augment == 0);
    free(json);

    /* the LR "from the range test" (0) survives */
    a.optimizer.lr = 0.0;
    json = unet_train_config_to_json(&a);
    unet_train_config_default(&b);
    b.optimizer.lr = 5.0;
    CHECK(unet_train_config_from_json(&b, json, &err) == UNET_OK && b.optimizer.lr == 0.0);
    free(json);

    /* errors name the key */
    unet_train_config_default(&b);
    CHECK(unet_train_config_from_json(&b, "{\"training\":{\"epoch\":3}}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "\"epoch\"") != NULL);
    CHECK(unet_train_config_from_json(&b, "{\"training\":{\"epochs\":\"3\"}}", &err) ==
          UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "training.epochs") != NULL);
    CHECK(unet_train_config_from_json(&b, "{\"format\":\"other\"}", &err) == UNET_ERR_FORMAT);
    CHECK(unet_train_config_from_json(&b, "{\"loss\":{\"kind\":\"hinge\"}}", &err) ==
          UNET_ERR_INVALID);
    CHECK(strstr(err.message, "hinge") != NULL);
    CHECK(unet_train_config_from_json(&b, "not json", &err) == UNET_ERR_FORMAT);
    /* a failed parse leaves the config as it was */
    UnetTrainConfig before = b;
    CHECK(unet_train_config_from_json(&b, "{\"training\":{\"epochs\":9,\"bogus\":1}}", &err) != UNET_OK);
    CHECK(b.epochs == before.epochs);

    UnetError e2 = { 0 };
    CHECK(unet_train_config_load_run(&b, "/nonexistent/run/folder", &e2) == UNET_ERR_IO);
    CHECK(strstr(e2.message, "/nonexistent/run/folder") != NULL);
}

/* A curve flat at `start`, falling between lr 1e-4 and 1e-2, then blowing up. */
static void synthetic_curve(UnetLrTestResult *r, int n, double noise, uint64_t seed)
{
    TestRng rng;
    test_rng_seed(&rng, seed);
    r->count = n;
    r->lr = malloc((size_t)n * sizeof(double));
    r->loss = malloc((size_t)n * sizeof(double));
    r->smoothed = NULL;
    for (int i = 0; i < n; i++) {
        double lr = 1e-7 * pow(1e8, (double)i / (n - 1));
        double x = log10(lr);
        double l = x < -4 ? 1.0 : x < -2 ? 1.0 - 0.45 * (x + 4) : 0.1 * exp(3.0 * (x + 2));
        r->lr[i] = lr;
        r->loss[i] = l * (1.0 + noise * test_rng_normal(&rng));
    }
}

static void test_lr_analysis(void)
{
    UnetError err = { 0 };
    for (uint64_t seed = 1; seed <= 5; seed++) {
        UnetLrTestResult r = { 0 };
        synthetic_curve(&r, 100, 0.08, seed);
        CHECK_MSG(unet_lr_test_analyse(&r, 0.98, &err) == UNET_OK, "%s", err.message);
        /* the suggestion lies on the descent, below the minimum's rate */
        CHECK_MSG(r.suggested_lr > 1e-4 && r.suggested_lr < 1e-2, "seed %llu: suggested %g",
                  (unsigned long long)seed, r.suggested_lr);
        CHECK(r.suggested_index <= r.best_index);
        CHECK(r.smoothed[r.suggested_index] < r.smoothed[0]);
        CHECK(strstr(r.note, "steepest") != NULL);
        /* bias correction: the first smoothed value is the first loss */
        CHECK(fabs(r.smoothed[0] - r.loss[0]) < 1e-12);
        unet_lr_test_result_free(&r);
    }
    /* the smoothing itself: EMA with bias correction */
    UnetLrTestResult r = { 0 };
    double lr[3] = { 1e-3, 1e-2, 1e-1 }, loss[3] = { 2.0, 1.0, 4.0 };
    r.count = 3;
    r.lr = malloc(sizeof lr);
    r.loss = malloc(sizeof loss);
    memcpy(r.lr, lr, sizeof lr);
    memcpy(r.loss, loss, sizeof loss);
    CHECK(unet_lr_test_analyse(&r, 0.5, &err) == UNET_OK);
    /* avg: 1, 1.0, 2.5; corrections 0.5, 0.75, 0.875 */
    CHECK(fabs(r.smoothed[0] - 2.0) < 1e-12);
    CHECK(fabs(r.smoothed[1] - 1.0 / 0.75 * 1.0) < 1e-12);
    CHECK(fabs(r.smoothed[2] - 2.5 / 0.875) < 1e-12);
    unet_lr_test_result_free(&r);

    /* a curve that only rises: the fallback, and the note says so */
    UnetLrTestResult up = { 0 };
    up.count = 50;
    up.lr = malloc(50 * sizeof(double));
    up.loss = malloc(50 * sizeof(double));
    for (int i = 0; i < 50; i++) {
        up.lr[i] = 1e-5 * pow(10.0, i / 10.0);
        up.loss[i] = 1.0 + 0.01 * i;
    }
    CHECK(unet_lr_test_analyse(&up, 0.98, &err) == UNET_OK);
    CHECK(strstr(up.note, "did not descend") != NULL);
    CHECK(up.suggested_lr <= up.lr[up.best_index]);
    unet_lr_test_result_free(&up);

    /* too few points */
    UnetLrTestResult two = { 0 };
    two.count = 2;
    two.lr = calloc(2, sizeof(double));
    two.loss = calloc(2, sizeof(double));
    CHECK(unet_lr_test_analyse(&two, 0.98, &err) == UNET_ERR_NUMERIC);
    CHECK(strstr(err.message, "--min-lr") != NULL);
    unet_lr_test_result_free(&two);
}

int main(void)
{
    test_defaults();
    test_json_round_trip();
    test_lr_analysis();
    return test_finish("train-config");
}
