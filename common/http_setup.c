/* http_setup.c — start-up helpers of common/http_server.c: TLS material in memory or from a
 * file, and the listen address (see http_setup.h). */
#include "http_setup.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"

#define PEM_MAX (1u << 20)

char *qhttp_load_pem(const char *pem, const char *file, const char *what, qerr *err)
{
    if (pem) {
        char *c = strdup(pem);
        if (!c)
            qerr_set(err, "out of memory");
        return c;
    }
    if (!file || !file[0])
        return NULL;
    qbuf b;
    qbuf_init(&b, PEM_MAX);
    if (qbuf_read_file(&b, file, PEM_MAX) < 0 || !qbuf_cstr(&b)) {
        qbuf_free(&b);
        qerr_set(err, "cannot read TLS %s file %s", what, file);
        return NULL;
    }
    return (char *)b.data; /* NUL-terminated, owned by the caller */
}

int qhttp_resolve(const char *ip, uint16_t port, struct sockaddr_storage *ss, qerr *err)
{
    const char *host = (ip && ip[0]) ? ip : "0.0.0.0";
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res)
        return qerr_set(err, "cannot resolve listen address %s: %s", host, gai_strerror(rc));
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        return qerr_set(err, "listen address %s is neither IPv4 nor IPv6", host);
    return 0;
}
