/*
 * Internal: a task leaving its worker's CPU, inline.
 *
 * Included by sched.c (yields, the cooperative budget, sl__park) and, through core/park.h, by
 * wait.c and notify.c, whose waits park through sl__switch_from inlined into their own frames: from
 * the wait down to the switch's saved registers a parked task keeps 160 bytes of frames where a
 * called park and a called switch-away used to add 64 more, a line fewer to bring back per task
 * when a thousand tasks are woken together (docs/perf.md, notify_waiters).
 */
#ifndef SLUICE_CORE_SWITCH_H
#define SLUICE_CORE_SWITCH_H

#include "core/rt.h"
#include "coro/san.h"
#include "coro/stack.h"

#define BATCH       61 /* tasks run between two looks at the clock, timers and I/O */
#define RUNNEXT_MAX 3  /* consecutive runnext picks before the queue gets a turn */

/* Counters have one writer (their worker) and are read by sl_runtime_stats() from anywhere:
 * no read-modify-write that other threads must see whole, only a store each reader sees before
 * or after. On x86-64 that is one `add` to memory (its store is a single aligned 8-byte write,
 * atomic to any load), where a relaxed load and store are three instructions; ThreadSanitizer
 * builds and other targets keep the load and the store, which the C memory model names. */
static inline __attribute__((always_inline)) void stat_inc(_Atomic uint64_t *c)
{
#if defined(__x86_64__) && !SLUICE_TSAN
    __asm__ __volatile__("addq $1, %0" : "+m"(*(uint64_t *)c));
#else
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
#endif
}

static inline sl_task_t *rq_pop(sl__worker_t *w)
{
    sl_task_t *t = w->rq_head;
    if (t) {
        w->rq_head = t->next;
        if (!w->rq_head)
            w->rq_tail = NULL;
        t->next = NULL;
    }
    return t;
}

/* The older of the run queue's and the fresh queue's heads (sched.c). */
sl_task_t *sl__pop_oldest(sl__worker_t *w);

/* The next task: runnext at most RUNNEXT_MAX times in a row, then the older of the fresh and
 * rq heads, then runnext past its streak. With started_only (see sl__pick_started), a new task
 * will not do: NULL instead, whenever the older-of-the-heads step could yield one. */
static inline sl_task_t *sl__pick_from(sl__worker_t *w, int started_only)
{
    sl_task_t *t;
    if (w->runnext && w->runnext_streak < RUNNEXT_MAX) {
        t = w->runnext; /* a woken task: started */
        w->runnext = NULL;
        w->runnext_streak++;
        return t;
    }
    if (started_only) {
        /* Fresh tasks are all new, and so may be the rq head (a task spawned on this worker
         * by choice, the main task, a spawn the fresh ring had no room for). A thief may take
         * the fresh tasks right after this check (see steal()): then the trip through the
         * scheduler was for nothing, which is all that costs. */
        if (atomic_load_explicit(&w->fresh_len, memory_order_relaxed) != 0 ||
            (w->rq_head && w->rq_head->state == SL__T_NEW))
            return NULL;
    }
    w->runnext_streak = 0;
    if ((t = started_only ? rq_pop(w) : sl__pop_oldest(w)))
        return t;
    t = w->runnext;
    w->runnext = NULL;
    return t;
}

/* The next task for a task that parks or yields, to switch to directly: only a task that has
 * started (a new one needs a stack and the scheduler's bookkeeping) and only while the
 * scheduler's batch lasts, so that clock, timers, inbox and I/O are still looked at every
 * BATCH tasks. NULL: let the scheduler choose. */
static inline sl_task_t *sl__pick_started(sl__worker_t *w)
{
    /* Counted down before the pick, and given back when there is nothing to pick: the common
     * case is one read-modify-write of the counter and a branch on its sign. */
    if (SL__UNLIKELY(--w->batch_left < 0)) {
        w->batch_left = 0;
        return NULL;
    }
    sl_task_t *t = sl__pick_from(w, 1);
    if (!t)
        w->batch_left++;
    return t;
}

