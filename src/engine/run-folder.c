/* run-folder.c - a training run's folder: config.json, metrics.csv, log.txt and file names inside it. */
#include "train-private.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fileutil.h"

static const char metrics_header[] =
    "kind,epoch,step,lr,loss,train_loss,val_loss,dice,iou,pixel_error,v_rand,v_info,"
    "samples_per_second,data_wait_fraction,seconds\n";

char *run_path(const RunFolder *r, const char *name)
{
    return unet_path_join(r->dir, name);
}

void run_safe_name(char *dst, size_t size, const char *name)
{
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < size; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '[' || c == ']' || (c == '.' && n > 0);
        dst[n++] = ok ? c : '_';
    }
    if (n == 0 && size > 1)
        dst[n++] = '_';
    dst[n] = '\0';
}

static UnetStatus open_append(RunFolder *r, UnetError *err)
{
    char *m = run_path(r, "metrics.csv"), *l = run_path(r, "log.txt");
    UnetStatus st = UNET_OK;
    if (!m || !l) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
        goto done;
    }
    int fresh = !unet_path_is_file(m);
    r->metrics = fopen(m, "a");
    if (!r->metrics) {
        st = unet_error_set(err, UNET_ERR_IO, "cannot write %s: %s", m, strerror(errno));
        goto done;
    }
    if (fresh)
        fputs(metrics_header, r->metrics);
    r->log = fopen(l, "a");
    if (!r->log)
        st = unet_error_set(err, UNET_ERR_IO, "cannot write %s: %s", l, strerror(errno));
done:
    free(m);
    free(l);
    return st;
}

UnetStatus run_folder_create(RunFolder *r, const char *dir, UnetError *err)
{
    memset(r, 0, sizeof *r);
    r->dir = strdup(dir);
    if (!r->dir)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    char *cfg = run_path(r, "config.json");
    if (!cfg)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    int exists = unet_path_is_file(cfg);
    free(cfg);
    if (exists) {
        run_folder_close(r);
        return unet_error_set(err, UNET_ERR_INVALID,
                              "%s already holds a training run; continue it with --resume %s or "
                              "choose another --out folder", dir, dir);
    }
    UnetStatus st = unet_mkdir_p(dir, err);
    if (st == UNET_OK) {
        /* a folder reused after a run that failed before writing config.json */
        char *m = run_path(r, "metrics.csv");
        if (m)
            remove(m);
        free(m);
        st = open_append(r, err);
    }
    if (st)
        run_folder_close(r);
    return st;
}

/* Keeps the rows a resumed run would write again no more than once. */
static UnetStatus trim_metrics(const char *path, int epochs_done, int64_t steps, UnetError *err)
{
    unsigned char *text = NULL;
    size_t len = 0;
    if (!unet_path_is_file(path))
        return UNET_OK;
    UnetStatus st = unet_read_file(path, &text, &len, err);
    if (st)
        return st;
    char *out = malloc(len + sizeof metrics_header + 1);
    if (!out) {
        free(text);
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    }
    size_t n = 0;
    char *line = (char *)text;
    int first = 1;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) + 1 : strlen(line);
        int keep = 1;
        if (!nl && !first) {
            keep = 0; /* a row cut short by a crash */
        } else if (first) {
            keep = !strncmp(line, "kind,", 5);
        } else {
            char kind[8] = { 0 };
            int epoch = 0;
            long long step = 0;
            if (sscanf(line, "%7[a-z],%d,%lld", kind, &epoch, &step) != 3)
                keep = 0;
            else if (!strcmp(kind, "epoch"))
                keep = epoch <= epochs_done;
            else
                keep = step <= steps;
        }
        if (first && !keep) {
            memcpy(out, metrics_header, sizeof metrics_header - 1);
            n = sizeof metrics_header - 1;
        }
        if (keep) {
            memcpy(out + n, line, ll);
            n += ll;
            if (!nl)
                out[n++] = '\n';
        }
        first = 0;
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    st = unet_write_buffer_atomic(path, out, n, err);
    free(out);
    return st;
}

UnetStatus run_folder_reopen(RunFolder *r, const char *dir, int epochs_done, int64_t steps,
                             UnetError *err)
{
    memset(r, 0, sizeof *r);
    r->dir = strdup(dir);
    if (!r->dir)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    char *m = run_path(r, "metrics.csv");
    if (!m)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    UnetStatus st = trim_metrics(m, epochs_done, steps, err);
    free(m);
    if (st == UNET_OK)
        st = open_append(r, err);
    if (st)
        run_folder_close(r);
    return st;
}

void run_folder_close(RunFolder *r)
{
    if (r->metrics)
        fclose(r->metrics);
    if (r->log)
        fclose(r->log);
    free(r->dir);
    memset(r, 0, sizeof *r);
}

UnetStatus run_write_config(RunFolder *r, const UnetTrainConfig *cfg, UnetError *err)
{
    char *json = unet_train_config_to_json(cfg);
    char *path = run_path(r, "config.json");
    UnetStatus st;
    if (!json || !path) {
        st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory writing config.json");
    } else {
        size_t n = strlen(json);
        json[n] = '\0';
        char *text = malloc(n + 2);
        if (!text) {
            st = unet_error_set(err, UNET_ERR_NOMEM, "out of memory writing config.json");
        } else {
            memcpy(text, json, n);
            text[n] = '\n';
            st = unet_write_buffer_atomic(path, text, n + 1, err);
            free(text);
        }
    }
    free(json);
    free(path);
    return st;
}

void run_log(RunFolder *r, const char *fmt, ...)
{
    if (!r || !r->log)
        return;
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(r->log, "%s  ", stamp);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->log, fmt, ap);
    va_end(ap);
    fputc('\n', r->log);
    fflush(r->log);
}

static void field(FILE *f, double v)
{
    if (isnan(v))
        fputc(',', f);
    else
        fprintf(f, ",%.9g", v);
}

void run_metrics_row(RunFolder *r, const MetricsRow *row)
{
    if (!r || !r->metrics)
        return;
    FILE *f = r->metrics;
    fprintf(f, "%s,%d,%lld", row->kind, row->epoch, (long long)row->step);
    field(f, row->lr);
    field(f, row->loss);
    field(f, row->train_loss);
    field(f, row->val_loss);
    const UnetSegMetrics *m = row->metrics;
    field(f, m ? m->dice : NAN);
    field(f, m ? m->iou : NAN);
    field(f, m ? m->pixel_error : NAN);
    field(f, m ? m->rand_info.v_rand : NAN);
    field(f, m ? m->rand_info.v_info : NAN);
    field(f, row->samples_per_second);
    field(f, row->data_wait_fraction);
    field(f, row->seconds);
    fputc('\n', f);
    if (!strcmp(row->kind, "epoch"))
        fflush(f);
}

UnetStatus unet_lr_test_write_csv(const UnetLrTestResult *r, const char *path, UnetError *err)
{
    size_t cap = 64 + (size_t)r->count * 96;
    char *buf = malloc(cap);
    if (!buf)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    size_t n = (size_t)snprintf(buf, cap, "iteration,lr,loss,smoothed_loss,suggested\n");
    for (int i = 0; i < r->count && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%d,%.9g,%.9g,%.9g,%d\n", i, r->lr[i], r->loss[i],
                              r->smoothed[i], i == r->suggested_index);
    if (n >= cap)
        n = cap - 1;
    UnetStatus st = unet_write_buffer_atomic(path, buf, n, err);
    free(buf);
    return st;
}
