/* quince-tenant: the operators' CLI. Local tools (create-allowlist, check-log) are sub-commands;
 * everything else takes keylime_tenant's options. */
#include <stdio.h>
#include <string.h>
#include "tenant.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant <command> [options]\n"
        "       quince-tenant [keylime_tenant options] -c <command>\n"
        "\n"
        "Local tools (no verifier needed):\n"
        "  create-allowlist   write an allowlist or runtime policy from a root file system\n"
        "                     and/or initramfs images (see 'create-allowlist --help')\n"
        "  check-log          verify an IMA measurement list offline against an allowlist or\n"
        "                     runtime policy and an optional PCR 10 value ('check-log --help')\n"
        "\n"
        "Options:\n"
        "  --help             this text\n"
        "  --version          print the version\n");
}

int main(int argc, char **argv)
{
    if (argc >= 2) {
        if (strcmp(argv[1], "create-allowlist") == 0)
            return tenant_create_allowlist(argc - 1, argv + 1);
        if (strcmp(argv[1], "check-log") == 0)
            return tenant_check_log(argc - 1, argv + 1);
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
            printf("quince-tenant %s\n", QUINCE_VERSION);
            return 0;
        }
    }
    fprintf(stderr, "quince-tenant: the verifier commands (-c add|update|...) are not available in this "
                    "build yet; use create-allowlist or check-log\n");
    return 2;
}
