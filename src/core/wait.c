/*
 * The one waiting mechanism: claims, waits, select, timeout scopes.
 *
 * A task's wait word (t->wstate) is generation << 8 | code. Starting a wait bumps the
 * generation and stores WAITING. Anything that wants to complete the wait (a primitive handing
 * over a value, a timer, an abort) compare-and-swaps WAITING into CLAIMED(winner); exactly one
 * succeeds, and the winner then wakes the task exactly once. The task, once resumed,
 * unregisters every other clause, so losers leave no trace. See docs/design/runtime.md.
 */
#include "core/rt.h"
#include "core/park.h"

#include <string.h>

#define MAX_CLAUSES 64
_Static_assert(MAX_CLAUSES - 1 + SL__W_BASE <= 0xff,
               "a claimed wait word's winner fits its low byte");

int sl__wait_claim_task(sl_task_t *t, uint32_t gen, int winner)
{
    if (!sl__wstate_claim(t, gen, winner))
        return 0;
    sl__task_wake(t);
    return 1;
}

int sl__waiter_claim(sl_waiter_t *w)
{
    if (sl__tls_task == w->task)
        return 0;
    return sl__waiter_claim_held(w);
}

int sl__claim_self(sl_clause_t *c)
{
    /* The task itself, on its own worker: plain when its wait has no other clause. */
    return c->w.alone ? sl__waiter_claim_plain(&c->w) : sl__waiter_cas(&c->w);
}

void sl__waiter_wake(sl_waiter_t *w)
{
    sl__task_wake(w->task);
}

sl_waiter_t *sl__waitq_claim_first(sl_waitq_t *q)
{
    sl_waiter_t *w = q->head, *c;
    sl_task_t *self = sl__self();
    /* The common case, the head claimed: unlinked as the head, with nothing to look up. */
    if (SL__LIKELY(w != NULL) && (c = sl__waitq_claim_head(q, w)))
        return c;
    while (w) {
        sl_waiter_t *next = w->next;
        if (w->task == self) {
            w = next;
            continue;
        }
        if (sl__waiter_claim_held(w)) {
            sl__waitq_remove(q, w);
            return w;
        }
        /* Its wait completed elsewhere: the owner will find it unlinked when it disarms. */
        sl__waitq_remove(q, w);
        w = next;
    }
    return NULL;
}

int sl__waitq_claim_all(sl_waitq_t *q, int res, sl_waiter_t **list)
{
    int n = 0;
    sl_waiter_t *w;
    while ((w = sl__waitq_claim_first(q))) {
        w->res = res;
        w->wake_next = *list;
        *list = w;
        n++;
    }
    return n;
}

int sl__arm_cond(sl_clause_t *c, sl_lock_t *lock, sl_waitq_t *q, int (*ready)(const void *obj))
{
    int r = SL__ARMED;
    sl__lock(lock);
    if (ready(c->obj))
        r = sl__claim_self(c) ? SL__DONE : SL__LOST;
    else
        sl__waitq_push(q, &c->w);
    sl__unlock(lock);
    return r;
}

void sl__disarm_cond(sl_clause_t *c, sl_lock_t *lock, sl_waitq_t *q)
{
    sl__lock(lock);
    sl__waitq_remove(q, &c->w);
    sl__unlock(lock);
}

static int zero_poll(sl_clause_t *c)
{
    const sl__zero_wait_t *z = c->obj;
    return atomic_load_explicit(z->count, memory_order_acquire) == 0 ? 0 : SL_EAGAIN;
}

static int zero_ready(const void *obj)
{
    const sl__zero_wait_t *z = obj;
    return atomic_load_explicit(z->count, memory_order_relaxed) == 0;
}

static int zero_arm(sl_clause_t *c)
{
    sl__zero_wait_t *z = c->obj;
    return sl__arm_cond(c, z->lock, &z->q, zero_ready);
}

static void zero_disarm(sl_clause_t *c)
{
    sl__zero_wait_t *z = c->obj;
    sl__disarm_cond(c, z->lock, &z->q);
}

/* complete = poll: a count that rose again between the wake and now means wait on. */
const struct sl_clause_ops sl__zero_wait_ops = {zero_poll, zero_arm, zero_disarm, zero_poll};

/* ---- Timeout scopes ---------------------------------------------------------------------- */

void sl_timeout_enter(sl_timeout_t *to, int64_t deadline)
{
    sl_task_t *t = sl__self_checked("sl_timeout_enter");
    to->deadline = deadline;
    to->outer = t->timeouts;
    to->effective = deadline;
    if (to->outer && to->outer->effective < deadline)
        to->effective = to->outer->effective;
    to->expired = 0;
    t->timeouts = to;
}

int sl_timeout_exit(sl_timeout_t *to)
{
    sl_task_t *t = sl__self_checked("sl_timeout_exit");
    SL__ASSERT(t->timeouts == to, "sl_timeout_exit: not the innermost timeout scope");
    t->timeouts = to->outer;
    return to->expired ? SL_ETIMEDOUT : 0;
}

