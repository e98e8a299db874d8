/* cmd-train.c - `unet train` (a training run in a run folder, with a progress
 * bar on a terminal) and `unet lr-test` (the learning-rate range test). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli-model-options.h"
#include "commands.h"
#include "fileutil.h"
#include "trainer.h"

/* ---- option parsing ------------------------------------------------------------- */

typedef struct TrainArgs {
    UnetTrainConfig cfg;
    UnetCliModelOptions model;
    const char *config_file;
    const char *resume;
    const char *csv;          /* lr-test */
    int have_epochs, have_patience, have_device, have_threads, have_workers;
    int have_cuda_graphs;
    int have_precision;
    int quiet;
} TrainArgs;

static int bad_value(const char *cmd, const char *opt, const char *arg, const char *what)
{
    fprintf(stderr, "unet %s: %s '%s' is not %s\n", cmd, opt, arg, what);
    return -1;
}

static int parse_int(const char *cmd, const char *opt, const char *arg, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi) {
        char what[96];
        snprintf(what, sizeof what, "a whole number from %ld to %ld", lo, hi);
        return bad_value(cmd, opt, arg, what);
    }
    *out = (int)v;
    return 0;
}

static int parse_double(const char *cmd, const char *opt, const char *arg, double lo, double hi,
                        double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v < lo || v > hi) {
        char what[96];
        snprintf(what, sizeof what, "a number from %g to %g", lo, hi);
        return bad_value(cmd, opt, arg, what);
    }
    *out = v;
    return 0;
}

static int named(const char *cmd, UnetStatus st, const UnetError *err)
{
    if (st == UNET_OK)
        return 0;
    fprintf(stderr, "unet %s: %s\n", cmd, err->message);
    return -1;
}

static int set_path(const char *cmd, const char *opt, const char *arg, char *dst, size_t size)
{
    if (!arg[0] || strlen(arg) >= size)
        return bad_value(cmd, opt, arg, "a usable path");
    snprintf(dst, size, "%s", arg);
    return 0;
}

static int set_augment(const char *cmd, const char *arg, UnetTrainConfig *c)
{
    UnetError err = { 0 };
    if (!strcmp(arg, "none") || !strcmp(arg, "off")) {
        c->augment = 0;
        return 0;
    }
    c->augment = 1;
    if (!strcmp(arg, "default") || !strcmp(arg, "notebook")) {
        UnetTrainConfig d;
        unet_train_config_default(&d);
        c->augmentation = d.augmentation;
        return 0;
    }
    if (!strcmp(arg, "paper")) {
        unet_augment_config_paper(&c->augmentation);
        return 0;
    }
    return named(cmd, unet_augment_config_load(&c->augmentation, arg, &err), &err);
}

/* Overlays the model options given on the command line onto cfg. */
static void overlay_model(const UnetCliModelOptions *o, UnetModelConfig *cfg)
{
    const UnetModelConfig *g = &o->given;
#define GIVEN(code) ((o->mask >> ((code) - UNET_CLI_OPT_MODEL)) & 1u)
    if (GIVEN(UNET_CLI_OPT_MODEL) && g->arch != cfg->arch) {
        UnetModelConfig d;
        unet_model_config_default(&d, g->arch);
        d.in_channels = cfg->in_channels;
        d.classes = cfg->classes;
        d.seed = cfg->seed;
        *cfg = d;
    }
    if (GIVEN(UNET_CLI_OPT_IN_CHANNELS)) cfg->in_channels = g->in_channels;
    if (GIVEN(UNET_CLI_OPT_CLASSES)) cfg->classes = g->classes;
    if (GIVEN(UNET_CLI_OPT_DEPTH)) cfg->depth = g->depth;
    if (GIVEN(UNET_CLI_OPT_BASE)) cfg->base = g->base;
    if (GIVEN(UNET_CLI_OPT_PADDING)) cfg->padding = g->padding;
    if (GIVEN(UNET_CLI_OPT_NORM)) cfg->norm = g->norm;
    if (GIVEN(UNET_CLI_OPT_UPSAMPLE)) cfg->upsample = g->upsample;
    if (GIVEN(UNET_CLI_OPT_ACTIVATION)) cfg->activation = g->activation;
    if (GIVEN(UNET_CLI_OPT_LEAKY_SLOPE)) cfg->leaky_slope = g->leaky_slope;
    if (GIVEN(UNET_CLI_OPT_SEED)) cfg->seed = g->seed;
}

