/* revocation_actions.c — POST /v{ver}/notifications/revocation (agent-protocol §7): the body
 * must be Keylime's revocation message signed with the key of the revocation certificate
 * ([agent] revocation_cert; "default" = the payload's unzipped/RevocationNotifier-cert.crt).
 * A forged, unsigned or malformed message is refused (400) and nothing runs. A good one runs
 * each action of [agent] revocation_actions (files in revocation_actions_dir) and, when
 * allow_payload_revocation_actions, each name in the payload's unzipped/action_list (files in
 * unzipped/), one after the other, each with the path of a file holding msg as its argument and
 * killed after revocation_action_timeout_ms. The answer (200) comes after the actions. */
#include "api.h"
#include "agent.h"
#include "buf.h"
#include "log.h"
#include "payload.h"
#include "revocation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CERT_MAX (64 * 1024)
#define LIST_MAX (16 * 1024)
#define MAX_ACTIONS 32

static void cert_path(const agent_ctx *a, char *out, size_t cap)
{
    if (strcmp(a->cfg.revocation_cert, "default") == 0)
        snprintf(out, cap, "%s/unzipped/RevocationNotifier-cert.crt", a->cfg.secure_dir);
    else
        snprintf(out, cap, "%s", a->cfg.revocation_cert);
}

/* Run each name of a comma/space/newline separated list from dir. */
static void run_list(const agent_ctx *a, const char *dir, const char *list, const char *msg_file, unsigned *ran)
{
    char buf[LIST_MAX];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *n = strtok_r(buf, ", \t\r\n", &save); n && *ran < MAX_ACTIONS; n = strtok_r(NULL, ", \t\r\n", &save)) {
        (*ran)++;
        int code = 0;
        qerr e = {0};
        if (agent_run_in_dir(dir, n, msg_file, a->cfg.revocation_action_timeout_ms, &code, &e) < 0)
            qlog(QLOG_ERROR, "agent", "agent %s: revocation action %s/%s failed: %s", a->uuid, dir, n, e.msg);
        else if (code != 0)
            qlog(QLOG_ERROR, "agent", "agent %s: revocation action %s/%s exited with status %d", a->uuid, dir, n, code);
        else
            qlog(QLOG_INFO, "agent", "agent %s: revocation action %s/%s done", a->uuid, dir, n);
    }
}

/* msg written to a private file in the secure directory for the actions; "" on failure. */
static void write_msg(const agent_ctx *a, const char *msg, char *path, size_t cap)
{
    snprintf(path, cap, "%s/revocation-XXXXXX", a->cfg.secure_dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        qlog(QLOG_ERROR, "agent", "agent %s: cannot write the revocation message for its actions: %s", a->uuid,
             strerror(errno));
        path[0] = '\0';
        return;
    }
    size_t n = strlen(msg), off = 0;
    while (off < n) {
        ssize_t w = write(fd, msg + off, n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
}

void agent_h_revocation(qhttp_req *r, void *ctx)
{
    agent_ctx *a = ctx;
    size_t len = 0;
    const char *body = qhttp_req_body(r, &len);
    char path[AGENT_PATH + 64];
    cert_path(a, path, sizeof path);
    qbuf cert;
    qbuf_init(&cert, CERT_MAX);
    if (qbuf_read_file(&cert, path, CERT_MAX) < 0 || !qbuf_cstr(&cert)) {
        int e = errno;
        qbuf_free(&cert);
        qlog(QLOG_WARNING, "agent", "agent %s: revocation message refused: no revocation certificate %s (%s)", a->uuid,
             path, strerror(e));
        qhttp_reply_error(r, 400, "no revocation certificate on this agent: the message cannot be verified");
        return;
    }
    cJSON *msg = NULL;
    qerr e = {0};
    int rc = qrevoc_verify(body ? body : "", body ? len : 0, (const char *)cert.data, &msg, &e);
    qbuf_free(&cert);
    if (rc < 0) {
        qlog(QLOG_WARNING, "agent", "agent %s: revocation message refused: %s", a->uuid, e.msg);
        qhttp_reply_error(r, 400, "%s", e.msg);
        return;
    }
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(msg, "agent_id");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(msg, "event_id");
    qlog(QLOG_WARNING, "agent", "agent %s: revocation of agent %s (%s) received and verified; running the actions",
         a->uuid, cJSON_IsString(who) ? who->valuestring : "?", cJSON_IsString(ev) ? ev->valuestring : "?");
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    char msg_file[AGENT_PATH + 32] = "";
    if (text)
        write_msg(a, text, msg_file, sizeof msg_file);
    free(text);
    unsigned ran = 0;
    if (msg_file[0]) {
        if (a->cfg.revocation_actions[0])
            run_list(a, a->cfg.revocation_actions_dir, a->cfg.revocation_actions, msg_file, &ran);
        if (a->cfg.allow_payload_revocation_actions) {
            char dir[AGENT_PATH + 16], lp[AGENT_PATH + 32];
            snprintf(dir, sizeof dir, "%s/unzipped", a->cfg.secure_dir);
            snprintf(lp, sizeof lp, "%s/action_list", dir);
            qbuf l;
            qbuf_init(&l, LIST_MAX - 1);
            if (qbuf_read_file(&l, lp, LIST_MAX - 1) == 0 && qbuf_cstr(&l))
                run_list(a, dir, (const char *)l.data, msg_file, &ran);
            qbuf_free(&l);
        }
        unlink(msg_file);
    }
    qhttp_reply(r, 200, NULL);
}