int sl_timeout_run(int64_t ns, int (*fn)(void *), void *arg)
{
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(ns));
    int r = fn(arg);
    int e = sl_timeout_exit(&to);
    return e ? e : r;
}

static inline int is_cancelled(sl_task_t *t)
{
    return atomic_load_explicit(&t->cancelled, memory_order_relaxed) &&
           !atomic_load_explicit(&t->shield, memory_order_relaxed);
}

/* precheck when a scope is open and the round's clock has not been read yet (rt.h, "The
 * round's clock"): reads it and checks again. Out of line and called last, so that precheck's
 * inline part keeps nothing live across a call (with the read inline, gcc kept two more
 * registers through every timed receive: timeout_rpc 6 instructions per call, docs/perf.md,
 * session 20). */
static int precheck_clock_read(sl_task_t *t);

static inline int precheck(sl_task_t *t)
{
    if (SL__UNLIKELY(is_cancelled(t))) {
        t->saw_cancel = 1;
        return SL_ECANCELED;
    }
    if (SL__UNLIKELY(t->timeouts)) {
        int64_t now = t->worker->now;
        if (SL__UNLIKELY(now == SL__NOW_STALE))
            return precheck_clock_read(t);
        if (t->timeouts->effective <= now) {
            sl__scopes_expire(t, now);
            return SL_ETIMEDOUT;
        }
    }
    return 0;
}

static __attribute__((noinline)) int precheck_clock_read(sl_task_t *t)
{
    sl__now_read(t->worker);
    return precheck(t);
}

int sl__wait_precheck(sl_task_t *t)
{
    return precheck(t);
}

/* ---- The wait ------------------------------------------------------------------------------ */

int sl__wait_deadline_slow(sl_task_t *t, int64_t deadline, sl__wait_ctx_t *wc)
{
    sl__worker_t *w = t->worker;
    int64_t now = sl__now(w); /* first: a clock read between wc's stores would split them */
    int64_t eff = deadline;
    int from_scope = 0;
    if (t->timeouts && t->timeouts->effective < deadline) {
        eff = t->timeouts->effective;
        from_scope = 1;
    }
    if (eff <= now) {
        if (from_scope)
            sl__scopes_expire(t, now);
        return SL_ETIMEDOUT;
    }
    wc->eff = eff;
    wc->from_scope = from_scope;
    wc->timed = 0;
    if (eff != SL_FOREVER) {
        if (sl__timer_arm(w, &t->wtimer, eff) != 0)
            return SL_ENOMEM;
        wc->timed = 1;
    }
    return 0;
}

int sl__wait_lost(sl_task_t *t, int win, const sl__wait_ctx_t *wc)
{
    if (win == SL__WIN_TIMEOUT) {
        SL__ASSERT(wc->timed, "a wait without a deadline timed out");
        if (wc->from_scope)
            sl__scopes_expire(t, wc->eff);
        return SL_ETIMEDOUT;
    }
    t->saw_cancel = 1;
    return SL_ECANCELED;
}

