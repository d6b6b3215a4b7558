/* cli_cmds.c — the tenant commands other than add/update and the runtime-policy ones:
 * delete, status / cvstatus / regstatus, cvlist, bulkinfo, reglist, regdelete, reactivate
 * (keylime-formats §6 "Commands → HTTP"). Output: short human lines on stdout; lists one id
 * per line. Text from servers is printed with control characters escaped. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define DELETE_POLL_MS 200
#define TEXT_MAX       1024        /* longest server string printed in one field */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Server text with control bytes and backslashes escaped, cut at TEXT_MAX. */
static const char *clean(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (!s)
        s = "";
    for (; *s && o + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\')
            o += (size_t)snprintf(out + o, cap - o, c == '\\' ? "\\\\" : "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static void agent_path(const tcli_ctx *x, const char *suffix, char *out, size_t cap)
{
    snprintf(out, cap, "/agents/%s%s", x->o->uuid, suffix);
}

/* GET the verifier's status of the agent: 0 with *found, or -1 (transport / unexpected status). */
static int cv_get(tcli_ctx *x, qhttp_result *r, bool *found, qerr *err)
{
    char path[TCLI_ID_MAX + 16];
    agent_path(x, "", path, sizeof path);
    if (tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, r, err) < 0)
        return -1;
    *found = r->status == 200;
    if (r->status != 200 && r->status != 404)
        return tcli_http_error(r, err, "the verifier at %s could not show agent %s", x->where[TSRV_VERIFIER],
                               x->o->uuid);
    return 0;
}

static int not_on_verifier(tcli_ctx *x, const qhttp_result *r, qerr *err)
{
    return tcli_http_error(r, err, "agent %s is not on the verifier at %s", x->o->uuid, x->where[TSRV_VERIFIER]);
}

/* ---- delete --------------------------------------------------------------------------------- */

int tcli_cmd_delete(tcli_ctx *x, bool quiet_missing, bool *missing, qerr *err)
{
    const char *id = x->o->uuid, *where = x->where[TSRV_VERIFIER];
    char path[TCLI_ID_MAX + 16];
    agent_path(x, "", path, sizeof path);
    qhttp_result r;
    bool found = true;
    if (missing)
        *missing = false;
    if (!x->o->no_verifier_check) {
        int rc = cv_get(x, &r, &found, err);
        if (rc == 0 && !found && !quiet_missing)
            rc = not_on_verifier(x, &r, err);
        qhttp_result_free(&r);
        if (rc < 0)
            return -1;
        if (!found) {
            if (missing)
                *missing = true;
            return 0;
        }
    }
    if (tcli_call(x, TSRV_VERIFIER, "DELETE", path, NULL, &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    long st = r.status;
    if (st == 404 && quiet_missing) {
        qhttp_result_free(&r);
        if (missing)
            *missing = true;
        return 0;
    }
    if (st == 404) {
        not_on_verifier(x, &r, err);
        qhttp_result_free(&r);
        return -1;
    }
    if (st != 200 && st != 202 && st != 204) {
        tcli_http_error(&r, err, "the verifier at %s did not delete agent %s", where, id);
        qhttp_result_free(&r);
        return -1;
    }
    qhttp_result_free(&r);
    /* 202: deletion happens after the round in flight; wait until the agent is gone. */
    for (long waited = 0; st == 202; waited += DELETE_POLL_MS) {
        if (tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, &r, err) < 0) {
            qhttp_result_free(&r);
            return -1;
        }
        st = r.status;
        if (st == 200 && waited >= x->c->timeout_ms) {
            tcli_http_error(&r, err, "the verifier at %s accepted the deletion of agent %s but still shows it after "
                            "%ld ms", where, id, waited);
            qhttp_result_free(&r);
            return -1;
        }
        qhttp_result_free(&r);
        if (st == 200) {
            st = 202;
            sleep_ms(DELETE_POLL_MS);
        }
    }
    printf("agent %s deleted from the verifier at %s\n", id, where);
    fflush(stdout);
    return 0;
}

/* ---- status --------------------------------------------------------------------------------- */

static void print_registrar(const tcli_ctx *x, const cJSON *res)
{
    char ip[TEXT_MAX], mt[16];
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(res, "port");
    const char *ek = jstr(res, "ekcert"), *mtls = jstr(res, "mtls_cert");
    char portbuf[32] = "?";
    if (cJSON_IsNumber(port))
        snprintf(portbuf, sizeof portbuf, "%.0f", port->valuedouble);
    else if (cJSON_IsString(port))
        snprintf(portbuf, sizeof portbuf, "%.20s", port->valuestring);
    snprintf(mt, sizeof mt, "%s", !mtls ? "none" : strcmp(mtls, "disabled") == 0 ? "disabled" : "certificate");
    printf("  registrar: registered and active at %s, contact %s:%s, regcount %.0f, EK certificate %s, mTLS %s\n",
           x->where[TSRV_REGISTRAR], clean(jstr(res, "ip") ? jstr(res, "ip") : "?", ip, sizeof ip), portbuf,
           jnum(res, "regcount", 0), ek && *ek ? "present" : "absent", mt);
}

static void print_verifier(const tcli_ctx *x, const cJSON *res)
{
    char a[TEXT_MAX], b[TEXT_MAX], c[TEXT_MAX];
    double count = jnum(res, "attestation_count", 0), last = jnum(res, "last_received_quote", 0);
    char lastbuf[64] = "no quote yet";
    if (last > 0) {
        double ago = (double)time(NULL) - last;
        snprintf(lastbuf, sizeof lastbuf, "last quote %.0f s ago", ago < 0 ? 0 : ago);
    }
    char entries[64] = "";
    double next = jnum(res, "next_ima_ml_entry", -1);
    const char *ast = jstr(res, "attestation_status");
    if (next >= 0 && !(ast && strcmp(ast, "FAIL") == 0))
        snprintf(entries, sizeof entries, ", %.0f IMA entr%s verified", next, next == 1 ? "y" : "ies");
    long st = (long)jnum(res, "operational_state", -1);
    const char *ast_text = st == 4 || st == 6 ? "not confirmed (retrying)"
                                              : clean(ast ? ast : "?", a, sizeof a);
    printf("  verifier:  %s, attestation %s, %.0f attestation%s%s, %s\n", x->where[TSRV_VERIFIER], ast_text, count,
           count == 1 ? "" : "s", entries, lastbuf);
    const char *pname = jstr(res, "runtime_policy_name");
    double has = jnum(res, "has_runtime_policy", 0);
    if (pname)
        printf("  policy:    runtime policy %s%s", clean(pname, b, sizeof b), has ? "" : " (empty)");
    else
        printf("  policy:    %s", has ? "runtime policy" : "no runtime policy");
    printf(", tpm_policy %s\n", clean(jstr(res, "tpm_policy") ? jstr(res, "tpm_policy") : "{}", c, sizeof c));
    if (has)
        printf("  IMA:       checked against runtime policy %s\n", pname ? clean(pname, b, sizeof b) : "");
    else
        printf("  IMA:       not checked (no runtime policy)\n");
    if (jnum(res, "has_mb_refstate", 0)) {
        const char *mbn = jstr(res, "mb_policy_name");
        printf("  boot:      measured boot checked against reference state %s\n", clean(mbn ? mbn : "?", b, sizeof b));
    }
    const char *ev = jstr(res, "last_event_id");
    if (ev) {
        const cJSON *sev = cJSON_GetObjectItemCaseSensitive(res, "severity_level");
        printf("  last event: %s", clean(ev, a, sizeof a));
        if (cJSON_IsNumber(sev))
            printf(" (severity level %.0f)", sev->valuedouble);
        printf("\n");
    }
    const cJSON *fails = cJSON_GetObjectItemCaseSensitive(res, "failures"), *f;
    cJSON_ArrayForEach(f, fails) {
        const cJSON *entry = cJSON_GetObjectItemCaseSensitive(f, "entry");
        const char *path = jstr(f, "path"), *why = jstr(f, "reason"), *eid = jstr(f, "event_id");
        if (cJSON_IsNumber(entry))
            printf("  failure: entry %.0f: %s: %s [%s]\n", entry->valuedouble, clean(path, a, sizeof a),
                   clean(why, b, sizeof b), clean(eid, c, sizeof c));
        else
            printf("  failure: %s [%s]\n", clean(why, b, sizeof b), clean(eid, c, sizeof c));
    }
}

int tcli_cmd_status(tcli_ctx *x, bool reg, bool cv, qerr *err)
{
    const char *id = x->o->uuid;
    qhttp_result rr, cr;
    memset(&rr, 0, sizeof rr);
    memset(&cr, 0, sizeof cr);
    bool on_reg = false, on_cv = false;
    int rc = -1;
    char path[TCLI_ID_MAX + 16];
    agent_path(x, "", path, sizeof path);
    if (reg) {
        if (tcli_call(x, TSRV_REGISTRAR, "GET", path, NULL, &rr, err) < 0)
            goto out;
        on_reg = rr.status == 200;
        if (!on_reg && (!cv || rr.status != 404)) {
            tcli_http_error(&rr, err, "agent %s is not registered and active at the registrar at %s", id,
                            x->where[TSRV_REGISTRAR]);
            goto out;
        }
    }
    if (cv) {
        if (cv_get(x, &cr, &on_cv, err) < 0)
            goto out;
        if (!on_cv && !on_reg) {
            if (reg)
                qerr_setc(err, TCLI_EFAIL, "agent %s is neither on the verifier at %s nor registered at the "
                          "registrar at %s", id, x->where[TSRV_VERIFIER], x->where[TSRV_REGISTRAR]);
            else
                not_on_verifier(x, &cr, err);
            goto out;
        }
    }
    char name[TEXT_MAX];
    if (on_cv) {
        long st = (long)jnum(cr.results, "operational_state", -1);
        const char *sname = jstr(cr.results, "operational_state_name");
        printf("agent %s: %s", id, sname ? clean(sname, name, sizeof name) : tcli_state_name(st));
        if (st == 4 || st == 6) {
            /* Retrying is not passing: say how far the retries went and why. */
            const char *why = jstr(cr.results, "last_error");
            char wb[TEXT_MAX];
            printf(", %.0f of %.0f, last error %s", jnum(cr.results, "consecutive_failures", 0),
                   jnum(cr.results, "max_retries", 0), why && *why ? clean(why, wb, sizeof wb) : "unknown");
        }
        printf(" (state %ld)\n", st);
    } else if (cv) {
        printf("agent %s: %s (not on the verifier at %s)\n", id, tcli_state_name(0), x->where[TSRV_VERIFIER]);
    } else {
        printf("agent %s: %s\n", id, tcli_state_name(0));
    }
    if (reg) {
        if (on_reg)
            print_registrar(x, rr.results);
        else
            printf("  registrar: not registered and active at %s\n", x->where[TSRV_REGISTRAR]);
    }
    if (on_cv)
        print_verifier(x, cr.results);
    fflush(stdout);
    rc = 0;
out:
    qhttp_result_free(&rr);
    qhttp_result_free(&cr);
    return rc;
}

/* ---- lists ---------------------------------------------------------------------------------- */

/* Print each id of a list whose items are strings or (Keylime's verifier) one-element lists. */
static void print_ids(const cJSON *list)
{
    char b[TEXT_MAX];
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const cJSON *s = cJSON_IsArray(it) ? cJSON_GetArrayItem(it, 0) : it;
        if (cJSON_IsString(s))
            printf("%s\n", clean(s->valuestring, b, sizeof b));
    }
}

int tcli_cmd_cvlist(tcli_ctx *x, bool bulk, qerr *err)
{
    char path[TCLI_ID_MAX + 64];
    snprintf(path, sizeof path, "/agents/?%sverifier=%s", bulk ? "bulk=True&" : "", x->c->cv_id);
    qhttp_result r;
    if (tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    if (r.status != 200 || !cJSON_IsObject(r.results)) {
        tcli_http_error(&r, err, "the verifier at %s did not list its agents", x->where[TSRV_VERIFIER]);
        qhttp_result_free(&r);
        return -1;
    }
    if (!bulk) {
        print_ids(cJSON_GetObjectItemCaseSensitive(r.results, "uuids"));
    } else {
        char a[TEXT_MAX], b[TEXT_MAX];
        const cJSON *it;
        cJSON_ArrayForEach(it, r.results) {
            long st = (long)jnum(it, "operational_state", -1);
            const char *sname = jstr(it, "operational_state_name");
            printf("%s: %s (state %ld), attestation %s\n", clean(it->string, a, sizeof a),
                   sname ? clean(sname, b, sizeof b) : tcli_state_name(st), st,
                   jstr(it, "attestation_status") ? jstr(it, "attestation_status") : "?");
        }
    }
    fflush(stdout);
    qhttp_result_free(&r);
    return 0;
}

int tcli_cmd_reglist(tcli_ctx *x, qerr *err)
{
    qhttp_result r;
    if (tcli_call(x, TSRV_REGISTRAR, "GET", "/agents/", NULL, &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    if (r.status != 200) {
        tcli_http_error(&r, err, "the registrar at %s did not list its agents", x->where[TSRV_REGISTRAR]);
        qhttp_result_free(&r);
        return -1;
    }
    print_ids(cJSON_GetObjectItemCaseSensitive(r.results, "uuids"));
    fflush(stdout);
    qhttp_result_free(&r);
    return 0;
}

/* ---- regdelete, reactivate ------------------------------------------------------------------ */

int tcli_cmd_regdelete(tcli_ctx *x, qerr *err)
{
    char path[TCLI_ID_MAX + 16];
    agent_path(x, "", path, sizeof path);
    qhttp_result r;
    if (tcli_call(x, TSRV_REGISTRAR, "DELETE", path, NULL, &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    int rc = 0;
    if (r.status != 200 && r.status != 204)
        rc = tcli_http_error(&r, err, "the registrar at %s did not delete agent %s", x->where[TSRV_REGISTRAR],
                             x->o->uuid);
    else
        printf("agent %s deleted from the registrar at %s\n", x->o->uuid, x->where[TSRV_REGISTRAR]);
    fflush(stdout);
    qhttp_result_free(&r);
    return rc;
}

int tcli_cmd_reactivate(tcli_ctx *x, qerr *err)
{
    qhttp_result r;
    if (!x->o->no_verifier_check) {
        bool found;
        int rc = cv_get(x, &r, &found, err);
        if (rc == 0 && !found)
            rc = not_on_verifier(x, &r, err);
        qhttp_result_free(&r);
        if (rc < 0)
            return -1;
    }
    char path[TCLI_ID_MAX + 32];
    agent_path(x, "/reactivate", path, sizeof path);
    if (tcli_call(x, TSRV_VERIFIER, "PUT", path, NULL, &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    int rc = 0;
    if (r.status == 404)
        rc = not_on_verifier(x, &r, err);
    else if (r.status != 200)
        rc = tcli_http_error(&r, err, "the verifier at %s did not reactivate agent %s", x->where[TSRV_VERIFIER],
                             x->o->uuid);
    else
        printf("agent %s reactivated on the verifier at %s\n", x->o->uuid, x->where[TSRV_VERIFIER]);
    fflush(stdout);
    qhttp_result_free(&r);
    return rc;
}
