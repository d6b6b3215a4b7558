/* eventlog.c — streaming reader and replay of the TCG PC Client event log (see eventlog.h).
 * All reads go through bounds checks on (p, len, off); nothing is copied out of the log. */
#include "eventlog.h"

#include <string.h>

#define SPEC_ID_SIG      "Spec ID Event03"      /* 16 bytes with its NUL */
#define STARTUP_LOC_SIG  "StartupLocality"      /* 16 bytes with its NUL */
#define SHA1_SIZE        20u

static const struct { uint32_t type; const char *name; } type_names[] = {
    { QEV_PREBOOT_CERT, "EV_PREBOOT_CERT" }, { QEV_POST_CODE, "EV_POST_CODE" },
    { QEV_NO_ACTION, "EV_NO_ACTION" }, { QEV_SEPARATOR, "EV_SEPARATOR" },
    { QEV_ACTION, "EV_ACTION" }, { QEV_EVENT_TAG, "EV_EVENT_TAG" },
    { QEV_S_CRTM_CONTENTS, "EV_S_CRTM_CONTENTS" }, { QEV_S_CRTM_VERSION, "EV_S_CRTM_VERSION" },
    { QEV_CPU_MICROCODE, "EV_CPU_MICROCODE" },
    { QEV_PLATFORM_CONFIG_FLAGS, "EV_PLATFORM_CONFIG_FLAGS" },
    { QEV_TABLE_OF_DEVICES, "EV_TABLE_OF_DEVICES" }, { QEV_COMPACT_HASH, "EV_COMPACT_HASH" },
    { QEV_IPL, "EV_IPL" }, { QEV_IPL_PARTITION_DATA, "EV_IPL_PARTITION_DATA" },
    { QEV_NONHOST_CODE, "EV_NONHOST_CODE" }, { QEV_NONHOST_CONFIG, "EV_NONHOST_CONFIG" },
    { QEV_NONHOST_INFO, "EV_NONHOST_INFO" },
    { QEV_OMIT_BOOT_DEVICE_EVENTS, "EV_OMIT_BOOT_DEVICE_EVENTS" },
    { QEV_EFI_EVENT_BASE, "EV_EFI_EVENT_BASE" },
    { QEV_EFI_VARIABLE_DRIVER_CONFIG, "EV_EFI_VARIABLE_DRIVER_CONFIG" },
    { QEV_EFI_VARIABLE_BOOT, "EV_EFI_VARIABLE_BOOT" },
    { QEV_EFI_BOOT_SERVICES_APPLICATION, "EV_EFI_BOOT_SERVICES_APPLICATION" },
    { QEV_EFI_BOOT_SERVICES_DRIVER, "EV_EFI_BOOT_SERVICES_DRIVER" },
    { QEV_EFI_RUNTIME_SERVICES_DRIVER, "EV_EFI_RUNTIME_SERVICES_DRIVER" },
    { QEV_EFI_GPT_EVENT, "EV_EFI_GPT_EVENT" }, { QEV_EFI_ACTION, "EV_EFI_ACTION" },
    { QEV_EFI_PLATFORM_FIRMWARE_BLOB, "EV_EFI_PLATFORM_FIRMWARE_BLOB" },
    { QEV_EFI_HANDOFF_TABLES, "EV_EFI_HANDOFF_TABLES" },
    { QEV_EFI_PLATFORM_FIRMWARE_BLOB2, "EV_EFI_PLATFORM_FIRMWARE_BLOB2" },
    { QEV_EFI_HANDOFF_TABLES2, "EV_EFI_HANDOFF_TABLES2" },
    { QEV_EFI_VARIABLE_BOOT2, "EV_EFI_VARIABLE_BOOT2" },
    { QEV_EFI_HCRTM_EVENT, "EV_EFI_HCRTM_EVENT" },
    { QEV_EFI_VARIABLE_AUTHORITY, "EV_EFI_VARIABLE_AUTHORITY" },
    { QEV_EFI_SPDM_FIRMWARE_BLOB, "EV_EFI_SPDM_FIRMWARE_BLOB" },
    { QEV_EFI_SPDM_FIRMWARE_CONFIG, "EV_EFI_SPDM_FIRMWARE_CONFIG" },
};

