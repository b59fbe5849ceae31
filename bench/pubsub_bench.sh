#!/usr/bin/env bash
# Pub/sub benchmark: examples/pubsub against redis-server (Debian,
# --save '' --appendonly no) in the same run, interleaved, RUNS times each;
# prints the medians and the ratios, and each server's CPU time per delivery
# (all its threads, from /proc/PID/task/*/schedstat), as a markdown table
# (also written to bench/results/pubsub.md).
#
# Workloads (bench/pubsub_load.c checks order and loss on every run):
#   fanout   50 subscribers, 10 channels, 4 publishers, 64-byte messages, window 16
#   1to1     1 subscriber, 1 channel, 1 publisher, window 16
#   wide     1,000 subscribers on one channel, 1 publisher, window 16
#   ping     redis-benchmark -t ping -c 50 -P 16
#
# env: BUILD=build  RUNS=3  PUBSUB_ARGS="" (extra broker flags, e.g. --shards 2)
#      PUBSUB_BASE=path: also run that broker binary as "axon-base" (a
#      before/after comparison in the same run)
#      MSGS_fanout=20000 MSGS_1to1=200000 MSGS_wide=2000 PING_N=2000000
#      WORKLOADS="fanout 1to1 wide ping" (a subset runs only those)
set -u
WORKLOADS=${WORKLOADS:-fanout 1to1 wide ping}
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
RUNS=${RUNS:-3}
PUBSUB_ARGS=${PUBSUB_ARGS:-}
load="$BUILD/bench/pubsub_load"
broker="$BUILD/examples/pubsub"
for f in "$load" "$broker"; do [ -x "$f" ] || { echo "pubsub_bench: build first ($f)" >&2; exit 2; }; done
for t in redis-server redis-benchmark; do
  command -v $t >/dev/null || { echo "pubsub_bench: $t missing (scripts/deps.sh)" >&2; exit 2; }
done
ulimit -n 8192 2>/dev/null || ulimit -n 4096 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

start_axon() { # binary name -> sets port_<name>
  "$1" --listen 127.0.0.1:0 $PUBSUB_ARGS >"$tmp/$2.out" 2>&1 &
  pids+=($!)
  eval "pid_$2=$!"
  for _ in $(seq 1 200); do
    p=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$2.out")
    if [ -n "$p" ]; then eval "port_$2=$p"; return 0; fi
    sleep 0.05
  done
  echo "pubsub_bench: broker did not start" >&2; exit 2
}
start_redis() {
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
    --maxclients 10000 >"$tmp/redis.out" 2>&1 &
  pids+=($!)
  pid_redis=$!
  for _ in $(seq 1 200); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "pubsub_bench: redis-server did not start" >&2; exit 2
}
impls="axon redis"
start_axon "$broker" axon
if [ -n "${PUBSUB_BASE:-}" ]; then
  start_axon "$PUBSUB_BASE" base
  impls="axon axon-base redis"
fi
start_redis
port_redis=$REDIS_PORT
port_of() { case "$1" in axon) echo "$port_axon" ;; axon-base) echo "$port_base" ;; *) echo "$port_redis" ;; esac; }
pid_of() { case "$1" in axon) echo "$pid_axon" ;; axon-base) echo "$pid_base" ;; *) echo "$pid_redis" ;; esac; }
# The server's CPU time so far (ns, all its threads; schedstat's first field).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
per() { awk -v a="$1" -v b="$2" -v c="$3" 'BEGIN { if (c > 0) printf "%.0f", (b - a) / c; else print 0 }'; }

args_for() {
  case "$1" in
    fanout) echo "--subs 50 --channels 10 --pubs 4 --size 64 --window 16 --messages ${MSGS_fanout:-20000}" ;;
    1to1) echo "--subs 1 --channels 1 --pubs 1 --size 64 --window 16 --messages ${MSGS_1to1:-200000}" ;;
    wide) echo "--subs 1000 --channels 1 --pubs 1 --size 64 --window 16 --messages ${MSGS_wide:-2000}" ;;
  esac
}

