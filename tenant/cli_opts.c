/* cli_opts.c — keylime_tenant's options (getopt_long_only, so "-vp 8881" works), the checks
 * that need no configuration, Keylime's readPolicy for --tpm_policy and the agent id rule. */
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
    O_MB, O_MBNAME, O_VERIFY, O_CONFIG,
};

static const struct option LONGOPTS[] = {
    {"command", required_argument, NULL, 'c'},
    {"uuid", required_argument, NULL, 'u'},
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
    {"runtime-policy-url", required_argument, NULL, O_RPURL},
    {"tpm_policy", required_argument, NULL, O_TPMPOL},
    {"mb_refstate", required_argument, NULL, O_MB},
    {"mb-policy", required_argument, NULL, O_MB},
    {"mb-policy-name", required_argument, NULL, O_MBNAME},
    {"verify", no_argument, NULL, O_VERIFY},
    {"config", required_argument, NULL, O_CONFIG},
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
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

const char *tcli_cmd_name(tcli_cmd c)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (COMMANDS[i].cmd == c && !COMMANDS[i].deprecated)
            return COMMANDS[i].name;
    return "?";
}

static int usage_err(qerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_err(qerr *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = TCLI_EUSAGE;
    return -1;
}

int tcli_uuid_normalise(const char *in, char *out, size_t cap, qerr *err)
{
    size_t n = in ? strlen(in) : 0;
    bool ok = n > 0 && n <= TCLI_ID_MAX && n < cap;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        ok = ch < 0x80 && (isalnum(ch) || ch == '_' || ch == '.' || ch == '-');
    }
    if (!ok)
        return usage_err(err, "invalid agent uuid '%.300s': use 1 to %d letters, digits, '_', '.' or '-'",
                         in ? in : "", TCLI_ID_MAX);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = '\0';
    return 0;
}

static int parse_port(const char *s, const char *opt, long *out, qerr *err)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || !isdigit((unsigned char)s[0]) || v < 1 || v > 65535)
        return usage_err(err, "invalid port '%.100s' for %s (1..65535)", s, opt);
    *out = v;
    return 0;
}

/* A host name or address: printable, no blanks and nothing that would change the URL. */
static int check_host(const char *s, const char *opt, qerr *err)
{
    size_t n = strlen(s);
    bool ok = n > 0 && n <= TCLI_HOST_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        ok = ch > 0x20 && ch < 0x7f && !strchr("/?#@\\\"'<>`{}|^", ch);
    }
    return ok ? 0 : usage_err(err, "invalid host '%.100s' for %s", s, opt);
}

static int check_nonempty(const char *s, const char *opt, qerr *err)
{
    return *s ? 0 : usage_err(err, "%s needs a file name", opt);
}

static int check_policy_name(const char *s, qerr *err)
{
    size_t n = strlen(s);
    bool ok = n > 0 && n <= TCLI_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '/';
    return ok ? 0 : usage_err(err, "invalid runtime policy name '%.100s': 1 to %d printable characters "
                              "without '/'", s, TCLI_NAME_MAX);
}

static int check_verifier_id(const char *s, qerr *err)
{
    size_t n = strlen(s);
    bool ok = n > 0 && n <= TCLI_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        ok = ch < 0x80 && (isalnum(ch) || ch == '_' || ch == '.' || ch == '-');
    }
    return ok ? 0 : usage_err(err, "invalid verifier id '%.100s' for -vi/--cvid", s);
}

static bool digest_text_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 40 && n <= 128 && qhex_valid(s, n);
}

