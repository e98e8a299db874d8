/* error.h - status codes and the error record every libunet call fills on failure.
 *
 * The library never exits or aborts on user input: a failing call returns a
 * UnetStatus other than UNET_OK and, when the caller passed a UnetError, writes
 * a sentence into it naming the thing that failed and what to do about it. */
#ifndef UNET_ERROR_H
#define UNET_ERROR_H

#include <stddef.h>

typedef enum UnetStatus {
    UNET_OK = 0,
    UNET_ERR_INVALID,     /* bad argument or configuration */
    UNET_ERR_IO,          /* file cannot be opened, read or written */
    UNET_ERR_FORMAT,      /* file is readable but its content is wrong */
    UNET_ERR_NOMEM,       /* out of host or device memory */
    UNET_ERR_BACKEND,     /* compute backend failure (CUDA, cuDNN, oneDNN) */
    UNET_ERR_UNSUPPORTED, /* valid request this build or device cannot serve */
    UNET_ERR_CANCELLED,   /* stopped on request */
    UNET_ERR_NUMERIC,     /* NaN/Inf or divergence */
} UnetStatus;

#define UNET_ERROR_MESSAGE_MAX 1024

typedef struct UnetError {
    UnetStatus status;
    char message[UNET_ERROR_MESSAGE_MAX];
} UnetError;

#if defined(__GNUC__)
#define UNET_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define UNET_PRINTF(fmt, args)
#endif

/* Records status and message in err (which may be NULL) and returns status,
 * so a failing path can say `return unet_error_set(err, UNET_ERR_IO, ...)`. */
UnetStatus unet_error_set(UnetError *err, UnetStatus status, const char *fmt, ...) UNET_PRINTF(3, 4);

/* Prepends context ("loading model.safetensors: ") to an existing message. */
UnetStatus unet_error_prefix(UnetError *err, const char *fmt, ...) UNET_PRINTF(2, 3);

void unet_error_clear(UnetError *err);

const char *unet_status_name(UnetStatus status);

#endif
