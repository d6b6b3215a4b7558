/* Unit tests of agent/tpm*.c against a private swtpm (unix socket in a temp dir, killed by PID).
 * Skipped when the swtpm binary is absent; the tpm2-tools cross-checks are skipped without the
 * tools, the EK certificate check without swtpm_setup. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "swtpm_fixture.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "../../agent/ima_emulator.h"
#include "../../agent/tpm.h"
#include "hex.h"
#include "quote.h"

static char g_dir[64];
static char g_tcti[128];
static pid_t g_swtpm = -1;
static bool g_have_cert;      /* swtpm_setup made an EK certificate and persistent EK */

/* ---- helpers --------------------------------------------------------------------------------- */

/* Run argv quietly (output to dir/cmd.log); returns the exit status or -1. */
static int run(char *const argv[])
{
    char log[128];
    snprintf(log, sizeof(log), "%s/cmd.log", g_dir);
    return swf_run(argv, log);
}

static void path_in_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g_dir, name);
}

static void write_bytes(const char *name, const void *p, size_t n)
{
    char path[128];
    path_in_dir(path, sizeof(path), name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static size_t read_bytes(const char *name, uint8_t *out, size_t cap)
{
    char path[128];
    path_in_dir(path, sizeof(path), name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(out, 1, cap, f);
    fclose(f);
    return n;
}

static void start_swtpm(void)
{
    g_swtpm = swf_start(g_dir, g_tcti, sizeof(g_tcti));
}

static void stop_swtpm(void)
{
    swf_stop(&g_swtpm);
}

static int group_setup(void **state)
{
    (void)state;
    if (!swf_in_path("swtpm"))
        return 0;
    strcpy(g_dir, "/tmp/quince-tpm-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    char log[128];
    path_in_dir(log, sizeof(log), "cmd.log");
    g_have_cert = swf_setup_ek_cert(g_dir, "sha1,sha256", log);
    start_swtpm();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    stop_swtpm();
    swf_rmdir(g_dir);
    return 0;
}

#define NEED_SWTPM() do { if (g_swtpm <= 0) skip(); } while (0)

static qtpm *open_tpm(unsigned timeout_ms)
{
    qtpm_opts o = { .tcti = g_tcti, .timeout_ms = timeout_ms };
    qerr e = { 0 };
    qtpm *t = qtpm_new(&o, &e);
    assert_non_null(t);
    return t;
}

/* Transient objects + loaded sessions now in the TPM (own ESYS context). */
static unsigned count_handles(void)
{
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *esys = NULL;
    assert_int_equal(Tss2_TctiLdr_Initialize(g_tcti, &tcti), 0);
    assert_int_equal(Esys_Initialize(&esys, tcti, NULL), 0);
    unsigned n = 0;
    TPM2_HANDLE firsts[2] = { 0x80000000u, 0x02000000u };   /* transient, loaded session */
    for (int i = 0; i < 2; i++) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        assert_int_equal(Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                            firsts[i], 64, &more, &cap), 0);
        for (UINT32 k = 0; k < cap->data.handles.count; k++)
            if ((cap->data.handles.handle[k] >> 24) == (firsts[i] >> 24))
                n++;
        Esys_Free(cap);
    }
    Esys_Finalize(&esys);
    Tss2_TctiLdr_Finalize(&tcti);
    return n;
}

static void sha(const char *md, const void *p, size_t n, uint8_t *out)
{
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(p, n, out, &len, EVP_get_digestbyname(md), NULL), 1);
}

static void ak_path(char *out, size_t cap, const char *name)
{
    path_in_dir(out, cap, name);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_vendor_check(void **state)
{
    (void)state;
    qtpm_info sw = { .manufacturer = 0x49424d00, .manufacturer_str = "IBM", .vendor = "SW   TPM" };
    assert_true(qtpm_is_software(&sw));
    qtpm_info sw2 = { .manufacturer_str = "XYZ", .vendor = "SW" };
    assert_true(qtpm_is_software(&sw2));
    qtpm_info ifx = { .manufacturer = 0x49465800, .manufacturer_str = "IFX", .vendor = "SLB9670" };
    assert_false(qtpm_is_software(&ifx));
    qtpm_info ntc = { .manufacturer_str = "NTC", .vendor = "rls NPCT 75x" };
    assert_false(qtpm_is_software(&ntc));
    qtpm_info empty = { 0 };
    assert_false(qtpm_is_software(&empty));
}

static void test_info(void **state)
{
    (void)state;
    NEED_SWTPM();
    qtpm *t = open_tpm(0);
    qerr e = { 0 };
    assert_int_equal(qtpm_open(t, &e), 0);
    qtpm_info in;
    assert_int_equal(qtpm_get_info(t, &in, &e), 0);
    assert_string_equal(in.manufacturer_str, "IBM");
    assert_non_null(strstr(in.vendor, "SW"));
    assert_true(qtpm_is_software(&in));
    assert_true(in.pcr10_banks & (1u << QHASH_SHA256));
    qtpm_close(t);
    qtpm_free(t);
}

static void test_flush_leftovers(void **state)
{
    (void)state;
    NEED_SWTPM();
    /* Leave two primaries and a session behind, as a crashed process would. */
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *esys = NULL;
    assert_int_equal(Tss2_TctiLdr_Initialize(g_tcti, &tcti), 0);
    assert_int_equal(Esys_Initialize(&esys, tcti, NULL), 0);
    TPM2B_PUBLIC in = { .publicArea = {
        .type = TPM2_ALG_ECC, .nameAlg = TPM2_ALG_SHA256,
        .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                            TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT,
        .parameters.eccDetail = { .symmetric.algorithm = TPM2_ALG_NULL, .scheme.scheme = TPM2_ALG_NULL,
                                  .curveID = TPM2_ECC_NIST_P256, .kdf.scheme = TPM2_ALG_NULL } } };
    TPM2B_SENSITIVE_CREATE sens = { 0 };
    TPM2B_DATA outside = { 0 };
    TPML_PCR_SELECTION pcrs = { 0 };
    for (int i = 0; i < 2; i++) {
        ESYS_TR h;
        outside.size = 1;
        outside.buffer[0] = (BYTE)i;
        assert_int_equal(Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                            &sens, &in, &outside, &pcrs, &h, NULL, NULL, NULL, NULL), 0);
    }
    TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
    ESYS_TR s;
    assert_int_equal(Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                           ESYS_TR_NONE, NULL, TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &s), 0);
    Esys_Finalize(&esys);
    Tss2_TctiLdr_Finalize(&tcti);
    assert_true(count_handles() >= 3);

    qtpm *t = open_tpm(0);
    qerr e = { 0 };
    unsigned n = 0;
    assert_int_equal(qtpm_flush_leftovers(t, &n, &e), 0);
    assert_true(n >= 3);
    assert_int_equal(count_handles(), 0);
    qtpm_free(t);
}

