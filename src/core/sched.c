/*
 * The scheduler: runtimes, workers, tasks, park and wake.
 *
 * Each worker thread runs worker_loop() on its own (native) stack. Tasks run on their own
 * stacks; a task that waits or yields switches back to the loop, which picks the next task.
 * Queues, per worker:
 *   runnext   a task woken by the running task: it runs next (at most 3 times in a row), so a
 *             message hand-off costs one switch, not a trip through the queue;
 *   rq        started tasks that are runnable: owner-only, no atomics;
 *   fresh     spawned tasks that have not started: under a spinlock, because an idle worker
 *             may steal them (a task never moves once it has started: see runtime.md);
 *   inbox     tasks woken from other threads: a lock-free stack, drained by the owner.
 * docs/design/runtime.md explains the memory ordering of each path.
 */
#define _GNU_SOURCE
#include "core/rt.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "coro/san.h"
#include "coro/stack.h"
#include "core/switch.h"

__thread sl__worker_t *sl__tls_worker __attribute__((tls_model("initial-exec")));
__thread sl_task_t *sl__tls_task __attribute__((tls_model("initial-exec")));

#define STEAL_DELAY_DEFAULT (200 * SL_USEC) /* see steal() */
#define STEAL_SMALL         16 /* a fresh queue shorter than this is a short one (steal_waits_init) */
#define STEAL_SMALL_WAIT    25 /* ... and waits this many delays: 5 ms by default */
#define MAX_EVENTS          128

/* ---- Errors and allocation ----------------------------------------------------------------- */

void sl__die(const char *file, int line, const char *msg)
{
    sl__worker_t *w = sl__tls_worker;
    sl_task_t *t = w ? w->cur : NULL;
    if (t)
        fprintf(stderr, "sluice: fatal: %s (%s:%d, task '%s' id %llu)\n", msg, file, line, t->name,
                (unsigned long long)t->id);
    else
        fprintf(stderr, "sluice: fatal: %s (%s:%d)\n", msg, file, line);
    fflush(stderr);
    abort();
}

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

void *sl__alloc(sl_runtime_t *rt, size_t size)
{
    if (!rt)
        return malloc(size);
    return rt->opts.alloc(rt->opts.alloc_ud, NULL, 0, size);
}

void *sl__calloc(sl_runtime_t *rt, size_t size)
{
    void *p = sl__alloc(rt, size);
    if (p)
        memset(p, 0, size);
    return p;
}

void sl__free(sl_runtime_t *rt, void *p, size_t size)
{
    if (!p)
        return;
    if (!rt) {
        free(p);
        return;
    }
    rt->opts.alloc(rt->opts.alloc_ud, p, size, 0);
}

static sl_runtime_t *cur_rt(void)
{
    sl__worker_t *w = sl__tls_worker;
    return w ? w->rt : NULL;
}

void *sl_malloc(size_t size)
{
    return sl__alloc(cur_rt(), size ? size : 1);
}

void sl_free(void *ptr, size_t size)
{
    sl__free(cur_rt(), ptr, size ? size : 1);
}

/* ---- Clock ----------------------------------------------------------------------------- */

int64_t sl_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SL_SEC + ts.tv_nsec;
}

int64_t sl__now_read(sl__worker_t *w)
{
    return w->now = sl_clock();
}

int64_t sl_now(void)
{
    sl__worker_t *w = sl__tls_worker;
    return w ? sl__now(w) : sl_clock();
}

int64_t sl_deadline_in(int64_t ns)
{
    int64_t now = sl_now();
    if (ns <= 0)
        return now;
    if (ns >= SL_FOREVER - now)
        return SL_FOREVER;
    return now + ns;
}

/* ---- Accessors ---------------------------------------------------------------------------- */

sl__worker_t *sl__worker(void)
{
    return sl__tls_worker;
}

void sl__die_outside_task(const char *fn)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s called outside a sluice task", fn);
    sl__die(__FILE__, __LINE__, msg);
}

sl_runtime_t *sl_runtime_current(void)
{
    return cur_rt();
}

int sl_runtime_workers(const sl_runtime_t *rt)
{
    return rt->nworkers;
}

int sl_worker_index(void)
{
    sl__worker_t *w = sl__tls_worker;
    return w && w->cur ? w->index : -1;
}

sl_task_t *sl_task_self(void)
{
    return sl__self();
}

uint64_t sl_task_id(const sl_task_t *t)
{
    return t->id;
}

const char *sl_task_name(const sl_task_t *t)
{
    return t->name;
}

int sl_task_is_finished(const sl_task_t *t)
{
    return atomic_load_explicit(&((sl_task_t *)t)->done, memory_order_acquire);
}

/* ---- Live tasks -----------------------------------------------------------------------------
 * Each worker counts the tasks it spawned (live_in) and the tasks it reaped (live_out); only
 * the owner writes them, so a spawn and an exit cost no shared atomic (a shared counter moved
 * between the cores on every spawn_join task). The number of live tasks is needed only at
 * shutdown. live_tasks() reads every live_out first and then every live_in: a task counted as
 * reaped was spawned before, and its spawn is visible to whoever sees the reap, so the result
 * never undercounts, and 0 means nothing was alive at the first read and nothing was spawned
 * since. */

static long live_tasks(const sl_runtime_t *rt)
{
    long out = 0, in = 0;
    for (int i = 0; i < rt->nworkers; i++)
        out += atomic_load(&rt->workers[i]->live_out);
    for (int i = 0; i < rt->nworkers; i++)
        in += atomic_load(&rt->workers[i]->live_in);
    return in - out;
}

static inline void live_add(_Atomic long *c, memory_order mo)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, mo);
}

/* Task ids come from rt->next_id in blocks, for the same reason. Unique, not ordered. */
#define ID_BLOCK 1024

static inline uint64_t id_take(sl__worker_t *w)
{
    if (SL__UNLIKELY(w->id_next == w->id_end)) {
        w->id_next = atomic_fetch_add_explicit(&w->rt->next_id, ID_BLOCK, memory_order_relaxed);
        w->id_end = w->id_next + ID_BLOCK;
    }
    return w->id_next++;
}

/* ---- Context switches (with sanitizer annotations) ---------------------------------------- */

/* Scheduler -> task. Returns when a task switches back to the scheduler: t, or another task of
 * this worker that t (or a task after it) switched to directly; that task is returned. */
static sl_task_t *switch_in(sl__worker_t *w, sl_task_t *t)
{
    w->cur = t;
    sl__tls_task = t;
    sl__tls_worker = w;
    stat_inc(&w->n_sched_switches);
#if SLUICE_ASAN
    __sanitizer_start_switch_fiber(&w->sched_fake, t->stack->lo, t->stack->size);
#endif
#if SLUICE_TSAN
    __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
    sl__ctx_switch(&w->sched, &t->ctx);
#if SLUICE_ASAN
    __sanitizer_finish_switch_fiber(w->sched_fake, NULL, NULL);
#endif
    sl_task_t *back = w->cur;
    w->cur = NULL;
    sl__tls_task = NULL;
    return back;
}

/* A task that has ended -> the scheduler, for good. */
static void switch_exit(sl_task_t *t)
{
    sl__worker_t *w = t->worker;
    if (t->canary)
        sl__stack_check(t);
#if SLUICE_ASAN
    __sanitizer_start_switch_fiber(NULL, w->sched_stack_bottom, w->sched_stack_size);
#endif
#if SLUICE_TSAN
    __tsan_switch_to_fiber(w->sched_fiber, 0);
#endif
    sl__ctx_switch(&t->ctx, &w->sched);
}

/* ---- Queues -------------------------------------------------------------------------------- */

#define rq_push sl__rq_push

/* An entry of a fresh queue. Entries carry what ordering and stealing need, so that neither
 * reads the task: a thief moves pointers, and the tasks' lines stay where they are until the
 * thief starts each one (spawn_join: the walk over a stolen linked list, a miss per task from
 * the spawner's core, was a fifth of the thief's time). */
typedef struct sl__fresh_ent {
    sl_task_t *t;
    int64_t at;      /* when it was spawned */
    uint32_t seq;    /* enqueue order, against the run queue's (pop_oldest) */
    uint32_t stolen; /* taken from another worker: stays here (see steal()) */
} sl__fresh_ent_t;

#define FRESH_CAP_MIN  64   /* entries a worker's fresh queue starts with, and shrinks back to */
#define FRESH_CAP_KEEP 4096 /* an idle worker keeps a queue up to this size */
#define STEAL_MAX      256  /* tasks taken per steal at most */

static inline sl__fresh_ent_t *fresh_ent(sl__worker_t *w, uint32_t k)
{
    return &w->fresh_v[(w->fresh_h + k) & (w->fresh_cap - 1)];
}

/* How long the oldest of len unstarted tasks waits before another worker may take some: the
 * steal delay, or STEAL_SMALL_WAIT times that for a queue shorter than STEAL_SMALL. A few tasks
 * spawned together are most often tasks that talk to each other (a channel's producers and its
 * consumer, an actor and its clients), which their worker starts within microseconds; when they
 * are still waiting after the delay, their worker is running a long task or its vCPU has been
 * taken away by the hypervisor for a few milliseconds, and splitting them then is for good
 * (started tasks never move). A long queue is a worker that cannot keep up: half of it goes
 * after the plain delay. docs/perf.md, session 10 (mpsc_7p's split runs). */
