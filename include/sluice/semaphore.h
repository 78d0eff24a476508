/*
 * sluice: counting semaphore, as tokio::sync::Semaphore.
 *
 * Strictly FIFO: permits released while tasks wait go to the oldest waiter first, and a waiter
 * that cannot be fully served takes what is available and keeps waiting for the rest, so a
 * large request at the head holds back later small ones. While anyone waits, the available
 * count is 0.
 *
 * A semaphore is an embedded value (caller storage): sl_sem_init() / sl_sem_destroy(). Permits
 * come back in a permit record (sl_sem_permit_t, caller storage) that is tracked by the task
 * that acquired it: if the task panics or ends while it still holds the record, the runtime
 * releases the permits (as dropping a SemaphorePermit does). The record must stay valid while
 * it holds permits: keep it in storage that outlives every path on which it is not released
 * (heap, the task's argument, or a frame that is still live, as it is when sl_panic() is called
 * below it). A record in a frame that has returned without releasing is a programmer error.
 * To hand permits to another task, sl_sem_permit_detach() them (the record becomes a plain
 * value that may be copied bitwise), send the copy, and sl_sem_permit_adopt() it there.
 *
 * For the common pattern that needs no tracking there is sl_sem_acquire_raw() /
 * sl_sem_release_raw(): plain counts, not released if the task panics.
 *
 * Every function here is safe to call from any task on any worker; the try forms and the
 * non-waiting functions also work from threads outside the runtime (permits acquired there are
 * not tracked).
 */
#ifndef SLUICE_SEMAPHORE_H
#define SLUICE_SEMAPHORE_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/select.h>
#include <sluice/wait.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

/* The largest number of permits a semaphore can hold (Tokio's Semaphore::MAX_PERMITS). */
#define SL_SEM_MAX_PERMITS (SIZE_MAX >> 3)

/* A semaphore. Embed it; initialise with sl_sem_init(). Fields are private. */
typedef struct sl_sem {
    size_t state;       /* private: permits << 2 | waiters bit | closed bit (atomic) */
    sl_lock_t lock;     /* private: protects the queue */
    sl_waitq_t waiters; /* private: FIFO of waiting acquires */
} sl_sem_t;

/* Permits held: filled by the acquire functions. Caller storage; fields are private.
 * A zero-initialised record holds nothing, and so does one whose acquire failed (any SL_E*
 * return) or whose select clause did not win: the acquire empties it, so releasing or
 * detaching it afterwards does nothing. Because an acquire empties the record before anything
 * else (the storage may be uninitialised), a record handed to an acquire must not hold
 * permits: the permits would be lost and, were the record tracked, the task's list of held
 * resources broken. Release, forget or detach-and-release it first. */
typedef struct sl_sem_permit {
    void *hold[3];        /* private: node in the holding task's list of held resources */
    struct sl_task *task; /* private: the tracking task, or NULL when detached */
    sl_sem_t *sem;        /* private: NULL when the record holds nothing */
    size_t n;             /* private: permits held */
} sl_sem_permit_t;

/**
 * Initialises a semaphore with `permits` permits (0 is allowed).
 *
 * Never waits. Returns 0, or SL_EINVAL when permits > SL_SEM_MAX_PERMITS (Tokio panics).
 */
SL_API int sl_sem_init(sl_sem_t *s, size_t permits);

/**
 * Destroys a semaphore. No task may be waiting on it (asserted); permits still held by
 * records must not be released afterwards.
 *
 * Never waits.
 */
SL_API void sl_sem_destroy(sl_sem_t *s);

/**
 * Acquires one permit into *p, waiting in FIFO order.
 *
 * Waits. Not cancel-safe in Tokio's sense: a cancelled or timed-out acquire loses its place in
 * the queue, and permits it had already absorbed go back to the next waiters. *p (which must
 * hold nothing, see sl_sem_permit_t) is emptied first whatever the outcome; on success it holds
 * the permit, tracked by the calling task. Returns 0, SL_ECLOSED (the semaphore
 * is or becomes closed), SL_ECANCELED or SL_ETIMEDOUT (timeout scope).
 */
