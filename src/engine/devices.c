/* devices.c - CPU description, and the CUDA device queries of builds without the CUDA backend. */
#include "devices.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "unet-config.h"

#if UNET_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

void unet_cpu_info(UnetCpuInfo *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->model, sizeof out->model, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10))
                continue;
            const char *v = strchr(line, ':');
            if (!v)
                continue;
            v++;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(out->model, sizeof out->model, "%.*s", (int)strcspn(v, "\n"), v);
            break;
        }
        fclose(f);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    out->logical_cores = n > 0 ? (int)n : 1;
#if UNET_HAVE_DNNL
    const dnnl_version_t *v = dnnl_version();
    out->has_dnnl = 1;
    snprintf(out->dnnl_version, sizeof out->dnnl_version, "%d.%d.%d", v->major, v->minor,
             v->patch);
#endif
}

#if !UNET_HAVE_CUDA
/* The reason is the one unet_backend_cuda_new gives (backend.c's fallback when CUDA is not built in). */
void unet_cuda_versions(UnetCudaVersions *out)
{
    memset(out, 0, sizeof *out);
}

int unet_cuda_device_count(UnetError *err)
{
    UnetBackend *be = unet_backend_cuda_new(0, err);
    unet_backend_destroy(be);
    return 0;
}

UnetStatus unet_cuda_device_info(int index, UnetDeviceInfo *out, UnetError *err)
{
    (void)index;
    memset(out, 0, sizeof *out);
    unet_cuda_device_count(err);
    return err ? err->status : UNET_ERR_UNSUPPORTED;
}
#endif
