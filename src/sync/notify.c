/*
 * Notify (tokio::sync::Notify).
 *
 * One atomic word holds gen << 2 | WAITERS | PERMIT: gen counts sl_notify_waiters() calls,
 * PERMIT is the stored sl_notify_one() permit, WAITERS is set exactly while the queue is
 * non-empty (changed only under the lock). With nobody queued, notify_one and notify_waiters
 * are a single compare-and-swap; a plain wait polls the word without the lock.
 *
 * The queue holds two kinds of nodes: the waiter of a plain wait clause (w->clause != NULL, its
 * gen snapshot in clause->arg64) and the node of an enabled sl_notified_t (w->clause == NULL,
 * its snapshot in w->aux).
 * Every waiter records the gen at its creation; a broadcast bumps gen and then claims queued
 * waiters with an older snapshot from the head in batches of 32, releasing the lock between
 * batches. Queue snapshots never decrease from head to tail (a waiter whose snapshot is already
 * stale completes at once instead of queueing), so the broadcast's waiters are exactly a prefix
 * of the queue, and sl_notify_one() skips that prefix as Tokio's notify_one never sees the
 * waiters a notify_waiters has taken.
 *
 * notify_one hands its notification to a plain waiter by claiming its wait; if the claim fails
 * the waiter is gone (timeout, cancel, lost select) and the next one is tried, then the permit
 * is stored. To an sl_notified_t it hands the notification by state (it then belongs to that
 * object: Tokio's Notified that was selected), and wakes whoever waits on it (w->active): a
 * select clause, or the node itself when its task waits on it alone (nd_wait_own), if any.
 */
#include <stddef.h>
#include <string.h>

#include "core/park.h"
#include "core/rt.h"

#define ST_PERMIT  ((size_t)1)
#define ST_WAITERS ((size_t)2)
#define ST_SHIFT   2
#define GEN_INC    ((size_t)1 << ST_SHIFT)
#define WAKE_BATCH 32

enum { NT_INIT, NT_WAITING, NT_ONE, NT_LAST, NT_ALL, NT_DONE };

static inline size_t st_load(sl_notify_t *n)
{
    return __atomic_load_n(&n->state, __ATOMIC_ACQUIRE);
}

