/* http_route.h — the route table of common/http_server.c: "/v{ver}/agents/{id}" patterns
 * compiled once, and a request path split into segments and matched against them, with the
 * {name} captures pointing into the split copy. Internal to the HTTP server. */
#ifndef QUINCE_HTTP_ROUTE_H
#define QUINCE_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include "err.h"
#include "http_server.h"

typedef struct qroute_seg {
    char *prefix;            /* literal text (whole segment when param is NULL) */
    size_t plen;
    char *param;             /* "{name}" capture of the rest of the segment, or NULL */
} qroute_seg;

typedef struct qroute {
    char *method;
    int nseg;
    qroute_seg segs[QHTTP_MAX_SEGMENTS];
    qhttp_handler_fn fn;
    void *ctx;
} qroute;

/* A request path split into segments; captures point into segbuf. */
typedef struct qroute_path {
    char segbuf[QHTTP_MAX_PATH + 1];
    int nsegs;
    char *segs[QHTTP_MAX_SEGMENTS];
    int nparams;
    const char *pname[QHTTP_MAX_PARAMS];
    const char *pval[QHTTP_MAX_PARAMS];
} qroute_path;

/* Compile in->pattern (segments, "{name}" only at a segment's end). 0, or -1 with a reason. */
int qroute_compile(qroute *r, const qhttp_route *in, qerr *err);
void qroute_free(qroute *r);
/* Split path (at most QHTTP_MAX_PATH); -1 if it has empty or too many segments. */
int qroute_split(qroute_path *p, const char *path);
/* Does the route match the split path? With capture, its {name} values are recorded in p. */
bool qroute_matches(const qroute *rt, qroute_path *p, bool capture);

#endif
