/* curl_loop.h — the poller's libcurl multi handles, driven by one epoll set
 * (curl_multi_socket_action) on the poller's event thread.
 *
 * Why: curl_multi_perform walks every transfer in flight and curl_multi_poll builds a pollfd for
 * each on every turn of the loop; with socket actions a turn costs the sockets that are ready.
 * Why several multi handles (shards): libcurl 7.88 walks its whole connection cache when a
 * transfer's handle is removed (curl_multi_remove_handle), which is every round. Each agent is
 * given one shard for good (by its id), so that walk covers its shard's kept-alive connections,
 * not the fleet's.
 *
 * Contract:
 * - Everything but vcl_wake runs on one thread (the event thread; the stop path after it ended).
 * - vcl_run waits at most `wait` seconds (less when libcurl wants a timeout action, a socket is
 *   ready, or vcl_wake was called), runs libcurl on what is ready, then calls done() for every
 *   transfer that ended (the callback may remove and add handles).
 * - Sockets and timers are libcurl's: every epoll_ctl result is checked and logged. */
#ifndef QUINCE_VERIFIER_CURL_LOOP_H
#define QUINCE_VERIFIER_CURL_LOOP_H

#include <stddef.h>
#include <curl/curl.h>

#include "err.h"

typedef struct vcurl_loop vcurl_loop;
typedef void (*vcl_done_fn)(void *ctx, CURL *easy, CURLcode rc);

/* shards multi handles, each keeping at most maxconnects idle connections. NULL: err set. */
vcurl_loop *vcl_new(size_t shards, long maxconnects, qerr *err);
void vcl_free(vcurl_loop *l);                       /* no transfer may be in a multi handle */
size_t vcl_shard_of(const vcurl_loop *l, const char *id);
CURLM *vcl_multi(vcurl_loop *l, size_t i);
void vcl_wake(vcurl_loop *l);                       /* any thread: vcl_run returns soon */
void vcl_run(vcurl_loop *l, double wait, vcl_done_fn done, void *ctx);

#endif
