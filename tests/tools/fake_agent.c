/* fake_agent — test-only: a Keylime-style agent without a TPM that serves crafted answers to the
 * real verifier. Quotes are signed in software with an RSA key it generates (tests/unit/swquote.h);
 * PCR 10 is replayed in software over an IMA list file, PCR 16 binds the payload key PEM.
 *
 *   fake_agent [--mode MODE] [--port N] [--bind IP] [--ima-log FILE] [--ak-out FILE]
 *              [--pubkey-pem FILE] [--boottime N] [--slow-ms N] [--uuid ID]
 *              [--tls-ca FILE --cert-out FILE]
 *
 * Modes:
 *   good          correct quotes; the list from ima_ml_entry (from 0 when the entry is beyond the
 *                 end, "" at the end); PCR 10 covers the whole list; boottime constant
 *   wrong-key     quotes signed by another key than the AK written to --ak-out
 *   stale-nonce   replays the first quote it made, whatever nonce is asked
 *   bad-selection the PCR blob labels PCR 10's value as PCR 11 (the attest still selects 10)
 *   lagging       PCR 10 never covers the last entry: a log that never catches up
 *   garbage       answers 200 with a body that is not JSON
 *   garbage-types answers JSON whose ima_measurement_list_entry is a string
 *   slow          waits --slow-ms (default 5000) before a good answer
 *   http500       answers 500
 *   http404       answers 404 to the quote request
 *   vkey500       good quotes; answers 500 to POST /keys/vkey
 *   vkey400       good quotes; answers 400 to POST /keys/vkey
 * Every other mode takes a V (POST /keys/vkey with an "encrypted_key" string: 200, logged as
 * "fake_agent: vkey N" on stderr); the V is not decrypted.
 * --tls-ca: serve TLS (as quince-agent does) with a fresh EC key and self-signed certificate (CN
 * the uuid, names 127.0.0.1 and localhost) made with tls_ca.h, written to --cert-out before the
 * port is printed (what the registrar record's mtls_cert must hold), and require on every request
 * a client certificate that chains to the CA in FILE. Without --tls-ca: plain HTTP.
 * The bound port is printed on stdout (--port 0, the default, binds an ephemeral one). The list file is read
 * again for every request, so a test may append to it. --ak-out gets the AK as base64
 * TPM2B_PUBLIC (the registrar's aik_tpm). Stops on SIGTERM/SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../unit/swquote.h"
#include "buf.h"
#include "err.h"
#include "http_server.h"
#include "log.h"
#include "tls_ca.h"

#define LIST_MAX (64u << 20)

typedef enum {
    M_GOOD, M_WRONG_KEY, M_STALE_NONCE, M_BAD_SELECTION, M_LAGGING, M_GARBAGE, M_GARBAGE_TYPES, M_SLOW,
    M_HTTP500, M_HTTP404, M_VKEY500, M_VKEY400
} fmode;

static const char *const mode_names[] = { "good", "wrong-key", "stale-nonce", "bad-selection", "lagging",
                                          "garbage", "garbage-types", "slow", "http500", "http404", "vkey500",
                                          "vkey400", NULL };

typedef struct fake {
    fmode mode;
    const char *ima_log;
    uint64_t boottime;
    long slow_ms;
    char uuid[64];
    swq_key ak, other;
    char *pem;                    /* payload key PEM (exact bytes bound into PCR 16) */
    pthread_mutex_t mu;
    uint64_t clock;               /* TPM clock, ms, strictly increasing */
    char *first_quote;            /* stale-nonce: the first quote made */
    unsigned long requests;
    unsigned long vkeys;
} fake;

static void usage(FILE *f)
{
    fprintf(f, "usage: fake_agent [--mode good|wrong-key|stale-nonce|bad-selection|lagging|garbage|"
               "garbage-types|slow|http500|http404|vkey500|vkey400]\n"
               "                  [--port N] [--bind IP] [--ima-log FILE] [--ak-out FILE] [--pubkey-pem FILE]\n"
               "                  [--boottime N] [--slow-ms N] [--uuid ID] [--tls-ca FILE --cert-out FILE]\n");
}

