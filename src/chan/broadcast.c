/*
 * Broadcast channel (tokio::sync::broadcast) as a seqlocked ring.
 *
 * The ring has L = 2^k slots. Each slot is a sequence word followed by the value's words. The
 * sequence word is 2*pos + 1 while position pos is being written and 2*pos + 2 once it holds
 * pos (0: never written). Senders take the channel lock, write the next position (tail) into
 * slot tail & (L - 1) and publish the new tail; there is one writer at a time. Receivers never
 * take the lock to read: each owns a cursor and reads the slot it points at optimistically,
 * checking the sequence word before and after the copy. A slot that holds a later lap than the
 * cursor means the receiver lagged; the number missed is computed from the tail exactly as
 * Tokio does: the cursor moves to tail - L and the difference is reported.
 *
 * Memory ordering without fences (ThreadSanitizer does not model fences): the writer stores
 * the odd word, then every value word with release, then the even word with release; the
 * reader loads the sequence word and every value word with acquire, then the sequence word
 * again. A reader that saw any word of a newer write therefore sees at least that write's odd
 * sequence word on its second load. On x86-64 all of these are plain moves.
 *
 * The lock also guards the waiter queues, the receiver list and the handle counts. A receiver
 * waits by arming under the lock, where the sequence word it needs cannot change half way
 * (writes happen under the same lock), so a wake-up is never lost. See
 * docs/design/primitives.md.
 */
#include <string.h>

#include "core/rt.h"

struct sl_broadcast_rx {
    struct sl_broadcast_tx *ch;
    _Atomic uint64_t next; /* written only by the owner; read by sl_broadcast_tx_len */
    struct sl_broadcast_rx *lnext, *lprev;
    char pad[SL__CACHELINE - 4 * sizeof(void *)]; /* keep cursors on separate lines */
};

/* The channel: sl_broadcast_tx_t and sl_broadcast_weak_t are both this object, counted. */
struct sl_broadcast_tx {
    /* Read-only after creation. */
    size_t elem_size;
    size_t words;  /* value words per slot */
    size_t stride; /* words per slot, sequence word included */
    uint64_t mask; /* L - 1 */
    _Atomic uint64_t *ring;
    sl_runtime_t *rt;
    size_t alloc_size;
    char pad0[SL__CACHELINE];
    /* Written by senders and by subscribe/drop. */
    sl_lock_t lock;
    _Atomic uint64_t tail; /* next position; stored under lock, read anywhere */
    _Atomic int closed;    /* every sender gone */
    _Atomic long ntx, nrx, nweak;
    struct sl_broadcast_rx *rxs; /* under lock */
    sl_waitq_t recvq;            /* receivers waiting for a value */
    sl__zero_wait_t no_rx;       /* senders waiting for no receivers */
    char pad1[SL__CACHELINE];
};

typedef struct sl_broadcast_tx chan_t;

static inline _Atomic uint64_t *slot_at(chan_t *ch, uint64_t pos)
{
    return ch->ring + (size_t)(pos & ch->mask) * ch->stride;
}

/* The 8-byte value (a counter, a pointer, a reading's id) first, without the loop. */
static inline void put_words(_Atomic uint64_t *dst, const void *src, size_t n)
{
    const unsigned char *s = src;
    if (n == 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        atomic_store_explicit(dst, w, memory_order_release);
        return;
    }
    for (; n >= 8; n -= 8, s += 8, dst++) {
        uint64_t w;
        memcpy(&w, s, 8);
        atomic_store_explicit(dst, w, memory_order_release);
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        atomic_store_explicit(dst, w, memory_order_release);
    }
}

static inline void get_words(void *out, _Atomic uint64_t *src, size_t n)
{
    unsigned char *d = out;
    if (n == 8) {
        uint64_t w = atomic_load_explicit(src, memory_order_acquire);
        memcpy(d, &w, 8);
        return;
    }
    for (; n >= 8; n -= 8, d += 8, src++) {
        uint64_t w = atomic_load_explicit(src, memory_order_acquire);
        memcpy(d, &w, 8);
    }
    if (n) {
        uint64_t w = atomic_load_explicit(src, memory_order_acquire);
        memcpy(d, &w, n);
    }
}

