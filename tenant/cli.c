/* cli.c — quince-tenant's keylime_tenant-compatible front end: help text, configuration,
 * the HTTP client and the command dispatch. Errors are printed here, once, as
 * "quince-tenant: <message>"; the qerr code is the exit status. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config_check.h"
#include "log.h"

#define RESPONSE_MAX (512u << 20)      /* largest answer read (a stored runtime policy) */

void tenant_cli_usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant [-c COMMAND] [options]      (keylime_tenant's command line)\n"
        "       quince-tenant TOOL [options]                  (a local tool or the web page, below)\n"
        "\n"
        "Local tools (no verifier needed):\n"
        "  create-allowlist   write an allowlist or runtime policy from a root file system\n"
        "                     and/or initramfs images (see 'create-allowlist --help')\n"
        "  check-log          verify an IMA measurement list offline against an allowlist or\n"
        "                     runtime policy and an optional PCR 10 value ('check-log --help')\n"
        "  create-policy      write a runtime policy from a rootfs, initramfs images, an IMA list,\n"
        "                     allowlists, a base policy, package digests ('create-policy --help')\n"
        "  sign-policy        sign a runtime policy (a DSSE envelope, as keylime-policy sign)\n"
        "  verify-policy      check a signed runtime policy with a key\n"
        "  diff-policy        the paths one policy adds, removes or changes compared to another\n"
        "  create-mb-policy   write a measured-boot reference state from a known-good UEFI event\n"
        "                     log (as keylime-policy create measured-boot; 'create-mb-policy --help')\n"
        "  check-mb-log       judge a UEFI event log against a measured-boot reference state\n"
        "\n"
        "The web page:\n"
        "  webapp             serve the operator's web page over HTTPS: agents, failures, policy\n"
        "                     uploads ('webapp --help')\n"
        "\n"
        "Commands (-c, default add):\n"
        "  add                 check the agent's identity (registrar record, identity quote signed\n"
        "                      by its AK, PCR 16 bound to its key), send it U (with -f/-k) and add\n"
        "                      it to the verifier\n"
        "  update              the same checks, then delete and add again (e.g. a new allowlist)\n"
        "  delete              remove the agent from the verifier\n"
        "  status              registrar record and verifier state, with the failing entries of\n"
        "                      a failed agent and why; cvstatus / regstatus show one side only\n"
        "  cvlist, bulkinfo    the verifier's agents (ids; ids with states)\n"
        "  reglist             the registrar's agents\n"
        "  regdelete           remove the agent from the registrar\n"
        "  reactivate          restart attestation of a failed or stopped agent\n"
        "  addmbpolicy, updatembpolicy, showmbpolicy, deletembpolicy, listmbpolicy\n"
        "                     measured-boot reference states (--mb-policy FILE, --mb-policy-name)\n"
        "  addruntimepolicy, updateruntimepolicy, showruntimepolicy, deleteruntimepolicy,\n"
        "  listruntimepolicy   named runtime policies on the verifier (--runtime-policy-name);\n"
        "                      addallowlist, showallowlist, deleteallowlist are deprecated aliases\n"
        "\n"
        "Options (a long option also works with one dash, e.g. -uuid; -vp -vi -tp -rp -nvc are\n"
        "keylime_tenant's short forms):\n"
        "  -c, --command CMD          the command (default add)\n"
        "  -u, --uuid ID              the agent (default " TCLI_DEFAULT_UUID ", with a warning);\n"
        "                             letters, digits, '_', '.', '-'; sent as given; not case-sensitive:\n"
        "                             the verifier and registrar take D432FBB3-... as d432fbb3-...\n"
        "  --uuid-file FILE           add or delete every agent FILE names ('-': stdin): the first word\n"
        "                             of each line, blank and '#' lines skipped; the policy must be a\n"
        "                             stored one (--runtime-policy-name, --mb-policy-name) or none;\n"
        "                             one line per failed agent, a summary line, exit 1 if any failed\n"
        "  --jobs N                   with --uuid-file: agents in flight at once, each worker on its\n"
        "                             own kept-alive connections (default 32, at most 64)\n"
        "  -v, --cv HOST              verifier address        ([tenant] verifier_ip, 127.0.0.1)\n"
        "  -vp, --cvport PORT         verifier port           ([tenant] verifier_port, 8881)\n"
        "  -vi, --cvid ID             verifier id for cvlist/bulkinfo ([tenant] verifier_id, default)\n"
        "  -r, --registrarhost HOST   registrar address       ([tenant] registrar_ip, 127.0.0.1)\n"
        "  -rp, --registrarport PORT  registrar port          ([tenant] registrar_port, 8891: its TLS port)\n"
        "  -t, --targethost HOST      agent address (default: the address it registered)\n"
        "  -tp, --targetport PORT     agent port (default: the port it registered)\n"
        "  --cv_targethost HOST       the agent address the verifier should use (default -t)\n"
        "  -nvc, --no-verifier-check  delete/reactivate without first asking the verifier\n"
        "  --allowlist FILE|default   flat (\"<hex>  <path>\") or legacy JSON allowlist, converted to\n"
        "                             a runtime policy in memory; default = [tenant] allowlist\n"
        "  --exclude FILE|default     IMA exclude regexes, one per line (needs --allowlist);\n"
        "                             default = [tenant] ima_excludelist\n"
        "  --runtime-policy FILE      a Keylime runtime policy (JSON), checked and sent as written\n"
        "  --runtime-policy-name NAME store the policy under NAME, or with no policy use the\n"
        "                             verifier's stored policy NAME (alias --allowlist-name)\n"
        "  --runtime-policy-checksum HEX  SHA-256 the --runtime-policy file must have\n"
        "  --runtime-policy-sig-key FILE  key or certificate that signed --runtime-policy (a DSSE\n"
        "                             envelope): checked here first, then sent as runtime_policy_key\n"
        "                             (alias --runtime-policy-key)\n"
        "  --signature-verification-key FILE  IMA file-signature key (certificate or key, PEM or\n"
        "                             DER) for ima-sig entries; repeatable (add/update)\n"
        "  --signature-verification-key-url URL  the same, fetched over http(s) (at most 64 KiB)\n"
        "  --tpm_policy JSON          static PCR values, e.g. '{\"15\": \"<hex>\"}' (PCRs 0..23, not 10\n"
        "                             or 16; a digest or a list of them)   ([tenant] tpm_policy)\n"
        "  --mb-policy FILE|default   a measured-boot reference state (create-mb-policy), checked and\n"
        "                             sent with add; PCRs 0-9 and 11-15 join the mask ([tenant] mb_refstate)\n"
        "  --mb-policy-name NAME      store it under NAME, or with no --mb-policy use the stored one\n"
        "  -f, --file FILE            deliver FILE to the agent (add/update): sealed with a fresh key K\n"
        "                             (AES-256-GCM); the agent gets U, the verifier V (K = U xor V) and\n"
        "                             sends it only after the agent's first good quote; a zip is\n"
        "                             unpacked on the agent (its autorun.sh runs only over mTLS)\n"
        "  -k, --key KEYFILE          a pre-made key file (base64 K, U, V on three lines) instead of -f\n"
        "  -p, --payload FILE         the payload sealed with that K (base64 or raw), with -k\n"
        "  --verify                   after the add, wait until the agent proves it derived K\n"
        "                             ([tenant] verify_timeout_ms, 30000)\n"
        "  --insecure                 plain HTTP without certificates (the verifier, registrar and agent\n"
        "                             must be insecure too); for debugging only   ([tenant] insecure)\n"
        "  --agent-plain-http         reach an agent registered without a certificate (mtls_cert\n"
        "                             \"disabled\") over plain HTTP, with a warning; the verifier and\n"
        "                             registrar stay on TLS     ([tenant] agent_mtls = false)\n"
        "  --supported-version 2.N    the agent's API version, instead of asking its GET /version\n"
        "                             (the verifier's and registrar's come from their GET /version;\n"
        "                             when that gives no list, a note says which version is used)\n"
        "  --config FILE              configuration file (else $QUINCE_CONFIG, else\n"
        "                             " QCONFIG_DEFAULT_PATH "); its [tenant] section\n"
        "  --no-runtime-policy        add/update without any runtime policy, allowlist or tpm_policy:\n"
        "                             attest the agent with no IMA checks, on purpose (without it such\n"
        "                             an add is refused; an update keeps the agent's current policy)\n"
        "  --allow-empty              accept an allowlist or runtime policy with no entries\n"
        "  --json                     print the server's JSON answer (Keylime's shape) on stdout;\n"
        "                             the text goes to stderr\n"
        "  --check-config             validate the configuration (unknown sections and keys are\n"
        "                             errors), print the [tenant] values in effect and exit\n"
        "  -h, --help                 this text;  --version: the version\n"
        "\n"
        "Not supported: certificate packages (--cert, --include: deliver a zip with -f), downloaded\n"
        "policies (--runtime-policy-url, --allowlist-url), GPG-signed IMA keys\n"
        "(--signature-verification-key-sig*).\n"
        "\n"
        "[tenant] keys also used: accept_tpm_hash_algs (sha512, sha384, sha256),\n"
        "accept_tpm_encryption_algs (ecc, rsa), accept_tpm_signing_algs (ecschnorr, rsassa): what an\n"
        "agent may quote with; request_timeout_ms (60000), connect_timeout_ms (5000); log_level;\n"
        "max_payload_size (1048576): the largest payload, as base64 of the sealed file, checked\n"
        "before anything is sent;\n"
        "TLS: tls_dir (/var/lib/quince/tls: the verifier's CA directory, or a copy of cacert.pem,\n"
        "tenant-cert.pem and tenant-key.pem), or client_cert, client_key and ca_cert one by one.\n"
        "The verifier and registrar are checked against ca_cert; an agent must present exactly the\n"
        "certificate it registered (pinned), else nothing is sent to it.\n"
        "With a policy the verifier checks PCR 10 (mask 0x400) against the IMA log.\n"
        "\n"
        "Exit status: 0 success; 1 a failed operation (the registrar, verifier or agent refused or\n"
        "could not be reached, the identity quote did not check out, --verify timed out); 2 bad\n"
        "options or files (a payload over max_payload_size, a key file that does not open -p).\n"
        "Every error is one line on stderr: \"quince-tenant: <what went wrong>\".\n");
}

