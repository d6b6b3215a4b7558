/* mb_refstate.c — a measured-boot reference state from a known-good event log (see mb_refstate.h). */
#include "mb_refstate.h"

#include <stdlib.h>
#include <string.h>
#include "efi_event.h"
#include "eventlog.h"
#include "hex.h"
#include "pcr_bank.h"

#define MAX_BSA 8

long qmb_re_escape(const char *s, char *out, size_t cap)
{
    static const char special[] = "()[]{}?*+-|^$\\.&~# \t\n\r\v\f";
    size_t k = 0;
    for (; *s; s++) {
        bool esc = strchr(special, *s) != NULL;
        if (k + (esc ? 2 : 1) + 1 > cap)
            return -1;
        if (esc)
            out[k++] = '\\';
        out[k++] = *s;
    }
    if (cap == 0)
        return -1;
    out[k] = '\0';
    return (long)k;
}

/* "0x" + hex of the event's sha256 digest into out[2 + 64 + 1]; -1 without one. */
static int sha256_0x(const qevlog_event *ev, char out[68])
{
    const qevlog_digest *d = qevlog_event_digest(ev, qhash_tpm_id(QHASH_SHA256));
    if (!d || d->size != 32)
        return -1;
    out[0] = '0';
    out[1] = 'x';
    qhex_encode(d->bytes, 32, out + 2);
    return 0;
}

static cJSON *digest_obj(const char *hex0x)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "sha256", hex0x)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* [{SignatureOwner, SignatureData}] of a variable's signature lists. */
static cJSON *signatures(const qefi_var *v, qerr *e)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    qefi_sig_iter it;
    qefi_sig s;
    int rc;
    qefi_sig_iter_init(&it, v->data, v->data_len);
    while ((rc = qefi_sig_next(&it, &s, e)) == 1) {
        char owner[QEFI_GUID_STR];
        qefi_guid_str(s.owner, owner);
        char *hex = malloc(2 + 2 * s.data_len + 1);
        cJSON *o = cJSON_CreateObject();
        bool ok = hex && o && cJSON_AddItemToArray(arr, o);
        if (!ok)
            cJSON_Delete(o);
        if (ok) {
            hex[0] = '0';
            hex[1] = 'x';
            qhex_encode(s.data, s.data_len, hex + 2);
            ok = cJSON_AddStringToObject(o, "SignatureOwner", owner) &&
                 cJSON_AddStringToObject(o, "SignatureData", hex);
        }
        free(hex);
        if (!ok) {
            cJSON_Delete(arr);
            qerr_set(e, "out of memory");
            return NULL;
        }
    }
    if (rc < 0) {
        qerr_prefix(e, "variable %s", v->name);
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

typedef struct facts {
    int secureboot;                 /* -1 unknown, 0 off, 1 on */
    char scrtm[68];
    bool have_scrtm;
    cJSON *firmware;                /* [{sha256}] */
    cJSON *keys[4];                 /* pk kek db dbx */
    cJSON *mok, *mokx;
    char bsa[MAX_BSA][68];
    unsigned nbsa;
    char initrd[68], vmlinuz[68];
    char *cmdline;                  /* the part after "kernel_cmdline: " */
    char *str;                      /* QEVLOG_MAX_DATA + 1: one event's string */
} facts;

static const char *const key_names[4] = { "pk", "kek", "db", "dbx" };

static void facts_clear(facts *f)
{
    cJSON_Delete(f->firmware);
    for (int i = 0; i < 4; i++)
        cJSON_Delete(f->keys[i]);
    cJSON_Delete(f->mok);
    cJSON_Delete(f->mokx);
    free(f->cmdline);
    free(f->str);
    memset(f, 0, sizeof *f);
}

static int add_digest(cJSON *arr, const qevlog_event *ev, qerr *e)
{
    char hex[68];
    if (sha256_0x(ev, hex) < 0)
        return qerr_set(e, "event %u at offset %zu has no sha256 digest", ev->num, ev->offset);
    cJSON *o = digest_obj(hex);
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return qerr_set(e, "out of memory");
    }
    return 0;
}

static int variable_event(facts *f, const qevlog_event *ev, qerr *e)
{
    qefi_var v;
    if (qefi_var_parse(ev->data, ev->data_len, &v, e) < 0)
        return qerr_prefix(e, "event %u at offset %zu", ev->num, ev->offset);
    if (strcmp(v.name, "SecureBoot") == 0) {
        f->secureboot = v.data_len == 1 && v.data[0] == 1;
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v.name, key_names[i]) != 0)
            continue;
        cJSON *sigs = signatures(&v, e);
        if (!sigs)
            return qerr_prefix(e, "event %u at offset %zu", ev->num, ev->offset);
        cJSON_Delete(f->keys[i]);
        f->keys[i] = sigs;
    }
    return 0;
}

