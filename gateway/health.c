/*
 * sluice-gateway: the health checker.
 *
 * Every interval it picks 2-3 devices (from a shuffled round, so every device is probed once
 * per round in random order), sends each a oneshot sender through the device's request mpsc,
 * and waits for the DeviceStatus with one deadline for the whole probe: ok, timeout (the
 * device did not answer in time) or failed (the device dropped the sender, or is gone).
 */
#include "pipeline.h"

static void shuffle(gw_health_t *h)
{
    for (int i = 0; i < h->ndevices; i++)
        h->order[i] = i + 1;
    for (int i = h->ndevices - 1; i > 0; i--) {
        int j = (int)(gw_rand(&h->rng) % (uint64_t)(i + 1));
        int t = h->order[i];
        h->order[i] = h->order[j];
        h->order[j] = t;
    }
    h->next = 0;
}

static int pick(gw_health_t *h)
{
    if (h->next >= h->ndevices)
        shuffle(h);
    return h->order[h->next++];
}

typedef struct probe {
    int device;
    sl_oneshot_rx_t *rx;
} probe_t;

static void failed(gw_health_t *h, int device, const char *why)
{
    gw_count(&h->stats->health_failed, 1);
    GW_LOG(GW_WARN, "health.failed", "❌ Device {device} health check failed - {reason}",
           GW_I("device", device), GW_S("reason", why));
}

static void check_round(gw_health_t *h, uint64_t round)
{
    int k = 2 + (int)(gw_rand(&h->rng) % 2);
    if (k > h->ndevices)
        k = h->ndevices;
    probe_t p[3];
    int np = 0;
    int64_t deadline = sl_deadline_in(h->cfg->health_timeout_ns);
    GW_LOG(GW_INFO, "health.round", "🩺 Health check #{round}: probing {count} devices",
           GW_U("round", round), GW_I("count", k));
    for (int i = 0; i < k; i++) {
        int dev = pick(h);
        for (int tries = 0; tries < h->ndevices; tries++) {
            int dup = 0;
            for (int j = 0; j < np; j++)
                dup |= p[j].device == dev;
            if (!dup)
                break;
            dev = pick(h); /* the round wrapped into a new shuffle: no device twice */
        }
        sl_oneshot_tx_t *tx;
        sl_oneshot_rx_t *rx;
        if (sl_oneshot_new(sizeof(gw_device_status_t), &tx, &rx) != 0) {
            failed(h, dev, "out of memory");
            continue;
        }
        int r = sl_mpsc_send_until(h->req[dev - 1], &tx, deadline);
        if (r != 0) {
            /* Not sent: tx is still ours. */
            sl_oneshot_tx_drop(tx);
            sl_oneshot_rx_drop(rx);
            if (r == SL_ETIMEDOUT) {
                gw_count(&h->stats->health_timeout, 1);
                GW_LOG(GW_WARN, "health.timeout",
                       "⏱️ Device {device} health check timeout (request queue full)",
                       GW_I("device", dev));
            } else {
                failed(h, dev, "device offline (request channel closed)");
            }
            continue;
        }
        p[np].device = dev;
        p[np].rx = rx;
        np++;
    }
    for (int i = 0; i < np; i++) {
        gw_device_status_t st;
        int r = sl_oneshot_recv_until(p[i].rx, &st, deadline);
        if (r == 0) {
            gw_count(&h->stats->health_ok, 1);
            GW_LOG(GW_INFO, "health.ok",
                   "🩺 Device {device} health: uptime={uptime}s, battery={battery}%",
                   GW_I("device", p[i].device), GW_U("uptime", st.uptime_seconds),
                   GW_U("battery", st.battery_level));
        } else if (r == SL_ETIMEDOUT) {
            gw_count(&h->stats->health_timeout, 1);
            GW_LOG(GW_WARN, "health.timeout",
                   "⏱️ Device {device} health check timeout ({timeout_ms} ms)",
                   GW_I("device", p[i].device),
                   GW_I("timeout_ms", h->cfg->health_timeout_ns / SL_MSEC));
        } else if (r == SL_ECLOSED) {
            failed(h, p[i].device, "sender dropped");
        } else {
            failed(h, p[i].device, sl_err_name(r));
        }
        sl_oneshot_rx_drop(p[i].rx);
    }
}

static void health_cleanup(void *arg)
{
    gw_health_t *h = arg;
    for (int i = 0; i < h->ndevices; i++) {
        sl_mpsc_tx_drop(h->req[i]);
        h->req[i] = NULL;
    }
}

void *gw_health_main(void *arg)
{
    gw_health_t *h = arg;
    if (sl_defer(health_cleanup, h) != 0) {
        health_cleanup(h);
        return NULL;
    }
    h->next = h->ndevices; /* shuffle on first pick */
    GW_LOG(GW_INFO, "health.started",
           "🩺 Health checker started: every {interval_ms} ms, timeout {timeout_ms} ms",
           GW_I("interval_ms", h->cfg->health_interval_ns / SL_MSEC),
           GW_I("timeout_ms", h->cfg->health_timeout_ns / SL_MSEC));
    int64_t next = sl_deadline_in(h->cfg->health_interval_ns);
    uint64_t round = 0;
    for (;;) {
        sl_clause_t c[2];
        sl_clause_cancelled(&c[0], h->shutdown);
        sl_clause_sleep_until(&c[1], next);
        int i = sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER);
        if (i != 1)
            break;
        check_round(h, ++round);
        next += h->cfg->health_interval_ns;
        if (next <= sl_now())
            next = sl_deadline_in(h->cfg->health_interval_ns);
    }
    GW_LOG(GW_INFO, "health.stopped", "🩺 Health checker stopped after {rounds} rounds",
           GW_U("rounds", round));
    return NULL;
}
