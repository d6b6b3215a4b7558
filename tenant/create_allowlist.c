/* create_allowlist.c — `quince-tenant create-allowlist`: options, boot_aggregate, and the output
 * (a flat "<hex>  <path>" allowlist as sha256sum prints it, or a Keylime runtime policy with
 * generator 3). The work is done by rootfs_walk.c, hash_pool.c and initramfs.c
 * (allowlist_build.h). Errors: one line "quince-tenant: create-allowlist: <reason>", exit 2. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "allowlist_build.h"
#include "allowlist_compat.h"
#include "hex.h"
#include "policy.h"
#include "tenant.h"

#define MAX_INITRAMFS 64
#define MAX_SKIPS     1024
#define MAX_LOG_LINE  65536

static void usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant create-allowlist [-o FILE] [--json] [--initramfs FILE]...\n"
        "           [--rootfs DIR] [--skip PATH]... [--hash-alg sha1|sha256|sha384|sha512]\n"
        "           [--ima-log FILE | --boot-aggregate HEX] [--jobs N] [--any-owner]\n"
        "           [--cross-mounts]\n"
        "\n"
        "Writes an allowlist of \"<hex>  <path>\" lines (as sha256sum prints them), sorted by path,\n"
        "or with --json a Keylime runtime policy (generator 3). Paths are written as the kernel logs\n"
        "them: absolute, with the rootfs prefix removed and spaces replaced by '_'.\n"
        "\n"
        "  -o, --output FILE      write to FILE instead of stdout\n"
        "      --json             write a runtime policy instead of a flat allowlist\n"
        "      --rootfs DIR       hash the regular files (and symlinks to regular files, as the\n"
        "                         link's path; resolved inside DIR) owned by root; the top-level\n"
        "                         sys run proc lost+found dev media snap mnt var tmp, pseudo file\n"
        "                         systems and other mounted file systems are skipped\n"
        "      --skip PATH        also skip PATH (relative to the rootfs, e.g. /opt/x); repeatable\n"
        "      --any-owner        include files whatever their owner (default: uid 0 only, as Keylime)\n"
        "      --cross-mounts     descend into other mounted file systems (pseudo ones stay skipped)\n"
        "      --initramfs FILE   hash every regular file of an initramfs image (concatenated cpio\n"
        "                         archives, each optionally compressed); repeatable\n"
        "      --hash-alg ALG     sha1, sha256 (default), sha384 or sha512\n"
        "      --ima-log FILE     take boot_aggregate from line 1 of an IMA ASCII measurement list\n"
        "      --boot-aggregate HEX  the boot_aggregate digest\n"
        "      --jobs N           hashing threads (default: the number of online CPUs)\n"
        "  -h, --help             this text\n"
        "\n"
        "create_allowlist.sh / create_runtime_policy.sh syntax is accepted too: -h ALG or -a/--algo ALG\n"
        "with ALG sha1sum, sha256sum, sha384sum or sha512sum (or sha1, ...), -o/--output_file FILE,\n"
        "-x/--ramdisk-location DIR (its initr* images), -y/--boot_aggregate-location FILE (an IMA log),\n"
        "-z/--rootfs-location DIR, -s/--skip-path LIST (comma-separated); 'none' skips that input.\n"
        "Given in that syntax with no input, the script's defaults apply: --rootfs /, the images\n"
        "/boot/initr*, and boot_aggregate from the live IMA log when it can be read.\n"
        "\n"
        "Files that cannot be read are reported on stderr and left out. Exit status: 0 on success,\n"
        "2 on an error (missing rootfs, unreadable or corrupt initramfs, bad digest, bad option).\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("quince-tenant: create-allowlist: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

/* Check a boot_aggregate digest against the algorithm and lower-case it into out. */
static int check_aggregate(const char *hex, size_t n, qhash_alg alg, const char *from, char *out)
{
    if (!qhex_valid(hex, n))
        return fail("boot_aggregate from %s is not hex: '%.*s'", from, (int)(n > 200 ? 200 : n), hex);
    if (n != 2 * qhash_size(alg))
        return fail("boot_aggregate from %s has %zu hex digits, %s needs %zu", from, n,
                    qhash_name(alg), 2 * qhash_size(alg));
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)hex[i]);
    out[n] = '\0';
    return 0;
}

