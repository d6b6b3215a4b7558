/* test_quote.c — quote strings, PCR blobs, TPM public keys and the full quote check, with quotes
 * built and signed in software (OpenSSL keys wrapped as TPM2B_PUBLIC via tss2-mu). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include "b64.h"
#include "quote.h"

#define AK_ATTRS (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | \
                  TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH)

typedef struct key {
    EVP_PKEY *pkey;
    bool ecc;
    uint8_t pub[1024];  /* marshalled TPM2B_PUBLIC */
    size_t pub_len;
} key;

static key g_rsa, g_ecc;

/* ---- fixture: keys as TPM2B_PUBLIC -------------------------------------------------------- */

static void wrap_public(key *k, TPMA_OBJECT attrs)
{
    TPM2B_PUBLIC pub;
    memset(&pub, 0, sizeof pub);
    TPMT_PUBLIC *p = &pub.publicArea;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = attrs;
    if (!k->ecc) {
        BIGNUM *n = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &n), 1);
        p->type = TPM2_ALG_RSA;
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
        p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
        p->parameters.rsaDetail.keyBits = 2048;
        p->parameters.rsaDetail.exponent = 0;
        p->unique.rsa.size = 256;
        assert_int_equal(BN_bn2binpad(n, p->unique.rsa.buffer, 256), 256);
        BN_free(n);
    } else {
        BIGNUM *x = NULL, *y = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
        p->type = TPM2_ALG_ECC;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        p->unique.ecc.x.size = 32;
        p->unique.ecc.y.size = 32;
        assert_int_equal(BN_bn2binpad(x, p->unique.ecc.x.buffer, 32), 32);
        assert_int_equal(BN_bn2binpad(y, p->unique.ecc.y.buffer, 32), 32);
        BN_free(x);
        BN_free(y);
    }
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, k->pub, sizeof k->pub, &off), 0);
    k->pub_len = off;
}

static int group_setup(void **state)
{
    (void)state;
    g_rsa.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    g_ecc.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    g_ecc.ecc = true;
    if (!g_rsa.pkey || !g_ecc.pkey)
        return -1;
    wrap_public(&g_rsa, AK_ATTRS);
    wrap_public(&g_ecc, AK_ATTRS);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(g_rsa.pkey);
    EVP_PKEY_free(g_ecc.pkey);
    return 0;
}

/* ---- fixture: a quote built and signed in software ----------------------------------------- */

typedef struct qspec {
    const key *k;
    const char *nonce;        /* goes into extraData */
    qhash_alg sig_hash;       /* hash of the signature and of pcrDigest */
    qhash_alg bank;           /* bank of selection and blob */
    uint32_t attest_mask;     /* pcrSelect in the attest */
    uint32_t blob_mask;       /* selection in the blob */
    uint32_t magic;
    uint16_t type;
    uint16_t sig_alg;         /* 0: the key's natural scheme */
    int tamper_value;         /* >= 0: flip a byte of this PCR's value in the blob after digesting */
    qclockinfo clock;
} qspec;

static void default_spec(qspec *s, const key *k)
{
    memset(s, 0, sizeof *s);
    s->k = k;
    s->nonce = "abcdefghij0123456789";
    s->sig_hash = QHASH_SHA256;
    s->bank = QHASH_SHA256;
    s->attest_mask = s->blob_mask = (1u << 10) | (1u << 16);
    s->magic = TPM2_GENERATED_VALUE;
    s->type = TPM2_ST_ATTEST_QUOTE;
    s->tamper_value = -1;
    s->clock = (qclockinfo){ .clock = 123456, .reset_count = 2, .restart_count = 1, .safe = 1 };
}

/* Deterministic PCR values: PCR i = bytes (i+1). */
static void fill_values(qpcrblob *p, qhash_alg bank, uint32_t mask)
{
    memset(p, 0, sizeof *p);
    p->bank = bank;
    p->mask = mask;
    for (int i = 0; i < QQUOTE_NUM_PCRS; i++)
        if (mask & (1u << i))
            memset(p->value[i], i + 1, qhash_size(bank));
}

