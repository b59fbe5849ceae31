#!/usr/bin/env bash
# Echo against raw epoll, measured as a user would: each server in its own
# process (Axon's echo server and bench/peers/epoll_echo.c, both from
# `axon_bench echo serve`), the same load client (`axon_bench echo client`)
# in a third process, runs interleaved server by server. Prints the median
# msgs/s, p50 and p99 of each, and the ratios axon/epoll.
#   bench/echo_bench.sh [BIN [BASE_BIN]]   BIN: axon_bench (default
#   build/bench/axon_bench); BASE_BIN: another build's axon_bench whose Axon
#   server runs too, interleaved with the others (before/after comparisons).
# RUNS (default 5), SHAPES ("conns:size:window:msgs ..."), PERF=1 also
# counts the Axon server's context switches, epoll_wait and futex calls
# over all its runs with perf stat; AXON_BENCH_WORKERS passes through.
set -euo pipefail
BIN=${1:-build/bench/axon_bench}
BASE_BIN=${2:-}
IMPLS="axon epoll"
[ -n "$BASE_BIN" ] && IMPLS="base axon epoll"
RUNS=${RUNS:-5}
SHAPES=${SHAPES:-"50:64:16:1000000 1:64:1:40000 50:4096:4:400000"}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# start NAME: runs a server (stdin: a fifo this script holds open, so the
# server ends when the script does); sets port_NAME and pid_NAME.
start() {
  mkfifo "$tmp/$1.in"
  local bin=$BIN kind=$1
  [ "$1" = base ] && bin=$BASE_BIN kind=axon
  "$bin" echo serve "$kind" 0 <"$tmp/$1.in" >"$tmp/$1.out" &
  pids+=($!)
  eval "pid_$1=$!"
  eval "exec {fd_$1}>$tmp/$1.in"
  for _ in $(seq 100); do grep -q PORT "$tmp/$1.out" 2>/dev/null && break; sleep 0.1; done
  eval "port_$1=$(awk '/PORT/{print $2}' "$tmp/$1.out")"
}
for impl in $IMPLS; do start "$impl"; done
axon_pid=$pid_axon
for impl in $IMPLS; do
  port_var=port_$impl
  [ -n "${!port_var:-}" ] || { echo "echo_bench: the $impl server did not start" >&2; exit 1; }
done

perf_pids=()
if [ "${PERF:-0}" = 1 ]; then
  for impl in $IMPLS; do
    [ "$impl" = epoll ] && continue
    pid_var=pid_$impl
    perf stat -e context-switches,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,task-clock \
      -p "${!pid_var}" -o "$tmp/perf.$impl" &
    perf_pids+=($!)
    pids+=($!)
  done
  sleep 0.5
fi

med() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1==k{print $2}'; }
for shape in $SHAPES; do
  IFS=: read -r c s w n <<<"$shape"
  for impl in $IMPLS; do : >"$tmp/$impl.r"; done
  for _ in $(seq "$RUNS"); do
    for impl in $IMPLS; do
      port_var=port_$impl
      "$BIN" echo client "127.0.0.1:${!port_var}" "$c" "$s" "$w" "$n" >>"$tmp/$impl.r"
    done
  done
  for impl in $IMPLS; do
    rate=$(awk '{print $6}' "$tmp/$impl.r" | med)
    p50=$(field p50_us <"$tmp/$impl.r" | med)
    p99=$(field p99_us <"$tmp/$impl.r" | med)
    eval "${impl}_rate=$rate ${impl}_p50=$p50 ${impl}_p99=$p99"
    echo "RESULT echo_ext $impl c=$c s=$s w=$w msgs_s=$rate p50_us=$p50 p99_us=$p99 runs=$RUNS"
  done
  awk -v a="$axon_rate" -v e="$epoll_rate" -v pa="$axon_p99" -v pe="$epoll_p99" -v c="$c" -v s="$s" -v w="$w" \
    'BEGIN{printf "RATIO echo_ext c=%s s=%s w=%s throughput axon/epoll=%.2fx p99 axon/epoll=%.2fx\n", c, s, w, a/e, pa/pe}'
  if [ -n "$BASE_BIN" ]; then
    awk -v a="$axon_rate" -v b="$base_rate" -v pa="$axon_p99" -v pb="$base_p99" -v e="$epoll_rate" \
      -v c="$c" -v s="$s" -v w="$w" 'BEGIN{printf "RATIO echo_ext c=%s s=%s w=%s throughput axon/base=%.2fx base/epoll=%.2fx p99 axon/base=%.2fx\n", c, s, w, a/b, b/e, pa/pb}'
  fi
done
if [ "${PERF:-0}" = 1 ]; then
  for p in "${perf_pids[@]}"; do kill -INT "$p"; wait "$p" 2>/dev/null || true; done
  for impl in $IMPLS; do
    [ "$impl" = epoll ] && continue
    grep -E "context|epoll|futex|task-clock" "$tmp/perf.$impl" | sed "s/^/PERF $impl server: /"
  done
fi
