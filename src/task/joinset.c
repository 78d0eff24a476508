/*
 * JoinSet: tasks joined in completion order (tokio::task::JoinSet).
 *
 * Each task of the set has an entry (a node). The set's owner side (spawn, join_next, abort,
 * detach, free: any task, under the set's lock) keeps the nodes in lists: "running" from spawn
 * until the node is absorbed after its task ended, then "done" (in completion order) until it is
 * joined, or "detached" after sl_joinset_detach_all(). The runtime calls on_done() once per task,
 * after the task has ended and its sl_defer cleanups have run, from whichever thread ran it.
 *
 * on_done() does not take the lock in the common case: it copies the outcome into the node,
 * drops the set's handle to the task (a panicked task's handle stays in the node, for the
 * message) and pushes the node onto `completed`, a lock-free stack on a cache line of its own;
 * the owner side absorbs that stack into its lists under the lock (drain()). When a join_next
 * waits, the stack's word says so (COMPLETED_WAITING) and on_done() takes the lock instead, to
 * hand the outcome to the waiter (claim protocol: only a waiter whose claim succeeded gets it,
 * so a cancelled or losing join_next never loses a task). Before this, on_done() took the lock
 * and unlinked the node from "running", so on two workers the spawner and the other worker's
 * on_done() passed the lock, the node's neighbours and the list heads between cores on every
 * task (spawn_join). Joined nodes go to a free list owned by the set, so a set that has reached
 * its peak size allocates nothing more per task.
 *
 * The handle in a node: `hs` says who holds it. A node is PINNED while its spawn is in progress
 * and while sl_joinset_abort*() uses the handle without the lock; an on_done() that finds its
 * node pinned leaves its remaining work (handle, delivery) to the pinner, so a node is never
 * absorbed and recycled under a pinner's feet.
 *
 * Lifetime: on_done() uses the set after the task has ended, so the set's memory must outlive
 * every pending on_done(). A lock-free push is the last thing on_done() does with the set, and
 * the locked path decides under the lock. sl_joinset_free() swaps COMPLETED_FREEING into the
 * stack word and adds the number of on_done() calls still pending to `orphans`; each on_done()
 * that finds FREEING counts `orphans` down (possibly before the freer adds), and whoever brings
 * the count to zero frees the memory: the freer itself in the common case, or the last
 * on_done() of a detached task.
 */
#include <string.h>

#include "core/rt.h"

enum { N_RUNNING = 0, N_DONE = 1, N_DETACHED = 2, N_FREE = 3 };

/* Who holds the set's handle to a node's task (node_t.hs). */
enum {
    H_HELD = 0,    /* the set: the task has not ended */
    H_PINNED = 1,  /* a spawn in progress or an abort is using it; on_done() defers to it */
    H_ENDED = 2,   /* on_done() has run: it dropped the handle, or kept a panicked one in t */
    H_DROPPED = 3, /* detach_all() dropped it */
};

/* The `completed` word: a stack of nodes, or one of these (nodes are 8-aligned). */
#define COMPLETED_WAITING ((uintptr_t)1) /* empty, and a join_next waits: take the lock */
#define COMPLETED_FREEING ((uintptr_t)3) /* the set is being freed */
#define COMPLETED_TAGS    ((uintptr_t)3)

/* A node is two cache lines, and nodes come in slabs, cache-line aligned. The first line is
 * what the spawner fills and on_done() writes, on whichever worker ran the task; the second is
 * the owner side's list links, which no other worker writes, so that unlinking a node touches
 * neighbours whose lines the owner has already. (One malloc'ed node of 64 bytes per task put
 * most nodes across two lines that both crossed between cores: spawn_join's drain() missed
 * twice per task, and on_done() too.) */
