/* Internal: task stacks (see stack.c). */
#ifndef SLUICE_CORO_STACK_H
#define SLUICE_CORO_STACK_H

#include "core/rt.h"

/* Returns a stack of at least size usable bytes, from the worker's cache or the process's pool
 * when possible, or NULL when no mapping could be made. w: the worker the task starts on, called by
 * its thread (or, for the main task, before the workers start). */
sl__stack_t *sl__stack_get(sl_runtime_t *rt, sl__worker_t *w, size_t size);
/* Returns a stack to the worker's cache; past the cache's size, retires it (unmapped with the
 * next SL__STACK_RETIRE - 1, when the worker idles or its loop ends). A stack of another size
 * than the default is unmapped now. Called by w's thread. */
void sl__stack_put(sl_runtime_t *rt, sl__worker_t *w, sl__stack_t *s);
/* Hands the worker's retired stacks to the process's pool, and unmaps those it does not take,
 * neighbours in one munmap. Owner only. */
void sl__stack_retired_flush(sl_runtime_t *rt, sl__worker_t *w);
/* Hands every cached and retired stack of the worker to the process's pool (unmapping those
 * it does not take), and unmaps the rest of its run. */
void sl__stack_cache_free(sl_runtime_t *rt, sl__worker_t *w);
/* Unmaps the pooled stacks unused since before now - SL__STACK_POOL_TTL (all of them when now
 * is INT64_MAX). Any thread. */
void sl__stack_pool_trim(int64_t now);
/* For the tests: how long a pooled stack is kept unused (default SL__STACK_POOL_TTL), so that a
 * test whose steps take longer under a sanitizer on a loaded machine does not see its stacks
 * expire between them. */
void sl__stack_pool_ttl_set(int64_t ns);
/* Stacks in the process's pool, and munmap calls made for pooled stacks so far (tests). */
long sl__stack_pool_count(void);
long sl__stack_pool_unmaps(void);
/* Aborts with a message naming the task if a stack without a guard page overflowed into
 * its canary. */
void sl__stack_check(sl_task_t *t);
/* Installs the process-wide SIGSEGV handler that names the task whose guard page was hit,
 * and gives the calling thread an alternate signal stack (kept in w->altstack). */
void sl__stack_thread_init(sl__worker_t *w);
void sl__stack_thread_fini(sl__worker_t *w);

#endif /* SLUICE_CORO_STACK_H */
