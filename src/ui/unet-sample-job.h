/* unet-sample-job.h - writes the synthetic sample dataset (sample-data.h) in
 * a worker thread, reporting progress on the main loop. */
#ifndef UNET_SAMPLE_JOB_H
#define UNET_SAMPLE_JOB_H

#include <gio/gio.h>

G_BEGIN_DECLS

/* Called on the caller's main context after each pair is written. */
typedef void (*UnetSampleJobProgress)(int done, int total, gpointer user_data);

/* Where the sample dataset goes unless the user chose another folder:
 * $XDG_DATA_HOME/unet-workbench/sample-data. Free with g_free. */
char *unet_sample_job_default_dir(void);

/* Writes `count` pairs of size x size pixels (seed `seed`) into dir/images
 * and dir/masks. progress may be NULL; progress_data must stay valid until
 * callback runs. */
void unet_sample_job_run_async(const char *dir, int count, int size, guint64 seed, UnetSampleJobProgress progress,
                               gpointer progress_data, GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
/* Returns the folder written, or NULL with error set. */
char *unet_sample_job_run_finish(GAsyncResult *result, GError **error);

G_END_DECLS

#endif
