/* fd_budget.c — connection limits derived from RLIMIT_NOFILE (see fd_budget.h). */
#include "fd_budget.h"

#include <sys/resource.h>

long qfd_raise_nofile(long *raised_from)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        if (raised_from)
            *raised_from = -1;
        return 1024;    /* the usual default; the caller's limits stay modest */
    }
    if (raised_from)
        *raised_from = rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)(1L << 30))
        return 1L << 30;
    return (long)rl.rlim_cur;
}

unsigned qfd_conn_limit(long nofile, long reserve, unsigned share_pct)
{
    if (share_pct > 100)
        share_pct = 100;
    long avail = nofile - reserve;
    if (avail <= 0)
        return QFD_MIN_CONN;
    long n = avail / 100 * (long)share_pct + avail % 100 * (long)share_pct / 100;
    if (n < (long)QFD_MIN_CONN)
        return QFD_MIN_CONN;
    if (n > (long)QFD_MAX_CONN)
        return QFD_MAX_CONN;
    return (unsigned)n;
}
