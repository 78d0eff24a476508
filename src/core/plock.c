/*
 * Process-wide mutexes kept usable across fork() (util/plock.h).
 */
#include "util/plock.h"

#include "core/rt.h"

static sl__plock_t *registry[SL__PLOCK_MAX];
static int nregistered;
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&registry_mu);
    for (int i = 0; i < nregistered; i++)
        pthread_mutex_lock(&registry[i]->mu);
}

static void fork_after(void)
{
    for (int i = nregistered - 1; i >= 0; i--)
        pthread_mutex_unlock(&registry[i]->mu);
    pthread_mutex_unlock(&registry_mu);
}

static void atfork_install(void)
{
    pthread_atfork(fork_prepare, fork_after, fork_after);
}

static void plock_register(sl__plock_t *l)
{
    pthread_once(&atfork_once, atfork_install);
    pthread_mutex_lock(&registry_mu);
    if (!atomic_load_explicit(&l->registered, memory_order_relaxed)) {
        SL__ASSERT(nregistered < SL__PLOCK_MAX, "sl__plock: too many process-wide locks");
        registry[nregistered++] = l;
        atomic_store_explicit(&l->registered, 1, memory_order_release);
    }
    pthread_mutex_unlock(&registry_mu);
}

void sl__plock(sl__plock_t *l)
{
    if (!atomic_load_explicit(&l->registered, memory_order_acquire))
        plock_register(l);
    pthread_mutex_lock(&l->mu);
}

void sl__punlock(sl__plock_t *l)
{
    pthread_mutex_unlock(&l->mu);
}
