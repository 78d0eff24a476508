/*
 * oneshot conformance: one case per item of the Tokio checklist (OS-01..OS-12 in
 * /work/shared/research/tokio-semantics.md), then the gateway's 500 ms health check, select,
 * cancellation, timeouts, cross-worker wakes, allocation counting and an RPC stress.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sluice.h>

#include "core/rt.h" /* sl__oneshot_lock_is_mine, sl__asym */
#include "test.h"
#include "test_rt.h"

typedef uint64_t u64;

static sl_task_t *spawn(void *(*fn)(void *), void *arg)
{
    return test_spawn_on(-1, fn, arg);
}

static void settle(void)
{
    for (int i = 0; i < 8; i++)
        ASSERT_OK(sl_task_yield());
}

typedef struct op {
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    u64 val;
    int res;
    _Atomic int done;
} op_t;

static void *do_recv(void *arg)
{
    op_t *o = arg;
    o->res = sl_oneshot_recv(o->rx, &o->val);
    o->done = 1;
    return (void *)(intptr_t)o->res;
}

static void *do_closed(void *arg)
{
    op_t *o = arg;
    o->res = sl_oneshot_tx_closed(o->tx);
    o->done = 1;
    return (void *)(intptr_t)o->res;
}

/* Runs fn in a child process and expects it to abort (a programmer-error assertion). */
static void expect_abort(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen("/dev/null", "w", stderr);
        (void)f;
        fn();
        _exit(0);
    }
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGABRT);
}

/* ==== OS-01..OS-12 ==== */

