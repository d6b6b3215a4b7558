/* create_mb_policy.c — `quince-tenant create-mb-policy`: a measured-boot reference state from a
 * known-good UEFI event log, in the JSON that Keylime's `keylime-policy create measured-boot`
 * writes for the same log (common/mb_refstate.c). Exit 0, 1 when the log cannot give a
 * reference state, 2 for bad options or unreadable files. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "buf.h"
#include "eventlog.h"
#include "mb_refstate.h"
#include "tenant.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant create-mb-policy --eventlog FILE [--without-secureboot] [-o FILE]\n"
        "\n"
        "Write a measured-boot reference state from a known-good UEFI event log (on the machine\n"
        "itself: /sys/kernel/security/tpm0/binary_bios_measurements). It pins the S-CRTM and\n"
        "firmware blobs, the Secure Boot state, PK, KEK, db and dbx, the MokList digests, the\n"
        "shim, grub and kernel authenticode digests, the initrd digest and the kernel command\n"
        "line. Keys and values are those of Keylime's reference states, so either side accepts\n"
        "the other's.\n"
        "\n"
        "  -e, --eventlog FILE       the binary event log (at most 16 MiB)\n"
        "  -i, --without-secureboot  accept a log with Secure Boot off; the kernel is then pinned\n"
        "                            by its plain vmlinuz digest (ignored, with a warning, when\n"
        "                            Secure Boot is on)\n"
        "  -o, --output FILE         write here instead of standard output\n"
        "  -h, --help                this text\n"
        "\n"
        "Exit status: 0 written; 1 the log cannot give a reference state (malformed, no sha256\n"
        "bank, Secure Boot off without -i, unexpected boot applications); 2 bad options or an\n"
        "unreadable file.\n");
}

int tenant_create_mb_policy(int argc, char **argv)
{
    static const struct option opts[] = {
        { "eventlog", required_argument, NULL, 'e' }, { "eventlog-file", required_argument, NULL, 'e' },
        { "without-secureboot", no_argument, NULL, 'i' }, { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    const char *log_path = NULL, *out_path = NULL;
    bool without_sb = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "e:io:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': log_path = optarg; break;
        case 'i': without_sb = true; break;
        case 'o': out_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "quince-tenant: create-mb-policy: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "quince-tenant: create-mb-policy: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!log_path) {
        fprintf(stderr, "quince-tenant: create-mb-policy: --eventlog FILE is required (see --help)\n");
        return 2;
    }
    qbuf log;
    qbuf_init(&log, QEVLOG_MAX_BYTES);
    if (qbuf_read_file(&log, log_path, QEVLOG_MAX_BYTES) < 0) {
        fprintf(stderr, "quince-tenant: create-mb-policy: %s: %s\n", log_path,
                errno == EFBIG ? "larger than the 16 MiB limit" : strerror(errno));
        qbuf_free(&log);
        return 2;
    }
    qerr e;
    bool ignored = false;
    cJSON *ref = qmb_refstate_from_log(log.data, log.len, without_sb, &ignored, &e);
    qbuf_free(&log);
    if (!ref) {
        fprintf(stderr, "quince-tenant: create-mb-policy: %s: %s\n", log_path, e.msg);
        return 1;
    }
    if (ignored)
        fprintf(stderr, "quince-tenant: create-mb-policy: warning: Secure Boot is on in %s; "
                        "--without-secureboot is ignored\n", log_path);
    char *text = cJSON_Print(ref);
    cJSON_Delete(ref);
    if (!text) {
        fprintf(stderr, "quince-tenant: create-mb-policy: out of memory\n");
        return 2;
    }
    FILE *f = out_path ? fopen(out_path, "w") : stdout;
    int rc = 0;
    if (!f || fprintf(f, "%s\n", text) < 0 || (out_path && fclose(f) != 0) || (!out_path && fflush(f) != 0)) {
        fprintf(stderr, "quince-tenant: create-mb-policy: %s: %s\n", out_path ? out_path : "stdout",
                strerror(errno));
        rc = 2;
    }
    cJSON_free(text);
    return rc;
}
