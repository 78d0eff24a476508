/* Semaphore: the Tokio checklist items SEM-01..15, tracking, fairness, races, allocation. */
#include <stdatomic.h>
#include <string.h>

#include <sluice.h>

#include "test.h"
#include "test_rt.h"

static void settle(void)
{
    for (int i = 0; i < 20; i++)
        sl_task_yield();
}

/* A task that acquires n permits, detaches them into a->p and records its completion. */
struct acq {
    sl_sem_t *s;
    size_t n;
    int64_t deadline; /* 0: forever */
    atomic_int *seq;  /* completion order counter, or NULL */
    sl_sem_permit_t p;
    atomic_int res;
    atomic_int done;
    int order;
};

static void *acquirer(void *arg)
{
    struct acq *a = arg;
    int r = sl_sem_acquire_many_until(a->s, a->n, &a->p, a->deadline ? a->deadline : SL_FOREVER);
    if (r == 0) {
        sl_sem_permit_detach(&a->p);
        if (a->seq)
            a->order = atomic_fetch_add(a->seq, 1);
    }
    atomic_store(&a->res, r);
    atomic_store(&a->done, 1);
    return NULL;
}

static void acq_init(struct acq *a, sl_sem_t *s, size_t n)
{
    memset(a, 0, sizeof *a);
    a->s = s;
    a->n = n;
    atomic_store(&a->res, 1);
}

/* Spawns an acquirer and returns once it is queued (or done). */
static sl_task_t *spawn_acq(int worker, struct acq *a)
{
    return test_spawn_until_parked(worker, acquirer, a, &a->done);
}

/* ---- SEM-01 ---- */

static void *main_sem_01(void *arg)
{
    (void)arg;
    sl_sem_t s;
    ASSERT_OK(sl_sem_init(&s, 5));
    ASSERT_EQ_U(sl_sem_available(&s), 5);
    sl_sem_destroy(&s);
    ASSERT_OK(sl_sem_init(&s, 0));
    ASSERT_EQ_U(sl_sem_available(&s), 0);
    ASSERT_OK(sl_sem_init(&s, SL_SEM_MAX_PERMITS));
    ASSERT_EQ_U(sl_sem_available(&s), SL_SEM_MAX_PERMITS);
    ASSERT_EQ_U(SL_SEM_MAX_PERMITS, 2305843009213693951ull);
    memset(&s, 0x5a, sizeof s);
    sl_sem_t before = s;
    ASSERT_ERR(sl_sem_init(&s, SL_SEM_MAX_PERMITS + 1), SL_EINVAL);
    ASSERT(memcmp(&s, &before, sizeof s) == 0);
    return NULL;
}

SL_TEST(sem_01_new_available_max)
{
    test_run(1, main_sem_01, NULL);
}

/* ---- SEM-02 ---- */

static void *main_sem_02(void *arg)
{
    (void)arg;
    sl_sem_t s;
    sl_sem_permit_t p, q;
    ASSERT_OK(sl_sem_init(&s, 2));
    ASSERT_OK(sl_sem_acquire(&s, &p));
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    ASSERT_EQ_U(sl_sem_permit_count(&p), 1);
    ASSERT_OK(sl_sem_acquire_until(&s, &q, sl_deadline_in(SL_SEC)));
    ASSERT_EQ_U(sl_sem_available(&s), 0);
    sl_sem_permit_release(&p);
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    ASSERT_EQ_U(sl_sem_permit_count(&p), 0);
    sl_sem_permit_release(&p); /* empty record: nothing happens */
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    sl_sem_permit_release(&q);
    ASSERT_EQ_U(sl_sem_available(&s), 2);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_02_acquire_available_release_returns)
{
    test_run(1, main_sem_02, NULL);
}

/* ---- SEM-03 ---- */

static void *main_sem_03(void *arg)
{
    (void)arg;
    sl_sem_t s;
    sl_sem_permit_t p, q;
    ASSERT_OK(sl_sem_init(&s, 2));
    ASSERT_ERR(sl_sem_try_acquire_many(&s, 3, &p), SL_EAGAIN);
    ASSERT_EQ_U(sl_sem_available(&s), 2);
    ASSERT_OK(sl_sem_try_acquire_many(&s, 2, &p));
    ASSERT_ERR(sl_sem_try_acquire(&s, &q), SL_EAGAIN);
    ASSERT_ERR(sl_sem_try_acquire_many(&s, SL_SEM_MAX_PERMITS + 1, &q), SL_EINVAL);
    sl_sem_close(&s);
    /* Closed wins over no permits. */
    ASSERT_ERR(sl_sem_try_acquire(&s, &q), SL_ECLOSED);
    sl_sem_permit_release(&p);
    ASSERT_ERR(sl_sem_try_acquire(&s, &q), SL_ECLOSED);
    ASSERT_ERR(sl_sem_try_acquire_raw(&s, 1), SL_ECLOSED);
    ASSERT_EQ_U(sl_sem_available(&s), 2);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_03_try_acquire_no_permits_closed)
{
    test_run(1, main_sem_03, NULL);
}

