/*
 * sluice-bench: runs the workloads of ../shared/bench/WORKLOADS.md and prints, for each,
 *
 *     NAME<TAB>VALUE<TAB>UNIT<TAB>CHECK
 *
 * VALUE is the median of 3 timed repetitions after 1 untimed warm-up; CHECK comes from the
 * last repetition. Every repetition builds a fresh runtime (1 or 2 workers), runs the workload
 * body as the runtime's main task (a task on worker 0) and times the body from inside it, so
 * building and shutting down the runtime are not timed, as in the Tokio and Go peers.
 * idle_tasks runs each repetition, the warm-up too, in a fresh child process
 * (`sluice-bench --idle-child`), because memory freed by one repetition is reused by the next.
 *
 * Usage: sluice-bench [--scale F] [--check] [WORKLOAD...]
 *   --scale F  multiply every size by F (also SLUICE_BENCH_SCALE); CHECK follows the sizes
 *   --check    exit 1 if a CHECK differs from the value the (scaled) sizes must give
 *   --list     print the workload names
 * Nothing but the result lines goes to stdout. With SLUICE_BENCH_STATS set, each repetition
 * also prints its operations and its runtime's counters (sl_runtime_stats: switches, parks,
 * steals) to stderr (scripts/bench-count.sh divides callgrind's count by the operations);
 * with SLUICE_BENCH_SAMPLES set, each workload prints its three timed repetitions there too
 * (the machine's fast and slow moments show up as repetitions far apart, docs/perf.md).
 * SLUICE_BENCH_WORKERS=N runs every workload on N workers instead of its own count, for
 * looking into one (callgrind counts a one-worker run without the other worker's idle spin).
 * SLUICE_BENCH_STEAL_DELAY=NS sets opts.steal_delay_ns the same way (-1: steal at once, which
 * splits a 2-worker workload's tasks over both workers from the start).
 * Both make results that are not the contract's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

double bench_scale = 1.0;

static const bench_workload_t workloads[] = {
    {"mpsc_spsc", 1, "ns/op", w_mpsc_spsc, w_mpsc_spsc_expect},
    {"mpsc_7p", 2, "ns/op", w_mpsc_7p, w_mpsc_7p_expect},
    {"mpsc_unbounded", 1, "ns/op", w_mpsc_unbounded, w_mpsc_spsc_expect},
    {"oneshot_rpc", 1, "ns/op", w_oneshot_rpc, w_oneshot_rpc_expect},
    {"broadcast_fanout4", 1, "ns/op", w_broadcast_fanout4, w_broadcast_fanout4_expect},
    {"watch_updates", 1, "ns/op", w_watch_updates, w_watch_updates_expect},
    {"semaphore_pool", 2, "ns/op", w_semaphore_pool, w_semaphore_pool_expect},
    {"notify_waiters", 1, "ns/op", w_notify_waiters, w_notify_waiters_expect},
    {"spawn_join", 2, "ns/op", w_spawn_join, w_spawn_join_expect},
    {"timeout_rpc", 1, "ns/op", w_timeout_rpc, w_timeout_rpc_expect},
    {"gateway_inproc", 2, "ns/op", w_gateway_inproc, w_gateway_inproc_expect},
    {"idle_tasks", 1, "B/task", NULL, w_idle_tasks_expect},
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

typedef struct sample {
    double value;
    uint64_t check;
} sample_t;

uint64_t bench_n(uint64_t full, uint64_t min)
{
    double v = floor((double)full * bench_scale + 0.5);
    uint64_t n = v < 1.0 ? 1 : (uint64_t)v;
    if (n < min)
        n = min;
    return n < 1 ? 1 : n;
}

void bench_fail(const char *what, int code)
{
    fprintf(stderr, "sluice-bench: %s failed: %s (%d)\n", what, sl_strerror(code), code);
    exit(1);
}

uint64_t bench_join_sum(sl_joinset_t *set)
{
    uint64_t sum = 0;
    sl_join_t j;
    int r;
    while ((r = sl_joinset_join_next(set, &j)) == 0) {
        if (j.status != SL_TASK_RETURNED)
            bench_fail("a workload task", SL_EPANIC);
        sum += (uint64_t)(uintptr_t)j.value;
    }
    if (r != SL_EEMPTY)
        bench_fail("sl_joinset_join_next", r);
    sl_joinset_free(set);
    return sum;
}

uint64_t bench_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        perror("sluice-bench: /proc/self/status");
        exit(1);
    }
    char line[256];
    uint64_t kb = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoull(line + 6, NULL, 10);
            found = 1;
            break;
        }
    }
    fclose(f);
    if (!found) {
        fprintf(stderr, "sluice-bench: no VmRSS in /proc/self/status\n");
        exit(1);
    }
    return kb * 1024;
}

/* ---- One timed repetition in a fresh runtime ---------------------------------------------- */

