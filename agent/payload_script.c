/* payload_script.c — running the payload's script with a time bound; see payload.h. */
#include "payload.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 20

bool agent_payload_script_allowed(bool script_set, bool mtls, bool insecure_payload)
{
    return script_set && (mtls || insecure_payload);
}

/* A plain file name: no '/', not "." or "..". */
static bool plain_name(const char *s)
{
    return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Whether the file starts with "#!". */
static bool has_shebang(int dirfd, const char *script)
{
    int fd = openat(dirfd, script, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    char two[2];
    bool yes = read(fd, two, 2) == 2 && two[0] == '#' && two[1] == '!';
    close(fd);
    return yes;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int agent_payload_run_script(const char *dir, const char *script, long timeout_ms, int *exit_code, qerr *err)
{
    return agent_run_in_dir(dir, script, NULL, timeout_ms, exit_code, err);
}

int agent_run_in_dir(const char *dir, const char *script, const char *arg, long timeout_ms, int *exit_code,
                     qerr *err)
{
    if (!script || !plain_name(script) || strlen(script) > AGENT_PAYLOAD_SCRIPT_MAX)
        return qerr_set(err, "payload script name '%.64s' is not a plain file name", script ? script : "");
    if (timeout_ms <= 0)
        timeout_ms = AGENT_SCRIPT_TIMEOUT_DEFAULT;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return qerr_set(err, "cannot open %s: %s", dir, strerror(errno));
    struct stat st;
    if (fstatat(dirfd, script, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
        close(dirfd);
        return qerr_set(err, "payload script %s/%s is not a regular file", dir, script);
    }
    bool direct = has_shebang(dirfd, script);
    if (direct && fchmodat(dirfd, script, 0700, 0) < 0) {
        close(dirfd);
        return qerr_set(err, "cannot make %s/%s executable: %s", dir, script, strerror(errno));
    }
    close(dirfd);

    char rel[AGENT_PAYLOAD_SCRIPT_MAX + 3];
    snprintf(rel, sizeof rel, "./%s", script);
    char sh[] = "/bin/sh";
    char *argv_direct[] = {rel, (char *)arg, NULL};      /* arg NULL ends the list early */
    char *argv_sh[] = {sh, rel, (char *)arg, NULL};
    char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char env_home[] = "HOME=/";
    char *envp[] = {env_path, env_home, NULL};

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGCHLD);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGHUP);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    pid_t pid;
    int e = posix_spawn(&pid, direct ? rel : sh, &fa, &at, direct ? argv_direct : argv_sh, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (e != 0)
        return qerr_set(err, "cannot start payload script %s/%s: %s", dir, script, strerror(e));

    long long deadline = now_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            kill(-pid, SIGKILL);
            return qerr_set(err, "cannot wait for payload script %s: %s", script, strerror(errno));
        }
        if (now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return qerr_set(err, "payload script %s ran longer than %ld ms and was killed", script, timeout_ms);
        }
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (WIFSIGNALED(status))
        return qerr_set(err, "payload script %s was killed by signal %d", script, WTERMSIG(status));
    *exit_code = WEXITSTATUS(status);
    return 0;
}
