/* Broadcast: one case per item of tokio-semantics.md 1.4 (BC-xx), 1.14 (X-xx) and section 2,
 * then stress, allocation, cross-worker, select, cancellation, timeout and the three forms. */
#include <pthread.h>
#include <string.h>

#include <sluice.h>

#include "test.h"
#include "test_rt.h"

static sl_broadcast_tx_t *mk(size_t cap, sl_broadcast_rx_t **rx)
{
    sl_broadcast_tx_t *tx = NULL;
    ASSERT_OK(sl_broadcast_new(sizeof(uint64_t), cap, &tx, rx));
    return tx;
}

static void snd(sl_broadcast_tx_t *tx, uint64_t v)
{
    ASSERT_OK(sl_broadcast_send(tx, &v, NULL));
}

static void expect_val(sl_broadcast_rx_t *rx, uint64_t v)
{
    uint64_t got = ~0ull, lag = 0;
    ASSERT_OK(sl_broadcast_try_recv(rx, &got, &lag));
    ASSERT_EQ_U(got, v);
}

static void expect_lag(sl_broadcast_rx_t *rx, uint64_t n)
{
    uint64_t got = 0, lag = 0;
    ASSERT_ERR(sl_broadcast_try_recv(rx, &got, &lag), SL_ELAGGED);
    ASSERT_EQ_U(lag, n);
}

static void expect_empty(sl_broadcast_rx_t *rx)
{
    uint64_t got = 0;
    ASSERT_ERR(sl_broadcast_try_recv(rx, &got, NULL), SL_EEMPTY);
}

static void expect_closed(sl_broadcast_rx_t *rx)
{
    uint64_t got = 0;
    ASSERT_ERR(sl_broadcast_try_recv(rx, &got, NULL), SL_ECLOSED);
}

/* Lets every other task on this worker run until it parks. */
static void settle(void)
{
    for (int i = 0; i < 20; i++)
        sl_task_yield();
}

/* ---- BC-01 capacity 0 and too big ---- */

static void *bc01(void *a)
{
    (void)a;
    sl_broadcast_tx_t *tx = NULL;
    sl_broadcast_rx_t *rx = NULL;
    ASSERT_ERR(sl_broadcast_new(8, 0, &tx, &rx), SL_EINVAL);
    ASSERT_ERR(sl_broadcast_new(8, SIZE_MAX / 2 + 1, &tx, &rx), SL_EINVAL);
    ASSERT_NULL(tx);
    ASSERT_NULL(rx);
    return NULL;
}

SL_TEST(bcast_01_zero_capacity_rejected)
{
    test_run(1, bc01, NULL);
}

/* ---- BC-02 ring length is the next power of two, and lag uses it (also section 2) ---- */

static void *bc02(void *a)
{
    (void)a;
    static const size_t in[] = {1, 2, 3, 10, 16, 50, 100, 1000};
    static const size_t want[] = {1, 2, 4, 16, 16, 64, 128, 1024};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        sl_broadcast_tx_t *tx = mk(in[i], NULL);
        ASSERT_EQ_U(sl_broadcast_capacity(tx), want[i]);
        sl_broadcast_tx_drop(tx);
    }
    /* channel(3) has 4 slots: send 1..4, recv 1, send 5: no lag; send 6: lag 1. */
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(3, &rx);
    for (uint64_t v = 1; v <= 4; v++)
        snd(tx, v);
    expect_val(rx, 1);
    snd(tx, 5);
    ASSERT_EQ_U(sl_broadcast_rx_len(rx), 4);
    snd(tx, 6);
    ASSERT_EQ_U(sl_broadcast_rx_len(rx), 5);
    expect_lag(rx, 1);
    for (uint64_t v = 3; v <= 6; v++)
        expect_val(rx, v);
    expect_empty(rx);
    sl_broadcast_rx_drop(rx);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_02_pow2_ring_and_lag_length)
{
    test_run(1, bc02, NULL);
}

/* ---- BC-03 a sender made without a receiver is closed until subscribe ---- */

static void *bc03(void *a)
{
    (void)a;
    sl_broadcast_tx_t *tx = mk(4, NULL);
    uint64_t v = 1;
    ASSERT_ERR(sl_broadcast_send(tx, &v, NULL), SL_ENORECV);
    ASSERT_OK(sl_broadcast_try_tx_closed(tx));
    ASSERT_OK(sl_broadcast_tx_closed(tx)); /* ready at once */
    sl_broadcast_rx_t *rx;
    ASSERT_OK(sl_broadcast_subscribe(tx, &rx));
    ASSERT_ERR(sl_broadcast_try_tx_closed(tx), SL_EAGAIN);
    size_t n = 0;
    ASSERT_OK(sl_broadcast_send(tx, &v, &n));
    ASSERT_EQ_U(n, 1);
    expect_val(rx, 1);
    sl_broadcast_rx_drop(rx);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_03_new_without_receiver_is_closed)
{
    test_run(1, bc03, NULL);
}

/* ---- BC-04 send reports every subscribed receiver, readers or not ---- */

static void *bc04(void *a)
{
    (void)a;
    sl_broadcast_rx_t *r1, *r2, *r3;
    sl_broadcast_tx_t *tx = mk(2, &r1);
    ASSERT_OK(sl_broadcast_subscribe(tx, &r2));
    ASSERT_OK(sl_broadcast_subscribe(tx, &r3));
    size_t n = 0;
    for (uint64_t v = 0; v < 5; v++) { /* r2, r3 lag and never read: still counted */
        ASSERT_OK(sl_broadcast_send(tx, &v, &n));
        ASSERT_EQ_U(n, 3);
    }
    ASSERT_EQ_U(sl_broadcast_receiver_count(tx), 3);
    sl_broadcast_rx_drop(r2);
    uint64_t v = 9;
    ASSERT_OK(sl_broadcast_send(tx, &v, &n));
    ASSERT_EQ_U(n, 2);
    sl_broadcast_rx_drop(r1);
    sl_broadcast_rx_drop(r3);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_04_send_returns_receiver_count)
{
    test_run(1, bc04, NULL);
}