/* boot_aggregate = the 4th field of line 1 of the IMA log, everything up to ':' removed. */
static int aggregate_from_log(const char *file, qhash_alg alg, char *out)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return fail("IMA log %s: %s", file, strerror(errno));
    char *line = malloc(MAX_LOG_LINE + 2);
    if (!line) {
        fclose(f);
        return fail("out of memory");
    }
    int rc = 0;
    if (!fgets(line, MAX_LOG_LINE + 2, f)) {
        rc = fail("IMA log %s: %s", file, ferror(f) ? strerror(errno) : "empty");
        goto out;
    }
    size_t len = strcspn(line, "\n");
    if (len > MAX_LOG_LINE) {
        rc = fail("IMA log %s: line 1 is too long", file);
        goto out;
    }
    line[len] = '\0';
    const char *field[5] = { 0 };
    size_t flen[5] = { 0 };
    const char *s = line;
    for (int i = 0; i < 5; i++) {
        while (*s && isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        field[i] = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        flen[i] = (size_t)(s - field[i]);
    }
    if (!field[3]) {
        rc = fail("IMA log %s: line 1 has fewer than 4 fields", file);
        goto out;
    }
    if (!field[4] || flen[4] != strlen("boot_aggregate") ||
        memcmp(field[4], "boot_aggregate", flen[4]) != 0)
        fprintf(stderr, "quince-tenant: create-allowlist: warning: line 1 of %s is not the "
                "boot_aggregate entry\n", file);
    const char *hex = field[3];
    size_t n = flen[3];
    const char *colon = memrchr(hex, ':', n);
    if (colon) {
        n -= (size_t)(colon + 1 - hex);
        hex = colon + 1;
    }
    char from[64 + QAL_MAX_PATH];
    snprintf(from, sizeof from, "IMA log %s", file);
    rc = check_aggregate(hex, n, alg, from, out);
out:
    free(line);
    fclose(f);
    return rc;
}

/* "/opt//x/" → "/opt/x" (skip paths are compared with the walk's paths inside the rootfs). */
static char *norm_skip(const char *s)
{
    size_t len = strlen(s);
    char *o = malloc(len + 2);
    if (!o)
        return NULL;
    size_t n = 0;
    o[n++] = '/';
    for (size_t i = 0; i < len; i++)
        if (s[i] != '/' || o[n - 1] != '/')
            o[n++] = s[i];
    while (n > 1 && o[n - 1] == '/')
        n--;
    o[n] = '\0';
    return o;
}

static int write_flat(FILE *out, const qal_list *l, size_t dlen, const char *aggregate)
{
    char hex[2 * QHASH_MAX_SIZE + 1];
    if (aggregate[0])
        fprintf(out, "%s  boot_aggregate\n", aggregate);
    for (size_t i = 0; i < l->n; i++) {
        qhex_encode(l->items[i].digest, dlen, hex);
        fputs(hex, out);
        fputs("  ", out);
        fputs(qal_str(l, l->items[i].path), out);
        fputc('\n', out);
    }
    return ferror(out) ? -1 : 0;
}

/* A runtime policy with generator 3 and a timestamp: the policy of an empty allowlist
 * (qpolicy_empty() would say generator 1), then every digest added. */
static char *build_json(const qal_list *l, size_t dlen, const char *aggregate, qerr *err)
{
    qpolicy *p = qpolicy_from_allowlist("", 0, "create-allowlist", err);
    if (!p)
        return NULL;
    char hex[2 * QHASH_MAX_SIZE + 1];
    char *json = NULL;
    if (aggregate[0] &&
        qpolicy_add_digest(p, QPOL_DIGESTS, "boot_aggregate", strlen("boot_aggregate"), aggregate, err) < 0)
        goto out;
    for (size_t i = 0; i < l->n; i++) {
        const char *path = qal_str(l, l->items[i].path);
        qhex_encode(l->items[i].digest, dlen, hex);
        if (qpolicy_add_digest(p, QPOL_DIGESTS, path, strlen(path), hex, err) < 0)
            goto out;
    }
    json = qpolicy_to_json(p, true, err);
out:
    qpolicy_free(p);
    return json;
}

static int create_allowlist(int argc, char **argv);

int tenant_create_allowlist(int argc, char **argv)
{
    qal_compat c;
    qerr e = { 0 };
    if (qal_compat_args(argc, argv, &c, &e) < 0) {
        qal_compat_free(&c);
        return fail("%s", e.msg);
    }
    int rc = create_allowlist((int)c.argc, c.argv);
    qal_compat_free(&c);
    return rc;
}

