/* policy_sig.c — accept or refuse a possibly signed runtime policy, with Keylime's codes. */
#include "policy_sig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dsse.h"

static int set(qpsig_result *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set(qpsig_result *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    r->code = code;
    return code;
}

static int take(qpsig_result *r, const uint8_t *p, size_t n)
{
    if (!(r->payload = malloc(n + 1)))
        return set(r, 500, "out of memory");
    memcpy(r->payload, p, n);
    r->payload[n] = '\0';
    r->payload_len = n;
    return 0;
}

void qpsig_result_clear(qpsig_result *r)
{
    if (!r)
        return;
    free(r->payload);
    memset(r, 0, sizeof *r);
}

int qpsig_check(const char *text, size_t len, const uint8_t *key, size_t key_len, bool require,
                qpsig_result *r)
{
    memset(r, 0, sizeof *r);
    bool have_key = key && key_len > 0;
    r->is_envelope = qdsse_is_envelope(text, len);
    if (!r->is_envelope) {
        if (require || have_key)
            return set(r, 400, QPSIG_NOT_SIGNED);
        return take(r, (const uint8_t *)text, len);
    }
    qdsse_env env;
    qerr e = {0};
    if (qdsse_parse(text, len, &env, &e) < 0)
        return set(r, 400, "Runtime policy is malformatted: %s", e.msg);
    if (!have_key && require) {
        qdsse_env_clear(&env);
        return set(r, 401, QPSIG_NO_KEY);
    }
    if (have_key) {
        EVP_PKEY *pub = qdsse_load_public(key, key_len, &e);
        if (!pub) {
            qdsse_env_clear(&env);
            return set(r, 400, "runtime_policy_key is not usable: %s", e.msg);
        }
        int ok = qdsse_verify(&env, pub, &e);
        EVP_PKEY_free(pub);
        if (ok != 1) {
            qdsse_env_clear(&env);
            return ok < 0 ? set(r, 500, "%s", e.msg) : set(r, 401, QPSIG_BAD_SIG);
        }
        r->is_signed = true;
    }
    int rc = take(r, env.payload, env.payload_len);
    qdsse_env_clear(&env);
    return rc;
}
