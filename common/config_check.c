/* config_check.c — the strict check and --check-config printer (see config_check.h). */
#include "config_check.h"
#include "config_keys.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

extern char **environ;

#define NAME_MAX_LEN 128

unsigned qconfig_edit_distance(const char *a, const char *b, unsigned cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
        return cap + 1;
    if ((la > lb ? la - lb : lb - la) > cap)
        return cap + 1;
    unsigned row[NAME_MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            unsigned best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > cap ? cap + 1 : row[lb];
}

/* The closest known section name within distance 2, or NULL. */
static const char *near_section(const char *name)
{
    const char *best = NULL;
    unsigned bd = 3;
    for (const qconfig_section_def *s = qconfig_known; s->name; s++) {
        unsigned d = qconfig_edit_distance(name, s->name, 2);
        if (d < bd) {
            bd = d;
            best = s->name;
        }
    }
    return best;
}

/* The closest known key within distance 2: first in `sec`, then in any section (*where set). */
static const char *near_key(const qconfig_section_def *sec, const char *key, const char **where)
{
    const char *best = NULL;
    unsigned bd = 3;
    *where = NULL;
    for (const qconfig_key *k = sec->keys; k->name; k++) {
        unsigned d = qconfig_edit_distance(key, k->name, 2);
        if (d < bd) {
            bd = d;
            best = k->name;
        }
    }
    if (best)
        return best;
    for (const qconfig_section_def *s = qconfig_known; s->name; s++)
        for (const qconfig_key *k = s->keys; k->name; k++)
            if (strcasecmp(key, k->name) == 0) {
                *where = s->name;
                return k->name;
            }
    return NULL;
}

static int key_error(const char *loc, const char *sec_name, const qconfig_section_def *sec, const char *key,
                     qerr *err)
{
    const char *other;
    const char *hint = near_key(sec, key, &other);
    if (hint && other)
        return qerr_set(err, "%s: unknown key \"%s\" in [%s] (it belongs in [%s])", loc, key, sec_name, other);
    if (hint)
        return qerr_set(err, "%s: unknown key \"%s\" in [%s] (did you mean \"%s\"?)", loc, key, sec_name, hint);
    return qerr_set(err, "%s: unknown key \"%s\" in [%s] (see docs/configuration.md for the keys)", loc, key,
                    sec_name);
}

static int section_error(const char *loc, const char *name, qerr *err)
{
    const char *hint = near_section(name);
    if (hint)
        return qerr_set(err, "%s: unknown section [%s] (did you mean [%s]?)", loc, name, hint);
    return qerr_set(err, "%s: unknown section [%s] (known: agent, verifier, registrar, tenant, and the others "
                         "in docs/configuration.md)", loc, name);
}

static int check_file(const qconfig *c, qerr *err)
{
    const char *file = qconfig_name(c);
    char loc[1200];
    const char *name, *key;
    unsigned long line;
    for (size_t i = 0; qconfig_section(c, i, &name, &line) == 0; i++) {
        if (qconfig_known_section(name))
            continue;
        snprintf(loc, sizeof loc, "%s:%lu", file, line);
        return section_error(loc, name, err);
    }
    for (size_t i = 0; qconfig_entry(c, i, &name, &key, &line) == 0; i++) {
        const qconfig_section_def *s = qconfig_known_section(name);
        if (line)
            snprintf(loc, sizeof loc, "%s:%lu", file, line);
        else
            snprintf(loc, sizeof loc, "%s", file);
        if (!s)
            return section_error(loc, name, err);
        if (!qconfig_known_key(s, key))
            return key_error(loc, s->name, s, key, err);
    }
    return 0;
}

/* "QUINCE_" + upper-cased name with '-' and '.' as '_' equals var[0..n)? */
static bool env_form_eq(const char *name, const char *var, size_t n)
{
    size_t l = strlen(name);
    if (l != n)
        return false;
    for (size_t i = 0; i < l; i++) {
        char ch = name[i] == '-' || name[i] == '.' ? '_' : (char)toupper((unsigned char)name[i]);
        if (ch != var[i])
            return false;
    }
    return true;
}

static int check_env_var(const char *entry, qerr *err)
{
    const char *eq = strchr(entry, '=');
    size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
    if (n < 8 || strncmp(entry, "QUINCE_", 7) != 0 || n > 2 * NAME_MAX_LEN + 8)
        return 0;
    char var[2 * NAME_MAX_LEN + 16];
    memcpy(var, entry, n);
    var[n] = '\0';
    const char *rest = var + 7;
    if (strcmp(rest, "CONFIG") == 0)
        return 0;
    /* The longest section whose name starts the variable. */
    const qconfig_section_def *sec = NULL;
    size_t slen = 0;
    for (const qconfig_section_def *s = qconfig_known; s->name; s++) {
        size_t l = strlen(s->name);
        if (l > slen && strlen(rest) > l && rest[l] == '_' && env_form_eq(s->name, rest, l)) {
            sec = s;
            slen = l;
        }
    }
    if (!sec) {
        char first[NAME_MAX_LEN + 1];
        size_t fl = strcspn(rest, "_");
        if (fl == 0 || fl > NAME_MAX_LEN || rest[fl] != '_')
            return 0;
        memcpy(first, rest, fl);
        first[fl] = '\0';
        const char *hint = near_section(first);
        if (!hint)
            return 0;   /* not configuration (QUINCE_TMP, QUINCE_BUILD, ...) */
        char up[NAME_MAX_LEN + 1];
        size_t hl = strlen(hint) < NAME_MAX_LEN ? strlen(hint) : NAME_MAX_LEN;
        for (size_t i = 0; i < hl; i++)
            up[i] = (char)toupper((unsigned char)hint[i]);
        up[hl] = '\0';
        return qerr_set(err, "environment variable %s: unknown section \"%s\" (did you mean QUINCE_%s_...?)", var,
                        first, up);
    }
    const char *key = rest + slen + 1;
    for (const qconfig_key *k = sec->keys; k->name; k++)
        if (env_form_eq(k->name, key, strlen(key)))
            return 0;
    char lower[NAME_MAX_LEN + 1];
    size_t kl = strlen(key);
    if (kl > NAME_MAX_LEN)
        kl = NAME_MAX_LEN;
    for (size_t i = 0; i < kl; i++)
        lower[i] = (char)tolower((unsigned char)key[i]);
    lower[kl] = '\0';
    char loc[2 * NAME_MAX_LEN + 48];
    snprintf(loc, sizeof loc, "environment variable %s", var);
    return key_error(loc, sec->name, sec, lower, err);
}

static int check_env(qerr *err)
{
    for (char **e = environ; e && *e; e++)
        if (check_env_var(*e, err) < 0)
            return -1;
    return 0;
}

int qconfig_check(const qconfig *c, qerr *err)
{
    if (c && check_file(c, err) < 0)
        return -1;
    return check_env(err);
}

qconfig *qconfig_load_strict(const char *path, qerr *err)
{
    qconfig *c = qconfig_load(path, err);
    if (c && qconfig_check(c, err) < 0) {
        qconfig_free(c);
        return NULL;
    }
    return c;
}

static bool secret_name(const char *section, const char *key)
{
    const qconfig_key *k = qconfig_known_key(qconfig_known_section(section), key);
    if (k && (k->flags & QCK_SECRET))
        return true;
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "token");
}

