/* test-train-overlap.c - reading step N's loss after step N+1 is queued (the
 * lag that lets a GPU's next upload overlap the current step) changes
 * nothing a run reports: same STEP and EPOCH events, same metrics.csv,
 * same divergence stop, and a stop leaves a checkpoint whose step matches
 * the steps reported. Also the gradient all-reduce hook (backend.h): called
 * once per update, after every accumulated micro-batch, before the update,
 * which sees what it did to the gradients. */
#include "optim.h"
#include "model.h"
#include "train-helpers.h"

static Recorder a, b;

/* The reference backend: bit-reproducible from run to run. */
static void config(UnetTrainConfig *c, const char *data, const char *out)
{
    th_config(c, data, out);
    snprintf(c->device, sizeof c->device, "reference");
}

/* metrics.csv without the columns that measure time. */
static char *metrics_rows(const char *run, int *rows)
{
    char *path = unet_path_join(run, "metrics.csv");
    FILE *f = fopen(path, "r");
    free(path);
    *rows = 0;
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(cap, 1), line[1024];
    while (out && fgets(line, sizeof line, f)) {
        /* keep the first 12 fields: kind .. v_info */
        int commas = 0;
        for (char *p = line; *p; p++)
            if (*p == ',' && ++commas == 12) {
                *p = '\0';
                break;
            }
        size_t n = strlen(line);
        if (len + n + 2 > cap)
            break;
        memcpy(out + len, line, n);
        len += n;
        out[len++] = '\n';
        (*rows)++;
    }
    fclose(f);
    return out;
}

static int same_records(const Recorder *x, const Recorder *y)
{
    int bad = x->steps != y->steps || x->epochs != y->epochs;
    for (int i = 0; !bad && i < x->steps; i++)
        bad += x->step_no[i] != y->step_no[i] || x->step_loss[i] != y->step_loss[i];
    for (int i = 0; !bad && i < x->epochs; i++)
        bad += x->train_loss[i] != y->train_loss[i] || x->val_loss[i] != y->val_loss[i] ||
               x->dice[i] != y->dice[i] || x->epoch_no[i] != y->epoch_no[i];
    if (bad)
        fprintf(stderr, "steps %d/%d epochs %d/%d\n", x->steps, y->steps, x->epochs, y->epochs);
    return bad == 0;
}

/* ---- the all-reduce hook on a wrapped reference backend ------------------ */

typedef struct HookBackend {
    UnetBackend base;
    UnetBackend *inner;
    int calls;
    int backward_calls;      /* conv backward calls seen so far */
    int backward_at_call;    /* ... when the hook last ran */
    int updates_at_call;     /* sgd updates applied before the hook last ran */
    int updates;
    float *grad_before;      /* gradient arena as the hook received it */
    size_t count;
} HookBackend;

static UnetStatus hook_allreduce(UnetBackend *be, float *grad, size_t count)
{
    HookBackend *h = (HookBackend *)be;
    h->calls++;
    h->backward_at_call = h->backward_calls;
    h->updates_at_call = h->updates;
    free(h->grad_before);
    h->grad_before = malloc(count * sizeof(float));
    h->count = count;
    memcpy(h->grad_before, grad, count * sizeof(float)); /* host memory on this backend */
    /* stands in for the mean over two replicas whose other half saw zeros */
    for (size_t i = 0; i < count; i++)
        grad[i] *= 0.5f;
    return UNET_OK;
}

static UnetStatus hook_conv_backward(UnetBackend *be, UnetTensor *dx, UnetTensor *dw,
                                     UnetTensor *db, const UnetTensor *dy, const UnetTensor *x,
                                     const UnetTensor *w, const UnetConvDesc *d, int accumulate)
{
    HookBackend *h = (HookBackend *)be;
    h->backward_calls++;
    return h->inner->conv2d_backward(h->inner, dx, dw, db, dy, x, w, d, accumulate);
}

static UnetStatus hook_sgd(UnetBackend *be, float *param, const float *grad, float *mom,
                           size_t count, const UnetOptimizerStep *s)
{
    HookBackend *h = (HookBackend *)be;
    h->updates++;
    return h->inner->sgd_update(h->inner, param, grad, mom, count, s);
}

