/* Mutex, RwLock, Barrier: Tokio checklist items MX-01..03, RW-01..02, BR-01..02, and forms. */
#include <stdatomic.h>
#include <string.h>

#include <sluice.h>

#include "test.h"
#include "test_rt.h"

/* A task that locks (kind 0 mutex, 1 read, 2 write), records its order, and unlocks. */
struct locker {
    sl_mutex_t *m;
    sl_rwlock_t *rw;
    int kind;
    atomic_int *seq;
    atomic_int done;
    int order;
    int res;
};

static void *locker(void *arg)
{
    struct locker *l = arg;
    if (l->kind == 0) {
        sl_mutex_guard_t g;
        l->res = sl_mutex_lock(l->m, &g);
        l->order = atomic_fetch_add(l->seq, 1);
        sl_mutex_unlock(&g);
    } else {
        sl_rwlock_guard_t g;
        l->res = l->kind == 1 ? sl_rwlock_read(l->rw, &g) : sl_rwlock_write(l->rw, &g);
        l->order = atomic_fetch_add(l->seq, 1);
        sl_rwlock_unlock(&g);
    }
    atomic_store(&l->done, 1);
    return NULL;
}

static sl_task_t *spawn_locker(int worker, struct locker *l)
{
    return test_spawn_until_parked(worker, locker, l, &l->done);
}

/* ---- MX-01 ---- */

static void *main_mx_01(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_mutex_t m;
    sl_mutex_guard_t g;
    atomic_int seq = 0;
    enum { N = 8 };
    struct locker l[N];
    sl_task_t *t[N];
    sl_mutex_init(&m);
    ASSERT_OK(sl_mutex_lock(&m, &g));
    for (int i = 0; i < N; i++) {
        memset(&l[i], 0, sizeof l[i]);
        l[i].m = &m;
        l[i].seq = &seq;
        t[i] = spawn_locker(w, &l[i]);
    }
    sl_mutex_unlock(&g);
    for (int i = 0; i < N; i++) {
        test_join_ok(t[i]);
        ASSERT_OK(l[i].res);
        ASSERT_EQ(l[i].order, i);
    }
    sl_mutex_destroy(&m);
    return NULL;
}

SL_TEST(mx_01_mutex_fifo)
{
    test_run(1, main_mx_01, (void *)(intptr_t)1);
    test_run(2, main_mx_01, (void *)(intptr_t)2);
}

/* ---- MX-02 ---- */

static void *main_mx_02(void *arg)
{
    (void)arg;
    sl_mutex_t m;
    sl_mutex_guard_t g, h;
    atomic_int seq = 0;
    struct locker l;
    sl_mutex_init(&m);
    ASSERT_OK(sl_mutex_try_lock(&m, &g));
    ASSERT_ERR(sl_mutex_try_lock(&m, &h), SL_EAGAIN);
    memset(&l, 0, sizeof l);
    l.m = &m;
    l.seq = &seq;
    sl_task_t *t = spawn_locker(-1, &l);
    sl_mutex_unlock(&g);
    /* Handed to the queued task: try_lock fails although nobody runs with it yet. */
    ASSERT_ERR(sl_mutex_try_lock(&m, &h), SL_EAGAIN);
    test_join_ok(t);
    ASSERT_OK(sl_mutex_try_lock(&m, &h));
    sl_mutex_unlock(&h);
    sl_mutex_destroy(&m);
    return NULL;
}

SL_TEST(mx_02_try_lock_fails_when_held_or_queued)
{
    test_run(1, main_mx_02, NULL);
}

/* ---- MX-03 ---- */

static void *panic_locked(void *arg)
{
    sl_mutex_t *m = arg;
    sl_mutex_guard_t g;
    ASSERT_OK(sl_mutex_lock(m, &g));
    sl_panic("holding the lock");
}

