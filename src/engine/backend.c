/* backend.c - choosing a backend by name at run time. */
#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "unet-config.h"

#if !UNET_HAVE_CUDA
UnetBackend *unet_backend_cuda_new(int device_index, UnetError *err)
{
    (void)device_index;
    unet_error_set(err, UNET_ERR_UNSUPPORTED,
                   "this build of unet has no CUDA backend (rebuild with -Dcuda=enabled on a "
                   "machine with nvcc and cuDNN); use --device cpu");
    return NULL;
}
#endif

UnetBackend *unet_backend_open(const char *device, int threads, char *note, size_t note_size,
                               UnetError *err)
{
    if (note && note_size)
        note[0] = '\0';
    if (!device || !strcmp(device, "auto")) {
        UnetError cuda_err = { 0 };
        UnetBackend *be = unet_backend_cuda_new(0, &cuda_err);
        if (be)
            return be;
        if (note && note_size)
            snprintf(note, note_size, "using the CPU: %s", cuda_err.message);
        return unet_backend_cpu_new(threads, err);
    }
    if (!strcmp(device, "cpu"))
        return unet_backend_cpu_new(threads, err);
    if (!strcmp(device, "reference"))
        return unet_backend_reference_new(err);
    if (!strcmp(device, "cuda"))
        return unet_backend_cuda_new(0, err);
    unet_error_set(err, UNET_ERR_INVALID,
                   "unknown device '%s': use auto, cpu, cuda or reference", device);
    return NULL;
}
