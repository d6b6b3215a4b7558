/* policy_json.c — Keylime runtime policy JSON v1 and legacy JSON allowlists into a qpolicy
 * (keylime-formats §2.2, §2.4). The text is parsed with cJSON, checked against Keylime's
 * schema rule by rule (messages worded like jsonschema's, followed by where the value is),
 * and copied into the policy's tables; the cJSON tree is freed before returning. */
#include "policy_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_PREFIX "Runtime policy is malformatted: "
#define DIGEST_PATTERN "^[0-9a-f]{40,128}$"
#define REPR_MAX 160

static const char *const top_keys[] = {
    "meta", "release", "digests", "excludes", "keyrings", "ima", "ima-buf", "verification-keys",
};
static const char *const table_keys[QPOL_NTABLES] = { "digests", "keyrings", "ima-buf" };

/* ---- Python-style repr of a JSON value, bounded ---- */

typedef struct {
    char s[REPR_MAX + 4];
    size_t n;
    bool full;
} repr_t;

static void rp_put(repr_t *r, const char *s, size_t n)
{
    if (r->full)
        return;
    if (r->n + n > REPR_MAX) {
        n = REPR_MAX - r->n;
        r->full = true;
    }
    memcpy(r->s + r->n, s, n);
    r->n += n;
    if (r->full) {
        memcpy(r->s + r->n, "...", 3);
        r->n += 3;
    }
    r->s[r->n] = '\0';
}

static void rp_str(repr_t *r, const char *s)
{
    /* Python's repr(str): single quotes unless the text has ' and no ". */
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    rp_put(r, &q, 1);
    for (; *s && !r->full; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '\\' || c == (unsigned char)q) {
            esc[0] = '\\';
            esc[1] = (char)c;
            rp_put(r, esc, 2);
        } else if (c == '\n') {
            rp_put(r, "\\n", 2);
        } else if (c == '\r') {
            rp_put(r, "\\r", 2);
        } else if (c == '\t') {
            rp_put(r, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            rp_put(r, esc, 4);
        } else {
            rp_put(r, (const char *)&c, 1);
        }
    }
    rp_put(r, &q, 1);
}

static void rp_value(repr_t *r, const cJSON *v)
{
    char num[64];
    if (cJSON_IsString(v)) {
        rp_str(r, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (isfinite(d) && d == floor(d) && fabs(d) < 1e15)
            snprintf(num, sizeof num, "%lld", (long long)d);
        else
            snprintf(num, sizeof num, "%.17g", d);
        rp_put(r, num, strlen(num));
    } else if (cJSON_IsTrue(v)) {
        rp_put(r, "True", 4);
    } else if (cJSON_IsFalse(v)) {
        rp_put(r, "False", 5);
    } else if (cJSON_IsNull(v)) {
        rp_put(r, "None", 4);
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        bool obj = cJSON_IsObject(v);
        rp_put(r, obj ? "{" : "[", 1);
        for (const cJSON *c = v->child; c && !r->full; c = c->next) {
            if (c != v->child)
                rp_put(r, ", ", 2);
            if (obj) {
                rp_str(r, c->string ? c->string : "");
                rp_put(r, ": ", 2);
            }
            rp_value(r, c);
        }
        rp_put(r, obj ? "}" : "]", 1);
    } else {
        rp_put(r, "?", 1);
    }
}

/* ---- error reporting ---- */

typedef struct {
    const char *prefix;     /* RT_PREFIX, or "<src>: " for allowlists */
    qerr *err;
} ctx_t;

/* "<prefix><jsonschema-like message> (at <where>)"; where may be empty. */
static int fail_at(ctx_t *c, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(ctx_t *c, const char *where, const char *fmt, ...)
{
    char msg[QERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (where && *where)
        return qerr_set(c->err, "%s%s (at %s)", c->prefix, msg, where);
    return qerr_set(c->err, "%s%s", c->prefix, msg);
}

static int fail_type(ctx_t *c, const char *where, const cJSON *v, const char *type)
{
    repr_t r = { .n = 0 };
    rp_value(&r, v);
    return fail_at(c, where, "%s is not of type '%s'", r.s, type);
}

/* The last member named key (Python's json keeps the last of repeated keys). */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *found = NULL;
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0)
            found = c;
    return found;
}

/* A JSON integer (jsonschema accepts integral floats too), within [lo, hi]. */
static int get_int(ctx_t *c, const char *where, const cJSON *v, long long lo, long long hi,
                   long long *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        v->valuedouble != floor(v->valuedouble))
        return fail_type(c, where, v, "integer");
    double d = v->valuedouble;
    repr_t r = { .n = 0 };
    rp_value(&r, v);
    if (d < (double)lo)
        return fail_at(c, where, "%s is less than the minimum of %lld", r.s, lo);
    if (d > (double)hi) {
        if (hi == INT64_MAX / 2)
            return fail_at(c, where, "%s is too large", r.s);
        return fail_at(c, where, "%s is greater than the maximum of %lld", r.s, hi);
    }
    *out = (long long)d;
    return 0;
}

