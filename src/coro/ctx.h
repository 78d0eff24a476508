/*
 * Internal: machine context switching.
 *
 * sl__ctx_swap(from, to) suspends the running context into from and resumes to. x86-64: inline
 * assembly below (a save area in the switching function's frame; the compiler saves what is
 * live). aarch64: a called sl__ctx_switch (ctx_aarch64.S) that saves x19-x30, d8-d15 and FPCR
 * on the current stack. Elsewhere, or with -DSLUICE_CTX_UCONTEXT=1: swapcontext
 * (ctx_ucontext.c). Everything the ABI does not preserve across a call is already spilled by
 * the compiler around the switch.
 */
#ifndef SLUICE_CORO_CTX_H
#define SLUICE_CORO_CTX_H

#include <stddef.h>

#if !defined(SLUICE_CTX_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define SLUICE_CTX_UCONTEXT 1
#endif

/* sp: where the context's saved state is: x86-64, its save area (see sl__ctx_swap); aarch64,
 * the stack pointer, with the registers on the stack; the ucontext fallback, its ucontext_t,
 * which lives on the context's own stack. One word in every build, so that it shares the
 * task's first cache line with everything else a wake and a switch touch. */
typedef struct sl__ctx {
    void *sp;
} sl__ctx_t;

/* Prepares ctx so that switching to it calls entry(arg) on the stack ending at stack_hi.
 * entry must never return. */
void sl__ctx_make(sl__ctx_t *ctx, void *stack_lo, size_t size, void (*entry)(void *), void *arg);

#if defined(__x86_64__) && !(defined(SLUICE_CTX_UCONTEXT) && SLUICE_CTX_UCONTEXT)

/* What a context leaves behind when it switches away, in the frame of the function that
 * switches: the stack pointer, where to resume, the frame pointer, MXCSR and the x87 control
 * word. Offsets are used by the assembly below and by sl__ctx_make. */
typedef struct sl__ctx_save {
    void *sp;
    void *ip;
    void *bp;
    unsigned int mxcsr;
    unsigned short fpucw;
    unsigned short pad;
} sl__ctx_save_t;

/* Saves the current context into from and resumes to. Returns when something switches back.
 *
 * Written inline rather than as a called function: the assembly declares every register the
 * ABI lets a call keep (rbx, r12-r15) clobbered, so the compiler saves only the ones that hold
 * something live, in the frame it already has, instead of a called switch pushing all six
 * plus a return address on a frame of its own; and the resume is a jump to the label below,
 * so no call is left unmatched on the return-stack predictor (an earlier switch that ended a
 * call with a jump made every later return mispredict, docs/perf.md). rbp is saved and
 * restored explicitly because it may be the frame pointer, which cannot be named as clobbered.
 * Every other register is caller-saved and listed too. Nothing is written below rsp, so the
 * red zone of the function this is inlined into is safe. */
static inline __attribute__((always_inline)) void sl__ctx_swap(sl__ctx_t *from, sl__ctx_t *to)
{
    sl__ctx_save_t save;
    sl__ctx_save_t *s = &save;
    sl__ctx_t *f = from, *t = to;
    __asm__ volatile("stmxcsr 24(%[s])\n\t"
                     "fnstcw  28(%[s])\n\t"
                     "movq    %%rsp, 0(%[s])\n\t"
                     "movq    %%rbp, 16(%[s])\n\t"
                     "leaq    1f(%%rip), %%rax\n\t"
                     "movq    %%rax, 8(%[s])\n\t"
                     "movq    %[s], (%[f])\n\t"
                     "movq    (%[t]), %%rax\n\t"
                     "ldmxcsr 24(%%rax)\n\t"
                     "fldcw   28(%%rax)\n\t"
                     "movq    16(%%rax), %%rbp\n\t"
                     "movq    0(%%rax), %%rsp\n\t"
                     "jmpq    *8(%%rax)\n\t"
                     "1:"
                     : [s] "+d"(s), [f] "+D"(f), [t] "+S"(t)
                     :
                     : "rax", "rbx", "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                       "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)",
                       "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)", "memory", "cc");
}

#else

/* Saves the current context into from and resumes to. Returns when something switches back. */
void sl__ctx_switch(sl__ctx_t *from, sl__ctx_t *to);

static inline void sl__ctx_swap(sl__ctx_t *from, sl__ctx_t *to)
{
    sl__ctx_switch(from, to);
}

#endif

#endif /* SLUICE_CORO_CTX_H */
