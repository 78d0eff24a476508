/* Time: sleep, sleep_until, intervals (burst, delay, skip), timeout scopes, deadlines. */
#include <sluice.h>

#include "core/rt.h"

#include "test.h"
#include "test_rt.h"

static void *main_sleep(void *arg)
{
    (void)arg;
    int64_t t0 = sl_clock();
    ASSERT_OK(sl_sleep(20 * SL_MSEC));
    int64_t t1 = sl_clock();
    /* Never early; late is allowed on a loaded machine. */
    ASSERT_GE(t1 - t0, 20 * SL_MSEC);
    int64_t d = sl_deadline_in(5 * SL_MSEC);
    ASSERT_OK(sl_sleep_until(d));
    ASSERT_GE(sl_clock(), d);
    ASSERT_GE(sl_now(), d);
    /* A deadline in the past just yields. */
    ASSERT_OK(sl_sleep_until(0));
    ASSERT_OK(sl_sleep(0));
    ASSERT_EQ(sl_deadline_in(SL_FOREVER), SL_FOREVER);
    return NULL;
}

SL_TEST(sleep_never_early)
{
    test_run(1, main_sleep, NULL);
}

/* sl_now() is the round's clock: the same value for the whole of a scheduling round, however
 * long the task runs, and read again in the next round, which the scheduler starts without
 * reading the clock (the round's first reader does). A round with no timer armed must still
 * see the time move on, and a deadline taken in it must not be early. */
static void spin_until(int64_t when)
{
    while (sl_clock() < when)
        ;
}

static void *main_now_per_round(void *arg)
{
    (void)arg;
    for (int round = 0; round < 3; round++) {
        int64_t a = sl_now();
        ASSERT_LE(a, sl_clock());
        spin_until(a + 2 * SL_MSEC);
        ASSERT_EQ(sl_now(), a); /* no yield since: the same round */
        int64_t before = sl_clock();
        /* With nothing else to run, a yield comes back at once until the round's budget of
         * tasks (61) is used up; then the scheduler runs a new round. */
        for (int i = 0; i < 200; i++)
            ASSERT_OK(sl_task_yield());
        int64_t b = sl_now();
        ASSERT_GE(b, before);
        ASSERT_LE(b, sl_clock());
        int64_t d = sl_deadline_in(5 * SL_MSEC);
        ASSERT_GE(d, before + 5 * SL_MSEC); /* never early */
        ASSERT_OK(sl_sleep_until(d));
        ASSERT_GE(sl_clock(), d);
        ASSERT_GE(sl_now(), d);
    }
    return NULL;
}

SL_TEST(now_is_cached_per_round_and_read_again)
{
    test_run(1, main_now_per_round, NULL); /* read by the round's first reader */
    test_run(2, main_now_per_round, NULL); /* read when the round starts */
}

/* A scope that expires while its task runs, looked at in a later round that started with no
 * timer armed (the round's clock not read yet: rt.h, "The round's clock"): the next wait reads
 * the clock and fails with SL_ETIMEDOUT even though it could complete at once. */
static void *main_scope_expires_unread(void *arg)
{
    (void)arg;
    sl_sem_t s;
    ASSERT_OK(sl_sem_init(&s, 1));
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(SL_MSEC));
    spin_until(sl_clock() + 2 * SL_MSEC); /* past the deadline, in the same round */
    for (int i = 0; i < 200; i++)
        ASSERT_OK(sl_task_yield()); /* later rounds, none with a timer armed at its start */
    sl_sem_permit_t p;
    ASSERT_ERR(sl_sem_acquire(&s, &p), SL_ETIMEDOUT); /* a permit is there: the scope decides */
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    ASSERT_OK(sl_sem_acquire(&s, &p)); /* outside the scope it is taken */
    sl_sem_permit_release(&p);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(scope_expiry_seen_by_a_round_that_has_not_read_the_clock)
{
    test_run(1, main_scope_expires_unread, NULL);
    test_run(2, main_scope_expires_unread, NULL);
}

