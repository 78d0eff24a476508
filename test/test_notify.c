/* Notify: the Tokio checklist items NT-01..12, races with timeouts/aborts, select, forms. */
#include <stdatomic.h>
#include <string.h>

#include <sluice.h>

#include "test.h"
#include "test_rt.h"

/* A task that waits on a notifier and records when it was woken. */
struct wt {
    sl_notify_t *n;
    int64_t deadline; /* 0: forever */
    atomic_int *seq;
    atomic_int res;
    atomic_int done;
    int order;
};

static void *waiter(void *arg)
{
    struct wt *a = arg;
    int r = sl_notify_wait_until(a->n, a->deadline ? a->deadline : SL_FOREVER);
    if (r == 0 && a->seq)
        a->order = atomic_fetch_add(a->seq, 1);
    atomic_store(&a->res, r);
    atomic_store(&a->done, 1);
    return NULL;
}

static void wt_init(struct wt *a, sl_notify_t *n, atomic_int *seq)
{
    memset(a, 0, sizeof *a);
    a->n = n;
    a->seq = seq;
    atomic_store(&a->res, 1);
}

/* Spawns a waiter and returns once it is parked in its wait (or done). */
static sl_task_t *spawn_wt(int worker, struct wt *a)
{
    return test_spawn_until_parked(worker, waiter, a, &a->done);
}

/* ---- NT-01 ---- */

