/* cmd-init.c - `unet init`: a freshly initialised model written as a
 * checkpoint (He initialisation from --seed), ready for training or for
 * loading into PyTorch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "cli-model-options.h"
#include "commands.h"
#include "unet-config.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: unet init [model options] --out FILE.safetensors [--force]\n\n"
            "Builds a model, initialises its weights (He normal, from --seed) and writes them\n"
            "as a checkpoint: a safetensors file whose tensors are the PyTorch state_dict of\n"
            "the network, with the model config in its metadata.\n\n"
            "  -o, --out FILE   where to write (replaced atomically)\n"
            "  --force          replace FILE when it exists already\n\n");
    unet_cli_model_options_help(out);
}

int unet_cmd_init(int argc, char **argv)
{
    UnetCliModelOptions opts;
    unet_cli_model_options_init(&opts);
    const char *out = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = unet_cli_model_option_argv(&opts, "init", argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "unet init: %s needs a file name\n", a);
                return 2;
            }
            out = argv[++i];
        } else if (!strncmp(a, "--out=", 6)) {
            out = a + 6;
        } else {
            fprintf(stderr, "unet init: unexpected argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!out || !out[0]) {
        fprintf(stderr, "unet init: say where to write the checkpoint with --out FILE.safetensors\n");
        return 2;
    }
    UnetModelConfig cfg;
    int rc = unet_cli_model_options_finish(&opts, "init", &cfg);
    if (rc)
        return rc;
    struct stat sb;
    if (!force && stat(out, &sb) == 0) {
        fprintf(stderr, "unet init: %s exists already; pass --force to replace it\n", out);
        return 1;
    }

    UnetError err = { 0 };
    /* Initialisation and saving need no fast kernels: the reference backend
     * keeps this command independent of the machine. */
    UnetBackend *be = unet_backend_reference_new(&err);
    UnetModel *m = be ? unet_model_new(&cfg, be, &err) : NULL;
    UnetKeyValue meta[] = {
        { "epoch", "0" },
        { "step", "0" },
        { "created_by", "unet init " UNET_VERSION },
    };
    if (!m || unet_checkpoint_save(out, m, NULL, meta, sizeof meta / sizeof meta[0], &err)) {
        fprintf(stderr, "unet init: %s\n", err.message);
        unet_model_free(m);
        unet_backend_destroy(be);
        return 1;
    }
    unet_model_free(m);
    unet_backend_destroy(be);

    char *text = unet_checkpoint_describe(out, &err);
    if (!text) {
        fprintf(stderr, "unet init: wrote %s but cannot read it back: %s\n", out, err.message);
        return 1;
    }
    long long bytes = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
    printf("wrote %s (%.1f MiB)\n%s", out, (double)bytes / (1024.0 * 1024.0), text);
    free(text);
    return 0;
}
