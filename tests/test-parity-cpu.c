/* test-parity-cpu.c - the fast CPU backend against the reference backend, op by op. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "op-harness.h"
#include "test-common.h"

int main(int argc, char **argv)
{
    UnetError err = { 0 };
    UnetBackend *ref = unet_backend_reference_new(&err);
    UnetBackend *cpu = unet_backend_cpu_new(2, &err);
    if (!ref || !cpu) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    OpHarnessStats st;
    int failed = op_harness_compare_ex(cpu, ref, 1e-4, argc > 1 ? argv[1] : NULL, stdout, &st);
    printf("%d cases, %d failed, worst max error %.3g (%s), worst nmse %.3g\n", st.cases, st.failed,
           st.worst_max, st.worst_case, st.worst_nmse);
    CHECK(failed == 0);
    unet_backend_destroy(cpu);
    unet_backend_destroy(ref);
    return test_finish("parity-cpu");
}
