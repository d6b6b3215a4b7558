/* webapp_auth.c — who may use the web page: a one-time login token printed at start-up becomes a
 * session cookie (HttpOnly; Secure; SameSite=Strict); every state-changing request also carries
 * the session's CSRF token and, when the browser sends one, our own Origin. Every answer carries
 * the security headers (a Content-Security-Policy without inline script among them). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hex.h"
#include "log.h"
#include "webapp.h"

#define LOGM "webapp"

static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                          "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

static int random_hex(char out[WAPP_SECRET_HEX + 1])
{
    unsigned char b[WAPP_SECRET_HEX / 2];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    qhex_encode(b, sizeof b, out);
    out[WAPP_SECRET_HEX] = '\0';
    OPENSSL_cleanse(b, sizeof b);
    return 0;
}

/* Constant-time comparison of two secrets of WAPP_SECRET_HEX characters. */
static bool secret_eq(const char *a, const char *b)
{
    return a && b && strlen(a) == WAPP_SECRET_HEX && strlen(b) == WAPP_SECRET_HEX &&
           CRYPTO_memcmp(a, b, WAPP_SECRET_HEX) == 0;
}

int wapp_auth_init(wapp *w, qerr *err)
{
    if (random_hex(w->token) < 0)
        return qerr_set(err, "cannot draw random bytes for the login token");
    w->token_used = false;
    return 0;
}

void wapp_headers(qhttp_req *r)
{
    qhttp_reply_header(r, "Content-Security-Policy", CSP);
    qhttp_reply_header(r, "X-Content-Type-Options", "nosniff");
    /* same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on form posts. */
    qhttp_reply_header(r, "Referrer-Policy", "same-origin");
    qhttp_reply_header(r, "Cache-Control", "no-store");
}

