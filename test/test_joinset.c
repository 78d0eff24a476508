/* JoinSet: one conformance case per Tokio checklist item (js01..js13, x01..x03, see
 * /work/shared/research/tokio-semantics.md 1.9 and 1.14), then failure isolation, deterministic
 * free, stress, cross-worker joins, cancel safety, timeouts, select and allocation. */
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

/* ---- task bodies ---- */

static atomic_int finished; /* tasks that reached their end */
static atomic_int started;
static atomic_int cleaned; /* sl_defer cleanups that ran */

static void wait_finished(int n)
{
    while (atomic_load(&finished) < n)
        ASSERT_OK(sl_task_yield());
}

static void wait_started(int n)
{
    while (atomic_load(&started) < n)
        ASSERT_OK(sl_task_yield());
}

static void reset_counters(void)
{
    atomic_store(&finished, 0);
    atomic_store(&started, 0);
    atomic_store(&cleaned, 0);
}

static void *ret_arg(void *arg)
{
    atomic_fetch_add(&finished, 1);
    return arg;
}

static void *yield_ret(void *arg)
{
    sl_task_yield();
    atomic_fetch_add(&finished, 1);
    return arg;
}

static void cleanup(void *arg)
{
    (void)arg;
    atomic_fetch_add(&cleaned, 1);
}

/* Sleeps "forever"; stores its sleep's result in *arg (if not NULL). */
static void *sleeper(void *arg)
{
    ASSERT_OK(sl_defer(cleanup, NULL));
    atomic_fetch_add(&started, 1);
    int r = sl_sleep(3600 * SL_SEC);
    if (arg)
        *(int *)arg = r;
    return (void *)(intptr_t)77;
}

typedef struct {
    sl_cancel_t *tok;
    intptr_t v;
} tokarg_t;

static void *wait_tok(void *arg)
{
    tokarg_t *a = arg;
    atomic_fetch_add(&started, 1);
    ASSERT_OK(sl_cancel_wait(a->tok));
    atomic_fetch_add(&finished, 1);
    return (void *)a->v;
}

static void *panicker(void *arg)
{
    sl_task_yield();
    sl_panic("task %d failed", (int)(intptr_t)arg);
}

/* ---- JS-01: spawn starts the task at once; len + 1; id ---- */

static void *main_js01(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    ASSERT_EQ(sl_joinset_len(set), 0);
    uint64_t id = 0;
    ASSERT_OK(sl_joinset_spawn(set, ret_arg, (void *)(intptr_t)5, &id));
    ASSERT_NE(id, 0);
    ASSERT_EQ(sl_joinset_len(set), 1);
    /* Never joined, yet it runs. */
    wait_finished(1);
    ASSERT_EQ(sl_joinset_len(set), 1);
    sl_join_t j;
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ_U(j.id, id);
    ASSERT_EQ((intptr_t)j.value, 5);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(js01_spawn_starts_immediately)
{
    test_run(1, main_js01, NULL);
    test_run(2, main_js01, NULL);
}

/* ---- JS-02: join_next in completion order; SL_EEMPTY iff empty ---- */

static void *main_js02(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    sl_join_t j;
    ASSERT_ERR(sl_joinset_join_next(set, &j), SL_EEMPTY);
    tokarg_t a[3];
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(sl_cancel_new(&a[i].tok));
        a[i].v = i;
        ASSERT_OK(sl_joinset_spawn(set, wait_tok, &a[i], NULL));
    }
    wait_started(3);
    /* Hand-off path: the joiner waits, tasks end one at a time. */
    const int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        sl_cancel_trigger(a[order[k]].tok);
        ASSERT_OK(sl_joinset_join_next(set, &j));
        ASSERT_EQ(j.status, SL_TASK_RETURNED);
        ASSERT_EQ((intptr_t)j.value, order[k]);
        ASSERT_EQ(sl_joinset_len(set), 2 - k);
    }
    ASSERT_ERR(sl_joinset_join_next(set, &j), SL_EEMPTY);
    for (int i = 0; i < 3; i++)
        sl_cancel_drop(a[i].tok);

    /* Queued path: every task ends before anyone joins. */
    reset_counters();
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(sl_cancel_new(&a[i].tok));
        a[i].v = 10 + i;
        ASSERT_OK(sl_joinset_spawn(set, wait_tok, &a[i], NULL));
    }
    wait_started(3);
    const int order2[3] = {1, 2, 0};
    for (int k = 0; k < 3; k++) {
        sl_cancel_trigger(a[order2[k]].tok);
        wait_finished(k + 1);
    }
    /* A task counts as finished before its on_done(): give the last one a moment. */
    ASSERT_OK(sl_sleep(2 * SL_MSEC));
    for (int k = 0; k < 3; k++) {
        ASSERT_OK(sl_joinset_join_next(set, &j));
        ASSERT_EQ((intptr_t)j.value, 10 + order2[k]);
    }
    ASSERT_ERR(sl_joinset_join_next(set, &j), SL_EEMPTY);
    for (int i = 0; i < 3; i++)
        sl_cancel_drop(a[i].tok);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(js02_join_next_completion_order)
{
    test_run(1, main_js02, NULL);
}

/* ---- A task's end wakes its joiner at the back of the run queue ---- */

/* One worker, four tasks queued before the joiner waits. The first task's end wakes the joiner,
 * which runs after the three tasks queued before it (Tokio's current_thread does the same): it
 * then finds every result there and takes them without waiting again. Woken into runnext, it
 * ran right after the first task, with one task finished. Both joins, a JoinSet's join_next and
 * sl_task_join, behave alike. */
