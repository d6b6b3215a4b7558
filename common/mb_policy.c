/* mb_policy.c — a UEFI event log judged against a measured-boot reference state (see
 * mb_policy.h). The reference is parsed once into plain arrays; judging walks the log once,
 * dispatching each event on (PCR, type), and checks the ordered sequences (firmware blobs,
 * boot applications, initrd, kernel command line) at the end. */
#include "mb_ref.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "efi_event.h"
#include "hex.h"

#define MAX_SEQ 64                     /* events kept per ordered sequence */
#define CMDLINE_PREFIX MB_CMDLINE_PREFIX

/* ---- judging ------------------------------------------------------------------------------ */

typedef struct seq { uint32_t ev[MAX_SEQ]; dg d[MAX_SEQ]; size_t n; } seq;

typedef struct judge {
    const qmb_ref *ref;
    qmb_result *out;
    EVP_MD_CTX *ctx;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    seq scrtm, fw, bsa, initrd, vmlinuz;
    uint32_t cmd_ev[MAX_SEQ];
    char *cmd[MAX_SEQ];
    size_t ncmd;
    char *str;                         /* QEVLOG_MAX_DATA + 1: one event's string */
    unsigned once_pk, once_kek, once_db, once_dbx, once_auth[5], once_gpt, once_mokt, config_flags;
    unsigned once_microcode, once_handoff, once_handoff2;
} judge;

static void finding(judge *j, int64_t ev, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finding(judge *j, int64_t ev, const char *fmt, ...)
{
    j->out->total++;
    if (j->out->n >= QMB_MAX_FINDINGS)
        return;
    qmb_finding *f = &j->out->f[j->out->n++];
    f->event = ev;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
}

static void hexs(const uint8_t *d, size_t n, char *out)
{
    out[0] = '0';
    out[1] = 'x';
    qhex_encode(d, n, out + 2);
}

static void seq_add(judge *j, seq *s, const qevlog_event *ev, const uint8_t *d)
{
    if (s->n == MAX_SEQ) {
        finding(j, ev->num, "more than %d events of this kind", MAX_SEQ);
        return;
    }
    s->ev[s->n] = ev->num;
    memcpy(s->d[s->n].d, d, DG);
    s->n++;
}

static bool in_digests(const dg *list, size_t n, const uint8_t *d)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(list[i].d, d, DG) == 0)
            return true;
    return false;
}

/* Every digest the event carries equals the hash of data in its bank. */
static bool digests_of(judge *j, const qevlog_event *ev, const void *data, size_t len)
{
    for (unsigned i = 0; i < ev->ndigests; i++) {
        qhash_alg a;
        uint8_t h[QHASH_MAX_SIZE];
        if (qhash_from_tpm_id(ev->digests[i].alg_id, &a) < 0)
            continue;
        if (qhash_digest(j->ctx, a, data, len, h) < 0 || memcmp(h, ev->digests[i].bytes, ev->digests[i].size) != 0)
            return false;
    }
    return true;
}

static void once(judge *j, unsigned *count, const qevlog_event *ev, const char *what)
{
    if (++*count > 1)
        finding(j, ev->num, "%s appears more than once", what);
}

static bool sig_in(const siglist *l, const qefi_sig *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (memcmp(l->v[i].owner, s->owner, 16) == 0 && l->v[i].len == s->data_len &&
            memcmp(l->v[i].data, s->data, s->data_len) == 0)
            return true;
    return false;
}

/* PK, KEK, db: every signature in the log is in the reference (of an allowed type).
 * dbx: every reference entry is in the log. */
