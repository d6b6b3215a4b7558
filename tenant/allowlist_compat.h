/* allowlist_compat.h — accept create_allowlist.sh's and create_runtime_policy.sh's command lines
 * in `quince-tenant create-allowlist` (allowlist_compat.c). */
#ifndef QUINCE_TENANT_ALLOWLIST_COMPAT_H
#define QUINCE_TENANT_ALLOWLIST_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include "err.h"

typedef struct qal_compat {
    char **argv;     /* NULL-terminated; argc entries */
    size_t argc, cap;
    bool *owned;     /* argv[i] malloc'd here */
    bool legacy;     /* the script syntax was used */
} qal_compat;

/* The command line with the scripts' options (-h/-a ALG, --output_file, -x, -y, -z, -s)
 * rewritten into create-allowlist's own; -1 with a message on a bad value. */
int qal_compat_args(int argc, char **argv, qal_compat *c, qerr *err);
void qal_compat_free(qal_compat *c);

#endif
