/* tpm.c — TPM connection, deadline-bounded jobs on worker threads, info, start-up flush. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tpm_int.h"

/* tss2's TPM2_TRANSIENT_FIRST shifts a signed int into the sign bit (UBSan): spell them out. */
#define HANDLE_TRANSIENT_FIRST 0x80000000u
#define HANDLE_SESSION_FIRST   0x02000000u
#define HANDLE_RANGE_MASK      0xff000000u

struct qtpm_conn {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                   /* owner (qtpm) + running job */
    bool busy;                  /* a job's worker is running on it */
    bool broken;                /* a job saw an I/O-level error: reconnect */
    char tcti[QTPM_TCTI_MAX];
    TSS2_TCTI_CONTEXT *tcti_ctx;
    ESYS_CONTEXT *esys;
};

static void deadline_after(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return rc == 0 ? 0 : -1;
}

/* ---- connection ---------------------------------------------------------------------------- */

static qtpm_conn *conn_new(const char *tcti)
{
    qtpm_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    if (cond_init_mono(&c->cv) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    c->refs = 1;
    snprintf(c->tcti, sizeof(c->tcti), "%s", tcti);
    return c;
}

static void conn_disconnect(qtpm_conn *c)
{
    if (c->esys)
        Esys_Finalize(&c->esys);
    if (c->tcti_ctx)
        Tss2_TctiLdr_Finalize(&c->tcti_ctx);
    c->esys = NULL;
    c->tcti_ctx = NULL;
}

static void conn_unref(qtpm_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left > 0)
        return;
    conn_disconnect(c);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Runs on the worker: open TCTI + ESYS, Startup(CLEAR) (TPM_RC_INITIALIZE means already started). */
static int conn_connect(qtpm_conn *c, qtpm_job *j)
{
    TSS2_RC rc = Tss2_TctiLdr_Initialize(c->tcti, &c->tcti_ctx);
    if (rc != TSS2_RC_SUCCESS) {
        c->tcti_ctx = NULL;
        qerr_set(&j->err, "cannot open TCTI \"%s\": %s (0x%x)", c->tcti, Tss2_RC_Decode(rc), rc);
        return -1;
    }
    rc = Esys_Initialize(&c->esys, c->tcti_ctx, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        c->esys = NULL;
        conn_disconnect(c);
        qerr_set(&j->err, "Esys_Initialize (TCTI \"%s\"): %s (0x%x)", c->tcti, Tss2_RC_Decode(rc), rc);
        return -1;
    }
    rc = Esys_Startup(c->esys, TPM2_SU_CLEAR);
    if (rc != TSS2_RC_SUCCESS && (rc & 0xfff) != TPM2_RC_INITIALIZE) {
        conn_disconnect(c);
        qerr_set(&j->err, "TPM2_Startup (TCTI \"%s\"): %s (0x%x)", c->tcti, Tss2_RC_Decode(rc), rc);
        return -1;
    }
    if (j->cfg.eh_auth_len > 0) {
        TPM2B_AUTH auth = { .size = (UINT16)j->cfg.eh_auth_len };
        memcpy(auth.buffer, j->cfg.eh_auth, j->cfg.eh_auth_len);
        rc = Esys_TR_SetAuth(c->esys, ESYS_TR_RH_ENDORSEMENT, &auth);
        if (rc != TSS2_RC_SUCCESS) {
            conn_disconnect(c);
            qerr_set(&j->err, "Esys_TR_SetAuth(endorsement): %s (0x%x)", Tss2_RC_Decode(rc), rc);
            return -1;
        }
    }
    return 0;
}

/* ---- jobs ---------------------------------------------------------------------------------- */

qtpm_job *qtpm__job_new(qtpm *t, qtpm_job_fn fn, qerr *err)
{
    qtpm_job *j = calloc(1, sizeof(*j));
    if (!j) {
        qerr_set(err, "out of memory for a TPM job");
        return NULL;
    }
    j->fn = fn;
    j->cfg = t->cfg;
    j->ak = t->ak;
    return j;
}

static void job_free(qtpm_job *j)
{
    if (!j)
        return;
    explicit_bzero(&j->cfg, sizeof(j->cfg));
    free(j);
}

bool qtpm__alive(qtpm_job *j)
{
    pthread_mutex_lock(&j->conn->mu);
    bool alive = !j->abandoned;
    pthread_mutex_unlock(&j->conn->mu);
    return alive;
}

int qtpm__abandoned(qtpm_job *j)
{
    return qerr_set(&j->err, "abandoned after the caller's deadline");
}

void qtpm__track(qtpm_job *j, ESYS_TR tr, bool close_only)
{
    if (j->ntrack < QTPM_TRACK_MAX) {
        j->track[j->ntrack].tr = tr;
        j->track[j->ntrack].close_only = close_only;
        j->ntrack++;
    }
}

void qtpm__untrack(qtpm_job *j, ESYS_TR tr)
{
    for (unsigned i = 0; i < j->ntrack; i++) {
        if (j->track[i].tr == tr) {
            memmove(&j->track[i], &j->track[i + 1], (j->ntrack - i - 1) * sizeof(j->track[0]));
            j->ntrack--;
            return;
        }
    }
}

int qtpm__rc(qtpm_job *j, const char *what, TSS2_RC rc)
{
    if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
        j->broken = true;
    return qerr_set(&j->err, "%s: %s (0x%x)", what, Tss2_RC_Decode(rc), rc);
}

static void flush_tracked(ESYS_CONTEXT *esys, qtpm_job *j)
{
    while (j->ntrack > 0) {
        j->ntrack--;
        ESYS_TR tr = j->track[j->ntrack].tr;
        TSS2_RC rc = j->track[j->ntrack].close_only ? Esys_TR_Close(esys, &tr)
                                                    : Esys_FlushContext(esys, tr);
        if (rc != TSS2_RC_SUCCESS && j->rc == 0) {
            j->rc = qtpm__rc(j, "TPM2_FlushContext", rc);
        }
    }
}

static void *worker(void *arg)
{
    qtpm_job *j = arg;
    qtpm_conn *c = j->conn;
    int rc = 0;
    if (!c->esys)
        rc = conn_connect(c, j);
    if (rc == 0) {
        j->rc = j->fn(c->esys, j);
        flush_tracked(c->esys, j);
        rc = j->rc;
    }
    pthread_mutex_lock(&c->mu);
    j->rc = rc;
    if (j->broken || !c->esys)
        c->broken = true;
    j->done = true;
    c->busy = false;
    pthread_cond_broadcast(&c->cv);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        job_free(j);
    conn_unref(c);
    return NULL;
}

void qtpm__job_release(qtpm_job *j)
{
    if (!j)
        return;
    qtpm_conn *c = j->conn;
    /* A finished job is the caller's alone: the worker dropped its reference when it set done
     * (which the caller saw under the lock), and the connection may be gone already (qtpm__run
     * drops a broken one), so its mutex must not be touched. */
    if (!c || j->done) {
        job_free(j);
        return;
    }
    pthread_mutex_lock(&c->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        job_free(j);
}

static void drop_conn(qtpm *t)
{
    conn_unref(t->conn);
    t->conn = NULL;
}

/* Wait (until dl) for the worker of an abandoned call; 0 when it is gone. Never two commands in
 * flight: a late command cannot land after a newer one, and a hung TPM does not pile up threads. */
static int wait_stale(qtpm *t, const struct timespec *dl)
{
    if (!t->stale)
        return 0;
    qtpm_conn *c = t->stale;
    pthread_mutex_lock(&c->mu);
    while (c->busy)
        if (pthread_cond_timedwait(&c->cv, &c->mu, dl) == ETIMEDOUT)
            break;
    bool busy = c->busy;
    pthread_mutex_unlock(&c->mu);
    if (busy)
        return -1;
    conn_unref(c);
    t->stale = NULL;
    return 0;
}

static int start_worker(qtpm_job *j)
{
    /* The worker takes no signals: they belong to the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_t tid;
    int rc = pthread_attr_init(&attr);
    if (rc != 0)
        return rc;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&tid, &attr, worker, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}

int qtpm__run(qtpm *t, qtpm_job **jp, qerr *err)
{
    qtpm_job *j = *jp;
    struct timespec dl;
    deadline_after(&dl, t->timeout_ms);
    if (wait_stale(t, &dl) != 0) {
        qtpm__job_release(j);
        *jp = NULL;
        return qerr_set(err, "TPM did not answer within %u ms (TCTI \"%s\"; an earlier command is still pending)",
                        t->timeout_ms, t->tcti);
    }
    if (t->conn && t->conn->broken)
        drop_conn(t);
    if (!t->conn && !(t->conn = conn_new(t->tcti))) {
        qtpm__job_release(j);
        *jp = NULL;
        return qerr_set(err, "out of memory for a TPM connection");
    }
    qtpm_conn *c = t->conn;
    j->conn = c;
    j->refs = 2;
    pthread_mutex_lock(&c->mu);
    c->refs++;
    c->busy = true;
    pthread_mutex_unlock(&c->mu);
    int prc = start_worker(j);
    if (prc != 0) {
        pthread_mutex_lock(&c->mu);
        c->busy = false;
        pthread_mutex_unlock(&c->mu);
        j->refs = 1;
        conn_unref(c);
        qtpm__job_release(j);
        *jp = NULL;
        return qerr_set(err, "cannot start a TPM worker thread: %s", strerror(prc));
    }

    pthread_mutex_lock(&c->mu);
    while (!j->done)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT)
            break;
    if (!j->done) {
        j->abandoned = true;
        c->broken = true;
        j->refs--;              /* the worker frees the job */
        pthread_mutex_unlock(&c->mu);
        *jp = NULL;
        t->stale = c;           /* keeps the owner's reference until the worker is done */
        t->conn = NULL;
        return qerr_set(err, "TPM did not answer within %u ms (TCTI \"%s\")", t->timeout_ms, t->tcti);
    }
    pthread_mutex_unlock(&c->mu);
    if (j->rc != 0 && err) {
        err->code = j->err.code;
        memcpy(err->msg, j->err.msg, sizeof(err->msg));
    }
    if (c->broken)
        drop_conn(t);
    return j->rc;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

qtpm *qtpm_new(const qtpm_opts *o, qerr *err)
{
    const char *tcti = o && o->tcti && *o->tcti ? o->tcti : QTPM_DEFAULT_TCTI;
    if (strlen(tcti) >= QTPM_TCTI_MAX) {
        qerr_set(err, "TCTI string longer than %d characters", QTPM_TCTI_MAX - 1);
        return NULL;
    }
    if (o && o->eh_auth_len > QTPM_AUTH_MAX) {
        qerr_set(err, "endorsement auth longer than %d bytes", QTPM_AUTH_MAX);
        return NULL;
    }
    if (o && o->ek_type != QTPM_KEY_RSA2048 && o->ek_type != QTPM_KEY_ECC_P256) {
        qerr_set(err, "unknown EK type %d", (int)o->ek_type);
        return NULL;
    }
    qtpm *t = calloc(1, sizeof(*t));
    if (!t) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        qerr_set(err, "cannot initialise a mutex");
        return NULL;
    }
    snprintf(t->tcti, sizeof(t->tcti), "%s", tcti);
    t->timeout_ms = o && o->timeout_ms ? o->timeout_ms : QTPM_DEFAULT_TIMEOUT_MS;
    if (o) {
        t->cfg.ek_handle = o->ek_handle;
        t->cfg.ek_type = o->ek_type;
        if (o->eh_auth_len)
            memcpy(t->cfg.eh_auth, o->eh_auth, o->eh_auth_len);
        t->cfg.eh_auth_len = o->eh_auth_len;
    }
    return t;
}

void qtpm_free(qtpm *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    drop_conn(t);
    /* Let an abandoned worker finish (bounded) so that its context is freed before we return. */
    struct timespec dl;
    deadline_after(&dl, t->timeout_ms);
    if (wait_stale(t, &dl) != 0) {
        conn_unref(t->stale);   /* the worker frees it when the TPM answers */
        t->stale = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_destroy(&t->mu);
    explicit_bzero(t, sizeof(*t));
    free(t);
}

static int job_nop(ESYS_CONTEXT *esys, qtpm_job *j)
{
    (void)esys;
    (void)j;
    return 0;
}

int qtpm_open(qtpm *t, qerr *err)
{
    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_nop, err);
    int rc = j ? qtpm__run(t, &j, err) : -1;
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void qtpm_close(qtpm *t)
{
    pthread_mutex_lock(&t->mu);
    drop_conn(t);
    pthread_mutex_unlock(&t->mu);
}

/* ---- start-up flush ------------------------------------------------------------------------ */

static int flush_range(ESYS_CONTEXT *esys, qtpm_job *j, TPM2_HANDLE first)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    TSS2_RC rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                    first, TPM2_MAX_CAP_HANDLES, &more, &cap);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "TPM2_GetCapability(handles)", rc);
    int ret = 0;
    TPML_HANDLE *h = &cap->data.handles;
    for (UINT32 i = 0; i < h->count && ret == 0; i++) {
        if ((h->handle[i] & HANDLE_RANGE_MASK) != (first & HANDLE_RANGE_MASK))
            break;
        ESYS_TR tr = ESYS_TR_NONE;
        rc = Esys_TR_FromTPMPublic(esys, h->handle[i], ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
        if (rc == TSS2_RC_SUCCESS)
            rc = Esys_FlushContext(esys, tr);
        /* Gone between the listing and the flush (another client of a shared software TPM
         * flushed it): nothing left to do for that handle. */
        bool gone = (rc & 0xFFFu) == TPM2_RC_REFERENCE_H0 ||
                    ((rc & TPM2_RC_FMT1) && (rc & 0x3Fu) == (TPM2_RC_HANDLE & 0x3Fu));
        if (rc != TSS2_RC_SUCCESS && gone) {
            if (tr != ESYS_TR_NONE)
                Esys_TR_Close(esys, &tr);
            continue;
        }
        if (rc != TSS2_RC_SUCCESS) {
            char what[64];
            snprintf(what, sizeof(what), "flushing leftover handle 0x%08x", h->handle[i]);
            ret = qtpm__rc(j, what, rc);
            if (tr != ESYS_TR_NONE)
                Esys_TR_Close(esys, &tr);
        } else {
            j->u.flushed++;
        }
    }
    Esys_Free(cap);
    return ret;
}

