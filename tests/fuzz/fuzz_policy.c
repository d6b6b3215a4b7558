/* fuzz_policy.c — libFuzzer target: the input as a runtime policy (qpolicy_from_json) and as an
 * allowlist (qpolicy_from_allowlist). A policy that loads is looked up, serialised (insertion
 * order and sorted), and its sorted JSON must load again and serialise to the same text.
 * qpolicy_from_json must agree with the whole-document cJSON load (qpol_from_json_cjson): both
 * fail with the same message, or both load a policy that serialises to the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant broke: say which, with the library's message, and crash for libFuzzer. */
static void die(const char *what, const qerr *e)
{
    fprintf(stderr, "fuzz_policy: %s: %s\n", what, e->msg);
    abort();
}

static void exercise(qpolicy *p)
{
    static const uint8_t digest[QHASH_MAX_SIZE] = { 0 };
    char repr[64];
    qerr err = { 0 };
    for (int t = 0; t < QPOL_NTABLES; t++) {
        (void)qpolicy_count(p, (qpol_table)t);
        (void)qpolicy_lookup(p, (qpol_table)t, "boot_aggregate", 14, digest, 20);
        (void)qpolicy_lookup(p, (qpol_table)t, "/usr/bin/a", 10, digest, 32);
        size_t n = qpolicy_expected_repr(p, (qpol_table)t, "boot_aggregate", 14, repr, sizeof repr);
        if (n >= sizeof repr)
            abort();
    }
    (void)qpolicy_excludes(p);
    (void)qpolicy_log_hash_alg(p);
    (void)qpolicy_keyring(p);
    (void)qpolicy_keyring_ignored(p, ".ima", 4);
    (void)qpolicy_generator(p);

    char *plain = qpolicy_to_json(p, false, &err);
    char *sorted = qpolicy_to_json(p, true, &err);
    if (!plain || !sorted)
        die("a loaded policy does not serialise", &err);
    qpolicy *again = qpolicy_from_json(sorted, strlen(sorted), "roundtrip", &err);
    if (!again)
        die("the serialised policy does not load", &err);
    char *sorted2 = qpolicy_to_json(again, true, &err);
    if (!sorted2)
        die("the reloaded policy does not serialise", &err);
    if (strcmp(sorted, sorted2) != 0) {
        fprintf(stderr, "fuzz_policy: round trip changed the policy:\n%s\n%s\n", sorted, sorted2);
        abort();
    }
    free(sorted2);
    qpolicy_free(again);
    free(sorted);
    free(plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    char *text = malloc(size ? size : 1);   /* exact size, not NUL-terminated */
    if (!text)
        abort();
    memcpy(text, data, size);
    qerr err = { 0 }, ref_err = { 0 };
    qpolicy *p = qpolicy_from_json(text, size, "fuzz.json", &err);
    qpolicy *ref = qpol_from_json_cjson(text, size, &ref_err);
    if (!p != !ref || (!p && strcmp(err.msg, ref_err.msg) != 0)) {
        fprintf(stderr, "fuzz_policy: quick and cJSON loads differ: '%s' / '%s'\n", p ? "loaded" : err.msg,
                ref ? "loaded" : ref_err.msg);
        abort();
    }
    if (p) {
        char *a = qpolicy_to_json(p, false, &err), *b = qpolicy_to_json(ref, false, &ref_err);
        if (!a || !b)
            die("a loaded policy does not serialise", a ? &ref_err : &err);
        if (strcmp(a, b) != 0) {
            fprintf(stderr, "fuzz_policy: quick and cJSON loads differ:\n%s\n%s\n", a, b);
            abort();
        }
        free(a);
        free(b);
        exercise(p);
        qpolicy_free(p);
    }
    qpolicy_free(ref);
    p = qpolicy_from_allowlist(text, size, "fuzz.txt", &err);
    if (p) {
        exercise(p);
        qpolicy_free(p);
    }
    free(text);
    return 0;
}