/* ---- SEM-04 ---- */

static void *main_sem_04(void *arg)
{
    int workers = (int)(intptr_t)arg;
    sl_sem_t s;
    atomic_int seq = 0;
    enum { N = 6 };
    static const size_t want[N] = {1, 3, 1, 2, 1, 4};
    struct acq a[N];
    sl_task_t *t[N];
    ASSERT_OK(sl_sem_init(&s, 0));
    for (int i = 0; i < N; i++) {
        acq_init(&a[i], &s, want[i]);
        a[i].seq = &seq;
        t[i] = spawn_acq(workers - 1, &a[i]);
    }
    /* Release one permit at a time: completions follow request order exactly. */
    for (int k = 0; k < 12; k++) {
        ASSERT_OK(sl_sem_add_permits(&s, 1));
        settle();
    }
    for (int i = 0; i < N; i++) {
        test_join_ok(t[i]);
        ASSERT_OK(atomic_load(&a[i].res));
        ASSERT_EQ(a[i].order, i);
        sl_sem_permit_release(&a[i].p);
    }
    ASSERT_EQ_U(sl_sem_available(&s), 12);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_04_strict_fifo)
{
    test_run(1, main_sem_04, (void *)(intptr_t)1);
    test_run(2, main_sem_04, (void *)(intptr_t)2);
}

/* ---- SEM-05 ---- */

static void *main_sem_05(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_sem_t s;
    sl_sem_permit_t held, p;
    struct acq a, b;
    ASSERT_OK(sl_sem_init(&s, 5));
    ASSERT_OK(sl_sem_acquire(&s, &held));
    ASSERT_EQ_U(sl_sem_available(&s), 4);
    acq_init(&a, &s, 5);
    sl_task_t *ta = spawn_acq(w, &a);
    ASSERT_EQ_U(sl_sem_available(&s), 0); /* absorbed the 4 */
    acq_init(&b, &s, 3);
    sl_task_t *tb = spawn_acq(w, &b);
    ASSERT_ERR(sl_sem_try_acquire(&s, &p), SL_EAGAIN);
    sl_sem_permit_release(&held);
    test_join_ok(ta);
    ASSERT_OK(atomic_load(&a.res));
    ASSERT_EQ_U(sl_sem_available(&s), 0);
    settle();
    ASSERT_EQ(atomic_load(&b.done), 0);
    ASSERT_OK(sl_sem_add_permits(&s, 1));
    settle();
    ASSERT_EQ(atomic_load(&b.done), 0); /* now owes 2 */
    ASSERT_EQ_U(sl_sem_available(&s), 0);
    ASSERT_OK(sl_sem_add_permits(&s, 2));
    test_join_ok(tb);
    ASSERT_OK(atomic_load(&b.res));
    sl_sem_permit_release(&a.p);
    sl_sem_permit_release(&b.p);
    ASSERT_EQ_U(sl_sem_available(&s), 8);
    sl_sem_destroy(&s);

    /* new(3), pending acquire_many(5): try_acquire fails although 3 permits existed. */
    ASSERT_OK(sl_sem_init(&s, 3));
    acq_init(&a, &s, 5);
    ta = spawn_acq(w, &a);
    ASSERT_ERR(sl_sem_try_acquire(&s, &p), SL_EAGAIN);
    ASSERT_EQ_U(sl_sem_available(&s), 0);
    sl_task_abort(ta);
    sl_join_t j;
    ASSERT_OK(sl_task_join(ta, &j));
    ASSERT_EQ(atomic_load(&a.res), SL_ECANCELED);
    ASSERT_EQ_U(sl_sem_available(&s), 3);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_05_fifo_large_request_blocks_small)
{
    test_run(1, main_sem_05, (void *)(intptr_t)1);
    test_run(2, main_sem_05, (void *)(intptr_t)2);
}

/* ---- SEM-06 ---- */

static void *main_sem_06(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_sem_t s;
    sl_sem_permit_t four;
    struct acq a;
    ASSERT_OK(sl_sem_init(&s, 10));
    ASSERT_OK(sl_sem_acquire_many(&s, 4, &four));
    acq_init(&a, &s, 8);
    sl_task_t *t = spawn_acq(w, &a);
    ASSERT_EQ_U(sl_sem_available(&s), 0);
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(atomic_load(&a.res), SL_ECANCELED);
    ASSERT_EQ_U(sl_sem_available(&s), 6);
    /* The same through a deadline. */
    acq_init(&a, &s, 8);
    a.deadline = sl_deadline_in(5 * SL_MSEC);
    t = spawn_acq(w, &a);
    test_join_ok(t);
    ASSERT_EQ(atomic_load(&a.res), SL_ETIMEDOUT);
    ASSERT_EQ_U(sl_sem_available(&s), 6);
    sl_sem_permit_release(&four);
    ASSERT_EQ_U(sl_sem_available(&s), 10);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_06_cancel_partial_gives_back)
{
    test_run(1, main_sem_06, (void *)(intptr_t)1);
    test_run(2, main_sem_06, (void *)(intptr_t)2);
}