static int create_allowlist(int argc, char **argv)
{
    enum { O_JSON = 256, O_INITRAMFS, O_ROOTFS, O_SKIP, O_ALG, O_IMALOG, O_AGG, O_JOBS,
           O_ANYOWNER, O_CROSS };
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' },
        { "json", no_argument, NULL, O_JSON },
        { "initramfs", required_argument, NULL, O_INITRAMFS },
        { "rootfs", required_argument, NULL, O_ROOTFS },
        { "skip", required_argument, NULL, O_SKIP },
        { "hash-alg", required_argument, NULL, O_ALG },
        { "ima-log", required_argument, NULL, O_IMALOG },
        { "boot-aggregate", required_argument, NULL, O_AGG },
        { "jobs", required_argument, NULL, O_JOBS },
        { "any-owner", no_argument, NULL, O_ANYOWNER },
        { "cross-mounts", no_argument, NULL, O_CROSS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *output = NULL, *rootfs = NULL, *imalog = NULL, *aggarg = NULL;
    const char *initramfs[MAX_INITRAMFS];
    size_t ninitramfs = 0, nskips = 0;
    char *skips[MAX_SKIPS];
    bool json = false, any_owner = false, cross = false;
    qhash_alg alg = QHASH_SHA256;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned jobs = ncpu > 0 ? (ncpu > QAL_MAX_JOBS ? QAL_MAX_JOBS : (unsigned)ncpu) : 1;
    int rc = 2, c;
    qal_list l = { 0 };
    qerr err = { 0 };
    int rootfd = -1;
    char *jtext = NULL;
    FILE *out = NULL;

    opterr = 0;
    optind = 0;   /* glibc: full re-initialisation */
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case O_JSON: json = true; break;
        case O_INITRAMFS:
            if (ninitramfs == MAX_INITRAMFS) {
                fail("too many --initramfs (at most %d)", MAX_INITRAMFS);
                goto done;
            }
            initramfs[ninitramfs++] = optarg;
            break;
        case O_ROOTFS: rootfs = optarg; break;
        case O_SKIP:
            if (nskips == MAX_SKIPS) {
                fail("too many --skip (at most %d)", MAX_SKIPS);
                goto done;
            }
            if (!(skips[nskips] = norm_skip(optarg))) {
                fail("out of memory");
                goto done;
            }
            nskips++;
            break;
        case O_ALG:
            if (qhash_from_name(optarg, &alg) < 0) {
                fail("unknown --hash-alg '%s' (sha1, sha256, sha384 or sha512)", optarg);
                goto done;
            }
            break;
        case O_IMALOG: imalog = optarg; break;
        case O_AGG: aggarg = optarg; break;
        case O_JOBS: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > QAL_MAX_JOBS) {
                fail("--jobs must be 1..%d", QAL_MAX_JOBS);
                goto done;
            }
            jobs = (unsigned)v;
            break;
        }
        case O_ANYOWNER: any_owner = true; break;
        case O_CROSS: cross = true; break;
        case 'h': usage(stdout); rc = 0; goto done;
        case ':': fail("option %s needs an argument", argv[optind - 1]); goto done;
        default: fail("unknown option %s (see --help)", argv[optind - 1]); goto done;
        }
    }
    if (optind < argc) {
        fail("unexpected argument '%s' (see --help)", argv[optind]);
        goto done;
    }
    if (imalog && aggarg) {
        fail("give --ima-log or --boot-aggregate, not both");
        goto done;
    }
    if (!rootfs && !ninitramfs && !imalog && !aggarg) {
        fail("nothing to do: give --rootfs, --initramfs, --ima-log or --boot-aggregate (see --help)");
        goto done;
    }

    char aggregate[2 * QHASH_MAX_SIZE + 1] = "";
    if (aggarg && check_aggregate(aggarg, strlen(aggarg), alg, "--boot-aggregate", aggregate))
        goto done;
    if (imalog && aggregate_from_log(imalog, alg, aggregate))
        goto done;

    for (size_t i = 0; i < ninitramfs; i++)
        if (qal_read_initramfs(initramfs[i], alg, &l, &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }

    size_t warnings = 0;
    if (rootfs) {
        qal_walk_opts wo = { .rootfs = rootfs, .skips = (const char *const *)skips, .nskips = nskips,
                             .any_owner = any_owner, .cross_mounts = cross };
        if (qal_walk_rootfs(&wo, &l, &warnings, &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }
        rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
            fail("rootfs %s: %s", rootfs, strerror(errno));
            goto done;
        }
        if (qal_hash_files(&l, rootfd, alg, jobs, isatty(STDERR_FILENO) == 1, &err) < 0) {
            fail("%s", err.msg);
            goto done;
        }
        for (size_t i = 0; i < l.n; i++)
            if (l.items[i].status > 0) {
                fprintf(stderr, "quince-tenant: create-allowlist: warning: skipping %s%s: %s\n",
                        strcmp(rootfs, "/") ? rootfs : "", qal_str(&l, l.items[i].src),
                        strerror(l.items[i].status));
                warnings++;
            }
    }
    if (warnings)
        fprintf(stderr, "quince-tenant: create-allowlist: warning: %zu unreadable files or "
                "directories left out\n", warnings);

    size_t dlen = qhash_size(alg);
    qal_sort_unique(&l, dlen);

    if (json && !(jtext = build_json(&l, dlen, aggregate, &err))) {
        fail("%s", err.msg);
        goto done;
    }
    out = output ? fopen(output, "w") : stdout;
    if (!out) {
        fail("%s: %s", output, strerror(errno));
        goto done;
    }
    int werr = json ? (fputs(jtext, out) < 0 || fputc('\n', out) == EOF) : write_flat(out, &l, dlen, aggregate);
    if (fflush(out) != 0 || ferror(out))
        werr = 1;
    if (output && fclose(out) != 0)
        werr = 1;
    out = NULL;
    if (werr) {
        fail("writing %s: %s", output ? output : "stdout", strerror(errno));
        if (output)
            unlink(output);
        goto done;
    }
    rc = 0;
done:
    if (out && output)
        fclose(out);
    free(jtext);
    if (rootfd >= 0)
        close(rootfd);
    qal_free(&l);
    for (size_t i = 0; i < nskips; i++)
        free(skips[i]);
    return rc;
}