static void *main_os01(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    u64 v = 42, out = 0;
    ASSERT_OK(sl_oneshot_send(tx, &v)); /* never waits; consumes tx */
    ASSERT_OK(sl_oneshot_recv(rx, &out));
    ASSERT_EQ_U(out, 42);
    sl_oneshot_rx_drop(rx);
    /* A receiver already waiting gets the value handed over. */
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    op_t r = {.rx = rx};
    sl_task_t *t = spawn(do_recv, &r);
    settle();
    ASSERT(!r.done);
    v = 43;
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_EQ(test_join_result(t), 0);
    ASSERT_EQ_U(r.val, 43);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

SL_TEST(os01_send_then_recv)
{
    test_run(1, main_os01, NULL);
}

SL_TEST(os02_send_after_receiver_closed_or_dropped_fails)
{
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    u64 v = 5;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_rx_close(rx);
    ASSERT_ERR(sl_oneshot_send(tx, &v), SL_ECLOSED); /* tx consumed anyway */
    ASSERT_EQ_U(v, 5);
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_rx_drop(rx);
    ASSERT_ERR(sl_oneshot_send(tx, &v), SL_ECLOSED);
    ASSERT_EQ_U(v, 5);
}

static void *main_os03(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    u64 v;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_tx_drop(tx);
    ASSERT_ERR(sl_oneshot_recv(rx, &v), SL_ECLOSED);
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_tx_drop(tx);
    ASSERT_ERR(sl_oneshot_try_recv(rx, &v), SL_ECLOSED);
    sl_oneshot_rx_drop(rx);
    /* A pending receiver is woken. */
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    op_t r = {.rx = rx};
    sl_task_t *t = spawn(do_recv, &r);
    settle();
    ASSERT(!r.done);
    sl_oneshot_tx_drop(tx);
    ASSERT_EQ(test_join_result(t), SL_ECLOSED);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

SL_TEST(os03_sender_dropped_without_sending)
{
    test_run(1, main_os03, NULL);
}

SL_TEST(os04_try_recv_empty_keeps_receiver_usable)
{
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    u64 v = 1, out = 0;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    ASSERT_ERR(sl_oneshot_try_recv(rx, &out), SL_EEMPTY);
    ASSERT(!sl_oneshot_rx_is_terminated(rx));
    ASSERT_ERR(sl_oneshot_try_recv(rx, &out), SL_EEMPTY);
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_OK(sl_oneshot_try_recv(rx, &out));
    ASSERT_EQ_U(out, 1);
    sl_oneshot_rx_drop(rx);
}

static void *recv_twice(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    u64 v = 1;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_OK(sl_oneshot_recv(rx, &v));
    (void)sl_oneshot_recv(rx, &v); /* Tokio panics: "called after complete" */
    return NULL;
}

static void abort_child(void)
{
    sl_runtime_opts_t o;
    sl_runtime_opts_init(&o);
    o.workers = 1;
    sl_run(&o, recv_twice, NULL, NULL);
}

SL_TEST(os05_receiver_terminated_after_result)
{
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    u64 v = 1, out;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_OK(sl_oneshot_try_recv(rx, &out));
    ASSERT(sl_oneshot_rx_is_terminated(rx));
    ASSERT_ERR(sl_oneshot_try_recv(rx, &out), SL_ECLOSED);
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_tx_drop(tx);
    ASSERT_ERR(sl_oneshot_try_recv(rx, &out), SL_ECLOSED);
    ASSERT(sl_oneshot_rx_is_terminated(rx));
    ASSERT_ERR(sl_oneshot_try_recv(rx, &out), SL_ECLOSED);
    sl_oneshot_rx_drop(rx);
    /* Waiting again after completion is a programmer error. */
    expect_abort(abort_child);
}

static void *main_os06(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    u64 v = 8, out = 0;
    /* close() wakes tx.closed(); sending then fails. */
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    op_t c = {.tx = tx};
    sl_task_t *t = spawn(do_closed, &c);
    settle();
    ASSERT(!c.done);
    ASSERT(!sl_oneshot_tx_is_closed(tx));
    sl_oneshot_rx_close(rx);
    ASSERT(sl_oneshot_tx_is_closed(tx));
    ASSERT_EQ(test_join_result(t), 0);
    ASSERT_ERR(sl_oneshot_send(tx, &v), SL_ECLOSED);
    ASSERT_ERR(sl_oneshot_try_recv(rx, &out), SL_ECLOSED); /* nothing was sent */
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_rx_close(rx);
    ASSERT_ERR(sl_oneshot_recv(rx, &out), SL_ECLOSED);
    sl_oneshot_tx_drop(tx);
    sl_oneshot_rx_drop(rx);
    /* A value sent before close() is still received. */
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    ASSERT_OK(sl_oneshot_send(tx, &v));
    sl_oneshot_rx_close(rx);
    ASSERT_OK(sl_oneshot_recv(rx, &out));
    ASSERT_EQ_U(out, 8);
    sl_oneshot_rx_close(rx); /* after the value was received: no-op */
    ASSERT_ERR(sl_oneshot_try_recv(rx, &out), SL_ECLOSED);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

SL_TEST(os06_receiver_close)
{
    test_run(1, main_os06, NULL);
}

SL_TEST(os07_is_terminated)
{
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    u64 v = 1, out;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    ASSERT(!sl_oneshot_rx_is_terminated(rx));
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT(!sl_oneshot_rx_is_terminated(rx)); /* sent, unread */
    ASSERT_OK(sl_oneshot_try_recv(rx, &out));
    ASSERT(sl_oneshot_rx_is_terminated(rx));
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_rx_close(rx);
    ASSERT(!sl_oneshot_rx_is_terminated(rx)); /* closed, not yet polled */
    ASSERT_ERR(sl_oneshot_try_recv(rx, &out), SL_ECLOSED);
    ASSERT(sl_oneshot_rx_is_terminated(rx));
    sl_oneshot_tx_drop(tx);
    sl_oneshot_rx_drop(rx);
}

SL_TEST(os08_is_empty)
{
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    u64 v = 1, out;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    ASSERT(sl_oneshot_rx_is_empty(rx));
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT(!sl_oneshot_rx_is_empty(rx));
    ASSERT_OK(sl_oneshot_try_recv(rx, &out));
    ASSERT(sl_oneshot_rx_is_empty(rx));
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_tx_drop(tx);
    ASSERT(sl_oneshot_rx_is_empty(rx));
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_rx_close(rx);
    ASSERT(sl_oneshot_rx_is_empty(rx));
    sl_oneshot_tx_drop(tx);
    sl_oneshot_rx_drop(rx);
}

static void *main_os09(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    long live = test_alloc_live();
    char big[256];
    memset(big, 7, sizeof big);
    ASSERT_OK(sl_oneshot_new(sizeof big, &tx, &rx));
    ASSERT_OK(sl_oneshot_send(tx, big));
    ASSERT_EQ(test_alloc_live(), live + 1); /* the value lives until the receiver goes */
    sl_oneshot_rx_drop(rx);
    ASSERT_EQ(test_alloc_live(), live);
    return NULL;
}

SL_TEST(os09_receiver_drop_discards_unread_value)
{
    test_run(1, main_os09, NULL);
}

static void *main_os10(void *arg)
{
    int workers = (int)(intptr_t)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    op_t c = {.tx = tx};
    sl_task_t *t = test_spawn_on(workers - 1, do_closed, &c);
    ASSERT_OK(sl_sleep(2 * SL_MSEC));
    ASSERT(!sl_oneshot_tx_is_closed(tx));
    ASSERT(!c.done);
    sl_oneshot_rx_drop(rx);
    ASSERT_EQ(test_join_result(t), 0);
    ASSERT(sl_oneshot_tx_is_closed(tx));
    ASSERT_OK(sl_oneshot_tx_closed(tx));
    sl_oneshot_tx_drop(tx);
    return NULL;
}

SL_TEST(os10_tx_is_closed_and_closed_wait)
{
    test_run(1, main_os10, (void *)(intptr_t)1);
    test_run(2, main_os10, (void *)(intptr_t)2);
}

static void *main_os11(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    op_t r = {.rx = rx};
    sl_task_t *t = spawn(do_recv, &r);
    settle();
    sl_task_abort(t);
    ASSERT_EQ(test_join_result(t), SL_ECANCELED);
    ASSERT(!sl_oneshot_rx_is_terminated(rx));
    u64 v = 3, out = 0;
    ASSERT_ERR(sl_oneshot_recv_until(rx, &out, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_OK(sl_oneshot_recv(rx, &out)); /* the cancelled waits took nothing */
    ASSERT_EQ_U(out, 3);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

SL_TEST(os11_recv_is_cancel_safe)
{
    test_run(1, main_os11, NULL);
}

SL_TEST(os12_error_codes_have_messages)
{
    ASSERT_STR_EQ(sl_err_name(SL_ECLOSED), "SL_ECLOSED");
    ASSERT_STR_EQ(sl_err_name(SL_EEMPTY), "SL_EEMPTY");
    ASSERT(strcmp(sl_strerror(SL_ECLOSED), "unknown error") != 0);
    ASSERT(strcmp(sl_strerror(SL_EEMPTY), "unknown error") != 0);
}

/* ==== The gateway's health check: a reply within 500 ms ==== */

typedef struct health {
    sl_mpsc_rx_t *req;
    int answer;
} health_t;

static void *responder(void *arg)
{
    health_t *h = arg;
    sl_oneshot_tx_t *reply;
    while (sl_mpsc_recv(h->req, &reply) == 0) {
        if (h->answer) {
            u64 ok = 200;
            (void)sl_oneshot_send(reply, &ok);
        } else {
            (void)sl_sleep(2 * SL_SEC); /* stuck */
            sl_oneshot_tx_drop(reply);
        }
    }
    return NULL;
}

static int check(sl_mpsc_tx_t *req, u64 *status)
{
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(sizeof *status, &tx, &rx));
    ASSERT_OK(sl_mpsc_send(req, &tx));
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(500 * SL_MSEC));
    int r = sl_oneshot_recv(rx, status);
    int e = sl_timeout_exit(&to);
    sl_oneshot_rx_drop(rx);
    return e ? e : r;
}

static void *main_health(void *arg)
{
    int workers = (int)(intptr_t)arg;
    for (int answer = 1; answer >= 0; answer--) {
        sl_mpsc_tx_t *req;
        health_t h = {.answer = answer};
        ASSERT_OK(sl_mpsc_new(sizeof(sl_oneshot_tx_t *), 4, &req, &h.req));
        sl_task_t *t = test_spawn_on(workers - 1, responder, &h);
        u64 status = 0;
        int64_t t0 = sl_now(); /* deadlines count from the cached clock */
        if (answer) {
            ASSERT_OK(check(req, &status));
            ASSERT_EQ_U(status, 200);
        } else {
            ASSERT_ERR(check(req, &status), SL_ETIMEDOUT);
            ASSERT_GE(sl_clock() - t0, 499 * SL_MSEC);
            sl_task_abort(t);
        }
        sl_mpsc_tx_drop(req);
        test_join_result(t);
        sl_mpsc_rx_drop(h.req);
    }
    return NULL;
}

SL_TEST(health_check_under_500ms_timeout)
{
    test_run(1, main_health, (void *)(intptr_t)1);
    test_run(2, main_health, (void *)(intptr_t)2);
}

/* ==== Select: losing clauses leave no trace ==== */

typedef struct two {
    sl_oneshot_tx_t *tx[2];
    sl_oneshot_rx_t *rx[2];
    u64 v[2];
    int win, res;
} two_t;

static void *select_recv2(void *arg)
{
    two_t *s = arg;
    sl_clause_t c[2];
    sl_clause_oneshot_recv(&c[0], s->rx[0], &s->v[0]);
    sl_clause_oneshot_recv(&c[1], s->rx[1], &s->v[1]);
    s->win = sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER);
    s->res = s->win >= 0 ? c[s->win].res : s->win;
    return NULL;
}

static void *main_select(void *arg)
{
    int workers = (int)(intptr_t)arg;
    for (int round = 0; round < 200; round++) {
        two_t s = {0};
        for (int i = 0; i < 2; i++)
            ASSERT_OK(sl_oneshot_new(8, &s.tx[i], &s.rx[i]));
        sl_task_t *t = test_spawn_on(workers - 1, select_recv2, &s);
        if (round % 2)
            ASSERT_OK(sl_sleep(SL_MSEC / 4));
        u64 a = 100, b = 200;
        ASSERT_OK(sl_oneshot_send(s.tx[0], &a));
        ASSERT_OK(sl_oneshot_send(s.tx[1], &b));
        test_join_result(t);
        ASSERT(s.win == 0 || s.win == 1);
        ASSERT_EQ(s.res, 0);
        ASSERT_EQ_U(s.v[s.win], s.win ? 200 : 100);
        int lose = 1 - s.win;
        ASSERT_EQ_U(s.v[lose], 0);
        ASSERT(!sl_oneshot_rx_is_terminated(s.rx[lose]));
        ASSERT(!sl_oneshot_rx_is_empty(s.rx[lose])); /* its value is still there */
        u64 out;
        ASSERT_OK(sl_oneshot_try_recv(s.rx[lose], &out));
        ASSERT_EQ_U(out, lose ? 200 : 100);
        for (int i = 0; i < 2; i++)
            sl_oneshot_rx_drop(s.rx[i]);
    }
    /* A closed clause beside a ready recv. */
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_clause_t c[2];
    sl_clause_oneshot_closed(&c[0], tx);
    sl_clause_sleep_until(&c[1], sl_deadline_in(SL_MSEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    sl_oneshot_rx_close(rx);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_EQ(c[0].res, 0);
    sl_oneshot_tx_drop(tx);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

SL_TEST(select_losing_recv_clause_takes_nothing)
{
    test_run(1, main_select, (void *)(intptr_t)1);
    test_run(2, main_select, (void *)(intptr_t)2);
}

/* ==== Cancellation, timeout scopes, three forms ==== */

static void *main_cancel(void *arg)
{
    int workers = (int)(intptr_t)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    op_t r = {.rx = rx};
    sl_task_t *t = test_spawn_until_parked(workers - 1, do_recv, &r, &r.done);
    sl_task_abort(t);
    ASSERT_EQ(test_join_result(t), SL_ECANCELED);
    op_t c = {.tx = tx};
    t = test_spawn_until_parked(workers - 1, do_closed, &c, &c.done);
    sl_task_abort(t);
    ASSERT_EQ(test_join_result(t), SL_ECANCELED);
    u64 v = 6, out;
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_OK(sl_oneshot_try_recv(rx, &out));
    ASSERT_EQ_U(out, 6);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

SL_TEST(cancel_waiting_recv_and_closed_return_ecanceled)
{
    test_run(1, main_cancel, (void *)(intptr_t)1);
    test_run(2, main_cancel, (void *)(intptr_t)2);
}

static void *main_timeout(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    u64 out;
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(3 * SL_MSEC));
    ASSERT_ERR(sl_oneshot_recv(rx, &out), SL_ETIMEDOUT);
    ASSERT_ERR(sl_oneshot_tx_closed(tx), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    ASSERT(!sl_oneshot_rx_is_terminated(rx));
    sl_oneshot_tx_drop(tx);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

SL_TEST(timeout_scope_gives_etimedout)
{
    test_run(1, main_timeout, NULL);
}

static void *main_forms(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    u64 v = 1, out;
    ASSERT_ERR(sl_oneshot_try_recv(rx, &out), SL_EEMPTY);
    ASSERT_ERR(sl_oneshot_recv_until(rx, &out, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_ERR(sl_oneshot_tx_try_closed(tx), SL_EAGAIN);
    ASSERT_ERR(sl_oneshot_tx_closed_until(tx, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_OK(sl_oneshot_recv_until(rx, &out, sl_deadline_in(SL_SEC)));
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_OK(sl_oneshot_recv(rx, &out));
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_rx_close(rx);
    ASSERT_OK(sl_oneshot_tx_try_closed(tx));
    ASSERT_OK(sl_oneshot_tx_closed(tx));
    ASSERT_OK(sl_oneshot_tx_closed_until(tx, sl_deadline_in(SL_SEC)));
    sl_oneshot_tx_drop(tx);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

SL_TEST(three_forms_of_every_blocking_op)
{
    test_run(1, main_forms, NULL);
}

/* ==== Cross-worker wakes ==== */

static void *main_cross(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    op_t r = {.rx = rx};
    sl_task_t *t = test_spawn_on(1, do_recv, &r);
    ASSERT_OK(sl_sleep(5 * SL_MSEC));
    u64 v = 77;
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_EQ(test_join_result(t), 0);
    ASSERT_EQ_U(r.val, 77);
    sl_oneshot_rx_drop(rx);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    r = (op_t){.rx = rx};
    t = test_spawn_on(1, do_recv, &r);
    ASSERT_OK(sl_sleep(5 * SL_MSEC));
    sl_oneshot_tx_drop(tx);
    ASSERT_EQ(test_join_result(t), SL_ECLOSED);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

SL_TEST(cross_worker_wakes)
{
    test_run(2, main_cross, NULL);
}

/* ==== Allocation counting and an RPC stress (the oneshot_rpc workload's shape) ==== */

typedef struct req {
    u64 add;
    sl_oneshot_tx_t *reply;
} req_t;

static void *actor(void *arg)
{
    sl_mpsc_rx_t *rx = arg;
    u64 counter = 0;
    req_t q;
    while (sl_mpsc_recv(rx, &q) == 0) {
        counter += q.add;
        ASSERT_OK(sl_oneshot_send(q.reply, &counter));
    }
    return NULL;
}

static long rpc_round(sl_mpsc_tx_t *tx, long n, u64 *counter)
{
    long a0 = test_alloc_total();
    for (long i = 0; i < n; i++) {
        req_t q = {.add = 1};
        sl_oneshot_rx_t *rx;
        ASSERT_OK(sl_oneshot_new(sizeof(u64), &q.reply, &rx));
        ASSERT_OK(sl_mpsc_send(tx, &q));
        ASSERT_OK(sl_oneshot_recv(rx, counter));
        sl_oneshot_rx_drop(rx);
    }
    return test_alloc_total() - a0;
}

static void *main_rpc(void *arg)
{
    int workers = (int)(intptr_t)arg;
    sl_mpsc_tx_t *tx;
    sl_mpsc_rx_t *rx;
    ASSERT_OK(sl_mpsc_new(sizeof(req_t), 32, &tx, &rx));
    sl_task_t *t = test_spawn_on(workers - 1, actor, rx);
    u64 counter = 0;
    rpc_round(tx, 100, &counter);
    long allocs = rpc_round(tx, 20000, &counter);
    /* None at all: every reply's block goes back to the client worker's cache when the client
     * drops its receiver (the last half), and the next request's oneshot reuses it. */
    ASSERT_EQ(allocs, 0);
    ASSERT_EQ_U(counter, 20100);
    sl_mpsc_tx_drop(tx);
    test_join_result(t);
    sl_mpsc_rx_drop(rx);
    return NULL;
}

SL_TEST(alloc_none_per_oneshot_rpc_round_trip)
{
    test_run(1, main_rpc, (void *)(intptr_t)1);
    test_run(2, main_rpc, (void *)(intptr_t)2);
}

/* A value size the block's header cannot record (more than UINT32_MAX bytes) is refused
 * before anything is allocated, as an allocation that cannot be made. */
SL_TEST(new_refuses_values_over_4_gib)
{
    sl_oneshot_tx_t *tx = NULL;
    sl_oneshot_rx_t *rx = NULL;
    ASSERT_ERR(sl_oneshot_new((size_t)UINT32_MAX + 1, &tx, &rx), SL_ENOMEM);
    ASSERT_ERR(sl_oneshot_new(SIZE_MAX, &tx, &rx), SL_ENOMEM);
    ASSERT_PTR_EQ(tx, NULL);
    ASSERT_PTR_EQ(rx, NULL);
}

/* ==== The block's biased lock ==== */

/* A block that one worker's tasks keep using becomes that thread's: its lock is then taken
 * with plain stores. Another worker's actor that replies through such a block revokes the bias
 * (a membarrier), and the reply still arrives; the block is shared from then on, and every
 * value stays right whichever actor answers. Without membarrier (SLUICE_NO_MEMBARRIER=1,
 * valgrind) nothing is biased and the same round trips run through the shared lock. */
static void *main_bias(void *arg)
{
    (void)arg;
    sl_mpsc_tx_t *tx0, *tx1;
    sl_mpsc_rx_t *rx0, *rx1;
    ASSERT_OK(sl_mpsc_new(sizeof(req_t), 32, &tx0, &rx0));
    ASSERT_OK(sl_mpsc_new(sizeof(req_t), 32, &tx1, &rx1));
    ASSERT_EQ(sl_worker_index(), 0);
    sl_task_t *a0 = test_spawn_on(0, actor, rx0); /* the main task's worker */
    sl_task_t *a1 = test_spawn_on(1, actor, rx1);
    u64 c0 = 0, c1 = 0;
    rpc_round(tx0, 100, &c0); /* 200 locks of one cached block by this thread */
    ASSERT_EQ_U(c0, 100);
    sl_oneshot_tx_t *probe;
    sl_oneshot_rx_t *prx;
    ASSERT_OK(sl_oneshot_new(sizeof(u64), &probe, &prx)); /* that block again */
    ASSERT_EQ(sl__oneshot_lock_is_mine(probe), sl__asym ? 1 : 0);
    sl_oneshot_tx_drop(probe);
    sl_oneshot_rx_drop(prx);
    rpc_round(tx1, 1, &c1); /* the other worker's send revokes */
    ASSERT_EQ_U(c1, 1);
    ASSERT_OK(sl_oneshot_new(sizeof(u64), &probe, &prx));
    ASSERT_EQ(sl__oneshot_lock_is_mine(probe), 0);
    sl_oneshot_tx_drop(probe);
    sl_oneshot_rx_drop(prx);
    for (int i = 0; i < 50; i++) {
        rpc_round(tx0, 2, &c0);
        rpc_round(tx1, 2, &c1);
    }
    ASSERT_EQ_U(c0, 200);
    ASSERT_EQ_U(c1, 101);
    sl_mpsc_tx_drop(tx0);
    sl_mpsc_tx_drop(tx1);
    test_join_result(a0);
    test_join_result(a1);
    sl_mpsc_rx_drop(rx0);
    sl_mpsc_rx_drop(rx1);
    return NULL;
}

SL_TEST(block_biased_by_one_worker_answered_from_another_2workers)
{
    test_run(2, main_bias, NULL);
}

/* A receiver on worker 1: polls with try_recv or waits with recv, notes whether the sender had
 * released the block's lock (`released`, set by the held test) when the value came, drops. */
typedef struct far_rx {
    sl_oneshot_rx_t *rx;
    int poll;
    _Atomic int started, released;
    int released_seen;
    u64 got;
} far_rx_t;

static void *far_receiver(void *arg)
{
    far_rx_t *f = arg;
    atomic_store(&f->started, 1);
    int r;
    if (f->poll) {
        while ((r = sl_oneshot_try_recv(f->rx, &f->got)) == SL_EEMPTY)
            sl__cpu_relax();
    } else {
        r = sl_oneshot_recv(f->rx, &f->got);
    }
    ASSERT_OK(r);
    f->released_seen = atomic_load(&f->released);
    sl_oneshot_rx_drop(f->rx); /* the last half: the block goes to this worker's cache */
    return NULL;
}

/* On worker 0, in a fresh runtime: 100 blocks used by this thread alone (the send locks, the
 * receive finds the block its own), then a new oneshot on the cached block, which is now
 * biased to this thread where membarrier is there. */
static void new_biased(sl_oneshot_tx_t **tx, sl_oneshot_rx_t **rx)
{
    ASSERT_EQ(sl_worker_index(), 0);
    for (int i = 0; i < 100; i++) {
        ASSERT_OK(sl_oneshot_new(sizeof(u64), tx, rx));
        u64 v = (u64)i;
        ASSERT_OK(sl_oneshot_send(*tx, &v));
        ASSERT_OK(sl_oneshot_recv(*rx, &v));
        ASSERT_EQ_U(v, (u64)i);
        sl_oneshot_rx_drop(*rx);
    }
    ASSERT_OK(sl_oneshot_new(sizeof(u64), tx, rx));
    ASSERT_EQ(sl__oneshot_lock_is_mine(*tx), sl__asym ? 1 : 0);
}

/* Spawns f's receiver on worker 1 and returns once it runs. */
static sl_task_t *far_start(far_rx_t *f)
{
    sl_task_t *t = test_spawn_on(1, far_receiver, f);
    while (!atomic_load(&f->started))
        sl__cpu_relax();
    return t;
}

/* A receiver on the other worker races a send by the thread the block is biased to: it polls
 * with try_recv (where it may find TX_GONE before the sender's unlock is done, and must not take
 * the block then: rx_owns), or waits with recv (whose arm revokes the bias while the sender may
 * be inside). Each round uses a fresh runtime, so that its blocks are new and can be biased.
 * The window between the sender's state store and its unlock is a few instructions, which no
 * run can be made to hit: with rx_owns reading TX_GONE alone, this passed 3,600 rounds under
 * ASan. receiver_owns_block_only_after_senders_unlock_2workers, below, holds that window open. */
static void *main_bias_race(void *arg)
{
    int round = (int)(intptr_t)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    new_biased(&tx, &rx);
    far_rx_t f = {.rx = rx, .poll = round % 2};
    sl_task_t *t = far_start(&f);
    test_spin_ns((round % 4) * 2000); /* either side may come first */
    u64 v = 1000 + (u64)round;
    ASSERT_OK(sl_oneshot_send(tx, &v));
    test_join_result(t);
    ASSERT_EQ_U(f.got, 1000 + (u64)round);
    return NULL;
}

SL_TEST(biased_sender_races_receiver_on_another_worker_2workers)
{
    for (int round = 0; round < 60 * test_scale(); round++)
        test_run(2, main_bias_race, (void *)(intptr_t)round);
}

/* The receiver owns the block only once the sender's unlock is done, whatever the state says.
 * Here the thread the block is biased to holds its lock (as a sender does between its state
 * store with TX_GONE and its unlock) after the value is in: a receiver on the other worker that
 * polls must wait for the release, and takes the value only after it. Taking the block on
 * TX_GONE alone (the rule of the lock bit, which was released by that same store) lets the
 * receiver free the block under the holder: checked to fail here that way, at the assertion on
 * `released`. */
static void *main_held(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    new_biased(&tx, &rx);
    u64 v = 77;
    ASSERT_OK(sl_oneshot_send(tx, &v)); /* TX_GONE: the sender is consumed */
    sl__oneshot_lock_hold(tx);          /* ... but "still inside" */
    far_rx_t f = {.rx = rx, .poll = 1};
    sl_task_t *t = far_start(&f);
    test_spin_ns(20 * SL_MSEC);
    atomic_store(&f.released, 1);
    sl__oneshot_lock_release(tx);
    test_join_result(t);
    ASSERT_EQ(f.released_seen, 1);
    ASSERT_EQ_U(f.got, 77);
    return NULL;
}

SL_TEST(receiver_owns_block_only_after_senders_unlock_2workers)
{
    test_run(2, main_held, NULL);
}

/* ==== The per-worker block cache ==== */

/* A block freed on another worker than the one that allocated it goes to the freeing worker's
 * cache, and that worker's next oneshot reuses it. */
static void *drop_rx_then_reuse(void *arg)
{
    sl_oneshot_rx_t *rx = arg;
    u64 v = 0;
    ASSERT_OK(sl_oneshot_recv(rx, &v));
    ASSERT_EQ_U(v, 5);
    long a0 = test_alloc_total();
    sl_oneshot_rx_drop(rx); /* the last half: the block is this worker's now */
    sl_oneshot_tx_t *tx2;
    sl_oneshot_rx_t *rx2;
    ASSERT_OK(sl_oneshot_new(sizeof(u64), &tx2, &rx2));
    ASSERT_EQ(test_alloc_total(), a0); /* the block from the other worker */
    ASSERT_PTR_EQ(rx2, rx);
    v = 6;
    ASSERT_OK(sl_oneshot_send(tx2, &v));
    v = 0;
    ASSERT_OK(sl_oneshot_recv(rx2, &v));
    ASSERT_EQ_U(v, 6);
    sl_oneshot_rx_drop(rx2);
    return NULL;
}

static void *main_cache_cross(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(sizeof(u64), &tx, &rx)); /* on worker 0 */
    u64 v = 5;
    ASSERT_OK(sl_oneshot_send(tx, &v));
    sl_task_t *t = test_spawn_on(1, drop_rx_then_reuse, rx);
    test_join_result(t);
    /* Worker 1 keeps the block cached: the runtime frees it (test_run checks nothing leaks). */
    return NULL;
}

SL_TEST(cache_block_freed_on_other_worker_is_reused_there)
{
    test_run(2, main_cache_cross, NULL);
}

/* Blocks are reused across element sizes of one class, values are intact whatever the size,
 * and a block that does not fit a class is freed at once. */
static void *main_cache_sizes(void *arg)
{
    (void)arg;
    static const size_t sizes[] = {0, 1, 8, 16, 63, 64, 65, 100, 192, 193, 256, 1000};
    unsigned char in[1000], out[1001];
    for (int round = 0; round < 3; round++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            for (size_t i = 0; i < n; i++)
                in[i] = (unsigned char)(i * 7 + k + (size_t)round);
            sl_oneshot_tx_t *tx;
            sl_oneshot_rx_t *rx;
            long live0 = test_alloc_live();
            ASSERT_OK(sl_oneshot_new(n, &tx, &rx));
            ASSERT(sl_oneshot_rx_is_empty(rx));
            ASSERT(!sl_oneshot_rx_is_terminated(rx));
            ASSERT(!sl_oneshot_tx_is_closed(tx));
            ASSERT_OK(sl_oneshot_send(tx, in));
            memset(out, 0xee, sizeof out);
            ASSERT_OK(sl_oneshot_try_recv(rx, out));
            ASSERT(memcmp(in, out, n) == 0);
            ASSERT_EQ(out[n], 0xee); /* nothing beyond the element */
            ASSERT(sl_oneshot_rx_is_terminated(rx));
            sl_oneshot_rx_drop(rx);
            if (n > 192)
                ASSERT_EQ(test_alloc_live(), live0); /* freed at once */
            else if (round > 0)
                ASSERT_EQ(test_alloc_live(), live0); /* from the cache, back to it */
        }
    }
    return NULL;
}

SL_TEST(cache_size_classes)
{
    test_run(1, main_cache_sizes, NULL);
}

/* The cache is bounded: dropping many oneshots at once frees most of them. */
static void *main_cache_bounded(void *arg)
{
    (void)arg;
    enum { N = 1000 };
    static sl_oneshot_tx_t *tx[N];
    static sl_oneshot_rx_t *rx[N];
    long live0 = test_alloc_live();
    for (int i = 0; i < N; i++)
        ASSERT_OK(sl_oneshot_new(sizeof(u64), &tx[i], &rx[i]));
    ASSERT_GE(test_alloc_live(), live0 + N - 64);
    for (int i = 0; i < N; i++) {
        sl_oneshot_tx_drop(tx[i]);
        sl_oneshot_rx_drop(rx[i]);
    }
    ASSERT_LE(test_alloc_live(), live0 + 64); /* CACHE_MAX in src/chan/oneshot.c */
    return NULL;
}

SL_TEST(cache_is_bounded)
{
    test_run(1, main_cache_bounded, NULL);
}

/* A oneshot made outside any runtime (plain malloc) and released inside one is freed, not
 * cached: the runtime's allocator must never see it (test_run checks the allocator's count). */
static void *main_foreign_block(void *arg)
{
    sl_oneshot_rx_t *rx = arg;
    u64 v = 0;
    ASSERT_OK(sl_oneshot_recv(rx, &v));
    ASSERT_EQ_U(v, 9);
    sl_oneshot_rx_drop(rx);
    sl_oneshot_tx_t *tx2;
    sl_oneshot_rx_t *rx2;
    ASSERT_OK(sl_oneshot_new(sizeof(u64), &tx2, &rx2)); /* if it were cached: this one */
    sl_oneshot_tx_drop(tx2);
    sl_oneshot_rx_drop(rx2);
    return NULL;
}

SL_TEST(cache_ignores_blocks_made_outside_the_runtime)
{
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    ASSERT_OK(sl_oneshot_new(sizeof(u64), &tx, &rx));
    u64 v = 9;
    ASSERT_OK(sl_oneshot_send(tx, &v));
    test_run(1, main_foreign_block, rx);
}

/* ---- The written-out send and every place it hands over ---- */

/* sl_oneshot_send handles an 8-byte value to a parked receiver itself (claim, copy into the
 * receiver's buffer, wake) and hands everything else over: no receiver parked (the value is
 * stored), the receiver closed (SL_ECLOSED), a parked receiver whose wait an abort has already
 * claimed (the aborted receive returns SL_ECANCELED and the value is stored for a later one),
 * other sizes (send_any). */
typedef struct big {
    u64 a, b, c;
} big_t;

static void *recv_big(void *arg)
{
    sl_oneshot_rx_t *rx = arg;
    big_t v;
    ASSERT_OK(sl_oneshot_recv(rx, &v));
    ASSERT_EQ_U(v.a, 1);
    ASSERT_EQ_U(v.b, 2);
    ASSERT_EQ_U(v.c, 3);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

static void *main_send_cases(void *arg)
{
    (void)arg;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    /* Parked receiver, 8 bytes: handed over directly. */
    op_t o = {0};
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    o.tx = tx, o.rx = rx;
    sl_task_t *t = spawn(do_recv, &o);
    settle();
    ASSERT(!o.done);
    u64 v = 77;
    ASSERT_OK(sl_oneshot_send(tx, &v));
    test_join_ok(t);
    ASSERT_EQ(o.res, 0);
    ASSERT_EQ_U(o.val, 77);
    ASSERT(sl_oneshot_rx_is_terminated(rx));
    sl_oneshot_rx_drop(rx);
    /* Nobody parked: stored, received later. */
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    v = 78;
    ASSERT_OK(sl_oneshot_send(tx, &v));
    v = 0;
    ASSERT_OK(sl_oneshot_recv(rx, &v));
    ASSERT_EQ_U(v, 78);
    sl_oneshot_rx_drop(rx);
    /* Receiver closed: SL_ECLOSED, and the sender is consumed. */
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    sl_oneshot_rx_close(rx);
    ASSERT_ERR(sl_oneshot_send(tx, &v), SL_ECLOSED);
    sl_oneshot_rx_drop(rx);
    /* A parked receiver whose task was aborted (its wait claimed by the abort before the send
     * runs): the claim fails, the value is stored, and the receiver's next try finds it. */
    memset(&o, 0, sizeof o);
    ASSERT_OK(sl_oneshot_new(8, &tx, &rx));
    o.tx = tx, o.rx = rx;
    t = spawn(do_recv, &o);
    settle();
    sl_task_abort(t);
    v = 79;
    ASSERT_OK(sl_oneshot_send(tx, &v));
    ASSERT_EQ(test_join_result(t), SL_ECANCELED);
    v = 0;
    ASSERT_OK(sl_oneshot_try_recv(rx, &v));
    ASSERT_EQ_U(v, 79);
    sl_oneshot_rx_drop(rx);
    /* Another size to a parked receiver: the general send. */
    ASSERT_OK(sl_oneshot_new(sizeof(big_t), &tx, &rx));
    t = spawn(recv_big, rx);
    settle();
    big_t b = {1, 2, 3};
    ASSERT_OK(sl_oneshot_send(tx, &b));
    test_join_ok(t);
    return NULL;
}

SL_TEST(send_written_out_and_every_hand_over)
{
    test_run(1, main_send_cases, NULL);
}

/* ---- Plain claims against aborts (src/core/rt.h, "Plain claims") -----------------------------
 * A reply to a receiver parked on the replier's own worker claims the receiver's one-clause
 * wait with a plain load and store; an abort from another worker posts its claim to that
 * worker instead of racing it. Here 64 receivers on worker 1 each park on a oneshot of their
 * own (or on an mpsc of their own), a replier on worker 1 answers them all after a delay that
 * varies from round to round, and the main task on worker 0 aborts every receiver meanwhile:
 * each receiver ends exactly once, with its own value or SL_ECANCELED, and each send reports
 * what became of its value (taken, stored for a receiver that was cancelled, or SL_ECLOSED for
 * one already gone). A double claim would wake a task twice (an assertion in the scheduler) or
 * lose one. */

#define PR_RECEIVERS 64
#define PR_ROUNDS    150

struct pr_round {
    int mpsc;
    int delay_ns, yield_every;
    sl_oneshot_tx_t *otx[PR_RECEIVERS];
    sl_oneshot_rx_t *orx[PR_RECEIVERS];
    sl_mpsc_tx_t *mtx[PR_RECEIVERS];
    sl_mpsc_rx_t *mrx[PR_RECEIVERS];
    _Atomic int armed, go, got, cancelled;
};

struct pr_recv {
    struct pr_round *r;
    int i;
};

static void *pr_receiver(void *arg)
{
    struct pr_recv *a = arg;
    struct pr_round *r = a->r;
    uint64_t v = UINT64_MAX;
    atomic_fetch_add(&r->armed, 1);
    int res = r->mpsc ? sl_mpsc_recv(r->mrx[a->i], &v) : sl_oneshot_recv(r->orx[a->i], &v);
    if (res == 0) {
        ASSERT_EQ_U(v, (uint64_t)a->i);
        atomic_fetch_add(&r->got, 1);
    } else {
        ASSERT_ERR(res, SL_ECANCELED);
        atomic_fetch_add(&r->cancelled, 1);
    }
    if (r->mpsc)
        sl_mpsc_rx_drop(r->mrx[a->i]);
    else
        sl_oneshot_rx_drop(r->orx[a->i]);
    return NULL;
}

static void *pr_replier(void *arg)
{
    struct pr_round *r = arg;
    while (!atomic_load(&r->go))
        ASSERT_OK(sl_task_yield());
    test_spin_ns(r->delay_ns);
    for (int i = 0; i < PR_RECEIVERS; i++) {
        uint64_t v = (uint64_t)i;
        int res;
        if (r->mpsc) {
            res = sl_mpsc_try_send(r->mtx[i], &v);
            if (res != 0)
                ASSERT_ERR(res, SL_ECLOSED);
            sl_mpsc_tx_drop(r->mtx[i]);
        } else {
            res = sl_oneshot_send(r->otx[i], &v);
            if (res != 0)
                ASSERT_ERR(res, SL_ECLOSED);
        }
        /* Rounds end among the sends (the worker's aborts are claimed between rounds). */
        if (i % r->yield_every == 0)
            ASSERT_OK(sl_task_yield());
    }
    return NULL;
}

static void *main_plain_claims_race(void *arg)
{
    int mpsc = (int)(intptr_t)arg;
    int got = 0, cancelled = 0;
    for (int it = 0; it < PR_ROUNDS; it++) {
        struct pr_round r;
        struct pr_recv a[PR_RECEIVERS];
        void *args[PR_RECEIVERS];
        memset(&r, 0, sizeof r);
        r.mpsc = mpsc;
        r.delay_ns = (it % 30) * 1000;
        r.yield_every = 1 + it % 5;
        for (int i = 0; i < PR_RECEIVERS; i++) {
            if (mpsc)
                ASSERT_OK(sl_mpsc_new(sizeof(uint64_t), 1, &r.mtx[i], &r.mrx[i]));
            else
                ASSERT_OK(sl_oneshot_new(sizeof(uint64_t), &r.otx[i], &r.orx[i]));
            a[i].r = &r;
            a[i].i = i;
            args[i] = &a[i];
        }
        test_abort_race(PR_RECEIVERS, pr_receiver, args, pr_replier, &r, &r.armed, &r.go);
        ASSERT_EQ(atomic_load(&r.got) + atomic_load(&r.cancelled), PR_RECEIVERS);
        got += atomic_load(&r.got);
        cancelled += atomic_load(&r.cancelled);
    }
    printf("%s: received %d, cancelled %d\n", mpsc ? "mpsc" : "oneshot", got, cancelled);
    return NULL;
}

SL_TEST(plain_claims_race_aborts_from_another_worker_2workers)
{
    test_run(2, main_plain_claims_race, (void *)(intptr_t)0);
    test_run(2, main_plain_claims_race, (void *)(intptr_t)1);
}
