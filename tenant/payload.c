/* payload.c — the tenant's payload preparation and checks; see payload.h. */
#include "payload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/crypto.h>

#include "b64.h"
#include "buf.h"

#define EUSAGE 2
#define EFAIL  1
#define TEXT_SLACK 64          /* white space tolerated around a base64 payload file */

/* qerr allows a NULL pointer: set the code only when there is one. */
static void set_code(qerr *err, int code)
{
    if (err)
        err->code = code;
}

static size_t limit(size_t max)
{
    return max ? max : TPAYLOAD_DEFAULT_MAX;
}

static int too_large(size_t n, size_t max, qerr *err)
{
    return qerr_setc(err, EUSAGE, "payload size %zu exceeds max_payload_size (%zu bytes)", n, max);
}

/* Base64 length of the sealed form of n plaintext bytes. */
static size_t sealed_b64_len(size_t n)
{
    size_t s = qb64_encoded_size(qpay_sealed_size(n));
    return s == SIZE_MAX ? SIZE_MAX : s - 1;
}

static void buf_wipe(qbuf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    qbuf_free(b);
}

/* Read a whole file of at most max bytes; messages name `what` and the path. */
static int read_bounded(const char *what, const char *path, size_t max, qbuf *b, qerr *err)
{
    qbuf_init(b, 0);
    if (qbuf_read_file(b, path, max) == 0)
        return 0;
    int e = errno;
    buf_wipe(b);
    if (e == EFBIG)
        return qerr_setc(err, EUSAGE, "%s %s is larger than max_payload_size (%zu bytes)", what, path, max);
    return qerr_setc(err, EUSAGE, "cannot read %s %s: %s", what, path, strerror(e));
}

