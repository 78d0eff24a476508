/*
 * sluice: tasks.
 *
 * A task is a stackful coroutine: a C function running on a stack of its own, which a
 * blocking call suspends without blocking its worker thread. sl_task_spawn() returns a join
 * handle; sl_task_join() gives back the task's return value and how it ended.
 *
 * Cancellation follows libdill: once a task is aborted, its current wait and every later one
 * return SL_ECANCELED until the task returns, unless it shields a section with
 * sl_task_shield(). A task that is aborted before it first runs never runs.
 *
 * The floating-point environment (rounding mode, exception masks and flags: MXCSR and the x87
 * control word, FPCR on aarch64) belongs to the worker thread, as in Tokio and Go: a task that
 * changes it (fesetround, feenableexcept) changes it for the tasks its worker runs after it,
 * and should set it back before any call that can wait. A task starts with its worker's
 * environment. (The portable swapcontext switch, on other targets or with
 * -DSLUICE_CTX_UCONTEXT=1, switches it with each task.)
 */
#ifndef SLUICE_TASK_H
#define SLUICE_TASK_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/wait.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

typedef struct sl_task sl_task_t;

/* A task's body. Its return value is handed to the joiner. */
typedef void *(*sl_task_fn)(void *arg);

/* How a task ended. */
typedef enum sl_task_status {
    SL_TASK_RETURNED = 0,  /* fn returned normally */
    SL_TASK_CANCELLED = 1, /* aborted before it started, or a call reported SL_ECANCELED to it
                              (a wait, sl_task_yield, sl_task_cancelled) before it returned */
    SL_TASK_PANICKED = 2   /* the task called sl_panic() */
} sl_task_status_t;

#define SL_PANIC_MSG_MAX 256

/* The outcome of a joined task. */
typedef struct sl_join {
    sl_task_status_t status;
    void *value;                    /* fn's return value (NULL when it did not return) */
    uint64_t id;                    /* the task's id */
    char message[SL_PANIC_MSG_MAX]; /* the panic message when status == SL_TASK_PANICKED */
} sl_join_t;

/* Options for sl_task_spawn_ex(). Zero-initialise, then set what you need. */
typedef struct sl_spawn_opts {
    const char *name;  /* copied (at most 31 bytes kept); NULL: "task" */
    size_t stack_size; /* 0: the runtime's default */
    int worker;        /* with use_worker: the worker index to start on, or -1 for the
                          spawning worker (as without use_worker) */
    int use_worker;    /* nonzero: honour .worker (needed to ask for worker 0) */
} sl_spawn_opts_t;

/**
 * Spawns fn(arg) as a new task on the calling worker.
 *
 * Never waits. Must be called from a task. The new task starts later (a worker with nothing to
 * do may take it before it starts). If out is not NULL, *out receives an owned join handle:
 * release it with sl_task_join() or sl_task_detach(). If out is NULL the task is detached.
 * arg is borrowed by the task: keep it valid until the task is done with it.
 * Returns 0, SL_ENOMEM (no memory for the task), or SL_ESHUTDOWN when the runtime is shutting
 * down (nothing was spawned). The task's stack is mapped when it first runs: if that fails,
 * the task never runs its function and ends as SL_TASK_PANICKED with a message saying so.
 */
SL_API int sl_task_spawn(sl_task_fn fn, void *arg, sl_task_t **out);

/**
 * Spawns with options: a name, a stack size, a chosen worker.
 *
 * As sl_task_spawn(); also SL_EINVAL for a worker index out of range (other than -1) or a
 * stack size below 16 KiB or above SL_STACK_SIZE_MAX.
 */
SL_API int sl_task_spawn_ex(const sl_spawn_opts_t *opts, sl_task_fn fn, void *arg, sl_task_t **out);

/**
 * Waits for the task to end and fills *out (if not NULL) with its outcome; releases the handle.
 *
 * Waits. If the calling task is cancelled, returns SL_ECANCELED and the handle stays valid.
 * Returns 0 (the handle is consumed), SL_ECANCELED, or SL_ETIMEDOUT inside an expired
 * sl_timeout scope (handle still valid).
 */
SL_API int sl_task_join(sl_task_t *t, sl_join_t *out);

/**
 * As sl_task_join(), giving up at the absolute deadline (sl_now() clock).
 *
 * Returns 0, SL_ETIMEDOUT (handle still valid) or SL_ECANCELED.
 */
SL_API int sl_task_join_until(sl_task_t *t, int64_t deadline, sl_join_t *out);

/**
 * Joins without waiting.
 *
 * Returns 0 (handle consumed) or SL_EAGAIN if the task has not ended.
 */
