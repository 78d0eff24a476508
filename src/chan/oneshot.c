/*
 * One-shot channels (tokio::sync::oneshot).
 *
 * One block holds both halves' state and room for the value. A spinlock (sl_lock_t) guards the
 * state word and the two waiter queues (the receiver's, and the sender's closed() waiters). A
 * send that finds the receiver parked copies the value straight into the receiver's buffer and
 * claims its wait, so the value is copied once and the receiver never touches the lock again.
 *
 * The lock is biased (src/util/lock.h): a block that one thread has locked 64 times in a row
 * is that thread's, and from then on it takes and releases the lock with plain stores. Blocks
 * are recycled through a per-worker cache (below) and keep their lock's state, so a request and
 * its reply made by tasks of one worker (an actor and its clients) cost no locked instruction
 * once the block has served 32 round trips; on the Intel Xeon of docs/perf.md a round trip's two
 * lock acquisitions were a quarter of its time. A block used from two threads in turn never
 * becomes biased (a request to another worker's actor); a biased block that another thread
 * uses costs that thread a membarrier (a few microseconds) once, and is shared from then on,
 * in whichever cache it goes to.
 *
 * The sender's last touch of the block is its unlock, after the state store that sets TX_GONE
 * (send and tx_drop both consume it). A receiver that reads TX_GONE and then finds the lock
 * free (rx_owns) therefore owns the block alone: it takes a stored value, and finally frees
 * the block, with plain loads and stores.
 *
 * Blocks of the common sizes come from, and go back to, a small cache on the worker that frees
 * them (only its own thread touches it), so that a round trip calls neither malloc nor free.
 * The caches are released with the runtime (sl__oneshot_cache_free).
 */
#include <string.h>

#include "core/rt.h"
#include "coro/san.h"

enum {
    SENT = 1,        /* a value was stored (or handed over) */
    TAKEN = 2,       /* the value was received */
    TX_GONE = 4,     /* the sender was consumed (sent or dropped) */
    RX_CLOSED = 8,   /* rx_close() or rx_drop() */
    RX_GONE = 16,    /* the receiver was dropped */
    TERMINATED = 32, /* the receiver got its final result (value or SL_ECLOSED) */
};

typedef struct oneshot {
    _Atomic unsigned state;
    unsigned esz; /* the value's size (sl_oneshot_new refuses more than UINT32_MAX) */
    sl_runtime_t *rt;
    sl_waitq_t rxq; /* the receiver */
    sl_waitq_t txq; /* closed() waiters */
    sl_lock_t lk;   /* kept by a cached block from one use to the next (os_init) */
    _Alignas(16) unsigned char value[];
} oneshot_t;

_Static_assert(sizeof(oneshot_t) == 64, "a block's header is one cache line");

#define OS(h) ((oneshot_t *)(void *)(h))

/* Block sizes of the cached classes (the header is 64 bytes): values up to 64 bytes (a reply
 * code, a pointer, a small struct), and up to 192. Each worker keeps at most CACHE_MAX free
 * blocks per class: 24 KiB at most. */
static const size_t class_size[SL__OS_CLASSES] = {128, 256};
#define CACHE_MAX 64

static inline void cpy(void *d, const void *s, size_t n)
{
    if (n == 8)
        memcpy(d, s, 8);
    else
        memcpy(d, s, n);
}

/* ---- The lock -------------------------------------------------------------------------------- */

/* Takes the lock if it is free: 1, with the state in *s. */
static inline int os_trylock(oneshot_t *o, unsigned *s)
{
    if (!sl__trylock(&o->lk))
        return 0;
    *s = atomic_load_explicit(&o->state, memory_order_relaxed);
    return 1;
}

/* Takes the lock; returns the state. */
static inline unsigned os_lock(oneshot_t *o)
{
    sl__lock(&o->lk);
    return atomic_load_explicit(&o->state, memory_order_relaxed);
}

