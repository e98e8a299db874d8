/* test-optim.c - optimizers and learning-rate schedules against PyTorch 1.13
 * golden values (tests/gen-optim-golden.py), gradient accumulation, config
 * JSON and state slots. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim.h"
#include "test-common.h"
#include "test-optim-golden.h"

static UnetParamInfo items[2] = {
    { "layer.weight", 1, { 5, 1, 1, 1 }, 0, 5 },
    { "layer.bias", 1, { 2, 1, 1, 1 }, 5, 2 },
};
static const UnetParamTable table = { items, 2, GOLDEN_N };

typedef struct Arena {
    UnetBackend *be;
    float *p, *g;
} Arena;

static void arena_init(Arena *a, UnetBackend *be)
{
    a->be = be;
    a->p = be->buffer_alloc(be, GOLDEN_N);
    a->g = be->buffer_alloc(be, GOLDEN_N);
    float p0[GOLDEN_N];
    for (int i = 0; i < GOLDEN_N; i++)
        p0[i] = (float)golden_p0[i];
    be->buffer_upload(be, a->p, p0, GOLDEN_N);
    be->buffer_fill(be, a->g, GOLDEN_N, 0.0f);
}

static void arena_free(Arena *a)
{
    a->be->buffer_free(a->be, a->p);
    a->be->buffer_free(a->be, a->g);
}

/* What a backward pass does: adds scale * a * (p - c) into the gradient. */
static void add_grad(Arena *a, const double *c, float scale)
{
    float p[GOLDEN_N], g[GOLDEN_N];
    a->be->buffer_download(a->be, p, a->p, GOLDEN_N);
    a->be->buffer_download(a->be, g, a->g, GOLDEN_N);
    for (int i = 0; i < GOLDEN_N; i++)
        g[i] += (p[i] - (float)c[i]) * (float)golden_a[i] * scale;
    a->be->buffer_upload(a->be, a->g, g, GOLDEN_N);
}

static void run_trajectory(UnetBackend *be, const char *name, const UnetOptimizerConfig *cfg,
                           const double *golden)
{
    UnetError err = { 0 };
    Arena a;
    arena_init(&a, be);
    UnetOptimizer *opt = unet_optimizer_new(be, cfg, &table, a.p, a.g, &err);
    CHECK_MSG(opt != NULL, "%s: %s", name, err.message);
    if (!opt)
        return;
    double worst = 0.0;
    for (int s = 0; s < GOLDEN_STEPS; s++) {
        add_grad(&a, golden_c, 1.0f);
        int stepped = 0;
        CHECK(unet_optimizer_step(opt, &stepped, &err) == UNET_OK && stepped);
        float p[GOLDEN_N];
        be->buffer_download(be, p, a.p, GOLDEN_N);
        for (int i = 0; i < GOLDEN_N; i++) {
            double want = golden[s * GOLDEN_N + i];
            double d = fabs(p[i] - want) / fmax(1.0, fabs(want));
            if (d > worst)
                worst = d;
        }
    }
    CHECK_MSG(worst < 1e-5, "%s: trajectory differs from PyTorch by %g (relative)", name, worst);
    printf("%-16s max difference to PyTorch over %d steps: %.2e\n", name, GOLDEN_STEPS,
           worst);
    CHECK(unet_optimizer_step_count(opt) == GOLDEN_STEPS);
    /* the gradient arena is zero after each update */
    float g[GOLDEN_N];
    be->buffer_download(be, g, a.g, GOLDEN_N);
    for (int i = 0; i < GOLDEN_N; i++)
        CHECK(g[i] == 0.0f);
    unet_optimizer_free(opt);
    arena_free(&a);
}

static void test_trajectories(UnetBackend *be)
{
    UnetOptimizerConfig c;
    unet_optimizer_config_default(&c, UNET_OPTIM_SGD);
    c.lr = 0.05, c.momentum = 0.9;
    run_trajectory(be, "sgd_momentum", &c, golden_sgd_momentum);
    c.nesterov = 1;
    run_trajectory(be, "sgd_nesterov", &c, golden_sgd_nesterov);
    unet_optimizer_config_default(&c, UNET_OPTIM_SGD);
    c.lr = 0.01, c.weight_decay = 0.1; /* momentum 0.99 is the default (paper) */
    run_trajectory(be, "sgd_paper_decay", &c, golden_sgd_paper_decay);
    c.lr = 0.1, c.momentum = 0.0, c.weight_decay = 0.01;
    run_trajectory(be, "sgd_plain_decay", &c, golden_sgd_plain_decay);
    unet_optimizer_config_default(&c, UNET_OPTIM_ADAM);
    c.lr = 0.1;
    run_trajectory(be, "adam", &c, golden_adam);
    c.lr = 0.05, c.beta1 = 0.8, c.beta2 = 0.99, c.eps = 1e-6, c.weight_decay = 0.1;
    run_trajectory(be, "adam_decay", &c, golden_adam_decay);
    unet_optimizer_config_default(&c, UNET_OPTIM_ADAMW);
    c.lr = 0.05, c.weight_decay = 0.1;
    run_trajectory(be, "adamw", &c, golden_adamw);
}