static void steal_waits_init(sl_runtime_t *rt)
{
    int64_t d = rt->opts.steal_delay_ns;
    rt->steal_wait[0] = d < SL__STEAL_WAIT_MAX ? d : SL__STEAL_WAIT_MAX;
    rt->steal_wait[1] =
        d < SL__STEAL_WAIT_MAX / STEAL_SMALL_WAIT ? d * STEAL_SMALL_WAIT : SL__STEAL_WAIT_MAX;
}

/* When a head spawned at `at` may be stolen from a queue of len tasks. Computed at every pop of
 * the fresh queue, so the two waits are worked out once (steal_waits_init). */
static inline int64_t steal_at(const sl_runtime_t *rt, int64_t at, long len)
{
    return at + rt->steal_wait[len < STEAL_SMALL];
}

/* Under the fresh lock: publishes when the task at the head of w's fresh queue may be stolen
 * (steal_at), for thieves deciding without the lock; INT64_MAX when the queue is empty or its
 * head was stolen (stolen tasks form a prefix of the thief's queue: it stole when it had none).
 * Called when the head or the queue's side of STEAL_SMALL changes. */
static inline void fresh_head_changed(sl__worker_t *w)
{
    sl__fresh_ent_t *e = fresh_ent(w, 0);
    long len = atomic_load_explicit(&w->fresh_len, memory_order_relaxed);
    int64_t at = len > 0 && !e->stolen ? steal_at(w->rt, e->at, len) : INT64_MAX;
    /* Tasks spawned in one run of the spawner share their entries' `at`: popping them one by one
     * leaves the value, and the line idle workers poll, unchanged but when the queue becomes a
     * small one. */
    if (atomic_load_explicit(&w->fresh_steal_at, memory_order_relaxed) != at)
        atomic_store_explicit(&w->fresh_steal_at, at, memory_order_relaxed);
}

/* Under w->fresh_lock, so a load and a store (no locked RMW); read without the lock by idle
 * workers and by the owner's quick emptiness checks. */
static inline void fresh_len_add(sl__worker_t *w, long d)
{
    atomic_store_explicit(&w->fresh_len,
                          atomic_load_explicit(&w->fresh_len, memory_order_relaxed) + d,
                          memory_order_release);
}

/* Replaces w's ring with one of cap entries holding the same tasks in order (owner only).
 * Returns 0, or SL_ENOMEM with nothing changed. The array is allocated and freed outside the
 * lock: thieves only take entries, so the count cannot grow meanwhile. */
static int fresh_resize(sl__worker_t *w, uint32_t cap)
{
    sl__fresh_ent_t *v = sl__alloc(w->rt, sizeof *v * cap), *old;
    if (!v)
        return SL_ENOMEM;
    uint32_t old_cap;
    sl__lock(&w->fresh_lock);
    uint32_t len = (uint32_t)atomic_load_explicit(&w->fresh_len, memory_order_relaxed);
    if (len > cap) { /* a shrink that raced with pushes: keep the old ring */
        sl__unlock(&w->fresh_lock);
        sl__free(w->rt, v, sizeof *v * cap);
        return SL_ENOMEM;
    }
    for (uint32_t k = 0; k < len; k++)
        v[k] = *fresh_ent(w, k);
    old = w->fresh_v;
    old_cap = w->fresh_cap;
    w->fresh_v = v;
    w->fresh_cap = cap;
    w->fresh_h = 0;
    sl__unlock(&w->fresh_lock);
    sl__free(w->rt, old, sizeof *old * old_cap);
    return 0;
}

static void fresh_push(sl__worker_t *w, sl_task_t *t)
{
    t->next = NULL;
    /* Only this thread adds entries: a count below the capacity stays below it. */
    if (SL__UNLIKELY((uint32_t)atomic_load_explicit(&w->fresh_len, memory_order_relaxed) ==
                     w->fresh_cap) &&
        fresh_resize(w, w->fresh_cap * 2) != 0) {
        /* No memory for a larger ring: the task starts here, in order, but cannot be stolen. */
        rq_push(w, t);
        return;
    }
    sl__lock(&w->fresh_lock);
    long len = atomic_load_explicit(&w->fresh_len, memory_order_relaxed);
    /* The round's clock, not a clock read per spawn: with more than one worker it is read when
     * the round starts (worker_loop), so a spawner that has run for long since then makes its
     * tasks look older, and a busy worker's tasks are taken sooner, which is what the delay is
     * for. Read by the first spawn instead, it made spawn_join 11-14% slower (fewer steals:
     * docs/perf.md, session 20). With one worker nothing steals and nothing reads the stamp,
     * which may then be SL__NOW_STALE. */
    *fresh_ent(w, (uint32_t)len) = (sl__fresh_ent_t){t, w->now, w->seq++, 0};
    fresh_len_add(w, 1);
    if (len == 0 || len + 1 == STEAL_SMALL)
        fresh_head_changed(w);
    sl__unlock(&w->fresh_lock);
}

void sl__wake_worker(sl__worker_t *w)
{
    if (atomic_exchange(&w->sleeping, 0)) {
        uint64_t one = 1;
        ssize_t r;
        do
            r = write(w->evfd, &one, sizeof one);
        while (r < 0 && errno == EINTR);
    }
}

static void inbox_push(sl__worker_t *w, sl_task_t *t)
{
    sl_task_t *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
    do
        t->inbox_next = head;
    while (!atomic_compare_exchange_weak_explicit(&w->inbox, &head, t, memory_order_seq_cst,
                                                  memory_order_relaxed));
    sl__wake_worker(w);
}

/* Moves woken tasks from the inbox to the run queue, oldest first. */
static void inbox_drain(sl__worker_t *w)
{
    if (!atomic_load_explicit(&w->inbox, memory_order_relaxed))
        return;
    sl_task_t *list = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    sl_task_t *rev = NULL;
    while (list) {
        sl_task_t *n = list->inbox_next;
        list->inbox_next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        sl_task_t *n = rev->inbox_next;
        rev->inbox_next = NULL;
        if (rev->state != SL__T_NEW)
            rev->state = SL__T_RUNNABLE;
        rq_push(w, rev);
        rev = n;
    }
}

static void task_unref(sl_task_t *t);

/* Claims the waits that other threads' aborts posted here (sl__abort_claim), and drops the
 * references the posts hold. A wait that has ended since is left alone: its claim fails. */
static void aborts_drain(sl__worker_t *w)
{
    if (SL__LIKELY(!atomic_load_explicit(&w->aborts, memory_order_relaxed)))
        return;
    sl_task_t *t = atomic_exchange_explicit(&w->aborts, NULL, memory_order_acquire);
    while (t) {
        sl_task_t *n = t->abort_next;
        uint32_t gen = atomic_load_explicit(&t->abort_req, memory_order_relaxed) & 0xffffffu;
        sl__wait_claim_task(t, gen, SL__WIN_CANCEL);
        task_unref(t);
        t = n;
    }
}

/* Something other threads left for this worker: woken tasks, or aborts to claim. */
static inline int remote_pending(sl__worker_t *w)
{
    return atomic_load_explicit(&w->inbox, memory_order_relaxed) ||
           atomic_load_explicit(&w->aborts, memory_order_relaxed);
}

void sl__task_wake(sl_task_t *t)
{
    sl__worker_t *w = t->worker;
    if (w == sl__tls_worker) {
        SL__ASSERT(t->state == SL__T_PARKED, "wake of a task that is not parked");
        t->state = SL__T_RUNNABLE;
        if (!w->cur) {
            /* Woken by the scheduler itself (a timer, an I/O event): FIFO, so that tasks
             * whose timers fall due together run in deadline order. */
            rq_push(w, t);
            return;
        }
        if (w->runnext)
            rq_push(w, w->runnext);
        w->runnext = t;
    } else {
        inbox_push(w, t);
    }
}

/* Wakes the tasks of a claimed list in list order, exactly as sl__task_wake() one at a time
 * would (sl__wakes_t: runnext and the run queue's tail kept in registers, where a call each
 * loaded, pushed and stored them; a broadcast channel's send wakes its receivers). */
void sl__waiters_wake_list(sl_waiter_t *list)
{
    sl__worker_t *me = sl__tls_worker;
    if (!me || !me->cur) {
        while (list) {
            sl_waiter_t *n = list->wake_next; /* read first: the task may run and reuse the node */
            sl__task_wake(list->task);
            list = n;
        }
        return;
    }
    sl__wakes_t k;
    sl__wakes_begin(&k, me);
    while (list) {
        sl_waiter_t *n = list->wake_next; /* read first: the task may run and reuse the node */
        sl_task_t *t = list->task;
        if (t->worker == me)
            sl__wakes_add(&k, t);
        else
            inbox_push(t->worker, t);
        list = n;
    }
    sl__wakes_end(&k);
}

/* ---- Tasks ------------------------------------------------------------------------------- */

/* ---- Task memory: a per-worker cache with remote frees ---------------------------------------
 * A task's memory has a home: the worker that spawned it. Freed on its home worker's thread, it
 * goes to that worker's cache (LIFO, at most TASK_CACHE_MAX); freed on another worker of the
 * same runtime, it is pushed onto the home's `task_remote` stack (one CAS). The home adopts that
 * stack whole when its cache runs dry (one exchange) and, when it goes idle, folds what it
 * adopted and what arrived since into its cache, keeping TASK_CACHE_MAX and freeing the rest on
 * its own thread: what a worker holds beyond TASK_CACHE_MAX is at most what others freed to it
 * since it last went idle. Anywhere else (a plain thread, after the runtime) the memory is
 * freed.
 * Without this, spawn_join's tasks, spawned on one worker and freed on the other, went back to
 * the spawner's malloc arena under its lock (a quarter of the samples, futex waits included).
 * The caches are released with the runtime (worker_free). */

