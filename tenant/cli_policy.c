/* cli_policy.c — the runtime policy and tpm_policy a tenant command sends (keylime-formats §2.5,
 * §6 "Mask computation"): --allowlist (+ --exclude) converted in memory, or --runtime-policy read,
 * schema-checked and sent as written; everything base64-encoded for the request body. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64.h"
#include "buf.h"
#include "cli.h"
#include "dsse.h"
#include "policy.h"
#include "policy_sig.h"

static int read_file(const char *path, const char *what, qbuf *b, qerr *err)
{
    qbuf_init(b, TCLI_POLICY_MAX);
    if (qbuf_read_file(b, path, TCLI_POLICY_MAX) < 0) {
        int e = errno;
        qbuf_free(b);
        if (e == EFBIG)
            return qerr_setc(err, TCLI_EUSAGE, "%s %s is larger than %u MiB", what, path, TCLI_POLICY_MAX >> 20);
        return qerr_setc(err, TCLI_EUSAGE, "cannot read %s %s: %s", what, path, strerror(e));
    }
    if (!qbuf_cstr(b)) {
        qbuf_free(b);
        return qerr_setc(err, TCLI_EUSAGE, "out of memory reading %s %s", what, path);
    }
    return 0;
}

/* Library messages name the file already ("file:line: ..."); add it otherwise. */
static int file_error(qerr *err, const char *what, const char *path)
{
    if (!err)
        return -1;
    size_t n = strlen(path);
    if (strncmp(err->msg, path, n) != 0 || err->msg[n] != ':')
        qerr_prefix(err, "%s %s", what, path);
    else
        qerr_prefix(err, "bad %s", what);
    err->code = TCLI_EUSAGE;
    return -1;
}

static int from_allowlist(const char *allow, const char *excl, tcli_policy *p, qerr *err)
{
    qbuf a, e;
    if (read_file(allow, "allowlist", &a, err) < 0)
        return -1;
    qpolicy *pol = qpolicy_from_allowlist((const char *)a.data, a.len, allow, err);
    qbuf_free(&a);
    if (!pol)
        return file_error(err, "allowlist", allow);
    if (excl) {
        if (read_file(excl, "exclude list", &e, err) < 0) {
            qpolicy_free(pol);
            return -1;
        }
        int rc = qpolicy_add_excludes(pol, (const char *)e.data, e.len, excl, err);
        qbuf_free(&e);
        if (rc < 0) {
            qpolicy_free(pol);
            return file_error(err, "exclude list", excl);
        }
    }
    char *json = qpolicy_to_json(pol, false, err);
    p->paths = qpolicy_count(pol, QPOL_DIGESTS);
    p->excludes = qexcludes_count(qpolicy_excludes(pol));
    qpolicy_free(pol);
    if (!json)
        return file_error(err, "allowlist", allow);
    p->json_len = strlen(json);
    p->b64 = qb64_encode_alloc((const uint8_t *)json, p->json_len);
    free(json);
    if (!p->b64)
        return qerr_setc(err, TCLI_EUSAGE, "out of memory encoding the runtime policy");
    p->present = true;
    return 0;
}

/* A DSSE envelope, or any policy when a key is given, is checked before it is sent (as
 * keylime_tenant does): the key goes to the verifier base64-encoded as runtime_policy_key. The
 * payload is what gets validated; the file is sent as written. */
static int check_signature(const char *path, const qbuf *b, const char *keyfile, tcli_policy *p, qpsig_result *r,
                           qerr *err)
{
    qbuf k;
    qbuf_init(&k, 0);
    if (keyfile && read_file(keyfile, "runtime policy key", &k, err) < 0)
        return -1;
    bool env = qdsse_is_envelope((const char *)b->data, b->len);
    int code = qpsig_check((const char *)b->data, b->len, keyfile ? k.data : NULL, keyfile ? k.len : 0,
                           env || keyfile, r);
    if (code == 0 && keyfile && !(p->key_b64 = qb64_encode_alloc(k.data, k.len)))
        code = qerr_setc(err, TCLI_EFAIL, "out of memory");
    qbuf_free(&k);
    if (code < 0)
        return -1;
    if (code != 0)
        return qerr_setc(err, TCLI_EUSAGE, "runtime policy %s: %s%s", path, r->message,
                         code == 401 && !keyfile ? " (give the key with --runtime-policy-sig-key)" : "");
    p->is_signed = r->is_signed;
    return 0;
}

static int from_runtime_policy(const char *path, const char *checksum, const char *keyfile, tcli_policy *p,
                               qerr *err)
{
    qbuf b;
    if (read_file(path, "runtime policy", &b, err) < 0)
        return -1;

    if (checksum) {
        char sum[65];
        qpolicy_checksum((const char *)b.data, b.len, sum);
        if (strcasecmp(sum, checksum) != 0) {
            qbuf_free(&b);
            return qerr_setc(err, TCLI_EUSAGE, "checksum of runtime policy %s does not match: the file's SHA-256 "
                             "is %s", path, sum);
        }
    }
    qpsig_result sig;
    memset(&sig, 0, sizeof sig);
    if (check_signature(path, &b, keyfile, p, &sig, err) < 0) {
        qpsig_result_clear(&sig);
        qbuf_free(&b);
        return -1;
    }
    qpolicy *pol = qpolicy_from_json(sig.payload, sig.payload_len, path, err);
    qpsig_result_clear(&sig);
    if (!pol) {
        qbuf_free(&b);
        return file_error(err, "runtime policy", path);
    }
    p->paths = qpolicy_count(pol, QPOL_DIGESTS);
    p->excludes = qexcludes_count(qpolicy_excludes(pol));
    qpolicy_free(pol);
    p->json_len = b.len;
    p->b64 = qb64_encode_alloc(b.data, b.len);
    qbuf_free(&b);
    if (!p->b64)
        return qerr_setc(err, TCLI_EUSAGE, "out of memory encoding the runtime policy");
    p->present = true;
    return 0;
}

int tcli_policy_load(const tcli_conf *c, const tcli_opts *o, tcli_policy *p, qerr *err)
{
    memset(p, 0, sizeof *p);
    const char *what = c->allowlist ? "allowlist" : "runtime policy";
    const char *file = c->allowlist ? c->allowlist : o->runtime_policy;
    int rc = 0;
    if (c->allowlist)
        rc = from_allowlist(c->allowlist, c->exclude, p, err);
    else if (o->runtime_policy)
        rc = from_runtime_policy(o->runtime_policy, o->runtime_policy_checksum, o->runtime_policy_key, p, err);
    if (rc == 0)
        rc = tcli_ima_keys_load(o, &p->ima_keys, err);
    /* A policy with no digests and no signature keys checks nothing: an empty file is a mistake
     * until said otherwise. */
    if (rc == 0 && p->present && p->paths == 0 && !p->ima_keys && !o->allow_empty) {
        tcli_policy_free(p);
        return qerr_setc(err, TCLI_EUSAGE, "%s %s has no entries, so nothing would be checked; give --allow-empty "
                         "to send it anyway", what, file);
    }
    if (rc < 0)
        tcli_policy_free(p);
    return rc;
}

void tcli_policy_free(tcli_policy *p)
{
    if (!p)
        return;
    free(p->b64);
    free(p->key_b64);
    free(p->ima_keys);
    memset(p, 0, sizeof *p);
}