int tpayload_from_file(const char *path, size_t max_payload_size, tpayload *out, qerr *err)
{
    size_t max = limit(max_payload_size);
    memset(out, 0, sizeof(*out));
    struct stat st;
    if (stat(path, &st) < 0)
        return qerr_setc(err, EUSAGE, "cannot read payload file %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return qerr_setc(err, EUSAGE, "payload file %s is not a regular file", path);
    if (sealed_b64_len((size_t)st.st_size) > max)
        return too_large(sealed_b64_len((size_t)st.st_size), max, err);
    qbuf b;
    size_t file_max = max / 4 * 3 > QPAY_OVERHEAD ? max / 4 * 3 - QPAY_OVERHEAD : 0;
    if (read_bounded("payload file", path, file_max, &b, err) < 0)
        return -1;
    int rc = -1;
    uint8_t *sealed = NULL;
    size_t slen = 0;
    if (sealed_b64_len(b.len) > max) {
        too_large(sealed_b64_len(b.len), max, err);
    } else if (qpay_keys_new(&out->keys, err) < 0) {
        set_code(err, EFAIL);
    } else if (!(sealed = malloc(qpay_sealed_size(b.len)))) {
        qerr_setc(err, EFAIL, "out of memory");
    } else if (qpay_seal(out->keys.k, out->keys.len, b.data ? b.data : (const uint8_t *)"", b.len, sealed,
                         qpay_sealed_size(b.len), &slen, err) < 0) {
        set_code(err, EFAIL);
    } else if (!(out->payload_b64 = qb64_encode_alloc(sealed, slen))) {
        qerr_setc(err, EFAIL, "out of memory");
    } else {
        out->payload_b64_len = strlen(out->payload_b64);
        rc = 0;
    }
    free(sealed);
    buf_wipe(&b);
    if (rc < 0)
        tpayload_free(out);
    return rc;
}

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The -p file → payload_b64 (base64 text kept as is, raw bytes encoded); it must open with K. */
static int load_sealed(tpayload *out, const char *path, size_t max, qerr *err)
{
    qbuf b;
    if (read_bounded("payload file", path, max + TEXT_SLACK, &b, err) < 0)
        return -1;
    const char *t = (const char *)b.data;
    size_t a = 0, z = b.len;
    while (a < z && space(t[a]))
        a++;
    while (z > a && space(t[z - 1]))
        z--;
    size_t slen = 0;
    uint8_t *sealed = z > a ? qb64_decode_alloc(t + a, z - a, SIZE_MAX, &slen) : NULL;
    int rc = -1;
    if (sealed) {                                      /* base64 text */
        if (z - a > max)
            too_large(z - a, max, err);
        else if (!(out->payload_b64 = malloc(z - a + 1)))
            qerr_setc(err, EFAIL, "out of memory");
        else {
            memcpy(out->payload_b64, t + a, z - a);
            out->payload_b64[z - a] = '\0';
            out->payload_b64_len = z - a;
            rc = 0;
        }
    } else if (b.len == 0) {
        qerr_setc(err, EUSAGE, "payload file %s is empty", path);
    } else if (qb64_encoded_size(b.len) - 1 > max) {   /* raw bytes */
        too_large(qb64_encoded_size(b.len) - 1, max, err);
    } else if (!(sealed = malloc(b.len))) {
        qerr_setc(err, EFAIL, "out of memory");
    } else {
        memcpy(sealed, b.data, b.len);
        slen = b.len;
        if (!(out->payload_b64 = qb64_encode_alloc(sealed, slen)))
            qerr_setc(err, EFAIL, "out of memory");
        else {
            out->payload_b64_len = strlen(out->payload_b64);
            rc = 0;
        }
    }
    if (rc == 0) {
        uint8_t *plain = malloc(slen > QPAY_OVERHEAD ? slen - QPAY_OVERHEAD : 1);
        size_t plen = 0;
        qerr e;
        if (!plain) {
            rc = qerr_setc(err, EFAIL, "out of memory");
        } else {
            if (qpay_open(out->keys.k, out->keys.len, sealed, slen, plain,
                          slen > QPAY_OVERHEAD ? slen - QPAY_OVERHEAD : 0, &plen, &e) < 0)
                rc = qerr_setc(err, EUSAGE, "payload file %s does not open with the key file's K: %s", path, e.msg);
            OPENSSL_cleanse(plain, slen > QPAY_OVERHEAD ? slen - QPAY_OVERHEAD : 1);
            free(plain);
        }
    }
    free(sealed);
    buf_wipe(&b);
    return rc;
}

int tpayload_from_keyfile(const char *keyfile, const char *payload_path, size_t max_payload_size, tpayload *out,
                          qerr *err)
{
    memset(out, 0, sizeof(*out));
    if (qpay_keyfile_read(keyfile, &out->keys, err) < 0) {
        set_code(err, EUSAGE);
        return -1;
    }
    if (payload_path && load_sealed(out, payload_path, limit(max_payload_size), err) < 0) {
        tpayload_free(out);
        return -1;
    }
    return 0;
}

void tpayload_free(tpayload *p)
{
    if (p->payload_b64)
        free(p->payload_b64);
    qpay_keys_clear(&p->keys);
    memset(p, 0, sizeof(*p));
}

cJSON *tpayload_ukey_body(const tpayload *p, const char *uuid, const char *pubkey_pem, qerr *err)
{
    if (!qpay_key_len_ok(p->keys.len)) {
        qerr_setc(err, EFAIL, "no bootstrap key");
        return NULL;
    }
    char tag[QPAY_HMAC_HEX + 1];
    if (qpay_auth_tag(p->keys.k, p->keys.len, uuid, tag, err) < 0) {
        set_code(err, EFAIL);
        return NULL;
    }
    char *ek = qpay_rsa_encrypt_b64(pubkey_pem, pubkey_pem ? strlen(pubkey_pem) : 0, p->keys.u, p->keys.len, err);
    if (!ek) {
        qerr_prefix(err, "cannot encrypt U to the agent's payload key");
        set_code(err, EFAIL);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "auth_tag", tag) || !cJSON_AddStringToObject(o, "encrypted_key", ek) ||
        (p->payload_b64 && !cJSON_AddStringToObject(o, "payload", p->payload_b64))) {
        cJSON_Delete(o);
        o = NULL;
        qerr_setc(err, EFAIL, "out of memory");
    }
    free(ek);
    return o;
}

char *tpayload_v_b64(const tpayload *p)
{
    if (!qpay_key_len_ok(p->keys.len))
        return NULL;
    return qb64_encode_alloc(p->keys.v, p->keys.len);
}

int tpayload_challenge(char *out, size_t cap, qerr *err)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if (cap < TPAYLOAD_CHALLENGE_LEN + 1)
        return qerr_setc(err, EFAIL, "no room for the challenge");
    uint8_t r[TPAYLOAD_CHALLENGE_LEN * 2];
    size_t got = 0, used = sizeof r;
    while (got < TPAYLOAD_CHALLENGE_LEN) {
        if (used == sizeof r) {
            if (qpay_random(r, sizeof r, err) < 0) {
                set_code(err, EFAIL);
                return -1;
            }
            used = 0;
        }
        uint8_t c = r[used++];
        if (c < 248)                                   /* 248 = 4 * 62: no modulo bias */
            out[got++] = alnum[c % 62];
    }
    out[got] = '\0';
    return 0;
}

int tpayload_verify_reply(const tpayload *p, const char *challenge, const cJSON *results, qerr *err)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(results, "hmac");
    if (!cJSON_IsString(h) || !h->valuestring)
        return qerr_setc(err, EFAIL, "the agent's /keys/verify answer has no hmac");
    if (qpay_hmac_check_hex(p->keys.k, p->keys.len, challenge, strlen(challenge), h->valuestring,
                            strlen(h->valuestring), err) < 0) {
        qerr_prefix(err, "the agent did not prove it derived the bootstrap key");
        set_code(err, EFAIL);
        return -1;
    }
    return 0;
}