/* ---- Creation and handles ------------------------------------------------------------------ */

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int sl_broadcast_new(size_t elem_size, size_t capacity, sl_broadcast_tx_t **tx,
                     sl_broadcast_rx_t **rx)
{
    SL__ASSERT(tx != NULL, "sl_broadcast_new: tx is NULL");
    if (capacity == 0 || capacity > SIZE_MAX / 2)
        return SL_EINVAL;
    size_t len = pow2_at_least(capacity);
    size_t words = (elem_size + 7) / 8;
    size_t stride = words + 1;
    if (elem_size > SIZE_MAX / 4 || len > (SIZE_MAX / 16) / stride)
        return SL_EINVAL;
    size_t ring_bytes = len * stride * 8;
    size_t size = sizeof(chan_t) + ring_bytes;
    sl_runtime_t *rt = sl_runtime_current();
    chan_t *ch = sl__calloc(rt, size);
    if (!ch)
        return SL_ENOMEM;
    ch->elem_size = elem_size;
    ch->words = words;
    ch->stride = stride;
    ch->mask = len - 1;
    ch->ring = (_Atomic uint64_t *)(void *)(ch + 1);
    ch->rt = rt;
    ch->alloc_size = size;
    ch->no_rx.count = &ch->nrx;
    ch->no_rx.lock = &ch->lock;
    sl__lock_init(&ch->lock);
    atomic_store(&ch->ntx, 1);
    if (rx) {
        int r = sl_broadcast_subscribe(ch, rx);
        if (r) {
            sl__free(rt, ch, size);
            return r;
        }
    }
    *tx = ch;
    return 0;
}

size_t sl_broadcast_capacity(const sl_broadcast_tx_t *tx)
{
    return (size_t)tx->mask + 1;
}

/* Under lock: true when no handle of any kind is left. */
static int unused(chan_t *ch)
{
    return atomic_load_explicit(&ch->ntx, memory_order_relaxed) == 0 &&
           atomic_load_explicit(&ch->nrx, memory_order_relaxed) == 0 &&
           atomic_load_explicit(&ch->nweak, memory_order_relaxed) == 0;
}

static void chan_free(chan_t *ch)
{
    sl__free(ch->rt, ch, ch->alloc_size);
}

sl_broadcast_tx_t *sl_broadcast_tx_clone(sl_broadcast_tx_t *tx)
{
    /* The caller's own reference keeps ntx above zero, so no lock is needed. */
    atomic_fetch_add_explicit(&tx->ntx, 1, memory_order_relaxed);
    return tx;
}

void sl_broadcast_tx_drop(sl_broadcast_tx_t *tx)
{
    if (!tx)
        return;
    sl_waiter_t *wake = NULL;
    sl__lock(&tx->lock);
    long left = atomic_fetch_sub_explicit(&tx->ntx, 1, memory_order_relaxed) - 1;
    SL__ASSERT(left >= 0, "sl_broadcast_tx_drop: sender dropped twice");
    if (left == 0) {
        atomic_store_explicit(&tx->closed, 1, memory_order_release);
        sl__waitq_claim_all(&tx->recvq, 0, &wake);
    }
    int last = unused(tx);
    sl__unlock(&tx->lock);
    sl__waiters_wake(wake);
    if (last)
        chan_free(tx);
}

static int rx_new(chan_t *ch, sl_broadcast_rx_t **out)
{
    SL__ASSERT(out != NULL, "broadcast subscribe: out is NULL");
    sl_broadcast_rx_t *rx = sl__calloc(ch->rt, sizeof *rx);
    if (!rx)
        return SL_ENOMEM;
    rx->ch = ch;
    sl__lock(&ch->lock);
    atomic_store_explicit(&rx->next, atomic_load_explicit(&ch->tail, memory_order_relaxed),
                          memory_order_relaxed);
    rx->lnext = ch->rxs;
    if (ch->rxs)
        ch->rxs->lprev = rx;
    ch->rxs = rx;
    atomic_fetch_add_explicit(&ch->nrx, 1, memory_order_relaxed);
    sl__unlock(&ch->lock);
    *out = rx;
    return 0;
}

