/* create_policy.h — the parts of `quince-tenant create-policy` (create_policy.c: options,
 * file hashing, output; create_policy_inputs.c: the inputs that already carry digests).
 * Every input adds (table, path, hex digest) entries to one cpol_set; the set is sorted and
 * deduplicated before it becomes a Keylime runtime policy, so the output depends only on the
 * inputs, never on their order or the hashing threads. */
#ifndef QUINCE_TENANT_CREATE_POLICY_H
#define QUINCE_TENANT_CREATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include "allowlist_build.h"
#include "err.h"
#include "pcr_bank.h"
#include "policy.h"

#define CPOL_MAX_INPUTS 64

/* One digest for one path of one table (digests / keyrings / ima-buf). Strings malloc'd. */
typedef struct cpol_ent {
    qpol_table table;
    char *path;
    char hex[2 * QHASH_MAX_SIZE + 1];
} cpol_ent;

typedef struct cpol_set {
    cpol_ent *e;
    size_t n, cap;
    bool alg_set;            /* the digest algorithm is fixed (by --algo or the first source) */
    qhash_alg alg;
    const char *alg_from;    /* the source that fixed it */
    /* summary counters */
    size_t pkg_rehash;       /* package lines whose file had to be hashed */
} cpol_set;

void cpol_set_free(cpol_set *s);
/* Add an entry. The digest length must match the set's algorithm (fixed on first use when not
 * set yet): otherwise Keylime's "The digest algorithm in the <source> does not match the
 * previously set '<alg>' algorithm" (or "Invalid digest algorithm found in the <source>"). */
int cpol_add(cpol_set *s, qpol_table t, const char *path, size_t path_len, const char *hex, size_t hex_len,
             const char *source, qerr *err);
/* Sort by (table, path, digest) and drop duplicates. */
void cpol_sort_unique(cpol_set *s);

/* Inputs that carry digests. */
int cpol_read_allowlist(cpol_set *s, const char *file, qerr *err);       /* flat or legacy JSON */
/* A runtime policy (or a DSSE envelope of one, unwrapped unchecked): its tables, excludes,
 * ignored keyrings and verification keys are merged. */
int cpol_read_base_policy(cpol_set *s, const char *file, char ***excl, size_t *nexcl, char ***ign, size_t *nign,
                          char **vkeys, qerr *err);
/* IMA ASCII list: ima-ng/ima-sig lines → digests; ima-buf lines holding a key → keyrings (when
 * keyrings, unless the keyring is ignored); other ima-buf lines → ima-buf (when ima_buf). */
int cpol_read_ima_list(cpol_set *s, const char *file, bool keyrings, bool ima_buf, char *const *ign, size_t nign,
                       qerr *err);
/* Package digests: "<hex>  <path>" lines (rpm -qa --qf '[%{FILEDIGESTS}  %{FILENAMES}\n]', or a
 * dpkg md5sums file with paths relative to /). A digest of the wrong algorithm (md5 of dpkg,
 * sha256 with --algo sha1, ...) puts the file into to_hash (path relative to the package root),
 * to be hashed by the caller. Lines without a digest (directories, links) are skipped. */
int cpol_read_packages(cpol_set *s, const char *file, qal_list *to_hash, qerr *err);
/* Exclude files: lines (blank and '#' lines skipped) appended to *list, duplicates dropped. */
int cpol_read_excludes(const char *file, char ***list, size_t *n, qerr *err);

#endif
