/* Watch: one case per item of tokio-semantics.md 1.5 (W-xx) and 1.14 (X-xx), then stress,
 * allocation, cross-worker, select, cancellation, timeout and the three forms. */
#include <pthread.h>
#include <string.h>

#include <sluice.h>

#include "test.h"
#include "test_rt.h"

static sl_watch_tx_t *mk(uint64_t init, sl_watch_rx_t **rx)
{
    sl_watch_tx_t *tx = NULL;
    ASSERT_OK(sl_watch_new(sizeof(uint64_t), &init, &tx, rx));
    return tx;
}

static uint64_t get(sl_watch_rx_t *rx)
{
    uint64_t v = ~0ull;
    ASSERT_GE(sl_watch_borrow(rx, &v), 0);
    return v;
}

static uint64_t tx_get(sl_watch_tx_t *tx)
{
    uint64_t v = ~0ull;
    sl_watch_tx_borrow(tx, &v);
    return v;
}

static void snd(sl_watch_tx_t *tx, uint64_t v)
{
    ASSERT_OK(sl_watch_send(tx, &v));
}

static void settle(void)
{
    for (int i = 0; i < 20; i++)
        sl_task_yield();
}

static void *changed_task(void *a)
{
    return (void *)(intptr_t)sl_watch_changed(a);
}

/* ---- W-01 initial value is seen; changed() waits ---- */

static void *w01(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(5, &rx);
    ASSERT_EQ_U(get(rx), 5);
    ASSERT_EQ(sl_watch_has_changed(rx), 0);
    ASSERT_ERR(sl_watch_try_changed(rx), SL_EEMPTY);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(changed_task, rx, &t));
    settle();
    ASSERT_EQ(sl_task_is_finished(t), 0);
    snd(tx, 6);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, 0);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_01_initial_value_seen)
{
    test_run(1, w01, NULL);
}

/* ---- W-02 send reaches every receiver; waiting changed() completes and marks seen ---- */

static void *w02(void *a)
{
    (void)a;
    sl_watch_rx_t *rx[3];
    sl_watch_tx_t *tx = mk(0, &rx[0]);
    ASSERT_OK(sl_watch_subscribe(tx, &rx[1]));
    ASSERT_OK(sl_watch_subscribe(tx, &rx[2]));
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(changed_task, rx[2], &t));
    settle();
    snd(tx, 1);
    ASSERT_EQ(sl_watch_has_changed(rx[0]), 1);
    ASSERT_EQ(sl_watch_has_changed(rx[1]), 1);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, 0);
    ASSERT_EQ(sl_watch_has_changed(rx[2]), 0); /* marked seen by changed() */
    ASSERT_EQ_U(get(rx[2]), 1);
    for (int k = 0; k < 3; k++)
        sl_watch_rx_drop(rx[k]);
    sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_02_send_notifies_all)
{
    test_run(1, w02, NULL);
}

/* ---- W-03 coalescing ---- */

static void *w03(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(0, &rx);
    snd(tx, 1), snd(tx, 2);
    ASSERT_OK(sl_watch_changed(rx));
    ASSERT_EQ_U(get(rx), 2);
    ASSERT_ERR(sl_watch_try_changed(rx), SL_EEMPTY);
    ASSERT_ERR(sl_watch_changed_until(rx, sl_deadline_in(1000000)), SL_ETIMEDOUT);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_03_coalescing)
{
    test_run(1, w03, NULL);
}

/* ---- W-04 send without receivers fails and stores nothing ---- */

static void *w04(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(1, &rx);
    sl_watch_rx_drop(rx);
    uint64_t v = 2;
    ASSERT_ERR(sl_watch_send(tx, &v), SL_ENORECV);
    ASSERT_EQ_U(tx_get(tx), 1);
    ASSERT_OK(sl_watch_subscribe(tx, &rx));
    ASSERT_EQ(sl_watch_has_changed(rx), 0);
    ASSERT_EQ_U(get(rx), 1);
    snd(tx, 3);
    ASSERT_EQ(sl_watch_has_changed(rx), 1);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_04_send_no_receivers_not_stored)
{
    test_run(1, w04, NULL);
}

/* ---- W-05 send_replace always stores and returns the old value ---- */

