/* devices.h - what compute devices this build and this machine offer, for
 * `unet devices`, the GUI's device chooser and log headers.
 *
 * Works in every build: without the CUDA backend the CUDA functions report
 * "this build has no CUDA backend"; without a driver or GPU they say why. */
#ifndef UNET_DEVICES_H
#define UNET_DEVICES_H

#include <stddef.h>

#include "error.h"

typedef struct UnetCpuInfo {
    char model[128];        /* "model name" of /proc/cpuinfo, or "unknown CPU" */
    int logical_cores;      /* online logical CPUs */
    int has_dnnl;           /* this build uses oneDNN for convolutions */
    char dnnl_version[32];  /* "2.6.0", empty without oneDNN */
} UnetCpuInfo;

void unet_cpu_info(UnetCpuInfo *out);

/* Versions as CUDA writes them: 13000 is 13.0, cuDNN 91900 is 9.19.0. */
typedef struct UnetCudaVersions {
    int built;              /* 1 when this build has the CUDA backend */
    int runtime;            /* CUDA runtime (libcudart) loaded, 0 when unknown */
    int driver;             /* newest CUDA the driver supports, 0: no driver */
    int cudnn;              /* cuDNN library loaded */
    int cudnn_built;        /* cuDNN headers this build was compiled with */
    char gpu_code[64];      /* GPU code in this build: "sm_80 sm_90 compute_90" */
} UnetCudaVersions;

void unet_cuda_versions(UnetCudaVersions *out);

typedef struct UnetDeviceInfo {
    int index;
    char name[256];
    size_t total_memory;    /* bytes */
    size_t free_memory;     /* bytes, at the time of the call */
    int cc_major, cc_minor; /* compute capability */
    int multiprocessors;
    int supported;          /* 1 when this build's GPU code runs on it */
    int driver_version, runtime_version, cudnn_version;
} UnetDeviceInfo;

/* Number of CUDA devices; 0 with err saying why when there are none (no
 * CUDA in this build, no driver, driver too old, no device). */
int unet_cuda_device_count(UnetError *err);

/* Properties of device index (0 <= index < count). */
UnetStatus unet_cuda_device_info(int index, UnetDeviceInfo *out, UnetError *err);

#endif
