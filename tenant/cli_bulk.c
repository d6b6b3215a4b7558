/* cli_bulk.c — `-c add` and `-c delete` for many agents (--uuid-file FILE): the ids are read
 * and checked first, a named runtime policy is checked once, then `jobs` workers each take the
 * next agent and run the single-agent command for it (the same checks, requests and messages),
 * each over its own kept-alive connections to the registrar and the verifier, so at most `jobs`
 * agents are in flight at once. Every failure is one line naming the agent; a summary line
 * closes the run; the exit status is 1 when any agent failed. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define BULK_LINE_MAX 4096
#define RESPONSE_MAX  (16u * 1024 * 1024)

typedef struct bulk {
    tcli_ctx *x;                     /* the main context: options, configuration, URLs */
    char (*ids)[TCLI_ID_MAX + 1];
    size_t n;
    pthread_mutex_t mu;
    size_t next, done, failed;
} bulk;

/* The ids: the first word of each line; blank lines and lines starting with '#' are skipped,
 * so a list such as quince-fleet's agents.txt (id address port ...) works as it is. */
static int read_ids(const char *path, bulk *b, qerr *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f)
        return qerr_setc(err, TCLI_EUSAGE, "--uuid-file %s: %s", path, strerror(errno));
    char line[BULK_LINE_MAX];
    size_t cap = 0, lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            rc = qerr_setc(err, TCLI_EUSAGE, "--uuid-file %s line %zu: longer than %d bytes", path, lineno,
                           BULK_LINE_MAX - 2);
            break;
        }
        char *w = line + strspn(line, " \t\r\n");
        if (!*w || *w == '#')
            continue;
        w[strcspn(w, " \t\r\n")] = '\0';
        if (b->n == TCLI_BULK_MAX) {
            rc = qerr_setc(err, TCLI_EUSAGE, "--uuid-file %s: more than %d agents", path, TCLI_BULK_MAX);
            break;
        }
        if (b->n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            void *p = realloc(b->ids, ncap * sizeof *b->ids);
            if (!p) {
                rc = qerr_setc(err, TCLI_EFAIL, "out of memory");
                break;
            }
            b->ids = p;
            cap = ncap;
        }
        if (tcli_uuid_check(w, b->ids[b->n], sizeof b->ids[b->n], err) < 0)
            rc = qerr_prefix(err, "--uuid-file %s line %zu", path, lineno);
        else
            b->n++;
    }
    if (rc == 0 && ferror(f))
        rc = qerr_setc(err, TCLI_EUSAGE, "--uuid-file %s: read error", path);
    if (f != stdin)
        fclose(f);
    if (rc == 0 && b->n == 0)
        rc = qerr_setc(err, TCLI_EUSAGE, "--uuid-file %s names no agent", path);
    return rc;
}

/* A stored policy that is not there would fail every agent the same way: ask once. */
static int check_named_policy(tcli_ctx *x, qerr *err)
{
    const char *name = x->o->runtime_policy_name;
    if (x->o->cmd != TCMD_ADD || !name)
        return 0;
    static const tcli_named_kind rp = { "runtime policy", "runtime policies", "/allowlists/", NULL, NULL };
    char path[TCLI_NAME_MAX * 3 + 32];
    if (tcli_named_path(&rp, name, path, sizeof path, err) < 0)
        return -1;
    qhttp_result r;
    int rc = tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, &r, err);
    if (rc == 0 && r.status == 404)
        rc = qerr_setc(err, TCLI_EFAIL, "the verifier at %s has no runtime policy named %s (store it first: "
                       "-c addruntimepolicy --runtime-policy FILE --runtime-policy-name %s)",
                       x->where[TSRV_VERIFIER], name, name);
    else if (rc == 0 && r.status != 200)
        rc = tcli_http_error(&r, err, "cannot read runtime policy %s from the verifier at %s", name,
                             x->where[TSRV_VERIFIER]);
    qhttp_result_free(&r);
    return rc;
}

static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

static void *worker(void *arg)
{
    bulk *b = arg;
    tcli_ctx *x = b->x;
    tcli_opts o = *x->o;           /* only uuid changes; tpm_policy_obj stays the main one's */
    tcli_ctx w;
    memset(&w, 0, sizeof w);
    w.o = &o;
    w.c = x->c;
    memcpy(w.base, x->base, sizeof w.base);
    memcpy(w.where, x->where, sizeof w.where);
    memcpy(w.ver, x->ver, sizeof w.ver);
    qerr e;
    qerr_clear(&e);
    w.http = tcli_http_new(x->c, RESPONSE_MAX, &e);
    for (;;) {
        pthread_mutex_lock(&b->mu);
        size_t i = b->next < b->n ? b->next++ : b->n;
        pthread_mutex_unlock(&b->mu);
        if (i == b->n)
            break;
        memcpy(o.uuid, b->ids[i], sizeof o.uuid);
        int rc = -1;
        if (w.http) {
            qerr_clear(&e);
            rc = o.cmd == TCMD_ADD ? tcli_cmd_add(&w, &e) : tcli_cmd_delete(&w, false, NULL, &e);
        }
        if (rc < 0) {                /* one line that names the agent */
            one_line(e.msg);
            if (strstr(e.msg, o.uuid))
                fprintf(stderr, "quince-tenant: %s\n", e.msg);
            else
                fprintf(stderr, "quince-tenant: agent %s: %s\n", o.uuid, e.msg[0] ? e.msg : "failed");
        }
        pthread_mutex_lock(&b->mu);
        b->done++;
        if (rc < 0)
            b->failed++;
        pthread_mutex_unlock(&b->mu);
    }
    qhttp_client_free(w.http);
    return NULL;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tcli_cmd_bulk(tcli_ctx *x, qerr *err)
{
    bulk b;
    memset(&b, 0, sizeof b);
    b.x = x;
    if (read_ids(x->o->uuid_file, &b, err) < 0 || check_named_policy(x, err) < 0) {
        free(b.ids);
        return -1;
    }
    unsigned jobs = x->o->jobs ? x->o->jobs : TCLI_BULK_JOBS;
    if (jobs > b.n)
        jobs = (unsigned)b.n;
    pthread_t th[TCLI_BULK_JOBS_MAX];
    unsigned started = 0;
    pthread_mutex_init(&b.mu, NULL);
    double t0 = mono_s();
    for (; started < jobs; started++)
        if (pthread_create(&th[started], NULL, worker, &b) != 0)
            break;
    if (started == 0)
        worker(&b);                 /* no thread at all: do it here */
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double t = mono_s() - t0;
    pthread_mutex_destroy(&b.mu);
    const char *verb = x->o->cmd == TCMD_ADD ? "added to" : "deleted from";
    printf("bulk %s: %zu of %zu agents %s the verifier at %s in %.1f s (%.0f agents/s, %u at a time); %zu failed\n",
           x->o->cmd == TCMD_ADD ? "add" : "delete", b.done - b.failed, b.n, verb, x->where[TSRV_VERIFIER], t,
           t > 0 ? (double)(b.done - b.failed) / t : 0.0, started ? started : 1, b.failed);
    fflush(stdout);
    size_t failed = b.failed, n = b.n;
    free(b.ids);
    if (failed)
        return qerr_setc(err, TCLI_EFAIL, "%zu of %zu agents failed (each named above)", failed, n);
    return 0;
}
