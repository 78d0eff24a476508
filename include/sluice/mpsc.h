/*
 * sluice: multi-producer, single-consumer channels (tokio::sync::mpsc).
 *
 * Values have a fixed size chosen at creation and are copied in and out with memcpy; the
 * channel never allocates per message or per wait (an unbounded channel allocates one block
 * per 32 messages of backlog and keeps four empty blocks for reuse, so a channel whose
 * receiver keeps up allocates nothing in steady state).
 *
 *     sl_mpsc_tx_t *tx; sl_mpsc_rx_t *rx;
 *     sl_mpsc_new(sizeof(uint64_t), 50, &tx, &rx);
 *     uint64_t v = 7;
 *     sl_mpsc_send(tx, &v);                    // waits while the channel is full
 *     sl_mpsc_tx_drop(tx);
 *     while (sl_mpsc_recv(rx, &v) == 0) ...    // SL_ECLOSED: every sender gone, buffer drained
 *     sl_mpsc_rx_drop(rx);
 *
 * Capacity. A bounded channel of capacity N holds exactly N messages, counting reserved
 * permits: buffered messages + outstanding permits + free capacity = N. Senders that find it
 * full wait in one FIFO queue (send, reserve and reserve_many alike); capacity freed by the
 * receiver goes to the first of them, and try_* calls never overtake a queued sender.
 *
 * Handles. sl_mpsc_new() gives one sender and the receiver. Senders are counted handles: clone
 * and drop them (sl_mpsc_tx_clone / sl_mpsc_tx_drop). The channel is freed when the receiver,
 * every sender, every weak sender and every permit are gone. A handle may be used from any
 * task on any worker; the receiver by one task at a time.
 *
 * Closing. The receiver sees the end of the stream (SL_ECLOSED) once every sender has been
 * dropped, or sl_mpsc_rx_close() was called, AND the buffer is drained AND no permit is
 * outstanding (a permit keeps the stream open like a sender: Tokio's Permit borrows one).
 * Sending to a closed channel fails with SL_ECLOSED and leaves the caller's value untouched
 * (Tokio hands the value back in the error).
 *
 * Differences from Tokio (see docs/design/primitives.md):
 *   - Errors are codes: Tokio's SendError/TrySendError::Closed -> SL_ECLOSED,
 *     TrySendError::Full -> SL_EFULL, TryRecvError::Empty -> SL_EEMPTY,
 *     TryRecvError::Disconnected and recv() -> None -> SL_ECLOSED, SendTimeoutError::Timeout
 *     -> SL_ETIMEDOUT; their messages are sl_strerror()'s. The value is never "inside" the
 *     error: it stays in the caller's buffer.
 *   - Panics are SL_EINVAL: sl_mpsc_new(capacity 0 or > SL_MPSC_MAX_CAPACITY), and
 *     reserve_many(n > max capacity), which Tokio reports as SendError / Full.
 *   - recv_many() writes up to max values at buf[0..*n) (pass buf + k * size to "append"),
 *     and reports the end of the stream as SL_ECLOSED rather than 0.
 *   - No blocking_send/blocking_recv for plain threads: try_* calls and every unbounded send
 *     work from any thread; blocking forms need a task (an assertion checks it).
 *   - One handle type for both flavours: on an unbounded channel send and reserve never wait
 *     (they may fail with SL_ENOMEM), capacity reads SIZE_MAX.
 *   - A task that panics while holding a permit does not give the capacity back; drop permits
 *     in an sl_defer() handler if that matters.
 */
#ifndef SLUICE_MPSC_H
#define SLUICE_MPSC_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/select.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

typedef struct sl_mpsc_tx sl_mpsc_tx_t;     /* a sender (counted handle) */
typedef struct sl_mpsc_rx sl_mpsc_rx_t;     /* the receiver */
typedef struct sl_mpsc_weak sl_mpsc_weak_t; /* a weak sender: does not keep the channel open */

/* Reserved capacity for a two-phase send: caller storage, filled by the reserve calls. */
typedef struct sl_mpsc_permit {
    sl_mpsc_tx_t *tx; /* private */
    size_t n;         /* private: permits left (read with sl_mpsc_permit_count) */
} sl_mpsc_permit_t;