/* ---- BC-05 send without receivers stores nothing; later sends work again ---- */

static void *bc05(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(4, &rx);
    sl_broadcast_rx_drop(rx);
    uint64_t v = 7;
    size_t n = 99;
    ASSERT_ERR(sl_broadcast_send(tx, &v, &n), SL_ENORECV);
    ASSERT_EQ_U(n, 99); /* a failed call changes nothing */
    ASSERT_OK(sl_broadcast_subscribe(tx, &rx));
    expect_empty(rx); /* the failed value was not stored */
    ASSERT_EQ_U(sl_broadcast_rx_len(rx), 0);
    snd(tx, 8);
    expect_val(rx, 8);
    sl_broadcast_rx_drop(rx);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_05_send_no_receivers_not_stored)
{
    test_run(1, bc05, NULL);
}

/* ---- BC-06 send never waits; a full ring overwrites the oldest ---- */

static void *bc06(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(2, &rx);
    for (uint64_t v = 0; v < 1000; v++) /* nobody reads: never blocks */
        snd(tx, v);
    expect_lag(rx, 998);
    expect_val(rx, 998);
    expect_val(rx, 999);
    sl_broadcast_rx_drop(rx);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_06_send_never_waits_overwrites)
{
    test_run(1, bc06, NULL);
}

/* ---- BC-07 subscribe and resubscribe start at the tail ---- */

static void *bc07(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx, *r2, *r3;
    sl_broadcast_tx_t *tx = mk(8, &rx);
    snd(tx, 1);
    ASSERT_OK(sl_broadcast_subscribe(tx, &r2));
    ASSERT_OK(sl_broadcast_resubscribe(rx, &r3)); /* rx still has 1 unread: not copied */
    expect_empty(r2);
    expect_empty(r3);
    snd(tx, 2);
    expect_val(r2, 2);
    expect_val(r3, 2);
    expect_val(rx, 1);
    expect_val(rx, 2);
    sl_broadcast_rx_drop(rx);
    sl_broadcast_rx_drop(r2);
    sl_broadcast_rx_drop(r3);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_07_subscribe_resubscribe_at_tail)
{
    test_run(1, bc07, NULL);
}

/* ---- BC-08 every receiver gets every value, in order, as its own copy ---- */

static void *bc08(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx[3];
    sl_broadcast_tx_t *tx = mk(16, &rx[0]);
    ASSERT_OK(sl_broadcast_subscribe(tx, &rx[1]));
    ASSERT_OK(sl_broadcast_subscribe(tx, &rx[2]));
    for (uint64_t v = 0; v < 16; v++)
        snd(tx, v * 3);
    for (int k = 0; k < 3; k++) {
        for (uint64_t v = 0; v < 16; v++) {
            uint64_t got;
            ASSERT_OK(sl_broadcast_recv(rx[k], &got, NULL));
            ASSERT_EQ_U(got, v * 3);
        }
        expect_empty(rx[k]);
        sl_broadcast_rx_drop(rx[k]);
    }
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_08_all_receivers_all_values_in_order)
{
    test_run(1, bc08, NULL);
}

/* ---- BC-09 try_recv on an empty channel, recv waits ---- */

typedef struct {
    sl_broadcast_rx_t *rx;
    uint64_t got;
    uint64_t lag;
    int res;
} recv_job_t;

static void *recv_task(void *a)
{
    recv_job_t *j = a;
    j->res = sl_broadcast_recv(j->rx, &j->got, &j->lag);
    return NULL;
}

static void *bc09(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(4, &rx);
    expect_empty(rx);
    recv_job_t j = {.rx = rx, .res = 1};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(recv_task, &j, &t));
    settle();
    ASSERT_EQ(sl_task_is_finished(t), 0);
    snd(tx, 42);
    ASSERT_OK(sl_task_join(t, NULL));
    ASSERT_OK(j.res);
    ASSERT_EQ_U(j.got, 42);
    sl_broadcast_rx_drop(rx);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_09_try_recv_empty_recv_waits)
{
    test_run(1, bc09, NULL);
}

/* ---- BC-10 exact lag arithmetic: every example of the checklist ---- */

static void *bc10(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx;

    /* channel(2): 10,20,30 -> Lagged(1), 20, 30 */
    tx = mk(2, &rx);
    snd(tx, 10), snd(tx, 20), snd(tx, 30);
    expect_lag(rx, 1), expect_val(rx, 20), expect_val(rx, 30), expect_empty(rx);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);

    /* channel(2): 1,2,3,4 -> Lagged(2), 3, 4 */
    tx = mk(2, &rx);
    for (uint64_t v = 1; v <= 4; v++)
        snd(tx, v);
    expect_lag(rx, 2), expect_val(rx, 3), expect_val(rx, 4);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);

    /* channel(4): 1..4, recv 1, 5..8 -> Lagged(3), 5..8 */
    tx = mk(4, &rx);
    for (uint64_t v = 1; v <= 4; v++)
        snd(tx, v);
    expect_val(rx, 1);
    for (uint64_t v = 5; v <= 8; v++)
        snd(tx, v);
    expect_lag(rx, 3);
    for (uint64_t v = 5; v <= 8; v++)
        expect_val(rx, v);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);

    /* channel(2): 1,2,3 -> Lagged(1); then 4,5,6 before reading -> Lagged(3), 5, 6 */
    tx = mk(2, &rx);
    snd(tx, 1), snd(tx, 2), snd(tx, 3);
    expect_lag(rx, 1);
    snd(tx, 4), snd(tx, 5), snd(tx, 6);
    expect_lag(rx, 3), expect_val(rx, 5), expect_val(rx, 6);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);

    /* channel(1): 1, recv 1, 2, 3 -> Lagged(1), 3 */
    tx = mk(1, &rx);
    snd(tx, 1);
    expect_val(rx, 1);
    snd(tx, 2), snd(tx, 3);
    expect_lag(rx, 1), expect_val(rx, 3), expect_empty(rx);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);

    /* A slow receiver within L never lags; exactly L behind is not a lag. */
    tx = mk(8, &rx);
    for (uint64_t v = 0; v < 8; v++)
        snd(tx, v);
    for (uint64_t v = 0; v < 8; v++)
        expect_val(rx, v);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_10_lagged_exact_count)
{
    test_run(1, bc10, NULL);
}