static size_t sign_attest(const qspec *s, const uint8_t *attest, size_t alen, uint8_t *out, size_t cap)
{
    uint8_t der[600];
    size_t dlen = sizeof der;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, qhash_md(s->sig_hash), NULL, s->k->pkey), 1);
    assert_int_equal(EVP_DigestSign(ctx, der, &dlen, attest, alen), 1);
    EVP_MD_CTX_free(ctx);
    TPMT_SIGNATURE sig;
    memset(&sig, 0, sizeof sig);
    if (!s->k->ecc) {
        sig.sigAlg = s->sig_alg ? s->sig_alg : TPM2_ALG_RSASSA;
        sig.signature.rsassa.hash = qhash_tpm_id(s->sig_hash);
        sig.signature.rsassa.sig.size = (uint16_t)dlen;
        memcpy(sig.signature.rsassa.sig.buffer, der, dlen);
    } else {
        const unsigned char *p = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
        assert_non_null(es);
        sig.sigAlg = s->sig_alg ? s->sig_alg : TPM2_ALG_ECDSA;
        sig.signature.ecdsa.hash = qhash_tpm_id(s->sig_hash);
        sig.signature.ecdsa.signatureR.size = 32;
        sig.signature.ecdsa.signatureS.size = 32;
        BN_bn2binpad(ECDSA_SIG_get0_r(es), sig.signature.ecdsa.signatureR.buffer, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig.signature.ecdsa.signatureS.buffer, 32);
        ECDSA_SIG_free(es);
    }
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, out, cap, &off), 0);
    return off;
}

/* Builds the marshalled parts of a quote per spec. */
static void make_parts(const qspec *s, qquote_parts *q)
{
    qpcrblob vals;
    fill_values(&vals, s->bank, s->attest_mask);
    uint8_t digest[QHASH_MAX_SIZE];
    assert_int_equal(qpcrblob_digest(&vals, s->sig_hash, NULL, digest, NULL), 0);

    TPMS_ATTEST a;
    memset(&a, 0, sizeof a);
    a.magic = s->magic;
    a.type = s->type;
    a.qualifiedSigner.size = 34;
    a.qualifiedSigner.name[1] = 0x0b;
    a.extraData.size = (uint16_t)strlen(s->nonce);
    memcpy(a.extraData.buffer, s->nonce, a.extraData.size);
    a.clockInfo.clock = s->clock.clock;
    a.clockInfo.resetCount = s->clock.reset_count;
    a.clockInfo.restartCount = s->clock.restart_count;
    a.clockInfo.safe = s->clock.safe;
    a.firmwareVersion = 0x2019102300163636ull;
    TPMS_QUOTE_INFO *qi = &a.attested.quote;
    qi->pcrSelect.count = 1;
    qi->pcrSelect.pcrSelections[0].hash = qhash_tpm_id(s->bank);
    qi->pcrSelect.pcrSelections[0].sizeofSelect = 3;
    for (int i = 0; i < 3; i++)
        qi->pcrSelect.pcrSelections[0].pcrSelect[i] = (uint8_t)(s->attest_mask >> (8 * i));
    qi->pcrDigest.size = (uint16_t)qhash_size(s->sig_hash);
    memcpy(qi->pcrDigest.buffer, digest, qi->pcrDigest.size);
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&a, q->attest, sizeof q->attest, &off), 0);
    q->attest_len = off;
    q->sig_len = sign_attest(s, q->attest, q->attest_len, q->sig, sizeof q->sig);

    fill_values(&vals, s->bank, s->blob_mask);
    if (s->tamper_value >= 0)
        vals.value[s->tamper_value][0] ^= 0x01;
    assert_int_equal(qpcrblob_build(&vals, q->pcrblob, sizeof q->pcrblob, &q->pcrblob_len, NULL), 0);
}

static char *parts_string(const qquote_parts *q)
{
    char *s = qquote_build(q->attest, q->attest_len, q->sig, q->sig_len, q->pcrblob, q->pcrblob_len, NULL);
    assert_non_null(s);
    return s;
}