static void *main_nt_01(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notify_init(&n);
    sl_notify_one(&n);
    sl_notify_one(&n);
    sl_notify_one(&n);
    ASSERT_OK(sl_notify_wait(&n));
    ASSERT_ERR(sl_notify_wait_until(&n, sl_deadline_in(2 * SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN);
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_01_notify_one_stores_one_permit)
{
    test_run(1, main_nt_01, NULL);
}

/* ---- NT-02 ---- */

static void *main_nt_02(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_notify_t n;
    atomic_int seq = 0;
    struct wt a[3];
    sl_task_t *t[3];
    sl_notify_init(&n);
    for (int i = 0; i < 3; i++) {
        wt_init(&a[i], &n, &seq);
        t[i] = spawn_wt(w, &a[i]);
    }
    sl_notify_one(&n); /* oldest */
    test_join_ok(t[0]);
    sl_notify_last(&n); /* newest */
    test_join_ok(t[2]);
    ASSERT_EQ(atomic_load(&a[1].done), 0);
    sl_notify_one(&n);
    test_join_ok(t[1]);
    ASSERT_EQ(a[0].order, 0);
    ASSERT_EQ(a[2].order, 1);
    ASSERT_EQ(a[1].order, 2);
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN);
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_02_notify_one_fifo_notify_last_lifo)
{
    test_run(1, main_nt_02, (void *)(intptr_t)1);
    test_run(2, main_nt_02, (void *)(intptr_t)2);
}

/* ---- NT-03 ---- */

static void *main_nt_03(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notified_t f;
    sl_notify_init(&n);
    sl_notified_init(&f, &n);
    sl_notify_one(&n); /* f is not a waiter: the permit is stored */
    ASSERT_OK(sl_notified_wait(&f));
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN);
    /* Unless another waiter takes the permit first. */
    sl_notified_init(&f, &n);
    sl_notify_one(&n);
    ASSERT_OK(sl_notify_wait(&n));
    ASSERT_ERR(sl_notified_wait_until(&f, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    sl_notified_cancel(&f);
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_03_unpolled_notified_is_not_a_waiter)
{
    test_run(1, main_nt_03, NULL);
}

/* ---- NT-04 ---- */

static void *main_nt_04(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_notify_t n;
    struct wt a[3];
    sl_task_t *t[3];
    sl_notified_t before, after;
    sl_clause_t c;
    sl_notify_init(&n);
    for (int i = 0; i < 3; i++) {
        wt_init(&a[i], &n, NULL);
        t[i] = spawn_wt(w, &a[i]);
    }
    sl_notified_init(&before, &n); /* created, never polled */
    sl_clause_notified(&c, &n);    /* a clause built before the broadcast */
    sl_notify_waiters(&n);
    sl_notified_init(&after, &n);
    for (int i = 0; i < 3; i++) {
        test_join_ok(t[i]);
        ASSERT_OK(atomic_load(&a[i].res));
    }
    ASSERT_OK(sl_notified_try_wait(&before));
    ASSERT_EQ(sl_select(&c, 1, SL_SELECT_BIASED, sl_deadline_in(SL_SEC)), 0);
    ASSERT_ERR(sl_notified_try_wait(&after), SL_EAGAIN);
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN); /* stores nothing */
    ASSERT_ERR(sl_notify_wait_until(&n, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    sl_notified_cancel(&after);
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_04_notify_waiters_wakes_created_before_stores_nothing)
{
    test_run(1, main_nt_04, (void *)(intptr_t)1);
    test_run(2, main_nt_04, (void *)(intptr_t)2);
}

/* ---- NT-05 ---- */

static void *main_nt_05(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notified_t f1;
    sl_notify_init(&n);
    sl_notified_init(&f1, &n);
    sl_notify_waiters(&n);
    sl_notify_one(&n);
    ASSERT_OK(sl_notified_wait(&f1));  /* completed by the broadcast */
    ASSERT_OK(sl_notify_try_wait(&n)); /* the permit survived */
    /* The same with f1 enabled (queued) before the broadcast. */
    sl_notified_init(&f1, &n);
    ASSERT_EQ(sl_notified_enable(&f1), 0);
    sl_notify_waiters(&n);
    sl_notify_one(&n);
    ASSERT_OK(sl_notified_wait(&f1));
    ASSERT_OK(sl_notify_try_wait(&n));
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_05_notify_waiters_priority_preserves_permit)
{
    test_run(1, main_nt_05, NULL);
}

/* ---- NT-06 ---- */

static void *main_nt_06(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notified_t f1, f2, f3;
    sl_notify_init(&n);
    /* notify_one chooses f1; dropping f1 passes it to f2. */
    sl_notified_init(&f1, &n);
    sl_notified_init(&f2, &n);
    ASSERT_EQ(sl_notified_enable(&f1), 0);
    ASSERT_EQ(sl_notified_enable(&f2), 0);
    sl_notify_one(&n);
    ASSERT_ERR(sl_notified_try_wait(&f2), SL_EAGAIN);
    sl_notified_cancel(&f1);
    ASSERT_OK(sl_notified_try_wait(&f2));
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN);
    /* notify_last chooses f3; dropping it passes to the next newest, f2. */
    sl_notified_init(&f1, &n);
    sl_notified_init(&f2, &n);
    sl_notified_init(&f3, &n);
    sl_notified_enable(&f1);
    sl_notified_enable(&f2);
    sl_notified_enable(&f3);
    sl_notify_last(&n);
    sl_notified_cancel(&f3);
    ASSERT_OK(sl_notified_try_wait(&f2));
    ASSERT_ERR(sl_notified_try_wait(&f1), SL_EAGAIN);
    /* With nobody left, the notification becomes the stored permit. */
    sl_notify_one(&n);
    sl_notified_cancel(&f1);
    ASSERT_OK(sl_notify_try_wait(&n));
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_06_chosen_then_dropped_passes_on)
{
    test_run(1, main_nt_06, NULL);
}

/* ---- NT-07 ---- */

static void *main_nt_07(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notified_t f;
    sl_notify_init(&n);
    sl_notified_init(&f, &n);
    ASSERT_EQ(sl_notified_enable(&f), 0);
    sl_notify_waiters(&n);
    sl_notify_one(&n);
    sl_notified_cancel(&f);
    ASSERT_OK(sl_notify_try_wait(&n));
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN);
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_07_broadcast_then_dropped_forwards_nothing)
{
    test_run(1, main_nt_07, NULL);
}

/* ---- NT-08 ---- */

static void *main_nt_08(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notified_t f1, f2;
    struct wt a;
    sl_notify_init(&n);
    sl_notified_init(&f1, &n);
    sl_notified_init(&f2, &n);
    sl_notified_enable(&f1);
    sl_notified_enable(&f2);
    sl_notified_cancel(&f1);
    sl_notify_one(&n);
    ASSERT_OK(sl_notified_try_wait(&f2));
    /* A plain waiter that gave up is skipped the same way. */
    wt_init(&a, &n, NULL);
    a.deadline = sl_deadline_in(SL_MSEC);
    test_join_ok(spawn_wt(-1, &a));
    ASSERT_EQ(atomic_load(&a.res), SL_ETIMEDOUT);
    sl_notify_one(&n);
    ASSERT_OK(sl_notify_try_wait(&n));
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_08_dropped_waiter_unregisters)
{
    test_run(1, main_nt_08, NULL);
}

/* ---- NT-09 ---- */

static void *main_nt_09(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notified_t f1, f2;
    sl_notify_init(&n);
    sl_notify_one(&n);
    sl_notified_init(&f1, &n);
    sl_notified_init(&f2, &n);
    ASSERT_EQ(sl_notified_enable(&f1), 1);
    ASSERT_EQ(sl_notified_enable(&f2), 0);
    ASSERT_EQ(sl_notified_enable(&f2), 0);
    sl_notify_one(&n); /* after enable: goes to f2 */
    ASSERT_EQ(sl_notified_enable(&f2), 1);
    ASSERT_OK(sl_notified_wait(&f2));
    ASSERT_OK(sl_notified_wait(&f1));
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN);
    /* A broadcast after enable but before the wait is not missed. */
    sl_notified_init(&f1, &n);
    sl_notified_enable(&f1);
    sl_notify_waiters(&n);
    ASSERT_OK(sl_notified_wait_until(&f1, sl_deadline_in(SL_SEC)));
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_09_enable_registers_and_consumes_permit)
{
    test_run(1, main_nt_09, NULL);
}

