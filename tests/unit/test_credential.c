/* Unit tests of common/credential.c: challenge alphabet, KDFa and auth_tag vectors (computed
 * independently with Python's hmac module), the blob layout and a software inverse of the
 * credential (OpenSSL private-key decryption), and the real check: blobs made here are
 * activated by a private swtpm (RSA and ECC EKs; unix socket in a temp dir, killed by PID;
 * skipped when swtpm is absent), and a blob made for another name is refused by the TPM. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "swtpm_fixture.h"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../agent/tpm.h"
#include "b64.h"
#include "credential.h"
#include "hex.h"
#include "quote.h"

static char g_dir[64];
static char g_tcti[160];
static pid_t g_swtpm = -1;

/* ---- swtpm ------------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    setenv("TSS2_LOG", "all+none", 0);   /* the refused activation is expected */
    if (!swf_in_path("swtpm"))
        return 0;
    strcpy(g_dir, "/tmp/quince-cred-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    g_swtpm = swf_start(g_dir, g_tcti, sizeof g_tcti);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    swf_stop(&g_swtpm);
    swf_rmdir(g_dir);
    return 0;
}

/* ---- software keys ---------------------------------------------------------------------------- */

/* An RSA-2048 EK public area (TCG template L-1 attributes) around an OpenSSL key. */
static void rsa_ek_public(EVP_PKEY *k, TPM2B_PUBLIC *out)
{
    memset(out, 0, sizeof *out);
    TPMT_PUBLIC *p = &out->publicArea;
    p->type = TPM2_ALG_RSA;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                          TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
    p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
    p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    p->parameters.rsaDetail.keyBits = 2048;
    BIGNUM *n = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(BN_bn2binpad(n, p->unique.rsa.buffer, 256), 256);
    p->unique.rsa.size = 256;
    BN_free(n);
}

