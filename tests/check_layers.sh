#!/usr/bin/env bash
# Enforce the dependency rule of ARCHITECTURE.md:
#   node -> api, consensus, storage, proto
#   api -> consensus, storage, proto
#   consensus -> storage, proto
#   storage -> proto
#   proto -> nothing of ours
# A module includes another only through its public header <mod>/<mod>.h;
# internal headers are included only from their own folder.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
declare -A allowed=(
  [proto]=""
  [storage]="proto"
  [consensus]="storage proto"
  [api]="consensus storage proto"
  [node]="api consensus storage proto"
)
fail=0
for mod in proto storage consensus api node; do
  while IFS= read -r hit; do
    file=${hit%%:*}
    inc=$(sed -E 's/.*#include[[:space:]]*"([^"]+)".*/\1/' <<<"${hit#*:}")
    target=${inc%%/*}
    [ "$target" = "$inc" ] && continue          # same-folder include "x.h"
    case "$target" in proto|storage|consensus|api|node) ;; *) continue ;; esac
    [ "$target" = "$mod" ] && continue
    ok=0
    for a in ${allowed[$mod]}; do [ "$a" = "$target" ] && ok=1; done
    if [ $ok = 0 ]; then
      echo "layer violation: $file includes $inc ($mod may not depend on $target)"
      fail=1
      continue
    fi
    # Only the public header of another module (proto's generated headers
    # and base/ are its public vocabulary).
    if [ "$target" != proto ] && [ "$inc" != "$target/$target.h" ]; then
      echo "internal header: $file includes $inc (use $target/$target.h)"
      fail=1
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$mod" --include='*.c' --include='*.h' | sed -E 's/^([^:]+):[0-9]+:/\1:/')
done
if [ $fail = 0 ]; then echo "check_layers: ok"; fi
exit $fail
