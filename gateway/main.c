/*
 * sluice-gateway: builds the pipeline, runs it until --duration or SIGINT/SIGTERM, shuts it
 * down gracefully and prints the run's accounting as the last line on stdout.
 *
 * Shutdown has one path whatever starts it: the main task triggers the shutdown token. Devices
 * and the health checker watch the token; everything downstream ends when its input closes:
 * devices drop their senders -> the aggregator drains the ingest queue, flushes its last batch
 * and drops its senders -> storage writes every queued batch, clients drain the ring. The main
 * task joins every task of its JoinSet as they end, logging each outcome; a second signal, or
 * --shutdown-timeout, aborts whatever is left (the set's tasks, and the database writers
 * through their own token: a write not started is dropped, one in progress interrupted). If
 * even that does not end the run, a further signal or the timeout once more exits at once,
 * printing the accounting with every reading not stored counted dropped.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "pipeline.h"

#define TASK_STACK   (256 * 1024)
#define HEALTH_QUEUE 4

typedef struct app {
    gw_config_t cfg;
    gw_stats_t stats;
    int64_t run_id;
    int fatal;
    uint64_t ntasks;
    struct {
        uint64_t id;
        char name[32];
        int kind; /* 0: core task, 1: device */
    } tasks[GW_MAX_DEVICES + GW_MAX_CLIENTS + 8];
    int core_failed;
    int64_t t0; /* sl_clock() when the runtime started */
} app_t;

typedef struct open_job {
    const gw_config_t *cfg;
    int64_t run_id;
    gw_db_t *db;
    char err[512];
} open_job_t;

static void *open_blocking(void *arg)
{
    open_job_t *j = arg;
    j->db = gw_db_open(j->cfg->db_path, (int)j->cfg->db_pool, j->run_id, j->err, sizeof j->err);
    return NULL;
}

static void *close_blocking(void *arg)
{
    gw_db_close(arg);
    return NULL;
}

static int spawn(app_t *app, sl_joinset_t *set, const char *name, int kind, sl_task_fn fn,
                 void *arg)
{
    sl_spawn_opts_t so = {.name = name, .stack_size = TASK_STACK};
    uint64_t id;
    int r = sl_joinset_spawn_ex(set, &so, fn, arg, &id);
    if (r != 0) {
        GW_LOG(GW_ERROR, "main.spawn_failed", "❌ Could not spawn {task}: {error}",
               GW_S("task", name), GW_S("error", sl_err_name(r)));
        return r;
    }
    uint64_t k = app->ntasks++;
    app->tasks[k].id = id;
    snprintf(app->tasks[k].name, sizeof app->tasks[k].name, "%s", name);
    app->tasks[k].kind = kind;
    return 0;
}

static void record(app_t *app, const sl_join_t *j)
{
    const char *name = "?";
    int kind = 0;
    for (uint64_t k = 0; k < app->ntasks; k++) {
        if (app->tasks[k].id == j->id) {
            name = app->tasks[k].name;
            kind = app->tasks[k].kind;
        }
    }
    if (j->status == SL_TASK_RETURNED) {
        gw_count(&app->stats.tasks_ok, 1);
        GW_LOG(GW_INFO, "main.task_done", "✅ Task {task} finished", GW_S("task", name));
        return;
    }
    gw_count(&app->stats.tasks_failed, 1);
    if (kind == 0)
        app->core_failed = 1;
    if (j->status == SL_TASK_PANICKED)
        GW_LOG(GW_ERROR, "main.task_panicked",
               "💥 Task {task} panicked: {message} (the other tasks carry on)", GW_S("task", name),
               GW_S("message", j->message));
    else
        GW_LOG(GW_ERROR, "main.task_cancelled", "💥 Task {task} was cancelled", GW_S("task", name));
}

static int64_t find_panic(const gw_config_t *cfg, int id)
{
    for (int k = 0; k < cfg->npanics; k++) {
        if (cfg->panics[k].id == id)
            return cfg->panics[k].after_ns > 0 ? cfg->panics[k].after_ns : 1;
    }
    return 0;
}

