/*
 * The portable context switch, for targets without hand-written assembly (or when built with
 * -DSLUICE_CTX_UCONTEXT=1). The only file allowed to use ucontext (scripts/lint.sh).
 */
#include "coro/ctx.h"

#if defined(SLUICE_CTX_UCONTEXT) && SLUICE_CTX_UCONTEXT

#include <stdint.h>
#include <ucontext.h>

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

/* The context's ucontext_t lives on its own stack (see sl__ctx_t): a new context's at the top
 * of its stack, above what makecontext is given; a suspended one's in the frame of the
 * sl__ctx_switch call it is suspended in. */
void sl__ctx_make(sl__ctx_t *ctx, void *stack_lo, size_t size, void (*entry)(void *), void *arg)
{
    uintptr_t a = (uintptr_t)arg, f = (uintptr_t)entry;
    uintptr_t top = ((uintptr_t)stack_lo + size - sizeof(ucontext_t)) & ~(uintptr_t)63;
    ucontext_t *uc = (ucontext_t *)top;
    getcontext(uc);
    uc->uc_stack.ss_sp = stack_lo;
    uc->uc_stack.ss_size = top - (uintptr_t)stack_lo;
    uc->uc_link = NULL;
    makecontext(uc, (void (*)(void))uc_entry, 4, (unsigned int)(a >> 16 >> 16), (unsigned int)a,
                (unsigned int)(f >> 16 >> 16), (unsigned int)f);
    ctx->sp = uc;
}

void sl__ctx_switch(sl__ctx_t *from, sl__ctx_t *to)
{
    ucontext_t uc;
    from->sp = &uc;
    swapcontext(&uc, (ucontext_t *)to->sp);
}

#endif
