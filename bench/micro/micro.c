/*
 * sluice-micro: micro-benchmarks of the runtime's basic costs, the cost model of docs/perf.md.
 *
 * Usage: sluice-micro [--scale F] [NAME...]   (no name: all)
 * Prints NAME<TAB>VALUE<TAB>ns/op<TAB>OPS, VALUE the median of 3 runs after a warm-up, each
 * run in a fresh runtime. Every benchmark uses the public API only.
 *
 *   yield           one task calling sl_task_yield() alone on its worker (task -> scheduler
 *                   -> same task)
 *   switch          two tasks yielding to each other: one task-to-task switch
 *   spawn_join      spawn a task that returns at once, join it (one worker)
 *   spawn_join_1k   spawn 1,000 such tasks, then join them all; per task
 *   wake_same       two tasks on one worker hand a token back and forth with sl_notify: one
 *                   wake + park + switch, per hand-off
 *   wake_cross      the same with the two tasks on different workers (2 workers)
 *   wake_deadline   wake_same where every wait has a deadline (a timer armed and cancelled)
 *   timer           wake_deadline - wake_same: arming and cancelling one timer (the
 *                   fastest of five turns of each)
 *   sem             sl_sem_acquire + sl_sem_permit_release, uncontended
 *   sem_raw         sl_sem_acquire_raw + sl_sem_release_raw, uncontended
 *   mpsc_try        sl_mpsc_try_send + sl_mpsc_try_recv on a bounded channel, one task
 *   mpsc_send_recv  sl_mpsc_send + sl_mpsc_recv without waiting (room and a value are there)
 *   oneshot         sl_oneshot_new + send + recv + rx_drop, one task
 *   epoll_rtt       two tasks ping-pong one byte over a socketpair (sl_write / sl_read), one
 *                   worker: a round trip = 2 writes, 2 reads, 2 epoll wake-ups
 *   core_wide       not sluice: the machine. 8 rows of 6 independent additions, as many at once
 *                   as the core issues; slower when something else shares the core's issue
 *                   slots (a co-tenant on its other hyperthread: docs/perf.md, "Why single runs
 *                   vary")
 *   core_chain      not sluice: 8 dependent multiplies, latency only; the same in either state
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sluice.h>

static double scale = 1.0;

static uint64_t n_of(uint64_t full)
{
    double v = floor((double)full * scale + 0.5);
    return v < 1.0 ? 1 : (uint64_t)v;
}

static void fail(const char *what, int code)
{
    fprintf(stderr, "sluice-micro: %s failed: %s (%d)\n", what, sl_strerror(code), code);
    exit(1);
}

#define OK(expr)              \
    do {                      \
        int rc_ = (expr);     \
        if (rc_ != 0)         \
            fail(#expr, rc_); \
    } while (0)

typedef struct run {
    uint64_t n;      /* operations to do */
    int64_t elapsed; /* ns */
    int64_t base;    /* for derived results: ns of the reference run */
} run_t;

/* ---- yield / switch ---------------------------------------------------------------------- */

static void *yield_loop(void *arg)
{
    uint64_t n = *(uint64_t *)arg;
    for (uint64_t i = 0; i < n; i++)
        (void)sl_task_yield();
    return NULL;
}

static void m_yield(run_t *r)
{
    int64_t t0 = sl_clock();
    yield_loop(&r->n);
    r->elapsed = sl_clock() - t0;
}

static void m_switch(run_t *r)
{
    /* Two tasks yielding n/2 times each: n task-to-task switches. */
    uint64_t half = r->n / 2;
    sl_task_t *a, *b;
    int64_t t0 = sl_clock();
    OK(sl_task_spawn(yield_loop, &half, &a));
    OK(sl_task_spawn(yield_loop, &half, &b));
    OK(sl_task_join(a, NULL));
    OK(sl_task_join(b, NULL));
    r->elapsed = sl_clock() - t0;
    r->n = 2 * half;
}

/* ---- spawn + join -----------------------------------------------------------------------------
 */

static void *nothing(void *arg)
{
    return arg;
}

static void m_spawn_join(run_t *r)
{
    int64_t t0 = sl_clock();
    for (uint64_t i = 0; i < r->n; i++) {
        sl_task_t *t;
        OK(sl_task_spawn(nothing, NULL, &t));
        OK(sl_task_join(t, NULL));
    }
    r->elapsed = sl_clock() - t0;
}

