/* quince-agent: owns the TPM, registers with the registrar and serves Keylime's agent API.
 * `quince-agent ima-emulator ...` keeps a software TPM's PCR 10 in step with a list file. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "agent_metrics.h"
#include "agent_tls.h"
#include "api.h"
#include "config.h"
#include "config_check.h"
#include "daemon.h"
#include "fd_budget.h"
#include "http_server.h"
#include "identity.h"
#include "ima_emulator.h"
#include "mb_emulator.h"
#include "log.h"
#include "payload_setup.h"
#include "privdrop.h"
#include "register.h"

static volatile sig_atomic_t g_stop;
static agent_mtls g_mtls;            /* the agent's TLS key and certificate (agent_tls.h) */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quince-agent [--config FILE] [--check-config] [--help] [--version]\n"
            "       quince-agent ima-emulator [options]   (see 'quince-agent ima-emulator --help')\n"
            "       quince-agent mb-emulator --log FILE   (see 'quince-agent mb-emulator --help')\n"
            "\n"
            "The Quince agent: creates the TPM's EK and AK, registers with the registrar, and serves\n"
            "quotes of PCR 10 with the IMA measurement list (Keylime agent API v2.1-2.6). It opens a\n"
            "tenant's payload (/keys/ukey + /keys/vkey) into a tmpfs once the verifier sent V.\n"
            "\n"
            "Options:\n"
            "  --config FILE   configuration file (default $QUINCE_CONFIG or /etc/quince/quince.conf)\n"
            "  --check-config  validate the configuration, print the values in effect (secrets\n"
            "                  masked) and exit: 0 when valid, 2 when not\n"
            "  --help          this text\n"
            "  --version       print the version\n"
            "\n%s",
            agent_config_help());
}

