/*
 * Task stacks: a range of address space each, a guard page below it, a per-worker cache for
 * reuse.
 *
 * Guard pages. A guard made with mprotect() splits the mapping in two, so each guarded stack
 * costs two of the kernel's vm.max_map_count mappings (65530 by default): 100,000 tasks would
 * not fit. Linux 6.13 added MADV_GUARD_INSTALL, which makes guard pages inside one mapping
 * without splitting it; we use it when the kernel has it, for a whole run of stacks in one
 * process_madvise call where the kernel takes that (run_guard). On older kernels we spend mprotect
 * guards on up to 40% of max_map_count stacks (two mappings each: 80% of the mappings), and
 * beyond that give stacks a canary at their lowest bytes, checked each time the task switches
 * out: an overflow is then caught (and the process aborted with the task's name) at the next
 * switch instead of by the MMU. docs/design/runtime.md discusses the trade-off.
 *
 * Runs and retirement. A worker maps default-size stacks several at a time (run_stacks(): up to
 * SL__STACK_RUN, in SL__STACK_RUN_BYTES at most; one mmap, one MADV_NOHUGEPAGE) and carves them
 * off as tasks start; the part not carved yet is address space only (MAP_NORESERVE, never
 * touched). A worker whose run could not be mapped (an address-space limit) maps stacks one by
 * one from then on. A stack that leaves when the worker's cache is full is retired: kept on a
 * short list, reused by the next task that starts there, and unmapped all at once when the list
 * holds SL__STACK_RETIRE stacks, when the worker goes idle or when its loop ends, sorted by
 * address so that neighbours (the stacks of one run) go in one munmap. On this VM a stack mapped
 * and unmapped alone cost about 3.7 to 4.4 us of system calls beyond its first page fault (mmap,
 * two madvise, munmap and its TLB flush); in a run, about 0.6 (docs/perf.md, "What changed").
 *
 * The pool. What a worker would unmap (its retired stacks, and its cached ones when it stops)
 * goes first to one pool shared by every runtime of the process, as freed memory goes back to
 * malloc's arenas rather than to the kernel: the next task that needs a stack, on any worker of
 * this runtime or of a later one, takes a stack whose guard is in place and whose top page is
 * resident, where a new one costs a page fault, a share of a run's mmap and guard call, and at
 * its end a share of a munmap (3.6 us per stack on this VM, docs/perf.md). Only stacks with a
 * MADV_GUARD_INSTALL guard go there (a guard that needs no mapping of its own, so that nothing
 * counts against a runtime's mprotect budget), all of one size (the first size pooled; stacks of
 * another size are unmapped as before), and only runtimes with guard pages take them. Bounds:
 * below its top page a pooled stack's memory is given back at once (MADV_DONTNEED, a batch in
 * one process_madvise call), so the pool holds at most one resident page per stack; it keeps at
 * most SL__STACK_POOL_MAX stacks (the oldest go first); and a stack unused for
 * SL__STACK_POOL_TTL is unmapped at the next put to the pool or when a worker idles.
 * sl_memory_trim() unmaps them all (and the unbounded channels' spare slabs, mpsc.c).
 */
#define _GNU_SOURCE
#include "coro/stack.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "coro/san.h"
#include "util/plock.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define PIDFD_SELF_PROCESS (-10001) /* PIDFD_SELF_THREAD_GROUP, Linux 6.14 */

#define CANARY       0x5c0de5a7c0ffee11ULL
#define CANARY_WORDS 8

static void canary_write(sl__stack_t *s)
{
    uint64_t *p = (uint64_t *)(void *)s->map;
    for (int i = 0; i < CANARY_WORDS; i++)
        p[i] = CANARY;
}

static int canary_ok(const sl__stack_t *s)
{
    const uint64_t *p = (const uint64_t *)(const void *)s->map;
    for (int i = 0; i < CANARY_WORDS; i++)
        if (p[i] != CANARY)
            return 0;
    return 1;
}

/* A stack that ran a task before, made fit for the next one. */
static void stack_reuse_prepare(sl__stack_t *s)
{
#if SLUICE_ASAN
    /* A task never returns from its entry function, so the redzones of its last frames
     * stay poisoned; the next task on this stack must not trip over them. */
    __asan_unpoison_memory_region(s->lo, s->size);
#elif SLUICE_VALGRIND
    /* Memcheck made what lay below the last task's stack pointer inaccessible; the next
     * task's first frame may start lower (stack colouring). The canary at the bottom keeps
     * its value: every switch reads it. */
    VALGRIND_MAKE_MEM_UNDEFINED(s->lo, s->size);
    if (s->guard == 0)
        VALGRIND_MAKE_MEM_DEFINED(s->lo, CANARY_WORDS * sizeof(uint64_t));
#else
    (void)s;
#endif
}

