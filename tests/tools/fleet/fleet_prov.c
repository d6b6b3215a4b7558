/* fleet_prov.c — provisioning: every agent registers and activates with the registrar (the real
 * protocol: POST the EK, EK certificate, AK and contact; ActivateCredential of the returned blob
 * in software with the agent's EK; PUT the auth_tag), then is added to the verifier with the
 * fleet's named runtime policy. Runs on o.prov_threads threads, each with its own keep-alive
 * HTTP clients, over a share of the agents; all registrations finish before the first add. */
#include "fleet.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64.h"
#include "credential.h"
#include "http_client.h"

#define MAX_THREADS 16

struct fl_prov {
    fleet *f;
    pthread_t th[MAX_THREADS];
    unsigned nth, started;
    pthread_barrier_t bar;
    pthread_mutex_t mu;
    unsigned finished;            /* threads done */
    unsigned failures;
    double t_start, t_reg, t_add;
    double cpu_start, cpu_reg;    /* the process's CPU time (all threads), for the bench */
};

typedef struct worker {
    fl_prov *p;
    unsigned id;
} worker;

static worker workers[MAX_THREADS];

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int call(qhttp_client *c, const char *method, const char *url, const cJSON *body, long want,
                qhttp_result *res, qerr *err)
{
    if (qhttp_request_json(c, method, url, body, res, err) < 0)
        return -1;
    if (res->status != want) {
        char d[256];
        return qerr_set(err, "%s %s: %s", method, url, qhttp_result_describe(res, d, sizeof d));
    }
    return 0;
}

static int register_one(fleet *f, fl_agent *a, qhttp_client *c, qerr *err)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v%s/agents/%s", f->o.registrar, f->o.api_version, a->uuid);
    cJSON *b = cJSON_CreateObject();
    if (!b)
        return qerr_set(err, "out of memory");
    cJSON_AddStringToObject(b, "ek_tpm", a->ek_b64);
    cJSON_AddStringToObject(b, "ekcert", a->ekcert_b64);
    cJSON_AddStringToObject(b, "aik_tpm", a->ak.pub_b64);
    cJSON_AddStringToObject(b, "ip", a->ip);
    cJSON_AddNumberToObject(b, "port", f->o.port);
    cJSON_AddStringToObject(b, "mtls_cert", a->tls_cert);
    qhttp_result res = { 0 };
    int rc = call(c, "POST", url, b, 200, &res, err);
    cJSON_Delete(b);
    const cJSON *blob = rc == 0 ? cJSON_GetObjectItemCaseSensitive(res.results, "blob") : NULL;
    uint8_t raw[QCRED_BLOB_MAX], cred[64];
    size_t cred_len = 0;
    long n = cJSON_IsString(blob) ? qb64_decode(blob->valuestring, strlen(blob->valuestring), raw, sizeof raw) : -1;
    if (rc == 0 && n < 0)
        rc = qerr_set(err, "the registrar's answer has no credential blob");
    if (rc == 0)
        rc = qcred_activate_rsa(a->ek, QHASH_SHA256, 128, a->ak.name, a->ak.name_len, raw, (size_t)n, cred,
                                sizeof cred, &cred_len, err);
    qhttp_result_free(&res);
    char key[128], tag[QCRED_AUTH_TAG_HEX + 1];
    if (rc == 0 && (qb64_encode(cred, cred_len, key, sizeof key) < 0 ||
                    qcred_auth_tag(key, strlen(key), a->uuid, tag, err) < 0))
        rc = qerr_set(err, "cannot make the auth_tag");
    if (rc < 0)
        return qerr_prefix(err, "agent %s: registration", a->uuid);
    snprintf(url, sizeof url, "%s/v%s/agents/%s/activate", f->o.registrar, f->o.api_version, a->uuid);
    b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "auth_tag", tag);
    rc = call(c, "PUT", url, b, 200, &res, err);
    cJSON_Delete(b);
    qhttp_result_free(&res);
    EVP_PKEY_free(a->ek);          /* activation was the EK's only use */
    a->ek = NULL;
    return rc < 0 ? qerr_prefix(err, "agent %s: activation", a->uuid) : 0;
}

static cJSON *alg_list(const char *a, const char *b)
{
    cJSON *l = cJSON_CreateArray();
    cJSON_AddItemToArray(l, cJSON_CreateString(a));
    if (b)
        cJSON_AddItemToArray(l, cJSON_CreateString(b));
    return l;
}

static int add_one(fleet *f, fl_agent *a, qhttp_client *c, qerr *err)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v%s/agents/%s", f->o.verifier, f->o.api_version, a->uuid);
    cJSON *b = cJSON_CreateObject();
    if (!b)
        return qerr_set(err, "out of memory");
    cJSON_AddStringToObject(b, "tpm_policy", "{\"mask\": \"0x400\"}");
    cJSON_AddStringToObject(b, "metadata", "{}");
    cJSON_AddStringToObject(b, "ima_sign_verification_keys", "");
    cJSON_AddStringToObject(b, "revocation_key", "");
    cJSON_AddStringToObject(b, "mb_policy_name", "");
    cJSON_AddStringToObject(b, "mb_policy", "");
    cJSON_AddStringToObject(b, "runtime_policy_name", f->o.policy_name);
    cJSON_AddItemToObject(b, "accept_tpm_hash_algs", alg_list("sha256", NULL));
    cJSON_AddItemToObject(b, "accept_tpm_encryption_algs", alg_list("rsa", "ecc"));
    cJSON_AddItemToObject(b, "accept_tpm_signing_algs", alg_list("rsassa", "ecdsa"));
    qhttp_result res = { 0 };
    int rc = call(c, "POST", url, b, 200, &res, err);
    cJSON_Delete(b);
    qhttp_result_free(&res);
    return rc < 0 ? qerr_prefix(err, "agent %s: verifier add", a->uuid) : 0;
}