static void m_spawn_join_1k(run_t *r)
{
    enum { K = 1000 };
    sl_task_t *t[K];
    uint64_t k = r->n < K ? r->n : K; /* fewer at tiny scales (the smoke test) */
    uint64_t rounds = (r->n + k - 1) / k;
    int64_t t0 = sl_clock();
    for (uint64_t round = 0; round < rounds; round++) {
        for (uint64_t i = 0; i < k; i++)
            OK(sl_task_spawn(nothing, NULL, &t[i]));
        for (uint64_t i = 0; i < k; i++)
            OK(sl_task_join(t[i], NULL));
    }
    r->elapsed = sl_clock() - t0;
    r->n = rounds * k;
}

/* ---- wake: ping-pong with two notifiers
 * ---------------------------------------------------------- */

typedef struct pingpong {
    sl_notify_t to_b, to_a;
    uint64_t rounds;
    int deadline;
} pingpong_t;

static int pp_wait(pingpong_t *p, sl_notify_t *n)
{
    return p->deadline ? sl_notify_wait_until(n, sl_deadline_in(10 * SL_SEC)) : sl_notify_wait(n);
}

static void *pp_b(void *arg)
{
    pingpong_t *p = arg;
    for (uint64_t i = 0; i < p->rounds; i++) {
        OK(pp_wait(p, &p->to_b));
        sl_notify_one(&p->to_a);
    }
    return NULL;
}

static void *pp_a(void *arg)
{
    pingpong_t *p = arg;
    for (uint64_t i = 0; i < p->rounds; i++) {
        sl_notify_one(&p->to_b);
        OK(pp_wait(p, &p->to_a));
    }
    return NULL;
}

static void pingpong(run_t *r, int cross, int deadline)
{
    pingpong_t p = {.rounds = r->n / 2, .deadline = deadline};
    sl_notify_init(&p.to_a);
    sl_notify_init(&p.to_b);
    sl_spawn_opts_t oa = {.name = "ping", .worker = 0, .use_worker = 1};
    sl_spawn_opts_t ob = {.name = "pong", .worker = cross ? 1 : 0, .use_worker = 1};
    sl_task_t *a, *b;
    int64_t t0 = sl_clock();
    OK(sl_task_spawn_ex(&ob, pp_b, &p, &b));
    OK(sl_task_spawn_ex(&oa, pp_a, &p, &a));
    OK(sl_task_join(a, NULL));
    OK(sl_task_join(b, NULL));
    r->elapsed = sl_clock() - t0;
    r->n = 2 * p.rounds;
    sl_notify_destroy(&p.to_a);
    sl_notify_destroy(&p.to_b);
}

static void m_wake_same(run_t *r)
{
    pingpong(r, 0, 0);
}

static void m_wake_cross(run_t *r)
{
    pingpong(r, 1, 0);
}

static void m_wake_deadline(run_t *r)
{
    pingpong(r, 0, 1);
}

/* The difference of two timings is only as steady as the slower of them: on a shared machine
 * one slow moment in either made it swing, and even go negative. So both run in turns, a fifth
 * of the rounds at a time, and each keeps its fastest turn. */
#define TIMER_TURNS 5

static void m_timer(run_t *r)
{
    uint64_t n = r->n / TIMER_TURNS;
    if (n < 2)
        n = 2;
    double best_base = 0, best_deadline = 0;
    for (int i = 0; i < TIMER_TURNS; i++) {
        run_t base = {.n = n}, deadline = {.n = n};
        pingpong(&base, 0, 0);
        pingpong(&deadline, 0, 1);
        double b = (double)base.elapsed / (double)base.n;
        double d = (double)deadline.elapsed / (double)deadline.n;
        if (i == 0 || b < best_base)
            best_base = b;
        if (i == 0 || d < best_deadline)
            best_deadline = d;
    }
    r->elapsed = (int64_t)(best_deadline * (double)r->n);
    r->base = (int64_t)(best_base * (double)r->n);
}

/* ---- semaphore ----------------------------------------------------------------------------------
 */

static void m_sem(run_t *r)
{
    sl_sem_t s;
    OK(sl_sem_init(&s, 5));
    int64_t t0 = sl_clock();
    for (uint64_t i = 0; i < r->n; i++) {
        sl_sem_permit_t p;
        OK(sl_sem_acquire(&s, &p));
        sl_sem_permit_release(&p);
    }
    r->elapsed = sl_clock() - t0;
    sl_sem_destroy(&s);
}