static int ipl_event(facts *f, const qevlog_event *ev, qerr *e)
{
    char *s = f->str;
    if (qefi_event_string(ev->data, ev->data_len, s, QEVLOG_MAX_DATA + 1) < 0)
        return qerr_set(e, "event %u at offset %zu: unreadable string", ev->num, ev->offset);
    char hex[68];
    if (sha256_0x(ev, hex) < 0)
        return qerr_set(e, "event %u at offset %zu has no sha256 digest", ev->num, ev->offset);
    if (strcmp(s, "MokList") == 0 || strcmp(s, "MokListX") == 0) {
        cJSON *arr = s[7] == 'X' ? f->mokx : f->mok;
        return add_digest(arr, ev, e);
    }
    if (ev->pcr == 9 && !f->initrd[0] && (strstr(s, "initrd") || strstr(s, "initramfs")))
        memcpy(f->initrd, hex, sizeof hex);
    else if (ev->pcr == 9 && !f->vmlinuz[0] && strstr(s, "vmlinuz"))
        memcpy(f->vmlinuz, hex, sizeof hex);
    if (ev->pcr == 8 && !f->cmdline && strstr(s, "kernel_cmdline")) {
        const char *c = strlen(s) > 16 ? s + 16 : "";
        f->cmdline = strdup(c);
        if (!f->cmdline)
            return qerr_set(e, "out of memory");
    }
    return 0;
}

static int collect(facts *f, const void *log, size_t len, qerr *e)
{
    qevlog_reader r;
    if (qevlog_open(&r, log, len, e) < 0)
        return -1;
    bool sha256 = false;
    for (unsigned b = 0; b < r.nbanks; b++)
        sha256 |= r.banks[b].alg_id == qhash_tpm_id(QHASH_SHA256);
    if (!sha256)
        return qerr_set(e, "the log has no sha256 bank (a reference state pins sha256 digests)");
    f->secureboot = -1;
    f->str = malloc(QEVLOG_MAX_DATA + 1);
    f->firmware = cJSON_CreateArray();
    f->mok = cJSON_CreateArray();
    f->mokx = cJSON_CreateArray();
    for (int i = 0; i < 4; i++)
        f->keys[i] = cJSON_CreateArray();
    if (!f->str || !f->firmware || !f->mok || !f->mokx || !f->keys[0] || !f->keys[1] || !f->keys[2] || !f->keys[3])
        return qerr_set(e, "out of memory");
    qevlog_event ev;
    int rc;
    while ((rc = qevlog_next(&r, &ev, e)) == 1) {
        switch (ev.type) {
        case QEV_S_CRTM_VERSION:
            if (!f->have_scrtm) {
                if (sha256_0x(&ev, f->scrtm) < 0)
                    return qerr_set(e, "event %u at offset %zu has no sha256 digest", ev.num, ev.offset);
                f->have_scrtm = true;
            }
            break;
        case QEV_EFI_PLATFORM_FIRMWARE_BLOB:
        case QEV_EFI_PLATFORM_FIRMWARE_BLOB2:
            if (add_digest(f->firmware, &ev, e) < 0)
                return -1;
            break;
        case QEV_EFI_VARIABLE_DRIVER_CONFIG:
            if (variable_event(f, &ev, e) < 0)
                return -1;
            break;
        case QEV_EFI_BOOT_SERVICES_APPLICATION: {
            qefi_image img;
            if (qefi_image_parse(ev.data, ev.data_len, &img, e) < 0)
                return qerr_prefix(e, "event %u at offset %zu", ev.num, ev.offset);
            if (qefi_devpath_is_firmware_app(img.devpath, img.devpath_len))
                break;
            if (f->nbsa == MAX_BSA)
                return qerr_set(e, "event %u at offset %zu: more than %d boot applications",
                                ev.num, ev.offset, MAX_BSA);
            if (sha256_0x(&ev, f->bsa[f->nbsa++]) < 0)
                return qerr_set(e, "event %u at offset %zu has no sha256 digest", ev.num, ev.offset);
            break;
        }
        case QEV_IPL:
            if (ipl_event(f, &ev, e) < 0)
                return -1;
            break;
        default:
            break;
        }
    }
    return rc < 0 ? -1 : 0;
}