static qhttp_client *verifier_client(fleet *f, qerr *err)
{
    char ca[4096], cert[4096], key[4096];
    snprintf(ca, sizeof ca, "%s/cacert.pem", f->o.tls_dir);
    snprintf(cert, sizeof cert, "%s/tenant-cert.pem", f->o.tls_dir);
    snprintf(key, sizeof key, "%s/tenant-key.pem", f->o.tls_dir);
    qhttp_client_opts o = { .ca_file = ca, .cert_file = cert, .key_file = key, .timeout_ms = 60000 };
    return qhttp_client_new(&o, err);
}

static void fail(fl_prov *p, const qerr *e)
{
    pthread_mutex_lock(&p->mu);
    if (p->failures++ < 10)
        fprintf(stderr, "fleet: %s\n", e->msg);
    pthread_mutex_unlock(&p->mu);
}

static void *run(void *arg)
{
    worker *w = arg;
    fl_prov *p = w->p;
    fleet *f = p->f;
    qerr e = { 0 };
    /* Each agent registers from its own address, as a real one would (registrars limit
     * registrations per client address). */
    for (unsigned i = w->id; i < f->o.n; i += p->nth) {
        qhttp_client_opts ro = { .timeout_ms = 60000, .local_ip = f->agents[i].ip };
        qhttp_client *reg = qhttp_client_new(&ro, &e);
        if (!reg || register_one(f, &f->agents[i], reg, &e) < 0)
            fail(p, &e);
        qhttp_client_free(reg);
    }
    if (pthread_barrier_wait(&p->bar) == PTHREAD_BARRIER_SERIAL_THREAD) {
        p->t_reg = fl_now();
        p->cpu_reg = cpu_now();
    }
    qhttp_client *ver = f->o.verifier ? verifier_client(f, &e) : NULL;
    if (f->o.verifier && !ver)
        fail(p, &e);
    for (unsigned i = w->id; ver && i < f->o.n; i += p->nth)
        if (add_one(f, &f->agents[i], ver, &e) < 0)
            fail(p, &e);
    qhttp_client_free(ver);
    pthread_mutex_lock(&p->mu);
    if (++p->finished == p->nth)
        p->t_add = fl_now();
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The fleet's runtime policy, stored once under its name. */
static int upload_policy(fleet *f, qerr *err)
{
    qhttp_client *c = verifier_client(f, err);
    if (!c)
        return -1;
    char url[512];
    snprintf(url, sizeof url, "%s/v%s/allowlists/%s", f->o.verifier, f->o.api_version, f->o.policy_name);
    char *b64 = qb64_encode_alloc((const uint8_t *)f->pool.policy_json, strlen(f->pool.policy_json));
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "runtime_policy", b64 ? b64 : "");
    qhttp_result res = { 0 };
    int rc = call(c, "POST", url, b, 201, &res, err);
    if (rc < 0 && res.status == 409)         /* already there (a second fleet on one verifier) */
        rc = 0;
    cJSON_Delete(b);
    free(b64);
    qhttp_result_free(&res);
    qhttp_client_free(c);
    return rc;
}

fl_prov *fl_prov_start(fleet *f, qerr *err)
{
    if (f->o.verifier && upload_policy(f, err) < 0)
        return NULL;
    fl_prov *p = calloc(1, sizeof *p);
    if (!p) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    p->f = f;
    p->nth = f->o.prov_threads < 1 ? 1 : f->o.prov_threads > MAX_THREADS ? MAX_THREADS : f->o.prov_threads;
    if (p->nth > f->o.n)
        p->nth = f->o.n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_barrier_init(&p->bar, NULL, p->nth);
    p->t_start = fl_now();
    p->cpu_start = cpu_now();
    for (unsigned i = 0; i < p->nth; i++) {
        workers[i] = (worker){ p, i };
        if (pthread_create(&p->th[i], NULL, run, &workers[i]) != 0) {
            qerr_set(err, "cannot start provisioning threads");
            /* the barrier would never open: give up on the process */
            fprintf(stderr, "fleet: %s\n", err->msg);
            exit(1);
        }
        p->started++;
    }
    return p;
}

bool fl_prov_done(fl_prov *p)
{
    pthread_mutex_lock(&p->mu);
    bool d = p->finished == p->nth;
    pthread_mutex_unlock(&p->mu);
    return d;
}

int fl_prov_finish(fl_prov *p, double *reg_s, double *add_s)
{
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->th[i], NULL);
    *reg_s = p->t_reg - p->t_start;
    *add_s = p->t_add - p->t_reg;
    fprintf(stderr, "fleet: registration used %.2f s of the fleet's CPU (%.2f ms an agent, %u threads)\n",
            p->cpu_reg - p->cpu_start, (p->cpu_reg - p->cpu_start) * 1000.0 / (p->f->o.n ? p->f->o.n : 1), p->nth);
    int f = (int)p->failures;
    pthread_barrier_destroy(&p->bar);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return f;
}
