/*
 * broadcast_fanout4: one sender, four receivers on a broadcast(100); the sender yields every
 * 50 sends. watch_updates: one writer, four readers on a watch of a 64-byte value; the writer
 * yields after every update.
 */
#include "../bench.h"

#define BCAST_N       1000000
#define BCAST_CAP     100
#define BCAST_EVERY   50
#define BCAST_RECVERS 4

#define WATCH_N       1000000
#define WATCH_READERS 4

/* ---- broadcast_fanout4 ------------------------------------------------------------------- */

static uint64_t bcast_n(void)
{
    return bench_n(BCAST_N, 1);
}

uint64_t w_broadcast_fanout4_expect(void)
{
    return BCAST_RECVERS * bcast_n();
}

typedef struct bcast_recv {
    sl_broadcast_rx_t *rx;
    uint64_t lag;
} bcast_recv_t;

static void *bcast_receiver(void *arg)
{
    bcast_recv_t *b = arg;
    uint64_t got = 0, v, lagged;
    for (;;) {
        int r = sl_broadcast_recv(b->rx, &v, &lagged);
        if (r == 0) {
            BENCH_KEEP(v);
            got++;
        } else if (r == SL_ELAGGED) {
            b->lag += lagged;
        } else if (r == SL_ECLOSED) {
            break;
        } else {
            bench_fail("sl_broadcast_recv", r);
        }
    }
    sl_broadcast_rx_drop(b->rx);
    return (void *)(uintptr_t)got;
}

typedef struct bcast_send {
    sl_broadcast_tx_t *tx;
    uint64_t n;
} bcast_send_t;

static void *bcast_sender(void *arg)
{
    bcast_send_t *s = arg;
    for (uint64_t i = 0; i < s->n; i++) {
        (void)sl_broadcast_send(s->tx, &i, NULL);
        if ((i + 1) % BCAST_EVERY == 0)
            (void)sl_task_yield();
    }
    sl_broadcast_tx_drop(s->tx);
    return NULL;
}

uint64_t w_broadcast_fanout4(uint64_t *ops)
{
    bcast_send_t s = {.n = bcast_n()};
    BENCH_OK(sl_broadcast_new(sizeof(uint64_t), BCAST_CAP, &s.tx, NULL));
    sl_joinset_t *receivers;
    BENCH_OK(sl_joinset_new(&receivers));
    bcast_recv_t rcv[BCAST_RECVERS];
    for (int i = 0; i < BCAST_RECVERS; i++) {
        rcv[i].lag = 0;
        BENCH_OK(sl_broadcast_subscribe(s.tx, &rcv[i].rx));
        BENCH_OK(sl_joinset_spawn(receivers, bcast_receiver, &rcv[i], NULL));
    }
    sl_task_t *sender;
    BENCH_OK(sl_task_spawn(bcast_sender, &s, &sender));
    BENCH_OK(sl_task_join(sender, NULL));
    uint64_t total = bench_join_sum(receivers), lag = 0;
    for (int i = 0; i < BCAST_RECVERS; i++)
        lag += rcv[i].lag;
    if (lag > 0)
        fprintf(stderr, "sluice-bench: broadcast_fanout4: receivers lagged by %llu values\n",
                (unsigned long long)lag);
    *ops = s.n;
    return total;
}

/* ---- watch_updates ------------------------------------------------------------------------ */

/* The 64-byte watched value; payload is carried, never inspected. */
typedef struct state64 {
    uint64_t seq;
    uint64_t payload[7];
} state64_t;

_Static_assert(sizeof(state64_t) == 64, "state64_t must be 64 bytes");

static uint64_t watch_n(void)
{
    return bench_n(WATCH_N, 1);
}

uint64_t w_watch_updates_expect(void)
{
    return WATCH_READERS * (watch_n() - 1);
}

static void *watch_reader(void *arg)
{
    sl_watch_rx_t *rx = arg;
    uint64_t last = 0;
    int r;
    while ((r = sl_watch_changed(rx)) == 0) {
        state64_t v;
        (void)sl_watch_borrow_and_update(rx, &v);
        BENCH_KEEP(&v);
        last = v.seq;
    }
    if (r != SL_ECLOSED)
        bench_fail("sl_watch_changed", r);
    sl_watch_rx_drop(rx);
    return (void *)(uintptr_t)last;
}

typedef struct watch_writer {
    sl_watch_tx_t *tx;
    uint64_t n;
} watch_writer_t;

static void *watch_write(void *arg)
{
    watch_writer_t *w = arg;
    for (uint64_t i = 0; i < w->n; i++) {
        state64_t s = {i, {i, i, i, i, i, i, i}};
        BENCH_OK(sl_watch_send(w->tx, &s));
        (void)sl_task_yield();
    }
    sl_watch_tx_drop(w->tx);
    return NULL;
}

uint64_t w_watch_updates(uint64_t *ops)
{
    watch_writer_t w = {.n = watch_n()};
    state64_t init = {0, {0}};
    sl_watch_rx_t *rx;
    BENCH_OK(sl_watch_new(sizeof init, &init, &w.tx, &rx));
    sl_joinset_t *readers;
    BENCH_OK(sl_joinset_new(&readers));
    for (int i = 0; i < WATCH_READERS; i++) {
        sl_watch_rx_t *mine;
        BENCH_OK(sl_watch_rx_clone(rx, &mine));
        BENCH_OK(sl_joinset_spawn(readers, watch_reader, mine, NULL));
    }
    sl_watch_rx_drop(rx);
    sl_task_t *writer;
    BENCH_OK(sl_task_spawn(watch_write, &w, &writer));
    BENCH_OK(sl_task_join(writer, NULL));
    *ops = w.n;
    return bench_join_sum(readers);
}