/* One line, control characters replaced: server text can end up in messages. */
static int report(const qerr *e)
{
    char line[QERR_MSG_MAX];
    size_t i = 0;
    for (; e->msg[i] && i + 1 < sizeof line; i++)
        line[i] = (unsigned char)e->msg[i] < 0x20 || e->msg[i] == 0x7f ? ' ' : e->msg[i];
    line[i] = '\0';
    fprintf(stderr, "quince-tenant: %s\n", line[0] ? line : "failed");
    return e->code == TCLI_EUSAGE ? TCLI_EUSAGE : TCLI_EFAIL;
}

static bool needs_uuid(tcli_cmd c)
{
    return c != TCMD_CVLIST && c != TCMD_BULKINFO && c != TCMD_REGLIST && c != TCMD_ADDPOLICY &&
           c != TCMD_SHOWPOLICY && c != TCMD_DELETEPOLICY && c != TCMD_UPDATEPOLICY && c != TCMD_LISTPOLICY &&
           c < TCMD_ADDMB;
}

static int dispatch(tcli_ctx *x, qerr *err)
{
    if (x->o->uuid_file)
        return tcli_cmd_bulk(x, err);
    switch (x->o->cmd) {
    case TCMD_ADD:
        return tcli_cmd_add(x, err);
    case TCMD_UPDATE:
        return tcli_cmd_update(x, err);
    case TCMD_DELETE:
        return tcli_cmd_delete(x, false, NULL, err);
    case TCMD_STATUS:
        return tcli_cmd_status(x, true, true, err);
    case TCMD_CVSTATUS:
        return tcli_cmd_status(x, false, true, err);
    case TCMD_REGSTATUS:
        return tcli_cmd_status(x, true, false, err);
    case TCMD_CVLIST:
        return tcli_cmd_cvlist(x, false, err);
    case TCMD_BULKINFO:
        return tcli_cmd_cvlist(x, true, err);
    case TCMD_REGLIST:
        return tcli_cmd_reglist(x, err);
    case TCMD_REGDELETE:
        return tcli_cmd_regdelete(x, err);
    case TCMD_REACTIVATE:
        return tcli_cmd_reactivate(x, err);
    case TCMD_ADDMB:
    case TCMD_SHOWMB:
    case TCMD_DELETEMB:
    case TCMD_UPDATEMB:
    case TCMD_LISTMB:
        return tcli_cmd_mb(x, err);
    default:
        return tcli_cmd_policy(x, err);
    }
}