static void key_check(judge *j, const qevlog_event *ev, const qefi_var *v, const siglist *ref,
                      const char *name, bool superset)
{
    if (!j->ref->sb && ref->n == 0)
        return;                     /* Secure Boot off and nothing pinned */
    qefi_sig_iter it;
    qefi_sig s;
    qerr e;
    int rc;
    size_t found = 0;
    bool *seen = superset ? calloc(ref->n ? ref->n : 1, sizeof *seen) : NULL;
    if (superset && !seen) {
        finding(j, ev->num, "out of memory checking %s", name);
        return;
    }
    qefi_sig_iter_init(&it, v->data, v->data_len);
    while ((rc = qefi_sig_next(&it, &s, &e)) == 1) {
        bool x509 = memcmp(s.type, QEFI_GUID_CERT_X509, 16) == 0;
        bool sha = memcmp(s.type, QEFI_GUID_CERT_SHA256, 16) == 0;
        if (superset) {
            for (size_t i = 0; i < ref->n; i++)
                if (!seen[i] && memcmp(ref->v[i].owner, s.owner, 16) == 0 && ref->v[i].len == s.data_len &&
                    memcmp(ref->v[i].data, s.data, s.data_len) == 0) {
                    seen[i] = true;
                    found++;
                }
            continue;
        }
        char owner[QEFI_GUID_STR];
        qefi_guid_str(s.owner, owner);
        if (!(x509 || (sha && strcmp(name, "db") == 0)))
            finding(j, ev->num, "%s holds a signature of an unexpected type (owner %s)", name, owner);
        else if (!sig_in(ref, &s))
            finding(j, ev->num, "%s holds a key the reference state does not list (owner %s, %zu bytes)",
                    name, owner, s.data_len);
    }
    if (rc < 0)
        finding(j, ev->num, "%s: %s", name, e.msg);
    if (superset && found < ref->n) {
        for (size_t i = 0; i < ref->n; i++)
            if (!seen[i]) {
                char owner[QEFI_GUID_STR];
                qefi_guid_str(ref->v[i].owner, owner);
                finding(j, ev->num, "dbx lacks %zu of the reference state's %zu revoked entries (first missing: owner %s)",
                        ref->n - found, ref->n, owner);
                break;
            }
    }
    free(seen);
}

static void driver_config(judge *j, const qevlog_event *ev)
{
    qefi_var v;
    qerr e;
    if (qefi_var_parse(ev->data, ev->data_len, &v, &e) < 0) {
        finding(j, ev->num, "%s", e.msg);
        return;
    }
    bool global = memcmp(v.guid, QEFI_GUID_GLOBAL_VARIABLE, 16) == 0;
    bool secdb = memcmp(v.guid, QEFI_GUID_IMAGE_SECURITY_DB, 16) == 0;
    if (global && strcmp(v.name, "SecureBoot") == 0) {
        bool on = v.data_len == 1 && v.data[0] == 1;
        if (on != j->ref->sb)
            finding(j, ev->num, "Secure Boot is %s, the reference state expects it %s",
                    on ? "on" : "off", j->ref->sb ? "on" : "off");
    } else if (global && strcmp(v.name, "PK") == 0) {
        once(j, &j->once_pk, ev, "PK");
        key_check(j, ev, &v, &j->ref->pk, "PK", false);
    } else if (global && strcmp(v.name, "KEK") == 0) {
        once(j, &j->once_kek, ev, "KEK");
        key_check(j, ev, &v, &j->ref->kek, "KEK", false);
    } else if (secdb && strcmp(v.name, "db") == 0) {
        once(j, &j->once_db, ev, "db");
        key_check(j, ev, &v, &j->ref->db, "db", false);
    } else if (secdb && strcmp(v.name, "dbx") == 0) {
        once(j, &j->once_dbx, ev, "dbx");
        key_check(j, ev, &v, &j->ref->dbx, "dbx", true);
    } else {
        char g[QEFI_GUID_STR];
        qefi_guid_str(v.guid, g);
        finding(j, ev->num, "unexpected Secure Boot configuration variable %s (%s)", v.name, g);
    }
}

static void authority(judge *j, const qevlog_event *ev)
{
    static const char *const names[5] = { "db", "SbatLevel", "Shim", "MokListTrusted", "MokListRT" };
    qefi_var v;
    qerr e;
    if (qefi_var_parse(ev->data, ev->data_len, &v, &e) < 0) {
        finding(j, ev->num, "%s", e.msg);
        return;
    }
    for (int i = 0; i < 5; i++) {
        const uint8_t *want = i == 0 ? QEFI_GUID_IMAGE_SECURITY_DB : QEFI_GUID_SHIM;
        if (strcmp(v.name, names[i]) == 0 && memcmp(v.guid, want, 16) == 0) {
            once(j, &j->once_auth[i], ev, names[i]);
            return;
        }
    }
    finding(j, ev->num, "unexpected EV_EFI_VARIABLE_AUTHORITY for variable %s", v.name);
}

