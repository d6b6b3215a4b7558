/* pcr_bank.c — hash algorithms of PCR banks and PCR extend (see pcr_bank.h).
 * Each EVP_MD is fetched once per process under its own pthread_once and never freed (the
 * process keeps it for its lifetime); afterwards qhash_md() is a plain read. */
#include "pcr_bank.h"

#include <pthread.h>
#include <string.h>

static const struct {
    const char *name;       /* Keylime / policy spelling */
    const char *fetch;      /* OpenSSL algorithm name */
    size_t size;
    uint16_t tpm_id;
} algs[QHASH_COUNT] = {
    [QHASH_SHA1]   = { "sha1",   "SHA1",   20, 0x0004 },
    [QHASH_SHA256] = { "sha256", "SHA256", 32, 0x000B },
    [QHASH_SHA384] = { "sha384", "SHA384", 48, 0x000C },
    [QHASH_SHA512] = { "sha512", "SHA512", 64, 0x000D },
};

static EVP_MD *g_md[QHASH_COUNT];
static pthread_once_t g_once[QHASH_COUNT] = {
    PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT
};

static void fetch_sha1(void)   { g_md[QHASH_SHA1] = EVP_MD_fetch(NULL, algs[QHASH_SHA1].fetch, NULL); }
static void fetch_sha256(void) { g_md[QHASH_SHA256] = EVP_MD_fetch(NULL, algs[QHASH_SHA256].fetch, NULL); }
static void fetch_sha384(void) { g_md[QHASH_SHA384] = EVP_MD_fetch(NULL, algs[QHASH_SHA384].fetch, NULL); }
static void fetch_sha512(void) { g_md[QHASH_SHA512] = EVP_MD_fetch(NULL, algs[QHASH_SHA512].fetch, NULL); }

static void (*const fetchers[QHASH_COUNT])(void) = {
    fetch_sha1, fetch_sha256, fetch_sha384, fetch_sha512
};

static bool valid_alg(qhash_alg a)
{
    return (int)a >= 0 && (int)a < QHASH_COUNT;
}

const char *qhash_name(qhash_alg a)
{
    return valid_alg(a) ? algs[a].name : "unknown";
}

int qhash_from_name(const char *s, qhash_alg *out)
{
    if (!s)
        return -1;
    for (int i = 0; i < QHASH_COUNT; i++) {
        if (strcmp(s, algs[i].name) == 0) {
            if (out)
                *out = (qhash_alg)i;
            return 0;
        }
    }
    return -1;
}

size_t qhash_size(qhash_alg a)
{
    return valid_alg(a) ? algs[a].size : 0;
}

int qhash_from_size(size_t n, qhash_alg *out)
{
    for (int i = 0; i < QHASH_COUNT; i++) {
        if (algs[i].size == n) {
            if (out)
                *out = (qhash_alg)i;
            return 0;
        }
    }
    return -1;
}

uint16_t qhash_tpm_id(qhash_alg a)
{
    return valid_alg(a) ? algs[a].tpm_id : 0x0010; /* TPM2_ALG_NULL */
}

int qhash_from_tpm_id(uint16_t id, qhash_alg *out)
{
    for (int i = 0; i < QHASH_COUNT; i++) {
        if (algs[i].tpm_id == id) {
            if (out)
                *out = (qhash_alg)i;
            return 0;
        }
    }
    return -1;
}

const EVP_MD *qhash_md(qhash_alg a)
{
    if (!valid_alg(a))
        return NULL;
    pthread_once(&g_once[a], fetchers[a]);
    return g_md[a];
}

int qhash_digest(EVP_MD_CTX *ctx, qhash_alg a, const void *data, size_t len, uint8_t *out)
{
    const EVP_MD *md = qhash_md(a);
    unsigned int olen = 0;
    if (!ctx || !md || (!data && len > 0) || !out)
        return -1;
    /* OpenSSL 3.0 frees and allocates the provider context here on every call, even with the
     * same EVP_MD (hash_direct.h); fine off the per-entry hot paths. */
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &olen) != 1 || olen != algs[a].size)
        return -1;
    return 0;
}

void qpcr_init(qpcr *p, qhash_alg alg)
{
    memset(p, 0, sizeof *p);
    p->alg = alg;
}

int qpcr_extend(qpcr *p, EVP_MD_CTX *ctx, const uint8_t *digest)
{
    const EVP_MD *md = qhash_md(p->alg);
    size_t n = qhash_size(p->alg);
    unsigned int olen = 0;
    if (!ctx || !md || !digest)
        return -1;
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, p->value, n) != 1 ||
        EVP_DigestUpdate(ctx, digest, n) != 1 || EVP_DigestFinal_ex(ctx, p->value, &olen) != 1 ||
        olen != n)
        return -1;
    return 0;
}

int qpcr_extend_ff(qpcr *p, EVP_MD_CTX *ctx)
{
    uint8_t ff[QHASH_MAX_SIZE];
    memset(ff, 0xff, sizeof ff);
    return qpcr_extend(p, ctx, ff);
}

bool qpcr_equals(const qpcr *p, const uint8_t *value, size_t len)
{
    size_t n = qhash_size(p->alg);
    return value && n > 0 && len == n && memcmp(p->value, value, n) == 0;
}
