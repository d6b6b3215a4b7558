/* identity.h — the agent's state directory and uuid.
 * state_dir is created (mode 0700) if missing. uuid "generate" makes a random v4 uuid once and
 * keeps it in <state_dir>/uuid so it survives restarts; "hash_ek" is the hex SHA-256 of the EK
 * public key as SubjectPublicKeyInfo PEM; any other value is used lower-cased (the project's
 * rule for agent ids). */
#ifndef QUINCE_AGENT_IDENTITY_H
#define QUINCE_AGENT_IDENTITY_H

#include <stddef.h>
#include <tss2/tss2_tpm2_types.h>
#include "err.h"

int agent_state_dir_ensure(const char *dir, qerr *err);
/* Resolve cfg_uuid into out (cap bytes). ek may be NULL unless cfg_uuid is "hash_ek". */
int agent_uuid_resolve(const char *cfg_uuid, const char *state_dir, const TPM2B_PUBLIC *ek, char *out, size_t cap,
                       qerr *err);

#endif