static void *w05(void *a)
{
    (void)a;
    sl_watch_tx_t *tx = mk(1, NULL);
    uint64_t v = 2, old = 0;
    ASSERT_OK(sl_watch_send_replace(tx, &v, &old)); /* no receiver: still stored */
    ASSERT_EQ_U(old, 1);
    ASSERT_EQ_U(tx_get(tx), 2);
    sl_watch_rx_t *rx;
    ASSERT_OK(sl_watch_subscribe(tx, &rx));
    v = 3;
    ASSERT_OK(sl_watch_send_replace(tx, &v, &old));
    ASSERT_EQ_U(old, 2);
    ASSERT_EQ(sl_watch_has_changed(rx), 1);
    ASSERT_OK(sl_watch_send_replace(tx, &v, NULL));
    ASSERT_OK(sl_watch_changed(rx));
    ASSERT_EQ_U(get(rx), 3);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_05_send_replace)
{
    test_run(1, w05, NULL);
}

/* ---- W-06 send_modify always notifies; send_if_modified only when told ---- */

static void nothing(void *v, void *arg)
{
    (void)v, (void)arg;
}

static void add(void *v, void *arg)
{
    *(uint64_t *)v += (uint64_t)(uintptr_t)arg;
}

static int set_silently(void *v, void *arg)
{
    *(uint64_t *)v = (uint64_t)(uintptr_t)arg;
    return 0;
}

static int set_loudly(void *v, void *arg)
{
    *(uint64_t *)v = (uint64_t)(uintptr_t)arg;
    return 1;
}

static void *w06(void *a)
{
    (void)a;
    sl_watch_tx_t *tx = mk(10, NULL);
    ASSERT_OK(sl_watch_send_modify(tx, add, (void *)5)); /* works without receivers */
    ASSERT_EQ_U(tx_get(tx), 15);
    sl_watch_rx_t *rx;
    ASSERT_OK(sl_watch_subscribe(tx, &rx));
    ASSERT_OK(sl_watch_send_modify(tx, nothing, NULL));
    ASSERT_EQ(sl_watch_has_changed(rx), 1); /* even though nothing changed */
    ASSERT_OK(sl_watch_changed(rx));
    ASSERT_EQ(sl_watch_send_if_modified(tx, set_silently, (void *)77), 0);
    ASSERT_EQ(sl_watch_has_changed(rx), 0);
    ASSERT_EQ_U(get(rx), 77); /* silent modification is visible */
    ASSERT_EQ(sl_watch_send_if_modified(tx, set_loudly, (void *)78), 1);
    ASSERT_EQ(sl_watch_has_changed(rx), 1);
    ASSERT_EQ_U(get(rx), 78);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_06_send_modify_and_if_modified)
{
    test_run(1, w06, NULL);
}

/* ---- W-07 a panic inside the modify function: changes kept, no bump, channel usable ---- */

static void modify_then_panic(void *v, void *arg)
{
    (void)arg;
    *(uint64_t *)v = 999;
    sl_panic("boom inside send_modify");
}

static void *panicker(void *a)
{
    sl_watch_send_modify(a, modify_then_panic, NULL);
    return NULL;
}

static void *w07(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(1, &rx);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(panicker, tx, &t));
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_PANICKED);
    ASSERT_EQ_U(get(rx), 999);
    ASSERT_EQ(sl_watch_has_changed(rx), 0);
    snd(tx, 5); /* not poisoned */
    ASSERT_OK(sl_watch_changed(rx));
    ASSERT_EQ_U(get(rx), 5);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_07_modify_panic_not_poisoned)
{
    test_run(1, w07, NULL);
}

/* ---- W-08 the sender can subscribe; it reopens the channel ---- */

static void *w08(void *a)
{
    (void)a;
    sl_watch_tx_t *tx = mk(1, NULL);
    ASSERT_EQ(sl_watch_tx_is_closed(tx), 1);
    uint64_t v = 2;
    ASSERT_OK(sl_watch_send_replace(tx, &v, NULL));
    sl_watch_rx_t *rx;
    ASSERT_OK(sl_watch_subscribe(tx, &rx));
    ASSERT_EQ(sl_watch_tx_is_closed(tx), 0);
    ASSERT_EQ(sl_watch_has_changed(rx), 0); /* the current value counts as seen */
    ASSERT_EQ_U(get(rx), 2);
    snd(tx, 3);
    ASSERT_EQ(sl_watch_has_changed(rx), 1);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_08_subscribe_reopens_seen_current)
{
    test_run(1, w08, NULL);
}

/* ---- W-09 a cloned receiver starts with its source's seen version ---- */

