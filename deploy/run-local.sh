#!/usr/bin/env bash
# The run command of README.md: install what is missing, build, and run a
# local Shoal cluster with the embedded defaults: 3 nodes on loopback behind
# HAProxy on 127.0.0.1:5000 (round-robin), data under ./shoal-cluster.
# Ctrl-C stops it (the data stays).  Single node instead:
#   build/node/shoal serve     (127.0.0.1:5000, data in ./shoal-data)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/install-deps.sh" --cluster
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j"$(nproc)" --target shoal
export SHOAL_BIN=$root/build/node/shoal
trap 'bash "$root/deploy/local-cluster.sh" down' EXIT INT TERM
bash "$root/deploy/local-cluster.sh" up "${1:-3}"
echo "registry: http://127.0.0.1:5000 (Ctrl-C to stop; logs in ./shoal-cluster)"
while sleep 3600; do :; done