/* Returns 0 to go on, 1 after --help, -1 after a printed error. */
static int parse_args(const char *cmd, int argc, char **argv, TrainArgs *a, void (*usage)(FILE *))
{
    UnetTrainConfig *c = &a->cfg;
    UnetError err = { 0 };
    unet_cli_model_options_init(&a->model);
    /* --config first, so that the other options apply on top of it */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            a->config_file = argv[i + 1];
    unet_train_config_default(c);
    if (a->config_file) {
        unsigned char *text = NULL;
        size_t len;
        if (unet_read_file(a->config_file, &text, &len, &err) ||
            unet_train_config_from_json(c, (const char *)text, &err)) {
            fprintf(stderr, "unet %s: %s: %s\n", cmd, a->config_file, err.message);
            free(text);
            return -1;
        }
        free(text);
    }
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int r = unet_cli_model_option_argv(&a->model, cmd, argc, argv, &i);
        if (r < 0)
            return -1;
        if (r > 0)
            continue;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(o, "--nesterov")) {
            c->optimizer.nesterov = 1;
            continue;
        }
        if (!strcmp(o, "--no-weights")) {
            c->weight_map = 0;
            continue;
        }
        if (!strcmp(o, "--quiet") || !strcmp(o, "-q")) {
            a->quiet = 1;
            continue;
        }
        if (strncmp(o, "--", 2)) {
            fprintf(stderr, "unet %s: unexpected argument '%s'\n\n", cmd, o);
            usage(stderr);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "unet %s: option '%s' needs a value\n", cmd, o);
            return -1;
        }
        const char *v = argv[++i];
        int rc = 0;
        double d;
        if (!strcmp(o, "--config"))
            ;
        else if (!strcmp(o, "--data"))
            rc = set_path(cmd, o, v, c->data_dir, sizeof c->data_dir);
        else if (!strcmp(o, "--val")) {
            rc = set_path(cmd, o, v, c->val_dir, sizeof c->val_dir);
        } else if (!strcmp(o, "--val-split")) {
            rc = parse_double(cmd, o, v, 0.0, 0.95, &c->val_fraction);
            c->val_dir[0] = '\0';
        } else if (!strcmp(o, "--mask-mode"))
            rc = named(cmd, unet_mask_mode_parse(v, &c->dataset.mask_mode, &err), &err);
        else if (!strcmp(o, "--mask-classes"))
            rc = parse_int(cmd, o, v, 2, 65536, &c->dataset.classes);
        else if (!strcmp(o, "--intensity"))
            rc = named(cmd, unet_intensity_parse(v, &c->dataset.input.intensity, &err), &err);
        else if (!strcmp(o, "--color") || !strcmp(o, "--colour"))
            rc = named(cmd, unet_color_parse(v, &c->dataset.input.color, &err), &err);
        else if (!strcmp(o, "--optimizer")) {
            UnetOptimKind k;
            rc = named(cmd, unet_optim_kind_parse(v, &k, &err), &err);
            if (!rc && k != c->optimizer.kind) {
                double lr = c->optimizer.lr;
                int acc = c->optimizer.accumulate;
                unet_optimizer_config_default(&c->optimizer, k);
                c->optimizer.lr = lr;
                c->optimizer.accumulate = acc;
            }
        } else if (!strcmp(o, "--lr")) {
            if (!strcmp(v, "auto"))
                c->optimizer.lr = 0.0;
            else
                rc = parse_double(cmd, o, v, 1e-12, 1e6, &c->optimizer.lr);
        } else if (!strcmp(o, "--momentum"))
            rc = parse_double(cmd, o, v, 0.0, 0.9999999, &c->optimizer.momentum);
        else if (!strcmp(o, "--weight-decay"))
            rc = parse_double(cmd, o, v, 0.0, 10.0, &c->optimizer.weight_decay);
        else if (!strcmp(o, "--beta1"))
            rc = parse_double(cmd, o, v, 0.0, 0.9999999, &c->optimizer.beta1);
        else if (!strcmp(o, "--beta2"))
            rc = parse_double(cmd, o, v, 0.0, 0.9999999, &c->optimizer.beta2);
        else if (!strcmp(o, "--accumulate"))
            rc = parse_int(cmd, o, v, 1, 4096, &c->optimizer.accumulate);
        else if (!strcmp(o, "--schedule")) {
            UnetLrScheduleKind k;
            rc = named(cmd, unet_lr_schedule_parse(v, &k, &err), &err);
            if (!rc)
                unet_lr_schedule_config_default(&c->schedule, k);
        } else if (!strcmp(o, "--gamma"))
            rc = parse_double(cmd, o, v, 1e-6, 1.0, &c->schedule.gamma);
        else if (!strcmp(o, "--plateau-factor"))
            rc = parse_double(cmd, o, v, 1e-6, 0.999999, &c->schedule.factor);
        else if (!strcmp(o, "--plateau-patience"))
            rc = parse_int(cmd, o, v, 0, 100000, &c->schedule.patience);
        else if (!strcmp(o, "--batch"))
            rc = parse_int(cmd, o, v, 1, 4096, &c->batch);
        else if (!strcmp(o, "--epochs")) {
            rc = parse_int(cmd, o, v, 1, 1000000, &c->epochs);
            a->have_epochs = 1;
        } else if (!strcmp(o, "--patience")) {
            rc = parse_int(cmd, o, v, 0, 1000000, &c->patience);
            a->have_patience = 1;
        } else if (!strcmp(o, "--monitor"))
            rc = named(cmd, unet_monitor_parse(v, &c->monitor, &err), &err);
        else if (!strcmp(o, "--steps-per-epoch"))
            rc = parse_int(cmd, o, v, 0, 100000000, &c->steps_per_epoch);
        else if (!strcmp(o, "--tile"))
            rc = parse_int(cmd, o, v, 8, 16384, &c->tile);
        else if (!strcmp(o, "--augment"))
            rc = set_augment(cmd, v, c);
        else if (!strcmp(o, "--w0")) {
            rc = parse_double(cmd, o, v, 0.0, 1000.0, &d);
            c->weights.w0 = (float)d;
        } else if (!strcmp(o, "--sigma")) {
            rc = parse_double(cmd, o, v, 0.01, 1000.0, &d);
            c->weights.sigma = (float)d;
        } else if (!strcmp(o, "--balance"))
            rc = named(cmd, unet_class_balance_parse(v, &c->weights.balance, &err), &err);
        else if (!strcmp(o, "--loss")) {
            UnetTrainConfig tmp = *c;
            char json[96];
            snprintf(json, sizeof json, "{\"loss\":{\"kind\":\"%.40s\"}}", v);
            rc = named(cmd, unet_train_config_from_json(&tmp, json, &err), &err);
            if (!rc)
                c->loss = tmp.loss;
        } else if (!strcmp(o, "--divergence"))
            rc = parse_double(cmd, o, v, 0.0, 1e12, &c->divergence_factor);
        else if (!strcmp(o, "--out"))
            rc = set_path(cmd, o, v, c->out_dir, sizeof c->out_dir);
        else if (!strcmp(o, "--resume"))
            a->resume = v;
        else if (!strcmp(o, "--device")) {
            rc = set_path(cmd, o, v, c->device, sizeof c->device);
            a->have_device = 1;
        } else if (!strcmp(o, "--precision")) {
            rc = named(cmd, unet_precision_parse(v, &c->precision, &err), &err);
            a->have_precision = 1;
        } else if (!strcmp(o, "--threads")) {
            rc = parse_int(cmd, o, v, 0, 1024, &c->threads);
            a->have_threads = 1;
        } else if (!strcmp(o, "--workers")) {
            rc = parse_int(cmd, o, v, 1, 64, &c->workers);
            a->have_workers = 1;
        } else if (!strcmp(o, "--prefetch"))
            rc = parse_int(cmd, o, v, 0, 4096, &c->prefetch);
        else if (!strcmp(o, "--cuda-graphs")) {
            if (!strcmp(v, "on") || !strcmp(v, "off"))
                c->cuda_graphs = !strcmp(v, "on");
            else
                rc = bad_value(cmd, o, v, "on or off");
            a->have_cuda_graphs = 1;
        }
        else if (!strcmp(o, "--min-lr") || !strcmp(o, "--lr-test-min"))
            rc = parse_double(cmd, o, v, 1e-15, 1e6, &c->lr_test.min_lr);
        else if (!strcmp(o, "--max-lr") || !strcmp(o, "--lr-test-max"))
            rc = parse_double(cmd, o, v, 1e-15, 1e6, &c->lr_test.max_lr);
        else if (!strcmp(o, "--iters") || !strcmp(o, "--lr-test-iters"))
            rc = parse_int(cmd, o, v, 5, 100000, &c->lr_test.iterations);
        else if (!strcmp(o, "--diverge") || !strcmp(o, "--lr-test-diverge"))
            rc = parse_double(cmd, o, v, 1.0001, 1e12, &c->lr_test.diverge_factor);
        else if (!strcmp(o, "--csv"))
            a->csv = v;
        else {
            fprintf(stderr, "unet %s: unknown option '%s'\n\n", cmd, o);
            usage(stderr);
            return -1;
        }
        if (rc)
            return -1;
    }
    /* the model: options on top of the config file's, or the defaults */
    if (a->config_file) {
        overlay_model(&a->model, &c->model);
        if (named(cmd, unet_model_config_validate(&c->model, &err), &err))
            return -1;
    } else {
        int rc = unet_cli_model_options_finish(&a->model, cmd, &c->model);
        if (rc)
            return -1;
        if (!((a->model.mask >> (UNET_CLI_OPT_IN_CHANNELS - UNET_CLI_OPT_MODEL)) & 1u))
            c->model.in_channels = 0; /* from the images */
    }
    if ((a->model.mask >> (UNET_CLI_OPT_SEED - UNET_CLI_OPT_MODEL)) & 1u)
        c->seed = a->model.given.seed; /* one --seed for the weights and the data */
    return 0;
}