static void efi_action(judge *j, const qevlog_event *ev)
{
    static const char *const pcr4[] = { "Calling EFI Application from Boot Option",
                                        "Returning from EFI Application from Boot Option", NULL };
    static const char *const pcr5[] = { "Exit Boot Services Invocation",
                                        "Exit Boot Services Returned with Failure",
                                        "Exit Boot Services Returned with Success", NULL };
    static const char *const pcr6[] = { "UEFI Debug Mode", NULL };
    const char *const *allowed = ev->pcr == 4 ? pcr4 : ev->pcr == 5 ? pcr5 : ev->pcr == 6 ? pcr6 : NULL;
    char *s = j->str;
    if (qefi_event_string(ev->data, ev->data_len, s, QEVLOG_MAX_DATA + 1) < 0)
        s[0] = '\0';
    for (; allowed && *allowed; allowed++)
        if (strcmp(s, *allowed) == 0) {
            if (!digests_of(j, ev, *allowed, strlen(*allowed)))
                finding(j, ev->num, "EV_EFI_ACTION \"%s\": the digest is not the hash of the string", s);
            return;
        }
    finding(j, ev->num, "EV_EFI_ACTION \"%.80s\" is not expected in PCR %u", s, ev->pcr);
}

static void separator(judge *j, const qevlog_event *ev)
{
    static const uint8_t zero[4] = { 0, 0, 0, 0 }, ones[4] = { 0xff, 0xff, 0xff, 0xff };
    if (ev->data_len != 4 || (memcmp(ev->data, zero, 4) != 0 && memcmp(ev->data, ones, 4) != 0)) {
        finding(j, ev->num, "EV_SEPARATOR in PCR %u does not hold 00000000 or FFFFFFFF", ev->pcr);
        return;
    }
    if (!digests_of(j, ev, ev->data, 4))
        finding(j, ev->num, "EV_SEPARATOR in PCR %u: the digest is not the hash of its value", ev->pcr);
}

static bool matches(const char *s, const char *needle)
{
    return strstr(s, needle) != NULL;
}

static void ipl(judge *j, const qevlog_event *ev, const uint8_t *d)
{
    char *s = j->str;
    if (qefi_event_string(ev->data, ev->data_len, s, QEVLOG_MAX_DATA + 1) < 0) {
        finding(j, ev->num, "EV_IPL string in PCR %u could not be read", ev->pcr);
        return;
    }
    if (ev->pcr == 14) {
        if (strcmp(s, "MokList") == 0) {
            if (!in_digests(j->ref->mok, j->ref->nmok, d))
                finding(j, ev->num, "MokList digest is not one of the reference state's mokdig");
        } else if (strcmp(s, "MokListX") == 0) {
            if (!in_digests(j->ref->mokx, j->ref->nmokx, d))
                finding(j, ev->num, "MokListX digest is not one of the reference state's mokxdig");
        } else if (strcmp(s, "MokListTrusted") == 0) {
            once(j, &j->once_mokt, ev, "MokListTrusted");
        } else {
            finding(j, ev->num, "unexpected EV_IPL \"%.80s\" in PCR 14", s);
        }
    } else if (ev->pcr == 9) {
        if (matches(s, "/loader/entries") || matches(s, "/grub"))
            return;
        if (matches(s, "/vmlinuz"))
            seq_add(j, &j->vmlinuz, ev, d);
        else if (matches(s, "/initrd") || matches(s, "/initramfs"))
            seq_add(j, &j->initrd, ev, d);
        else
            finding(j, ev->num, "unexpected file \"%.80s\" measured into PCR 9", s);
    } else if (ev->pcr == 8) {
        if (strncmp(s, "grub_cmd: ", 10) == 0)
            return;
        if (strncmp(s, CMDLINE_PREFIX, strlen(CMDLINE_PREFIX)) == 0) {
            if (j->ncmd == MAX_SEQ) {
                finding(j, ev->num, "more than %d kernel command lines", MAX_SEQ);
                return;
            }
            j->cmd_ev[j->ncmd] = ev->num;
            j->cmd[j->ncmd] = strdup(s);
            if (!j->cmd[j->ncmd])
                finding(j, ev->num, "out of memory");
            else
                j->ncmd++;
            return;
        }
        finding(j, ev->num, "unexpected EV_IPL \"%.80s\" in PCR 8", s);
    } else {
        finding(j, ev->num, "EV_IPL in PCR %u is not expected", ev->pcr);
    }
}

