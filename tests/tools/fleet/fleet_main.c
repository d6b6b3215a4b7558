/* fleet_main.c — quince-fleet's options, set-up and event loop (see fleet.h and --help). */
#include "fleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "buf.h"
#include "log.h"
#include "tls_ca.h"


double fl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double fl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* One descriptor an agent (the verifier's connection to it) and a few for the process: the
 * listener, two epoll fds, the server's wake-up fd, the signalfd, the provisioning threads'
 * clients, stdio and /proc reads. */
#define FIXED_FDS 48

static void usage(FILE *out)
{
    fprintf(out,
        "usage: quince-fleet --agents N --registrar http://HOST:PORT --tls-dir DIR --out DIR [options]\n"
        "Simulates N agents (1..%d) in one process: software EK/AK, real registration and activation,\n"
        "Keylime agent API v2.1-2.6 over mTLS, each on its own loopback address. One socket listens on\n"
        "0.0.0.0:PORT for all of them (run it in a network namespace of its own to keep the port off\n"
        "other interfaces): a connection is served as the agent whose address it was made to, with that\n"
        "agent's certificate; connections to other addresses fail their TLS handshake. An agent costs\n"
        "one open file (the verifier's connection), so N may reach the open-file limit less %d.\n"
        "  --verifier https://HOST:PORT  add every agent there (tenant certificate of --tls-dir)\n"
        "  --tls-dir DIR            the verifier's CA dir: cacert.pem (clients agents accept),\n"
        "                           tenant-cert.pem, tenant-key.pem\n"
        "  --out DIR                writes ek-ca.pem, policy.json, agents.txt\n"
        "  --base-ip A.B.C.D        first agent's address (default 127.10.0.1); agent i gets base + i\n"
        "  --port N                 every agent's port, the listener's (default 9002)\n"
        "  --ak ecc|rsa             AK type (default ecc: P-256/ECDSA; rsa: 2048/RSASSA)\n"
        "  --entries N              IMA entries every list starts with (default 100)\n"
        "  --files N                files in the pool and the policy (default 1000)\n"
        "  --new-entries-per-minute R   list growth per agent (default 0)\n"
        "  --evil K --evil-at S     K agents run an unlisted file S s after all are added (default 5)\n"
        "  --slow F --slow-ms MS    fraction F answers every request MS ms late (default 500)\n"
        "  --dead F --dead-at S     fraction F stops answering S s after all are added (default 5):\n"
        "                           open connections are closed, new ones fail their handshake\n"
        "  --reboot F --reboot-at S fraction F reboots (list restarts, new boot) at S s (default 10)\n"
        "  --interval S             the verifier's quote_interval, for the lag statistics (default 2)\n"
        "  --duration S             exit S s after all are added (default: run until SIGTERM)\n"
        "  --faults-on-usr2         the --*-at times count from SIGUSR2 (sent once the agents were\n"
        "                           added by other means, e.g. the tenant) instead of from the end\n"
        "                           of provisioning\n"
        "  --prefix HEX8            agent UUID prefix (default random)\n"
        "  --threads N              provisioning threads (default 2)\n"
        "  --provision-only         register, activate (and add) every agent, print the times, exit;\n"
        "                           no agent listens (measures provisioning beyond the open-file limit)\n"
        "  --watch-pid PID          the statistics also give PID's CPU time and RSS (the verifier's)\n"
        "  --api-version V          registrar/verifier API version (default 2.1)\n"
        "  --policy-name NAME       name of the runtime policy at the verifier (default quince-fleet)\n"
        "SIGUSR1 prints request statistics for the time since the previous print and resets them.\n",
        FLEET_MAX_AGENTS, FIXED_FDS);
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, fl_opts *o)
{
    static const struct option lo[] = {
        { "agents", 1, NULL, 'n' },  { "registrar", 1, NULL, 'r' }, { "verifier", 1, NULL, 'v' },
        { "tls-dir", 1, NULL, 't' }, { "out", 1, NULL, 'o' },       { "base-ip", 1, NULL, 'b' },
        { "port", 1, NULL, 'p' },    { "ak", 1, NULL, 'a' },        { "entries", 1, NULL, 'e' },
        { "files", 1, NULL, 'f' },   { "new-entries-per-minute", 1, NULL, 'g' },
        { "evil", 1, NULL, 'E' },    { "evil-at", 1, NULL, 'F' },   { "slow", 1, NULL, 'S' },
        { "slow-ms", 1, NULL, 'T' }, { "dead", 1, NULL, 'D' },      { "dead-at", 1, NULL, 'G' },
        { "reboot", 1, NULL, 'R' },  { "reboot-at", 1, NULL, 'H' }, { "interval", 1, NULL, 'i' },
        { "duration", 1, NULL, 'd' },{ "prefix", 1, NULL, 'x' },    { "threads", 1, NULL, 'j' },
        { "watch-pid", 1, NULL, 'W' },    { "provision-only", 0, NULL, 'O' },
        { "faults-on-usr2", 0, NULL, 'U' }, { "api-version", 1, NULL, 'V' }, { "policy-name", 1, NULL, 'P' }, { "help", 0, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    *o = (fl_opts){ .base_ip = "127.10.0.1", .port = 9002, .entries = 100, .files = 1000, .evil_at = 5,
                    .slow_ms = 500, .dead_at = 5, .reboot_at = 10, .interval = 2, .prov_threads = 2,
                    .api_version = "2.1", .policy_name = "quince-fleet" };
    int ch;
    double v;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        const char *what = NULL;
#define NUM(lo_, hi_, dst)                                              \
        do {                                                            \
            if (parse_num(optarg, lo_, hi_, &v) < 0) what = #dst;       \
            else dst = v;                                               \
        } while (0)
        switch (ch) {
        case 'n': NUM(1, FLEET_MAX_AGENTS, o->n); break;
        case 'r': o->registrar = optarg; break;
        case 'v': o->verifier = optarg; break;
        case 't': o->tls_dir = optarg; break;
        case 'o': o->out_dir = optarg; break;
        case 'b': o->base_ip = optarg; break;
        case 'p': NUM(1, 65535, o->port); break;
        case 'a':
            if (strcmp(optarg, "rsa") == 0) o->ak_rsa = true;
            else if (strcmp(optarg, "ecc") == 0) o->ak_rsa = false;
            else what = "ak (ecc or rsa)";
            break;
        case 'e': NUM(0, 1e6, o->entries); break;
        case 'f': NUM(1, 1e6, o->files); break;
        case 'g': NUM(0, 1e5, o->entries_per_minute); break;
        case 'E': NUM(0, FLEET_MAX_AGENTS, o->evil); break;
        case 'F': NUM(0, 1e6, o->evil_at); break;
        case 'S': NUM(0, 1, o->slow); break;
        case 'T': NUM(0, 60000, o->slow_ms); break;
        case 'D': NUM(0, 1, o->dead); break;
        case 'G': NUM(0, 1e6, o->dead_at); break;
        case 'R': NUM(0, 1, o->reboot); break;
        case 'H': NUM(0, 1e6, o->reboot_at); break;
        case 'i': NUM(0.01, 1e4, o->interval); break;
        case 'd': NUM(0, 1e7, o->duration); break;
        case 'x':
            if (strlen(optarg) != 8 || strspn(optarg, "0123456789abcdef") != 8) what = "prefix (8 lower-case hex)";
            else memcpy(o->prefix, optarg, 9);
            break;
        case 'j': NUM(1, 16, o->prov_threads); break;
        case 'W': NUM(1, 4194304, o->watch_pid); break;
        case 'O': o->provision_only = true; break;
        case 'U': o->faults_on_usr2 = true; break;
        case 'V': o->api_version = optarg; break;
        case 'P': o->policy_name = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
#undef NUM
        if (what) {
            fprintf(stderr, "quince-fleet: bad value '%s' for --%s\n", optarg, what);
            return -1;
        }
    }
    if (optind < argc || !o->n || !o->registrar || !o->tls_dir || !o->out_dir) {
        fprintf(stderr, "quince-fleet: --agents, --registrar, --tls-dir and --out are required (see --help)\n");
        return -1;
    }
    if (o->evil > o->n) {
        fprintf(stderr, "quince-fleet: --evil %u is more than --agents %u\n", o->evil, o->n);
        return -1;
    }
    if (o->entries > o->files) {
        fprintf(stderr, "quince-fleet: --entries must not exceed --files\n");
        return -1;
    }
    if (!o->prefix[0]) {
        uint8_t r[4];
        if (RAND_bytes(r, sizeof r) != 1)
            return -1;
        snprintf(o->prefix, sizeof o->prefix, "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    }
    return 0;
}

/* Deterministic per-agent choice for a fault fraction (a different spread per salt). */
static bool picked(uint32_t idx, uint32_t salt, double frac)
{
    uint32_t h = (idx + 1) * 2654435761u ^ salt * 40503u;
    h ^= h >> 15;
    return (double)(h % 100000u) < frac * 100000.0;
}

static int raise_nofile(unsigned n)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)n + FIXED_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    if (rl.rlim_cur >= need)
        return 0;
    struct rlimit want = { need, rl.rlim_max > need ? rl.rlim_max : need };
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
        return 0;
    fprintf(stderr, "quince-fleet: %u agents need %lu open files; the limit is %lu (hard %lu) and cannot be raised: %s\n",
            n, (unsigned long)need, (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max, strerror(errno));
    return -1;
}

static int setup(fleet *f, qerr *err)
{
    struct in_addr base;
    if (inet_pton(AF_INET, f->o.base_ip, &base) != 1)
        return qerr_set(err, "--base-ip %s is not an IPv4 address", f->o.base_ip);
    uint32_t b = ntohl(base.s_addr);
    if (b >> 24 != 127 || (b + f->o.n - 1) >> 24 != 127)
        return qerr_set(err, "agents' addresses %s + %u leave 127.0.0.0/8", f->o.base_ip, f->o.n);
    f->base_ip = b;
    if (mkdir(f->o.out_dir, 0755) < 0 && errno != EEXIST)
        return qerr_set(err, "cannot make %s: %s", f->o.out_dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/cacert.pem", f->o.tls_dir);
    qbuf ca;
    qbuf_init(&ca, QTLS_FILE_MAX);
    if (qbuf_read_file(&ca, path, QTLS_FILE_MAX) < 0 || !qbuf_cstr(&ca)) {
        qbuf_free(&ca);
        return qerr_set(err, "cannot read %s: %s", path, strerror(errno));
    }
    f->ca_pem = strdup((const char *)ca.data);
    qbuf_free(&ca);
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    f->payload_pem = pk ? qpkey_pem(pk, err) : NULL;
    EVP_PKEY_free(pk);
    if (!f->ca_pem || !f->payload_pem ||
        qquote_pcr16_expected(QHASH_SHA256, f->payload_pem, strlen(f->payload_pem), f->pcr16, err) < 0)
        return qerr_set(err, "no payload key");
    if (fl_pool_setup(&f->pool, f->o.files, f->o.entries, err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/policy.json", f->o.out_dir);
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(f->pool.policy_json, fp) < 0 || fclose(fp) != 0)
        return qerr_set(err, "cannot write %s", path);
    f->agents = calloc(f->o.n, sizeof *f->agents);
    if (!f->agents)
        return qerr_set(err, "out of memory");
    unsigned step = f->o.evil ? f->o.n / f->o.evil : 0;
    for (unsigned i = 0; i < f->o.n; i++) {
        fl_agent *a = &f->agents[i];
        a->fl = f;
        a->idx = i;
        snprintf(a->uuid, sizeof a->uuid, "%s-0000-4000-8000-%012u", f->o.prefix, i);
        struct in_addr ia = { htonl(b + i) };
        inet_ntop(AF_INET, &ia, a->ip, sizeof a->ip);
        a->evil = step && i % step == 0 && i / step < f->o.evil;
        a->slow = picked(i, 1, f->o.slow);
        a->dead = !a->evil && picked(i, 2, f->o.dead);
        a->reboot = !a->evil && !a->dead && picked(i, 3, f->o.reboot);
        a->reset_count = 1;
        a->boottime = (uint64_t)(fl_wall_ms() / 1000.0) - 3600;
        fl_list_reset(a, &f->pool);
    }
    if (fl_ident_setup(f, err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/agents.txt", f->o.out_dir);
    fp = fopen(path, "w");
    for (unsigned i = 0; fp && i < f->o.n; i++) {
        fl_agent *a = &f->agents[i];
        fprintf(fp, "%s %s %u%s%s%s%s\n", a->uuid, a->ip, f->o.port, a->evil ? " evil" : "", a->slow ? " slow" : "",
                a->dead ? " dead" : "", a->reboot ? " reboot" : "");
    }
    if (!fp || fclose(fp) != 0)
        return qerr_set(err, "cannot write %s", path);
    return 0;
}

int main(int argc, char **argv)
{
    fleet f;
    memset(&f, 0, sizeof f);
    if (parse_opts(argc, argv, &f.o) < 0)
        return 2;
    qlog_set_level(QLOG_WARNING);
    if (!f.o.provision_only && raise_nofile(f.o.n) < 0)
        return 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    f.t0 = fl_now();
    qerr err = { 0 };
    int rc = setup(&f, &err) == 0 ? fl_loop(&f, &err) : -1;
    if (rc < 0)
        fprintf(stderr, "quince-fleet: %s\n", err.msg);
    fl_serve_stop(&f);
    for (unsigned i = 0; f.agents && i < f.o.n; i++)
        fl_agent_free(&f.agents[i]);
    free(f.agents);
    fl_pool_free(&f.pool);
    free(f.payload_pem);
    free(f.ca_pem);
    return rc < 0 ? 1 : 0;
}