static inline int st_cas(sl_notify_t *n, size_t *expect, size_t want)
{
    return __atomic_compare_exchange_n(&n->state, expect, want, 1, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
}

static inline size_t st_gen(size_t st)
{
    return st >> ST_SHIFT;
}

static inline sl_notified_t *node_owner(sl_waiter_t *w)
{
    return (sl_notified_t *)(void *)((char *)w - offsetof(sl_notified_t, node));
}

/* A waiter's generation snapshot: its clause's, or an sl_notified_t's, kept in its node's aux. */
static inline size_t snap_of(sl_waiter_t *w)
{
    return w->clause ? (size_t)w->clause->arg64 : (size_t)w->aux;
}

/* An sl_notified_t's generation at creation, in its node's aux (notify.h); its node's task is
 * the task that enabled it (NULL: none, or no longer enabled). */
static inline size_t nd_gen(const sl_notified_t *w)
{
    return (size_t)w->node.aux;
}

/* Under the lock: queues w, and leaves the node two places before it a hint of where w is. A
 * broadcast reaches each waiter through the one before it, a miss to L2 each when a thousand
 * tasks' stacks hold them; with the hint it fetches two waiters ahead (sl_notify_waiters:
 * notifier 18.0 -> 15.1 TSC cycles per waiter, session 18). The hint lives in wake_next, which
 * no one reads while a waiter is queued (a claimer unlinks a waiter before it chains it for a
 * wake); a stale hint costs a useless prefetch, never a fault. */
static inline void queue_push(sl_notify_t *n, sl_waiter_t *w)
{
    w->wake_next = NULL;
    sl__waitq_push(&n->waiters, w);
    sl_waiter_t *p = w->prev;
    if (p && (p = p->prev))
        p->wake_next = w;
}

static inline void wake_append(sl_waiter_t **head, sl_waiter_t **tail, sl_waiter_t *w)
{
    w->wake_next = NULL;
    if (*tail)
        (*tail)->wake_next = w;
    else
        *head = w;
    *tail = w;
}

/* An sl_notified_t's state is written under the notifier's lock; its owner may read it without
 * the lock (nd_poll's fast path), hence the atomic store. */
static inline void nd_set(sl_notified_t *w, int st)
{
    __atomic_store_n(&w->state, st, __ATOMIC_RELEASE);
}

/* Under the lock. */
static void waiters_bit_update(sl_notify_t *n)
{
    if (!n->waiters.head)
        __atomic_fetch_and(&n->state, ~ST_WAITERS, __ATOMIC_ACQ_REL);
}

void sl_notify_init(sl_notify_t *n)
{
    memset(n, 0, sizeof *n);
    sl__lock_init(&n->lock);
}

void sl_notify_destroy(sl_notify_t *n)
{
    sl__lock(&n->lock);
    SL__ASSERT(n->waiters.head == NULL, "sl_notify_destroy: tasks still wait on it");
    sl__unlock(&n->lock);
}

/* Under the lock: gives a sl_notify_one() notification to the oldest (or newest) current
 * waiter, else stores the permit. A claimed task is appended to the wake list. */
static void notify_locked(sl_notify_t *n, int last, sl_waiter_t **wake, sl_waiter_t **tail)
{
    size_t gen = st_gen(st_load(n));
    sl_waiter_t *w = last ? n->waiters.tail : n->waiters.head;
    int given = 0;
    while (w && !given) {
        sl_waiter_t *next = last ? w->prev : w->next;
        if (snap_of(w) != gen) {
            /* Taken by a notify_waiters still in progress. From the tail, nothing older is
             * current either. */
            if (last)
                break;
            w = next;
            continue;
        }
        sl__waitq_remove(&n->waiters, w);
        if (!w->clause) {
            sl_notified_t *nd = node_owner(w);
            nd_set(nd, last ? NT_LAST : NT_ONE);
            if (nd->active && sl__waiter_claim(nd->active)) {
                nd->active->res = 0;
                wake_append(wake, tail, nd->active);
            }
            given = 1;
        } else if (sl__waiter_claim(w)) {
            w->res = 0;
            wake_append(wake, tail, w);
            given = 1;
        }
        /* else: that wait already ended elsewhere; it finds its waiter unlinked. */
        w = next;
    }
    waiters_bit_update(n);
    if (!given)
        __atomic_fetch_or(&n->state, ST_PERMIT, __ATOMIC_ACQ_REL);
}

static void notify_slow(sl_notify_t *n, int last)
{
    sl_waiter_t *wake = NULL, *tail = NULL;
    sl__lock(&n->lock);
    notify_locked(n, last, &wake, &tail);
    sl__unlock(&n->lock);
    sl__waiters_wake(wake);
}

static void notify_one_or_last(sl_notify_t *n, int last)
{
    size_t cur = st_load(n);
    while (!(cur & ST_WAITERS)) {
        if (cur & ST_PERMIT)
            return;
        if (st_cas(n, &cur, cur | ST_PERMIT))
            return;
    }
    notify_slow(n, last);
}

void sl_notify_one(sl_notify_t *n)
{
    notify_one_or_last(n, 0);
}

void sl_notify_last(sl_notify_t *n)
{
    notify_one_or_last(n, 1);
}

void sl_notify_waiters(sl_notify_t *n)
{
    size_t cur = st_load(n);
    while (!(cur & ST_WAITERS))
        if (st_cas(n, &cur, cur + GEN_INC))
            return;
    sl__lock(&n->lock);
    size_t target = st_gen(__atomic_add_fetch(&n->state, GEN_INC, __ATOMIC_ACQ_REL));
    /* Waiters of this worker, called from one of its tasks, are woken as they are claimed: no
     * system call, nothing another thread sees. The others after each batch's unlock. */
    sl__worker_t *me = sl__tls_worker;
    if (me && !me->cur)
        me = NULL;
    /* sl__waiter_claim()'s test, with the caller's task read once: it runs no other task here. */
    sl_task_t *self = sl__tls_task;
    for (;;) {
        sl_waiter_t *wake = NULL, *tail = NULL, *w;
        /* This worker's waiters, woken as single wakes would wake them, the run queue and
         * runnext updated once per batch (sl__wakes_t). */
        sl__wakes_t k = {0};
        if (me)
            sl__wakes_begin(&k, me);
        int batch = 0;
        /* sl__waitq_unlink_head() for a whole batch: the batch takes waiters off the head in a
         * local, and the queue's head is written back once, before the lock is released (every
         * atomic store in the loop would otherwise make the compiler reload and store it for
         * each waiter). */
        sl_waiter_t *head = n->waiters.head;
        while (batch < WAKE_BATCH && (w = head)) {
            __builtin_prefetch(w->wake_next, 1); /* two waiters ahead (queue_push) */
            if (snap_of(w) >= target)
                break; /* the rest queued after this broadcast began */
            sl_notified_t *nd = w->clause ? NULL : node_owner(w);
            head = w->next;
            w->next = NULL;
            w->prev = NULL;
            w->linked = 0;
            if (nd) {
                nd_set(nd, NT_ALL);
                w = nd->active;
                if (!w)
                    continue;
            }
            sl_task_t *t = w->task; /* loaded before the claim, whose barrier would reload it */
            /* A Notified's own node is a wait on this notifier alone, and we hold its lock:
             * on the task's own worker, a plain claim (rt.h, "Plain claims"). */
            int won = me && nd && w == &nd->node && t->worker == me
                          ? sl__waiter_claim_plain(w)
                          : t != self && sl__waiter_cas(w);
            if (won) {
                w->res = 0;
                if (me && t->worker == me) /* (a waiting task's worker is never NULL) */
                    sl__wakes_add(&k, t);
                else
                    wake_append(&wake, &tail, w);
                batch++;
            }
        }
        n->waiters.head = head;
        if (head)
            head->prev = NULL;
        else
            n->waiters.tail = NULL;
        waiters_bit_update(n);
        if (me)
            sl__wakes_end(&k);
        w = n->waiters.head;
        int more = w && snap_of(w) < target;
        sl__unlock(&n->lock);
        sl__waiters_wake(wake);
        if (!more)
            return;
        sl__lock(&n->lock);
    }
}

/* Consumes the stored permit if there is one (1), lock-free. */
static int take_permit(sl_notify_t *n)
{
    size_t cur = st_load(n);
    while (cur & ST_PERMIT)
        if (st_cas(n, &cur, cur & ~ST_PERMIT))
            return 1;
    return 0;
}

/* ---- Plain waits ---------------------------------------------------------------------------
 * Clause fields: obj = notifier, arg64 = gen snapshot. */

static int plain_poll(sl_clause_t *c)
{
    sl_notify_t *n = c->obj;
    if (st_gen(st_load(n)) != (size_t)c->arg64)
        return 0;
    return take_permit(n) ? 0 : SL_EAGAIN;
}

static int plain_arm(sl_clause_t *c)
{
    sl_notify_t *n = c->obj;
    int r = SL__ARMED;
    sl__lock(&n->lock);
    size_t cur = st_load(n);
    for (;;) {
        if (st_gen(cur) != (size_t)c->arg64) {
            c->w.res = 0;
            r = sl__claim_self(c) ? SL__DONE : SL__LOST;
            break;
        }
        if (cur & ST_PERMIT) {
            /* Take the permit first (a lock-free poll could take it), undo if we lost. */
            if (!st_cas(n, &cur, cur & ~ST_PERMIT))
                continue;
            c->w.res = 0;
            if (sl__claim_self(c)) {
                r = SL__DONE;
            } else {
                __atomic_fetch_or(&n->state, ST_PERMIT, __ATOMIC_ACQ_REL);
                r = SL__LOST;
            }
            break;
        }
        if (!(cur & ST_WAITERS) && !st_cas(n, &cur, cur | ST_WAITERS))
            continue;
        queue_push(n, &c->w);
        break;
    }
    sl__unlock(&n->lock);
    return r;
}

static void plain_disarm(sl_clause_t *c)
{
    sl_notify_t *n = c->obj;
    sl__lock(&n->lock);
    if (c->w.linked) {
        sl__waitq_remove(&n->waiters, &c->w);
        waiters_bit_update(n);
    }
    sl__unlock(&n->lock);
}

static const struct sl_clause_ops plain_ops = {plain_poll, plain_arm, plain_disarm, NULL};

void sl_clause_notified(sl_clause_t *c, sl_notify_t *n)
{
    sl__clause_init(c, &plain_ops, n, NULL, 0, (int64_t)st_gen(st_load(n)));
}

int sl_notify_wait_until(sl_notify_t *n, int64_t deadline)
{
    return sl__wait1vp(&plain_ops, n, NULL, 0, (int64_t)st_gen(st_load(n)), deadline);
}

int sl_notify_wait(sl_notify_t *n)
{
    return sl_notify_wait_until(n, SL_FOREVER);
}

int sl_notify_try_wait(sl_notify_t *n)
{
    return take_permit(n) ? 0 : SL_EAGAIN;
}

/* ---- sl_notified_t ----------------------------------------------------------------------- */

static inline sl__hold_t *nd_hold(sl_notified_t *w)
{
    return (sl__hold_t *)(void *)w->hold;
}

static void nd_untrack(sl_notified_t *w)
{
    if (w->node.task) {
        sl__hold_remove(nd_hold(w));
        w->node.task = NULL;
    }
}

static void nd_check_owner(sl_notified_t *w, const char *what)
{
    SL__ASSERT(w->node.task == NULL || w->node.task == sl__self(), what);
}

/* Under the lock: drops w, passing on a notify_one notification it had not consumed. */
static void nd_cancel_locked(sl_notified_t *w, sl_waiter_t **wake, sl_waiter_t **tail)
{
    sl_notify_t *n = w->notify;
    switch (w->state) {
    case NT_WAITING:
        sl__waitq_remove(&n->waiters, &w->node);
        waiters_bit_update(n);
        break;
    case NT_ONE:
    case NT_LAST:
        notify_locked(n, w->state == NT_LAST, wake, tail);
        break;
    default:
        break;
    }
    nd_set(w, NT_DONE);
    w->active = NULL;
}

static void nd_hold_release(sl__hold_t *h)
{
    /* The task ends with w still registered: drop it. */
    sl_notified_t *w = (sl_notified_t *)(void *)((char *)h - offsetof(sl_notified_t, hold));
    sl_waiter_t *wake = NULL, *tail = NULL;
    sl__lock(&w->notify->lock);
    w->node.task = NULL;
    nd_cancel_locked(w, &wake, &tail);
    sl__unlock(&w->notify->lock);
    sl__waiters_wake(wake);
}

void sl_notified_init(sl_notified_t *w, sl_notify_t *n)
{
    /* No memset: the queue node and the hold are filled when w is enabled. */
    w->node.linked = 0;
    w->node.task = NULL;
    w->active = NULL;
    w->notify = n;
    w->node.aux = (uintptr_t)st_gen(st_load(n));
    nd_set(w, NT_INIT);
}

/* Under the lock: 1 if w is ready (notified, or its snapshot is stale, or - only if it has
 * never been enabled - a stored permit can be consumed), else 0. May move w to DONE/ALL.
 * With `enable`, registers w when not ready. n is w->notify, which the caller keeps in a local
 * across the lock (read back from w after the lock's atomic accesses, it cost a load per use). */
static inline __attribute__((always_inline)) int nd_ready_locked(sl_notified_t *w, sl_notify_t *n,
                                                                 int enable)
{
    size_t cur = st_load(n);
    switch (w->state) {
    case NT_INIT:
        for (;;) {
            if (st_gen(cur) != nd_gen(w)) {
                nd_set(w, NT_ALL);
                return 1;
            }
            if (cur & ST_PERMIT) {
                if (!st_cas(n, &cur, cur & ~ST_PERMIT))
                    continue;
                /* Consumed by the first poll/enable: never passed on (Tokio's Done). */
                nd_set(w, NT_DONE);
                return 1;
            }
            if (!enable)
                return 0;
            if (!(cur & ST_WAITERS) && !st_cas(n, &cur, cur | ST_WAITERS))
                continue;
            break;
        }
        /* The node's task is the one that enabled w (its owner, tracked below) and the one a
         * notifier claims once that task waits on w alone (nd_wait_own): task and index are set
         * here, once, and the wait fills in only the wait word. */
        sl_task_t *t = sl__self();
        w->node.clause = NULL;
        w->node.task = t;
        w->node.idx = 0;
        w->node.alone = 1; /* the wait on the node itself has no other clause (nd_wait_own) */
        queue_push(n, &w->node);
        nd_set(w, NT_WAITING);
        if (t) {
            sl__hold_t *h = nd_hold(w);
            h->release = nd_hold_release;
            sl__hold_add(t, h);
        }
        return 0;
    case NT_WAITING:
        if (st_gen(cur) != nd_gen(w)) {
            /* A broadcast is on its way to us: take it now. */
            sl__waitq_remove(&n->waiters, &w->node);
            waiters_bit_update(n);
            nd_set(w, NT_ALL);
            return 1;
        }
        return 0;
    default:
        return 1;
    }
}

/* Under the lock, by the owner: w completed its wait. */
static void nd_finish_locked(sl_notified_t *w)
{
    nd_set(w, NT_DONE);
    w->active = NULL;
    nd_untrack(w);
}

int sl_notified_enable(sl_notified_t *w)
{
    nd_check_owner(w, "sl_notified_enable: enabled by another task");
    sl_notify_t *n = w->notify; /* in a register across the lock's barriers */
    sl__lock(&n->lock);
    int r = nd_ready_locked(w, n, 1);
    sl__unlock(&n->lock);
    return r;
}

static int nd_poll(sl_clause_t *c)
{
    sl_notified_t *w = c->obj;
    nd_check_owner(w, "sl_notified_wait: enabled by another task");
    /* Enabled, nobody has notified it and no broadcast has happened since: not ready, and the
     * arm that follows looks again under the lock. The common case needs no lock. */
    if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == NT_WAITING &&
        st_gen(st_load(w->notify)) == nd_gen(w))
        return SL_EAGAIN;
    sl_notify_t *n = w->notify;
    sl__lock(&n->lock);
    int r = SL_EAGAIN;
    if (nd_ready_locked(w, n, 0)) {
        nd_finish_locked(w);
        r = 0;
    }
    sl__unlock(&n->lock);
    return r;
}

