/* test-train-resume.c - a run stopped (between epochs, in the middle of one,
 * or paused) and resumed from its folder continues the same curves: its next
 * epochs give exactly the losses and metrics of an uninterrupted run. */
#include "train-helpers.h"

static Recorder full, part, rest;

static int same_epochs(const Recorder *a, int from, const Recorder *b)
{
    int bad = 0;
    for (int i = 0; i < b->epochs; i++) {
        int j = b->epoch_no[i] - 1;
        if (j < from || j >= a->epochs) {
            bad++;
            continue;
        }
        if (a->train_loss[j] != b->train_loss[i] || a->val_loss[j] != b->val_loss[i] ||
            a->dice[j] != b->dice[i]) {
            fprintf(stderr, "epoch %d: train %.9g/%.9g val %.9g/%.9g dice %.9g/%.9g\n", j + 1,
                    a->train_loss[j], b->train_loss[i], a->val_loss[j], b->val_loss[i], a->dice[j],
                    b->dice[i]);
            bad++;
        }
    }
    return bad;
}

static int same_steps(const Recorder *a, const Recorder *b)
{
    int bad = 0;
    for (int i = 0; i < b->steps; i++) {
        int64_t k = b->step_no[i] - 1;
        if (k < 0 || k >= a->steps || a->step_loss[k] != b->step_loss[i])
            bad++;
    }
    return bad;
}

static void resume(const char *run, int epochs, Recorder *r, UnetTrainSummary *s)
{
    UnetTrainConfig c;
    UnetError err = { 0 };
    CHECK_MSG(unet_train_config_load_run(&c, run, &err) == UNET_OK, "%s", err.message);
    c.epochs = epochs;
    memset(r, 0, sizeof *r);
    CHECK_MSG(th_run(&c, UNET_TRAIN_FIT, r, s, &err) == UNET_OK, "%s", err.message);
}

typedef struct Resumer {
    Recorder *r;
    int waited_ms;
    int64_t steps_while_paused;
} Resumer;

static void *resume_later(void *arg)
{
    Resumer *z = arg;
    while (!atomic_load(&z->r->paused) && z->waited_ms < 20000) {
        th_sleep_ms(5);
        z->waited_ms += 5;
    }
    int before = z->r->steps;
    th_sleep_ms(100);
    z->steps_while_paused = z->r->steps - before;
    unet_trainer_resume(z->r->trainer);
    return NULL;
}

