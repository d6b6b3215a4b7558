/* test_attest.c — one attestation round's checks (verifier/attest.h) against answers built in
 * process with software-signed quotes (swquote.h): every failure event, a clean pass, an
 * incremental round, reboots, quote progress; plus the mask/nonce helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../verifier/attest.h"
#include "../../verifier/policy_cache.h"
#include "buf.h"
#include "log.h"
#include "policy.h"
#include "swquote.h"

#include <openssl/x509.h>

#define AGENT_ID "d432fbb3-d2f1-4a97-9ef7-75bd81c00001"
#define NONCE "abcdefghijklmnopqrstuvwx"
#define NLINES_MAX 16

static swq_key g_ak, g_other;
static const char *PEM = "-----BEGIN PUBLIC KEY-----\nTESTPAYLOADKEY\n-----END PUBLIC KEY-----\n";
static const char *PEM2 = "-----BEGIN PUBLIC KEY-----\nOTHERPAYLOADKEY\n-----END PUBLIC KEY-----\n";

/* ---- log capture ------------------------------------------------------------------------- */

static char g_log[65536];
static size_t g_log_len;

static void sink(void *ctx, qlog_level lvl, const char *module, const char *msg)
{
    (void)ctx;
    (void)lvl;
    int n = snprintf(g_log + g_log_len, sizeof g_log - g_log_len, "%s: %s\n", module, msg);
    if (n > 0 && g_log_len + (size_t)n < sizeof g_log)
        g_log_len += (size_t)n;
}

static int sha256(const char *s, uint8_t out[32])
{
    return EVP_Digest(s, strlen(s), out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static bool logged(const char *s)
{
    return strstr(g_log, s) != NULL;
}

/* ---- fixture ------------------------------------------------------------------------------ */

typedef struct fx {
    vattest_ctx *ctx;
    vagent ag;
    vattest_mem mem;
    vpolicy_ref *pol;
    qclockinfo clock;
    char lines[NLINES_MAX][512];     /* the machine's IMA list, one line each (with '\n') */
    size_t nlines;
    vattest_out out;
} fx;

typedef struct ans {
    const swq_key *key;          /* NULL: g_ak */
    const char *nonce;           /* quoted nonce; NULL: NONCE */
    const char *hash_alg, *enc_alg, *sign_alg;
    const char *pubkey;          /* NULL: none */
    uint64_t from;               /* ima_measurement_list_entry and first line returned */
    bool no_entry, no_list, no_boot;
    uint64_t boottime;
    size_t cover;                /* lines covered by PCR 10; SIZE_MAX: all */
    const char *pcr16_pem;       /* PCR 16 binding; NULL: PEM */
    bool no_pcr16;
    uint32_t extra_mask;         /* extra PCRs quoted (value = bytes i+1) */
    bool no_pcr10;
    uint32_t blob_mask;          /* relabelled blob */
    const char *list_override;   /* the list text instead of lines[from..] */
} ans;

static void add_line(fx *f, const char *path)
{
    assert_true(f->nlines < NLINES_MAX);
    uint8_t d[32];
    assert_int_equal(sha256(path, d), 0);
    assert_true(swq_ima_line(f->lines[f->nlines], sizeof f->lines[0], path, d) > 0);
    f->nlines++;
}

/* Allowlist with the given paths (the digest is sha256 of the path text). */
static vpolicy_ref *allowlist(const char *const *paths)
{
    qbuf b;
    qbuf_init(&b, 0);
    for (size_t i = 0; paths[i]; i++) {
        uint8_t d[32];
        char hex[65];
        assert_int_equal(sha256(paths[i], d), 0);
        qbuf_printf(&b, "%s  %s\n", qhex_encode(d, 32, hex), paths[i]);
    }
    qerr err = { 0 };
    qpolicy *p = qpolicy_from_allowlist((const char *)b.data, b.len, "test", &err);
    qbuf_free(&b);
    assert_non_null(p);
    vpolicy_ref *r = vpolicy_ref_wrap(p, &err);
    assert_non_null(r);
    return r;
}

static const char *const ALLOWED[] = { "/bin/a", "/bin/b", "/bin/c", "/bin/d", "/bin/e", "/bin/f", NULL };

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    vattest_opts o = { .violations_fail = false, .log = true };
    f->ctx = vattest_ctx_new(&o, NULL);
    assert_non_null(f->ctx);
    snprintf(f->ag.agent_id, sizeof f->ag.agent_id, "%s", AGENT_ID);
    snprintf(f->ag.st.agent_id, sizeof f->ag.st.agent_id, "%s", AGENT_ID);
    f->ag.ak_tpm = strdup(g_ak.pub_b64);
    f->ag.accept_tpm_hash_algs = strdup("[\"sha256\", \"sha384\"]");
    f->ag.accept_tpm_encryption_algs = strdup("[\"rsa\", \"ecc\"]");
    f->ag.accept_tpm_signing_algs = strdup("[\"rsassa\"]");
    f->ag.st.pcr10_alg = QHASH_NONE;
    f->ag.st.severity_level = -1;
    f->ag.policy_id = 1;
    f->pol = allowlist(ALLOWED);
    f->clock = (qclockinfo){ .clock = 1000, .reset_count = 3, .restart_count = 0, .safe = 1 };
    add_line(f, "/bin/a");
    add_line(f, "/bin/b");
    add_line(f, "/bin/c");
    g_log_len = 0;
    g_log[0] = '\0';
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    vattest_out_free(&f->out);
    vattest_mem_clear(&f->mem);
    vattest_ctx_free(f->ctx);
    vpolicy_ref_release(f->pol);
    vagent_free(&f->ag);
    free(f);
    return 0;
}

/* The agent's answer per a, as the "results" object. */
static cJSON *answer(fx *f, const ans *a)
{
    qpcrblob p;
    memset(&p, 0, sizeof p);
    p.bank = QHASH_SHA256;
    p.mask = a->extra_mask;
    if (!a->no_pcr10) {
        p.mask |= 1u << 10;
        qpcr r;
        qpcr_init(&r, QHASH_SHA256);
        size_t cover = a->cover == SIZE_MAX ? f->nlines : a->cover;
        for (size_t i = 0; i < cover && i < f->nlines; i++)
            assert_int_equal(swq_replay(&r, f->lines[i], strlen(f->lines[i]), 1, NULL, NULL), 0);
        memcpy(p.value[10], r.value, 32);
    }
    if (!a->no_pcr16) {
        p.mask |= 1u << 16;
        assert_int_equal(swq_pcr16(QHASH_SHA256, a->pcr16_pem ? a->pcr16_pem : PEM, p.value[16]), 0);
    }
    for (int i = 0; i < 24; i++)
        if ((a->extra_mask & (1u << i)) && i != 10 && i != 16)
            memset(p.value[i], i + 1, 32);
    f->clock.clock += 100;
    swq_spec s = {
        .key = a->key ? a->key : &g_ak,
        .nonce = a->nonce ? a->nonce : NONCE,
        .bank = QHASH_SHA256,
        .pcrs = &p,
        .blob_mask = a->blob_mask,
        .clock = f->clock,
    };
    char *q = swq_quote(&s);
    assert_non_null(q);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "quote", q);
    free(q);
    cJSON_AddStringToObject(r, "hash_alg", a->hash_alg ? a->hash_alg : "sha256");
    cJSON_AddStringToObject(r, "enc_alg", a->enc_alg ? a->enc_alg : "rsa");
    cJSON_AddStringToObject(r, "sign_alg", a->sign_alg ? a->sign_alg : "rsassa");
    if (a->pubkey)
        cJSON_AddStringToObject(r, "pubkey", a->pubkey);
    if (!a->no_boot)
        cJSON_AddNumberToObject(r, "boottime", (double)a->boottime);
    if (!a->no_list) {
        if (a->list_override) {
            cJSON_AddStringToObject(r, "ima_measurement_list", a->list_override);
        } else {
            qbuf b;
            qbuf_init(&b, 0);
            for (size_t i = a->from; i < f->nlines; i++)
                qbuf_append_str(&b, f->lines[i]);
            cJSON_AddStringToObject(r, "ima_measurement_list", b.len ? qbuf_cstr(&b) : "");
            qbuf_free(&b);
        }
    }
    if (!a->no_entry)
        cJSON_AddNumberToObject(r, "ima_measurement_list_entry", (double)a->from);
    return r;
}