/* The largest capacity of a bounded channel (Tokio's Semaphore::MAX_PERMITS). */
#define SL_MPSC_MAX_CAPACITY (SIZE_MAX >> 3)

/**
 * Creates a bounded channel holding at most capacity values of elem_size bytes each.
 *
 * Never waits. Works inside or outside a runtime (the current runtime's allocator is used, and
 * kept for the channel's lifetime). The buffer is allocated here, once, with the channel.
 * On success *tx is an owned sender (release with sl_mpsc_tx_drop) and *rx the owned receiver
 * (release with sl_mpsc_rx_drop). Returns 0, SL_EINVAL (capacity 0 or above
 * SL_MPSC_MAX_CAPACITY; Tokio panics) or SL_ENOMEM.
 */
SL_API int sl_mpsc_new(size_t elem_size, size_t capacity, sl_mpsc_tx_t **tx, sl_mpsc_rx_t **rx);

/**
 * Creates an unbounded channel of elem_size-byte values.
 *
 * Never waits. Storage grows in blocks of 32 values: the first 64 from the runtime's allocator
 * (four empty ones kept for reuse); beyond that, while the backlog stays deep, carved from 2 MiB
 * slabs the channel maps itself (huge pages where the kernel allows), each given back once the
 * receiver has taken every value in it or the channel is dropped: kept as a spare for the next
 * deep backlog of any channel of the process (at most 32, which the kernel may reclaim when
 * memory runs short, unmapped after 1 s unused or by sl_memory_trim()). Ownership as
 * sl_mpsc_new().
 * Returns 0 or SL_ENOMEM.
 */
SL_API int sl_mpsc_unbounded_new(size_t elem_size, sl_mpsc_tx_t **tx, sl_mpsc_rx_t **rx);

/**
 * Sends a copy of *val, waiting while a bounded channel is full (backpressure).
 *
 * Waits (bounded channels only; an unbounded send never waits and may be called from any
 * thread). Waiting senders are served in FIFO order. If the task is cancelled while waiting,
 * returns SL_ECANCELED and nothing was sent. *val is read once, when the send happens.
 * Returns 0; SL_ECLOSED if the receiver was closed or dropped (before or while waiting; *val
 * is untouched); SL_ECANCELED; SL_ETIMEDOUT inside an expired sl_timeout scope; SL_ENOMEM
 * (unbounded: no memory for a new block).
 */
SL_API int sl_mpsc_send(sl_mpsc_tx_t *tx, const void *val);

/**
 * Sends a copy of *val if there is room now.
 *
 * Never waits; callable from any thread. Does not overtake queued senders. Returns 0,
 * SL_ECLOSED (closed wins over full), SL_EFULL, or SL_ENOMEM (unbounded).
 */
SL_API int sl_mpsc_try_send(sl_mpsc_tx_t *tx, const void *val);

/**
 * As sl_mpsc_send(), giving up at the absolute deadline (Tokio's send_timeout).
 *
 * Waits. Room available at once succeeds even with a past deadline. Returns as sl_mpsc_send(),
 * plus SL_ETIMEDOUT at the deadline (nothing was sent).
 */
SL_API int sl_mpsc_send_until(sl_mpsc_tx_t *tx, const void *val, int64_t deadline);

/**
 * Reserves capacity for one value; send it later with sl_mpsc_permit_send().
 *
 * Waits in the same FIFO queue as sl_mpsc_send(). Cancellation: SL_ECANCELED, no permit held,
 * place in the queue lost. On success *p holds one permit: send it or release it with
 * sl_mpsc_permit_drop(). Returns 0, SL_ECLOSED, SL_ECANCELED or SL_ETIMEDOUT (timeout scope).
 */
SL_API int sl_mpsc_reserve(sl_mpsc_tx_t *tx, sl_mpsc_permit_t *p);

/**
 * Reserves one permit if capacity is free now.
 *
 * Never waits. Returns 0, SL_ECLOSED or SL_EFULL.
 */
SL_API int sl_mpsc_try_reserve(sl_mpsc_tx_t *tx, sl_mpsc_permit_t *p);

/**
 * As sl_mpsc_reserve(), giving up at the absolute deadline.
 *
 * Waits. Returns as sl_mpsc_reserve(), plus SL_ETIMEDOUT at the deadline (no permit held).
 */
