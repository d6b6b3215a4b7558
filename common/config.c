/* config.c — INI reader (see config.h).
 * Format details beyond the header: a line is "[section]", "key = value", a comment ('#' or ';'
 * as the first non-blank character) or blank; there are no inline comments (a '#' inside a
 * value is part of it) and no continuation lines. Section and key names are
 * [A-Za-z0-9_.-]+ and are matched without regard to case. A key given twice in one section
 * keeps the last value; a section given twice is merged. Every returned string lives until
 * qconfig_free, including values replaced by qconfig_set and values read from the
 * environment (copied into the config). Typed getters treat an empty value as absent. */
#include "config.h"
#include "buf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QCONFIG_LINE_MAX    8192          /* bytes per line, newline excluded */
#define QCONFIG_FILE_MAX    (1u << 20)    /* 1 MiB */
#define QCONFIG_NAME_MAX    128           /* section and key names */
#define QCONFIG_VALUE_MAX   QCONFIG_LINE_MAX
#define QCONFIG_MAX_VALUES  4096          /* live + replaced values, parsed or set (lookups are linear) */
#define QCONFIG_ENV_CACHE   256           /* distinct environment values kept per config */

typedef struct qc_val {          /* one value; replaced ones are kept on a list until free */
    struct qc_val *next;
    char text[];
} qc_val;

typedef struct qc_entry {
    char section[QCONFIG_NAME_MAX + 1];
    char key[QCONFIG_NAME_MAX + 1];
    unsigned long line;          /* line in the file, 0 when set in memory */
    qc_val *value;
} qc_entry;

typedef struct qc_sec {          /* a "[section]" header as written, for the strict check */
    char name[QCONFIG_NAME_MAX + 1];
    unsigned long line;
} qc_sec;

typedef struct qc_eff {          /* one looked-up value as used (trace on): --check-config */
    struct qc_eff *next;
    char section[QCONFIG_NAME_MAX + 1];
    char key[QCONFIG_NAME_MAX + 1];
    qconfig_source src;
    char text[];
} qc_eff;

typedef struct qc_env {          /* a copy of an environment value */
    struct qc_env *next;
    char name[QCONFIG_NAME_MAX * 2 + 16];
    char text[];
} qc_env;

struct qconfig {
    char *path;                  /* file read, or NULL */
    char *name;                  /* the name given to qconfig_parse, for messages */
    qc_entry *ents;
    size_t n, cap;
    qc_sec *secs;
    size_t nsecs, capsecs;
    bool trace;                  /* record effective values (guarded by env_lock) */
    qc_eff *eff, *eff_tail;
    size_t neff;
    size_t values;               /* values allocated so far (bounded) */
    qc_val *retired;             /* replaced values, freed with the config */
    pthread_mutex_t env_lock;    /* guards env/env_count (lookups may run on many threads) */
    qc_env *env;
    size_t env_count;
};

static qconfig *qc_new(void)
{
    qconfig *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->env_lock, NULL);
    return c;
}

static void free_vals(qc_val *v)
{
    while (v) {
        qc_val *next = v->next;
        free(v);
        v = next;
    }
}

static void free_envs(qc_env *v)
{
    while (v) {
        qc_env *next = v->next;
        free(v);
        v = next;
    }
}

void qconfig_free(qconfig *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->ents[i].value);
    free(c->ents);
    free(c->secs);
    while (c->eff) {
        qc_eff *next = c->eff->next;
        free(c->eff);
        c->eff = next;
    }
    free_vals(c->retired);
    free_envs(c->env);
    pthread_mutex_destroy(&c->env_lock);
    free(c->path);
    free(c->name);
    free(c);
}

const char *qconfig_path(const qconfig *c)
{
    return c ? c->path : NULL;
}

const char *qconfig_name(const qconfig *c)
{
    return !c ? "<config>" : c->path ? c->path : c->name ? c->name : "<config>";
}

static bool name_char(unsigned char ch)
{
    return isalnum(ch) || ch == '_' || ch == '-' || ch == '.';
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > QCONFIG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)s[i]))
            return false;
    return true;
}

static qc_entry *find(const qconfig *c, const char *section, const char *key)
{
    for (size_t i = c->n; i-- > 0;)
        if (strcasecmp(c->ents[i].section, section) == 0 && strcasecmp(c->ents[i].key, key) == 0)
            return &c->ents[i];
    return NULL;
}

