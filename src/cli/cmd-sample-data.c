/* cmd-sample-data.c - `unet sample-data`: writes the synthetic EM-like dataset. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "commands.h"
#include "sample-data.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: unet sample-data --out DIR [--count N] [--size S] [--seed K]\n\n"
               "Writes a synthetic electron-microscopy-like dataset: DIR/images/NNN.png (8-bit grey cell\n"
               "tissue with membranes, organelles, blur, uneven light and noise) and DIR/masks/NNN.png\n"
               "(0 on membranes, 255 inside cells, like ISBI 2012). The same seed gives the same files.\n\n"
               "  --out DIR     output folder (created if missing)\n"
               "  --count N     number of pairs (default 30)\n"
               "  --size S      image side in pixels, %d..%d (default 256)\n"
               "  --seed K      random seed (default 1)\n",
            UNET_SAMPLE_DATA_MIN_SIZE, UNET_SAMPLE_DATA_MAX_SIZE);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void progress(int done, int total, void *user)
{
    (void)user;
    fprintf(stderr, "\rwriting pair %d of %d", done, total);
    if (done == total)
        fputc('\n', stderr);
}

int unet_cmd_sample_data(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "out", required_argument, NULL, 'o' },
        { "count", required_argument, NULL, 'n' },
        { "size", required_argument, NULL, 's' },
        { "seed", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    UnetSampleDataOptions opt;
    unet_sample_data_options_default(&opt);
    const char *out = NULL;
    long v;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":o:n:s:S:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'n':
            if (parse_long(optarg, 1, 100000, &v)) {
                fprintf(stderr, "unet sample-data: --count '%s' is not a number from 1 to 100000\n", optarg);
                return 2;
            }
            opt.count = (int)v;
            break;
        case 's':
            if (parse_long(optarg, UNET_SAMPLE_DATA_MIN_SIZE, UNET_SAMPLE_DATA_MAX_SIZE, &v)) {
                fprintf(stderr, "unet sample-data: --size '%s' is not a number from %d to %d\n", optarg,
                        UNET_SAMPLE_DATA_MIN_SIZE, UNET_SAMPLE_DATA_MAX_SIZE);
                return 2;
            }
            opt.size = (int)v;
            break;
        case 'S': {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, "unet sample-data: --seed '%s' is not a non-negative whole number\n", optarg);
                return 2;
            }
            opt.seed = s;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default: /* ':' (no value) or an unknown option */
            return unet_cli_getopt_error("sample-data", c, argv, usage);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "unet sample-data: unexpected argument '%s'\n\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "unet sample-data: --out DIR is required\n\n");
        usage(stderr);
        return 2;
    }
    UnetError err = { 0 };
    if (unet_sample_data_write(out, &opt, isatty(STDERR_FILENO) ? progress : NULL, NULL, &err) != UNET_OK) {
        fprintf(stderr, "unet sample-data: %s\n", err.message);
        return 1;
    }
    printf("wrote %d image/mask pairs of %d x %d pixels (seed %llu) to %s/images and %s/masks\n", opt.count,
           opt.size, opt.size, (unsigned long long)opt.seed, out, out);
    return 0;
}