static void m_sem_raw(run_t *r)
{
    sl_sem_t s;
    OK(sl_sem_init(&s, 5));
    int64_t t0 = sl_clock();
    for (uint64_t i = 0; i < r->n; i++) {
        OK(sl_sem_acquire_raw(&s, 1));
        sl_sem_release_raw(&s, 1);
    }
    r->elapsed = sl_clock() - t0;
    sl_sem_destroy(&s);
}

/* ---- channels
 * ------------------------------------------------------------------------------------ */

static void m_mpsc_try(run_t *r)
{
    sl_mpsc_tx_t *tx;
    sl_mpsc_rx_t *rx;
    OK(sl_mpsc_new(sizeof(uint64_t), 64, &tx, &rx));
    uint64_t sum = 0, v;
    int64_t t0 = sl_clock();
    for (uint64_t i = 0; i < r->n; i++) {
        OK(sl_mpsc_try_send(tx, &i));
        OK(sl_mpsc_try_recv(rx, &v));
        sum += v;
    }
    r->elapsed = sl_clock() - t0;
    __asm__ volatile("" : : "g"(sum) : "memory");
    sl_mpsc_tx_drop(tx);
    sl_mpsc_rx_drop(rx);
}

static void m_mpsc_send_recv(run_t *r)
{
    sl_mpsc_tx_t *tx;
    sl_mpsc_rx_t *rx;
    OK(sl_mpsc_new(sizeof(uint64_t), 64, &tx, &rx));
    uint64_t sum = 0, v;
    int64_t t0 = sl_clock();
    for (uint64_t i = 0; i < r->n; i++) {
        OK(sl_mpsc_send(tx, &i));
        OK(sl_mpsc_recv(rx, &v));
        sum += v;
    }
    r->elapsed = sl_clock() - t0;
    __asm__ volatile("" : : "g"(sum) : "memory");
    sl_mpsc_tx_drop(tx);
    sl_mpsc_rx_drop(rx);
}

static void m_oneshot(run_t *r)
{
    uint64_t sum = 0, v;
    int64_t t0 = sl_clock();
    for (uint64_t i = 0; i < r->n; i++) {
        sl_oneshot_tx_t *tx;
        sl_oneshot_rx_t *rx;
        OK(sl_oneshot_new(sizeof(uint64_t), &tx, &rx));
        OK(sl_oneshot_send(tx, &i));
        OK(sl_oneshot_recv(rx, &v));
        sl_oneshot_rx_drop(rx);
        sum += v;
    }
    r->elapsed = sl_clock() - t0;
    __asm__ volatile("" : : "g"(sum) : "memory");
}

/* ---- epoll round trip over a socketpair
 * ------------------------------------------------------------ */

typedef struct echo {
    int fd;
    uint64_t rounds;
} echo_t;

static void *echo_task(void *arg)
{
    echo_t *e = arg;
    char c;
    for (uint64_t i = 0; i < e->rounds; i++) {
        if (sl_read(e->fd, &c, 1) != 1)
            fail("sl_read (echo)", SL_EIO);
        if (sl_write(e->fd, &c, 1) != 1)
            fail("sl_write (echo)", SL_EIO);
    }
    return NULL;
}

static void m_epoll_rtt(run_t *r)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        fail("socketpair", SL_EIO);
    echo_t e = {sv[1], r->n};
    sl_task_t *t;
    char c = 'x';
    int64_t t0 = sl_clock();
    OK(sl_task_spawn(echo_task, &e, &t));
    for (uint64_t i = 0; i < r->n; i++) {
        if (sl_write(sv[0], &c, 1) != 1)
            fail("sl_write", SL_EIO);
        if (sl_read(sv[0], &c, 1) != 1)
            fail("sl_read", SL_EIO);
    }
    OK(sl_task_join(t, NULL));
    r->elapsed = sl_clock() - t0;
    OK(sl_close(sv[0]));
    OK(sl_close(sv[1]));
}

/* ---- Driver -------------------------------------------------------------------------------------
 */

/* ---- the machine's state ----------------------------------------------------------------- */

/* The empty asm keeps each value in a register and opaque, so the compiler neither folds nor
 * vectorises the loops: what runs is the arithmetic written. */
#define OPAQUE(x) __asm__ volatile("" : "+r"(x))