typedef struct node {
    struct node *cnext; /* in the completed stack */
    struct node *skip;  /* pushed about SKIP pushes earlier: a prefetch hint for drain() */
    sl_task_t *t;       /* held: the handle; done: NULL, or a panicked task's handle */
    sl_joinset_t *set;
    void *value;    /* done: what it returned */
    uint64_t id;    /* the task's id, stored by the spawn */
    _Atomic int hs; /* H_* */
    short status;   /* done: how the task ended (sl_task_status_t) */
    short where;    /* N_* */
    char pad_[SL__CACHELINE - (size_t)7 * 8];
    struct node *next, *prev; /* in one of the set's lists (circular, with a sentinel) */
    char pad2_[SL__CACHELINE - 2 * sizeof(void *)];
} node_t;

_Static_assert(offsetof(node_t, next) == SL__CACHELINE && sizeof(node_t) == 2 * SL__CACHELINE,
               "a node is two cache lines, the owner's links on the second");

/* How far apart drain() prefetches along a completed chain (see node_t.skip). */
#define SKIP 4

/* A slab holds SLAB_MIN nodes, then as many as the set has, up to SLAB_MAX; slabs stay with
 * the set until it is destroyed. */
#define SLAB_MIN 4
#define SLAB_MAX 256

typedef struct slab {
    struct slab *next;
    size_t size; /* bytes allocated */
} slab_t;

typedef struct list {
    node_t head; /* sentinel: head.next is the oldest */
} list_t;