/* Runs a round of agent ag with the results object and applies the new state to the record
 * (as the poller does, the learned keyrings included). */
static vattest_outcome round_agent(fx *f, vagent *ag, vattest_mem *mem, cJSON *results, uint64_t requested)
{
    vattest_out_free(&f->out);
    vattest_in in = {
        .agent = ag,
        .nonce = NONCE,
        .requested_entry = requested,
        .results = results,
        .policy = f->pol,
        .now = 1700000000,
    };
    vattest_outcome oc = vattest_round(f->ctx, &in, mem, &f->out);
    assert_int_equal(oc, f->out.outcome);
    cJSON_Delete(results);
    free(ag->st.learned_ima_keyrings);
    ag->st = f->out.st;
    f->out.st.learned_ima_keyrings = NULL;
    return oc;
}

static vattest_outcome round_with(fx *f, cJSON *results, uint64_t requested)
{
    return round_agent(f, &f->ag, &f->mem, results, requested);
}

static vattest_outcome run(fx *f, const ans *a, uint64_t requested)
{
    return round_with(f, answer(f, a), requested);
}

static bool has_event(const fx *f, const char *event_id)
{
    for (size_t i = 0; i < f->out.nfailures; i++)
        if (strcmp(f->out.failures[i].event_id, event_id) == 0)
            return true;
    return false;
}

static ans first(void)
{
    return (ans){ .pubkey = PEM, .cover = SIZE_MAX };
}

static ans next(uint64_t from)
{
    return (ans){ .from = from, .cover = SIZE_MAX };
}

/* ---- passes --------------------------------------------------------------------------------- */

static void test_clean_pass(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->out.nfailures, 0);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 3);
    assert_int_equal(f->ag.st.pcr10_alg, QHASH_SHA256);
    assert_int_equal(f->ag.st.attestation_count, 1);
    assert_int_equal(f->ag.st.last_successful_attestation, 1700000000);
    assert_int_equal(f->ag.st.last_received_quote, 1700000000);
    assert_true(f->ag.st.clock_set);
    assert_int_equal(f->ag.st.clock, f->clock.clock);
    assert_int_equal(f->ag.st.reset_count, 3);
    assert_string_equal(f->out.hash_alg, "sha256");
    assert_string_equal(f->out.enc_alg, "rsa");
    assert_string_equal(f->out.sign_alg, "rsassa");
    assert_non_null(f->mem.pubkey);
    assert_false(logged("stopping polling"));
}

static void test_incremental(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    add_line(f, "/bin/d");
    add_line(f, "/bin/e");
    a = next(3);            /* partial=1: no pubkey, the cached one is used */
    assert_int_equal(run(f, &a, 3), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 5);
    assert_int_equal(f->ag.st.attestation_count, 2);
    /* no new entries: "" and the stored PCR equals the quoted one */
    a = next(5);
    assert_int_equal(run(f, &a, 5), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 5);
    assert_int_equal(f->ag.st.attestation_count, 3);
}

