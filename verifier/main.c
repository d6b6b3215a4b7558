/* quince-verifier: the registrar API and the verifier API in one daemon (each on its own port),
 * the attestation loop and the SQLite store.
 * Exit status: 0 after SIGTERM/SIGINT, 2 for a bad command line, configuration or database,
 * 1 when a server or the attestation loop cannot start. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "config.h"
#include "http_server.h"
#include "log.h"
#include "poller.h"
#include "registrar.h"
#include "store.h"
#include "vconfig.h"

#define LOGM "verifier"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quince-verifier [--config FILE] [--help] [--version]\n"
            "\n"
            "The Quince verifier: serves the registrar API (agents register their EK and AK) and the\n"
            "verifier API (the tenant adds agents and runtime policies), polls every added agent for\n"
            "quotes and IMA measurement lists, and stops attesting an agent that fails.\n"
            "\n"
            "Options:\n"
            "  --config FILE   configuration file (default $QUINCE_CONFIG or %s)\n"
            "  --help          this text\n"
            "  --version       print the version\n"
            "\n%s",
            QCONFIG_DEFAULT_PATH, vconfig_help());
}

static qhttp_server *start_server(const char *what, const char *ip, long port, size_t max_body, unsigned threads,
                                  const char *module, const qhttp_route *routes, size_t n)
{
    qerr e = {0};
    qhttp_server_opts so = {.ip = ip, .port = (uint16_t)port, .max_body = max_body, .threads = threads,
                            .log_module = module};
    qhttp_server *s = qhttp_server_start(&so, routes, n, &e);
    if (!s)
        qlog(QLOG_CRITICAL, LOGM, "cannot start the %s on %s:%ld: %s", what, ip, port, e.msg);
    else
        qlog(QLOG_INFO, LOGM, "%s listening on %s:%u", what, ip, qhttp_server_port(s));
    return s;
}

static int run(const vconfig *cfg, vstore *store)
{
    qerr e = {0};
    vpoller_opts po;
    vconfig_poller_opts(cfg, &po);
    vpoller *poller = vpoller_start(&po, store, &e);
    if (!poller) {
        qlog(QLOG_CRITICAL, LOGM, "cannot start the attestation loop: %s", e.msg);
        return 1;
    }
    registrar_ctx rc = {.store = store,
                        .tpm_cert_store = cfg->tpm_cert_store[0] ? cfg->tpm_cert_store : NULL,
                        .require_ek_cert = cfg->require_ek_cert};
    vapi_ctx ac = {.store = store, .poller = poller, .cfg = cfg};
    qhttp_route rroutes[REGISTRAR_NUM_ROUTES + 8], vroutes[VAPI_MAX_ROUTES];
    size_t nr = registrar_routes(&rc, rroutes, sizeof rroutes / sizeof rroutes[0]);
    size_t nv = vapi_routes(&ac, vroutes, VAPI_MAX_ROUTES);
    if (nr == 0 || nv == 0) {
        qlog(QLOG_CRITICAL, LOGM, "internal error: no routes");
        vpoller_stop(poller);
        return 1;
    }

    int status = 1;
    qhttp_server *reg = start_server("registrar API", cfg->registrar_ip, cfg->registrar_port, REGISTRAR_MAX_BODY, 2,
                                     "registrar", rroutes, nr);
    qhttp_server *api = reg ? start_server("verifier API", cfg->ip, cfg->port, (size_t)cfg->max_upload_size, 4,
                                           LOGM, vroutes, nv)
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
    qhttp_server_stop(reg);
    vpoller_stop(poller);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("quince-verifier %s\n", QUINCE_VERSION);
            return 0;
        default:
            if (optopt == 'c')
                fprintf(stderr, "quince-verifier: --config needs a file name\n");
            else
                fprintf(stderr, "quince-verifier: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "quince-verifier: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }

    qerr e = {0};
    qconfig *qc = qconfig_load(config_path, &e);
    if (!qc) {
        fprintf(stderr, "quince-verifier: bad configuration: %s\n", e.msg);
        return 2;
    }
    static vconfig cfg;
    int rc = vconfig_load(qc, &cfg, &e);
    const char *cfg_file = qconfig_path(qc);
    char cfg_name[1024];
    snprintf(cfg_name, sizeof cfg_name, "%s", cfg_file ? cfg_file : "(none, built-in defaults)");
    qconfig_free(qc);
    if (rc < 0) {
        fprintf(stderr, "quince-verifier: bad configuration: %s\n", e.msg);
        return 2;
    }
    qlog_set_level(cfg.log_level);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    vstore *store = vstore_open(cfg.database, &e);
    if (!store) {
        fprintf(stderr, "quince-verifier: cannot use the database %s: %s\n", cfg.database, e.msg);
        return 2;
    }
    qlog(QLOG_INFO, LOGM, "Starting Quince verifier %s (configuration %s, database %s, schema %d)", QUINCE_VERSION,
         cfg_name, cfg.database, vstore_schema_version(store));
    int status = run(&cfg, store);
    vstore_close(store);
    if (status == 0)
        qlog(QLOG_INFO, LOGM, "stopped");
    return status;
}
