/* payload_crypto.c — Keylime's secure-payload cryptography; see payload_crypto.h. */
#include "payload_crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "b64.h"
#include "buf.h"
#include "hex.h"

#define CHUNK (1 << 20)      /* EVP update calls take int lengths: feed at most this much at once */

bool qpay_key_len_ok(size_t n)
{
    return n == 16 || n == 32;
}

void qpay_xor(const uint8_t *a, const uint8_t *b, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] ^ b[i];
}

int qpay_random(uint8_t *out, size_t n, qerr *err)
{
    if (n > INT_MAX || RAND_bytes(out, (int)n) != 1)
        return qerr_set(err, "the random number generator failed");
    return 0;
}

int qpay_keys_new(qpay_keys *out, qerr *err)
{
    memset(out, 0, sizeof(*out));
    if (qpay_random(out->k, QPAY_KEY_LEN, err) < 0 || qpay_random(out->v, QPAY_KEY_LEN, err) < 0) {
        qpay_keys_clear(out);
        return -1;
    }
    qpay_xor(out->k, out->v, QPAY_KEY_LEN, out->u);
    out->len = QPAY_KEY_LEN;
    return 0;
}

void qpay_keys_clear(qpay_keys *ks)
{
    OPENSSL_cleanse(ks, sizeof(*ks));
}

/* ---- AES-GCM ------------------------------------------------------------------------------ */

size_t qpay_sealed_size(size_t n)
{
    return n > SIZE_MAX - QPAY_OVERHEAD ? SIZE_MAX : n + QPAY_OVERHEAD;
}

static const EVP_CIPHER *gcm_for(size_t klen)
{
    return klen == 32 ? EVP_aes_256_gcm() : klen == 16 ? EVP_aes_128_gcm() : NULL;
}

/* Run the cipher over n bytes in chunks; returns 0 or -1. */
static int gcm_update(EVP_CIPHER_CTX *c, bool enc, const uint8_t *in, size_t n, uint8_t *out, size_t *done)
{
    size_t off = 0;
    *done = 0;
    while (off < n) {
        int part = (int)(n - off > CHUNK ? CHUNK : n - off), got = 0;
        int ok = enc ? EVP_EncryptUpdate(c, out + *done, &got, in + off, part)
                     : EVP_DecryptUpdate(c, out + *done, &got, in + off, part);
        if (ok != 1 || got < 0)
            return -1;
        off += (size_t)part;
        *done += (size_t)got;
    }
    return 0;
}

int qpay_seal(const uint8_t *k, size_t klen, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
              size_t *out_len, qerr *err)
{
    const EVP_CIPHER *cipher = gcm_for(klen);
    if (!cipher)
        return qerr_set(err, "the payload key has %zu bytes; it must be 16 or 32", klen);
    if (n > SIZE_MAX - QPAY_OVERHEAD || cap < n + QPAY_OVERHEAD)
        return qerr_set(err, "no room for the sealed payload");
    if (qpay_random(out, QPAY_IV_LEN, err) < 0)
        return -1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    size_t done = 0;
    int fin = 0, rc = -1;
    if (c && EVP_EncryptInit_ex(c, cipher, NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, QPAY_IV_LEN, NULL) == 1 &&
        EVP_EncryptInit_ex(c, NULL, NULL, k, out) == 1 &&
        gcm_update(c, true, in, n, out + QPAY_IV_LEN, &done) == 0 &&
        EVP_EncryptFinal_ex(c, out + QPAY_IV_LEN + done, &fin) == 1 && done + (size_t)fin == n &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, QPAY_TAG_LEN, out + QPAY_IV_LEN + n) == 1) {
        *out_len = n + QPAY_OVERHEAD;
        rc = 0;
    } else {
        OPENSSL_cleanse(out, cap < n + QPAY_OVERHEAD ? cap : n + QPAY_OVERHEAD);
        qerr_set(err, "AES-GCM encryption failed");
    }
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int qpay_open(const uint8_t *k, size_t klen, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
              size_t *out_len, qerr *err)
{
    const EVP_CIPHER *cipher = gcm_for(klen);
    if (!cipher)
        return qerr_set(err, "the payload key has %zu bytes; it must be 16 or 32", klen);
    if (n < QPAY_OVERHEAD)
        return qerr_set(err, "payload authentication failed (%zu bytes cannot hold a 16-byte IV and a "
                             "16-byte tag: truncated)", n);
    size_t ct_len = n - QPAY_OVERHEAD;
    if (cap < ct_len)
        return qerr_set(err, "no room for the decrypted payload");
    const uint8_t *iv = in, *ct = in + QPAY_IV_LEN, *tag = in + n - QPAY_TAG_LEN;
    uint8_t tagbuf[QPAY_TAG_LEN];
    memcpy(tagbuf, tag, sizeof tagbuf);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    size_t done = 0;
    int fin = 0, rc = -1;
    if (!c || EVP_DecryptInit_ex(c, cipher, NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, QPAY_IV_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(c, NULL, NULL, k, iv) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, QPAY_TAG_LEN, tagbuf) != 1 ||
        gcm_update(c, false, ct, ct_len, out, &done) != 0) {
        qerr_set(err, "AES-GCM decryption could not be set up");
    } else if (EVP_DecryptFinal_ex(c, out + done, &fin) != 1) {
        qerr_set(err, "payload authentication failed (wrong key, or the IV, ciphertext or tag was "
                      "changed or truncated)");
    } else if (done + (size_t)fin != ct_len) {
        qerr_set(err, "AES-GCM decryption returned %zu bytes instead of %zu", done + (size_t)fin, ct_len);
    } else {
        *out_len = ct_len;
        rc = 0;
    }
    if (rc < 0 && ct_len > 0)
        OPENSSL_cleanse(out, ct_len);
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* ---- HMAC --------------------------------------------------------------------------------- */

int qpay_hmac(const uint8_t *key, size_t klen, const void *msg, size_t n, uint8_t out[QPAY_HMAC_LEN],
              qerr *err)
{
    size_t outlen = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA384", NULL, key, klen, msg, n, out, QPAY_HMAC_LEN, &outlen) ||
        outlen != QPAY_HMAC_LEN)
        return qerr_set(err, "HMAC-SHA384 failed");
    return 0;
}

