#!/bin/sh
# Installs the Debian packages Axon needs, only those missing. As root it
# runs apt-get (one update first); otherwise it prints the exact command and
# fails. With everything present it touches no network.
#   scripts/deps.sh         build and test dependencies (the chat example's
#                           tests drive it with python3-irc, and irssi under tmux)
#   scripts/deps.sh bench   also the benchmark peers (CAF, Erlang, Go, and the
#                           ngircd IRC server for bench/chat_bench.sh)
#   scripts/deps.sh fuzz    also clang-14 and its libFuzzer and sanitizer
#                           runtimes (make fuzz)
set -eu
# libc6-dev (headers, and libc.a for the fully static program of the install
# test) is only recommended by gcc, so it is named; binutils (nm, objdump:
# the install test checks the soname and exported symbols) comes with gcc.
# libssl-dev: libcrypto (HMAC for the cluster handshake); protobuf-compiler
# and python3-protobuf: the Python peer of the cluster tests. python3-redis,
# redis-tools, redis-server: the pub/sub broker's tests (redis-py, redis-cli
# and a real redis-server to compare with). python3-prometheus-client: the
# metrics tests parse the endpoint's text with Prometheus' own parser.
pkgs="cmake make gcc libc6-dev binutils pkg-config libjemalloc-dev libprotobuf-c-dev protobuf-c-compiler
  libcunit1-dev libssl-dev protobuf-compiler python3-protobuf
  python3-redis redis-tools redis-server python3-prometheus-client"
pkgs="$pkgs python3 python3-irc irssi tmux"
if [ "${1:-}" = bench ]; then
  pkgs="$pkgs g++ libcaf-dev erlang-nox golang-go ngircd"
fi
if [ "${1:-}" = fuzz ]; then
  pkgs="$pkgs clang-14 libclang-rt-14-dev"
fi
missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
  echo "axon: missing packages:$missing" >&2
  echo "axon: run as root: apt-get update && $cmd" >&2
  exit 1
fi
echo "axon: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
$cmd >&2
