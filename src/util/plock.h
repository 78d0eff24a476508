/*
 * Internal: process-wide mutexes that fork() cannot leave locked in the child.
 *
 * For state that every runtime of the process shares and that a thread holds only for a few
 * list operations (the stack pool, coro/stack.c; the unbounded channels' spare slabs,
 * chan/mpsc.c). A plain pthread mutex held by another thread at the moment of a fork() stays
 * locked for ever in the child, whose copy of that thread does not exist; a lock taken through
 * sl__plock() is registered, at its first use, with one pthread_atfork() handler that takes
 * every registered lock before the fork and releases them after it, in the parent and in the
 * child. No code holds two of them at once, so taking them all in registration order cannot
 * deadlock.
 */
#ifndef SLUICE_UTIL_PLOCK_H
#define SLUICE_UTIL_PLOCK_H

#include <pthread.h>
#include <stdatomic.h>

typedef struct sl__plock {
    pthread_mutex_t mu;
    _Atomic int registered;
} sl__plock_t;

#define SL__PLOCK_INIT               \
    {                                \
        PTHREAD_MUTEX_INITIALIZER, 0 \
    }

/* At most this many locks are registered (aborts past it: a programming error). */
#define SL__PLOCK_MAX 8

/* Waits for the lock (registering it first, once). Never called with another sl__plock held. */
void sl__plock(sl__plock_t *l);
void sl__punlock(sl__plock_t *l);

#endif /* SLUICE_UTIL_PLOCK_H */
