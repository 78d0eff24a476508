/* Sockets on loopback: TCP echo under load, connect errors and deadlines, cancellation, close,
 * UDP, Unix domain sockets, name resolution, no allocation per round trip. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sluice.h>

#include "test.h"
#include "test_rt.h"

static int64_t ms(int64_t n)
{
    return n * SL_MSEC * test_scale();
}

/* Tasks count themselves here just before they block; settle() waits for n of them, then
 * gives them a moment to park. */
static atomic_int started;

static void settle(int n)
{
    while (atomic_load(&started) < n)
        ASSERT_OK(sl_sleep(SL_MSEC));
    ASSERT_OK(sl_sleep(ms(10)));
    atomic_store(&started, 0);
}

static intptr_t join_value(sl_task_t *t)
{
    sl_join_t j = test_join(t);
    ASSERT_EQ(j.status, SL_TASK_RETURNED);
    return (intptr_t)j.value;
}

/* Reads exactly len bytes. */
static void read_exact(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = sl_read(fd, (char *)buf + got, len - got);
        ASSERT_GT(n, 0);
        got += (size_t)n;
    }
}

/* A connected TCP pair over 127.0.0.1; the listener is closed again. */
static void tcp_pair(int *client, int *server)
{
    int l = sl_tcp_listen("127.0.0.1", 0, 8);
    ASSERT_GE(l, 0);
    int port = sl_sock_port(l);
    ASSERT_GT(port, 0);
    *client = sl_tcp_connect("127.0.0.1", port, SL_TCP_NODELAY);
    ASSERT_GE(*client, 0);
    *server = sl_tcp_accept(l, SL_TCP_NODELAY, NULL);
    ASSERT_GE(*server, 0);
    ASSERT_OK(sl_close(l));
}

/* ---- echo server ---- */

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = sl_read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        if (sl_write_all(fd, buf, (size_t)n, NULL) < 0)
            break;
    }
    sl_close(fd);
    return NULL;
}

/* Accepts until the listener is closed; returns how many connections it served. */
static void *accept_loop(void *arg)
{
    int l = *(int *)arg;
    intptr_t n = 0;
    for (;;) {
        int fd = sl_tcp_accept(l, SL_TCP_NODELAY, NULL);
        if (fd < 0) {
            ASSERT_EQ(fd, SL_ECLOSED);
            break;
        }
        ASSERT_OK(sl_task_spawn(echo_conn, (void *)(intptr_t)fd, NULL));
        n++;
    }
    return (void *)n;
}

#define CLIENTS  200
#define MESSAGES 8

typedef struct client_ctx {
    int port;
    int id;
} client_ctx_t;

static void *echo_client(void *arg)
{
    client_ctx_t *c = arg;
    int fd = sl_tcp_connect("127.0.0.1", c->port, SL_TCP_NODELAY);
    ASSERT_GE(fd, 0);
    unsigned char out[5001], got[5001];
    for (int m = 0; m < MESSAGES; m++) {
        size_t len = 1 + (size_t)((c->id * 131 + m * 977) % 5000);
        for (size_t i = 0; i < len; i++)
            out[i] = (unsigned char)(c->id + m * 31 + i);
        size_t w = 0;
        ASSERT_OK(sl_write_all(fd, out, len, &w));
        ASSERT_EQ_U(w, len);
        read_exact(fd, got, len);
        for (size_t i = 0; i < len; i++)
            ASSERT_EQ(got[i], (unsigned char)(c->id + m * 31 + i));
    }
    ASSERT_OK(sl_close(fd));
    return NULL;
}

static void *main_echo(void *arg)
{
    (void)arg;
    int l = sl_tcp_listen("127.0.0.1", 0, 0);
    ASSERT_GE(l, 0);
    int port = sl_sock_port(l);
    /* Every spawn happens on worker 0 (the tasks still spread by stealing): two workers
     * mapping fresh stacks at once trip a TSan report in the core (rt->madv_guard). */
    sl_task_t *acc = test_spawn_on(0, accept_loop, &l);
    static client_ctx_t ctx[CLIENTS];
    sl_task_t *cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        ctx[i].port = port;
        ctx[i].id = i;
        ASSERT_OK(sl_task_spawn(echo_client, &ctx[i], &cl[i]));
    }
    for (int i = 0; i < CLIENTS; i++)
        ASSERT_EQ(test_join(cl[i]).status, SL_TASK_RETURNED);
    ASSERT_OK(sl_close(l));
    ASSERT_EQ(join_value(acc), CLIENTS);
    return NULL;
}

