#!/usr/bin/env bash
# Checks which OS calls the socket layer's objects in the built library
# (archive members socket*.o) really reference, so a configuration cannot
# silently compile the other implementation:
#   linux: accept4 (socket_os_linux.c) and no plain accept;
#   posix: accept and fcntl (socket_os_posix.c), and none of accept4,
#          eventfd, pipe2, timerfd_*, signalfd (the BSD/macOS path; the
#          epoll backend is the poller's, not the socket layer's, and is
#          what this configuration runs on Linux).
# usage: check_socket_symbols.sh NM LIBAXON_A linux|posix
set -u
nm=$1 lib=$2 kind=$3
all=$("$nm" -u -A "$lib" 2>/dev/null) || { echo "cannot read $lib with $nm"; exit 1; }
undef=$(printf '%s\n' "$all" | grep -E '[:/(]socket[a-z_]*\.c\.o[:)]' | awk '{print $NF}' |
  sed 's/@.*//' | sort -u)
[ -n "$undef" ] || { echo "no socket*.o members in $lib"; exit 1; }
has() { printf '%s\n' "$undef" | grep -qx "$1"; }
fail=0
case "$kind" in
linux)
  has accept4 || { echo "linux build: accept4 not referenced"; fail=1; }
  ! has accept || { echo "linux build: plain accept referenced"; fail=1; }
  ;;
posix)
  for s in accept fcntl; do has $s || { echo "posix build: $s not referenced"; fail=1; }; done
  for s in accept4 eventfd pipe2 timerfd_create timerfd_settime signalfd; do
    ! has $s || { echo "posix build: Linux-only $s referenced"; fail=1; }
  done
  ;;
*) echo "usage: $0 NM LIBAXON_A linux|posix"; exit 2 ;;
esac
[ $fail -eq 0 ] && echo "$kind build: socket-layer OS calls as expected"
exit $fail
