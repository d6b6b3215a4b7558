/* cli_opts.c — keylime_tenant's options (getopt_long_only, so "-vp 8881" works) and the checks
 * of their combinations that need no configuration file. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hex.h"

enum {
    O_CVPORT = 256, O_CVID, O_TARGETPORT, O_CVTARGET, O_REGPORT, O_NVC, O_CERT, O_INCLUDE,
    O_ALLOWLIST, O_EXCLUDE, O_ALURL, O_RP, O_RPNAME, O_RPSUM, O_RPSIGKEY, O_RPURL, O_TPMPOL,
    O_MB, O_MBNAME, O_VERIFY, O_CONFIG, O_INSECURE, O_AGENT_PLAIN, O_SUPVER, O_SIGKEY, O_SIGKEYURL,
    O_SIGKEYSIG, O_CHECKCONF, O_NORP, O_ALLOWEMPTY, O_JSON, O_UUIDFILE, O_JOBS,
};

static const struct option LONGOPTS[] = {
    {"command", required_argument, NULL, 'c'},
    {"uuid", required_argument, NULL, 'u'},
    {"uuid-file", required_argument, NULL, O_UUIDFILE},
    {"jobs", required_argument, NULL, O_JOBS},
    {"cv", required_argument, NULL, 'v'},
    {"cvport", required_argument, NULL, O_CVPORT},
    {"vp", required_argument, NULL, O_CVPORT},
    {"cvid", required_argument, NULL, O_CVID},
    {"vi", required_argument, NULL, O_CVID},
    {"targethost", required_argument, NULL, 't'},
    {"targetport", required_argument, NULL, O_TARGETPORT},
    {"tp", required_argument, NULL, O_TARGETPORT},
    {"cv_targethost", required_argument, NULL, O_CVTARGET},
    {"registrarhost", required_argument, NULL, 'r'},
    {"registrarport", required_argument, NULL, O_REGPORT},
    {"rp", required_argument, NULL, O_REGPORT},
    {"no-verifier-check", no_argument, NULL, O_NVC},
    {"nvc", no_argument, NULL, O_NVC},
    {"file", required_argument, NULL, 'f'},
    {"key", required_argument, NULL, 'k'},
    {"payload", required_argument, NULL, 'p'},
    {"cert", required_argument, NULL, O_CERT},
    {"include", required_argument, NULL, O_INCLUDE},
    {"allowlist", required_argument, NULL, O_ALLOWLIST},
    {"exclude", required_argument, NULL, O_EXCLUDE},
    {"allowlist-url", required_argument, NULL, O_ALURL},
    {"allowlist-name", required_argument, NULL, O_RPNAME},
    {"runtime-policy", required_argument, NULL, O_RP},
    {"runtime-policy-name", required_argument, NULL, O_RPNAME},
    {"runtime-policy-checksum", required_argument, NULL, O_RPSUM},
    {"runtime-policy-sig-key", required_argument, NULL, O_RPSIGKEY},
    {"runtime-policy-key", required_argument, NULL, O_RPSIGKEY},
    {"signature-verification-key", required_argument, NULL, O_SIGKEY},
    {"signature-verification-key-url", required_argument, NULL, O_SIGKEYURL},
    {"signature-verification-key-sig", required_argument, NULL, O_SIGKEYSIG},
    {"signature-verification-key-sig-key", required_argument, NULL, O_SIGKEYSIG},
    {"signature-verification-key-sig-url", required_argument, NULL, O_SIGKEYSIG},
    {"signature-verification-key-sig-url-key", required_argument, NULL, O_SIGKEYSIG},
    {"runtime-policy-url", required_argument, NULL, O_RPURL},
    {"tpm_policy", required_argument, NULL, O_TPMPOL},
    {"mb_refstate", required_argument, NULL, O_MB},
    {"mb-policy", required_argument, NULL, O_MB},
    {"mb-policy-name", required_argument, NULL, O_MBNAME},
    {"verify", no_argument, NULL, O_VERIFY},
    {"config", required_argument, NULL, O_CONFIG},
    {"insecure", no_argument, NULL, O_INSECURE},
    {"agent-plain-http", no_argument, NULL, O_AGENT_PLAIN},
    {"supported-version", required_argument, NULL, O_SUPVER},
    {"check-config", no_argument, NULL, O_CHECKCONF},
    {"no-runtime-policy", no_argument, NULL, O_NORP},
    {"allow-empty", no_argument, NULL, O_ALLOWEMPTY},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};
#define SHORTOPTS ":c:u:v:t:r:f:k:p:h"

static const struct { const char *name; tcli_cmd cmd; bool deprecated; } COMMANDS[] = {
    {"add", TCMD_ADD, false},
    {"update", TCMD_UPDATE, false},
    {"delete", TCMD_DELETE, false},
    {"status", TCMD_STATUS, false},
    {"cvstatus", TCMD_CVSTATUS, false},
    {"cvlist", TCMD_CVLIST, false},
    {"bulkinfo", TCMD_BULKINFO, false},
    {"reglist", TCMD_REGLIST, false},
    {"regstatus", TCMD_REGSTATUS, false},
    {"regdelete", TCMD_REGDELETE, false},
    {"reactivate", TCMD_REACTIVATE, false},
    {"addruntimepolicy", TCMD_ADDPOLICY, false},
    {"showruntimepolicy", TCMD_SHOWPOLICY, false},
    {"deleteruntimepolicy", TCMD_DELETEPOLICY, false},
    {"updateruntimepolicy", TCMD_UPDATEPOLICY, false},
    {"listruntimepolicy", TCMD_LISTPOLICY, false},
    {"addallowlist", TCMD_ADDPOLICY, true},
    {"showallowlist", TCMD_SHOWPOLICY, true},
    {"deleteallowlist", TCMD_DELETEPOLICY, true},
    {"addmbpolicy", TCMD_ADDMB, false},
    {"showmbpolicy", TCMD_SHOWMB, false},
    {"deletembpolicy", TCMD_DELETEMB, false},
    {"updatembpolicy", TCMD_UPDATEMB, false},
    {"listmbpolicy", TCMD_LISTMB, false},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

const char *tcli_cmd_name(tcli_cmd c)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (COMMANDS[i].cmd == c && !COMMANDS[i].deprecated)
            return COMMANDS[i].name;
    return "?";
}

static int parse_port(const char *s, const char *opt, long *out, qerr *err)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || !isdigit((unsigned char)s[0]) || v < 1 || v > 65535)
        return tcli_usage_err(err, "invalid port '%.100s' for %s (1..65535)", s, opt);
    *out = v;
    return 0;
}

static int check_nonempty(const char *s, const char *opt, qerr *err)
{
    return *s ? 0 : tcli_usage_err(err, "%s needs a file name", opt);
}

static int check_policy_name(const char *s, qerr *err)
{
    size_t n = strlen(s);
    bool ok = n > 0 && n <= TCLI_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '/';
    return ok ? 0 : tcli_usage_err(err, "invalid policy name '%.100s': 1 to %d printable characters "
                                   "without '/'", s, TCLI_NAME_MAX);
}

/* An unknown, ambiguous or incomplete option, in one line. */
static int option_error(int c, int argc, char **argv, qerr *err)
{
    const char *arg = optind - 1 < argc && optind >= 1 ? argv[optind - 1] : "?";
    if (c == ':')
        return tcli_usage_err(err, "option '%.100s' needs a value", arg);
    if (optopt && optopt < 256 && !(arg[0] == '-' && arg[1] == '-'))
        return tcli_usage_err(err, "unknown option '-%c' (see --help)", optopt);
    /* Long option: say whether the name was ambiguous. */
    const char *name = arg;
    while (*name == '-')
        name++;
    size_t len = strcspn(name, "=");
    int hits = 0;
    const char *first = NULL, *second = NULL;
    for (const struct option *o = LONGOPTS; o->name; o++)
        if (strncmp(o->name, name, len) == 0) {
            if (hits == 0)
                first = o->name;
            else if (hits == 1)
                second = o->name;
            hits++;
        }
    if (hits > 1)
        return tcli_usage_err(err, "option '%.100s' is ambiguous (--%s, --%s%s)", arg, first, second,
                              hits > 2 ? ", ..." : "");
    if (hits == 1 && name[len] == '=')
        return tcli_usage_err(err, "option '--%s' does not take a value", first);
    return tcli_usage_err(err, "unknown option '%.100s' (see --help)", arg);
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-help") == 0)
            return true;
    }
    return false;
}

