/*
 * sluice-gateway: storage.
 *
 * The storage task receives batches from the bounded storage queue. For each one it takes a
 * "db connection" permit (saying so when every connection is busy), then hands the batch and
 * the permit to a writer task tracked by a TaskTracker and goes back for the next batch. So at
 * most db_pool batches are written at once; when all connections are busy the storage task
 * stops receiving, the storage queue fills and the aggregator feels it.
 *
 * A writer claims a free connection (the permit guarantees one), waits --storage-delay-ms if
 * asked, then writes the batch in one transaction on the blocking pool: every SQLite call runs
 * in sl_blocking(), never on a worker thread. The permit is released by the writer's sl_defer
 * cleanup, so it comes back even if the writer panics.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

#define DB_MAX_CONN 64

struct gw_db {
    int n;
    int64_t run_id;
    atomic_uint_fast64_t busy; /* bit i set: connection i is in use by a writer */
    sqlite3 *conn[DB_MAX_CONN];
    sqlite3_stmt *insert[DB_MAX_CONN];
};

static const char schema[] = "CREATE TABLE IF NOT EXISTS readings ("
                             " id INTEGER PRIMARY KEY,"
                             " run_id INTEGER NOT NULL,"
                             " batch INTEGER NOT NULL,"
                             " device_id INTEGER NOT NULL,"
                             " seq INTEGER NOT NULL,"
                             " timestamp INTEGER NOT NULL,"
                             " temperature REAL NOT NULL,"
                             " humidity REAL NOT NULL,"
                             " battery REAL NOT NULL)";

static const char insert_sql[] =
    "INSERT INTO readings (run_id, batch, device_id, seq, timestamp, temperature, humidity, "
    "battery) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

static int exec(sqlite3 *c, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(c, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
    }
    return rc;
}

gw_db_t *gw_db_open(const char *path, int n, int64_t run_id, char *err, size_t errlen)
{
    if (n < 1 || n > DB_MAX_CONN) {
        snprintf(err, errlen, "connection count %d out of range", n);
        return NULL;
    }
    gw_db_t *db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    db->run_id = run_id;
    atomic_init(&db->busy, 0);
    for (int i = 0; i < n; i++) {
        sqlite3 *c = NULL;
        /* NOMUTEX: a connection is used by one thread at a time (a writer owns it while it
         * holds the connection's bit in db->busy). */
        int rc = sqlite3_open_v2(
            path, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "cannot open '%s': %s", path,
                     c ? sqlite3_errmsg(c) : sqlite3_errstr(rc));
            sqlite3_close(c);
            gw_db_close(db);
            return NULL;
        }
        db->conn[i] = c;
        db->n = i + 1;
        sqlite3_busy_timeout(c, 5000);
        if ((i == 0 &&
             (exec(c, "PRAGMA journal_mode=WAL", err, errlen) || exec(c, schema, err, errlen))) ||
            exec(c, "PRAGMA synchronous=NORMAL", err, errlen)) {
            gw_db_close(db);
            return NULL;
        }
        rc = sqlite3_prepare_v3(c, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &db->insert[i], NULL);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "prepare insert: %s", sqlite3_errmsg(c));
            gw_db_close(db);
            return NULL;
        }
    }
    return db;
}

void gw_db_close(gw_db_t *db)
{
    if (!db)
        return;
    for (int i = 0; i < db->n; i++) {
        sqlite3_finalize(db->insert[i]);
        sqlite3_close(db->conn[i]);
    }
    free(db);
}

void gw_db_interrupt(gw_db_t *db)
{
    for (int i = 0; i < db->n; i++)
        sqlite3_interrupt(db->conn[i]);
}

/* Claims a free connection; the caller holds a permit, so one is free. */
static int conn_claim(gw_db_t *db)
{
    uint64_t cur = atomic_load_explicit(&db->busy, memory_order_relaxed);
    for (;;) {
        int i = 0;
        while (i < db->n && (cur & (1ULL << i)))
            i++;
        if (i == db->n) {
            /* Permits and bits disagree only transiently (a release in flight). */
            cur = atomic_load_explicit(&db->busy, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&db->busy, &cur, cur | (1ULL << i),
                                                  memory_order_acquire, memory_order_relaxed))
            return i;
    }
}

