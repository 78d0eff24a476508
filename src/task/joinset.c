/*
 * JoinSet: tasks joined in completion order (tokio::task::JoinSet).
 *
 * Each task of the set has an entry (a node) that moves between lists under the set's lock:
 * "running" from spawn until the task ends, then "done" (in completion order) until it is
 * joined, or "detached" after sl_joinset_detach_all(). The runtime calls on_done() once per
 * task, after the task has ended and its sl_defer cleanups have run, from whichever thread ran
 * it. on_done() either hands the outcome straight to a waiting join_next (claim protocol: only
 * a waiter whose claim succeeded gets it, so a cancelled or losing join_next never loses a
 * task) or copies it into the entry and appends that to "done"; then it drops the set's handle
 * (a panicked task's handle stays in its entry, for the message). Joined nodes go to a free list
 * owned by the set, so a set that has reached its peak size allocates nothing more per task.
 *
 * Lifetime: on_done() uses the set after the task has ended, so the set's memory must outlive
 * every pending on_done(). nlive counts them (under the lock); sl_joinset_free() marks the set
 * as freeing and whoever brings nlive to 0 with the flag set frees the memory: the freer
 * itself in the common case, or the last on_done() of a detached task.
 */
#include <string.h>

#include "core/rt.h"

enum { N_RUNNING = 0, N_DONE = 1, N_DETACHED = 2, N_FREE = 3 };

typedef struct node {
    struct node *next, *prev; /* in one of the set's lists (circular, with a sentinel) */
    sl_task_t *t;             /* running: the handle (NULL while the spawn is in progress);
                                 done: NULL, or the handle of a panicked task (its message) */
    sl_joinset_t *set;
    int where;   /* N_* */
    int status;  /* done: how the task ended (sl_task_status_t) */
    void *value; /* done: what it returned */
    uint64_t id; /* done: its id */
} node_t;

typedef struct list {
    node_t head; /* sentinel: head.next is the oldest */
} list_t;

struct sl_joinset {
    sl_lock_t lock;
    sl_runtime_t *rt;
    list_t running, done, detached;
    node_t *free;  /* recycled nodes, singly linked through next */
    size_t len;    /* running + done */
    size_t nlive;  /* nodes whose on_done() has not run yet: running + detached */
    size_t nnodes; /* nodes allocated (for freeing) */
    int freeing;
    sl_waitq_t waiters; /* join_next clauses */
};

static void list_init(list_t *l)
{
    l->head.next = l->head.prev = &l->head;
}

static int list_empty(const list_t *l)
{
    return l->head.next == &l->head;
}

static void list_append(list_t *l, node_t *n)
{
    n->prev = l->head.prev;
    n->next = &l->head;
    l->head.prev->next = n;
    l->head.prev = n;
}