/* Publishes state s and releases the lock. Nobody else writes the word while it is held. */
static inline void os_unlock(oneshot_t *o, unsigned s)
{
    atomic_store_explicit(&o->state, s, memory_order_release);
    sl__unlock(&o->lk);
}

/* s, read with acquire: the sender is done with the block and the receiver owns it alone. The
 * sender's state store with TX_GONE comes before its unlock, its last touch: the word released
 * (a shared lock), or `in` back to 0 (its thread's biased lock). Read after s, both free mean
 * that unlock is done; nobody else locks (the receiver is the caller). */
static inline int rx_owns(oneshot_t *o, unsigned s)
{
    return (s & TX_GONE) && !__atomic_load_n(&o->lk.word, __ATOMIC_ACQUIRE) &&
           !__atomic_load_n(&o->lk.in, __ATOMIC_ACQUIRE);
}

/* Both halves gone: the last one frees. */
static inline int both_gone(unsigned s)
{
    return (s & (TX_GONE | RX_GONE)) == (TX_GONE | RX_GONE);
}

/* ---- Blocks and the per-worker cache ------------------------------------------------------ */

/* The size class of a value of esz bytes (index of the worker caches), or -1: allocated at its
 * exact size. */
static inline int class_of(size_t esz)
{
    return esz <= class_size[0] - sizeof(oneshot_t)   ? 0
           : esz <= class_size[1] - sizeof(oneshot_t) ? 1
                                                      : -1;
}

/* Called by whichever half goes last, which has exclusive access by then. A block goes to the
 * calling worker's cache, whichever worker allocated it: a cache is only ever touched by its
 * own thread, and the block's memory came from the same runtime's allocator. */
static void os_free(oneshot_t *o)
{
    int cls = class_of(o->esz);
    sl__worker_t *w = sl__tls_worker;
    if (cls >= 0 && w && w->rt == o->rt && w->os_cached[cls] < CACHE_MAX) {
        sl__dead_link(o, class_size[cls], w->os_cache[cls]);
        w->os_cache[cls] = o;
        w->os_cached[cls]++;
        return;
    }
    sl__free(o->rt, o, cls >= 0 ? class_size[cls] : sizeof *o + o->esz);
}

void sl__oneshot_cache_free(sl__worker_t *w)
{
    for (int c = 0; c < SL__OS_CLASSES; c++) {
        void *b = w->os_cache[c];
        while (b) {
            void *next = sl__dead_next(b, class_size[c]);
            sl__free(w->rt, b, class_size[c]);
            b = next;
        }
        w->os_cache[c] = NULL;
        w->os_cached[c] = 0;
    }
}

/* The lock is left as it is: a new block's was initialised by new_alloc, a cached one's keeps
 * its state (free, and perhaps biased to this thread). */
static inline void os_init(oneshot_t *o, sl_runtime_t *rt, size_t esz, sl_oneshot_tx_t **tx,
                           sl_oneshot_rx_t **rx)
{
    atomic_store_explicit(&o->state, 0, memory_order_relaxed);
    o->rt = rt;
    o->esz = (unsigned)esz;
    o->rxq.head = o->rxq.tail = NULL;
    o->txq.head = o->txq.tail = NULL;
    *tx = (sl_oneshot_tx_t *)(void *)o;
    *rx = (sl_oneshot_rx_t *)(void *)o;
}

/* A cache miss, or a block too big for the classes: out of line, so that a cache hit needs no
 * stack frame. */
static int __attribute__((noinline))
new_alloc(sl_runtime_t *rt, size_t esz, int cls, sl_oneshot_tx_t **tx, sl_oneshot_rx_t **rx)
{
    if (esz > UINT32_MAX)
        return SL_ENOMEM;
    oneshot_t *o = sl__alloc(rt, cls >= 0 ? class_size[cls] : sizeof *o + esz);
    if (!o)
        return SL_ENOMEM;
    sl__lock_init(&o->lk);
    os_init(o, rt, esz, tx, rx);
    return 0;
}