/* Store (section, key) = value[0..vlen). Names already validated. 0, or -1 on limits/memory. */
static int put(qconfig *c, const char *section, size_t slen, const char *key, size_t klen,
               const char *value, size_t vlen, bool keep_old, unsigned long line)
{
    if (c->values >= QCONFIG_MAX_VALUES || vlen > QCONFIG_VALUE_MAX)
        return -1;
    char sec[QCONFIG_NAME_MAX + 1], k[QCONFIG_NAME_MAX + 1];
    memcpy(sec, section, slen);
    sec[slen] = '\0';
    memcpy(k, key, klen);
    k[klen] = '\0';
    qc_val *v = malloc(sizeof *v + vlen + 1);
    if (!v)
        return -1;
    v->next = NULL;
    memcpy(v->text, value, vlen);
    v->text[vlen] = '\0';

    qc_entry *e = find(c, sec, k);
    if (e) {
        if (keep_old) {
            /* Earlier qconfig_get results must stay valid: keep the old value until free. */
            e->value->next = c->retired;
            c->retired = e->value;
        } else {
            free(e->value);
        }
        e->value = v;
        e->line = line;
        c->values++;
        return 0;
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        qc_entry *p = realloc(c->ents, ncap * sizeof *p);
        if (!p) {
            free(v);
            return -1;
        }
        c->ents = p;
        c->cap = ncap;
    }
    e = &c->ents[c->n++];
    memcpy(e->section, sec, slen + 1);
    memcpy(e->key, k, klen + 1);
    e->line = line;
    e->value = v;
    c->values++;
    return 0;
}

/* Remember a section header (first occurrence only; bounded like the values). */
static int add_section(qconfig *c, const char *name, unsigned long line)
{
    for (size_t i = 0; i < c->nsecs; i++)
        if (strcasecmp(c->secs[i].name, name) == 0)
            return 0;
    if (c->nsecs >= QCONFIG_MAX_VALUES)
        return -1;
    if (c->nsecs == c->capsecs) {
        size_t ncap = c->capsecs ? c->capsecs * 2 : 8;
        qc_sec *p = realloc(c->secs, ncap * sizeof *p);
        if (!p)
            return -1;
        c->secs = p;
        c->capsecs = ncap;
    }
    snprintf(c->secs[c->nsecs].name, sizeof c->secs[0].name, "%s", name);
    c->secs[c->nsecs++].line = line;
    return 0;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_blank(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_blank((*s)[*n - 1]))
        (*n)--;
}

/* One logical line; 0, or -1 with "name:lineno: reason". */
static int parse_line(qconfig *c, const char *line, size_t n, char *section, size_t *slen,
                      const char *name, unsigned long lineno, qerr *err)
{
    trim(&line, &n);
    if (n == 0 || line[0] == '#' || line[0] == ';')
        return 0;
    if (line[0] == '[') {
        if (line[n - 1] != ']')
            return qerr_set(err, "%s:%lu: malformed section header (no closing ']')", name, lineno);
        const char *s = line + 1;
        size_t sn = n - 2;
        trim(&s, &sn);
        if (!valid_name(s, sn))
            return qerr_set(err, "%s:%lu: bad section name (want 1-%d of A-Z a-z 0-9 _ . -)", name,
                            lineno, QCONFIG_NAME_MAX);
        memcpy(section, s, sn);
        section[sn] = '\0';
        *slen = sn;
        if (add_section(c, section, lineno) < 0)
            return qerr_set(err, "%s:%lu: out of memory", name, lineno);
        return 0;
    }
    const char *eq = memchr(line, '=', n);
    if (!eq)
        return qerr_set(err, "%s:%lu: malformed line (expected \"key = value\", \"[section]\" or a comment)",
                        name, lineno);
    const char *k = line;
    size_t kn = (size_t)(eq - line);
    trim(&k, &kn);
    if (!valid_name(k, kn))
        return qerr_set(err, "%s:%lu: bad key name (want 1-%d of A-Z a-z 0-9 _ . -)", name, lineno,
                        QCONFIG_NAME_MAX);
    if (*slen == 0)
        return qerr_set(err, "%s:%lu: key \"%.*s\" before any [section]", name, lineno, (int)kn, k);
    const char *v = eq + 1;
    size_t vn = n - (size_t)(v - line);
    trim(&v, &vn);
    if (vn > 0 && v[0] == '"') {
        if (vn < 2 || v[vn - 1] != '"')
            return qerr_set(err, "%s:%lu: unterminated quoted value", name, lineno);
        v++;
        vn -= 2;
    }
    if (put(c, section, *slen, k, kn, v, vn, false, lineno) < 0)
        return qerr_set(err, "%s:%lu: more than %d values, or out of memory", name, lineno, QCONFIG_MAX_VALUES);
    return 0;
}

