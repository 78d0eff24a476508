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

/* What a wait carries from its start to its result. A wait without a deadline (no caller
 * deadline, no timeout scope: nearly all of them) only sets `timed` = 0; the other fields are
 * read only when it is 1. Its address never leaves the waiting frame: the out-of-line deadline
 * code fills a copy (sl__wait_begin) and the lost wait reads one (sl__wait_result), so the
 * compiler may keep the fields in registers or in spill slots of its choosing across the park
 * rather than reload them from memory that a call could have changed (session 18: 10-11
 * instructions fewer per wait, docs/perf.md). */
typedef struct sl__wait_ctx {
    int64_t eff;    /* the effective deadline (when timed) */
    uint32_t wword; /* the wait word published (its generation, WAITING), for its waiters */
    int timed;      /* 1: eff is a real deadline and the task's timer may be armed */
    int from_scope; /* eff came from a timeout scope */
} sl__wait_ctx_t;

/* The deadline of a wait that will park, for a wait with a caller deadline or a timeout scope
 * (wait.c): the caller's, or an enclosing scope's if that is earlier (from_scope = 1). Returns 0
 * with wc's eff, timed and from_scope set and, unless eff is SL_FOREVER, the task's timer armed
 * (it cannot fire before the park: timers fire in the scheduler loop); SL_ETIMEDOUT when it has
 * passed already (the scopes it came from marked expired); SL_ENOMEM when the timer heap cannot
 * grow. Nothing is registered yet when it fails. */
int sl__wait_deadline_slow(sl_task_t *t, int64_t deadline, sl__wait_ctx_t *wc);

/* The end of a wait that no waiter won (wait.c): SL_ETIMEDOUT (the scopes the deadline came from
 * marked expired) or SL_ECANCELED. */
int sl__wait_lost(sl_task_t *t, int win, const sl__wait_ctx_t *wc);

/* Starts the wait: bumps the task's wait generation and publishes it as WAITING. Returns
 * SL__ARMED (register the waiters now, with wc->wword), SL__LOST (an abort got in first and has
 * claimed the wait: register nothing, park for its wake) or SL_ECANCELED (an abort that saw no
 * wait yet: the wait is over, its timer cancelled). */
static inline int sl__wait_start(sl_task_t *t, sl__wait_ctx_t *wc)
{
    uint32_t g = ++t->wgen & 0xffffffu;
    wc->wword = SL__W_WAITING_AT(g);
    sl__wait_publish(t, wc->wword);
    if (SL__UNLIKELY(atomic_load_explicit(&t->cancelled, memory_order_relaxed) &&
                     !atomic_load_explicit(&t->shield, memory_order_relaxed))) {
        /* Raced with an abort that saw no wait yet: claim it ourselves, or park for the
         * aborter's wake if it got in first. */
        if (sl__wstate_claim(t, g, SL__WIN_CANCEL)) {
            atomic_store(&t->wstate, SL__W_IDLE);
            if (wc->timed && t->wtimer.slot >= 0)
                sl__timer_cancel(t->worker, &t->wtimer);
            t->saw_cancel = 1;
            return SL_ECANCELED;
        }
        return SL__LOST;
    }
    return SL__ARMED;
}

/* The deadline (sl__wait_deadline_slow unless there is none), then sl__wait_start, into *wc:
 * SL__ARMED or SL__LOST (see sl__wait_start), or the error that ends the wait before anything
 * is registered (SL_ETIMEDOUT, SL_ENOMEM, SL_ECANCELED; all negative). */
static inline __attribute__((always_inline)) int sl__wait_begin(sl_task_t *t, int64_t deadline,
                                                                sl__wait_ctx_t *wc)
{
    if (SL__LIKELY(deadline == SL_FOREVER && !t->timeouts)) {
        wc->timed = 0; /* the common wait: no clock, no timer */
    } else {
        sl__wait_ctx_t d; /* filled out of line: *wc's own address never leaves the caller */
        int r = sl__wait_deadline_slow(t, deadline, &d);
        /* It returns 0 or an error, which is negative. Told to the analyzer only: as a test in
         * the code it cost gcc 6 instructions per timed wait (docs/perf.md, session 20). */
#ifdef __clang_analyzer__
        if (r > 0)
            __builtin_unreachable();
#endif
        if (r)
            return r;
        *wc = d;
    }
    return sl__wait_start(t, wc);
}

/* Parks unless `park` is 0 (the task claimed its own wait), then cancels the deadline's timer
 * and returns the winner: a waiter index (>= 0), SL__WIN_TIMEOUT or SL__WIN_CANCEL. The wait
 * word stays claimed until sl__wait_result(): the caller unregisters its losers in between. */
static inline __attribute__((always_inline)) int sl__wait_park(sl_task_t *t,
                                                               const sl__wait_ctx_t *wc, int park)
{
    if (park)
        sl__park_task(t);
    /* Only a wait with a deadline armed the timer: without one, the task's second line (where
     * the timer lives) stays untouched. */
    if (SL__UNLIKELY(wc->timed) && t->wtimer.slot >= 0)
        sl__timer_cancel(t->worker, &t->wtimer);
    uint32_t s = atomic_load_explicit(&t->wstate, memory_order_acquire);
    if (SL__LIKELY((s & 0xff) == SL__W_BASE))
        return 0; /* the first waiter won: every one-clause wait that ends well, tested alone */
    SL__ASSERT((s & 0xff) >= SL__W_BASE + SL__WIN_CANCEL, "woken without a claim");
    return (int)(s & 0xff) - SL__W_BASE;
}

/* Ends the wait: 0 when a waiter won, else SL_ETIMEDOUT or SL_ECANCELED (sl__wait_lost). */
static inline __attribute__((always_inline)) int sl__wait_result(sl_task_t *t, int win,
                                                                 const sl__wait_ctx_t *wc)
{
    atomic_store_explicit(&t->wstate, SL__W_IDLE, memory_order_relaxed);
    if (SL__LIKELY(win >= 0))
        return 0;
    sl__wait_ctx_t l = *wc; /* as in sl__wait_begin: a copy goes out of line */
    return sl__wait_lost(t, win, &l);
}

#endif /* SLUICE_CORE_PARK_H */
