/* unet-run-config.c - engine configurations from the workbench settings. */
#include "unet-run-config.h"

#include <glib/gi18n.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices.h"
#include "model.h"

static UnetAugmentStage *add_stage(UnetAugmentConfig *cfg, GSettings *s, const char *key)
{
    if (!g_settings_get_boolean(s, key) || cfg->count >= UNET_AUGMENT_MAX_STAGES)
        return NULL;
    char *pk = g_strconcat(key, "-p", NULL);
    UnetAugmentStage *st = &cfg->stages[cfg->count++];
    memset(st, 0, sizeof *st);
    st->p = (float)g_settings_get_double(s, pk);
    st->count = 1;
    g_free(pk);
    return st;
}

void unet_ui_augment_config_from_settings(GSettings *s, UnetAugmentConfig *cfg)
{
    unet_augment_config_default(cfg);
    cfg->count = 0;
    UnetAugmentStage *st;
    if ((st = add_stage(cfg, s, "aug-flip"))) {
        const UnetAugmentKind k[] = { UNET_AUG_HFLIP, UNET_AUG_VFLIP, UNET_AUG_TRANSPOSE, UNET_AUG_ROTATE90 };
        st->count = 4;
        for (int i = 0; i < 4; i++)
            unet_augment_op_default(&st->ops[i], k[i]);
    }
    if ((st = add_stage(cfg, s, "aug-ssr"))) {
        unet_augment_op_default(&st->ops[0], UNET_AUG_SHIFT_SCALE_ROTATE);
        st->ops[0].shift = (float)g_settings_get_double(s, "aug-shift");
        st->ops[0].scale = (float)g_settings_get_double(s, "aug-scale");
        st->ops[0].rotate = (float)g_settings_get_double(s, "aug-rotate");
    }
    if ((st = add_stage(cfg, s, "aug-noise"))) {
        unet_augment_op_default(&st->ops[0], UNET_AUG_GAUSS_NOISE);
        st->ops[0].var_min = 0;
        st->ops[0].var_max = (float)g_settings_get_double(s, "aug-noise-var");
    }
    if ((st = add_stage(cfg, s, "aug-mult"))) {
        unet_augment_op_default(&st->ops[0], UNET_AUG_MULT_NOISE);
        float r = (float)g_settings_get_double(s, "aug-mult-range");
        st->ops[0].mult_min = 1 - r;
        st->ops[0].mult_max = 1 + r;
    }
    if ((st = add_stage(cfg, s, "aug-elastic"))) {
        unet_augment_op_default(&st->ops[0], UNET_AUG_ELASTIC);
        st->ops[0].alpha = (float)g_settings_get_double(s, "aug-elastic-alpha");
        st->ops[0].sigma = (float)g_settings_get_double(s, "aug-elastic-sigma");
        st->ops[0].alpha_affine = (float)g_settings_get_double(s, "aug-elastic-affine");
    }
    if ((st = add_stage(cfg, s, "aug-grid"))) {
        unet_augment_op_default(&st->ops[0], UNET_AUG_GRID_ELASTIC);
        st->ops[0].grid = g_settings_get_int(s, "aug-grid-points");
        st->ops[0].grid_sd = (float)g_settings_get_double(s, "aug-grid-sd");
    }
    if ((st = add_stage(cfg, s, "aug-bc"))) {
        unet_augment_op_default(&st->ops[0], UNET_AUG_BRIGHTNESS_CONTRAST);
        st->ops[0].brightness = (float)g_settings_get_double(s, "aug-brightness");
        st->ops[0].contrast = (float)g_settings_get_double(s, "aug-contrast");
    }
}

void unet_ui_weightmap_config_from_settings(GSettings *s, UnetWeightMapConfig *cfg)
{
    unet_weightmap_config_default(cfg);
    cfg->w0 = (float)g_settings_get_double(s, "weight-w0");
    cfg->sigma = (float)g_settings_get_double(s, "weight-sigma");
    char *bal = g_settings_get_string(s, "weight-balance");
    UnetClassBalance b;
    if (unet_class_balance_parse(bal, &b, NULL) == UNET_OK)
        cfg->balance = b;
    g_free(bal);
}