/* A value fit to print: secrets as "********", "user:pass@" in a URL as "***@". */
static void printable(const char *section, const char *key, const char *v, char *out, size_t cap)
{
    if (secret_name(section, key) && v[0]) {
        snprintf(out, cap, "********");
        return;
    }
    const char *scheme = strstr(v, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
    if (at && (!slash || at < slash)) {
        snprintf(out, cap, "%.*s***%s", (int)(scheme + 3 - v), v, at);
        return;
    }
    snprintf(out, cap, "%s", v);
}

void qconfig_print_effective(const qconfig *c, FILE *f)
{
    static const char *const src_name[] = {"default", "file", "environment"};
    fprintf(f, "# configuration file: %s\n", c && qconfig_path(c) ? qconfig_path(c) : "(none, built-in defaults)");
    for (const qconfig_section_def *s = qconfig_known; s->name; s++) {
        bool header = false;
        const char *sec, *key, *val;
        qconfig_source src;
        for (size_t i = 0; qconfig_used(c, i, &sec, &key, &val, &src) == 0; i++) {
            if (strcasecmp(sec, s->name) != 0)
                continue;
            if (!header) {
                fprintf(f, "\n[%s]\n", s->name);
                header = true;
            }
            char shown[8300];
            printable(sec, key, val, shown, sizeof shown);
            fprintf(f, "%s = %s    # %s\n", key, shown, src_name[src]);
        }
    }
}
