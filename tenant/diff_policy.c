/* diff_policy.c — `quince-tenant diff-policy OLD NEW`: which paths a policy update adds, removes
 * or changes, so an operator reviews it before pushing. Both sides are loaded as the verifier
 * loads them (flat allowlist or runtime-policy JSON; a DSSE envelope is unwrapped, not checked —
 * use verify-policy for that), normalised (sorted, digests deduplicated), then compared table by
 * table (digests, keyrings, ima-buf) and on the excludes. Exit: 0 same, 1 different, 2 error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "buf.h"
#include "policy.h"
#include "policy_sig.h"
#include "tenant.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: quince-tenant diff-policy [--quiet] OLD NEW\n"
        "\n"
        "Compares two allowlists or runtime policies (either may be a signed DSSE envelope; its\n"
        "signature is not checked here) and prints one line per difference:\n"
        "  + PATH DIGEST[,DIGEST...]          added\n"
        "  - PATH DIGEST[,DIGEST...]          removed\n"
        "  ~ PATH OLD[,...] -> NEW[,...]      accepted digests changed\n"
        "Keyring and ima-buf entries are prefixed with their table ('keyrings:' / 'ima-buf:'),\n"
        "excludes with 'exclude:'. A last line counts them: 'N added, N removed, N changed'.\n"
        "\n"
        "  -q, --quiet   print only the count line\n"
        "\n"
        "Exit status: 0 no difference, 1 differences, 2 on an error.\n");
}

/* The normalised JSON form of a policy file. */
static cJSON *load(const char *path)
{
    qbuf b;
    qbuf_init(&b, 0);
    if (qbuf_read_file(&b, path, QPOLICY_MAX_SIZE) < 0 || !qbuf_cstr(&b)) {
        fprintf(stderr, "quince-tenant: diff-policy: cannot read %s: %m\n", path);
        qbuf_free(&b);
        return NULL;
    }
    qpsig_result r;
    if (qpsig_check((const char *)b.data, b.len, NULL, 0, false, &r) != 0) {
        fprintf(stderr, "quince-tenant: diff-policy: %s: %s\n", path, r.message);
        qpsig_result_clear(&r);
        qbuf_free(&b);
        return NULL;
    }
    qbuf_free(&b);
    qerr e = {0};
    size_t i = 0;
    while (i < r.payload_len && strchr(" \t\r\n", r.payload[i]))
        i++;
    qpolicy *p = i < r.payload_len && r.payload[i] == '{' ? qpolicy_from_json(r.payload, r.payload_len, path, &e)
                                                          : qpolicy_from_allowlist(r.payload, r.payload_len, path, &e);
    qpsig_result_clear(&r);
    if (!p) {
        fprintf(stderr, "quince-tenant: diff-policy: %s\n", e.msg);
        return NULL;
    }
    char *text = qpolicy_to_json(p, true, &e);
    qpolicy_free(p);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j)
        fprintf(stderr, "quince-tenant: diff-policy: %s: cannot normalise: %s\n", path, e.msg[0] ? e.msg : "out of memory");
    return j;
}

typedef struct counts {
    size_t added, removed, changed;
    bool quiet;
} counts;

static void print_list(const cJSON *arr)
{
    const cJSON *d;
    bool first = true;
    cJSON_ArrayForEach(d, arr) {
        printf("%s%s", first ? "" : ",", cJSON_IsString(d) ? d->valuestring : "?");
        first = false;
    }
}

static bool same_list(const cJSON *a, const cJSON *b)
{
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
        return false;
    const cJSON *x = a ? a->child : NULL, *y = b ? b->child : NULL;
    for (; x && y; x = x->next, y = y->next)
        if (!cJSON_IsString(x) || !cJSON_IsString(y) || strcmp(x->valuestring, y->valuestring) != 0)
            return false;
    return true;
}

/* Both objects have their keys sorted (qpolicy_to_json sorted=true): merge them. */
static void diff_table(const cJSON *a, const cJSON *b, const char *prefix, counts *c)
{
    const cJSON *x = a ? a->child : NULL, *y = b ? b->child : NULL;
    while (x || y) {
        int cmp = !x ? 1 : !y ? -1 : strcmp(x->string, y->string);
        if (cmp < 0) {
            c->removed++;
            if (!c->quiet) {
                printf("- %s%s ", prefix, x->string);
                print_list(x);
                putchar('\n');
            }
            x = x->next;
        } else if (cmp > 0) {
            c->added++;
            if (!c->quiet) {
                printf("+ %s%s ", prefix, y->string);
                print_list(y);
                putchar('\n');
            }
            y = y->next;
        } else {
            if (!same_list(x, y)) {
                c->changed++;
                if (!c->quiet) {
                    printf("~ %s%s ", prefix, x->string);
                    print_list(x);
                    fputs(" -> ", stdout);
                    print_list(y);
                    putchar('\n');
                }
            }
            x = x->next;
            y = y->next;
        }
    }
}

static bool in_list(const cJSON *arr, const char *s)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, arr)
        if (cJSON_IsString(d) && strcmp(d->valuestring, s) == 0)
            return true;
    return false;
}

static void diff_excludes(const cJSON *a, const cJSON *b, counts *c)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, a)
        if (cJSON_IsString(d) && !in_list(b, d->valuestring)) {
            c->removed++;
            if (!c->quiet)
                printf("- exclude:%s\n", d->valuestring);
        }
    cJSON_ArrayForEach(d, b)
        if (cJSON_IsString(d) && !in_list(a, d->valuestring)) {
            c->added++;
            if (!c->quiet)
                printf("+ exclude:%s\n", d->valuestring);
        }
}

int tenant_diff_policy(int argc, char **argv)
{
    counts c = {0};
    static const struct option opts[] = {
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (o) {
        case 'q': c.quiet = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "quince-tenant: diff-policy: expected OLD and NEW (see --help)\n");
        return 2;
    }
    cJSON *a = load(argv[optind]);
    cJSON *b = a ? load(argv[optind + 1]) : NULL;
    if (!a || !b) {
        cJSON_Delete(a);
        return 2;
    }
    static const struct { const char *key, *prefix; } tabs[] = {
        {"digests", ""}, {"keyrings", "keyrings:"}, {"ima-buf", "ima-buf:"}};
    for (size_t i = 0; i < sizeof tabs / sizeof tabs[0]; i++)
        diff_table(cJSON_GetObjectItemCaseSensitive(a, tabs[i].key), cJSON_GetObjectItemCaseSensitive(b, tabs[i].key),
                   tabs[i].prefix, &c);
    diff_excludes(cJSON_GetObjectItemCaseSensitive(a, "excludes"), cJSON_GetObjectItemCaseSensitive(b, "excludes"), &c);
    cJSON_Delete(a);
    cJSON_Delete(b);
    printf("%zu added, %zu removed, %zu changed\n", c.added, c.removed, c.changed);
    return c.added || c.removed || c.changed ? 1 : 0;
}
