/* quince-verifier: the registrar API (a plain-HTTP port for agents' registration and activation,
 * an mTLS port for everything) and the verifier API (mTLS) in one daemon, the attestation loop,
 * the SQLite store and the built-in CA (vtls.h); `quince-verifier ca ...` manages the CA.
 * Exit status: 0 after SIGTERM/SIGINT, 2 for a bad command line, configuration, TLS material or
 * database, 1 when a server or the attestation loop cannot start. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "ca_cmd.h"
#include "migrate_cmd.h"
#include "config.h"
#include "config_check.h"
#include "fd_budget.h"
#include "http_server.h"
#include "log.h"
#include "poller.h"
#include "registrar.h"
#include "store.h"
#include "store_url.h"
#include "vconfig.h"
#include "vtls.h"
#include "ops_hooks.h"
#include "daemon.h"

#define LOGM "verifier"
/* Outgoing connections the poller may hold at once (its MAX_INFLIGHT). */
#define POLL_FD_RESERVE 1024L

static volatile sig_atomic_t g_stop;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quince-verifier [--config FILE] [--check-config] [--help] [--version]\n"
            "       quince-verifier ca [--config FILE] [--dir DIR] COMMAND ...   (see 'quince-verifier ca --help')\n"
            "       quince-verifier migrate --from DATABASE --to DATABASE   (see 'quince-verifier migrate --help')\n"
            "\n"
            "The Quince verifier: serves the registrar API (agents register their EK and AK) and the\n"
            "verifier API (the tenant adds agents and runtime policies), polls every added agent for\n"
            "quotes and IMA measurement lists, and stops attesting an agent that fails. Every link is\n"
            "mutually authenticated TLS with certificates from its built-in CA ([verifier] tls_dir), made\n"
            "on first start; `quince-verifier ca` issues more client certificates or starts afresh.\n"
            "\n"
            "Options:\n"
            "  --config FILE   configuration file (default $QUINCE_CONFIG or %s)\n"
            "  --check-config  validate the configuration, print the values in effect (secrets\n"
            "                  masked) and exit: 0 when valid, 2 when not; nothing is created\n"
            "  --help          this text\n"
            "  --version       print the version\n"
            "\n%s",
            QCONFIG_DEFAULT_PATH, vconfig_help());
}

/* tls NULL: plain HTTP. */
static qhttp_server *start_server(const char *what, const char *ip, long port, size_t max_body, unsigned threads,
                                  unsigned conn_limit, const char *module, const qhttp_route *routes, size_t n,
                                  const vconfig *tls, const char *note)
{
    qerr e = {0};
    qhttp_server_opts so = {.ip = ip, .port = (uint16_t)port, .max_body = max_body, .threads = threads,
                            .conn_limit = conn_limit, .log_module = module};
    if (tls) {
        so.tls_cert_file = tls->server_cert;
        so.tls_key_file = tls->server_key;
        so.tls_ca_file = tls->trusted_client_ca;
        so.require_client_cert = true;
    }
    qhttp_server *s = qhttp_server_start(&so, routes, n, &e);
    if (!s)
        qlog(QLOG_CRITICAL, LOGM, "cannot start the %s on %s:%ld: %s", what, ip, port, e.msg);
    else {
        qlog(QLOG_INFO, LOGM, "%s listening on %s:%u (%s)", what, ip, qhttp_server_port(s), note);
        qlog(QLOG_INFO, LOGM, "%s: at most %u connections, %u per client address, request headers within %u s",
             what, conn_limit, QHTTP_DEFAULT_PER_IP, QHTTP_DEFAULT_HEADER_TIMEOUT);
    }
    return s;
}