static void test_lagging_once_passes(void **state)
{
    fx *f = *state;
    ans a = first();
    a.cover = 2;            /* the log is read after the quote: one entry not covered yet */
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 2);
    a = next(2);            /* the next quote catches up */
    assert_int_equal(run(f, &a, 2), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 3);
}

/* A list in pieces (the agent's max_ima_bytes): the first answer carries lines 0-1 of 3 and
 * "ima_measurement_list_more"; the quote covers all 3. The round passes as pending (state after
 * the piece, nothing counted), the next asks from entry 2 and completes the attestation. Without
 * "more" the same piece is a PCR mismatch. */
static void test_list_in_pieces(void **state)
{
    fx *f = *state;
    char piece[1024] = "";
    strcat(piece, f->lines[0]);
    strcat(piece, f->lines[1]);
    ans a = first();
    a.list_override = piece;
    cJSON *r = answer(f, &a);
    cJSON_AddTrueToObject(r, "ima_measurement_list_more");
    assert_int_equal(round_with(f, r, 0), VATTEST_PASS);
    assert_true(f->out.ima_pending);
    assert_int_equal(f->out.nfailures, 0);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 2);
    assert_int_equal(f->ag.st.attestation_count, 0);
    a = next(2);
    assert_int_equal(run(f, &a, 2), VATTEST_PASS);
    assert_false(f->out.ima_pending);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 3);
    assert_int_equal(f->ag.st.attestation_count, 1);
    /* the same piece from entry 0 without "more": a mismatch */
    a = first();
    a.list_override = piece;
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "ima.pcr_mismatch"));
}

static void test_last_line_without_newline(void **state)
{
    fx *f = *state;
    char list[1024] = "";
    for (size_t i = 0; i < f->nlines; i++)
        strcat(list, f->lines[i]);
    list[strlen(list) - 1] = '\0';
    ans a = first();
    a.list_override = list;
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 3);
}

static void test_alg_aliases(void **state)
{
    fx *f = *state;
    ans a = first();
    a.enc_alg = "rsa2048";
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_string_equal(vattest_enc_norm("ecc256"), "ecc");
    assert_string_equal(vattest_enc_norm("rsa2048"), "rsa");
    assert_string_equal(vattest_enc_norm("rsa3072"), "rsa3072");
}

static void test_default_alg_lists(void **state)
{
    fx *f = *state;
    free(f->ag.accept_tpm_hash_algs);
    free(f->ag.accept_tpm_encryption_algs);
    free(f->ag.accept_tpm_signing_algs);
    f->ag.accept_tpm_hash_algs = f->ag.accept_tpm_encryption_algs = f->ag.accept_tpm_signing_algs = NULL;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
}

static void test_tpm_policy_pass(void **state)
{
    fx *f = *state;
    char hex[65];
    uint8_t v[32];
    memset(v, 16, 32);          /* PCR 15 = bytes 16 */
    qhex_encode(v, 32, hex);
    char pol[256];
    snprintf(pol, sizeof pol, "{\"15\": [\"00\", \"%s\"], \"mask\": \"0x8400\"}", hex);
    f->ag.tpm_policy = strdup(pol);
    ans a = first();
    a.extra_mask = 1u << 15;
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
}

/* ---- field and algorithm failures ------------------------------------------------------------ */