gboolean unet_ui_model_config_from_settings(GSettings *s, int in_channels, UnetModelConfig *cfg, GError **error)
{
    UnetError err = { 0 };
    char *arch = g_settings_get_string(s, "arch");
    UnetArch a = UNET_ARCH_UNET;
    unet_arch_parse(arch, &a, NULL);
    g_free(arch);
    unet_model_config_default(cfg, a);
    if (a == UNET_ARCH_UNET) {
        cfg->depth = g_settings_get_int(s, "depth");
        char *v = g_settings_get_string(s, "padding");
        unet_padding_parse(v, &cfg->padding, NULL);
        g_free(v);
        v = g_settings_get_string(s, "norm");
        unet_norm_parse(v, &cfg->norm, NULL);
        g_free(v);
        v = g_settings_get_string(s, "upsample");
        unet_upsample_parse(v, &cfg->upsample, NULL);
        g_free(v);
    }
    if (a != UNET_ARCH_LIGHT)
        cfg->base = g_settings_get_int(s, "base-channels");
    char *act = g_settings_get_string(s, "activation");
    unet_activation_parse(act, &cfg->activation, NULL);
    g_free(act);
    /* Classes: the multiclass count, else the paper's two-class softmax. */
    int classes = g_settings_get_int(s, "classes");
    cfg->classes = classes >= 2 ? classes : 2;
    if (in_channels > 0)
        cfg->in_channels = in_channels;
    if (unet_model_config_validate(cfg, &err) != UNET_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s", err.message);
        return FALSE;
    }
    return TRUE;
}

UnetPrecision unet_ui_precision_from_settings(GSettings *s, gboolean cuda)
{
    /* The CPU computes fp32 whatever is chosen and refuses bf16, so a CPU
     * run asks for fp32 and never fails on the setting. */
    if (!cuda)
        return UNET_PRECISION_FP32;
    char *v = g_settings_get_string(s, "precision");
    UnetPrecision p = UNET_PRECISION_TF32;
    if (unet_precision_parse(v, &p, NULL) != UNET_OK)
        p = UNET_PRECISION_TF32;
    g_free(v);
    return p;
}