/* Sleeps of different lengths wake in deadline order. */
static int order[8];
static int norder;

static void *sleep_n(void *arg)
{
    int n = (int)(intptr_t)arg;
    ASSERT_OK(sl_sleep((int64_t)n * 3 * SL_MSEC));
    order[norder++] = n;
    return NULL;
}

static void *main_sleep_order(void *arg)
{
    (void)arg;
    norder = 0;
    int ns[6] = {5, 1, 4, 2, 6, 3};
    sl_task_t *t[6];
    for (int i = 0; i < 6; i++)
        ASSERT_OK(sl_task_spawn(sleep_n, (void *)(intptr_t)ns[i], &t[i]));
    for (int i = 0; i < 6; i++)
        ASSERT_OK(sl_task_join(t[i], NULL));
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(order[i], i + 1);
    return NULL;
}

SL_TEST(timers_fire_in_order)
{
    test_run(1, main_sleep_order, NULL);
}

/* ---- intervals ---- */

static void *main_interval_basic(void *arg)
{
    (void)arg;
    sl_interval_t iv;
    int64_t start = sl_now();
    ASSERT_OK(sl_interval_init(&iv, 10 * SL_MSEC, SL_MISSED_BURST));
    int64_t when;
    /* The first tick is immediate. */
    ASSERT_OK(sl_interval_tick(&iv, &when));
    ASSERT_EQ(when, start);
    for (int i = 1; i <= 3; i++) {
        ASSERT_OK(sl_interval_tick(&iv, &when));
        ASSERT_EQ(when, start + i * 10 * SL_MSEC);
        ASSERT_GE(sl_now(), when);
    }
    ASSERT_ERR(sl_interval_init(&iv, 0, SL_MISSED_BURST), SL_EINVAL);
    ASSERT_ERR(sl_interval_init(&iv, SL_MSEC, (sl_missed_t)9), SL_EINVAL);
    return NULL;
}

SL_TEST(interval_first_tick_immediate)
{
    test_run(1, main_interval_basic, NULL);
}

/* Block the worker past several ticks (a busy wait: nothing else runs), then look at the tick
 * times each behaviour produces. Period 10 ms, stall 35 ms after the first tick at t0. */

static void *main_interval_missed(void *arg)
{
    sl_missed_t mode = (sl_missed_t)(intptr_t)arg;
    const int64_t P = 10 * SL_MSEC;
    sl_interval_t iv;
    int64_t t0 = sl_now();
    ASSERT_OK(sl_interval_init(&iv, P, mode));
    int64_t w0, w1, w2, w3;
    ASSERT_OK(sl_interval_tick(&iv, &w0));
    ASSERT_EQ(w0, t0);
    test_spin_ns(35 * SL_MSEC);   /* the stall */
    ASSERT_OK(sl_sleep(SL_USEC)); /* a real wait ends the round and refreshes the clock */
    int64_t late = sl_now();
    ASSERT_GE(late, t0 + 35 * SL_MSEC);
    ASSERT_OK(sl_interval_tick(&iv, &w1)); /* the missed tick at t0 + P fires at once */
    ASSERT_EQ(w1, t0 + P);
    ASSERT_OK(sl_interval_tick(&iv, &w2));
    switch (mode) {
    case SL_MISSED_BURST:
        /* Missed ticks fire back to back on their original schedule. */
        ASSERT_EQ(w2, t0 + 2 * P);
        ASSERT_OK(sl_interval_tick(&iv, &w3));
        ASSERT_EQ(w3, t0 + 3 * P);
        break;
    case SL_MISSED_DELAY:
        /* The schedule restarts from the moment the late tick was taken. */
        ASSERT_GE(w2, late + P);
        ASSERT_LT(w2, late + P + 1000 * SL_MSEC);
        /* If that tick was itself taken late (a loaded machine), the schedule moves again. */
        ASSERT_OK(sl_interval_tick(&iv, &w3));
        ASSERT_GE(w3, w2 + P);
        break;
    case SL_MISSED_SKIP:
        /* Back on the original grid, at the next multiple of P after now. */
        ASSERT_EQ((w2 - t0) % P, 0);
        ASSERT_GT(w2, late);
        ASSERT_LE(w2 - late, P + 1000 * SL_MSEC);
        ASSERT_OK(sl_interval_tick(&iv, &w3));
        ASSERT_GE(w3, w2 + P);
        ASSERT_EQ((w3 - t0) % P, 0);
        break;
    }
    return NULL;
}