static char *make_quote(const qspec *s)
{
    qquote_parts *q = malloc(sizeof *q);
    assert_non_null(q);
    make_parts(s, q);
    char *str = parts_string(q);
    free(q);
    return str;
}

/* Runs qquote_check with the spec's key; expect NULL means success, else a message substring. */
static void check_quote(const qspec *s, const char *quote, const char *nonce, qhash_alg hash,
                        const char *expect)
{
    qak ak;
    qerr e = {0};
    assert_int_equal(qak_load(&ak, s->k->pub, s->k->pub_len, &e), 0);
    qquote_result res;
    int rc = qquote_check(&ak, quote, strlen(quote), (const uint8_t *)nonce, strlen(nonce), hash, &res, &e);
    qak_free(&ak);
    if (!expect) {
        if (rc != 0)
            fail_msg("quote check failed: %s", e.msg);
        assert_int_equal(res.pcrs.bank, hash);
        assert_int_equal(res.pcrs.mask, s->attest_mask);
        assert_int_equal(res.attest.clock.clock, s->clock.clock);
        assert_int_equal(res.attest.clock.reset_count, s->clock.reset_count);
        assert_int_equal(res.attest.clock.restart_count, s->clock.restart_count);
        assert_int_equal(res.attest.clock.safe, 1);
        uint8_t v[QHASH_MAX_SIZE];
        memset(v, 11, sizeof v);
        assert_memory_equal(res.pcrs.value[10], v, qhash_size(hash));
    } else {
        assert_int_equal(rc, -1);
        if (!strstr(e.msg, expect))
            fail_msg("message \"%s\" lacks \"%s\"", e.msg, expect);
    }
}

static void run_spec(const qspec *s, const char *expect)
{
    char *q = make_quote(s);
    check_quote(s, q, "abcdefghij0123456789", QHASH_SHA256, expect);
    free(q);
}

/* ---- tests: full check --------------------------------------------------------------------- */

static void test_rsa_ok(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_rsa);
    run_spec(&s, NULL);
}

static void test_ecc_ok(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_ecc);
    run_spec(&s, NULL);
}

static void test_many_pcrs_ok(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_rsa);
    s.attest_mask = s.blob_mask = 0xffffff; /* 24 PCRs: 3 digest lists */
    run_spec(&s, NULL);
}

static void flip_and_check(const key *k, int part)
{
    qspec s;
    default_spec(&s, k);
    qquote_parts *q = malloc(sizeof *q);
    assert_non_null(q);
    make_parts(&s, q);
    if (part == 0)
        q->attest[q->attest_len / 2] ^= 0x04;
    else
        q->sig[q->sig_len - 3] ^= 0x04;
    char *str = parts_string(q);
    check_quote(&s, str, "abcdefghij0123456789", QHASH_SHA256, "signature does not verify");
    free(str);
    free(q);
}

static void test_flipped_bits(void **state)
{
    (void)state;
    flip_and_check(&g_rsa, 0);
    flip_and_check(&g_rsa, 1);
    flip_and_check(&g_ecc, 0);
    flip_and_check(&g_ecc, 1);
}

static void test_wrong_nonce(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_rsa);
    char *q = make_quote(&s);
    check_quote(&s, q, "abcdefghij012345678X", QHASH_SHA256, "nonce mismatch");
    check_quote(&s, q, "abc", QHASH_SHA256, "nonce mismatch");
    free(q);
}

static void test_wrong_hash_alg(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_rsa);
    char *q = make_quote(&s);
    check_quote(&s, q, "abcdefghij0123456789", QHASH_SHA384, "differs from the expected sha384");
    free(q);
    /* Signed with sha1 (downgrade) while sha256 is expected. */
    default_spec(&s, &g_ecc);
    s.sig_hash = QHASH_SHA1;
    run_spec(&s, "hash sha1 (0x0004) differs from the expected sha256");
}

