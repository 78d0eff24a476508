/*
 * Mutex and RwLock over the FIFO semaphore (as Tokio builds them), and Barrier.
 *
 * The semaphore gives both their fairness and their tracking: a guard is a permit record, so a
 * task that ends while holding a guard releases it. A mutex is never closed, so its waits only
 * fail with SL_ECANCELED or SL_ETIMEDOUT.
 *
 * The barrier counts arrivals under its lock; the n-th arriver starts the next generation and
 * claims every waiter. A waiter waits for the generation word to move past the one it arrived
 * in, which it can poll without the lock.
 */
#include <string.h>

#include "core/rt.h"

/* ---- Mutex ------------------------------------------------------------------------------- */

void sl_mutex_init(sl_mutex_t *m)
{
    sl_sem_init(&m->sem, 1);
}

void sl_mutex_destroy(sl_mutex_t *m)
{
    sl_sem_destroy(&m->sem);
}

int sl_mutex_lock(sl_mutex_t *m, sl_mutex_guard_t *g)
{
    return sl_sem_acquire(&m->sem, &g->permit);
}

int sl_mutex_try_lock(sl_mutex_t *m, sl_mutex_guard_t *g)
{
    return sl_sem_try_acquire(&m->sem, &g->permit);
}

int sl_mutex_lock_until(sl_mutex_t *m, sl_mutex_guard_t *g, int64_t deadline)
{
    return sl_sem_acquire_until(&m->sem, &g->permit, deadline);
}

void sl_clause_mutex_lock(sl_clause_t *c, sl_mutex_t *m, sl_mutex_guard_t *g)
{
    sl_clause_sem_acquire(c, &m->sem, 1, &g->permit);
}

void sl_mutex_unlock(sl_mutex_guard_t *g)
{
    sl_sem_permit_release(&g->permit);
}

/* ---- RwLock ------------------------------------------------------------------------------ */

void sl_rwlock_init(sl_rwlock_t *rw)
{
    sl_rwlock_init_max(rw, SL_RWLOCK_MAX_READERS);
}

int sl_rwlock_init_max(sl_rwlock_t *rw, uint32_t max_readers)
{
    if (max_readers == 0 || max_readers > SL_RWLOCK_MAX_READERS)
        return SL_EINVAL;
    sl_sem_init(&rw->sem, max_readers);
    rw->max_readers = max_readers;
    return 0;
}

void sl_rwlock_destroy(sl_rwlock_t *rw)
{
    sl_sem_destroy(&rw->sem);
}

int sl_rwlock_read(sl_rwlock_t *rw, sl_rwlock_guard_t *g)
{
    return sl_sem_acquire(&rw->sem, &g->permit);
}

int sl_rwlock_try_read(sl_rwlock_t *rw, sl_rwlock_guard_t *g)
{
    return sl_sem_try_acquire(&rw->sem, &g->permit);
}

int sl_rwlock_read_until(sl_rwlock_t *rw, sl_rwlock_guard_t *g, int64_t deadline)
{
    return sl_sem_acquire_until(&rw->sem, &g->permit, deadline);
}

int sl_rwlock_write(sl_rwlock_t *rw, sl_rwlock_guard_t *g)
{
    return sl_sem_acquire_many(&rw->sem, rw->max_readers, &g->permit);
}

int sl_rwlock_try_write(sl_rwlock_t *rw, sl_rwlock_guard_t *g)
{
    return sl_sem_try_acquire_many(&rw->sem, rw->max_readers, &g->permit);
}

int sl_rwlock_write_until(sl_rwlock_t *rw, sl_rwlock_guard_t *g, int64_t deadline)
{
    return sl_sem_acquire_many_until(&rw->sem, rw->max_readers, &g->permit, deadline);
}

void sl_clause_rwlock_read(sl_clause_t *c, sl_rwlock_t *rw, sl_rwlock_guard_t *g)
{
    sl_clause_sem_acquire(c, &rw->sem, 1, &g->permit);
}

void sl_clause_rwlock_write(sl_clause_t *c, sl_rwlock_t *rw, sl_rwlock_guard_t *g)
{
    sl_clause_sem_acquire(c, &rw->sem, rw->max_readers, &g->permit);
}

void sl_rwlock_unlock(sl_rwlock_guard_t *g)
{
    sl_sem_permit_release(&g->permit);
}

void sl_rwlock_downgrade(sl_rwlock_t *rw, sl_rwlock_guard_t *g)
{
    size_t held = sl_sem_permit_count(&g->permit);
    if (held <= 1)
        return;
    sl_sem_permit_t extra;
    sl_sem_permit_split(&g->permit, held - 1, &extra);
    sl_sem_permit_release(&extra);
    (void)rw;
}

/* ---- Barrier ----------------------------------------------------------------------------- */

void sl_barrier_init(sl_barrier_t *b, size_t n)
{
    memset(b, 0, sizeof *b);
    sl__lock_init(&b->lock);
    b->n = n ? n : 1;
}

void sl_barrier_destroy(sl_barrier_t *b)
{
    sl__lock(&b->lock);
    SL__ASSERT(b->waiters.head == NULL, "sl_barrier_destroy: tasks still wait at it");
    sl__unlock(&b->lock);
}

/* Clause: obj = barrier, arg = the generation arrived in. */
static int bar_poll(sl_clause_t *c)
{
    sl_barrier_t *b = c->obj;
    return __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) != (size_t)c->arg ? 0 : SL_EAGAIN;
}

static int bar_arm(sl_clause_t *c)
{
    sl_barrier_t *b = c->obj;
    int r = SL__ARMED;
    sl__lock(&b->lock);
    if (__atomic_load_n(&b->gen, __ATOMIC_RELAXED) != (size_t)c->arg) {
        c->w.res = 0;
        r = sl__claim_self(c) ? SL__DONE : SL__LOST;
    } else {
        sl__waitq_push(&b->waiters, &c->w);
    }
    sl__unlock(&b->lock);
    return r;
}

static void bar_disarm(sl_clause_t *c)
{
    sl_barrier_t *b = c->obj;
    sl__lock(&b->lock);
    sl__waitq_remove(&b->waiters, &c->w);
    sl__unlock(&b->lock);
}

static const struct sl_clause_ops bar_ops = {bar_poll, bar_arm, bar_disarm, NULL};

int sl_barrier_wait_until(sl_barrier_t *b, int *is_leader, int64_t deadline)
{
    sl_task_t *t = sl__self_checked("sl_barrier_wait");
    int r = sl__wait_precheck(t);
    if (r)
        return r;
    sl__lock(&b->lock);
    size_t gen = __atomic_load_n(&b->gen, __ATOMIC_RELAXED);
    if (++b->arrived == b->n) {
        sl_waiter_t *wake = NULL;
        b->arrived = 0;
        __atomic_store_n(&b->gen, gen + 1, __ATOMIC_RELEASE);
        sl__waitq_claim_all(&b->waiters, 0, &wake);
        sl__unlock(&b->lock);
        sl__waiters_wake(wake);
        if (is_leader)
            *is_leader = 1;
        return 0;
    }
    sl__unlock(&b->lock);
    sl_clause_t c;
    memset(&c, 0, sizeof c);
    c.ops = &bar_ops;
    c.obj = b;
    c.arg = (uintptr_t)gen;
    r = sl__wait1(&c, deadline);
    if (r == 0 && is_leader)
        *is_leader = 0;
    return r;
}

int sl_barrier_wait(sl_barrier_t *b, int *is_leader)
{
    return sl_barrier_wait_until(b, is_leader, SL_FOREVER);
}
