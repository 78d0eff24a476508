/*
 * Multi-producer single-consumer channels (tokio::sync::mpsc), bounded and unbounded.
 *
 * One spinlock per channel guards everything: the buffer, the capacity counters and the three
 * waiter queues. Capacity follows Tokio's batch semaphore exactly: a bounded channel of
 * capacity N has N units, each one either free (avail), holding a buffered message (len),
 * reserved by an outstanding permit (permits), or granted in part to a queued reserve_many
 * (partial grants, kept in the waiters themselves). The four always add up to N.
 *
 * Hand-offs make the common paths cheap and keep "exactly one clause completes" true:
 * - a sender that finds the receiver parked copies its value straight into the receiver's
 *   buffer and claims its wait (the capacity unit is free again at once);
 * - a receiver that frees a unit gives it to the first queued sender (copying that sender's
 *   value into the buffer) or reserver, in FIFO order, before anyone else can take it.
 * A waiter whose claim fails has already won elsewhere (a select, a timeout, an abort) and is
 * simply skipped, so no message or unit is ever lost. See docs/design/primitives.md.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/rt.h"
#include "util/plock.h"

#define BLK_SLOTS 32 /* unbounded: messages per block */
#define SPARE_MAX 4  /* unbounded: empty blocks kept for reuse */

/* Unbounded: a backlog of more than SLAB_FROM blocks takes its further blocks from slabs of
 * SLAB_BYTES, mapped directly (as task stacks are, not through the runtime's allocator) and
 * marked for transparent huge pages, and gives each slab back once every block carved from it
 * has been received; once the backlog is down to SLAB_FROM / 2 blocks again the channel stops
 * carving (docs/design/primitives.md, "Unbounded blocks"). A producer that runs far ahead of
 * its consumer used to take one malloc'd block, and about one page fault, per 32 messages:
 * mpsc_unbounded's 40 MB backlog cost 11,000 faults per repetition (docs/perf.md). */
#define SLAB_BYTES ((size_t)2 << 20)
#define SLAB_FROM  64

/* A slab's reference word: 2 for each block carved and not yet freed, | 1 once the channel has
 * stopped carving from it. Whoever takes it to exactly 1 (retired, no block left) gives it back
 * (slab_give_back: a spare for the next deep backlog, or unmapped). */
typedef struct slab {
    _Atomic size_t ref;
    size_t used; /* bytes carved so far (under the channel's lock) */
} slab_t;

typedef struct blk {
    struct blk *next;
    slab_t *slab; /* the slab it was carved from; NULL: from the runtime's allocator */
    _Alignas(16) unsigned char data[];
} blk_t;

typedef struct chan {
    sl_lock_t lock;
    int bounded;
    int rx_closed; /* close() or the receiver dropped */
    int rx_alive;
    size_t esz;
    size_t cap; /* bounded capacity (SIZE_MAX when unbounded) */
    size_t len;
    size_t avail; /* bounded: free units */
    size_t permits;
    long senders, weak;
    sl_waitq_t sendq; /* send and reserve waiters, FIFO; w.aux = units still needed */
    sl_waitq_t recvq; /* receivers; w.aux = messages handed over */
    sl_waitq_t closedq;
    sl_runtime_t *rt;
    size_t alloc_size;
    /* bounded: a ring of cap slots */
    size_t head, tail;
    unsigned char *ring;
    /* unbounded: a list of blocks */
    blk_t *hb, *tb, *spare;
    size_t hi, ti;
    int nspare;
    size_t nblocks; /* blocks the channel holds (list and spares) */
    slab_t *slab;   /* the slab new blocks are carved from, if any */
    /* unbounded: messages at [hi, hi + rx_res) of the head block that the receiver has taken
     * out of `len` under the lock and pops without it (see recv_now). Only the receiver (one
     * task at a time) reads or writes rx_res, and hi while rx_res > 0. */
    size_t rx_res;
} chan_t;

#define CH(h) ((chan_t *)(void *)(h))

static inline void cpy(void *d, const void *s, size_t n)
{
    if (n == 8)
        memcpy(d, s, 8);
    else
        memcpy(d, s, n);
}

/* cpy for a hand-off to a parked receiver, where a request and its reply sender (16 bytes)
 * are common; apart, so that the ring's copies stay as small as they were. */
static inline void cpy_to_waiter(void *d, const void *s, size_t n)
{
    if (n == 16)
        memcpy(d, s, 16);
    else
        cpy(d, s, n);
}

/* Every write of len is an atomic store (under the lock): the receiver may read it without the
 * lock to see that the channel is empty (sl_mpsc_recv_until). Reads under the lock are plain. */
static inline void len_set(chan_t *ch, size_t v)
{
    __atomic_store_n(&ch->len, v, __ATOMIC_RELAXED);
}

static inline size_t blk_size(const chan_t *ch)
{
    return sizeof(blk_t) + BLK_SLOTS * ch->esz;
}

/* ---- Slabs (unbounded) --------------------------------------------------------------------- */

static _Atomic long slabs_mapped; /* held by channels, for the tests (sl__mpsc_slabs_mapped) */
static _Atomic long slab_maps;    /* new slabs mapped so far (sl__mpsc_slab_maps) */

/* The process's spare slabs. A slab a channel gives back (every block of it received, or the
 * channel dropped) is kept for the next deep backlog of any channel, as an allocator keeps the
 * memory freed to it: a new slab costs a huge page zeroed by the kernel, a fifth of
 * mpsc_unbounded's time when each repetition's 40 MB backlog took new ones (docs/perf.md). A
 * spare is marked MADV_FREE, so that the kernel may take its memory back when it runs short
 * (the next use then faults in a zeroed page, as for a new slab) and otherwise hands it back
 * untouched; nothing is written to it meanwhile (a write would make the huge page dirty again),
 * so the list lives here. At most SLAB_SPARES (64 MiB), the oldest unmapped first; one unused
 * for SLAB_SPARE_TTL is unmapped when a slab is next given back, or when a worker idles
 * (sl__mpsc_slab_trim); sl_memory_trim() unmaps them all. */
#define SLAB_SPARES    32
#define SLAB_SPARE_TTL ((int64_t)1000000000)

static struct {
    sl__plock_t mu;
    int n;
    struct {
        slab_t *sl;
        int64_t at;         /* when it was given back (sl_clock) */
    } v[SLAB_SPARES];       /* oldest first */
    _Atomic int64_t oldest; /* v[0].at, INT64_MAX when empty: read without mu */
} spares = {.mu = SL__PLOCK_INIT, .oldest = INT64_MAX};
static _Atomic int64_t spare_ttl = SLAB_SPARE_TTL; /* sl__mpsc_slab_ttl_set (tests) */

/* Under spares.mu: takes off the spares given back before cutoff (all of them when cutoff is
 * INT64_MAX) into out, returning how many. */
static int spares_expire(int64_t cutoff, slab_t **out)
{
    int k = 0;
    while (k < spares.n && spares.v[k].at < cutoff) {
        out[k] = spares.v[k].sl;
        k++;
    }
    memmove(&spares.v[0], &spares.v[k], (size_t)(spares.n - k) * sizeof spares.v[0]);
    spares.n -= k;
    return k;
}

static void spares_lock(void)
{
    sl__plock(&spares.mu);
}

static void spares_unlock(void)
{
    atomic_store_explicit(&spares.oldest, spares.n ? spares.v[0].at : INT64_MAX,
                          memory_order_relaxed);
    sl__punlock(&spares.mu);
}

static void slabs_unmap(slab_t **v, int n)
{
    for (int i = 0; i < n; i++)
        munmap(v[i], SLAB_BYTES);
}

/* A channel is done with sl: it becomes a spare, unless it is the oldest of one too many. */
static void slab_give_back(slab_t *sl)
{
    atomic_fetch_sub_explicit(&slabs_mapped, 1, memory_order_relaxed);
#ifdef MADV_FREE
    (void)madvise(sl, SLAB_BYTES, MADV_FREE);
#endif
    int64_t now = sl_clock();
    slab_t *dead[SLAB_SPARES + 1];
    spares_lock();
    int k = spares_expire(now - atomic_load_explicit(&spare_ttl, memory_order_relaxed), dead);
    if (spares.n == SLAB_SPARES) { /* the oldest makes room */
        dead[k++] = spares.v[0].sl;
        memmove(&spares.v[0], &spares.v[1], (SLAB_SPARES - 1) * sizeof spares.v[0]);
        spares.n--;
    }
    spares.v[spares.n].sl = sl;
    spares.v[spares.n].at = now;
    spares.n++;
    spares_unlock();
    slabs_unmap(dead, k);
}

