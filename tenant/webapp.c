/* webapp.c — `quince-tenant webapp`: options, the HTTPS certificate (made at start from the
 * verifier's CA, or given), the login token, the routes, and the wait for SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "tls_ca.h"
#include "webapp.h"

#define LOGM "webapp"

static volatile sig_atomic_t g_stop;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant webapp [options]\n"
        "\n"
        "Serves the operator's web page over HTTPS: the agents and their states (refreshed every few\n"
        "seconds), an agent's last failure and registrar record, reactivate / stop / delete, runtime\n"
        "policies (upload an allowlist or a runtime policy, checked here first; show; delete), and\n"
        "adding an agent. The page talks to the verifier and the registrar through this program, with\n"
        "the tenant's mTLS certificate; no browser ever holds a client key.\n"
        "\n"
        "A one-time login token is printed at start (\"log in at https://...?token=...\"); it becomes a\n"
        "session cookie (HttpOnly, Secure, SameSite=Strict). Restart the program for a new token.\n"
        "\n"
        "Options:\n"
        "  --listen ADDR        address to serve on (default 127.0.0.1); anything but loopback prints\n"
        "                       a warning: everyone who can reach it can try to log in\n"
        "  --port N             port (default %d; 0 picks a free one, printed at start)\n"
        "  --cert FILE --key FILE  the server certificate and key to use; default: a fresh one made at\n"
        "                       start and signed by the verifier's CA (its key: --ca-key)\n"
        "  --ca-key FILE        the CA key (default: cakey.pem beside [tenant] ca_cert)\n"
        "  --max-upload BYTES   largest request, i.e. an uploaded policy (default %u)\n"
        "  -v, --cv HOST  -vp, --cvport PORT  -r, --registrarhost HOST  -rp, --registrarport PORT\n"
        "                       the verifier and registrar, as for the other commands\n"
        "  --config FILE        configuration file; its [tenant] section (tls_dir, ca_cert,\n"
        "                       client_cert, client_key, verifier_ip, ...) as for the other commands\n"
        "  -h, --help\n"
        "\n"
        "Browsers must trust the verifier's CA (cacert.pem) to accept the page's certificate.\n"
        "Stops on SIGINT (Ctrl-C) or SIGTERM. Exit status: 0 after a stop, 2 bad options or files,\n"
        "1 when the server cannot start.\n",
        WAPP_DEFAULT_PORT, WAPP_DEFAULT_UPLOAD);
}

typedef struct wopts {
    const char *listen, *cert, *key, *ca_key;
    long port;
    long max_upload;
} wopts;

enum { O_LISTEN = 256, O_PORT, O_CERT, O_KEY, O_CAKEY, O_MAXUP, O_CVPORT, O_REGPORT, O_CONFIG };

static int parse(int argc, char **argv, wapp *w, wopts *wo, qerr *err)
{
    static const struct option LONG[] = {
        {"listen", required_argument, NULL, O_LISTEN}, {"port", required_argument, NULL, O_PORT},
        {"cert", required_argument, NULL, O_CERT}, {"key", required_argument, NULL, O_KEY},
        {"ca-key", required_argument, NULL, O_CAKEY}, {"max-upload", required_argument, NULL, O_MAXUP},
        {"cv", required_argument, NULL, 'v'}, {"cvport", required_argument, NULL, O_CVPORT},
        {"vp", required_argument, NULL, O_CVPORT}, {"registrarhost", required_argument, NULL, 'r'},
        {"registrarport", required_argument, NULL, O_REGPORT}, {"rp", required_argument, NULL, O_REGPORT},
        {"config", required_argument, NULL, O_CONFIG}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(wo, 0, sizeof *wo);
    wo->listen = "127.0.0.1";
    wo->port = WAPP_DEFAULT_PORT;
    wo->max_upload = WAPP_DEFAULT_UPLOAD;
    tcli_opts *o = &w->o;
    memset(o, 0, sizeof *o);
    o->cmd = TCMD_STATUS;
    o->command = "webapp";
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long_only(argc, argv, ":v:r:h", LONG, NULL)) != -1) {
        char *end;
        const char *a = optarg;
        long v;
        switch (c) {
        case O_LISTEN:
            wo->listen = a;
            break;
        case O_PORT:
            v = strtol(a, &end, 10);
            if (*end || end == a || v < 0 || v > 65535)
                return tcli_usage_err(err, "invalid --port '%.40s' (0..65535)", a);
            wo->port = v;
            break;
        case O_CERT:
            wo->cert = a;
            break;
        case O_KEY:
            wo->key = a;
            break;
        case O_CAKEY:
            wo->ca_key = a;
            break;
        case O_MAXUP:
            v = strtol(a, &end, 10);
            if (*end || end == a || v < 1024 || v > (1L << 30))
                return tcli_usage_err(err, "invalid --max-upload '%.40s' (1024 to 1073741824 bytes)", a);
            wo->max_upload = v;
            break;
        case 'v':
            if (tcli_check_host(a, "-v/--cv", err) < 0)
                return -1;
            o->cv_ip = a;
            break;
        case 'r':
            if (tcli_check_host(a, "-r/--registrarhost", err) < 0)
                return -1;
            o->reg_ip = a;
            break;
        case O_CVPORT:
        case O_REGPORT:
            v = strtol(a, &end, 10);
            if (*end || end == a || v < 1 || v > 65535)
                return tcli_usage_err(err, "invalid port '%.40s' for %s (1..65535)", a,
                                      c == O_CVPORT ? "-vp/--cvport" : "-rp/--registrarport");
            *(c == O_CVPORT ? &o->cv_port : &o->reg_port) = v;
            break;
        case O_CONFIG:
            o->config = a;
            break;
        case 'h':
            o->help = true;
            return 0;
        case ':':
            return tcli_usage_err(err, "option '%.60s' needs a value", argv[optind - 1]);
        default:
            return tcli_usage_err(err, "unknown option '%.60s' (see webapp --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return tcli_usage_err(err, "unexpected argument '%.60s'", argv[optind]);
    if (!wo->cert != !wo->key)
        return tcli_usage_err(err, "--cert and --key go together");
    return 0;
}

static bool is_loopback(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, ip, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return strcmp(ip, "localhost") == 0;
}

static bool is_wildcard(const char *ip)
{
    return !*ip || strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0;
}

/* The server certificate: given files, or a fresh key and certificate signed by the CA. */
static int server_cert(const wapp *w, const wopts *wo, char **cert_pem, char **key_pem, qerr *err)
{
    *cert_pem = *key_pem = NULL;
    X509 *crt = NULL, *ca = NULL;
    EVP_PKEY *key = NULL, *ca_key = NULL;
    int rc = -1;
    if (wo->cert) {
        if (qtls_load_pair(wo->cert, wo->key, &crt, &key, err) < 0)
            goto out;
    } else {
        if (w->c.insecure) {
            qerr_setc(err, TCLI_EUSAGE, "the tenant is configured insecure (no CA): give --cert and --key");
            goto out;
        }
        char ca_key_path[1100];
        if (wo->ca_key)
            snprintf(ca_key_path, sizeof ca_key_path, "%s", wo->ca_key);
        else {
            char dir[1024];
            snprintf(dir, sizeof dir, "%s", w->c.ca_cert);
            snprintf(ca_key_path, sizeof ca_key_path, "%s/" QTLS_F_CA_KEY, dirname(dir));
        }
        if (!(ca = qtls_read_cert(w->c.ca_cert, err)) || !(ca_key = qtls_read_key(ca_key_path, err))) {
            qerr_prefix(err, "cannot make the page's certificate from the verifier's CA (or give --cert and --key)");
            goto out;
        }
        const char *names[8];
        int n = 0;
        names[n++] = "127.0.0.1";
        names[n++] = "::1";
        names[n++] = "localhost";
        char host[256] = "";
        if (!is_wildcard(wo->listen) && !is_loopback(wo->listen) && qtls_name_valid(wo->listen))
            names[n++] = wo->listen;
        if (gethostname(host, sizeof host - 1) == 0 && host[0] && qtls_name_valid(host))
            names[n++] = host;
        names[n] = NULL;
        qtls_cert_opts co = { .cn = "quince-webapp", .names = names, .eku = QTLS_EKU_SERVER };
        if (!(key = qtls_key_new(QTLS_KEY_EC_P256, err)) || !(crt = qtls_make_cert(&co, key, ca, ca_key, err)))
            goto out;
    }
    if (!(*cert_pem = qtls_cert_pem(crt, NULL, err)) || !(*key_pem = qtls_key_pem(key, NULL, err)))
        goto out;
    rc = 0;
out:
    if (rc < 0) {
        free(*cert_pem);
        qtls_free_secret(*key_pem);
        *cert_pem = *key_pem = NULL;
        if (err)
            err->code = TCLI_EUSAGE;
    }
    X509_free(crt);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return rc;
}