static void *w09(void *a)
{
    (void)a;
    sl_watch_rx_t *rx, *c1, *c2;
    sl_watch_tx_t *tx = mk(1, &rx);
    ASSERT_OK(sl_watch_rx_clone(rx, &c1));
    ASSERT_EQ(sl_watch_has_changed(c1), 0);
    snd(tx, 2);
    ASSERT_OK(sl_watch_rx_clone(rx, &c2));
    ASSERT_EQ(sl_watch_has_changed(c2), 1);
    ASSERT_OK(sl_watch_changed(rx));
    ASSERT_EQ(sl_watch_has_changed(c2), 1); /* independent afterwards */
    sl_watch_rx_drop(rx), sl_watch_rx_drop(c1), sl_watch_rx_drop(c2), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_09_clone_copies_seen_version)
{
    test_run(1, w09, NULL);
}

/* ---- W-10 borrow does not mark seen; borrow_and_update does; refs report has_changed ---- */

static void *w10(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(1, &rx);
    uint64_t v;
    ASSERT_EQ(sl_watch_borrow(rx, &v), 0);
    snd(tx, 2);
    ASSERT_EQ(sl_watch_borrow(rx, &v), 1);
    ASSERT_EQ(sl_watch_borrow(rx, &v), 1);
    sl_watch_ref_t ref;
    const uint64_t *p = sl_watch_borrow_ref(rx, &ref);
    ASSERT_EQ_U(*p, 2);
    ASSERT_EQ(ref.has_changed, 1);
    sl_watch_ref_release(&ref);
    ASSERT_EQ(sl_watch_has_changed(rx), 1);
    ASSERT_EQ(sl_watch_borrow_and_update(rx, &v), 1);
    ASSERT_EQ_U(v, 2);
    ASSERT_EQ(sl_watch_has_changed(rx), 0);
    ASSERT_EQ(sl_watch_borrow_and_update(rx, &v), 0);
    snd(tx, 3);
    p = sl_watch_borrow_ref_and_update(rx, &ref);
    ASSERT_EQ_U(*p, 3);
    ASSERT_EQ(ref.has_changed, 1);
    sl_watch_ref_release(&ref);
    ASSERT_EQ(sl_watch_has_changed(rx), 0);
    ASSERT_EQ_U(tx_get(tx), 3);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_10_borrow_vs_borrow_and_update)
{
    test_run(1, w10, NULL);
}

/* ---- W-11 closed: has_changed errs, changed() once for unseen, borrow keeps last ---- */

static void *w11(void *a)
{
    (void)a;
    sl_watch_rx_t *rx, *seen_rx, *waiting;
    sl_watch_tx_t *tx = mk(1, &rx);
    ASSERT_OK(sl_watch_subscribe(tx, &waiting));
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(changed_task, waiting, &t));
    settle();
    snd(tx, 2);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_OK(sl_watch_subscribe(tx, &seen_rx));
    ASSERT_OK(sl_task_spawn(changed_task, waiting, &t));
    settle();
    sl_watch_tx_drop(tx); /* wakes the waiter */
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, SL_ECLOSED);
    /* rx has 2 unseen */
    ASSERT_ERR(sl_watch_has_changed(rx), SL_ECLOSED);
    ASSERT_OK(sl_watch_changed(rx));
    ASSERT_ERR(sl_watch_changed(rx), SL_ECLOSED);
    ASSERT_EQ_U(get(rx), 2);
    /* seen_rx saw 2 at subscribe */
    ASSERT_ERR(sl_watch_has_changed(seen_rx), SL_ECLOSED);
    ASSERT_ERR(sl_watch_changed(seen_rx), SL_ECLOSED);
    ASSERT_ERR(sl_watch_try_changed(seen_rx), SL_ECLOSED);
    uint64_t v;
    ASSERT_EQ(sl_watch_borrow(seen_rx, &v), 0);
    ASSERT_EQ_U(v, 2);
    sl_watch_rx_drop(rx), sl_watch_rx_drop(seen_rx), sl_watch_rx_drop(waiting);
    return NULL;
}

SL_TEST(watch_11_closed_changed_once_then_error)
{
    test_run(1, w11, NULL);
}

/* ---- W-12 mark_changed / mark_unchanged ---- */

static void *w12(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(1, &rx);
    sl_watch_mark_changed(rx);
    ASSERT_EQ(sl_watch_has_changed(rx), 1);
    ASSERT_OK(sl_watch_changed(rx)); /* ready at once */
    ASSERT_EQ_U(get(rx), 1);
    snd(tx, 2);
    sl_watch_mark_unchanged(rx);
    ASSERT_EQ(sl_watch_has_changed(rx), 0);
    ASSERT_ERR(sl_watch_try_changed(rx), SL_EEMPTY);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_12_mark_changed_unchanged)
{
    test_run(1, w12, NULL);
}

/* ---- W-13 wait_for ---- */

static int ge(const void *v, void *arg)
{
    return *(const uint64_t *)v >= (uint64_t)(uintptr_t)arg;
}

