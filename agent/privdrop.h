/* privdrop.h — drop root privileges to run_as ("user" or "user:group") for good: supplementary
 * groups, gid, then uid; afterwards regaining uid 0 must fail. Paths in `chown_paths` (NULL-ended)
 * are handed to the new user first (the state directory). */
#ifndef QUINCE_AGENT_PRIVDROP_H
#define QUINCE_AGENT_PRIVDROP_H

#include "err.h"

int agent_drop_privileges(const char *run_as, const char *const *chown_paths, qerr *err);

#endif