/* When a task is switched to directly: fetches, for writing, the top two lines of the stack of
 * the task that runs next (the registers its switch pops and the frame it returns into, where its
 * wait completes), and the first line of the task after that, whose context the next switch
 * reads; each has one task's time to arrive. A thousand tasks woken together (notify_waiters)
 * each resume on lines that left L1 long ago. Session 17 measured the choices against each
 * other: these three lines 0.892 of the time with the task line alone (min of twenty pairs,
 * notify_waiters), three stack lines instead of two no better (0.986), and the eight lines of
 * the task after next that earlier sessions fetched no better than none (docs/perf.md). */
static inline __attribute__((always_inline)) void sl__prefetch_resume(sl__worker_t *w)
{
    sl_task_t *m = w->rq_head;
    if (!m)
        return;
    if (m->state != SL__T_NEW) { /* a new task has no stack yet */
        char *sp = (char *)((uintptr_t)m->ctx.sp & ~(uintptr_t)(SL__CACHELINE - 1));
        sl__prefetch_w(sp);
        sl__prefetch_w(sp + SL__CACHELINE);
    }
    if ((m = m->next))
        sl__prefetch_w(m);
}

/* Task t, running on w -> the next started task of this worker while the scheduler's batch
 * lasts (see sl__pick_started), else -> the scheduler; t itself when it yields (`yielding`)
 * with nothing else to run. A park or a yield that finds another started task ready costs one
 * switch instead of two. Returns when t runs again, switched to by the scheduler or directly
 * by another task. The caller has set t->state. */
static inline __attribute__((always_inline)) void sl__switch_from(sl__worker_t *w, sl_task_t *t,
                                                                  int yielding)
{
    sl_task_t *n = sl__pick_started(w);
    /* A parked task is in no queue, so only a yield can find itself next. */
    if (yielding && n == t) { /* nothing else to run: scheduled again, as after a switch */
        t->budget = w->budget;
        return;
    }
    if (t->canary)
        sl__stack_check(t);
    sl__ctx_t *to;
    if (n) {
        sl__prefetch_resume(w);
        w->cur = n;
        /* A thread-local written from a task's frames: on aarch64 gcc keeps the thread pointer
         * read at the wait's entry across the switch, so this relies on a started task never
         * changing threads (runtime.md, "Why tasks never move between threads"). */
        sl__tls_task = n;
        n->budget = w->budget;
        stat_inc(yielding ? &w->n_direct : &w->n_park_direct);
        to = &n->ctx;
#if SLUICE_ASAN
        __sanitizer_start_switch_fiber(&t->asan_fake, n->stack->lo, n->stack->size);
#endif
#if SLUICE_TSAN
        __tsan_switch_to_fiber(n->tsan_fiber, 0);
#endif
    } else {
        if (!yielding)
            stat_inc(&w->n_park_sched);
        to = &w->sched;
#if SLUICE_ASAN
        __sanitizer_start_switch_fiber(&t->asan_fake, w->sched_stack_bottom, w->sched_stack_size);
#endif
#if SLUICE_TSAN
        __tsan_switch_to_fiber(w->sched_fiber, 0);
#endif
    }
    sl__ctx_switch(&t->ctx, to);
#if SLUICE_ASAN
    __sanitizer_finish_switch_fiber(t->asan_fake, NULL, NULL);
#endif
}

/* Parks the running task t until a waker makes it runnable (sl__park, inline). */
static inline __attribute__((always_inline)) void sl__park_task(sl_task_t *t)
{
    sl__worker_t *w = t->worker; /* loaded once: the stores below may alias it for the compiler */
    t->state = SL__T_PARKED;     /* counted by the switch, once it knows where to */
    sl__switch_from(w, t, 0);
}

#endif /* SLUICE_CORE_SWITCH_H */
