/*
 * Sockets: TCP, UDP, Unix domain, and name resolution through the blocking pool.
 */
#define _GNU_SOURCE /* pipe2, accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/io.h"

/* ---- Resolution --------------------------------------------------------------------------- */

/* Parses an IPv4 or IPv6 literal (optionally in brackets). Returns 0, or SL_EAGAIN if host is
 * not a literal. */
static int parse_literal(const char *host, int port, struct sockaddr_storage *out,
                         socklen_t *outlen)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_in *a4 = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *outlen = sizeof *a4;
        return 0;
    }
    char tmp[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof tmp) {
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = 0;
        host = tmp;
    }
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *outlen = sizeof *a6;
        return 0;
    }
    return SL_EAGAIN;
}

typedef struct gai_job {
    const char *host;
    int port;
    struct sockaddr_storage *out;
    socklen_t *outlen;
    int res;
} gai_job_t;

static int map_gai_error(int e)
{
    switch (e) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return SL_ENOTFOUND;
    case EAI_AGAIN:
        return SL_EAGAIN;
    case EAI_MEMORY:
        return SL_ENOMEM;
    case EAI_SYSTEM:
        return errno ? -errno : SL_ENAME;
    default:
        return SL_ENAME;
    }
}

/* Runs on a blocking-pool thread. */
static void *gai_run(void *arg)
{
    gai_job_t *j = arg;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM; /* one entry per address, not one per socket type */
    int e = getaddrinfo(j->host, NULL, &hints, &ai);
    if (e) {
        j->res = map_gai_error(e);
        return NULL;
    }
    j->res = SL_ENOTFOUND;
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        if (p->ai_family != AF_INET && p->ai_family != AF_INET6)
            continue;
        if (p->ai_addrlen > sizeof *j->out)
            continue;
        memset(j->out, 0, sizeof *j->out);
        memcpy(j->out, p->ai_addr, p->ai_addrlen);
        if (p->ai_family == AF_INET)
            ((struct sockaddr_in *)j->out)->sin_port = htons((uint16_t)j->port);
        else
            ((struct sockaddr_in6 *)j->out)->sin6_port = htons((uint16_t)j->port);
        *j->outlen = (socklen_t)p->ai_addrlen;
        j->res = 0;
        break;
    }
    freeaddrinfo(ai);
    return NULL;
}

int sl_resolve(const char *host, int port, struct sockaddr_storage *out, socklen_t *outlen)
{
    if (!host || !*host || port < 0 || port > 65535)
        return SL_EINVAL;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int r = parse_literal(host, port, &ss, &len);
    if (r == SL_EAGAIN) {
        gai_job_t j = {host, port, &ss, &len, SL_ENAME};
        r = sl_blocking(gai_run, &j, NULL);
        if (r == 0)
            r = j.res;
    }
    if (r == 0) {
        *out = ss;
        *outlen = len;
    }
    return r;
}

/* Resolves a host for binding: NULL, "" and "*" mean every IPv4 address. */
static int resolve_passive(const char *host, int port, struct sockaddr_storage *out,
                           socklen_t *outlen)
{
    if (!host || !*host || (host[0] == '*' && !host[1])) {
        if (port < 0 || port > 65535)
            return SL_EINVAL;
        struct sockaddr_in *a4 = (struct sockaddr_in *)out;
        memset(out, 0, sizeof *out);
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
        a4->sin_port = htons((uint16_t)port);
        *outlen = sizeof *a4;
        return 0;
    }
    return sl_resolve(host, port, out, outlen);
}

/* ---- Socket helpers ---------------------------------------------------------------------------
 */