static void test_missing_quote(void **state)
{
    fx *f = *state;
    ans a = first();
    cJSON *r = answer(f, &a);
    cJSON_DeleteItemFromObject(r, "quote");
    assert_int_equal(round_with(f, r, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.invalid_data"));
    assert_int_equal(f->ag.st.operational_state, 0);       /* the round machine decides */
    assert_string_equal(f->ag.st.last_event_id, "qoute_validation.invalid_data");
    assert_int_equal(f->ag.st.severity_level, VATTEST_SEVERITY_MAX);
    assert_false(logged("stopping polling"));       /* logged by round.c */
}

static void test_not_an_object(void **state)
{
    fx *f = *state;
    assert_int_equal(round_with(f, NULL, 0), VATTEST_FAILED);
    assert_true(has_event(f, "qoute_validation.invalid_data"));
    assert_int_equal(f->ag.st.operational_state, 0);       /* the round machine decides */
    assert_int_equal(round_with(f, cJSON_CreateString("garbage"), 0), VATTEST_FAILED);
}

static void test_entry_not_integer(void **state)
{
    fx *f = *state;
    ans a = first();
    cJSON *r = answer(f, &a);
    cJSON_ReplaceItemInObject(r, "ima_measurement_list_entry", cJSON_CreateString("0"));
    assert_int_equal(round_with(f, r, 0), VATTEST_FAILED);
    assert_true(has_event(f, "qoute_validation.invalid_data"));
    r = answer(f, &a);
    cJSON_ReplaceItemInObject(r, "ima_measurement_list_entry", cJSON_CreateNumber(1.5));
    assert_int_equal(round_with(f, r, 0), VATTEST_FAILED);
}

static void test_boottime_not_integer(void **state)
{
    fx *f = *state;
    ans a = first();
    cJSON *r = answer(f, &a);
    cJSON_ReplaceItemInObject(r, "boottime", cJSON_CreateNumber(-4));
    assert_int_equal(round_with(f, r, 0), VATTEST_FAILED);
    assert_true(has_event(f, "qoute_validation.invalid_data"));
}

static void test_list_wrong_type(void **state)
{
    fx *f = *state;
    ans a = first();
    cJSON *r = answer(f, &a);
    cJSON_ReplaceItemInObject(r, "ima_measurement_list", cJSON_CreateNumber(3));
    assert_int_equal(round_with(f, r, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.invalid_data"));
}

static void test_bad_hash_alg(void **state)
{
    fx *f = *state;
    ans a = first();
    a.hash_alg = "sha1";        /* known, not accepted */
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.invalid_hash_alg"));
    a.hash_alg = "sm3_256";     /* unknown */
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.invalid_hash_alg"));
}

static void test_bad_enc_alg(void **state)
{
    fx *f = *state;
    free(f->ag.accept_tpm_encryption_algs);
    f->ag.accept_tpm_encryption_algs = strdup("[\"rsa\"]");
    vattest_mem_clear(&f->mem);        /* a changed record: parsed again (once per record) */
    ans a = first();
    a.enc_alg = "ecc256";
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.invalid_enc_alg"));
}

static void test_bad_sign_alg(void **state)
{
    fx *f = *state;
    ans a = first();
    a.sign_alg = "rsapss";
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.invalid_sign_alg"));
}

/* ---- quote failures ---------------------------------------------------------------------------- */

static void test_wrong_key(void **state)
{
    fx *f = *state;
    ans a = first();
    a.key = &g_other;
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.quote_validation"));
    assert_int_equal(f->out.nfailures, 1);
    assert_non_null(strstr(f->out.failures[0].reason, "Quote data validation"));
    assert_int_equal(f->ag.st.attestation_count, 0);
}

static void test_stale_nonce(void **state)
{
    fx *f = *state;
    ans a = first();
    a.nonce = "an0ld0ne0000000000000000";
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.quote_validation"));
    assert_non_null(strstr(f->out.failures[0].reason, "nonce"));
}

static void test_bad_selection(void **state)
{
    fx *f = *state;
    ans a = first();
    a.blob_mask = (1u << 11) | (1u << 16);     /* PCR 10's value relabelled as PCR 11 */
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.quote_validation"));
    assert_non_null(strstr(f->out.failures[0].reason, "selection"));
}

static void test_bad_ak(void **state)
{
    fx *f = *state;
    free(f->ag.ak_tpm);
    f->ag.ak_tpm = strdup("AAAA");
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.quote_validation"));
}

static void test_clock_not_advancing(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    f->clock.clock -= 500;      /* older than the last quote */
    a = next(3);
    assert_int_equal(run(f, &a, 3), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.quote_validation"));
    assert_non_null(strstr(f->out.failures[0].reason, "clockinfo"));
}

static void test_clock_unsafe(void **state)
{
    fx *f = *state;
    f->clock.safe = 0;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.quote_validation"));
}

/* ---- PCR failures -------------------------------------------------------------------------------- */

static void test_pcr16_invalid(void **state)
{
    fx *f = *state;
    ans a = first();
    a.pcr16_pem = PEM2;
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "pcr_validation.invalid_pcr_16"));
    assert_null(f->mem.pubkey);
}

static void test_pcr16_missing(void **state)
{
    fx *f = *state;
    ans a = first();
    a.no_pcr16 = true;
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "pcr_validation.missing_pcr_16"));
}

static void test_no_pubkey(void **state)
{
    fx *f = *state;
    ans a = next(0);            /* partial=1 answer and nothing cached */
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.no_pubkey"));
}

static void test_pubkey_changed(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_false(f->out.pubkey_changed);
    a = next(3);
    a.pubkey = PEM2;
    a.pcr16_pem = PEM2;
    assert_int_equal(run(f, &a, 3), VATTEST_PASS);
    assert_true(f->out.pubkey_changed);
    assert_string_equal(f->mem.pubkey, PEM2);
}

static void test_tpm_policy_invalid(void **state)
{
    fx *f = *state;
    f->ag.tpm_policy = strdup("{\"15\": \"00\", \"mask\": \"0x8400\"}");
    ans a = first();
    a.extra_mask = 1u << 15;
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "pcr_validation.invalid_pcr_15"));
    /* IMA still ran and passed: its state moved */
    assert_int_equal(f->ag.st.next_ima_ml_entry, 3);
}

static void test_tpm_policy_missing(void **state)
{
    fx *f = *state;
    f->ag.tpm_policy = strdup("{\"15\": [\"00\"], \"7\": [\"00\"], \"mask\": \"0x8480\"}");
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "pcr_validation.missing_pcrs"));
    assert_int_equal(f->out.nfailures, 1);
    assert_non_null(strstr(f->out.failures[0].reason, "15"));
    assert_non_null(strstr(f->out.failures[0].reason, "7"));
}

static void test_unused_pcr10(void **state)
{
    fx *f = *state;
    ans a = first();
    a.no_list = true;
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "pcr_validation.unused_pcr_10"));
}

static void test_no_pcr10_no_ima(void **state)
{
    fx *f = *state;
    ans a = first();
    a.no_pcr10 = true;
    add_line(f, "/bin/unknown");      /* not judged: PCR 10 is not quoted */
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 0);
    assert_int_equal(f->ag.st.pcr10_alg, QHASH_NONE);
}

/* ---- IMA failures --------------------------------------------------------------------------------- */

