/*
 * Watch channel (tokio::sync::watch) with reference-counted immutable versions.
 *
 * The current value lives in a block; the channel holds one reference to the current block and
 * every borrow holds another. Blocks are never written while anyone can see them: a writer
 * fills a spare block (one whose count fell to zero) and swaps it in under the lock, together
 * with the version bump and the wake-ups, then drops the channel's reference to the old block.
 * Whoever drops a block's last reference recycles it (the writer into its one-block spare
 * slot, a reader onto the free list). The lock is held only to swap or take a reference, never
 * for a copy, so readers never hold writers up and writers never hold readers up for longer
 * than a pointer swap.
 *
 * Writers are serialised among themselves by a second lock (wlock): send_modify must see the
 * value the previous writer published, and the spare slot belongs to whoever holds wlock.
 *
 * state = version << 1 | closed, stored with release under the lock and read with acquire
 * anywhere, as in Tokio. See docs/design/primitives.md.
 */
#include <string.h>

#include "core/rt.h"

typedef struct blk {
    _Atomic long refs;
    struct blk *next; /* free list */
    struct blk *all;  /* every block, for the final free */
    uint64_t version;
    _Alignas(16) unsigned char data[];
} blk_t;

struct sl_watch_rx {
    struct sl_watch_tx *ch;
    uint64_t seen; /* owner only */
};

struct sl_watch_tx {
    size_t elem_size;
    size_t blk_size;
    sl_runtime_t *rt;
    char pad0[SL__CACHELINE];
    sl_lock_t lock;  /* cur, free, all, counts, queues */
    sl_lock_t wlock; /* writers; guards spare */
    _Atomic uint64_t state;
    blk_t *cur;
    blk_t *free;
    blk_t *all;
    blk_t *spare;
    _Atomic long ntx, nrx;
    sl_waitq_t changedq;
    sl__zero_wait_t no_rx; /* senders waiting for no receivers */
    char pad1[SL__CACHELINE];
};

typedef struct sl_watch_tx chan_t;

static inline uint64_t st_version(uint64_t s)
{
    return s >> 1;
}

/* ---- Blocks -------------------------------------------------------------------------------- */

/* Under wlock: a block nobody references, or NULL when out of memory. */
static blk_t *spare_get(chan_t *ch)
{
    blk_t *b = ch->spare;
    if (b) {
        ch->spare = NULL;
        return b;
    }
    sl__lock(&ch->lock);
    b = ch->free;
    if (b)
        ch->free = b->next;
    sl__unlock(&ch->lock);
    if (b)
        return b;
    b = sl__alloc(ch->rt, ch->blk_size);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 0);
    b->next = NULL;
    b->version = 0;
    sl__lock(&ch->lock);
    b->all = ch->all;
    ch->all = b;
    sl__unlock(&ch->lock);
    return b;
}

/* Drops a reference held by a reader. */
static void blk_release(chan_t *ch, blk_t *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    sl__lock(&ch->lock);
    b->next = ch->free;
    ch->free = b;
    sl__unlock(&ch->lock);
}

/* Under wlock: drops the channel's reference to a block just swapped out. */
static void blk_release_writer(chan_t *ch, blk_t *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (!ch->spare) {
        ch->spare = b;
        return;
    }
    sl__lock(&ch->lock);
    b->next = ch->free;
    ch->free = b;
    sl__unlock(&ch->lock);
}

/* Under wlock: makes b (filled, private) the current value. bump: new version + wake-ups.
 * Returns the old block, whose channel reference now belongs to the caller. */
static blk_t *publish(chan_t *ch, blk_t *b, int bump)
{
    sl_waiter_t *wake = NULL;
    atomic_store_explicit(&b->refs, 1, memory_order_relaxed);
    sl__lock(&ch->lock);
    blk_t *old = ch->cur;
    b->version = old->version + (bump ? 1 : 0);
    ch->cur = b;
    if (bump) {
        uint64_t s = atomic_load_explicit(&ch->state, memory_order_relaxed);
        atomic_store_explicit(&ch->state, s + 2, memory_order_release);
        if (ch->changedq.head)
            sl__waitq_claim_all(&ch->changedq, 0, &wake);
    }
    sl__unlock(&ch->lock);
    sl__waiters_wake(wake);
    return old;
}

