/*
 * Internal spinlock and atomics helpers.
 *
 * Primitives hold their lock for a handful of instructions (link a waiter, copy a value), so
 * a test-and-test-and-set spinlock beats a futex mutex, and it is never held across a context
 * switch or a system call. After a few hundred spins it calls sched_yield() so that a
 * preempted holder on a 2-core machine gets the CPU back.
 *
 * Biased: a lock that one thread has taken SL__LOCK_BIAS_AFTER times in a row, with no other
 * thread in between, becomes that thread's, and from then on its owner takes and releases it
 * with plain stores: no locked instruction (a channel, a notifier or a worker's queue used by
 * the tasks of one worker is most of what a one-worker program locks). `owner` holds the
 * thread's id exactly while the lock is biased to it (a thread counting its streak is stored
 * with SL__LOCK_CANDIDATE set, and unassigned threads' sl__tid is SL__LOCK_CANDIDATE alone), so
 * the owner's way in is one comparison. The owner stores its id in `in` and then reads `owner`
 * again; another thread that wants the lock takes the word, stores owner = 0 and
 * state = SHARED, runs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) (a full barrier on every
 * running thread of the process) and waits until `in` is 0. Either the owner's read sees its
 * bias gone, and it takes the word like everyone else, or the other thread's read of `in` sees
 * the owner inside, and it waits for the owner's release store. A release by a thread whose id
 * is in `in` is the owner's fast-path release; any other releases the word. A shared lock
 * never becomes biased again: the barrier (a few microseconds) is paid at most once per lock.
 * Without membarrier (sl__asym off) no lock is ever biased. docs/design/runtime.md, "Locks".
 */
#ifndef SLUICE_UTIL_LOCK_H
#define SLUICE_UTIL_LOCK_H

#include <sched.h>
#include <stdatomic.h>

#include <sluice/wait.h>

#define SL__ATOMIC(T) _Atomic T

#if defined(__x86_64__) || defined(__i386__)
#define sl__cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define sl__cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define sl__cpu_relax() ((void)0)
#endif

/* One step of waiting for a holder that keeps something for a few instructions but may have
 * been preempted: a pause, and every 128th step a sched_yield() that gives a preempted holder
 * the CPU back on a 2-core machine. `spins` starts at 0 and belongs to the waiting loop. */
static inline void sl__spin_or_yield(int *spins)
{
    if (++*spins < 128) {
        sl__cpu_relax();
    } else {
        sched_yield();
        *spins = 0;
    }
}

enum { SL__LOCK_UNBIASED = 0, SL__LOCK_BIASED = 1, SL__LOCK_SHARED = 2 };

#define SL__LOCK_BIAS_AFTER 64

/* Set in `owner` while a thread counts its streak (its id | this), and the id of a thread that
 * has none yet: ids are 1 .. SL__LOCK_CANDIDATE - 1, so no biased owner ever matches either. */
#define SL__LOCK_CANDIDATE 0x80000000u

/* The calling thread's id for lock bias: SL__LOCK_CANDIDATE until its first slow-path lock
 * assigns one. */
extern __thread unsigned sl__tid __attribute__((tls_model("initial-exec")));

/* Takes the word (spinning), revoking another thread's bias or counting towards this one's. */
void sl__lock_slow(sl_lock_t *l);
/* sl__lock_slow() for a trylock: 1 when the lock was taken. */
int sl__trylock_slow(sl_lock_t *l);

static inline void sl__lock_init(sl_lock_t *l)
{
    __atomic_store_n(&l->word, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l->owner, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l->in, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l->state, SL__LOCK_UNBIASED, __ATOMIC_RELAXED);
    l->streak = 0;
}

/* For a lock that lives for a few uses (a task's join lock: taken by its joiner and by its
 * end): never biased, so that its slow path skips the streak bookkeeping it would never
 * finish. Zeroed memory plus this store is sl__lock_init's state but SHARED. */
static inline void sl__lock_init_shared(sl_lock_t *l)
{
    __atomic_store_n(&l->state, SL__LOCK_SHARED, __ATOMIC_RELAXED);
}

/* The owner's way in: 1 when it now holds l without the word. */
static inline __attribute__((always_inline)) int sl__lock_fast(sl_lock_t *l)
{
    unsigned me = sl__tid;
    if (__builtin_expect(__atomic_load_n(&l->owner, __ATOMIC_RELAXED) == me, 1)) { /* biased */
        __atomic_store_n(&l->in, me, __ATOMIC_RELAXED);
        /* The compiler keeps the load below after the store; a revoker's membarrier does the
         * same for the CPU. */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (__builtin_expect(__atomic_load_n(&l->owner, __ATOMIC_ACQUIRE) == me, 1))
            return 1;
        __atomic_store_n(&l->in, 0, __ATOMIC_RELEASE); /* revoked meanwhile */
    }
    return 0;
}

static inline __attribute__((always_inline)) void sl__lock(sl_lock_t *l)
{
    if (!sl__lock_fast(l))
        sl__lock_slow(l);
}

static inline int sl__trylock(sl_lock_t *l)
{
    return sl__lock_fast(l) || sl__trylock_slow(l);
}

/* The owner holds l by the fast path exactly when `in` holds its id on its own thread (only
 * the owner stores its id there, and only it stores 0 back). Another thread may see the
 * owner's id in `in` while it holds the word: an owner that read its bias before a revocation
 * stores it on its way to finding the bias gone, and takes it back; no id but the owner's is
 * ever there. */
static inline __attribute__((always_inline)) void sl__unlock(sl_lock_t *l)
{
    if (__builtin_expect(__atomic_load_n(&l->in, __ATOMIC_RELAXED) == sl__tid, 1))
        __atomic_store_n(&l->in, 0, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&l->word, 0, __ATOMIC_RELEASE);
}

#endif /* SLUICE_UTIL_LOCK_H */
