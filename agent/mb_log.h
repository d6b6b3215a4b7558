/* mb_log.h — the UEFI event log the agent serves as mb_measurement_list (agent-protocol §3.3):
 * opened once at start-up (securityfs is root-only, so before privileges are dropped), kept
 * open, and re-read from offset 0 for each quote whose mask holds PCR 0. */
#ifndef QUINCE_AGENT_MB_LOG_H
#define QUINCE_AGENT_MB_LOG_H

#include "err.h"

typedef struct agent_mb_log agent_mb_log;

/* NULL with a reason when the file cannot be opened (the agent then runs without it). */
agent_mb_log *agent_mb_log_open(const char *path, qerr *e);
void agent_mb_log_close(agent_mb_log *m);
/* The whole log, base64-encoded (caller frees), or NULL with a reason (I/O error, empty, over
 * QEVLOG_MAX_BYTES). Thread-safe (pread only). */
char *agent_mb_log_b64(agent_mb_log *m, qerr *e);

#endif
