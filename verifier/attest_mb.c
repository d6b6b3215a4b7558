/* attest_mb.c — measured boot in an attestation round (attest_mb.h). */
#include "attest_mb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "hex.h"
#include "log.h"

#define MOD "measured_boot"
#define MB_PCRS 0xfbffu                 /* PCRs 0-9 and 11-15 */

void vmb_scratch_clear(vmb_scratch *s)
{
    if (!s)
        return;
    free(s->buf);
    memset(s, 0, sizeof *s);
}

/* Decodes the base64 log into s->buf; its length, or -1 with a reason. */
static long decode(vmb_scratch *s, const char *b64, char *why, size_t cap)
{
    size_t n = strlen(b64);
    size_t max = qb64_decoded_max(n);
    if (max > QEVLOG_MAX_BYTES + 3) {
        snprintf(why, cap, "the boot event log is larger than %u bytes", QEVLOG_MAX_BYTES);
        return -1;
    }
    if (max > s->cap) {
        uint8_t *b = realloc(s->buf, max ? max : 1);
        if (!b) {
            snprintf(why, cap, "out of memory for the boot event log");
            return -1;
        }
        s->buf = b;
        s->cap = max;
    }
    long len = qb64_decode(b64, n, s->buf, s->cap);
    if (len < 0)
        snprintf(why, cap, "mb_measurement_list is not valid base64");
    return len;
}

static void aggregates(vmb_scratch *s)
{
    char hex[VMB_MAX_AGGREGATES][2 * QHASH_MAX_SIZE + 1];
    unsigned n = qmb_boot_aggregates(&s->pcrs, hex, VMB_MAX_AGGREGATES);
    s->nagg = 0;
    for (unsigned i = 0; i < n; i++) {
        long k = qhex_decode(hex[i], strlen(hex[i]), s->agg[s->nagg].bytes, QHASH_MAX_SIZE);
        if (k > 0) {
            s->agg[s->nagg].len = (size_t)k;
            s->nagg++;
        }
    }
}

