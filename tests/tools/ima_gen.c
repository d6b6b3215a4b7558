/* ima_gen — test-only: writes a synthetic IMA measurement list the way the kernel does, with the
 * expected PCR 10 per bank and a matching allowlist / runtime policy (keylime-formats §1,
 * environment.md §4). The line layout and template data come from libquince (qima_parse_line,
 * qima_template_data) so the tests replay exactly what the generator extended; the integration
 * test cross-checks the result with an independent implementation.
 *
 *   ima_gen --out-dir DIR [--entries N] [--seed S] [--template ima-ng|ima-sig|ima|ima-buf|mixed]
 *           [--file-hash sha256|sha1|sha384|sha512] [--violations N] [--fnf N] [--bad-hash N]
 *           [--boot-aggregate-pcrs 8|10] [--write-extends] [--from-files PATH...]
 *   ima_gen --out-dir DIR --append-file FILE [--name PATH] [--template ...] [--file-hash ...]
 *
 * Outputs in DIR: ascii_runtime_measurements, binary_runtime_measurements, pcr10-<bank>.hex
 * (sha1, sha256, sha384, sha512), pcrs-<bank>.txt (evmctl format), allowlist.txt (sha256sum
 * format; without the --fnf paths and the violation entries, with wrong digests for the
 * --bad-hash ones; ima-buf names cannot be expressed there), runtime_policy.json (the allowlist
 * plus ima-buf digests plus excludes.txt), excludes.txt, and with --write-extends
 * extends-<bank>.hex (one extend value per entry). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "err.h"
#include "hex.h"
#include "ima_entry.h"
#include "pcr_bank.h"
#include "policy.h"

#define GEN_MAX_ENTRIES   50000000ull
#define GEN_MAX_FILE_SIZE (1ull << 32)
#define GEN_IO_BUF        (1u << 20)

enum { T_NG = 0, T_SIG, T_IMA, T_BUF, T_MIXED };
enum { K_NORMAL = 0, K_VIOLATION, K_FNF, K_BAD };

static const char *const SAMPLE_EXCLUDES =
    "# sample IMA excludes: regexes matched at the start of the file name\n"
    "^/tmp/\n"
    "^/var/tmp/\n"
    "/dev/shm/\n";

typedef struct gen {
    const char *dir;
    int tmpl;
    qhash_alg file_alg;
    EVP_MD_CTX *ctx;
    qpcr pcr[QHASH_COUNT];
    uint8_t *scratch;          /* QIMA_SCRATCH_SIZE, for qima_parse_line */
    uint8_t *tdata;            /* rebuilt template data */
    char *line;                /* the line being built */
    FILE *ascii, *bin, *allow, *ext[QHASH_COUNT];
    qbuf imabuf;               /* "hex  name\n" for ima-buf entries (runtime policy only) */
    uint64_t rng;
} gen;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ima_gen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static uint64_t rnd(gen *g)   /* splitmix64 */
{
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rnd_bytes(gen *g, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = rnd(g);
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(out + i, &r, k);
    }
}

static char *path_in(const gen *g, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", g->dir, name) < 0)
        return NULL;
    return p;
}

static FILE *open_out(const gen *g, const char *name, const char *mode)
{
    char *p = path_in(g, name);
    if (!p)
        return NULL;
    FILE *f = fopen(p, mode);
    if (!f)
        fail("%s: %s", p, strerror(errno));
    else
        setvbuf(f, NULL, _IOFBF, GEN_IO_BUF);
    free(p);
    return f;
}

/* Build one entry's line (without '\n'), hash it and extend every bank; write the ASCII line,
 * the binary entry and the extend values. digest is the file digest (alg as written in the
 * line; `ima` lines use a bare sha1 digest). */
