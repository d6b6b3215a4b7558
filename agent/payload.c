/* payload.c — secure directory, the payload step and its runner thread; see payload.h.
 * Unpacking is in payload_zip.c, the script in payload_script.c. */
#include "payload.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "log.h"
#include "payload_crypto.h"

#define MOD "agent"

/* ---- secure directory --------------------------------------------------------------------- */

static int not_tmpfs(const char *path, qerr *err)
{
    return qerr_set(err, "secure directory %s is not a tmpfs; refusing to write the payload", path);
}

int agent_secure_dir_check(const char *path, qerr *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return qerr_set(err, "secure directory %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return qerr_set(err, "secure directory %s is not a directory%s", path,
                        S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
    struct statfs fs;
    if (statfs(path, &fs) < 0)
        return qerr_set(err, "secure directory %s: statfs: %s", path, strerror(errno));
    if ((unsigned long)fs.f_type != (unsigned long)TMPFS_MAGIC)
        return not_tmpfs(path, err);
    return 0;
}

int agent_secure_dir_prepare(const char *path, size_t size, bool try_mount, bool *mounted, qerr *err)
{
    *mounted = false;
    if (!path || !*path || strlen(path) >= AGENT_PAYLOAD_DIR_MAX)
        return qerr_set(err, "secure directory: no usable path");
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return qerr_set(err, "cannot create secure directory %s: %s", path, strerror(errno));
    qerr e;
    if (agent_secure_dir_check(path, &e) == 0) {
        if (chmod(path, 0700) < 0)
            return qerr_set(err, "cannot set mode 0700 on secure directory %s: %s", path, strerror(errno));
        return 0;
    }
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return qerr_set(err, "%s", e.msg);
    if (!try_mount)
        return not_tmpfs(path, err);
    char opts[64];
    snprintf(opts, sizeof opts, "size=%zu,mode=0700", size ? size : (size_t)AGENT_SECURE_SIZE_DEFAULT);
    if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
        int m = errno;
        if (m == EPERM || m == EACCES)
            return qerr_set(err, "secure directory %s is not a tmpfs and mounting one is not permitted (%s); "
                                 "refusing to write the payload", path, strerror(m));
        return qerr_set(err, "cannot mount a tmpfs on secure directory %s: %s", path, strerror(m));
    }
    *mounted = true;
    if (agent_secure_dir_check(path, err) < 0) {
        umount2(path, MNT_DETACH);
        *mounted = false;
        return -1;
    }
    qlog(QLOG_INFO, MOD, "mounted a tmpfs on secure directory %s (%s)", path, opts);
    return 0;
}

void agent_secure_dir_release(const char *path, bool mounted)
{
    if (mounted && umount2(path, MNT_DETACH) < 0)
        qlog(QLOG_WARNING, MOD, "cannot unmount secure directory %s: %s", path, strerror(errno));
}

/* ---- the step ----------------------------------------------------------------------------- */