static int refuse(qerr *err, const char *opt)
{
    return tcli_usage_err(err, "certificate packages (%s) are not supported; put the files in a zip and deliver "
                          "it with -f", opt);
}

/* --uuid-file: what goes with many agents. Everything per agent comes from the registrar, the
 * policy is one stored by name (or none), and no payload is sealed per agent. */
static int check_bulk(const tcli_opts *o, qerr *err)
{
    if (!o->uuid_file) {
        if (o->jobs)
            return tcli_usage_err(err, "--jobs goes with --uuid-file");
        return 0;
    }
    if (o->cmd != TCMD_ADD && o->cmd != TCMD_DELETE)
        return tcli_usage_err(err, "--uuid-file goes with -c add or -c delete, not -c %s", tcli_cmd_name(o->cmd));
    const char *bad = !o->uuid_default ? "-u/--uuid" : o->agent_ip ? "-t/--targethost"
                      : o->agent_port ? "-tp/--targetport" : o->cv_agent_ip ? "--cv_targethost"
                      : o->file ? "-f/--file" : o->keyfile ? "-k/--key" : o->verify ? "--verify"
                      : o->json ? "--json" : NULL;
    if (bad)
        return tcli_usage_err(err, "%s cannot be used with --uuid-file (each agent's address comes from the "
                              "registrar; payloads are delivered one agent at a time)", bad);
    if (o->allowlist || o->runtime_policy || o->mb_policy)
        return tcli_usage_err(err, "with --uuid-file, store the policy once (-c addruntimepolicy / -c addmbpolicy) "
                              "and name it with --runtime-policy-name / --mb-policy-name");
    return 0;
}