static uint64_t next_clock(fake *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 5000000u;
    f->clock = now > f->clock ? now : f->clock + 1;
    return f->clock;
}

static bool alnum(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

/* Byte offset of line `entry` in the list and the number of lines. */
static void locate(const char *list, size_t len, uint64_t entry, size_t *off, uint64_t *nlines)
{
    uint64_t n = 0;
    *off = len;
    if (entry == 0)
        *off = 0;
    for (size_t i = 0; i < len; i++) {
        if (list[i] == '\n') {
            n++;
            if (n == entry)
                *off = i + 1;
        }
    }
    *nlines = n;
}

/* Builds the quote over the selected PCRs; NULL on error (f->mu held). */
static char *make_quote(fake *f, const char *nonce, uint32_t mask, const char *list, size_t len)
{
    qpcrblob p;
    memset(&p, 0, sizeof p);
    p.bank = QHASH_SHA256;
    p.mask = (mask | (1u << 16)) & 0xffffffu;
    if (p.mask & (1u << 10)) {
        qpcr r;
        qpcr_init(&r, QHASH_SHA256);
        size_t off = 0;
        uint64_t nlines = 0;
        locate(list, len, UINT64_MAX, &off, &nlines);
        uint64_t cover = nlines;
        if (f->mode == M_LAGGING && cover > 0)
            cover--;
        if (swq_replay(&r, list, len, cover, NULL, NULL) < 0)
            return NULL;
        memcpy(p.value[10], r.value, 32);
    }
    if (swq_pcr16(QHASH_SHA256, f->pem, p.value[16]) < 0)
        return NULL;
    swq_spec s = {
        .key = f->mode == M_WRONG_KEY ? &f->other : &f->ak,
        .nonce = nonce,
        .bank = QHASH_SHA256,
        .pcrs = &p,
        .clock = { .clock = next_clock(f), .reset_count = 1, .restart_count = 0, .safe = 1 },
    };
    if (f->mode == M_BAD_SELECTION && (p.mask & (1u << 10)) && !(p.mask & (1u << 11)))
        s.blob_mask = (p.mask & ~(1u << 10)) | (1u << 11);
    return swq_quote(&s);
}

static void add_common(fake *f, cJSON *res, const char *quote, bool partial0)
{
    cJSON_AddStringToObject(res, "quote", quote);
    cJSON_AddStringToObject(res, "hash_alg", "sha256");
    cJSON_AddStringToObject(res, "enc_alg", "rsa");
    cJSON_AddStringToObject(res, "sign_alg", "rsassa");
    if (partial0)
        cJSON_AddStringToObject(res, "pubkey", f->pem);
}

static void h_integrity(qhttp_req *r, void *ctx)
{
    fake *f = ctx;
    const char *nonce = qhttp_req_query(r, "nonce");
    const char *mask_s = qhttp_req_query(r, "mask");
    const char *partial = qhttp_req_query(r, "partial");
    const char *entry_s = qhttp_req_query(r, "ima_ml_entry");
    if (!alnum(nonce)) {
        qhttp_reply_error(r, 400, "nonce is not alphanumeric or longer than 64 characters");
        return;
    }
    if (!partial || (strcmp(partial, "0") != 0 && strcmp(partial, "1") != 0)) {
        qhttp_reply_error(r, 400, "uri must contain key 'partial' and value '0' or '1'");
        return;
    }
    uint32_t mask = 0x400;
    if (mask_s && *mask_s)
        mask = (uint32_t)strtoul(mask_s, NULL, 16);
    uint64_t entry = entry_s && *entry_s ? strtoull(entry_s, NULL, 10) : 0;

    pthread_mutex_lock(&f->mu);
    unsigned long nreq = ++f->requests;
    pthread_mutex_unlock(&f->mu);
    fprintf(stderr, "fake_agent: request %lu mode %s nonce %s mask %s partial %s entry %" PRIu64 "\n", nreq,
            mode_names[f->mode], nonce, mask_s ? mask_s : "-", partial, entry);

    if (f->mode == M_HTTP500) {
        qhttp_reply_error(r, 500, "Internal Server Error");
        return;
    }
    if (f->mode == M_HTTP404) {
        qhttp_reply_error(r, 404, "Not Found");
        return;
    }
    if (f->mode == M_GARBAGE) {
        static const char junk[] = "<html>this is not JSON</html>";
        qhttp_reply_raw(r, 200, "text/html", junk, sizeof junk - 1);
        return;
    }
    if (f->mode == M_SLOW)
        usleep((useconds_t)f->slow_ms * 1000u);

    qbuf list;
    qbuf_init(&list, LIST_MAX);
    if (f->ima_log && qbuf_read_file(&list, f->ima_log, LIST_MAX) < 0) {
        qbuf_free(&list);
        qhttp_reply_error(r, 500, "cannot read the IMA log %s: %s", f->ima_log, strerror(errno));
        return;
    }
    const char *text = list.data ? (const char *)list.data : "";
    size_t off = 0;
    uint64_t nlines = 0;
    locate(text, list.len, entry, &off, &nlines);
    uint64_t used = entry;
    if (entry > nlines) {
        used = 0;
        off = 0;
    }

    pthread_mutex_lock(&f->mu);
    char *quote = NULL;
    if (f->mode == M_STALE_NONCE && f->first_quote) {
        quote = strdup(f->first_quote);
    } else {
        quote = make_quote(f, nonce, mask, text, list.len);
        if (quote && f->mode == M_STALE_NONCE)
            f->first_quote = strdup(quote);
    }
    pthread_mutex_unlock(&f->mu);
    if (!quote) {
        qbuf_free(&list);
        qhttp_reply_error(r, 500, "quote failed");
        return;
    }
    cJSON *res = cJSON_CreateObject();
    add_common(f, res, quote, strcmp(partial, "0") == 0);
    free(quote);
    cJSON_AddNumberToObject(res, "boottime", (double)f->boottime);
    if (mask & (1u << 10)) {
        char *chunk = strndup(text + off, list.len - off);
        cJSON_AddStringToObject(res, "ima_measurement_list", chunk ? chunk : "");
        free(chunk);
        if (f->mode == M_GARBAGE_TYPES)
            cJSON_AddStringToObject(res, "ima_measurement_list_entry", "zero");
        else
            cJSON_AddNumberToObject(res, "ima_measurement_list_entry", (double)used);
    }
    qbuf_free(&list);
    qhttp_reply(r, 200, res);
}

static void h_identity(qhttp_req *r, void *ctx)
{
    fake *f = ctx;
    const char *nonce = qhttp_req_query(r, "nonce");
    if (!alnum(nonce)) {
        qhttp_reply_error(r, 400, "nonce is not alphanumeric or longer than 64 characters");
        return;
    }
    pthread_mutex_lock(&f->mu);
    char *quote = make_quote(f, nonce, 0, "", 0);
    pthread_mutex_unlock(&f->mu);
    if (!quote) {
        qhttp_reply_error(r, 500, "quote failed");
        return;
    }
    cJSON *res = cJSON_CreateObject();
    add_common(f, res, quote, true);
    free(quote);
    qhttp_reply(r, 200, res);
}

static void h_version(qhttp_req *r, void *ctx)
{
    (void)ctx;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "supported_version", "2.1");
    cJSON *a = cJSON_AddArrayToObject(res, "supported_versions");
    cJSON_AddItemToArray(a, cJSON_CreateString("2.1"));
    qhttp_reply(r, 200, res);
}

