/*
 * Internal: machine context switching.
 *
 * sl__ctx_switch saves the callee-saved registers the ABI names (x86-64: rbx, rbp, r12-r15;
 * aarch64: x19-x29, lr, d8-d15) on the current stack, stores the stack pointer in from->sp,
 * loads to->sp and restores the same set. Everything else is caller-saved, so the C compiler
 * already spilled it around the call. The floating-point control registers (MXCSR and the x87
 * control word, FPCR) are the worker thread's, shared by its tasks. Elsewhere, or with
 * -DSLUICE_CTX_UCONTEXT=1: the ucontext switch of ctx_ucontext.c, which also switches them.
 */
#ifndef SLUICE_CORO_CTX_H
#define SLUICE_CORO_CTX_H

#include <stddef.h>

#if !defined(SLUICE_CTX_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define SLUICE_CTX_UCONTEXT 1
#endif

/* sp: where the context's saved state is: the stack pointer, with the registers on the stack;
 * for the ucontext fallback, its ucontext_t, which lives on the context's own stack. One word in
 * every build, so that it shares the task's first cache line with everything else a wake and a
 * switch touch. */
typedef struct sl__ctx {
    void *sp;
} sl__ctx_t;

/* Prepares ctx so that switching to it calls entry(arg) on the stack ending at stack_hi.
 * entry must never return. */
void sl__ctx_make(sl__ctx_t *ctx, void *stack_lo, size_t size, void (*entry)(void *), void *arg);

/* Saves the current context into from and resumes to. Returns when something switches back. */
void sl__ctx_switch(sl__ctx_t *from, sl__ctx_t *to);

#endif /* SLUICE_CORO_CTX_H */
