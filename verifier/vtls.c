/* vtls.c — the verifier's TLS material at start-up; see vtls.h. */
#include "vtls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The parents of tls_dir that are missing are made with mode 0700, as the database's directory
 * is (on a fresh machine /var/lib/quince does not exist yet); tls_dir itself is
 * qtls_ensure_ca_dir's. */
static int make_parents(const char *dir, qerr *err)
{
    char path[VCONFIG_PATH];
    if ((size_t)snprintf(path, sizeof path, "%s", dir) >= sizeof path)
        return qerr_set(err, "tls_dir path too long");
    char *last = strrchr(path, '/');
    if (!last || last == path)
        return 0;
    *last = '\0';
    struct stat st;
    if (stat(path, &st) == 0)
        return 0;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return qerr_set(err, "cannot create %s: %s", path, strerror(errno));
        *p = saved;
        if (!saved)
            break;
    }
    return 0;
}

int vtls_prepare(const vconfig *cfg, qtls_ca_report *report, qerr *err)
{
    memset(report, 0, sizeof *report);
    if (cfg->tls_generated) {
        if (make_parents(cfg->tls_dir, err) < 0)
            return qerr_prefix(err, "[verifier] tls_dir");
        const char *names[3] = { cfg->ip, NULL, NULL };
        if (strcmp(cfg->registrar_ip, cfg->ip) != 0)
            names[1] = cfg->registrar_ip;
        if (qtls_ensure_ca_dir(cfg->tls_dir, names, NULL, NULL, report, err) < 0)
            return qerr_prefix(err, "[verifier] tls_dir %s", cfg->tls_dir);
    }
    if (qtls_load_pair(cfg->server_cert, cfg->server_key, NULL, NULL, err) < 0)
        return qerr_prefix(err, "server certificate");
    if (qtls_load_pair(cfg->client_cert, cfg->client_key, NULL, NULL, err) < 0)
        return qerr_prefix(err, "client certificate");
    X509 *ca = qtls_read_cert(cfg->trusted_client_ca, err);
    if (!ca)
        return qerr_prefix(err, "trusted_client_ca");
    X509_free(ca);
    return 0;
}
