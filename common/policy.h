/* policy.h — what an agent may run: a path → accepted-digests table (plus the keyrings and
 * ima-buf tables, the excludes, the IMA keyring and log_hash_alg of a Keylime runtime policy).
 * Loaded once, then immutable: lookups are const, allocate nothing and may run on many threads.
 * Sources (keylime-formats §2):
 *  - flat allowlist "<hex>  <path>" (sha*sum output; split on whitespace once; blank lines and
 *    one-token lines skipped; '%keyring:<name>' paths go to the keyrings table; several digests
 *    per path allowed). A legacy JSON allowlist (first non-blank char '{', "hashes" object) is
 *    also accepted by qpolicy_from_allowlist. Digests must be 40..128 lower/upper-case hex
 *    (stored lower-case); anything else is an error naming the file and line.
 *  - runtime policy JSON v1 with Keylime's schema (all 8 keys required, digests ^[0-9a-f]{40,128}$,
 *    meta.version == 1, generator 0..3, ima.log_hash_alg in sha1/256/384/512, dm_policy null,
 *    verification-keys a keyring JSON string or ""). Errors read
 *    "Runtime policy is malformatted: <reason>". A DSSE envelope is rejected here (not supported). */
#ifndef QUINCE_POLICY_H
#define QUINCE_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "err.h"
#include "pcr_bank.h"
#include "excludes.h"
#include "ima_sig.h"

#define QPOLICY_MAX_SIZE (256u * 1024 * 1024)   /* largest policy/allowlist text accepted */

typedef struct qpolicy qpolicy;

typedef enum { QPOL_DIGESTS = 0, QPOL_KEYRINGS, QPOL_IMABUF, QPOL_NTABLES } qpol_table;
typedef enum { QPOL_MATCH = 0, QPOL_NOT_FOUND, QPOL_HASH_MISMATCH } qpol_result;

/* The exact empty policy (generator 1). */
qpolicy *qpolicy_empty(qerr *err);
/* Flat or legacy-JSON allowlist; the result is a runtime policy with generator 3. */
qpolicy *qpolicy_from_allowlist(const char *text, size_t len, const char *src, qerr *err);
/* Keylime runtime policy JSON v1 (schema-checked). */
qpolicy *qpolicy_from_json(const char *text, size_t len, const char *src, qerr *err);
void qpolicy_free(qpolicy *p);

/* Append the patterns of an exclude file (blank and '#' lines skipped) and recompile.
 * An invalid pattern is an error naming src and its line; the policy is then unchanged. */
int qpolicy_add_excludes(qpolicy *p, const char *text, size_t len, const char *src, qerr *err);
/* Add one digest (hex, 40..128 chars) for a path to a table (used by builders such as
 * create-allowlist). Must be called before the policy is shared. */
int qpolicy_add_digest(qpolicy *p, qpol_table t, const char *path, size_t path_len, const char *hex,
                       qerr *err);

const qexcludes *qpolicy_excludes(const qpolicy *p);          /* NULL when there are none */
qhash_alg qpolicy_log_hash_alg(const qpolicy *p);              /* default sha1 */
const qkeyring *qpolicy_keyring(const qpolicy *p);             /* verification-keys; may be NULL */
bool qpolicy_keyring_ignored(const qpolicy *p, const char *name, size_t len); /* ima.ignored_keyrings */
int qpolicy_generator(const qpolicy *p);
size_t qpolicy_count(const qpolicy *p, qpol_table t);          /* number of paths in a table */
/* Bytes the tables use (paths, digests, records, indexes; excludes and keys not counted): what
 * one loaded policy costs, however many agents share it. */
size_t qpolicy_memory(const qpolicy *p);

/* Is (name, digest) allowed by table t? The digest is compared byte-wise (= Keylime's lower-case
 * hex string compare). */
qpol_result qpolicy_lookup(const qpolicy *p, qpol_table t, const char *name, size_t name_len,
                           const uint8_t *digest, size_t digest_len);
/* A hint, no effect on results: start loading the index slot a later qpolicy_lookup of name
 * will read, so that a caller working through a list hides the memory latency of one lookup
 * behind the work on the entry before it. Returns the name's hash (0 when p or t is not valid),
 * which qpolicy_lookup_hashed of the same name and table takes to avoid hashing it twice. */
uint64_t qpolicy_prefetch(const qpolicy *p, qpol_table t, const char *name, size_t name_len);
/* qpolicy_lookup with h = qpolicy_prefetch(p, t, name, name_len) (same p, t and name bytes). */
qpol_result qpolicy_lookup_hashed(const qpolicy *p, qpol_table t, const char *name, size_t name_len,
                                  uint64_t h, const uint8_t *digest, size_t digest_len);
/* The accepted digests of a path as Python's list repr, e.g. "['ab12...', 'cd34...']", into out
 * (truncated with "..." if it does not fit). Returns the length written. */
size_t qpolicy_expected_repr(const qpolicy *p, qpol_table t, const char *name, size_t name_len,
                             char *out, size_t cap);

/* Serialise as Keylime runtime policy JSON (json.dumps layout: ", " and ": " separators, keys in
 * Keylime's order; paths in insertion order, or sorted with digests deduplicated when `sorted`).
 * Malloc'd; NULL on error. */
char *qpolicy_to_json(const qpolicy *p, bool sorted, qerr *err);
/* Lower-case hex SHA-256 of text (the policy checksum); out holds 65 bytes. */
void qpolicy_checksum(const char *text, size_t len, char out[65]);

#endif
