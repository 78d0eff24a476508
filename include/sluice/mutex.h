/*
 * sluice: async Mutex, RwLock and Barrier, as tokio::sync's.
 *
 * Mutex and RwLock are built on the FIFO semaphore (<sluice/semaphore.h>): a mutex is a
 * semaphore of 1, an RwLock one of max_readers where a read takes 1 permit and a write takes
 * all of them. Both are therefore fair: lock requests complete in the order they were made, and
 * a reader arriving behind a queued writer waits (write-preferring, as Tokio). A guard is caller
 * storage, tracked by the task that locked: if the task panics or ends while holding it, the
 * lock is released (no poisoning). The guard must stay valid while it holds the lock (see the
 * permit records in <sluice/semaphore.h>). The data a lock protects is the caller's own.
 *
 * All are embedded values: _init / _destroy. Locking waits; unlocking never waits.
 */
#ifndef SLUICE_MUTEX_H
#define SLUICE_MUTEX_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/select.h>
#include <sluice/semaphore.h>
#include <sluice/wait.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

/* ---- Mutex ------------------------------------------------------------------------------- */

/* An async mutex. Embed it; fields are private. */
typedef struct sl_mutex {
    sl_sem_t sem; /* private */
} sl_mutex_t;

/* Proof of holding a mutex. Caller storage; fields are private. A lock call that fails (any
 * SL_E* return), and a select clause that does not win, leave the guard empty: unlocking it
 * then does nothing. A lock call empties the guard before anything else, so the guard handed
 * to it must not hold the lock (unlock it first): a held lock would never be released. */
typedef struct sl_mutex_guard {
    sl_sem_permit_t permit; /* private */
} sl_mutex_guard_t;

/**
 * Initialises an unlocked mutex.
 *
 * Never waits.
 */
SL_API void sl_mutex_init(sl_mutex_t *m);

/**
 * Destroys a mutex. No task may be waiting for it (asserted).
 *
 * Never waits.
 */
SL_API void sl_mutex_destroy(sl_mutex_t *m);

/**
 * Locks the mutex into guard *g, waiting in FIFO order.
 *
 * Waits. Not cancel-safe in Tokio's sense (the queue place is lost); a failed lock holds
 * nothing and leaves *g empty. *g (which must not hold the lock, see sl_mutex_guard_t) is
 * emptied first; on success it holds the lock, tracked by the calling task. Returns 0,
 * SL_ECANCELED or SL_ETIMEDOUT (timeout scope).
 */
SL_API int sl_mutex_lock(sl_mutex_t *m, sl_mutex_guard_t *g);

/**
 * Locks the mutex without waiting.
 *
 * Never waits. Returns 0, or SL_EAGAIN if it is held or tasks are queued for it (Tokio's
 * TryLockError, "operation would block").
 */
SL_API int sl_mutex_try_lock(sl_mutex_t *m, sl_mutex_guard_t *g);

/**
 * As sl_mutex_lock(), giving up at the absolute deadline (SL_FOREVER: never).
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_mutex_lock_until(sl_mutex_t *m, sl_mutex_guard_t *g, int64_t deadline);

/**
 * A select clause that locks the mutex into *g (res = 0). If it loses, it holds nothing.
 *
 * Never waits. m and g are borrowed for the select.
 */
SL_API void sl_clause_mutex_lock(sl_clause_t *c, sl_mutex_t *m, sl_mutex_guard_t *g);

/**
 * Unlocks: the next queued task gets the mutex. An empty guard (zero-initialised or already
 * unlocked) is left alone. Must be called by the locking task (asserted).
 *
 * Never waits.
 */
SL_API void sl_mutex_unlock(sl_mutex_guard_t *g);

/* ---- RwLock ------------------------------------------------------------------------------ */

/* Tokio's default maximum of concurrent readers (u32::MAX >> 3). */
#define SL_RWLOCK_MAX_READERS ((uint32_t)(UINT32_MAX >> 3))

/* A fair, write-preferring async reader-writer lock. Embed it; fields are private. */
typedef struct sl_rwlock {
    sl_sem_t sem;         /* private */
    uint32_t max_readers; /* private */
} sl_rwlock_t;

/* Proof of holding an RwLock, shared or exclusive. Caller storage; fields are private. As for
 * a mutex guard, a failed lock call or a losing select clause leaves it empty, and a guard
 * handed to a lock call must not hold the lock. */
typedef struct sl_rwlock_guard {
    sl_sem_permit_t permit; /* private */
} sl_rwlock_guard_t;

/**
 * Initialises an unlocked RwLock allowing SL_RWLOCK_MAX_READERS concurrent readers.
 *
 * Never waits.
 */
SL_API void sl_rwlock_init(sl_rwlock_t *rw);

/**
 * Initialises an unlocked RwLock allowing max_readers concurrent readers; the next reader
 * waits.
 *
 * Never waits. Returns 0, or SL_EINVAL when max_readers is 0 or above SL_RWLOCK_MAX_READERS
 * (Tokio panics).
 */
SL_API int sl_rwlock_init_max(sl_rwlock_t *rw, uint32_t max_readers);

/**
 * Destroys an RwLock. No task may be waiting for it (asserted).
 *
 * Never waits.
 */
