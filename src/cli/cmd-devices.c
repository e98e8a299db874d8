/* cmd-devices.c - `unet devices`: the CPU and the CUDA devices this build can use, or why none. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "commands.h"
#include "devices.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: unet devices [--json]\n\n"
                 "Lists the compute devices: the CPU, and the CUDA GPUs with their memory and\n"
                 "compute capability, or the reason there are none (no CUDA in this build, no\n"
                 "NVIDIA driver, no GPU). Exits 0 in every case.\n\n"
                 "  --json   one JSON object on stdout\n");
}

static void version_text(char *buf, size_t size, int v, int cudnn)
{
    if (v <= 0)
        snprintf(buf, size, "none");
    else if (cudnn)
        snprintf(buf, size, "%d.%d.%d", v / 10000, v % 10000 / 100, v % 100);
    else
        snprintf(buf, size, "%d.%d", v / 1000, v % 1000 / 10);
}

static json_object *versions_json(const UnetCudaVersions *v)
{
    char b[32];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "built", json_object_new_boolean(v->built));
    if (!v->built)
        return o;
    version_text(b, sizeof b, v->runtime, 0);
    json_object_object_add(o, "runtime", json_object_new_string(b));
    version_text(b, sizeof b, v->driver, 0);
    json_object_object_add(o, "driver", json_object_new_string(b));
    version_text(b, sizeof b, v->cudnn, 1);
    json_object_object_add(o, "cudnn", json_object_new_string(b));
    version_text(b, sizeof b, v->cudnn_built, 1);
    json_object_object_add(o, "cudnn_built", json_object_new_string(b));
    json_object_object_add(o, "gpu_code", json_object_new_string(v->gpu_code));
    return o;
}

int unet_cmd_devices(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "unet devices: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    UnetCpuInfo cpu;
    unet_cpu_info(&cpu);
    UnetCudaVersions ver;
    unet_cuda_versions(&ver);
    UnetError err = { 0 };
    int count = unet_cuda_device_count(&err);

    json_object *root = json_object_new_object();
    json_object *jcpu = json_object_new_object();
    json_object_object_add(jcpu, "model", json_object_new_string(cpu.model));
    json_object_object_add(jcpu, "logical_cores", json_object_new_int(cpu.logical_cores));
    json_object_object_add(jcpu, "onednn", cpu.has_dnnl ? json_object_new_string(cpu.dnnl_version)
                                                        : NULL);
    json_object_object_add(root, "cpu", jcpu);
    json_object *jcuda = json_object_new_object();
    json_object_object_add(jcuda, "versions", versions_json(&ver));
    json_object *jdevs = json_object_new_array();

    if (!json) {
        char dnnl[48];
        snprintf(dnnl, sizeof dnnl, "oneDNN %s", cpu.dnnl_version);
        printf("cpu      %s, %d logical cores, %s\n", cpu.model, cpu.logical_cores,
               cpu.has_dnnl ? dnnl : "no oneDNN (reference convolutions)");
    }

    int failures = 0;
    for (int i = 0; i < count; i++) {
        UnetDeviceInfo d;
        UnetError derr = { 0 };
        if (unet_cuda_device_info(i, &d, &derr) != UNET_OK) {
            fprintf(stderr, "unet devices: %s\n", derr.message);
            failures++;
            continue;
        }
        json_object *jd = json_object_new_object();
        json_object_object_add(jd, "index", json_object_new_int(i));
        json_object_object_add(jd, "name", json_object_new_string(d.name));
        json_object_object_add(jd, "total_memory", json_object_new_int64((int64_t)d.total_memory));
        json_object_object_add(jd, "free_memory", json_object_new_int64((int64_t)d.free_memory));
        char cc[16];
        snprintf(cc, sizeof cc, "%d.%d", d.cc_major, d.cc_minor);
        json_object_object_add(jd, "compute_capability", json_object_new_string(cc));
        json_object_object_add(jd, "multiprocessors", json_object_new_int(d.multiprocessors));
        json_object_object_add(jd, "supported", json_object_new_boolean(d.supported));
        json_object_array_add(jdevs, jd);
        if (!json)
            printf("cuda:%-3d %s, compute %s, %d SMs, %.1f GiB (%.1f GiB free)%s\n", i, d.name, cc,
                   d.multiprocessors, d.total_memory / 1073741824.0,
                   d.free_memory / 1073741824.0,
                   d.supported ? "" : ", not supported by this build (needs compute 8.0+)");
    }
    json_object_object_add(jcuda, "devices", jdevs);
    if (count == 0)
        json_object_object_add(jcuda, "reason", json_object_new_string(err.message));
    json_object_object_add(root, "cuda", jcuda);

    if (json) {
        printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        if (count == 0)
            printf("cuda     none: %s\n", err.message);
        if (ver.built) {
            char rt[16], drv[16], dnn[16];
            version_text(rt, sizeof rt, ver.runtime, 0);
            version_text(drv, sizeof drv, ver.driver, 0);
            version_text(dnn, sizeof dnn, ver.cudnn, 1);
            printf("         CUDA runtime %s, driver %s, cuDNN %s; GPU code %s\n", rt, drv, dnn,
                   ver.gpu_code);
        }
    }
    json_object_put(root);
    return failures ? 1 : 0;
}
