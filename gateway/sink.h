/*
 * sluice-gateway: where snapshots go.
 *
 * A client task (client.c) reads every snapshot from the broadcast channel, handles lag by
 * resyncing from the watch channel, and hands the result to its sink. The sink is the
 * subscriber: today a log line (sink_log.c), later a network peer. A sink may wait (a slow
 * peer); while it does, its client falls behind and the broadcast ring, not the aggregator,
 * absorbs the difference.
 */
#ifndef GATEWAY_SINK_H
#define GATEWAY_SINK_H

#include "gateway.h"

typedef struct gw_sink gw_sink_t;

typedef struct gw_sink_ops {
    /* Delivers one snapshot. May wait. Returns 0, or an SL_E* code: the subscriber is gone. */
    int (*deliver)(gw_sink_t *sink, const gw_snapshot_t *snap);
    /* The client missed `missed` snapshots and resynced to *snap (the current state). */
    int (*resync)(gw_sink_t *sink, const gw_snapshot_t *snap, uint64_t missed);
    /* Releases the sink. */
    void (*close)(gw_sink_t *sink);
} gw_sink_ops_t;

struct gw_sink {
    const gw_sink_ops_t *ops;
    int client_id;
};

/*
 * A sink that logs each snapshot. With delay_ns > 0 it takes that long per snapshot (the
 * --slow-client fault) until the shutdown token is triggered, so a slow client still drains
 * quickly at shutdown. shutdown is borrowed. Returns NULL when out of memory.
 */
gw_sink_t *gw_log_sink_new(int client_id, int64_t delay_ns, sl_cancel_t *shutdown);

#endif /* GATEWAY_SINK_H */
