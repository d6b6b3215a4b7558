/* keys.c — the agent's U/V/K state; see keys.h. */
#include "keys.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "b64.h"
#include "hex.h"
#include "log.h"
#include "payload_crypto.h"

#define MOD "agent"
#define UUID_MAX 256
#define PLAIN_MAX 256        /* RSA-OAEP plaintext room: any successful decryption fits */

typedef struct ukey_entry {
    uint8_t u[QPAY_KEY_MAX];
    size_t ulen;
    uint8_t tag[QPAY_HMAC_LEN];
    uint8_t *payload;        /* sealed payload (decoded), NULL when none */
    size_t payload_len;
} ukey_entry;

typedef struct vkey_entry {
    uint8_t v[QPAY_KEY_MAX];
    size_t len;
} vkey_entry;

struct agent_keys {
    pthread_mutex_t lock;
    const agent_payload_key *pk;
    char uuid[UUID_MAX];
    size_t uuid_len;
    size_t max_payload;
    ukey_entry u[AGENT_KEYS_MAX_U];  /* oldest first */
    size_t nu;
    vkey_entry v[AGENT_KEYS_MAX_V];  /* oldest first */
    size_t nv;
    uint8_t k[QPAY_KEY_MAX];
    size_t klen;                     /* 0 until K is derived */
    agent_keys_hook_fn hook;
    void *hook_ctx;
};

agent_keys *agent_keys_new(const agent_payload_key *pk, const char *uuid, size_t max_payload_size, qerr *err)
{
    if (!pk || !pk->pkey)
        return qerr_set(err, "agent keys: no payload key"), NULL;
    size_t n = uuid ? strlen(uuid) : 0;
    if (n == 0 || n >= UUID_MAX)
        return qerr_set(err, "agent keys: the agent uuid must have 1 to %d characters", UUID_MAX - 1), NULL;
    agent_keys *ks = calloc(1, sizeof(*ks));
    if (!ks)
        return qerr_set(err, "out of memory"), NULL;
    if (pthread_mutex_init(&ks->lock, NULL) != 0) {
        free(ks);
        return qerr_set(err, "agent keys: cannot create a mutex"), NULL;
    }
    ks->pk = pk;
    memcpy(ks->uuid, uuid, n + 1);
    ks->uuid_len = n;
    ks->max_payload = max_payload_size ? max_payload_size : AGENT_KEYS_DEFAULT_MAX_PAYLOAD;
    return ks;
}

static void ukey_clear(ukey_entry *e)
{
    if (e->payload) {
        OPENSSL_cleanse(e->payload, e->payload_len);
        free(e->payload);
    }
    OPENSSL_cleanse(e, sizeof(*e));
}

void agent_keys_free(agent_keys *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->nu; i++)
        ukey_clear(&ks->u[i]);
    pthread_mutex_destroy(&ks->lock);
    OPENSSL_cleanse(ks, sizeof(*ks));
    free(ks);
}

void agent_keys_set_hook(agent_keys *ks, agent_keys_hook_fn fn, void *ctx)
{
    pthread_mutex_lock(&ks->lock);
    ks->hook = fn;
    ks->hook_ctx = ctx;
    pthread_mutex_unlock(&ks->lock);
}

/* ---- input -------------------------------------------------------------------------------- */

/* A required string member of the body. */
static const char *member(const cJSON *body, const char *name, qerr *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!j || cJSON_IsNull(j)) {
        qerr_setc(err, 400, "%s is required", name);
        return NULL;
    }
    if (!cJSON_IsString(j) || !j->valuestring) {
        qerr_setc(err, 400, "%s must be a string", name);
        return NULL;
    }
    return j->valuestring;
}

/* encrypted_key → a 16- or 32-byte half key in out. Returns its length or -1 (400). */
static long half_key(agent_keys *ks, const cJSON *body, const char *what, uint8_t out[QPAY_KEY_MAX], qerr *err)
{
    const char *s = member(body, "encrypted_key", err);
    if (!s)
        return -1;
    uint8_t ct[QPAY_RSA_MAX], plain[PLAIN_MAX];
    size_t n = strlen(s);
    long ctlen = n > qb64_encoded_size(QPAY_RSA_MAX) ? -1 : qb64_decode(s, n, ct, sizeof ct);
    if (ctlen <= 0)
        return qerr_setc(err, 400, "encrypted_key is not valid base64 of an RSA ciphertext (at most %d bytes)",
                         QPAY_RSA_MAX);
    qerr e;
    long len = agent_payload_key_decrypt(ks->pk, ct, (size_t)ctlen, plain, sizeof plain, &e);
    long rc = -1;
    if (len < 0)
        qerr_setc(err, 400, "encrypted_key cannot be decrypted with the payload key: %s", e.msg);
    else if (!qpay_key_len_ok((size_t)len))
        qerr_setc(err, 400, "the decrypted %s key has %ld bytes; it must be 16 or 32", what, len);
    else {
        memcpy(out, plain, (size_t)len);
        rc = len;
    }
    OPENSSL_cleanse(plain, sizeof plain);
    return rc;
}

