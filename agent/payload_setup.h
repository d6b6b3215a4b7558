/* payload_setup.h — start-up and shut-down of payload delivery for the agent's main: the secure
 * directory (a tmpfs the agent mounts when it may, else an existing tmpfs; never persistent
 * disk), the delivery runner and the U/V key store hooked to it. With max_payload_size = 0
 * payload delivery is off (the /keys endpoints answer 400). Call setup after the payload key
 * exists and before privileges are dropped; the secure directory is then handed to run_as. */
#ifndef QUINCE_AGENT_PAYLOAD_SETUP_H
#define QUINCE_AGENT_PAYLOAD_SETUP_H

#include <stdbool.h>
#include "agent.h"

int agent_payload_setup(agent_ctx *a, bool mtls, qerr *err);
void agent_payload_teardown(agent_ctx *a);

#endif