typedef struct rep {
    const bench_workload_t *w;
    int64_t elapsed;
    uint64_t ops;
    uint64_t check;
} rep_t;

static void *rep_main(void *arg)
{
    rep_t *r = arg;
    int64_t start = sl_clock();
    r->check = r->w->run(&r->ops);
    r->elapsed = sl_clock() - start;
    return NULL;
}

/* SLUICE_BENCH_WORKERS and SLUICE_BENCH_STEAL_DELAY (0: not set), read once by main. */
static int workers_override;
static int64_t steal_delay_override;

static sl_runtime_t *new_runtime(int workers)
{
    sl_runtime_opts_t opts;
    sl_runtime_opts_init(&opts);
    opts.workers = workers_override ? workers_override : workers;
    if (steal_delay_override)
        opts.steal_delay_ns = steal_delay_override;
    sl_runtime_t *rt;
    BENCH_OK(sl_runtime_new(&opts, &rt));
    return rt;
}

static sample_t run_in_process(const bench_workload_t *w)
{
    rep_t r = {.w = w};
    sl_runtime_t *rt = new_runtime(w->workers);
    BENCH_OK(sl_runtime_block_on(rt, rep_main, &r, NULL));
    if (getenv("SLUICE_BENCH_STATS")) {
        /* For looking into a workload: how the runtime ran it (stderr, outside the contract). */
        sl_runtime_stats_t st;
        sl_runtime_stats(rt, &st);
        fprintf(stderr,
                "# %s: ops %llu spawned %llu switches %llu direct %llu parks %llu steals %llu "
                "budget_yields %llu\n",
                w->name, (unsigned long long)r.ops, (unsigned long long)st.tasks_spawned,
                (unsigned long long)st.switches, (unsigned long long)st.direct_switches,
                (unsigned long long)st.parks, (unsigned long long)st.steals,
                (unsigned long long)st.budget_yields);
    }
    sl_runtime_free(rt);
    if (r.ops == 0) {
        fprintf(stderr, "sluice-bench: %s did no operation\n", w->name);
        exit(1);
    }
    return (sample_t){(double)r.elapsed / (double)r.ops, r.check};
}

/* ---- idle_tasks: each repetition in a fresh child process ----------------------------------- */

typedef struct idle_rep {
    double bytes_per_task;
    uint64_t check;
} idle_rep_t;

static void *idle_main(void *arg)
{
    idle_rep_t *r = arg;
    r->check = w_idle_tasks(&r->bytes_per_task);
    return NULL;
}

static int idle_child(void)
{
    idle_rep_t r = {0};
    sl_runtime_t *rt = new_runtime(1);
    BENCH_OK(sl_runtime_block_on(rt, idle_main, &r, NULL));
    sl_runtime_free(rt);
    printf("%.17g %llu\n", r.bytes_per_task, (unsigned long long)r.check);
    return 0;
}

/* The program to re-run for idle_tasks children: argv[0] when it is a path (under valgrind,
 * /proc/self/exe is valgrind's own launcher), else /proc/self/exe. */
static const char *self_exe = "/proc/self/exe";

static sample_t run_idle_child(void)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("sluice-bench: pipe");
        exit(1);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("sluice-bench: fork");
        exit(1);
    }
    if (pid == 0) {
        char scale[64];
        snprintf(scale, sizeof scale, "%.17g", bench_scale);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(self_exe, "sluice-bench", "--scale", scale, "--idle-child", (char *)NULL);
        perror("sluice-bench: exec");
        _exit(127);
    }
    close(fds[1]);
    char buf[256];
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fds[0], buf + len, sizeof buf - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len == sizeof buf - 1)
            break;
    }
    buf[len] = 0;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "sluice-bench: idle_tasks child failed (status %d)\n", status);
        exit(1);
    }
    sample_t s;
    unsigned long long check;
    if (sscanf(buf, "%lf %llu", &s.value, &check) != 2) {
        fprintf(stderr, "sluice-bench: idle_tasks child printed '%s'\n", buf);
        exit(1);
    }
    s.check = check;
    return s;
}

