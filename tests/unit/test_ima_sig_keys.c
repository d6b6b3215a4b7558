/* IMA signature keys from the tenant (--signature-verification-key → ima_sign_verification_keys)
 * enforced by the engine, on a list of ima-sig entries signed by evmctl (tests/data/imasig, see
 * gen.sh there): a good signature, a signature over other content, and an unknown key. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ima_entry.h"
#include "ima_sig.h"
#include "ima_verify.h"
#include "policy.h"
#include "../../tenant/cli.h"

static const char *data(const char *name)
{
    static char p[8][4096];
    static int i;
    const char *root = getenv("QUINCE_ROOT");
    i = (i + 1) % 8;
    snprintf(p[i], sizeof p[i], "%s/tests/data/imasig/%s", root ? root : ".", name);
    return p[i];
}

/* The keyring the tenant sends for these key files. */
static qkeyring *tenant_ring(const char *k1, const char *k2)
{
    tcli_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = TCMD_ADD;
    if (k1)
        o.sig_keys[o.nsig_keys++] = data(k1);
    if (k2)
        o.sig_keys[o.nsig_keys++] = data(k2);
    char *json = NULL;
    qerr e = {0};
    assert_int_equal(tcli_ima_keys_load(&o, &json, &e), 0);
    if (!k1 && !k2) {
        assert_null(json);
        return NULL;
    }
    assert_non_null(json);
    qkeyring *k = qkeyring_from_json(json, strlen(json), &e);
    free(json);
    assert_non_null(k);
    return k;
}

typedef struct seen {
    uint64_t failed_mask;   /* bit i: entry i failed */
} seen;

static void on_fail(void *ctx, const qima_failure *f)
{
    seen *s = ctx;
    if (f->entry < 64)
        s->failed_mask |= 1ull << f->entry;
}

/* Runs list.txt through the engine with an allowlist holding only boot_aggregate. */
static uint64_t judge(const qkeyring *ring)
{
    static const char allow[] =
        "0000000000000000000000000000000000000000000000000000000000000000  boot_aggregate\n";
    qerr e = {0};
    qpolicy *p = qpolicy_from_allowlist(allow, strlen(allow), "allow", &e);
    assert_non_null(p);
    qbuf b;
    qbuf_init(&b, 0);
    assert_int_equal(qbuf_read_file(&b, data("list.txt"), 1 << 20), 0);
    seen s = {0};
    qima_opts o = { .policy = p, .bank = QHASH_SHA1, .agent_keyring = ring, .on_failure = on_fail, .cb_ctx = &s };
    qima_verifier *v = qima_verifier_new(&o, &e);
    assert_non_null(v);
    assert_int_equal(qima_verifier_begin(v, NULL, NULL, 0, &e), 0);
    assert_int_equal(qima_verifier_feed(v, (const char *)b.data, b.len), (long)b.len);
    qima_result r;
    assert_int_equal(qima_verifier_finish(v, &r), 0);
    assert_int_equal(r.counts.template_hash, 0);   /* the generator's template hashes replay */
    qima_verifier_free(v);
    qpolicy_free(p);
    qbuf_free(&b);
    return s.failed_mask;
}

static void test_engine_enforces_tenant_keys(void **state)
{
    (void)state;
    /* no keys: every signed entry is judged by the (empty) allowlist and fails */
    assert_int_equal(judge(NULL), 0xeu);
    /* the signer's public key (PEM): only the good entry passes */
    qkeyring *k = tenant_ring("signer.pub", NULL);
    assert_int_equal(judge(k), 0xcu);
    qkeyring_free(k);
    /* its certificate in DER gives the same verdicts */
    k = tenant_ring("signer.der", NULL);
    assert_int_equal(judge(k), 0xcu);
    qkeyring_free(k);
    /* both keys: the stranger's entry passes too; the tampered one never does */
    k = tenant_ring("signer.pub", "stranger.pub");
    assert_int_equal(judge(k), 0x4u);
    qkeyring_free(k);
}

/* Each signed entry classified as expect.txt says: good, bad (known key, wrong content) or
 * unknown (keyid not in the keyring). */
static void test_classification(void **state)
{
    (void)state;
    qkeyring *k = tenant_ring("signer.pub", NULL);
    uint32_t signer_id = 0;
    qbuf kb, list, exp;
    qbuf_init(&kb, 0);
    qbuf_init(&list, 0);
    qbuf_init(&exp, 0);
    assert_int_equal(qbuf_read_file(&kb, data("signer.pub"), 65536), 0);
    qerr e = {0};
    assert_int_equal(qkeyring_keyid(kb.data, kb.len, &signer_id, &e), 0);
    assert_int_equal(qbuf_read_file(&list, data("list.txt"), 1 << 20), 0);
    assert_int_equal(qbuf_read_file(&exp, data("expect.txt"), 65536), 0);
    assert_non_null(qbuf_cstr(&list));
    assert_non_null(qbuf_cstr(&exp));
    uint8_t *scratch = malloc(QIMA_SCRATCH_SIZE);
    assert_non_null(scratch);
    const char *lines[8];
    size_t nl = 0;
    for (char *s = (char *)list.data, *nx; s && *s && nl < 8; s = nx) {
        nx = strchr(s, '\n');
        if (nx)
            *nx++ = '\0';
        lines[nl++] = s;
    }
    int checked = 0;
    char *save = NULL;
    for (char *row = strtok_r((char *)exp.data, "\n", &save); row; row = strtok_r(NULL, "\n", &save)) {
        unsigned idx;
        char path[256], verdict[16];
        assert_int_equal(sscanf(row, "%u %255s %15s", &idx, path, verdict), 3);
        assert_true(idx < nl);
        qima_entry en;
        assert_int_equal(qima_parse_line(lines[idx], strlen(lines[idx]), &en, scratch, &e), 0);
        assert_true(en.sig_len > 9);
        uint32_t kid = (uint32_t)en.sig[3] << 24 | (uint32_t)en.sig[4] << 16 | (uint32_t)en.sig[5] << 8 | en.sig[6];
        const qkeyring *rings[1] = { k };
        bool ok = qkeyring_verify(rings, 1, en.sig, en.sig_len, en.digest_alg, en.digest, en.digest_len);
        const char *got = ok ? "good" : kid == signer_id ? "bad" : "unknown";
        if (strcmp(got, verdict) != 0)
            fail_msg("entry %u %s: judged %s, expected %s", idx, path, got, verdict);
        checked++;
    }
    assert_int_equal(checked, 3);
    free(scratch);
    qkeyring_free(k);
    qbuf_free(&kb);
    qbuf_free(&list);
    qbuf_free(&exp);
}

static void test_bad_key_files(void **state)
{
    (void)state;
    tcli_opts o;
    memset(&o, 0, sizeof o);
    o.sig_keys[o.nsig_keys++] = data("list.txt");
    char *json = NULL;
    qerr e = {0};
    assert_int_equal(tcli_ima_keys_load(&o, &json, &e), -1);
    assert_non_null(strstr(e.msg, "list.txt"));
    o.sig_keys[0] = data("no-such-key.pem");
    assert_int_equal(tcli_ima_keys_load(&o, &json, &e), -1);
    assert_non_null(strstr(e.msg, "cannot read"));
    assert_null(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_enforces_tenant_keys),
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_bad_key_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
