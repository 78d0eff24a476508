/*
 * sluice-gateway: the data types that flow through the pipeline, the run's configuration and
 * its accounting counters. Every component includes this header and <sluice.h>, nothing else
 * from the library.
 *
 *   [source] -> device --mpsc(ingest)--> aggregator --mpsc(storage)--> storage (SQLite)
 *                  ^                         |  \--broadcast + watch--> client -> [sink]
 *                  |                         |
 *   health checker +--mpsc(request) / oneshot(DeviceStatus)
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice.h>

#define GW_MAX_DEVICES 128 /* a snapshot carries one entry per device, by value */
#define GW_MAX_CLIENTS 64
#define GW_MAX_FAULTS  16

/* One sensor reading (TelemetryData). */
typedef struct gw_reading {
    uint32_t device_id; /* 1..devices */
    uint32_t pad_;
    uint64_t seq;       /* per device, from 1, no gaps */
    int64_t timestamp;  /* wall clock, ms since the epoch */
    double temperature; /* degrees Celsius */
    double humidity;    /* percent */
    double battery;     /* percent */
} gw_reading_t;

/* The answer to a health probe (DeviceStatus). */
typedef struct gw_device_status {
    uint32_t device_id;
    uint32_t battery_level; /* percent */
    uint64_t uptime_seconds;
} gw_device_status_t;

/* Per-device statistics inside a snapshot. */
typedef struct gw_device_stats {
    uint64_t count;
    double avg_temperature;
    double min_temperature;
    double max_temperature;
    int64_t last_seen; /* wall clock ms of the last reading; 0: never */
    uint64_t last_seq;
} gw_device_stats_t;

/* SystemSnapshot: copied by value into the broadcast ring and the watch. */
typedef struct gw_snapshot {
    uint64_t seq; /* 0 for the initial (empty) snapshot, then 1, 2, ... */
    int64_t timestamp;
    uint32_t active_devices; /* devices seen recently */
    uint32_t ndevices;       /* entries used in devices[] */
    uint64_t total_messages;
    gw_device_stats_t devices[GW_MAX_DEVICES]; /* devices[i] is device i + 1 */
} gw_snapshot_t;

/* A batch on its way to storage: the aggregator allocates items, storage frees them. */
typedef struct gw_batch {
    uint64_t seq;
    size_t n;
    gw_reading_t *items; /* malloc'd, n entries */
} gw_batch_t;

typedef enum gw_log_format { GW_LOG_TEXT = 0, GW_LOG_JSON = 1 } gw_log_format_t;

typedef struct gw_slow_client {
    int id;
    int64_t delay_ns;
} gw_slow_client_t;

typedef struct gw_device_panic {
    int id;
    int64_t after_ns;
} gw_device_panic_t;

/* The run's configuration, filled by gw_cli_parse(). */
typedef struct gw_config {
    int devices;
    int clients;
    double rate_hz;
    int64_t duration_ns; /* 0: until SIGINT/SIGTERM */
    size_t ingest_queue;
    size_t storage_queue;
    size_t snapshot_buffer;
    int64_t snapshot_interval_ns;
    size_t device_slots;
    size_t db_pool;
    int64_t batch_interval_ns;
    size_t batch_max;
    int64_t health_interval_ns;
    int64_t health_timeout_ns;
    int64_t shutdown_timeout_ns;
    const char *db_path;
    gw_log_format_t log_format;
    int quiet;
    int workers;
    uint64_t seed;
    int64_t storage_delay_ns;
    int64_t transmit_ns; /* bandwidth slot hold per reading; -1: automatic */
    gw_slow_client_t slow[GW_MAX_FAULTS];
    int nslow;
    gw_device_panic_t panics[GW_MAX_FAULTS];
    int npanics;
    int stalled[GW_MAX_FAULTS];
    int nstalled;
    int dropping[GW_MAX_FAULTS];
    int ndropping;
} gw_config_t;

/* Run-wide accounting; every field is updated with relaxed atomics by the task that owns it. */
typedef struct gw_stats {
    atomic_uint_fast64_t readings_sent;
    atomic_uint_fast64_t readings_received;
    atomic_uint_fast64_t readings_stored;
    atomic_uint_fast64_t readings_dropped;
    atomic_uint_fast64_t batches;
    atomic_uint_fast64_t snapshots;
    atomic_uint_fast64_t snapshots_delivered;
    atomic_uint_fast64_t client_lagged;
    atomic_uint_fast64_t snapshots_missed;
    atomic_uint_fast64_t health_ok;
    atomic_uint_fast64_t health_timeout;
    atomic_uint_fast64_t health_failed;
    atomic_uint_fast64_t tasks_ok;
    atomic_uint_fast64_t tasks_failed;
    atomic_uint_fast64_t bandwidth_waits;
    atomic_uint_fast64_t ingest_full;
    atomic_uint_fast64_t storage_full;
    atomic_uint_fast64_t db_busy;
    atomic_uint_fast64_t seq_gaps;
} gw_stats_t;

static inline void gw_count(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t gw_read(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Wall clock in ms since the epoch (timestamps in readings and snapshots). */
int64_t gw_wall_ms(void);

/* A small per-task pseudo-random generator (xorshift64*). */
static inline uint64_t gw_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A uniform double in [0, 1). */
static inline double gw_rand01(uint64_t *s)
{
    return (double)(gw_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

#endif /* GATEWAY_H */