void sl__mpsc_slab_trim(int64_t now)
{
    int64_t cutoff =
        now == INT64_MAX ? INT64_MAX : now - atomic_load_explicit(&spare_ttl, memory_order_relaxed);
    if (atomic_load_explicit(&spares.oldest, memory_order_relaxed) >= cutoff)
        return;
    slab_t *dead[SLAB_SPARES];
    spares_lock();
    int k = spares_expire(cutoff, dead);
    spares_unlock();
    slabs_unmap(dead, k);
}

/* The newest spare, or NULL. */
static slab_t *slab_spare(void)
{
    if (atomic_load_explicit(&spares.oldest, memory_order_relaxed) == INT64_MAX)
        return NULL; /* none, most likely: looked at again under the lock when there are */
    slab_t *sl = NULL;
    spares_lock();
    if (spares.n)
        sl = spares.v[--spares.n].sl;
    spares_unlock();
    return sl;
}

/* A slab, a spare when there is one, else new: aligned to its size so that the kernel can back
 * it with one huge page; NULL when it cannot be mapped (the caller takes its block from the
 * allocator instead). No lock held. */
static slab_t *slab_map(void)
{
    slab_t *sp = slab_spare();
    if (sp) {
        atomic_fetch_add_explicit(&slabs_mapped, 1, memory_order_relaxed);
        atomic_init(&sp->ref, 0);
        sp->used = (sizeof(slab_t) + 15) & ~(size_t)15;
        return sp;
    }
    size_t span = 2 * SLAB_BYTES;
    char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)m + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1));
    if (a > m)
        munmap(m, (size_t)(a - m));
    if (a + SLAB_BYTES < m + span)
        munmap(a + SLAB_BYTES, (size_t)(m + span - (a + SLAB_BYTES)));
#ifdef MADV_HUGEPAGE
    (void)madvise(a, SLAB_BYTES, MADV_HUGEPAGE); /* a hint: without THP, 4 KiB pages */
#endif
    slab_t *sl = (slab_t *)(void *)a;
    atomic_fetch_add_explicit(&slabs_mapped, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&slab_maps, 1, memory_order_relaxed);
    atomic_init(&sl->ref, 0);
    sl->used = (sizeof(slab_t) + 15) & ~(size_t)15;
    return sl;
}

/* Under the lock: the next block of the current slab, or NULL when there is none or it is
 * full. */
static blk_t *slab_carve(chan_t *ch)
{
    slab_t *sl = ch->slab;
    size_t bsz = (blk_size(ch) + 15) & ~(size_t)15;
    if (!sl || sl->used + bsz > SLAB_BYTES)
        return NULL;
    blk_t *b = (blk_t *)(void *)((char *)sl + sl->used);
    sl->used += bsz;
    atomic_fetch_add_explicit(&sl->ref, 2, memory_order_relaxed);
    b->slab = sl;
    return b;
}

/* Stops carving from sl: gives it back if no block of it is left. */
static void slab_retire(slab_t *sl)
{
    if (atomic_fetch_or_explicit(&sl->ref, 1, memory_order_acq_rel) == 0)
        slab_give_back(sl);
}

/* Under the lock: the backlog is shallow again, so no more carving from the current slab. Its
 * last block, when received, gives it back (now, under the lock, only if none is left). */
static void slab_stop(chan_t *ch)
{
    slab_t *sl = ch->slab;
    ch->slab = NULL;
    slab_retire(sl);
}

/* A block goes back where it came from. No lock needed. */
static void blk_free(chan_t *ch, blk_t *b)
{
    slab_t *sl = b->slab;
    if (!sl)
        sl__free(ch->rt, b, blk_size(ch));
    else if (atomic_fetch_sub_explicit(&sl->ref, 2, memory_order_acq_rel) == 3)
        slab_give_back(sl);
}

/* Slabs for this channel's blocks at all: a slab must hold many of them. */
static inline int slab_fits(const chan_t *ch)
{
    return blk_size(ch) <= SLAB_BYTES / 64;
}

/* ---- Storage (under the lock) ------------------------------------------------------------ */

/* Appends a message. Bounded: the capacity accounting guarantees a free slot. Unbounded: the
 * caller made sure the tail block has room or a spare block exists (lock_room). */
static inline void push_locked(chan_t *ch, const void *src)
{
    if (ch->bounded) {
        cpy(ch->ring + ch->tail * ch->esz, src, ch->esz);
        if (++ch->tail == ch->cap)
            ch->tail = 0;
    } else {
        if (ch->ti == BLK_SLOTS) {
            blk_t *b = ch->spare;
            ch->spare = b->next;
            ch->nspare--;
            b->next = NULL;
            ch->tb->next = b;
            ch->tb = b;
            ch->ti = 0;
        }
        cpy(ch->tb->data + ch->ti * ch->esz, src, ch->esz);
        ch->ti++;
    }
    len_set(ch, ch->len + 1);
}

/* Under the lock: the channel has just drained and its one block is a slab's. With the slab
 * retired (the backlog that needed it is gone) and a spare at hand, the spare becomes the block
 * and the slab's goes to *dead, so that an idle channel keeps no slab mapped. A spare is a
 * slab's block only between a sender's lock_room staging it and that sender's append, within
 * one hold of the lock. */
static void drained_on_slab(chan_t *ch, blk_t **dead)
{
    blk_t *b = ch->hb, *s = ch->spare;
    if (b->slab == ch->slab || !s || s->slab)
        return;
    ch->spare = s->next;
    ch->nspare--;
    s->next = NULL;
    ch->hb = ch->tb = s;
    b->next = *dead;
    *dead = b;
    ch->nblocks--;
}

/* Removes the oldest message into dst (NULL: discard). Blocks beyond the spare limit go to
 * *dead, to be freed after unlocking. */
static inline void pop_locked(chan_t *ch, void *dst, blk_t **dead)
{
    len_set(ch, ch->len - 1);
    if (ch->bounded) {
        if (dst)
            cpy(dst, ch->ring + ch->head * ch->esz, ch->esz);
        if (++ch->head == ch->cap)
            ch->head = 0;
        return;
    }
    if (dst)
        cpy(dst, ch->hb->data + ch->hi * ch->esz, ch->esz);
    ch->hi++;
    if (ch->len == 0) {
        ch->hi = ch->ti = 0; /* head and tail share a block: start it over */
        if (SL__UNLIKELY(ch->hb->slab != NULL))
            drained_on_slab(ch, dead);
    } else if (ch->hi == BLK_SLOTS) {
        blk_t *b = ch->hb;
        ch->hb = b->next;
        ch->hi = 0;
        /* Only the allocator's blocks are kept as spares: a slab's would hold the whole slab
         * mapped for as long as the channel lives. */
        if (ch->nspare < SPARE_MAX && !b->slab) {
            b->next = ch->spare;
            ch->spare = b;
            ch->nspare++;
        } else {
            b->next = *dead;
            *dead = b;
            if (--ch->nblocks <= SLAB_FROM / 2 && SL__UNLIKELY(ch->slab != NULL))
                slab_stop(ch);
        }
    }
}

static void free_blocks(chan_t *ch, blk_t *b)
{
    while (b) {
        blk_t *n = b->next;
        blk_free(ch, b);
        b = n;
    }
}

static inline int need_block(const chan_t *ch, int for_permit)
{
    return !ch->bounded && ch->ti == BLK_SLOTS && !ch->spare &&
           (for_permit ? ch->rx_alive : !ch->rx_closed);
}

static inline void spare_push(chan_t *ch, blk_t *b)
{
    b->next = ch->spare;
    ch->spare = b;
    ch->nspare++;
    ch->nblocks++;
}

/* lock_room's slow path: called and returns with the lock held, 0 or SL_ENOMEM (unlocked).
 * A block comes from the current slab under the lock; a new slab is mapped, and an allocator
 * block allocated, with the lock released. */
