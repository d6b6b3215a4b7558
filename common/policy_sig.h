/* policy_sig.h — Keylime's decision on a possibly signed runtime policy (keylime-formats §2.7),
 * shared by the tenant (before upload) and the verifier (on add, update, upload and load).
 *   - a DSSE envelope is checked when a key is given or `require` is set; with `require` and no
 *     key: 401 "Runtime policy signature verification required but no key was given!";
 *   - a bad signature: 401 "Runtime policy failed DSSE signature verification!";
 *   - a policy that is not an envelope, when `require` is set or a key is given: 400
 *     "Runtime policy is not signed!";
 *   - an unusable key or envelope: 400 with the reason.
 * On success (code 0) r->payload holds the policy text to validate and use (the envelope's
 * payload, or the text itself), NUL-terminated; r->is_signed says whether it was verified. */
#ifndef QUINCE_POLICY_SIG_H
#define QUINCE_POLICY_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QPSIG_NOT_SIGNED "Runtime policy is not signed!"
#define QPSIG_NO_KEY "Runtime policy signature verification required but no key was given!"
#define QPSIG_BAD_SIG "Runtime policy failed DSSE signature verification!"

typedef struct qpsig_result {
    int code;            /* 0, 400 or 401 (500: out of memory) */
    char message[512];
    char *payload;       /* malloc'd; NULL unless code == 0 */
    size_t payload_len;
    bool is_envelope;
    bool is_signed;      /* the signature was checked and is good */
} qpsig_result;

/* key may be NULL/0 (none). Returns r->code. */
int qpsig_check(const char *text, size_t len, const uint8_t *key, size_t key_len, bool require,
                qpsig_result *r);
void qpsig_result_clear(qpsig_result *r);

#endif
