/* ima_emulator.c — `quince-agent ima-emulator`: extends a software TPM's PCR 10 as the kernel would
 * for the lines of an IMA ASCII measurement list (see ima_emulator.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "ima_emulator.h"
#include "ima_entry.h"
#include "log.h"

#define MOD "ima_emulator"
#define RBUF_SIZE (QIMA_MAX_LINE + 1 + 64 * 1024)
#define PCR_IMA 10
#define FATAL (-1)
#define RETRY (-2)          /* a TPM error: try again (after re-reading PCR 10) */

typedef struct emu {
    const agent_imaemu_opts *o;
    qtpm *t;
    int fd;
    uint32_t banks;
    uint64_t pos;           /* byte offset after the last line PCR 10 holds */
    uint64_t scan_end;      /* offset after the last line looked at in this round */
    bool synced;
    uint64_t extended;      /* lines extended by this process */
    EVP_MD_CTX *ctx;
    uint8_t *scratch, *tdata;
    char *rbuf;
    size_t nbatch;
    qtpm_digests batch[QTPM_EXTEND_BATCH];
    uint64_t batch_end[QTPM_EXTEND_BATCH];
    /* replay */
    qpcr running[QHASH_COUNT], target[QHASH_COUNT];
    bool found;
    uint64_t found_end, found_lines, replay_lines;
} emu;

typedef int (*line_fn)(emu *m, const char *line, size_t len, uint64_t end, qerr *err);

/* ---- one line ------------------------------------------------------------------------------- */

int agent_imaemu_line_digests(const char *line, size_t len, uint32_t banks, qhash_alg log_alg, EVP_MD_CTX *ctx,
                              uint8_t *scratch, uint8_t *tdata, qtpm_digests *out, bool *mismatch, qerr *err)
{
    *mismatch = false;
    if (len == 0) {
        qerr_set(err, "empty line");
        return 0;
    }
    qima_entry e;
    if (qima_parse_line(line, len, &e, scratch, err) != 0)
        return 0;
    long tl = qima_template_data(&e, tdata, QIMA_SCRATCH_SIZE);
    if (tl < 0) {
        qerr_set(err, "template data larger than %d bytes", QIMA_SCRATCH_SIZE);
        return 0;
    }
    bool violation = qima_is_violation(&e);
    uint8_t h[QHASH_MAX_SIZE];
    if (!violation) {
        if (qhash_digest(ctx, log_alg, tdata, (size_t)tl, h) != 0)
            return qerr_set(err, "cannot hash with %s", qhash_name(log_alg));
        *mismatch = e.template_hash_len != qhash_size(log_alg) || memcmp(h, e.template_hash, e.template_hash_len) != 0;
    }
    out->count = 0;
    for (int b = 0; b < QHASH_COUNT; b++) {
        if (!(banks & (1u << b)))
            continue;
        unsigned k = out->count++;
        out->alg[k] = (qhash_alg)b;
        if (violation)
            memset(out->value[k], 0xff, qhash_size((qhash_alg)b));
        else if (qhash_digest(ctx, (qhash_alg)b, tdata, (size_t)tl, out->value[k]) != 0)
            return qerr_set(err, "cannot hash with %s", qhash_name((qhash_alg)b));
    }
    return 1;
}

/* Digests of a line, logging why a line is skipped or has a wrong template hash. */
static int digests(emu *m, const char *line, size_t len, uint64_t end, qtpm_digests *out, bool log)
{
    qerr e = { 0 };
    bool mismatch;
    int r = agent_imaemu_line_digests(line, len, m->banks, m->o->log_alg, m->ctx, m->scratch, m->tdata, out,
                                      &mismatch, &e);
    if (r < 0)
        qlog(QLOG_ERROR, MOD, "%s", e.msg);
    else if (r == 0 && len > 0 && log)
        qlog(QLOG_WARNING, MOD, "line ending at byte %" PRIu64 " not extended: %s", end, e.msg);
    else if (r == 1 && mismatch && log)
        qlog(QLOG_WARNING, MOD, "line ending at byte %" PRIu64 ": template hash does not match the template "
             "data; extending the recomputed value", end);
    return r;
}

