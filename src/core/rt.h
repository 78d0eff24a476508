/*
 * Internal: runtime, worker and task structures, and the waiting protocol every primitive
 * uses. docs/design/runtime.md explains the design; this header is the contract.
 */
#ifndef SLUICE_CORE_RT_H
#define SLUICE_CORE_RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sluice.h>

#include "coro/ctx.h"
#include "util/lock.h"

#define SL__CACHELINE       ((size_t)64)
#define SL__STACK_COLOURS   32         /* task stack start offsets, in cache lines (stack_colour) */
#define SL__STACK_RUN       16         /* default-size stacks mapped together (stack.c) */
#define SL__STACK_RUN_BYTES (2u << 20) /* ... in at most this much address space */
#define SL__STACK_RETIRE    32         /* retired stacks unmapped together (stack.c) */
#define SL__STACK_POOL_MAX  4096       /* stacks the process's pool keeps at most (stack.c) */
#define SL__STACK_POOL_TTL  ((int64_t)1000000000) /* ... for this long unused (ns) */

/* ---- Assertions: always on, print, abort (programmer errors) ---------------------------- */

void sl__die(const char *file, int line, const char *msg) __attribute__((noreturn, cold));

#define SL__ASSERT(cond, msg)                 \
    do {                                      \
        if (__builtin_expect(!(cond), 0))     \
            sl__die(__FILE__, __LINE__, msg); \
    } while (0)

#define SL__LIKELY(x)   __builtin_expect(!!(x), 1)
#define SL__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Prefetches the line holding p for writing: in exclusive state, so that the stores that follow
 * need no second trip to the core that had it. gcc turns __builtin_prefetch(p, 1) into a plain
 * read prefetch unless the target has PREFETCHW, which the x86-64 baseline does not name;
 * processors without it execute the instruction as a NOP. */
static inline void sl__prefetch_w(const void *p)
{
#if defined(__x86_64__)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p, 1, 3);
#endif
}

/* ---- Allocation ------------------------------------------------------------------------ */

void *sl__alloc(sl_runtime_t *rt, size_t size);
void *sl__calloc(sl_runtime_t *rt, size_t size);
void sl__free(sl_runtime_t *rt, void *p, size_t size);

/* ---- Timers (per-worker 4-ary min-heap; nodes embedded in their owners) ------------------ */

enum {
    SL__TIMER_WAIT = 1,   /* task->wtimer: the deadline of the current wait */
    SL__TIMER_CLAUSE = 2, /* a sleep clause in a select */
    SL__TIMER_FUNC = 3    /* a plain callback: owner is an sl__timer_func */
};

typedef struct sl__timer_func {
    sl_timer_t timer;
    void (*fn)(struct sl__timer_func *tf);
} sl__timer_func_t;

typedef struct sl__timer_heap {
    sl_timer_t **v;
    int32_t len;
    int32_t cap;
} sl__timer_heap_t;

struct sl__worker;
/* Returns 0, or SL_ENOMEM when the heap could not grow (nothing armed). */
int sl__timer_arm(struct sl__worker *w, sl_timer_t *t, int64_t when);
void sl__timer_cancel(struct sl__worker *w, sl_timer_t *t);
int64_t sl__timer_next(struct sl__worker *w); /* earliest deadline, or SL_FOREVER */
void sl__timers_run(struct sl__worker *w);    /* fires everything due at sl__now(w) */
void sl__timer_heap_free(struct sl__worker *w);

/* ---- Stacks ------------------------------------------------------------------------------ */

typedef struct sl__stack {
    struct sl__stack *next; /* free-list link while cached, retired or pooled */
    struct sl__stack *prev; /* the pool's other link (stack.c) */
    int64_t pooled_at;      /* when it went to the pool (sl_clock) */
    char *map;              /* the whole mapping, guard included */
    size_t map_size;
    char *lo;    /* lowest usable byte */
    size_t size; /* usable bytes */
    int guard;   /* 0 none (canary), 1 madvise guard, 2 mprotect guard */
} sl__stack_t;

/* ---- Tasks --------------------------------------------------------------------------------- */

enum sl__task_state {
    SL__T_NEW = 0,  /* spawned, never run */
    SL__T_RUNNABLE, /* in a run queue or inbox, or running */
    SL__T_PARKED,   /* waiting for a wake */
    SL__T_DONE      /* finished: its stack is being released */
};

/* The wait state word: generation << 8 | code. Codes: 0 idle, 1 waiting, >= 2 claimed with
 * winner index code - SL__W_BASE (negative winners are SL__WIN_TIMEOUT, SL__WIN_CANCEL). */
#define SL__W_IDLE                 0u
#define SL__W_WAITING              1u
#define SL__W_BASE                 4
#define SL__WIN_TIMEOUT            (-1)
#define SL__WIN_CANCEL             (-2)
#define SL__W_WAITING_AT(gen)      (((uint32_t)(gen) << 8) | SL__W_WAITING)
#define SL__W_CLAIMED(gen, winner) (((uint32_t)(gen) << 8) | (uint32_t)((winner) + SL__W_BASE))

typedef struct sl__defer {
    void (*fn)(void *);
    void *arg;
} sl__defer_t;

#define SL__DEFER_INLINE 4

/* A task's rarely used state, allocated the first time the task needs it (sl_defer, sl_panic)
 * and written only by the task itself; joiners read panic_msg once the task is done. */
typedef struct sl__task_ext {
    char *panic_msg;     /* allocated on panic */
    sl__defer_t *defers; /* defer_inline, or allocated once there are more */
    int ndefers, cap_defers;
    sl__defer_t defer_inline[SL__DEFER_INLINE];
} sl__task_ext_t;

/* A resource a task holds and the runtime releases if the task ends without doing so. The
 * task's list has a one-pointer head (it shares the task's first line with the wait state):
 * each node points at the pointer that points at it (pprev), so a node leaves in O(1) without
 * knowing the head; pprev is NULL while the node is in no list. */
