/*
 * sluice: TCP, UDP and Unix domain sockets, and name resolution.
 *
 * Sockets are plain int fds, created O_NONBLOCK | O_CLOEXEC; read and write them with
 * sl_read() / sl_write() / sl_write_all() (<sluice/io.h>) and release them with sl_close().
 * Addresses are given as a host and a port: IPv4 and IPv6 literals ("127.0.0.1", "::1",
 * "[::1]") are parsed at once; other names are resolved with getaddrinfo() on the blocking
 * pool (sl_blocking()), so the calling task waits but its worker does not. Variants taking a
 * struct sockaddr skip resolution.
 *
 * Every call here that waits on a socket (accept, connect, send, receive) registers it with
 * the reactor first, and can return a registration failure as <sluice/io.h> describes
 * (SL_ENOMEM, SL_EPERM, SL_ENOSPC), having waited for nothing.
 */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

/* Flags for sl_tcp_connect*() and sl_tcp_accept*(). */
#define SL_TCP_NODELAY 1 /* set TCP_NODELAY on the new connection */

/**
 * Resolves host and port into one socket address (the first getaddrinfo() result).
 *
 * Waits for names (the lookup runs on the blocking pool and cannot be interrupted: a cancelled
 * task gets its result and SL_ECANCELED from its next wait); literals never wait and may be
 * resolved outside a task. Returns 0 with *out / *outlen filled, SL_EINVAL (NULL or empty
 * host, port outside 0..65535), SL_ENOTFOUND (no such name), SL_EAGAIN (a temporary DNS
 * failure, or no blocking-pool thread could be started: try again later either way), the
 * system error as -errno when getaddrinfo() reports one (EAI_SYSTEM), SL_ENAME (any other
 * resolver failure) or SL_ENOMEM.
 */
SL_API int sl_resolve(const char *host, int port, struct sockaddr_storage *out, socklen_t *outlen);

/**
 * Creates a TCP socket listening on host:port (host NULL, "" or "*": every IPv4 address),
 * with SO_REUSEADDR, and backlog pending connections (<= 0: SOMAXCONN).
 *
 * Waits only to resolve a name (see sl_resolve()). Returns the listening fd (owned: release
 * with sl_close()), an sl_resolve() error, or the socket/bind/listen error (SL_EADDRINUSE,
 * SL_EACCES, SL_EADDRNOTAVAIL, SL_EMFILE, ...).
 */
SL_API int sl_tcp_listen(const char *host, int port, int backlog);

/**
 * As sl_tcp_listen() on a socket address. Never waits.
 */
SL_API int sl_tcp_listen_addr(const struct sockaddr *sa, socklen_t salen, int backlog);

/**
 * Accepts a connection on a listening socket (TCP or Unix); flags: SL_TCP_NODELAY. If peer is
 * not NULL it receives the peer's address.
 *
 * Waits. Returns the connected fd (owned: release with sl_close()), SL_ECANCELED,
 * SL_ETIMEDOUT (expired timeout scope), SL_ECLOSED (the listener was sl_close()d meanwhile),
 * or the accept error (SL_EMFILE, SL_ECONNABORTED, SL_EINVAL for a socket not listening, ...).
 */
SL_API int sl_tcp_accept(int lfd, int flags, struct sockaddr_storage *peer);

/**
 * As sl_tcp_accept(), giving up at the absolute deadline (SL_ETIMEDOUT).
 */
SL_API int sl_tcp_accept_until(int lfd, int flags, struct sockaddr_storage *peer, int64_t deadline);

/**
 * Accepts a pending connection without waiting.
 *
 * Never waits. Returns the fd, SL_EAGAIN when none is pending, or the accept error.
 */
SL_API int sl_tcp_try_accept(int lfd, int flags, struct sockaddr_storage *peer);

/**
 * Connects to host:port; flags: SL_TCP_NODELAY.
 *
 * Waits (to resolve a name, then for the handshake). Returns the connected fd (owned: release
 * with sl_close()), an sl_resolve() error, SL_ECONNREFUSED, SL_ENETUNREACH, SL_EHOSTUNREACH,
 * SL_ETIMEDOUT (the kernel gave up, or an expired timeout scope), SL_ECANCELED, or another
 * socket/connect error. On failure no fd is left open.
 */
SL_API int sl_tcp_connect(const char *host, int port, int flags);

/**
 * As sl_tcp_connect(), giving up the handshake at the absolute deadline (SL_ETIMEDOUT). The
 * deadline does not cut a name lookup short (it runs on the blocking pool).
 */
SL_API int sl_tcp_connect_until(const char *host, int port, int flags, int64_t deadline);

/**
 * As sl_tcp_connect_until() to a socket address (no resolution).
 */
SL_API int sl_tcp_connect_addr(const struct sockaddr *sa, socklen_t salen, int flags,
                               int64_t deadline);

/**
 * Shuts down part of a full-duplex connection (how: SHUT_RD, SHUT_WR or SHUT_RDWR); tasks
 * waiting to read see end of file once the read side is shut.
 *
 * Never waits. Returns 0, SL_ENOTCONN, SL_EBADF, SL_ENOTSOCK or SL_EINVAL.
 */
SL_API int sl_shutdown(int fd, int how);

