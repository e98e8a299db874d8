/* weightmap-io.c - mask interpretation and map writing for the weight-map commands. */
#include "weightmap-io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "colormap.h"
#include "fileutil.h"
#include "image.h"

int unet_cli_mask_kind_parse(const char *s, UnetMaskKind *out)
{
    static const char *const names[] = { "binary", "classes", "instances" };
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            *out = (UnetMaskKind)i;
            return 0;
        }
    return -1;
}

UnetStatus unet_cli_weightmap(const UnetWeightMapConfig *cfg, UnetMaskKind kind,
                              const int32_t *labels, int width, int height,
                              UnetWeightMapOutputs *out, UnetWeightMapInfo *info,
                              UnetScratch *scratch, UnetError *err)
{
    if (kind == UNET_MASK_CLASSES)
        return unet_weightmap_compute(cfg, labels, NULL, width, height, out, info, scratch, err);
    if (kind == UNET_MASK_INSTANCES)
        return unet_weightmap_compute(cfg, NULL, labels, width, height, out, info, scratch, err);
    size_t n = (size_t)width * height;
    int32_t *cls = malloc(n * sizeof *cls);
    if (!cls)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for a %dx%d mask", width, height);
    for (size_t i = 0; i < n; i++)
        cls[i] = labels[i] != 0;
    UnetStatus st = unet_weightmap_compute(cfg, cls, NULL, width, height, out, info, scratch, err);
    free(cls);
    return st;
}

UnetStatus unet_cli_save_map(const char *path, const float *values, int width, int height,
                             float *shown_max, UnetError *err)
{
    if (unet_path_has_extension(path, "npy")) {
        int shape[2] = { height, width };
        return unet_npy_save(path, values, 2, shape, err);
    }
    if (!unet_path_has_extension(path, "png"))
        return unet_error_set(err, UNET_ERR_INVALID,
                              "%s: write the map as .png (viridis) or .npy (float32)", path);
    size_t n = (size_t)width * height;
    float hi = 0.0f;
    for (size_t i = 0; i < n; i++)
        if (isfinite(values[i]) && values[i] > hi)
            hi = values[i];
    uint8_t *rgb = malloc(n * 3);
    if (!rgb)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory for %s", path);
    unet_colormap_apply(rgb, values, n, 0.0f, hi);
    for (size_t i = 0; i < n; i++) /* infinite distances show at the top of the scale */
        if (isinf(values[i]))
            unet_colormap_viridis(1.0f, rgb + 3 * i);
    UnetStatus st = unet_png_save(path, rgb, width, height, 3, 8, err);
    free(rgb);
    if (shown_max)
        *shown_max = hi;
    return st;
}
