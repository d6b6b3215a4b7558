/* registrar_policy.h — the registrar's limits on unauthenticated clients of the plain port.
 *
 * Contract:
 * - A registration is "pending" until its credential is activated: a never-activated record,
 *   or an active agent's re-registration kept beside the active record. Pending registrations
 *   are capped in number (max_pending, refused with 503 when full) and age (pending_max_age:
 *   older ones are expired on the next registration or activation), and a pending challenge
 *   survives at most max_failed_activations wrong auth_tags. An active record is never
 *   deleted or changed by these rules.
 * - Registrations are rate-limited per client address with a token bucket
 *   (registrations_per_minute tokens a minute, as many in a burst; 429 when empty). The bucket
 *   table holds REGRATE_CLIENTS addresses; when full, the least recently seen is forgotten.
 * - regpol_* are pure: they change a record in memory and say what to do with it; the caller
 *   reads, decides and writes under its own lock.
 * - reg_rate_take is thread-safe (one mutex); allocation happens only in reg_rate_new. */
#ifndef QUINCE_VERIFIER_REGISTRAR_POLICY_H
#define QUINCE_VERIFIER_REGISTRAR_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "store.h"

#define REGRATE_CLIENTS 4096

typedef struct reg_limits {
    long max_pending;              /* 1000; 0 = no cap */
    long pending_max_age;          /* seconds; 600; 0 = never expire */
    long max_failed_activations;   /* 3; at least 1 */
    long registrations_per_minute; /* per client address; 60; 0 = no limit */
} reg_limits;

#define REG_LIMITS_DEFAULT { .max_pending = 1000, .pending_max_age = 600, .max_failed_activations = 3, \
                             .registrations_per_minute = 60 }

/* The challenge an activation must answer: the pending re-registration's, else the record's. */
const char *regpol_key(const vreg_agent *a);

/* Does a registration for this record (exists: a is a stored record) add a pending one? */
bool regpol_adds_pending(const vreg_agent *a, bool exists);

/* Apply a registration whose TPM identity (EK, EK certificate, AK) equals the record's, or that
 * creates the record (!exists: a holds the id and identity only). A never-activated record takes
 * the new contact data and challenge (regcount + 1); an active one keeps all of its fields and
 * gets them as pending data. Strings are copied. 0, or -1 when out of memory. */
int regpol_register(vreg_agent *a, bool exists, const char *mtls_cert, const char *ip, long port, const char *key,
                    int64_t now);

typedef enum regact {
    REGACT_ACTIVATED,        /* a never-activated record became active: save */
    REGACT_PROMOTED,         /* the pending re-registration replaced the active data: save */
    REGACT_ALREADY_ACTIVE,   /* active, nothing pending, right tag: nothing to do */
    REGACT_FAILED_COUNTED,   /* wrong tag, counted against the pending challenge: save */
    REGACT_FAILED_DROPPED,   /* wrong tag, the active record's pending data dropped: save */
    REGACT_FAILED_DELETE,    /* wrong tag, the never-activated record is used up: delete */
    REGACT_FAILED_IGNORED,   /* wrong tag against an active record, nothing pending: unchanged */
} regact;

/* Apply one activation attempt (tag_ok: the auth_tag matched regpol_key(a)). */
regact regpol_activate(vreg_agent *a, bool tag_ok, long max_failed);

typedef struct reg_rate reg_rate;

/* NULL on out of memory. per_minute 0: every call to reg_rate_take succeeds. */
reg_rate *reg_rate_new(long per_minute);
void reg_rate_free(reg_rate *r);
/* Take one token for addr at time now (monotonic seconds). false: the address is over its rate;
 * *retry_after (may be NULL) gets the whole seconds until a token is available. */
bool reg_rate_take(reg_rate *r, const char *addr, double now, long *retry_after);

#endif