static void add_origin(wapp *w, const char *host, unsigned port)
{
    if (w->norigins == WAPP_MAX_ORIGINS)
        return;
    bool v6 = strchr(host, ':') != NULL;
    snprintf(w->origins[w->norigins++], sizeof w->origins[0], "https://%s%s%s:%u", v6 ? "[" : "", host,
             v6 ? "]" : "", port);
}

static const qhttp_route *routes(wapp *w, size_t *n)
{
    static qhttp_route R[32];
    size_t i = 0;
#define ROUTE(m, p, f) R[i++] = (qhttp_route){ m, p, f, w }
    ROUTE("GET", "/", wapp_h_index);
    ROUTE("GET", "/login", wapp_h_login_get);
    ROUTE("POST", "/login", wapp_h_login_post);
    ROUTE("POST", "/logout", wapp_h_logout);
    ROUTE("GET", "/static/{file}", wapp_h_static);
    ROUTE("GET", "/upload", wapp_h_upload_page);
    ROUTE("GET", "/agent/{id}", wapp_h_agent);
    ROUTE("POST", "/agent/{id}/action", wapp_h_agent_action);
    ROUTE("GET", "/add", wapp_h_add_get);
    ROUTE("POST", "/add", wapp_h_add_post);
    ROUTE("GET", "/policies", wapp_h_policies);
    ROUTE("GET", "/policy/{name}", wapp_h_policy);
    ROUTE("POST", "/policy/{name}/delete", wapp_h_policy_delete);
    ROUTE("GET", "/api/session", wapp_h_api_session);
    ROUTE("GET", "/api/agents", wapp_h_api_agents);
    ROUTE("POST", "/api/upload", wapp_h_api_upload);
#undef ROUTE
    *n = i;
    return R;
}

