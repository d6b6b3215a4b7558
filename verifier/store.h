/* store.h — the verifier's store (registrations, agents, runtime policies, attestation state,
 * failure records) on SQLite (the embedded default) or PostgreSQL (several verifiers).
 *
 * Contract, both engines:
 * - Schema versioned (table schema_version) and migrated forward on open, in one transaction; a
 *   schema newer than this program's is refused and never modified.
 * - Every call is one transaction (or less); vstore_round_save_batch / vstore_state_save_batch
 *   group several agents' round results into one transaction, all or nothing. Write
 *   transactions are serialised among all writers of the database (SQLite: BEGIN IMMEDIATE;
 *   PostgreSQL: an advisory lock), so API writes never fail with "database is locked".
 * - Prepared statements only (prepared once per connection). No SQL text is ever built from input.
 * - Strings returned in structs are malloc'd copies owned by the struct: release with the
 *   matching *_free function. Lookups return 1 (found), 0 (not found) or -1 (error, message set).
 * - Errors come back as qerr ("database error: ..."); when the database cannot be reached the
 *   code is 503 ("database unavailable: ..."), the call may be retried, and the store reconnects
 *   by itself once the server is back.
 * - Library-style: never exits, logs nothing; no message holds a password.
 * - Agent ids: agent_id is the key, in lower case (identity is case-insensitive: one record per id
 *   whatever its case); calls that take an agent_id expect that form. display_id keeps the id as
 *   first registered / added, which answers echo (as Keylime does); it differs from agent_id only
 *   in case, is set when the record is created ("" = agent_id) and never changes after.
 * SQLite: one database file, WAL mode, foreign keys on, created with safe modes (0600 / 0700);
 *   one connection behind a store mutex. PostgreSQL: a pool of a few connections (libpq), so API
 *   reads do not wait behind the state writer's batch; the URI's settings (sslmode, service, ...)
 *   apply and the password comes from a libpq password or service file. */
#ifndef QUINCE_VERIFIER_STORE_H
#define QUINCE_VERIFIER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "pcr_bank.h"

#define VSTORE_ID_MAX 256          /* agent ids and policy names */

typedef struct vstore vstore;

/* database: a SQLite file path, sqlite:///path or a postgresql:// URI (store_url.h). Creates or
 * migrates the schema; a schema newer than this program's is refused and left as it is. */
vstore *vstore_open(const char *database, qerr *err);
/* The same for a migration target: refused (and left as it is) unless it is new or holds no data. */
vstore *vstore_open_empty(const char *database, qerr *err);
void vstore_close(vstore *s);
/* Copies every row of from into to (opened with vstore_open_empty, same schema version) in one
 * transaction of to; to must still be empty. report gets "N registrar records, N runtime policy
 * texts, ..." 0 or -1 (nothing written). */
int vstore_copy(vstore *from, vstore *to, char *report, size_t cap, qerr *err);
/* Multi-statement write transactions committed since open (the state writer's batches). */
unsigned long vstore_commits(vstore *s);
int vstore_schema_version(vstore *s);
/* "SQLite" or "PostgreSQL". */
const char *vstore_engine(vstore *s);

