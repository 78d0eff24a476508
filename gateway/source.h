/*
 * sluice-gateway: where readings come from.
 *
 * A device task (device.c) does not know how readings are produced: it asks its source for a
 * select clause that completes when a reading may be ready (a timer for the simulated sensor,
 * a readable socket for a network device), then calls next() until it says SL_EAGAIN. The
 * same device task applies the bandwidth semaphore and the ingest backpressure, and answers
 * health probes with the source's status, whatever the source is.
 */
#ifndef GATEWAY_SOURCE_H
#define GATEWAY_SOURCE_H

#include "gateway.h"

typedef struct gw_source gw_source_t;

typedef struct gw_source_ops {
    /* Fills *c with a clause that completes when next() may return a reading. Never waits. */
    void (*arm)(gw_source_t *src, sl_clause_t *c);
    /* Takes the next reading: 0, SL_EAGAIN (none ready yet), SL_ECLOSED (the source ended). */
    int (*next)(gw_source_t *src, gw_reading_t *out);
    /* Fills the device's status for a health probe. Never waits. Returns 0 or an SL_E* code. */
    int (*status)(gw_source_t *src, gw_device_status_t *out);
    /* Releases the source. */
    void (*close)(gw_source_t *src);
} gw_source_ops_t;

struct gw_source {
    const gw_source_ops_t *ops;
    uint32_t device_id;
};

/*
 * A simulated sensor: rate_hz readings per second on a fixed schedule from its first arm()
 * (missed ticks are produced back to back, so the long-run rate holds when the device was held
 * up), temperature and humidity as random walks, a slowly draining battery.
 * Returns NULL when out of memory.
 */
gw_source_t *gw_sim_source_new(uint32_t device_id, double rate_hz, uint64_t seed);

#endif /* GATEWAY_SOURCE_H */