/* --json: the command's text goes to stderr, stdout gets one JSON document: the last answer of
 * the verifier or registrar, in Keylime's envelope {"code", "status", "results"}. */
static int dispatch_json(tcli_ctx *x, qerr *err)
{
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        if (saved >= 0)
            close(saved);
        return qerr_setc(err, TCLI_EFAIL, "--json: cannot redirect the text output: %s", strerror(errno));
    }
    int rc = dispatch(x, err);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    char *s = x->last_json ? cJSON_PrintUnformatted(x->last_json) : NULL;
    if (s || rc == 0)
        printf("%s\n", s ? s : "{\"code\": 200, \"status\": \"Success\", \"results\": {}}");
    fflush(stdout);
    cJSON_free(s);
    return rc;
}

int tenant_cli_main(int argc, char **argv)
{
    tcli_opts o;
    tcli_conf c;
    qerr e;
    qerr_clear(&e);
    memset(&c, 0, sizeof c);
    qconfig *cfg = NULL;
    tcli_ctx x;
    memset(&x, 0, sizeof x);
    int rc = TCLI_OK;

    if (tcli_parse(argc, argv, &o, &e) < 0) {
        rc = report(&e);
        goto out;
    }
    if (o.help) {
        tenant_cli_usage(stdout);
        goto out;
    }
    if (!(cfg = qconfig_load_strict(o.config, &e))) {
        qerr_prefix(&e, "bad configuration");
        e.code = TCLI_EUSAGE;
        rc = report(&e);
        goto out;
    }
    qconfig_trace(cfg, o.check_config);
    qlog_level lvl;
    const char *ls = qconfig_get(cfg, "tenant", "log_level");
    if (ls && *ls && qlog_level_parse(ls, &lvl) == 0)
        qlog_set_level(lvl);
    qlog_format lf;
    const char *lfs = qconfig_str(cfg, "tenant", "log_format", "text");
    if (qlog_format_parse(lfs, &lf) < 0) {
        qerr_setc(&e, TCLI_EUSAGE, "bad configuration: [tenant] log_format: \"%s\" is not text or json", lfs);
        rc = report(&e);
        goto out;
    }
    qlog_set_format(lf);
    if (tcli_resolve(&o, cfg, &c, &e) < 0) {
        rc = report(&e);
        goto out;
    }
    if (o.check_config) {
        qconfig_print_effective(cfg, stdout);
        goto out;
    }
    if (o.deprecated)
        fprintf(stderr, "quince-tenant: warning: -c %s is deprecated; use -c %s\n", o.command, tcli_cmd_name(o.cmd));
    if (o.uuid_default && !o.uuid_file && needs_uuid(o.cmd))
        fprintf(stderr, "quince-tenant: warning: no --uuid given; using the default %s\n", TCLI_DEFAULT_UUID);

    if (c.insecure)
        fprintf(stderr, "quince-tenant: warning: insecure: plain HTTP without certificates to the verifier, the "
                        "registrar and agents; for debugging only\n");
    else if (tcli_tls_check(&c, &e) < 0) {
        rc = report(&e);
        goto out;
    }
    if (!(x.http = tcli_http_new(&c, RESPONSE_MAX, &e))) {
        e.code = TCLI_EFAIL;
        rc = report(&e);
        goto out;
    }
    x.o = &o;
    x.c = &c;
    tcli_base_url_tls(!c.insecure, c.reg_ip, c.reg_port, x.base[TSRV_REGISTRAR], sizeof x.base[0],
                      x.where[TSRV_REGISTRAR], sizeof x.where[0]);
    tcli_base_url_tls(!c.insecure, c.cv_ip, c.cv_port, x.base[TSRV_VERIFIER], sizeof x.base[0],
                      x.where[TSRV_VERIFIER], sizeof x.where[0]);
    if ((o.json ? dispatch_json(&x, &e) : dispatch(&x, &e)) < 0)
        rc = report(&e);
out:
    cJSON_Delete(x.last_json);
    qhttp_client_free(x.http);
    tcli_conf_free(&c);
    tcli_opts_free(&o);
    qconfig_free(cfg);
    return rc;
}