/* ---- SEM-07 ---- */

static void *main_sem_07(void *arg)
{
    (void)arg;
    sl_sem_t s;
    sl_sem_permit_t p;
    struct acq a;
    ASSERT_OK(sl_sem_init(&s, 1));
    acq_init(&a, &s, 2);
    sl_task_t *t = spawn_acq(-1, &a);
    ASSERT_OK(sl_sem_acquire_many(&s, 0, &p));
    ASSERT_EQ_U(sl_sem_permit_count(&p), 0);
    sl_sem_permit_release(&p);
    ASSERT_OK(sl_sem_try_acquire_many(&s, 0, &p));
    sl_sem_permit_release(&p);
    sl_sem_close(&s);
    ASSERT_ERR(sl_sem_acquire_many(&s, 0, &p), SL_ECLOSED);
    test_join_ok(t);
    ASSERT_EQ(atomic_load(&a.res), SL_ECLOSED);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_07_acquire_zero_immediate)
{
    test_run(1, main_sem_07, NULL);
}

/* ---- SEM-08 ---- */

static void *main_sem_08(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_sem_t s;
    struct acq a;
    ASSERT_OK(sl_sem_init(&s, 5));
    acq_init(&a, &s, 7);
    sl_task_t *t = spawn_acq(w, &a);
    ASSERT_EQ(atomic_load(&a.done), 0);
    ASSERT_OK(sl_sem_add_permits(&s, 5));
    test_join_ok(t);
    ASSERT_OK(atomic_load(&a.res));
    ASSERT_EQ_U(sl_sem_available(&s), 3);
    sl_sem_permit_release(&a.p);
    ASSERT_EQ_U(sl_sem_available(&s), 10);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_08_request_larger_than_total_waits)
{
    test_run(1, main_sem_08, (void *)(intptr_t)1);
    test_run(2, main_sem_08, (void *)(intptr_t)2);
}

/* ---- SEM-09 ---- */

static void *main_sem_09(void *arg)
{
    (void)arg;
    sl_sem_t s;
    struct acq a, b;
    ASSERT_OK(sl_sem_init(&s, 0));
    acq_init(&a, &s, 2);
    sl_task_t *ta = spawn_acq(-1, &a);
    acq_init(&b, &s, 3);
    sl_task_t *tb = spawn_acq(-1, &b);
    ASSERT_OK(sl_sem_add_permits(&s, 7));
    test_join_ok(ta);
    test_join_ok(tb);
    ASSERT_OK(atomic_load(&a.res));
    ASSERT_OK(atomic_load(&b.res));
    ASSERT_EQ_U(sl_sem_available(&s), 2);
    ASSERT_ERR(sl_sem_add_permits(&s, SL_SEM_MAX_PERMITS - 1), SL_EINVAL);
    ASSERT_EQ_U(sl_sem_available(&s), 2);
    ASSERT_OK(sl_sem_add_permits(&s, SL_SEM_MAX_PERMITS - 2));
    ASSERT_EQ_U(sl_sem_available(&s), SL_SEM_MAX_PERMITS);
    ASSERT_ERR(sl_sem_add_permits(&s, 1), SL_EINVAL);
    sl_sem_destroy(&s);
    /* After close, add_permits still adds and the semaphore stays closed. */
    ASSERT_OK(sl_sem_init(&s, 1));
    sl_sem_close(&s);
    ASSERT_OK(sl_sem_add_permits(&s, 4));
    ASSERT_EQ_U(sl_sem_available(&s), 5);
    ASSERT(sl_sem_is_closed(&s));
    sl_sem_permit_release(&a.p);
    sl_sem_permit_forget(&b.p);
    return NULL;
}

SL_TEST(sem_09_add_permits_fifo_max_closed)
{
    test_run(1, main_sem_09, NULL);
}

/* ---- SEM-10 ---- */

