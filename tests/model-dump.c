/* model-dump.c - helper of tests/test_torch_models.py: builds a model from a
 * config JSON on the reference backend, runs one training step's forward,
 * loss and backward on seeded data and writes every array as raw float32
 * (params, buffers before/after, x, target, weight, logits, loss, dlogits,
 * grads) into a directory for the PyTorch twin to compare.
 *
 *   model-dump OUTDIR CONFIG_JSON N SIZE SEED [WEIGHTED] */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "test-common.h"

static int save(const char *dir, const char *name, const float *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(v, sizeof(float), n, f) != n) {
        fprintf(stderr, "model-dump: cannot write %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

static int save_tensor(UnetBackend *be, const char *dir, const char *name, const UnetTensor *t)
{
    size_t n = unet_tensor_numel(t);
    float *h = malloc(n * sizeof(float));
    be->tensor_download(be, h, t);
    int rc = save(dir, name, h, n);
    free(h);
    return rc;
}

static int save_buffer(UnetBackend *be, const char *dir, const char *name, const float *buf,
                       size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    if (n)
        be->buffer_download(be, h, buf, n);
    int rc = save(dir, name, h, n);
    free(h);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: model-dump OUTDIR CONFIG_JSON N SIZE SEED [WEIGHTED]\n");
        return 2;
    }
    const char *dir = argv[1];
    const int n = atoi(argv[3]), size = atoi(argv[4]);
    const uint64_t seed = strtoull(argv[5], NULL, 10);
    const int weighted = argc > 6 && atoi(argv[6]);
    UnetError err = { 0 };
    UnetModelConfig cfg;
    if (unet_model_config_from_json(&cfg, argv[2], &err) != UNET_OK) {
        fprintf(stderr, "model-dump: %s\n", err.message);
        return 2;
    }
    mkdir(dir, 0755);
    UnetBackend *be = unet_backend_reference_new(&err);
    UnetModel *m = be ? unet_model_new(&cfg, be, &err) : NULL;
    const int out = unet_model_output_size(&cfg, size);
    if (!m || out < 1) {
        fprintf(stderr, "model-dump: %s\n", m ? "invalid size" : err.message);
        return 1;
    }
    const int K = cfg.classes;
    TestRng rng;
    test_rng_seed(&rng, seed);
    UnetTensor x, target, weight, loss, dlogits, *logits;
    be->tensor_init(be, &x, n, cfg.in_channels, size, size);
    be->tensor_init(be, &target, n, 1, out, out);
    be->tensor_init(be, &weight, n, 1, out, out);
    be->tensor_init(be, &loss, 1, 1, 1, 1);
    be->tensor_init(be, &dlogits, n, K, out, out);
    size_t nx = unet_tensor_numel(&x), nt = unet_tensor_numel(&target);
    float *h = malloc((nx > nt ? nx : nt) * sizeof(float));
    test_fill_uniform(&rng, h, nx, -1.0f, 1.0f);
    be->tensor_upload(be, &x, h);
    for (size_t i = 0; i < nt; i++)
        h[i] = (float)(int)test_rng_uniform(&rng, 0.0f, (float)(K == 1 ? 2 : K) - 1e-3f);
    be->tensor_upload(be, &target, h);
    test_fill_uniform(&rng, h, nt, 0.5f, 2.0f);
    be->tensor_upload(be, &weight, h);
    free(h);

    const UnetParamTable *pt = unet_model_params(m), *bt = unet_model_buffers(m);
    int rc = save_buffer(be, dir, "params", unet_model_param_arena(m), pt->total);
    rc |= save_buffer(be, dir, "buffers", unet_model_buffer_arena(m), bt->total);
    if (unet_model_forward(m, &x, &logits, 1, &err) != UNET_OK ||
        unet_model_loss(m, logits, &target, weighted ? &weight : NULL, NULL, UNET_LOSS_DEFAULT,
                        1.0f, &loss, &dlogits, &err) != UNET_OK) {
        fprintf(stderr, "model-dump: %s\n", err.message);
        return 1;
    }
    rc |= save_tensor(be, dir, "logits", logits);
    if (unet_model_backward(m, &dlogits, &err) != UNET_OK) {
        fprintf(stderr, "model-dump: %s\n", err.message);
        return 1;
    }
    rc |= save_tensor(be, dir, "x", &x);
    rc |= save_tensor(be, dir, "target", &target);
    rc |= save_tensor(be, dir, "weight", &weight);
    rc |= save_tensor(be, dir, "loss", &loss);
    rc |= save_buffer(be, dir, "grads", unet_model_grad_arena(m), pt->total);
    rc |= save_buffer(be, dir, "buffers_after", unet_model_buffer_arena(m), bt->total);
    FILE *f = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/names.txt", dir);
    if (!(f = fopen(path, "w")))
        return 1;
    for (size_t i = 0; i < pt->len; i++)
        fprintf(f, "param %s %zu\n", pt->items[i].name, pt->items[i].count);
    for (size_t i = 0; i < bt->len; i++)
        fprintf(f, "buffer %s %zu\n", bt->items[i].name, bt->items[i].count);
    fprintf(f, "num_batches_tracked %lld\n", (long long)unet_model_num_batches_tracked(m));
    rc |= fclose(f) != 0;

    be->tensor_release(be, &x);
    be->tensor_release(be, &target);
    be->tensor_release(be, &weight);
    be->tensor_release(be, &loss);
    be->tensor_release(be, &dlogits);
    unet_model_free(m);
    unet_backend_destroy(be);
    return rc;
}