SL_TEST(interval_missed_burst)
{
    test_run(1, main_interval_missed, (void *)(intptr_t)SL_MISSED_BURST);
}

SL_TEST(interval_missed_delay)
{
    test_run(1, main_interval_missed, (void *)(intptr_t)SL_MISSED_DELAY);
}

SL_TEST(interval_missed_skip)
{
    test_run(1, main_interval_missed, (void *)(intptr_t)SL_MISSED_SKIP);
}

static void *main_interval_reset(void *arg)
{
    (void)arg;
    sl_interval_t iv;
    ASSERT_OK(sl_interval_init(&iv, 5 * SL_MSEC, SL_MISSED_BURST));
    int64_t w;
    ASSERT_OK(sl_interval_tick(&iv, &w));
    ASSERT_OK(sl_sleep(2 * SL_MSEC));
    sl_interval_reset(&iv);
    int64_t reset_at = sl_now();
    ASSERT_OK(sl_interval_tick(&iv, &w));
    ASSERT_EQ(w, reset_at + 5 * SL_MSEC);
    return NULL;
}

SL_TEST(interval_reset)
{
    test_run(1, main_interval_reset, NULL);
}

/* Periods and starts at the ends of time: no arithmetic wraps. A period of SL_FOREVER ticks
 * once and then never (it wrapped into the past and ticked millions of times a second); a
 * start at INT64_MIN is far in the past, and SKIP puts the next tick back on its grid. */
static int tick_once(void *iv)
{
    return sl_interval_tick(iv, NULL);
}

static void *main_interval_extremes(void *arg)
{
    (void)arg;
    sl_interval_t iv;
    int64_t w;
    ASSERT_OK(sl_interval_init(&iv, SL_FOREVER, SL_MISSED_BURST));
    ASSERT_OK(sl_interval_tick(&iv, &w));
    ASSERT_ERR(sl_timeout_run(20 * SL_MSEC, tick_once, &iv), SL_ETIMEDOUT);
    sl_interval_reset(&iv);
    ASSERT_ERR(sl_timeout_run(20 * SL_MSEC, tick_once, &iv), SL_ETIMEDOUT);
    ASSERT_OK(sl_interval_init(&iv, SL_FOREVER, SL_MISSED_DELAY));
    ASSERT_OK(sl_interval_tick(&iv, &w));
    ASSERT_ERR(sl_timeout_run(20 * SL_MSEC, tick_once, &iv), SL_ETIMEDOUT);

    const int64_t P = 20 * SL_MSEC;
    int64_t before = sl_now();
    ASSERT_OK(sl_interval_init_at(&iv, INT64_MIN, P, SL_MISSED_SKIP));
    ASSERT_OK(sl_interval_tick(&iv, &w));
    ASSERT_EQ(w, INT64_MIN);
    ASSERT_OK(sl_interval_tick(&iv, &w));
    ASSERT_GT(w, before);
    ASSERT_LE(w, sl_now());
    ASSERT_EQ(((uint64_t)w - (uint64_t)INT64_MIN) % (uint64_t)P, 0);
    return NULL;
}

SL_TEST(interval_extremes)
{
    test_run(1, main_interval_extremes, NULL);
}

/* ---- timeout scopes ---- */