/* ---- BC-11 lag is per receiver and can recur ---- */

static void *bc11(void *a)
{
    (void)a;
    sl_broadcast_rx_t *fast, *slow;
    sl_broadcast_tx_t *tx = mk(2, &fast);
    ASSERT_OK(sl_broadcast_subscribe(tx, &slow));
    for (uint64_t v = 1; v <= 3; v++) {
        snd(tx, v);
        expect_val(fast, v);
    }
    expect_lag(slow, 1), expect_val(slow, 2), expect_val(slow, 3);
    for (uint64_t v = 4; v <= 8; v++) {
        snd(tx, v);
        expect_val(fast, v);
    }
    expect_lag(slow, 3), expect_val(slow, 7), expect_val(slow, 8), expect_empty(slow);
    sl_broadcast_rx_drop(fast), sl_broadcast_rx_drop(slow), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_11_lag_per_receiver_and_recurs)
{
    test_run(1, bc11, NULL);
}

/* ---- BC-12 receiver len counts overwritten values until the lag is reported ---- */

static void *bc12(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(2, &rx);
    ASSERT_EQ(sl_broadcast_rx_is_empty(rx), 1);
    for (uint64_t v = 1; v <= 5; v++)
        snd(tx, v);
    ASSERT_EQ_U(sl_broadcast_rx_len(rx), 5);
    ASSERT_EQ(sl_broadcast_rx_is_empty(rx), 0);
    expect_lag(rx, 3);
    ASSERT_EQ_U(sl_broadcast_rx_len(rx), 2);
    expect_val(rx, 4);
    ASSERT_EQ_U(sl_broadcast_rx_len(rx), 1);
    expect_val(rx, 5);
    ASSERT_EQ(sl_broadcast_rx_is_empty(rx), 1);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_12_receiver_len_with_lag)
{
    test_run(1, bc12, NULL);
}

/* ---- BC-13 sender len: held values still owed to a receiver ---- */

static void *bc13(void *a)
{
    (void)a;
    sl_broadcast_rx_t *r1, *r2;
    sl_broadcast_tx_t *tx = mk(16, &r1);
    ASSERT_OK(sl_broadcast_subscribe(tx, &r2));
    ASSERT_EQ(sl_broadcast_tx_is_empty(tx), 1);
    snd(tx, 10), snd(tx, 20), snd(tx, 30);
    ASSERT_EQ_U(sl_broadcast_tx_len(tx), 3);
    expect_val(r1, 10);
    ASSERT_EQ_U(sl_broadcast_tx_len(tx), 3);
    expect_val(r2, 10);
    ASSERT_EQ_U(sl_broadcast_tx_len(tx), 2);
    expect_val(r1, 20), expect_val(r1, 30), expect_val(r2, 20), expect_val(r2, 30);
    ASSERT_EQ_U(sl_broadcast_tx_len(tx), 0);
    ASSERT_EQ(sl_broadcast_tx_is_empty(tx), 1);
    /* never more than the ring length */
    for (uint64_t v = 0; v < 40; v++)
        snd(tx, v);
    ASSERT_EQ_U(sl_broadcast_tx_len(tx), 16);
    sl_broadcast_rx_drop(r1), sl_broadcast_rx_drop(r2), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_13_sender_len)
{
    test_run(1, bc13, NULL);
}

/* ---- BC-14 senders gone: drain (lag first), then closed; waiters woken ---- */

static void *bc14(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx, *lagger, *waiter_rx;
    sl_broadcast_tx_t *tx = mk(2, &rx);
    ASSERT_OK(sl_broadcast_subscribe(tx, &lagger));
    ASSERT_OK(sl_broadcast_subscribe(tx, &waiter_rx));
    recv_job_t j = {.rx = waiter_rx, .res = 1};
    sl_task_t *t;
    snd(tx, 1);
    expect_val(waiter_rx, 1);
    ASSERT_OK(sl_task_spawn(recv_task, &j, &t));
    settle();
    sl_broadcast_tx_t *tx2 = sl_broadcast_tx_clone(tx);
    ASSERT_EQ_U(sl_broadcast_sender_count(tx), 2);
    snd(tx, 2);
    snd(tx2, 3);
    ASSERT_OK(sl_task_join(t, NULL));
    ASSERT_OK(j.res);
    ASSERT_EQ_U(j.got, 2);
    ASSERT_EQ(sl_broadcast_rx_is_closed(rx), 0);
    sl_broadcast_tx_drop(tx);
    ASSERT_EQ(sl_broadcast_rx_is_closed(rx), 0); /* tx2 still alive */
    /* the waiter goes on: 3, then waits; dropping the last sender wakes it with closed */
    expect_val(waiter_rx, 3);
    j.res = 1;
    ASSERT_OK(sl_task_spawn(recv_task, &j, &t));
    settle();
    ASSERT_EQ(sl_task_is_finished(t), 0);
    sl_broadcast_tx_drop(tx2);
    ASSERT_OK(sl_task_join(t, NULL));
    ASSERT_ERR(j.res, SL_ECLOSED);
    ASSERT_EQ(sl_broadcast_rx_is_closed(rx), 1);
    expect_lag(rx, 1), expect_val(rx, 2), expect_val(rx, 3), expect_closed(rx);
    expect_lag(lagger, 1), expect_val(lagger, 2), expect_val(lagger, 3);
    uint64_t got;
    ASSERT_ERR(sl_broadcast_recv(lagger, &got, NULL), SL_ECLOSED);
    expect_closed(lagger);
    sl_broadcast_rx_drop(rx), sl_broadcast_rx_drop(lagger), sl_broadcast_rx_drop(waiter_rx);
    return NULL;
}

