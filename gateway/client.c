/*
 * sluice-gateway: client tasks.
 *
 * A client starts from the watch channel's current value (what a client connecting late would
 * see), then receives every snapshot from the broadcast channel. When it falls more than the
 * ring behind, the broadcast says SL_ELAGGED with the number of snapshots it missed; the client
 * logs it and resyncs from the watch, which always holds the latest snapshot (the catch-up
 * strategy of the seed document), then skips older snapshots still in the ring. It ends when
 * the aggregator drops the broadcast sender and the ring is drained.
 */
#include "pipeline.h"

static void client_cleanup(void *arg)
{
    gw_client_t *c = arg;
    sl_broadcast_rx_drop(c->rx);
    c->rx = NULL;
    sl_watch_rx_drop(c->wrx);
    c->wrx = NULL;
    c->sink->ops->close(c->sink);
    c->sink = NULL;
}

void *gw_client_main(void *arg)
{
    gw_client_t *c = arg;
    if (sl_defer(client_cleanup, c) != 0) {
        client_cleanup(c);
        return NULL;
    }
    sl_watch_borrow_and_update(c->wrx, &c->snap);
    uint64_t seen = c->snap.seq;
    GW_LOG(GW_INFO, "client.subscribed",
           "👤 Client {client} subscribed; current state from watch: snapshot #{snapshot}",
           GW_I("client", c->id), GW_U("snapshot", seen));
    for (;;) {
        uint64_t missed = 0;
        int r = sl_broadcast_recv(c->rx, &c->snap, &missed);
        if (r == 0) {
            if (c->snap.seq <= seen)
                continue; /* older than the state we resynced to */
            seen = c->snap.seq;
            c->received++;
            gw_count(&c->stats->snapshots_delivered, 1);
            if (c->sink->ops->deliver(c->sink, &c->snap) != 0)
                break;
        } else if (r == SL_ELAGGED) {
            c->lagged++;
            c->missed += missed;
            gw_count(&c->stats->client_lagged, 1);
            gw_count(&c->stats->snapshots_missed, missed);
            GW_LOG(GW_WARN, "client.lagged",
                   "⚠️ Client {client} lagged: missed {missed} snapshots; resyncing from watch",
                   GW_I("client", c->id), GW_U("missed", missed));
            sl_watch_borrow_and_update(c->wrx, &c->snap);
            seen = c->snap.seq;
            if (c->sink->ops->resync(c->sink, &c->snap, missed) != 0)
                break;
        } else {
            break; /* SL_ECLOSED: the aggregator is done and the ring is drained */
        }
    }
    GW_LOG(GW_INFO, "client.stopped",
           "👤 Client {client} done: {received} snapshots, lagged {lagged} times ({missed} "
           "missed)",
           GW_I("client", c->id), GW_U("received", c->received), GW_U("lagged", c->lagged),
           GW_U("missed", c->missed));
    return NULL;
}