/* out = a "/" pre b post; -1 when it does not fit. */
static int join(char *out, size_t cap, const char *a, const char *pre, const char *b, const char *post)
{
    int n = snprintf(out, cap, "%s/%s%s%s", a, pre, b, post);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

/* Remove a path (a tree: never following symlinks or crossing mounts); missing is fine. */
static int rm_path(const char *p, qerr *err)
{
    struct stat st;
    if (lstat(p, &st) < 0)
        return errno == ENOENT ? 0 : qerr_set(err, "cannot inspect %s: %s", p, strerror(errno));
    if (nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 || lstat(p, &st) == 0)
        return qerr_set(err, "cannot remove %s", p);
    return 0;
}

/* Write a new file (0600) next to `path` and rename it over `path`. */
static int write_file(const char *dir, const char *name, const uint8_t *data, size_t n, qerr *err)
{
    char path[AGENT_PAYLOAD_DIR_MAX + 64], tmp[AGENT_PAYLOAD_DIR_MAX + 64];
    if (join(path, sizeof path, dir, "", name, "") < 0 || join(tmp, sizeof tmp, dir, ".", name, ".new") < 0)
        return qerr_set(err, "path too long in %s", dir);
    if (rm_path(tmp, err) < 0)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return qerr_set(err, "cannot create %s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            close(fd);
            unlink(tmp);
            return qerr_set(err, "cannot write %s: %s", tmp, strerror(e));
        }
        off += (size_t)w;
    }
    if (close(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return qerr_set(err, "cannot write %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return qerr_set(err, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return 0;
}

/* The script step after a zip was unpacked into dir/unzipped. */
static void maybe_run_script(const agent_payload_opts *o, const char *unzipped)
{
    if (!o->script[0])
        return;
    char p[AGENT_PAYLOAD_DIR_MAX + AGENT_PAYLOAD_SCRIPT_MAX + 2];
    struct stat st;
    if (join(p, sizeof p, unzipped, "", o->script, "") < 0 || lstat(p, &st) < 0)
        return;                                   /* the payload has no script */
    if (!agent_payload_script_allowed(true, o->mtls, o->insecure_payload)) {
        qlog(QLOG_WARNING, MOD, "payload script %s not run: mTLS is off and enable_insecure_payload is false "
                                "(anyone who sniffed V could run it)", o->script);
        return;
    }
    qerr e;
    int code = -1;
    qlog(QLOG_INFO, MOD, "running payload script %s in %s", o->script, unzipped);
    if (agent_payload_run_script(unzipped, o->script, o->script_timeout_ms, &code, &e) < 0)
        qlog(QLOG_ERROR, MOD, "%s", e.msg);
    else if (code != 0)
        qlog(QLOG_WARNING, MOD, "payload script %s exited with status %d", o->script, code);
    else
        qlog(QLOG_INFO, MOD, "payload script %s exited with status 0", o->script);
}

int agent_payload_deliver(const agent_payload_opts *o, const uint8_t *k, size_t klen, const uint8_t *sealed,
                          size_t n, qerr *err)
{
    if (agent_secure_dir_check(o->secure_dir, err) < 0)
        return -1;
    char dir[PATH_MAX];
    if (!realpath(o->secure_dir, dir) || strlen(dir) >= AGENT_PAYLOAD_DIR_MAX)
        return qerr_set(err, "secure directory %s cannot be resolved", o->secure_dir);
    if (n < QPAY_OVERHEAD)
        return qerr_set(err, "cannot decrypt the payload: payload authentication failed (%zu bytes: truncated)", n);
    size_t cap = n - QPAY_OVERHEAD, plen = 0;
    uint8_t *plain = malloc(cap ? cap : 1);
    if (!plain)
        return qerr_set(err, "out of memory");
    int rc = -1;
    char unz[AGENT_PAYLOAD_DIR_MAX + 32], staging[AGENT_PAYLOAD_DIR_MAX + 32];
    if (join(unz, sizeof unz, dir, "", AGENT_PAYLOAD_UNZIPPED, "") < 0 ||
        join(staging, sizeof staging, dir, ".", AGENT_PAYLOAD_UNZIPPED, ".new") < 0) {
        free(plain);
        return qerr_set(err, "secure directory path %s is too long", dir);
    }
    if (qpay_open(k, klen, sealed, n, plain, cap, &plen, err) < 0) {
        qerr_prefix(err, "cannot decrypt the payload");
        goto out;
    }
    bool zip = o->extract_zip && agent_payload_is_zip(plain, plen);
    if (zip && (rm_path(staging, err) < 0 ||
                agent_payload_unzip(plain, plen, staging, o->max_unzipped, o->max_entries, err) < 0))
        goto out;
    if (write_file(dir, AGENT_PAYLOAD_FILE, plain, plen, err) < 0) {
        if (zip)
            rm_path(staging, NULL);
        goto out;
    }
    if (rm_path(unz, err) < 0) {                  /* the previous payload's files */
        if (zip)
            rm_path(staging, NULL);
        goto out;
    }
    if (zip && rename(staging, unz) < 0) {
        qerr_set(err, "cannot rename %s to %s: %s", staging, unz, strerror(errno));
        rm_path(staging, NULL);
        goto out;
    }
    qlog(QLOG_INFO, MOD, "payload decrypted into %s/%s (%zu bytes)%s", dir, AGENT_PAYLOAD_FILE, plen,
         zip ? " and unpacked into " AGENT_PAYLOAD_UNZIPPED "/" : "");
    if (zip)
        maybe_run_script(o, unz);
    rc = 0;
out:
    OPENSSL_cleanse(plain, cap ? cap : 1);
    free(plain);
    return rc;
}

/* ---- runner ------------------------------------------------------------------------------- */

struct agent_payload_runner {
    agent_payload_opts o;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop, busy, queued;
    uint8_t k[QPAY_KEY_MAX];         /* the queued job */
    size_t klen;
    uint8_t *sealed;
    size_t n;
    unsigned long failed;
};

static void *runner_main(void *arg)
{
    agent_payload_runner *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->stop && !r->queued)
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->stop)
            break;
        uint8_t k[QPAY_KEY_MAX];
        size_t klen = r->klen, n = r->n;
        uint8_t *sealed = r->sealed;
        memcpy(k, r->k, sizeof k);
        OPENSSL_cleanse(r->k, sizeof r->k);
        r->sealed = NULL;
        r->queued = false;
        r->busy = true;
        pthread_mutex_unlock(&r->lock);

        qerr e;
        int rc = agent_payload_deliver(&r->o, k, klen, sealed, n, &e);
        if (rc < 0)
            qlog(QLOG_ERROR, MOD, "payload not delivered: %s", e.msg);
        OPENSSL_cleanse(k, sizeof k);
        free(sealed);

        pthread_mutex_lock(&r->lock);
        if (rc < 0)
            r->failed++;
        r->busy = false;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

agent_payload_runner *agent_payload_runner_start(const agent_payload_opts *o, qerr *err)
{
    agent_payload_runner *r = calloc(1, sizeof(*r));
    if (!r)
        return qerr_set(err, "out of memory"), NULL;
    r->o = *o;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return qerr_set(err, "payload runner: cannot create a mutex"), NULL;
    }
    if (pthread_cond_init(&r->cond, NULL) != 0) {
        pthread_mutex_destroy(&r->lock);
        free(r);
        return qerr_set(err, "payload runner: cannot create a condition variable"), NULL;
    }
    int e = pthread_create(&r->thread, NULL, runner_main, r);
    if (e != 0) {
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return qerr_set(err, "payload runner: cannot start a thread: %s", strerror(e)), NULL;
    }
    return r;
}

int agent_payload_runner_submit(agent_payload_runner *r, const uint8_t *k, size_t klen, const uint8_t *payload,
                                size_t n)
{
    if (!payload) {
        qlog(QLOG_INFO, MOD, "bootstrap key available; no payload came with it");
        return 0;
    }
    if (klen > QPAY_KEY_MAX)
        return -1;
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) {
        qlog(QLOG_ERROR, MOD, "payload not delivered: out of memory");
        return -1;
    }
    memcpy(copy, payload, n);
    pthread_mutex_lock(&r->lock);
    if (r->stop) {
        pthread_mutex_unlock(&r->lock);
        free(copy);
        return -1;
    }
    if (r->queued) {
        qlog(QLOG_INFO, MOD, "a newer payload replaces one not yet delivered");
        free(r->sealed);
    }
    memcpy(r->k, k, klen);
    r->klen = klen;
    r->sealed = copy;
    r->n = n;
    r->queued = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

void agent_payload_on_key(void *runner, const uint8_t *k, size_t klen, const uint8_t *payload, size_t n)
{
    agent_payload_runner_submit(runner, k, klen, payload, n);
}

unsigned long agent_payload_runner_wait_idle(agent_payload_runner *r)
{
    pthread_mutex_lock(&r->lock);
    while (r->queued || r->busy)
        pthread_cond_wait(&r->cond, &r->lock);
    unsigned long f = r->failed;
    pthread_mutex_unlock(&r->lock);
    return f;
}

void agent_payload_runner_stop(agent_payload_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    free(r->sealed);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}
