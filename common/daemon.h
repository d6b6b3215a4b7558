/* daemon.h — the command-line and signal boilerplate shared by quince-agent and quince-verifier.
 * qdaemon_args parses the long options --config FILE, --help and --version (no short ones: -v is
 * the tenant's verifier host in Keylime's CLI). It returns -1 when the program should go on
 * (*config set, or NULL), else the exit status to return (0 after --help/--version, 2 after a
 * bad option, with one line on stderr). qdaemon_stop_on_signals makes SIGTERM and SIGINT set
 * *flag (and ignores SIGPIPE, so a dropped connection is an error return, never a kill). */
#ifndef QUINCE_DAEMON_H
#define QUINCE_DAEMON_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

int qdaemon_args(int argc, char **argv, const char *prog, void (*usage)(FILE *f), const char **config);
/* The same, also accepting --check-config (sets *check_config). */
int qdaemon_args_check(int argc, char **argv, const char *prog, void (*usage)(FILE *f), const char **config,
                       bool *check_config);
void qdaemon_stop_on_signals(volatile sig_atomic_t *flag);

#endif
