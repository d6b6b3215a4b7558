/* policy_signature.c — the verifier's checks of signed (DSSE) runtime policies. */
#include "policy_signature.h"

#include <stdlib.h>
#include <string.h>
#include "b64.h"
#include "dsse.h"
#include "log.h"

#define MOD "verifier"

/* The key bytes of a base64 runtime_policy_key (NULL, 0 when absent). -1 when undecodable. */
static int decode_key(const char *key_b64, uint8_t **key, size_t *len)
{
    *key = NULL;
    *len = 0;
    if (!key_b64 || !*key_b64)
        return 0;
    *key = qb64_decode_alloc(key_b64, strlen(key_b64), QDSSE_MAX_KEY, len);
    return *key ? 0 : -1;
}

int vpsig_check_upload(const char *text, size_t len, const char *key_b64, bool require, qpsig_result *res)
{
    uint8_t *key = NULL;
    size_t klen = 0;
    if (decode_key(key_b64, &key, &klen) < 0) {
        memset(res, 0, sizeof *res);
        res->code = 400;
        snprintf(res->message, sizeof res->message, "runtime_policy_key is not valid base64");
        qlog(QLOG_WARNING, MOD, "%s", res->message);
        return res->code;
    }
    int rc = qpsig_check(text, len, key, klen, require, res);
    free(key);
    if (rc != 0)
        qlog(QLOG_WARNING, MOD, "%s", res->message);
    else if (res->is_signed)
        qlog(QLOG_INFO, MOD, "Runtime policy passed DSSE signature verification");
    return rc;
}

char *vpsig_stored_payload(const vpolicy *vp, size_t *len, qerr *err)
{
    const char *b = vp->body ? vp->body : "";
    size_t blen = strlen(b);
    qpsig_result r;
    int rc = vpsig_check_upload(b, blen, vp->sign_key, false, &r);
    if (rc != 0) {
        qerr_set(err, "stored runtime policy %s: %s", vp->name, r.message);
        qpsig_result_clear(&r);
        return NULL;
    }
    char *p = r.payload;
    *len = r.payload_len;
    r.payload = NULL;
    qpsig_result_clear(&r);
    return p;
}