int sl_broadcast_subscribe(sl_broadcast_tx_t *tx, sl_broadcast_rx_t **rx)
{
    return rx_new(tx, rx);
}

int sl_broadcast_resubscribe(sl_broadcast_rx_t *rx, sl_broadcast_rx_t **out)
{
    return rx_new(rx->ch, out);
}

void sl_broadcast_rx_drop(sl_broadcast_rx_t *rx)
{
    if (!rx)
        return;
    chan_t *ch = rx->ch;
    sl_waiter_t *wake = NULL;
    sl__lock(&ch->lock);
    for (sl_waiter_t *w = ch->recvq.head; w; w = w->next)
        SL__ASSERT(w->clause->obj != rx, "sl_broadcast_rx_drop: a task is waiting on it");
    if (rx->lprev)
        rx->lprev->lnext = rx->lnext;
    else
        ch->rxs = rx->lnext;
    if (rx->lnext)
        rx->lnext->lprev = rx->lprev;
    if (atomic_fetch_sub_explicit(&ch->nrx, 1, memory_order_relaxed) == 1)
        sl__waitq_claim_all(&ch->no_rx.q, 0, &wake);
    int last = unused(ch);
    sl__unlock(&ch->lock);
    sl__waiters_wake(wake);
    sl__free(ch->rt, rx, sizeof *rx);
    if (last)
        chan_free(ch);
}

sl_broadcast_weak_t *sl_broadcast_tx_downgrade(sl_broadcast_tx_t *tx)
{
    atomic_fetch_add_explicit(&tx->nweak, 1, memory_order_relaxed);
    return (sl_broadcast_weak_t *)(void *)tx;
}

int sl_broadcast_weak_upgrade(sl_broadcast_weak_t *weak, sl_broadcast_tx_t **tx)
{
    chan_t *ch = (chan_t *)(void *)weak;
    int r = SL_ECLOSED;
    sl__lock(&ch->lock);
    if (atomic_load_explicit(&ch->ntx, memory_order_relaxed) > 0) {
        atomic_fetch_add_explicit(&ch->ntx, 1, memory_order_relaxed);
        *tx = ch;
        r = 0;
    }
    sl__unlock(&ch->lock);
    return r;
}

void sl_broadcast_weak_drop(sl_broadcast_weak_t *weak)
{
    if (!weak)
        return;
    chan_t *ch = (chan_t *)(void *)weak;
    sl__lock(&ch->lock);
    atomic_fetch_sub_explicit(&ch->nweak, 1, memory_order_relaxed);
    int last = unused(ch);
    sl__unlock(&ch->lock);
    if (last)
        chan_free(ch);
}

/* ---- Send ---------------------------------------------------------------------------------- */

/* The send with its lock held: stores the value, wakes the parked receivers (after
 * unlocking), reports the count. */
static __attribute__((noinline)) int send_locked(chan_t *ch, const void *val, size_t *nreceivers)
{
    sl_waiter_t *wake = NULL;
    long n = atomic_load_explicit(&ch->nrx, memory_order_relaxed);
    if (n == 0) {
        sl__unlock(&ch->lock);
        return SL_ENORECV;
    }
    uint64_t pos = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    _Atomic uint64_t *s = slot_at(ch, pos);
    atomic_store_explicit(&s[0], 2 * pos + 1, memory_order_relaxed);
    put_words(s + 1, val, ch->elem_size);
    atomic_store_explicit(&s[0], 2 * pos + 2, memory_order_release);
    atomic_store_explicit(&ch->tail, pos + 1, memory_order_release);
    if (ch->recvq.head)
        sl__waitq_claim_all(&ch->recvq, 0, &wake);
    sl__unlock(&ch->lock);
    sl__waiters_wake(wake);
    if (nreceivers)
        *nreceivers = (size_t)n;
    return 0;
}

static __attribute__((noinline)) int send_locking(chan_t *ch, const void *val, size_t *nreceivers)
{
    sl__lock(&ch->lock);
    return send_locked(ch, val, nreceivers);
}

