/* fuzz_quote.c — libFuzzer target: the quote string an agent sends, through qquote_split, and
 * the raw bytes through qattest_parse and qpcrblob_parse (the decoded parts of a string that
 * splits are parsed too). Invariants checked: decoded lengths stay within their buffers, a parsed
 * attestation's sizes stay within their fields, a parsed PCR blob selects only PCRs < 24 of a
 * known bank. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_attest(const uint8_t *b, size_t n)
{
    qattest a;
    qerr err;
    if (qattest_parse(b, n, &a, &err) == 0) {
        if (a.signer_len > sizeof a.signer || a.extra_len > sizeof a.extra ||
            a.pcr_digest_len > sizeof a.pcr_digest || (a.mask >> QQUOTE_NUM_PCRS) != 0)
            abort();
    }
}

static void check_blob(const uint8_t *b, size_t n)
{
    qpcrblob p;
    qerr err;
    if (qpcrblob_parse(b, n, &p, &err) == 0) {
        if (qhash_size(p.bank) == 0 || (p.mask >> QQUOTE_NUM_PCRS) != 0)
            abort();
        uint8_t d[QHASH_MAX_SIZE];
        (void)qpcrblob_digest(&p, p.bank, NULL, d, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > QQUOTE_STRING_MAX + 64)
        return 0;
    /* exact-size copy so that any read past the end is caught */
    uint8_t *copy = malloc(size ? size : 1);
    qquote_parts *parts = malloc(sizeof *parts);
    if (!copy || !parts)
        abort();
    memcpy(copy, data, size);
    qerr err;
    if (qquote_split((const char *)copy, size, parts, &err) == 0) {
        if (parts->attest_len > sizeof parts->attest || parts->sig_len > sizeof parts->sig ||
            parts->pcrblob_len > sizeof parts->pcrblob)
            abort();
        check_attest(parts->attest, parts->attest_len);
        check_blob(parts->pcrblob, parts->pcrblob_len);
    }
    check_attest(copy, size);
    check_blob(copy, size);
    free(parts);
    free(copy);
    return 0;
}