static void h_info(qhttp_req *r, void *ctx)
{
    fake *f = ctx;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "agent_uuid", f->uuid);
    cJSON_AddStringToObject(res, "tpm_hash_alg", "sha256");
    cJSON_AddStringToObject(res, "tpm_enc_alg", "rsa");
    cJSON_AddStringToObject(res, "tpm_sign_alg", "rsassa");
    cJSON_AddNumberToObject(res, "ak_handle", 0);
    qhttp_reply(r, 200, res);
}

static void h_vkey(qhttp_req *r, void *ctx)
{
    fake *f = ctx;
    qerr e = { 0 };
    const cJSON *body = qhttp_req_json(r, &e);
    const cJSON *ek = body ? cJSON_GetObjectItemCaseSensitive(body, "encrypted_key") : NULL;
    pthread_mutex_lock(&f->mu);
    unsigned long n = ++f->vkeys;
    pthread_mutex_unlock(&f->mu);
    fprintf(stderr, "fake_agent: vkey %lu mode %s%s\n", n, mode_names[f->mode],
            cJSON_IsString(ek) && *ek->valuestring ? "" : " (no encrypted_key)");
    if (f->mode == M_VKEY500) {
        qhttp_reply_error(r, 500, "Internal Server Error");
        return;
    }
    if (f->mode == M_VKEY400 || !cJSON_IsString(ek)) {
        qhttp_reply_error(r, 400, "encrypted_key cannot be decrypted with the payload key");
        return;
    }
    qhttp_reply(r, 200, NULL);
}

