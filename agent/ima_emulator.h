/* ima_emulator.h — `quince-agent ima-emulator`: keep a software TPM's PCR 10 in step with an IMA
 * ASCII measurement list that a test rig writes (playing the kernel's part).
 *
 * Contract:
 * - Refuses a TPM that is not a software TPM (qtpm_is_software) unless force is set.
 * - Start (and after any TPM error): reads PCR 10 of every bank used; all zeros means "nothing
 *   extended yet", otherwise the list is replayed from its start to find the prefix whose values
 *   PCR 10 holds; none matches: error "PCR 10 does not match any prefix of <file>; reset the software TPM".
 * - Then, every interval_ms, every new complete '\n'-terminated line is extended into PCR 10, in
 *   each bank with that bank's hash of the template data (all-ones for violations); empty lines and
 *   lines that do not parse are skipped (a verifier does not extend them either); a template hash
 *   that does not match the template data is logged and the recomputed value extended (as the
 *   verifier's replay does). A partial last line waits for its '\n'.
 * - The TPM connection is held only while reading or extending, so an agent on the same swtpm can
 *   quote in between.
 * - once: process what is there and return. Otherwise run until *stop becomes non-zero. */
#ifndef QUINCE_AGENT_IMA_EMULATOR_H
#define QUINCE_AGENT_IMA_EMULATOR_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "err.h"
#include "pcr_bank.h"
#include "tpm.h"

#define AGENT_IMAEMU_DEFAULT_LOG "/sys/kernel/security/ima/ascii_runtime_measurements"
#define AGENT_IMAEMU_DEFAULT_INTERVAL_MS 200u

typedef struct agent_imaemu_opts {
    const char *tcti;            /* NULL: $TCTI, else QTPM_DEFAULT_TCTI */
    const char *ima_log;
    uint32_t banks;              /* bit per qhash_alg; 0: the banks active for PCR 10 (else sha1+sha256) */
    qhash_alg log_alg;           /* algorithm of the template-hash column (sha1) */
    unsigned interval_ms;        /* 0: AGENT_IMAEMU_DEFAULT_INTERVAL_MS */
    unsigned timeout_ms;         /* per TPM call; 0: QTPM_DEFAULT_TIMEOUT_MS */
    bool force, once;
} agent_imaemu_opts;

/* Per-bank extend values of one list line (without '\n'). Returns 1 with out filled, 0 for a line
 * that is not extended (empty, or a parse error: reason in err), -1 on an internal error.
 * *mismatch is set when the logged template hash differs from log_alg(template data).
 * scratch and tdata hold QIMA_SCRATCH_SIZE bytes each. */
int agent_imaemu_line_digests(const char *line, size_t len, uint32_t banks, qhash_alg log_alg, EVP_MD_CTX *ctx,
                              uint8_t *scratch, uint8_t *tdata, qtpm_digests *out, bool *mismatch, qerr *err);

/* Run the emulator. Returns 0 (once done, or stopped), -1 with a message. */
int agent_imaemu_run(const agent_imaemu_opts *o, const volatile sig_atomic_t *stop, qerr *err);

/* `quince-agent ima-emulator [options]`: argv[0] is the sub-command name. Exit status. */
int agent_ima_emulator_main(int argc, char **argv);

#endif
