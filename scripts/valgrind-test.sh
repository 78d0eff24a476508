#!/usr/bin/env bash
# Runs one test command under valgrind; the valgrind preset puts it in front of every test
# (SLUICE_TEST_WRAPPER). Suppressions, if any, live in scripts/valgrind.supp.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
supp=()
[ -f "$here/valgrind.supp" ] && supp=(--suppressions="$here/valgrind.supp")
exec valgrind --fair-sched=yes --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q \
    "${supp[@]}" "$@"