static void *main_end_wakes_at_back(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    for (int i = 0; i < 4; i++)
        ASSERT_OK(sl_joinset_spawn(set, ret_arg, (void *)(intptr_t)i, NULL));
    sl_join_t j;
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ(atomic_load(&finished), 4);
    ASSERT_EQ((intptr_t)j.value, 0);
    for (int i = 1; i < 4; i++) {
        ASSERT_EQ(sl_joinset_try_join_next(set, &j), 0); /* there already: no wait */
        ASSERT_EQ((intptr_t)j.value, i);
    }
    sl_joinset_free(set);

    reset_counters();
    sl_task_t *t[4];
    for (int i = 0; i < 4; i++)
        ASSERT_OK(sl_task_spawn(ret_arg, (void *)(intptr_t)i, &t[i]));
    ASSERT_OK(sl_task_join(t[0], &j));
    ASSERT_EQ(atomic_load(&finished), 4);
    for (int i = 1; i < 4; i++)
        ASSERT_OK(sl_task_join(t[i], NULL));
    return NULL;
}

SL_TEST(task_end_wakes_joiner_at_back_of_queue)
{
    test_run(1, main_end_wakes_at_back, NULL);
}

/* ---- JS-03: panicked and aborted results carry status, message and id ---- */

static void *main_js03(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    uint64_t pid, sid;
    ASSERT_OK(sl_joinset_spawn(set, panicker, (void *)(intptr_t)7, &pid));
    sl_join_t j;
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ(j.status, SL_TASK_PANICKED);
    ASSERT_STR_EQ(j.message, "task 7 failed");
    ASSERT_EQ_U(j.id, pid);
    ASSERT_NULL(j.value);

    ASSERT_OK(sl_joinset_spawn(set, sleeper, NULL, &sid));
    wait_started(1);
    ASSERT_OK(sl_joinset_abort(set, sid));
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    ASSERT_EQ_U(j.id, sid);
    ASSERT_EQ(j.message[0], 0);

    /* The same outcomes when nobody waits as the tasks end: they are kept in the set's entries
     * (a panicked task's message with its handle) until joined, in completion order. */
    uint64_t p2, r2;
    ASSERT_OK(sl_joinset_spawn(set, panicker, (void *)(intptr_t)8, &p2));
    ASSERT_OK(sl_sleep(2 * SL_MSEC)); /* it runs and ends meanwhile */
    ASSERT_OK(sl_joinset_spawn(set, ret_arg, (void *)(intptr_t)9, &r2));
    ASSERT_OK(sl_sleep(2 * SL_MSEC));
    ASSERT_EQ(sl_joinset_len(set), 2);
    ASSERT_OK(sl_joinset_abort(set, r2)); /* ended (most likely), not joined: still found */
    for (int k = 0; k < 2; k++) {         /* on a loaded machine the order may differ */
        ASSERT_OK(sl_joinset_join_next(set, &j));
        if (j.id == p2) {
            ASSERT_EQ(j.status, SL_TASK_PANICKED);
            ASSERT_STR_EQ(j.message, "task 8 failed");
        } else {
            ASSERT_EQ_U(j.id, r2);
            /* returned before the abort, or cancelled by it if it had not started yet */
            ASSERT(j.status == SL_TASK_RETURNED || j.status == SL_TASK_CANCELLED);
            if (j.status == SL_TASK_RETURNED)
                ASSERT_EQ((intptr_t)j.value, 9);
            ASSERT_EQ(j.message[0], 0);
        }
    }
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(js03_panic_and_cancel_results)
{
    test_run(1, main_js03, NULL);
    test_run(2, main_js03, NULL);
}

/* ---- JS-04: abort is a request; finished tasks are unaffected; twice = once ---- */

static void *main_js04(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    uint64_t id;
    /* Aborting a finished task has no effect. */
    ASSERT_OK(sl_joinset_spawn(set, ret_arg, (void *)(intptr_t)3, &id));
    wait_finished(1);
    ASSERT_OK(sl_sleep(SL_MSEC));
    ASSERT_OK(sl_joinset_abort(set, id));
    sl_join_t j;
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ(j.status, SL_TASK_RETURNED);
    ASSERT_EQ((intptr_t)j.value, 3);
    ASSERT_ERR(sl_joinset_abort(set, id), SL_ENOENT);

    /* Twice is the same as once. */
    int res = 1;
    ASSERT_OK(sl_joinset_spawn(set, sleeper, &res, &id));
    wait_started(1);
    ASSERT_OK(sl_joinset_abort(set, id));
    ASSERT_OK(sl_joinset_abort(set, id));
    ASSERT_EQ(sl_joinset_len(set), 1);
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    ASSERT_EQ(res, SL_ECANCELED);
    /* Documented difference: the task returned after the abort reached its wait; the runtime
     * reports CANCELLED, keeping its return value. */
    ASSERT_EQ((intptr_t)j.value, 77);
    ASSERT_ERR(sl_joinset_join_next(set, &j), SL_EEMPTY);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(js04_abort_is_a_request)
{
    test_run(1, main_js04, NULL);
}

/* ---- abort by id of a task that has ended but whose entry the set has not absorbed ----
 * On one worker the task has ended entirely when the spawner runs again: its entry sits on
 * the set's completed stack until a join_next drains it. On two workers it may still be
 * ending on the other worker, or ended and on its way. Either way the abort finds it (0), does
 * nothing to it, and join_next reports what it returned. */

static void *main_abort_ended(void *arg)
{
    int on_other = (int)(intptr_t)arg;
    for (int round = 0; round < 50; round++) {
        reset_counters();
        sl_joinset_t *set;
        ASSERT_OK(sl_joinset_new(&set));
        uint64_t id;
        sl_spawn_opts_t so;
        memset(&so, 0, sizeof so);
        so.use_worker = on_other;
        so.worker = 1;
        ASSERT_OK(sl_joinset_spawn_ex(set, &so, ret_arg, (void *)(intptr_t)(round + 5), &id));
        wait_finished(1);
        for (int k = 0; k < round % 4; k++)
            ASSERT_OK(sl_task_yield());
        ASSERT_OK(sl_joinset_abort(set, id));
        ASSERT_EQ(sl_joinset_len(set), 1);
        sl_join_t j;
        ASSERT_OK(sl_joinset_join_next(set, &j));
        ASSERT_EQ(j.status, SL_TASK_RETURNED);
        ASSERT_EQ((intptr_t)j.value, round + 5);
        ASSERT_EQ_U(j.id, id);
        ASSERT_ERR(sl_joinset_abort(set, id), SL_ENOENT);
        sl_joinset_free(set);
    }
    return NULL;
}

SL_TEST(abort_of_ended_unabsorbed_task)
{
    test_run(1, main_abort_ended, (void *)(intptr_t)0);
}

SL_TEST(abort_of_ended_unabsorbed_task_2workers)
{
    test_run(2, main_abort_ended, (void *)(intptr_t)1);
}

/* ---- JS-05: abort_all keeps the tasks; finished ones still report their own outcome ---- */

static void *main_js05(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    for (int i = 0; i < 2; i++)
        ASSERT_OK(sl_joinset_spawn(set, ret_arg, (void *)(intptr_t)(i + 1), NULL));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(sl_joinset_spawn(set, sleeper, NULL, NULL));
    wait_finished(2);
    wait_started(3);
    ASSERT_OK(sl_sleep(SL_MSEC));
    sl_joinset_abort_all(set);
    ASSERT_EQ(sl_joinset_len(set), 5);
    int ret = 0, can = 0;
    sl_join_t j;
    while (sl_joinset_join_next(set, &j) == 0) {
        if (j.status == SL_TASK_RETURNED)
            ret++;
        else if (j.status == SL_TASK_CANCELLED)
            can++;
    }
    ASSERT_EQ(ret, 2);
    ASSERT_EQ(can, 3);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(js05_abort_all_keeps_tasks)
{
    test_run(1, main_js05, NULL);
}

/* abort_all aborts in batches of 64 that share one barrier (a membarrier with two workers):
 * 300 tasks parked on both workers all end cancelled, and aborting one id among them (past the
 * first batch) ends that one only. */
#define MANY_ABORT 300

static void *main_abort_batches(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    uint64_t ids[MANY_ABORT];
    for (int i = 0; i < MANY_ABORT; i++)
        ASSERT_OK(sl_joinset_spawn(set, sleeper, NULL, &ids[i]));
    wait_started(MANY_ABORT);
    ASSERT_OK(sl_joinset_abort(set, ids[200]));
    sl_join_t j;
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ(j.id, ids[200]);
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    ASSERT_EQ(sl_joinset_len(set), MANY_ABORT - 1);
    sl_joinset_abort_all(set);
    int can = 0;
    while (sl_joinset_join_next(set, &j) == 0) {
        ASSERT_EQ(j.status, SL_TASK_CANCELLED);
        ASSERT_NE(j.id, ids[200]);
        can++;
    }
    ASSERT_EQ(can, MANY_ABORT - 1);
    ASSERT_EQ(atomic_load(&cleaned), MANY_ABORT);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(abort_all_batches_2workers)
{
    test_run(2, main_abort_batches, NULL);
}

/* ---- JS-06: shutdown = abort_all + drain, even when cancelled or timed out ---- */

static void *main_js06(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    for (int i = 0; i < 10; i++)
        ASSERT_OK(sl_joinset_spawn(set, sleeper, NULL, NULL));
    ASSERT_OK(sl_joinset_spawn(set, panicker, (void *)(intptr_t)1, NULL));
    ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL));
    wait_started(10);
    /* Inside an expired timeout scope and cancelled: shutdown still completes. */
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_now() - 1);
    sl_task_abort(sl_task_self());
    sl_joinset_shutdown(set);
    ASSERT(sl_joinset_is_empty(set));
    ASSERT_EQ(atomic_load(&cleaned), 10);
    ASSERT_ERR(sl_sleep(SL_MSEC), SL_ECANCELED); /* still cancelled afterwards */
    (void)sl_timeout_exit(&to);
    int old = sl_task_shield(1);
    sl_joinset_free(set);
    sl_task_shield(old);
    return NULL;
}

SL_TEST(js06_shutdown)
{
    /* The main task cancels itself: sl_run reports its ending as usual. */
    sl_runtime_opts_t o = opts(2, 0);
    (void)sl_run(&o, main_js06, NULL, NULL);
    ASSERT_EQ(test_alloc_live(), 0);
}

/* ---- JS-07: detach_all removes without aborting ---- */

static void *main_js07(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    tokarg_t a = {NULL, 1};
    ASSERT_OK(sl_cancel_new(&a.tok));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(sl_joinset_spawn(set, wait_tok, &a, NULL));
    ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL));
    wait_started(3);
    wait_finished(1);
    ASSERT_OK(sl_sleep(SL_MSEC));
    sl_joinset_detach_all(set);
    ASSERT_EQ(sl_joinset_len(set), 0);
    ASSERT_ERR(sl_joinset_try_join_next(set, NULL), SL_EEMPTY);
    ASSERT_ERR(sl_joinset_join_next(set, NULL), SL_EEMPTY);
    /* Free while detached tasks still run: they keep running, the set's memory outlives them. */
    sl_joinset_free(set);
    sl_cancel_trigger(a.tok);
    wait_finished(4);
    ASSERT_OK(sl_sleep(2 * SL_MSEC));
    sl_cancel_drop(a.tok);
    return NULL;
}

