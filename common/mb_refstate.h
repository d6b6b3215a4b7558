/* mb_refstate.h — the measured-boot reference state: made from a known-good UEFI event log,
 * in the JSON shape that Keylime's `keylime-policy create measured-boot` writes (same keys and
 * values), so reference states move both ways between Quince and Keylime:
 *   has_secureboot, scrtm_and_bios[{scrtm, platform_firmware[]}], pk, kek, db, dbx,
 *   mokdig, mokxdig, kernels[{shim_authcode_sha256, grub_authcode_sha256,
 *   kernel_authcode_sha256 | vmlinuz_plain_sha256, initrd_plain_sha256, kernel_cmdline}]
 * Digests are "0x" + lower-case hex of the log's sha256 bank; kernel_cmdline is a regular
 * expression (the command line with Python's re.escape applied, as Keylime writes it). */
#ifndef QUINCE_MB_REFSTATE_H
#define QUINCE_MB_REFSTATE_H

#include <stddef.h>
#include <stdbool.h>
#include <cjson/cJSON.h>
#include "err.h"

/* Builds the reference state of a log. A log with Secure Boot off is refused unless
 * without_secureboot is set (then the kernel is pinned by its plain vmlinuz digest); a log
 * with Secure Boot on ignores the flag and sets *ignored_flag. Returns a new cJSON object the
 * caller frees, or NULL with a reason (no sha256 bank, Secure Boot state unknown, boot
 * applications other than shim, grub and the kernel, ...). */
cJSON *qmb_refstate_from_log(const void *log, size_t len, bool without_secureboot,
                             bool *ignored_flag, qerr *e);

/* Python re.escape (3.7+): a backslash before each of ()[]{}?*+-|^$\.&~# and white space.
 * Returns the length written (NUL excluded), or -1 when it does not fit in cap. */
long qmb_re_escape(const char *s, char *out, size_t cap);

#endif