/* ---- pieces of the policy ---- */

/* "<name>['<path>']" or "<name>['<path>'][i]" (i < 0: none), for error messages only. */
static const char *where_of(char *buf, size_t cap, const char *name, const char *path, long i)
{
    repr_t kr = { .n = 0 };
    rp_str(&kr, path);
    if (i < 0)
        snprintf(buf, cap, "%s[%s]", name, kr.s);
    else
        snprintf(buf, cap, "%s[%s][%ld]", name, kr.s, i);
    return buf;
}

/* A digests-shaped object into table t: path → non-empty array of hex strings. */
static int fill_table(qpolicy *p, ctx_t *c, qpol_table t, const char *name, const cJSON *obj,
                      bool lower_only)
{
    if (!cJSON_IsObject(obj))
        return fail_type(c, name, obj, "object");
    size_t n = 0;
    for (const cJSON *e = obj->child; e; e = e->next)
        n++;
    if (qpol_reserve(p, t, n, c->err) < 0)
        return qerr_prefix(c->err, "%s", c->prefix);
    char w[256];
    const char *path = obj->child && obj->child->string ? obj->child->string : "";
    size_t plen = strlen(path);
    uint64_t h = qpol_hash(path, plen);
    for (const cJSON *e = obj->child; e; e = e->next) {
        /* Hash the next path now and prefetch its slot (see qpol_prefetch). */
        const char *next = e->next && e->next->string ? e->next->string : "";
        size_t nlen = e->next ? strlen(next) : 0;
        uint64_t nh = e->next ? qpol_hash(next, nlen) : 0;
        if (e->next)
            qpol_prefetch(p, t, nh);
        if (!cJSON_IsArray(e))
            return fail_type(c, where_of(w, sizeof w, name, path, -1), e, "array");
        if (!e->child)
            return fail_at(c, where_of(w, sizeof w, name, path, -1), "[] is too short");
        bool added = false;
        long ent = qpol_path_h(p, t, path, plen, h, &added, c->err);
        if (ent < 0)
            return qerr_prefix(c->err, "%s%s", c->prefix, where_of(w, sizeof w, name, path, -1));
        if (!added)
            qpol_clear_digests(p, t, (uint32_t)ent);
        long i = 0;
        for (const cJSON *d = e->child; d; d = d->next, i++) {
            if (!cJSON_IsString(d))
                return fail_type(c, where_of(w, sizeof w, name, path, i), d, "string");
            const char *hex = d->valuestring;
            size_t hl = strlen(hex);
            if (qpol_add_hex(p, t, (uint32_t)ent, hex, hl, lower_only, c->err) == 0)
                continue;
            where_of(w, sizeof w, name, path, i);
            if (qpol_hex_ok(hex, hl, lower_only))   /* valid: it was memory */
                return qerr_prefix(c->err, "%s%s", c->prefix, w);
            repr_t r = { .n = 0 };
            rp_str(&r, hex);
            if (lower_only)
                return fail_at(c, w, "%s does not match '%s'", r.s, DIGEST_PATTERN);
            return fail_at(c, w, "%s is not a hex digest of 40..128 digits", r.s);
        }
        path = next;
        plen = nlen;
        h = nh;
    }
    return 0;
}

