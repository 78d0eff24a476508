/*
 * sluice: task notification, as tokio::sync::Notify.
 *
 * sl_notify_one() wakes the oldest waiter, or, when nobody waits, stores one permit (at most
 * one) that the next wait consumes. sl_notify_last() wakes the newest waiter instead.
 * sl_notify_waiters() wakes every wait that started before it and stores nothing.
 *
 * A plain wait (sl_notify_wait(), sl_clause_notified()) takes part in sluice's claim protocol:
 * a notification goes to a waiter only by atomically claiming its wait, which cannot then time
 * out, be cancelled or lose its select. A waiter that has already given up is skipped and the
 * notification goes to the next one, or is stored as the permit: a notification is never lost,
 * and a wait that fails consumed none.
 *
 * sl_notified_t is Tokio's Notified future in caller storage, for the "register interest,
 * check the condition, then wait" pattern: sl_notified_init() takes the snapshot (a
 * sl_notify_waiters() after it completes it), sl_notified_enable() joins the queue, and
 * sl_notified_wait() waits. A notification delivered to an enabled sl_notified_t belongs to it
 * until it is waited for; sl_notified_cancel() (or the end of the task) passes a sl_notify_one()
 * notification on to the next waiter, as dropping a Notified does.
 *
 * Embedded values: sl_notify_init() / sl_notify_destroy(). Notifying never waits and works from
 * any task or thread.
 */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/select.h>
#include <sluice/wait.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

/* A notifier. Embed it; initialise with sl_notify_init(). Fields are private. */
typedef struct sl_notify {
    size_t state;       /* private: notify_waiters generation << 2 | waiters bit | permit bit */
    sl_lock_t lock;     /* private */
    sl_waitq_t waiters; /* private: FIFO */
} sl_notify_t;

/* A registered interest (Tokio's Notified). Caller storage; fields are private. The queue link
 * a notifier walks comes first and the fields the owner and a notifier both touch right after
 * it, so that a wake touches as few cache lines as the placement allows (not aligned to a
 * line on purpose: an over-aligned type would need aligned_alloc in every struct holding it).
 * 112 bytes: the node's own fields hold the generation at creation (its `aux`) and the task that
 * enabled it (its `task`, which is also the task a notifier claims when it waits on the node). */
typedef struct sl_notified {
    sl_waiter_t node;    /* private: link in the notifier's queue */
    int state;           /* private */
    sl_waiter_t *active; /* private: the waiter (a clause, or node) waiting on it now */
    sl_notify_t *notify; /* private */
    void *hold[3];       /* private: node in the task's list of held resources */
} sl_notified_t;

/**
 * Initialises a notifier: no waiters, no stored permit.
 *
 * Never waits.
 */
SL_API void sl_notify_init(sl_notify_t *n);

/**
 * Destroys a notifier. Nothing may be waiting on it or enabled on it (asserted).
 *
 * Never waits.
 */
SL_API void sl_notify_destroy(sl_notify_t *n);

/**
 * Wakes the oldest waiter, or stores one permit if nobody waits (repeated calls still store
 * one). Waiters that already gave up are skipped.
 *
 * Never waits.
 */
SL_API void sl_notify_one(sl_notify_t *n);

/**
 * As sl_notify_one() but wakes the newest waiter.
 *
 * Never waits.
 */
SL_API void sl_notify_last(sl_notify_t *n);

/**
 * Wakes every wait (and every sl_notified_t) created before this call; stores no permit.
 *
 * Never waits. Wakes at most 32 tasks per lock hold.
 */
SL_API void sl_notify_waiters(sl_notify_t *n);

/**
 * Waits for a notification (Tokio's notified().await).
 *
 * Waits. Consumes a stored permit if there is one. Not cancel-safe in Tokio's sense (the queue
 * position is lost) but a wait that fails consumed nothing. Returns 0, SL_ECANCELED or
 * SL_ETIMEDOUT (timeout scope).
 */
SL_API int sl_notify_wait(sl_notify_t *n);

/**
 * Consumes a stored permit without waiting.
 *
 * Never waits. Returns 0, or SL_EAGAIN when no permit is stored.
 */
SL_API int sl_notify_try_wait(sl_notify_t *n);

/**
 * As sl_notify_wait(), giving up at the absolute deadline (SL_FOREVER: never).
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_notify_wait_until(sl_notify_t *n, int64_t deadline);

/**
 * A select clause that completes (res = 0) on a notification. Its sl_notify_waiters() snapshot
 * is taken here, so a broadcast between this call and the select completes it. If the clause
 * loses it consumed no notification.
 *
 * Never waits. n is borrowed for the select.
 */
SL_API void sl_clause_notified(sl_clause_t *c, sl_notify_t *n);

/**
 * Creates a Notified in caller storage: takes the sl_notify_waiters() snapshot, registers
 * nothing (a sl_notify_one() meanwhile stores a permit).
 *
 * Never waits. n is borrowed for the lifetime of w.
 */
SL_API void sl_notified_init(sl_notified_t *w, sl_notify_t *n);

/**
 * Registers interest without waiting (Tokio's Notified::enable). The first enable consumes a
 * stored permit. Once registered, w is tracked by the calling task: if the task ends, w is
 * cancelled (sl_notified_cancel()). w must then stay valid until it completes or is
 * cancelled.
 *
 * Never waits. Returns 1 if w is already notified (a later wait returns at once), else 0.
 */
SL_API int sl_notified_enable(sl_notified_t *w);

/**
 * Waits until w is notified (enabling it first if needed). Once it returned 0, w stays
 * notified (fused): waiting again returns 0 at once.
 *
 * Waits. Must run in the task that enabled w (asserted). On SL_ECANCELED or SL_ETIMEDOUT, w
 * keeps its place and any notification it received: wait again, or sl_notified_cancel() it to
 * pass the notification on. Returns 0, SL_ECANCELED or SL_ETIMEDOUT.
 */
SL_API int sl_notified_wait(sl_notified_t *w);

/**
 * Returns 0 if w is notified (consuming a stored permit if w was never enabled), else
 * SL_EAGAIN. Registers nothing.
 *
 * Never waits.
 */
SL_API int sl_notified_try_wait(sl_notified_t *w);

/**
 * As sl_notified_wait(), giving up at the absolute deadline.
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_notified_wait_until(sl_notified_t *w, int64_t deadline);

/**
 * A select clause that completes (res = 0) when w is notified. Losing leaves w as it was.
 *
 * Never waits. w is borrowed for the select.
 */
SL_API void sl_clause_notified_wait(sl_clause_t *c, sl_notified_t *w);

/**
 * Drops w (Tokio's drop of Notified): unregisters it; if it had been chosen by
 * sl_notify_one()/sl_notify_last() but not yet waited for, the notification passes to the
 * next waiter (newest for notify_last) or is stored as the permit. A notification that
 * sl_notify_waiters() delivered, or one that a wait or enable already consumed, is not passed
 * on. Idempotent; after it, w may be re-initialised.
 *
 * Never waits. Must run in the task that enabled w (asserted).
 */
SL_API void sl_notified_cancel(sl_notified_t *w);

#endif /* SLUICE_NOTIFY_H */
