/* tpm_int.h — internals shared by tpm.c (connection, jobs), tpm_keys.c (EK, NV), tpm_ak.c (AK,
 * credential) and tpm_pcr.c (PCRs, quotes). Not for other modules.
 *
 * A public call fills a heap-allocated qtpm_job (flat: no pointers into the caller's memory), runs
 * its fn on a worker thread with the connection's ESYS context, and waits until done or timeout.
 * On timeout the job is abandoned: the worker frees it when the TPM finally answers. The worker
 * flushes every tracked handle after fn, whatever fn returned. */
#ifndef QUINCE_AGENT_TPM_INT_H
#define QUINCE_AGENT_TPM_INT_H

#include <pthread.h>
#include <tss2/tss2_esys.h>

#include "tpm.h"

#define QTPM_TRACK_MAX 8

typedef struct qtpm_conn qtpm_conn;
typedef struct qtpm_job qtpm_job;
typedef int (*qtpm_job_fn)(ESYS_CONTEXT *esys, qtpm_job *j);

typedef struct qtpm_cfg {
    uint32_t ek_handle;
    qtpm_key_type ek_type;
    uint8_t eh_auth[QTPM_AUTH_MAX];
    size_t eh_auth_len;
} qtpm_cfg;

/* The AK as the caller keeps it; copied into and out of jobs. */
typedef struct qtpm_akmat {
    bool have;                  /* pub + priv valid */
    qtpm_ak_params p;
    TPM2B_PUBLIC pub;
    TPM2B_PRIVATE priv;
    bool have_ctx;              /* ctx holds a saved context of the loaded AK */
    TPMS_CONTEXT ctx;
    TPM2B_NAME name;            /* from the TPM on load */
} qtpm_akmat;

struct qtpm_job {
    qtpm_job_fn fn;
    qtpm_conn *conn;
    int refs;                   /* caller + worker; under conn->mu */
    bool done, abandoned;       /* under conn->mu */
    int rc;
    qerr err;
    bool broken;                /* fn saw a non-TPM error: drop the connection */
    struct { ESYS_TR tr; bool close_only; } track[QTPM_TRACK_MAX];
    unsigned ntrack;
    qtpm_cfg cfg;
    qtpm_akmat ak;
    union {
        qtpm_info info;
        unsigned flushed;
        TPM2B_PUBLIC ek_pub;
        struct {
            bool try_load;              /* in: j->ak holds the stored AK for the EK named ek_name_file */
            TPM2B_NAME ek_name_file;
            bool created;               /* out */
            TPM2B_PUBLIC ek_pub;        /* out */
            TPM2B_NAME ek_name;         /* out */
        } akj;
        struct { uint32_t index; uint8_t data[QTPM_EK_CERT_MAX]; size_t len; bool absent; } cert;
        struct { TPM2B_ID_OBJECT id; TPM2B_ENCRYPTED_SECRET secret; TPM2B_DIGEST out; } act;
        struct { unsigned pcr; size_t n, done; qtpm_digests d[QTPM_EXTEND_BATCH]; } ext;
        struct { unsigned pcr; bool bind; qtpm_digests d; } reset;
        struct { qhash_alg bank; uint32_t mask; qpcrblob out; } read;
        struct { qhash_alg bank; uint32_t mask; TPM2B_DATA nonce; qtpm_quote_out out; } quote;
    } u;
};

struct qtpm {
    pthread_mutex_t mu;
    char tcti[QTPM_TCTI_MAX];
    unsigned timeout_ms;
    qtpm_cfg cfg;
    qtpm_conn *conn;            /* NULL: closed */
    qtpm_conn *stale;           /* abandoned after a timeout, its worker maybe still running */
    bool have_ek;
    TPM2B_PUBLIC ek_pub;
    qtpm_akmat ak;
};

/* tpm.c */
qtpm_job *qtpm__job_new(qtpm *t, qtpm_job_fn fn, qerr *err);
/* Run the job (t->mu held). Returns the job's rc. *jp is NULL afterwards if the job was abandoned
 * (timeout); otherwise the caller reads the outputs and calls qtpm__job_release. */
int qtpm__run(qtpm *t, qtpm_job **jp, qerr *err);
void qtpm__job_release(qtpm_job *j);
bool qtpm__alive(qtpm_job *j);
void qtpm__track(qtpm_job *j, ESYS_TR tr, bool close_only);
/* Drop tr from the flush list (the fn flushed or closed it itself). */
void qtpm__untrack(qtpm_job *j, ESYS_TR tr);
/* qerr "<what>: <Tss2_RC_Decode> (0x...)" and mark the connection broken for non-TPM errors. */
int qtpm__rc(qtpm_job *j, const char *what, TSS2_RC rc);
int qtpm__abandoned(qtpm_job *j);   /* qerr "abandoned", returns -1 */

/* tpm_keys.c — the EK inside a job (tracked for flushing). */
int qtpm__ek_load(ESYS_CONTEXT *esys, qtpm_job *j, ESYS_TR *ek, TPM2B_PUBLIC *pub_out);
int qtpm__ek_session(ESYS_CONTEXT *esys, qtpm_job *j, ESYS_TR *sess);
/* PolicySecret(endorsement) on the session: satisfies the EK's policy for one command. */
int qtpm__ek_policy(ESYS_CONTEXT *esys, qtpm_job *j, ESYS_TR sess);

/* tpm_ak.c */
/* Load the AK: from j->ak.ctx if valid, else Load under the EK (and refresh j->ak.ctx). */
int qtpm__ak_load(ESYS_CONTEXT *esys, qtpm_job *j, ESYS_TR *ak);

#endif