static void *main_sem_10(void *arg)
{
    (void)arg;
    sl_sem_t s;
    sl_sem_permit_t p;
    ASSERT_OK(sl_sem_init(&s, 10));
    ASSERT_OK(sl_sem_acquire_many(&s, 4, &p));
    ASSERT_EQ_U(sl_sem_forget_permits(&s, 2), 2);
    ASSERT_EQ_U(sl_sem_available(&s), 4);
    ASSERT_EQ_U(sl_sem_forget_permits(&s, 100), 4);
    ASSERT_EQ_U(sl_sem_available(&s), 0);
    ASSERT_EQ_U(sl_sem_permit_count(&p), 4); /* holders untouched */
    sl_sem_permit_release(&p);
    sl_sem_close(&s);
    ASSERT_EQ_U(sl_sem_forget_permits(&s, 1), 1);
    ASSERT(sl_sem_is_closed(&s)); /* Tokio #8021 */
    ASSERT_EQ_U(sl_sem_available(&s), 3);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_10_forget_permits_min_keeps_closed)
{
    test_run(1, main_sem_10, NULL);
}

/* ---- SEM-11 ---- */

static void *main_sem_11(void *arg)
{
    (void)arg;
    sl_sem_t s, s2;
    sl_sem_permit_t p, q, r;
    ASSERT_OK(sl_sem_init(&s, 10));
    ASSERT_OK(sl_sem_init(&s2, 1));
    ASSERT_OK(sl_sem_acquire_many(&s, 3, &p));
    sl_sem_permit_forget(&p);
    ASSERT_EQ_U(sl_sem_permit_count(&p), 0);
    ASSERT_EQ_U(sl_sem_available(&s), 7);
    ASSERT_OK(sl_sem_acquire_many(&s, 2, &p));
    ASSERT_OK(sl_sem_acquire_many(&s, 3, &q));
    sl_sem_permit_merge(&p, &q);
    ASSERT_EQ_U(sl_sem_permit_count(&p), 5);
    ASSERT_EQ_U(sl_sem_permit_count(&q), 0);
    memset(&r, 0x33, sizeof r);
    ASSERT_ERR(sl_sem_permit_split(&p, 6, &r), SL_EINVAL);
    ASSERT_EQ_U(sl_sem_permit_count(&p), 5);
    ASSERT_OK(sl_sem_permit_split(&p, 4, &r));
    ASSERT_EQ_U(sl_sem_permit_count(&p), 1);
    ASSERT_EQ_U(sl_sem_permit_count(&r), 4);
    sl_sem_permit_release(&r);
    ASSERT_EQ_U(sl_sem_available(&s), 6);
    /* Merging into an empty record takes the other one over. */
    memset(&q, 0, sizeof q);
    sl_sem_permit_merge(&q, &p);
    ASSERT_EQ_U(sl_sem_permit_count(&q), 1);
    sl_sem_permit_release(&q);
    ASSERT_EQ_U(sl_sem_available(&s), 7);
    sl_sem_destroy(&s);
    sl_sem_destroy(&s2);
    return NULL;
}

SL_TEST(sem_11_permit_forget_merge_split)
{
    test_run(1, main_sem_11, NULL);
}

/* Splitting everything off, or nothing: the record left empty (or made empty) is not tracked,
 * so it may be a local of a function that returns. Both aborted the task's end as "a tracked
 * permit in a returned frame". */
static __attribute__((noinline)) void split_all_off_a_local(sl_sem_t *s, sl_sem_permit_t *out)
{
    sl_sem_permit_t p;
    ASSERT_OK(sl_sem_acquire_many(s, 2, &p));
    ASSERT_OK(sl_sem_permit_split(&p, 2, out));
    ASSERT_EQ_U(sl_sem_permit_count(&p), 0);
    ASSERT_EQ_U(sl_sem_permit_count(out), 2);
}

static __attribute__((noinline)) void split_nothing_into_a_local(sl_sem_permit_t *p)
{
    sl_sem_permit_t q;
    ASSERT_OK(sl_sem_permit_split(p, 0, &q));
    ASSERT_EQ_U(sl_sem_permit_count(&q), 0);
    ASSERT_EQ_U(sl_sem_permit_count(p), 2);
}

static void *split_edges(void *arg)
{
    sl_sem_t *s = arg;
    sl_sem_permit_t out;
    split_all_off_a_local(s, &out);
    split_nothing_into_a_local(&out);
    sl_sem_permit_release(&out);
    return NULL;
}

static void *main_sem_split_edges(void *arg)
{
    (void)arg;
    sl_sem_t s;
    ASSERT_OK(sl_sem_init(&s, 3));
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(split_edges, &s, &t));
    ASSERT_EQ(test_join(t).status, SL_TASK_RETURNED);
    ASSERT_EQ_U(sl_sem_available(&s), 3);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_permit_split_all_or_nothing)
{
    test_run(1, main_sem_split_edges, NULL);
}

/* ---- SEM-12 ---- */