const char *qevlog_type_name(uint32_t type)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (type_names[i].type == type)
            return type_names[i].name;
    return "EV_UNKNOWN";
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* True when the rest of the log is padding (all 0x00 or all 0xFF): some firmware and kernels
 * hand out a buffer longer than the log. */
static bool only_padding(const uint8_t *p, size_t n)
{
    if (n == 0)
        return true;
    uint8_t pad = p[0];
    if (pad != 0x00 && pad != 0xFF)
        return false;
    for (size_t i = 1; i < n; i++)
        if (p[i] != pad)
            return false;
    return true;
}

/* TCG_PCR_EVENT (SHA-1 format) at r->off. */
static int read_sha1_event(qevlog_reader *r, qevlog_event *ev, qerr *e)
{
    size_t left = r->len - r->off;
    const uint8_t *p = r->p + r->off;
    if (left < 4 + 4 + SHA1_SIZE + 4)
        return qerr_set(e, "event %u at offset %zu: truncated header (%zu bytes left)",
                        r->next_num, r->off, left);
    uint32_t dlen = le32(p + 4 + 4 + SHA1_SIZE);
    if (dlen > QEVLOG_MAX_DATA)
        return qerr_set(e, "event %u at offset %zu: event data of %u bytes is over the limit of %u",
                        r->next_num, r->off, dlen, QEVLOG_MAX_DATA);
    if (dlen > left - (4 + 4 + SHA1_SIZE + 4))
        return qerr_set(e, "event %u at offset %zu: event data of %u bytes runs past the end of the log",
                        r->next_num, r->off, dlen);
    memset(ev, 0, sizeof *ev);
    ev->num = r->next_num;
    ev->offset = r->off;
    ev->pcr = le32(p);
    ev->type = le32(p + 4);
    ev->ndigests = 1;
    ev->digests[0].alg_id = qhash_tpm_id(QHASH_SHA1);
    ev->digests[0].size = SHA1_SIZE;
    ev->digests[0].bytes = p + 8;
    ev->data = p + 4 + 4 + SHA1_SIZE + 4;
    ev->data_len = dlen;
    r->off += 4 + 4 + SHA1_SIZE + 4 + (size_t)dlen;
    r->next_num++;
    return 0;
}

/* TCG_PCR_EVENT2 (crypto-agile format) at r->off. */
static int read_agile_event(qevlog_reader *r, qevlog_event *ev, qerr *e)
{
    size_t start = r->off, off = r->off;
    const uint8_t *p = r->p;
    uint32_t num = r->next_num;
    if (r->len - off < 12)
        return qerr_set(e, "event %u at offset %zu: truncated header (%zu bytes left)",
                        num, start, r->len - off);
    memset(ev, 0, sizeof *ev);
    ev->num = num;
    ev->offset = start;
    ev->pcr = le32(p + off);
    ev->type = le32(p + off + 4);
    uint32_t count = le32(p + off + 8);
    off += 12;
    if (count > r->nbanks)
        return qerr_set(e, "event %u at offset %zu: %u digests, but the log declares %u banks",
                        num, start, count, r->nbanks);
    for (uint32_t i = 0; i < count; i++) {
        if (r->len - off < 2)
            return qerr_set(e, "event %u at offset %zu: truncated digest list", num, start);
        uint16_t alg = le16(p + off);
        off += 2;
        unsigned b;
        for (b = 0; b < r->nbanks; b++)
            if (r->banks[b].alg_id == alg)
                break;
        if (b == r->nbanks)
            return qerr_set(e, "event %u at offset %zu: digest of algorithm 0x%04x, which the log's header does not declare",
                            num, start, alg);
        for (uint32_t j = 0; j < i; j++)
            if (ev->digests[j].alg_id == alg)
                return qerr_set(e, "event %u at offset %zu: two digests of algorithm 0x%04x",
                                num, start, alg);
        uint16_t size = r->banks[b].size;
        if (r->len - off < size)
            return qerr_set(e, "event %u at offset %zu: truncated digest", num, start);
        ev->digests[i].alg_id = alg;
        ev->digests[i].size = size;
        ev->digests[i].bytes = p + off;
        off += size;
    }
    ev->ndigests = count;
    if (r->len - off < 4)
        return qerr_set(e, "event %u at offset %zu: truncated event size", num, start);
    uint32_t dlen = le32(p + off);
    off += 4;
    if (dlen > QEVLOG_MAX_DATA)
        return qerr_set(e, "event %u at offset %zu: event data of %u bytes is over the limit of %u",
                        num, start, dlen, QEVLOG_MAX_DATA);
    if (dlen > r->len - off)
        return qerr_set(e, "event %u at offset %zu: event data of %u bytes runs past the end of the log",
                        num, start, dlen);
    ev->data = p + off;
    ev->data_len = dlen;
    r->off = off + dlen;
    r->next_num++;
    return 0;
}

