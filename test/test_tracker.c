/* TaskTracker: one conformance case per Tokio checklist item (tt01..tt08, x01..x03, see
 * /work/shared/research/tokio-semantics.md 1.10 and 1.14), then the three wait forms, the
 * select clause, cancellation, cross-worker waits, stress and allocation. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <sluice.h>

#include "test.h"
#include "test_rt.h"

static sl_runtime_opts_t opts(int workers, int budget)
{
    sl_runtime_opts_t o;
    sl_runtime_opts_init(&o);
    o.workers = workers;
    o.alloc = test_alloc;
    if (budget)
        o.budget = budget;
    return o;
}

static void run_b(int workers, int budget, void *(*fn)(void *), void *arg)
{
    sl_runtime_opts_t o = opts(workers, budget);
    void *res = NULL;
    ASSERT_OK(sl_run(&o, fn, arg, &res));
    ASSERT_EQ(test_alloc_live(), 0);
}

static atomic_int started, finished, cleaned;

static void reset_counters(void)
{
    atomic_store(&started, 0);
    atomic_store(&finished, 0);
    atomic_store(&cleaned, 0);
}

static void wait_count(atomic_int *c, int n)
{
    while (atomic_load(c) < n)
        ASSERT_OK(sl_task_yield());
}

static void cleanup(void *arg)
{
    (void)arg;
    atomic_fetch_add(&cleaned, 1);
}

static void *wait_tok(void *arg)
{
    ASSERT_OK(sl_defer(cleanup, NULL));
    atomic_fetch_add(&started, 1);
    ASSERT_OK(sl_cancel_wait(arg));
    atomic_fetch_add(&finished, 1);
    return NULL;
}

static void *quick(void *arg)
{
    (void)arg;
    atomic_fetch_add(&finished, 1);
    return NULL;
}

/* A task that waits on the tracker and records the result. */
typedef struct {
    sl_tracker_t *tr;
    atomic_int r; /* 1 while waiting */
} waiter_t;

static void *waiter(void *arg)
{
    waiter_t *w = arg;
    atomic_fetch_add(&started, 1);
    atomic_store(&w->r, sl_tracker_wait(w->tr));
    return NULL;
}

static sl_task_t *start_waiter(waiter_t *w, sl_tracker_t *tr)
{
    w->tr = tr;
    atomic_store(&w->r, 1);
    int s0 = atomic_load(&started);
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(waiter, w, &t));
    wait_count(&started, s0 + 1);
    ASSERT_OK(sl_sleep(SL_MSEC)); /* let it reach its wait */
    return t;
}

/* Yields a few rounds and checks that the waiter is still waiting. */
static void assert_still_waiting(waiter_t *w)
{
    for (int i = 0; i < 20; i++)
        ASSERT_OK(sl_task_yield());
    ASSERT_OK(sl_sleep(SL_MSEC));
    ASSERT_EQ(atomic_load(&w->r), 1);
}

/* ---- TT-01: new is open and empty ---- */

