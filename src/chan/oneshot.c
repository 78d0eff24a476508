/*
 * One-shot channels (tokio::sync::oneshot).
 *
 * One allocation holds both halves' state and room for the value. A spinlock guards the state
 * bits and the two waiter queues (the receiver's, and the sender's closed() waiters). A send
 * that finds the receiver parked copies the value straight into the receiver's buffer and
 * claims its wait, so the value is copied once and the receiver never touches the lock again
 * before it drops its handle. The object is freed by whichever half goes last.
 */
#include <string.h>

#include "core/rt.h"

enum {
    SENT = 1,        /* a value was stored (or handed over) */
    TAKEN = 2,       /* the value was received */
    TX_GONE = 4,     /* the sender was consumed (sent or dropped) */
    RX_CLOSED = 8,   /* rx_close() or rx_drop() */
    RX_GONE = 16,    /* the receiver was dropped */
    TERMINATED = 32, /* the receiver got its final result (value or SL_ECLOSED) */
};

typedef struct oneshot {
    sl_lock_t lock;
    unsigned state;
    sl_runtime_t *rt;
    size_t esz;
    sl_waitq_t rxq; /* the receiver */
    sl_waitq_t txq; /* closed() waiters */
    _Alignas(16) unsigned char value[];
} oneshot_t;

#define OS(h) ((oneshot_t *)(void *)(h))

static inline void cpy(void *d, const void *s, size_t n)
{
    if (n == 8)
        memcpy(d, s, 8);
    else
        memcpy(d, s, n);
}

static void os_free(oneshot_t *o)
{
    sl__free(o->rt, o, sizeof *o + o->esz);
}

int sl_oneshot_new(size_t elem_size, sl_oneshot_tx_t **tx, sl_oneshot_rx_t **rx)
{
    SL__ASSERT(tx && rx, "sl_oneshot_new: NULL out-parameter");
    if (elem_size > SIZE_MAX / 2)
        return SL_ENOMEM;
    sl_runtime_t *rt = sl_runtime_current();
    oneshot_t *o = sl__alloc(rt, sizeof *o + elem_size);
    if (!o)
        return SL_ENOMEM;
    sl__lock_init(&o->lock);
    o->state = 0;
    o->rt = rt;
    o->esz = elem_size;
    o->rxq.head = o->rxq.tail = NULL;
    o->txq.head = o->txq.tail = NULL;
    *tx = (sl_oneshot_tx_t *)(void *)o;
    *rx = (sl_oneshot_rx_t *)(void *)o;
    return 0;
}

/* Both halves gone: the last one frees. */
static inline int both_gone(unsigned s)
{
    return (s & (TX_GONE | RX_GONE)) == (TX_GONE | RX_GONE);
}

int sl_oneshot_send(sl_oneshot_tx_t *tx, const void *val)
{
    oneshot_t *o = OS(tx);
    SL__ASSERT(val || o->esz == 0, "sl_oneshot_send: NULL value");
    sl_waiter_t *w = NULL;
    int r = 0;
    sl__lock(&o->lock);
    SL__ASSERT(!(o->state & TX_GONE), "sl_oneshot_send: sender already consumed");
    o->state |= TX_GONE;
    if (o->state & RX_CLOSED) {
        r = SL_ECLOSED;
    } else if (o->rxq.head && (w = sl__waitq_claim_first(&o->rxq))) {
        cpy(w->clause->buf, val, o->esz);
        w->res = 0;
        o->state |= SENT | TAKEN | TERMINATED;
    } else {
        cpy(o->value, val, o->esz);
        o->state |= SENT;
    }
    int gone = both_gone(o->state);
    sl__unlock(&o->lock);
    if (w)
        sl__waiter_wake(w);
    if (gone)
        os_free(o);
    return r;
}

void sl_oneshot_tx_drop(sl_oneshot_tx_t *tx)
{
    if (!tx)
        return;
    oneshot_t *o = OS(tx);
    sl_waiter_t *wake = NULL;
    sl__lock(&o->lock);
    SL__ASSERT(!(o->state & TX_GONE), "sl_oneshot_tx_drop: sender already consumed");
    o->state |= TX_GONE;
    if (sl__waitq_claim_all(&o->rxq, SL_ECLOSED, &wake))
        o->state |= TERMINATED;
    int gone = both_gone(o->state);
    sl__unlock(&o->lock);
    sl__waiters_wake(wake);
    if (gone)
        os_free(o);
}

int sl_oneshot_tx_is_closed(const sl_oneshot_tx_t *tx)
{
    oneshot_t *o = OS(tx);
    sl__lock(&o->lock);
    int r = (o->state & RX_CLOSED) != 0;
    sl__unlock(&o->lock);
    return r;
}

/* ---- Receive ------------------------------------------------------------------------------- */

/* Under the lock: 0 (value copied out), SL_ECLOSED, or SL_EAGAIN. */
static int take_locked(oneshot_t *o, void *out)
{
    unsigned s = o->state;
    if ((s & (SENT | TAKEN)) == SENT) {
        cpy(out, o->value, o->esz);
        o->state |= TAKEN | TERMINATED;
        return 0;
    }
    if (s & (TX_GONE | RX_CLOSED)) {
        o->state |= TERMINATED;
        return SL_ECLOSED;
    }
    return SL_EAGAIN;
}