/* ---- NT-10 ---- */

static void *main_nt_10(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notified_t f;
    sl_notify_init(&n);
    sl_notify_one(&n);
    sl_notified_init(&f, &n);
    ASSERT_EQ(sl_notified_enable(&f), 1);
    sl_notified_cancel(&f); /* does not give the permit back */
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN);
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_10_consumed_then_dropped_not_returned)
{
    test_run(1, main_nt_10, NULL);
}

/* ---- NT-11 ---- */

static void *main_nt_11(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notified_t f;
    sl_notify_init(&n);
    sl_notified_init(&f, &n);
    sl_notify_one(&n);
    ASSERT_OK(sl_notified_wait(&f));
    ASSERT_OK(sl_notified_wait(&f));
    ASSERT_OK(sl_notified_try_wait(&f));
    ASSERT_OK(sl_notified_wait_until(&f, sl_deadline_in(SL_MSEC)));
    sl_notified_cancel(&f);
    sl_notified_cancel(&f); /* idempotent */
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_11_notified_is_fused)
{
    test_run(1, main_nt_11, NULL);
}

/* ---- NT-12 ---- */

static void *main_nt_12(void *arg)
{
    int workers = (int)(intptr_t)arg;
    sl_notify_t n;
    enum { N = 100 };
    static struct wt a[N];
    sl_task_t *t[N];
    sl_notify_init(&n);
    for (int i = 0; i < N; i++) {
        wt_init(&a[i], &n, NULL);
        t[i] = spawn_wt(workers > 1 ? i % 2 : -1, &a[i]);
    }
    sl_notify_waiters(&n); /* 100 waiters, lock released every 32 */
    struct wt late;
    wt_init(&late, &n, NULL);
    late.deadline = sl_deadline_in(2 * SL_MSEC);
    sl_task_t *tl = spawn_wt(-1, &late);
    for (int i = 0; i < N; i++) {
        test_join_ok(t[i]);
        ASSERT_OK(atomic_load(&a[i].res));
    }
    test_join_ok(tl);
    ASSERT_EQ(atomic_load(&late.res), SL_ETIMEDOUT);
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(nt_12_notify_waiters_batches_all)
{
    test_run(1, main_nt_12, (void *)(intptr_t)1);
    test_run(2, main_nt_12, (void *)(intptr_t)2);
}

/* ---- A broadcast's wake order is that of one wake at a time ---- */

/* Woken from a task, each waiter of this worker takes the runnext slot and the one it displaces
 * goes to the run queue: the last one woken runs first, then the others in queue order. The
 * broadcast makes the waiters of its own worker runnable as it claims them, with the runnext
 * slot in a local and the displaced tasks chained, once per batch (sl__wakes_t); this fails if
 * that loses the task runnext held, or orders the queue differently from single wakes.
 * (The list pass that other wakes go through: test_broadcast.c,
 * bcast_send_wakes_as_single_wakes_would.) */
typedef struct order_rec {
    sl_notify_t n;
    _Atomic int armed;
    int ran[8];
    int nran;
} order_rec_t;

static order_rec_t order_rec;

static void *order_waiter(void *arg)
{
    int i = (int)(intptr_t)arg;
    sl_notified_t w;
    sl_notified_init(&w, &order_rec.n);
    ASSERT_EQ(sl_notified_enable(&w), 0);
    atomic_fetch_add(&order_rec.armed, 1);
    ASSERT_OK(sl_notified_wait(&w));
    order_rec.ran[order_rec.nran++] = i;
    return NULL;
}

static void *main_wake_order(void *arg)
{
    (void)arg;
    enum { N = 5 };
    memset(&order_rec, 0, sizeof order_rec);
    sl_notify_init(&order_rec.n);
    sl_task_t *t[N];
    for (int i = 0; i < N; i++)
        ASSERT_OK(sl_task_spawn(order_waiter, (void *)(intptr_t)i, &t[i]));
    while (atomic_load(&order_rec.armed) < N)
        (void)sl_task_yield();
    sl_notify_waiters(&order_rec.n);
    for (int i = 0; i < N; i++)
        test_join_ok(t[i]);
    ASSERT_EQ(order_rec.nran, N);
    static const int want[N] = {4, 0, 1, 2, 3};
    for (int i = 0; i < N; i++)
        ASSERT_EQ(order_rec.ran[i], want[i]);
    sl_notify_destroy(&order_rec.n);
    return NULL;
}

SL_TEST(notify_waiters_wakes_as_single_wakes_would)
{
    test_run(1, main_wake_order, NULL);
}

/* ---- Races across workers: a notification is never lost ---- */

struct race {
    sl_notify_t n;
    sl_cancel_t *tok;
    sl_barrier_t bar;
    int64_t deadline;
    int use_notified; /* A waits through an sl_notified_t */
    atomic_int a_res, a_done, b_idx;
    sl_task_t *a;
};

static void *race_a(void *arg)
{
    struct race *r = arg;
    int res;
    if (r->use_notified) {
        sl_notified_t f;
        sl_notified_init(&f, &r->n);
        sl_notified_enable(&f);
        res = sl_notified_wait_until(&f, r->deadline);
        sl_notified_cancel(&f); /* passes on a notification it was chosen for */
    } else {
        res = sl_notify_wait_until(&r->n, r->deadline);
    }
    atomic_store(&r->a_res, res);
    atomic_store(&r->a_done, 1);
    return NULL;
}

static void *race_b(void *arg)
{
    struct race *r = arg;
    sl_clause_t c[2];
    sl_clause_notified(&c[0], &r->n);
    sl_clause_cancelled(&c[1], r->tok);
    atomic_store(&r->b_idx, sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER));
    return NULL;
}

