/* fd_budget.h — how many connections a daemon's HTTP servers may hold, from RLIMIT_NOFILE.
 *
 * Contract:
 * - qfd_raise_nofile raises the soft RLIMIT_NOFILE to the hard limit (an unprivileged process may
 *   do so) and returns the soft limit then in effect; *raised_from gets the old soft limit.
 * - qfd_conn_limit splits what is left after `reserve` descriptors (the process's own files,
 *   database, logs and its outgoing connections, e.g. the verifier's polling) among servers:
 *   share_pct percent of it, clamped to [QFD_MIN_CONN, QFD_MAX_CONN]. When nofile is too small
 *   for the reserve the result is QFD_MIN_CONN (the daemon should warn). Pure. */
#ifndef QUINCE_FD_BUDGET_H
#define QUINCE_FD_BUDGET_H

#define QFD_MIN_CONN 16u
#define QFD_MAX_CONN 2048u
#define QFD_BASE_RESERVE 128L     /* files, database, logs, listening sockets, pipes */

long qfd_raise_nofile(long *raised_from);
unsigned qfd_conn_limit(long nofile, long reserve, unsigned share_pct);

#endif