static const uint8_t g_name[34] = { 0x00, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* ---- tests: no TPM ---------------------------------------------------------------------------- */

static void test_challenge(void **state)
{
    (void)state;
    char c[QCRED_CHALLENGE_LEN + 1], prev[QCRED_CHALLENGE_LEN + 1] = "";
    bool seen[256] = { false };
    qerr e = { 0 };
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(qcred_challenge(c, &e), 0);
        assert_int_equal(strlen(c), QCRED_CHALLENGE_LEN);
        assert_string_not_equal(c, prev);
        for (int k = 0; k < QCRED_CHALLENGE_LEN; k++) {
            unsigned char ch = (unsigned char)c[k];
            assert_true((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'));
            seen[ch] = true;
        }
        memcpy(prev, c, sizeof c);
    }
    int distinct = 0;
    for (int i = 0; i < 256; i++)
        distinct += seen[i];
    assert_int_equal(distinct, 62);   /* 32000 draws: every character appears */
}

static void hexeq(const uint8_t *b, size_t n, const char *want)
{
    char h[2 * 128 + 1];
    assert_true(n <= 128);
    qhex_encode(b, n, h);
    assert_string_equal(h, want);
}

static void test_kdfa_vectors(void **state)
{
    (void)state;
    uint8_t key[32], u[34], out[48];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    u[0] = 0x00;
    u[1] = 0x0b;
    memset(u + 2, 0xaa, 32);
    qerr e = { 0 };
    assert_int_equal(qcred_kdfa(QHASH_SHA256, key, 32, "STORAGE", u, 34, NULL, 0, out, 16, &e), 0);
    hexeq(out, 16, "0415b32b6f43896a87e7b29be8f2ac14");
    assert_int_equal(qcred_kdfa(QHASH_SHA256, key, 32, "INTEGRITY", NULL, 0, NULL, 0, out, 32, &e), 0);
    hexeq(out, 32, "bacf689f634ece301e1f1b15b072d9c87db6a69585db42b1a0cb8f73ebe2692e");
    /* Two blocks, both contexts. */
    assert_int_equal(qcred_kdfa(QHASH_SHA256, key, 32, "TEST", (const uint8_t *)"ab", 2, (const uint8_t *)"cd", 2,
                                out, 48, &e), 0);
    hexeq(out, 48, "df6269fcdba9e6c17111bc5bfcdd7f860a7ecd428672f792d9c33a3e9e34636c"
                   "f51d6cae564d6206f0086166c652e2ed");
    assert_int_equal(qcred_kdfa(QHASH_SHA256, key, 0, "X", NULL, 0, NULL, 0, out, 16, &e), -1);
    assert_int_equal(qcred_kdfa(QHASH_NONE, key, 32, "X", NULL, 0, NULL, 0, out, 16, &e), -1);
}

static void test_auth_tag(void **state)
{
    (void)state;
    /* Python: hmac.new(base64(b"0123456789abcdefABCDEFghijklmnop"), uuid, sha384).hexdigest() */
    const char *key = "MDEyMzQ1Njc4OWFiY2RlZkFCQ0RFRmdoaWprbG1ub3A=";
    const char *id = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
    const char *want = "3debaa907ee30a5c7960c42b07b1286f3d59430fdf8609c5e9838214e728eef8"
                       "eba8e4c786912ff3c844152bc3f24019";
    char tag[QCRED_AUTH_TAG_HEX + 1];
    qerr e = { 0 };
    assert_int_equal(qcred_auth_tag(key, strlen(key), id, tag, &e), 0);
    assert_string_equal(tag, want);
    assert_true(qcred_auth_tag_ok(key, strlen(key), id, want, strlen(want)));
    char upper[QCRED_AUTH_TAG_HEX + 1];
    for (size_t i = 0; i <= QCRED_AUTH_TAG_HEX; i++)
        upper[i] = (char)(want[i] >= 'a' && want[i] <= 'f' ? want[i] - 32 : want[i]);
    assert_true(qcred_auth_tag_ok(key, strlen(key), id, upper, strlen(upper)));
    /* Another id, another key, a flipped digit, a short tag, a non-hex tag. */
    assert_false(qcred_auth_tag_ok(key, strlen(key), "d432fbb3-d2f1-4a97-9ef7-75bd81c00001", want, 96));
    assert_false(qcred_auth_tag_ok(key, strlen(key) - 1, id, want, 96));
    char bad[QCRED_AUTH_TAG_HEX + 1];
    memcpy(bad, want, sizeof bad);
    bad[50] = bad[50] == '0' ? '1' : '0';
    assert_false(qcred_auth_tag_ok(key, strlen(key), id, bad, 96));
    assert_false(qcred_auth_tag_ok(key, strlen(key), id, want, 95));
    memcpy(bad, want, sizeof bad);
    bad[0] = 'g';
    assert_false(qcred_auth_tag_ok(key, strlen(key), id, bad, 96));
    assert_false(qcred_auth_tag_ok(key, strlen(key), id, NULL, 0));
}

/* Undo the credential with the EK's private key, independently of credential.c except KDFa
 * (checked by its vectors above): OAEP, AES-CFB and the integrity HMAC through OpenSSL directly. */
static void software_activate(EVP_PKEY *ek, const uint8_t *blob, size_t bl, const uint8_t *name, size_t nl,
                              uint8_t *cred, size_t *cred_len)
{
    assert_true(bl > 12);
    assert_int_equal(12 + get16(blob + 8) + get16(blob + 10 + get16(blob + 8)), bl);
    size_t id_len = get16(blob + 8);
    const uint8_t *id = blob + 10, *secret = blob + 12 + id_len;
    size_t secret_len = get16(blob + 10 + id_len);
    uint8_t seed[512];
    size_t seed_len = sizeof seed;
    char label[] = "IDENTITY";
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_OAEP, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, label, sizeof label),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL);
    assert_non_null(pc);
    assert_int_equal(EVP_PKEY_decrypt_init_ex(pc, p), 1);
    assert_int_equal(EVP_PKEY_decrypt(pc, seed, &seed_len, secret, secret_len), 1);
    EVP_PKEY_CTX_free(pc);
    assert_int_equal(seed_len, 32);

    uint8_t sym[16], hkey[32], mac[32];
    qerr e = { 0 };
    assert_int_equal(qcred_kdfa(QHASH_SHA256, seed, 32, "STORAGE", name, nl, NULL, 0, sym, 16, &e), 0);
    assert_int_equal(qcred_kdfa(QHASH_SHA256, seed, 32, "INTEGRITY", NULL, 0, NULL, 0, hkey, 32, &e), 0);
    assert_int_equal(get16(id), 32);
    const uint8_t *integrity = id + 2, *enc = id + 34;
    size_t enc_len = id_len - 34;
    uint8_t msg[256];
    assert_true(enc_len + nl <= sizeof msg);
    memcpy(msg, enc, enc_len);
    memcpy(msg + enc_len, name, nl);
    unsigned ml = 0;
    assert_non_null(HMAC(EVP_sha256(), hkey, 32, msg, enc_len + nl, mac, &ml));
    assert_memory_equal(mac, integrity, 32);

    uint8_t plain[256], iv[16] = { 0 };
    int l1 = 0, l2 = 0;
    EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_DecryptInit_ex(cc, EVP_aes_128_cfb128(), NULL, sym, iv), 1);
    assert_int_equal(EVP_DecryptUpdate(cc, plain, &l1, enc, (int)enc_len), 1);
    assert_int_equal(EVP_DecryptFinal_ex(cc, plain + l1, &l2), 1);
    EVP_CIPHER_CTX_free(cc);
    assert_int_equal((size_t)(l1 + l2), enc_len);
    assert_int_equal(get16(plain), enc_len - 2);
    memcpy(cred, plain + 2, enc_len - 2);
    *cred_len = enc_len - 2;
}

