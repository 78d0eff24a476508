#!/usr/bin/env python3
"""Black-box tests of sluice-gateway: run the binary, check its log, its accounting line and
the SQLite database (through the sqlite3 command-line tool).

usage: gateway_test.py <path to sluice-gateway> <case> [scratch dir]

Every case asserts on balances, counts and log events that its fault switches make certain,
never on how long something took (timeouts are generous safety nets, scaled by
SLUICE_TEST_SCALE for sanitizer builds).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SUMMARY_KEYS = [
    "readings_sent", "readings_received", "readings_stored", "readings_dropped", "batches",
    "snapshots", "client_lagged", "health_ok", "health_timeout", "health_failed", "tasks_ok",
    "tasks_failed", "duration_ms",
]
# Slower builds (tsan, valgrind) set SLUICE_TEST_SCALE: timeouts, and the intervals of the two
# cases whose assertions need a healthy task to keep up, grow with it.
SCALE = max(1, int(os.environ.get("SLUICE_TEST_SCALE", "1") or "1"))


class Failure(Exception):
    pass


def check(cond, what, context=None):
    if not cond:
        msg = "FAILED: " + what
        if context is not None:
            msg += "\n--- context ---\n" + str(context)[-4000:]
        raise Failure(msg)


class Run:
    """One finished run: exit code, stdout lines, parsed JSON events and the summary."""

    def __init__(self, code, out, err, db):
        self.code, self.out, self.err, self.db = code, out, err, db
        self.lines = out.splitlines()
        check(self.lines, "stdout is not empty", err)
        try:
            self.summary = json.loads(self.lines[-1])
        except ValueError:
            raise Failure("last stdout line is not JSON: %r\nstderr: %s" % (self.lines[-1], err))
        for k in SUMMARY_KEYS:
            check(k in self.summary, "summary has key %s" % k, self.lines[-1])
        self.events = []
        for line in self.lines[:-1]:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def named(self, event):
        return [e for e in self.events if e["event"] == event]

    def context(self):
        return "exit %s\nstderr:\n%s\nstdout tail:\n%s" % (
            self.code, self.err[-2000:], "\n".join(self.lines[-40:]))

    def assert_balanced(self):
        s = self.summary
        check(self.code == 0, "exit status 0", self.context())
        check(s["readings_sent"] == s["readings_received"] == s["readings_stored"],
              "readings_sent = readings_received = readings_stored", self.lines[-1])
        check(s["readings_dropped"] == 0, "readings_dropped = 0", self.lines[-1])
        check(s["readings_sent"] > 0, "some readings were sent", self.context())
        rows = sqlite(self.db, "SELECT COUNT(*) FROM readings")
        check(int(rows) == s["readings_stored"],
              "rows in the database (%s) = readings_stored (%d)" % (rows, s["readings_stored"]))
        # Per device: sequence numbers 1..n, each exactly once (nothing lost, nothing doubled).
        for line in sqlite(self.db, "SELECT device_id, COUNT(*), COUNT(DISTINCT seq), MIN(seq), "
                           "MAX(seq) FROM readings GROUP BY device_id").splitlines():
            dev, n, distinct, lo, hi = (int(x) for x in line.split("|"))
            check(n == distinct and lo == 1 and hi == n,
                  "device %d stored seq 1..%d exactly once (got %d rows, %d distinct, %d..%d)"
                  % (dev, n, n, distinct, lo, hi))


def sqlite(db, sql):
    r = subprocess.run(["sqlite3", db, sql], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "sqlite3 %r succeeds: %s" % (sql, r.stderr))
    return r.stdout.strip()


def fresh_db(tmp, name):
    db = os.path.join(tmp, name + ".db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    return db


def run(binary, tmp, name, args, json_log=True, timeout=60):
    db = fresh_db(tmp, name)
    cmd = [binary, "--db", db] + (["--log-format", "json"] if json_log else []) + args
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * SCALE)
    except subprocess.TimeoutExpired as e:
        raise Failure("%s did not finish in %d s\n%s" % (cmd, timeout * SCALE, e.stdout))
    # The whole log stays with the scratch files (kept when a case fails), for the post-mortem.
    for ext, text in (("stdout", p.stdout), ("stderr", p.stderr)):
        with open(os.path.join(tmp, "%s.%s" % (name, ext)), "w") as f:
            f.write(text)
    return Run(p.returncode, p.stdout, p.stderr, db)


# ---------------------------------------------------------------------------------------------
# Cases


def clean_run_balances(binary, tmp):
    r = run(binary, tmp, "clean", ["--duration", "2.5", "--rate", "20",
                                   "--snapshot-interval", "100", "--batch-interval", "200",
                                   "--health-interval", "400"], json_log=False)
    r.assert_balanced()
    s = r.summary
    check(s["tasks_ok"] == 14 and s["tasks_failed"] == 0, "14 tasks ok, none failed", r.lines[-1])
    check(s["batches"] >= 1 and s["snapshots"] >= 1, "batches and snapshots", r.lines[-1])
    check(s["client_lagged"] == 0, "no client lagged", r.lines[-1])
    text = r.out
    for needle in ["📱 Device 1 online", "📱 Device 7 online", "📊 Snapshot #1:",
                   "📤 Batch #1:", "💾 Batch #1 stored", "👤 Client 4 got snapshot #",
                   "🛑 Shutdown requested (duration elapsed)",
                   "every device sender dropped", "(final)", "💾 Storage stopped",
                   "👤 Client 1 done", "All 14 tasks joined", "💾 Database closed"]:
        check(needle in text, "text log contains %r" % needle, r.context())
    # WAL mode, as asked; the table can be queried with the sqlite3 tool.
    check(sqlite(r.db, "PRAGMA journal_mode") == "wal", "database is in WAL mode")


def storage_backpressure(binary, tmp):
    r = run(binary, tmp, "backpressure",
            ["--duration", "3", "--rate", "200", "--storage-delay-ms", "300",
             "--batch-interval", "20", "--batch-max", "50", "--storage-queue", "1",
             "--ingest-queue", "5", "--snapshot-interval", "500"])
    r.assert_balanced()
    for event, text in [("storage.db_busy", "All DB connections busy, waiting..."),
                        ("aggregator.storage_full", "Storage queue full - applying backpressure"),
                        ("device.throttled", "throttled: ingest queue full"),
                        ("device.bandwidth_wait", "waiting for bandwidth slot")]:
        ev = r.named(event)
        check(ev, "log has %s events" % event, r.context())
        check(text in ev[0]["msg"], "%s says %r" % (event, text), ev[0])
    check(r.summary.get("storage_full", 1) > 0, "storage_full counted", r.lines[-1])


def slow_client_lag(binary, tmp):
    r = run(binary, tmp, "slowclient",
            ["--duration", str(4 * SCALE), "--rate", "5", "--snapshot-interval", str(20 * SCALE),
             "--snapshot-buffer", "64", "--slow-client", "2:%d" % (2500 * SCALE)])
    r.assert_balanced()
    lagged = r.named("client.lagged")
    check(lagged, "client 2 lagged", r.context())
    check(all(e["fields"]["client"] == 2 for e in lagged), "only client 2 lagged", lagged)
    check(all(e["fields"]["missed"] > 0 for e in lagged), "lag reports missed snapshots", lagged)
    resync = r.named("client.resync")
    check(resync and all(e["fields"]["client"] == 2 for e in resync),
          "client 2 (only) resynced from the watch", r.context())
    check(r.summary["client_lagged"] == len(lagged), "client_lagged counts the lag events",
          r.lines[-1])
    stopped = {e["fields"]["client"]: e["fields"] for e in r.named("client.stopped")}
    check(sorted(stopped) == [1, 2, 3, 4], "all 4 clients finished", r.context())
    for c in (1, 3, 4):
        check(stopped[c]["lagged"] == 0, "client %d never lagged" % c, stopped[c])
        check(stopped[c]["received"] == r.summary["snapshots"],
              "client %d received every snapshot" % c, (stopped[c], r.lines[-1]))


def device_stall(binary, tmp):
    r = run(binary, tmp, "stall",
            ["--duration", str(3 * SCALE), "--devices", "3", "--rate", "5",
             "--health-interval", str(400 * SCALE), "--health-timeout", str(300 * SCALE),
             "--device-stall", "2"])
    r.assert_balanced()
    timeouts = r.named("health.timeout")
    check(timeouts, "health timeouts were logged", r.context())
    check(all(e["fields"]["device"] == 2 for e in timeouts),
          "only the stalled device timed out", timeouts)
    ok = {e["fields"]["device"] for e in r.named("health.ok")}
    check(ok == {1, 3}, "devices 1 and 3 answered health checks (got %s)" % sorted(ok),
          r.context())
    check(r.summary["health_timeout"] == len(timeouts) and r.summary["health_ok"] > 0,
          "health counters", r.lines[-1])


def device_drop(binary, tmp):
    r = run(binary, tmp, "drop",
            ["--duration", str(3 * SCALE), "--devices", "3", "--rate", "5",
             "--health-interval", str(400 * SCALE), "--health-timeout", str(300 * SCALE),
             "--device-drop", "1"])
    r.assert_balanced()
    failed = r.named("health.failed")
    check(failed, "failed health checks were logged", r.context())
    check(all(e["fields"]["device"] == 1 and e["fields"]["reason"] == "sender dropped"
              for e in failed), "only device 1 failed, with 'sender dropped'", failed)
    check(not r.named("health.timeout"), "no timeouts", r.context())
    ok = {e["fields"]["device"] for e in r.named("health.ok")}
    check(ok == {2, 3}, "devices 2 and 3 answered (got %s)" % sorted(ok), r.context())
    check(r.summary["health_failed"] == len(failed), "health_failed counts them", r.lines[-1])


def device_panic(binary, tmp):
    r = run(binary, tmp, "panic", ["--duration", "3", "--rate", "10",
                                   "--device-panic", "3@1", "--snapshot-interval", "200",
                                   "--batch-interval", "300"])
    r.assert_balanced()
    s = r.summary
    check(s["tasks_failed"] == 1 and s["tasks_ok"] == 13, "exactly one task failed",
          r.lines[-1])
    panics = r.named("main.task_panicked")
    check(len(panics) == 1 and panics[0]["fields"]["task"] == "device-3",
          "the JoinSet reported device 3's panic", r.context())
    # The others went on: they produced well after device 3 stopped.
    per_dev = dict(tuple(int(x) for x in line.split("|")) for line in sqlite(
        r.db, "SELECT device_id, MAX(seq) FROM readings GROUP BY device_id").splitlines())
    for d in (1, 2, 4, 5, 6, 7):
        check(per_dev.get(d, 0) > per_dev.get(3, 0), "device %d outlived device 3" % d, per_dev)


class Live:
    """A gateway run read while it goes on: stdout lines as they come, stderr, and an event set
    when a line containing `marker` appears."""

    def __init__(self, cmd, marker):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines, self.err = [], []
        self.seen = threading.Event()
        self.threads = [threading.Thread(target=self._out, args=(marker,)),
                        threading.Thread(target=lambda: self.err.append(self.p.stderr.read()))]
        for t in self.threads:
            t.start()

    def _out(self, marker):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))
            if marker in line:
                self.seen.set()

    def finish(self, timeout, what):
        """Waits for the exit (killing the process after timeout s) and the readers."""
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failure("no exit within %d s of %s" % (timeout, what))
        finally:
            self.join()

    def join(self):
        for t in self.threads:
            t.join()

    def run(self, db):
        return Run(self.p.returncode, "\n".join(self.lines) + "\n", "".join(self.err), db)


def _signal_mid_run(binary, tmp, sig, name):
    db = fresh_db(tmp, name)
    cmd = [binary, "--db", db, "--log-format", "json", "--rate", "50",
           "--snapshot-interval", "100", "--batch-interval", "300"]
    g = Live(cmd, '"aggregator.snapshot"')
    try:
        check(g.seen.wait(30 * SCALE), "the gateway published a snapshot")
        time.sleep(1.0)
        g.p.send_signal(sig)
    except BaseException:
        g.p.kill()
        g.join()
        raise
    g.finish(15 * SCALE, "the signal")
    r = g.run(db)
    r.assert_balanced()
    why = r.named("main.shutdown")
    signame = signal.Signals(sig).name
    check(len(why) == 1 and why[0]["fields"]["reason"] == signame,
          "shutdown reason is %s" % signame, r.context())
    check(r.named("aggregator.final_snapshot") and r.named("storage.stopped"),
          "aggregator and storage drained", r.context())
    check(r.summary["tasks_ok"] == 14, "every task ended cleanly", r.lines[-1])


def sigterm_mid_run(binary, tmp):
    _signal_mid_run(binary, tmp, signal.SIGTERM, "sigterm")


def sigint_mid_run(binary, tmp):
    _signal_mid_run(binary, tmp, signal.SIGINT, "sigint")


def sighup_mid_run(binary, tmp):
    _signal_mid_run(binary, tmp, signal.SIGHUP, "sighup")


def slow_db_open_keeps_duration(binary, tmp):
    """--duration counts from when the tasks run, not from the process start: a database open
    held up (here by another connection's exclusive lock, released well after the duration has
    gone by) must not end the run before any device has sent anything."""
    import sqlite3
    db = fresh_db(tmp, "slowopen")
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("CREATE TABLE other(x)")  # a rollback-journal database: WAL needs the lock
    con.execute("BEGIN EXCLUSIVE")
    g = Live([binary, "--db", db, "--log-format", "json", "--duration", "1", "--rate", "20",
              "--snapshot-interval", "100", "--batch-interval", "200"], '"main.starting"')
    try:
        check(g.seen.wait(30 * SCALE), "the gateway logged main.starting")
        time.sleep(1.5)  # longer than --duration; the open waits for the lock (busy_timeout 5 s)
        check(not any('"main.db_open"' in x for x in g.lines), "the open waited for the lock",
              "\n".join(g.lines))
        con.execute("COMMIT")
    except BaseException:
        g.p.kill()
        g.join()
        raise
    finally:
        if con.in_transaction:
            con.execute("ROLLBACK")
        con.close()
    g.finish(30 * SCALE, "the lock's release")
    r = g.run(db)
    r.assert_balanced()
    why = r.named("main.shutdown")
    check(len(why) == 1 and why[0]["fields"]["reason"] == "duration elapsed",
          "shutdown reason is the duration", r.context())
    check(r.summary["tasks_ok"] == 14, "every task ended cleanly", r.lines[-1])


def _caught_signals(pid):
    """The set of signals the process catches (SigCgt of /proc/PID/status), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    mask = int(line.split()[1], 16)
                    return {n for n in range(1, 65) if mask & (1 << (n - 1))}
    except OSError:
        return None
    return None