static void *main_timeout_basic(void *arg)
{
    (void)arg;
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(10 * SL_MSEC));
    ASSERT_ERR(sl_sleep(3600 * SL_SEC), SL_ETIMEDOUT);
    /* Once expired, every wait inside fails at once. */
    ASSERT_ERR(sl_sleep(SL_MSEC), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    /* Outside the scope, waits work again. */
    ASSERT_OK(sl_sleep(SL_MSEC));

    /* Work that finishes in time is not reported as timed out. */
    sl_timeout_enter(&to, sl_deadline_in(3600 * SL_SEC));
    ASSERT_OK(sl_sleep(SL_MSEC));
    ASSERT_OK(sl_timeout_exit(&to));
    return NULL;
}

SL_TEST(timeout_scope)
{
    test_run(1, main_timeout_basic, NULL);
}

static void *main_timeout_nest(void *arg)
{
    (void)arg;
    /* Inner scope is longer than the outer: the outer (earliest) wins. */
    sl_timeout_t outer, inner;
    sl_timeout_enter(&outer, sl_deadline_in(10 * SL_MSEC));
    sl_timeout_enter(&inner, sl_deadline_in(3600 * SL_SEC));
    int64_t t0 = sl_clock();
    ASSERT_ERR(sl_sleep(3600 * SL_SEC), SL_ETIMEDOUT);
    ASSERT_LT(sl_clock() - t0, 600 * SL_SEC);
    ASSERT_ERR(sl_timeout_exit(&inner), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&outer), SL_ETIMEDOUT);

    /* Inner shorter than outer: only the inner expires. */
    sl_timeout_enter(&outer, sl_deadline_in(3600 * SL_SEC));
    sl_timeout_enter(&inner, sl_deadline_in(5 * SL_MSEC));
    ASSERT_ERR(sl_sleep(3600 * SL_SEC), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&inner), SL_ETIMEDOUT);
    ASSERT_OK(sl_sleep(SL_MSEC));
    ASSERT_OK(sl_timeout_exit(&outer));

    /* An explicit deadline shorter than the scope gives SL_ETIMEDOUT without expiring it. */
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    sl_timeout_enter(&outer, sl_deadline_in(3600 * SL_SEC));
    ASSERT_ERR(sl_cancel_wait_until(tok, sl_deadline_in(2 * SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_OK(sl_timeout_exit(&outer));
    sl_cancel_drop(tok);
    return NULL;
}

SL_TEST(timeouts_nest)
{
    test_run(1, main_timeout_nest, NULL);
}

static int slow_op(void *arg)
{
    return sl_sleep((int64_t)(intptr_t)arg);
}

static void *main_timeout_run(void *arg)
{
    (void)arg;
    ASSERT_ERR(sl_timeout_run(5 * SL_MSEC, slow_op, (void *)(intptr_t)(3600 * SL_SEC)),
               SL_ETIMEDOUT);
    ASSERT_OK(sl_timeout_run(3600 * SL_SEC, slow_op, (void *)(intptr_t)SL_MSEC));
    return NULL;
}

SL_TEST(timeout_run)
{
    test_run(1, main_timeout_run, NULL);
}

/* A timeout around a join of another task, on 2 workers. */
static void *long_sleeper(void *arg)
{
    (void)arg;
    sl_sleep(3600 * SL_SEC);
    return NULL;
}

static void *main_join_until(void *arg)
{
    (void)arg;
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(long_sleeper, NULL, &t));
    ASSERT_ERR(sl_task_join_until(t, sl_deadline_in(5 * SL_MSEC), NULL), SL_ETIMEDOUT);
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    return NULL;
}

SL_TEST(join_until_deadline)
{
    test_run(2, main_join_until, NULL);
}

/* Arming and cancelling a deadline allocates nothing once the heap has grown. */
static void *main_timer_alloc(void *arg)
{
    (void)arg;
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    ASSERT_ERR(sl_cancel_wait_until(tok, sl_deadline_in(SL_USEC)), SL_ETIMEDOUT);
    long before = test_alloc_total();
    for (int i = 0; i < 1000; i++) {
        sl_timeout_t to;
        sl_timeout_enter(&to, sl_deadline_in(SL_SEC));
        ASSERT_OK(sl_task_yield());
        ASSERT_OK(sl_timeout_exit(&to));
        ASSERT_ERR(sl_cancel_wait_until(tok, sl_now()), SL_ETIMEDOUT);
    }
    ASSERT_EQ(test_alloc_total(), before);
    sl_cancel_drop(tok);
    return NULL;
}

SL_TEST(deadlines_do_not_allocate)
{
    test_run(1, main_timer_alloc, NULL);
}

/* ---- a timer heap that cannot grow ----
 * A wait with a deadline arms a timer in its worker's heap first; when the heap is full and
 * cannot grow, the call must say SL_ENOMEM at once (having waited for nothing), whichever form
 * the deadline takes: a sleep, a select's sleep clause, an _until deadline, a timeout scope.
 * The heap is filled by sleepers on this worker until it is at its capacity; then every
 * allocation fails. */

static void *hour_sleeper(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)sl_sleep(3600 * SL_SEC);
}