SL_API int sl_sem_acquire(sl_sem_t *s, sl_sem_permit_t *p);

/**
 * Acquires one permit into *p without waiting.
 *
 * Never waits; never queues. Returns 0, SL_ECLOSED (closed wins over no permits) or SL_EAGAIN
 * (not enough permits, or other tasks are queued: Tokio's TryAcquireError::NoPermits).
 */
SL_API int sl_sem_try_acquire(sl_sem_t *s, sl_sem_permit_t *p);

/**
 * As sl_sem_acquire(), giving up at the absolute deadline (sl_now() clock; SL_FOREVER: never).
 *
 * Waits. Returns 0, SL_ECLOSED, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_sem_acquire_until(sl_sem_t *s, sl_sem_permit_t *p, int64_t deadline);

/**
 * Acquires n permits at once into *p, waiting in FIFO order behind earlier requests.
 *
 * Waits. n == 0 succeeds at once unless the semaphore is closed, even while others wait.
 * Cancellation as sl_sem_acquire(). Returns 0, SL_EINVAL (n > SL_SEM_MAX_PERMITS), SL_ECLOSED,
 * SL_ECANCELED or SL_ETIMEDOUT.
 */
SL_API int sl_sem_acquire_many(sl_sem_t *s, size_t n, sl_sem_permit_t *p);

/**
 * Acquires n permits into *p without waiting.
 *
 * Never waits. Returns 0, SL_EINVAL (n too large), SL_ECLOSED or SL_EAGAIN.
 */
SL_API int sl_sem_try_acquire_many(sl_sem_t *s, size_t n, sl_sem_permit_t *p);

/**
 * As sl_sem_acquire_many(), giving up at the absolute deadline.
 *
 * Waits. Returns 0, SL_EINVAL, SL_ECLOSED, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_sem_acquire_many_until(sl_sem_t *s, size_t n, sl_sem_permit_t *p, int64_t deadline);

/**
 * Acquires n permits as a plain count, without a record and without tracking: they are NOT
 * released if the task panics or ends. Give them back with sl_sem_release_raw().
 *
 * Waits. Returns 0, SL_EINVAL, SL_ECLOSED, SL_ECANCELED or SL_ETIMEDOUT.
 */
SL_API int sl_sem_acquire_raw(sl_sem_t *s, size_t n);

/**
 * As sl_sem_acquire_raw() without waiting.
 *
 * Never waits. Returns 0, SL_EINVAL, SL_ECLOSED or SL_EAGAIN.
 */
SL_API int sl_sem_try_acquire_raw(sl_sem_t *s, size_t n);

/**
 * As sl_sem_acquire_raw(), giving up at the absolute deadline.
 *
 * Waits. Returns 0, SL_EINVAL, SL_ECLOSED, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_sem_acquire_raw_until(sl_sem_t *s, size_t n, int64_t deadline);

/**
 * Gives back n permits taken with sl_sem_acquire_raw() (the same as sl_sem_add_permits(),
 * named for symmetry). Exceeding SL_SEM_MAX_PERMITS is a programmer error (abort).
 *
 * Never waits. May wake waiters.
 */
SL_API void sl_sem_release_raw(sl_sem_t *s, size_t n);

/**
 * A select clause that acquires n permits into *p (or, when p is NULL, as a raw count).
 *
 * Never waits. If the clause loses, it holds no permit: anything it had absorbed while queued
 * goes back. res: 0, SL_EINVAL or SL_ECLOSED. s and p are borrowed for the select.
 */
SL_API void sl_clause_sem_acquire(sl_clause_t *c, sl_sem_t *s, size_t n, sl_sem_permit_t *p);

