#!/usr/bin/env bash
# Proves scripts/check-layers.sh can fail: on copies of src/ with one wrong
# include each (a folder including one above it, one beside it, and one
# including a lower folder's private header), the
# check must exit 1 and name the line; on the untouched copy it must pass.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
check="$root/scripts/check-layers.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

cp -r "$root/src" "$tmp/clean"
if ! out=$(bash "$check" "$tmp/clean"); then echo "FAIL: clean tree rejected: $out"; fail=1; fi

cp -r "$root/src" "$tmp/up"
printf '#include "io/socket.h"\n' >> "$tmp/up/base/alloc.c"
out=$(bash "$check" "$tmp/up"); rc=$?
if [ $rc -ne 1 ] || ! printf '%s' "$out" | grep -q 'base/alloc.c:[0-9]*: base includes io'; then
  echo "FAIL: base including io not caught (rc=$rc): $out"; fail=1
fi

cp -r "$root/src" "$tmp/side"
printf '#include "mailbox/mailbox.h"\n' >> "$tmp/side/timer/wheel.c"
out=$(bash "$check" "$tmp/side"); rc=$?
if [ $rc -ne 1 ] || ! printf '%s' "$out" | grep -q 'timer/wheel.c:[0-9]*: timer includes mailbox'; then
  echo "FAIL: timer including its sibling mailbox not caught (rc=$rc): $out"; fail=1
fi

cp -r "$root/src" "$tmp/private"
printf '#include "actor/actor_int.h"\n' >> "$tmp/private/io/socket.c"
out=$(bash "$check" "$tmp/private"); rc=$?
if [ $rc -ne 1 ] || ! printf '%s' "$out" | grep -q 'io/socket.c:[0-9]*: io includes the private header of actor'; then
  echo "FAIL: io including actor's private header not caught (rc=$rc): $out"; fail=1
fi

cp -r "$root/src" "$tmp/unknown"
mkdir "$tmp/unknown/stray"
printf 'int x;\n' > "$tmp/unknown/stray/x.c"
bash "$check" "$tmp/unknown" >/dev/null; rc=$?
if [ $rc -ne 2 ]; then echo "FAIL: a folder outside the order not refused (rc=$rc)"; fail=1; fi

if [ $fail -eq 0 ]; then echo "layers selftest: ok"; fi
exit $fail
