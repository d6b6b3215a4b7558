/* fleet_loop.c — the event loop: one epoll set holds the fleet's server's epoll fd (every
 * agent's connections, fleet_serve.c), a signalfd, and a timeout for the periodic work (list
 * growth, scheduled faults, idle-connection timeouts). A slow agent's reply is held
 * (qhttp_req_hold) and released slow_ms later, so each of its answers is late by that much. */
#include "fleet.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SIG_TAG  1u
#define SRV_TAG  2u
#define TICK_S   0.25
#define EVENTS   64
#define RUNS     16              /* server runs in a row while it has buffered work */

struct fl_delayq {               /* FIFO: every slow agent waits the same time */
    qhttp_req **req;
    double *due;
    size_t head, len, cap;
};

int fl_delay_push(fleet *f, qhttp_req *r)
{
    struct fl_delayq *q = f->delay;
    if (!q || q->len == q->cap)
        return -1;
    size_t at = (q->head + q->len) % q->cap;
    q->req[at] = r;
    q->due[at] = fl_now() + f->o.slow_ms / 1000.0;
    q->len++;
    return 0;
}

/* Runs the server until it has no work its fd would not signal; true when some is left. */
static bool run_server(fleet *f)
{
    for (int i = 0; i < RUNS; i++) {
        int rc = qhttp_server_run(f->srv);
        if (rc < 0)
            fprintf(stderr, "fleet: the server's run failed\n");
        if (rc != 1)
            return false;
    }
    return true;
}

static void release_due(fleet *f, double now)
{
    struct fl_delayq *q = f->delay;
    while (q->len && q->due[q->head] <= now) {
        qhttp_req_release(q->req[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
}

static uint32_t rnd(void)
{
    static uint32_t s = 2463534242u;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
}

/* Growth and faults; `ready` is when the fault times start (0: not yet). */
static void periodic(fleet *f, double now, double dt, double ready)
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
    if (!evil_done && f->o.evil && now - ready >= f->o.evil_at) {
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
            if (!a->dead || a->down)
                continue;
            a->down = true;        /* new connections fail their handshake, open ones hang up */
            n++;
        }
        printf("fleet: dead %u agents stopped answering\n", n);
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

static int on_signal(fleet *f, int sfd, double *faults_t0)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGUSR1)
            fl_stats_print(f);
        else if (si.ssi_signo == SIGUSR2 && f->o.faults_on_usr2 && *faults_t0 == 0) {
            *faults_t0 = fl_now();
            printf("fleet: fault clock started\n");
            fflush(stdout);
        }
        else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            return 1;
    }
    return 0;
}

static int start_server(fleet *f, int ep, qerr *err)
{
    double t = fl_now();
    if (fl_api_start(f, err) < 0)
        return -1;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = SRV_TAG };
    int fd = qhttp_server_poll_fd(f->srv);
    if (fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        return qerr_set(err, "cannot poll the fleet's server: %s", strerror(errno));
    printf("fleet: listening %u agents on %s..%s port %u, one socket for all (%.1f s)\n", f->o.n, f->agents[0].ip,
           f->agents[f->o.n - 1].ip, f->o.port, fl_now() - t);
    fflush(stdout);
    return 0;
}

/* Before the server stops: every held reply goes (libmicrohttpd may not stop with suspended
 * connections). */
static void release_all(fleet *f)
{
    if (!f->srv)
        return;
    release_due(f, 1e300);
    run_server(f);
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
    /* a slow agent has one request at a time on each of its few connections */
    size_t cap = (size_t)f->o.n * 4;
    struct fl_delayq q = { .req = calloc(cap, sizeof *q.req), .due = calloc(cap, sizeof *q.due), .cap = cap };
    f->delay = &q;
    fl_prov *prov = NULL;
    int rc = -1;
    if (ep < 0 || sfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) < 0 || !q.req || !q.due) {
        qerr_set(err, "event loop set-up failed: %s", strerror(errno));
        goto out;
    }
    if ((!f->o.provision_only && start_server(f, ep, err) < 0) || !(prov = fl_prov_start(f, err)))
        goto out;
    double ready = 0, last_tick = fl_now(), faults_t0 = 0;   /* when the fault times start */
    bool more = false;                 /* the server has work its fd will not signal */
    struct epoll_event evs[EVENTS];
    for (;;) {
        double now = fl_now();
        double next = last_tick + TICK_S;
        if (q.len && q.due[q.head] < next)
            next = q.due[q.head];
        int wait_ms = more ? 0 : next > now ? (int)((next - now) * 1000.0) + 1 : 0;
        int n = epoll_wait(ep, evs, EVENTS, wait_ms);
        if (n < 0 && errno != EINTR) {
            qerr_set(err, "epoll_wait: %s", strerror(errno));
            goto out;
        }
        now = fl_now();
        bool run = more;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 == SIG_TAG && on_signal(f, sfd, &faults_t0))
                goto done;
            if (evs[i].data.u32 == SRV_TAG)
                run = true;
        }
        if (q.len && q.due[q.head] <= now) {
            release_due(f, now);
            run = true;
        }
        if (now - last_tick >= TICK_S) {
            if (!ready && fl_prov_done(prov)) {
                ready = now;
                if (!f->o.faults_on_usr2)
                    faults_t0 = ready;
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
            periodic(f, now, now - last_tick, ready ? faults_t0 : 0);
            last_tick = now;
            run = true;                /* idle timeouts need a run now and then */
            if (ready && f->o.duration > 0 && now - ready >= f->o.duration)
                goto done;
        }
        more = run && f->srv && run_server(f);
    }
done:
    fl_stats_print(f);
    rc = 0;
out:
    release_all(f);
    f->delay = NULL;
    if (prov) {
        double a, b;
        fl_prov_finish(prov, &a, &b);
    }
    if (sfd >= 0)
        close(sfd);
    if (ep >= 0)
        close(ep);
    free(q.req);
    free(q.due);
    return rc;
}