static void test_wrong_sig_scheme(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_rsa);
    s.sig_alg = TPM2_ALG_RSAPSS;
    run_spec(&s, "not allowed for an RSA AK (RSASSA required)");
}

static void test_mismatched_selection(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_rsa);
    s.blob_mask = (1u << 10) | (1u << 16) | (1u << 15);
    run_spec(&s, "PCR selection of the quote (sha256:0x010400) differs from the PCR blob's (sha256:0x018400)");
}

static void test_blob_bank_differs(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_rsa);
    s.bank = QHASH_SHA1; /* selection and blob in sha1, signature sha256 */
    run_spec(&s, "PCR blob bank sha1 differs from the quote hash algorithm sha256");
}

static void test_wrong_pcr_digest(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_ecc);
    s.tamper_value = 16;
    run_spec(&s, "PCR digest mismatch");
}

static void test_bad_magic_type(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_rsa);
    s.magic = 0xff544348;
    run_spec(&s, "magic is 0xff544348");
    default_spec(&s, &g_rsa);
    s.type = TPM2_ST_ATTEST_CERTIFY;
    qquote_parts *q = malloc(sizeof *q);
    assert_non_null(q);
    memset(q, 0, sizeof *q);
    /* certify attest: only the header matters for the check */
    uint8_t hdr[] = { 0xff, 0x54, 0x43, 0x47, 0x80, 0x17, 0, 0 };
    qattest a;
    qerr e = {0};
    assert_int_equal(qattest_parse(hdr, sizeof hdr, &a, &e), -1);
    assert_string_equal(e.msg, "TPMS_ATTEST type is 0x8017, not 0x8018 (quote)");
    assert_int_equal(qattest_parse(hdr, 5, &a, &e), -1);
    assert_non_null(strstr(e.msg, "truncated"));
    /* trailing byte after a valid attest */
    default_spec(&s, &g_rsa);
    make_parts(&s, q);
    assert_int_equal(qattest_parse(q->attest, q->attest_len, &a, &e), 0);
    assert_int_equal(a.extra_len, 20);
    assert_memory_equal(a.extra, "abcdefghij0123456789", 20);
    assert_int_equal(a.mask, 0x10400);
    assert_int_equal(a.firmware, 0x2019102300163636ull);
    q->attest[q->attest_len] = 0;
    assert_int_equal(qattest_parse(q->attest, q->attest_len + 1, &a, &e), -1);
    assert_string_equal(e.msg, "TPMS_ATTEST has 1 trailing bytes");
    free(q);
}

static void test_split_errors(void **state)
{
    (void)state;
    qquote_parts *q = malloc(sizeof *q);
    assert_non_null(q);
    qerr e = {0};
    struct { const char *in; const char *msg; } cases[] = {
        { "", "quote is empty" },
        { "xAAAA:AAAA:AAAA", "quote does not start with 'r'" },
        { "rAAAA", "no ':' separators" },
        { "rAAAA:AAAA", "2 parts" },
        { "rAAAA:AAAA:AAAA:AAAA", "more than 3 parts" },
        { "rAA*A:AAAA:AAAA", "attest part is not valid base64" },
        { "rAAAA:AAA:AAAA", "signature part is not valid base64" },
        { "rAAAA:AAAA:AA=A", "PCR blob part is not valid base64" },
        { "rAAAA:AAAA: AAA", "PCR blob part is not valid base64" },
        { "r:AAAA:AAAA", "attest part is empty" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(qquote_split(cases[i].in, strlen(cases[i].in), q, &e), -1);
        if (!strstr(e.msg, cases[i].msg))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.msg, cases[i].msg);
    }
    /* oversized attest part */
    size_t n = QQUOTE_B64LEN(QQUOTE_ATTEST_MAX) + 4;
    char *big = malloc(n + 12);
    assert_non_null(big);
    big[0] = 'r';
    memset(big + 1, 'A', n);
    memcpy(big + 1 + n, ":AAAA:AAAA", 11);
    assert_int_equal(qquote_split(big, strlen(big), q, &e), -1);
    assert_non_null(strstr(e.msg, "attest part too large"));
    free(big);
    assert_int_equal(qquote_split("rAAAA:AAAA:AAAA", 15, q, &e), 0);
    assert_int_equal(q->attest_len, 3);
    free(q);
}

