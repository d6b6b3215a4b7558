/* The IMA engine's log lines name their agent, and the "IMA ERRORS" counts line reports good as
 * the running total since the replay began (carried in qima_state across rounds). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "hex.h"
#include "ima_verify.h"
#include "log.h"
#include "policy.h"

/* One ima-ng line for path whose file digest is sha256(path); its template hash is correct. */
static size_t ng_line(const char *path, char *out, size_t cap)
{
    uint8_t fd[32], th[20];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(path, strlen(path), fd, &n, EVP_sha256(), NULL), 1);
    uint8_t td[600];
    size_t o = 0;
    uint32_t dlen = 8 + 32, nlen = (uint32_t)strlen(path) + 1;
    memcpy(td + o, &dlen, 4);   /* little-endian host (x86-64, arm64) */
    o += 4;
    memcpy(td + o, "sha256:", 8);
    o += 8;
    memcpy(td + o, fd, 32);
    o += 32;
    memcpy(td + o, &nlen, 4);
    o += 4;
    memcpy(td + o, path, nlen);
    o += nlen;
    assert_int_equal(EVP_Digest(td, o, th, &n, EVP_sha1(), NULL), 1);
    char thx[41], fdx[65];
    int w = snprintf(out, cap, "10 %s ima-ng sha256:%s %s\n", qhex_encode(th, 20, thx), qhex_encode(fd, 32, fdx), path);
    assert_true(w > 0 && (size_t)w < cap);
    return (size_t)w;
}

static void allow(char *al, size_t cap, const char *path)
{
    uint8_t fd[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(path, strlen(path), fd, &n, EVP_sha256(), NULL), 1);
    char hx[65];
    size_t l = strlen(al);
    snprintf(al + l, cap - l, "%s  %s\n", qhex_encode(fd, 32, hx), path);
}

typedef struct {
    char lines[32][512];
    size_t n;
} cap_t;

static void sink(void *ctx, qlog_level lvl, const char *module, const char *msg)
{
    (void)lvl;
    (void)module;
    cap_t *c = ctx;
    if (c->n < 32)
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s", msg);
}

static const char *find(const cap_t *c, const char *prefix)
{
    for (size_t i = 0; i < c->n; i++)
        if (strncmp(c->lines[i], prefix, strlen(prefix)) == 0)
            return c->lines[i];
    return NULL;
}

static void test_agent_named_and_good_total(void **state)
{
    (void)state;
    char al[4096] = "";
    allow(al, sizeof al, "/usr/bin/a");
    allow(al, sizeof al, "/usr/bin/b");
    allow(al, sizeof al, "/usr/bin/c");
    qerr e = {0};
    qpolicy *p = qpolicy_from_allowlist(al, strlen(al), "al", &e);
    assert_non_null(p);
    qima_opts o = {.policy = p, .bank = QHASH_SHA256, .log = true};
    qima_verifier *v = qima_verifier_new(&o, &e);
    assert_non_null(v);
    qima_verifier_set_agent(v, "agent-one");
    cap_t cap = {.n = 0};
    qlog_use_stderr(false);
    qlog_set_sink(sink, &cap);

    /* Round 1: three good entries, no PCR check (state moves past every line). */
    char text[4096];
    size_t len = 0;
    len += ng_line("/usr/bin/a", text + len, sizeof text - len);
    len += ng_line("/usr/bin/b", text + len, sizeof text - len);
    len += ng_line("/usr/bin/c", text + len, sizeof text - len);
    qima_result r1;
    assert_int_equal(qima_verifier_begin(v, NULL, NULL, 0, &e), 0);
    assert_int_equal(qima_verifier_feed(v, text, len), (long)len);
    assert_int_equal(qima_verifier_finish(v, &r1), 0);
    assert_true(r1.passed);
    assert_int_equal(r1.next.good_total, 3);

    /* Round 2, incremental: one good, one not in the allowlist. */
    len = 0;
    len += ng_line("/usr/bin/a", text + len, sizeof text - len);
    len += ng_line("/usr/bin/missing", text + len, sizeof text - len);
    qima_result r2;
    assert_int_equal(qima_verifier_begin(v, &r1.next, NULL, 0, &e), 0);
    assert_int_equal(qima_verifier_feed(v, text, len), (long)len);
    assert_int_equal(qima_verifier_finish(v, &r2), 0);
    qlog_set_sink(NULL, NULL);
    qlog_use_stderr(true);
    assert_false(r2.passed);
    assert_int_equal(r2.next.good_total, 4);
    assert_non_null(find(&cap, "agent agent-one: File not found in allowlist: /usr/bin/missing"));
    const char *sum = find(&cap, "agent agent-one: IMA ERRORS:");
    assert_non_null(sum);
    assert_string_equal(sum, "agent agent-one: IMA ERRORS: template-hash 0 fnf 1 hash 0 good 4");
    for (size_t i = 0; i < cap.n; i++)
        assert_non_null(strstr(cap.lines[i], "agent-one"));
    qima_verifier_free(v);
    qpolicy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_named_and_good_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