typedef struct sl__hold {
    struct sl__hold *next, **pprev;
    void (*release)(struct sl__hold *h);
} sl__hold_t;

/* At most 256 bytes, four cache lines, in every build. A spawned task is written by its spawner
 * and often run, and freed, on another worker (spawn_join: 10,000 at a time), so each of its
 * lines may cross between cores twice per task. What only some tasks need lives elsewhere: the
 * defers and a panic message behind `ext`, a name other than "task" in the task's memory block
 * after its four lines (see TASK_SPAN in sched.c); and fields used only before a task starts
 * share their bytes with fields used only after. */
struct sl_task {
    /* First 64 bytes: everything a wake, a claim and a switch touch, so that resuming a task
     * whose data has left the cache costs as few misses as possible. */
    sl__ctx_t ctx;
    struct sl__worker *worker; /* owner; fixed once the task has started */
    sl_task_t *next;           /* run queue / fresh queue link */
    sl_timeout_t *timeouts;    /* innermost timeout scope */
    sl__hold_t *holds;         /* held resources, newest first (sl__hold_add) */
    uint32_t seq;              /* enqueue order, to keep rq and fresh FIFO together (wraps) */
    _Atomic uint32_t wstate;   /* see SL__W_* */
    uint32_t wgen;
    _Atomic int cancelled;
    int budget; /* units left, minus one: the unit that takes it below 0 yields (w->budget) */
    unsigned char state;        /* enum sl__task_state; only the owner worker writes it */
    unsigned char canary;       /* its stack has no guard page: check the canary on switches */
    unsigned char saw_cancel;   /* a call reported SL_ECANCELED to the task */
    unsigned char stack_failed; /* no stack could be mapped when it was to start */

    /* Second 64 bytes: what only some waits touch (a deadline timer, the shield read once
     * the task is cancelled) and the cross-worker wake link. A wait without a deadline on the
     * task's own worker (a wake, a claim, a switch, a hold added and removed) never touches
     * this line. */
    sl_timer_t wtimer; /* deadline of the current wait */
    _Atomic int shield;
    /* 0, or SL__ABORT_POSTED | the generation of the wait that the one abort posted to the
     * task's worker found (sl__abort_claim). */
    _Atomic uint32_t abort_req;
    sl_task_t *inbox_next; /* inbox link */
    sl_task_t *abort_next; /* the worker's `aborts` link */

    /* Third and fourth: the task's life from spawn to join. */
    union {
        /* While it is new (never run): */
        struct {
            size_t stack_size; /* the stack it will get when it starts */
        };
        /* Once it has started (or was skipped): */
        struct {
            sl_task_t *all_next, *all_prev; /* worker's list of started tasks */
        };
    };
    sl__stack_t *stack;
    union {
        /* Until it runs: */
        struct {
            sl_task_fn fn;
            void *arg;
        };
        /* Once it has ended: */
        struct {
            void *result;
            int status; /* sl_task_status_t */
        };
    };
    sl_runtime_t *rt;
    uint64_t id;
    const char *name; /* "task", "main", or the copy after the task's lines (TASK_SPAN) */

    _Atomic int done;
    _Atomic int refs;      /* one for running, one for the handle */
    sl_lock_t lock;        /* protects joiners */
    unsigned char mem_off; /* the allocation starts this many bytes before the task */
    /* No handle can ever join it: spawned detached, or its handle is a JoinSet's, which joins
     * through on_done. Its end stores `done` without the lock (task_finish_wake). */
    unsigned char unjoinable;
    /* The index + 1 of the worker whose task cache the memory goes back to (its home, see
     * task_free), 0 for none: read by a remote free without touching the home's lines. */
    uint16_t home_slot;
    sl_waitq_t joiners;
    void (*on_done)(sl_task_t *t, void *arg); /* called once the task has ended (JoinSet) */
    void *on_done_arg;
    sl__task_ext_t *ext; /* NULL until the task defers or panics */
#if SLUICE_ASAN
    void *asan_fake;
#endif
#if SLUICE_TSAN
    void *tsan_fiber;
#endif
};

_Static_assert(sizeof(struct sl_task) <= 4 * SL__CACHELINE, "a task is four cache lines");

#define SL__ABORT_POSTED 0x80000000u /* in sl_task.abort_req */

/* ---- Workers and the runtime --------------------------------------------------------------- */

#define SL__OS_CLASSES 2 /* oneshot block size classes cached per worker (src/chan/oneshot.c) */

