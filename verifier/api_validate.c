/* api_validate.c — add-agent field checks; see api_validate.h. */
#include "api_validate.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"

/* Keylime's algorithm names for each list (keylime/common/algorithms.py, TPM-capable ones only:
 * md5 is not a TPM bank). */
static const char *const hash_names[] = { "sha1", "sha256", "sha384", "sha512", "sm3_256", NULL };
static const char *const enc_names[] = { "rsa", "ecc", "rsa1024", "rsa2048", "rsa3072", "rsa4096", "ecc192",
                                         "ecc224", "ecc256", "ecc384", "ecc521", "ecc_sm2", NULL };
static const char *const sign_names[] = { "rsassa", "rsapss", "ecdsa", "ecdaa", "ecschnorr", "sm2", NULL };

static bool label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isascii((unsigned char)s[i]) || (!isalnum((unsigned char)s[i]) && s[i] != '-'))
            return false;
    return true;
}

int vapi_check_host(const char *key, const char *s, qerr *err)
{
    size_t n = s ? strnlen(s, VAPI_HOST_MAX + 1) : 0;
    unsigned char buf[sizeof(struct in6_addr)];
    if (n > 0 && n <= VAPI_HOST_MAX) {
        if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
            return 0;
        /* All-numeric dotted text that is not an IPv4 address (e.g. 1.2.3.999) is not a name. */
        bool numeric = strspn(s, "0123456789.") == n, ok = !numeric;
        for (const char *p = s; ok;) {
            const char *dot = strchr(p, '.');
            size_t ln = dot ? (size_t)(dot - p) : strlen(p);
            ok = label_ok(p, ln);
            if (!dot)
                break;
            p = dot + 1;
        }
        if (ok)
            return 0;
    }
    return qerr_set(err, "%s must be an IP address or a host name", key);
}

/* A decimal PCR index 0..23 without sign or leading zeros; -1 otherwise. */
static int pcr_index(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 2 || strspn(k, "0123456789") != n || (n == 2 && k[0] == '0'))
        return -1;
    int v = atoi(k);
    return v <= 23 ? v : -1;
}

static bool digest_ok(const cJSON *v)
{
    if (!cJSON_IsString(v))
        return false;
    size_t n = strlen(v->valuestring);
    return n >= 40 && n <= 128 && qhex_valid(v->valuestring, n);
}

static int check_mask(const cJSON *m, qerr *err)
{
    const char *s = cJSON_IsString(m) ? m->valuestring : NULL;
    if (s && (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0))
        s += 2;
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 8 || strspn(s, "0123456789abcdefABCDEF") != n)
        return qerr_set(err, "tpm_policy: mask must be a string such as \"0x400\"");
    if (strtoul(s, NULL, 16) > 0xfffffful)
        return qerr_set(err, "tpm_policy: mask %s selects PCRs above 23", m->valuestring);
    return 0;
}

int vapi_check_tpm_policy(const char *text, qerr *err)
{
    if (strlen(text) > VAPI_TPM_POLICY_MAX)
        return qerr_set(err, "tpm_policy is larger than %d bytes", VAPI_TPM_POLICY_MAX);
    cJSON *j = cJSON_Parse(text);
    int rc = cJSON_IsObject(j) ? 0 : qerr_set(err, "tpm_policy must hold a JSON object");
    const cJSON *it;
    for (it = j && rc == 0 ? j->child : NULL; it && rc == 0; it = it->next) {
        if (strcmp(it->string, "mask") == 0) {
            rc = check_mask(it, err);
            continue;
        }
        int pcr = pcr_index(it->string);
        if (pcr < 0) {
            rc = qerr_set(err, "Invalid tpm policy pcr number: %.40s (PCRs are 0 to 23)", it->string);
            continue;
        }
        int nv = 0;
        bool ok = digest_ok(it);
        if (cJSON_IsArray(it)) {
            const cJSON *v;
            ok = true;
            cJSON_ArrayForEach(v, it) {
                ok = ok && digest_ok(v);
                nv++;
            }
            ok = ok && nv >= 1 && nv <= VAPI_DIGESTS_MAX;
        }
        if (!ok)
            rc = qerr_set(err, "tpm_policy: PCR %d: each value must be a hex digest (40 to 128 hex digits) or a "
                               "list of 1 to %d of them", pcr, VAPI_DIGESTS_MAX);
    }
    cJSON_Delete(j);
    return rc;
}

int vapi_check_metadata(const char *text, qerr *err)
{
    if (strlen(text) > VAPI_METADATA_MAX)
        return qerr_set(err, "metadata is larger than %d bytes", VAPI_METADATA_MAX);
    cJSON *j = cJSON_Parse(text);
    bool ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok ? 0 : qerr_set(err, "metadata must hold a JSON object");
}

int vapi_check_algs(const char *key, const cJSON *arr, qerr *err)
{
    const char *const *known = strstr(key, "hash") ? hash_names : strstr(key, "encryption") ? enc_names : sign_names;
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 1 || n > VAPI_ALGS_MAX)
        return qerr_set(err, "%s must be a list of 1 to %d algorithm names", key, VAPI_ALGS_MAX);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it))
            return qerr_set(err, "%s must be a list of algorithm names", key);
        const char *const *k = known;
        while (*k && strcmp(*k, it->valuestring) != 0)
            k++;
        if (!*k) {
            char list[160] = "";
            for (k = known; *k; k++)
                strcat(strcat(list, k == known ? "" : ", "), *k);
            return qerr_set(err, "%s: unknown algorithm '%.32s' (known: %s)", key, it->valuestring, list);
        }
    }
    return 0;
}
