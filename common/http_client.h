/* http_client.h — JSON REST calls over libcurl (easy interface).
 *
 * Contract:
 * - A qhttp_client owns one curl handle and reuses its connections (keep-alive). Use it from one
 *   thread at a time; create one per thread. curl_global_init runs once per process.
 * - qhttp_request returns 0 whenever an HTTP response arrived, whatever its status (check
 *   out->status), and -1 on transport failure with a one-line message:
 *     "connection refused to 127.0.0.1:8890", "cannot connect to HOST:PORT: <reason>",
 *     "timed out after N ms", "response over N bytes", "TLS error with HOST:PORT: <curl text>", ...
 *   Talking plain HTTP to a TLS port, or TLS to a plain-HTTP port, fails (never falls back) and
 *   the message says so ("... (is it a TLS port? use https)", "... (does the server speak TLS?)").
 * - Bodies: the request body is JSON; Content-Type: application/json is sent only with a body
 *   (never on a bodiless GET/DELETE/PUT, which Keylime's servers reject). The response body is
 *   bounded by max_response (the transfer is aborted beyond it), kept NUL-terminated, and parsed
 *   as JSON when it is JSON; for a Keylime envelope, `results` and `status_text` point into it.
 * - Only http:// and https:// URLs; redirects are not followed. TLS: at least TLS 1.2, the
 *   server verified against ca_file (or the system store), optional client cert/key and a
 *   pinned server public key (curl's CURLOPT_PINNEDPUBLICKEY syntax: a PEM/DER file or
 *   "sha256//<base64>;..."). verify_host = false skips only the host name check (agents whose
 *   certificate names are not their address). The server's certificate must be meant for
 *   servers: an extended key usage without serverAuth fails the handshake (OpenSSL's purpose
 *   check for TLS clients, on by default in libcurl's OpenSSL backend; tests/unit/test_http.c). */
#ifndef QUINCE_HTTP_CLIENT_H
#define QUINCE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdbool.h>
#include <cjson/cJSON.h>
#include <openssl/types.h>

#include "err.h"

#define QHTTP_CLIENT_DEFAULT_CONNECT_MS 5000
#define QHTTP_CLIENT_DEFAULT_TIMEOUT_MS 30000
#define QHTTP_CLIENT_DEFAULT_MAX        (16u << 20)

typedef struct qhttp_client_opts {
    long connect_timeout_ms;    /* 0 → default */
    long timeout_ms;            /* whole request; 0 → default */
    size_t max_response;        /* 0 → default */
    const char *ca_file;        /* PEM CA bundle for https (NULL: system store) */
    const char *ca_pem;         /* or the trust anchors as PEM text (copied; wins over ca_file),
                                   e.g. a pinned peer's own certificate (tls_pin.h) */
    X509 *ca_cert;              /* that certificate already parsed (qtls_pin_cert), with ca_pem:
                                   the only trust anchor without parsing ca_pem again for each
                                   connection (the client keeps a reference) */
    const char *cert_file;      /* client certificate (PEM) */
    const char *key_file;       /* client key (PEM) */
    const char *pinned_pubkey;  /* see above; NULL: none */
    bool no_verify_host;        /* skip the host name check (chain still verified) */
    const char *local_ip;       /* source address of the connections (numeric), NULL: any */
} qhttp_client_opts;

typedef struct qhttp_client qhttp_client;

typedef struct qhttp_result {
    long status;                /* HTTP status */
    char *body;                 /* NUL-terminated (never NULL after success) */
    size_t body_len;
    cJSON *json;                /* the parsed body, NULL when not JSON */
    const cJSON *results;       /* json["results"] when present, else NULL */
    const char *status_text;    /* json["status"] when a string, else NULL */
} qhttp_result;

qhttp_client *qhttp_client_new(const qhttp_client_opts *o, qerr *err);   /* o may be NULL */
void qhttp_client_free(qhttp_client *c);

/* method: "GET", "POST", "PUT", "DELETE". body may be NULL (no body). out is reset first and
 * must be released with qhttp_result_free (also after a failure). */
int qhttp_request(qhttp_client *c, const char *method, const char *url, const char *body, size_t body_len,
                  qhttp_result *out, qerr *err);
/* Same with a cJSON body (printed unformatted). */
int qhttp_request_json(qhttp_client *c, const char *method, const char *url, const cJSON *body,
                       qhttp_result *out, qerr *err);
int qhttp_get(qhttp_client *c, const char *url, qhttp_result *out, qerr *err);
int qhttp_delete(qhttp_client *c, const char *url, qhttp_result *out, qerr *err);
int qhttp_post(qhttp_client *c, const char *url, const cJSON *body, qhttp_result *out, qerr *err);
int qhttp_put(qhttp_client *c, const char *url, const cJSON *body, qhttp_result *out, qerr *err);
void qhttp_result_free(qhttp_result *r);

/* "<status> <status_text or reason>" for messages, e.g. "404 Not Found". */
const char *qhttp_result_describe(const qhttp_result *r, char *buf, size_t cap);

#endif
