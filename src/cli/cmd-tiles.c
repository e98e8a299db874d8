/* cmd-tiles.c - `unet tiles`: draws the overlap-tile grid of an image. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "checkpoint.h"
#include "image.h"
#include "model.h"
#include "tiling.h"

typedef struct TilesArgs {
    const char *image;
    const char *out;
    int input_size, output_size; /* 0 when not given */
    int highlight;
    int max_side;
    const char *model;  /* config or checkpoint giving the geometry */
    int size;           /* requested input side with --model */
} TilesArgs;

static void usage(FILE *f)
{
    fprintf(f, "usage: unet tiles IMAGE (--model CONFIG|CKPT [--size N] | --input-size N --output-size M)\n"
               "                  --out FILE.png [--highlight I] [--max-side PX]\n\n"
               "Draws how IMAGE is cut into network tiles (overlap-tile, Ronneberger et al. Fig. 2): green\n"
               "output-tile grid, yellow dashed mirror lines at the image edges, the mirrored context dimmed,\n"
               "and tile I (default 0) with its output area shaded red and its input area outlined blue.\n\n"
               "  --model FILE      model config (.json), run config.json or checkpoint: the tile\n"
               "                    sizes follow from its geometry\n"
               "  --size N          with --model: input tile side, the nearest valid one is used\n"
               "                    (default 572)\n"
               "  --input-size N    network input tile side (e.g. 572)\n"
               "  --output-size M   network output tile side (e.g. 388); N - M must be even\n"
               "  --out FILE.png    picture to write\n"
               "  --highlight I     tile to highlight, -1 for none (default 0)\n"
               "  --max-side PX     scale the picture down to at most PX pixels (default 2048, 0: full size)\n");
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* The tile sizes: from a model's geometry, or given on the command line. */
static int resolve_tile_sizes(const TilesArgs *a, int *input_size, int *output_size)
{
    if (a->model) {
        if (a->input_size || a->output_size) {
            fprintf(stderr, "unet tiles: give either --model or --input-size/--output-size\n");
            return 2;
        }
        UnetModelConfig cfg;
        UnetError err = { 0 };
        if (unet_model_config_from_file(a->model, &cfg, NULL, &err) != UNET_OK) {
            fprintf(stderr, "unet tiles: %s\n", err.message);
            return 1;
        }
        int want = a->size ? a->size : 572;
        if (unet_model_valid_input_size(&cfg, want, input_size, output_size) != 0) {
            fprintf(stderr, "unet tiles: the model in %s has no valid input side near %d\n", a->model,
                    want);
            return 1;
        }
        return 0;
    }
    if (!a->input_size || !a->output_size) {
        fprintf(stderr, "unet tiles: give --input-size and --output-size\n\n");
        usage(stderr);
        return 2;
    }
    *input_size = a->input_size;
    *output_size = a->output_size;
    return 0;
}

int unet_cmd_tiles(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "input-size", required_argument, NULL, 'i' },
        { "output-size", required_argument, NULL, 'o' },
        { "out", required_argument, NULL, 'w' },
        { "highlight", required_argument, NULL, 'H' },
        { "max-side", required_argument, NULL, 'm' },
        { "model", required_argument, NULL, 'M' },
        { "size", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    TilesArgs a = { NULL, NULL, 0, 0, 0, 2048, NULL, 0 };
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":i:o:w:H:m:M:s:h", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'i': bad = parse_int(optarg, 1, 1 << 20, &a.input_size); break;
        case 'M': a.model = optarg; break;
        case 's': bad = parse_int(optarg, 1, 1 << 16, &a.size); break;
        case 'o': bad = parse_int(optarg, 1, 1 << 20, &a.output_size); break;
        case 'w': a.out = optarg; break;
        case 'H': bad = parse_int(optarg, -1, 1 << 30, &a.highlight); break;
        case 'm': bad = parse_int(optarg, 0, 1 << 16, &a.max_side); break;
        case 'h':
            usage(stdout);
            return 0;
        default: /* ':' (no value) or an unknown option */
            return unet_cli_getopt_error("tiles", c, argv, usage);
        }
        if (bad) {
            const char *name = c == 'i' ? "--input-size" : c == 'o' ? "--output-size" : c == 's' ? "--size" : c == 'H' ? "--highlight"
                                                                                          : "--max-side";
            fprintf(stderr, "unet tiles: %s '%s' is not a valid number\n", name, optarg);
            return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "unet tiles: give exactly one IMAGE\n\n");
        usage(stderr);
        return 2;
    }
    a.image = argv[optind];
    if (!a.out) {
        fprintf(stderr, "unet tiles: --out FILE.png is required\n\n");
        usage(stderr);
        return 2;
    }
    int in_size, out_size;
    int rc = resolve_tile_sizes(&a, &in_size, &out_size);
    if (rc)
        return rc;

    UnetError err = { 0 };
    UnetImage img, pic = { 0 };
    UnetTileGrid grid;
    if (unet_image_load(a.image, &img, &err)) {
        fprintf(stderr, "unet tiles: %s\n", err.message);
        return 1;
    }
    if (unet_tile_grid_init(&grid, img.width, img.height, in_size, out_size, &err)) {
        fprintf(stderr, "unet tiles: %s\n", err.message);
        unet_image_free(&img);
        return 2;
    }
    if (a.highlight >= unet_tile_grid_count(&grid)) {
        fprintf(stderr, "unet tiles: --highlight %d is out of range: the image has %d tiles (0..%d)\n", a.highlight,
                unet_tile_grid_count(&grid), unet_tile_grid_count(&grid) - 1);
        unet_image_free(&img);
        return 2;
    }
    rc = 0;
    if (unet_tiling_draw(&grid, &img, a.highlight, a.max_side, &pic, &err) ||
        unet_image_save_png(a.out, &pic, 8, &err)) {
        fprintf(stderr, "unet tiles: %s\n", err.message);
        rc = 1;
    } else {
        printf("%s: %d x %d pixels; tiles %d -> %d (border %d): %d x %d = %d tiles; wrote %s (%d x %d)\n", a.image,
               img.width, img.height, in_size, out_size, grid.border, grid.tiles_x, grid.tiles_y,
               unet_tile_grid_count(&grid), a.out, pic.width, pic.height);
    }
    unet_image_free(&pic);
    unet_image_free(&img);
    return rc;
}
