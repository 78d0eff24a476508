/*
 * sluice-gateway: the tasks of the pipeline and what each one owns. main.c builds them, spawns
 * each into one JoinSet, and frees these structs after the set is joined (a task's sl_defer
 * cleanup may still touch its struct while the task ends, panics included).
 */
#ifndef GATEWAY_PIPELINE_H
#define GATEWAY_PIPELINE_H

#include "gateway.h"
#include "log.h"
#include "sink.h"
#include "source.h"

/* A device: reads its source, sends readings into the ingest mpsc, answers health probes. */
typedef struct gw_device {
    int id;
    gw_source_t *src;        /* owned */
    sl_mpsc_tx_t *ingest;    /* owned sender clone of the ingest channel (gw_reading_t) */
    sl_mpsc_rx_t *health_rx; /* owned: health requests, each a sl_oneshot_tx_t * */
    sl_sem_t *bandwidth;     /* borrowed: the "bandwidth" semaphore */
    sl_cancel_t *shutdown;   /* borrowed */
    gw_stats_t *stats;       /* borrowed */
    int stalled;             /* --device-stall: keep requests unanswered */
    int dropping;            /* --device-drop: drop requests unanswered */
    int64_t panic_after_ns;  /* --device-panic: 0 = never */
    int64_t transmit_ns;     /* how long a send holds its bandwidth slot */
    /* Task state. */
    uint64_t sent;
    sl_oneshot_tx_t *held; /* stalled: the request being ignored */
    sl_sem_permit_t permit;
    gw_ratelimit_t rl_bandwidth, rl_full, rl_stall;
} gw_device_t;

void *gw_device_main(void *arg);

/* The aggregator: per-device statistics, snapshots (broadcast + watch), batches to storage. */
typedef struct gw_aggregator {
    const gw_config_t *cfg;
    gw_stats_t *stats;
    sl_mpsc_rx_t *ingest;     /* owned receiver (gw_reading_t) */
    sl_mpsc_tx_t *storage;    /* owned sender (gw_batch_t) */
    sl_broadcast_tx_t *bcast; /* owned sender (gw_snapshot_t) */
    sl_watch_tx_t *watch;     /* owned sender (gw_snapshot_t) */
    /* Task state. */
    gw_snapshot_t snap; /* running statistics; published by copy */
    double temp_sum[GW_MAX_DEVICES];
    gw_batch_t cur;
    size_t cur_cap;
    uint64_t batch_seq;
} gw_aggregator_t;

void *gw_aggregator_main(void *arg);

/* The database: one SQLite connection (and prepared INSERT) per pool slot. */
typedef struct gw_db gw_db_t;

/*
 * Opens (creating if missing) the database at path with n connections in WAL mode, creates the
 * readings table, prepares the insert statement on every connection. Blocking: call it through
 * sl_blocking() or outside the runtime. Returns NULL and a message in err on failure.
 */
gw_db_t *gw_db_open(const char *path, int n, int64_t run_id, char *err, size_t errlen);

/* Finalizes the statements and closes every connection. Blocking. */
void gw_db_close(gw_db_t *db);

/* Interrupts every write in progress (sqlite3_interrupt: the transaction rolls back). Never
 * waits; any thread. */
void gw_db_interrupt(gw_db_t *db);

/* Storage: receives batches, writes each on a pooled connection while holding a db permit. */
typedef struct gw_storage {
    const gw_config_t *cfg;
    gw_stats_t *stats;
    sl_mpsc_rx_t *rx; /* owned receiver (gw_batch_t) */
    gw_db_t *db;      /* borrowed */
    sl_sem_t *pool;   /* borrowed: "db connection" permits */
    sl_tracker_t *writers;
    /* Triggered when the shutdown is forced: a writer that has not started its write drops
     * its batch (counted in readings_dropped), one that has is interrupted. */
    sl_cancel_t *force;
    gw_ratelimit_t rl_busy;
} gw_storage_t;

void *gw_storage_main(void *arg);

/* A client: every snapshot from the broadcast, resync from the watch on lag, into its sink. */
typedef struct gw_client {
    int id;
    gw_stats_t *stats;
    sl_broadcast_rx_t *rx; /* owned */
    sl_watch_rx_t *wrx;    /* owned */
    gw_sink_t *sink;       /* owned */
    /* Task state. */
    gw_snapshot_t snap;
    uint64_t received, lagged, missed;
} gw_client_t;

void *gw_client_main(void *arg);

/* The health checker: every interval, 2-3 random devices asked for their DeviceStatus. */
typedef struct gw_health {
    const gw_config_t *cfg;
    gw_stats_t *stats;
    int ndevices;
    sl_mpsc_tx_t **req; /* owned: req[i] sends requests to device i + 1 */
    sl_cancel_t *shutdown;
    uint64_t rng;
    int order[GW_MAX_DEVICES]; /* a shuffled round: every device is probed once per round */
    int next;
} gw_health_t;

void *gw_health_main(void *arg);

#endif /* GATEWAY_PIPELINE_H */
