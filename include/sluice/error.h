/*
 * sluice: error codes.
 *
 * Every sluice function that can fail returns an int: 0 (or a non-negative value where the
 * function says so) on success, a negative SL_E* code on failure. Codes that have an errno
 * equivalent are equal to -errno; codes specific to sluice live in a reserved range below
 * -30000. Codes are never renumbered.
 */
#ifndef SLUICE_ERROR_H
#define SLUICE_ERROR_H

#include <errno.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

/*
 * X(name, value, message). The table drives the enum, sl_strerror() and sl_err_name().
 */
#define SL_ERRNO_MAP(X)                                              \
    X(EPERM, -EPERM, "operation not permitted")                      \
    X(ENOENT, -ENOENT, "no such file or directory")                  \
    X(EINTR, -EINTR, "interrupted system call")                      \
    X(EIO, -EIO, "i/o error")                                        \
    X(EBADF, -EBADF, "bad file descriptor")                          \
    X(EAGAIN, -EAGAIN, "resource temporarily unavailable")           \
    X(ENOMEM, -ENOMEM, "not enough memory")                          \
    X(EACCES, -EACCES, "permission denied")                          \
    X(EFAULT, -EFAULT, "bad address")                                \
    X(EBUSY, -EBUSY, "resource busy")                                \
    X(EEXIST, -EEXIST, "file already exists")                        \
    X(EINVAL, -EINVAL, "invalid argument")                           \
    X(EMFILE, -EMFILE, "too many open files")                        \
    X(ENOSPC, -ENOSPC, "no space left on device")                    \
    X(EPIPE, -EPIPE, "broken pipe")                                  \
    X(ERANGE, -ERANGE, "result out of range")                        \
    X(ENOSYS, -ENOSYS, "function not implemented")                   \
    X(ENOTSOCK, -ENOTSOCK, "socket operation on non-socket")         \
    X(EMSGSIZE, -EMSGSIZE, "message too long")                       \
    X(EPROTO, -EPROTO, "protocol error")                             \
    X(EAFNOSUPPORT, -EAFNOSUPPORT, "address family not supported")   \
    X(EADDRINUSE, -EADDRINUSE, "address already in use")             \
    X(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")        \
    X(ENETDOWN, -ENETDOWN, "network is down")                        \
    X(ENETUNREACH, -ENETUNREACH, "network is unreachable")           \
    X(ECONNABORTED, -ECONNABORTED, "connection aborted")             \
    X(ECONNRESET, -ECONNRESET, "connection reset by peer")           \
    X(ENOBUFS, -ENOBUFS, "no buffer space available")                \
    X(EISCONN, -EISCONN, "socket is already connected")              \
    X(ENOTCONN, -ENOTCONN, "socket is not connected")                \
    X(ETIMEDOUT, -ETIMEDOUT, "operation timed out")                  \
    X(ECONNREFUSED, -ECONNREFUSED, "connection refused")             \
    X(EHOSTUNREACH, -EHOSTUNREACH, "host is unreachable")            \
    X(EALREADY, -EALREADY, "operation already in progress")          \
    X(EINPROGRESS, -EINPROGRESS, "operation in progress")            \
    X(ECANCELED, -ECANCELED, "operation canceled")                   \
    X(ECLOSED, -30001, "channel or primitive closed")                \
    X(ELAGGED, -30002, "receiver lagged behind and missed messages") \
    X(EFULL, -30003, "no available capacity")                        \
    X(EEMPTY, -30004, "nothing to receive")                          \
    X(ENORECV, -30005, "no receivers")                               \
    X(EPANIC, -30006, "task panicked")                               \
    X(ENOTFOUND, -30007, "host name not found")                      \
    X(ENAME, -30008, "name resolution failed")                       \
    X(ESHUTDOWN, -30009, "runtime is shutting down")                 \
    X(EINUSE, -30010, "already in use by another task")

typedef enum sl_errno {
#define SL__ERR_ENUM(name, val, msg) SL_##name = (val),
    SL_ERRNO_MAP(SL__ERR_ENUM)
#undef SL__ERR_ENUM
} sl_errno_t;

/**
 * Returns a static, human-readable message for an error code.
 *
 * Never waits. 0 gives "success". A negative code outside sluice's table that is an errno
 * gives the C library's description of it (glibc: strerrordesc_np, a static string); anything
 * else gives "unknown error". The returned string is static: do not free it.
 */
SL_API const char *sl_strerror(int code);

/**
 * Returns the symbolic name of an error code ("SL_ETIMEDOUT"), "SL_OK" for 0, or
 * "SL_E_UNKNOWN".
 *
 * Never waits. The returned string is static.
 */
SL_API const char *sl_err_name(int code);

#endif /* SLUICE_ERROR_H */
