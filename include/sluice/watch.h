/*
 * sluice: watch channel, as tokio::sync::watch.
 *
 * One current value (elem_size bytes) and its version. Senders replace or modify it;
 * receivers read it whenever they like and can wait for a version newer than the one they have
 * seen. Intermediate values may be skipped: only the latest is kept.
 *
 * Reading never holds a writer up for long: the value lives in an immutable, reference-counted
 * version block. A reader takes a reference (a few instructions under the channel's lock) and
 * then reads or copies the block without any lock; a writer fills a spare block outside the
 * lock and swaps it in. Blocks are recycled through a free list, so steady state allocates
 * nothing (the number of blocks is bounded by the number of borrows held at once, plus two).
 *
 *     sl_watch_tx_t *tx;
 *     sl_watch_rx_t *rx;
 *     struct cfg c0 = {...}, now;
 *     sl_watch_new(sizeof c0, &c0, &tx, &rx);
 *     sl_watch_send_replace(tx, &c1, NULL);                 // in a writer
 *     while (sl_watch_changed(rx) == 0)                     // in a reader
 *         sl_watch_borrow(rx, &now);
 *
 * Differences from Tokio, because this is C: values are bytes (no Clone, no Drop); a panic
 * (sl_panic) inside a send_modify function ends the task, and, as in Tokio, the modifications
 * made so far are kept without a version bump and the channel stays usable; the modify
 * function runs with the channel's writer lock held, so it must not wait. Errors carry no
 * value back: a failed sl_watch_send leaves *val with the caller.
 */
#ifndef SLUICE_WATCH_H
#define SLUICE_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/select.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

/* A sending handle (tokio watch::Sender); clone with sl_watch_tx_clone. */
typedef struct sl_watch_tx sl_watch_tx_t;
/* A receiving handle with its own seen version (tokio watch::Receiver). */
typedef struct sl_watch_rx sl_watch_rx_t;

/* A borrowed, immutable version of the value (tokio watch::Ref). Release it with
 * sl_watch_ref_release before dropping the receiver; holding it never blocks a sender. */
typedef struct sl_watch_ref {
    const void *value; /* elem_size bytes; valid until sl_watch_ref_release */
    uint64_t version;  /* the version this value was published as */
    int has_changed;   /* 1 if the value was unseen by the receiver when borrowed */
    void *blk_;        /* private */
    void *chan_;       /* private */
} sl_watch_ref_t;

/**
 * Creates a watch channel holding a copy of *init (elem_size bytes; NULL: all zero).
 *
 * Never waits; may be called outside a runtime (it then uses malloc). *tx receives an owned
 * sender (release with sl_watch_tx_drop); if rx is not NULL, *rx receives an owned receiver
 * (release with sl_watch_rx_drop) that has seen the initial value. With rx NULL the channel
 * has no receivers, like Tokio's Sender::new: sl_watch_send fails until sl_watch_subscribe.
 * Returns 0 or SL_ENOMEM.
 */
SL_API int sl_watch_new(size_t elem_size, const void *init, sl_watch_tx_t **tx, sl_watch_rx_t **rx);

/**
 * Returns another owned sender for the same channel (the same pointer, counted).
 *
 * Never waits. Release each clone with sl_watch_tx_drop.
 */
SL_API sl_watch_tx_t *sl_watch_tx_clone(sl_watch_tx_t *tx);

/**
 * Releases a sender. When the last sender goes the channel is closed: waiting receivers are
 * woken, sl_watch_changed returns once more for an unseen value and then SL_ECLOSED, and
 * borrowing still gives the last value.
 *
 * Never waits. NULL is ignored.
 */
SL_API void sl_watch_tx_drop(sl_watch_tx_t *tx);

/**
 * Stores a copy of *val as the new value and wakes receivers waiting for a change, unless
 * there is no receiver.
 *
 * Never waits; callable from any thread. Returns 0, SL_ENORECV (no receiver: nothing stored,
 * version unchanged, as Tokio's send), or SL_ENOMEM (no block free and none could be
 * allocated; nothing stored).
 */
SL_API int sl_watch_send(sl_watch_tx_t *tx, const void *val);

/**
 * Stores a copy of *val as the new value even without receivers, bumps the version and wakes
 * waiting receivers; the previous value is copied to *old_out if it is not NULL.
 *
 * Never waits; callable from any thread. Returns 0 or SL_ENOMEM (nothing stored).
 */
