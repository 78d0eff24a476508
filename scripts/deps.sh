#!/usr/bin/env bash
# Make sure the Debian packages sluice needs are installed. Fast (one dpkg-query) when they
# are; otherwise installs the missing ones as root (or with `sudo -n`), or names them and fails.
# Usage: scripts/deps.sh [group...]   groups beyond the base set: debug, aarch64
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang clang-format clang-tidy libclang-rt-14-dev
      valgrind libsqlite3-dev sqlite3 python3)
for group in "$@"; do
    case $group in
    base) ;;
    debug) pkgs+=(gdb strace) ;;
    aarch64) pkgs+=(gcc-aarch64-linux-gnu qemu-user libc6-dev-arm64-cross) ;;
    *) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
    esac
done

command -v dpkg-query >/dev/null || { echo "deps.sh: not a Debian system; need: ${pkgs[*]}" >&2; exit 1; }

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
