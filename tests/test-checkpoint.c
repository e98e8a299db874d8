/* test-checkpoint.c - checkpoints on the reference backend: save/load round
 * trip with identical forward outputs, optimizer state that resumes training
 * exactly, refusal of mismatched models, and the atomic write keeping the old
 * file when a save fails. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "safetensors.h"
#include "test-common.h"

static UnetBackend *be;
static UnetError err;

static float *host_copy(const float *dev, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    if (n)
        be->buffer_download(be, h, dev, n);
    return h;
}

static int arenas_equal(const float *a, const float *b, size_t n)
{
    float *x = host_copy(a, n), *y = host_copy(b, n);
    int same = !memcmp(x, y, n * sizeof *x);
    free(x);
    free(y);
    return same;
}

static void make_input(UnetTensor *x, UnetTensor *target, const UnetModelConfig *cfg, int side,
                       uint64_t seed)
{
    TestRng rng;
    test_rng_seed(&rng, seed);
    size_t n = (size_t)cfg->in_channels * side * side;
    float *h = malloc(n * sizeof *h);
    test_fill_uniform(&rng, h, n, -1.0f, 1.0f);
    CHECK(be->tensor_init(be, x, 1, cfg->in_channels, side, side) == UNET_OK);
    be->tensor_upload(be, x, h);
    free(h);
    int out = unet_model_output_size(cfg, side);
    float *t = malloc((size_t)out * out * sizeof *t);
    for (int i = 0; i < out * out; i++)
        t[i] = (float)((i * 7 + (int)seed) % (cfg->classes > 1 ? cfg->classes : 2));
    CHECK(be->tensor_init(be, target, 1, 1, out, out) == UNET_OK);
    be->tensor_upload(be, target, t);
    free(t);
}

/* One training step: forward, loss, backward, optimizer step. */
static void train_step(UnetModel *m, UnetOptimizer *opt, const UnetTensor *x, const UnetTensor *target)
{
    UnetTensor *logits = NULL, loss = { 0 }, dlogits = { 0 };
    CHECK_MSG(unet_model_forward(m, x, &logits, 1, &err) == UNET_OK, "%s", err.message);
    if (!logits)
        return;
    CHECK(be->tensor_init(be, &loss, 1, 1, 1, 1) == UNET_OK);
    CHECK(be->tensor_init(be, &dlogits, logits->n, logits->c, logits->h, logits->w) == UNET_OK);
    CHECK_MSG(unet_model_loss(m, logits, target, NULL, NULL, UNET_LOSS_DEFAULT, 1.0f, &loss,
                              &dlogits, &err) == UNET_OK, "%s", err.message);
    CHECK_MSG(unet_model_backward(m, &dlogits, &err) == UNET_OK, "%s", err.message);
    CHECK_MSG(unet_optimizer_step(opt, NULL, &err) == UNET_OK, "%s", err.message);
    be->tensor_release(be, &loss);
    be->tensor_release(be, &dlogits);
}

/* Eval forward logits on the host; caller frees. */
static float *eval(UnetModel *m, const UnetTensor *x, size_t *n)
{
    UnetTensor *logits = NULL;
    CHECK_MSG(unet_model_forward(m, x, &logits, 0, &err) == UNET_OK, "%s", err.message);
    if (!logits)
        return calloc(1, sizeof(float));
    *n = unet_tensor_numel(logits);
    float *h = malloc(*n * sizeof *h);
    be->tensor_download(be, h, logits);
    return h;
}

static UnetModel *new_model(const UnetModelConfig *cfg)
{
    UnetModel *m = unet_model_new(cfg, be, &err);
    CHECK_MSG(m != NULL, "%s", err.message);
    return m;
}

static UnetOptimizer *new_opt(UnetModel *m, UnetOptimKind kind)
{
    UnetOptimizerConfig oc;
    unet_optimizer_config_default(&oc, kind);
    oc.lr = kind == UNET_OPTIM_SGD ? 0.01 : 1e-3;
    UnetOptimizer *o = unet_optimizer_new(be, &oc, unet_model_params(m), unet_model_param_arena(m),
                                          unet_model_grad_arena(m), &err);
    CHECK_MSG(o != NULL, "%s", err.message);
    return o;
}

