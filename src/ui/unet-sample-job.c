/* unet-sample-job.c - the sample dataset written in a GTask thread. */
#include "unet-sample-job.h"

#include "sample-data.h"

typedef struct SampleJob {
    char *dir;
    UnetSampleDataOptions opt;
    UnetSampleJobProgress progress;
    gpointer progress_data;
    GMainContext *context;
    GCancellable *cancellable;
} SampleJob;

typedef struct ProgressMsg {
    UnetSampleJobProgress progress;
    gpointer data;
    int done, total;
} ProgressMsg;

static void sample_job_free(gpointer data)
{
    SampleJob *job = data;
    g_free(job->dir);
    g_main_context_unref(job->context);
    g_clear_object(&job->cancellable);
    g_free(job);
}

char *unet_sample_job_default_dir(void)
{
    return g_build_filename(g_get_user_data_dir(), "unet-workbench", "sample-data", NULL);
}

static gboolean deliver_progress(gpointer data)
{
    ProgressMsg *m = data;
    m->progress(m->done, m->total, m->data);
    return G_SOURCE_REMOVE;
}

static void on_pair_written(int done, int total, void *user)
{
    SampleJob *job = user;
    if (!job->progress || g_cancellable_is_cancelled(job->cancellable))
        return;
    ProgressMsg *m = g_new(ProgressMsg, 1);
    *m = (ProgressMsg){ job->progress, job->progress_data, done, total };
    g_main_context_invoke_full(job->context, G_PRIORITY_DEFAULT, deliver_progress, m, g_free);
}

static void sample_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    SampleJob *job = data;
    UnetError err = { 0 };
    if (unet_sample_data_write(job->dir, &job->opt, on_pair_written, job, &err) != UNET_OK) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
        return;
    }
    g_task_return_pointer(task, g_strdup(job->dir), g_free);
}

void unet_sample_job_run_async(const char *dir, int count, int size, guint64 seed, UnetSampleJobProgress progress,
                               gpointer progress_data, GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
    g_return_if_fail(dir != NULL);
    SampleJob *job = g_new0(SampleJob, 1);
    job->dir = g_strdup(dir);
    unet_sample_data_options_default(&job->opt);
    job->opt.count = count;
    job->opt.size = size;
    job->opt.seed = seed;
    job->progress = progress;
    job->progress_data = progress_data;
    job->context = g_main_context_ref_thread_default();
    job->cancellable = cancellable ? g_object_ref(cancellable) : NULL;
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, unet_sample_job_run_async);
    g_task_set_task_data(task, job, sample_job_free);
    g_task_run_in_thread(task, sample_thread);
    g_object_unref(task);
}

char *unet_sample_job_run_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}