SL_TEST(tcp_echo_many_clients)
{
    test_run(2, main_echo, NULL);
}

SL_TEST(tcp_echo_many_clients_1worker)
{
    test_run(1, main_echo, NULL);
}

/* ---- connect errors and deadlines ---- */

static void *main_refused(void *arg)
{
    (void)arg;
    int l = sl_tcp_listen("127.0.0.1", 0, 1);
    ASSERT_GE(l, 0);
    int port = sl_sock_port(l);
    ASSERT_OK(sl_close(l));
    ASSERT_ERR(sl_tcp_connect("127.0.0.1", port, 0), SL_ECONNREFUSED);
    ASSERT_ERR(sl_tcp_connect_until("127.0.0.1", port, 0, sl_deadline_in(5 * SL_SEC)),
               SL_ECONNREFUSED);
    ASSERT_ERR(sl_tcp_connect("127.0.0.1", 70000, 0), SL_EINVAL);
    return NULL;
}

SL_TEST(connect_refused)
{
    test_run(1, main_refused, NULL);
}

/* A listener that never accepts: once its accept queue is full, the kernel drops further
 * SYNs and connects hang until their deadline. */
static void *main_connect_deadline(void *arg)
{
    (void)arg;
    int l = sl_tcp_listen("127.0.0.1", 0, 1);
    ASSERT_GE(l, 0);
    int port = sl_sock_port(l);
    int fds[16], n = 0, timed_out = 0;
    while (n < 16) {
        int fd = sl_tcp_connect_until("127.0.0.1", port, 0, sl_deadline_in(ms(100)));
        if (fd == SL_ETIMEDOUT) {
            timed_out = 1;
            break;
        }
        ASSERT_GE(fd, 0);
        fds[n++] = fd;
    }
    ASSERT(timed_out);
    /* An enclosing timeout scope cuts it short the same way. */
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(ms(50)));
    ASSERT_ERR(sl_tcp_connect("127.0.0.1", port, 0), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    for (int i = 0; i < n; i++)
        ASSERT_OK(sl_close(fds[i]));
    ASSERT_OK(sl_close(l));
    return NULL;
}

SL_TEST(connect_deadline)
{
    test_run(1, main_connect_deadline, NULL);
}

/* ---- reads and accepts that are cut short ---- */

static void *main_read_timeout(void *arg)
{
    (void)arg;
    int a, b;
    tcp_pair(&a, &b);
    char c;
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(ms(20)));
    ASSERT_ERR(sl_read(a, &c, 1), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    ASSERT_ERR(sl_read_until(b, &c, 1, sl_deadline_in(ms(5))), SL_ETIMEDOUT);
    /* The connection still works afterwards. */
    ASSERT_EQ(sl_write(b, "k", 1), 1);
    ASSERT_EQ(sl_read(a, &c, 1), 1);
    /* Shutting down the write side gives the peer end of file. */
    ASSERT_OK(sl_shutdown(b, SHUT_WR));
    ASSERT_EQ(sl_read(a, &c, 1), 0);
    ASSERT_OK(sl_close(a));
    ASSERT_OK(sl_close(b));
    return NULL;
}

SL_TEST(read_timeout_and_shutdown)
{
    test_run(1, main_read_timeout, NULL);
}

static void *accept_one(void *arg)
{
    int l = *(int *)arg;
    atomic_fetch_add(&started, 1);
    return (void *)(intptr_t)sl_tcp_accept(l, 0, NULL);
}

static void *read_one(void *arg)
{
    int fd = *(int *)arg;
    char c;
    atomic_fetch_add(&started, 1);
    return (void *)(intptr_t)sl_read(fd, &c, 1);
}