typedef struct sl__worker {
    sl_runtime_t *rt;
    int index;
    /* rt->opts.budget - 1, where a switch finds it on the line it reads anyway: a task's budget
     * counts down to -1, so that taking a unit is one decrement of memory and a branch on the
     * sign (a test for <= 0 costs gcc a load, a store and a test besides). */
    int budget;
    pthread_t thread;
    sl__ctx_t sched; /* the scheduler loop's context (thread's own stack) */
    sl_task_t *cur;  /* running task or NULL */
    /* The round's clock (sl_now()): read when the round starts, or SL__NOW_STALE until
     * something in the round asks for it (see "The round's clock" below). Owner only. */
    int64_t now;
    uint32_t seq; /* enqueue counter (owner only; wraps, compared as a difference) */

    sl_task_t *rq_head, *rq_tail; /* local run queue, owner only: started tasks and
                                   * unstarted ones not to be stolen */
    sl_task_t *runnext;
    int runnext_streak;
    int batch_left; /* tasks still to run before the scheduler looks at clock, timers, I/O */

    sl_task_t *all; /* started tasks, owner only (shutdown walks it) */
    int shutdown_seen;

    /* Free oneshot blocks by size class (src/chan/oneshot.c), owner only. */
    void *os_cache[SL__OS_CLASSES];
    int os_cached[SL__OS_CLASSES];

    /* Cross-thread state, each on its own cache line. */
    /* Spawned tasks that have not started, which other workers may steal: a ring of
     * fresh_cap entries (a power of two) from index fresh_h, fresh_len of them. Only the
     * owner adds entries and replaces the array; a thief copies task pointers out of it and
     * never touches the tasks themselves (see steal() in sched.c). */
    _Alignas(SL__CACHELINE) sl_lock_t fresh_lock;
    struct sl__fresh_ent *fresh_v;
    uint32_t fresh_cap, fresh_h;
    _Atomic long fresh_len;
    /* When the head may be stolen (its spawn time plus rt->steal_wait); INT64_MAX when
     * the queue is empty. Idle workers poll it (not fresh_len, which every spawn writes) on a
     * line of its own that is written only when the value changes, so a spinning thief does not
     * take the spawner's lines away per spawn. */
    _Alignas(SL__CACHELINE) _Atomic int64_t fresh_steal_at;

    _Alignas(SL__CACHELINE) _Atomic(sl_task_t *) inbox; /* wakes from other threads */
    /* Aborts posted from other threads (sl__abort_claim): a lock-free stack through
     * sl_task.abort_next, drained by the owner, which claims the waits itself. */
    _Atomic(sl_task_t *) aborts;
    _Atomic int sleeping;

    _Alignas(SL__CACHELINE) int epfd;
    /* fds registered with epfd (added by this worker, removed by sl_close() anywhere): with
     * none, a poll between batches could only find nothing, and the syscall is skipped. */
    _Atomic int io_regs;
    int evfd;
    sl__timer_heap_t timers;
    sl__stack_t *stack_cache;
    int stack_cached;
    int stack_nretired;
    int stack_run_failed;       /* a run could not be mapped: single stacks from then on */
    sl__stack_t *stack_retired; /* past the cache: unmapped in a batch (stack.c) */
    char *stack_run;            /* the uncarved rest of the last run of stacks mapped */
    size_t stack_run_left;
    int stack_run_guarded; /* every stack of that run has its guard page already */
    void *altstack;
    uint64_t rng;
    uint32_t colour; /* counts started tasks, for stack_colour() */

    /* Live tasks, counted per worker so that spawning and ending touch no shared line: tasks
     * this worker spawned and tasks it reaped (owner writes; see live_tasks() in sched.c). */
    _Atomic long live_in, live_out;
    uint64_t id_next, id_end; /* this worker's block of task ids */
    /* Task memory (see task_free in sched.c): the owner's cache, and what other workers freed. */
    char *task_cache; /* at most TASK_CACHE_MAX blocks, task_cached of them */
    int task_cached;
    char *task_adopted; /* a remote list taken whole, used up before the next one */
    /* Blocks freed here whose home is another worker, one chain per home ([home->index]; NULL
     * with one worker), pushed home TASK_FREE_BATCH at a time (see task_free in sched.c). */
    struct sl__free_batch *free_batch;

    /* Task memory other workers freed: CAS-pushed by them, on its own line (it shared one
     * with the owner's cache, and spawn_join's spawner lost that line to every remote free). */
    _Alignas(SL__CACHELINE) _Atomic(char *) task_remote;

    /* Counters (owner writes, others read relaxed), on a line of their own: they shared
     * task_remote's, and every spawn's n_spawned took that line back from the worker whose
     * remote frees had just CASed it (spawn_join: both sides missed it once per task). */
    _Alignas(SL__CACHELINE) _Atomic uint64_t n_sched_switches; /* (_Alignas: per declarator) */
    /* A park switches either to another task directly (n_park_direct) or to the scheduler
     * (n_park_sched): one counter on every hand-off, and each counter alone never steps back,
     * so the sums sl_runtime_stats() makes of them (parks; direct switches, with the yields'
     * n_direct) do not either, read while the worker runs. The direct ones are added to the
     * scheduler's own switches for `switches`, so that a direct switch counts once. */
    _Atomic uint64_t n_direct, n_park_direct, n_park_sched, n_steals, n_budget_yields, n_spawned;

#if SLUICE_ASAN
    const void *sched_stack_bottom;
    size_t sched_stack_size;
    void *sched_fake;
#endif
#if SLUICE_TSAN
    void *sched_fiber;
#endif
} sl__worker_t;

/* ---- The round's clock ---------------------------------------------------------------------
 *
 * sl_now() is cached for a scheduling round (include/sluice/time.h). A round of a one-worker
 * runtime that starts with no timer armed does not read the clock: it marks the cache stale,
 * and the round's first reader (a deadline, a scope's check, a sleep, sl_now()) reads it, once.
 * A round with nothing that asks - a thousand tasks waking one another - reads no clock at all:
 * on the KVM machine a clock_gettime() took about 40 ns from each notify_waiters round of 61
 * wakes, 2% (docs/perf.md, session 20). A round that starts with a timer armed reads it at its
 * start, in the scheduler, as its due-timer check needs it anyway: read by a task in the middle
 * of its work instead (timeout_rpc's client computing its next deadline), the same number of
 * reads cost 3% more, the read's serialising time-stamp counter stalling the task's pipeline.
 * With more workers every round reads it at its start: spawns are stamped with it for stealing
 * (fresh_push in sched.c). Owner thread only. */
#define SL__NOW_STALE INT64_MIN

/* Reads the clock into w->now (sched.c). */
int64_t sl__now_read(sl__worker_t *w);

static inline int64_t sl__now(sl__worker_t *w)
{
    int64_t now = w->now;
    if (SL__UNLIKELY(now == SL__NOW_STALE))
        now = sl__now_read(w);
    return now;
}

typedef struct sl__pool sl__pool_t;