/* A block holds the task, on a cache-line boundary (its first 64 bytes, see struct sl_task,
 * are one line), and after the task's four lines the copy of its name if it was given one
 * (sl_spawn_opts_t.name, at most 31 bytes kept): a fifth line that unnamed tasks never touch. */
#define TASK_LINES      (4 * SL__CACHELINE)
#define TASK_NAME_MAX   32
#define TASK_SPAN       (TASK_LINES + TASK_NAME_MAX)
#define TASK_SIZE       (TASK_SPAN + SL__CACHELINE - 16)
#define TASK_CACHE_MAX  4096 /* 1.3 MiB of 336-byte blocks; see docs/design/runtime.md */
#define TASK_FREE_BATCH 64   /* remote frees pushed home at a time (task_free) */

_Static_assert(sizeof(sl_task_t) <= TASK_LINES, "the name follows the task's four lines");

static inline sl_task_t *task_in(char *m)
{
    char *t = (char *)(((uintptr_t)m + SL__CACHELINE - 1) & ~(uintptr_t)(SL__CACHELINE - 1));
    if (t + TASK_SPAN > m + TASK_SIZE) /* an allocator that aligns to less than 16 */
        t = m;
    return (sl_task_t *)(void *)t;
}

/* A cached block's link lives in the task's first line, not at the block's start, which may
 * lie in the line before: a remote free would move that line between cores too. */
static inline void task_mem_link(char *m, char *next)
{
    sl__dead_link(task_in(m), TASK_SPAN, next);
}

static inline char *task_mem_next(char *m)
{
    return sl__dead_next(task_in(m), TASK_SPAN);
}

/* Moves the blocks of list m into w's cache up to TASK_CACHE_MAX, freeing the rest. Walks
 * every block: only at idle time and at the runtime's end, never on the spawn path. */
static void task_cache_refill(sl__worker_t *w, char *m)
{
    while (m) {
        char *next = task_mem_next(m);
        if (w->task_cached < TASK_CACHE_MAX) {
            task_mem_link(m, w->task_cache);
            w->task_cache = m;
            w->task_cached++;
        } else {
            sl__free(w->rt, m, TASK_SIZE);
        }
        m = next;
    }
}

/* On w's thread, when it is idle: folds the adopted list and what other workers freed since
 * into the cache, trimmed to TASK_CACHE_MAX. */
static void task_cache_drain(sl__worker_t *w)
{
    char *adopted = w->task_adopted;
    w->task_adopted = NULL;
    task_cache_refill(w, adopted);
    task_cache_refill(w, atomic_exchange_explicit(&w->task_remote, NULL, memory_order_acquire));
}

static void task_cache_free(sl__worker_t *w)
{
    task_cache_drain(w);
    while (w->task_cache) {
        char *m = w->task_cache;
        w->task_cache = task_mem_next(m);
        sl__free(w->rt, m, TASK_SIZE);
    }
    w->task_cached = 0;
}

/* A cached block for w, or NULL: the counted cache first, then the adopted list; when both are
 * empty, what other workers freed is adopted whole (one exchange, no walk over cold blocks). */
static char *task_cache_pop(sl__worker_t *w)
{
    char *m = w->task_cache;
    if (m) {
        w->task_cache = task_mem_next(m);
        w->task_cached--;
        return m;
    }
    if (!w->task_adopted && atomic_load_explicit(&w->task_remote, memory_order_relaxed))
        w->task_adopted = atomic_exchange_explicit(&w->task_remote, NULL, memory_order_acquire);
    if ((m = w->task_adopted))
        w->task_adopted = task_mem_next(m);
    return m;
}

/* Returns a zeroed task (see task_in) whose home is w (NULL: none, the memory is freed). */
static sl_task_t *task_alloc(sl_runtime_t *rt, sl__worker_t *w)
{
    char *mem = w ? task_cache_pop(w) : NULL;
    if (mem) {
        /* The next spawn's block, for writing: a cached block has usually left L1 (or sits in
         * another core's cache, freed there), and its lines, fetched now, are ready by the
         * next spawn instead of stalling that spawn's first locked instruction. */
        char *next = w->task_cache ? w->task_cache : w->task_adopted;
        if (next) {
            char *nt = (char *)task_in(next);
            for (size_t off = 0; off < TASK_LINES; off += SL__CACHELINE)
                sl__prefetch_w(nt + off);
        }
    } else if (!(mem = sl__alloc(rt, TASK_SIZE))) {
        return NULL;
    }
    sl_task_t *t = task_in(mem);
    memset(t, 0, sizeof *t);
    t->mem_off = (unsigned char)((char *)t - mem);
    t->home_slot = w ? (uint16_t)(w->index + 1) : 0; /* at most 1024 workers */
    t->name = "task";
    return t;
}

/* A chain of blocks freed on one worker whose home is another (see task_free). */
typedef struct sl__free_batch {
    char *head, *tail;
    int n;
} sl__free_batch_t;

/* Pushes a batch onto its home's task_remote stack: one CAS for the whole chain. */
static void free_batch_flush(sl__worker_t *home, sl__free_batch_t *b)
{
    if (!b->head)
        return;
    char *head = atomic_load_explicit(&home->task_remote, memory_order_relaxed);
    for (;;) {
        (void)task_mem_next(b->tail); /* unpoisons it, to write the new link */
        task_mem_link(b->tail, head);
        if (atomic_compare_exchange_weak_explicit(&home->task_remote, &head, b->head,
                                                  memory_order_release, memory_order_relaxed))
            break;
    }
    b->head = b->tail = NULL;
    b->n = 0;
}

/* On w's thread: sends every pending batch home (when w runs out of work, and when it stops). */
static void free_batches_flush(sl__worker_t *w)
{
    if (!w->free_batch)
        return;
    for (int i = 0; i < w->rt->nworkers; i++)
        free_batch_flush(w->rt->workers[i], &w->free_batch[i]);
}

static void task_free(sl_runtime_t *rt, sl_task_t *t)
{
    char *mem = (char *)t - t->mem_off;
    sl__worker_t *me = sl__tls_worker;
    if (t->home_slot && me && me->rt == rt) {
        /* The home by its index: rt->workers shares its line with counters that idle workers
         * write, and is read only when a batch goes home. */
        int home = t->home_slot - 1;
        if (me->index == home) {
            if (me->task_cached < TASK_CACHE_MAX) {
                task_mem_link(mem, me->task_cache);
                me->task_cache = mem;
                me->task_cached++;
                return;
            }
        } else {
            /* Batched: a CAS per block on the home's line, which the home reads whenever its
             * cache runs dry, moved that line between the cores for every task (spawn_join). */
            sl__free_batch_t *b = &me->free_batch[home];
            task_mem_link(mem, b->head);
            if (!b->head)
                b->tail = mem;
            b->head = mem;
            if (++b->n >= TASK_FREE_BATCH)
                free_batch_flush(rt->workers[home], b);
            return;
        }
    }
    sl__free(rt, mem, TASK_SIZE);
}

static void task_unref(sl_task_t *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        sl_runtime_t *rt = t->rt;
        sl__task_ext_t *ext = t->ext;
        if (ext) {
            if (ext->panic_msg)
                sl__free(rt, ext->panic_msg, SL_PANIC_MSG_MAX);
            if (ext->defers != ext->defer_inline)
                sl__free(rt, ext->defers, sizeof(sl__defer_t) * (size_t)ext->cap_defers);
            sl__free(rt, ext, sizeof *ext);
        }
        task_free(rt, t);
    }
}

static void all_link(sl__worker_t *w, sl_task_t *t)
{
    t->all_prev = NULL;
    t->all_next = w->all;
    if (w->all)
        w->all->all_prev = t;
    w->all = t;
}

static void all_unlink(sl__worker_t *w, sl_task_t *t)
{
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        w->all = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    t->all_next = t->all_prev = NULL;
}

/* A tracked permit or guard kept in a local variable of a function that has returned is a
 * dangling node in the hold list. Such nodes lie in this task's stack below `live`, the lowest
 * frame still live when the task ended (task_entry's when its function returned, sl_panic's
 * when it panicked); check each address before following it, and stop with a clear message.
 * The bound is that frame and not the checker's own: what the task's function used is reused
 * by the calls that end the task, which on some targets (aarch64) go deeper than the returned
 * frame the node was in, and a node overwritten there would be followed. */
static void holds_check(sl_task_t *t, const char *live)
{
    const char *lo = t->stack ? t->stack->lo : NULL;
    for (sl__hold_t *h = t->holds; h; h = h->next) {
        const char *a = (const char *)h;
        if (lo && a >= lo && a < live)
            sl__die(__FILE__, __LINE__,
                    "task ended while holding a tracked permit or guard that lived in a "
                    "local variable of a function that had already returned");
    }
}

static void run_defers_and_holds(sl_task_t *t, const char *live)
{
    holds_check(t, live);
    sl__task_ext_t *ext = t->ext;
    while (ext && ext->ndefers > 0) {
        sl__defer_t d = ext->defers[--ext->ndefers];
        d.fn(d.arg);
    }
    while (t->holds) {
        sl__hold_t *h = t->holds;
        sl__hold_remove(h);
        h->release(h);
    }
}

