/* main.c - `unet`, the headless front end: dispatches to one subcommand. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "unet-config.h"

int unet_cli_getopt_error(const char *cmd, int c, char *const *argv, void (*usage)(FILE *))
{
    if (c == ':') {
        fprintf(stderr, "unet %s: option '%s' needs a value\n", cmd, argv[optind - 1]);
        return 2;
    }
    fprintf(stderr, "unet %s: unknown option '%s'\n\n", cmd, argv[optind - 1]);
    usage(stderr);
    return 2;
}

int unet_cli_bad_value(const char *cmd, char *const *argv)
{
    /* "--opt=value" is one argument, "--opt value" two */
    fprintf(stderr, "unet %s: '%s' is not a valid value for %s\n", cmd, optarg,
            argv[optind - 1 - (optarg == argv[optind - 1])]);
    return 2;
}

static const UnetCommand commands[] = {
    { "devices", unet_cmd_devices, "list the CPU and CUDA devices this build can use" },
    { "info", unet_cmd_info, "show a model's layers, valid sizes, parameters and memory" },
    { "init", unet_cmd_init, "write a freshly initialised model as a checkpoint" },
    { "sample-data", unet_cmd_sample_data, "write a synthetic EM-like dataset (images/ + masks/)" },
    { "dataset", unet_cmd_dataset, "check a dataset folder: 'unet dataset check DIR'" },
    { "tiles", unet_cmd_tiles, "draw the overlap-tile grid of an image" },
    { "predict", unet_cmd_predict, "segment images with a checkpoint (masks, probabilities, overlays)" },
    { "evaluate", unet_cmd_evaluate, "score a checkpoint on a dataset (Dice, IoU, pixel error, V_rand, V_info)" },
    { "bench", unet_cmd_bench, "time training steps, forward passes and prediction" },
    { "weightmap", unet_cmd_weightmap, "U-Net loss weight map of a mask (.png or .npy)" },
    { "augment", unet_cmd_augment, "write augmented image/mask pairs with their weight maps" },
    { "train", unet_cmd_train, "train a model on a folder of image/mask pairs (a run folder)" },
    { "lr-test", unet_cmd_lr_test, "learning-rate range test: loss against an exponential sweep" },
    { NULL, NULL, NULL },
};

static void print_usage(FILE *out)
{
    fprintf(out, "usage: unet COMMAND [OPTIONS]\n\n"
                 "U-Net Workbench %s: train and apply U-Net segmentation models.\n\n"
                 "commands:\n", UNET_VERSION);
    for (const UnetCommand *c = commands; c->name; c++)
        fprintf(out, "  %-14s %s\n", c->name, c->summary);
    fprintf(out, "\nRun 'unet COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("unet %s\n", UNET_VERSION);
        return 0;
    }
    for (const UnetCommand *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name))
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "unet: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