SL_TEST(js07_detach_all)
{
    test_run(1, main_js07, NULL);
    test_run(2, main_js07, NULL);
}

/* ---- JS-08: freeing the set aborts (and here also joins) what is left ---- */

static void *main_js08(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    int res[4] = {1, 1, 1, 1};
    for (int i = 0; i < 4; i++)
        ASSERT_OK(sl_joinset_spawn(set, sleeper, &res[i], NULL));
    wait_started(4);
    sl_joinset_free(set);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(res[i], SL_ECANCELED);
    return NULL;
}

SL_TEST(js08_free_aborts)
{
    test_run(1, main_js08, NULL);
    test_run(2, main_js08, NULL);
}

/* ---- JS-09: try_join_next never waits, ignores the budget ---- */

static void *main_js09(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    ASSERT_ERR(sl_joinset_try_join_next(set, NULL), SL_EEMPTY);
    tokarg_t a = {NULL, 9};
    ASSERT_OK(sl_cancel_new(&a.tok));
    ASSERT_OK(sl_joinset_spawn(set, wait_tok, &a, NULL));
    wait_started(1);
    sl_join_t j;
    ASSERT_ERR(sl_joinset_try_join_next(set, &j), SL_EAGAIN);
    sl_cancel_trigger(a.tok);
    wait_finished(1);
    ASSERT_OK(sl_sleep(SL_MSEC));
    ASSERT_OK(sl_joinset_try_join_next(set, &j));
    ASSERT_EQ((intptr_t)j.value, 9);
    ASSERT_ERR(sl_joinset_try_join_next(set, &j), SL_EEMPTY);

    /* 64 ready results under a budget of 4: no forced yield. */
    for (int i = 0; i < 64; i++)
        ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL));
    wait_finished(65);
    ASSERT_OK(sl_sleep(SL_MSEC));
    sl_runtime_stats_t st0, st1;
    sl_runtime_stats(sl_runtime_current(), &st0);
    for (int i = 0; i < 64; i++)
        ASSERT_OK(sl_joinset_try_join_next(set, NULL));
    sl_runtime_stats(sl_runtime_current(), &st1);
    ASSERT_EQ_U(st1.budget_yields, st0.budget_yields);
    sl_cancel_drop(a.tok);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(js09_try_join_next)
{
    run_b(1, 4, main_js09, NULL);
}

