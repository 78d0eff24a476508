/* fd I/O: pipes, readiness waits, close, cancellation, timeouts, select clauses. */
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <sluice.h>

#include "core/rt.h"

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

/* ---- pipe round trip ---- */

typedef struct pipe_ctx {
    int fds[2];
    int worker; /* the reader must run here (-1: anywhere) */
} pipe_ctx_t;

static void *read_hello(void *arg)
{
    pipe_ctx_t *p = arg;
    if (p->worker >= 0)
        ASSERT_EQ(sl_worker_index(), p->worker);
    char buf[16];
    ssize_t n = sl_read(p->fds[0], buf, sizeof buf);
    ASSERT_EQ(n, 5);
    ASSERT(memcmp(buf, "hello", 5) == 0);
    /* End of file once the write end is closed. */
    n = sl_read(p->fds[0], buf, sizeof buf);
    return (void *)(intptr_t)n;
}

static void *main_pipe(void *arg)
{
    (void)arg;
    pipe_ctx_t p = {.worker = -1};
    ASSERT_OK(sl_pipe(p.fds));
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(read_hello, &p, &t));
    ASSERT_OK(sl_sleep(ms(5)));
    ASSERT_EQ(sl_write(p.fds[1], "hello", 5), 5);
    ASSERT_OK(sl_sleep(ms(5)));
    ASSERT_OK(sl_close(p.fds[1]));
    ASSERT_EQ(test_join_value(t), 0);
    ASSERT_OK(sl_close(p.fds[0]));
    return NULL;
}

SL_TEST(pipe_roundtrip)
{
    test_run(1, main_pipe, NULL);
}

SL_TEST(pipe_roundtrip_2workers)
{
    test_run(2, main_pipe, NULL);
}

/* ---- registered on worker 0, waited on from worker 1 ---- */

static void *main_cross_worker(void *arg)
{
    (void)arg;
    ASSERT_EQ(sl_worker_index(), 0);
    pipe_ctx_t p = {.worker = 1};
    ASSERT_OK(sl_pipe(p.fds));
    /* A wait from worker 0 registers the fd with worker 0's epoll. */
    ASSERT_ERR(sl_fd_wait_until(p.fds[0], SL_READABLE, sl_deadline_in(ms(1))), SL_ETIMEDOUT);
    sl_task_t *t = test_spawn_on(1, read_hello, &p);
    ASSERT_OK(sl_sleep(ms(10)));
    ASSERT_EQ(sl_write(p.fds[1], "hello", 5), 5);
    ASSERT_OK(sl_sleep(ms(5)));
    ASSERT_OK(sl_close(p.fds[1]));
    ASSERT_EQ(test_join_value(t), 0);
    ASSERT_OK(sl_close(p.fds[0]));
    return NULL;
}

SL_TEST(registered_on_w0_waited_on_w1)
{
    test_run(2, main_cross_worker, NULL);
}

/* ---- write_all through a pipe much larger than its buffer ---- */

#define BIG (1 << 20)

