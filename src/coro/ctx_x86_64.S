/*
 * x86-64, System V ABI. The switch itself is inline assembly (sl__ctx_swap in ctx.h); what
 * lives here is the first code a new context runs.
 */
#if defined(__x86_64__) && !(defined(SLUICE_CTX_UCONTEXT) && SLUICE_CTX_UCONTEXT)

    .text
/*
 * First code a new context runs: sl__ctx_make leaves entry at (rsp) and its argument at
 * 8(rsp), with rsp 16-byte aligned. The CFI marks the return address undefined so that
 * debuggers stop unwinding here.
 */
    .globl  sl__ctx_trampoline
    .hidden sl__ctx_trampoline
    .type   sl__ctx_trampoline, @function
    .p2align 4
sl__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq    8(%rsp), %rdi
    movq    (%rsp), %rax
    xorl    %ebp, %ebp
    callq   *%rax
    ud2
    .cfi_endproc
    .size   sl__ctx_trampoline, .-sl__ctx_trampoline

#endif

    .section .note.GNU-stack,"",@progbits