static void *main_sem_12(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_sem_t s;
    sl_sem_permit_t held, p;
    enum { N = 40 };
    struct acq a[N];
    sl_task_t *t[N];
    ASSERT_OK(sl_sem_init(&s, 3));
    ASSERT_OK(sl_sem_acquire(&s, &held));
    for (int i = 0; i < N; i++) {
        acq_init(&a[i], &s, 3);
        t[i] = spawn_acq(w, &a[i]);
    }
    ASSERT(!sl_sem_is_closed(&s));
    sl_sem_close(&s);
    ASSERT(sl_sem_is_closed(&s));
    for (int i = 0; i < N; i++) {
        test_join_ok(t[i]);
        ASSERT_EQ(atomic_load(&a[i].res), SL_ECLOSED);
    }
    /* The first waiter's absorbed 2 went back to the counter. */
    ASSERT_EQ_U(sl_sem_available(&s), 2);
    ASSERT_ERR(sl_sem_acquire(&s, &p), SL_ECLOSED);
    ASSERT_ERR(sl_sem_acquire_until(&s, &p, sl_deadline_in(SL_MSEC)), SL_ECLOSED);
    ASSERT_ERR(sl_sem_acquire_raw(&s, 1), SL_ECLOSED);
    ASSERT_ERR(sl_sem_try_acquire(&s, &p), SL_ECLOSED);
    sl_sem_permit_release(&held);
    ASSERT_EQ_U(sl_sem_available(&s), 3);
    ASSERT(sl_sem_is_closed(&s));
    sl_sem_close(&s);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_12_close_fails_waiters)
{
    test_run(1, main_sem_12, (void *)(intptr_t)1);
    test_run(2, main_sem_12, (void *)(intptr_t)2);
}

/* ---- SEM-13 ---- */

static void *main_sem_13(void *arg)
{
    (void)arg;
    sl_sem_t s;
    struct acq a, b;
    atomic_int seq = 0;
    ASSERT_OK(sl_sem_init(&s, 0));
    acq_init(&a, &s, 1);
    a.seq = &seq;
    sl_task_t *ta = spawn_acq(-1, &a);
    acq_init(&b, &s, 1);
    b.seq = &seq;
    sl_task_t *tb = spawn_acq(-1, &b);
    /* a loses its place when cancelled; b is served first. */
    sl_task_abort(ta);
    sl_join_t j;
    ASSERT_OK(sl_task_join(ta, &j));
    ASSERT_EQ(atomic_load(&a.res), SL_ECANCELED);
    ASSERT_OK(sl_sem_add_permits(&s, 1));
    test_join_ok(tb);
    ASSERT_OK(atomic_load(&b.res));
    ASSERT_EQ(b.order, 0);
    sl_sem_permit_release(&b.p);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_13_acquire_not_cancel_safe_loses_place)
{
    test_run(1, main_sem_13, NULL);
}

/* ---- SEM-14 ---- */

SL_TEST(sem_14_error_codes)
{
    /* Tokio's AcquireError/TryAcquireError::Closed map to SL_ECLOSED, NoPermits to SL_EAGAIN;
     * the messages are sluice's own. */
    ASSERT_STR_EQ(sl_err_name(SL_ECLOSED), "SL_ECLOSED");
    ASSERT_STR_EQ(sl_err_name(SL_EAGAIN), "SL_EAGAIN");
    ASSERT(strlen(sl_strerror(SL_ECLOSED)) > 0);
    ASSERT_NE(SL_ECLOSED, SL_EAGAIN);
    /* acquire_many takes a size_t (Tokio: u32): above u32 works. */
    sl_sem_t s;
    ASSERT_OK(sl_sem_init(&s, (size_t)1 << 33));
    ASSERT_OK(sl_sem_try_acquire_raw(&s, ((size_t)1 << 33) - 1));
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    sl_sem_release_raw(&s, ((size_t)1 << 33) - 1);
    ASSERT_EQ_U(sl_sem_available(&s), (size_t)1 << 33);
}

/* ---- SEM-15 ---- */

static void *main_sem_15(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_sem_t s;
    enum { N = 100 };
    static struct acq a[N];
    sl_task_t *t[N];
    atomic_int seq = 0;
    ASSERT_OK(sl_sem_init(&s, 0));
    for (int i = 0; i < N; i++) {
        acq_init(&a[i], &s, 1);
        a[i].seq = &seq;
        t[i] = spawn_acq(w, &a[i]);
    }
    /* One add wakes all 100, 32 per lock hold; the extra 5 go to the counter. */
    ASSERT_OK(sl_sem_add_permits(&s, N + 5));
    for (int i = 0; i < N; i++) {
        test_join_ok(t[i]);
        ASSERT_OK(atomic_load(&a[i].res));
        sl_sem_permit_release(&a[i].p);
    }
    ASSERT_EQ(atomic_load(&seq), N);
    ASSERT_EQ_U(sl_sem_available(&s), N + 5);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_15_release_wakes_in_batches)
{
    test_run(1, main_sem_15, (void *)(intptr_t)1);
    test_run(2, main_sem_15, (void *)(intptr_t)2);
}

