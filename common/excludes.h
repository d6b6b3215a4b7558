/* excludes.h — the IMA exclude list (keylime-formats §2.3): one regex per line, blank lines and
 * lines starting with '#' skipped, each line stripped. All patterns are joined as
 * "(e1)|(e2)|...|(en)", compiled once with PCRE2 (JIT when available) and matched ANCHORED at
 * the start of the name, not at its end. An invalid pattern is an error naming its line. The
 * compiled object is immutable and may be shared between threads; each thread matches with its
 * own match data (qexcludes_md_new), so matching allocates nothing. Matching runs under explicit
 * PCRE2 limits (below); patterns that backtrack catastrophically are refused at compile time where
 * a probe shows it. */
#ifndef QUINCE_EXCLUDES_H
#define QUINCE_EXCLUDES_H

#include <stddef.h>
#include <stdbool.h>
#include "err.h"

typedef struct qexcludes qexcludes;
typedef struct qexcludes_md qexcludes_md;   /* per-thread match data */

#define QEXCL_MAX_PATTERN 4096   /* longest single pattern */
#define QEXCL_MAX_COUNT   100000 /* most patterns in one list */
/* PCRE2 limits for one name (PCRE2's default match limit, 10 million, let one crafted path cost
 * tens of milliseconds against "^(a+)+$"): match limit QEXCL_MATCH_BASE + QEXCL_MATCH_PER_PATTERN
 * per pattern of the list, backtracking depth and heap (interpreter only; JIT has its own
 * stack limit). Each pattern is also probed with QEXCL_PROBE_RUN-byte runs of its own literal
 * characters at compile time and refused when a probe hits QEXCL_MATCH_BASE. */
#define QEXCL_MATCH_BASE        100000u
#define QEXCL_MATCH_PER_PATTERN 50u
#define QEXCL_DEPTH_LIMIT       10000u
#define QEXCL_HEAP_LIMIT_KIB    4096u
#define QEXCL_PROBE_RUN         32

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
/* true if the name matches (anchored at the start). x may be NULL (→ false). A match that hits
 * a limit is not a match (fail closed: the entry is then judged by the policy). */
bool qexcludes_match(const qexcludes *x, qexcludes_md *md, const char *name, size_t len);
/* Same, telling the cases apart: 1 match, 0 no match, -1 a PCRE2 limit was hit (or no memory
 * without md). Allocates nothing with md. */
int qexcludes_match_rc(const qexcludes *x, qexcludes_md *md, const char *name, size_t len);

#endif
