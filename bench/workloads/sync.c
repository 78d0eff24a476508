/*
 * semaphore_pool: 100 tasks share a 5-permit semaphore, each acquiring, yielding once and
 * releasing. notify_waiters: 1,000 tasks wait on one notifier; the main task broadcasts once
 * they have all re-armed, for 1,000 rounds.
 */
#include <stdatomic.h>

#include "../bench.h"

#define SEM_TASKS   100
#define SEM_ITERS   10000
#define SEM_PERMITS 5

#define NOTIFY_WAITERS 1000
#define NOTIFY_ROUNDS  1000

/* ---- semaphore_pool ------------------------------------------------------------------------ */

typedef struct sem_pool {
    sl_sem_t sem;
    uint64_t iters;
} sem_pool_t;

static uint64_t sem_iters(void)
{
    return bench_n(SEM_ITERS, 1);
}

uint64_t w_semaphore_pool_expect(void)
{
    return SEM_TASKS * sem_iters();
}

static void *sem_worker(void *arg)
{
    sem_pool_t *p = arg;
    uint64_t acquired = 0;
    for (uint64_t i = 0; i < p->iters; i++) {
        sl_sem_permit_t permit;
        BENCH_OK(sl_sem_acquire(&p->sem, &permit));
        acquired++;
        (void)sl_task_yield();
        sl_sem_permit_release(&permit);
    }
    return (void *)(uintptr_t)acquired;
}

uint64_t w_semaphore_pool(uint64_t *ops)
{
    sem_pool_t p = {.iters = sem_iters()};
    BENCH_OK(sl_sem_init(&p.sem, SEM_PERMITS));
    sl_joinset_t *set;
    BENCH_OK(sl_joinset_new(&set));
    for (int i = 0; i < SEM_TASKS; i++)
        BENCH_OK(sl_joinset_spawn(set, sem_worker, &p, NULL));
    uint64_t total = bench_join_sum(set);
    sl_sem_destroy(&p.sem);
    *ops = SEM_TASKS * p.iters;
    return total;
}

/* ---- notify_waiters ------------------------------------------------------------------------ */

typedef struct notify_round {
    sl_notify_t notify;
    sl_notify_t all_armed; /* the waiter that completes the count tells main (stores a permit) */
    atomic_size_t armed;   /* waiters armed for the coming round */
    size_t waiters;
    uint64_t rounds;
} notify_round_t;

static size_t notify_nwaiters(void)
{
    return (size_t)bench_n(NOTIFY_WAITERS, 10);
}

static uint64_t notify_nrounds(void)
{
    return bench_n(NOTIFY_ROUNDS, 3);
}

uint64_t w_notify_waiters_expect(void)
{
    return notify_nwaiters() * notify_nrounds();
}

static void *notify_waiter(void *arg)
{
    notify_round_t *nr = arg;
    uint64_t wakes = 0;
    for (uint64_t i = 0; i < nr->rounds; i++) {
        sl_notified_t notified;
        sl_notified_init(&notified, &nr->notify);
        /* Register as a waiter now, so the coming sl_notify_waiters() reaches us. */
        (void)sl_notified_enable(&notified);
        if (atomic_fetch_add_explicit(&nr->armed, 1, memory_order_acq_rel) + 1 == nr->waiters)
            sl_notify_one(&nr->all_armed);
        BENCH_OK(sl_notified_wait(&notified));
        wakes++;
    }
    return (void *)(uintptr_t)wakes;
}

uint64_t w_notify_waiters(uint64_t *ops)
{
    notify_round_t nr = {.waiters = notify_nwaiters(), .rounds = notify_nrounds()};
    sl_notify_init(&nr.notify);
    sl_notify_init(&nr.all_armed);
    atomic_init(&nr.armed, 0);
    sl_joinset_t *set;
    BENCH_OK(sl_joinset_new(&set));
    for (size_t i = 0; i < nr.waiters; i++)
        BENCH_OK(sl_joinset_spawn(set, notify_waiter, &nr, NULL));
    for (uint64_t r = 0; r < nr.rounds; r++) {
        BENCH_OK(sl_notify_wait(&nr.all_armed));
        atomic_store_explicit(&nr.armed, 0, memory_order_release);
        sl_notify_waiters(&nr.notify);
    }
    uint64_t total = bench_join_sum(set);
    sl_notify_destroy(&nr.notify);
    sl_notify_destroy(&nr.all_armed);
    *ops = nr.waiters * nr.rounds;
    return total;
}