struct sl_runtime {
    sl_runtime_opts_t opts;
    int nworkers;
    sl__worker_t **workers;
    _Atomic int shutdown;
    _Atomic int running;
    _Atomic uint64_t next_id;
    _Atomic int nsleeping;
    _Atomic int waking; /* a sleeping worker has been told to look for work */
    _Atomic long stacks_live;
    _Atomic long stacks_guarded;
    _Atomic long stack_unmaps;    /* munmap calls for stacks (stack.c; read by the tests) */
    _Atomic long stack_runs;      /* runs of stacks mapped (stack.c; read by the tests) */
    _Atomic long mprotect_guards; /* guards that cost a mapping */
    long mprotect_budget;
    _Atomic int madv_guard;  /* 1: MADV_GUARD_INSTALL works, 0: no, -1: unknown */
    _Atomic int run_guard;   /* 0: process_madvise cannot guard a run at once (stack.c) */
    _Atomic long run_guards; /* runs guarded with one call (stack.c; read by the tests) */
    size_t page;
    sl__pool_t *pool;
    void *io; /* I/O state (src/io) */
    void *main_result;
    int main_status;
    /* How long the oldest unstarted task of a queue waits before another worker may take some:
     * [0] a long queue (opts.steal_delay_ns), [1] a short one (STEAL_SMALL_WAIT times that),
     * both at most SL__STEAL_WAIT_MAX. Set once by sl_runtime_new (see steal_waits_init in
     * sched.c). */
    int64_t steal_wait[2];
};

/* A spawn time (monotonic ns) plus a steal wait cannot overflow. */
#define SL__STEAL_WAIT_MAX (INT64_MAX / 4)

/* The worker of the calling thread (NULL outside workers). */
extern __thread sl__worker_t *sl__tls_worker __attribute__((tls_model("initial-exec")));

sl__worker_t *sl__worker(void); /* the calling thread's worker (reads TLS afresh) */
void sl__die_outside_task(const char *fn) __attribute__((noreturn, cold));

/* The task running on the calling thread: its worker's `cur`, kept in a thread-local of its
 * own so that asking costs one load (every blocking call asks). NULL in the scheduler loop and
 * outside workers. Written only where `cur` is (sched.c's switch_in, sl__switch_from). */
extern __thread sl_task_t *sl__tls_task __attribute__((tls_model("initial-exec")));

/* The running task, or NULL. Inline: every blocking call asks. */
static inline sl_task_t *sl__self(void)
{
    return sl__tls_task;
}

/* The running task; dies with a message naming fn when called outside a task. */
static inline sl_task_t *sl__self_checked(const char *fn)
{
    sl_task_t *t = sl__self();
    if (SL__UNLIKELY(!t))
        sl__die_outside_task(fn);
    return t;
}

/* ---- Scheduling -------------------------------------------------------------------------- */

/* Appends t to w's run queue (w's thread only). */
static inline void sl__rq_push(sl__worker_t *w, sl_task_t *t)
{
    t->next = NULL;
    t->seq = w->seq++;
    if (w->rq_tail)
        w->rq_tail->next = t;
    else
        w->rq_head = t;
    w->rq_tail = t;
}

/* Makes a parked task runnable (exactly once per park). Any thread. */
void sl__task_wake(sl_task_t *t);
/* sl__task_wake() for many tasks of the calling thread's worker w, from a task of w (w->cur), in
 * the order and with the result of one wake each: every task takes the runnext slot and the
 * task it displaces joins the run queue, so that after k of them the queue has gained the old
 * runnext and the first k - 1, and runnext holds the last. A loop that wakes many (a broadcast's
 * claimed list, sl__waiters_wake_list; sl_notify_waiters' batch) keeps the slot in a local,
 * chains the displaced tasks with their enqueue order from a local copy of w->seq, and puts the
 * chain on the run queue once (sl__wakes_end), instead of a push's loads and stores of the
 * queue's tail and counter per task. Inline: the struct lives in registers. */
typedef struct sl__wakes {
    sl__worker_t *w;
    sl_task_t *slot;  /* runnext so far */
    sl_task_t *last;  /* the last displaced task chained so far, or NULL */
    sl_task_t **link; /* where the next displaced task goes: the run queue's tail, in place */
    uint32_t seq;     /* w->seq so far */
} sl__wakes_t;

static inline __attribute__((always_inline)) void sl__wakes_begin(sl__wakes_t *k, sl__worker_t *w)
{
    k->w = w;
    k->slot = w->runnext;
    k->last = NULL;
    /* Nothing reads the run queue until sl__wakes_end() (its owner is running this loop), so
     * the displaced tasks are linked onto its tail in place, and only rq_tail waits. */
    k->link = w->rq_tail ? &w->rq_tail->next : &w->rq_head;
    k->seq = w->seq;
}

/* t, a parked task of k->w: runnable, in the slot, and what held the slot chained. */
static inline __attribute__((always_inline)) void sl__wakes_add(sl__wakes_t *k, sl_task_t *t)
{
    SL__ASSERT(t->state == SL__T_PARKED, "wake of a task that is not parked");
    t->state = SL__T_RUNNABLE;
    sl_task_t *old = k->slot;
    if (old) {
        old->seq = k->seq++;
        *k->link = old;
        k->link = &old->next;
        k->last = old;
    }
    k->slot = t;
}

static inline __attribute__((always_inline)) void sl__wakes_end(sl__wakes_t *k)
{
    sl__worker_t *w = k->w;
    if (k->last) {
        k->last->next = NULL;
        w->rq_tail = k->last;
        w->seq = k->seq;
    }
    w->runnext = k->slot;
}

/* sl__task_wake() for the hand-offs that run most (a send or a reply to a parked task): inline
 * when the task is this thread's and the runnext slot is free, the common case of two tasks on
 * one worker answering each other. */
static inline void sl__task_wake_handoff(sl_task_t *t)
{
    sl__worker_t *w = t->worker;
    if (SL__LIKELY(w == sl__tls_worker && w->cur && !w->runnext && t->state == SL__T_PARKED)) {
        t->state = SL__T_RUNNABLE;
        w->runnext = t;
        return;
    }
    sl__task_wake(t);
}

/* Suspends the running task until sl__task_wake(). */
void sl__park(void);
/* Consumes one unit of the cooperative budget; yields when it runs out. */
void sl__coop(void);
/* The running task t has used up its budget: it yields (its next switch-in refills it). */
void sl__coop_yield(sl_task_t *t);
void sl__wake_worker(sl__worker_t *w);

