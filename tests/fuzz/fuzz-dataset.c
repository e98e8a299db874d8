/* fuzz-dataset.c - dataset scanning: the input describes a small folder
 * tree, which is built on disk and then opened, split, loaded pair by pair
 * and checked (unet_dataset_open, _split, _load, _check).
 *
 * Input: records of
 *   op (1 byte), name length (1 byte), name, content length (2 bytes, LE), content
 * op % 7: 0 images/NAME, 1 masks/NAME, 2 NAME at the top, 3 labels/NAME (files
 * holding content); 4 a symbolic link images/NAME -> content (relative, kept
 * inside the tree; loops allowed); 5 a folder images/NAME; 6 a FIFO
 * masks/NAME. Name bytes are mapped onto [a-z0-9_.-]; the last byte of the
 * name picks the extension. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "fuzz-common.h"

static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789_.-";
static const char *const exts[] = { ".png", ".tif", ".tiff", ".npy", ".PNG", ".TIF", "", ".txt" };
static const char *const dirs[] = { "images/", "masks/", "", "labels/", "images/", "images/", "masks/" };

static void make_name(char *out, const uint8_t *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n && k < 24; i++)
        out[k++] = name_chars[p[i] % (sizeof name_chars - 1)];
    if (k == 0)
        out[k++] = 'a';
    out[k] = '\0';
    strcat(out, exts[n ? p[n - 1] % 8 : 0]);
}

static void build(const char *root, const uint8_t *data, size_t size)
{
    char path[1024];
    size_t at = 0;
    for (int records = 0; at + 4 <= size && records < 16; records++) {
        int op = data[at] % 7;
        size_t nlen = data[at + 1] % 32;
        at += 2;
        if (at + nlen + 2 > size)
            break;
        char name[40];
        make_name(name, data + at, nlen);
        at += nlen;
        size_t clen = (size_t)data[at] | (size_t)data[at + 1] << 8;
        at += 2;
        if (clen > size - at)
            clen = size - at;
        const uint8_t *content = data + at;
        at += clen;
        if (dirs[op][0]) { /* the folder exists once a record puts something in it */
            snprintf(path, sizeof path, "%s/%s", root, dirs[op]);
            mkdir(path, 0700);
        }
        snprintf(path, sizeof path, "%s/%s%s", root, dirs[op], name);
        unlink(path); /* a later record replaces an earlier one (opening a FIFO would block) */
        if (op <= 3) {
            FILE *f = fopen(path, "wb");
            if (f) {
                if (clen)
                    fwrite(content, 1, clen, f);
                fclose(f);
            }
        } else if (op == 4) {
            char target[64];
            size_t k = 0;
            for (size_t i = 0; i < clen && k < 40; i++) {
                static const char link_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789_.-/";
                target[k++] = link_chars[content[i] % (sizeof link_chars - 1)];
            }
            target[k] = '\0';
            /* relative and inside the tree: from images/, "../x" is the top */
            while (target[0] == '/')
                memmove(target, target + 1, strlen(target));
            if (strstr(target, "../.."))
                strcpy(target, "..");
            if (!target[0])
                strcpy(target, name); /* a link to itself: a loop */
            symlink(target, path);
        } else if (op == 5) {
            mkdir(path, 0700);
        } else {
            mkfifo(path, 0600);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char root[256];
    snprintf(root, sizeof root, "%s/ds", fuzz_scratch_dir());
    fuzz_remove_tree(root);
    if (mkdir(root, 0700) != 0)
        return 0;
    build(root, data, size);

    UnetDatasetOptions opt;
    unet_dataset_options_default(&opt);
    UnetDataset *ds = NULL;
    UnetError err = { 0 };
    UnetStatus st = unet_dataset_open(root, &opt, &ds, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st == UNET_OK) {
        int n = unet_dataset_count(ds);
        FUZZ_CHECK(n >= 1);
        for (int i = 0; i < n && i < 8; i++) {
            FUZZ_CHECK(unet_dataset_name(ds, i) && unet_dataset_image_path(ds, i, NULL) &&
                       unet_dataset_mask_path(ds, i, NULL));
            UnetPair pair;
            memset(&err, 0, sizeof err);
            UnetStatus s2 = unet_dataset_load(ds, i, &pair, &err);
            FUZZ_CHECK_ERROR(s2, err);
            if (s2 == UNET_OK) {
                FUZZ_CHECK(pair.image.width == pair.labels.width && pair.image.height == pair.labels.height);
                unet_pair_free(&pair);
            }
        }
        UnetSplit split;
        memset(&err, 0, sizeof err);
        UnetStatus s3 = unet_dataset_split(ds, 0.25, 7, &split, &err);
        FUZZ_CHECK_ERROR(s3, err);
        if (s3 == UNET_OK) {
            FUZZ_CHECK(split.n_train + split.n_val == n);
            unet_split_free(&split);
        }
        unet_dataset_free(ds);
    }
    UnetDatasetReport report;
    memset(&err, 0, sizeof err);
    st = unet_dataset_check(root, &opt, &report, &err);
    FUZZ_CHECK_ERROR(st, err);
    if (st == UNET_OK) {
        for (int i = 0; i < report.count; i++)
            FUZZ_CHECK(report.problems[i].file && report.problems[i].message && report.problems[i].message[0]);
        unet_dataset_report_free(&report);
    }
    fuzz_remove_tree(root);
    return 0;
}
