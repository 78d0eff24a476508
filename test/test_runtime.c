/* Runtime: cross-worker ping-pong, 100 tasks on 2 workers, blocking pool, stack overflow,
 * stealing, allocator hook and fault injection. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sluice.h>

#include "core/rt.h"
#include "coro/stack.h"

#include "test.h"
#include "test_rt.h"

/* ---- ping-pong across two workers, with tokens as one-shot signals ---- */

#define ROUNDS 2000

typedef struct pp {
    sl_cancel_t *ping[ROUNDS];
    sl_cancel_t *pong[ROUNDS];
    int worker_seen[2];
} pp_t;

static void *ponger(void *arg)
{
    pp_t *p = arg;
    p->worker_seen[1] = sl_worker_index();
    for (int i = 0; i < ROUNDS; i++) {
        ASSERT_OK(sl_cancel_wait(p->ping[i]));
        sl_cancel_trigger(p->pong[i]);
    }
    return NULL;
}

static void *main_pingpong(void *arg)
{
    (void)arg;
    pp_t *p = sl_malloc(sizeof *p);
    for (int i = 0; i < ROUNDS; i++) {
        ASSERT_OK(sl_cancel_new(&p->ping[i]));
        ASSERT_OK(sl_cancel_new(&p->pong[i]));
    }
    p->worker_seen[0] = sl_worker_index();
    sl_spawn_opts_t so = {.name = "ponger", .worker = 1, .use_worker = 1};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn_ex(&so, ponger, p, &t));
    for (int i = 0; i < ROUNDS; i++) {
        sl_cancel_trigger(p->ping[i]);
        ASSERT_OK(sl_cancel_wait(p->pong[i]));
    }
    ASSERT_OK(sl_task_join(t, NULL));
    ASSERT_EQ(p->worker_seen[0], 0);
    ASSERT_EQ(p->worker_seen[1], 1);
    for (int i = 0; i < ROUNDS; i++) {
        sl_cancel_drop(p->ping[i]);
        sl_cancel_drop(p->pong[i]);
    }
    sl_free(p, sizeof *p);
    return NULL;
}

SL_TEST(pingpong_two_workers)
{
    test_run(2, main_pingpong, NULL);
}

/* ---- 100 tasks on 2 workers: spawn, yield, sleep, abort, join (the TSan workload) ---- */

static long counter;

static void *busy(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 50; i++) {
        __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        if (i % 7 == id % 7)
            ASSERT_OK(sl_sleep(SL_USEC * (id % 5)));
        else
            ASSERT_OK(sl_task_yield());
    }
    return (void *)(intptr_t)id;
}

static void *main_hundred(void *arg)
{
    (void)arg;
    counter = 0;
    sl_task_t *t[100];
    for (int i = 0; i < 100; i++)
        ASSERT_OK(sl_task_spawn(busy, (void *)(intptr_t)i, &t[i]));
    long sum = 0;
    for (int i = 0; i < 100; i++) {
        sl_join_t j;
        ASSERT_OK(sl_task_join(t[i], &j));
        ASSERT_EQ(j.status, SL_TASK_RETURNED);
        sum += (intptr_t)j.value;
    }
    ASSERT_EQ(sum, 99 * 100 / 2);
    ASSERT_EQ(__atomic_load_n(&counter, __ATOMIC_RELAXED), 100 * 50);
    return NULL;
}

SL_TEST(hundred_tasks_two_workers)
{
    test_run(2, main_hundred, NULL);
}

/* ---- stealing: a worker with nothing to do takes unstarted tasks ---- */

static int ran_on[2];

static void *note_worker(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&ran_on[sl_worker_index()], 1, __ATOMIC_RELAXED);
    /* Busy for a moment so that one worker alone would lag behind. */
    test_spin_ns(200 * SL_USEC);
    return NULL;
}

static void *main_steal(void *arg)
{
    (void)arg;
    ran_on[0] = ran_on[1] = 0;
    sl_task_t *t[400];
    for (int i = 0; i < 400; i++)
        ASSERT_OK(sl_task_spawn(note_worker, NULL, &t[i]));
    for (int i = 0; i < 400; i++)
        ASSERT_OK(sl_task_join(t[i], NULL));
    ASSERT_EQ(ran_on[0] + ran_on[1], 400);
    ASSERT_GT(ran_on[1], 0);
    sl_runtime_stats_t st;
    sl_runtime_stats(sl_runtime_current(), &st);
    ASSERT_GT_U(st.steals, 0);
    return NULL;
}