int qpay_hmac_hex(const uint8_t *key, size_t klen, const void *msg, size_t n, char out[QPAY_HMAC_HEX + 1],
                  qerr *err)
{
    uint8_t mac[QPAY_HMAC_LEN];
    if (qpay_hmac(key, klen, msg, n, mac, err) < 0)
        return -1;
    qhex_encode(mac, sizeof mac, out);
    OPENSSL_cleanse(mac, sizeof mac);
    return 0;
}

int qpay_auth_tag(const uint8_t *k, size_t klen, const char *uuid, char out[QPAY_HMAC_HEX + 1], qerr *err)
{
    return qpay_hmac_hex(k, klen, uuid, strlen(uuid), out, err);
}

bool qpay_hmac_check(const uint8_t *key, size_t klen, const void *msg, size_t n,
                     const uint8_t want[QPAY_HMAC_LEN])
{
    uint8_t mac[QPAY_HMAC_LEN];
    bool ok = qpay_hmac(key, klen, msg, n, mac, NULL) == 0 && CRYPTO_memcmp(mac, want, sizeof mac) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

int qpay_hmac_check_hex(const uint8_t *key, size_t klen, const void *msg, size_t n, const char *want_hex,
                        size_t n_hex, qerr *err)
{
    uint8_t want[QPAY_HMAC_LEN];
    if (n_hex != QPAY_HMAC_HEX || qhex_decode(want_hex, n_hex, want, sizeof want) != QPAY_HMAC_LEN)
        return qerr_set(err, "the HMAC is not %d hexadecimal characters (HMAC-SHA384)", QPAY_HMAC_HEX);
    if (!qpay_hmac_check(key, klen, msg, n, want))
        return qerr_set(err, "the HMAC does not match");
    return 0;
}

/* ---- RSA-OAEP ----------------------------------------------------------------------------- */

long qpay_rsa_encrypt(const char *pem, size_t pem_len, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                      qerr *err)
{
    if (!pem || pem_len == 0 || pem_len > INT_MAX)
        return qerr_set(err, "no payload public key");
    BIO *b = BIO_new_mem_buf(pem, (int)pem_len);
    EVP_PKEY *pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!pk)
        return qerr_set(err, "the payload public key is not a PEM public key");
    long rc = -1;
    EVP_PKEY_CTX *ctx = NULL;
    size_t outlen = 0;
    if (!EVP_PKEY_is_a(pk, "RSA")) {
        qerr_set(err, "the payload public key is not an RSA key");
    } else if (!(ctx = EVP_PKEY_CTX_new(pk, NULL)) || EVP_PKEY_encrypt_init(ctx) != 1 ||
               EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
               EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha1()) != 1 ||
               EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha1()) != 1 ||
               EVP_PKEY_encrypt(ctx, NULL, &outlen, in, n) != 1) {
        qerr_set(err, "cannot set up RSA-OAEP encryption to the payload key");
    } else if (outlen > cap) {
        qerr_set(err, "RSA-OAEP ciphertext of %zu bytes does not fit in %zu", outlen, cap);
    } else if (EVP_PKEY_encrypt(ctx, out, &outlen, in, n) != 1) {
        qerr_set(err, "RSA-OAEP encryption to the payload key failed");
    } else {
        rc = (long)outlen;
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}

char *qpay_rsa_encrypt_b64(const char *pem, size_t pem_len, const uint8_t *in, size_t n, qerr *err)
{
    uint8_t ct[QPAY_RSA_MAX];
    long len = qpay_rsa_encrypt(pem, pem_len, in, n, ct, sizeof ct, err);
    if (len < 0)
        return NULL;
    char *s = qb64_encode_alloc(ct, (size_t)len);
    if (!s)
        qerr_set(err, "out of memory");
    return s;
}

