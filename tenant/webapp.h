/* webapp.h — `quince-tenant webapp`: the operator's web page (agents, failures, policies, uploads)
 * served over HTTPS by the tenant, which talks to the verifier and the registrar with its own mTLS
 * certificate (no browser ever holds a client key).
 *
 * Contract:
 * - Modules: webapp.c (options, certificate, start-up), webapp_auth.c (login token, sessions,
 *   CSRF, security headers), webapp_util.c (HTML escaping, forms, page frame, tenant contexts),
 *   webapp_api.c (JSON for the page's scripts), webapp_pages.c (an agent's page, its actions, the
 *   add form), webapp_policies.c (policy list, page, delete), webapp_upload.c (policy upload and
 *   assignment), webapp_assets.c (the compiled-in static files in tenant/web/).
 * - Every handler runs on one of the HTTP server's worker threads; shared state (sessions, the
 *   login token) is behind wapp.mu, and every request to the verifier or registrar uses its own
 *   tcli_ctx and HTTP client (wapp_ctx_open), so handlers never share a curl handle.
 * - Every text from a server or an agent goes through wapp_html (HTML) or cJSON (JSON): never
 *   into markup unescaped. The page's scripts insert text with textContent only. */
#ifndef QUINCE_TENANT_WEBAPP_H
#define QUINCE_TENANT_WEBAPP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "http_server.h"

#define WAPP_DEFAULT_PORT    8443
#define WAPP_DEFAULT_UPLOAD  (16u << 20)     /* largest request body (an upload) */
#define WAPP_MAX_SESSIONS    32
#define WAPP_SESSION_IDLE_S  (12 * 3600)
#define WAPP_SECRET_HEX      64               /* 32 random bytes as hex */
#define WAPP_COOKIE          "quince_session"
#define WAPP_MAX_AGENTS      1000             /* agents shown / assigned at once */
#define WAPP_MAX_POLICIES    200              /* policies listed with their details */

typedef struct wapp_session {
    bool used;
    char id[WAPP_SECRET_HEX + 1];
    char csrf[WAPP_SECRET_HEX + 1];
    time_t last;
} wapp_session;

typedef struct wapp {
    tcli_opts o;                  /* the settings for tcli_cmd_* (cv/registrar address, ...) */
    tcli_conf c;
#define WAPP_MAX_ORIGINS 6
    char origins[WAPP_MAX_ORIGINS][300];  /* "https://host:port" a browser may send as Origin */
    int norigins;
    size_t max_upload;
    pthread_mutex_t mu;
    char token[WAPP_SECRET_HEX + 1];
    bool token_used;
    wapp_session sessions[WAPP_MAX_SESSIONS];
} wapp;

/* ---- auth (webapp_auth.c) ------------------------------------------------------------------ */
/* A fresh login token (32 random bytes, hex). 0 or -1. */
int wapp_auth_init(wapp *w, qerr *err);
/* The security headers every answer carries (CSP without inline script, nosniff, no referrer,
 * no caching, no framing). */
void wapp_headers(qhttp_req *r);
/* The request's session, copied into *out (NULL when not logged in). */
bool wapp_session_get(wapp *w, qhttp_req *r, wapp_session *out);
/* For state-changing requests: a session, the Origin (when sent) equal to ours, and the CSRF
 * token from the X-CSRF-Token header or the form field csrf_field (may be NULL) equal to the
 * session's. On failure the reply (401/403) is made and false returned. */
bool wapp_check_write(wapp *w, qhttp_req *r, const char *csrf_field, wapp_session *out);
/* For pages: a session, else a redirect to /login (HTML) or 401 (JSON for /api/...). */
bool wapp_check_read(wapp *w, qhttp_req *r, wapp_session *out);
void wapp_h_login_get(qhttp_req *r, void *ctx);
void wapp_h_login_post(qhttp_req *r, void *ctx);
void wapp_h_logout(qhttp_req *r, void *ctx);

/* ---- helpers (webapp_util.c) -------------------------------------------------------------- */
/* HTML-escape s (& < > " ' and control bytes) into b. */
void wapp_html(qbuf *b, const char *s);
/* The value of a field of an application/x-www-form-urlencoded body, decoded, into out (cap);
 * false when absent or too long. */
bool wapp_form(const char *body, size_t len, const char *name, char *out, size_t cap);
/* Page frame: title and navigation, then the caller's body, then wapp_page_end sends it. */
void wapp_page_begin(qbuf *b, const char *title);
void wapp_page_end(qhttp_req *r, qbuf *b, int status);
/* A short page with a message (escaped) and a link back. */
void wapp_message_page(qhttp_req *r, int status, const char *title, const char *msg, const char *back_href,
                       const char *back_text);
void wapp_redirect(qhttp_req *r, const char *location);
/* A JSON reply {"error": msg} with the status. */
void wapp_json_error(qhttp_req *r, int status, const char *msg);
void wapp_json(qhttp_req *r, int status, cJSON *obj);    /* takes obj */
/* A tenant context for one request (its own HTTP client); uuid may be NULL. */
int wapp_ctx_open(wapp *w, tcli_ctx *x, tcli_opts *o, const char *uuid, qerr *err);
void wapp_ctx_close(tcli_ctx *x);
const char *wapp_state_class(long state);      /* CSS class for a state's colour */

/* ---- JSON API (webapp_api.c) and uploads (webapp_upload.c) -------------------------------- */
void wapp_h_api_session(qhttp_req *r, void *ctx);
void wapp_h_api_agents(qhttp_req *r, void *ctx);
void wapp_h_api_upload(qhttp_req *r, void *ctx);
/* The verifier's agents (bulk status, an object keyed by id) into *out. 0 or -1 with err. */
int wapp_fetch_agents(tcli_ctx *x, qhttp_result *out, qerr *err);

/* ---- server-side pages (webapp_pages.c, webapp_policies.c) --------------------------------- */
void wapp_h_agent(qhttp_req *r, void *ctx);
void wapp_h_agent_action(qhttp_req *r, void *ctx);
void wapp_h_add_get(qhttp_req *r, void *ctx);
void wapp_h_add_post(qhttp_req *r, void *ctx);
void wapp_h_policies(qhttp_req *r, void *ctx);
void wapp_h_policy(qhttp_req *r, void *ctx);
void wapp_h_policy_delete(qhttp_req *r, void *ctx);

/* ---- static files (webapp_assets.c) ------------------------------------------------------- */
/* Routes for "/", "/upload" (pages that need a session) and "/static/..." files. */
void wapp_h_index(qhttp_req *r, void *ctx);
void wapp_h_upload_page(qhttp_req *r, void *ctx);
void wapp_h_static(qhttp_req *r, void *ctx);

/* quince-tenant webapp [options] (webapp.c) */
int tenant_webapp(int argc, char **argv);

#endif