static void *main_cancel(void *arg)
{
    int workers = (int)(intptr_t)arg;
    int l = sl_tcp_listen("127.0.0.1", 0, 8);
    ASSERT_GE(l, 0);
    int a, b;
    tcp_pair(&a, &b);
    sl_task_t *ta = test_spawn_on(workers - 1, accept_one, &l);
    sl_task_t *tr = test_spawn_on(workers - 1, read_one, &a);
    settle(2);
    sl_task_abort(ta);
    sl_task_abort(tr);
    sl_join_t j = test_join(ta);
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    ASSERT_EQ((intptr_t)j.value, SL_ECANCELED);
    j = test_join(tr);
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    ASSERT_EQ((intptr_t)j.value, SL_ECANCELED);
    ASSERT_OK(sl_close(a));
    ASSERT_OK(sl_close(b));
    ASSERT_OK(sl_close(l));
    return NULL;
}

SL_TEST(accept_and_read_cancelled)
{
    test_run(1, main_cancel, (void *)(intptr_t)1);
}

SL_TEST(accept_and_read_cancelled_2workers)
{
    test_run(2, main_cancel, (void *)(intptr_t)2);
}

static void *main_close_wakes(void *arg)
{
    int workers = (int)(intptr_t)arg;
    int l = sl_tcp_listen("127.0.0.1", 0, 8);
    ASSERT_GE(l, 0);
    int a, b;
    tcp_pair(&a, &b);
    sl_task_t *ta = test_spawn_on(workers - 1, accept_one, &l);
    sl_task_t *tr = test_spawn_on(workers - 1, read_one, &a);
    settle(2);
    ASSERT_OK(sl_close(l));
    ASSERT_OK(sl_close(a));
    ASSERT_EQ(join_value(ta), SL_ECLOSED);
    ASSERT_EQ(join_value(tr), SL_ECLOSED);
    ASSERT_OK(sl_close(b));
    return NULL;
}

SL_TEST(close_wakes_accept_and_read)
{
    test_run(1, main_close_wakes, (void *)(intptr_t)1);
}

SL_TEST(close_wakes_accept_and_read_2workers)
{
    test_run(2, main_close_wakes, (void *)(intptr_t)2);
}

/* ---- select over a socket ---- */

static void *main_select(void *arg)
{
    (void)arg;
    int a, b;
    tcp_pair(&a, &b);
    sl_clause_t c[2];
    for (int i = 0; i < 20; i++) {
        sl_clause_readable(&c[0], a);
        sl_clause_sleep_until(&c[1], sl_deadline_in(SL_MSEC / 4));
        ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 1);
    }
    ASSERT_EQ(sl_write(b, "ping", 4), 4);
    sl_clause_readable(&c[0], a);
    sl_clause_sleep_until(&c[1], sl_deadline_in(10 * SL_SEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 0);
    ASSERT_EQ(c[0].res, 0);
    char buf[4];
    read_exact(a, buf, 4);
    ASSERT(memcmp(buf, "ping", 4) == 0);
    ASSERT_OK(sl_close(a));
    ASSERT_OK(sl_close(b));
    return NULL;
}

SL_TEST(select_readable_or_sleep)
{
    test_run(2, main_select, NULL);
}

/* ---- registered on worker 0, waited on from worker 1 ---- */

static void *read_on_w1(void *arg)
{
    int fd = *(int *)arg;
    ASSERT_EQ(sl_worker_index(), 1);
    char buf[3];
    read_exact(fd, buf, 3);
    ASSERT(memcmp(buf, "w0!", 3) == 0);
    return NULL;
}

static void *main_cross(void *arg)
{
    (void)arg;
    ASSERT_EQ(sl_worker_index(), 0);
    int a, b;
    tcp_pair(&a, &b);
    char c;
    ASSERT_ERR(sl_read_until(a, &c, 1, sl_deadline_in(ms(1))), SL_ETIMEDOUT); /* registers */
    sl_task_t *t = test_spawn_on(1, read_on_w1, &a);
    ASSERT_OK(sl_sleep(ms(10)));
    ASSERT_EQ(sl_write(b, "w0!", 3), 3);
    join_value(t);
    ASSERT_OK(sl_close(a));
    ASSERT_OK(sl_close(b));
    return NULL;
}

SL_TEST(registered_on_w0_waited_on_w1)
{
    test_run(2, main_cross, NULL);
}

/* ---- no allocation per wait ---- */