static void test_ima_not_in_allowlist(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    add_line(f, "/usr/bin/evil");
    a = next(3);
    assert_int_equal(run(f, &a, 3), VATTEST_INVALID_QUOTE);
    assert_int_equal(f->out.nfailures, 1);
    const vfailure *r = &f->out.failures[0];
    assert_string_equal(r->event_id, "ima.validation.ima-ng.not_in_allowlist");
    assert_int_equal(r->entry, 3);
    assert_string_equal(r->path, "/usr/bin/evil");
    assert_string_equal(r->reason, "File not found in allowlist: /usr/bin/evil");
    assert_int_equal(r->time, 1700000000);
    assert_int_equal(f->ag.st.operational_state, 0);       /* the round machine decides */
    assert_string_equal(f->ag.st.last_event_id, "ima.validation.ima-ng.not_in_allowlist");
    /* any IMA failure resets the IMA state */
    assert_int_equal(f->ag.st.next_ima_ml_entry, 0);
    assert_int_equal(f->ag.st.pcr10_alg, QHASH_NONE);
    assert_int_equal(f->ag.st.attestation_count, 1);
    /* The lines name the agent; good counts the 3 entries that passed since the replay began. */
    assert_true(logged("ima: agent " AGENT_ID ": File not found in allowlist: /usr/bin/evil"));
    assert_true(logged("ima: agent " AGENT_ID ": IMA ERRORS: template-hash 0 fnf 1 hash 0 good 3"));
    assert_false(logged("stopping polling"));       /* logged by round.c */
}

static void test_ima_pcr_mismatch(void **state)
{
    fx *f = *state;
    ans a = first();
    char list[1024];
    snprintf(list, sizeof list, "%s%s", f->lines[0], f->lines[2]);   /* an entry withheld */
    a.list_override = list;
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "ima.pcr_mismatch"));
}

static void test_ima_failure_records_bounded(void **state)
{
    fx *f = *state;
    /* 1500 unknown files (all lines identical: bounded records, all counted) */
    char line[512];
    uint8_t d[32] = { 1 };
    int n = swq_ima_line(line, sizeof line, "/tmp/x", d);
    assert_true(n > 0);
    size_t cnt = 1500;
    char *list = malloc(cnt * (size_t)n + 1);
    assert_non_null(list);
    for (size_t i = 0; i < cnt; i++)
        memcpy(list + i * (size_t)n, line, (size_t)n);
    list[cnt * (size_t)n] = '\0';
    ans a = first();
    a.list_override = list;
    a.cover = 0;                /* PCR 10 zero: matches before any line */
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    free(list);
    assert_int_equal(f->out.nfailures, VATTEST_MAX_FAILURES);
    assert_int_equal(f->out.total_failures, 1500);
    assert_int_equal(f->out.failures[999].entry, 999);
}

static void test_invalid_entry_nb(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    add_line(f, "/bin/d");
    a = next(2);                /* asked for 3, answered from 2 */
    assert_int_equal(run(f, &a, 3), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.invalid_ima_entry_nb"));
    assert_int_equal(f->out.nfailures, 1);
}

/* ---- reboots -------------------------------------------------------------------------------------- */

static void test_reboot_entry0(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    /* reboot: a new, shorter log; the TPM clock restarted lower with a new resetCount */
    f->nlines = 0;
    add_line(f, "/bin/e");
    add_line(f, "/bin/f");
    f->clock.clock = 10;
    f->clock.reset_count = 4;
    a = next(0);                /* asked 3, answered from 0 */
    assert_int_equal(run(f, &a, 3), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 2);
    assert_int_equal(f->ag.st.reset_count, 4);
    assert_int_equal(f->ag.st.attestation_count, 2);
}

/* The TPM was reset and the agent restarted with a new payload key before the next poll: a partial
 * answer (no pubkey) quotes PCR 16 bound to a key the verifier has not seen. Nothing can be
 * judged with the cached key: a reboot round, no failure; the next round (partial=0) carries the
 * new key and passes. Without a TPM reset the same answer is a PCR 16 failure. */
static void test_reboot_new_payload_key(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    a = next(3);
    a.pcr16_pem = PEM2;
    f->clock.clock = 50000;
    f->clock.reset_count = 4;
    assert_int_equal(run(f, &a, 3), VATTEST_REBOOT);
    assert_int_equal(f->out.nfailures, 0);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 0);
    assert_int_equal(f->ag.st.reset_count, 4);
    assert_int_equal(f->ag.st.attestation_count, 1);
    a = next(0);
    a.pubkey = PEM2;
    a.pcr16_pem = PEM2;
    f->clock.clock = 51000;
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_string_equal(f->mem.pubkey, PEM2);
    assert_int_equal(f->ag.st.attestation_count, 2);
    /* the same change without a TPM reset fails */
    a = next(3);
    a.pcr16_pem = PEM;
    f->clock.clock = 52000;
    assert_int_equal(run(f, &a, 3), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "pcr_validation.invalid_pcr_16"));
}

static void test_clock_back_without_reboot(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    f->clock.clock = 10;
    f->clock.reset_count = 4;
    a = next(3);                /* same list position: no reboot evidence */
    assert_int_equal(run(f, &a, 3), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "qoute_validation.quote_validation"));
}

static void test_reboot_boottime(void **state)
{
    fx *f = *state;
    ans a = first();
    a.boottime = 1000;
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->ag.st.boottime, 1000);
    add_line(f, "/bin/d");
    a = next(3);
    a.boottime = 2000;          /* the machine rebooted; the agent kept its numbering */
    assert_int_equal(run(f, &a, 3), VATTEST_REBOOT);
    assert_int_equal(f->out.nfailures, 0);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 0);
    assert_int_equal(f->ag.st.pcr10_alg, QHASH_NONE);
    assert_int_equal(f->ag.st.boottime, 2000);
    assert_int_equal(f->ag.st.attestation_count, 1);      /* not a success */
    assert_int_equal(f->ag.st.operational_state, 0);       /* left to the poller */
    a = next(0);                /* the next round asks entry 0 and replays everything */
    a.boottime = 2000;
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 4);
    assert_int_equal(f->ag.st.attestation_count, 2);
}