SL_API int sl_task_try_join(sl_task_t *t, sl_join_t *out);

/**
 * Releases the handle without waiting: the task runs on and is freed when it ends.
 *
 * Never waits. NULL is ignored.
 */
SL_API void sl_task_detach(sl_task_t *t);

/**
 * Requests cancellation of the task: its current wait and every later one return SL_ECANCELED
 * (outside shielded sections). A task that has not started never runs. Aborting a task that
 * has ended does nothing. The handle stays valid: join or detach it. A blocking call that the
 * task (running on another thread) has already begun when the request lands may still
 * complete normally if its operation needs no waiting (a value already queued, a permit
 * available), as a Tokio future that is ready when polled completes; the request then ends
 * the task's next wait.
 *
 * Never waits: from a thread other than the task's worker, the wait is ended by that worker in
 * its next round (at most one round of its tasks later), so it may still be waiting when this
 * returns, as a Tokio task may still be running when abort() returns; join the task to know it
 * has ended. Callable from any task or thread while the handle is held. Cost: from a thread
 * other than the one that runs a one-worker runtime, the call makes one membarrier(2) system
 * call (a few microseconds: it is what lets every wait start without a locked instruction; see
 * docs/design/runtime.md, "Cancellation"). Set SLUICE_NO_MEMBARRIER=1 in the environment to
 * turn that off (waits then pay an exchange each instead).
 */
SL_API void sl_task_abort(sl_task_t *t);

/**
 * Returns nonzero once the task has ended (a join would not wait).
 *
 * Never waits.
 */
SL_API int sl_task_is_finished(const sl_task_t *t);

/** Returns the task's id (unique within the process, never 0). Never waits. */
SL_API uint64_t sl_task_id(const sl_task_t *t);

/** Returns the task's name. The string lives as long as the handle. Never waits. */
SL_API const char *sl_task_name(const sl_task_t *t);

/**
 * Returns the calling task (borrowed: valid while it runs), or NULL outside a task.
 *
 * Never waits.
 */
SL_API sl_task_t *sl_task_self(void);

/**
 * Gives other tasks on this worker a turn; the calling task goes to the back of the queue.
 *
 * Waits (one scheduling round). Returns 0, or SL_ECANCELED if the calling task has been
 * cancelled (it still yielded).
 */
SL_API int sl_task_yield(void);

/**
 * Returns nonzero if the calling task has been cancelled (whether or not it is shielded).
 *
 * Never waits.
 */
SL_API int sl_task_cancelled(void);

/**
 * Shields the calling task from cancellation (on != 0) or removes the shield (on == 0): while
 * shielded, waits behave as if the task had not been cancelled, so cleanup can do bounded
 * blocking work (give it its own deadline). Returns the previous state, so sections nest:
 *     int old = sl_task_shield(1); ...cleanup...; sl_task_shield(old);
 *
 * Never waits.
 */
SL_API int sl_task_shield(int on);

/**
 * Ends the calling task with status SL_TASK_PANICKED and a printf-formatted message.
 *
 * Never returns. Its deferred cleanups (sl_defer) run in reverse order, everything it holds
 * that the runtime tracks (semaphore permits, mutex guards) is released, its joiner sees
 * SL_TASK_PANICKED with the message, and every other task carries on. The message is
 * truncated to SL_PANIC_MSG_MAX - 1 bytes. Must be called from a task.
 */
SL_API void sl_panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/**
 * Registers fn(arg) to run when the calling task ends, however it ends (returns, is cancelled,
 * panics). Deferred functions run in reverse order of registration, on the task's stack; they
 * may not wait unless shielded (they run with the task's cancellation state).
 *
 * Never waits. Returns 0 or SL_ENOMEM (fn was not registered).
 */
SL_API int sl_defer(void (*fn)(void *), void *arg);

/**
 * Runs fn(arg) on a blocking-pool thread while the calling task waits, and returns its result
 * in *result (if not NULL). For calls that would block a worker: file I/O, getaddrinfo,
 * SQLite.
 *
 * Waits. Cancellation does not interrupt fn (a thread cannot be interrupted safely): the call
 * always waits for fn to finish and then returns 0; the task sees SL_ECANCELED in its next
 * wait. An expired sl_timeout scope does not cut it short either (it never returns
 * SL_ETIMEDOUT; the next wait reports the expiry). Returns 0, or SL_ENOMEM / a negative errno
 * if no pool thread could be started (fn did not run).
 */
SL_API int sl_blocking(void *(*fn)(void *), void *arg, void **result);

#endif /* SLUICE_TASK_H */
