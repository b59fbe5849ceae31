#!/usr/bin/env bash
# The chat benchmark: bench/chat_load (closed loop, per-sender order and
# loss checked) against examples/chat and against ngircd (Debian; flood
# penalties off: [Limits] MaxPenaltyTime = 0, no connection limits), in the
# same run, interleaved: axon, ngircd, axon, ngircd, ...
#
# Implementations: axon (examples/chat: each client actor gathers what one
# run of its mailbox brings and writes it once, from its end-of-run hook),
# ngircd, and axon-base (another chat binary, CHAT_BASE=path: a before/after
# comparison in the same run).
# Workloads: chat_1x50    50 clients in 1 channel, 64-byte messages
#            chat_50x500  500 clients in 50 channels (10 per channel), 64 bytes
# Each run prints a RESULT line (see chat_load.c); the summary gives the
# medians of deliveries/s, p50 and p99 latency, and axon/ngircd ratios, and
# is also written to bench/results/chat.md.
#
# env: RUNS=3 BUILD=build SECONDS_PER_RUN=5 WARMUP=1 WINDOW=4
#      IMPLS="axon ngircd" CHAT_BASE=
set -u
set -o pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
RUNS=${RUNS:-3}
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
SECS=${SECONDS_PER_RUN:-5}
WARMUP=${WARMUP:-1}
WINDOW=${WINDOW:-4}
IMPLS=${IMPLS:-axon ngircd}
chat="$BUILD/examples/chat"
load="$BUILD/bench/chat_load"
for f in "$chat" "$load"; do
  [ -x "$f" ] || { echo "chat_bench: $f is missing: build first (make build)" >&2; exit 2; }
done
case " $IMPLS " in *" ngircd "*)
  command -v ngircd >/dev/null || { echo "chat_bench: ngircd is missing: scripts/deps.sh bench" >&2; exit 2; } ;;
esac

tmp=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts $1 (axon|ngircd) on a fresh loopback port; sets server_pid, port.
start_server() {
  port=$(free_port)
  if [ "$1" = axon ] || [ "$1" = axon-base ]; then
    bin=$chat
    [ "$1" = axon-base ] && bin=${CHAT_BASE:?axon-base needs CHAT_BASE=path}
    "$bin" --listen "127.0.0.1:$port" --quiet --ping 600 >"$tmp/server.log" 2>&1 &
  else
    cat >"$tmp/ngircd.conf" <<CONF
[Global]
	Name = bench.ngircd
	Info = chat benchmark
	Listen = 127.0.0.1
	Ports = $port
	MotdPhrase = bench
[Limits]
	MaxConnections = 0
	MaxConnectionsIP = 0
	MaxJoins = 0
	MaxPenaltyTime = 0
	MaxNickLength = 30
	PingTimeout = 600
	PongTimeout = 600
[Options]
	DNS = no
	Ident = no
	PAM = no
CONF
    ngircd -n -f "$tmp/ngircd.conf" >"$tmp/server.log" 2>&1 &
  fi
  server_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "chat_bench: $1 did not start:" >&2
  cat "$tmp/server.log" >&2
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=""
}

declare -A args=([chat_1x50]="--clients 50 --channels 1" [chat_50x500]="--clients 500 --channels 50")
workloads="chat_1x50 chat_50x500"
: >"$tmp/results"
for run in $(seq 1 "$RUNS"); do
  for impl in $IMPLS; do
    start_server "$impl" || exit 1
    for w in $workloads; do
      # shellcheck disable=SC2086
      line=$("$load" --port "$port" ${args[$w]} --size 64 --window "$WINDOW" --warmup "$WARMUP" \
        --seconds "$SECS" --name "$w" --impl "$impl" 2>"$tmp/load.err" | grep '^RESULT')
      if [ -z "$line" ]; then
        echo "RESULT $w $impl FAILED $(tr '\n' ' ' <"$tmp/load.err")"
        echo "$w $impl FAILED" >>"$tmp/results"
        continue
      fi
      echo "$line"
      echo "$line" >>"$tmp/results"
    done
    stop_server
  done
done

python3 - "$tmp/results" "$IMPLS" <<'PY' | tee "$root/bench/results/chat.md"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
impls = sys.argv[2].split()
def med(w, i, key):
    v = []
    for r in rows:
        if r[1] != w or r[2] != i:
            continue
        if "FAILED" in r:
            return None
        d = dict(x.split("=", 1) for x in r[7:] if "=" in x)
        v.append(float(r[5]) if key == "rate" else float(d[key]))
    return statistics.median(v) if v else None
print("| workload | impl | deliveries/s (median) | p50 us | p99 us |")
print("|---|---|---:|---:|---:|")
for w in ("chat_1x50", "chat_50x500"):
    for i in impls:
        r, p50, p99 = med(w, i, "rate"), med(w, i, "p50_us"), med(w, i, "p99_us")
        f = lambda x: "FAILED" if x is None else "%.0f" % x
        print("| %s | %s | %s | %s | %s |" % (w, i, f(r), f(p50), f(p99)))
    for ax in [i for i in impls if i.startswith("axon")]:
        a, n = med(w, ax, "rate"), med(w, "ngircd", "rate")
        if a and n:
            print("| %s | %s/ngircd | %.2fx | %.2fx | %.2fx |" % (w, ax, a / n, med(w, ax, "p50_us") / med(w, "ngircd", "p50_us"),
                                                                  med(w, ax, "p99_us") / med(w, "ngircd", "p99_us")))
PY