/* Accumulating 4 micro-batches with grad_scale 1/4 equals one update on the
 * batch of 4 (mean gradient), for Adam whose bias correction counts updates. */
static void test_accumulation(UnetBackend *be)
{
    UnetError err = { 0 };
    const int micro = 4, updates = 6;
    double cs[4][GOLDEN_N];
    for (int s = 0; s < micro; s++)
        for (int i = 0; i < GOLDEN_N; i++)
            cs[s][i] = golden_c[i] + 0.3 * (s - 1.5) * (i % 3 - 1);
    UnetOptimizerConfig c;
    unet_optimizer_config_default(&c, UNET_OPTIM_ADAM);
    c.lr = 0.05;
    Arena big, acc;
    arena_init(&big, be);
    arena_init(&acc, be);
    UnetOptimizer *ob = unet_optimizer_new(be, &c, &table, big.p, big.g, &err);
    c.accumulate = micro;
    UnetOptimizer *oa = unet_optimizer_new(be, &c, &table, acc.p, acc.g, &err);
    CHECK(ob && oa);
    if (!ob || !oa)
        return;
    for (int u = 0; u < updates; u++) {
        /* the big batch: the mean gradient of the 4 samples, one update */
        for (int s = 0; s < micro; s++)
            add_grad(&big, cs[s], 1.0f / micro);
        int stepped = 0;
        CHECK(unet_optimizer_step(ob, &stepped, &err) == UNET_OK && stepped);
        for (int s = 0; s < micro; s++) {
            add_grad(&acc, cs[s], 1.0f / micro);
            CHECK(unet_optimizer_step(oa, &stepped, &err) == UNET_OK);
            CHECK(stepped == (s == micro - 1));
            CHECK(unet_optimizer_pending(oa) == (s == micro - 1 ? 0 : s + 1));
        }
    }
    CHECK(unet_optimizer_step_count(oa) == updates && unet_optimizer_step_count(ob) == updates);
    float pb[GOLDEN_N], pa[GOLDEN_N];
    be->buffer_download(be, pb, big.p, GOLDEN_N);
    be->buffer_download(be, pa, acc.p, GOLDEN_N);
    double d = test_max_rel_diff(pa, pb, GOLDEN_N, NULL);
    CHECK_MSG(d < 1e-6, "accumulated vs big batch differ by %g", d);
    /* and it moved: the parameters are not where they started */
    CHECK(fabsf(pa[0] - (float)golden_p0[0]) > 1e-3f);

    /* a partial group: flush applies it, then nothing is pending */
    add_grad(&acc, cs[0], 1.0f / micro);
    int stepped = 1;
    CHECK(unet_optimizer_step(oa, &stepped, &err) == UNET_OK && !stepped);
    CHECK(unet_optimizer_flush(oa, &stepped, &err) == UNET_OK && stepped);
    CHECK(unet_optimizer_step_count(oa) == updates + 1 && unet_optimizer_pending(oa) == 0);
    CHECK(unet_optimizer_flush(oa, &stepped, &err) == UNET_OK && !stepped);

    /* slots */
    CHECK(unet_optimizer_slot_count(oa) == 2);
    CHECK(!strcmp(unet_optimizer_slot_name(oa, 0), "exp_avg"));
    CHECK(!strcmp(unet_optimizer_slot_name(oa, 1), "exp_avg_sq"));
    CHECK(unet_optimizer_slot_find(oa, "exp_avg_sq") == 1 && unet_optimizer_slot_find(oa, "x") == -1);
    float m[GOLDEN_N];
    be->buffer_download(be, m, unet_optimizer_slot(oa, 0), GOLDEN_N);
    CHECK(m[0] != 0.0f);
    CHECK(unet_optimizer_reset_state(oa, &err) == UNET_OK && unet_optimizer_step_count(oa) == 0);
    be->buffer_download(be, m, unet_optimizer_slot(oa, 0), GOLDEN_N);
    CHECK(m[0] == 0.0f);
    unet_optimizer_free(ob);
    unet_optimizer_free(oa);
    arena_free(&big);
    arena_free(&acc);

    /* SGD without momentum has no state; with momentum one slot */
    Arena s;
    arena_init(&s, be);
    unet_optimizer_config_default(&c, UNET_OPTIM_SGD);
    UnetOptimizer *o = unet_optimizer_new(be, &c, &table, s.p, s.g, &err);
    CHECK(o && unet_optimizer_slot_count(o) == 1 && !strcmp(unet_optimizer_slot_name(o, 0), "momentum_buffer"));
    unet_optimizer_free(o);
    c.momentum = 0.0;
    o = unet_optimizer_new(be, &c, &table, s.p, s.g, &err);
    CHECK(o && unet_optimizer_slot_count(o) == 0 && unet_optimizer_slot_name(o, 0) == NULL);
    unet_optimizer_free(o);
    c.nesterov = 1;
    CHECK(unet_optimizer_new(be, &c, &table, s.p, s.g, &err) == NULL);
    CHECK(strstr(err.message, "Nesterov") != NULL);
    arena_free(&s);
}

