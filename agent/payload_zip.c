/* payload_zip.c — unpacking a zip payload with libarchive, refusing the whole archive on any
 * entry that could leave the destination; see payload.h. */
#include "payload.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <archive.h>
#include <archive_entry.h>

#define NAME_MAX_LEN 1024     /* longest entry name accepted */

bool agent_payload_is_zip(const uint8_t *p, size_t n)
{
    return n >= 4 && p[0] == 'P' && p[1] == 'K' &&
           ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6));
}

static struct archive *zip_reader(const uint8_t *zip, size_t n, qerr *err)
{
    struct archive *a = archive_read_new();
    if (!a) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    if (archive_read_support_format_zip_seekable(a) != ARCHIVE_OK ||
        archive_read_open_memory(a, zip, n) != ARCHIVE_OK) {
        qerr_set(err, "the payload is not a readable zip archive: %s", archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* A relative name whose components are never ".."; "." and empty components are harmless. */
static int check_name(const char *name, qerr *err)
{
    if (!name || !*name)
        return qerr_set(err, "zip entry without a name");
    size_t n = strlen(name);
    if (n > NAME_MAX_LEN)
        return qerr_set(err, "zip entry name longer than %d characters", NAME_MAX_LEN);
    if (name[0] == '/')
        return qerr_set(err, "zip entry '%.200s' has an absolute path", name);
    for (const char *p = name; *p;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return qerr_set(err, "zip entry '%.200s' escapes the payload directory ('..')", name);
        p += len;
        if (*p == '/')
            p++;
    }
    return 0;
}

/* Checks of one entry; *declared gets its size when the archive states it. */
static int check_entry(struct archive_entry *ent, size_t *declared, qerr *err)
{
    const char *name = archive_entry_pathname(ent);
    if (check_name(name, err) < 0)
        return -1;
    if (archive_entry_hardlink(ent))
        return qerr_set(err, "zip entry '%.200s' is a hard link", name);
    mode_t t = archive_entry_filetype(ent);
    if (t == AE_IFLNK)
        return qerr_set(err, "zip entry '%.200s' is a symbolic link", name);
    if (t != AE_IFREG && t != AE_IFDIR)
        return qerr_set(err, "zip entry '%.200s' is neither a file nor a directory", name);
    *declared = 0;
    if (t == AE_IFREG && archive_entry_size_is_set(ent)) {
        la_int64_t s = archive_entry_size(ent);
        if (s < 0)
            return qerr_set(err, "zip entry '%.200s' has a negative size", name);
        *declared = (size_t)s;
    }
    return 0;
}

/* First pass: headers only. */
static int scan(const uint8_t *zip, size_t n, size_t max_total, size_t max_entries, qerr *err)
{
    struct archive *a = zip_reader(zip, n, err);
    if (!a)
        return -1;
    struct archive_entry *ent;
    size_t count = 0, total = 0;
    int r, rc = 0;
    while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        size_t declared;
        if (++count > max_entries) {
            rc = qerr_set(err, "the zip payload has more than %zu entries", max_entries);
            break;
        }
        if (check_entry(ent, &declared, err) < 0) {
            rc = -1;
            break;
        }
        if (declared > max_total - total) {
            rc = qerr_set(err, "the zip payload unpacks to more than %zu bytes", max_total);
            break;
        }
        total += declared;
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = qerr_set(err, "the zip payload is corrupt: %s", archive_error_string(a));
    archive_read_free(a);
    return rc;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

/* Remove a directory tree (never following symlinks or crossing mounts). */
static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Copy one entry's data, counting bytes against the bound. */
static int copy_data(struct archive *in, struct archive *out, const char *name, size_t *total, size_t max_total,
                     qerr *err)
{
    const void *buf;
    size_t len;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
        if (len > max_total - *total)
            return qerr_set(err, "the zip payload unpacks to more than %zu bytes", max_total);
        *total += len;
        if (archive_write_data_block(out, buf, len, off) != ARCHIVE_OK)
            return qerr_set(err, "cannot write '%.200s' from the zip payload: %s", name,
                            archive_error_string(out));
    }
    if (r != ARCHIVE_EOF)
        return qerr_set(err, "cannot read '%.200s' from the zip payload: %s", name, archive_error_string(in));
    return 0;
}

static int extract(const uint8_t *zip, size_t n, const char *dest, size_t max_total, size_t max_entries,
                   qerr *err)
{
    struct archive *a = zip_reader(zip, n, err);
    if (!a)
        return -1;
    struct archive *w = archive_write_disk_new();
    if (!w) {
        archive_read_free(a);
        return qerr_set(err, "out of memory");
    }
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                      ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    struct archive_entry *ent;
    size_t count = 0, total = 0;
    int r, rc = 0;
    char path[AGENT_PAYLOAD_DIR_MAX + NAME_MAX_LEN + 2];
    while (rc == 0 && ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK || r == ARCHIVE_WARN)) {
        size_t declared;
        if (++count > max_entries)
            rc = qerr_set(err, "the zip payload has more than %zu entries", max_entries);
        else if (check_entry(ent, &declared, err) < 0)
            rc = -1;
        if (rc < 0)
            break;
        const char *name = archive_entry_pathname(ent);
        char shown[256];
        snprintf(shown, sizeof shown, "%s", name);
        int pn = snprintf(path, sizeof path, "%s/%s", dest, name);
        if (pn < 0 || (size_t)pn >= sizeof path) {
            rc = qerr_set(err, "zip entry '%.200s': path too long", shown);
            break;
        }
        bool dir = archive_entry_filetype(ent) == AE_IFDIR;
        archive_entry_set_pathname(ent, path);
        archive_entry_set_perm(ent, dir ? 0700 : (0600 | (archive_entry_perm(ent) & 0100)));
        if (archive_write_header(w, ent) != ARCHIVE_OK)
            rc = qerr_set(err, "cannot create '%s' from the zip payload: %s", shown, archive_error_string(w));
        else if (!dir && copy_data(a, w, shown, &total, max_total, err) < 0)
            rc = -1;
        else if (archive_write_finish_entry(w) != ARCHIVE_OK)
            rc = qerr_set(err, "cannot finish '%s' from the zip payload: %s", shown, archive_error_string(w));
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = qerr_set(err, "the zip payload is corrupt: %s", archive_error_string(a));
    if (archive_write_close(w) != ARCHIVE_OK && rc == 0)
        rc = qerr_set(err, "cannot finish unpacking the zip payload: %s", archive_error_string(w));
    archive_write_free(w);
    archive_read_free(a);
    return rc;
}

int agent_payload_unzip(const uint8_t *zip, size_t n, const char *dest, size_t max_total, size_t max_entries,
                        qerr *err)
{
    if (max_total == 0)
        max_total = AGENT_UNZIP_MAX_DEFAULT;
    if (max_entries == 0)
        max_entries = AGENT_UNZIP_ENTRIES_DEFAULT;
    if (strlen(dest) >= AGENT_PAYLOAD_DIR_MAX)
        return qerr_set(err, "unzip destination path too long");
    if (scan(zip, n, max_total, max_entries, err) < 0)
        return qerr_prefix(err, "zip payload refused");
    if (mkdir(dest, 0700) < 0)
        return qerr_set(err, "cannot create %s: %s", dest, strerror(errno));
    if (extract(zip, n, dest, max_total, max_entries, err) < 0) {
        rm_tree(dest);
        return qerr_prefix(err, "zip payload refused");
    }
    return 0;
}