static int new_socket(int family, int type)
{
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

/* Closes an fd nobody has waited on yet, keeping errno-derived codes intact. */
static int fail_close(int fd, int err)
{
    close(fd);
    return err;
}

static void set_nodelay(int fd, int flags)
{
    if (flags & SL_TCP_NODELAY) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

static int listen_on(const struct sockaddr *sa, socklen_t salen, int type, int backlog)
{
    int fd = new_socket(sa->sa_family, type);
    if (fd < 0)
        return fd;
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    if (bind(fd, sa, salen) < 0)
        return fail_close(fd, -errno);
    if (type == SOCK_STREAM && listen(fd, backlog <= 0 ? SOMAXCONN : backlog) < 0)
        return fail_close(fd, -errno);
    return fd;
}

int sl_shutdown(int fd, int how)
{
    return shutdown(fd, how) < 0 ? -errno : 0;
}

int sl_sock_name(int fd, struct sockaddr_storage *out, socklen_t *outlen)
{
    socklen_t len = sizeof *out;
    if (getsockname(fd, (struct sockaddr *)out, &len) < 0)
        return -errno;
    if (outlen)
        *outlen = len;
    return 0;
}

int sl_sock_port(int fd)
{
    struct sockaddr_storage ss = {0};
    int r = sl_sock_name(fd, &ss, NULL);
    if (r)
        return r;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return SL_EAFNOSUPPORT;
}

/* ---- TCP ------------------------------------------------------------------------------------ */

int sl_tcp_listen_addr(const struct sockaddr *sa, socklen_t salen, int backlog)
{
    return listen_on(sa, salen, SOCK_STREAM, backlog);
}

int sl_tcp_listen(const char *host, int port, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int r = resolve_passive(host, port, &ss, &len);
    if (r)
        return r;
    return listen_on((struct sockaddr *)&ss, len, SOCK_STREAM, backlog);
}

/* Accept: c->buf = peer (may be NULL), c->w.aux = flags. */
static int accept_attempt(sl_clause_t *c)
{
    struct sockaddr_storage tmp = {0};
    struct sockaddr_storage *peer = c->buf ? c->buf : &tmp;
    for (;;) {
        socklen_t len = sizeof *peer;
        int fd = accept4((int)(unsigned)c->arg, (struct sockaddr *)peer, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (peer->ss_family == AF_INET || peer->ss_family == AF_INET6)
                set_nodelay(fd, (int)c->w.aux);
            return fd;
        }
        if (errno != EINTR)
            return -errno;
    }
}

static const sl__io_op_t accept_op = SL__IO_OP(SL__DIR_READ, accept_attempt);

int sl_tcp_accept_until(int lfd, int flags, struct sockaddr_storage *peer, int64_t deadline)
{
    sl_clause_t c;
    sl__io_clause(&c, &accept_op, lfd, peer, (uintptr_t)(unsigned)flags);
    return sl__wait1(&c, deadline);
}

int sl_tcp_accept(int lfd, int flags, struct sockaddr_storage *peer)
{
    return sl_tcp_accept_until(lfd, flags, peer, SL_FOREVER);
}

int sl_tcp_try_accept(int lfd, int flags, struct sockaddr_storage *peer)
{
    sl_clause_t c;
    sl__io_clause(&c, &accept_op, lfd, peer, (uintptr_t)(unsigned)flags);
    return accept_attempt(&c);
}

/* A connect in progress completes when the socket turns writable; SO_ERROR tells how. */
static int connect_attempt(sl_clause_t *c)
{
    int fd = (int)(unsigned)c->arg;
    struct pollfd p = {fd, POLLOUT, 0};
    int r;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        return SL_EAGAIN;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

static const sl__io_op_t connect_op = SL__IO_OP(SL__DIR_WRITE, connect_attempt);

/* Connects fd (freshly created) to sa; on failure fd is closed. Returns fd or an error. */
static int connect_fd(int fd, const struct sockaddr *sa, socklen_t salen, int64_t deadline)
{
    int64_t backoff = SL_MSEC;
    for (;;) {
        if (connect(fd, sa, salen) == 0)
            return fd;
        if (errno == EINPROGRESS || errno == EINTR)
            break;
        if (errno == EAGAIN && sa->sa_family == AF_UNIX) {
            /* A Unix listener's backlog is full: epoll cannot tell when it drains. */
            int64_t until = sl_deadline_in(backoff);
            int r = sl_sleep_until(until < deadline ? until : deadline);
            if (r)
                return fail_close(fd, r);
            if (sl_now() >= deadline)
                return fail_close(fd, SL_ETIMEDOUT);
            if (backoff < 32 * SL_MSEC)
                backoff *= 2;
            continue;
        }
        return fail_close(fd, -errno);
    }
    sl_clause_t c;
    sl__io_clause(&c, &connect_op, fd, NULL, 0);
    int r = sl__wait1(&c, deadline);
    if (r < 0) {
        sl_close(fd);
        return r;
    }
    return fd;
}

int sl_tcp_connect_addr(const struct sockaddr *sa, socklen_t salen, int flags, int64_t deadline)
{
    /* Check first, so that a cancelled task does not even start a handshake. */
    int r = sl__wait_precheck(sl__self_checked("sl_tcp_connect"));
    if (r)
        return r;
    int fd = new_socket(sa->sa_family, SOCK_STREAM);
    if (fd < 0)
        return fd;
    set_nodelay(fd, flags);
    return connect_fd(fd, sa, salen, deadline);
}

int sl_tcp_connect_until(const char *host, int port, int flags, int64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int r = sl_resolve(host, port, &ss, &len);
    if (r)
        return r;
    return sl_tcp_connect_addr((struct sockaddr *)&ss, len, flags, deadline);
}

int sl_tcp_connect(const char *host, int port, int flags)
{
    return sl_tcp_connect_until(host, port, flags, SL_FOREVER);
}

/* ---- UDP ------------------------------------------------------------------------------------ */

typedef struct dgram_args {
    void *buf;
    size_t len;
    const struct sockaddr *to;
    socklen_t tolen;
    struct sockaddr_storage *from;
    socklen_t *fromlen;
} dgram_args_t;

static int send_attempt(sl_clause_t *c)
{
    dgram_args_t *a = c->buf;
    for (;;) {
        ssize_t n = sendto((int)(unsigned)c->arg, a->buf, a->len, MSG_NOSIGNAL, a->to, a->tolen);
        if (n >= 0)
            return (int)n;
        if (errno != EINTR)
            return -errno;
    }
}

static int recv_attempt(sl_clause_t *c)
{
    dgram_args_t *a = c->buf;
    struct sockaddr_storage tmp;
    struct sockaddr_storage *from = a->from ? a->from : &tmp;
    for (;;) {
        socklen_t len = sizeof *from;
        ssize_t n =
            recvfrom((int)(unsigned)c->arg, a->buf, a->len, 0, (struct sockaddr *)from, &len);
        if (n >= 0) {
            if (a->fromlen)
                *a->fromlen = len;
            return (int)n;
        }
        if (errno != EINTR)
            return -errno;
    }
}

static const sl__io_op_t send_op = SL__IO_OP(SL__DIR_WRITE, send_attempt);
static const sl__io_op_t recv_op = SL__IO_OP(SL__DIR_READ, recv_attempt);

int sl_udp_bind(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int r = resolve_passive(host, port, &ss, &len);
    if (r)
        return r;
    return listen_on((struct sockaddr *)&ss, len, SOCK_DGRAM, 0);
}

int sl_udp_socket(int family)
{
    if (family != AF_INET && family != AF_INET6)
        return SL_EAFNOSUPPORT;
    return new_socket(family, SOCK_DGRAM);
}

ssize_t sl_udp_send_to_until(int fd, const void *buf, size_t len, const struct sockaddr *to,
                             socklen_t tolen, int64_t deadline)
{
    dgram_args_t a = {(void *)buf, len, to, tolen, NULL, NULL};
    sl_clause_t c;
    sl__io_clause(&c, &send_op, fd, &a, 0);
    return sl__wait1(&c, deadline);
}

ssize_t sl_udp_send_to(int fd, const void *buf, size_t len, const struct sockaddr *to,
                       socklen_t tolen)
{
    return sl_udp_send_to_until(fd, buf, len, to, tolen, SL_FOREVER);
}

ssize_t sl_udp_try_send_to(int fd, const void *buf, size_t len, const struct sockaddr *to,
                           socklen_t tolen)
{
    dgram_args_t a = {(void *)buf, len, to, tolen, NULL, NULL};
    sl_clause_t c;
    sl__io_clause(&c, &send_op, fd, &a, 0);
    return send_attempt(&c);
}

ssize_t sl_udp_recv_from_until(int fd, void *buf, size_t len, struct sockaddr_storage *from,
                               socklen_t *fromlen, int64_t deadline)
{
    dgram_args_t a = {buf, len > INT_MAX ? INT_MAX : len, NULL, 0, from, fromlen};
    sl_clause_t c;
    sl__io_clause(&c, &recv_op, fd, &a, 0);
    return sl__wait1(&c, deadline);
}

ssize_t sl_udp_recv_from(int fd, void *buf, size_t len, struct sockaddr_storage *from,
                         socklen_t *fromlen)
{
    return sl_udp_recv_from_until(fd, buf, len, from, fromlen, SL_FOREVER);
}

ssize_t sl_udp_try_recv_from(int fd, void *buf, size_t len, struct sockaddr_storage *from,
                             socklen_t *fromlen)
{
    dgram_args_t a = {buf, len > INT_MAX ? INT_MAX : len, NULL, 0, from, fromlen};
    sl_clause_t c;
    sl__io_clause(&c, &recv_op, fd, &a, 0);
    return recv_attempt(&c);
}

/* ---- Unix domain ------------------------------------------------------------------------------
 */

static int unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || n >= sizeof sun->sun_path)
        return SL_EINVAL;
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int sl_unix_listen(const char *path, int backlog)
{
    struct sockaddr_un sun;
    socklen_t len;
    int r = unix_addr(path, &sun, &len);
    if (r)
        return r;
    return listen_on((struct sockaddr *)&sun, len, SOCK_STREAM, backlog);
}

int sl_unix_accept_until(int lfd, int64_t deadline)
{
    return sl_tcp_accept_until(lfd, 0, NULL, deadline);
}

int sl_unix_accept(int lfd)
{
    return sl_tcp_accept_until(lfd, 0, NULL, SL_FOREVER);
}

int sl_unix_connect_until(const char *path, int64_t deadline)
{
    struct sockaddr_un sun;
    socklen_t len;
    int r = unix_addr(path, &sun, &len);
    if (r)
        return r;
    r = sl__wait_precheck(sl__self_checked("sl_unix_connect"));
    if (r)
        return r;
    int fd = new_socket(AF_UNIX, SOCK_STREAM);
    if (fd < 0)
        return fd;
    return connect_fd(fd, (struct sockaddr *)&sun, len, deadline);
}

int sl_unix_connect(const char *path)
{
    return sl_unix_connect_until(path, SL_FOREVER);
}

int sl_unix_pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    return 0;
}
