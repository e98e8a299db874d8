/* cmd-weightmap.c - `unet weightmap`: the U-Net loss weight map of a mask. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "fileutil.h"
#include "image.h"
#include "weightmap-io.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: unet weightmap MASK --out FILE(.png|.npy) [OPTIONS]\n\n"
               "Computes the U-Net weight map w = w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2)) of MASK\n"
               "(Ronneberger et al. 2015, eq. 2): d1, d2 are the distances of each background pixel\n"
               "to the nearest and second-nearest cell, w_c balances the class frequencies.\n"
               ".png is colour-mapped (viridis, 0 to the largest value), .npy holds float32 [H,W].\n\n"
               "  --mask KIND            binary (non-zero = cell; cells = 8-connected components,\n"
               "                         default), classes (values are class ids 0..255) or\n"
               "                         instances (values are instance ids; touching instances\n"
               "                         get a carved border)\n"
               "  --w0 X                 border weight (default 10)\n"
               "  --sigma X              border width in pixels (default 5)\n"
               "  --class-balance MODE   max (w_c = max frequency / frequency, default), inverse\n"
               "                         (1 / frequency, pixel mean 1) or none\n"
               "  --d1 FILE, --d2 FILE   also write the distance maps (d2 computed exactly everywhere)\n"
               "  --class-weight FILE    also write w_c\n");
}

static int parse_float(const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

int unet_cmd_weightmap(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "out", required_argument, NULL, 'o' },
        { "mask", required_argument, NULL, 'm' },
        { "w0", required_argument, NULL, 'w' },
        { "sigma", required_argument, NULL, 's' },
        { "class-balance", required_argument, NULL, 'b' },
        { "d1", required_argument, NULL, '1' },
        { "d2", required_argument, NULL, '2' },
        { "class-weight", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    UnetWeightMapConfig cfg;
    unet_weightmap_config_default(&cfg);
    UnetMaskKind kind = UNET_MASK_BINARY;
    const char *out_path = NULL, *d1_path = NULL, *d2_path = NULL, *wc_path = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:m:w:s:b:1:2:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case '1': d1_path = optarg; break;
        case '2': d2_path = optarg; break;
        case 'c': wc_path = optarg; break;
        case 'm':
            if (unet_cli_mask_kind_parse(optarg, &kind)) {
                fprintf(stderr, "unet weightmap: --mask '%s': use binary, classes or instances\n", optarg);
                return 2;
            }
            break;
        case 'w':
            if (parse_float(optarg, 0.0f, 1e6f, &cfg.w0)) {
                fprintf(stderr, "unet weightmap: --w0 '%s' is not a number >= 0\n", optarg);
                return 2;
            }
            break;
        case 's':
            if (parse_float(optarg, 1e-3f, 1e4f, &cfg.sigma)) {
                fprintf(stderr, "unet weightmap: --sigma '%s' is not a number > 0\n", optarg);
                return 2;
            }
            break;
        case 'b': {
            UnetError e = { 0 };
            if (unet_class_balance_parse(optarg, &cfg.balance, &e)) {
                fprintf(stderr, "unet weightmap: --class-balance: %s\n", e.message);
                return 2;
            }
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default: /* ':' (no value) or an unknown option */
            return unet_cli_getopt_error("weightmap", c, argv, usage);
        }
    }
    if (argc - optind != 1 || !out_path) {
        fprintf(stderr, "unet weightmap: give one MASK and --out FILE\n\n");
        usage(stderr);
        return 2;
    }
    const char *mask_path = argv[optind];
    cfg.exact_d2 = d2_path != NULL;
    /* every output's folder must exist before the first one is written, so
     * a bad --d1/--d2/--class-weight does not leave the others behind */
    const char *outputs[4] = { out_path, d1_path, d2_path, wc_path };
    for (int i = 0; i < 4; i++) {
        if (!outputs[i])
            continue;
        char *dir = strdup(outputs[i]);
        if (!dir)
            return 1;
        dir[unet_path_basename(outputs[i]) - outputs[i]] = '\0';
        int ok = !dir[0] || unet_path_is_dir(dir);
        free(dir);
        if (!ok) {
            fprintf(stderr, "unet weightmap: cannot write %s: %s (the folder does not exist)\n", outputs[i],
                    strerror(ENOENT));
            return 1;
        }
    }

    UnetError err = { 0 };
    UnetLabels lab = { 0 };
    if (unet_labels_load(mask_path, 0, &lab, &err)) {
        fprintf(stderr, "unet weightmap: %s\n", err.message);
        return 1;
    }
    size_t n = (size_t)lab.width * lab.height;
    float *w = malloc(n * sizeof *w);
    float *d1 = d1_path ? malloc(n * sizeof *d1) : NULL;
    float *d2 = d2_path ? malloc(n * sizeof *d2) : NULL;
    float *wc = wc_path ? malloc(n * sizeof *wc) : NULL;
    int rc = 0;
    if (!w || (d1_path && !d1) || (d2_path && !d2) || (wc_path && !wc)) {
        fprintf(stderr, "unet weightmap: out of memory for %s (%d x %d)\n", mask_path, lab.width,
                lab.height);
        rc = 1;
        goto done;
    }
    UnetWeightMapOutputs outs = { w, wc, d1, d2, NULL, NULL };
    UnetWeightMapInfo info;
    if (unet_cli_weightmap(&cfg, kind, lab.data, lab.width, lab.height, &outs, &info, NULL, &err)) {
        fprintf(stderr, "unet weightmap: %s: %s\n", mask_path, err.message);
        rc = 1;
        goto done;
    }
    float shown = 0;
    const char *paths[4] = { out_path, d1_path, d2_path, wc_path };
    const float *maps[4] = { w, d1, d2, wc };
    for (int i = 0; i < 4 && !rc; i++)
        if (paths[i] && unet_cli_save_map(paths[i], maps[i], lab.width, lab.height,
                                          i == 0 ? &shown : NULL, &err)) {
            fprintf(stderr, "unet weightmap: %s\n", err.message);
            rc = 1;
        }
    if (!rc) {
        float lo = INFINITY, hi = 0;
        for (size_t i = 0; i < n; i++) {
            lo = w[i] < lo ? w[i] : lo;
            hi = w[i] > hi ? w[i] : hi;
        }
        printf("%s: %d x %d, %d cells, %d classes; class weights", mask_path, lab.width, lab.height,
               info.cells, info.classes);
        for (int k = 0; k < info.classes && k < 8; k++)
            printf(" %g", (double)info.class_weights[k]);
        printf("%s; weight %.4g..%.4g; wrote %s\n", info.classes > 8 ? " ..." : "", (double)lo,
               (double)hi, out_path);
    }
done:
    free(w); free(d1); free(d2); free(wc);
    unet_labels_free(&lab);
    return rc;
}