static int emit(gen *g, int tmpl, qhash_alg alg, const uint8_t *digest, const char *name,
                const uint8_t *buf, size_t buf_len, bool violation)
{
    static const char *const tnames[] = { "ima-ng", "ima-sig", "ima", "ima-buf" };
    char dhex[2 * QHASH_MAX_SIZE + 1];
    qhex_encode(digest, qhash_size(alg), dhex);
    const char *zero_th = "0000000000000000000000000000000000000000";
    int n;
    if (tmpl == T_IMA)
        n = snprintf(g->line, QIMA_MAX_LINE + 1, "10 %s ima %s %s", zero_th, dhex, name);
    else if (tmpl == T_SIG)
        n = snprintf(g->line, QIMA_MAX_LINE + 1, "10 %s ima-sig %s:%s %s ", zero_th, qhash_name(alg),
                     dhex, name);
    else if (tmpl == T_BUF) {
        int m = snprintf(g->line, QIMA_MAX_LINE + 1, "10 %s ima-buf %s:%s %s ", zero_th,
                         qhash_name(alg), dhex, name);
        if (m < 0 || (size_t)m + 2 * buf_len > QIMA_MAX_LINE)
            return fail("line too long for %s", name);
        qhex_encode(buf, buf_len, g->line + m);
        n = m + (int)(2 * buf_len);
    } else
        n = snprintf(g->line, QIMA_MAX_LINE + 1, "10 %s ima-ng %s:%s %s", zero_th, qhash_name(alg),
                     dhex, name);
    if (n < 0 || n > QIMA_MAX_LINE)
        return fail("line too long for %s", name);

    qima_entry e;
    qerr err = { 0 };
    if (qima_parse_line(g->line, (size_t)n, &e, g->scratch, &err) < 0)
        return fail("cannot build an entry for '%s': %s", name, err.msg);
    long tlen = qima_template_data(&e, g->tdata, QIMA_SCRATCH_SIZE);
    if (tlen < 0)
        return fail("template data too large for %s", name);

    uint8_t th[20] = { 0 };
    if (!violation && qhash_digest(g->ctx, QHASH_SHA1, g->tdata, (size_t)tlen, th) < 0)
        return fail("sha1 failed");
    char thex[41];
    qhex_encode(th, sizeof th, thex);
    memcpy(g->line + 3, thex, 40);

    for (int b = 0; b < QHASH_COUNT; b++) {
        uint8_t ext[QHASH_MAX_SIZE];
        size_t sz = qhash_size((qhash_alg)b);
        if (violation) {
            memset(ext, 0xff, sz);
            if (qpcr_extend_ff(&g->pcr[b], g->ctx) < 0)
                return fail("extend failed");
        } else {
            if (qhash_digest(g->ctx, (qhash_alg)b, g->tdata, (size_t)tlen, ext) < 0 ||
                qpcr_extend(&g->pcr[b], g->ctx, ext) < 0)
                return fail("extend failed");
        }
        if (g->ext[b]) {
            char h[2 * QHASH_MAX_SIZE + 1];
            fprintf(g->ext[b], "%s\n", qhex_encode(ext, sz, h));
        }
    }

    fwrite(g->line, 1, (size_t)n, g->ascii);
    fputc('\n', g->ascii);
    if (g->bin) {
        uint8_t hdr[4];
        const char *tn = tnames[tmpl];
        uint32_t v = 10;
        memcpy(hdr, &v, 4);            /* little-endian host (x86-64, arm64) */
        fwrite(hdr, 1, 4, g->bin);
        fwrite(th, 1, 20, g->bin);
        v = (uint32_t)strlen(tn);
        memcpy(hdr, &v, 4);
        fwrite(hdr, 1, 4, g->bin);
        fwrite(tn, 1, strlen(tn), g->bin);
        v = (uint32_t)tlen;
        memcpy(hdr, &v, 4);
        fwrite(hdr, 1, 4, g->bin);
        fwrite(g->tdata, 1, (size_t)tlen, g->bin);
    }
    return 0;
}

/* Record the allowlist digest of an entry (flipped for --bad-hash; nothing for fnf). */
static void allow(gen *g, int tmpl, const uint8_t *digest, size_t len, const char *name, int kind)
{
    if (kind == K_FNF || kind == K_VIOLATION)
        return;
    uint8_t d[QHASH_MAX_SIZE];
    memcpy(d, digest, len);
    if (kind == K_BAD)
        d[0] ^= 0x5a;
    char hex[2 * QHASH_MAX_SIZE + 1];
    qhex_encode(d, len, hex);
    if (tmpl == T_BUF)
        qbuf_printf(&g->imabuf, "%s  %s\n", hex, name);
    else
        fprintf(g->allow, "%s  %s\n", hex, name);
}