static int run(const vconfig *cfg, vstore *store)
{
    qerr e = {0};
    static vops ops;     /* notifications and metrics: up before the first round */
    if (vops_start(&ops, cfg, store, &e) < 0) {
        qlog(QLOG_CRITICAL, LOGM, "%s", e.msg);
        return 1;
    }
    vpoller_opts po;
    vconfig_poller_opts(cfg, &po);
    /* The same host and API port is the same verifier after a restart: it takes its own leases
     * back at once instead of waiting for them to expire (two processes cannot hold one port). */
    char instance[600], host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    if (cfg->port > 0) {
        snprintf(instance, sizeof instance, "%s:%s:%ld", host, cfg->ip, cfg->port);
        po.instance_id = instance;
    }
    po.on_round = vops_on_round_report;
    po.on_round_ctx = &ops;
    vpoller *poller = vpoller_start(&po, store, &e);
    if (!poller) {
        qlog(QLOG_CRITICAL, LOGM, "cannot start the attestation loop: %s", e.msg);
        vops_stop(&ops);
        return 1;
    }
    /* Owned here; both registrar contexts borrow it, so one address has one budget. */
    reg_rate *rate = reg_rate_new(cfg->reg_limits.registrations_per_minute);
    registrar_ctx rc = {.store = store,
                        .tpm_cert_store = cfg->tpm_cert_store[0] ? cfg->tpm_cert_store : NULL,
                        .require_ek_cert = cfg->require_ek_cert,
                        .plain_only = !cfg->insecure,
                        .tls_port = cfg->registrar_tls_port,
                        .limits = &cfg->reg_limits,
                        .rate = rate};
    if (!rate) {
        qlog(QLOG_CRITICAL, LOGM, "out of memory");
        vpoller_stop(poller);
        vops_stop(&ops);
        return 1;
    }
    registrar_ctx rc_tls = rc;
    rc_tls.plain_only = false;
    vapi_ctx ac = {.store = store, .poller = poller, .cfg = cfg, .ops = &ops};
    qhttp_route rroutes[REGISTRAR_NUM_ROUTES + 8], rtroutes[REGISTRAR_NUM_ROUTES + 8], vroutes[VAPI_MAX_ROUTES];
    size_t nr = registrar_routes(&rc, rroutes, sizeof rroutes / sizeof rroutes[0]);
    size_t nrt = registrar_routes(&rc_tls, rtroutes, sizeof rtroutes / sizeof rtroutes[0]);
    size_t nv = vapi_routes(&ac, vroutes, VAPI_MAX_ROUTES);
    if (nr == 0 || nrt == 0 || nv == 0) {
        qlog(QLOG_CRITICAL, LOGM, "internal error: no routes");
        vpoller_stop(poller);
        vops_stop(&ops);
        reg_rate_free(rate);
        return 1;
    }

    /* Connection limits from the descriptors there are, after those the poller's outgoing
     * connections may need: API clients can never take the descriptors polling uses. */
    long was = 0, nofile = qfd_raise_nofile(&was);
    long reserve = QFD_BASE_RESERVE + POLL_FD_RESERVE;
    unsigned lim_api = qfd_conn_limit(nofile, reserve, 50), lim_reg = qfd_conn_limit(nofile, reserve, 30),
             lim_reg_tls = qfd_conn_limit(nofile, reserve, 20);
    qlog(nofile - reserve < 3 * (long)QFD_MIN_CONN ? QLOG_WARNING : QLOG_INFO, LOGM,
         "file descriptors: limit %ld (soft limit was %ld), %ld kept for the database, logs and polling; "
         "connection limits: verifier API %u, registrar %u, registrar TLS %u", nofile, was, reserve, lim_api,
         lim_reg, lim_reg_tls);

    int status = 1;
    const vconfig *tls = cfg->insecure ? NULL : cfg;
    qhttp_server *reg_tls = tls ? start_server("registrar TLS API", cfg->registrar_ip, cfg->registrar_tls_port,
                                               REGISTRAR_MAX_BODY, 2, lim_reg_tls, "registrar", rtroutes, nrt, tls, "mTLS")
                                : NULL;
    if (reg_tls)
        rc.tls_port = qhttp_server_port(reg_tls);   /* the bound port, for the plain port's 403 text */
    qhttp_server *reg = reg_tls || !tls ? start_server("registrar API", cfg->registrar_ip, cfg->registrar_port,
                                                       REGISTRAR_MAX_BODY, 2, lim_reg, "registrar", rroutes, nr, NULL,
                                                       tls ? "plain HTTP: registration and activation only"
                                                           : "plain HTTP, INSECURE")
                                        : NULL;
    qhttp_server *api = reg
                            ? start_server("verifier API", cfg->ip, cfg->port, (size_t)cfg->max_upload_size, 4, lim_api, LOGM,
                                           vroutes, nv, tls, tls ? "mTLS" : "plain HTTP, INSECURE")
                            : NULL;
    if (reg && api) {
        status = 0;
        while (!g_stop) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        qlog(QLOG_INFO, LOGM, "stopping");
    }
    /* Servers first (no new work), then the loop finishes its rounds and commits. */
    qhttp_server_stop(api);
    qhttp_server_stop(reg_tls);
    qhttp_server_stop(reg);
    vpoller_stop(poller);
    vops_stop(&ops);
    reg_rate_free(rate);
    return status;
}

/* `quince-verifier ca ...`: --config FILE is taken out of the arguments (it is not an option of
 * verifier_ca_main), and without --dir the configuration's tls_dir is used; init and reset then
 * also get the configured addresses as server names when no --san is given. */