/* ---- tests: PCR blob ------------------------------------------------------------------------ */

static void test_pcrblob_roundtrip(void **state)
{
    (void)state;
    static const struct { uint32_t mask; size_t len; } cases[] = {
        { 0x010400, 668 }, { 0x010000, 668 }, { 0x00ffff | 0x010000, 136 + 3 * 532 },
        { 0x000fff, 1200 }, { 0xffffff, 136 + 3 * 532 }, { 0x0000ff, 668 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int b = 0; b < QHASH_COUNT; b++) {
            qpcrblob in, out;
            fill_values(&in, (qhash_alg)b, cases[c].mask);
            uint8_t blob[QPCRBLOB_MAX];
            size_t len = 0;
            qerr e = {0};
            assert_int_equal(qpcrblob_build(&in, blob, sizeof blob, &len, &e), 0);
            size_t nrec = ((size_t)__builtin_popcount(cases[c].mask) + 7) / 8;
            assert_int_equal(len, 136 + 532 * nrec);
            if (cases[c].mask != 0x00ffff && cases[c].mask != 0x01ffff)
                assert_int_equal(len, cases[c].len);
            assert_int_equal(qpcrblob_parse(blob, len, &out, &e), 0);
            assert_int_equal(out.bank, b);
            assert_int_equal(out.mask, cases[c].mask);
            assert_memory_equal(out.value, in.value, sizeof in.value);
            /* too small a buffer */
            assert_int_equal(qpcrblob_build(&in, blob, len - 1, &len, &e), -1);
        }
    }
}

/* The example from the Keylime docs: count 1, sha1, sizeofSelect 3, PCR16. */
static void test_pcrblob_layout(void **state)
{
    (void)state;
    qpcrblob in;
    fill_values(&in, QHASH_SHA1, 1u << 16);
    uint8_t blob[QPCRBLOB_MAX];
    size_t len;
    assert_int_equal(qpcrblob_build(&in, blob, sizeof blob, &len, NULL), 0);
    char *b64 = qb64_encode_alloc(blob, 12);
    assert_non_null(b64);
    assert_string_equal(b64, "AQAAAAQAAwAAAQAA");
    free(b64);
    assert_int_equal(blob[132], 1);                 /* one TPML_DIGEST */
    assert_int_equal(blob[136], 1);                 /* count 1 */
    assert_int_equal(blob[140], 20);                /* size 20 LE */
    assert_int_equal(blob[141], 0);
    assert_int_equal(blob[142], 17);                /* value of PCR 16 */
}

static void expect_parse_error(const uint8_t *blob, size_t len, const char *msg)
{
    qpcrblob out;
    qerr e = {0};
    assert_int_equal(qpcrblob_parse(blob, len, &out, &e), -1);
    if (!strstr(e.msg, msg))
        fail_msg("\"%s\" lacks \"%s\"", e.msg, msg);
}

