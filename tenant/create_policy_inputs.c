/* create_policy_inputs.c — create-policy's inputs that already carry digests: allowlists, a base
 * runtime policy, an IMA measurement list, package digest lists, and exclude files. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "buf.h"
#include "create_policy.h"
#include "hex.h"
#include "ima_entry.h"
#include "ima_sig.h"
#include "policy_sig.h"

#define MAX_EXCLUDES 100000
#define CPOL_MAX_IGNORED 4096

void cpol_set_free(cpol_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->e[i].path);
    free(s->e);
    s->e = NULL;
    s->n = s->cap = 0;
}

static bool alg_for_len(size_t hex_len, qhash_alg *alg)
{
    static const qhash_alg all[] = { QHASH_SHA1, QHASH_SHA256, QHASH_SHA384, QHASH_SHA512 };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (2 * qhash_size(all[i]) == hex_len) {
            *alg = all[i];
            return true;
        }
    return false;
}

int cpol_add(cpol_set *s, qpol_table t, const char *path, size_t path_len, const char *hex, size_t hex_len,
             const char *source, qerr *err)
{
    qhash_alg a;
    if (!qhex_valid(hex, hex_len) || !alg_for_len(hex_len, &a))
        return qerr_set(err, "Invalid digest algorithm found in the %s (digest '%.*s' of %.*s)", source,
                        (int)(hex_len > 130 ? 130 : hex_len), hex, (int)(path_len > 200 ? 200 : path_len), path);
    if (!s->alg_set) {
        s->alg = a;
        s->alg_set = true;
        s->alg_from = source;
        fprintf(stderr, "quince-tenant: create-policy: using digest algorithm '%s' obtained from the %s\n",
                qhash_name(a), source);
    } else if (a != s->alg) {
        return qerr_set(err, "The digest algorithm in the %s does not match the previously set '%s' algorithm "
                        "(%.*s has a %zu-digit digest)", source, qhash_name(s->alg),
                        (int)(path_len > 200 ? 200 : path_len), path, hex_len);
    }
    if (path_len == 0 || path_len > QAL_MAX_PATH || memchr(path, '\0', path_len) || memchr(path, '\n', path_len))
        return qerr_set(err, "%s: a path is empty, too long or holds a control character", source);
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 1024;
        if (nc > QAL_MAX_ITEMS)
            return qerr_set(err, "more than %u entries", QAL_MAX_ITEMS);
        cpol_ent *e = realloc(s->e, nc * sizeof *e);
        if (!e)
            return qerr_set(err, "out of memory");
        s->e = e;
        s->cap = nc;
    }
    cpol_ent *e = &s->e[s->n];
    if (!(e->path = strndup(path, path_len)))
        return qerr_set(err, "out of memory");
    e->table = t;
    for (size_t i = 0; i < hex_len; i++)
        e->hex[i] = (char)tolower((unsigned char)hex[i]);
    e->hex[hex_len] = '\0';
    s->n++;
    return 0;
}

static int ent_cmp(const void *a, const void *b)
{
    const cpol_ent *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    int c = strcmp(x->path, y->path);
    return c ? c : strcmp(x->hex, y->hex);
}

void cpol_sort_unique(cpol_set *s)
{
    if (s->n)
        qsort(s->e, s->n, sizeof *s->e, ent_cmp);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (w > 0 && ent_cmp(&s->e[w - 1], &s->e[i]) == 0) {
            free(s->e[i].path);
            continue;
        }
        s->e[w++] = s->e[i];
    }
    s->n = w;
}

static int slurp(const char *file, const char *what, qbuf *b, qerr *err)
{
    qbuf_init(b, 0);
    if (qbuf_read_file(b, file, QPOLICY_MAX_SIZE) < 0 || !qbuf_cstr(b)) {
        int e = errno;
        qbuf_free(b);
        return qerr_set(err, "cannot read %s %s: %s", what, file, strerror(e));
    }
    return 0;
}

/* Adds every entry of the sorted JSON form of a policy's table. */
static int add_table(cpol_set *s, const cJSON *obj, qpol_table t, const char *source, qerr *err)
{
    const cJSON *path, *d;
    cJSON_ArrayForEach(path, obj) {
        cJSON_ArrayForEach(d, path) {
            if (cJSON_IsString(d) && cpol_add(s, t, path->string, strlen(path->string), d->valuestring,
                                              strlen(d->valuestring), source, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* A policy (loaded and checked by libquince) as its sorted JSON form. */
static cJSON *policy_json(const char *file, bool allowlist, qerr *err)
{
    qbuf b;
    if (slurp(file, allowlist ? "allowlist" : "base policy", &b, err) < 0)
        return NULL;
    qpsig_result r;
    if (qpsig_check((const char *)b.data, b.len, NULL, 0, false, &r) != 0) {
        qerr_set(err, "%s: %s", file, r.message);
        qpsig_result_clear(&r);
        qbuf_free(&b);
        return NULL;
    }
    qbuf_free(&b);
    qpolicy *p = allowlist ? qpolicy_from_allowlist(r.payload, r.payload_len, file, err)
                           : qpolicy_from_json(r.payload, r.payload_len, file, err);
    qpsig_result_clear(&r);
    if (!p)
        return NULL;
    char *text = qpolicy_to_json(p, true, err);
    qpolicy_free(p);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j && text)
        qerr_set(err, "%s: out of memory", file);
    return j;
}

int cpol_read_allowlist(cpol_set *s, const char *file, qerr *err)
{
    cJSON *j = policy_json(file, true, err);
    if (!j)
        return -1;
    int rc = add_table(s, cJSON_GetObjectItemCaseSensitive(j, "digests"), QPOL_DIGESTS, "allowlist", err);
    if (rc == 0)
        rc = add_table(s, cJSON_GetObjectItemCaseSensitive(j, "keyrings"), QPOL_KEYRINGS, "allowlist", err);
    cJSON_Delete(j);
    return rc;
}

static int push_str(char ***list, size_t *n, const char *str, size_t len, size_t max, qerr *err)
{
    for (size_t i = 0; i < *n; i++)
        if (strlen((*list)[i]) == len && memcmp((*list)[i], str, len) == 0)
            return 0;
    if (*n >= max)
        return qerr_set(err, "more than %zu entries", max);
    char **l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l)
        return qerr_set(err, "out of memory");
    *list = l;
    if (!(l[*n] = strndup(str, len)))
        return qerr_set(err, "out of memory");
    (*n)++;
    return 0;
}

int cpol_read_base_policy(cpol_set *s, const char *file, char ***excl, size_t *nexcl, char ***ign, size_t *nign,
                          char **vkeys, qerr *err)
{
    cJSON *j = policy_json(file, false, err);
    if (!j)
        return -1;
    int rc = add_table(s, cJSON_GetObjectItemCaseSensitive(j, "digests"), QPOL_DIGESTS, "base policy", err);
    if (rc == 0)
        rc = add_table(s, cJSON_GetObjectItemCaseSensitive(j, "keyrings"), QPOL_KEYRINGS, "base policy", err);
    if (rc == 0)
        rc = add_table(s, cJSON_GetObjectItemCaseSensitive(j, "ima-buf"), QPOL_IMABUF, "base policy", err);
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(j, "excludes"))
        if (rc == 0 && cJSON_IsString(d))
            rc = push_str(excl, nexcl, d->valuestring, strlen(d->valuestring), MAX_EXCLUDES, err);
    const cJSON *ima = cJSON_GetObjectItemCaseSensitive(j, "ima");
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(ima, "ignored_keyrings"))
        if (rc == 0 && cJSON_IsString(d))
            rc = push_str(ign, nign, d->valuestring, strlen(d->valuestring), CPOL_MAX_IGNORED, err);
    const cJSON *vk = cJSON_GetObjectItemCaseSensitive(j, "verification-keys");
    if (rc == 0 && vkeys && cJSON_IsString(vk) && vk->valuestring[0] && !(*vkeys = strdup(vk->valuestring)))
        rc = qerr_set(err, "out of memory");
    cJSON_Delete(j);
    return rc;
}

static bool listed(char *const *l, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i], "*") == 0 || (strlen(l[i]) == len && memcmp(l[i], s, len) == 0))
            return true;
    return false;
}