/* A TPM reset (resetCount changed) while the agent answered from the requested entry of a new,
 * longer list: the stored replay state belongs to the old boot, so the round resets it and asks
 * for entry 0 instead of replaying the new list on top of the old PCR value. */
static void test_reboot_reset_count(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    uint64_t prev_entry = f->ag.st.next_ima_ml_entry;
    f->nlines = 0;                           /* the new boot's list: longer than the old one */
    for (const char *const *p = ALLOWED; *p; p++)
        add_line(f, *p);
    f->clock.clock += 1000;
    f->clock.reset_count += 1;
    a = next(prev_entry);                    /* answered from the requested entry */
    assert_int_equal(run(f, &a, prev_entry), VATTEST_REBOOT);
    assert_int_equal(f->out.nfailures, 0);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 0);
    a = next(0);
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 6);
}

/* ---- quote progress ------------------------------------------------------------------------------ */

static void test_quote_progress(void **state)
{
    fx *f = *state;
    add_line(f, "/bin/d");
    ans a = first();
    a.cover = 2;                /* 2 of 4 lines covered */
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 2);
    a = next(2);
    a.cover = 2;                /* still stuck at 2: lag 2, match 0 */
    assert_int_equal(run(f, &a, 2), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "ima.quote_progress"));
    assert_true(logged("PCR quote did not make progress to catch up with the log"));
}

static void test_always_entry0_blind_spot(void **state)
{
    fx *f = *state;
    ans a = first();
    a.cover = 0;                /* PCR 10 all zero, list never covered */
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 0);
    a = next(0);
    a.cover = 0;
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_true(has_event(f, "ima.quote_progress"));
}

static void test_policy_switch(void **state)
{
    fx *f = *state;
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    /* another policy through the same worker context: the engine must follow it */
    static const char *const only_a[] = { "/bin/a", NULL };
    vpolicy_ref *p2 = allowlist(only_a);
    vpolicy_ref *keep = f->pol;
    f->pol = p2;
    vattest_mem_clear(&f->mem);
    f->ag.st.next_ima_ml_entry = 0;
    f->ag.st.pcr10_alg = QHASH_NONE;
    f->ag.st.clock_set = false;
    a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_int_equal(f->out.nfailures, 2);
    f->pol = keep;
    vpolicy_ref_release(p2);
    vattest_mem_clear(&f->mem);
    f->ag.st.clock_set = false;
    a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
}

static void test_empty_policy(void **state)
{
    fx *f = *state;
    vpolicy_ref_release(f->pol);
    f->pol = NULL;              /* no runtime policy: everything is "not found" */
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_INVALID_QUOTE);
    assert_int_equal(f->out.nfailures, 3);
    assert_true(has_event(f, "ima.validation.ima-ng.not_in_allowlist"));
}

/* ---- learned IMA keyrings ------------------------------------------------------------------------ */

/* An IMA line of any template: "10 <sha1 template hash> <tmpl> sha256:<digest> <path>[ <extra hex>]". */
static void add_tmpl_line(fx *f, const char *tmpl, const char *path, const uint8_t d[32], const char *extra)
{
    assert_true(f->nlines < NLINES_MAX);
    char *out = f->lines[f->nlines];
    size_t cap = sizeof f->lines[0];
    char dhex[65], thex[41];
    qhex_encode(d, 32, dhex);
    memset(thex, '1', 40);
    thex[40] = '\0';
    int n = snprintf(out, cap, "10 %s %s sha256:%s %s%s%s", thex, tmpl, dhex, path, extra ? " " : "",
                     extra ? extra : "");
    assert_true(n > 0 && (size_t)n + 2 <= cap);
    uint8_t *scratch = malloc(QIMA_SCRATCH_SIZE), *td = malloc(QIMA_SCRATCH_SIZE);
    assert_non_null(scratch);
    assert_non_null(td);
    qima_entry e;
    assert_int_equal(qima_parse_line(out, (size_t)n, &e, scratch, NULL), 0);
    long tl = qima_template_data(&e, td, QIMA_SCRATCH_SIZE);
    assert_true(tl > 0);
    uint8_t th[20];
    assert_int_equal(EVP_Digest(td, (size_t)tl, th, NULL, EVP_sha1(), NULL), 1);
    free(scratch);
    free(td);
    qhex_encode(th, 20, thex);
    memcpy(out + 3, thex, 40);
    out[n] = '\n';
    out[n + 1] = '\0';
    f->nlines++;
}

typedef struct lkey {
    EVP_PKEY *k;
    uint8_t der[256];
    size_t der_len;
    uint8_t der_digest[32];
    uint32_t keyid;
} lkey;

static void lkey_new(lkey *l)
{
    l->k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(l->k);
    unsigned char *p = NULL;
    int n = i2d_PUBKEY(l->k, &p);
    assert_true(n > 0 && (size_t)n <= sizeof l->der);
    memcpy(l->der, p, (size_t)n);
    OPENSSL_free(p);
    l->der_len = (size_t)n;
    assert_int_equal(EVP_Digest(l->der, l->der_len, l->der_digest, NULL, EVP_sha256(), NULL), 1);
    assert_int_equal(qkeyring_keyid(l->der, l->der_len, &l->keyid, NULL), 0);
}

/* The key measured into keyring .ima (an ima-buf entry). */
static void add_key_line(fx *f, const lkey *l)
{
    char hex[2 * sizeof l->der + 1];
    qhex_encode(l->der, l->der_len, hex);
    add_tmpl_line(f, "ima-buf", ".ima", l->der_digest, hex);
}