/* The first stack of a worker's cache or retired list, made fit for its next task; NULL when
 * the list is empty. */
static sl__stack_t *stack_pop(sl__stack_t **list, int *count)
{
    sl__stack_t *s = *list;
    if (!s)
        return NULL;
    *list = s->next;
    (*count)--;
    s->next = NULL;
    stack_reuse_prepare(s);
    return s;
}

static sl__stack_t *pool_get(sl_runtime_t *rt, sl__worker_t *w, size_t map_size);

static char *map_fresh(size_t len)
{
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
#ifdef MADV_NOHUGEPAGE
    /* A transparent huge page would turn lazily touched stacks into 2 MiB of RSS. */
    madvise(map, len, MADV_NOHUGEPAGE);
#endif
    return map;
}

/* How many stacks of map_size bytes one run holds: SL__STACK_RUN, fewer when that would be
 * more than SL__STACK_RUN_BYTES of address space (a large default stack size), and 0 (no
 * runs: single mappings) when two do not fit. */
static size_t run_stacks(size_t map_size)
{
    size_t n = SL__STACK_RUN_BYTES / map_size;
    return n > SL__STACK_RUN ? SL__STACK_RUN : n < 2 ? 0 : n;
}

/* Puts the guard pages of a new run's n stacks (the lowest page of each) in place with one
 * system call: process_madvise(2) takes a vector of ranges, and since Linux 6.14 the calling
 * process without a pidfd of its own (so nothing goes wrong after a fork). 1 when every guard is
 * in place; 0 (the stacks are guarded one at a time as they are carved, as before) when the
 * call is missing or refuses this advice, which is then not tried again in this runtime. */
static int run_guard(sl_runtime_t *rt, char *run, size_t map_size, size_t n)
{
#ifdef SYS_process_madvise
    if (!rt->opts.guard_pages || atomic_load_explicit(&rt->madv_guard, memory_order_relaxed) == 0 ||
        !atomic_load_explicit(&rt->run_guard, memory_order_relaxed))
        return 0;
    struct iovec iov[SL__STACK_RUN];
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = run + i * map_size;
        iov[i].iov_len = rt->page;
    }
    long r = syscall(SYS_process_madvise, PIDFD_SELF_PROCESS, iov, n, MADV_GUARD_INSTALL, 0);
    if (r == (long)(n * rt->page)) {
        atomic_store_explicit(&rt->madv_guard, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&rt->run_guards, 1, memory_order_relaxed);
        return 1;
    }
    if (r < 0)
        atomic_store_explicit(&rt->run_guard, 0, memory_order_relaxed);
#else
    (void)rt, (void)run, (void)map_size, (void)n;
#endif
    return 0; /* a partial result: the rest one at a time (installing a guard twice is harmless) */
}

/* The next map_size bytes of the worker's run, mapping a new run when the last one is used up;
 * NULL when stacks of this size are not mapped in runs or no run can be mapped (the caller then
 * maps a single stack). The run's pages are untouched until a task uses them. */
static char *run_carve(sl_runtime_t *rt, sl__worker_t *w, size_t map_size)
{
    if (w->stack_run_left < map_size) {
        /* Every carve is map_size, and so is every run a multiple of it: nothing is left. */
        size_t n = run_stacks(map_size);
        if (n == 0 || w->stack_run_failed)
            return NULL;
        char *run = map_fresh(map_size * n);
        if (!run) {
            w->stack_run_failed = 1; /* no second try per stack near an address-space limit */
            return NULL;
        }
        atomic_fetch_add_explicit(&rt->stack_runs, 1, memory_order_relaxed);
        w->stack_run = run;
        w->stack_run_left = map_size * n;
        w->stack_run_guarded = run_guard(rt, run, map_size, n);
    }
    char *map = w->stack_run;
    w->stack_run += map_size;
    w->stack_run_left -= map_size;
    return map;
}

