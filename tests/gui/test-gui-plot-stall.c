/* test-gui-plot-stall.c - a live chart fed 10,000 points a second from a
 * producer thread through the event queue must not stall the main loop: a
 * 1-ms repeating timer records the longest gap between its runs, which must
 * stay under 100 ms; and the chart redraws at most once per frame. */
#include <math.h>

#include "gui-test-util.h"
#include "unet-event-queue.h"
#include "unet-plot-private.h"

#define RATE 10000      /* points per second */
#define SECONDS 3
#define MAX_GAP_MS GUI_TEST_STALL_LIMIT_MS

typedef struct Run {
    UnetPlot *plot;
    gint64 last_tick;
    gint64 max_gap;
    gboolean measuring;
    guint64 appended;
    int frames;
    gboolean done;
} Run;

static void drain(UnetUiEvent *const *events, guint n, gpointer user)
{
    Run *r = user;
    double *x = g_new(double, n), *y = g_new(double, n);
    guint m = 0;
    for (guint i = 0; i < n; i++) {
        if (events[i]->ev.kind == UNET_EVENT_STEP) {
            x[m] = (double)events[i]->ev.step;
            y[m] = events[i]->ev.loss;
            m++;
        } else if (events[i]->ev.kind == UNET_EVENT_FINISHED) {
            r->done = TRUE;
        }
    }
    unet_plot_append_many(r->plot, 0, x, y, m);
    r->appended += m;
    g_free(x);
    g_free(y);
}

static gpointer producer(gpointer data)
{
    UnetEventQueue *q = data;
    UnetTrainEvent ev = { .kind = UNET_EVENT_STEP };
    gint64 start = g_get_monotonic_time();
    for (int i = 0; i < RATE * SECONDS; i++) {
        ev.step = i;
        ev.loss = 0.6 * exp(-i / 8000.0) + 0.1 + 0.05 * sin(i * 0.37);
        unet_event_queue_push(q, &ev);
        /* Hold the rate: the i-th point is due at start + i / RATE. */
        gint64 due = start + (gint64)i * G_USEC_PER_SEC / RATE;
        gint64 now = g_get_monotonic_time();
        if (due > now + 500)
            g_usleep(due - now);
    }
    UnetTrainEvent fin = { .kind = UNET_EVENT_FINISHED };
    unet_event_queue_push(q, &fin);
    return NULL;
}

static gboolean tick_1ms(gpointer data)
{
    Run *r = data;
    gint64 now = g_get_monotonic_time();
    if (r->measuring && r->last_tick && now - r->last_tick > r->max_gap)
        r->max_gap = now - r->last_tick;
    r->last_tick = now;
    return G_SOURCE_CONTINUE;
}

static gboolean count_frame(GtkWidget *w, GdkFrameClock *clock, gpointer data)
{
    ((Run *)data)->frames++;
    return G_SOURCE_CONTINUE;
}

int main(void)
{
    gui_test_init();
    GtkWidget *window = gtk_window_new();
    GtkWidget *w = unet_plot_new();
    gtk_widget_set_size_request(w, 900, 450);
    gtk_window_set_child(GTK_WINDOW(window), w);
    gtk_window_present(GTK_WINDOW(window));
    Run r = { .plot = UNET_PLOT(w) };
    unet_plot_add_series(r.plot, "loss", NULL);
    unet_plot_set_log_y(r.plot, FALSE);
    gui_test_wait_frames(w, 3, 5000);

    UnetEventQueue *q = unet_event_queue_new(drain, &r);
    guint timer = g_timeout_add(1, tick_1ms, &r);
    guint frame_cb = gtk_widget_add_tick_callback(w, count_frame, &r, NULL);
    guint draws0 = unet_plot_get_draw_count(r.plot);
    r.measuring = TRUE;
    r.last_tick = g_get_monotonic_time();
    gint64 t0 = g_get_monotonic_time();
    GThread *t = g_thread_new("producer", producer, q);
    gint64 deadline = t0 + (SECONDS + 20) * G_USEC_PER_SEC;
    while (!r.done && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    r.measuring = FALSE;
    double secs = (g_get_monotonic_time() - t0) / 1e6;
    g_thread_join(t);
    unet_event_queue_flush(q);
    g_source_remove(timer);
    gtk_widget_remove_tick_callback(w, frame_cb);
    guint draws = unet_plot_get_draw_count(r.plot) - draws0;

    printf("%" G_GUINT64_FORMAT " points in %.2f s (%.0f/s), %" G_GUINT64_FORMAT " drains, %d frames, %u redraws, "
           "longest main-loop gap %.1f ms\n",
           r.appended, secs, r.appended / secs, unet_event_queue_get_drains(q), r.frames, draws,
           r.max_gap / 1000.0);
    CHECK(r.done);
    CHECK(r.appended == (guint64)RATE * SECONDS);
    CHECK(unet_plot_get_n_points(r.plot, 0) == (gsize)RATE * SECONDS);
    CHECK_MSG(r.max_gap < MAX_GAP_MS * 1000, "main loop stalled %.1f ms (limit %d)", r.max_gap / 1000.0,
              MAX_GAP_MS);
    CHECK_MSG(draws <= (guint)r.frames + 2, "%u redraws in %d frames", draws, r.frames);
    CHECK_MSG(draws >= 10, "only %u redraws while data streamed", draws);
    /* At most ~30 drains a second. */
    CHECK(unet_event_queue_get_drains(q) <= (guint64)(secs * 1000 / (UNET_EVENT_QUEUE_INTERVAL_MS - 3)) + 2);

    GdkTexture *tex = gui_test_render(w);
    if (tex) {
        char *path = gui_test_save(tex, "plot-stream");
        g_free(path);
        g_object_unref(tex);
    }
    unet_event_queue_free(q);
    gtk_window_destroy(GTK_WINDOW(window));
    return test_finish("gui-plot-stall");
}