static uint64_t next_rand(sl__worker_t *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

/* Index of the k-th clause visited from start (a division per clause would cost more than the
 * rest of a one-clause wait). */
static inline int clause_at(int start, int k, int n)
{
    int i = start + k;
    return i >= n ? i - n : i;
}

/* The wait itself; the caller has checked cancellation and timeout scopes. Inlined into its
 * two callers so that sl__wait1's copy is compiled for one clause, already polled: the loops
 * over clauses and the fairness draw vanish from the path every blocking call takes. */
static inline __attribute__((always_inline)) int wait_impl(sl_task_t *t, sl_clause_t *c, int n,
                                                           int flags, int64_t deadline)
{
    sl__worker_t *w = t->worker;
    int r;
    int start = 0;
    if (flags & SL_SELECT_FAIR)
        start = (int)(next_rand(w) % (uint64_t)n);

    int skip_poll = flags & SL__WAIT_POLLED;
    for (;;) {
        /* Pass 1: anything ready now wins without registering. */
        for (int k = 0; k < n && !skip_poll; k++) {
            int i = clause_at(start, k, n);
            if (!c[i].ops)
                continue;
            r = c[i].ops->poll(&c[i]);
            if (r != SL_EAGAIN) {
                c[i].res = r;
                return i;
            }
        }
        skip_poll = 0;
        sl__wait_ctx_t wc;
        int state = sl__wait_begin(t, deadline, &wc);
        if (state < 0)
            return state;
        /* Register every clause; a clause found ready here completes at once. */
        int armed_upto = 0;
        for (int k = 0; k < n && state == SL__ARMED; k++) {
            int i = clause_at(start, k, n);
            armed_upto = k + 1;
            if (!c[i].ops)
                continue;
            sl__clause_waiter(&c[i], t, wc.wword, i, n == 1);
            state = c[i].ops->arm(&c[i]);
        }
        int win = sl__wait_park(t, &wc, state != SL__DONE);
        /* Unregister the losers (and the winner, whose claimer normally unlinked it). */
        for (int k = 0; k < armed_upto; k++) {
            int i = clause_at(start, k, n);
            if (c[i].ops && i != win)
                c[i].ops->disarm(&c[i]);
        }
        if ((r = sl__wait_result(t, win, &wc)))
            return r;
        r = c[win].w.res;
        /* The winner was armed, so it has ops (the analyzer lets the arm calls clear them). */
        if (c[win].ops->complete) { // NOLINT(clang-analyzer-core.NullDereference)
            r = c[win].ops->complete(&c[win]);
            if (r == SL_EAGAIN) {
                if ((r = sl__wait_precheck(t)))
                    return r;
                continue;
            }
        }
        c[win].res = r;
        return win;
    }
}

int sl__wait(sl_clause_t *c, int n, int flags, int64_t deadline)
{
    sl_task_t *t = sl__self_checked("a blocking sluice call");
    if (n < 1 || n > MAX_CLAUSES)
        return SL_EINVAL;
    int r = sl__wait_precheck(t);
    if (r)
        return r;
    return wait_impl(t, c, n, flags, deadline);
}

int sl__wait1(sl_clause_t *c, int64_t deadline)
{
    sl_task_t *t = sl__self_checked("a blocking sluice call");
    int r = sl__wait_enter(t);
    if (r)
        return r;
    r = c->ops->poll(c);
    if (r != SL_EAGAIN)
        return r;
    return sl__wait1_polled(c, deadline);
}

/* Every one-clause wait parks from here: on a clause made from ops..arg64 in this frame, or, with
 * ops NULL, on the caller's clause obj (sl__wait1_polled). When two tasks hand work to each
 * other, the task resumed returns through the same frames as the one that parked, as far up as
 * their paths are shared, so the return-stack predictor is right for those returns instead of
 * wrong for each (docs/perf.md, "A switch"); and a blocking call that tail-calls this runs no
 * frame between its own and the park's. */
__attribute__((noinline, used)) int sl__wait1v(const struct sl_clause_ops *ops, void *obj,
                                               void *buf, uintptr_t arg, int64_t arg64,
                                               int64_t deadline)
{
    /* wait_impl for one clause, already polled, written out: its result is returned rather
     * than stored in the clause, and nothing indexes or loops. Every caller runs in a task. */
    sl_clause_t own, *c = obj;
    sl_task_t *t;
    if (ops) {
        uintptr_t poll_first = (uintptr_t)ops & SL__WAIT1_POLL;
        ops = (const struct sl_clause_ops *)((uintptr_t)ops - poll_first);
        /* sl__clause_init without the stores the wait makes anyway (c->res at the end, the
         * waiter's fields in sl__clause_waiter before the arm; no op reads them earlier). */
        own.ops = ops;
        own.obj = obj;
        own.buf = buf;
        own.arg = arg;
        own.arg64 = arg64;
        own.w.aux = 0;
        c = &own;
        if (poll_first) { /* sl__wait1vp: what sl__wait1 does before the wait */
            t = sl__self_checked("a blocking sluice call");
            int r = sl__wait_enter(t);
            if (r)
                return r;
            if ((r = ops->poll(c)) != SL_EAGAIN)
                return r;
        }
    }
    t = sl__tls_task;
    for (;;) {
        sl__wait_ctx_t wc;
        int state = sl__wait_begin(t, deadline, &wc);
        if (state < 0)
            return state;
        int armed = state == SL__ARMED;
        if (armed) {
            sl__clause_waiter(c, t, wc.wword, 0, 1);
            state = c->ops->arm(c);
        }
        int win = sl__wait_park(t, &wc, state != SL__DONE);
        if (win != 0 && armed)
            c->ops->disarm(c); /* the deadline or an abort won */
        int r = sl__wait_result(t, win, &wc);
        if (r)
            return r;
        r = c->w.res;
        if (c->ops->complete) {
            r = c->ops->complete(c);
            if (r == SL_EAGAIN) { /* taken by another: poll again, then wait again */
                if ((r = sl__wait_precheck(t)))
                    return r;
                if ((r = c->ops->poll(c)) == SL_EAGAIN)
                    continue;
            }
        }
        c->res = r;
        return r;
    }
}

int sl_select(sl_clause_t *c, int n, int flags, int64_t deadline)
{
    if (n < 1 || n > MAX_CLAUSES)
        return SL_EINVAL;
    int any = 0;
    for (int i = 0; i < n; i++)
        any |= c[i].ops != NULL;
    if (!any) {
        int r = sl_sleep_until(deadline);
        return r ? r : SL_ETIMEDOUT;
    }
    sl__coop();
    return sl__wait(c, n, flags, deadline);
}

void sl_clause_none(sl_clause_t *c)
{
    memset(c, 0, sizeof *c);
}
