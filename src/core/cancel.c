/*
 * Cancellation tokens (tokio-util's CancellationToken).
 *
 * A token tree shares one lock: creating a child, dropping a node and triggering all happen
 * under it, so a trigger walks the subtree without lock-ordering puzzles. As in tokio-util,
 * dropping a node (its last reference) hands its children to its own parent, so a grandparent
 * still reaches them; dropping a root leaves its children as roots.
 */
#include <string.h>

#include "core/rt.h"

typedef struct cancel_tree {
    sl_lock_t lock;
    long nodes; /* under lock */
} cancel_tree_t;

struct sl_cancel {
    _Atomic long refs;
    _Atomic int triggered;
    cancel_tree_t *tree;
    sl_runtime_t *rt;
    sl_cancel_t *parent;
    sl_cancel_t *child;    /* first child */
    sl_cancel_t *sib_next; /* siblings */
    sl_cancel_t *sib_prev;
    sl_waitq_t waiters;
};

static sl_cancel_t *node_new(sl_runtime_t *rt)
{
    sl_cancel_t *c = sl__calloc(rt, sizeof *c);
    if (c) {
        c->rt = rt;
        atomic_store(&c->refs, 1);
    }
    return c;
}

int sl_cancel_new(sl_cancel_t **out)
{
    sl_runtime_t *rt = sl_runtime_current();
    sl_cancel_t *c = node_new(rt);
    if (!c)
        return SL_ENOMEM;
    c->tree = sl__calloc(rt, sizeof *c->tree);
    if (!c->tree) {
        sl__free(rt, c, sizeof *c);
        return SL_ENOMEM;
    }
    c->tree->nodes = 1;
    *out = c;
    return 0;
}

static void link_child(sl_cancel_t *parent, sl_cancel_t *c)
{
    c->parent = parent;
    c->sib_prev = NULL;
    c->sib_next = parent->child;
    if (parent->child)
        parent->child->sib_prev = c;
    parent->child = c;
}

static void unlink_child(sl_cancel_t *c)
{
    if (!c->parent)
        return;
    if (c->sib_prev)
        c->sib_prev->sib_next = c->sib_next;
    else
        c->parent->child = c->sib_next;
    if (c->sib_next)
        c->sib_next->sib_prev = c->sib_prev;
    c->parent = c->sib_next = c->sib_prev = NULL;
}

/* Under the tree lock: triggers c and its subtree, collecting waiters to wake. */
static void trigger_locked(sl_cancel_t *c, sl_waiter_t **wake)
{
    if (!atomic_load_explicit(&c->triggered, memory_order_relaxed)) {
        atomic_store_explicit(&c->triggered, 1, memory_order_release);
        sl__waitq_claim_all(&c->waiters, 0, wake);
    }
    for (sl_cancel_t *k = c->child; k; k = k->sib_next)
        trigger_locked(k, wake);
}

int sl_cancel_child(sl_cancel_t *parent, sl_cancel_t **out)
{
    sl_cancel_t *c = node_new(parent->rt);
    if (!c)
        return SL_ENOMEM;
    sl_waiter_t *wake = NULL;
    c->tree = parent->tree;
    sl__lock(&c->tree->lock);
    c->tree->nodes++;
    link_child(parent, c);
    if (atomic_load_explicit(&parent->triggered, memory_order_relaxed))
        trigger_locked(c, &wake);
    sl__unlock(&c->tree->lock);
    *out = c;
    return 0;
}

sl_cancel_t *sl_cancel_clone(sl_cancel_t *tok)
{
    atomic_fetch_add_explicit(&tok->refs, 1, memory_order_relaxed);
    return tok;
}

void sl_cancel_drop(sl_cancel_t *tok)
{
    if (!tok)
        return;
    if (atomic_fetch_sub_explicit(&tok->refs, 1, memory_order_acq_rel) != 1)
        return;
    cancel_tree_t *tree = tok->tree;
    sl__lock(&tree->lock);
    SL__ASSERT(tok->waiters.head == NULL, "cancellation token dropped while a task waits on it");
    /* Hand the children to our parent (or make them roots). */
    sl_cancel_t *parent = tok->parent;
    unlink_child(tok);
    while (tok->child) {
        sl_cancel_t *k = tok->child;
        unlink_child(k);
        if (parent)
            link_child(parent, k);
    }
    long left = --tree->nodes;
    sl__unlock(&tree->lock);
    sl_runtime_t *rt = tok->rt;
    if (left == 0)
        sl__free(rt, tree, sizeof *tree);
    sl__free(rt, tok, sizeof *tok);
}

void sl_cancel_trigger(sl_cancel_t *tok)
{
    sl_waiter_t *wake = NULL;
    sl__lock(&tok->tree->lock);
    trigger_locked(tok, &wake);
    sl__unlock(&tok->tree->lock);
    sl__waiters_wake(wake);
}

int sl_cancel_is_triggered(const sl_cancel_t *tok)
{
    return atomic_load_explicit(&((sl_cancel_t *)tok)->triggered, memory_order_acquire);
}

/* ---- As a waitable -----------------------------------------------------------------------------
 */

static int cancel_poll(sl_clause_t *c)
{
    return sl_cancel_is_triggered(c->obj) ? 0 : SL_EAGAIN;
}

static int cancel_ready(const void *obj)
{
    return atomic_load_explicit(&((sl_cancel_t *)obj)->triggered, memory_order_relaxed);
}

static int cancel_arm(sl_clause_t *c)
{
    sl_cancel_t *tok = c->obj;
    return sl__arm_cond(c, &tok->tree->lock, &tok->waiters, cancel_ready);
}

static void cancel_disarm(sl_clause_t *c)
{
    sl_cancel_t *tok = c->obj;
    sl__disarm_cond(c, &tok->tree->lock, &tok->waiters);
}

static const struct sl_clause_ops cancel_ops = {cancel_poll, cancel_arm, cancel_disarm, NULL};

void sl_clause_cancelled(sl_clause_t *c, sl_cancel_t *tok)
{
    sl__clause_init(c, &cancel_ops, tok, NULL, 0, 0);
}

int sl_cancel_wait_until(sl_cancel_t *tok, int64_t deadline)
{
    sl_clause_t c;
    sl_clause_cancelled(&c, tok);
    return sl__wait1(&c, deadline);
}

int sl_cancel_wait(sl_cancel_t *tok)
{
    return sl_cancel_wait_until(tok, SL_FOREVER);
}
