/*
 * sluice: JoinSet, a set of tasks joined in completion order (tokio::task::JoinSet).
 *
 *     sl_joinset_t *set;
 *     sl_joinset_new(&set);
 *     for (int i = 0; i < n; i++)
 *         sl_joinset_spawn(set, work, &items[i], NULL);
 *     sl_join_t j;
 *     while (sl_joinset_join_next(set, &j) == 0)
 *         handle(&j);              // j.status: RETURNED, CANCELLED or PANICKED
 *     sl_joinset_free(set);
 *
 * Tasks start at once, whether or not the set is ever joined. sl_joinset_join_next() hands
 * back one ended task at a time, in the order they ended, with how each ended; a panic in one
 * task is reported to the joiner and touches no other task.
 *
 * Differences from Tokio, where C calls for them:
 *   - "None" is the code SL_EEMPTY: sl_joinset_join_next() returns SL_EEMPTY when the set holds
 *     no task (and a waiting join_next returns SL_EEMPTY if the set becomes empty under it,
 *     e.g. after sl_joinset_detach_all() from another task).
 *   - Freeing a set aborts AND joins what is left (Tokio's drop only aborts): when
 *     sl_joinset_free() returns, every task of the set has ended and its sl_defer cleanups
 *     have run. So no task outlives its set, and freeing waits (from a task).
 *   - sl_joinset_shutdown() cannot be interrupted: it is shielded from cancellation and from
 *     sl_timeout scopes, so that cleanup is deterministic.
 *   - Spawning returns the task id instead of an AbortHandle; sl_joinset_abort() aborts by id.
 *   - sl_joinset_join_all() reports a failed task with SL_EPANIC and its sl_join_t instead of
 *     re-raising the panic in the caller.
 *   - Abort is the runtime's (see <sluice/task.h>): a task aborted while it runs ends with
 *     status SL_TASK_CANCELLED once a call has reported SL_ECANCELED to it (its return value
 *     is still in sl_join_t.value), and SL_TASK_RETURNED if it returned without being told,
 *     as Tokio's Ok for a task that completed in the poll it was aborted in.
 *   - No Display strings: sl_join_t carries the status, id and panic message.
 *
 * Like Tokio's JoinSet (whose methods take &mut self), a set has one owner task at a time:
 * spawn, abort_all, detach_all, shutdown, join_all and free must not run concurrently from
 * different tasks. join_next, try_join_next, abort, len and is_empty may be called by any task
 * of the runtime, on any worker, at the same time (the set has an internal lock; several tasks
 * may wait in join_next at once, each gets a different task). Tasks in the set may run on any
 * worker; their results reach a joiner on another worker.
 */
#ifndef SLUICE_JOINSET_H
#define SLUICE_JOINSET_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/select.h>
#include <sluice/task.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

typedef struct sl_joinset sl_joinset_t;

/**
 * Creates an empty set.
 *
 * Never waits. Must be called inside a runtime (the set uses its allocator). *out is owned:
 * release it with sl_joinset_free(). Returns 0 or SL_ENOMEM.
 */
SL_API int sl_joinset_new(sl_joinset_t **out);

/**
 * Aborts every task still in the set, waits until each has ended, discards their results and
 * frees the set.
 *
 * Waits if the set is not empty (then it must be called from a task); neither cancellation of
 * the calling task nor an sl_timeout scope interrupts it (it is shielded). Afterwards every
 * task the set ever held has ended, except those removed with sl_joinset_detach_all() (the
 * memory of the set lives on until they end). No task may be waiting on the set. NULL is
 * ignored.
 */
SL_API void sl_joinset_free(sl_joinset_t *set);

/**
 * Spawns fn(arg) as a task in the set; it starts at once, as sl_task_spawn() does.
 *
 * Never waits. Must be called from a task. *id (if not NULL) receives the task id, which
 * sl_join_t.id reports when the task is joined. arg is borrowed by the task. The set's length
 * grows by one. Steady state allocates nothing beyond the task itself (entries are recycled).
 * Returns 0, SL_ENOMEM or SL_ESHUTDOWN (the runtime is shutting down); on failure nothing
 * was spawned.
 */
SL_API int sl_joinset_spawn(sl_joinset_t *set, sl_task_fn fn, void *arg, uint64_t *id);

/**
 * As sl_joinset_spawn(), with options (name, stack size, worker).
 *
 * Returns 0, SL_ENOMEM, SL_ESHUTDOWN or SL_EINVAL (bad options); on failure nothing was
 * spawned.
 */
SL_API int sl_joinset_spawn_ex(sl_joinset_t *set, const sl_spawn_opts_t *opts, sl_task_fn fn,
                               void *arg, uint64_t *id);