/* ---- Tracking: panic, cancel, hand-over ---- */

static void *panic_holding(void *arg)
{
    sl_sem_t *s = arg;
    sl_sem_permit_t p; /* in a live frame when sl_panic runs */
    ASSERT_OK(sl_sem_acquire_many(s, 2, &p));
    sl_panic("with %zu permits", sl_sem_permit_count(&p));
}

struct holder {
    sl_sem_t *s;
    sl_sem_permit_t p;
    atomic_int got;
};

static void *hold_then_sleep(void *arg)
{
    struct holder *h = arg;
    ASSERT_OK(sl_sem_acquire_many(h->s, 3, &h->p));
    atomic_store(&h->got, 1);
    ASSERT_ERR(sl_sleep(3600 * SL_SEC), SL_ECANCELED);
    return NULL; /* returns without releasing: the record is in the argument, still valid */
}

static void *adopter(void *arg)
{
    struct holder *h = arg;
    sl_sem_permit_adopt(&h->p);
    atomic_store(&h->got, 2);
    return NULL; /* ends holding the adopted permits */
}

static void *main_tracking(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_sem_t s;
    ASSERT_OK(sl_sem_init(&s, 5));
    sl_task_t *t = test_spawn_on(w, panic_holding, &s);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_PANICKED);
    ASSERT_STR_EQ(j.message, "with 2 permits");
    ASSERT_EQ_U(sl_sem_available(&s), 5);

    struct holder h;
    memset(&h, 0, sizeof h);
    h.s = &s;
    t = test_spawn_on(w, hold_then_sleep, &h);
    while (!atomic_load(&h.got))
        sl_task_yield();
    ASSERT_EQ_U(sl_sem_available(&s), 2);
    sl_task_abort(t);
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    ASSERT_EQ_U(sl_sem_available(&s), 5);

    /* An owned permit handed to another task, which ends holding it. */
    ASSERT_OK(sl_sem_acquire_many(&s, 4, &h.p));
    sl_sem_permit_detach(&h.p);
    struct holder h2 = h; /* a bitwise copy of the detached record */
    memset(&h.p, 0, sizeof h.p);
    t = test_spawn_on(w, adopter, &h2);
    test_join_ok(t);
    ASSERT_EQ(atomic_load(&h2.got), 2);
    ASSERT_EQ_U(sl_sem_available(&s), 5);

    /* Raw permits are not tracked. */
    ASSERT_OK(sl_sem_acquire_raw(&s, 2));
    ASSERT_OK(sl_sem_try_acquire_raw(&s, 1));
    ASSERT_OK(sl_sem_acquire_raw_until(&s, 1, sl_deadline_in(SL_SEC)));
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    sl_sem_release_raw(&s, 4);
    ASSERT_EQ_U(sl_sem_available(&s), 5);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_tracked_released_on_panic_cancel_handover)
{
    test_run(1, main_tracking, (void *)(intptr_t)1);
    test_run(2, main_tracking, (void *)(intptr_t)2);
}

/* ---- A task's list of held resources, taken apart out of order ---- */

/* The records live outside the task's stack: a tracked record in a frame that has returned is
 * a misuse the task's end reports. */
typedef struct hold_order {
    sl_sem_t s;
    sl_notify_t n;
    sl_sem_permit_t p[4];
    sl_notified_t nd;
} hold_order_t;

static void *hold_order_task(void *arg)
{
    hold_order_t *h = arg;
    for (int i = 0; i < 4; i++)
        ASSERT_OK(sl_sem_acquire(&h->s, &h->p[i])); /* the list: p3 p2 p1 p0 */
    sl_notified_init(&h->nd, &h->n);
    ASSERT_EQ(sl_notified_enable(&h->nd), 0); /* nd p3 p2 p1 p0 */
    sl_sem_permit_release(&h->p[2]);          /* from the middle */
    sl_sem_permit_release(&h->p[1]);          /* the node after it, whose back link that rewrote */
    sl_sem_permit_release(&h->p[0]);          /* the last */
    sl_sem_permit_release(&h->p[0]);          /* released already: nothing */
    ASSERT_EQ_U(sl_sem_available(&h->s), 3);
    /* The same storage tracked again: a stale link left by a removal would now join the list
     * to itself, and the task's end would release a record twice or loop. */
    ASSERT_OK(sl_sem_acquire(&h->s, &h->p[1]));
    ASSERT_OK(sl_sem_acquire(&h->s, &h->p[2]));
    sl_sem_permit_release(&h->p[2]);
    ASSERT_EQ_U(sl_sem_available(&h->s), 2);
    return NULL; /* ends holding p1, p3 and the enabled nd: the task's end releases them */
}