static int parse_into(qconfig *c, const char *text, size_t len, const char *name, qerr *err)
{
    if (len > QCONFIG_FILE_MAX)
        return qerr_set(err, "%s: larger than %u bytes", name, QCONFIG_FILE_MAX);
    if (len > 0 && !text)
        return qerr_set(err, "%s: no text", name);
    char section[QCONFIG_NAME_MAX + 1] = "";
    size_t slen = 0;
    unsigned long lineno = 0;
    size_t off = 0;
    while (off < len) {
        lineno++;
        const char *line = text + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t n = nl ? (size_t)(nl - line) : len - off;
        off += n + (nl ? 1 : 0);
        if (n > QCONFIG_LINE_MAX)
            return qerr_set(err, "%s:%lu: line longer than %d bytes", name, lineno, QCONFIG_LINE_MAX);
        if (memchr(line, '\0', n))
            return qerr_set(err, "%s:%lu: NUL byte in line", name, lineno);
        if (parse_line(c, line, n, section, &slen, name, lineno, err) < 0)
            return -1;
    }
    return 0;
}

qconfig *qconfig_parse(const char *text, size_t len, const char *name, qerr *err)
{
    qconfig *c = qc_new();
    if (!c) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    if (name && !(c->name = strdup(name))) {
        qconfig_free(c);
        qerr_set(err, "out of memory");
        return NULL;
    }
    if (parse_into(c, text, len, name ? name : "<config>", err) < 0) {
        qconfig_free(c);
        return NULL;
    }
    return c;
}

qconfig *qconfig_load(const char *path, qerr *err)
{
    bool explicit_path = true;
    if (!path || !path[0]) {
        const char *envp = getenv("QUINCE_CONFIG");
        if (envp && envp[0]) {
            path = envp;
        } else {
            path = QCONFIG_DEFAULT_PATH;
            explicit_path = false;
        }
    }
    qbuf b;
    qbuf_init(&b, 0);
    if (qbuf_read_file(&b, path, QCONFIG_FILE_MAX) < 0) {
        int e = errno;
        qbuf_free(&b);
        if (!explicit_path && e == ENOENT) {
            qconfig *c = qc_new();
            if (!c)
                qerr_set(err, "out of memory");
            return c;
        }
        if (e == EFBIG)
            qerr_set(err, "%s: larger than %u bytes", path, QCONFIG_FILE_MAX);
        else
            qerr_set(err, "%s: %s", path, strerror(e));
        return NULL;
    }
    qconfig *c = qc_new();
    char *p = strdup(path);
    if (!c || !p) {
        free(p);
        qconfig_free(c);
        qbuf_free(&b);
        qerr_set(err, "out of memory");
        return NULL;
    }
    c->path = p;
    int rc = parse_into(c, (const char *)b.data, b.len, path, err);
    qbuf_free(&b);
    if (rc < 0) {
        qconfig_free(c);
        return NULL;
    }
    return c;
}

/* QUINCE_<SECTION>_<KEY>, upper case, '-' and '.' → '_'. false if the names do not fit. */
static bool env_name(const char *section, const char *key, char *out, size_t cap)
{
    size_t sl = strlen(section), kl = strlen(key);
    if (sl > QCONFIG_NAME_MAX || kl > QCONFIG_NAME_MAX || 7 + sl + 1 + kl + 1 > cap)
        return false;
    size_t o = 0;
    memcpy(out, "QUINCE_", 7);
    o = 7;
    for (size_t i = 0; i < sl; i++)
        out[o++] = section[i] == '-' || section[i] == '.' ? '_' : (char)toupper((unsigned char)section[i]);
    out[o++] = '_';
    for (size_t i = 0; i < kl; i++)
        out[o++] = key[i] == '-' || key[i] == '.' ? '_' : (char)toupper((unsigned char)key[i]);
    out[o] = '\0';
    return true;
}

/* The environment's value, copied into the config so the pointer outlives later setenv calls. */
static const char *env_value(const qconfig *cc, const char *var)
{
    const char *v = getenv(var);
    if (!v)
        return NULL;
    if (!cc)
        return v;
    qconfig *c = (qconfig *)cc;   /* the cache is internal state, not the config's content */
    const char *res = v;
    pthread_mutex_lock(&c->env_lock);
    qc_env *s;
    for (s = c->env; s; s = s->next)
        if (strcmp(s->name, var) == 0 && strcmp(s->text, v) == 0)
            break;
    if (s) {
        res = s->text;
    } else if (c->env_count < QCONFIG_ENV_CACHE && strnlen(v, QCONFIG_VALUE_MAX + 1) <= QCONFIG_VALUE_MAX) {
        size_t vl = strlen(v);
        qc_env *n = malloc(sizeof *n + vl + 1);
        if (n) {
            snprintf(n->name, sizeof n->name, "%s", var);
            memcpy(n->text, v, vl);
            n->text[vl] = '\0';
            n->next = c->env;
            c->env = n;
            c->env_count++;
            res = n->text;
        }
    }
    pthread_mutex_unlock(&c->env_lock);
    return res;
}

