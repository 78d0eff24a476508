/*
 * sluice: broadcast channel, as tokio::sync::broadcast.
 *
 * Many senders, many receivers; every receiver sees every value sent after it subscribed, in
 * send order, each getting its own copy (values are copied in and out, elem_size bytes each).
 * The channel is a ring of slots; a send never waits: when the ring is full it overwrites the
 * oldest value. A receiver that falls more than the ring length behind gets SL_ELAGGED once,
 * with the exact number of values it missed, and then continues from the oldest value still
 * held.
 *
 * Ring length. As in Tokio, the requested capacity is rounded up to a power of two (100 gives
 * 128; sl_broadcast_capacity() reports the real length) and lag is measured against that
 * length: a receiver lags only when strictly more than that many values behind. We keep
 * Tokio's rounding so that lag counts match Tokio's to the message, and because a power of two
 * turns the slot index into a mask.
 *
 *     sl_broadcast_tx_t *tx;
 *     sl_broadcast_rx_t *rx;
 *     sl_broadcast_new(sizeof(uint64_t), 100, &tx, &rx);
 *     uint64_t v = 7, got, missed;
 *     sl_broadcast_send(tx, &v, NULL);
 *     int r = sl_broadcast_recv(rx, &got, &missed);   // 0, SL_ELAGGED (missed) or SL_ECLOSED
 *
 * Differences from Tokio, because this is C: capacity 0 or absurd sizes return SL_EINVAL
 * instead of panicking; there is no Clone of values (bytes are copied) and no destructor, so
 * "the stored value is dropped when the last receiver owed it has read it" is observable only
 * through sl_broadcast_tx_len(); SL_ELAGGED carries its count in an out-parameter rather than
 * in the error; a receiver handle must be used by one task at a time (Tokio's &mut self).
 * Handles (tx, rx, weak) are freed by their _drop functions; the channel goes away with the
 * last one.
 */
#ifndef SLUICE_BROADCAST_H
#define SLUICE_BROADCAST_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/select.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

/* A sending handle (tokio Sender). Clone with sl_broadcast_tx_clone. */
typedef struct sl_broadcast_tx sl_broadcast_tx_t;
/* A receiving handle with its own cursor (tokio Receiver). */
typedef struct sl_broadcast_rx sl_broadcast_rx_t;
/* A weak sending handle that does not keep the channel open (tokio WeakSender). */
typedef struct sl_broadcast_weak sl_broadcast_weak_t;

/**
 * Creates a channel for values of elem_size bytes holding at least capacity values.
 *
 * Never waits; may be called outside a runtime (it then uses malloc). The ring length is
 * capacity rounded up to a power of two. *tx receives an owned sender (release with
 * sl_broadcast_tx_drop); if rx is not NULL, *rx receives an owned first receiver (release with
 * sl_broadcast_rx_drop). With rx NULL the channel starts with no receivers, like Tokio's
 * Sender::new: sends fail with SL_ENORECV until sl_broadcast_subscribe.
 * Returns 0, SL_EINVAL (capacity 0 or larger than SIZE_MAX / 2, or a ring too large to
 * allocate) or SL_ENOMEM.
 */
SL_API int sl_broadcast_new(size_t elem_size, size_t capacity, sl_broadcast_tx_t **tx,
                            sl_broadcast_rx_t **rx);

/**
 * Returns the ring length (the requested capacity rounded up to a power of two).
 *
 * Never waits.
 */
SL_API size_t sl_broadcast_capacity(const sl_broadcast_tx_t *tx);

/**
 * Returns another owned sender for the same channel (the same pointer, counted).
 *
 * Never waits. Release each clone with sl_broadcast_tx_drop.
 */
SL_API sl_broadcast_tx_t *sl_broadcast_tx_clone(sl_broadcast_tx_t *tx);

/**
 * Releases a sender. When the last sender goes, receivers drain what is left and then get
 * SL_ECLOSED; receivers waiting are woken.
 *
 * Never waits. NULL is ignored. tx must not be used afterwards.
 */
SL_API void sl_broadcast_tx_drop(sl_broadcast_tx_t *tx);

/**
 * Sends a copy of *val (elem_size bytes) to every current receiver.
 *
 * Never waits: when the ring is full the oldest value is overwritten (slow receivers then
 * lag). Callable from any thread. If nreceivers is not NULL it receives the number of
 * receivers subscribed at the time of the send (including ones that never read).
 * Returns 0, or SL_ENORECV when there is no receiver: then nothing is stored (a later
 * subscriber does not see the value) and later sends may succeed again.
 */
SL_API int sl_broadcast_send(sl_broadcast_tx_t *tx, const void *val, size_t *nreceivers);

/**
 * Creates a receiver that sees only values sent after this call.
 *
 * Never waits. *rx receives an owned receiver; release with sl_broadcast_rx_drop. A channel
 * with no receivers is open again afterwards. Returns 0 or SL_ENOMEM.
 */
SL_API int sl_broadcast_subscribe(sl_broadcast_tx_t *tx, sl_broadcast_rx_t **rx);

/**
 * Creates a new receiver on rx's channel starting at the newest position (it does not copy
 * rx's cursor), as Tokio's Receiver::resubscribe.
 *
 * Never waits. Works after the senders are gone (the new receiver then sees SL_ECLOSED).
 * *out receives an owned receiver. Returns 0 or SL_ENOMEM.
 */
SL_API int sl_broadcast_resubscribe(sl_broadcast_rx_t *rx, sl_broadcast_rx_t **out);

/**
 * Releases a receiver; values it had not read stop counting toward sl_broadcast_tx_len.
 * Nobody else is affected.
 *
 * Never waits. NULL is ignored. No task may be waiting on rx.
 */