/* Save after two steps, load into a differently seeded model and a fresh
 * optimizer: identical arenas and outputs, and one more step on each keeps
 * them identical (the momentum / Adam moments came back). */
static void round_trip(const char *dir, UnetModelConfig cfg, UnetOptimKind kind, int side)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s-%s.safetensors", dir, unet_arch_name(cfg.arch),
             unet_optim_kind_name(kind));
    UnetModel *a = new_model(&cfg);
    UnetOptimizer *oa = a ? new_opt(a, kind) : NULL;
    if (!a || !oa)
        return;
    UnetTensor x = { 0 }, target = { 0 };
    make_input(&x, &target, &cfg, side, 5);
    train_step(a, oa, &x, &target);
    train_step(a, oa, &x, &target);

    UnetKeyValue meta[] = {
        { "epoch", "3" },
        { "step", "2" },
        { "losses", "{\"train\":[0.7,0.6],\"val\":[0.65]}" },
        { "normalization", "{\"mean\":[0.5],\"std\":[0.25]}" },
        { "training_config", "{\"batch\":1}" },
        { "note", "made by test-checkpoint" },
    };
    CHECK_MSG(unet_checkpoint_save(path, a, oa, meta, 6, &err) == UNET_OK, "%s", err.message);

    UnetModelConfig back;
    CHECK(unet_checkpoint_read_config(path, &back, &err) == UNET_OK);
    CHECK(!memcmp(&back, &cfg, sizeof cfg));

    UnetModelConfig other = cfg;
    other.seed = cfg.seed + 99;
    UnetModel *b = new_model(&other);
    UnetOptimizer *ob = b ? new_opt(b, kind) : NULL;
    if (!b || !ob)
        return;
    const UnetParamTable *pt = unet_model_params(a), *bt = unet_model_buffers(a);
    CHECK(!arenas_equal(unet_model_param_arena(a), unet_model_param_arena(b), pt->total));
    UnetCheckpointMeta m = { 0 };
    CHECK_MSG(unet_checkpoint_load(path, b, ob, &m, &err) == UNET_OK, "%s", err.message);
    CHECK(arenas_equal(unet_model_param_arena(a), unet_model_param_arena(b), pt->total));
    CHECK(arenas_equal(unet_model_buffer_arena(a), unet_model_buffer_arena(b), bt->total));
    CHECK(unet_model_num_batches_tracked(a) == unet_model_num_batches_tracked(b));
    CHECK(unet_optimizer_step_count(ob) == 2);
    for (int s = 0; s < unet_optimizer_slot_count(oa); s++)
        CHECK(arenas_equal(unet_optimizer_slot(oa, s), unet_optimizer_slot(ob, s), pt->total));
    CHECK(!strcmp(unet_checkpoint_meta_get(&m, "epoch"), "3"));
    CHECK(!strcmp(unet_checkpoint_meta_get(&m, "note"), "made by test-checkpoint"));
    CHECK(!strcmp(unet_checkpoint_meta_get(&m, "format"), UNET_CHECKPOINT_FORMAT));
    CHECK(unet_checkpoint_meta_get(&m, "optimizer") != NULL);
    unet_checkpoint_meta_free(&m);

    size_t na = 0, nb = 0;
    float *ya = eval(a, &x, &na), *yb = eval(b, &x, &nb);
    CHECK(na == nb && na > 0 && !memcmp(ya, yb, na * sizeof *ya));
    free(ya);
    free(yb);
    train_step(a, oa, &x, &target);
    train_step(b, ob, &x, &target);
    CHECK_MSG(arenas_equal(unet_model_param_arena(a), unet_model_param_arena(b), pt->total),
              "%s/%s: training after resume differs", unet_arch_name(cfg.arch),
              unet_optim_kind_name(kind));

    /* weights only: a checkpoint with state loads into a model alone */
    UnetModel *c = new_model(&other);
    CHECK(c && unet_checkpoint_load(path, c, NULL, NULL, &err) == UNET_OK);
    char *text = unet_checkpoint_describe(path, &err);
    CHECK(text && strstr(text, unet_arch_name(cfg.arch)) && strstr(text, "epoch:") &&
          strstr(text, unet_optim_kind_name(kind)) && strstr(text, "note:"));
    if (text && cfg.arch == UNET_ARCH_UNET)
        printf("%s", text);
    free(text);
    CHECK(unet_checkpoint_has_optimizer(path));

    unet_model_free(c);
    unet_optimizer_free(oa);
    unet_optimizer_free(ob);
    unet_model_free(a);
    unet_model_free(b);
    be->tensor_release(be, &x);
    be->tensor_release(be, &target);
    unlink(path);
}