/* Value and where it came from (the environment variable's name, or "" for the file). */
static const char *lookup(const qconfig *c, const char *section, const char *key, char *var, size_t cap)
{
    var[0] = '\0';
    if (!section || !key)
        return NULL;
    char name[QCONFIG_NAME_MAX * 2 + 16];
    if (env_name(section, key, name, sizeof name)) {
        const char *v = env_value(c, name);
        if (v) {
            snprintf(var, cap, "%s", name);
            return v;
        }
    }
    if (!c)
        return NULL;
    qc_entry *e = find(c, section, key);
    return e ? e->value->text : NULL;
}

/* With the trace on, remember the value a program used (first lookup of a key wins). */
static void note(const qconfig *cc, const char *section, const char *key, const char *text, const char *var,
                 bool found)
{
    if (!cc || !cc->trace || !section || !key)
        return;
    qconfig *c = (qconfig *)cc;   /* the trace is internal state, not the config's content */
    if (!text)
        text = "";
    size_t tl = strnlen(text, QCONFIG_VALUE_MAX);
    pthread_mutex_lock(&c->env_lock);
    bool seen = false;
    for (qc_eff *e = c->eff; e && !seen; e = e->next)
        seen = strcasecmp(e->section, section) == 0 && strcasecmp(e->key, key) == 0;
    qc_eff *n = seen || c->neff >= QCONFIG_MAX_VALUES ? NULL : malloc(sizeof *n + tl + 1);
    if (n) {
        n->next = NULL;
        snprintf(n->section, sizeof n->section, "%s", section);
        snprintf(n->key, sizeof n->key, "%s", key);
        n->src = var[0] ? QCONFIG_SRC_ENV : found ? QCONFIG_SRC_FILE : QCONFIG_SRC_DEFAULT;
        memcpy(n->text, text, tl);
        n->text[tl] = '\0';
        if (c->eff_tail)
            c->eff_tail->next = n;
        else
            c->eff = n;
        c->eff_tail = n;
        c->neff++;
    }
    pthread_mutex_unlock(&c->env_lock);
}

void qconfig_trace(qconfig *c, bool on)
{
    if (c)
        c->trace = on;
}

size_t qconfig_used_count(const qconfig *c)
{
    return c ? c->neff : 0;
}

int qconfig_used(const qconfig *c, size_t i, const char **section, const char **key, const char **value,
                 qconfig_source *src)
{
    const qc_eff *e = c ? c->eff : NULL;
    for (; e && i > 0; i--)
        e = e->next;
    if (!e)
        return -1;
    *section = e->section;
    *key = e->key;
    *value = e->text;
    *src = e->src;
    return 0;
}

size_t qconfig_entry_count(const qconfig *c)
{
    return c ? c->n : 0;
}

int qconfig_entry(const qconfig *c, size_t i, const char **section, const char **key, unsigned long *line)
{
    if (!c || i >= c->n)
        return -1;
    *section = c->ents[i].section;
    *key = c->ents[i].key;
    *line = c->ents[i].line;
    return 0;
}

size_t qconfig_section_count(const qconfig *c)
{
    return c ? c->nsecs : 0;
}

int qconfig_section(const qconfig *c, size_t i, const char **name, unsigned long *line)
{
    if (!c || i >= c->nsecs)
        return -1;
    *name = c->secs[i].name;
    *line = c->secs[i].line;
    return 0;
}

const char *qconfig_get(const qconfig *c, const char *section, const char *key)
{
    char var[QCONFIG_NAME_MAX * 2 + 16];
    const char *v = lookup(c, section, key, var, sizeof var);
    note(c, section, key, v, var, v != NULL);
    return v;
}

const char *qconfig_str(const qconfig *c, const char *section, const char *key, const char *def)
{
    char var[QCONFIG_NAME_MAX * 2 + 16];
    const char *v = lookup(c, section, key, var, sizeof var);
    note(c, section, key, v ? v : def, var, v != NULL);
    return v ? v : def;
}