static void test_blob_software(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(k);
    TPM2B_PUBLIC ek;
    rsa_ek_public(k, &ek);
    char ch[QCRED_CHALLENGE_LEN + 1];
    qerr e = { 0 };
    assert_int_equal(qcred_challenge(ch, &e), 0);
    uint8_t blob[QCRED_BLOB_MAX], blob2[QCRED_BLOB_MAX];
    size_t bl = 0, bl2 = 0;
    if (qcred_make(&ek, g_name, sizeof g_name, (const uint8_t *)ch, 32, blob, sizeof blob, &bl, &e) < 0)
        fail_msg("make: %s", e.msg);
    /* tpm2_makecredential's layout for an RSA-2048 EK: badcc0de 00000001 0044 ... 0100 <256> = 336 bytes. */
    assert_int_equal(bl, 336);
    hexeq(blob, 12, "badcc0de0000000100440020");
    assert_int_equal(get16(blob + 78), 256);
    uint8_t cred[64];
    size_t cl = 0;
    software_activate(k, blob, bl, g_name, sizeof g_name, cred, &cl);
    assert_int_equal(cl, 32);
    assert_memory_equal(cred, ch, 32);
    /* Fresh seed every time. */
    assert_int_equal(qcred_make(&ek, g_name, sizeof g_name, (const uint8_t *)ch, 32, blob2, sizeof blob2, &bl2, &e), 0);
    assert_int_equal(bl2, bl);
    assert_memory_not_equal(blob, blob2, bl);
    /* A short credential. */
    assert_int_equal(qcred_make(&ek, g_name, sizeof g_name, (const uint8_t *)"abc", 3, blob2, sizeof blob2, &bl2, &e), 0);
    software_activate(k, blob2, bl2, g_name, sizeof g_name, cred, &cl);
    assert_int_equal(cl, 3);
    assert_memory_equal(cred, "abc", 3);

    /* The library's own software ActivateCredential (the fleet simulator's) agrees, and refuses
     * a blob made for another name or with a flipped integrity byte. */
    cl = 0;
    if (qcred_activate_rsa(k, QHASH_SHA256, 128, g_name, sizeof g_name, blob, bl, cred, sizeof cred, &cl, &e) < 0)
        fail_msg("activate: %s", e.msg);
    assert_int_equal(cl, 32);
    assert_memory_equal(cred, ch, 32);
    uint8_t other[sizeof g_name];
    memcpy(other, g_name, sizeof other);
    other[sizeof other - 1] ^= 1;
    assert_int_equal(qcred_activate_rsa(k, QHASH_SHA256, 128, other, sizeof other, blob, bl, cred, sizeof cred, &cl, &e), -1);
    assert_non_null(strstr(e.msg, "integrity"));
    blob[14] ^= 0x80;
    assert_int_equal(qcred_activate_rsa(k, QHASH_SHA256, 128, g_name, sizeof g_name, blob, bl, cred, sizeof cred, &cl, &e), -1);
    assert_int_equal(qcred_activate_rsa(k, QHASH_SHA256, 128, g_name, sizeof g_name, blob, 11, cred, sizeof cred, &cl, &e), -1);
    EVP_PKEY_free(k);
}