static void *race_aborter(void *arg)
{
    struct race *r = arg;
    ASSERT_OK(sl_barrier_wait(&r->bar, NULL));
    sl_task_abort(r->a);
    return NULL;
}

/* mode 0: A times out; 1: A is aborted from a third task; 2: A (an enabled sl_notified_t, which
 * parks on its own node) times out; 3: A (the same) is aborted. */
static void *main_race(void *arg)
{
    int mode = (int)(intptr_t)arg;
    int iters = 300;
    int outcome[3] = {0, 0, 0};
    for (int it = 0; it < iters; it++) {
        struct race r;
        memset(&r, 0, sizeof r);
        sl_notify_init(&r.n);
        ASSERT_OK(sl_cancel_new(&r.tok));
        sl_barrier_init(&r.bar, 2);
        int by_abort = mode == 1 || mode == 3;
        r.use_notified = mode >= 2;
        int64_t lead = (it % 7) * 100 * SL_USEC;
        r.deadline = by_abort ? SL_FOREVER : sl_deadline_in(2 * SL_MSEC + lead);
        /* A queues first (unless its deadline passed before it ran), then B. */
        r.a = test_spawn_until_parked(1, race_a, &r, &r.a_done);
        sl_task_t *b = test_spawn_until_parked(1, race_b, &r, NULL);
        sl_task_t *ab = NULL;
        if (by_abort) {
            ab = test_spawn_on(1, race_aborter, &r);
            ASSERT_OK(sl_barrier_wait(&r.bar, NULL));
            for (int k = 0; k < it % 5; k++)
                sl_task_yield();
        } else {
            int64_t until = r.deadline - 300 * SL_USEC + (it % 3) * 300 * SL_USEC;
            while (sl_clock() < until)
                ;
        }
        sl_notify_one(&r.n);
        sl_join_t j;
        ASSERT_OK(sl_task_join(r.a, &j));
        if (ab)
            test_join_ok(ab);
        sl_cancel_trigger(r.tok);
        test_join_ok(b);
        int a_got = atomic_load(&r.a_res) == 0;
        int b_got = atomic_load(&r.b_idx) == 0;
        int stored = sl_notify_try_wait(&r.n) == 0;
        ASSERT_EQ(a_got + b_got + stored, 1);
        outcome[a_got ? 0 : b_got ? 1 : 2]++;
        sl_cancel_drop(r.tok);
        sl_notify_destroy(&r.n);
        sl_barrier_destroy(&r.bar);
    }
    printf("A got it %d, B got it %d, stored %d\n", outcome[0], outcome[1], outcome[2]);
    return NULL;
}