SL_TEST(bcast_14_close_drains_then_closed)
{
    test_run(1, bc14, NULL);
}

/* ---- BC-15 resubscribe after close ---- */

static void *bc15(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx, *r2;
    sl_broadcast_tx_t *tx = mk(4, &rx);
    snd(tx, 1);
    sl_broadcast_tx_drop(tx);
    ASSERT_OK(sl_broadcast_resubscribe(rx, &r2));
    expect_closed(r2);
    expect_val(rx, 1);
    expect_closed(rx);
    sl_broadcast_rx_drop(rx), sl_broadcast_rx_drop(r2);
    return NULL;
}

SL_TEST(bcast_15_resubscribe_closed_channel)
{
    test_run(1, bc15, NULL);
}

/* ---- BC-16 dropping a receiver releases what it owed; nobody else is affected ---- */

static void *bc16(void *a)
{
    (void)a;
    sl_broadcast_rx_t *r1, *r2;
    sl_broadcast_tx_t *tx = mk(8, &r1);
    ASSERT_OK(sl_broadcast_subscribe(tx, &r2));
    snd(tx, 1), snd(tx, 2), snd(tx, 3);
    expect_val(r1, 1), expect_val(r1, 2), expect_val(r1, 3);
    ASSERT_EQ_U(sl_broadcast_tx_len(tx), 3); /* r2 owes all three */
    sl_broadcast_rx_drop(r2);
    ASSERT_EQ_U(sl_broadcast_tx_len(tx), 0);
    snd(tx, 4);
    expect_val(r1, 4);
    sl_broadcast_rx_drop(r1), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_16_drop_receiver_releases_values)
{
    test_run(1, bc16, NULL);
}

/* ---- BC-17 tx closed: ready at zero receivers; a new subscriber sends it back to waiting -- */

static void *closed_task(void *a)
{
    return (void *)(intptr_t)sl_broadcast_tx_closed(a);
}

static void *bc17(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx, *r2;
    sl_broadcast_tx_t *tx = mk(4, &rx);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(closed_task, tx, &t));
    settle();
    ASSERT_EQ(sl_task_is_finished(t), 0);
    sl_broadcast_rx_drop(rx);                   /* wakes the waiter ... */
    ASSERT_OK(sl_broadcast_subscribe(tx, &r2)); /* ... but it runs after this */
    settle();
    ASSERT_EQ(sl_task_is_finished(t), 0);
    sl_broadcast_rx_drop(r2);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, 0);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_17_sender_closed_with_resubscribe)
{
    test_run(1, bc17, NULL);
}

/* ---- BC-18 weak sender ---- */

static void *bc18(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(4, &rx), *up = NULL;
    sl_broadcast_weak_t *w = sl_broadcast_tx_downgrade(tx);
    ASSERT_OK(sl_broadcast_weak_upgrade(w, &up));
    ASSERT_PTR_EQ(up, tx);
    ASSERT_EQ_U(sl_broadcast_sender_count(tx), 2);
    snd(up, 5);
    sl_broadcast_tx_drop(up);
    sl_broadcast_tx_drop(tx);
    expect_val(rx, 5);
    expect_closed(rx); /* the weak handle does not keep it open */
    up = NULL;
    ASSERT_ERR(sl_broadcast_weak_upgrade(w, &up), SL_ECLOSED);
    ASSERT_NULL(up);
    sl_broadcast_weak_drop(w);
    sl_broadcast_rx_drop(rx);
    return NULL;
}

SL_TEST(bcast_18_weak_sender)
{
    test_run(1, bc18, NULL);
}

/* ---- BC-19 values are copied per receiver; recv is cancel-safe ---- */

typedef struct {
    char s[24];
} blob_t;

static void *bc19(void *a)
{
    (void)a;
    sl_broadcast_tx_t *tx;
    sl_broadcast_rx_t *r1, *r2;
    ASSERT_OK(sl_broadcast_new(sizeof(blob_t), 4, &tx, &r1));
    ASSERT_OK(sl_broadcast_subscribe(tx, &r2));
    blob_t in = {"hello, broadcast"}, o1, o2;
    ASSERT_OK(sl_broadcast_send(tx, &in, NULL));
    memset(&in, 'x', sizeof in); /* the channel holds its own copy */
    /* a recv that times out consumes nothing */
    ASSERT_OK(sl_broadcast_recv(r1, &o1, NULL));
    ASSERT_ERR(sl_broadcast_recv_until(r1, &o1, NULL, sl_deadline_in(1000000)), SL_ETIMEDOUT);
    ASSERT_OK(sl_broadcast_recv(r2, &o2, NULL));
    o1.s[0] = 'J';
    ASSERT_STR_EQ(o2.s, "hello, broadcast");
    ASSERT_STR_EQ(o1.s, "Jello, broadcast");
    sl_broadcast_rx_drop(r1), sl_broadcast_rx_drop(r2), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_19_copies_and_cancel_safe)
{
    test_run(1, bc19, NULL);
}

/* ---- BC-20 error names and the lag count through the out-parameter ---- */

static void *bc20(void *a)
{
    (void)a;
    ASSERT_STR_EQ(sl_err_name(SL_ELAGGED), "SL_ELAGGED");
    ASSERT_STR_EQ(sl_err_name(SL_ECLOSED), "SL_ECLOSED");
    ASSERT_STR_EQ(sl_err_name(SL_EEMPTY), "SL_EEMPTY");
    ASSERT_NOT_NULL(sl_strerror(SL_ELAGGED));
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(1, &rx);
    snd(tx, 1), snd(tx, 2), snd(tx, 3);
    uint64_t out = 0, lag = 0;
    ASSERT_ERR(sl_broadcast_recv(rx, &out, &lag), SL_ELAGGED);
    ASSERT_EQ_U(lag, 2);
    ASSERT_ERR(sl_broadcast_try_recv(rx, &out, NULL), 0); /* NULL lagged is fine */
    ASSERT_EQ_U(out, 3);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_20_error_names_and_lag_count)
{
    test_run(1, bc20, NULL);
}