int main(void)
{
    char *root = test_make_temp_dir("train-resume");
    char *data = unet_path_join(root, "data");
    char *run_full = unet_path_join(root, "full"), *run_a = unet_path_join(root, "a");
    char *run_b = unet_path_join(root, "b"), *run_c = unet_path_join(root, "c");
    if (th_make_data(data, 8, 64, 3))
        return test_finish("train-resume");
    UnetTrainConfig c;
    UnetError err = { 0 };
    UnetTrainSummary s;

    /* batch norm (running statistics), SGD momentum, gradient accumulation and
     * a schedule: all state a checkpoint must carry */
    th_config(&c, data, run_full);
    c.model.norm = UNET_NORM_BATCH;
    c.model.depth = 2;
    c.epochs = 4;
    c.steps_per_epoch = 5;
    c.optimizer.accumulate = 2; /* 5 batches: 3 updates per epoch, the last one partial */
    unet_lr_schedule_config_default(&c.schedule, UNET_LR_EXPONENTIAL);
    c.schedule.gamma = 0.9;
    c.tile = 48;
    CHECK_MSG(th_run(&c, UNET_TRAIN_FIT, &full, &s, &err) == UNET_OK, "%s", err.message);
    CHECK(full.epochs == 4 && full.steps == 12);

    /* 1. stopped after epoch 2 (from the callback), resumed to 4 */
    snprintf(c.out_dir, sizeof c.out_dir, "%s", run_a);
    part.stop_at_epoch = 2;
    CHECK_MSG(th_run(&c, UNET_TRAIN_FIT, &part, &s, &err) == UNET_OK, "%s", err.message);
    CHECK(part.epochs == 2 && s.stopped && strstr(part.finish_message, "--resume"));
    resume(run_a, 4, &rest, &s);
    CHECK(rest.epochs == 2 && rest.epoch_no[0] == 3);
    CHECK_MSG(same_epochs(&full, 0, &part) == 0, "the first epochs differ");
    CHECK_MSG(same_epochs(&full, 2, &rest) == 0, "resumed epochs differ from the uninterrupted run");
    CHECK(same_steps(&full, &rest) == 0);

    /* 2. stopped in the middle of epoch 2 (after update 4), resumed */
    memset(&part, 0, sizeof part);
    snprintf(c.out_dir, sizeof c.out_dir, "%s", run_b);
    part.stop_at_step = 4;
    CHECK_MSG(th_run(&c, UNET_TRAIN_FIT, &part, &s, &err) == UNET_OK, "%s", err.message);
    CHECK(part.epochs == 1 && part.steps == 4 && s.stopped);
    /* the stop left a loadable checkpoint at that step */
    char *last = unet_path_join(run_b, "last.safetensors");
    int epoch, finite;
    long long step;
    CHECK(th_load_checkpoint(last, &epoch, &step, &finite) == 0 && epoch == 1 && step == 4 && finite);
    free(last);
    resume(run_b, 4, &rest, &s);
    CHECK(rest.epochs == 3 && rest.epoch_no[0] == 2);
    CHECK_MSG(same_epochs(&full, 1, &rest) == 0, "mid-epoch resume differs");
    CHECK(same_steps(&full, &rest) == 0 && rest.step_no[0] == 5);
    /* metrics.csv: each step and epoch exactly once across the two sessions */
    char *csv = unet_path_join(run_b, "metrics.csv");
    unsigned char *text = NULL;
    size_t len;
    CHECK(unet_read_file(csv, &text, &len, &err) == UNET_OK);
    int steps = 0, epochs = 0;
    for (char *l = (char *)text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        steps += !strncmp(l, "step,", 5);
        epochs += !strncmp(l, "epoch,", 6);
    }
    CHECK(steps == 12 && epochs == 4);
    free(text);
    free(csv);
    /* resuming a finished run trains nothing */
    Recorder *again = calloc(1, sizeof *again);
    resume(run_b, 4, again, &s);
    CHECK(again->steps == 0 && again->epochs == 0 && s.epochs_done == 4);
    free(again);

    /* 3. paused for a while in the middle: same results, no steps while paused */
    memset(&part, 0, sizeof part);
    snprintf(c.out_dir, sizeof c.out_dir, "%s", run_c);
    part.pause_at_step = 3;
    UnetTrainer *t = unet_trainer_new(&c, th_record, &part, &err);
    CHECK(t != NULL);
    if (t) {
        part.trainer = t;
        Resumer z = { .r = &part };
        pthread_t th;
        pthread_create(&th, NULL, resume_later, &z);
        CHECK(unet_trainer_start(t, UNET_TRAIN_FIT, &err) == UNET_OK);
        CHECK_MSG(unet_trainer_wait(t, &err) == UNET_OK, "%s", err.message);
        pthread_join(th, NULL);
        unet_trainer_free(t);
        CHECK(atomic_load(&part.paused) && atomic_load(&part.resumed));
        CHECK(z.steps_while_paused == 0);
        CHECK(same_epochs(&full, 0, &part) == 0 && part.epochs == 4);
    }

    /* resuming a folder that is not a run */
    UnetTrainConfig bad;
    CHECK(unet_train_config_load_run(&bad, data, &err) == UNET_ERR_IO);
    CHECK(strstr(err.message, "config.json") != NULL);
    free(data);
    free(run_full);
    free(run_a);
    free(run_b);
    free(run_c);
    free(root);
    return test_finish("train-resume");
}