/* The Spec ID event's bank list (TCG_EfiSpecIDEventStruct). */
static int parse_spec_id(qevlog_reader *r, const qevlog_event *h, qerr *e)
{
    const uint8_t *d = h->data;
    size_t n = h->data_len;
    /* signature[16] platformClass[4] minor major errata uintnSize numberOfAlgorithms[4] */
    if (n < 16 + 4 + 4 + 4)
        return qerr_set(e, "event 0 at offset 0: Spec ID event of %zu bytes is too short", n);
    uint32_t nalg = le32(d + 24);
    if (nalg == 0 || nalg > QEVLOG_MAX_BANKS)
        return qerr_set(e, "event 0 at offset 0: Spec ID event declares %u banks (1 to %u allowed)",
                        nalg, QEVLOG_MAX_BANKS);
    size_t off = 28;
    if (n - off < (size_t)nalg * 4 + 1)
        return qerr_set(e, "event 0 at offset 0: Spec ID event is too short for %u banks", nalg);
    for (uint32_t i = 0; i < nalg; i++) {
        uint16_t alg = le16(d + off), size = le16(d + off + 2);
        off += 4;
        if (size == 0 || size > QHASH_MAX_SIZE)
            return qerr_set(e, "event 0 at offset 0: bank 0x%04x has a digest size of %u bytes",
                            alg, size);
        qhash_alg known;
        if (qhash_from_tpm_id(alg, &known) == 0 && qhash_size(known) != size)
            return qerr_set(e, "event 0 at offset 0: bank %s declared with %u-byte digests",
                            qhash_name(known), size);
        for (uint32_t j = 0; j < i; j++)
            if (r->banks[j].alg_id == alg)
                return qerr_set(e, "event 0 at offset 0: bank 0x%04x declared twice", alg);
        r->banks[i].alg_id = alg;
        r->banks[i].size = size;
    }
    uint8_t vlen = d[off];
    if (n - off - 1 < vlen)
        return qerr_set(e, "event 0 at offset 0: Spec ID vendor data runs past the event");
    r->nbanks = nalg;
    return 0;
}

int qevlog_open(qevlog_reader *r, const void *log, size_t len, qerr *e)
{
    memset(r, 0, sizeof *r);
    if (!log || len == 0)
        return qerr_set(e, "the event log is empty");
    if (len > QEVLOG_MAX_BYTES)
        return qerr_set(e, "the event log is %zu bytes, over the limit of %u", len, QEVLOG_MAX_BYTES);
    r->p = log;
    r->len = len;
    if (read_sha1_event(r, &r->header, e) < 0)
        return -1;
    const qevlog_event *h = &r->header;
    static const uint8_t zero[SHA1_SIZE];
    if (h->type == QEV_NO_ACTION && h->pcr == 0 && h->data_len >= 16 &&
        memcmp(h->digests[0].bytes, zero, SHA1_SIZE) == 0 &&
        memcmp(h->data, SPEC_ID_SIG, sizeof SPEC_ID_SIG) == 0) {
        if (parse_spec_id(r, h, e) < 0)
            return -1;
        r->crypto_agile = true;
    } else {
        r->nbanks = 1;
        r->banks[0].alg_id = qhash_tpm_id(QHASH_SHA1);
        r->banks[0].size = SHA1_SIZE;
    }
    r->header_pending = true;
    return 0;
}

int qevlog_next(qevlog_reader *r, qevlog_event *ev, qerr *e)
{
    if (r->header_pending) {
        r->header_pending = false;
        *ev = r->header;
        return 1;
    }
    if (r->off >= r->len || only_padding(r->p + r->off, r->len - r->off))
        return 0;
    if (r->next_num >= QEVLOG_MAX_EVENTS)
        return qerr_set(e, "event %u at offset %zu: the log has more than %u events",
                        r->next_num, r->off, QEVLOG_MAX_EVENTS);
    int rc = r->crypto_agile ? read_agile_event(r, ev, e) : read_sha1_event(r, ev, e);
    return rc < 0 ? -1 : 1;
}

