/*
 * sluice-gateway: the aggregator.
 *
 * One task owns the ingest receiver. It waits, in one select, for the snapshot timer, the
 * batch timer and readings (up to 64 at a time). Timers come first, so a flood of readings
 * cannot starve snapshots. It does not listen for shutdown: it drains the ingest channel
 * until every device has dropped its sender (SL_ECLOSED), then flushes the last batch,
 * publishes a final snapshot and drops its senders, which in turn ends storage and clients.
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

#define RECV_MAX 64

static int64_t advance(int64_t next, int64_t period)
{
    int64_t now = sl_now();
    next += period;
    return next <= now ? now + period : next;
}

static void publish_snapshot(gw_aggregator_t *a, int final)
{
    gw_snapshot_t *s = &a->snap;
    s->seq++;
    s->timestamp = gw_wall_ms();
    /* A device is active if it reported within three of its periods (at least one second). */
    int64_t window = (int64_t)(3000.0 / a->cfg->rate_hz);
    if (window < 1000)
        window = 1000;
    uint32_t active = 0;
    for (uint32_t i = 0; i < s->ndevices; i++) {
        gw_device_stats_t *d = &s->devices[i];
        if (d->count > 0)
            d->avg_temperature = a->temp_sum[i] / (double)d->count;
        if (d->last_seen > 0 && s->timestamp - d->last_seen <= window)
            active++;
    }
    s->active_devices = active;
    /* SL_ENORECV (no client subscribed) is fine: the watch still holds the latest state. */
    sl_broadcast_send(a->bcast, s, NULL);
    sl_watch_send_replace(a->watch, s, NULL);
    gw_count(&a->stats->snapshots, 1);
    GW_LOG(GW_INFO, final ? "aggregator.final_snapshot" : "aggregator.snapshot",
           "📊 Snapshot #{snapshot}{final}: {active} active devices, {total} messages",
           GW_U("snapshot", s->seq), GW_S("final", final ? " (final)" : ""), GW_U("active", active),
           GW_U("total", s->total_messages));
}

/* Hands the readings collected so far to storage as one batch (nothing when there are none). */
static void flush_batch(gw_aggregator_t *a, const char *why)
{
    if (a->cur.n == 0)
        return;
    gw_batch_t b = a->cur;
    b.seq = ++a->batch_seq;
    a->cur.items = NULL;
    a->cur.n = 0;
    a->cur_cap = 0;
    GW_LOG(GW_INFO, "aggregator.batch", "📤 Batch #{batch}: {readings} readings to storage ({why})",
           GW_U("batch", b.seq), GW_U("readings", b.n), GW_S("why", why));
    int rc = sl_mpsc_try_send(a->storage, &b);
    if (rc == SL_EFULL) {
        gw_count(&a->stats->storage_full, 1);
        GW_LOG(GW_WARN, "aggregator.storage_full",
               "📦 Storage queue full - applying backpressure (batch #{batch} waits)",
               GW_U("batch", b.seq));
        int64_t t0 = sl_clock();
        rc = sl_mpsc_send(a->storage, &b);
        if (rc == 0)
            GW_LOG(GW_INFO, "aggregator.storage_resumed",
                   "📦 Storage queue accepted batch #{batch} after {waited_ms} ms",
                   GW_U("batch", b.seq), GW_I("waited_ms", (sl_clock() - t0) / SL_MSEC));
    }
    if (rc != 0) {
        gw_count(&a->stats->readings_dropped, b.n);
        GW_LOG(GW_ERROR, "aggregator.batch_dropped",
               "❌ Batch #{batch} ({readings} readings) dropped: storage unavailable ({error})",
               GW_U("batch", b.seq), GW_U("readings", b.n), GW_S("error", sl_err_name(rc)));
        free(b.items);
        return;
    }
    gw_count(&a->stats->batches, 1);
}

