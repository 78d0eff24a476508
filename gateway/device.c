/*
 * sluice-gateway: device tasks.
 *
 * Each device waits, in one select, for shutdown, a health request and its source's next
 * reading. A reading is sent while holding one permit of the bandwidth semaphore; when the
 * semaphore or the ingest channel is full the device says so in the log and waits, still
 * answering health requests and still responsive to shutdown. Whatever ends the task
 * (shutdown, a closed ingest channel, a panic), its sl_defer cleanup drops its ingest sender
 * and answers pending health requests by dropping their oneshot senders.
 */
#include <string.h>

#include "pipeline.h"

#define LOG_PERIOD (1 * SL_SEC) /* repeated warnings of one device: at most one per second */

static void answer(gw_device_t *d, sl_oneshot_tx_t *req)
{
    if (d->stalled) {
        /* Hold the request without answering: the checker times out. An older held request
         * timed out long ago; dropping it now tells nobody anything. */
        sl_oneshot_tx_drop(d->held);
        d->held = req;
        uint64_t more;
        if (gw_ratelimit_allow(&d->rl_stall, LOG_PERIOD, &more))
            GW_LOG(GW_WARN, "device.stalled",
                   "🧊 Device {device} is stalled: health request left unanswered",
                   GW_I("device", d->id));
        return;
    }
    if (d->dropping) {
        /* A broken responder: the request's sender is dropped, the checker hears of it at
         * once ("sender dropped") instead of waiting for its timeout. */
        sl_oneshot_tx_drop(req);
        uint64_t more;
        if (gw_ratelimit_allow(&d->rl_stall, LOG_PERIOD, &more))
            GW_LOG(GW_WARN, "device.dropped_request",
                   "🧊 Device {device} dropped a health request without answering",
                   GW_I("device", d->id));
        return;
    }
    gw_device_status_t st;
    if (d->src->ops->status(d->src, &st) != 0) {
        sl_oneshot_tx_drop(req);
        return;
    }
    /* SL_ECLOSED: the checker gave up already (timeout); nothing to do. */
    sl_oneshot_send(req, &st);
}

enum { WAIT_PERMIT, WAIT_SEND, WAIT_TRANSMIT };

/*
 * Waits for a bandwidth permit, for room in the ingest channel or for the end of the simulated
 * transmission, answering health requests meanwhile. Returns the operation's result, or
 * SL_ECANCELED when shutdown comes first.
 */
static int wait_with_health(gw_device_t *d, int what, const gw_reading_t *r, int *health_open)
{
    int64_t deadline = what == WAIT_TRANSMIT ? sl_deadline_in(d->transmit_ns) : 0;
    for (;;) {
        sl_clause_t c[3];
        sl_oneshot_tx_t *req = NULL;
        if (what == WAIT_PERMIT)
            sl_clause_sem_acquire(&c[0], d->bandwidth, 1, &d->permit);
        else if (what == WAIT_SEND)
            sl_clause_mpsc_send(&c[0], d->ingest, r);
        else
            sl_clause_sleep_until(&c[0], deadline);
        sl_clause_cancelled(&c[1], d->shutdown);
        if (*health_open)
            sl_clause_mpsc_recv(&c[2], d->health_rx, &req);
        else
            sl_clause_none(&c[2]);
        int i = sl_select(c, 3, SL_SELECT_BIASED, SL_FOREVER);
        if (i < 0)
            return i;
        if (i == 0)
            return c[0].res;
        if (i == 1)
            return SL_ECANCELED;
        if (c[2].res == 0)
            answer(d, req);
        else
            *health_open = 0;
    }
}

