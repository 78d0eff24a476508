/*
 * sluice: an async runtime for C with Tokio's primitives.
 *
 * The umbrella header: include this and nothing else. Conventions shared by every module:
 *   - Functions return 0 (or a documented non-negative value) on success and a negative SL_E*
 *     code on failure (<sluice/error.h>); a failed call changes nothing.
 *   - A blocking call comes in three forms: sl_x_verb waits, sl_x_try_verb never waits,
 *     sl_x_verb_until(..., deadline) gives up at an absolute sl_now() deadline.
 *   - Blocking calls must run inside a task. They return SL_ECANCELED once the task is
 *     cancelled and SL_ETIMEDOUT inside an expired sl_timeout scope. A call that has to wait
 *     with a deadline (its own, or an enclosing sl_timeout scope's) arms a timer first; when
 *     the worker's timer heap must grow (past 64 armed timers) and cannot, the call returns
 *     SL_ENOMEM having done nothing. Every _until form and every call inside a timeout scope
 *     can therefore return SL_ENOMEM, in addition to the codes its comment lists.
 *   - Pointers are borrowed unless the comment says "takes ownership" or "returns an owned X".
 */
#ifndef SLUICE_H
#define SLUICE_H

#ifndef SL_API
#define SL_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#include <sluice/error.h>
#include <sluice/wait.h>
#include <sluice/runtime.h>
#include <sluice/task.h>
#include <sluice/time.h>
#include <sluice/cancel.h>
#include <sluice/select.h>
#include <sluice/io.h>
#include <sluice/net.h>
#include <sluice/signal.h>
#include <sluice/mpsc.h>
#include <sluice/oneshot.h>
#include <sluice/broadcast.h>
#include <sluice/watch.h>
#include <sluice/semaphore.h>
#include <sluice/notify.h>
#include <sluice/mutex.h>
#include <sluice/joinset.h>
#include <sluice/tracker.h>

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_H */