static int nd_arm(sl_clause_t *c)
{
    sl_notified_t *w = c->obj;
    int r = SL__ARMED;
    sl_notify_t *n = w->notify;
    sl__lock(&n->lock);
    if (nd_ready_locked(w, n, 1)) {
        c->w.res = 0;
        r = sl__claim_self(c) ? SL__DONE : SL__LOST;
    } else {
        w->active = &c->w;
    }
    sl__unlock(&n->lock);
    return r;
}

static void nd_disarm(sl_clause_t *c)
{
    sl_notified_t *w = c->obj;
    sl__lock(&w->notify->lock);
    if (w->active == &c->w)
        w->active = NULL;
    sl__unlock(&w->notify->lock);
}

static int nd_complete(sl_clause_t *c)
{
    /* This clause won: its node has left the queue (the notifier unlinked it before claiming,
     * or our own arm found it ready), so no other thread can reach w any more, and the wake
     * ordered the notifier's writes before this point. No lock needed. */
    nd_finish_locked(c->obj);
    return 0;
}

static const struct sl_clause_ops nd_ops = {nd_poll, nd_arm, nd_disarm, nd_complete};

void sl_clause_notified_wait(sl_clause_t *c, sl_notified_t *w)
{
    sl__clause_init(c, &nd_ops, w, NULL, 0, 0);
}