static int recv_poll(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    sl__lock(&o->lock);
    SL__ASSERT(!(o->state & TERMINATED), "oneshot received after it completed");
    int r = take_locked(o, c->buf);
    sl__unlock(&o->lock);
    return r;
}

static int recv_arm(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    int state = SL__ARMED;
    sl__lock(&o->lock);
    unsigned s = o->state;
    if ((s & (SENT | TAKEN)) == SENT || (s & (TX_GONE | RX_CLOSED))) {
        if (sl__claim_self(c)) {
            c->w.res = take_locked(o, c->buf);
            state = SL__DONE;
        } else {
            state = SL__LOST;
        }
    } else {
        sl__waitq_push(&o->rxq, &c->w);
    }
    sl__unlock(&o->lock);
    return state;
}

static void recv_disarm(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    sl__lock(&o->lock);
    sl__waitq_remove(&o->rxq, &c->w);
    sl__unlock(&o->lock);
}

static const struct sl_clause_ops recv_ops = {recv_poll, recv_arm, recv_disarm, NULL};

void sl_clause_oneshot_recv(sl_clause_t *c, sl_oneshot_rx_t *rx, void *out)
{
    SL__ASSERT(rx && (out || OS(rx)->esz == 0), "sl_clause_oneshot_recv: NULL argument");
    sl__clause_init(c, &recv_ops, OS(rx), out, 0, 0);
}

int sl_oneshot_try_recv(sl_oneshot_rx_t *rx, void *out)
{
    oneshot_t *o = OS(rx);
    SL__ASSERT(out || o->esz == 0, "sl_oneshot_try_recv: NULL out");
    sl__lock(&o->lock);
    int r = (o->state & TERMINATED) ? SL_ECLOSED : take_locked(o, out);
    sl__unlock(&o->lock);
    return r == SL_EAGAIN ? SL_EEMPTY : r;
}

int sl_oneshot_recv_until(sl_oneshot_rx_t *rx, void *out, int64_t deadline)
{
    sl_clause_t c;
    sl_clause_oneshot_recv(&c, rx, out);
    return sl__wait1(&c, deadline);
}

int sl_oneshot_recv(sl_oneshot_rx_t *rx, void *out)
{
    return sl_oneshot_recv_until(rx, out, SL_FOREVER);
}

static void close_locked(oneshot_t *o, sl_waiter_t **wake)
{
    if (o->state & RX_CLOSED)
        return;
    o->state |= RX_CLOSED;
    sl__waitq_claim_all(&o->txq, 0, wake);
}

void sl_oneshot_rx_close(sl_oneshot_rx_t *rx)
{
    oneshot_t *o = OS(rx);
    sl_waiter_t *wake = NULL;
    sl__lock(&o->lock);
    close_locked(o, &wake);
    sl__unlock(&o->lock);
    sl__waiters_wake(wake);
}

void sl_oneshot_rx_drop(sl_oneshot_rx_t *rx)
{
    if (!rx)
        return;
    oneshot_t *o = OS(rx);
    sl_waiter_t *wake = NULL;
    sl__lock(&o->lock);
    SL__ASSERT(!(o->state & RX_GONE), "sl_oneshot_rx_drop: receiver dropped twice");
    SL__ASSERT(!o->rxq.head, "sl_oneshot_rx_drop: a task is still receiving");
    close_locked(o, &wake);
    o->state |= RX_GONE;
    int gone = both_gone(o->state);
    sl__unlock(&o->lock);
    sl__waiters_wake(wake);
    if (gone)
        os_free(o);
}

int sl_oneshot_rx_is_terminated(const sl_oneshot_rx_t *rx)
{
    oneshot_t *o = OS(rx);
    sl__lock(&o->lock);
    int r = (o->state & TERMINATED) != 0;
    sl__unlock(&o->lock);
    return r;
}

int sl_oneshot_rx_is_empty(const sl_oneshot_rx_t *rx)
{
    oneshot_t *o = OS(rx);
    sl__lock(&o->lock);
    int r = (o->state & (SENT | TAKEN)) != SENT;
    sl__unlock(&o->lock);
    return r;
}

/* ---- The sender waits for the receiver to go away ------------------------------------------ */

static int closed_poll(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    sl__lock(&o->lock);
    int r = (o->state & RX_CLOSED) ? 0 : SL_EAGAIN;
    sl__unlock(&o->lock);
    return r;
}

static int rx_gone(const void *obj)
{
    return (((const oneshot_t *)obj)->state & RX_CLOSED) != 0;
}

static int closed_arm(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    return sl__arm_cond(c, &o->lock, &o->txq, rx_gone);
}

static void closed_disarm(sl_clause_t *c)
{
    oneshot_t *o = c->obj;
    sl__disarm_cond(c, &o->lock, &o->txq);
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