static void test_ek(void **state)
{
    (void)state;
    NEED_SWTPM();
    qtpm *t = open_tpm(0);
    qerr e = { 0 };
    TPM2B_PUBLIC ek;
    assert_int_equal(qtpm_ek_public(t, &ek, &e), 0);
    assert_int_equal(ek.publicArea.type, TPM2_ALG_RSA);
    assert_int_equal(ek.publicArea.objectAttributes, 0x000300B2);
    assert_int_equal(ek.publicArea.unique.rsa.size, 256);
    assert_int_equal(count_handles(), 0);

    uint8_t cert[QTPM_EK_CERT_MAX];
    size_t len = 0;
    int rc = qtpm_ek_cert(t, 0, cert, sizeof(cert), &len, &e);
    if (!g_have_cert) {
        print_message("no EK certificate (swtpm_setup unavailable or failed): checking absence only\n");
        assert_int_equal(rc, 1);
    } else {
        assert_int_equal(rc, 0);
        const unsigned char *p = cert;
        X509 *x = d2i_X509(NULL, &p, (long)len);
        assert_non_null(x);
        assert_ptr_equal(p, cert + len);           /* padding stripped */
        EVP_PKEY *ck = X509_get0_pubkey(x), *tk = qtpmpub_pkey(&ek, &e);
        assert_non_null(tk);
        assert_int_equal(EVP_PKEY_eq(ck, tk), 1);  /* the cert is for this EK */
        EVP_PKEY_free(tk);
        X509_free(x);

        /* The persistent EK that swtpm_setup made equals the template EK. */
        qtpm_opts o = { .tcti = g_tcti, .ek_handle = 0x81010001 };
        qtpm *p2 = qtpm_new(&o, &e);
        assert_non_null(p2);
        TPM2B_PUBLIC pek;
        assert_int_equal(qtpm_ek_public(p2, &pek, &e), 0);
        assert_int_equal(pek.publicArea.unique.rsa.size, 256);
        assert_memory_equal(pek.publicArea.unique.rsa.buffer, ek.publicArea.unique.rsa.buffer, 256);
        qtpm_free(p2);
    }
    /* A missing index is "absent", not an error. */
    assert_int_equal(qtpm_ek_cert(t, 0x01c0ff00, cert, sizeof(cert), &len, &e), 1);
    assert_int_equal(count_handles(), 0);
    qtpm_free(t);
}