static void test_make_errors(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(k);
    TPM2B_PUBLIC ek, bad;
    rsa_ek_public(k, &ek);
    EVP_PKEY_free(k);
    uint8_t blob[QCRED_BLOB_MAX], c[65] = { 0 };
    size_t bl = 0;
    qerr e = { 0 };
    /* Credential longer than the EK's digest size, empty credential. */
    assert_int_equal(qcred_make(&ek, g_name, sizeof g_name, c, 33, blob, sizeof blob, &bl, &e), -1);
    assert_non_null(strstr(e.msg, "credential"));
    assert_int_equal(qcred_make(&ek, g_name, sizeof g_name, c, 0, blob, sizeof blob, &bl, &e), -1);
    /* Buffer too small. */
    assert_int_equal(qcred_make(&ek, g_name, sizeof g_name, c, 32, blob, 335, &bl, &e), -1);
    assert_non_null(strstr(e.msg, "too small"));
    /* Bad name size. */
    assert_int_equal(qcred_make(&ek, g_name, 2, c, 32, blob, sizeof blob, &bl, &e), -1);
    /* A signing key is no EK. */
    bad = ek;
    bad.publicArea.objectAttributes &= ~TPMA_OBJECT_DECRYPT;
    bad.publicArea.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT;
    assert_int_equal(qcred_make(&bad, g_name, sizeof g_name, c, 32, blob, sizeof blob, &bl, &e), -1);
    assert_non_null(strstr(e.msg, "restricted decryption"));
    /* nameAlg sha1, unknown symmetric, unknown type, broken modulus. */
    bad = ek;
    bad.publicArea.nameAlg = TPM2_ALG_SHA1;
    assert_int_equal(qcred_make(&bad, g_name, sizeof g_name, c, 20, blob, sizeof blob, &bl, &e), -1);
    assert_non_null(strstr(e.msg, "nameAlg"));
    bad = ek;
    bad.publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CBC;
    assert_int_equal(qcred_make(&bad, g_name, sizeof g_name, c, 32, blob, sizeof blob, &bl, &e), -1);
    assert_non_null(strstr(e.msg, "AES"));
    bad = ek;
    bad.publicArea.type = TPM2_ALG_KEYEDHASH;
    assert_int_equal(qcred_make(&bad, g_name, sizeof g_name, c, 32, blob, sizeof blob, &bl, &e), -1);
    bad = ek;
    bad.publicArea.unique.rsa.size = 128;
    assert_int_equal(qcred_make(&bad, g_name, sizeof g_name, c, 32, blob, sizeof blob, &bl, &e), -1);
    assert_non_null(strstr(e.msg, "EK"));
}