def signal_at_startup(binary, tmp):
    """SIGTERM sent the moment the gateway catches it, before its runtime has started: it must
    be remembered and start an orderly shutdown, not kill the process."""
    db = fresh_db(tmp, "startup")
    p = subprocess.Popen([binary, "--db", db, "--log-format", "json", "--rate", "50"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    want = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    deadline = time.time() + 30 * SCALE
    while True:
        caught = _caught_signals(p.pid)
        if caught is not None and want <= caught:
            break
        if p.poll() is not None or time.time() > deadline:
            p.kill()
            out, err = p.communicate()
            raise Failure("the gateway never caught SIGINT, SIGTERM and SIGHUP\n" + err)
        time.sleep(0.0005)
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=30 * SCALE)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise Failure("no exit within %d s of the signal" % (30 * SCALE))
    check(p.returncode == 0, "exit status 0 (got %d: killed by the signal if negative)"
          % p.returncode, err)
    r = Run(p.returncode, out, err, db)
    s = r.summary
    check(s["readings_sent"] == s["readings_stored"] and s["readings_dropped"] == 0,
          "nothing lost", r.lines[-1])
    why = r.named("main.shutdown")
    check(len(why) == 1 and why[0]["fields"]["reason"] == "SIGTERM", "shutdown reason is SIGTERM",
          r.context())


def stdout_reader_gone(binary, tmp):
    """The log's reader goes away at once: the gateway must not die of SIGPIPE, must store
    everything, and must say on stderr that the summary could not be written (exit 1)."""
    db = fresh_db(tmp, "noreader")
    rfd, wfd = os.pipe()
    os.close(rfd)  # nobody will ever read stdout
    try:
        p = subprocess.run([binary, "--db", db, "--duration", "1", "--rate", "50"],
                           stdout=wfd, stderr=subprocess.PIPE, text=True, timeout=60 * SCALE)
    finally:
        os.close(wfd)
    check(p.returncode == 1, "exit status 1 (got %d: killed by a signal if negative)"
          % p.returncode, p.stderr)
    errs = p.stderr.strip().splitlines()
    check(len(errs) == 2 and "could not write the summary" in errs[0],
          "stderr says the summary could not be written, then gives it", p.stderr)
    s = json.loads(errs[1])
    check(s["readings_sent"] > 0 and s["readings_sent"] == s["readings_stored"]
          and s["readings_dropped"] == 0, "nothing lost", errs[1])
    rows = sqlite(db, "SELECT COUNT(*) FROM readings")
    check(int(rows) == s["readings_stored"], "every stored reading is in the database", rows)


def _refusing_db(tmp, name):
    db = fresh_db(tmp, name)
    sqlite(db, "CREATE TABLE readings(id INTEGER PRIMARY KEY, run_id, batch, device_id, seq, "
               "timestamp, temperature, humidity, battery); "
               "CREATE TRIGGER refuse BEFORE INSERT ON readings "
               "BEGIN SELECT RAISE(ABORT, 'inserts refused by a trigger'); END")
    return db


def quiet_write_error_on_stderr(binary, tmp):
    """A database that refuses every insert (a trigger): each failed batch is an ERROR event
    with SQLite's own reason, on stderr under --quiet; stdout has the summary only. With stdout
    gone instead of --quiet, the ERROR events reach stderr all the same."""
    db = _refusing_db(tmp, "refuse_gone")
    rfd, wfd = os.pipe()
    os.close(rfd)
    try:
        p = subprocess.run([binary, "--db", db, "--duration", "1", "--rate", "20"],
                           stdout=wfd, stderr=subprocess.PIPE, text=True, timeout=60 * SCALE)
    finally:
        os.close(wfd)
    check(p.returncode == 1, "stdout gone: exit status 1", p.stderr)
    check(any("inserts refused by a trigger" in l for l in p.stderr.splitlines()),
          "stdout gone: the failed batches are on stderr", p.stderr)
    db = _refusing_db(tmp, "refuse")
    p = subprocess.run([binary, "--db", db, "--duration", "1", "--rate", "20", "--quiet"],
                       capture_output=True, text=True, timeout=60 * SCALE)
    check(p.returncode == 1, "exit status 1 (readings were dropped)", p.stderr)
    out = p.stdout.strip().splitlines()
    check(len(out) == 1, "stdout holds the summary only", p.stdout)
    s = json.loads(out[0])
    check(s["readings_stored"] == 0 and s["readings_dropped"] == s["readings_sent"] > 0,
          "every reading counted as dropped", out[0])
    errs = [l for l in p.stderr.splitlines() if "not stored" in l]
    check(errs and all("inserts refused by a trigger" in l for l in errs),
          "each failed batch is on stderr with SQLite's reason", p.stderr)


def high_rate(binary, tmp):
    r = run(binary, tmp, "highrate", ["--duration", "2", "--rate", "10000", "--quiet"])
    r.assert_balanced()
    check(len(r.lines) == 1, "--quiet prints the summary line only", r.context())
    check(r.summary["readings_stored"] >= 1000, "thousands of readings went through",
          r.lines[-1])


def json_log(binary, tmp):
    r = run(binary, tmp, "json", ["--duration", "1.5", "--rate", "10", "--snapshot-interval",
                                  "200", "--batch-interval", "300", "--health-interval", "500"])
    r.assert_balanced()
    check(len(r.events) == len(r.lines) - 1, "every line is one JSON object", r.context())
    for e in r.events:
        for k in ("ts", "level", "event", "fields", "msg"):
            check(k in e, "event has %s" % k, e)
        check(e["level"] in ("debug", "info", "warn", "error"), "level is known", e)
        check(isinstance(e["fields"], dict), "fields is an object", e)
    names = {e["event"] for e in r.events}
    for n in ("main.starting", "device.online", "aggregator.snapshot", "aggregator.batch",
              "storage.written", "client.snapshot", "health.ok", "main.shutdown",
              "device.stopped", "aggregator.final_snapshot", "main.joined"):
        check(n in names, "event %s logged" % n, sorted(names))
    # A database path that is not UTF-8 (a Latin-1 name, say) still gives valid JSON lines:
    # the bytes that are not well-formed UTF-8 become U+FFFD, the rest passes through.
    db = os.fsencode(tmp) + b"/caf\xe9-\xc3\xa9.db"
    p = subprocess.run([binary, "--db", db, "--log-format", "json", "--duration", "0.3",
                        "--devices", "1", "--clients", "0"], capture_output=True,
                       timeout=60 * SCALE)
    check(p.returncode == 0, "a run with a non-UTF-8 path exits 0", p.stderr)
    opened = None
    for raw in p.stdout.splitlines():
        try:
            e = json.loads(raw.decode("utf-8"))  # strict: no invalid bytes on any line
        except ValueError as err:
            raise Failure("not valid UTF-8 JSON (%s): %r" % (err, raw[:200]))
        if e.get("event") == "main.db_open":
            opened = e["fields"]["db"]
    check(opened is not None and opened.endswith("caf\ufffd-\u00e9.db"),
          "the path is logged with U+FFFD for the stray byte", opened)


def bad_flags(binary, tmp):
    db = fresh_db(tmp, "badflags")
    cases = [
        (["--devices", "abc"], "--devices"),
        (["--devices", "0"], "--devices"),
        (["--rate", "-1"], "--rate"),
        (["--duration", "soon"], "--duration"),
        (["--log-format", "xml"], "--log-format"),
        (["--slow-client", "9:10"], "--slow-client"),
        (["--slow-client", "2"], "--slow-client"),
        (["--device-panic", "3"], "--device-panic"),
        (["--device-stall", "99"], "--device-stall"),
        (["--device-drop", "x"], "--device-drop"),
        (["--snapshot-interval", "0"], "--snapshot-interval"),
        (["--bogus"], "--bogus"),
        (["--ingest-queue"], "--ingest-queue"),
        (["--help=1"], "--help"),
        (["--log-format", "json\n\x1b[2J"], "--log-format"),
        # Not plain decimal notation: strtoll/strtod would take them.
        (["--devices", " 5"], "--devices"),
        (["--devices", "+5"], "--devices"),
        (["--rate", "0x10"], "--rate"),
        (["--device-panic", "1@0x1"], "--device-panic"),
    ]
    for args, flag in cases:
        p = subprocess.run([binary, "--db", db] + args, capture_output=True, text=True,
                           timeout=30 * SCALE)
        check(p.returncode == 2, "%s exits with status 2 (got %d)" % (args, p.returncode),
              p.stderr)
        errs = p.stderr.strip().splitlines()
        check(len(errs) == 1 and flag in errs[0], "%s: one error line naming %s" % (args, flag),
              p.stderr)
        check(p.stdout == "", "%s: nothing on stdout" % args, p.stdout)
        check("GW_" not in p.stderr, "%s: the range is given in numbers" % args, p.stderr)
    p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30 * SCALE)
    check(p.returncode == 0 and "--storage-delay-ms" in p.stdout, "--help", p.stdout)
    check(not os.path.exists(db), "no database created by a rejected command line")


