/* fuzz_agent_answer.c — libFuzzer target: the agent's answer to GET /quotes/integrity (the JSON
 * "results" object) through the verifier's round, vattest_round: field checks, algorithms, the
 * quote (split, signature, attestation, PCR blob, digest), PCR 16, tpm_policy and the IMA replay
 * against an allowlist. The input is the JSON text; every "@Q" in it is replaced by a valid quote
 * made at start-up (a software AK, nonce NONCE, PCR 10 covering the three lines of the seed list),
 * so that mutations of the other fields and of the list reach the replay and the policy.
 * Invariants: the round's outcome agrees with its output; failure records stay within bounds;
 * a pass saves an entry no further than the lines sent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "../unit/swquote.h"
#include "../../verifier/attest.h"
#include "buf.h"
#include "log.h"

#define NONCE    "abcdefghijklmnopqrstuvwx"
#define AGENT_ID "d432fbb3-d2f1-4a97-9ef7-75bd81c0f022"
#define MAX_IN   (64u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static swq_key g_ak;
static char *g_quote;
static char *g_pem_json;    /* the payload key PEM, JSON-escaped, for "@P" */
static vpolicy_ref *g_pol;
static vattest_ctx *g_ctx;
static qak g_akl;            /* the AK loaded once: loading checks the RSA modulus (costly) */

static void init(void)
{
    qlog_set_level(QLOG_CRITICAL);
    static const char *const paths[] = { "/bin/a", "/bin/b", "/bin/c" };
    if (swq_key_new(&g_ak) < 0)
        abort();
    qbuf allow;
    qbuf_init(&allow, 0);
    qpcrblob p;
    memset(&p, 0, sizeof p);
    p.bank = QHASH_SHA256;
    p.mask = (1u << 10) | (1u << 16);
    qpcr r;
    qpcr_init(&r, QHASH_SHA256);
    for (size_t i = 0; i < 3; i++) {
        uint8_t d[32];
        char line[512], hex[65];
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx || qhash_digest(ctx, QHASH_SHA256, paths[i], strlen(paths[i]), d) < 0)
            abort();
        EVP_MD_CTX_free(ctx);
        if (swq_ima_line(line, sizeof line, paths[i], d) < 0 || swq_replay(&r, line, strlen(line), 1, NULL, NULL) < 0)
            abort();
        qbuf_printf(&allow, "%s  %s\n", qhex_encode(d, 32, hex), paths[i]);
    }
    memcpy(p.value[10], r.value, 32);
    /* PCR 16 bound to a payload key (any public key will do: the AK's) */
    char *pem = qpkey_pem(g_ak.pkey, NULL);
    if (!pem || swq_pcr16(QHASH_SHA256, pem, p.value[16]) < 0)
        abort();
    g_pem_json = malloc(2 * strlen(pem) + 1);
    if (!g_pem_json)
        abort();
    size_t o = 0;
    for (const char *c = pem; *c; c++) {
        if (*c == '\n') {
            g_pem_json[o++] = '\\';
            g_pem_json[o++] = 'n';
        } else {
            g_pem_json[o++] = *c;
        }
    }
    g_pem_json[o] = '\0';
    free(pem);
    swq_spec s = { .key = &g_ak, .nonce = NONCE, .bank = QHASH_SHA256, .pcrs = &p,
                   .clock = { .clock = 5000, .reset_count = 1, .restart_count = 0, .safe = 1 } };
    g_quote = swq_quote(&s);
    qerr err;
    qpolicy *pol = qpolicy_from_allowlist((const char *)allow.data, allow.len, "fuzz", &err);
    qbuf_free(&allow);
    vattest_opts vo = { .violations_fail = false, .log = false };
    g_pol = pol ? vpolicy_ref_wrap(pol, &err) : NULL;
    g_ctx = vattest_ctx_new(&vo, &err);
    if (!g_quote || !g_pol || !g_ctx || qak_load_b64(&g_akl, g_ak.pub_b64, strlen(g_ak.pub_b64), &err) < 0)
        abort();
}

/* The input with "@Q" replaced by the quote and "@P" by the payload key; NULL when too large. */
static char *expand(const uint8_t *data, size_t size, size_t *len)
{
    size_t ql = strlen(g_quote), pl = strlen(g_pem_json), n = 0;
    for (size_t i = 0; i + 1 < size; i++)
        if (data[i] == '@' && (data[i + 1] == 'Q' || data[i + 1] == 'P'))
            n++;
    if (n > 4)
        return NULL;
    char *out = malloc(size + n * (ql > pl ? ql : pl) + 1);
    if (!out)
        abort();
    size_t o = 0;
    for (size_t i = 0; i < size; i++) {
        if (i + 1 < size && data[i] == '@' && (data[i + 1] == 'Q' || data[i + 1] == 'P')) {
            const char *w = data[i + 1] == 'Q' ? g_quote : g_pem_json;
            size_t wl = data[i + 1] == 'Q' ? ql : pl;
            memcpy(out + o, w, wl);
            o += wl;
            i++;
        } else {
            out[o++] = (char)data[i];
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        init();
        inited = 1;
    }
    if (size > MAX_IN)
        return 0;
    size_t len;
    char *text = expand(data, size, &len);
    if (!text)
        return 0;
    cJSON *results = cJSON_ParseWithLength(text, len);
    free(text);
    vagent ag;
    memset(&ag, 0, sizeof ag);
    snprintf(ag.agent_id, sizeof ag.agent_id, "%s", AGENT_ID);
    snprintf(ag.st.agent_id, sizeof ag.st.agent_id, "%s", AGENT_ID);
    ag.ak_tpm = g_ak.pub_b64;
    ag.tpm_policy = (char *)"{\"mask\": \"0x10400\"}";
    ag.policy_id = 1;
    ag.st.pcr10_alg = QHASH_NONE;
    ag.st.severity_level = -1;
    vattest_mem mem;
    memset(&mem, 0, sizeof mem);
    mem.ak = g_akl;          /* borrowed for the round, taken back before vattest_mem_clear */
    mem.ak_loaded = true;
    vattest_out out;
    memset(&out, 0, sizeof out);
    vattest_in in = { .agent = &ag, .nonce = NONCE, .requested_entry = 0, .results = results,
                      .policy = g_pol, .now = 1700000000 };
    vattest_outcome oc = vattest_round(g_ctx, &in, &mem, &out);
    if (oc != out.outcome || out.nfailures > VATTEST_MAX_FAILURES || out.nfailures > out.total_failures)
        abort();
    if (oc == VATTEST_PASS && !out.st.clock_set)
        abort();
    if (getenv("FUZZ_ANSWER_DEBUG"))     /* to see where a seed gets: FUZZ_ANSWER_DEBUG=1 ./fuzz_agent_answer FILE */
        fprintf(stderr, "outcome %d, %zu failures, first: %s %s\n", (int)oc, out.nfailures,
                out.nfailures ? out.failures[0].event_id : "-", out.nfailures ? out.failures[0].reason : "-");
    vattest_out_free(&out);
    memset(&mem.ak, 0, sizeof mem.ak);
    mem.ak_loaded = false;
    vattest_mem_clear(&mem);
    cJSON_Delete(results);
    return 0;
}
