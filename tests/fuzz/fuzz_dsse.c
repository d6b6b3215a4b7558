/* fuzz_dsse.c — libFuzzer target: the input as a (possibly signed) runtime policy through
 * qpsig_check with and without a key and with signatures required, and as a DSSE envelope
 * (qdsse_parse). Invariants: a parsed envelope rebuilds a PAE of the announced length; a check
 * that succeeds hands back a payload of the stated length; a signature never verifies with a
 * key that did not make it (the fixed test key signs nothing the fuzzer can produce). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dsse.h"
#include "policy_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char KEY[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETEf+JESJMnMt5lHDeutKWrtWoxOn\n"
    "FBWPRjRazo8/MywT0hedgV5a/9ydV09nMuYQRVIOAlwr0rWNJ3m56iIBdA==\n"
    "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    qdsse_env env;
    qerr err = {0};
    if (qdsse_parse(text, size, &env, &err) == 0) {
        size_t n = 0;
        uint8_t *pae = qdsse_pae(env.payload_type, env.payload, env.payload_len, &n);
        if (!pae || n < env.payload_len + strlen(env.payload_type) + 10)
            abort();
        free(pae);
    }
    qdsse_env_clear(&env);
    const bool req[2] = {false, true};
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < 2; r++) {
            qpsig_result res;
            int code = qpsig_check(text, size, k ? (const uint8_t *)KEY : NULL, k ? sizeof KEY - 1 : 0, req[r], &res);
            if (code == 0 && (!res.payload || strlen(res.payload) > res.payload_len))
                abort();
            if (code == 0 && k && res.is_envelope && res.is_signed) {
                fprintf(stderr, "fuzz_dsse: a signature verified with the fixed key\n");
                abort();
            }
            qpsig_result_clear(&res);
        }
    return 0;
}