SL_TEST(idle_worker_steals)
{
    test_run(2, main_steal, NULL);
}

/* ---- steal delay: tasks started promptly by their spawner's worker stay there ---- */

static void *quick_task(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)sl_worker_index();
}

/* Stays busy on this worker, so that it starts none of its queued tasks, until the runtime has
 * counted more steals than `before` or `within` has passed; returns the count of steals. */
static uint64_t busy_until_stolen(uint64_t before, int64_t within, int64_t step)
{
    sl_runtime_stats_t st;
    int64_t give_up = sl_clock() + within;
    do {
        test_spin_ns(step);
        sl_runtime_stats(sl_runtime_current(), &st);
    } while (st.steals == before && sl_clock() < give_up);
    return st.steals;
}

/* Joins n quick_task tasks; returns how many of them ran on worker 1. */
static int join_count_on_other(sl_task_t **t, int n)
{
    int on_other = 0;
    for (int i = 0; i < n; i++) {
        sl_join_t j;
        ASSERT_OK(sl_task_join(t[i], &j));
        on_other += (intptr_t)j.value == 1;
    }
    return on_other;
}

/* Spawns n quick tasks, stays busy for busy_ns, and checks that none was stolen: each ran on
 * this worker (worker 0), once this task let them. */
static void spawn_none_stolen(int n, int64_t busy_ns)
{
    sl_runtime_stats_t before, after;
    sl_runtime_stats(sl_runtime_current(), &before);
    sl_task_t *t[64];
    ASSERT_LE(n, 64);
    for (int i = 0; i < n; i++)
        ASSERT_OK(sl_task_spawn(quick_task, NULL, &t[i]));
    test_spin_ns(busy_ns);
    ASSERT_EQ(join_count_on_other(t, n), 0);
    sl_runtime_stats(sl_runtime_current(), &after);
    ASSERT_EQ(after.steals, before.steals);
}

static void *main_no_steal_young(void *arg)
{
    (void)arg;
    /* The other worker is idle and watches this worker's queue all along, but no task gets
     * old enough (the delay is a minute) to be taken. */
    spawn_none_stolen(50, 5 * SL_MSEC);
    return NULL;
}

/* Spawns n quick tasks and stays busy, looking every step, until some are stolen or `within`
 * has passed; checks that some were, and ran on worker 1. */
static void spawn_some_stolen(int n, int64_t within, int64_t step)
{
    sl_runtime_stats_t before;
    sl_runtime_stats(sl_runtime_current(), &before);
    sl_task_t *t[64];
    ASSERT_LE(n, 64);
    for (int i = 0; i < n; i++)
        ASSERT_OK(sl_task_spawn(quick_task, NULL, &t[i]));
    ASSERT_GT_U(busy_until_stolen(before.steals, within, step), before.steals);
    ASSERT_GT(join_count_on_other(t, n), 0);
}

static void *main_steal_at_once(void *arg)
{
    (void)arg;
    /* Without a delay the idle worker takes some of them while this one is busy. */
    spawn_some_stolen(50, 10 * SL_SEC, 100 * SL_USEC);
    return NULL;
}

SL_TEST(steal_delay)
{
    sl_runtime_opts_t o = test_opts(2);
    o.steal_delay_ns = 60 * SL_SEC;
    ASSERT_OK(sl_run(&o, main_no_steal_young, NULL, NULL));
    /* The longest delay there is: capped (SL__STEAL_WAIT_MAX), so that a spawn time plus it, or
     * plus 25 times it for a short queue, does not overflow (UBSan would stop here). */
    o.steal_delay_ns = INT64_MAX;
    ASSERT_OK(sl_run(&o, main_no_steal_young, NULL, NULL));
    o.steal_delay_ns = -1;
    ASSERT_OK(sl_run(&o, main_steal_at_once, NULL, NULL));
    o.steal_delay_ns = -2;
    sl_runtime_t *rt;
    ASSERT_ERR(sl_runtime_new(&o, &rt), SL_EINVAL);
    ASSERT_EQ(test_alloc_live(), 0);
}