/* Combinations and per-command requirements. */
static int check_combination(const tcli_opts *o, qerr *err)
{
    if (check_bulk(o, err) < 0)
        return -1;
    if (o->exclude && !o->allowlist)
        return tcli_usage_err(err, "--exclude cannot be used without an --allowlist");
    if (o->allowlist && o->runtime_policy)
        return tcli_usage_err(err, "--allowlist and --runtime-policy cannot be used together");
    if (o->runtime_policy_checksum && !o->runtime_policy)
        return tcli_usage_err(err, "--runtime-policy-checksum needs --runtime-policy");
    if (o->runtime_policy_key && !o->runtime_policy)
        return tcli_usage_err(err, "--runtime-policy-sig-key needs --runtime-policy (a signed policy file)");
    if ((o->nsig_keys || o->nsig_key_urls) && o->cmd != TCMD_ADD && o->cmd != TCMD_UPDATE)
        return tcli_usage_err(err, "--signature-verification-key goes with -c add or -c update, not -c %s",
                              tcli_cmd_name(o->cmd));
    if (o->file && o->keyfile)
        return tcli_usage_err(err, "-f/--file and -k/--key cannot be used together (-f makes a fresh key)");
    if (o->payload && !o->keyfile)
        return tcli_usage_err(err, "-p/--payload needs -k/--key (the key file the payload was sealed with)");
    if (o->verify && !o->file && !o->keyfile)
        return tcli_usage_err(err, "--verify checks a delivered payload key: it needs -f/--file or -k/--key");
    if ((o->file || o->keyfile) && o->cmd != TCMD_ADD && o->cmd != TCMD_UPDATE)
        return tcli_usage_err(err, "%s delivers a payload with -c add or -c update, not -c %s",
                              o->file ? "-f/--file" : "-k/--key", tcli_cmd_name(o->cmd));
    bool policy = o->allowlist || o->runtime_policy;
    switch (o->cmd) {
    case TCMD_ADDPOLICY:
    case TCMD_UPDATEPOLICY:
        if (!o->runtime_policy_name)
            return tcli_usage_err(err, "--runtime-policy-name is required to %s a runtime policy",
                                  o->cmd == TCMD_ADDPOLICY ? "add" : "update");
        if (!policy)
            return tcli_usage_err(err, "--allowlist or --runtime-policy is required to %s a runtime policy",
                                  o->cmd == TCMD_ADDPOLICY ? "add" : "update");
        break;
    case TCMD_SHOWPOLICY:
    case TCMD_DELETEPOLICY:
        if (!o->runtime_policy_name)
            return tcli_usage_err(err, "--runtime-policy-name is required to %s a runtime policy",
                                  o->cmd == TCMD_SHOWPOLICY ? "show" : "delete");
        break;
    default:
        break;
    }
    return 0;
}