static void ak_roundtrip(qtpm_key_type type, const char *file)
{
    char path[128];
    ak_path(path, sizeof(path), file);
    unlink(path);
    qtpm_ak_params p = { .type = type, .hash = QHASH_SHA256 };
    qerr e = { 0 };
    bool created = false;
    uint8_t n1[QTPM_NAME_MAX], n2[QTPM_NAME_MAX], n3[QTPM_NAME_MAX];
    size_t l1, l2, l3;

    qtpm *t = open_tpm(0);
    assert_int_equal(qtpm_ak_ensure(t, path, &p, &created, &e), 0);
    assert_true(created);
    assert_int_equal(qtpm_ak_name(t, n1, sizeof(n1), &l1, &e), 0);
    TPM2B_PUBLIC pub;
    assert_int_equal(qtpm_ak_public(t, &pub, &e), 0);
    assert_int_equal(pub.publicArea.objectAttributes, 0x00050072);
    assert_int_equal(pub.publicArea.type, type == QTPM_KEY_RSA2048 ? TPM2_ALG_RSA : TPM2_ALG_ECC);
    assert_int_equal(qtpmpub_check_ak(&pub, &e), 0);
    assert_int_equal(qtpmpub_name(&pub, n3, sizeof(n3), &l3, &e), 0);
    assert_int_equal(l1, l3);
    assert_memory_equal(n1, n3, l1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    qtpm_free(t);
    assert_int_equal(count_handles(), 0);

    /* "Restart": a new qtpm reloads the same AK. */
    t = open_tpm(0);
    created = true;
    assert_int_equal(qtpm_ak_ensure(t, path, &p, &created, &e), 0);
    assert_false(created);
    assert_int_equal(qtpm_ak_name(t, n2, sizeof(n2), &l2, &e), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(n1, n2, l1);
    qtpm_free(t);
    assert_int_equal(count_handles(), 0);
}

static void test_ak_rsa(void **state)
{
    (void)state;
    NEED_SWTPM();
    ak_roundtrip(QTPM_KEY_RSA2048, "ak-rsa.tpm");
}

static void test_ak_ecc(void **state)
{
    (void)state;
    NEED_SWTPM();
    ak_roundtrip(QTPM_KEY_ECC_P256, "ak-ecc.tpm");
}

static void test_ak_bad_file(void **state)
{
    (void)state;
    NEED_SWTPM();
    char path[128];
    ak_path(path, sizeof(path), "ak-bad.tpm");
    write_bytes("ak-bad.tpm", "QAK1 garbage", 12);
    qtpm *t = open_tpm(0);
    qtpm_ak_params p = { .type = QTPM_KEY_ECC_P256, .hash = QHASH_SHA256 };
    qerr e = { 0 };
    bool created = false;
    assert_int_equal(qtpm_ak_ensure(t, path, &p, &created, &e), 0);
    assert_true(created);                 /* an unusable file is replaced */
    /* Asking for other parameters than stored makes a new AK too. */
    p.type = QTPM_KEY_RSA2048;
    assert_int_equal(qtpm_ak_ensure(t, path, &p, &created, &e), 0);
    assert_true(created);
    qtpm_free(t);
    assert_int_equal(count_handles(), 0);
}

static void test_pcr16(void **state)
{
    (void)state;
    NEED_SWTPM();
    qtpm *t = open_tpm(0);
    qerr e = { 0 };
    const char *pem = "-----BEGIN PUBLIC KEY-----\nABCD\n-----END PUBLIC KEY-----\n";
    for (int round = 0; round < 2; round++) {     /* reset makes it repeatable */
        assert_int_equal(qtpm_pcr16_bind(t, QHASH_SHA256, pem, strlen(pem), &e), 0);
        qpcrblob v;
        assert_int_equal(qtpm_pcr_read(t, QHASH_SHA256, 1u << 16, &v, &e), 0);
        uint8_t want[64] = { 0 };
        sha("sha256", pem, strlen(pem), want + 32);
        sha("sha256", want, 64, want);
        assert_memory_equal(v.value[16], want, 32);
        uint8_t exp[QHASH_MAX_SIZE];
        assert_int_equal(qquote_pcr16_expected(QHASH_SHA256, pem, strlen(pem), exp, &e), 0);
        assert_memory_equal(v.value[16], exp, 32);
    }
    qtpm_free(t);
}

static void test_extend_banks(void **state)
{
    (void)state;
    NEED_SWTPM();
    qtpm *t = open_tpm(0);
    qerr e = { 0 };
    assert_int_equal(qtpm_pcr_reset(t, 23, &e), 0);
    qtpm_digests d[3];
    uint8_t w1[20] = { 0 }, w256[32] = { 0 }, buf[64];
    for (int i = 0; i < 3; i++) {
        d[i].count = 2;
        d[i].alg[0] = QHASH_SHA1;
        d[i].alg[1] = QHASH_SHA256;
        memset(d[i].value[0], 'a' + i, 20);
        memset(d[i].value[1], 'A' + i, 32);
        memcpy(buf, w1, 20);
        memcpy(buf + 20, d[i].value[0], 20);
        sha("sha1", buf, 40, w1);
        memcpy(buf, w256, 32);
        memcpy(buf + 32, d[i].value[1], 32);
        sha("sha256", buf, 64, w256);
    }
    size_t done = 0;
    assert_int_equal(qtpm_pcr_extend(t, 23, d, 3, &done, &e), 0);
    assert_int_equal(done, 3);
    qpcrblob v;
    assert_int_equal(qtpm_pcr_read(t, QHASH_SHA1, 1u << 23, &v, &e), 0);
    assert_memory_equal(v.value[23], w1, 20);
    assert_int_equal(qtpm_pcr_read(t, QHASH_SHA256, 1u << 23, &v, &e), 0);
    assert_memory_equal(v.value[23], w256, 32);
    /* Argument checks. */
    assert_int_equal(qtpm_pcr_extend(t, 24, d, 1, &done, &e), -1);
    assert_int_equal(qtpm_pcr_read(t, QHASH_SHA256, 0, &v, &e), -1);
    /* A PCR that cannot be reset at locality 0 gives a decoded TPM error. */
    assert_int_equal(qtpm_pcr_reset(t, 0, &e), -1);
    assert_non_null(strstr(e.msg, "TPM2_PCR_Reset(0)"));
    qtpm_free(t);
}

static void check_quote(qtpm_key_type type, const char *file)
{
    char path[128];
    ak_path(path, sizeof(path), file);
    qtpm *t = open_tpm(0);
    qtpm_ak_params p = { .type = type, .hash = QHASH_SHA256 };
    qerr e = { 0 };
    assert_int_equal(qtpm_ak_ensure(t, path, &p, NULL, &e), 0);
    const char *nonce = "abcdef0123";
    uint32_t mask = 0x1ffff;                  /* PCRs 0-16: more than 8, several PCR_Read calls */
    static qtpm_quote_out q;
    assert_int_equal(qtpm_quote(t, QHASH_SHA256, mask, (const uint8_t *)nonce, strlen(nonce), &q, &e), 0);
    assert_int_equal(q.pcrs.mask, mask);
    assert_int_equal(q.pcrs.bank, QHASH_SHA256);
    assert_int_equal(count_handles(), 0);

    /* Check with quote.c (the verifier's code). */
    TPM2B_PUBLIC pub;
    assert_int_equal(qtpm_ak_public(t, &pub, &e), 0);
    uint8_t pubm[sizeof(TPM2B_PUBLIC)];
    size_t publen = 0;
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, pubm, sizeof(pubm), &publen), 0);
    qak ak = { 0 };
    assert_int_equal(qak_load(&ak, pubm, publen, &e), 0);
    assert_int_equal(qquote_verify_sig(&ak, q.attest, q.attest_len, q.sig, q.sig_len, QHASH_SHA256, &e), 0);
    static uint8_t blob[QPCRBLOB_MAX];
    size_t bloblen = 0;
    assert_int_equal(qpcrblob_build(&q.pcrs, blob, sizeof(blob), &bloblen, &e), 0);
    char *qs = qquote_build(q.attest, q.attest_len, q.sig, q.sig_len, blob, bloblen, &e);
    assert_non_null(qs);
    static qquote_result res;
    int rc = qquote_check(&ak, qs, strlen(qs), (const uint8_t *)nonce, strlen(nonce), QHASH_SHA256, &res, &e);
    if (rc != 0)
        fail_msg("qquote_check: %s", e.msg);
    free(qs);
    /* A flipped bit in the attestation fails the signature. */
    q.attest[q.attest_len - 1] ^= 1;
    assert_int_equal(qquote_verify_sig(&ak, q.attest, q.attest_len, q.sig, q.sig_len, QHASH_SHA256, &e), -1);
    q.attest[q.attest_len - 1] ^= 1;
    qak_free(&ak);

    /* And with tpm2_checkquote when the tools are there. */
    if (swf_in_path("tpm2_checkquote")) {
        write_bytes("q.pub", pubm, publen);
        write_bytes("q.msg", q.attest, q.attest_len);
        write_bytes("q.sig", q.sig, q.sig_len);
        write_bytes("q.pcrs", blob, bloblen);
        char a1[128], a2[128], a3[128], a4[128];
        path_in_dir(a1, sizeof(a1), "q.pub");
        path_in_dir(a2, sizeof(a2), "q.msg");
        path_in_dir(a3, sizeof(a3), "q.sig");
        path_in_dir(a4, sizeof(a4), "q.pcrs");
        char hexn[32];
        qhex_encode((const uint8_t *)nonce, strlen(nonce), hexn);
        char *argv[] = { "tpm2_checkquote", "-u", a1, "-m", a2, "-s", a3, "-f", a4, "-g", "sha256",
                         "-q", hexn, NULL };
        assert_int_equal(run(argv), 0);
    }
    qtpm_free(t);
}

