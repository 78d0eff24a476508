/*
 * The internal spinlock's bias (src/util/lock.h): a lock one thread keeps taking becomes that
 * thread's and is then taken without a locked instruction; another thread that wants it makes
 * it shared first. These cases use plain threads and the internal header: what they check is
 * mutual exclusion across the change of hands, which the public primitives only exercise by
 * chance.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sluice.h>

#include "core/rt.h"
#include "util/plock.h"

#include "test.h"
#include "test_rt.h"

static int bias_on(void)
{
    sl__asym_init();
    return sl__asym;
}

static unsigned char lock_state(sl_lock_t *l)
{
    return __atomic_load_n(&l->state, __ATOMIC_ACQUIRE);
}

/* ---- a lock taken by one thread only becomes biased, and stays exclusive ---- */

SL_TEST(lock_biases_after_a_streak)
{
    int biased = bias_on(); /* decided before the streak: without membarrier nothing counts */
    sl_lock_t l;
    sl__lock_init(&l);
    for (int i = 0; i < SL__LOCK_BIAS_AFTER - 1; i++) {
        sl__lock(&l);
        ASSERT_EQ(l.word, 1); /* taken by the word while not biased */
        sl__unlock(&l);
    }
    ASSERT_EQ(lock_state(&l), SL__LOCK_UNBIASED);
    sl__lock(&l);
    sl__unlock(&l);
    if (!biased) {
        /* No membarrier (valgrind, an old kernel): locks stay plain. */
        ASSERT_EQ(lock_state(&l), SL__LOCK_UNBIASED);
        return;
    }
    ASSERT_EQ(lock_state(&l), SL__LOCK_BIASED);
    /* From now on the owner holds it without the word. */
    sl__lock(&l);
    ASSERT_EQ(l.word, 0);
    ASSERT_EQ_U(l.in, sl__tid);
    sl__unlock(&l);
    ASSERT_EQ(l.in, 0);
}

/* ---- another thread's first lock revokes the bias while the owner is inside ----
 * The owner holds the biased lock and waits (yielding, no timing) until the other thread has
 * started its lock; the other thread must not get in before the owner lets go. */

typedef struct revoke_case {
    sl_lock_t l;
    atomic_int other_started, other_inside, owner_done;
} revoke_case_t;

static void *revoke_other(void *arg)
{
    revoke_case_t *c = arg;
    atomic_store(&c->other_started, 1);
    sl__lock(&c->l);
    /* The owner left before we got in. */
    ASSERT_EQ(atomic_load(&c->owner_done), 1);
    atomic_store(&c->other_inside, 1);
    sl__unlock(&c->l);
    return NULL;
}

SL_TEST(lock_revoke_waits_for_owner_inside)
{
    if (!bias_on())
        TEST_SKIP("no membarrier: locks are never biased");
    revoke_case_t c;
    memset(&c, 0, sizeof c);
    sl__lock_init(&c.l);
    for (int i = 0; i < SL__LOCK_BIAS_AFTER; i++) {
        sl__lock(&c.l);
        sl__unlock(&c.l);
    }
    ASSERT_EQ(lock_state(&c.l), SL__LOCK_BIASED);
    sl__lock(&c.l); /* by the fast path */
    ASSERT_EQ_U(c.l.in, sl__tid);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, revoke_other, &c), 0);
    while (!atomic_load(&c.other_started))
        sched_yield();
    /* Give the other thread every chance to get in wrongly: it has taken the word and is
     * waiting for us (the lock is shared by now), or is about to. */
    while (lock_state(&c.l) != SL__LOCK_SHARED)
        sched_yield();
    for (int i = 0; i < 1000; i++)
        sched_yield();
    ASSERT_EQ(atomic_load(&c.other_inside), 0);
    atomic_store(&c.owner_done, 1);
    sl__unlock(&c.l);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_EQ(atomic_load(&c.other_inside), 1);
    ASSERT_EQ(lock_state(&c.l), SL__LOCK_SHARED);
    /* Shared for good: the former owner now takes the word too. */
    for (int i = 0; i < 2 * SL__LOCK_BIAS_AFTER; i++) {
        sl__lock(&c.l);
        ASSERT_EQ(c.l.word, 1);
        ASSERT_EQ(c.l.in, 0);
        sl__unlock(&c.l);
    }
    ASSERT_EQ(lock_state(&c.l), SL__LOCK_SHARED);
}

/* ---- two threads hammer a lock that one of them had biased ----
 * A plain counter incremented under the lock must count every increment, across the
 * revocation and after it, round after round with a fresh lock each time (the revocation
 * happens at a different point of the owner's loop each round). */

