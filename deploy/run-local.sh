#!/usr/bin/env bash
# The run command of README.md: install what is missing, build, and run one
# Shoal node with the embedded defaults (127.0.0.1:5000, data in
# ./shoal-data).  Extra arguments go to `shoal serve`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/install-deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j"$(nproc)" --target shoal
exec "$root/build/node/shoal" serve "$@"
