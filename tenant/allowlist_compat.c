/* allowlist_compat.c — create_allowlist.sh / create_runtime_policy.sh command lines for
 * `quince-tenant create-allowlist` (keylime-formats §7): their options are rewritten into
 * create-allowlist's own before option parsing, and when that syntax names no input at all the
 * scripts' defaults (/, /boot/initr*, the live IMA log) are filled in. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allowlist_compat.h"

#define LIVE_IMA_LOG "/sys/kernel/security/ima/ascii_runtime_measurements"

/* "sha256sum" / "sha256" → "sha256" (static), else NULL. */
static const char *alg_name(const char *s)
{
    static const char *const names[] = { "sha1", "sha256", "sha384", "sha512" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if (strncmp(s, names[i], n) == 0 && (s[n] == '\0' || strcmp(s + n, "sum") == 0))
            return names[i];
    }
    return NULL;
}

static int push(qal_compat *c, const char *s, bool owned)
{
    if (c->argc + 2 > c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 32;
        char **a = realloc(c->argv, nc * sizeof *a);
        bool *o = realloc(c->owned, nc * sizeof *o);
        if (a)
            c->argv = a;
        if (o)
            c->owned = o;
        if (!a || !o) {
            if (owned)
                free((char *)s);
            return -1;
        }
        c->cap = nc;
    }
    c->owned[c->argc] = owned;
    c->argv[c->argc++] = (char *)s;
    c->argv[c->argc] = NULL;
    return 0;
}

static int push2(qal_compat *c, const char *opt, const char *val)
{
    return push(c, opt, false) < 0 || push(c, val, false) < 0 ? -1 : 0;
}

/* --initramfs for each DIR/initr* (sorted). */
static int ramdisks(qal_compat *c, const char *dir, qerr *err)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0)
        return qerr_set(err, "ramdisk location %s: %m", dir);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char *p = NULL;
        if (rc == 0 && strncmp(ents[i]->d_name, "initr", 5) == 0) {
            if (asprintf(&p, "%s/%s", dir, ents[i]->d_name) < 0 || push(c, "--initramfs", false) < 0 ||
                push(c, p, true) < 0)
                rc = qerr_set(err, "out of memory");
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

static bool is(const char *a, const char *s, const char *l)
{
    return strcmp(a, s) == 0 || strcmp(a, l) == 0;
}

int qal_compat_args(int argc, char **argv, qal_compat *c, qerr *err)
{
    memset(c, 0, sizeof *c);
    bool x = false, y = false, z = false, own_input = false;
    if (push(c, argv[0], false) < 0)
        return qerr_set(err, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *alg;
        int rc = 0;
        if (strcmp(a, "-h") == 0 && v && (alg = alg_name(v))) {
            rc = push2(c, "--hash-alg", alg);
            c->legacy = true;
            i++;
        } else if (is(a, "-a", "--algo") && v) {
            if (!(alg = alg_name(v)))
                return qerr_set(err, "unknown algorithm '%s' (sha1sum, sha256sum, sha384sum or sha512sum)", v);
            rc = push2(c, "--hash-alg", alg);
            c->legacy = true;
            i++;
        } else if (strcmp(a, "--output_file") == 0 && v) {
            rc = push2(c, "-o", v);
            i++;
        } else if (is(a, "-x", "--ramdisk-location") && v) {
            x = c->legacy = true;
            rc = strcmp(v, "none") ? ramdisks(c, v, err) : 0;
            if (rc)
                return -1;
            i++;
        } else if (is(a, "-y", "--boot_aggregate-location") && v) {
            y = c->legacy = true;
            rc = strcmp(v, "none") ? push2(c, "--ima-log", v) : 0;
            i++;
        } else if (is(a, "-z", "--rootfs-location") && v) {
            z = c->legacy = true;
            rc = strcmp(v, "none") ? push2(c, "--rootfs", v) : 0;
            i++;
        } else if (is(a, "-s", "--skip-path") && v) {
            c->legacy = true;
            for (const char *p = v; *p;) {
                size_t n = strcspn(p, ",");
                if (n) {
                    char *one = strndup(p, n);
                    if (!one || push(c, "--skip", false) < 0 || push(c, one, true) < 0)
                        return qerr_set(err, "out of memory");
                }
                p += n + (p[n] == ',');
            }
            i++;
        } else if (is(a, "-e", "--exclude_list")) {
            return qerr_set(err, "%s: excludes go into a runtime policy: use create-policy -e FILE", a);
        } else {
            if (!strcmp(a, "--rootfs") || !strcmp(a, "--initramfs") || !strcmp(a, "--ima-log") ||
                !strcmp(a, "--boot-aggregate") || !strncmp(a, "--rootfs=", 9) || !strncmp(a, "--initramfs=", 12))
                own_input = true;
            rc = push(c, a, false);
        }
        if (rc)
            return qerr_set(err, "out of memory");
    }
    if (c->legacy && !own_input) {
        int rc = 0;
        if (!z)
            rc = push2(c, "--rootfs", "/");
        if (rc == 0 && !x && access("/boot", R_OK) == 0)
            rc = ramdisks(c, "/boot", err);
        if (rc == 0 && !y && access(LIVE_IMA_LOG, R_OK) == 0)
            rc = push2(c, "--ima-log", LIVE_IMA_LOG);
        if (rc)
            return -1;
    }
    return 0;
}

void qal_compat_free(qal_compat *c)
{
    for (size_t i = 0; i < c->argc; i++)
        if (c->owned[i])
            free(c->argv[i]);
    free(c->argv);
    free(c->owned);
    memset(c, 0, sizeof *c);
}
