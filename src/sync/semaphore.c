/*
 * Semaphore (tokio::sync::Semaphore, the batch semaphore underneath Mutex and RwLock).
 *
 * One atomic word holds permits << 2 | WAITQ | CLOSED. WAITQ is set exactly while the queue is
 * non-empty, and then the permit count is 0 (Tokio's invariant): released permits go to the
 * head waiter first. The uncontended paths are one compare-and-swap each and take no lock:
 * try-acquire subtracts when enough permits are counted, release adds when WAITQ is clear.
 * Everything that touches the queue (or sets/clears WAITQ) runs under the lock, and still
 * updates the word by compare-and-swap because the lock-free paths race with it.
 *
 * A queued waiter keeps in w->aux the permits it still needs; permits handed to it while it
 * waits are absorbed (counted as granted) even before its wait is claimed. When the last
 * permit arrives the giver claims the waiter's wait; if the claim fails the waiter's task has
 * already won elsewhere (timeout, cancellation, another select clause), so the giver unlinks it
 * and takes its whole request back to give onwards. A waiter that disarms while still queued
 * gives back what it absorbed (Tokio's Acquire::drop). Hence no permit is ever lost, and a
 * losing clause holds nothing.
 */
#include <string.h>

#include "core/rt.h"

#define ST_CLOSED  ((size_t)1)
#define ST_WAITQ   ((size_t)2)
#define ST_SHIFT   2
#define WAKE_BATCH 32 /* waiters claimed per lock hold, as Tokio's WakeList */

