/* fuzz_ima_line.c — libFuzzer target: one IMA ASCII line through qima_parse_line, then the
 * template-data rebuild. Invariants checked: the name is a view into the line, the rebuild never
 * writes past its capacity and reports -1 when one byte short.
 * Then the input as a list through the engine (qima_verifier_feed), whole and in three pieces cut
 * where the input says: both rounds must give the same counts, failures and final PCR (feeding
 * in any pieces gives the same result; the engine's per-call line hints must not leak across). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ima_entry.h"
#include "ima_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static qima_verifier *engine(void)
{
    static qima_verifier *v;
    if (v)
        return v;
    /* A small policy: the paths of the seed corpus, and one more. */
    static const char al[] =
        "7b6436b0c98f62380866d9432c2af0ee08ce16a171bda6951aecd95ee1307d61  boot_aggregate\n"
        "03f166b233e3ef28529f0f135767524794e34a0effe11c58f22348245a58bc09  /usr/bin/a\n"
        "3f786850e387550fdab836ed7e6dc881de23001b  /usr/bin/a\n";
    qerr err;
    qpolicy *p = qpolicy_from_allowlist(al, sizeof al - 1, "fuzz", &err);   /* kept for the process */
    qima_opts o = { .policy = p, .bank = QHASH_SHA256 };
    v = p ? qima_verifier_new(&o, &err) : NULL;
    if (!v)
        abort();
    return v;
}

/* One round over data[0..size) fed in pieces ending at cut1, cut2 and size. */
static void round_of(const char *data, size_t size, size_t cut1, size_t cut2, qima_result *r)
{
    qima_verifier *v = engine();
    qerr err;
    qima_verifier_reset_learned(v);
    if (qima_verifier_begin(v, NULL, NULL, 0, &err) < 0)
        abort();
    size_t pos = 0;
    const size_t ends[3] = { cut1, cut2, size };
    for (int i = 0; i < 3; i++) {
        if (ends[i] < pos)
            continue;
        long used = qima_verifier_feed(v, data + pos, ends[i] - pos);
        if (used < 0 || (size_t)used > ends[i] - pos)
            abort();
        pos += (size_t)used;
    }
    if (qima_verifier_finish(v, r) < 0)
        abort();
}

static void as_list(const uint8_t *data, size_t size)
{
    char *list = malloc(size ? size : 1);   /* exact size: a read past the end is caught */
    if (!list)
        abort();
    memcpy(list, data, size);
    size_t cut1 = size ? data[0] % (size + 1) : 0;
    size_t cut2 = size > 1 ? cut1 + data[1] % (size - cut1 + 1) : size;
    qima_result whole, pieces;
    round_of(list, size, size, size, &whole);
    round_of(list, size, cut1, cut2, &pieces);
    if (whole.raw_lines != pieces.raw_lines || whole.failures != pieces.failures ||
        whole.passed != pieces.passed || memcmp(&whole.counts, &pieces.counts, sizeof whole.counts) != 0 ||
        memcmp(whole.final_pcr.value, pieces.final_pcr.value, sizeof whole.final_pcr.value) != 0) {
        fprintf(stderr, "fuzz_ima_line: whole and pieces (%zu, %zu) differ\n", cut1, cut2);
        abort();
    }
    free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > QIMA_MAX_LINE + 64)
        return 0;
    /* exact-size copies so that any read past the end is caught */
    char *line = malloc(size ? size : 1);
    uint8_t *scratch = malloc(QIMA_SCRATCH_SIZE);
    uint8_t *tdata = malloc(QIMA_SCRATCH_SIZE);
    if (!line || !scratch || !tdata)
        abort();
    memcpy(line, data, size);
    qima_entry e;
    qerr err;
    if (qima_parse_line(line, size, &e, scratch, &err) == 0) {
        if (e.name_len && (e.name < line || e.name + e.name_len > line + size))
            abort();
        if (e.digest_len > QIMA_MAX_DIGEST || e.template_hash_len > QIMA_MAX_DIGEST)
            abort();
        (void)qima_template_name(e.tmpl);
        (void)qima_is_violation(&e);
        long n = qima_template_data(&e, tdata, QIMA_SCRATCH_SIZE);
        if (n > 0) {
            uint8_t *small = malloc((size_t)n - 1 ? (size_t)n - 1 : 1);
            if (!small)
                abort();
            if (qima_template_data(&e, small, (size_t)n - 1) != -1)
                abort();
            long again = qima_template_data(&e, small, 0);
            if (again != -1)
                abort();
            free(small);
        }
    } else if (!memchr(err.msg, '\0', sizeof err.msg)) {
        abort();   /* the error message must be NUL-terminated */
    }
    free(tdata);
    free(scratch);
    free(line);
    as_list(data, size);
    return 0;
}
