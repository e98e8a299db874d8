/* unet-page.h - UnetPage: what every page of the window's stack offers the
 * window. A page gets the shared UnetSession once, and a page that runs a
 * job (training, the LR test, segmentation) tells the window's run
 * controls (Start, Pause, Stop in the header bar, F5 / F6 / Shift+F5)
 * whether they apply: it fills a UnetRunInfo on request and emits
 * "run-changed" whenever that changes. The window calls run_start,
 * run_pause (pause or resume) and run_stop of the visible page. */
#ifndef UNET_PAGE_H
#define UNET_PAGE_H

#include <gtk/gtk.h>

#include "unet-session.h"

G_BEGIN_DECLS

#define UNET_TYPE_PAGE (unet_page_get_type())
G_DECLARE_INTERFACE(UnetPage, unet_page, UNET, PAGE, GtkWidget)

typedef enum UnetRunState {
    UNET_RUN_NONE = 0, /* the page runs nothing: run controls hidden */
    UNET_RUN_IDLE,
    UNET_RUN_RUNNING,
    UNET_RUN_PAUSED,
} UnetRunState;

typedef struct UnetRunInfo {
    UnetRunState state;
    gboolean can_start;      /* Start is possible now */
    const char *start_label; /* tooltip of Start ("Start Training") */
} UnetRunInfo;

struct _UnetPageInterface {
    GTypeInterface parent_iface;
    void (*set_session)(UnetPage *page, UnetSession *session);
    void (*get_run_info)(UnetPage *page, UnetRunInfo *info);
    void (*run_start)(UnetPage *page);
    void (*run_pause)(UnetPage *page);
    void (*run_stop)(UnetPage *page);
};

void unet_page_set_session(UnetPage *page, UnetSession *session);
/* A page without get_run_info reports UNET_RUN_NONE. */
void unet_page_get_run_info(UnetPage *page, UnetRunInfo *info);
void unet_page_run_start(UnetPage *page);
void unet_page_run_pause(UnetPage *page);
void unet_page_run_stop(UnetPage *page);
/* For implementations: emits "run-changed". */
void unet_page_run_changed(UnetPage *page);

G_END_DECLS

#endif