/* The task's end wakes its joiners, and a JoinSet's join_next, at the back of the run queue, as
 * the scheduler's own wakes do (sl__task_wake: w->cur NULL), not into runnext: runnext is for a
 * hand-off between running tasks. A joiner woken into runnext ran after every task of a batch,
 * took one result and parked again; from the back of the queue it runs once the batch has run
 * and takes every result in one go (spawn_join on one worker: 0.75 of the time, docs/perf.md,
 * session 23). Tokio's current_thread runtime, which has no LIFO slot, does the same. */
static void task_finish_wake(sl_task_t *t)
{
    sl__worker_t *w = t->worker;
    sl_waiter_t *list = NULL;
    if (t->unjoinable) {
        /* Nobody can be among the joiners: no lock (a locked instruction per task of a
         * JoinSet, spawn_join). */
        atomic_store_explicit(&t->done, 1, memory_order_release);
    } else {
        sl__lock(&t->lock);
        atomic_store_explicit(&t->done, 1, memory_order_release);
        sl__waitq_claim_all(&t->joiners, 0, &list);
        sl__unlock(&t->lock);
    }
    w->cur = NULL;
    sl__waiters_wake(list);
    if (t->on_done)
        t->on_done(t, t->on_done_arg);
    w->cur = t;
}

static void task_exit(sl_task_t *t, void *value, int status, const char *live)
    __attribute__((noreturn));

/* live: the lowest frame of the task still live (see holds_check). */
static void task_exit(sl_task_t *t, void *value, int status, const char *live)
{
    run_defers_and_holds(t, live);
    /* As in Tokio, cancellation takes effect where the task can notice it: a task that was
     * aborted and then returned without any call having reported SL_ECANCELED to it has
     * simply finished. */
    if (status == SL_TASK_RETURNED && t->saw_cancel)
        status = SL_TASK_CANCELLED;
    t->result = value;
    t->status = status;
    t->state = SL__T_DONE;
    task_finish_wake(t);
    switch_exit(t);
    sl__die(__FILE__, __LINE__, "finished task resumed");
}

static void task_entry(void *arg)
{
    sl_task_t *t = arg;
#if SLUICE_ASAN
    __sanitizer_finish_switch_fiber(NULL, &t->worker->sched_stack_bottom,
                                    &t->worker->sched_stack_size);
#endif
    void *r = t->fn(t->arg);
    task_exit(t, r, SL_TASK_RETURNED, (const char *)__builtin_frame_address(0));
}

