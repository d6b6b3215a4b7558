/* bench_engine — throughput figures for the IMA engine and policy loading (never pass/fail).
 *
 *   bench_engine engine LOG ALLOWLIST BANK PCR10HEX [ROUNDS]
 *       Loads the allowlist, reads the whole list into memory, then times ROUNDS (default 5)
 *       full rounds of the engine (begin → feed in 1 MiB pieces → finish) on the calling thread.
 *       Prints entries/s of the best and the median round and the peak RSS; checks that every
 *       round passed and matched PCR10HEX (an engine that does not is reported, not hidden).
 *   bench_engine load-json FILE        time to read and parse a runtime policy JSON
 *   bench_engine load-allowlist FILE   time to read and parse a flat allowlist
 *       Both also print the memory the loaded policy's tables use (qpolicy_memory): what one
 *       policy costs the verifier, once, however many agents share it.
 *       Run these in a fresh process each (bench/run.sh does): the figure includes the first
 *       use of every allocator page, as a verifier loading a new policy would see it. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "hex.h"
#include "ima_verify.h"
#include "pcr_bank.h"
#include "policy.h"

#define BENCH_MAX_LOG    (2ull << 30)
#define BENCH_BLOCK      (1u << 20)
#define BENCH_MAX_ROUNDS 100

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int load(const char *mode, const char *path)
{
    bool json = strcmp(mode, "load-json") == 0;
    double t0 = now();
    qbuf text;
    qbuf_init(&text, QPOLICY_MAX_SIZE + 1);
    if (qbuf_read_file(&text, path, QPOLICY_MAX_SIZE) < 0) {
        fprintf(stderr, "bench_engine: %s: %s\n", path, strerror(errno));
        qbuf_free(&text);
        return 1;
    }
    double t1 = now();
    qerr err = { 0 };
    const char *s = text.data ? (const char *)text.data : "";
    qpolicy *p = json ? qpolicy_from_json(s, text.len, path, &err)
                      : qpolicy_from_allowlist(s, text.len, path, &err);
    double t2 = now();
    if (!p) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        qbuf_free(&text);
        return 1;
    }
    printf("%s paths=%zu bytes=%zu read_ms=%.2f parse_ms=%.2f total_ms=%.2f maxrss_kib=%ld "
           "policy_kib=%zu\n", mode, qpolicy_count(p, QPOL_DIGESTS), text.len, (t1 - t0) * 1e3,
           (t2 - t1) * 1e3, (t2 - t0) * 1e3, maxrss_kib(), qpolicy_memory(p) / 1024);
    qpolicy_free(p);
    qbuf_free(&text);
    return 0;
}

static int engine(const char *log, const char *allowlist, const char *bank_name, const char *pcr_hex,
                  int rounds)
{
    qhash_alg bank;
    uint8_t pcr[QHASH_MAX_SIZE];
    long pcr_len = qhex_decode(pcr_hex, strlen(pcr_hex), pcr, sizeof pcr);
    if (qhash_from_name(bank_name, &bank) < 0 || pcr_len != (long)qhash_size(bank)) {
        fprintf(stderr, "bench_engine: bad bank or PCR value\n");
        return 2;
    }
    qbuf text, list;
    qbuf_init(&text, QPOLICY_MAX_SIZE + 1);
    qbuf_init(&list, BENCH_MAX_LOG + 1);
    qerr err = { 0 };
    qpolicy *p = NULL;
    qima_verifier *v = NULL;
    int rc = 1;
    if (qbuf_read_file(&text, allowlist, QPOLICY_MAX_SIZE) < 0 ||
        qbuf_read_file(&list, log, BENCH_MAX_LOG) < 0) {
        fprintf(stderr, "bench_engine: cannot read inputs: %s\n", strerror(errno));
        goto out;
    }
    p = qpolicy_from_allowlist(text.data ? (const char *)text.data : "", text.len, allowlist, &err);
    qbuf_free(&text);
    if (!p) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        goto out;
    }
    qima_opts o = { .policy = p, .bank = bank };
    v = qima_verifier_new(&o, &err);
    if (!v) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        goto out;
    }
    double secs[BENCH_MAX_ROUNDS];
    qima_result r;
    bool ok = true;
    for (int i = 0; i < rounds; i++) {
        double t0 = now();
        if (qima_verifier_begin(v, NULL, pcr, (size_t)pcr_len, &err) < 0) {
            fprintf(stderr, "bench_engine: %s\n", err.msg);
            goto out;
        }
        size_t pos = 0, end = 0;
        while (end < list.len) {   /* feed like check-log: 1 MiB more each time, partial lines kept */
            end = end + BENCH_BLOCK < list.len ? end + BENCH_BLOCK : list.len;
            long used = qima_verifier_feed(v, (const char *)list.data + pos, end - pos);
            if (used < 0) {
                fprintf(stderr, "bench_engine: feed failed\n");
                goto out;
            }
            pos += (size_t)used;
        }
        if (qima_verifier_finish(v, &r) < 0) {
            fprintf(stderr, "bench_engine: finish failed\n");
            goto out;
        }
        secs[i] = now() - t0;
        ok = ok && r.passed && r.pcr_matched;
    }
    qsort(secs, (size_t)rounds, sizeof *secs, cmp_double);
    double n = (double)r.counts.lines;
    printf("engine bank=%s entries=%" PRIu64 " bytes=%zu rounds=%d best_s=%.4f median_s=%.4f "
           "best_rate=%.0f median_rate=%.0f passed=%s maxrss_kib=%ld\n",
           bank_name, r.counts.lines, list.len, rounds, secs[0], secs[rounds / 2], n / secs[0],
           n / secs[rounds / 2], ok ? "yes" : "NO", maxrss_kib());
    rc = 0;
out:
    qima_verifier_free(v);
    qpolicy_free(p);
    qbuf_free(&text);
    qbuf_free(&list);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && (strcmp(argv[1], "load-json") == 0 || strcmp(argv[1], "load-allowlist") == 0))
        return load(argv[1], argv[2]);
    if (argc >= 6 && strcmp(argv[1], "engine") == 0) {
        int rounds = argc >= 7 ? atoi(argv[6]) : 5;
        if (rounds < 1 || rounds > BENCH_MAX_ROUNDS)
            rounds = 5;
        return engine(argv[2], argv[3], argv[4], argv[5], rounds);
    }
    fprintf(stderr, "usage: bench_engine engine LOG ALLOWLIST BANK PCR10HEX [ROUNDS]\n"
                    "       bench_engine load-json FILE | load-allowlist FILE\n");
    return 2;
}