/* The session id from the Cookie header, into out; false when none. */
static bool cookie_session(qhttp_req *r, char out[WAPP_SECRET_HEX + 1])
{
    const char *c = qhttp_req_header(r, "Cookie");
    size_t nl = strlen(WAPP_COOKIE);
    while (c && *c) {
        c += strspn(c, " ;");
        if (strncmp(c, WAPP_COOKIE, nl) == 0 && c[nl] == '=') {
            const char *v = c + nl + 1;
            size_t n = strcspn(v, ";");
            if (n != WAPP_SECRET_HEX)
                return false;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        c = strchr(c, ';');
    }
    return false;
}

bool wapp_session_get(wapp *w, qhttp_req *r, wapp_session *out)
{
    char id[WAPP_SECRET_HEX + 1];
    if (!cookie_session(r, id))
        return false;
    bool found = false;
    time_t now = time(NULL);
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < WAPP_MAX_SESSIONS; i++) {
        wapp_session *s = &w->sessions[i];
        if (!s->used)
            continue;
        if (now - s->last > WAPP_SESSION_IDLE_S) {
            OPENSSL_cleanse(s, sizeof *s);
            continue;
        }
        if (secret_eq(s->id, id)) {
            s->last = now;
            if (out)
                memcpy(out, s, sizeof *out);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return found;
}

static bool is_api(qhttp_req *r)
{
    return strncmp(qhttp_req_path(r), "/api/", 5) == 0;
}

bool wapp_check_read(wapp *w, qhttp_req *r, wapp_session *out)
{
    if (wapp_session_get(w, r, out))
        return true;
    if (is_api(r))
        wapp_json_error(r, 401, "not logged in: open the URL with the login token that quince-tenant webapp printed");
    else
        wapp_redirect(r, "/login");
    return false;
}

bool wapp_check_write(wapp *w, qhttp_req *r, const char *csrf_field, wapp_session *out)
{
    wapp_session s;
    if (!wapp_session_get(w, r, &s)) {
        if (is_api(r))
            wapp_json_error(r, 401, "not logged in");
        else
            wapp_message_page(r, 401, "Not logged in", "Log in with the token that quince-tenant webapp printed.",
                              "/login", "Log in");
        return false;
    }
    const char *origin = qhttp_req_header(r, "Origin");
    bool same = !origin;
    for (int i = 0; !same && i < w->norigins; i++)
        same = strcmp(origin, w->origins[i]) == 0;
    if (!same) {
        qlog(QLOG_WARNING, LOGM, "%s %s refused: Origin %.100s is not this server", qhttp_req_method(r),
             qhttp_req_path(r), origin);
        if (is_api(r))
            wapp_json_error(r, 403, "request from another origin refused");
        else
            wapp_message_page(r, 403, "Refused", "This request came from another site and was refused.", "/",
                              "Agents");
        return false;
    }
    char form[WAPP_SECRET_HEX + 2] = "";
    const char *tok = qhttp_req_header(r, "X-CSRF-Token");
    if (!tok && csrf_field) {
        size_t len;
        const char *body = qhttp_req_body(r, &len);
        if (wapp_form(body, len, csrf_field, form, sizeof form))
            tok = form;
    }
    if (!secret_eq(tok, s.csrf)) {
        qlog(QLOG_WARNING, LOGM, "%s %s refused: %s CSRF token", qhttp_req_method(r), qhttp_req_path(r),
             tok ? "wrong" : "no");
        if (is_api(r))
            wapp_json_error(r, 403, "missing or wrong CSRF token: reload the page");
        else
            wapp_message_page(r, 403, "Refused", "The form's security token is missing or old: reload the page and "
                              "try again.", "/", "Agents");
        return false;
    }
    if (out)
        memcpy(out, &s, sizeof *out);
    OPENSSL_cleanse(&s, sizeof s);
    return true;
}

/* Token right: a new session, its cookie, and on to the agents. */
static void login(wapp *w, qhttp_req *r, const char *token)
{
    bool ok = false, used = false;
    wapp_session fresh;
    memset(&fresh, 0, sizeof fresh);
    if (random_hex(fresh.id) < 0 || random_hex(fresh.csrf) < 0) {
        wapp_message_page(r, 500, "Error", "cannot draw random bytes for a session", "/login", "Log in");
        return;
    }
    fresh.used = true;
    fresh.last = time(NULL);
    pthread_mutex_lock(&w->mu);
    if (secret_eq(token, w->token) && !w->token_used) {
        int slot = 0;
        for (int i = 0; i < WAPP_MAX_SESSIONS; i++) {
            if (!w->sessions[i].used) {
                slot = i;
                break;
            }
            if (w->sessions[i].last < w->sessions[slot].last)
                slot = i;          /* all taken: the least recently used goes */
        }
        w->sessions[slot] = fresh;
        w->token_used = true;
        ok = true;
    } else if (secret_eq(token, w->token)) {
        used = true;
    }
    pthread_mutex_unlock(&w->mu);
    if (!ok) {
        qlog(QLOG_WARNING, LOGM, "login from %s refused: %s token", qhttp_req_peer(r), used ? "an already used" : "a wrong");
        OPENSSL_cleanse(&fresh, sizeof fresh);
        wapp_message_page(r, 403, "Login refused", used ? "This login token was used already: it works once. Restart "
                          "quince-tenant webapp for a new one." : "Wrong login token.", "/login", "Try again");
        return;
    }
    qlog(QLOG_INFO, LOGM, "login from %s: new session", qhttp_req_peer(r));
    char cookie[WAPP_SECRET_HEX + 128];
    snprintf(cookie, sizeof cookie, WAPP_COOKIE "=%s; Path=/; HttpOnly; Secure; SameSite=Strict", fresh.id);
    OPENSSL_cleanse(&fresh, sizeof fresh);
    wapp_redirect(r, "/");
    qhttp_reply_header(r, "Set-Cookie", cookie);
    OPENSSL_cleanse(cookie, sizeof cookie);
}

void wapp_h_login_get(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    const char *token = qhttp_req_query(r, "token");
    if (token && *token) {
        login(w, r, token);
        return;
    }
    qbuf b;
    wapp_page_begin(&b, "Log in");
    qbuf_append_str(&b, "<form method=\"post\" action=\"/login\" class=\"card\">"
                        "<label for=\"token\">Login token (printed by <code>quince-tenant webapp</code>)</label>"
                        "<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required>"
                        "<button type=\"submit\">Log in</button></form>");
    wapp_page_end(r, &b, 200);
}

void wapp_h_login_post(qhttp_req *r, void *ctx)
{
    size_t len;
    const char *body = qhttp_req_body(r, &len);
    char token[WAPP_SECRET_HEX + 2] = "";
    wapp_form(body, len, "token", token, sizeof token);
    login(ctx, r, token);
    OPENSSL_cleanse(token, sizeof token);
}

void wapp_h_logout(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    wapp_session s;
    if (!wapp_check_write(w, r, "csrf", &s))
        return;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < WAPP_MAX_SESSIONS; i++)
        if (w->sessions[i].used && secret_eq(w->sessions[i].id, s.id))
            OPENSSL_cleanse(&w->sessions[i], sizeof w->sessions[i]);
    pthread_mutex_unlock(&w->mu);
    OPENSSL_cleanse(&s, sizeof s);
    wapp_message_page(r, 200, "Logged out", "The session has ended.", "/login", "Log in");
    qhttp_reply_header(r, "Set-Cookie", WAPP_COOKIE "=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
}
