/* cmd-info.c - `unet info`: a model's layers, sizes, parameter count and
 * memory needs, from model options or a config file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "checkpoint.h"
#include "safetensors.h"

#include "cli-model-options.h"
#include "commands.h"
#include "model.h"

#define DEFAULT_SIZE 572

static void usage(FILE *out)
{
    fprintf(out,
            "usage: unet info [CHECKPOINT.safetensors | CONFIG.json | model options] [--size S] [--batch N] [--json]\n\n"
            "Shows a model: its layers with their output shapes for an S x S input, the valid\n"
            "input sides near S (every 2x2 pooling must see an even side, valid convolutions\n"
            "must keep a positive side), the parameter count and the memory of a training\n"
            "step. CONFIG.json holds a model config ({\"model\": \"unet\", \"base\": 64, ...}, as\n"
            "stored in checkpoints) or a run config with such an object under \"model\".\n\n"
            "  --size S     input side (default %d; the nearest valid side is used)\n"
            "  --batch N    batch size of the memory estimate (default 1)\n"
            "  --json       one JSON object on stdout\n\n",
            DEFAULT_SIZE);
    unet_cli_model_options_help(out);
}

/* Up to two valid sides below S, S itself when valid, up to two above. */
static int valid_sides_near(const UnetModelConfig *cfg, int s, int *sides)
{
    int n = 0, below[2] = { -1, -1 }, above[2] = { -1, -1 }, b, a;
    unet_model_valid_input_neighbours(cfg, s - 1, &b, &a);
    below[0] = b;
    if (b > 1) {
        unet_model_valid_input_neighbours(cfg, b - 1, &b, &a);
        below[1] = b;
    }
    unet_model_valid_input_neighbours(cfg, s + 1, &b, &a);
    above[0] = a;
    if (a > 0) {
        unet_model_valid_input_neighbours(cfg, a + 1, &b, &a);
        above[1] = a;
    }
    for (int k = 1; k >= 0; k--)
        if (below[k] > 0)
            sides[n++] = below[k];
    if (unet_model_output_size(cfg, s) > 0)
        sides[n++] = s;
    for (int k = 0; k < 2; k++)
        if (above[k] > 0)
            sides[n++] = above[k];
    return n;
}

/* "124.1 MB", or "12.3 kB" for the small ones */
static const char *size_text(size_t bytes, char *buf, size_t len)
{
    if (bytes >= 100000)
        snprintf(buf, len, "%.1f MB", (double)bytes / 1e6);
    else
        snprintf(buf, len, "%.1f kB", (double)bytes / 1e3);
    return buf;
}

/* The checkpoint's __metadata__ as a JSON object; values that are JSON text
 * themselves (configs, losses) are embedded as objects, others as strings. */
static json_object *checkpoint_metadata_json(const char *path, UnetError *err)
{
    UnetSafetensors *st = NULL;
    if (unet_safetensors_open(&st, path, err) != UNET_OK)
        return NULL;
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < unet_safetensors_metadata_count(st); i++) {
        const char *key = unet_safetensors_metadata_key(st, i);
        const char *value = unet_safetensors_metadata(st, key);
        json_object *parsed = value ? json_tokener_parse(value) : NULL;
        if (!parsed || !(json_object_is_type(parsed, json_type_object) ||
                         json_object_is_type(parsed, json_type_array))) {
            json_object_put(parsed);
            parsed = json_object_new_string(value ? value : "");
        }
        json_object_object_add(o, key, parsed);
    }
    unet_safetensors_close(st);
    return o;
}

