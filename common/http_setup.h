/* http_setup.h — start-up helpers of common/http_server.c (internal to it).
 * qhttp_load_pem: a copy of pem, or else the contents of file (at most 1 MiB, NUL-terminated);
 * NULL without either, or with a message in err when the file cannot be read or memory runs
 * out. qhttp_resolve: ip (NULL or "" → 0.0.0.0) and port as a socket address; -1 with a message
 * when it is not an IPv4 or IPv6 address or name. */
#ifndef QUINCE_HTTP_SETUP_H
#define QUINCE_HTTP_SETUP_H

#include <stdint.h>
#include <sys/socket.h>

#include "err.h"

char *qhttp_load_pem(const char *pem, const char *file, const char *what, qerr *err);
int qhttp_resolve(const char *ip, uint16_t port, struct sockaddr_storage *ss, qerr *err);

#endif
