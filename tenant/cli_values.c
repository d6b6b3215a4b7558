/* cli_values.c — checks of single values shared by the options and the configuration: agent
 * ids, host names, verifier ids, algorithm lists, and Keylime's readPolicy for --tpm_policy with
 * the tpm_policy text sent to the verifier (keylime-formats §6 "Mask computation"). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hex.h"

int tcli_usage_err(qerr *err, const char *fmt, ...)
                   {
                   if (!err)
                   return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = TCLI_EUSAGE;
    return -1;
}

int tcli_uuid_check(const char *in, char *out, size_t cap, qerr *err)
{
    size_t n = in ? strlen(in) : 0;
    bool ok = n > 0 && n <= TCLI_ID_MAX && n < cap;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        ok = ch < 0x80 && (isalnum(ch) || ch == '_' || ch == '.' || ch == '-');
    }
    if (!ok)
        return tcli_usage_err(err, "invalid agent uuid '%.300s': use 1 to %d letters, digits, '_', '.' or '-'",
                              in ? in : "", TCLI_ID_MAX);
    memcpy(out, in, n + 1);    /* as given, as keylime_tenant sends it: the servers ignore case */
    return 0;
}

/* A host name or address: printable, no blanks and nothing that would change the URL. */
int tcli_check_host(const char *s, const char *opt, qerr *err)
{
    size_t n = strlen(s);
    bool ok = n > 0 && n <= TCLI_HOST_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        ok = ch > 0x20 && ch < 0x7f && !strchr("/?#@\\\"'<>`{}|^", ch);
    }
    return ok ? 0 : tcli_usage_err(err, "invalid host '%.100s' for %s", s, opt);
}

int tcli_check_verifier_id(const char *s, qerr *err)
{
    size_t n = strlen(s);
    bool ok = n > 0 && n <= TCLI_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        ok = ch < 0x80 && (isalnum(ch) || ch == '_' || ch == '.' || ch == '-');
    }
    return ok ? 0 : tcli_usage_err(err, "invalid verifier id '%.100s' for -vi/--cvid", s);
}

static bool digest_text_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 40 && n <= 128 && qhex_valid(s, n);
}

int tcli_tpm_policy_parse(const char *text, cJSON **out, uint32_t *mask, qerr *err)
{
    *out = NULL;
    *mask = 0;
    cJSON *in = cJSON_Parse(text);
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        return tcli_usage_err(err, "--tpm_policy must be a JSON object such as '{\"15\": \"<hex digest>\"}'");
    }
    cJSON *pol = cJSON_CreateObject();
    uint32_t m = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, in) {
        const char *k = it->string;
        size_t kl = strlen(k);
        bool digits = kl > 0 && kl <= 2;
        for (size_t i = 0; digits && i < kl; i++)
            digits = isdigit((unsigned char)k[i]);
        if (!digits || atoi(k) > 23) {
            tcli_usage_err(err, "--tpm_policy: invalid PCR number '%.40s' (0 to 23)", k);
            cJSON_Delete(in);
            cJSON_Delete(pol);
            return -1;
        }
        int pcr = atoi(k);
        if (pcr == 10 || pcr == 16) {
            cJSON_Delete(in);
            cJSON_Delete(pol);
            return tcli_usage_err(err, pcr == 10 ? "--tpm_policy: PCR 10 is used by IMA; give a runtime policy "
                                  "(--allowlist or --runtime-policy) instead"
                                  : "--tpm_policy: PCR 16 binds the agent's key and cannot be "
                                  "in a policy");
        }
        if (m & (1u << pcr)) {
            cJSON_Delete(in);
            cJSON_Delete(pol);
            return tcli_usage_err(err, "--tpm_policy: PCR %d is given twice", pcr);
        }
        m |= 1u << pcr;
        cJSON *list = cJSON_CreateArray();
        char key[4];
        snprintf(key, sizeof key, "%d", pcr);
        cJSON_AddItemToObject(pol, key, list);
        const cJSON *v;
        int nv = 0;
        bool bad = false;
        if (cJSON_IsString(it)) {
            bad = !digest_text_ok(it->valuestring);
            if (!bad)
                cJSON_AddItemToArray(list, cJSON_CreateString(it->valuestring));
            nv = 1;
        } else if (cJSON_IsArray(it)) {
            cJSON_ArrayForEach(v, it) {
                if (!cJSON_IsString(v) || !digest_text_ok(v->valuestring)) {
                    bad = true;
                    break;
                }
                cJSON_AddItemToArray(list, cJSON_CreateString(v->valuestring));
                nv++;
            }
        } else {
            bad = true;
        }
        if (bad || nv == 0) {
            cJSON_Delete(in);
            cJSON_Delete(pol);
            return tcli_usage_err(err, "--tpm_policy: PCR %d: %s", pcr,
                                  bad ? "each value must be a hex digest (40 to 128 hex digits) or a list of them"
                                  : "no digest given");
        }
        cJSON *d;
        cJSON_ArrayForEach(d, list)
            for (char *p = d->valuestring; *p; p++)
                *p = (char)tolower((unsigned char)*p);
    }
    cJSON_Delete(in);
    *out = pol;
    *mask = m;
    return 0;
}

int tcli_algs_parse(const char *text, const char *const *known, const char *what, tcli_algs *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    const char *p = text;
    static const char SEP[] = " \t,[]'\"";
    for (;;) {
        p += strspn(p, SEP);
        if (!*p)
            break;
        size_t n = strcspn(p, SEP);
        if (out->n == TCLI_ALGS_MAX)
            return tcli_usage_err(err, "%s: more than %d algorithms", what, TCLI_ALGS_MAX);
        char name[TCLI_ALG_LEN];
        bool ok = n < sizeof name;
        if (ok) {
            for (size_t i = 0; i < n; i++)
                name[i] = (char)tolower((unsigned char)p[i]);
            name[n] = '\0';
            ok = false;
            for (const char *const *k = known; *k && !ok; k++)
                ok = strcmp(*k, name) == 0;
        }
        if (!ok)
            return tcli_usage_err(err, "%s: unknown algorithm '%.*s'", what, (int)(n > 40 ? 40 : n), p);
        memcpy(out->name[out->n++], name, n + 1);
        p += n;
    }
    if (out->n == 0)
        return tcli_usage_err(err, "%s: no algorithm given", what);
    return 0;
}

char *tcli_tpm_policy_text(const tcli_conf *c, bool with_ima)
{
    return tcli_tpm_policy_text_of(c->tpm_policy, c->tpm_mask, with_ima);
}

char *tcli_tpm_policy_text_of(const cJSON *policy, uint32_t tpm_mask, bool with_ima)
{
    cJSON *pol = policy ? cJSON_Duplicate(policy, true) : cJSON_CreateObject();
    if (!pol)
        return NULL;
    char mask[16];
    snprintf(mask, sizeof mask, "0x%x", tpm_mask | (with_ima ? 1u << 10 : 0));
    char *s = NULL;
    if (cJSON_AddStringToObject(pol, "mask", mask))
        s = cJSON_PrintUnformatted(pol);
    cJSON_Delete(pol);
    return s;
}