static int boot_aggregate(gen *g, int pcrs)
{
    int tmpl = g->tmpl == T_IMA ? T_IMA : g->tmpl == T_SIG ? T_SIG : T_NG;
    qhash_alg alg = tmpl == T_IMA ? QHASH_SHA1 : g->file_alg;
    uint8_t zeros[10 * QHASH_MAX_SIZE] = { 0 };
    uint8_t d[QHASH_MAX_SIZE];
    if (qhash_digest(g->ctx, alg, zeros, (size_t)pcrs * qhash_size(alg), d) < 0)
        return fail("hash failed");
    if (emit(g, tmpl, alg, d, "boot_aggregate", NULL, 0, false) < 0)
        return -1;
    allow(g, tmpl, d, qhash_size(alg), "boot_aggregate", K_NORMAL);
    return 0;
}

static int hash_file(gen *g, qhash_alg alg, const char *path, uint8_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail("%s: %s", path, strerror(errno));
    static uint8_t blk[1 << 16];
    int rc = -1;
    uint64_t total = 0;
    if (EVP_DigestInit_ex(g->ctx, qhash_md(alg), NULL) == 1) {
        size_t n;
        rc = 0;
        while ((n = fread(blk, 1, sizeof blk, f)) > 0) {
            total += n;
            if (total > GEN_MAX_FILE_SIZE || EVP_DigestUpdate(g->ctx, blk, n) != 1) {
                rc = -1;
                break;
            }
        }
        if (ferror(f))
            rc = -1;
        if (rc == 0 && EVP_DigestFinal_ex(g->ctx, out, NULL) != 1)
            rc = -1;
    }
    fclose(f);
    if (rc < 0)
        fail("%s: cannot hash", path);
    return rc;
}

/* The name as the kernel records it for n-ng: spaces become '_'. */
static int record_name(const char *path, char *out, size_t cap)
{
    size_t n = strlen(path);
    if (n == 0 || n >= cap || n > QIMA_MAX_NAME)
        return fail("bad path '%s'", path);
    for (size_t i = 0; i <= n; i++)
        out[i] = path[i] == ' ' ? '_' : path[i];
    return 0;
}

static int write_pcrs(gen *g)
{
    for (int b = 0; b < QHASH_COUNT; b++) {
        size_t sz = qhash_size((qhash_alg)b);
        char name[64], tmpname[80], hex[2 * QHASH_MAX_SIZE + 1];
        qhex_encode(g->pcr[b].value, sz, hex);
        snprintf(name, sizeof name, "pcr10-%s.hex", qhash_name((qhash_alg)b));
        snprintf(tmpname, sizeof tmpname, "%s.tmp", name);
        FILE *f = open_out(g, tmpname, "w");
        if (!f)
            return -1;
        fprintf(f, "%s\n", hex);
        if (fclose(f) != 0)
            return fail("%s: write failed", tmpname);
        char *a = path_in(g, tmpname), *c = path_in(g, name);
        int rc = a && c ? rename(a, c) : -1;
        free(a);
        free(c);
        if (rc < 0)
            return fail("cannot rename %s", tmpname);

        /* evmctl's PCR file: PCR-00..PCR-23, PCRs 0-9 zero (matches the boot_aggregate). */
        snprintf(name, sizeof name, "pcrs-%s.txt", qhash_name((qhash_alg)b));
        f = open_out(g, name, "w");
        if (!f)
            return -1;
        for (int i = 0; i < 24; i++) {
            uint8_t v[QHASH_MAX_SIZE];
            memset(v, i >= 17 ? 0xff : 0, sz);
            char h[2 * QHASH_MAX_SIZE + 1];
            fprintf(f, "PCR-%02d: %s\n", i, i == 10 ? hex : qhex_encode(v, sz, h));
        }
        if (fclose(f) != 0)
            return fail("%s: write failed", name);
    }
    return 0;
}

