/* test_policy_cache.c — the verifier's parsed-policy cache (verifier/policy_cache.h) over a real
 * SQLite store in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../verifier/policy_cache.h"
#include "../../verifier/store.h"
#include "policy.h"

typedef struct fx {
    char dir[64];
    char path[96];
    vstore *s;
} fx;

static const char *DIG_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *DIG_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/* A runtime policy JSON allowing one path with one digest. */
static char *policy_json(const char *path, const char *hex)
{
    char text[256];
    snprintf(text, sizeof text, "%s  %s\n", hex, path);
    qpolicy *p = qpolicy_from_allowlist(text, strlen(text), "t", NULL);
    assert_non_null(p);
    char *j = qpolicy_to_json(p, false, NULL);
    qpolicy_free(p);
    assert_non_null(j);
    return j;
}

static long put(fx *f, const char *name, const char *body, bool replace)
{
    char sum[65];
    qpolicy_checksum(body, strlen(body), sum);
    long id = 0;
    qerr err = { 0 };
    assert_int_equal(vstore_policy_put(f->s, name, body, sum, 0, NULL, replace, &id, &err), 1);
    return id;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/qpc-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/v.sqlite", f->dir);
    qerr err = { 0 };
    f->s = vstore_open(f->path, &err);
    assert_non_null(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    vstore_close(f->s);
    char p[128];
    const char *sfx[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static bool allows(const vpolicy_ref *r, const char *path, const char *hex)
{
    uint8_t d[32];
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        d[i] = (uint8_t)v;
    }
    return qpolicy_lookup(vpolicy_ref_policy(r), QPOL_DIGESTS, path, strlen(path), d, 32) == QPOL_MATCH;
}

static void test_empty_for_missing(void **state)
{
    fx *f = *state;
    vpolicy_cache *c = vpolicy_cache_new(f->s, 0, NULL);
    assert_non_null(c);
    vpolicy_ref *a = vpolicy_cache_get(c, 0, NULL);
    vpolicy_ref *b = vpolicy_cache_get(c, 12345, NULL);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_int_equal(qpolicy_count(vpolicy_ref_policy(a), QPOL_DIGESTS), 0);
    vpolicy_ref_release(a);
    vpolicy_ref_release(b);
    vpolicy_cache_free(c);
    /* no store at all */
    c = vpolicy_cache_new(NULL, 0, NULL);
    a = vpolicy_cache_get(c, 3, NULL);
    assert_non_null(a);
    vpolicy_ref_release(a);
    vpolicy_cache_free(c);
}

static void test_load_and_share(void **state)
{
    fx *f = *state;
    char *j = policy_json("/bin/a", DIG_A);
    long id1 = put(f, "one", j, false);
    long id2 = put(f, "two", j, false);       /* same body, another name */
    vpolicy_cache *c = vpolicy_cache_new(f->s, 0, NULL);
    vpolicy_ref *a = vpolicy_cache_get(c, id1, NULL);
    assert_non_null(a);
    assert_true(allows(a, "/bin/a", DIG_A));
    vpolicy_ref *a2 = vpolicy_cache_get(c, id1, NULL);
    vpolicy_ref *b = vpolicy_cache_get(c, id2, NULL);
    assert_ptr_equal(a, a2);
    assert_ptr_equal(a, b);                   /* one parse per checksum */
    assert_int_equal(vpolicy_cache_size(c), 2);
    vpolicy_ref_release(a);
    vpolicy_ref_release(a2);
    vpolicy_ref_release(b);
    vpolicy_cache_free(c);
    free(j);
}

static void test_invalidate(void **state)
{
    fx *f = *state;
    char *j1 = policy_json("/bin/a", DIG_A), *j2 = policy_json("/bin/a", DIG_B);
    long id = put(f, "one", j1, false);
    vpolicy_cache *c = vpolicy_cache_new(f->s, 0, NULL);
    vpolicy_ref *old = vpolicy_cache_get(c, id, NULL);
    assert_true(allows(old, "/bin/a", DIG_A));
    assert_int_equal(put(f, "one", j2, true), id);
    /* not invalidated yet: the cached parse is still served */
    vpolicy_ref *same = vpolicy_cache_get(c, id, NULL);
    assert_ptr_equal(same, old);
    vpolicy_ref_release(same);
    vpolicy_cache_invalidate(c, id);
    vpolicy_ref *now = vpolicy_cache_get(c, id, NULL);
    assert_ptr_not_equal(now, old);
    assert_int_not_equal(vpolicy_ref_serial(now), vpolicy_ref_serial(old));
    assert_true(allows(now, "/bin/a", DIG_B));
    assert_true(allows(old, "/bin/a", DIG_A));   /* a held reference stays valid */
    vpolicy_ref_release(old);
    vpolicy_ref_release(now);
    vpolicy_cache_free(c);
    free(j1);
    free(j2);
}

static void test_deleted_policy_is_empty(void **state)
{
    fx *f = *state;
    char *j = policy_json("/bin/a", DIG_A);
    long id = put(f, "gone", j, false);
    vpolicy_cache *c = vpolicy_cache_new(f->s, 0, NULL);
    assert_int_equal(vstore_policy_delete(f->s, "gone", NULL), 1);
    vpolicy_ref *r = vpolicy_cache_get(c, id, NULL);
    assert_int_equal(qpolicy_count(vpolicy_ref_policy(r), QPOL_DIGESTS), 0);
    vpolicy_ref_release(r);
    vpolicy_cache_free(c);
    free(j);
}

static void test_bad_body(void **state)
{
    fx *f = *state;
    long id = put(f, "bad", "{\"meta\": 1}", false);
    vpolicy_cache *c = vpolicy_cache_new(f->s, 0, NULL);
    qerr err = { 0 };
    assert_null(vpolicy_cache_get(c, id, &err));
    assert_non_null(strstr(err.msg, "malformatted"));
    vpolicy_cache_free(c);
}

static void test_eviction(void **state)
{
    fx *f = *state;
    vpolicy_cache *c = vpolicy_cache_new(f->s, 2, NULL);
    long ids[5];
    for (int i = 0; i < 5; i++) {
        char name[16], hex[65];
        snprintf(name, sizeof name, "p%d", i);
        memset(hex, 'a' + i, 64);
        hex[64] = '\0';
        char *j = policy_json("/bin/x", hex);
        ids[i] = put(f, name, j, false);
        free(j);
    }
    vpolicy_ref *held = vpolicy_cache_get(c, ids[0], NULL);
    for (int i = 1; i < 5; i++) {
        vpolicy_ref *r = vpolicy_cache_get(c, ids[i], NULL);
        assert_non_null(r);
        vpolicy_ref_release(r);
    }
    assert_true(vpolicy_cache_size(c) <= 3);
    /* the held one survived eviction and is still served */
    vpolicy_ref *again = vpolicy_cache_get(c, ids[0], NULL);
    assert_ptr_equal(again, held);
    vpolicy_ref_release(again);
    vpolicy_ref_release(held);
    vpolicy_cache_free(c);
}

static void test_many_ids(void **state)
{
    fx *f = *state;
    char *j = policy_json("/bin/a", DIG_A);
    long ids[40];
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", (i * 17) % 40);
        ids[i] = put(f, name, j, false);
    }
    vpolicy_cache *c = vpolicy_cache_new(f->s, 0, NULL);
    vpolicy_ref *first = vpolicy_cache_get(c, ids[0], NULL);
    for (int round = 0; round < 2; round++) {
        for (int i = 39; i >= 0; i--) {
            vpolicy_ref *r = vpolicy_cache_get(c, ids[i], NULL);
            assert_ptr_equal(r, first);       /* one body: one parse for every name */
            vpolicy_ref_release(r);
            if (round == 0 && i % 5 == 0)
                vpolicy_cache_invalidate(c, ids[i]);
        }
    }
    assert_int_equal(vpolicy_cache_size(c), 2);
    vpolicy_ref_release(first);
    vpolicy_cache_free(c);
    free(j);
}

static void test_wrap(void **state)
{
    (void)state;
    assert_null(vpolicy_ref_wrap(NULL, NULL));
    vpolicy_ref *r = vpolicy_ref_wrap(qpolicy_empty(NULL), NULL);
    assert_non_null(r);
    assert_ptr_equal(vpolicy_ref_retain(r), r);
    vpolicy_ref *r2 = vpolicy_ref_wrap(qpolicy_empty(NULL), NULL);
    assert_int_not_equal(vpolicy_ref_serial(r), vpolicy_ref_serial(r2));
    vpolicy_ref_release(r);
    vpolicy_ref_release(r);
    vpolicy_ref_release(r2);
    vpolicy_ref_release(NULL);
}

typedef struct tctx {
    vpolicy_cache *c;
    long ids[3];
} tctx;

static void *hammer(void *arg)
{
    tctx *t = arg;
    for (int i = 0; i < 300; i++) {
        vpolicy_ref *r = vpolicy_cache_get(t->c, t->ids[i % 3], NULL);
        if (!r)
            return (void *)1;
        if (i % 17 == 0)
            vpolicy_cache_invalidate(t->c, t->ids[(i / 17) % 3]);
        vpolicy_ref_release(r);
    }
    return NULL;
}

static void test_threads(void **state)
{
    fx *f = *state;
    tctx t;
    t.c = vpolicy_cache_new(f->s, 2, NULL);
    for (int i = 0; i < 3; i++) {
        char name[16], hex[65];
        snprintf(name, sizeof name, "t%d", i);
        memset(hex, 'c' + i, 64);
        hex[64] = '\0';
        char *j = policy_json("/bin/y", hex);
        t.ids[i] = put(f, name, j, false);
        free(j);
    }
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &t), 0);
    for (int i = 0; i < 4; i++) {
        void *rv = NULL;
        pthread_join(th[i], &rv);
        assert_null(rv);
    }
    vpolicy_cache_free(t.c);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_empty_for_missing),
        T(test_load_and_share),
        T(test_invalidate),
        T(test_deleted_policy_is_empty),
        T(test_bad_body),
        T(test_eviction),
        T(test_many_ids),
        cmocka_unit_test(test_wrap),
        T(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