/* The wait of an sl_notified_t that its task has enabled: its node is in the notifier's queue
 * already, so the node itself is the task's waiter (w->active = &w->node) and a notifier claims
 * the task through it. The steps are the generic wait's (core/park.h) around that node, without
 * a clause, its indirect calls or its 136 bytes of stack: a thousand waiters woken together
 * each bring back fewer lines (docs/perf.md, notify_waiters).
 *
 * `untimed` (a constant): the caller has seen no deadline and no timeout scope, the common case,
 * compiled apart so that nothing about a deadline is looked at again: the wait's context then
 * never leaves this frame (a lost wait reports through a context of its own), and the compiler
 * keeps it in registers and drops the deadline's tests after the park. */
static inline __attribute__((always_inline)) int nd_wait_own_impl(sl_task_t *t, sl_notified_t *w,
                                                                  int64_t deadline, int untimed)
{
    static const sl__wait_ctx_t untimed_wc = {.timed = 0};
    sl_notify_t *n = w->notify;
    int r = sl__wait_enter(t);
    if (r)
        return r;
    /* nd_poll: ready already? Only a wait with a deadline asks before it starts, so that a
     * notification already there wins over a deadline already past; an untimed wait finds it
     * in the look under the lock below, as its own claim. */
    if (!untimed && SL__UNLIKELY(deadline != SL_FOREVER || t->timeouts) &&
        (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) != NT_WAITING ||
         st_gen(st_load(n)) != nd_gen(w))) {
        sl__lock(&n->lock);
        int ready = nd_ready_locked(w, n, 0);
        if (ready)
            nd_finish_locked(w);
        sl__unlock(&n->lock);
        if (ready)
            return 0;
    }
    sl__wait_ctx_t wc;
    int state;
    if (untimed) {
        wc.timed = 0;
        state = sl__wait_start(t, &wc);
    } else {
        state = sl__wait_begin(t, deadline, &wc);
    }
    if (state < 0)
        return state;
    if (state == SL__ARMED) {
        w->node.wword = wc.wword; /* task and index: the enable's (the result goes unread) */
        sl__lock(&n->lock);
        /* Still waiting with nothing since (the common case), else what nd_ready_locked says. */
        int ready =
            (w->state != NT_WAITING || st_gen(st_load(n)) != nd_gen(w)) && nd_ready_locked(w, n, 0);
        if (ready)
            state = sl__waiter_cas(&w->node) ? SL__DONE : SL__LOST;
        else
            w->active = &w->node;
        sl__unlock(&n->lock);
    }
    int win = sl__wait_park(t, &wc, state != SL__DONE);
    if (win != 0 && state == SL__ARMED) {
        /* A timeout or an abort won: the node stays enabled, no longer the task's waiter. A
         * notification that came meanwhile stays in w's state for the next wait. */
        sl__lock(&n->lock);
        if (w->active == &w->node)
            w->active = NULL;
        sl__unlock(&n->lock);
    }
    if ((r = sl__wait_result(t, win, untimed ? &untimed_wc : &wc)))
        return r;
    /* The node has left the queue (the notifier unlinked it before claiming, or our own look
     * found it ready), so no other thread reaches w any more: as nd_complete, no lock. */
    nd_finish_locked(w);
    return 0;
}