static int write_policy(gen *g)
{
    char *ap = path_in(g, "allowlist.txt");
    qbuf text;
    qbuf_init(&text, QPOLICY_MAX_SIZE);
    qerr err = { 0 };
    qpolicy *p = NULL;
    char *json = NULL;
    int rc = -1;
    if (!ap || qbuf_read_file(&text, ap, QPOLICY_MAX_SIZE) < 0) {
        fail("cannot read back allowlist.txt");
        goto out;
    }
    p = qpolicy_from_allowlist((const char *)text.data, text.len, "allowlist.txt", &err);
    if (!p) {
        fail("%s", err.msg);
        goto out;
    }
    /* ima-buf digests: "hex  name" lines kept in memory. */
    const char *s = (const char *)g->imabuf.data, *end = s + g->imabuf.len;
    while (s && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *sp = memchr(s, ' ', (size_t)(nl - s));
        char hex[2 * QHASH_MAX_SIZE + 1];
        size_t hl = (size_t)(sp - s);
        memcpy(hex, s, hl);
        hex[hl] = '\0';
        if (qpolicy_add_digest(p, QPOL_IMABUF, sp + 2, (size_t)(nl - sp - 2), hex, &err) < 0) {
            fail("%s", err.msg);
            goto out;
        }
        s = nl + 1;
    }
    if (qpolicy_add_excludes(p, SAMPLE_EXCLUDES, strlen(SAMPLE_EXCLUDES), "excludes.txt", &err) < 0) {
        fail("%s", err.msg);
        goto out;
    }
    json = qpolicy_to_json(p, false, &err);
    if (!json) {
        fail("%s", err.msg);
        goto out;
    }
    FILE *f = open_out(g, "runtime_policy.json", "w");
    if (!f)
        goto out;
    fputs(json, f);
    fputc('\n', f);
    rc = fclose(f) == 0 ? 0 : fail("runtime_policy.json: write failed");
    f = open_out(g, "excludes.txt", "w");
    if (!f)
        rc = -1;
    else {
        fputs(SAMPLE_EXCLUDES, f);
        if (fclose(f) != 0)
            rc = fail("excludes.txt: write failed");
    }
out:
    free(json);
    qpolicy_free(p);
    qbuf_free(&text);
    free(ap);
    return rc;
}

/* Kinds of the body entries (1..n-1): a seeded shuffle picks the violation, fnf and bad ones. */
static int assign_kinds(gen *g, uint8_t *kind, uint64_t n, uint64_t viol, uint64_t fnf, uint64_t bad)
{
    uint64_t want = viol + fnf + bad;
    if (want > n)
        return fail("--violations + --fnf + --bad-hash (%" PRIu64 ") exceed the %" PRIu64
                    " entries after boot_aggregate", want, n);
    memset(kind, K_NORMAL, n);
    if (want == 0)
        return 0;
    uint64_t *idx = malloc(n * sizeof *idx);
    if (!idx)
        return fail("out of memory");
    for (uint64_t i = 0; i < n; i++)
        idx[i] = i;
    for (uint64_t i = 0; i < want; i++) {   /* partial Fisher-Yates */
        uint64_t j = i + rnd(g) % (n - i);
        uint64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        kind[idx[i]] = i < viol ? K_VIOLATION : i < viol + fnf ? K_FNF : K_BAD;
    }
    free(idx);
    return 0;
}

static const char *const DIRS[] = { "/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu",
                                    "/usr/libexec", "/etc", "/usr/lib/systemd", "/opt/app/lib" };
static const char *const EXTS[] = { "", ".so", ".so.1", ".conf", ".py", "" };