static void variable_boot(judge *j, const qevlog_event *ev)
{
    qefi_var v;
    qerr e;
    if (qefi_var_parse(ev->data, ev->data_len, &v, &e) < 0) {
        finding(j, ev->num, "%s", e.msg);
        return;
    }
    bool ok = memcmp(v.guid, QEFI_GUID_GLOBAL_VARIABLE, 16) == 0 &&
              (strcmp(v.name, "BootOrder") == 0 ||
               (strncmp(v.name, "Boot", 4) == 0 && v.name[4] &&
                strspn(v.name + 4, "0123456789abcdefABCDEF") == strlen(v.name + 4)));
    if (!ok)
        finding(j, ev->num, "unexpected boot variable %s", v.name);
}

static void dispatch(judge *j, const qevlog_event *ev, const uint8_t *d)
{
    switch (ev->type) {
    case QEV_NO_ACTION:
        return;                                     /* never extended */
    case QEV_S_CRTM_VERSION:
        if (ev->pcr == 0) { seq_add(j, &j->scrtm, ev, d); return; }
        break;
    case QEV_EFI_PLATFORM_FIRMWARE_BLOB:
    case QEV_EFI_PLATFORM_FIRMWARE_BLOB2:
        if (ev->pcr == 0) { seq_add(j, &j->fw, ev, d); return; }
        break;
    case QEV_CPU_MICROCODE:
        if (ev->pcr == 1) { once(j, &j->once_microcode, ev, "EV_CPU_MICROCODE"); return; }
        break;
    case QEV_EFI_HANDOFF_TABLES:
        if (ev->pcr == 1) { once(j, &j->once_handoff, ev, "EV_EFI_HANDOFF_TABLES"); return; }
        break;
    case QEV_EFI_HANDOFF_TABLES2:
        if (ev->pcr == 1) { once(j, &j->once_handoff2, ev, "EV_EFI_HANDOFF_TABLES2"); return; }
        break;
    case QEV_PLATFORM_CONFIG_FLAGS:
        if (ev->pcr == 1) {
            if (++j->config_flags > 4)
                finding(j, ev->num, "more than 4 EV_PLATFORM_CONFIG_FLAGS events");
            return;
        }
        break;
    case QEV_EFI_VARIABLE_DRIVER_CONFIG:
        if (ev->pcr == 7) { driver_config(j, ev); return; }
        break;
    case QEV_EFI_VARIABLE_AUTHORITY:
        if (ev->pcr == 7) { authority(j, ev); return; }
        break;
    case QEV_EFI_VARIABLE_BOOT:
        if (ev->pcr == 1) { variable_boot(j, ev); return; }
        break;
    case QEV_EFI_BOOT_SERVICES_DRIVER:
        if (ev->pcr == 2) return;
        break;
    case QEV_EFI_BOOT_SERVICES_APPLICATION:
        if (ev->pcr == 4) {
            qefi_image img;
            qerr e;
            if (qefi_image_parse(ev->data, ev->data_len, &img, &e) < 0)
                finding(j, ev->num, "%s", e.msg);
            else if (!qefi_devpath_is_firmware_app(img.devpath, img.devpath_len))
                seq_add(j, &j->bsa, ev, d);
            return;
        }
        break;
    case QEV_EFI_ACTION:
        efi_action(j, ev);
        return;
    case QEV_SEPARATOR:
        if (ev->pcr <= 7) { separator(j, ev); return; }
        break;
    case QEV_IPL:
        ipl(j, ev, d);
        return;
    case QEV_EFI_GPT_EVENT:
        if (ev->pcr == 5) { once(j, &j->once_gpt, ev, "EV_EFI_GPT_EVENT"); return; }
        break;
    default:
        break;
    }
    finding(j, ev->num, "%s in PCR %u is not expected by the reference state",
            qevlog_type_name(ev->type), ev->pcr);
}

