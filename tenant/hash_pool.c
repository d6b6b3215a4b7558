/* hash_pool.c — hash the pending files of a qal_list on a pthread pool (see allowlist_build.h).
 * Workers take the next index from an atomic counter; each owns one EVP_MD_CTX and one read
 * buffer, so the per-file path allocates nothing. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/openat2.h>
#include "allowlist_build.h"

struct pool {
    qal_list *l;
    const EVP_MD *md;
    int rootfd;
    dev_t rootdev;
    atomic_size_t next;
    atomic_size_t done;
    atomic_uint running;
};

static atomic_int have_openat2 = 1;

/* Open path (absolute, relative to the rootfs) with every symlink resolved inside the rootfs.
 * Kernels before 5.6 lack openat2: absolute link targets then resolve on the host. */
static int open_in_root(int rootfd, const char *path)
{
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    if (atomic_load(&have_openat2)) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = (unsigned long long)flags;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS)
            return (int)fd;
        atomic_store(&have_openat2, 0);
    }
    while (*path == '/')
        path++;
    return openat(rootfd, *path ? path : ".", flags);
}

static int hash_fd(int fd, EVP_MD_CTX *ctx, const EVP_MD *md, uint8_t *buf, uint8_t *out)
{
    if (!EVP_DigestInit_ex(ctx, md, NULL))
        return EIO;
    for (;;) {
        ssize_t n = read(fd, buf, QAL_BLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            break;
        if (!EVP_DigestUpdate(ctx, buf, (size_t)n))
            return EIO;
    }
    unsigned len = 0;
    return EVP_DigestFinal_ex(ctx, out, &len) ? 0 : EIO;
}

static void hash_item(struct pool *p, qal_item *it, EVP_MD_CTX *ctx, uint8_t *buf)
{
    int fd = open_in_root(p->rootfd, qal_str(p->l, it->src));
    if (fd < 0) {
        /* a link that dangles (inside the rootfs) or loops is left out, as find -xtype f does */
        if (it->link && (errno == ENOENT || errno == ELOOP || errno == ENOTDIR || errno == EXDEV))
            it->status = QAL_SKIPPED;
        else
            it->status = errno ? errno : EIO;
        return;
    }
    struct stat st;
    struct statfs sf;
    if (fstat(fd, &st) < 0) {
        it->status = errno;
    } else if (!S_ISREG(st.st_mode)) {
        it->status = QAL_SKIPPED;
    } else if (st.st_dev != p->rootdev && fstatfs(fd, &sf) == 0 && qal_pseudo_fs((long)sf.f_type)) {
        it->status = QAL_SKIPPED;
    } else {
        int e = hash_fd(fd, ctx, p->md, buf, it->digest);
        it->status = e ? e : QAL_DONE;
    }
    close(fd);
}

static void *worker(void *arg)
{
    struct pool *p = arg;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *buf = malloc(QAL_BLOCK);
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->l->n)
            break;
        qal_item *it = &p->l->items[i];
        if (it->status != QAL_PENDING || it->src == QAL_NONE)
            continue;
        if (!ctx || !buf)
            it->status = ENOMEM;
        else
            hash_item(p, it, ctx, buf);
        atomic_fetch_add(&p->done, 1);
    }
    free(buf);
    EVP_MD_CTX_free(ctx);
    atomic_fetch_sub(&p->running, 1);
    return NULL;
}

int qal_hash_files(qal_list *l, int rootfd, qhash_alg alg, unsigned jobs, bool progress, qerr *err)
{
    size_t pending = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].status == QAL_PENDING && l->items[i].src != QAL_NONE)
            pending++;
    if (pending == 0)
        return 0;
    struct pool p = { .l = l, .md = qhash_md(alg), .rootfd = rootfd };
    if (!p.md)
        return qerr_set(err, "hash algorithm %s is not available", qhash_name(alg));
    struct stat rst;
    if (fstat(rootfd, &rst) < 0)
        return qerr_set(err, "rootfs: %s", strerror(errno));
    p.rootdev = rst.st_dev;
    atomic_init(&p.next, 0);
    atomic_init(&p.done, 0);
    if (jobs < 1)
        jobs = 1;
    if (jobs > QAL_MAX_JOBS)
        jobs = QAL_MAX_JOBS;
    if (jobs > pending)
        jobs = (unsigned)pending;
    atomic_init(&p.running, jobs);

    pthread_t tids[QAL_MAX_JOBS];
    unsigned started = 0;
    for (; started < jobs; started++) {
        if (pthread_create(&tids[started], NULL, worker, &p) != 0)
            break;
    }
    if (started < jobs)
        atomic_fetch_sub(&p.running, jobs - started);
    if (started == 0)
        return qerr_set(err, "cannot start hashing threads");

    if (progress) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        while (atomic_load(&p.running) > 0) {
            fprintf(stderr, "\rcreate-allowlist: hashed %zu/%zu files", atomic_load(&p.done), pending);
            nanosleep(&ts, NULL);
        }
        fprintf(stderr, "\rcreate-allowlist: hashed %zu/%zu files\n", atomic_load(&p.done), pending);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    return 0;
}
