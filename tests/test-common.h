/* test-common.h - small helpers shared by the C tests: checks that report the
 * failing line, a seeded RNG, array comparison, the meson skip code, and
 * running the unet executable with its output captured. */
#ifndef UNET_TEST_COMMON_H
#define UNET_TEST_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h" /* UNET_PRINTF */

#define TEST_SKIP_CODE 77

extern int test_failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures++;                                                          \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            test_failures++;                                                \
        }                                                                   \
    } while (0)

/* Prints the verdict and returns the process status for main(). */
int test_finish(const char *name);

/* Prints why and exits with 77 so meson reports SKIP. */
void test_skip(const char *why);

/* Deterministic xorshift RNG for test data. */
typedef struct TestRng { uint64_t s; } TestRng;
void test_rng_seed(TestRng *r, uint64_t seed);
float test_rng_uniform(TestRng *r, float lo, float hi);
float test_rng_normal(TestRng *r);
void test_fill_uniform(TestRng *r, float *x, size_t n, float lo, float hi);

/* Largest |a-b| / max(1, |b|) over n values; *where gets its index. */
double test_max_rel_diff(const float *a, const float *b, size_t n, size_t *where);

/* ../shared/data (from UNET_SHARED_DATA) or NULL when absent. */
const char *test_shared_data_dir(void);

/* Fresh empty temporary directory under the build dir (or /tmp); caller frees. */
char *test_make_temp_dir(const char *tag);
/* Removes dir and everything below it (best effort: a test's leftovers). */
void test_remove_tree(const char *dir);

/* Runs the shell command `ENV 'EXE' ARGS` (ARGS formatted from fmt, env
 * may be "") with its stdout and stderr in DIR/stdout.txt and
 * DIR/stderr.txt; returns the exit status (-1 when it did not exit). */
int test_run_captured(const char *dir, const char *env, const char *exe, const char *fmt,
                      va_list ap) UNET_PRINTF(4, 0);

/* The contents of DIR/NAME as a string ("" when unreadable); caller frees. */
char *test_slurp(const char *dir, const char *name);

#endif