int sl_oneshot_new(size_t elem_size, sl_oneshot_tx_t **tx, sl_oneshot_rx_t **rx)
{
    SL__ASSERT(tx && rx, "sl_oneshot_new: NULL out-parameter");
    sl__worker_t *w = sl__tls_worker;
    sl_runtime_t *rt = w ? w->rt : NULL;
    int cls = class_of(elem_size);
    oneshot_t *o;
    if (cls < 0 || !w || !(o = w->os_cache[cls]))
        return new_alloc(rt, elem_size, cls, tx, rx);
    w->os_cache[cls] = sl__dead_next(o, class_size[cls]);
    sl__dead_kept(&o->lk, sizeof o->lk);
    w->os_cached[cls]--;
    os_init(o, rt, elem_size, tx, rx);
    return 0;
}

/* ---- Send ---------------------------------------------------------------------------------- */

/* The send from the point where the lock is held and the state is s. Unlocks. */
static __attribute__((noinline)) int send_locked(oneshot_t *o, const void *val, unsigned s)
{
    sl_waiter_t *w = NULL;
    int r = 0;
    SL__ASSERT(!(s & TX_GONE), "sl_oneshot_send: sender already consumed");
    s |= TX_GONE;
    if (s & RX_CLOSED) {
        r = SL_ECLOSED;
    } else if (o->rxq.head && (w = sl__waitq_claim_first(&o->rxq))) {
        cpy(w->clause->buf, val, o->esz);
        w->res = 0;
        s |= SENT | TAKEN | TERMINATED;
    } else {
        cpy(o->value, val, o->esz);
        s |= SENT;
    }
    /* From here on the block is the receiver's (unless it is gone: then it is ours to free). */
    os_unlock(o, s);
    if (w)
        sl__task_wake_handoff(w->task);
    if (both_gone(s))
        os_free(o);
    return r;
}

/* The send when the written-out case below does not apply: another element size, or the lock
 * not free at once. */
static __attribute__((noinline)) int send_any(oneshot_t *o, const void *val)
{
    return send_locked(o, val, os_lock(o));
}

/* Written out for the reply to a parked receiver (an actor answering a request): an 8-byte
 * value, the lock free, the receiver's wait claimed here, the value copied into its buffer,
 * and its wake, with no call that would make this function keep a frame. Anything else hands
 * over where it stopped: send_any before the lock, send_locked with it held. */
int sl_oneshot_send(sl_oneshot_tx_t *tx, const void *val)
{
    oneshot_t *o = OS(tx);
    SL__ASSERT(val || o->esz == 0, "sl_oneshot_send: NULL value");
    unsigned s;
    if (SL__UNLIKELY(o->esz != 8 || !os_trylock(o, &s)))
        return send_any(o, val);
    sl_waiter_t *w = o->rxq.head;
    if (SL__UNLIKELY((s & (TX_GONE | RX_CLOSED)) || !w || !(w = sl__waitq_claim_head(&o->rxq, w))))
        return send_locked(o, val, s);
    memcpy(w->clause->buf, val, 8);
    w->res = 0;
    /* The receiver is parked, so it is not gone: the block stays until it has taken the value
     * (both_gone cannot hold here). */
    os_unlock(o, s | TX_GONE | SENT | TAKEN | TERMINATED);
    sl__task_wake_handoff(w->task);
    return 0;
}

void sl_oneshot_tx_drop(sl_oneshot_tx_t *tx)
{
    if (!tx)
        return;
    oneshot_t *o = OS(tx);
    sl_waiter_t *wake = NULL;
    unsigned s = os_lock(o);
    SL__ASSERT(!(s & TX_GONE), "sl_oneshot_tx_drop: sender already consumed");
    s |= TX_GONE;
    if (o->rxq.head && sl__waitq_claim_all(&o->rxq, SL_ECLOSED, &wake))
        s |= TERMINATED;
    os_unlock(o, s);
    sl__waiters_wake(wake);
    if (both_gone(s))
        os_free(o);
}

