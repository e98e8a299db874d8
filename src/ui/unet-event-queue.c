/* unet-event-queue.c - thread-safe event queue drained on the main loop at
 * a bounded rate. */
#include "unet-event-queue.h"

#include <string.h>

struct UnetEventQueue {
    GMutex lock;
    GPtrArray *pending;       /* UnetUiEvent*, guarded by lock */
    GSource *source;          /* scheduled drain, guarded by lock */
    gint64 last_drain_us;     /* guarded by lock */
    guint64 drains, delivered, dropped;
    GMainContext *context;
    UnetEventQueueDrain drain;
    gpointer user;
};

static guint8 *dup_plane(const uint8_t *p, gsize n)
{
    return p ? g_memdup2(p, n) : NULL;
}

UnetUiEvent *unet_ui_event_copy(const UnetTrainEvent *event)
{
    UnetUiEvent *e = g_new(UnetUiEvent, 1);
    e->ev = *event;
    e->ev.message = g_strdup(event->message);
    e->ev.path = g_strdup(event->path);
    memset(&e->preview_copy, 0, sizeof e->preview_copy);
    e->ev.preview = NULL;
    const UnetPreview *p = event->preview;
    if (p && p->width > 0 && p->height > 0) {
        gsize n = (gsize)p->width * p->height;
        e->preview_copy.width = p->width;
        e->preview_copy.height = p->height;
        e->preview_copy.image = dup_plane(p->image, n);
        e->preview_copy.truth = dup_plane(p->truth, n);
        e->preview_copy.prediction = dup_plane(p->prediction, n);
        e->preview_copy.name = g_strdup(p->name);
        e->ev.preview = &e->preview_copy;
    }
    return e;
}

void unet_ui_event_free(UnetUiEvent *e)
{
    if (!e)
        return;
    g_free((char *)e->ev.message);
    g_free((char *)e->ev.path);
    g_free((guint8 *)e->preview_copy.image);
    g_free((guint8 *)e->preview_copy.truth);
    g_free((guint8 *)e->preview_copy.prediction);
    g_free((char *)e->preview_copy.name);
    g_free(e);
}

UnetEventQueue *unet_event_queue_new(UnetEventQueueDrain drain, gpointer user)
{
    g_return_val_if_fail(drain != NULL, NULL);
    UnetEventQueue *q = g_new0(UnetEventQueue, 1);
    g_mutex_init(&q->lock);
    q->pending = g_ptr_array_new();
    q->context = g_main_context_ref_thread_default();
    q->drain = drain;
    q->user = user;
    return q;
}

static GPtrArray *take_pending(UnetEventQueue *q)
{
    g_mutex_lock(&q->lock);
    GPtrArray *batch = q->pending;
    q->pending = g_ptr_array_new();
    if (q->source) {
        g_source_destroy(q->source);
        g_source_unref(q->source);
        q->source = NULL;
    }
    q->last_drain_us = g_get_monotonic_time();
    g_mutex_unlock(&q->lock);
    return batch;
}

guint unet_event_queue_flush(UnetEventQueue *q)
{
    g_return_val_if_fail(q != NULL, 0);
    GPtrArray *batch = take_pending(q);
    guint n = batch->len;
    if (n)
        q->drain((UnetUiEvent *const *)batch->pdata, n, q->user);
    for (guint i = 0; i < n; i++)
        unet_ui_event_free(batch->pdata[i]);
    g_ptr_array_unref(batch);
    g_mutex_lock(&q->lock);
    if (n) {
        q->drains++;
        q->delivered += n;
    }
    g_mutex_unlock(&q->lock);
    return n;
}

static gboolean drain_cb(gpointer data)
{
    unet_event_queue_flush(data);
    return G_SOURCE_REMOVE;
}

void unet_event_queue_push(UnetEventQueue *q, const UnetTrainEvent *event)
{
    g_return_if_fail(q != NULL && event != NULL);
    gboolean droppable = event->kind == UNET_EVENT_STEP || event->kind == UNET_EVENT_LR_TEST_POINT;
    g_mutex_lock(&q->lock);
    if (droppable && q->pending->len >= UNET_EVENT_QUEUE_MAX_PENDING) {
        q->dropped++;
        g_mutex_unlock(&q->lock);
        return;
    }
    g_mutex_unlock(&q->lock);

    /* Copy outside the lock: previews can be large. */
    UnetUiEvent *copy = unet_ui_event_copy(event);

    g_mutex_lock(&q->lock);
    g_ptr_array_add(q->pending, copy);
    if (!q->source) {
        /* At most one drain per interval: wait out the rest of it. */
        gint64 since = (g_get_monotonic_time() - q->last_drain_us) / 1000;
        guint delay = since >= UNET_EVENT_QUEUE_INTERVAL_MS ? 0 : (guint)(UNET_EVENT_QUEUE_INTERVAL_MS - since);
        q->source = g_timeout_source_new(delay);
        g_source_set_priority(q->source, G_PRIORITY_DEFAULT);
        g_source_set_callback(q->source, drain_cb, q, NULL);
        g_source_set_name(q->source, "unet-event-queue-drain");
        g_source_attach(q->source, q->context);
    }
    g_mutex_unlock(&q->lock);
}

void unet_event_queue_callback(const UnetTrainEvent *event, void *user)
{
    unet_event_queue_push(user, event);
}

void unet_event_queue_free(UnetEventQueue *q)
{
    if (!q)
        return;
    g_mutex_lock(&q->lock);
    if (q->source) {
        g_source_destroy(q->source);
        g_source_unref(q->source);
        q->source = NULL;
    }
    g_mutex_unlock(&q->lock);
    for (guint i = 0; i < q->pending->len; i++)
        unet_ui_event_free(q->pending->pdata[i]);
    g_ptr_array_unref(q->pending);
    g_main_context_unref(q->context);
    g_mutex_clear(&q->lock);
    g_free(q);
}

static guint64 read_counter(UnetEventQueue *q, const guint64 *c)
{
    g_mutex_lock(&q->lock);
    guint64 v = *c;
    g_mutex_unlock(&q->lock);
    return v;
}

guint64 unet_event_queue_get_drains(UnetEventQueue *q)
{
    return read_counter(q, &q->drains);
}

guint64 unet_event_queue_get_delivered(UnetEventQueue *q)
{
    return read_counter(q, &q->delivered);
}

guint64 unet_event_queue_get_dropped(UnetEventQueue *q)
{
    return read_counter(q, &q->dropped);
}