#define HAMMER_ROUNDS 200
#define HAMMER_ITERS  2000

typedef struct hammer {
    sl_lock_t l;
    long counter; /* plain: only the lock protects it */
    atomic_int go;
} hammer_t;

/* A read-modify-write that takes a while, so that the other thread's revocation often finds
 * the owner inside, and an exclusion that fails loses increments. */
static void hammer_inc(hammer_t *h)
{
    long v = h->counter;
    for (int k = 0; k < 16; k++)
        sl__cpu_relax();
    h->counter = v + 1;
}

static void *hammer_thread(void *arg)
{
    hammer_t *h = arg;
    while (!atomic_load(&h->go))
        sched_yield();
    for (int i = 0; i < HAMMER_ITERS; i++) {
        sl__lock(&h->l);
        hammer_inc(h);
        sl__unlock(&h->l);
    }
    return NULL;
}

SL_TEST(lock_exclusive_across_revocation)
{
    int biased = bias_on();
    int rounds = HAMMER_ROUNDS / (test_scale() > 1 ? test_scale() : 1);
    for (int r = 0; r < rounds; r++) {
        hammer_t h;
        memset(&h, 0, sizeof h);
        sl__lock_init(&h.l);
        for (int i = 0; i < SL__LOCK_BIAS_AFTER; i++) {
            sl__lock(&h.l);
            hammer_inc(&h);
            sl__unlock(&h.l);
        }
        if (biased)
            ASSERT_EQ(lock_state(&h.l), SL__LOCK_BIASED);
        pthread_t th;
        ASSERT_EQ(pthread_create(&th, NULL, hammer_thread, &h), 0);
        atomic_store(&h.go, 1);
        /* The owner keeps taking it by the fast path until the other thread revokes. */
        for (int i = 0; i < HAMMER_ITERS; i++) {
            sl__lock(&h.l);
            hammer_inc(&h);
            sl__unlock(&h.l);
        }
        ASSERT_EQ(pthread_join(th, NULL), 0);
        ASSERT_EQ(h.counter, SL__LOCK_BIAS_AFTER + 2L * HAMMER_ITERS);
        if (biased)
            ASSERT_EQ(lock_state(&h.l), SL__LOCK_SHARED);
        ASSERT_EQ(h.l.word, 0);
        ASSERT_EQ(h.l.in, 0);
    }
}

/* ---- a trylock from another thread revokes too ----
 * Thieves take a worker's queue lock with a trylock; a queue lock biased to its worker must
 * still let them in. */

static void *trylock_other(void *arg)
{
    sl_lock_t *l = arg;
    ASSERT(sl__trylock(l));
    sl__unlock(l);
    return NULL;
}

SL_TEST(lock_trylock_revokes_bias)
{
    if (!bias_on())
        TEST_SKIP("no membarrier: locks are never biased");
    sl_lock_t l;
    sl__lock_init(&l);
    for (int i = 0; i < SL__LOCK_BIAS_AFTER; i++) {
        ASSERT(sl__trylock(&l));
        sl__unlock(&l);
    }
    ASSERT_EQ(lock_state(&l), SL__LOCK_BIASED);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, trylock_other, &l), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_EQ(lock_state(&l), SL__LOCK_SHARED);
    ASSERT(sl__trylock(&l));
    ASSERT(!sl__trylock(&l)); /* held: a second try fails, by either path */
    sl__unlock(&l);
    ASSERT_EQ(l.word, 0);
}

/* ---- streaks broken by another thread do not bias ---- */

static void *take_once(void *arg)
{
    sl__lock(arg);
    sl__unlock(arg);
    return NULL;
}

SL_TEST(lock_alternating_threads_never_bias)
{
    (void)bias_on();
    sl_lock_t l;
    sl__lock_init(&l);
    for (int k = 0; k < 10; k++) {
        for (int i = 0; i < SL__LOCK_BIAS_AFTER - 1; i++) {
            sl__lock(&l);
            sl__unlock(&l);
        }
        pthread_t th;
        ASSERT_EQ(pthread_create(&th, NULL, take_once, &l), 0);
        ASSERT_EQ(pthread_join(th, NULL), 0);
        ASSERT_EQ(lock_state(&l), SL__LOCK_UNBIASED);
    }
}

/* ---- a lock made shared at its start never biases (a task's join lock) ---- */