static inline size_t st_load(const sl_sem_t *s)
{
    return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

static inline int st_cas(sl_sem_t *s, size_t *expect, size_t want)
{
    return __atomic_compare_exchange_n(&s->state, expect, want, 1, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
}

static inline size_t st_count(size_t st)
{
    return st >> ST_SHIFT;
}

int sl_sem_init(sl_sem_t *s, size_t permits)
{
    if (permits > SL_SEM_MAX_PERMITS)
        return SL_EINVAL;
    memset(s, 0, sizeof *s);
    sl__lock_init(&s->lock);
    __atomic_store_n(&s->state, permits << ST_SHIFT, __ATOMIC_RELEASE);
    return 0;
}

void sl_sem_destroy(sl_sem_t *s)
{
    sl__lock(&s->lock);
    SL__ASSERT(s->waiters.head == NULL, "sl_sem_destroy: tasks are still waiting");
    sl__unlock(&s->lock);
}

/* ---- Giving permits ------------------------------------------------------------------------ */

/* Under the lock: hands n permits to the queue in FIFO order, the remainder to the counter.
 * Claims at most WAKE_BATCH waiters (appended to *wake) and returns the permits not yet given
 * when the batch filled up, so the caller unlocks, wakes, relocks and continues. */
static size_t give_locked(sl_sem_t *s, size_t n, sl_waiter_t **wake, sl_waiter_t **tail)
{
    int batch = 0;
    sl_waiter_t *w;
    while (n > 0 && (w = s->waiters.head)) {
        if (batch == WAKE_BATCH)
            return n;
        size_t need = w->aux;
        if (need > n) {
            w->aux = need - n;
            return 0;
        }
        n -= need;
        w->aux = 0;
        sl__waitq_remove(&s->waiters, w);
        if (sl__waiter_claim(w)) {
            w->res = 0;
            w->wake_next = NULL;
            if (*tail)
                (*tail)->wake_next = w;
            else
                *wake = w;
            *tail = w;
            batch++;
        } else {
            /* Its task won elsewhere and will find the waiter unlinked: everything it had
             * absorbed, now its whole request, goes on to the next waiter. */
            n += (size_t)w->clause->arg;
        }
    }
    if (!s->waiters.head) {
        size_t cur = st_load(s);
        size_t want;
        do {
            SL__ASSERT(st_count(cur) + n <= SL_SEM_MAX_PERMITS, "semaphore permits overflow");
            want = ((cur & ~ST_WAITQ) + (n << ST_SHIFT));
        } while (!st_cas(s, &cur, want));
    }
    return 0;
}

/* Called with the lock held; gives n permits, releases the lock and wakes whoever got served. */
static void give_and_unlock(sl_sem_t *s, size_t n)
{
    for (;;) {
        sl_waiter_t *wake = NULL, *tail = NULL;
        n = give_locked(s, n, &wake, &tail);
        sl__unlock(&s->lock);
        sl__waiters_wake(wake);
        if (n == 0)
            return;
        sl__lock(&s->lock);
    }
}

static void sem_release(sl_sem_t *s, size_t n)
{
    if (n == 0)
        return;
    size_t cur = st_load(s);
    while (!(cur & ST_WAITQ)) {
        SL__ASSERT(n <= SL_SEM_MAX_PERMITS && st_count(cur) + n <= SL_SEM_MAX_PERMITS,
                   "semaphore permits overflow");
        if (st_cas(s, &cur, cur + (n << ST_SHIFT)))
            return;
    }
    sl__lock(&s->lock);
    give_and_unlock(s, n);
}

int sl_sem_add_permits(sl_sem_t *s, size_t n)
{
    if (n > SL_SEM_MAX_PERMITS)
        return SL_EINVAL;
    size_t cur = st_load(s);
    while (!(cur & ST_WAITQ)) {
        if (st_count(cur) + n > SL_SEM_MAX_PERMITS)
            return SL_EINVAL;
        if (n == 0 || st_cas(s, &cur, cur + (n << ST_SHIFT)))
            return 0;
    }
    sl__lock(&s->lock);
    /* With waiters queued the counter is 0, so n fits. */
    give_and_unlock(s, n);
    return 0;
}

void sl_sem_release_raw(sl_sem_t *s, size_t n)
{
    sem_release(s, n);
}

size_t sl_sem_forget_permits(sl_sem_t *s, size_t n)
{
    size_t cur = st_load(s);
    for (;;) {
        size_t take = st_count(cur) < n ? st_count(cur) : n;
        if (take == 0)
            return 0;
        if (st_cas(s, &cur, cur - (take << ST_SHIFT)))
            return take;
    }
}

void sl_sem_close(sl_sem_t *s)
{
    sl__lock(&s->lock);
    __atomic_fetch_or(&s->state, ST_CLOSED, __ATOMIC_ACQ_REL);
    for (;;) {
        sl_waiter_t *wake = NULL, *tail = NULL, *w;
        size_t back = 0;
        int batch = 0;
        while (batch < WAKE_BATCH && (w = s->waiters.head)) {
            /* What it absorbed returns to the counter, as when Tokio drops the failed Acquire. */
            back += (size_t)w->clause->arg - w->aux;
            sl__waitq_remove(&s->waiters, w);
            if (sl__waiter_claim(w)) {
                w->res = SL_ECLOSED;
                w->wake_next = NULL;
                if (tail)
                    tail->wake_next = w;
                else
                    wake = w;
                tail = w;
                batch++;
            }
        }
        size_t cur = st_load(s);
        size_t want;
        do {
            want = cur + (back << ST_SHIFT);
            if (!s->waiters.head)
                want &= ~ST_WAITQ;
        } while (!st_cas(s, &cur, want));
        int more = s->waiters.head != NULL;
        sl__unlock(&s->lock);
        sl__waiters_wake(wake);
        if (!more)
            return;
        sl__lock(&s->lock);
    }
}

int sl_sem_is_closed(const sl_sem_t *s)
{
    return (st_load(s) & ST_CLOSED) != 0;
}

size_t sl_sem_available(const sl_sem_t *s)
{
    return st_count(st_load(s));
}

/* ---- Permit records ------------------------------------------------------------------------ */

static inline sl__hold_t *rec_hold(sl_sem_permit_t *p)
{
    return (sl__hold_t *)(void *)p->hold;
}

static void rec_hold_release(sl__hold_t *h)
{
    /* The runtime unlinked the node; the task is ending with the permits still held. */
    sl_sem_permit_t *p = (sl_sem_permit_t *)(void *)h;
    sl_sem_t *s = p->sem;
    size_t n = p->n;
    p->task = NULL;
    p->sem = NULL;
    p->n = 0;
    if (s)
        sem_release(s, n);
}

static void rec_track(sl_sem_permit_t *p, sl_task_t *t)
{
    sl__hold_t *h = rec_hold(p);
    p->task = t;
    h->release = rec_hold_release;
    if (t)
        sl__hold_add(t, h); /* sets both links; an untracked record's are never read */
}

static void rec_fill(sl_sem_permit_t *p, sl_sem_t *s, size_t n)
{
    p->sem = s;
    p->n = n;
    rec_track(p, sl__self());
}

/* A failed acquire (and a select clause before it wins) leaves the record empty, so that
 * releasing or detaching it afterwards does nothing, whatever the caller's storage held. */
static void rec_clear(sl_sem_permit_t *p)
{
    if (!p)
        return; /* an untracked acquire */
    p->task = NULL;
    p->sem = NULL;
    p->n = 0;
}

static void rec_untrack(sl_sem_permit_t *p, const char *what)
{
    if (!p->task)
        return;
    SL__ASSERT(p->task == sl__self(), what);
    sl__hold_remove(rec_hold(p));
    p->task = NULL;
}

void sl_sem_permit_release(sl_sem_permit_t *p)
{
    if (!p->sem)
        return;
    rec_untrack(p, "sl_sem_permit_release: permit tracked by another task (detach it first)");
    sl_sem_t *s = p->sem;
    size_t n = p->n;
    p->sem = NULL;
    p->n = 0;
    sem_release(s, n);
}

void sl_sem_permit_forget(sl_sem_permit_t *p)
{
    if (!p->sem)
        return;
    rec_untrack(p, "sl_sem_permit_forget: permit tracked by another task");
    p->sem = NULL;
    p->n = 0;
}

void sl_sem_permit_detach(sl_sem_permit_t *p)
{
    rec_untrack(p, "sl_sem_permit_detach: permit tracked by another task");
}

void sl_sem_permit_adopt(sl_sem_permit_t *p)
{
    SL__ASSERT(p->task == NULL, "sl_sem_permit_adopt: the permit is still tracked (detach it)");
    if (p->sem)
        rec_track(p, sl__self());
}

size_t sl_sem_permit_count(const sl_sem_permit_t *p)
{
    return p->sem ? p->n : 0;
}

void sl_sem_permit_merge(sl_sem_permit_t *dst, sl_sem_permit_t *src)
{
    if (!src->sem)
        return;
    if (!dst->sem) {
        /* Take over src's record, tracking included. */
        sl_task_t *t = src->task;
        rec_untrack(src, "sl_sem_permit_merge: permit tracked by another task");
        dst->sem = src->sem;
        dst->n = src->n;
        rec_track(dst, t);
    } else {
        SL__ASSERT(dst->sem == src->sem, "sl_sem_permit_merge: permits of different semaphores");
        rec_untrack(src, "sl_sem_permit_merge: permit tracked by another task");
        dst->n += src->n;
    }
    src->sem = NULL;
    src->n = 0;
}

int sl_sem_permit_split(sl_sem_permit_t *p, size_t n, sl_sem_permit_t *out)
{
    if (n > sl_sem_permit_count(p))
        return SL_EINVAL;
    if (!p->sem || n == 0) {
        /* Splitting 0 off gives an empty record, which holds nothing and is not tracked. */
        memset(out, 0, sizeof *out);
        return 0;
    }
    SL__ASSERT(p->task == NULL || p->task == sl__self(),
               "sl_sem_permit_split: permit tracked by another task");
    if (n == p->n) {
        /* All of them: out takes p's record over, and p is left empty and untracked (a record
         * holding nothing must not stay on the task's list: it may be a local that goes). */
        memset(out, 0, sizeof *out);
        sl_sem_permit_merge(out, p);
        return 0;
    }
    p->n -= n;
    out->sem = p->sem;
    out->n = n;
    rec_track(out, p->task);
    return 0;
}

/* ---- Acquire as a waitable ------------------------------------------------------------------
 * Clause fields: obj = semaphore, buf = permit record (NULL: raw), arg = permits requested. */

static int try_take(sl_sem_t *s, size_t n)
{
    size_t cur = st_load(s);
    for (;;) {
        if (cur & ST_CLOSED)
            return SL_ECLOSED;
        if (st_count(cur) < n)
            return SL_EAGAIN;
        if (n == 0 || st_cas(s, &cur, cur - (n << ST_SHIFT)))
            return 0;
    }
}

static int acq_poll(sl_clause_t *c)
{
    size_t n = (size_t)c->arg;
    if (n > SL_SEM_MAX_PERMITS)
        return SL_EINVAL;
    int r = try_take(c->obj, n);
    if (r == 0 && c->buf)
        rec_fill(c->buf, c->obj, n);
    return r;
}

static int acq_arm(sl_clause_t *c)
{
    sl_sem_t *s = c->obj;
    size_t n = (size_t)c->arg;
    int r;
    if (n > SL_SEM_MAX_PERMITS) {
        c->w.res = SL_EINVAL;
        return sl__claim_self(c) ? SL__DONE : SL__LOST;
    }
    sl__lock(&s->lock);
    size_t cur = st_load(s);
    for (;;) {
        if (cur & ST_CLOSED) {
            c->w.res = SL_ECLOSED;
            r = sl__claim_self(c) ? SL__DONE : SL__LOST;
            break;
        }
        size_t have = st_count(cur);
        if (have >= n) {
            /* Take first (lock-free acquirers race with us), then claim; undo if we lost. */
            if (n && !st_cas(s, &cur, cur - (n << ST_SHIFT)))
                continue;
            if (sl__claim_self(c)) {
                c->w.res = 0;
                r = SL__DONE;
            } else {
                /* No waiter can be queued (WAITQ only changes under the lock we hold). */
                if (n)
                    __atomic_fetch_add(&s->state, n << ST_SHIFT, __ATOMIC_ACQ_REL);
                r = SL__LOST;
            }
            break;
        }
        /* Absorb what there is and queue for the rest. */
        if (!st_cas(s, &cur, (cur & ST_CLOSED) | ST_WAITQ))
            continue;
        c->w.aux = n - have;
        sl__waitq_push(&s->waiters, &c->w);
        r = SL__ARMED;
        break;
    }
    sl__unlock(&s->lock);
    return r;
}

static void acq_disarm(sl_clause_t *c)
{
    sl_sem_t *s = c->obj;
    sl__lock(&s->lock);
    if (!c->w.linked) {
        sl__unlock(&s->lock);
        return;
    }
    size_t got = (size_t)c->arg - c->w.aux;
    sl__waitq_remove(&s->waiters, &c->w);
    give_and_unlock(s, got);
}

static int acq_complete(sl_clause_t *c)
{
    if (c->w.res == 0 && c->buf)
        rec_fill(c->buf, c->obj, (size_t)c->arg);
    return c->w.res;
}

static const struct sl_clause_ops acq_ops = {acq_poll, acq_arm, acq_disarm, acq_complete};

void sl_clause_sem_acquire(sl_clause_t *c, sl_sem_t *s, size_t n, sl_sem_permit_t *p)
{
    rec_clear(p);
    sl__clause_init(c, &acq_ops, s, p, (uintptr_t)n, 0);
}

/* The record is emptied before anything else, so that every failure leaves it empty and the
 * wait stays a tail call (the one-clause wait's shared frames, docs/perf.md "A switch"). */
static int acquire_until(sl_sem_t *s, size_t n, sl_sem_permit_t *p, int64_t deadline)
{
    rec_clear(p);
    if (n > SL_SEM_MAX_PERMITS)
        return SL_EINVAL;
    return sl__wait1vp(&acq_ops, s, p, (uintptr_t)n, 0, deadline);
}

static int try_acquire(sl_sem_t *s, size_t n, sl_sem_permit_t *p)
{
    rec_clear(p);
    if (n > SL_SEM_MAX_PERMITS)
        return SL_EINVAL;
    int r = try_take(s, n);
    if (r == 0 && p)
        rec_fill(p, s, n);
    return r;
}

int sl_sem_acquire(sl_sem_t *s, sl_sem_permit_t *p)
{
    return acquire_until(s, 1, p, SL_FOREVER);
}

int sl_sem_try_acquire(sl_sem_t *s, sl_sem_permit_t *p)
{
    return try_acquire(s, 1, p);
}

int sl_sem_acquire_until(sl_sem_t *s, sl_sem_permit_t *p, int64_t deadline)
{
    return acquire_until(s, 1, p, deadline);
}

int sl_sem_acquire_many(sl_sem_t *s, size_t n, sl_sem_permit_t *p)
{
    return acquire_until(s, n, p, SL_FOREVER);
}

int sl_sem_try_acquire_many(sl_sem_t *s, size_t n, sl_sem_permit_t *p)
{
    return try_acquire(s, n, p);
}

int sl_sem_acquire_many_until(sl_sem_t *s, size_t n, sl_sem_permit_t *p, int64_t deadline)
{
    return acquire_until(s, n, p, deadline);
}

int sl_sem_acquire_raw(sl_sem_t *s, size_t n)
{
    return acquire_until(s, n, NULL, SL_FOREVER);
}

int sl_sem_try_acquire_raw(sl_sem_t *s, size_t n)
{
    return try_acquire(s, n, NULL);
}

int sl_sem_acquire_raw_until(sl_sem_t *s, size_t n, int64_t deadline)
{
    return acquire_until(s, n, NULL, deadline);
}
