/*
 * Internal: the reactor's fd table and the generic "syscall, or wait for readiness" clause
 * that every I/O operation is built on. docs/design/io.md explains the design.
 */
#ifndef SLUICE_IO_IO_H
#define SLUICE_IO_IO_H

#include "core/rt.h"

/* Registration states of an fd entry. */
enum {
    SL__FD_UNREG = 0,       /* not in any epoll set */
    SL__FD_REGISTERING = 1, /* a task is running EPOLL_CTL_ADD (without the lock) */
    SL__FD_REG = 2,         /* in e->epfd's set, edge-triggered, read and write */
    SL__FD_CLOSING = 3      /* sl_close() is removing and closing it */
};

/* Readiness directions: the index of the wait queue and of the sequence counter. */
enum { SL__DIR_READ = 0, SL__DIR_WRITE = 1, SL__DIR_ANY = 2 };

/*
 * One slot of the fd table, indexed by the fd number. Entries are never freed while the
 * runtime's I/O state lives, so an epoll event can always look its entry up safely.
 * gen, seq and state are written under lock and read without it (snapshots before a syscall).
 */
typedef struct sl__fd {
    sl_lock_t lock;
    _Atomic uint32_t gen;    /* bumped by sl_close(); stamped into the epoll data */
    _Atomic uint32_t seq[2]; /* readiness events seen, per direction */
    _Atomic int state;       /* SL__FD_* */
    int epfd;                /* the epoll set it is registered with (state REG) */
    int is_signal;           /* the signal self-pipe: events dispatch signals */
    sl_waitq_t q[3];         /* waiters for read, write, either */
} sl__fd_t;

/* The fd table: segments of doubling size, so growth never moves an entry. Segment k holds
 * SL__FD_SEG0 << k entries; 26 segments cover every non-negative int. */
#define SL__FD_SEG0  64
#define SL__FD_NSEGS 26

typedef struct sl__io {
    sl_runtime_t *rt;
    _Atomic(sl__fd_t *) seg[SL__FD_NSEGS];
} sl__io_t;

/* The entry of fd in the running task's runtime, creating its segment if needed (NULL when
 * out of memory or fd < 0). */
sl__fd_t *sl__fd_get(sl__io_t *io, int fd, int create);
/* The calling task's runtime I/O state. */
sl__io_t *sl__io_self(void);
/* Registers fd with the calling worker's epoll unless it is registered (see reactor.c).
 * gen is the generation the caller saw; returns 0, SL_ECLOSED or a registration error. */
int sl__fd_register(sl__fd_t *e, int fd, uint32_t gen, int is_signal);

/*
 * The generic I/O clause. An operation is a non-blocking syscall (`attempt`) that returns its
 * result, or SL_EAGAIN when the fd is not ready. poll snapshots the entry's generation and the
 * direction's readiness sequence, then attempts; arm registers the fd and, under the entry
 * lock, waits only if neither changed since the snapshot (else the wait completes at once and
 * complete() asks sl__wait to try again). Clause fields:
 *   c->arg    the fd
 *   c->arg64  generation << 32 | sequence snapshot, taken by the last poll
 *   c->obj    the fd entry (looked up by the first poll)
 *   c->buf, c->w.aux   the operation's own arguments (buffer, length, flags)
 */
typedef struct sl__io_op {
    struct sl_clause_ops ops; /* first: c->ops points here */
    int dir;                  /* SL__DIR_* */
    int (*attempt)(sl_clause_t *c);
} sl__io_op_t;

int sl__io_poll(sl_clause_t *c);
int sl__io_arm(sl_clause_t *c);
void sl__io_disarm(sl_clause_t *c);
int sl__io_complete(sl_clause_t *c);

#define SL__IO_OP(dir, attempt)                                                     \
    {                                                                               \
        {sl__io_poll, sl__io_arm, sl__io_disarm, sl__io_complete}, (dir), (attempt) \
    }

/* Fills a clause for op on fd. */
void sl__io_clause(sl_clause_t *c, const sl__io_op_t *op, int fd, void *buf, uintptr_t aux);

/* Signals (signal.c): drains the self-pipe and hands what it read to the waiters. */
void sl__signal_dispatch(void);

#endif /* SLUICE_IO_IO_H */