/* ---- matching (under the lock) ------------------------------------------------------------ */

static bool pair_matches(const agent_keys *ks, const uint8_t *u, size_t ulen, const uint8_t tag[QPAY_HMAC_LEN],
                         const uint8_t *v, size_t vlen, uint8_t kout[QPAY_KEY_MAX])
{
    if (ulen != vlen)
        return false;
    qpay_xor(u, v, ulen, kout);
    if (qpay_hmac_check(kout, ulen, ks->uuid, ks->uuid_len, tag))
        return true;
    OPENSSL_cleanse(kout, QPAY_KEY_MAX);
    return false;
}

/* K is known: store it and hand it to the hook with the entry's payload. */
static void derived(agent_keys *ks, const uint8_t *k, size_t klen, const ukey_entry *e)
{
    OPENSSL_cleanse(ks->k, sizeof ks->k);
    memcpy(ks->k, k, klen);
    bool replaced = ks->klen != 0;
    ks->klen = klen;
    qlog(QLOG_INFO, MOD, "bootstrap key derived: a U and a V half match the auth_tag%s%s",
         replaced ? " (replacing the previous key)" : "", e->payload ? "; payload handed over" : "; no payload");
    if (ks->hook)
        ks->hook(ks->hook_ctx, ks->k, ks->klen, e->payload, e->payload_len);
}

/* Remove U entries [0, upto] (the matched one and everything older). */
static void drop_u_through(agent_keys *ks, size_t upto)
{
    for (size_t i = 0; i <= upto; i++)
        ukey_clear(&ks->u[i]);
    size_t left = ks->nu - (upto + 1);
    memmove(&ks->u[0], &ks->u[upto + 1], left * sizeof ks->u[0]);
    for (size_t i = left; i < ks->nu; i++)
        memset(&ks->u[i], 0, sizeof ks->u[i]);
    ks->nu = left;
}

static void drop_v(agent_keys *ks, size_t i)
{
    OPENSSL_cleanse(&ks->v[i], sizeof ks->v[i]);
    memmove(&ks->v[i], &ks->v[i + 1], (ks->nv - i - 1) * sizeof ks->v[0]);
    ks->nv--;
    memset(&ks->v[ks->nv], 0, sizeof ks->v[0]);
}

/* ---- endpoints ---------------------------------------------------------------------------- */

