/* provide_v.h — Keylime's PROVIDE_V step: which payload key V goes to, and the request body.
 *
 * Contract:
 * - V is due after a passing quote when the tenant gave a V and it has not reached the payload
 *   key the agent quoted with (the first success, or an agent restarted with a new key: Keylime
 *   sends V again then). An agent whose quotes fail never gets here.
 * - The body is {"encrypted_key": b64(RSA-OAEP-SHA1(V))} to that key. V only lives in a
 *   cleansed stack buffer while it is encrypted, and is never logged.
 * - A vprov remembers (by SHA-256 of the key's PEM) the key V reached; it is one agent's and is
 *   used by the poller's event thread only. */
#ifndef QUINCE_VERIFIER_PROVIDE_V_H
#define QUINCE_VERIFIER_PROVIDE_V_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vprov {
    bool delivered;              /* V reached the key whose digest is key */
    uint8_t key[32];
    uint8_t pending[32];         /* the key of the request in flight */
} vprov;

/* A record with another V than the one delivered: deliver again. */
void vprov_v_changed(vprov *p, const char *old_v, const char *new_v);
bool vprov_needed(const vprov *p, const char *v, const char *pubkey);
/* The body (malloc'd), or NULL with *why set (a V that is not 16/32 bytes of base64, a key that
 * cannot encrypt, out of memory). Remembers the key as pending. */
char *vprov_body(vprov *p, const char *v, const char *pubkey, char *why, size_t cap);
/* The agent accepted V: the pending key is the delivered one. */
void vprov_done(vprov *p);

#endif