static void test_quote_rsa(void **state)
{
    (void)state;
    NEED_SWTPM();
    check_quote(QTPM_KEY_RSA2048, "ak-rsa.tpm");
}

static void test_quote_ecc(void **state)
{
    (void)state;
    NEED_SWTPM();
    check_quote(QTPM_KEY_ECC_P256, "ak-ecc.tpm");
}

static void activate(qtpm_key_type ek_type, const char *ak_file, qtpm_key_type ak_type)
{
    if (!swf_in_path("tpm2_makecredential"))
        skip();
    char path[128];
    ak_path(path, sizeof(path), ak_file);
    qtpm_opts o = { .tcti = g_tcti, .ek_type = ek_type };
    qerr e = { 0 };
    qtpm *t = qtpm_new(&o, &e);
    assert_non_null(t);
    qtpm_ak_params p = { .type = ak_type, .hash = QHASH_SHA256 };
    assert_int_equal(qtpm_ak_ensure(t, path, &p, NULL, &e), 0);
    TPM2B_PUBLIC ek;
    assert_int_equal(qtpm_ek_public(t, &ek, &e), 0);
    uint8_t m[sizeof(TPM2B_PUBLIC)];
    size_t ml = 0;
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&ek, m, sizeof(m), &ml), 0);
    write_bytes("ek.pub", m, ml);
    const char *secret = "0123456789abcdefABCDEFghijklmnop";
    write_bytes("secret", secret, strlen(secret));
    uint8_t name[QTPM_NAME_MAX];
    size_t nl;
    assert_int_equal(qtpm_ak_name(t, name, sizeof(name), &nl, &e), 0);
    char hexname[2 * QTPM_NAME_MAX + 1];
    qhex_encode(name, nl, hexname);
    char a1[128], a2[128], a3[128];
    path_in_dir(a1, sizeof(a1), "ek.pub");
    path_in_dir(a2, sizeof(a2), "secret");
    path_in_dir(a3, sizeof(a3), "cred.blob");
    char *argv[] = { "tpm2_makecredential", "-T", "none", "-u", a1, "-s", a2, "-n", hexname, "-o", a3, NULL };
    assert_int_equal(run(argv), 0);
    uint8_t blob[QTPM_CREDBLOB_MAX];
    size_t bl = read_bytes("cred.blob", blob, sizeof(blob));
    assert_true(bl > 12);

    uint8_t out[QTPM_SECRET_MAX];
    size_t ol = 0;
    int rc = qtpm_activate_credential(t, blob, bl, out, sizeof(out), &ol, &e);
    if (rc != 0)
        fail_msg("activate: %s", e.msg);
    assert_int_equal(ol, strlen(secret));
    assert_memory_equal(out, secret, ol);
    assert_int_equal(count_handles(), 0);

    /* Bad magic, truncated, and a tampered identity (the TPM refuses it). */
    blob[0] ^= 0xff;
    assert_int_equal(qtpm_activate_credential(t, blob, bl, out, sizeof(out), &ol, &e), -1);
    assert_non_null(strstr(e.msg, "magic"));
    blob[0] ^= 0xff;
    assert_int_equal(qtpm_activate_credential(t, blob, bl - 1, out, sizeof(out), &ol, &e), -1);
    blob[20] ^= 0x01;
    assert_int_equal(qtpm_activate_credential(t, blob, bl, out, sizeof(out), &ol, &e), -1);
    assert_non_null(strstr(e.msg, "TPM2_ActivateCredential"));
    assert_int_equal(count_handles(), 0);
    qtpm_free(t);
}

