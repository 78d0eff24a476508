/*
 * sl__wait1v_handoff (core/rt.h): sl__wait1v, returned from with an indirect jump.
 *
 * int sl__wait1v_handoff(ops, obj, buf, arg, arg64, deadline)
 *
 * The arguments pass through untouched to sl__wait1v (rdi, rsi, rdx, rcx, r8, r9); its result
 * comes back in eax. The caller's return address stays on the stack while the wait runs (the
 * CFI describes every instruction, so debuggers and sanitizers unwind through here), and is
 * then popped into rcx, a caller-saved register that holds no result, and jumped to.
 *
 * Why: a task resumed by a direct switch returns from sl__wait1v into this entry, the same
 * place for every task that came this way, which the return-stack predictor gets right; the
 * return from here would be predicted as the parked task's, wrong whenever the two tasks called
 * from different places (a client waiting for a reply, an actor for the next request). The
 * indirect jump is predicted by the branch target buffer instead. Shadow stacks (CET) would
 * object to this as they object to every switch of stacks; sluice does not run under them.
 */
#if defined(__x86_64__)

    .text
    .globl  sl__wait1v_handoff
    .hidden sl__wait1v_handoff
    .type   sl__wait1v_handoff, @function
    .p2align 4
sl__wait1v_handoff:
    .cfi_startproc
    subq    $8, %rsp                /* the call below leaves rsp 16-byte aligned at entry + 8 */
    .cfi_adjust_cfa_offset 8
    call    sl__wait1v
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %rcx
    .cfi_adjust_cfa_offset -8
    .cfi_register rip, rcx
    jmp     *%rcx
    .cfi_endproc
    .size   sl__wait1v_handoff, .-sl__wait1v_handoff

#endif

    .section .note.GNU-stack,"",@progbits
