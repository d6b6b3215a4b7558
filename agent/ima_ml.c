/* ima_ml.c — incremental reader of the IMA ASCII measurement list; see ima_ml.h. */
#include "ima_ml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct checkpoint {
    uint64_t entry;   /* number of complete lines before offset */
    uint64_t offset;  /* byte offset just after `entry` lines */
} checkpoint;

struct agent_ima_ml {
    int fd;
    char *path;
    checkpoint cp[AGENT_IMA_ML_CHECKPOINTS];
    size_t ncp;
};

#define READ_BLOCK 65536

agent_ima_ml *agent_ima_ml_open(const char *path, qerr *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        qerr_set(err, "cannot open IMA measurement list %s: %s", path, strerror(errno));
        return NULL;
    }
    agent_ima_ml *m = calloc(1, sizeof(*m));
    if (!m || !(m->path = strdup(path))) {
        free(m);
        close(fd);
        qerr_set(err, "out of memory");
        return NULL;
    }
    m->fd = fd;
    return m;
}

void agent_ima_ml_close(agent_ima_ml *m)
{
    if (!m)
        return;
    close(m->fd);
    free(m->path);
    free(m);
}

const char *agent_ima_ml_path(const agent_ima_ml *m)
{
    return m->path;
}

/* The remembered pair with the largest entry <= nth (or (0,0)). */
static checkpoint best_checkpoint(const agent_ima_ml *m, uint64_t nth)
{
    checkpoint best = {0, 0};
    for (size_t i = 0; i < m->ncp; i++)
        if (m->cp[i].entry <= nth && m->cp[i].entry >= best.entry)
            best = m->cp[i];
    return best;
}

static void remember(agent_ima_ml *m, uint64_t entry, uint64_t offset)
{
    for (size_t i = 0; i < m->ncp; i++)
        if (m->cp[i].entry == entry) {
            m->cp[i].offset = offset;
            return;
        }
    if (m->ncp < AGENT_IMA_ML_CHECKPOINTS) {
        m->cp[m->ncp++] = (checkpoint){entry, offset};
        return;
    }
    /* Full: replace the pair with the smallest entry except the first one, keeping a spread. */
    size_t victim = 0;
    for (size_t i = 1; i < m->ncp; i++)
        if (m->cp[i].entry < m->cp[victim].entry)
            victim = i;
    m->cp[victim] = (checkpoint){entry, offset};
}

static void forget_beyond(agent_ima_ml *m, uint64_t offset)
{
    size_t j = 0;
    for (size_t i = 0; i < m->ncp; i++)
        if (m->cp[i].offset <= offset)
            m->cp[j++] = m->cp[i];
    m->ncp = j;
}

/* Count complete lines from `from` to EOF. Sets *nth_off to the offset just after `nth` lines
 * (UINT64_MAX if the list has fewer), *total to the number of complete lines, and *end_off to the
 * offset just after the last complete line. Checkpoints are remembered along the way. */
static int scan(agent_ima_ml *m, checkpoint from, uint64_t nth, uint64_t cut_bytes, uint64_t *nth_off,
                uint64_t *total, uint64_t *end_off, qerr *err)
{
    char block[READ_BLOCK];
    uint64_t entry = from.entry, off = from.offset, last_nl = from.offset;
    uint64_t next_cp = entry + 4096;
    *nth_off = (entry == nth) ? off : UINT64_MAX;
    bool cut = false;
    for (; !cut;) {
        ssize_t n = pread(m->fd, block, sizeof(block), (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return qerr_set(err, "cannot read IMA measurement list %s: %s", m->path, strerror(errno));
        }
        if (n == 0)
            break;
        const char *p = block, *end = block + n;
        const char *nl;
        while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            uint64_t at = off + (uint64_t)(nl - block) + 1;
            if (*nth_off != UINT64_MAX && at - *nth_off > cut_bytes && last_nl > *nth_off) {
                cut = true;    /* the piece is full: stop after the last entry that fits */
                break;
            }
            last_nl = at;
            entry++;
            if (entry == nth)
                *nth_off = last_nl;
            if (entry >= next_cp) {
                remember(m, entry, last_nl);
                next_cp = entry + 4096;
            }
            p = nl + 1;
        }
        off += (uint64_t)n;
    }
    *total = entry;
    *end_off = last_nl;
    return 0;
}