/* Written out for the common send, with no call and so no frame: a one-word value, the lock
 * taken by its biased fast path, receivers subscribed and none parked. Anything else goes on in
 * send_locking (before the lock) or send_locked (with it held). */
int sl_broadcast_send(sl_broadcast_tx_t *tx, const void *val, size_t *nreceivers)
{
    chan_t *ch = tx;
    if (SL__UNLIKELY(ch->elem_size != 8 || !sl__lock_fast(&ch->lock)))
        return send_locking(ch, val, nreceivers);
    long n = atomic_load_explicit(&ch->nrx, memory_order_relaxed);
    if (SL__UNLIKELY(n == 0 || ch->recvq.head != NULL))
        return send_locked(ch, val, nreceivers);
    uint64_t pos = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    _Atomic uint64_t *s = slot_at(ch, pos);
    atomic_store_explicit(&s[0], 2 * pos + 1, memory_order_relaxed);
    put_words(s + 1, val, 8); /* its one-word case, no call */
    atomic_store_explicit(&s[0], 2 * pos + 2, memory_order_release);
    atomic_store_explicit(&ch->tail, pos + 1, memory_order_release);
    sl__unlock(&ch->lock);
    if (nreceivers)
        *nreceivers = (size_t)n;
    return 0;
}

/* ---- Receive ------------------------------------------------------------------------------- */

#define RD_VALUE 0 /* the slot holds the cursor's position */
#define RD_EMPTY 1 /* nothing at the cursor yet */
#define RD_LAG   2 /* the slot moved past the cursor; *t = the tail to measure lag from */

/* Classifies sequence word s for cursor c. */
static inline int classify(chan_t *ch, uint64_t c, uint64_t s, uint64_t *t)
{
    uint64_t want = 2 * c + 2;
    if (s == want)
        return RD_VALUE;
    uint64_t after; /* one past the newest position the slot shows */
    if (s & 1) {
        uint64_t writing = (s - 1) / 2;
        if (writing <= c)
            return RD_EMPTY;
        after = writing + 1;
    } else {
        if (s < want)
            return RD_EMPTY;
        after = s / 2;
    }
    /* A write in progress counts as sent: the value it replaces is already gone. */
    uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_acquire);
    *t = tail > after ? tail : after;
    return RD_LAG;
}

/* Reads at the cursor without locking. 0, SL_ELAGGED or SL_EAGAIN. */
static inline __attribute__((always_inline)) int rx_read(sl_broadcast_rx_t *rx, void *out,
                                                         uint64_t *lagged)
{
    chan_t *ch = rx->ch;
    uint64_t c = atomic_load_explicit(&rx->next, memory_order_relaxed);
    _Atomic uint64_t *s = slot_at(ch, c);
    uint64_t s1 = atomic_load_explicit(&s[0], memory_order_acquire), t = 0;
    int k = classify(ch, c, s1, &t);
    if (k == RD_VALUE) {
        get_words(out, s + 1, ch->elem_size);
        uint64_t s2 = atomic_load_explicit(&s[0], memory_order_relaxed);
        if (SL__LIKELY(s2 == s1)) {
            atomic_store_explicit(&rx->next, c + 1, memory_order_relaxed);
            return 0;
        }
        /* Overwritten while we copied: we lagged. */
        k = classify(ch, c, s2, &t);
    }
    if (k == RD_EMPTY)
        return SL_EAGAIN;
    uint64_t oldest = t - (ch->mask + 1);
    if (lagged)
        *lagged = oldest - c;
    atomic_store_explicit(&rx->next, oldest, memory_order_relaxed);
    return SL_ELAGGED;
}

/* The whole non-waiting receive: value, lag, closed, or SL_EAGAIN. */
static inline __attribute__((always_inline)) int rx_poll(sl_broadcast_rx_t *rx, void *out,
                                                         uint64_t *lagged)
{
    int r = rx_read(rx, out, lagged);
    if (r != SL_EAGAIN)
        return r;
    /* Every send happened before the close: look once more after seeing it. */
    if (atomic_load_explicit(&rx->ch->closed, memory_order_acquire)) {
        r = rx_read(rx, out, lagged);
        if (r == SL_EAGAIN)
            r = SL_ECLOSED;
    }
    return r;
}

