/* vtls.h — the verifier's TLS material, prepared once at start-up ([verifier] tls_dir and the
 * operator's files; see vconfig.h).
 *
 * Contract:
 * - When any file comes from tls_dir (cfg->tls_generated), qtls_ensure_ca_dir makes the directory
 *   a working CA directory: created 0700 when missing (missing parents too, 0700), refused when it is
 *   not owned by the running user or is writable by group or others; missing files are made
 *   (server certificate names: [verifier] ip and [registrar] ip, plus localhost, 127.0.0.1 and
 *   ::1), existing ones are checked and never rewritten.
 * - Then every file in use is checked: the server certificate and key, and the client
 *   certificate and key, must be readable and belong together; trusted_client_ca must be a
 *   readable certificate. Nothing is ever silently replaced or skipped.
 * - Errors: -1 with one line naming the file ("key K does not match certificate C", "D is
 *   writable by group or others", ...). The report says what was made, and warns (for example
 *   when a configured address is missing from an existing server certificate). */
#ifndef QUINCE_VERIFIER_VTLS_H
#define QUINCE_VERIFIER_VTLS_H

#include "err.h"
#include "tls_ca.h"
#include "vconfig.h"

int vtls_prepare(const vconfig *cfg, qtls_ca_report *report, qerr *err);

#endif
