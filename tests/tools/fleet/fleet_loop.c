/* fleet_loop.c — the event loop: one epoll set holds every agent server's own epoll fd
 * (one-shot, re-armed after each run), a signalfd, and a timeout for the periodic work (list
 * growth, scheduled faults, idle-connection timeouts). A slow agent's server is run slow_ms
 * after it became ready instead of at once, so each of its I/O steps is late by that much. */
#include "fleet.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SIG_TAG  UINT32_MAX
#define TICK_S   0.25
#define SWEEP_S  1.0
#define EVENTS   256

typedef struct delayq {          /* FIFO: every slow agent waits the same time */
    uint32_t *idx;
    double *due;
    size_t head, len, cap;
} delayq;

static int arm(int ep, fl_agent *a, int op)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u32 = a->idx };
    int fd = qhttp_server_poll_fd(a->srv);
    return fd < 0 ? -1 : epoll_ctl(ep, op, fd, &ev);
}

static void run_agent(int ep, fl_agent *a)
{
    if (!a->srv)
        return;
    for (int i = 0; i < 16 && qhttp_server_run(a->srv) == 1; i++)
        ;
    if (arm(ep, a, EPOLL_CTL_MOD) < 0)
        fprintf(stderr, "fleet: agent %s: cannot poll its server: %s\n", a->uuid, strerror(errno));
}

static uint32_t rnd(void)
{
    static uint32_t s = 2463534242u;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
}

static bool evil_now;            /* SIGUSR2: the evil agents run their file now */

/* Growth, faults and timeouts; `ready` is when provisioning finished (0: not yet). */
static void periodic(fleet *f, int ep, double now, double dt, double ready)
{
    static bool evil_done, dead_done, reboot_done;
    double rate = f->o.entries_per_minute / 60.0;
    for (unsigned i = 0; rate > 0 && i < f->o.n; i++) {
        fl_agent *a = &f->agents[i];
        for (a->growth_due += rate * dt; a->growth_due >= 1.0; a->growth_due -= 1.0)
            if (fl_append(a, &f->pool, rnd() % (uint32_t)f->pool.nfiles) < 0)
                fprintf(stderr, "fleet: agent %s: list growth failed (out of memory)\n", a->uuid);
    }
    if (ready <= 0)
        return;
    if (!evil_done && f->o.evil && (now - ready >= f->o.evil_at || evil_now)) {
        evil_done = true;
        for (unsigned i = 0; i < f->o.n; i++) {
            fl_agent *a = &f->agents[i];
            if (!a->evil)
                continue;
            if (fl_append(a, &f->pool, (uint32_t)f->pool.nfiles) < 0)
                fprintf(stderr, "fleet: agent %s: cannot append the evil entry\n", a->uuid);
            else
                printf("fleet: evil %s appended_ms=%.0f entry=%zu\n", a->uuid, fl_wall_ms(),
                       f->pool.nbase + a->nextra - 1);
        }
        fflush(stdout);
    }
    if (!dead_done && f->o.dead > 0 && now - ready >= f->o.dead_at) {
        dead_done = true;
        unsigned n = 0;
        for (unsigned i = 0; i < f->o.n; i++) {
            fl_agent *a = &f->agents[i];
            if (!a->dead || !a->srv)
                continue;
            epoll_ctl(ep, EPOLL_CTL_DEL, qhttp_server_poll_fd(a->srv), NULL);
            qhttp_server_stop(a->srv);
            a->srv = NULL;
            n++;
        }
        printf("fleet: dead %u agents stopped listening\n", n);
        fflush(stdout);
    }
    if (!reboot_done && f->o.reboot > 0 && now - ready >= f->o.reboot_at) {
        reboot_done = true;
        unsigned n = 0;
        for (unsigned i = 0; i < f->o.n; i++) {
            fl_agent *a = &f->agents[i];
            if (!a->reboot)
                continue;
            fl_list_reset(a, &f->pool);
            a->reset_count++;
            a->boottime = (uint64_t)(fl_wall_ms() / 1000.0);
            n++;
        }
        printf("fleet: reboot %u agents rebooted\n", n);
        fflush(stdout);
    }
}

static int delay_push(delayq *q, uint32_t idx, double due)
{
    if (q->len == q->cap)
        return -1;
    size_t at = (q->head + q->len) % q->cap;
    q->idx[at] = idx;
    q->due[at] = due;
    q->len++;
    return 0;
}