static void list_unlink(node_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

static node_t *list_pop(list_t *l)
{
    if (list_empty(l))
        return NULL;
    node_t *n = l->head.next;
    list_unlink(n);
    return n;
}

/* Under the lock. */
static void node_put(sl_joinset_t *s, node_t *n)
{
    n->t = NULL;
    n->where = N_FREE;
    n->next = s->free;
    s->free = n;
}

/* Frees the set's memory. Nothing references it any more. */
static void set_destroy(sl_joinset_t *s)
{
    sl_runtime_t *rt = s->rt;
    size_t freed = 0;
    while (s->free) {
        node_t *n = s->free;
        s->free = n->next;
        sl__free(rt, n, sizeof *n);
        freed++;
    }
    SL__ASSERT(freed == s->nnodes, "joinset: entries leaked");
    sl__free(rt, s, sizeof *s);
}

int sl_joinset_new(sl_joinset_t **out)
{
    sl_runtime_t *rt = sl_runtime_current();
    SL__ASSERT(rt != NULL, "sl_joinset_new outside a runtime");
    sl_joinset_t *s = sl__calloc(rt, sizeof *s);
    if (!s)
        return SL_ENOMEM;
    s->rt = rt;
    sl__lock_init(&s->lock);
    list_init(&s->running);
    list_init(&s->done);
    list_init(&s->detached);
    *out = s;
    return 0;
}

/* Fills out from a done node (not a panicked one: its message is in the task). */
static void node_result(const node_t *n, sl_join_t *out)
{
    if (out) {
        out->status = (sl_task_status_t)n->status;
        out->value = n->value;
        out->id = n->id;
        out->message[0] = 0;
    }
}

/* Called by the runtime once the task has ended (any thread, no locks held), while the task is
 * still in this thread's cache. The outcome is copied into the entry (or straight into a waiting
 * join_next's sl_join_t) and the set's handle is dropped here, so the task is freed when its
 * worker reaps it, a moment later, instead of when join_next gets to it: in a batch of
 * thousands, by then the task had left every cache but L3 (spawn_join). Only a panicked task
 * keeps its handle, for its message. */
static void on_done(sl_task_t *t, void *arg)
{
    node_t *n = arg;
    sl_joinset_t *s = n->set;
    sl_waiter_t *wake = NULL;
    sl_task_t *drop = NULL;
    int panicked = t->status == SL_TASK_PANICKED;
    sl__lock(&s->lock);
    list_unlink(n);
    if (n->where == N_DETACHED) {
        n->t = NULL; /* the set dropped its handle at detach_all */
        node_put(s, n);
    } else {
        sl_waiter_t *w = s->waiters.head ? sl__waitq_claim_first(&s->waiters) : NULL;
        drop = t;
        if (w) {
            /* The claimed waiter has won: its result goes straight into its sl_join_t. */
            sl_join_t *out = w->clause->buf;
            if (out)
                sl__task_outcome(t, out);
            w->res = 0;
            w->wake_next = NULL;
            wake = w;
            node_put(s, n);
            if (--s->len == 0)
                sl__waitq_claim_all(&s->waiters, SL_EEMPTY, &wake);
        } else {
            n->status = t->status;
            n->value = sl__task_value(t);
            n->id = t->id;
            n->t = panicked ? t : NULL;
            if (panicked)
                drop = NULL;
            n->where = N_DONE;
            list_append(&s->done, n);
        }
    }
    int destroy = --s->nlive == 0 && s->freeing;
    sl__unlock(&s->lock);
    if (drop)
        sl_task_detach(drop); /* not the last reference: the runtime still holds the task */
    sl__waiters_wake(wake);
    if (destroy)
        set_destroy(s);
}

int sl_joinset_spawn_ex(sl_joinset_t *s, const sl_spawn_opts_t *opts, sl_task_fn fn, void *arg,
                        uint64_t *id)
{
    sl__self_checked("sl_joinset_spawn");
    /* Link the entry first: the task may start and end on another worker before sl__spawn
     * returns, and its on_done() needs to find the entry in "running". */
    sl__lock(&s->lock);
    SL__ASSERT(!s->freeing, "sl_joinset_spawn on a freed set");
    node_t *n = s->free;
    if (n) {
        s->free = n->next;
    } else {
        sl__unlock(&s->lock);
        n = sl__alloc(s->rt, sizeof *n);
        if (!n)
            return SL_ENOMEM;
        sl__lock(&s->lock);
        s->nnodes++;
    }
    n->t = NULL;
    n->set = s;
    n->where = N_RUNNING;
    list_append(&s->running, n);
    s->len++;
    s->nlive++;
    sl__unlock(&s->lock);

    /* n->t is set by the spawn before the task can run, so the lock is not needed again: on
     * success the node belongs to on_done() and a later owner call, not to us. */
    sl_task_t *t;
    int r = sl__spawn(opts, fn, arg, on_done, n, &n->t, id, &t);
    if (r) {
        sl__lock(&s->lock);
        list_unlink(n);
        node_put(s, n);
        s->len--;
        s->nlive--;
        sl__unlock(&s->lock);
        return r;
    }
    return 0;
}

int sl_joinset_spawn(sl_joinset_t *s, sl_task_fn fn, void *arg, uint64_t *id)
{
    return sl_joinset_spawn_ex(s, NULL, fn, arg, id);
}

/* ---- join_next as a waitable ------------------------------------------------------------- */

/* Under the lock: takes the oldest ended entry into out (1), or returns 0. A panicked task's
 * handle comes back in *panicked, to be joined outside the lock (its message); else NULL. */
static int take_done(sl_joinset_t *s, sl_join_t *out, sl_task_t **panicked)
{
    node_t *n = list_pop(&s->done);
    if (!n)
        return 0;
    *panicked = n->t;
    if (!n->t)
        node_result(n, out);
    node_put(s, n);
    s->len--;
    return 1;
}

static int jn_poll(sl_clause_t *c)
{
    sl_joinset_t *s = c->obj;
    sl_task_t *panicked = NULL;
    sl__lock(&s->lock);
    int r = take_done(s, c->buf, &panicked) ? 0 : s->len == 0 ? SL_EEMPTY : SL_EAGAIN;
    sl__unlock(&s->lock);
    if (panicked)
        sl_task_try_join(panicked, c->buf);
    return r;
}

static int jn_arm(sl_clause_t *c)
{
    sl_joinset_t *s = c->obj;
    int r = SL__ARMED;
    c->arg = 0;
    sl__lock(&s->lock);
    if (!list_empty(&s->done) || s->len == 0) {
        if (sl__claim_self(c)) {
            sl_task_t *panicked = NULL;
            c->w.res = take_done(s, c->buf, &panicked) ? 0 : SL_EEMPTY;
            c->arg = (uintptr_t)panicked;
            r = SL__DONE;
        } else {
            r = SL__LOST;
        }
    } else {
        sl__waitq_push(&s->waiters, &c->w);
    }
    sl__unlock(&s->lock);
    return r;
}

static void jn_disarm(sl_clause_t *c)
{
    sl_joinset_t *s = c->obj;
    sl__lock(&s->lock);
    sl__waitq_remove(&s->waiters, &c->w);
    sl__unlock(&s->lock);
}

/* The result is already in the caller's sl_join_t (by on_done or by our own arm), except for
 * a panicked task taken by the arm, whose message is filled here. */
static int jn_complete(sl_clause_t *c)
{
    sl_task_t *t = (sl_task_t *)c->arg;
    c->arg = 0;
    if (t) {
        int r = sl_task_try_join(t, c->buf);
        SL__ASSERT(r == 0, "joinset: a done entry's task has not ended");
    }
    return c->w.res;
}

static const struct sl_clause_ops jn_ops = {jn_poll, jn_arm, jn_disarm, jn_complete};

void sl_clause_joinset_join_next(sl_clause_t *c, sl_joinset_t *set, sl_join_t *out)
{
    sl__clause_init(c, &jn_ops, set, out, 0, 0);
}

int sl_joinset_join_next_until(sl_joinset_t *s, int64_t deadline, sl_join_t *out)
{
    sl_clause_t c;
    sl_clause_joinset_join_next(&c, s, out);
    return sl__wait1(&c, deadline);
}

int sl_joinset_join_next(sl_joinset_t *s, sl_join_t *out)
{
    return sl_joinset_join_next_until(s, SL_FOREVER, out);
}

int sl_joinset_try_join_next(sl_joinset_t *s, sl_join_t *out)
{
    sl_clause_t c;
    sl_clause_joinset_join_next(&c, s, out);
    return jn_poll(&c);
}

/* ---- Abort, shutdown, detach, free --------------------------------------------------------- */

/* Aborts the tasks of the running list without holding the lock across sl_task_abort(), which
 * may write to another worker's eventfd. The running nodes are moved to a private list and put
 * back one by one; on_done() can still unlink a node from the private list (it only touches the
 * node's neighbours, under the lock). A reference keeps each task alive while it is aborted. */
static int abort_where(sl_joinset_t *s, int all, uint64_t id)
{
    list_t mine;
    int found = 0;
    sl__lock(&s->lock);
    if (list_empty(&s->running)) {
        sl__unlock(&s->lock);
        return 0;
    }
    mine.head.next = s->running.head.next;
    mine.head.prev = s->running.head.prev;
    mine.head.next->prev = &mine.head;
    mine.head.prev->next = &mine.head;
    list_init(&s->running);
    node_t *n;
    while ((n = list_pop(&mine))) {
        list_append(&s->running, n);
        sl_task_t *t = n->t;
        if (!t || (!all && t->id != id))
            continue;
        found = 1;
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
        sl__unlock(&s->lock);
        sl_task_abort(t);
        sl_task_detach(t); /* drops our reference */
        sl__lock(&s->lock);
        if (!all) {
            /* Put the rest back in order. */
            while ((n = list_pop(&mine)))
                list_append(&s->running, n);
        }
    }
    sl__unlock(&s->lock);
    return found;
}

void sl_joinset_abort_all(sl_joinset_t *s)
{
    abort_where(s, 1, 0);
}

int sl_joinset_abort(sl_joinset_t *s, uint64_t id)
{
    if (abort_where(s, 0, id))
        return 0;
    int r = SL_ENOENT;
    sl__lock(&s->lock);
    for (node_t *n = s->done.head.next; n != &s->done.head; n = n->next)
        if (n->id == id)
            r = 0;
    sl__unlock(&s->lock);
    return r;
}

void sl_joinset_shutdown(sl_joinset_t *s)
{
    sl_task_t *self = sl__self_checked("sl_joinset_shutdown");
    /* Deterministic cleanup: neither the caller's cancellation nor its timeout scopes may cut
     * the drain short, or tasks would outlive the set. */
    int old = sl_task_shield(1);
    sl_timeout_t *scopes = self->timeouts;
    self->timeouts = NULL;
    sl_joinset_abort_all(s);
    int r;
    while ((r = sl_joinset_join_next(s, NULL)) == 0)
        ;
    SL__ASSERT(r == SL_EEMPTY, "joinset: shielded drain failed");
    self->timeouts = scopes;
    sl_task_shield(old);
}

void sl_joinset_detach_all(sl_joinset_t *s)
{
    sl_task_t *t;
    sl_waiter_t *wake = NULL;
    sl__lock(&s->lock);
    node_t *n;
    while ((n = list_pop(&s->running))) {
        SL__ASSERT(n->t != NULL, "sl_joinset_detach_all raced with a spawn into the same set");
        n->where = N_DETACHED;
        list_append(&s->detached, n);
        sl_task_detach(n->t); /* not the last reference: the task has not ended */
        n->t = NULL;
        s->len--;
    }
    /* Ended tasks: their entries go; a panicked task's handle is released outside the lock
     * (that may free it). */
    while (take_done(s, NULL, &t)) {
        if (!t)
            continue;
        sl__unlock(&s->lock);
        sl_task_detach(t);
        sl__lock(&s->lock);
    }
    SL__ASSERT(s->len == 0, "sl_joinset_detach_all raced with a spawn into the same set");
    sl__waitq_claim_all(&s->waiters, SL_EEMPTY, &wake);
    sl__unlock(&s->lock);
    sl__waiters_wake(wake);
}

void sl_joinset_free(sl_joinset_t *s)
{
    if (!s)
        return;
    sl__lock(&s->lock);
    size_t len = s->len;
    sl__unlock(&s->lock);
    if (len)
        sl_joinset_shutdown(s);
    sl__lock(&s->lock);
    SL__ASSERT(s->waiters.head == NULL, "sl_joinset_free while a task waits on the set");
    SL__ASSERT(s->len == 0, "sl_joinset_free raced with a spawn into the same set");
    s->freeing = 1;
    int destroy = s->nlive == 0;
    sl__unlock(&s->lock);
    if (destroy)
        set_destroy(s);
}

/* ---- join_all, len ------------------------------------------------------------------------- */

int sl_joinset_join_all(sl_joinset_t *s, void **values, size_t cap, size_t *n, sl_join_t *failed)
{
    sl__self_checked("sl_joinset_join_all");
    *n = 0;
    if (cap < sl_joinset_len(s))
        return SL_EINVAL;
    sl_join_t j;
    for (;;) {
        int r = sl_joinset_join_next(s, &j);
        if (r == SL_EEMPTY)
            return 0;
        if (r)
            return r;
        if (j.status != SL_TASK_RETURNED) {
            if (failed)
                *failed = j;
            sl_joinset_shutdown(s);
            return SL_EPANIC;
        }
        SL__ASSERT(*n < cap, "sl_joinset_join_all: more tasks than cap (spawned meanwhile?)");
        values[(*n)++] = j.value;
    }
}

size_t sl_joinset_len(sl_joinset_t *s)
{
    sl__lock(&s->lock);
    size_t len = s->len;
    sl__unlock(&s->lock);
    return len;
}

int sl_joinset_is_empty(sl_joinset_t *s)
{
    return sl_joinset_len(s) == 0;
}
