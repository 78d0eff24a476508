/*
 * The reactor: a per-runtime fd table, registration with the workers' epoll sets, readiness
 * events, and sl_close().
 *
 * Every fd a task waits on is registered once, edge-triggered for read and write, with the
 * epoll set of the worker that first waited on it; the registration stays until sl_close().
 * An event bumps the direction's readiness sequence and wakes every waiter of that direction
 * (on any worker, through the claim protocol). Operations try their syscall first and wait only
 * after EAGAIN; the sequence snapshot taken before the syscall closes the race with an event
 * that arrives between the EAGAIN and the waiter's registration. docs/design/io.md has the
 * details.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "io/io.h"

#define EV_READ  (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)
#define EV_WRITE (EPOLLOUT | EPOLLHUP | EPOLLERR)

/* ---- The fd table ------------------------------------------------------------------------- */

static inline void fd_slot(int fd, int *k, size_t *off)
{
    uint64_t i = (uint64_t)fd + SL__FD_SEG0;
    int msb = 63 - __builtin_clzll(i);
    *k = msb - __builtin_ctz(SL__FD_SEG0);
    *off = (size_t)(i - ((uint64_t)SL__FD_SEG0 << *k));
}

sl__fd_t *sl__fd_get(sl__io_t *io, int fd, int create)
{
    if (fd < 0 || !io)
        return NULL;
    int k;
    size_t off;
    fd_slot(fd, &k, &off);
    sl__fd_t *seg = atomic_load_explicit(&io->seg[k], memory_order_acquire);
    if (SL__LIKELY(seg != NULL))
        return &seg[off];
    if (!create)
        return NULL;
    /* Zeroed memory is a valid set of entries: unlocked, generation 0, unregistered. */
    size_t n = (size_t)SL__FD_SEG0 << k;
    sl__fd_t *fresh = sl__calloc(io->rt, n * sizeof *fresh);
    if (!fresh)
        return NULL;
    sl__fd_t *expect = NULL;
    if (!atomic_compare_exchange_strong_explicit(&io->seg[k], &expect, fresh, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        sl__free(io->rt, fresh, n * sizeof *fresh);
        return &expect[off];
    }
    return &fresh[off];
}

sl__io_t *sl__io_self(void)
{
    return sl__self_checked("a sluice I/O call")->rt->io;
}

int sl__io_init(sl_runtime_t *rt)
{
    sl__io_t *io = sl__calloc(rt, sizeof *io);
    if (!io)
        return SL_ENOMEM;
    io->rt = rt;
    rt->io = io;
    return 0;
}

void sl__io_fini(sl_runtime_t *rt)
{
    sl__io_t *io = rt->io;
    if (!io)
        return;
    for (int i = 0; i < rt->nworkers; i++) /* every registration goes below */
        atomic_store_explicit(&rt->workers[i]->io_regs, 0, memory_order_relaxed);
    /* Every task has ended. Take our fds out of the epoll sets, which outlive this block_on:
     * a later block_on starts a fresh table whose generations would match stale events. */
    for (int k = 0; k < SL__FD_NSEGS; k++) {
        sl__fd_t *seg = atomic_load(&io->seg[k]);
        if (!seg)
            continue;
        size_t n = (size_t)SL__FD_SEG0 << k;
        for (size_t i = 0; i < n; i++) {
            if (atomic_load_explicit(&seg[i].state, memory_order_relaxed) == SL__FD_REG) {
                int fd = (int)(((size_t)SL__FD_SEG0 << k) + i - SL__FD_SEG0);
                epoll_ctl(seg[i].epfd, EPOLL_CTL_DEL, fd, NULL);
            }
        }
        sl__free(rt, seg, n * sizeof *seg);
    }
    rt->io = NULL;
    sl__free(rt, io, sizeof *io);
}

/* ---- Registration ------------------------------------------------------------------------- */

/* One fd fewer in the epoll set epfd: its worker may skip polling once it has none. */
static void regs_drop(sl_runtime_t *rt, int epfd)
{
    for (int i = 0; i < rt->nworkers; i++)
        if (rt->workers[i]->epfd == epfd) {
            atomic_fetch_sub_explicit(&rt->workers[i]->io_regs, 1, memory_order_relaxed);
            return;
        }
}

static void claim_all_dirs(sl__fd_t *e, int res, sl_waiter_t **wake)
{
    for (int d = 0; d < 3; d++)
        sl__waitq_claim_all(&e->q[d], res, wake);
}

int sl__fd_register(sl__fd_t *e, int fd, uint32_t gen, int is_signal)
{
    for (;;) {
        int st = atomic_load_explicit(&e->state, memory_order_acquire);
        if (st == SL__FD_REG || st == SL__FD_REGISTERING)
            return 0; /* a registering task fails every waiter if its ADD fails */
        if (st == SL__FD_CLOSING) {
            /* Our snapshot predates the close: the fd we knew is gone. Otherwise the number
             * was reused while sl_close() finishes: wait the two syscalls out. */
            if (atomic_load_explicit(&e->gen, memory_order_acquire) != gen)
                return SL_ECLOSED;
            sched_yield();
            continue;
        }
        sl__lock(&e->lock);
        if (atomic_load_explicit(&e->gen, memory_order_relaxed) != gen) {
            sl__unlock(&e->lock);
            return SL_ECLOSED;
        }
        if (atomic_load_explicit(&e->state, memory_order_relaxed) != SL__FD_UNREG) {
            sl__unlock(&e->lock);
            continue;
        }
        atomic_store_explicit(&e->state, SL__FD_REGISTERING, memory_order_relaxed);
        e->is_signal = is_signal;
        sl__unlock(&e->lock);

        /* The syscall runs without the lock; the REGISTERING state keeps others out. */
        sl__worker_t *w = sl__worker();
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = ((uint64_t)gen << 32) | (uint32_t)(fd + 1);
        int r = epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (r < 0 && errno == EEXIST) /* a stale registration of this number: refresh it */
            r = epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev);
        int err = r < 0 ? -errno : 0;

        sl_waiter_t *wake = NULL;
        sl__lock(&e->lock);
        if (!err) {
            e->epfd = w->epfd;
            /* Before the state: a close that sees REG finds the count to take it from. */
            atomic_fetch_add_explicit(&w->io_regs, 1, memory_order_relaxed);
            atomic_store_explicit(&e->state, SL__FD_REG, memory_order_release);
        } else {
            atomic_store_explicit(&e->state, SL__FD_UNREG, memory_order_release);
            claim_all_dirs(e, err, &wake);
        }
        sl__unlock(&e->lock);
        sl__waiters_wake(wake);
        return err;
    }
}

