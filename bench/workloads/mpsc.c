/*
 * mpsc_spsc, mpsc_unbounded, mpsc_7p: one producer (or seven) and one consumer on an mpsc.
 */
#include "../bench.h"

#define SPSC_N         5000000
#define SPSC_CAP       50
#define P7_PRODUCERS   7
#define P7_PER_PRODUCE 1000000
#define P7_CAP         50

static uint64_t spsc_n(void)
{
    return bench_n(SPSC_N, 1);
}

uint64_t w_mpsc_spsc_expect(void)
{
    uint64_t n = spsc_n();
    return n * (n - 1) / 2;
}

typedef struct spsc {
    sl_mpsc_tx_t *tx;
    sl_mpsc_rx_t *rx;
    uint64_t n;
} spsc_t;

static void *spsc_producer(void *arg)
{
    spsc_t *s = arg;
    for (uint64_t i = 0; i < s->n; i++)
        BENCH_OK(sl_mpsc_send(s->tx, &i));
    sl_mpsc_tx_drop(s->tx);
    return NULL;
}

static void *spsc_consumer(void *arg)
{
    spsc_t *s = arg;
    uint64_t sum = 0, v;
    int r;
    while ((r = sl_mpsc_recv(s->rx, &v)) == 0)
        sum += v;
    if (r != SL_ECLOSED)
        bench_fail("sl_mpsc_recv", r);
    sl_mpsc_rx_drop(s->rx);
    return (void *)(uintptr_t)sum;
}

static uint64_t spsc_run(int unbounded, uint64_t *ops)
{
    spsc_t s = {.n = spsc_n()};
    if (unbounded)
        BENCH_OK(sl_mpsc_unbounded_new(sizeof(uint64_t), &s.tx, &s.rx));
    else
        BENCH_OK(sl_mpsc_new(sizeof(uint64_t), SPSC_CAP, &s.tx, &s.rx));
    sl_task_t *producer, *consumer;
    BENCH_OK(sl_task_spawn(spsc_producer, &s, &producer));
    BENCH_OK(sl_task_spawn(spsc_consumer, &s, &consumer));
    sl_join_t j;
    BENCH_OK(sl_task_join(producer, NULL));
    BENCH_OK(sl_task_join(consumer, &j));
    *ops = s.n;
    return (uint64_t)(uintptr_t)j.value;
}

uint64_t w_mpsc_spsc(uint64_t *ops)
{
    return spsc_run(0, ops);
}

uint64_t w_mpsc_unbounded(uint64_t *ops)
{
    return spsc_run(1, ops);
}

/* ---- mpsc_7p ------------------------------------------------------------------------------ */

static uint64_t p7_per(void)
{
    return bench_n(P7_PER_PRODUCE, 1);
}

uint64_t w_mpsc_7p_expect(void)
{
    return P7_PRODUCERS * p7_per();
}

typedef struct p7_producer {
    sl_mpsc_tx_t *tx;
    uint64_t index, n;
} p7_producer_t;

static void *p7_produce(void *arg)
{
    p7_producer_t *p = arg;
    for (uint64_t i = 0; i < p->n; i++)
        BENCH_OK(sl_mpsc_send(p->tx, &p->index));
    sl_mpsc_tx_drop(p->tx);
    return NULL;
}

static void *p7_consume(void *arg)
{
    sl_mpsc_rx_t *rx = arg;
    uint64_t received = 0, v;
    int r;
    while ((r = sl_mpsc_recv(rx, &v)) == 0) {
        BENCH_KEEP(v);
        received++;
    }
    if (r != SL_ECLOSED)
        bench_fail("sl_mpsc_recv", r);
    sl_mpsc_rx_drop(rx);
    return (void *)(uintptr_t)received;
}

uint64_t w_mpsc_7p(uint64_t *ops)
{
    uint64_t per = p7_per();
    sl_mpsc_tx_t *tx;
    sl_mpsc_rx_t *rx;
    BENCH_OK(sl_mpsc_new(sizeof(uint64_t), P7_CAP, &tx, &rx));
    sl_task_t *consumer;
    BENCH_OK(sl_task_spawn(p7_consume, rx, &consumer));
    sl_joinset_t *producers;
    BENCH_OK(sl_joinset_new(&producers));
    p7_producer_t p[P7_PRODUCERS];
    for (int i = 0; i < P7_PRODUCERS; i++) {
        p[i] = (p7_producer_t){sl_mpsc_tx_clone(tx), (uint64_t)i, per};
        BENCH_OK(sl_joinset_spawn(producers, p7_produce, &p[i], NULL));
    }
    sl_mpsc_tx_drop(tx);
    (void)bench_join_sum(producers);
    sl_join_t j;
    BENCH_OK(sl_task_join(consumer, &j));
    *ops = P7_PRODUCERS * per;
    return (uint64_t)(uintptr_t)j.value;
}