static void test_activate(void **state)
{
    (void)state;
    NEED_SWTPM();
    activate(QTPM_KEY_RSA2048, "ak-rsa.tpm", QTPM_KEY_RSA2048);
}

/* ECC P-256 EK (template L-2) with an ECC AK under it. */
static void test_activate_ecc_ek(void **state)
{
    (void)state;
    NEED_SWTPM();
    activate(QTPM_KEY_ECC_P256, "ak-ecc-under-ecc.tpm", QTPM_KEY_ECC_P256);
}

static void change_eh_auth(const char *from, const char *to)
{
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *esys = NULL;
    assert_int_equal(Tss2_TctiLdr_Initialize(g_tcti, &tcti), 0);
    assert_int_equal(Esys_Initialize(&esys, tcti, NULL), 0);
    TPM2B_AUTH a = { .size = (UINT16)strlen(from) }, b = { .size = (UINT16)strlen(to) };
    memcpy(a.buffer, from, a.size);
    memcpy(b.buffer, to, b.size);
    assert_int_equal(Esys_TR_SetAuth(esys, ESYS_TR_RH_ENDORSEMENT, &a), 0);
    assert_int_equal(Esys_HierarchyChangeAuth(esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                              ESYS_TR_NONE, &b), 0);
    Esys_Finalize(&esys);
    Tss2_TctiLdr_Finalize(&tcti);
}