/* ---- Events ---------------------------------------------------------------------------------- */

void sl__io_event(sl__worker_t *w, uint64_t data, uint32_t events)
{
    sl__io_t *io = w->rt->io;
    int fd = (int)((uint32_t)data - 1);
    uint32_t gen = (uint32_t)(data >> 32);
    sl__fd_t *e = sl__fd_get(io, fd, 0);
    if (!e)
        return;
    int rd = (events & EV_READ) != 0;
    int wr = (events & EV_WRITE) != 0;
    sl_waiter_t *wake = NULL;
    sl__lock(&e->lock);
    if (atomic_load_explicit(&e->gen, memory_order_relaxed) != gen) {
        /* For an fd closed (and maybe reused) since it was registered: drop it (nginx). */
        sl__unlock(&e->lock);
        return;
    }
    if (rd) {
        atomic_fetch_add_explicit(&e->seq[SL__DIR_READ], 1, memory_order_release);
        sl__waitq_claim_all(&e->q[SL__DIR_READ], 0, &wake);
    }
    if (wr) {
        atomic_fetch_add_explicit(&e->seq[SL__DIR_WRITE], 1, memory_order_release);
        sl__waitq_claim_all(&e->q[SL__DIR_WRITE], 0, &wake);
    }
    if (rd || wr)
        sl__waitq_claim_all(&e->q[SL__DIR_ANY], 0, &wake);
    int is_signal = e->is_signal;
    sl__unlock(&e->lock);
    sl__waiters_wake(wake);
    if (is_signal && rd)
        sl__signal_dispatch();
}

/* ---- The generic I/O clause ------------------------------------------------------------------ */

static inline uint32_t seq_of(sl__fd_t *e, int dir)
{
    if (dir == SL__DIR_ANY)
        return atomic_load_explicit(&e->seq[SL__DIR_READ], memory_order_acquire) +
               atomic_load_explicit(&e->seq[SL__DIR_WRITE], memory_order_acquire);
    return atomic_load_explicit(&e->seq[dir], memory_order_acquire);
}

void sl__io_clause(sl_clause_t *c, const sl__io_op_t *op, int fd, void *buf, uintptr_t aux)
{
    memset(c, 0, sizeof *c);
    c->ops = &op->ops;
    c->arg = (uintptr_t)(unsigned)fd;
    c->buf = buf;
    c->w.aux = aux;
}

