/*
 * sluice-gateway: command line parsing. Every flag takes its value as the next argument or
 * after '=' (--devices 7, --devices=7). A bad value is one line on stderr naming the flag.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "sluice-gateway"

void gw_config_defaults(gw_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->devices = 7;
    cfg->clients = 4;
    cfg->rate_hz = 1.0;
    cfg->duration_ns = 0;
    cfg->ingest_queue = 50;
    cfg->storage_queue = 10;
    cfg->snapshot_buffer = 100;
    cfg->snapshot_interval_ns = 1000 * SL_MSEC;
    cfg->device_slots = 5;
    cfg->db_pool = 2;
    cfg->batch_interval_ns = 2000 * SL_MSEC;
    cfg->batch_max = 5000;
    cfg->health_interval_ns = 3000 * SL_MSEC;
    cfg->health_timeout_ns = 500 * SL_MSEC;
    cfg->shutdown_timeout_ns = 30 * SL_SEC;
    cfg->db_path = "./sluice.db";
    cfg->log_format = GW_LOG_TEXT;
    cfg->workers = 0;
    cfg->seed = 0;
    cfg->transmit_ns = -1;
}

static void usage(void)
{
    printf(
        "usage: " PROG " [options]\n"
        "\n"
        "A telemetry gateway on libsluice: simulated devices send readings through a bounded\n"
        "mpsc to an aggregator, which publishes snapshots (broadcast + watch) to clients and\n"
        "batches (bounded mpsc) to a SQLite writer; a health checker probes devices with\n"
        "oneshot requests. Ends at --duration or on SIGINT/SIGTERM/SIGHUP, with a graceful drain.\n"
        "\n"
        "Topology:\n"
        "  --devices N            simulated devices (1..%d, default 7)\n"
        "  --clients N            snapshot clients (0..%d, default 4)\n"
        "  --rate HZ              readings per second per device (default 1)\n"
        "  --duration SECONDS     run time, from when every task is running (default: until\n"
        "                         SIGINT/SIGTERM/SIGHUP)\n"
        "  --ingest-queue N       device -> aggregator mpsc capacity (default 50)\n"
        "  --storage-queue N      aggregator -> storage mpsc capacity, in batches (default 10)\n"
        "  --snapshot-buffer N    broadcast ring for snapshots, 1..4096 (default 100)\n"
        "  --snapshot-interval MS snapshot period (default 1000)\n"
        "  --device-slots N       bandwidth semaphore permits (default 5)\n"
        "  --transmit-ms N        how long each send holds its bandwidth slot (default: a\n"
        "                         tenth of the reading period, at most 50 ms, 0 below 1 ms)\n"
        "  --db-pool N            database connections / permits (default 2)\n"
        "  --batch-interval MS    storage batch period (default 2000)\n"
        "  --batch-max N          flush a batch early at N readings (default 5000)\n"
        "  --health-interval MS   health check period (default 3000)\n"
        "  --health-timeout MS    health reply timeout (default 500)\n"
        "  --shutdown-timeout MS  abort tasks still running this long after shutdown began\n"
        "                         (default 30000; a second signal aborts at once); exit\n"
        "                         this long after the abort, or at a further signal\n"
        "  --db PATH              SQLite database (default ./sluice.db; created if missing)\n"
        "  --workers N            runtime worker threads (default: number of CPUs)\n"
        "  --seed N               random seed (default: from the clock)\n"
        "\n"
        "Output:\n"
        "  --log-format text|json one event per line on stdout (default text)\n"
        "  --quiet                no event lines but errors (on stderr); the summary line\n"
        "\n"
        "Fault switches:\n"
        "  --storage-delay-ms N   each batch write takes N ms more\n"
        "  --slow-client ID:MS    client ID sleeps MS per snapshot (repeatable)\n"
        "  --device-panic ID@SECONDS  device ID panics after SECONDS (repeatable)\n"
        "  --device-stall ID      device ID stops answering health checks (repeatable)\n"
        "  --device-drop ID       device ID drops health requests unanswered (repeatable)\n"
        "\n"
        "  --help                 this text\n"
        "\n"
        "The last line on stdout is a JSON object accounting for the run. Exit status: 0 when\n"
        "every reading sent was stored, 1 otherwise or on a fatal error, 2 on a bad option.\n",
        GW_MAX_DEVICES, GW_MAX_CLIENTS);
}

/* The value as the error line shows it: control bytes (a newline, an escape sequence) are
 * written as \xHH, so that the error stays one line and the terminal stays sane; at most
 * 64 bytes of it are shown. */