typedef struct {
    sl_watch_rx_t *rx;
    uint64_t want, out;
    int res;
} wf_t;

static void *wait_for_task(void *a)
{
    wf_t *w = a;
    w->res = sl_watch_wait_for(w->rx, ge, (void *)(uintptr_t)w->want, &w->out);
    return NULL;
}

static void *w13(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(5, &rx);
    uint64_t out = 0;
    /* the current (seen) value is checked first */
    ASSERT_OK(sl_watch_wait_for(rx, ge, (void *)5, &out));
    ASSERT_EQ_U(out, 5);
    wf_t w = {.rx = rx, .want = 8, .res = 1};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(wait_for_task, &w, &t));
    settle();
    snd(tx, 6);
    settle();
    ASSERT_EQ(sl_task_is_finished(t), 0);
    snd(tx, 9);
    ASSERT_OK(sl_task_join(t, NULL));
    ASSERT_OK(w.res);
    ASSERT_EQ_U(w.out, 9);
    ASSERT_EQ(sl_watch_has_changed(rx), 0); /* marked seen */
    /* closed, predicate true on the last value: ok; false: closed */
    snd(tx, 10);
    sl_watch_tx_drop(tx);
    ASSERT_OK(sl_watch_wait_for(rx, ge, (void *)10, &out));
    ASSERT_EQ_U(out, 10);
    ASSERT_OK(sl_watch_wait_for(rx, ge, (void *)10, &out)); /* still true, seen */
    ASSERT_ERR(sl_watch_wait_for(rx, ge, (void *)11, &out), SL_ECLOSED);
    sl_watch_rx_drop(rx);
    return NULL;
}

SL_TEST(watch_13_wait_for)
{
    test_run(1, w13, NULL);
}

/* ---- W-14 sender closed: no receivers ---- */

static void *tx_closed_task(void *a)
{
    return (void *)(intptr_t)sl_watch_tx_closed(a);
}

static void *w14(void *a)
{
    (void)a;
    sl_watch_rx_t *rx, *r2;
    sl_watch_tx_t *tx = mk(1, &rx);
    ASSERT_OK(sl_watch_rx_clone(rx, &r2));
    ASSERT_EQ_U(sl_watch_receiver_count(tx), 2);
    ASSERT_EQ(sl_watch_tx_is_closed(tx), 0);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(tx_closed_task, tx, &t));
    settle();
    sl_watch_rx_drop(rx);
    settle();
    ASSERT_EQ(sl_task_is_finished(t), 0);
    sl_watch_rx_drop(r2);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, 0);
    ASSERT_EQ(sl_watch_tx_is_closed(tx), 1);
    ASSERT_EQ_U(sl_watch_receiver_count(tx), 0);
    sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_14_sender_closed)
{
    test_run(1, w14, NULL);
}

/* ---- W-15 several senders; closed only when all are gone ---- */

static void *w15(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(1, &rx);
    sl_watch_tx_t *tx2 = sl_watch_tx_clone(tx);
    ASSERT_EQ_U(sl_watch_sender_count(tx), 2);
    snd(tx2, 2);
    sl_watch_tx_drop(tx);
    ASSERT_EQ_U(sl_watch_sender_count(tx2), 1);
    ASSERT_EQ(sl_watch_has_changed(rx), 1);
    ASSERT_OK(sl_watch_changed(rx));
    sl_watch_tx_drop(tx2);
    ASSERT_ERR(sl_watch_has_changed(rx), SL_ECLOSED);
    sl_watch_rx_drop(rx);
    /* a sender made without a receiver cannot send until someone subscribes */
    sl_watch_tx_t *lone = mk(0, NULL);
    uint64_t v = 1;
    ASSERT_ERR(sl_watch_send(lone, &v), SL_ENORECV);
    ASSERT_OK(sl_watch_subscribe(lone, &rx));
    ASSERT_OK(sl_watch_send(lone, &v));
    sl_watch_rx_drop(rx), sl_watch_tx_drop(lone);
    return NULL;
}

SL_TEST(watch_15_multiple_senders)
{
    test_run(1, w15, NULL);
}

/* ---- W-16 changed() is cancel-safe; the value lives while any handle does ---- */

static void *w16(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(1, &rx);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(changed_task, rx, &t));
    settle();
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, SL_ECANCELED);
    snd(tx, 2);
    ASSERT_EQ(sl_watch_has_changed(rx), 1); /* the cancelled wait marked nothing */
    sl_watch_tx_drop(tx);
    ASSERT_EQ_U(get(rx), 2); /* the value outlives the senders */
    sl_watch_rx_drop(rx);    /* and everything is freed with the last handle (run checks) */
    return NULL;
}

