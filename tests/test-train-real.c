/* test-train-real.c - short trainings on the shared real datasets (skips when
 * ../shared/data is absent): 16-bit phase-contrast TIFFs (usiigaci-phc) and
 * RGBA nuclei PNGs of mixed sizes (dsb2018-nuclei, kept in colour, so the
 * model takes 3 channels from the images). A few files of each are linked
 * into a temporary folder (never copied); the runs must finish with finite
 * losses and metrics, learn (the training loss falls), and write their run
 * folder. bench/train.sh runs them for longer and reports the Dice. */
#include <dirent.h>
#include <unistd.h>

#include "train-helpers.h"

static Recorder r;

/* Links the first n pairs (sorted names) of src/images + src/masks into dst. */
static int link_subset(const char *src, const char *dst, int n)
{
    UnetError err = { 0 };
    const char *sub[2] = { "images", "masks" };
    for (int s = 0; s < 2; s++) {
        char *from = unet_path_join(src, sub[s]), *to = unet_path_join(dst, sub[s]);
        char **names = NULL;
        int count = 0;
        if (unet_mkdir_p(to, &err) || unet_list_dir(from, &names, &count, &err)) {
            fprintf(stderr, "%s\n", err.message);
            return -1;
        }
        for (int i = 0, k = 0; i < count && k < n; i++) {
            if (names[i][0] == '.')
                continue;
            char *a = unet_path_join(from, names[i]), *b = unet_path_join(to, names[i]);
            if (symlink(a, b) != 0)
                return -1;
            free(a);
            free(b);
            k++;
        }
        unet_string_list_free(names, count);
        free(from);
        free(to);
    }
    return 0;
}

static void train_on(const char *shared, const char *name, int pairs, int tile, const char *tmp,
                     int expect_channels)
{
    char *src = unet_path_join(shared, name);
    char *data = unet_path_join(tmp, name);
    char runname[128];
    snprintf(runname, sizeof runname, "run-%s", name);
    char *run = unet_path_join(tmp, runname);
    CHECK(link_subset(src, data, pairs) == 0);
    UnetTrainConfig c;
    th_config(&c, data, run);
    unet_optimizer_config_default(&c.optimizer, UNET_OPTIM_ADAM);
    c.optimizer.lr = 0.003;
    c.model.depth = 3;
    c.tile = tile;
    c.epochs = 3;
    c.steps_per_epoch = 12;
    c.val_fraction = 1.0 / pairs;
    memset(&r, 0, sizeof r);
    UnetError err = { 0 };
    UnetTrainSummary s;
    UnetStatus st = th_run(&c, UNET_TRAIN_FIT, &r, &s, &err);
    CHECK_MSG(st == UNET_OK, "%s: %s", name, err.message);
    CHECK(r.epochs == 3);
    for (int i = 0; i < r.epochs; i++)
        CHECK(isfinite(r.train_loss[i]) && isfinite(r.val_loss[i]) && r.dice[i] >= 0.0 &&
              r.dice[i] <= 1.0);
    double first = 0.0, last = 0.0;
    for (int i = 0; i < 6; i++) {
        first += r.step_loss[i];
        last += r.step_loss[r.steps - 1 - i];
    }
    CHECK_MSG(last < first, "%s: the training loss did not fall (%.4f -> %.4f)", name, first / 6,
              last / 6);
    UnetTrainConfig back;
    CHECK(unet_train_config_load_run(&back, run, &err) == UNET_OK &&
          back.model.in_channels == expect_channels);
    printf("%s: %d pairs, tile %d: val Dice %.4f (best epoch %d), %.1f images/s, data wait %.1f%%\n",
           name, pairs, tile, s.best_metrics.dice, s.best_epoch, s.samples_per_second,
           100.0 * s.data_wait_fraction);
    free(src);
    free(data);
    free(run);
}

int main(void)
{
    const char *shared = test_shared_data_dir();
    if (!shared)
        test_skip("../shared/data is absent");
    char *tmp = test_make_temp_dir("train-real");
    train_on(shared, "usiigaci-phc", 3, 128, tmp, 1);
    train_on(shared, "dsb2018-nuclei", 6, 96, tmp, 3);
    free(tmp);
    return test_finish("train-real");
}
