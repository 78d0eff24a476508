/*
 * TaskTracker (tokio-util): counts tracked tasks and tokens, wakes waiters once closed and
 * empty.
 *
 * As in tokio-util, the state is one atomic word: count << 1 | closed. Spawning and releasing
 * are a single atomic add or subtract; the lock is taken only by waiters (to register) and by
 * whoever makes the word exactly "closed, count 0" (to claim every registered waiter). A
 * waiter registers under the lock after checking the word under the same lock, so a
 * transition it missed was notified before it registered, and one it did not miss will find
 * it registered: no lost wake-up. Registered waiters are claimed at the moment of the
 * transition, so a later reopen cannot take the completion back (tokio's ABA resistance).
 *
 * Lifetime: refs counts user references plus tracked items (each task and token holds one),
 * so a task's on_done() may still touch the tracker after its user dropped it.
 */
#include <string.h>

#include "core/rt.h"

#define CLOSED 1u
#define ONE    2u

struct sl_tracker {
    _Atomic size_t state; /* count << 1 | CLOSED */
    _Atomic long refs;
    sl_lock_t lock;
    sl_waitq_t waiters;
    sl_runtime_t *rt;
};

int sl_tracker_new(sl_tracker_t **out)
{
    sl_runtime_t *rt = sl_runtime_current();
    SL__ASSERT(rt != NULL, "sl_tracker_new outside a runtime");
    sl_tracker_t *tr = sl__calloc(rt, sizeof *tr);
    if (!tr)
        return SL_ENOMEM;
    tr->rt = rt;
    atomic_init(&tr->state, 0);
    atomic_init(&tr->refs, 1);
    sl__lock_init(&tr->lock);
    *out = tr;
    return 0;
}

sl_tracker_t *sl_tracker_clone(sl_tracker_t *tr)
{
    atomic_fetch_add_explicit(&tr->refs, 1, memory_order_relaxed);
    return tr;
}

void sl_tracker_drop(sl_tracker_t *tr)
{
    if (!tr)
        return;
    if (atomic_fetch_sub_explicit(&tr->refs, 1, memory_order_acq_rel) != 1)
        return;
    SL__ASSERT(tr->waiters.head == NULL, "tracker freed while a task waits on it");
    sl__free(tr->rt, tr, sizeof *tr);
}

/* Claims and wakes every registered waiter: the tracker was closed and empty. */
static void notify_all(sl_tracker_t *tr)
{
    sl_waiter_t *wake = NULL;
    sl__lock(&tr->lock);
    sl__waitq_claim_all(&tr->waiters, 0, &wake);
    sl__unlock(&tr->lock);
    sl__waiters_wake(wake);
}

void sl_tracker_token_acquire(sl_tracker_t *tr)
{
    atomic_fetch_add_explicit(&tr->refs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tr->state, ONE, memory_order_relaxed);
}

void sl_tracker_token_release(sl_tracker_t *tr)
{
    size_t prev = atomic_fetch_sub_explicit(&tr->state, ONE, memory_order_acq_rel);
    SL__ASSERT(prev >= ONE, "sl_tracker_token_release without a token");
    if (prev == (ONE | CLOSED))
        notify_all(tr);
    sl_tracker_drop(tr);
}

static void on_done(sl_task_t *t, void *arg)
{
    (void)t;
    sl_tracker_token_release(arg);
}

int sl_tracker_spawn_ex(sl_tracker_t *tr, const sl_spawn_opts_t *opts, sl_task_fn fn, void *arg,
                        sl_task_t **out)
{
    sl__self_checked("sl_tracker_spawn");
    sl_tracker_token_acquire(tr);
    sl_task_t *t;
    int r = sl__spawn(opts, fn, arg, on_done, tr, NULL, NULL, &t);
    if (r) {
        sl_tracker_token_release(tr);
        return r;
    }
    if (out)
        *out = t;
    else
        sl_task_detach(t);
    return 0;
}

int sl_tracker_spawn(sl_tracker_t *tr, sl_task_fn fn, void *arg, sl_task_t **out)
{
    return sl_tracker_spawn_ex(tr, NULL, fn, arg, out);
}

int sl_tracker_close(sl_tracker_t *tr)
{
    size_t prev = atomic_fetch_or_explicit(&tr->state, CLOSED, memory_order_acq_rel);
    if (prev & CLOSED)
        return 0;
    if (prev == 0)
        notify_all(tr);
    return 1;
}

int sl_tracker_reopen(sl_tracker_t *tr)
{
    size_t prev = atomic_fetch_and_explicit(&tr->state, ~(size_t)CLOSED, memory_order_acq_rel);
    return (prev & CLOSED) != 0;
}

int sl_tracker_is_closed(sl_tracker_t *tr)
{
    return (atomic_load_explicit(&tr->state, memory_order_acquire) & CLOSED) != 0;
}

size_t sl_tracker_len(sl_tracker_t *tr)
{
    return atomic_load_explicit(&tr->state, memory_order_acquire) >> 1;
}

int sl_tracker_is_empty(sl_tracker_t *tr)
{
    return sl_tracker_len(tr) == 0;
}

/* ---- wait as a waitable ------------------------------------------------------------------- */

static int tw_poll(sl_clause_t *c)
{
    sl_tracker_t *tr = c->obj;
    return atomic_load_explicit(&tr->state, memory_order_acquire) == CLOSED ? 0 : SL_EAGAIN;
}

static int tw_arm(sl_clause_t *c)
{
    sl_tracker_t *tr = c->obj;
    int r = SL__ARMED;
    sl__lock(&tr->lock);
    if (atomic_load_explicit(&tr->state, memory_order_acquire) == CLOSED) {
        if (sl__claim_self(c)) {
            c->w.res = 0;
            r = SL__DONE;
        } else {
            r = SL__LOST;
        }
    } else {
        sl__waitq_push(&tr->waiters, &c->w);
    }
    sl__unlock(&tr->lock);
    return r;
}

static void tw_disarm(sl_clause_t *c)
{
    sl_tracker_t *tr = c->obj;
    sl__lock(&tr->lock);
    sl__waitq_remove(&tr->waiters, &c->w);
    sl__unlock(&tr->lock);
}

static const struct sl_clause_ops tw_ops = {tw_poll, tw_arm, tw_disarm, NULL};

void sl_clause_tracker_wait(sl_clause_t *c, sl_tracker_t *tr)
{
    sl__clause_init(c, &tw_ops, tr, NULL, 0, 0);
}

int sl_tracker_wait_until(sl_tracker_t *tr, int64_t deadline)
{
    sl_clause_t c;
    sl_clause_tracker_wait(&c, tr);
    return sl__wait1(&c, deadline);
}

int sl_tracker_wait(sl_tracker_t *tr)
{
    return sl_tracker_wait_until(tr, SL_FOREVER);
}

int sl_tracker_try_wait(sl_tracker_t *tr)
{
    sl_clause_t c;
    sl_clause_tracker_wait(&c, tr);
    return tw_poll(&c);
}