int sl_broadcast_try_recv(sl_broadcast_rx_t *rx, void *out, uint64_t *lagged)
{
    int r = rx_poll(rx, out, lagged);
    return r == SL_EAGAIN ? SL_EEMPTY : r;
}

static int recv_poll(sl_clause_t *c)
{
    return rx_poll(c->obj, c->buf, (uint64_t *)c->arg);
}

/* Under the channel lock: something to read at the receiver's cursor, or the end. */
static int recv_ready(const void *obj)
{
    const sl_broadcast_rx_t *rx = obj;
    chan_t *ch = rx->ch;
    uint64_t cur = atomic_load_explicit(&((sl_broadcast_rx_t *)rx)->next, memory_order_relaxed);
    uint64_t t, s = atomic_load_explicit(&slot_at(ch, cur)[0], memory_order_relaxed);
    return classify(ch, cur, s, &t) != RD_EMPTY ||
           atomic_load_explicit(&ch->closed, memory_order_relaxed);
}

static int recv_arm(sl_clause_t *c)
{
    chan_t *ch = ((sl_broadcast_rx_t *)c->obj)->ch;
    return sl__arm_cond(c, &ch->lock, &ch->recvq, recv_ready);
}

static void recv_disarm(sl_clause_t *c)
{
    chan_t *ch = ((sl_broadcast_rx_t *)c->obj)->ch;
    sl__disarm_cond(c, &ch->lock, &ch->recvq);
}

/* The receive itself happens here, in the winning task, so a losing clause moves nothing. */
static int recv_complete(sl_clause_t *c)
{
    return recv_poll(c);
}

static const struct sl_clause_ops recv_ops = {recv_poll, recv_arm, recv_disarm, recv_complete};

void sl_clause_broadcast_recv(sl_clause_t *c, sl_broadcast_rx_t *rx, void *out, uint64_t *lagged)
{
    sl__clause_init(c, &recv_ops, rx, out, (uintptr_t)lagged, 0);
}

/* The receive once its entry check has passed (the budget unit taken): poll, then wait. */
static int __attribute__((noinline))
recv_entered(sl_broadcast_rx_t *rx, void *out, uint64_t *lagged, int64_t deadline)
{
    int r = rx_poll(rx, out, lagged);
    if (r != SL_EAGAIN)
        return r;
    return sl__wait1v(&recv_ops, rx, out, (uintptr_t)lagged, 0, deadline);
}

/* The receive when the entry check's common case does not hold (cancelled, a timeout scope,
 * the budget's last unit, not a task): the full check first. */
static int __attribute__((noinline))
recv_checked(sl_broadcast_rx_t *rx, void *out, uint64_t *lagged, int64_t deadline)
{
    int r = sl__wait_enter(sl__self_checked("sl_broadcast_recv"));
    if (r)
        return r;
    return recv_entered(rx, out, lagged, deadline);
}

/* Written out for the receive that finds its value at the cursor (a receiver keeping up reads
 * every value this way): the entry check's common case and rx_read's value case with no call,
 * so that the function needs no frame. Wherever it stops, the general path takes over at that
 * point: recv_checked before the entry check, recv_entered after it (a lag, nothing yet, the
 * value overwritten while it was copied). */
