/* policy_int.h — private layout of a qpolicy, shared by policy.c (lifecycle, lookups, flat
 * allowlist), policy_table.c (the path → digests hash tables) and policy_json.c (JSON in/out).
 * Not part of the library contract; include only from those files.
 *
 * Strings (paths, names, timestamp, verification keys) and digest bytes live in one arena,
 * addressed by 32-bit offsets so it may move while a policy is built. Each table maps a path to
 * a singly linked list of digest records (insertion order) through an open-addressing index
 * sized from the expected number of paths. A loader writes a path and then its digests, so the
 * first digest usually sits right after its path; the entry keeps that digest's offset so a
 * lookup touches the index slot, the entry and one spot of the arena. */
#ifndef QUINCE_POLICY_INT_H
#define QUINCE_POLICY_INT_H

#include "policy.h"

#define QPOL_NONE      UINT32_MAX
#define QPOL_MAX_PATH  65536u      /* longest path / name accepted */
#define QPOL_MIN_HEX   40
#define QPOL_MAX_HEX   128
#define QPOL_MAX_IGNORED 4096u     /* ima.ignored_keyrings entries */

typedef struct qpol_dig {
    uint32_t off;       /* digest bytes in the arena */
    uint32_t next;      /* next digest of the same path, QPOL_NONE at the end */
    uint8_t nib;        /* hex digits (40..128); an odd count keeps its last digit in the
                           high half of the last byte and never matches a real digest */
} qpol_dig;

typedef struct qpol_ent {
    uint32_t path_off, path_len;
    uint32_t first, last, ndig;
    uint32_t d0_off;    /* copy of dig[first].off, for the lookup's fast path */
    uint8_t d0_nib;     /* copy of dig[first].nib; 0 = no digest */
} qpol_ent;

typedef struct qpol_tab {
    qpol_ent *ents;
    size_t n, cap;
    uint64_t *slots;    /* 0 = empty; else (hash high 32 bits) << 32 | (entry index + 1) */
    size_t nslots;      /* power of two, at least twice n */
} qpol_tab;

typedef struct qpol_str {
    uint32_t off, len;
} qpol_str;

struct qpolicy {
    qpol_tab tab[QPOL_NTABLES];
    char *str;             /* the arena: strings (NUL-terminated) and digest bytes */
    size_t str_len, str_cap;
    qpol_dig *dig;         /* digest records */
    size_t ndig, dig_cap;

    qexcludes *excl;
    qhash_alg log_alg;
    qkeyring *keyring;     /* parsed verification-keys, NULL when "" */
    int generator;
    long long release;
    bool has_ts;
    qpol_str ts;           /* meta.timestamp */
    qpol_str vkeys;        /* verification-keys text, verbatim */
    qpol_str *ign;         /* ima.ignored_keyrings */
    size_t nign, ign_cap;
};

/* --- policy_table.c --- */
qpolicy *qpol_alloc(qerr *err);
/* Make room so that `paths` more paths can be added to t without rehashing. */
int qpol_reserve(qpolicy *p, qpol_table t, size_t paths, qerr *err);
/* Reserve arena space for roughly `bytes` of strings and `digests` digests. */
int qpol_reserve_arena(qpolicy *p, size_t str_bytes, size_t digests, qerr *err);
/* Copy a string into the arena. */
int qpol_str_add(qpolicy *p, const char *s, size_t n, qpol_str *out, qerr *err);
static inline const char *qpol_str_ptr(const qpolicy *p, qpol_str s) { return p->str + s.off; }
/* Index of the path in t, adding it (with no digests) if new; *added tells which. -1 on error. */
long qpol_path(qpolicy *p, qpol_table t, const char *path, size_t len, bool *added, qerr *err);
/* The same with the path's hash already computed (qpol_hash), and a prefetch of the index
 * slot a later qpol_path_h will probe first: loaders hash one path ahead so the random access
 * into the index overlaps with the work on the current one. */
uint64_t qpol_hash(const char *path, size_t len);
void qpol_prefetch(const qpolicy *p, qpol_table t, uint64_t h);
long qpol_path_h(qpolicy *p, qpol_table t, const char *path, size_t len, uint64_t h, bool *added,
                 qerr *err);
/* The entry of a path, or NULL; _h with the path's qpol_hash already computed. */
const qpol_ent *qpol_find(const qpolicy *p, qpol_table t, const char *path, size_t len);
const qpol_ent *qpol_find_h(const qpolicy *p, qpol_table t, const char *path, size_t len, uint64_t h);
/* Append a digest given as hex (lower_only: reject A-F); -1 for bad hex or no memory. */
int qpol_add_hex(qpolicy *p, qpol_table t, uint32_t ent, const char *hex, size_t n,
                 bool lower_only, qerr *err);
/* true if s[0..n) is 40..128 hex digits (lower-case only when lower_only). */
bool qpol_hex_ok(const char *s, size_t n, bool lower_only);
/* Forget the digests of an entry (a repeated JSON key replaces the earlier value). */
void qpol_clear_digests(qpolicy *p, qpol_table t, uint32_t ent);
/* Hex of digest record d into out (129 bytes); returns its length. */
size_t qpol_dig_hex(const qpolicy *p, uint32_t d, char *out);
void qpol_free_tables(qpolicy *p);

/* --- policy.c --- */
int qpol_set_timestamp_now(qpolicy *p, qerr *err);
int qpol_add_ignored(qpolicy *p, const char *name, size_t len, qerr *err);

/* --- policy_json.c --- */
/* qpolicy_from_json without the quick way of policy_json_fast.c: the whole text through
 * cJSON (the reference the fuzz target compares the quick way with). */
qpolicy *qpol_from_json_cjson(const char *text, size_t len, qerr *err);
/* A legacy JSON allowlist ("hashes" object, keylime-formats §2.2); generator 3. */
qpolicy *qpol_from_legacy_json(const char *text, size_t len, const char *src, qerr *err);

/* --- policy_json_fast.c --- */
/* Read the "digests", "keyrings" and "ima-buf" tables of runtime policy text into p's tables
 * when they are spelled plainly (see the file), and give the rest of the document to parse:
 * *skel (malloc'd, NUL-terminated, *skel_len bytes) is the text with those tables replaced by
 * "{}". 0 on success; -1 when the text is not in that plain spelling (p's tables may then hold
 * part of it: drop p and load the text with cJSON). */
int qpol_fast_tables(qpolicy *p, const char *text, size_t len, char **skel, size_t *skel_len);

#endif