/* ---- progress output ----------------------------------------------------------- */

static atomic_int interrupted;
static atomic_int run_done;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_fetch_add(&interrupted, 1);
    if (atomic_load(&interrupted) > 1)
        signal(SIGINT, SIG_DFL);
}

typedef struct Progress {
    const char *cmd;
    int tty, quiet;
    double last_print;
    int line_open;
    double t0;          /* time of the first step seen */
    int64_t first_step;
} Progress;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(char *buf, size_t size, double s)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, size, "--");
    else if (s >= 3600)
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, size, "%.0fs", s);
}

static void end_line(Progress *p)
{
    if (p->line_open) {
        fputs("\r\033[K", stdout);
        p->line_open = 0;
    }
}

static void on_event(const UnetTrainEvent *e, void *user)
{
    Progress *p = user;
    switch (e->kind) {
    case UNET_EVENT_STARTED:
        end_line(p);
        printf("%s\n", e->message);
        break;
    case UNET_EVENT_STEP: {
        if (p->quiet)
            break;
        double now = mono();
        int64_t in_epoch = e->steps_per_epoch ? (e->step - 1) % e->steps_per_epoch + 1 : e->step;
        double left_steps = (double)(e->epochs - e->epoch) * (double)e->steps_per_epoch +
                            (double)(e->steps_per_epoch - in_epoch);
        if (p->first_step < 0) {
            p->first_step = e->step;
            p->t0 = now;
        }
        double rate = now > p->t0 ? (double)(e->step - p->first_step) / (now - p->t0) : 0;
        char eta[32];
        fmt_time(eta, sizeof eta, rate > 0 ? left_steps / rate : -1);
        if (p->tty) {
            if (now - p->last_print < 0.1 && in_epoch != e->steps_per_epoch)
                break;
            int width = 20, fill = e->steps_per_epoch ? (int)(width * in_epoch / e->steps_per_epoch) : 0;
            char bar[32];
            for (int i = 0; i < width; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[width] = '\0';
            printf("\r\033[Kepoch %d/%d [%s] step %lld/%lld  loss %.4f  %.1f img/s  wait %.0f%%  ETA %s",
                   e->epoch, e->epochs, bar, (long long)in_epoch, (long long)e->steps_per_epoch,
                   e->loss, e->samples_per_second, 100.0 * e->data_wait_fraction, eta);
            fflush(stdout);
            p->line_open = 1;
        } else {
            if (now - p->last_print < 10.0)
                break;
            printf("epoch %d/%d step %lld/%lld loss %.4f lr %.4g %.1f img/s wait %.0f%% ETA %s\n",
                   e->epoch, e->epochs, (long long)in_epoch, (long long)e->steps_per_epoch, e->loss,
                   e->lr, e->samples_per_second, 100.0 * e->data_wait_fraction, eta);
            fflush(stdout);
        }
        p->last_print = now;
        break;
    }
    case UNET_EVENT_EPOCH:
        end_line(p);
        if (isnan(e->val_loss))
            printf("epoch %d/%d: train loss %.5f, lr %.4g, %.1f img/s, data wait %.1f%%%s\n",
                   e->epoch, e->epochs, e->train_loss, e->lr, e->samples_per_second,
                   100.0 * e->data_wait_fraction, e->is_best ? " *" : "");
        else
            printf("epoch %d/%d: train loss %.5f, val loss %.5f, dice %.4f, iou %.4f, V_rand %.4f, "
                   "V_info %.4f, lr %.4g, %.1f img/s, data wait %.1f%%%s\n",
                   e->epoch, e->epochs, e->train_loss, e->val_loss, e->metrics.dice,
                   e->metrics.iou, e->metrics.rand_info.v_rand, e->metrics.rand_info.v_info, e->lr,
                   e->samples_per_second, 100.0 * e->data_wait_fraction, e->is_best ? " *" : "");
        fflush(stdout);
        break;
    case UNET_EVENT_LR_TEST_POINT:
        if (p->quiet)
            break;
        if (p->tty) {
            printf("\r\033[KLR test %lld: lr %.3g loss %.4f (smoothed %.4f)", (long long)e->step + 1,
                   e->lr, e->loss, e->smoothed_loss);
            fflush(stdout);
            p->line_open = 1;
        }
        break;
    case UNET_EVENT_LR_TEST_DONE:
        end_line(p);
        printf("LR range test: suggested lr %.4g after %lld iterations (%s)\n", e->lr,
               (long long)e->step, e->message);
        break;
    case UNET_EVENT_WARNING:
        end_line(p);
        fprintf(stderr, "unet %s: warning: %s\n", p->cmd, e->message);
        break;
    case UNET_EVENT_ERROR:
        end_line(p);
        break; /* printed once by the command with its exit status */
    case UNET_EVENT_FINISHED:
        end_line(p);
        if (e->status == UNET_OK)
            printf("%s\n", e->message);
        atomic_store(&run_done, 1);
        break;
    case UNET_EVENT_PAUSED:
    case UNET_EVENT_RESUMED:
    case UNET_EVENT_CHECKPOINT:
    case UNET_EVENT_PREVIEW:
        break;
    }
}

/* Runs the trainer; Ctrl-C asks it to stop (a second one kills). */
static int run_trainer(const char *cmd, const UnetTrainConfig *cfg, UnetTrainMode mode, int quiet,
                       UnetTrainer **out)
{
    Progress p = { .cmd = cmd, .tty = isatty(STDOUT_FILENO), .quiet = quiet, .first_step = -1 };
    UnetError err = { 0 };
    UnetTrainer *t = unet_trainer_new(cfg, on_event, &p, &err);
    if (!t) {
        fprintf(stderr, "unet %s: %s\n", cmd, err.message);
        return 2;
    }
    atomic_store(&interrupted, 0);
    atomic_store(&run_done, 0);
    void (*old)(int) = signal(SIGINT, on_sigint);
    if (unet_trainer_start(t, mode, &err)) {
        signal(SIGINT, old);
        fprintf(stderr, "unet %s: %s\n", cmd, err.message);
        unet_trainer_free(t);
        return 1;
    }
    int asked = 0;
    while (!atomic_load(&run_done)) {
        if (atomic_load(&interrupted) && !asked) {
            asked = 1;
            fprintf(stderr, "\nunet %s: stopping after the current step (Ctrl-C again to kill)\n", cmd);
            unet_trainer_stop(t);
        }
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    UnetStatus st = unet_trainer_wait(t, &err);
    signal(SIGINT, old);
    if (st) {
        fprintf(stderr, "unet %s: %s\n", cmd, err.message);
        unet_trainer_free(t);
        return 1;
    }
    *out = t;
    return 0;
}

/* ---- unet train ---------------------------------------------------------------------- */

static void train_usage(FILE *f)
{
    fprintf(f,
            "usage: unet train --data DIR [--val DIR | --val-split F] [model options]\n"
            "                  [optimizer options] [--epochs N] [--patience P] [--tile N]\n"
            "                  [--augment CONFIG] [--w0 W --sigma S] [--out RUN] [--device D]\n"
            "                  [--precision P] [--threads N] [--seed K]\n"
            "       unet train --resume RUN [--epochs N] [--patience P] [--device D] [--threads N]\n"
            "       unet train --config RUN/config.json --out NEW   (replay a run)\n\n"
            "Trains a segmentation network on image/mask pairs (DIR/images + DIR/masks) and keeps\n"
            "the run in a folder: config.json, metrics.csv, log.txt, best.safetensors,\n"
            "last.safetensors and val-best/ (validation predictions of the best epoch).\n"
            "Ctrl-C stops after the current step and leaves a checkpoint to --resume from.\n\n"
            "data:\n"
            "  --data DIR            training pairs\n"
            "  --val DIR             validation pairs (default: --val-split 0.2 of DIR)\n"
            "  --val-split F         fraction of DIR held out for validation (0: none)\n"
            "  --mask-mode M         auto, binary, multiclass or instance (default auto)\n"
            "  --mask-classes K      number of classes of multiclass masks\n"
            "  --intensity I         minmax, zscore, range or none (default minmax)\n"
            "  --color C             keep, grey or rgb (default keep)\n"
            "optimisation (the paper: SGD, momentum 0.99, batch 1):\n"
            "  --optimizer O         sgd, adam or adamw (default sgd)\n"
            "  --lr X|auto           learning rate; auto (default) runs the LR range test first\n"
            "  --momentum M          SGD momentum (0.99)     --nesterov\n"
            "  --weight-decay W      L2 (SGD, Adam) or decoupled (AdamW) decay\n"
            "  --beta1 B --beta2 B   Adam betas\n"
            "  --schedule S          constant, exponential, plateau or cosine (default constant)\n"
            "  --gamma G             exponential: factor per update\n"
            "  --plateau-factor F --plateau-patience P   plateau schedule\n"
            "  --batch N             tiles per step (1)     --accumulate N  steps per update (1)\n"
            "  --epochs N            (50)                   --patience P    early stopping (10; 0 off)\n"
            "  --monitor M           val_loss or val_dice: what early stopping watches\n"
            "  --steps-per-epoch N   batches per epoch (default: tiles to cover each image once)\n"
            "  --tile N              network input side (default: up to 256, fitted to the data)\n"
            "  --augment A           none, default (the notebook's), paper, or a JSON file\n"
            "  --loss L              default, bce, softmax_ce or dice\n"
            "  --w0 W --sigma S      weight map (10, 5)     --balance max|inverse|none\n"
            "  --no-weights          every pixel weighs 1\n"
            "  --divergence F        stop when the smoothed loss exceeds F x its best (100; 0 off)\n"
            "  --lr-test-min X --lr-test-max X --lr-test-iters N   the LR test of --lr auto\n"
            "run:\n"
            "  --out RUN             run folder (default runs/YYYYmmdd-HHMMSS)\n"
            "  --resume RUN          continue a run where it stopped\n"
            "  --config FILE         start from a run's config.json (options override it)\n"
            "  --device D            auto, cpu, cuda or reference (default auto)\n"
            "  --precision P         convolutions in fp32, tf32 (default; fp32 on the CPU) or\n"
            "                        bf16 (CUDA only; fp32 weights, gradients and optimizer)\n"
            "  --threads N           compute threads (0: all cores)\n"
            "  --workers N           data threads preparing tiles ahead (2)\n"
            "  --cuda-graphs on|off  replay each training step as one CUDA graph (off)\n"
            "  --quiet               no progress bar\n\n");
    unet_cli_model_options_help(f);
}

static void print_summary(const UnetTrainer *t)
{
    const UnetTrainSummary *s = unet_trainer_summary(t);
    const UnetTrainConfig *c = unet_trainer_config(t);
    printf("run folder: %s\n", c->out_dir);
    if (s->best_epoch > 0 && !isnan(s->best_val_loss))
        printf("best epoch %d: val loss %.5f, dice %.4f, iou %.4f, pixel error %.4f, V_rand %.4f, "
               "V_info %.4f\n",
               s->best_epoch, s->best_val_loss, s->best_metrics.dice, s->best_metrics.iou,
               s->best_metrics.pixel_error, s->best_metrics.rand_info.v_rand,
               s->best_metrics.rand_info.v_info);
    printf("training throughput %.1f images/s, data wait %.1f%% of step time, %d epochs, %lld "
           "steps, lr %.4g\n",
           s->samples_per_second, 100.0 * s->data_wait_fraction, s->epochs_done,
           (long long)s->steps, s->lr);
}

int unet_cmd_train(int argc, char **argv)
{
    TrainArgs *a = calloc(1, sizeof *a);
    if (!a) {
        fprintf(stderr, "unet train: out of memory\n");
        return 1;
    }
    int rc = parse_args("train", argc, argv, a, train_usage);
    if (rc) {
        free(a);
        return rc > 0 ? 0 : 2;
    }
    UnetTrainConfig *cfg = &a->cfg;
    if (a->resume) {
        /* the run's own config; only how and how long to run may change */
        UnetTrainConfig run;
        UnetError err = { 0 };
        if (unet_train_config_load_run(&run, a->resume, &err)) {
            fprintf(stderr, "unet train: %s\n", err.message);
            free(a);
            return 1;
        }
        if (a->have_epochs)
            run.epochs = cfg->epochs;
        if (a->have_patience)
            run.patience = cfg->patience;
        if (a->have_device)
            snprintf(run.device, sizeof run.device, "%s", cfg->device);
        if (a->have_precision)
            run.precision = cfg->precision;
        if (a->have_threads)
            run.threads = cfg->threads;
        if (a->have_workers)
            run.workers = cfg->workers;
        if (a->have_cuda_graphs)
            run.cuda_graphs = cfg->cuda_graphs;
        *cfg = run;
    } else {
        if (!cfg->data_dir[0]) {
            fprintf(stderr, "unet train: say where the training pairs are with --data DIR (a folder "
                            "with images/ and masks/), or continue a run with --resume RUN\n");
            free(a);
            return 2;
        }
        if (!cfg->out_dir[0]) {
            time_t now = time(NULL);
            struct tm tm;
            localtime_r(&now, &tm);
            strftime(cfg->out_dir, sizeof cfg->out_dir, "runs/%Y%m%d-%H%M%S", &tm);
        }
    }
    const char *poison = getenv("UNET_TEST_POISON_STEP");
    if (poison)
        cfg->poison_step = strtoll(poison, NULL, 10);
    UnetTrainer *t = NULL;
    rc = run_trainer("train", cfg, UNET_TRAIN_FIT, a->quiet, &t);
    if (rc == 0) {
        print_summary(t);
        unet_trainer_free(t);
    } else if (cfg->out_dir[0]) {
        fprintf(stderr, "unet train: the run folder is %s\n", cfg->out_dir);
    }
    free(a);
    return rc;
}

/* ---- unet lr-test --------------------------------------------------------------------- */

static void lr_usage(FILE *f)
{
    fprintf(f,
            "usage: unet lr-test --data DIR [model options] [optimizer options] [--min-lr X]\n"
            "                    [--max-lr X] [--iters N] [--diverge F] [--csv FILE]\n\n"
            "The learning-rate range test (Smith 2017): trains for N iterations while the rate\n"
            "grows exponentially from --min-lr to --max-lr, stops when the smoothed loss exceeds\n"
            "F x its best, prints the curve (raw and smoothed loss) and suggests the rate of\n"
            "steepest descent. The model is not saved. Accepts the data, tile, batch,\n"
            "augmentation, weight-map, device, precision and seed options of 'unet train'.\n\n"
            "  --min-lr X    first rate (1e-7)\n"
            "  --max-lr X    last rate (10)\n"
            "  --iters N     iterations (100)\n"
            "  --diverge F   divergence factor (200)\n"
            "  --csv FILE    also write the curve as CSV\n\n");
    unet_cli_model_options_help(f);
}

int unet_cmd_lr_test(int argc, char **argv)
{
    TrainArgs *a = calloc(1, sizeof *a);
    if (!a) {
        fprintf(stderr, "unet lr-test: out of memory\n");
        return 1;
    }
    int rc = parse_args("lr-test", argc, argv, a, lr_usage);
    if (rc) {
        free(a);
        return rc > 0 ? 0 : 2;
    }
    UnetTrainConfig *cfg = &a->cfg;
    if (!cfg->data_dir[0]) {
        fprintf(stderr, "unet lr-test: say where the training pairs are with --data DIR\n");
        free(a);
        return 2;
    }
    if (a->resume || cfg->out_dir[0]) {
        fprintf(stderr, "unet lr-test: --out and --resume belong to 'unet train'; use --csv FILE "
                        "to keep the curve\n");
        free(a);
        return 2;
    }
    if (cfg->optimizer.lr == 0.0)
        cfg->optimizer.lr = cfg->lr_test.min_lr;
    UnetTrainer *t = NULL;
    rc = run_trainer("lr-test", cfg, UNET_TRAIN_LR_TEST, 1, &t);
    if (rc == 0) {
        const UnetLrTestResult *r = unet_trainer_lr_test_result(t);
        printf("%5s  %12s  %12s  %12s\n", "iter", "lr", "loss", "smoothed");
        for (int i = 0; r && i < r->count; i++)
            printf("%5d  %12.4g  %12.6f  %12.6f%s\n", i, r->lr[i], r->loss[i], r->smoothed[i],
                   i == r->suggested_index ? "  <- suggested" : "");
        if (r) {
            printf("%s\n%s\nsuggested lr: %.4g\n",
                   r->diverged ? "the loss diverged and the sweep stopped early"
                               : "the sweep reached --max-lr",
                   r->note, r->suggested_lr);
            if (a->csv) {
                UnetError err = { 0 };
                if (unet_lr_test_write_csv(r, a->csv, &err)) {
                    fprintf(stderr, "unet lr-test: %s\n", err.message);
                    rc = 1;
                } else {
                    printf("wrote %s\n", a->csv);
                }
            }
        }
        unet_trainer_free(t);
    }
    free(a);
    return rc;
}
