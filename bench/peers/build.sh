#!/usr/bin/env bash
# Builds the benchmark peers into OUTDIR:
#   OUTDIR/axbench_caf      CAF 0.17 (g++, Debian libcaf-dev)
#   OUTDIR/axbench_go       Go (go build, offline, no modules)
#   OUTDIR/axbench.beam     Erlang module (erlc) and
#   OUTDIR/axbench_erlang   a wrapper: erl -noshell +S <cores>:<cores> +P 4194304 -pa OUTDIR
#                           -s axbench main NAME PARAMS...; the remote workloads
#                           (remote_pingpong, remote_bulk, node_down) run
#                           OUTDIR/axbench_dist.beam on two distributed nodes
#   OUTDIR/axbench_tcp      plain TCP between two processes (cc), remote workloads only
# A peer whose toolchain is missing is skipped with a message. Exits 0 when
# at least one peer built, 1 otherwise.
# Toolchains on Debian 12: apt-get install libcaf-dev g++ erlang golang-go gcc
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
  if "$cxx" -O2 -std=c++17 -pthread -o "$out/axbench_caf" "$here/caf/axbench_caf.cpp" \
    "$here/caf/axbench_caf_remote.cpp" -lcaf_io -lcaf_core; then
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
  if erlc -o "$out" "$here/erlang/axbench.erl" "$here/erlang/axbench_dist.erl"; then
    cat >"$out/axbench_erlang" <<EOF
#!/bin/sh
# Runs the Erlang peer: one scheduler per core (+S N:N); +P raises the
# process limit (default 262144) for the 1M-process workloads.
n=\$(nproc 2>/dev/null || echo 2)
case "\$1" in
  remote_pingpong | remote_bulk | node_down) ;;
  *) exec erl -noshell +S "\$n:\$n" +P 4194304 -pa "$out" -s axbench main "\$@" ;;
esac
# Remote workloads: this node (-name <tag>a@127.0.0.1) starts the echo
# node(s) itself (axbench_dist.erl). epmd is started here when none runs
# and then killed at the end; echo nodes still alive at the end (listed in
# the pid file, recognised by the run's tag in their command line) are
# killed.
tag=axb\$\$
pidfile=\$(mktemp "\${TMPDIR:-/tmp}/axbench-erl.XXXXXX") || exit 1
started_epmd=0
cleanup() {
  for p in \$(cat "\$pidfile" 2>/dev/null); do
    { tr '\\0' ' ' <"/proc/\$p/cmdline"; } 2>/dev/null | grep -q -- "-name \${tag}b" && kill -9 "\$p" 2>/dev/null
  done
  rm -f "\$pidfile"
  if [ \$started_epmd = 1 ]; then
    i=0
    while epmd -names 2>/dev/null | grep -q "name \$tag" && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i + 1)); done
    epmd -kill >/dev/null 2>&1
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP
if ! epmd -names >/dev/null 2>&1; then
  epmd -daemon || exit 1
  started_epmd=1
  i=0
  until epmd -names >/dev/null 2>&1; do
    [ \$i -ge 50 ] && { echo "axbench_erlang: epmd did not start" >&2; exit 1; }
    sleep 0.1; i=\$((i + 1))
  done
fi
cookie=\$tag\$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
AXB_TAG=\$tag AXB_PIDFILE=\$pidfile erl -noshell -name "\${tag}a@127.0.0.1" -setcookie "\$cookie" \\
  +S "\$n:\$n" -pa "$out" -s axbench_dist main "\$@"
rc=\$?
exit \$rc
EOF
    chmod +x "$out/axbench_erlang"
    built+=(erlang)
  else
    echo "build.sh: erlang build FAILED" >&2
    skipped+=(erlang)
  fi
fi

# --- plain TCP ----------------------------------------------------------------
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build.sh: skipping tcp: no C compiler ($cc); apt-get install gcc" >&2
  skipped+=(tcp)
else
  echo "build.sh: building tcp -> $out/axbench_tcp"
  if "$cc" -O2 -std=gnu11 -o "$out/axbench_tcp" "$here/tcp/axbench_tcp.c"; then
    built+=(tcp)
  else
    echo "build.sh: tcp build FAILED" >&2
    skipped+=(tcp)
  fi
fi

echo "build.sh: built: ${built[*]:-none}; skipped: ${skipped[*]:-none}"
[ ${#built[@]} -gt 0 ]