/* Takes a reference to the current block. */
static blk_t *cur_get(chan_t *ch)
{
    sl__lock(&ch->lock);
    blk_t *b = ch->cur;
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    sl__unlock(&ch->lock);
    return b;
}

/* ---- Creation and handles ------------------------------------------------------------------ */

static void chan_free(chan_t *ch)
{
    blk_t *b = ch->all;
    while (b) {
        blk_t *n = b->all;
        sl__free(ch->rt, b, ch->blk_size);
        b = n;
    }
    sl__free(ch->rt, ch, sizeof *ch);
}

static int rx_new(chan_t *ch, int copy_seen, uint64_t seen, sl_watch_rx_t **out)
{
    SL__ASSERT(out != NULL, "watch: receiver out-parameter is NULL");
    sl_watch_rx_t *rx = sl__alloc(ch->rt, sizeof *rx);
    if (!rx)
        return SL_ENOMEM;
    rx->ch = ch;
    sl__lock(&ch->lock);
    rx->seen =
        copy_seen ? seen : st_version(atomic_load_explicit(&ch->state, memory_order_relaxed));
    atomic_fetch_add_explicit(&ch->nrx, 1, memory_order_relaxed);
    sl__unlock(&ch->lock);
    *out = rx;
    return 0;
}

int sl_watch_new(size_t elem_size, const void *init, sl_watch_tx_t **tx, sl_watch_rx_t **rx)
{
    SL__ASSERT(tx != NULL, "sl_watch_new: tx is NULL");
    if (elem_size > SIZE_MAX / 2)
        return SL_ENOMEM;
    sl_runtime_t *rt = sl_runtime_current();
    chan_t *ch = sl__calloc(rt, sizeof *ch);
    if (!ch)
        return SL_ENOMEM;
    ch->elem_size = elem_size;
    ch->blk_size = sizeof(blk_t) + (elem_size ? elem_size : 1);
    ch->rt = rt;
    sl__lock_init(&ch->lock);
    sl__lock_init(&ch->wlock);
    ch->no_rx.count = &ch->nrx;
    ch->no_rx.lock = &ch->lock;
    blk_t *b = spare_get(ch);
    if (!b) {
        sl__free(rt, ch, sizeof *ch);
        return SL_ENOMEM;
    }
    if (init)
        memcpy(b->data, init, elem_size);
    else
        memset(b->data, 0, elem_size);
    atomic_store_explicit(&b->refs, 1, memory_order_relaxed);
    ch->cur = b;
    atomic_store(&ch->ntx, 1);
    if (rx) {
        int r = rx_new(ch, 0, 0, rx);
        if (r) {
            chan_free(ch);
            return r;
        }
    }
    *tx = ch;
    return 0;
}

sl_watch_tx_t *sl_watch_tx_clone(sl_watch_tx_t *tx)
{
    atomic_fetch_add_explicit(&tx->ntx, 1, memory_order_relaxed);
    return tx;
}

void sl_watch_tx_drop(sl_watch_tx_t *tx)
{
    if (!tx)
        return;
    sl_waiter_t *wake = NULL;
    sl__lock(&tx->lock);
    long left = atomic_fetch_sub_explicit(&tx->ntx, 1, memory_order_relaxed) - 1;
    SL__ASSERT(left >= 0, "sl_watch_tx_drop: sender dropped twice");
    if (left == 0) {
        atomic_fetch_or_explicit(&tx->state, 1, memory_order_release);
        sl__waitq_claim_all(&tx->changedq, 0, &wake);
    }
    int last = left == 0 && atomic_load_explicit(&tx->nrx, memory_order_relaxed) == 0;
    sl__unlock(&tx->lock);
    sl__waiters_wake(wake);
    if (last)
        chan_free(tx);
}

int sl_watch_subscribe(sl_watch_tx_t *tx, sl_watch_rx_t **rx)
{
    return rx_new(tx, 0, 0, rx);
}