/* ---- registrar ------------------------------------------------------------------------------ */
typedef struct vreg_agent {
    char agent_id[VSTORE_ID_MAX];          /* the key (lower case) */
    char display_id[VSTORE_ID_MAX];        /* as first registered */
    char *ek_tpm;          /* base64 TPM2B_PUBLIC */
    char *ekcert;          /* base64 DER or NULL */
    char *aik_tpm;         /* base64 TPM2B_PUBLIC */
    char *mtls_cert;       /* PEM, "disabled" or NULL */
    char *ip;              /* contact address or NULL */
    long port;             /* 0 when unknown */
    long regcount;
    bool active;
    char *key;             /* base64 of the credential challenge (the auth_tag key) */
    int64_t registered_at; /* epoch seconds of the last registration (pending expiry) */
    long failed_activations;   /* wrong auth_tags against the pending challenge */
    /* A re-registration of an active agent, kept beside the active record until activated
     * (pending_key non-NULL); the active fields above stay in use meanwhile. */
    char *pending_mtls_cert, *pending_ip;
    long pending_port;
    char *pending_key;
} vreg_agent;
void vreg_agent_free(vreg_agent *a);
int vstore_reg_get(vstore *s, const char *agent_id, vreg_agent *out, qerr *err);
/* Insert or replace the whole record (an existing record keeps its display_id). 0 or -1. */
int vstore_reg_put(vstore *s, const vreg_agent *a, qerr *err);
int vstore_reg_set_active(vstore *s, const char *agent_id, bool active, qerr *err);  /* 1 set, 0 absent */
int vstore_reg_delete(vstore *s, const char *agent_id, qerr *err);     /* 1 deleted, 0 absent */
/* Calls fn for every id as registered (display_id, sorted by key); stops early when fn returns
 * non-zero. 0 or -1. The ids are read first and fn runs without the store lock, so it may call
 * the store (same for every *_list and vstore_failures_get). */
int vstore_reg_list(vstore *s, int (*fn)(void *ctx, const char *agent_id), void *ctx, qerr *err);
/* Pending registrations (never activated, or a re-registration awaiting activation): *n. 0 or -1. */
int vstore_reg_count_pending(vstore *s, long *n, qerr *err);
/* Expire pending registrations made before `before` (epoch seconds): never-activated records are
 * deleted, an active record's pending re-registration is cleared. One transaction; *n (may be
 * NULL) gets the number of records touched. 0 or -1. */
int vstore_reg_expire(vstore *s, int64_t before, long *n, qerr *err);

/* ---- runtime policies (stored once by checksum, named, shared) ------------------------------ */
typedef struct vpolicy {
    long id;
    char name[VSTORE_ID_MAX];
    char checksum[65];     /* sha256 hex of body */
    char *body;            /* runtime policy JSON text as stored */
    char *tpm_policy;      /* JSON text or NULL */
    int generator;
    char *sign_key;        /* base64 key a signed (DSSE) body was checked with, or NULL */
} vpolicy;
void vpolicy_free(vpolicy *p);
/* Create (replace=false; 0 if the name exists → returns 0 and does nothing) or replace
 * (replace=true; 0 if the name does not exist). Returns 1 on success. The body is stored once per
 * checksum and shared between names. *id gets the policy id. */
int vstore_policy_put(vstore *s, const char *name, const char *body, const char *checksum, int generator,
                      const char *tpm_policy, bool replace, long *id, qerr *err);
/* The same, remembering the key (base64, may be NULL) a signed body was checked with, so it is
 * checked again whenever the policy is loaded. */
int vstore_policy_put_signed(vstore *s, const char *name, const char *body, const char *checksum, int generator,
                             const char *tpm_policy, const char *sign_key, bool replace, long *id, qerr *err);
int vstore_policy_get(vstore *s, const char *name, vpolicy *out, qerr *err);
int vstore_policy_get_by_id(vstore *s, long id, vpolicy *out, qerr *err);
/* 1 deleted; 0 absent; -1 with err->code 409 and "Can't delete allowlist as it's currently in use
 * by agent <id>" when an agent uses it. */
int vstore_policy_delete(vstore *s, const char *name, qerr *err);
/* 0 or -1. */
int vstore_policy_list(vstore *s, int (*fn)(void *ctx, const char *name), void *ctx, qerr *err);

/* ---- measured-boot reference states (Keylime's mbpolicies: named, shared by agents) --------- */
#define VSTORE_MB_MAX (4u << 20)   /* bytes of one reference state (QMB_MAX_REF_BYTES) */
typedef struct vmbpolicy {
    long id;
    char name[VSTORE_ID_MAX];
    char *mb_policy;       /* the reference state's JSON text */
} vmbpolicy;
void vmbpolicy_free(vmbpolicy *p);
/* Create (replace=false; 0 if the name exists) or replace (replace=true; 0 if it does not).
 * 1 on success, *id (may be NULL) gets the id. The text is stored as given: validate it first. */