uint64_t agent_boottime(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long bt = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

static int fail(const char *what, const qerr *e)
{
    qlog(QLOG_CRITICAL, "agent", "%s: %s", what, e->msg);
    fprintf(stderr, "quince-agent: %s: %s\n", what, e->msg);
    return 1;
}

/* Milliseconds since t0 (CLOCK_MONOTONIC); start-up steps log how long they took, so a slow
 * TPM or a starved machine shows in the log instead of as silence. */
static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000L + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

static int run(agent_ctx *a)
{
    struct timespec t0;
    qerr e;
    if (agent_state_dir_ensure(a->cfg.state_dir, &e) < 0)
        return fail("state directory", &e);

    /* The list is root-only in securityfs: open it before dropping privileges. */
    a->ima = agent_ima_ml_open(a->cfg.ima_ml_path, &e);
    if (!a->ima)
        qlog(QLOG_WARNING, "agent", "%s; quotes will carry no measurement list", e.msg);
    a->mb = agent_mb_log_open(a->cfg.measuredboot_ml_path, &e);
    if (!a->mb)
        qlog(QLOG_WARNING, "agent", "%s; quotes of PCR 0 will carry no mb_measurement_list", e.msg);

    qtpm_opts to = {.tcti = a->cfg.tcti, .timeout_ms = (unsigned)a->cfg.tpm_timeout_ms,
                    .ek_handle = a->cfg.ek_handle, .ek_type = QTPM_KEY_RSA2048};
    a->tpm = qtpm_new(&to, &e);
    if (!a->tpm)
        return fail("TPM", &e);
    unsigned flushed = 0;
    if (qtpm_flush_leftovers(a->tpm, &flushed, &e) < 0)
        return fail("TPM start-up", &e);
    if (flushed)
        qlog(QLOG_INFO, "agent", "flushed %u transient objects/sessions left behind in the TPM", flushed);
    qtpm_info info;
    if (qtpm_get_info(a->tpm, &info, &e) < 0)
        return fail("TPM", &e);
    if (qtpm_is_software(&info))
        qlog(QLOG_WARNING, "agent", "INSECURE: the TPM is a software TPM (manufacturer '%s', vendor '%s'); "
                                    "use it for testing only", info.manufacturer_str, info.vendor);
    TPM2B_PUBLIC ek;
    if (qtpm_ek_public(a->tpm, &ek, &e) < 0)
        return fail("EK", &e);
    if (agent_uuid_resolve(a->cfg.uuid, a->cfg.state_dir, &ek, a->uuid, sizeof a->uuid, &e) < 0)
        return fail("uuid", &e);
    if (agent_tls_ensure_cert(a, &g_mtls, &e) < 0) {
        fprintf(stderr, "quince-agent: %s\n", e.msg);
        return 2;                      /* a restart would not help: as a bad configuration */
    }
    char ak_path[1100];
    snprintf(ak_path, sizeof ak_path, "%s/ak.blob", a->cfg.state_dir);
    qtpm_ak_params ap = {.type = strcmp(a->cfg.tpm_encryption_alg, "ecc") == 0 ? QTPM_KEY_ECC_P256 : QTPM_KEY_RSA2048,
                         .hash = a->cfg.tpm_hash_alg};
    bool created = false;
    qlog(QLOG_INFO, "agent", "loading or creating the AK (%s) in the TPM (TCTI \"%s\", %ld ms per command at most)",
         ap.type == QTPM_KEY_ECC_P256 ? "ECC P-256" : "RSA 2048", a->cfg.tcti, (long)a->cfg.tpm_timeout_ms);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (qtpm_ak_ensure(a->tpm, ak_path, &ap, &created, &e) < 0)
        return fail("AK", &e);
    qlog(QLOG_INFO, "agent", "%s AK %s (%ld ms)", created ? "created a new" : "reusing the", ak_path, ms_since(&t0));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (agent_payload_key_generate(&a->payload, &e) < 0)
        return fail("payload key", &e);
    qlog(QLOG_INFO, "agent", "generated the RSA-2048 payload key (%ld ms)", ms_since(&t0));
    if (a->cfg.tpm_release)
        qtpm_close(a->tpm);
    /* The secure directory (a tmpfs, mounted here when the agent may) and the U/V key store:
     * before the privilege drop, which hands the directory to run_as. A script from a payload
     * runs only when the API is mutually authenticated (or enable_insecure_payload). */
    if (agent_payload_setup(a, !a->cfg.insecure, &e) < 0) {
        qerr_prefix(&e, "payload delivery");
        qlog(QLOG_CRITICAL, "agent", "%s", e.msg);
        fprintf(stderr, "quince-agent: %s (set [agent] secure_dir to a directory on a tmpfs, e.g. under /dev/shm "
                        "or /run, run the agent where it may mount one, or set max_payload_size = 0 to turn "
                        "payload delivery off)\n", e.msg);
        return 2;                      /* a configuration problem: a restart would not help */
    }

    if (a->cfg.run_as[0]) {
        const char *paths[] = {a->cfg.state_dir, a->keys ? a->cfg.secure_dir : NULL, NULL};
        if (agent_drop_privileges(a->cfg.run_as, paths, &e) < 0)
            return fail("run_as", &e);
        qlog(QLOG_INFO, "agent", "running as %s", a->cfg.run_as);
    }
    a->boottime = agent_boottime();

    if (agent_register(a, &e) < 0) {
        if (g_stop)
            return 0;
        return fail("registration", &e);
    }
    if (a->cfg.tpm_release)
        qtpm_close(a->tpm);

    qhttp_route routes[16];
    size_t nr = agent_api_routes(a, routes, 16);
    qhttp_server_opts so = {.ip = a->cfg.ip, .port = (uint16_t)a->cfg.port, .log_module = "agent",
                            .max_body = (size_t)a->cfg.max_payload_size + 64 * 1024, .threads = 2};
    long was = 0, nofile = qfd_raise_nofile(&was);
    so.conn_limit = qfd_conn_limit(nofile, QFD_BASE_RESERVE, 50);
    agent_tls_server_opts(a, &so);
    if (a->cfg.metrics_listen[0] && !(a->metrics = agent_metrics_start(a->cfg.metrics_listen, &e)))
        return fail("metrics", &e);
    qhttp_server *srv = qhttp_server_start(&so, routes, nr, &e);
    if (!srv) {
        agent_metrics_stop(a->metrics);
        a->metrics = NULL;
        return fail("REST server", &e);
    }
    qlog(QLOG_INFO, "agent", "agent %s serving the Keylime agent API on %s:%u (%s)", a->uuid, a->cfg.ip,
         qhttp_server_port(srv), a->cfg.insecure ? "plain HTTP, INSECURE" : "mTLS, clients of trusted_client_ca");
    qlog(QLOG_INFO, "agent", "at most %u connections, %u per client address, request headers within %u s "
         "(file descriptor limit %ld, was %ld)", so.conn_limit, QHTTP_DEFAULT_PER_IP, QHTTP_DEFAULT_HEADER_TIMEOUT,
         nofile, was);
    while (!g_stop) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    qlog(QLOG_INFO, "agent", "stopping");
    qhttp_server_stop(srv);
    agent_metrics_stop(a->metrics);
    a->metrics = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    /* tpm2-tss prints its own ERROR lines for TPM errors we report (decoded) ourselves. */
    setenv("TSS2_LOG", "all+NONE", 0);
    if (argc >= 2 && strcmp(argv[1], "mb-emulator") == 0)
        return agent_mb_emulator_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "ima-emulator") == 0)
        return agent_ima_emulator_main(argc - 1, argv + 1);

    const char *config_path = NULL;
    bool check_only = false;
    int rc0 = qdaemon_args_check(argc, argv, "quince-agent", usage, &config_path, &check_only);
    if (rc0 >= 0)
        return rc0;
    qerr e;
    qconfig *cfg = qconfig_load_strict(config_path, &e);
    if (!cfg) {
        fprintf(stderr, "quince-agent: bad configuration: %s\n", e.msg);
        return 2;
    }
    qconfig_trace(cfg, check_only);
    static agent_ctx a;
    if (agent_config_load(cfg, &a.cfg, &e) < 0) {
        fprintf(stderr, "quince-agent: bad configuration: %s\n", e.msg);
        qconfig_free(cfg);
        return 2;
    }
    if (check_only) {
        qconfig_print_effective(cfg, stdout);
        qconfig_free(cfg);
        return 0;
    }
    qconfig_free(cfg);
    qlog_level lvl = QLOG_INFO;
    qlog_level_parse(a.cfg.log_level, &lvl);
    qlog_set_level(lvl);
    qlog_set_format(a.cfg.log_format);
    if (agent_tls_load_ca(&a, &e) < 0) {
        fprintf(stderr, "quince-agent: %s\n", e.msg);
        return 2;
    }

    qdaemon_stop_on_signals(&g_stop);
    /* A payload script is waited for (payload.h): SIGCHLD must not be ignored, even when the
     * parent that started the agent ignored it (an ignored disposition survives exec). */
    signal(SIGCHLD, SIG_DFL);
    pthread_mutex_init(&a.lock, NULL);
    a.stop = &g_stop;

    int rc = run(&a);

    agent_payload_teardown(&a);        /* the runner stops, keys are cleansed, a tmpfs it mounted goes */
    agent_ima_ml_close(a.ima);
    agent_mb_log_close(a.mb);
    agent_payload_key_free(&a.payload);
    agent_tls_free(&a, &g_mtls);
    qtpm_free(a.tpm);
    pthread_mutex_destroy(&a.lock);
    return rc;
}
