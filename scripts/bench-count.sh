#!/bin/sh
# Instructions per operation of each sluice-bench workload, counted by callgrind: the number to
# hold against the last session's table in docs/perf.md ("What changed", session 21) before
# timing anything. A count that grew with no change meant to grow it is a path gone wrong; on a
# shared VM, time alone hides that (mpsc_unbounded ran every receive through its lock for five
# sessions).
#
# Usage: scripts/bench-count.sh [WORKLOAD...]   (after `make bench`; default: every workload
# but idle_tasks, which measures memory in child processes)
# Environment: SCALE (default 0.2; spawn_join and gateway_inproc use SCALE_SLOW, default 0.01),
# BENCH (the binary, default build/bench/sluice-bench).
#
# Every workload runs on one worker (SLUICE_BENCH_WORKERS=1): callgrind runs one thread at a
# time anyway, and a second worker's idle spin would add a different number of instructions to
# every run. Counts include each run's warm-up and setup: compare like with like (same scale).
set -eu

BENCH=${BENCH:-build/bench/sluice-bench}
SCALE=${SCALE:-0.2}
SCALE_SLOW=${SCALE_SLOW:-0.01}

if ! command -v valgrind >/dev/null 2>&1; then
    echo "bench-count: valgrind is not installed (make deps installs it)" >&2
    exit 2
fi
if [ ! -x "$BENCH" ]; then
    echo "bench-count: $BENCH not found: run 'make bench' first (or set BENCH)" >&2
    exit 2
fi

if [ $# -eq 0 ]; then
    set -- $("$BENCH" --list | grep -v '^idle_tasks$')
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf '%-18s %8s %14s %12s\n' workload scale instructions 'per op'
for w in "$@"; do
    case "$w" in
    idle_tasks)
        echo "bench-count: idle_tasks is counted in child processes; skipped" >&2
        continue
        ;;
    spawn_join | gateway_inproc) s=$SCALE_SLOW ;;
    *) s=$SCALE ;;
    esac
    if ! SLUICE_BENCH_STATS=1 SLUICE_BENCH_WORKERS=1 valgrind --tool=callgrind \
        --callgrind-out-file="$tmp/cg.out" "$BENCH" --scale "$s" --check "$w" \
        >"$tmp/out" 2>"$tmp/err"; then
        echo "bench-count: $w failed under callgrind:" >&2
        grep -v "^==" "$tmp/err" | tail -5 >&2
        exit 1
    fi
    ir=$(sed -n 's/.*I *refs: *//p' "$tmp/err" | tr -d ,)
    ops=$(sed -n 's/^# [a-z_0-9]*: ops \([0-9]*\) .*/\1/p' "$tmp/err" | awk '{n += $1} END {print n + 0}')
    if [ -z "$ir" ] || [ "$ops" -eq 0 ]; then
        echo "bench-count: $w: no count (callgrind or SLUICE_BENCH_STATS output changed?)" >&2
        exit 1
    fi
    awk -v w="$w" -v s="$s" -v ir="$ir" -v ops="$ops" \
        'BEGIN { printf "%-18s %8s %14d %12.1f\n", w, s, ir, ir / ops }'
done
