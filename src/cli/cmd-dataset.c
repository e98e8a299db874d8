/* cmd-dataset.c - `unet dataset check`: lists every problem of a dataset. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "dataset.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: unet dataset check DIR [--json] [--mask-mode MODE] [--classes K]\n"
               "       unet dataset check IMAGES.tif LABELS.tif [...]\n\n"
               "Reads every image/mask pair of a dataset (DIR/images + DIR/masks or DIR/labels, matched by\n"
               "file name; or two multi-page TIFF stacks) and lists every problem at once: missing partners,\n"
               "unreadable or damaged files, size mismatches, masks with unexpected values, empty folders.\n"
               "Exit status 0 when there are none, 1 otherwise.\n\n"
               "  --json             print the report as JSON\n"
               "  --mask-mode MODE   auto (default), binary, multiclass or instance\n"
               "  --classes K        number of classes (multiclass masks hold 0..K-1)\n");
}

static void print_json(const char *what, const UnetDatasetReport *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "dataset", json_object_new_string(what));
    json_object_object_add(o, "ok", json_object_new_boolean(r->count == 0));
    json_object_object_add(o, "pairs", json_object_new_int(r->pairs));
    json_object_object_add(o, "images", json_object_new_int(r->images));
    json_object_object_add(o, "masks", json_object_new_int(r->masks));
    json_object *modes = json_object_new_object();
    json_object_object_add(modes, "binary", json_object_new_int(r->binary));
    json_object_object_add(modes, "multiclass", json_object_new_int(r->multiclass));
    json_object_object_add(modes, "instance", json_object_new_int(r->instance));
    json_object_object_add(o, "mask_modes", modes);
    json_object *list = json_object_new_array();
    for (int i = 0; i < r->count; i++) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "file", json_object_new_string(r->problems[i].file));
        json_object_object_add(p, "message", json_object_new_string(r->problems[i].message));
        json_object_array_add(list, p);
    }
    json_object_object_add(o, "problems", list);
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

static void print_text(const char *what, const UnetDatasetReport *r)
{
    printf("%s: %d pair%s read (%d image file%s, %d mask file%s)", what, r->pairs, r->pairs == 1 ? "" : "s",
           r->images, r->images == 1 ? "" : "s", r->masks, r->masks == 1 ? "" : "s");
    if (r->pairs)
        printf("; masks read as: %d binary, %d multiclass, %d instance", r->binary, r->multiclass, r->instance);
    printf("\n");
    if (r->count == 0) {
        printf("no problems found\n");
        return;
    }
    printf("%d problem%s:\n", r->count, r->count == 1 ? "" : "s");
    for (int i = 0; i < r->count; i++)
        printf("  %s\n", r->problems[i].message);
}

static int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "mask-mode", required_argument, NULL, 'm' },
        { "classes", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    UnetDatasetOptions opt;
    unet_dataset_options_default(&opt);
    UnetError err = { 0 };
    int json = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":jm:k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'm':
            if (unet_mask_mode_parse(optarg, &opt.mask_mode, &err)) {
                fprintf(stderr, "unet dataset check: %s\n", err.message);
                return 2;
            }
            break;
        case 'k': {
            char *end;
            errno = 0;
            long k = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || k < 2 || k > 65536) {
                fprintf(stderr, "unet dataset check: --classes '%s' is not a number from 2 to 65536\n", optarg);
                return 2;
            }
            opt.classes = (int)k;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default: /* ':' (no value) or an unknown option */
            return unet_cli_getopt_error("dataset check", c, argv, usage);
        }
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2) {
        fprintf(stderr, "unet dataset check: give one dataset folder, or an image stack and a label stack\n\n");
        usage(stderr);
        return 2;
    }
    UnetDatasetReport report;
    UnetStatus st;
    char what[2048];
    if (nargs == 1) {
        snprintf(what, sizeof what, "%s", argv[optind]);
        st = unet_dataset_check(argv[optind], &opt, &report, &err);
    } else {
        snprintf(what, sizeof what, "%s + %s", argv[optind], argv[optind + 1]);
        st = unet_dataset_check_stacks(argv[optind], argv[optind + 1], &opt, &report, &err);
    }
    if (st != UNET_OK) {
        fprintf(stderr, "unet dataset check: %s\n", err.message);
        return st == UNET_ERR_INVALID ? 2 : 1;
    }
    if (json)
        print_json(what, &report);
    else
        print_text(what, &report);
    int rc = report.count ? 1 : 0;
    unet_dataset_report_free(&report);
    return rc;
}

int unet_cmd_dataset(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "check"))
        return cmd_check(argc - 1, argv + 1);
    fprintf(stderr, "unet dataset: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