static int ca_main(int argc, char **argv)
{
    const char *config_path = NULL;
    bool has_dir = false, has_san = false, help = false;
    const char *cmd = NULL;
    char **av = calloc((size_t)argc + 8, sizeof *av);
    if (!av) {
        fprintf(stderr, "quince-verifier ca: out of memory\n");
        return 1;
    }
    int n = 0;
    av[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--config") == 0) {
            if (i + 1 >= argc) {
                free(av);
                fprintf(stderr, "quince-verifier ca: --config needs a file name\n");
                return 2;
            }
            config_path = argv[++i];
            continue;
        }
        if (strncmp(s, "--config=", 9) == 0) {
            config_path = s + 9;
            continue;
        }
        if (strcmp(s, "--dir") == 0 || strncmp(s, "--dir=", 6) == 0)
            has_dir = true;
        if (strcmp(s, "--san") == 0 || strncmp(s, "--san=", 6) == 0)
            has_san = true;
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0)
            help = true;
        av[n++] = argv[i];
        if (strcmp(s, "--dir") == 0 || strcmp(s, "--san") == 0 || strcmp(s, "--out-dir") == 0 ||
            strcmp(s, "--key-type") == 0) {
            if (i + 1 < argc)
                av[n++] = argv[++i];     /* the option's value */
            continue;
        }
        if (!cmd && s[0] != '-')
            cmd = s;
    }
    static vconfig cfg;
    if (!has_dir && !help) {
        qerr e = {0};
        qconfig *qc = qconfig_load_strict(config_path, &e);
        int rc = qc ? vconfig_load(qc, &cfg, &e) : -1;
        qconfig_free(qc);
        if (rc < 0) {
            free(av);
            fprintf(stderr, "quince-verifier ca: bad configuration: %s\n", e.msg);
            return 2;
        }
        av[n++] = "--dir";
        av[n++] = cfg.tls_dir;
        if (!has_san && cmd && (strcmp(cmd, "init") == 0 || strcmp(cmd, "reset") == 0)) {
            av[n++] = "--san";
            av[n++] = cfg.ip;
            if (strcmp(cfg.registrar_ip, cfg.ip) != 0) {
                av[n++] = "--san";
                av[n++] = cfg.registrar_ip;
            }
        }
    }
    av[n] = NULL;
    int rc = verifier_ca_main(n, av);
    free(av);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "ca") == 0)
        return ca_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "migrate") == 0)
        return verifier_migrate_main(argc - 1, argv + 1);
    const char *config_path = NULL;
    bool check_only = false;
    int rc0 = qdaemon_args_check(argc, argv, "quince-verifier", usage, &config_path, &check_only);
    if (rc0 >= 0)
        return rc0;

    /* Everything about the configuration is checked before anything is created on disk. */
    qerr e = {0};
    qconfig *qc = qconfig_load_strict(config_path, &e);
    if (!qc) {
        fprintf(stderr, "quince-verifier: bad configuration: %s\n", e.msg);
        return 2;
    }
    qconfig_trace(qc, check_only);
    static vconfig cfg;
    int rc = vconfig_load(qc, &cfg, &e);
    if (check_only) {
        if (rc == 0)
            qconfig_print_effective(qc, stdout);
        else
            fprintf(stderr, "quince-verifier: bad configuration: %s\n", e.msg);
        qconfig_free(qc);
        return rc == 0 ? 0 : 2;
    }
    const char *cfg_file = qconfig_path(qc);
    char cfg_name[1024];
    snprintf(cfg_name, sizeof cfg_name, "%s", cfg_file ? cfg_file : "(none, built-in defaults)");
    qconfig_free(qc);
    if (rc < 0) {
        fprintf(stderr, "quince-verifier: bad configuration: %s\n", e.msg);
        return 2;
    }
    qlog_set_level(cfg.log_level);
    qlog_set_format(cfg.log_format);

    qdaemon_stop_on_signals(&g_stop);

    if (cfg.insecure)
        qlog(QLOG_WARNING, LOGM, "INSECURE: [verifier] insecure = true: the verifier API and the registrar serve "
                                 "plain HTTP and accept any client; for debugging only");
    if (cfg.allow_agent_plain_http)
        qlog(QLOG_WARNING, LOGM, "INSECURE: agents registered without an mTLS certificate are polled over plain "
                                 "HTTP (allow_agent_plain_http); for debugging only");
    /* The database first: a wrong URL, wrong credentials or an unreachable server are reported
     * before any TLS material is made. */
    vstore *store = vstore_open(cfg.database, &e);
    if (!store) {
        fprintf(stderr, "quince-verifier: cannot use the database %s: %s\n", cfg.database, e.msg);
        return 2;
    }
    qtls_ca_report rep;
    if (vtls_prepare(&cfg, &rep, &e) < 0) {
        fprintf(stderr, "quince-verifier: TLS: %s\n", e.msg);
        vstore_close(store);
        return 2;
    }
    if (rep.created)
        qlog(QLOG_INFO, LOGM, "TLS: created %s in %s (distribute %s/%s to every agent as [agent] trusted_client_ca)",
             rep.created_files, cfg.tls_dir, cfg.tls_dir, QTLS_F_CA_CERT);
    if (rep.warning[0])
        qlog(QLOG_WARNING, LOGM, "TLS: %s", rep.warning);

    qlog(QLOG_INFO, LOGM, "Starting Quince verifier %s (configuration %s, database %s on %s, schema %d)",
         QUINCE_VERSION, cfg_name, cfg.database, vstore_engine(store), vstore_schema_version(store));
    int status = run(&cfg, store);
    qlog(QLOG_INFO, LOGM, "store: %lu write transactions committed", vstore_commits(store));
    vstore_close(store);
    if (status == 0)
        qlog(QLOG_INFO, LOGM, "stopped");
    return status;
}
