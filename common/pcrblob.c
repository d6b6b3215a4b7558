/* pcrblob.c — the little-endian PCR blob of Keylime's quote string, its digest, and the PCR 16
 * value a payload key gives (see quote.h). Every read goes through the qrd reader. */
#include "quote.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hash_direct.h"

#define PCR_MASK_ALL ((1u << QQUOTE_NUM_PCRS) - 1)
#define BLOB_SLOTS 16
#define BLOB_DIGESTS 8
#define BLOB_HA_SIZE 64

static int popcount24(uint32_t m)
{
    return __builtin_popcount(m & PCR_MASK_ALL);
}

int qpcrblob_parse(const uint8_t *blob, size_t len, qpcrblob *out, qerr *err)
{
    if (!blob || !out)
        return qerr_set(err, "PCR blob: missing input");
    if (len > QPCRBLOB_MAX)
        return qerr_set(err, "PCR blob too large (%zu bytes, at most %d)", len, (int)QPCRBLOB_MAX);
    if (len < QPCRBLOB_SEL_SIZE + 4)
        return qerr_set(err, "PCR blob truncated (%zu bytes, at least %d needed)", len,
                        QPCRBLOB_SEL_SIZE + 4);
    qrd r;
    qrd_init(&r, blob, len);
    uint32_t count = qrd_u32le(&r);
    uint16_t hash = 0;
    uint8_t sos0 = 0;
    const uint8_t *sel0 = NULL;
    for (int i = 0; i < BLOB_SLOTS; i++) {
        uint16_t h = qrd_u16le(&r);
        uint8_t sos = qrd_u8(&r);
        const uint8_t *sel = qrd_bytes(&r, 4);
        (void)qrd_u8(&r); /* padding */
        if (sos != 0 && sos != 3)
            return qerr_set(err, "PCR blob selection %d has sizeofSelect %u (must be 0 or 3)", i, sos);
        if (i == 0) {
            hash = h;
            sos0 = sos;
            sel0 = sel;
        }
    }
    if (count != 1)
        return qerr_set(err, "PCR blob has %u PCR banks (exactly one is supported)", count);
    if (sos0 != 3 || !sel0)
        return qerr_set(err, "PCR blob selection has sizeofSelect %u (must be 3)", sos0);
    qhash_alg bank;
    if (qhash_from_tpm_id(hash, &bank) < 0)
        return qerr_set(err, "PCR blob bank 0x%04x is not a supported hash algorithm", hash);
    uint32_t mask = (uint32_t)sel0[0] | (uint32_t)sel0[1] << 8 | (uint32_t)sel0[2] << 16;
    if (mask == 0)
        return qerr_set(err, "PCR blob selects no PCR");
    uint32_t n = qrd_u32le(&r);
    if (!qrd_ok(&r))
        return qerr_set(err, "PCR blob truncated");
    if (n == 0 || n > QQUOTE_NUM_PCRS)
        return qerr_set(err, "PCR blob has %u digest lists (1 to %d allowed)", n, QQUOTE_NUM_PCRS);
    size_t expect = QPCRBLOB_SEL_SIZE + 4 + (size_t)n * QPCRBLOB_DIGEST_SIZE;
    if (len != expect)
        return qerr_set(err, "PCR blob is %zu bytes, expected %zu for %u digest lists%s", len, expect, n,
                        len < expect ? " (truncated)" : " (trailing bytes)");

    size_t hsize = qhash_size(bank);
    int pcr = -1;
    int want = popcount24(mask), got = 0;
    out->bank = bank;
    out->mask = mask;
    memset(out->value, 0, sizeof out->value);
    for (uint32_t rec = 0; rec < n; rec++) {
        uint32_t cnt = qrd_u32le(&r);
        if (cnt == 0 || cnt > BLOB_DIGESTS)
            return qerr_set(err, "PCR blob digest list %u has count %u (1 to 8 allowed)", rec, cnt);
        for (uint32_t j = 0; j < BLOB_DIGESTS; j++) {
            uint16_t size = qrd_u16le(&r);
            const uint8_t *v = qrd_bytes(&r, BLOB_HA_SIZE);
            if (!v)
                return qerr_set(err, "PCR blob truncated");
            if (j >= cnt) {
                if (size != 0)
                    return qerr_set(err, "PCR blob digest list %u: unused slot %u has size %u", rec, j,
                                    size);
                continue;
            }
            if (size != hsize)
                return qerr_set(err, "PCR blob digest list %u: value %u is %u bytes (%s needs %zu)", rec,
                                j, size, qhash_name(bank), hsize);
            do {
                pcr++;
            } while (pcr < QQUOTE_NUM_PCRS && !(mask & (1u << pcr)));
            if (pcr >= QQUOTE_NUM_PCRS)
                return qerr_set(err, "PCR blob holds more values than the %d selected PCRs", want);
            memcpy(out->value[pcr], v, hsize);
            got++;
        }
    }
    if (!qrd_ok(&r) || qrd_left(&r) != 0)
        return qerr_set(err, "PCR blob not consumed exactly");
    if (got != want)
        return qerr_set(err, "PCR blob holds %d values for %d selected PCRs", got, want);
    return 0;
}