/* ---- reading the list ----------------------------------------------------------------------- */

/* fn for each complete line from offset `from` on; stops at fn's first non-zero result. */
static int for_lines(emu *m, uint64_t from, line_fn fn, qerr *err)
{
    uint64_t off = from;
    for (;;) {
        ssize_t n = pread(m->fd, m->rbuf, RBUF_SIZE, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            qerr_set(err, "cannot read %s: %s", m->o->ima_log, strerror(errno));
            return FATAL;
        }
        size_t start = 0;
        const char *nl;
        while ((nl = memchr(m->rbuf + start, '\n', (size_t)n - start)) != NULL) {
            size_t len = (size_t)(nl - (m->rbuf + start));
            int r = fn(m, m->rbuf + start, len, off + start + len + 1, err);
            if (r != 0)
                return r;
            start += len + 1;
        }
        if (start == 0 && (size_t)n == RBUF_SIZE) {
            qerr_set(err, "%s: line at byte %" PRIu64 " is longer than %d bytes", m->o->ima_log, off,
                     QIMA_MAX_LINE);
            return FATAL;
        }
        if ((size_t)n < RBUF_SIZE)
            return 0;           /* the rest, if any, is a partial line */
        off += start;
    }
}

/* ---- finding the position PCR 10 holds ------------------------------------------------------ */

static bool holds_target(emu *m)
{
    for (int b = 0; b < QHASH_COUNT; b++)
        if ((m->banks & (1u << b)) && !qpcr_equals(&m->running[b], m->target[b].value, qhash_size((qhash_alg)b)))
            return false;
    return true;
}

static int replay_line(emu *m, const char *line, size_t len, uint64_t end, qerr *err)
{
    qtpm_digests d;
    int r = digests(m, line, len, end, &d, false);
    if (r < 0) {
        qerr_set(err, "replay failed");
        return FATAL;
    }
    if (r == 0)
        return 0;
    m->replay_lines++;
    for (unsigned k = 0; k < d.count; k++)
        if (qpcr_extend(&m->running[d.alg[k]], m->ctx, d.value[k]) != 0) {
            qerr_set(err, "replay: hashing failed");
            return FATAL;
        }
    if (holds_target(m)) {
        m->found = true;
        m->found_end = end;
        m->found_lines = m->replay_lines;
        return 1;
    }
    return 0;
}

static int sync_position(emu *m, qerr *err)
{
    bool zero = true;
    for (int b = 0; b < QHASH_COUNT; b++) {
        if (!(m->banks & (1u << b)))
            continue;
        qpcrblob v;
        if (qtpm_pcr_read(m->t, (qhash_alg)b, 1u << PCR_IMA, &v, err) != 0)
            return RETRY;
        qpcr_init(&m->target[b], (qhash_alg)b);
        memcpy(m->target[b].value, v.value[PCR_IMA], qhash_size((qhash_alg)b));
        qpcr_init(&m->running[b], (qhash_alg)b);
        if (!qpcr_equals(&m->running[b], v.value[PCR_IMA], qhash_size((qhash_alg)b)))
            zero = false;
    }
    qtpm_close(m->t);
    m->pos = 0;
    if (!zero) {
        m->found = false;
        m->replay_lines = 0;
        int r = for_lines(m, 0, replay_line, err);
        if (r < 0)
            return r;
        if (!m->found) {
            qerr_set(err, "PCR 10 does not match any prefix of %s; reset the software TPM", m->o->ima_log);
            return FATAL;
        }
        m->pos = m->found_end;
        qlog(QLOG_INFO, MOD, "PCR 10 already holds the first %" PRIu64 " entries of %s", m->found_lines,
             m->o->ima_log);
    }
    m->synced = true;
    return 0;
}

/* ---- following the list --------------------------------------------------------------------- */

static int flush_batch(emu *m, qerr *err)
{
    if (m->nbatch == 0) {
        m->pos = m->scan_end;
        return 0;
    }
    size_t done = 0;
    int rc = qtpm_pcr_extend(m->t, PCR_IMA, m->batch, m->nbatch, &done, err);
    m->extended += done;
    if (rc != 0) {
        if (done > 0)
            m->pos = m->batch_end[done - 1];
        m->nbatch = 0;
        m->synced = false;      /* after a timeout nobody knows how many were applied */
        return RETRY;
    }
    m->nbatch = 0;
    m->pos = m->scan_end;
    return 0;
}