static void print_value(FILE *f, const char *val)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)val; *p; p++, n++) {
        if (n == 64) {
            fputs("...", f);
            return;
        }
        if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

static int bad(const char *flag, const char *val, const char *what)
{
    fprintf(stderr, PROG ": %s: expected %s, got '", flag, what);
    print_value(stderr, val ? val : "");
    fputs("'\n", stderr);
    return 2;
}

static int bad_range(const char *flag, const char *val, const char *what, long long lo,
                     long long hi)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%s in %lld..%lld", what, lo, hi);
    return bad(flag, val, buf);
}

/* Plain decimal notation, as a person types a number: an optional '-', then a digit (or, when
 * `point`, a '.'); no leading blank, no '+', and no hexadecimal (which strtoll and strtod would
 * also take). */
static int plain_number(const char *s, int point)
{
    if (*s == '-')
        s++;
    if (!(isdigit((unsigned char)*s) || (point && *s == '.')))
        return 0;
    return strpbrk(s, "xX") == NULL;
}

/* Parses a whole decimal integer in [lo, hi]. */
static int parse_i64(const char *s, long long lo, long long hi, long long *out)
{
    if (!s || !plain_number(s, 0))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_dbl(const char *s, double lo, double hi, double *out)
{
    if (!s || !plain_number(s, 1))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

typedef struct opt {
    const char *name;
    int has_arg;
} opt_t;

static const opt_t opts[] = {
    {"--devices", 1},
    {"--clients", 1},
    {"--rate", 1},
    {"--duration", 1},
    {"--ingest-queue", 1},
    {"--storage-queue", 1},
    {"--snapshot-buffer", 1},
    {"--snapshot-interval", 1},
    {"--device-slots", 1},
    {"--db-pool", 1},
    {"--batch-interval", 1},
    {"--batch-max", 1},
    {"--health-interval", 1},
    {"--health-timeout", 1},
    {"--shutdown-timeout", 1},
    {"--db", 1},
    {"--workers", 1},
    {"--seed", 1},
    {"--log-format", 1},
    {"--quiet", 0},
    {"--storage-delay-ms", 1},
    {"--slow-client", 1},
    {"--device-panic", 1},
    {"--device-stall", 1},
    {"--transmit-ms", 1},
    {"--device-drop", 1},
    {"--help", 0},
};

static int apply(gw_config_t *c, const char *flag, const char *v)
{
    long long i;
    double d;
    const long long big = 1000000000LL;

#define INT_FLAG(name, lo, hi, field)                        \
    if (strcmp(flag, name) == 0) {                           \
        if (parse_i64(v, lo, hi, &i))                        \
            return bad_range(flag, v, "an integer", lo, hi); \
        c->field = i;                                        \
        return 0;                                            \
    }
#define MS_FLAG(name, lo, hi, field)                           \
    if (strcmp(flag, name) == 0) {                             \
        if (parse_i64(v, lo, hi, &i))                          \
            return bad_range(flag, v, "milliseconds", lo, hi); \
        c->field = i * SL_MSEC;                                \
        return 0;                                              \
    }

    INT_FLAG("--devices", 1, GW_MAX_DEVICES, devices)
    INT_FLAG("--clients", 0, GW_MAX_CLIENTS, clients)
    INT_FLAG("--ingest-queue", 1, 1000000, ingest_queue)
    INT_FLAG("--storage-queue", 1, 100000, storage_queue)
    INT_FLAG("--snapshot-buffer", 1, 4096, snapshot_buffer)
    INT_FLAG("--device-slots", 1, 100000, device_slots)
    INT_FLAG("--db-pool", 1, 64, db_pool)
    INT_FLAG("--batch-max", 1, 10000000, batch_max)
    INT_FLAG("--workers", 0, 1024, workers)
    MS_FLAG("--snapshot-interval", 1, 86400000, snapshot_interval_ns)
    MS_FLAG("--batch-interval", 1, 86400000, batch_interval_ns)
    MS_FLAG("--health-interval", 1, 86400000, health_interval_ns)
    MS_FLAG("--health-timeout", 1, 86400000, health_timeout_ns)
    MS_FLAG("--shutdown-timeout", 1, 86400000, shutdown_timeout_ns)
    MS_FLAG("--storage-delay-ms", 0, 86400000, storage_delay_ns)
    MS_FLAG("--transmit-ms", 0, 86400000, transmit_ns)
#undef INT_FLAG
#undef MS_FLAG

    if (strcmp(flag, "--rate") == 0) {
        if (parse_dbl(v, 0.001, 1e6, &d))
            return bad(flag, v, "readings per second in 0.001..1000000");
        c->rate_hz = d;
        return 0;
    }
    if (strcmp(flag, "--duration") == 0) {
        if (parse_dbl(v, 0.001, 31536000.0, &d))
            return bad(flag, v, "seconds in 0.001..31536000");
        c->duration_ns = (int64_t)(d * 1e9);
        return 0;
    }
    if (strcmp(flag, "--db") == 0) {
        if (!v || !*v)
            return bad(flag, v, "a file path");
        c->db_path = v;
        return 0;
    }
    if (strcmp(flag, "--seed") == 0) {
        if (parse_i64(v, 0, 0x7fffffffffffffffLL, &i))
            return bad(flag, v, "a non-negative integer");
        c->seed = (uint64_t)i;
        return 0;
    }
    if (strcmp(flag, "--log-format") == 0) {
        if (v && strcmp(v, "text") == 0)
            c->log_format = GW_LOG_TEXT;
        else if (v && strcmp(v, "json") == 0)
            c->log_format = GW_LOG_JSON;
        else
            return bad(flag, v, "text or json");
        return 0;
    }
    if (strcmp(flag, "--quiet") == 0) {
        c->quiet = 1;
        return 0;
    }
    if (strcmp(flag, "--slow-client") == 0) {
        const char *colon = v ? strchr(v, ':') : NULL;
        char id[32];
        if (!colon || (size_t)(colon - v) >= sizeof id)
            return bad(flag, v, "ID:MS");
        memcpy(id, v, (size_t)(colon - v));
        id[colon - v] = '\0';
        long long ms;
        if (parse_i64(id, 1, GW_MAX_CLIENTS, &i) || parse_i64(colon + 1, 0, big, &ms))
            return bad(flag, v, "ID:MS (client id from 1, milliseconds)");
        if (c->nslow >= GW_MAX_FAULTS)
            return bad(flag, v, "at most 16 uses");
        c->slow[c->nslow].id = (int)i;
        c->slow[c->nslow].delay_ns = ms * SL_MSEC;
        c->nslow++;
        return 0;
    }
    if (strcmp(flag, "--device-panic") == 0) {
        const char *at = v ? strchr(v, '@') : NULL;
        char id[32];
        if (!at || (size_t)(at - v) >= sizeof id)
            return bad(flag, v, "ID@SECONDS");
        memcpy(id, v, (size_t)(at - v));
        id[at - v] = '\0';
        if (parse_i64(id, 1, GW_MAX_DEVICES, &i) || parse_dbl(at + 1, 0.0, 31536000.0, &d))
            return bad(flag, v, "ID@SECONDS (device id from 1, seconds)");
        if (c->npanics >= GW_MAX_FAULTS)
            return bad(flag, v, "at most 16 uses");
        c->panics[c->npanics].id = (int)i;
        c->panics[c->npanics].after_ns = (int64_t)(d * 1e9);
        c->npanics++;
        return 0;
    }
    if (strcmp(flag, "--device-stall") == 0) {
        if (parse_i64(v, 1, GW_MAX_DEVICES, &i))
            return bad(flag, v, "a device id from 1");
        if (c->nstalled >= GW_MAX_FAULTS)
            return bad(flag, v, "at most 16 uses");
        c->stalled[c->nstalled++] = (int)i;
        return 0;
    }
    if (strcmp(flag, "--device-drop") == 0) {
        if (parse_i64(v, 1, GW_MAX_DEVICES, &i))
            return bad(flag, v, "a device id from 1");
        if (c->ndropping >= GW_MAX_FAULTS)
            return bad(flag, v, "at most 16 uses");
        c->dropping[c->ndropping++] = (int)i;
        return 0;
    }
    fprintf(stderr, PROG ": %s: unknown option (see --help)\n", flag);
    return 2;
}

int gw_cli_parse(int argc, char **argv, gw_config_t *cfg)
{
    gw_config_defaults(cfg);
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k];
        char flag[64];
        const char *val = NULL;
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) != 0 || flen >= sizeof flag) {
            fputs(PROG ": ", stderr);
            print_value(stderr, arg);
            fputs(": unexpected argument (see --help)\n", stderr);
            return 2;
        }
        memcpy(flag, arg, flen);
        flag[flen] = '\0';
        const opt_t *o = NULL;
        for (size_t j = 0; j < sizeof opts / sizeof opts[0]; j++) {
            if (strcmp(opts[j].name, flag) == 0)
                o = &opts[j];
        }
        if (!o) {
            fputs(PROG ": ", stderr);
            print_value(stderr, flag);
            fputs(": unknown option (see --help)\n", stderr);
            return 2;
        }
        if (strcmp(flag, "--help") == 0) {
            if (eq) {
                fprintf(stderr, PROG ": %s: takes no value\n", flag);
                return 2;
            }
            usage();
            return 1;
        }
        if (o->has_arg) {
            if (eq) {
                val = eq + 1;
            } else if (k + 1 < argc) {
                val = argv[++k];
            } else {
                fprintf(stderr, PROG ": %s: missing value (see --help)\n", flag);
                return 2;
            }
        } else if (eq) {
            fprintf(stderr, PROG ": %s: takes no value\n", flag);
            return 2;
        }
        int r = apply(cfg, flag, val);
        if (r)
            return r;
    }
    if (cfg->transmit_ns < 0) {
        /* The simulated uplink: long enough at low rates that 7 devices ticking together
         * contend for 5 slots, as in the seed document; nothing at high rates. */
        double t = 1e9 / cfg->rate_hz / 10.0;
        if (t > 50.0 * SL_MSEC)
            t = 50.0 * SL_MSEC;
        cfg->transmit_ns = t < SL_MSEC ? 0 : (int64_t)t;
    }
    /* Cross-checks that need the final device and client counts. */
    for (int k = 0; k < cfg->npanics; k++) {
        if (cfg->panics[k].id > cfg->devices) {
            fprintf(stderr, PROG ": --device-panic: device %d does not exist (--devices %d)\n",
                    cfg->panics[k].id, cfg->devices);
            return 2;
        }
    }
    for (int k = 0; k < cfg->nstalled; k++) {
        if (cfg->stalled[k] > cfg->devices) {
            fprintf(stderr, PROG ": --device-stall: device %d does not exist (--devices %d)\n",
                    cfg->stalled[k], cfg->devices);
            return 2;
        }
    }
    for (int k = 0; k < cfg->ndropping; k++) {
        if (cfg->dropping[k] > cfg->devices) {
            fprintf(stderr, PROG ": --device-drop: device %d does not exist (--devices %d)\n",
                    cfg->dropping[k], cfg->devices);
            return 2;
        }
    }
    for (int k = 0; k < cfg->nslow; k++) {
        if (cfg->slow[k].id > cfg->clients) {
            fprintf(stderr, PROG ": --slow-client: client %d does not exist (--clients %d)\n",
                    cfg->slow[k].id, cfg->clients);
            return 2;
        }
    }
    return 0;
}
