/* http_route.c — the HTTP server's route table (see http_route.h). */
#include "http_route.h"

#include <stdlib.h>
#include <string.h>

void qroute_free(qroute *r)
{
    free(r->method);
    for (int i = 0; i < r->nseg; i++) {
        free(r->segs[i].prefix);
        free(r->segs[i].param);
    }
}

int qroute_compile(qroute *r, const qhttp_route *in, qerr *err)
{
    memset(r, 0, sizeof *r);
    const char *p = in->pattern;
    if (!in->method || !in->method[0] || !p || p[0] != '/' || !in->fn)
        return qerr_set(err, "route \"%s\": needs a method, a handler and a path starting with '/'",
                        p ? p : "(null)");
    r->method = strdup(in->method);
    r->fn = in->fn;
    r->ctx = in->ctx;
    if (!r->method)
        return qerr_set(err, "out of memory");
    p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0)
            return qerr_set(err, "route \"%s\": empty segment", in->pattern);
        if (r->nseg == QHTTP_MAX_SEGMENTS)
            return qerr_set(err, "route \"%s\": too many segments", in->pattern);
        qroute_seg *s = &r->segs[r->nseg++];
        const char *brace = memchr(p, '{', n);
        size_t plen = brace ? (size_t)(brace - p) : n;
        s->prefix = strndup(p, plen);
        s->plen = plen;
        if (!s->prefix)
            return qerr_set(err, "out of memory");
        if (brace) {
            const char *close = memchr(brace, '}', n - plen);
            if (!close || close != p + n - 1 || close == brace + 1)
                return qerr_set(err, "route \"%s\": a {name} must end its segment", in->pattern);
            s->param = strndup(brace + 1, (size_t)(close - brace - 1));
            if (!s->param)
                return qerr_set(err, "out of memory");
        } else if (memchr(p, '}', n)) {
            return qerr_set(err, "route \"%s\": stray '}'", in->pattern);
        }
        p += n;
        if (*p == '/')
            p++;
        if (!*p && end)
            return qerr_set(err, "route \"%s\": trailing '/'", in->pattern);
    }
    return 0;
}

int qroute_split(qroute_path *r, const char *path)
{
    size_t n = strnlen(path, QHTTP_MAX_PATH);
    memcpy(r->segbuf, path, n);
    r->segbuf[n] = '\0';
    if (n > 1 && r->segbuf[n - 1] == '/')
        r->segbuf[--n] = '\0';
    r->nsegs = 0;
    if (r->segbuf[0] != '/')
        return -1;
    char *p = r->segbuf + 1;
    if (!*p)
        return 0;
    for (;;) {
        if (r->nsegs == QHTTP_MAX_SEGMENTS)
            return -1;
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (!*p)
            return -1;
        r->segs[r->nsegs++] = p;
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

bool qroute_matches(const qroute *rt, qroute_path *r, bool capture)
{
    if (rt->nseg != r->nsegs)
        return false;
    int np = 0;
    for (int i = 0; i < rt->nseg; i++) {
        const qroute_seg *s = &rt->segs[i];
        const char *v = r->segs[i];
        if (!s->param) {
            if (strcmp(v, s->prefix) != 0)
                return false;
            continue;
        }
        if (strncmp(v, s->prefix, s->plen) != 0 || v[s->plen] == '\0')
            return false;
        if (capture && np < QHTTP_MAX_PARAMS) {
            r->pname[np] = s->param;
            r->pval[np] = v + s->plen;
            np++;
        }
    }
    if (capture)
        r->nparams = np;
    return true;
}