/* Mismatches of one kernels[] entry against the collected sequences (0 = it matches). When
 * report is set, each mismatch becomes a finding. */
static unsigned kernel_mismatches(judge *j, const kern *k, size_t idx, bool report)
{
    unsigned bad = 0;
    char want[2 + 2 * DG + 1];
    const seq *b = &j->bsa;
    const dg *exp[4] = { &k->shim, &k->grub, &k->kernel, &k->kernel };
    const char *role[4] = { "shim", "grub", "the kernel", "the kernel (measured twice)" };
    size_t nexp = j->ref->sb ? (b->n == 4 ? 4 : 3) : 2;
    for (size_t i = 0; i < b->n && i < nexp; i++)
        if (memcmp(b->d[i].d, exp[i]->d, DG) != 0) {
            bad++;
            if (report) {
                hexs(exp[i]->d, DG, want);
                finding(j, b->ev[i], "boot application %zu is not %s of kernels[%zu]: expected authenticode %s",
                        i + 1, role[i], idx, want);
            }
        }
    if (b->n != nexp) {
        bad++;
        if (report)
            finding(j, b->n ? (int64_t)b->ev[b->n - 1] : -1, "%zu boot applications were loaded; kernels[%zu] expects %zu (%s)",
                    b->n, idx, nexp, j->ref->sb ? "shim, grub and the kernel" : "shim and grub");
    }
    const seq *ir = &j->initrd;
    if (k->have_initrd && (ir->n != 1 || memcmp(ir->d[0].d, k->initrd.d, DG) != 0)) {
        bad++;
        if (report) {
            hexs(k->initrd.d, DG, want);
            finding(j, ir->n ? (int64_t)ir->ev[0] : -1, "%s: expected one initrd with digest %s",
                    ir->n == 1 ? "the initrd's digest differs" : ir->n ? "more than one initrd" : "no initrd",
                    want);
        }
    }
    const seq *vz = &j->vmlinuz;
    if (k->have_vmlinuz && (vz->n != 1 || memcmp(vz->d[0].d, k->vmlinuz.d, DG) != 0)) {
        bad++;
        if (report) {
            hexs(k->vmlinuz.d, DG, want);
            finding(j, vz->n ? (int64_t)vz->ev[0] : -1, "vmlinuz: expected one kernel image with digest %s", want);
        }
    }
    if (k->cmdline) {
        int rc = j->ncmd == 1 ? pcre2_match(k->cmdline, (PCRE2_SPTR)j->cmd[0], PCRE2_ZERO_TERMINATED, 0, 0,
                                            j->md, j->mc) : -1;
        if (rc < 0) {
            bad++;
            if (report)
                finding(j, j->ncmd ? (int64_t)j->cmd_ev[0] : -1, "%s \"%.100s\" does not match kernels[%zu].kernel_cmdline",
                        j->ncmd == 1 ? "kernel command line" : j->ncmd ? "more than one kernel command line, first"
                                                                       : "no kernel command line",
                        j->ncmd ? j->cmd[0] + strlen(CMDLINE_PREFIX) : "", idx);
        }
    }
    return bad;
}