int sl_broadcast_recv_until(sl_broadcast_rx_t *rx, void *out, uint64_t *lagged, int64_t deadline)
{
    SL__ASSERT(rx != NULL, "sl_broadcast_recv: NULL receiver");
    if (SL__UNLIKELY(!sl__wait_enter_fast()))
        return recv_checked(rx, out, lagged, deadline);
    chan_t *ch = rx->ch;
    uint64_t c = atomic_load_explicit(&rx->next, memory_order_relaxed);
    _Atomic uint64_t *s = slot_at(ch, c);
    uint64_t s1 = atomic_load_explicit(&s[0], memory_order_acquire);
    if (SL__LIKELY(s1 == 2 * c + 2)) {
        /* get_words, for whole words only: its tail would be a memcpy call */
        size_t n = ch->elem_size;
        unsigned char *d = out;
        _Atomic uint64_t *src = s + 1;
        if (SL__LIKELY(n == 8)) { /* a counter, a pointer, an id: no loop */
            get_words(d, src, 8);
        } else if (n % 8 == 0 && n) {
            do {
                uint64_t w = atomic_load_explicit(src, memory_order_acquire);
                memcpy(d, &w, 8);
                d += 8, src++;
            } while (n -= 8);
        } else {
            return recv_entered(rx, out, lagged, deadline);
        }
        if (SL__LIKELY(atomic_load_explicit(&s[0], memory_order_relaxed) == s1)) {
            atomic_store_explicit(&rx->next, c + 1, memory_order_relaxed);
            return 0;
        }
    }
    return recv_entered(rx, out, lagged, deadline);
}

int sl_broadcast_recv(sl_broadcast_rx_t *rx, void *out, uint64_t *lagged)
{
    return sl_broadcast_recv_until(rx, out, lagged, SL_FOREVER);
}

/* ---- Lengths and counts -------------------------------------------------------------------- */

uint64_t sl_broadcast_rx_len(const sl_broadcast_rx_t *rx)
{
    uint64_t t = atomic_load_explicit(&rx->ch->tail, memory_order_acquire);
    return t - atomic_load_explicit(&rx->next, memory_order_relaxed);
}

int sl_broadcast_rx_is_empty(const sl_broadcast_rx_t *rx)
{
    return sl_broadcast_rx_len(rx) == 0;
}

int sl_broadcast_rx_is_closed(const sl_broadcast_rx_t *rx)
{
    return atomic_load_explicit(&rx->ch->closed, memory_order_acquire);
}

/* A held position p is owed to a receiver iff its cursor is at or before p (a receiver's
 * cursor never precedes its subscription point), so the owed values are the held ones from
 * the smallest cursor on. This equals Tokio's count of slots with rem > 0. */
size_t sl_broadcast_tx_len(sl_broadcast_tx_t *tx)
{
    chan_t *ch = tx;
    sl__lock(&ch->lock);
    uint64_t t = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    uint64_t lo = t;
    for (sl_broadcast_rx_t *rx = ch->rxs; rx; rx = rx->lnext) {
        uint64_t c = atomic_load_explicit(&rx->next, memory_order_relaxed);
        if (c < lo)
            lo = c;
    }
    sl__unlock(&ch->lock);
    uint64_t len = ch->mask + 1;
    if (t >= len && lo < t - len)
        lo = t - len;
    return (size_t)(t - lo);
}

int sl_broadcast_tx_is_empty(sl_broadcast_tx_t *tx)
{
    return sl_broadcast_tx_len(tx) == 0;
}

size_t sl_broadcast_receiver_count(const sl_broadcast_tx_t *tx)
{
    return (size_t)atomic_load_explicit(&tx->nrx, memory_order_relaxed);
}

size_t sl_broadcast_sender_count(const sl_broadcast_tx_t *tx)
{
    return (size_t)atomic_load_explicit(&tx->ntx, memory_order_relaxed);
}

/* ---- Waiting for no receivers -------------------------------------------------------------- */

void sl_clause_broadcast_tx_closed(sl_clause_t *c, sl_broadcast_tx_t *tx)
{
    sl__clause_init(c, &sl__zero_wait_ops, &tx->no_rx, NULL, 0, 0);
}

int sl_broadcast_try_tx_closed(sl_broadcast_tx_t *tx)
{
    return atomic_load_explicit(&tx->nrx, memory_order_acquire) == 0 ? 0 : SL_EAGAIN;
}

int sl_broadcast_tx_closed_until(sl_broadcast_tx_t *tx, int64_t deadline)
{
    sl_clause_t c;
    sl_clause_broadcast_tx_closed(&c, tx);
    return sl__wait1(&c, deadline);
}

int sl_broadcast_tx_closed(sl_broadcast_tx_t *tx)
{
    return sl_broadcast_tx_closed_until(tx, SL_FOREVER);
}