int sl_watch_rx_clone(sl_watch_rx_t *rx, sl_watch_rx_t **out)
{
    return rx_new(rx->ch, 1, rx->seen, out);
}

void sl_watch_rx_drop(sl_watch_rx_t *rx)
{
    if (!rx)
        return;
    chan_t *ch = rx->ch;
    sl_waiter_t *wake = NULL;
    sl__lock(&ch->lock);
    for (sl_waiter_t *w = ch->changedq.head; w; w = w->next)
        SL__ASSERT(w->clause->obj != rx, "sl_watch_rx_drop: a task is waiting on it");
    long left = atomic_fetch_sub_explicit(&ch->nrx, 1, memory_order_relaxed) - 1;
    if (left == 0)
        sl__waitq_claim_all(&ch->no_rx.q, 0, &wake);
    int last = left == 0 && atomic_load_explicit(&ch->ntx, memory_order_relaxed) == 0;
    sl__unlock(&ch->lock);
    sl__waiters_wake(wake);
    sl__free(ch->rt, rx, sizeof *rx);
    if (last)
        chan_free(ch);
}

size_t sl_watch_receiver_count(const sl_watch_tx_t *tx)
{
    return (size_t)atomic_load_explicit(&tx->nrx, memory_order_relaxed);
}

size_t sl_watch_sender_count(const sl_watch_tx_t *tx)
{
    return (size_t)atomic_load_explicit(&tx->ntx, memory_order_relaxed);
}

int sl_watch_tx_is_closed(const sl_watch_tx_t *tx)
{
    return atomic_load_explicit(&tx->nrx, memory_order_acquire) == 0;
}

/* ---- Sending ------------------------------------------------------------------------------- */

static int store(chan_t *ch, const void *val, void *old_out, int need_rx)
{
    sl__lock(&ch->wlock);
    if (need_rx && atomic_load_explicit(&ch->nrx, memory_order_relaxed) == 0) {
        sl__unlock(&ch->wlock);
        return SL_ENORECV;
    }
    blk_t *b = spare_get(ch);
    if (!b) {
        sl__unlock(&ch->wlock);
        return SL_ENOMEM;
    }
    memcpy(b->data, val, ch->elem_size);
    blk_t *old = publish(ch, b, 1);
    if (old_out)
        memcpy(old_out, old->data, ch->elem_size);
    blk_release_writer(ch, old);
    sl__unlock(&ch->wlock);
    return 0;
}

int sl_watch_send(sl_watch_tx_t *tx, const void *val)
{
    return store(tx, val, NULL, 1);
}

int sl_watch_send_replace(sl_watch_tx_t *tx, const void *val, void *old_out)
{
    return store(tx, val, old_out, 0);
}

/* Releases the writer lock of a modify whose function ended its task (sl_panic). */
typedef struct modify_hold {
    sl__hold_t h;
    chan_t *ch;
    blk_t *b;
} modify_hold_t;

static void modify_abandon(sl__hold_t *h)
{
    modify_hold_t *mh = (modify_hold_t *)(void *)h;
    /* Tokio keeps what the closure changed, without a version bump or a notification. */
    blk_release_writer(mh->ch, publish(mh->ch, mh->b, 0));
    sl__unlock(&mh->ch->wlock);
}

static int modify(chan_t *ch, int (*fn)(void *, void *), void (*vfn)(void *, void *), void *arg)
{
    SL__ASSERT(fn || vfn, "sl_watch_send_modify: NULL function");
    sl__lock(&ch->wlock);
    blk_t *b = spare_get(ch);
    if (!b) {
        sl__unlock(&ch->wlock);
        return SL_ENOMEM;
    }
    /* cur changes only under wlock, which we hold: reading it here is safe. */
    memcpy(b->data, ch->cur->data, ch->elem_size);
    sl_task_t *self = sl__self();
    modify_hold_t mh = {.ch = ch, .b = b};
    mh.h.release = modify_abandon;
    if (self)
        sl__hold_add(self, &mh.h);
    int changed = 1;
    if (fn)
        changed = fn(b->data, arg) != 0;
    else
        vfn(b->data, arg);
    if (self)
        sl__hold_remove(&mh.h);
    blk_release_writer(ch, publish(ch, b, changed));
    sl__unlock(&ch->wlock);
    return changed;
}

