/*
 * sluice-gateway: one log line per event on stdout, as text or as JSON lines.
 *
 * An event has a level, a dotted name ("device.bandwidth_wait") and typed fields. Its text
 * form comes from a template whose {name} placeholders are replaced by the fields, so both
 * formats come from the same call:
 *
 *     GW_LOG(GW_INFO, "device.bandwidth_wait", "📱 Device {device} waiting for bandwidth slot",
 *            GW_I("device", id));
 *
 * text:  12:00:01.250 INFO  📱 Device 3 waiting for bandwidth slot
 * json:  {"ts":"2025-01-01T12:00:01.250Z","level":"info","event":"device.bandwidth_wait",
 *         "msg":"📱 Device 3 waiting for bandwidth slot","fields":{"device":3}}
 *
 * Each line is written with one write(2), so lines from different worker threads never
 * interleave. --quiet silences events below ERROR; ERROR events then go to stderr, so a
 * failure is never silent. If stdout stops taking lines (its reader went away: the gateway
 * ignores SIGPIPE), event lines stop, ERROR events go to stderr, and the run goes on; the
 * final summary line is always attempted, and a failure to write it is reported on stderr.
 */
#ifndef GATEWAY_LOG_H
#define GATEWAY_LOG_H

#include <stdint.h>

#include "gateway.h"

typedef enum gw_level { GW_DEBUG = 0, GW_INFO = 1, GW_WARN = 2, GW_ERROR = 3 } gw_level_t;

typedef enum gw_ftype { GW_F_END = 0, GW_F_INT, GW_F_UINT, GW_F_DBL, GW_F_STR } gw_ftype_t;

typedef struct gw_field {
    const char *key;
    gw_ftype_t type;
    union {
        int64_t i;
        uint64_t u;
        double d;
        const char *s;
    };
} gw_field_t;

#define GW_I(k, v) ((gw_field_t){.key = (k), .type = GW_F_INT, .i = (int64_t)(v)})
#define GW_U(k, v) ((gw_field_t){.key = (k), .type = GW_F_UINT, .u = (uint64_t)(v)})
#define GW_D(k, v) ((gw_field_t){.key = (k), .type = GW_F_DBL, .d = (double)(v)})
#define GW_S(k, v) ((gw_field_t){.key = (k), .type = GW_F_STR, .s = (v)})

/* Logs an event with at least one field. */
#define GW_LOG(level, event, tmpl, ...) \
    gw_log_emit((level), (event), (tmpl), (const gw_field_t[]){__VA_ARGS__, {.key = NULL}})
/* Logs an event without fields. */
#define GW_LOG0(level, event, tmpl) gw_log_emit((level), (event), (tmpl), NULL)

/* Sets the output format and whether events are silenced. Call once, before any task runs. */
void gw_log_init(gw_log_format_t format, int quiet);

/* Returns nonzero if events of this level are written. */
int gw_log_enabled(gw_level_t level);

/* Writes one event line (fields end with an entry whose key is NULL; fields may be NULL). */
void gw_log_emit(gw_level_t level, const char *event, const char *tmpl, const gw_field_t *fields);

/* Writes a line to stdout as is (the summary); never silenced. Returns 0, or the errno that
 * stopped the write. */
int gw_log_raw(const char *line);

/* For a process about to exit with tasks still running: stdout, unless it is a terminal,
 * stops blocking until gw_log_final() (a reader that stopped reading cannot hold the exit up;
 * a line that finds the pipe full fails, and ERROR lines and the summary then go to stderr).
 * Any thread. */
void gw_log_unblock(void);

/* As gw_log_raw() for the last line of a process exiting with tasks still running: event lines
 * are dropped from now on, and those being written get up to 200 ms to finish first, so that
 * line is the last on stdout; then stdout's flags are put back. Blocks the calling thread for
 * at most that long. */
int gw_log_final(const char *line);

/* Per-source rate limit for events that can repeat thousands of times a second. */
typedef struct gw_ratelimit {
    int64_t last;        /* sl_now() of the last event let through; 0: none yet */
    uint64_t suppressed; /* events held back since then */
} gw_ratelimit_t;

/*
 * Returns 1 if an event may be logged now (the first one always may, then at most one per
 * period ns) and stores in *suppressed how many were held back since the last one; else
 * counts this one as suppressed and returns 0. Not thread-safe: one owner task.
 */
int gw_ratelimit_allow(gw_ratelimit_t *rl, int64_t period, uint64_t *suppressed);

#endif /* GATEWAY_LOG_H */