static void *echo_n(void *arg)
{
    int fd = *(int *)arg;
    char buf[64];
    for (;;) {
        ssize_t n = sl_read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        ASSERT_OK(sl_write_all(fd, buf, (size_t)n, NULL));
    }
    return NULL;
}

static void round_trips(int fd, int n)
{
    char buf[32];
    for (int i = 0; i < n; i++) {
        memset(buf, i, sizeof buf);
        ASSERT_OK(sl_write_all(fd, buf, sizeof buf, NULL));
        char got[32];
        read_exact(fd, got, sizeof got);
        ASSERT(memcmp(buf, got, sizeof buf) == 0);
    }
}

static void *main_no_alloc(void *arg)
{
    int workers = (int)(intptr_t)arg;
    int a, b;
    tcp_pair(&a, &b);
    sl_task_t *t = test_spawn_on(workers - 1, echo_n, &b);
    round_trips(a, 100); /* warm up: tables, stacks */
    long before = test_alloc_total();
    round_trips(a, 2000);
    long after = test_alloc_total();
    ASSERT_EQ(after - before, 0);
    ASSERT_OK(sl_shutdown(a, SHUT_WR));
    join_value(t);
    ASSERT_OK(sl_close(a));
    ASSERT_OK(sl_close(b));
    return NULL;
}

SL_TEST(no_alloc_per_round_trip)
{
    test_run(1, main_no_alloc, (void *)(intptr_t)1);
}

SL_TEST(no_alloc_per_round_trip_2workers)
{
    test_run(2, main_no_alloc, (void *)(intptr_t)2);
}

/* ---- UDP ---- */

static void *udp_echo(void *arg)
{
    int fd = *(int *)arg;
    char buf[256];
    struct sockaddr_storage from;
    socklen_t fromlen = 0;
    ssize_t n = sl_udp_recv_from(fd, buf, sizeof buf, &from, &fromlen);
    ASSERT_GT(n, 0);
    ASSERT_EQ(sl_udp_send_to(fd, buf, (size_t)n, (struct sockaddr *)&from, fromlen), n);
    return (void *)(intptr_t)n;
}

static void *main_udp(void *arg)
{
    (void)arg;
    int srv = sl_udp_bind("127.0.0.1", 0);
    ASSERT_GE(srv, 0);
    int cli = sl_udp_bind("127.0.0.1", 0);
    ASSERT_GE(cli, 0);
    sl_task_t *t = test_spawn_on(sl_runtime_workers(sl_runtime_current()) - 1, udp_echo, &srv);
    ASSERT_OK(sl_sleep(ms(5)));
    struct sockaddr_storage to;
    socklen_t tolen;
    ASSERT_OK(sl_resolve("127.0.0.1", sl_sock_port(srv), &to, &tolen));
    ASSERT_EQ(sl_udp_send_to(cli, "datagram", 8, (struct sockaddr *)&to, tolen), 8);
    char buf[64];
    struct sockaddr_storage from;
    socklen_t fromlen = 0;
    ssize_t n =
        sl_udp_recv_from_until(cli, buf, sizeof buf, &from, &fromlen, sl_deadline_in(10 * SL_SEC));
    ASSERT_EQ(n, 8);
    ASSERT(memcmp(buf, "datagram", 8) == 0);
    ASSERT_EQ(fromlen, sizeof(struct sockaddr_in));
    ASSERT_EQ(ntohs(((struct sockaddr_in *)&from)->sin_port), sl_sock_port(srv));
    ASSERT_EQ(join_value(t), 8);
    /* Nothing queued: the try form says so, the deadline form times out. */
    ASSERT_ERR(sl_udp_try_recv_from(cli, buf, sizeof buf, NULL, NULL), SL_EAGAIN);
    ASSERT_ERR(sl_udp_recv_from_until(cli, buf, sizeof buf, NULL, NULL, sl_deadline_in(ms(5))),
               SL_ETIMEDOUT);
    int u6 = sl_udp_socket(AF_INET);
    ASSERT_GE(u6, 0);
    ASSERT_EQ(sl_udp_try_send_to(u6, "x", 1, (struct sockaddr *)&to, tolen), 1);
    ASSERT_EQ(sl_udp_recv_from(srv, buf, sizeof buf, NULL, NULL), 1);
    ASSERT_OK(sl_close(u6));
    ASSERT_OK(sl_close(srv));
    ASSERT_OK(sl_close(cli));
    return NULL;
}

