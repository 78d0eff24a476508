/*
 * sluice: waiting for Unix signals, as tokio::signal does.
 *
 * Supported signals: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2.
 *
 * Signals are process-wide, so this part of sluice keeps process-wide state: the first
 * sl_signal_listen() (or wait) for a signal installs a sigaction handler (SA_RESTART) that
 * writes the signal number into a non-blocking self-pipe; the handler is never removed, so
 * from then on the signal's default action (terminating the process) is gone for the rest of
 * the process, whichever runtime or task listened. The pipe is read by the reactor of every
 * runtime that has a task waiting.
 *
 * Delivery: a signal wakes every task waiting for it at that moment (a broadcast, as every
 * tokio Signal stream sees each signal). If no task is waiting, it is remembered (one pending
 * flag per signal, so several arrivals coalesce into one) and the next wait returns at once:
 * a signal that arrives between sl_signal_listen() and the wait is not lost.
 */
#ifndef SLUICE_SIGNAL_H
#define SLUICE_SIGNAL_H

#include <stdint.h>

#include <sluice/select.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

/**
 * Starts listening for signo: installs the process-wide handler (once per signal), so signo no
 * longer terminates the process, and arrivals are remembered until a task waits.
 *
 * Never waits; callable from any thread, inside a runtime or not. Returns 0, SL_EINVAL (an
 * unsupported signal) or an errno from pipe2/sigaction.
 */
SL_API int sl_signal_listen(int signo);

/**
 * Waits until signo arrives (or consumes one that arrived since listening began), as
 * tokio::signal::ctrl_c() does for SIGINT. Starts listening first if needed.
 *
 * Waits. Returns 0, SL_EINVAL (unsupported signal), SL_ECANCELED if the task is cancelled,
 * SL_ETIMEDOUT inside an expired sl_timeout scope, a setup error as sl_signal_listen(), or
 * SL_ENOMEM / an epoll_ctl(2) error if the signal's pipe could not be registered with the
 * reactor (as <sluice/io.h> describes; nothing was consumed).
 */
SL_API int sl_signal_wait(int signo);

/**
 * As sl_signal_wait(), giving up at the absolute deadline (SL_ETIMEDOUT).
 */
SL_API int sl_signal_wait_until(int signo, int64_t deadline);

/**
 * Consumes a pending arrival of signo without waiting.
 *
 * Never waits; callable from any thread. Returns 0 (one was pending), SL_EAGAIN (none), or
 * an error as sl_signal_listen() (it starts listening if needed).
 */
SL_API int sl_signal_try_wait(int signo);

/**
 * A select clause that completes (res = 0) when signo arrives; res may also be SL_EINVAL
 * (unsupported signal), an sl_signal_listen() error, SL_ENOMEM (the worker's fd table could not
 * grow) or an epoll_ctl(2) error registering the signal pipe (SL_ENOSPC, SL_ENOMEM). The select
 * starts listening if needed (as sl_signal_wait()). A clause that loses consumes nothing.
 *
 * Never waits.
 */
SL_API void sl_clause_signal(sl_clause_t *c, int signo);

#endif /* SLUICE_SIGNAL_H */
