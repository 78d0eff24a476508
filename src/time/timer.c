/*
 * Timers: a 4-ary min-heap per worker, of nodes embedded in their owners (the waiting task,
 * a select clause), so arming a deadline allocates nothing once the heap array has grown to
 * its working size. Arm and cancel are O(log n); most deadlines are cancelled before they fire
 * (a timeout around an RPC), and cancel just removes the node from its slot.
 *
 * Timers fire in the scheduler loop when the cached clock reaches them. epoll_wait's timeout
 * is rounded up to whole milliseconds, so nothing fires early; the resolution is 1 ms.
 */
#include <string.h>

#include "core/rt.h"

#define ARITY 4

static inline int timer_less(const sl_timer_t *a, const sl_timer_t *b)
{
    return a->when < b->when;
}

static void sift_up(sl__timer_heap_t *h, int32_t i)
{
    sl_timer_t *x = h->v[i];
    while (i > 0) {
        int32_t p = (i - 1) / ARITY;
        if (!timer_less(x, h->v[p]))
            break;
        h->v[i] = h->v[p];
        h->v[i]->slot = i;
        i = p;
    }
    h->v[i] = x;
    x->slot = i;
}

static void sift_down(sl__timer_heap_t *h, int32_t i)
{
    sl_timer_t *x = h->v[i];
    for (;;) {
        int32_t c = i * ARITY + 1;
        if (c >= h->len)
            break;
        int32_t best = c;
        int32_t end = c + ARITY < h->len ? c + ARITY : h->len;
        for (int32_t k = c + 1; k < end; k++)
            if (timer_less(h->v[k], h->v[best]))
                best = k;
        if (!timer_less(h->v[best], x))
            break;
        h->v[i] = h->v[best];
        h->v[i]->slot = i;
        i = best;
    }
    h->v[i] = x;
    x->slot = i;
}

int sl__timer_arm(sl__worker_t *w, sl_timer_t *t, int64_t when)
{
    sl__timer_heap_t *h = &w->timers;
    if (t->slot >= 0)
        sl__timer_cancel(w, t);
    if (h->len == h->cap) {
        int32_t ncap = h->cap ? h->cap * 2 : 64;
        size_t psz = sizeof(void *); /* the heap holds pointers to timer nodes */
        sl_timer_t **nv = sl__alloc(w->rt, psz * (size_t)ncap);
        if (!nv)
            return SL_ENOMEM;
        if (h->len)
            memcpy((void *)nv, (void *)h->v, psz * (size_t)h->len);
        sl__free(w->rt, (void *)h->v, psz * (size_t)h->cap);
        h->v = nv;
        h->cap = ncap;
    }
    t->when = when;
    h->v[h->len] = t;
    sift_up(h, h->len++);
    return 0;
}

