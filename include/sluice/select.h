/*
 * sluice: select over several waitables, as tokio::select!.
 *
 * Fill an array of clauses with the sl_clause_* initialisers (each module provides its own:
 * sl_clause_join, sl_clause_sleep_until, sl_clause_readable, sl_clause_mpsc_recv, ...), then
 * call sl_select(). Exactly one clause completes; the others leave no trace: no message is
 * taken, no permit acquired, no notification consumed. The clause array is caller storage
 * (normally on the stack); sl_select() allocates nothing.
 *
 *     sl_clause_t c[2];
 *     sl_clause_mpsc_recv(&c[0], rx, &msg);
 *     sl_clause_cancelled(&c[1], shutdown);
 *     int i = sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER);
 *     if (i == 0 && c[0].res == 0) handle(&msg);
 */
#ifndef SLUICE_SELECT_H
#define SLUICE_SELECT_H

#include <stdint.h>

#include <sluice/cancel.h>
#include <sluice/task.h>
#include <sluice/wait.h>

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

struct sl_clause_ops; /* private: how a waitable is polled, armed and disarmed */

/* One clause of a select. Fill it with an sl_clause_* initialiser; read .res afterwards. */
typedef struct sl_clause {
    const struct sl_clause_ops *ops; /* private */
    void *obj;                       /* private: the waitable */
    void *buf;                       /* private: where a value goes in or out */
    uintptr_t arg;                   /* private */
    int64_t arg64;                   /* private */
    int res;                         /* the completed clause's result code (0 or SL_E*) */
    sl_waiter_t w;                   /* private */
    sl_timer_t timer;                /* private */
} sl_clause_t;

#define SL_SELECT_BIASED 0 /* check clauses in array order; the first ready one wins */
#define SL_SELECT_FAIR   1 /* start at a random clause, as tokio::select! without `biased;` */

/**
 * Waits until one clause completes and returns its index; its result code is in c[i].res
 * (0, or the operation's own error such as SL_ECLOSED: a closed channel completes its clause).
 *
 * Waits. Clauses that are ready at once win without waiting (in order, or from a random start
 * with SL_SELECT_FAIR). Returns the index, SL_ETIMEDOUT when deadline (absolute; SL_FOREVER
 * for none) or an enclosing timeout scope expires first, SL_ECANCELED when the calling task is
 * cancelled, SL_EINVAL (n < 1 or more than 64 clauses), or SL_ENOMEM (it had to wait with a
 * deadline and the worker's timer heap could not grow). When the select fails, no clause
 * completed. Disabled clauses (sl_clause_none) are skipped; if every clause is disabled the
 * select waits only for the deadline.
 */
SL_API int sl_select(sl_clause_t *c, int n, int flags, int64_t deadline);

/**
 * A clause that never completes: use it to disable a branch without renumbering.
 *
 * Never waits.
 */
SL_API void sl_clause_none(sl_clause_t *c);

/**
 * A clause that completes (res = 0) once the absolute deadline has passed, or at once with
 * res = SL_ENOMEM if the select must wait and its timer cannot be armed (the worker's timer
 * heap could not grow).
 *
 * Never waits.
 */
SL_API void sl_clause_sleep_until(sl_clause_t *c, int64_t deadline);

/**
 * A clause that completes when task t ends; on completion *out (if not NULL) receives the
 * outcome and the handle is consumed, as by sl_task_join().
 *
 * Never waits. t is borrowed until the clause completes.
 */
SL_API void sl_clause_join(sl_clause_t *c, sl_task_t *t, sl_join_t *out);

/**
 * A clause that completes (res = 0) when the token is triggered.
 *
 * Never waits. tok is borrowed for the duration of the select.
 */
SL_API void sl_clause_cancelled(sl_clause_t *c, sl_cancel_t *tok);

#endif /* SLUICE_SELECT_H */
