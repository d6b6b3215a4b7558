/* mb_emulator.h — `quince-agent mb-emulator`: plays the firmware's part on a software TPM.
 * After the TPM's power-on it extends PCRs 0-9 and 11-15 from a real UEFI event log, once, so
 * that the quoted PCRs and the log agree (PCR 10 belongs to IMA and is left alone). */
#ifndef QUINCE_AGENT_MB_EMULATOR_H
#define QUINCE_AGENT_MB_EMULATOR_H

/* Returns the process exit status: 0 done, 1 TPM or log error, 2 bad options. */
int agent_mb_emulator_main(int argc, char **argv);

#endif
