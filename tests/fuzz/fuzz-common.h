/* fuzz-common.h - shared by the fuzz targets (tests/fuzz/fuzz-*.c): the
 * libFuzzer entry point, a check that turns a broken promise into a finding,
 * and a per-process scratch folder for targets whose API reads files.
 *
 * Each target is built twice: with clang and libFuzzer (meson -Dfuzzing=true,
 * run by bench/fuzz), and with the normal compiler beside replay.c, which
 * feeds it every file of tests/fuzz/corpus/<target> and
 * tests/fuzz/regressions/<target> as a test of the unit suite. */
#ifndef UNET_FUZZ_COMMON_H
#define UNET_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property every input must keep (e.g. "a failure comes with a message");
 * abort() makes libFuzzer save the input. */
#define FUZZ_CHECK(cond)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* A failing libunet call must say why: status and a non-empty message. */
#define FUZZ_CHECK_ERROR(st, err) FUZZ_CHECK((st) == UNET_OK || ((err).status == (st) && (err).message[0]))

/* An empty folder of this process (created on first use, removed at exit). */
const char *fuzz_scratch_dir(void);

/* Writes data to scratch/name and returns the path (malloc'ed); aborts on a
 * failing write, which is the harness's fault, not the input's. */
char *fuzz_write_file(const char *name, const uint8_t *data, size_t size);

/* Removes path and everything under it (symlinks are removed, not followed). */
void fuzz_remove_tree(const char *path);

/* Copy of data with a terminating NUL, for the JSON parsers. */
char *fuzz_strndup(const uint8_t *data, size_t size);

#endif