SL_API int sl_watch_send_replace(sl_watch_tx_t *tx, const void *val, void *old_out);

/**
 * Calls fn(value, arg) on a private copy of the current value, then publishes it with a new
 * version and wakes waiting receivers, even if fn changed nothing and even without receivers.
 *
 * Never waits; fn runs with the writer lock held (other senders wait for it) and must not wait
 * either. If fn ends its task with sl_panic, what it changed so far is published without a
 * version bump or wake-up, and the channel stays usable. Returns 0 or SL_ENOMEM (fn not
 * called).
 */
SL_API int sl_watch_send_modify(sl_watch_tx_t *tx, void (*fn)(void *value, void *arg), void *arg);

/**
 * Like sl_watch_send_modify, but bumps the version and wakes receivers only if fn returns
 * nonzero; if fn changes the value and returns 0 the change is visible to borrowers without a
 * notification.
 *
 * Never waits. Returns 1 (fn returned nonzero: published as a change), 0 (fn returned 0) or
 * SL_ENOMEM (fn not called).
 */
SL_API int sl_watch_send_if_modified(sl_watch_tx_t *tx, int (*fn)(void *value, void *arg),
                                     void *arg);

/**
 * Copies the current value into *out from the sender's side.
 *
 * Never waits.
 */
SL_API void sl_watch_tx_borrow(sl_watch_tx_t *tx, void *out);

/**
 * Creates a receiver that has seen the current value. A channel with no receivers is open
 * again afterwards.
 *
 * Never waits. *rx receives an owned receiver (release with sl_watch_rx_drop).
 * Returns 0 or SL_ENOMEM.
 */
SL_API int sl_watch_subscribe(sl_watch_tx_t *tx, sl_watch_rx_t **rx);

/**
 * Returns the number of live receivers.
 *
 * Never waits.
 */
SL_API size_t sl_watch_receiver_count(const sl_watch_tx_t *tx);

/**
 * Returns the number of live senders.
 *
 * Never waits.
 */
SL_API size_t sl_watch_sender_count(const sl_watch_tx_t *tx);

/**
 * Returns 1 when the channel has no receivers, else 0.
 *
 * Never waits.
 */
SL_API int sl_watch_tx_is_closed(const sl_watch_tx_t *tx);

/**
 * Waits until the channel has no receivers (Tokio's Sender::closed).
 *
 * Waits; returns at once when there are none. Must be called from a task. Returns 0,
 * SL_ECANCELED or SL_ETIMEDOUT (an enclosing sl_timeout scope).
 */
SL_API int sl_watch_tx_closed(sl_watch_tx_t *tx);

/**
 * Checks without waiting whether the channel has no receivers.
 *
 * Never waits. Returns 0 when there are none, SL_EAGAIN otherwise.
 */
SL_API int sl_watch_try_tx_closed(sl_watch_tx_t *tx);

/**
 * sl_watch_tx_closed that gives up at an absolute sl_now() deadline.
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_watch_tx_closed_until(sl_watch_tx_t *tx, int64_t deadline);

/**
 * A select clause that completes (res = 0) when the channel has no receivers.
 *
 * Never waits. tx is borrowed for the duration of the select.
 */
SL_API void sl_clause_watch_tx_closed(sl_clause_t *c, sl_watch_tx_t *tx);

/**
 * Creates a receiver that starts with rx's seen version (an unseen value stays unseen).
 *
 * Never waits. *out receives an owned receiver. Returns 0 or SL_ENOMEM.
 */
SL_API int sl_watch_rx_clone(sl_watch_rx_t *rx, sl_watch_rx_t **out);

/**
 * Releases a receiver.
 *
 * Never waits. NULL is ignored. Release its borrowed refs first; no task may wait on it.
 */
SL_API void sl_watch_rx_drop(sl_watch_rx_t *rx);

/**
 * Copies the current value into *out without marking it seen.
 *
 * Never waits; the copy happens outside any lock. Works after the senders are gone (the last
 * value). Returns 1 if the value was unseen by rx, 0 if seen.
 */
SL_API int sl_watch_borrow(sl_watch_rx_t *rx, void *out);

/**
 * Copies the current value into *out and marks it seen.
 *
 * Never waits. Returns 1 if the value was unseen before this call, 0 if it was seen.
 */
SL_API int sl_watch_borrow_and_update(sl_watch_rx_t *rx, void *out);

