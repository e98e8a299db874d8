/* error.c - filling UnetError records. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

UnetStatus unet_error_set(UnetError *err, UnetStatus status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

UnetStatus unet_error_prefix(UnetError *err, const char *fmt, ...)
{
    if (!err)
        return UNET_ERR_INVALID;
    char prefix[UNET_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old message right and put the prefix in front, truncating
     * at the buffer's end. */
    size_t cap = sizeof err->message - 1;
    size_t plen = strlen(prefix);
    if (plen > cap)
        plen = cap;
    size_t olen = strnlen(err->message, cap);
    if (plen + olen > cap)
        olen = cap - plen;
    memmove(err->message + plen, err->message, olen);
    memcpy(err->message, prefix, plen);
    err->message[plen + olen] = '\0';
    return err->status;
}

void unet_error_clear(UnetError *err)
{
    if (err) {
        err->status = UNET_OK;
        err->message[0] = '\0';
    }
}

const char *unet_status_name(UnetStatus status)
{
    switch (status) {
    case UNET_OK: return "ok";
    case UNET_ERR_INVALID: return "invalid argument";
    case UNET_ERR_IO: return "input/output error";
    case UNET_ERR_FORMAT: return "bad file format";
    case UNET_ERR_NOMEM: return "out of memory";
    case UNET_ERR_BACKEND: return "backend error";
    case UNET_ERR_UNSUPPORTED: return "unsupported";
    case UNET_ERR_CANCELLED: return "cancelled";
    case UNET_ERR_NUMERIC: return "numerical error";
    }
    return "unknown status";
}
