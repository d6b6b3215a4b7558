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

int vattest_nonce(char *out, size_t len)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t rnd[64];
    size_t n = 0;
    while (n < len) {
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return -1;
        for (size_t i = 0; i < sizeof rnd && n < len; i++)
            if (rnd[i] < 248)          /* 248 = 4 * 62: no modulo bias */
                out[n++] = alnum[rnd[i] % 62];
    }
    out[len] = '\0';
    return 0;
}