/* Spawns like sl_task_spawn_ex() and registers on_done(t, arg), called exactly once after the
 * task has ended and its joiners were woken (from whichever thread ran the task, without
 * locks held). The handle is always returned (out must not be NULL). If slot is not NULL,
 * *slot is set to the task before the task is queued, so that on_done() (which happens after)
 * finds it there without the caller taking a lock after the spawn; if id is not NULL, it
 * receives the task's id, also before the task is queued (afterwards the task may already
 * have ended and been joined elsewhere). A handle given a slot is never joined (a JoinSet's:
 * it learns of the end through on_done), so the task's end skips the joiners' lock. */
int sl__spawn(const sl_spawn_opts_t *opts, sl_task_fn fn, void *arg,
              void (*on_done)(sl_task_t *t, void *arg), void *on_done_arg, sl_task_t **slot,
              uint64_t *id, sl_task_t **out);

/* Fills out with how the ended task t ended (status, value, id, panic message). t stays
 * referenced. */
void sl__task_outcome(const sl_task_t *t, sl_join_t *out);

/* What an ended task's join reports as its value: what fn returned, NULL if it did not. */
static inline void *sl__task_value(const sl_task_t *t)
{
    return t->status == SL_TASK_RETURNED || t->status == SL_TASK_CANCELLED ? t->result : NULL;
}

/* Held resources: released when the task ends if still held. A hold is added and removed
 * only by the task that holds it. */
/* Adds h to t's held resources (newest first). Inline: an enabled Notified, a tracked permit or
 * guard adds and removes one per use. */
static inline __attribute__((always_inline)) void sl__hold_add(sl_task_t *t, sl__hold_t *h)
{
    /* The two stores to h sit on either side of the branch: inlined into a caller built with
     * straight-line vectorisation (the library itself is not, CMakeLists.txt), adjacent they
     * were packed into an SSE register, four instructions for two. */
    sl__hold_t *n = t->holds;
    h->pprev = &t->holds;
    if (n)
        n->pprev = &h->next;
    h->next = n;
    t->holds = h;
}

/* Takes h out of its task's list. h must be in it: every caller knows, by a field of its own
 * that it clears (the Notified's or the permit record's task, a release by the task's end),
 * so h's links are neither tested nor cleared here. */
static inline __attribute__((always_inline)) void sl__hold_remove(sl__hold_t *h)
{
    sl__hold_t *next = h->next;
    *h->pprev = next;
    if (next)
        next->pprev = h->pprev;
}

/* ---- The waiting protocol -------------------------------------------------------------------
 *
 * A wait belongs to a task and has a generation. Every clause registers a waiter (in the
 * clause) on its waitable, under the waitable's lock. Whoever completes a clause must first
 * *claim* the wait: an atomic compare-and-swap of the task's wait word from WAITING to
 * CLAIMED(index). Only one claim succeeds per wait, so exactly one clause completes; timeouts
 * and cancellation claim the same way. After a successful claim, the claimer unlinks the
 * waiter, performs the operation's effect (copies a value into the waiter's buffer, assigns
 * permits), sets w->res, and after releasing its lock calls sl__waiter_wake(). A claim that
 * fails means the wait already completed elsewhere: the claimer treats the waiter as gone
 * (unlinks it, or skips it) and moves on.
 */

/* Returned by sl_clause_ops.arm. */
#define SL__ARMED 1 /* registered; the task will park */
#define SL__DONE  2 /* completed at once by the task itself (it claimed its own wait) */
#define SL__LOST  3 /* the wait was claimed by someone else meanwhile: stop arming, park */

struct sl_clause_ops {
    /* Try without waiting. Returns SL_EAGAIN when not ready, else the clause's result (the
     * operation completed, successfully or with its own error). No waiter is registered. */
    int (*poll)(sl_clause_t *c);
    /* Under the waitable's lock: if ready, claim the wait with sl__claim_self(c) and, if that
     * succeeds, complete the operation, set c->w.res and return SL__DONE (SL__LOST if the
     * claim failed). Otherwise link &c->w and return SL__ARMED. */
    int (*arm)(sl_clause_t *c);
    /* Under the waitable's lock: unlink &c->w if it is still linked. */
    void (*disarm)(sl_clause_t *c);
    /* Optional, may be NULL: runs in the task after its clause won, returns the final result,
     * or SL_EAGAIN to wait again (the operation found nothing after all). */
    int (*complete)(sl_clause_t *c);
};

/* Fills the fields of a clause that its ops use. The waiter is filled by the wait itself and
 * the timer only by sleep clauses: no memset of the whole clause on the hot path. */
static inline void sl__clause_init(sl_clause_t *c, const struct sl_clause_ops *ops, void *obj,
                                   void *buf, uintptr_t arg, int64_t arg64)
{
    c->ops = ops;
    c->obj = obj;
    c->buf = buf;
    c->arg = arg;
    c->arg64 = arg64;
    c->res = 0;
    c->w.linked = 0;
    c->w.aux = 0;
}

/* Makes c's waiter the task t's for the wait whose wait word is wword (sl__wait_ctx_t), as clause
 * index idx, before the clause's arm registers it; alone: the wait has no other clause, so that
 * a claimant on t's own worker may claim it plainly ("Plain claims" below). */
static inline void sl__clause_waiter(sl_clause_t *c, sl_task_t *t, uint32_t wword, int idx,
                                     int alone)
{
    c->w.task = t;
    c->w.clause = c;
    c->w.wword = wword;
    c->w.idx = idx;
    c->w.linked = 0;
    c->w.alone = (unsigned char)alone;
    c->w.res = 0;
}

/* The claim of a wait, the one compare-and-swap every claimant runs (a waker for a waiter, a
 * timer or an aborter for the task, the task itself racing an abort): t's wait word from
 * waiting(gen) to claimed(gen, winner). 1 when it won. */