static int add_reading(gw_aggregator_t *a, const gw_reading_t *r)
{
    gw_count(&a->stats->readings_received, 1);
    if (r->device_id < 1 || r->device_id > a->snap.ndevices) {
        gw_count(&a->stats->readings_dropped, 1);
        GW_LOG(GW_ERROR, "aggregator.unknown_device",
               "❌ Reading from unknown device {device} dropped", GW_U("device", r->device_id));
        return 0;
    }
    uint32_t i = r->device_id - 1;
    gw_device_stats_t *d = &a->snap.devices[i];
    if (r->seq != d->last_seq + 1) {
        /* Per-producer FIFO: a device's readings arrive in its own order, without gaps. */
        gw_count(&a->stats->seq_gaps, 1);
        GW_LOG(GW_WARN, "aggregator.seq_gap",
               "⚠️ Device {device}: reading #{seq} after #{last} (out of order or missing)",
               GW_U("device", r->device_id), GW_U("seq", r->seq), GW_U("last", d->last_seq));
    }
    d->last_seq = r->seq;
    if (d->count == 0 || r->temperature < d->min_temperature)
        d->min_temperature = r->temperature;
    if (d->count == 0 || r->temperature > d->max_temperature)
        d->max_temperature = r->temperature;
    d->count++;
    a->temp_sum[i] += r->temperature;
    d->last_seen = r->timestamp;
    a->snap.total_messages++;

    if (a->cur.n == a->cur_cap) {
        size_t cap = a->cur_cap ? a->cur_cap * 2 : 256;
        if (cap > a->cfg->batch_max)
            cap = a->cfg->batch_max;
        gw_reading_t *items = realloc(a->cur.items, cap * sizeof *items);
        if (!items) {
            gw_count(&a->stats->readings_dropped, 1);
            return SL_ENOMEM;
        }
        a->cur.items = items;
        a->cur_cap = cap;
    }
    a->cur.items[a->cur.n++] = *r;
    if (a->cur.n >= a->cfg->batch_max)
        flush_batch(a, "batch full");
    return 0;
}

static void aggregator_cleanup(void *arg)
{
    gw_aggregator_t *a = arg;
    /* Only a forced abort leaves readings behind (a normal end drained everything): count them
     * as dropped, so that sent = stored + dropped holds in every run. */
    gw_reading_t r;
    sl_mpsc_rx_close(a->ingest);
    while (sl_mpsc_try_recv(a->ingest, &r) == 0)
        gw_count(&a->stats->readings_dropped, 1);
    gw_count(&a->stats->readings_dropped, a->cur.n);
    a->cur.n = 0;
    /* Dropping the senders ends the stream for storage and for every client. */
    sl_mpsc_rx_drop(a->ingest);
    a->ingest = NULL;
    sl_mpsc_tx_drop(a->storage);
    a->storage = NULL;
    sl_broadcast_tx_drop(a->bcast);
    a->bcast = NULL;
    sl_watch_tx_drop(a->watch);
    a->watch = NULL;
    free(a->cur.items);
    a->cur.items = NULL;
}

void *gw_aggregator_main(void *arg)
{
    gw_aggregator_t *a = arg;
    if (sl_defer(aggregator_cleanup, a) != 0) {
        aggregator_cleanup(a);
        return NULL;
    }
    a->snap.ndevices = (uint32_t)a->cfg->devices;
    gw_reading_t buf[RECV_MAX];
    int64_t next_snap = sl_deadline_in(a->cfg->snapshot_interval_ns);
    int64_t next_batch = sl_deadline_in(a->cfg->batch_interval_ns);
    GW_LOG(GW_INFO, "aggregator.started",
           "🧮 Aggregator started: snapshots every {snapshot_ms} ms, batches every {batch_ms} ms",
           GW_I("snapshot_ms", a->cfg->snapshot_interval_ns / SL_MSEC),
           GW_I("batch_ms", a->cfg->batch_interval_ns / SL_MSEC));

    for (;;) {
        sl_clause_t c[3];
        size_t n = 0;
        sl_clause_sleep_until(&c[0], next_snap);
        sl_clause_sleep_until(&c[1], next_batch);
        sl_clause_mpsc_recv_many(&c[2], a->ingest, buf, RECV_MAX, &n);
        int i = sl_select(c, 3, SL_SELECT_BIASED, SL_FOREVER);
        if (i < 0)
            return NULL; /* aborted (forced shutdown) */
        if (i == 0) {
            publish_snapshot(a, 0);
            next_snap = advance(next_snap, a->cfg->snapshot_interval_ns);
        } else if (i == 1) {
            flush_batch(a, "interval");
            next_batch = advance(next_batch, a->cfg->batch_interval_ns);
        } else if (c[2].res == SL_ECLOSED) {
            break;
        } else {
            for (size_t k = 0; k < n; k++)
                add_reading(a, &buf[k]);
        }
    }

    GW_LOG(GW_INFO, "aggregator.draining",
           "🧮 Aggregator: every device sender dropped, ingest drained; flushing the last batch "
           "({readings} readings)",
           GW_U("readings", a->cur.n));
    flush_batch(a, "final");
    publish_snapshot(a, 1);
    GW_LOG(GW_INFO, "aggregator.stopped",
           "🧮 Aggregator stopped: {received} readings, {batches} batches, {snapshots} "
           "snapshots; closing storage queue and snapshot channels",
           GW_U("received", gw_read(&a->stats->readings_received)), GW_U("batches", a->batch_seq),
           GW_U("snapshots", a->snap.seq));
    return NULL;
}
