/* revocation_webhook.h — delivers revocation messages (revocation.h) to [revocations]
 * webhook_url on its own thread: a bounded queue (a full queue drops the new event with an ERROR
 * line naming the agent), each event tried up to `attempts` times with a doubling back-off
 * from retry_ms, every attempt bounded by timeout_ms. Posting never blocks the caller, so a dead
 * webhook never slows polling. Stop waits at most for the attempt in flight. */
#ifndef QUINCE_VERIFIER_REVOCATION_WEBHOOK_H
#define QUINCE_VERIFIER_REVOCATION_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

typedef struct vwebhook_opts {
    const char *url;            /* http:// or https:// */
    const char *ca_file;        /* CA for an https receiver; NULL: the system store */
    unsigned attempts;          /* 1.. (0 → 3) */
    long retry_ms;              /* first back-off (0 → 1000) */
    long timeout_ms;            /* per attempt (0 → 5000) */
    size_t queue_max;           /* events waiting (0 → 1024) */
} vwebhook_opts;

typedef struct vwebhook_stats {
    uint64_t sent, failed_attempts, dropped, given_up;
} vwebhook_stats;

typedef struct vwebhook vwebhook;

vwebhook *vwebhook_start(const vwebhook_opts *o, qerr *err);
/* Queue one body (copied). 0, or -1 when the queue is full or memory is short (logged). */
int vwebhook_post(vwebhook *w, const char *agent_id, const char *body);
void vwebhook_stats_get(vwebhook *w, vwebhook_stats *out);
void vwebhook_stop(vwebhook *w);

#endif
