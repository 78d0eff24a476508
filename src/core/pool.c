/*
 * The blocking pool: threads that run blocking functions (file I/O, getaddrinfo, SQLite) while
 * the calling task waits, as tokio::task::spawn_blocking and libuv's thread pool.
 *
 * Jobs live on the waiting task's stack (the task cannot return before its job is done), so
 * submitting allocates nothing. Threads start on demand up to opts.blocking_threads and exit
 * after opts.blocking_idle_ns without work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/rt.h"

typedef struct job {
    struct job *next;
    void *(*fn)(void *);
    void *arg;
    void *result;
    sl_task_t *task;
    _Atomic int done;
} job_t;

struct sl__pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work arrived or shutdown */
    pthread_cond_t exit_cv; /* a thread exited */
    job_t *head, *tail;
    int threads; /* started and not exited */
    int idle;    /* waiting for work */
    int stop;
    sl_runtime_t *rt;
};

static void *pool_thread(void *arg)
{
    sl__pool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t until = (int64_t)ts.tv_sec * SL_SEC + ts.tv_nsec + p->rt->opts.blocking_idle_ns;
            ts.tv_sec = until / SL_SEC;
            ts.tv_nsec = until % SL_SEC;
            p->idle++;
            int r = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            p->idle--;
            if (r == ETIMEDOUT && !p->head)
                goto out;
        }
        if (!p->head && p->stop)
            break;
        job_t *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->result = j->fn(j->arg);
        sl_task_t *t = j->task;
        atomic_store_explicit(&j->done, 1, memory_order_release);
        sl__task_wake(t);
        pthread_mutex_lock(&p->mu);
    }
out:
    p->threads--;
    pthread_cond_broadcast(&p->exit_cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static sl__pool_t *pool_get(sl_runtime_t *rt)
{
    /* Created by the first sl_blocking() of a runtime; creation races are settled with a CAS. */
    sl__pool_t *p = __atomic_load_n(&rt->pool, __ATOMIC_ACQUIRE);
    if (p)
        return p;
    p = sl__calloc(rt, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&p->exit_cv, NULL);
    p->rt = rt;
    sl__pool_t *expect = NULL;
    if (!__atomic_compare_exchange_n(&rt->pool, &expect, p, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        pthread_cond_destroy(&p->exit_cv);
        sl__free(rt, p, sizeof *p);
        return expect;
    }
    return p;
}

int sl_blocking(void *(*fn)(void *), void *arg, void **result)
{
    sl_task_t *t = sl__self_checked("sl_blocking");
    sl__pool_t *p = pool_get(t->rt);
    if (!p)
        return SL_ENOMEM;
    job_t j;
    memset(&j, 0, sizeof j);
    j.fn = fn;
    j.arg = arg;
    j.task = t;
    pthread_mutex_lock(&p->mu);
    if (p->idle == 0 && p->threads < t->rt->opts.blocking_threads) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&th, &at, pool_thread, p);
        pthread_attr_destroy(&at);
        if (r != 0 && p->threads == 0) {
            pthread_mutex_unlock(&p->mu);
            return -r;
        }
        if (r == 0)
            p->threads++;
    }
    if (p->tail)
        p->tail->next = &j;
    else
        p->head = &j;
    p->tail = &j;
    /* Park before the job can finish: the wake is counted against this park. The state is
     * set under the pool lock, which the pool thread takes before running the job. */
    t->state = SL__T_PARKED;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* The pool thread wakes us through our worker's inbox, which is only drained after we
     * switched out, so parking after unlocking is safe. Cancellation does not interrupt. */
    sl__park();
    SL__ASSERT(atomic_load_explicit(&j.done, memory_order_acquire), "blocking job not done");
    if (result)
        *result = j.result;
    return 0;
}

int sl__pool_threads(sl_runtime_t *rt)
{
    sl__pool_t *p = __atomic_load_n(&rt->pool, __ATOMIC_ACQUIRE);
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    int n = p->threads;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void sl__pool_shutdown(sl_runtime_t *rt)
{
    sl__pool_t *p = rt->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    while (p->threads > 0)
        pthread_cond_wait(&p->exit_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->exit_cv);
    rt->pool = NULL;
    sl__free(rt, p, sizeof *p);
}