/* ---- JS-10: join_all: values in completion order; a failure aborts the rest ---- */

static void *main_js10(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    tokarg_t a[3];
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(sl_cancel_new(&a[i].tok));
        a[i].v = 100 + i;
        ASSERT_OK(sl_joinset_spawn(set, wait_tok, &a[i], NULL));
    }
    wait_started(3);
    const int order[3] = {1, 2, 0};
    for (int k = 0; k < 3; k++) {
        sl_cancel_trigger(a[order[k]].tok);
        wait_finished(k + 1);
    }
    void *vals[3];
    size_t n = 99;
    ASSERT_ERR(sl_joinset_join_all(set, vals, 2, &n, NULL), SL_EINVAL);
    ASSERT_EQ(n, 0);
    ASSERT_OK(sl_joinset_join_all(set, vals, 3, &n, NULL));
    ASSERT_EQ(n, 3);
    for (int k = 0; k < 3; k++)
        ASSERT_EQ((intptr_t)vals[k], 100 + order[k]);
    for (int i = 0; i < 3; i++)
        sl_cancel_drop(a[i].tok);

    /* A panic: reported, the others aborted and joined. */
    reset_counters();
    for (int i = 0; i < 4; i++)
        ASSERT_OK(sl_joinset_spawn(set, sleeper, NULL, NULL));
    ASSERT_OK(sl_joinset_spawn(set, panicker, (void *)(intptr_t)4, NULL));
    wait_started(4);
    sl_join_t failed;
    ASSERT_ERR(sl_joinset_join_all(set, vals, 5, &n, &failed), SL_EPANIC);
    ASSERT_EQ(failed.status, SL_TASK_PANICKED);
    ASSERT_STR_EQ(failed.message, "task 4 failed");
    ASSERT(sl_joinset_is_empty(set));
    ASSERT_EQ(atomic_load(&cleaned), 4);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(js10_join_all)
{
    test_run(1, main_js10, NULL);
}

/* ---- JS-11: join_next consumes the cooperative budget ---- */

static void *main_js11(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    for (int i = 0; i < 64; i++)
        ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL));
    wait_finished(64);
    ASSERT_OK(sl_sleep(SL_MSEC));
    sl_runtime_stats_t st0, st1;
    sl_runtime_stats(sl_runtime_current(), &st0);
    for (int i = 0; i < 64; i++)
        ASSERT_OK(sl_joinset_join_next(set, NULL));
    sl_runtime_stats(sl_runtime_current(), &st1);
    ASSERT_GE_U(st1.budget_yields - st0.budget_yields, 8);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(js11_join_next_coop_budget)
{
    run_b(1, 4, main_js11, NULL);
}