static void m_core_wide(run_t *r)
{
    uint64_t a = 1, b = 3, c = 5, d = 7, e = 11, f = 13, g = 17;
    int64_t t0 = sl_clock();
    for (uint64_t i = 0; i < r->n; i++) {
        for (int k = 0; k < 8; k++) {
            a += b;
            c += b;
            d += b;
            e += b;
            f += b;
            g ^= b;
            OPAQUE(a);
            OPAQUE(c);
            OPAQUE(d);
            OPAQUE(e);
            OPAQUE(f);
            OPAQUE(g);
        }
    }
    r->elapsed = sl_clock() - t0;
    if ((a ^ c ^ d ^ e ^ f ^ g) == 42)
        printf("#\n"); /* uses the values; practically never true */
}

static void m_core_chain(run_t *r)
{
    uint64_t a = 1, b = 0x9e3779b97f4a7c15ULL;
    int64_t t0 = sl_clock();
    for (uint64_t i = 0; i < r->n; i++) {
        for (int k = 0; k < 8; k++) {
            a *= b;
            OPAQUE(a);
        }
    }
    r->elapsed = sl_clock() - t0;
    if (a == 42)
        printf("#\n");
}

typedef struct micro {
    const char *name;
    int workers;
    uint64_t n;
    void (*fn)(run_t *r);
} micro_t;

static const micro_t micros[] = {
    {"yield", 1, 5000000, m_yield},
    {"switch", 1, 5000000, m_switch},
    {"spawn_join", 1, 1000000, m_spawn_join},
    {"spawn_join_1k", 1, 1000000, m_spawn_join_1k},
    {"wake_same", 1, 2000000, m_wake_same},
    {"wake_cross", 2, 1000000, m_wake_cross},
    {"wake_deadline", 1, 2000000, m_wake_deadline},
    {"timer", 1, 2000000, m_timer},
    {"sem", 1, 10000000, m_sem},
    {"sem_raw", 1, 10000000, m_sem_raw},
    {"mpsc_try", 1, 10000000, m_mpsc_try},
    {"mpsc_send_recv", 1, 10000000, m_mpsc_send_recv},
    {"oneshot", 1, 5000000, m_oneshot},
    {"epoll_rtt", 1, 200000, m_epoll_rtt},
    {"core_wide", 1, 20000000, m_core_wide},
    {"core_chain", 1, 20000000, m_core_chain},
};
#define NMICROS (sizeof micros / sizeof micros[0])

typedef struct job {
    const micro_t *m;
    run_t r;
} job_t;

static void *job_main(void *arg)
{
    job_t *j = arg;
    j->m->fn(&j->r);
    return NULL;
}

static double run_one(const micro_t *m, uint64_t *ops)
{
    job_t j = {.m = m, .r = {.n = n_of(m->n)}};
    sl_runtime_opts_t opts;
    sl_runtime_opts_init(&opts);
    opts.workers = m->workers;
    sl_runtime_t *rt;
    OK(sl_runtime_new(&opts, &rt));
    OK(sl_runtime_block_on(rt, job_main, &j, NULL));
    sl_runtime_free(rt);
    *ops = j.r.n;
    return (double)(j.r.elapsed - j.r.base) / (double)j.r.n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const micro_t *sel[NMICROS];
    size_t nsel = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            scale = strtod(argv[++i], NULL);
            if (!(scale > 0)) {
                fprintf(stderr, "sluice-micro: bad scale\n");
                return 2;
            }
            continue;
        }
        size_t k;
        for (k = 0; k < NMICROS; k++)
            if (strcmp(micros[k].name, argv[i]) == 0)
                break;
        if (k == NMICROS || nsel == NMICROS) {
            fprintf(stderr, "usage: sluice-micro [--scale F] [NAME...]\nknown:");
            for (k = 0; k < NMICROS; k++)
                fprintf(stderr, " %s", micros[k].name);
            fprintf(stderr, "\n");
            return 2;
        }
        sel[nsel++] = &micros[k];
    }
    if (nsel == 0)
        for (size_t k = 0; k < NMICROS; k++)
            sel[nsel++] = &micros[k];
    for (size_t k = 0; k < nsel; k++) {
        uint64_t ops;
        double v[3];
        (void)run_one(sel[k], &ops);
        for (int i = 0; i < 3; i++)
            v[i] = run_one(sel[k], &ops);
        qsort(v, 3, sizeof v[0], cmp_double);
        printf("%s\t%.1f\tns/op\t%llu\n", sel[k]->name, v[1], (unsigned long long)ops);
        fflush(stdout);
    }
    return 0;
}
