/* excludes.h — the IMA exclude list (keylime-formats §2.3): one regex per line, blank lines and
 * lines starting with '#' skipped, each line stripped. All patterns are joined as
 * "(e1)|(e2)|...|(en)", compiled once with PCRE2 (JIT when available) and matched ANCHORED at
 * the start of the name, not at its end. An invalid pattern is an error naming its line. The
 * compiled object is immutable and may be shared between threads; each thread matches with its
 * own match data (qexcludes_md_new), so matching allocates nothing. */
#ifndef QUINCE_EXCLUDES_H
#define QUINCE_EXCLUDES_H

#include <stddef.h>
#include <stdbool.h>
#include "err.h"

typedef struct qexcludes qexcludes;
typedef struct qexcludes_md qexcludes_md;   /* per-thread match data */

#define QEXCL_MAX_PATTERN 4096   /* longest single pattern */
#define QEXCL_MAX_COUNT   100000 /* most patterns in one list */

/* From a list of patterns; lines[i] (optional, may be NULL) is the source line of patterns[i]
 * used in error messages: "<src>:<line>: invalid exclude regex '<p>': <pcre2 message>". */
qexcludes *qexcludes_compile(const char *const *patterns, size_t n, const unsigned *lines,
                             const char *src, qerr *err);
/* From the text of an exclude file (named src in messages). */
qexcludes *qexcludes_parse(const char *text, size_t len, const char *src, qerr *err);
void qexcludes_free(qexcludes *x);
size_t qexcludes_count(const qexcludes *x);
const char *qexcludes_pattern(const qexcludes *x, size_t i);

qexcludes_md *qexcludes_md_new(void);
void qexcludes_md_free(qexcludes_md *md);
/* true if the name matches (anchored at the start). x may be NULL (→ false). */
bool qexcludes_match(const qexcludes *x, qexcludes_md *md, const char *name, size_t len);

#endif