static inline int sl__wstate_claim(sl_task_t *t, uint32_t gen, int winner)
{
    uint32_t expect = SL__W_WAITING_AT(gen);
    return atomic_compare_exchange_strong_explicit(&t->wstate, &expect, SL__W_CLAIMED(gen, winner),
                                                   memory_order_acq_rel, memory_order_acquire);
}

/* The claim for waiter w: its task's wait, the one whose wait word w recorded, won by its index.
 * sl__wstate_claim with the word itself kept in the waiter (waiting(gen)), so that a claim
 * computes claimed(gen, idx) with one addition: the two differ only in the low byte, by
 * idx + SL__W_BASE - SL__W_WAITING. No check of whose waiter it is: the callers below (and a
 * wait that parks on a waiter node of its own, notify.c) decide that. */
static inline int sl__waiter_cas(const sl_waiter_t *w)
{
    uint32_t expect = w->wword;
    return atomic_compare_exchange_strong_explicit(
        &w->task->wstate, &expect, expect + (uint32_t)(w->idx + SL__W_BASE - (int)SL__W_WAITING),
        memory_order_acq_rel, memory_order_acquire);
}

/* Claims w's wait for w's clause. Returns 1 on success. Never claims a waiter of the calling
 * task (a task cannot complete its own select from another of its clauses). The caller holds
 * the lock of the waitable w is queued on, or is the timer of w's own sleep clause (plain
 * claims, below: sl__waiter_claim_held). */
int sl__waiter_claim(sl_waiter_t *w);
/* Claims the calling task's own wait for clause c (inside arm, under the waitable's lock if it
 * has one). Returns 1 on success. */
int sl__claim_self(sl_clause_t *c);
/* Wakes the task of a claimed waiter. Call without holding locks. */
void sl__waiter_wake(sl_waiter_t *w);
/* Claims and wakes a task's current wait with a special winner (timeout, cancel). */
int sl__wait_claim_task(sl_task_t *t, uint32_t gen, int winner);

/* Intrusive waiter queue (caller holds the waitable's lock). */
static inline void sl__waitq_push(sl_waitq_t *q, sl_waiter_t *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->linked = 1;
}

static inline void sl__waitq_remove(sl_waitq_t *q, sl_waiter_t *w)
{
    if (!w->linked)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
    w->linked = 0;
}

/* Removes w, the queue's first waiter (sl__waitq_remove's case with no predecessor); n is
 * w->next, which the caller has read (before a claim, whose barrier would make it a reload). */
static inline void sl__waitq_unlink_head(sl_waitq_t *q, sl_waiter_t *w, sl_waiter_t *n)
{
    q->head = n;
    if (n)
        n->prev = NULL;
    else
        q->tail = NULL;
    w->next = NULL;
    w->linked = 0;
}

/* sl__waitq_claim_head(), the common case of sl__waitq_claim_first(), is defined below with
 * the plain claims it uses ("Plain claims"). */

/* Removes and returns the first waiter whose wait this call could claim (the caller then
 * completes it), dropping waiters whose wait already completed elsewhere. Waiters of the
 * calling task are skipped and left in place. NULL if none. */
sl_waiter_t *sl__waitq_claim_first(sl_waitq_t *q);
/* Claims every claimable waiter, unlinks them, sets res, and chains them through wake_next
 * onto *list (prepends). Returns how many. Wake them with sl__waiters_wake after unlocking. */
int sl__waitq_claim_all(sl_waitq_t *q, int res, sl_waiter_t **list);
void sl__waiters_wake_list(sl_waiter_t *list);
/* Wakes the tasks of a claimed list (NULL: none), in list order: one task as sl__task_wake(),
 * more through sl__waiters_wake_list() (sched.c). */
static inline void sl__waiters_wake(sl_waiter_t *list)
{
    if (list) {
        if (!list->wake_next)
            sl__task_wake(list->task);
        else
            sl__waiters_wake_list(list);
    }
}

/* Arm and disarm for the most common clause: one that waits for a one-way condition (closed,
 * triggered, done) which its waitable announces, under `lock`, by claiming every waiter in
 * `q` (sl__waitq_claim_all). ready(obj) is evaluated under the lock. */
int sl__arm_cond(sl_clause_t *c, sl_lock_t *lock, sl_waitq_t *q, int (*ready)(const void *obj));
void sl__disarm_cond(sl_clause_t *c, sl_lock_t *lock, sl_waitq_t *q);

/* A wait for a channel's count to reach zero (a broadcast's or a watch's receivers, for
 * sl_clause_*_tx_closed). The count and the lock are the channel's; whoever takes the count to
 * zero wakes `q` with sl__waitq_claim_all() under the lock. A woken waiter looks again and
 * waits on if the count rose meanwhile (a new receiver). */
typedef struct sl__zero_wait {
    _Atomic long *count;
    sl_lock_t *lock;
    sl_waitq_t q;
} sl__zero_wait_t;
extern const struct sl_clause_ops sl__zero_wait_ops; /* clause obj: the sl__zero_wait_t */

/* The generic wait: what sl_select() and every blocking call run. flags: SL_SELECT_FAIR,
 * SL__WAIT_POLLED (the caller has just polled every clause: skip the first poll pass). */
#define SL__WAIT_POLLED 0x100
int sl__wait(sl_clause_t *c, int n, int flags, int64_t deadline);

/* A one-clause blocking call: poll first (fast path), then the generic wait. Returns the
 * clause's result, SL_ETIMEDOUT or SL_ECANCELED. */
int sl__wait1(sl_clause_t *c, int64_t deadline);

/* Checks cancellation and timeout scopes before a blocking call (0, SL_ECANCELED or
 * SL_ETIMEDOUT). */
int sl__wait_precheck(sl_task_t *t);

/* What sl__wait1 does before its poll, inline, for primitives with their own fast path: checks
 * cancellation and timeout scopes (returns SL_ECANCELED or SL_ETIMEDOUT, consuming nothing),
 * then consumes one unit of the cooperative budget (may yield). Returns 0 when the caller may
 * try its operation. The common case (not cancelled, no timeout scope) reads two fields. */
