/* test-cuda-nodevice.c - CUDA start-up on any machine: without a usable GPU the reason is named and "auto" falls back to the CPU; with one, bad device indices are refused. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "devices.h"
#include "test-common.h"
#include "unet-config.h"

static int names_a_reason(const char *msg)
{
    return strstr(msg, "NVIDIA driver") || strstr(msg, "no CUDA device") ||
           strstr(msg, "no CUDA backend") || strstr(msg, "compute capability") ||
           strstr(msg, "CUDA cannot start");
}

static void without_gpu(const UnetError *count_err)
{
    UnetError err = { 0 };
    UnetBackend *be = unet_backend_cuda_new(0, &err);
    CHECK(be == NULL);
    unet_backend_destroy(be);
    CHECK(err.status == UNET_ERR_UNSUPPORTED);
    CHECK_MSG(names_a_reason(err.message), "message: %s", err.message);
    CHECK_MSG(!strcmp(err.message, count_err->message), "'%s' vs '%s'", err.message,
              count_err->message);
    printf("no CUDA backend here: %s\n", err.message);

    UnetCudaVersions v;
    unet_cuda_versions(&v);
    CHECK(v.built == UNET_HAVE_CUDA);
    if (v.built && v.driver == 0)
        CHECK_MSG(strstr(err.message, "no NVIDIA driver is installed") != NULL, "message: %s",
                  err.message);
    if (!v.built)
        CHECK_MSG(strstr(err.message, "no CUDA backend") != NULL, "message: %s", err.message);

    UnetDeviceInfo info;
    UnetError info_err = { 0 };
    CHECK(unet_cuda_device_info(0, &info, &info_err) != UNET_OK);
    CHECK_MSG(!strcmp(info_err.message, err.message), "'%s'", info_err.message);

    /* A second attempt gives the same answer: nothing half-started is kept. */
    UnetError again = { 0 };
    CHECK(unet_backend_cuda_new(0, &again) == NULL);
    CHECK(!strcmp(again.message, err.message));

    char note[UNET_ERROR_MESSAGE_MAX + 64];
    UnetError open_err = { 0 };
    UnetBackend *a = unet_backend_open("auto", 1, note, sizeof note, &open_err);
    CHECK_MSG(a != NULL, "auto: %s", open_err.message);
    if (a) {
        CHECK_MSG(strcmp(a->name, "cuda") != 0, "auto gave %s", a->name);
        CHECK_MSG(strstr(note, err.message) != NULL, "note: %s", note);
        printf("auto: %s backend, note: %s\n", a->name, note);
    }
    unet_backend_destroy(a);

    UnetError cuda_err = { 0 };
    UnetBackend *c = unet_backend_open("cuda", 1, NULL, 0, &cuda_err);
    CHECK(c == NULL);
    unet_backend_destroy(c);
    CHECK(cuda_err.status == UNET_ERR_UNSUPPORTED);
    CHECK_MSG(!strcmp(cuda_err.message, err.message), "cuda: %s", cuda_err.message);
}

static void with_gpu(int count)
{
    UnetError err = { 0 };
    UnetBackend *be = unet_backend_cuda_new(0, &err);
    CHECK_MSG(be != NULL, "device 0: %s", err.message);
    if (be)
        CHECK(!strcmp(be->name, "cuda"));
    unet_backend_destroy(be);

    int bad_index[2] = { count, -1 };
    for (int i = 0; i < 2; i++) {
        UnetError bad = { 0 };
        CHECK(unet_backend_cuda_new(bad_index[i], &bad) == NULL);
        CHECK(bad.status == UNET_ERR_INVALID);
        CHECK_MSG(strstr(bad.message, "no CUDA device") != NULL, "message: %s", bad.message);
    }

    for (int i = 0; i < count; i++) {
        UnetDeviceInfo info;
        UnetError info_err = { 0 };
        CHECK_MSG(unet_cuda_device_info(i, &info, &info_err) == UNET_OK, "%s", info_err.message);
        CHECK(info.index == i && info.name[0] != '\0');
        CHECK(info.total_memory > 0 && info.free_memory <= info.total_memory);
        CHECK(info.cc_major > 0 && info.multiprocessors > 0);
        CHECK(info.runtime_version > 0 && info.driver_version > 0 && info.cudnn_version >= 90000);
        printf("cuda:%d %s, compute %d.%d\n", i, info.name, info.cc_major, info.cc_minor);
    }

    char note[UNET_ERROR_MESSAGE_MAX + 64];
    UnetError open_err = { 0 };
    UnetBackend *a = unet_backend_open("auto", 1, note, sizeof note, &open_err);
    CHECK_MSG(a != NULL, "auto: %s", open_err.message);
    if (a) {
        CHECK(!strcmp(a->name, "cuda"));
        CHECK(note[0] == '\0');
    }
    unet_backend_destroy(a);
}

int main(void)
{
    UnetError count_err = { 0 };
    int count = unet_cuda_device_count(&count_err);
    CHECK(count >= 0);
    if (count == 0) {
        CHECK(count_err.status != UNET_OK);
        CHECK_MSG(names_a_reason(count_err.message), "message: %s", count_err.message);
        without_gpu(&count_err);
    } else {
        with_gpu(count);
    }
    return test_finish("cuda-nodevice");
}
