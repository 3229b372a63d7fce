#include "proto/base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sh_strerror(int code)
{
    switch (code) {
#define SH_ERR_CASE(name, value, text) \
    case value:                        \
        return text;
        SH_ERR_MAP(SH_ERR_CASE)
#undef SH_ERR_CASE
    }
    return "unknown error";
}

void sh_errmsg_printf(char *msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, SH_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

void sh_errmsg_wrapf(char *msg, const char *fmt, ...)
{
    char ctx[SH_ERRMSG_SIZE];
    char old[SH_ERRMSG_SIZE];
    va_list ap;

    memcpy(old, msg, SH_ERRMSG_SIZE);
    old[SH_ERRMSG_SIZE - 1] = '\0';
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    /* Build the whole text, then keep its head (the most useful part). */
    char full[2 * SH_ERRMSG_SIZE + 2];
    snprintf(full, sizeof full, "%s: %s", ctx, old);
    size_t n = strnlen(full, SH_ERRMSG_SIZE - 1);
    memcpy(msg, full, n);
    msg[n] = '\0';
}
