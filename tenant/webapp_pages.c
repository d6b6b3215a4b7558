/* webapp_pages.c — pages rendered on the server, so they work without JavaScript: one agent (its
 * last failure's entries, the registrar's record, reactivate / stop / delete behind a confirm
 * step) and the add-agent form (the same checks and steps as `-c add`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "webapp.h"

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static void when(qbuf *b, double epoch)
{
    if (epoch <= 0) {
        qbuf_append_str(b, "never");
        return;
    }
    time_t t = (time_t)epoch;
    struct tm tm;
    char s[40];
    if (gmtime_r(&t, &tm) && strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S UTC", &tm))
        qbuf_append_str(b, s);
}

/* "<tr><th>k</th><td>v</td></tr>" with v escaped. */
static void row(qbuf *b, const char *k, const char *v)
{
    qbuf_append_str(b, "<tr><th scope=\"row\">");
    wapp_html(b, k);
    qbuf_append_str(b, "</th><td>");
    wapp_html(b, v ? v : "");
    qbuf_append_str(b, "</td></tr>");
}

/* A link to a policy page; the name is URL-encoded, then HTML-escaped. */
static void policy_link(qbuf *b, const char *name)
{
    char *esc = curl_easy_escape(NULL, name, 0);
    qbuf_append_str(b, "<a href=\"/policy/");
    wapp_html(b, esc ? esc : "");
    qbuf_append_str(b, "\">");
    wapp_html(b, name);
    qbuf_append_str(b, "</a>");
    curl_free(esc);
}

static void action_form(qbuf *b, const char *id, const char *csrf, const char *action, const char *label,
                        bool confirm, const char *cls)
{
    qbuf_printf(b, "<form method=\"post\" action=\"/agent/%s/action\" class=\"inline\">"
                   "<input type=\"hidden\" name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"action\" "
                   "value=\"%s\">%s<button type=\"submit\" class=\"%s\" id=\"act-%s\">%s</button></form>",
                id, csrf, action, confirm ? "<input type=\"hidden\" name=\"confirm\" value=\"yes\">" : "", cls,
                action, label);
}

/* The last failed round's entries, as `-c status` lists them. */
static void failures_part(qbuf *b, const cJSON *st)
{
    const cJSON *fails = cJSON_GetObjectItemCaseSensitive(st, "failures"), *f;
    qbuf_append_str(b, "<h2>Last failure</h2>");
    if (!cJSON_IsArray(fails) || cJSON_GetArraySize(fails) == 0) {
        qbuf_append_str(b, "<p id=\"no-failures\">No failure recorded.</p>");
        return;
    }
    qbuf_append_str(b, "<table id=\"failures\"><thead><tr><th scope=\"col\">Entry</th><th scope=\"col\">Path</th>"
                       "<th scope=\"col\">Reason</th><th scope=\"col\">Event</th></tr></thead><tbody>");
    cJSON_ArrayForEach(f, fails) {
        const cJSON *entry = cJSON_GetObjectItemCaseSensitive(f, "entry");
        qbuf_append_str(b, "<tr><td>");
        if (cJSON_IsNumber(entry))
            qbuf_printf(b, "%.0f", entry->valuedouble);
        else
            qbuf_append_str(b, "—");
        qbuf_append_str(b, "</td><td class=\"path\">");
        wapp_html(b, jstr(f, "path"));
        qbuf_append_str(b, "</td><td>");
        wapp_html(b, jstr(f, "reason"));
        qbuf_append_str(b, "</td><td>");
        wapp_html(b, jstr(f, "event_id"));
        qbuf_append_str(b, "</td></tr>");
    }
    qbuf_append_str(b, "</tbody></table>");
}