static void test_pcrblob_errors(void **state)
{
    (void)state;
    qpcrblob in;
    fill_values(&in, QHASH_SHA256, 0x010400);
    uint8_t blob[QPCRBLOB_MAX + 8], bad[QPCRBLOB_MAX + 8];
    size_t len;
    assert_int_equal(qpcrblob_build(&in, blob, sizeof blob, &len, NULL), 0);
    assert_int_equal(len, 668);

    expect_parse_error(blob, len - 1, "expected 668 for 1 digest lists (truncated)");
    expect_parse_error(blob, 100, "PCR blob truncated");
    memset(blob + len, 0, 4);
    expect_parse_error(blob, len + 4, "(trailing bytes)");
    expect_parse_error(blob, QPCRBLOB_MAX + 1, "PCR blob too large");

    memcpy(bad, blob, len);
    bad[0] = 2; /* two banks */
    expect_parse_error(bad, len, "has 2 PCR banks");
    memcpy(bad, blob, len);
    bad[6] = 4; /* sizeofSelect 4 */
    expect_parse_error(bad, len, "sizeofSelect 4 (must be 0 or 3)");
    memcpy(bad, blob, len);
    bad[4 + 8 * 5 + 2] = 2; /* unused slot with sizeofSelect 2 */
    expect_parse_error(bad, len, "selection 5 has sizeofSelect 2");
    memcpy(bad, blob, len);
    bad[4] = 0x10; /* unknown bank */
    expect_parse_error(bad, len, "bank 0x0010 is not a supported hash algorithm");
    memcpy(bad, blob, len);
    bad[7] = bad[8] = bad[9] = 0;
    expect_parse_error(bad, len, "selects no PCR");
    memcpy(bad, blob, len);
    bad[7] |= 0x01; /* three PCRs selected, two values */
    expect_parse_error(bad, len, "holds 2 values for 3 selected PCRs");
    memcpy(bad, blob, len);
    bad[136] = 1; /* count 1 but 2 sized values */
    expect_parse_error(bad, len, "unused slot 1 has size 32");
    memcpy(bad, blob, len);
    bad[136] = 9;
    expect_parse_error(bad, len, "count 9 (1 to 8 allowed)");
    memcpy(bad, blob, len);
    bad[140] = 20; /* first value 20 bytes in a sha256 bank */
    expect_parse_error(bad, len, "value 0 is 20 bytes (sha256 needs 32)");
    memcpy(bad, blob, len);
    bad[132] = 0;
    expect_parse_error(bad, len, "0 digest lists");
    memcpy(bad, blob, len);
    bad[7] = 0x00; /* only PCR 16 selected: more values than PCRs */
    bad[8] = 0x00;
    expect_parse_error(bad, len, "more values than the 1 selected PCRs");
}

static void test_oversized_blob_in_quote(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_rsa);
    qquote_parts *q = malloc(sizeof *q);
    assert_non_null(q);
    make_parts(&s, q);
    q->pcrblob_len -= 10; /* truncated */
    char *str = parts_string(q);
    check_quote(&s, str, "abcdefghij0123456789", QHASH_SHA256, "(truncated)");
    free(str);
    free(q);
}

static void test_pcr16_expected(void **state)
{
    (void)state;
    const char *pem = "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n";
    for (int b = 0; b < QHASH_COUNT; b++) {
        uint8_t got[QHASH_MAX_SIZE], h[QHASH_MAX_SIZE], buf[2 * QHASH_MAX_SIZE] = {0}, want[QHASH_MAX_SIZE];
        size_t hs = qhash_size((qhash_alg)b);
        assert_int_equal(qquote_pcr16_expected((qhash_alg)b, pem, strlen(pem), got, NULL), 0);
        assert_int_equal(EVP_Digest(pem, strlen(pem), h, NULL, qhash_md((qhash_alg)b), NULL), 1);
        memcpy(buf + hs, h, hs);
        assert_int_equal(EVP_Digest(buf, 2 * hs, want, NULL, qhash_md((qhash_alg)b), NULL), 1);
        assert_memory_equal(got, want, hs);
    }
}

/* ---- tests: TPM public keys ----------------------------------------------------------------- */

