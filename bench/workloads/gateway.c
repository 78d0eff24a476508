/*
 * gateway_inproc: the telemetry gateway's topology at full speed.
 *
 *     7 devices --mpsc(50), 5-permit bandwidth semaphore--> aggregator
 *     aggregator --broadcast(100)--> 4 clients, and --watch--> latest snapshot
 *     aggregator --mpsc(10) of 500-reading batches--> storage (2-permit db semaphore)
 *
 * Batches travel as one owned allocation each (a pointer through the channel), as the Tokio
 * peer's Vec and the Go peer's slice do.
 */
#include <math.h>

#include "../bench.h"

#define GW_DEVICES        7
#define GW_PER_DEVICE     200000
#define GW_SNAPSHOT_EVERY 1000
#define GW_BATCH          500
#define GW_CLIENTS        4
#define GW_READING_CAP    50
#define GW_SNAPSHOT_CAP   100
#define GW_BATCH_CAP      10
#define GW_BANDWIDTH      5
#define GW_DB             2

typedef struct reading {
    uint32_t device_id;
    uint64_t seq;
    double temperature;
    double humidity;
    uint8_t battery;
    uint64_t timestamp_ns;
} reading_t;

typedef struct device_stats {
    uint64_t count;
    double min, max, mean;
} device_stats_t;

typedef struct snapshot {
    uint64_t total;
    device_stats_t devices[GW_DEVICES];
} snapshot_t;

typedef struct batch {
    size_t len;
    reading_t r[GW_BATCH];
} batch_t;

typedef struct gateway {
    uint64_t per_device;
    sl_mpsc_tx_t *reading_tx;
    sl_mpsc_rx_t *reading_rx;
    sl_sem_t bandwidth;
    sl_broadcast_tx_t *snapshot_tx;
    sl_watch_tx_t *watch_tx;
    sl_watch_rx_t *watch_rx;
    sl_mpsc_tx_t *batch_tx;
    sl_mpsc_rx_t *batch_rx;
    sl_sem_t db;
    /* results */
    uint64_t total, stored, checksum;
} gateway_t;

typedef struct device {
    gateway_t *g;
    sl_mpsc_tx_t *tx;
    uint32_t id;
} device_t;

typedef struct client {
    sl_broadcast_rx_t *rx;
    uint64_t snapshots, lag;
} client_t;

static uint64_t gw_per_device(void)
{
    return bench_n(GW_PER_DEVICE, 1);
}

uint64_t w_gateway_inproc_expect(void)
{
    return GW_DEVICES * gw_per_device();
}

static reading_t make_reading(uint32_t device_id, uint64_t seq)
{
    double phase = (double)(seq % 100);
    return (reading_t){
        .device_id = device_id,
        .seq = seq,
        .temperature = 20.0 + (double)device_id + phase * 0.01,
        .humidity = 40.0 + phase * 0.1,
        .battery = (uint8_t)(100 - seq % 100),
        .timestamp_ns = seq * 1000000,
    };
}

/* 4 clients: follow snapshots until the broadcast closes. */
static void *client_task(void *arg)
{
    client_t *c = arg;
    for (;;) {
        snapshot_t s;
        uint64_t lagged;
        int r = sl_broadcast_recv(c->rx, &s, &lagged);
        if (r == 0) {
            BENCH_KEEP(&s);
            c->snapshots++;
        } else if (r == SL_ELAGGED) {
            c->lag += lagged;
        } else if (r == SL_ECLOSED) {
            break;
        } else {
            bench_fail("sl_broadcast_recv", r);
        }
    }
    sl_broadcast_rx_drop(c->rx);
    return NULL;
}

/* Storage: folds each batch into a checksum while holding a db permit. */
static void *storage_task(void *arg)
{
    gateway_t *g = arg;
    uint64_t stored = 0, checksum = 0;
    batch_t *b;
    int r;
    while ((r = sl_mpsc_recv(g->batch_rx, &b)) == 0) {
        sl_sem_permit_t permit;
        BENCH_OK(sl_sem_acquire(&g->db, &permit));
        for (size_t i = 0; i < b->len; i++)
            checksum += b->r[i].seq;
        stored += b->len;
        sl_sem_permit_release(&permit);
        sl_free(b, sizeof *b);
    }
    if (r != SL_ECLOSED)
        bench_fail("sl_mpsc_recv", r);
    sl_mpsc_rx_drop(g->batch_rx);
    g->stored = stored;
    g->checksum = checksum;
    return NULL;
}

static batch_t *new_batch(void)
{
    batch_t *b = sl_malloc(sizeof *b);
    if (!b)
        bench_fail("sl_malloc", SL_ENOMEM);
    b->len = 0;
    return b;
}

static void aggregator_send_batch(gateway_t *g, batch_t *b)
{
    BENCH_OK(sl_mpsc_send(g->batch_tx, &b));
}

