/* agent_client.h — the verifier's HTTP client towards one agent (libcurl easy handle, driven
 * by the poller's multi handle): set-up through the shared configurator (curl_conf.h, every
 * option's result checked), the agent's certificate pinned, the request URLs, and turning a
 * finished transfer (curl code + HTTP status) into what the round machine needs to know.
 *
 * Contract:
 * - An agent that registered a certificate (mtls_cert PEM) is reached over https with that
 *   certificate as the only trust anchor and its public key pinned; the host name is not
 *   checked (the pin is stronger; addresses change behind NAT). The verifier's client
 *   certificate and key are presented. One that registered none is reached over plain HTTP
 *   only with allow_plain_http (else vac_target_ok fails: internal.verifier.no_quote).
 * - Answers are bounded by max_response_bytes (the transfer is aborted beyond it).
 * - vac_finish: 200 → VAC_ANSWER; no answer, 408, 500, 599 → VAC_RETRY; anything else
 *   → VAC_FATAL with the event id (quote: internal.verifier.no_quote, or
 *   qoute_validation.invalid_data for an answer over the bound; V: internal.verifier.no_v).
 *   A peer whose certificate is not the pinned one is VAC_RETRY, with "the agent's TLS
 *   certificate did not match the certificate it registered" in the reason.
 * - Memory: an agent holds no easy handle between rounds. A request takes one from a vac_pool
 *   (idle handles, reused by any agent) and gives it back when it ended; the agent's kept-alive
 *   connection stays in the multi handle's connection cache, and a handle configured for the
 *   same agent (address, pinned certificate, client certificate) reuses it. The agent keeps
 *   only its pin string. Idle TLS connections release their buffers, and the verifier's client
 *   certificate and key go into each new connection parsed once (curl_conf.h).
 * - Threads: a vac and the pool belong to the poller's event thread. */
#ifndef QUINCE_VERIFIER_AGENT_CLIENT_H
#define QUINCE_VERIFIER_AGENT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <curl/curl.h>

#include "buf.h"
#include "err.h"
#include "store.h"

typedef struct vac_opts {
    long request_timeout_ms;
    long max_response_bytes;
    const char *tls_cert_file, *tls_key_file;   /* the verifier's client certificate */
    bool allow_plain_http;
    struct curl_slist *json_hdr;                /* "Content-Type: application/json" (shared) */
} vac_opts;

/* One easy handle with its answer buffer (from a vac_pool). A handle keeps the options it was
 * configured with between requests (conf_for: the vac_opts and the kind of agent, plain or
 * TLS, IP literal or name); a request for an agent of the same kind sets only the options that
 * differ between agents. Any other request, and any handle whose last transfer did not end in
 * a quote answer (a V request, an abandoned or failed transfer), is reset and configured
 * afresh. */
typedef struct vac_handle {
    CURL *easy;
    qbuf resp;
    bool too_big;
    char curl_err[CURL_ERROR_SIZE];
    const struct vac_opts *conf_for;  /* NULL: reset before the next use */
    bool conf_tls, conf_ip_literal;
    bool clean;                   /* the last transfer ended with a quote answer */
    struct vac_handle *next;      /* in the pool's idle list */
} vac_handle;

typedef struct vac_pool vac_pool;
/* keep: idle handles kept for reuse (more are cleaned up when they come back). NULL: out of memory. */
vac_pool *vac_pool_new(size_t keep);
void vac_pool_free(vac_pool *p);  /* every handle must be back */
/* Frees the idle handles that stayed unused since the last call (the fewest idle at any moment
 * of the period), so the pool follows the peak of requests in flight of the last period instead
 * of keeping its largest size for good (an idle handle holds about 37 KB in libcurl 7.88). */
void vac_pool_shrink(vac_pool *p);
size_t vac_pool_idle(const vac_pool *p);   /* idle handles held now */
/* New connections libcurl opened for agents' requests since the process started (TCP + TLS
 * handshakes; a kept-alive connection reused by a round is not counted). */
unsigned long long vac_connects(void);

typedef struct vac {
    CURL *easy;                   /* h->easy while a request holds a handle, else NULL */
    vac_handle *h;
    char *pin;                    /* "sha256//..." of the registered certificate, once per record */
    bool vkey;                    /* the request in flight is POST /keys/vkey */
} vac;

typedef enum { VAC_ANSWER = 1, VAC_RETRY, VAC_FATAL } vac_kind;

typedef struct vac_result {
    vac_kind kind;
    const char *event_id;         /* VAC_FATAL */
    char why[QERR_MSG_MAX];
} vac_result;

/* Can the agent be polled at all (contact address, mTLS or allowed plain HTTP)? 0, or -1 with
 * the reason in why. */
int vac_target_ok(const vac_opts *o, const vagent *rec, char *why, size_t cap);
/* Set up the quote request (GET /v<ver>/quotes/integrity?...) or V's (POST /v<ver>/keys/vkey
 * with body); priv is stored as CURLOPT_PRIVATE. 0; -1 with why set and *fatal telling whether
 * a retry could help (a certificate or address that cannot be used: no). */
int vac_quote(vac *c, vac_pool *pool, const vac_opts *o, const vagent *rec, void *priv, const char *nonce,
              uint32_t mask, bool partial0, uint64_t entry, bool *fatal, char *why, size_t cap);
int vac_vkey(vac *c, vac_pool *pool, const vac_opts *o, const vagent *rec, void *priv, const char *body, bool *fatal,
             char *why, size_t cap);
/* After the transfer ended (the handle out of the multi handle). */
void vac_finish(vac *c, CURLcode rc, long status, long max_bytes, vac_result *out);
/* The answer body (NUL-terminated, may be empty) moves to the caller (free()); NULL: out of memory. */
char *vac_take_body(vac *c, size_t *len);
/* The handle goes back to the pool (it must not be in a multi handle); the pin stays. */
void vac_release(vac *c, vac_pool *pool);
/* vac_release, and the pin goes too (a new record may bring another certificate). */
void vac_free(vac *c, vac_pool *pool);

#endif
