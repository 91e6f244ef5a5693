#!/bin/sh
# make install into a temporary prefix, build an example with nothing but
# pkg-config, run it against the emulator (shared and static link), then
# make uninstall and check that nothing is left; and a DESTDIR staging
# install lands under DESTDIR.
set -eu
B=${B:-build}
top=$(pwd)
tmp=$(mktemp -d /tmp/llmr-install-XXXXXX)
emu_pid=
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
prefix=$tmp/x

make --no-print-directory -s B="$B" install PREFIX="$prefix" >/dev/null
for f in lib/libllmroute.a lib/libllmroute.so lib/libllmroute.so.0 \
         include/llmroute.h include/llmroute/provider.h \
         lib/pkgconfig/llmroute.pc bin/llmroute share/man/man3/llmr_complete.3; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cflags=$(pkg-config --cflags llmroute)
libs=$(pkg-config --libs llmroute)
# libllmroute.a with the shared libcurl/cJSON/mbedcrypto (Debian ships no
# static libcurl dependency chain, so `pkg-config --static` cannot link here)
static_libs="$(pkg-config --libs-only-other --libs libcurl libcjson) -lmbedcrypto -lpthread -lm"
echo "pkg-config: $cflags $libs"
cc $cflags examples/sync.c -o "$tmp/sync" $libs
cc $cflags examples/sync.c -o "$tmp/sync-static" "$prefix/lib/libllmroute.a" $static_libs

python3 tests/mock/emulator.py --port 0 --quiet --port-file "$tmp/port" >/dev/null &
emu_pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$tmp/port")

export OPENAI_API_KEY=sk-install-test LLMR_OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
out=$(LD_LIBRARY_PATH="$prefix/lib" "$tmp/sync" "ping")
echo "$out"
echo "$out" | grep -q "Hello from gpt-4o-mini!" || { echo "shared build: wrong answer"; exit 1; }
# the dynamic loader really took the installed library
LD_LIBRARY_PATH="$prefix/lib" ldd "$tmp/sync" | grep -q "$prefix/lib/libllmroute.so.0" || {
  echo "sync is not linked against the installed libllmroute.so.0"; exit 1; }
out=$("$tmp/sync-static" "ping")
echo "$out" | grep -q "Hello from gpt-4o-mini!" || { echo "static build: wrong answer"; exit 1; }

make --no-print-directory -s B="$B" uninstall PREFIX="$prefix" >/dev/null
left=$(find "$prefix" -type f -o -type l)
[ -z "$left" ] || { echo "left after uninstall:"; echo "$left"; exit 1; }

make --no-print-directory -s B="$B" install PREFIX=/opt/llmr DESTDIR="$tmp/stage" >/dev/null
[ -e "$tmp/stage/opt/llmr/lib/libllmroute.so.0" ] || { echo "DESTDIR install missing"; exit 1; }
grep -q '^prefix=/opt/llmr$' "$tmp/stage/opt/llmr/lib/pkgconfig/llmroute.pc" || {
  echo "llmroute.pc does not name the PREFIX"; exit 1; }
echo "install, pkg-config build (shared + static), uninstall, DESTDIR: ok"