static void verifier_part(qbuf *b, const cJSON *st)
{
    long state = (long)jnum(st, "operational_state", -1);
    const char *sname = jstr(st, "operational_state_name");
    char num[64];
    qbuf_printf(b, "<p>State: <span id=\"state\" class=\"state %s\">", wapp_state_class(state));
    wapp_html(b, sname ? sname : tcli_state_name(state));
    qbuf_append_str(b, "</span></p>");
    failures_part(b, st);
    qbuf_append_str(b, "<h2>Verifier</h2><table class=\"kv\" id=\"verifier-data\">");
    row(b, "Attestation", jstr(st, "attestation_status"));
    snprintf(num, sizeof num, "%.0f", jnum(st, "attestation_count", 0));
    row(b, "Attestations", num);
    qbuf_append_str(b, "<tr><th scope=\"row\">Last attestation</th><td>");
    when(b, jnum(st, "last_successful_attestation", 0));
    qbuf_append_str(b, "</td></tr>");
    const char *ip = jstr(st, "ip");
    snprintf(num, sizeof num, "%.0f", jnum(st, "port", 0));
    row(b, "Address", ip);
    row(b, "Port", num);
    qbuf_append_str(b, "<tr><th scope=\"row\">Policy</th><td>");
    const char *pol = jstr(st, "runtime_policy_name");
    if (pol && *pol)
        policy_link(b, pol);
    else
        qbuf_append_str(b, jnum(st, "has_runtime_policy", 0) ? "(unnamed)" : "none");
    qbuf_append_str(b, "</td></tr>");
    row(b, "TPM policy", jstr(st, "tpm_policy"));
    row(b, "Last event", jstr(st, "last_event_id"));
    snprintf(num, sizeof num, "%.0f", jnum(st, "consecutive_failures", 0));
    row(b, "Connection failures in a row", num);
    qbuf_append_str(b, "</table>");
}

static void registrar_part(qbuf *b, const qhttp_result *rr, const char *where)
{
    qbuf_append_str(b, "<h2>Registrar</h2>");
    if (rr->status != 200) {
        char d[QERR_MSG_MAX];
        qbuf_append_str(b, "<p>Not registered and active at the registrar at ");
        wapp_html(b, where);
        qbuf_append_str(b, " (");
        wapp_html(b, qhttp_result_describe(rr, d, sizeof d));
        qbuf_append_str(b, ").</p>");
        return;
    }
    const cJSON *res = rr->results;
    char num[64];
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(res, "port");
    qbuf_append_str(b, "<table class=\"kv\" id=\"registrar-data\">");
    row(b, "Address", jstr(res, "ip"));
    if (cJSON_IsString(port))
        row(b, "Port", port->valuestring);
    else {
        snprintf(num, sizeof num, "%.0f", jnum(res, "port", 0));
        row(b, "Port", num);
    }
    snprintf(num, sizeof num, "%.0f", jnum(res, "regcount", 0));
    row(b, "Registrations", num);
    const char *ek = jstr(res, "ekcert"), *mtls = jstr(res, "mtls_cert");
    row(b, "EK certificate", ek && *ek ? "present" : "absent");
    row(b, "mTLS certificate", !mtls ? "none" : strcmp(mtls, "disabled") == 0 ? "disabled" : "present");
    qbuf_append_str(b, "</table>");
}