# The servers in turn, starting one further each run: the one that runs
# right after redis-server did measurably worse (the same broker 1.27x
# first, 1.71x second in one series), so no server may always take the
# same place.
rotated() { echo $impls $impls | awk -v r="$1" '{n = NF / 2; for (i = 0; i < n; i++) printf "%s ", $((r + i) % n + 1)}'; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

results="$tmp/results"
: >"$results"
for w in fanout 1to1 wide; do
  case " $WORKLOADS " in *" $w "*) ;; *) continue ;; esac
  for r in $(seq 1 "$RUNS"); do
    for impl in $(rotated "$r"); do
      port=$(port_of $impl)
      c0=$(cpu_ns "$(pid_of $impl)")
      line=$(timeout 300 "$load" --port "$port" --name "$impl" $(args_for $w) | grep '^RESULT')
      rc=$?
      c1=$(cpu_ns "$(pid_of $impl)")
      line="$line srv_cpu_ns=$(per "$c0" "$c1" "$(echo "$line" | awk '{print $5}')")"
      echo "$w $impl run$r: $line" >&2
      [ $rc -eq 0 ] || line="FAILED"
      echo "$w $impl $line" >>"$results"
    done
  done
done
for r in $(seq 1 "$RUNS"); do
  case " $WORKLOADS " in *" ping "*) ;; *) break ;; esac
  for impl in $(rotated "$r"); do
    port=$(port_of $impl)
    c0=$(cpu_ns "$(pid_of $impl)")
    rps=$(redis-benchmark -p "$port" -t ping -c 50 -P 16 -n "${PING_N:-2000000}" -q 2>/dev/null |
          tr '\r' '\n' | sed -n 's/^PING_MBULK: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
    echo "ping $impl run$r: $rps requests/s" >&2
    c1=$(cpu_ns "$(pid_of $impl)")
    echo "ping $impl RESULT ping $impl 0 0 ${rps:-0} requests/s srv_cpu_ns=$(per "$c0" "$c1" "${PING_N:-2000000}")" >>"$results"
  done
done

field() { # workload impl field-number (of the RESULT line) -> median
  grep "^$1 $2 RESULT" "$results" | awk -v f="$3" '{print $(f+2)}' | sed 's/^[a-z0-9_]*=//' | median
}
out="$root/bench/results/pubsub.md"
{
  echo "| workload | axon deliveries/s | redis deliveries/s | ratio | axon p50 µs | redis p50 µs | axon p99 µs | redis p99 µs | axon CPU ns / delivery | redis CPU ns / delivery |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for w in fanout 1to1 wide; do
    case " $WORKLOADS " in *" $w "*) ;; *) continue ;; esac
    a=$(field $w axon 6); b=$(field $w redis 6)
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$w" "$a" "$b" \
      "$(awk -v a="$a" -v b="$b" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "NA"}')" \
      "$(field $w axon 8)" "$(field $w redis 8)" "$(field $w axon 9)" "$(field $w redis 9)" \
      "$(field $w axon 12)" "$(field $w redis 12)"
  done
  a=$(field ping axon 6); b=$(field ping redis 6)
  case " $WORKLOADS " in *" ping "*) ;; *) a= ;; esac
  [ -n "$a" ] && printf "| ping -c 50 -P 16 (requests/s) | %s | %s | %s | | | | | %s (per request) | %s |\n" "$a" "$b" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "NA"}')" \
    "$(field ping axon 8)" "$(field ping redis 8)"
  if [ -n "${PUBSUB_BASE:-}" ]; then
    echo
    echo "| workload | axon-base deliveries/s | ratio to redis | axon-base p99 µs |"
    echo "|---|---|---|---|"
    for w in fanout 1to1 wide ping; do
      case " $WORKLOADS " in *" $w "*) ;; *) continue ;; esac
      a=$(field $w axon-base 6); b=$(field $w redis 6)
      printf "| %s | %s | %s | %s |\n" "$w" "$a" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "NA"}')" "$(field $w axon-base 9)"
    done
  fi
  echo
  echo "Medians of $RUNS runs, interleaved, $(nproc) CPUs; broker flags: '${PUBSUB_ARGS}'; $(redis-server --version | cut -d' ' -f1-3)."
  grep -c FAILED "$results" | awk '$1>0 {print "FAILED runs: " $1}'
} | tee "$out"