def _assert_forced_accounting(r, name):
    """After a forced shutdown: exit 1, every reading sent is stored or counted dropped, some
    are dropped, and the database holds exactly the stored ones."""
    s = r.summary
    check(r.code == 1, "%s: exit status 1" % name, r.context())
    check(s["readings_sent"] > 0, "%s: some readings were sent" % name, r.context())
    check(s["readings_stored"] + s["readings_dropped"] == s["readings_sent"],
          "%s: stored + dropped = sent" % name, r.lines[-1])
    check(s["readings_dropped"] > 0, "%s: the readings not written are counted dropped" % name,
          r.lines[-1])
    rows = sqlite(r.db, "SELECT COUNT(*) FROM readings")
    check(int(rows) == s["readings_stored"],
          "%s: rows in the database (%s) = readings_stored (%d)" % (name, rows,
                                                                   s["readings_stored"]))


def shutdown_timeout_cuts_a_slow_write(binary, tmp):
    """--shutdown-timeout bounds the shutdown while a batch write is held up: the writers are
    the storage task's, not the JoinSet's, and the forced abort reaches them too (a write of
    ten minutes used to be waited out whole, and further signals were ignored)."""
    r = run(binary, tmp, "forced", ["--duration", "1", "--storage-delay-ms", "600000",
                                    "--shutdown-timeout", "300", "--devices", "2",
                                    "--clients", "1"])
    check(r.named("main.forced"), "the shutdown timeout forced the abort", r.context())
    failed = r.named("storage.failed")
    check(failed and all("shutdown forced" in e["fields"].get("error", "") for e in failed),
          "the held-up batch was dropped because of the forced shutdown", r.context())
    check(not r.named("main.exit_now"), "the abort was enough: no exit with tasks running",
          r.context())
    check(r.named("main.joined"), "every task was joined", r.context())
    _assert_forced_accounting(r, "forced")