static int follow_line(emu *m, const char *line, size_t len, uint64_t end, qerr *err)
{
    int r = digests(m, line, len, end, &m->batch[m->nbatch], true);
    if (r < 0) {
        qerr_set(err, "cannot compute extend values");
        return FATAL;
    }
    m->scan_end = end;
    if (r == 0)
        return 0;
    m->batch_end[m->nbatch++] = end;
    if (m->nbatch == QTPM_EXTEND_BATCH)
        return flush_batch(m, err);
    return 0;
}

static int one_round(emu *m, qerr *err)
{
    int r = 0;
    struct stat st;
    if (fstat(m->fd, &st) != 0) {
        qerr_set(err, "cannot stat %s: %s", m->o->ima_log, strerror(errno));
        return FATAL;
    }
    if (m->synced && (uint64_t)st.st_size < m->pos) {
        qlog(QLOG_WARNING, MOD, "%s shrank below the extended position; re-reading PCR 10", m->o->ima_log);
        m->synced = false;
    }
    if (!m->synced && (r = sync_position(m, err)) != 0)
        return r;
    if ((uint64_t)st.st_size <= m->pos)
        return 0;
    uint64_t before = m->extended;
    m->scan_end = m->pos;
    m->nbatch = 0;
    r = for_lines(m, m->pos, follow_line, err);
    if (r == 0)
        r = flush_batch(m, err);
    qtpm_close(m->t);
    if (m->extended > before)
        qlog(QLOG_DEBUG, MOD, "extended PCR 10 with %" PRIu64 " entries (%" PRIu64 " in total)",
             m->extended - before, m->extended);
    return r;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);       /* a signal cuts it short: the caller checks *stop */
}

static int resolve_banks(emu *m, qerr *err)
{
    qtpm_info info;
    if (qtpm_get_info(m->t, &info, err) != 0)
        return -1;
    if (!qtpm_is_software(&info) && !m->o->force)
        return qerr_set(err, "refusing to extend PCR 10 of a TPM that is not a software TPM (manufacturer "
                        "\"%s\", vendor \"%s\"); use --force to do it anyway", info.manufacturer_str, info.vendor);
    m->banks = m->o->banks;
    if (m->banks == 0)
        m->banks = info.pcr10_banks;
    if (m->banks == 0)
        m->banks = 1u << QHASH_SHA1 | 1u << QHASH_SHA256;
    return 0;
}

int agent_imaemu_run(const agent_imaemu_opts *o, const volatile sig_atomic_t *stop, qerr *err)
{
    if (!o->ima_log)
        return qerr_set(err, "no IMA list given");
    if (!qhash_md(o->log_alg))
        return qerr_set(err, "unusable template-hash algorithm");
    emu *m = calloc(1, sizeof(*m));
    if (!m)
        return qerr_set(err, "out of memory");
    m->o = o;
    m->fd = -1;
    int rc = -1;
    m->ctx = EVP_MD_CTX_new();
    m->scratch = malloc(QIMA_SCRATCH_SIZE);
    m->tdata = malloc(QIMA_SCRATCH_SIZE);
    m->rbuf = malloc(RBUF_SIZE);
    if (!m->ctx || !m->scratch || !m->tdata || !m->rbuf) {
        qerr_set(err, "out of memory");
        goto out;
    }
    m->fd = open(o->ima_log, O_RDONLY | O_CLOEXEC);
    if (m->fd < 0) {
        qerr_set(err, "cannot open %s: %s", o->ima_log, strerror(errno));
        goto out;
    }
    const char *tcti = o->tcti && *o->tcti ? o->tcti : getenv("TCTI");
    qtpm_opts to = { .tcti = tcti, .timeout_ms = o->timeout_ms };
    if (!(m->t = qtpm_new(&to, err)) || resolve_banks(m, err) != 0)
        goto out;
    qtpm_close(m->t);
    unsigned interval = o->interval_ms ? o->interval_ms : AGENT_IMAEMU_DEFAULT_INTERVAL_MS;
    for (;;) {
        int r = one_round(m, err);
        if (r == FATAL || (r != 0 && o->once))
            goto out;
        if (r != 0)
            qlog(QLOG_WARNING, MOD, "%s (will retry)", err->msg);
        if (o->once || (stop && *stop))
            break;
        sleep_ms(interval);
        if (stop && *stop)
            break;
    }
    rc = 0;
out:
    qtpm_free(m->t);
    if (m->fd >= 0)
        close(m->fd);
    EVP_MD_CTX_free(m->ctx);
    free(m->scratch);
    free(m->tdata);
    free(m->rbuf);
    free(m);
    return rc;
}