int sl_watch_send_modify(sl_watch_tx_t *tx, void (*fn)(void *value, void *arg), void *arg)
{
    int r = modify(tx, NULL, fn, arg);
    return r < 0 ? r : 0;
}

int sl_watch_send_if_modified(sl_watch_tx_t *tx, int (*fn)(void *value, void *arg), void *arg)
{
    return modify(tx, fn, NULL, arg);
}

void sl_watch_tx_borrow(sl_watch_tx_t *tx, void *out)
{
    blk_t *b = cur_get(tx);
    memcpy(out, b->data, tx->elem_size);
    blk_release(tx, b);
}

/* ---- Borrowing ----------------------------------------------------------------------------- */

static int borrow_copy(sl_watch_rx_t *rx, void *out, int update)
{
    chan_t *ch = rx->ch;
    blk_t *b = cur_get(ch);
    int changed = b->version != rx->seen;
    if (update)
        rx->seen = b->version;
    memcpy(out, b->data, ch->elem_size);
    blk_release(ch, b);
    return changed;
}

int sl_watch_borrow(sl_watch_rx_t *rx, void *out)
{
    return borrow_copy(rx, out, 0);
}

int sl_watch_borrow_and_update(sl_watch_rx_t *rx, void *out)
{
    return borrow_copy(rx, out, 1);
}

static const void *borrow_ref(sl_watch_rx_t *rx, sl_watch_ref_t *ref, int update)
{
    chan_t *ch = rx->ch;
    blk_t *b = cur_get(ch);
    ref->value = b->data;
    ref->version = b->version;
    ref->has_changed = b->version != rx->seen;
    ref->blk_ = b;
    ref->chan_ = ch;
    if (update)
        rx->seen = b->version;
    return b->data;
}

const void *sl_watch_borrow_ref(sl_watch_rx_t *rx, sl_watch_ref_t *ref)
{
    return borrow_ref(rx, ref, 0);
}

const void *sl_watch_borrow_ref_and_update(sl_watch_rx_t *rx, sl_watch_ref_t *ref)
{
    return borrow_ref(rx, ref, 1);
}

void sl_watch_ref_release(sl_watch_ref_t *ref)
{
    SL__ASSERT(ref->blk_ != NULL, "sl_watch_ref_release: not borrowed or released twice");
    blk_release(ref->chan_, ref->blk_);
    ref->blk_ = NULL;
    ref->value = NULL;
}

/* ---- Changes ------------------------------------------------------------------------------- */

int sl_watch_has_changed(const sl_watch_rx_t *rx)
{
    uint64_t s = atomic_load_explicit(&rx->ch->state, memory_order_acquire);
    if (s & 1)
        return SL_ECLOSED;
    return st_version(s) != rx->seen;
}

void sl_watch_mark_changed(sl_watch_rx_t *rx)
{
    rx->seen--;
}

void sl_watch_mark_unchanged(sl_watch_rx_t *rx)
{
    rx->seen = st_version(atomic_load_explicit(&rx->ch->state, memory_order_acquire));
}

static int changed_poll(sl_clause_t *c)
{
    sl_watch_rx_t *rx = c->obj;
    uint64_t s = atomic_load_explicit(&rx->ch->state, memory_order_acquire);
    if (st_version(s) != rx->seen) {
        rx->seen = st_version(s);
        return 0;
    }
    return (s & 1) ? SL_ECLOSED : SL_EAGAIN;
}

/* Under the channel lock: a version this receiver has not seen, or the sender gone. */
static int changed_ready(const void *obj)
{
    const sl_watch_rx_t *rx = obj;
    uint64_t s = atomic_load_explicit(&rx->ch->state, memory_order_relaxed);
    return st_version(s) != rx->seen || (s & 1);
}

static int changed_arm(sl_clause_t *c)
{
    chan_t *ch = ((sl_watch_rx_t *)c->obj)->ch;
    return sl__arm_cond(c, &ch->lock, &ch->changedq, changed_ready);
}