SL_TEST(watch_16_changed_cancel_safe_value_lifetime)
{
    test_run(1, w16, NULL);
}

/* ---- W-17 one send wakes every waiter (many waiters, two workers) ---- */

#define W17_N 100

static _Atomic int w17_done;

static void *w17_waiter(void *a)
{
    sl_watch_rx_t *rx = a;
    ASSERT_OK(sl_watch_changed(rx));
    atomic_fetch_add(&w17_done, 1);
    sl_watch_rx_drop(rx);
    return NULL;
}

static void *w17(void *a)
{
    (void)a;
    sl_watch_tx_t *tx = mk(0, NULL);
    sl_task_t *t[W17_N];
    for (int i = 0; i < W17_N; i++) {
        sl_watch_rx_t *rx;
        ASSERT_OK(sl_watch_subscribe(tx, &rx));
        sl_spawn_opts_t so = {.name = "w", .worker = i % 2, .use_worker = 1};
        ASSERT_OK(sl_task_spawn_ex(&so, w17_waiter, rx, &t[i]));
    }
    sl_sleep(5000000);
    snd(tx, 1);
    for (int i = 0; i < W17_N; i++)
        ASSERT_OK(sl_task_join(t[i], NULL));
    ASSERT_EQ(atomic_load(&w17_done), W17_N);
    sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_17_one_send_wakes_all)
{
    test_run(2, w17, NULL);
}

/* ---- X-01 changed() consumes the coop budget ---- */

static void *flag_task(void *a)
{
    *(volatile int *)a = 1;
    return NULL;
}

static void *x01(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(0, &rx);
    volatile int flag = 0;
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(flag_task, (void *)&flag, &t));
    int seen_at = -1;
    for (int i = 0; i < 5000; i++) { /* always ready: only the budget yields */
        snd(tx, (uint64_t)i);
        ASSERT_OK(sl_watch_changed(rx));
        if (flag && seen_at < 0)
            seen_at = i;
    }
    ASSERT_GE(seen_at, 0);
    ASSERT_LE(seen_at, 1000);
    ASSERT_OK(sl_task_join(t, NULL));
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_x01_coop_budget)
{
    test_run(1, x01, NULL);
}

/* ---- X-02 usable outside the runtime ---- */

static void *x02_thread(void *a)
{
    for (uint64_t v = 1; v <= 1000; v++)
        snd(a, v);
    return NULL;
}

SL_TEST(watch_x02_outside_runtime)
{
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(0, &rx);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, x02_thread, tx), 0);
    uint64_t last = 0;
    while (last < 1000) {
        int r = sl_watch_try_changed(rx);
        if (r == SL_EEMPTY)
            continue;
        ASSERT_OK(r);
        uint64_t v = 0;
        ASSERT_GE(sl_watch_borrow_and_update(rx, &v), 0); /* seen = the value read */
        ASSERT_GE_U(v, last);
        last = v;
    }
    ASSERT_EQ(pthread_join(th, NULL), 0);
    sl_watch_tx_drop(tx);
    ASSERT_ERR(sl_watch_try_changed(rx), SL_ECLOSED);
    sl_watch_rx_drop(rx);
}

/* ---- X-03 release/acquire: what the writer wrote before sending is visible ---- */

typedef struct {
    sl_watch_rx_t *rx;
    uint64_t *data;
} x03_t;

static void *x03_reader(void *a)
{
    x03_t *x = a;
    for (;;) {
        int r = sl_watch_changed(x->rx);
        if (r == SL_ECLOSED)
            break;
        ASSERT_OK(r);
        uint64_t i = get(x->rx);
        ASSERT_EQ_U(x->data[i], i * 3 + 1); /* plain memory: TSan checks the ordering */
    }
    return NULL;
}

static void *x03(void *a)
{
    (void)a;
    uint64_t data[1000];
    x03_t x = {.data = data};
    data[0] = 1;
    sl_watch_tx_t *tx = mk(0, &x.rx);
    sl_spawn_opts_t so = {.name = "r", .worker = 1, .use_worker = 1};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn_ex(&so, x03_reader, &x, &t));
    for (uint64_t i = 1; i < 1000; i++) {
        data[i] = i * 3 + 1;
        snd(tx, i);
        if (i % 8 == 0)
            sl_task_yield();
    }
    sl_watch_tx_drop(tx);
    ASSERT_OK(sl_task_join(t, NULL));
    sl_watch_rx_drop(x.rx);
    return NULL;
}

