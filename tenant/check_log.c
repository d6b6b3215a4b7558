/* check_log.c — `quince-tenant check-log`: verify an IMA measurement list offline.
 * Loads an allowlist or a runtime policy (plus optional excludes), streams the list through the
 * engine in fixed-size blocks (the file is never loaded whole), and reports every failing entry,
 * the engine's Keylime log lines (seed format) and a summary. Exit: 0 pass, 1 fail, 2 unusable
 * input. Errors are one line on stderr: "quince-tenant: check-log: <file>[:<line>]: <reason>". */
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
#include <unistd.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "err.h"
#include "hex.h"
#include "ima_entry.h"
#include "ima_verify.h"
#include "log.h"
#include "pcr_bank.h"
#include "policy.h"
#include "tenant.h"

#define CL_BLOCK      (1u << 20)               /* bytes read per call */
#define CL_BUF_CAP    (2u * CL_BLOCK)          /* longest line we can carry over */
#define CL_JSON_MAX   10000                    /* failures / messages kept for --json */
#define CL_PRINT_MAX  (2 * QIMA_MAX_NAME + 1024)

enum { CL_PASS = 0, CL_FAIL = 1, CL_UNUSABLE = 2 };

typedef struct cl_ctx {
    bool json, quiet;
    cJSON *failures, *messages;   /* --json only */
    uint64_t nfail_json, nmsg_json, failures_total, messages_total;
} cl_ctx;

