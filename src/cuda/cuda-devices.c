/* cuda-devices.c - the CUDA device queries of devices.h (builds with the CUDA backend). */
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "cuda-private.h"
#include "devices.h"

void unet_cuda_versions(UnetCudaVersions *out)
{
    memset(out, 0, sizeof *out);
    out->built = 1;
    if (cudaRuntimeGetVersion(&out->runtime) != cudaSuccess)
        out->runtime = 0;
    if (cudaDriverGetVersion(&out->driver) != cudaSuccess)
        out->driver = 0;
    (void)cudaGetLastError();
    out->cudnn = (int)cudnnGetVersion();
    out->cudnn_built = CUDNN_VERSION;
    snprintf(out->gpu_code, sizeof out->gpu_code, "sm_80 sm_90 compute_90");
}

int unet_cuda_device_count(UnetError *err)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        char why[512];
        unet_cuda_explain(e != cudaSuccess ? e : cudaErrorNoDevice, why, sizeof why);
        unet_error_set(err, UNET_ERR_UNSUPPORTED, "%s", why);
        return 0;
    }
    return count;
}

static UnetStatus cuda_check(cudaError_t e, const char *call, int index, UnetError *err)
{
    if (e == cudaSuccess)
        return UNET_OK;
    (void)cudaGetLastError();
    return unet_error_set(err, UNET_ERR_BACKEND, "CUDA device %d: %s failed: %s", index, call,
                          cudaGetErrorString(e));
}

UnetStatus unet_cuda_device_info(int index, UnetDeviceInfo *out, UnetError *err)
{
    memset(out, 0, sizeof *out);
    UnetError count_err = { 0 };
    int count = unet_cuda_device_count(&count_err);
    if (count == 0)
        return unet_error_set(err, count_err.status, "%s", count_err.message);
    if (index < 0 || index >= count)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "there is no CUDA device %d: this machine has %d (0 to %d)", index,
                              count, count - 1);
    struct cudaDeviceProp prop;
    UnetStatus st = cuda_check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties",
                               index, err);
    if (st != UNET_OK)
        return st;
    out->index = index;
    snprintf(out->name, sizeof out->name, "%s", prop.name);
    out->total_memory = prop.totalGlobalMem;
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    out->multiprocessors = prop.multiProcessorCount;
    out->supported = prop.major >= 8;
    UnetCudaVersions v;
    unet_cuda_versions(&v);
    out->driver_version = v.driver;
    out->runtime_version = v.runtime;
    out->cudnn_version = v.cudnn;

    /* Free memory needs a context on that device; the caller's current
     * device is restored afterwards. */
    int previous = 0;
    if ((st = cuda_check(cudaGetDevice(&previous), "cudaGetDevice", index, err)) != UNET_OK ||
        (st = cuda_check(cudaSetDevice(index), "cudaSetDevice", index, err)) != UNET_OK)
        return st;
    size_t free_b = 0, total_b = 0;
    st = cuda_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo", index, err);
    UnetStatus restore = cuda_check(cudaSetDevice(previous), "cudaSetDevice", index,
                                    st == UNET_OK ? err : NULL);
    if (st != UNET_OK)
        return st;
    out->free_memory = free_b;
    return restore;
}