void sl__oneshot_lock_hold(sl_oneshot_tx_t *tx)
{
    sl__lock(&OS(tx)->lk);
}

void sl__oneshot_lock_release(sl_oneshot_tx_t *tx)
{
    sl__unlock(&OS(tx)->lk);
}

int sl__oneshot_lock_is_mine(const sl_oneshot_tx_t *tx)
{
    const oneshot_t *o = (const oneshot_t *)(const void *)tx;
    return __atomic_load_n(&o->lk.state, __ATOMIC_RELAXED) == SL__LOCK_BIASED &&
           __atomic_load_n(&o->lk.owner, __ATOMIC_RELAXED) == sl__tid;
}

int sl_oneshot_tx_is_closed(const sl_oneshot_tx_t *tx)
{
    const oneshot_t *o = (const oneshot_t *)(const void *)tx;
    return (atomic_load_explicit(&o->state, memory_order_acquire) & RX_CLOSED) != 0;
}

/* ---- Receive ------------------------------------------------------------------------------- */

/* With the lock held, or the block owned (rx_owns): takes the result of state *s. Returns 0
 * (value copied out), SL_ECLOSED, or SL_EAGAIN, and updates *s. */
static inline int take(oneshot_t *o, unsigned *s, void *out)
{
    if ((*s & (SENT | TAKEN)) == SENT) {
        cpy(out, o->value, o->esz);
        *s |= TAKEN | TERMINATED;
        return 0;
    }
    if (*s & (TX_GONE | RX_CLOSED)) {
        *s |= TERMINATED;
        return SL_ECLOSED;
    }
    return SL_EAGAIN;
}

/* The receiver's poll, given its acquire load s of the state. */
static int recv_take(oneshot_t *o, unsigned s, void *out)
{
    if (!(s & (SENT | TX_GONE | RX_CLOSED)))
        return SL_EAGAIN; /* nothing yet (and arm looks again under the lock) */
    int r;
    if (rx_owns(o, s)) {
        r = take(o, &s, out);
        atomic_store_explicit(&o->state, s, memory_order_relaxed);
    } else {
        s = os_lock(o);
        r = take(o, &s, out);
        os_unlock(o, s);
    }
    return r;
}

static int recv_poll(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    unsigned s = atomic_load_explicit(&o->state, memory_order_acquire);
    SL__ASSERT(!(s & TERMINATED), "oneshot received after it completed");
    return recv_take(o, s, c->buf);
}

/* recv_arm's general case, the lock held with state s: a result there to take now. Unlocks. */
static __attribute__((noinline)) int recv_arm_held(sl_clause_t *c, unsigned s)
{
    oneshot_t *o = c->obj;
    int state;
    if ((s & (SENT | TAKEN)) == SENT || (s & (TX_GONE | RX_CLOSED))) {
        if (sl__claim_self(c)) {
            c->w.res = take(o, &s, c->buf);
            state = SL__DONE;
        } else {
            state = SL__LOST;
        }
    } else {
        sl__waitq_push(&o->rxq, &c->w);
        state = SL__ARMED;
    }
    os_unlock(o, s);
    return state;
}

/* recv_arm when the lock bit was taken (by the sender, for a few instructions). */
static __attribute__((noinline)) int recv_arm_locking(sl_clause_t *c)
{
    return recv_arm_held(c, os_lock(c->obj));
}

static int recv_arm(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    unsigned s;
    if (SL__UNLIKELY(!os_trylock(o, &s)))
        return recv_arm_locking(c);
    if (SL__LIKELY(!(s & (SENT | TX_GONE | RX_CLOSED)))) {
        /* Nothing sent, both halves open: the receive that parks registers, without a frame. */
        sl__waitq_push(&o->rxq, &c->w);
        os_unlock(o, s);
        return SL__ARMED;
    }
    return recv_arm_held(c, s);
}

