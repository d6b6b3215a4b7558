/* ca_cmd.c — `quince-verifier ca`; see ca_cmd.h. */
#include "ca_cmd.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tls_ca.h"

#define PROG "quince-verifier ca"
#define MAX_SANS (QTLS_MAX_NAMES - 3)

static const char usage_text[] =
    "usage: quince-verifier ca --dir DIR COMMAND [options]\n"
    "\n"
    "Manage the verifier's built-in certificate authority (the verifier's tls_dir).\n"
    "\n"
    "commands:\n"
    "  init [--san NAME ...]        create the CA, the server certificate and the verifier's and\n"
    "                               tenant's client certificates where missing; check existing ones\n"
    "  issue-client NAME [--out-dir D]\n"
    "                               a new client certificate and key (CN NAME, clientAuth) signed by\n"
    "                               the CA, written as D/NAME-cert.pem and D/NAME-key.pem (D: DIR)\n"
    "  reset [--san NAME ...]       start afresh: move every *.pem into DIR/old-<timestamp>/ and make\n"
    "                               a new CA and certificates (the old server names are kept)\n"
    "  list                         subject, names, validity and check of every certificate in DIR\n"
    "\n"
    "options:\n"
    "  --dir DIR                    the CA directory (created with mode 0700 when missing)\n"
    "  --san NAME                   an IP address or DNS name for the server certificate; repeatable\n"
    "                               (localhost, 127.0.0.1 and ::1 are always included)\n"
    "  --key-type ec|rsa            new keys: EC P-256 (default) or RSA 3072\n"
    "  --out-dir D                  where issue-client writes (default: DIR)\n"
    "  -h, --help                   this text\n"
    "\n"
    "Distribute cacert.pem to every agent (trusted_client_ca) and tenant; keep *-key.pem private.\n";

typedef struct ca_args {
    const char *dir, *cmd, *name, *out_dir;
    const char *sans[MAX_SANS + 1];
    size_t nsans;
    qtls_ca_opts opts;
    bool help;
} ca_args;

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

static int fail(const qerr *e)
{
    fprintf(stderr, PROG ": %s\n", e->msg);
    return 1;
}

/* Returns 0, or the exit status for bad usage. */
static int parse(int argc, char **argv, ca_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *val = NULL;
        const char *opt = NULL;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            a->help = true;
            continue;
        }
        if (!strncmp(s, "--", 2)) {
            static const char *const with_val[] = { "--dir", "--san", "--out-dir", "--key-type" };
            const char *eq = strchr(s, '=');
            size_t nl = eq ? (size_t)(eq - s) : strlen(s);
            for (size_t k = 0; k < sizeof with_val / sizeof with_val[0]; k++)
                if (strlen(with_val[k]) == nl && !strncmp(s, with_val[k], nl))
                    opt = with_val[k];
            if (!opt)
                return usage_error("unknown option %s", s);
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return usage_error("%s needs a value", opt);
            if (!*val)
                return usage_error("%s needs a non-empty value", opt);
            if (!strcmp(opt, "--dir")) {
                a->dir = val;
            } else if (!strcmp(opt, "--out-dir")) {
                a->out_dir = val;
            } else if (!strcmp(opt, "--key-type")) {
                if (qtls_key_type_parse(val, &a->opts.key_type) < 0)
                    return usage_error("--key-type must be ec or rsa, not %s", val);
            } else {
                if (!qtls_name_valid(val))
                    return usage_error("--san %s is neither an IP address nor a DNS name", val);
                if (a->nsans >= MAX_SANS)
                    return usage_error("too many --san values (at most %s)", "29");
                a->sans[a->nsans++] = val;
            }
            continue;
        }
        if (s[0] == '-' && s[1])
            return usage_error("unknown option %s", s);
        if (!a->cmd)
            a->cmd = s;
        else if (!a->name && !strcmp(a->cmd, "issue-client"))
            a->name = s;
        else
            return usage_error("unexpected argument %s", s);
    }
    if (a->help)
        return 0;
    if (!a->cmd)
        return usage_error("%s", "missing command (init, issue-client, reset or list)");
    if (strcmp(a->cmd, "init") && strcmp(a->cmd, "issue-client") && strcmp(a->cmd, "reset") && strcmp(a->cmd, "list"))
        return usage_error("unknown command %s", a->cmd);
    if (!a->dir)
        return usage_error("%s", "--dir DIR is required");
    if (!strcmp(a->cmd, "issue-client") && !a->name)
        return usage_error("%s", "issue-client needs a NAME");
    if (a->out_dir && strcmp(a->cmd, "issue-client"))
        return usage_error("--out-dir is only for issue-client, not %s", a->cmd);
    if (a->nsans && strcmp(a->cmd, "init") && strcmp(a->cmd, "reset"))
        return usage_error("--san is only for init and reset, not %s", a->cmd);
    return 0;
}

static void print_report(const char *dir, const qtls_ca_report *r)
{
    if (r->created)
        printf("%s: created %s\n", dir, r->created_files);
    if (r->kept)
        printf("%s: %u existing file%s checked\n", dir, r->kept, r->kept == 1 ? "" : "s");
    if (r->warning[0])
        fprintf(stderr, PROG ": warning: %s\n", r->warning);
}