SL_TEST(notify_race_timeout_never_lost_2workers)
{
    test_run(2, main_race, (void *)(intptr_t)0);
}

SL_TEST(notify_race_abort_never_lost_2workers)
{
    test_run(2, main_race, (void *)(intptr_t)1);
}

SL_TEST(notified_race_timeout_passes_on_2workers)
{
    test_run(2, main_race, (void *)(intptr_t)2);
}

SL_TEST(notified_race_abort_passes_on_2workers)
{
    test_run(2, main_race, (void *)(intptr_t)3);
}

/* ---- notify_waiters' plain claims against aborts from another worker ----
 * A notifier claims the enabled Notifieds of its own worker with a plain load and store
 * (src/core/rt.h, "Plain claims"), while the main task on the other worker aborts the same
 * waiters through their JoinSet: every waiter's wait ends exactly once, woken (0) or aborted
 * (SL_ECANCELED). A wait claimed by both would be woken twice, which the run queue's
 * assertion stops. The aborts are claimed on the waiters' worker between its rounds
 * (sl__abort_claim posts them there): the notifier starts its broadcast at a delay that sweeps
 * across the aborts' posts, and in some rounds first yields long enough for the worker to end
 * a round and claim the posted aborts, so that either side comes first. */
#define PC_WAITERS 80
#define PC_ROUNDS  200

struct pc_round {
    sl_notify_t n;
    int delay_ns, yields;
    _Atomic int armed, go, woke, aborted;
};

static void *pc_waiter(void *arg)
{
    struct pc_round *r = arg;
    sl_notified_t f;
    sl_notified_init(&f, &r->n);
    (void)sl_notified_enable(&f);
    atomic_fetch_add(&r->armed, 1);
    int res = sl_notified_wait(&f);
    if (res == 0) {
        atomic_fetch_add(&r->woke, 1);
    } else {
        ASSERT_ERR(res, SL_ECANCELED);
        atomic_fetch_add(&r->aborted, 1);
    }
    sl_notified_cancel(&f);
    return NULL;
}

static void *pc_notifier(void *arg)
{
    struct pc_round *r = arg;
    while (!atomic_load(&r->go))
        ASSERT_OK(sl_task_yield());
    test_spin_ns(r->delay_ns);
    for (int k = 0; k < r->yields; k++)
        ASSERT_OK(sl_task_yield());
    sl_notify_waiters(&r->n);
    return NULL;
}

static void *main_plain_claims(void *arg)
{
    (void)arg;
    int woke = 0, aborted = 0;
    for (int it = 0; it < PC_ROUNDS; it++) {
        struct pc_round r;
        memset(&r, 0, sizeof r);
        sl_notify_init(&r.n);
        r.delay_ns = (it % 40) * 500;
        r.yields = it % 3 == 0 ? 300 : 0; /* more than a round's tasks (BATCH) */
        void *args[PC_WAITERS];
        for (int i = 0; i < PC_WAITERS; i++)
            args[i] = &r;
        test_abort_race(PC_WAITERS, pc_waiter, args, pc_notifier, &r, &r.armed, &r.go);
        ASSERT_EQ(atomic_load(&r.woke) + atomic_load(&r.aborted), PC_WAITERS);
        woke += atomic_load(&r.woke);
        aborted += atomic_load(&r.aborted);
        sl_notify_destroy(&r.n);
    }
    printf("woken %d, aborted %d\n", woke, aborted);
    return NULL;
}