SL_API int sl_mpsc_reserve_until(sl_mpsc_tx_t *tx, sl_mpsc_permit_t *p, int64_t deadline);

/**
 * Reserves n permits at once (Tokio's reserve_many): *p then holds n permits.
 *
 * Waits. While queued first it absorbs capacity as it frees, so later senders cannot overtake
 * it; on failure or cancellation what it absorbed is given back. n == 0 succeeds at once even
 * when full (fails on a closed channel). Returns 0, SL_EINVAL (n above the capacity, or above
 * SL_MPSC_MAX_CAPACITY on an unbounded channel: it could never succeed; Tokio returns
 * SendError), SL_ECLOSED, SL_ECANCELED or SL_ETIMEDOUT.
 */
SL_API int sl_mpsc_reserve_many(sl_mpsc_tx_t *tx, size_t n, sl_mpsc_permit_t *p);

/**
 * Reserves n permits if they are all free now.
 *
 * Never waits. Returns 0, SL_EINVAL (n above the capacity, or above SL_MPSC_MAX_CAPACITY on
 * an unbounded channel), SL_ECLOSED or SL_EFULL.
 */
SL_API int sl_mpsc_try_reserve_many(sl_mpsc_tx_t *tx, size_t n, sl_mpsc_permit_t *p);

/**
 * As sl_mpsc_reserve_many(), giving up at the absolute deadline.
 *
 * Waits. Returns as sl_mpsc_reserve_many(), plus SL_ETIMEDOUT.
 */
SL_API int sl_mpsc_reserve_many_until(sl_mpsc_tx_t *tx, size_t n, sl_mpsc_permit_t *p,
                                      int64_t deadline);

/**
 * Sends a copy of *val using one of p's permits.
 *
 * Never waits; callable from any thread. Succeeds even after the receiver was closed: the
 * value is delivered if the receiver still exists, discarded if it was dropped. Returns 0,
 * SL_EEMPTY (p has no permit left: every permit was used or dropped), or SL_ENOMEM (unbounded:
 * no memory for a new block; the permit is kept).
 */
SL_API int sl_mpsc_permit_send(sl_mpsc_permit_t *p, const void *val);

/**
 * Releases p's unused permits, giving their capacity back (to the first queued sender).
 *
 * Never waits. A permit with none left (or NULL) is ignored, so dropping twice is harmless.
 */
SL_API void sl_mpsc_permit_drop(sl_mpsc_permit_t *p);

/** Returns how many permits p has left. Never waits. */
SL_API size_t sl_mpsc_permit_count(const sl_mpsc_permit_t *p);

/**
 * Receives the oldest value into *out, waiting while the channel is empty.
 *
 * Waits. Cancel-safe: if the task is cancelled (SL_ECANCELED) or times out, no value was taken.
 * Returns 0; SL_ECLOSED at the end of the stream (every sender gone or the channel closed,
 * buffer drained, no permit outstanding; then always); SL_ECANCELED; SL_ETIMEDOUT inside an
 * expired sl_timeout scope. Consumes one unit of the task's cooperative budget.
 */
SL_API int sl_mpsc_recv(sl_mpsc_rx_t *rx, void *out);

/**
 * Receives the oldest value if there is one.
 *
 * Never waits; callable from any thread; never fails spuriously. Returns 0, SL_EEMPTY (nothing
 * buffered, stream not over) or SL_ECLOSED (end of the stream).
 */
SL_API int sl_mpsc_try_recv(sl_mpsc_rx_t *rx, void *out);

/**
 * As sl_mpsc_recv(), giving up at the absolute deadline.
 *
 * Waits. Returns as sl_mpsc_recv(), plus SL_ETIMEDOUT (nothing taken).
 */
SL_API int sl_mpsc_recv_until(sl_mpsc_rx_t *rx, void *out, int64_t deadline);

/**
 * Waits for at least one value, then takes up to max buffered values into buf[0..*n).
 *
 * Waits (not when max is 0: returns 0 with *n = 0 at once). Cancel-safe as sl_mpsc_recv().
 * buf must hold max values. Returns 0 (*n in 1..max; with max 0, *n = 0), SL_ECLOSED at the end
 * of the stream (*n untouched; Tokio returns 0), SL_ECANCELED, SL_ETIMEDOUT (timeout scope).
 */