static int cmd_init(const ca_args *a)
{
    qerr e = { 0 };
    qtls_ca_report r;
    if (qtls_ensure_ca_dir(a->dir, a->sans, NULL, &a->opts, &r, &e) < 0)
        return fail(&e);
    print_report(a->dir, &r);
    return 0;
}

static int cmd_issue(const ca_args *a)
{
    qerr e = { 0 };
    char cp[4096], kp[4096];
    if (qtls_issue_client(a->dir, a->name, a->out_dir, &a->opts, cp, kp, sizeof cp, &e) < 0)
        return fail(&e);
    printf("created %s\ncreated %s\n", cp, kp);
    return 0;
}

static int cmd_reset(ca_args *a)
{
    qerr e = { 0 };
    /* Keep the old server certificate's own (non-loopback) names. */
    char path[4096];
    static qtls_cert_info old;    /* large; one call per process */
    snprintf(path, sizeof path, "%s/%s", a->dir, QTLS_F_SERVER_CERT);
    X509 *srv = qtls_read_cert(path, NULL);
    if (srv && qtls_cert_info_get(srv, &old, NULL) == 0) {
        for (size_t i = 0; i < old.nnames && a->nsans < MAX_SANS; i++) {
            const char *n = old.names[i];
            if (!strcasecmp(n, "DNS:localhost") || !strcmp(n, "IP:127.0.0.1") || !strcmp(n, "IP:::1"))
                continue;
            bool dup = false;
            for (size_t j = 0; j < a->nsans && !dup; j++)
                dup = strcasecmp(a->sans[j], n) == 0 || strcasecmp(a->sans[j], strchr(n, ':') + 1) == 0;
            if (!dup && qtls_name_valid(n))
                a->sans[a->nsans++] = n;
        }
    }
    X509_free(srv);
    char moved[4096];
    if (qtls_reset_ca_dir(a->dir, moved, sizeof moved, &e) < 0)
        return fail(&e);
    if (moved[0])
        printf("moved the old files to %s\n", moved);
    return cmd_init(a);
}

static int pem_filter(const struct dirent *d)
{
    size_t l = strlen(d->d_name);
    return d->d_name[0] != '.' && l > 4 && !strcmp(d->d_name + l - 4, ".pem") &&
           !(l >= 7 && !strcmp(d->d_name + l - 7, "key.pem"));
}

static void print_cert(const char *dir, const char *file, X509 *ca)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    qerr e = { 0 };
    X509 *c = qtls_read_cert(path, &e);
    qtls_cert_info info;
    if (!c || qtls_cert_info_get(c, &info, &e) < 0) {
        printf("%s\n  error:    %s\n", file, e.msg);
        X509_free(c);
        return;
    }
    time_t now = time(NULL);
    printf("%s\n", file);
    printf("  subject:  %s\n", info.subject);
    printf("  issuer:   %s\n", info.self_signed ? "(self-signed)" : info.issuer);
    printf("  serial:   %s\n", info.serial);
    printf("  key:      %s\n", info.key_desc);
    printf("  valid:    %s to %s%s\n", info.not_before, info.not_after,
           info.na < now ? "  (EXPIRED)" : info.nb > now ? "  (NOT YET VALID)" : "");
    printf("  usage:    %s%s%s%s\n", info.is_ca ? "CA " : "", info.eku & QTLS_EKU_SERVER ? "serverAuth " : "",
           info.eku & QTLS_EKU_CLIENT ? "clientAuth" : "",
           !info.is_ca && !info.eku ? "(any)" : "");
    if (info.nnames) {
        printf("  names:   ");
        for (size_t i = 0; i < info.nnames; i++)
            printf(" %s", info.names[i]);
        printf("\n");
    }
    if (ca) {
        qerr ve = { 0 };
        unsigned eku = info.is_ca ? 0 : info.eku == QTLS_EKU_SERVER ? QTLS_EKU_SERVER
                                        : info.eku == QTLS_EKU_CLIENT ? QTLS_EKU_CLIENT : 0;
        printf("  check:    %s\n", qtls_verify(c, ca, eku, &ve) == 0 ? "ok" : ve.msg);
    }
    X509_free(c);
}

static int cmd_list(const ca_args *a)
{
    qerr e = { 0 };
    if (qtls_check_dir(a->dir, &e) < 0)
        return fail(&e);
    struct dirent **list = NULL;
    int n = scandir(a->dir, &list, pem_filter, alphasort);
    if (n < 0) {
        qerr_set(&e, "cannot list %s", a->dir);
        return fail(&e);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", a->dir, QTLS_F_CA_CERT);
    X509 *ca = qtls_read_cert(path, NULL);
    if (n == 0)
        printf("%s: no certificates\n", a->dir);
    for (int i = 0; i < n; i++) {
        print_cert(a->dir, list[i]->d_name, ca);
        free(list[i]);
    }
    free(list);
    X509_free(ca);
    return 0;
}

int verifier_ca_main(int argc, char **argv)
{
    static ca_args a;
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    if (a.help) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(a.cmd, "init"))
        return cmd_init(&a);
    if (!strcmp(a.cmd, "issue-client"))
        return cmd_issue(&a);
    if (!strcmp(a.cmd, "reset"))
        return cmd_reset(&a);
    return cmd_list(&a);
}
