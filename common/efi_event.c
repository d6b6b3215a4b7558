/* efi_event.c — decoders for UEFI event data (see efi_event.h). */
#include "efi_event.h"

#include <stdio.h>
#include <string.h>

const uint8_t QEFI_GUID_GLOBAL_VARIABLE[16] = {
    0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c };
const uint8_t QEFI_GUID_IMAGE_SECURITY_DB[16] = {
    0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f };
const uint8_t QEFI_GUID_SHIM[16] = {
    0x50, 0xab, 0x5d, 0x60, 0x46, 0xe0, 0x00, 0x43, 0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23 };
const uint8_t QEFI_GUID_CERT_X509[16] = {
    0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72 };
const uint8_t QEFI_GUID_CERT_SHA256[16] = {
    0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40, 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28 };

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

void qefi_guid_str(const uint8_t g[16], char out[QEFI_GUID_STR])
{
    snprintf(out, QEFI_GUID_STR,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6],
             g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

int qefi_var_parse(const uint8_t *p, size_t n, qefi_var *out, qerr *e)
{
    memset(out, 0, sizeof *out);
    if (n < 32)
        return qerr_set(e, "EFI variable event of %zu bytes is shorter than its 32-byte header", n);
    memcpy(out->guid, p, 16);
    uint64_t name_len = le64(p + 16), data_len = le64(p + 24);
    if (name_len > (n - 32) / 2)
        return qerr_set(e, "EFI variable name of %llu characters runs past the event",
                        (unsigned long long)name_len);
    if (data_len > n - 32 - 2 * name_len)
        return qerr_set(e, "EFI variable data of %llu bytes runs past the event",
                        (unsigned long long)data_len);
    if (name_len >= QEFI_NAME_MAX)
        return qerr_set(e, "EFI variable name of %llu characters is too long",
                        (unsigned long long)name_len);
    const uint8_t *name = p + 32;
    size_t k = 0;
    for (uint64_t i = 0; i < name_len; i++) {
        unsigned cu = (unsigned)name[2 * i] | (unsigned)name[2 * i + 1] << 8;
        if (cu == 0)
            break;
        out->name[k++] = (cu >= 0x20 && cu < 0x7f) ? (char)cu : '?';
    }
    out->name[k] = '\0';
    out->data = p + 32 + 2 * name_len;
    out->data_len = (size_t)data_len;
    return 0;
}

void qefi_sig_iter_init(qefi_sig_iter *it, const uint8_t *p, size_t n)
{
    memset(it, 0, sizeof *it);
    it->p = p;
    it->n = n;
}

/* EFI_SIGNATURE_LIST: SignatureType[16] ListSize HeaderSize SignatureSize, header, signatures. */
int qefi_sig_next(qefi_sig_iter *it, qefi_sig *out, qerr *e)
{
    while (!it->type || it->sig_off + it->sig_size > it->list_end) {
        if (it->type)
            it->list_off = it->list_end;
        if (it->list_off == it->n)
            return 0;
        if (it->n - it->list_off < 28)
            return qerr_set(e, "signature list at byte %zu is truncated", it->list_off);
        const uint8_t *l = it->p + it->list_off;
        uint32_t list_size = le32(l + 16), hdr_size = le32(l + 20), sig_size = le32(l + 24);
        if (list_size < 28 || list_size > it->n - it->list_off)
            return qerr_set(e, "signature list at byte %zu declares %u bytes", it->list_off, list_size);
        if (hdr_size > list_size - 28 || sig_size < 16 ||
            (list_size - 28 - hdr_size) % sig_size != 0)
            return qerr_set(e, "signature list at byte %zu has inconsistent sizes (header %u, signature %u)",
                            it->list_off, hdr_size, sig_size);
        it->type = l;
        it->list_end = it->list_off + list_size;
        it->sig_off = it->list_off + 28 + hdr_size;
        it->sig_size = sig_size;
    }
    memcpy(out->type, it->type, 16);
    memcpy(out->owner, it->p + it->sig_off, 16);
    out->data = it->p + it->sig_off + 16;
    out->data_len = it->sig_size - 16;
    it->sig_off += it->sig_size;
    return 1;
}

int qefi_image_parse(const uint8_t *p, size_t n, qefi_image *out, qerr *e)
{
    memset(out, 0, sizeof *out);
    if (n < 32)
        return qerr_set(e, "image load event of %zu bytes is shorter than its 32-byte header", n);
    out->location = le64(p);
    out->length = le64(p + 8);
    out->link_time = le64(p + 16);
    uint64_t dp_len = le64(p + 24);
    if (dp_len > n - 32)
        return qerr_set(e, "device path of %llu bytes runs past the event", (unsigned long long)dp_len);
    out->devpath = p + 32;
    out->devpath_len = (size_t)dp_len;
    return 0;
}

bool qefi_devpath_is_firmware_app(const uint8_t *dp, size_t n)
{
    /* node: Type, SubType, Length (u16le, the node's whole size) */
    if (n < 4 || dp[0] != 0x04 || dp[1] != 0x07)       /* media: PIWG firmware volume */
        return false;
    size_t len = (size_t)(dp[2] | dp[3] << 8);
    if (len < 4 || len > n - 4)
        return false;
    const uint8_t *next = dp + len;
    return next[0] == 0x04 && next[1] == 0x06;          /* media: PIWG firmware file */
}

long qefi_event_string(const uint8_t *p, size_t n, char *out, size_t cap)
{
    if (cap == 0)
        return -1;
    /* UTF-16LE when the odd bytes of the first two characters are zero (a trailing odd byte,
     * as some boot loaders write, is ignored). */
    bool utf16 = n >= 4 && p[1] == 0 && p[3] == 0 && p[0] != 0;
    size_t step = utf16 ? 2 : 1;
    size_t end = utf16 ? n - n % 2 : n;
    while (end >= step && p[end - step] == 0 && (!utf16 || p[end - 1] == 0))
        end -= step;
    size_t k = 0;
    for (size_t i = 0; i + step <= end; i += step) {
        unsigned c = utf16 ? (unsigned)(p[i] | p[i + 1] << 8) : p[i];
        if (k + 1 >= cap)
            return -1;
        out[k++] = (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f)) ? (char)c : '?';
    }
    out[k] = '\0';
    return (long)k;
}

int qefi_gpt_parse(const uint8_t *p, size_t n, uint64_t *npartitions, qerr *e)
{
    /* UEFI_PARTITION_TABLE_HEADER (92 bytes) then NumberOfPartitions (u64) and the entries. */
    if (n < 92 + 8)
        return qerr_set(e, "GPT event of %zu bytes is too short", n);
    if (memcmp(p, "EFI PART", 8) != 0)
        return qerr_set(e, "GPT event lacks the \"EFI PART\" signature");
    uint32_t entry_size = le32(p + 84);
    uint64_t count = le64(p + 92);
    if (count && (entry_size == 0 || count > (n - 100) / entry_size))
        return qerr_set(e, "GPT event lists %llu partitions of %u bytes, more than it holds",
                        (unsigned long long)count, entry_size);
    *npartitions = count;
    return 0;
}