/* Called by the scheduler after a task switched out for good. */
static void task_reap(sl__worker_t *w, sl_task_t *t)
{
    sl_runtime_t *rt = w->rt;
    all_unlink(w, t);
#if SLUICE_TSAN
    __tsan_destroy_fiber(t->tsan_fiber);
    t->tsan_fiber = NULL;
#endif
    if (t->stack) {
        sl__stack_put(rt, w, t->stack);
        t->stack = NULL;
    }
    int was_main = (t->id == 1);
    task_unref(t);
    if (was_main) {
        atomic_store(&rt->shutdown, 1);
        /* The other half of the pair below: the barrier the reaps leave out (once per run). */
        sl__abort_barrier(rt);
        for (int i = 0; i < rt->nworkers; i++)
            sl__wake_worker(rt->workers[i]);
    }
    /* After shutdown, the reap that leaves no task alive wakes every worker so that each sees
     * it can exit. Either this reap sees the shutdown flag, or the workers woken by the one
     * that set it see this reap in live_tasks(): a Dekker pair, each side a store then a load.
     * As with a wait and an abort (runtime.md, "Cancellation"), the frequent side (a reap per
     * task) takes no barrier when membarrier is there: the setter runs one between its store
     * and its wakes (sl__abort_barrier, skipped when this thread runs all of rt's tasks).
     * Without membarrier both sides are sequentially consistent (on x86 the reap's store is an
     * exchange: 3% of spawn_join on the Xeon). */
    if (SL__LIKELY(sl__asym)) {
        live_add(&w->live_out, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps the load after */
    } else {
        live_add(&w->live_out, memory_order_seq_cst);
    }
    if (atomic_load(&rt->shutdown) && live_tasks(rt) == 0) {
        for (int i = 0; i < rt->nworkers; i++)
            sl__wake_worker(rt->workers[i]);
    }
}

/* A task aborted before it started never runs: it ends CANCELLED without touching its stack. */
static void task_skip(sl__worker_t *w, sl_task_t *t)
{
    t->worker = w;
    all_link(w, t);
    t->status = t->stack_failed ? SL_TASK_PANICKED : SL_TASK_CANCELLED;
    t->state = SL__T_DONE;
    task_finish_wake(t);
    task_reap(w, t);
}

/* Stack colouring: each task's first frame starts 0 to SL__STACK_COLOURS - 1 cache lines below
 * the top of its stack. Every stack is its own page-aligned range, so without this the hot top
 * frames of all tasks sit at the same offset in their pages, in the same few cache sets, and a
 * thousand tasks that take turns evict each other's frames (notify_waiters ran 40% slower).
 * The colour is a hash of a per-worker counter, not the counter itself: stacks are mapped a
 * fixed distance apart, so where a stack's top page falls in the L2's set span already follows
 * the mapping order, and a colour that did too added nothing (docs/design/runtime.md).
 * 32 lines (2 KiB at most) keep a parked task's frames within the top page: no memory cost. */
static inline size_t stack_colour(sl__worker_t *w)
{
    uint32_t h = (w->colour++) * 0x9E3779B9u; /* Fibonacci hashing: the top bits */
    _Static_assert(SL__STACK_COLOURS == 32, "the shift below takes 5 bits");
    return (size_t)(h >> (32 - 5)) * SL__CACHELINE;
}

/* When a new task starts: prefetches, for writing, the lines of the task the run queue holds
 * next if it is new too, and what the starting task's on_done() will write when it ends (a
 * JoinSet entry). A stolen task was written by the worker that spawned it, its entry too, and
 * starting and ending one touches all of that: walked one task at a time, each line is a miss
 * from the other core (spawn_join: run_task, task_exit and on_done stalled on them). The next
 * task's lines were fetched while this one ran, so its on_done_arg is at hand. */
static inline void prefetch_start(sl__worker_t *w, sl_task_t *t)
{
    sl_task_t *n = w->rq_head;
    if (n && n->state == SL__T_NEW)
        for (size_t off = 0; off < sizeof(sl_task_t); off += SL__CACHELINE)
            sl__prefetch_w((char *)n + off);
    if (t->on_done_arg)
        sl__prefetch_w(t->on_done_arg);
}

static void run_task(sl__worker_t *w, sl_task_t *t)
{
    if (t->state == SL__T_NEW) {
        prefetch_start(w, t);
        if (atomic_load(&t->cancelled) || atomic_load(&w->rt->shutdown)) {
            task_skip(w, t);
            return;
        }
        /* The stack is taken when the task first runs, from this worker's cache: a batch of
         * spawned tasks that each run to completion reuses a handful of stacks, and a stolen
         * task does not drag a stack from one worker's cache to another's. */
        if (!t->stack && !(t->stack = sl__stack_get(w->rt, w, t->stack_size))) {
            t->stack_failed = 1;
            task_skip(w, t);
            return;
        }
        t->canary = t->stack->guard == 0;
        t->worker = w;
        all_link(w, t);
        sl__ctx_make(&t->ctx, t->stack->lo, t->stack->size - stack_colour(w), task_entry, t);
        t->state = SL__T_RUNNABLE;
    }
    t->budget = w->budget;
    sl_task_t *back = switch_in(w, t);
    if (back->state == SL__T_DONE)
        task_reap(w, back);
}

static int spawn_impl(const sl_spawn_opts_t *o, sl_task_fn fn, void *arg,
                      void (*on_done)(sl_task_t *, void *), void *on_done_arg, sl_task_t **slot,
                      uint64_t *id, sl_task_t **out)
{
    sl_task_t *self = sl__self_checked("sl_task_spawn");
    sl__worker_t *w = self->worker;
    sl_runtime_t *rt = w->rt;
    if (atomic_load(&rt->shutdown))
        return SL_ESHUTDOWN;
    size_t ssize = rt->opts.stack_size;
    sl__worker_t *target = NULL;
    if (o) {
        if (o->stack_size) {
            if (o->stack_size < (size_t)16 * 1024 || o->stack_size > SL_STACK_SIZE_MAX)
                return SL_EINVAL;
            ssize = (o->stack_size + rt->page - 1) & ~(rt->page - 1);
        }
        if (o->use_worker && o->worker != -1) { /* -1: the spawning worker, as without */
            if (o->worker < 0 || o->worker >= rt->nworkers)
                return SL_EINVAL;
            target = rt->workers[o->worker];
        }
    }
    sl_task_t *t = task_alloc(rt, w);
    if (!t)
        return SL_ENOMEM;
    t->stack_size = ssize;
    t->rt = rt;
    t->fn = fn;
    t->arg = arg;
    t->on_done = on_done;
    t->on_done_arg = on_done_arg;
    t->state = SL__T_NEW;
    t->wtimer.slot = -1;
    t->wtimer.kind = SL__TIMER_WAIT;
    t->wtimer.owner = t;
    sl__lock_init_shared(&t->lock); /* after task_alloc's memset: see sl__lock_init_shared */
    if (o && o->name) {
        char *name = (char *)t + TASK_LINES; /* see TASK_SPAN */
        size_t nlen = strnlen(o->name, TASK_NAME_MAX - 1);
        memcpy(name, o->name, nlen);
        name[nlen] = 0;
        t->name = name;
    }
    t->id = id_take(w);
    atomic_store_explicit(&t->refs, out ? 2 : 1, memory_order_relaxed);
    t->unjoinable = !out || slot;
#if SLUICE_TSAN
    t->tsan_fiber = __tsan_create_fiber(0);
    __tsan_set_fiber_name(t->tsan_fiber, t->name);
#endif
    /* Release is enough here: whoever counts this task as reaped saw the spawn through the
     * queue that carried the task. */
    live_add(&w->live_in, memory_order_release);
    stat_inc(&w->n_spawned);
    if (slot)
        *slot = t; /* before the task can run: see sl__spawn */
    if (id)
        *id = t->id;
    if (out)
        *out = t;
    if (target && target != w) {
        t->worker = target;
        inbox_push(target, t); /* pinned: inboxes are never stolen from */
    } else if (target) {
        t->worker = w;
        rq_push(w, t);
    } else {
        t->worker = w;
        fresh_push(w, t);
        /* Tell one sleeping worker that there is work to take, unless one is already looking. */
        if (rt->nworkers > 1 && atomic_load(&rt->nsleeping) > 0 &&
            !atomic_load_explicit(&rt->waking, memory_order_relaxed) &&
            !atomic_exchange(&rt->waking, 1)) {
            int woke = 0;
            for (int i = 0; i < rt->nworkers && !woke; i++) {
                sl__worker_t *v = rt->workers[i];
                if (v != w && atomic_load(&v->sleeping)) {
                    sl__wake_worker(v);
                    woke = 1;
                }
            }
            if (!woke)
                atomic_store(&rt->waking, 0);
        }
    }
    return 0;
}

int sl_task_spawn(sl_task_fn fn, void *arg, sl_task_t **out)
{
    return spawn_impl(NULL, fn, arg, NULL, NULL, NULL, NULL, out);
}

int sl_task_spawn_ex(const sl_spawn_opts_t *opts, sl_task_fn fn, void *arg, sl_task_t **out)
{
    return spawn_impl(opts, fn, arg, NULL, NULL, NULL, NULL, out);
}

int sl__spawn(const sl_spawn_opts_t *opts, sl_task_fn fn, void *arg,
              void (*on_done)(sl_task_t *t, void *arg), void *on_done_arg, sl_task_t **slot,
              uint64_t *id, sl_task_t **out)
{
    SL__ASSERT(out != NULL, "sl__spawn needs a handle");
    return spawn_impl(opts, fn, arg, on_done, on_done_arg, slot, id, out);
}

void sl_task_detach(sl_task_t *t)
{
    if (t)
        task_unref(t);
}

/* ---- Abort, and the barrier it takes for the waits (see sl__wait_publish in rt.h) ---------- */

int sl__asym;
int sl__asym_decided; /* set once asym_decide() has run (tests) */
static pthread_once_t asym_once = PTHREAD_ONCE_INIT;

static long sys_membarrier(int cmd)
{
    return syscall(__NR_membarrier, cmd, 0, 0);
}

static void asym_decide(void)
{
    sl__asym_decided = 1;
    const char *off = getenv("SLUICE_NO_MEMBARRIER"); /* tests and A/B runs of the fallback */
    if (off && *off && strcmp(off, "0") != 0)
        return;
    long cmds = sys_membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        return;
    if (sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
        return;
    __atomic_store_n(&sl__asym, 1, __ATOMIC_RELEASE); /* lock.c reads it outside the once */
}

/* Called before any runtime's workers start: pthread_once orders the decision before every
 * use on every thread the runtime creates. */
void sl__asym_init(void)
{
    pthread_once(&asym_once, asym_decide);
}

int sl__abort_mark(sl_task_t *t)
{
    if (atomic_load_explicit(&t->done, memory_order_acquire))
        return 0;
    atomic_store(&t->cancelled, 1);
    return 1;
}

void sl__abort_barrier(sl_runtime_t *rt)
{
    if (!sl__asym)
        return; /* every wait publishes with an exchange: the seq_cst accesses suffice */
    sl__worker_t *me = sl__tls_worker;
    if (me && me->rt == rt && rt->nworkers == 1)
        return; /* rt's tasks all run on this thread, and none is running now */
    /* Registered in asym_decide(); the call cannot fail after that but for a kernel bug. */
    if (sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
        sl__die(__FILE__, __LINE__, "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed");
}

void sl__abort_claim(sl_task_t *t)
{
    uint32_t s = atomic_load(&t->wstate);
    if ((s & 0xff) != SL__W_WAITING || atomic_load_explicit(&t->shield, memory_order_relaxed))
        return;
    sl__worker_t *w = t->worker; /* fixed once a task has started, and a waiting task has */
    if (w == sl__tls_worker) {
        sl__wait_claim_task(t, s >> 8, SL__WIN_CANCEL);
        return;
    }
    /* Another thread: the task's worker claims (aborts_drain), so that every claim of a
     * one-clause wait but its waitable's lock holders' runs there (rt.h, "Plain claims"). One
     * post per task is enough: `cancelled` is never cleared, and a wait that begins after this
     * one (the one whose generation the post carries) began after our barrier, so it reads
     * `cancelled` and ends itself. The post holds a reference: the task may end, and its handle
     * go, before the worker gets to it. */
    uint32_t none = 0;
    if (!atomic_compare_exchange_strong_explicit(&t->abort_req, &none, SL__ABORT_POSTED | s >> 8,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    sl_task_t *head = atomic_load_explicit(&w->aborts, memory_order_relaxed);
    do
        t->abort_next = head;
    while (!atomic_compare_exchange_weak_explicit(&w->aborts, &head, t, memory_order_seq_cst,
                                                  memory_order_relaxed));
    sl__wake_worker(w);
}

void sl_task_abort(sl_task_t *t)
{
    if (!sl__abort_mark(t))
        return;
    sl__abort_barrier(t->rt);
    sl__abort_claim(t);
}

int sl_task_cancelled(void)
{
    sl_task_t *t = sl__self();
    if (!t || !atomic_load_explicit(&t->cancelled, memory_order_relaxed))
        return 0;
    t->saw_cancel = 1;
    return 1;
}

int sl_task_shield(int on)
{
    sl_task_t *t = sl__self_checked("sl_task_shield");
    return atomic_exchange_explicit(&t->shield, on ? 1 : 0, memory_order_relaxed);
}

void sl__park(void)
{
    sl__park_task(sl__self_checked("sl__park"));
}

int sl_task_yield(void)
{
    sl_task_t *t = sl__self_checked("sl_task_yield");
    sl__worker_t *w = t->worker;
    t->state = SL__T_RUNNABLE;
    rq_push(w, t);
    sl__switch_from(w, t, 1);
    if (atomic_load_explicit(&t->cancelled, memory_order_relaxed) &&
        !atomic_load_explicit(&t->shield, memory_order_relaxed)) {
        t->saw_cancel = 1;
        return SL_ECANCELED;
    }
    return 0;
}

/* Out of line: the inlined switch-away needs a frame and saved registers, which sl__coop's
 * common path (the budget not used up) should not pay. */
__attribute__((noinline, cold)) void sl__coop_yield(sl_task_t *t)
{
    sl__worker_t *w = t->worker;
    stat_inc(&w->n_budget_yields);
    t->state = SL__T_RUNNABLE;
    rq_push(w, t);
    sl__switch_from(w, t, 1);
}

void sl__coop(void)
{
    sl_task_t *t = sl__tls_worker->cur;
    if (SL__UNLIKELY(--t->budget < 0))
        sl__coop_yield(t);
}

/* The task's rarely used state (see struct sl__task_ext), allocated on first use; NULL when
 * out of memory. Only the task itself calls this. */
static sl__task_ext_t *task_ext(sl_task_t *t)
{
    sl__task_ext_t *ext = t->ext;
    if (!ext && (ext = sl__alloc(t->rt, sizeof *ext))) {
        memset(ext, 0, sizeof *ext);
        ext->defers = ext->defer_inline;
        ext->cap_defers = SL__DEFER_INLINE;
        t->ext = ext;
    }
    return ext;
}

void sl_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_task_t *t = sl__self_checked("sl_panic");
    sl__task_ext_t *ext = task_ext(t);
    if (ext && !ext->panic_msg)
        ext->panic_msg = sl__alloc(t->rt, SL_PANIC_MSG_MAX);
    /* The analyzer loses track of va_start across the noreturn-capable call above. */
    if (ext && ext->panic_msg)
        vsnprintf(ext->panic_msg, SL_PANIC_MSG_MAX, fmt, ap); /* NOLINT(clang-analyzer-valist*) */
    va_end(ap);
    task_exit(t, NULL, SL_TASK_PANICKED, (const char *)__builtin_frame_address(0));
}

int sl_defer(void (*fn)(void *), void *arg)
{
    sl_task_t *t = sl__self_checked("sl_defer");
    sl__task_ext_t *ext = task_ext(t);
    if (!ext)
        return SL_ENOMEM;
    if (ext->ndefers == ext->cap_defers) {
        int ncap = ext->cap_defers * 2;
        sl__defer_t *nd = sl__alloc(t->rt, sizeof(sl__defer_t) * (size_t)ncap);
        if (!nd)
            return SL_ENOMEM;
        memcpy(nd, ext->defers, sizeof(sl__defer_t) * (size_t)ext->ndefers);
        if (ext->defers != ext->defer_inline)
            sl__free(t->rt, ext->defers, sizeof(sl__defer_t) * (size_t)ext->cap_defers);
        ext->defers = nd;
        ext->cap_defers = ncap;
    }
    ext->defers[ext->ndefers].fn = fn;
    ext->defers[ext->ndefers].arg = arg;
    ext->ndefers++;
    return 0;
}

/* ---- Join (a waitable) ---------------------------------------------------------------------- */

void sl__task_outcome(const sl_task_t *t, sl_join_t *out)
{
    out->status = (sl_task_status_t)t->status;
    out->value = sl__task_value(t);
    out->id = t->id;
    out->message[0] = 0;
    if (t->status == SL_TASK_PANICKED)
        snprintf(out->message, sizeof out->message, "%s",
                 t->stack_failed               ? "could not map a task stack (out of memory, or "
                                                 "vm.max_map_count reached)"
                 : t->ext && t->ext->panic_msg ? t->ext->panic_msg
                                               : "(no message: out of memory)");
}

static void join_fill(sl_task_t *t, sl_join_t *out)
{
    if (out)
        sl__task_outcome(t, out);
    task_unref(t);
}

static int join_poll(sl_clause_t *c)
{
    sl_task_t *t = c->obj;
    if (!atomic_load_explicit(&t->done, memory_order_acquire))
        return SL_EAGAIN;
    join_fill(t, c->buf);
    return 0;
}

static int join_ready(const void *obj)
{
    return atomic_load_explicit(&((sl_task_t *)obj)->done, memory_order_acquire);
}

static int join_arm(sl_clause_t *c)
{
    sl_task_t *t = c->obj;
    return sl__arm_cond(c, &t->lock, &t->joiners, join_ready);
}

static void join_disarm(sl_clause_t *c)
{
    sl_task_t *t = c->obj;
    sl__disarm_cond(c, &t->lock, &t->joiners);
}

static int join_complete(sl_clause_t *c)
{
    join_fill(c->obj, c->buf);
    return 0;
}

static const struct sl_clause_ops join_ops = {join_poll, join_arm, join_disarm, join_complete};

void sl_clause_join(sl_clause_t *c, sl_task_t *t, sl_join_t *out)
{
    sl__clause_init(c, &join_ops, t, out, 0, 0);
}

int sl_task_join_until(sl_task_t *t, int64_t deadline, sl_join_t *out)
{
    sl_task_t *self = sl__self_checked("sl_task_join");
    SL__ASSERT(self != t, "a task cannot join itself");
    return sl__wait1vp(&join_ops, t, out, 0, 0, deadline);
}

int sl_task_join(sl_task_t *t, sl_join_t *out)
{
    return sl_task_join_until(t, SL_FOREVER, out);
}

int sl_task_try_join(sl_task_t *t, sl_join_t *out)
{
    if (!atomic_load_explicit(&t->done, memory_order_acquire))
        return SL_EAGAIN;
    join_fill(t, out);
    return 0;
}

/* ---- The worker loop ------------------------------------------------------------------------ */

/* Pops the older of the run queue's head and the fresh queue's head, so that spawned and
 * woken tasks run in the order they became runnable. */
sl_task_t *sl__pop_oldest(sl__worker_t *w)
{
    if (atomic_load_explicit(&w->fresh_len, memory_order_acquire) == 0)
        return rq_pop(w);
    sl__lock(&w->fresh_lock);
    long len = atomic_load_explicit(&w->fresh_len, memory_order_relaxed);
    if (len > 0) {
        sl__fresh_ent_t *e = fresh_ent(w, 0);
        if (!w->rq_head || (int32_t)(e->seq - w->rq_head->seq) < 0) {
            sl_task_t *f = e->t;
            w->fresh_h = (w->fresh_h + 1) & (w->fresh_cap - 1);
            fresh_len_add(w, -1);
            fresh_head_changed(w);
            /* The next one's lines, for writing: a stolen task's are in the spawner's cache
             * (see prefetch_start). */
            if (len > 1) {
                char *n = (char *)fresh_ent(w, 0)->t;
                for (size_t off = 0; off < sizeof(sl_task_t); off += SL__CACHELINE)
                    sl__prefetch_w(n + off);
            }
            sl__unlock(&w->fresh_lock);
            return f;
        }
    }
    sl__unlock(&w->fresh_lock);
    return rq_pop(w);
}

static sl_task_t *pick(sl__worker_t *w)
{
    return sl__pick_from(w, 0);
}

static int has_work(sl__worker_t *w)
{
    return w->runnext || w->rq_head || atomic_load_explicit(&w->fresh_len, memory_order_relaxed);
}

/* Stealing. A started task never changes worker, so where a task starts is where it stays.
 * Tasks that talk to each other (a channel's producers and consumer, a semaphore's users) run
 * several times faster on one worker than spread over two, where every hand-over moves cache
 * lines between cores (docs/perf.md: mpsc_7p, semaphore_pool, gateway_inproc); tasks that
 * compute want to spread. A worker therefore takes another worker's unstarted tasks only once
 * the oldest has waited opts.steal_delay_ns (200 us by default) without being started, 25 times
 * that when fewer than 16 wait (steal_waits_init): a burst of spawns that the spawner's worker
 * starts promptly stays with it, and a worker that is busy (a long task, a long queue) gives half
 * of its waiting tasks away. */
static inline int stealable(sl__worker_t *v, int64_t now)
{
    /* INT64_MAX (empty): never. Only fresh_steal_at is read: see its declaration in rt.h. */
    return now >= atomic_load_explicit(&v->fresh_steal_at, memory_order_relaxed);
}

/* When the oldest unstarted task of another worker becomes stealable (INT64_MAX: none). */
static int64_t next_stealable(sl__worker_t *w)
{
    sl_runtime_t *rt = w->rt;
    int64_t at = INT64_MAX;
    for (int k = 0; k < rt->nworkers; k++) {
        sl__worker_t *v = rt->workers[k];
        if (v == w)
            continue;
        int64_t h = atomic_load_explicit(&v->fresh_steal_at, memory_order_relaxed);
        if (h < at)
            at = h;
    }
    return at;
}

/* Takes half of the unstarted tasks of another worker whose oldest is old enough, at most
 * STEAL_MAX: task pointers are copied out of the victim's ring under its lock, then appended to
 * this worker's own ring under this worker's lock (never both locks at once). Stolen entries
 * are never stolen again: taken back behind younger tasks, they would start out of spawn
 * order. The thief touches no task until it starts it (pop_oldest fetches the next one's
 * lines ahead). Only unstarted tasks may move: a started one has the addresses of its thread's
 * locals in its frames (errno's, and the thread pointer behind sl__tls_task, switch.h). */
static int steal(sl__worker_t *w)
{
    sl_runtime_t *rt = w->rt;
    int64_t now = sl_clock();
    int n = rt->nworkers;
    if (n < 2)
        return 0;
    /* What fits in this worker's ring (owner only: others only take from it, so the room
     * cannot shrink before the tasks go in). */
    uint32_t room =
        w->fresh_cap - (uint32_t)atomic_load_explicit(&w->fresh_len, memory_order_relaxed);
    if (room > STEAL_MAX)
        room = STEAL_MAX;
    if (room == 0)
        return 0; /* a full queue of its own: nothing to steal for */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    int start = (int)(w->rng % (uint64_t)n);
    for (int k = 0; k < n; k++) {
        sl__worker_t *v = rt->workers[(start + k) % n];
        if (v == w || !stealable(v, now))
            continue;
        if (!sl__trylock(&v->fresh_lock))
            continue;
        long len = atomic_load_explicit(&v->fresh_len, memory_order_relaxed);
        if (len <= 0 || fresh_ent(v, 0)->stolen || now < steal_at(rt, fresh_ent(v, 0)->at, len)) {
            sl__unlock(&v->fresh_lock);
            continue;
        }
        uint32_t take = (uint32_t)((len + 1) / 2), want = take;
        if (take > room)
            take = room;
        sl_task_t *got[STEAL_MAX];
        for (uint32_t i = 0; i < take; i++)
            got[i] = fresh_ent(v, i)->t;
        v->fresh_h = (v->fresh_h + take) & (v->fresh_cap - 1);
        fresh_len_add(v, -(long)take);
        fresh_head_changed(v);
        sl__unlock(&v->fresh_lock);

        sl__lock(&w->fresh_lock);
        long mine = atomic_load_explicit(&w->fresh_len, memory_order_relaxed);
        for (uint32_t i = 0; i < take; i++)
            *fresh_ent(w, (uint32_t)mine + i) = (sl__fresh_ent_t){got[i], now, w->seq++, 1};
        fresh_len_add(w, (long)take);
        /* INT64_MAX when the stolen tasks lead; else the length may have crossed STEAL_SMALL. */
        fresh_head_changed(w);
        sl__unlock(&w->fresh_lock);
        /* The first task's lines, for writing (pop_oldest fetches each next one). */
        /* take >= 1 (len >= 1 and room >= 1), so got[0] is set. */
        for (size_t off = 0; off < sizeof(sl_task_t); off += SL__CACHELINE)
            // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
            sl__prefetch_w((char *)got[0] + off);
        /* Limited by the ring's size: a larger one for the next steal (outside the locks;
         * only a steal of real work, never an idle look, allocates). */
        if (want > take && room < STEAL_MAX)
            (void)fresh_resize(w, w->fresh_cap * 2);
        atomic_store_explicit(&w->n_steals,
                              atomic_load_explicit(&w->n_steals, memory_order_relaxed) + take,
                              memory_order_relaxed);
        return 1;
    }
    return 0;
}

static void handle_events(sl__worker_t *w, struct epoll_event *ev, int n)
{
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u64 == 0) {
            uint64_t v; /* one read resets an eventfd counter */
            (void)!read(w->evfd, &v, sizeof v);
        } else {
            sl__io_event(w, ev[i].data.u64, ev[i].events);
        }
    }
}

static void poll_io(sl__worker_t *w, int timeout_ms)
{
    /* Without registered fds only the wake eventfd is in the set, and it matters only to a
     * worker that sleeps (idle_sleep polls with a timeout, and always makes the call). On this
     * VM the syscall cost notify_waiters 6% (docs/perf.md), polling every 61 wakes. */
    if (timeout_ms == 0 && atomic_load_explicit(&w->io_regs, memory_order_relaxed) == 0)
        return;
    struct epoll_event ev[MAX_EVENTS];
    int n = epoll_wait(w->epfd, ev, MAX_EVENTS, timeout_ms);
    if (n > 0)
        handle_events(w, ev, n);
}

/* The worker's own started tasks: none is running (this thread runs them), so no barrier. */
static void abort_all(sl__worker_t *w)
{
    w->shutdown_seen = 1;
    for (sl_task_t *t = w->all; t; t = t->all_next)
        if (sl__abort_mark(t))
            sl__abort_claim(t);
}

static int should_exit(sl__worker_t *w)
{
    return atomic_load(&w->rt->shutdown) && live_tasks(w->rt) == 0;
}

/* Before sleeping in epoll_wait, an idle worker of a multi-worker runtime watches its inbox
 * and the other workers' fresh queues for a short while. A wake that arrives meanwhile costs
 * the waker one CAS instead of an eventfd write and a thread wake-up (several microseconds on
 * a VM), which is what message passing across workers needs. Returns 1 when work turned up. */
#define SPIN_NS (40 * SL_USEC)

static int idle_spin(sl__worker_t *w)
{
    sl_runtime_t *rt = w->rt;
    if (rt->nworkers < 2)
        return 0;
    int64_t until = sl_clock() + SPIN_NS;
    int64_t next_timer = sl__timer_next(w);
    for (unsigned i = 1;; i++) {
        if (remote_pending(w) || has_work(w))
            return 1;
        if (atomic_load_explicit(&rt->shutdown, memory_order_relaxed))
            return 1;
        if ((i & 7) == 0) {
            int64_t now = sl_clock();
            for (int k = 0; k < rt->nworkers; k++)
                if (rt->workers[k] != w && stealable(rt->workers[k], now))
                    return 1;
            if (now >= until || now >= next_timer)
                return now >= next_timer;
        }
        sl__cpu_relax();
    }
}

static void idle_sleep(sl__worker_t *w)
{
    sl_runtime_t *rt = w->rt;
    /* Nothing to run: a good moment to trim what other workers freed to this one's task cache
     * (see task_free). */
    if (w->task_adopted || atomic_load_explicit(&w->task_remote, memory_order_relaxed))
        task_cache_drain(w);
    /* And to hand the stacks retired since the last batch to the pool, and unmap the pooled
     * stacks and spare channel slabs nobody has taken for a while. */
    if (w->stack_retired)
        sl__stack_retired_flush(rt, w);
    sl__stack_pool_trim(sl__now(w));
    sl__mpsc_slab_trim(sl__now(w));
    /* A burst of spawns grew the fresh queue; an idle worker gives the memory back. */
    if (w->fresh_cap > FRESH_CAP_KEEP && atomic_load(&w->fresh_len) == 0)
        (void)fresh_resize(w, FRESH_CAP_MIN);
    atomic_store(&w->sleeping, 1);
    atomic_fetch_add(&rt->nsleeping, 1);
    int ready = atomic_load(&w->inbox) != NULL || atomic_load(&w->aborts) != NULL || has_work(w) ||
                should_exit(w) || (atomic_load(&rt->shutdown) && !w->shutdown_seen);
    if (!ready) {
        int64_t next = sl__timer_next(w);
        int64_t st = next_stealable(w); /* come back to steal from a worker that stays busy */
        if (st < next)
            next = st;
        int timeout = -1;
        if (next != SL_FOREVER) {
            int64_t d = next - sl_clock();
            timeout = d <= 0 ? 0 : (int)((d + SL_MSEC - 1) / SL_MSEC);
            if (d > (int64_t)INT32_MAX * SL_MSEC)
                timeout = INT32_MAX;
        }
        struct epoll_event ev[MAX_EVENTS];
        int n = epoll_wait(w->epfd, ev, MAX_EVENTS, timeout);
        atomic_store(&w->sleeping, 0);
        atomic_fetch_sub(&rt->nsleeping, 1);
        if (n > 0) {
            w->now = sl_clock();
            handle_events(w, ev, n);
        }
    } else {
        atomic_store(&w->sleeping, 0);
        atomic_fetch_sub(&rt->nsleeping, 1);
    }
    atomic_store(&rt->waking, 0);
}

static void worker_loop(sl__worker_t *w)
{
    sl__tls_worker = w;
#if SLUICE_TSAN
    w->sched_fiber = __tsan_get_current_fiber();
#endif
    sl_runtime_t *rt = w->rt;
    for (;;) {
        /* The round's clock (rt.h, "The round's clock"): read now when a timer is armed (the
         * due-timer check below needs it) or other workers may steal (spawns are stamped with
         * it, see fresh_push); else left to the round's first reader, if any (sl__now). */
        w->now = rt->nworkers > 1 || w->timers.len ? sl_clock() : SL__NOW_STALE;
        inbox_drain(w);
        aborts_drain(w);
        sl__timers_run(w);
        if (SL__UNLIKELY(atomic_load_explicit(&rt->shutdown, memory_order_relaxed) &&
                         !w->shutdown_seen))
            abort_all(w);
        /* Tasks that park or yield switch to the next one directly (sl__switch_from); they count
         * against batch_left too. */
        w->batch_left = BATCH;
        sl_task_t *t;
        while (w->batch_left > 0 && (t = pick(w))) {
            w->batch_left--;
            run_task(w, t);
        }
        if (w->batch_left <= 0 || has_work(w) || remote_pending(w)) {
            poll_io(w, 0);
            continue;
        }
        if (should_exit(w))
            break;
        /* Out of work: what was freed here goes home now (see task_free). */
        free_batches_flush(w);
        if (steal(w))
            continue;
        w->now = sl_clock();
        if (sl__timer_next(w) <= w->now)
            continue;
        if (idle_spin(w))
            continue;
        poll_io(w, 0);
        if (has_work(w) || remote_pending(w))
            continue;
        idle_sleep(w);
    }
    /* Aborts of tasks that have ended since: only their references are left to drop. */
    aborts_drain(w);
    free_batches_flush(w);
    /* The runtime stops (or block_on returns) without this worker idling again. */
    if (w->stack_retired)
        sl__stack_retired_flush(rt, w);
    sl__tls_worker = NULL;
}

static void *worker_thread(void *arg)
{
    sl__worker_t *w = arg;
    sl__stack_thread_init(w);
    worker_loop(w);
    sl__stack_thread_fini(w);
    return NULL;
}

/* ---- Runtime ----------------------------------------------------------------------------------
 */

void sl_runtime_opts_init(sl_runtime_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 0;
    o->stack_size = (size_t)64 * 1024;
    o->stack_cache = 64;
    o->blocking_threads = 64;
    o->blocking_idle_ns = 10 * SL_SEC;
    o->steal_delay_ns = STEAL_DELAY_DEFAULT;
    o->budget = 128;
    o->guard_pages = 1;
    o->alloc = default_alloc;
}

static long read_max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = 65530;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

static void worker_free(sl_runtime_t *rt, sl__worker_t *w)
{
    if (!w)
        return;
    /* An abort posted after the worker's last round (from outside the runtime, as the task
     * ended): only its reference is left to drop. */
    for (sl_task_t *t = atomic_exchange(&w->aborts, NULL); t;) {
        sl_task_t *n = t->abort_next;
        task_unref(t);
        t = n;
    }
    sl__stack_cache_free(rt, w);
    sl__oneshot_cache_free(w);
    task_cache_free(w);
    if (w->fresh_v)
        sl__free(rt, w->fresh_v, sizeof(sl__fresh_ent_t) * w->fresh_cap);
    if (w->free_batch) {
        /* Flushed when the worker stopped; anything left (a free after that) goes now. */
        for (int i = 0; i < rt->nworkers; i++) {
            char *m = w->free_batch[i].head;
            while (m) {
                char *next = task_mem_next(m);
                sl__free(rt, m, TASK_SIZE);
                m = m == w->free_batch[i].tail ? NULL : next;
            }
        }
        sl__free(rt, w->free_batch, sizeof(sl__free_batch_t) * (size_t)rt->nworkers);
    }
    sl__timer_heap_free(w);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->evfd >= 0)
        close(w->evfd);
    sl__free(rt, w, sizeof *w);
}

int sl_runtime_new(const sl_runtime_opts_t *opts, sl_runtime_t **out)
{
    sl__asym_init();
    sl_runtime_opts_t o;
    if (opts)
        o = *opts;
    else
        sl_runtime_opts_init(&o);
    if (!o.alloc)
        o.alloc = default_alloc;
    if (o.workers < 0 || o.workers > 1024 || o.budget < 0 || o.stack_cache < 0 ||
        o.blocking_threads < 0 || o.blocking_idle_ns < 0 || o.steal_delay_ns < -1)
        return SL_EINVAL;
    if (o.stack_size == 0)
        o.stack_size = (size_t)64 * 1024;
    if (o.stack_size < (size_t)16 * 1024 || o.stack_size > SL_STACK_SIZE_MAX ||
        (o.guard_pages != 0 && o.guard_pages != 1))
        return SL_EINVAL;
    if (o.workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.workers = n > 0 ? (int)n : 1;
    }
    if (o.budget == 0)
        o.budget = 128;
    if (o.blocking_threads == 0)
        o.blocking_threads = 64;
    if (o.blocking_idle_ns == 0)
        o.blocking_idle_ns = 10 * SL_SEC;
    if (o.steal_delay_ns == 0)
        o.steal_delay_ns = STEAL_DELAY_DEFAULT;
    else if (o.steal_delay_ns < 0)
        o.steal_delay_ns = 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    o.stack_size = (o.stack_size + page - 1) & ~(page - 1);
    if (o.seed == 0)
        o.seed = (uint64_t)sl_clock() | 1;

    sl_runtime_t *rt = o.alloc(o.alloc_ud, NULL, 0, sizeof *rt);
    if (!rt)
        return SL_ENOMEM;
    memset(rt, 0, sizeof *rt);
    rt->opts = o;
    steal_waits_init(rt);
    rt->page = page;
    rt->nworkers = o.workers;
    atomic_store(&rt->madv_guard, -1);
    atomic_store(&rt->run_guard, 1);
    rt->mprotect_budget = read_max_map_count() * 2 / 5;
    atomic_store(&rt->next_id, 1);
    rt->workers = sl__calloc(rt, sizeof(sl__worker_t *) * (size_t)o.workers);
    if (!rt->workers) {
        o.alloc(o.alloc_ud, rt, sizeof *rt, 0);
        return SL_ENOMEM;
    }
    int err = 0;
    for (int i = 0; i < o.workers && !err; i++) {
        sl__worker_t *w = sl__alloc(rt, sizeof *w);
        if (!w) {
            err = SL_ENOMEM;
            break;
        }
        memset(w, 0, sizeof *w);
        w->rt = rt;
        w->index = i;
        w->budget = rt->opts.budget - 1; /* see sl__worker_t.budget */
        atomic_init(&w->fresh_steal_at, INT64_MAX);
        w->epfd = -1;
        w->evfd = -1;
        w->rng = o.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 0xBF58476D1CE4E5B9ULL + 1;
        rt->workers[i] = w;
        if (o.workers > 1 &&
            !(w->free_batch = sl__calloc(rt, sizeof(sl__free_batch_t) * (size_t)o.workers))) {
            err = SL_ENOMEM;
            break;
        }
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0) {
            err = -errno;
            break;
        }
        /* The timer heap's first 64 slots come with the worker, so that the first wait with a
         * deadline on a worker does not allocate in the middle of a program's steady state. */
        w->timers.v = sl__alloc(rt, sizeof(void *) * 64);
        if (!w->timers.v) {
            err = SL_ENOMEM;
            break;
        }
        w->timers.cap = 64;
        if (!(w->fresh_v = sl__alloc(rt, sizeof(sl__fresh_ent_t) * FRESH_CAP_MIN))) {
            err = SL_ENOMEM;
            break;
        }
        w->fresh_cap = FRESH_CAP_MIN;
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->evfd < 0) {
            err = -errno;
            break;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0) {
            err = -errno;
            break;
        }
    }
    if (err) {
        for (int i = 0; i < o.workers; i++)
            worker_free(rt, rt->workers[i]);
        sl__free(rt, rt->workers, sizeof(sl__worker_t *) * (size_t)o.workers);
        o.alloc(o.alloc_ud, rt, sizeof *rt, 0);
        return err;
    }
    *out = rt;
    return 0;
}

