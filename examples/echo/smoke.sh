#!/usr/bin/env bash
# Smoke test for examples/echo: start it on an ephemeral loopback port,
# send a line through bash's /dev/tcp, check it comes back, and check the
# server exits by itself after that one connection (--max 1).
set -euo pipefail
bin="$1"
out=$(mktemp)
trap 'rm -f "$out"; kill "$pid" 2>/dev/null || true' EXIT
"$bin" --listen 127.0.0.1:0 --max 1 >"$out" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "no listening line"; cat "$out"; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello axon\n' >&3
IFS= read -r -t 10 line <&3
exec 3>&-
[ "$line" = "hello axon" ] || { echo "echoed: '$line'"; exit 1; }
wait "$pid"
grep -q "connection closed" "$out"
echo "echo smoke: ok"