static void changed_disarm(sl_clause_t *c)
{
    chan_t *ch = ((sl_watch_rx_t *)c->obj)->ch;
    sl__disarm_cond(c, &ch->lock, &ch->changedq);
}

/* Marking seen happens here, in the winning task only. */
static int changed_complete(sl_clause_t *c)
{
    return changed_poll(c);
}

static const struct sl_clause_ops changed_ops = {changed_poll, changed_arm, changed_disarm,
                                                 changed_complete};

void sl_clause_watch_changed(sl_clause_t *c, sl_watch_rx_t *rx)
{
    sl__clause_init(c, &changed_ops, rx, NULL, 0, 0);
}

int sl_watch_try_changed(sl_watch_rx_t *rx)
{
    sl_clause_t c;
    sl_clause_watch_changed(&c, rx);
    int r = changed_poll(&c);
    return r == SL_EAGAIN ? SL_EEMPTY : r;
}

int sl_watch_changed_until(sl_watch_rx_t *rx, int64_t deadline)
{
    return sl__wait1vp(&changed_ops, rx, NULL, 0, 0, deadline);
}

int sl_watch_changed(sl_watch_rx_t *rx)
{
    return sl_watch_changed_until(rx, SL_FOREVER);
}

/* One check of wait_for: 0 (pred true), SL_EAGAIN (false) or SL_ECLOSED (false; closed and
 * nothing new since the last check). */
static int check(sl_watch_rx_t *rx, int (*pred)(const void *, void *), void *arg, void *out,
                 int closed)
{
    chan_t *ch = rx->ch;
    blk_t *b = cur_get(ch);
    int has_changed = b->version != rx->seen;
    rx->seen = b->version;
    int r = SL_EAGAIN;
    if (!closed || has_changed) {
        if (pred(b->data, arg)) {
            if (out)
                memcpy(out, b->data, ch->elem_size);
            r = 0;
        }
    }
    blk_release(ch, b);
    if (r && closed)
        r = SL_ECLOSED;
    return r;
}

int sl_watch_wait_for_until(sl_watch_rx_t *rx, int (*pred)(const void *value, void *arg), void *arg,
                            void *out, int64_t deadline)
{
    int closed = 0;
    for (;;) {
        int r = check(rx, pred, arg, out, closed);
        if (r != SL_EAGAIN)
            return r;
        r = sl_watch_changed_until(rx, deadline);
        if (r == SL_ECLOSED)
            closed = 1;
        else if (r)
            return r;
    }
}

int sl_watch_wait_for(sl_watch_rx_t *rx, int (*pred)(const void *value, void *arg), void *arg,
                      void *out)
{
    return sl_watch_wait_for_until(rx, pred, arg, out, SL_FOREVER);
}

int sl_watch_try_wait_for(sl_watch_rx_t *rx, int (*pred)(const void *value, void *arg), void *arg,
                          void *out)
{
    int r = check(rx, pred, arg, out, 0);
    if (r == SL_EAGAIN)
        r = (atomic_load_explicit(&rx->ch->state, memory_order_acquire) & 1) ? SL_ECLOSED
                                                                             : SL_EEMPTY;
    return r;
}

/* ---- Waiting for no receivers -------------------------------------------------------------- */

void sl_clause_watch_tx_closed(sl_clause_t *c, sl_watch_tx_t *tx)
{
    sl__clause_init(c, &sl__zero_wait_ops, &tx->no_rx, NULL, 0, 0);
}

int sl_watch_try_tx_closed(sl_watch_tx_t *tx)
{
    return atomic_load_explicit(&tx->nrx, memory_order_acquire) == 0 ? 0 : SL_EAGAIN;
}

int sl_watch_tx_closed_until(sl_watch_tx_t *tx, int64_t deadline)
{
    sl_clause_t c;
    sl_clause_watch_tx_closed(&c, tx);
    return sl__wait1(&c, deadline);
}

int sl_watch_tx_closed(sl_watch_tx_t *tx)
{
    return sl_watch_tx_closed_until(tx, SL_FOREVER);
}
