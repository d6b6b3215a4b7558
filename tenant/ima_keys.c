/* ima_keys.c — the IMA file-signature keys an add/update hands the verifier
 * (ima_sign_verification_keys, keylime-formats §2.6): --signature-verification-key files (PEM or
 * DER; certificate, public key or private key; RSA or EC) and --signature-verification-key-url
 * downloads (http/https only, no redirects, at most TCLI_SIG_KEY_MAX bytes), gathered into one
 * keyring JSON. Keys the agent's own ima-buf keyring entries carry are learned by the verifier
 * as before; these are added to them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "http_client.h"
#include "ima_sig.h"

static int add_file(qkeyring *k, const char *path, qerr *err)
{
    qbuf b;
    qbuf_init(&b, 0);
    if (qbuf_read_file(&b, path, TCLI_SIG_KEY_MAX) < 0) {
        int e = errno;
        qbuf_free(&b);
        return qerr_setc(err, TCLI_EUSAGE, "cannot read signature verification key %s: %s", path,
                         e == EFBIG ? "larger than 64 KiB" : strerror(e));
    }
    qerr e = {0};
    int rc = qkeyring_add_key(k, b.data, b.len, &e);
    qbuf_free(&b);
    if (rc < 0)
        return qerr_setc(err, TCLI_EUSAGE, "signature verification key %s: %s", path, e.msg);
    return 0;
}

static int add_url(qkeyring *k, qhttp_client *c, const char *url, qerr *err)
{
    qhttp_result r;
    qerr e = {0};
    if (qhttp_get(c, url, &r, &e) < 0) {
        qhttp_result_free(&r);
        return qerr_setc(err, TCLI_EFAIL, "cannot fetch signature verification key %s: %s", url, e.msg);
    }
    if (r.status != 200) {
        char d[128];
        qerr_setc(err, TCLI_EFAIL, "cannot fetch signature verification key %s: %s", url,
                  qhttp_result_describe(&r, d, sizeof d));
        qhttp_result_free(&r);
        return -1;
    }
    int rc = qkeyring_add_key(k, (const uint8_t *)r.body, r.body_len, &e);
    qhttp_result_free(&r);
    if (rc < 0)
        return qerr_setc(err, TCLI_EUSAGE, "signature verification key from %s: %s", url, e.msg);
    return 0;
}

int tcli_ima_keys_load(const tcli_opts *o, char **json, qerr *err)
{
    *json = NULL;
    if (!o->nsig_keys && !o->nsig_key_urls)
        return 0;
    qkeyring *k = qkeyring_new();
    if (!k)
        return qerr_setc(err, TCLI_EFAIL, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < o->nsig_keys; i++)
        rc = add_file(k, o->sig_keys[i], err);
    if (rc == 0 && o->nsig_key_urls) {
        qhttp_client_opts co = { .max_response = TCLI_SIG_KEY_MAX, .timeout_ms = 30000 };
        qerr e = {0};
        qhttp_client *c = qhttp_client_new(&co, &e);
        if (!c)
            rc = qerr_setc(err, TCLI_EFAIL, "cannot start an HTTP client: %s", e.msg);
        for (size_t i = 0; rc == 0 && i < o->nsig_key_urls; i++)
            rc = add_url(k, c, o->sig_key_urls[i], err);
        qhttp_client_free(c);
    }
    if (rc == 0) {
        qerr e = {0};
        if (!(*json = qkeyring_to_json(k, &e)))
            rc = qerr_setc(err, TCLI_EFAIL, "cannot encode the IMA keyring: %s", e.msg);
    }
    qkeyring_free(k);
    return rc;
}
