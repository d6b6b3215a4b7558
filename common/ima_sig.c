/* ima_sig.c — IMA keyrings, keyidv2 and signature_v2_hdr checks (see ima_sig.h), all through
 * OpenSSL 3 EVP. Keys are stored public-only; a keyring is immutable once shared, and
 * qkeyring_verify only reads it, so many threads may verify against one keyring. */
#include "ima_sig.h"
#include "b64.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#define QKEYRING_MAX_KEYS 4096          /* keys in one keyring */
#define QKEY_MAX_SIZE     (64 * 1024)   /* one key or certificate, DER or PEM */
#define QKEYRING_MAX_JSON (16u * 1024 * 1024)

typedef struct qkey {
    uint32_t keyid;
    EVP_PKEY *pkey;
} qkey;

struct qkeyring {
    qkey *keys;
    size_t n, cap;
};

qkeyring *qkeyring_new(void)
{
    return calloc(1, sizeof(qkeyring));
}

void qkeyring_free(qkeyring *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i].pkey);
    free(k->keys);
    free(k);
}

size_t qkeyring_count(const qkeyring *k) { return k ? k->n : 0; }

/* Never prompt for a pass phrase: encrypted private keys simply fail to load. */
static int no_pass(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

static bool supported_type(const EVP_PKEY *k)
{
    return EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "EC");
}

/* A key from DER/PEM in Keylime's order: certificate, public key, private key (DER before PEM
 * each time). *ski_keyid is set (and *has_ski true) for a certificate with a
 * SubjectKeyIdentifier. Returns the key (any type) or NULL. */
static EVP_PKEY *load_any(const uint8_t *data, size_t len, bool *has_ski, uint32_t *ski_keyid)
{
    *has_ski = false;
    if (!data || len == 0 || len > QKEY_MAX_SIZE)
        return NULL;
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    const unsigned char *q = data;
    x = d2i_X509(NULL, &q, (long)len);
    if (!x) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio) {
            x = PEM_read_bio_X509(bio, NULL, no_pass, NULL);
            BIO_free(bio);
        }
    }
    if (x) {
        k = X509_get_pubkey(x);
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
        if (k && ski && ASN1_STRING_length(ski) >= 4) {
            const unsigned char *s = ASN1_STRING_get0_data(ski);
            int n = ASN1_STRING_length(ski);
            *ski_keyid = (uint32_t)s[n - 4] << 24 | (uint32_t)s[n - 3] << 16 |
                         (uint32_t)s[n - 2] << 8 | s[n - 1];
            *has_ski = true;
        }
        X509_free(x);
    }
    if (!k) {
        q = data;
        k = d2i_PUBKEY(NULL, &q, (long)len);
    }
    if (!k) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio) {
            k = PEM_read_bio_PUBKEY(bio, NULL, no_pass, NULL);
            BIO_free(bio);
        }
    }
    if (!k) {
        q = data;
        k = d2i_AutoPrivateKey(NULL, &q, (long)len);
    }
    if (!k) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio) {
            k = PEM_read_bio_PrivateKey(bio, NULL, no_pass, NULL);
            BIO_free(bio);
        }
    }
    ERR_clear_error();
    return k;
}

/* The public half only (a private key is never kept). */
static EVP_PKEY *public_only(EVP_PKEY *k)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    if (n <= 0)
        return NULL;
    const unsigned char *q = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &q, n);
    OPENSSL_free(der);
    return pub;
}

/* The EC point in X9.62 uncompressed form (malloc'd). */
static unsigned char *ec_point_uncompressed(const EVP_PKEY *k, size_t *len)
{
    size_t n = 0;
    if (!EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0, &n) ||
        n == 0)
        return NULL;
    unsigned char *pt = malloc(n);
    if (!pt)
        return NULL;
    if (!EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, n, &n)) {
        free(pt);
        return NULL;
    }
    if (pt[0] == 0x04) {
        *len = n;
        return pt;
    }
    free(pt);
    /* Stored compressed: ask a copy for the uncompressed form. */
    EVP_PKEY *dup = EVP_PKEY_dup((EVP_PKEY *)k);
    if (!dup)
        return NULL;
    pt = NULL;
    if (EVP_PKEY_set_utf8_string_param(dup, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       "uncompressed") &&
        EVP_PKEY_get_octet_string_param(dup, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0, &n) &&
        n > 0 && (pt = malloc(n)) != NULL &&
        !EVP_PKEY_get_octet_string_param(dup, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, n, &n)) {
        free(pt);
        pt = NULL;
    }
    EVP_PKEY_free(dup);
    if (pt && pt[0] != 0x04) {
        free(pt);
        pt = NULL;
    }
    *len = n;
    return pt;
}