sl__stack_t *sl__stack_get(sl_runtime_t *rt, sl__worker_t *w, size_t size)
{
    size_t page = rt->page;
    size = (size + page - 1) & ~(page - 1);
    if (size == rt->opts.stack_size) {
        /* A retired stack is not unmapped yet: as good as a cached one (its guard or canary is
         * in place). */
        sl__stack_t *s = stack_pop(&w->stack_cache, &w->stack_cached);
        if (s || (s = stack_pop(&w->stack_retired, &w->stack_nretired)))
            return s;
        if (rt->opts.guard_pages && (s = pool_get(rt, w, size + page)))
            return s;
    }
    size_t map_size = size + page;
    char *map = NULL;
    int guarded = 0;
    if (size == rt->opts.stack_size && (map = run_carve(rt, w, map_size)))
        guarded = w->stack_run_guarded;
    if (!map && !(map = map_fresh(map_size)))
        return NULL;
    /* The descriptor lives at the top of the mapping, in the page the task touches first. */
    sl__stack_t *s = (sl__stack_t *)(void *)(map + map_size - sizeof(sl__stack_t));
    s->next = NULL;
    s->map = map;
    s->map_size = map_size;
    s->lo = map + page;
    s->size = size - sizeof(sl__stack_t);
    s->size &= ~(size_t)15;
    s->guard = 0;
    if (guarded) {
        s->guard = 1; /* with its run's (run_guard) */
    } else if (rt->opts.guard_pages) {
        /* Workers map stacks concurrently: the probe result is shared through an atomic. */
        int mg = atomic_load_explicit(&rt->madv_guard, memory_order_relaxed);
        if (mg != 0 && madvise(map, page, MADV_GUARD_INSTALL) == 0) {
            atomic_store_explicit(&rt->madv_guard, 1, memory_order_relaxed);
            s->guard = 1;
        } else {
            if (mg == -1)
                atomic_store_explicit(&rt->madv_guard, 0, memory_order_relaxed);
            if (atomic_fetch_add(&rt->mprotect_guards, 1) < rt->mprotect_budget &&
                mprotect(map, page, PROT_NONE) == 0) {
                s->guard = 2;
            } else {
                atomic_fetch_sub(&rt->mprotect_guards, 1);
            }
        }
    }
    if (s->guard == 0) {
        /* No MMU guard: the page below the stack becomes part of it with a canary at its
         * bottom, checked at every switch. */
        s->lo = map;
        s->size += page;
        canary_write(s);
    } else {
        atomic_fetch_add(&rt->stacks_guarded, 1);
    }
#if SLUICE_VALGRIND
    VALGRIND_STACK_REGISTER(s->lo, s->lo + s->size);
#endif
#if SLUICE_ASAN
    /* The kernel may hand back the address range of a stack unmapped earlier, whose shadow
     * still carries the redzones of frames that never returned. */
    __asan_unpoison_memory_region(s->lo, s->size);
#endif
    atomic_fetch_add(&rt->stacks_live, 1);
    return s;
}

/* The accounting of a stack about to be unmapped (the caller unmaps it, maybe together with
 * its neighbours). */
static void stack_forget(sl_runtime_t *rt, sl__stack_t *s)
{
    if (s->guard == 2)
        atomic_fetch_sub(&rt->mprotect_guards, 1);
    if (s->guard)
        atomic_fetch_sub(&rt->stacks_guarded, 1);
    atomic_fetch_sub(&rt->stacks_live, 1);
#if SLUICE_ASAN
    __asan_unpoison_memory_region(s->lo, s->size);
#endif
}

static _Atomic long pool_unmaps; /* munmap calls for pooled stacks (tests) */

/* munmap, or when it fails (ENOMEM: splitting a mapping near vm.max_map_count) at least the
 * memory back, the address space kept. rt: whose counter the call goes to (NULL: the pool's). */
static void unmap_range(sl_runtime_t *rt, char *p, size_t len)
{
    atomic_fetch_add_explicit(rt ? &rt->stack_unmaps : &pool_unmaps, 1, memory_order_relaxed);
    if (munmap(p, len) != 0)
        (void)madvise(p, len, MADV_DONTNEED);
}

static void stack_unmap(sl_runtime_t *rt, sl__stack_t *s)
{
    stack_forget(rt, s);
    unmap_range(rt, s->map, s->map_size);
}

/* A list of stacks (next links) sorted by address: merge sort, no allocation. */
static sl__stack_t *sort_by_address(sl__stack_t *list)
{
    if (!list || !list->next)
        return list;
    sl__stack_t *slow = list, *fast = list->next;
    while (fast && fast->next) {
        slow = slow->next;
        fast = fast->next->next;
    }
    sl__stack_t *b = sort_by_address(slow->next);
    slow->next = NULL;
    sl__stack_t *a = sort_by_address(list);
    sl__stack_t *head = NULL, **tail = &head;
    while (a && b) {
        sl__stack_t **least = (uintptr_t)a->map < (uintptr_t)b->map ? &a : &b;
        *tail = *least;
        tail = &(*least)->next;
        *least = (*least)->next;
    }
    *tail = a ? a : b;
    return head;
}