static int is_stalled(const gw_config_t *cfg, int id)
{
    for (int k = 0; k < cfg->nstalled; k++) {
        if (cfg->stalled[k] == id)
            return 1;
    }
    return 0;
}

static int is_dropping(const gw_config_t *cfg, int id)
{
    for (int k = 0; k < cfg->ndropping; k++) {
        if (cfg->dropping[k] == id)
            return 1;
    }
    return 0;
}

static int64_t slow_delay(const gw_config_t *cfg, int id)
{
    for (int k = 0; k < cfg->nslow; k++) {
        if (cfg->slow[k].id == id)
            return cfg->slow[k].delay_ns;
    }
    return 0;
}

/* Prints the run's accounting as the last line on stdout; returns the exit status. `lost`:
 * the process is about to exit with tasks still running, so every reading sent and not stored
 * is counted dropped. */
static int summary(app_t *app, int lost)
{
    int64_t elapsed = sl_clock() - app->t0;
    gw_stats_t *s = &app->stats;
    uint64_t sent = gw_read(&s->readings_sent), recv = gw_read(&s->readings_received),
             stored = gw_read(&s->readings_stored), dropped = gw_read(&s->readings_dropped);
    if (lost)
        dropped = sent > stored ? sent - stored : 0;
    char line[1536];
    snprintf(
        line, sizeof line,
        "{\"readings_sent\":%llu,\"readings_received\":%llu,\"readings_stored\":%llu,"
        "\"readings_dropped\":%llu,\"batches\":%llu,\"snapshots\":%llu,"
        "\"client_lagged\":%llu,\"health_ok\":%llu,\"health_timeout\":%llu,"
        "\"health_failed\":%llu,\"tasks_ok\":%llu,\"tasks_failed\":%llu,"
        "\"duration_ms\":%lld,\"snapshots_delivered\":%llu,\"snapshots_missed\":%llu,"
        "\"bandwidth_waits\":%llu,\"ingest_full\":%llu,\"storage_full\":%llu,"
        "\"db_busy\":%llu,\"seq_gaps\":%llu,\"run_id\":%lld}",
        (unsigned long long)sent, (unsigned long long)recv, (unsigned long long)stored,
        (unsigned long long)dropped, (unsigned long long)gw_read(&s->batches),
        (unsigned long long)gw_read(&s->snapshots), (unsigned long long)gw_read(&s->client_lagged),
        (unsigned long long)gw_read(&s->health_ok), (unsigned long long)gw_read(&s->health_timeout),
        (unsigned long long)gw_read(&s->health_failed), (unsigned long long)gw_read(&s->tasks_ok),
        (unsigned long long)gw_read(&s->tasks_failed), (long long)(elapsed / SL_MSEC),
        (unsigned long long)gw_read(&s->snapshots_delivered),
        (unsigned long long)gw_read(&s->snapshots_missed),
        (unsigned long long)gw_read(&s->bandwidth_waits),
        (unsigned long long)gw_read(&s->ingest_full), (unsigned long long)gw_read(&s->storage_full),
        (unsigned long long)gw_read(&s->db_busy), (unsigned long long)gw_read(&s->seq_gaps),
        (long long)app->run_id);
    int werr = lost ? gw_log_final(line) : gw_log_raw(line);
    if (werr)
        fprintf(stderr, "sluice-gateway: could not write the summary to stdout: %s\n%s\n",
                strerror(werr), line);
    int balanced = sent == recv && recv == stored && dropped == 0;
    return lost || app->fatal || app->core_failed || !balanced || werr ? 1 : 0;
}

