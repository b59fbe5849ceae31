#!/usr/bin/env bash
# Runs the Savina-style benchmark suite on Axon and its peers (CAF, Erlang,
# Go) and the remote (two-process) workloads on Axon, CAF's io middleman,
# Erlang distribution and plain TCP, and prints one markdown table of
# medians; the table is also written to bench/results/latest.md.
#
# usage: bench/run.sh [WORKLOAD...]
#   default workloads: pingpong pingpong_x count fjthrput fjcreate
#                      fjcreate_inactor threadring chameneos big footprint
#                      latency latency_x timers
#                      remote_pingpong remote_pingpong.w100 remote_bulk node_down
#   groups: local (the single-process ones), remote (the last four)
#   A row is NAME or NAME.VARIANT: the same workload NAME with other
#   parameters (remote_pingpong.w100: window 100); the programs are called
#   with NAME only.
# env:
#   RUNS=5            runs per workload and implementation (interleaved:
#                     axon, caf, erlang, go, axon, ...)
#   BUILD=build       the CMake build dir (relative paths are taken from the
#                     repository root); Axon's binary is $BUILD/bench/axon_bench
#   PEERS_OUT=$BUILD/bench/peers
#                     where bench/peers/build.sh put the peers; built there
#                     if none is found
#   IMPLS="axon axon1 caf erlang go tcp"   implementations to run (tcp: the
#                     plain TCP limit, remote workloads only; axon1: Axon's
#                     binary with AXON_BENCH_WORKERS=1, one worker, on the
#                     Savina throughput rows, so that every two-worker run
#                     has a one-worker run next to it in time: the per-run
#                     ratios are printed under the table)
#   TIMEOUT=300       seconds allowed per run (then the run counts as FAILED)
#   PARAMS_<row>="..."  override a row's parameters ('.' in the row name
#                     becomes '_'), e.g. PARAMS_pingpong="300000"
#                     PARAMS_big="120 5000" PARAMS_remote_pingpong_w100="100 200000"
#   DETECT=0          1: node_down also measures detection of a SIGSTOPped
#                     node (Erlang: 45-75 s per run with the default
#                     net_ticktime); passed to the programs in the environment
#   WAIT_IDLE=0       1: before each run wait (up to 120 s) until the CPUs are
#                     >= 95% idle, for shared machines
#
# A workload an implementation does not have is shown as "–": Axon's set is
# what `axon_bench list` prints; CAF alone has fjcreate_inactor; the peers
# have no timers; Go has no remote workloads; tcp has only those. A metric
# that a program does not measure (e.g. node_down's sigstop_ms without
# DETECT=1, or by the peers without heartbeats) is shown as "–".
# Remote workloads (see bench/peers/README.md, "Remote workloads"): every
# program starts its second process (node) itself and kills it on exit.
#
# Every implementation prints one line
#   RESULT <name> <impl> <wall_seconds> <ops> <ops_per_second> <unit>[ key=value...]
# A run that exits non-zero, times out or prints no matching RESULT line is
# FAILED and never contributes a number; a cell with any failed run shows
# FAILED.
set -u
set -o pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