/**
 * Copies the local address of a socket into *out; *outlen, unless outlen is NULL, receives its
 * length.
 *
 * Never waits. Returns 0, SL_EBADF, SL_ENOTSOCK or another getsockname(2) error (SL_ENOBUFS).
 */
SL_API int sl_sock_name(int fd, struct sockaddr_storage *out, socklen_t *outlen);

/**
 * Returns the local port of an IPv4 or IPv6 socket (>= 0), e.g. after listening on port 0.
 *
 * Never waits. Returns the port, SL_EBADF, SL_ENOTSOCK or SL_EAFNOSUPPORT.
 */
SL_API int sl_sock_port(int fd);

/**
 * Creates a UDP socket bound to host:port (host NULL, "" or "*": every IPv4 address; port 0:
 * any free port).
 *
 * Waits only to resolve a name. Returns the fd (owned: release with sl_close()), an
 * sl_resolve() error or the socket/bind error (SL_EADDRINUSE, ...).
 */
SL_API int sl_udp_bind(const char *host, int port);

/**
 * Creates an unbound UDP socket of family AF_INET or AF_INET6 (the kernel binds it on its
 * first send).
 *
 * Never waits. Returns the fd (owned) or SL_EAFNOSUPPORT / SL_EMFILE / SL_ENOMEM /
 * SL_ENOBUFS, or another socket(2) error as -errno (ENFILE: the system's file table is full).
 */
SL_API int sl_udp_socket(int family);

/**
 * Sends one datagram of len bytes to the address `to`.
 *
 * Waits while the socket's send buffer is full. Returns the bytes sent (== len), SL_EMSGSIZE,
 * SL_ECANCELED, SL_ETIMEDOUT (expired timeout scope), SL_ECLOSED, or the sendto error.
 */
SL_API ssize_t sl_udp_send_to(int fd, const void *buf, size_t len, const struct sockaddr *to,
                              socklen_t tolen);

/** As sl_udp_send_to(), giving up at the absolute deadline (SL_ETIMEDOUT). */
SL_API ssize_t sl_udp_send_to_until(int fd, const void *buf, size_t len, const struct sockaddr *to,
                                    socklen_t tolen, int64_t deadline);

/** As sl_udp_send_to() without waiting (SL_EAGAIN when the send buffer is full). */
SL_API ssize_t sl_udp_try_send_to(int fd, const void *buf, size_t len, const struct sockaddr *to,
                                  socklen_t tolen);

/**
 * Receives one datagram into buf (a longer one is truncated to len bytes); from and fromlen
 * (each may be NULL) receive the sender's address.
 *
 * Waits until a datagram arrives. Returns its length as received (at most len), SL_ECANCELED,
 * SL_ETIMEDOUT (expired timeout scope), SL_ECLOSED, or the recvfrom error.
 */
SL_API ssize_t sl_udp_recv_from(int fd, void *buf, size_t len, struct sockaddr_storage *from,
                                socklen_t *fromlen);

/** As sl_udp_recv_from(), giving up at the absolute deadline (SL_ETIMEDOUT). */
SL_API ssize_t sl_udp_recv_from_until(int fd, void *buf, size_t len, struct sockaddr_storage *from,
                                      socklen_t *fromlen, int64_t deadline);

/** As sl_udp_recv_from() without waiting (SL_EAGAIN when no datagram is queued). */
SL_API ssize_t sl_udp_try_recv_from(int fd, void *buf, size_t len, struct sockaddr_storage *from,
                                    socklen_t *fromlen);

/**
 * Creates a Unix domain stream socket listening on path (which must not exist: the caller
 * unlinks it when done), backlog as sl_tcp_listen().
 *
 * Never waits. Returns the fd (owned), SL_EINVAL (path too long or empty), SL_EADDRINUSE
 * (path exists), or another socket/bind/listen error.
 */
SL_API int sl_unix_listen(const char *path, int backlog);

/**
 * Accepts a connection on a Unix listening socket. As sl_tcp_accept() without flags.
 */
SL_API int sl_unix_accept(int lfd);

/** As sl_unix_accept(), giving up at the absolute deadline (SL_ETIMEDOUT). */
SL_API int sl_unix_accept_until(int lfd, int64_t deadline);

/**
 * Connects a Unix domain stream socket to path.
 *
 * Waits while the listener's backlog is full. Returns the fd (owned), SL_EINVAL (path NULL,
 * empty or too long), SL_ENOENT, SL_ECONNREFUSED (nobody listens), SL_ECANCELED, SL_ETIMEDOUT
 * (expired timeout scope), or another connect error.
 */
SL_API int sl_unix_connect(const char *path);

/** As sl_unix_connect(), giving up at the absolute deadline (SL_ETIMEDOUT). */
SL_API int sl_unix_connect_until(const char *path, int64_t deadline);

/**
 * Creates a connected pair of Unix domain stream sockets.
 *
 * Never waits. fds receives two owned fds (release with sl_close()). Returns 0, SL_EMFILE,
 * SL_ENOMEM or SL_ENOBUFS, or another socketpair(2) error as -errno (ENFILE).
 */
SL_API int sl_unix_pair(int fds[2]);

#endif /* SLUICE_NET_H */
