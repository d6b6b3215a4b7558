/* Unit tests for verifier/store_lease.c and the lease fence of the round save: two verifier
 * instances share one SQLite file; heartbeats, fair shares, taking, releasing, the epoch raised
 * by API changes, and a round saved under a lost lease refused without changing anything. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../verifier/store.h"
#include "../../verifier/store_lease.h"
#include "store_fixture.h"

typedef struct fx {
    char dir[64];
    char path[128];
    vstore *s;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    sfx_tmpdir(f->dir, sizeof f->dir, f->path, sizeof f->path, "/tmp/quince-lease.XXXXXX");
    f->s = sfx_open(f->path);
    qerr e = { 0 };
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof id, "agent-%02d", i);
        vagent a;
        sfx_fill_agent(&a, id, 0);
        assert_int_equal(vstore_agent_add(f->s, &a, &e), 1);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    vstore_close(f->s);
    sfx_rm_tree(f->dir);
    free(f);
    return 0;
}

static size_t mine(vstore *s, const char *inst, vlease_row **rows)
{
    qerr e = { 0 };
    size_t n = 0;
    assert_int_equal(vstore_lease_mine(s, inst, rows, &n, &e), 0);
    return n;
}

static uint64_t count_of(vstore *s, const char *id)
{
    vagent g;
    qerr e = { 0 };
    assert_int_equal(vstore_agent_get(s, id, &g, &e), 1);
    uint64_t c = g.st.attestation_count;
    vagent_free(&g);
    return c;
}

/* Saves attestation_count = count for id under (owner, epoch); returns whether it was fenced. */
static bool save(vstore *s, const char *id, const char *owner, uint64_t epoch, uint64_t count)
{
    vagent_state st;
    memset(&st, 0, sizeof st);
    snprintf(st.agent_id, sizeof st.agent_id, "%s", id);
    st.operational_state = VSTATE_GET_QUOTE;
    st.pcr10_alg = QHASH_NONE;
    st.severity_level = -1;
    st.attestation_count = count;
    bool fenced = false;
    vstore_round r = { .st = &st, .lease_owner = owner, .lease_epoch = epoch, .fenced = &fenced };
    const vstore_round *rp = &r;
    qerr e = { 0 };
    assert_int_equal(vstore_round_save_batch(s, &rp, 1, &e), 0);
    return fenced;
}

static void test_share_take_release(void **state)
{
    fx *f = *state;
    qerr e = { 0 };
    long live = 0, agents = 0;
    vlease_row *rows = NULL;
    /* agents added without a lease row get one at reclaim */
    assert_int_equal(vstore_lease_reclaim(f->s, "A", &e), 0);
    assert_int_equal(vstore_lease_beat(f->s, "A", "default", 5000, &live, &agents, &e), 0);
    assert_int_equal(live, 1);
    assert_int_equal(agents, 10);
    assert_int_equal(vstore_lease_take(f->s, "A", "default", 10, &e), 0);
    assert_int_equal(mine(f->s, "A", &rows), 10);
    assert_true(rows[0].epoch == 1);
    free(rows);
    /* B joins: both live, B can take nothing while A's heartbeat holds */
    assert_int_equal(vstore_lease_beat(f->s, "B", "default", 5000, &live, &agents, &e), 0);
    assert_int_equal(live, 2);
    assert_int_equal(vstore_lease_take(f->s, "B", "default", 5, &e), 0);
    assert_int_equal(mine(f->s, "B", &rows), 0);
    free(rows);
    /* A releases its surplus (5); B takes them with a new epoch */
    assert_int_equal(mine(f->s, "A", &rows), 10);
    assert_int_equal(vstore_lease_release(f->s, "A", rows + 5, 5, &e), 0);
    free(rows);
    assert_int_equal(vstore_lease_take(f->s, "B", "default", 5, &e), 0);
    assert_int_equal(mine(f->s, "B", &rows), 5);
    assert_true(rows[0].epoch == 2);
    free(rows);
    assert_int_equal(mine(f->s, "A", &rows), 5);
    free(rows);
    /* A's heartbeat expires (ttl in the past): B may take A's agents */
    assert_int_equal(vstore_lease_beat(f->s, "A", "default", -1000, &live, &agents, &e), 0);
    assert_int_equal(live, 1);
    assert_int_equal(vstore_lease_take(f->s, "B", "default", 10, &e), 0);
    assert_int_equal(mine(f->s, "B", &rows), 10);
    free(rows);
    assert_int_equal(mine(f->s, "A", &rows), 0);
    free(rows);
    /* a clean leave frees everything at once */
    assert_int_equal(vstore_lease_leave(f->s, "B", &e), 0);
    assert_int_equal(mine(f->s, "B", &rows), 0);
    free(rows);
    assert_int_equal(vstore_lease_beat(f->s, "C", "default", 5000, &live, &agents, &e), 0);
    assert_int_equal(vstore_lease_take(f->s, "C", "default", 10, &e), 0);
    assert_int_equal(mine(f->s, "C", &rows), 10);
    free(rows);
}

