/* Signals: real kill() to this process; the waiting tasks wake and the process lives on. */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <sluice.h>

#include "test.h"
#include "test_rt.h"

static int64_t ms(int64_t n)
{
    return n * SL_MSEC * test_scale();
}

/* Tasks count themselves here just before they block; settle() waits for n of them, then
 * gives them a moment to park. */
static atomic_int started;

static void settle(int n)
{
    while (atomic_load(&started) < n)
        ASSERT_OK(sl_sleep(SL_MSEC));
    ASSERT_OK(sl_sleep(ms(10)));
    atomic_store(&started, 0);
}

static void *wait_sig(void *arg)
{
    int signo = (int)(intptr_t)arg;
    atomic_fetch_add(&started, 1);
    return (void *)(intptr_t)sl_signal_wait_until(signo, sl_deadline_in(30 * SL_SEC));
}

/* A task waits (on the last worker); the signal reaches it. */
static void kill_and_wake(int signo)
{
    int workers = sl_runtime_workers(sl_runtime_current());
    sl_task_t *t = test_spawn_on(workers - 1, wait_sig, (void *)(intptr_t)signo);
    /* Give it time to park; if it has not, the signal stays pending and is not lost either.
     * Listening here first makes sure the signal can never hit its default action. */
    ASSERT_OK(sl_signal_listen(signo));
    settle(1);
    ASSERT_EQ(kill(getpid(), signo), 0);
    sl_join_t j = test_join(t);
    ASSERT_EQ(j.status, SL_TASK_RETURNED);
    ASSERT_EQ((intptr_t)j.value, 0);
}

static void *main_three(void *arg)
{
    (void)arg;
    kill_and_wake(SIGTERM);
    kill_and_wake(SIGINT);
    kill_and_wake(SIGHUP);
    return NULL;
}

SL_TEST(sigterm_sigint_sighup)
{
    test_run(1, main_three, NULL);
}

SL_TEST(sigterm_sigint_sighup_2workers)
{
    test_run(2, main_three, NULL);
}

/* Listening started, the signal arrives, then the wait: it is not lost. */
static void *main_before_wait(void *arg)
{
    (void)arg;
    ASSERT_OK(sl_signal_listen(SIGTERM));
    ASSERT_EQ(kill(getpid(), SIGTERM), 0);
    ASSERT_OK(sl_sleep(ms(5)));
    ASSERT_OK(sl_signal_wait_until(SIGTERM, sl_deadline_in(30 * SL_SEC)));
    /* Consumed: nothing more is pending. */
    ASSERT_ERR(sl_signal_try_wait(SIGTERM), SL_EAGAIN);
    ASSERT_ERR(sl_signal_wait_until(SIGTERM, sl_deadline_in(ms(5))), SL_ETIMEDOUT);
    /* Without the sleep: the byte may still sit in the pipe when the wait starts. */
    ASSERT_EQ(kill(getpid(), SIGTERM), 0);
    ASSERT_OK(sl_signal_wait_until(SIGTERM, sl_deadline_in(30 * SL_SEC)));
    return NULL;
}

SL_TEST(signal_before_wait_not_lost)
{
    test_run(1, main_before_wait, NULL);
}

SL_TEST(signal_before_wait_not_lost_2workers)
{
    test_run(2, main_before_wait, NULL);
}

/* Every waiter of a signal wakes (broadcast). */
static void *main_broadcast(void *arg)
{
    (void)arg;
    ASSERT_OK(sl_signal_listen(SIGUSR1));
    sl_task_t *t[6];
    for (int i = 0; i < 6; i++)
        t[i] = test_spawn_on(i % 2, wait_sig, (void *)(intptr_t)SIGUSR1);
    settle(6);
    ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
    for (int i = 0; i < 6; i++) {
        sl_join_t j = test_join(t[i]);
        ASSERT_EQ(j.status, SL_TASK_RETURNED);
        ASSERT_EQ((intptr_t)j.value, 0);
    }
    return NULL;
}

SL_TEST(broadcast_to_every_waiter)
{
    test_run(2, main_broadcast, NULL);
}

/* Cancellation, deadlines, bad signals, select. */
static void *main_misc(void *arg)
{
    (void)arg;
    ASSERT_ERR(sl_signal_wait(SIGKILL), SL_EINVAL);
    ASSERT_ERR(sl_signal_listen(SIGSEGV), SL_EINVAL);
    ASSERT_ERR(sl_signal_wait_until(SIGUSR2, sl_deadline_in(ms(5))), SL_ETIMEDOUT);

    sl_task_t *t = test_spawn_on(0, wait_sig, (void *)(intptr_t)SIGUSR2);
    settle(1);
    sl_task_abort(t);
    sl_join_t j = test_join(t);
    ASSERT_EQ(j.status, SL_TASK_CANCELLED);
    ASSERT_EQ((intptr_t)j.value, SL_ECANCELED);

    sl_clause_t c[2];
    for (int i = 0; i < 10; i++) {
        sl_clause_signal(&c[0], SIGQUIT);
        sl_clause_sleep_until(&c[1], sl_deadline_in(SL_MSEC / 2));
        ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 1);
    }
    ASSERT_EQ(kill(getpid(), SIGQUIT), 0);
    sl_clause_signal(&c[0], SIGQUIT);
    sl_clause_sleep_until(&c[1], sl_deadline_in(30 * SL_SEC));
    ASSERT_EQ(sl_select(c, 2, SL_SELECT_FAIR, SL_FOREVER), 0);
    ASSERT_EQ(c[0].res, 0);
    ASSERT_ERR(sl_signal_try_wait(SIGQUIT), SL_EAGAIN);
    return NULL;
}

SL_TEST(cancel_deadline_select)
{
    test_run(2, main_misc, NULL);
}

/* Two runtimes in a row: the second registers the pipe afresh. */
static void *main_second(void *arg)
{
    (void)arg;
    kill_and_wake(SIGHUP);
    return NULL;
}

SL_TEST(two_runtimes_in_a_row)
{
    test_run(2, main_second, NULL);
    test_run(1, main_second, NULL);
}