/* ---- Driver --------------------------------------------------------------------------------- */

static sample_t run_once(const bench_workload_t *w)
{
    return w->run ? run_in_process(w) : run_idle_child();
}

static int cmp_sample(const void *a, const void *b)
{
    double x = ((const sample_t *)a)->value, y = ((const sample_t *)b)->value;
    return (x > y) - (x < y);
}

static const bench_workload_t *find(const char *name)
{
    for (size_t i = 0; i < NWORKLOADS; i++)
        if (strcmp(workloads[i].name, name) == 0)
            return &workloads[i];
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: sluice-bench [--scale F] [--check] [--list] [WORKLOAD...]\nknown:");
    for (size_t i = 0; i < NWORKLOADS; i++)
        fprintf(stderr, " %s", workloads[i].name);
    fprintf(stderr, "\n");
    exit(2);
}

static double parse_scale(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || v > 1000) {
        fprintf(stderr, "sluice-bench: bad scale '%s'\n", s);
        exit(2);
    }
    return v;
}

/* An integer environment variable in [min, max]; `unset` when it is not set or empty. A value
 * that is not a whole number in range stops the program with a message (exit 2). */
static long long env_integer(const char *name, long long min, long long max, long long unset)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return unset;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < min || v > max) {
        fprintf(stderr, "sluice-bench: %s must be a whole number from %lld to %lld, not '%s'\n",
                name, min, max, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc > 0 && strchr(argv[0], '/'))
        self_exe = argv[0];
    workers_override = (int)env_integer("SLUICE_BENCH_WORKERS", 1, 64, 0);
    steal_delay_override = env_integer("SLUICE_BENCH_STEAL_DELAY", -1, INT64_MAX, 0);
    const char *env = getenv("SLUICE_BENCH_SCALE");
    if (env && *env)
        bench_scale = parse_scale(env);
    int check = 0, idle = 0;
    const bench_workload_t *sel[64];
    size_t nsel = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            bench_scale = parse_scale(argv[++i]);
        } else if (strncmp(argv[i], "--scale=", 8) == 0) {
            bench_scale = parse_scale(argv[i] + 8);
        } else if (strcmp(argv[i], "--check") == 0) {
            check = 1;
        } else if (strcmp(argv[i], "--idle-child") == 0) {
            idle = 1;
        } else if (strcmp(argv[i], "--list") == 0) {
            for (size_t k = 0; k < NWORKLOADS; k++)
                printf("%s\n", workloads[k].name);
            return 0;
        } else if (argv[i][0] == '-') {
            usage();
        } else {
            const bench_workload_t *w = find(argv[i]);
            if (!w) {
                fprintf(stderr, "sluice-bench: unknown workload '%s'\n", argv[i]);
                usage();
            }
            if (nsel == sizeof sel / sizeof sel[0])
                usage();
            sel[nsel++] = w;
        }
    }
    if (idle)
        return idle_child();
    if (nsel == 0)
        for (size_t k = 0; k < NWORKLOADS; k++)
            sel[nsel++] = &workloads[k];

    int bad = 0;
    for (size_t k = 0; k < nsel; k++) {
        const bench_workload_t *w = sel[k];
        (void)run_once(w); /* warm-up */
        sample_t s[3];
        for (int i = 0; i < 3; i++)
            s[i] = run_once(w);
        uint64_t last = s[2].check;
        if (getenv("SLUICE_BENCH_SAMPLES")) /* each repetition (stderr, outside the contract) */
            fprintf(stderr, "# %s: %.2f %.2f %.2f\n", w->name, s[0].value, s[1].value, s[2].value);
        qsort(s, 3, sizeof s[0], cmp_sample);
        printf("%s\t%.2f\t%s\t%llu\n", w->name, s[1].value, w->unit, (unsigned long long)last);
        fflush(stdout);
        if (check && last != w->expect()) {
            fprintf(stderr, "sluice-bench: %s: CHECK %llu, expected %llu (scale %g)\n", w->name,
                    (unsigned long long)last, (unsigned long long)w->expect(), bench_scale);
            bad = 1;
        }
    }
    return bad;
}
