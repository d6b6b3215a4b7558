/* sign_policy.c — `quince-tenant sign-policy` (wrap a runtime policy in a DSSE envelope) and
 * `quince-tenant verify-policy` (check an envelope against a key, as the verifier will), the
 * two ends of the "build on an isolated machine, sign, transfer, verify" workflow.
 * Errors: one line "quince-tenant: <cmd>: <reason>", exit 2; a bad signature exits 1. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "dsse.h"
#include "policy.h"
#include "policy_sig.h"
#include "tenant.h"

static int fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "quince-tenant: %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

static void sign_usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant sign-policy --key KEY [--cert CERT] IN OUT\n"
        "\n"
        "Wraps the runtime policy IN (Keylime runtime-policy JSON) in a DSSE envelope signed with\n"
        "the private key KEY and writes it to OUT ('-' = stdout). The envelope is the one Keylime's\n"
        "keylime-policy sign writes: payloadType application/vnd.keylime+json, the policy in base64.\n"
        "\n"
        "  -k, --key KEY    private key, PEM or DER: EC (ECDSA-SHA256; P-256, P-384) or RSA\n"
        "                   (RSA-PSS-SHA256)\n"
        "  -c, --cert CERT  X.509 certificate (PEM) of KEY; the envelope's keyid then carries it\n"
        "                   (Keylime's x509 backend); otherwise the keyid is the SHA-256 of the\n"
        "                   public key in PEM (Keylime's ecdsa backend)\n"
        "  -h, --help       this text\n"
        "\n"
        "Exit status: 0 written; 2 on an error (unreadable key, input not a valid policy).\n");
}

static void verify_usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant verify-policy --key KEY FILE\n"
        "\n"
        "Checks the DSSE signature of the signed runtime policy FILE with KEY (public key, X.509\n"
        "certificate or private key; PEM or DER) and that the payload is a valid runtime policy.\n"
        "Prints one line saying which.\n"
        "\n"
        "Exit status: 0 good signature; 1 bad signature or not signed; 2 on an error.\n");
}

static int write_out(const char *cmd, const char *path, const char *text)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f)
        return fail(cmd, "cannot write %s: %m", path);
    int bad = fputs(text, f) < 0 || fputc('\n', f) == EOF;
    if (f != stdout)
        bad |= fclose(f) != 0;
    else
        bad |= fflush(f) != 0;
    return bad ? fail(cmd, "cannot write %s", path) : 0;
}

int tenant_sign_policy(int argc, char **argv)
{
    const char *cmd = "sign-policy", *key = NULL, *cert = NULL;
    static const struct option opts[] = {
        {"key", required_argument, 0, 'k'}, {"cert", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'c': cert = optarg; break;
        case 'h': sign_usage(stdout); return 0;
        default: sign_usage(stderr); return 2;
        }
    }
    if (!key)
        return fail(cmd, "--key is required (see --help)");
    if (argc - optind != 2)
        return fail(cmd, "expected IN and OUT (see --help)");
    const char *in = argv[optind], *out = argv[optind + 1];

    qbuf kb, cb, pb;
    qbuf_init(&kb, 0);
    qbuf_init(&cb, 0);
    qbuf_init(&pb, 0);
    int rc = 2;
    EVP_PKEY *pk = NULL;
    char *env = NULL;
    qerr e = {0};
    if (qbuf_read_file(&kb, key, QDSSE_MAX_KEY) < 0) {
        fail(cmd, "cannot read key %s: %m", key);
        goto done;
    }
    if (cert && (qbuf_read_file(&cb, cert, QDSSE_MAX_KEY) < 0 || !qbuf_cstr(&cb))) {
        fail(cmd, "cannot read certificate %s: %m", cert);
        goto done;
    }
    if (qbuf_read_file(&pb, in, QPOLICY_MAX_SIZE) < 0 || !qbuf_cstr(&pb)) {
        fail(cmd, "cannot read %s: %m", in);
        goto done;
    }
    if (qdsse_is_envelope((const char *)pb.data, pb.len)) {
        fail(cmd, "%s is already a signed (DSSE) policy", in);
        goto done;
    }
    qpolicy *p = qpolicy_from_json((const char *)pb.data, pb.len, in, &e);
    if (!p) {
        fail(cmd, "%s", e.msg);
        goto done;
    }
    qpolicy_free(p);
    if (!(pk = qdsse_load_private(kb.data, kb.len, &e))) {
        fail(cmd, "%s: %s", key, e.msg);
        goto done;
    }
    if (!(env = qdsse_sign(pb.data, pb.len, pk, cert ? (const char *)cb.data : NULL, &e))) {
        fail(cmd, "%s", e.msg);
        goto done;
    }
    rc = write_out(cmd, out, env);
    if (rc == 0 && strcmp(out, "-") != 0)
        fprintf(stderr, "quince-tenant: sign-policy: %s signed with %s into %s\n", in, key, out);
done:
    free(env);
    EVP_PKEY_free(pk);
    qbuf_free(&kb);
    qbuf_free(&cb);
    qbuf_free(&pb);
    return rc;
}

int tenant_verify_policy(int argc, char **argv)
{
    const char *cmd = "verify-policy", *key = NULL;
    static const struct option opts[] = {
        {"key", required_argument, 0, 'k'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'h': verify_usage(stdout); return 0;
        default: verify_usage(stderr); return 2;
        }
    }
    if (!key)
        return fail(cmd, "--key is required (see --help)");
    if (argc - optind != 1)
        return fail(cmd, "expected one FILE (see --help)");
    const char *in = argv[optind];
    qbuf kb, pb;
    qbuf_init(&kb, 0);
    qbuf_init(&pb, 0);
    int rc = 2;
    if (qbuf_read_file(&kb, key, QDSSE_MAX_KEY) < 0) {
        fail(cmd, "cannot read key %s: %m", key);
    } else if (qbuf_read_file(&pb, in, QPOLICY_MAX_SIZE) < 0 || !qbuf_cstr(&pb)) {
        fail(cmd, "cannot read %s: %m", in);
    } else {
        qpsig_result r;
        int code = qpsig_check((const char *)pb.data, pb.len, kb.data, kb.len, true, &r);
        if (code == 0) {
            printf("%s: signature good (%s)\n", in, key);
            rc = 0;
        } else {
            fprintf(stderr, "quince-tenant: %s: %s: %s\n", cmd, in, r.message);
            rc = code >= 500 ? 2 : 1;
        }
        qpsig_result_clear(&r);
    }
    qbuf_free(&kb);
    qbuf_free(&pb);
    return rc;
}