/* Unmaps a list of stacks that no runtime counts any more (stack_forget, or pooled), sorted by
 * address first so that neighbours go in one munmap: however a worker's retirement or the pool
 * shuffled them, the stacks of one run meet again. rt: whose counter the calls go to (NULL: the
 * pool's). */
static void unmap_list(sl_runtime_t *rt, sl__stack_t *list)
{
    list = sort_by_address(list);
    if (!list)
        return;
    char *lo = list->map, *hi = list->map + list->map_size;
    for (sl__stack_t *s = list->next; s;) {
        /* s lies above [lo, hi): its fields are read before that range goes. */
        sl__stack_t *next = s->next;
        char *m = s->map, *e = s->map + s->map_size;
        if (m != hi) {
            unmap_range(rt, lo, (size_t)(hi - lo));
            lo = m;
        }
        hi = e;
        s = next;
    }
    unmap_range(rt, lo, (size_t)(hi - lo));
}

/* unmap_list for n stacks in an array. */
static void unmap_batch(sl_runtime_t *rt, sl__stack_t **v, int n)
{
    sl__stack_t *list = NULL;
    for (int i = n - 1; i >= 0; i--) {
        v[i]->next = list;
        list = v[i];
    }
    unmap_list(rt, list);
}

/* ---- The process's pool ------------------------------------------------------------------- */

static struct {
    sl__plock_t mu;
    sl__stack_t *head, *tail; /* newest first (next), so the tail is the oldest */
    long n;
    size_t map_size;        /* the size of its stacks, while it has any */
    _Atomic int64_t oldest; /* the tail's pooled_at, INT64_MAX when empty: read without mu */
} pool = {SL__PLOCK_INIT, NULL, NULL, 0, 0, INT64_MAX};

static _Atomic int64_t pool_ttl = SL__STACK_POOL_TTL; /* sl__stack_pool_ttl_set (tests) */
static _Atomic int pool_pmadv = 1; /* 0: process_madvise refused MADV_DONTNEED, use madvise */

static void pool_lock(void)
{
    sl__plock(&pool.mu);
}

static void pool_unlock(void)
{
    atomic_store_explicit(&pool.oldest, pool.tail ? pool.tail->pooled_at : INT64_MAX,
                          memory_order_relaxed);
    sl__punlock(&pool.mu);
}

/* Under the lock: puts s in the pool as its newest. */
static void pool_push(sl__stack_t *s, int64_t now)
{
    s->pooled_at = now;
    s->prev = NULL;
    s->next = pool.head;
    if (pool.head)
        pool.head->prev = s;
    else
        pool.tail = s;
    pool.head = s;
    pool.n++;
}

/* Under the lock: takes s out of the pool. */
static sl__stack_t *pool_unlink(sl__stack_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        pool.head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        pool.tail = s->prev;
    pool.n--;
    s->next = s->prev = NULL;
    return s;
}

/* Under the lock: takes off the stacks past the pool's size or unused since before `cutoff`,
 * oldest first, into a list the caller unmaps (unmap_list) once it has let go of the
 * lock. */
static sl__stack_t *pool_evict(int64_t cutoff)
{
    sl__stack_t *out = NULL;
    while (pool.tail && (pool.n > SL__STACK_POOL_MAX || pool.tail->pooled_at < cutoff)) {
        sl__stack_t *s = pool_unlink(pool.tail);
        s->next = out;
        out = s;
    }
    return out;
}

/* Gives back the memory of n stacks below their top page (the pages their tasks went deeper
 * into), keeping the mappings and their guards: one process_madvise call where the kernel takes
 * MADV_DONTNEED there (Linux 6.13 for the calling process), else one madvise per stack. */
static void pool_release_pages(size_t page, sl__stack_t **v, int n)
{
    struct iovec iov[SL__STACK_RETIRE];
    int k = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        char *top = v[i]->map + v[i]->map_size - page;
        if (top > v[i]->lo) {
            iov[k].iov_base = v[i]->lo;
            iov[k].iov_len = (size_t)(top - v[i]->lo);
            total += iov[k].iov_len;
            k++;
        }
    }
    if (k == 0)
        return;
