/* mb_log.c — the agent's copy of the UEFI event log (see mb_log.h). */
#include "mb_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "b64.h"
#include "eventlog.h"

struct agent_mb_log {
    int fd;
    char path[4096];
};

agent_mb_log *agent_mb_log_open(const char *path, qerr *e)
{
    if (!path || !*path) {
        qerr_set(e, "no measured-boot log configured");
        return NULL;
    }
    agent_mb_log *m = calloc(1, sizeof *m);
    if (!m) {
        qerr_set(e, "out of memory");
        return NULL;
    }
    if (strlen(path) >= sizeof m->path) {
        free(m);
        qerr_set(e, "measured-boot log path is too long");
        return NULL;
    }
    strcpy(m->path, path);
    m->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (m->fd < 0) {
        qerr_set(e, "cannot open the measured-boot log %s: %s", path, strerror(errno));
        free(m);
        return NULL;
    }
    return m;
}

void agent_mb_log_close(agent_mb_log *m)
{
    if (!m)
        return;
    close(m->fd);
    free(m);
}

char *agent_mb_log_b64(agent_mb_log *m, qerr *e)
{
    /* securityfs reports no size: read in blocks until EOF, bounded by the parser's limit. */
    size_t cap = 64 * 1024, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        qerr_set(e, "out of memory");
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= QEVLOG_MAX_BYTES) {
                free(buf);
                qerr_set(e, "the measured-boot log %s is over %u bytes", m->path, QEVLOG_MAX_BYTES);
                return NULL;
            }
            uint8_t *n = realloc(buf, cap * 2);
            if (!n) {
                free(buf);
                qerr_set(e, "out of memory");
                return NULL;
            }
            buf = n;
            cap *= 2;
        }
        ssize_t r = pread(m->fd, buf + len, cap - len, (off_t)len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            qerr_set(e, "reading the measured-boot log %s: %s", m->path, strerror(errno));
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len == 0) {
        free(buf);
        qerr_set(e, "the measured-boot log %s is empty", m->path);
        return NULL;
    }
    char *out = qb64_encode_alloc(buf, len);
    free(buf);
    if (!out)
        qerr_set(e, "out of memory");
    return out;
}
