#!/usr/bin/env bash
# Checks the one-way dependency order of src/ (docs/ARCHITECTURE.md,
# "Folders and their dependency order"): a file may include headers of its
# own folder, of the public API (axon/...), and of folders strictly below
# its own; never of a folder above it or beside it. A folder's private
# header, named <name>_int.h (actor/actor_int.h: struct ax_actor's and
# struct ax_system's fields; supervisor/supervisor_int.h), may be included
# only from its own folder: the folders above use the folder's interface
# header (actor/actor.h).
#
#   base  <-  mailbox, timer  <-  reactor  <-  actor  <-  supervisor, io  <-  cluster
#        <-  introspect, metrics
#
# usage: scripts/check-layers.sh [SRC_DIR]   (default: src next to this script)
# Prints every violation as "file:line: folder includes above/beside folder"
# and exits 1 if there is any, 0 otherwise; 2 for an unknown folder.
set -u
src=${1:-"$(cd "$(dirname "$0")/.." && pwd)/src"}

rank() {
  case "$1" in
    base) echo 0 ;;
    mailbox | timer) echo 1 ;;
    reactor) echo 2 ;;
    actor) echo 3 ;;
    supervisor | io) echo 4 ;;
    cluster) echo 5 ;;
    introspect | metrics) echo 6 ;;
    *) echo -1 ;;
  esac
}

bad=0
for dir in "$src"/*/; do
  folder=$(basename "$dir")
  r=$(rank "$folder")
  if [ "$r" -lt 0 ]; then
    echo "check-layers: $folder: a folder with no place in the order (add it to this script and to docs/ARCHITECTURE.md)"
    exit 2
  fi
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    inc=$(printf '%s' "$rest" | sed -n 's/.*#[[:space:]]*include[[:space:]]*"\([^"/]*\)\/.*/\1/p')
    [ -n "$inc" ] || continue
    [ "$inc" = axon ] && continue
    [ "$inc" = "$folder" ] && continue
    if printf '%s' "$rest" | grep -q '#[[:space:]]*include[[:space:]]*"[^"]*_int\.h"'; then
      echo "${file#"$src"/}:$line: $folder includes the private header of $inc"
      bad=1
      continue
    fi
    ir=$(rank "$inc")
    if [ "$ir" -lt 0 ] || [ "$ir" -ge "$r" ]; then
      echo "${file#"$src"/}:$line: $folder includes $inc (not below it)"
      bad=1
    fi
  done < <(grep -Hn '#[[:space:]]*include[[:space:]]*"' "$dir"*.c "$dir"*.h 2>/dev/null)
done
if [ "$bad" -eq 0 ]; then echo "check-layers: ok"; fi
exit "$bad"
