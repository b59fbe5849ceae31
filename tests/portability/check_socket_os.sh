#!/usr/bin/env bash
# Checks that the socket layer's files a BSD/macOS build compiles (every
# src/io/*.c except *_linux.c: see src/io/CMakeLists.txt, AX_SOCKET_OS)
# use no Linux-only call:
#  1. each compiles with -fsyntax-only -Werror in strict POSIX.1-2008 mode
#     (-D_POSIX_C_SOURCE=200809L, no _GNU_SOURCE), where glibc declares no
#     accept4, pipe2, ...;
#  2. socket_os_posix.c also compiles with SO_NOSIGPIPE defined (macOS's
#     value), the branch Linux never takes;
#  3. none of them names a Linux-only identifier (comments stripped), as
#     glibc still declares some in POSIX mode (eventfd, SOCK_NONBLOCK).
# usage: check_socket_os.sh [CC] [SRC_DIR]   (defaults: cc, src beside tests/)
# Prints each offence and exits 1 if there is any, 0 otherwise.
set -u
cc=${1:-cc}
src=${2:-"$(cd "$(dirname "$0")/../.." && pwd)/src"}
inc="$src/../include"
fail=0
linux_only='eventfd|timerfd_[a-z]+|signalfd|accept4|pipe2|dup3|epoll_[a-z]+|SOCK_NONBLOCK|SOCK_CLOEXEC|EFD_[A-Z]+|TFD_[A-Z]+|MSG_ZEROCOPY|SO_ZEROCOPY|MSG_ERRQUEUE|splice|sendmmsg|recvmmsg|TCP_QUICKACK|TCP_CORK|SO_REUSEPORT_LB|linux/[a-z_/]+\.h|sys/(eventfd|timerfd|epoll|signalfd)\.h'

files=()
for f in "$src"/io/*.c; do
  case "$f" in *_linux.c) continue ;; esac
  files+=("$f")
done
[ ${#files[@]} -gt 0 ] || { echo "no src/io/*.c under $src"; exit 1; }

flags=(-std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter -Werror
       -fsyntax-only -I"$inc" -I"$src")
for f in "${files[@]}"; do
  if ! out=$("$cc" "${flags[@]}" "$f" 2>&1); then
    echo "${f#"$src"/}: does not compile in strict POSIX mode:"; printf '%s\n' "$out" | head -5
    fail=1
  fi
  # Names found outside comments, then shown where they are in the file.
  for id in $("$cc" -fpreprocessed -dD -E -P "$f" 2>/dev/null | grep -owE "$linux_only" | sort -u); do
    grep -nwF "$id" "$f" | sed "s|^|${f#"$src"/}:|; s|\$| (Linux-only: $id)|"
    fail=1
  done
done
if [ -f "$src/io/socket_os_posix.c" ]; then
  if ! out=$("$cc" "${flags[@]}" -DSO_NOSIGPIPE=0x1022 "$src/io/socket_os_posix.c" 2>&1); then
    echo "io/socket_os_posix.c: does not compile with SO_NOSIGPIPE:"; printf '%s\n' "$out" | head -5
    fail=1
  fi
else
  echo "io/socket_os_posix.c: missing"; fail=1
fi
exit $fail
