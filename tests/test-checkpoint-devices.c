/* test-checkpoint-devices.c - checkpoints move between devices: a model and its Adam state trained on CUDA, saved, loaded on the reference CPU backend and saved again give the same file byte for byte, and the same holds from CPU to CUDA; a training step after the move continues on the other device with the loss the first device would have reached. Skips (77) without a GPU; runs on the simulated one in -Dcudasim=true builds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "checkpoint.h"
#include "fileutil.h"
#include "model.h"
#include "optim.h"
#include "test-common.h"

typedef struct Trainee {
    UnetBackend *be;
    UnetModel *model;
    UnetOptimizer *opt;
    UnetTensor x, target, loss, dlogits;
} Trainee;

static UnetModelConfig cfg;
static int side, out;
static float *host_x, *host_t;

static int trainee_open(Trainee *t, UnetBackend *be)
{
    UnetError err = { 0 };
    memset(t, 0, sizeof *t);
    t->be = be;
    t->model = unet_model_new(&cfg, be, &err);
    CHECK_MSG(t->model != NULL, "model on %s: %s", be->name, err.message);
    if (!t->model)
        return 0;
    UnetOptimizerConfig oc;
    unet_optimizer_config_default(&oc, UNET_OPTIM_ADAM);
    oc.lr = 1e-3;
    t->opt = unet_optimizer_new(be, &oc, unet_model_params(t->model),
                                unet_model_param_arena(t->model), unet_model_grad_arena(t->model),
                                &err);
    CHECK_MSG(t->opt != NULL, "optimizer on %s: %s", be->name, err.message);
    int ok = t->opt && be->tensor_init(be, &t->x, 1, cfg.in_channels, side, side) == UNET_OK &&
             be->tensor_upload(be, &t->x, host_x) == UNET_OK &&
             be->tensor_init(be, &t->target, 1, 1, out, out) == UNET_OK &&
             be->tensor_upload(be, &t->target, host_t) == UNET_OK &&
             be->tensor_init(be, &t->loss, 1, 1, 1, 1) == UNET_OK &&
             be->tensor_init(be, &t->dlogits, 1, cfg.classes, out, out) == UNET_OK;
    CHECK_MSG(ok, "batch on %s: %s", be->name, be->error.message);
    return ok;
}

static void trainee_close(Trainee *t)
{
    if (!t->be)
        return;
    t->be->tensor_release(t->be, &t->x);
    t->be->tensor_release(t->be, &t->target);
    t->be->tensor_release(t->be, &t->loss);
    t->be->tensor_release(t->be, &t->dlogits);
    unet_optimizer_free(t->opt);
    unet_model_free(t->model);
    memset(t, 0, sizeof *t);
}

/* One Adam step on the fixed batch; returns its loss (NAN on failure). */
static float trainee_step(Trainee *t)
{
    UnetError err = { 0 };
    UnetTensor *logits = NULL;
    float loss = NAN;
    int ok = unet_model_forward(t->model, &t->x, &logits, 1, &err) == UNET_OK &&
             unet_model_loss(t->model, logits, &t->target, NULL, NULL, UNET_LOSS_BCE, 1.0f,
                             &t->loss, &t->dlogits, &err) == UNET_OK &&
             unet_model_backward(t->model, &t->dlogits, &err) == UNET_OK &&
             unet_optimizer_step(t->opt, NULL, &err) == UNET_OK &&
             t->be->tensor_download(t->be, &loss, &t->loss) == UNET_OK;
    CHECK_MSG(ok, "step on %s: %s %s", t->be->name, err.message, t->be->error.message);
    return loss;
}

static int save(Trainee *t, const char *path)
{
    UnetError err = { 0 };
    int ok = unet_checkpoint_save(path, t->model, t->opt, NULL, 0, &err) == UNET_OK;
    CHECK_MSG(ok, "saving from %s: %s", t->be->name, err.message);
    return ok;
}

