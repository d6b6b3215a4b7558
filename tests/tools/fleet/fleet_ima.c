/* fleet_ima.c — the fleet's file pool, the runtime policy that lists it, and each agent's IMA
 * list. Lists share their text: an agent's list is the pool's base lines followed by pool
 * indexes (4 bytes an entry), and PCR 10 is extended as entries are appended, so a quote costs
 * no replay and 10,000 lists cost little memory. */
#include "fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define LINE_MAX_LEN 512

static int line_make(fl_line *l, const char *path, uint8_t *scratch, uint8_t *td, EVP_MD_CTX *ctx, qerr *err)
{
    uint8_t fd[32];
    char buf[LINE_MAX_LEN];
    if (qhash_digest(ctx, QHASH_SHA256, path, strlen(path), fd) < 0)
        return qerr_set(err, "sha256 failed");
    int n = swq_ima_line(buf, sizeof buf, path, fd);
    qima_entry e;
    long tl = -1;
    if (n > 0 && qima_parse_line(buf, (size_t)n - 1, &e, scratch, err) == 0)
        tl = qima_template_data(&e, td, QIMA_SCRATCH_SIZE);
    if (tl < 0 || qhash_digest(ctx, QHASH_SHA256, td, (size_t)tl, l->extend) < 0)
        return qerr_set(err, "cannot make the IMA line of %s", path);
    if (!(l->text = strdup(buf)))
        return qerr_set(err, "out of memory");
    l->len = (size_t)n;
    return 0;
}

int fl_pool_setup(fl_pool *p, unsigned files, unsigned base, qerr *err)
{
    memset(p, 0, sizeof *p);
    if (files == 0 || base > files)
        return qerr_set(err, "the pool needs at least one file and no fewer files than base entries");
    p->lines = calloc((size_t)files + 1, sizeof *p->lines);
    uint8_t *scratch = malloc(QIMA_SCRATCH_SIZE), *td = malloc(QIMA_SCRATCH_SIZE);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    qpolicy *pol = qpolicy_empty(err);
    int rc = p->lines && scratch && td && ctx && pol ? 0 : qerr_set(err, "out of memory");
    char path[128], hex[65];
    for (unsigned i = 0; rc == 0 && i <= files; i++) {
        if (i < files)
            snprintf(path, sizeof path, "/usr/lib/quince-fleet/file-%05u.so", i);
        else
            snprintf(path, sizeof path, "/tmp/quince-fleet-evil");
        rc = line_make(&p->lines[i], path, scratch, td, ctx, err);
        p->nfiles = i;
        if (rc == 0 && i < files) {
            /* The file digest is the fifth space-separated field after "sha256:". */
            const char *d = strstr(p->lines[i].text, "sha256:");
            memcpy(hex, d + 7, 64);
            hex[64] = '\0';
            rc = qpolicy_add_digest(pol, QPOL_DIGESTS, path, strlen(path), hex, err);
        }
    }
    p->nfiles = files;
    p->nbase = base;
    qpcr pcr;
    qpcr_init(&pcr, QHASH_SHA256);
    for (unsigned i = 0; rc == 0 && i < base; i++)
        rc = qpcr_extend(&pcr, ctx, p->lines[i].extend);
    memcpy(p->base_pcr, pcr.value, 32);
    if (rc == 0 && !(p->policy_json = qpolicy_to_json(pol, false, err)))
        rc = -1;
    qpolicy_free(pol);
    EVP_MD_CTX_free(ctx);
    free(scratch);
    free(td);
    if (rc < 0)
        fl_pool_free(p);
    return rc;
}

void fl_pool_free(fl_pool *p)
{
    if (p->lines)
        for (size_t i = 0; i <= p->nfiles; i++)
            free(p->lines[i].text);
    free(p->lines);
    free(p->policy_json);
    memset(p, 0, sizeof *p);
}

int fl_append(fl_agent *a, const fl_pool *p, uint32_t line)
{
    static EVP_MD_CTX *ctx;         /* event loop thread only */
    if (!ctx && !(ctx = EVP_MD_CTX_new()))
        return -1;
    if (a->nextra == a->capextra) {
        uint32_t cap = a->capextra ? a->capextra * 2 : 16;
        uint32_t *n = realloc(a->extra, cap * sizeof *n);
        if (!n)
            return -1;
        a->extra = n;
        a->capextra = cap;
    }
    qpcr pcr;
    qpcr_init(&pcr, QHASH_SHA256);
    memcpy(pcr.value, a->pcr10, 32);
    if (qpcr_extend(&pcr, ctx, p->lines[line].extend) < 0)
        return -1;
    memcpy(a->pcr10, pcr.value, 32);
    a->extra[a->nextra++] = line;
    return 0;
}

void fl_list_reset(fl_agent *a, const fl_pool *p)
{
    a->nextra = 0;
    memcpy(a->pcr10, p->base_pcr, 32);
}

static int put(char **buf, size_t *cap, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return -1;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int fl_list_text(const fl_agent *a, const fl_pool *p, uint64_t from, char **buf, size_t *cap, size_t *len)
{
    *len = 0;
    if (put(buf, cap, len, "", 0) < 0)
        return -1;
    uint64_t total = p->nbase + a->nextra;
    for (uint64_t i = from; i < total; i++) {
        const fl_line *l = i < p->nbase ? &p->lines[i] : &p->lines[a->extra[i - p->nbase]];
        if (put(buf, cap, len, l->text, l->len) < 0)
            return -1;
    }
    return 0;
}
