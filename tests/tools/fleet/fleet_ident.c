/* fleet_ident.c — every simulated agent's identity: EK, EK certificate, AK, mTLS certificate.
 *
 * RSA-2048 key generation costs tens of milliseconds a key (minutes for 10,000 EKs), so the
 * fleet draws a pool of M random 1024-bit primes once per run and gives every RSA key its own
 * pair (p, q) of the pool: M primes make M(M-1)/2 distinct moduli, ~300 primes cover 40,000
 * keys in a few seconds. Keys sharing a factor are worthless for security, which a load
 * generator does not need; each EK and RSA AK is still a distinct, valid RSA key. ECC keys
 * (AK by default, the mTLS keys) are cheap and made fresh. */
#include "fleet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "b64.h"
#include "tls_ca.h"

#define PRIME_BITS 1024

typedef struct prime_pool {
    BIGNUM **p;
    size_t n;
    size_t next_i, next_j;       /* next pair (i < j) */
} prime_pool;

static void pool_free(prime_pool *pp)
{
    for (size_t i = 0; i < pp->n; i++)
        BN_free(pp->p[i]);
    free(pp->p);
    memset(pp, 0, sizeof *pp);
}

/* Primes p with gcd(p - 1, 65537) = 1, enough for `keys` pairs. */
static int pool_make(prime_pool *pp, size_t keys, qerr *err)
{
    memset(pp, 0, sizeof *pp);
    size_t m = (size_t)ceil((1.0 + sqrt(1.0 + 8.0 * (double)keys)) / 2.0) + 1;
    if (m < 2)
        m = 2;
    pp->p = calloc(m, sizeof *pp->p);
    if (!pp->p)
        return qerr_set(err, "out of memory");
    pp->next_j = 1;
    while (pp->n < m) {
        BIGNUM *b = BN_new();
        if (!b || BN_generate_prime_ex(b, PRIME_BITS, 0, NULL, NULL, NULL) != 1) {
            BN_free(b);
            pool_free(pp);
            return qerr_set(err, "prime generation failed");
        }
        BN_ULONG r = BN_mod_word(b, 65537);
        if (r == 1 || r == (BN_ULONG)-1) {         /* 65537 divides p - 1 (or error): draw again */
            BN_free(b);
            continue;
        }
        pp->p[pp->n++] = b;
    }
    return 0;
}

/* The next RSA key of the pool (n = p q, e = 65537, CRT parameters). */
static EVP_PKEY *pool_key(prime_pool *pp, qerr *err)
{
    if (pp->next_j >= pp->n) {
        qerr_set(err, "prime pool exhausted");
        return NULL;
    }
    const BIGNUM *p = pp->p[pp->next_i], *q = pp->p[pp->next_j];
    if (++pp->next_i == pp->next_j) {
        pp->next_i = 0;
        pp->next_j++;
    }
    BN_CTX *bc = BN_CTX_new();
    BIGNUM *n = BN_new(), *e = BN_new(), *d = BN_new(), *p1 = BN_new(), *q1 = BN_new(), *phi = BN_new();
    BIGNUM *dp = BN_new(), *dq = BN_new(), *qi = BN_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pc = NULL;
    EVP_PKEY *key = NULL;
    int ok = bc && n && e && d && p1 && q1 && phi && dp && dq && qi && bld && BN_set_word(e, 65537) &&
             BN_mul(n, p, q, bc) && BN_num_bits(n) == 2048 && BN_sub(p1, p, BN_value_one()) &&
             BN_sub(q1, q, BN_value_one()) && BN_mul(phi, p1, q1, bc) && BN_mod_inverse(d, e, phi, bc) &&
             BN_mod(dp, d, p1, bc) && BN_mod(dq, d, q1, bc) && BN_mod_inverse(qi, q, p, bc) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qi) &&
             (params = OSSL_PARAM_BLD_to_param(bld)) && (pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) &&
             EVP_PKEY_fromdata_init(pc) == 1 && EVP_PKEY_fromdata(pc, &key, EVP_PKEY_KEYPAIR, params) == 1;
    if (!ok) {
        EVP_PKEY_free(key);
        key = NULL;
        qerr_set(err, "cannot build an RSA key from the prime pool");
    }
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n); BN_free(e); BN_clear_free(d); BN_free(p1); BN_free(q1); BN_clear_free(phi);
    BN_clear_free(dp); BN_clear_free(dq); BN_clear_free(qi);
    BN_CTX_free(bc);
    return key;
}