static void *main_tt01(void *arg)
{
    (void)arg;
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    ASSERT_EQ(sl_tracker_len(tr), 0);
    ASSERT(!sl_tracker_is_closed(tr));
    ASSERT(sl_tracker_is_empty(tr));
    ASSERT_ERR(sl_tracker_try_wait(tr), SL_EAGAIN);
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(tt01_new_is_open_and_empty)
{
    test_run(1, main_tt01, NULL);
}

/* ---- TT-02: wait completes only when closed and empty; at once if already so ---- */

static void *main_tt02(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    ASSERT_OK(sl_tracker_spawn(tr, wait_tok, tok, NULL));
    waiter_t w;
    sl_task_t *wt = start_waiter(&w, tr);
    assert_still_waiting(&w); /* open and not empty */
    ASSERT_EQ(sl_tracker_close(tr), 1);
    assert_still_waiting(&w); /* closed but not empty */
    sl_cancel_trigger(tok);
    ASSERT_OK(sl_task_join(wt, NULL));
    ASSERT_OK(atomic_load(&w.r));
    /* Already closed and empty: at once, and a reopen afterwards changes nothing for it. */
    ASSERT_OK(sl_tracker_try_wait(tr));
    ASSERT_OK(sl_tracker_wait(tr));
    ASSERT_OK(sl_tracker_wait_until(tr, sl_now() - 1));
    ASSERT_EQ(sl_tracker_reopen(tr), 1);
    ASSERT_ERR(sl_tracker_try_wait(tr), SL_EAGAIN);
    sl_cancel_drop(tok);
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(tt02_wait_needs_closed_and_empty)
{
    test_run(1, main_tt02, NULL);
    test_run(2, main_tt02, NULL);
}

/* ---- TT-03: a transient closed-and-empty moment completes a wait already registered ---- */

static void *main_tt03(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    /* close(); reopen(); without letting the waiter run in between. */
    waiter_t w;
    sl_task_t *wt = start_waiter(&w, tr);
    ASSERT_EQ(sl_tracker_close(tr), 1);
    ASSERT_EQ(sl_tracker_reopen(tr), 1);
    ASSERT_OK(sl_task_join(wt, NULL));
    ASSERT_OK(atomic_load(&w.r));

    /* Closed; the last token goes and a new one comes at once. */
    sl_tracker_token_acquire(tr);
    ASSERT_EQ(sl_tracker_close(tr), 1);
    wt = start_waiter(&w, tr);
    sl_tracker_token_release(tr);
    sl_tracker_token_acquire(tr);
    ASSERT_OK(sl_task_join(wt, NULL));
    ASSERT_OK(atomic_load(&w.r));
    ASSERT_EQ(sl_tracker_len(tr), 1);
    sl_tracker_token_release(tr);
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(tt03_aba_resistance)
{
    test_run(1, main_tt03, NULL);
    test_run(2, main_tt03, NULL);
}

/* ---- TT-04: going empty while open does not complete a wait ---- */

static void *main_tt04(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    waiter_t w;
    sl_task_t *wt = start_waiter(&w, tr);
    for (int i = 0; i < 5; i++)
        ASSERT_OK(sl_tracker_spawn(tr, quick, NULL, NULL));
    wait_count(&finished, 5);
    while (!sl_tracker_is_empty(tr))
        ASSERT_OK(sl_task_yield());
    assert_still_waiting(&w);
    sl_tracker_close(tr);
    ASSERT_OK(sl_task_join(wt, NULL));
    ASSERT_OK(atomic_load(&w.r));
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(tt04_no_completion_while_open)
{
    test_run(1, main_tt04, NULL);
    test_run(2, main_tt04, NULL);
}

/* ---- TT-05: close/reopen return values; closing does not stop spawning ---- */

static void *main_tt05(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    ASSERT_EQ(sl_tracker_close(tr), 1);
    ASSERT_EQ(sl_tracker_close(tr), 0);
    ASSERT(sl_tracker_is_closed(tr));
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    ASSERT_OK(sl_tracker_spawn(tr, wait_tok, tok, NULL));
    ASSERT_EQ(sl_tracker_len(tr), 1);
    ASSERT_EQ(sl_tracker_reopen(tr), 1);
    ASSERT_EQ(sl_tracker_reopen(tr), 0);
    ASSERT(!sl_tracker_is_closed(tr));
    sl_cancel_trigger(tok);
    sl_tracker_close(tr);
    ASSERT_OK(sl_tracker_wait(tr));
    sl_cancel_drop(tok);
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(tt05_close_reopen_results)
{
    test_run(1, main_tt05, NULL);
}

/* ---- TT-06: tokens count like tasks ---- */

static void *release_on_pool(void *arg)
{
    sl_tracker_token_release(arg);
    return NULL;
}

static void *main_tt06(void *arg)
{
    (void)arg;
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    sl_tracker_token_acquire(tr);
    ASSERT_EQ(sl_tracker_len(tr), 1);
    sl_tracker_token_acquire(tr); /* "clone" */
    ASSERT_EQ(sl_tracker_len(tr), 2);
    sl_tracker_close(tr);
    ASSERT_ERR(sl_tracker_try_wait(tr), SL_EAGAIN);
    sl_tracker_token_release(tr);
    ASSERT_EQ(sl_tracker_len(tr), 1);
    ASSERT_ERR(sl_tracker_try_wait(tr), SL_EAGAIN);
    /* Released from a blocking-pool thread while this task waits. */
    ASSERT_OK(sl_blocking(release_on_pool, tr, NULL));
    ASSERT_EQ(sl_tracker_len(tr), 0);
    ASSERT_OK(sl_tracker_wait(tr));
    /* A token keeps the tracker alive after the last reference is dropped. */
    sl_tracker_token_acquire(tr);
    sl_tracker_drop(tr);
    sl_tracker_token_release(tr);
    return NULL;
}

SL_TEST(tt06_tokens_count)
{
    test_run(1, main_tt06, NULL);
}

/* ---- TT-07: dropping does not abort; clones share; cleanups are done when wait returns ---- */

static void *main_tt07(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    sl_tracker_t *tr2 = sl_tracker_clone(tr);
    ASSERT_PTR_EQ(tr2, tr);
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    const int n = 20;
    sl_task_t *ts[20];
    for (int i = 0; i < n; i++)
        ASSERT_OK(sl_tracker_spawn(tr, wait_tok, tok, &ts[i]));
    wait_count(&started, n);
    sl_tracker_drop(tr); /* the clone keeps it; tasks are not aborted */
    ASSERT_EQ(sl_tracker_len(tr2), n);
    sl_cancel_trigger(tok);
    sl_tracker_close(tr2);
    ASSERT_OK(sl_tracker_wait(tr2));
    ASSERT_EQ(atomic_load(&cleaned), n);
    ASSERT_EQ(atomic_load(&finished), n);
    for (int i = 0; i < n; i++) {
        ASSERT(sl_task_is_finished(ts[i]));
        sl_join_t j;
        ASSERT_OK(sl_task_try_join(ts[i], &j));
        ASSERT_EQ(j.status, SL_TASK_RETURNED);
    }
    /* The last reference goes while tracked tasks still run: memory lives until they end. */
    sl_cancel_t *tok2;
    ASSERT_OK(sl_cancel_new(&tok2));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(sl_tracker_spawn(tr2, wait_tok, tok2, NULL));
    sl_tracker_drop(tr2);
    sl_cancel_trigger(tok2);
    wait_count(&finished, n + 3);
    ASSERT_OK(sl_sleep(2 * SL_MSEC));
    sl_cancel_drop(tok);
    sl_cancel_drop(tok2);
    return NULL;
}

SL_TEST(tt07_drop_clone_and_cleanup)
{
    test_run(1, main_tt07, NULL);
    test_run(2, main_tt07, NULL);
}

/* ---- TT-08: closing while tasks are exiting still completes the wait ---- */

static void *main_tt08(void *arg)
{
    (void)arg;
    for (int it = 0; it < 100; it++) {
        reset_counters();
        sl_tracker_t *tr;
        ASSERT_OK(sl_tracker_new(&tr));
        for (int i = 0; i < 20; i++)
            ASSERT_OK(sl_tracker_spawn(tr, quick, NULL, NULL));
        if (it & 1)
            ASSERT_OK(sl_task_yield());
        sl_tracker_close(tr);
        ASSERT_OK(sl_tracker_wait_until(tr, sl_deadline_in(30 * SL_SEC)));
        ASSERT_EQ(atomic_load(&finished), 20);
        sl_tracker_drop(tr);
    }
    return NULL;
}

SL_TEST(tt08_close_during_exit)
{
    test_run(2, main_tt08, NULL);
}

/* ---- waits consume the cooperative budget ---- */

static void *main_x01(void *arg)
{
    (void)arg;
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    sl_tracker_close(tr);
    sl_runtime_stats_t st0, st1;
    sl_runtime_stats(sl_runtime_current(), &st0);
    for (int i = 0; i < 64; i++)
        ASSERT_OK(sl_tracker_wait(tr));
    sl_runtime_stats(sl_runtime_current(), &st1);
    ASSERT_GE_U(st1.budget_yields - st0.budget_yields, 8);
    /* try_wait does not. */
    sl_runtime_stats(sl_runtime_current(), &st0);
    for (int i = 0; i < 64; i++)
        ASSERT_OK(sl_tracker_try_wait(tr));
    sl_runtime_stats(sl_runtime_current(), &st1);
    ASSERT_EQ_U(st1.budget_yields, st0.budget_yields);
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(x01_coop_budget)
{
    run_b(1, 4, main_x01, NULL);
}

/* ---- non-waiting calls work from a plain thread ---- */

typedef struct {
    sl_tracker_t *tr;
    size_t len;
    int closed, try1, try2;
} x02_t;

static void *x02_thread(void *arg)
{
    x02_t *x = arg;
    x->len = sl_tracker_len(x->tr);
    x->closed = sl_tracker_close(x->tr);
    x->try1 = sl_tracker_try_wait(x->tr);
    sl_tracker_token_release(x->tr);
    x->try2 = sl_tracker_try_wait(x->tr);
    return NULL;
}

static void *main_x02(void *arg)
{
    (void)arg;
    x02_t x = {0};
    ASSERT_OK(sl_tracker_new(&x.tr));
    waiter_t w;
    sl_task_t *wt = start_waiter(&w, x.tr);
    sl_tracker_token_acquire(x.tr);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, x02_thread, &x), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_EQ(x.len, 1);
    ASSERT_EQ(x.closed, 1);
    ASSERT_ERR(x.try1, SL_EAGAIN);
    ASSERT_OK(x.try2);
    ASSERT_OK(sl_task_join(wt, NULL)); /* woken from the plain thread */
    ASSERT_OK(atomic_load(&w.r));
    sl_tracker_drop(x.tr);
    return NULL;
}

SL_TEST(x02_try_forms_outside_tasks)
{
    test_run(1, main_x02, NULL);
    test_run(2, main_x02, NULL);
}

/* ---- writes of tracked tasks are visible once wait returns ---- */

#define X03_N 64
static int x03_bufs[16][X03_N];

static void *x03_writer(void *arg)
{
    int *buf = arg;
    for (int i = 0; i < X03_N; i++)
        buf[i] = i + 1;
    return NULL;
}

static void *main_x03(void *arg)
{
    (void)arg;
    memset(x03_bufs, 0, sizeof x03_bufs);
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    sl_spawn_opts_t so = {0};
    so.use_worker = 1;
    for (int i = 0; i < 16; i++) {
        so.worker = i % 2;
        ASSERT_OK(sl_tracker_spawn_ex(tr, &so, x03_writer, x03_bufs[i], NULL));
    }
    sl_tracker_close(tr);
    ASSERT_OK(sl_tracker_wait(tr));
    for (int k = 0; k < 16; k++)
        for (int i = 0; i < X03_N; i++)
            ASSERT_EQ(x03_bufs[k][i], i + 1);
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(x03_memory_ordering)
{
    test_run(2, main_x03, NULL);
}

/* ---- The deadline form, timeout scopes, cancellation ---- */

static void *main_wait_forms(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    ASSERT_ERR(sl_tracker_wait_until(tr, sl_deadline_in(2 * SL_MSEC)), SL_ETIMEDOUT);
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(2 * SL_MSEC));
    ASSERT_ERR(sl_tracker_wait(tr), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    /* A cancelled waiter returns SL_ECANCELED and leaves the tracker unchanged. */
    waiter_t w;
    sl_task_t *wt = start_waiter(&w, tr);
    sl_task_abort(wt);
    ASSERT_OK(sl_task_join(wt, NULL));
    ASSERT_ERR(atomic_load(&w.r), SL_ECANCELED);
    ASSERT(!sl_tracker_is_closed(tr));
    ASSERT_EQ(sl_tracker_len(tr), 0);
    /* A deadline that is not reached. */
    ASSERT_OK(sl_tracker_spawn(tr, quick, NULL, NULL));
    sl_tracker_close(tr);
    ASSERT_OK(sl_tracker_wait_until(tr, sl_deadline_in(10 * SL_SEC)));
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(wait_deadline_timeout_cancel)
{
    test_run(1, main_wait_forms, NULL);
}

/* ---- The select clause ---- */

static void *main_clause(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    ASSERT_OK(sl_tracker_spawn(tr, wait_tok, tok, NULL));
    sl_tracker_close(tr);
    sl_clause_t c[2];
    sl_clause_tracker_wait(&c[0], tr);
    sl_clause_sleep_until(&c[1], sl_deadline_in(2 * SL_MSEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    sl_cancel_trigger(tok);
    sl_clause_tracker_wait(&c[0], tr);
    sl_clause_sleep_until(&c[1], sl_deadline_in(10 * SL_SEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 0);
    ASSERT_OK(c[0].res);
    ASSERT_EQ(atomic_load(&cleaned), 1);
    sl_cancel_drop(tok);
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(select_clause)
{
    test_run(1, main_clause, NULL);
    test_run(2, main_clause, NULL);
}

/* ---- Waiters on both workers, tasks on both workers ---- */

static void *main_across(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    sl_spawn_opts_t so = {0};
    so.use_worker = 1;
    for (int i = 0; i < 10; i++) {
        so.worker = i % 2;
        ASSERT_OK(sl_tracker_spawn_ex(tr, &so, wait_tok, tok, NULL));
    }
    waiter_t w[4];
    sl_task_t *wt[4];
    for (int i = 0; i < 4; i++) {
        w[i].tr = tr;
        atomic_store(&w[i].r, 1);
        so.worker = i % 2;
        ASSERT_OK(sl_task_spawn_ex(&so, waiter, &w[i], &wt[i]));
    }
    wait_count(&started, 14);
    sl_tracker_close(tr);
    sl_cancel_trigger(tok);
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(sl_task_join(wt[i], NULL));
        ASSERT_OK(atomic_load(&w[i].r));
    }
    ASSERT_EQ(atomic_load(&cleaned), 10);
    sl_cancel_drop(tok);
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(wait_across_workers)
{
    test_run(2, main_across, NULL);
}

/* ---- Stress: 10,000 tracked tasks on 2 workers ---- */

static void *main_stress(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    for (int b = 0; b < 20; b++) {
        for (int i = 0; i < 500; i++)
            ASSERT_OK(sl_tracker_spawn(tr, quick, NULL, NULL));
        if (b % 5 == 4) {
            sl_tracker_close(tr);
            ASSERT_OK(sl_tracker_wait(tr));
            ASSERT_EQ(atomic_load(&finished), (b + 1) * 500);
            sl_tracker_reopen(tr);
        }
    }
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(stress_2workers)
{
    test_run(2, main_stress, NULL);
}

/* ---- Allocation: nothing per tracked task (task memory comes from the worker's cache) ---- */

static void *main_alloc(void *arg)
{
    (void)arg;
    reset_counters();
    sl_tracker_t *tr;
    ASSERT_OK(sl_tracker_new(&tr));
    for (int i = 0; i < 100; i++) /* warm up the worker's task cache */
        ASSERT_OK(sl_tracker_spawn(tr, quick, NULL, NULL));
    sl_tracker_close(tr);
    ASSERT_OK(sl_tracker_wait(tr));
    sl_tracker_reopen(tr);
    long a0 = test_alloc_total();
    for (int i = 0; i < 100; i++)
        ASSERT_OK(sl_tracker_spawn(tr, quick, NULL, NULL));
    sl_tracker_close(tr);
    ASSERT_OK(sl_tracker_wait(tr));
    ASSERT_EQ(test_alloc_total() - a0, 0); /* the tracker adds nothing; task memory is reused */
    sl_tracker_drop(tr);
    return NULL;
}

SL_TEST(alloc_per_task)
{
    test_run(1, main_alloc, NULL);
}