def exit_when_the_abort_is_not_enough(binary, tmp):
    """A write stuck in SQLite's wait for another process's write lock ignores the forced
    abort (an interrupt does not cut that wait): the timeout once more ends the process, with
    its accounting. The lock is held for far longer than the run may take."""
    import sqlite3
    setup = run(binary, tmp, "stuck-setup", ["--duration", "0.3", "--devices", "1",
                                             "--clients", "0"])
    setup.assert_balanced()
    con = sqlite3.connect(setup.db, isolation_level=None, timeout=30)
    con.execute("BEGIN IMMEDIATE")  # the write lock, until the end of this case
    try:
        cmd = [binary, "--db", setup.db, "--log-format", "json", "--duration", "1",
               "--shutdown-timeout", "200", "--devices", "2", "--clients", "1"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60 * SCALE)
    finally:
        con.execute("ROLLBACK")
        con.close()
    r = Run(p.returncode, p.stdout, p.stderr, setup.db)
    check(r.named("main.forced"), "the shutdown timeout forced the abort", r.context())
    check(r.named("main.exit_now"), "then the timeout once more exited at once", r.context())
    check(not r.named("main.joined"), "it did not wait for the stuck write", r.context())
    s = r.summary
    check(r.code == 1, "exit status 1", r.context())
    check(s["readings_stored"] + s["readings_dropped"] == s["readings_sent"] and
          s["readings_dropped"] > 0, "stored + dropped = sent, some dropped", r.lines[-1])
    # The setup run's rows are there; none of this run's (its writes never got the lock).
    rows = sqlite(setup.db, "SELECT COUNT(*) FROM readings")
    check(int(rows) == setup.summary["readings_stored"] + s["readings_stored"],
          "rows in the database = what the two runs stored", r.lines[-1])


CASES = {f.__name__: f for f in [
    clean_run_balances, storage_backpressure, slow_client_lag, device_stall, device_drop,
    device_panic,
    sigterm_mid_run, sigint_mid_run, sighup_mid_run, signal_at_startup, stdout_reader_gone,
    quiet_write_error_on_stderr, high_rate, json_log, bad_flags, slow_db_open_keeps_duration,
    shutdown_timeout_cuts_a_slow_write, exit_when_the_abort_is_not_enough]}


def main():
    if len(sys.argv) < 3 or sys.argv[2] not in CASES:
        sys.stderr.write("usage: %s <sluice-gateway> <case> [scratch dir]\ncases: %s\n"
                         % (sys.argv[0], " ".join(CASES)))
        return 2
    binary = os.path.abspath(sys.argv[1])
    base = sys.argv[3] if len(sys.argv) > 3 else None
    if base:
        os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=sys.argv[2] + "-", dir=base)
    try:
        CASES[sys.argv[2]](binary, tmp)
    except Failure as e:
        print(e)
        print("(scratch files kept in %s)" % tmp)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print("ok: %s" % sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
