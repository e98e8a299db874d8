/* op-harness.h - every backend op run on two backends from the same inputs and compared. */
/*
 * Each case of a fixed table (odd sizes, valid-padding crops, stride 2, N = 2
 * batches, channel counts that are and are not multiples of 8 and 16) builds
 * its inputs on the host, uploads them to both backends (tensor_upload for
 * activations, buffer_upload + tensor_view for parameters, so backends with
 * private layouts are exercised through their edges only), runs the op's
 * forward and backward on each, downloads every output and compares.
 * Output buffers are pre-filled with random values, so an element a backend
 * forgets to write, a gradient it overwrites instead of adding to (dw, db,
 * accumulate = 1) or adds to instead of overwriting (accumulate = 0) shows up
 * as a difference.
 *
 * Error of one output array a (test) against r (reference):
 *   max  = max_i |a_i - r_i| / max_i |r_i|       (1 when r is all zero)
 *   nmse = sum_i (a_i - r_i)^2 / sum_i r_i^2
 * A case passes when every op call returns UNET_OK on both backends and the
 * max error of every output is <= tol (NaN fails). UNET_ERR_UNSUPPORTED from
 * the test backend is a failure: every case stays inside the domain backend.h
 * documents (kernel 1/3, stride 1/2, pad 0 or kernel/2).
 */
#ifndef UNET_OP_HARNESS_H
#define UNET_OP_HARNESS_H

#include <stdio.h>

#include "backend.h"

typedef struct OpHarnessStats {
    int cases;          /* cases run (after the filter) */
    int failed;         /* cases that failed */
    double worst_max;   /* largest max error over all passing and failing cases */
    double worst_nmse;  /* largest nmse */
    char worst_case[160]; /* name of the case with worst_max */
} OpHarnessStats;

/* Runs every case whose name contains filter (NULL or "" = all; several
 * comma-separated substrings = any of them), printing one line per case to
 * stdout. Returns the number of failing cases (0 = all passed). */
int op_harness_compare(UnetBackend *test, UnetBackend *ref, double tol, const char *filter);

/* Same, with the line stream (NULL = silent) and totals given back. */
int op_harness_compare_ex(UnetBackend *test, UnetBackend *ref, double tol, const char *filter,
                          FILE *out, OpHarnessStats *stats);

/* Prints the case names (one per line) so a filter can be chosen. */
void op_harness_list(FILE *out);

#endif
