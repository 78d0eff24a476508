/*
 * Internal: sanitizer and Valgrind hooks for stack switching (without these annotations
 * AddressSanitizer and ThreadSanitizer see one thread jump between unrelated stacks and
 * report nonsense; Valgrind takes a stack switch for a huge stack-pointer move), and the
 * poisoned free-list links of the per-worker memory caches.
 */
#ifndef SLUICE_CORO_SAN_H
#define SLUICE_CORO_SAN_H

#include <stddef.h>
#include <string.h>

#ifndef SLUICE_ASAN
#define SLUICE_ASAN 0
#endif
#ifndef SLUICE_TSAN
#define SLUICE_TSAN 0
#endif
#ifndef SLUICE_VALGRIND
#define SLUICE_VALGRIND 0
#endif

#if SLUICE_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
void __asan_poison_memory_region(void const volatile *addr, size_t size);
#endif

#if SLUICE_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif

#if SLUICE_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

/* ---- Free lists of dead blocks (the per-worker task and oneshot caches) ----
 * A cached block is dead memory: the sanitizers report any access to it until it is taken
 * again. Its first word links the list (memcpy: the block's type changes). */

/* Stores next as b's link and poisons b's n bytes. */
static inline void sl__dead_link(void *b, size_t n, void *next)
{
    memcpy(b, &next, sizeof next);
#if SLUICE_ASAN
    __asan_poison_memory_region(b, n);
#elif SLUICE_VALGRIND
    VALGRIND_MAKE_MEM_NOACCESS(b, n);
#else
    (void)n;
#endif
}

/* Makes b's n bytes usable again (contents undefined) and returns its link. */
static inline void *sl__dead_next(void *b, size_t n)
{
#if SLUICE_ASAN
    __asan_unpoison_memory_region(b, n);
#elif SLUICE_VALGRIND
    VALGRIND_MAKE_MEM_DEFINED(b, sizeof(void *));
#endif
    void *next;
    memcpy(&next, b, sizeof next);
#if SLUICE_VALGRIND
    VALGRIND_MAKE_MEM_UNDEFINED(b, n);
#endif
    (void)n;
    return next;
}

/* After sl__dead_next: the n bytes at p, which the block kept from its last use (their contents
 * survive; only Valgrind's record of them was reset), are defined again. */
static inline void sl__dead_kept(void *p, size_t n)
{
#if SLUICE_VALGRIND
    VALGRIND_MAKE_MEM_DEFINED(p, n);
#else
    (void)p;
    (void)n;
#endif
}

#endif /* SLUICE_CORO_SAN_H */