static void *main_timer_heap_full(void *arg)
{
    (void)arg;
    sl__worker_t *w = sl__worker();
    sl_task_t *sleepers[1024];
    int n = 0;
    /* Fill the heap to its capacity (it starts at 64 slots). */
    do {
        ASSERT(n < 1024);
        sleepers[n++] = test_spawn_on(-1, hour_sleeper, NULL);
        while (w->timers.len < n)
            ASSERT_OK(sl_task_yield());
    } while (w->timers.len < w->timers.cap);
    ASSERT_EQ(w->timers.len, w->timers.cap);

    sl_notify_t nt;
    sl_notify_init(&nt);
    test_alloc_fail_all_after(0);
    int64_t t0 = sl_clock();
    ASSERT_ERR(sl_sleep(SL_SEC), SL_ENOMEM);
    ASSERT_ERR(sl_sleep_until(sl_deadline_in(SL_SEC)), SL_ENOMEM);
    ASSERT_ERR(sl_notify_wait_until(&nt, sl_deadline_in(SL_SEC)), SL_ENOMEM);
    sl_clause_t c[2];
    sl_clause_notified(&c[0], &nt);
    sl_clause_sleep_until(&c[1], sl_deadline_in(SL_SEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    ASSERT_EQ(c[1].res, SL_ENOMEM);
    ASSERT_ERR(sl_select(c, 1, SL_SELECT_BIASED, sl_deadline_in(SL_SEC)), SL_ENOMEM);
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(SL_SEC));
    ASSERT_ERR(sl_notify_wait(&nt), SL_ENOMEM);
    ASSERT_OK(sl_timeout_exit(&to)); /* the scope did not expire: the wait failed */
    sl_interval_t iv;
    ASSERT_OK(sl_interval_init_at(&iv, sl_deadline_in(SL_SEC), SL_SEC, SL_MISSED_BURST));
    ASSERT_ERR(sl_interval_tick(&iv, NULL), SL_ENOMEM);
    test_alloc_fail_after(-1);
    /* Nothing waited for its second; nothing was left registered. */
    ASSERT_LT(sl_clock() - t0, SL_SEC);
    ASSERT_EQ(w->timers.len, n);
    ASSERT(nt.waiters.head == NULL); /* the select's notified clause was unlinked again */
    ASSERT_EQ(sl_notify_try_wait(&nt), SL_EAGAIN);
    sl_notify_destroy(&nt);

    /* With memory back, the same calls work. */
    ASSERT_OK(sl_sleep(SL_USEC));
    for (int i = 0; i < n; i++) {
        sl_task_abort(sleepers[i]);
        sl_join_t j = test_join(sleepers[i]);
        ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    }
    return NULL;
}

SL_TEST(timer_heap_full_and_no_memory)
{
    test_run(1, main_timer_heap_full, NULL);
}
