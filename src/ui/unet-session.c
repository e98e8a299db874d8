/* unet-session.c - UnetSession: shared state of the workbench window. */
#include "unet-session.h"

#include <glib/gi18n.h>

struct _UnetSession {
    GObject parent_instance;
    GSettings *settings;
    UnetDatasetStore *store;
    int selected;
    UnetLoadedPair *loaded;
    GCancellable *load_cancel;
    GCancellable *open_cancel;
    UnetEventQueue *queue;
    char *run_owner;
    UnetTrainer *trainer;
    GCancellable *trainer_cancel; /* set when the window joins the trainer itself */
};

enum { PROP_0, PROP_SELECTED, N_PROPS };
static GParamSpec *props[N_PROPS];

enum { SIGNAL_PAIR_LOADED, SIGNAL_TRAIN_EVENTS, SIGNAL_MESSAGE, SIGNAL_RUN_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(UnetSession, unet_session, G_TYPE_OBJECT)

static void drain(UnetUiEvent *const *events, guint n, gpointer user)
{
    g_signal_emit(user, signals[SIGNAL_TRAIN_EVENTS], 0, (gpointer)events, n);
}

static void unet_session_dispose(GObject *object)
{
    UnetSession *s = UNET_SESSION(object);
    unet_session_stop_trainer_wait(s);
    if (s->load_cancel)
        g_cancellable_cancel(s->load_cancel);
    if (s->open_cancel)
        g_cancellable_cancel(s->open_cancel);
    g_clear_object(&s->load_cancel);
    g_clear_object(&s->open_cancel);
    g_clear_pointer(&s->loaded, unet_loaded_pair_free);
    g_clear_object(&s->store);
    g_clear_object(&s->settings);
    G_OBJECT_CLASS(unet_session_parent_class)->dispose(object);
}

static void unet_session_finalize(GObject *object)
{
    UnetSession *s = UNET_SESSION(object);
    unet_event_queue_free(s->queue);
    g_free(s->run_owner);
    G_OBJECT_CLASS(unet_session_parent_class)->finalize(object);
}

static void unet_session_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
    UnetSession *s = UNET_SESSION(object);
    switch (id) {
    case PROP_SELECTED:
        g_value_set_int(value, s->selected);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    }
}

static void unet_session_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
    switch (id) {
    case PROP_SELECTED:
        unet_session_set_selected(UNET_SESSION(object), g_value_get_int(value));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    }
}

