/*
 * The slow half of the internal spinlock (src/util/lock.h): taking the word, and the lock's
 * bias towards the one thread that keeps taking it.
 */
#define _GNU_SOURCE
#include "core/rt.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread unsigned sl__tid __attribute__((tls_model("initial-exec"))) = SL__LOCK_CANDIDATE;

static _Atomic unsigned next_tid = 1;

/* The calling thread's id, assigned from a counter on its first call and never reused: ids
 * are 1 .. SL__LOCK_CANDIDATE - 1. Once they are used up (2^31 threads that locked), a new
 * thread keeps SL__LOCK_CANDIDATE: it takes every lock by the word and no lock is biased to it
 * (after_word), so no two threads ever share an id. */
static unsigned tid_self(void)
{
    unsigned t = sl__tid;
    if (t != SL__LOCK_CANDIDATE)
        return t;
    t = atomic_load_explicit(&next_tid, memory_order_relaxed);
    while (t < SL__LOCK_CANDIDATE &&
           !atomic_compare_exchange_weak_explicit(&next_tid, &t, t + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    if (t < SL__LOCK_CANDIDATE)
        sl__tid = t;
    return sl__tid;
}

/* Holding the word: a lock biased to another thread is made shared (the owner may be inside,
 * by the fast path: wait for it), and a lock not biased yet counts this thread's streak. */
static void after_word(sl_lock_t *l)
{
    unsigned char st = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
    if (st == SL__LOCK_SHARED)
        return;
    unsigned me = tid_self();
    if (st == SL__LOCK_BIASED) {
        if (__atomic_load_n(&l->owner, __ATOMIC_RELAXED) == me)
            return;
        __atomic_store_n(&l->owner, 0, __ATOMIC_RELAXED); /* the owner's fast path reads this */
        __atomic_store_n(&l->state, SL__LOCK_SHARED, __ATOMIC_RELAXED);
        /* Every running thread passes a full barrier: the owner either reads its bias gone
         * (owner 0) after its store of `in`, or its `in` is visible to the load below. */
        if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
            sl__die(__FILE__, __LINE__, "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed");
        int spins = 0;
        while (__atomic_load_n(&l->in, __ATOMIC_ACQUIRE))
            sl__spin_or_yield(&spins);
        return;
    }
    /* Decided once, maybe by another thread while this one locks outside any runtime. */
    if (!__atomic_load_n(&sl__asym, __ATOMIC_ACQUIRE))
        return; /* no membarrier: never biased */
    if (me == SL__LOCK_CANDIDATE)
        return; /* ids used up (tid_self): never biased to this thread */
    if (__atomic_load_n(&l->owner, __ATOMIC_RELAXED) != (me | SL__LOCK_CANDIDATE)) {
        __atomic_store_n(&l->owner, me | SL__LOCK_CANDIDATE, __ATOMIC_RELAXED);
        l->streak = 1;
    } else if (++l->streak >= SL__LOCK_BIAS_AFTER) {
        /* Biased from the next lock on: this one holds the word, and `in` is not this
         * thread's, so the unlock releases the word. */
        __atomic_store_n(&l->state, SL__LOCK_BIASED, __ATOMIC_RELAXED);
        __atomic_store_n(&l->owner, me, __ATOMIC_RELAXED);
    }
}

void sl__lock_slow(sl_lock_t *l)
{
    for (;;) {
        if (!__atomic_exchange_n(&l->word, 1, __ATOMIC_ACQUIRE))
            break;
        int spins = 0;
        while (__atomic_load_n(&l->word, __ATOMIC_RELAXED))
            sl__spin_or_yield(&spins);
    }
    after_word(l);
}

int sl__trylock_slow(sl_lock_t *l)
{
    if (__atomic_load_n(&l->word, __ATOMIC_RELAXED) ||
        __atomic_exchange_n(&l->word, 1, __ATOMIC_ACQUIRE))
        return 0;
    after_word(l); /* may wait for a biased owner's few instructions */
    return 1;
}
