/* test-model-config.c - defaults, validation and the JSON round trip of UnetModelConfig. */
#include <stdlib.h>
#include <string.h>

#include "model-config.h"
#include "test-common.h"

int main(void)
{
    UnetError err = { 0 };
    UnetModelConfig a, b;
    unet_model_config_default(&a, UNET_ARCH_UNET);
    CHECK(a.depth == 5 && a.base == 64 && a.padding == UNET_PAD_VALID && a.classes == 1);
    CHECK(unet_model_config_validate(&a, &err) == UNET_OK);

    a.in_channels = 3;
    a.norm = UNET_NORM_BATCH;
    a.padding = UNET_PAD_SAME;
    a.activation = UNET_ACT_LEAKY;
    a.seed = 12345678901ull;
    char *json = unet_model_config_to_json(&a);
    CHECK(unet_model_config_from_json(&b, json, &err) == UNET_OK);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    free(json);

    CHECK(unet_model_config_from_json(&b, "{\"model\":\"light\"}", &err) == UNET_OK);
    CHECK(b.arch == UNET_ARCH_LIGHT && b.classes == 6 && b.norm == UNET_NORM_INSTANCE);

    CHECK(unet_model_config_from_json(&b, "{\"depth\":99}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "depth") != NULL);
    CHECK(unet_model_config_from_json(&b, "{\"norm\":\"group\"}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "group") != NULL);
    CHECK(unet_model_config_from_json(&b, "{\"colour\":1}", &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "colour") != NULL);
    CHECK(unet_model_config_from_json(&b, "[1,2", &err) == UNET_ERR_FORMAT);

    UnetArch arch;
    CHECK(unet_arch_parse("fcn", &arch, &err) == UNET_OK && arch == UNET_ARCH_FCN);
    CHECK(unet_arch_parse("resnet", &arch, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "unet, light or fcn") != NULL);
    return test_finish("model-config");
}