static void unet_session_class_init(UnetSessionClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    object_class->dispose = unet_session_dispose;
    object_class->finalize = unet_session_finalize;
    object_class->get_property = unet_session_get_property;
    object_class->set_property = unet_session_set_property;
    props[PROP_SELECTED] = g_param_spec_int("selected", NULL, NULL, -1, G_MAXINT, -1,
                                            G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(object_class, N_PROPS, props);
    signals[SIGNAL_PAIR_LOADED] = g_signal_new("pair-loaded", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                               NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
    signals[SIGNAL_TRAIN_EVENTS] = g_signal_new("train-events", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                                NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_POINTER, G_TYPE_UINT);
    signals[SIGNAL_MESSAGE] = g_signal_new("message", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                           NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BOOLEAN);
    signals[SIGNAL_RUN_FINISHED] = g_signal_new("run-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                                NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_INT,
                                                G_TYPE_STRING);
}

static void unet_session_init(UnetSession *s)
{
    s->selected = -1;
    s->store = unet_dataset_store_new();
    s->queue = unet_event_queue_new(drain, s);
}

UnetSession *unet_session_new(GSettings *settings)
{
    g_return_val_if_fail(G_IS_SETTINGS(settings), NULL);
    UnetSession *s = g_object_new(UNET_TYPE_SESSION, NULL);
    s->settings = g_object_ref(settings);
    return s;
}

GSettings *unet_session_get_settings(UnetSession *session)
{
    return session->settings;
}

UnetDatasetStore *unet_session_get_store(UnetSession *session)
{
    return session->store;
}

UnetEventQueue *unet_session_get_event_queue(UnetSession *session)
{
    return session->queue;
}

const UnetLoadedPair *unet_session_get_loaded_pair(UnetSession *session)
{
    return session->loaded;
}

int unet_session_get_selected(UnetSession *session)
{
    return session->selected;
}

void unet_session_set_run_owner(UnetSession *session, const char *owner)
{
    g_return_if_fail(UNET_IS_SESSION(session));
    g_free(session->run_owner);
    session->run_owner = g_strdup(owner);
}

const char *unet_session_get_run_owner(UnetSession *session)
{
    g_return_val_if_fail(UNET_IS_SESSION(session), NULL);
    return session->run_owner;
}

void unet_session_message(UnetSession *session, gboolean error, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    char *text = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_signal_emit(session, signals[SIGNAL_MESSAGE], 0, text, error);
    g_free(text);
}

void unet_session_dataset_options(UnetSession *session, UnetDatasetOptions *opt)
{
    unet_dataset_options_default(opt);
    char *mode = g_settings_get_string(session->settings, "mask-mode");
    UnetMaskMode m;
    if (unet_mask_mode_parse(mode, &m, NULL) == UNET_OK)
        opt->mask_mode = m;
    g_free(mode);
    opt->classes = g_settings_get_int(session->settings, "classes");
    if (opt->mask_mode != UNET_MASK_MULTICLASS && opt->classes < 3)
        opt->classes = 0;
}

static void pair_loaded(GObject *source, GAsyncResult *result, gpointer data)
{
    UnetSession *s = data;
    GError *error = NULL;
    UnetLoadedPair *p = unet_dataset_store_load_pair_finish(UNET_DATASET_STORE(source), result, &error);
    if (!p) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            unet_session_message(s, TRUE, "%s", error->message);
            /* Listeners learn that the selected pair has no pixels. */
            g_clear_pointer(&s->loaded, unet_loaded_pair_free);
            g_signal_emit(s, signals[SIGNAL_PAIR_LOADED], 0, NULL);
        }
        g_error_free(error);
        g_object_unref(s);
        return;
    }
    if (p->index != s->selected) {
        unet_loaded_pair_free(p);
        g_object_unref(s);
        return;
    }
    g_clear_pointer(&s->loaded, unet_loaded_pair_free);
    s->loaded = p;
    g_signal_emit(s, signals[SIGNAL_PAIR_LOADED], 0, p);
    g_object_unref(s);
}

void unet_session_set_selected(UnetSession *session, int index)
{
    g_return_if_fail(UNET_IS_SESSION(session));
    if (index < -1 || index >= (int)g_list_model_get_n_items(G_LIST_MODEL(session->store)))
        index = -1;
    if (index == session->selected)
        return;
    session->selected = index;
    g_clear_pointer(&session->loaded, unet_loaded_pair_free);
    if (session->load_cancel) {
        g_cancellable_cancel(session->load_cancel);
        g_clear_object(&session->load_cancel);
    }
    g_object_notify_by_pspec(G_OBJECT(session), props[PROP_SELECTED]);
    if (index >= 0) {
        session->load_cancel = g_cancellable_new();
        unet_dataset_store_load_pair_async(session->store, index, session->load_cancel, pair_loaded,
                                           g_object_ref(session));
    } else {
        g_signal_emit(session, signals[SIGNAL_PAIR_LOADED], 0, NULL);
    }
}

static void dataset_opened(GObject *source, GAsyncResult *result, gpointer data)
{
    UnetSession *s = data;
    GError *error = NULL;
    UnetDatasetStore *store = UNET_DATASET_STORE(source);
    if (!unet_dataset_store_open_finish(store, result, &error)) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            unet_session_message(s, TRUE, _("Could not open the dataset: %s"), error->message);
        g_error_free(error);
        g_object_unref(s);
        return;
    }
    const char *path = unet_dataset_store_get_path(store);
    if (s->settings)
        g_settings_set_string(s->settings, "last-dataset", path);
    s->selected = -2; /* a new dataset: reselect even the same index */
    unet_session_set_selected(s, g_list_model_get_n_items(G_LIST_MODEL(store)) > 0 ? 0 : -1);
    g_object_unref(s);
}