int cpol_read_ima_list(cpol_set *s, const char *file, bool keyrings, bool ima_buf, char *const *ign, size_t nign,
                       qerr *err)
{
    qbuf b;
    if (slurp(file, "IMA measurement list", &b, err) < 0)
        return -1;
    uint8_t *scratch = malloc(QIMA_SCRATCH_SIZE);
    if (!scratch) {
        qbuf_free(&b);
        return qerr_set(err, "out of memory");
    }
    char src[64 + QAL_MAX_PATH], hex[2 * QIMA_MAX_DIGEST + 1];
    snprintf(src, sizeof src, "IMA measurement list %s", file);
    int rc = 0;
    size_t lineno = 0;
    for (char *line = (char *)b.data, *next; rc == 0 && line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        size_t len = next ? (size_t)(next - line) : strlen(line);
        if (next)
            next++;
        if (len == 0)
            continue;
        qima_entry e;
        qerr pe = {0};
        if (qima_parse_line(line, len, &e, scratch, &pe) < 0) {
            rc = qerr_set(err, "%s:%zu: %s", file, lineno, pe.msg);
            break;
        }
        if (qima_is_violation(&e) || e.digest_len == 0)
            continue;
        qhex_encode(e.digest, e.digest_len, hex);
        if (e.tmpl == QIMA_TMPL_NG || e.tmpl == QIMA_TMPL_SIG) {
            rc = cpol_add(s, QPOL_DIGESTS, e.name, e.name_len, hex, 2 * e.digest_len, src, err);
        } else if (e.tmpl == QIMA_TMPL_BUF) {
            bool supported = true;
            if (qkeyring_is_key(e.buf, e.buf_len, &supported)) {
                if (keyrings && !listed(ign, nign, e.name, e.name_len))
                    rc = cpol_add(s, QPOL_KEYRINGS, e.name, e.name_len, hex, 2 * e.digest_len, src, err);
            } else if (ima_buf) {
                rc = cpol_add(s, QPOL_IMABUF, e.name, e.name_len, hex, 2 * e.digest_len, src, err);
            }
        }
    }
    free(scratch);
    qbuf_free(&b);
    return rc;
}