/* ---- command line ----------------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quince-agent ima-emulator [options]\n"
            "Keeps a software TPM's PCR 10 in step with an IMA ASCII measurement list.\n"
            "  --tcti TCTI          TPM to extend (default: $TCTI, else %s)\n"
            "  --ima-log FILE       measurement list to follow (default %s)\n"
            "  --banks LIST         PCR banks to extend, e.g. sha1,sha256 (default: the banks active for PCR 10)\n"
            "  --ima-hash-alg ALG   algorithm of the template-hash column (default sha1)\n"
            "  --interval-ms N      poll interval (default %u)\n"
            "  --timeout-ms N       limit for each TPM command sequence (default %u)\n"
            "  --force              extend even a TPM that is not a software TPM\n"
            "  --once               process the complete lines present now, then exit\n"
            "  --help               this text\n",
            QTPM_DEFAULT_TCTI, AGENT_IMAEMU_DEFAULT_LOG, AGENT_IMAEMU_DEFAULT_INTERVAL_MS, QTPM_DEFAULT_TIMEOUT_MS);
}

static int parse_ms(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > 3600000UL || *s == '-')
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_banks(const char *s, uint32_t *out)
{
    char buf[128];
    if (strlen(s) >= sizeof(buf))
        return -1;
    strcpy(buf, s);
    *out = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        qhash_alg a;
        if (qhash_from_name(tok, &a) != 0)
            return -1;
        *out |= 1u << a;
    }
    return *out ? 0 : -1;
}

int agent_ima_emulator_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "tcti", required_argument, NULL, 't' },
        { "ima-log", required_argument, NULL, 'f' },
        { "banks", required_argument, NULL, 'b' },
        { "ima-hash-alg", required_argument, NULL, 'a' },
        { "interval-ms", required_argument, NULL, 'i' },
        { "timeout-ms", required_argument, NULL, 'T' },
        { "force", no_argument, NULL, 'F' },
        { "once", no_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    agent_imaemu_opts o = { .ima_log = AGENT_IMAEMU_DEFAULT_LOG, .log_alg = QHASH_SHA1 };
    optind = 0;                 /* fresh getopt state (glibc) */
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 't': o.tcti = optarg; break;
        case 'f': o.ima_log = optarg; break;
        case 'b':
            if (parse_banks(optarg, &o.banks) != 0) {
                fprintf(stderr, "quince-agent ima-emulator: bad --banks \"%s\" (sha1, sha256, sha384, sha512)\n", optarg);
                return 2;
            }
            break;
        case 'a':
            if (qhash_from_name(optarg, &o.log_alg) != 0) {
                fprintf(stderr, "quince-agent ima-emulator: bad --ima-hash-alg \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'i':
        case 'T':
            if (parse_ms(optarg, c == 'i' ? &o.interval_ms : &o.timeout_ms) != 0) {
                fprintf(stderr, "quince-agent ima-emulator: bad number of milliseconds \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'F': o.force = true; break;
        case 'o': o.once = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "quince-agent ima-emulator: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    struct sigaction sa, old_term, old_int;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop = 0;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    qerr e = { 0 };
    qlog(QLOG_INFO, MOD, "following %s", o.ima_log);
    int rc = agent_imaemu_run(&o, &g_stop, &e);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    if (rc != 0) {
        qlog(QLOG_ERROR, MOD, "%s", e.msg);
        return 1;
    }
    return 0;
}
