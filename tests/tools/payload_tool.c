/* payload_tool — builds the pieces of Keylime's secure payload for the integration tests, with
 * the library's own crypto (common/payload_crypto.h), so tests can talk to an agent's /keys
 * endpoints directly (curl) and feed quince-tenant -k/-p:
 *   payload_tool keys OUT                          a new key file (K, U, V; mode 0600)
 *   payload_tool seal KEYFILE IN OUT               IN sealed with K, written as base64 text to OUT
 *   payload_tool ukey KEYFILE UUID PUBKEY [B64FILE] [--bad-tag]
 *                                                  the /keys/ukey body (stdout); --bad-tag: an
 *                                                  auth_tag of another key
 *   payload_tool vkey KEYFILE PUBKEY               the /keys/vkey body (stdout)
 *   payload_tool half LEN PUBKEY                   base64 RSA-OAEP of LEN random bytes (stdout)
 *   payload_tool hmac KEYFILE CHALLENGE            hex HMAC-SHA384(K, challenge) (stdout)
 * PUBKEY is a file with the agent's payload key PEM (its /keys/pubkey answer). Exit 0, or 1 with
 * one line on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "payload_crypto.h"

#define FILE_MAX (64u << 20)

static int die(const char *what, const qerr *e)
{
    fprintf(stderr, "payload_tool: %s%s%s\n", what, e ? ": " : "", e ? e->msg : "");
    return 1;
}

/* Whole file as a NUL-terminated buffer. */
static int slurp(const char *path, qbuf *b)
{
    qbuf_init(b, 0);
    if (qbuf_read_file(b, path, FILE_MAX) < 0 || qbuf_append(b, "", 1) < 0) {
        qbuf_free(b);
        return -1;
    }
    b->len--;
    return 0;
}

static int print_json(cJSON *o)
{
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!t)
        return die("out of memory", NULL);
    printf("%s\n", t);
    free(t);
    return 0;
}

static int cmd_seal(const char *keyfile, const char *in, const char *out)
{
    qerr e;
    qpay_keys ks;
    qbuf b;
    if (qpay_keyfile_read(keyfile, &ks, &e) < 0)
        return die("key file", &e);
    if (slurp(in, &b) < 0)
        return die("cannot read the input file", NULL);
    size_t cap = qpay_sealed_size(b.len), n = 0;
    uint8_t *sealed = malloc(cap);
    char *text = NULL;
    int rc = 1;
    if (sealed && qpay_seal(ks.k, ks.len, b.data, b.len, sealed, cap, &n, &e) == 0 &&
        (text = qb64_encode_alloc(sealed, n))) {
        FILE *f = fopen(out, "wx");
        if (f && fprintf(f, "%s\n", text) > 0 && fclose(f) == 0)
            rc = 0;
        else if (f)
            fclose(f);
    }
    if (rc)
        die("cannot seal the payload", NULL);
    free(text);
    free(sealed);
    qbuf_free(&b);
    qpay_keys_clear(&ks);
    return rc;
}