SL_TEST(watch_x03_memory_ordering)
{
    test_run(2, x03, NULL);
}

/* ---- Stress: 1 writer, 4 readers on 2 workers; values whole and monotonic ---- */

typedef struct {
    uint64_t w[8];
} big_t;

#define WS_N 20000

typedef struct {
    sl_watch_rx_t *rx;
    uint64_t last, changes;
} ws_t;

static void *ws_reader(void *a)
{
    ws_t *r = a;
    for (;;) {
        int res = sl_watch_changed(r->rx);
        if (res == SL_ECLOSED)
            break;
        ASSERT_OK(res);
        r->changes++;
        big_t v;
        sl_watch_borrow(r->rx, &v);
        for (int k = 1; k < 8; k++)
            ASSERT_EQ_U(v.w[k], v.w[0]); /* never torn */
        ASSERT_GE_U(v.w[0], r->last);
        r->last = v.w[0];
        if (r->changes % 64 == 0) { /* hold a zero-copy borrow across writes */
            sl_watch_ref_t ref;
            const big_t *p = sl_watch_borrow_ref(r->rx, &ref);
            big_t copy = *p;
            sl_task_yield();
            ASSERT_EQ(memcmp(&copy, p, sizeof copy), 0);
            sl_watch_ref_release(&ref);
        }
    }
    return NULL;
}

static void *ws_main(void *a)
{
    (void)a;
    big_t v = {{0}};
    sl_watch_tx_t *tx;
    ws_t r[4];
    sl_task_t *t[4];
    ASSERT_OK(sl_watch_new(sizeof v, &v, &tx, NULL));
    for (int k = 0; k < 4; k++) {
        memset(&r[k], 0, sizeof r[k]);
        ASSERT_OK(sl_watch_subscribe(tx, &r[k].rx));
        sl_spawn_opts_t so = {.name = "r", .worker = k % 2, .use_worker = 1};
        ASSERT_OK(sl_task_spawn_ex(&so, ws_reader, &r[k], &t[k]));
    }
    for (uint64_t i = 1; i <= WS_N; i++) {
        for (int k = 0; k < 8; k++)
            v.w[k] = i;
        if (i % 3 == 0)
            ASSERT_OK(sl_watch_send_replace(tx, &v, NULL));
        else
            ASSERT_OK(sl_watch_send(tx, &v));
        sl_task_yield();
    }
    sl_watch_tx_drop(tx);
    for (int k = 0; k < 4; k++) {
        ASSERT_OK(sl_task_join(t[k], NULL));
        ASSERT_EQ_U(r[k].last, WS_N); /* the last value is always seen */
        ASSERT_GT_U(r[k].changes, 0);
        sl_watch_rx_drop(r[k].rx);
    }
    return NULL;
}

SL_TEST(watch_stress_readers_2workers)
{
    test_run(2, ws_main, NULL);
}

/* ---- No allocation per send, borrow or wait in steady state ---- */

typedef struct {
    sl_watch_rx_t *rx;
    volatile uint64_t count;
} cnt_t;

static void *count_task(void *a)
{
    cnt_t *c = a;
    while (sl_watch_changed(c->rx) == 0) {
        sl_watch_ref_t ref;
        sl_watch_borrow_ref(c->rx, &ref);
        sl_watch_ref_release(&ref);
        uint64_t v;
        sl_watch_borrow(c->rx, &v);
        c->count++;
    }
    return NULL;
}

static void *alloc_main(void *a)
{
    (void)a;
    cnt_t c = {0};
    sl_watch_tx_t *tx = mk(0, &c.rx);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(count_task, &c, &t));
    settle();
    for (uint64_t v = 0; v < 100; v++) {
        snd(tx, v);
        sl_task_yield();
    }
    long before = test_alloc_total();
    for (uint64_t v = 0; v < 10000; v++) {
        snd(tx, v);
        ASSERT_OK(sl_watch_send_modify(tx, add, (void *)1));
        sl_task_yield();
    }
    long after = test_alloc_total();
    ASSERT_EQ(after - before, 0);
    ASSERT_EQ_U(c.count, 10100);
    sl_watch_tx_drop(tx);
    ASSERT_OK(sl_task_join(t, NULL));
    sl_watch_rx_drop(c.rx);
    return NULL;
}

SL_TEST(watch_alloc_steady_state)
{
    test_run(1, alloc_main, NULL);
}

/* ---- Cross-worker wakes: ping-pong ---- */

typedef struct {
    sl_watch_tx_t *ping, *pong;
    sl_watch_rx_t *ping_rx, *pong_rx;
} pp_t;

