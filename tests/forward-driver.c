/* forward-driver.c - test helper for the PyTorch parity script: loads a
 * checkpoint into a model, runs one forward pass on a raw float32 NCHW input
 * and writes the logits as raw float32.
 *
 *   forward-driver CKPT INPUT.raw N C H W OUTPUT.raw [--config JSON]
 *                  [--save COPY.safetensors]
 *
 * Prints the output shape "N C H W" on stdout. --config builds the model from
 * that JSON instead of the checkpoint's metadata (files written by PyTorch);
 * --save writes the loaded model back out (a round trip through our writer).
 * Runs on the reference backend, the readable ground truth. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

static int fail(const char *what, const UnetError *err)
{
    fprintf(stderr, "forward-driver: %s: %s\n", what, err ? err->message : "");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: forward-driver CKPT INPUT.raw N C H W OUTPUT.raw [--config JSON] "
                        "[--save PATH]\n");
        return 2;
    }
    const char *ckpt = argv[1], *in_path = argv[2], *out_path = argv[7];
    int n = atoi(argv[3]), c = atoi(argv[4]), h = atoi(argv[5]), w = atoi(argv[6]);
    const char *config = NULL, *save = NULL;
    for (int i = 8; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config"))
            config = argv[i + 1];
        else if (!strcmp(argv[i], "--save"))
            save = argv[i + 1];
    }
    UnetError err = { 0 };
    UnetModelConfig cfg;
    if (config ? unet_model_config_from_json(&cfg, config, &err)
               : unet_checkpoint_read_config(ckpt, &cfg, &err))
        return fail("model config", &err);
    UnetBackend *be = unet_backend_reference_new(&err);
    if (!be)
        return fail("backend", &err);
    UnetModel *m = unet_model_new(&cfg, be, &err);
    if (!m)
        return fail("model", &err);
    /* Other weights first, so only a real load can give the file's outputs. */
    if (unet_model_init_params(m, cfg.seed + 0x5eed, &err))
        return fail("init", &err);
    if (unet_checkpoint_load(ckpt, m, NULL, NULL, &err))
        return fail("load", &err);
    if (save && unet_checkpoint_save(save, m, NULL, NULL, 0, &err))
        return fail("save", &err);

    size_t count = (size_t)n * c * h * w;
    float *x = malloc(count * sizeof *x);
    FILE *f = fopen(in_path, "rb");
    if (!f || fread(x, sizeof *x, count, f) != count)
        return fail("reading the input", NULL);
    fclose(f);
    UnetTensor xt = { 0 }, *logits = NULL;
    if (be->tensor_init(be, &xt, n, c, h, w) || be->tensor_upload(be, &xt, x))
        return fail("input tensor", &be->error);
    if (unet_model_forward(m, &xt, &logits, 0, &err))
        return fail("forward", &err);
    size_t on = unet_tensor_numel(logits);
    float *y = malloc(on * sizeof *y);
    if (be->tensor_download(be, y, logits))
        return fail("download", &be->error);
    f = fopen(out_path, "wb");
    if (!f || fwrite(y, sizeof *y, on, f) != on || fclose(f))
        return fail("writing the output", NULL);
    printf("%d %d %d %d\n", logits->n, logits->c, logits->h, logits->w);
    free(x);
    free(y);
    be->tensor_release(be, &xt);
    unet_model_free(m);
    unet_backend_destroy(be);
    return 0;
}
