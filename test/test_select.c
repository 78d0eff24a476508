/* Select and cancellation tokens: biased and fair, no trace left by losers, deadlines. */
#include <sluice.h>

#include "test.h"
#include "test_rt.h"

static void *wait_on(void *arg);

static void *ret1(void *arg)
{
    (void)arg;
    return (void *)1;
}

static void *main_biased(void *arg)
{
    (void)arg;
    sl_cancel_t *a, *b;
    ASSERT_OK(sl_cancel_new(&a));
    ASSERT_OK(sl_cancel_new(&b));
    sl_cancel_trigger(a);
    sl_cancel_trigger(b);
    sl_clause_t c[2];
    for (int i = 0; i < 100; i++) {
        sl_clause_cancelled(&c[0], a);
        sl_clause_cancelled(&c[1], b);
        ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
        ASSERT_EQ(c[0].res, 0);
    }
    /* Fair: both ready clauses win sometimes. */
    int wins[2] = {0, 0};
    for (int i = 0; i < 400; i++) {
        sl_clause_cancelled(&c[0], a);
        sl_clause_cancelled(&c[1], b);
        int r = sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER);
        ASSERT_GE(r, 0);
        wins[r]++;
    }
    ASSERT_GT(wins[0], 50);
    ASSERT_GT(wins[1], 50);
    sl_cancel_drop(a);
    sl_cancel_drop(b);
    return NULL;
}

SL_TEST(select_biased_and_fair)
{
    test_run(1, main_biased, NULL);
}

/* The join clause that loses does not consume the handle; the one that wins does. */
static void *main_no_trace(void *arg)
{
    (void)arg;
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(ret1, NULL, &t));
    ASSERT_OK(sl_task_yield()); /* t has finished */
    sl_cancel_trigger(tok);
    sl_clause_t c[2];
    sl_join_t j;
    sl_clause_cancelled(&c[0], tok);
    sl_clause_join(&c[1], t, &j);
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 0);
    /* The handle is untouched: a real join still works and gives the value. */
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((uintptr_t)j.value, 1);

    /* Now waiting: a sleep clause wins over a join of a task that never ends; the waiter
     * registered on the task is removed (the task can be joined later). */
    sl_cancel_t *never;
    ASSERT_OK(sl_cancel_new(&never));
    sl_task_t *w;
    ASSERT_OK(sl_task_spawn(wait_on, never, &w));
    sl_clause_join(&c[0], w, &j);
    sl_clause_sleep_until(&c[1], sl_deadline_in(2 * SL_MSEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER), 1);
    ASSERT_EQ(c[1].res, 0);
    sl_cancel_trigger(never);
    ASSERT_OK(sl_task_join(w, &j));
    ASSERT_EQ(j.status, SL_TASK_RETURNED);
    sl_cancel_drop(never);
    sl_cancel_drop(tok);
    return NULL;
}

static void *wait_on(void *arg)
{
    ASSERT_OK(sl_cancel_wait(arg));
    return NULL;
}

SL_TEST(select_leaves_no_trace)
{
    test_run(1, main_no_trace, NULL);
    test_run(2, main_no_trace, NULL);
}

static void *main_deadline(void *arg)
{
    (void)arg;
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    sl_clause_t c[2];
    sl_clause_cancelled(&c[0], tok);
    sl_clause_none(&c[1]);
    ASSERT_ERR(sl_select(c, 2, SL_SELECT_BIASED, sl_deadline_in(3 * SL_MSEC)), SL_ETIMEDOUT);
    ASSERT_ERR(sl_select(c, 0, 0, SL_FOREVER), SL_EINVAL);
    /* All clauses disabled: waits for the deadline only. */
    sl_clause_none(&c[0]);
    ASSERT_ERR(sl_select(c, 2, SL_SELECT_BIASED, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    /* Inside an expired scope. */
    sl_timeout_t to;
    sl_timeout_enter(&to, sl_deadline_in(2 * SL_MSEC));
    sl_clause_cancelled(&c[0], tok);
    sl_clause_cancelled(&c[1], tok);
    ASSERT_ERR(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), SL_ETIMEDOUT);
    ASSERT_ERR(sl_timeout_exit(&to), SL_ETIMEDOUT);
    sl_cancel_drop(tok);
    return NULL;
}

SL_TEST(select_deadline)
{
    test_run(1, main_deadline, NULL);
}

/* A task cancelled while in a select gets SL_ECANCELED and no clause completes. */
static void *selector(void *arg)
{
    sl_cancel_t *tok = arg;
    sl_clause_t c[2];
    sl_clause_cancelled(&c[0], tok);
    sl_clause_sleep_until(&c[1], sl_deadline_in(3600 * SL_SEC));
    return (void *)(intptr_t)sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER);
}

