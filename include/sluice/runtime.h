/*
 * sluice: runtimes and worker threads.
 *
 * A runtime owns one or more worker threads. Each worker runs tasks (stackful coroutines),
 * its own timers and its own epoll reactor. Tasks never move between workers once they have
 * started (see docs/design/runtime.md for why). A runtime with one worker is the
 * current-thread flavour: everything runs on the thread that called sl_runtime_block_on().
 */
#ifndef SLUICE_RUNTIME_H
#define SLUICE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

typedef struct sl_runtime sl_runtime_t;

/*
 * Allocator hook, Lua style: ptr == NULL allocates nsize bytes; nsize == 0 frees ptr and
 * returns NULL; otherwise reallocates ptr (of osize bytes) to nsize bytes. Returns NULL on
 * failure. Called from every worker thread and the blocking pool: it must be thread-safe.
 */
typedef void *(*sl_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* The largest stack size a runtime or a spawn accepts (1 TiB of address space); a larger one
 * is SL_EINVAL. A size that cannot be mapped is not an error until a task needs the stack. */
#define SL_STACK_SIZE_MAX ((size_t)1 << 40)

/* Options for sl_runtime_new(). Initialise with sl_runtime_opts_init() and change fields. */
typedef struct sl_runtime_opts {
    int workers;       /* worker threads; 0 = number of CPUs (default); 1 = current-thread */
    size_t stack_size; /* default task stack size in bytes (default 64 KiB, 16 KiB to
                          SL_STACK_SIZE_MAX) */
    /* Stacks kept for reuse per worker (default 64). Past it (0 included), an ended task's
     * stack may still be reused by its worker until, together with up to 31 others, it goes to
     * the process's stack pool when its worker next goes idle, or when sl_runtime_block_on()
     * returns; the cached stacks go there when the runtime is freed. The pool is shared by
     * every runtime of the process, as malloc's free memory is: a task starting where no
     * cached stack is left takes one from it before mapping a new one. It keeps only stacks
     * with a guard page (guard_pages 1 on Linux 6.13 or later), of one size, at most 4,096 of
     * them, each with at most its top page resident (the rest is given back to the kernel as
     * it enters the pool), and unmaps a stack unused for 1 s at its next use or when a worker
     * idles; see sl_memory_trim(). Default-size stacks are mapped up to 16 at a time
     * (address space only until used). */
    int stack_cache;
    int blocking_threads;     /* maximum blocking-pool threads (default 64) */
    int64_t blocking_idle_ns; /* an idle blocking thread exits after this long (default 10 s) */
    int budget;               /* cooperative budget: operations before a forced yield (128) */
    int guard_pages;          /* 1 (default): a guard page below every stack; 0: none (else
                                 SL_EINVAL) */
    sl_alloc_fn alloc;        /* allocator (default: malloc/realloc/free) */
    void *alloc_ud;           /* passed to alloc */
    uint64_t seed;            /* seed for select's fair mode and stealing (0: from the clock) */
    /* An idle worker takes half of another worker's unstarted tasks only once the oldest has
     * waited this long, or 25 times this long while fewer than 16 wait: tasks that their
     * spawner's worker starts promptly stay together (a task never changes worker once
     * started), and a few tasks spawned together stay together through a stall of a few
     * milliseconds. Default (0) 200 us (5 ms for a short queue); -1: steal at once. */
    int64_t steal_delay_ns;
} sl_runtime_opts_t;

/** Statistics of a runtime, read with sl_runtime_stats(). Counters are cumulative. */
typedef struct sl_runtime_stats {
    uint64_t tasks_spawned;
    uint64_t tasks_live;
    uint64_t switches;        /* tasks switched to (by the scheduler or directly) */
    uint64_t direct_switches; /* of those, task-to-task switches that skipped the scheduler */
    uint64_t parks;
    uint64_t steals;
    uint64_t budget_yields;
    uint64_t stacks_live;
    uint64_t stacks_guarded;   /* live stacks that have a real guard page */
    uint64_t blocking_threads; /* blocking-pool threads alive now */
} sl_runtime_stats_t;

/**
 * Fills *opts with the defaults.
 *
 * Never waits.
 */
SL_API void sl_runtime_opts_init(sl_runtime_opts_t *opts);

/**
 * Creates a runtime. No thread starts until sl_runtime_block_on().
 *
 * Never waits. opts may be NULL for the defaults; it is copied. On success *out is an owned
 * runtime; release it with sl_runtime_free().
 * Returns 0, SL_EINVAL (a bad option), SL_ENOMEM, or a negative errno from epoll/eventfd.
 */
SL_API int sl_runtime_new(const sl_runtime_opts_t *opts, sl_runtime_t **out);

/**
 * Runs fn(arg) as the main task on the calling thread (worker 0), with the other workers on
 * threads of their own, and returns when the main task has returned and every other task has
 * ended.
 *
 * Waits (blocks the calling thread, which must not be a sluice worker). When the main task
 * returns, every task still running is cancelled (its waits return SL_ECANCELED) and joined;
 * then the worker threads exit. If result is not NULL, *result receives the main task's return
 * value. Returns 0, SL_EPANIC if the main task panicked (its message went to stderr),
 * SL_EBUSY if the runtime is already running, SL_ENOMEM (the reactor, the main task or its
 * stack could not be allocated; fn did not run), or SL_EAGAIN if a worker thread could not be
 * started (fn did not run; *result is untouched).
 */
SL_API int sl_runtime_block_on(sl_runtime_t *rt, void *(*fn)(void *), void *arg, void **result);

/**
 * Frees a runtime that is not running, with everything it still owns (cached stacks, the
 * reactor, pool threads).
 *
 * Never waits for tasks (there are none once block_on has returned). NULL is ignored.
 */
SL_API void sl_runtime_free(sl_runtime_t *rt);

/**
 * Convenience: sl_runtime_new() + sl_runtime_block_on() + sl_runtime_free().
 *
 * Waits like sl_runtime_block_on(). Returns what either of them returns.
 */
SL_API int sl_run(const sl_runtime_opts_t *opts, void *(*fn)(void *), void *arg, void **result);

/**
 * Returns the runtime the calling task runs on, or NULL outside a task.
 *
 * Never waits. The pointer is borrowed.
 */
SL_API sl_runtime_t *sl_runtime_current(void);

/**
 * Returns the number of worker threads of rt.
 *
 * Never waits.
 */
SL_API int sl_runtime_workers(const sl_runtime_t *rt);

/**
 * Returns the index of the worker the calling task runs on (0..workers-1), or -1 outside a
 * task.
 *
 * Never waits.
 */
SL_API int sl_worker_index(void);

/**
 * Copies the runtime's counters into *out.
 *
 * Never waits. The counters are read without stopping the workers: each one is exact, their
 * sum over a moment is approximate.
 */
SL_API void sl_runtime_stats(const sl_runtime_t *rt, sl_runtime_stats_t *out);

/**
 * Gives back to the kernel the memory sluice keeps for reuse after its owners are done with it,
 * as malloc_trim() does for malloc's: every stack in the process's stack pool (see
 * sl_runtime_opts_t.stack_cache) and every spare slab of the unbounded channels (2 MiB blocks of
 * a deep backlog, at most 32 kept, for 1 s at most while channels are in use, and marked so that
 * the kernel may reclaim them when memory runs short). For a program that has finished with its
 * runtimes or its deep backlogs, or wants the memory back before the pools' own expiry. What
 * runtimes and channels still hold is not touched, and the pools fill again as they give memory
 * back.
 *
 * Never waits for tasks (takes the pools' locks briefly, then unmaps). Any thread, inside or
 * outside a runtime.
 */
SL_API void sl_memory_trim(void);

/**
 * Allocates size bytes with the current runtime's allocator (malloc outside a runtime).
 *
 * Never waits. Returns NULL on failure. Release with sl_free().
 */
SL_API void *sl_malloc(size_t size);

/**
 * Frees memory from sl_malloc() (size is the size that was asked for). NULL is ignored.
 *
 * Never waits.
 */
SL_API void sl_free(void *ptr, size_t size);

#endif /* SLUICE_RUNTIME_H */
