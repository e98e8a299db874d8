/* cmd-augment.c - `unet augment`: writes augmented image/mask pairs and their weight maps. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "commands.h"
#include "fileutil.h"
#include "image.h"
#include "weightmap-io.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: unet augment IMAGE MASK --out DIR [OPTIONS]\n\n"
               "Writes COUNT augmented versions of IMAGE and MASK, transformed together (bilinear for\n"
               "the image, nearest for the mask, reflected borders), each with the weight map of its\n"
               "augmented mask. Sample K uses seed SEED + K, so any of them can be replayed. Files:\n"
               "DIR/NNNN-image.png (.npy for float images), -mask.png, -weight.png (viridis), -weight.npy,\n"
               "-record.json (every random choice made) and, with --displacement, -displacement.npy\n"
               "([2,H,W]: source x and y minus output x and y, for overlays).\n"
               "Noise and brightness are relative to the image's own range (255 for 8-bit, 65535 for\n"
               "16-bit); the config's intensity_max is replaced by it.\n\n"
               "  --config FILE     pipeline as JSON (default: the notebook's pipeline; see --print-config)\n"
               "  --paper           the U-Net paper's pipeline instead (flips/rotations + 3x3 grid elastic)\n"
               "  --seed K          first seed (default 0)\n"
               "  --count N         number of samples (default 4)\n"
               "  --mask KIND       binary (default), classes or instances; how the weight map reads masks\n"
               "  --no-weightmap    skip the weight maps\n"
               "  --displacement    also write the displacement field\n"
               "  --print-config    print the pipeline as JSON and exit\n");
}

static int parse_u64(const char *s, unsigned long long hi, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > hi)
        return -1;
    *out = v;
    return 0;
}

static char *out_name(const char *dir, unsigned long long k, const char *suffix)
{
    char name[64];
    snprintf(name, sizeof name, "%04llu-%s", k, suffix);
    return unet_path_join(dir, name);
}

/* One sample: sample, apply, write its files. */
static int one_sample(const char *dir, unsigned long long k, uint64_t seed,
                      const UnetAugmentConfig *cfg, const UnetImage *img, const UnetLabels *lab,
                      UnetMaskKind kind, int weightmap, int displacement, UnetScratch *sa,
                      UnetScratch *sw)
{
    UnetError err = { 0 };
    UnetAugmentRecord rec;
    int rc = 0;
    if (unet_augment_sample(&rec, cfg, seed, img->width, img->height, &err)) {
        fprintf(stderr, "unet augment: %s\n", err.message);
        return 1;
    }
    size_t n = (size_t)rec.out_w * rec.out_h;
    UnetImage out = { 0 };
    UnetLabels mout = { 0 };
    float *w = NULL, *disp = NULL;
    char *path = NULL;
    if (unet_image_alloc(&out, rec.out_w, rec.out_h, img->channels, &err) ||
        unet_labels_alloc(&mout, rec.out_w, rec.out_h, &err)) {
        fprintf(stderr, "unet augment: %s\n", err.message);
        rc = 1;
        goto done;
    }
    if (unet_augment_apply(&rec, img->data, img->channels, lab->data, NULL, out.data, mout.data,
                           NULL, sa, &err)) {
        fprintf(stderr, "unet augment: %s\n", err.message);
        rc = 1;
        goto done;
    }
    int is_float = img->sample_type == UNET_SAMPLE_FLOAT || img->channels > 4;
    path = out_name(dir, k, is_float ? "image.npy" : "image.png");
    if (is_float ? unet_image_save_npy(path, &out, &err)
                 : unet_image_save_png(path, &out, img->max_value > 255.0f ? 16 : 8, &err))
        goto fail;
    free(path);
    path = out_name(dir, k, "mask.png");
    if (unet_labels_save_png(path, &mout, &err))
        goto fail;
    if (weightmap) {
        UnetWeightMapConfig wcfg;
        unet_weightmap_config_default(&wcfg);
        w = malloc(n * sizeof *w);
        UnetWeightMapOutputs wo = { w, NULL, NULL, NULL, NULL, NULL };
        if (!w) {
            unet_error_set(&err, UNET_ERR_NOMEM, "out of memory for a weight map");
            goto fail;
        }
        if (unet_cli_weightmap(&wcfg, kind, mout.data, rec.out_w, rec.out_h, &wo, NULL, sw, &err))
            goto fail;
        free(path);
        path = out_name(dir, k, "weight.npy");
        if (unet_cli_save_map(path, w, rec.out_w, rec.out_h, NULL, &err))
            goto fail;
        free(path);
        path = out_name(dir, k, "weight.png");
        if (unet_cli_save_map(path, w, rec.out_w, rec.out_h, NULL, &err))
            goto fail;
    }
    if (displacement) {
        disp = malloc(2 * n * sizeof *disp);
        if (!disp) {
            unet_error_set(&err, UNET_ERR_NOMEM, "out of memory for a displacement field");
            goto fail;
        }
        if (unet_augment_source_coords(&rec, disp, disp + n, &err))
            goto fail;
        for (size_t i = 0; i < n; i++) {
            disp[i] -= (float)(i % rec.out_w);
            disp[n + i] -= (float)(i / rec.out_w);
        }
        free(path);
        path = out_name(dir, k, "displacement.npy");
        int shape[3] = { 2, rec.out_h, rec.out_w };
        if (unet_npy_save(path, disp, 3, shape, &err))
            goto fail;
    }
    {
        char *json = unet_augment_record_to_json(&rec);
        free(path);
        path = out_name(dir, k, "record.json");
        if (!json) {
            unet_error_set(&err, UNET_ERR_NOMEM, "out of memory for the record");
            goto fail;
        }
        UnetStatus st = unet_write_buffer_atomic(path, json, strlen(json), &err);
        free(json);
        if (st)
            goto fail;
    }
    printf("%04llu: seed %llu, %d transforms, %d x %d\n", k, (unsigned long long)seed, rec.count,
           rec.out_w, rec.out_h);
    goto done;
fail:
    fprintf(stderr, "unet augment: %s\n", err.message);
    rc = 1;
done:
    free(path);
    free(w);
    free(disp);
    unet_image_free(&out);
    unet_labels_free(&mout);
    return rc;
}

