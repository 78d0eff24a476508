/*
 * Reading, writing and waiting on plain fds: each operation is an `attempt` (one
 * non-blocking syscall) plugged into the generic I/O clause of reactor.c.
 */
#define _GNU_SOURCE /* pipe2, accept4 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/io.h"

static inline uintptr_t cap_len(size_t len)
{
    return len > INT_MAX ? (uintptr_t)INT_MAX : (uintptr_t)len;
}

/* ---- read / write -------------------------------------------------------------------------- */

static int read_attempt(sl_clause_t *c)
{
    for (;;) {
        ssize_t n = read((int)(unsigned)c->arg, c->buf, (size_t)c->w.aux);
        if (n >= 0)
            return (int)n;
        if (errno != EINTR)
            return -errno;
    }
}

/* write(2) to a pipe without a reader raises SIGPIPE, which would kill the process. Block it
 * on this thread for the call (the signal is thread-directed) and consume the one we caused. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    ssize_t n = write(fd, buf, len);
    int e = errno;
    if (n < 0 && e == EPIPE && !sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return n;
}

static int write_attempt(sl_clause_t *c)
{
    int fd = (int)(unsigned)c->arg;
    for (;;) {
        /* Sockets: MSG_NOSIGNAL. Anything else (pipes, ttys) takes the slower path. */
        ssize_t n = send(fd, c->buf, (size_t)c->w.aux, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write_nosigpipe(fd, c->buf, (size_t)c->w.aux);
        if (n >= 0)
            return (int)n;
        if (errno != EINTR)
            return -errno;
    }
}

static const sl__io_op_t read_op = SL__IO_OP(SL__DIR_READ, read_attempt);
static const sl__io_op_t write_op = SL__IO_OP(SL__DIR_WRITE, write_attempt);

ssize_t sl_read_until(int fd, void *buf, size_t len, int64_t deadline)
{
    sl_clause_t c;
    sl__io_clause(&c, &read_op, fd, buf, cap_len(len));
    return sl__wait1(&c, deadline);
}

ssize_t sl_read(int fd, void *buf, size_t len)
{
    return sl_read_until(fd, buf, len, SL_FOREVER);
}

ssize_t sl_try_read(int fd, void *buf, size_t len)
{
    sl_clause_t c;
    sl__io_clause(&c, &read_op, fd, buf, cap_len(len));
    return read_attempt(&c);
}

ssize_t sl_write_until(int fd, const void *buf, size_t len, int64_t deadline)
{
    sl_clause_t c;
    sl__io_clause(&c, &write_op, fd, (void *)buf, cap_len(len));
    return sl__wait1(&c, deadline);
}

ssize_t sl_write(int fd, const void *buf, size_t len)
{
    return sl_write_until(fd, buf, len, SL_FOREVER);
}

ssize_t sl_try_write(int fd, const void *buf, size_t len)
{
    sl_clause_t c;
    sl__io_clause(&c, &write_op, fd, (void *)buf, cap_len(len));
    return write_attempt(&c);
}

int sl_write_all_until(int fd, const void *buf, size_t len, size_t *written, int64_t deadline)
{
    const char *p = buf;
    size_t done = 0;
    int err = 0;
    while (done < len) {
        ssize_t n = sl_write_until(fd, p + done, len - done, deadline);
        if (n < 0) {
            err = (int)n;
            break;
        }
        done += (size_t)n;
    }
    if (written)
        *written = done;
    return err;
}

int sl_write_all(int fd, const void *buf, size_t len, size_t *written)
{
    return sl_write_all_until(fd, buf, len, written, SL_FOREVER);
}

void sl_clause_read(sl_clause_t *c, int fd, void *buf, size_t len)
{
    sl__io_clause(c, &read_op, fd, buf, cap_len(len));
}

/* ---- readiness ------------------------------------------------------------------------------ */

/* c->w.aux holds the interest (SL_READABLE | SL_WRITABLE). */
static int ready_mask(int fd, int events)
{
    struct pollfd p;
    p.fd = fd;
    p.events =
        (short)(((events & SL_READABLE) ? POLLIN : 0) | ((events & SL_WRITABLE) ? POLLOUT : 0));
    p.revents = 0;
    int r;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        return 0;
    if (p.revents & POLLNVAL)
        return SL_EBADF;
    int m = 0;
    if (p.revents & (POLLIN | POLLPRI | POLLHUP | POLLERR))
        m |= SL_READABLE;
    if (p.revents & (POLLOUT | POLLHUP | POLLERR))
        m |= SL_WRITABLE;
    return m & events;
}

static int wait_attempt(sl_clause_t *c)
{
    int m = ready_mask((int)(unsigned)c->arg, (int)c->w.aux);
    return m == 0 ? SL_EAGAIN : m;
}

/* Clause flavour: ready is 0, as select results are. */
static int ready_attempt(sl_clause_t *c)
{
    int m = wait_attempt(c);
    return m > 0 ? 0 : m;
}

static const sl__io_op_t wait_ops[3] = {
    SL__IO_OP(SL__DIR_READ, wait_attempt),
    SL__IO_OP(SL__DIR_WRITE, wait_attempt),
    SL__IO_OP(SL__DIR_ANY, wait_attempt),
};
static const sl__io_op_t readable_op = SL__IO_OP(SL__DIR_READ, ready_attempt);
static const sl__io_op_t writable_op = SL__IO_OP(SL__DIR_WRITE, ready_attempt);

int sl_fd_wait_until(int fd, int events, int64_t deadline)
{
    events &= SL_READABLE | SL_WRITABLE;
    if (!events)
        return SL_EINVAL;
    int dir = events == SL_READABLE   ? SL__DIR_READ
              : events == SL_WRITABLE ? SL__DIR_WRITE
                                      : SL__DIR_ANY;
    sl_clause_t c;
    sl__io_clause(&c, &wait_ops[dir], fd, NULL, (uintptr_t)events);
    return sl__wait1(&c, deadline);
}

int sl_fd_wait(int fd, int events)
{
    return sl_fd_wait_until(fd, events, SL_FOREVER);
}

int sl_fd_poll(int fd, int events)
{
    events &= SL_READABLE | SL_WRITABLE;
    if (!events)
        return SL_EINVAL;
    if (fd < 0)
        return SL_EBADF;
    return ready_mask(fd, events);
}

void sl_clause_readable(sl_clause_t *c, int fd)
{
    sl__io_clause(c, &readable_op, fd, NULL, SL_READABLE);
}

void sl_clause_writable(sl_clause_t *c, int fd)
{
    sl__io_clause(c, &writable_op, fd, NULL, SL_WRITABLE);
}

/* ---- fd helpers ----------------------------------------------------------------------------- */

int sl_fd_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

int sl_pipe(int fds[2])
{
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    return 0;
}