/* The EK as TPM2B_PUBLIC, base64: the default RSA-2048 EK template (TCG EK profile L-1). */
static char *ek_public_b64(EVP_PKEY *ek)
{
    static const uint8_t policy[32] = { 0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC,
                                        0x8D, 0x46, 0xA5, 0xD7, 0x24, 0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52,
                                        0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA };
    TPM2B_PUBLIC pub;
    memset(&pub, 0, sizeof pub);
    TPMT_PUBLIC *p = &pub.publicArea;
    p->type = TPM2_ALG_RSA;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                          TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    p->authPolicy.size = sizeof policy;
    memcpy(p->authPolicy.buffer, policy, sizeof policy);
    p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
    p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
    p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    p->parameters.rsaDetail.keyBits = 2048;
    p->unique.rsa.size = 256;
    BIGNUM *n = NULL;
    int ok = EVP_PKEY_get_bn_param(ek, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
             BN_bn2binpad(n, p->unique.rsa.buffer, 256) == 256;
    BN_free(n);
    uint8_t buf[sizeof pub];
    size_t off = 0;
    if (!ok || Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, sizeof buf, &off) != TSS2_RC_SUCCESS)
        return NULL;
    return qb64_encode_alloc(buf, off);
}

static char *cert_der_b64(X509 *c)
{
    unsigned char *der = NULL;
    int len = i2d_X509(c, &der);
    char *out = len > 0 ? qb64_encode_alloc(der, (size_t)len) : NULL;
    OPENSSL_free(der);
    return out;
}

/* EK, EK certificate (issued by the fleet's EK CA) and AK of one agent. */
static int make_tpm_ident(fl_agent *a, prime_pool *pp, bool ak_rsa, X509 *ca, EVP_PKEY *ca_key, qerr *err)
{
    a->ek = pool_key(pp, err);
    if (!a->ek || !(a->ek_b64 = ek_public_b64(a->ek)))
        return qerr_set(err, "agent %u: no EK", a->idx);
    char cn[64];
    snprintf(cn, sizeof cn, "fleet EK %u", a->idx);
    qtls_cert_opts co = { .cn = cn };
    X509 *c = qtls_make_cert(&co, a->ek, ca, ca_key, err);
    a->ekcert_b64 = c ? cert_der_b64(c) : NULL;
    X509_free(c);
    if (!a->ekcert_b64)
        return qerr_set(err, "agent %u: no EK certificate", a->idx);
    EVP_PKEY *ak = ak_rsa ? pool_key(pp, err) : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (swq_key_from_pkey(&a->ak, ak) < 0)
        return qerr_set(err, "agent %u: no AK", a->idx);
    return 0;
}

/* A fresh EC key and self-signed certificate naming the agent's address (what the registrar
 * record's mtls_cert holds and the verifier pins). */
static int make_tls(fl_agent *a, qerr *err)
{
    const char *names[] = { a->ip, NULL };
    qtls_cert_opts o = { .cn = a->uuid, .names = names, .eku = QTLS_EKU_SERVER | QTLS_EKU_CLIENT };
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, err);
    X509 *c = k ? qtls_make_cert(&o, k, NULL, NULL, err) : NULL;
    int rc = -1;
    if (c && (a->tls_cert = qtls_cert_pem(c, NULL, err)) && (a->tls_key = qtls_key_pem(k, NULL, err)))
        rc = 0;
    X509_free(c);
    EVP_PKEY_free(k);
    return rc;
}

int fl_ident_setup(fleet *f, qerr *err)
{
    prime_pool pp;
    size_t keys = (size_t)f->o.n * (f->o.ak_rsa ? 2 : 1);
    double t = fl_now();
    if (pool_make(&pp, keys, err) < 0)
        return -1;
    fprintf(stderr, "fleet: %zu primes for %zu RSA keys in %.1f s\n", pp.n, keys, fl_now() - t);
    EVP_PKEY *ca_key = qtls_key_new(QTLS_KEY_EC_P256, err);
    X509 *ca = ca_key ? qtls_make_ca(ca_key, "quince-fleet EK CA", QTLS_CA_DAYS, err) : NULL;
    int rc = ca ? 0 : -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/ek-ca.pem", f->o.out_dir);
    if (rc == 0)
        rc = qtls_write_cert(path, ca, QTLS_REPLACE, err);
    t = fl_now();
    for (unsigned i = 0; rc == 0 && i < f->o.n; i++) {
        fl_agent *a = &f->agents[i];
        if (make_tpm_ident(a, &pp, f->o.ak_rsa, ca, ca_key, err) < 0 || make_tls(a, err) < 0)
            rc = -1;
    }
    if (rc == 0)
        fprintf(stderr, "fleet: identities of %u agents in %.1f s\n", f->o.n, fl_now() - t);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    pool_free(&pp);
    return rc;
}

void fl_agent_free(fl_agent *a)
{
    EVP_PKEY_free(a->ek);
    free(a->ek_b64);
    free(a->ekcert_b64);
    swq_key_free(&a->ak);
    free(a->tls_cert);
    qtls_free_secret(a->tls_key);
    free(a->extra);
    memset(a, 0, sizeof *a);
}
