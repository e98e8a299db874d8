/* params.c - lookup in a table of named arena slices. */
#include "params.h"

#include <string.h>

const UnetParamInfo *unet_param_table_find(const UnetParamTable *t, const char *name)
{
    for (size_t i = 0; i < t->len; i++)
        if (!strcmp(t->items[i].name, name))
            return &t->items[i];
    return NULL;
}