/* ---- X-01 blocking receives consume the coop budget ---- */

static void *flag_task(void *a)
{
    *(volatile int *)a = 1;
    return NULL;
}

static void *x01(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(8192, &rx);
    for (uint64_t v = 0; v < 5000; v++)
        snd(tx, v);
    volatile int flag = 0;
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(flag_task, (void *)&flag, &t));
    int seen_at = -1;
    for (uint64_t v = 0; v < 5000; v++) { /* every value ready: only the budget yields */
        uint64_t got;
        ASSERT_OK(sl_broadcast_recv(rx, &got, NULL));
        if (flag && seen_at < 0)
            seen_at = (int)v;
    }
    ASSERT_GE(seen_at, 0);
    ASSERT_LE(seen_at, 1000);
    ASSERT_OK(sl_task_join(t, NULL));
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_x01_coop_budget)
{
    test_run(1, x01, NULL);
}

/* ---- X-02 usable outside the runtime: plain threads, try forms ---- */

static void *x02_thread(void *a)
{
    sl_broadcast_tx_t *tx = a;
    for (uint64_t v = 0; v < 1000; v++)
        snd(tx, v);
    return NULL;
}

SL_TEST(bcast_x02_outside_runtime)
{
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(2048, &rx);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, x02_thread, tx), 0);
    uint64_t next = 0;
    while (next < 1000) {
        uint64_t got;
        int r = sl_broadcast_try_recv(rx, &got, NULL);
        if (r == SL_EEMPTY)
            continue;
        ASSERT_OK(r);
        ASSERT_EQ_U(got, next);
        next++;
    }
    ASSERT_EQ(pthread_join(th, NULL), 0);
    sl_broadcast_tx_drop(tx);
    expect_closed(rx);
    sl_broadcast_rx_drop(rx);
}

/* ---- X-03 a received value publishes what the sender wrote before sending ---- */

typedef struct {
    sl_broadcast_tx_t *tx;
    sl_broadcast_rx_t *rx;
    uint64_t *data; /* plain memory, written by the sender before each send */
} x03_t;

static void *x03_recv(void *a)
{
    x03_t *x = a;
    for (;;) {
        uint64_t idx;
        int r = sl_broadcast_recv(x->rx, &idx, NULL);
        if (r == SL_ECLOSED)
            break;
        ASSERT_OK(r);
        ASSERT_EQ_U(x->data[idx], idx * 7 + 1); /* TSan checks the ordering too */
    }
    return NULL;
}

static void *x03(void *a)
{
    (void)a;
    x03_t x;
    uint64_t data[512];
    x.data = data;
    x.tx = mk(1024, &x.rx);
    sl_spawn_opts_t so = {.name = "rx", .worker = 1, .use_worker = 1};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn_ex(&so, x03_recv, &x, &t));
    for (uint64_t i = 0; i < 512; i++) {
        data[i] = i * 7 + 1;
        snd(x.tx, i);
        if (i % 16 == 0)
            sl_task_yield();
    }
    sl_broadcast_tx_drop(x.tx);
    ASSERT_OK(sl_task_join(t, NULL));
    sl_broadcast_rx_drop(x.rx);
    return NULL;
}

SL_TEST(bcast_x03_memory_ordering)
{
    test_run(2, x03, NULL);
}

/* ---- Stress: randomly slow receivers on 2 workers; received + lagged adds up exactly ---- */

#define ST_N   20000
#define ST_RCV 4

typedef struct {
    sl_broadcast_rx_t *rx;
    uint64_t start; /* values sent before it subscribed */
    uint64_t received, lagged;
    uint64_t seed;
} st_rx_t;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *st_receiver(void *a)
{
    st_rx_t *r = a;
    uint64_t expect = r->start;
    for (;;) {
        uint64_t v = 0, lag = 0;
        int res = sl_broadcast_recv(r->rx, &v, &lag);
        if (res == SL_ECLOSED)
            break;
        if (res == SL_ELAGGED) {
            ASSERT_GT_U(lag, 0);
            r->lagged += lag;
            expect += lag;
            continue;
        }
        ASSERT_OK(res);
        ASSERT_EQ_U(v, expect); /* values are positions: each one is exactly where expected */
        expect++;
        r->received++;
        uint64_t x = rnd(&r->seed) % 100;
        if (x < 3)
            sl_sleep(20000);
        else if (x < 20)
            sl_task_yield();
    }
    return NULL;
}

static void *stress(void *a)
{
    (void)a;
    st_rx_t r[ST_RCV];
    sl_task_t *t[ST_RCV];
    sl_broadcast_tx_t *tx = mk(32, NULL);
    memset(r, 0, sizeof r);
    uint64_t sent = 0, seed = 88172645463325252ull;
    int nsub = 0;
    for (uint64_t i = 0; i < ST_N; i++) {
        if (nsub < ST_RCV && i == (uint64_t)nsub * (ST_N / 8)) {
            r[nsub].start = sent;
            r[nsub].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(nsub + 1);
            ASSERT_OK(sl_broadcast_subscribe(tx, &r[nsub].rx));
            sl_spawn_opts_t so = {.name = "st", .worker = nsub % 2, .use_worker = 1};
            ASSERT_OK(sl_task_spawn_ex(&so, st_receiver, &r[nsub], &t[nsub]));
            nsub++;
        }
        int res = sl_broadcast_send(tx, &i, NULL);
        ASSERT_OK(res);
        sent++;
        uint64_t x = rnd(&seed) % 1000;
        if (x < 5)
            sl_sleep(50000);
        else if (x < 150)
            sl_task_yield();
    }
    sl_broadcast_tx_drop(tx);
    for (int k = 0; k < ST_RCV; k++) {
        ASSERT_OK(sl_task_join(t[k], NULL));
        ASSERT_EQ_U(r[k].received + r[k].lagged, ST_N - r[k].start);
        if (getenv("ST_VERBOSE"))
            printf("rx %d: start %llu received %llu lagged %llu\n", k,
                   (unsigned long long)r[k].start, (unsigned long long)r[k].received,
                   (unsigned long long)r[k].lagged);
        sl_broadcast_rx_drop(r[k].rx);
    }
    return NULL;
}