static inline int sl__wait_enter(sl_task_t *t)
{
    if (SL__UNLIKELY(atomic_load_explicit(&t->cancelled, memory_order_relaxed) || t->timeouts)) {
        int r = sl__wait_precheck(t);
        if (r)
            return r;
    }
    if (SL__UNLIKELY(--t->budget < 0))
        sl__coop_yield(t); /* that was the last unit */
    return 0;
}

/* sl__wait_enter's common case for a written-out fast path, with no call: the running task is
 * not cancelled, has no timeout scope and has a unit of budget to spare, which it takes (1).
 * 0: nothing done, and the caller's general path runs sl__wait_enter (and yields, or fails). */
static inline __attribute__((always_inline)) int sl__wait_enter_fast(void)
{
    sl_task_t *t = sl__tls_task;
    if (SL__LIKELY(t && !atomic_load_explicit(&t->cancelled, memory_order_relaxed) &&
                   !t->timeouts)) {
        /* Taken first and given back when it was the last: one decrement and a sign test. */
        if (SL__LIKELY(--t->budget >= 0))
            return 1;
        t->budget = 0; /* it was 0: the general path takes the unit, and yields */
    }
    return 0;
}

/* ---- Starting a wait, and aborting one from another thread --------------------------------
 *
 * A wait publishes WAITING in t->wstate and then reads t->cancelled; sl_task_abort() stores
 * cancelled and then reads wstate. At least one side must see the other's store, or an abort
 * that lands between the two would leave the task parked. The waiting side runs on every
 * blocking call and the aborting side rarely, so the full barrier the pattern needs is taken
 * by the aborter alone when Linux offers membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which
 * runs a barrier on every running thread of the process: the wait's own store is then a plain
 * release store (no locked instruction). Without membarrier the wait's store is sequentially
 * consistent (on x86 an exchange: a locked instruction). sl__asym is decided once, before the
 * first runtime starts, and never changes. See docs/design/runtime.md, "Cancellation". */
extern int sl__asym;
extern int sl__asym_decided; /* sl__asym_init() has run: sl__asym is final */
void sl__asym_init(void);