static void err_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("quince-tenant: check-log: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Library messages name their source already ("file:line: ..."); add the file otherwise. */
static void err_src(const char *file, const char *msg)
{
    size_t n = strlen(file);
    if (strncmp(msg, file, n) == 0 && msg[n] == ':')
        err_line("%s", msg);
    else
        err_line("%s: %s", file, msg);
}

/* Copy s[0..n) into out with control bytes, DEL and backslash escaped (a measurement list is
 * untrusted input; never echo raw control characters to a terminal). */
static const char *clean(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            o += (size_t)snprintf(out + o, cap - o, c == '\\' ? "\\\\" : "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

/* A short reason per failure kind (the last part of Keylime's event id, made clearer). */
static const char *short_reason(const qima_failure *f)
{
    static const char *const names[QIMA_FAIL_COUNT] = {
        [QIMA_FAIL_PARSE] = "parse_error",
        [QIMA_FAIL_PCR_COLUMN] = "ima_pcr",
        [QIMA_FAIL_VIOLATION] = "tomtou",
        [QIMA_FAIL_TEMPLATE_HASH] = "ima_hash",
        [QIMA_FAIL_NOT_IN_ALLOWLIST] = "not_in_allowlist",
        [QIMA_FAIL_HASH] = "runtime_policy_hash",
        [QIMA_FAIL_BAD_SIG] = "invalid_signature",
        [QIMA_FAIL_INVALID_KEY] = "invalid_key",
        [QIMA_FAIL_PCR_MISMATCH] = "pcr_mismatch",
        [QIMA_FAIL_QUOTE_PROGRESS] = "quote_progress",
    };
    if ((unsigned)f->kind < QIMA_FAIL_COUNT && names[f->kind])
        return names[f->kind];
    const char *dot = f->event_id ? strrchr(f->event_id, '.') : NULL;
    return dot ? dot + 1 : f->event_id ? f->event_id : "failure";
}

static void on_failure(void *vctx, const qima_failure *f)
{
    cl_ctx *c = vctx;
    c->failures_total++;
    const char *msg = f->message ? f->message : "";
    const char *path = f->path ? f->path : "";
    if (c->json) {
        if (c->nfail_json >= CL_JSON_MAX)
            return;
        cJSON *o = cJSON_CreateObject();
        if (!o)
            return;
        bool list_level = f->entry == UINT64_MAX;
        if (list_level) {
            cJSON_AddNullToObject(o, "entry");
            cJSON_AddNullToObject(o, "line");
        } else {
            cJSON_AddNumberToObject(o, "entry", (double)f->entry);
            cJSON_AddNumberToObject(o, "line", (double)f->line);
        }
        char *p = strndup(path, f->path_len);
        cJSON_AddStringToObject(o, "path", p ? p : "");
        free(p);
        cJSON_AddStringToObject(o, "event_id", f->event_id ? f->event_id : "");
        cJSON_AddStringToObject(o, "reason", short_reason(f));
        cJSON_AddStringToObject(o, "message", msg);
        cJSON_AddItemToArray(c->failures, o);
        c->nfail_json++;
        return;
    }
    if (c->quiet)
        return;
    char pbuf[CL_PRINT_MAX], mbuf[CL_PRINT_MAX];
    clean(msg, strlen(msg), mbuf, sizeof mbuf);
    if (f->entry == UINT64_MAX)
        printf("list: %s: %s\n", short_reason(f), mbuf);
    else
        printf("entry %" PRIu64 " (line %" PRIu64 "): %s: %s: %s\n", f->entry, f->line,
               f->path_len ? clean(path, f->path_len, pbuf, sizeof pbuf) : "-",
               short_reason(f), mbuf);
}

/* The engine's Keylime log lines (module "ima"): printed verbatim (control bytes escaped). */
static void on_log(void *vctx, qlog_level lvl, const char *module, const char *msg)
{
    cl_ctx *c = vctx;
    (void)module;
    if (lvl < QLOG_WARNING || !msg)
        return;
    c->messages_total++;
    if (c->json) {
        if (c->nmsg_json < CL_JSON_MAX && cJSON_AddItemToArray(c->messages, cJSON_CreateString(msg)))
            c->nmsg_json++;
        return;
    }
    if (c->quiet)
        return;
    char buf[CL_PRINT_MAX];
    printf("%s\n", clean(msg, strlen(msg), buf, sizeof buf));
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant check-log --log FILE (--allowlist FILE | --runtime-policy FILE)\n"
        "                               [--exclude FILE] [--pcr10 HEX [--bank ALG]]\n"
        "                               [--violations pass|fail] [--json] [--quiet]\n"
        "\n"
        "Verify an IMA measurement list (the ASCII format of\n"
        "/sys/kernel/security/ima/ascii_runtime_measurements) offline, the way the verifier does:\n"
        "every entry's template hash is recomputed, its file is looked up in the policy, and the\n"
        "list is replayed into PCR 10.\n"
        "\n"
        "  --log FILE              the measurement list (read in 1 MiB blocks, any size)\n"
        "  --allowlist FILE        a flat allowlist (\"<hex>  <path>\", sha256sum output) or a\n"
        "                          legacy JSON allowlist\n"
        "  --runtime-policy FILE   a Keylime runtime policy (JSON, version 1); give this or\n"
        "                          --allowlist, not both\n"
        "  --exclude FILE          regexes, one per line, matched at the start of file names;\n"
        "                          matching entries are not checked against the policy\n"
        "  --pcr10 HEX             the PCR 10 value of the quote: the list must replay to it\n"
        "                          after some prefix of its lines (or before the first line)\n"
        "  --bank ALG              the PCR bank replayed: sha1, sha256, sha384, sha512 (default:\n"
        "                          from the length of --pcr10, else sha256)\n"
        "  --violations pass|fail  violation entries (all-zero template hash): accepted\n"
        "                          (default) or counted as failures\n"
        "  --json                  print one JSON object instead of text\n"
        "  --quiet                 print nothing; only the exit status tells the result\n"
        "  --help                  this text\n"
        "\n"
        "Output: one line per failing entry (\"entry <n> (line <l>): <file>: <reason>: <message>\"),\n"
        "the verifier's log lines (\"File not found in allowlist: <path>\", \"IMA ERRORS: ...\"),\n"
        "and a summary line \"result: PASS|FAIL ...\" with the replayed PCR 10.\n"
        "\n"
        "Exit status: 0 the list passes; 1 it fails (a failing or unparsable entry, an incomplete\n"
        "last line, a PCR 10 mismatch); 2 unusable input (a missing or unreadable file, a policy\n"
        "that does not parse, an invalid exclude regex, a bad --pcr10 value, bad options).\n"
        "An empty list or an empty allowlist is valid input and is judged like any other.\n");
}

typedef struct cl_args {
    const char *log, *allowlist, *policy, *exclude, *pcr_hex, *bank_name;
    bool violations_fail, json, quiet;
} cl_args;

static int parse_args(int argc, char **argv, cl_args *a)
{
    static const struct option lo[] = {
        { "log", required_argument, NULL, 'l' },
        { "allowlist", required_argument, NULL, 'a' },
        { "runtime-policy", required_argument, NULL, 'r' },
        { "exclude", required_argument, NULL, 'e' },
        { "pcr10", required_argument, NULL, 'p' },
        { "bank", required_argument, NULL, 'b' },
        { "violations", required_argument, NULL, 'v' },
        { "json", no_argument, NULL, 'j' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof *a);
    optind = 0;     /* full re-initialisation (the command may run more than once per process) */
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
        switch (opt) {
        case 'l': a->log = optarg; break;
        case 'a': a->allowlist = optarg; break;
        case 'r': a->policy = optarg; break;
        case 'e': a->exclude = optarg; break;
        case 'p': a->pcr_hex = optarg; break;
        case 'b': a->bank_name = optarg; break;
        case 'j': a->json = true; break;
        case 'q': a->quiet = true; break;
        case 'v':
            if (strcmp(optarg, "pass") == 0)
                a->violations_fail = false;
            else if (strcmp(optarg, "fail") == 0)
                a->violations_fail = true;
            else {
                err_line("--violations must be 'pass' or 'fail', not '%s'", optarg);
                return -1;
            }
            break;
        case 'h': usage(stdout); return 1;
        default:
            err_line("unknown option or missing value: '%s' (see --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        err_line("unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    if (!a->log) {
        err_line("--log FILE is required (see --help)");
        return -1;
    }
    if (!a->allowlist && !a->policy) {
        err_line("--allowlist FILE or --runtime-policy FILE is required (see --help)");
        return -1;
    }
    if (a->allowlist && a->policy) {
        err_line("give either --allowlist or --runtime-policy, not both (use --exclude to add "
                 "excludes to an allowlist)");
        return -1;
    }
    return 0;
}

/* --pcr10 / --bank → bank and decoded value. */
static int parse_pcr(const cl_args *a, qhash_alg *bank, uint8_t *pcr, size_t *pcr_len)
{
    *bank = QHASH_SHA256;
    *pcr_len = 0;
    if (a->bank_name && qhash_from_name(a->bank_name, bank) < 0) {
        err_line("unknown --bank '%s' (sha1, sha256, sha384, sha512)", a->bank_name);
        return -1;
    }
    if (!a->pcr_hex)
        return 0;
    const char *h = a->pcr_hex;
    if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X'))
        h += 2;
    size_t n = strlen(h);
    long got = qhex_decode(h, n, pcr, QHASH_MAX_SIZE);
    if (n == 0 || got < 0) {
        err_line("--pcr10: not a hex value: '%s'", a->pcr_hex);
        return -1;
    }
    if (!a->bank_name && qhash_from_size((size_t)got, bank) < 0) {
        err_line("--pcr10: %ld bytes is not the size of a PCR bank (20, 32, 48 or 64)", got);
        return -1;
    }
    if ((size_t)got != qhash_size(*bank)) {
        err_line("--pcr10: %ld bytes, but a %s PCR has %zu", got, qhash_name(*bank),
                 qhash_size(*bank));
        return -1;
    }
    *pcr_len = (size_t)got;
    return 0;
}

static int read_text(const char *path, qbuf *b)
{
    qbuf_init(b, QPOLICY_MAX_SIZE + 1);
    if (qbuf_read_file(b, path, QPOLICY_MAX_SIZE) < 0) {
        err_line("%s: %s", path, errno == EFBIG ? "file too large" : strerror(errno));
        qbuf_free(b);
        return -1;
    }
    return 0;
}

static qpolicy *load_policy(const cl_args *a)
{
    const char *path = a->allowlist ? a->allowlist : a->policy;
    qbuf text;
    if (read_text(path, &text) < 0)
        return NULL;
    qerr err = { 0 };
    const char *t = text.data ? (const char *)text.data : "";
    qpolicy *p = a->allowlist ? qpolicy_from_allowlist(t, text.len, path, &err)
                              : qpolicy_from_json(t, text.len, path, &err);
    qbuf_free(&text);
    if (!p) {
        err_src(path, err.msg[0] ? err.msg : "cannot load the policy");
        return NULL;
    }
    if (a->exclude) {
        if (read_text(a->exclude, &text) < 0) {
            qpolicy_free(p);
            return NULL;
        }
        t = text.data ? (const char *)text.data : "";
        int rc = qpolicy_add_excludes(p, t, text.len, a->exclude, &err);
        qbuf_free(&text);
        if (rc < 0) {
            err_src(a->exclude, err.msg[0] ? err.msg : "invalid exclude list");
            qpolicy_free(p);
            return NULL;
        }
    }
    return p;
}

typedef struct cl_stream {
    uint64_t bytes;
    bool incomplete;      /* bytes after the last '\n' */
    bool too_long;        /* a line longer than the carry-over buffer */
} cl_stream;

/* Feed the list through the verifier in CL_BLOCK reads. 0, or -1 after an error line. */
static int stream_log(const char *path, int fd, qima_verifier *v, char *buf, cl_stream *st)
{
    size_t have = 0;
    for (;;) {
        size_t room = CL_BUF_CAP - have;
        ssize_t n = read(fd, buf + have, room < CL_BLOCK ? room : CL_BLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err_line("%s: %s", path, strerror(errno));
            return -1;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        st->bytes += (uint64_t)n;
        long used = qima_verifier_feed(v, buf, have);
        if (used < 0) {
            err_line("%s: the verification engine failed", path);
            return -1;
        }
        have -= (size_t)used;
        if (have > 0 && used > 0)
            memmove(buf, buf + used, have);
        if (have == CL_BUF_CAP) {
            st->too_long = true;
            return 0;
        }
    }
    st->incomplete = have > 0;
    return 0;
}

static void hexs(const uint8_t *p, size_t n, char *out)
{
    qhex_encode(p, n, out);
}

static void print_summary(const cl_args *a, const qima_result *r, qhash_alg bank, const uint8_t *pcr,
                          size_t pcr_len, bool passed)
{
    const qima_counts *c = &r->counts;
    char fin[2 * QHASH_MAX_SIZE + 1], quoted[2 * QHASH_MAX_SIZE + 1];
    hexs(r->final_pcr.value, qhash_size(bank), fin);
    printf("result: %s entries=%" PRIu64 " good=%" PRIu64 " template-hash=%" PRIu64 " fnf=%" PRIu64
           " hash=%" PRIu64 " bad-sig=%" PRIu64 " invalid-key=%" PRIu64 " parse-errors=%" PRIu64
           " pcr-column=%" PRIu64 " violations=%" PRIu64 " excluded=%" PRIu64 " failures=%" PRIu64
           " pcr10(%s)=%s",
           passed ? "PASS" : "FAIL", c->lines, c->good, c->template_hash, c->fnf, c->hash,
           c->bad_sig, c->invalid_key, c->parse_errors, c->pcr_column, c->violations, c->excluded,
           r->failures, qhash_name(bank), fin);
    if (a->pcr_hex) {
        hexs(pcr, pcr_len, quoted);
        if (r->pcr_matched)
            printf(" matched at line %" PRIu64, r->match_line);
        else
            printf(" does not match the quoted %s", quoted);
    }
    putchar('\n');
}

static void print_json(cl_ctx *c, const cl_args *a, const qima_result *r, qhash_alg bank,
                       const uint8_t *pcr, size_t pcr_len, bool passed, const cl_stream *st)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    char hex[2 * QHASH_MAX_SIZE + 1];
    cJSON_AddBoolToObject(o, "passed", passed);
    cJSON_AddStringToObject(o, "result", passed ? "PASS" : "FAIL");
    cJSON_AddStringToObject(o, "log", a->log);
    cJSON_AddNumberToObject(o, "entries", (double)r->counts.lines);
    cJSON_AddNumberToObject(o, "raw_lines", (double)r->raw_lines);
    cJSON *cnt = cJSON_AddObjectToObject(o, "counts");
    const qima_counts *k = &r->counts;
    cJSON_AddNumberToObject(cnt, "good", (double)k->good);
    cJSON_AddNumberToObject(cnt, "template_hash", (double)k->template_hash);
    cJSON_AddNumberToObject(cnt, "fnf", (double)k->fnf);
    cJSON_AddNumberToObject(cnt, "hash", (double)k->hash);
    cJSON_AddNumberToObject(cnt, "bad_sig", (double)k->bad_sig);
    cJSON_AddNumberToObject(cnt, "invalid_key", (double)k->invalid_key);
    cJSON_AddNumberToObject(cnt, "parse_errors", (double)k->parse_errors);
    cJSON_AddNumberToObject(cnt, "pcr_column", (double)k->pcr_column);
    cJSON_AddNumberToObject(cnt, "violations", (double)k->violations);
    cJSON_AddNumberToObject(cnt, "excluded", (double)k->excluded);
    cJSON *pt = cJSON_AddObjectToObject(cnt, "failing_per_template");
    for (int t = 0; t < 4; t++)
        cJSON_AddNumberToObject(pt, qima_template_name((qima_template)t), (double)k->per_template[t]);
    cJSON *pc = cJSON_AddObjectToObject(o, "pcr10");
    cJSON_AddStringToObject(pc, "bank", qhash_name(bank));
    hexs(r->final_pcr.value, qhash_size(bank), hex);
    cJSON_AddStringToObject(pc, "replayed", hex);
    cJSON_AddBoolToObject(pc, "checked", a->pcr_hex != NULL);
    if (a->pcr_hex) {
        hexs(pcr, pcr_len, hex);
        cJSON_AddStringToObject(pc, "quoted", hex);
        cJSON_AddBoolToObject(pc, "matched", r->pcr_matched);
        if (r->pcr_matched)
            cJSON_AddNumberToObject(pc, "match_line", (double)r->match_line);
        else
            cJSON_AddNullToObject(pc, "match_line");
    }
    cJSON_AddNumberToObject(o, "failures_total", (double)c->failures_total);
    cJSON_AddBoolToObject(o, "failures_truncated", c->failures_total > c->nfail_json);
    cJSON_AddItemToObject(o, "failures", c->failures);
    c->failures = NULL;
    cJSON_AddItemToObject(o, "messages", c->messages);
    c->messages = NULL;
    if (st->incomplete || st->too_long) {
        cJSON *e = cJSON_AddObjectToObject(o, "stream_error");
        cJSON_AddNumberToObject(e, "line", (double)r->raw_lines + 1);
        cJSON_AddStringToObject(e, "reason", st->too_long ? "line too long" :
                                "incomplete last line (no newline)");
    }
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

int tenant_check_log(int argc, char **argv)
{
    cl_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc != 0)
        return prc > 0 ? CL_PASS : CL_UNUSABLE;
    qhash_alg bank;
    uint8_t pcr[QHASH_MAX_SIZE];
    size_t pcr_len;
    if (parse_pcr(&a, &bank, pcr, &pcr_len) < 0)
        return CL_UNUSABLE;

    int rc = CL_UNUSABLE, fd = -1;
    char *buf = NULL;
    qima_verifier *v = NULL;
    cl_ctx c = { .json = a.json, .quiet = a.quiet && !a.json };
    qpolicy *p = load_policy(&a);
    if (!p)
        return CL_UNUSABLE;
    fd = open(a.log, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_line("%s: %s", a.log, strerror(errno));
        goto out;
    }
    buf = malloc(CL_BUF_CAP);
    if (c.json) {
        c.failures = cJSON_CreateArray();
        c.messages = cJSON_CreateArray();
    }
    if (!buf || (c.json && (!c.failures || !c.messages))) {
        err_line("out of memory");
        goto out;
    }
    qima_opts o = {
        .policy = p, .bank = bank, .violations_fail = a.violations_fail,
        .on_failure = on_failure, .cb_ctx = &c, .log = true,
    };
    qerr err = { 0 };
    v = qima_verifier_new(&o, &err);
    if (!v || qima_verifier_begin(v, NULL, pcr_len ? pcr : NULL, pcr_len, &err) < 0) {
        err_line("%s", err.msg[0] ? err.msg : "cannot start the verification engine");
        goto out;
    }

    /* The engine's Keylime log lines go to stdout (or the JSON), not to stderr. */
    qlog_level old_level = qlog_get_level();
    qlog_set_level(QLOG_WARNING);
    qlog_use_stderr(false);
    qlog_set_sink(on_log, &c);
    cl_stream st = { 0 };
    int srt = stream_log(a.log, fd, v, buf, &st);
    qima_result r;
    memset(&r, 0, sizeof r);
    int frc = srt == 0 ? qima_verifier_finish(v, &r) : -1;
    qlog_set_sink(NULL, NULL);
    qlog_use_stderr(true);
    qlog_set_level(old_level);
    if (srt < 0)
        goto out;
    if (frc < 0) {
        err_line("%s: the verification engine failed", a.log);
        goto out;
    }

    bool passed = r.passed && !st.incomplete && !st.too_long;
    if (c.json)
        print_json(&c, &a, &r, bank, pcr, pcr_len, passed, &st);
    else if (!c.quiet) {
        if (st.too_long)
            printf("line %" PRIu64 ": line too long (more than %u bytes); the rest of the list "
                   "was not read\n", r.raw_lines + 1, CL_BUF_CAP);
        else if (st.incomplete)
            printf("line %" PRIu64 ": incomplete last line (no newline)\n", r.raw_lines + 1);
        print_summary(&a, &r, bank, pcr, pcr_len, passed);
    }
    fflush(stdout);
    rc = passed ? CL_PASS : CL_FAIL;
out:
    if (fd >= 0)
        close(fd);
    qima_verifier_free(v);
    qpolicy_free(p);
    cJSON_Delete(c.failures);
    cJSON_Delete(c.messages);
    free(buf);
    return rc;
}