SL_API void sl_broadcast_rx_drop(sl_broadcast_rx_t *rx);

/**
 * Receives the next value into *out (elem_size bytes).
 *
 * Waits until a value is available or the channel is closed. Cancel-safe: when cancelled,
 * timed out or beaten by another select clause, nothing was consumed and the cursor did not
 * move. Must be called from a task.
 * Returns 0 (value in *out), SL_ELAGGED (the receiver fell behind: *lagged, if not NULL,
 * receives the exact number of values it missed; the cursor now points at the oldest value
 * held, so the next call returns it; *out may have been written and holds nothing useful),
 * SL_ECLOSED (all senders gone and every held value received), SL_ECANCELED or SL_ETIMEDOUT (an
 * enclosing sl_timeout scope).
 */
SL_API int sl_broadcast_recv(sl_broadcast_rx_t *rx, void *out, uint64_t *lagged);

/**
 * Receives the next value if one is available, without waiting.
 *
 * Never waits; callable from any thread (not concurrently with another call on the same rx).
 * Returns 0, SL_ELAGGED (as for sl_broadcast_recv), SL_EEMPTY (nothing new, senders alive)
 * or SL_ECLOSED.
 */
SL_API int sl_broadcast_try_recv(sl_broadcast_rx_t *rx, void *out, uint64_t *lagged);

/**
 * sl_broadcast_recv that gives up at an absolute sl_now() deadline.
 *
 * Waits. Returns what sl_broadcast_recv returns, or SL_ETIMEDOUT at the deadline (nothing
 * consumed).
 */
SL_API int sl_broadcast_recv_until(sl_broadcast_rx_t *rx, void *out, uint64_t *lagged,
                                   int64_t deadline);

/**
 * A select clause that receives from rx: on completion res is 0 (value in *out), SL_ELAGGED
 * (count in *lagged) or SL_ECLOSED. A clause that loses consumes nothing.
 *
 * Never waits. rx, out and lagged are borrowed for the duration of the select.
 */
SL_API void sl_clause_broadcast_recv(sl_clause_t *c, sl_broadcast_rx_t *rx, void *out,
                                     uint64_t *lagged);

/**
 * Returns how many values rx has not received yet: newest position minus its cursor,
 * counting values already overwritten (so it can exceed the ring length until the next
 * receive reports the lag).
 *
 * Never waits.
 */
SL_API uint64_t sl_broadcast_rx_len(const sl_broadcast_rx_t *rx);

/**
 * Returns 1 when sl_broadcast_rx_len(rx) is 0, else 0.
 *
 * Never waits.
 */
SL_API int sl_broadcast_rx_is_empty(const sl_broadcast_rx_t *rx);

/**
 * Returns 1 when every sender is gone, else 0 (values may remain to be received).
 *
 * Never waits.
 */
SL_API int sl_broadcast_rx_is_closed(const sl_broadcast_rx_t *rx);

/**
 * Returns how many held values are still owed to at least one receiver that was subscribed
 * when they were sent (at most the ring length).
 *
 * Never waits. Costs one pass over the receivers.
 */
SL_API size_t sl_broadcast_tx_len(sl_broadcast_tx_t *tx);

/**
 * Returns 1 when sl_broadcast_tx_len(tx) is 0, else 0.
 *
 * Never waits.
 */
SL_API int sl_broadcast_tx_is_empty(sl_broadcast_tx_t *tx);

/**
 * Returns the number of live receivers.
 *
 * Never waits.
 */
SL_API size_t sl_broadcast_receiver_count(const sl_broadcast_tx_t *tx);

/**
 * Returns the number of live (strong) senders.
 *
 * Never waits.
 */
SL_API size_t sl_broadcast_sender_count(const sl_broadcast_tx_t *tx);

/**
 * Waits until the channel has no receivers (Tokio's Sender::closed).
 *
 * Waits; returns at once when there are none. If a receiver subscribes again before the
 * waiting task runs, it goes back to waiting. Must be called from a task.
 * Returns 0, SL_ECANCELED or SL_ETIMEDOUT (an enclosing sl_timeout scope).
 */
SL_API int sl_broadcast_tx_closed(sl_broadcast_tx_t *tx);

/**
 * Checks without waiting whether the channel has no receivers.
 *
 * Never waits. Returns 0 when there are none, SL_EAGAIN otherwise.
 */
SL_API int sl_broadcast_try_tx_closed(sl_broadcast_tx_t *tx);

/**
 * sl_broadcast_tx_closed that gives up at an absolute sl_now() deadline.
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_broadcast_tx_closed_until(sl_broadcast_tx_t *tx, int64_t deadline);

/**
 * A select clause that completes (res = 0) when the channel has no receivers.
 *
 * Never waits. tx is borrowed for the duration of the select.
 */
SL_API void sl_clause_broadcast_tx_closed(sl_clause_t *c, sl_broadcast_tx_t *tx);

/**
 * Returns a weak handle that does not keep the channel open.
 *
 * Never waits. Returns an owned weak handle; release with sl_broadcast_weak_drop.
 */
SL_API sl_broadcast_weak_t *sl_broadcast_tx_downgrade(sl_broadcast_tx_t *tx);

/**
 * Turns a weak handle back into a sender if any sender is still alive.
 *
 * Never waits. On success *tx receives an owned sender (release with sl_broadcast_tx_drop).
 * Returns 0 or SL_ECLOSED (every sender is gone; *tx untouched).
 */
SL_API int sl_broadcast_weak_upgrade(sl_broadcast_weak_t *weak, sl_broadcast_tx_t **tx);

/**
 * Releases a weak handle.
 *
 * Never waits. NULL is ignored.
 */
SL_API void sl_broadcast_weak_drop(sl_broadcast_weak_t *weak);

#endif /* SLUICE_BROADCAST_H */