int tcli_tpm_policy_parse(const char *text, cJSON **out, uint32_t *mask, qerr *err)
{
    *out = NULL;
    *mask = 0;
    cJSON *in = cJSON_Parse(text);
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        return usage_err(err, "--tpm_policy must be a JSON object such as '{\"15\": \"<hex digest>\"}'");
    }
    cJSON *pol = cJSON_CreateObject();
    uint32_t m = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, in) {
        const char *k = it->string;
        size_t kl = strlen(k);
        bool digits = kl > 0 && kl <= 2;
        for (size_t i = 0; digits && i < kl; i++)
            digits = isdigit((unsigned char)k[i]);
        if (!digits || atoi(k) > 23) {
            cJSON_Delete(in);
            cJSON_Delete(pol);
            return usage_err(err, "--tpm_policy: invalid PCR number '%.40s' (0 to 23)", k);
        }
        int pcr = atoi(k);
        if (pcr == 10 || pcr == 16) {
            cJSON_Delete(in);
            cJSON_Delete(pol);
            return usage_err(err, pcr == 10 ? "--tpm_policy: PCR 10 is used by IMA; give a runtime policy "
                                              "(--allowlist or --runtime-policy) instead"
                                            : "--tpm_policy: PCR 16 binds the agent's key and cannot be "
                                              "in a policy");
        }
        if (m & (1u << pcr)) {
            cJSON_Delete(in);
            cJSON_Delete(pol);
            return usage_err(err, "--tpm_policy: PCR %d is given twice", pcr);
        }
        m |= 1u << pcr;
        cJSON *list = cJSON_CreateArray();
        char key[4];
        snprintf(key, sizeof key, "%d", pcr);
        cJSON_AddItemToObject(pol, key, list);
        const cJSON *v;
        int nv = 0;
        bool bad = false;
        if (cJSON_IsString(it)) {
            bad = !digest_text_ok(it->valuestring);
            if (!bad)
                cJSON_AddItemToArray(list, cJSON_CreateString(it->valuestring));
            nv = 1;
        } else if (cJSON_IsArray(it)) {
            cJSON_ArrayForEach(v, it) {
                if (!cJSON_IsString(v) || !digest_text_ok(v->valuestring)) {
                    bad = true;
                    break;
                }
                cJSON_AddItemToArray(list, cJSON_CreateString(v->valuestring));
                nv++;
            }
        } else {
            bad = true;
        }
        if (bad || nv == 0) {
            cJSON_Delete(in);
            cJSON_Delete(pol);
            return usage_err(err, "--tpm_policy: PCR %d: %s", pcr,
                             bad ? "each value must be a hex digest (40 to 128 hex digits) or a list of them"
                                 : "no digest given");
        }
        cJSON *d;
        cJSON_ArrayForEach(d, list)
            for (char *p = d->valuestring; *p; p++)
                *p = (char)tolower((unsigned char)*p);
    }
    cJSON_Delete(in);
    *out = pol;
    *mask = m;
    return 0;
}

/* An unknown, ambiguous or incomplete option, in one line. */
static int option_error(int c, int argc, char **argv, qerr *err)
{
    const char *arg = optind - 1 < argc && optind >= 1 ? argv[optind - 1] : "?";
    if (c == ':')
        return usage_err(err, "option '%.100s' needs a value", arg);
    if (optopt && optopt < 256 && !(arg[0] == '-' && arg[1] == '-'))
        return usage_err(err, "unknown option '-%c' (see --help)", optopt);
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
        return usage_err(err, "option '%.100s' is ambiguous (--%s, --%s%s)", arg, first, second,
                         hits > 2 ? ", ..." : "");
    if (hits == 1 && name[len] == '=')
        return usage_err(err, "option '--%s' does not take a value", first);
    return usage_err(err, "unknown option '%.100s' (see --help)", arg);
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
    return usage_err(err, "payload delivery (%s) is not available yet", opt);
}