const qevlog_digest *qevlog_event_digest(const qevlog_event *ev, uint16_t alg_id)
{
    for (unsigned i = 0; i < ev->ndigests; i++)
        if (ev->digests[i].alg_id == alg_id)
            return &ev->digests[i];
    return NULL;
}

const uint8_t *qevlog_pcr(const qevlog_pcrs *p, qhash_alg alg, unsigned pcr)
{
    if (pcr >= QEVLOG_NUM_PCRS)
        return NULL;
    for (unsigned b = 0; b < p->nbanks; b++)
        if (p->bank[b].alg == alg)
            return p->bank[b].value[pcr];
    return NULL;
}

/* A StartupLocality EV_NO_ACTION event: signature[16] then the locality byte. */
static bool startup_locality(const qevlog_event *ev, uint8_t *loc)
{
    if (ev->type != QEV_NO_ACTION || ev->pcr != 0 || ev->data_len < 17 ||
        memcmp(ev->data, STARTUP_LOC_SIG, sizeof STARTUP_LOC_SIG) != 0)
        return false;
    *loc = ev->data[16];
    return true;
}

int qevlog_replay(const void *log, size_t len, qevlog_pcrs *out, qerr *e)
{
    memset(out, 0, sizeof *out);
    qevlog_reader r;
    if (qevlog_open(&r, log, len, e) < 0)
        return -1;
    /* Banks OpenSSL can compute; any other bank is read but not replayed. */
    int bank_of[QEVLOG_MAX_BANKS];
    for (unsigned b = 0; b < r.nbanks; b++) {
        qhash_alg a;
        bank_of[b] = -1;
        if (qhash_from_tpm_id(r.banks[b].alg_id, &a) == 0 && qhash_md(a) &&
            out->nbanks < QHASH_COUNT) {
            bank_of[b] = (int)out->nbanks;
            out->bank[out->nbanks++].alg = a;
        }
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return qerr_set(e, "out of memory");
    qpcr pcr[QHASH_COUNT][QEVLOG_NUM_PCRS];
    for (unsigned b = 0; b < out->nbanks; b++)
        for (unsigned i = 0; i < QEVLOG_NUM_PCRS; i++)
            qpcr_init(&pcr[b][i], out->bank[b].alg);
    qevlog_event ev;
    int rc;
    while ((rc = qevlog_next(&r, &ev, e)) == 1) {
        out->nevents++;
        if (ev.type == QEV_NO_ACTION) {
            uint8_t loc;
            if (startup_locality(&ev, &loc)) {
                out->locality = loc;
                for (unsigned b = 0; b < out->nbanks; b++)
                    pcr[b][0].value[qhash_size(out->bank[b].alg) - 1] = loc;
            }
            continue;
        }
        if (ev.pcr >= QEVLOG_NUM_PCRS) {
            rc = qerr_set(e, "event %u at offset %zu: PCR index %u is out of range (0 to %u)",
                          ev.num, ev.offset, ev.pcr, QEVLOG_NUM_PCRS - 1);
            break;
        }
        for (unsigned d = 0; d < ev.ndigests; d++) {
            unsigned b;
            for (b = 0; b < r.nbanks; b++)
                if (r.banks[b].alg_id == ev.digests[d].alg_id)
                    break;
            if (b == r.nbanks || bank_of[b] < 0)
                continue;
            int ob = bank_of[b];
            if (qpcr_extend(&pcr[ob][ev.pcr], ctx, ev.digests[d].bytes) < 0) {
                rc = qerr_set(e, "event %u at offset %zu: hashing failed", ev.num, ev.offset);
                break;
            }
            out->bank[ob].extended |= 1u << ev.pcr;
        }
        if (rc < 0)
            break;
    }
    EVP_MD_CTX_free(ctx);
    if (rc < 0)
        return -1;
    for (unsigned b = 0; b < out->nbanks; b++)
        for (unsigned i = 0; i < QEVLOG_NUM_PCRS; i++)
            memcpy(out->bank[b].value[i], pcr[b][i].value, QHASH_MAX_SIZE);
    return 0;
}