static int job_flush(ESYS_CONTEXT *esys, qtpm_job *j)
{
    if (flush_range(esys, j, HANDLE_TRANSIENT_FIRST) != 0)
        return -1;
    return flush_range(esys, j, HANDLE_SESSION_FIRST);
}

int qtpm_flush_leftovers(qtpm *t, unsigned *flushed, qerr *err)
{
    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_flush, err);
    int rc = j ? qtpm__run(t, &j, err) : -1;
    if (j && flushed)
        *flushed = j->u.flushed;
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* ---- info ---------------------------------------------------------------------------------- */

static void append_chars(char *dst, size_t cap, uint32_t v)
{
    size_t n = strlen(dst);
    for (int s = 24; s >= 0 && n + 1 < cap; s -= 8) {
        char ch = (char)((v >> s) & 0xff);
        if (ch >= 0x20 && ch < 0x7f)
            dst[n++] = ch;
    }
    dst[n] = '\0';
}

static int job_info(ESYS_CONTEXT *esys, qtpm_job *j)
{
    qtpm_info *in = &j->u.info;
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    TSS2_RC rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_TPM_PROPERTIES, TPM2_PT_MANUFACTURER, 16, &more, &cap);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "TPM2_GetCapability(properties)", rc);
    uint32_t fw1 = 0, fw2 = 0;
    TPML_TAGGED_TPM_PROPERTY *p = &cap->data.tpmProperties;
    for (UINT32 i = 0; i < p->count; i++) {
        uint32_t v = p->tpmProperty[i].value;
        switch (p->tpmProperty[i].property) {
        case TPM2_PT_MANUFACTURER:
            in->manufacturer = v;
            append_chars(in->manufacturer_str, sizeof(in->manufacturer_str), v);
            break;
        case TPM2_PT_VENDOR_STRING_1: case TPM2_PT_VENDOR_STRING_2:
        case TPM2_PT_VENDOR_STRING_3: case TPM2_PT_VENDOR_STRING_4:
            append_chars(in->vendor, sizeof(in->vendor), v);
            break;
        case TPM2_PT_FIRMWARE_VERSION_1: fw1 = v; break;
        case TPM2_PT_FIRMWARE_VERSION_2: fw2 = v; break;
        default: break;
        }
    }
    Esys_Free(cap);
    in->firmware = (uint64_t)fw1 << 32 | fw2;
    for (size_t n = strlen(in->vendor); n > 0 && in->vendor[n - 1] == ' '; n--)
        in->vendor[n - 1] = '\0';

    cap = NULL;
    rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1,
                            &more, &cap);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "TPM2_GetCapability(PCRs)", rc);
    TPML_PCR_SELECTION *s = &cap->data.assignedPCR;
    for (UINT32 i = 0; i < s->count; i++) {
        qhash_alg a;
        if (qhash_from_tpm_id(s->pcrSelections[i].hash, &a) == 0 && s->pcrSelections[i].sizeofSelect > 1 &&
            (s->pcrSelections[i].pcrSelect[1] & 0x04))
            in->pcr10_banks |= 1u << a;
    }
    Esys_Free(cap);
    return 0;
}

int qtpm_get_info(qtpm *t, qtpm_info *out, qerr *err)
{
    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_info, err);
    int rc = j ? qtpm__run(t, &j, err) : -1;
    if (rc == 0)
        *out = j->u.info;
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

bool qtpm_is_software(const qtpm_info *info)
{
    return strstr(info->vendor, "SW") != NULL || strcmp(info->manufacturer_str, "IBM") == 0;
}