SL_TEST(lock_shared_init_never_biases)
{
    (void)bias_on();
    sl_lock_t l;
    sl__lock_init(&l);
    sl__lock_init_shared(&l);
    for (int i = 0; i < 4 * SL__LOCK_BIAS_AFTER; i++) {
        sl__lock(&l);
        ASSERT_EQ(l.word, 1); /* always by the word */
        ASSERT_EQ(l.in, 0);
        sl__unlock(&l);
        ASSERT_EQ(l.word, 0);
    }
    ASSERT_EQ(lock_state(&l), SL__LOCK_SHARED);
    ASSERT_EQ(sl__trylock(&l), 1);
    ASSERT_EQ(sl__trylock(&l), 0); /* still exclusive */
    sl__unlock(&l);
    ASSERT_EQ(lock_state(&l), SL__LOCK_SHARED);
}

/* ---- the revocation's store-buffer window, raced head-on ----
 * The owner's way in is a store (`in`) then a load (`state`); the revoker's is a store
 * (`state`) then a load (`in`). x86 lets each load pass its own thread's store (the litmus
 * test "SB"), so without the revoker's membarrier both could read the other's old value and
 * both get in. Here the two threads meet at a barrier and then go for the same freshly biased
 * lock at once, many times over, each checking inside that the other is not: with the
 * membarrier removed from lock.c this case fails every run (9 to 175 overlaps in 20,000). */

#define SB_TRIALS 20000

typedef struct sb_case {
    sl_lock_t *locks;
    int trials;
    atomic_int arrive[2]; /* trial each side has reached */
    atomic_int inside;    /* threads inside the current lock */
    atomic_int overlaps;  /* times a thread found the other inside */
} sb_case_t;

static void sb_critical(sb_case_t *c)
{
    if (atomic_fetch_add(&c->inside, 1) != 0)
        atomic_fetch_add(&c->overlaps, 1);
    for (int k = 0; k < 64; k++) /* long enough that a second thread in would meet us */
        sl__cpu_relax();
    atomic_fetch_sub(&c->inside, 1);
}

static void *sb_revoker(void *arg)
{
    sb_case_t *c = arg;
    for (int i = 1; i <= c->trials; i++) {
        test_meet(c->arrive, 1, i);
        sl__lock(&c->locks[i - 1]); /* revokes: store SHARED, barrier, load `in` */
        sb_critical(c);
        sl__unlock(&c->locks[i - 1]);
    }
    return NULL;
}

SL_TEST(lock_revocation_races_owner_entry)
{
#if SLUICE_VALGRIND
    TEST_SKIP("valgrind runs one thread at a time: there is no store buffer to race");
#endif
    if (!bias_on())
        TEST_SKIP("no membarrier: locks are never biased");
    sb_case_t c;
    memset(&c, 0, sizeof c);
    c.trials = SB_TRIALS / test_scale();
    c.locks = calloc((size_t)c.trials, sizeof *c.locks);
    ASSERT(c.locks != NULL);
    for (int i = 0; i < c.trials; i++) {
        sl__lock_init(&c.locks[i]);
        for (int k = 0; k < SL__LOCK_BIAS_AFTER; k++) {
            sl__lock(&c.locks[i]);
            sl__unlock(&c.locks[i]);
        }
        ASSERT_EQ(lock_state(&c.locks[i]), SL__LOCK_BIASED);
    }
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, sb_revoker, &c), 0);
    for (int i = 1; i <= c.trials; i++) {
        test_meet(c.arrive, 0, i);
        sl__lock(&c.locks[i - 1]); /* the owner: store `in`, load `state` */
        sb_critical(&c);
        sl__unlock(&c.locks[i - 1]);
    }
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_EQ(atomic_load(&c.overlaps), 0);
    for (int i = 0; i < c.trials; i++) {
        ASSERT_EQ(lock_state(&c.locks[i]), SL__LOCK_SHARED);
        ASSERT_EQ(c.locks[i].in, 0);
        ASSERT_EQ(c.locks[i].word, 0);
    }
    free(c.locks);
}

/* ---- a process-wide lock (util/plock.h) is free in a forked child ---- */

static sl__plock_t test_plock = SL__PLOCK_INIT;
static _Atomic int plock_held;

static void *plock_holder(void *arg)
{
    (void)arg;
    sl__plock(&test_plock);
    atomic_store(&plock_held, 1);
    usleep(200 * 1000); /* the fork comes while this thread holds it */
    sl__punlock(&test_plock);
    return NULL;
}