/* An endorsement hierarchy with a password: CreatePrimary and PolicySecret need it. */
static void test_endorsement_auth(void **state)
{
    (void)state;
    NEED_SWTPM();
    change_eh_auth("", "eh-secret");
    qerr e = { 0 };
    qtpm *t = open_tpm(0);
    TPM2B_PUBLIC ek;
    int rc = qtpm_ek_public(t, &ek, &e);
    qtpm_free(t);
    qtpm_opts o = { .tcti = g_tcti, .eh_auth = (const uint8_t *)"eh-secret", .eh_auth_len = 9 };
    t = qtpm_new(&o, &e);
    assert_non_null(t);
    int rc2 = qtpm_ek_public(t, &ek, &e);
    char path[128];
    ak_path(path, sizeof(path), "ak-eh.tpm");
    qtpm_ak_params p = { .type = QTPM_KEY_ECC_P256, .hash = QHASH_SHA256 };
    int rc3 = qtpm_ak_ensure(t, path, &p, NULL, &e);
    qtpm_free(t);
    change_eh_auth("eh-secret", "");
    assert_int_equal(rc, -1);
    assert_int_equal(rc2, 0);
    if (rc3 != 0)
        fail_msg("AK with endorsement auth: %s", e.msg);
    assert_int_equal(count_handles(), 0);
}