/* ---- a short queue waits longer: a few tasks spawned together stay together ----
 * With a delay of 40 ms, fewer than 16 unstarted tasks wait 25 times that (1 s): eight tasks
 * left waiting for 150 ms while their worker is busy are not taken, though they are well past
 * the plain delay. Forty tasks are a long queue, and are taken after the plain delay: the
 * check gives up at 800 ms, before the short queue's wait would have let them go. Both
 * margins are the better part of a second, which a loaded machine does not take away. */

static void *main_short_queue_waits(void *arg)
{
    (void)arg;
    spawn_none_stolen(8, 150 * SL_MSEC);
    spawn_some_stolen(40, 800 * SL_MSEC, SL_MSEC);
    return NULL;
}

SL_TEST(steal_waits_longer_for_a_short_queue)
{
    sl_runtime_opts_t o = test_opts(2);
    o.steal_delay_ns = 40 * SL_MSEC;
    ASSERT_OK(sl_run(&o, main_short_queue_waits, NULL, NULL));
    ASSERT_EQ(test_alloc_live(), 0);
}

/* ---- a thief that takes half while the spawner keeps spawning ----
 * steal() copies the older half of the victim's fresh queue (at most STEAL_MAX) into the
 * thief's. Worker 1 is held busy while worker 0's queue grows, then let go while the spawner
 * keeps spawning; at three quarters the spawner (which never yields, so worker 0 starts
 * nothing meanwhile) waits until worker 1 has stolen, however loaded the machine, then spawns
 * the rest behind what was taken. Every task must run exactly once, and each worker must start
 * the tasks it got in spawn order (stolen tasks are older than anything pushed since, and are
 * never stolen back behind younger ones). */

#define GB_N 6000

static int gb_order[2][GB_N]; /* spawn indices, in the order each worker started them */
static int gb_count[2];       /* only the worker itself writes its own entry */
static unsigned char gb_ran[GB_N];
static atomic_int gb_go;

static void *gb_task(void *arg)
{
    int i = (int)(intptr_t)arg, w = sl_worker_index();
    gb_order[w][gb_count[w]++] = i;
    __atomic_add_fetch(&gb_ran[i], 1, __ATOMIC_RELAXED);
    return NULL;
}

static void *gb_hold(void *arg)
{
    (void)arg;
    while (!atomic_load(&gb_go))
        ;
    return NULL;
}

static void *main_give_back(void *arg)
{
    (void)arg;
    for (int round = 0; round < 3; round++) {
        memset(gb_ran, 0, sizeof gb_ran);
        gb_count[0] = gb_count[1] = 0;
        atomic_store(&gb_go, 0);
        sl_spawn_opts_t o = {.use_worker = 1, .worker = 1};
        sl_task_t *hold;
        ASSERT_OK(sl_task_spawn_ex(&o, gb_hold, NULL, &hold));
        sl_joinset_t *set;
        ASSERT_OK(sl_joinset_new(&set));
        sl_runtime_stats_t st0, st;
        sl_runtime_stats(sl_runtime_current(), &st0);
        for (int i = 0; i < GB_N; i++) {
            if (i == GB_N / 2)
                atomic_store(&gb_go, 1);
            if (i == GB_N * 3 / 4)
                do
                    sl_runtime_stats(sl_runtime_current(), &st);
                while (st.steals == st0.steals);
            ASSERT_OK(sl_joinset_spawn(set, gb_task, (void *)(intptr_t)i, NULL));
        }
        ASSERT_OK(sl_task_join(hold, NULL));
        int joined = 0;
        while (sl_joinset_join_next(set, NULL) == 0)
            joined++;
        sl_joinset_free(set);
        ASSERT_EQ(joined, GB_N);
        ASSERT_EQ(gb_count[0] + gb_count[1], GB_N);
        for (int i = 0; i < GB_N; i++)
            ASSERT_EQ(gb_ran[i], 1);
        for (int w = 0; w < 2; w++)
            for (int k = 1; k < gb_count[w]; k++)
                ASSERT_LT(gb_order[w][k - 1], gb_order[w][k]);
    }
    return NULL;
}

SL_TEST(steal_keeps_spawn_order)
{
    sl_runtime_opts_t o = test_opts(2);
    o.steal_delay_ns = -1; /* steal at once: many steals while the spawner spawns */
    ASSERT_OK(sl_run(&o, main_give_back, NULL, NULL));
}

/* ---- blocking pool ---- */

static void *blocking_fn(void *arg)
{
    usleep(2000);
    return (void *)((intptr_t)arg * 2);
}