SL_TEST(udp_roundtrip)
{
    test_run(2, main_udp, NULL);
}

/* ---- Unix domain sockets ---- */

static void *unix_server(void *arg)
{
    int l = *(int *)arg;
    int fd = sl_unix_accept_until(l, sl_deadline_in(10 * SL_SEC));
    ASSERT_GE(fd, 0);
    char buf[5];
    read_exact(fd, buf, 5);
    ASSERT_OK(sl_write_all(fd, buf, 5, NULL));
    ASSERT_OK(sl_close(fd));
    return NULL;
}

static void *main_unix(void *arg)
{
    (void)arg;
    char dir[] = "/tmp/sluice-test-XXXXXX";
    ASSERT_NOT_NULL(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/sock", dir);
    int l = sl_unix_listen(path, 4);
    ASSERT_GE(l, 0);
    ASSERT_ERR(sl_unix_listen(path, 4), SL_EADDRINUSE);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(unix_server, &l, &t));
    int fd = sl_unix_connect(path);
    ASSERT_GE(fd, 0);
    ASSERT_OK(sl_write_all(fd, "unix!", 5, NULL));
    char buf[5];
    read_exact(fd, buf, 5);
    ASSERT(memcmp(buf, "unix!", 5) == 0);
    char c;
    ASSERT_EQ(sl_read(fd, &c, 1), 0);
    join_value(t);
    ASSERT_OK(sl_close(fd));
    ASSERT_OK(sl_close(l));
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(rmdir(dir), 0);
    ASSERT_ERR(sl_unix_connect(path), SL_ENOENT);
    /* A pair. */
    int p[2];
    ASSERT_OK(sl_unix_pair(p));
    ASSERT_EQ(sl_write(p[0], "pp", 2), 2);
    read_exact(p[1], buf, 2);
    ASSERT_OK(sl_close(p[0]));
    ASSERT_OK(sl_close(p[1]));
    return NULL;
}

SL_TEST(unix_stream_roundtrip)
{
    test_run(2, main_unix, NULL);
}

/* ---- name resolution ---- */

static void *main_resolve(void *arg)
{
    (void)arg;
    struct sockaddr_storage ss;
    socklen_t len;
    ASSERT_OK(sl_resolve("localhost", 8080, &ss, &len));
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        ASSERT_EQ(len, sizeof *a);
        ASSERT_EQ(ntohl(a->sin_addr.s_addr) >> 24, 127);
        ASSERT_EQ(ntohs(a->sin_port), 8080);
    } else {
        ASSERT_EQ(ss.ss_family, AF_INET6);
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        ASSERT(memcmp(&a->sin6_addr, &in6addr_loopback, sizeof a->sin6_addr) == 0);
        ASSERT_EQ(ntohs(a->sin6_port), 8080);
    }
    ASSERT_OK(sl_resolve("[::1]", 1, &ss, &len));
    ASSERT_EQ(ss.ss_family, AF_INET6);
    ASSERT_OK(sl_resolve("127.0.0.1", 1, &ss, &len));
    ASSERT_EQ(ss.ss_family, AF_INET);
    ASSERT_ERR(sl_resolve("127.0.0.1", -1, &ss, &len), SL_EINVAL);
    ASSERT_ERR(sl_resolve("", 1, &ss, &len), SL_EINVAL);
    int r = sl_resolve("no-such-host.invalid", 1, &ss, &len);
    ASSERT(r == SL_ENOTFOUND || r == SL_EAGAIN || r == SL_ENAME);
    /* A listener and a client by name agree on the family. */
    int l = sl_tcp_listen("localhost", 0, 4);
    ASSERT_GE(l, 0);
    int c = sl_tcp_connect("localhost", sl_sock_port(l), 0);
    ASSERT_GE(c, 0);
    int s = sl_tcp_accept(l, 0, NULL);
    ASSERT_GE(s, 0);
    ASSERT_OK(sl_close(s));
    ASSERT_OK(sl_close(c));
    ASSERT_OK(sl_close(l));
    return NULL;
}

SL_TEST(resolve_localhost)
{
    test_run(2, main_resolve, NULL);
}
