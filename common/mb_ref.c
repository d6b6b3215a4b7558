/* mb_ref.c — parsing and checking a measured-boot reference state (mb_policy.h: qmb_ref_parse,
 * qmb_ref_free) into the arrays of mb_ref.h, once per reference. */
#include "mb_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "hex.h"

#define MAX_LIST 4096                  /* entries in one reference list */
#define STR_MAX 4096                   /* a kernel_cmdline regular expression */
#define CMDLINE_PREFIX MB_CMDLINE_PREFIX

static int hex0x(const cJSON *j, const char *what, uint8_t *out, size_t want, size_t *got, qerr *e)
{
    const char *s = cJSON_GetStringValue(j);
    if (!s || s[0] != '0' || s[1] != 'x')
        return qerr_set(e, "%s: expected a string of 0x and lower-case hex digits", what);
    size_t n = strlen(s + 2);
    for (size_t i = 0; i < n; i++)
        if (!((s[2 + i] >= '0' && s[2 + i] <= '9') || (s[2 + i] >= 'a' && s[2 + i] <= 'f')))
            return qerr_set(e, "%s: expected a string of 0x and lower-case hex digits", what);
    if (n % 2 || (want && n != 2 * want) || (!want && n / 2 > *got))
        return qerr_set(e, "%s: %zu hex digits is not a valid length here", what, n);
    if (qhex_decode(s + 2, n, out, n / 2) != (long)(n / 2))
        return qerr_set(e, "%s: bad hex", what);
    if (got)
        *got = n / 2;
    return 0;
}

/* {"sha256": "0x..."}; other algorithms are not pinned by Quince and are ignored. */
static int digest(const cJSON *j, const char *what, dg *out, qerr *e)
{
    if (!cJSON_IsObject(j))
        return qerr_set(e, "%s: expected an object like {\"sha256\": \"0x...\"}", what);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "sha256");
    if (!s)
        return qerr_set(e, "%s: no sha256 digest (Quince checks the sha256 bank)", what);
    return hex0x(s, what, out->d, DG, NULL, e);
}

static int digest_list(const cJSON *j, const char *what, dg **out, size_t *n, qerr *e)
{
    if (!cJSON_IsArray(j))
        return qerr_set(e, "%s: expected a list", what);
    size_t cnt = (size_t)cJSON_GetArraySize(j);
    if (cnt > MAX_LIST)
        return qerr_set(e, "%s: more than %d entries", what, MAX_LIST);
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out)
        return qerr_set(e, "out of memory");
    *n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        char w[96];
        snprintf(w, sizeof w, "%s[%zu]", what, *n);
        if (digest(it, w, &(*out)[*n], e) < 0)
            return -1;
        (*n)++;
    }
    return 0;
}

static int guid_parse(const char *s, uint8_t out[16])
{
    unsigned a, b, c, d[8];
    if (!s || strlen(s) != 36 ||
        sscanf(s, "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &a, &b, &c, &d[0], &d[1], &d[2], &d[3],
               &d[4], &d[5], &d[6], &d[7]) != 11)
        return -1;
    const uint8_t le[8] = { a, a >> 8, a >> 16, a >> 24, b, b >> 8, c, c >> 8 };
    memcpy(out, le, 8);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (uint8_t)d[i];
    return 0;
}

static int sig_list(const cJSON *ref, const char *key, siglist *out, qerr *e)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(ref, key);
    if (!cJSON_IsArray(j))
        return qerr_set(e, "%s: missing, or not a list", key);
    size_t cnt = (size_t)cJSON_GetArraySize(j);
    if (cnt > MAX_LIST)
        return qerr_set(e, "%s: more than %d entries", key, MAX_LIST);
    out->v = calloc(cnt ? cnt : 1, sizeof *out->v);
    if (!out->v)
        return qerr_set(e, "out of memory");
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        sig *s = &out->v[out->n];
        const char *owner = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "SignatureOwner"));
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(it, "SignatureData");
        char w[64];
        snprintf(w, sizeof w, "%s[%zu].SignatureData", key, out->n);
        if (guid_parse(owner, s->owner) < 0)
            return qerr_set(e, "%s[%zu].SignatureOwner: expected a GUID", key, out->n);
        const char *hs = cJSON_GetStringValue(data);
        size_t cap = hs ? strlen(hs) / 2 : 0;
        s->data = malloc(cap ? cap : 1);
        if (!s->data)
            return qerr_set(e, "out of memory");
        out->n++;
        s->len = cap;
        if (hex0x(data, w, s->data, 0, &s->len, e) < 0)
            return -1;
    }
    return 0;
}

static void sig_list_clear(siglist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].data);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int kernel_parse(const cJSON *j, size_t idx, bool sb, kern *k, qerr *e)
{
    char w[96];
#define FIELD(name, dst, required) do {                                                   \
        const cJSON *f_ = cJSON_GetObjectItemCaseSensitive(j, name);                      \
        snprintf(w, sizeof w, "kernels[%zu].%s", idx, name);                              \
        if (!f_) { if (required) return qerr_set(e, "%s is missing", w); }                \
        else if (hex0x(f_, w, (dst)->d, DG, NULL, e) < 0) return -1;                      \
    } while (0)
    if (!cJSON_IsObject(j))
        return qerr_set(e, "kernels[%zu]: expected an object", idx);
    FIELD("shim_authcode_sha256", &k->shim, true);
    FIELD("grub_authcode_sha256", &k->grub, true);
    if (sb)
        FIELD("kernel_authcode_sha256", &k->kernel, true);
    k->have_vmlinuz = !sb && cJSON_GetObjectItemCaseSensitive(j, "vmlinuz_plain_sha256");
    if (k->have_vmlinuz)
        FIELD("vmlinuz_plain_sha256", &k->vmlinuz, true);
    k->have_initrd = cJSON_GetObjectItemCaseSensitive(j, "initrd_plain_sha256") != NULL;
    if (k->have_initrd)
        FIELD("initrd_plain_sha256", &k->initrd, true);