/* Combinations and per-command requirements. */
static int check_combination(const tcli_opts *o, qerr *err)
{
    if (o->exclude && !o->allowlist)
        return usage_err(err, "--exclude cannot be used without an --allowlist");
    if (o->allowlist && o->runtime_policy)
        return usage_err(err, "--allowlist and --runtime-policy cannot be used together");
    if (o->runtime_policy_checksum && !o->runtime_policy)
        return usage_err(err, "--runtime-policy-checksum needs --runtime-policy");
    bool policy = o->allowlist || o->runtime_policy;
    switch (o->cmd) {
    case TCMD_ADDPOLICY:
    case TCMD_UPDATEPOLICY:
        if (!o->runtime_policy_name)
            return usage_err(err, "--runtime-policy-name is required to %s a runtime policy",
                             o->cmd == TCMD_ADDPOLICY ? "add" : "update");
        if (!policy)
            return usage_err(err, "--allowlist or --runtime-policy is required to %s a runtime policy",
                             o->cmd == TCMD_ADDPOLICY ? "add" : "update");
        break;
    case TCMD_SHOWPOLICY:
    case TCMD_DELETEPOLICY:
        if (!o->runtime_policy_name)
            return usage_err(err, "--runtime-policy-name is required to %s a runtime policy",
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
                return usage_err(err, "unknown command '%.60s' (add, update, delete, status, cvstatus, cvlist, "
                                 "bulkinfo, reglist, regstatus, regdelete, reactivate, addruntimepolicy, "
                                 "showruntimepolicy, deleteruntimepolicy, updateruntimepolicy, "
                                 "listruntimepolicy)", a);
            o->cmd = COMMANDS[i].cmd;
            o->command = COMMANDS[i].name;
            o->deprecated = COMMANDS[i].deprecated;
            break;
        }
        case 'u':
            if (tcli_uuid_normalise(a, o->uuid, sizeof o->uuid, err) < 0)
                return -1;
            o->uuid_default = false;
            break;
        case 'v':
            if (check_host(a, "-v/--cv", err) < 0)
                return -1;
            o->cv_ip = a;
            break;
        case 't':
            if (check_host(a, "-t/--targethost", err) < 0)
                return -1;
            o->agent_ip = a;
            break;
        case 'r':
            if (check_host(a, "-r/--registrarhost", err) < 0)
                return -1;
            o->reg_ip = a;
            break;
        case O_CVTARGET:
            if (check_host(a, "--cv_targethost", err) < 0)
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
            if (check_verifier_id(a, err) < 0)
                return -1;
            o->cv_id = a;
            break;
        case O_NVC:
            o->no_verifier_check = true;
            break;
        case 'f':
            return refuse(err, "-f");
        case 'k':
            return refuse(err, "-k");
        case 'p':
            return refuse(err, "-p");
        case O_CERT:
            return refuse(err, "--cert");
        case O_INCLUDE:
            return refuse(err, "--include");
        case O_VERIFY:
            return usage_err(err, "--verify checks a delivered payload (-f), and payload delivery is not "
                                  "available yet");
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
                return usage_err(err, "--runtime-policy-checksum must be a SHA-256 digest (64 hex digits)");
            o->runtime_policy_checksum = a;
            break;
        case O_RPSIGKEY:
            return usage_err(err, "signed runtime policies (--runtime-policy-sig-key) are not supported");
        case O_RPURL:
        case O_ALURL:
            return usage_err(err, "downloading a policy (%s) is not supported; download it and give the file",
                             c == O_RPURL ? "--runtime-policy-url" : "--allowlist-url");
        case O_MB:
        case O_MBNAME:
            return usage_err(err, "measured boot policies (%s) are not supported",
                             c == O_MB ? "--mb-policy" : "--mb-policy-name");
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
        case 'h':
            o->help = true;
            return 0;
        default:
            return option_error(c, argc, argv, err);
        }
    }
    if (optind < argc)
        return usage_err(err, "unexpected argument '%.100s' (options take the form -x VALUE or --name VALUE)",
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

/* ---- configuration --------------------------------------------------------------------------- */

static const char *const HASH_ALGS[] = {"sha1", "sha256", "sha384", "sha512", "sm3_256", NULL};
static const char *const ENC_ALGS[] = {"rsa", "ecc", "rsa1024", "rsa2048", "rsa3072", "rsa4096", "ecc192",
                                       "ecc224", "ecc256", "ecc384", "ecc521", "ecc_sm2", NULL};
static const char *const SIGN_ALGS[] = {"rsassa", "rsapss", "ecdsa", "ecdaa", "ecschnorr", "sm2", NULL};

int tcli_algs_parse(const char *text, const char *const *known, const char *what, tcli_algs *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    const char *p = text;
    static const char SEP[] = " \t,[]'\"";
    for (;;) {
        p += strspn(p, SEP);
        if (!*p)
            break;
        size_t n = strcspn(p, SEP);
        if (out->n == TCLI_ALGS_MAX)
            return usage_err(err, "%s: more than %d algorithms", what, TCLI_ALGS_MAX);
        char name[TCLI_ALG_LEN];
        bool ok = n < sizeof name;
        if (ok) {
            for (size_t i = 0; i < n; i++)
                name[i] = (char)tolower((unsigned char)p[i]);
            name[n] = '\0';
            ok = false;
            for (const char *const *k = known; *k && !ok; k++)
                ok = strcmp(*k, name) == 0;
        }
        if (!ok)
            return usage_err(err, "%s: unknown algorithm '%.*s'", what, (int)(n > 40 ? 40 : n), p);
        memcpy(out->name[out->n++], name, n + 1);
        p += n;
    }
    if (out->n == 0)
        return usage_err(err, "%s: no algorithm given", what);
    return 0;
}

static int conf_port(const qconfig *cfg, const char *key, long def, long *out, qerr *err)
{
    if (qconfig_long(cfg, "tenant", key, def, 1, 65535, out, err) < 0) {
        if (err)
            err->code = TCLI_EUSAGE;
        return -1;
    }
    return 0;
}

/* A file option: 'default' means the [tenant] key. */
static int conf_file(const qconfig *cfg, const char *given, const char *key, const char *opt, const char **out,
                     qerr *err)
{
    *out = given;
    if (!given || strcmp(given, "default") != 0)
        return 0;
    const char *v = cfg ? qconfig_get(cfg, "tenant", key) : NULL;
    if (!v || !*v)
        return usage_err(err, "%s default: [tenant] %s is not set in %s", opt, key,
                         cfg && qconfig_path(cfg) ? qconfig_path(cfg) : "the configuration");
    *out = v;
    return 0;
}

int tcli_resolve(const tcli_opts *o, const qconfig *cfg, tcli_conf *c, qerr *err)
{
    memset(c, 0, sizeof *c);
    qconfig *empty = NULL;
    if (!cfg) {
        empty = qconfig_parse("", 0, "(none)", err);
        if (!empty) {
            if (err)
                err->code = TCLI_EUSAGE;
            return -1;
        }
        cfg = empty;
    }
    int rc = -1;
    const char *s;
    c->cv_ip = o->cv_ip ? o->cv_ip : qconfig_str(cfg, "tenant", "verifier_ip", "127.0.0.1");
    c->reg_ip = o->reg_ip ? o->reg_ip : qconfig_str(cfg, "tenant", "registrar_ip", "127.0.0.1");
    c->cv_id = o->cv_id ? o->cv_id : qconfig_str(cfg, "tenant", "verifier_id", "default");
    if (check_host(c->cv_ip, "[tenant] verifier_ip", err) < 0 ||
        check_host(c->reg_ip, "[tenant] registrar_ip", err) < 0 || check_verifier_id(c->cv_id, err) < 0)
        goto out;
    if (o->cv_port)
        c->cv_port = o->cv_port;
    else if (conf_port(cfg, "verifier_port", 8881, &c->cv_port, err) < 0)
        goto out;
    if (o->reg_port)
        c->reg_port = o->reg_port;
    else if (conf_port(cfg, "registrar_port", 8890, &c->reg_port, err) < 0)
        goto out;
    if (conf_file(cfg, o->allowlist, "allowlist", "--allowlist", &c->allowlist, err) < 0 ||
        conf_file(cfg, o->exclude, "ima_excludelist", "--exclude", &c->exclude, err) < 0)
        goto out;
    if (o->tpm_policy_obj) {
        c->tpm_policy = cJSON_Duplicate(o->tpm_policy_obj, true);
        c->tpm_mask = o->tpm_mask;
    } else if ((s = qconfig_get(cfg, "tenant", "tpm_policy")) && *s) {
        if (tcli_tpm_policy_parse(s, &c->tpm_policy, &c->tpm_mask, err) < 0) {
            qerr_prefix(err, "[tenant] tpm_policy");
            goto out;
        }
    } else {
        c->tpm_policy = cJSON_CreateObject();
    }
    if (!c->tpm_policy) {
        usage_err(err, "out of memory");
        goto out;
    }
    if (tcli_algs_parse(qconfig_str(cfg, "tenant", "accept_tpm_hash_algs", "sha512, sha384, sha256"), HASH_ALGS,
                        "[tenant] accept_tpm_hash_algs", &c->hash, err) < 0 ||
        tcli_algs_parse(qconfig_str(cfg, "tenant", "accept_tpm_encryption_algs", "ecc, rsa"), ENC_ALGS,
                        "[tenant] accept_tpm_encryption_algs", &c->enc, err) < 0 ||
        tcli_algs_parse(qconfig_str(cfg, "tenant", "accept_tpm_signing_algs", "ecschnorr, rsassa"), SIGN_ALGS,
                        "[tenant] accept_tpm_signing_algs", &c->sign, err) < 0)
        goto out;
    if (qconfig_long(cfg, "tenant", "request_timeout_ms", 60000, 100, 3600000, &c->timeout_ms, err) < 0 ||
        qconfig_long(cfg, "tenant", "connect_timeout_ms", 5000, 100, 600000, &c->connect_ms, err) < 0) {
        if (err)
            err->code = TCLI_EUSAGE;
        goto out;
    }
    rc = 0;
out:
    qconfig_free(empty);
    return rc;
}

void tcli_conf_free(tcli_conf *c)
{
    if (!c)
        return;
    cJSON_Delete(c->tpm_policy);
    c->tpm_policy = NULL;
}
