/* payload_key.h — the agent's RSA-2048 payload key (the key U and V are encrypted to).
 * Generated in memory at every start, never written to disk; its SubjectPublicKeyInfo PEM is
 * what /keys/pubkey and partial=0 quotes send, and what PCR 16 is bound to. */
#ifndef QUINCE_AGENT_PAYLOAD_KEY_H
#define QUINCE_AGENT_PAYLOAD_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "err.h"

typedef struct agent_payload_key {
    EVP_PKEY *pkey;
    char *pem;          /* "-----BEGIN PUBLIC KEY-----\n...-----END PUBLIC KEY-----\n" */
    size_t pem_len;
} agent_payload_key;

int agent_payload_key_generate(agent_payload_key *k, qerr *err);
void agent_payload_key_free(agent_payload_key *k);
/* RSA-OAEP (SHA-1, as Keylime) decryption of a half key; returns the length or -1. */
long agent_payload_key_decrypt(const agent_payload_key *k, const uint8_t *in, size_t in_len, uint8_t *out,
                               size_t cap, qerr *err);

#endif
