/* unet-event-queue.h - the bridge from the trainer thread to the GTK main
 * loop.
 *
 * The trainer's callback (any thread) pushes a deep copy of each event; the
 * queue hands everything pending to its drain function on the main context
 * it was created on, at most once per interval (33 ms: ~30 drains a second),
 * so the UI appends a whole batch to its plots and redraws once. Only the
 * drain function runs on the main thread; push never touches GTK. */
#ifndef UNET_EVENT_QUEUE_H
#define UNET_EVENT_QUEUE_H

#include <glib.h>

#include "trainer.h"

G_BEGIN_DECLS

/* An event copied out of the trainer callback: ev's pointers (message,
 * path, preview and its planes) point into memory owned by the copy. */
typedef struct UnetUiEvent {
    UnetTrainEvent ev;
    UnetPreview preview_copy;
} UnetUiEvent;

UnetUiEvent *unet_ui_event_copy(const UnetTrainEvent *event);
void unet_ui_event_free(UnetUiEvent *event);

typedef struct UnetEventQueue UnetEventQueue;

/* Called on the main context with the batch in arrival order; the events are
 * freed after it returns. */
typedef void (*UnetEventQueueDrain)(UnetUiEvent *const *events, guint n, gpointer user);

#define UNET_EVENT_QUEUE_INTERVAL_MS 33
/* Beyond this many undrained events, STEP and LR_TEST_POINT events are
 * dropped (and counted) so a stalled UI cannot exhaust memory; other kinds
 * are always kept. */
#define UNET_EVENT_QUEUE_MAX_PENDING 200000

/* Drains on the thread-default main context of the calling thread. */
UnetEventQueue *unet_event_queue_new(UnetEventQueueDrain drain, gpointer user);
/* The producer must have stopped (trainer joined) before this. Undrained
 * events are dropped. */
void unet_event_queue_free(UnetEventQueue *q);

/* Thread-safe. */
void unet_event_queue_push(UnetEventQueue *q, const UnetTrainEvent *event);
/* A UnetTrainCallback: pass the queue as `user`. */
void unet_event_queue_callback(const UnetTrainEvent *event, void *user);

/* Drains now on the calling (main) thread; returns the number drained. */
guint unet_event_queue_flush(UnetEventQueue *q);

/* Counters (thread-safe): drains done, events delivered, events dropped. */
guint64 unet_event_queue_get_drains(UnetEventQueue *q);
guint64 unet_event_queue_get_delivered(UnetEventQueue *q);
guint64 unet_event_queue_get_dropped(UnetEventQueue *q);

G_END_DECLS

#endif