int vstore_mbpolicy_put(vstore *s, const char *name, const char *text, bool replace, long *id, qerr *err);
int vstore_mbpolicy_get(vstore *s, const char *name, vmbpolicy *out, qerr *err);
/* 1 deleted; 0 absent; -1 with err->code 409 and "Can't delete mb_policy as it's currently in use
 * by agent <id>" when an agent uses it. */
int vstore_mbpolicy_delete(vstore *s, const char *name, qerr *err);
int vstore_mbpolicy_list(vstore *s, int (*fn)(void *ctx, const char *name), void *ctx, qerr *err);

/* ---- verifier agents ----------------------------------------------------------------------- */
/* Keylime's operational states. */
enum {
    VSTATE_REGISTERED = 0, VSTATE_START = 1, VSTATE_SAVED = 2, VSTATE_GET_QUOTE = 3,
    VSTATE_GET_QUOTE_RETRY = 4, VSTATE_PROVIDE_V = 5, VSTATE_PROVIDE_V_RETRY = 6, VSTATE_FAILED = 7,
    VSTATE_TERMINATED = 8, VSTATE_INVALID_QUOTE = 9, VSTATE_TENANT_FAILED = 10
};
const char *vstate_name(int state);     /* "Get Quote", ...; "Unknown" for others */

/* The per-agent attestation state, saved after every round. */
typedef struct vagent_state {
    char agent_id[VSTORE_ID_MAX];
    int operational_state;
    uint64_t next_ima_ml_entry;
    qhash_alg pcr10_alg;               /* bank of pcr10 (QHASH_NONE: not set) */
    uint8_t pcr10[QHASH_MAX_SIZE];     /* running PCR 10 at next_ima_ml_entry */
    uint64_t boottime;
    /* TPM clock info of the last successful quote */
    uint64_t clock; uint32_t reset_count, restart_count; bool clock_set;
    uint64_t attestation_count;
    int64_t last_received_quote;       /* epoch seconds, 0 = never */
    int64_t last_successful_attestation;
    uint32_t consecutive_failures;     /* communication retries in a row */
    int severity_level;                /* -1 = none */
    char last_event_id[128];           /* "" = none */
    char *learned_ima_keyrings;        /* JSON text or NULL (owned) */
    bool mb_evaluated;                 /* the measured-boot reference passed since the last boot */
    uint64_t ima_good_total;           /* IMA entries that passed among the first next_ima_ml_entry */
} vagent_state;

typedef struct vagent {
    char agent_id[VSTORE_ID_MAX];      /* the key (lower case) */
    char display_id[VSTORE_ID_MAX];    /* as added ("" on add: agent_id) */
    char *ip; long port;               /* cloudagent_ip / port */
    char *ak_tpm;                      /* base64 TPM2B_PUBLIC, from the registrar */
    char *mtls_cert;
    char *tpm_policy;                  /* JSON text, e.g. {"mask": "0x400"} */
    long policy_id;                    /* runtime policy (0 = none) */
    char *ima_sign_verification_keys;  /* keyring JSON or NULL */
    char *meta_data;                   /* JSON text */
    char *accept_tpm_hash_algs;        /* JSON arrays as text, e.g. ["sha256"] */
    char *accept_tpm_encryption_algs;
    char *accept_tpm_signing_algs;
    char *hash_alg, *enc_alg, *sign_alg;   /* as last quoted, or NULL */
    char *supported_version;           /* agent API version, e.g. "2.2" */
    char *v;                           /* base64 V half key, or NULL */
    char *verifier_id;                 /* "default" */
    char *verifier_ip; long verifier_port;
    long mb_policy_id;                 /* measured-boot reference state (0 = none) */
    /* read only (from mbpolicies, filled by vstore_agent_get): */
    char *mb_policy;                   /* its JSON text, or NULL */
    char mb_policy_name[VSTORE_ID_MAX];
    vagent_state st;
} vagent;
void vagent_free(vagent *a);
/* Hands src's record (and every string it owns) to dst: dst is freed first, src is left empty. */
void vagent_move(vagent *dst, vagent *src);
/* Ownership of a state's one owned pointer (learned_ima_keyrings): _copy makes dst a deep copy
 * (dst is overwritten, not freed: clear it first; 0, or -1 out of memory with dst cleared),
 * _move hands src's text to dst (dst cleared first, src's pointer NULL after), _clear frees it
 * and zeroes the state (pcr10_alg QHASH_NONE). */