gboolean unet_ui_train_config_from_settings(GSettings *s, const char *data_dir, const UnetModelConfig *model,
                                            UnetTrainConfig *cfg, GError **error)
{
    unet_train_config_default(cfg);
    if (!data_dir || !*data_dir) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _("Open a dataset first."));
        return FALSE;
    }
    g_strlcpy(cfg->data_dir, data_dir, sizeof cfg->data_dir);
    cfg->model = *model;
    cfg->model.in_channels = 0; /* from the images */
    cfg->val_fraction = g_settings_get_double(s, "val-fraction");
    cfg->seed = g_settings_get_uint64(s, "split-seed");
    char *mode = g_settings_get_string(s, "mask-mode");
    UnetMaskMode m;
    if (unet_mask_mode_parse(mode, &m, NULL) == UNET_OK)
        cfg->dataset.mask_mode = m;
    g_free(mode);
    int classes = g_settings_get_int(s, "classes");
    if (cfg->dataset.mask_mode == UNET_MASK_MULTICLASS && classes >= 3)
        cfg->dataset.classes = classes;

    char *opt = g_settings_get_string(s, "optimizer");
    UnetOptimKind ok = UNET_OPTIM_SGD;
    unet_optim_kind_parse(opt, &ok, NULL);
    g_free(opt);
    unet_optimizer_config_default(&cfg->optimizer, ok);
    cfg->optimizer.lr = g_settings_get_double(s, "learning-rate");
    if (ok == UNET_OPTIM_SGD)
        cfg->optimizer.momentum = g_settings_get_double(s, "momentum");
    cfg->optimizer.weight_decay = g_settings_get_double(s, "weight-decay");
    char *sched = g_settings_get_string(s, "lr-schedule");
    UnetLrScheduleKind sk;
    if (unet_lr_schedule_parse(sched, &sk, NULL) == UNET_OK)
        cfg->schedule.kind = sk;
    g_free(sched);

    cfg->epochs = g_settings_get_int(s, "epochs");
    cfg->batch = g_settings_get_int(s, "batch-size");
    cfg->patience = g_settings_get_int(s, "patience");
    cfg->steps_per_epoch = g_settings_get_int(s, "steps-per-epoch");
    int in = 0, out = 0;
    if (unet_model_valid_input_size(&cfg->model, g_settings_get_int(s, "tile-size"), &in, &out) == 0)
        cfg->tile = in;

    cfg->weight_map = g_settings_get_boolean(s, "use-weight-map");
    unet_ui_weightmap_config_from_settings(s, &cfg->weights);
    cfg->augment = g_settings_get_boolean(s, "use-augmentation");
    unet_ui_augment_config_from_settings(s, &cfg->augmentation);

    cfg->lr_test.min_lr = g_settings_get_double(s, "lr-test-min");
    cfg->lr_test.max_lr = g_settings_get_double(s, "lr-test-max");
    cfg->lr_test.iterations = g_settings_get_int(s, "lr-test-steps");
    cfg->lr_test.beta = g_settings_get_double(s, "lr-test-smoothing");
    cfg->lr_test.diverge_factor = g_settings_get_double(s, "lr-test-divergence");

    char *dev = g_settings_get_string(s, "device");
    gboolean cuda = !g_strcmp0(dev, "cuda") && unet_ui_devices()->cuda;
    g_free(dev);
    g_strlcpy(cfg->device, cuda ? "cuda" : "cpu", sizeof cfg->device);
    cfg->precision = unet_ui_precision_from_settings(s, cuda);
    /* The switch keeps its value while the CPU is chosen; CPU runs never capture graphs. */
    cfg->cuda_graphs = cuda && g_settings_get_boolean(s, "cuda-graphs");
    /* One core stays with the window so it never waits for the trainer. */
    int cores = (int)g_get_num_processors();
    cfg->threads = MAX(1, cores - 1);
    cfg->workers = cores <= 2 ? 1 : 2;

    UnetError err = { 0 };
    if (unet_train_config_validate(cfg, &err) != UNET_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s", err.message);
        return FALSE;
    }
    return TRUE;
}

char *unet_ui_new_run_dir(GSettings *s, GError **error)
{
    char *parent = g_settings_get_string(s, "run-dir");
    if (!*parent) {
        g_free(parent);
        parent = g_build_filename(g_get_user_data_dir(), "unet-workbench", "runs", NULL);
    }
    GDateTime *now = g_date_time_new_now_local();
    char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");
    g_date_time_unref(now);
    char *dir = g_build_filename(parent, stamp, NULL);
    /* Two runs in one second get a suffix. */
    for (int i = 2; g_file_test(dir, G_FILE_TEST_EXISTS) && i < 1000; i++) {
        g_free(dir);
        char *name = g_strdup_printf("%s-%d", stamp, i);
        dir = g_build_filename(parent, name, NULL);
        g_free(name);
    }
    g_free(stamp);
    g_free(parent);
    if (g_mkdir_with_parents(dir, 0755) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), _("Could not create the run folder %s: %s"), dir,
                    g_strerror(e));
        g_free(dir);
        return NULL;
    }
    return dir;
}

const UnetUiDevices *unet_ui_devices(void)
{
    static UnetUiDevices d;
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        UnetCpuInfo cpu;
        unet_cpu_info(&cpu);
        g_snprintf(d.cpu, sizeof d.cpu, "%s", cpu.model);
        UnetError err = { 0 };
        int n = unet_cuda_device_count(&err);
        if (n > 0) {
            UnetDeviceInfo info;
            if (unet_cuda_device_info(0, &info, &err) == UNET_OK && info.supported) {
                d.cuda = TRUE;
                g_strlcpy(d.cuda_name, info.name, sizeof d.cuda_name);
            } else {
                g_strlcpy(d.cuda_reason, err.message[0] ? err.message : _("this build has no GPU code for it"),
                          sizeof d.cuda_reason);
            }
        } else {
            g_strlcpy(d.cuda_reason, err.message, sizeof d.cuda_reason);
        }
        g_once_init_leave(&once, 1);
    }
    return &d;
}