static int load(Trainee *t, const char *path)
{
    UnetError err = { 0 };
    int ok = unet_checkpoint_load(path, t->model, t->opt, NULL, &err) == UNET_OK;
    CHECK_MSG(ok, "loading on %s: %s", t->be->name, err.message);
    return ok;
}

static int same_file(const char *a, const char *b)
{
    unsigned char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    UnetError err = { 0 };
    int ok = unet_read_file(a, &da, &la, &err) == UNET_OK &&
             unet_read_file(b, &db, &lb, &err) == UNET_OK && la == lb && !memcmp(da, db, la);
    free(da);
    free(db);
    return ok;
}

/* Trains `steps` on `from`, moves the checkpoint to `to` and back through
 * files, and checks that nothing changed on the way and that both devices
 * continue alike. */
static void move(UnetBackend *from, UnetBackend *to, const char *dir, int steps)
{
    char p_from[1024], p_to[1024];
    snprintf(p_from, sizeof p_from, "%s/%s.safetensors", dir, from->name);
    snprintf(p_to, sizeof p_to, "%s/%s-from-%s.safetensors", dir, to->name, from->name);
    Trainee a, b;
    if (!trainee_open(&a, from) || !trainee_open(&b, to)) {
        trainee_close(&a);
        trainee_close(&b);
        return;
    }
    for (int i = 0; i < steps; i++)
        trainee_step(&a);
    if (save(&a, p_from) && load(&b, p_from) && save(&b, p_to)) {
        CHECK_MSG(same_file(p_from, p_to), "%s -> %s: the re-saved checkpoint differs", from->name,
                  to->name);
        CHECK(unet_optimizer_step_count(b.opt) == steps);
    }
    /* The next step from the moved state: same loss on both devices up to
     * fp32 rounding of the two implementations. */
    float la = trainee_step(&a), lb = trainee_step(&b);
    double rel = fabs((double)la - lb) / fmax(fabs((double)la), 1e-6);
    CHECK_MSG(isfinite(la) && isfinite(lb) && rel <= 1e-4, "%s -> %s: next loss %.7g vs %.7g",
              from->name, to->name, (double)la, (double)lb);
    printf("%s -> %s after %d Adam steps: checkpoint identical after the round trip, next loss "
           "%.6f vs %.6f (rel %.1e)\n",
           from->name, to->name, steps, (double)la, (double)lb, rel);
    trainee_close(&a);
    trainee_close(&b);
}

int main(void)
{
    UnetError err = { 0 };
    setenv("UNET_CUDA_TF32", "0", 1);
    UnetBackend *cuda = unet_backend_cuda_new(0, &err);
    if (!cuda)
        test_skip(err.message);
    UnetBackend *ref = unet_backend_reference_new(&err);
    CHECK_MSG(ref != NULL, "reference backend: %s", err.message);
    char *dir = test_make_temp_dir("checkpoint-devices");
    CHECK(dir != NULL);
    if (!ref || !dir)
        return test_finish("checkpoint-devices");

    /* Batch norm: its running statistics travel with the weights. */
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    cfg.depth = 3;
    cfg.base = 8;
    cfg.padding = UNET_PAD_SAME;
    cfg.norm = UNET_NORM_BATCH;
    cfg.seed = 5;
    CHECK(unet_model_valid_input_size(&cfg, 48, &side, &out) == 0);
    TestRng rng;
    test_rng_seed(&rng, 48);
    host_x = malloc((size_t)cfg.in_channels * side * side * sizeof(float));
    host_t = malloc((size_t)out * out * sizeof(float));
    test_fill_uniform(&rng, host_x, (size_t)cfg.in_channels * side * side, -1, 1);
    for (int i = 0; i < out * out; i++)
        host_t[i] = (float)(test_rng_uniform(&rng, 0, 1) < 0.4f);

    move(cuda, ref, dir, 3);
    move(ref, cuda, dir, 3);

    free(host_x);
    free(host_t);
    test_remove_tree(dir);
    free(dir);
    unet_backend_destroy(ref);
    unet_backend_destroy(cuda);
    return test_finish("checkpoint-devices");
}