static void hook_destroy(UnetBackend *be)
{
    HookBackend *h = (HookBackend *)be;
    unet_backend_destroy(h->inner);
    free(h->grad_before);
    free(h);
}

static void test_allreduce_hook(void)
{
    UnetError err = { 0 };
    UnetBackend *ref = unet_backend_reference_new(&err);
    CHECK_MSG(ref != NULL, "%s", err.message);
    if (!ref)
        return;
    HookBackend *h = calloc(1, sizeof *h);
    h->base = *ref; /* the reference ops read nothing from be but the vtable */
    h->inner = ref;
    h->base.destroy = hook_destroy;
    h->base.gradient_allreduce = hook_allreduce;
    h->base.conv2d_backward = hook_conv_backward;
    h->base.sgd_update = hook_sgd;
    UnetBackend *be = &h->base;

    UnetModelConfig mc;
    unet_model_config_default(&mc, UNET_ARCH_UNET);
    mc.depth = 2;
    mc.base = 4;
    mc.padding = UNET_PAD_SAME;
    mc.in_channels = 1;
    UnetModel *m = unet_model_new(&mc, be, &err);
    CHECK_MSG(m != NULL, "%s", err.message);
    UnetOptimizerConfig oc;
    unet_optimizer_config_default(&oc, UNET_OPTIM_SGD);
    oc.lr = 1.0;
    oc.momentum = 0.0;
    oc.accumulate = 3;
    UnetOptimizer *opt = m ? unet_optimizer_new(be, &oc, unet_model_params(m),
                                                unet_model_param_arena(m),
                                                unet_model_grad_arena(m), &err)
                           : NULL;
    CHECK_MSG(opt != NULL, "%s", err.message);
    if (!m || !opt)
        goto out;
    CHECK(unet_optimizer_zero_grad(opt, &err) == UNET_OK);
    const size_t np = unet_model_params(m)->total;
    float *before = malloc(np * sizeof(float)), *after = malloc(np * sizeof(float));
    float *grad = malloc(np * sizeof(float));
    UnetTensor x = { 0 }, target = { 0 }, loss = { 0 }, dl = { 0 };
    CHECK(be->tensor_init(be, &x, 2, 1, 16, 16) == UNET_OK);
    CHECK(be->tensor_init(be, &target, 2, 1, 16, 16) == UNET_OK);
    CHECK(be->tensor_init(be, &loss, 1, 1, 1, 1) == UNET_OK);
    CHECK(be->tensor_init(be, &dl, 2, 1, 16, 16) == UNET_OK);
    for (int step = 0; step < 2; step++) {
        for (int k = 0; k < 3; k++) {
            for (size_t i = 0; i < unet_tensor_numel(&x); i++) {
                x.data[i] = (float)((i * 37 + 11 * k + 5 * step) % 17) / 17.0f;
                target.data[i] = (float)((i + k) % 3 == 0);
            }
            UnetTensor *logits;
            CHECK(unet_model_forward(m, &x, &logits, 1, &err) == UNET_OK);
            CHECK(unet_model_loss(m, logits, &target, NULL, NULL, UNET_LOSS_BCE, 1.0f / 3, &loss,
                                  &dl, &err) == UNET_OK);
            CHECK(unet_model_backward(m, &dl, &err) == UNET_OK);
            if (k == 2) {
                memcpy(grad, unet_model_grad_arena(m), np * sizeof(float));
                memcpy(before, unet_model_param_arena(m), np * sizeof(float));
            }
            int stepped = 0;
            int calls = h->calls;
            CHECK(unet_optimizer_step(opt, &stepped, &err) == UNET_OK);
            /* once per update, never for a micro-batch that only accumulates */
            CHECK(h->calls == calls + (k == 2) && stepped == (k == 2));
        }
        /* after the group's third backward, before its update */
        CHECK(h->backward_at_call == h->backward_calls && h->updates_at_call == step);
        CHECK(h->updates == step + 1 && h->count == np);
        CHECK(memcmp(h->grad_before, grad, np * sizeof(float)) == 0);
        /* SGD, lr 1, no momentum: the update used the halved gradient */
        memcpy(after, unet_model_param_arena(m), np * sizeof(float));
        int bad = 0;
        for (size_t i = 0; i < np; i++)
            bad += after[i] != before[i] - 0.5f * grad[i];
        CHECK_MSG(bad == 0, "%d parameters did not see the all-reduced gradient", bad);
    }
    CHECK(h->calls == 2);
    be->tensor_release(be, &x);
    be->tensor_release(be, &target);
    be->tensor_release(be, &loss);
    be->tensor_release(be, &dl);
    free(before);
    free(after);
    free(grad);
out:
    unet_optimizer_free(opt);
    unet_model_free(m);
    unet_backend_destroy(be);
}