static void put_u16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int qpcrblob_build(const qpcrblob *in, uint8_t *out, size_t cap, size_t *len, qerr *err)
{
    if (!in || !out || !len)
        return qerr_set(err, "PCR blob build: missing argument");
    size_t hsize = qhash_size(in->bank);
    if (hsize == 0)
        return qerr_set(err, "PCR blob build: unknown bank");
    if (in->mask == 0 || (in->mask & ~PCR_MASK_ALL))
        return qerr_set(err, "PCR blob build: bad PCR mask 0x%x", in->mask);
    int k = popcount24(in->mask);
    uint32_t n = (uint32_t)(k + BLOB_DIGESTS - 1) / BLOB_DIGESTS;
    size_t total = QPCRBLOB_SEL_SIZE + 4 + (size_t)n * QPCRBLOB_DIGEST_SIZE;
    if (cap < total)
        return qerr_set(err, "PCR blob build: needs %zu bytes, buffer has %zu", total, cap);
    memset(out, 0, total);
    put_u32le(out, 1);
    put_u16le(out + 4, qhash_tpm_id(in->bank));
    out[6] = 3;
    out[7] = (uint8_t)in->mask;
    out[8] = (uint8_t)(in->mask >> 8);
    out[9] = (uint8_t)(in->mask >> 16);
    put_u32le(out + QPCRBLOB_SEL_SIZE, n);
    uint8_t *rec = out + QPCRBLOB_SEL_SIZE + 4;
    int done = 0;
    for (int pcr = 0; pcr < QQUOTE_NUM_PCRS; pcr++) {
        if (!(in->mask & (1u << pcr)))
            continue;
        int slot = done % BLOB_DIGESTS;
        uint8_t *r = rec + (size_t)(done / BLOB_DIGESTS) * QPCRBLOB_DIGEST_SIZE;
        int inrec = k - done / BLOB_DIGESTS * BLOB_DIGESTS;
        put_u32le(r, (uint32_t)(inrec < BLOB_DIGESTS ? inrec : BLOB_DIGESTS));
        uint8_t *d = r + 4 + (size_t)slot * (2 + BLOB_HA_SIZE);
        put_u16le(d, (uint16_t)hsize);
        memcpy(d + 2, in->value[pcr], hsize);
        done++;
    }
    *len = total;
    return 0;
}

int qpcrblob_digest(const qpcrblob *p, qhash_alg alg, EVP_MD_CTX *ctx, uint8_t *out, qerr *err)
{
    const EVP_MD *md = qhash_md(alg);
    size_t vsize = qhash_size(p->bank);
    if (!md || vsize == 0)
        return qerr_set(err, "PCR digest: unsupported hash algorithm");
    EVP_MD_CTX *own = NULL;
    if (!ctx && !(ctx = own = EVP_MD_CTX_new()))
        return qerr_set(err, "PCR digest: out of memory");
    int ok = EVP_DigestInit_ex(ctx, md, NULL) == 1;
    for (int i = 0; ok && i < QQUOTE_NUM_PCRS; i++)
        if (p->mask & (1u << i))
            ok = EVP_DigestUpdate(ctx, p->value[i], vsize) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    EVP_MD_CTX_free(own);
    if (!ok)
        return qerr_set(err, "PCR digest: hashing failed");
    return 0;
}

int qquote_pcr16_expected(qhash_alg bank, const char *pem, size_t pem_len, uint8_t *out, qerr *err)
{
    if (qhash_size(bank) == 0 || !pem || !out)
        return qerr_set(err, "PCR16: bad arguments");
    /* Every round of every agent: the direct SHA functions (hash_direct.h), no EVP context. */
    uint8_t zero[QHASH_MAX_SIZE] = { 0 }, hd[QHASH_MAX_SIZE];
    size_t n = qhash_size(bank);
    if (qhash_direct(bank, pem, pem_len, NULL, 0, hd) == 0 && qhash_direct(bank, zero, n, hd, n, out) == 0)
        return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return qerr_set(err, "PCR16: out of memory");
    uint8_t h[QHASH_MAX_SIZE];
    qpcr p;
    qpcr_init(&p, bank);
    int rc = (qhash_digest(ctx, bank, pem, pem_len, h) == 0 && qpcr_extend(&p, ctx, h) == 0) ? 0 : -1;
    EVP_MD_CTX_free(ctx);
    if (rc < 0)
        return qerr_set(err, "PCR16: hashing failed");
    memcpy(out, p.value, qhash_size(bank));
    return 0;
}