static void expect_load_refused(const char *path, const UnetModelConfig *cfg, const char *w1,
                                const char *w2, const char *w3, int line)
{
    UnetModel *m = unet_model_new(cfg, be, &err);
    if (!m) {
        fprintf(stderr, "line %d: %s\n", line, err.message);
        test_failures++;
        return;
    }
    const UnetParamTable *pt = unet_model_params(m);
    float *before = host_copy(unet_model_param_arena(m), pt->total);
    UnetStatus s = unet_checkpoint_load(path, m, NULL, NULL, &err);
    if (s != UNET_ERR_FORMAT || !strstr(err.message, path) || !strstr(err.message, w1) ||
        !strstr(err.message, w2) || !strstr(err.message, w3)) {
        fprintf(stderr, "line %d: status %d, message: %s\n", line, s, err.message);
        test_failures++;
    } else {
        printf("refused as expected: %s\n", err.message);
    }
    float *after = host_copy(unet_model_param_arena(m), pt->total);
    if (memcmp(before, after, pt->total * sizeof(float))) {
        fprintf(stderr, "line %d: a refused load changed the model\n", line);
        test_failures++;
    }
    free(before);
    free(after);
    unet_model_free(m);
}

static void mismatches(const char *dir)
{
    char path[4200], extra[4200];
    snprintf(path, sizeof path, "%s/small.safetensors", dir);
    snprintf(extra, sizeof extra, "%s/extra.safetensors", dir);
    UnetModelConfig cfg;
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    cfg.depth = 2, cfg.base = 4, cfg.padding = UNET_PAD_SAME, cfg.norm = UNET_NORM_BATCH;
    UnetModel *m = new_model(&cfg);
    if (!m)
        return;
    CHECK(unet_checkpoint_save(path, m, NULL, NULL, 0, &err) == UNET_OK);
    UnetKeyValue bad[] = { { "format", "x" } };
    CHECK(unet_checkpoint_save(path, m, NULL, bad, 1, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "reserved") != NULL);

    UnetModelConfig wider = cfg;
    wider.base = 8;
    expect_load_refused(path, &wider, "tensor 'encoder.blocks.0.conv_1.weight' has shape [4,1,3,3] in the file but [8,1,3,3] in the model",
                        "\"base\":4", "\"base\":8", __LINE__);
    UnetModelConfig nonorm = cfg;
    nonorm.norm = UNET_NORM_NONE;
    expect_load_refused(path, &nonorm, "encoder.blocks.0.conv_1.bias", "missing", "\"norm\":\"none\"", __LINE__);
    UnetModelConfig inorm = cfg;
    inorm.norm = UNET_NORM_INSTANCE;
    expect_load_refused(path, &inorm, "running_mean", "which this model does not have", "more difference", __LINE__);
    UnetModelConfig light;
    unet_model_config_default(&light, UNET_ARCH_LIGHT);
    light.depth = 2, light.base = 4;
    expect_load_refused(path, &light, "missing", "\"model\":\"light\"", "\"model\":\"unet\"", __LINE__);

    /* a file with one tensor too many */
    UnetSafetensors *st = NULL;
    CHECK(unet_safetensors_open(&st, path, &err) == UNET_OK);
    UnetSafetensorsWriter *w = unet_safetensors_writer_new();
    for (size_t i = 0; st && i < unet_safetensors_count(st); i++) {
        const UnetStTensor *t = unet_safetensors_at(st, i);
        unet_safetensors_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &err);
    }
    float zero = 0.0f;
    int64_t one = 1;
    unet_safetensors_writer_add(w, "encoder.blocks.9.conv_1.weight", UNET_DTYPE_F32, 1, &one, &zero, &err);
    CHECK(unet_safetensors_writer_save(w, extra, &err) == UNET_OK);
    unet_safetensors_writer_free(w);
    unet_safetensors_close(st);
    expect_load_refused(extra, &cfg, "the file has tensor 'encoder.blocks.9.conv_1.weight'",
                        "which this model does not have", "file's model: not stored", __LINE__);

    /* optimizer state that is absent or of another kind */
    UnetOptimizer *adam = new_opt(m, UNET_OPTIM_ADAM);
    CHECK(unet_checkpoint_load(path, m, adam, NULL, &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "no optimizer state") != NULL);
    UnetOptimizer *sgd = new_opt(m, UNET_OPTIM_SGD);
    CHECK(unet_checkpoint_save(path, m, sgd, NULL, 0, &err) == UNET_OK);
    CHECK(unet_checkpoint_load(path, m, adam, NULL, &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "sgd optimizer state") && strstr(err.message, "adam optimizer"));
    CHECK(unet_checkpoint_load(path, m, sgd, NULL, &err) == UNET_OK);
    unet_optimizer_free(adam);
    unet_optimizer_free(sgd);

    /* not a checkpoint at all */
    CHECK(unet_checkpoint_load(dir, m, NULL, NULL, &err) == UNET_ERR_IO);
    CHECK(unet_checkpoint_read_config(extra, &cfg, &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "no model_config") != NULL);
    unet_model_free(m);
    unlink(path);
    unlink(extra);
}

