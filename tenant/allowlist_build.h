/* allowlist_build.h — the parts of `quince-tenant create-allowlist` (keylime-formats §7).
 * A qal_list collects (log path, digest) items: a root file system walk adds one pending item per
 * file to hash (rootfs_walk.c), a pthread pool hashes the pending items (hash_pool.c), and
 * initramfs images add items already hashed while unpacking (initramfs.c). Paths are stored as
 * the kernel logs them: absolute, '//' collapsed, ' ' replaced by '_'. All strings live in one
 * arena (offsets, so it can grow); the list is bounded by QAL_MAX_ITEMS / QAL_MAX_ARENA.
 * These functions print warnings (not errors) on stderr; errors go into the qerr. */
#ifndef QUINCE_ALLOWLIST_BUILD_H
#define QUINCE_ALLOWLIST_BUILD_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "err.h"
#include "pcr_bank.h"

#define QAL_MAX_ITEMS   (20u * 1000 * 1000)          /* files in one allowlist */
#define QAL_MAX_ARENA   ((size_t)2 << 30)            /* bytes of path strings */
#define QAL_MAX_PATH    4096                          /* longest path (PATH_MAX) */
#define QAL_MAX_UNPACKED ((size_t)4 << 30)           /* one decompressed initramfs segment */
#define QAL_MAX_JOBS    256
#define QAL_BLOCK       (1u << 20)                    /* read size when hashing files */

#define QAL_NONE ((size_t)-1)

enum {
    QAL_PENDING = -1,   /* not hashed yet */
    QAL_DONE = 0,       /* digest valid */
    QAL_SKIPPED = -2    /* silently left out (dangling link, link to a non-file, pseudo fs) */
};                      /* > 0: an errno, the file could not be read (warned, counted) */

typedef struct qal_item {
    size_t path;                      /* arena offset of the log path */
    size_t src;                       /* arena offset of the path inside the rootfs, or QAL_NONE */
    int status;
    bool link;                        /* a symlink: a target that is not a regular file is skipped */
    uint8_t digest[QHASH_MAX_SIZE];
} qal_item;

typedef struct qal_list {
    char *arena; size_t arena_len, arena_cap;
    qal_item *items; size_t n, cap;
} qal_list;

/* Normalise a path the way the kernel logs it into out (capacity cap, NUL-terminated): a leading
 * '/', runs of '/' collapsed, ' ' → '_'. Returns the length, or -1 if it does not fit or the
 * path holds a newline or a NUL (such a name cannot appear in an allowlist). */
long qal_log_path(const char *in, size_t len, char *out, size_t cap);

/* Append an item. path is normalised with qal_log_path; src (may be NULL) is stored verbatim.
 * With digest != NULL the item is QAL_DONE with that digest (dlen bytes), else QAL_PENDING.
 * Returns the new index, or -1 (bad path, list full). */
long qal_add(qal_list *l, const char *path, size_t len, const char *src, const uint8_t *digest,
             size_t dlen, qerr *err);
static inline const char *qal_str(const qal_list *l, size_t off) { return l->arena + off; }
void qal_free(qal_list *l);
/* Sort the QAL_DONE items by (path, digest) bytewise and drop exact duplicates; other items are
 * removed. dlen is the digest size used for every item. */
void qal_sort_unique(qal_list *l, size_t dlen);

/* Root file system walk (no hashing). Adds a pending item per regular file and per symlink
 * (resolved later, inside the rootfs), owned by uid 0 unless any_owner. Skips the top-level
 * sys run proc lost+found dev media snap mnt var tmp, the `skips` (paths relative to the rootfs,
 * "/opt/x"), pseudo file systems, and directories on another device unless cross_mounts (then
 * only pseudo file systems are skipped). *warnings counts unreadable directories/entries. */
typedef struct qal_walk_opts {
    const char *rootfs;
    const char *const *skips; size_t nskips;
    bool any_owner;
    bool cross_mounts;
} qal_walk_opts;
int qal_walk_rootfs(const qal_walk_opts *o, qal_list *l, size_t *warnings, qerr *err);

/* Hash every QAL_PENDING item whose src is set, opening src relative to rootfd with symlinks
 * resolved inside that root (openat2 RESOLVE_IN_ROOT), on `jobs` threads with a per-thread
 * EVP_MD_CTX and QAL_BLOCK buffer. Unreadable files get their errno as status; links to
 * non-files and files on pseudo file systems become QAL_SKIPPED. With progress, a counter is
 * drawn on stderr. Returns 0, or -1 if the pool could not start. */
int qal_hash_files(qal_list *l, int rootfd, qhash_alg alg, unsigned jobs, bool progress, qerr *err);
/* true for procfs, sysfs, tmpfs/devtmpfs, cgroup, debugfs, ... (statfs f_type). */
bool qal_pseudo_fs(long f_type);

/* Every regular file of every archive in an initramfs image (concatenated cpio archives, each
 * optionally compressed, with zero padding between them) → a QAL_DONE item "/<member path>".
 * Returns 0, or -1 for an unreadable or corrupt image (message names the file). */
int qal_read_initramfs(const char *file, qhash_alg alg, qal_list *l, qerr *err);

#endif
