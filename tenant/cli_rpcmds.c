/* cli_rpcmds.c — the runtime-policy commands (keylime-formats §5.2 /allowlists, §6):
 * addruntimepolicy (POST), updateruntimepolicy (PUT), showruntimepolicy (GET, prints the stored
 * policy JSON), deleteruntimepolicy (DELETE), listruntimepolicy (GET /allowlists/, one name per
 * line); addallowlist / showallowlist / deleteallowlist are the deprecated aliases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const tcli_named_kind KIND = {
    "runtime policy", "runtime policies", "/allowlists/", "runtimepolicy names", "runtime_policy",
};

static int upload(tcli_ctx *x, const char *method, const char *path, const char *name, qerr *err)
{
    bool add = strcmp(method, "POST") == 0;
    tcli_policy pol;
    if (tcli_policy_load(x->c, x->o, &pol, err) < 0)
        return -1;
    if (!pol.present)
        return qerr_setc(err, TCLI_EUSAGE, "--allowlist or --runtime-policy is required to %s a runtime policy",
                         add ? "add" : "update");
    char *tpm = tcli_tpm_policy_text(x->c, true);
    cJSON *body = cJSON_CreateObject();
    if (!tpm || !body || !cJSON_AddStringToObject(body, "tpm_policy", tpm) ||
        !cJSON_AddStringToObject(body, "runtime_policy", pol.b64) ||
        !cJSON_AddStringToObject(body, "runtime_policy_key", pol.key_b64 ? pol.key_b64 : "")) {
        cJSON_free(tpm);
        cJSON_Delete(body);
        tcli_policy_free(&pol);
        return qerr_setc(err, TCLI_EFAIL, "out of memory");
    }
    cJSON_free(tpm);
    qhttp_result r;
    int rc = tcli_call(x, TSRV_VERIFIER, method, path, body, &r, err);
    cJSON_Delete(body);
    const char *where = x->where[TSRV_VERIFIER];
    if (rc == 0 && r.status == 413)
        rc = tcli_http_error(&r, err, "the verifier at %s refused runtime policy %s (%zu bytes of JSON): it is over "
                             "the upload limit (max_upload_size)", where, name, pol.json_len);
    else if (rc == 0 && r.status != 201 && r.status != 200)
        rc = tcli_http_error(&r, err, "the verifier at %s did not %s runtime policy %s", where,
                             add ? "add" : "update", name);
    else if (rc == 0)
        printf("runtime policy %s %s the verifier at %s (%zu path%s, %zu exclude%s)\n", name,
               add ? "added to" : "updated on", where, pol.paths, pol.paths == 1 ? "" : "s", pol.excludes,
               pol.excludes == 1 ? "" : "s");
    fflush(stdout);
    qhttp_result_free(&r);
    tcli_policy_free(&pol);
    return rc;
}

int tcli_cmd_policy(tcli_ctx *x, qerr *err)
{
    if (x->o->cmd == TCMD_LISTPOLICY)
        return tcli_named_list(x, &KIND, err);
    const char *name = x->o->runtime_policy_name;
    if (!name)
        return qerr_setc(err, TCLI_EUSAGE, "--runtime-policy-name is required for -c %s", x->o->command);
    char path[3 * TCLI_NAME_MAX + 32];
    if (tcli_named_path(&KIND, name, path, sizeof path, err) < 0)
        return -1;
    switch (x->o->cmd) {
    case TCMD_ADDPOLICY:
        return upload(x, "POST", path, name, err);
    case TCMD_UPDATEPOLICY:
        return upload(x, "PUT", path, name, err);
    case TCMD_SHOWPOLICY:
        return tcli_named_show(x, &KIND, path, name, err);
    case TCMD_DELETEPOLICY:
        return tcli_named_delete(x, &KIND, path, name, err);
    default:
        return qerr_setc(err, TCLI_EUSAGE, "not a runtime policy command: %s", x->o->command);
    }
}
