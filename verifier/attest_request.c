/* attest_request.c — what a round asks the agent for: the quote's PCR mask (from the agent's
 * tpm_policy) and a fresh nonce; and the tpm_policy key syntax both sides share (attest.h). */
#include "attest.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include <cjson/cJSON.h>

bool vattest_pcr_key(const char *k, int *pcr)
{
    if (!k || !*k || strlen(k) > 2)
        return false;
    int v = 0;
    for (const char *p = k; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v >= QQUOTE_NUM_PCRS)
        return false;
    *pcr = v;
    return true;
}

uint32_t vattest_mask(const char *tpm_policy, bool has_runtime_policy)
{
    uint32_t mask = VATTEST_DEFAULT_MASK;
    cJSON *j = tpm_policy ? cJSON_Parse(tpm_policy) : NULL;
    if (cJSON_IsObject(j)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "mask");
        if (cJSON_IsString(m)) {
            char *end = NULL;
            unsigned long v = strtoul(m->valuestring, &end, 16);
            if (end && end != m->valuestring && *end == '\0')
                mask = (uint32_t)(v & 0xffffffu);
        }
        const cJSON *it;
        int pcr;
        cJSON_ArrayForEach(it, j) {
            if (vattest_pcr_key(it->string, &pcr))
                mask |= 1u << pcr;
        }
    }
    cJSON_Delete(j);
    if (has_runtime_policy)
        mask |= 1u << 10;
    return mask;
}

/* Random bytes for nonces, drawn from OpenSSL's DRBG 1 KiB at a time and handed out once each:
 * a RAND_bytes call per round (its per-thread DRBG lookup, reseed and fork checks, a getpid()
 * system call) cost more than the nonce's characters. Per thread, so no lock. */
#define NONCE_POOL 1024
static __thread uint8_t nonce_pool[NONCE_POOL];
static __thread size_t nonce_pool_left;

static int nonce_byte(uint8_t *b)
{
    if (nonce_pool_left == 0) {
        if (RAND_bytes(nonce_pool, sizeof nonce_pool) != 1)
            return -1;
        nonce_pool_left = sizeof nonce_pool;
    }
    size_t i = sizeof nonce_pool - nonce_pool_left--;
    *b = nonce_pool[i];
    nonce_pool[i] = 0;              /* used once */
    return 0;
}

int vattest_nonce(char *out, size_t len)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = 0;
    while (n < len) {
        uint8_t r;
        if (nonce_byte(&r) < 0)
            return -1;
        if (r < 248)                /* 248 = 4 * 62: no modulo bias */
            out[n++] = alnum[r % 62];
    }
    out[len] = '\0';
    return 0;
}