/* Waits for the end of the run and for every task; returns when the JoinSet is empty. */
static void supervise(app_t *app, sl_joinset_t *set, sl_cancel_t *shutdown, gw_storage_t *st)
{
    const gw_config_t *cfg = &app->cfg;
    /* --duration counts from here, once every task is spawned: opening the database can take
     * seconds on a busy disk, and that time must not eat into the devices' run (a run whose
     * deadline passed during the open would shut down before any device sent anything). */
    int64_t end = cfg->duration_ns > 0 ? sl_now() + cfg->duration_ns : 0;
    int draining = 0, forced = 0;
    int64_t drain_deadline = 0, drain_start = 0;
    for (;;) {
        sl_clause_t c[5];
        sl_join_t j;
        sl_clause_joinset_join_next(&c[0], set, &j);
        sl_clause_signal(&c[1], SIGINT);
        sl_clause_signal(&c[2], SIGTERM);
        sl_clause_signal(&c[3], SIGHUP); /* the terminal or the session went away */
        if (!draining && end)
            sl_clause_sleep_until(&c[4], end);
        else if (draining)
            sl_clause_sleep_until(&c[4], drain_deadline);
        else
            sl_clause_none(&c[4]);
        int i = sl_select(c, 5, SL_SELECT_BIASED, SL_FOREVER);
        if (i < 0)
            break;
        if (i == 0) {
            if (c[0].res != 0)
                break; /* SL_EEMPTY: every task has been joined */
            record(app, &j);
            continue;
        }
        if (!draining) {
            const char *why = i == 1   ? "SIGINT"
                              : i == 2 ? "SIGTERM"
                              : i == 3 ? "SIGHUP"
                                       : "duration elapsed";
            GW_LOG(GW_INFO, "main.shutdown",
                   "🛑 Shutdown requested ({reason}): notifying every task; devices stop, the "
                   "pipeline drains",
                   GW_S("reason", why));
            sl_cancel_trigger(shutdown);
            draining = 1;
            drain_start = sl_now();
            drain_deadline = sl_deadline_in(cfg->shutdown_timeout_ns);
        } else if (!forced) {
            GW_LOG(GW_WARN, "main.forced",
                   "🛑 {reason} during shutdown: aborting the {left} tasks still running",
                   GW_S("reason", i == 4 ? "Shutdown timeout" : "Second signal"),
                   GW_U("left", sl_joinset_len(set)));
            sl_joinset_abort_all(set);
            /* The database writers are the storage task's (a TaskTracker), not the set's:
             * a write not started is dropped, one in progress is interrupted. */
            sl_cancel_trigger(st->force);
            gw_db_interrupt(st->db);
            forced = 1;
            drain_deadline = sl_deadline_in(cfg->shutdown_timeout_ns);
        } else {
            /* Still not over after the abort (a task that ignores cancellation, a blocking
             * call that does not return): a further signal, or the timeout once more, ends
             * the process now, with its accounting, as the operator asked. */
            gw_log_unblock();
            GW_LOG(GW_ERROR, "main.exit_now",
                   "🛑 {reason} after the abort: exiting with {left} tasks still running",
                   GW_S("reason", i == 4 ? "Shutdown timeout" : "Another signal"),
                   GW_U("left", sl_joinset_len(set)));
            fflush(stdout);
            _exit(summary(app, 1));
        }
    }
    if (draining)
        GW_LOG(GW_INFO, "main.joined", "🏁 All {tasks} tasks joined, {ms} ms after shutdown began",
               GW_U("tasks", app->ntasks), GW_I("ms", (sl_now() - drain_start) / SL_MSEC));
    else
        GW_LOG(GW_INFO, "main.joined", "🏁 All {tasks} tasks ended", GW_U("tasks", app->ntasks));
}