static int lock_room_grow(chan_t *ch, int for_permit)
{
    while (need_block(ch, for_permit)) {
        if (ch->nblocks >= SLAB_FROM && slab_fits(ch)) {
            blk_t *b = slab_carve(ch);
            if (b) {
                spare_push(ch, b);
                continue;
            }
            slab_t *full = ch->slab;
            ch->slab = NULL;
            sl__unlock(&ch->lock);
            if (full)
                slab_retire(full);
            slab_t *sl = slab_map();
            sl__lock(&ch->lock);
            if (sl) {
                if (!ch->slab) {
                    ch->slab = sl;
                } else { /* another sender mapped one meanwhile: carve from that */
                    sl__unlock(&ch->lock);
                    slab_retire(sl);
                    sl__lock(&ch->lock);
                }
                continue;
            }
            /* No slab: an allocator block, as for a shallow backlog. */
        }
        sl__unlock(&ch->lock);
        blk_t *b = sl__alloc(ch->rt, blk_size(ch));
        if (!b)
            return SL_ENOMEM;
        b->slab = NULL;
        sl__lock(&ch->lock);
        spare_push(ch, b);
    }
    return 0;
}

/* Locks the channel; for an unbounded one, first makes sure a message can be appended without
 * allocating under the lock. Returns 0 (locked) or SL_ENOMEM (not locked). */
static inline int lock_room(chan_t *ch, int for_permit)
{
    sl__lock(&ch->lock);
    if (SL__UNLIKELY(need_block(ch, for_permit)))
        return lock_room_grow(ch, for_permit);
    return 0;
}

/* ---- Hand-offs (under the lock) ------------------------------------------------------------ */

static const struct sl_clause_ops send_ops, reserve_ops, recv_ops, recvm_ops, closed_ops;

static inline void wake_push(sl_waiter_t **wake, sl_waiter_t *w, int res)
{
    w->res = res;
    w->wake_next = *wake;
    *wake = w;
}

/* Hands a message to the first parked receiver whose wait this call claims: copied into its
 * buffer, its result set. Returns that receiver (the caller wakes it after unlocking), or NULL
 * when none could take it. */
static inline sl_waiter_t *hand_over_locked(chan_t *ch, const void *src)
{
    sl_waiter_t *r;
    if (!ch->recvq.head || !(r = sl__waitq_claim_first(&ch->recvq)))
        return NULL;
    cpy_to_waiter(r->clause->buf, src, ch->esz);
    r->aux = 1;
    r->res = 0;
    return r;
}

/* Gives a message (whose capacity unit the caller has accounted) to the first parked receiver,
 * or appends it to the buffer. Returns 1 if a receiver took it: its unit is free again. */
static inline int deliver_locked(chan_t *ch, const void *src, sl_waiter_t **wake)
{
    sl_waiter_t *r = hand_over_locked(ch, src);
    if (r) {
        r->wake_next = *wake;
        *wake = r;
        return 1;
    }
    push_locked(ch, src);
    return 0;
}

static inline void permit_set(sl_mpsc_permit_t *p, chan_t *ch, size_t n)
{
    p->tx = (sl_mpsc_tx_t *)(void *)ch;
    p->n = n;
}

/* Hands free units to queued senders and reservers, first come first served. The first waiter
 * that needs more than what is free absorbs it all (a partial grant): later waiters and try_*
 * calls cannot overtake it (MPSC-B08). */
static void grant_slow(chan_t *ch, sl_waiter_t **wake)
{
    sl_task_t *self = sl__self();
    sl_waiter_t *w = ch->sendq.head;
    while (w && ch->avail) {
        sl_waiter_t *next = w->next;
        if (w->task == self) { /* our own clause: the running task is not waiting */
            w = next;
            continue;
        }
        size_t need = w->aux;
        if (need > ch->avail) {
            w->aux -= ch->avail;
            ch->avail = 0;
            return;
        }
        sl__waitq_remove(&ch->sendq, w);
        if (!sl__waiter_claim(w)) { /* won elsewhere; its disarm returns any partial grant */
            w = next;
            continue;
        }
        ch->avail -= need;
        w->aux = 0;
        sl_clause_t *c = w->clause;
        if (c->ops == &send_ops) {
            if (deliver_locked(ch, c->buf, wake))
                ch->avail++;
        } else {
            ch->permits += c->arg;
            permit_set(c->buf, ch, c->arg);
        }
        wake_push(wake, w, 0);
        w = next;
    }
}

static inline void grant_locked(chan_t *ch, sl_waiter_t **wake)
{
    if (SL__UNLIKELY(ch->sendq.head && ch->avail))
        grant_slow(ch, wake);
}

/* The receiver has seen the end: closed (or no senders), nothing buffered, nothing reserved. */
static inline int ended(const chan_t *ch)
{
    return (ch->rx_closed || ch->senders == 0) && ch->len == 0 && ch->permits == 0 &&
           (!ch->bounded || ch->avail == ch->cap);
}

/* Under the lock, by the receiver: gives its reserved messages back to `len`. They are the
 * next ones in order, at hi, so nothing moves. Every receive path but recv_now's starts here,
 * so that the general code sees every buffered message in `len`. */
static inline void unreserve_locked(chan_t *ch)
{
    len_set(ch, ch->len + ch->rx_res);
    ch->rx_res = 0;
}

static inline void check_end_locked(chan_t *ch, sl_waiter_t **wake)
{
    if (SL__UNLIKELY(ch->recvq.head) && ended(ch))
        sl__waitq_claim_all(&ch->recvq, SL_ECLOSED, wake);
}

static inline int unused(const chan_t *ch)
{
    return ch->senders == 0 && ch->weak == 0 && !ch->rx_alive && ch->permits == 0;
}

static void chan_free(chan_t *ch)
{
    if (!ch->bounded) {
        free_blocks(ch, ch->hb);
        free_blocks(ch, ch->spare);
        if (ch->slab)
            slab_retire(ch->slab);
    }
    sl__free(ch->rt, ch, ch->alloc_size);
}

/* Unlocks, wakes what was collected, frees dead blocks, and the channel if nobody uses it. */
static void unlock_finish(chan_t *ch, sl_waiter_t *wake, blk_t *dead)
{
    int gone = unused(ch);
    sl__unlock(&ch->lock);
    if (wake)
        sl__waiters_wake(wake);
    if (dead)
        free_blocks(ch, dead);
    if (gone)
        chan_free(ch);
}

/* ---- Creation ------------------------------------------------------------------------------ */

static chan_t *chan_alloc(size_t esz, size_t cap, int bounded)
{
    sl_runtime_t *rt = sl_runtime_current();
    size_t size = sizeof(chan_t);
    if (bounded) {
        if (esz && cap > (SIZE_MAX - size - 64) / esz)
            return NULL;
        size += cap * esz;
    }
    chan_t *ch = sl__calloc(rt, size);
    if (!ch)
        return NULL;
    ch->rt = rt;
    ch->alloc_size = size;
    ch->esz = esz;
    ch->bounded = bounded;
    ch->cap = bounded ? cap : SIZE_MAX;
    ch->avail = bounded ? cap : 0;
    ch->senders = 1;
    ch->rx_alive = 1;
    sl__lock_init(&ch->lock);
    if (bounded) {
        ch->ring = (unsigned char *)(ch + 1);
    } else {
        if (esz > (SIZE_MAX / 2) / BLK_SLOTS) {
            sl__free(rt, ch, size);
            return NULL;
        }
        ch->hb = ch->tb = sl__alloc(rt, blk_size(ch));
        if (!ch->hb) {
            sl__free(rt, ch, size);
            return NULL;
        }
        ch->hb->next = NULL;
        ch->hb->slab = NULL;
        ch->nblocks = 1;
    }
    return ch;
}

int sl_mpsc_new(size_t elem_size, size_t capacity, sl_mpsc_tx_t **tx, sl_mpsc_rx_t **rx)
{
    SL__ASSERT(tx && rx, "sl_mpsc_new: NULL out-parameter");
    if (capacity == 0 || capacity > SL_MPSC_MAX_CAPACITY)
        return SL_EINVAL;
    chan_t *ch = chan_alloc(elem_size, capacity, 1);
    if (!ch)
        return SL_ENOMEM;
    *tx = (sl_mpsc_tx_t *)(void *)ch;
    *rx = (sl_mpsc_rx_t *)(void *)ch;
    return 0;
}