static void h_pubkey(qhttp_req *r, void *ctx)
{
    fake *f = ctx;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "pubkey", f->pem);
    qhttp_reply(r, 200, res);
}

/* A fresh EC key and self-signed certificate (as quince-agent's mtls_cert.h makes them); the
 * certificate is written to cert_out (0644). */
static int make_tls(const char *cn, const char *cert_out, char **cert_pem, char **key_pem)
{
    qerr e = { 0 };
    static const char *const names[] = { "127.0.0.1", "localhost", NULL };
    qtls_cert_opts o = { .cn = cn, .names = names, .eku = QTLS_EKU_SERVER | QTLS_EKU_CLIENT };
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    X509 *c = k ? qtls_make_cert(&o, k, NULL, NULL, &e) : NULL;
    int rc = -1;
    if (c && qtls_write_cert(cert_out, c, QTLS_REPLACE, &e) == 0 && (*cert_pem = qtls_cert_pem(c, NULL, &e)) &&
        (*key_pem = qtls_key_pem(k, NULL, &e)))
        rc = 0;
    if (rc < 0)
        fprintf(stderr, "fake_agent: TLS certificate: %s\n", e.msg);
    X509_free(c);
    EVP_PKEY_free(k);
    return rc;
}

static int write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    int ok = fputs(text, fp) >= 0 && fputc('\n', fp) != EOF;
    return (fclose(fp) == 0 && ok) ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "mode", required_argument, NULL, 'm' },     { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },     { "ima-log", required_argument, NULL, 'l' },
        { "ak-out", required_argument, NULL, 'a' },   { "pubkey-pem", required_argument, NULL, 'k' },
        { "boottime", required_argument, NULL, 't' }, { "slow-ms", required_argument, NULL, 's' },
        { "uuid", required_argument, NULL, 'u' },     { "help", no_argument, NULL, 'h' },
        { "tls-ca", required_argument, NULL, 'C' },   { "cert-out", required_argument, NULL, 'O' },
        { NULL, 0, NULL, 0 },
    };
    fake f;
    memset(&f, 0, sizeof f);
    f.boottime = 1700000000;
    f.slow_ms = 5000;
    snprintf(f.uuid, sizeof f.uuid, "d432fbb3-d2f1-4a97-9ef7-75bd81c0fa6e");
    const char *ak_out = NULL, *pem_file = NULL, *bind_ip = "127.0.0.1", *tls_ca = NULL, *cert_out = NULL;
    long port = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': {
            int i = 0;
            while (mode_names[i] && strcmp(mode_names[i], optarg) != 0)
                i++;
            if (!mode_names[i]) {
                fprintf(stderr, "fake_agent: unknown mode '%s'\n", optarg);
                return 2;
            }
            f.mode = (fmode)i;
            break;
        }
        case 'p': port = strtol(optarg, NULL, 10); break;
        case 'b': bind_ip = optarg; break;
        case 'l': f.ima_log = optarg; break;
        case 'a': ak_out = optarg; break;
        case 'k': pem_file = optarg; break;
        case 't': f.boottime = strtoull(optarg, NULL, 10); break;
        case 's': f.slow_ms = strtol(optarg, NULL, 10); break;
        case 'u': snprintf(f.uuid, sizeof f.uuid, "%s", optarg); break;
        case 'C': tls_ca = optarg; break;
        case 'O': cert_out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (port < 0 || port > 65535) {
        fprintf(stderr, "fake_agent: bad port\n");
        return 2;
    }
    if ((tls_ca != NULL) != (cert_out != NULL)) {
        fprintf(stderr, "fake_agent: --tls-ca and --cert-out go together\n");
        return 2;
    }
    char *tls_cert = NULL, *tls_key = NULL;
    if (tls_ca && make_tls(f.uuid, cert_out, &tls_cert, &tls_key) < 0)
        return 1;
    if (swq_key_new(&f.ak) < 0 || swq_key_new(&f.other) < 0) {
        fprintf(stderr, "fake_agent: key generation failed\n");
        return 1;
    }
    if (pem_file) {
        qbuf b;
        qbuf_init(&b, 1u << 16);
        if (qbuf_read_file(&b, pem_file, 1u << 16) < 0 || !qbuf_cstr(&b)) {
            fprintf(stderr, "fake_agent: cannot read %s\n", pem_file);
            return 1;
        }
        f.pem = strdup((const char *)b.data);
        qbuf_free(&b);
    } else {
        EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        f.pem = pk ? qpkey_pem(pk, NULL) : NULL;
        EVP_PKEY_free(pk);
    }
    if (!f.pem) {
        fprintf(stderr, "fake_agent: no payload key\n");
        return 1;
    }
    if (ak_out && write_text(ak_out, f.ak.pub_b64) < 0) {
        fprintf(stderr, "fake_agent: cannot write %s: %s\n", ak_out, strerror(errno));
        return 1;
    }
    pthread_mutex_init(&f.mu, NULL);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    qhttp_route routes[] = {
        { "GET", "/v{ver}/quotes/integrity", h_integrity, &f },
        { "GET", "/v{ver}/quotes/identity", h_identity, &f },
        { "GET", "/v{ver}/keys/pubkey", h_pubkey, &f },
        { "POST", "/v{ver}/keys/vkey", h_vkey, &f },
        { "GET", "/v{ver}/agent/info", h_info, &f },
        { "GET", "/version", h_version, &f },
    };
    qhttp_server_opts so = { .ip = bind_ip, .port = (uint16_t)port, .threads = 4, .log_module = "fake_agent",
                             .tls_cert_pem = tls_cert, .tls_key_pem = tls_key, .tls_ca_file = tls_ca,
                             .require_client_cert = tls_ca != NULL };
    qerr err = { 0 };
    qhttp_server *srv = qhttp_server_start(&so, routes, sizeof routes / sizeof routes[0], &err);
    if (!srv) {
        fprintf(stderr, "fake_agent: %s\n", err.msg);
        return 1;
    }
    printf("%u\n", qhttp_server_port(srv));
    fflush(stdout);
    fprintf(stderr, "fake_agent: mode %s listening on %s:%u (%s)\n", mode_names[f.mode], bind_ip,
            qhttp_server_port(srv), tls_ca ? "mTLS" : "plain HTTP");
    int sig = 0;
    sigwait(&set, &sig);
    qhttp_server_stop(srv);
    swq_key_free(&f.ak);
    swq_key_free(&f.other);
    free(f.pem);
    free(f.first_quote);
    free(tls_cert);
    qtls_free_secret(tls_key);
    pthread_mutex_destroy(&f.mu);
    return 0;
}