/**
 * Borrows the current value without copying; does not mark it seen. Fills *ref and returns
 * ref->value.
 *
 * Never waits. The value stays valid and unchanged until sl_watch_ref_release(ref), however
 * many sends happen meanwhile.
 */
SL_API const void *sl_watch_borrow_ref(sl_watch_rx_t *rx, sl_watch_ref_t *ref);

/**
 * sl_watch_borrow_ref that also marks the borrowed value seen.
 *
 * Never waits.
 */
SL_API const void *sl_watch_borrow_ref_and_update(sl_watch_rx_t *rx, sl_watch_ref_t *ref);

/**
 * Releases a borrowed value.
 *
 * Never waits. Callable from any thread.
 */
SL_API void sl_watch_ref_release(sl_watch_ref_t *ref);

/**
 * Reports whether a value newer than rx's seen version is available, without marking it.
 *
 * Never waits. Returns 1 (changed), 0 (not changed) or SL_ECLOSED (every sender is gone,
 * whatever the seen state, as Tokio's has_changed).
 */
SL_API int sl_watch_has_changed(const sl_watch_rx_t *rx);

/**
 * Marks the current value unseen, so the next changed() returns at once (Tokio's
 * mark_changed).
 *
 * Never waits.
 */
SL_API void sl_watch_mark_changed(sl_watch_rx_t *rx);

/**
 * Marks the current value seen (Tokio's mark_unchanged).
 *
 * Never waits.
 */
SL_API void sl_watch_mark_unchanged(sl_watch_rx_t *rx);

/**
 * Waits for a value newer than rx's seen version and marks it seen.
 *
 * Waits. Cancel-safe: when cancelled, timed out or beaten by another select clause, nothing is
 * marked seen. Must be called from a task. Returns 0, SL_ECLOSED (every sender is gone and the
 * current value was already seen; an unseen value is still reported once with 0),
 * SL_ECANCELED or SL_ETIMEDOUT (an enclosing sl_timeout scope).
 */
SL_API int sl_watch_changed(sl_watch_rx_t *rx);

/**
 * Marks a newer value seen if there is one, without waiting.
 *
 * Never waits. Returns 0 (there was a newer value; now seen), SL_EEMPTY (nothing new) or
 * SL_ECLOSED.
 */
SL_API int sl_watch_try_changed(sl_watch_rx_t *rx);

/**
 * sl_watch_changed that gives up at an absolute sl_now() deadline.
 *
 * Waits. Returns what sl_watch_changed returns, or SL_ETIMEDOUT at the deadline.
 */
SL_API int sl_watch_changed_until(sl_watch_rx_t *rx, int64_t deadline);

/**
 * A select clause that completes when a newer value is available (res = 0; the value is
 * marked seen) or the channel is closed with nothing unseen (res = SL_ECLOSED). A clause that
 * loses marks nothing.
 *
 * Never waits. rx is borrowed for the duration of the select.
 */
SL_API void sl_clause_watch_changed(sl_clause_t *c, sl_watch_rx_t *rx);

/**
 * Waits until pred(value, arg) returns nonzero, copies that value into *out (if not NULL) and
 * marks it seen. pred is tried on the current value first, even if already seen; values may
 * be skipped between checks.
 *
 * Waits. pred runs without any lock held, on an immutable value. Each value checked is marked
 * seen, also when the wait is then cancelled. Returns 0, SL_ECLOSED (every sender is gone and
 * pred returned 0 on the last value), SL_ECANCELED or SL_ETIMEDOUT.
 */
SL_API int sl_watch_wait_for(sl_watch_rx_t *rx, int (*pred)(const void *value, void *arg),
                             void *arg, void *out);

/**
 * Checks pred on the current value once, without waiting.
 *
 * Never waits. The value checked is marked seen whatever pred returns (as each value
 * sl_watch_wait_for() checks). Returns 0 (pred true: value in *out), SL_EEMPTY (pred false) or
 * SL_ECLOSED (pred false and every sender is gone).
 */
SL_API int sl_watch_try_wait_for(sl_watch_rx_t *rx, int (*pred)(const void *value, void *arg),
                                 void *arg, void *out);

/**
 * sl_watch_wait_for that gives up at an absolute sl_now() deadline.
 *
 * Waits. Returns what sl_watch_wait_for returns, or SL_ETIMEDOUT.
 */
SL_API int sl_watch_wait_for_until(sl_watch_rx_t *rx, int (*pred)(const void *value, void *arg),
                                   void *arg, void *out, int64_t deadline);

#endif /* SLUICE_WATCH_H */