static void test_pubkey_pem_and_name(void **state)
{
    (void)state;
    const key *keys[] = { &g_rsa, &g_ecc };
    for (int i = 0; i < 2; i++) {
        const key *k = keys[i];
        TPM2B_PUBLIC pub;
        qerr e = {0};
        assert_int_equal(qtpmpub_parse(k->pub, k->pub_len, &pub, &e), 0);
        EVP_PKEY *pk = qtpmpub_pkey(&pub, &e);
        assert_non_null(pk);
        assert_int_equal(EVP_PKEY_eq(pk, k->pkey), 1);
        char *pem = qpkey_pem(pk, &e);
        char *pem2 = qpkey_pem(k->pkey, &e);
        assert_non_null(pem);
        assert_non_null(pem2);
        assert_string_equal(pem, pem2);
        assert_true(strncmp(pem, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
        assert_int_equal(pem[strlen(pem) - 1], '\n');
        free(pem);
        free(pem2);
        EVP_PKEY_free(pk);

        uint8_t name[QTPM_NAME_MAX], want[32];
        size_t nlen;
        assert_int_equal(qtpmpub_name(&pub, name, sizeof name, &nlen, &e), 0);
        assert_int_equal(nlen, 34);
        assert_int_equal(name[0], 0x00);
        assert_int_equal(name[1], 0x0b);
        /* marshalled TPMT_PUBLIC is the TPM2B body */
        assert_int_equal(EVP_Digest(k->pub + 2, k->pub_len - 2, want, NULL, EVP_sha256(), NULL), 1);
        assert_memory_equal(name + 2, want, 32);
        assert_int_equal(qtpmpub_name(&pub, name, 20, &nlen, &e), -1);

        qak ak;
        assert_int_equal(qak_load(&ak, k->pub, k->pub_len, &e), 0);
        assert_int_equal(ak.ecc, k->ecc);
        assert_memory_equal(ak.name, name, 34);
        qak_free(&ak);
        char *b64 = qb64_encode_alloc(k->pub, k->pub_len);
        assert_non_null(b64);
        assert_int_equal(qak_load_b64(&ak, b64, strlen(b64), &e), 0);
        qak_free(&ak);
        free(b64);
        assert_int_equal(qak_load_b64(&ak, "AA*A", 4, &e), -1);
        assert_string_equal(e.msg, "AK: TPM2B_PUBLIC is not valid base64");
        qak_free(&ak);
    }
}

static void test_pubkey_errors(void **state)
{
    (void)state;
    TPM2B_PUBLIC pub;
    qerr e = {0};
    uint8_t buf[1100];
    memcpy(buf, g_rsa.pub, g_rsa.pub_len);
    buf[g_rsa.pub_len] = 0;
    assert_int_equal(qtpmpub_parse(buf, g_rsa.pub_len + 1, &pub, &e), -1);
    assert_string_equal(e.msg, "TPM2B_PUBLIC has 1 trailing bytes");
    assert_int_equal(qtpmpub_parse(buf, g_rsa.pub_len - 1, &pub, &e), -1);
    assert_non_null(strstr(e.msg, "does not unmarshal"));

    /* ECC point off the curve */
    assert_int_equal(qtpmpub_parse(g_ecc.pub, g_ecc.pub_len, &pub, &e), 0);
    pub.publicArea.unique.ecc.y.buffer[31] ^= 1;
    assert_null(qtpmpub_pkey(&pub, &e));
    assert_non_null(strstr(e.msg, "EC public key"));
    /* unsupported curve */
    assert_int_equal(qtpmpub_parse(g_ecc.pub, g_ecc.pub_len, &pub, &e), 0);
    pub.publicArea.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
    assert_null(qtpmpub_pkey(&pub, &e));
    assert_non_null(strstr(e.msg, "ECC curve 0x0010 not supported"));
    /* short RSA modulus */
    assert_int_equal(qtpmpub_parse(g_rsa.pub, g_rsa.pub_len, &pub, &e), 0);
    pub.publicArea.unique.rsa.size = 128;
    assert_null(qtpmpub_pkey(&pub, &e));
    assert_non_null(strstr(e.msg, "RSA modulus is 128 bytes"));
    pub.publicArea.type = TPM2_ALG_KEYEDHASH;
    assert_null(qtpmpub_pkey(&pub, &e));
    assert_non_null(strstr(e.msg, "neither RSA nor ECC"));
}

static void test_ak_attributes(void **state)
{
    (void)state;
    TPM2B_PUBLIC pub;
    qerr e = {0};
    assert_int_equal(qtpmpub_parse(g_rsa.pub, g_rsa.pub_len, &pub, &e), 0);
    assert_int_equal(qtpmpub_check_ak(&pub, &e), 0);
    pub.publicArea.objectAttributes &= ~(TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_FIXEDTPM);
    pub.publicArea.objectAttributes |= TPMA_OBJECT_DECRYPT;
    assert_int_equal(qtpmpub_check_ak(&pub, &e), -1);
    assert_string_equal(e.msg, "AK attributes 0x00060070 are not those of an attestation key: "
                               "restricted not set, fixedTPM not set, decrypt set");
    assert_int_equal(qtpmpub_parse(g_ecc.pub, g_ecc.pub_len, &pub, &e), 0);
    assert_int_equal(qtpmpub_check_ak(&pub, &e), 0);
    pub.publicArea.objectAttributes &= ~TPMA_OBJECT_SENSITIVEDATAORIGIN;
    assert_int_equal(qtpmpub_check_ak(&pub, &e), -1);
    assert_non_null(strstr(e.msg, ": sensitiveDataOrigin not set"));
}

static void test_clock_rule(void **state)
{
    (void)state;
    qclockinfo init = { 0, 0, 0, 1 }, a = { 1000, 2, 3, 1 }, b;
    qerr e = {0};
    assert_int_equal(qclock_check(&init, &a, &e), 0);
    b = a;
    assert_int_equal(qclock_check(&a, &b, &e), -1);
    assert_non_null(strstr(e.msg, "clock did not advance"));
    b.clock = 1001;
    assert_int_equal(qclock_check(&a, &b, &e), 0);
    b.safe = 0;
    assert_int_equal(qclock_check(&a, &b, &e), -1);
    assert_non_null(strstr(e.msg, "not safe"));
    b = a;
    b.clock = 2000;
    b.reset_count = 1;
    assert_int_equal(qclock_check(&a, &b, &e), -1);
    assert_non_null(strstr(e.msg, "resetCount went backwards"));
    b.reset_count = 2;
    b.restart_count = 2;
    assert_int_equal(qclock_check(&a, &b, &e), -1);
    assert_non_null(strstr(e.msg, "restartCount went backwards"));
    /* reboot: reset up and restart changed; the clock need not advance */
    b = (qclockinfo){ 10, 3, 0, 1 };
    assert_int_equal(qclock_check(&a, &b, &e), 0);
}

static void test_build_tpm(void **state)
{
    (void)state;
    qspec s;
    default_spec(&s, &g_ecc);
    qquote_parts *q = malloc(sizeof *q);
    assert_non_null(q);
    make_parts(&s, q);
    TPM2B_ATTEST at;
    at.size = (uint16_t)q->attest_len;
    memcpy(at.attestationData, q->attest, q->attest_len);
    TPMT_SIGNATURE sig;
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Unmarshal(q->sig, q->sig_len, &off, &sig), 0);
    char *str = qquote_build_tpm(&at, &sig, q->pcrblob, q->pcrblob_len, NULL);
    assert_non_null(str);
    char *ref = parts_string(q);
    assert_string_equal(str, ref);
    check_quote(&s, str, "abcdefghij0123456789", QHASH_SHA256, NULL);
    free(str);
    free(ref);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_ok),
        cmocka_unit_test(test_ecc_ok),
        cmocka_unit_test(test_many_pcrs_ok),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_wrong_nonce),
        cmocka_unit_test(test_wrong_hash_alg),
        cmocka_unit_test(test_wrong_sig_scheme),
        cmocka_unit_test(test_mismatched_selection),
        cmocka_unit_test(test_blob_bank_differs),
        cmocka_unit_test(test_wrong_pcr_digest),
        cmocka_unit_test(test_bad_magic_type),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_pcrblob_roundtrip),
        cmocka_unit_test(test_pcrblob_layout),
        cmocka_unit_test(test_pcrblob_errors),
        cmocka_unit_test(test_oversized_blob_in_quote),
        cmocka_unit_test(test_pcr16_expected),
        cmocka_unit_test(test_pubkey_pem_and_name),
        cmocka_unit_test(test_pubkey_errors),
        cmocka_unit_test(test_ak_attributes),
        cmocka_unit_test(test_clock_rule),
        cmocka_unit_test(test_build_tpm),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
