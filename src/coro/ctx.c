/*
 * Building the first frame of a new context, for each switch implementation.
 */
#include "coro/ctx.h"

#include <stdint.h>
#include <string.h>

#if defined(SLUICE_CTX_UCONTEXT) && SLUICE_CTX_UCONTEXT
/* The portable fallback lives in ctx_ucontext.c. */
#elif defined(__x86_64__)

void sl__ctx_trampoline(void);

void sl__ctx_make(sl__ctx_t *ctx, void *stack_lo, size_t size, void (*entry)(void *), void *arg)
{
    /* The frame sl__ctx_switch pops: r15, r14, r13, r12, rbx, rbp, return address. After the
     * ret, rsp is top: 16-byte aligned for the trampoline's call. */
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    *--sp = (uint64_t)(uintptr_t)sl__ctx_trampoline; /* return address */
    *--sp = 0;                                       /* rbp */
    *--sp = 0;                                       /* rbx */
    *--sp = (uint64_t)(uintptr_t)entry;              /* r12 */
    *--sp = (uint64_t)(uintptr_t)arg;                /* r13 */
    *--sp = 0;                                       /* r14 */
    *--sp = 0;                                       /* r15 */
    ctx->sp = sp;
}

#elif defined(__aarch64__)

void sl__ctx_trampoline(void);

void sl__ctx_make(sl__ctx_t *ctx, void *stack_lo, size_t size, void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - 176);
    memset(frame, 0, 176);
    frame[0] = (uint64_t)(uintptr_t)entry;               /* x19 */
    frame[1] = (uint64_t)(uintptr_t)arg;                 /* x20 */
    frame[11] = (uint64_t)(uintptr_t)sl__ctx_trampoline; /* x30 */
    ctx->sp = frame;
}

#endif
