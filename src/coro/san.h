/*
 * Internal: sanitizer and Valgrind hooks for stack switching. Without these annotations
 * AddressSanitizer and ThreadSanitizer see one thread jump between unrelated stacks and
 * report nonsense; Valgrind takes a stack switch for a huge stack-pointer move.
 */
#ifndef SLUICE_CORO_SAN_H
#define SLUICE_CORO_SAN_H

#include <stddef.h>

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

#endif /* SLUICE_CORO_SAN_H */
