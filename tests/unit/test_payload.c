/* Unit tests for agent/payload*.c: secure directory, decryption, zip checks, script gate.
 * No mount rights needed and no mount made: the tmpfs cases use a directory on /dev/shm (skipped
 * when that is not a tmpfs), and agent_secure_dir_prepare is always called with try_mount false. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <archive.h>
#include <archive_entry.h>

#include "log.h"
#include "payload_crypto.h"
#include "../../agent/payload.h"

static char g_base[128];      /* a temporary directory on /dev/shm, "" when there is no tmpfs */
static char g_secure[192];    /* g_base/secure */
static uint8_t g_k[32];

/* ---- helpers ------------------------------------------------------------------------------ */

static char g_log[8192];
static void sink(void *ctx, qlog_level lvl, const char *module, const char *msg)
{
    (void)ctx; (void)lvl; (void)module;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", msg);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static void rm_tree(const char *p)
{
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static bool is_tmpfs(const char *p)
{
    struct statfs fs;
    return statfs(p, &fs) == 0 && (unsigned long)fs.f_type == (unsigned long)TMPFS_MAGIC;
}

static bool exists(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return lstat(p, &st) == 0;
}

static char *slurp(const char *dir, const char *name)
{
    static char buf[4096];
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

typedef struct zent {
    const char *name;
    char type;              /* 'f' file, 'd' dir, 'l' symlink */
    const char *data;       /* file content, or link target */
} zent;

/* A zip archive (libarchive writer) in a malloc'd buffer. */
static uint8_t *make_zip(const zent *e, size_t n, size_t *len)
{
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_memory(a, buf, cap, len), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ent = archive_entry_new();
        archive_entry_set_pathname(ent, e[i].name);
        if (e[i].type == 'd') {
            archive_entry_set_filetype(ent, AE_IFDIR);
            archive_entry_set_perm(ent, 0755);
        } else if (e[i].type == 'l') {
            archive_entry_set_filetype(ent, AE_IFLNK);
            archive_entry_set_symlink(ent, e[i].data);
            archive_entry_set_perm(ent, 0777);
        } else {
            archive_entry_set_filetype(ent, AE_IFREG);
            archive_entry_set_perm(ent, 0755);
            archive_entry_set_size(ent, (la_int64_t)strlen(e[i].data));
        }
        assert_int_equal(archive_write_header(a, ent), ARCHIVE_OK);
        if (e[i].type == 'f' && *e[i].data)
            assert_int_equal(archive_write_data(a, e[i].data, strlen(e[i].data)), (la_ssize_t)strlen(e[i].data));
        archive_entry_free(ent);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return buf;
}

/* Seal with g_k. */
static uint8_t *seal(const uint8_t *p, size_t n, size_t *len)
{
    uint8_t *s = malloc(n + 32);
    assert_int_equal(qpay_seal(g_k, 32, p, n, s, n + 32, len, NULL), 0);
    return s;
}

static void opts_init(agent_payload_opts *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->secure_dir, sizeof o->secure_dir, "%s", g_secure);
    o->extract_zip = true;
    snprintf(o->script, sizeof o->script, "autorun.sh");
}

/* Deliver a zip of these entries; returns the result with the message in e. */
static int deliver_zip(const agent_payload_opts *o, const zent *ents, size_t n, qerr *e)
{
    size_t zl, sl;
    uint8_t *z = make_zip(ents, n, &zl);
    uint8_t *s = seal(z, zl, &sl);
    int rc = agent_payload_deliver(o, g_k, 32, s, sl, e);
    free(z);
    free(s);
    return rc;
}

#define NEED_TMPFS() do { if (!g_base[0]) skip(); } while (0)

static void assert_secure_empty(void)
{
    assert_false(exists(g_secure, AGENT_PAYLOAD_FILE));
    assert_false(exists(g_secure, AGENT_PAYLOAD_UNZIPPED));
    assert_false(exists(g_secure, ".unzipped.new"));
    assert_false(exists(g_base, "evil.txt"));
}

static int setup(void **state)
{
    (void)state;
    qlog_use_stderr(false);
    qlog_set_sink(sink, NULL);
    for (size_t i = 0; i < sizeof g_k; i++)
        g_k[i] = (uint8_t)(0xa0 + i);
    g_base[0] = '\0';
    if (is_tmpfs("/dev/shm")) {
        snprintf(g_base, sizeof g_base, "/dev/shm/quince-payload-XXXXXX");
        if (!mkdtemp(g_base))
            g_base[0] = '\0';
    }
    snprintf(g_secure, sizeof g_secure, "%s/secure", g_base);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_base[0])
        rm_tree(g_base);
    qlog_set_sink(NULL, NULL);
    return 0;
}

/* Each test starts with a fresh, empty secure directory. */
static int fresh(void **state)
{
    (void)state;
    g_log[0] = '\0';
    if (!g_base[0])
        return 0;
    rm_tree(g_secure);
    char p[256];
    snprintf(p, sizeof p, "%s/evil.txt", g_base);
    unlink(p);
    bool mounted = true;
    qerr e;
    if (agent_secure_dir_prepare(g_secure, 0, false, &mounted, &e) < 0 || mounted)
        return -1;
    return 0;
}

/* ---- secure directory --------------------------------------------------------------------- */

static void test_secure_dir_tmpfs(void **state)
{
    (void)state;
    NEED_TMPFS();
    struct stat st;
    assert_int_equal(stat(g_secure, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    qerr e;
    assert_int_equal(agent_secure_dir_check(g_secure, &e), 0);
    bool mounted = true;
    assert_int_equal(agent_secure_dir_prepare(g_secure, 4096, false, &mounted, &e), 0);   /* again: fine */
    assert_false(mounted);
    agent_secure_dir_release(g_secure, mounted);                                           /* no-op */
    /* a symlink to a tmpfs directory is not accepted */
    char link[256];
    snprintf(link, sizeof link, "%s/link", g_base);
    assert_int_equal(symlink(g_secure, link), 0);
    assert_int_equal(agent_secure_dir_check(link, &e), -1);
    assert_non_null(strstr(e.msg, "symbolic link"));
    unlink(link);
}

static void test_secure_dir_not_tmpfs(void **state)
{
    (void)state;
    const char *bases[] = {"/var/tmp", "/tmp", "."};
    char dir[256] = "";
    for (size_t i = 0; i < 3 && !dir[0]; i++)
        if (!is_tmpfs(bases[i])) {
            snprintf(dir, sizeof dir, "%s/quince-nottmpfs-XXXXXX", bases[i]);
            if (!mkdtemp(dir))
                dir[0] = '\0';
        }
    if (!dir[0])
        skip();
    char sec[300];
    snprintf(sec, sizeof sec, "%s/secure", dir);
    bool mounted = true;
    qerr e;
    assert_int_equal(agent_secure_dir_prepare(sec, 0, false, &mounted, &e), -1);
    assert_false(mounted);
    char want[400];
    snprintf(want, sizeof want, "secure directory %s is not a tmpfs; refusing to write the payload", sec);
    assert_string_equal(e.msg, want);
    /* and the payload step refuses to write there */
    agent_payload_opts o;
    opts_init(&o);
    snprintf(o.secure_dir, sizeof o.secure_dir, "%s", sec);
    size_t sl;
    uint8_t *s = seal((const uint8_t *)"data", 4, &sl);
    assert_int_equal(agent_payload_deliver(&o, g_k, 32, s, sl, &e), -1);
    assert_string_equal(e.msg, want);
    assert_false(exists(sec, AGENT_PAYLOAD_FILE));
    free(s);
    rm_tree(dir);
    /* a missing parent */
    assert_int_equal(agent_secure_dir_prepare("/nonexistent-quince/secure", 0, false, &mounted, &e), -1);
}

/* ---- delivery ----------------------------------------------------------------------------- */

static void test_deliver_plain(void **state)
{
    (void)state;
    NEED_TMPFS();
    agent_payload_opts o;
    opts_init(&o);
    size_t sl;
    uint8_t *s = seal((const uint8_t *)"hello payload\n", 14, &sl);
    qerr e;
    assert_int_equal(agent_payload_deliver(&o, g_k, 32, s, sl, &e), 0);
    assert_string_equal(slurp(g_secure, AGENT_PAYLOAD_FILE), "hello payload\n");
    char p[300];
    snprintf(p, sizeof p, "%s/%s", g_secure, AGENT_PAYLOAD_FILE);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_false(exists(g_secure, AGENT_PAYLOAD_UNZIPPED));
    free(s);
}

static void test_decrypt_failure(void **state)
{
    (void)state;
    NEED_TMPFS();
    agent_payload_opts o;
    opts_init(&o);
    size_t sl;
    uint8_t *s = seal((const uint8_t *)"hello payload\n", 14, &sl);
    qerr e;
    s[20] ^= 0x40;
    assert_int_equal(agent_payload_deliver(&o, g_k, 32, s, sl, &e), -1);
    assert_non_null(strstr(e.msg, "cannot decrypt the payload: payload authentication failed"));
    s[20] ^= 0x40;
    assert_int_equal(agent_payload_deliver(&o, g_k, 32, s, sl - 1, &e), -1);     /* truncated */
    assert_non_null(strstr(e.msg, "payload authentication failed"));
    assert_int_equal(agent_payload_deliver(&o, g_k, 32, s, 10, &e), -1);
    assert_non_null(strstr(e.msg, "truncated"));
    uint8_t wrong[32];
    memcpy(wrong, g_k, 32);
    wrong[0] ^= 1;
    assert_int_equal(agent_payload_deliver(&o, wrong, 32, s, sl, &e), -1);
    assert_non_null(strstr(e.msg, "payload authentication failed"));
    assert_secure_empty();
    free(s);
}

static void test_zip_good(void **state)
{
    (void)state;
    NEED_TMPFS();
    agent_payload_opts o;
    opts_init(&o);
    const zent ents[] = {
        {"a.txt", 'f', "alpha\n"},
        {"d/", 'd', NULL},
        {"sub/deeper/b.txt", 'f', "beta\n"},
        {"./c.txt", 'f', "gamma\n"},
        {"empty.txt", 'f', ""},
    };
    qerr e;
    assert_int_equal(deliver_zip(&o, ents, 5, &e), 0);
    char unz[300];
    snprintf(unz, sizeof unz, "%s/%s", g_secure, AGENT_PAYLOAD_UNZIPPED);
    assert_string_equal(slurp(unz, "a.txt"), "alpha\n");
    assert_string_equal(slurp(unz, "sub/deeper/b.txt"), "beta\n");
    assert_string_equal(slurp(unz, "c.txt"), "gamma\n");
    assert_string_equal(slurp(unz, "empty.txt"), "");
    assert_true(exists(unz, "d"));
    assert_true(exists(g_secure, AGENT_PAYLOAD_FILE));
    assert_false(exists(g_secure, ".unzipped.new"));
    struct stat st;
    assert_int_equal(stat(unz, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    char p[400];
    snprintf(p, sizeof p, "%s/a.txt", unz);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);           /* owner-only */

    /* a new payload replaces the previous files */
    const zent next[] = {{"new.txt", 'f', "new\n"}};
    assert_int_equal(deliver_zip(&o, next, 1, &e), 0);
    assert_false(exists(unz, "a.txt"));
    assert_string_equal(slurp(unz, "new.txt"), "new\n");
    /* a refused one leaves the last good payload alone */
    const zent bad[] = {{"x.txt", 'f', "x"}, {"../evil.txt", 'f', "evil"}};
    assert_int_equal(deliver_zip(&o, bad, 2, &e), -1);
    assert_string_equal(slurp(unz, "new.txt"), "new\n");
    assert_false(exists(unz, "x.txt"));
    /* extract_zip off: the zip stays a file and the old unzipped/ goes */
    o.extract_zip = false;
    assert_int_equal(deliver_zip(&o, ents, 1, &e), 0);
    assert_false(exists(g_secure, AGENT_PAYLOAD_UNZIPPED));
    assert_true(exists(g_secure, AGENT_PAYLOAD_FILE));
}

static void refused(const zent *ents, size_t n, const char *needle)
{
    agent_payload_opts o;
    opts_init(&o);
    o.insecure_payload = true;
    qerr e;
    assert_int_equal(deliver_zip(&o, ents, n, &e), -1);
    if (!strstr(e.msg, needle))
        fail_msg("message '%s' lacks '%s'", e.msg, needle);
    assert_non_null(strstr(e.msg, "zip payload refused"));
    assert_secure_empty();
}

static void test_zip_dotdot(void **state)
{
    (void)state;
    NEED_TMPFS();
    const zent a[] = {{"ok.txt", 'f', "ok"}, {"../evil.txt", 'f', "evil"}};
    refused(a, 2, "escapes the payload directory");
    const zent b[] = {{"sub/../../evil.txt", 'f', "evil"}, {"autorun.sh", 'f', "#!/bin/sh\ntouch ../../evil.txt\n"}};
    refused(b, 2, "escapes");
    const zent c[] = {{"..", 'd', NULL}};
    refused(c, 1, "escapes");
}

static void test_zip_absolute(void **state)
{
    (void)state;
    NEED_TMPFS();
    char abs[256];
    snprintf(abs, sizeof abs, "%s/evil.txt", g_base);
    const zent a[] = {{"ok.txt", 'f', "ok"}, {abs, 'f', "evil"}};
    refused(a, 2, "absolute path");
}

static void test_zip_links(void **state)
{
    (void)state;
    NEED_TMPFS();
    const zent a[] = {{"link", 'l', "../.."}, {"link/evil.txt", 'f', "evil"}};
    refused(a, 2, "symbolic link");
    const zent b[] = {{"inside", 'l', "ok.txt"}};
    refused(b, 1, "symbolic link");
    /* (zip has no hard links: libarchive's zip writer stores one as a plain entry) */
}

static void test_zip_limits(void **state)
{
    (void)state;
    NEED_TMPFS();
    agent_payload_opts o;
    opts_init(&o);
    o.max_entries = 2;
    const zent three[] = {{"a", 'f', "1"}, {"b", 'f', "2"}, {"c", 'f', "3"}};
    qerr e;
    assert_int_equal(deliver_zip(&o, three, 3, &e), -1);
    assert_non_null(strstr(e.msg, "more than 2 entries"));
    assert_secure_empty();
    o.max_entries = 0;
    o.max_unzipped = 10;
    const zent big[] = {{"a", 'f', "123456"}, {"b", 'f', "789012"}};
    assert_int_equal(deliver_zip(&o, big, 2, &e), -1);
    assert_non_null(strstr(e.msg, "more than 10 bytes"));
    assert_secure_empty();
    /* a corrupt zip (right signature, garbage after it) */
    uint8_t junk[64] = {'P', 'K', 3, 4};
    memset(junk + 4, 0x11, sizeof junk - 4);
    size_t sl;
    uint8_t *s = seal(junk, sizeof junk, &sl);
    assert_int_equal(agent_payload_deliver(&o, g_k, 32, s, sl, &e), -1);
    assert_non_null(strstr(e.msg, "zip payload refused"));
    assert_secure_empty();
    free(s);
}

/* The unzip function on its own: dest must be new, and nothing stays behind on failure. */
static void test_unzip_direct(void **state)
{
    (void)state;
    NEED_TMPFS();
    const zent ok[] = {{"f.txt", 'f', "content"}};
    size_t zl;
    uint8_t *z = make_zip(ok, 1, &zl);
    assert_true(agent_payload_is_zip(z, zl));
    assert_false(agent_payload_is_zip((const uint8_t *)"PK", 2));
    assert_false(agent_payload_is_zip((const uint8_t *)"hello", 5));
    char dest[300];
    snprintf(dest, sizeof dest, "%s/u1", g_secure);
    qerr e;
    assert_int_equal(agent_payload_unzip(z, zl, dest, 0, 0, &e), 0);
    assert_string_equal(slurp(dest, "f.txt"), "content");
    assert_int_equal(agent_payload_unzip(z, zl, dest, 0, 0, &e), -1);   /* exists */
    free(z);
    const zent bad[] = {{"f.txt", 'f', "content"}, {"/etc/quince-evil", 'f', "x"}};
    z = make_zip(bad, 2, &zl);
    snprintf(dest, sizeof dest, "%s/u2", g_secure);
    assert_int_equal(agent_payload_unzip(z, zl, dest, 0, 0, &e), -1);
    assert_false(exists(g_secure, "u2"));
    assert_int_equal(access("/etc/quince-evil", F_OK), -1);
    free(z);
}

/* ---- script ------------------------------------------------------------------------------- */

static void test_script_gate(void **state)
{
    (void)state;
    /* script set, mtls, insecure → allowed */
    assert_false(agent_payload_script_allowed(false, false, false));
    assert_false(agent_payload_script_allowed(false, false, true));
    assert_false(agent_payload_script_allowed(false, true, false));
    assert_false(agent_payload_script_allowed(false, true, true));
    assert_false(agent_payload_script_allowed(true, false, false));
    assert_true(agent_payload_script_allowed(true, false, true));
    assert_true(agent_payload_script_allowed(true, true, false));
    assert_true(agent_payload_script_allowed(true, true, true));
}

static const zent AUTORUN[] = {
    {"autorun.sh", 'f', "#!/bin/sh\necho ran > marker\nexit 3\n"},
    {"data.txt", 'f', "d"},
};

/* Deliver AUTORUN with the given switches; returns whether the script ran. */
static bool autorun_ran(const char *script, bool mtls, bool insecure)
{
    agent_payload_opts o;
    opts_init(&o);
    snprintf(o.script, sizeof o.script, "%s", script);
    o.mtls = mtls;
    o.insecure_payload = insecure;
    qerr e;
    g_log[0] = '\0';
    assert_int_equal(deliver_zip(&o, AUTORUN, 2, &e), 0);
    char unz[300];
    snprintf(unz, sizeof unz, "%s/%s", g_secure, AGENT_PAYLOAD_UNZIPPED);
    return exists(unz, "marker");
}

static void test_autorun_matrix(void **state)
{
    (void)state;
    NEED_TMPFS();
    assert_false(autorun_ran("", false, false));
    assert_false(autorun_ran("", true, true));
    assert_false(autorun_ran("autorun.sh", false, false));
    assert_non_null(strstr(g_log, "not run"));
    assert_true(autorun_ran("autorun.sh", false, true));
    assert_non_null(strstr(g_log, "exited with status 3"));
    assert_true(autorun_ran("autorun.sh", true, false));
    assert_true(autorun_ran("autorun.sh", true, true));
    assert_false(autorun_ran("other.sh", true, true));     /* not in the payload: nothing runs */
}

static void test_run_script(void **state)
{
    (void)state;
    NEED_TMPFS();
    char dir[300];
    snprintf(dir, sizeof dir, "%s/scripts", g_secure);
    assert_int_equal(mkdir(dir, 0700), 0);
    char p[400];
    FILE *f;
    snprintf(p, sizeof p, "%s/plain.sh", dir);          /* no "#!": run by /bin/sh, not executable */
    assert_non_null(f = fopen(p, "w"));
    fputs("pwd > where\nexit 7\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/slow.sh", dir);
    assert_non_null(f = fopen(p, "w"));
    fputs("#!/bin/sh\nsleep 30\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/link.sh", dir);
    assert_int_equal(symlink("plain.sh", p), 0);
    int code = -1;
    qerr e;
    assert_int_equal(agent_payload_run_script(dir, "plain.sh", 5000, &code, &e), 0);
    assert_int_equal(code, 7);
    char *where = slurp(dir, "where");
    assert_non_null(where);
    assert_non_null(strstr(where, "/scripts"));
    assert_int_equal(agent_payload_run_script(dir, "slow.sh", 200, &code, &e), -1);
    assert_non_null(strstr(e.msg, "ran longer than 200 ms"));
    assert_int_equal(agent_payload_run_script(dir, "link.sh", 1000, &code, &e), -1);
    assert_non_null(strstr(e.msg, "not a regular file"));
    assert_int_equal(agent_payload_run_script(dir, "../x.sh", 1000, &code, &e), -1);
    assert_non_null(strstr(e.msg, "plain file name"));
    assert_int_equal(agent_payload_run_script(dir, "missing.sh", 1000, &code, &e), -1);
}

/* ---- runner ------------------------------------------------------------------------------- */

static void test_runner(void **state)
{
    (void)state;
    NEED_TMPFS();
    agent_payload_opts o;
    opts_init(&o);
    qerr e;
    agent_payload_runner *r = agent_payload_runner_start(&o, &e);
    assert_non_null(r);
    size_t sl;
    uint8_t *s = seal((const uint8_t *)"via runner", 10, &sl);
    agent_payload_on_key(r, g_k, 32, s, sl);
    assert_int_equal(agent_payload_runner_wait_idle(r), 0);
    assert_string_equal(slurp(g_secure, AGENT_PAYLOAD_FILE), "via runner");
    s[sl - 1] ^= 1;                                    /* a tag that does not verify */
    assert_int_equal(agent_payload_runner_submit(r, g_k, 32, s, sl), 0);
    assert_int_equal(agent_payload_runner_wait_idle(r), 1);
    assert_non_null(strstr(g_log, "payload not delivered: cannot decrypt the payload"));
    assert_string_equal(slurp(g_secure, AGENT_PAYLOAD_FILE), "via runner");
    assert_int_equal(agent_payload_runner_submit(r, g_k, 32, NULL, 0), 0);   /* no payload */
    assert_int_equal(agent_payload_runner_wait_idle(r), 1);
    /* a queued job left at stop is dropped without a leak */
    s[sl - 1] ^= 1;
    assert_int_equal(agent_payload_runner_submit(r, g_k, 32, s, sl), 0);
    agent_payload_runner_stop(r);
    agent_payload_runner_stop(NULL);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_secure_dir_tmpfs, fresh),
        cmocka_unit_test_setup(test_secure_dir_not_tmpfs, fresh),
        cmocka_unit_test_setup(test_deliver_plain, fresh),
        cmocka_unit_test_setup(test_decrypt_failure, fresh),
        cmocka_unit_test_setup(test_zip_good, fresh),
        cmocka_unit_test_setup(test_zip_dotdot, fresh),
        cmocka_unit_test_setup(test_zip_absolute, fresh),
        cmocka_unit_test_setup(test_zip_links, fresh),
        cmocka_unit_test_setup(test_zip_limits, fresh),
        cmocka_unit_test_setup(test_unzip_direct, fresh),
        cmocka_unit_test_setup(test_script_gate, fresh),
        cmocka_unit_test_setup(test_autorun_matrix, fresh),
        cmocka_unit_test_setup(test_run_script, fresh),
        cmocka_unit_test_setup(test_runner, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