int unet_cli_info_report(const UnetModelConfig *cfg, const char *source, const char *checkpoint,
                         int size, int batch, int json)
{
    UnetError err = { 0 };
    UnetModel *m = unet_model_new(cfg, NULL, &err);
    if (!m) {
        fprintf(stderr, "unet info: %s\n", err.message);
        return 1;
    }
    int in = 0, out = 0;
    if (unet_model_valid_input_size(cfg, size, &in, &out) != 0) {
        fprintf(stderr, "unet info: the %s model has no valid input side near %d\n",
                unet_arch_name(cfg->arch), size);
        unet_model_free(m);
        return 1;
    }
    UnetMemoryEstimate est;
    if (unet_model_memory_estimate(cfg, batch, in, in, &est, &err) != UNET_OK) {
        fprintf(stderr, "unet info: %s\n", err.message);
        unet_model_free(m);
        return 1;
    }
    size_t n_layers = 0;
    UnetLayerInfo *layers = unet_model_layers(m, in, in, &n_layers);
    if (!layers) {
        fprintf(stderr, "unet info: out of memory\n");
        unet_model_free(m);
        return 1;
    }
    int sides[5];
    const int n_sides = valid_sides_near(cfg, size, sides);
    const size_t params = unet_model_param_count(m);
    const size_t buffers = unet_model_buffers(m)->total;
    /* one step keeps params, grads, the optimizer state, the activations and
     * the caller's input, target, weight map and dlogits */
    const size_t target_bytes = est.logits_bytes / (size_t)cfg->classes;
    const size_t io = est.input_bytes + 2 * target_bytes;
    const size_t sgd = 3 * est.param_bytes + est.buffer_bytes + est.train_peak_bytes + io;
    const size_t adam = sgd + est.param_bytes;

    if (json) {
        json_object *o = json_object_new_object();
        char *cfg_json = unet_model_config_to_json(cfg);
        json_object_object_add(o, "model", json_tokener_parse(cfg_json));
        free(cfg_json);
        if (source)
            json_object_object_add(o, "source", json_object_new_string(source));
        json_object_object_add(o, "parameters", json_object_new_int64((int64_t)params));
        json_object_object_add(o, "buffers", json_object_new_int64((int64_t)buffers));
        json_object_object_add(o, "requested_size", json_object_new_int(size));
        json_object_object_add(o, "input_size", json_object_new_int(in));
        json_object_object_add(o, "output_size", json_object_new_int(out));
        json_object *vs = json_object_new_array();
        for (int k = 0; k < n_sides; k++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "input", json_object_new_int(sides[k]));
            json_object_object_add(e, "output",
                                   json_object_new_int(unet_model_output_size(cfg, sides[k])));
            json_object_array_add(vs, e);
        }
        json_object_object_add(o, "valid_sizes", vs);
        json_object *ls = json_object_new_array();
        for (size_t i = 0; i < n_layers; i++) {
            json_object *e = json_object_new_object(), *shape = json_object_new_array();
            json_object_object_add(e, "name", json_object_new_string(layers[i].name));
            json_object_object_add(e, "kind", json_object_new_string(layers[i].kind));
            json_object_array_add(shape, json_object_new_int(layers[i].c));
            json_object_array_add(shape, json_object_new_int(layers[i].h));
            json_object_array_add(shape, json_object_new_int(layers[i].w));
            json_object_object_add(e, "shape", shape);
            json_object_object_add(e, "params", json_object_new_int64((int64_t)layers[i].params));
            json_object_array_add(ls, e);
        }
        json_object_object_add(o, "layers", ls);
        json_object *mem = json_object_new_object();
        json_object_object_add(mem, "batch", json_object_new_int(batch));
        json_object_object_add(mem, "param_bytes", json_object_new_int64((int64_t)est.param_bytes));
        json_object_object_add(mem, "grad_bytes", json_object_new_int64((int64_t)est.param_bytes));
        json_object_object_add(mem, "buffer_bytes",
                               json_object_new_int64((int64_t)est.buffer_bytes));
        json_object_object_add(mem, "activation_train_peak_bytes",
                               json_object_new_int64((int64_t)est.train_peak_bytes));
        json_object_object_add(mem, "activation_infer_peak_bytes",
                               json_object_new_int64((int64_t)est.infer_peak_bytes));
        json_object_object_add(mem, "sgd_step_bytes", json_object_new_int64((int64_t)sgd));
        json_object_object_add(mem, "adam_step_bytes", json_object_new_int64((int64_t)adam));
        json_object_object_add(o, "memory", mem);
        if (checkpoint) {
            json_object *ck = checkpoint_metadata_json(checkpoint, &err);
            if (!ck) {
                fprintf(stderr, "unet info: %s\n", err.message);
                json_object_put(o);
                free(layers);
                unet_model_free(m);
                return 1;
            }
            json_object_object_add(o, "checkpoint", ck);
        }
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        printf("model: %s (in_channels %d, classes %d", unet_arch_name(cfg->arch),
               cfg->in_channels, cfg->classes);
        if (cfg->arch != UNET_ARCH_FCN)
            printf(", depth %d", cfg->depth);
        printf(", base %d", cfg->base);
        if (cfg->arch == UNET_ARCH_UNET)
            printf(", padding %s, norm %s, upsample %s", unet_padding_name(cfg->padding),
                   unet_norm_name(cfg->norm), unet_upsample_name(cfg->upsample));
        printf(", activation %s", unet_activation_name(cfg->activation));
        if (cfg->activation == UNET_ACT_LEAKY)
            printf(" %g", (double)cfg->leaky_slope);
        printf(", seed %llu)\n", (unsigned long long)cfg->seed);
        if (source)
            printf("source: %s\n", source);
        if (checkpoint) {
            char *about = unet_checkpoint_describe(checkpoint, &err);
            if (!about) {
                fprintf(stderr, "unet info: %s\n", err.message);
                free(layers);
                unet_model_free(m);
                return 1;
            }
            printf("%s", about);
            if (about[0] && about[strlen(about) - 1] != '\n')
                printf("\n");
            free(about);
        }
        if (in != size)
            printf("note: %d is not a valid input side for this model; showing the nearest, %d\n",
                   size, in);
        printf("input: %dx%d -> output %dx%d\n", in, in, out, out);
        printf("valid input sides near %d:", size);
        for (int k = 0; k < n_sides; k++)
            printf("%s %d -> %d", k ? "," : "", sides[k], unet_model_output_size(cfg, sides[k]));
        printf("\n\n  %-26s %-40s %-18s %10s\n", "layer", "kind", "output (CxHxW)", "params");
        for (size_t i = 0; i < n_layers; i++) {
            char shape[48];
            snprintf(shape, sizeof shape, "%dx%dx%d", layers[i].c, layers[i].h, layers[i].w);
            printf("  %-26s %-40s %-18s %10zu\n", layers[i].name, layers[i].kind, shape,
                   layers[i].params);
        }
        char a[32], b[32];
        printf("\nmemory (batch %d, %dx%d, float32):\n", batch, in, in);
        printf("  parameters          %12s, gradients %s", size_text(est.param_bytes, a, sizeof a),
               size_text(est.param_bytes, b, sizeof b));
        if (buffers)
            printf(", running statistics %s", size_text(est.buffer_bytes, a, sizeof a));
        printf("\n  optimizer state     %12s (SGD momentum), %s (Adam)\n",
               size_text(est.param_bytes, a, sizeof a), size_text(2 * est.param_bytes, b, sizeof b));
        printf("  activations         %12s training step peak, %s inference\n",
               size_text(est.train_peak_bytes, a, sizeof a),
               size_text(est.infer_peak_bytes, b, sizeof b));
        printf("  one training step   %12s with SGD, %s with Adam\n", size_text(sgd, a, sizeof a),
               size_text(adam, b, sizeof b));
        printf("parameters: %zu\n", params);
    }
    free(layers);
    unet_model_free(m);
    return 0;
}