void sl_runtime_free(sl_runtime_t *rt)
{
    if (!rt)
        return;
    SL__ASSERT(!atomic_load(&rt->running), "sl_runtime_free on a running runtime");
    sl__pool_shutdown(rt);
    for (int i = 0; i < rt->nworkers; i++)
        worker_free(rt, rt->workers[i]);
    sl__free(rt, rt->workers, sizeof(sl__worker_t *) * (size_t)rt->nworkers);
    sl_alloc_fn a = rt->opts.alloc;
    void *ud = rt->opts.alloc_ud;
    a(ud, rt, sizeof *rt, 0);
}

typedef struct main_arg {
    void *(*fn)(void *);
    void *arg;
} main_arg_t;

int sl_runtime_block_on(sl_runtime_t *rt, void *(*fn)(void *), void *arg, void **result)
{
    SL__ASSERT(sl__tls_worker == NULL, "sl_runtime_block_on called from a sluice worker");
    int expected = 0;
    if (!atomic_compare_exchange_strong(&rt->running, &expected, 1))
        return SL_EBUSY;
    atomic_store(&rt->shutdown, 0);
    int err = sl__io_init(rt);
    if (err) {
        atomic_store(&rt->running, 0);
        return err;
    }
    sl__worker_t *w0 = rt->workers[0];

    /* The main task: spawned by hand because there is no task to spawn from yet. */
    sl_task_t *t = task_alloc(rt, w0);
    if (!t) {
        sl__io_fini(rt);
        atomic_store(&rt->running, 0);
        return SL_ENOMEM;
    }
    t->stack = sl__stack_get(rt, w0, rt->opts.stack_size);
    if (!t->stack) {
        task_free(rt, t);
        sl__io_fini(rt);
        atomic_store(&rt->running, 0);
        return SL_ENOMEM;
    }
    t->stack_size = rt->opts.stack_size;
    t->rt = rt;
    t->fn = fn;
    t->arg = arg;
    t->state = SL__T_NEW;
    t->wtimer.slot = -1;
    t->wtimer.kind = SL__TIMER_WAIT;
    t->wtimer.owner = t;
    atomic_store(&rt->next_id, 1);
    t->id = atomic_fetch_add(&rt->next_id, 1); /* id 1 marks the main task */
    t->name = "main";
    atomic_store(&t->refs, 2);
#if SLUICE_TSAN
    t->tsan_fiber = __tsan_create_fiber(0);
    __tsan_set_fiber_name(t->tsan_fiber, "main");
#endif
    for (int i = 0; i < rt->nworkers; i++) {
        sl__worker_t *v = rt->workers[i];
        atomic_store(&v->live_in, 0);
        atomic_store(&v->live_out, 0);
        v->id_next = v->id_end = 0;
    }
    atomic_store(&w0->live_in, 1); /* the main task */
    t->worker = w0;
    rq_push(w0, t);

    int started = 1;
    for (int i = 1; i < rt->nworkers; i++) {
        if (pthread_create(&rt->workers[i]->thread, NULL, worker_thread, rt->workers[i]) != 0) {
            err = SL_EAGAIN;
            break;
        }
        started++;
    }
    if (err) {
        /* Run nothing: let the started workers see shutdown and leave. */
        atomic_store(&t->cancelled, 1);
    }
    sl__stack_thread_init(w0);
    worker_loop(w0);
    sl__stack_thread_fini(w0);
    for (int i = 1; i < started; i++)
        pthread_join(rt->workers[i]->thread, NULL);

    int status = t->status;
    void *res = t->result;
    if (status == SL_TASK_PANICKED)
        fprintf(stderr, "sluice: main task panicked: %s\n",
                t->ext && t->ext->panic_msg ? t->ext->panic_msg : "(no message)");
    task_unref(t);
    sl__pool_shutdown(rt);
    sl__io_fini(rt);
    for (int i = 0; i < rt->nworkers; i++) {
        sl__worker_t *w = rt->workers[i];
        w->shutdown_seen = 0;
        w->runnext = NULL;
        w->runnext_streak = 0;
    }
    atomic_store(&rt->shutdown, 0);
    atomic_store(&rt->running, 0);
    if (err)
        return err;
    if (result)
        *result = res;
    return status == SL_TASK_PANICKED ? SL_EPANIC : 0;
}