SL_TEST(notify_waiters_plain_claims_race_aborts_2workers)
{
    test_run(2, main_plain_claims, NULL);
}

/* ---- Select: a losing notified clause consumes nothing ---- */

static void *main_select(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_clause_t c[2];
    sl_notify_init(&n);
    sl_clause_notified(&c[0], &n);
    sl_clause_sleep_until(&c[1], sl_deadline_in(2 * SL_MSEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    sl_notify_one(&n); /* nobody waits any more: stored */
    ASSERT_OK(sl_notify_try_wait(&n));
    /* Both ready: the sleep is first and wins, the permit stays. */
    sl_notify_one(&n);
    sl_clause_sleep_until(&c[0], sl_now());
    sl_clause_notified(&c[1], &n);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_OK(sl_notify_try_wait(&n));
    /* An sl_notified_t clause that loses keeps its registration. */
    sl_notified_t f;
    sl_notified_init(&f, &n);
    sl_clause_notified_wait(&c[0], &f);
    sl_clause_sleep_until(&c[1], sl_deadline_in(SL_MSEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    sl_notify_one(&n); /* goes to f, not to the permit */
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN);
    sl_clause_notified_wait(&c[0], &f);
    ASSERT_EQ(sl_select(c, 1, SL_SELECT_BIASED, SL_FOREVER), 0);
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(notify_select_loser_consumes_nothing)
{
    test_run(1, main_select, NULL);
}

/* ---- Forms, cancellation, timeout scope, task end ---- */

static void *cancel_waiter(void *arg)
{
    sl_notify_t *n = arg;
    ASSERT_ERR(sl_notify_wait(n), SL_ECANCELED);
    ASSERT_ERR(sl_notify_wait_until(n, SL_FOREVER), SL_ECANCELED);
    sl_notified_t f;
    sl_notified_init(&f, n);
    ASSERT_ERR(sl_notified_wait(&f), SL_ECANCELED);
    return NULL;
}

static void *enabled_then_panic(void *arg)
{
    sl_notify_t *n = arg;
    sl_notified_t f;
    sl_notified_init(&f, n);
    sl_notified_enable(&f);
    ASSERT_OK(sl_sleep(SL_SEC / 100)); /* notify_one chooses f meanwhile */
    sl_panic("gone");
}

static void *main_forms(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_notify_t n;
    sl_notify_init(&n);
    ASSERT_ERR(sl_notify_try_wait(&n), SL_EAGAIN);
    ASSERT_ERR(sl_notify_wait_until(&n, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(SL_MSEC));
    ASSERT_ERR(sl_notify_wait(&n), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    sl_notify_one(&n);
    ASSERT_OK(sl_notify_wait_until(&n, SL_FOREVER));

    sl_task_t *t = test_spawn_until_parked(w, cancel_waiter, &n, NULL);
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    sl_notify_one(&n);
    ASSERT_OK(sl_notify_try_wait(&n)); /* nothing took it */

    /* A task that ends (panics) while chosen passes the notification on. */
    t = test_spawn_until_parked(w, enabled_then_panic, &n, NULL);
    sl_notify_one(&n);
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_PANICKED);
    ASSERT_OK(sl_notify_try_wait(&n));
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(notify_three_forms_cancel_timeout_task_end)
{
    test_run(1, main_forms, (void *)(intptr_t)1);
    test_run(2, main_forms, (void *)(intptr_t)2);
}

/* ---- An enabled sl_notified_t's own wait ----
 * Once its task has enabled it, an sl_notified_t's wait parks the task on the node that is
 * already in the notifier's queue (notify.c, nd_wait_own) instead of a clause: every way a
 * wait can end must work there as in the generic wait. */

struct own {
    sl_notify_t n;
    _Atomic int done;
    atomic_int res, try_after;
};

static void *own_waiter(void *arg)
{
    struct own *o = arg;
    sl_notified_t f;
    sl_notified_init(&f, &o->n);
    ASSERT_EQ(sl_notified_enable(&f), 0);
    int r = sl_notified_wait(&f);
    atomic_store(&o->res, r);
    /* After an abort the registration stays: nothing was consumed. */
    atomic_store(&o->try_after, sl_notified_try_wait(&f));
    sl_notified_cancel(&f);
    atomic_store(&o->done, 1);
    return NULL;
}

static void *own_self_abort(void *arg)
{
    sl_notified_t f;
    sl_notified_init(&f, arg);
    ASSERT_EQ(sl_notified_enable(&f), 0);
    sl_task_abort(sl_task_self());
    ASSERT_ERR(sl_notified_wait(&f), SL_ECANCELED);
    ASSERT_ERR(sl_notified_wait_until(&f, sl_deadline_in(SL_MSEC)), SL_ECANCELED);
    sl_notified_cancel(&f);
    return NULL;
}

static void *main_own(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    struct own o;
    memset(&o, 0, sizeof o);
    sl_notify_init(&o.n);
    sl_notified_t f;

    /* Deadlines and scopes end the wait, and the registration survives them. */
    sl_notified_init(&f, &o.n);
    ASSERT_EQ(sl_notified_enable(&f), 0);
    ASSERT_ERR(sl_notified_wait_until(&f, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_ERR(sl_notified_wait_until(&f, sl_now() - SL_MSEC), SL_ETIMEDOUT);
    sl_timeout_t to, inner;
    sl_timeout_enter(&to, sl_deadline_in(SL_MSEC));
    sl_timeout_enter(&inner, SL_FOREVER); /* an inner scope, cut short with its outer one */
    ASSERT_ERR(sl_notified_wait(&f), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&inner), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    sl_timeout_enter(&to, sl_deadline_in(SL_SEC)); /* a later scope: the call's deadline wins */
    ASSERT_ERR(sl_notified_wait_until(&f, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_OK(sl_timeout_exit(&to));
    ASSERT_ERR(sl_notified_try_wait(&f), SL_EAGAIN);
    sl_notify_waiters(&o.n); /* still queued after four timeouts: the broadcast reaches f */
    ASSERT_OK(sl_notified_wait_until(&f, sl_deadline_in(SL_MSEC)));
    ASSERT_ERR(sl_notify_try_wait(&o.n), SL_EAGAIN); /* nothing stored */

    /* A notify_one that chose f while no wait was parked completes the next wait at once. */
    sl_notified_init(&f, &o.n);
    ASSERT_EQ(sl_notified_enable(&f), 0);
    sl_notify_one(&o.n);
    ASSERT_OK(sl_notified_wait(&f));

    /* Parked on its node (on worker w), woken by a broadcast and by notify_one. */
    sl_task_t *t = test_spawn_until_parked(w, own_waiter, &o, &o.done);
    sl_notify_waiters(&o.n);
    test_join_ok(t);
    ASSERT_EQ(atomic_load(&o.res), 0);
    ASSERT_EQ(atomic_load(&o.try_after), 0); /* fused: ready again */
    o.done = 0;
    t = test_spawn_until_parked(w, own_waiter, &o, &o.done);
    sl_notify_one(&o.n);
    test_join_ok(t);
    ASSERT_EQ(atomic_load(&o.res), 0);
    ASSERT_ERR(sl_notify_try_wait(&o.n), SL_EAGAIN); /* consumed by that wait, not stored */

    /* Aborted while parked on its node: SL_ECANCELED and still registered (nothing consumed)
     * until the waiter drops it. */
    o.done = 0;
    t = test_spawn_until_parked(w, own_waiter, &o, &o.done);
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    ASSERT_EQ(atomic_load(&o.res), SL_ECANCELED);
    ASSERT_EQ(atomic_load(&o.try_after), SL_EAGAIN);
    sl_notify_one(&o.n); /* nobody is queued any more: stored */
    ASSERT_OK(sl_notify_try_wait(&o.n));

    /* A task cancelled before its wait gets SL_ECANCELED at once. */
    t = test_spawn_on(w, own_self_abort, &o.n);
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    sl_notify_destroy(&o.n);
    return NULL;
}

SL_TEST(notified_enabled_wait_ends_every_way)
{
    test_run(1, main_own, (void *)(intptr_t)1);
    test_run(2, main_own, (void *)(intptr_t)2);
}

/* ---- Cross-worker ping-pong without allocation ---- */

enum { PP_ROUNDS = 5000 };

struct pp {
    sl_notify_t ping, pong;
    sl_barrier_t start, end;
};

static void *ponger(void *arg)
{
    struct pp *p = arg;
    ASSERT_OK(sl_barrier_wait(&p->start, NULL));
    for (int i = 0; i < PP_ROUNDS; i++) {
        ASSERT_OK(sl_notify_wait(&p->ping));
        sl_notify_one(&p->pong);
    }
    ASSERT_OK(sl_barrier_wait(&p->end, NULL));
    return NULL;
}

static void *main_pp(void *arg)
{
    (void)arg;
    struct pp p;
    sl_notify_init(&p.ping);
    sl_notify_init(&p.pong);
    sl_barrier_init(&p.start, 2);
    sl_barrier_init(&p.end, 2);
    sl_task_t *t = test_spawn_on(1, ponger, &p);
    ASSERT_OK(sl_barrier_wait(&p.start, NULL));
    long before = test_alloc_total();
    for (int i = 0; i < PP_ROUNDS; i++) {
        sl_notify_one(&p.ping);
        ASSERT_OK(sl_notify_wait(&p.pong));
    }
    ASSERT_OK(sl_barrier_wait(&p.end, NULL));
    ASSERT_EQ(test_alloc_total() - before, 0);
    test_join_ok(t);
    sl_notify_destroy(&p.ping);
    sl_notify_destroy(&p.pong);
    return NULL;
}

SL_TEST(notify_cross_worker_ping_pong_no_alloc)
{
    test_run(2, main_pp, NULL);
}

/* ---- An enabled Notified armed while a notifier on another worker marks it ----
 * The waiters enable, tell the notifier they are registered, and only then wait, so the
 * notifier's mark races with the arm that publishes the waiting clause (the lock-free arm in
 * notify.c). Every round must wake every waiter: a lost wake-up hangs the test. */

#define ARM_WAITERS 8

struct arm_race {
    sl_notify_t n, armed_all;
    atomic_int armed;
    int rounds, one; /* one: notify_one per waiter instead of notify_waiters */
    atomic_long wakes;
};

static void *arm_waiter(void *arg)
{
    struct arm_race *a = arg;
    for (int i = 0; i < a->rounds; i++) {
        sl_notified_t f;
        sl_notified_init(&f, &a->n);
        ASSERT_EQ(sl_notified_enable(&f), 0);
        if (atomic_fetch_add(&a->armed, 1) + 1 == ARM_WAITERS)
            sl_notify_one(&a->armed_all);
        ASSERT_OK(sl_notified_wait(&f));
        atomic_fetch_add(&a->wakes, 1);
    }
    return NULL;
}

static void *main_arm_race(void *arg)
{
    struct arm_race a = {.rounds = 300, .one = (int)(intptr_t)arg};
    sl_notify_init(&a.n);
    sl_notify_init(&a.armed_all);
    sl_task_t *t[ARM_WAITERS];
    for (int i = 0; i < ARM_WAITERS; i++)
        t[i] = test_spawn_on(1, arm_waiter, &a);
    for (int r = 0; r < a.rounds; r++) {
        ASSERT_OK(sl_notify_wait(&a.armed_all));
        atomic_store(&a.armed, 0);
        if (a.one) {
            for (int i = 0; i < ARM_WAITERS; i++)
                sl_notify_one(&a.n);
        } else {
            sl_notify_waiters(&a.n);
        }
    }
    for (int i = 0; i < ARM_WAITERS; i++)
        test_join(t[i]);
    ASSERT_EQ(atomic_load(&a.wakes), (long)a.rounds * ARM_WAITERS);
    sl_notify_destroy(&a.n);
    sl_notify_destroy(&a.armed_all);
    return NULL;
}

SL_TEST(notified_arm_races_notifier_2workers)
{
    test_run(2, main_arm_race, (void *)(intptr_t)0);
    test_run(2, main_arm_race, (void *)(intptr_t)1);
}
