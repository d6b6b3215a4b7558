/* tenant.h — entry points of quince-tenant's sub-commands (each returns the process exit code). */
#ifndef QUINCE_TENANT_H
#define QUINCE_TENANT_H

/* quince-tenant create-allowlist [options]  (tenant/create_allowlist.c) */
int tenant_create_allowlist(int argc, char **argv);
/* quince-tenant check-log [options]         (tenant/check_log.c): 0 pass, 1 fail, 2 unusable input */
int tenant_check_log(int argc, char **argv);
/* quince-tenant sign-policy / verify-policy  (tenant/sign_policy.c) */
int tenant_sign_policy(int argc, char **argv);
int tenant_verify_policy(int argc, char **argv);
/* quince-tenant diff-policy OLD NEW          (tenant/diff_policy.c): 0 same, 1 differ, 2 error */
int tenant_diff_policy(int argc, char **argv);
/* quince-tenant create-policy [options]      (tenant/create_policy.c) */
int tenant_create_policy(int argc, char **argv);

/* quince-tenant create-mb-policy [options]  (tenant/create_mb_policy.c): 0 written, 1 unusable log, 2 bad input */
int tenant_create_mb_policy(int argc, char **argv);

/* quince-tenant check-mb-log [options]     (tenant/check_mb_log.c): 0 pass, 1 fail, 2 unusable input */
int tenant_check_mb_log(int argc, char **argv);

#endif
