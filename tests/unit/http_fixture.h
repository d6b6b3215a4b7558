/* http_fixture.h — a loopback server and a client for the HTTP unit tests (header-only, test
 * code only). Include after <cmocka.h>, http_client.h and http_server.h. */
#ifndef QUINCE_TEST_HTTP_FIXTURE_H
#define QUINCE_TEST_HTTP_FIXTURE_H

#include <stdio.h>

/* Starts a server with o and routes on a free port of 127.0.0.1, writes its base URL
 * ("http://127.0.0.1:PORT") into base and makes a client with a 5 s timeout. 0, or -1 with the
 * reason on stderr and nothing left running. */
static inline int hfx_start(const qhttp_server_opts *o, const qhttp_route *routes, size_t nroutes,
                            qhttp_server **srv, qhttp_client **cli, char *base, size_t cap)
{
    qerr e = { 0 };
    *srv = qhttp_server_start(o, routes, nroutes, &e);
    if (!*srv) {
        fprintf(stderr, "server: %s\n", e.msg);
        return -1;
    }
    snprintf(base, cap, "http://127.0.0.1:%u", qhttp_server_port(*srv));
    qhttp_client_opts co = { .timeout_ms = 5000 };
    *cli = qhttp_client_new(&co, &e);
    if (!*cli) {
        fprintf(stderr, "client: %s\n", e.msg);
        qhttp_server_stop(*srv);
        *srv = NULL;
        return -1;
    }
    return 0;
}

#endif