static int fill_excludes(qpolicy *p, ctx_t *c, const cJSON *arr)
{
    if (!cJSON_IsArray(arr))
        return fail_type(c, "excludes", arr, "array");
    size_t n = 0;
    char where[64];
    for (const cJSON *e = arr->child; e; e = e->next, n++) {
        if (!cJSON_IsString(e)) {
            snprintf(where, sizeof where, "excludes[%zu]", n);
            return fail_type(c, where, e, "string");
        }
    }
    if (n == 0)
        return 0;
    if (n > QEXCL_MAX_COUNT)
        return fail_at(c, "excludes", "too many exclude patterns (%zu, at most %u)", n,
                       (unsigned)QEXCL_MAX_COUNT);
    const char **pats = malloc(n * sizeof *pats);
    unsigned *lines = malloc(n * sizeof *lines);
    if (!pats || !lines) {
        free(pats);
        free(lines);
        return qerr_set(c->err, "out of memory");
    }
    size_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        pats[i] = e->valuestring;
        lines[i] = (unsigned)i + 1;   /* 1-based: "line" N of the excludes list */
    }
    qexcludes *x = qexcludes_compile(pats, n, lines, "excludes", c->err);
    free(pats);
    free(lines);
    if (!x)   /* the message names "excludes:<line>"; put the prefix in front */
        return qerr_prefix(c->err, "%.*s", (int)strlen(c->prefix) - 2, c->prefix);
    qexcludes_free(p->excl);
    p->excl = x;
    return 0;
}

static const char *const alg_names[] = { "sha1", "sha256", "sha384", "sha512" };

/* The "ima" object; `legacy` makes its members optional. */
static int fill_ima(qpolicy *p, ctx_t *c, const cJSON *ima, bool legacy)
{
    if (!cJSON_IsObject(ima))
        return fail_type(c, "ima", ima, "object");
    static const char *const req[] = { "ignored_keyrings", "log_hash_alg", "dm_policy" };
    for (size_t i = 0; i < 3 && !legacy; i++)
        if (!member(ima, req[i]))
            return fail_at(c, "ima", "'%s' is a required property", req[i]);
    const cJSON *ign = member(ima, "ignored_keyrings");
    if (ign) {
        if (!cJSON_IsArray(ign))
            return fail_type(c, "ima.ignored_keyrings", ign, "array");
        size_t i = 0;
        for (const cJSON *e = ign->child; e; e = e->next, i++) {
            char where[64];
            snprintf(where, sizeof where, "ima.ignored_keyrings[%zu]", i);
            if (!cJSON_IsString(e))
                return fail_type(c, where, e, "string");
            if (qpol_add_ignored(p, e->valuestring, strlen(e->valuestring), c->err) < 0)
                return qerr_prefix(c->err, "%s%s", c->prefix, where);
        }
    }
    const cJSON *alg = member(ima, "log_hash_alg");
    if (alg) {
        if (!cJSON_IsString(alg))
            return fail_type(c, "ima.log_hash_alg", alg, "string");
        if (qhash_from_name(alg->valuestring, &p->log_alg) < 0) {
            repr_t r = { .n = 0 };
            rp_str(&r, alg->valuestring);
            return fail_at(c, "ima.log_hash_alg", "%s is not one of ['%s', '%s', '%s', '%s']", r.s,
                           alg_names[0], alg_names[1], alg_names[2], alg_names[3]);
        }
    }
    const cJSON *dm = member(ima, "dm_policy");
    if (dm && !cJSON_IsNull(dm))
        return fail_type(c, "ima.dm_policy", dm, "null");
    return 0;
}

