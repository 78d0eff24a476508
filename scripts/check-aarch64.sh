#!/usr/bin/env bash
# Cross-builds the library and the core test programs for aarch64 and runs every case under
# qemu-user, to exercise the aarch64 context switch (src/coro/ctx_aarch64.S) on an x86 host.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh aarch64
b=build/aarch64
# The cross gcc's -Wmaybe-uninitialized flags the wait context's fields that a wait without a
# deadline never sets nor reads (core/park.h, sl__wait_ctx_t), which the x86-64 gcc does not:
# a warning there, not an error; every other warning stays an error.
cmake -S . -B "$b" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
    -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS=-Wno-error=maybe-uninitialized \
    -DCMAKE_EXE_LINKER_FLAGS=-static -DSLUICE_WERROR=ON >/dev/null
tests=(test_task test_select test_time test_runtime)
cmake --build "$b" -j"$(nproc)" --target "${tests[@]}"
pass=0 fail=0
for t in "${tests[@]}"; do
    for c in $(qemu-aarch64 "$b/test/$t"); do
        # qemu-user accepts MADV_GUARD_INSTALL without installing a guard page, so an
        # overflow there runs into the neighbouring mapping (SIGSEGV, not the report): not a
        # test of our code.
        case "$t.$c" in
        test_runtime.stack_overflow_names_task | test_runtime.stack_overflow_in_a_run_names_task | \
            test_runtime.stack_overflow_on_a_pooled_stack_names_task)
            continue
            ;;
        esac
        # qemu-user maps guest memory inside the range it reserved at start, so a lowered
        # RLIMIT_AS never makes a guest mmap fail: the case cannot provoke its failure here.
        [ "$t.$c" = test_task.stack_map_failure_panics_the_task ] && continue
        rc=0
        SLUICE_TEST_SCALE=5 timeout 300 qemu-aarch64 "$b/test/$t" "$c" >"$b/$t.$c.log" 2>&1 || rc=$?
        if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "FAIL $t.$c (exit $rc)"
            tail -5 "$b/$t.$c.log"
        fi
    done
done
echo "aarch64: $pass passed, $fail failed"
[ $fail -eq 0 ]