static void *app_main(void *arg)
{
    app_t *app = arg;
    gw_config_t *cfg = &app->cfg;
    gw_stats_t *stats = &app->stats;
    GW_LOG(GW_INFO, "main.starting",
           "🚀 sluice-gateway starting: {devices} devices at {rate} Hz, {clients} clients, "
           "{workers} workers, database {db}",
           GW_I("devices", cfg->devices), GW_D("rate", cfg->rate_hz), GW_I("clients", cfg->clients),
           GW_I("workers", sl_runtime_workers(sl_runtime_current())), GW_S("db", cfg->db_path));

    open_job_t oj = {.cfg = cfg, .run_id = app->run_id};
    int r = sl_blocking(open_blocking, &oj, NULL);
    if (r != 0 || !oj.db) {
        fprintf(stderr, "sluice-gateway: --db: %s\n", r ? sl_strerror(r) : oj.err);
        GW_LOG(GW_ERROR, "main.db_failed", "❌ Database: {error}",
               GW_S("error", r ? sl_strerror(r) : oj.err));
        app->fatal = 1;
        return NULL;
    }
    GW_LOG(GW_INFO, "main.db_open",
           "💾 Database {db} open: WAL mode, {pool} connections, run id {run_id}",
           GW_S("db", cfg->db_path), GW_U("pool", cfg->db_pool), GW_I("run_id", app->run_id));

    /* Channels and shared primitives. */
    sl_mpsc_tx_t *ingest_tx, *storage_tx;
    sl_mpsc_rx_t *ingest_rx, *storage_rx;
    sl_broadcast_tx_t *bcast;
    sl_watch_tx_t *watch;
    sl_cancel_t *shutdown;
    sl_sem_t bandwidth, pool;
    gw_snapshot_t *initial = calloc(1, sizeof *initial);
    gw_aggregator_t *agg = calloc(1, sizeof *agg);
    gw_storage_t *st = calloc(1, sizeof *st);
    gw_health_t *health = calloc(1, sizeof *health);
    gw_device_t *devs = calloc((size_t)cfg->devices, sizeof *devs);
    gw_client_t *clients = calloc((size_t)(cfg->clients ? cfg->clients : 1), sizeof *clients);
    sl_mpsc_tx_t **req = calloc((size_t)cfg->devices, sizeof *req);
    if (!initial || !agg || !st || !health || !devs || !clients || !req)
        abort();
    initial->ndevices = (uint32_t)cfg->devices;
    if (sl_mpsc_new(sizeof(gw_reading_t), cfg->ingest_queue, &ingest_tx, &ingest_rx) ||
        sl_mpsc_new(sizeof(gw_batch_t), cfg->storage_queue, &storage_tx, &storage_rx) ||
        sl_broadcast_new(sizeof(gw_snapshot_t), cfg->snapshot_buffer, &bcast, NULL) ||
        sl_watch_new(sizeof(gw_snapshot_t), initial, &watch, NULL) || sl_cancel_new(&shutdown) ||
        sl_sem_init(&bandwidth, cfg->device_slots) || sl_sem_init(&pool, cfg->db_pool) ||
        sl_tracker_new(&st->writers) || sl_cancel_new(&st->force)) {
        fprintf(stderr, "sluice-gateway: out of memory\n");
        abort();
    }
    sl_joinset_t *set;
    if (sl_joinset_new(&set))
        abort();

    /* Storage and the aggregator first, then the consumers of snapshots, then producers. */
    st->cfg = cfg;
    st->stats = stats;
    st->rx = storage_rx;
    st->db = oj.db;
    st->pool = &pool;
    spawn(app, set, "storage", 0, gw_storage_main, st);

    agg->cfg = cfg;
    agg->stats = stats;
    agg->ingest = ingest_rx;
    agg->storage = storage_tx;
    agg->bcast = sl_broadcast_tx_clone(bcast);
    agg->watch = sl_watch_tx_clone(watch);

    for (int i = 0; i < cfg->clients; i++) {
        gw_client_t *c = &clients[i];
        c->id = i + 1;
        c->stats = stats;
        c->sink = gw_log_sink_new(c->id, slow_delay(cfg, c->id), shutdown);
        if (!c->sink || sl_broadcast_subscribe(bcast, &c->rx) || sl_watch_subscribe(watch, &c->wrx))
            abort();
        char name[32];
        snprintf(name, sizeof name, "client-%d", c->id);
        spawn(app, set, name, 0, gw_client_main, c);
    }
    /* The aggregator holds the only senders of the snapshot channels from here on. */
    sl_broadcast_tx_drop(bcast);
    sl_watch_tx_drop(watch);
    spawn(app, set, "aggregator", 0, gw_aggregator_main, agg);

    for (int i = 0; i < cfg->devices; i++) {
        gw_device_t *d = &devs[i];
        sl_mpsc_rx_t *hrx;
        if (sl_mpsc_new(sizeof(sl_oneshot_tx_t *), HEALTH_QUEUE, &req[i], &hrx))
            abort();
        d->id = i + 1;
        d->src = gw_sim_source_new((uint32_t)d->id, cfg->rate_hz, cfg->seed);
        if (!d->src)
            abort();
        d->ingest = sl_mpsc_tx_clone(ingest_tx);
        d->health_rx = hrx;
        d->bandwidth = &bandwidth;
        d->shutdown = shutdown;
        d->stats = stats;
        d->stalled = is_stalled(cfg, d->id);
        d->dropping = is_dropping(cfg, d->id);
        d->panic_after_ns = find_panic(cfg, d->id);
        d->transmit_ns = cfg->transmit_ns;
        char name[32];
        snprintf(name, sizeof name, "device-%d", d->id);
        spawn(app, set, name, 1, gw_device_main, d);
    }
    /* Only devices hold ingest senders now: when the last one stops, the aggregator sees the
     * end of the stream. */
    sl_mpsc_tx_drop(ingest_tx);

    health->cfg = cfg;
    health->stats = stats;
    health->ndevices = cfg->devices;
    health->req = req;
    health->shutdown = shutdown;
    health->rng = cfg->seed ^ 0x5851F42D4C957F2DULL;
    spawn(app, set, "health", 0, gw_health_main, health);

    GW_LOG(GW_INFO, "main.running",
           "🚦 Running {tasks} tasks: ingest mpsc({ingest}), {slots} bandwidth slots, storage "
           "mpsc({storage}), broadcast({buffer}) + watch, {pool} DB connections",
           GW_U("tasks", app->ntasks), GW_U("ingest", cfg->ingest_queue),
           GW_U("slots", cfg->device_slots), GW_U("storage", cfg->storage_queue),
           GW_U("buffer", cfg->snapshot_buffer), GW_U("pool", cfg->db_pool));

    supervise(app, set, shutdown, st);

    sl_joinset_free(set);
    sl_tracker_drop(st->writers);
    sl_cancel_drop(st->force);
    sl_blocking(close_blocking, oj.db, NULL);
    GW_LOG(GW_INFO, "main.db_closed", "💾 Database closed", GW_S("db", cfg->db_path));
    sl_cancel_drop(shutdown);
    sl_sem_destroy(&bandwidth);
    sl_sem_destroy(&pool);
    free(req);
    free(clients);
    free(devs);
    free(health);
    free(st);
    free(agg);
    free(initial);
    return NULL;
}

