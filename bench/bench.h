/*
 * sluice-bench: the workloads of ../shared/bench/WORKLOADS.md, written against the public API.
 *
 * Each workload is a function that runs inside a task of a fresh runtime (the harness in
 * sluice-bench.c builds it, times the body from inside the task and tears it down untimed) and
 * returns its CHECK figure. Sizes come from bench_n(), so `--scale` shrinks every workload for
 * the smoke test while keeping its structure; bench_expect() gives the CHECK the scaled sizes
 * must produce.
 */
#ifndef SLUICE_BENCH_H
#define SLUICE_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sluice.h>

/* One workload: what WORKLOADS.md calls name, workers, op and CHECK. */
typedef struct bench_workload {
    const char *name;
    int workers;      /* 1 or 2 */
    const char *unit; /* "ns/op" or "B/task" */
    /* Runs the workload body inside a task; returns CHECK and sets *ops (operations done). */
    uint64_t (*run)(uint64_t *ops);
    /* CHECK expected for the current scale. */
    uint64_t (*expect)(void);
} bench_workload_t;

/* The size multiplier (1.0 for the real benchmark; --scale or SLUICE_BENCH_SCALE). */
extern double bench_scale;

/* full * bench_scale, rounded, at least min (and at least 1). */
uint64_t bench_n(uint64_t full, uint64_t min);

/* Aborts the benchmark with a message (a sluice call failed where it must not). */
void bench_fail(const char *what, int code) __attribute__((noreturn));

/* Checks a sluice result code; a failure ends the program. */
#define BENCH_OK(expr)                    \
    do {                                  \
        int bench_rc_ = (expr);           \
        if (bench_rc_ != 0)               \
            bench_fail(#expr, bench_rc_); \
    } while (0)

/* Keeps a value observable so the compiler cannot drop the work that produced it. */
#define BENCH_KEEP(v) __asm__ volatile("" : : "g"(v) : "memory")

/* Joins every task of set (each must return normally), frees the set and returns the sum of
 * their return values read as integers. */
uint64_t bench_join_sum(sl_joinset_t *set);

/* Resident set size of this process in bytes (VmRSS of /proc/self/status). */
uint64_t bench_rss(void);

/* Workload bodies (bench/workloads/). */
uint64_t w_mpsc_spsc(uint64_t *ops);
uint64_t w_mpsc_spsc_expect(void);
uint64_t w_mpsc_7p(uint64_t *ops);
uint64_t w_mpsc_7p_expect(void);
uint64_t w_mpsc_unbounded(uint64_t *ops);
uint64_t w_oneshot_rpc(uint64_t *ops);
uint64_t w_oneshot_rpc_expect(void);
uint64_t w_timeout_rpc(uint64_t *ops);
uint64_t w_timeout_rpc_expect(void);
uint64_t w_broadcast_fanout4(uint64_t *ops);
uint64_t w_broadcast_fanout4_expect(void);
uint64_t w_watch_updates(uint64_t *ops);
uint64_t w_watch_updates_expect(void);
uint64_t w_semaphore_pool(uint64_t *ops);
uint64_t w_semaphore_pool_expect(void);
uint64_t w_notify_waiters(uint64_t *ops);
uint64_t w_notify_waiters_expect(void);
uint64_t w_spawn_join(uint64_t *ops);
uint64_t w_spawn_join_expect(void);
uint64_t w_gateway_inproc(uint64_t *ops);
uint64_t w_gateway_inproc_expect(void);

/* idle_tasks: one repetition in this process (the harness runs it in a fresh child).
 * Returns CHECK; *bytes_per_task receives the resident growth per idle task. */
uint64_t w_idle_tasks(double *bytes_per_task);
uint64_t w_idle_tasks_expect(void);

#endif /* SLUICE_BENCH_H */