static void *read_big(void *arg)
{
    int fd = *(int *)arg;
    static unsigned char buf[8192];
    size_t got = 0;
    for (;;) {
        ssize_t n = sl_read(fd, buf, sizeof buf);
        ASSERT_GE(n, 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            ASSERT_EQ(buf[i], (unsigned char)((got + (size_t)i) * 7 + 3));
        got += (size_t)n;
    }
    return (void *)(intptr_t)got;
}

static void *main_write_all(void *arg)
{
    (void)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    unsigned char *data = sl_malloc(BIG);
    ASSERT_NOT_NULL(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(read_big, &fds[0], &t));
    size_t written = 0;
    ASSERT_OK(sl_write_all(fds[1], data, BIG, &written));
    ASSERT_EQ_U(written, BIG);
    ASSERT_OK(sl_close(fds[1]));
    ASSERT_EQ(test_join_value(t), BIG);
    ASSERT_OK(sl_close(fds[0]));
    sl_free(data, BIG);
    return NULL;
}

SL_TEST(write_all_large)
{
    test_run(2, main_write_all, NULL);
}

/* write_all into a full pipe nobody reads: the deadline reports how much went out. */
static void *main_write_all_deadline(void *arg)
{
    (void)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    static unsigned char data[BIG];
    size_t written = 12345;
    ASSERT_ERR(sl_write_all_until(fds[1], data, BIG, &written, sl_deadline_in(ms(20))),
               SL_ETIMEDOUT);
    ASSERT_GT_U(written, 0);
    ASSERT_LT_U(written, BIG);
    ASSERT_OK(sl_close(fds[0]));
    /* Reader gone: EPIPE, not SIGPIPE. */
    ASSERT_ERR(sl_write(fds[1], "x", 1), SL_EPIPE);
    ASSERT_OK(sl_close(fds[1]));
    return NULL;
}

SL_TEST(write_all_deadline)
{
    test_run(1, main_write_all_deadline, NULL);
}

/* ---- close wakes waiters ---- */

static void *read_expect(void *arg)
{
    int fd = *(int *)arg;
    char c;
    atomic_fetch_add(&started, 1);
    return (void *)(intptr_t)sl_read(fd, &c, 1);
}

static void *wait_readable(void *arg)
{
    int fd = *(int *)arg;
    atomic_fetch_add(&started, 1);
    return (void *)(intptr_t)sl_fd_wait(fd, SL_READABLE);
}

static void *main_close_wakes(void *arg)
{
    int workers = (int)(intptr_t)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    sl_task_t *a = test_spawn_on(workers - 1, read_expect, &fds[0]);
    sl_task_t *b = test_spawn_on(0, wait_readable, &fds[0]);
    settle(2);
    ASSERT_OK(sl_close(fds[0]));
    ASSERT_EQ(test_join_value(a), SL_ECLOSED);
    ASSERT_EQ(test_join_value(b), SL_ECLOSED);
    ASSERT_OK(sl_close(fds[1]));
    return NULL;
}

SL_TEST(close_wakes_waiters)
{
    test_run(1, main_close_wakes, (void *)(intptr_t)1);
}

SL_TEST(close_wakes_waiters_2workers)
{
    test_run(2, main_close_wakes, (void *)(intptr_t)2);
}

/* The number is reused after sl_close(): the new fd must get its own events. */
static void *main_reuse(void *arg)
{
    (void)arg;
    for (int round = 0; round < 20; round++) {
        int fds[2];
        ASSERT_OK(sl_pipe(fds));
        ASSERT_ERR(sl_read_until(fds[0], &round, 1, sl_deadline_in(ms(1))), SL_ETIMEDOUT);
        sl_task_t *t;
        ASSERT_OK(sl_task_spawn(read_expect, &fds[0], &t));
        ASSERT_OK(sl_task_yield());
        atomic_store(&started, 0);
        ASSERT_EQ(sl_write(fds[1], "z", 1), 1);
        ASSERT_EQ(test_join_value(t), 1);
        ASSERT_OK(sl_close(fds[0]));
        ASSERT_OK(sl_close(fds[1]));
    }
    return NULL;
}

SL_TEST(fd_number_reuse)
{
    test_run(2, main_reuse, NULL);
}

/* ---- cancellation, deadlines, timeout scopes ---- */

static void *main_cancel(void *arg)
{
    int workers = (int)(intptr_t)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    sl_task_t *t = test_spawn_on(workers - 1, read_expect, &fds[0]);
    settle(1);
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    /* The read reported SL_ECANCELED and the task returned it (status is CANCELLED because
     * it was aborted before returning). */
    ASSERT_EQ((intptr_t)j.value, SL_ECANCELED);
    /* Nothing left behind: a later writer and reader still work. */
    ASSERT_EQ(sl_write(fds[1], "q", 1), 1);
    char c;
    ASSERT_EQ(sl_read(fds[0], &c, 1), 1);
    ASSERT_OK(sl_close(fds[0]));
    ASSERT_OK(sl_close(fds[1]));
    return NULL;
}

SL_TEST(read_cancelled)
{
    test_run(1, main_cancel, (void *)(intptr_t)1);
}

SL_TEST(read_cancelled_2workers)
{
    test_run(2, main_cancel, (void *)(intptr_t)2);
}

static void *main_timeouts(void *arg)
{
    (void)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    char c;
    ASSERT_ERR(sl_read_until(fds[0], &c, 1, sl_deadline_in(ms(5))), SL_ETIMEDOUT);
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(ms(5)));
    ASSERT_ERR(sl_read(fds[0], &c, 1), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    ASSERT_ERR(sl_fd_wait_until(fds[0], SL_READABLE, sl_deadline_in(ms(5))), SL_ETIMEDOUT);
    ASSERT_OK(sl_close(fds[0]));
    ASSERT_OK(sl_close(fds[1]));
    return NULL;
}

SL_TEST(read_deadline_and_timeout_scope)
{
    test_run(1, main_timeouts, NULL);
}

/* ---- try forms and readiness ---- */

static void *main_try(void *arg)
{
    (void)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    char buf[4];
    ASSERT_ERR(sl_try_read(fds[0], buf, sizeof buf), SL_EAGAIN);
    ASSERT_EQ(sl_fd_poll(fds[0], SL_READABLE), 0);
    ASSERT_EQ(sl_fd_poll(fds[1], SL_READABLE | SL_WRITABLE), SL_WRITABLE);
    ASSERT_ERR(sl_fd_poll(fds[0], 0), SL_EINVAL);
    ASSERT_ERR(sl_fd_wait(fds[0], 0), SL_EINVAL);
    ASSERT_EQ(sl_try_write(fds[1], "ab", 2), 2);
    ASSERT_EQ(sl_fd_poll(fds[0], SL_READABLE), SL_READABLE);
    ASSERT_EQ(sl_fd_wait(fds[0], SL_READABLE | SL_WRITABLE), SL_READABLE);
    ASSERT_EQ(sl_try_read(fds[0], buf, sizeof buf), 2);
    ASSERT_OK(sl_close(fds[0]));
    ASSERT_OK(sl_close(fds[1]));
    ASSERT_ERR(sl_try_read(fds[0], buf, sizeof buf), SL_EBADF);
    ASSERT_ERR(sl_read(-1, buf, sizeof buf), SL_EBADF);
    ASSERT_ERR(sl_close(-1), SL_EBADF);
    /* Numbers far past any open fd: SL_EBADF, and no table segment allocated for them (one
     * for INT_MAX would be gigabytes: it failed as SL_ENOMEM). */
    long allocs = test_alloc_total();
    ASSERT_ERR(sl_read(INT_MAX, buf, sizeof buf), SL_EBADF);
    ASSERT_ERR(sl_write(1 << 30, "x", 1), SL_EBADF);
    ASSERT_ERR(sl_fd_wait(100000000, SL_READABLE), SL_EBADF);
    ASSERT_EQ(test_alloc_total(), allocs);
    return NULL;
}

SL_TEST(try_forms)
{
    test_run(1, main_try, NULL);
}

/* Every task waiting for readability wakes on one write. */
static void *main_many_waiters(void *arg)
{
    (void)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    sl_task_t *t[6];
    for (int i = 0; i < 6; i++)
        t[i] = test_spawn_on(i % 2, wait_readable, &fds[0]);
    settle(6);
    ASSERT_EQ(sl_write(fds[1], "x", 1), 1);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(test_join_value(t[i]), SL_READABLE);
    ASSERT_OK(sl_close(fds[0]));
    ASSERT_OK(sl_close(fds[1]));
    return NULL;
}

SL_TEST(many_waiters_all_wake)
{
    test_run(2, main_many_waiters, NULL);
}

/* ---- select ---- */

static void *main_select(void *arg)
{
    (void)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    sl_clause_t c[2];
    /* Nothing to read: the sleep wins, and the readable clause leaves no trace. */
    for (int i = 0; i < 50; i++) {
        sl_clause_readable(&c[0], fds[0]);
        sl_clause_sleep_until(&c[1], sl_deadline_in(SL_MSEC / 10));
        ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 1);
    }
    /* A losing read clause consumes nothing. */
    ASSERT_EQ(sl_write(fds[1], "abc", 3), 3);
    char buf[8];
    sl_clause_sleep_until(&c[0], 0);
    sl_clause_read(&c[1], fds[0], buf, sizeof buf);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    /* Now the readable clause wins at once, and a read clause reads. */
    sl_clause_readable(&c[0], fds[0]);
    sl_clause_sleep_until(&c[1], sl_deadline_in(5 * SL_SEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_EQ(c[0].res, 0);
    sl_clause_read(&c[0], fds[0], buf, sizeof buf);
    sl_clause_sleep_until(&c[1], sl_deadline_in(5 * SL_SEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_EQ(c[0].res, 3);
    ASSERT(memcmp(buf, "abc", 3) == 0);
    /* A read clause that has to wait. */
    sl_clause_read(&c[0], fds[0], buf, sizeof buf);
    sl_clause_writable(&c[1], fds[1]);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    ASSERT_EQ(c[1].res, 0);
    ASSERT_OK(sl_close(fds[0]));
    ASSERT_OK(sl_close(fds[1]));
    return NULL;
}

SL_TEST(select_clauses)
{
    test_run(1, main_select, NULL);
}

static void *write_later(void *arg)
{
    int fd = *(int *)arg;
    ASSERT_OK(sl_sleep(ms(10)));
    ASSERT_EQ(sl_write(fd, "later", 5), 5);
    return NULL;
}

static void *main_select_wait(void *arg)
{
    (void)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    sl_task_t *t = test_spawn_on(1, write_later, &fds[1]);
    char buf[8];
    sl_clause_t c[2];
    sl_clause_read(&c[0], fds[0], buf, sizeof buf);
    sl_clause_sleep_until(&c[1], sl_deadline_in(10 * SL_SEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 0);
    ASSERT_EQ(c[0].res, 5);
    test_join_value(t);
    ASSERT_OK(sl_close(fds[0]));
    ASSERT_OK(sl_close(fds[1]));
    return NULL;
}

SL_TEST(select_read_waits)
{
    test_run(2, main_select_wait, NULL);
}

/* The fd table grows on the first wait; if that allocation fails the call says so and the
 * next one works. */
static void *main_nomem(void *arg)
{
    (void)arg;
    int fds[2];
    ASSERT_OK(sl_pipe(fds));
    char c;
    test_alloc_fail_all_after(0);
    ASSERT_ERR(sl_read_until(fds[0], &c, 1, sl_deadline_in(ms(1))), SL_ENOMEM);
    test_alloc_fail_after(-1);
    ASSERT_ERR(sl_read_until(fds[0], &c, 1, sl_deadline_in(ms(1))), SL_ETIMEDOUT);
    ASSERT_OK(sl_close(fds[0]));
    ASSERT_OK(sl_close(fds[1]));
    return NULL;
}

SL_TEST(fd_table_out_of_memory)
{
    test_run(1, main_nomem, NULL);
}

/* ---- the worker polls between batches only while it has registered fds ----
 * Each fd a task waits on is registered with its worker's epoll set and counted there; a close
 * takes it off. With the count at 0 the poll between batches is skipped (no fd could be
 * ready), so the count must never stay below the truth: a registered fd whose events were
 * never polled for would leave a busy worker deaf to it (direct_switches_leave_timers_and_io_live
 * hangs when the poll is always skipped). */

static int regs_now(void)
{
    return atomic_load(&sl__worker()->io_regs);
}

static void *main_io_regs(void *arg)
{
    (void)arg;
    int base = regs_now();
    int a[2], b[2];
    ASSERT_OK(sl_pipe(a));
    ASSERT_OK(sl_pipe(b));
    ASSERT_EQ(regs_now(), base); /* created, not waited on: not registered yet */
    char c;
    /* A wait that times out registers the fd. */
    ASSERT_EQ(sl_read_until(a[0], &c, 1, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_EQ(regs_now(), base + 1);
    ASSERT_EQ(sl_read_until(a[0], &c, 1, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_EQ(regs_now(), base + 1); /* once per fd */
    ASSERT_EQ(sl_read_until(b[0], &c, 1, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_EQ(regs_now(), base + 2);
    ASSERT_OK(sl_close(a[0]));
    ASSERT_EQ(regs_now(), base + 1);
    ASSERT_OK(sl_close(a[1])); /* never registered: the count stays */
    ASSERT_EQ(regs_now(), base + 1);
    /* The remaining fd still works. */
    ASSERT_EQ(sl_write(b[1], "y", 1), 1);
    ASSERT_EQ(sl_read(b[0], &c, 1), 1);
    ASSERT_EQ(c, 'y');
    ASSERT_OK(sl_close(b[0]));
    ASSERT_OK(sl_close(b[1]));
    ASSERT_EQ(regs_now(), base);
    return NULL;
}

SL_TEST(worker_counts_registered_fds)
{
    test_run(1, main_io_regs, NULL);
}