/* keyidv2 of a public key: last 4 bytes of SHA-1 over PKCS#1 RSAPublicKey / the EC point. */
static int pkey_keyid(const EVP_PKEY *k, uint32_t *keyid)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = 0;
    if (EVP_PKEY_is_a(k, "RSA")) {
        unsigned char *der = NULL;
        int n = i2d_PublicKey(k, &der);   /* PKCS#1 RSAPublicKey for RSA */
        if (n > 0)
            ok = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha1(), NULL);
        OPENSSL_free(der);
    } else if (EVP_PKEY_is_a(k, "EC")) {
        size_t n = 0;
        unsigned char *pt = ec_point_uncompressed(k, &n);
        if (pt)
            ok = EVP_Digest(pt, n, md, &mdlen, EVP_sha1(), NULL);
        free(pt);
    }
    ERR_clear_error();
    if (!ok || mdlen != 20)
        return -1;
    *keyid = (uint32_t)md[16] << 24 | (uint32_t)md[17] << 16 | (uint32_t)md[18] << 8 | md[19];
    return 0;
}

static int ring_push(qkeyring *k, EVP_PKEY *pub, uint32_t keyid, qerr *err)
{
    if (k->n >= QKEYRING_MAX_KEYS)
        return qerr_set(err, "keyring full (at most %d keys)", QKEYRING_MAX_KEYS);
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 4;
        qkey *n = realloc(k->keys, cap * sizeof *n);
        if (!n)
            return qerr_set(err, "out of memory");
        k->keys = n;
        k->cap = cap;
    }
    k->keys[k->n++] = (qkey){ .keyid = keyid, .pkey = pub };
    return 0;
}

/* The public half of a parsed key and its keyid; takes ownership of `any`. keyid_in < 0 →
 * the certificate's SKI (has_ski) or the computed keyidv2. Returns the public key or NULL. */
static EVP_PKEY *prepare_pkey(EVP_PKEY *any, bool has_ski, uint32_t ski, long long keyid_in,
                              uint32_t *keyid, qerr *err)
{
    if (!supported_type(any)) {
        EVP_PKEY_free(any);
        qerr_set(err, "Unsupported key type");
        return NULL;
    }
    EVP_PKEY *pub = public_only(any);
    EVP_PKEY_free(any);
    if (!pub) {
        ERR_clear_error();
        qerr_set(err, "cannot extract the public key");
        return NULL;
    }
    *keyid = ski;
    if (keyid_in >= 0)
        *keyid = (uint32_t)keyid_in;
    else if (!has_ski && pkey_keyid(pub, keyid) < 0) {
        EVP_PKEY_free(pub);
        qerr_set(err, "cannot compute the key id");
        return NULL;
    }
    return pub;
}

/* Add a parsed key; takes ownership of `any`. keyid_in < 0 → compute it. */
static int add_pkey(qkeyring *k, EVP_PKEY *any, bool has_ski, uint32_t ski, long long keyid_in,
                    qerr *err)
{
    uint32_t keyid;
    EVP_PKEY *pub = prepare_pkey(any, has_ski, ski, keyid_in, &keyid, err);
    if (!pub)
        return -1;
    if (ring_push(k, pub, keyid, err) < 0) {
        EVP_PKEY_free(pub);
        return -1;
    }
    return 0;
}

int qkeyring_add_key(qkeyring *k, const uint8_t *data, size_t len, qerr *err)
{
    if (!k)
        return qerr_set(err, "no keyring");
    if (len > QKEY_MAX_SIZE)
        return qerr_set(err, "key larger than %d bytes", QKEY_MAX_SIZE);
    bool has_ski = false;
    uint32_t ski = 0;
    EVP_PKEY *any = load_any(data, len, &has_ski, &ski);
    if (!any)
        return qerr_set(err, "not a certificate, public key or private key (DER or PEM)");
    return add_pkey(k, any, has_ski, ski, -1, err);
}