/* Sends one reading under a bandwidth permit. Returns 0, SL_ECANCELED or SL_ECLOSED. */
static int publish(gw_device_t *d, const gw_reading_t *r, int *health_open)
{
    uint64_t more;
    int rc = sl_sem_try_acquire(d->bandwidth, &d->permit);
    if (rc == SL_EAGAIN) {
        gw_count(&d->stats->bandwidth_waits, 1);
        if (gw_ratelimit_allow(&d->rl_bandwidth, LOG_PERIOD, &more))
            GW_LOG(GW_INFO, "device.bandwidth_wait",
                   more ? "📱 Device {device} waiting for bandwidth slot ({suppressed} more "
                          "waits since the last report)"
                        : "📱 Device {device} waiting for bandwidth slot",
                   GW_I("device", d->id), GW_U("suppressed", more));
        rc = wait_with_health(d, WAIT_PERMIT, r, health_open);
    }
    if (rc != 0)
        return rc;

    rc = sl_mpsc_try_send(d->ingest, r);
    if (rc == SL_EFULL) {
        gw_count(&d->stats->ingest_full, 1);
        if (gw_ratelimit_allow(&d->rl_full, LOG_PERIOD, &more))
            GW_LOG(GW_INFO, "device.throttled",
                   more ? "📱 Device {device} throttled: ingest queue full, waiting to send "
                          "reading #{seq} ({suppressed} more since the last report)"
                        : "📱 Device {device} throttled: ingest queue full, waiting to send "
                          "reading #{seq}",
                   GW_I("device", d->id), GW_U("seq", r->seq), GW_U("suppressed", more));
        rc = wait_with_health(d, WAIT_SEND, r, health_open);
    }
    if (rc == 0) {
        d->sent++;
        gw_count(&d->stats->readings_sent, 1);
        /* The simulated uplink keeps the slot busy a little longer; shutdown cuts it short. */
        if (d->transmit_ns > 0 && wait_with_health(d, WAIT_TRANSMIT, r, health_open) != 0)
            rc = SL_ECANCELED;
    }
    sl_sem_permit_release(&d->permit);
    return rc;
}

static void device_cleanup(void *arg)
{
    gw_device_t *d = arg;
    GW_LOG(GW_INFO, "device.stopped",
           "📱 Device {device} stopping after {sent} readings: dropping its sender",
           GW_I("device", d->id), GW_U("sent", d->sent));
    sl_sem_permit_release(&d->permit);
    sl_mpsc_tx_drop(d->ingest);
    d->ingest = NULL;
    /* Close the request channel, then drop every request still queued: each checker waiting on
     * one sees "sender dropped" instead of a timeout. */
    sl_mpsc_rx_close(d->health_rx);
    sl_oneshot_tx_t *req;
    while (sl_mpsc_try_recv(d->health_rx, &req) == 0)
        sl_oneshot_tx_drop(req);
    sl_mpsc_rx_drop(d->health_rx);
    d->health_rx = NULL;
    sl_oneshot_tx_drop(d->held);
    d->held = NULL;
    d->src->ops->close(d->src);
    d->src = NULL;
}

void *gw_device_main(void *arg)
{
    gw_device_t *d = arg;
    if (sl_defer(device_cleanup, d) != 0) {
        device_cleanup(d);
        return NULL;
    }
    int64_t panic_at = d->panic_after_ns > 0 ? sl_deadline_in(d->panic_after_ns) : 0;
    if (d->panic_after_ns == 0 && d->stalled == 0 && d->dropping == 0)
        GW_LOG(GW_INFO, "device.online", "📱 Device {device} online", GW_I("device", d->id));
    else
        GW_LOG(GW_INFO, "device.online", "📱 Device {device} online (fault: {fault})",
               GW_I("device", d->id),
               GW_S("fault", d->stalled    ? "stall"
                             : d->dropping ? "drop"
                                           : "panic"));
    int health_open = 1;

    for (;;) {
        sl_clause_t c[4];
        sl_oneshot_tx_t *req = NULL;
        sl_clause_cancelled(&c[0], d->shutdown);
        if (health_open)
            sl_clause_mpsc_recv(&c[1], d->health_rx, &req);
        else
            sl_clause_none(&c[1]);
        if (panic_at)
            sl_clause_sleep_until(&c[2], panic_at);
        else
            sl_clause_none(&c[2]);
        d->src->ops->arm(d->src, &c[3]);
        int i = sl_select(c, 4, SL_SELECT_BIASED, SL_FOREVER);
        if (i < 0 || i == 0)
            break;
        if (i == 1) {
            if (c[1].res == 0)
                answer(d, req);
            else
                health_open = 0;
            continue;
        }
        if (i == 2)
            sl_panic("device %d: simulated sensor fault after %lld ms", d->id,
                     (long long)(d->panic_after_ns / SL_MSEC));
        gw_reading_t r;
        int rc = d->src->ops->next(d->src, &r);
        if (rc == SL_EAGAIN)
            continue;
        if (rc != 0)
            break; /* the source ended */
        rc = publish(d, &r, &health_open);
        if (rc == SL_ECLOSED) {
            GW_LOG(GW_WARN, "device.ingest_closed",
                   "📱 Device {device}: aggregator is gone (ingest closed), stopping",
                   GW_I("device", d->id));
            break;
        }
        if (rc != 0)
            break; /* shutdown while waiting: this reading was not sent */
    }
    return NULL;
}
