#!/usr/bin/env bash
# Install a build tree into a scratch prefix, then build test/install/hello.c against the
# installed copy with pkg-config, statically and against the shared library, and run both.
# Usage: test/install/run.sh <build-dir> <scratch-dir>
set -euo pipefail

build=$1
tmp=$2
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}

rm -rf "$tmp"
mkdir -p "$tmp"
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"

pc=$(find "$prefix" -name sluice.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || { echo "sluice.pc was not installed" >&2; cat "$tmp/install.log" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_LIBDIR=$PKG_CONFIG_PATH # never pick up a system-wide sluice.pc
libdir=$(pkg-config --variable=libdir sluice)
for f in libsluice.a libsluice.so libsluice.so.0 "$(pkg-config --variable=includedir sluice)/sluice.h"; do
    case $f in /*) p=$f ;; *) p=$libdir/$f ;; esac
    [ -e "$p" ] || { echo "missing after install: $p" >&2; exit 1; }
done

cflags=$(pkg-config --cflags sluice)
libs=$(pkg-config --libs sluice)
private=$(pkg-config --static --libs-only-l sluice | sed 's/-lsluice//')
set -x
# shellcheck disable=SC2086
"$cc" -std=gnu11 -Wall -Wextra -Werror -o "$tmp/hello-shared" "$here/hello.c" $cflags $libs
# shellcheck disable=SC2086
"$cc" -std=gnu11 -Wall -Wextra -Werror -o "$tmp/hello-static" "$here/hello.c" $cflags \
    -Wl,-Bstatic $libs -Wl,-Bdynamic $private
{ set +x; } 2>/dev/null

if readelf -d "$tmp/hello-static" | grep -q 'NEEDED.*libsluice'; then
    echo "hello-static depends on libsluice.so" >&2
    exit 1
fi
readelf -d "$tmp/hello-shared" | grep -q 'NEEDED.*libsluice\.so\.0' ||
    { echo "hello-shared does not link libsluice.so.0" >&2; exit 1; }

"$tmp/hello-static" >"$tmp/static.out"
LD_LIBRARY_PATH=$libdir "$tmp/hello-shared" >"$tmp/shared.out"
cat "$tmp/static.out"
cmp "$tmp/static.out" "$tmp/shared.out" ||
    { echo "static and shared builds print different output" >&2; exit 1; }
[ "$(tail -n 1 "$tmp/static.out")" = "hello from sluice: ok" ] ||
    { echo "unexpected output from hello" >&2; exit 1; }
rm -rf "$tmp"
echo "install test passed"
