/* test-error.c - UnetError formatting and prefixing. */
#include <string.h>

#include "error.h"
#include "test-common.h"

int main(void)
{
    UnetError err = { 0 };
    CHECK(unet_error_set(&err, UNET_ERR_IO, "cannot open %s", "a.png") == UNET_ERR_IO);
    CHECK(err.status == UNET_ERR_IO);
    CHECK(!strcmp(err.message, "cannot open a.png"));
    unet_error_prefix(&err, "loading %s: ", "dataset");
    CHECK(!strcmp(err.message, "loading dataset: cannot open a.png"));
    CHECK(unet_error_set(NULL, UNET_ERR_FORMAT, "ignored") == UNET_ERR_FORMAT);
    unet_error_clear(&err);
    CHECK(err.status == UNET_OK && err.message[0] == '\0');
    CHECK(strcmp(unet_status_name(UNET_ERR_NOMEM), "out of memory") == 0);
    return test_finish("error");
}
