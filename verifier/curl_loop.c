/* curl_loop.c — libcurl multi handles on one epoll set (curl_loop.h). */
#include "curl_loop.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MOD "verifier"
#define MAX_EVENTS 64

typedef struct shard {
    struct vcurl_loop *l;
    CURLM *multi;
    uint32_t idx;
    double due;                  /* monotonic seconds of libcurl's next timeout action; < 0: none */
    bool acted;                  /* libcurl ran since its messages were last read */
} shard;

struct vcurl_loop {
    int epfd, wakefd;
    shard *sh;
    size_t n;
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* epoll data: the shard (1-based) in the high half, the socket in the low; 0 is the eventfd. */
static uint64_t tag(const shard *s, curl_socket_t fd)
{
    return ((uint64_t)(s->idx + 1) << 32) | (uint32_t)fd;
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    shard *s = userp;
    int epfd = s->l->epfd;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        /* Gone already when libcurl closed it first: nothing to undo then. */
        if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != ENOENT && errno != EBADF)
            qlog(QLOG_ERROR, MOD, "epoll_ctl(DEL): %s", strerror(errno));
        return 0;
    }
    struct epoll_event ev = { .events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                              .data.u64 = tag(s, fd) };
    int rc = epoll_ctl(epfd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0 && (errno == ENOENT || errno == EEXIST))     /* a descriptor number used again */
        rc = epoll_ctl(epfd, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
    if (rc < 0) {
        qlog(QLOG_ERROR, MOD, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    if (!socketp && curl_multi_assign(s->multi, fd, s) != CURLM_OK)   /* marks it as in the set */
        qlog(QLOG_ERROR, MOD, "libcurl: cannot mark socket %d", (int)fd);
    return 0;
}

static int on_timer(CURLM *m, long ms, void *userp)
{
    shard *s = userp;
    (void)m;
    s->due = ms < 0 ? -1 : mono() + (double)ms / 1000.0;
    return 0;
}

vcurl_loop *vcl_new(size_t shards, long maxconnects, qerr *err)
{
    vcurl_loop *l = calloc(1, sizeof *l);
    if (!l || !(l->sh = calloc(shards ? shards : 1, sizeof *l->sh))) {
        free(l);
        qerr_set(err, "out of memory");
        return NULL;
    }
    l->n = shards ? shards : 1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event wev = { .events = EPOLLIN, .data.u64 = 0 };
    if (l->epfd < 0 || l->wakefd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &wev) < 0) {
        qerr_set(err, "poller: cannot set up its event loop: %s", strerror(errno));
        vcl_free(l);
        return NULL;
    }
    for (size_t i = 0; i < l->n; i++) {
        shard *s = &l->sh[i];
        s->l = l;
        s->idx = (uint32_t)i;
        s->due = -1;
        if (!(s->multi = curl_multi_init()) ||
            curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, maxconnects) != CURLM_OK ||
            curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
            curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s) != CURLM_OK ||
            curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
            curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s) != CURLM_OK) {
            qerr_set(err, "poller: cannot set up libcurl");
            vcl_free(l);
            return NULL;
        }
    }
    return l;
}

void vcl_free(vcurl_loop *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        if (l->sh[i].multi)
            curl_multi_cleanup(l->sh[i].multi);     /* may still call on_socket: the set is open */
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    free(l->sh);
    free(l);
}

size_t vcl_shard_of(const vcurl_loop *l, const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *c = id; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    return h % l->n;
}

CURLM *vcl_multi(vcurl_loop *l, size_t i)
{
    return l->sh[i < l->n ? i : 0].multi;
}

void vcl_wake(vcurl_loop *l)
{
    uint64_t one = 1;
    if (write(l->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
        qlog(QLOG_ERROR, MOD, "wake-up eventfd: %s", strerror(errno));
}

static void action(shard *s, curl_socket_t fd, int flags)
{
    int running = 0;
    s->acted = true;
    CURLMcode mc = curl_multi_socket_action(s->multi, fd, flags, &running);
    if (mc != CURLM_OK)
        qlog(QLOG_ERROR, MOD, "libcurl: %s", curl_multi_strerror(mc));
}

/* Timeout actions that are due; returns the earliest next one (or -1). */
static double timeouts(vcurl_loop *l)
{
    double now = mono(), next = -1;
    for (size_t i = 0; i < l->n; i++) {
        shard *s = &l->sh[i];
        if (s->due >= 0 && s->due <= now) {
            s->due = -1;                 /* the action may ask for the next one */
            action(s, CURL_SOCKET_TIMEOUT, 0);
        }
        if (s->due >= 0 && (next < 0 || s->due < next))
            next = s->due;
    }
    return next;
}

static size_t finished(vcurl_loop *l, vcl_done_fn done, void *ctx)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        CURLMsg *m;
        int left;
        /* Transfers end only inside a socket action (nothing here calls curl_multi_perform). */
        if (!l->sh[i].acted)
            continue;
        l->sh[i].acted = false;
        while ((m = curl_multi_info_read(l->sh[i].multi, &left)))
            if (m->msg == CURLMSG_DONE) {
                done(ctx, m->easy_handle, m->data.result);
                n++;
            }
    }
    return n;
}

void vcl_run(vcurl_loop *l, double wait, vcl_done_fn done, void *ctx)
{
    timeouts(l);
    if (finished(l, done, ctx) > 0)
        wait = 0;                        /* their rounds may have scheduled work for now */
    double next = timeouts(l);           /* handles added meanwhile want a first action */
    if (next >= 0 && next - mono() < wait)
        wait = next - mono();
    int timeout = wait <= 0 ? 0 : (int)ceil(wait * 1000.0);
    struct epoll_event evs[MAX_EVENTS];
    int ne = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout);
    if (ne < 0 && errno != EINTR)
        qlog(QLOG_ERROR, MOD, "epoll_wait: %s", strerror(errno));
    for (int i = 0; i < ne; i++) {
        uint64_t t = evs[i].data.u64;
        if (t == 0) {
            uint64_t cnt;
            if (read(l->wakefd, &cnt, sizeof cnt) < 0 && errno != EAGAIN)
                qlog(QLOG_ERROR, MOD, "wake-up eventfd: %s", strerror(errno));
            continue;
        }
        size_t si = (size_t)(t >> 32) - 1;
        if (si >= l->n)
            continue;
        uint32_t e = evs[i].events;
        int flags = (e & EPOLLIN ? CURL_CSELECT_IN : 0) | (e & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                    (e & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        action(&l->sh[si], (curl_socket_t)(uint32_t)t, flags);
    }
    timeouts(l);
    finished(l, done, ctx);
}
