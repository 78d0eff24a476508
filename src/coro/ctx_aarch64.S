/*
 * Context switch for aarch64, AAPCS64.
 *
 * void sl__ctx_switch(sl__ctx_t *from, sl__ctx_t *to)
 *
 * Frame of 176 bytes on the stack being left: x19..x28 (80 bytes), x29 and x30 (16), d8..d15
 * (64) and 16 bytes unused. from->sp receives the stack pointer. FPCR is not switched: the
 * floating-point environment belongs to the worker thread (see ctx_x86_64.S).
 */
#if defined(__aarch64__) && !(defined(SLUICE_CTX_UCONTEXT) && SLUICE_CTX_UCONTEXT)

    .text
    .globl  sl__ctx_switch
    .hidden sl__ctx_switch
    .type   sl__ctx_switch, %function
    .p2align 4
sl__ctx_switch:
    .cfi_startproc
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #176
    ret
    .cfi_endproc
    .size   sl__ctx_switch, .-sl__ctx_switch

/* First code of a new context: entry in x19, its argument in x20. */
    .globl  sl__ctx_trampoline
    .hidden sl__ctx_trampoline
    .type   sl__ctx_trampoline, %function
    .p2align 4
sl__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x20
    mov     x29, #0
    blr     x19
    brk     #0
    .cfi_endproc
    .size   sl__ctx_trampoline, .-sl__ctx_trampoline

#endif

    .section .note.GNU-stack,"",%progbits