static int body_entry(gen *g, uint64_t i, int kind, const char *file)
{
    int tmpl = g->tmpl;
    if (tmpl == T_MIXED)
        tmpl = (int)(rnd(g) % 4);
    qhash_alg alg = tmpl == T_IMA ? QHASH_SHA1 : g->file_alg;
    size_t dl = qhash_size(alg);
    uint8_t d[QHASH_MAX_SIZE], buf[64];
    size_t buf_len = 0;
    char name[QIMA_MAX_NAME + 1];

    if (tmpl == T_BUF) {
        buf_len = 16 + (size_t)(rnd(g) % 48);
        rnd_bytes(g, buf, buf_len);
        snprintf(name, sizeof name, "buf_%" PRIu64, i);
        if (qhash_digest(g->ctx, alg, buf, buf_len, d) < 0)
            return fail("hash failed");
    } else if (file) {
        if (record_name(file, name, tmpl == T_IMA ? 256 : sizeof name) < 0 ||
            hash_file(g, alg, file, d) < 0)
            return -1;
    } else {
        uint64_t r = rnd(g);
        snprintf(name, sizeof name, "%s/f%" PRIu64 "-%06" PRIx64 "%s",
                 DIRS[r % (sizeof DIRS / sizeof *DIRS)], i, (r >> 8) & 0xffffff,
                 EXTS[(r >> 40) % (sizeof EXTS / sizeof *EXTS)]);
        rnd_bytes(g, d, dl);
    }
    if (kind == K_VIOLATION)
        memset(d, 0, dl);
    if (emit(g, tmpl, alg, d, name, buf, buf_len, kind == K_VIOLATION) < 0)
        return -1;
    allow(g, tmpl, d, dl, name, kind);
    return 0;
}

/* Replay an existing list to get the running PCRs (for --append-file). */
static int replay_existing(gen *g, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail("%s: %s", path, strerror(errno));
    char *ln = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&ln, &cap, f)) >= 0) {
        lineno++;
        if (n == 0 || ln[n - 1] != '\n') {
            rc = fail("%s:%lu: incomplete last line", path, lineno);
            break;
        }
        ln[--n] = '\0';
        if (n == 0)
            continue;
        qima_entry e;
        qerr err = { 0 };
        if (n > QIMA_MAX_LINE || qima_parse_line(ln, (size_t)n, &e, g->scratch, &err) < 0) {
            rc = fail("%s:%lu: %s", path, lineno, err.msg[0] ? err.msg : "line too long");
            break;
        }
        long tlen = qima_template_data(&e, g->tdata, QIMA_SCRATCH_SIZE);
        if (tlen < 0) {
            rc = fail("%s:%lu: template data too large", path, lineno);
            break;
        }
        bool viol = qima_is_violation(&e);
        for (int b = 0; b < QHASH_COUNT && rc == 0; b++) {
            uint8_t ext[QHASH_MAX_SIZE];
            if (viol)
                rc = qpcr_extend_ff(&g->pcr[b], g->ctx);
            else if (qhash_digest(g->ctx, (qhash_alg)b, g->tdata, (size_t)tlen, ext) < 0)
                rc = -1;
            else
                rc = qpcr_extend(&g->pcr[b], g->ctx, ext);
        }
    }
    free(ln);
    fclose(f);
    return rc;
}

/* Append the whole of mem to DIR/name (one write, O_APPEND); a missing binary list is skipped. */
static int append_to(gen *g, const char *name, const char *mem, size_t len, bool optional)
{
    char *p = path_in(g, name);
    int fd = p ? open(p, O_WRONLY | O_APPEND) : -1;
    int rc = 0;
    if (fd < 0) {
        if (!(optional && errno == ENOENT))
            rc = fail("%s: %s", p ? p : name, strerror(errno));
    } else if (write(fd, mem, len) != (ssize_t)len)
        rc = fail("%s: cannot append", p);
    if (fd >= 0)
        close(fd);
    free(p);
    return rc;
}

