#!/usr/bin/env bash
# Builds the benchmark peers into OUTDIR:
#   OUTDIR/axbench_caf      CAF 0.17 (g++, Debian libcaf-dev)
#   OUTDIR/axbench_go       Go (go build, offline, no modules)
#   OUTDIR/axbench.beam     Erlang module (erlc) and
#   OUTDIR/axbench_erlang   a wrapper: erl -noshell +S <cores>:<cores> +P 4194304 -pa OUTDIR
#                           -s axbench main NAME PARAMS...
# A peer whose toolchain is missing is skipped with a message. Exits 0 when
# at least one peer built, 1 otherwise.
# Toolchains on Debian 12: apt-get install libcaf-dev g++ erlang golang-go
set -u

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1" || exit 1
out=$(cd "$1" && pwd)
built=()
skipped=()

# --- CAF --------------------------------------------------------------------
cxx=${CXX:-g++}
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "build.sh: skipping caf: no C++ compiler ($cxx); apt-get install g++" >&2
  skipped+=(caf)
elif [ ! -f /usr/include/caf/all.hpp ] && ! echo '#include <caf/all.hpp>' | "$cxx" -std=c++17 -E -x c++ - >/dev/null 2>&1; then
  echo "build.sh: skipping caf: CAF headers not found; apt-get install libcaf-dev" >&2
  skipped+=(caf)
else
  echo "build.sh: building caf -> $out/axbench_caf"
  if "$cxx" -O2 -std=c++17 -pthread -o "$out/axbench_caf" "$here/caf/axbench_caf.cpp" -lcaf_core; then
    built+=(caf)
  else
    echo "build.sh: caf build FAILED" >&2
    skipped+=(caf)
  fi
fi

# --- Go ---------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: skipping go: no go toolchain; apt-get install golang-go" >&2
  skipped+=(go)
else
  echo "build.sh: building go -> $out/axbench_go"
  gotmp=${TMPDIR:-/tmp}/axbench-go
  mkdir -p "$gotmp"
  if (cd "$here/go" &&
      GO111MODULE=off GOFLAGS='' GOPROXY=off \
      GOCACHE="${GOCACHE:-$gotmp/cache}" GOPATH="${GOPATH:-$gotmp/path}" \
      go build -o "$out/axbench_go" main.go); then
    built+=(go)
  else
    echo "build.sh: go build FAILED" >&2
    skipped+=(go)
  fi
fi

# --- Erlang -----------------------------------------------------------------
if ! command -v erlc >/dev/null 2>&1 || ! command -v erl >/dev/null 2>&1; then
  echo "build.sh: skipping erlang: no erlc/erl; apt-get install erlang" >&2
  skipped+=(erlang)
else
  echo "build.sh: building erlang -> $out/axbench.beam, $out/axbench_erlang"
  if erlc -o "$out" "$here/erlang/axbench.erl"; then
    cat >"$out/axbench_erlang" <<EOF
#!/bin/sh
# Runs the Erlang peer: one scheduler per core (+S N:N); +P raises the
# process limit (default 262144) for the 1M-process workloads.
n=\$(nproc 2>/dev/null || echo 2)
exec erl -noshell +S "\$n:\$n" +P 4194304 -pa "$out" -s axbench main "\$@"
EOF
    chmod +x "$out/axbench_erlang"
    built+=(erlang)
  else
    echo "build.sh: erlang build FAILED" >&2
    skipped+=(erlang)
  fi
fi

echo "build.sh: built: ${built[*]:-none}; skipped: ${skipped[*]:-none}"
[ ${#built[@]} -gt 0 ]