static void recv_disarm(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    unsigned s = os_lock(o);
    sl__waitq_remove(&o->rxq, &c->w);
    os_unlock(o, s);
}

static const struct sl_clause_ops recv_ops = {recv_poll, recv_arm, recv_disarm, NULL};

static inline void recv_clause(sl_clause_t *c, sl_oneshot_rx_t *rx, void *out)
{
    SL__ASSERT(rx && (out || OS(rx)->esz == 0), "sl_clause_oneshot_recv: NULL argument");
    sl__clause_init(c, &recv_ops, OS(rx), out, 0, 0);
}

void sl_clause_oneshot_recv(sl_clause_t *c, sl_oneshot_rx_t *rx, void *out)
{
    recv_clause(c, rx, out);
}

int sl_oneshot_try_recv(sl_oneshot_rx_t *rx, void *out)
{
    oneshot_t *o = OS(rx);
    SL__ASSERT(out || o->esz == 0, "sl_oneshot_try_recv: NULL out");
    unsigned s = atomic_load_explicit(&o->state, memory_order_acquire);
    if (s & TERMINATED)
        return SL_ECLOSED;
    int r = recv_take(o, s, out);
    return r == SL_EAGAIN ? SL_EEMPTY : r;
}

/* The receive (sl__wait1 on a recv clause, the clause made by sl__wait1v only if it has to
 * wait) once its entry check has passed, given its acquire load s of the state. */
static inline __attribute__((always_inline)) int recv_go(oneshot_t *o, void *out, int64_t deadline,
                                                         unsigned s)
{
    SL__ASSERT(!(s & TERMINATED), "oneshot received after it completed");
    /* Nothing yet, the common case of a request just sent: straight to the wait (whose arm
     * looks again under the lock), without calling recv_take to find that out. */
    if (s & (SENT | TX_GONE | RX_CLOSED)) {
        int r = recv_take(o, s, out);
        if (r != SL_EAGAIN)
            return r;
    }
    return sl__wait1v_handoff(&recv_ops, o, out, 0, 0, deadline);
}

static __attribute__((noinline)) int recv_entered(oneshot_t *o, void *out, int64_t deadline,
                                                  unsigned s)
{
    return recv_go(o, out, deadline, s);
}

/* The receive when the entry check's common case does not hold (cancelled, a timeout scope:
 * timeout_rpc's client, the budget's last unit): the full check first. */
static __attribute__((noinline)) int recv_checked(oneshot_t *o, void *out, int64_t deadline)
{
    int r = sl__wait_enter(sl__self_checked("a blocking sluice call"));
    if (r)
        return r;
    return recv_go(o, out, deadline, atomic_load_explicit(&o->state, memory_order_acquire));
}

/* Written out for the receive of a reply not there yet: the entry check's common case, then
 * straight to the wait, with no call that would make this function keep a frame. */
int sl_oneshot_recv_until(sl_oneshot_rx_t *rx, void *out, int64_t deadline)
{
    oneshot_t *o = OS(rx);
    SL__ASSERT(rx && (out || o->esz == 0), "sl_oneshot_recv: NULL argument");
    if (SL__UNLIKELY(!sl__wait_enter_fast()))
        return recv_checked(o, out, deadline);
    unsigned s = atomic_load_explicit(&o->state, memory_order_acquire);
    if (SL__LIKELY(!(s & (SENT | TX_GONE | RX_CLOSED | TERMINATED))))
        return sl__wait1v_handoff(&recv_ops, o, out, 0, 0, deadline);
    return recv_entered(o, out, deadline, s);
}

int sl_oneshot_recv(sl_oneshot_rx_t *rx, void *out)
{
    return sl_oneshot_recv_until(rx, out, SL_FOREVER);
}

static void close_locked(oneshot_t *o, unsigned *s, sl_waiter_t **wake)
{
    if (*s & RX_CLOSED)
        return;
    *s |= RX_CLOSED;
    if (o->txq.head)
        sl__waitq_claim_all(&o->txq, 0, wake);
}