SL_TEST(bcast_stress_slow_receivers_2workers)
{
    test_run(2, stress, NULL);
}

/* ---- No allocation per message or per wait in steady state ---- */

typedef struct {
    sl_broadcast_rx_t *rx;
    volatile uint64_t count;
} cnt_t;

static void *count_task(void *a)
{
    cnt_t *c = a;
    uint64_t v;
    while (sl_broadcast_recv(c->rx, &v, NULL) == 0)
        c->count++;
    return NULL;
}

static void *alloc_main(void *a)
{
    (void)a;
    cnt_t c = {0};
    sl_broadcast_tx_t *tx = mk(64, &c.rx);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(count_task, &c, &t));
    settle();
    for (uint64_t v = 0; v < 100; v++) { /* warm up */
        snd(tx, v);
        sl_task_yield();
    }
    long before = test_alloc_total();
    for (uint64_t v = 0; v < 10000; v++) {
        snd(tx, v);
        sl_task_yield(); /* the receiver takes it and parks again: one wait per message */
    }
    long after = test_alloc_total();
    ASSERT_EQ(after - before, 0);
    ASSERT_EQ_U(c.count, 10100);
    sl_broadcast_tx_drop(tx);
    ASSERT_OK(sl_task_join(t, NULL));
    sl_broadcast_rx_drop(c.rx);
    return NULL;
}

SL_TEST(bcast_alloc_steady_state)
{
    test_run(1, alloc_main, NULL);
}

/* ---- Cross-worker wakes: ping-pong between workers 0 and 1 ---- */

typedef struct {
    sl_broadcast_tx_t *ping, *pong;
    sl_broadcast_rx_t *ping_rx, *pong_rx;
} pp_t;

static void *pp_echo(void *a)
{
    pp_t *p = a;
    ASSERT_EQ(sl_worker_index(), 1);
    uint64_t v;
    while (sl_broadcast_recv(p->ping_rx, &v, NULL) == 0)
        snd(p->pong, v + 1);
    return NULL;
}

static void *pp_main(void *a)
{
    (void)a;
    pp_t p;
    p.ping = mk(4, &p.ping_rx);
    p.pong = mk(4, &p.pong_rx);
    sl_spawn_opts_t so = {.name = "echo", .worker = 1, .use_worker = 1};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn_ex(&so, pp_echo, &p, &t));
    for (uint64_t i = 0; i < 2000; i++) {
        snd(p.ping, i);
        uint64_t got;
        ASSERT_OK(sl_broadcast_recv(p.pong_rx, &got, NULL));
        ASSERT_EQ_U(got, i + 1);
    }
    sl_broadcast_tx_drop(p.ping);
    ASSERT_OK(sl_task_join(t, NULL));
    sl_broadcast_tx_drop(p.pong);
    sl_broadcast_rx_drop(p.ping_rx), sl_broadcast_rx_drop(p.pong_rx);
    return NULL;
}

SL_TEST(bcast_cross_worker_wakes)
{
    test_run(2, pp_main, NULL);
}

/* ---- Select: a losing recv clause does not move the cursor ---- */

static void *sel_main(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(4, &rx);
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    sl_cancel_trigger(tok);
    snd(tx, 11);
    uint64_t out = 0, lag = 0;
    sl_clause_t c[2];
    /* both ready, biased: the token wins, the value stays */
    sl_clause_cancelled(&c[0], tok);
    sl_clause_broadcast_recv(&c[1], rx, &out, &lag);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_EQ_U(out, 0);
    ASSERT_EQ_U(sl_broadcast_rx_len(rx), 1);
    /* a lag pending is not consumed by a losing clause either */
    for (uint64_t v = 12; v < 20; v++)
        snd(tx, v);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_EQ_U(sl_broadcast_rx_len(rx), 9);
    /* armed and waiting, then beaten by a deadline: nothing consumed */
    sl_broadcast_rx_t *r2;
    ASSERT_OK(sl_broadcast_subscribe(tx, &r2));
    sl_clause_sleep_until(&c[0], sl_deadline_in(2000000));
    sl_clause_broadcast_recv(&c[1], r2, &out, &lag);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 0);
    snd(tx, 99);
    expect_val(r2, 99);
    /* and when it wins, it receives */
    sl_clause_none(&c[0]);
    sl_clause_broadcast_recv(&c[1], rx, &out, &lag);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 1);
    ASSERT_ERR(c[1].res, SL_ELAGGED);
    ASSERT_EQ_U(lag, 6);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 1);
    ASSERT_OK(c[1].res);
    ASSERT_EQ_U(out, 17);
    sl_cancel_drop(tok);
    sl_broadcast_rx_drop(rx), sl_broadcast_rx_drop(r2), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_select_loser_keeps_cursor)
{
    test_run(1, sel_main, NULL);
}

/* ---- Cancellation and timeouts ---- */

static void *cancel_main(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(4, &rx);
    recv_job_t j = {.rx = rx, .res = 1};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(recv_task, &j, &t));
    settle();
    sl_task_abort(t);
    ASSERT_OK(sl_task_join(t, NULL));
    ASSERT_ERR(j.res, SL_ECANCELED);
    snd(tx, 5);
    expect_val(rx, 5); /* nothing was consumed by the cancelled wait */

    /* timeout scope */
    sl_timeout_t to;
    uint64_t out;
    sl_timeout_enter(&to, sl_deadline_in(1000000));
    ASSERT_ERR(sl_broadcast_recv(rx, &out, NULL), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    snd(tx, 6);
    expect_val(rx, 6);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_cancel_and_timeout)
{
    test_run(1, cancel_main, NULL);
}

