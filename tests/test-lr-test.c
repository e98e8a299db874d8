/* test-lr-test.c - the LR range test on real training: the curve descends,
 * then diverges and stops early; the suggestion lies on the descent; and the
 * model comes back untouched (weights, batch-norm statistics, optimizer), so a
 * run that starts with the test equals a run given the suggested rate. */
#include "train-helpers.h"

static Recorder r, auto_run, fixed_run;

int main(void)
{
    char *root = test_make_temp_dir("lr-test");
    char *data = unet_path_join(root, "data");
    char *run_auto = unet_path_join(root, "auto"), *run_fixed = unet_path_join(root, "fixed");
    if (th_make_data(data, 6, 64, 7))
        return test_finish("lr-test");
    UnetTrainConfig c;
    UnetError err = { 0 };
    th_config(&c, data, NULL);
    c.model.norm = UNET_NORM_BATCH;
    c.tile = 48;
    c.lr_test.min_lr = 1e-6;
    c.lr_test.max_lr = 100.0;
    c.lr_test.iterations = 80;
    c.lr_test.diverge_factor = 4.0;

    UnetTrainer *t = unet_trainer_new(&c, th_record, &r, &err);
    CHECK(t != NULL);
    if (!t)
        return test_finish("lr-test");
    r.trainer = t;
    CHECK(unet_trainer_start(t, UNET_TRAIN_LR_TEST, &err) == UNET_OK);
    CHECK_MSG(unet_trainer_wait(t, &err) == UNET_OK, "%s", err.message);
    const UnetLrTestResult *res = unet_trainer_lr_test_result(t);
    CHECK(res != NULL);
    if (res) {
        printf("LR test: %d points, diverged %d, lowest smoothed loss %.4f at lr %.3g, suggested "
               "%.3g (%s)\n", res->count, res->diverged, res->smoothed[res->best_index],
               res->lr[res->best_index], res->suggested_lr, res->note);
        CHECK(res->count >= 10 && res->count < 80 && res->diverged);
        CHECK(r.lr_points == res->count && r.lr_done == 1);
        /* descends ... */
        CHECK_MSG(res->smoothed[res->best_index] < 0.95 * res->smoothed[0], "%.4f -> %.4f",
                  res->smoothed[0], res->smoothed[res->best_index]);
        /* ... then diverges */
        CHECK(res->smoothed[res->count - 1] > 4.0 * res->smoothed[res->best_index] ||
              !isfinite(res->loss[res->count - 1]) || res->count < 80);
        /* the sweep is exponential from min_lr */
        CHECK(fabs(res->lr[0] - 1e-6) < 1e-18);
        double ratio = pow(100.0 / 1e-6, 1.0 / 79.0);
        CHECK(fabs(res->lr[1] / res->lr[0] - ratio) < 1e-9 * ratio);
        /* the suggestion is on the descent */
        CHECK(res->suggested_lr > res->lr[0] && res->suggested_lr <= res->lr[res->best_index]);
        CHECK(res->smoothed[res->suggested_index] < res->smoothed[0]);
        char *csv = unet_path_join(root, "lr.csv");
        CHECK(unet_lr_test_write_csv(res, csv, &err) == UNET_OK);
        unsigned char *text = NULL;
        size_t len;
        CHECK(unet_read_file(csv, &text, &len, &err) == UNET_OK &&
              !strncmp((char *)text, "iteration,lr,loss,smoothed_loss,suggested\n", 42));
        free(text);
        free(csv);
    }
    double suggested = res ? res->suggested_lr : 0.01;
    unet_trainer_free(t);

    /* lr 0: the test first, then training from the restored model */
    c.optimizer.lr = 0.0;
    c.epochs = 2;
    snprintf(c.out_dir, sizeof c.out_dir, "%s", run_auto);
    UnetTrainSummary s;
    CHECK_MSG(th_run(&c, UNET_TRAIN_FIT, &auto_run, &s, &err) == UNET_OK, "%s", err.message);
    CHECK(s.lr == suggested); /* the same test on the same data and model */
    CHECK(auto_run.lr_done == 1);
    UnetTrainConfig back;
    CHECK(unet_train_config_load_run(&back, run_auto, &err) == UNET_OK && back.optimizer.lr == suggested);
    char *csv = unet_path_join(run_auto, "lr-test.csv");
    CHECK(unet_path_is_file(csv));
    free(csv);

    c.optimizer.lr = suggested;
    snprintf(c.out_dir, sizeof c.out_dir, "%s", run_fixed);
    CHECK_MSG(th_run(&c, UNET_TRAIN_FIT, &fixed_run, &s, &err) == UNET_OK, "%s", err.message);
    CHECK(fixed_run.lr_done == 0 && fixed_run.epochs == 2 && auto_run.epochs == 2);
    for (int i = 0; i < 2; i++)
        CHECK_MSG(auto_run.train_loss[i] == fixed_run.train_loss[i] &&
                      auto_run.val_loss[i] == fixed_run.val_loss[i],
                  "epoch %d: %.9g/%.9g %.9g/%.9g: the LR test did not restore the model", i + 1,
                  auto_run.train_loss[i], fixed_run.train_loss[i], auto_run.val_loss[i],
                  fixed_run.val_loss[i]);
    free(data);
    free(run_auto);
    free(run_fixed);
    free(root);
    return test_finish("lr-test");
}