static void *use_pool(void *arg)
{
    void *r = NULL;
    ASSERT_OK(sl_blocking(blocking_fn, arg, &r));
    return r;
}

static void *main_blocking(void *arg)
{
    (void)arg;
    sl_task_t *t[20];
    for (int i = 0; i < 20; i++)
        ASSERT_OK(sl_task_spawn(use_pool, (void *)(intptr_t)i, &t[i]));
    for (int i = 0; i < 20; i++) {
        sl_join_t j;
        ASSERT_OK(sl_task_join(t[i], &j));
        ASSERT_EQ((intptr_t)j.value, 2 * i);
    }
    /* A cancelled task still gets its result: the pool cannot be interrupted. It returned
     * without any call reporting the cancellation to it, so it ended normally. */
    sl_task_t *c;
    ASSERT_OK(sl_task_spawn(use_pool, (void *)(intptr_t)21, &c));
    ASSERT_OK(sl_task_yield());
    sl_task_abort(c);
    sl_join_t j;
    ASSERT_OK(sl_task_join(c, &j));
    ASSERT_EQ(j.status, SL_TASK_RETURNED);
    ASSERT_EQ((intptr_t)j.value, 42);
    return NULL;
}

SL_TEST(blocking_pool)
{
    test_run(1, main_blocking, NULL);
    test_run(2, main_blocking, NULL);
}

/* The workers keep running other tasks while pool threads block. */
static void *ticker(void *arg)
{
    int *ticks = arg;
    for (int i = 0; i < 5; i++) {
        ASSERT_OK(sl_sleep(SL_MSEC));
        __atomic_add_fetch(ticks, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void *long_block(void *arg)
{
    volatile int *ticks = arg;
    while (__atomic_load_n(ticks, __ATOMIC_ACQUIRE) < 5)
        usleep(500);
    return NULL;
}

static void *main_pool_nonblocking(void *arg)
{
    (void)arg;
    int ticks = 0;
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(ticker, &ticks, &t));
    /* Returns only once the ticker ran 5 times on this same worker. */
    ASSERT_OK(sl_blocking(long_block, &ticks, NULL));
    ASSERT_OK(sl_task_join(t, NULL));
    return NULL;
}

SL_TEST(blocking_pool_does_not_block_worker)
{
    test_run(1, main_pool_nonblocking, NULL);
}

/* ---- stack overflow names the task ---- */

static int recurse(int n)
{
    volatile char buf[1024];
    memset((char *)buf, n & 0xff, sizeof buf);
    if (n == 0)
        return buf[0];
    return recurse(n - 1) + buf[n % 1024];
}

static void *overflower(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse(1 << 20);
}

static __attribute__((unused)) void *main_overflow(void *arg)
{
    (void)arg;
    sl_spawn_opts_t so = {.name = "deep-thinker", .stack_size = 32 * 1024};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn_ex(&so, overflower, NULL, &t));
    sl_task_join(t, NULL);
    return NULL;
}

/* The same with the default stack size: a stack carved from a run of them, whose guard page
 * sits inside the run's mapping. */
static __attribute__((unused)) void *main_overflow_default(void *arg)
{
    (void)arg;
    sl_spawn_opts_t so = {.name = "deep-default"};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn_ex(&so, overflower, NULL, &t));
    sl_task_join(t, NULL);
    return NULL;
}

/* Runs fn as the main task of a one-worker runtime in a child process (guard pages on or off)
 * and returns how the child ended; what it wrote to stderr is in buf. */
