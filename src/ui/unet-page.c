/* unet-page.c - the UnetPage interface. */
#include "unet-page.h"

G_DEFINE_INTERFACE(UnetPage, unet_page, GTK_TYPE_WIDGET)

static guint run_changed_signal;

static void unet_page_default_init(UnetPageInterface *iface)
{
    run_changed_signal = g_signal_new("run-changed", G_TYPE_FROM_INTERFACE(iface), G_SIGNAL_RUN_LAST, 0, NULL,
                                      NULL, NULL, G_TYPE_NONE, 0);
}

void unet_page_set_session(UnetPage *page, UnetSession *session)
{
    g_return_if_fail(UNET_IS_PAGE(page));
    UnetPageInterface *iface = UNET_PAGE_GET_IFACE(page);
    if (iface->set_session)
        iface->set_session(page, session);
}

void unet_page_get_run_info(UnetPage *page, UnetRunInfo *info)
{
    g_return_if_fail(UNET_IS_PAGE(page));
    info->state = UNET_RUN_NONE;
    info->can_start = FALSE;
    info->start_label = NULL;
    UnetPageInterface *iface = UNET_PAGE_GET_IFACE(page);
    if (iface->get_run_info)
        iface->get_run_info(page, info);
}

void unet_page_run_start(UnetPage *page)
{
    g_return_if_fail(UNET_IS_PAGE(page));
    UnetPageInterface *iface = UNET_PAGE_GET_IFACE(page);
    if (iface->run_start)
        iface->run_start(page);
}

void unet_page_run_pause(UnetPage *page)
{
    g_return_if_fail(UNET_IS_PAGE(page));
    UnetPageInterface *iface = UNET_PAGE_GET_IFACE(page);
    if (iface->run_pause)
        iface->run_pause(page);
}

void unet_page_run_stop(UnetPage *page)
{
    g_return_if_fail(UNET_IS_PAGE(page));
    UnetPageInterface *iface = UNET_PAGE_GET_IFACE(page);
    if (iface->run_stop)
        iface->run_stop(page);
}

void unet_page_run_changed(UnetPage *page)
{
    g_return_if_fail(UNET_IS_PAGE(page));
    g_signal_emit(page, run_changed_signal, 0);
}