int sl_mpsc_unbounded_new(size_t elem_size, sl_mpsc_tx_t **tx, sl_mpsc_rx_t **rx)
{
    SL__ASSERT(tx && rx, "sl_mpsc_unbounded_new: NULL out-parameter");
    chan_t *ch = chan_alloc(elem_size, 0, 0);
    if (!ch)
        return SL_ENOMEM;
    *tx = (sl_mpsc_tx_t *)(void *)ch;
    *rx = (sl_mpsc_rx_t *)(void *)ch;
    return 0;
}

/* ---- Send ---------------------------------------------------------------------------------- */

static inline int send_ready(const chan_t *ch)
{
    if (ch->rx_closed)
        return SL_ECLOSED;
    if (ch->bounded && ch->avail == 0)
        return SL_EAGAIN;
    return 0;
}

static inline void send_do(chan_t *ch, const void *val, sl_waiter_t **wake)
{
    if (!deliver_locked(ch, val, wake) && ch->bounded)
        ch->avail--;
}

/* send_now's general case, called with the lock held (and room for an unbounded channel):
 * any channel, a parked receiver to hand the value to. Unlocks. */
static int send_locked(chan_t *ch, const void *val)
{
    sl_waiter_t *wake = NULL;
    int r = send_ready(ch);
    if (SL__LIKELY(r == 0))
        send_do(ch, val, &wake);
    sl__unlock(&ch->lock);
    if (SL__UNLIKELY(wake != NULL))
        sl__waiters_wake(wake);
    return r;
}

/* The ring's append: room, no parked receiver, the lock held. */
/* The ring's append of an esz-byte message (ch->esz, or the constant 8 where the written-out
 * send knows it). */
static inline __attribute__((always_inline)) void ring_append_n(chan_t *ch, const void *val,
                                                                size_t esz)
{
    cpy(ch->ring + ch->tail * esz, val, esz);
    if (++ch->tail == ch->cap)
        ch->tail = 0;
    len_set(ch, ch->len + 1);
    ch->avail--;
}

static inline __attribute__((always_inline)) void ring_append(chan_t *ch, const void *val)
{
    ring_append_n(ch, val, ch->esz);
}

/* An unbounded channel's append into its tail block, which has room (ti < BLK_SLOTS). */
static inline __attribute__((always_inline)) void tail_append_n(chan_t *ch, const void *val,
                                                                size_t esz)
{
    cpy(ch->tb->data + ch->ti * esz, val, esz);
    ch->ti++;
    len_set(ch, ch->len + 1);
}

/* A bounded send with room, the lock held: deliver_locked for one message, waking the receiver
 * it may hand it to directly rather than through a wake list (a receiver that takes it leaves
 * its unit free), else appended. Unlocks. */
static inline __attribute__((always_inline)) int send_room(chan_t *ch, const void *val)
{
    sl_waiter_t *r = hand_over_locked(ch, val);
    if (r) {
        sl__unlock(&ch->lock);
        sl__task_wake_handoff(r->task);
        return 0;
    }
    ring_append(ch, val);
    sl__unlock(&ch->lock);
    return 0;
}

/* send_now on a bounded channel whose lock the caller has taken. Unlocks. */
static inline __attribute__((always_inline)) int send_now_held(chan_t *ch, const void *val)
{
    if (SL__LIKELY(!ch->rx_closed && ch->avail))
        return send_room(ch, val);
    return send_locked(ch, val);
}

/* A send that does not wait: 0, SL_EAGAIN (full), SL_ECLOSED or SL_ENOMEM. What every send
 * form runs first; the blocking forms build a clause only when this finds the channel full.
 * The common case, room and no parked receiver, is a ring append (bounded) or a write into
 * the tail block (unbounded). */
static inline __attribute__((always_inline)) int send_now(chan_t *ch, const void *val)
{
    if (SL__LIKELY(ch->bounded)) { /* fixed at creation: read without the lock */
        sl__lock(&ch->lock);
        return send_now_held(ch, val);
    }
    int r = lock_room(ch, 0);
    if (r)
        return r;
    if (SL__LIKELY(!ch->rx_closed && ch->ti < BLK_SLOTS && !ch->recvq.head)) {
        tail_append_n(ch, val, ch->esz);
        sl__unlock(&ch->lock);
        return 0;
    }
    return send_locked(ch, val);
}

static int send_poll(sl_clause_t *c)
{
    return send_now(c->obj, c->buf);
}

static int send_arm(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    sl_waiter_t *wake = NULL;
    c->w.aux = c->arg;
    int r = lock_room(ch, 0);
    if (r) {
        if (!sl__claim_self(c))
            return SL__LOST;
        c->w.res = r;
        return SL__DONE;
    }
    int state = SL__ARMED;
    r = send_ready(ch);
    if (r != SL_EAGAIN) {
        if (sl__claim_self(c)) {
            if (r == 0)
                send_do(ch, c->buf, &wake);
            c->w.res = r;
            state = SL__DONE;
        } else {
            state = SL__LOST;
        }
    } else {
        sl__waitq_push(&ch->sendq, &c->w);
    }
    sl__unlock(&ch->lock);
    if (wake)
        sl__waiters_wake(wake);
    return state;
}

/* Shared by send and reserve clauses: unlink, and give back a partial grant. */
static void send_disarm(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    sl_waiter_t *wake = NULL;
    sl__lock(&ch->lock);
    sl__waitq_remove(&ch->sendq, &c->w);
    size_t got = c->arg - c->w.aux;
    if (got) {
        c->w.aux = c->arg;
        ch->avail += got;
        grant_locked(ch, &wake);
        check_end_locked(ch, &wake); /* MPSC-B22 */
    }
    sl__unlock(&ch->lock);
    if (wake)
        sl__waiters_wake(wake);
}

static const struct sl_clause_ops send_ops = {send_poll, send_arm, send_disarm, NULL};

void sl_clause_mpsc_send(sl_clause_t *c, sl_mpsc_tx_t *tx, const void *val)
{
    SL__ASSERT(tx && (val || CH(tx)->esz == 0), "sl_clause_mpsc_send: NULL argument");
    sl__clause_init(c, &send_ops, CH(tx), (void *)(uintptr_t)val, 1, 0);
}

int sl_mpsc_try_send(sl_mpsc_tx_t *tx, const void *val)
{
    SL__ASSERT(tx && (val || CH(tx)->esz == 0), "sl_mpsc_try_send: NULL argument");
    int r = send_now(CH(tx), val);
    return r == SL_EAGAIN ? SL_EFULL : r;
}

/* A bounded send's try after sl__wait_enter, with the lock held, then its wait. */
static __attribute__((noinline)) int send_held(chan_t *ch, const void *val, int64_t deadline)
{
    int r = send_now_held(ch, val);
    if (SL__LIKELY(r != SL_EAGAIN))
        return r;
    return sl__wait1v_handoff(&send_ops, ch, (void *)(uintptr_t)val, 1, 0, deadline);
}

/* send_room out of line, for a receiver parked: handed to it (or, if that receiver's wait
 * ended meanwhile, appended). Unlocks. */
static __attribute__((noinline)) int send_room_apart(chan_t *ch, const void *val)
{
    return send_room(ch, val);
}

static __attribute__((noinline)) int send_handoff(chan_t *ch, const void *val)
{
    /* hand_over_locked written out for a message of 8 or 16 bytes (a value; a request and its
     * reply sender) and a first receiver that can be claimed: no call, so no frame. Anything
     * else (another size, a receiver of this task, a wait already won elsewhere) goes through
     * send_room, which looks again from the head. */
    sl_waiter_t *r;
    size_t esz = ch->esz;
    if (SL__LIKELY((esz == 16 || esz == 8) &&
                   (r = sl__waitq_claim_head(&ch->recvq, ch->recvq.head)))) {
        if (esz == 16)
            memcpy(r->clause->buf, val, 16);
        else
            memcpy(r->clause->buf, val, 8);
        r->aux = 1;
        r->res = 0;
        sl__unlock(&ch->lock);
        sl__task_wake_handoff(r->task);
        return 0;
    }
    return send_room_apart(ch, val);
}

/* A bounded send after its entry checks, from taking the lock on. */
static __attribute__((noinline)) int send_entered(chan_t *ch, const void *val, int64_t deadline)
{
    sl__lock(&ch->lock);
    return send_held(ch, val, deadline);
}

