/* test-cli-devices.c - `unet devices`: text and JSON list the CPU and the CUDA devices, or the reason there are none; exit 0. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "devices.h"
#include "test-common.h"

/* Runs `$UNET_EXE args` and returns its stdout (caller frees) and exit code. */
static char *run(const char *args, int *code)
{
    const char *exe = getenv("UNET_EXE");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", exe, args);
    FILE *p = popen(cmd, "r");
    if (!p) {
        *code = -1;
        return NULL;
    }
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    size_t got;
    while (out && (got = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *grown = realloc(out, cap * 2);
            if (!grown) {
                free(out);
                out = NULL;
                break;
            }
            out = grown;
            cap *= 2;
        }
    }
    int st = pclose(p);
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (out)
        out[len] = '\0';
    return out;
}

int main(void)
{
    if (!getenv("UNET_EXE"))
        test_skip("UNET_EXE is not set (run through meson test)");
    UnetError count_err = { 0 };
    int count = unet_cuda_device_count(&count_err);

    int code;
    char *text = run("devices", &code);
    CHECK(text != NULL && code == 0);
    if (text) {
        printf("%s", text);
        CHECK(strncmp(text, "cpu ", 4) == 0);
        if (count == 0) {
            CHECK_MSG(strstr(text, "cuda     none: ") != NULL, "no reason line");
            CHECK_MSG(strstr(text, count_err.message) != NULL, "reason '%s' missing",
                      count_err.message);
        } else {
            CHECK(strstr(text, "cuda:0 ") != NULL);
        }
    }
    free(text);

    char *js = run("devices --json", &code);
    CHECK(js != NULL && code == 0);
    json_object *root = js ? json_tokener_parse(js) : NULL;
    CHECK_MSG(root != NULL, "not JSON: %s", js ? js : "(none)");
    if (root) {
        json_object *cpu, *cores, *cuda, *devs, *reason;
        CHECK(json_object_object_get_ex(root, "cpu", &cpu));
        CHECK(json_object_object_get_ex(cpu, "logical_cores", &cores) &&
              json_object_get_int(cores) >= 1);
        CHECK(json_object_object_get_ex(root, "cuda", &cuda));
        CHECK(json_object_object_get_ex(cuda, "devices", &devs) &&
              json_object_is_type(devs, json_type_array));
        CHECK((int)json_object_array_length(devs) == count);
        if (count == 0) {
            CHECK(json_object_object_get_ex(cuda, "reason", &reason));
            CHECK(!strcmp(json_object_get_string(reason), count_err.message));
        }
        for (int i = 0; i < count; i++) {
            json_object *d = json_object_array_get_idx(devs, i), *name, *mem;
            CHECK(json_object_object_get_ex(d, "name", &name) &&
                  json_object_get_string_len(name) > 0);
            CHECK(json_object_object_get_ex(d, "total_memory", &mem) &&
                  json_object_get_int64(mem) > 0);
        }
        json_object_put(root);
    }
    free(js);

    char *bad = run("devices --frobnicate", &code);
    CHECK(code == 2);
    free(bad);
    return test_finish("cli-devices");
}
