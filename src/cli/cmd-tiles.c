/* cmd-tiles.c - `unet tiles`: draws the overlap-tile grid of an image. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "image.h"
#include "tiling.h"

typedef struct TilesArgs {
    const char *image;
    const char *out;
    int input_size, output_size; /* 0 when not given */
    int highlight;
    int max_side;
} TilesArgs;

static void usage(FILE *f)
{
    fprintf(f, "usage: unet tiles IMAGE --input-size N --output-size M --out FILE.png\n"
               "                  [--highlight I] [--max-side PX]\n\n"
               "Draws how IMAGE is cut into network tiles (overlap-tile, Ronneberger et al. Fig. 2): green\n"
               "output-tile grid, yellow dashed mirror lines at the image edges, the mirrored context dimmed,\n"
               "and tile I (default 0) with its output area shaded red and its input area outlined blue.\n\n"
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

/* Where the tile sizes come from: the command line for now. A model (config
 * or checkpoint) would fill the same two numbers from its geometry here; the
 * rest of the command does not change. */
static int resolve_tile_sizes(const TilesArgs *a, int *input_size, int *output_size)
{
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
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    TilesArgs a = { NULL, NULL, 0, 0, 0, 2048 };
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":i:o:w:H:m:h", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'i': bad = parse_int(optarg, 1, 1 << 20, &a.input_size); break;
        case 'o': bad = parse_int(optarg, 1, 1 << 20, &a.output_size); break;
        case 'w': a.out = optarg; break;
        case 'H': bad = parse_int(optarg, -1, 1 << 30, &a.highlight); break;
        case 'm': bad = parse_int(optarg, 0, 1 << 16, &a.max_side); break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "unet tiles: option '%s' needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "unet tiles: unknown option '%s'\n\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        if (bad) {
            const char *name = c == 'i' ? "--input-size" : c == 'o' ? "--output-size" : c == 'H' ? "--highlight"
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