/* The set is cache-line aligned (see completed): it sits in its allocation at mem. */
struct sl_joinset {
    void *mem;
    sl_lock_t lock;
    sl_runtime_t *rt;
    list_t running, done, detached;
    node_t *free;       /* recycled nodes, singly linked through next */
    size_t len;         /* running + done (absorbed or not) */
    size_t nlive;       /* nodes not absorbed yet: their task's end has not been seen */
    size_t nnodes;      /* nodes in the slabs */
    slab_t *slabs;      /* where the nodes live, newest first */
    int freeing;        /* sl_joinset_free has begun (what completed says, for the owner side) */
    sl_waitq_t waiters; /* join_next clauses; non-empty exactly when completed is WAITING */
    /* Pushed by on_done() on other threads: a line of its own. */
    _Alignas(SL__CACHELINE) _Atomic uintptr_t completed;
    _Atomic long orphans; /* see the lifetime note above */
    /* The last SKIP nodes pushed, where each push takes its skip from. Only a hint: pushes that
     * race may overwrite each other's entries, and a stale skip costs one useless prefetch. */
    _Atomic unsigned npushed;
    _Atomic(node_t *) pushed[SKIP];
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
    /* A linked node's neighbours are never NULL (circular, with a sentinel); the analyzer
     * cannot follow that invariant across pops. */
    n->prev->next = n->next; // NOLINT(clang-analyzer-core.NullDereference)
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

/* Frees the set's memory. Nothing references it any more; the detached list holds the nodes of
 * detached tasks that ended after the set began to be freed. */
static void set_destroy(sl_joinset_t *s)
{
    sl_runtime_t *rt = s->rt;
    size_t freed = 0;
    node_t *n;
    while ((n = list_pop(&s->detached)))
        node_put(s, n);
    for (n = s->free; n; n = n->next)
        freed++;
    SL__ASSERT(freed == s->nnodes, "joinset: entries leaked");
    while (s->slabs) {
        slab_t *sb = s->slabs;
        s->slabs = sb->next;
        sl__free(rt, sb, sb->size);
    }
    void *mem = s->mem;
    sl__free(rt, mem, sizeof *s + SL__CACHELINE);
}

int sl_joinset_new(sl_joinset_t **out)
{
    sl_runtime_t *rt = sl_runtime_current();
    SL__ASSERT(rt != NULL, "sl_joinset_new outside a runtime");
    char *mem = sl__alloc(rt, sizeof(sl_joinset_t) + SL__CACHELINE);
    if (!mem)
        return SL_ENOMEM;
    sl_joinset_t *s = (sl_joinset_t *)(void *)(((uintptr_t)mem + SL__CACHELINE - 1) &
                                               ~(uintptr_t)(SL__CACHELINE - 1));
    memset(s, 0, sizeof *s);
    s->mem = mem;
    s->rt = rt;
    sl__lock_init(&s->lock);
    list_init(&s->running);
    list_init(&s->done);
    list_init(&s->detached);
    atomic_init(&s->completed, 0);
    atomic_init(&s->orphans, 0);
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

/* Under the lock: a node whose task has ended leaves "running" (or "detached") for "done" (or
 * the free list). A detached panicked task's handle is dropped here: nobody will join it. */
static void absorb(sl_joinset_t *s, node_t *n)
{
    list_unlink(n);
    s->nlive--;
    if (n->where == N_DETACHED) {
        if (n->t)
            sl_task_detach(n->t); /* not the last reference while its worker has not reaped it */
        node_put(s, n);
    } else {
        n->where = N_DONE;
        list_append(&s->done, n);
    }
}

/* Under the lock: absorbs everything on_done() pushed, in completion order. */
static void drain(sl_joinset_t *s)
{
    uintptr_t h = atomic_load_explicit(&s->completed, memory_order_relaxed);
    if (h <= COMPLETED_TAGS)
        return;
    /* Only pushes can change a stack word meanwhile (the tags are set under the lock). */
    h = atomic_exchange_explicit(&s->completed, 0, memory_order_acquire);
    node_t *rev = NULL;
    for (node_t *n = (node_t *)h; n;) {
        /* A chain of thousands (what the other worker ended while the owner spawned) is one
         * miss per node when walked alone; with the hint, SKIP of them are on their way. */
        if (n->skip)
            sl__prefetch_w(n->skip);
        node_t *next = n->cnext;
        n->cnext = rev;
        rev = n;
        n = next;
    }
    while (rev) {
        node_t *next = rev->cnext;
        absorb(s, rev);
        rev = next;
    }
}

/* Under the lock, after the waiters changed: COMPLETED_WAITING exactly while some wait. */
static void waiting_sync(sl_joinset_t *s)
{
    if (!s->waiters.head &&
        atomic_load_explicit(&s->completed, memory_order_relaxed) == COMPLETED_WAITING)
        atomic_store_explicit(&s->completed, 0, memory_order_relaxed);
}

/* Under the lock: takes the oldest done entry into out (1), or returns 0. A panicked task's
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

/* An on_done() that found the set being freed: the set only counts it. */
static void orphan(sl_joinset_t *s)
{
    if (atomic_fetch_sub_explicit(&s->orphans, 1, memory_order_acq_rel) == 1)
        set_destroy(s);
}

/* on_done() with a join_next waiting (or any state, under the lock): absorbs the node and hands
 * the oldest outcomes to waiters whose claim succeeds (straight into their sl_join_t; a
 * panicked task's handle goes in the clause's arg, for jn_complete). Returns 1 when the set
 * turned out to be being freed (the node is an orphan). */
static int deliver_locked(sl_joinset_t *s, node_t *n)
{
    sl_waiter_t *wake = NULL;
    sl__lock(&s->lock);
    if (atomic_load_explicit(&s->completed, memory_order_relaxed) == COMPLETED_FREEING) {
        sl__unlock(&s->lock);
        orphan(s);
        return 1;
    }
    drain(s);
    absorb(s, n);
    sl_waiter_t *w;
    while (!list_empty(&s->done) && (w = sl__waitq_claim_first(&s->waiters))) {
        sl_task_t *panicked = NULL;
        take_done(s, w->clause->buf, &panicked);
        w->clause->arg = (uintptr_t)panicked;
        w->res = 0;
        w->wake_next = wake;
        wake = w;
    }
    if (s->len == 0)
        sl__waitq_claim_all(&s->waiters, SL_EEMPTY, &wake);
    waiting_sync(s);
    sl__unlock(&s->lock);
    sl__waiters_wake(wake);
    return 0;
}

/* Hands a node whose task has ended to the owner side: a lock-free push, or the locked path
 * when a join_next waits. After this the node may be absorbed, joined and reused at once.
 * Returns 1 when the set is being freed (the node is an orphan). */
static int deliver(sl_joinset_t *s, node_t *n)
{
    uintptr_t h = atomic_load_explicit(&s->completed, memory_order_relaxed);
    for (;;) {
        if (h == COMPLETED_WAITING)
            return deliver_locked(s, n);
        if (h == COMPLETED_FREEING) {
            orphan(s);
            return 1;
        }
        n->cnext = (node_t *)h;
        unsigned i = atomic_load_explicit(&s->npushed, memory_order_relaxed) % SKIP;
        n->skip = atomic_load_explicit(&s->pushed[i], memory_order_relaxed);
        atomic_store_explicit(&s->pushed[i], n, memory_order_relaxed);
        atomic_store_explicit(&s->npushed, i + 1, memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&s->completed, &h, (uintptr_t)n,
                                                  memory_order_release, memory_order_relaxed))
            return 0;
    }
}

/* What on_done() leaves undone when it finds its node pinned: done by the pinner once it has
 * finished with the handle t (the lock not held). */
static void finish_ended(sl_joinset_t *s, node_t *n, sl_task_t *t)
{
    sl_task_t *keep = n->status == SL_TASK_PANICKED ? t : NULL;
    n->t = keep;
    if (deliver(s, n) && keep)
        sl_task_detach(keep); /* orphaned: nobody will join it */
    if (!keep)
        sl_task_detach(t);
}

/* Ends a pin taken on n (a spawn or an abort): the handle goes back to the set, or, if the task
 * ended meanwhile, on_done()'s remaining work is done here. */
static void unpin(sl_joinset_t *s, node_t *n, sl_task_t *t)
{
    int hs = H_PINNED;
    if (!atomic_compare_exchange_strong_explicit(&n->hs, &hs, H_HELD, memory_order_acq_rel,
                                                 memory_order_acquire))
        finish_ended(s, n, t); /* hs == H_ENDED */
}

/* Called by the runtime once the task has ended (any thread, no locks held), while the task is
 * still in this thread's cache. The outcome goes into the node and the set's handle is dropped
 * here, so the task is freed when its worker reaps it, a moment later, instead of when
 * join_next gets to it: in a batch of thousands, by then the task had left every cache but L3
 * (spawn_join). Only a panicked task keeps its handle, for its message. */
static void on_done(sl_task_t *t, void *arg)
{
    node_t *n = arg;
    sl_joinset_t *s = n->set;
    n->status = (short)t->status;
    n->value = sl__task_value(t);
    int old = atomic_exchange_explicit(&n->hs, H_ENDED, memory_order_acq_rel);
    if (old == H_PINNED)
        return; /* the pinner finishes (unpin) */
    if (old == H_DROPPED) {
        deliver(s, n); /* detached: no handle */
        return;
    }
    finish_ended(s, n, t);
}

/* Allocates a slab (see SLAB_MIN) and puts its nodes on the free list, lowest address first.
 * Takes the lock itself: not held on entry. */
static int slab_add(sl_joinset_t *s)
{
    size_t count = s->nnodes < SLAB_MIN ? SLAB_MIN : s->nnodes < SLAB_MAX ? s->nnodes : SLAB_MAX;
    /* The header, then the nodes from the next cache-line boundary. */
    size_t size = sizeof(slab_t) + SL__CACHELINE + count * sizeof(node_t);
    slab_t *sb = sl__alloc(s->rt, size);
    if (!sb)
        return SL_ENOMEM;
    sb->size = size;
    node_t *first = (node_t *)(void *)(((uintptr_t)(sb + 1) + SL__CACHELINE - 1) &
                                       ~(uintptr_t)(SL__CACHELINE - 1));
    sl__lock(&s->lock);
    sb->next = s->slabs;
    s->slabs = sb;
    for (size_t i = count; i-- > 0;) {
        first[i].where = N_FREE;
        first[i].next = s->free;
        s->free = &first[i];
    }
    s->nnodes += count;
    sl__unlock(&s->lock);
    return 0;
}

int sl_joinset_spawn_ex(sl_joinset_t *s, const sl_spawn_opts_t *opts, sl_task_fn fn, void *arg,
                        uint64_t *id)
{
    sl__self_checked("sl_joinset_spawn");
    /* Link the entry first: the task may start and end on another worker before sl__spawn
     * returns. The entry is pinned until then, so that its on_done() leaves the delivery to us
     * instead of letting the entry be joined and reused while we still write to it. */
    sl__lock(&s->lock);
    /* Not `completed`: its line is the other workers' (each on_done() pushes onto it), and
     * reading it here cost spawn_join's spawner a miss per task. */
    SL__ASSERT(!s->freeing, "sl_joinset_spawn on a freed set");
    node_t *n;
    while (!(n = s->free)) { /* other tasks spawning into the set may take the new nodes */
        sl__unlock(&s->lock);
        int r = slab_add(s);
        if (r)
            return r;
        sl__lock(&s->lock);
    }
    s->free = n->next;
    n->t = NULL;
    n->set = s;
    n->where = N_RUNNING;
    atomic_store_explicit(&n->hs, H_PINNED, memory_order_relaxed);
    list_append(&s->running, n);
    s->len++;
    s->nlive++;
    sl__unlock(&s->lock);

    /* sl__spawn stores the handle and the id in the entry before the task can run. */
    sl_task_t *t;
    int r = sl__spawn(opts, fn, arg, on_done, n, &n->t, &n->id, &t);
    if (r) {
        sl__lock(&s->lock);
        list_unlink(n);
        node_put(s, n);
        s->len--;
        s->nlive--;
        sl__unlock(&s->lock);
        return r;
    }
    if (id)
        *id = n->id; /* still ours: pinned */
    unpin(s, n, t);
    return 0;
}

int sl_joinset_spawn(sl_joinset_t *s, sl_task_fn fn, void *arg, uint64_t *id)
{
    return sl_joinset_spawn_ex(s, NULL, fn, arg, id);
}

/* ---- join_next as a waitable ------------------------------------------------------------- */

static int jn_poll(sl_clause_t *c)
{
    sl_joinset_t *s = c->obj;
    sl_task_t *panicked = NULL;
    sl__lock(&s->lock);
    /* What is absorbed already ended before anything on the stack: drain only once it is
     * used up, so that each drain takes a longer chain and the owner takes the stack's line
     * from the workers that push onto it less often. */
    if (list_empty(&s->done))
        drain(s);
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
    for (;;) {
        drain(s);
        if (!list_empty(&s->done) || s->len == 0) {
            if (sl__claim_self(c)) {
                sl_task_t *panicked = NULL;
                c->w.res = take_done(s, c->buf, &panicked) ? 0 : SL_EEMPTY;
                c->arg = (uintptr_t)panicked;
                r = SL__DONE;
            } else {
                r = SL__LOST;
            }
            break;
        }
        /* Tell on_done() to take the lock from now on. A push after the drain above makes
         * the exchange fail: drain again. */
        uintptr_t h = atomic_load_explicit(&s->completed, memory_order_relaxed);
        if (h == 0 &&
            !atomic_compare_exchange_strong_explicit(&s->completed, &h, COMPLETED_WAITING,
                                                     memory_order_relaxed, memory_order_relaxed))
            continue;
        if (h > COMPLETED_TAGS)
            continue;
        sl__waitq_push(&s->waiters, &c->w);
        break;
    }
    sl__unlock(&s->lock);
    return r;
}

static void jn_disarm(sl_clause_t *c)
{
    sl_joinset_t *s = c->obj;
    sl__lock(&s->lock);
    sl__waitq_remove(&s->waiters, &c->w);
    waiting_sync(s);
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
    return sl__wait1vp(&jn_ops, s, out, 0, 0, deadline);
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

/* Aborts the tasks of the running list without holding the lock across the abort, which may
 * write to another worker's eventfd. The running nodes are moved to a private list and put
 * back one by one. Each node is pinned while its task is aborted: the set's handle keeps the
 * task alive, and an on_done() meanwhile leaves its node to unpin() instead of delivering it.
 * Tasks are aborted in batches of up to ABORT_BATCH that share one barrier (sl__abort_barrier:
 * a membarrier system call when the runtime has several workers), so aborting a set of
 * thousands costs a few dozen system calls, not thousands. */
#define ABORT_BATCH 64

static int abort_where(sl_joinset_t *s, int all, uint64_t id)
{
    list_t mine;
    node_t *batch[ABORT_BATCH];
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
    for (;;) {
        int nb = 0;
        node_t *n;
        while (nb < ABORT_BATCH && (n = list_pop(&mine))) {
            list_append(&s->running, n);
            int hs = H_HELD;
            /* Not pinnable: ended (its outcome is on its way), detached, or being spawned. */
            if (atomic_load_explicit(&n->hs, memory_order_acquire) != H_HELD ||
                (!all && n->id != id) ||
                !atomic_compare_exchange_strong_explicit(
                    &n->hs, &hs, H_PINNED, memory_order_acquire, memory_order_relaxed))
                continue;
            batch[nb++] = n;
            if (!all)
                break;
        }
        if (nb == 0)
            break;
        found = 1;
        if (!all) {
            /* Put the rest back in order. */
            while ((n = list_pop(&mine)))
                list_append(&s->running, n);
        }
        sl__unlock(&s->lock);
        uint64_t marked = 0; /* bit i: batch[i]'s task had not ended */
        _Static_assert(ABORT_BATCH <= 64, "one bit per batch entry");
        for (int i = 0; i < nb; i++)
            if (sl__abort_mark(batch[i]->t))
                marked |= (uint64_t)1 << i;
        if (marked)
            sl__abort_barrier(s->rt);
        for (int i = 0; i < nb; i++) {
            sl_task_t *t = batch[i]->t;
            if (marked & ((uint64_t)1 << i))
                sl__abort_claim(t);
            unpin(s, batch[i], t);
        }
        sl__lock(&s->lock);
        if (!all)
            break;
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
    drain(s);
    for (node_t *n = s->done.head.next; n != &s->done.head; n = n->next)
        if (n->id == id)
            r = 0;
    for (node_t *n = s->running.head.next; n != &s->running.head; n = n->next)
        if (n->id == id && atomic_load_explicit(&n->hs, memory_order_acquire) == H_ENDED)
            r = 0; /* ended, its outcome on its way: as good as done */
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
    drain(s);
    node_t *n;
    while ((n = list_pop(&s->running))) {
        int hs = H_HELD;
        if (atomic_compare_exchange_strong_explicit(&n->hs, &hs, H_DROPPED, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            sl_task_detach(n->t); /* not the last reference: the task has not ended */
            n->t = NULL;
        }
        /* Else it ended (on_done() holds or dropped the handle and will deliver the node) or
         * is pinned (the pinner gives the handle back, and on_done() drops it): absorb()
         * finishes either on the detached list. */
        n->where = N_DETACHED;
        list_append(&s->detached, n);
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
    waiting_sync(s);
    sl__unlock(&s->lock);
    sl__waiters_wake(wake);
}

void sl_joinset_free(sl_joinset_t *s)
{
    if (!s)
        return;
    sl__lock(&s->lock);
    drain(s);
    size_t len = s->len;
    sl__unlock(&s->lock);
    if (len)
        sl_joinset_shutdown(s);
    sl__lock(&s->lock);
    SL__ASSERT(s->waiters.head == NULL, "sl_joinset_free while a task waits on the set");
    SL__ASSERT(s->len == 0, "sl_joinset_free raced with a spawn into the same set");
    /* From here on_done() only counts (orphan()); what was pushed before is absorbed now. */
    uintptr_t h = atomic_exchange_explicit(&s->completed, COMPLETED_FREEING, memory_order_acquire);
    s->freeing = 1;
    SL__ASSERT(h != COMPLETED_WAITING && h != COMPLETED_FREEING, "joinset: freed twice?");
    for (node_t *n = (node_t *)h; n;) {
        node_t *next = n->cnext;
        absorb(s, n);
        n = next;
    }
    long pending = (long)s->nlive;
    sl__unlock(&s->lock);
    if (pending == 0 ||
        atomic_fetch_add_explicit(&s->orphans, pending, memory_order_acq_rel) + pending == 0)
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
    drain(s);
    size_t len = s->len;
    sl__unlock(&s->lock);
    return len;
}

int sl_joinset_is_empty(sl_joinset_t *s)
{
    return sl_joinset_len(s) == 0;
}