void sl_oneshot_rx_close(sl_oneshot_rx_t *rx)
{
    oneshot_t *o = OS(rx);
    sl_waiter_t *wake = NULL;
    unsigned s = os_lock(o);
    close_locked(o, &s, &wake);
    os_unlock(o, s);
    sl__waiters_wake(wake);
}

/* rx_drop while the sender may still use the block: under the lock. */
static void __attribute__((noinline)) rx_drop_shared(oneshot_t *o)
{
    sl_waiter_t *wake = NULL;
    unsigned s = os_lock(o);
    SL__ASSERT(!o->rxq.head, "sl_oneshot_rx_drop: a task is still receiving");
    close_locked(o, &s, &wake);
    s |= RX_GONE;
    os_unlock(o, s);
    sl__waiters_wake(wake);
    if (both_gone(s))
        os_free(o);
}

void sl_oneshot_rx_drop(sl_oneshot_rx_t *rx)
{
    if (!rx)
        return;
    oneshot_t *o = OS(rx);
    unsigned s = atomic_load_explicit(&o->state, memory_order_acquire);
    SL__ASSERT(!(s & RX_GONE), "sl_oneshot_rx_drop: receiver dropped twice");
    if (rx_owns(o, s)) {
        /* The common case (the reply came): nobody else can reach the block any more. */
        SL__ASSERT(!o->rxq.head, "sl_oneshot_rx_drop: a task is still receiving");
        os_free(o);
        return;
    }
    rx_drop_shared(o);
}

int sl_oneshot_rx_is_terminated(const sl_oneshot_rx_t *rx)
{
    const oneshot_t *o = (const oneshot_t *)(const void *)rx;
    return (atomic_load_explicit(&o->state, memory_order_acquire) & TERMINATED) != 0;
}

int sl_oneshot_rx_is_empty(const sl_oneshot_rx_t *rx)
{
    const oneshot_t *o = (const oneshot_t *)(const void *)rx;
    return (atomic_load_explicit(&o->state, memory_order_acquire) & (SENT | TAKEN)) != SENT;
}

/* ---- The sender waits for the receiver to go away ------------------------------------------ */

static int closed_poll(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    return (atomic_load_explicit(&o->state, memory_order_acquire) & RX_CLOSED) ? 0 : SL_EAGAIN;
}

static int closed_arm(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    int r = SL__ARMED;
    unsigned s = os_lock(o);
    if (s & RX_CLOSED)
        r = sl__claim_self(c) ? SL__DONE : SL__LOST;
    else
        sl__waitq_push(&o->txq, &c->w);
    os_unlock(o, s);
    return r;
}

static void closed_disarm(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    unsigned s = os_lock(o);
    sl__waitq_remove(&o->txq, &c->w);
    os_unlock(o, s);
}

static const struct sl_clause_ops closed_ops = {closed_poll, closed_arm, closed_disarm, NULL};

void sl_clause_oneshot_closed(sl_clause_t *c, sl_oneshot_tx_t *tx)
{
    SL__ASSERT(tx, "sl_clause_oneshot_closed: NULL sender");
    sl__clause_init(c, &closed_ops, OS(tx), NULL, 0, 0);
}

int sl_oneshot_tx_try_closed(sl_oneshot_tx_t *tx)
{
    sl_clause_t c;
    sl_clause_oneshot_closed(&c, tx);
    return closed_poll(&c);
}

int sl_oneshot_tx_closed_until(sl_oneshot_tx_t *tx, int64_t deadline)
{
    sl_clause_t c;
    sl_clause_oneshot_closed(&c, tx);
    return sl__wait1(&c, deadline);
}

int sl_oneshot_tx_closed(sl_oneshot_tx_t *tx)
{
    return sl_oneshot_tx_closed_until(tx, SL_FOREVER);
}