/* An ima-sig entry for path (digest sha256(path)) signed with l (signature_v2_hdr, ECDSA). */
static void add_signed_line(fx *f, const lkey *l, const char *path)
{
    uint8_t d[32], blob[9 + 128];
    assert_int_equal(sha256(path, d), 0);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(l->k, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_sign_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
    size_t sl = sizeof blob - 9;
    assert_int_equal(EVP_PKEY_sign(c, blob + 9, &sl, d, 32), 1);
    EVP_PKEY_CTX_free(c);
    blob[0] = 3;
    blob[1] = 2;
    blob[2] = 4;
    blob[3] = (uint8_t)(l->keyid >> 24);
    blob[4] = (uint8_t)(l->keyid >> 16);
    blob[5] = (uint8_t)(l->keyid >> 8);
    blob[6] = (uint8_t)l->keyid;
    blob[7] = (uint8_t)(sl >> 8);
    blob[8] = (uint8_t)sl;
    char hex[2 * sizeof blob + 1];
    qhex_encode(blob, 9 + sl, hex);
    add_tmpl_line(f, "ima-sig", path, d, hex);
}

/* ALLOWED plus the key's digest in the keyrings table for .ima. */
static vpolicy_ref *allowlist_with_key(const lkey *l)
{
    qbuf b;
    qbuf_init(&b, 0);
    for (size_t i = 0; ALLOWED[i]; i++) {
        uint8_t d[32];
        char hex[65];
        assert_int_equal(sha256(ALLOWED[i], d), 0);
        qbuf_printf(&b, "%s  %s\n", qhex_encode(d, 32, hex), ALLOWED[i]);
    }
    char kh[65];
    qbuf_printf(&b, "%s  %%keyring:.ima\n", qhex_encode(l->der_digest, 32, kh));
    qerr err = { 0 };
    qpolicy *p = qpolicy_from_allowlist((const char *)b.data, b.len, "test", &err);
    qbuf_free(&b);
    if (!p)
        fail_msg("allowlist: %s", err.msg);
    vpolicy_ref *r = vpolicy_ref_wrap(p, &err);
    assert_non_null(r);
    return r;
}

/* Round 1 learns a key from an ima-buf entry; round 2's ima-sig entry, signed with it and not in
 * the allowlist, passes through the stored learned keyrings. Another agent of the same worker
 * (same cached engine) does not see the key; a reset (entry 0) drops it. */
static void test_learned_keys(void **state)
{
    fx *f = *state;
    lkey l;
    lkey_new(&l);
    vpolicy_ref_release(f->pol);
    f->pol = allowlist_with_key(&l);
    add_key_line(f, &l);                        /* entry 3 */
    ans a = first();
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 4);
    assert_non_null(f->ag.st.learned_ima_keyrings);
    cJSON *j = cJSON_Parse(f->ag.st.learned_ima_keyrings);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, ".ima"), "keyids");
    assert_int_equal(cJSON_GetArraySize(ids), 1);
    assert_true(cJSON_GetArrayItem(ids, 0)->valuedouble == (double)l.keyid);
    cJSON_Delete(j);
    vagent_state after1 = f->ag.st;             /* (learned text still owned by f->ag) */

    /* Another agent, same worker context and policy, same list position, nothing learned. */
    add_signed_line(f, &l, "/opt/signed");     /* entry 4: not in the allowlist */
    vagent b;
    memset(&b, 0, sizeof b);
    vattest_mem bm;
    memset(&bm, 0, sizeof bm);
    snprintf(b.agent_id, sizeof b.agent_id, "%s", "other-agent");
    b.ak_tpm = strdup(g_ak.pub_b64);
    b.policy_id = 1;
    b.st = after1;
    snprintf(b.st.agent_id, sizeof b.st.agent_id, "%s", "other-agent");
    b.st.learned_ima_keyrings = NULL;
    b.st.clock_set = false;
    a = next(4);
    a.pubkey = PEM;
    assert_int_equal(round_agent(f, &b, &bm, answer(f, &a), 4), VATTEST_INVALID_QUOTE);
    assert_int_equal(f->out.nfailures, 1);
    assert_string_equal(f->out.failures[0].event_id, "ima.validation.ima-ng.not_in_allowlist");
    assert_string_equal(f->out.failures[0].path, "/opt/signed");
    assert_null(b.st.learned_ima_keyrings);
    vattest_mem_clear(&bm);
    vagent_free(&b);

    /* Round 2 of the first agent: its stored key verifies the signature. */
    a = next(4);
    assert_int_equal(run(f, &a, 4), VATTEST_PASS);
    assert_int_equal(f->out.nfailures, 0);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 5);
    assert_non_null(f->ag.st.learned_ima_keyrings);
    assert_non_null(strstr(f->ag.st.learned_ima_keyrings, "\".ima\""));
    char *kept = strdup(f->ag.st.learned_ima_keyrings);
    assert_non_null(kept);

    /* A round without PCR 10 leaves the IMA state, learned keys included, as it was. */
    a = next(5);
    a.no_pcr10 = true;
    assert_int_equal(run(f, &a, 5), VATTEST_PASS);
    assert_string_equal(f->ag.st.learned_ima_keyrings, kept);
    /* ... and so does a round with no new entries. */
    a = next(5);
    assert_int_equal(run(f, &a, 5), VATTEST_PASS);
    assert_string_equal(f->ag.st.learned_ima_keyrings, kept);

    /* Unusable stored keyrings: the state is reset, the next round replays from entry 0. */
    free(f->ag.st.learned_ima_keyrings);
    f->ag.st.learned_ima_keyrings = strdup("{\".ima\": 5}");
    a = next(5);
    assert_int_equal(run(f, &a, 5), VATTEST_REBOOT);
    assert_int_equal(f->out.nfailures, 0);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 0);
    assert_null(f->ag.st.learned_ima_keyrings);
    a = next(0);
    assert_int_equal(run(f, &a, 0), VATTEST_PASS);     /* the key entry is replayed: learned again */
    assert_int_equal(f->ag.st.next_ima_ml_entry, 5);
    assert_string_equal(f->ag.st.learned_ima_keyrings, kept);
    free(kept);

    /* Reset: the agent answers from entry 0 (reboot) with a list that no longer measures the key:
     * the learned key is gone and the signed entry fails. */
    f->nlines = 0;
    add_line(f, "/bin/a");
    add_signed_line(f, &l, "/opt/signed");
    f->clock.clock = 10;
    f->clock.reset_count = 4;
    a = next(0);
    assert_int_equal(run(f, &a, 5), VATTEST_INVALID_QUOTE);
    assert_int_equal(f->out.nfailures, 1);
    assert_string_equal(f->out.failures[0].path, "/opt/signed");
    assert_null(f->ag.st.learned_ima_keyrings);
    assert_int_equal(f->ag.st.next_ima_ml_entry, 0);
    EVP_PKEY_free(l.k);
}