/* ---- JS-12: the runtime shutting down cancels the set's tasks ---- */

static atomic_int js12_status = -1, js12_ready;

static void *js12_holder(void *arg)
{
    (void)arg;
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    ASSERT_OK(sl_joinset_spawn(set, sleeper, NULL, NULL));
    atomic_store(&js12_ready, 1);
    sl_join_t j;
    /* Shutdown aborts both this task and the sleeper, in either order. */
    int r = sl_joinset_join_next(set, &j);
    int old = sl_task_shield(1);
    if (r == SL_ECANCELED)
        r = sl_joinset_join_next(set, &j);
    ASSERT_OK(r);
    atomic_store(&js12_status, (int)j.status);
    sl_joinset_free(set);
    sl_task_shield(old);
    return NULL;
}

static void *main_js12(void *arg)
{
    (void)arg;
    reset_counters();
    ASSERT_OK(sl_task_spawn(js12_holder, NULL, NULL));
    while (!atomic_load(&js12_ready))
        ASSERT_OK(sl_task_yield());
    wait_started(1);
    ASSERT_OK(sl_sleep(SL_MSEC));
    return NULL; /* the runtime shuts down and aborts every task */
}

SL_TEST(js12_runtime_shutdown_cancels)
{
    test_run(2, main_js12, NULL);
    ASSERT_EQ(atomic_load(&js12_status), SL_TASK_CANCELLED);
}

/* ---- JS-13: outputs of finished tasks stay in the set until joined ---- */

static void *main_js13(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL)); /* warm up: one entry */
    ASSERT_OK(sl_joinset_join_next(set, NULL));
    ASSERT_OK(sl_sleep(SL_MSEC)); /* warm up the timer heap too */
    long live0 = test_alloc_live();
    ASSERT_OK(sl_joinset_spawn(set, ret_arg, (void *)(intptr_t)42, NULL));
    wait_finished(2);
    ASSERT_OK(sl_sleep(2 * SL_MSEC));
    ASSERT_EQ(sl_joinset_len(set), 1);
    /* The output is kept for the joiner in the set's entry (the one the warm-up left on the
     * free list); the ended task itself has already been freed by its worker. */
    ASSERT_EQ(test_alloc_live(), live0);
    sl_join_t j;
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ((intptr_t)j.value, 42);
    ASSERT_EQ(j.status, SL_TASK_RETURNED);
    ASSERT_EQ(test_alloc_live(), live0);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(js13_results_kept_until_joined)
{
    test_run(1, main_js13, NULL);
}

/* ---- a loop of join_next over ready results lets other tasks run ---- */

static atomic_int ticks;
static atomic_int stop_ticker;

static void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_ticker)) {
        atomic_fetch_add(&ticks, 1);
        if (sl_task_yield())
            break;
    }
    return NULL;
}

static void *main_x01(void *arg)
{
    (void)arg;
    reset_counters();
    atomic_store(&stop_ticker, 0);
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL));
    wait_finished(1000);
    ASSERT_OK(sl_sleep(SL_MSEC));
    sl_task_t *tk;
    ASSERT_OK(sl_task_spawn(ticker, NULL, &tk));
    ASSERT_OK(sl_task_yield());
    int t0 = atomic_load(&ticks);
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(sl_joinset_join_next(set, NULL));
    ASSERT_GE(atomic_load(&ticks) - t0, 5); /* 1000 joins, budget 128: about 7 yields */
    atomic_store(&stop_ticker, 1);
    ASSERT_OK(sl_task_join(tk, NULL));
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(x01_coop_budget)
{
    test_run(1, main_x01, NULL);
}

/* ---- the non-waiting calls work outside a task ---- */

typedef struct {
    sl_joinset_t *set;
    int r_try, r_try2;
    size_t len;
    intptr_t v;
} x02_t;

static void *x02_thread(void *arg)
{
    x02_t *x = arg;
    x->len = sl_joinset_len(x->set);
    sl_join_t j;
    x->r_try = sl_joinset_try_join_next(x->set, &j);
    x->v = (intptr_t)j.value;
    x->r_try2 = sl_joinset_try_join_next(x->set, &j);
    return NULL;
}

static void *main_x02(void *arg)
{
    (void)arg;
    reset_counters();
    x02_t x = {0};
    ASSERT_OK(sl_joinset_new(&x.set));
    ASSERT_OK(sl_joinset_spawn(x.set, ret_arg, (void *)(intptr_t)11, NULL));
    wait_finished(1);
    ASSERT_OK(sl_sleep(SL_MSEC));
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, x02_thread, &x), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0); /* blocks this worker briefly: fine in a test */
    ASSERT_EQ(x.len, 1);
    ASSERT_OK(x.r_try);
    ASSERT_EQ(x.v, 11);
    ASSERT_ERR(x.r_try2, SL_EEMPTY);
    sl_joinset_free(x.set);
    return NULL;
}

SL_TEST(x02_try_forms_outside_tasks)
{
    test_run(1, main_x02, NULL);
}

/* ---- what a task wrote is visible to whoever joins it (other worker) ---- */

#define X03_N 64

static void *x03_writer(void *arg)
{
    int *buf = arg;
    for (int i = 0; i < X03_N; i++)
        buf[i] = i * 3;
    return buf;
}

