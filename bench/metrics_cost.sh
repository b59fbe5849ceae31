#!/usr/bin/env bash
# What metrics cost: runs the axon_bench workloads of bench/run.sh with a
# baseline binary (the same tree with the hooks compiled out:
#   cmake -S . -B build-nohooks -DAX_NO_HOOKS=ON && cmake --build build-nohooks --target axon_bench
# ) and with this tree's binary in each AXON_BENCH_METRICS mode, RUNS times
# each, interleaved (base, on, counts, hist, base, ...), and prints the
# median ops/s per workload and mode with the change against the baseline.
#
# usage: bench/metrics_cost.sh BASE_BIN NEW_BIN [WORKLOAD...]
#   e.g. bench/metrics_cost.sh build-nohooks/bench/axon_bench build/bench/axon_bench
# env: RUNS=3, MODES="base on counts hist" (base: BASE_BIN; the others:
#      NEW_BIN with AXON_BENCH_METRICS=mode: on = the always-on counters
#      only, counts/hist = every actor tracked too), TIMEOUT=300
set -u
base=$1 new=$2
shift 2
RUNS=${RUNS:-3}
MODES=${MODES:-"base on counts hist"}
TIMEOUT=${TIMEOUT:-300}
rows=${*:-"pingpong count fjthrput fjcreate threadring chameneos big footprint latency timers remote_pingpong remote_pingpong.w100 remote_bulk node_down"}
params() {
  case "$1" in
    pingpong) echo 3000000 ;; pingpong_x) echo "4 200000" ;; latency_x) echo 100000 ;; count) echo 15000000 ;; fjthrput) echo "60 200000" ;;
    fjcreate) echo 1000000 ;; threadring) echo "503 10000000" ;; chameneos) echo "100 2000000" ;;
    big) echo "120 50000" ;; footprint) echo 1000000 ;; latency) echo 1000000 ;;
    remote_pingpong) echo "1 100000" ;; remote_pingpong.w100) echo "100 1000000" ;;
    remote_bulk) echo 1000 ;; node_down) echo 5 ;; *) echo "" ;;
  esac
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$RUNS"); do
  for row in $rows; do
    for m in $MODES; do
      if [ "$m" = base ]; then bin=$base env=""; else bin=$new env="AXON_BENCH_METRICS=$m"; fi
      # shellcheck disable=SC2046
      line=$(env $env timeout "$TIMEOUT" "$bin" "${row%%.*}" $(params "$row") 2>/dev/null | grep '^RESULT' | tail -1)
      echo "$row $m ${line:-FAILED}" >>"$out"
      echo "run $r $row $m: ${line:-FAILED}" >&2
    done
  done
done
python3 - "$out" "$MODES" <<'PY'
import statistics, sys
rows, modes = {}, sys.argv[2].split()
for ln in open(sys.argv[1]):
    f = ln.split()
    row, mode = f[0], f[1]
    v = float(f[7]) if len(f) > 7 and f[2] == "RESULT" else None
    rows.setdefault(row, {}).setdefault(mode, []).append(v)
print("| workload | " + " | ".join(f"{m} (ops/s)" for m in modes) + " |")
print("|---|" + "---|" * len(modes))
for row, by in rows.items():
    cells, b = [], None
    for m in modes:
        vs = by.get(m, [])
        if not vs or None in vs:
            cells.append("FAILED"); continue
        med = statistics.median(vs)
        if m == modes[0]:
            b = med; cells.append(f"{med:,.0f}")
        else:
            cells.append(f"{med:,.0f} ({(med / b - 1) * 100:+.1f}%)" if b else f"{med:,.0f}")
    print(f"| {row} | " + " | ".join(cells) + " |")
PY
