/* test-gui-event-queue.c - the trainer-to-UI queue: every event arrives once,
 * in order, deep-copied, on the main thread, in at most ~30 drains a second;
 * a stalled UI drops step events beyond the cap but never the others. */
#include <string.h>

#include "test-common.h"
#include "unet-event-queue.h"

#define N_STEPS 6000

typedef struct Seen {
    GThread *main_thread;
    gint64 last_drain;
    gint64 min_gap_us;
    guint drains;
    guint64 events;
    gint64 last_step;
    gboolean in_order, on_main, preview_ok, message_ok;
    gboolean finished;
} Seen;

static void drain(UnetUiEvent *const *events, guint n, gpointer user)
{
    Seen *s = user;
    gint64 now = g_get_monotonic_time();
    if (s->drains > 0 && now - s->last_drain < s->min_gap_us)
        s->min_gap_us = now - s->last_drain;
    s->last_drain = now;
    s->drains++;
    if (g_thread_self() != s->main_thread)
        s->on_main = FALSE;
    for (guint i = 0; i < n; i++) {
        const UnetTrainEvent *ev = &events[i]->ev;
        s->events++;
        if (ev->kind == UNET_EVENT_STEP) {
            if (ev->step != s->last_step + 1)
                s->in_order = FALSE;
            s->last_step = ev->step;
        } else if (ev->kind == UNET_EVENT_PREVIEW) {
            const UnetPreview *p = ev->preview;
            gboolean ok = p && p->width == 16 && p->height == 8 && p->name && !strcmp(p->name, "val-3");
            for (int k = 0; ok && k < 16 * 8; k++)
                ok = p->image[k] == (guint8)k && p->truth[k] == (guint8)(255 - k) && p->prediction[k] == 7;
            s->preview_ok = ok;
        } else if (ev->kind == UNET_EVENT_CHECKPOINT) {
            s->message_ok = ev->path && !strcmp(ev->path, "/runs/a/epoch-3.safetensors");
        } else if (ev->kind == UNET_EVENT_FINISHED) {
            s->finished = TRUE;
        }
    }
}

static gpointer producer(gpointer data)
{
    UnetEventQueue *q = data;
    UnetTrainEvent ev = { 0 };
    for (int i = 1; i <= N_STEPS; i++) {
        ev.kind = UNET_EVENT_STEP;
        ev.step = i;
        ev.loss = 1.0 / i;
        unet_event_queue_push(q, &ev);
        if (i % 20 == 0)
            g_usleep(1000);  /* ~20k events/s for ~0.3 s */
        if (i == N_STEPS / 2) {
            /* Buffers that die right after the push: the queue must copy. */
            guint8 *img = g_malloc(128), *truth = g_malloc(128), *pred = g_malloc(128);
            for (int k = 0; k < 128; k++) {
                img[k] = (guint8)k;
                truth[k] = (guint8)(255 - k);
                pred[k] = 7;
            }
            char *name = g_strdup("val-3");
            UnetPreview pv = { 16, 8, img, truth, pred, name };
            UnetTrainEvent pe = { .kind = UNET_EVENT_PREVIEW, .preview = &pv };
            unet_event_queue_push(q, &pe);
            memset(img, 0, 128);
            g_free(img);
            g_free(truth);
            g_free(pred);
            g_free(name);
            char *path = g_strdup("/runs/a/epoch-3.safetensors");
            UnetTrainEvent ce = { .kind = UNET_EVENT_CHECKPOINT, .path = path };
            unet_event_queue_callback(&ce, q);
            path[0] = 'X';
            g_free(path);
        }
    }
    UnetTrainEvent fin = { .kind = UNET_EVENT_FINISHED, .message = "done" };
    unet_event_queue_push(q, &fin);
    return NULL;
}

static void count_drain(UnetUiEvent *const *events, guint n, gpointer user)
{
    guint64 *count = user;
    *count += n;
}

int main(void)
{
    Seen s = { .main_thread = g_thread_self(), .min_gap_us = G_MAXINT64, .in_order = TRUE, .on_main = TRUE };
    UnetEventQueue *q = unet_event_queue_new(drain, &s);
    GThread *t = g_thread_new("producer", producer, q);
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (!s.finished && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    g_thread_join(t);
    unet_event_queue_flush(q);

    CHECK(s.finished);
    CHECK_MSG(s.events == N_STEPS + 3, "delivered %" G_GUINT64_FORMAT " of %d", s.events, N_STEPS + 3);
    CHECK(unet_event_queue_get_delivered(q) == N_STEPS + 3);
    CHECK(unet_event_queue_get_dropped(q) == 0);
    CHECK(s.in_order);
    CHECK(s.on_main);
    CHECK(s.preview_ok);
    CHECK(s.message_ok);
    /* Batches: far fewer drains than events, and never two within the
     * interval (a little slack for timer rounding). */
    CHECK_MSG(s.drains >= 2 && s.drains < 200, "%u drains", s.drains);
    CHECK_MSG(s.drains < 2 || s.min_gap_us >= (UNET_EVENT_QUEUE_INTERVAL_MS - 3) * 1000,
              "drains %" G_GINT64_FORMAT " us apart", s.min_gap_us);
    printf("%u drains for %" G_GUINT64_FORMAT " events, closest %.1f ms apart\n", s.drains, s.events,
           s.min_gap_us / 1000.0);
    unet_event_queue_free(q);

    /* A stalled UI: nothing drains while the producer runs ahead. */
    guint64 got = 0;
    q = unet_event_queue_new(count_drain, &got);
    UnetTrainEvent ev = { .kind = UNET_EVENT_STEP };
    for (int i = 0; i < UNET_EVENT_QUEUE_MAX_PENDING + 10; i++)
        unet_event_queue_push(q, &ev);
    UnetTrainEvent err = { .kind = UNET_EVENT_ERROR, .message = "out of memory" };
    unet_event_queue_push(q, &err);
    CHECK(unet_event_queue_get_dropped(q) == 10);
    CHECK(unet_event_queue_flush(q) == UNET_EVENT_QUEUE_MAX_PENDING + 1);
    CHECK(got == UNET_EVENT_QUEUE_MAX_PENDING + 1);
    /* Freed with events still pending. */
    unet_event_queue_push(q, &ev);
    unet_event_queue_free(q);
    return test_finish("gui-event-queue");
}
