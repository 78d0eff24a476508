/*
 * Internal spinlock and atomics helpers.
 *
 * Primitives hold their lock for a handful of instructions (link a waiter, copy a value), so
 * a test-and-test-and-set spinlock beats a futex mutex, and it is never held across a context
 * switch or a system call. After a few hundred spins it calls sched_yield() so that a
 * preempted holder on a 2-core machine gets the CPU back.
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

static inline void sl__lock_init(sl_lock_t *l)
{
    __atomic_store_n(&l->word, 0, __ATOMIC_RELAXED);
}

static inline void sl__lock(sl_lock_t *l)
{
    for (;;) {
        if (!__atomic_exchange_n(&l->word, 1, __ATOMIC_ACQUIRE))
            return;
        int spins = 0;
        while (__atomic_load_n(&l->word, __ATOMIC_RELAXED)) {
            if (++spins < 128)
                sl__cpu_relax();
            else {
                sched_yield();
                spins = 0;
            }
        }
    }
}

static inline int sl__trylock(sl_lock_t *l)
{
    return !__atomic_load_n(&l->word, __ATOMIC_RELAXED) &&
           !__atomic_exchange_n(&l->word, 1, __ATOMIC_ACQUIRE);
}

static inline void sl__unlock(sl_lock_t *l)
{
    __atomic_store_n(&l->word, 0, __ATOMIC_RELEASE);
}

#endif /* SLUICE_UTIL_LOCK_H */