/**
 * Waits until a task of the set ends, removes it and fills *out (if not NULL) with its
 * outcome: status (RETURNED, CANCELLED, PANICKED), value, id and panic message. Tasks come
 * out in the order they ended.
 *
 * Waits. Cancel-safe: if the calling task is cancelled (SL_ECANCELED) or an sl_timeout scope
 * expires (SL_ETIMEDOUT), no task is removed. Consumes the cooperative budget (may yield
 * first). Returns 0, SL_EEMPTY (the set holds no task), SL_ECANCELED or SL_ETIMEDOUT.
 */
SL_API int sl_joinset_join_next(sl_joinset_t *set, sl_join_t *out);

/**
 * As sl_joinset_join_next(), giving up at the absolute deadline (sl_now() clock).
 *
 * Returns 0, SL_EEMPTY, SL_ETIMEDOUT (nothing removed) or SL_ECANCELED.
 */
SL_API int sl_joinset_join_next_until(sl_joinset_t *set, int64_t deadline, sl_join_t *out);

/**
 * Removes one task that has already ended, without waiting.
 *
 * Never waits and never touches the cooperative budget; callable from any thread of the
 * runtime. Returns 0 (*out filled, if not NULL), SL_EAGAIN (tasks remain, none has ended) or
 * SL_EEMPTY (the set holds no task).
 */
SL_API int sl_joinset_try_join_next(sl_joinset_t *set, sl_join_t *out);

/**
 * A select clause that completes like sl_joinset_join_next(): res = 0 with *out filled (if
 * not NULL), or res = SL_EEMPTY. When another clause wins, no task is removed.
 *
 * Never waits. set and out are borrowed until the select returns.
 */
SL_API void sl_clause_joinset_join_next(sl_clause_t *c, sl_joinset_t *set, sl_join_t *out);

/**
 * Aborts every task in the set (sl_task_abort) without removing any: the length is unchanged
 * and each task is still joined with sl_joinset_join_next(), as CANCELLED if the abort
 * reached it, or with its own outcome if it had ended already.
 *
 * Never waits. The tasks are aborted in batches of 64 that share one barrier (one membarrier(2)
 * call per batch on a multi-worker runtime, see sl_task_abort).
 */
SL_API void sl_joinset_abort_all(sl_joinset_t *set);

/**
 * Aborts the task with this id if it is in the set (a task that has ended is unaffected).
 * The task stays in the set.
 *
 * Never waits. O(length of the set). Returns 0 or SL_ENOENT (no such task in the set).
 */
SL_API int sl_joinset_abort(sl_joinset_t *set, uint64_t id);

/**
 * Aborts every task, then joins them all, discarding their outcomes (panics included);
 * afterwards the set is empty and every one of its tasks has ended.
 *
 * Waits; must be called from a task. Neither cancellation of the calling task nor an
 * sl_timeout scope interrupts it: it is shielded, so it always completes (once the tasks have
 * ended; a task that shields itself forever keeps it waiting). The calling task's
 * cancellation state is unchanged afterwards.
 */
SL_API void sl_joinset_shutdown(sl_joinset_t *set);

/**
 * Removes every task from the set without aborting it: they run on, their outcomes are
 * discarded. Tasks that have ended already are released. The set's length becomes 0.
 *
 * Never waits.
 */
SL_API void sl_joinset_detach_all(sl_joinset_t *set);

/**
 * Joins every task and stores their return values in values[0..*n) in completion order.
 *
 * Waits. values must have room for cap entries, at least sl_joinset_len(set). If a task did
 * not return normally (panicked or was cancelled), its outcome goes to *failed (if not NULL),
 * the remaining tasks are aborted and joined (sl_joinset_shutdown) and SL_EPANIC is returned
 * (the values joined so far are in values[0..*n)). If the calling task is cancelled or a
 * timeout scope expires, returns SL_ECANCELED / SL_ETIMEDOUT: the values joined so far are in
 * values[0..*n) and the tasks not yet joined stay in the set. Returns 0 (the set is empty),
 * SL_EINVAL (cap too small: nothing joined), SL_EPANIC, SL_ECANCELED or SL_ETIMEDOUT.
 */
SL_API int sl_joinset_join_all(sl_joinset_t *set, void **values, size_t cap, size_t *n,
                               sl_join_t *failed);

/** Returns the number of tasks in the set, running or ended but not yet joined. Never waits. */
SL_API size_t sl_joinset_len(sl_joinset_t *set);

/** Returns nonzero if the set holds no task. Never waits. */
SL_API int sl_joinset_is_empty(sl_joinset_t *set);

#endif /* SLUICE_JOINSET_H */