static __attribute__((noinline)) int nd_wait_own_timed(sl_task_t *t, sl_notified_t *w,
                                                       int64_t deadline)
{
    return nd_wait_own_impl(t, w, deadline, 0);
}

static inline int nd_wait_own(sl_task_t *t, sl_notified_t *w, int64_t deadline)
{
    if (SL__LIKELY(deadline == SL_FOREVER && !t->timeouts))
        return nd_wait_own_impl(t, w, SL_FOREVER, 1);
    return nd_wait_own_timed(t, w, deadline);
}

int sl_notified_wait_until(sl_notified_t *w, int64_t deadline)
{
    sl_task_t *t = sl__self();
    if (t && w->node.task == t)
        return nd_wait_own(t, w, deadline);
    /* Not enabled yet (the wait's arm enables it), or not from a task: the generic wait. */
    return sl__wait1vp(&nd_ops, w, NULL, 0, 0, deadline);
}

int sl_notified_wait(sl_notified_t *w)
{
    return sl_notified_wait_until(w, SL_FOREVER);
}

int sl_notified_try_wait(sl_notified_t *w)
{
    sl_clause_t c;
    sl_clause_notified_wait(&c, w);
    return nd_poll(&c);
}

void sl_notified_cancel(sl_notified_t *w)
{
    sl_waiter_t *wake = NULL, *tail = NULL;
    nd_check_owner(w, "sl_notified_cancel: enabled by another task");
    sl__lock(&w->notify->lock);
    nd_cancel_locked(w, &wake, &tail);
    nd_untrack(w);
    sl__unlock(&w->notify->lock);
    sl__waiters_wake(wake);
}