static int cmd_ukey(int argc, char **argv)
{
    /* ukey KEYFILE UUID PUBKEY [B64FILE] [--bad-tag] */
    bool bad_tag = strcmp(argv[argc - 1], "--bad-tag") == 0;
    if (bad_tag)
        argc--;
    if (argc < 5 || argc > 6)
        return die("usage: ukey KEYFILE UUID PUBKEY [B64FILE] [--bad-tag]", NULL);
    qerr e;
    qpay_keys ks;
    qbuf pem, pay;
    if (qpay_keyfile_read(argv[2], &ks, &e) < 0)
        return die("key file", &e);
    if (slurp(argv[4], &pem) < 0)
        return die("cannot read the public key file", NULL);
    qbuf_init(&pay, 0);
    if (argc == 6 && slurp(argv[5], &pay) < 0)
        return die("cannot read the payload file", NULL);
    while (pay.len && (pay.data[pay.len - 1] == '\n' || pay.data[pay.len - 1] == '\r'))
        pay.data[--pay.len] = '\0';
    char tag[QPAY_HMAC_HEX + 1];
    uint8_t other[QPAY_KEY_MAX];
    int rc = 1;
    if (bad_tag) {
        memcpy(other, ks.k, ks.len);
        other[0] ^= 1;
    }
    char *ek = NULL;
    if (qpay_auth_tag(bad_tag ? other : ks.k, ks.len, argv[3], tag, &e) == 0 &&
        (ek = qpay_rsa_encrypt_b64((const char *)pem.data, pem.len, ks.u, ks.len, &e))) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "auth_tag", tag);
        cJSON_AddStringToObject(o, "encrypted_key", ek);
        if (pay.len)
            cJSON_AddStringToObject(o, "payload", (const char *)pay.data);
        rc = print_json(o);
    } else {
        die("ukey", &e);
    }
    free(ek);
    qbuf_free(&pem);
    qbuf_free(&pay);
    qpay_keys_clear(&ks);
    return rc;
}

static int cmd_vkey(const char *keyfile, const char *pubkey)
{
    qerr e;
    qpay_keys ks;
    qbuf pem;
    if (qpay_keyfile_read(keyfile, &ks, &e) < 0)
        return die("key file", &e);
    if (slurp(pubkey, &pem) < 0)
        return die("cannot read the public key file", NULL);
    char *ek = qpay_rsa_encrypt_b64((const char *)pem.data, pem.len, ks.v, ks.len, &e);
    qbuf_free(&pem);
    qpay_keys_clear(&ks);
    if (!ek)
        return die("vkey", &e);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "encrypted_key", ek);
    free(ek);
    return print_json(o);
}

static int cmd_half(const char *len, const char *pubkey)
{
    qerr e;
    size_t n = (size_t)atoi(len);
    uint8_t r[128];
    qbuf pem;
    if (n == 0 || n > sizeof r || qpay_random(r, n, &e) < 0)
        return die("half: LEN must be 1..128", NULL);
    if (slurp(pubkey, &pem) < 0)
        return die("cannot read the public key file", NULL);
    char *ek = qpay_rsa_encrypt_b64((const char *)pem.data, pem.len, r, n, &e);
    qbuf_free(&pem);
    if (!ek)
        return die("half", &e);
    printf("%s\n", ek);
    free(ek);
    return 0;
}

static int cmd_hmac(const char *keyfile, const char *challenge)
{
    qerr e;
    qpay_keys ks;
    char hex[QPAY_HMAC_HEX + 1];
    if (qpay_keyfile_read(keyfile, &ks, &e) < 0)
        return die("key file", &e);
    int rc = qpay_hmac_hex(ks.k, ks.len, challenge, strlen(challenge), hex, &e);
    qpay_keys_clear(&ks);
    if (rc < 0)
        return die("hmac", &e);
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv)
{
    qerr e;
    const char *c = argc > 1 ? argv[1] : "";
    if (strcmp(c, "keys") == 0 && argc == 3) {
        qpay_keys ks;
        if (qpay_keys_new(&ks, &e) < 0 || qpay_keyfile_write(argv[2], &ks, &e) < 0)
            return die("keys", &e);
        qpay_keys_clear(&ks);
        return 0;
    }
    if (strcmp(c, "seal") == 0 && argc == 5)
        return cmd_seal(argv[2], argv[3], argv[4]);
    if (strcmp(c, "ukey") == 0 && argc >= 5)
        return cmd_ukey(argc, argv);
    if (strcmp(c, "vkey") == 0 && argc == 4)
        return cmd_vkey(argv[2], argv[3]);
    if (strcmp(c, "half") == 0 && argc == 4)
        return cmd_half(argv[2], argv[3]);
    if (strcmp(c, "hmac") == 0 && argc == 4)
        return cmd_hmac(argv[2], argv[3]);
    fprintf(stderr, "usage: payload_tool keys|seal|ukey|vkey|half|hmac ... (see the source)\n");
    return 2;
}