RUNS=${RUNS:-5}
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
PEERS_OUT=${PEERS_OUT:-$BUILD/bench/peers}
case "$PEERS_OUT" in /*) ;; *) PEERS_OUT="$root/$PEERS_OUT" ;; esac
IMPLS=${IMPLS:-axon axon1 caf erlang go tcp}
TIMEOUT=${TIMEOUT:-300}
WAIT_IDLE=${WAIT_IDLE:-0}

case "$RUNS" in '' | *[!0-9]* | 0) echo "run.sh: RUNS must be a positive integer" >&2; exit 2 ;; esac

local_workloads="pingpong pingpong_x count fjthrput fjcreate fjcreate_inactor threadring chameneos big footprint latency latency_x timers"
remote_workloads="remote_pingpong remote_pingpong.w100 remote_bulk node_down"
if [ $# -gt 0 ]; then workloads="$*"; else workloads="$local_workloads $remote_workloads"; fi
workloads=$(echo " $workloads " | sed -e "s/ local / $local_workloads /g" -e "s/ remote / $remote_workloads /g")

# The workload a row runs: NAME of NAME.VARIANT.
base_of() { echo "${1%%.*}"; }

# Default parameters (the binaries have the same defaults; they are passed
# explicitly so the table says what ran). timers: the Axon binary's defaults.
# fjcreate_inactor is quadratic in CAF 0.17 (see bench/peers/README.md):
# 1M actors would take ~10 min, so its row uses 100k.
default_params() {
  case "$1" in
    pingpong) echo "3000000" ;;
    pingpong_x) echo "4 200000" ;;
    count) echo "15000000" ;;
    fjthrput) echo "60 200000" ;;
    fjcreate) echo "1000000" ;;
    fjcreate_inactor) echo "100000" ;;
    threadring) echo "503 10000000" ;;
    chameneos) echo "100 2000000" ;;
    big) echo "120 50000" ;;
    footprint) echo "1000000" ;;
    latency) echo "1000000" ;;
    latency_x) echo "100000" ;;
    remote_pingpong) echo "1 100000" ;;
    remote_pingpong.w100) echo "100 1000000" ;;
    remote_bulk) echo "1000" ;;
    node_down) echo "5" ;;
    *) echo "" ;;
  esac
}

params_for() { # row
  local var="PARAMS_${1//./_}"
  if [ -n "${!var+x}" ]; then echo "${!var}"; else default_params "$1"; fi
}

# Which implementation runs which workload ("–" in the table otherwise).
# Axon's binary is asked (`axon_bench list`); if it cannot say, Axon is
# assumed to run everything but fjcreate_inactor and the remote workloads.
axon_list=""
supports() { # impl row
  local w
  w=$(base_of "$2")
  if [ "$1" = axon1 ]; then
    case "$w" in
      pingpong | count | fjthrput | fjcreate | threadring | chameneos | big) supports axon "$2" ;;
      *) return 1 ;;
    esac
    return
  fi
  if [ "$1" = axon ] && [ -n "$axon_list" ]; then
    case " $axon_list " in *" $w "*) return 0 ;; *) return 1 ;; esac
  fi
  case "$w" in
    timers) [ "$1" = axon ] ;;
    fjcreate_inactor) [ "$1" = caf ] ;;
    pingpong | pingpong_x | count | fjthrput | fjcreate | threadring | chameneos | big | footprint | latency | latency_x)
      [ "$1" != tcp ] ;;
    remote_pingpong | remote_bulk | node_down)
      [ "$1" = caf ] || [ "$1" = erlang ] || [ "$1" = tcp ] ;;
    *) [ "$1" = axon ] ;; # unknown names: only Axon may have them
  esac
}

binary_of() {
  case "$1" in
    axon | axon1) echo "$BUILD/bench/axon_bench" ;;
    caf) echo "$PEERS_OUT/axbench_caf" ;;
    erlang) echo "$PEERS_OUT/axbench_erlang" ;;
    go) echo "$PEERS_OUT/axbench_go" ;;
    tcp) echo "$PEERS_OUT/axbench_tcp" ;;
    *) echo "/nonexistent/$1" ;;
  esac
}

# Build the peers if one is missing or older than any file under
# bench/peers (a stale binary answers "unknown workload" to a newer row).
need_peers=0
for impl in $IMPLS; do
  case "$impl" in axon | axon1) continue ;; esac
  b=$(binary_of "$impl")
  if [ ! -x "$b" ] || [ -n "$(find "$root/bench/peers" -type f -newer "$b" -print -quit)" ]; then
    need_peers=1
  fi
done
if [ $need_peers = 1 ]; then
  echo "run.sh: building peers into $PEERS_OUT" >&2
  bash "$root/bench/peers/build.sh" "$PEERS_OUT" >&2 || echo "run.sh: no peer could be built" >&2
fi
if [ -x "$(binary_of axon)" ]; then
  axon_list=$(timeout 20 "$(binary_of axon)" list 2>/dev/null | tr '\n' ' ') || axon_list=""
  case "$axon_list" in *[!a-z0-9_\ ]*) axon_list="" ;; esac
fi
if [ ! -x "$(binary_of axon)" ]; then
  echo "run.sh: warning: $(binary_of axon) not found (build Axon first); its cells will show 'missing'" >&2
fi

wait_idle() {
  [ "$WAIT_IDLE" = 1 ] || return 0
  local a b c d idle1 tot1 idle2 tot2
  for _ in $(seq 120); do
    read -r _ a b c d _ </proc/stat; idle1=$d; tot1=$((a + b + c + d))
    sleep 1
    read -r _ a b c d _ </proc/stat; idle2=$d; tot2=$((a + b + c + d))
    [ $((100 * (idle2 - idle1))) -ge $((95 * (tot2 - tot1 + 1))) ] && return 0
  done
  echo "run.sh: warning: CPUs still busy after 120 s, running anyway" >&2
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/axbench-run.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
raw="$tmp/raw.txt"
: >"$raw"

# One run: records either the RESULT fields or FAILED in $tmp/<row>.<impl>.
run_one() { # row impl run
  local w=$1 impl=$2 r=$3 bin params out rc line name tag=$2 workers=${AXON_BENCH_WORKERS:-}
  bin=$(binary_of "$impl")
  # axon1: Axon's binary on one worker; its RESULT lines say "axon"
  [ "$impl" = axon1 ] && tag=axon && workers=1
  params=$(params_for "$w")
  name=$(base_of "$w")
  out="$tmp/out.$w.$impl.$r"
  if [ ! -x "$bin" ]; then
    echo "FAILED missing binary" >>"$tmp/$w.$impl"
    echo "$w $impl run $r: FAILED (missing $bin)" >&2
    echo "# $w $impl run $r: FAILED (missing binary)" >>"$raw"
    return
  fi
  wait_idle
  # shellcheck disable=SC2086  # params are words on purpose
  # (AXON_BENCH_WORKERS only when set: the peers never see it, empty)
  env ${workers:+AXON_BENCH_WORKERS=$workers} timeout -k 10 "$TIMEOUT" "$bin" "$name" $params >"$out" 2>"$out.err"
  rc=$?
  line=$(grep -E "^RESULT $name $tag " "$out" | tail -n 1)
  [ "$impl" = axon1 ] && line=${line/ axon / axon1 }
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    local why="exit $rc"
    [ $rc = 124 ] && why="timeout ${TIMEOUT}s"
    [ $rc = 0 ] && why="no RESULT line"
    echo "FAILED $why" >>"$tmp/$w.$impl"
    echo "$w $impl run $r: FAILED ($why) $(head -c 300 "$out.err" | tr '\n' ' ')" >&2
    echo "# $w $impl run $r: FAILED ($why)" >>"$raw"
  else
    echo "$line" >>"$tmp/$w.$impl"
    echo "$line" >>"$raw"
    echo "$w $impl run $r: $line" >&2
  fi
}

# The machine's state before each round (bench/machine_probe.c: the
# cross-core round trip and a core's speed just then), listed under the
# table: this machine moves under the runs.
probe_bin="$BUILD/bench/machine_probe"
for w in $workloads; do
  for r in $(seq "$RUNS"); do
    if [ -x "$probe_bin" ]; then
      timeout 20 "$probe_bin" 2>/dev/null | grep '^PROBE ' >>"$tmp/$w.probe"
    fi
    for impl in $IMPLS; do
      supports "$impl" "$w" && run_one "$w" "$impl" "$r"
    done
  done
done

# --- aggregation --------------------------------------------------------------

# Values of one metric for (workload, impl): ops_per_second, or a key=value.
values() { # workload impl metric
  local f="$tmp/$1.$2"
  [ -f "$f" ] || return 0
  awk -v m="$3" '$1 == "RESULT" {
      if (m == "ops_per_second") { print $6; next }
      for (i = 8; i <= NF; i++) { split($i, kv, "="); if (kv[1] == m) print kv[2] }
    }' "$f"
}

nfailed() { # workload impl
  local f="$tmp/$1.$2"
  [ -f "$f" ] || { echo 0; return; }
  grep -c '^FAILED' "$f"
}

# median, min and max of numbers on stdin: "med min max count"
stats() {
  sort -g | awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "NA NA NA 0"; exit }
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.6g %.6g %.6g %d\n", med, v[1], v[NR], NR }'
}

# human-readable number: 3 significant digits, k/M/G suffix for throughput
human() { # value kind(rate|plain)
  awk -v x="$1" -v k="$2" 'BEGIN {
      if (k == "rate") {
        if (x >= 1e9) { printf "%.3gG", x / 1e9; exit }
        if (x >= 1e6) { printf "%.3gM", x / 1e6; exit }
        if (x >= 1e3) { printf "%.3gk", x / 1e3; exit }
      }
      if (x >= 100) printf "%.0f", x; else printf "%.3g", x }'
}

# median of a cell, empty when unsupported, failed or missing
median_of() { # workload impl metric
  local s med lo hi n
  supports "$2" "$1" || return 0
  case " $IMPLS " in *" $2 "*) ;; *) return 0 ;; esac
  [ "$(nfailed "$1" "$2")" -eq 0 ] || return 0
  s=$(values "$1" "$2" "$3" | stats)
  read -r med lo hi n <<<"$s"
  [ "$n" != 0 ] && echo "$med"
}

cell() { # row impl metric kind [opt: a missing metric is "–", not FAILED]
  local w=$1 impl=$2 m=$3 kind=$4 opt=${5:-} nf s med lo hi n
  if ! supports "$impl" "$w"; then echo "–"; return; fi
  case " $IMPLS " in *" $impl "*) ;; *) echo "–"; return ;; esac
  nf=$(nfailed "$w" "$impl")
  if [ "$nf" -gt 0 ]; then
    if [ "$(grep -c '^FAILED missing' "$tmp/$w.$impl")" = "$nf" ]; then
      echo "missing (no binary)"
    else
      echo "FAILED ($nf/$RUNS)"
    fi
    return
  fi
  s=$(values "$w" "$impl" "$m" | stats)
  read -r med lo hi n <<<"$s"
  if [ "$n" = 0 ]; then
    if [ "$opt" = opt ]; then echo "–"; else echo "FAILED (no $m)"; fi
    return
  fi
  echo "$(human "$med" "$kind") ($(human "$lo" "$kind")–$(human "$hi" "$kind"))"
}

ratio() { # workload impl metric direction(higher|lower)
  local a p
  a=$(median_of "$1" axon "$3")
  p=$(median_of "$1" "$2" "$3")
  if [ -z "$a" ] || [ -z "$p" ]; then echo "–"; return; fi
  awk -v a="$a" -v p="$p" -v d="$4" 'BEGIN {
      if (d == "higher") { if (p <= 0) { print "–"; exit } r = a / p }
      else { if (a <= 0) { print "–"; exit } r = p / a }
      printf "%.2f×", r }'
}

peers=""
for impl in $IMPLS; do [ "$impl" != axon ] && peers="$peers $impl"; done

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
[ -n "$cpu_model" ] || cpu_model=$(uname -m)
versions=""
command -v erl >/dev/null 2>&1 &&
  versions="$versions OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null);"
command -v go >/dev/null 2>&1 && versions="$versions $(go version 2>/dev/null | awk '{ print $3 }');"
caf_v=$(dpkg-query -W -f='${Version}' libcaf-dev 2>/dev/null) && versions="$versions CAF $caf_v;"

report="$tmp/report.md"
{
  echo "# Axon benchmark results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- machine: $(nproc) cores, $cpu_model, $(uname -sr)"
  echo "- peers:${versions:- none found}"
  echo "- runs per cell: $RUNS (interleaved); cells are median (min–max)"
  echo "- throughput rows: ops/s, higher is better; ratio = axon/peer"
  echo "- footprint (bytes per idle actor) and latency (ns) rows: lower is better; ratio = peer/axon"
  echo "- pingpong, latency: both ends on one worker (the LIFO slot); pingpong_x P N, latency_x N: the ends of every pair forced onto two threads (Axon: two one-worker systems; CAF: two one-thread systems and anon_send; Erlang: {scheduler, 1|2}; Go: each end LockOSThread'ed), so every hand-off is a thread-to-thread message"
  echo "- remote rows: two processes on loopback; remote_pingpong params WINDOW ROUND_TRIPS (32-byte payload), remote_bulk: 1 MiB messages (MB/s), node_down: detection time in ms (lower is better), SIGSTOP only with DETECT=1; tcp = plain TCP between two processes, the physical limit"
  echo "- so in every ratio column > 1 means Axon is better"
  echo
  hdr="| workload | params | metric |"
  sep="|---|---|---|"
  for impl in $IMPLS; do hdr="$hdr $impl |"; sep="$sep---|"; done
  for p in $peers; do hdr="$hdr axon vs $p (>1: axon better) |"; sep="$sep---|"; done
  echo "$hdr"
  echo "$sep"
  for w in $workloads; do
    params=$(params_for "$w")
    [ -n "$params" ] || params="(default)"
    case "$w" in
      footprint) rows='bytes_per_actor:bytes/actor:plain:lower' ;;
      timers) rows=$'ops_per_second:fired/s:rate:higher\nset_per_s:set/s:rate:higher\nset_cancel_per_s:set+cancel/s:rate:higher\np50_us:p50 lateness µs:plain:lower\np99_us:p99 lateness µs:plain:lower\nmax_us:max lateness µs:plain:lower' ;;
      latency | latency_x) rows=$'p50_ns:p50 ns:plain:lower\np99_ns:p99 ns:plain:lower\np999_ns:p99.9 ns:plain:lower' ;;
      remote_pingpong*) rows='ops_per_second:round trips/s:rate:higher' ;;
      remote_bulk*) rows='MB_s:MB/s (1e6 B):plain:higher' ;;
      node_down*) rows=$'kill9_ms:kill -9 → down, ms:plain:lower\nsigstop_ms:SIGSTOP → down, ms:plain:lower:opt' ;;
      *) rows='ops_per_second:ops/s:rate:higher' ;;
    esac
    while IFS=: read -r m label kind dir opt; do
      line="| $w | $params | $label |"
      for impl in $IMPLS; do line="$line $(cell "$w" "$impl" "$m" "$kind" "$opt") |"; done
      for p in $peers; do line="$line $(ratio "$w" "$p" "$m" "$dir") |"; done
      echo "$line"
    done <<<"$rows"
  done
  if case " $IMPLS " in *" axon1 "*) true ;; *) false ;; esac; then
    echo
    echo "Two workers against one, run by run (each axon run / the axon1 run that followed it; < 1: that two-worker run was slower):"
    echo
    for w in $workloads; do
      supports axon1 "$w" || continue
      [ -f "$tmp/$w.axon" ] && [ -f "$tmp/$w.axon1" ] || continue
      echo "- $w: $(paste -d' ' <(awk '{ print ($1 == "RESULT") ? $6 : "x" }' "$tmp/$w.axon") \
        <(awk '{ print ($1 == "RESULT") ? $6 : "x" }' "$tmp/$w.axon1") |
        awk '{ if ($1 == "x" || $2 == "x" || $2 <= 0) printf "– "; else printf "%.2f ", $1 / $2 }')"
    done
  fi
  if ls "$tmp"/*.probe >/dev/null 2>&1; then
    echo
    echo "Machine state before each round (bench/machine_probe: c2c = one cache line's round trip between CPUs 0 and 1, ns; sin = one sin() on one core, ns):"
    echo
    for w in $workloads; do
      [ -s "$tmp/$w.probe" ] || continue
      echo "- $w: c2c $(sed -n 's/.*c2c_ns=\([^ ]*\).*/\1/p' "$tmp/$w.probe" | tr '\n' ' '); sin $(sed -n 's/.*sin_ns=\([^ ]*\).*/\1/p' "$tmp/$w.probe" | tr '\n' ' ')"
    done
  fi
  echo
  echo "<details><summary>raw RESULT lines</summary>"
  echo
  echo '```'
  cat "$raw"
  echo '```'
  echo
  echo "</details>"
} >"$report"

mkdir -p "$root/bench/results"
cp "$report" "$root/bench/results/latest.md"
cat "$report"
echo >&2
echo "run.sh: written to bench/results/latest.md" >&2
