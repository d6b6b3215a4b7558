/* payload_key.c — in-memory RSA-2048 payload key; see payload_key.h. */
#include "payload_key.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

int agent_payload_key_generate(agent_payload_key *k, qerr *err)
{
    memset(k, 0, sizeof(*k));
    k->pkey = EVP_RSA_gen(2048);
    if (!k->pkey)
        return qerr_set(err, "cannot generate the RSA-2048 payload key");
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || PEM_write_bio_PUBKEY(b, k->pkey) != 1) {
        BIO_free(b);
        agent_payload_key_free(k);
        return qerr_set(err, "cannot encode the payload public key");
    }
    char *p;
    long n = BIO_get_mem_data(b, &p);
    k->pem = malloc((size_t)n + 1);
    if (!k->pem) {
        BIO_free(b);
        agent_payload_key_free(k);
        return qerr_set(err, "out of memory");
    }
    memcpy(k->pem, p, (size_t)n);
    k->pem[n] = '\0';
    k->pem_len = (size_t)n;
    BIO_free(b);
    return 0;
}

void agent_payload_key_free(agent_payload_key *k)
{
    EVP_PKEY_free(k->pkey);
    free(k->pem);
    memset(k, 0, sizeof(*k));
}

long agent_payload_key_decrypt(const agent_payload_key *k, const uint8_t *in, size_t in_len, uint8_t *out,
                               size_t cap, qerr *err)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k->pkey, NULL);
    size_t outlen = 0;
    long rc = -1;
    if (!ctx || EVP_PKEY_decrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha1()) != 1 ||
        EVP_PKEY_decrypt(ctx, NULL, &outlen, in, in_len) != 1) {
        qerr_set(err, "cannot set up RSA-OAEP decryption");
    } else if (outlen > cap + 256) {
        qerr_set(err, "decrypted key would be too large");
    } else {
        uint8_t tmp[512];
        outlen = sizeof tmp;
        if (EVP_PKEY_decrypt(ctx, tmp, &outlen, in, in_len) != 1)
            qerr_set(err, "RSA-OAEP decryption failed (wrong key or corrupt data)");
        else if (outlen > cap)
            qerr_set(err, "decrypted key has %zu bytes, expected at most %zu", outlen, cap);
        else {
            memcpy(out, tmp, outlen);
            rc = (long)outlen;
        }
        OPENSSL_cleanse(tmp, sizeof tmp);
    }
    EVP_PKEY_CTX_free(ctx);
    return rc;
}