static int fill_vkeys(qpolicy *p, ctx_t *c, const cJSON *v)
{
    if (!cJSON_IsString(v))
        return fail_type(c, "verification-keys", v, "string");
    size_t n = strlen(v->valuestring);
    if (qpol_str_add(p, v->valuestring, n, &p->vkeys, c->err) < 0)
        return -1;
    if (n == 0)
        return 0;
    p->keyring = qkeyring_from_json(v->valuestring, n, c->err);
    if (!p->keyring)
        return qerr_prefix(c->err, "%sverification-keys", c->prefix);
    return 0;
}

static int fill_meta(qpolicy *p, ctx_t *c, const cJSON *meta)
{
    if (!cJSON_IsObject(meta))
        return fail_type(c, "meta", meta, "object");
    const cJSON *ver = member(meta, "version"), *gen = member(meta, "generator");
    if (!ver)
        return fail_at(c, "meta", "'version' is a required property");
    if (!gen)
        return fail_at(c, "meta", "'generator' is a required property");
    long long v = 0, g = 0;
    if (get_int(c, "meta.version", ver, 0, INT64_MAX / 2, &v) < 0 ||
        get_int(c, "meta.generator", gen, 0, 3, &g) < 0)
        return -1;
    const cJSON *ts = member(meta, "timestamp");
    if (ts && !cJSON_IsString(ts))
        return fail_type(c, "meta.timestamp", ts, "string");
    if (v != 1)
        return fail_at(c, "meta.version", "unsupported version %lld (only version 1 is known)", v);
    p->generator = (int)g;
    if (ts) {
        if (qpol_str_add(p, ts->valuestring, strlen(ts->valuestring), &p->ts, c->err) < 0)
            return -1;
        p->has_ts = true;
    }
    return 0;
}

/* Python truthiness of a JSON value. */
static bool truthy(const cJSON *v)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return false;
    if (cJSON_IsNumber(v))
        return v->valuedouble != 0;
    if (cJSON_IsString(v))
        return v->valuestring[0] != '\0';
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        return v->child != NULL;
    return true;
}