static void *pp_echo(void *a)
{
    pp_t *p = a;
    ASSERT_EQ(sl_worker_index(), 1);
    while (sl_watch_changed(p->ping_rx) == 0)
        snd(p->pong, get(p->ping_rx) + 1);
    return NULL;
}

static void *pp_main(void *a)
{
    (void)a;
    pp_t p;
    p.ping = mk(0, &p.ping_rx);
    p.pong = mk(0, &p.pong_rx);
    sl_spawn_opts_t so = {.name = "echo", .worker = 1, .use_worker = 1};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn_ex(&so, pp_echo, &p, &t));
    for (uint64_t i = 1; i <= 2000; i++) {
        snd(p.ping, i * 2);
        ASSERT_OK(sl_watch_changed(p.pong_rx));
        ASSERT_EQ_U(get(p.pong_rx), i * 2 + 1);
    }
    sl_watch_tx_drop(p.ping);
    ASSERT_OK(sl_task_join(t, NULL));
    sl_watch_tx_drop(p.pong);
    sl_watch_rx_drop(p.ping_rx), sl_watch_rx_drop(p.pong_rx);
    return NULL;
}

SL_TEST(watch_cross_worker_wakes)
{
    test_run(2, pp_main, NULL);
}

/* ---- Select: a losing changed clause marks nothing seen ---- */

static void *sel_main(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(0, &rx);
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    sl_cancel_trigger(tok);
    snd(tx, 1);
    sl_clause_t c[2];
    sl_clause_cancelled(&c[0], tok);
    sl_clause_watch_changed(&c[1], rx);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_EQ(sl_watch_has_changed(rx), 1);
    /* armed, then beaten by a deadline: nothing marked */
    ASSERT_OK(sl_watch_changed(rx));
    sl_clause_sleep_until(&c[0], sl_deadline_in(2000000));
    sl_clause_watch_changed(&c[1], rx);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 0);
    snd(tx, 2);
    ASSERT_EQ(sl_watch_has_changed(rx), 1);
    /* winning marks seen */
    sl_clause_none(&c[0]);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 1);
    ASSERT_OK(c[1].res);
    ASSERT_EQ(sl_watch_has_changed(rx), 0);
    sl_watch_tx_drop(tx);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 1);
    ASSERT_ERR(c[1].res, SL_ECLOSED);
    sl_cancel_drop(tok);
    sl_watch_rx_drop(rx);
    return NULL;
}

SL_TEST(watch_select_loser_not_seen)
{
    test_run(1, sel_main, NULL);
}

/* ---- Cancellation and timeouts ---- */

static void *wait_for_cancel_task(void *a)
{
    uint64_t out;
    return (void *)(intptr_t)sl_watch_wait_for(a, ge, (void *)100, &out);
}

static void *cancel_main(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(0, &rx);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(wait_for_cancel_task, rx, &t));
    settle();
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, SL_ECANCELED);
    /* timeout scope around changed() */
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(1000000));
    ASSERT_ERR(sl_watch_changed(rx), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    /* tx_closed: deadline, then cancellation */
    ASSERT_ERR(sl_watch_tx_closed_until(tx, sl_deadline_in(1000000)), SL_ETIMEDOUT);
    ASSERT_OK(sl_task_spawn(tx_closed_task, tx, &t));
    settle();
    sl_task_abort(t);
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, SL_ECANCELED);
    sl_watch_rx_drop(rx), sl_watch_tx_drop(tx);
    return NULL;
}

SL_TEST(watch_cancel_and_timeout)
{
    test_run(1, cancel_main, NULL);
}

/* ---- The three forms of changed, wait_for and tx_closed ---- */

