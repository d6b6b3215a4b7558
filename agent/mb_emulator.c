/* mb_emulator.c — replays a UEFI event log into a software TPM's PCRs (see mb_emulator.h).
 * Refuses a TPM whose PCR 0 is no longer at its power-on value (the log was replayed already,
 * or firmware did it) and a TPM that is not a software TPM unless --force is given. */
#include "mb_emulator.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "eventlog.h"
#include "log.h"
#include "tpm.h"

#define MOD "mb-emulator"
#define MB_PCRS 0xFBFFu                  /* PCRs 0-9 and 11-15 */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: quince-agent mb-emulator --log FILE [--tcti TCTI] [--force]\n"
        "Extends a software TPM's PCRs 0-9 and 11-15 once after power-on from a real UEFI event\n"
        "log (binary_bios_measurements), so that quotes of those PCRs agree with the log the\n"
        "agent serves as mb_measurement_list ([agent] measuredboot_ml_path). For test rigs only.\n"
        "  --log FILE      the binary event log (at most 16 MiB)\n"
        "  --tcti TCTI     TPM to extend (default: $TCTI, else %s)\n"
        "  --force         extend even a TPM that is not a software TPM\n"
        "  --help          this text\n"
        "Exit status: 0 done, 1 a TPM or log error (the message says which event), 2 bad options.\n",
        QTPM_DEFAULT_TCTI);
}

/* PCR 0 of every active bank must still be zero: the log is replayed once per power-on. */
static int check_fresh(qtpm *t, uint32_t banks, qerr *e)
{
    for (int a = 0; a < QHASH_COUNT; a++) {
        if (!(banks & 1u << a))
            continue;
        qpcrblob blob;
        if (qtpm_pcr_read(t, (qhash_alg)a, 1u, &blob, e) < 0)
            return -1;
        static const uint8_t zero[QHASH_MAX_SIZE];
        if (memcmp(blob.value[0], zero, qhash_size((qhash_alg)a)) != 0)
            return qerr_set(e, "PCR 0 (%s) is not at its power-on value: the log was replayed already "
                               "(restart the software TPM to replay it again)", qhash_name((qhash_alg)a));
    }
    return 0;
}

static int replay(qtpm *t, uint32_t banks, const uint8_t *log, size_t len, unsigned *extended, qerr *e)
{
    qevlog_reader r;
    if (qevlog_open(&r, log, len, e) < 0)
        return -1;
    qevlog_event ev;
    int rc;
    while ((rc = qevlog_next(&r, &ev, e)) == 1) {
        if (ev.type == QEV_NO_ACTION || ev.pcr >= 24 || !(MB_PCRS & 1u << ev.pcr))
            continue;
        qtpm_digests d;
        memset(&d, 0, sizeof d);
        for (unsigned i = 0; i < ev.ndigests; i++) {
            qhash_alg a;
            if (qhash_from_tpm_id(ev.digests[i].alg_id, &a) < 0 || !(banks & 1u << a))
                continue;
            d.alg[d.count] = a;
            memcpy(d.value[d.count], ev.digests[i].bytes, ev.digests[i].size);
            d.count++;
        }
        if (d.count == 0)
            continue;
        if (qtpm_pcr_extend(t, ev.pcr, &d, 1, NULL, e) < 0)
            return qerr_prefix(e, "event %u (PCR %u)", ev.num, ev.pcr);
        (*extended)++;
    }
    return rc < 0 ? -1 : 0;
}

int agent_mb_emulator_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "log", required_argument, NULL, 'l' }, { "tcti", required_argument, NULL, 't' },
        { "force", no_argument, NULL, 'F' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    const char *path = NULL, *tcti = NULL;
    bool force = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': path = optarg; break;
        case 't': tcti = optarg; break;
        case 'F': force = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !path) {
        fprintf(stderr, "quince-agent mb-emulator: %s\n",
                optind < argc ? "unexpected argument" : "--log FILE is required");
        return 2;
    }
    qbuf log;
    qbuf_init(&log, QEVLOG_MAX_BYTES);
    if (qbuf_read_file(&log, path, QEVLOG_MAX_BYTES) < 0) {
        fprintf(stderr, "quince-agent mb-emulator: %s: %s\n", path,
                errno == EFBIG ? "larger than the 16 MiB limit" : strerror(errno));
        qbuf_free(&log);
        return 2;
    }
    qerr e;
    qtpm_opts to = { .tcti = tcti && *tcti ? tcti : getenv("TCTI") };
    qtpm *t = qtpm_new(&to, &e);
    qtpm_info info;
    unsigned extended = 0;
    int rc = 1;
    if (!t || qtpm_get_info(t, &info, &e) < 0)
        goto out;
    if (!qtpm_is_software(&info) && !force) {
        qerr_set(&e, "refusing to extend the PCRs of a TPM that is not a software TPM (manufacturer \"%s\"); "
                     "use --force to do it anyway", info.manufacturer_str);
        goto out;
    }
    uint32_t banks = info.pcr10_banks ? info.pcr10_banks : 1u << QHASH_SHA256;
    if (check_fresh(t, banks, &e) < 0 || replay(t, banks, log.data, log.len, &extended, &e) < 0)
        goto out;
    qlog(QLOG_INFO, MOD, "replayed %s into the TPM: %u events extended", path, extended);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "quince-agent mb-emulator: %s\n", e.msg);
    qtpm_free(t);
    qbuf_free(&log);
    return rc;
}
