/* model-compare.h - three SGD steps of a model on two backends from the same initialisation and data, losses and parameter change compared (shared by test-parity-cuda.c and bf16-check.c). */
#ifndef UNET_TEST_MODEL_COMPARE_H
#define UNET_TEST_MODEL_COMPARE_H

#include "backend.h"
#include "model.h"
#include "test-common.h"

typedef struct ModelCompare {
    const char *name;       /* starts every printed line and failure */
    const char *labels[2];  /* the test backend and the reference, in printed lines */
    double loss_tol;        /* relative difference of each step's loss */
    double delta_nmse;      /* nmse of the parameter change after the 3 steps */
    double stats_tol;       /* running statistics (batch norm): max relative difference */
} ModelCompare;

/* Three SGD steps (lr 0.01, momentum 0.9) of cfg on test and ref, n images
 * of the valid input size near `near`, random inputs and targets for kind
 * drawn from rng. Checks each step's loss, the parameter change and the
 * running statistics against mc's bounds, printing one line per step and
 * one for the change. Gives back the worst loss difference and the change's
 * nmse (INFINITY when the models could not be made). */
void model_compare(UnetBackend *test, UnetBackend *ref, const UnetModelConfig *cfg, int n,
                   int near, UnetLossKind kind, TestRng *rng, const ModelCompare *mc,
                   double *worst_loss_rel, double *delta_nmse);

#endif