static void *main_cancel_select(void *arg)
{
    (void)arg;
    sl_cancel_t *tok;
    ASSERT_OK(sl_cancel_new(&tok));
    sl_task_t *t;
    ASSERT_OK(sl_task_spawn(selector, tok, &t));
    ASSERT_OK(sl_sleep(SL_MSEC));
    sl_task_abort(t);
    sl_join_t j;
    ASSERT_OK(sl_task_join(t, &j));
    ASSERT_EQ((intptr_t)j.value, SL_ECANCELED);
    sl_cancel_drop(tok);
    return NULL;
}

SL_TEST(select_cancelled)
{
    test_run(1, main_cancel_select, NULL);
    test_run(2, main_cancel_select, NULL);
}

/* ---- cancellation tokens ---- */

static void *main_tokens(void *arg)
{
    (void)arg;
    sl_cancel_t *root, *child, *grandchild, *other;
    ASSERT_OK(sl_cancel_new(&root));
    ASSERT_OK(sl_cancel_child(root, &child));
    ASSERT_OK(sl_cancel_child(child, &grandchild));
    ASSERT_OK(sl_cancel_new(&other));
    /* Triggering a child leaves the parent alone. */
    sl_cancel_t *c2;
    ASSERT_OK(sl_cancel_child(root, &c2));
    sl_cancel_trigger(c2);
    ASSERT(sl_cancel_is_triggered(c2));
    ASSERT(!sl_cancel_is_triggered(root));
    /* Waiters on the grandchild wake when the root is triggered. */
    sl_task_t *w[3];
    ASSERT_OK(sl_task_spawn(wait_on, grandchild, &w[0]));
    ASSERT_OK(sl_task_spawn(wait_on, child, &w[1]));
    ASSERT_OK(sl_task_spawn(wait_on, root, &w[2]));
    ASSERT_OK(sl_sleep(SL_MSEC));
    /* Dropping the middle node hands its child to the root. */
    sl_cancel_t *clone = sl_cancel_clone(child);
    sl_cancel_drop(clone);
    ASSERT(!sl_cancel_is_triggered(grandchild));
    sl_cancel_trigger(root);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(sl_task_join(w[i], NULL));
    ASSERT(sl_cancel_is_triggered(grandchild));
    ASSERT(!sl_cancel_is_triggered(other));
    /* A child of a triggered token starts triggered. */
    sl_cancel_t *late;
    ASSERT_OK(sl_cancel_child(root, &late));
    ASSERT(sl_cancel_is_triggered(late));
    ASSERT_OK(sl_cancel_wait(late));
    ASSERT_ERR(sl_cancel_wait_until(other, sl_deadline_in(SL_MSEC)), SL_ETIMEDOUT);
    sl_cancel_drop(late);
    sl_cancel_drop(c2);
    sl_cancel_drop(grandchild);
    sl_cancel_drop(child);
    sl_cancel_drop(root);
    sl_cancel_drop(other);
    return NULL;
}

SL_TEST(cancel_token_tree)
{
    test_run(1, main_tokens, NULL);
    test_run(2, main_tokens, NULL);
}

static void *main_token_reparent(void *arg)
{
    (void)arg;
    sl_cancel_t *root, *mid, *leaf;
    ASSERT_OK(sl_cancel_new(&root));
    ASSERT_OK(sl_cancel_child(root, &mid));
    ASSERT_OK(sl_cancel_child(mid, &leaf));
    sl_cancel_drop(mid); /* leaf now hangs from root */
    sl_cancel_trigger(root);
    ASSERT(sl_cancel_is_triggered(leaf));
    sl_cancel_drop(leaf);
    sl_cancel_drop(root);
    return NULL;
}

SL_TEST(cancel_token_drop_reparents)
{
    test_run(1, main_token_reparent, NULL);
}