void sl__timer_cancel(sl__worker_t *w, sl_timer_t *t)
{
    sl__timer_heap_t *h = &w->timers;
    int32_t i = t->slot;
    if (i < 0)
        return;
    SL__ASSERT(i < h->len && h->v[i] == t, "timer heap corrupted");
    t->slot = -1;
    h->len--;
    if (i == h->len)
        return;
    h->v[i] = h->v[h->len];
    h->v[i]->slot = i;
    if (i > 0 && timer_less(h->v[i], h->v[(i - 1) / ARITY]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

int64_t sl__timer_next(sl__worker_t *w)
{
    return w->timers.len ? w->timers.v[0]->when : SL_FOREVER;
}

static void timer_fire(sl_timer_t *t)
{
    switch (t->kind) {
    case SL__TIMER_WAIT: {
        sl_task_t *task = t->owner;
        sl__wait_claim_task(task, task->wgen & 0xffffffu, SL__WIN_TIMEOUT);
        break;
    }
    case SL__TIMER_CLAUSE: {
        sl_clause_t *c = t->owner;
        if (sl__waiter_claim(&c->w)) {
            c->w.res = 0;
            sl__waiter_wake(&c->w);
        }
        break;
    }
    case SL__TIMER_FUNC: {
        sl__timer_func_t *tf = t->owner;
        tf->fn(tf);
        break;
    }
    default:
        sl__die(__FILE__, __LINE__, "unknown timer kind");
    }
}

void sl__timers_run(sl__worker_t *w)
{
    sl__timer_heap_t *h = &w->timers;
    while (h->len && h->v[0]->when <= sl__now(w)) {
        sl_timer_t *t = h->v[0];
        sl__timer_cancel(w, t);
        timer_fire(t);
    }
}

void sl__timer_heap_free(sl__worker_t *w)
{
    sl__free(w->rt, (void *)w->timers.v, sizeof(void *) * (size_t)w->timers.cap);
    w->timers.v = NULL;
    w->timers.len = w->timers.cap = 0;
}

/* ---- Sleep clause ---------------------------------------------------------------------- */

static int sleep_poll(sl_clause_t *c)
{
    sl__worker_t *w = sl__worker();
    return c->arg64 <= sl__now(w) ? 0 : SL_EAGAIN;
}

static int sleep_arm(sl_clause_t *c)
{
    sl__worker_t *w = sl__worker();
    if (c->arg64 <= sl__now(w))
        return sl__claim_self(c) ? SL__DONE : SL__LOST;
    c->timer.kind = SL__TIMER_CLAUSE;
    c->timer.owner = c;
    c->timer.slot = -1;
    if (sl__timer_arm(w, &c->timer, c->arg64) != 0) {
        if (!sl__claim_self(c))
            return SL__LOST;
        c->w.res = SL_ENOMEM;
        return SL__DONE;
    }
    return SL__ARMED;
}

static void sleep_disarm(sl_clause_t *c)
{
    if (c->timer.slot >= 0)
        sl__timer_cancel(c->w.task->worker, &c->timer);
}

static const struct sl_clause_ops sleep_ops = {sleep_poll, sleep_arm, sleep_disarm, NULL};

void sl_clause_sleep_until(sl_clause_t *c, int64_t deadline)
{
    memset(c, 0, sizeof *c);
    c->ops = &sleep_ops;
    c->arg64 = deadline;
    c->timer.slot = -1;
}

/* ---- Sleep --------------------------------------------------------------------------------- */

int sl_sleep_until(int64_t deadline)
{
    sl_task_t *t = sl__self_checked("sl_sleep_until");
    int r = sl__wait_precheck(t);
    if (r)
        return r;
    if (deadline <= sl__now(t->worker)) {
        r = sl_task_yield();
        return r ? r : sl__wait_precheck(t);
    }
    /* A wait with no clause but its deadline: the deadline firing is success here, unless an
     * enclosing timeout scope's earlier deadline is what fired. */
    sl_clause_t c;
    sl_clause_sleep_until(&c, deadline);
    r = sl__wait(&c, 1, SL__WAIT_POLLED, SL_FOREVER);
    return r == 0 ? c.res : r; /* the clause's own result: SL_ENOMEM if its timer could not be
                                  armed */
}

int sl_sleep(int64_t ns)
{
    sl_task_t *t = sl__self_checked("sl_sleep");
    if (ns <= 0)
        return sl_sleep_until(sl__now(t->worker));
    return sl_sleep_until(sl_deadline_in(ns));
}

/* ---- Intervals --------------------------------------------------------------------------- */

int sl_interval_init_at(sl_interval_t *iv, int64_t start, int64_t period, sl_missed_t missed)
{
    if (period <= 0 ||
        (missed != SL_MISSED_BURST && missed != SL_MISSED_DELAY && missed != SL_MISSED_SKIP))
        return SL_EINVAL;
    iv->period = period;
    iv->next = start;
    iv->missed = missed;
    return 0;
}

int sl_interval_init(sl_interval_t *iv, int64_t period, sl_missed_t missed)
{
    return sl_interval_init_at(iv, sl_now(), period, missed);
}

/* a + b for b >= 0, saturating at INT64_MAX (SL_FOREVER): a period of SL_FOREVER, or a next tick
 * past the end of time, means no next tick rather than one wrapped into the past. */
static inline int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

int sl_interval_tick(sl_interval_t *iv, int64_t *when)
{
    sl_task_t *t = sl__self_checked("sl_interval_tick");
    int64_t due = iv->next;
    int r;
    if (due > sl__now(t->worker)) {
        r = sl_sleep_until(due);
    } else {
        r = sl__wait_precheck(t);
        if (!r)
            sl__coop();
    }
    if (r)
        return r;
    int64_t now = sl__now(t->worker);
    /* Tokio's rule: the tick just returned was missed when we are more than 5 ms past its
     * deadline; the behaviour then decides where the next one goes. */
    int64_t next = sat_add(due, iv->period);
    if (now > sat_add(due, 5 * SL_MSEC)) {
        switch (iv->missed) {
        case SL_MISSED_BURST:
            break;
        case SL_MISSED_DELAY:
            next = sat_add(now, iv->period);
            break;
        case SL_MISSED_SKIP: {
            /* now - due fits in 64 unsigned bits whatever the start (INT64_MIN included). */
            uint64_t late = (uint64_t)now - (uint64_t)due;
            next = sat_add(now, iv->period - (int64_t)(late % (uint64_t)iv->period));
            break;
        }
        }
    }
    iv->next = next;
    if (when)
        *when = due;
    return 0;
}

void sl_interval_reset(sl_interval_t *iv)
{
    iv->next = sat_add(sl_now(), iv->period);
}