int qkeyring_add_key_once(qkeyring *k, const uint8_t *data, size_t len, size_t max_keys, qerr *err)
{
    if (!k)
        return qerr_set(err, "no keyring");
    if (len > QKEY_MAX_SIZE)
        return qerr_set(err, "key larger than %d bytes", QKEY_MAX_SIZE);
    bool has_ski = false;
    uint32_t ski = 0, keyid = 0;
    EVP_PKEY *any = load_any(data, len, &has_ski, &ski);
    if (!any)
        return qerr_set(err, "not a certificate, public key or private key (DER or PEM)");
    EVP_PKEY *pub = prepare_pkey(any, has_ski, ski, -1, &keyid, err);
    if (!pub)
        return -1;
    for (size_t i = 0; i < k->n; i++) {
        if (k->keys[i].keyid == keyid && EVP_PKEY_eq(k->keys[i].pkey, pub) == 1) {
            EVP_PKEY_free(pub);
            ERR_clear_error();
            return 0;
        }
    }
    ERR_clear_error();
    if (max_keys > 0 && k->n >= max_keys) {
        EVP_PKEY_free(pub);
        return qerr_set(err, "keyring full (at most %zu keys)", max_keys);
    }
    if (ring_push(k, pub, keyid, err) < 0) {
        EVP_PKEY_free(pub);
        return -1;
    }
    return 1;
}

char *qkeyring_to_json(const qkeyring *k, qerr *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *pubkeys = cJSON_AddArrayToObject(root, "pubkeys");
    cJSON *keyids = cJSON_AddArrayToObject(root, "keyids");
    char *text = NULL;
    if (!root || !pubkeys || !keyids)
        goto oom;
    for (size_t i = 0; k && i < k->n; i++) {
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(k->keys[i].pkey, &der);
        if (n <= 0) {
            ERR_clear_error();
            qerr_set(err, "cannot encode key %zu of the keyring", i);
            goto out;
        }
        char *b64 = qb64_encode_alloc(der, (size_t)n);
        OPENSSL_free(der);
        cJSON *s = b64 ? cJSON_CreateString(b64) : NULL;
        free(b64);
        if (!s || !cJSON_AddItemToArray(pubkeys, s)) {
            cJSON_Delete(s);
            goto oom;
        }
        cJSON *id = cJSON_CreateNumber((double)k->keys[i].keyid);
        if (!id || !cJSON_AddItemToArray(keyids, id)) {
            cJSON_Delete(id);
            goto oom;
        }
    }
    text = cJSON_PrintUnformatted(root);
    if (!text)
        goto oom;
    goto out;
oom:
    qerr_set(err, "out of memory");
out:
    cJSON_Delete(root);
    return text;
}

bool qkeyring_is_key(const uint8_t *data, size_t len, bool *supported)
{
    if (supported)
        *supported = true;
    bool has_ski = false;
    uint32_t ski = 0;
    EVP_PKEY *any = load_any(data, len, &has_ski, &ski);
    if (!any)
        return false;
    bool ok = supported_type(any);
    EVP_PKEY_free(any);
    if (!ok && supported)
        *supported = false;
    return ok;
}

int qkeyring_keyid(const uint8_t *data, size_t len, uint32_t *keyid, qerr *err)
{
    bool has_ski = false;
    uint32_t ski = 0;
    EVP_PKEY *any = load_any(data, len, &has_ski, &ski);
    if (!any)
        return qerr_set(err, "not a certificate, public key or private key (DER or PEM)");
    int rc = 0;
    if (!supported_type(any))
        rc = qerr_set(err, "Unsupported key type");
    else if (has_ski)
        *keyid = ski;
    else if (pkey_keyid(any, keyid) < 0)
        rc = qerr_set(err, "cannot compute the key id");
    EVP_PKEY_free(any);
    return rc;
}

/* ---- keyring JSON ---- */

static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *found = NULL;
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0)
            found = c;
    return found;
}

