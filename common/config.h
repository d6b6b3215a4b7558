/* config.h — the INI reader for /etc/quince/quince.conf.
 * Sections [agent] [verifier] [registrar] [tenant] (any name is accepted); "key = value" lines;
 * '#' or ';' start a comment line; values are trimmed; a value may be wrapped in double quotes.
 * File choice: the explicit path (--config), else $QUINCE_CONFIG, else /etc/quince/quince.conf.
 * Every lookup first consults the environment: QUINCE_<SECTION>_<KEY> (upper case, '-' → '_')
 * overrides the file. Lines longer than 8 KiB, a file over 1 MiB, or a malformed line are errors
 * naming the file and line. */
#ifndef QUINCE_CONFIG_H
#define QUINCE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "err.h"

#define QCONFIG_DEFAULT_PATH "/etc/quince/quince.conf"

typedef struct qconfig qconfig;

/* path may be NULL (then $QUINCE_CONFIG, then the default path). A missing file is an error only
 * when it was named explicitly (path or $QUINCE_CONFIG) ; otherwise an empty config is returned. */
qconfig *qconfig_load(const char *path, qerr *err);
/* Parse from memory (tests). `name` is used in messages. */
qconfig *qconfig_parse(const char *text, size_t len, const char *name, qerr *err);
void qconfig_free(qconfig *c);
/* The file actually read, or NULL when none. */
const char *qconfig_path(const qconfig *c);
/* The file, else the name given to qconfig_parse, else "<config>": for messages. */
const char *qconfig_name(const qconfig *c);

/* Raw string (env override first); NULL when absent. The pointer stays valid until qconfig_free. */
const char *qconfig_get(const qconfig *c, const char *section, const char *key);
/* String with a default. */
const char *qconfig_str(const qconfig *c, const char *section, const char *key, const char *def);
/* Typed getters: return 0 and set *out (def when absent or empty); -1 with a message naming the key
 * (or the environment variable) on a bad value, leaving *out unchanged. */
int qconfig_long(const qconfig *c, const char *section, const char *key, long def, long min, long max,
                 long *out, qerr *err);
int qconfig_double(const qconfig *c, const char *section, const char *key, double def, double min,
                   double max, double *out, qerr *err);
/* true/yes/on/1 and false/no/off/0 (any case). */
int qconfig_bool(const qconfig *c, const char *section, const char *key, bool def, bool *out, qerr *err);
/* Set a value in memory (used for command-line overrides and tests). */
int qconfig_set(qconfig *c, const char *section, const char *key, const char *value);

/* What was read, for the strict check (config_check.h): the entries with their file line (0 when
 * set in memory) and the section headers as written, with the line of their first occurrence.
 * Index-based; -1 past the end. Pointers live until qconfig_free. */
size_t qconfig_entry_count(const qconfig *c);
int qconfig_entry(const qconfig *c, size_t i, const char **section, const char **key, unsigned long *line);
size_t qconfig_section_count(const qconfig *c);
int qconfig_section(const qconfig *c, size_t i, const char **name, unsigned long *line);

/* The trace of values a program actually used (for --check-config): once on, every getter call
 * records the effective value (the default when absent) and where it came from; the first call
 * for a key wins. */
typedef enum { QCONFIG_SRC_DEFAULT, QCONFIG_SRC_FILE, QCONFIG_SRC_ENV } qconfig_source;
void qconfig_trace(qconfig *c, bool on);
size_t qconfig_used_count(const qconfig *c);
int qconfig_used(const qconfig *c, size_t i, const char **section, const char **key, const char **value,
                 qconfig_source *src);

#endif