static int parse_int(const char *cmd, const char *name, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "unet %s: %s '%s' is not a whole number between %ld and %ld\n", cmd, name,
                s ? s : "", lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int unet_cmd_info(int argc, char **argv)
{
    UnetCliModelOptions opts;
    unet_cli_model_options_init(&opts);
    const char *file = NULL;
    int size = DEFAULT_SIZE, batch = 1, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = unet_cli_model_option_argv(&opts, "info", argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--size") || !strncmp(a, "--size=", 7)) {
            const char *v = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL);
            if (parse_int("info", "--size", v, 1, 1 << 16, &size))
                return 2;
        } else if (!strcmp(a, "--batch") || !strncmp(a, "--batch=", 8)) {
            const char *v = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
            if (parse_int("info", "--batch", v, 1, 4096, &batch))
                return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "unet info: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        } else if (file) {
            fprintf(stderr, "unet info: give one CONFIG file at most ('%s' and '%s')\n", file, a);
            return 2;
        } else {
            file = a;
        }
    }
    UnetModelConfig cfg;
    const char *checkpoint = NULL;
    if (file) {
        if (unet_cli_model_options_count(&opts)) {
            fprintf(stderr, "unet info: give either a CONFIG file or model options, not both\n");
            return 2;
        }
        UnetError err = { 0 };
        int is_checkpoint = 0;
        if (unet_model_config_from_file(file, &cfg, &is_checkpoint, &err) != UNET_OK) {
            fprintf(stderr, "unet info: %s\n", err.message);
            return 1;
        }
        if (is_checkpoint)
            checkpoint = file;
    } else {
        int rc = unet_cli_model_options_finish(&opts, "info", &cfg);
        if (rc)
            return rc;
    }
    return unet_cli_info_report(&cfg, file, checkpoint, size, batch, json);
}