void wapp_h_agent(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    wapp_session s;
    if (!wapp_check_read(w, r, &s))
        return;
    tcli_ctx x;
    tcli_opts o;
    qerr e;
    qerr_clear(&e);
    qhttp_result cr, rr;
    memset(&cr, 0, sizeof cr);
    memset(&rr, 0, sizeof rr);
    if (wapp_ctx_open(w, &x, &o, qhttp_req_param(r, "id"), &e) < 0) {
        wapp_message_page(r, 400, "Agent", e.msg, "/", "Agents");
        goto out;
    }
    char path[TCLI_ID_MAX + 16];
    snprintf(path, sizeof path, "/agents/%s", o.uuid);
    if (tcli_call(&x, TSRV_VERIFIER, "GET", path, NULL, &cr, &e) < 0 ||
        tcli_call(&x, TSRV_REGISTRAR, "GET", path, NULL, &rr, &e) < 0) {
        wapp_message_page(r, 502, "Agent", e.msg, "/", "Agents");
        goto out;
    }
    char title[TCLI_ID_MAX + 16];
    snprintf(title, sizeof title, "Agent %s", o.uuid);
    qbuf b;
    wapp_page_begin(&b, title);
    if (cr.status == 200) {
        verifier_part(&b, cr.results);
    } else {
        char d[QERR_MSG_MAX];
        qbuf_append_str(&b, "<p id=\"state\">Not on the verifier at ");
        wapp_html(&b, x.where[TSRV_VERIFIER]);
        qbuf_append_str(&b, " (");
        wapp_html(&b, qhttp_result_describe(&cr, d, sizeof d));
        qbuf_append_str(&b, ").</p>");
    }
    registrar_part(&b, &rr, x.where[TSRV_REGISTRAR]);
    if (cr.status == 200) {
        qbuf_append_str(&b, "<h2>Actions</h2><div class=\"actions\">");
        action_form(&b, o.uuid, s.csrf, "reactivate", "Reactivate", false, "");
        action_form(&b, o.uuid, s.csrf, "stop", "Stop", false, "");
        action_form(&b, o.uuid, s.csrf, "delete", "Delete from the verifier", false, "danger");
        qbuf_append_str(&b, "</div>");
    }
    wapp_page_end(r, &b, 200);
out:
    OPENSSL_cleanse(&s, sizeof s);
    qhttp_result_free(&cr);
    qhttp_result_free(&rr);
    wapp_ctx_close(&x);
}

static int stop_agent(tcli_ctx *x, qerr *err)
{
    char path[TCLI_ID_MAX + 32];
    snprintf(path, sizeof path, "/agents/%s/stop", x->o->uuid);
    qhttp_result res;
    int rc = tcli_call(x, TSRV_VERIFIER, "PUT", path, NULL, &res, err);
    if (rc == 0 && res.status != 200)
        rc = tcli_http_error(&res, err, "the verifier at %s did not stop agent %s", x->where[TSRV_VERIFIER],
                             x->o->uuid);
    qhttp_result_free(&res);
    return rc;
}

void wapp_h_agent_action(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    wapp_session s;
    if (!wapp_check_write(w, r, "csrf", &s))
        return;
    size_t len;
    const char *body = qhttp_req_body(r, &len);
    char action[32] = "", confirm[8] = "";
    wapp_form(body, len, "action", action, sizeof action);
    wapp_form(body, len, "confirm", confirm, sizeof confirm);
    tcli_ctx x;
    tcli_opts o;
    qerr e;
    qerr_clear(&e);
    char back[TCLI_ID_MAX + 16], msg[QERR_MSG_MAX + 64];
    if (wapp_ctx_open(w, &x, &o, qhttp_req_param(r, "id"), &e) < 0) {
        wapp_message_page(r, 400, "Agent", e.msg, "/", "Agents");
        goto out;
    }
    snprintf(back, sizeof back, "/agent/%s", o.uuid);
    static const char *const WHAT[][2] = { {"reactivate", "reactivate (attestation starts again from the stored "
                                            "state)"}, {"stop", "stop (the verifier stops polling it)"},
                                           {"delete", "delete from the verifier (it is no longer attested)"} };
    int which = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(action, WHAT[i][0]) == 0)
            which = i;
    if (which < 0) {
        wapp_message_page(r, 400, "Agent", "unknown action", back, "Back to the agent");
        goto out;
    }
    if (strcmp(confirm, "yes") != 0) {
        qbuf b;
        wapp_page_begin(&b, "Confirm");
        qbuf_printf(&b, "<p id=\"confirm-text\">Really %s agent %s?</p>", WHAT[which][1], o.uuid);
        action_form(&b, o.uuid, s.csrf, action, "Yes", true, which == 2 ? "danger" : "");
        qbuf_printf(&b, " <a href=\"%s\" id=\"cancel\">Cancel</a>", back);
        wapp_page_end(r, &b, 200);
        goto out;
    }
    int rc = which == 0 ? tcli_cmd_reactivate(&x, &e) : which == 1 ? stop_agent(&x, &e)
                                                                    : tcli_cmd_delete(&x, false, NULL, &e);
    if (rc < 0) {
        wapp_message_page(r, 502, "Agent", e.msg, back, "Back to the agent");
        goto out;
    }
    snprintf(msg, sizeof msg, "agent %s: %s done", o.uuid, action);
    wapp_message_page(r, 200, "Agent", msg, which == 2 ? "/" : back, which == 2 ? "Agents" : "Back to the agent");
