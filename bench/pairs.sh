#!/usr/bin/env bash
# Two workers against one, judged against the machine's own noise.
#
# usage: bench/pairs.sh WORKLOAD [PARAMS...]
# env:   N=15 (rounds), BUILD=build, WORKERS=2 (the system under test),
#        PEER= (go, caf or erlang: judge Axon against that peer instead),
#        PEERS_OUT=$BUILD/bench/peers (where bench/peers/build.sh put them)
#
# Each round runs axon_bench WORKLOAD three times back to back: with
# WORKERS workers (A), with one worker (B), and with one worker again (B').
# With PEER set, B and B' are the peer's program instead (the same
# workload and parameters), so A/B is Axon against the peer. The order of
# the three rotates from round to round (A B B', B B' A, B' A B), so that
# neither side always runs first. It prints the sorted ratios A/B of every
# round, and as the control the ratios B'/B: two runs of the very same
# configuration, as close in time.
# On a quiet machine B'/B is 1.00; on the 2-vCPU VM this was written on it
# spread 0.70-1.25 (one-worker chameneos: 5.0-8.8M meetings/s between two
# runs of the same binary, with the same 8.0M runs each), so a single A/B
# below 1 says nothing by itself. What two workers cost or give shows as
# A/B's distribution against B'/B's: a slow mode of two workers (issue #16
# item 6: big at 0.45x one worker) puts A/B's lower half under the
# control's; no slow mode keeps A/B's quantiles at or above the control's.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-15}
BUILD=${BUILD:-build}
WORKERS=${WORKERS:-2}
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
bin="$BUILD/bench/axon_bench"
PEER=${PEER:-}
PEERS_OUT=${PEERS_OUT:-$BUILD/bench/peers}
case "$PEER" in
  '') ;;
  go | caf | erlang) peer_bin="$PEERS_OUT/axbench_$PEER"
    [ -x "$peer_bin" ] || { echo "pairs.sh: $peer_bin not found (bench/peers/build.sh)" >&2; exit 1; } ;;
  *) echo "pairs.sh: PEER must be go, caf or erlang" >&2; exit 2 ;;
esac
if [ $# -lt 1 ]; then
  echo "usage: bench/pairs.sh WORKLOAD [PARAMS...]" >&2
  exit 2
fi
[ -x "$bin" ] || { echo "pairs.sh: $bin not found (build first)" >&2; exit 1; }
case "$N" in '' | *[!0-9]* | 0) echo "pairs.sh: N must be a positive integer" >&2; exit 2 ;; esac

rate() { # program args...: the ops/s of its last RESULT line, or nothing
  timeout 300 "$@" 2>/dev/null | awk '$1 == "RESULT" { print $6 }' | tail -n 1
}

one() { # workers args...
  local w=$1
  shift
  AXON_BENCH_WORKERS=$w rate "$bin" "$@"
}

# B's run: one worker, or the peer's program.
base() {
  if [ -n "$PEER" ]; then rate "$peer_bin" "$@"; else one 1 "$@"; fi
}

if [ -n "$PEER" ]; then bname="$PEER"; else bname="one"; fi
ab="" bb=""
for i in $(seq "$N"); do
  a="" b="" b2=""
  for k in 0 1 2; do
    case $(((i + k) % 3)) in
      0) a=$(one "$WORKERS" "$@") ;;
      1) b=$(base "$@") ;;
      2) b2=$(base "$@") ;;
    esac
  done
  if [ -z "$a" ] || [ -z "$b" ] || [ -z "$b2" ]; then
    echo "pairs.sh: round $i: a run failed (no RESULT line)" >&2
    exit 1
  fi
  ab="$ab $(awk -v x="$a" -v y="$b" 'BEGIN { printf "%.2f", x / y }')"
  bb="$bb $(awk -v x="$b2" -v y="$b" 'BEGIN { printf "%.2f", x / y }')"
  echo "round $i: $WORKERS workers $a, $bname $b, $bname again $b2" >&2
done

summary() { # label ratios
  echo "$2" | tr ' ' '\n' | grep . | sort -g | awk -v l="$1" '{ v[NR] = $1 } END {
      printf "%-28s median %.2f  quartiles %.2f %.2f  min %.2f  below 1: %d of %d  |", l,
        v[int((NR + 1) / 2)], v[int((NR + 3) / 4)], v[int((3 * NR + 3) / 4)], v[1],
        below(), NR
      for (i = 1; i <= NR; i++) printf " %s", v[i]
      printf "\n" }
    function below(  i, n) { n = 0; for (i = 1; i <= NR; i++) if (v[i] < 1) n++; return n }'
}
echo "$1 ($N rounds)"
summary "$WORKERS workers / $bname:" "$ab"
summary "control, $bname / $bname:" "$bb"