/* Another thread holds the lock when the main thread forks: the fork waits for it (the
 * pthread_atfork handler takes every registered lock first), and the child can take the lock.
 * With a plain mutex the child's copy would stay locked by a thread the child does not have, and
 * its lock would hang until the alarm. */
SL_TEST(plock_is_free_in_a_forked_child)
{
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, plock_holder, NULL), 0);
    while (!atomic_load(&plock_held))
        sched_yield();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        alarm(10);
        sl__plock(&test_plock);
        sl__punlock(&test_plock);
        /* Leaves by exec: exiting, ThreadSanitizer would report the parent's holder thread,
         * which the child has on its books but cannot join, as leaked. */
        execl("/bin/true", "true", (char *)NULL);
        _exit(0);
    }
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
}

/* ---- Plain claims (src/core/rt.h): an abort from another thread is claimed on the task's worker
 * A claimant on a task's own worker claims a one-clause wait with a plain load and store, so no
 * other thread may claim it: an abort from another worker posts the claim to the task's worker
 * (sl__abort_claim), which makes it in its next round. Here the waiter's worker (1) is kept busy
 * by a task that does not yield while the main task (worker 0) aborts the waiter: the abort
 * returns at once, the waiter is still waiting while worker 1 stays busy, and its wait then
 * ends with SL_ECANCELED. The same with a waiter parked on a oneshot (a plain blocking call)
 * and on an enabled Notified (notify.c's own node). */

struct pc_post {
    sl_notify_t n;
    sl_oneshot_tx_t *tx;
    sl_oneshot_rx_t *rx;
    sl_task_t *waiter;
    _Atomic int parked, busy, aborted, still_waiting, res;
};

static void *pc_waiter_notified(void *arg)
{
    struct pc_post *p = arg;
    sl_notified_t f;
    sl_notified_init(&f, &p->n);
    (void)sl_notified_enable(&f);
    atomic_store(&p->parked, 1); /* waits next, on its own worker: nothing runs in between */
    atomic_store(&p->res, sl_notified_wait(&f));
    sl_notified_cancel(&f);
    return NULL;
}

static void *pc_waiter_oneshot(void *arg)
{
    struct pc_post *p = arg;
    uint64_t v = 0;
    atomic_store(&p->parked, 1);
    atomic_store(&p->res, sl_oneshot_recv(p->rx, &v));
    sl_oneshot_rx_drop(p->rx);
    return NULL;
}

static void *pc_busy(void *arg)
{
    struct pc_post *p = arg;
    while (atomic_load(&p->waiter->wstate) % 256 != SL__W_WAITING)
        ASSERT_OK(sl_task_yield());
    atomic_store(&p->busy, 1);
    while (!atomic_load(&p->aborted))
        sl__cpu_relax();
    /* The abort has returned; this worker has not had a round since, so nothing has claimed. */
    test_spin_ns(20 * SL_MSEC);
    atomic_store(&p->still_waiting, atomic_load(&p->waiter->wstate) % 256 == SL__W_WAITING);
    return NULL;
}

static void *main_abort_posted(void *arg)
{
    int oneshot = (int)(intptr_t)arg;
    struct pc_post p;
    memset(&p, 0, sizeof p);
    sl_notify_init(&p.n);
    if (oneshot)
        ASSERT_OK(sl_oneshot_new(sizeof(uint64_t), &p.tx, &p.rx));
    p.waiter = test_spawn_on(1, oneshot ? pc_waiter_oneshot : pc_waiter_notified, &p);
    while (!atomic_load(&p.parked))
        ASSERT_OK(sl_task_yield());
    sl_task_t *busy = test_spawn_on(1, pc_busy, &p);
    while (!atomic_load(&p.busy))
        ASSERT_OK(sl_task_yield());
    sl_task_abort(p.waiter); /* posts the claim to worker 1 and returns */
    atomic_store(&p.aborted, 1);
    test_join_ok(busy);
    ASSERT(atomic_load(&p.still_waiting));
    (void)test_join(p.waiter);
    ASSERT_ERR(atomic_load(&p.res), SL_ECANCELED);
    if (oneshot) {
        /* The receiver is gone: a send now reports it, and frees the block. */
        uint64_t v = 7;
        ASSERT_ERR(sl_oneshot_send(p.tx, &v), SL_ECLOSED);
    }
    sl_notify_destroy(&p.n);
    return NULL;
}

SL_TEST(abort_from_another_worker_is_claimed_on_the_tasks_worker)
{
    test_run(2, main_abort_posted, (void *)(intptr_t)0);
    test_run(2, main_abort_posted, (void *)(intptr_t)1);
}
