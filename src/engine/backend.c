/* backend.c - choosing a backend by name at run time, and the host-memory reads. */
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

static UnetStatus check_read(UnetBackend *be, int slot, size_t count, const char *op)
{
    if (slot < 0 || slot >= UNET_BACKEND_READ_SLOTS || count > UNET_BACKEND_READ_MAX)
        return unet_error_set(&be->error, UNET_ERR_INVALID,
                              "%s %s: slot %d or %zu values out of range (%d slots of %d)",
                              be->name, op, slot, count, UNET_BACKEND_READ_SLOTS,
                              UNET_BACKEND_READ_MAX);
    return UNET_OK;
}

UnetStatus unet_backend_host_read_begin(UnetBackend *be, int slot, const UnetTensor *t)
{
    UnetStatus st = check_read(be, slot, t ? unet_tensor_numel(t) : 0, "read_begin");
    if (st != UNET_OK)
        return st;
    if (!t || !t->data)
        return unet_error_set(&be->error, UNET_ERR_INVALID, "%s read_begin: no tensor given",
                              be->name);
    return be->tensor_download(be, be->read_host[slot], t);
}

UnetStatus unet_backend_host_read_end(UnetBackend *be, int slot, float *host, size_t count)
{
    UnetStatus st = check_read(be, slot, count, "read_end");
    if (st != UNET_OK)
        return st;
    memcpy(host, be->read_host[slot], count * sizeof(float));
    return UNET_OK;
}

const char *unet_precision_name(UnetPrecision p)
{
    switch (p) {
    case UNET_PRECISION_FP32: return "fp32";
    case UNET_PRECISION_TF32: return "tf32";
    case UNET_PRECISION_BF16: return "bf16";
    }
    return "unknown";
}

UnetStatus unet_precision_parse(const char *s, UnetPrecision *out, UnetError *err)
{
    static const UnetPrecision all[] = { UNET_PRECISION_FP32, UNET_PRECISION_TF32,
                                         UNET_PRECISION_BF16 };
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(s, unet_precision_name(all[i]))) {
            *out = all[i];
            return UNET_OK;
        }
    return unet_error_set(err, UNET_ERR_INVALID, "unknown precision '%s': use fp32, tf32 or bf16",
                          s ? s : "");
}

UnetStatus unet_backend_set_precision(UnetBackend *be, UnetPrecision p, UnetError *err)
{
    if (p != UNET_PRECISION_FP32 && p != UNET_PRECISION_TF32 && p != UNET_PRECISION_BF16)
        return unet_error_set(err, UNET_ERR_INVALID, "precision %d is not fp32, tf32 or bf16",
                              (int)p);
    if (!be->set_precision) {
        if (p == UNET_PRECISION_BF16)
            return unet_error_set(err, UNET_ERR_UNSUPPORTED,
                                  "bf16 needs the CUDA backend; use --precision fp32 or --device "
                                  "cuda (the %s backend computes in fp32)",
                                  be->name);
        be->precision = UNET_PRECISION_FP32; /* no TF32 off the GPU */
        return UNET_OK;
    }
    UnetStatus st = be->set_precision(be, p);
    if (st != UNET_OK) {
        *err = be->error;
        unet_error_clear(&be->error);
    }
    return st;
}
