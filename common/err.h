/* err.h — error reporting for library code.
 * Library functions never exit or print: they return -1 (or NULL) and fill a qerr
 * with a one-line, human-readable message. A NULL qerr pointer is allowed. */
#ifndef QUINCE_ERR_H
#define QUINCE_ERR_H

#include <stddef.h>

#define QERR_MSG_MAX 512

typedef struct qerr {
    int code;                 /* optional category (e.g. an HTTP status); 0 if unset */
    char msg[QERR_MSG_MAX];   /* NUL-terminated, no trailing newline */
} qerr;

/* Set the message (printf-style); returns -1 so callers can `return qerr_set(...)`. */
int qerr_set(qerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same with a code. */
int qerr_setc(qerr *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "<prefix>: <old message>". */
int qerr_prefix(qerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qerr_clear(qerr *e);

#endif
