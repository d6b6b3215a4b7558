/* err.c — one-line error messages for library code (see err.h). */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Format into e->msg, dropping any trailing newlines so the message stays one line. */
static void qerr_vformat(qerr *e, const char *fmt, va_list ap)
{
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    size_t n = strlen(e->msg);
    while (n > 0 && (e->msg[n - 1] == '\n' || e->msg[n - 1] == '\r'))
        e->msg[--n] = '\0';
}

int qerr_set(qerr *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    qerr_vformat(e, fmt, ap);
    va_end(ap);
    e->code = 0;
    return -1;
}

int qerr_setc(qerr *e, int code, const char *fmt, ...)
{
    if (!e)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    qerr_vformat(e, fmt, ap);
    va_end(ap);
    e->code = code;
    return -1;
}

int qerr_prefix(qerr *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char old[QERR_MSG_MAX];
    memcpy(old, e->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    va_list ap;
    va_start(ap, fmt);
    qerr_vformat(e, fmt, ap);
    va_end(ap);
    if (old[0] != '\0') {
        /* Append ": <old>", cut at the buffer's end. */
        size_t n = strlen(e->msg), room = sizeof e->msg - 1 - n;
        size_t ol = strlen(old);
        const char sep[] = ": ";
        size_t take = room < 2 ? room : 2;
        memcpy(e->msg + n, sep, take);
        n += take;
        room -= take;
        if (ol > room)
            ol = room;
        memcpy(e->msg + n, old, ol);
        e->msg[n + ol] = '\0';
    }
    return -1;
}

void qerr_clear(qerr *e)
{
    if (!e)
        return;
    e->code = 0;
    e->msg[0] = '\0';
}
