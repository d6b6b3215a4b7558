/* eventlog.h — the TCG PC Client firmware event log (Linux: binary_bios_measurements).
 * A streaming, bounds-checked reader over a log held in memory, in either format:
 *  - crypto-agile: a SHA-1-format header event (EV_NO_ACTION, "Spec ID Event03") that lists the
 *    banks and their digest sizes, then TCG_PCR_EVENT2 records with one digest per bank;
 *  - the old SHA-1 format: TCG_PCR_EVENT records only.
 * Events point into the caller's buffer (no copies); the buffer must outlive the reader.
 * Every error names the event number (0-based, the header is event 0) and its byte offset.
 * Replay follows the firmware's rules: EV_NO_ACTION events are never extended, and a
 * "StartupLocality" EV_NO_ACTION event sets the locality byte of PCR 0's initial value. */
#ifndef QUINCE_EVENTLOG_H
#define QUINCE_EVENTLOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "err.h"
#include "pcr_bank.h"

#define QEVLOG_MAX_BYTES   (16u << 20)  /* larger logs are refused */
#define QEVLOG_MAX_EVENTS  65536u
#define QEVLOG_MAX_DATA    (1u << 20)   /* one event's data */
#define QEVLOG_MAX_BANKS   8u
#define QEVLOG_NUM_PCRS    24u

/* Event types (TCG PC Client Platform Firmware Profile). */
enum {
    QEV_PREBOOT_CERT = 0x0, QEV_POST_CODE = 0x1, QEV_NO_ACTION = 0x3, QEV_SEPARATOR = 0x4,
    QEV_ACTION = 0x5, QEV_EVENT_TAG = 0x6, QEV_S_CRTM_CONTENTS = 0x7, QEV_S_CRTM_VERSION = 0x8,
    QEV_CPU_MICROCODE = 0x9, QEV_PLATFORM_CONFIG_FLAGS = 0xA, QEV_TABLE_OF_DEVICES = 0xB,
    QEV_COMPACT_HASH = 0xC, QEV_IPL = 0xD, QEV_IPL_PARTITION_DATA = 0xE,
    QEV_NONHOST_CODE = 0xF, QEV_NONHOST_CONFIG = 0x10, QEV_NONHOST_INFO = 0x11,
    QEV_OMIT_BOOT_DEVICE_EVENTS = 0x12,
    QEV_EFI_EVENT_BASE = 0x80000000u,
    QEV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001u, QEV_EFI_VARIABLE_BOOT = 0x80000002u,
    QEV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003u, QEV_EFI_BOOT_SERVICES_DRIVER = 0x80000004u,
    QEV_EFI_RUNTIME_SERVICES_DRIVER = 0x80000005u, QEV_EFI_GPT_EVENT = 0x80000006u,
    QEV_EFI_ACTION = 0x80000007u, QEV_EFI_PLATFORM_FIRMWARE_BLOB = 0x80000008u,
    QEV_EFI_HANDOFF_TABLES = 0x80000009u, QEV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000000Au,
    QEV_EFI_HANDOFF_TABLES2 = 0x8000000Bu, QEV_EFI_VARIABLE_BOOT2 = 0x8000000Cu,
    QEV_EFI_HCRTM_EVENT = 0x80000010u, QEV_EFI_VARIABLE_AUTHORITY = 0x800000E0u,
    QEV_EFI_SPDM_FIRMWARE_BLOB = 0x800000E1u, QEV_EFI_SPDM_FIRMWARE_CONFIG = 0x800000E2u,
};

/* "EV_EFI_ACTION"-style name of an event type; "EV_UNKNOWN" for others. */
const char *qevlog_type_name(uint32_t type);

typedef struct qevlog_digest {
    uint16_t alg_id;          /* TPM2_ALG_* */
    uint16_t size;
    const uint8_t *bytes;     /* into the log */
} qevlog_digest;

typedef struct qevlog_event {
    uint32_t num;             /* 0-based; the header event is 0 */
    size_t offset;            /* byte offset of the record in the log */
    uint32_t pcr;
    uint32_t type;
    unsigned ndigests;
    qevlog_digest digests[QEVLOG_MAX_BANKS];
    const uint8_t *data;      /* into the log */
    uint32_t data_len;
} qevlog_event;

typedef struct qevlog_reader {
    const uint8_t *p;
    size_t len, off;
    uint32_t next_num;
    bool crypto_agile;        /* known after qevlog_open */
    unsigned nbanks;
    struct { uint16_t alg_id; uint16_t size; } banks[QEVLOG_MAX_BANKS];
    bool header_pending;      /* the header event has not been handed out by qevlog_next yet */
    qevlog_event header;
} qevlog_reader;

/* Reads the first event and, for a crypto-agile log, its Spec ID bank list.
 * Returns 0, or -1 with a message (empty log, over QEVLOG_MAX_BYTES, malformed header). */
int qevlog_open(qevlog_reader *r, const void *log, size_t len, qerr *e);
/* The next event (the header event first). Returns 1 with *ev filled, 0 at the clean end of
 * the log, -1 with "event N at offset O: ..." on malformed or oversized input. */
int qevlog_next(qevlog_reader *r, qevlog_event *ev, qerr *e);
/* The digest of bank alg_id in ev, or NULL. */
const qevlog_digest *qevlog_event_digest(const qevlog_event *ev, uint16_t alg_id);

/* The replayed PCRs of every bank the log carries. */
typedef struct qevlog_pcrs {
    unsigned nbanks;
    struct {
        qhash_alg alg;
        uint32_t extended;    /* bit i set: PCR i was extended at least once */
        uint8_t value[QEVLOG_NUM_PCRS][QHASH_MAX_SIZE];
    } bank[QHASH_COUNT];
    uint32_t nevents;         /* events read, the header included */
    uint8_t locality;         /* from a StartupLocality event; 0 without one */
} qevlog_pcrs;

/* Replays the whole log. A bank whose algorithm OpenSSL lacks is an error. Returns 0 or -1. */
int qevlog_replay(const void *log, size_t len, qevlog_pcrs *out, qerr *e);
/* The replayed value of PCR pcr in bank alg, or NULL when the log has no such bank. */
const uint8_t *qevlog_pcr(const qevlog_pcrs *p, qhash_alg alg, unsigned pcr);

#endif
