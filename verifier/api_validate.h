/* api_validate.h — pure checks of the add-agent body's fields (verifier API), so every value the
 * verifier stores or puts into a URL has a type, range and size limit.
 *
 * Contract: each returns 0, or -1 with err holding the 400 reply's text (nothing logged, nothing
 * allocated that outlives the call). Limits are the VAPI_*_MAX below. */
#ifndef QUINCE_VERIFIER_API_VALIDATE_H
#define QUINCE_VERIFIER_API_VALIDATE_H

#include <cjson/cJSON.h>
#include "err.h"

#define VAPI_HOST_MAX      253           /* a DNS name; IP literals are shorter */
#define VAPI_METADATA_MAX  (64 * 1024)   /* metadata JSON text */
#define VAPI_TPM_POLICY_MAX (64 * 1024)  /* tpm_policy JSON text */
#define VAPI_DIGESTS_MAX   64            /* accepted digests per PCR */
#define VAPI_ALGS_MAX      16            /* names in one accept_tpm_*_algs list */
#define VAPI_KEYS_MAX      (1024 * 1024) /* ima_sign_verification_keys text */
#define VAPI_TEXT_MAX      (64 * 1024)   /* revocation_key, ak_tpm and other unused text */

/* cloudagent_ip / verifier_ip: an IPv4 or IPv6 literal (no zone, no brackets) or a host name
 * (letters, digits and '-' labels of 1..63, dot-separated, at most VAPI_HOST_MAX). */
int vapi_check_host(const char *key, const char *s, qerr *err);

/* tpm_policy text (a JSON object): keys "mask" (a hex string, "0x" optional, within 24 bits) or a
 * PCR number 0..23 in decimal; a PCR's value a hex digest (40..128 digits) or a list of 1 to
 * VAPI_DIGESTS_MAX of them; at most VAPI_TPM_POLICY_MAX bytes. */
int vapi_check_tpm_policy(const char *text, qerr *err);

/* metadata text: a JSON object of at most VAPI_METADATA_MAX bytes. */
int vapi_check_metadata(const char *text, qerr *err);

/* accept_tpm_hash_algs, accept_tpm_encryption_algs or accept_tpm_signing_algs (key says which):
 * an array of 1..VAPI_ALGS_MAX strings, each a name Keylime knows for that list. */
int vapi_check_algs(const char *key, const cJSON *arr, qerr *err);

#endif
