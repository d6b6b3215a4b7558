/* cli_add.c — `-c add` and `-c update` (keylime-formats §6 "Commands → HTTP"):
 *   registrar GET agent (active; AK, EK, contact) → agent GET /version → agent GET
 *   /v{a}/quotes/identity?nonce=<20 alnum> → quote checked with the registrar's AK, PCR 16 bound to
 *   the returned key, algorithms accepted → with a payload (-f, or -k [-p]), agent POST
 *   /v{a}/keys/ukey (U encrypted to that key, the auth_tag, the sealed payload) → verifier POST
 *   /v{v}/agents/{id} (Keylime's add body, "v" = V when there is a payload) → GET until 200 →
 *   with --verify, agent GET /v{a}/keys/verify?challenge=<20 alnum> until the HMAC proves it
 *   derived K, or [tenant] verify_timeout_ms. Local files (policy, payload, key file) are read and
 *   checked before any request, so a payload over max_payload_size sends nothing; if anything
 *   fails after the verifier accepted the agent, the agent is deleted again. update = the same
 *   checks and the U, then delete, then add. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "cli.h"
#include "payload.h"
#include "pcr_bank.h"
#include "quote.h"
#include "tls_pin.h"

#define NONCE_LEN     20
#define ADD_POLL_MS   200
#define VERIFY_POLL_MS 500

typedef struct add_state {
    tcli_policy pol;
    char *aik;                          /* registrar record (owned copies) */
    char *mtls;                         /* NULL: JSON null */
    char reg_id[TCLI_ID_MAX + 1];       /* the id as the agent registered it (its auth_tag HMACs it) */
    char agent_ip[TCLI_HOST_MAX + 1];
    long agent_port;
    char agent_ver[16];
    char agent_where[TCLI_HOST_MAX + 16];
    qhttp_client *agent_http;           /* pinned to the agent's registered certificate (owned) */
    bool agent_tls;
    bool has_pay;                       /* -f or -k: K, U, V (and maybe a sealed payload) */
    tpayload pay;
    char *pubkey;                       /* the payload key PEM of the checked identity quote */
    tcli_kept kept;                     /* update without a new policy: the current one */
    char *mb;                           /* --mb-policy's reference state text, or NULL */
} add_state;

static void add_state_free(add_state *s)
{
    tpayload_free(&s->pay);
    free(s->pubkey);
    free(s->mb);
    tcli_kept_free(&s->kept);
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
 * tenant's certificate. An agent registered without a certificate (mtls_cert "disabled", Keylime's
 * enable_agent_mtls = False) is reached over plain HTTP only when insecure or when agent_mtls is
 * off, with a warning each time; the verifier and the registrar stay on TLS. */