#ifdef SYS_process_madvise
    if (atomic_load_explicit(&pool_pmadv, memory_order_relaxed)) {
        long r = syscall(SYS_process_madvise, PIDFD_SELF_PROCESS, iov, (size_t)k, MADV_DONTNEED, 0);
        if (r == (long)total)
            return;
        if (r < 0)
            atomic_store_explicit(&pool_pmadv, 0, memory_order_relaxed);
    }
#endif
    for (int i = 0; i < k; i++)
        (void)madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED);
}

/* Moves into the pool those of n stacks (n <= SL__STACK_RETIRE, all of one size, no longer
 * counted by their runtime: stack_forget) that it takes, and compacts v to the others; returns
 * how many those are (the caller unmaps them). Evicts what the pool then holds past its bounds. */
static int pool_put(size_t page, sl__stack_t **v, int n)
{
    sl__stack_t *take[SL__STACK_RETIRE];
    int k = 0, left = 0;
    for (int i = 0; i < n; i++) {
        if (v[i]->guard == 1)
            take[k++] = v[i];
        else
            v[left++] = v[i];
    }
    if (k == 0)
        return left;
    /* Before any other thread can take them. */
    pool_release_pages(page, take, k);
    size_t map_size = take[0]->map_size;
    int64_t now = sl_clock();
    pool_lock();
    if (pool.head && pool.map_size != map_size) {
        pool_unlock();
        for (int i = 0; i < k; i++)
            v[left++] = take[i];
        return left;
    }
    pool.map_size = map_size;
    for (int i = 0; i < k; i++)
        pool_push(take[i], now);
    sl__stack_t *evicted = pool_evict(now - atomic_load_explicit(&pool_ttl, memory_order_relaxed));
    pool_unlock();
    unmap_list(NULL, evicted);
    return left;
}

/* A pooled stack of map_size for a task of rt starting on w, which counts it as its own from
 * now, with up to 15 more pushed on w's cache while it has room; NULL when the pool has none
 * of that size. Only for a runtime with guard pages (every pooled stack has one). */
static sl__stack_t *pool_get(sl_runtime_t *rt, sl__worker_t *w, size_t map_size)
{
    if (atomic_load_explicit(&pool.oldest, memory_order_relaxed) == INT64_MAX)
        return NULL; /* empty, most likely: checked again under the lock when not */
    int want = rt->opts.stack_cache - w->stack_cached;
    want = 1 + (want < 0 ? 0 : want > SL__STACK_RUN - 1 ? SL__STACK_RUN - 1 : want);
    sl__stack_t *got = NULL;
    int n = 0;
    pool_lock();
    if (pool.map_size == map_size) {
        while (n < want && pool.head) {
            sl__stack_t *s = pool_unlink(pool.head);
            s->next = got;
            got = s;
            n++;
        }
    }
    pool_unlock();
    if (!got)
        return NULL;
    atomic_fetch_add(&rt->stacks_live, n);
    atomic_fetch_add(&rt->stacks_guarded, n);
    sl__stack_t *s = got; /* out of the pool: prev is NULL already */
    got = s->next;
    s->next = NULL;
    while (got) {
        sl__stack_t *c = got;
        got = c->next;
        c->next = w->stack_cache;
        w->stack_cache = c;
        w->stack_cached++;
    }
    stack_reuse_prepare(s);
    return s;
}

void sl__stack_pool_trim(int64_t now)
{
    int64_t cutoff =
        now == INT64_MAX ? INT64_MAX : now - atomic_load_explicit(&pool_ttl, memory_order_relaxed);
    if (atomic_load_explicit(&pool.oldest, memory_order_relaxed) >= cutoff)
        return;
    pool_lock();
    sl__stack_t *evicted = pool_evict(cutoff);
    pool_unlock();
    unmap_list(NULL, evicted);
}

void sl_memory_trim(void)
{
    sl__stack_pool_trim(INT64_MAX);
    sl__mpsc_slab_trim(INT64_MAX);
}

void sl__stack_pool_ttl_set(int64_t ns)
{
    atomic_store_explicit(&pool_ttl, ns, memory_order_relaxed);
}

long sl__stack_pool_count(void)
{
    pool_lock();
    long n = pool.n;
    pool_unlock();
    return n;
}

long sl__stack_pool_unmaps(void)
{
    return atomic_load(&pool_unmaps);
}

