/* test-train-diverge.c - how runs end early: divergence stops a run with a
 * message that says what happened and what to do, and keeps the last good
 * checkpoint (a loss poisoned with NaN, an absurd learning rate, an exploding
 * smoothed loss); early stopping ends a run that stopped improving, keeping
 * its best epoch. */
#include "train-helpers.h"

static Recorder r;

int main(void)
{
    char *root = test_make_temp_dir("train-diverge");
    char *data = unet_path_join(root, "data");
    char *run = unet_path_join(root, "nan"), *run2 = unet_path_join(root, "lr");
    if (th_make_data(data, 6, 64, 5))
        return test_finish("train-diverge");
    UnetTrainConfig c;
    UnetError err = { 0 };
    UnetTrainSummary s;

    /* NaN at update 9: epochs 1 and 2 (4 updates each) are good, epoch 3 is not */
    th_config(&c, data, run);
    c.steps_per_epoch = 4;
    c.epochs = 5;
    c.poison_step = 9;
    UnetStatus st = th_run(&c, UNET_TRAIN_FIT, &r, &s, &err);
    CHECK(st == UNET_ERR_NUMERIC);
    CHECK_MSG(strstr(err.message, "diverged") && strstr(err.message, "NaN") &&
                  strstr(err.message, "last.safetensors") && strstr(err.message, "--lr"),
              "message: %s", err.message);
    CHECK(r.errors == 1 && r.finished == 1 && r.finish_status == UNET_ERR_NUMERIC);
    CHECK(r.epochs == 2 && r.steps == 8);
    char *last = unet_path_join(run, "last.safetensors");
    int epoch, finite;
    long long step;
    CHECK(th_load_checkpoint(last, &epoch, &step, &finite) == 0);
    CHECK_MSG(epoch == 2 && step == 8 && finite, "kept epoch %d step %lld", epoch, step);
    free(last);
    char *log = unet_path_join(run, "log.txt");
    unsigned char *text = NULL;
    size_t len;
    CHECK(unet_read_file(log, &text, &len, &err) == UNET_OK && strstr((char *)text, "diverged"));
    free(text);
    free(log);
    /* the run resumes from that checkpoint (and diverges no more without the poison) */
    UnetTrainConfig rc;
    CHECK(unet_train_config_load_run(&rc, run, &err) == UNET_OK);
    memset(&r, 0, sizeof r);
    CHECK_MSG(th_run(&rc, UNET_TRAIN_FIT, &r, &s, &err) == UNET_OK, "%s", err.message);
    CHECK(r.epochs == 3 && r.epoch_no[0] == 3 && s.epochs_done == 5);

    /* an absurd learning rate: the loss blows up, the run stops with the message,
     * and the checkpoint from before training is still there and finite */
    th_config(&c, data, run2);
    c.optimizer.lr = 1e4;
    c.steps_per_epoch = 30;
    memset(&r, 0, sizeof r);
    st = th_run(&c, UNET_TRAIN_FIT, &r, &s, &err);
    CHECK(st == UNET_ERR_NUMERIC);
    CHECK_MSG(strstr(err.message, "diverged at epoch 1") != NULL, "message: %s", err.message);
    last = unet_path_join(run2, "last.safetensors");
    CHECK(th_load_checkpoint(last, &epoch, &step, &finite) == 0 && epoch == 0 && step == 0 && finite);
    free(last);

    /* the divergence factor alone (finite but exploding loss) */
    th_config(&c, data, NULL);
    c.optimizer.lr = 30.0;
    c.steps_per_epoch = 40;
    c.divergence_factor = 10.0;
    memset(&r, 0, sizeof r);
    st = th_run(&c, UNET_TRAIN_FIT, &r, &s, &err);
    CHECK_MSG(st == UNET_ERR_NUMERIC, "status %s", unet_status_name(st));
    CHECK_MSG(strstr(err.message, "smoothed loss") != NULL, "message: %s", err.message);

    /* early stopping: a rate too small to move a float weight leaves the
     * validation loss where epoch 1 put it, so patience 2 ends the run after
     * epoch 3 with epoch 1 the best */
    char *run3 = unet_path_join(root, "early");
    th_config(&c, data, run3);
    c.optimizer.lr = 1e-30;
    c.epochs = 10;
    c.patience = 2;
    memset(&r, 0, sizeof r);
    st = th_run(&c, UNET_TRAIN_FIT, &r, &s, &err);
    CHECK_MSG(st == UNET_OK, "%s", err.message);
    CHECK(r.epochs == 3 && s.early_stopped && s.best_epoch == 1 && s.epochs_done == 3);
    CHECK(r.val_loss[0] == r.val_loss[2]);
    CHECK_MSG(strstr(r.finish_message, "early stop") != NULL, "%s", r.finish_message);
    last = unet_path_join(run3, "best.safetensors");
    CHECK(th_load_checkpoint(last, &epoch, &step, &finite) == 0 && epoch == 1);
    free(last);
    /* resuming an early-stopped run trains no more */
    CHECK(unet_train_config_load_run(&rc, run3, &err) == UNET_OK);
    memset(&r, 0, sizeof r);
    CHECK(th_run(&rc, UNET_TRAIN_FIT, &r, &s, &err) == UNET_OK && r.steps == 0 && s.early_stopped);
    free(run3);
    free(data);
    free(run);
    free(run2);
    free(root);
    return test_finish("train-diverge");
}