void unet_session_open_dataset(UnetSession *session, const char *path)
{
    g_return_if_fail(UNET_IS_SESSION(session));
    g_return_if_fail(path != NULL);
    UnetDatasetOptions opt;
    unet_session_dataset_options(session, &opt);
    UnetError err = { 0 };
    if (unet_dataset_options_validate(&opt, &err) != UNET_OK) {
        unet_session_message(session, TRUE, _("The dataset settings are not valid: %s"), err.message);
        return;
    }
    if (session->open_cancel) {
        g_cancellable_cancel(session->open_cancel);
        g_clear_object(&session->open_cancel);
    }
    session->open_cancel = g_cancellable_new();
    double val = g_settings_get_double(session->settings, "val-fraction");
    guint64 seed = g_settings_get_uint64(session->settings, "split-seed");
    unet_dataset_store_open_async(session->store, path, &opt, val, seed, session->open_cancel, dataset_opened,
                                  g_object_ref(session));
}

/* ---- The trainer ---- */

typedef struct TrainerWait {
    UnetTrainer *trainer;
    UnetStatus status;
    char message[UNET_ERROR_MESSAGE_MAX];
} TrainerWait;

static void trainer_wait_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    TrainerWait *w = data;
    UnetError err = { 0 };
    w->status = unet_trainer_wait(w->trainer, &err);
    g_strlcpy(w->message, err.message, sizeof w->message);
    g_task_return_boolean(task, TRUE);
}

static void finish_run(UnetSession *s, UnetStatus status, const char *message)
{
    /* Every event the thread sent reaches the pages before the run ends. */
    unet_event_queue_flush(s->queue);
    unet_trainer_free(s->trainer);
    s->trainer = NULL;
    char *owner = g_strdup(s->run_owner);
    unet_session_set_run_owner(s, NULL);
    g_signal_emit(s, signals[SIGNAL_RUN_FINISHED], 0, owner, (int)status, message);
    g_free(owner);
}

static void trainer_joined(GObject *source, GAsyncResult *result, gpointer data)
{
    UnetSession *s = UNET_SESSION(source);
    TrainerWait *w = g_task_get_task_data(G_TASK(result));
    /* The window may have joined and freed it itself meanwhile. */
    if (s->trainer == w->trainer)
        finish_run(s, w->status, w->message);
}

gboolean unet_session_start_trainer(UnetSession *session, const UnetTrainConfig *cfg, UnetTrainMode mode,
                                    const char *owner, GError **error)
{
    g_return_val_if_fail(UNET_IS_SESSION(session), FALSE);
    if (session->trainer) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY, _("Another run is still going; stop it first."));
        return FALSE;
    }
    UnetError err = { 0 };
    UnetTrainer *t = unet_trainer_new(cfg, unet_event_queue_callback, session->queue, &err);
    if (!t || unet_trainer_start(t, mode, &err) != UNET_OK) {
        unet_trainer_free(t);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.message);
        return FALSE;
    }
    session->trainer = t;
    unet_session_set_run_owner(session, owner);
    TrainerWait *w = g_new0(TrainerWait, 1);
    w->trainer = t;
    GTask *task = g_task_new(session, NULL, trainer_joined, NULL);
    g_task_set_task_data(task, w, g_free);
    g_task_run_in_thread(task, trainer_wait_thread);
    g_object_unref(task);
    return TRUE;
}

UnetTrainer *unet_session_get_trainer(UnetSession *session)
{
    return session->trainer;
}

gboolean unet_session_is_running(UnetSession *session)
{
    return session->trainer != NULL;
}

int unet_session_toggle_pause(UnetSession *session, const char *owner)
{
    if (g_strcmp0(session->run_owner, owner) || !session->trainer)
        return -1;
    if (unet_trainer_is_paused(session->trainer)) {
        unet_trainer_resume(session->trainer);
        return 0;
    }
    unet_trainer_pause(session->trainer);
    return 1;
}

gboolean unet_session_stop_run(UnetSession *session, const char *owner)
{
    if (g_strcmp0(session->run_owner, owner) || !session->trainer)
        return FALSE;
    if (unet_trainer_is_paused(session->trainer))
        unet_trainer_resume(session->trainer);
    unet_trainer_stop(session->trainer);
    return TRUE;
}

void unet_session_stop_trainer_wait(UnetSession *session)
{
    if (!session->trainer)
        return;
    unet_trainer_stop(session->trainer);
    /* The waiting task joins the thread; wait for it on this thread's loop. */
    UnetTrainer *t = session->trainer;
    while (session->trainer == t)
        g_main_context_iteration(NULL, TRUE);
}