static void *main_x03(void *arg)
{
    (void)arg;
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    static int bufs[16][X03_N];
    sl_spawn_opts_t so = {0};
    so.use_worker = 1;
    for (int i = 0; i < 16; i++) {
        so.worker = i % 2;
        ASSERT_OK(sl_joinset_spawn_ex(set, &so, x03_writer, bufs[i], NULL));
    }
    sl_join_t j;
    while (sl_joinset_join_next(set, &j) == 0) {
        int *buf = j.value;
        for (int i = 0; i < X03_N; i++)
            ASSERT_EQ(buf[i], i * 3);
    }
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(x03_memory_ordering)
{
    test_run(2, main_x03, NULL);
}

/* ---- Failure isolation: one panic, the others complete ---- */

static void *maybe_panic(void *arg)
{
    intptr_t i = (intptr_t)arg;
    sl_task_yield();
    if (i == 3)
        sl_panic("task %d failed", (int)i);
    return (void *)(i * 10);
}

static void *main_failure_isolation(void *arg)
{
    (void)arg;
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    uint64_t ids[8];
    for (intptr_t i = 0; i < 8; i++)
        ASSERT_OK(sl_joinset_spawn(set, maybe_panic, (void *)i, &ids[i]));
    int panicked = 0, returned = 0;
    long sum = 0;
    sl_join_t j;
    while (sl_joinset_join_next(set, &j) == 0) {
        if (j.status == SL_TASK_PANICKED) {
            panicked++;
            ASSERT_STR_EQ(j.message, "task 3 failed");
            ASSERT_EQ_U(j.id, ids[3]);
        } else {
            ASSERT_EQ(j.status, SL_TASK_RETURNED);
            returned++;
            sum += (long)(intptr_t)j.value;
        }
    }
    ASSERT_EQ(panicked, 1);
    ASSERT_EQ(returned, 7);
    ASSERT_EQ(sum, (0 + 1 + 2 + 4 + 5 + 6 + 7) * 10);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(failure_isolation)
{
    test_run(1, main_failure_isolation, NULL);
    test_run(2, main_failure_isolation, NULL);
}

/* ---- Deterministic free: afterwards every task has ended and cleaned up ---- */

static void *main_free_deterministic(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    const int n = 200;
    for (int i = 0; i < n; i++)
        ASSERT_OK(sl_joinset_spawn(set, sleeper, NULL, NULL));
    wait_started(n);
    /* Also some that finished and some that never started. */
    for (int i = 0; i < 10; i++)
        ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL));
    wait_finished(10);
    for (int i = 0; i < 10; i++)
        ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL));
    sl_joinset_free(set);
    ASSERT_EQ(atomic_load(&cleaned), n);
    return NULL;
}

SL_TEST(free_deterministic)
{
    test_run(1, main_free_deterministic, NULL);
    test_run(2, main_free_deterministic, NULL);
}

/* ---- 2-worker stress: 10,000 tasks in batches ---- */