static int append_file(gen *g, const char *file, const char *as_name)
{
    char *list = path_in(g, "ascii_runtime_measurements");
    int rc = list ? replay_existing(g, list) : -1;
    free(list);
    if (rc < 0)
        return -1;
    /* Build the new ASCII line and binary entry in memory, then append each with one write. */
    char *amem = NULL, *bmem = NULL;
    size_t alen = 0, blen = 0;
    g->ascii = open_memstream(&amem, &alen);
    g->bin = open_memstream(&bmem, &blen);
    int tmpl = g->tmpl == T_SIG ? T_SIG : g->tmpl == T_IMA ? T_IMA : T_NG;
    qhash_alg alg = tmpl == T_IMA ? QHASH_SHA1 : g->file_alg;
    uint8_t d[QHASH_MAX_SIZE];
    char name[QIMA_MAX_NAME + 1];
    rc = -1;
    if (g->ascii && g->bin &&
        record_name(as_name ? as_name : file, name, tmpl == T_IMA ? 256 : sizeof name) == 0 &&
        hash_file(g, alg, file, d) == 0 && emit(g, tmpl, alg, d, name, NULL, 0, false) == 0)
        rc = 0;
    if (g->ascii)
        fclose(g->ascii);
    if (g->bin)
        fclose(g->bin);
    g->ascii = g->bin = NULL;
    if (rc == 0)
        rc = append_to(g, "ascii_runtime_measurements", amem, alen, false);
    if (rc == 0)
        rc = append_to(g, "binary_runtime_measurements", bmem, blen, true);
    free(amem);
    free(bmem);
    return rc == 0 ? write_pcrs(g) : -1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: ima_gen --out-dir DIR [options]           write a new synthetic list\n"
        "       ima_gen --out-dir DIR --append-file FILE   append one measured file to DIR's list\n"
        "\n"
        "  --entries N               lines in the list, boot_aggregate included (default 100)\n"
        "  --seed S                  random seed (default 1)\n"
        "  --template T              ima-ng (default), ima-sig, ima, ima-buf or mixed\n"
        "  --file-hash ALG           file digest algorithm: sha256 (default), sha1, sha384, sha512\n"
        "  --violations N            N violation entries (zero template hash)\n"
        "  --fnf N                   N entries left out of the allowlist\n"
        "  --bad-hash N              N entries with a wrong allowlist digest\n"
        "  --boot-aggregate-pcrs N   8 or 10 (default 10): PCRs in the boot_aggregate (all zero)\n"
        "  --from-files PATH...      measure these real files instead of random ones (digest of\n"
        "                            the content, path as given; also takes positional PATHs)\n"
        "  --append-file FILE        append one entry for FILE to the list, update pcr10-*.hex\n"
        "  --name PATH               with --append-file: record PATH instead of FILE\n"
        "  --write-extends           also write extends-<bank>.hex (one extend per entry)\n");
}

