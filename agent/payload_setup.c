/* payload_setup.c — see payload_setup.h. */
#include "payload_setup.h"

#include <string.h>

#include "keys.h"
#include "log.h"
#include "payload.h"

static agent_payload_runner *g_runner;
static bool g_mounted;

int agent_payload_setup(agent_ctx *a, bool mtls, qerr *err)
{
    if (a->cfg.max_payload_size == 0) {
        qlog(QLOG_INFO, "agent", "payload delivery is off (max_payload_size = 0)");
        return 0;
    }
    if (agent_secure_dir_prepare(a->cfg.secure_dir, (size_t)a->cfg.secure_size, true, &g_mounted, err) < 0)
        return -1;                      /* the message names the secure directory */
    agent_payload_opts po;
    memset(&po, 0, sizeof po);
    snprintf(po.secure_dir, sizeof po.secure_dir, "%s", a->cfg.secure_dir);
    snprintf(po.script, sizeof po.script, "%s", a->cfg.payload_script);
    po.extract_zip = a->cfg.extract_payload_zip;
    po.mtls = mtls;
    po.insecure_payload = a->cfg.enable_insecure_payload;
    if (po.script[0] && !agent_payload_script_allowed(true, mtls, po.insecure_payload))
        qlog(QLOG_WARNING, "agent", "payload_script '%s' will not run: the agent API is not mutually "
                                    "authenticated (set enable_insecure_payload = true to allow it anyway)",
             po.script);
    g_runner = agent_payload_runner_start(&po, err);
    if (!g_runner)
        return -1;
    a->keys = agent_keys_new(&a->payload, a->uuid, (size_t)a->cfg.max_payload_size, err);
    if (!a->keys) {
        agent_payload_runner_stop(g_runner);
        g_runner = NULL;
        return -1;
    }
    agent_keys_set_hook(a->keys, agent_payload_on_key, g_runner);
    qlog(QLOG_INFO, "agent", "payloads are decrypted into %s (%s)", a->cfg.secure_dir,
         g_mounted ? "a tmpfs mounted by the agent" : "an existing tmpfs");
    return 0;
}

void agent_payload_teardown(agent_ctx *a)
{
    agent_keys_free(a->keys);
    a->keys = NULL;
    if (g_runner)
        agent_payload_runner_stop(g_runner);
    g_runner = NULL;
    if (g_mounted)
        agent_secure_dir_release(a->cfg.secure_dir, g_mounted);
    g_mounted = false;
}
