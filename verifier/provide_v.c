/* provide_v.c — V delivery bookkeeping and body (provide_v.h). */
#include "provide_v.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "b64.h"
#include "err.h"
#include "payload_crypto.h"

static void key_digest(const char *pem, uint8_t out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(pem, strlen(pem), out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(out, 0, 32);
}

void vprov_v_changed(vprov *p, const char *old_v, const char *new_v)
{
    if (strcmp(old_v ? old_v : "", new_v ? new_v : "") != 0)
        p->delivered = false;
}

bool vprov_needed(const vprov *p, const char *v, const char *pubkey)
{
    if (!v || !*v || !pubkey)
        return false;
    if (!p->delivered)
        return true;
    uint8_t d[32];
    key_digest(pubkey, d);
    return CRYPTO_memcmp(d, p->key, sizeof d) != 0;
}

char *vprov_body(vprov *p, const char *v_b64, const char *pubkey, char *why, size_t cap)
{
    if (!v_b64 || !pubkey) {
        snprintf(why, cap, "no V or no payload key");
        return NULL;
    }
    uint8_t v[64];
    long vl = qb64_decode(v_b64, strlen(v_b64), v, sizeof v);
    size_t vlen = vl < 0 ? 0 : (size_t)vl;
    if (!qpay_key_len_ok(vlen)) {
        OPENSSL_cleanse(v, sizeof v);
        snprintf(why, cap, "the stored V is not the base64 of a 16- or 32-byte key");
        return NULL;
    }
    qerr e = { 0 };
    char *ek = qpay_rsa_encrypt_b64(pubkey, strlen(pubkey), v, vlen, &e);
    OPENSSL_cleanse(v, sizeof v);
    if (!ek) {
        snprintf(why, cap, "cannot encrypt V to the agent's payload key: %.300s", e.msg);
        return NULL;
    }
    char *body = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddStringToObject(o, "encrypted_key", ek))
        body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(ek);
    if (!body)
        snprintf(why, cap, "out of memory");
    else
        key_digest(pubkey, p->pending);
    return body;
}

void vprov_done(vprov *p)
{
    p->delivered = true;
    memcpy(p->key, p->pending, sizeof p->key);
}
