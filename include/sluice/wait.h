/*
 * sluice: the waiting mechanism shared by every blocking call (storage layout only).
 *
 * A wait is a set of clauses, each on one waitable object, plus an optional deadline. Exactly
 * one clause completes; the others are unregistered before the wait returns and leave no trace.
 * A plain blocking call (sl_mpsc_send, sl_sleep, sl_read, ...) is a wait with one clause;
 * sl_select() exposes the general form (see <sluice/select.h>).
 *
 * The structures here are public only so that callers can embed them (in a clause, in a
 * primitive declared as a value). Their fields are private to the library: never read or
 * write them. They may change between versions.
 */
#ifndef SLUICE_WAIT_H
#define SLUICE_WAIT_H

#include <stddef.h>
#include <stdint.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

struct sl_task;
struct sl_clause;

/* A registration of one waiting clause on one waitable (private). */
typedef struct sl_waiter {
    struct sl_waiter *next; /* links in the waitable's queue (under its lock) */
    struct sl_waiter *prev;
    struct sl_waiter *wake_next; /* batch of claimed waiters, woken after the lock drops */
    struct sl_task *task;        /* the waiting task */
    struct sl_clause *clause;    /* the clause this waiter belongs to */
    uint32_t wword;              /* its task's wait word while that wait waits (its generation) */
    int idx;                     /* clause index inside the wait */
    unsigned char linked;        /* nonzero while in a waitable's queue */
    unsigned char alone;         /* the wait has no other clause (plain claims, core/rt.h) */
    int res;                     /* result written by whoever completed the clause */
    uintptr_t aux;               /* per-waitable data (e.g. permits requested, bytes left) */
} sl_waiter_t;

/* An intrusive FIFO of waiters (private). */
typedef struct sl_waitq {
    sl_waiter_t *head;
    sl_waiter_t *tail;
} sl_waitq_t;

/* A timer node embedded in whatever waits on it (private). */
typedef struct sl_timer {
    int64_t when; /* absolute monotonic deadline, ns */
    int32_t slot; /* index in the owning worker's heap, -1 when not armed */
    int32_t kind; /* private discriminator */
    void *owner;  /* private */
} sl_timer_t;

/* The primitives' internal spinlock (private; see src/util/lock.h). Zero-initialised is
 * unlocked. */
typedef struct sl_lock {
    volatile int word;     /* private */
    unsigned owner;        /* private: the thread it is biased to (or may become biased to) */
    unsigned in;           /* private: the owner, while it holds it without the word */
    unsigned char state;   /* private */
    unsigned short streak; /* private */
} sl_lock_t;

#endif /* SLUICE_WAIT_H */