static int parse_u64(const char *s, uint64_t *out, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max)
        return fail("bad number '%s'", s);
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "out-dir", required_argument, NULL, 'o' },
        { "entries", required_argument, NULL, 'n' },
        { "seed", required_argument, NULL, 's' },
        { "template", required_argument, NULL, 't' },
        { "file-hash", required_argument, NULL, 'H' },
        { "violations", required_argument, NULL, 'v' },
        { "fnf", required_argument, NULL, 'f' },
        { "bad-hash", required_argument, NULL, 'b' },
        { "from-files", required_argument, NULL, 'F' },
        { "boot-aggregate-pcrs", required_argument, NULL, 'p' },
        { "append-file", required_argument, NULL, 'a' },
        { "name", required_argument, NULL, 'N' },
        { "write-extends", no_argument, NULL, 'x' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    gen g;
    memset(&g, 0, sizeof g);
    g.file_alg = QHASH_SHA256;
    uint64_t entries = 100, viol = 0, fnf = 0, bad = 0, seed = 1, pcrs = 10;
    const char *append = NULL, *as_name = NULL;
    bool extends = false;
    char **files = calloc((size_t)argc + 1, sizeof *files);
    size_t nfiles = 0;
    int opt, rc = 1;
    if (!files)
        return 1;
    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int bad_opt = 0;
        switch (opt) {
        case 'o': g.dir = optarg; break;
        case 'n': bad_opt = parse_u64(optarg, &entries, GEN_MAX_ENTRIES); break;
        case 's': bad_opt = parse_u64(optarg, &seed, UINT64_MAX); break;
        case 'v': bad_opt = parse_u64(optarg, &viol, GEN_MAX_ENTRIES); break;
        case 'f': bad_opt = parse_u64(optarg, &fnf, GEN_MAX_ENTRIES); break;
        case 'b': bad_opt = parse_u64(optarg, &bad, GEN_MAX_ENTRIES); break;
        case 'p':
            bad_opt = parse_u64(optarg, &pcrs, GEN_MAX_ENTRIES);
            if (!bad_opt && pcrs != 8 && pcrs != 10)
                bad_opt = fail("--boot-aggregate-pcrs must be 8 or 10");
            break;
        case 'F': files[nfiles++] = optarg; break;
        case 'a': append = optarg; break;
        case 'N': as_name = optarg; break;
        case 'x': extends = true; break;
        case 't':
            if (!strcmp(optarg, "ima-ng")) g.tmpl = T_NG;
            else if (!strcmp(optarg, "ima-sig")) g.tmpl = T_SIG;
            else if (!strcmp(optarg, "ima")) g.tmpl = T_IMA;
            else if (!strcmp(optarg, "ima-buf")) g.tmpl = T_BUF;
            else if (!strcmp(optarg, "mixed")) g.tmpl = T_MIXED;
            else bad_opt = fail("unknown template '%s'", optarg);
            break;
        case 'H':
            if (qhash_from_name(optarg, &g.file_alg) < 0)
                bad_opt = fail("unknown hash '%s'", optarg);
            break;
        case 'h': usage(stdout); free(files); return 0;
        default: usage(stderr); free(files); return 2;
        }
        if (bad_opt) {
            free(files);
            return 2;
        }
    }
    if (nfiles > 0)
        while (optind < argc)
            files[nfiles++] = argv[optind++];
    if (!g.dir || optind < argc) {
        usage(stderr);
        free(files);
        return 2;
    }
    if (mkdir(g.dir, 0755) < 0 && errno != EEXIST) {
        fail("%s: %s", g.dir, strerror(errno));
        free(files);
        return 1;
    }

    g.rng = seed;
    g.ctx = EVP_MD_CTX_new();
    g.scratch = malloc(QIMA_SCRATCH_SIZE);
    g.tdata = malloc(QIMA_SCRATCH_SIZE);
    g.line = malloc(QIMA_MAX_LINE + 2);
    qbuf_init(&g.imabuf, QPOLICY_MAX_SIZE);
    for (int b = 0; b < QHASH_COUNT; b++)
        qpcr_init(&g.pcr[b], (qhash_alg)b);
    uint8_t *kind = NULL;
    if (!g.ctx || !g.scratch || !g.tdata || !g.line) {
        fail("out of memory");
        goto out;
    }

    if (append) {
        rc = append_file(&g, append, as_name) == 0 ? 0 : 1;
        goto out;
    }

    uint64_t body = nfiles > 0 ? nfiles : entries > 0 ? entries - 1 : 0;
    kind = malloc(body ? body : 1);
    if (!kind || assign_kinds(&g, kind, body, viol, fnf, bad) < 0)
        goto out;
    g.ascii = open_out(&g, "ascii_runtime_measurements", "w");
    g.bin = open_out(&g, "binary_runtime_measurements", "wb");
    g.allow = open_out(&g, "allowlist.txt", "w");
    if (!g.ascii || !g.bin || !g.allow)
        goto out;
    for (int b = 0; extends && b < QHASH_COUNT; b++) {
        char name[64];
        snprintf(name, sizeof name, "extends-%s.hex", qhash_name((qhash_alg)b));
        if (!(g.ext[b] = open_out(&g, name, "w")))
            goto out;
    }
    if ((nfiles > 0 || entries > 0) && boot_aggregate(&g, (int)pcrs) < 0)
        goto out;
    for (uint64_t i = 0; i < body; i++)
        if (body_entry(&g, i + 1, kind[i], nfiles > 0 ? files[i] : NULL) < 0)
            goto out;
    int werr = 0;
    FILE **fs[] = { &g.ascii, &g.bin, &g.allow, &g.ext[0], &g.ext[1], &g.ext[2], &g.ext[3] };
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) {
        if (*fs[i] && fclose(*fs[i]) != 0)
            werr = fail("write failed: %s", strerror(errno));
        *fs[i] = NULL;
    }
    if (werr == 0 && write_pcrs(&g) == 0 && write_policy(&g) == 0)
        rc = 0;
out:
    if (g.ascii) fclose(g.ascii);
    if (g.bin) fclose(g.bin);
    if (g.allow) fclose(g.allow);
    for (int b = 0; b < QHASH_COUNT; b++)
        if (g.ext[b])
            fclose(g.ext[b]);
    qbuf_free(&g.imabuf);
    free(kind);
    free(g.line);
    free(g.tdata);
    free(g.scratch);
    EVP_MD_CTX_free(g.ctx);
    free(files);
    return rc;
}
