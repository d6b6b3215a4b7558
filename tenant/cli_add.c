/* cli_add.c — `-c add` and `-c update` (keylime-formats §6 "Commands → HTTP"):
 *   registrar GET agent (active; AK, EK, contact) → agent GET /version → agent GET
 *   /v{a}/quotes/identity?nonce=<20 alnum> → quote checked with the registrar's AK, PCR 16 bound to
 *   the returned key, algorithms accepted → verifier POST /v{v}/agents/{id} (Keylime's add body) →
 *   GET until 200. Local files are read and checked before any request; if anything fails after
 *   the verifier accepted the agent, the agent is deleted again. update = the same checks, then
 *   delete, then add. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "cli.h"
#include "pcr_bank.h"
#include "quote.h"
#include "tls_pin.h"

#define NONCE_LEN     20
#define ADD_POLL_MS   200

typedef struct add_state {
    tcli_policy pol;
    char *aik;                          /* registrar record (owned copies) */
    char *mtls;                         /* NULL: JSON null */
    char agent_ip[TCLI_HOST_MAX + 1];
    long agent_port;
    char agent_ver[16];
    char agent_where[TCLI_HOST_MAX + 16];
    qhttp_client *agent_http;           /* pinned to the agent's registered certificate (owned) */
    bool agent_tls;
} add_state;

