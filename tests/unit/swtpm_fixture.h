/* swtpm_fixture.h — a private software TPM for unit tests (header-only, test code only):
 * swtpm on a unix socket in the test's own temp dir, optionally with an EK certificate made by
 * swtpm_setup, stopped by PID (and killed with the test process if that dies first). */
#ifndef QUINCE_TEST_SWTPM_FIXTURE_H
#define QUINCE_TEST_SWTPM_FIXTURE_H

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Whether prog is an executable on $PATH. */
static inline bool swf_in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];
    if (!path)
        return false;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", d, prog);
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

/* Run argv with its output appended to log (NULL: discarded); the exit status or -1. */
static inline int swf_run(char *const argv[], const char *log)
{
    pid_t p = fork();
    if (p == 0) {
        int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0600) : open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    if (p < 0 || waitpid(p, &st, 0) != p)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Create dir/state and, when swtpm_setup exists, an EK certificate and persistent EK for the given
 * PCR banks ("sha256", "sha1,sha256"). Returns whether the certificate was made. */
static inline bool swf_setup_ek_cert(const char *dir, const char *banks, const char *log)
{
    char st[256];
    snprintf(st, sizeof st, "%s/state", dir);
    mkdir(st, 0700);
    if (!swf_in_path("swtpm_setup"))
        return false;
    char *argv[] = { "swtpm_setup", "--tpm2", "--tpmstate", st, "--createek", "--create-ek-cert",
                     "--pcr-banks", (char *)banks, "--overwrite", NULL };
    return swf_run(argv, log) == 0;
}

/* Start swtpm with its state in dir/state and its sockets dir/tpm.sock(.ctrl); the TCTI string
 * goes to tcti. Returns the PID (-1 on failure); waits until both sockets exist. */
static inline pid_t swf_start(const char *dir, char *tcti, size_t cap)
{
    char st[256], sock[256], ctrl[256], statearg[300], srv[300], ctl[300];
    snprintf(st, sizeof st, "%s/state", dir);
    snprintf(sock, sizeof sock, "%s/tpm.sock", dir);
    snprintf(ctrl, sizeof ctrl, "%s/tpm.sock.ctrl", dir);
    mkdir(st, 0700);
    snprintf(statearg, sizeof statearg, "dir=%s", st);
    snprintf(srv, sizeof srv, "type=unixio,path=%s", sock);
    snprintf(ctl, sizeof ctl, "type=unixio,path=%s", ctrl);
    int n = snprintf(tcti, cap, "swtpm:path=%s", sock);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);        /* never outlive a crashed test */
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("swtpm", "swtpm", "socket", "--tpm2", "--server", srv, "--ctrl", ctl, "--tpmstate", statearg,
               "--flags", "not-need-init,startup-clear", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < 250; i++) {
        struct stat sb;
        if (stat(sock, &sb) == 0 && stat(ctrl, &sb) == 0)
            break;
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return pid;
}

/* Stop a swtpm started by swf_start (also when it was SIGSTOPped); *pid becomes -1. */
static inline void swf_stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGCONT);
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
    }
    *pid = -1;
}

/* rm -rf dir (a test's own temp dir). */
static inline void swf_rmdir(const char *dir)
{
    if (!dir[0])
        return;
    char *argv[] = { "rm", "-rf", (char *)dir, NULL };
    swf_run(argv, NULL);
}

#endif
