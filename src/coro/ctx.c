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
    /* At the top, the two words the trampoline reads (entry, then arg), at a 16-byte aligned
     * rsp for its call; below them the save area sl__ctx_swap resumes from. */
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 16);
    sp[0] = (uint64_t)(uintptr_t)entry;
    sp[1] = (uint64_t)(uintptr_t)arg;
    sl__ctx_save_t *save = (sl__ctx_save_t *)((uintptr_t)sp - sizeof(sl__ctx_save_t));
    memset(save, 0, sizeof *save);
    save->sp = sp;
    save->ip = (void *)(uintptr_t)sl__ctx_trampoline;
    save->bp = NULL;
    save->mxcsr = 0x1F80; /* defaults: all exceptions masked, round-nearest */
    save->fpucw = 0x037F;
    ctx->sp = save;
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
