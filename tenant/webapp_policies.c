/* webapp_policies.c — the verifier's named runtime policies as server-side pages: the list and
 * one policy (entry counts, excludes, SHA-256 digest, the agents using it), and its deletion,
 * which the verifier refuses while an agent uses the policy; the refusal is shown with its reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "policy.h"
#include "webapp.h"

/* What one stored policy holds. */
typedef struct pol_info {
    bool ok;                      /* the text parsed */
    char why[QERR_MSG_MAX];       /* else why not */
    size_t digests, keyrings, imabuf, excludes;
    char sum[65];
    qpolicy *pol;                 /* owned; for the excludes list */
} pol_info;

static void pol_info_free(pol_info *p)
{
    qpolicy_free(p->pol);
    p->pol = NULL;
}

static int policy_path(const char *name, char *out, size_t cap)
{
    char *esc = curl_easy_escape(NULL, name, 0);
    if (!esc)
        return -1;
    int n = snprintf(out, cap, "/allowlists/%s", esc);
    curl_free(esc);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* GET one policy and describe it. -1 with err only when the verifier could not be asked or
 * answered anything but 200 (404 included). */
static int policy_get(tcli_ctx *x, const char *name, pol_info *pi, qerr *err)
{
    memset(pi, 0, sizeof *pi);
    char path[3 * TCLI_NAME_MAX + 32];
    if (policy_path(name, path, sizeof path) < 0)
        return qerr_set(err, "runtime policy name too long");
    qhttp_result r;
    if (tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    if (r.status != 200) {
        tcli_http_error(&r, err, "the verifier at %s has no runtime policy %s", x->where[TSRV_VERIFIER], name);
        qhttp_result_free(&r);
        return -1;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r.results, "runtime_policy");
    if (!cJSON_IsString(t)) {
        snprintf(pi->why, sizeof pi->why, "the verifier answered without the policy text");
    } else {
        size_t n = strlen(t->valuestring);
        qpolicy_checksum(t->valuestring, n, pi->sum);
        qerr pe;
        qerr_clear(&pe);
        if (!(pi->pol = qpolicy_from_json(t->valuestring, n, name, &pe))) {
            snprintf(pi->why, sizeof pi->why, "%s", pe.msg);
        } else {
            pi->ok = true;
            pi->digests = qpolicy_count(pi->pol, QPOL_DIGESTS);
            pi->keyrings = qpolicy_count(pi->pol, QPOL_KEYRINGS);
            pi->imabuf = qpolicy_count(pi->pol, QPOL_IMABUF);
            pi->excludes = qexcludes_count(qpolicy_excludes(pi->pol));
        }
    }
    qhttp_result_free(&r);
    return 0;
}

/* The agents whose runtime_policy_name is name, as links; "none" when none. */
static void users(qbuf *b, const qhttp_result *agents, const char *name)
{
    const cJSON *st;
    int n = 0;
    cJSON_ArrayForEach(st, agents->results) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(st, "runtime_policy_name");
        if (!cJSON_IsString(p) || strcmp(p->valuestring, name) != 0 || !st->string)
            continue;
        qbuf_append_str(b, n++ ? ", <a href=\"/agent/" : "<a href=\"/agent/");
        wapp_html(b, st->string);
        qbuf_append_str(b, "\">");
        wapp_html(b, st->string);
        qbuf_append_str(b, "</a>");
    }
    if (!n)
        qbuf_append_str(b, "none");
}

static void name_link(qbuf *b, const char *name)
{
    char *esc = curl_easy_escape(NULL, name, 0);
    qbuf_append_str(b, "<a href=\"/policy/");
    wapp_html(b, esc ? esc : "");
    qbuf_append_str(b, "\">");
    wapp_html(b, name);
    qbuf_append_str(b, "</a>");
    curl_free(esc);
}

void wapp_h_policies(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    if (!wapp_check_read(w, r, NULL))
        return;
    tcli_ctx x;
    tcli_opts o;
    qerr e;
    qerr_clear(&e);
    qhttp_result lr, ar;
    memset(&lr, 0, sizeof lr);
    memset(&ar, 0, sizeof ar);
    if (wapp_ctx_open(w, &x, &o, NULL, &e) < 0 || tcli_call(&x, TSRV_VERIFIER, "GET", "/allowlists/", NULL, &lr, &e) < 0 ||
        (lr.status != 200 && tcli_http_error(&lr, &e, "the verifier did not list its runtime policies") < 0) ||
        wapp_fetch_agents(&x, &ar, &e) < 0) {
        wapp_message_page(r, 502, "Policies", e.msg, "/", "Agents");
        goto out;
    }
    qbuf b;
    wapp_page_begin(&b, "Policies");
    qbuf_append_str(&b, "<p><a href=\"/upload\">Upload a policy</a></p><table id=\"policies\"><thead><tr>"
                        "<th scope=\"col\">Name</th><th scope=\"col\">Paths</th><th scope=\"col\">Keyrings</th>"
                        "<th scope=\"col\">ima-buf</th><th scope=\"col\">Excludes</th><th scope=\"col\">SHA-256</th>"
                        "<th scope=\"col\">Used by</th></tr></thead><tbody>");
    const cJSON *it, *names = cJSON_GetObjectItemCaseSensitive(lr.results, "runtimepolicy names");
    int n = 0;
    cJSON_ArrayForEach(it, names) {
        if (!cJSON_IsString(it))
            continue;
        if (n++ >= WAPP_MAX_POLICIES) {
            qbuf_printf(&b, "<tr><td colspan=\"7\">(more than %d policies: only the first are shown)</td></tr>",
                        WAPP_MAX_POLICIES);
            break;
        }
        pol_info pi;
        qerr pe;
        qerr_clear(&pe);
        qbuf_append_str(&b, "<tr><td>");
        name_link(&b, it->valuestring);
        if (policy_get(&x, it->valuestring, &pi, &pe) < 0 || !pi.ok) {
            qbuf_append_str(&b, "</td><td colspan=\"5\" class=\"error\">");
            wapp_html(&b, pe.msg[0] ? pe.msg : pi.why);
        } else {
            qbuf_printf(&b, "</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td><td><code>%.16s…</code>",
                        pi.digests, pi.keyrings, pi.imabuf, pi.excludes, pi.sum);
        }
        pol_info_free(&pi);
        qbuf_append_str(&b, "</td><td>");
        users(&b, &ar, it->valuestring);
        qbuf_append_str(&b, "</td></tr>");
    }
    qbuf_append_str(&b, "</tbody></table>");
    if (n == 0)
        qbuf_append_str(&b, "<p>No runtime policies stored on the verifier.</p>");
    wapp_page_end(r, &b, 200);
out:
    qhttp_result_free(&lr);
    qhttp_result_free(&ar);
    wapp_ctx_close(&x);
}

void wapp_h_policy(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    wapp_session s;
    if (!wapp_check_read(w, r, &s))
        return;
    const char *name = qhttp_req_param(r, "name");
    tcli_ctx x;
    tcli_opts o;
    qerr e;
    qerr_clear(&e);
    qhttp_result ar;
    memset(&ar, 0, sizeof ar);
    pol_info pi;
    memset(&pi, 0, sizeof pi);
    if (wapp_ctx_open(w, &x, &o, NULL, &e) < 0 || policy_get(&x, name, &pi, &e) < 0 ||
        wapp_fetch_agents(&x, &ar, &e) < 0) {
        wapp_message_page(r, 502, "Policy", e.msg, "/policies", "Policies");
        goto out;
    }
    char title[TCLI_NAME_MAX + 16];
    snprintf(title, sizeof title, "Policy %s", name);
    qbuf b;
    wapp_page_begin(&b, title);
    qbuf_append_str(&b, "<table class=\"kv\" id=\"policy-data\">");
    if (pi.ok) {
        qbuf_printf(&b, "<tr><th scope=\"row\">Paths</th><td>%zu</td></tr><tr><th scope=\"row\">Keyrings</th>"
                        "<td>%zu</td></tr><tr><th scope=\"row\">ima-buf entries</th><td>%zu</td></tr>"
                        "<tr><th scope=\"row\">Excludes</th><td>%zu</td></tr>",
                    pi.digests, pi.keyrings, pi.imabuf, pi.excludes);
    } else {
        qbuf_append_str(&b, "<tr><th scope=\"row\">Problem</th><td class=\"error\">");
        wapp_html(&b, pi.why);
        qbuf_append_str(&b, "</td></tr>");
    }
    qbuf_printf(&b, "<tr><th scope=\"row\">SHA-256</th><td><code id=\"digest\">%s</code></td></tr>"
                    "<tr><th scope=\"row\">Used by</th><td>", pi.sum);
    users(&b, &ar, name);
    qbuf_append_str(&b, "</td></tr></table>");
    size_t nx = pi.ok ? qexcludes_count(qpolicy_excludes(pi.pol)) : 0;
    if (nx) {
        qbuf_append_str(&b, "<h2>Excludes</h2><ul id=\"excludes\">");
        for (size_t i = 0; i < nx; i++) {
            qbuf_append_str(&b, "<li><code>");
            wapp_html(&b, qexcludes_pattern(qpolicy_excludes(pi.pol), i));
            qbuf_append_str(&b, "</code></li>");
        }
        qbuf_append_str(&b, "</ul>");
    }
    char path[3 * TCLI_NAME_MAX + 32];
    char *esc = curl_easy_escape(NULL, name, 0);
    snprintf(path, sizeof path, "/policy/%s/delete", esc ? esc : "");
    curl_free(esc);
    qbuf_append_str(&b, "<h2>Delete</h2><form method=\"post\" class=\"inline\" action=\"");
    wapp_html(&b, path);
    qbuf_printf(&b, "\"><input type=\"hidden\" name=\"csrf\" value=\"%s\"><button type=\"submit\" class=\"danger\" "
                    "id=\"delete-policy\">Delete this policy</button></form>", s.csrf);
    wapp_page_end(r, &b, 200);
out:
    OPENSSL_cleanse(&s, sizeof s);
    pol_info_free(&pi);
    qhttp_result_free(&ar);
    wapp_ctx_close(&x);
}

void wapp_h_policy_delete(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    wapp_session s;
    if (!wapp_check_write(w, r, "csrf", &s))
        return;
    const char *name = qhttp_req_param(r, "name");
    size_t len;
    const char *body = qhttp_req_body(r, &len);
    char confirm[8] = "", back[3 * TCLI_NAME_MAX + 32], path[3 * TCLI_NAME_MAX + 32];
    wapp_form(body, len, "confirm", confirm, sizeof confirm);
    char *esc = curl_easy_escape(NULL, name, 0);
    snprintf(back, sizeof back, "/policy/%s", esc ? esc : "");
    curl_free(esc);
    tcli_ctx x;
    tcli_opts o;
    qerr e;
    qerr_clear(&e);
    if (strcmp(confirm, "yes") != 0) {
        memset(&x, 0, sizeof x);
        qbuf b;
        wapp_page_begin(&b, "Confirm");
        qbuf_append_str(&b, "<p id=\"confirm-text\">Really delete runtime policy ");
        wapp_html(&b, name);
        qbuf_append_str(&b, " from the verifier?</p><form method=\"post\" class=\"inline\" action=\"");
        wapp_html(&b, back);
        qbuf_printf(&b, "/delete\"><input type=\"hidden\" name=\"csrf\" value=\"%s\"><input type=\"hidden\" "
                        "name=\"confirm\" value=\"yes\"><button type=\"submit\" class=\"danger\" id=\"act-delete\">"
                        "Yes</button></form> <a id=\"cancel\" href=\"", s.csrf);
        wapp_html(&b, back);
        qbuf_append_str(&b, "\">Cancel</a>");
        wapp_page_end(r, &b, 200);
        goto out;
    }
    qhttp_result res;
    memset(&res, 0, sizeof res);
    if (wapp_ctx_open(w, &x, &o, NULL, &e) < 0 || policy_path(name, path, sizeof path) < 0 ||
        tcli_call(&x, TSRV_VERIFIER, "DELETE", path, NULL, &res, &e) < 0) {
        qhttp_result_free(&res);
        wapp_message_page(r, 502, "Policy", e.msg[0] ? e.msg : "runtime policy name too long", back, "Back");
        goto out;
    }
    char msg[QERR_MSG_MAX + TCLI_NAME_MAX + 64];
    if (res.status == 200 || res.status == 204) {
        snprintf(msg, sizeof msg, "runtime policy %s deleted", name);
        wapp_message_page(r, 200, "Policy", msg, "/policies", "Policies");
    } else {
        char d[QERR_MSG_MAX];
        snprintf(msg, sizeof msg, "The verifier refused to delete runtime policy %s: %s", name,
                 qhttp_result_describe(&res, d, sizeof d));
        wapp_message_page(r, res.status == 409 ? 409 : 502, "Policy not deleted", msg, back, "Back to the policy");
    }
    qhttp_result_free(&res);
out:
    OPENSSL_cleanse(&s, sizeof s);
    wapp_ctx_close(&x);
}