static void check_lrs(const char *name, const double *got, const double *want, int n)
{
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]) / fabs(want[i]);
        if (d > worst)
            worst = d;
    }
    CHECK_MSG(worst < 1e-9, "%s schedule differs from PyTorch by %g", name, worst);
    printf("%-16s schedule: max relative difference to PyTorch %.2e over %d steps\n", name, worst, n);
}

static void test_schedules(void)
{
    UnetError err = { 0 };
    UnetLrScheduleConfig c;
    UnetLrSchedule s;
    double got[64];

    unet_lr_schedule_config_default(&c, UNET_LR_EXPONENTIAL);
    c.gamma = 0.9;
    CHECK(unet_lr_schedule_init(&s, &c, 0.1, &err) == UNET_OK);
    for (int i = 0; i < 30; i++)
        got[i] = unet_lr_schedule_step(&s);
    check_lrs("exponential", got, golden_exponential, 30);

    unet_lr_schedule_config_default(&c, UNET_LR_COSINE);
    CHECK(unet_lr_schedule_init(&s, &c, 0.1, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "t_max") != NULL);
    c.t_max = 10;
    c.eta_min = 0.001;
    CHECK(unet_lr_schedule_init(&s, &c, 0.1, &err) == UNET_OK);
    for (int i = 0; i < 35; i++)
        got[i] = unet_lr_schedule_step(&s);
    check_lrs("cosine", got, golden_cosine, 35);

    unet_lr_schedule_config_default(&c, UNET_LR_PLATEAU);
    c.factor = 0.5, c.patience = 2, c.cooldown = 1, c.min_lr = 0.01;
    CHECK(unet_lr_schedule_init(&s, &c, 0.1, &err) == UNET_OK);
    int n = (int)(sizeof golden_plateau / sizeof golden_plateau[0]);
    for (int i = 0; i < n; i++) {
        double before = s.lr;
        CHECK(unet_lr_schedule_step(&s) == before); /* updates do not move it */
        got[i] = unet_lr_schedule_epoch_end(&s, golden_plateau_metrics[i]);
    }
    check_lrs("plateau", got, golden_plateau, n);

    /* resume from the saved counters mid-run gives the same continuation */
    UnetLrSchedule a, b;
    unet_lr_schedule_init(&a, &c, 0.1, &err);
    for (int i = 0; i < 13; i++)
        unet_lr_schedule_epoch_end(&a, golden_plateau_metrics[i]);
    char *state = unet_lr_schedule_state_to_json(&a);
    unet_lr_schedule_init(&b, &c, 0.1, &err);
    CHECK(unet_lr_schedule_state_from_json(&b, state, &err) == UNET_OK);
    free(state);
    for (int i = 13; i < n; i++)
        CHECK(unet_lr_schedule_epoch_end(&b, golden_plateau_metrics[i]) == golden_plateau[i]);
    CHECK(unet_lr_schedule_state_from_json(&b, "{\"lr\":1}", &err) == UNET_ERR_FORMAT);
    CHECK(unet_lr_schedule_state_from_json(&b, "{\"base_lr\":1,\"lr\":1,\"steps\":0,\"x\":2}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "'x'") != NULL);

    unet_lr_schedule_config_default(&c, UNET_LR_PLATEAU);
    c.mode_max = 1, c.factor = 0.3, c.patience = 1, c.threshold = 0.05;
    CHECK(unet_lr_schedule_init(&s, &c, 0.1, &err) == UNET_OK);
    n = (int)(sizeof golden_plateau_max / sizeof golden_plateau_max[0]);
    for (int i = 0; i < n; i++)
        got[i] = unet_lr_schedule_epoch_end(&s, golden_score_metrics[i]);
    check_lrs("plateau max", got, golden_plateau_max, n);

    unet_lr_schedule_config_default(&c, UNET_LR_CONSTANT);
    CHECK(unet_lr_schedule_init(&s, &c, 0.3, &err) == UNET_OK);
    CHECK(unet_lr_schedule_step(&s) == 0.3 && unet_lr_schedule_epoch_end(&s, 1.0) == 0.3);
    CHECK(s.steps == 1 && s.epochs == 1);
}

static void test_json(void)
{
    UnetError err = { 0 };
    for (int k = 0; k < 3; k++) {
        UnetOptimizerConfig a, b;
        unet_optimizer_config_default(&a, (UnetOptimKind)k);
        a.lr = 0.0123, a.weight_decay = 1e-4, a.accumulate = 3;
        if (k == UNET_OPTIM_SGD)
            a.nesterov = 1;
        else
            a.beta1 = 0.85;
        char *j = unet_optimizer_config_to_json(&a);
        CHECK_MSG(unet_optimizer_config_from_json(&b, j, &err) == UNET_OK, "%s", err.message);
        CHECK_MSG(memcmp(&a, &b, sizeof a) == 0, "optimizer json round trip: %s", j);
        free(j);
    }
    UnetOptimizerConfig o;
    CHECK(unet_optimizer_config_from_json(&o, "{\"optimizer\":\"adamw\"}", &err) == UNET_OK);
    CHECK(o.kind == UNET_OPTIM_ADAMW && o.weight_decay == 0.01 && o.lr == 1e-3);
    CHECK(unet_optimizer_config_from_json(&o, "{}", &err) == UNET_OK);
    CHECK(o.kind == UNET_OPTIM_SGD && o.momentum == 0.99);
    CHECK(unet_optimizer_config_from_json(&o, "{\"optimizer\":\"adam\",\"momentum\":0.9}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "'momentum' does not apply to adam") != NULL);
    CHECK(unet_optimizer_config_from_json(&o, "{\"optimizer\":\"rmsprop\"}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "rmsprop") && strstr(err.message, "sgd, adam or adamw"));
    CHECK(unet_optimizer_config_from_json(&o, "{\"lr\":-1}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "learning rate") != NULL);
    CHECK(unet_optimizer_config_from_json(&o, "{\"accumulate\":0}", &err) == UNET_ERR_FORMAT);
    CHECK(unet_optimizer_config_from_json(&o, "{\"lr\":\"big\"}", &err) == UNET_ERR_FORMAT);
    CHECK(unet_optimizer_config_from_json(&o, "{\"speed\":1}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "speed") != NULL);
    CHECK(unet_optimizer_config_from_json(&o, "not json", &err) == UNET_ERR_FORMAT);

    for (int k = 0; k < 4; k++) {
        UnetLrScheduleConfig a, b;
        unet_lr_schedule_config_default(&a, (UnetLrScheduleKind)k);
        a.gamma = k == UNET_LR_EXPONENTIAL ? 0.97 : a.gamma;
        if (k == UNET_LR_PLATEAU)
            a.patience = 4, a.mode_max = 1, a.min_lr = 1e-6;
        if (k == UNET_LR_COSINE)
            a.t_max = 5000, a.eta_min = 1e-5;
        char *j = unet_lr_schedule_config_to_json(&a);
        CHECK_MSG(unet_lr_schedule_config_from_json(&b, j, &err) == UNET_OK, "%s", err.message);
        CHECK_MSG(memcmp(&a, &b, sizeof a) == 0, "schedule json round trip: %s", j);
        free(j);
    }
    UnetLrScheduleConfig s;
    CHECK(unet_lr_schedule_config_from_json(&s, "{\"schedule\":\"cosine\",\"gamma\":0.5}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "'gamma' does not apply to cosine") != NULL);
    CHECK(unet_lr_schedule_config_from_json(&s, "{\"schedule\":\"plateau\",\"mode\":\"up\"}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "up") != NULL);
    CHECK(unet_lr_schedule_config_from_json(&s, "{\"schedule\":\"plateau\",\"factor\":2}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "factor") != NULL);
    UnetLrScheduleKind kind;
    CHECK(unet_lr_schedule_parse("cosine", &kind, &err) == UNET_OK && kind == UNET_LR_COSINE);
    CHECK(unet_lr_schedule_parse("step", &kind, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "constant, exponential, plateau or cosine") != NULL);
    CHECK(!strcmp(unet_lr_schedule_name(UNET_LR_PLATEAU), "plateau"));
    CHECK(!strcmp(unet_optim_kind_name(UNET_OPTIM_ADAMW), "adamw"));
}

int main(void)
{
    UnetError err = { 0 };
    UnetBackend *be = unet_backend_reference_new(&err);
    CHECK_MSG(be != NULL, "%s", err.message);
    if (be) {
        test_trajectories(be);
        test_accumulation(be);
        unet_backend_destroy(be);
    }
    test_schedules();
    test_json();
    return test_finish("optim");
}