static void *aggregator_task(void *arg)
{
    gateway_t *g = arg;
    device_stats_t stats[GW_DEVICES];
    double sums[GW_DEVICES];
    for (int i = 0; i < GW_DEVICES; i++) {
        stats[i] = (device_stats_t){0, INFINITY, -INFINITY, 0.0};
        sums[i] = 0.0;
    }
    uint64_t total = 0;
    batch_t *batch = new_batch();
    reading_t r;
    int rc;
    while ((rc = sl_mpsc_recv(g->reading_rx, &r)) == 0) {
        device_stats_t *s = &stats[r.device_id];
        s->count++;
        s->min = fmin(s->min, r.temperature);
        s->max = fmax(s->max, r.temperature);
        sums[r.device_id] += r.temperature;
        total++;
        batch->r[batch->len++] = r;
        if (batch->len == GW_BATCH) {
            aggregator_send_batch(g, batch);
            batch = new_batch();
        }
        if (total % GW_SNAPSHOT_EVERY == 0) {
            snapshot_t snap;
            snap.total = total;
            for (int i = 0; i < GW_DEVICES; i++) {
                snap.devices[i] = stats[i];
                snap.devices[i].mean = stats[i].count ? sums[i] / (double)stats[i].count : 0.0;
            }
            (void)sl_broadcast_send(g->snapshot_tx, &snap, NULL);
            (void)sl_watch_send(g->watch_tx, &snap);
        }
    }
    if (rc != SL_ECLOSED)
        bench_fail("sl_mpsc_recv", rc);
    /* Devices are done: flush the last partial batch, then close our outputs. */
    if (batch->len > 0)
        aggregator_send_batch(g, batch);
    else
        sl_free(batch, sizeof *batch);
    sl_mpsc_rx_drop(g->reading_rx);
    sl_mpsc_tx_drop(g->batch_tx);
    sl_broadcast_tx_drop(g->snapshot_tx);
    sl_watch_tx_drop(g->watch_tx);
    g->total = total;
    return NULL;
}

static void *device_task(void *arg)
{
    device_t *d = arg;
    gateway_t *g = d->g;
    for (uint64_t seq = 0; seq < g->per_device; seq++) {
        reading_t r = make_reading(d->id, seq);
        sl_sem_permit_t permit;
        BENCH_OK(sl_sem_acquire(&g->bandwidth, &permit));
        BENCH_OK(sl_mpsc_send(d->tx, &r));
        sl_sem_permit_release(&permit);
    }
    sl_mpsc_tx_drop(d->tx);
    return NULL;
}

uint64_t w_gateway_inproc(uint64_t *ops)
{
    gateway_t g = {.per_device = gw_per_device()};
    BENCH_OK(sl_mpsc_new(sizeof(reading_t), GW_READING_CAP, &g.reading_tx, &g.reading_rx));
    BENCH_OK(sl_sem_init(&g.bandwidth, GW_BANDWIDTH));
    BENCH_OK(sl_broadcast_new(sizeof(snapshot_t), GW_SNAPSHOT_CAP, &g.snapshot_tx, NULL));
    snapshot_t zero = {0};
    BENCH_OK(sl_watch_new(sizeof(snapshot_t), &zero, &g.watch_tx, &g.watch_rx));
    BENCH_OK(sl_mpsc_new(sizeof(batch_t *), GW_BATCH_CAP, &g.batch_tx, &g.batch_rx));
    BENCH_OK(sl_sem_init(&g.db, GW_DB));
    sl_joinset_t *set;
    BENCH_OK(sl_joinset_new(&set));

    client_t clients[GW_CLIENTS];
    for (int i = 0; i < GW_CLIENTS; i++) {
        clients[i] = (client_t){NULL, 0, 0};
        BENCH_OK(sl_broadcast_subscribe(g.snapshot_tx, &clients[i].rx));
        BENCH_OK(sl_joinset_spawn(set, client_task, &clients[i], NULL));
    }
    BENCH_OK(sl_joinset_spawn(set, storage_task, &g, NULL));
    BENCH_OK(sl_joinset_spawn(set, aggregator_task, &g, NULL));
    device_t devices[GW_DEVICES];
    for (int i = 0; i < GW_DEVICES; i++) {
        devices[i] = (device_t){&g, sl_mpsc_tx_clone(g.reading_tx), (uint32_t)i};
        BENCH_OK(sl_joinset_spawn(set, device_task, &devices[i], NULL));
    }
    sl_mpsc_tx_drop(g.reading_tx);

    (void)bench_join_sum(set);

    uint64_t lag = 0;
    for (int i = 0; i < GW_CLIENTS; i++)
        lag += clients[i].lag;
    uint64_t expected_checksum = GW_DEVICES * (g.per_device * (g.per_device - 1) / 2);
    snapshot_t last;
    (void)sl_watch_borrow(g.watch_rx, &last);
    if (g.checksum != expected_checksum || g.total != g.stored ||
        last.total != g.total - g.total % GW_SNAPSHOT_EVERY)
        fprintf(stderr,
                "sluice-bench: gateway_inproc: inconsistent run (checksum %llu, expected %llu; "
                "aggregated %llu; stored %llu; last snapshot %llu)\n",
                (unsigned long long)g.checksum, (unsigned long long)expected_checksum,
                (unsigned long long)g.total, (unsigned long long)g.stored,
                (unsigned long long)last.total);
    if (lag > 0)
        fprintf(stderr, "sluice-bench: gateway_inproc: clients lagged by %llu snapshots\n",
                (unsigned long long)lag);
    sl_watch_rx_drop(g.watch_rx);
    sl_sem_destroy(&g.bandwidth);
    sl_sem_destroy(&g.db);
    *ops = GW_DEVICES * g.per_device;
    return g.stored;
}