static void *closed_cancel_task(void *a)
{
    sl_broadcast_tx_t *tx = a;
    int r = sl_broadcast_tx_closed_until(tx, sl_deadline_in(1000000));
    ASSERT_ERR(r, SL_ETIMEDOUT);
    return (void *)(intptr_t)sl_broadcast_tx_closed(tx);
}

static void *closed_cancel_main(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(4, &rx);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(closed_cancel_task, tx, &t));
    sl_sleep(5000000);
    settle();
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, SL_ECANCELED);
    sl_broadcast_rx_drop(rx), sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_tx_closed_cancel_and_timeout)
{
    test_run(1, closed_cancel_main, NULL);
}

/* ---- The three forms of recv and tx_closed ---- */

static void *forms_main(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(2, &rx);
    uint64_t out = 0, lag = 0;
    /* try: empty, value, lag, closed */
    ASSERT_ERR(sl_broadcast_try_recv(rx, &out, &lag), SL_EEMPTY);
    snd(tx, 1);
    ASSERT_OK(sl_broadcast_try_recv(rx, &out, &lag));
    ASSERT_EQ_U(out, 1);
    /* until: timeout, value */
    ASSERT_ERR(sl_broadcast_recv_until(rx, &out, &lag, sl_deadline_in(1000000)), SL_ETIMEDOUT);
    snd(tx, 2);
    ASSERT_OK(sl_broadcast_recv_until(rx, &out, &lag, sl_deadline_in(1000000000)));
    ASSERT_EQ_U(out, 2);
    /* blocking: value, lag */
    snd(tx, 3), snd(tx, 4), snd(tx, 5);
    ASSERT_ERR(sl_broadcast_recv(rx, &out, &lag), SL_ELAGGED);
    ASSERT_EQ_U(lag, 1);
    ASSERT_OK(sl_broadcast_recv(rx, &out, &lag));
    ASSERT_EQ_U(out, 4);
    ASSERT_OK(sl_broadcast_recv_until(rx, &out, &lag, SL_FOREVER));
    ASSERT_EQ_U(out, 5);
    /* tx_closed: try, until, wait */
    ASSERT_ERR(sl_broadcast_try_tx_closed(tx), SL_EAGAIN);
    ASSERT_ERR(sl_broadcast_tx_closed_until(tx, sl_deadline_in(1000000)), SL_ETIMEDOUT);
    sl_broadcast_rx_t *r2;
    ASSERT_OK(sl_broadcast_subscribe(tx, &r2));
    sl_broadcast_tx_drop(tx);
    /* closed: all three forms */
    ASSERT_ERR(sl_broadcast_try_recv(rx, &out, &lag), SL_ECLOSED);
    ASSERT_ERR(sl_broadcast_recv(rx, &out, &lag), SL_ECLOSED);
    ASSERT_ERR(sl_broadcast_recv_until(rx, &out, &lag, sl_deadline_in(1000000)), SL_ECLOSED);
    sl_broadcast_rx_drop(rx);
    sl_broadcast_rx_drop(r2);
    return NULL;
}

SL_TEST(bcast_three_forms)
{
    test_run(1, forms_main, NULL);
}

static void *closed_forms_main(void *a)
{
    (void)a;
    sl_broadcast_rx_t *rx;
    sl_broadcast_tx_t *tx = mk(2, &rx);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(closed_task, tx, &t));
    settle();
    sl_clause_t c[1];
    sl_clause_broadcast_tx_closed(&c[0], tx);
    ASSERT_ERR(sl_select(c, 1, 0, sl_deadline_in(1000000)), SL_ETIMEDOUT);
    sl_broadcast_rx_drop(rx);
    ASSERT_EQ(sl_select(c, 1, 0, SL_FOREVER), 0);
    ASSERT_OK(sl_broadcast_tx_closed_until(tx, sl_deadline_in(1000000)));
    ASSERT_OK(sl_broadcast_try_tx_closed(tx));
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, 0);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_tx_closed_forms_and_clause)
{
    test_run(1, closed_forms_main, NULL);
}

/* ---- Out of memory leaves nothing behind ---- */

static void *oom_main(void *a)
{
    (void)a;
    for (long n = 0; n < 4; n++) {
        sl_broadcast_tx_t *tx = NULL;
        sl_broadcast_rx_t *rx = NULL;
        test_alloc_fail_after(n);
        int r = sl_broadcast_new(8, 4, &tx, &rx);
        test_alloc_fail_after(-1);
        if (r == 0) {
            sl_broadcast_rx_drop(rx);
            sl_broadcast_tx_drop(tx);
        } else {
            ASSERT_ERR(r, SL_ENOMEM);
        }
    }
    return NULL;
}

SL_TEST(bcast_out_of_memory)
{
    test_run(1, oom_main, NULL);
}

/* ---- The receive fast path keeps sl__wait1's order: cancellation and timeout scopes first,
 * then one unit of budget, then the read ---- */

struct bfast {
    sl_broadcast_rx_t *rx;
};

static void *bfast_cancelled(void *arg)
{
    struct bfast *b = arg;
    sl_task_abort(sl_task_self());
    uint64_t v = 0, lag = 0;
    ASSERT_ERR(sl_broadcast_recv(b->rx, &v, &lag), SL_ECANCELED); /* a value is there */
    ASSERT_ERR(sl_broadcast_recv_until(b->rx, &v, &lag, sl_deadline_in(SL_SEC)), SL_ECANCELED);
    ASSERT_EQ_U(v, 0);
    ASSERT_EQ_U(sl_broadcast_rx_len(b->rx), 1);
    int old = sl_task_shield(1);
    ASSERT_OK(sl_broadcast_recv(b->rx, &v, &lag));
    ASSERT_EQ_U(v, 41);
    sl_task_shield(old);
    return NULL;
}

