/*
 * sluice: cancellation tokens, as tokio-util's CancellationToken.
 *
 * A token is a shared, reference-counted flag that can be triggered once. Tasks wait for it
 * (sl_cancel_wait, or a clause in sl_select). A child token is triggered with its parent (and
 * with its parent's parent, ...), but triggering a child leaves the parent alone. Tokens are
 * independent of task cancellation (sl_task_abort); the gateway uses one token tree for its
 * graceful shutdown.
 */
#ifndef SLUICE_CANCEL_H
#define SLUICE_CANCEL_H

#include <stdint.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

typedef struct sl_cancel sl_cancel_t;

/**
 * Creates an untriggered token.
 *
 * Never waits. *out is an owned reference: release with sl_cancel_drop().
 * Returns 0 or SL_ENOMEM.
 */
SL_API int sl_cancel_new(sl_cancel_t **out);

/**
 * Creates a child of parent: triggered when parent is (at once if parent already is).
 *
 * Never waits. *out is an owned reference: release with sl_cancel_drop(). The child holds a
 * reference to nothing: dropping the parent's last reference leaves the child untriggered.
 * Returns 0 or SL_ENOMEM.
 */
SL_API int sl_cancel_child(sl_cancel_t *parent, sl_cancel_t **out);

/**
 * Returns a new reference to the same token.
 *
 * Never waits. Release it with sl_cancel_drop().
 */
SL_API sl_cancel_t *sl_cancel_clone(sl_cancel_t *tok);

/**
 * Releases one reference; the token is freed with its last one. NULL is ignored. No task may
 * be waiting on the token when its last reference goes (asserted): a waiter holds no reference.
 *
 * Never waits.
 */
SL_API void sl_cancel_drop(sl_cancel_t *tok);

/**
 * Triggers the token and, recursively, all its children; wakes every task waiting on any of
 * them. Triggering again does nothing.
 *
 * Never waits. Callable from any thread.
 */
SL_API void sl_cancel_trigger(sl_cancel_t *tok);

/** Returns nonzero once the token is triggered. Never waits. Callable from any thread. */
SL_API int sl_cancel_is_triggered(const sl_cancel_t *tok);

/**
 * Waits until the token is triggered.
 *
 * Waits. Returns 0 (triggered), SL_ECANCELED (the calling task was cancelled) or SL_ETIMEDOUT
 * (enclosing timeout scope).
 */
SL_API int sl_cancel_wait(sl_cancel_t *tok);

/**
 * As sl_cancel_wait(), giving up at the absolute deadline.
 *
 * Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_cancel_wait_until(sl_cancel_t *tok, int64_t deadline);

#endif /* SLUICE_CANCEL_H */