/* ---- helpers --------------------------------------------------------------------------------- */

static void test_mask(void **state)
{
    (void)state;
    assert_int_equal(vattest_mask(NULL, false), 0x400);
    assert_int_equal(vattest_mask("{\"mask\": \"0x0\"}", false), 0);
    assert_int_equal(vattest_mask("{\"mask\": \"0x0\"}", true), 0x400);
    assert_int_equal(vattest_mask("{\"15\": [\"00\"], \"mask\": \"0x400\"}", false), 0x8400);
    assert_int_equal(vattest_mask("{\"mask\": \"408000\"}", false), 0x408000);
    assert_int_equal(vattest_mask("not json", false), 0x400);
    assert_int_equal(vattest_mask("{\"mask\": \"0xzz\"}", false), 0x400);
}

static void test_nonce(void **state)
{
    (void)state;
    char a[VATTEST_NONCE_LEN + 1], b[VATTEST_NONCE_LEN + 1];
    assert_int_equal(vattest_nonce(a, VATTEST_NONCE_LEN), 0);
    assert_int_equal(vattest_nonce(b, VATTEST_NONCE_LEN), 0);
    assert_int_equal(strlen(a), VATTEST_NONCE_LEN);
    for (size_t i = 0; i < VATTEST_NONCE_LEN; i++)
        assert_true((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= 'A' && a[i] <= 'Z') || (a[i] >= '0' && a[i] <= '9'));
    assert_string_not_equal(a, b);
}

static void test_fail_helper(void **state)
{
    fx *f = *state;
    vattest_out_free(&f->out);
    f->ag.st.attestation_count = 7;
    vattest_fail(&f->out, &f->ag, 42, VATTEST_FAILED, "internal.verifier.not_reachable", "unreachable");
    assert_int_equal(f->out.outcome, VATTEST_FAILED);
    assert_int_equal(f->out.nfailures, 1);
    assert_int_equal(f->out.failures[0].entry, UINT64_MAX);
    assert_int_equal(f->out.failures[0].time, 42);
    assert_int_equal(f->out.st.operational_state, f->ag.st.operational_state);
    assert_int_equal(f->out.st.attestation_count, 7);
    assert_string_equal(f->out.st.last_event_id, "internal.verifier.not_reachable");
    assert_false(logged("stopping polling"));
}

static int group_setup(void **state)
{
    (void)state;
    qlog_use_stderr(false);
    qlog_set_sink(sink, NULL);
    if (swq_key_new(&g_ak) < 0 || swq_key_new(&g_other) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    qlog_set_sink(NULL, NULL);
    swq_key_free(&g_ak);
    swq_key_free(&g_other);
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_clean_pass),
        T(test_incremental),
        T(test_lagging_once_passes),
        T(test_last_line_without_newline),
        T(test_list_in_pieces),
        T(test_alg_aliases),
        T(test_default_alg_lists),
        T(test_tpm_policy_pass),
        T(test_missing_quote),
        T(test_not_an_object),
        T(test_entry_not_integer),
        T(test_boottime_not_integer),
        T(test_list_wrong_type),
        T(test_bad_hash_alg),
        T(test_bad_enc_alg),
        T(test_bad_sign_alg),
        T(test_wrong_key),
        T(test_stale_nonce),
        T(test_bad_selection),
        T(test_bad_ak),
        T(test_clock_not_advancing),
        T(test_clock_unsafe),
        T(test_pcr16_invalid),
        T(test_pcr16_missing),
        T(test_no_pubkey),
        T(test_pubkey_changed),
        T(test_tpm_policy_invalid),
        T(test_tpm_policy_missing),
        T(test_unused_pcr10),
        T(test_no_pcr10_no_ima),
        T(test_ima_not_in_allowlist),
        T(test_ima_pcr_mismatch),
        T(test_ima_failure_records_bounded),
        T(test_invalid_entry_nb),
        T(test_reboot_entry0),
        T(test_reboot_new_payload_key),
        T(test_clock_back_without_reboot),
        T(test_reboot_boottime),
        T(test_reboot_reset_count),
        T(test_quote_progress),
        T(test_always_entry0_blind_spot),
        T(test_policy_switch),
        T(test_empty_policy),
        T(test_learned_keys),
        T(test_mask),
        T(test_nonce),
        T(test_fail_helper),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
