/* store_fixture.h — set-up shared by the store's unit tests (header-only, test code only):
 * a private temp dir for a database file, opening a store or failing the test, removing the dir,
 * a plain agent record, and a name collector for the list calls. Include after <cmocka.h>. */
#ifndef QUINCE_TEST_STORE_FIXTURE_H
#define QUINCE_TEST_STORE_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../verifier/store.h"

#define EVIL_ID "x'); drop table agents;--"   /* lower case: agent ids are keyed in lower case */
#define SUM_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SUM_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define BODY_A "{\"meta\": {\"version\": 1}, \"digests\": {\"/a\": [\"00\"]}}"
#define BODY_B "{\"meta\": {\"version\": 1}, \"digests\": {\"/b\": [\"11\"]}}"

/* Makes a fresh dir from tmpl ("/tmp/name.XXXXXX") into dir and names the database file in it. */
static inline void sfx_tmpdir(char *dir, size_t dcap, char *path, size_t pcap, const char *tmpl)
{
    snprintf(dir, dcap, "%s", tmpl);
    assert_non_null(mkdtemp(dir));
    snprintf(path, pcap, "%s/verifier.sqlite", dir);
}

static inline int sfx_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* Removes dir and all below it (made writable first: some tests take its write bit away). */
static inline void sfx_rm_tree(const char *dir)
{
    chmod(dir, 0700);
    nftw(dir, sfx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline vstore *sfx_open(const char *path)
{
    qerr e = { 0 };
    vstore *s = vstore_open(path, &e);
    if (!s)
        fail_msg("vstore_open %s: %s", path, e.msg);
    return s;
}

/* An agent in state Start that every engine accepts; the strings are borrowed literals. */
static inline void sfx_fill_agent(vagent *a, const char *id, long policy_id)
{
    memset(a, 0, sizeof *a);
    snprintf(a->agent_id, sizeof a->agent_id, "%s", id);
    snprintf(a->st.agent_id, sizeof a->st.agent_id, "%s", id);
    a->ip = "127.0.0.1";
    a->port = 9002;
    a->ak_tpm = "AAEACw==";
    a->mtls_cert = "disabled";
    a->tpm_policy = "{\"mask\": \"0x400\"}";
    a->policy_id = policy_id;
    a->meta_data = "{}";
    a->accept_tpm_hash_algs = "[\"sha256\"]";
    a->supported_version = "2.2";
    a->verifier_id = "default";
    a->st.operational_state = VSTATE_START;
    a->st.pcr10_alg = QHASH_NONE;
    a->st.severity_level = -1;
}

/* Collects list callbacks into a newline-joined string; stops after stop_after when it is set. */
typedef struct names {
    char text[4096];
    int n, stop_after;
} names;

static inline int collect_name(void *ctx, const char *name)
{
    names *l = ctx;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof l->text - len, "%s\n", name);
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

#endif
