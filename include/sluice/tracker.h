/*
 * sluice: TaskTracker, waiting for a group of detached tasks (tokio-util's TaskTracker).
 *
 *     sl_tracker_t *tr;
 *     sl_tracker_new(&tr);
 *     sl_tracker_spawn(tr, handle_conn, conn, NULL);   // as often as needed
 *     ...
 *     sl_tracker_close(tr);                            // no more tasks expected
 *     sl_tracker_wait(tr);                             // returns once closed AND empty
 *     sl_tracker_drop(tr);
 *
 * Unlike a JoinSet, a tracker keeps nothing of a task once it has ended, so it suits
 * long-lived spawners. It counts tracked tasks and tokens; sl_tracker_wait() returns once the
 * tracker is closed and the count is zero at the same moment. Closing does not stop spawning;
 * it only says that waiting may now finish.
 *
 * Semantics as tokio-util 0.7: a wait that has started completes if the tracker becomes closed
 * and empty at any moment while it waits, even if it is reopened (or a new task is spawned)
 * before the waiting task runs again. A wait started while the tracker is closed and empty
 * returns at once. Differences, where C calls for them:
 *   - Clones are counted references to one tracker (sl_tracker_clone / sl_tracker_drop, as
 *     sl_cancel_t); the memory lives until the last reference, tracked task and token are gone.
 *     Dropping does not abort tasks.
 *   - Tokio's TaskTrackerToken / track_future is sl_tracker_token_acquire()/_release(): work
 *     that is not a spawned task (an sl_blocking() call, a callback) counts while it holds one.
 *   - A tracked task counts until it has ended and its sl_defer cleanups have run: when
 *     sl_tracker_wait() returns, they all have, and sl_task_is_finished() is already true for
 *     every tracked task (Tokio only promises the former).
 *
 * Every function may be called from any task of the runtime, on any worker, concurrently.
 */
#ifndef SLUICE_TRACKER_H
#define SLUICE_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/select.h>
#include <sluice/task.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

typedef struct sl_tracker sl_tracker_t;

/**
 * Creates an open, empty tracker.
 *
 * Never waits. Must be called inside a runtime. *out is an owned reference: release it with
 * sl_tracker_drop(). Returns 0 or SL_ENOMEM.
 */
SL_API int sl_tracker_new(sl_tracker_t **out);

/**
 * Returns a new reference to the same tracker (Tokio's Clone).
 *
 * Never waits. Release it with sl_tracker_drop().
 */
SL_API sl_tracker_t *sl_tracker_clone(sl_tracker_t *tr);

/**
 * Releases one reference. Tracked tasks are not aborted; the memory is freed once no reference,
 * tracked task or token remains. No task may be waiting on the tracker when the last reference
 * goes. NULL is ignored.
 *
 * Never waits.
 */
SL_API void sl_tracker_drop(sl_tracker_t *tr);

/**
 * Spawns fn(arg) as a task that the tracker counts until it has ended.
 *
 * Never waits. Must be called from a task. Works whether the tracker is open or closed. If out
 * is not NULL, *out receives an owned join handle (release with sl_task_join() or
 * sl_task_detach()); with NULL the task is detached. Returns 0, SL_ENOMEM or SL_ESHUTDOWN;
 * on failure nothing was spawned and the count is unchanged.
 */
SL_API int sl_tracker_spawn(sl_tracker_t *tr, sl_task_fn fn, void *arg, sl_task_t **out);

/**
 * As sl_tracker_spawn(), with options. Also returns SL_EINVAL for bad options.
 */
SL_API int sl_tracker_spawn_ex(sl_tracker_t *tr, const sl_spawn_opts_t *opts, sl_task_fn fn,
                               void *arg, sl_task_t **out);

/**
 * Closes the tracker: waits may now complete once it is empty.
 *
 * Never waits. Returns 1 if this call closed it, 0 if it was already closed.
 */
SL_API int sl_tracker_close(sl_tracker_t *tr);

/**
 * Reopens a closed tracker.
 *
 * Never waits. Returns 1 if this call reopened it, 0 if it was already open. Waits that saw
 * the tracker closed and empty before the reopen still complete.
 */
SL_API int sl_tracker_reopen(sl_tracker_t *tr);

/** Returns nonzero if the tracker is closed. Never waits. */
SL_API int sl_tracker_is_closed(sl_tracker_t *tr);

/** Returns the number of tracked tasks and tokens. Never waits. */
SL_API size_t sl_tracker_len(sl_tracker_t *tr);

/** Returns nonzero if no task or token is tracked. Never waits. */
SL_API int sl_tracker_is_empty(sl_tracker_t *tr);

/**
 * Counts one piece of work that is not a spawned task (Tokio's TaskTracker::token()), until
 * sl_tracker_token_release(). Acquire twice to count twice (Tokio's token clone).
 *
 * Never waits. The token keeps the tracker's memory alive.
 */
SL_API void sl_tracker_token_acquire(sl_tracker_t *tr);

/**
 * Releases one token acquired with sl_tracker_token_acquire(); completes the waits if the
 * tracker is closed and this was the last tracked item.
 *
 * Never waits. Callable from any thread of the runtime (e.g. a blocking-pool thread).
 */
SL_API void sl_tracker_token_release(sl_tracker_t *tr);

/**
 * Waits until the tracker is closed and empty.
 *
 * Waits. Returns 0 at once if it is closed and empty now. Returns 0, SL_ECANCELED (the calling
 * task was cancelled) or SL_ETIMEDOUT (an enclosing sl_timeout scope expired).
 */
SL_API int sl_tracker_wait(sl_tracker_t *tr);

/**
 * As sl_tracker_wait(), giving up at the absolute deadline (sl_now() clock).
 *
 * Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_tracker_wait_until(sl_tracker_t *tr, int64_t deadline);

/**
 * Checks without waiting. Callable from any thread.
 *
 * Returns 0 if the tracker is closed and empty, SL_EAGAIN otherwise.
 */
SL_API int sl_tracker_try_wait(sl_tracker_t *tr);

/**
 * A select clause that completes (res = 0) once the tracker is closed and empty.
 *
 * Never waits. tr is borrowed for the duration of the select.
 */
SL_API void sl_clause_tracker_wait(sl_clause_t *c, sl_tracker_t *tr);

#endif /* SLUICE_TRACKER_H */