int sl_run(const sl_runtime_opts_t *opts, void *(*fn)(void *), void *arg, void **result)
{
    sl_runtime_t *rt;
    int r = sl_runtime_new(opts, &rt);
    if (r)
        return r;
    r = sl_runtime_block_on(rt, fn, arg, result);
    sl_runtime_free(rt);
    return r;
}

void sl_runtime_stats(const sl_runtime_t *rt, sl_runtime_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < rt->nworkers; i++) {
        sl__worker_t *w = rt->workers[i];
        uint64_t park_direct = atomic_load_explicit(&w->n_park_direct, memory_order_relaxed);
        uint64_t direct = atomic_load_explicit(&w->n_direct, memory_order_relaxed) + park_direct;
        out->switches += atomic_load_explicit(&w->n_sched_switches, memory_order_relaxed) + direct;
        out->direct_switches += direct;
        out->parks += park_direct + atomic_load_explicit(&w->n_park_sched, memory_order_relaxed);
        out->steals += atomic_load_explicit(&w->n_steals, memory_order_relaxed);
        out->budget_yields += atomic_load_explicit(&w->n_budget_yields, memory_order_relaxed);
        out->tasks_spawned += atomic_load_explicit(&w->n_spawned, memory_order_relaxed);
    }
    sl_runtime_t *r = (sl_runtime_t *)rt;
    long live = live_tasks(r);
    out->tasks_live = live > 0 ? (uint64_t)live : 0;
    out->stacks_live = (uint64_t)atomic_load(&r->stacks_live);
    out->stacks_guarded = (uint64_t)atomic_load(&r->stacks_guarded);
    out->blocking_threads = (uint64_t)sl__pool_threads(r);
}