/* Hands n stacks of rt's to the pool, and unmaps those it does not take. */
static void stacks_give_back(sl_runtime_t *rt, sl__stack_t **v, int n)
{
    for (int i = 0; i < n; i++)
        stack_forget(rt, v[i]);
    n = pool_put(rt->page, v, n);
    unmap_batch(rt, v, n);
}

void sl__stack_retired_flush(sl_runtime_t *rt, sl__worker_t *w)
{
    sl__stack_t *v[SL__STACK_RETIRE];
    int n = 0;
    while (w->stack_retired) {
        sl__stack_t *s = w->stack_retired;
        w->stack_retired = s->next;
        v[n++] = s;
        if (n == SL__STACK_RETIRE || !w->stack_retired) {
            stacks_give_back(rt, v, n);
            n = 0;
        }
    }
    w->stack_nretired = 0;
}

void sl__stack_put(sl_runtime_t *rt, sl__worker_t *w, sl__stack_t *s)
{
    size_t usable = s->map_size - rt->page;
    if (usable != rt->opts.stack_size) {
        stack_unmap(rt, s);
        return;
    }
    if (s->guard == 0)
        canary_write(s);
    if (w->stack_cached < rt->opts.stack_cache) {
        s->next = w->stack_cache;
        w->stack_cache = s;
        w->stack_cached++;
        return;
    }
    s->next = w->stack_retired;
    w->stack_retired = s;
    if (++w->stack_nretired >= SL__STACK_RETIRE)
        sl__stack_retired_flush(rt, w);
}

void sl__stack_cache_free(sl_runtime_t *rt, sl__worker_t *w)
{
    sl__stack_t *v[SL__STACK_RETIRE];
    int n = 0;
    while (w->stack_cache) {
        sl__stack_t *s = w->stack_cache;
        w->stack_cache = s->next;
        v[n++] = s;
        if (n == SL__STACK_RETIRE || !w->stack_cache) {
            stacks_give_back(rt, v, n);
            n = 0;
        }
    }
    w->stack_cached = 0;
    sl__stack_retired_flush(rt, w);
    if (w->stack_run_left)
        unmap_range(rt, w->stack_run, w->stack_run_left);
    w->stack_run = NULL;
    w->stack_run_left = 0;
}

static void overflow_report(const sl_task_t *t, const char *how)
{
    char buf[256];
    /* The size asked for: the mapping less its guard page, or the page in its place that the
     * canary guards (a started task's stack_size shares its bytes with other fields). */
    size_t size = t->stack ? t->stack->map_size - t->rt->page : 0;
    int n = snprintf(buf, sizeof buf,
                     "sluice: stack overflow in task '%s' (id %llu, stack %zu bytes)%s\n", t->name,
                     (unsigned long long)t->id, size, how);
    if (n > 0)
        (void)!write(STDERR_FILENO, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

void sl__stack_check(sl_task_t *t)
{
    if (t->stack && t->stack->guard == 0 && !canary_ok(t->stack)) {
        overflow_report(t, ": canary overwritten");
        abort();
    }
}

#if !SLUICE_ASAN
static struct sigaction old_segv, old_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    sl__worker_t *w = sl__tls_worker;
    sl_task_t *t = w ? w->cur : NULL;
    if (t && t->stack) {
        char *a = (char *)si->si_addr;
        const sl__stack_t *s = t->stack;
        if (a >= s->map && a < s->lo + 256) {
            overflow_report(t, ": guard page hit");
            signal(SIGABRT, SIG_DFL);
            abort();
        }
    }
    /* Not ours: hand the signal to whoever had it before, or let it kill the process. */
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, uc);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
}

static void install_handler(void)
{
    /* Process-wide by nature: signal dispositions belong to the process, not to a runtime.
     * The handler only reads the faulting thread's own worker, so runtimes do not share
     * state through it. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}
#endif

#define ALTSTACK_SIZE ((size_t)64 * 1024)

void sl__stack_thread_init(sl__worker_t *w)
{
#if !SLUICE_ASAN
    pthread_once(&handler_once, install_handler);
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) {
        w->altstack = NULL; /* the thread already has one (ours from an earlier run, or the
                               application's) */
        return;
    }
    void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        w->altstack = NULL;
        return;
    }
    stack_t ss = {.ss_sp = p, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(p, ALTSTACK_SIZE);
        p = NULL;
    }
    w->altstack = p;
#else
    (void)w;
#endif
}

void sl__stack_thread_fini(sl__worker_t *w)
{
    if (w->altstack) {
        stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        munmap(w->altstack, ALTSTACK_SIZE);
        w->altstack = NULL;
    }
}
