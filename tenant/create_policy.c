/* create_policy.c — `quince-tenant create-policy`, the counterpart of `keylime-policy create
 * runtime`: a Keylime runtime policy from any mix of a root file system, initramfs images, an IMA
 * measurement list, allowlists, a base policy and package digest lists, with excludes, keyrings,
 * ima-buf entries, ignored keyrings and IMA signature keys. The output is sorted and carries no
 * timestamp, so the same inputs give the same bytes. A progress counter is drawn on a terminal;
 * a one-line summary (files hashed, skipped and why, time) is always printed on stderr.
 * Errors: one line "quince-tenant: create-policy: <reason>", exit 2. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "buf.h"
#include "create_policy.h"
#include "hex.h"
#include "ima_sig.h"
#include "tenant.h"

#define MAX_LIST 256

static void usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant create-policy [options]\n"
        "\n"
        "Writes a Keylime runtime policy (JSON, generator 3) from any mix of the inputs below. Paths\n"
        "and digests are sorted and deduplicated and no timestamp is written, so the same inputs give\n"
        "the same bytes.\n"
        "\n"
        "Inputs (each may be repeated):\n"
        "      --rootfs DIR            hash the root-owned regular files (and symlinks to them) of DIR,\n"
        "                              as create-allowlist does; symlinks that climb out of DIR are\n"
        "                              reported (their target is taken inside DIR)\n"
        "  -s, --skip-path LIST        comma-separated paths under the rootfs not to hash\n"
        "      --any-owner             hash files of any owner (default: uid 0 only)\n"
        "      --cross-mounts          descend into other mounted file systems\n"
        "      --ramdisk-dir DIR       hash every file of each DIR/initr* image\n"
        "      --initramfs FILE        hash every file of an initramfs image\n"
        "  -m, --ima-measurement-list FILE   ima-ng/ima-sig entries of an IMA ASCII list → digests\n"
        "  -a, --allowlist FILE        a flat (\"<hex>  <path>\") or legacy JSON allowlist\n"
        "  -p, --base-policy FILE      merge an existing runtime policy (a signed one is unwrapped)\n"
        "      --package-digests FILE  \"<hex>  <path>\" lines from a package database, e.g.\n"
        "                                rpm -qa --qf '[%%{FILEDIGESTS}  %%{FILENAMES}\\n]'\n"
        "                              or dpkg's md5sums files; a digest of another algorithm (md5)\n"
        "                              is replaced by hashing the file under --package-root\n"
        "      --package-root DIR      where the package files are (default: --rootfs, else /)\n"
        "\n"
        "Options:\n"
        "  -e, --excludelist FILE      exclude regexes (one per line; merged, duplicates dropped,\n"
        "                              each checked)\n"
        "  -k, --keyrings              ima-buf key entries of the IMA list → keyrings\n"
        "  -b, --ima-buf               other ima-buf entries of the IMA list → ima-buf\n"
        "      --ignored-keyrings NAME keyring whose keys are neither checked nor learned ('*' = all)\n"
        "  -A, --add-ima-signature-verification-key FILE\n"
        "                              an IMA signature key (certificate or key, PEM or DER) for\n"
        "                              verification-keys\n"
        "      --algo ALG              sha1, sha256, sha384 or sha512 (default: the algorithm of the\n"
        "                              first digest read, else sha256); every input must agree\n"
        "      --jobs N                hashing threads (default: online CPUs)\n"
        "      --show-legacy-allowlist write the digests as a flat allowlist instead\n"
        "  -o, --output FILE           write to FILE (default: stdout)\n"
        "  -h, --help                  this text\n"
        "\n"
        "Exit status: 0 written; 2 on an error (unreadable input, mixed digest algorithms, invalid\n"
        "exclude regex, bad key).\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("quince-tenant: create-policy: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

typedef struct opts {
    const char *rootfs, *output, *package_root;
    const char *ramdisk[MAX_LIST], *initramfs[MAX_LIST], *imalists[MAX_LIST], *allowlists[MAX_LIST],
               *bases[MAX_LIST], *packages[MAX_LIST], *excludes[MAX_LIST], *keys[MAX_LIST];
    size_t nramdisk, ninitramfs, nimalists, nallowlists, nbases, npackages, nexcludes, nkeys;
    char *skips[MAX_LIST];
    size_t nskips;
    char **ign;
    size_t nign;
    bool keyrings, ima_buf, any_owner, cross, legacy, algo_given;
    qhash_alg alg;
    unsigned jobs;
} opts;

typedef struct counts {
    size_t hashed, unreadable, not_regular, climbing, pkg_missing;
} counts;

static int push(const char **list, size_t *n, const char *v, const char *opt)
{
    if (*n >= MAX_LIST)
        return fail("too many %s (at most %d)", opt, MAX_LIST);
    list[(*n)++] = v;
    return 0;
}

/* "/opt//x/" → "/opt/x"; one per comma-separated element. */
static int add_skips(opts *o, const char *arg)
{
    const char *s = arg;
    while (*s) {
        size_t len = strcspn(s, ",");
        if (len) {
            if (o->nskips >= MAX_LIST)
                return fail("too many skip paths (at most %d)", MAX_LIST);
            char *p = malloc(len + 2);
            if (!p)
                return fail("out of memory");
            size_t n = 0;
            p[n++] = '/';
            for (size_t i = 0; i < len; i++)
                if (s[i] != '/' || p[n - 1] != '/')
                    p[n++] = s[i];
            while (n > 1 && p[n - 1] == '/')
                n--;
            p[n] = '\0';
            o->skips[o->nskips++] = p;
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return 0;
}

static int add_ignored(opts *o, const char *name)
{
    for (size_t i = 0; i < o->nign; i++)
        if (strcmp(o->ign[i], name) == 0)
            return 0;
    char **l = realloc(o->ign, (o->nign + 1) * sizeof *l);
    if (!l)
        return fail("out of memory");
    o->ign = l;
    if (!(l[o->nign] = strdup(name)))
        return fail("out of memory");
    o->nign++;
    return 0;
}

static int parse(int argc, char **argv, opts *o)
{
    enum { O_ROOTFS = 256, O_ANY, O_CROSS, O_RAMDISK, O_INITRAMFS, O_PKG, O_PKGROOT, O_IGN, O_ALGO, O_JOBS,
           O_LEGACY };
    static const struct option lo[] = {
        {"rootfs", required_argument, 0, O_ROOTFS}, {"skip-path", required_argument, 0, 's'},
        {"any-owner", no_argument, 0, O_ANY}, {"cross-mounts", no_argument, 0, O_CROSS},
        {"ramdisk-dir", required_argument, 0, O_RAMDISK}, {"initramfs", required_argument, 0, O_INITRAMFS},
        {"ima-measurement-list", required_argument, 0, 'm'}, {"allowlist", required_argument, 0, 'a'},
        {"base-policy", required_argument, 0, 'p'}, {"package-digests", required_argument, 0, O_PKG},
        {"package-root", required_argument, 0, O_PKGROOT}, {"excludelist", required_argument, 0, 'e'},
        {"keyrings", no_argument, 0, 'k'}, {"ima-buf", no_argument, 0, 'b'},
        {"ignored-keyrings", required_argument, 0, O_IGN},
        {"add-ima-signature-verification-key", required_argument, 0, 'A'},
        {"algo", required_argument, 0, O_ALGO}, {"jobs", required_argument, 0, O_JOBS},
        {"show-legacy-allowlist", no_argument, 0, O_LEGACY}, {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c, rc = 0;
    opterr = 0;
    optind = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, ":s:m:a:p:e:kbA:o:h", lo, NULL)) != -1) {
        switch (c) {
        case O_ROOTFS: o->rootfs = optarg; break;
        case 's': rc = add_skips(o, optarg); break;
        case O_ANY: o->any_owner = true; break;
        case O_CROSS: o->cross = true; break;
        case O_RAMDISK: rc = push(o->ramdisk, &o->nramdisk, optarg, "--ramdisk-dir"); break;
        case O_INITRAMFS: rc = push(o->initramfs, &o->ninitramfs, optarg, "--initramfs"); break;
        case 'm': rc = push(o->imalists, &o->nimalists, optarg, "--ima-measurement-list"); break;
        case 'a': rc = push(o->allowlists, &o->nallowlists, optarg, "--allowlist"); break;
        case 'p': rc = push(o->bases, &o->nbases, optarg, "--base-policy"); break;
        case O_PKG: rc = push(o->packages, &o->npackages, optarg, "--package-digests"); break;
        case O_PKGROOT: o->package_root = optarg; break;
        case 'e': rc = push(o->excludes, &o->nexcludes, optarg, "--excludelist"); break;
        case 'k': o->keyrings = true; break;
        case 'b': o->ima_buf = true; break;
        case O_IGN: rc = add_ignored(o, optarg); break;
        case 'A': rc = push(o->keys, &o->nkeys, optarg, "--add-ima-signature-verification-key"); break;
        case O_ALGO:
            if (qhash_from_name(optarg, &o->alg) < 0)
                rc = fail("unknown --algo '%s' (sha1, sha256, sha384 or sha512)", optarg);
            o->algo_given = true;
            break;
        case O_JOBS: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > QAL_MAX_JOBS)
                rc = fail("--jobs must be 1..%d", QAL_MAX_JOBS);
            o->jobs = (unsigned)v;
            break;
        }
        case O_LEGACY: o->legacy = true; break;
        case 'o': o->output = optarg; break;
        case 'h': usage(stdout); return 1;
        case ':': return fail("option %s needs an argument", argv[optind - 1]);
        default: return fail("unknown option %s (see --help)", argv[optind - 1]);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return fail("unexpected argument '%s' (see --help)", argv[optind]);
    if (!o->rootfs && !o->nramdisk && !o->ninitramfs && !o->nimalists && !o->nallowlists && !o->nbases &&
        !o->npackages && !o->nexcludes && !o->nkeys)
        return fail("nothing to do: give --rootfs, --ramdisk-dir, --initramfs, -m, -a, -p, --package-digests, -e "
                    "or -A (see --help)");
    if (o->nskips && !o->rootfs)
        return fail("--skip-path needs --rootfs");
    /* As keylime-policy: a skip path may also be given with the rootfs in front. */
    size_t rl = strlen(o->rootfs ? o->rootfs : "");
    while (rl > 1 && o->rootfs[rl - 1] == '/')
        rl--;
    for (size_t i = 0; rl > 1 && i < o->nskips; i++) {
        const char *r = o->rootfs[0] == '/' ? o->rootfs : NULL;
        char *sk = o->skips[i];
        if (r && strncmp(sk, r, rl) == 0 && (sk[rl] == '/' || sk[rl] == '\0'))
            memmove(sk, sk[rl] ? sk + rl : "/", strlen(sk[rl] ? sk + rl : "/") + 1);
    }
    return 0;
}

/* The initr* images of a directory, sorted (so the output does not depend on readdir order). */
static int ramdisk_images(const char *dir, char ***out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return fail("--ramdisk-dir %s: %s", dir, strerror(errno));
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (strncmp(de->d_name, "initr", 5) != 0)
            continue;
        char **l = realloc(*out, (*n + 1) * sizeof *l);
        if (!l || asprintf(&l[*n], "%s/%s", dir, de->d_name) < 0) {
            if (l)
                *out = l;
            rc = fail("out of memory");
            break;
        }
        *out = l;
        (*n)++;
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++)
        for (size_t j = i; j > 0 && strcmp((*out)[j - 1], (*out)[j]) > 0; j--) {
            char *t = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
    return rc;
}

/* Does the symlink at src (a path inside the rootfs) point above the rootfs? Only relative
 * targets can: "..", counted from the link's directory, reaching past "/". */
static bool climbs_out(int rootfd, const char *src, char *target, size_t cap)
{
    ssize_t n = readlinkat(rootfd, src[0] == '/' ? src + 1 : src, target, cap - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    if (target[0] == '/')
        return false;
    long depth = 0;
    for (const char *p = src; *p; p++)
        if (*p == '/' && p[1] && p[1] != '/')
            depth++;
    depth--;    /* the link's own name */
    for (const char *p = target; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            depth--;
        else if (len && !(len == 1 && p[0] == '.'))
            depth++;
        if (depth < 0)
            return true;
        p += len;
        while (*p == '/')
            p++;
    }
    return false;
}

/* Hashes the pending items of l under rootdir; reports what was left out and why. */
static int hash_under(qal_list *l, const char *rootdir, const char *what, const opts *o, qhash_alg alg,
                      counts *ct)
{
    int rootfd = open(rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return fail("%s %s: %s", what, rootdir, strerror(errno));
    qerr err = {0};
    if (qal_hash_files(l, rootfd, alg, o->jobs, isatty(STDERR_FILENO) == 1, &err) < 0) {
        close(rootfd);
        return fail("%s", err.msg);
    }
    const char *pfx = strcmp(rootdir, "/") ? rootdir : "";
    char target[QAL_MAX_PATH + 1];
    for (size_t i = 0; i < l->n; i++) {
        qal_item *it = &l->items[i];
        if (it->src == QAL_NONE)
            continue;
        const char *src = qal_str(l, it->src);
        if (it->link && climbs_out(rootfd, src, target, sizeof target)) {
            ct->climbing++;
            fprintf(stderr, "quince-tenant: create-policy: warning: symlink %s%s -> %s climbs out of %s; its "
                    "target was looked up inside it (%s)\n", pfx, src, target, rootdir,
                    it->status == QAL_DONE ? "hashed" : "not a readable regular file there: left out");
        }
        if (it->status > 0) {
            if (it->status == ENOENT && strcmp(what, "package root") == 0) {
                ct->pkg_missing++;
                fprintf(stderr, "quince-tenant: create-policy: warning: package file %s%s is not there\n", pfx, src);
            } else {
                ct->unreadable++;
                fprintf(stderr, "quince-tenant: create-policy: warning: skipping %s%s: %s\n", pfx, src,
                        strerror(it->status));
            }
        } else if (it->status == QAL_SKIPPED) {
            ct->not_regular++;
        } else if (it->status == QAL_DONE) {
            ct->hashed++;
        }
    }
    close(rootfd);
    return 0;
}

/* Adds the hashed items of l to the set. */
static int take_hashed(cpol_set *s, const qal_list *l, const char *source, qhash_alg alg)
{
    char hex[2 * QHASH_MAX_SIZE + 1];
    size_t dlen = qhash_size(alg);
    qerr err = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (l->items[i].status != QAL_DONE)
            continue;
        qhex_encode(l->items[i].digest, dlen, hex);
        const char *p = qal_str(l, l->items[i].path);
        if (cpol_add(s, QPOL_DIGESTS, p, strlen(p), hex, 2 * dlen, source, &err) < 0)
            return fail("%s", err.msg);
    }
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The policy skeleton (everything but the tables) as JSON text. */
static char *skeleton(char **excl, size_t nexcl, char **ign, size_t nign, const char *vkeys)
{
    if (nexcl)
        qsort(excl, nexcl, sizeof *excl, str_cmp);
    if (nign)
        qsort(ign, nign, sizeof *ign, str_cmp);
    cJSON *j = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(j, "meta");
    cJSON_AddNumberToObject(meta, "version", 1);
    cJSON_AddNumberToObject(meta, "generator", 3);
    cJSON_AddNumberToObject(j, "release", 0);
    cJSON_AddObjectToObject(j, "digests");
    cJSON *ex = cJSON_AddArrayToObject(j, "excludes");
    for (size_t i = 0; ex && i < nexcl; i++)
        cJSON_AddItemToArray(ex, cJSON_CreateString(excl[i]));
    cJSON_AddObjectToObject(j, "keyrings");
    cJSON *ima = cJSON_AddObjectToObject(j, "ima");
    cJSON *ig = cJSON_AddArrayToObject(ima, "ignored_keyrings");
    for (size_t i = 0; ig && i < nign; i++)
        cJSON_AddItemToArray(ig, cJSON_CreateString(ign[i]));
    cJSON_AddStringToObject(ima, "log_hash_alg", "sha1");
    cJSON_AddNullToObject(ima, "dm_policy");
    cJSON_AddObjectToObject(j, "ima-buf");
    cJSON_AddStringToObject(j, "verification-keys", vkeys ? vkeys : "");
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

/* verification-keys: the base policy's keyring plus the -A keys. */
static int build_keys(const opts *o, const char *base, char **out)
{
    *out = NULL;
    if (!o->nkeys) {
        if (base && !(*out = strdup(base)))
            return fail("out of memory");
        return 0;
    }
    qerr err = {0};
    qkeyring *k = base ? qkeyring_from_json(base, strlen(base), &err) : qkeyring_new();
    if (!k)
        return fail("verification-keys of the base policy: %s", err.msg[0] ? err.msg : "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < o->nkeys; i++) {
        qbuf b;
        qbuf_init(&b, 0);
        if (qbuf_read_file(&b, o->keys[i], 65536) < 0)
            rc = fail("cannot read key %s: %s", o->keys[i], strerror(errno));
        else if (qkeyring_add_key_once(k, b.data, b.len, 0, &err) < 0)
            rc = fail("File '%s' does not have a supported key: %s", o->keys[i], err.msg);
        qbuf_free(&b);
    }
    if (rc == 0 && !(*out = qkeyring_to_json(k, &err)))
        rc = fail("cannot encode the IMA keyring: %s", err.msg);
    qkeyring_free(k);
    return rc;
}

static int write_output(const opts *o, const char *text)
{
    FILE *f = o->output ? fopen(o->output, "w") : stdout;
    if (!f)
        return fail("%s: %s", o->output, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fflush(f) != 0 || ferror(f);
    if (o->output)
        bad |= fclose(f) != 0;
    if (bad) {
        if (o->output)
            unlink(o->output);
        return fail("writing %s: %s", o->output ? o->output : "stdout", strerror(errno));
    }
    return 0;
}

/* The policy (or, with --show-legacy-allowlist, the flat digests) as text. */
static char *render(const opts *o, const cpol_set *s, const char *skel, size_t *ndig, qerr *err)
{
    if (o->legacy) {
        qbuf b;
        qbuf_init(&b, 0);
        for (size_t i = 0; i < s->n; i++)
            if (s->e[i].table == QPOL_DIGESTS)
                qbuf_printf(&b, "%s  %s\n", s->e[i].hex, s->e[i].path);
        *ndig = s->n;
        if (b.failed || !qbuf_cstr(&b)) {
            qbuf_free(&b);
            qerr_set(err, "out of memory");
            return NULL;
        }
        return (char *)b.data;
    }
    qpolicy *p = qpolicy_from_json(skel, strlen(skel), "create-policy", err);
    if (!p)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (qpolicy_add_digest(p, s->e[i].table, s->e[i].path, strlen(s->e[i].path), s->e[i].hex, err) < 0) {
            qpolicy_free(p);
            return NULL;
        }
    *ndig = s->n;
    char *json = qpolicy_to_json(p, true, err);
    qpolicy_free(p);
    if (!json)
        return NULL;
    size_t n = strlen(json);
    char *out = realloc(json, n + 2);
    if (!out) {
        free(json);
        qerr_set(err, "out of memory");
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = '\0';
    return out;
}

int tenant_create_policy(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.jobs = ncpu > 0 ? (ncpu > QAL_MAX_JOBS ? QAL_MAX_JOBS : (unsigned)ncpu) : 1;
    o.alg = QHASH_SHA256;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cpol_set s;
    memset(&s, 0, sizeof s);
    counts ct = {0};
    qal_list files = {0}, pkgfiles = {0};
    char **excl = NULL, **images = NULL, *vkeys_base = NULL, *vkeys = NULL, *skel = NULL, *text = NULL;
    size_t nexcl = 0, nimages = 0, ndig = 0;
    qerr err = {0};
    int rc = parse(argc, argv, &o);
    if (rc == 1) {
        rc = 0;
        goto done;
    }
    if (rc)
        goto done;
    rc = 2;
    if (o.algo_given) {
        s.alg = o.alg;
        s.alg_set = true;
        s.alg_from = "--algo";
    }
    /* Digest-carrying inputs first, in Keylime's order of precedence for the algorithm. */
    for (size_t i = 0; i < o.nbases; i++)
        if (cpol_read_base_policy(&s, o.bases[i], &excl, &nexcl, &o.ign, &o.nign, i ? NULL : &vkeys_base, &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }
    for (size_t i = 0; i < o.nallowlists; i++)
        if (cpol_read_allowlist(&s, o.allowlists[i], &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }
    for (size_t i = 0; i < o.nimalists; i++)
        if (cpol_read_ima_list(&s, o.imalists[i], o.keyrings, o.ima_buf, o.ign, o.nign, &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }
    if (!s.alg_set) {
        s.alg = QHASH_SHA256;
        s.alg_set = true;
        s.alg_from = "default";
    }
    for (size_t i = 0; i < o.npackages; i++)
        if (cpol_read_packages(&s, o.packages[i], &pkgfiles, &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }
    for (size_t i = 0; i < o.nexcludes; i++)
        if (cpol_read_excludes(o.excludes[i], &excl, &nexcl, &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }
    /* Files hashed here. */
    for (size_t i = 0; i < o.nramdisk; i++)
        if (ramdisk_images(o.ramdisk[i], &images, &nimages))
            goto done;
    for (size_t i = 0; i < o.ninitramfs + nimages; i++) {
        const char *img = i < o.ninitramfs ? o.initramfs[i] : images[i - o.ninitramfs];
        size_t before = files.n;
        if (qal_read_initramfs(img, s.alg, &files, &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }
        ct.hashed += files.n - before;
    }
    if (o.rootfs) {
        qal_walk_opts wo = { .rootfs = o.rootfs, .skips = (const char *const *)o.skips, .nskips = o.nskips,
                             .any_owner = o.any_owner, .cross_mounts = o.cross };
        size_t warnings = 0;
        if (qal_walk_rootfs(&wo, &files, &warnings, &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }
        ct.unreadable += warnings;
        if (hash_under(&files, o.rootfs, "rootfs", &o, s.alg, &ct))
            goto done;
    }
    if (pkgfiles.n &&
        hash_under(&pkgfiles, o.package_root ? o.package_root : o.rootfs ? o.rootfs : "/", "package root", &o, s.alg, &ct))
        goto done;
    if (take_hashed(&s, &files, o.rootfs ? "root file system" : "initramfs", s.alg) ||
        take_hashed(&s, &pkgfiles, "package files", s.alg))
        goto done;
    cpol_sort_unique(&s);
    if (build_keys(&o, vkeys_base, &vkeys))
        goto done;
    if (!(skel = skeleton(excl, nexcl, o.ign, o.nign, vkeys))) {
        fail("out of memory");
        goto done;
    }
    if (!(text = render(&o, &s, skel, &ndig, &err))) {
        fail("%s", err.msg);
        goto done;
    }
    if (write_output(&o, text))
        goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr,
            "quince-tenant: create-policy: wrote %s: %zu entries (%s), %zu excludes, %zu keys; %zu files hashed, "
            "%zu skipped (%zu unreadable, %zu not regular files: dangling links, links to non-files, pseudo file "
            "systems; %zu package files missing), %zu symlinks climbing out of the root, %zu package digests "
            "re-hashed; %.2f s\n",
            o.output ? o.output : "stdout", ndig, qhash_name(s.alg), nexcl, o.nkeys, ct.hashed,
            ct.unreadable + ct.not_regular + ct.pkg_missing, ct.unreadable, ct.not_regular, ct.pkg_missing,
            ct.climbing, s.pkg_rehash, secs);
    rc = 0;
done:
    cpol_set_free(&s);
    qal_free(&files);
    qal_free(&pkgfiles);
    for (size_t i = 0; i < nexcl; i++)
        free(excl[i]);
    free(excl);
    for (size_t i = 0; i < nimages; i++)
        free(images[i]);
    free(images);
    for (size_t i = 0; i < o.nign; i++)
        free(o.ign[i]);
    free(o.ign);
    for (size_t i = 0; i < o.nskips; i++)
        free(o.skips[i]);
    free(vkeys_base);
    free(vkeys);
    cJSON_free(skel);
    free(text);
    return rc;
}
