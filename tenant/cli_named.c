/* cli_named.c — the verifier's named documents (runtime policies under /allowlists, measured-boot
 * reference states under /mbpolicies) as the tenant's show, delete and list commands see them:
 * the same requests and answers for both kinds, told apart by a tcli_named_kind (cli.h). */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"

int tcli_named_path(const tcli_named_kind *k, const char *name, char *path, size_t cap, qerr *err)
{
    char *esc = curl_easy_escape(NULL, name, 0);
    if (!esc)
        return qerr_setc(err, TCLI_EFAIL, "out of memory");
    int n = snprintf(path, cap, "%s%s", k->collection, esc);
    curl_free(esc);
    if (n < 0 || (size_t)n >= cap)
        return qerr_setc(err, TCLI_EUSAGE, "%s name %.40s... is too long", k->what, name);
    return 0;
}

int tcli_named_show(tcli_ctx *x, const tcli_named_kind *k, const char *path, const char *name, qerr *err)
{
    qhttp_result r;
    int rc = tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, &r, err);
    if (rc == 0 && r.status != 200)
        rc = tcli_http_error(&r, err, "the verifier at %s has no %s %s", x->where[TSRV_VERIFIER], k->what, name);
    if (rc == 0) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(r.results, k->text_key);
        if (cJSON_IsString(p)) {
            size_t n = strlen(p->valuestring);
            fwrite(p->valuestring, 1, n, stdout);
            if (n == 0 || p->valuestring[n - 1] != '\n')
                putchar('\n');
        } else {
            rc = qerr_setc(err, TCLI_EFAIL, "the verifier at %s answered without the text of %s %s",
                           x->where[TSRV_VERIFIER], k->what, name);
        }
    }
    fflush(stdout);
    qhttp_result_free(&r);
    return rc;
}

int tcli_named_delete(tcli_ctx *x, const tcli_named_kind *k, const char *path, const char *name, qerr *err)
{
    qhttp_result r;
    int rc = tcli_call(x, TSRV_VERIFIER, "DELETE", path, NULL, &r, err);
    if (rc == 0 && r.status != 204 && r.status != 200)
        rc = tcli_http_error(&r, err, "the verifier at %s did not delete %s %s", x->where[TSRV_VERIFIER], k->what,
                             name);
    else if (rc == 0)
        printf("%s %s deleted from the verifier at %s\n", k->what, name, x->where[TSRV_VERIFIER]);
    fflush(stdout);
    qhttp_result_free(&r);
    return rc;
}

int tcli_named_list(tcli_ctx *x, const tcli_named_kind *k, qerr *err)
{
    qhttp_result r;
    int rc = tcli_call(x, TSRV_VERIFIER, "GET", k->collection, NULL, &r, err);
    if (rc == 0 && r.status != 200)
        rc = tcli_http_error(&r, err, "the verifier at %s did not list its %s", x->where[TSRV_VERIFIER], k->plural);
    if (rc == 0) {
        const cJSON *it, *names = cJSON_GetObjectItemCaseSensitive(r.results, k->list_key);
        cJSON_ArrayForEach(it, names) {
            if (!cJSON_IsString(it))
                continue;
            for (const char *p = it->valuestring; *p; p++)
                putchar((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
            putchar('\n');
        }
    }
    fflush(stdout);
    qhttp_result_free(&r);
    return rc;
}
