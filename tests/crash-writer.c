/* crash-writer.c - helper of test-crash-safe: saves a small model to one
 * checkpoint path again and again until killed. Save k holds the weights
 * initialised from seed k and the metadata "step" = k, so a reader can tell
 * a whole checkpoint (weights match their step) from a torn one.
 *
 *   crash-writer PATH FIRST_STEP    prints "ready" after the first save */
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "crash-model.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: crash-writer PATH FIRST_STEP\n");
        return 2;
    }
    UnetError err = { 0 };
    UnetModelConfig cfg;
    crash_model_config(&cfg);
    UnetBackend *be = unet_backend_reference_new(&err);
    UnetModel *m = be ? unet_model_new(&cfg, be, &err) : NULL;
    if (!m) {
        fprintf(stderr, "crash-writer: %s\n", err.message);
        return 1;
    }
    for (long step = atol(argv[2]);; step++) {
        char text[32];
        snprintf(text, sizeof text, "%ld", step);
        UnetKeyValue meta[] = { { "step", text } };
        if (unet_model_init_params(m, (uint64_t)step, &err) != UNET_OK ||
            unet_checkpoint_save(argv[1], m, NULL, meta, 1, &err) != UNET_OK) {
            fprintf(stderr, "crash-writer: %s\n", err.message);
            return 1;
        }
        if (step == atol(argv[2])) {
            printf("ready\n");
            fflush(stdout);
        }
    }
}
