/* privdrop.c — see privdrop.h. */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

int agent_drop_privileges(const char *run_as, const char *const *chown_paths, qerr *err)
{
    char user[256], *group = NULL;
    if (snprintf(user, sizeof user, "%s", run_as) >= (int)sizeof user)
        return qerr_set(err, "run_as '%s' is too long", run_as);
    char *colon = strchr(user, ':');
    if (colon) {
        *colon = '\0';
        group = colon + 1;
    }
    struct passwd *pw = getpwnam(user);
    if (!pw)
        return qerr_set(err, "run_as: no user '%s'", user);
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (group && *group) {
        struct group *gr = getgrnam(group);
        if (!gr)
            return qerr_set(err, "run_as: no group '%s'", group);
        gid = gr->gr_gid;
    }
    if (geteuid() != 0)
        return qerr_set(err, "run_as '%s' needs the agent to start as root", run_as);
    for (const char *const *p = chown_paths; p && *p; p++)
        if (chown(*p, uid, gid) < 0)
            return qerr_set(err, "cannot hand %s to %s: %s", *p, run_as, strerror(errno));
    if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
        return qerr_set(err, "cannot switch to %s: %s", run_as, strerror(errno));
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
        return qerr_set(err, "privileges could be regained after switching to %s; refusing to run", run_as);
    return 0;
}