static __attribute__((unused)) int run_in_child(void *(*fn)(void *), int guard_pages, char *buf,
                                                size_t cap)
{
    int pfd[2];
    ASSERT_EQ(pipe(pfd), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        sl_runtime_opts_t o;
        sl_runtime_opts_init(&o);
        o.workers = 1;
        o.guard_pages = guard_pages;
        sl_run(&o, fn, NULL, NULL);
        _exit(0);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(pfd[0], buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(pfd[0]);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    return status;
}

/* Runs task_main in a child with guard pages and expects it to die of SIGABRT after naming the task
 * and its stack size. */
static __attribute__((unused)) void expect_overflow_report(void *(*task_main)(void *),
                                                           const char *task, const char *bytes)
{
    char buf[4096], want[128];
    int status = run_in_child(task_main, 1, buf, sizeof buf);
    ASSERT(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGABRT);
    snprintf(want, sizeof want, "stack overflow in task '%s'", task);
    ASSERT(strstr(buf, want) != NULL);
    ASSERT(strstr(buf, bytes) != NULL);
}

SL_TEST(stack_overflow_names_task)
{
#if SLUICE_ASAN || SLUICE_VALGRIND
    TEST_SKIP("the sanitizer or valgrind reports the overflow itself");
#else
    expect_overflow_report(main_overflow, "deep-thinker", "32768 bytes");
#endif
}

SL_TEST(stack_overflow_in_a_run_names_task)
{
#if SLUICE_ASAN || SLUICE_VALGRIND
    TEST_SKIP("the sanitizer or valgrind reports the overflow itself");
#else
    expect_overflow_report(main_overflow_default, "deep-default", "65536 bytes");
#endif
}

/* The same on a stack from the process's pool, handed down through fork(): the pooled stack
 * keeps its guard page (a guard marker, which the child's copy of the mapping keeps too), though
 * everything below its top page was given back to the kernel when it entered the pool. The
 * child's runtime must map no run of its own (exit code 3 otherwise, not the abort). */
static __attribute__((unused)) void *yield_once(void *arg)
{
    ASSERT_OK(sl_task_yield()); /* the others start meanwhile: each on a stack of its own */
    return arg;
}

static __attribute__((unused)) void *main_fill_pool(void *arg)
{
    (void)arg;
    sl_task_t *t[20];
    for (int i = 0; i < 20; i++)
        ASSERT_OK(sl_task_spawn(yield_once, NULL, &t[i]));
    for (int i = 0; i < 20; i++)
        ASSERT_OK(sl_task_join(t[i], NULL));
    return NULL;
}

static __attribute__((unused)) void *main_overflow_pooled(void *arg)
{
    sl_runtime_t *rt = sl_runtime_current();
    if (atomic_load(&rt->stack_runs) != 0)
        _exit(3);
    return main_overflow_default(arg);
}

SL_TEST(stack_overflow_on_a_pooled_stack_names_task)
{
#if SLUICE_ASAN || SLUICE_VALGRIND
    TEST_SKIP("the sanitizer or valgrind reports the overflow itself");
#else
    sl__stack_pool_ttl_set(3600 * SL_SEC); /* kept however long the fork takes */
    sl_runtime_opts_t o = test_opts(1);
    sl_runtime_t *rt;
    ASSERT_OK(sl_runtime_new(&o, &rt));
    ASSERT_OK(sl_runtime_block_on(rt, main_fill_pool, NULL, NULL));
    int madv = atomic_load(&rt->madv_guard);
    sl_runtime_free(rt);
    if (madv != 1)
        TEST_SKIP("no MADV_GUARD_INSTALL (Linux before 6.13): nothing is pooled");
    ASSERT_GE(sl__stack_pool_count(), 21);
    expect_overflow_report(main_overflow_pooled, "deep-default", "65536 bytes");
    sl_memory_trim();
#endif
}

/* Stacks without an MMU guard (guard_pages = 0) still catch the overflow with a canary. */
static void *overflow_a_bit(void *arg)
{
    (void)arg;
    /* The top of a stack mapping is page-aligned and this frame sits in its top page (the
     * stack colour moves it down by less than 2 KiB), so the bottom of a 32 KiB stack without
     * guard (32 KiB + the page that would have been the guard) is computable. Scribble where an
     * overflow would land first: the canary. */
    char probe;
    uintptr_t top = ((uintptr_t)&probe + 4095) & ~(uintptr_t)4095;
    volatile char *bottom = (volatile char *)(top - (32 * 1024 + 4096));
    bottom[8] = 0x42;
    sl_task_yield(); /* the switch out checks the canary */
    return NULL;
}

static __attribute__((unused)) void *main_canary(void *arg)
{
    (void)arg;
    sl_spawn_opts_t so = {.name = "canary-task", .stack_size = 32 * 1024};
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn_ex(&so, overflow_a_bit, NULL, &t));
    sl_task_join(t, NULL);
    return NULL;
}

SL_TEST(stack_overflow_canary)
{
#if SLUICE_ASAN || SLUICE_VALGRIND
    TEST_SKIP("the sanitizer or valgrind reports the overflow itself");
#else
    char buf[4096];
    int status = run_in_child(main_canary, 0, buf, sizeof buf);
    ASSERT(WIFSIGNALED(status));
    ASSERT(strstr(buf, "stack overflow in task 'canary-task'") != NULL);
#endif
}

/* ---- allocation failures give clean errors ---- */

static void *nothing(void *arg)
{
    return arg;
}

static void *main_alloc_fail(void *arg)
{
    (void)arg;
    sl_task_t *t;
    test_alloc_fail_after(0);
    ASSERT_ERR(sl_task_spawn(nothing, NULL, &t), SL_ENOMEM);
    sl_cancel_t *tok;
    test_alloc_fail_after(0);
    ASSERT_ERR(sl_cancel_new(&tok), SL_ENOMEM);
    test_alloc_fail_after(-1);
    ASSERT_OK(sl_task_spawn(nothing, NULL, &t));
    ASSERT_OK(sl_task_join(t, NULL));
    return NULL;
}

SL_TEST(allocation_failure)
{
    test_run(1, main_alloc_fail, NULL);
}

/* ---- misuse outside a task is a clear abort, not a crash ---- */

SL_TEST(blocking_call_outside_task_aborts)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 2);
        sl_sleep(SL_MSEC);
        _exit(0);
    }
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGABRT);
}