int tcli_parse(int argc, char **argv, tcli_opts *o, qerr *err)
{
    memset(o, 0, sizeof *o);
    o->cmd = TCMD_ADD;
    o->command = "add";
    o->uuid_default = true;
    memcpy(o->uuid, TCLI_DEFAULT_UUID, sizeof TCLI_DEFAULT_UUID);
    if (wants_help(argc, argv)) {
        o->help = true;
        return 0;
    }
    optind = 0;       /* full re-initialisation of getopt (several parses per process in tests) */
    opterr = 0;
    int c;
    while ((c = getopt_long_only(argc, argv, SHORTOPTS, LONGOPTS, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case 'c': {
            size_t i;
            for (i = 0; i < NCOMMANDS && strcmp(COMMANDS[i].name, a) != 0; i++)
                ;
            if (i == NCOMMANDS)
                return tcli_usage_err(err, "unknown command '%.60s' (add, update, delete, status, cvstatus, cvlist, "
                                      "bulkinfo, reglist, regstatus, regdelete, reactivate, addruntimepolicy, "
                                      "showruntimepolicy, deleteruntimepolicy, updateruntimepolicy, "
                                      "listruntimepolicy, addmbpolicy, showmbpolicy, deletembpolicy, "
                                      "updatembpolicy, listmbpolicy)", a);
            o->cmd = COMMANDS[i].cmd;
            o->command = COMMANDS[i].name;
            o->deprecated = COMMANDS[i].deprecated;
            break;
        }
        case 'u':
            if (tcli_uuid_check(a, o->uuid, sizeof o->uuid, err) < 0)
                return -1;
            o->uuid_default = false;
            break;
        case 'v':
            if (tcli_check_host(a, "-v/--cv", err) < 0)
                return -1;
            o->cv_ip = a;
            break;
        case 't':
            if (tcli_check_host(a, "-t/--targethost", err) < 0)
                return -1;
            o->agent_ip = a;
            break;
        case 'r':
            if (tcli_check_host(a, "-r/--registrarhost", err) < 0)
                return -1;
            o->reg_ip = a;
            break;
        case O_CVTARGET:
            if (tcli_check_host(a, "--cv_targethost", err) < 0)
                return -1;
            o->cv_agent_ip = a;
            break;
        case O_CVPORT:
            if (parse_port(a, "-vp/--cvport", &o->cv_port, err) < 0)
                return -1;
            break;
        case O_TARGETPORT:
            if (parse_port(a, "-tp/--targetport", &o->agent_port, err) < 0)
                return -1;
            break;
        case O_REGPORT:
            if (parse_port(a, "-rp/--registrarport", &o->reg_port, err) < 0)
                return -1;
            break;
        case O_CVID:
            if (tcli_check_verifier_id(a, err) < 0)
                return -1;
            o->cv_id = a;
            break;
        case O_NVC:
            o->no_verifier_check = true;
            break;
        case O_INSECURE:
            o->insecure = true;
            break;
        case O_AGENT_PLAIN:
            o->agent_plain_http = true;
            break;
        case O_SUPVER:
            if (tcli_api_version_check(a) < 0)
                return tcli_usage_err(err, "invalid --supported-version '%.20s': an API version 2.0 to 2.%d "
                                      "(e.g. 2.2)", a, TCLI_API_MINOR_MAX);
            o->supported_version = a;
            break;
        case 'f':
            if (check_nonempty(a, "-f/--file", err) < 0)
                return -1;
            o->file = a;
            break;
        case 'k':
            if (check_nonempty(a, "-k/--key", err) < 0)
                return -1;
            o->keyfile = a;
            break;
        case 'p':
            if (check_nonempty(a, "-p/--payload", err) < 0)
                return -1;
            o->payload = a;
            break;
        case O_CERT:
            return refuse(err, "--cert");
        case O_INCLUDE:
            return refuse(err, "--include");
        case O_VERIFY:
            o->verify = true;
            break;
        case O_ALLOWLIST:
            if (check_nonempty(a, "--allowlist", err) < 0)
                return -1;
            o->allowlist = a;
            break;
        case O_EXCLUDE:
            if (check_nonempty(a, "--exclude", err) < 0)
                return -1;
            o->exclude = a;
            break;
        case O_RP:
            if (check_nonempty(a, "--runtime-policy", err) < 0)
                return -1;
            o->runtime_policy = a;
            break;
        case O_RPNAME:
            if (check_policy_name(a, err) < 0)
                return -1;
            o->runtime_policy_name = a;
            break;
        case O_RPSUM:
            if (strlen(a) != 64 || !qhex_valid(a, 64))
                return tcli_usage_err(err, "--runtime-policy-checksum must be a SHA-256 digest (64 hex digits)");
            o->runtime_policy_checksum = a;
            break;
        case O_RPSIGKEY:
            if (check_nonempty(a, "--runtime-policy-sig-key", err) < 0)
                return -1;
            o->runtime_policy_key = a;
            break;
        case O_SIGKEY:
        case O_SIGKEYURL: {
            bool url = c == O_SIGKEYURL;
            const char *opt = url ? "--signature-verification-key-url" : "--signature-verification-key";
            size_t *n = url ? &o->nsig_key_urls : &o->nsig_keys;
            if (check_nonempty(a, opt, err) < 0)
                return -1;
            if (url && strncmp(a, "http://", 7) != 0 && strncmp(a, "https://", 8) != 0)
                return tcli_usage_err(err, "%s: only http:// and https:// URLs are fetched: '%.100s'", opt, a);
            if (*n >= TCLI_MAX_SIG_KEYS)
                return tcli_usage_err(err, "%s: at most %d keys", opt, TCLI_MAX_SIG_KEYS);
            (url ? o->sig_key_urls : o->sig_keys)[(*n)++] = a;
            break;
        }
        case O_SIGKEYSIG:
            return tcli_usage_err(err, "GPG-signed IMA signature keys (--signature-verification-key-sig*) are not "
                                  "supported; sign the runtime policy instead (sign-policy)");
        case O_RPURL:
        case O_ALURL:
            return tcli_usage_err(err, "downloading a policy (%s) is not supported; download it and give the file",
                                  c == O_RPURL ? "--runtime-policy-url" : "--allowlist-url");
        case O_MB:
            o->mb_policy = a;
            break;
        case O_MBNAME:
            if (check_policy_name(a, err) < 0)
                return -1;
            o->mb_policy_name = a;
            break;
        case O_TPMPOL:
            cJSON_Delete(o->tpm_policy_obj);
            o->tpm_policy_obj = NULL;
            if (tcli_tpm_policy_parse(a, &o->tpm_policy_obj, &o->tpm_mask, err) < 0)
                return -1;
            o->tpm_policy = a;
            break;
        case O_CONFIG:
            if (check_nonempty(a, "--config", err) < 0)
                return -1;
            o->config = a;
            break;
        case O_CHECKCONF:
            o->check_config = true;
            break;
        case O_NORP:
            o->no_runtime_policy = true;
            break;
        case O_ALLOWEMPTY:
            o->allow_empty = true;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_UUIDFILE:
            if (check_nonempty(a, "--uuid-file", err) < 0)
                return -1;
            o->uuid_file = a;
            break;
        case O_JOBS: {
            char *end;
            errno = 0;
            long v = strtol(a, &end, 10);
            if (errno || end == a || *end || v < 1 || v > TCLI_BULK_JOBS_MAX)
                return tcli_usage_err(err, "--jobs: '%.40s' is not a number from 1 to %d", a, TCLI_BULK_JOBS_MAX);
            o->jobs = (unsigned)v;
            break;
        }
        case 'h':
            o->help = true;
            return 0;
        default:
            return option_error(c, argc, argv, err);
        }
    }
    if (optind < argc)
        return tcli_usage_err(err, "unexpected argument '%.100s' (options take the form -x VALUE or --name VALUE)",
                              argv[optind]);
    return check_combination(o, err);
}

void tcli_opts_free(tcli_opts *o)
{
    if (!o)
        return;
    cJSON_Delete(o->tpm_policy_obj);
    o->tpm_policy_obj = NULL;
}