static void final_checks(judge *j)
{
    const qmb_ref *r = j->ref;
    /* scrtm_and_bios: one entry must match the S-CRTM and the firmware blobs in order */
    bool sab_ok = false;
    for (size_t i = 0; i < r->nsab && !sab_ok; i++) {
        const sab *s = &r->sab[i];
        bool ok = s->have_scrtm ? (j->scrtm.n == 1 && memcmp(j->scrtm.d[0].d, s->scrtm.d, DG) == 0)
                                : j->scrtm.n == 0;
        ok = ok && j->fw.n == s->nfw;
        for (size_t k = 0; ok && k < s->nfw; k++)
            ok = memcmp(j->fw.d[k].d, s->fw[k].d, DG) == 0;
        sab_ok = ok;
    }
    if (!sab_ok) {
        char want[2 + 2 * DG + 1] = "(none)";
        if (r->sab[0].have_scrtm)
            hexs(r->sab[0].scrtm.d, DG, want);
        finding(j, j->scrtm.n ? (int64_t)j->scrtm.ev[0] : -1,
                "the S-CRTM and %zu firmware blobs match no scrtm_and_bios entry (scrtm_and_bios[0] expects S-CRTM %s and %zu blobs)",
                j->fw.n, want, r->sab[0].nfw);
    }
    /* kernels: one entry must match all of its parts; otherwise report the closest one */
    size_t best = 0;
    unsigned best_bad = ~0u;
    for (size_t i = 0; i < r->nk; i++) {
        unsigned bad = kernel_mismatches(j, &r->k[i], i, false);
        if (bad == 0)
            return;
        if (bad < best_bad) {
            best_bad = bad;
            best = i;
        }
    }
    kernel_mismatches(j, &r->k[best], best, true);
}

int qmb_evaluate(const qmb_ref *ref, const void *log, size_t len, qmb_result *out, qerr *e)
{
    memset(out, 0, sizeof *out);
    qevlog_reader rd;
    if (qevlog_open(&rd, log, len, e) < 0)
        return -1;
    judge *j = calloc(1, sizeof *j);
    if (!j)
        return qerr_set(e, "out of memory");
    j->ref = ref;
    j->out = out;
    j->ctx = EVP_MD_CTX_new();
    j->mc = pcre2_match_context_create(NULL);
    j->md = pcre2_match_data_create(4, NULL);
    j->str = malloc(QEVLOG_MAX_DATA + 1);
    int rc = 0;
    if (!j->ctx || !j->mc || !j->md || !j->str || pcre2_set_match_limit(j->mc, 100000) != 0 ||
        pcre2_set_depth_limit(j->mc, 1000) != 0) {
        rc = qerr_set(e, "out of memory");
        goto done;
    }
    uint16_t sha256 = qhash_tpm_id(QHASH_SHA256);
    bool have_bank = false;
    for (unsigned b = 0; b < rd.nbanks; b++)
        have_bank |= rd.banks[b].alg_id == sha256;
    if (!have_bank) {
        finding(j, -1, "the log has no sha256 bank; the reference state pins sha256 digests");
        goto done;
    }
    qevlog_event ev;
    int nr;
    while ((nr = qevlog_next(&rd, &ev, e)) == 1) {
        if (ev.num == 0 && rd.crypto_agile)
            continue;                               /* the Spec ID header */
        const qevlog_digest *d = qevlog_event_digest(&ev, sha256);
        if (!d) {
            if (ev.type != QEV_NO_ACTION)
                finding(j, ev.num, "%s in PCR %u has no sha256 digest", qevlog_type_name(ev.type), ev.pcr);
            continue;
        }
        dispatch(j, &ev, d->bytes);
    }
    if (nr < 0) {
        rc = -1;
        goto done;
    }
    final_checks(j);
done:
    for (size_t i = 0; i < j->ncmd; i++)
        free(j->cmd[i]);
    free(j->str);
    pcre2_match_data_free(j->md);
    pcre2_match_context_free(j->mc);
    EVP_MD_CTX_free(j->ctx);
    free(j);
    return rc;
}

unsigned qmb_boot_aggregates(const qevlog_pcrs *p, char (*out)[2 * QHASH_MAX_SIZE + 1], unsigned max)
{
    unsigned n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return 0;
    for (unsigned b = 0; b < p->nbanks && n < max; b++) {
        qhash_alg a = p->bank[b].alg;
        size_t sz = qhash_size(a);
        for (unsigned last = 7; last <= 9 && n < max; last += 2) {
            uint8_t buf[10 * QHASH_MAX_SIZE], h[QHASH_MAX_SIZE];
            for (unsigned i = 0; i <= last; i++)
                memcpy(buf + i * sz, p->bank[b].value[i], sz);
            if (qhash_digest(ctx, a, buf, (last + 1) * sz, h) == 0)
                qhex_encode(h, sz, out[n++]);
        }
    }
    EVP_MD_CTX_free(ctx);
    return n;
}
