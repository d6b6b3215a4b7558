/* quince-tenant: the operators' CLI. Local tools (create-allowlist, check-log) are sub-commands;
 * everything else takes keylime_tenant's options. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "tenant.h"

static void usage(FILE *f)
{
    tenant_cli_usage(f);
}

int main(int argc, char **argv)
{
    if (argc >= 2) {
        if (strcmp(argv[1], "create-allowlist") == 0)
            return tenant_create_allowlist(argc - 1, argv + 1);
        if (strcmp(argv[1], "check-log") == 0)
            return tenant_check_log(argc - 1, argv + 1);
        if (strcmp(argv[1], "sign-policy") == 0)
            return tenant_sign_policy(argc - 1, argv + 1);
        if (strcmp(argv[1], "verify-policy") == 0)
            return tenant_verify_policy(argc - 1, argv + 1);
        if (strcmp(argv[1], "diff-policy") == 0)
            return tenant_diff_policy(argc - 1, argv + 1);
        if (strcmp(argv[1], "create-policy") == 0)
            return tenant_create_policy(argc - 1, argv + 1);
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
            printf("quince-tenant %s\n", QUINCE_VERSION);
            return 0;
        }
    }
    return tenant_cli_main(argc, argv);
}