int sl__io_poll(sl_clause_t *c)
{
    const sl__io_op_t *op = (const sl__io_op_t *)c->ops;
    int fd = (int)(unsigned)c->arg;
    if (fd < 0)
        return SL_EBADF;
    sl__fd_t *e = c->obj;
    if (!e) {
        sl__io_t *io = sl__io_self();
        if (!(e = sl__fd_get(io, fd, 0))) {
            /* The first fd of its range: the table's segment for it is allocated now, and
             * segments double with the fd. A number that is no open fd (a stale or garbage
             * one, as high as INT_MAX) must not cost that, nor fail as SL_ENOMEM. */
            if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
                return SL_EBADF;
            if (!(e = sl__fd_get(io, fd, 1)))
                return SL_ENOMEM;
        }
        c->obj = e;
    }
    /* Snapshot before the syscall: any event after this point changes the sequence. */
    uint32_t gen = atomic_load_explicit(&e->gen, memory_order_acquire);
    uint32_t seq = seq_of(e, op->dir);
    int r = op->attempt(c);
    if (r == SL_EAGAIN)
        c->arg64 = (int64_t)(((uint64_t)gen << 32) | seq);
    return r;
}

static int finish_self(sl_clause_t *c, int res)
{
    if (!sl__claim_self(c))
        return SL__LOST;
    c->w.res = res;
    return SL__DONE;
}

int sl__io_arm(sl_clause_t *c)
{
    const sl__io_op_t *op = (const sl__io_op_t *)c->ops;
    sl__fd_t *e = c->obj;
    int fd = (int)(unsigned)c->arg;
    uint32_t gen = (uint32_t)((uint64_t)c->arg64 >> 32);
    uint32_t snap = (uint32_t)(uint64_t)c->arg64;
    if (!e)
        return finish_self(c, SL_ENOMEM);
    for (;;) {
        int r = sl__fd_register(e, fd, gen, 0);
        if (r)
            return finish_self(c, r);
        sl__lock(&e->lock);
        if (atomic_load_explicit(&e->gen, memory_order_relaxed) != gen) {
            r = finish_self(c, SL_ECLOSED);
        } else if (atomic_load_explicit(&e->state, memory_order_relaxed) == SL__FD_UNREG) {
            /* A registration we relied on failed (its waiters got the error): try ourselves. */
            sl__unlock(&e->lock);
            continue;
        } else if (seq_of(e, op->dir) != snap) {
            r = finish_self(c, 0); /* readiness arrived after our syscall: try again */
        } else {
            sl__waitq_push(&e->q[op->dir], &c->w);
            r = SL__ARMED;
        }
        sl__unlock(&e->lock);
        return r;
    }
}

void sl__io_disarm(sl_clause_t *c)
{
    const sl__io_op_t *op = (const sl__io_op_t *)c->ops;
    sl__fd_t *e = c->obj;
    if (!e)
        return;
    sl__lock(&e->lock);
    sl__waitq_remove(&e->q[op->dir], &c->w);
    sl__unlock(&e->lock);
}

int sl__io_complete(sl_clause_t *c)
{
    /* 0 means "became ready": the wait loop polls (runs the syscall) again. */
    return c->w.res ? c->w.res : SL_EAGAIN;
}

/* ---- Close ------------------------------------------------------------------------------------
 */

int sl_close(int fd)
{
    if (fd < 0)
        return SL_EBADF;
    sl_task_t *t = sl__self();
    sl__fd_t *e = t ? sl__fd_get(t->rt->io, fd, 0) : NULL;
    int was = SL__FD_UNREG, epfd = -1;
    if (e) {
        sl_waiter_t *wake = NULL;
        sl__lock(&e->lock);
        while (atomic_load_explicit(&e->state, memory_order_relaxed) == SL__FD_REGISTERING) {
            sl__unlock(&e->lock);
            sched_yield();
            sl__lock(&e->lock);
        }
        was = atomic_load_explicit(&e->state, memory_order_relaxed);
        epfd = e->epfd;
        atomic_fetch_add_explicit(&e->gen, 1, memory_order_release);
        atomic_store_explicit(&e->state, SL__FD_CLOSING, memory_order_release);
        claim_all_dirs(e, SL_ECLOSED, &wake);
        sl__unlock(&e->lock);
        sl__waiters_wake(wake);
    }
    /* Deregister explicitly: a dup() of the fd elsewhere would keep the epoll entry alive. */
    if (was == SL__FD_REG) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
        regs_drop(t->rt, epfd);
    }
    int r = close(fd);
    int err = (r < 0 && errno != EINTR) ? -errno : 0; /* Linux frees the fd even on EINTR */
    if (e) {
        sl__lock(&e->lock);
        atomic_store_explicit(&e->state, SL__FD_UNREG, memory_order_release);
        sl__unlock(&e->lock);
    }
    return err;
}