int cpol_read_packages(cpol_set *s, const char *file, qal_list *to_hash, qerr *err)
{
    qbuf b;
    if (slurp(file, "package digest list", &b, err) < 0)
        return -1;
    char src[64 + QAL_MAX_PATH];
    snprintf(src, sizeof src, "package digest list %s", file);
    int rc = 0;
    size_t lineno = 0;
    for (char *line = (char *)b.data, *next; rc == 0 && line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        size_t len = next ? (size_t)(next - line) : strlen(line);
        if (next)
            next++;
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
            len--;
        size_t h = 0;
        while (h < len && !isspace((unsigned char)line[h]))
            h++;
        size_t p = h;
        while (p < len && isspace((unsigned char)line[p]))
            p++;
        if (h == 0 || line[0] == '#' || p >= len)
            continue;          /* blank line, comment, or an entry without a digest (a directory) */
        char path[QAL_MAX_PATH + 2];
        long pl = qal_log_path(line + p, len - p, path, sizeof path);
        if (pl < 0) {
            rc = qerr_set(err, "%s:%zu: unusable path", file, lineno);
            break;
        }
        qhash_alg a;
        if (qhex_valid(line, h) && alg_for_len(h, &a) && (!s->alg_set || a == s->alg)) {
            rc = cpol_add(s, QPOL_DIGESTS, path, (size_t)pl, line, h, src, err);
        } else {
            /* Another algorithm (dpkg's md5sums, or sha256 with --algo sha1): hash the file. */
            s->pkg_rehash++;
            if (qal_add(to_hash, path, (size_t)pl, path, NULL, 0, err) < 0)
                rc = -1;
        }
    }
    qbuf_free(&b);
    return rc;
}

int cpol_read_excludes(const char *file, char ***list, size_t *n, qerr *err)
{
    qbuf b;
    if (slurp(file, "exclude list", &b, err) < 0)
        return -1;
    /* Checked here so that an error names this file and line. */
    qpolicy *check = qpolicy_empty(err);
    int rc = check ? qpolicy_add_excludes(check, (const char *)b.data, b.len, file, err) : -1;
    qpolicy_free(check);
    for (char *line = (char *)b.data, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        size_t len = next ? (size_t)(next - line) : strlen(line);
        if (next)
            next++;
        while (len && isspace((unsigned char)line[len - 1]))
            len--;
        size_t i = 0;
        while (i < len && isspace((unsigned char)line[i]))
            i++;
        if (i == len || line[i] == '#')
            continue;
        rc = push_str(list, n, line + i, len - i, MAX_EXCLUDES, err);
    }
    qbuf_free(&b);
    return rc;
}
