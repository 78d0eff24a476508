/* Minimal test harness for sluice, header-only.
 *
 * A test file declares its cases at the start of a line:
 *
 *     #include "test.h"
 *
 *     SL_TEST(send_then_recv)
 *     {
 *         ASSERT_OK(sl_mpsc_send(tx, &v));
 *         ASSERT_EQ(n, 3);
 *     }
 *
 * CMake reads those lines and registers one CTest test per case, `<file-stem>.<case>`, which
 * runs `<exe> <case>` in its own process under a timeout. The executable also accepts no
 * argument (list the cases) and `--all` (run every case in this process, in file order).
 *
 * Failed assertions print file:line, the expression and both values, then abort(): no longjmp,
 * so a failure inside a coroutine never leaves a stack half switched.
 *
 * Exactly one translation unit of a test executable includes this header without defining
 * SL_TEST_NO_MAIN; it gets main(), the case table and the allocator counters. Other units
 * define SL_TEST_NO_MAIN first and share them.
 */
#ifndef SLUICE_TEST_H
#define SLUICE_TEST_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<sluice.h>)
#include <sluice.h>
#define SL_TEST_HAVE_SLUICE 1
#endif
#endif
#ifndef SL_TEST_HAVE_SLUICE
#define SL_TEST_HAVE_SLUICE 0
#endif

#define SL_TEST_MAX_CASES 256
#define SL_TEST_SKIP_CODE 77 /* CTest's SKIP_RETURN_CODE */