int main(void)
{
    test_allreduce_hook();

    char *root = test_make_temp_dir("train-overlap");
    char *data = unet_path_join(root, "data");
    char *run_a = unet_path_join(root, "sync"), *run_b = unet_path_join(root, "lag");
    if (th_make_data(data, 6, 48, 5))
        return test_finish("train-overlap");
    UnetTrainConfig c;
    UnetError err = { 0 };
    UnetTrainSummary s;

    /* accumulation over an odd number of batches: the epoch ends on a
     * partial group (flush) */
    config(&c, data, run_a);
    c.epochs = 2;
    c.steps_per_epoch = 5;
    c.optimizer.accumulate = 2;
    c.loss_lag = -1;
    CHECK_MSG(th_run(&c, UNET_TRAIN_FIT, &a, &s, &err) == UNET_OK, "%s", err.message);
    config(&c, data, run_b);
    c.epochs = 2;
    c.steps_per_epoch = 5;
    c.optimizer.accumulate = 2;
    c.loss_lag = 1;
    CHECK_MSG(th_run(&c, UNET_TRAIN_FIT, &b, &s, &err) == UNET_OK, "%s", err.message);
    CHECK(a.steps == 6 && a.epochs == 2);
    CHECK_MSG(same_records(&a, &b), "the lagged run reports other losses");
    int rows_a, rows_b;
    char *ma = metrics_rows(run_a, &rows_a), *mb = metrics_rows(run_b, &rows_b);
    CHECK(ma && mb && rows_a == 1 + 6 + 2 && rows_a == rows_b);
    CHECK_MSG(ma && mb && strcmp(ma, mb) == 0, "metrics.csv differs:\n%s\n%s", ma ? ma : "",
              mb ? mb : "");
    free(ma);
    free(mb);

    /* divergence: the poisoned update stops both at the same step, with
     * the same message */
    Recorder *pr[2] = { &a, &b };
    char msg[2][UNET_ERROR_MESSAGE_MAX];
    for (int lag = 0; lag < 2; lag++) {
        config(&c, data, NULL);
        c.steps_per_epoch = 8;
        c.poison_step = 5;
        c.loss_lag = lag ? 1 : -1;
        memset(pr[lag], 0, sizeof *pr[lag]);
        UnetStatus st = th_run(&c, UNET_TRAIN_FIT, pr[lag], &s, &err);
        CHECK_MSG(st == UNET_ERR_NUMERIC, "status %s", unet_status_name(st));
        snprintf(msg[lag], sizeof msg[lag], "%s", err.message);
    }
    CHECK(a.steps == 4 && same_records(&a, &b));
    CHECK_MSG(strcmp(msg[0], msg[1]) == 0 && strstr(msg[0], "step 5"), "%s / %s", msg[0], msg[1]);

    /* a stop asked for by a STEP handler: with the lag the step already
     * queued still completes, and the checkpoint covers exactly the steps
     * reported */
    char *run_c = unet_path_join(root, "stop");
    config(&c, data, run_c);
    c.steps_per_epoch = 8;
    c.loss_lag = 1;
    memset(&b, 0, sizeof b);
    b.stop_at_step = 3;
    CHECK_MSG(th_run(&c, UNET_TRAIN_FIT, &b, &s, &err) == UNET_OK, "%s", err.message);
    char *last = unet_path_join(run_c, "last.safetensors");
    int epoch = -1, finite = 0;
    long long step = -1;
    CHECK(s.stopped && b.steps == 4 && b.step_no[3] == 4);
    CHECK(th_load_checkpoint(last, &epoch, &step, &finite) == 0 && step == b.steps && finite);
    CHECK(memcmp(a.step_loss, b.step_loss, 4 * sizeof(double)) == 0);
    free(last);

    free(run_c);
    free(run_a);
    free(run_b);
    free(data);
    free(root);
    return test_finish("train-overlap");
}
