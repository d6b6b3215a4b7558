/* ima_entry.h — one line of the IMA ASCII measurement list → a parsed entry (no allocation).
 * Templates: ima, ima-ng, ima-sig, ima-buf. The line is split exactly as Keylime does
 * (keylime-formats §1.1): single spaces, at most 3 splits, per-template split of the rest,
 * trailing spaces significant. Text fields are views into the caller's line; decoded bytes go
 * into the caller's scratch buffer (sized once, QIMA_SCRATCH_SIZE).
 * A malformed ima-sig signature is not a parse error: it becomes "no signature" (sig_invalid set).
 * Deliberate, fail-safe divergences from Keylime: a line ending in '\r' is a parse error ("CRLF
 * line ending"; Keylime would keep the '\r' in the name), fields over the QIMA_* limits are parse
 * errors, and so is a name over 255 bytes in the legacy "ima" template. */
#ifndef QUINCE_IMA_ENTRY_H
#define QUINCE_IMA_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include "err.h"
#include "pcr_bank.h"

#define QIMA_MAX_LINE      65536   /* longest accepted line, without '\n' */
#define QIMA_MAX_NAME      4096    /* longest file name (PATH_MAX) */
#define QIMA_MAX_DIGEST    64      /* largest file digest in bytes */
#define QIMA_MAX_ALG       32      /* longest digest algorithm name */
#define QIMA_SCRATCH_SIZE  (QIMA_MAX_LINE + 1024)  /* decoded bytes + rebuilt template data */

typedef enum { QIMA_TMPL_IMA = 0, QIMA_TMPL_NG, QIMA_TMPL_SIG, QIMA_TMPL_BUF } qima_template;

typedef struct qima_entry {
    const char *pcr; size_t pcr_len;               /* column 1 as written ("10") */
    uint8_t template_hash[QIMA_MAX_DIGEST];        /* column 2, decoded */
    size_t template_hash_len;
    qima_template tmpl;
    char digest_alg[QIMA_MAX_ALG + 1];             /* as written, or inferred "sha1"/"md5" */
    uint8_t digest[QIMA_MAX_DIGEST]; size_t digest_len;
    const char *name; size_t name_len;             /* view into the line (not NUL-terminated) */
    const uint8_t *sig; size_t sig_len;            /* ima-sig: well-formed signature, else sig_len 0 */
    bool sig_invalid;                              /* ima-sig: a signature was present but malformed */
    const uint8_t *buf; size_t buf_len;            /* ima-buf: decoded buffer (in scratch) */
} qima_entry;

const char *qima_template_name(qima_template t);   /* "ima", "ima-ng", ... */

/* Parse line[0..len) (without its '\n'). scratch must hold QIMA_SCRATCH_SIZE bytes and stay
 * alive as long as the entry is used. Returns 0, or -1 with a reason in err. */
int qima_parse_line(const char *line, size_t len, qima_entry *e, uint8_t *scratch, qerr *err);

/* Rebuild the template data (keylime-formats §1.2) into out (capacity cap). Returns the length
 * or -1 if it does not fit. */
long qima_template_data(const qima_entry *e, uint8_t *out, size_t cap);

/* true if the logged template hash is all zero bytes (a violation / ToMToU entry). */
bool qima_is_violation(const qima_entry *e);

#endif