/* Declares and registers case `name`; the body follows the macro. */
#define SL_TEST(name)                                                       \
    static void test_##name(void);                                          \
    __attribute__((constructor)) static void sl_test__register_##name(void) \
    {                                                                       \
        sl_test__register(#name, test_##name);                              \
    }                                                                       \
    static void test_##name(void)

/* Ends the current case as skipped (reported by CTest as "Not Run"). */
#define TEST_SKIP(why)                  \
    do {                                \
        printf("skipped: %s\n", (why)); \
        fflush(NULL);                   \
        exit(SL_TEST_SKIP_CODE);        \
    } while (0)

/* ---- assertions ------------------------------------------------------------------------- */

#define ASSERT(cond)                                                                            \
    do {                                                                                        \
        if (!(cond))                                                                            \
            sl_test__fail(__FILE__, __LINE__, "ASSERT(" #cond ")", "%s", "condition is false"); \
    } while (0)

#define SL_TEST__CMP(name, a, op, b, type, fmt)                                     \
    do {                                                                            \
        type sl_test_a_ = (type)(a);                                                \
        type sl_test_b_ = (type)(b);                                                \
        if (!(sl_test_a_ op sl_test_b_))                                            \
            sl_test__fail(__FILE__, __LINE__, name "(" #a ", " #b ")",              \
                          "left:  " fmt "\n  right: " fmt, sl_test_a_, sl_test_b_); \
    } while (0)

/* Signed integers, compared as long long. */
#define ASSERT_EQ(a, b) SL_TEST__CMP("ASSERT_EQ", a, ==, b, long long, "%lld")
#define ASSERT_NE(a, b) SL_TEST__CMP("ASSERT_NE", a, !=, b, long long, "%lld")
#define ASSERT_LT(a, b) SL_TEST__CMP("ASSERT_LT", a, <, b, long long, "%lld")
#define ASSERT_LE(a, b) SL_TEST__CMP("ASSERT_LE", a, <=, b, long long, "%lld")
#define ASSERT_GT(a, b) SL_TEST__CMP("ASSERT_GT", a, >, b, long long, "%lld")
#define ASSERT_GE(a, b) SL_TEST__CMP("ASSERT_GE", a, >=, b, long long, "%lld")

/* Unsigned integers (sizes, counters, 64-bit nanosecond times), compared as unsigned long long. */
#define ASSERT_EQ_U(a, b) SL_TEST__CMP("ASSERT_EQ_U", a, ==, b, unsigned long long, "%llu")
#define ASSERT_NE_U(a, b) SL_TEST__CMP("ASSERT_NE_U", a, !=, b, unsigned long long, "%llu")
#define ASSERT_LT_U(a, b) SL_TEST__CMP("ASSERT_LT_U", a, <, b, unsigned long long, "%llu")
#define ASSERT_LE_U(a, b) SL_TEST__CMP("ASSERT_LE_U", a, <=, b, unsigned long long, "%llu")
#define ASSERT_GT_U(a, b) SL_TEST__CMP("ASSERT_GT_U", a, >, b, unsigned long long, "%llu")
#define ASSERT_GE_U(a, b) SL_TEST__CMP("ASSERT_GE_U", a, >=, b, unsigned long long, "%llu")

#define ASSERT_PTR_EQ(a, b) SL_TEST__CMP("ASSERT_PTR_EQ", a, ==, b, const void *, "%p")
#define ASSERT_PTR_NE(a, b) SL_TEST__CMP("ASSERT_PTR_NE", a, !=, b, const void *, "%p")
#define ASSERT_NULL(a)      ASSERT_PTR_EQ(a, NULL)
#define ASSERT_NOT_NULL(a)  ASSERT_PTR_NE(a, NULL)

#define ASSERT_STR_EQ(a, b)                                                                     \
    do {                                                                                        \
        const char *sl_test_a_ = (a);                                                           \
        const char *sl_test_b_ = (b);                                                           \
        if (sl_test_a_ == NULL || sl_test_b_ == NULL || strcmp(sl_test_a_, sl_test_b_) != 0)    \
            sl_test__fail(__FILE__, __LINE__, "ASSERT_STR_EQ(" #a ", " #b ")",                  \
                          "left:  \"%s\"\n  right: \"%s\"", sl_test_a_ ? sl_test_a_ : "(null)", \
                          sl_test_b_ ? sl_test_b_ : "(null)");                                  \
    } while (0)

/* `expr` returns an int status: 0 is success, anything else fails with its name. */
#define ASSERT_OK(expr)                                                                   \
    do {                                                                                  \
        int sl_test_r_ = (expr);                                                          \
        if (sl_test_r_ != 0)                                                              \
            sl_test__fail(__FILE__, __LINE__, "ASSERT_OK(" #expr ")", "returned %d (%s)", \
                          sl_test_r_, sl_test__err_name(sl_test_r_));                     \
    } while (0)

/* `expr` must return exactly `code` (e.g. SL_ETIMEDOUT). */
#define ASSERT_ERR(expr, code)                                                    \
    do {                                                                          \
        int sl_test_r_ = (expr);                                                  \
        int sl_test_c_ = (code);                                                  \
        if (sl_test_r_ != sl_test_c_)                                             \
            sl_test__fail(__FILE__, __LINE__, "ASSERT_ERR(" #expr ", " #code ")", \
                          "returned %d (%s)\n  expected %d (%s)", sl_test_r_,     \
                          sl_test__err_name(sl_test_r_), sl_test_c_,              \
                          sl_test__err_name(sl_test_c_));                         \
    } while (0)

/* ---- helpers ---------------------------------------------------------------------------- */

/* SLUICE_TEST_SCALE from the environment (default 1): multiply timing slack by it. */
int test_scale(void);

/* Counting allocator with the library's allocator-hook signature (Lua style): nsize == 0 frees
 * ptr and returns NULL, ptr == NULL allocates, otherwise reallocates. Thread-safe. */
void *test_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Blocks currently allocated through test_alloc (allocations minus frees). */
long test_alloc_live(void);
/* Allocation calls (malloc or realloc) made through test_alloc, including failed ones. */
long test_alloc_total(void);
/* The next n allocation calls succeed and the one after fails, once; -1 disarms. */
void test_alloc_fail_after(long n);
/* Like test_alloc_fail_after, but every call from the (n+1)th on fails until disarmed. */
void test_alloc_fail_all_after(long n);

/* Two threads meet: this one (side 0 or 1) stores in arrive[side] that it has reached round
 * `round` (rounds increase from 1), then spins until the other side has reached it too, so
 * that both leave within a few hundred cycles of each other (races aimed at a window of a few
 * instructions). Every 1,024 spins it yields, so that a partner preempted on a busy machine
 * gets its CPU back. */
void test_meet(atomic_int arrive[2], int side, int round);

/* Internals used by the macros. */
void sl_test__register(const char *name, void (*fn)(void));
__attribute__((noreturn, format(printf, 4, 5))) void
sl_test__fail(const char *file, int line, const char *expr, const char *fmt, ...);
const char *sl_test__err_name(int code);

#ifndef SL_TEST_NO_MAIN
#include <stdarg.h>

static struct {
    const char *name;
    void (*fn)(void);
} sl_test__cases[SL_TEST_MAX_CASES];
static int sl_test__ncases;
static const char *sl_test__current = "?";

static atomic_long sl_test__live;
static atomic_long sl_test__total;
static atomic_long sl_test__fail_countdown = -1;
static atomic_int sl_test__fail_sticky;

void sl_test__register(const char *name, void (*fn)(void))
{
    for (int i = 0; i < sl_test__ncases; i++) {
        if (strcmp(sl_test__cases[i].name, name) == 0) {
            fprintf(stderr, "test case '%s' registered twice\n", name);
            abort();
        }
    }
    if (sl_test__ncases == SL_TEST_MAX_CASES) {
        fprintf(stderr, "more than %d test cases in one file\n", SL_TEST_MAX_CASES);
        abort();
    }
    sl_test__cases[sl_test__ncases].name = name;
    sl_test__cases[sl_test__ncases].fn = fn;
    sl_test__ncases++;
}

void sl_test__fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s:%d: test '%s' failed: %s\n", file, line, sl_test__current, expr);
    fputs("  ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

const char *sl_test__err_name(int code)
{
#if SL_TEST_HAVE_SLUICE
    const char *name = sl_err_name(code);
    return name != NULL ? name : "?";
#else
    return code == 0 ? "ok" : "error";
#endif
}

void test_meet(atomic_int arrive[2], int side, int round)
{
    atomic_store_explicit(&arrive[side], round, memory_order_release);
    for (int spins = 0; atomic_load_explicit(&arrive[!side], memory_order_acquire) < round;) {
        if (++spins % 1024 == 0) {
            sched_yield();
        } else {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#elif defined(__aarch64__)
            __asm__ __volatile__("yield" ::: "memory");
#endif
        }
    }
}

int test_scale(void)
{
    const char *s = getenv("SLUICE_TEST_SCALE");
    int n = s != NULL ? atoi(s) : 1;
    return n > 0 ? n : 1;
}

/* True when this allocation call must fail (fault injection). */
static int sl_test__should_fail(void)
{
    long n = atomic_load(&sl_test__fail_countdown);

    for (;;) {
        if (n < 0)
            return 0;
        if (n == 0) {
            if (atomic_load(&sl_test__fail_sticky))
                return 1;
            if (atomic_compare_exchange_weak(&sl_test__fail_countdown, &n, -1))
                return 1;
        } else if (atomic_compare_exchange_weak(&sl_test__fail_countdown, &n, n - 1)) {
            return 0;
        }
    }
}

void *test_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    void *p;

    (void)ud;
    (void)osize;
    if (nsize == 0) {
        if (ptr != NULL) {
            free(ptr);
            atomic_fetch_sub(&sl_test__live, 1);
        }
        return NULL;
    }
    atomic_fetch_add(&sl_test__total, 1);
    if (sl_test__should_fail())
        return NULL;
    if (ptr != NULL)
        return realloc(ptr, nsize);
    p = malloc(nsize);
    if (p != NULL)
        atomic_fetch_add(&sl_test__live, 1);
    return p;
}

long test_alloc_live(void)
{
    return atomic_load(&sl_test__live);
}

long test_alloc_total(void)
{
    return atomic_load(&sl_test__total);
}

void test_alloc_fail_after(long n)
{
    atomic_store(&sl_test__fail_sticky, 0);
    atomic_store(&sl_test__fail_countdown, n < 0 ? -1 : n);
}

void test_alloc_fail_all_after(long n)
{
    atomic_store(&sl_test__fail_sticky, 1);
    atomic_store(&sl_test__fail_countdown, n < 0 ? -1 : n);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        for (int i = 0; i < sl_test__ncases; i++)
            printf("%s\n", sl_test__cases[i].name);
        return 0;
    }
    if (strcmp(argv[1], "--all") == 0) {
        for (int i = 0; i < sl_test__ncases; i++) {
            sl_test__current = sl_test__cases[i].name;
            printf("%s\n", sl_test__current);
            sl_test__cases[i].fn();
        }
        return 0;
    }
    for (int i = 0; i < sl_test__ncases; i++) {
        if (strcmp(argv[1], sl_test__cases[i].name) == 0) {
            sl_test__current = sl_test__cases[i].name;
            sl_test__cases[i].fn();
            return 0;
        }
    }
    fprintf(stderr, "%s: unknown test case '%s' (run without arguments to list them)\n", argv[0],
            argv[1]);
    return 2;
}
#endif /* SL_TEST_NO_MAIN */

/* ---- Copies of exactly one element ---- */

/* Fills p with `size` bytes that depend on v and on each byte's place. */
static inline void test_fill_bytes(unsigned char *p, size_t size, unsigned v)
{
    for (size_t k = 0; k < size; k++)
        p[k] = (unsigned char)(v * 31u + k * 7u + 1u);
}

/* out (outlen bytes, filled with 0xAA before the copy) holds test_fill_bytes(v) in its first
 * `size` bytes and nothing was written past them. */
static inline void test_expect_bytes(const unsigned char *out, size_t outlen, size_t size,
                                     unsigned v)
{
    unsigned char want[256];
    ASSERT(size <= sizeof want);
    test_fill_bytes(want, size, v);
    ASSERT(memcmp(out, want, size) == 0);
    for (size_t k = size; k < outlen; k++)
        ASSERT_EQ_U(out[k], 0xAA);
}

#endif /* SLUICE_TEST_H */
