/*
 * spawn_join: 1,000,000 tasks returning their index, spawned in batches of 10,000 into a
 * JoinSet and joined batch by batch. idle_tasks: 100,000 tasks parked on their own oneshot;
 * resident memory growth per task.
 */
#include <stdatomic.h>

#include "../bench.h"

#define SPAWN_BATCHES 100
#define SPAWN_BATCH   10000

#define IDLE_N 100000

/* ---- spawn_join ----------------------------------------------------------------------------- */

static uint64_t spawn_batch(void)
{
    return bench_n(SPAWN_BATCH, 1);
}

uint64_t w_spawn_join_expect(void)
{
    uint64_t n = SPAWN_BATCHES * spawn_batch();
    return n * (n - 1) / 2;
}

static void *return_index(void *arg)
{
    return arg;
}

uint64_t w_spawn_join(uint64_t *ops)
{
    uint64_t batch = spawn_batch(), sum = 0;
    sl_joinset_t *set;
    BENCH_OK(sl_joinset_new(&set));
    for (uint64_t b = 0; b < SPAWN_BATCHES; b++) {
        for (uint64_t i = b * batch; i < (b + 1) * batch; i++)
            BENCH_OK(sl_joinset_spawn(set, return_index, (void *)(uintptr_t)i, NULL));
        sl_join_t j;
        int r;
        while ((r = sl_joinset_join_next(set, &j)) == 0)
            sum += (uint64_t)(uintptr_t)j.value;
        if (r != SL_EEMPTY)
            bench_fail("sl_joinset_join_next", r);
    }
    sl_joinset_free(set);
    *ops = SPAWN_BATCHES * batch;
    return sum;
}

/* ---- idle_tasks ------------------------------------------------------------------------------ */

static atomic_size_t idle_started; /* tasks that have run up to their wait */

uint64_t w_idle_tasks_expect(void)
{
    return bench_n(IDLE_N, 1);
}

static void *idle_task(void *arg)
{
    sl_oneshot_rx_t *rx = arg;
    atomic_fetch_add_explicit(&idle_started, 1, memory_order_relaxed);
    char unit;
    (void)sl_oneshot_recv(rx, &unit);
    sl_oneshot_rx_drop(rx);
    return NULL;
}

uint64_t w_idle_tasks(double *bytes_per_task)
{
    size_t n = (size_t)w_idle_tasks_expect();
    atomic_store(&idle_started, 0);
    /* Room for what the spawner keeps per task; the pages are touched (and counted) below. */
    sl_oneshot_tx_t **senders = malloc(n * sizeof *senders);
    sl_task_t **handles = malloc(n * sizeof *handles);
    if (!senders || !handles)
        bench_fail("malloc", SL_ENOMEM);
    uint64_t before = bench_rss();
    for (size_t i = 0; i < n; i++) {
        sl_oneshot_rx_t *rx;
        BENCH_OK(sl_oneshot_new(1, &senders[i], &rx));
        BENCH_OK(sl_task_spawn(idle_task, rx, &handles[i]));
    }
    /* Let every task run up to its wait, so all of them are idle, not just queued. */
    while (atomic_load_explicit(&idle_started, memory_order_relaxed) < n)
        (void)sl_task_yield();
    uint64_t after = bench_rss();
    for (size_t i = 0; i < n; i++) {
        char unit = 1;
        (void)sl_oneshot_send(senders[i], &unit);
    }
    uint64_t joined = 0;
    for (size_t i = 0; i < n; i++) {
        sl_join_t j;
        BENCH_OK(sl_task_join(handles[i], &j));
        if (j.status != SL_TASK_RETURNED)
            bench_fail("an idle task", SL_EPANIC);
        joined++;
    }
    free(senders);
    free(handles);
    *bytes_per_task = after > before ? (double)(after - before) / (double)n : 0.0;
    return joined;
}
