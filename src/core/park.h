/*
 * Internal: the steps of a wait around its park, inline.
 *
 * A wait is: the deadline (sl__wait_deadline), a new generation published as WAITING
 * (sl__wait_start; the two together: sl__wait_begin), the caller's registration of its waiters, the
 * park and the winner (sl__wait_park), the caller's unregistration of the losers, and the result
 * (sl__wait_result). wait.c's generic wait runs them over an array of clauses; a primitive
 * whose waiter node already lives in its own object (an enabled sl_notified_t, notify.c) runs
 * them around that node, with no clause and no indirect calls, and so keeps the same deadline,
 * timeout-scope, cancellation and abort-handshake behaviour by construction.
 */
#ifndef SLUICE_CORE_PARK_H
#define SLUICE_CORE_PARK_H

#include "core/rt.h"
#include "core/switch.h"

/* Marks every scope whose effective deadline has passed: they were all cut short. */
static inline void sl__scopes_expire(sl_task_t *t, int64_t now)
{
    for (sl_timeout_t *s = t->timeouts; s; s = s->outer)
        if (s->effective <= now)
            s->expired = 1;
}

/* The deadline of a wait that will park: the caller's, or an enclosing timeout scope's if that
 * is earlier (*from_scope = 1). Returns 0 with *eff set and, unless it is SL_FOREVER, the
 * task's timer armed (it cannot fire before the park: timers fire in the scheduler loop);
 * SL_ETIMEDOUT when it has passed already (the scopes it came from marked expired); SL_ENOMEM
 * when the timer heap cannot grow. Nothing is registered yet when it fails. */
static inline int sl__wait_deadline(sl_task_t *t, int64_t deadline, int64_t *eff, int *from_scope)
{
    sl__worker_t *w = t->worker;
    *eff = deadline;
    *from_scope = 0;
    if (SL__LIKELY(deadline == SL_FOREVER && !t->timeouts))
        return 0; /* the common wait: no clock, no timer */
    if (t->timeouts && t->timeouts->effective < deadline) {
        *eff = t->timeouts->effective;
        *from_scope = 1;
    }
    if (*eff <= w->now) {
        if (*from_scope)
            sl__scopes_expire(t, w->now);
        return SL_ETIMEDOUT;
    }
    if (*eff != SL_FOREVER && sl__timer_arm(w, &t->wtimer, *eff) != 0)
        return SL_ENOMEM;
    return 0;
}

/* Starts the wait: bumps the task's wait generation and publishes it as WAITING. Returns
 * SL__ARMED (register the waiters now, with *gen), SL__LOST (an abort got in first and has
 * claimed the wait: register nothing, park for its wake) or SL_ECANCELED (an abort that saw no
 * wait yet: the wait is over, its timer cancelled). */
static inline int sl__wait_start(sl_task_t *t, int64_t eff, uint32_t *gen)
{
    uint32_t g = ++t->wgen & 0xffffffu;
    *gen = g;
    sl__wait_publish(t, SL__W_WAITING_AT(g));
    if (SL__UNLIKELY(atomic_load_explicit(&t->cancelled, memory_order_relaxed) &&
                     !atomic_load_explicit(&t->shield, memory_order_relaxed))) {
        /* Raced with an abort that saw no wait yet: claim it ourselves, or park for the
         * aborter's wake if it got in first. */
        if (sl__wstate_claim(t, g, SL__WIN_CANCEL)) {
            atomic_store(&t->wstate, SL__W_IDLE);
            if (eff != SL_FOREVER && t->wtimer.slot >= 0)
                sl__timer_cancel(t->worker, &t->wtimer);
            t->saw_cancel = 1;
            return SL_ECANCELED;
        }
        return SL__LOST;
    }
    return SL__ARMED;
}

/* What a wait carries from its start to its result. */
typedef struct sl__wait_ctx {
    int64_t eff;    /* the effective deadline (sl__wait_deadline) */
    uint32_t gen;   /* the wait's generation, for its waiters */
    int from_scope; /* eff came from a timeout scope */
} sl__wait_ctx_t;

/* sl__wait_deadline, then sl__wait_start, into *wc: SL__ARMED or SL__LOST (see
 * sl__wait_start), or the error that ends the wait before anything is registered
 * (SL_ETIMEDOUT, SL_ENOMEM, SL_ECANCELED; all negative). */
static inline int sl__wait_begin(sl_task_t *t, int64_t deadline, sl__wait_ctx_t *wc)
{
    int r = sl__wait_deadline(t, deadline, &wc->eff, &wc->from_scope);
    return r ? r : sl__wait_start(t, wc->eff, &wc->gen);
}

/* Parks unless `park` is 0 (the task claimed its own wait), then cancels the deadline's timer
 * and returns the winner: a waiter index (>= 0), SL__WIN_TIMEOUT or SL__WIN_CANCEL. The wait
 * word stays claimed until sl__wait_result(): the caller unregisters its losers in between. */
static inline __attribute__((always_inline)) int sl__wait_park(sl_task_t *t, int64_t eff, int park)
{
    if (park)
        sl__park_task(t);
    /* Only a wait with a deadline armed the timer: without one, the task's second line (where
     * the timer lives) stays untouched. */
    if (eff != SL_FOREVER && t->wtimer.slot >= 0)
        sl__timer_cancel(t->worker, &t->wtimer);
    uint32_t s = atomic_load_explicit(&t->wstate, memory_order_acquire);
    SL__ASSERT((s & 0xff) >= SL__W_BASE + SL__WIN_CANCEL, "woken without a claim");
    return (int)(s & 0xff) - SL__W_BASE;
}

/* Ends the wait: 0 when a waiter won, else SL_ETIMEDOUT (the scopes the deadline came from
 * marked expired) or SL_ECANCELED. */
static inline int sl__wait_result(sl_task_t *t, int win, const sl__wait_ctx_t *wc)
{
    int64_t eff = wc->eff;
    int from_scope = wc->from_scope;
    atomic_store_explicit(&t->wstate, SL__W_IDLE, memory_order_relaxed);
    if (SL__LIKELY(win >= 0))
        return 0;
    if (win == SL__WIN_TIMEOUT) {
        if (from_scope)
            sl__scopes_expire(t, eff);
        return SL_ETIMEDOUT;
    }
    t->saw_cancel = 1;
    return SL_ECANCELED;
}

#endif /* SLUICE_CORE_PARK_H */