bool vmb_check(vmb_scratch *s, const vmb_in *in, vmb_fail_fn fail, void *ctx)
{
    char why[512];
    uint32_t quoted = in->pcrs->mask & MB_PCRS;
    s->nagg = 0;
    if (!in->log_b64) {
        for (unsigned n = 0; n < 16; n++) {
            if (!(quoted & (1u << n)))
                continue;
            char ev[64];
            snprintf(ev, sizeof ev, "pcr_validation.unused_pcr_%u", n);
            snprintf(why, sizeof why, "Measured Boot PCR %u in policy, but no measurement list provided", n);
            fail(ctx, ev, why);
        }
        if (in->log)
            qlog(QLOG_ERROR, MOD, "agent %s: measured boot PCRs quoted, but no boot event log provided",
                 in->agent_id);
        return false;
    }
    long len = decode(s, in->log_b64, why, sizeof why);
    qerr e = {0};
    if (len >= 0 && qevlog_replay(s->buf, (size_t)len, &s->pcrs, &e) < 0) {
        snprintf(why, sizeof why, "the boot event log cannot be replayed: %.400s", e.msg);
        len = -1;
    }
    if (len < 0) {
        fail(ctx, "measured_boot.invalid_log", why);
        if (in->log)
            qlog(QLOG_ERROR, MOD, "agent %s: %s", in->agent_id, why);
        return false;
    }
    aggregates(s);

    size_t hs = qhash_size(in->bank);
    bool pcr_ok = true;
    for (unsigned n = 0; n < 16; n++) {
        if (!(quoted & (1u << n)))
            continue;
        const uint8_t *want = qevlog_pcr(&s->pcrs, in->bank, n);
        if (want && memcmp(want, in->pcrs->value[n], hs) == 0)
            continue;
        char got[2 * QHASH_MAX_SIZE + 1], exp[2 * QHASH_MAX_SIZE + 1] = "(no such bank in the log)";
        qhex_encode(in->pcrs->value[n], hs, got);
        if (want)
            qhex_encode(want, hs, exp);
        char ev[64];
        snprintf(ev, sizeof ev, "measured_boot.invalid_pcr_%u", n);
        snprintf(why, sizeof why, "%s boot event log PCR value does not match: PCR %u quoted %s, the log replays to %s",
                 qhash_name(in->bank), n, got, exp);
        fail(ctx, ev, why);
        if (in->log)
            qlog(QLOG_ERROR, MOD, "agent %s: for PCR %u and hash %s the boot event log has value %s but the agent "
                 "returned %s", in->agent_id, n, qhash_name(in->bank), exp, got);
        pcr_ok = false;
    }
    /* As Keylime: the reference is judged even when PCRs differ, so a log from another machine
     * is named by what differs in it, not only by its PCRs. */
    if (!in->evaluate)
        return false;

    qmb_result res;
    if (qmb_evaluate(in->ref, s->buf, (size_t)len, &res, &e) < 0) {
        snprintf(why, sizeof why, "Boot attestation failed: %.400s", e.msg);
        fail(ctx, "measured_boot.policy_example", why);
        if (in->log)
            qlog(QLOG_ERROR, MOD, "agent %s: %s", in->agent_id, why);
        return false;
    }
    for (unsigned i = 0; i < res.n; i++) {
        const qmb_finding *f = &res.f[i];
        if (f->event >= 0)
            snprintf(why, sizeof why, "Boot attestation failed: event %" PRId64 ": %s", f->event, f->msg);
        else
            snprintf(why, sizeof why, "Boot attestation failed: %s", f->msg);
        fail(ctx, "measured_boot.policy_example", why);
        if (in->log)
            qlog(QLOG_ERROR, MOD, "agent %s: %s", in->agent_id, why);
    }
    if (res.total > res.n) {
        snprintf(why, sizeof why, "Boot attestation failed: %u more findings not listed", res.total - res.n);
        fail(ctx, "measured_boot.policy_example", why);
    }
    if (pcr_ok && res.total == 0 && in->log)
        qlog(QLOG_INFO, MOD, "agent %s: boot event log matches its reference state", in->agent_id);
    return pcr_ok && res.total == 0;
}

void vmb_agent_clear(vmb_agent *m)
{
    if (!m)
        return;
    qmb_ref_free(m->ref);
    memset(m, 0, sizeof *m);
}

void vmb_round(vmb_scratch *s, vmb_agent *m, const vmb_round_in *in, bool *evaluated, vmb_fail_fn fail, void *ctx)
{
    s->nagg = 0;
    if (!in->mb_policy || !(in->pcrs->mask & 1u))
        return;
    if (!m->parsed) {
        m->parsed = true;
        qerr e = {0};
        m->ref = qmb_ref_parse(in->mb_policy, strlen(in->mb_policy), &e);
        if (!m->ref) {
            snprintf(m->error, sizeof m->error, "%.200s", e.msg);
            if (in->log)
                qlog(QLOG_ERROR, MOD, "agent %s: measured boot reference state unusable: %s", in->agent_id, m->error);
        }
    }
    if (!m->ref) {
        char why[320];
        snprintf(why, sizeof why, "the agent's measured boot reference state is unusable: %s", m->error);
        fail(ctx, "measured_boot.policy_example", why);
        return;
    }
    vmb_in mi = {
        .agent_id = in->agent_id, .ref = m->ref, .log_b64 = in->log_b64, .bank = in->bank, .pcrs = in->pcrs,
        /* once: per boot, and again for a new record (add, reactivate, a verifier restart) */
        .evaluate = !in->accept_all && (in->evaluate_always || !*evaluated || !m->judged),
        .log = in->log,
    };
    if (vmb_check(s, &mi, fail, ctx))
        *evaluated = m->judged = true;
}
