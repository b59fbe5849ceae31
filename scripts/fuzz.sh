#!/bin/sh
# `make fuzz`: builds the libFuzzer targets of fuzz/ (build-fuzz, clang-14,
# ASan+UBSan) and runs each for FUZZ_SECONDS (default 60) on a scratch copy
# of its seed corpus (fuzz/corpus/<target>/ is never modified). Prints one
# line per target:
#   FUZZ <target> execs=<n> cov=<edges> crashes=<n>
# and exits non-zero if any target crashed (a crash, leak, timeout, out of
# memory or failed invariant); the reproducer is kept in
# build-fuzz/artifacts/<target>/ (run the target with that file to replay).
# FUZZ_TARGETS limits the run to some targets; FUZZ_FLAGS adds libFuzzer
# options (e.g. FUZZ_FLAGS=-runs=10000000).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
case $build in /*) ;; *) build=$root/$build ;; esac
all="fuzz_addr fuzz_cluster_frame fuzz_handshake fuzz_secret fuzz_resp fuzz_glob fuzz_irc_line
  fuzz_irc_dispatch fuzz_metrics_http fuzz_pubsub_node fuzz_chat_node"
targets=${FUZZ_TARGETS:-$all}
cmake -S . -B "$build" -DCMAKE_C_COMPILER="${FUZZ_CC:-clang-14}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DAX_FUZZ=ON -DAX_BUILD_TESTS=OFF -DAX_BUILD_EXAMPLES=OFF -DAX_BUILD_BENCH=OFF >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j "${JOBS:-2}" --target $targets >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/axfuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
failed=0
for t in $targets; do
  d=$work/$t
  mkdir -p "$d/corpus" "$d/artifacts"
  cp "$root/fuzz/corpus/$t/"* "$d/corpus/"
  rc=0
  # shellcheck disable=SC2086
  (cd "$d" && TMPDIR=$d "$build/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 \
    -timeout=30 -rss_limit_mb=2048 -artifact_prefix="$d/artifacts/" ${FUZZ_FLAGS:-} \
    "$d/corpus" >"$d/log" 2>&1) || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$d/log" | tail -n 1)
  # slow-unit-* files only report an input that ran long (a stall of the
  # shared machine can do it): not a failure
  crashes=$(find "$d/artifacts" -type f ! -name 'slow-unit-*' | wc -l | tr -d ' ')
  if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then crashes=1; fi
  if [ "$crashes" != 0 ]; then
    failed=1
    mkdir -p "$build/artifacts/$t"
    cp "$d/artifacts/"* "$build/artifacts/$t/" 2>/dev/null || true
    cp "$d/log" "$build/artifacts/$t/log"
    grep -E "ERROR|invariant|runtime error|SUMMARY" "$d/log" | head -n 5 || true
    echo "fuzz: $t crashed; reproducer and log in $build/artifacts/$t/"
  fi
  echo "FUZZ $t execs=${execs:-0} cov=${cov:-0} crashes=$crashes"
done
exit $failed