SL_TEST(runtime_reuse)
{
    sl_runtime_opts_t o = test_opts(2);
    sl_runtime_t *rt;
    ASSERT_OK(sl_runtime_new(&o, &rt));
    ASSERT_EQ(sl_runtime_workers(rt), 2);
    for (int i = 0; i < 3; i++) {
        void *res;
        ASSERT_OK(sl_runtime_block_on(rt, nothing, (void *)(intptr_t)i, &res));
        ASSERT_EQ((intptr_t)res, i);
    }
    sl_runtime_free(rt);
    ASSERT_EQ(test_alloc_live(), 0);
}

/* ---- the blocking pool is bounded, and idle threads exit ---- */

static int pool_now, pool_max;

static void *count_concurrency(void *arg)
{
    (void)arg;
    int n = __atomic_add_fetch(&pool_now, 1, __ATOMIC_SEQ_CST);
    int m = __atomic_load_n(&pool_max, __ATOMIC_SEQ_CST);
    while (n > m &&
           !__atomic_compare_exchange_n(&pool_max, &m, n, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    usleep(3000);
    __atomic_sub_fetch(&pool_now, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void *pool_user(void *arg)
{
    (void)arg;
    ASSERT_OK(sl_blocking(count_concurrency, NULL, NULL));
    return NULL;
}

static void *main_pool_bounded(void *arg)
{
    (void)arg;
    pool_now = pool_max = 0;
    sl_task_t *t[12];
    for (int i = 0; i < 12; i++)
        ASSERT_OK(sl_task_spawn(pool_user, NULL, &t[i]));
    for (int i = 0; i < 12; i++)
        test_join_ok(t[i]);
    /* Twelve jobs at once, never more than two threads running them. */
    ASSERT_LE(pool_max, 2);
    ASSERT_GE(pool_max, 1);
    sl_runtime_stats_t st;
    sl_runtime_stats(sl_runtime_current(), &st);
    ASSERT_LE_U(st.blocking_threads, 2);
    /* Idle threads exit after blocking_idle_ns (20 ms here). */
    for (int i = 0; i < 5000 && st.blocking_threads > 0; i++) {
        ASSERT_OK(sl_sleep(SL_MSEC));
        sl_runtime_stats(sl_runtime_current(), &st);
    }
    ASSERT_EQ_U(st.blocking_threads, 0);
    /* And the pool starts threads again on demand. */
    ASSERT_OK(sl_task_spawn(pool_user, NULL, &t[0]));
    test_join_ok(t[0]);
    return NULL;
}

SL_TEST(blocking_pool_bounded_and_idle_threads_exit)
{
    sl_runtime_opts_t o = test_opts(2);
    o.blocking_threads = 2;
    o.blocking_idle_ns = 20 * SL_MSEC;
    ASSERT_OK(sl_run(&o, main_pool_bounded, NULL, NULL));
    ASSERT_EQ(test_alloc_live(), 0);
}

/* sl_strerror() and sl_err_name() give a string for every int, and the string stays what it was
 * after later calls: an errno outside sluice's table gets the C library's static description,
 * not strerror()'s "Unknown error N" in a buffer the next call overwrites. */
SL_TEST(error_strings_are_static_for_every_code)
{
    ASSERT_STR_EQ(sl_strerror(0), "success");
    ASSERT_STR_EQ(sl_err_name(0), "SL_OK");
    ASSERT_STR_EQ(sl_err_name(SL_ETIMEDOUT), "SL_ETIMEDOUT");
    /* EDOM is an errno sluice never returns, so it is not in the table. */
    const char *dom = sl_strerror(-EDOM);
    char copy[128];
    snprintf(copy, sizeof copy, "%s", dom);
    ASSERT(strcmp(dom, "unknown error") != 0);
    ASSERT_STR_EQ(sl_err_name(-EDOM), "SL_E_UNKNOWN");
    /* Numbers in errno's range that name no error, positive codes, codes below errno's range. */
    int none[] = {-3000, -4095, 5, -4096, -29999, -30999, INT32_MIN};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        ASSERT_STR_EQ(sl_strerror(none[i]), "unknown error");
        ASSERT_STR_EQ(sl_err_name(none[i]), "SL_E_UNKNOWN");
    }
    ASSERT_STR_EQ(dom, copy);
    ASSERT(sl_strerror(-EDOM) == dom);
}

/* ---- The cooperative budget is exact ---- */

/* With a budget of B, a task's B-th operation in a row that completes without waiting yields,
 * never the B-1-th nor a later one, whichever way the operation takes its unit: the inline
 * entry of a receive that finds a value (sl_mpsc_recv), the general entry of a wait that polls
 * first (sl_notify_wait finding the permit) and sl_select's own. The budget is kept as units
 * left minus one, counted down to a sign test, and the inline entry gives its unit back when it
 * was the last: an off-by-one in any of them shows here. */
#define EXACT_BUDGET 8

static uint64_t budget_yields(void)
{
    sl_runtime_stats_t st;
    sl_runtime_stats(sl_runtime_current(), &st);
    return st.budget_yields;
}

enum { OP_RECV, OP_NOTIFY, OP_SELECT, OP_KINDS };

static void ready_op(int kind, sl_mpsc_rx_t *rx, sl_notify_t *n)
{
    uint64_t v;
    sl_clause_t c;
    switch (kind) {
    case OP_RECV:
        ASSERT_OK(sl_mpsc_recv(rx, &v));
        break;
    case OP_NOTIFY:
        sl_notify_one(n); /* the permit: the wait finds it without waiting */
        ASSERT_OK(sl_notify_wait(n));
        break;
    default:
        sl_notify_one(n);
        sl_clause_notified(&c, n);
        ASSERT_EQ(sl_select(&c, 1, SL_SELECT_BIASED, SL_FOREVER), 0);
        break;
    }
}

static void *main_budget_exact(void *arg)
{
    (void)arg;
    sl_notify_t n;
    sl_notify_init(&n);
    for (int kind = 0; kind < OP_KINDS; kind++) {
        sl_mpsc_tx_t *tx;
        sl_mpsc_rx_t *rx;
        ASSERT_OK(sl_mpsc_new(sizeof(uint64_t), 2 * EXACT_BUDGET, &tx, &rx));
        for (uint64_t v = 0; v < 2 * EXACT_BUDGET; v++)
            ASSERT_OK(sl_mpsc_send(tx, &v));
        /* Alone on its worker: the yield comes straight back with the budget refilled. */
        ASSERT_OK(sl_task_yield());
        uint64_t y0 = budget_yields();
        for (int round = 1; round <= 2; round++) {
            for (int i = 0; i < EXACT_BUDGET - 1; i++)
                ready_op(kind, rx, &n);
            ASSERT_EQ_U(budget_yields(), y0 + (uint64_t)(round - 1));
            ready_op(kind, rx, &n); /* the last unit: yields, and is refilled */
            ASSERT_EQ_U(budget_yields(), y0 + (uint64_t)round);
        }
        sl_mpsc_tx_drop(tx);
        sl_mpsc_rx_drop(rx);
    }
    sl_notify_destroy(&n);
    return NULL;
}

SL_TEST(coop_budget_yields_at_exactly_its_last_unit)
{
    sl_runtime_opts_t o = test_opts(1);
    o.budget = EXACT_BUDGET;
    ASSERT_OK(sl_run(&o, main_budget_exact, NULL, NULL));
    ASSERT_EQ(test_alloc_live(), 0);
}
