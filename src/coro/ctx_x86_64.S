/*
 * Context switch for x86-64, System V ABI.
 *
 * void sl__ctx_switch(sl__ctx_t *from, sl__ctx_t *to)
 *
 * Saved on the stack of the context being left, from the top: rbp, rbx, r12, r13, r14, r15.
 * from->sp (offset 0) receives the resulting stack pointer. MXCSR and the x87 control word are
 * not switched: the floating-point environment belongs to the worker thread, as it does to a
 * Tokio or Go worker (docs/design/runtime.md, "Context switches and tools": their four
 * instructions, microcoded, were 16% of a switch).
 */
#if defined(__x86_64__) && !(defined(SLUICE_CTX_UCONTEXT) && SLUICE_CTX_UCONTEXT)

    .text
    .globl  sl__ctx_switch
    .hidden sl__ctx_switch
    .type   sl__ctx_switch, @function
    .p2align 4
sl__ctx_switch:
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    popq    %r15
    .cfi_adjust_cfa_offset -8
    popq    %r14
    .cfi_adjust_cfa_offset -8
    popq    %r13
    .cfi_adjust_cfa_offset -8
    popq    %r12
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size   sl__ctx_switch, .-sl__ctx_switch

/*
 * First code a new context runs: sl__ctx_make leaves entry in r12 and its argument in r13,
 * with rsp 16-byte aligned. The CFI marks the return address undefined so that debuggers
 * stop unwinding here.
 */
    .globl  sl__ctx_trampoline
    .hidden sl__ctx_trampoline
    .type   sl__ctx_trampoline, @function
    .p2align 4
sl__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r13, %rdi
    xorl    %ebp, %ebp
    callq   *%r12
    ud2
    .cfi_endproc
    .size   sl__ctx_trampoline, .-sl__ctx_trampoline

#endif

    .section .note.GNU-stack,"",@progbits