static int agent_client(tcli_ctx *x, add_state *s, qerr *err)
{
    const char *id = x->o->uuid;
    if (!qtls_is_cert_pem(s->mtls)) {
        if (!x->c->insecure && x->c->agent_mtls)
            return qerr_setc(err, TCLI_EFAIL, "agent %s registered without an mTLS certificate (mtls_cert %s); "
                             "refusing to talk to it over plain HTTP (allow it with --agent-plain-http or [tenant] "
                             "agent_mtls = false, and [verifier] allow_agent_plain_http)", id,
                             s->mtls ? "\"disabled\"" : "null");
        if (!x->c->insecure)
            fprintf(stderr, "quince-tenant: warning: agent %s has no mTLS certificate (mtls_cert %s): talking to it "
                            "over plain HTTP, unauthenticated (agent_mtls off); the verifier and registrar are still "
                            "reached over TLS\n", id, s->mtls ? "\"disabled\"" : "null");
        s->agent_tls = false;
        return 0;
    }
    char pin[QTLS_PIN_MAX];
    X509 *anchor = qtls_pin_cert(s->mtls, pin, sizeof pin, err);   /* parsed once: pin and anchor */
    if (!anchor) {
        qerr_prefix(err, "the registrar's mtls_cert for agent %s cannot be used", id);
        err->code = TCLI_EFAIL;
        return -1;
    }
    qhttp_client_opts ho = { .connect_timeout_ms = x->c->connect_ms, .timeout_ms = x->c->timeout_ms,
                             .ca_pem = s->mtls, .ca_cert = anchor, .pinned_pubkey = pin, .no_verify_host = true };
    if (!x->c->insecure) {
        ho.cert_file = x->c->client_cert;
        ho.key_file = x->c->client_key;
    }
    s->agent_http = qhttp_client_new(&ho, err);
    X509_free(anchor);
    if (!s->agent_http) {
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
    /* The record's agent_id is the id as the agent registered it, whatever case -u gave. */
    const char *rid = jstr(r.results, "agent_id");
    snprintf(s->reg_id, sizeof s->reg_id, "%s", rid && strcasecmp(rid, id) == 0 ? rid : id);
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

/* One request to the agent through the pinned client (plain HTTP only when insecure). */
static int agent_call(tcli_ctx *x, add_state *s, const char *method, const char *path, const cJSON *body,
                      qhttp_result *r, qerr *err)
{
    char base[TCLI_HOST_MAX + 32], url[TCLI_HOST_MAX + 256];
    tcli_base_url_tls(s->agent_tls, s->agent_ip, s->agent_port, base, sizeof base, s->agent_where,
                      sizeof s->agent_where);
    snprintf(url, sizeof url, "%s%s", base, path);
    if (qhttp_request_json(s->agent_tls ? s->agent_http : x->http, method, url, body, r, err) < 0) {
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

static int agent_get(tcli_ctx *x, add_state *s, const char *path, qhttp_result *r, qerr *err)
{
    return agent_call(x, s, "GET", path, NULL, r, err);
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
    if (x->o->supported_version) {            /* pinned: keylime_tenant's --supported-version */
        snprintf(s->agent_ver, sizeof s->agent_ver, "%s", x->o->supported_version);
        return 0;
    }
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
    if (!(s->pubkey = strdup(pubkey))) {
        qerr_setc(err, TCLI_EFAIL, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(qr);
    qak_free(&ak);
    qhttp_result_free(&r);
    return rc;
}

/* ---- payload (-f, -k, -p, --verify) ---------------------------------------------------------- */

/* Read, seal and check the payload files: before any request, so nothing is sent when a file
 * is missing, does not open with its key file or is over max_payload_size. */
static int load_payload(tcli_ctx *x, add_state *s, qerr *err)
{
    const tcli_opts *o = x->o;
    int rc = 0;
    if (o->file)
        rc = tpayload_from_file(o->file, x->c->max_payload_size, &s->pay, err);
    else if (o->keyfile)
        rc = tpayload_from_keyfile(o->keyfile, o->payload, x->c->max_payload_size, &s->pay, err);
    else
        return 0;
    if (rc < 0) {
        if (err && err->code != TCLI_EFAIL)
            err->code = TCLI_EUSAGE;
        return -1;
    }
    s->has_pay = true;
    return 0;
}

/* POST /keys/ukey: U (to the key of the identity quote just checked), auth_tag, payload. */
static int post_ukey(tcli_ctx *x, add_state *s, qerr *err)
{
    const char *id = x->o->uuid;
    cJSON *body = tpayload_ukey_body(&s->pay, s->reg_id, s->pubkey, err);
    if (!body) {
        if (err)
            err->code = TCLI_EFAIL;
        return -1;
    }
    char path[48];
    snprintf(path, sizeof path, "/v%s/keys/ukey", s->agent_ver);
    qhttp_result r;
    int rc = agent_call(x, s, "POST", path, body, &r, err);
    cJSON_Delete(body);
    if (rc == 0 && r.status != 200)
        rc = tcli_http_error(&r, err, "agent %s at %s refused the payload key (U)", id, s->agent_where);
    qhttp_result_free(&r);
    if (rc == 0) {
        if (s->pay.payload_b64)
            printf("agent %s: U and the encrypted payload (%zu bytes of base64) sent to %s; the verifier sends V "
                   "after the agent's first good quote\n", id, s->pay.payload_b64_len, s->agent_where);
        else
            printf("agent %s: U sent to %s (no payload); the verifier sends V after the agent's first good quote\n",
                   id, s->agent_where);
        fflush(stdout);
    }
    return rc;
}

/* The verifier's view of the agent for the --verify timeout message ("" when unknown). */
static void verifier_state(tcli_ctx *x, char *out, size_t cap)
{
    char path[TCLI_ID_MAX + 16];
    snprintf(path, sizeof path, "/agents/%s", x->o->uuid);
    qhttp_result r;
    qerr e;
    out[0] = '\0';
    if (tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, &r, &e) == 0 && r.status == 200) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(r.results, "operational_state");
        if (cJSON_IsNumber(st))
            snprintf(out, cap, "; the verifier shows it in state %s", tcli_state_name((long)st->valuedouble));
    }
    qhttp_result_free(&r);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* --verify: GET /keys/verify?challenge=<fresh> until the HMAC is HMAC-SHA384(K, challenge).
 * "Bootstrap key not yet available." (or an older K's answer: -c update before V came again)
 * means not yet; any answer counts until the timeout. */
static int verify_key(tcli_ctx *x, add_state *s, qerr *err)
{
    const char *id = x->o->uuid;
    long timeout = x->c->verify_timeout_ms;
    double start = now_ms();
    char last[200] = "no answer yet";
    for (;;) {
        char ch[TPAYLOAD_CHALLENGE_LEN + 1], path[96];
        if (tpayload_challenge(ch, sizeof ch, err) < 0)
            return -1;
        snprintf(path, sizeof path, "/v%s/keys/verify?challenge=%s", s->agent_ver, ch);
        qhttp_result r;
        qerr e;
        if (agent_get(x, s, path, &r, &e) < 0) {
            snprintf(last, sizeof last, "%.190s", e.msg);
        } else if (r.status == 200) {
            if (tpayload_verify_reply(&s->pay, ch, r.results, &e) == 0) {
                qhttp_result_free(&r);
                printf("agent %s proved it derived the bootstrap key K (the payload is opened on the agent)\n", id);
                fflush(stdout);
                return 0;
            }
            snprintf(last, sizeof last, "an HMAC made with another key (an older K?)");
        } else {
            char d[160];
            snprintf(last, sizeof last, "%s", qhttp_result_describe(&r, d, sizeof d));
        }
        qhttp_result_free(&r);
        double left = (double)timeout - (now_ms() - start);
        if (left <= 0)
            break;
        sleep_ms(left < VERIFY_POLL_MS ? (long)left + 1 : VERIFY_POLL_MS);
    }
    char vs[96];
    verifier_state(x, vs, sizeof vs);
    return qerr_setc(err, TCLI_EFAIL, "--verify: the agent did not prove it derived the key within %g s (its last "
                     "answer: %s)%s; agent %s stays on the verifier", (double)timeout / 1000.0, last, vs, id);
}

/* Everything that can be checked without changing the verifier; then the U half. */
/* Refuse to check nothing; an update without a new policy keeps the current one. */
static int choose_checking(tcli_ctx *x, add_state *s, qerr *err)
{
    const tcli_opts *o = x->o;
    if (s->pol.present || o->runtime_policy_name || o->no_runtime_policy || s->mb || o->mb_policy_name)
        return 0;
    if (o->cmd == TCMD_UPDATE) {
        if (tcli_kept_fetch(x, &s->kept, err) < 0)
            return -1;
        if (s->kept.b64) {
            s->pol.b64 = s->kept.b64;     /* moved: sent as the agent's policy again */
            s->kept.b64 = NULL;
            s->pol.json_len = s->kept.json_len;
            s->pol.present = true;
            s->pol.kept = true;
        }
        if (s->kept.name || s->pol.present || (s->kept.found && s->kept.tpm_mask && tcli_tpm_policy_empty(x->c)))
            return 0;
    }
    return tcli_tpm_policy_empty(x->c) ? tcli_refuse_unchecked(x, err) : 0;
}

static int prepare(tcli_ctx *x, add_state *s, qerr *err)
{
    memset(s, 0, sizeof *s);
    if (tcli_mb_load(x->c, &s->mb, err) < 0)
        return -1;
    if ((s->mb || x->o->mb_policy_name) && (x->c->tpm_mask & TCLI_MB_PCRS))
        return qerr_setc(err, TCLI_EUSAGE, "--tpm_policy names PCRs that measured boot checks (0-9, 11-15); "
                         "drop them or the measured boot policy");
    if (tcli_policy_load(x->c, x->o, &s->pol, err) < 0 || load_payload(x, s, err) < 0 ||
        choose_checking(x, s, err) < 0 ||
        registrar_record(x, s, err) < 0 || agent_version(x, s, err) < 0 || identity_quote(x, s, err) < 0)
        return -1;
    if (s->has_pay && post_ukey(x, s, err) < 0)
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
    const char *pname = o->runtime_policy_name ? o->runtime_policy_name : s->kept.name;
    uint32_t mb = s->mb || o->mb_policy_name ? TCLI_MB_PCRS : 0;     /* as keylime_tenant: 0xfbff */
    char *tpm = s->kept.tpm && tcli_tpm_policy_empty(x->c)
                    ? tcli_tpm_policy_text_of(s->kept.tpm, s->kept.tpm_mask | mb, with_ima)
                    : tcli_tpm_policy_text_of(x->c->tpm_policy, x->c->tpm_mask | mb, with_ima);
    cJSON *b = cJSON_CreateObject();
    if (!tpm || !b) {
        cJSON_free(tpm);
        cJSON_Delete(b);
        return NULL;
    }
    char *v = s->has_pay ? tpayload_v_b64(&s->pay) : NULL;
    if (s->has_pay && !v) {
        cJSON_Delete(b);
        return NULL;
    }
    if (v) {
        cJSON_AddStringToObject(b, "v", v);
        OPENSSL_cleanse(v, strlen(v));
        free(v);
    } else {
        cJSON_AddNullToObject(b, "v");
    }
    cJSON_AddStringToObject(b, "cloudagent_ip", o->cv_agent_ip ? o->cv_agent_ip : s->agent_ip);
    cJSON_AddNumberToObject(b, "cloudagent_port", (double)s->agent_port);
    cJSON_AddStringToObject(b, "verifier_ip", x->c->cv_ip);
    cJSON_AddNumberToObject(b, "verifier_port", (double)x->c->cv_port);
    cJSON_AddStringToObject(b, "tpm_policy", tpm);
    cJSON_free(tpm);
    cJSON_AddStringToObject(b, "runtime_policy", s->pol.present ? s->pol.b64 : "");
    if (pname)
        cJSON_AddStringToObject(b, "runtime_policy_name", pname);
    else
        cJSON_AddNullToObject(b, "runtime_policy_name");
    cJSON_AddStringToObject(b, "runtime_policy_key", s->pol.key_b64 ? s->pol.key_b64 : "");
    if (s->mb)
        cJSON_AddStringToObject(b, "mb_policy", s->mb);
    else
        cJSON_AddNullToObject(b, "mb_policy");
    cJSON_AddStringToObject(b, "mb_policy_name", o->mb_policy_name ? o->mb_policy_name : "");
    cJSON_AddStringToObject(b, "ima_sign_verification_keys", s->pol.ima_keys ? s->pol.ima_keys : "");
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
    bool with_ima = s->pol.present || x->o->runtime_policy_name || s->kept.name;
    char path[TCLI_ID_MAX + 16];
    snprintf(path, sizeof path, "/agents/%s", id);
    cJSON *body = add_body(x, s, with_ima);
    if (!body)
        return qerr_setc(err, TCLI_EFAIL, "out of memory");
    qhttp_result r;
    int rc = tcli_call(x, TSRV_VERIFIER, "POST", path, body, &r, err);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "v");
    if (cJSON_IsString(v))
        OPENSSL_cleanse(v->valuestring, strlen(v->valuestring));
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
    const char *name = x->o->runtime_policy_name ? x->o->runtime_policy_name : s->kept.name;
    if (s->pol.kept)
        snprintf(what, sizeof what, "the runtime policy it had, kept");
    else if (s->kept.name)
        snprintf(what, sizeof what, "runtime policy %s, kept", name);
    else if (s->pol.present)
        snprintf(what, sizeof what, "runtime policy%s%s: %zu path%s, %zu exclude%s", name ? " " : "", name ? name : "",
                 s->pol.paths, s->pol.paths == 1 ? "" : "s", s->pol.excludes, s->pol.excludes == 1 ? "" : "s");
    else if (name)
        snprintf(what, sizeof what, "stored runtime policy %s", name);
    else
        snprintf(what, sizeof what, "no runtime policy");
    printf("agent %s added to the verifier at %s (%s)\n", id, where, what);
    fflush(stdout);
    if (x->o->verify && s->has_pay)
        return verify_key(x, s, err);
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
