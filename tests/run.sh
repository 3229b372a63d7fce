#!/usr/bin/env bash
# The test command of README.md (and of CI): install what is missing, build,
# run the whole suite under ctest, then again with ASan and UBSan.
#   tests/run.sh              everything
#   SHOAL_SKIP_SANITIZE=1 tests/run.sh   skip the sanitizer build
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash deploy/install-deps.sh --test

jobs=$(nproc)
echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
(cd build && ctest --output-on-failure -j1)

if [ "${SHOAL_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSHOAL_ASAN=ON \
    -DSHOAL_UBSAN=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  echo "== tests under ASan + UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j1)
fi