static void *bfast_main(void *arg)
{
    (void)arg;
    sl_broadcast_tx_t *tx;
    sl_broadcast_rx_t *rx, *rx2;
    ASSERT_OK(sl_broadcast_new(8, 4, &tx, &rx));
    ASSERT_OK(sl_broadcast_subscribe(tx, &rx2));
    uint64_t v = 41, lag = 0;
    ASSERT_OK(sl_broadcast_send(tx, &v, NULL));
    struct bfast b = {rx};
    test_join_result(test_spawn_on(-1, bfast_cancelled, &b));

    /* An expired scope: the receive times out although a value is there, and takes nothing. */
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_now());
    ASSERT_ERR(sl_broadcast_recv(rx2, &v, &lag), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    ASSERT_EQ_U(sl_broadcast_rx_len(rx2), 1);

    /* Every receive consumes budget, even when a value is ready: a receiver that never has to
     * wait still yields to the other tasks of its worker. */
    sl_runtime_stats_t st0, st1;
    sl_runtime_stats(sl_runtime_current(), &st0);
    for (int i = 0; i < 1000; i++) {
        ASSERT_OK(sl_broadcast_send(tx, &v, NULL));
        ASSERT_OK(sl_broadcast_recv(rx2, &v, &lag));
        ASSERT_OK(sl_broadcast_recv(rx, &v, &lag));
    }
    sl_runtime_stats(sl_runtime_current(), &st1);
    ASSERT_GE_U(st1.budget_yields - st0.budget_yields, 1);

    sl_broadcast_rx_drop(rx);
    sl_broadcast_rx_drop(rx2);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_recv_fast_path_checks_cancel_timeout_budget)
{
    test_run(1, bfast_main, NULL);
}

/* ---- Element sizes: every receive path copies exactly elem_size bytes ---- */

/* Sizes for the written-out receive's one-word case (8), its whole-word loop (16, 24, 64) and
 * the general path it hands over to (0, 1, 7, 9, 12, 100: a partial last word). Each value is
 * read by a receiver that keeps up (the written-out path) and, after a lag, by one that fell
 * behind (the general path); bytes past the element are never written. */
static void *bsizes_main(void *arg)
{
    (void)arg;
    static const size_t sizes[] = {0, 1, 7, 8, 9, 12, 16, 24, 64, 100};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i];
        sl_broadcast_tx_t *tx;
        sl_broadcast_rx_t *fast, *slow;
        ASSERT_OK(sl_broadcast_new(size, 4, &tx, &fast));
        ASSERT_OK(sl_broadcast_subscribe(tx, &slow));
        unsigned char in[128], out[128 + 16];
        uint64_t lag = 0;
        for (unsigned v = 0; v < 6; v++) {
            test_fill_bytes(in, size, v);
            ASSERT_OK(sl_broadcast_send(tx, in, NULL));
            memset(out, 0xAA, sizeof out);
            ASSERT_OK(sl_broadcast_recv(fast, out, &lag));
            test_expect_bytes(out, sizeof out, size, v);
        }
        /* slow saw none of the six; the ring holds the last four */
        memset(out, 0xAA, sizeof out);
        ASSERT_ERR(sl_broadcast_recv(slow, out, &lag), SL_ELAGGED);
        ASSERT_EQ_U(lag, 2);
        for (unsigned v = 2; v < 6; v++) {
            memset(out, 0xAA, sizeof out);
            ASSERT_OK(sl_broadcast_recv(slow, out, &lag));
            test_expect_bytes(out, sizeof out, size, v);
        }
        sl_broadcast_tx_drop(tx);
        ASSERT_ERR(sl_broadcast_recv(fast, out, &lag), SL_ECLOSED);
        ASSERT_ERR(sl_broadcast_recv(slow, out, &lag), SL_ECLOSED);
        sl_broadcast_rx_drop(fast);
        sl_broadcast_rx_drop(slow);
    }
    return NULL;
}

SL_TEST(bcast_element_sizes_copy_exactly)
{
    test_run(1, bsizes_main, NULL);
}

/* ---- A send's wake of its parked receivers is that of one wake at a time ---- */

/* The receivers are claimed all at once (sl__waitq_claim_all, which lists them newest first)
 * and woken in one pass (sl__waiters_wake_list), which must leave what single wakes in list
 * order would: the last one listed (the oldest receiver) in runnext, running first, then the
 * others in list order. Fails if the pass queues them first in, first out. */
typedef struct worder {
    sl_broadcast_rx_t *rx[5];
    _Atomic int armed;
    int ran[5];
    int nran;
} worder_t;

static worder_t worder;

static void *worder_rx(void *arg)
{
    int i = (int)(intptr_t)arg;
    uint64_t v, lag;
    atomic_fetch_add(&worder.armed, 1);
    ASSERT_OK(sl_broadcast_recv(worder.rx[i], &v, &lag));
    ASSERT_EQ_U(v, 42);
    worder.ran[worder.nran++] = i;
    return NULL;
}

static void *worder_main(void *arg)
{
    (void)arg;
    memset(&worder, 0, sizeof worder);
    sl_broadcast_tx_t *tx;
    ASSERT_OK(sl_broadcast_new(8, 4, &tx, &worder.rx[0]));
    for (int i = 1; i < 5; i++)
        ASSERT_OK(sl_broadcast_subscribe(tx, &worder.rx[i]));
    sl_task_t *t[5];
    for (int i = 0; i < 5; i++)
        ASSERT_OK(sl_task_spawn(worder_rx, (void *)(intptr_t)i, &t[i]));
    while (atomic_load(&worder.armed) < 5)
        (void)sl_task_yield();
    for (int i = 0; i < 4; i++) /* each receiver runs on into its wait */
        (void)sl_task_yield();
    uint64_t v = 42;
    ASSERT_OK(sl_broadcast_send(tx, &v, NULL));
    for (int i = 0; i < 5; i++)
        test_join_ok(t[i]);
    ASSERT_EQ(worder.nran, 5);
    static const int want[5] = {0, 4, 3, 2, 1};
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(worder.ran[i], want[i]);
    for (int i = 0; i < 5; i++)
        sl_broadcast_rx_drop(worder.rx[i]);
    sl_broadcast_tx_drop(tx);
    return NULL;
}

SL_TEST(bcast_send_wakes_as_single_wakes_would)
{
    test_run(1, worder_main, NULL);
}