/**
 * Adds n permits: they go to queued waiters in FIFO order, the rest to the available count.
 * Works on a closed semaphore too (the count grows, it stays closed).
 *
 * Never waits. Wakes at most 32 waiters per lock hold. Returns 0, or SL_EINVAL (nothing
 * changed) when the available count would exceed SL_SEM_MAX_PERMITS (Tokio panics).
 */
SL_API int sl_sem_add_permits(sl_sem_t *s, size_t n);

/**
 * Removes min(n, available) permits from the available count (not from waiters or holders) and
 * returns how many were removed. The closed state is preserved.
 *
 * Never waits.
 */
SL_API size_t sl_sem_forget_permits(sl_sem_t *s, size_t n);

/**
 * Closes the semaphore: every queued acquire fails with SL_ECLOSED, as do later acquires.
 * Held permits can still be released (the available count grows). Idempotent.
 *
 * Never waits.
 */
SL_API void sl_sem_close(sl_sem_t *s);

/**
 * Returns 1 if the semaphore is closed, else 0.
 *
 * Never waits.
 */
SL_API int sl_sem_is_closed(const sl_sem_t *s);

/**
 * Returns the number of permits available now (0 while tasks wait).
 *
 * Never waits.
 */
SL_API size_t sl_sem_available(const sl_sem_t *s);

/**
 * Gives the record's permits back to its semaphore and empties the record. An empty record
 * (zero-initialised, released, forgotten) is accepted and left alone, so cleanup code may
 * release unconditionally. A tracked record may only be released by its tracking task
 * (asserted); a detached one by anyone.
 *
 * Never waits. May wake waiters.
 */
SL_API void sl_sem_permit_release(sl_sem_permit_t *p);

/**
 * Empties the record without returning its permits: they are lost to the semaphore (Tokio's
 * SemaphorePermit::forget). Same caller rules as sl_sem_permit_release().
 *
 * Never waits.
 */
SL_API void sl_sem_permit_forget(sl_sem_permit_t *p);

/**
 * Stops the calling task's tracking of the record: its permits are no longer released if the
 * task ends. The detached record is a plain value: it may be copied bitwise (e.g. into a
 * message) to hand the permits to another task; exactly one copy must then be released or
 * adopted. Must be called by the tracking task (asserted); a no-op on a detached record.
 *
 * Never waits.
 */
SL_API void sl_sem_permit_detach(sl_sem_permit_t *p);

/**
 * Makes the calling task track a detached record (it takes ownership of the permits): they are
 * released if this task ends still holding them. The record must be detached (asserted) and
 * must stay valid while tracked. Outside a task it does nothing.
 *
 * Never waits.
 */
SL_API void sl_sem_permit_adopt(sl_sem_permit_t *p);

/**
 * Returns how many permits the record holds.
 *
 * Never waits.
 */
SL_API size_t sl_sem_permit_count(const sl_sem_permit_t *p);

/**
 * Moves every permit of src into dst (Tokio's merge). Both must belong to the same semaphore
 * (asserted) unless one of them is empty. src ends empty; dst keeps its tracking state (an
 * empty dst takes src's).
 *
 * Never waits.
 */
SL_API void sl_sem_permit_merge(sl_sem_permit_t *dst, sl_sem_permit_t *src);

/**
 * Moves n permits of p into the record *out, tracked like p (Tokio's split). n == 0 leaves
 * *out empty; n == sl_sem_permit_count(p) moves p's record over whole and leaves p empty. An
 * empty record is not tracked, so either may be a local that goes out of scope.
 *
 * Never waits. Returns 0, or SL_EINVAL when n > sl_sem_permit_count(p) (Tokio: None); then
 * nothing changes.
 */
SL_API int sl_sem_permit_split(sl_sem_permit_t *p, size_t n, sl_sem_permit_t *out);

#endif /* SLUICE_SEMAPHORE_H */
