#!/usr/bin/env bash
# Install what Shoal needs to build, run and test on Debian 12, skipping the
# apt round-trip when everything is already there.  Usage:
#   deploy/install-deps.sh            build and run dependencies
#   deploy/install-deps.sh --test     plus test clients (skopeo, podman, ...)
#   deploy/install-deps.sh --bench    plus the benchmark peers
#   deploy/install-deps.sh --cluster  plus HAProxy for the local cluster
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config protobuf-c-compiler
  libuv1-dev libraft-dev libleveldb-dev libcurl4-openssl-dev libssl-dev
  libprotobuf-c-dev libisal-dev libhttp-parser-dev libjansson-dev
  libcmocka-dev libcrypt-dev curl ca-certificates)
test_pkgs=(skopeo podman jq python3 openssl iproute2 procps haproxy
  clang libclang-rt-14-dev)
bench_pkgs=(docker-registry wrk)
cluster_pkgs=(haproxy)

want=("${build_pkgs[@]}")
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_pkgs[@]}") ;;
    --bench) want+=("${bench_pkgs[@]}") ;;
    --cluster) want+=("${cluster_pkgs[@]}") ;;
    *) echo "install-deps: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
