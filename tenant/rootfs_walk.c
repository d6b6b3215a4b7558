/* rootfs_walk.c — list the files of a root file system for create-allowlist (fts, no symlink
 * following): regular files and symlinks (resolved at hash time), owned by root unless asked
 * otherwise, with Keylime's top-level skips, the user's skip paths, pseudo file systems and other
 * mounts left out (see allowlist_build.h). */
#include <errno.h>
#include <fts.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include "allowlist_build.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CONFIGFS_MAGIC
#define CONFIGFS_MAGIC 0x62656570
#endif
#ifndef FUSECTL_SUPER_MAGIC
#define FUSECTL_SUPER_MAGIC 0x65735543
#endif
#ifndef MQUEUE_MAGIC
#define MQUEUE_MAGIC 0x19800202
#endif
#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

/* Top-level entries Keylime's create_runtime_policy.sh leaves out. */
static const char *const top_skips[] = {
    "sys", "run", "proc", "lost+found", "dev", "media", "snap", "mnt", "var", "tmp",
};

bool qal_pseudo_fs(long f_type)
{
    static const long types[] = {
        PROC_SUPER_MAGIC, SYSFS_MAGIC, TMPFS_MAGIC, RAMFS_MAGIC, DEVPTS_SUPER_MAGIC,
        CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, DEBUGFS_MAGIC, SECURITYFS_MAGIC, SELINUX_MAGIC,
        SMACK_MAGIC, TRACEFS_MAGIC, BPF_FS_MAGIC, PSTOREFS_MAGIC, EFIVARFS_MAGIC,
        HUGETLBFS_MAGIC, MQUEUE_MAGIC, CONFIGFS_MAGIC, FUSECTL_SUPER_MAGIC, NSFS_MAGIC,
        BINFMTFS_MAGIC, AUTOFS_SUPER_MAGIC, SOCKFS_MAGIC, PIPEFS_MAGIC,
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if ((unsigned long)f_type == (unsigned long)types[i])
            return true;
    return false;
}

static bool top_skipped(const char *name)
{
    for (size_t i = 0; i < sizeof top_skips / sizeof top_skips[0]; i++)
        if (strcmp(name, top_skips[i]) == 0)
            return true;
    return false;
}

static bool user_skipped(const qal_walk_opts *o, const char *rel)
{
    for (size_t i = 0; i < o->nskips; i++)
        if (strcmp(rel, o->skips[i]) == 0)
            return true;
    return false;
}

static void warn(const char *path, int e, size_t *warnings)
{
    fprintf(stderr, "quince-tenant: create-allowlist: warning: skipping %s: %s\n", path, strerror(e));
    (*warnings)++;
}

int qal_walk_rootfs(const qal_walk_opts *o, qal_list *l, size_t *warnings, qerr *err)
{
    char root[QAL_MAX_PATH + 1];
    size_t rlen = strlen(o->rootfs);
    if (rlen == 0 || rlen > QAL_MAX_PATH)
        return qerr_set(err, "rootfs: bad path '%s'", o->rootfs);
    memcpy(root, o->rootfs, rlen + 1);
    while (rlen > 1 && root[rlen - 1] == '/')
        root[--rlen] = '\0';
    size_t plen = strcmp(root, "/") == 0 ? 0 : rlen;   /* prefix stripped from every path */

    struct stat rst;
    if (stat(root, &rst) < 0)
        return qerr_set(err, "rootfs %s: %s", o->rootfs, strerror(errno));
    if (!S_ISDIR(rst.st_mode))
        return qerr_set(err, "rootfs %s: not a directory", o->rootfs);

    char *paths[2] = { root, NULL };
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    if (!fts)
        return qerr_set(err, "rootfs %s: %s", o->rootfs, strerror(errno));
    int rc = 0;
    char name[QAL_MAX_PATH + 1];
    FTSENT *e;
    errno = 0;
    while ((e = fts_read(fts)) != NULL) {
        if (e->fts_level == 0) {
            if (e->fts_info == FTS_DNR || e->fts_info == FTS_ERR || e->fts_info == FTS_NS) {
                rc = qerr_set(err, "rootfs %s: %s", o->rootfs, strerror(e->fts_errno));
                break;
            }
            continue;
        }
        const char *rel = e->fts_path + plen;
        if (e->fts_info == FTS_DP)
            continue;
        bool skip = (e->fts_level == 1 && top_skipped(e->fts_name)) || user_skipped(o, rel);
        switch (e->fts_info) {
        case FTS_D:
            if (!skip && e->fts_statp->st_dev != rst.st_dev) {
                if (!o->cross_mounts) {
                    skip = true;
                } else {
                    struct statfs sf;
                    skip = statfs(e->fts_accpath, &sf) < 0 || qal_pseudo_fs((long)sf.f_type);
                }
            }
            if (skip)
                fts_set(fts, e, FTS_SKIP);
            break;
        case FTS_F:
        case FTS_SL:
            if (skip || (!o->any_owner && e->fts_statp->st_uid != 0))
                break;
            if (qal_log_path(rel, strlen(rel), name, sizeof name) < 0) {
                fprintf(stderr, "quince-tenant: create-allowlist: warning: skipping %s: name too "
                        "long or holds a newline\n", e->fts_path);
                (*warnings)++;
                break;
            }
            long idx = qal_add(l, rel, strlen(rel), rel, NULL, 0, err);
            if (idx < 0) {
                rc = -1;
                goto out;
            }
            l->items[idx].link = e->fts_info == FTS_SL;
            break;
        case FTS_DNR:
        case FTS_ERR:
        case FTS_NS:
            if (!skip)
                warn(e->fts_path, e->fts_errno, warnings);
            break;
        default:            /* devices, fifos, sockets, dangling links, cycles */
            break;
        }
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = qerr_set(err, "rootfs %s: %s", o->rootfs, strerror(errno));
out:
    fts_close(fts);
    return rc;
}