static void conn_release(gw_db_t *db, int i)
{
    atomic_fetch_and_explicit(&db->busy, ~(1ULL << i), memory_order_release);
}

/* One batch write, run on a blocking-pool thread. */
typedef struct write_job {
    gw_storage_t *st;
    gw_batch_t batch;
    sl_sem_permit_t permit; /* detached by the storage task, adopted by the writer */
    int conn;
    int rc; /* SQLite result */
    char err[256];
} write_job_t;

/* Records why a write failed, before a ROLLBACK replaces the connection's error message. */
static int write_failed(write_job_t *j, sqlite3 *c, int rc)
{
    snprintf(j->err, sizeof j->err, "%s", sqlite3_errmsg(c));
    return rc;
}

/* The shutdown was forced (gw_storage_t.force): the write stops here. sqlite3_interrupt()
 * only stops a statement that is running, so the write also looks between statements. */
static int forced(write_job_t *j)
{
    if (!sl_cancel_is_triggered(j->st->force))
        return 0;
    snprintf(j->err, sizeof j->err, "shutdown forced during the write");
    return 1;
}

static int write_once(write_job_t *j)
{
    gw_db_t *db = j->st->db;
    sqlite3 *c = db->conn[j->conn];
    sqlite3_stmt *s = db->insert[j->conn];
    if (forced(j))
        return SQLITE_INTERRUPT;
    int rc = sqlite3_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return write_failed(j, c, rc);
    for (size_t k = 0; k < j->batch.n; k++) {
        if (forced(j)) {
            sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
            return SQLITE_INTERRUPT;
        }
        const gw_reading_t *r = &j->batch.items[k];
        sqlite3_bind_int64(s, 1, db->run_id);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)j->batch.seq);
        sqlite3_bind_int64(s, 3, r->device_id);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)r->seq);
        sqlite3_bind_int64(s, 5, r->timestamp);
        sqlite3_bind_double(s, 6, r->temperature);
        sqlite3_bind_double(s, 7, r->humidity);
        sqlite3_bind_double(s, 8, r->battery);
        rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) {
            write_failed(j, c, rc); /* before the reset: it keeps the step's message */
            sqlite3_reset(s);
            sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        sqlite3_reset(s);
    }
    if (forced(j)) {
        sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
        return SQLITE_INTERRUPT;
    }
    rc = sqlite3_exec(c, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        write_failed(j, c, rc);
        sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

static void *write_blocking(void *arg)
{
    write_job_t *j = arg;
    int rc = SQLITE_BUSY;
    /* busy_timeout already waits up to 5 s for the write lock; retry a little beyond that. */
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = write_once(j);
        if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            break;
        if (sl_cancel_is_triggered(j->st->force))
            break; /* the shutdown was forced: no more waiting for the lock (next attempt) */
    }
    j->rc = rc; /* on failure write_once() has put the reason in j->err */
    return NULL;
}

static void writer_cleanup(void *arg)
{
    write_job_t *j = arg;
    if (j->conn >= 0)
        conn_release(j->st->db, j->conn);
    sl_sem_permit_release(&j->permit);
    free(j->batch.items);
    free(j);
}

static void *writer_main(void *arg)
{
    write_job_t *j = arg;
    sl_sem_permit_adopt(&j->permit);
    j->conn = -1;
    if (sl_defer(writer_cleanup, j) != 0) {
        gw_count(&j->st->stats->readings_dropped, j->batch.n);
        writer_cleanup(j);
        return NULL;
    }
    gw_storage_t *st = j->st;
    j->conn = conn_claim(st->db);
    int64_t t0 = sl_clock();
    /* The --storage-delay-ms fault (a slow disk), cut short when the shutdown is forced. */
    if (st->cfg->storage_delay_ns > 0)
        (void)sl_cancel_wait_until(st->force, sl_deadline_in(st->cfg->storage_delay_ns));
    if (sl_cancel_is_triggered(st->force)) {
        j->rc = SQLITE_INTERRUPT;
        snprintf(j->err, sizeof j->err, "shutdown forced before the write");
    } else {
        int r = sl_blocking(write_blocking, j, NULL);
        if (r != 0) {
            j->rc = SQLITE_ERROR;
            snprintf(j->err, sizeof j->err, "blocking pool: %s", sl_strerror(r));
        }
    }
    if (j->rc == SQLITE_OK) {
        gw_count(&st->stats->readings_stored, j->batch.n);
        GW_LOG(GW_INFO, "storage.written",
               "💾 Batch #{batch} stored: {readings} readings on connection {conn} in {ms} ms",
               GW_U("batch", j->batch.seq), GW_U("readings", j->batch.n), GW_I("conn", j->conn + 1),
               GW_I("ms", (sl_clock() - t0) / SL_MSEC));
    } else {
        gw_count(&st->stats->readings_dropped, j->batch.n);
        GW_LOG(GW_ERROR, "storage.failed",
               "❌ Batch #{batch} ({readings} readings) not stored: {error}",
               GW_U("batch", j->batch.seq), GW_U("readings", j->batch.n), GW_S("error", j->err));
    }
    return NULL;
}

