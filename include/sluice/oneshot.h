/*
 * sluice: one-shot channels (tokio::sync::oneshot): one value, sent once, received once.
 *
 *     sl_oneshot_tx_t *tx; sl_oneshot_rx_t *rx;
 *     sl_oneshot_new(sizeof(uint64_t), &tx, &rx);   // one allocation for both halves
 *     ... hand tx to another task, which calls sl_oneshot_send(tx, &v) ...
 *     int r = sl_oneshot_recv_until(rx, &v, sl_deadline_in(500 * SL_MSEC));
 *     sl_oneshot_rx_drop(rx);
 *
 * The value (elem_size bytes, fixed at creation) is copied in and out. Both halves are owned
 * handles: the sender is consumed by sl_oneshot_send() (always, even when it fails) or by
 * sl_oneshot_tx_drop(); the receiver must always be released with sl_oneshot_rx_drop(), also
 * after it received. The shared object is freed when both are gone.
 *
 * Differences from Tokio (see docs/design/primitives.md):
 *   - Errors are codes: Tokio's Err(v) from send -> SL_ECLOSED with the value left in the
 *     caller's buffer; RecvError and TryRecvError::Closed -> SL_ECLOSED; TryRecvError::Empty
 *     -> SL_EEMPTY. Messages are sl_strerror()'s.
 *   - Tokio panics when a completed receiver is awaited again; here a blocking receive (or a
 *     recv clause) after the receiver got its result is an assertion failure (abort), while
 *     sl_oneshot_try_recv() then returns SL_ECLOSED, as in Tokio.
 *   - No blocking_recv for plain threads: sl_oneshot_send() and sl_oneshot_try_recv() work from
 *     any thread.
 */
#ifndef SLUICE_ONESHOT_H
#define SLUICE_ONESHOT_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/select.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

typedef struct sl_oneshot_tx sl_oneshot_tx_t; /* the sending half */
typedef struct sl_oneshot_rx sl_oneshot_rx_t; /* the receiving half */

/**
 * Creates a one-shot channel for one value of elem_size bytes.
 *
 * Never waits; works inside or outside a runtime. Makes exactly one allocation. On success *tx
 * is the owned sender (consume with sl_oneshot_send or sl_oneshot_tx_drop) and *rx the owned
 * receiver (release with sl_oneshot_rx_drop). Returns 0 or SL_ENOMEM (also for an elem_size
 * above UINT32_MAX).
 */
SL_API int sl_oneshot_new(size_t elem_size, sl_oneshot_tx_t **tx, sl_oneshot_rx_t **rx);

/**
 * Sends a copy of *val and consumes the sender.
 *
 * Never waits; callable from any thread. Takes ownership of tx whatever the result: do not use
 * tx afterwards. Returns 0 (the value is stored or already in the receiver's hands; it may
 * still go unread if the receiver is dropped) or SL_ECLOSED (the receiver was closed or
 * dropped: nothing was sent and *val is untouched, the value "handed back").
 */
SL_API int sl_oneshot_send(sl_oneshot_tx_t *tx, const void *val);

/**
 * Consumes the sender without sending: the receiver then gets SL_ECLOSED.
 *
 * Never waits. Takes ownership of tx; NULL is ignored. A waiting receiver is woken.
 */
SL_API void sl_oneshot_tx_drop(sl_oneshot_tx_t *tx);

/**
 * Returns nonzero once the receiver was closed or dropped (a send would fail).
 *
 * Never waits.
 */
SL_API int sl_oneshot_tx_is_closed(const sl_oneshot_tx_t *tx);

/**
 * Waits until the receiver is closed or dropped (Tokio's Sender::closed).
 *
 * Waits. tx stays owned by the caller. Returns 0, SL_ECANCELED, or SL_ETIMEDOUT (timeout
 * scope).
 */
SL_API int sl_oneshot_tx_closed(sl_oneshot_tx_t *tx);

/**
 * Returns 0 if the receiver is closed or dropped, else SL_EAGAIN.
 *
 * Never waits.
 */
SL_API int sl_oneshot_tx_try_closed(sl_oneshot_tx_t *tx);

/**
 * As sl_oneshot_tx_closed(), giving up at the absolute deadline.
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_oneshot_tx_closed_until(sl_oneshot_tx_t *tx, int64_t deadline);

/**
 * Waits for the value and copies it into *out.
 *
 * Waits. Cancel-safe: on SL_ECANCELED or SL_ETIMEDOUT nothing was taken and the receiver may
 * wait again. Returns 0 or SL_ECLOSED (the sender was dropped without sending, or the receiver
 * was closed before a value arrived), after which the receiver is terminated: receiving again
 * with a blocking call aborts (Tokio panics); SL_ECANCELED; SL_ETIMEDOUT inside an expired
 * sl_timeout scope. rx stays owned: drop it with sl_oneshot_rx_drop().
 */
SL_API int sl_oneshot_recv(sl_oneshot_rx_t *rx, void *out);

/**
 * Takes the value if it has arrived.
 *
 * Never waits; callable from any thread; never fails spuriously. Returns 0, SL_EEMPTY (nothing
 * yet: the receiver stays usable) or SL_ECLOSED (sender dropped, receiver closed with nothing
 * sent, or the receiver already got its result).
 */
SL_API int sl_oneshot_try_recv(sl_oneshot_rx_t *rx, void *out);

/**
 * As sl_oneshot_recv(), giving up at the absolute deadline.
 *
 * Waits. Returns as sl_oneshot_recv(), plus SL_ETIMEDOUT (nothing taken; the receiver may wait
 * again).
 */
SL_API int sl_oneshot_recv_until(sl_oneshot_rx_t *rx, void *out, int64_t deadline);

/**
 * Closes the receiver: later sends fail, the sender's closed() completes. A value sent before
 * the close can still be received.
 *
 * Never waits. Idempotent; a no-op once the value was received. rx stays owned.
 */
SL_API void sl_oneshot_rx_close(sl_oneshot_rx_t *rx);

/**
 * Closes and releases the receiver; an unread value is discarded.
 *
 * Never waits. Takes ownership of rx; NULL is ignored. No task may be waiting on rx.
 */
SL_API void sl_oneshot_rx_drop(sl_oneshot_rx_t *rx);

/**
 * Returns nonzero once the receiver got its final result (a value or SL_ECLOSED).
 *
 * Never waits.
 */
SL_API int sl_oneshot_rx_is_terminated(const sl_oneshot_rx_t *rx);

/**
 * Returns nonzero unless a value has arrived and was not yet received.
 *
 * Never waits.
 */
SL_API int sl_oneshot_rx_is_empty(const sl_oneshot_rx_t *rx);

/**
 * A select clause that receives the value into *out (res: 0 or SL_ECLOSED).
 *
 * Never waits. A losing clause takes nothing.
 */
SL_API void sl_clause_oneshot_recv(sl_clause_t *c, sl_oneshot_rx_t *rx, void *out);

/**
 * A select clause that completes (res = 0) once the receiver is closed or dropped.
 *
 * Never waits.
 */
SL_API void sl_clause_oneshot_closed(sl_clause_t *c, sl_oneshot_tx_t *tx);

#endif /* SLUICE_ONESHOT_H */
