/*
 * Internal: machine context switching.
 *
 * sl__ctx_switch saves the callee-saved registers the ABI names (x86-64: rbx, rbp, r12-r15,
 * the x87 control word and MXCSR; aarch64: x19-x29, lr, d8-d15) on the current stack, stores
 * the stack pointer in from->sp, loads to->sp and restores the same set. Everything else is
 * caller-saved, so the C compiler already spilled it around the call.
 */
#ifndef SLUICE_CORO_CTX_H
#define SLUICE_CORO_CTX_H

#include <stddef.h>

#if !defined(SLUICE_CTX_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define SLUICE_CTX_UCONTEXT 1
#endif

#if defined(SLUICE_CTX_UCONTEXT) && SLUICE_CTX_UCONTEXT
#include <ucontext.h>
typedef struct sl__ctx {
    ucontext_t uc;
} sl__ctx_t;
#else
typedef struct sl__ctx {
    void *sp;
} sl__ctx_t;
#endif

/* Prepares ctx so that switching to it calls entry(arg) on the stack ending at stack_hi.
 * entry must never return. */
void sl__ctx_make(sl__ctx_t *ctx, void *stack_lo, size_t size, void (*entry)(void *), void *arg);

/* Saves the current context into from and resumes to. Returns when something switches back. */
void sl__ctx_switch(sl__ctx_t *from, sl__ctx_t *to);

#endif /* SLUICE_CORO_CTX_H */