/* A bounded send from its entry checks on. */
static __attribute__((noinline)) int send_checked(chan_t *ch, const void *val, int64_t deadline)
{
    int r = sl__wait_enter(sl__self_checked("a blocking sluice call"));
    if (r)
        return r;
    return send_entered(ch, val, deadline);
}

/* sl__wait1 on a send clause, with the clause built only if the send has to wait: the same
 * checks in the same order (cancellation and timeout scopes, budget, try), so a cancelled task
 * gets SL_ECANCELED even when there is room, and a full channel still yields every 128 sends.
 * The common send (a bounded channel with room and no parked receiver, the lock biased to this
 * thread, nothing for the entry checks to do) is written out here without a frame or a call;
 * each of its steps hands what is left to the general path at the point it stopped. */
/* sl_mpsc_send_until's appends for messages of other sizes than 8 bytes, and its unbounded
 * send in general, apart: a memcpy or allocation call in the written-out function would make
 * it keep a frame on every send. */
static __attribute__((noinline)) int ring_append_unlock(chan_t *ch, const void *val)
{
    ring_append(ch, val);
    sl__unlock(&ch->lock);
    return 0;
}

static __attribute__((noinline)) int send_unbounded(chan_t *ch, const void *val)
{
    return send_now(ch, val); /* never waits: usable from any thread, as in Tokio */
}

int sl_mpsc_send_until(sl_mpsc_tx_t *tx, const void *val, int64_t deadline)
{
    chan_t *ch = CH(tx);
    SL__ASSERT(tx && (val || ch->esz == 0), "sl_mpsc_send: NULL argument");
    if (!ch->bounded) {
        /* send_now's common case for an 8-byte message: room in the tail block, nobody parked
         * (a block to add, a hand-off, the end: send_unbounded, which locks again). */
        if (SL__LIKELY(ch->esz == 8 && sl__lock_fast(&ch->lock))) {
            if (SL__LIKELY(!ch->rx_closed && ch->ti < BLK_SLOTS && !ch->recvq.head)) {
                tail_append_n(ch, val, 8);
                sl__unlock(&ch->lock);
                return 0;
            }
            sl__unlock(&ch->lock);
        }
        return send_unbounded(ch, val);
    }
    if (SL__UNLIKELY(!sl__wait_enter_fast()))
        return send_checked(ch, val, deadline);
    if (SL__UNLIKELY(!sl__lock_fast(&ch->lock)))
        return send_entered(ch, val, deadline);
    if (SL__LIKELY(!ch->rx_closed && ch->avail)) {
        if (ch->recvq.head)
            return send_handoff(ch, val);
        if (SL__UNLIKELY(ch->esz != 8))
            return ring_append_unlock(ch, val);
        ring_append_n(ch, val, 8);
        sl__unlock(&ch->lock);
        return 0;
    }
    return send_held(ch, val, deadline);
}

int sl_mpsc_send(sl_mpsc_tx_t *tx, const void *val)
{
    return sl_mpsc_send_until(tx, val, SL_FOREVER);
}

/* ---- Reserve and permits ------------------------------------------------------------------ */

static inline int reserve_ready(const chan_t *ch, size_t n)
{
    if (n > (ch->bounded ? ch->cap : SL_MPSC_MAX_CAPACITY))
        return SL_EINVAL;
    if (ch->rx_closed)
        return SL_ECLOSED;
    if (ch->bounded && ch->avail < n)
        return SL_EAGAIN;
    return 0;
}

static inline void reserve_do(chan_t *ch, sl_mpsc_permit_t *p, size_t n)
{
    if (ch->bounded)
        ch->avail -= n;
    ch->permits += n;
    permit_set(p, ch, n);
}

static int reserve_poll(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    sl__lock(&ch->lock);
    int r = reserve_ready(ch, c->arg);
    if (r == 0)
        reserve_do(ch, c->buf, c->arg);
    sl__unlock(&ch->lock);
    return r;
}

static int reserve_arm(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    c->w.aux = c->arg;
    int state = SL__ARMED;
    sl__lock(&ch->lock);
    int r = reserve_ready(ch, c->arg);
    if (r != SL_EAGAIN) {
        if (sl__claim_self(c)) {
            if (r == 0)
                reserve_do(ch, c->buf, c->arg);
            c->w.res = r;
            state = SL__DONE;
        } else {
            state = SL__LOST;
        }
    } else {
        sl__waitq_push(&ch->sendq, &c->w);
        if (ch->avail) { /* queue behind nobody: take what is free now, as Tokio does */
            c->w.aux -= ch->avail;
            ch->avail = 0;
        }
    }
    sl__unlock(&ch->lock);
    return state;
}

static const struct sl_clause_ops reserve_ops = {reserve_poll, reserve_arm, send_disarm, NULL};

void sl_clause_mpsc_reserve_many(sl_clause_t *c, sl_mpsc_tx_t *tx, size_t n, sl_mpsc_permit_t *p)
{
    SL__ASSERT(tx && p, "sl_clause_mpsc_reserve: NULL argument");
    sl__clause_init(c, &reserve_ops, CH(tx), p, n, 0);
}

void sl_clause_mpsc_reserve(sl_clause_t *c, sl_mpsc_tx_t *tx, sl_mpsc_permit_t *p)
{
    sl_clause_mpsc_reserve_many(c, tx, 1, p);
}

int sl_mpsc_try_reserve_many(sl_mpsc_tx_t *tx, size_t n, sl_mpsc_permit_t *p)
{
    sl_clause_t c;
    sl_clause_mpsc_reserve_many(&c, tx, n, p);
    int r = reserve_poll(&c);
    return r == SL_EAGAIN ? SL_EFULL : r;
}

int sl_mpsc_reserve_many_until(sl_mpsc_tx_t *tx, size_t n, sl_mpsc_permit_t *p, int64_t deadline)
{
    sl_clause_t c;
    sl_clause_mpsc_reserve_many(&c, tx, n, p);
    if (!CH(tx)->bounded)
        return reserve_poll(&c);
    return sl__wait1(&c, deadline);
}

int sl_mpsc_reserve_many(sl_mpsc_tx_t *tx, size_t n, sl_mpsc_permit_t *p)
{
    return sl_mpsc_reserve_many_until(tx, n, p, SL_FOREVER);
}

int sl_mpsc_try_reserve(sl_mpsc_tx_t *tx, sl_mpsc_permit_t *p)
{
    return sl_mpsc_try_reserve_many(tx, 1, p);
}

int sl_mpsc_reserve_until(sl_mpsc_tx_t *tx, sl_mpsc_permit_t *p, int64_t deadline)
{
    return sl_mpsc_reserve_many_until(tx, 1, p, deadline);
}

int sl_mpsc_reserve(sl_mpsc_tx_t *tx, sl_mpsc_permit_t *p)
{
    return sl_mpsc_reserve_many_until(tx, 1, p, SL_FOREVER);
}

int sl_mpsc_permit_send(sl_mpsc_permit_t *p, const void *val)
{
    if (p->n == 0)
        return SL_EEMPTY;
    chan_t *ch = CH(p->tx);
    SL__ASSERT(val || ch->esz == 0, "sl_mpsc_permit_send: NULL value");
    sl_waiter_t *wake = NULL;
    int r = lock_room(ch, 1);
    if (r)
        return r;
    ch->permits--;
    if (!ch->rx_alive) {
        if (ch->bounded)
            ch->avail++; /* nobody will ever read it (MPSC-B24) */
    } else if (deliver_locked(ch, val, &wake) && ch->bounded) {
        ch->avail++;
        grant_locked(ch, &wake);
    }
    check_end_locked(ch, &wake);
    if (--p->n == 0)
        p->tx = NULL;
    unlock_finish(ch, wake, NULL);
    return 0;
}

void sl_mpsc_permit_drop(sl_mpsc_permit_t *p)
{
    if (!p || p->n == 0)
        return;
    chan_t *ch = CH(p->tx);
    sl_waiter_t *wake = NULL;
    sl__lock(&ch->lock);
    ch->permits -= p->n;
    if (ch->bounded) {
        ch->avail += p->n;
        grant_locked(ch, &wake);
    }
    check_end_locked(ch, &wake);
    p->n = 0;
    p->tx = NULL;
    unlock_finish(ch, wake, NULL);
}