int main(int argc, char **argv)
{
    app_t *app = calloc(1, sizeof *app);
    if (!app)
        return 1;
    int r = gw_cli_parse(argc, argv, &app->cfg);
    if (r != 0) {
        free(app);
        return r == 1 ? 0 : 2;
    }
    gw_config_t *cfg = &app->cfg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    app->run_id = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (cfg->seed == 0)
        cfg->seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
    gw_log_init(cfg->log_format, cfg->quiet);
    /* A log reader that goes away must not kill the run (writes then fail with EPIPE). */
    signal(SIGPIPE, SIG_IGN);
    /* Listen before the runtime starts, so that a signal arriving while it starts is
     * remembered (and starts the shutdown at once), not fatal. */
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        if ((r = sl_signal_listen(sigs[k])) != 0) {
            fprintf(stderr, "sluice-gateway: listening for %s: %s\n", strsignal(sigs[k]),
                    sl_strerror(r));
            free(app);
            return 1;
        }
    }

    sl_runtime_opts_t opts;
    sl_runtime_opts_init(&opts);
    opts.workers = cfg->workers;
    opts.seed = cfg->seed;
    app->t0 = sl_clock();
    r = sl_run(&opts, app_main, app, NULL);
    if (r != 0) {
        fprintf(stderr, "sluice-gateway: runtime: %s\n", sl_strerror(r));
        app->fatal = 1;
    }
    int code = summary(app, 0);
    free(app);
    return code;
}
