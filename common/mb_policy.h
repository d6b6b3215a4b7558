/* mb_policy.h — judging a UEFI event log against a measured-boot reference state (the JSON of
 * mb_refstate.h, Quince's or Keylime's). A pure function of (reference, log): it checks
 *  - the Secure Boot state, PK, KEK and db (every key in the log is in the reference) and dbx
 *    (every reference entry is in the log);
 *  - the S-CRTM and the firmware blobs, in order, against one scrtm_and_bios entry;
 *  - shim, grub and the kernel (authenticode digests of the boot applications), the initrd and
 *    (without Secure Boot) vmlinuz digests and the kernel command line against one kernels entry;
 *  - MokList/MokListX digests, separators (value and digest), EV_EFI_ACTION strings, and that
 *    every event is of a kind the reference state expects in its PCR.
 * Every mismatch is a finding naming the event number and what was expected. */
#ifndef QUINCE_MB_POLICY_H
#define QUINCE_MB_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "eventlog.h"

#define QMB_MAX_FINDINGS 16
#define QMB_MAX_REF_BYTES (4u << 20)

typedef struct qmb_ref qmb_ref;    /* immutable once parsed; may be shared between threads */

/* Parses and checks a reference state (Keylime's shape: "0x" lower-case hex digests, key
 * lists of {SignatureOwner, SignatureData}, kernel_cmdline a regular expression). NULL with a
 * reason naming the offending key on bad input. */
qmb_ref *qmb_ref_parse(const char *json, size_t len, qerr *e);
void qmb_ref_free(qmb_ref *r);

typedef struct qmb_finding {
    int64_t event;                 /* event number, or -1 for the log as a whole */
    char msg[320];
} qmb_finding;

typedef struct qmb_result {
    unsigned total;                /* findings seen (may exceed the ones kept) */
    unsigned n;
    qmb_finding f[QMB_MAX_FINDINGS];
} qmb_result;

/* Judges the log. Returns 0 with out->total == 0 when it passes, 0 with findings when it does
 * not, -1 with a reason when the log cannot be read at all. */
int qmb_evaluate(const qmb_ref *ref, const void *log, size_t len, qmb_result *out, qerr *e);

/* The IMA boot_aggregate values this log allows, as Keylime computes them: for each bank,
 * H(PCR0 || ... || PCR7) and H(PCR0 || ... || PCR9). Writes up to max hex strings (each
 * 2 * QHASH_MAX_SIZE + 1 bytes) and returns how many. */
unsigned qmb_boot_aggregates(const qevlog_pcrs *p, char (*out)[2 * QHASH_MAX_SIZE + 1], unsigned max);

#endif
