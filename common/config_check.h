/* config_check.h — strict configuration: every section and key read from the file, and every
 * QUINCE_<SECTION>_<KEY> environment variable, must be one the programs know (config_keys.h).
 * A typo is an error of one line naming the file and line (or the variable), with "did you mean"
 * when a known name is within edit distance 2. Environment variables whose first word is neither
 * a section nor close to one (QUINCE_CONFIG, a test harness's QUINCE_TMP) are not configuration
 * and are left alone. */
#ifndef QUINCE_CONFIG_CHECK_H
#define QUINCE_CONFIG_CHECK_H

#include <stdio.h>
#include "config.h"
#include "err.h"

/* 0, or -1 with the first problem in err. */
int qconfig_check(const qconfig *c, qerr *err);
/* qconfig_load, then qconfig_check; NULL with the reason on failure. */
qconfig *qconfig_load_strict(const char *path, qerr *err);
/* Levenshtein distance, case-insensitive; values above `cap` are returned as cap + 1. */
unsigned qconfig_edit_distance(const char *a, const char *b, unsigned cap);
/* --check-config: "# file" then "[section]" / "key = value   # source" for the values the program
 * used (qconfig_trace), secrets masked and credentials in URLs hidden. */
void qconfig_print_effective(const qconfig *c, FILE *f);

#endif