/* A failing save (disk full after some bytes) leaves the previous checkpoint
 * loadable and unchanged, and no temporary file behind. */
static void atomic(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/atomic.safetensors", dir);
    UnetModelConfig cfg;
    unet_model_config_default(&cfg, UNET_ARCH_FCN);
    cfg.base = 4;
    UnetModel *m = new_model(&cfg);
    if (!m)
        return;
    const UnetParamTable *pt = unet_model_params(m);
    float *old = host_copy(unet_model_param_arena(m), pt->total);
    CHECK(unet_checkpoint_save(path, m, NULL, NULL, 0, &err) == UNET_OK);
    CHECK(unet_model_init_params(m, 1234, &err) == UNET_OK);
    for (size_t fail_at = 0; fail_at < 4000; fail_at += 900) {
        unet_safetensors_debug_fail_after(fail_at);
        UnetStatus s = unet_checkpoint_save(path, m, NULL, NULL, 0, &err);
        unet_safetensors_debug_fail_after(SIZE_MAX);
        CHECK(s == UNET_ERR_IO && strstr(err.message, path) && strstr(err.message, strerror(ENOSPC)));
    }
    UnetModel *r = new_model(&cfg);
    CHECK(r && unet_checkpoint_load(path, r, NULL, NULL, &err) == UNET_OK);
    float *now = r ? host_copy(unet_model_param_arena(r), pt->total) : NULL;
    CHECK(now && !memcmp(old, now, pt->total * sizeof(float)));
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp-", dir);
    CHECK(system(cmd) != 0);
    free(old);
    free(now);
    unet_model_free(r);
    unet_model_free(m);
    unlink(path);
}

int main(void)
{
    be = unet_backend_reference_new(&err);
    if (!be) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    char *dir = test_make_temp_dir("checkpoint");
    CHECK(dir != NULL);

    UnetModelConfig cfg;
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    cfg.depth = 3, cfg.base = 4, cfg.classes = 2, cfg.padding = UNET_PAD_SAME,
    cfg.norm = UNET_NORM_BATCH;
    round_trip(dir, cfg, UNET_OPTIM_SGD, 16);
    unet_model_config_default(&cfg, UNET_ARCH_UNET);
    cfg.depth = 2, cfg.base = 4; /* valid padding, no norm, biases */
    round_trip(dir, cfg, UNET_OPTIM_ADAMW, 28);
    unet_model_config_default(&cfg, UNET_ARCH_LIGHT);
    cfg.depth = 3, cfg.base = 4;
    round_trip(dir, cfg, UNET_OPTIM_ADAM, 16);
    unet_model_config_default(&cfg, UNET_ARCH_FCN);
    cfg.base = 4;
    round_trip(dir, cfg, UNET_OPTIM_SGD, 16);

    mismatches(dir);
    atomic(dir);

    rmdir(dir);
    free(dir);
    unet_backend_destroy(be);
    return test_finish("checkpoint");
}