int agent_keys_ukey(agent_keys *ks, const cJSON *body, qerr *err)
{
    if (!cJSON_IsObject(body))
        return qerr_setc(err, 400, "the request body must be a JSON object");
    ukey_entry e;
    memset(&e, 0, sizeof e);
    const char *tag = member(body, "auth_tag", err);
    if (!tag)
        return -1;
    size_t tlen = strlen(tag);
    if (tlen != QPAY_HMAC_HEX || qhex_decode(tag, tlen, e.tag, sizeof e.tag) != QPAY_HMAC_LEN)
        return qerr_setc(err, 400, "auth_tag must be %d hexadecimal characters (HMAC-SHA384)", QPAY_HMAC_HEX);
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(body, "payload");
    if (pj && !cJSON_IsNull(pj) && !cJSON_IsString(pj))
        return qerr_setc(err, 400, "payload must be a string");
    const char *ps = pj && cJSON_IsString(pj) ? pj->valuestring : NULL;
    if (ps && *ps) {
        size_t plen = strlen(ps);
        if (plen > ks->max_payload)
            return qerr_setc(err, 400, "payload of %zu bytes exceeds max_payload_size (%zu bytes)", plen,
                             ks->max_payload);
        e.payload = qb64_decode_alloc(ps, plen, ks->max_payload, &e.payload_len);
        if (!e.payload)
            return qerr_setc(err, 400, "payload is not valid base64");
        if (e.payload_len < QPAY_OVERHEAD) {
            ukey_clear(&e);
            return qerr_setc(err, 400, "payload of %zu bytes is too short for a 16-byte IV and a 16-byte tag",
                             e.payload_len);
        }
    }
    long ulen = half_key(ks, body, "U", e.u, err);
    if (ulen < 0) {
        ukey_clear(&e);
        return -1;
    }
    e.ulen = (size_t)ulen;

    int rc = 0;
    uint8_t k[QPAY_KEY_MAX];
    pthread_mutex_lock(&ks->lock);
    size_t vi = ks->nv;
    while (vi-- > 0)
        if (pair_matches(ks, e.u, e.ulen, e.tag, ks->v[vi].v, ks->v[vi].len, k))
            break;
    if (vi < ks->nv) {                               /* matched a waiting V */
        derived(ks, k, e.ulen, &e);
        drop_v(ks, vi);
        if (ks->nu > 0)
            drop_u_through(ks, ks->nu - 1);          /* every waiting U is older */
        ukey_clear(&e);
    } else {
        size_t same = ks->nu;
        for (size_t i = 0; i < ks->nu; i++)
            if (CRYPTO_memcmp(ks->u[i].tag, e.tag, QPAY_HMAC_LEN) == 0)
                same = i;
        if (same < ks->nu) {                         /* a resent U: the new entry replaces it */
            ukey_clear(&ks->u[same]);
            memmove(&ks->u[same], &ks->u[same + 1], (ks->nu - same - 1) * sizeof ks->u[0]);
            ks->nu--;
        }
        if (ks->nu >= AGENT_KEYS_MAX_U) {
            /* Refusing would let a few junk posts block every later delivery until a restart;
             * the oldest unmatched U is the least likely to meet its V. */
            qlog(QLOG_WARNING, MOD, "%d U halves are waiting for their V; dropping the oldest", AGENT_KEYS_MAX_U);
            drop_u_through(ks, 0);
        }
        ks->u[ks->nu++] = e;                         /* the entry (and its payload) moves in */
        OPENSSL_cleanse(&e, sizeof e);
        qlog(QLOG_INFO, MOD, "U half received; %zu waiting for a V", ks->nu);
    }
    pthread_mutex_unlock(&ks->lock);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

int agent_keys_vkey(agent_keys *ks, const cJSON *body, qerr *err)
{
    if (!cJSON_IsObject(body))
        return qerr_setc(err, 400, "the request body must be a JSON object");
    vkey_entry v;
    memset(&v, 0, sizeof v);
    long vlen = half_key(ks, body, "V", v.v, err);
    if (vlen < 0)
        return -1;
    v.len = (size_t)vlen;

    uint8_t k[QPAY_KEY_MAX];
    pthread_mutex_lock(&ks->lock);
    size_t ui = ks->nu;
    while (ui-- > 0)
        if (pair_matches(ks, ks->u[ui].u, ks->u[ui].ulen, ks->u[ui].tag, v.v, v.len, k))
            break;
    if (ui < ks->nu) {
        derived(ks, k, v.len, &ks->u[ui]);
        drop_u_through(ks, ui);
    } else {
        bool dup = false;
        for (size_t i = 0; i < ks->nv && !dup; i++)
            dup = ks->v[i].len == v.len && CRYPTO_memcmp(ks->v[i].v, v.v, v.len) == 0;
        if (!dup) {
            if (ks->nv >= AGENT_KEYS_MAX_V) {
                qlog(QLOG_WARNING, MOD, "%d unmatched V halves kept; dropping the oldest", AGENT_KEYS_MAX_V);
                drop_v(ks, 0);
            }
            ks->v[ks->nv++] = v;
        }
        qlog(QLOG_INFO, MOD, "V half received; no waiting U matches it yet (%zu U, %zu V waiting)", ks->nu,
             ks->nv);
    }
    pthread_mutex_unlock(&ks->lock);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(&v, sizeof v);
    return 0;
}

int agent_keys_verify(agent_keys *ks, const char *challenge, char *hex_out, size_t cap, qerr *err)
{
    if (!challenge || !*challenge)
        return qerr_setc(err, 400, "challenge is required");
    size_t n = 0;
    for (const char *p = challenge; *p; p++, n++) {
        if (n >= AGENT_KEYS_CHALLENGE_MAX)
            return qerr_setc(err, 400, "challenge is too long (max size %d)", AGENT_KEYS_CHALLENGE_MAX);
        if (!isalnum((unsigned char)*p))
            return qerr_setc(err, 400, "challenge should be strictly alphanumeric");
    }
    if (cap < QPAY_HMAC_HEX + 1)
        return qerr_setc(err, 500, "no room for the HMAC");
    int rc;
    pthread_mutex_lock(&ks->lock);
    if (ks->klen == 0)
        rc = qerr_setc(err, 400, "Bootstrap key not yet available.");
    else if (qpay_hmac_hex(ks->k, ks->klen, challenge, n, hex_out, err) < 0)
        rc = qerr_setc(err, 500, "cannot compute the HMAC of the challenge");
    else
        rc = 0;
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

bool agent_keys_have_k(agent_keys *ks)
{
    pthread_mutex_lock(&ks->lock);
    bool have = ks->klen != 0;
    pthread_mutex_unlock(&ks->lock);
    return have;
}

void agent_keys_counts(agent_keys *ks, size_t *n_u, size_t *n_v)
{
    pthread_mutex_lock(&ks->lock);
    if (n_u)
        *n_u = ks->nu;
    if (n_v)
        *n_v = ks->nv;
    pthread_mutex_unlock(&ks->lock);
}