SL_API int sl_mpsc_recv_many(sl_mpsc_rx_t *rx, void *buf, size_t max, size_t *n);

/**
 * Takes up to max buffered values without waiting.
 *
 * Never waits. Returns 0 (*n >= 1, or 0 when max is 0), SL_EEMPTY or SL_ECLOSED.
 */
SL_API int sl_mpsc_try_recv_many(sl_mpsc_rx_t *rx, void *buf, size_t max, size_t *n);

/**
 * As sl_mpsc_recv_many(), giving up at the absolute deadline.
 *
 * Waits. Returns as sl_mpsc_recv_many(), plus SL_ETIMEDOUT.
 */
SL_API int sl_mpsc_recv_many_until(sl_mpsc_rx_t *rx, void *buf, size_t max, size_t *n,
                                   int64_t deadline);

/**
 * Closes the channel from the receiving side: later sends and reserves fail with SL_ECLOSED,
 * queued senders are woken with SL_ECLOSED, closed() waiters complete. Buffered values and
 * values sent with permits reserved before the close remain receivable.
 *
 * Never waits. Idempotent. The receiver stays owned: drop it with sl_mpsc_rx_drop().
 */
SL_API void sl_mpsc_rx_close(sl_mpsc_rx_t *rx);

/**
 * Closes the channel (as sl_mpsc_rx_close) and releases the receiver, discarding buffered
 * values.
 *
 * Never waits. Takes ownership of rx. NULL is ignored. No task may be waiting on rx.
 */
SL_API void sl_mpsc_rx_drop(sl_mpsc_rx_t *rx);

/**
 * Returns another sender of the same channel (the same pointer: senders are counted).
 *
 * Never waits. Returns an owned sender; release it with sl_mpsc_tx_drop().
 */
SL_API sl_mpsc_tx_t *sl_mpsc_tx_clone(sl_mpsc_tx_t *tx);

/**
 * Releases a sender. When the last one goes, the receiver sees the end of the stream once the
 * buffer is drained.
 *
 * Never waits. Takes ownership of tx. NULL is ignored; more drops than senders abort.
 */
SL_API void sl_mpsc_tx_drop(sl_mpsc_tx_t *tx);

/**
 * Returns a weak sender (Tokio's downgrade): it does not keep the channel open.
 *
 * Never waits. Returns an owned weak sender; release it with sl_mpsc_weak_drop().
 */
SL_API sl_mpsc_weak_t *sl_mpsc_tx_downgrade(sl_mpsc_tx_t *tx);

/**
 * Turns a weak sender into a new sender if any sender still exists.
 *
 * Never waits. On success *out is an owned sender. Returns 0 or SL_ECLOSED (every sender was
 * dropped).
 */
SL_API int sl_mpsc_weak_upgrade(sl_mpsc_weak_t *weak, sl_mpsc_tx_t **out);

/** Returns another weak sender (owned; release with sl_mpsc_weak_drop). Never waits. */
SL_API sl_mpsc_weak_t *sl_mpsc_weak_clone(sl_mpsc_weak_t *weak);

/** Releases a weak sender. Never waits. Takes ownership; NULL is ignored. */
SL_API void sl_mpsc_weak_drop(sl_mpsc_weak_t *weak);

/**
 * Waits until the receiver is closed or dropped (Tokio's Sender::closed).
 *
 * Waits. Every waiting sender completes. Returns 0, SL_ECANCELED, or SL_ETIMEDOUT (timeout
 * scope).
 */
SL_API int sl_mpsc_tx_closed(sl_mpsc_tx_t *tx);

/**
 * Returns 0 if the receiver is closed or dropped, else SL_EAGAIN.
 *
 * Never waits.
 */
SL_API int sl_mpsc_tx_try_closed(sl_mpsc_tx_t *tx);

/**
 * As sl_mpsc_tx_closed(), giving up at the absolute deadline.
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_mpsc_tx_closed_until(sl_mpsc_tx_t *tx, int64_t deadline);

/**
 * Returns nonzero once the receiver is closed or dropped (other senders do not matter).
 *
 * Never waits.
 */