SL_API void sl_rwlock_destroy(sl_rwlock_t *rw);

/**
 * Takes a shared (read) lock into *g, behind every earlier queued request (a queued writer
 * holds back later readers).
 *
 * Waits. Cancellation and tracking as sl_mutex_lock(). Returns 0, SL_ECANCELED or
 * SL_ETIMEDOUT.
 */
SL_API int sl_rwlock_read(sl_rwlock_t *rw, sl_rwlock_guard_t *g);

/**
 * Takes a shared lock without waiting.
 *
 * Never waits. Returns 0, or SL_EAGAIN (write-locked, a request is queued, or max_readers
 * readers hold it).
 */
SL_API int sl_rwlock_try_read(sl_rwlock_t *rw, sl_rwlock_guard_t *g);

/**
 * As sl_rwlock_read(), giving up at the absolute deadline.
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_rwlock_read_until(sl_rwlock_t *rw, sl_rwlock_guard_t *g, int64_t deadline);

/**
 * Takes the exclusive (write) lock into *g, in FIFO order.
 *
 * Waits. While queued it absorbs the read permits released ahead of it, so later readers wait.
 * Cancellation and tracking as sl_mutex_lock(): a writer cancelled (or timed out) while queued
 * leaves the queue and hands back the read permits it had absorbed, so the readers behind it
 * go ahead; *g stays empty. Returns 0, SL_ECANCELED or SL_ETIMEDOUT.
 */
SL_API int sl_rwlock_write(sl_rwlock_t *rw, sl_rwlock_guard_t *g);

/**
 * Takes the exclusive lock without waiting.
 *
 * Never waits. Returns 0, or SL_EAGAIN.
 */
SL_API int sl_rwlock_try_write(sl_rwlock_t *rw, sl_rwlock_guard_t *g);

/**
 * As sl_rwlock_write(), giving up at the absolute deadline.
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_rwlock_write_until(sl_rwlock_t *rw, sl_rwlock_guard_t *g, int64_t deadline);

/**
 * A select clause that takes a read lock into *g (res = 0). If it loses, it holds nothing.
 *
 * Never waits. Borrowed arguments for the select.
 */
SL_API void sl_clause_rwlock_read(sl_clause_t *c, sl_rwlock_t *rw, sl_rwlock_guard_t *g);

/**
 * A select clause that takes the write lock into *g (res = 0). If it loses, it holds nothing
 * (the read permits it had absorbed while queued go back, as for a cancelled
 * sl_rwlock_write()).
 *
 * Never waits. Borrowed arguments for the select.
 */
SL_API void sl_clause_rwlock_write(sl_clause_t *c, sl_rwlock_t *rw, sl_rwlock_guard_t *g);

/**
 * Releases a read or write guard. An empty guard is left alone. Must be called by the locking
 * task (asserted).
 *
 * Never waits.
 */
SL_API void sl_rwlock_unlock(sl_rwlock_guard_t *g);

/**
 * Turns a write guard into a read guard atomically (no writer can get in between): releases
 * max_readers - 1 permits to the queue. A read guard is left alone. Only the task that locked
 * (the guard's tracking task) may downgrade it (asserted).
 *
 * Never waits.
 */
SL_API void sl_rwlock_downgrade(sl_rwlock_t *rw, sl_rwlock_guard_t *g);

/* ---- Barrier ----------------------------------------------------------------------------- */

/* A reusable barrier for n tasks. Embed it; fields are private. */
typedef struct sl_barrier {
    sl_lock_t lock;     /* private */
    sl_waitq_t waiters; /* private */
    size_t n;           /* private */
    size_t arrived;     /* private */
    size_t gen;         /* private: generation (atomic) */
} sl_barrier_t;

/**
 * Initialises a barrier for n tasks (0 behaves as 1, as Tokio).
 *
 * Never waits.
 */
SL_API void sl_barrier_init(sl_barrier_t *b, size_t n);

/**
 * Destroys a barrier. No task may be waiting at it (asserted).
 *
 * Never waits.
 */
SL_API void sl_barrier_destroy(sl_barrier_t *b);

/**
 * Arrives at the barrier and waits until n tasks have arrived in this generation; then all of
 * them return and the barrier starts the next generation. Exactly one of them, the n-th
 * arriver (which does not wait), gets *is_leader = 1; the others 0 (is_leader may be NULL).
 *
 * Waits. Not cancel-safe, as Tokio's: an arrival is counted even if the wait then fails, so
 * the generation can complete with fewer live waiters. A task already cancelled (or whose
 * timeout scope expired) before the call does not arrive. There is no try form (Tokio has
 * none). Returns 0, SL_ECANCELED or SL_ETIMEDOUT.
 */
SL_API int sl_barrier_wait(sl_barrier_t *b, int *is_leader);

/**
 * As sl_barrier_wait(), giving up at the absolute deadline (the arrival still counts).
 *
 * Waits. Returns 0, SL_ETIMEDOUT or SL_ECANCELED.
 */
SL_API int sl_barrier_wait_until(sl_barrier_t *b, int *is_leader, int64_t deadline);

#endif /* SLUICE_MUTEX_H */