/* kernels[0] from the boot applications and the PCR 8/9 strings. */
static cJSON *kernel_entry(const facts *f, qerr *e)
{
    bool sb = f->secureboot == 1;
    if (sb && f->nbsa != 3 && f->nbsa != 4)
        return qerr_set(e, "Secure Boot is on, so 3 boot applications (shim, grub, the kernel) were expected; the log has %u",
                        f->nbsa), NULL;
    if (!sb && f->nbsa != 2)
        return qerr_set(e, "Secure Boot is off, so 2 boot applications (shim, grub) were expected; the log has %u",
                        f->nbsa), NULL;
    cJSON *k = cJSON_CreateObject();
    bool ok = k && cJSON_AddStringToObject(k, "shim_authcode_sha256", f->bsa[0]) &&
              cJSON_AddStringToObject(k, "grub_authcode_sha256", f->bsa[1]);
    if (ok && sb)
        ok = cJSON_AddStringToObject(k, "kernel_authcode_sha256", f->bsa[2]) != NULL;
    if (ok && f->initrd[0])
        ok = cJSON_AddStringToObject(k, "initrd_plain_sha256", f->initrd) != NULL;
    if (ok && !sb && f->vmlinuz[0])
        ok = cJSON_AddStringToObject(k, "vmlinuz_plain_sha256", f->vmlinuz) != NULL;
    if (ok && f->cmdline) {
        size_t cap = 2 * strlen(f->cmdline) + 1;
        char *re = malloc(cap);
        ok = re && qmb_re_escape(f->cmdline, re, cap) >= 0 &&
             cJSON_AddStringToObject(k, "kernel_cmdline", re);
        free(re);
    }
    if (!ok) {
        cJSON_Delete(k);
        return qerr_set(e, "out of memory"), NULL;
    }
    return k;
}

cJSON *qmb_refstate_from_log(const void *log, size_t len, bool without_secureboot,
                             bool *ignored_flag, qerr *e)
{
    facts f;
    memset(&f, 0, sizeof f);
    if (ignored_flag)
        *ignored_flag = false;
    cJSON *out = NULL;
    if (collect(&f, log, len, e) < 0)
        goto done;
    if (f.secureboot < 0) {
        qerr_set(e, "the log has no SecureBoot variable event, so the Secure Boot state cannot be told");
        goto done;
    }
    if (f.secureboot == 0 && !without_secureboot) {
        qerr_set(e, "Secure Boot is off in this log; pass --without-secureboot to pin it without Secure Boot");
        goto done;
    }
    if (f.secureboot == 1 && without_secureboot && ignored_flag)
        *ignored_flag = true;
    cJSON *kernel = kernel_entry(&f, e);
    if (!kernel)
        goto done;
    out = cJSON_CreateObject();
    cJSON *sab = cJSON_CreateArray(), *sab0 = cJSON_CreateObject(), *kernels = cJSON_CreateArray();
    bool ok = out && sab && sab0 && kernels && cJSON_AddItemToArray(sab, sab0) &&
              cJSON_AddItemToArray(kernels, kernel);
    if (!ok) {
        cJSON_Delete(sab);
        cJSON_Delete(sab0);
        cJSON_Delete(kernels);
        cJSON_Delete(kernel);
        goto oom;
    }
    if (!cJSON_AddBoolToObject(out, "has_secureboot", f.secureboot == 1) ||
        !cJSON_AddItemToObject(out, "scrtm_and_bios", sab)) {
        cJSON_Delete(sab);
        cJSON_Delete(kernels);
        goto oom;
    }
    if (f.have_scrtm) {
        cJSON *d = digest_obj(f.scrtm);
        if (!d || !cJSON_AddItemToObject(sab0, "scrtm", d)) {
            cJSON_Delete(d);
            cJSON_Delete(kernels);
            goto oom;
        }
    }
    if (!cJSON_AddItemToObject(sab0, "platform_firmware", f.firmware)) {
        cJSON_Delete(kernels);
        goto oom;
    }
    f.firmware = NULL;
    for (int i = 0; i < 4; i++) {
        if (!cJSON_AddItemToObject(out, key_names[i], f.keys[i])) {
            cJSON_Delete(kernels);
            goto oom;
        }
        f.keys[i] = NULL;
    }
    if (!cJSON_AddItemToObject(out, "mokdig", f.mok)) {
        cJSON_Delete(kernels);
        goto oom;
    }
    f.mok = NULL;
    if (!cJSON_AddItemToObject(out, "mokxdig", f.mokx)) {
        cJSON_Delete(kernels);
        goto oom;
    }
    f.mokx = NULL;
    if (!cJSON_AddItemToObject(out, "kernels", kernels)) {
        cJSON_Delete(kernels);
        goto oom;
    }
    goto done;
oom:
    qerr_set(e, "out of memory");
    cJSON_Delete(out);
    out = NULL;
done:
    facts_clear(&f);
    return out;
}