int unet_cmd_augment(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "out", required_argument, NULL, 'o' },
        { "config", required_argument, NULL, 'c' },
        { "paper", no_argument, NULL, 'p' },
        { "seed", required_argument, NULL, 's' },
        { "count", required_argument, NULL, 'n' },
        { "mask", required_argument, NULL, 'm' },
        { "no-weightmap", no_argument, NULL, 'W' },
        { "displacement", no_argument, NULL, 'd' },
        { "print-config", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL, *config = NULL;
    int paper = 0, weightmap = 1, displacement = 0, print = 0;
    unsigned long long seed = 0, count = 4;
    UnetMaskKind kind = UNET_MASK_BINARY;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:c:ps:n:m:WdPh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'c': config = optarg; break;
        case 'p': paper = 1; break;
        case 'W': weightmap = 0; break;
        case 'd': displacement = 1; break;
        case 'P': print = 1; break;
        case 's':
            if (parse_u64(optarg, ~0ull, &seed)) {
                fprintf(stderr, "unet augment: --seed '%s' is not a non-negative integer\n", optarg);
                return 2;
            }
            break;
        case 'n':
            if (parse_u64(optarg, 100000, &count) || count < 1) {
                fprintf(stderr, "unet augment: --count '%s' is not between 1 and 100000\n", optarg);
                return 2;
            }
            break;
        case 'm':
            if (unet_cli_mask_kind_parse(optarg, &kind)) {
                fprintf(stderr, "unet augment: --mask '%s': use binary, classes or instances\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default: /* ':' (no value) or an unknown option */
            return unet_cli_getopt_error("augment", c, argv, usage);
        }
    }
    if (config && paper) {
        fprintf(stderr, "unet augment: give --config or --paper, not both\n");
        return 2;
    }
    UnetError err = { 0 };
    UnetAugmentConfig cfg;
    if (paper)
        unet_augment_config_paper(&cfg);
    else
        unet_augment_config_default(&cfg);
    if (config && unet_augment_config_load(&cfg, config, &err)) {
        fprintf(stderr, "unet augment: %s\n", err.message);
        return 1;
    }
    if (print) {
        char *json = unet_augment_config_to_json(&cfg);
        if (!json) {
            fprintf(stderr, "unet augment: out of memory\n");
            return 1;
        }
        printf("%s\n", json);
        free(json);
        return 0;
    }
    if (argc - optind != 2 || !dir) {
        fprintf(stderr, "unet augment: give IMAGE, MASK and --out DIR\n\n");
        usage(stderr);
        return 2;
    }
    const char *image_path = argv[optind], *mask_path = argv[optind + 1];
    UnetImage img = { 0 };
    UnetLabels lab = { 0 };
    int rc = 0;
    if (unet_image_load(image_path, &img, &err) || unet_labels_load(mask_path, 0, &lab, &err)) {
        fprintf(stderr, "unet augment: %s\n", err.message);
        rc = 1;
        goto done;
    }
    if (img.width != lab.width || img.height != lab.height) {
        fprintf(stderr, "unet augment: %s is %d x %d but %s is %d x %d; they must match\n",
                image_path, img.width, img.height, mask_path, lab.width, lab.height);
        rc = 1;
        goto done;
    }
    cfg.intensity_max = img.max_value > 0.0f ? img.max_value : 1.0f;
    if (unet_mkdir_p(dir, &err)) {
        fprintf(stderr, "unet augment: %s\n", err.message);
        rc = 1;
        goto done;
    }
    UnetScratch sa = { 0 }, sw = { 0 };
    for (unsigned long long k = 0; k < count && !rc; k++)
        rc = one_sample(dir, k, (uint64_t)(seed + k), &cfg, &img, &lab, kind, weightmap,
                        displacement, &sa, &sw);
    unet_scratch_free(&sa);
    unet_scratch_free(&sw);
done:
    unet_image_free(&img);
    unet_labels_free(&lab);
    return rc;
}
