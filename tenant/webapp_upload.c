/* webapp_upload.c — POST /api/upload: an allowlist (+ optional excludes) or a runtime-policy JSON
 * from the browser is checked by the tenant's own parsers first (errors name the file and line,
 * and the answer carries that line's text), stored on the verifier under a name, then assigned to
 * the chosen agents the way `-c update --runtime-policy-name NAME` does it.
 *
 * Body: {"name": "...", "kind": "allowlist"|"policy", "text": "...", "file": "allowlist.txt",
 *        "excludes": "..." (optional), "excludes_file": "...", "agents": ["id", ...]}
 * Answer: 200 {"name", "paths", "excludes", "assigned": [{"id", "ok", "message"}]};
 *         400 {"error", "file", "line", "line_text"} for a bad file; 4xx/502 {"error"} else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "b64.h"
#include "policy.h"
#include "webapp.h"

#define FILE_NAME_MAX 128
#define LINE_TEXT_MAX 200

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A browser-given file name, safe for messages: printable ASCII, no ':' (it separates the line
 * number in parser messages), at most FILE_NAME_MAX bytes; def when empty. */
static void file_name(const char *in, const char *def, char out[FILE_NAME_MAX + 1])
{
    size_t o = 0;
    for (const char *p = in ? in : ""; *p && o < FILE_NAME_MAX; p++)
        out[o++] = ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || *p == ':') ? '_' : *p;
    out[o] = '\0';
    if (!o)
        snprintf(out, FILE_NAME_MAX + 1, "%s", def);
}

/* A parser error "<file>:<line>: reason" as {"error", "file", "line", "line_text"}. */
static void file_error(qhttp_req *r, const qerr *e, const char *file, const char *text)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "error", e->msg) && cJSON_AddStringToObject(o, "file", file);
    size_t fl = strlen(file);
    if (ok && strncmp(e->msg, file, fl) == 0 && e->msg[fl] == ':') {
        char *end;
        unsigned long line = strtoul(e->msg + fl + 1, &end, 10);
        if (end != e->msg + fl + 1 && *end == ':' && line > 0) {
            /* The line's own text, so the page can show it next to the message. */
            const char *p = text;
            for (unsigned long n = 1; p && n < line; n++) {
                p = strchr(p, '\n');
                if (p)
                    p++;
            }
            char lt[LINE_TEXT_MAX + 1] = "";
            if (p) {
                size_t n = strcspn(p, "\r\n");
                snprintf(lt, sizeof lt, "%.*s", (int)(n > LINE_TEXT_MAX ? LINE_TEXT_MAX : n), p);
            }
            ok = cJSON_AddNumberToObject(o, "line", (double)line) && cJSON_AddStringToObject(o, "line_text", lt);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        wapp_json_error(r, 500, "out of memory");
        return;
    }
    wapp_json(r, 400, o);
}

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > TCLI_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '/')
            return false;
    return true;
}

/* Parse and convert the upload into the policy JSON to store (malloc'd) and its counts. NULL
 * after replying with the error. */
static char *build(qhttp_req *r, const cJSON *in, size_t *paths, size_t *excludes)
{
    const char *kind = jstr(in, "kind"), *text = jstr(in, "text"), *etext = jstr(in, "excludes");
    bool allow = kind && strcmp(kind, "allowlist") == 0;
    if (!kind || (!allow && strcmp(kind, "policy") != 0) || !text) {
        wapp_json_error(r, 400, "an upload needs \"kind\" (allowlist or policy) and \"text\"");
        return NULL;
    }
    char file[FILE_NAME_MAX + 1], efile[FILE_NAME_MAX + 1];
    file_name(jstr(in, "file"), allow ? "allowlist" : "runtime-policy", file);
    file_name(jstr(in, "excludes_file"), "excludes", efile);
    if (etext && !allow) {
        wapp_json_error(r, 400, "an excludes file goes with an allowlist; a runtime policy has its own excludes");
        return NULL;
    }
    qerr e;
    qerr_clear(&e);
    qpolicy *pol = allow ? qpolicy_from_allowlist(text, strlen(text), file, &e)
                         : qpolicy_from_json(text, strlen(text), file, &e);
    if (!pol) {
        file_error(r, &e, file, text);
        return NULL;
    }
    if (etext && *etext && qpolicy_add_excludes(pol, etext, strlen(etext), efile, &e) < 0) {
        qpolicy_free(pol);
        file_error(r, &e, efile, etext);
        return NULL;
    }
    *paths = qpolicy_count(pol, QPOL_DIGESTS);
    *excludes = qexcludes_count(qpolicy_excludes(pol));
    char *json = allow ? qpolicy_to_json(pol, false, &e) : strdup(text);
    qpolicy_free(pol);
    if (!json)
        wapp_json_error(r, 500, "out of memory converting the policy");
    return json;
}

