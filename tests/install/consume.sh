#!/usr/bin/env bash
# install.consume: install the build into a fresh prefix, then build the
# out-of-tree program in consumer/ against it with find_package(axon)
# (axon::axon and axon::axon_static) and with pkg-config (shared, and
# static with --static), and run each. Under a sanitizer the library's
# objects need the sanitizer runtime, so every consumer is compiled and
# linked with the same -fsanitize flags (SAN_FLAGS), as any program using a
# sanitizer build of Axon must be.
# Usage: consume.sh BUILD_DIR WORK_DIR CMAKE CC PKG_CONFIG VERSION SOVERSION "SAN_FLAGS"
set -euo pipefail
build=$1 work=$2 cmake=$3 cc=$4 pkgconfig=$5 version=$6 soversion=$7 san=$8
src=$(cd "$(dirname "$0")" && pwd)/consumer
prefix=$work/prefix
fail() { echo "install.consume: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

rm -rf "$work"
mkdir -p "$work"
step "cmake --install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }

pc=$(find "$prefix" -name axon.pc 2>/dev/null || true)
[ -n "$pc" ] || fail "no axon.pc under $prefix"
export PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
[ "$("$pkgconfig" --modversion axon)" = "$version" ] || fail "pkg-config --modversion axon is not $version"
libdir=$("$pkgconfig" --variable=libdir axon)
for f in axon.h axon/version.h; do [ -f "$prefix/include/$f" ] || fail "no include/$f"; done
for f in libaxon.a libaxon.so "libaxon.so.$soversion" "libaxon.so.$version" \
         cmake/axon/axonConfig.cmake cmake/axon/axonConfigVersion.cmake; do
  [ -e "$libdir/$f" ] || fail "no $libdir/$f"
done
soname=$(objdump -p "$libdir/libaxon.so" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = "libaxon.so.$soversion" ] || fail "SONAME is '$soname', want libaxon.so.$soversion"
# (ASan adds one __odr_asan.<name> marker per exported global.)
extra=$(nm -D --defined-only "$libdir/libaxon.so" | awk '{print $3}' | grep -v -e '^ax_' -e '^__odr_asan[._]' || true)
[ -z "$extra" ] || fail "libaxon.so exports non-ax_ symbols: $extra"

needed() { objdump -p "$1" | awk '$1 == "NEEDED" {print $2}'; }
needs_axon() { [[ $(needed "$1") == *libaxon.so* ]]; }
run() { # run NAME BINARY: the program must say "consumer ok"
  local out
  out=$("$2" 2>&1) || fail "$1 exited with $?: $out"
  case $out in *"consumer ok"*) echo "$1: $out" ;; *) fail "$1 said: $out" ;; esac
}

step "find_package(axon): axon::axon and axon::axon_static"
"$cmake" -S "$src" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
  >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "configuring the consumer"; }
"$cmake" --build "$work/cmake" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "building the consumer"; }
needs_axon "$work/cmake/consumer_shared" || fail "consumer_shared does not load libaxon.so"
needs_axon "$work/cmake/consumer_static" && fail "consumer_static loads libaxon.so"
run "find_package shared" "$work/cmake/consumer_shared"
run "find_package static" "$work/cmake/consumer_static"

step "pkg-config --cflags --libs axon"
def=-DAX_EXPECTED_VERSION=\"$version\"
# shellcheck disable=SC2046,SC2086
"$cc" $san "$def" "$src/main.c" -o "$work/pc_shared" $("$pkgconfig" --cflags --libs axon) \
  -Wl,-rpath,"$libdir" || fail "pkg-config shared build"
needs_axon "$work/pc_shared" || fail "pc_shared does not load libaxon.so"
run "pkg-config shared" "$work/pc_shared"

step "pkg-config --static: libaxon.a with the .pc's private dependencies"
# Both libaxon.a and libaxon.so sit in libdir and -laxon prefers the .so, so
# this names the archive; the rest of the line is the .pc's static one.
# shellcheck disable=SC2046,SC2086
"$cc" $san "$def" "$src/main.c" -o "$work/pc_static" $("$pkgconfig" --static --cflags --libs axon \
  | sed 's/-laxon\b/-l:libaxon.a/') || fail "pkg-config --static build"
needs_axon "$work/pc_static" && fail "pc_static loads libaxon.so"
run "pkg-config static" "$work/pc_static"

if [ -z "$san" ]; then
  step "pkg-config --static with cc -static: a fully static program"
  # shellcheck disable=SC2046
  "$cc" -static "$def" "$src/main.c" -o "$work/pc_full_static" \
    $("$pkgconfig" --static --cflags --libs axon) || fail "cc -static build"
  [ -z "$(needed "$work/pc_full_static")" ] || fail "pc_full_static needs shared libraries"
  run "pkg-config fully static" "$work/pc_full_static"
else
  echo "== skipped: cc -static (a sanitizer runtime cannot be linked into a fully static program)"
fi
echo "install.consume: ok"
