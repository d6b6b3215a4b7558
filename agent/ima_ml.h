/* ima_ml.h — incremental reads of the IMA ASCII measurement list (agent-protocol §4.1).
 * The file is opened once (before privileges are dropped) and kept open. A read for entry n
 * returns the text of entries n..end (complete '\n'-terminated lines only), seeking from the
 * closest remembered (entry, byte offset) pair at or below n. A request beyond the number of
 * entries now in the list (a reboot, a shorter list) is answered from entry 0; a request equal
 * to the count answers "" with the entry unchanged. agent_ima_ml_read/_range fail on a read over
 * max_bytes; agent_ima_ml_piece (what the agent serves) cuts it into pieces of at most max_bytes
 * of complete entries and says whether more follow. Not thread-safe:
 * callers serialise (the agent holds its TPM lock around quote + read anyway), except for
 * agent_ima_ml_pread. */
#ifndef QUINCE_AGENT_IMA_ML_H
#define QUINCE_AGENT_IMA_ML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "buf.h"

#define AGENT_IMA_ML_CHECKPOINTS 64     /* remembered (entry, offset) pairs */

typedef struct agent_ima_ml agent_ima_ml;

/* Open the list; returns NULL with a message if it cannot be opened. */
agent_ima_ml *agent_ima_ml_open(const char *path, qerr *err);
void agent_ima_ml_close(agent_ima_ml *m);
const char *agent_ima_ml_path(const agent_ima_ml *m);

/* Append the text of entries from `nth` on to out (out is reset first). *entry_used is the
 * first entry returned (nth, or 0 after a reset); *num_entries the number of complete entries
 * in the list now. Returns 0, or -1 (I/O error, vanished file, over max_bytes). */
int agent_ima_ml_read(agent_ima_ml *m, uint64_t nth, size_t max_bytes, qbuf *out,
                      uint64_t *entry_used, uint64_t *num_entries, qerr *err);

/* The same as agent_ima_ml_read without copying: [*start, *end) is the byte range in the file of
 * the complete entries from *entry_used on, as the list is now (the offsets are remembered as
 * agent_ima_ml_read remembers them). The text is then read with agent_ima_ml_pread, e.g. while a
 * reply is being sent. A range over max_bytes is an error. */
int agent_ima_ml_range(agent_ima_ml *m, uint64_t nth, size_t max_bytes, uint64_t *start, uint64_t *end,
                       uint64_t *entry_used, uint64_t *num_entries, qerr *err);
/* The same, bounded instead of failing: [*start, *end) holds the complete entries from
 * *entry_used on that fit in max_bytes together (at least one entry; an entry alone larger than
 * max_bytes is an error), and *more says whether complete entries follow the piece. The scan
 * stops at the piece's end, so a 100 MB list is served piece by piece without reading it all. */
int agent_ima_ml_piece(agent_ima_ml *m, uint64_t nth, size_t max_bytes, uint64_t *start, uint64_t *end,
                       uint64_t *entry_used, bool *more, qerr *err);
/* pread(2) on the open list: bytes read (0 at the end of the file), or -1 with errno. It touches
 * no remembered state, so it may run on any thread, alongside the calls above. */
long agent_ima_ml_pread(const agent_ima_ml *m, void *buf, size_t len, uint64_t offset);

#endif
