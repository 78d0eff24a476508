/*
 * sluice: non-blocking fd I/O on the runtime's epoll reactor.
 *
 * Every function takes and returns plain int fds. A blocking call tries its syscall first and,
 * on EAGAIN, suspends the calling task (never the worker thread) until the reactor reports the
 * fd ready, then tries again. The fd must be in non-blocking mode: every fd that sluice creates
 * is (O_NONBLOCK | O_CLOEXEC); for others call sl_fd_nonblock() first.
 *
 * The reactor: the first wait on an fd registers it, edge-triggered, with the epoll set of the
 * worker the waiting task runs on; it stays registered until sl_close(). Tasks on any worker
 * may wait on it. Regular files are always ready to the kernel (poll(2)), so no call here
 * waits on one: a read or write blocks the worker for as long as the disk takes, and epoll
 * would refuse to register one (SL_EPERM) if a wait ever got that far; use sl_blocking() for
 * file I/O. Registering can fail, and then every call here that had to wait
 * returns the failure, having waited for nothing: SL_ENOMEM (the fd table could not grow) or
 * epoll_ctl(2)'s error (SL_EPERM, SL_ENOSPC at the per-user watch limit, SL_ENOMEM). The
 * networking calls of <sluice/net.h> wait through the same reactor and can return the same.
 *
 * Close fds you have waited on with sl_close(), not close(): sl_close() deregisters the fd,
 * wakes every task waiting on it with SL_ECLOSED, and only then closes it. A plain close()
 * leaves the table believing the number is registered, and a later fd with that number would
 * never be woken.
 *
 * Results: counts are returned as non-negative ssize_t values, failures as negative SL_E* codes
 * (-errno). Each call moves at most INT_MAX bytes (a short count, never an error).
 */
#ifndef SLUICE_IO_H
#define SLUICE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sluice/select.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

/* Readiness interest and results of sl_fd_wait() / sl_fd_poll(). */
#define SL_READABLE 1
#define SL_WRITABLE 2

/**
 * Reads up to len bytes into buf, waiting until at least one byte (or end of file) is there.
 *
 * Waits. Returns the number of bytes read (0 = end of file, or len == 0), SL_ECANCELED if the
 * task is cancelled, SL_ETIMEDOUT inside an expired sl_timeout scope, SL_ECLOSED if another
 * task sl_close()d the fd meanwhile, the read(2) error (SL_EBADF, SL_ECONNRESET, ...), or a
 * registration failure (see the top of this header). On failure nothing was read.
 */
SL_API ssize_t sl_read(int fd, void *buf, size_t len);

/**
 * As sl_read(), giving up at the absolute deadline (sl_now() clock).
 *
 * Waits. Returns as sl_read(); also SL_ETIMEDOUT when the deadline passes first.
 */
SL_API ssize_t sl_read_until(int fd, void *buf, size_t len, int64_t deadline);

/**
 * Reads what is available without waiting.
 *
 * Never waits; callable from any thread. Returns the bytes read (0 = end of file), SL_EAGAIN
 * when nothing is available, or the read(2) error.
 */
SL_API ssize_t sl_try_read(int fd, void *buf, size_t len);

/**
 * Writes up to len bytes from buf, waiting until at least one byte can be written.
 *
 * Waits. A reader that has gone gives SL_EPIPE, never SIGPIPE (sockets use MSG_NOSIGNAL, other
 * fds block SIGPIPE on the thread around the write).
 * Returns the bytes written (possibly fewer than len), SL_ECANCELED, SL_ETIMEDOUT (expired
 * timeout scope), SL_ECLOSED (sl_close()d meanwhile), the write error (SL_EPIPE,
 * SL_ECONNRESET, SL_EBADF, ...), or a registration failure (see the top of this header). On
 * failure nothing was written.
 */
SL_API ssize_t sl_write(int fd, const void *buf, size_t len);

/**
 * As sl_write(), giving up at the absolute deadline.
 *
 * Waits. Returns as sl_write(); also SL_ETIMEDOUT.
 */
SL_API ssize_t sl_write_until(int fd, const void *buf, size_t len, int64_t deadline);