static void test_fence(void **state)
{
    fx *f = *state;
    qerr e = { 0 };
    long live = 0, agents = 0;
    vlease_row *rows = NULL;
    assert_int_equal(vstore_lease_reclaim(f->s, "A", &e), 0);
    assert_int_equal(vstore_lease_beat(f->s, "A", "default", 5000, &live, &agents, &e), 0);
    assert_int_equal(vstore_lease_take(f->s, "A", "default", 10, &e), 0);
    assert_int_equal(mine(f->s, "A", &rows), 10);
    uint64_t ep = rows[0].epoch;
    free(rows);
    /* the owner at its epoch: applied */
    assert_false(save(f->s, "agent-00", "A", ep, 7));
    assert_true(count_of(f->s, "agent-00") == 7);
    /* a wrong epoch or owner: refused, nothing changed */
    assert_true(save(f->s, "agent-00", "A", ep + 1, 8));
    assert_true(save(f->s, "agent-00", "B", ep, 8));
    assert_true(count_of(f->s, "agent-00") == 7);
    /* unfenced saves still work (single-writer tools) */
    assert_false(save(f->s, "agent-00", NULL, 0, 9));
    assert_true(count_of(f->s, "agent-00") == 9);
    /* an API change raises the epoch: the round in flight under the old one is refused */
    char owner[VSTORE_ID_MAX];
    uint64_t ep2 = 0;
    assert_int_equal(vstore_lease_touch(f->s, "agent-00", "X", false, owner, &ep2, &e), 1);
    assert_string_equal(owner, "A");
    assert_true(ep2 == ep + 1);
    assert_true(save(f->s, "agent-00", "A", ep, 10));
    assert_false(save(f->s, "agent-00", "A", ep2, 11));
    assert_true(count_of(f->s, "agent-00") == 11);
    /* a restart of A raises the epoch of what it held: its previous life is fenced */
    assert_int_equal(vstore_lease_reclaim(f->s, "A", &e), 0);
    assert_true(save(f->s, "agent-00", "A", ep2, 12));
    /* a new agent is taken by the instance whose API added it; a gone agent is 0 */
    vagent a;
    sfx_fill_agent(&a, "agent-new", 0);
    assert_int_equal(vstore_agent_add(f->s, &a, &e), 1);
    assert_int_equal(vstore_lease_touch(f->s, "agent-new", "B", true, owner, &ep2, &e), 1);
    assert_string_equal(owner, "B");
    assert_int_equal(vstore_agent_delete(f->s, "agent-new", &e), 1);
    assert_int_equal(vstore_lease_touch(f->s, "agent-new", "B", false, owner, &ep2, &e), 0);
    /* a deleted agent's round is not fenced, just not saved */
    assert_false(save(f->s, "agent-new", "B", ep2, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_share_take_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
