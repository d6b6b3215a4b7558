/* efi_event.h — decoders for the data of UEFI event-log events (views into the event data,
 * never copies, every length checked): EFI variables, EFI_SIGNATURE_LIST contents, image-load
 * events with their device paths, GPT headers and EV_IPL / EV_EFI_ACTION strings.
 * Each decoder returns 0, or -1 with a one-line reason when the data is malformed. */
#ifndef QUINCE_EFI_EVENT_H
#define QUINCE_EFI_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "err.h"

#define QEFI_GUID_STR 37       /* "8be4df61-93ca-11d2-aa0d-00e098032b8c" and its NUL */
#define QEFI_NAME_MAX 256      /* a variable name, UTF-8, NUL included */

/* GUIDs the measured-boot checks need, in the log's (mixed-endian) byte order. */
extern const uint8_t QEFI_GUID_GLOBAL_VARIABLE[16];   /* SecureBoot, PK, KEK, Boot#### */
extern const uint8_t QEFI_GUID_IMAGE_SECURITY_DB[16]; /* db, dbx */
extern const uint8_t QEFI_GUID_SHIM[16];              /* MokList*, SbatLevel, Shim */
extern const uint8_t QEFI_GUID_CERT_X509[16];
extern const uint8_t QEFI_GUID_CERT_SHA256[16];

/* The canonical lower-case text of an EFI GUID (first three fields little-endian). */
void qefi_guid_str(const uint8_t guid[16], char out[QEFI_GUID_STR]);

/* UEFI_VARIABLE_DATA: VariableName GUID, UnicodeNameLength, VariableDataLength, the UTF-16LE
 * name, then the data. The name is converted to UTF-8 (non-ASCII code units become '?'). */
typedef struct qefi_var {
    uint8_t guid[16];
    char name[QEFI_NAME_MAX];
    const uint8_t *data;
    size_t data_len;
} qefi_var;
int qefi_var_parse(const uint8_t *p, size_t n, qefi_var *out, qerr *e);

/* EFI_SIGNATURE_LIST iteration over a variable's data (PK, KEK, db, dbx, MokList):
 * start with off = 0; each call yields the next signature, 1 while there is one, 0 at the end. */
typedef struct qefi_sig {
    uint8_t type[16];          /* the list's SignatureType */
    uint8_t owner[16];
    const uint8_t *data;
    size_t data_len;
} qefi_sig;
typedef struct qefi_sig_iter {
    const uint8_t *p;
    size_t n, list_off, list_end, sig_off, sig_size;
    const uint8_t *type;
} qefi_sig_iter;
void qefi_sig_iter_init(qefi_sig_iter *it, const uint8_t *p, size_t n);
int qefi_sig_next(qefi_sig_iter *it, qefi_sig *out, qerr *e);

/* UEFI_IMAGE_LOAD_EVENT (EV_EFI_BOOT_SERVICES_APPLICATION and drivers). */
typedef struct qefi_image {
    uint64_t location, length, link_time;
    const uint8_t *devpath;
    size_t devpath_len;
} qefi_image;
int qefi_image_parse(const uint8_t *p, size_t n, qefi_image *out, qerr *e);
/* True when the device path starts with a firmware volume then a firmware file node
 * (an application built into the firmware, such as its boot menu, not one loaded from disk). */
bool qefi_devpath_is_firmware_app(const uint8_t *dp, size_t n);

/* The text of an EV_IPL, EV_EFI_ACTION or EV_POST_CODE string event: ASCII or UTF-16LE
 * (detected), trailing NULs dropped, non-printable bytes as '?'. Writes at most cap bytes
 * with the NUL; returns the length, or -1 when it does not fit. */
long qefi_event_string(const uint8_t *p, size_t n, char *out, size_t cap);

/* UEFI_GPT_DATA: the header's signature and the number of partitions. */
int qefi_gpt_parse(const uint8_t *p, size_t n, uint64_t *npartitions, qerr *e);

#endif