/**
 * Writes what fits without waiting.
 *
 * Never waits; callable from any thread. Returns the bytes written, SL_EAGAIN when nothing
 * fits, or the write error.
 */
SL_API ssize_t sl_try_write(int fd, const void *buf, size_t len);

/**
 * Writes all len bytes, waiting as often as needed.
 *
 * Waits. Returns 0 when everything was written, else the error that stopped it (as
 * sl_write()); *written (if not NULL) receives how many bytes were written either way, so a
 * failure midway tells how far it got.
 */
SL_API int sl_write_all(int fd, const void *buf, size_t len, size_t *written);

/**
 * As sl_write_all(), giving up at the absolute deadline (SL_ETIMEDOUT, *written tells how
 * much went out).
 */
SL_API int sl_write_all_until(int fd, const void *buf, size_t len, size_t *written,
                              int64_t deadline);

/**
 * Waits until fd is readable and/or writable (events: SL_READABLE, SL_WRITABLE or both).
 *
 * Waits. Returns the ready subset of events (> 0; a hang-up or error condition counts as
 * ready for both, so the next read or write reports it), SL_EINVAL (events empty),
 * SL_ECANCELED, SL_ETIMEDOUT (expired timeout scope), SL_ECLOSED (sl_close()d meanwhile),
 * SL_EBADF, or a registration failure (SL_ENOMEM, SL_EPERM, SL_ENOSPC: see the top of this
 * header).
 */
SL_API int sl_fd_wait(int fd, int events);

/**
 * As sl_fd_wait(), giving up at the absolute deadline (SL_ETIMEDOUT).
 */
SL_API int sl_fd_wait_until(int fd, int events, int64_t deadline);

/**
 * Reports the ready subset of events now (0 if none), without waiting.
 *
 * Never waits; callable from any thread. Returns the mask, SL_EINVAL, SL_EBADF, or another
 * poll(2) error (SL_ENOMEM).
 */
SL_API int sl_fd_poll(int fd, int events);

/**
 * Closes fd: deregisters it from the reactor, wakes every task waiting on it (their calls
 * return SL_ECLOSED), then close()s it.
 *
 * Never waits. Call it from a task of the runtime that waited on fd (outside a task it is a
 * plain close()). Returns 0, SL_EBADF (fd was not open), or another close(2) error (SL_EIO,
 * SL_ENOSPC: a write-back that failed; the fd is released all the same). An EINTR from
 * close(2) counts as success, as the fd is released anyway on Linux.
 */
SL_API int sl_close(int fd);

/**
 * Puts fd in non-blocking mode (O_NONBLOCK), as sluice's waiting calls require.
 *
 * Never waits. Returns 0 or SL_EBADF.
 */
SL_API int sl_fd_nonblock(int fd);

/**
 * Creates a pipe, both ends O_NONBLOCK | O_CLOEXEC: fds[0] reads, fds[1] writes.
 *
 * Never waits. The fds are owned by the caller: release them with sl_close(). Returns 0,
 * SL_EMFILE, SL_ENOMEM, or another pipe2(2) error as -errno (ENFILE: the system's file table
 * is full; sl_strerror() names it).
 */
SL_API int sl_pipe(int fds[2]);

/**
 * A select clause that completes (res = 0) when fd is readable (or hung up / in error).
 *
 * Never waits. res may also be SL_ECLOSED (sl_close()d), SL_EBADF or a registration failure
 * (SL_ENOMEM, SL_EPERM, SL_ENOSPC: see the top of this header). Readiness is
 * checked afresh (poll(2)) each time: a clause that loses leaves nothing consumed.
 */
SL_API void sl_clause_readable(sl_clause_t *c, int fd);

/**
 * A select clause that completes (res = 0) when fd is writable (or hung up / in error).
 *
 * Never waits. res as sl_clause_readable().
 */
SL_API void sl_clause_writable(sl_clause_t *c, int fd);

/**
 * A select clause that reads up to len bytes into buf; res = bytes read (0 = end of file) or
 * the error, as sl_read(). Only a winning clause reads: the others leave the data in the fd.
 *
 * Never waits. buf is borrowed until the select returns.
 */
SL_API void sl_clause_read(sl_clause_t *c, int fd, void *buf, size_t len);

#endif /* SLUICE_IO_H */