SL_API int sl_mpsc_tx_is_closed(const sl_mpsc_tx_t *tx);

/** Returns the free capacity (SIZE_MAX for an unbounded channel). Never waits. */
SL_API size_t sl_mpsc_tx_capacity(const sl_mpsc_tx_t *tx);

/** Returns the capacity given at creation (SIZE_MAX if unbounded). Never waits. */
SL_API size_t sl_mpsc_tx_max_capacity(const sl_mpsc_tx_t *tx);

/** Returns the number of live senders (weak ones excluded). Never waits. */
SL_API long sl_mpsc_tx_strong_count(const sl_mpsc_tx_t *tx);

/** Returns the number of live weak senders. Never waits. */
SL_API long sl_mpsc_tx_weak_count(const sl_mpsc_tx_t *tx);

/** Returns nonzero if both senders belong to the same channel. Never waits. */
SL_API int sl_mpsc_tx_same_channel(const sl_mpsc_tx_t *a, const sl_mpsc_tx_t *b);

/** Returns the number of buffered values. Never waits. */
SL_API size_t sl_mpsc_rx_len(const sl_mpsc_rx_t *rx);

/** Returns nonzero if nothing is buffered. Never waits. */
SL_API int sl_mpsc_rx_is_empty(const sl_mpsc_rx_t *rx);

/**
 * Returns nonzero once the channel is closed for sending: sl_mpsc_rx_close() was called, or
 * every sender and permit is gone (even while values are still buffered).
 *
 * Never waits.
 */
SL_API int sl_mpsc_rx_is_closed(const sl_mpsc_rx_t *rx);

/** As sl_mpsc_tx_capacity(), from the receiver. Never waits. */
SL_API size_t sl_mpsc_rx_capacity(const sl_mpsc_rx_t *rx);

/** As sl_mpsc_tx_max_capacity(), from the receiver. Never waits. */
SL_API size_t sl_mpsc_rx_max_capacity(const sl_mpsc_rx_t *rx);

/** Returns the number of live senders. Never waits. */
SL_API long sl_mpsc_rx_sender_strong_count(const sl_mpsc_rx_t *rx);

/** Returns the number of live weak senders. Never waits. */
SL_API long sl_mpsc_rx_sender_weak_count(const sl_mpsc_rx_t *rx);

/**
 * A select clause that sends a copy of *val (res: as sl_mpsc_send).
 *
 * Never waits. *val must stay valid until the select returns; it is read only if this clause
 * wins. A losing send clause enqueues nothing.
 */
SL_API void sl_clause_mpsc_send(sl_clause_t *c, sl_mpsc_tx_t *tx, const void *val);

/**
 * A select clause that receives into *out (res: 0 or SL_ECLOSED).
 *
 * Never waits. A losing receive clause takes nothing.
 */
SL_API void sl_clause_mpsc_recv(sl_clause_t *c, sl_mpsc_rx_t *rx, void *out);

/**
 * A select clause that receives up to max values into buf and sets *n (res: 0 or SL_ECLOSED).
 *
 * Never waits. A losing clause takes nothing and leaves *n alone.
 */
SL_API void sl_clause_mpsc_recv_many(sl_clause_t *c, sl_mpsc_rx_t *rx, void *buf, size_t max,
                                     size_t *n);

/**
 * A select clause that reserves one permit into *p (res: 0, SL_ECLOSED).
 *
 * Never waits. A losing reserve clause holds nothing.
 */
SL_API void sl_clause_mpsc_reserve(sl_clause_t *c, sl_mpsc_tx_t *tx, sl_mpsc_permit_t *p);

/**
 * A select clause that reserves n permits into *p (res: 0, SL_EINVAL, SL_ECLOSED).
 *
 * Never waits. A losing clause gives back whatever it had absorbed.
 */
SL_API void sl_clause_mpsc_reserve_many(sl_clause_t *c, sl_mpsc_tx_t *tx, size_t n,
                                        sl_mpsc_permit_t *p);

/**
 * A select clause that completes (res = 0) once the receiver is closed or dropped.
 *
 * Never waits.
 */
SL_API void sl_clause_mpsc_closed(sl_clause_t *c, sl_mpsc_tx_t *tx);

#endif /* SLUICE_MPSC_H */