/* "[section] key" or "QUINCE_SECTION_KEY" for messages. */
static void origin(char *out, size_t cap, const char *section, const char *key, const char *var)
{
    if (var[0])
        snprintf(out, cap, "%s (environment)", var);
    else
        snprintf(out, cap, "[%s] %s", section, key);
}

/* Copy value without surrounding blanks; false when it does not fit. */
static bool trimmed_copy(const char *v, char *out, size_t cap)
{
    size_t n = strlen(v);
    trim(&v, &n);
    if (n >= cap)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

int qconfig_long(const qconfig *c, const char *section, const char *key, long def, long min, long max,
                 long *out, qerr *err)
{
    char var[QCONFIG_NAME_MAX * 2 + 16], where[QCONFIG_NAME_MAX * 2 + 32], buf[64];
    const char *v = lookup(c, section, key, var, sizeof var);
    if (!v || !v[0] || (trimmed_copy(v, buf, sizeof buf) && !buf[0])) {
        *out = def;
        snprintf(buf, sizeof buf, "%ld", def);
        note(c, section, key, buf, var, false);
        return 0;
    }
    origin(where, sizeof where, section, key, var);
    if (!trimmed_copy(v, buf, sizeof buf))
        return qerr_set(err, "%s: value too long for an integer", where);
    char *end;
    errno = 0;
    long x = strtol(buf, &end, 10);
    if (end == buf || *end != '\0')
        return qerr_set(err, "%s: \"%s\" is not an integer", where, buf);
    if (errno == ERANGE || x < min || x > max)
        return qerr_set(err, "%s: %s is out of range %ld..%ld", where, buf, min, max);
    *out = x;
    note(c, section, key, buf, var, true);
    return 0;
}

int qconfig_double(const qconfig *c, const char *section, const char *key, double def, double min,
                   double max, double *out, qerr *err)
{
    char var[QCONFIG_NAME_MAX * 2 + 16], where[QCONFIG_NAME_MAX * 2 + 32], buf[64];
    const char *v = lookup(c, section, key, var, sizeof var);
    if (!v || !v[0] || (trimmed_copy(v, buf, sizeof buf) && !buf[0])) {
        *out = def;
        snprintf(buf, sizeof buf, "%g", def);
        note(c, section, key, buf, var, false);
        return 0;
    }
    origin(where, sizeof where, section, key, var);
    if (!trimmed_copy(v, buf, sizeof buf))
        return qerr_set(err, "%s: value too long for a number", where);
    char *end;
    errno = 0;
    double x = strtod(buf, &end);
    if (end == buf || *end != '\0' || !isfinite(x))
        return qerr_set(err, "%s: \"%s\" is not a number", where, buf);
    if (errno == ERANGE || x < min || x > max)
        return qerr_set(err, "%s: %s is out of range %g..%g", where, buf, min, max);
    *out = x;
    note(c, section, key, buf, var, true);
    return 0;
}

int qconfig_bool(const qconfig *c, const char *section, const char *key, bool def, bool *out, qerr *err)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    char var[QCONFIG_NAME_MAX * 2 + 16], where[QCONFIG_NAME_MAX * 2 + 32], buf[16];
    const char *v = lookup(c, section, key, var, sizeof var);
    if (!v || !v[0] || (trimmed_copy(v, buf, sizeof buf) && !buf[0])) {
        *out = def;
        note(c, section, key, def ? "true" : "false", var, false);
        return 0;
    }
    origin(where, sizeof where, section, key, var);
    if (trimmed_copy(v, buf, sizeof buf)) {
        for (size_t i = 0; i < 4; i++) {
            if (strcasecmp(buf, yes[i]) == 0) {
                *out = true;
                note(c, section, key, "true", var, true);
                return 0;
            }
            if (strcasecmp(buf, no[i]) == 0) {
                *out = false;
                note(c, section, key, "false", var, true);
                return 0;
            }
        }
    }
    return qerr_set(err, "%s: \"%.40s\" is not a boolean (true/false, yes/no, on/off, 1/0)", where, v);
}

int qconfig_set(qconfig *c, const char *section, const char *key, const char *value)
{
    if (!c || !section || !key || !value)
        return -1;
    size_t sl = strlen(section), kl = strlen(key);
    if (!valid_name(section, sl) || !valid_name(key, kl))
        return -1;
    size_t vl = strnlen(value, QCONFIG_VALUE_MAX + 1);
    if (vl > QCONFIG_VALUE_MAX || memchr(value, '\n', vl))
        return -1;
    return put(c, section, sl, key, kl, value, vl, true, 0);
}
