/*
 * The portable context switch, for targets without hand-written assembly (or when built with
 * -DSLUICE_CTX_UCONTEXT=1). The only file allowed to use ucontext (scripts/lint.sh).
 */
#include "coro/ctx.h"

#if defined(SLUICE_CTX_UCONTEXT) && SLUICE_CTX_UCONTEXT

#include <stdint.h>

/*
 * Portable fallback for targets without hand-written assembly. swapcontext saves and restores
 * the signal mask with a system call, so it is slow; it exists for correctness only.
 * makecontext passes int arguments, so the pointer is split in two halves.
 */
static void uc_entry(unsigned int hi, unsigned int lo, unsigned int fhi, unsigned int flo)
{
    uintptr_t a = ((uintptr_t)hi << 16 << 16) | lo;
    uintptr_t f = ((uintptr_t)fhi << 16 << 16) | flo;
    ((void (*)(void *))f)((void *)a);
}

void sl__ctx_make(sl__ctx_t *ctx, void *stack_lo, size_t size, void (*entry)(void *), void *arg)
{
    uintptr_t a = (uintptr_t)arg, f = (uintptr_t)entry;
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = stack_lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))uc_entry, 4, (unsigned int)(a >> 16 >> 16),
                (unsigned int)a, (unsigned int)(f >> 16 >> 16), (unsigned int)f);
}

void sl__ctx_switch(sl__ctx_t *from, sl__ctx_t *to)
{
    swapcontext(&from->uc, &to->uc);
}

#endif