size_t sl_mpsc_permit_count(const sl_mpsc_permit_t *p)
{
    return p->n;
}

/* ---- Receive ------------------------------------------------------------------------------- */

static inline int recv_ready(const chan_t *ch)
{
    if (ch->len)
        return 0;
    return ended(ch) ? SL_ECLOSED : SL_EAGAIN;
}

static size_t recv_do(chan_t *ch, unsigned char *buf, size_t max, sl_waiter_t **wake, blk_t **dead)
{
    size_t k = max < ch->len ? max : ch->len;
    for (size_t i = 0; i < k; i++)
        pop_locked(ch, buf + i * ch->esz, dead);
    if (ch->bounded) {
        ch->avail += k;
        grant_locked(ch, wake);
    }
    check_end_locked(ch, wake);
    return k;
}

/* recv_now's general case, called with the lock held: any channel, queued senders to grant
 * the freed unit to, other receivers to tell about the end. Unlocks. */
static int recv_locked(chan_t *ch, void *out)
{
    sl_waiter_t *wake = NULL;
    blk_t *dead = NULL;
    if (SL__UNLIKELY(ch->len == 0)) {
        int r = ended(ch) ? SL_ECLOSED : SL_EAGAIN;
        sl__unlock(&ch->lock);
        return r;
    }
    pop_locked(ch, out, &dead);
    if (ch->bounded) {
        ch->avail++;
        grant_locked(ch, &wake);
    }
    check_end_locked(ch, &wake);
    sl__unlock(&ch->lock);
    if (SL__UNLIKELY(wake != NULL))
        sl__waiters_wake(wake);
    if (SL__UNLIKELY(dead != NULL))
        free_blocks(ch, dead);
    return 0;
}

/* Unbounded, and the receiver reserved the next messages of the head block when it last held
 * the lock (rx_res > 0): a pop without the lock. Senders only append at ti, past the reserved
 * run, and only the receiver retires blocks; the lock it took then ordered the messages'
 * writes before these reads. */
static inline __attribute__((always_inline)) void reserved_pop_n(chan_t *ch, void *out, size_t esz)
{
    if (out)
        cpy(out, ch->hb->data + ch->hi * esz, esz);
    ch->hi++;
    ch->rx_res--;
}

static inline __attribute__((always_inline)) void reserved_pop(chan_t *ch, void *out)
{
    reserved_pop_n(ch, out, ch->esz);
}

/* The ring's pop: a message there, nobody parked, the lock held (esz as ring_append_n). */
static inline __attribute__((always_inline)) void ring_pop_n(chan_t *ch, void *out, size_t esz)
{
    if (out)
        cpy(out, ch->ring + ch->head * esz, esz);
    if (++ch->head == ch->cap)
        ch->head = 0;
    ch->avail++;
    len_set(ch, ch->len - 1);
}

static inline __attribute__((always_inline)) void ring_pop(chan_t *ch, void *out)
{
    ring_pop_n(ch, out, ch->esz);
}

/* recv_now's drained channel whose one block is a slab's: drained_on_slab, then unlocks and
 * frees what it gave up. Returns 0 (the message was received). */
static int __attribute__((noinline)) drained_unlock(chan_t *ch)
{
    blk_t *dead = NULL;
    drained_on_slab(ch, &dead);
    sl__unlock(&ch->lock);
    free_blocks(ch, dead);
    return 0;
}

/* One message without waiting: 0, SL_EAGAIN (empty) or SL_ECLOSED. What every single-message
 * receive runs first. The common case, a message buffered and nobody queued, is a ring pop
 * that frees one unit (bounded) or a block slot read that does not retire the block
 * (unbounded). */
static inline __attribute__((always_inline)) int recv_now(chan_t *ch, void *out)
{
    if (ch->rx_res) {
        reserved_pop(ch, out);
        return 0;
    }
    sl__lock(&ch->lock);
    if (SL__LIKELY(ch->len && !ch->sendq.head && !ch->recvq.head)) {
        if (ch->bounded) {
            ring_pop(ch, out);
            sl__unlock(&ch->lock);
            return 0;
        }
        if (ch->hi + 1 < BLK_SLOTS || ch->len == 1) { /* no block to retire (pop_locked) */
            if (out)
                cpy(out, ch->hb->data + ch->hi * ch->esz, ch->esz);
            len_set(ch, ch->len - 1);
            if (ch->len == 0) {
                ch->hi = ch->ti = 0; /* drained: start the block over */
                if (SL__UNLIKELY(ch->hb->slab != NULL))
                    return drained_unlock(ch);
            } else {
                /* Reserve the rest of the head block's run (never its last slot, whose pop
                 * retires the block under the lock): a receiver draining a backlog takes the
                 * lock once per run instead of once per message. In a block of a retired slab
                 * the channel's last message stays out of the run: it must be taken under the
                 * lock, for the drained channel to give that block up (drained_unlock). The
                 * run reaches it only when the head block is also the tail (r == len). */
                ch->hi++;
                size_t end = ch->hb == ch->tb && ch->ti < BLK_SLOTS ? ch->ti : BLK_SLOTS - 1;
                size_t r = end > ch->hi ? end - ch->hi : 0;
                if (r > ch->len)
                    r = ch->len;
                if (SL__UNLIKELY(r == ch->len && ch->hb->slab != NULL && ch->hb->slab != ch->slab))
                    r--; /* len > 0 here */
                len_set(ch, ch->len - r);
                ch->rx_res = r;
            }
            sl__unlock(&ch->lock);
            return 0;
        }
    }
    return recv_locked(ch, out);
}

static int recv_poll(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    size_t *n = (size_t *)(intptr_t)c->arg64;
    if (c->arg == 0) { /* recv_many with max 0 (MPSC-B26) */
        *n = 0;
        return 0;
    }
    sl_waiter_t *wake = NULL;
    blk_t *dead = NULL;
    sl__lock(&ch->lock);
    unreserve_locked(ch);
    int r = recv_ready(ch);
    size_t k = 0;
    if (r == 0)
        k = recv_do(ch, c->buf, c->arg, &wake, &dead);
    sl__unlock(&ch->lock);
    if (wake)
        sl__waiters_wake(wake);
    if (dead)
        free_blocks(ch, dead);
    if (r == 0 && n)
        *n = k;
    return r;
}

/* recv_arm's general case, the lock held. Unlocks. */
static __attribute__((noinline)) int recv_arm_held(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    sl_waiter_t *wake = NULL;
    blk_t *dead = NULL;
    int state = SL__ARMED;
    unreserve_locked(ch);
    int r = c->arg ? recv_ready(ch) : 0;
    if (r != SL_EAGAIN) {
        if (sl__claim_self(c)) {
            if (r == 0 && c->arg)
                c->w.aux = recv_do(ch, c->buf, c->arg, &wake, &dead);
            c->w.res = r;
            state = SL__DONE;
        } else {
            state = SL__LOST;
        }
    } else {
        sl__waitq_push(&ch->recvq, &c->w);
    }
    sl__unlock(&ch->lock);
    if (wake)
        sl__waiters_wake(wake);
    if (dead)
        free_blocks(ch, dead);
    return state;
}

/* recv_arm when the lock is not biased to this thread. */
static __attribute__((noinline)) int recv_arm_locking(sl_clause_t *c)
{
    sl__lock(&((chan_t *)c->obj)->lock);
    return recv_arm_held(c);
}

static int recv_arm(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    c->w.aux = 0;
    if (SL__UNLIKELY(!sl__lock_fast(&ch->lock)))
        return recv_arm_locking(c);
    if (SL__LIKELY(!ch->rx_res && !ch->len && c->arg && !ended(ch))) {
        /* Empty and open, the common case of a receive that parks: register, and that is all
         * (as recv_arm_held does when recv_ready() says SL_EAGAIN), without a frame. */
        sl__waitq_push(&ch->recvq, &c->w);
        sl__unlock(&ch->lock);
        return SL__ARMED;
    }
    return recv_arm_held(c);
}

static void recv_disarm(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    sl__lock(&ch->lock);
    sl__waitq_remove(&ch->recvq, &c->w);
    sl__unlock(&ch->lock);
}