static void add_state_free(add_state *s)
{
    tcli_policy_free(&s->pol);
    free(s->aik);
    free(s->mtls);
    qhttp_client_free(s->agent_http);
    memset(s, 0, sizeof *s);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int make_nonce(char out[NONCE_LEN + 1], qerr *err)
{
    static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = 0;
    while (n < NONCE_LEN) {
        unsigned char buf[32];
        if (RAND_bytes(buf, sizeof buf) != 1)
            return qerr_setc(err, TCLI_EFAIL, "cannot draw random bytes for the nonce");
        for (size_t i = 0; i < sizeof buf && n < NONCE_LEN; i++)
            if (buf[i] < 248)                 /* 248 = 4 * 62: no modulo bias */
                out[n++] = ALNUM[buf[i] % 62];
    }
    out[NONCE_LEN] = '\0';
    return 0;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- registrar ------------------------------------------------------------------------------ */

/* The client for the agent: TLS with the agent's registered certificate as the only trust anchor
 * and its public key pinned (the host name is not checked: the pin is stronger), presenting the
 * tenant's certificate. An agent registered without a certificate is reached over plain HTTP only
 * when insecure. */
static int agent_client(tcli_ctx *x, add_state *s, qerr *err)
{
    const char *id = x->o->uuid;
    if (!qtls_is_cert_pem(s->mtls)) {
        if (!x->c->insecure)
            return qerr_setc(err, TCLI_EFAIL, "agent %s registered without an mTLS certificate (mtls_cert %s); "
                             "refusing to talk to it over plain HTTP (--insecure is for debugging only)", id,
                             s->mtls ? "\"disabled\"" : "null");
        s->agent_tls = false;
        return 0;
    }
    char pin[QTLS_PIN_MAX];
    if (qtls_pin_sha256(s->mtls, pin, sizeof pin, err) < 0) {
        qerr_prefix(err, "the registrar's mtls_cert for agent %s cannot be used", id);
        err->code = TCLI_EFAIL;
        return -1;
    }
    qhttp_client_opts ho = { .connect_timeout_ms = x->c->connect_ms, .timeout_ms = x->c->timeout_ms,
                             .ca_pem = s->mtls, .pinned_pubkey = pin, .no_verify_host = true };
    if (!x->c->insecure) {
        ho.cert_file = x->c->client_cert;
        ho.key_file = x->c->client_key;
    }
    if (!(s->agent_http = qhttp_client_new(&ho, err))) {
        err->code = TCLI_EFAIL;
        return -1;
    }
    s->agent_tls = true;
    return 0;
}

static int registrar_record(tcli_ctx *x, add_state *s, qerr *err)
{
    const char *id = x->o->uuid;
    char path[TCLI_ID_MAX + 16];
    snprintf(path, sizeof path, "/agents/%s", id);
    qhttp_result r;
    if (tcli_call(x, TSRV_REGISTRAR, "GET", path, NULL, &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    int rc = -1;
    if (r.status != 200) {
        tcli_http_error(&r, err, "agent %s is not registered and active at the registrar at %s", id,
                        x->where[TSRV_REGISTRAR]);
        goto out;
    }
    const char *aik = jstr(r.results, "aik_tpm"), *ip = jstr(r.results, "ip"), *mtls = jstr(r.results, "mtls_cert");
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(r.results, "port");
    if (!aik || !*aik) {
        qerr_setc(err, TCLI_EFAIL, "the registrar at %s holds no AK (aik_tpm) for agent %s", x->where[TSRV_REGISTRAR],
                  id);
        goto out;
    }
    if (!(s->aik = strdup(aik)) || (mtls && !(s->mtls = strdup(mtls)))) {
        qerr_setc(err, TCLI_EFAIL, "out of memory");
        goto out;
    }
    const char *host = x->o->agent_ip ? x->o->agent_ip : ip;
    if (!host || !*host || strlen(host) > TCLI_HOST_MAX) {
        qerr_setc(err, TCLI_EUSAGE, "the registrar has no address for agent %s: give -t/--targethost", id);
        goto out;
    }
    snprintf(s->agent_ip, sizeof s->agent_ip, "%s", host);
    if (agent_client(x, s, err) < 0)
        goto out;
    if (x->o->agent_port)
        s->agent_port = x->o->agent_port;
    else if (cJSON_IsNumber(port) && port->valuedouble >= 1 && port->valuedouble <= 65535)
        s->agent_port = (long)port->valuedouble;
    else if (cJSON_IsString(port) && atol(port->valuestring) >= 1 && atol(port->valuestring) <= 65535)
        s->agent_port = atol(port->valuestring);
    else {
        qerr_setc(err, TCLI_EUSAGE, "the registrar has no port for agent %s: give -tp/--targetport", id);
        goto out;
    }
    rc = 0;
out:
    qhttp_result_free(&r);
    return rc;
}

/* ---- agent ---------------------------------------------------------------------------------- */

static int agent_get(tcli_ctx *x, add_state *s, const char *path, qhttp_result *r, qerr *err)
{
    char base[TCLI_HOST_MAX + 32], url[TCLI_HOST_MAX + 128];
    tcli_base_url_tls(s->agent_tls, s->agent_ip, s->agent_port, base, sizeof base, s->agent_where,
                      sizeof s->agent_where);
    snprintf(url, sizeof url, "%s%s", base, path);
    if (qhttp_get(s->agent_tls ? s->agent_http : x->http, url, r, err) < 0) {
        if (err) {
            if (s->agent_tls && strncmp(err->msg, "TLS error", 9) == 0)
                qerr_prefix(err, "agent %s at %s did not present the certificate it registered (another machine "
                                 "may hold its address), or refused the tenant's certificate", x->o->uuid,
                            s->agent_where);
            else
                qerr_prefix(err, "cannot reach agent %s at %s", x->o->uuid, s->agent_where);
            err->code = TCLI_EFAIL;
        }
        return -1;
    }
    return 0;
}

static bool api2(const char *v)
{
    if (!v || v[0] != '2' || v[1] != '.' || !v[2] || strlen(v) > 5)
        return false;
    for (const char *p = v + 2; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

static int agent_version(tcli_ctx *x, add_state *s, qerr *err)
{
    qhttp_result r;
    if (agent_get(x, s, "/version", &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    int rc = -1;
    const char *v = jstr(r.results, "supported_version");
    if (r.status != 200)
        tcli_http_error(&r, err, "agent %s at %s did not say its API version", x->o->uuid, s->agent_where);
    else if (!api2(v))
        qerr_setc(err, TCLI_EFAIL, "agent %s at %s speaks API %.20s; this tenant speaks 2.x", x->o->uuid,
                  s->agent_where, v ? v : "(none)");
    else {
        snprintf(s->agent_ver, sizeof s->agent_ver, "%s", v);
        rc = 0;
    }
    qhttp_result_free(&r);
    return rc;
}

static bool accepted(const tcli_algs *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->name[i], name) == 0)
            return true;
        /* "rsa"/"ecc" also match the sized names ("rsa2048", "ecc256") and the other way round. */
        for (int f = 0; f < 2; f++) {
            const char *fam = f ? "ecc" : "rsa";
            bool bare_a = strcmp(a->name[i], fam) == 0, bare_n = strcmp(name, fam) == 0;
            bool in_a = strncmp(a->name[i], fam, 3) == 0 && a->name[i][3] >= '0' && a->name[i][3] <= '9';
            bool in_n = strncmp(name, fam, 3) == 0 && name[3] >= '0' && name[3] <= '9';
            if ((bare_a && (in_n || bare_n)) || (bare_n && in_a))
                return true;
        }
    }
    return false;
}

static void algs_text(const tcli_algs *a, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < a->n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", a->name[i]);
}

static int check_algs(tcli_ctx *x, const cJSON *res, qerr *err)
{
    static const char *const KEYS[3] = {"hash_alg", "enc_alg", "sign_alg"};
    static const char *const SETTINGS[3] = {"accept_tpm_hash_algs", "accept_tpm_encryption_algs",
                                            "accept_tpm_signing_algs"};
    const tcli_algs *lists[3] = {&x->c->hash, &x->c->enc, &x->c->sign};
    for (int i = 0; i < 3; i++) {
        const char *v = jstr(res, KEYS[i]);
        if (!v)
            return qerr_setc(err, TCLI_EFAIL, "agent %s: the identity quote answer has no %s", x->o->uuid, KEYS[i]);
        if (!accepted(lists[i], v)) {
            char list[TCLI_ALGS_MAX * (TCLI_ALG_LEN + 2) + 1];
            algs_text(lists[i], list, sizeof list);
            return qerr_setc(err, TCLI_EFAIL, "agent %s quotes with %s '%.40s', which [tenant] %s (%s) does not accept",
                             x->o->uuid, KEYS[i], v, SETTINGS[i], list);
        }
    }
    return 0;
}

static int identity_quote(tcli_ctx *x, add_state *s, qerr *err)
{
    const char *id = x->o->uuid;
    char nonce[NONCE_LEN + 1], path[64];
    if (make_nonce(nonce, err) < 0)
        return -1;
    snprintf(path, sizeof path, "/v%s/quotes/identity?nonce=%s", s->agent_ver, nonce);
    qhttp_result r;
    if (agent_get(x, s, path, &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    int rc = -1;
    qak ak;
    memset(&ak, 0, sizeof ak);
    qquote_result *qr = NULL;
    if (r.status != 200) {
        tcli_http_error(&r, err, "agent %s at %s refused the identity quote", id, s->agent_where);
        goto out;
    }
    const char *quote = jstr(r.results, "quote"), *pubkey = jstr(r.results, "pubkey");
    if (!quote || !pubkey) {
        qerr_setc(err, TCLI_EFAIL, "agent %s: the identity quote answer lacks %s", id, quote ? "pubkey" : "quote");
        goto out;
    }
    if (check_algs(x, r.results, err) < 0)
        goto out;
    qhash_alg bank;
    if (qhash_from_name(jstr(r.results, "hash_alg"), &bank) < 0) {
        qerr_setc(err, TCLI_EFAIL, "agent %s quotes with hash_alg '%.40s', which this tenant cannot check", id,
                  jstr(r.results, "hash_alg"));
        goto out;
    }
    if (qak_load_b64(&ak, s->aik, strlen(s->aik), err) < 0) {
        qerr_prefix(err, "the registrar's AK for agent %s cannot be used", id);
        err->code = TCLI_EFAIL;
        goto out;
    }
    if (!(qr = malloc(sizeof *qr))) {
        qerr_setc(err, TCLI_EFAIL, "out of memory");
        goto out;
    }
    if (qquote_check(&ak, quote, strlen(quote), (const uint8_t *)nonce, NONCE_LEN, bank, qr, err) < 0) {
        qerr_prefix(err, "the identity quote of agent %s does not verify with its registered AK", id);
        err->code = TCLI_EFAIL;
        goto out;
    }
    uint8_t want[QHASH_MAX_SIZE];
    if (!(qr->pcrs.mask & (1u << 16))) {
        qerr_setc(err, TCLI_EFAIL, "the identity quote of agent %s does not cover PCR 16", id);
        goto out;
    }
    if (qquote_pcr16_expected(bank, pubkey, strlen(pubkey), want, err) < 0) {
        err->code = TCLI_EFAIL;
        goto out;
    }
    if (memcmp(qr->pcrs.value[16], want, qhash_size(bank)) != 0) {
        qerr_setc(err, TCLI_EFAIL, "PCR 16 of agent %s's identity quote is not bound to its public key "
                  "(invalid bind data)", id);
        goto out;
    }
    rc = 0;
out:
    free(qr);
    qak_free(&ak);
    qhttp_result_free(&r);
    return rc;
}

/* Everything that can be checked without changing the verifier. */
static int prepare(tcli_ctx *x, add_state *s, qerr *err)
{
    memset(s, 0, sizeof *s);
    if (tcli_policy_load(x->c, x->o, &s->pol, err) < 0 || registrar_record(x, s, err) < 0 ||
        agent_version(x, s, err) < 0 || identity_quote(x, s, err) < 0)
        return -1;
    return 0;
}

/* ---- verifier ------------------------------------------------------------------------------- */

static cJSON *algs_json(const tcli_algs *a)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < a->n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(a->name[i]));
    return arr;
}

static cJSON *add_body(tcli_ctx *x, const add_state *s, bool with_ima)
{
    const tcli_opts *o = x->o;
    char *tpm = tcli_tpm_policy_text(x->c, with_ima);
    cJSON *b = cJSON_CreateObject();
    if (!tpm || !b) {
        cJSON_free(tpm);
        cJSON_Delete(b);
        return NULL;
    }
    cJSON_AddNullToObject(b, "v");
    cJSON_AddStringToObject(b, "cloudagent_ip", o->cv_agent_ip ? o->cv_agent_ip : s->agent_ip);
    cJSON_AddNumberToObject(b, "cloudagent_port", (double)s->agent_port);
    cJSON_AddStringToObject(b, "verifier_ip", x->c->cv_ip);
    cJSON_AddNumberToObject(b, "verifier_port", (double)x->c->cv_port);
    cJSON_AddStringToObject(b, "tpm_policy", tpm);
    cJSON_free(tpm);
    cJSON_AddStringToObject(b, "runtime_policy", s->pol.present ? s->pol.b64 : "");
    if (o->runtime_policy_name)
        cJSON_AddStringToObject(b, "runtime_policy_name", o->runtime_policy_name);
    else
        cJSON_AddNullToObject(b, "runtime_policy_name");
    cJSON_AddStringToObject(b, "runtime_policy_key", "");
    cJSON_AddNullToObject(b, "mb_policy");
    cJSON_AddStringToObject(b, "mb_policy_name", "");
    cJSON_AddStringToObject(b, "ima_sign_verification_keys", "");
    cJSON_AddStringToObject(b, "metadata", "{}");
    cJSON_AddStringToObject(b, "revocation_key", "");
    cJSON_AddItemToObject(b, "accept_tpm_hash_algs", algs_json(&x->c->hash));
    cJSON_AddItemToObject(b, "accept_tpm_encryption_algs", algs_json(&x->c->enc));
    cJSON_AddItemToObject(b, "accept_tpm_signing_algs", algs_json(&x->c->sign));
    cJSON_AddStringToObject(b, "ak_tpm", s->aik);
    if (s->mtls)
        cJSON_AddStringToObject(b, "mtls_cert", s->mtls);
    else
        cJSON_AddNullToObject(b, "mtls_cert");
    cJSON_AddStringToObject(b, "supported_version", s->agent_ver);
    return b;
}

/* Best effort: remove an agent the verifier accepted but that did not come up. */
static void rollback(tcli_ctx *x, const char *path)
{
    qhttp_result r;
    qerr e;
    tcli_call(x, TSRV_VERIFIER, "DELETE", path, NULL, &r, &e);
    qhttp_result_free(&r);
}

static int post_agent(tcli_ctx *x, add_state *s, qerr *err)
{
    const char *id = x->o->uuid, *where = x->where[TSRV_VERIFIER];
    bool with_ima = s->pol.present || x->o->runtime_policy_name;
    char path[TCLI_ID_MAX + 16];
    snprintf(path, sizeof path, "/agents/%s", id);
    cJSON *body = add_body(x, s, with_ima);
    if (!body)
        return qerr_setc(err, TCLI_EFAIL, "out of memory");
    qhttp_result r;
    int rc = tcli_call(x, TSRV_VERIFIER, "POST", path, body, &r, err);
    cJSON_Delete(body);
    if (rc < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    if (r.status == 413) {
        tcli_http_error(&r, err, "the verifier at %s refused agent %s: the request with the runtime policy "
                        "(%zu bytes of policy JSON) is over its upload limit (max_upload_size)", where, id,
                        s->pol.json_len);
        qhttp_result_free(&r);
        return -1;
    }
    if (r.status != 200) {
        tcli_http_error(&r, err, "the verifier at %s refused to add agent %s", where, id);
        qhttp_result_free(&r);
        return -1;
    }
    qhttp_result_free(&r);

    /* The verifier has the agent: wait until it shows it (Keylime's tenant polls the same way). */
    long waited = 0;
    for (;;) {
        if (tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, &r, err) < 0) {
            qhttp_result_free(&r);
            rollback(x, path);
            return -1;
        }
        long st = r.status;
        if (st == 200)
            break;
        if (st != 404 || waited >= x->c->timeout_ms) {
            tcli_http_error(&r, err, "agent %s did not appear on the verifier at %s after the add", id, where);
            qhttp_result_free(&r);
            rollback(x, path);
            return -1;
        }
        qhttp_result_free(&r);
        sleep_ms(ADD_POLL_MS);
        waited += ADD_POLL_MS;
    }
    qhttp_result_free(&r);

    char what[TCLI_NAME_MAX + 96];
    const char *name = x->o->runtime_policy_name;
    if (s->pol.present)
        snprintf(what, sizeof what, "runtime policy%s%s: %zu path%s, %zu exclude%s", name ? " " : "", name ? name : "",
                 s->pol.paths, s->pol.paths == 1 ? "" : "s", s->pol.excludes, s->pol.excludes == 1 ? "" : "s");
    else if (name)
        snprintf(what, sizeof what, "stored runtime policy %s", name);
    else
        snprintf(what, sizeof what, "no runtime policy");
    printf("agent %s added to the verifier at %s (%s)\n", id, where, what);
    fflush(stdout);
    return 0;
}

int tcli_cmd_add(tcli_ctx *x, qerr *err)
{
    add_state s;
    int rc = prepare(x, &s, err);
    if (rc == 0)
        rc = post_agent(x, &s, err);
    add_state_free(&s);
    return rc;
}

int tcli_cmd_update(tcli_ctx *x, qerr *err)
{
    add_state s;
    bool missing = false;
    int rc = prepare(x, &s, err);
    if (rc == 0)
        rc = tcli_cmd_delete(x, true, &missing, err);
    if (rc == 0 && missing)
        printf("agent %s was not on the verifier at %s\n", x->o->uuid, x->where[TSRV_VERIFIER]);
    if (rc == 0)
        rc = post_agent(x, &s, err);
    add_state_free(&s);
    return rc;
}
