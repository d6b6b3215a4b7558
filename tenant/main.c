/* quince-tenant: the operators' CLI. Local tools (create-allowlist, check-log, the policy tools)
 * and the web page (webapp) are sub-commands; everything else takes keylime_tenant's options. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "tenant.h"
#include "webapp.h"

static void usage(FILE *f)
{
    tenant_cli_usage(f);
}

/* Sub-commands that are not keylime_tenant's: each takes its own options and --help. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} tools[] = {
    { "create-allowlist", tenant_create_allowlist },
    { "check-log", tenant_check_log },
    { "sign-policy", tenant_sign_policy },
    { "verify-policy", tenant_verify_policy },
    { "diff-policy", tenant_diff_policy },
    { "create-policy", tenant_create_policy },
    { "create-mb-policy", tenant_create_mb_policy },
    { "check-mb-log", tenant_check_mb_log },
    { "webapp", tenant_webapp },
};

int main(int argc, char **argv)
{
    if (argc >= 2) {
        for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
            if (strcmp(argv[1], tools[i].name) == 0)
                return tools[i].run(argc - 1, argv + 1);
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