static void storage_cleanup(void *arg)
{
    gw_storage_t *st = arg;
    /* Batches still queued (only if the task was aborted) are dropped with their readings. */
    gw_batch_t b;
    sl_mpsc_rx_close(st->rx);
    while (sl_mpsc_try_recv(st->rx, &b) == 0) {
        gw_count(&st->stats->readings_dropped, b.n);
        free(b.items);
    }
    sl_mpsc_rx_drop(st->rx);
    st->rx = NULL;
}

void *gw_storage_main(void *arg)
{
    gw_storage_t *st = arg;
    if (sl_defer(storage_cleanup, st) != 0) {
        storage_cleanup(st);
        return NULL;
    }
    GW_LOG(GW_INFO, "storage.started",
           "💾 Storage started: {pool} DB connections, queue of {queue} batches",
           GW_U("pool", st->cfg->db_pool), GW_U("queue", st->cfg->storage_queue));
    uint64_t nbatches = 0;
    for (;;) {
        gw_batch_t b;
        int r = sl_mpsc_recv(st->rx, &b);
        if (r != 0)
            break; /* SL_ECLOSED: the aggregator is done and the queue is drained */
        nbatches++;
        sl_sem_permit_t permit = {0};
        r = sl_sem_try_acquire(st->pool, &permit);
        if (r == SL_EAGAIN) {
            gw_count(&st->stats->db_busy, 1);
            GW_LOG(GW_INFO, "storage.db_busy",
                   "💾 All DB connections busy, waiting... (batch #{batch}, {queued} more "
                   "queued)",
                   GW_U("batch", b.seq), GW_U("queued", sl_mpsc_rx_len(st->rx)));
            r = sl_sem_acquire(st->pool, &permit);
        }
        write_job_t *j = r == 0 ? calloc(1, sizeof *j) : NULL;
        if (!j) {
            sl_sem_permit_release(&permit);
            gw_count(&st->stats->readings_dropped, b.n);
            free(b.items);
            if (r != 0)
                break;
            continue;
        }
        j->st = st;
        j->batch = b;
        j->conn = -1;
        sl_sem_permit_detach(&permit);
        j->permit = permit;
        sl_spawn_opts_t so = {.name = "db-writer"};
        r = sl_tracker_spawn_ex(st->writers, &so, writer_main, j, NULL);
        if (r != 0) {
            sl_sem_permit_adopt(&j->permit);
            sl_sem_permit_release(&j->permit);
            gw_count(&st->stats->readings_dropped, b.n);
            free(b.items);
            free(j);
        }
    }
    GW_LOG(GW_INFO, "storage.draining",
           "💾 Storage: queue closed and drained; waiting for {inflight} writes in flight",
           GW_U("inflight", sl_tracker_len(st->writers)));
    sl_tracker_close(st->writers);
    /* Shielded: writers use this struct, so it must outlive them even on a forced abort. */
    int old = sl_task_shield(1);
    sl_tracker_wait(st->writers);
    sl_task_shield(old);
    GW_LOG(GW_INFO, "storage.stopped", "💾 Storage stopped: {stored} readings in {batches} batches",
           GW_U("stored", gw_read(&st->stats->readings_stored)), GW_U("batches", nbatches));
    return NULL;
}
