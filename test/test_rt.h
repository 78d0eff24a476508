/*
 * Runtime scaffolding shared by the test programs: a runtime under the counting allocator
 * that must end with nothing allocated, spawning on a chosen worker, and joins that assert.
 * Include after test.h.
 */
#ifndef SLUICE_TEST_RT_H
#define SLUICE_TEST_RT_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <sluice.h>

#include "test.h"

/* Default options with `workers` workers and the counting allocator. */
static inline sl_runtime_opts_t test_opts(int workers)
{
    sl_runtime_opts_t o;
    sl_runtime_opts_init(&o);
    o.workers = workers;
    o.alloc = test_alloc;
    return o;
}

/* Runs fn(arg) as the main task of a fresh runtime and checks that nothing leaked. */
static inline void test_run(int workers, void *(*fn)(void *), void *arg)
{
    sl_runtime_opts_t o = test_opts(workers);
    ASSERT_OK(sl_run(&o, fn, arg, NULL));
    ASSERT_EQ(test_alloc_live(), 0);
}

/* Spawns fn(arg) on worker `worker`, or on the spawning worker when worker < 0. */
static inline sl_task_t *test_spawn_on(int worker, void *(*fn)(void *), void *arg)
{
    sl_spawn_opts_t so;
    memset(&so, 0, sizeof so);
    so.name = "t";
    so.worker = worker;
    so.use_worker = worker >= 0;
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn_ex(&so, fn, arg, &t));
    return t;
}

/* Keeps the calling thread busy for ns: nothing else runs on its worker meanwhile. */
static inline void test_spin_ns(int64_t ns)
{
    int64_t until = sl_clock() + ns;
    while (sl_clock() < until)
        ;
}

/* Parks counted so far by every worker of the current runtime. */
static inline uint64_t test_parks(void)
{
    sl_runtime_stats_t st;
    sl_runtime_stats(sl_runtime_current(), &st);
    return st.parks;
}

/* Spawns fn(arg) on `worker` (-1: the current one) and returns once the runtime has counted a
 * park since, or *done (if not NULL) is set: when nothing else parks meanwhile, once the new
 * task waits. The caller only yields, so its own waits never count. Deterministic, unlike a
 * sleep that hopes the task got there. */
static inline sl_task_t *test_spawn_until_parked(int worker, void *(*fn)(void *), void *arg,
                                                 _Atomic int *done)
{
    uint64_t base = test_parks();
    sl_task_t *t = test_spawn_on(worker, fn, arg);
    while (test_parks() == base && !(done && atomic_load(done)))
        ASSERT_OK(sl_task_yield());
    return t;
}

/* Joins t and returns its outcome, whatever it was. */
static inline sl_join_t test_join(sl_task_t *t)
{
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    return j;
}

/* Joins t and returns its return value, whatever its status. */
static inline intptr_t test_join_result(sl_task_t *t)
{
    return (intptr_t)test_join(t).value;
}

/* Joins t, asserts that it returned normally, and returns its value. */
static inline intptr_t test_join_value(sl_task_t *t)
{
    sl_join_t j = test_join(t);
    ASSERT_EQ(j.status, SL_TASK_RETURNED);
    return (intptr_t)j.value;
}

/* Joins t and asserts that it returned normally. */
static inline void test_join_ok(sl_task_t *t)
{
    (void)test_join_value(t);
}

/* Aborts from worker 0 raced against wakes on worker 1 (plain claims, src/core/rt.h): spawns
 * waiter(args[i]) for every i < n on worker 1 in a JoinSet, and racer(racer_arg) on worker 1;
 * once *armed reaches n, sets *go and aborts the whole set, then joins every waiter (each must
 * end, woken or aborted: the caller counts which) and the racer. */
static inline void test_abort_race(int n, void *(*waiter)(void *), void **args,
                                   void *(*racer)(void *), void *racer_arg, _Atomic int *armed,
                                   _Atomic int *go)
{
    sl_joinset_t *set;
    ASSERT_OK(sl_joinset_new(&set));
    sl_spawn_opts_t so;
    memset(&so, 0, sizeof so);
    so.worker = 1;
    so.use_worker = 1;
    for (int i = 0; i < n; i++)
        ASSERT_OK(sl_joinset_spawn_ex(set, &so, waiter, args[i], NULL));
    sl_task_t *rt = test_spawn_on(1, racer, racer_arg);
    while (atomic_load(armed) < n)
        ASSERT_OK(sl_task_yield());
    atomic_store(go, 1);
    sl_joinset_abort_all(set);
    sl_join_t j;
    int joined = 0;
    while (sl_joinset_join_next(set, &j) == 0)
        joined++;
    ASSERT_EQ(joined, n);
    sl_joinset_free(set);
    test_join_ok(rt);
}

#endif /* SLUICE_TEST_RT_H */