static int ring_from_obj(qkeyring *k, const cJSON *o, qerr *err)
{
    if (!cJSON_IsObject(o))
        return qerr_set(err, "not a valid IMA keyring: not a JSON object");
    const cJSON *pubkeys = member(o, "pubkeys"), *keyids = member(o, "keyids");
    if (!pubkeys || !cJSON_IsArray(pubkeys))
        return qerr_set(err, "not a valid IMA keyring: 'pubkeys' must be an array");
    if (!keyids || !cJSON_IsArray(keyids))
        return qerr_set(err, "not a valid IMA keyring: 'keyids' must be an array");
    const cJSON *meta = member(o, "meta");
    if (meta) {
        const cJSON *v = member(meta, "version");
        if (!cJSON_IsObject(meta) ||
            (v && (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble != floor(v->valuedouble))))
            return qerr_set(err, "not a valid IMA keyring: bad 'meta'");
    }
    for (const cJSON *id = keyids->child; id; id = id->next)
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 4294967295.0 ||
            id->valuedouble != floor(id->valuedouble))
            return qerr_set(err, "not a valid IMA keyring: keyids must be 32-bit unsigned integers");
    const cJSON *id = keyids->child;
    size_t i = 0;
    for (const cJSON *pk = pubkeys->child; pk; pk = pk->next, i++) {
        if (!cJSON_IsString(pk))
            return qerr_set(err, "not a valid IMA keyring: pubkeys[%zu] is not a string", i);
        size_t der_len = 0;
        const char *s = pk->valuestring;
        uint8_t *der = qb64_decode_alloc(s, strlen(s), QKEY_MAX_SIZE, &der_len);
        if (!der)
            return qerr_set(err, "not a valid IMA keyring: pubkeys[%zu] is not base64", i);
        const unsigned char *q = der;
        EVP_PKEY *pub = d2i_PUBKEY(NULL, &q, (long)der_len);
        free(der);
        ERR_clear_error();
        if (!pub)
            return qerr_set(err, "not a valid IMA keyring: pubkeys[%zu] is not a DER public key", i);
        long long keyid = id ? (long long)id->valuedouble : -1;
        if (add_pkey(k, pub, false, 0, keyid, err) < 0)
            return qerr_prefix(err, "not a valid IMA keyring: pubkeys[%zu]", i);
        if (id)
            id = id->next;
    }
    return 0;
}

qkeyring *qkeyring_from_json(const char *text, size_t len, qerr *err)
{
    qkeyring *k = qkeyring_new();
    if (!k) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    size_t i = 0;
    while (text && i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    if (!text || i == len)
        return k;   /* "" → an empty keyring */
    if (len > QKEYRING_MAX_JSON) {
        qerr_set(err, "keyring JSON larger than %u bytes", QKEYRING_MAX_JSON);
        goto fail;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (root && cJSON_IsString(root)) {
        /* A JSON string holding the keyring JSON: decode twice. */
        cJSON *inner = cJSON_Parse(root->valuestring);
        cJSON_Delete(root);
        root = inner;
    }
    if (!root) {
        qerr_set(err, "not a valid IMA keyring: not valid JSON");
        goto fail;
    }
    int rc = ring_from_obj(k, root, err);
    cJSON_Delete(root);
    if (rc < 0)
        goto fail;
    return k;
fail:
    qkeyring_free(k);
    return NULL;
}

/* ---- signatures ---- */

/* Linux hash_info ids (include/uapi/linux/hash_info.h) to digest names. */
static const char *linux_hash_name(uint8_t id)
{
    switch (id) {
    case 1: return "md5";
    case 2: return "sha1";
    case 4: return "sha256";
    case 5: return "sha384";
    case 6: return "sha512";
    case 7: return "sha224";
    default: return NULL;
    }
}

static bool verify_one(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *sig, size_t sig_len,
                       const uint8_t *digest, size_t digest_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    bool ok = false;
    if (ctx && EVP_PKEY_verify_init(ctx) == 1 &&
        (!EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1) &&
        EVP_PKEY_CTX_set_signature_md(ctx, md) == 1)
        ok = EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

bool qkeyring_verify(const qkeyring *const *rings, size_t nrings, const uint8_t *sig, size_t sig_len,
                     const char *digest_alg, const uint8_t *digest, size_t digest_len)
{
    if (!rings || !sig || !digest_alg || !digest || sig_len < 9)
        return false;
    uint8_t type = sig[0], version = sig[1];
    uint32_t keyid = (uint32_t)sig[3] << 24 | (uint32_t)sig[4] << 16 | (uint32_t)sig[5] << 8 | sig[6];
    size_t size = (size_t)sig[7] << 8 | sig[8];
    if ((type != 3 && type != 5) || version != 2 || size == 0 || size != sig_len - 9)
        return false;
    const char *name = linux_hash_name(sig[2]);
    if (!name || strcmp(name, digest_alg) != 0)
        return false;
    const EVP_MD *md = EVP_get_digestbyname(name);
    if (!md || (size_t)EVP_MD_get_size(md) != digest_len)
        return false;
    bool ok = false;
    for (size_t r = 0; r < nrings && !ok; r++) {
        const qkeyring *k = rings[r];
        for (size_t i = 0; k && i < k->n && !ok; i++)
            if (k->keys[i].keyid == keyid)
                ok = verify_one(k->keys[i].pkey, md, sig + 9, size, digest, digest_len);
    }
    ERR_clear_error();
    return ok;
}