#undef FIELD
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "kernel_cmdline");
    if (!c)
        return 0;
    const char *src = cJSON_GetStringValue(c);
    if (!src || strlen(src) > STR_MAX)
        return qerr_set(e, "kernels[%zu].kernel_cmdline: expected a regular expression (a string)", idx);
    size_t n = strlen(CMDLINE_PREFIX) + strlen(src) + 1;
    k->cmdline_src = malloc(n);
    if (!k->cmdline_src)
        return qerr_set(e, "out of memory");
    snprintf(k->cmdline_src, n, "%s%s", CMDLINE_PREFIX, src);
    int err;
    PCRE2_SIZE off;
    k->cmdline = pcre2_compile((PCRE2_SPTR)k->cmdline_src, PCRE2_ZERO_TERMINATED,
                               PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &off, NULL);
    if (!k->cmdline) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return qerr_set(e, "kernels[%zu].kernel_cmdline: %s at offset %zu", idx, (char *)msg,
                        off >= strlen(CMDLINE_PREFIX) ? off - strlen(CMDLINE_PREFIX) : 0);
    }
    return 0;
}

void qmb_ref_free(qmb_ref *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nsab; i++)
        free(r->sab[i].fw);
    free(r->sab);
    sig_list_clear(&r->pk);
    sig_list_clear(&r->kek);
    sig_list_clear(&r->db);
    sig_list_clear(&r->dbx);
    free(r->mok);
    free(r->mokx);
    for (size_t i = 0; i < r->nk; i++) {
        pcre2_code_free(r->k[i].cmdline);
        free(r->k[i].cmdline_src);
    }
    free(r->k);
    free(r);
}

static int ref_fill(qmb_ref *r, const cJSON *j, qerr *e)
{
    if (!cJSON_IsObject(j))
        return qerr_set(e, "a measured-boot reference state is a JSON object");
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(j, "has_secureboot");
    if (sb && !cJSON_IsBool(sb))
        return qerr_set(e, "has_secureboot: expected true or false");
    r->sb = !sb || cJSON_IsTrue(sb);
    const cJSON *sabs = cJSON_GetObjectItemCaseSensitive(j, "scrtm_and_bios");
    if (!cJSON_IsArray(sabs) || cJSON_GetArraySize(sabs) == 0 || cJSON_GetArraySize(sabs) > MAX_LIST)
        return qerr_set(e, "scrtm_and_bios: expected a non-empty list");
    r->sab = calloc((size_t)cJSON_GetArraySize(sabs), sizeof *r->sab);
    if (!r->sab)
        return qerr_set(e, "out of memory");
    const cJSON *it;
    cJSON_ArrayForEach(it, sabs) {
        sab *s = &r->sab[r->nsab++];
        char w[64];
        snprintf(w, sizeof w, "scrtm_and_bios[%zu].scrtm", r->nsab - 1);
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(it, "scrtm");
        if (sc && digest(sc, w, &s->scrtm, e) < 0)
            return -1;
        s->have_scrtm = sc != NULL;
        snprintf(w, sizeof w, "scrtm_and_bios[%zu].platform_firmware", r->nsab - 1);
        if (digest_list(cJSON_GetObjectItemCaseSensitive(it, "platform_firmware"), w, &s->fw, &s->nfw, e) < 0)
            return -1;
    }
    if (sig_list(j, "pk", &r->pk, e) < 0 || sig_list(j, "kek", &r->kek, e) < 0 ||
        sig_list(j, "db", &r->db, e) < 0 || sig_list(j, "dbx", &r->dbx, e) < 0)
        return -1;
    if (digest_list(cJSON_GetObjectItemCaseSensitive(j, "mokdig"), "mokdig", &r->mok, &r->nmok, e) < 0 ||
        digest_list(cJSON_GetObjectItemCaseSensitive(j, "mokxdig"), "mokxdig", &r->mokx, &r->nmokx, e) < 0)
        return -1;
    const cJSON *ks = cJSON_GetObjectItemCaseSensitive(j, "kernels");
    if (!cJSON_IsArray(ks) || cJSON_GetArraySize(ks) == 0 || cJSON_GetArraySize(ks) > MAX_LIST)
        return qerr_set(e, "kernels: expected a non-empty list");
    r->k = calloc((size_t)cJSON_GetArraySize(ks), sizeof *r->k);
    if (!r->k)
        return qerr_set(e, "out of memory");
    cJSON_ArrayForEach(it, ks) {
        if (kernel_parse(it, r->nk, r->sb, &r->k[r->nk], e) < 0) {
            r->nk++;
            return -1;
        }
        r->nk++;
    }
    return 0;
}

qmb_ref *qmb_ref_parse(const char *json, size_t len, qerr *e)
{
    if (len > QMB_MAX_REF_BYTES)
        return qerr_set(e, "the reference state is over %u bytes", QMB_MAX_REF_BYTES), NULL;
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j)
        return qerr_set(e, "the reference state is not valid JSON"), NULL;
    qmb_ref *r = calloc(1, sizeof *r);
    if (!r) {
        cJSON_Delete(j);
        return qerr_set(e, "out of memory"), NULL;
    }
    int rc = ref_fill(r, j, e);
    cJSON_Delete(j);
    if (rc < 0) {
        qerr_prefix(e, "measured-boot reference state");
        qmb_ref_free(r);
        return NULL;
    }
    return r;
}