static void test_timeout_recovery(void **state)
{
    (void)state;
    NEED_SWTPM();
    qtpm *t = open_tpm(500);
    qerr e = { 0 };
    qpcrblob v;
    assert_int_equal(qtpm_pcr_read(t, QHASH_SHA256, 1u << 10, &v, &e), 0);
    assert_int_equal(kill(g_swtpm, SIGSTOP), 0);
    int rc = qtpm_pcr_read(t, QHASH_SHA256, 1u << 10, &v, &e);
    assert_int_equal(kill(g_swtpm, SIGCONT), 0);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(e.msg, "did not answer within 500 ms"));
    /* Works again once the TPM answers, quotes included. */
    memset(&e, 0, sizeof(e));
    rc = qtpm_pcr_read(t, QHASH_SHA256, 1u << 10, &v, &e);
    if (rc != 0)
        fail_msg("after SIGCONT: %s", e.msg);
    char path[128];
    ak_path(path, sizeof(path), "ak-ecc.tpm");
    qtpm_ak_params p = { .type = QTPM_KEY_ECC_P256, .hash = QHASH_SHA256 };
    assert_int_equal(qtpm_ak_ensure(t, path, &p, NULL, &e), 0);
    static qtpm_quote_out q;
    assert_int_equal(qtpm_quote(t, QHASH_SHA256, 1u << 10, (const uint8_t *)"n", 1, &q, &e), 0);
    qtpm_free(t);
    assert_int_equal(count_handles(), 0);
}

static void test_bad_tcti(void **state)
{
    (void)state;
    qtpm_opts o = { .tcti = "swtpm:path=/nonexistent/quince.sock", .timeout_ms = 2000 };
    qerr e = { 0 };
    qtpm *t = qtpm_new(&o, &e);
    assert_non_null(t);
    qtpm_info in;
    assert_int_equal(qtpm_get_info(t, &in, &e), -1);
    assert_true(strlen(e.msg) > 0);
    qtpm_free(t);
}


/* ---- ima-emulator against the TPM ------------------------------------------------------------ */

static qpcr g_sw[2];           /* software PCR 10: sha1, sha256 */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* An ima-ng line for name (violation: zero template hash); extends g_sw as the kernel would. */
static void ima_line(char *out, size_t cap, const char *name, bool violation)
{
    uint8_t fd[32], td[512], th[32];
    sha("sha256", name, strlen(name), fd);
    size_t n = 0;
    put_le32(td, 8 + 32);
    memcpy(td + 4, "sha256:", 8);
    memcpy(td + 12, fd, 32);
    n = 44;
    put_le32(td + n, (uint32_t)strlen(name) + 1);
    memcpy(td + n + 4, name, strlen(name) + 1);
    n += 4 + strlen(name) + 1;
    char fdh[65], thh[41];
    qhex_encode(fd, 32, fdh);
    if (violation) {
        memset(th, 0, 20);
    } else {
        sha("sha1", td, n, th);
    }
    qhex_encode(th, 20, thh);
    snprintf(out, cap, "10 %s ima-ng sha256:%s %s\n", thh, fdh, name);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t d256[32], d1[20];
    sha("sha1", td, n, d1);
    sha("sha256", td, n, d256);
    if (violation) {
        assert_int_equal(qpcr_extend_ff(&g_sw[0], ctx), 0);
        assert_int_equal(qpcr_extend_ff(&g_sw[1], ctx), 0);
    } else {
        assert_int_equal(qpcr_extend(&g_sw[0], ctx, d1), 0);
        assert_int_equal(qpcr_extend(&g_sw[1], ctx, d256), 0);
    }
    EVP_MD_CTX_free(ctx);
}

