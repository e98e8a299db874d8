/* unet-session.h - UnetSession: what the window's pages share. The open
 * dataset (UnetDatasetStore), the selected pair and its loaded pixels, the
 * settings, the trainer event queue, and a channel for messages to the user.
 *
 * Pages connect to its signals instead of to each other:
 *   notify::selected        the browser's selection changed (index or -1)
 *   pair-loaded (pointer)   the selected pair's UnetLoadedPair is ready (owned
 *                           by the session, valid until the next pair-loaded);
 *                           NULL when nothing is selected or it could not be read
 *   train-events (pointer, guint)  a batch of UnetUiEvent* from the trainer,
 *                           at most ~30 batches a second, on the main thread
 *   message (string, boolean)      a sentence for the user; TRUE: an error
 *   run-finished (string, int, string)  the trainer thread of a run started
 *                           with unet_session_start_trainer was joined: its
 *                           owner, UnetStatus and message; every event of the
 *                           run has been delivered before */
#ifndef UNET_SESSION_H
#define UNET_SESSION_H

#include <gio/gio.h>

#include "unet-dataset-store.h"
#include "unet-event-queue.h"

G_BEGIN_DECLS

#define UNET_TYPE_SESSION (unet_session_get_type())
G_DECLARE_FINAL_TYPE(UnetSession, unet_session, UNET, SESSION, GObject)

UnetSession *unet_session_new(GSettings *settings);

GSettings *unet_session_get_settings(UnetSession *session);
UnetDatasetStore *unet_session_get_store(UnetSession *session);

/* Opens a dataset folder with the mask mode, class count, validation
 * fraction and split seed from the settings; remembers it as the last
 * dataset and selects its first pair. Errors go out as "message". */
void unet_session_open_dataset(UnetSession *session, const char *path);
/* The dataset options the settings describe. */
void unet_session_dataset_options(UnetSession *session, UnetDatasetOptions *options);

int unet_session_get_selected(UnetSession *session);
void unet_session_set_selected(UnetSession *session, int index);
/* The loaded selected pair, or NULL while none (or while loading). */
const UnetLoadedPair *unet_session_get_loaded_pair(UnetSession *session);

/* The trainer's callback is unet_event_queue_callback with this queue as
 * its user pointer; batches come back as "train-events". */
UnetEventQueue *unet_session_get_event_queue(UnetSession *session);

/* Which page's job the trainer events belong to ("training", "lrtest",
 * "segment"; NULL: none): set by the page that starts a run, cleared when it
 * ends. Pages ignore STARTED/FINISHED/ERROR events of other owners. */
void unet_session_set_run_owner(UnetSession *session, const char *owner);
const char *unet_session_get_run_owner(UnetSession *session);

/* Starts a trainer (its own thread) on cfg for `owner`, with the session's
 * event queue as callback; one run at a time. FALSE with a message when one
 * is running or the trainer refuses the config. */
gboolean unet_session_start_trainer(UnetSession *session, const UnetTrainConfig *cfg, UnetTrainMode mode,
                                    const char *owner, GError **error);
/* The running trainer (NULL: none) for pause/resume/stop flags. */
UnetTrainer *unet_session_get_trainer(UnetSession *session);
gboolean unet_session_is_running(UnetSession *session);
/* Pause and Stop buttons of the page that owns the run (owner as given to
 * unet_session_start_trainer); both do nothing for another owner's run.
 * toggle_pause returns 1 when the run is now paused, 0 when running again,
 * -1 when the owner has no run. stop_run resumes a paused run first so its
 * thread can see the stop; run-finished follows when it has stopped. */
int unet_session_toggle_pause(UnetSession *session, const char *owner);
gboolean unet_session_stop_run(UnetSession *session, const char *owner);
/* Stops the trainer and joins it now (closing the window): blocks until the
 * last checkpoint is written. */
void unet_session_stop_trainer_wait(UnetSession *session);

void unet_session_message(UnetSession *session, gboolean error, const char *format, ...) G_GNUC_PRINTF(3, 4);

G_END_DECLS

#endif
