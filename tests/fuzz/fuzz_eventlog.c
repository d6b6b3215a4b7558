/* fuzz_eventlog.c — libFuzzer target: a TCG event log through the streaming reader and the
 * replay. Invariants: every event's digests and data lie inside the input, the event numbers
 * count up from 0, and an error message is always NUL-terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    uint8_t *log = malloc(size ? size : 1);    /* exact size: reads past the end are caught */
    if (!log)
        abort();
    memcpy(log, data, size);
    qerr e;
    qevlog_reader r;
    if (qevlog_open(&r, log, size, &e) == 0) {
        qevlog_event ev;
        uint32_t want = 0;
        int rc;
        while ((rc = qevlog_next(&r, &ev, &e)) == 1) {
            if (ev.num != want++ || ev.ndigests > QEVLOG_MAX_BANKS)
                abort();
            if (ev.data_len && (ev.data < log || ev.data + ev.data_len > log + size))
                abort();
            for (unsigned i = 0; i < ev.ndigests; i++) {
                const qevlog_digest *d = &ev.digests[i];
                if (d->bytes < log || d->bytes + d->size > log + size)
                    abort();
                if (qevlog_event_digest(&ev, d->alg_id) == NULL)
                    abort();
            }
            (void)qevlog_type_name(ev.type);
        }
        if (rc < 0 && !memchr(e.msg, '\0', sizeof e.msg))
            abort();
    } else if (!memchr(e.msg, '\0', sizeof e.msg)) {
        abort();
    }
    static qevlog_pcrs p;
    if (qevlog_replay(log, size, &p, &e) == 0) {
        if (p.nbanks > QHASH_COUNT)
            abort();
    }
    free(log);
    return 0;
}