out:
    OPENSSL_cleanse(&s, sizeof s);
    wapp_ctx_close(&x);
}

/* ---- add an agent ---------------------------------------------------------------------------- */

static void add_form(qbuf *b, const char *csrf)
{
    qbuf_printf(b, "<form method=\"post\" action=\"/add\" class=\"card\" id=\"add-form\">"
                   "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
                   "<label for=\"uuid\">Agent uuid</label><input id=\"uuid\" name=\"uuid\" required maxlength=\"%d\">"
                   "<label for=\"ip\">Agent address (empty: the address it registered)</label>"
                   "<input id=\"ip\" name=\"ip\" maxlength=\"%d\">"
                   "<label for=\"port\">Agent port (empty: the port it registered)</label>"
                   "<input id=\"port\" name=\"port\" inputmode=\"numeric\" maxlength=\"5\">"
                   "<label for=\"policy\">Stored runtime policy (optional)</label>"
                   "<input id=\"policy\" name=\"policy\" maxlength=\"%d\">"
                   "<button type=\"submit\" id=\"add-submit\">Add agent</button></form>"
                   "<p class=\"hint\">The tenant checks the agent as <code>-c add</code> does: registrar record, "
                   "identity quote signed by its AK, PCR 16 bound to its key.</p>",
                csrf, TCLI_ID_MAX, TCLI_HOST_MAX, TCLI_NAME_MAX);
}

void wapp_h_add_get(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    wapp_session s;
    if (!wapp_check_read(w, r, &s))
        return;
    qbuf b;
    wapp_page_begin(&b, "Add agent");
    add_form(&b, s.csrf);
    OPENSSL_cleanse(&s, sizeof s);
    wapp_page_end(r, &b, 200);
}

void wapp_h_add_post(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    if (!wapp_check_write(w, r, "csrf", NULL))
        return;
    size_t len;
    const char *body = qhttp_req_body(r, &len);
    char uuid[TCLI_ID_MAX + 2] = "", ip[TCLI_HOST_MAX + 2] = "", port[16] = "", pol[TCLI_NAME_MAX + 2] = "";
    wapp_form(body, len, "uuid", uuid, sizeof uuid);
    wapp_form(body, len, "ip", ip, sizeof ip);
    wapp_form(body, len, "port", port, sizeof port);
    wapp_form(body, len, "policy", pol, sizeof pol);
    tcli_ctx x;
    tcli_opts o;
    qerr e;
    qerr_clear(&e);
    if (wapp_ctx_open(w, &x, &o, uuid, &e) < 0 || (ip[0] && tcli_check_host(ip, "the agent address", &e) < 0)) {
        wapp_message_page(r, 400, "Add agent", e.msg, "/add", "Back");
        goto out;
    }
    o.agent_ip = ip[0] ? ip : NULL;
    if (port[0]) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535) {
            wapp_message_page(r, 400, "Add agent", "invalid agent port (1..65535)", "/add", "Back");
            goto out;
        }
        o.agent_port = p;
    }
    if (pol[0]) {
        for (const char *p = pol; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '/') {
                wapp_message_page(r, 400, "Add agent", "invalid runtime policy name: printable characters without '/'",
                                  "/add", "Back");
                goto out;
            }
        o.runtime_policy_name = pol;
    }
    if (tcli_cmd_add(&x, &e) < 0) {
        wapp_message_page(r, e.code == TCLI_EUSAGE ? 400 : 502, "Add agent", e.msg, "/add", "Back");
        goto out;
    }
    char msg[TCLI_ID_MAX + 64], back[TCLI_ID_MAX + 16];
    snprintf(msg, sizeof msg, "agent %s added to the verifier", o.uuid);
    snprintf(back, sizeof back, "/agent/%s", o.uuid);
    wapp_message_page(r, 200, "Add agent", msg, back, "Show the agent");
out:
    wapp_ctx_close(&x);
}
