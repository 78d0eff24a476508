/*
 * Signals: a process-wide self-pipe, per-signal pending flags and waiter queues.
 *
 * The handler only write()s the signal number into the pipe (async-signal-safe). The read end
 * is an ordinary fd of every runtime that waits: registered with a worker's epoll like any
 * other, but flagged so that its events drain the pipe (sl__signal_dispatch) instead of waking
 * fd waiters. Draining hands each signal to every task waiting for it, or sets its pending
 * flag when there is none. A task's poll drains too, so a signal that arrived while no runtime
 * had the pipe registered is found by the next wait.
 *
 * This is the one place where sluice keeps process-global state: signal dispositions are
 * process-global, and two runtimes waiting for SIGTERM must share one handler.
 */
#define _GNU_SOURCE /* pipe2, accept4 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"

static const int sig_list[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
#define NSIGS ((int)(sizeof sig_list / sizeof sig_list[0]))

static struct {
    pthread_once_t once;
    int err; /* pipe creation error (set once) */
    _Atomic int rfd, wfd;
    pthread_mutex_t install_mu;
    _Atomic int installed[NSIGS];
    sl_lock_t lock; /* protects pending and q */
    int pending[NSIGS];
    sl_waitq_t q[NSIGS];
} g = {.once = PTHREAD_ONCE_INIT, .rfd = -1, .wfd = -1, .install_mu = PTHREAD_MUTEX_INITIALIZER};

static int slot_of(int signo)
{
    for (int k = 0; k < NSIGS; k++)
        if (sig_list[k] == signo)
            return k;
    return -1;
}

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    int fd = atomic_load_explicit(&g.wfd, memory_order_relaxed);
    if (fd >= 0) {
        /* A full pipe drops the byte: the signal is already pending in it. */
        ssize_t r = write(fd, &b, 1);
        (void)r;
    }
    errno = saved;
}

static void pipe_init(void)
{
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        g.err = -errno;
        return;
    }
    atomic_store(&g.rfd, fds[0]);
    atomic_store(&g.wfd, fds[1]);
}

int sl_signal_listen(int signo)
{
    int k = slot_of(signo);
    if (k < 0)
        return SL_EINVAL;
    if (atomic_load_explicit(&g.installed[k], memory_order_acquire))
        return 0;
    pthread_once(&g.once, pipe_init);
    if (g.err)
        return g.err;
    int r = 0;
    pthread_mutex_lock(&g.install_mu);
    if (!atomic_load_explicit(&g.installed[k], memory_order_relaxed)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(signo, &sa, NULL) < 0)
            r = -errno;
        else
            atomic_store_explicit(&g.installed[k], 1, memory_order_release);
    }
    pthread_mutex_unlock(&g.install_mu);
    return r;
}

void sl__signal_dispatch(void)
{
    int rfd = atomic_load_explicit(&g.rfd, memory_order_acquire);
    if (rfd < 0)
        return;
    unsigned char buf[64];
    for (;;) {
        ssize_t n = read(rfd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        /* Arrivals of one signal within a batch coalesce, as the pending flag does. */
        int seen = 0;
        for (ssize_t i = 0; i < n; i++) {
            int k = slot_of(buf[i]);
            if (k >= 0)
                seen |= 1 << k;
        }
        sl_waiter_t *wake = NULL;
        sl__lock(&g.lock);
        for (int k = 0; k < NSIGS; k++)
            if ((seen & (1 << k)) && sl__waitq_claim_all(&g.q[k], 0, &wake) == 0)
                g.pending[k] = 1;
        sl__unlock(&g.lock);
        sl__waiters_wake(wake);
    }
}

static int take_pending(int k)
{
    sl__lock(&g.lock);
    int had = g.pending[k];
    g.pending[k] = 0;
    sl__unlock(&g.lock);
    return had;
}

int sl_signal_try_wait(int signo)
{
    int r = sl_signal_listen(signo);
    if (r)
        return r;
    sl__signal_dispatch();
    return take_pending(slot_of(signo)) ? 0 : SL_EAGAIN;
}

/* ---- The clause: c->arg = signo, c->obj = the pipe's fd entry, c->arg64 = its generation. */

static int sig_poll(sl_clause_t *c)
{
    int signo = (int)c->arg;
    int r = sl_signal_listen(signo);
    if (r)
        return r;
    if (!c->obj) {
        c->obj = sl__fd_get(sl__io_self(), atomic_load(&g.rfd), 1);
        if (!c->obj)
            return SL_ENOMEM;
    }
    sl__fd_t *e = c->obj;
    c->arg64 = atomic_load_explicit(&e->gen, memory_order_acquire);
    sl__signal_dispatch();
    return take_pending(slot_of(signo)) ? 0 : SL_EAGAIN;
}

static int sig_arm(sl_clause_t *c)
{
    int k = slot_of((int)c->arg);
    int r = sl__fd_register(c->obj, atomic_load(&g.rfd), (uint32_t)c->arg64, 1);
    if (r) {
        if (!sl__claim_self(c))
            return SL__LOST;
        c->w.res = r;
        return SL__DONE;
    }
    /* A signal written to the pipe after our poll drained it either reaches a drain that
     * sees this waiter (pushed under g.lock) or sets the pending flag checked here. */
    sl__lock(&g.lock);
    if (g.pending[k]) {
        if (sl__claim_self(c)) {
            g.pending[k] = 0;
            c->w.res = 0;
            r = SL__DONE;
        } else {
            r = SL__LOST;
        }
    } else {
        sl__waitq_push(&g.q[k], &c->w);
        r = SL__ARMED;
    }
    sl__unlock(&g.lock);
    return r;
}

static void sig_disarm(sl_clause_t *c)
{
    int k = slot_of((int)c->arg);
    sl__lock(&g.lock);
    sl__waitq_remove(&g.q[k], &c->w);
    sl__unlock(&g.lock);
}

static const struct sl_clause_ops sig_ops = {sig_poll, sig_arm, sig_disarm, NULL};

void sl_clause_signal(sl_clause_t *c, int signo)
{
    memset(c, 0, sizeof *c);
    c->ops = &sig_ops;
    c->arg = (uintptr_t)(unsigned)signo;
}

int sl_signal_wait_until(int signo, int64_t deadline)
{
    int r = sl_signal_listen(signo);
    if (r)
        return r;
    sl_clause_t c;
    sl_clause_signal(&c, signo);
    return sl__wait1(&c, deadline);
}

int sl_signal_wait(int signo)
{
    return sl_signal_wait_until(signo, SL_FOREVER);
}