/* ---- key file ----------------------------------------------------------------------------- */

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int qpay_keyfile_parse(const char *text, size_t n, qpay_keys *out, qerr *err)
{
    static const char *const names[3] = {"K", "U", "V"};
    uint8_t *dst[3] = {out->k, out->u, out->v};
    size_t lens[3] = {0, 0, 0};
    size_t pos = 0;
    memset(out, 0, sizeof(*out));
    if (n > QPAY_KEYFILE_MAX)
        return qerr_set(err, "key file is larger than %d bytes", QPAY_KEYFILE_MAX);
    for (int i = 0; i < 3; i++) {
        size_t start = pos;
        while (pos < n && text[pos] != '\n')
            pos++;
        size_t a = start, b = pos;
        if (pos < n)
            pos++;                                    /* the '\n' */
        while (a < b && blank(text[a]))
            a++;
        while (b > a && blank(text[b - 1]))
            b--;
        if (a == b) {
            qpay_keys_clear(out);
            return qerr_set(err, "key file: line %d (%s) is missing or empty; the file holds three base64 "
                                 "lines K, U, V", i + 1, names[i]);
        }
        long got = qb64_decode(text + a, b - a, dst[i], QPAY_KEY_MAX);
        if (got < 0) {
            qpay_keys_clear(out);
            return qerr_set(err, "key file: line %d (%s) is not base64 of at most %d bytes", i + 1, names[i],
                            QPAY_KEY_MAX);
        }
        lens[i] = (size_t)got;
    }
    for (; pos < n; pos++)
        if (!blank(text[pos])) {
            qpay_keys_clear(out);
            return qerr_set(err, "key file: unexpected text after the three lines K, U, V");
        }
    if (!qpay_key_len_ok(lens[0]) || lens[1] != lens[0] || lens[2] != lens[0]) {
        qpay_keys_clear(out);
        return qerr_set(err, "key file: K, U and V must all be 16 or 32 bytes (got %zu, %zu, %zu)", lens[0],
                        lens[1], lens[2]);
    }
    uint8_t x[QPAY_KEY_MAX];
    qpay_xor(out->u, out->v, lens[0], x);
    int same = CRYPTO_memcmp(x, out->k, lens[0]);
    OPENSSL_cleanse(x, sizeof x);
    if (same != 0) {
        qpay_keys_clear(out);
        return qerr_set(err, "key file: K is not U xor V");
    }
    out->len = lens[0];
    return 0;
}

int qpay_keyfile_read(const char *path, qpay_keys *out, qerr *err)
{
    qbuf b;
    qbuf_init(&b, QPAY_KEYFILE_MAX);
    if (qbuf_read_file(&b, path, QPAY_KEYFILE_MAX) < 0) {
        int e = errno;
        if (b.data)
            OPENSSL_cleanse(b.data, b.cap);
        qbuf_free(&b);
        memset(out, 0, sizeof(*out));
        if (e == EFBIG)
            return qerr_set(err, "key file %s is larger than %d bytes", path, QPAY_KEYFILE_MAX);
        return qerr_set(err, "cannot read key file %s: %s", path, strerror(e));
    }
    int rc = qpay_keyfile_parse((const char *)b.data, b.len, out, err);
    if (b.data)
        OPENSSL_cleanse(b.data, b.cap);
    qbuf_free(&b);
    if (rc < 0)
        qerr_prefix(err, "%s", path);
    return rc;
}

int qpay_keyfile_write(const char *path, const qpay_keys *ks, qerr *err)
{
    if (!qpay_key_len_ok(ks->len))
        return qerr_set(err, "cannot write key file %s: keys of %zu bytes", path, ks->len);
    char text[3 * (QPAY_KEY_MAX / 3 * 4 + 8) + 8];
    size_t off = 0;
    const uint8_t *src[3] = {ks->k, ks->u, ks->v};
    for (int i = 0; i < 3; i++) {
        long w = qb64_encode(src[i], ks->len, text + off, sizeof text - off);
        if (w < 0) {
            OPENSSL_cleanse(text, sizeof text);
            return qerr_set(err, "cannot encode key file %s", path);
        }
        off += (size_t)w;
        text[off++] = '\n';
    }
    int rc = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = qerr_set(err, "cannot create key file %s: %s", path, strerror(errno));
    } else {
        ssize_t w = write(fd, text, off);
        if (w != (ssize_t)off)
            rc = qerr_set(err, "cannot write key file %s: %s", path, w < 0 ? strerror(errno) : "short write");
        if (close(fd) < 0 && rc == 0)
            rc = qerr_set(err, "cannot write key file %s: %s", path, strerror(errno));
        if (rc < 0)
            unlink(path);
    }
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}