/* ---- tests: swtpm ----------------------------------------------------------------------------- */

static void tpm_round_trip(qtpm_key_type ek_type, qtpm_key_type ak_type, const char *ak_file)
{
    if (g_swtpm <= 0)
        skip();
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, ak_file);
    qtpm_opts o = { .tcti = g_tcti, .ek_type = ek_type };
    qerr e = { 0 };
    qtpm *t = qtpm_new(&o, &e);
    assert_non_null(t);
    qtpm_ak_params ap = { .type = ak_type, .hash = QHASH_SHA256 };
    if (qtpm_ak_ensure(t, path, &ap, NULL, &e) < 0)
        fail_msg("AK: %s", e.msg);
    TPM2B_PUBLIC ek, ak;
    assert_int_equal(qtpm_ek_public(t, &ek, &e), 0);
    assert_int_equal(qtpm_ak_public(t, &ak, &e), 0);
    /* The registrar computes the AK name from the public area it was sent. */
    uint8_t name[QTPM_NAME_MAX], tname[QTPM_NAME_MAX];
    size_t nl = 0, tnl = 0;
    assert_int_equal(qtpmpub_name(&ak, name, sizeof name, &nl, &e), 0);
    assert_int_equal(qtpm_ak_name(t, tname, sizeof tname, &tnl, &e), 0);
    assert_int_equal(nl, tnl);
    assert_memory_equal(name, tname, nl);

    char ch[QCRED_CHALLENGE_LEN + 1];
    assert_int_equal(qcred_challenge(ch, &e), 0);
    uint8_t blob[QCRED_BLOB_MAX];
    size_t bl = 0;
    if (qcred_make(&ek, name, nl, (const uint8_t *)ch, QCRED_CHALLENGE_LEN, blob, sizeof blob, &bl, &e) < 0)
        fail_msg("make: %s", e.msg);
    assert_true(bl <= QTPM_CREDBLOB_MAX);
    uint8_t out[QTPM_SECRET_MAX];
    size_t ol = 0;
    if (qtpm_activate_credential(t, blob, bl, out, sizeof out, &ol, &e) < 0)
        fail_msg("activate: %s", e.msg);
    assert_int_equal(ol, QCRED_CHALLENGE_LEN);
    assert_memory_equal(out, ch, ol);

    /* A credential bound to another name is refused by the TPM. */
    name[nl - 1] ^= 0x01;
    assert_int_equal(qcred_make(&ek, name, nl, (const uint8_t *)ch, QCRED_CHALLENGE_LEN, blob, sizeof blob, &bl, &e), 0);
    assert_int_equal(qtpm_activate_credential(t, blob, bl, out, sizeof out, &ol, &e), -1);
    assert_non_null(strstr(e.msg, "ActivateCredential"));
    qtpm_free(t);
}

static void test_tpm_rsa_ek(void **state)
{
    (void)state;
    tpm_round_trip(QTPM_KEY_RSA2048, QTPM_KEY_RSA2048, "ak-rsa.tpm");
}

static void test_tpm_rsa_ek_ecc_ak(void **state)
{
    (void)state;
    tpm_round_trip(QTPM_KEY_RSA2048, QTPM_KEY_ECC_P256, "ak-ecc.tpm");
}

static void test_tpm_ecc_ek(void **state)
{
    (void)state;
    tpm_round_trip(QTPM_KEY_ECC_P256, QTPM_KEY_ECC_P256, "ak-ecc-ecc.tpm");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge),
        cmocka_unit_test(test_kdfa_vectors),
        cmocka_unit_test(test_auth_tag),
        cmocka_unit_test(test_blob_software),
        cmocka_unit_test(test_make_errors),
        cmocka_unit_test(test_tpm_rsa_ek),
        cmocka_unit_test(test_tpm_rsa_ek_ecc_ak),
        cmocka_unit_test(test_tpm_ecc_ek),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