int vagent_state_copy(vagent_state *dst, const vagent_state *src);
void vagent_state_move(vagent_state *dst, vagent_state *src);
void vagent_state_clear(vagent_state *st);

/* Insert a new agent: 1 added, 0 if the id exists (caller answers 409), -1 on error (e.g. a
 * policy_id that does not exist). policy_id 0 = none. */
int vstore_agent_add(vstore *s, const vagent *a, qerr *err);
int vstore_agent_get(vstore *s, const char *agent_id, vagent *out, qerr *err);
int vstore_agent_delete(vstore *s, const char *agent_id, qerr *err);   /* also its failures */
/* Update only the state columns of each agent in one transaction (all or nothing): 0 or -1.
 * Agents no longer in the store are skipped. */
int vstore_state_save_batch(vstore *s, const vagent_state *const *states, size_t n, qerr *err);
int vstore_set_state(vstore *s, const char *agent_id, int operational_state, qerr *err); /* 1 set, 0 absent */
/* One round's writes: its state, the quoted algorithms when they changed, its failure records
 * when it failed (they replace the earlier ones). */
typedef struct vstore_round {
    const vagent_state *st;                  /* st->agent_id names the agent */
    const char *hash_alg, *enc_alg, *sign_alg;   /* all non-NULL: record them */
    bool set_failures;
    const struct vfailure *failures;
    size_t nfailures;
    /* Fencing (store_lease.h): with lease_owner set, the round is saved only while the agent's
     * lease row names that owner and lease_epoch; otherwise nothing of it is written and
     * *fenced (when non-NULL) is set true. NULL: not fenced. */
    const char *lease_owner;
    uint64_t lease_epoch;
    bool *fenced;
} vstore_round;
/* Saves each round whole, all of them in one transaction (all or nothing): 0 or -1. Agents no
 * longer in the store are skipped. */
int vstore_round_save_batch(vstore *s, const vstore_round *const *rounds, size_t n, qerr *err);
/* Record the quoted algorithms (first quote). 1 set, 0 absent. */
int vstore_agent_set_algs(vstore *s, const char *agent_id, const char *hash_alg, const char *enc_alg,
                          const char *sign_alg, qerr *err);
/* fn gets each key (agent_id), sorted. 0 or -1. */
int vstore_agent_list(vstore *s, int (*fn)(void *ctx, const char *agent_id), void *ctx, qerr *err);
/* fn gets each id as added (display_id), sorted by key. 0 or -1. */
int vstore_agent_list_display(vstore *s, int (*fn)(void *ctx, const char *display_id), void *ctx, qerr *err);

/* ---- failure records (of the agent's last failed round) ------------------------------------- */
typedef struct vfailure {
    uint64_t entry;        /* UINT64_MAX for list-level failures */
    char *path;            /* may be "" */
    char *event_id;
    char *reason;
    int64_t time;          /* epoch seconds */
} vfailure;
void vfailure_free(vfailure *f);
/* Replace the agent's failure records with these (one transaction; at most 1000 kept, NULL
 * strings stored as ""). 0 or -1; an agent no longer in the store is skipped (0). */
int vstore_failures_set(vstore *s, const char *agent_id, const vfailure *f, size_t n, qerr *err);
/* Calls fn for each record in order (f and its strings are valid during the call only). 0 or -1. */
int vstore_failures_get(vstore *s, const char *agent_id, int (*fn)(void *ctx, const vfailure *f), void *ctx,
                        qerr *err);

#endif