static void *main_stress(void *arg)
{
    (void)arg;
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    const long n = 10000, batch = 500;
    long sum = 0, joined = 0;
    for (long b = 0; b < n; b += batch) {
        for (long i = b; i < b + batch; i++)
            ASSERT_OK(sl_joinset_spawn(set, (i & 1) ? yield_ret : ret_arg, (void *)i, NULL));
        /* Join half of the batch with try_join_next when possible, the rest waiting. */
        sl_join_t j;
        while (sl_joinset_len(set) > 0) {
            int r =
                (joined & 1) ? sl_joinset_try_join_next(set, &j) : sl_joinset_join_next(set, &j);
            if (r == SL_EAGAIN) {
                ASSERT_OK(sl_task_yield());
                continue;
            }
            ASSERT_OK(r);
            ASSERT_EQ(j.status, SL_TASK_RETURNED);
            sum += (long)(intptr_t)j.value;
            joined++;
        }
    }
    ASSERT_EQ(joined, n);
    ASSERT_EQ(sum, n * (n - 1) / 2);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(stress_2workers)
{
    test_run(2, main_stress, NULL);
}

/* ---- join_next across workers ---- */

static void *on_worker1(void *arg)
{
    ASSERT_OK(sl_sleep(2 * SL_MSEC));
    ASSERT_EQ(sl_worker_index(), 1);
    return arg;
}

static void *main_across(void *arg)
{
    (void)arg;
    ASSERT_EQ(sl_worker_index(), 0);
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    sl_spawn_opts_t so = {0};
    so.use_worker = 1;
    so.worker = 1;
    for (intptr_t i = 0; i < 50; i++)
        ASSERT_OK(sl_joinset_spawn_ex(set, &so, on_worker1, (void *)i, NULL));
    long sum = 0;
    sl_join_t j;
    while (sl_joinset_join_next(set, &j) == 0) {
        ASSERT_EQ(j.status, SL_TASK_RETURNED);
        sum += (long)(intptr_t)j.value;
    }
    ASSERT_EQ(sum, 49 * 50 / 2);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(join_next_across_workers)
{
    test_run(2, main_across, NULL);
}

/* ---- Cancelling a task waiting in join_next loses nothing ---- */

typedef struct {
    sl_joinset_t *set;
    int r;
    sl_join_t j;
} jn_arg_t;

static void *jn_waiter(void *arg)
{
    jn_arg_t *a = arg;
    atomic_fetch_add(&started, 1);
    a->r = sl_joinset_join_next(a->set, &a->j);
    return NULL;
}

static void *main_cancel_join(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    tokarg_t a = {NULL, 5};
    ASSERT_OK(sl_cancel_new(&a.tok));
    ASSERT_OK(sl_joinset_spawn(set, wait_tok, &a, NULL));
    jn_arg_t w = {set, 1, {0}};
    sl_task_t *wt;
    ASSERT_OK(sl_task_spawn(jn_waiter, &w, &wt));
    wait_started(2);
    ASSERT_OK(sl_sleep(SL_MSEC));
    sl_task_abort(wt);
    ASSERT_OK(sl_task_join(wt, NULL));
    ASSERT_ERR(w.r, SL_ECANCELED);
    ASSERT_EQ(sl_joinset_len(set), 1);
    sl_cancel_trigger(a.tok);
    sl_join_t j;
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ((intptr_t)j.value, 5);
    sl_cancel_drop(a.tok);

    /* Race the abort against the task's end, on two workers: exactly one place gets it. */
    for (int it = 0; it < 200; it++) {
        reset_counters();
        ASSERT_OK(sl_cancel_new(&a.tok));
        a.v = it;
        sl_spawn_opts_t so = {0};
        so.use_worker = 1;
        so.worker = 1;
        ASSERT_OK(sl_joinset_spawn_ex(set, &so, wait_tok, &a, NULL));
        w.r = 1;
        ASSERT_OK(sl_task_spawn_ex(&so, jn_waiter, &w, &wt));
        wait_started(2);
        if (it & 1)
            ASSERT_OK(sl_task_yield());
        sl_cancel_trigger(a.tok);
        sl_task_abort(wt);
        ASSERT_OK(sl_task_join(wt, NULL));
        if (w.r == 0) {
            ASSERT_EQ((intptr_t)w.j.value, it);
            ASSERT_EQ(sl_joinset_len(set), 0);
        } else {
            ASSERT_ERR(w.r, SL_ECANCELED);
            ASSERT_EQ(sl_joinset_len(set), 1);
            ASSERT_OK(sl_joinset_join_next(set, &j));
            ASSERT_EQ((intptr_t)j.value, it);
        }
        sl_cancel_drop(a.tok);
    }
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(join_next_cancel_loses_nothing)
{
    test_run(2, main_cancel_join, NULL);
}

/* ---- Deadlines and timeout scopes ---- */

static void *main_timeout(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    ASSERT_ERR(sl_joinset_join_next_until(set, sl_deadline_in(SL_MSEC), NULL), SL_EEMPTY);
    ASSERT_OK(sl_joinset_spawn(set, sleeper, NULL, NULL));
    ASSERT_ERR(sl_joinset_join_next_until(set, sl_deadline_in(2 * SL_MSEC), NULL), SL_ETIMEDOUT);
    ASSERT_EQ(sl_joinset_len(set), 1);
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(2 * SL_MSEC));
    ASSERT_ERR(sl_joinset_join_next(set, NULL), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    ASSERT_EQ(sl_joinset_len(set), 1);
    /* A deadline that is not reached. */
    ASSERT_OK(sl_joinset_spawn(set, ret_arg, (void *)(intptr_t)8, NULL));
    sl_join_t j;
    ASSERT_OK(sl_joinset_join_next_until(set, sl_deadline_in(10 * SL_SEC), &j));
    ASSERT_EQ((intptr_t)j.value, 8);
    sl_joinset_free(set);
    ASSERT_EQ(atomic_load(&cleaned), 1);
    return NULL;
}

SL_TEST(join_next_timeout)
{
    test_run(1, main_timeout, NULL);
}

/* ---- A select clause that loses leaves no trace ---- */

/* Triggers a token from wherever it runs. */
static void *trigger_later(void *arg)
{
    sl_cancel_t *tok = arg;
    sl_cancel_trigger(tok);
    return NULL;
}

static void *main_select(void *arg)
{
    (void)arg;
    reset_counters();
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    sl_clause_t c[2];
    sl_join_t j;
    /* Empty set: the clause completes with SL_EEMPTY. */
    sl_clause_joinset_join_next(&c[0], set, &j);
    sl_clause_sleep_until(&c[1], sl_deadline_in(SL_SEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    ASSERT_ERR(c[0].res, SL_EEMPTY);

    /* The sleep wins over a waiting join_next. */
    ASSERT_OK(sl_joinset_spawn(set, sleeper, NULL, NULL));
    sl_clause_joinset_join_next(&c[0], set, &j);
    sl_clause_sleep_until(&c[1], sl_deadline_in(2 * SL_MSEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 1);
    ASSERT_EQ(sl_joinset_len(set), 1);
    sl_joinset_abort_all(set);
    ASSERT_OK(sl_joinset_join_next(set, &j));
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);

    /* A helper on the other worker triggers the token that both ends the set's task and
     * completes the other clause: whichever clause wins, no result is consumed by the loser. */
    sl_spawn_opts_t so = {0};
    so.use_worker = 1;
    so.worker = 1;
    for (int it = 0; it < 300; it++) {
        reset_counters();
        tokarg_t a = {NULL, it};
        ASSERT_OK(sl_cancel_new(&a.tok));
        ASSERT_OK(sl_joinset_spawn_ex(set, &so, wait_tok, &a, NULL));
        wait_started(1);
        sl_task_t *h;
        ASSERT_OK(sl_task_spawn_ex(&so, trigger_later, a.tok, &h));
        if (it & 2)
            ASSERT_OK(sl_sleep(SL_MSEC / 4));
        sl_clause_joinset_join_next(&c[0], set, &j);
        sl_clause_cancelled(&c[1], a.tok);
        j.value = (void *)(intptr_t)-1;
        int i = sl_select(c, 2, (it & 1) ? SL_SELECT_FAIR : SL_SELECT_BIASED,
                          sl_deadline_in(10 * SL_SEC));
        if (i == 0) {
            ASSERT_OK(c[0].res);
            ASSERT_EQ((intptr_t)j.value, it);
            ASSERT_EQ(sl_joinset_len(set), 0);
        } else {
            ASSERT_EQ(i, 1);
            ASSERT_EQ((intptr_t)j.value, -1);
            ASSERT_EQ(sl_joinset_len(set), 1);
            ASSERT_OK(sl_joinset_join_next(set, &j));
            ASSERT_EQ((intptr_t)j.value, it);
        }
        ASSERT_OK(sl_task_join(h, NULL));
        sl_cancel_drop(a.tok);
    }
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(select_loser_leaves_no_trace)
{
    test_run(2, main_select, NULL);
}

/* ---- Allocation: entries and task memory are recycled; nothing per spawn and join ---- */

static void *main_alloc(void *arg)
{
    (void)arg;
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    const int n = 100;
    for (int i = 0; i < n; i++) /* warm up: n entries */
        ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL));
    while (sl_joinset_join_next(set, NULL) == 0)
        ;
    long a0 = test_alloc_total();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < n; i++)
            ASSERT_OK(sl_joinset_spawn(set, ret_arg, NULL, NULL));
        while (sl_joinset_join_next(set, NULL) == 0)
            ;
    }
    long per_set = test_alloc_total() - a0;
    /* The same work with plain spawn + join. */
    sl_task_t *ts[100];
    a0 = test_alloc_total();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < n; i++)
            ASSERT_OK(sl_task_spawn(ret_arg, NULL, &ts[i]));
        for (int i = 0; i < n; i++)
            ASSERT_OK(sl_task_join(ts[i], NULL));
    }
    long per_plain = test_alloc_total() - a0;
    ASSERT_EQ(per_set, per_plain);
    /* Nothing at all once warm: the entries are recycled by the set, the tasks' memory by the
     * worker's task cache (n is below its limit). */
    ASSERT_EQ(per_set, 0);
    sl_joinset_free(set);
    return NULL;
}

