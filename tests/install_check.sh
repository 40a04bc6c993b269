#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds an mlx-c program against it with
# pkg-config, both dynamically and statically, then runs them.
set -euo pipefail
build=$1; program=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
test -f "$prefix/include/mlx/c/mlx.h"
test -f "$prefix/lib/libmlxc.so" && test -f "$prefix/lib/libmlxc.a" && test -x "$prefix/bin/mlxc"
cc -std=c11 -Wall -Wextra -Werror "$program" $(pkg-config --cflags --libs mlxc) -o "$prefix/dynamic"
LD_LIBRARY_PATH="$prefix/lib" "$prefix/dynamic" >/dev/null
cc -std=c11 "$program" $(pkg-config --cflags mlxc) -o "$prefix/static" \
  $(pkg-config --static --libs mlxc | sed 's/-lmlxc/-l:libmlxc.a/')
"$prefix/static" >/dev/null
echo "1 passed, 0 failed"