/* recv_many: a sender handed over one message; take whatever else is buffered too. */
static int recvm_complete(sl_clause_t *c)
{
    int r = c->w.res;
    if (r)
        return r;
    chan_t *ch = c->obj;
    size_t k = c->w.aux;
    if (k && k < c->arg) {
        sl_waiter_t *wake = NULL;
        blk_t *dead = NULL;
        sl__lock(&ch->lock);
        unreserve_locked(ch);
        k += recv_do(ch, (unsigned char *)c->buf + k * ch->esz, c->arg - k, &wake, &dead);
        sl__unlock(&ch->lock);
        if (wake)
            sl__waiters_wake(wake);
        if (dead)
            free_blocks(ch, dead);
    }
    *(size_t *)(intptr_t)c->arg64 = k;
    return 0;
}

static const struct sl_clause_ops recv_ops = {recv_poll, recv_arm, recv_disarm, NULL};
static const struct sl_clause_ops recvm_ops = {recv_poll, recv_arm, recv_disarm, recvm_complete};

void sl_clause_mpsc_recv(sl_clause_t *c, sl_mpsc_rx_t *rx, void *out)
{
    SL__ASSERT(rx && (out || CH(rx)->esz == 0), "sl_clause_mpsc_recv: NULL argument");
    sl__clause_init(c, &recv_ops, CH(rx), out, 1, 0);
}

void sl_clause_mpsc_recv_many(sl_clause_t *c, sl_mpsc_rx_t *rx, void *buf, size_t max, size_t *n)
{
    SL__ASSERT(rx && n && (buf || max == 0 || CH(rx)->esz == 0),
               "sl_clause_mpsc_recv_many: NULL argument");
    sl__clause_init(c, &recvm_ops, CH(rx), buf, max, (int64_t)(intptr_t)n);
}

long sl__mpsc_slabs_mapped(void)
{
    return atomic_load_explicit(&slabs_mapped, memory_order_relaxed);
}

long sl__mpsc_slab_maps(void)
{
    return atomic_load_explicit(&slab_maps, memory_order_relaxed);
}

void sl__mpsc_slab_ttl_set(int64_t ns)
{
    atomic_store_explicit(&spare_ttl, ns, memory_order_relaxed);
}

long sl__mpsc_slab_spares(void)
{
    spares_lock();
    long n = spares.n;
    spares_unlock();
    return n;
}

size_t sl__mpsc_rx_reserved(const sl_mpsc_rx_t *rx)
{
    return CH(rx)->rx_res;
}

int sl__mpsc_lock_is_mine(const sl_mpsc_rx_t *rx)
{
    return __atomic_load_n(&CH(rx)->lock.owner, __ATOMIC_RELAXED) == sl__tid;
}

int sl_mpsc_try_recv(sl_mpsc_rx_t *rx, void *out)
{
    SL__ASSERT(rx && (out || CH(rx)->esz == 0), "sl_mpsc_try_recv: NULL argument");
    int r = recv_now(CH(rx), out);
    return r == SL_EAGAIN ? SL_EEMPTY : r;
}

static int recv_entered(chan_t *ch, void *out, int64_t deadline);

/* A receive from its entry checks on. */
static __attribute__((noinline)) int recv_checked(chan_t *ch, void *out, int64_t deadline)
{
    int r = sl__wait_enter(sl__self_checked("a blocking sluice call"));
    if (r)
        return r;
    return recv_entered(ch, out, deadline);
}

/* sl__wait1 on a recv clause, with the clause built only if the receive has to wait (see
 * sl_mpsc_send_until). The common receive (a bounded channel with a message and nobody parked,
 * the lock biased to this thread, nothing for the entry checks to do) is written out here
 * without a frame or a call, as the send's; so is the wait of a visibly empty one. */
/* sl_mpsc_recv_until's pops for messages of other sizes than 8 bytes, apart: their memcpy call
 * would make the written-out function keep a frame on every receive. */
static __attribute__((noinline)) int reserved_pop_any(chan_t *ch, void *out)
{
    reserved_pop(ch, out);
    return 0;
}

/* Called with the lock held, a message in the ring and nobody queued; unlocks. */
static __attribute__((noinline)) int ring_pop_unlock(chan_t *ch, void *out)
{
    ring_pop(ch, out);
    sl__unlock(&ch->lock);
    return 0;
}

int sl_mpsc_recv_until(sl_mpsc_rx_t *rx, void *out, int64_t deadline)
{
    chan_t *ch = CH(rx);
    SL__ASSERT(rx && (out || ch->esz == 0), "sl_mpsc_recv: NULL argument");
    if (SL__UNLIKELY(!sl__wait_enter_fast()))
        return recv_checked(ch, out, deadline);
    /* The pops written out here copy an 8-byte message (a counter, a pointer) inline, and other
     * sizes in a function of their own: a memcpy call here would make this function keep a
     * frame, on every receive. */
    if (ch->rx_res) {
        if (SL__UNLIKELY(ch->esz != 8))
            return reserved_pop_any(ch, out);
        reserved_pop_n(ch, out, 8);
        return 0;
    }
    if (SL__LIKELY(ch->bounded)) {
        if (__atomic_load_n(&ch->len, __ATOMIC_RELAXED) == 0) {
            /* No deadline, and no timeout scope (sl__wait_enter_fast): see recv_entered. */
            if (deadline == SL_FOREVER)
                return sl__wait1v_handoff(&recv_ops, ch, out, 1, 0, deadline);
        } else if (SL__LIKELY(sl__lock_fast(&ch->lock))) {
            if (SL__LIKELY(ch->len && !ch->sendq.head && !ch->recvq.head)) {
                if (SL__UNLIKELY(ch->esz != 8))
                    return ring_pop_unlock(ch, out);
                ring_pop_n(ch, out, 8);
                sl__unlock(&ch->lock);
                return 0;
            }
            sl__unlock(&ch->lock);
        }
    }
    return recv_entered(ch, out, deadline);
}

/* A receive after sl__wait_enter: the try, then the wait. */
static __attribute__((noinline)) int recv_entered(chan_t *ch, void *out, int64_t deadline)
{
    sl_task_t *t = sl__tls_task;
    int r;
    /* Visibly empty, and a wait without a deadline: skip the locked try, the wait's arm looks
     * again under the lock (and takes a message or the end found there at once). With a
     * deadline (the call's or a timeout scope's) the try must come first: the wait may end
     * before its arm, on a deadline already passed or a timer it cannot arm (SL_ENOMEM), and a
     * message or the end of the stream that is already there must win over either. */
    if (deadline == SL_FOREVER && !t->timeouts && !ch->rx_res &&
        __atomic_load_n(&ch->len, __ATOMIC_RELAXED) == 0)
        return sl__wait1v_handoff(&recv_ops, ch, out, 1, 0, deadline);
    r = recv_now(ch, out);
    if (SL__LIKELY(r != SL_EAGAIN))
        return r;
    return sl__wait1v_handoff(&recv_ops, ch, out, 1, 0, deadline);
}

int sl_mpsc_recv(sl_mpsc_rx_t *rx, void *out)
{
    return sl_mpsc_recv_until(rx, out, SL_FOREVER);
}

int sl_mpsc_try_recv_many(sl_mpsc_rx_t *rx, void *buf, size_t max, size_t *n)
{
    sl_clause_t c;
    sl_clause_mpsc_recv_many(&c, rx, buf, max, n);
    int r = recv_poll(&c);
    return r == SL_EAGAIN ? SL_EEMPTY : r;
}

int sl_mpsc_recv_many_until(sl_mpsc_rx_t *rx, void *buf, size_t max, size_t *n, int64_t deadline)
{
    sl_clause_t c;
    sl_clause_mpsc_recv_many(&c, rx, buf, max, n);
    if (max == 0) { /* returns at once, even outside a task (MPSC-B26) */
        *n = 0;
        return 0;
    }
    return sl__wait1(&c, deadline);
}

int sl_mpsc_recv_many(sl_mpsc_rx_t *rx, void *buf, size_t max, size_t *n)
{
    return sl_mpsc_recv_many_until(rx, buf, max, n, SL_FOREVER);
}

/* ---- Closing ------------------------------------------------------------------------------- */

/* Under the lock: marks the channel closed, fails queued senders (returning their partial
 * grants) and completes closed() waiters. */
