/*
 * sluice-demo: tasks, timers, cancellation and a hand-off between tasks, on two workers.
 *
 * A producer on worker 1 hands readings to a consumer on worker 0 through a one-slot mailbox
 * signalled with cancellation tokens (the channels arrive with the primitives); the consumer
 * waits under a timeout scope, an interval drives the producer, a watchdog task is aborted at
 * the end, and a panicking task shows that a failure stays inside its task. Run it with `make demo`
 * (until the gateway exists) or build/bin/sluice-demo.
 */
#include <stdio.h>
#include <string.h>

#include <sluice.h>

typedef struct mailbox {
    sl_cancel_t *full;  /* triggered when a value is in the box (one token per value) */
    sl_cancel_t *empty; /* triggered when the box was emptied */
    int value;
} mailbox_t;

static void *producer(void *arg)
{
    mailbox_t *mb = arg;
    sl_interval_t iv;
    sl_interval_init(&iv, 50 * SL_MSEC, SL_MISSED_DELAY);
    for (int i = 1; i <= 5; i++) {
        int64_t when;
        sl_interval_tick(&iv, &when);
        mb->value = i * 10;
        printf("producer (worker %d): tick %d, put %d\n", sl_worker_index(), i, mb->value);
        sl_cancel_trigger(mb->full);
        sl_cancel_wait(mb->empty);
        sl_cancel_drop(mb->empty);
        sl_cancel_new(&mb->empty);
    }
    return (void *)5;
}

static void *consumer(void *arg)
{
    mailbox_t *mb = arg;
    int sum = 0;
    for (;;) {
        sl_timeout_t to;
        sl_timeout_enter(&to, sl_deadline_in(200 * SL_MSEC));
        int r = sl_cancel_wait(mb->full);
        sl_timeout_exit(&to);
        if (r == SL_ETIMEDOUT) {
            printf("consumer: nothing for 200 ms, done (sum %d)\n", sum);
            break;
        }
        sum += mb->value;
        printf("consumer (worker %d): took %d\n", sl_worker_index(), mb->value);
        sl_cancel_drop(mb->full);
        sl_cancel_new(&mb->full);
        sl_cancel_trigger(mb->empty);
    }
    return (void *)(intptr_t)sum;
}

static void *watchdog(void *arg)
{
    (void)arg;
    int r = sl_sleep(3600 * SL_SEC);
    printf("watchdog: woke with %s\n", sl_err_name(r));
    return NULL;
}

static void cleanup(void *arg)
{
    printf("faulty: cleanup ran (%s)\n", (const char *)arg);
}

static void *faulty(void *arg)
{
    (void)arg;
    static char what[] = "deferred";
    sl_defer(cleanup, what);
    sl_sleep(20 * SL_MSEC);
    sl_panic("sensor %d returned garbage", 7);
}

/* Runs on a blocking-pool thread: the place for SQLite, getaddrinfo, file I/O. */
static void *measure(void *arg)
{
    return (void *)(uintptr_t)strlen(arg);
}

static void *main_task(void *arg)
{
    (void)arg;
    mailbox_t mb;
    memset(&mb, 0, sizeof mb);
    sl_cancel_new(&mb.full);
    sl_cancel_new(&mb.empty);

    sl_task_t *p, *c, *w, *f;
    sl_spawn_opts_t on1 = {.name = "producer", .worker = 1, .use_worker = 1};
    sl_spawn_opts_t on0 = {.name = "consumer", .worker = 0, .use_worker = 1};
    sl_task_spawn_ex(&on1, producer, &mb, &p);
    sl_task_spawn_ex(&on0, consumer, &mb, &c);
    sl_task_spawn(watchdog, NULL, &w);
    sl_task_spawn(faulty, NULL, &f);

    sl_join_t j;
    sl_task_join(f, &j);
    printf("main: task %llu ended %s: %s\n", (unsigned long long)j.id,
           j.status == SL_TASK_PANICKED ? "PANICKED" : "normally", j.message);
    sl_task_join(p, &j);
    printf("main: producer returned %ld\n", (long)(intptr_t)j.value);
    sl_task_join(c, &j);
    printf("main: consumer returned sum %ld\n", (long)(intptr_t)j.value);
    sl_task_abort(w);
    sl_task_join(w, &j);
    printf("main: watchdog ended %s\n", j.status == SL_TASK_CANCELLED ? "CANCELLED" : "?");

    int64_t t0 = sl_clock();
    void *r;
    sl_blocking(measure, (void *)"sqlite would run here", &r);
    printf("main: blocking pool computed %zu in %lld us\n", (size_t)(uintptr_t)r,
           (long long)((sl_clock() - t0) / SL_USEC));
    sl_cancel_drop(mb.full);
    sl_cancel_drop(mb.empty);
    return NULL;
}

int main(void)
{
    sl_runtime_opts_t o;
    sl_runtime_opts_init(&o);
    o.workers = 2;
    int r = sl_run(&o, main_task, NULL, NULL);
    if (r) {
        fprintf(stderr, "sluice-demo: %s\n", sl_strerror(r));
        return 1;
    }
    return 0;
}