static void *forms_main(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(0, &rx);
    uint64_t out = 0;
    ASSERT_ERR(sl_watch_try_changed(rx), SL_EEMPTY);
    ASSERT_ERR(sl_watch_changed_until(rx, sl_deadline_in(1000000)), SL_ETIMEDOUT);
    snd(tx, 1);
    ASSERT_OK(sl_watch_changed_until(rx, sl_deadline_in(1000000000)));
    snd(tx, 2);
    ASSERT_OK(sl_watch_try_changed(rx));
    snd(tx, 3);
    ASSERT_OK(sl_watch_changed(rx));

    ASSERT_ERR(sl_watch_try_wait_for(rx, ge, (void *)4, &out), SL_EEMPTY);
    ASSERT_OK(sl_watch_try_wait_for(rx, ge, (void *)3, &out));
    ASSERT_EQ_U(out, 3);
    ASSERT_ERR(sl_watch_wait_for_until(rx, ge, (void *)4, &out, sl_deadline_in(1000000)),
               SL_ETIMEDOUT);
    snd(tx, 4);
    ASSERT_OK(sl_watch_wait_for_until(rx, ge, (void *)4, &out, sl_deadline_in(1000000000)));
    ASSERT_EQ_U(out, 4);

    ASSERT_ERR(sl_watch_try_tx_closed(tx), SL_EAGAIN);
    sl_clause_t c;
    sl_clause_watch_tx_closed(&c, tx);
    ASSERT_ERR(sl_select(&c, 1, 0, sl_deadline_in(1000000)), SL_ETIMEDOUT);
    sl_watch_rx_t *r2;
    ASSERT_OK(sl_watch_rx_clone(rx, &r2));
    sl_watch_rx_drop(rx);
    ASSERT_ERR(sl_watch_try_tx_closed(tx), SL_EAGAIN);
    sl_watch_rx_drop(r2);
    ASSERT_OK(sl_watch_try_tx_closed(tx));
    ASSERT_OK(sl_watch_tx_closed(tx));
    ASSERT_OK(sl_watch_tx_closed_until(tx, sl_deadline_in(1000000)));
    ASSERT_EQ(sl_select(&c, 1, 0, SL_FOREVER), 0);

    /* closed forms */
    ASSERT_OK(sl_watch_subscribe(tx, &rx));
    sl_watch_tx_drop(tx);
    ASSERT_ERR(sl_watch_try_changed(rx), SL_ECLOSED);
    ASSERT_ERR(sl_watch_changed_until(rx, sl_deadline_in(1000000)), SL_ECLOSED);
    ASSERT_ERR(sl_watch_try_wait_for(rx, ge, (void *)5, &out), SL_ECLOSED);
    ASSERT_ERR(sl_watch_wait_for_until(rx, ge, (void *)5, &out, sl_deadline_in(1000000)),
               SL_ECLOSED);
    sl_watch_rx_drop(rx);
    return NULL;
}

SL_TEST(watch_three_forms)
{
    test_run(1, forms_main, NULL);
}

/* ---- A zero-copy borrow stays valid and unchanged across sends ---- */

static void *ref_main(void *a)
{
    (void)a;
    sl_watch_rx_t *rx;
    sl_watch_tx_t *tx = mk(1, &rx);
    sl_watch_ref_t r1, r2;
    const uint64_t *p1 = sl_watch_borrow_ref(rx, &r1);
    for (uint64_t v = 2; v < 50; v++)
        snd(tx, v);
    const uint64_t *p2 = sl_watch_borrow_ref(rx, &r2);
    ASSERT_EQ_U(*p1, 1);
    ASSERT_EQ_U(*p2, 49);
    ASSERT_LT_U(r1.version, r2.version);
    sl_watch_tx_drop(tx);
    ASSERT_EQ_U(*p2, 49);
    sl_watch_ref_release(&r1);
    sl_watch_ref_release(&r2);
    sl_watch_rx_drop(rx);
    return NULL;
}

SL_TEST(watch_borrow_ref_survives_sends)
{
    test_run(1, ref_main, NULL);
}

/* ---- Out of memory ---- */

static void *oom_main(void *a)
{
    (void)a;
    for (long n = 0; n < 4; n++) {
        sl_watch_tx_t *tx = NULL;
        sl_watch_rx_t *rx = NULL;
        uint64_t v = 1;
        test_alloc_fail_after(n);
        int r = sl_watch_new(8, &v, &tx, &rx);
        test_alloc_fail_after(-1);
        if (r) {
            ASSERT_ERR(r, SL_ENOMEM);
            continue;
        }
        /* a send that needs a new block and cannot get one stores nothing */
        sl_watch_ref_t ref;
        sl_watch_borrow_ref(rx, &ref); /* pins the current block */
        v = 2;
        ASSERT_OK(sl_watch_send(tx, &v)); /* uses a fresh block, frees none */
        sl_watch_ref_t ref2;
        sl_watch_borrow_ref(rx, &ref2); /* pins that one too */
        test_alloc_fail_all_after(0);
        v = 3;
        ASSERT_ERR(sl_watch_send(tx, &v), SL_ENOMEM);
        ASSERT_ERR(sl_watch_send_modify(tx, add, (void *)1), SL_ENOMEM);
        test_alloc_fail_after(-1);
        ASSERT_EQ_U(get(rx), 2);
        sl_watch_ref_release(&ref);
        sl_watch_ref_release(&ref2);
        sl_watch_rx_drop(rx);
        sl_watch_tx_drop(tx);
    }
    return NULL;
}

SL_TEST(watch_out_of_memory)
{
    test_run(1, oom_main, NULL);
}
