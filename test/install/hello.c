/* A program outside the tree: built by test/install/run.sh against an installed libsluice
 * through pkg-config, once linked statically and once against libsluice.so. It runs real
 * tasks on two workers: producers and a consumer over a bounded channel, and a timeout. */
#include <stdint.h>
#include <stdio.h>

#include <sluice.h>

static void *producer(void *arg)
{
    sl_mpsc_tx_t *tx = arg;
    for (uint64_t i = 1; i <= 1000; i++)
        if (sl_mpsc_send(tx, &i) != 0)
            break;
    sl_mpsc_tx_drop(tx);
    return NULL;
}

static void *main_task(void *arg)
{
    (void)arg;
    sl_mpsc_tx_t *tx;
    sl_mpsc_rx_t *rx;
    if (sl_mpsc_new(sizeof(uint64_t), 8, &tx, &rx) != 0)
        return NULL;
    sl_task_t *t[2];
    sl_task_spawn(producer, sl_mpsc_tx_clone(tx), &t[0]);
    sl_task_spawn(producer, tx, &t[1]);
    uint64_t v, sum = 0;
    while (sl_mpsc_recv(rx, &v) == 0)
        sum += v;
    for (int i = 0; i < 2; i++)
        sl_task_join(t[i], NULL);
    sl_mpsc_rx_drop(rx);
    int r = sl_sleep_until(sl_deadline_in(SL_MSEC));
    printf("sum %llu, sleep %s\n", (unsigned long long)sum, sl_err_name(r));
    return (void *)(uintptr_t)sum;
}

int main(void)
{
    printf("SL_ETIMEDOUT: %s\n", sl_strerror(SL_ETIMEDOUT));
    sl_runtime_opts_t o;
    sl_runtime_opts_init(&o);
    o.workers = 2;
    void *sum = NULL;
    int r = sl_run(&o, main_task, NULL, &sum);
    if (r != 0 || (uintptr_t)sum != 1001000) {
        printf("run failed: %s, sum %llu\n", sl_strerror(r), (unsigned long long)(uintptr_t)sum);
        return 1;
    }
    printf("hello from sluice: ok\n");
    return 0;
}
