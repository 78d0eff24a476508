#!/usr/bin/env bash
# Project lint: banned functions in src/ and gateway/, and the exported-symbol prefix rules.
# Usage: scripts/lint.sh [build-dir]   (default build/release; must already be built)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
fail=0

# Unbounded string functions, and non-local jumps / ucontext (they would bypass the
# scheduler's own stack switching and the sanitizer annotations).
banned='\b(gets|sprintf|vsprintf|strcpy|strcat|strtok|setjmp|longjmp|_setjmp|_longjmp|sigsetjmp|siglongjmp|getcontext|setcontext|makecontext|swapcontext)[[:space:]]*\('
dirs=()
for d in src gateway; do [ -d "$d" ] && dirs+=("$d"); done
if [ ${#dirs[@]} -gt 0 ]; then
    # src/coro/ctx_ucontext.c is the portable context-switch fallback: ucontext is its job.
    if grep -rnE --include='*.c' --include='*.h' --include='*.S' --exclude=ctx_ucontext.c \
        "$banned" "${dirs[@]}"; then
        echo "lint: banned function used (see above)" >&2
        fail=1
    fi
    if grep -rnE --include='*.c' --include='*.h' --exclude=ctx_ucontext.c --exclude=ctx.h \
        '#[[:space:]]*include[[:space:]]*<(setjmp|ucontext)\.h>' "${dirs[@]}"; then
        echo "lint: <setjmp.h>/<ucontext.h> are banned" >&2
        fail=1
    fi
fi

# Every global symbol defined in the archive is sl_ (public) or sl__ (internal, hidden).
ar=$build/libsluice.a
so=$build/libsluice.so
[ -f "$ar" ] && [ -f "$so" ] || { echo "lint: build $build first" >&2; exit 1; }
bad=$(nm -g --defined-only "$ar" | awk 'NF >= 3 { print $3 }' | grep -v '^sl_' || true)
if [ -n "$bad" ]; then
    echo "lint: $ar defines global symbols without the sl_ prefix:" >&2
    echo "$bad" | sed 's/^/    /' >&2
    fail=1
fi
# Only public sl_<letter> symbols may be exported from the shared library; sl__ stays hidden.
bad=$(nm -D --defined-only "$so" | awk 'NF >= 3 { print $3 }' | grep -vE '^sl_[a-z]' || true)
if [ -n "$bad" ]; then
    echo "lint: $so exports symbols other than sl_[a-z]*:" >&2
    echo "$bad" | sed 's/^/    /' >&2
    fail=1
fi

[ $fail -eq 0 ] && echo "lint: ok"
exit $fail