SL_TEST(alloc_reuses_entries)
{
    test_run(1, main_alloc, NULL);
}

/* ---- tasks ending while the set holds their entry pinned ----
 * on_done() delivers an entry without the set's lock, except when the entry is pinned: by its
 * spawn (the task may run and end on the other worker before sl_joinset_spawn returns) or by an
 * abort using the handle; then the pinner finishes the delivery. Tasks on worker 1 end at once,
 * after a yield, or by panicking, while worker 0 spawns them and aborts them one by one and all
 * together. Every task is joined exactly once, with an outcome that fits what it did; every
 * fourth round detaches everything and frees the set while tasks still run (the last on_done
 * frees the set), and nothing leaks. */

static void *pin_task(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (i % 3 == 1)
        (void)sl_task_yield();
    if (i % 3 == 2) {
        (void)sl_task_yield();
        sl_panic("pin %ld", (long)i);
    }
    return arg;
}

#define PIN_N 48

static void *main_pins(void *arg)
{
    (void)arg;
    sl_spawn_opts_t so = {.use_worker = 1, .worker = 1};
    for (int round = 0; round < 400; round++) {
        sl_joinset_t *set;
        ASSERT_OK(sl_joinset_new(&set));
        uint64_t ids[PIN_N];
        for (intptr_t i = 0; i < PIN_N; i++) {
            ASSERT_OK(sl_joinset_spawn_ex(set, &so, pin_task, (void *)i, &ids[i]));
            if (i > 0 && (round & 1))
                (void)sl_joinset_abort(set, ids[i - 1]);
        }
        if (round % 4 == 3) {
            sl_joinset_detach_all(set);
            sl_joinset_free(set);
            continue;
        }
        if (round % 4 == 2)
            sl_joinset_abort_all(set);
        int seen[PIN_N] = {0};
        sl_join_t j;
        int r, joined = 0;
        while ((r = sl_joinset_join_next(set, &j)) == 0) {
            int k = -1;
            for (int i = 0; i < PIN_N; i++)
                if (ids[i] == j.id)
                    k = i;
            ASSERT_GE(k, 0);
            seen[k]++;
            joined++;
            if (j.status == SL_TASK_PANICKED) {
                ASSERT_EQ(k % 3, 2);
                char want[32];
                snprintf(want, sizeof want, "pin %d", k);
                ASSERT_STR_EQ(j.message, want);
            } else if (j.status == SL_TASK_RETURNED) {
                ASSERT_NE(k % 3, 2);
                ASSERT_EQ((intptr_t)j.value, k);
            } else {
                ASSERT_EQ(j.status, SL_TASK_CANCELLED);
            }
        }
        ASSERT_EQ(r, SL_EEMPTY);
        ASSERT_EQ(joined, PIN_N);
        for (int i = 0; i < PIN_N; i++)
            ASSERT_EQ(seen[i], 1);
        sl_joinset_free(set);
    }
    return NULL;
}

SL_TEST(on_done_races_pins_2workers)
{
    test_run(2, main_pins, NULL);
}