static void close_locked(chan_t *ch, sl_waiter_t **wake)
{
    if (ch->rx_closed)
        return;
    ch->rx_closed = 1;
    sl_waiter_t *w;
    while ((w = sl__waitq_claim_first(&ch->sendq))) {
        sl_clause_t *c = w->clause;
        if (ch->bounded)
            ch->avail += c->arg - w->aux;
        w->aux = c->arg;
        wake_push(wake, w, SL_ECLOSED);
    }
    sl__waitq_claim_all(&ch->closedq, 0, wake);
}

void sl_mpsc_rx_close(sl_mpsc_rx_t *rx)
{
    chan_t *ch = CH(rx);
    sl_waiter_t *wake = NULL;
    sl__lock(&ch->lock);
    unreserve_locked(ch);
    close_locked(ch, &wake);
    check_end_locked(ch, &wake);
    sl__unlock(&ch->lock);
    if (wake)
        sl__waiters_wake(wake);
}

void sl_mpsc_rx_drop(sl_mpsc_rx_t *rx)
{
    if (!rx)
        return;
    chan_t *ch = CH(rx);
    sl_waiter_t *wake = NULL;
    blk_t *dead = NULL;
    sl__lock(&ch->lock);
    SL__ASSERT(ch->rx_alive, "sl_mpsc_rx_drop: receiver dropped twice");
    SL__ASSERT(!ch->recvq.head, "sl_mpsc_rx_drop: a task is still receiving");
    unreserve_locked(ch);
    close_locked(ch, &wake);
    size_t n = ch->len;
    while (ch->len)
        pop_locked(ch, NULL, &dead); /* MPSC-B23: buffered messages go with the receiver */
    if (ch->bounded)
        ch->avail += n;
    ch->rx_alive = 0;
    unlock_finish(ch, wake, dead);
}

sl_mpsc_tx_t *sl_mpsc_tx_clone(sl_mpsc_tx_t *tx)
{
    chan_t *ch = CH(tx);
    sl__lock(&ch->lock);
    SL__ASSERT(ch->senders > 0, "sl_mpsc_tx_clone: every sender was dropped");
    ch->senders++;
    sl__unlock(&ch->lock);
    return tx;
}

void sl_mpsc_tx_drop(sl_mpsc_tx_t *tx)
{
    if (!tx)
        return;
    chan_t *ch = CH(tx);
    sl_waiter_t *wake = NULL;
    sl__lock(&ch->lock);
    SL__ASSERT(ch->senders > 0, "sl_mpsc_tx_drop: more drops than senders");
    if (--ch->senders == 0)
        check_end_locked(ch, &wake);
    unlock_finish(ch, wake, NULL);
}

sl_mpsc_weak_t *sl_mpsc_tx_downgrade(sl_mpsc_tx_t *tx)
{
    chan_t *ch = CH(tx);
    sl__lock(&ch->lock);
    ch->weak++;
    sl__unlock(&ch->lock);
    return (sl_mpsc_weak_t *)(void *)ch;
}

int sl_mpsc_weak_upgrade(sl_mpsc_weak_t *weak, sl_mpsc_tx_t **out)
{
    chan_t *ch = CH(weak);
    int r = 0;
    sl__lock(&ch->lock);
    if (ch->senders == 0)
        r = SL_ECLOSED;
    else
        ch->senders++;
    sl__unlock(&ch->lock);
    if (r == 0)
        *out = (sl_mpsc_tx_t *)(void *)ch;
    return r;
}

sl_mpsc_weak_t *sl_mpsc_weak_clone(sl_mpsc_weak_t *weak)
{
    chan_t *ch = CH(weak);
    sl__lock(&ch->lock);
    ch->weak++;
    sl__unlock(&ch->lock);
    return weak;
}

void sl_mpsc_weak_drop(sl_mpsc_weak_t *weak)
{
    if (!weak)
        return;
    chan_t *ch = CH(weak);
    sl__lock(&ch->lock);
    SL__ASSERT(ch->weak > 0, "sl_mpsc_weak_drop: more drops than weak senders");
    ch->weak--;
    unlock_finish(ch, NULL, NULL);
}

/* ---- Waiting for the receiver to go away -------------------------------------------------- */

static int closed_poll(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    sl__lock(&ch->lock);
    int r = ch->rx_closed ? 0 : SL_EAGAIN;
    sl__unlock(&ch->lock);
    return r;
}

static int rx_gone(const void *obj)
{
    return ((const chan_t *)obj)->rx_closed;
}

static int closed_arm(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    return sl__arm_cond(c, &ch->lock, &ch->closedq, rx_gone);
}

static void closed_disarm(sl_clause_t *c)
{
    chan_t *ch = c->obj;
    sl__disarm_cond(c, &ch->lock, &ch->closedq);
}

static const struct sl_clause_ops closed_ops = {closed_poll, closed_arm, closed_disarm, NULL};

void sl_clause_mpsc_closed(sl_clause_t *c, sl_mpsc_tx_t *tx)
{
    SL__ASSERT(tx, "sl_clause_mpsc_closed: NULL sender");
    sl__clause_init(c, &closed_ops, CH(tx), NULL, 0, 0);
}

int sl_mpsc_tx_try_closed(sl_mpsc_tx_t *tx)
{
    sl_clause_t c;
    sl_clause_mpsc_closed(&c, tx);
    return closed_poll(&c);
}

int sl_mpsc_tx_closed_until(sl_mpsc_tx_t *tx, int64_t deadline)
{
    sl_clause_t c;
    sl_clause_mpsc_closed(&c, tx);
    return sl__wait1(&c, deadline);
}

int sl_mpsc_tx_closed(sl_mpsc_tx_t *tx)
{
    return sl_mpsc_tx_closed_until(tx, SL_FOREVER);
}

/* ---- Observers ----------------------------------------------------------------------------- */

#define READ_LOCKED(ch, expr)         \
    do {                              \
        sl__lock(&(ch)->lock);        \
        __typeof__(expr) v_ = (expr); \
        sl__unlock(&(ch)->lock);      \
        return v_;                    \
    } while (0)

int sl_mpsc_tx_is_closed(const sl_mpsc_tx_t *tx)
{
    chan_t *ch = CH(tx);
    READ_LOCKED(ch, ch->rx_closed);
}

size_t sl_mpsc_tx_capacity(const sl_mpsc_tx_t *tx)
{
    chan_t *ch = CH(tx);
    READ_LOCKED(ch, ch->bounded ? ch->avail : SIZE_MAX);
}

size_t sl_mpsc_tx_max_capacity(const sl_mpsc_tx_t *tx)
{
    return CH(tx)->cap;
}

long sl_mpsc_tx_strong_count(const sl_mpsc_tx_t *tx)
{
    chan_t *ch = CH(tx);
    READ_LOCKED(ch, ch->senders);
}

long sl_mpsc_tx_weak_count(const sl_mpsc_tx_t *tx)
{
    chan_t *ch = CH(tx);
    READ_LOCKED(ch, ch->weak);
}

int sl_mpsc_tx_same_channel(const sl_mpsc_tx_t *a, const sl_mpsc_tx_t *b)
{
    return a == b;
}

size_t sl_mpsc_rx_len(const sl_mpsc_rx_t *rx)
{
    chan_t *ch = CH(rx);
    READ_LOCKED(ch, ch->len + ch->rx_res); /* rx_res: the receiver's own, see chan_t */
}

int sl_mpsc_rx_is_empty(const sl_mpsc_rx_t *rx)
{
    return sl_mpsc_rx_len(rx) == 0;
}

int sl_mpsc_rx_is_closed(const sl_mpsc_rx_t *rx)
{
    chan_t *ch = CH(rx);
    READ_LOCKED(ch, ch->rx_closed || (ch->senders == 0 && ch->permits == 0));
}

size_t sl_mpsc_rx_capacity(const sl_mpsc_rx_t *rx)
{
    return sl_mpsc_tx_capacity((const sl_mpsc_tx_t *)(const void *)rx);
}

size_t sl_mpsc_rx_max_capacity(const sl_mpsc_rx_t *rx)
{
    return CH(rx)->cap;
}

long sl_mpsc_rx_sender_strong_count(const sl_mpsc_rx_t *rx)
{
    return sl_mpsc_tx_strong_count((const sl_mpsc_tx_t *)(const void *)rx);
}

long sl_mpsc_rx_sender_weak_count(const sl_mpsc_rx_t *rx)
{
    return sl_mpsc_tx_weak_count((const sl_mpsc_tx_t *)(const void *)rx);
}