static void *main_mx_03(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_mutex_t m;
    sl_mutex_guard_t g;
    sl_mutex_init(&m);
    sl_task_t *t = test_spawn_on(w, panic_locked, &m);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_PANICKED);
    /* No poisoning: the lock is free again. */
    ASSERT_OK(sl_mutex_try_lock(&m, &g));
    /* A lock cut short by a deadline loses its queue place and holds nothing. */
    sl_mutex_guard_t h;
    ASSERT_ERR(sl_mutex_lock_until(&m, &h, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    sl_mutex_unlock(&g);
    ASSERT_OK(sl_mutex_lock_until(&m, &h, sl_deadline_in(SL_SEC)));
    sl_mutex_unlock(&h);
    sl_mutex_destroy(&m);
    return NULL;
}

SL_TEST(mx_03_no_poisoning_panic_unlocks)
{
    test_run(1, main_mx_03, (void *)(intptr_t)1);
    test_run(2, main_mx_03, (void *)(intptr_t)2);
}

/* ---- RW-01 ---- */

static void *main_rw_01(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_rwlock_t rw;
    sl_rwlock_guard_t r1, r2, x;
    atomic_int seq = 0;
    struct locker wr, rd;
    sl_rwlock_init(&rw);
    ASSERT_OK(sl_rwlock_read(&rw, &r1));
    ASSERT_OK(sl_rwlock_try_read(&rw, &r2)); /* readers share */
    memset(&wr, 0, sizeof wr);
    wr.rw = &rw;
    wr.kind = 2;
    wr.seq = &seq;
    sl_task_t *tw = spawn_locker(w, &wr);
    /* A reader behind a queued writer waits; try_read fails. */
    ASSERT_ERR(sl_rwlock_try_read(&rw, &x), SL_EAGAIN);
    ASSERT_ERR(sl_rwlock_try_write(&rw, &x), SL_EAGAIN);
    memset(&rd, 0, sizeof rd);
    rd.rw = &rw;
    rd.kind = 1;
    rd.seq = &seq;
    sl_task_t *tr = spawn_locker(w, &rd);
    ASSERT_EQ(atomic_load(&rd.done), 0);
    sl_rwlock_unlock(&r1);
    sl_rwlock_unlock(&r2);
    test_join_ok(tw);
    test_join_ok(tr);
    ASSERT_EQ(wr.order, 0);
    ASSERT_EQ(rd.order, 1);
    ASSERT_OK(sl_rwlock_try_write(&rw, &x));
    ASSERT_ERR(sl_rwlock_try_read(&rw, &r1), SL_EAGAIN);
    sl_rwlock_unlock(&x);
    sl_rwlock_destroy(&rw);
    return NULL;
}

SL_TEST(rw_01_write_preferring_fifo)
{
    test_run(1, main_rw_01, (void *)(intptr_t)1);
    test_run(2, main_rw_01, (void *)(intptr_t)2);
}

/* ---- RW-02 ---- */

static void *main_rw_02(void *arg)
{
    (void)arg;
    sl_rwlock_t rw;
    sl_rwlock_guard_t g[3], x;
    ASSERT_ERR(sl_rwlock_init_max(&rw, 0), SL_EINVAL);
    ASSERT_ERR(sl_rwlock_init_max(&rw, SL_RWLOCK_MAX_READERS + 1), SL_EINVAL);
    ASSERT_EQ_U(SL_RWLOCK_MAX_READERS, 536870911u);
    ASSERT_OK(sl_rwlock_init_max(&rw, 2));
    ASSERT_OK(sl_rwlock_read(&rw, &g[0]));
    ASSERT_OK(sl_rwlock_read_until(&rw, &g[1], SL_FOREVER));
    /* The (max_readers + 1)-th reader waits. */
    ASSERT_ERR(sl_rwlock_try_read(&rw, &g[2]), SL_EAGAIN);
    ASSERT_ERR(sl_rwlock_read_until(&rw, &g[2], sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    sl_rwlock_unlock(&g[0]);
    sl_rwlock_unlock(&g[1]);
    /* Downgrade: a write guard becomes one read guard; other readers get in, writers not. */
    ASSERT_OK(sl_rwlock_write(&rw, &x));
    ASSERT_ERR(sl_rwlock_try_read(&rw, &g[0]), SL_EAGAIN);
    sl_rwlock_downgrade(&rw, &x);
    ASSERT_OK(sl_rwlock_try_read(&rw, &g[0]));
    ASSERT_ERR(sl_rwlock_try_read(&rw, &g[1]), SL_EAGAIN);
    ASSERT_ERR(sl_rwlock_write_until(&rw, &g[1], sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    sl_rwlock_unlock(&x);
    sl_rwlock_unlock(&g[0]);
    ASSERT_OK(sl_rwlock_try_write(&rw, &x));
    sl_rwlock_unlock(&x);
    sl_rwlock_destroy(&rw);
    return NULL;
}

SL_TEST(rw_02_max_readers_downgrade)
{
    test_run(1, main_rw_02, NULL);
}

/* ---- RW-03: a queued writer that is cancelled lets the readers behind it in ----
 * The writer queues behind a held read lock (absorbing what read permits come free) and a
 * reader queues behind the writer. Aborting the writer must hand its permits back and let the
 * reader in while the first read lock is still held; the writer's guard stays empty. */

static void *main_rw_03(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_rwlock_t rw;
    sl_rwlock_guard_t r1, x;
    atomic_int seq = 0;
    struct locker wr, rd;
    sl_rwlock_init(&rw);
    ASSERT_OK(sl_rwlock_read(&rw, &r1));
    memset(&wr, 0, sizeof wr);
    wr.rw = &rw;
    wr.kind = 2;
    wr.seq = &seq;
    sl_task_t *tw = spawn_locker(w, &wr);
    memset(&rd, 0, sizeof rd);
    rd.rw = &rw;
    rd.kind = 1;
    rd.seq = &seq;
    sl_task_t *tr = spawn_locker(w, &rd);
    ASSERT_EQ(atomic_load(&rd.done), 0); /* held back by the queued writer */
    sl_task_abort(tw);
    sl_join_t j = test_join(tw);
    ASSERT_EQ(j.status, SL_TASK_CANCELLED); /* it returned after its lock said SL_ECANCELED */
    ASSERT_ERR(wr.res, SL_ECANCELED);
    /* In, beside r1 (a writer that kept its permits would leave the reader queued for good:
     * the scope, 10 s times SLUICE_TEST_SCALE, reports it). */
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(10 * test_scale() * SL_SEC));
    sl_join_t jr;
    int r = sl_task_join(tr, &jr);
    ASSERT_OK(sl_timeout_exit(&to));
    ASSERT_OK(r);
    ASSERT_EQ(jr.status, SL_TASK_RETURNED);
    ASSERT_OK(rd.res);
    /* Every permit is back: with r1 gone the lock is free for a writer. */
    ASSERT_ERR(sl_rwlock_try_write(&rw, &x), SL_EAGAIN);
    sl_rwlock_unlock(&r1);
    ASSERT_OK(sl_rwlock_try_write(&rw, &x));
    sl_rwlock_unlock(&x);
    sl_rwlock_destroy(&rw);
    return NULL;
}

SL_TEST(rw_03_cancelled_writer_lets_readers_in)
{
    test_run(1, main_rw_03, (void *)(intptr_t)1);
    test_run(2, main_rw_03, (void *)(intptr_t)2);
}

/* ---- A failed lock leaves its guard empty ----
 * Whatever the caller's storage held (here 0xAB bytes, as an uninitialised local might), a
 * lock or acquire that fails, and a select clause that loses, leave the guard or record
 * empty: unlocking, releasing or detaching it afterwards changes nothing. */

static void *main_failed_lock_empty(void *arg)
{
    (void)arg;
    sl_mutex_t m;
    sl_mutex_guard_t held, g;
    sl_mutex_init(&m);
    ASSERT_OK(sl_mutex_lock(&m, &held));

    memset(&g, 0xAB, sizeof g);
    ASSERT_ERR(sl_mutex_try_lock(&m, &g), SL_EAGAIN);
    sl_mutex_unlock(&g);

    memset(&g, 0xAB, sizeof g);
    ASSERT_ERR(sl_mutex_lock_until(&m, &g, sl_deadline_in(0)), SL_ETIMEDOUT);
    sl_mutex_unlock(&g);

    memset(&g, 0xAB, sizeof g);
    sl_clause_t c[2];
    sl_clause_mutex_lock(&c[0], &m, &g);
    sl_clause_sleep_until(&c[1], sl_deadline_in(SL_MSEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    sl_mutex_unlock(&g);

    ASSERT_ERR(sl_mutex_try_lock(&m, &g), SL_EAGAIN); /* still held, by `held` alone */
    sl_mutex_unlock(&held);
    ASSERT_OK(sl_mutex_try_lock(&m, &g));
    sl_mutex_unlock(&g);
    sl_mutex_destroy(&m);

    sl_rwlock_t rw;
    sl_rwlock_guard_t r, w;
    sl_rwlock_init(&rw);
    ASSERT_OK(sl_rwlock_read(&rw, &r));
    memset(&w, 0xAB, sizeof w);
    ASSERT_ERR(sl_rwlock_try_write(&rw, &w), SL_EAGAIN);
    sl_rwlock_unlock(&w);
    memset(&w, 0xAB, sizeof w);
    ASSERT_ERR(sl_rwlock_write_until(&rw, &w, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    sl_rwlock_unlock(&w);
    sl_rwlock_unlock(&r);
    ASSERT_OK(sl_rwlock_try_write(&rw, &w));
    sl_rwlock_unlock(&w);
    sl_rwlock_destroy(&rw);

    sl_sem_t s;
    sl_sem_permit_t p;
    ASSERT_OK(sl_sem_init(&s, 1));
    memset(&p, 0xAB, sizeof p);
    ASSERT_ERR(sl_sem_try_acquire_many(&s, 2, &p), SL_EAGAIN);
    ASSERT_EQ_U(sl_sem_permit_count(&p), 0);
    sl_sem_permit_detach(&p);
    sl_sem_permit_release(&p);
    memset(&p, 0xAB, sizeof p);
    ASSERT_ERR(sl_sem_acquire_many(&s, SL_SEM_MAX_PERMITS + 1, &p), SL_EINVAL);
    sl_sem_permit_release(&p);
    ASSERT_EQ_U(sl_sem_available(&s), 1);
    sl_sem_destroy(&s);
    return NULL;
}

SL_TEST(failed_lock_leaves_guard_empty)
{
    test_run(1, main_failed_lock_empty, NULL);
}

/* ---- BR-01 ---- */

struct bar {
    sl_barrier_t b;
    atomic_int leaders;
    atomic_int passed;
};

static void *bar_task(void *arg)
{
    struct bar *b = arg;
    for (int gen = 0; gen < 50; gen++) {
        int leader = -1;
        ASSERT_OK(sl_barrier_wait(&b->b, &leader));
        ASSERT(leader == 0 || leader == 1);
        atomic_fetch_add(&b->leaders, leader);
        atomic_fetch_add(&b->passed, 1);
    }
    return NULL;
}

static void *main_br_01(void *arg)
{
    int workers = (int)(intptr_t)arg;
    struct bar b;
    enum { N = 5 };
    sl_task_t *t[N];
    memset(&b, 0, sizeof b);
    sl_barrier_init(&b.b, N);
    for (int i = 0; i < N; i++)
        t[i] = test_spawn_on(workers > 1 ? i % 2 : -1, bar_task, &b);
    for (int i = 0; i < N; i++)
        test_join_ok(t[i]);
    ASSERT_EQ(atomic_load(&b.leaders), 50); /* exactly one per generation */
    ASSERT_EQ(atomic_load(&b.passed), 50 * N);
    sl_barrier_destroy(&b.b);
    /* 0 behaves as 1: every wait returns at once as leader. */
    sl_barrier_t one;
    sl_barrier_init(&one, 0);
    int leader = 0;
    ASSERT_OK(sl_barrier_wait(&one, &leader));
    ASSERT_EQ(leader, 1);
    ASSERT_OK(sl_barrier_wait_until(&one, &leader, sl_deadline_in(SL_MSEC)));
    ASSERT_EQ(leader, 1);
    sl_barrier_destroy(&one);
    return NULL;
}

SL_TEST(br_01_barrier_one_leader_reusable)
{
    test_run(1, main_br_01, (void *)(intptr_t)1);
    test_run(2, main_br_01, (void *)(intptr_t)2);
}

/* ---- BR-02 ---- */

static void *main_br_02(void *arg)
{
    (void)arg;
    sl_barrier_t b;
    int leader = -1;
    sl_barrier_init(&b, 2);
    /* The timed-out wait still counted its arrival: the next arriver completes the
     * generation alone, as the leader. */
    ASSERT_ERR(sl_barrier_wait_until(&b, &leader, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_EQ(leader, -1);
    ASSERT_OK(sl_barrier_wait(&b, &leader));
    ASSERT_EQ(leader, 1);
    /* Already cancelled (or timed out) before the call: no arrival. */
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_now());
    ASSERT_ERR(sl_barrier_wait(&b, &leader), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    ASSERT_ERR(sl_barrier_wait_until(&b, &leader, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    sl_barrier_destroy(&b);
    return NULL;
}

SL_TEST(br_02_barrier_not_cancel_safe)
{
    test_run(1, main_br_02, NULL);
}

/* ---- Forms, cancellation and select for locks ---- */

static void *cancelled_locker(void *arg)
{
    sl_mutex_t *m = arg;
    sl_mutex_guard_t g;
    ASSERT_ERR(sl_mutex_lock(m, &g), SL_ECANCELED);
    return NULL;
}

static void *main_forms(void *arg)
{
    int w = (int)(intptr_t)arg - 1;
    sl_mutex_t m;
    sl_mutex_guard_t g, h;
    sl_mutex_init(&m);
    ASSERT_OK(sl_mutex_lock(&m, &g));
    sl_task_t *t = test_spawn_until_parked(w, cancelled_locker, &m, NULL);
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    /* select: a losing lock clause holds nothing; a winning one holds the lock. */
    sl_clause_t c[2];
    sl_clause_mutex_lock(&c[0], &m, &h);
    sl_clause_sleep_until(&c[1], sl_deadline_in(SL_MSEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    sl_mutex_unlock(&g);
    sl_clause_mutex_lock(&c[0], &m, &h);
    ASSERT_EQ(sl_select(c, 1, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_ERR(sl_mutex_try_lock(&m, &g), SL_EAGAIN);
    sl_mutex_unlock(&h);
    sl_mutex_unlock(&h); /* empty guard: nothing */
    ASSERT_OK(sl_mutex_try_lock(&m, &g));
    sl_mutex_unlock(&g);

    sl_rwlock_t rw;
    sl_rwlock_guard_t r, x;
    sl_rwlock_init(&rw);
    sl_clause_rwlock_write(&c[0], &rw, &x);
    ASSERT_EQ(sl_select(c, 1, SL_SELECT_BIASED, SL_FOREVER), 0);
    sl_clause_rwlock_read(&c[0], &rw, &r);
    sl_clause_sleep_until(&c[1], sl_deadline_in(SL_MSEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    sl_rwlock_unlock(&x);
    ASSERT_EQ(sl_select(c, 1, SL_SELECT_BIASED, SL_FOREVER), 0);
    sl_rwlock_unlock(&r);
    sl_rwlock_destroy(&rw);
    sl_mutex_destroy(&m);
    return NULL;
}

SL_TEST(lock_forms_cancel_select)
{
    test_run(1, main_forms, (void *)(intptr_t)1);
    test_run(2, main_forms, (void *)(intptr_t)2);
}

/* ---- Contended mutex on 2 workers: mutual exclusion, no allocation ---- */

enum { MC_TASKS = 6, MC_ITERS = 3000 };

struct mc {
    sl_mutex_t m;
    sl_barrier_t start, end;
    long counter;
    atomic_int inside;
};

static void *mc_task(void *arg)
{
    struct mc *s = arg;
    ASSERT_OK(sl_barrier_wait(&s->start, NULL));
    for (int i = 0; i < MC_ITERS; i++) {
        sl_mutex_guard_t g;
        ASSERT_OK(sl_mutex_lock(&s->m, &g));
        ASSERT_EQ(atomic_fetch_add(&s->inside, 1), 0);
        s->counter++;
        if (i % 4 == 0)
            sl_task_yield();
        atomic_fetch_sub(&s->inside, 1);
        sl_mutex_unlock(&g);
    }
    ASSERT_OK(sl_barrier_wait(&s->end, NULL));
    return NULL;
}

static void *main_mc(void *arg)
{
    (void)arg;
    struct mc s;
    memset(&s, 0, sizeof s);
    sl_mutex_init(&s.m);
    sl_barrier_init(&s.start, MC_TASKS + 1);
    sl_barrier_init(&s.end, MC_TASKS + 1);
    sl_task_t *t[MC_TASKS];
    for (int i = 0; i < MC_TASKS; i++)
        t[i] = test_spawn_on(i % 2, mc_task, &s);
    ASSERT_OK(sl_barrier_wait(&s.start, NULL));
    long before = test_alloc_total();
    ASSERT_OK(sl_barrier_wait(&s.end, NULL));
    ASSERT_EQ(test_alloc_total() - before, 0);
    for (int i = 0; i < MC_TASKS; i++)
        test_join_ok(t[i]);
    ASSERT_EQ(s.counter, (long)MC_TASKS * MC_ITERS);
    sl_mutex_destroy(&s.m);
    return NULL;
}

SL_TEST(mutex_contended_2workers_no_alloc)
{
    test_run(2, main_mc, NULL);
}