static int copy_range(agent_ima_ml *m, uint64_t lo, uint64_t hi, size_t max_bytes, qbuf *out, qerr *err)
{
    if (hi - lo > max_bytes)
        return qerr_set(err, "IMA measurement list chunk of %llu bytes exceeds the limit of %zu bytes",
                        (unsigned long long)(hi - lo), max_bytes);
    if (qbuf_reserve(out, (size_t)(hi - lo)) < 0)
        return qerr_set(err, "out of memory reading the IMA measurement list");
    while (lo < hi) {
        ssize_t n = pread(m->fd, out->data + out->len, (size_t)(hi - lo), (off_t)lo);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return qerr_set(err, "cannot read IMA measurement list %s: %s", m->path, strerror(errno));
        if (n == 0)
            return qerr_set(err, "IMA measurement list %s shrank while it was read", m->path);
        out->len += (size_t)n;
        lo += (uint64_t)n;
    }
    return 0;
}

int agent_ima_ml_piece(agent_ima_ml *m, uint64_t nth, size_t max_bytes, uint64_t *start, uint64_t *end,
                       uint64_t *entry_used, bool *more, qerr *err)
{
    uint64_t nth_off, total, end_off;
    checkpoint from = best_checkpoint(m, nth);
    if (from.offset > 0) {
        char c = 0;
        if (pread(m->fd, &c, 1, (off_t)(from.offset - 1)) != 1 || c != '\n') {
            m->ncp = 0;
            from = (checkpoint){0, 0};
        }
    }
    if (scan(m, from, nth, max_bytes, &nth_off, &total, &end_off, err) < 0)
        return -1;
    if (nth_off == UINT64_MAX) {
        forget_beyond(m, 0);
        nth = 0;
        if (scan(m, (checkpoint){0, 0}, 0, max_bytes, &nth_off, &total, &end_off, err) < 0)
            return -1;
    }
    if (end_off - nth_off > max_bytes)     /* one entry alone is larger than a piece */
        return qerr_set(err, "IMA measurement list entry %llu alone is %llu bytes, over the limit of %zu bytes "
                        "(max_ima_bytes)", (unsigned long long)nth, (unsigned long long)(end_off - nth_off), max_bytes);
    remember(m, total, end_off);
    /* More complete entries after the piece? One byte more than the piece tells. */
    char c;
    *more = agent_ima_ml_pread(m, &c, 1, end_off) == 1 && end_off > nth_off;
    if (*more) {
        /* only a complete line counts: look for its newline */
        uint64_t dummy_off, dummy_total, eol;
        checkpoint here = {total, end_off};
        if (scan(m, here, total, 0, &dummy_off, &dummy_total, &eol, err) < 0)
            return -1;
        *more = eol > end_off;
    }
    *start = nth_off;
    *end = end_off;
    *entry_used = nth;
    return 0;
}

int agent_ima_ml_range(agent_ima_ml *m, uint64_t nth, size_t max_bytes, uint64_t *start, uint64_t *end,
                       uint64_t *entry_used, uint64_t *num_entries, qerr *err)
{
    uint64_t nth_off, total, end_off;
    checkpoint from = best_checkpoint(m, nth);
    if (from.offset > 0) {
        /* A remembered offset must still follow a newline; a list that was truncated or
         * rewritten (a test rig replacing the file) invalidates every checkpoint. */
        char c = 0;
        if (pread(m->fd, &c, 1, (off_t)(from.offset - 1)) != 1 || c != '\n') {
            m->ncp = 0;
            from = (checkpoint){0, 0};
        }
    }
    if (scan(m, from, nth, UINT64_MAX, &nth_off, &total, &end_off, err) < 0)
        return -1;
    if (nth_off == UINT64_MAX) {
        /* Fewer entries than asked for: the list restarted (reboot) or shrank. Start at 0. */
        forget_beyond(m, 0);
        nth = 0;
        if (scan(m, (checkpoint){0, 0}, 0, UINT64_MAX, &nth_off, &total, &end_off, err) < 0)
            return -1;
    }
    if (end_off - nth_off > max_bytes)
        return qerr_set(err, "IMA measurement list chunk of %llu bytes exceeds the limit of %zu bytes",
                        (unsigned long long)(end_off - nth_off), max_bytes);
    remember(m, total, end_off);
    *start = nth_off;
    *end = end_off;
    *entry_used = nth;
    *num_entries = total;
    return 0;
}

long agent_ima_ml_pread(const agent_ima_ml *m, void *buf, size_t len, uint64_t offset)
{
    ssize_t n;
    do
        n = pread(m->fd, buf, len, (off_t)offset);
    while (n < 0 && errno == EINTR);
    return (long)n;
}

int agent_ima_ml_read(agent_ima_ml *m, uint64_t nth, size_t max_bytes, qbuf *out,
                      uint64_t *entry_used, uint64_t *num_entries, qerr *err)
{
    qbuf_reset(out);
    uint64_t lo, hi;
    if (agent_ima_ml_range(m, nth, max_bytes, &lo, &hi, entry_used, num_entries, err) < 0)
        return -1;
    return copy_range(m, lo, hi, max_bytes, out, err);
}
