/* check_mb_log.c — `quince-tenant check-mb-log`: judge a UEFI event log offline against a
 * measured-boot reference state, as the verifier does (common/mb_policy.c), and replay it.
 * Exit 0 it passes, 1 it does not, 2 unusable input. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "buf.h"
#include "eventlog.h"
#include "mb_policy.h"
#include "tenant.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant check-mb-log --eventlog FILE --mb-policy FILE\n"
        "\n"
        "Judge a UEFI event log (binary_bios_measurements) against a measured-boot reference\n"
        "state (from create-mb-policy or Keylime's keylime-policy), offline, with the checks the\n"
        "verifier makes: Secure Boot state, PK/KEK/db/dbx, S-CRTM and firmware, shim, grub,\n"
        "kernel, initrd and kernel command line, MokList, separators and unexpected events.\n"
        "\n"
        "  -e, --eventlog FILE   the binary event log (at most 16 MiB)\n"
        "  -p, --mb-policy FILE  the reference state (JSON, at most 4 MiB)\n"
        "  -h, --help            this text\n"
        "\n"
        "Output: one line per finding, \"event <n>: <what differs and what was expected>\", then\n"
        "\"result: PASS\" or \"result: FAIL (<n> findings)\".\n"
        "Exit status: 0 pass, 1 fail, 2 unusable input (unreadable or malformed log or\n"
        "reference state, bad options).\n");
}

static int load(qbuf *b, const char *path, size_t max)
{
    qbuf_init(b, max);
    if (qbuf_read_file(b, path, max) == 0)
        return 0;
    fprintf(stderr, "quince-tenant: check-mb-log: %s: %s\n", path,
            errno == EFBIG ? "larger than the size limit" : strerror(errno));
    qbuf_free(b);
    return -1;
}

int tenant_check_mb_log(int argc, char **argv)
{
    static const struct option opts[] = {
        { "eventlog", required_argument, NULL, 'e' }, { "mb-policy", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    const char *log_path = NULL, *ref_path = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "e:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': log_path = optarg; break;
        case 'p': ref_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "quince-tenant: check-mb-log: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc || !log_path || !ref_path) {
        fprintf(stderr, "quince-tenant: check-mb-log: --eventlog FILE and --mb-policy FILE are required (see --help)\n");
        return 2;
    }
    qbuf log, ref;
    if (load(&log, log_path, QEVLOG_MAX_BYTES) < 0)
        return 2;
    if (load(&ref, ref_path, QMB_MAX_REF_BYTES) < 0) {
        qbuf_free(&log);
        return 2;
    }
    qerr e;
    int rc = 2;
    qmb_ref *r = qmb_ref_parse((const char *)ref.data, ref.len, &e);
    static qmb_result res;
    if (!r) {
        fprintf(stderr, "quince-tenant: check-mb-log: %s: %s\n", ref_path, e.msg);
    } else if (qmb_evaluate(r, log.data, log.len, &res, &e) < 0) {
        fprintf(stderr, "quince-tenant: check-mb-log: %s: %s\n", log_path, e.msg);
    } else {
        for (unsigned i = 0; i < res.n; i++) {
            if (res.f[i].event >= 0)
                printf("event %lld: %s\n", (long long)res.f[i].event, res.f[i].msg);
            else
                printf("log: %s\n", res.f[i].msg);
        }
        if (res.total > res.n)
            printf("(%u more findings not shown)\n", res.total - res.n);
        if (res.total == 0)
            printf("result: PASS\n");
        else
            printf("result: FAIL (%u finding%s)\n", res.total, res.total == 1 ? "" : "s");
        rc = res.total ? 1 : 0;
    }
    qmb_ref_free(r);
    qbuf_free(&log);
    qbuf_free(&ref);
    return rc;
}
