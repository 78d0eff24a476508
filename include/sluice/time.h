/*
 * sluice: time, sleeps, intervals and timeouts.
 *
 * Time is a monotonic clock in nanoseconds (CLOCK_MONOTONIC). Inside a task, sl_now() is
 * cached once per scheduling round, as libuv's uv_now() is. Deadlines are absolute values of
 * that clock; SL_FOREVER means no deadline. Timers fire no earlier than their deadline, with a
 * resolution of 1 ms or better.
 */
#ifndef SLUICE_TIME_H
#define SLUICE_TIME_H

#include <stdint.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

#define SL_NSEC    ((int64_t)1)
#define SL_USEC    ((int64_t)1000)
#define SL_MSEC    ((int64_t)1000000)
#define SL_SEC     ((int64_t)1000000000)
#define SL_FOREVER INT64_MAX

/**
 * Returns the monotonic time in ns, cached for the current scheduling round (outside a task:
 * read fresh).
 *
 * Never waits.
 */
SL_API int64_t sl_now(void);

/** Reads the monotonic clock now, bypassing the cache. Never waits. */
SL_API int64_t sl_clock(void);

/**
 * Returns now + ns, saturating at SL_FOREVER (ns < 0 counts as 0).
 *
 * Never waits.
 */
SL_API int64_t sl_deadline_in(int64_t ns);

/**
 * Suspends the calling task for ns nanoseconds (ns <= 0: yields once and returns).
 *
 * Waits. Returns 0, SL_ECANCELED if the task is cancelled, SL_ETIMEDOUT if an enclosing
 * sl_timeout scope expires first, or SL_ENOMEM (at once, without sleeping) when the worker's
 * timer heap had to grow and could not.
 */
SL_API int sl_sleep(int64_t ns);

/**
 * Suspends the calling task until the absolute deadline.
 *
 * Waits. Returns as sl_sleep().
 */
SL_API int sl_sleep_until(int64_t deadline);

/* What an interval does when ticks were missed (Tokio's MissedTickBehavior). */
typedef enum sl_missed {
    SL_MISSED_BURST = 0, /* fire the missed ticks back to back until caught up (default) */
    SL_MISSED_DELAY = 1, /* next tick = the time it actually fired + period */
    SL_MISSED_SKIP = 2   /* skip missed ticks: next tick = the next multiple of period */
} sl_missed_t;

/* A periodic ticker. Caller storage; no allocation. */
typedef struct sl_interval {
    int64_t period;
    int64_t next; /* deadline of the next tick */
    int missed;   /* sl_missed_t */
} sl_interval_t;

/**
 * Initialises an interval whose first tick is immediate (at sl_now()) and later ones every
 * period ns, as tokio::time::interval.
 *
 * Never waits. Returns 0 or SL_EINVAL (period <= 0 or an unknown behaviour).
 */
SL_API int sl_interval_init(sl_interval_t *iv, int64_t period, sl_missed_t missed);

/**
 * As sl_interval_init() with the first tick at the absolute time start
 * (tokio::time::interval_at).
 */
SL_API int sl_interval_init_at(sl_interval_t *iv, int64_t start, int64_t period,
                               sl_missed_t missed);

/**
 * Waits for the next tick; *when (if not NULL) receives the tick's scheduled time.
 *
 * Waits. Returns 0, SL_ECANCELED, SL_ETIMEDOUT (enclosing timeout scope) or SL_ENOMEM (as
 * sl_sleep()); the tick is not consumed on failure.
 */
SL_API int sl_interval_tick(sl_interval_t *iv, int64_t *when);

/**
 * Resets the interval so that the next tick is one period from now.
 *
 * Never waits.
 */
SL_API void sl_interval_reset(sl_interval_t *iv);

/*
 * A timeout scope, as tokio::time::timeout(dur, fut): every wait the task makes between
 * sl_timeout_enter() and sl_timeout_exit() fails with SL_ETIMEDOUT once the deadline has
 * passed. Scopes nest; the earliest deadline wins. Caller storage, normally on the stack.
 */
typedef struct sl_timeout {
    int64_t deadline;         /* this scope's own deadline */
    int64_t effective;        /* min(deadline, enclosing scopes' effective deadline) */
    struct sl_timeout *outer; /* enclosing scope */
    int expired;              /* set when a wait inside failed because of this scope */
} sl_timeout_t;

/**
 * Enters a timeout scope ending at the absolute deadline (sl_deadline_in() for a duration).
 *
 * Never waits. Must be called from a task, and paired with sl_timeout_exit() on the same
 * task, innermost first (an assertion checks it).
 */
SL_API void sl_timeout_enter(sl_timeout_t *to, int64_t deadline);

/**
 * Leaves the scope. Returns SL_ETIMEDOUT if the scope's deadline (or an enclosing one that
 * was earlier) cut a wait inside it short, else 0: work that finished before the deadline is
 * never reported as timed out.
 *
 * Never waits.
 */
SL_API int sl_timeout_exit(sl_timeout_t *to);

/**
 * Runs fn(arg) inside a timeout scope of ns nanoseconds and returns fn's return value, or
 * SL_ETIMEDOUT if the deadline cut a wait inside fn short (fn's return value is then ignored).
 *
 * Waits as fn does.
 */
SL_API int sl_timeout_run(int64_t ns, int (*fn)(void *), void *arg);

#endif /* SLUICE_TIME_H */
