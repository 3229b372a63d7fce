#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a bounded time on
# its corpus (tests/fuzz/corpus/<name>/).  New interesting inputs go to a
# scratch directory; copy the useful ones into the corpus by hand.
#   tests/fuzz/run.sh [seconds per target, default 60]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
cd "$root"
CC=clang cmake -S . -B build-fuzz -DSHOAL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for src in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}" >/dev/null
for t in "${targets[@]}"; do
  bin=build-fuzz/tests/$t
  name=$(basename "$bin"); name=${name#fuzz_}
  scratch=$(mktemp -d)
  extra=()
  # fuzz_http keeps server state across inputs, like a running server.
  [ "$name" = http ] && extra+=(-detect_leaks=0)
  echo "== fuzz $name for ${secs}s"
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "${extra[@]}" \
    "$scratch" "tests/fuzz/corpus/$name"
  rm -rf "$scratch" /tmp/shoal-fuzz-http.*
done