static int on_signal(fleet *f, int sfd)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGUSR1)
            fl_stats_print(f);
        else if (si.ssi_signo == SIGUSR2)
            evil_now = true;
        else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            return 1;
    }
    return 0;
}

static int start_servers(fleet *f, int ep, qerr *err)
{
    double t = fl_now();
    for (unsigned i = 0; i < f->o.n; i++) {
        fl_agent *a = &f->agents[i];
        if (fl_api_start(f, a, err) < 0)
            return -1;
        if (arm(ep, a, EPOLL_CTL_ADD) < 0)
            return qerr_set(err, "agent %s: cannot poll its server: %s", a->uuid, strerror(errno));
    }
    printf("fleet: listening %u agents on %s..%s port %u (%.1f s)\n", f->o.n, f->agents[0].ip,
           f->agents[f->o.n - 1].ip, f->o.port, fl_now() - t);
    fflush(stdout);
    return 0;
}

int fl_loop(fleet *f, qerr *err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    struct epoll_event sev = { .events = EPOLLIN, .data.u32 = SIG_TAG };
    delayq q = { .idx = calloc(f->o.n, sizeof *q.idx), .due = calloc(f->o.n, sizeof *q.due), .cap = f->o.n };
    fl_prov *prov = NULL;
    int rc = -1;
    if (ep < 0 || sfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) < 0 || !q.idx || !q.due) {
        qerr_set(err, "event loop set-up failed: %s", strerror(errno));
        goto out;
    }
    if ((!f->o.provision_only && start_servers(f, ep, err) < 0) || !(prov = fl_prov_start(f, err)))
        goto out;
    double ready = 0, last_tick = fl_now(), last_sweep = last_tick;
    struct epoll_event evs[EVENTS];
    for (;;) {
        double now = fl_now();
        double next = last_tick + TICK_S;
        if (q.len && q.due[q.head] < next)
            next = q.due[q.head];
        int wait_ms = next > now ? (int)((next - now) * 1000.0) + 1 : 0;
        int n = epoll_wait(ep, evs, EVENTS, wait_ms);
        if (n < 0 && errno != EINTR) {
            qerr_set(err, "epoll_wait: %s", strerror(errno));
            goto out;
        }
        now = fl_now();
        for (int i = 0; i < n; i++) {
            uint32_t idx = evs[i].data.u32;
            if (idx == SIG_TAG) {
                if (on_signal(f, sfd))
                    goto done;
                continue;
            }
            fl_agent *a = &f->agents[idx];
            if (a->slow && f->o.slow_ms > 0 && delay_push(&q, idx, now + f->o.slow_ms / 1000.0) == 0)
                continue;
            run_agent(ep, a);
        }
        while (q.len && q.due[q.head] <= now) {
            fl_agent *a = &f->agents[q.idx[q.head]];
            q.head = (q.head + 1) % q.cap;
            q.len--;
            run_agent(ep, a);
        }
        if (now - last_tick >= TICK_S) {
            if (!ready && fl_prov_done(prov)) {
                ready = now;
                double reg_s = 0, add_s = 0;
                int fails = fl_prov_finish(prov, &reg_s, &add_s);
                prov = NULL;
                printf("fleet: registered %u agents in %.2f s; added in %.2f s; %d failures\n", f->o.n, reg_s,
                       f->o.verifier ? add_s : 0.0, fails);
                printf("fleet: ready\n");
                fflush(stdout);
                if (f->o.provision_only)
                    goto done;
            }
            periodic(f, ep, now, now - last_tick, ready);
            last_tick = now;
            if (ready && f->o.duration > 0 && now - ready >= f->o.duration)
                goto done;
        }
        if (now - last_sweep >= SWEEP_S) {    /* idle timeouts need a run now and then */
            for (unsigned i = 0; i < f->o.n; i++)
                if (!f->agents[i].slow && f->agents[i].srv)
                    qhttp_server_run(f->agents[i].srv);
            last_sweep = now;
        }
    }
done:
    fl_stats_print(f);
    rc = 0;
out:
    if (prov) {
        double a, b;
        fl_prov_finish(prov, &a, &b);
    }
    if (sfd >= 0)
        close(sfd);
    if (ep >= 0)
        close(ep);
    free(q.idx);
    free(q.due);
    return rc;
}