/* POST /allowlists/{name}. 0, or -1 after replying. */
static int store(qhttp_req *r, tcli_ctx *x, const char *name, const char *json)
{
    char *esc = curl_easy_escape(NULL, name, 0), path[3 * TCLI_NAME_MAX + 32];
    snprintf(path, sizeof path, "/allowlists/%s", esc ? esc : "");
    curl_free(esc);
    char *b64 = qb64_encode_alloc((const uint8_t *)json, strlen(json));
    char *tpm = tcli_tpm_policy_text(x->c, true);
    cJSON *body = cJSON_CreateObject();
    if (!esc || !b64 || !tpm || !body || !cJSON_AddStringToObject(body, "tpm_policy", tpm) ||
        !cJSON_AddStringToObject(body, "runtime_policy", b64) || !cJSON_AddStringToObject(body, "runtime_policy_key", "")) {
        free(b64);
        cJSON_free(tpm);
        cJSON_Delete(body);
        wapp_json_error(r, 500, "out of memory");
        return -1;
    }
    free(b64);
    cJSON_free(tpm);
    qhttp_result res;
    qerr e;
    qerr_clear(&e);
    int rc = tcli_call(x, TSRV_VERIFIER, "POST", path, body, &res, &e), status = 502;
    cJSON_Delete(body);
    if (rc == 0 && res.status != 201 && res.status != 200) {
        if (res.status == 400 || res.status == 409 || res.status == 413)
            status = (int)res.status;
        rc = tcli_http_error(&res, &e, "the verifier at %s did not store runtime policy %s", x->where[TSRV_VERIFIER],
                             name);
    }
    if (rc < 0)
        wapp_json_error(r, status, e.msg);
    qhttp_result_free(&res);
    return rc;
}

/* `-c update --runtime-policy-name NAME` for one agent. */
static cJSON *assign(wapp *w, const char *id, const char *name)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    tcli_ctx x;
    tcli_opts opts;
    qerr e;
    qerr_clear(&e);
    int rc = wapp_ctx_open(w, &x, &opts, id, &e);
    if (rc == 0) {
        opts.runtime_policy_name = name;
        rc = tcli_cmd_update(&x, &e);
    }
    wapp_ctx_close(&x);
    char msg[QERR_MSG_MAX + 64];
    if (rc == 0)
        snprintf(msg, sizeof msg, "agent %s now uses runtime policy %s", opts.uuid, name);
    if (!cJSON_AddStringToObject(o, "id", id) || !cJSON_AddBoolToObject(o, "ok", rc == 0) ||
        !cJSON_AddStringToObject(o, "message", rc == 0 ? msg : e.msg)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

void wapp_h_api_upload(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    if (!wapp_check_write(w, r, NULL, NULL))
        return;
    qerr e;
    qerr_clear(&e);
    const cJSON *in = qhttp_req_json(r, &e);
    if (!cJSON_IsObject(in)) {
        wapp_json_error(r, 400, in ? "the upload must be a JSON object" : e.msg);
        return;
    }
    const char *name = jstr(in, "name");
    if (!name_ok(name)) {
        wapp_json_error(r, 400, "the policy name must be 1 to 255 printable characters without '/'");
        return;
    }
    const cJSON *agents = cJSON_GetObjectItemCaseSensitive(in, "agents"), *a;
    if (agents && (!cJSON_IsArray(agents) || cJSON_GetArraySize(agents) > WAPP_MAX_AGENTS)) {
        wapp_json_error(r, 400, "\"agents\" must be a list of agent ids");
        return;
    }
    cJSON_ArrayForEach(a, agents) {
        char norm[TCLI_ID_MAX + 1];
        if (!cJSON_IsString(a) || tcli_uuid_check(a->valuestring, norm, sizeof norm, &e) < 0) {
            wapp_json_error(r, 400, cJSON_IsString(a) ? e.msg : "agent ids are strings");
            return;
        }
    }
    size_t paths = 0, excludes = 0;
    char *json = build(r, in, &paths, &excludes);
    if (!json)
        return;
    tcli_ctx x;
    tcli_opts o;
    if (wapp_ctx_open(w, &x, &o, NULL, &e) < 0) {
        free(json);
        wapp_json_error(r, 500, e.msg);
        return;
    }
    int rc = store(r, &x, name, json);
    wapp_ctx_close(&x);
    free(json);
    if (rc < 0)
        return;
    cJSON *out = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(out, "assigned");
    bool ok = out && list && cJSON_AddStringToObject(out, "name", name) &&
              cJSON_AddNumberToObject(out, "paths", (double)paths) &&
              cJSON_AddNumberToObject(out, "excludes", (double)excludes);
    cJSON_ArrayForEach(a, agents) {
        cJSON *one = ok ? assign(w, a->valuestring, name) : NULL;
        if (!one) {
            ok = false;
            break;
        }
        cJSON_AddItemToArray(list, one);
    }
    if (!ok) {
        cJSON_Delete(out);
        wapp_json_error(r, 500, "out of memory");
        return;
    }
    wapp_json(r, 200, out);
}