static cJSON *parse(const char *text, size_t len, ctx_t *c)
{
    if (!text || len == 0) {
        fail_at(c, NULL, "empty document (not JSON)");
        return NULL;
    }
    if (len > QPOLICY_MAX_SIZE) {
        fail_at(c, NULL, "larger than %u bytes", QPOLICY_MAX_SIZE);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        fail_at(c, NULL, "not valid JSON (error near byte %zu)", at);
        return NULL;
    }
    const char *stop = text + len;
    while (end && end < stop && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end && end < stop && *end != '\0') {
        fail_at(c, NULL, "not valid JSON (extra data at byte %zu)", (size_t)(end - text));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* Arena room for the strings and digests of a document of len bytes. */
static int reserve_for(qpolicy *p, size_t len, qerr *err)
{
    return qpol_reserve_arena(p, len / 2 + 64, len / 96 + 16, err);
}

/* A runtime policy document into p: Keylime's schema, then the pieces. */
static int load_doc(qpolicy *p, const char *text, size_t len, qerr *err)
{
    ctx_t c = { .prefix = RT_PREFIX, .err = err };
    cJSON *root = parse(text, len, &c);
    if (!root)
        return -1;
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        fail_type(&c, NULL, root, "object");
        goto out;
    }
    if (truthy(member(root, "payload"))) {
        fail_at(&c, NULL, "a signed (DSSE) policy envelope is not supported");
        goto out;
    }
    for (size_t i = 0; i < sizeof top_keys / sizeof top_keys[0]; i++) {
        if (!member(root, top_keys[i])) {
            fail_at(&c, NULL, "'%s' is a required property", top_keys[i]);
            goto out;
        }
    }
    if (fill_meta(p, &c, member(root, "meta")) < 0 ||
        get_int(&c, "release", member(root, "release"), 0, INT64_MAX / 2, &p->release) < 0)
        goto out;
    for (int t = 0; t < QPOL_NTABLES; t++)
        if (fill_table(p, &c, (qpol_table)t, table_keys[t], member(root, table_keys[t]), true) < 0)
            goto out;
    if (fill_excludes(p, &c, member(root, "excludes")) < 0 ||
        fill_ima(p, &c, member(root, "ima"), false) < 0 ||
        fill_vkeys(p, &c, member(root, "verification-keys")) < 0)
        goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

static qpolicy *new_policy(size_t len, qerr *err)
{
    qpolicy *p = qpol_alloc(err);
    if (p && reserve_for(p, len, err) < 0) {
        qpolicy_free(p);
        return NULL;
    }
    return p;
}

qpolicy *qpolicy_from_json(const char *text, size_t len, const char *src, qerr *err)
{
    (void)src;
    /* The quick way first: the tables straight from the text, the rest of the document (with
     * "{}" for the tables) through cJSON (policy_json_fast.c). When it gives up or that rest
     * does not pass, the whole text goes through cJSON, which words every error. */
    if (text && len > 0 && len <= QPOLICY_MAX_SIZE) {
        qerr quiet = { 0 };
        char *skel = NULL;
        size_t skel_len = 0;
        qpolicy *p = new_policy(len, &quiet);
        if (p && qpol_fast_tables(p, text, len, &skel, &skel_len) == 0 &&
            load_doc(p, skel, skel_len, &quiet) == 0) {
            free(skel);
            return p;
        }
        free(skel);
        qpolicy_free(p);
    }
    return qpol_from_json_cjson(text, len, err);
}

qpolicy *qpol_from_json_cjson(const char *text, size_t len, qerr *err)
{
    ctx_t c = { .prefix = RT_PREFIX, .err = err };
    if (!text || len == 0 || len > QPOLICY_MAX_SIZE) {
        (void)parse(text, len, &c);   /* NULL: it words the error */
        return NULL;
    }
    qpolicy *p = new_policy(len, err);
    if (!p)
        return NULL;
    if (load_doc(p, text, len, err) < 0) {
        qpolicy_free(p);
        return NULL;
    }
    return p;
}

qpolicy *qpol_from_legacy_json(const char *text, size_t len, const char *src, qerr *err)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s: ", src);
    ctx_t c = { .prefix = prefix, .err = err };
    cJSON *root = parse(text, len, &c);
    if (!root)
        return NULL;
    qpolicy *p = NULL;
    if (!cJSON_IsObject(root)) {
        fail_type(&c, NULL, root, "object");
        goto fail;
    }
    if (member(root, "digests")) {
        fail_at(&c, NULL, "has 'digests': a runtime policy, not a JSON allowlist");
        goto fail;
    }
    const cJSON *hashes = member(root, "hashes");
    if (!hashes) {
        fail_at(&c, NULL, "JSON allowlist without a 'hashes' object");
        goto fail;
    }
    p = qpol_alloc(err);
    if (!p || reserve_for(p, len, err) < 0)
        goto fail;
    p->generator = 3;
    if (qpol_set_timestamp_now(p, err) < 0 ||
        fill_table(p, &c, QPOL_DIGESTS, "hashes", hashes, false) < 0)
        goto fail;
    const cJSON *v;
    if (truthy(v = member(root, "keyrings")) &&
        fill_table(p, &c, QPOL_KEYRINGS, "keyrings", v, false) < 0)
        goto fail;
    if (truthy(v = member(root, "ima-buf")) &&
        fill_table(p, &c, QPOL_IMABUF, "ima-buf", v, false) < 0)
        goto fail;
    if (truthy(v = member(root, "excludes")) && fill_excludes(p, &c, v) < 0)
        goto fail;
    if (truthy(v = member(root, "ima")) && fill_ima(p, &c, v, true) < 0)
        goto fail;
    if (truthy(v = member(root, "verification-keys")) && fill_vkeys(p, &c, v) < 0)
        goto fail;
    if (truthy(v = member(root, "release")) &&
        get_int(&c, "release", v, 0, INT64_MAX / 2, &p->release) < 0)
        goto fail;
    cJSON_Delete(root);
    return p;
fail:
    qpolicy_free(p);
    cJSON_Delete(root);
    return NULL;
}