static void append(const char *file, const char *text)
{
    char path[128];
    path_in_dir(path, sizeof(path), file);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int emulate_once(const char *file, qerr *e)
{
    char path[128];
    path_in_dir(path, sizeof(path), file);
    agent_imaemu_opts o = { .tcti = g_tcti, .ima_log = path, .log_alg = QHASH_SHA1, .once = true,
                            .banks = 1u << QHASH_SHA1 | 1u << QHASH_SHA256 };
    return agent_imaemu_run(&o, NULL, e);
}

static void assert_pcr10_is_sw(void)
{
    qtpm *t = open_tpm(0);
    qerr e = { 0 };
    qpcrblob v;
    assert_int_equal(qtpm_pcr_read(t, QHASH_SHA1, 1u << 10, &v, &e), 0);
    assert_memory_equal(v.value[10], g_sw[0].value, 20);
    assert_int_equal(qtpm_pcr_read(t, QHASH_SHA256, 1u << 10, &v, &e), 0);
    assert_memory_equal(v.value[10], g_sw[1].value, 32);
    qtpm_free(t);
}

static void test_emulator(void **state)
{
    (void)state;
    NEED_SWTPM();
    qerr e = { 0 };
    /* PCR 10 must be untouched so far in this TPM. */
    qpcr_init(&g_sw[0], QHASH_SHA1);
    qpcr_init(&g_sw[1], QHASH_SHA256);
    assert_pcr10_is_sw();
    char line[600];
    for (int i = 0; i < 70; i++) {               /* more than one extend batch */
        char name[64];
        snprintf(name, sizeof(name), "/usr/bin/prog%d", i);
        ima_line(line, sizeof(line), name, i == 5);
        append("ima.log", line);
    }
    append("ima.log", "\n");                     /* empty line: skipped */
    append("ima.log", "10 garbage\n");           /* parse error: skipped */
    if (emulate_once("ima.log", &e) != 0)
        fail_msg("emulator: %s", e.msg);
    assert_pcr10_is_sw();

    /* A restart (new run) with an appended list neither skips nor repeats; a partial last line waits. */
    qpcr saved[2] = { g_sw[0], g_sw[1] };
    ima_line(line, sizeof(line), "/usr/lib/libx.so", false);
    append("ima.log", line);
    ima_line(line, sizeof(line), "/usr/lib/liby.so", false);
    size_t half = strlen(line) / 2;
    char part[600];
    memcpy(part, line, half);
    part[half] = '\0';
    append("ima.log", part);
    qpcr full[2] = { g_sw[0], g_sw[1] };
    g_sw[0] = saved[0];
    g_sw[1] = saved[1];
    ima_line(part, sizeof(part), "/usr/lib/libx.so", false);   /* expected: only libx */
    assert_int_equal(emulate_once("ima.log", &e), 0);
    assert_pcr10_is_sw();
    append("ima.log", line + half);
    g_sw[0] = full[0];
    g_sw[1] = full[1];
    assert_int_equal(emulate_once("ima.log", &e), 0);
    assert_pcr10_is_sw();
    assert_int_equal(emulate_once("ima.log", &e), 0);          /* nothing new: unchanged */
    assert_pcr10_is_sw();
    assert_int_equal(count_handles(), 0);

    /* A list PCR 10 has never seen. */
    append("other.log", "10 0000000000000000000000000000000000000000 ima-ng sha1:00 /x\n");
    assert_int_equal(emulate_once("other.log", &e), -1);
    assert_non_null(strstr(e.msg, "does not match any prefix of"));
    assert_non_null(strstr(e.msg, "reset the software TPM"));
    /* A missing list. */
    assert_int_equal(emulate_once("missing.log", &e), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vendor_check),
        cmocka_unit_test(test_bad_tcti),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_flush_leftovers),
        cmocka_unit_test(test_ek),
        cmocka_unit_test(test_ak_rsa),
        cmocka_unit_test(test_ak_ecc),
        cmocka_unit_test(test_ak_bad_file),
        cmocka_unit_test(test_pcr16),
        cmocka_unit_test(test_extend_banks),
        cmocka_unit_test(test_quote_rsa),
        cmocka_unit_test(test_quote_ecc),
        cmocka_unit_test(test_activate),
        cmocka_unit_test(test_activate_ecc_ek),
        cmocka_unit_test(test_endorsement_auth),
        cmocka_unit_test(test_timeout_recovery),
        cmocka_unit_test(test_emulator),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
