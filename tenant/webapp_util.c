/* webapp_util.c — the small pieces every web handler uses: HTML escaping, form fields, the page
 * frame, redirects, JSON replies, and a tenant context (own HTTP client) per request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "webapp.h"

void wapp_html(qbuf *b, const char *s)
{
    if (!s)
        return;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '&': qbuf_append_str(b, "&amp;"); break;
        case '<': qbuf_append_str(b, "&lt;"); break;
        case '>': qbuf_append_str(b, "&gt;"); break;
        case '"': qbuf_append_str(b, "&quot;"); break;
        case '\'': qbuf_append_str(b, "&#39;"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                qbuf_printf(b, "\\x%02x", c);    /* visible, never a markup or line break */
            else
                qbuf_append(b, p, 1);
        }
    }
}

bool wapp_form(const char *body, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fe = amp ? amp : end;
        if ((size_t)(fe - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vl = (size_t)(fe - v);
            if (vl >= cap * 3 + 1)
                return false;
            /* '+' means a blank in form bodies; curl decodes the %XX escapes. */
            char *plus = strndup(v, vl);
            if (!plus)
                return false;
            for (char *q = plus; *q; q++)
                if (*q == '+')
                    *q = ' ';
            int olen = 0;
            char *dec = curl_easy_unescape(NULL, plus, (int)vl, &olen);
            free(plus);
            if (!dec)
                return false;
            bool ok = olen >= 0 && (size_t)olen < cap && memchr(dec, '\0', (size_t)olen) == NULL;
            if (ok) {
                memcpy(out, dec, (size_t)olen);
                out[olen] = '\0';
            }
            curl_free(dec);
            return ok;
        }
        p = fe + 1;
    }
    return false;
}

void wapp_page_begin(qbuf *b, const char *title)
{
    qbuf_init(b, 64u << 20);
    qbuf_append_str(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                       "<link rel=\"stylesheet\" href=\"/static/style.css\"><title>");
    wapp_html(b, title);
    qbuf_append_str(b, " — Quince</title></head><body><header><nav aria-label=\"main\">"
                       "<a class=\"brand\" href=\"/\">Quince</a> <a href=\"/\">Agents</a> "
                       "<a href=\"/policies\">Policies</a> <a href=\"/upload\">Upload policy</a> "
                       "<a href=\"/add\">Add agent</a></nav></header><main><h1>");
    wapp_html(b, title);
    qbuf_append_str(b, "</h1>");
}

void wapp_page_end(qhttp_req *r, qbuf *b, int status)
{
    qbuf_append_str(b, "</main></body></html>\n");
    wapp_headers(r);
    if (b->failed || !qbuf_cstr(b))
        qhttp_reply_raw(r, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
    else
        qhttp_reply_raw(r, status, "text/html; charset=utf-8", b->data, b->len);
    qbuf_free(b);
}

void wapp_message_page(qhttp_req *r, int status, const char *title, const char *msg, const char *back_href,
                       const char *back_text)
{
    qbuf b;
    wapp_page_begin(&b, title);
    qbuf_append_str(&b, status >= 400 ? "<p class=\"error\" role=\"alert\" id=\"message\">"
                                      : "<p class=\"ok\" role=\"status\" id=\"message\">");
    wapp_html(&b, msg);
    qbuf_append_str(&b, "</p>");
    if (back_href) {
        qbuf_append_str(&b, "<p><a href=\"");
        wapp_html(&b, back_href);
        qbuf_append_str(&b, "\">");
        wapp_html(&b, back_text);
        qbuf_append_str(&b, "</a></p>");
    }
    wapp_page_end(r, &b, status);
}

void wapp_redirect(qhttp_req *r, const char *location)
{
    wapp_headers(r);
    qhttp_reply_raw(r, 303, "text/plain; charset=utf-8", "", 0);
    qhttp_reply_header(r, "Location", location);
}

void wapp_json(qhttp_req *r, int status, cJSON *obj)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    wapp_headers(r);
    if (!s) {
        qhttp_reply_raw(r, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
        return;
    }
    qhttp_reply_raw(r, status, "application/json", s, strlen(s));
    cJSON_free(s);
}

void wapp_json_error(qhttp_req *r, int status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "error", msg)) {
        cJSON_Delete(o);
        o = NULL;
    }
    wapp_json(r, status, o);
}

int wapp_ctx_open(wapp *w, tcli_ctx *x, tcli_opts *o, const char *uuid, qerr *err)
{
    memset(x, 0, sizeof *x);
    memcpy(o, &w->o, sizeof *o);
    o->tpm_policy_obj = NULL;           /* owned by w->o; the commands read w->c's copy */
    if (uuid && tcli_uuid_check(uuid, o->uuid, sizeof o->uuid, err) < 0)
        return -1;
    o->uuid_default = !uuid;
    if (!(x->http = tcli_http_new(&w->c, 64u << 20, err)))
        return -1;
    x->o = o;
    x->c = &w->c;
    tcli_base_url_tls(!w->c.insecure, w->c.reg_ip, w->c.reg_port, x->base[TSRV_REGISTRAR], sizeof x->base[0],
                      x->where[TSRV_REGISTRAR], sizeof x->where[0]);
    tcli_base_url_tls(!w->c.insecure, w->c.cv_ip, w->c.cv_port, x->base[TSRV_VERIFIER], sizeof x->base[0],
                      x->where[TSRV_VERIFIER], sizeof x->where[0]);
    return 0;
}

void wapp_ctx_close(tcli_ctx *x)
{
    qhttp_client_free(x->http);
    x->http = NULL;
}

const char *wapp_state_class(long state)
{
    switch (state) {
    case 3: case 5:
        return "st-good";
    case 1: case 2: case 4: case 6:
        return "st-wait";
    case 7: case 9:
        return "st-bad";
    case 8: case 10:
        return "st-stop";
    default:
        return "st-none";
    }
}