static void *main_hold_order(void *arg)
{
    (void)arg;
    static hold_order_t h;
    memset(&h, 0, sizeof h);
    ASSERT_OK(sl_sem_init(&h.s, 4));
    sl_notify_init(&h.n);
    test_join_ok(test_spawn_on(-1, hold_order_task, &h));
    /* Each permit came back once: a list broken by a removal releases one twice or never. */
    ASSERT_EQ_U(sl_sem_available(&h.s), 4);
    /* nd left the Notify's queue: a notify_one finds no waiter and stores its permit. */
    sl_notify_one(&h.n);
    ASSERT_OK(sl_notify_try_wait(&h.n));
    sl_notify_destroy(&h.n);
    sl_sem_destroy(&h.s);
    return NULL;
}

SL_TEST(sem_holds_removed_out_of_order_then_released_at_task_end)
{
    test_run(1, main_hold_order, NULL);
    test_run(2, main_hold_order, NULL);
}

/* ---- Three forms, cancellation, timeout scope ---- */

static void *main_forms(void *arg)
{
    (void)arg;
    sl_sem_t s;
    sl_sem_permit_t p, q;
    ASSERT_OK(sl_sem_init(&s, 1));
    ASSERT_OK(sl_sem_acquire(&s, &p));
    ASSERT_ERR(sl_sem_try_acquire(&s, &q), SL_EAGAIN);
    int64_t t0 = sl_now();
    ASSERT_ERR(sl_sem_acquire_until(&s, &q, sl_deadline_in(3 * SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_GE(sl_now() - t0, 3 * SL_MSEC);
    ASSERT_ERR(sl_sem_acquire_many_until(&s, 2, &q, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_ERR(sl_sem_acquire_raw_until(&s, 1, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    /* A timeout scope cuts the untimed form short. */
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(2 * SL_MSEC));
    ASSERT_ERR(sl_sem_acquire(&s, &q), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    ASSERT_EQ_U(sl_sem_available(&s), 0);
    sl_sem_permit_release(&p);
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_three_forms_timeout)
{
    test_run(1, main_forms, NULL);
}

static void *cancelled_acquirer(void *arg)
{
    sl_sem_t *s = arg;
    sl_sem_permit_t p;
    sl_task_abort(sl_task_self());
    /* Cancelled before the call: fails even though a permit is available. */
    ASSERT_ERR(sl_sem_acquire(s, &p), SL_ECANCELED);
    ASSERT_ERR(sl_sem_acquire_until(s, &p, SL_FOREVER), SL_ECANCELED);
    /* The try form does not wait, so cancellation does not concern it. */
    ASSERT_OK(sl_sem_try_acquire(s, &p));
    sl_sem_permit_release(&p);
    return NULL;
}

static void *main_cancel(void *arg)
{
    (void)arg;
    sl_sem_t s;
    ASSERT_OK(sl_sem_init(&s, 1));
    sl_task_t *t = test_spawn_on(-1, cancelled_acquirer, &s);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_ecanceled)
{
    test_run(1, main_cancel, NULL);
}

/* ---- Select: a losing acquire clause holds no permit ---- */

static void *main_select(void *arg)
{
    (void)arg;
    sl_sem_t s;
    sl_sem_permit_t p, held;
    sl_clause_t c[2];
    ASSERT_OK(sl_sem_init(&s, 3));
    ASSERT_OK(sl_sem_acquire(&s, &held));
    /* Queued, absorbs the 2 available, then the sleep wins: the 2 come back. */
    sl_clause_sem_acquire(&c[0], &s, 3, &p);
    sl_clause_sleep_until(&c[1], sl_deadline_in(2 * SL_MSEC));
    memset(&p, 0, sizeof p);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    ASSERT_EQ_U(sl_sem_permit_count(&p), 0);
    ASSERT_EQ_U(sl_sem_available(&s), 2);
    /* Both ready: the first wins, the second takes nothing. */
    sl_sem_permit_t p2;
    memset(&p2, 0, sizeof p2);
    sl_clause_sem_acquire(&c[0], &s, 1, &p);
    sl_clause_sem_acquire(&c[1], &s, 1, &p2);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_OK(c[0].res);
    ASSERT_EQ_U(sl_sem_permit_count(&p), 1);
    ASSERT_EQ_U(sl_sem_permit_count(&p2), 0);
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    sl_sem_permit_release(&p);
    sl_sem_permit_release(&held);
    ASSERT_EQ_U(sl_sem_available(&s), 3);
    sl_sem_destroy(&s);
    return NULL;
}

static void *releaser(void *arg)
{
    sl_sem_t *s = arg;
    sl_task_yield();
    sl_sem_release_raw(s, 3);
    return NULL;
}

static void *main_select2(void *arg)
{
    (void)arg;
    sl_sem_t s;
    sl_clause_t c[2];
    ASSERT_OK(sl_sem_init(&s, 0));
    sl_clause_sem_acquire(&c[0], &s, 2, NULL); /* raw */
    sl_clause_sleep_until(&c[1], sl_deadline_in(10 * SL_SEC));
    sl_task_t *t = test_spawn_on(-1, releaser, &s);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 0);
    ASSERT_OK(c[0].res);
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    sl_sem_release_raw(&s, 2);
    test_join_ok(t);
    /* A closed semaphore completes the clause with SL_ECLOSED. */
    sl_sem_close(&s);
    sl_clause_sem_acquire(&c[0], &s, 1, NULL);
    ASSERT_EQ(sl_select(c, 1, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_EQ(c[0].res, SL_ECLOSED);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(sem_select_loser_holds_nothing)
{
    test_run(1, main_select, NULL);
    test_run(1, main_select2, NULL);
    test_run(2, main_select2, NULL);
}

/* ---- Fairness under contention on 2 workers; no allocation in steady state ---- */

enum { FAIR_TASKS = 8, FAIR_ITERS = 2000 };

struct fair {
    sl_sem_t sem;
    sl_barrier_t start, end;
    int log[FAIR_TASKS * FAIR_ITERS]; /* written only while holding the permit */
    int pos;
};

struct fair_arg {
    struct fair *f;
    int id;
};

static void *fair_task(void *arg)
{
    struct fair_arg *a = arg;
    struct fair *f = a->f;
    ASSERT_OK(sl_barrier_wait(&f->start, NULL));
    for (int i = 0; i < FAIR_ITERS; i++) {
        sl_sem_permit_t p;
        ASSERT_OK(sl_sem_acquire(&f->sem, &p));
        f->log[f->pos++] = a->id;
        if (i % 3 == 0)
            sl_task_yield();
        sl_sem_permit_release(&p);
    }
    ASSERT_OK(sl_barrier_wait(&f->end, NULL));
    return NULL;
}

static void *main_fair(void *arg)
{
    int workers = (int)(intptr_t)arg;
    struct fair *f = sl_malloc(sizeof *f);
    ASSERT_NOT_NULL(f);
    memset(f, 0, sizeof *f);
    ASSERT_OK(sl_sem_init(&f->sem, 1));
    sl_barrier_init(&f->start, FAIR_TASKS + 1);
    sl_barrier_init(&f->end, FAIR_TASKS + 1);
    struct fair_arg a[FAIR_TASKS];
    sl_task_t *t[FAIR_TASKS];
    for (int i = 0; i < FAIR_TASKS; i++) {
        a[i].f = f;
        a[i].id = i;
        t[i] = test_spawn_on(i % workers, fair_task, &a[i]);
    }
    int leader = 0;
    ASSERT_OK(sl_barrier_wait(&f->start, &leader));
    long before = test_alloc_total();
    int l2 = 0;
    ASSERT_OK(sl_barrier_wait(&f->end, &l2));
    long after = test_alloc_total();
    ASSERT_EQ(after - before, 0); /* no allocation per acquire/release/wake */
    for (int i = 0; i < FAIR_TASKS; i++)
        test_join_ok(t[i]);
    ASSERT_EQ(f->pos, FAIR_TASKS * FAIR_ITERS);
    /* FIFO: once a task has queued, every other task is granted at most once before it, and
     * at most once more while it releases and queues again. That bound is exact on one worker,
     * where tasks switch only at waits. On two workers the OS may preempt a worker thread
     * between a release and the next acquire (before the task has queued again), and the
     * other worker's tasks then rightly take the permit for as long as that lasts: there the
     * run checks completion and allocation only, and sem_04 checks strict FIFO order. */
    int last[FAIR_TASKS];
    for (int i = 0; i < FAIR_TASKS; i++)
        last[i] = -1;
    int maxgap = 0;
    for (int k = 0; k < f->pos; k++) {
        int id = f->log[k];
        if (last[id] >= 0 && k - last[id] - 1 > maxgap)
            maxgap = k - last[id] - 1;
        last[id] = k;
    }
    if (workers == 1)
        ASSERT_LE(maxgap, 2 * (FAIR_TASKS - 1));
    sl_sem_destroy(&f->sem);
    sl_barrier_destroy(&f->start);
    sl_barrier_destroy(&f->end);
    sl_free(f, sizeof *f);
    return NULL;
}

SL_TEST(sem_fairness_contention_2workers_no_alloc)
{
    test_run(1, main_fair, (void *)(intptr_t)1);
    test_run(2, main_fair, (void *)(intptr_t)2);
}