static int report(const qerr *e)
{
    fprintf(stderr, "quince-tenant: webapp: %s\n", e->msg[0] ? e->msg : "failed");
    return e->code == TCLI_EUSAGE ? TCLI_EUSAGE : TCLI_EFAIL;
}

int tenant_webapp(int argc, char **argv)
{
    static wapp w;    /* large (sessions); lives for the whole run */
    wopts wo;
    qerr e;
    qerr_clear(&e);
    qconfig *cfg = NULL;
    qhttp_server *srv = NULL;
    char *cert = NULL, *key = NULL;
    int rc = TCLI_OK;
    memset(&w, 0, sizeof w);
    if (pthread_mutex_init(&w.mu, NULL) != 0)
        return TCLI_EFAIL;
    if (parse(argc, argv, &w, &wo, &e) < 0) {
        rc = report(&e);
        goto out;
    }
    if (w.o.help) {
        usage(stdout);
        goto out;
    }
    if (!(cfg = qconfig_load(w.o.config, &e))) {
        qerr_prefix(&e, "bad configuration");
        e.code = TCLI_EUSAGE;
        rc = report(&e);
        goto out;
    }
    qlog_level lvl;
    const char *ls = qconfig_get(cfg, "tenant", "log_level");
    if (ls && *ls && qlog_level_parse(ls, &lvl) == 0)
        qlog_set_level(lvl);
    if (tcli_resolve(&w.o, cfg, &w.c, &e) < 0 || (!w.c.insecure && tcli_tls_check(&w.c, &e) < 0) ||
        server_cert(&w, &wo, &cert, &key, &e) < 0 || wapp_auth_init(&w, &e) < 0) {
        rc = report(&e);
        goto out;
    }
    w.max_upload = (size_t)wo.max_upload;
    size_t nr;
    const qhttp_route *rt = routes(&w, &nr);
    qhttp_server_opts so = { .ip = wo.listen, .port = (uint16_t)wo.port, .max_body = w.max_upload, .threads = 4,
                             .log_module = LOGM, .tls_cert_pem = cert, .tls_key_pem = key };
    if (!(srv = qhttp_server_start(&so, rt, nr, &e))) {
        e.code = TCLI_EFAIL;
        rc = report(&e);
        goto out;
    }
    unsigned port = qhttp_server_port(srv);
    char host[256] = "127.0.0.1";
    if (!is_wildcard(wo.listen))
        snprintf(host, sizeof host, "%s", wo.listen);
    else if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "localhost");
    add_origin(&w, host, port);
    add_origin(&w, "127.0.0.1", port);
    add_origin(&w, "localhost", port);
    add_origin(&w, "::1", port);
    if (!is_loopback(wo.listen))
        fprintf(stderr, "quince-tenant: webapp: warning: serving on %s, not on loopback: anyone who can reach "
                        "this address can try to log in; keep the token secret and prefer an SSH tunnel\n",
                wo.listen);
    if (w.c.insecure)
        fprintf(stderr, "quince-tenant: webapp: warning: insecure: plain HTTP without certificates to the "
                        "verifier and the registrar; for debugging only\n");
    bool v6 = strchr(host, ':') != NULL;
    printf("quince-tenant webapp: serving https://%s%s%s:%u/ (verifier %s:%ld, registrar %s:%ld)\n", v6 ? "[" : "",
           host, v6 ? "]" : "", port, w.c.cv_ip, w.c.cv_port, w.c.reg_ip, w.c.reg_port);
    printf("quince-tenant webapp: log in at https://%s%s%s:%u/login?token=%s\n", v6 ? "[" : "", host, v6 ? "]" : "",
           port, w.token);
    fflush(stdout);
    qlog(QLOG_INFO, LOGM, "serving on %s port %u", wo.listen, port);
    qdaemon_stop_on_signals(&g_stop);
    while (!g_stop) {
        struct timespec ts = { 0, 200 * 1000000L };
        nanosleep(&ts, NULL);
    }
    qlog(QLOG_INFO, LOGM, "stopping");
out:
    qhttp_server_stop(srv);
    free(cert);
    qtls_free_secret(key);
    tcli_conf_free(&w.c);
    tcli_opts_free(&w.o);
    qconfig_free(cfg);
    pthread_mutex_destroy(&w.mu);
    explicit_bzero(&w, sizeof w);
    return rc;
}
