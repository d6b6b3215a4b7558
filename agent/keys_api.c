/* keys_api.c — the agent's /keys/ukey, /keys/vkey and /keys/verify handlers (agent-protocol §6):
 * thin REST wrappers around agent/keys.c, which holds the U/V halves and derives K. */
#include "api.h"

#include <string.h>

#include "keys.h"
#include "log.h"

static int version_ok(qhttp_req *r)
{
    qerr e;
    const char *ver = qhttp_req_param(r, "ver");
    if (!ver || agent_api_version(ver, NULL, &e) < 0) {
        qhttp_reply_error(r, 400, "%s", ver ? e.msg : "API version not supported");
        return 0;
    }
    return 1;
}

static void post_half(qhttp_req *r, agent_ctx *a, int (*fn)(agent_keys *, const cJSON *, qerr *), const char *what)
{
    qerr e;
    if (!version_ok(r))
        return;
    if (!a->keys) {
        qhttp_reply_error(r, 400, "payload delivery is not enabled on this agent");
        return;
    }
    const cJSON *body = qhttp_req_json(r, &e);
    if (!body) {
        qhttp_reply_error(r, 400, "%s: %s", what, e.msg);
        return;
    }
    if (fn(a->keys, body, &e) < 0) {
        qlog(QLOG_WARNING, "agent", "%s refused: %s", what, e.msg);
        qhttp_reply_error(r, e.code ? e.code : 400, "%s", e.msg);
        return;
    }
    qlog(QLOG_INFO, "agent", "%s accepted", what);
    qhttp_reply(r, 200, NULL);
}

void agent_h_ukey(qhttp_req *r, void *ctx)
{
    post_half(r, ctx, agent_keys_ukey, "ukey");
}

void agent_h_vkey(qhttp_req *r, void *ctx)
{
    post_half(r, ctx, agent_keys_vkey, "vkey");
}

void agent_h_verify(qhttp_req *r, void *ctx)
{
    agent_ctx *a = ctx;
    qerr e;
    if (!version_ok(r))
        return;
    if (!a->keys) {
        qhttp_reply_error(r, 400, "Bootstrap key not yet available.");
        return;
    }
    char hex[2 * 48 + 1];
    if (agent_keys_verify(a->keys, qhttp_req_query(r, "challenge"), hex, sizeof hex, &e) < 0) {
        qhttp_reply_error(r, e.code ? e.code : 400, "%s", e.msg);
        return;
    }
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "hmac", hex);
    qhttp_reply(r, 200, res);
}