static inline void sl__wait_publish(sl_task_t *t, uint32_t ws)
{
    if (SL__LIKELY(sl__asym)) {
        atomic_store_explicit(&t->wstate, ws, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps the later load after */
    } else {
        atomic_store(&t->wstate, ws);
    }
}

/* ---- Plain claims --------------------------------------------------------------------------
 *
 * A claim is a compare-and-swap because, besides the waitable's other lock holders, the task's
 * own worker (its deadline timer, and an abort: sl__abort_claim() claims on the task's worker
 * only, posting the claim there from any other thread) may claim the same wait, and so may the
 * waitables of a select's other clauses. A wait on one waitable alone (an enabled Notified's
 * own node, notify.c; a wait of one clause, whose waiter has `alone` set: every plain blocking
 * call, a select of one) has only the first two. A claimant that holds that waitable's lock
 * excludes the first, and one that runs on the task's own worker the second: it claims with a
 * plain load and store. A locked instruction costs about 9 cycles on AMD and 25 on the Intel
 * Xeon, and keeps every later load waiting: 2 ns of a notify_waiters wake on AMD, a sixth of
 * oneshot_rpc's round trip on the Xeon (docs/perf.md, sessions 19 and 22).
 * docs/design/runtime.md, "Plain claims". */

/* The claim of w's wait, plain: by a holder of the lock of the waitable w is queued on, on w's
 * task's own worker, for a wait that has no other clause. */
static inline int sl__waiter_claim_plain(const sl_waiter_t *w)
{
    sl_task_t *t = w->task;
    uint32_t expect = w->wword;
    if (atomic_load_explicit(&t->wstate, memory_order_relaxed) != expect)
        return 0;
    atomic_store_explicit(&t->wstate, expect + (uint32_t)(w->idx + SL__W_BASE - (int)SL__W_WAITING),
                          memory_order_relaxed);
    return 1;
}

/* The claim of waiter w by a holder of the lock of the waitable w is queued on: plain when w's
 * wait has no other clause and its task's worker is this thread (a waiting task's worker is
 * never NULL, so a thread outside the runtime never matches), else sl__waiter_cas(). */
static inline __attribute__((always_inline)) int sl__waiter_claim_held(const sl_waiter_t *w)
{
    if (w->alone && w->task->worker == sl__tls_worker)
        return sl__waiter_claim_plain(w);
    return sl__waiter_cas(w);
}

/* The common case of sl__waitq_claim_first, inline: the first waiter w (not NULL) is another
 * task's and this call claims its wait; then w is unlinked and returned. NULL: nothing done
 * (a waiter of the calling task, a wait won elsewhere), and sl__waitq_claim_first() decides.
 * For the written-out hand-offs (mpsc.c, oneshot.c), which must make no call. The caller holds
 * q's lock. */
static inline __attribute__((always_inline)) sl_waiter_t *sl__waitq_claim_head(sl_waitq_t *q,
                                                                               sl_waiter_t *w)
{
    sl_waiter_t *next = w->next; /* read before the claim: its barrier would make it a reload */
    if (w->task == sl__tls_task || !sl__waiter_claim_held(w))
        return NULL;
    sl__waitq_unlink_head(q, w, next);
    return w;
}

/* The two halves of sl_task_abort(), so that aborting many tasks can share one barrier:
 * sl__abort_mark() stores the request (0: the task had already ended, nothing to do);
 * sl__abort_barrier() makes every mark so far visible to any wait that began before it (a
 * membarrier, skipped when the caller is the only thread that runs rt's tasks, or when
 * sl__asym is off); sl__abort_claim() then ends the task's current wait, if any, with
 * SL_ECANCELED: at once on the task's own worker; from any other thread it posts the claim to
 * that worker (its `aborts`), which makes it in its next round, so that every claim of a
 * one-clause wait but its waitable's lock holders' runs on the task's worker ("Plain
 * claims"). */
int sl__abort_mark(sl_task_t *t);
void sl__abort_barrier(sl_runtime_t *rt);
void sl__abort_claim(sl_task_t *t);

/* sl__wait1_polled on a clause made from these fields (sl__clause_init) in its own frame, so
 * that a blocking call can end in a tail call to it: a task resumed after a hand-off then
 * returns from the wait straight into its caller's code, and when the task that parked before
 * it came the same way, every return but that last one is predicted (docs/perf.md, "A
 * switch"). The clause's ops must not need the clause after the wait. With ops NULL, obj is
 * the caller's clause and the other fields are ignored: every one-clause wait parks in this
 * one function. */
int sl__wait1v(const struct sl_clause_ops *ops, void *obj, void *buf, uintptr_t arg, int64_t arg64,
               int64_t deadline);

/* sl__wait1v for the waits of a hand-off between two tasks that park through different calls:
 * a reply's oneshot receive, an actor's mpsc receive, a producer's mpsc send into a full
 * channel. After the switch, the return-stack
 * predictor holds the return of the task that parked, so a task resumed from a different call
 * mispredicts its return from the wait, about 20 cycles, once per switch (docs/perf.md, "A
 * switch"). This entry (wait_x86_64.S) calls sl__wait1v and returns to its caller with an
 * indirect jump, which the branch target buffer predicts from the path that led to it
 * (oneshot_rpc: 0.71-0.79 of the time; mpsc_7p 0.93-0.94). The return-stack predictor keeps one
 * entry the jump did not take: any later return of the caller to frames older than the wait is
 * predicted from an entry off by one. So it is for calls whose callers rarely return from the
 * frame that waited (a loop asking, answering, producing or consuming), not for every wait:
 * semaphore_pool and watch_updates, whose tasks park through one call, gained nothing from it
 * in an experiment that sent every wait through here. A cost: sl__wait1v, called from here
 * too, is no longer specialised by the compiler for its callers' constant arguments (about ten
 * instructions more per wait). Elsewhere than x86-64, sl__wait1v. */
#if defined(__x86_64__)
int sl__wait1v_handoff(const struct sl_clause_ops *ops, void *obj, void *buf, uintptr_t arg,
                       int64_t arg64, int64_t deadline);
#else
#define sl__wait1v_handoff sl__wait1v
#endif

/* The rest of sl__wait1 after a failed try: registers c and waits (c->ops->poll is not
 * called first). Call only after sl__wait_enter() returned 0 and the operation found nothing
 * ready. Returns the clause's result (stored in c->res too when the clause completed),
 * SL_ETIMEDOUT or SL_ECANCELED. */
static inline int sl__wait1_polled(sl_clause_t *c, int64_t deadline)
{
    return sl__wait1v(NULL, c, NULL, 0, 0, deadline);
}
/* Set in sl__wait1v's ops pointer (clause ops are aligned): check, take a budget unit and poll
 * before the wait, as sl__wait1 does. */
#define SL__WAIT1_POLL ((uintptr_t)1)

/* The same for a call with no try of its own: what sl__wait1 does (checks, budget, poll,
 * wait), on a clause made in sl__wait1v's frame. */
static inline int sl__wait1vp(const struct sl_clause_ops *ops, void *obj, void *buf, uintptr_t arg,
                              int64_t arg64, int64_t deadline)
{
    return sl__wait1v((const struct sl_clause_ops *)((uintptr_t)ops | SL__WAIT1_POLL), obj, buf,
                      arg, arg64, deadline);
}

/* For the tests: takes and releases the block's lock, as a send or an arm does around its
 * work (oneshot.c); the block must still be alive (its receiver not dropped). */
void sl__oneshot_lock_hold(sl_oneshot_tx_t *tx);
void sl__oneshot_lock_release(sl_oneshot_tx_t *tx);
/* For the tests: 1 when the block's lock is biased to the calling thread (oneshot.c). */
int sl__oneshot_lock_is_mine(const sl_oneshot_tx_t *tx);
/* For the tests: 1 when the channel's lock is biased to the calling thread (mpsc.c). */
int sl__mpsc_lock_is_mine(const sl_mpsc_rx_t *rx);
/* For the tests: messages the receiver has reserved and pops without the lock (rx_res;
 * mpsc.c). Only the receiver's task may call it. */
size_t sl__mpsc_rx_reserved(const sl_mpsc_rx_t *rx);
/* For the tests: unbounded-channel slabs that channels hold, process-wide; new slabs mapped
 * so far; spare slabs kept for the next deep backlog (mpsc.c). */
long sl__mpsc_slabs_mapped(void);
long sl__mpsc_slab_maps(void);
long sl__mpsc_slab_spares(void);
/* Unmaps the spare slabs given back before now - 1 s (all of them when now is INT64_MAX). Any
 * thread. */
void sl__mpsc_slab_trim(int64_t now);
/* For the tests: how long a spare slab is kept (default 1 s; see sl__stack_pool_ttl_set). */
void sl__mpsc_slab_ttl_set(int64_t ns);

/* ---- Per-worker caches ------------------------------------------------------------------ */

/* Frees the worker's cached oneshot blocks (when its runtime is freed). */
void sl__oneshot_cache_free(sl__worker_t *w);

/* ---- Blocking pool --------------------------------------------------------------------- */

void sl__pool_shutdown(sl_runtime_t *rt);
int sl__pool_threads(sl_runtime_t *rt); /* threads alive now */

/* ---- I/O hooks (src/io) ------------------------------------------------------------------ */

/* Called by a worker for every epoll event whose data is not the worker's eventfd. */
void sl__io_event(sl__worker_t *w, uint64_t data, uint32_t events);
/* Called once per runtime at block_on start / end. */
int sl__io_init(sl_runtime_t *rt);
void sl__io_fini(sl_runtime_t *rt);

#endif /* SLUICE_CORE_RT_H */
