#!/usr/bin/env bash
# 75_lb_cluster: the local cluster of deploy/local-cluster.sh (3 nodes and
# HAProxy round-robin, no stickiness) with real clients: skopeo pushes a
# 4-layer image (one layer of 6 MB: erasure-coded 2 + 1 as skopeo's PATCH
# brings it, alongside the owner's spool) through the load
# balancer, so the blobs of one push start on different nodes (each
# session's PATCH and PUT then go to its owner: deploy/haproxy.cfg.in;
# 45_cluster covers requests proxied to the owner); then the
# image is pulled from every node directly, bit-identical (the node without
# a data shard or copy of a layer answers 307, which skopeo follows), and
# podman pulls it through the load balancer.  Then the same pulls with the
# cluster restarted in proxy mode (--redirects false): no 307 at all.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
for tool in skopeo haproxy; do
    command -v "$tool" >/dev/null 2>&1 || skip_all "$tool is not installed"
done
ROOT=$(cd "$SHOAL_TESTS/.." && pwd)
local_cluster_env 3

check "local-cluster.sh up 3" cluster up 3
track_cluster_pids
cluster status >"$T_TMP/status"
t_note "$(cat "$T_TMP/status")"
check "status shows one leader" test "$(grep -c ', leader (voter)$' "$T_TMP/status")" -eq 1
check "status shows two followers" test "$(grep -c ', follower (voter)$' "$T_TMP/status")" -eq 2
REG=http://$LB
req GET /v2/
expect_status 200

containers_env
SK=(skopeo --policy "$CT_POLICY")
D=$T_TMP/img
mkdir -p "$D"
MAKE_LAYOUT_ARGS="--big-layer 6000000" make_layout "$D/src" v1
check "the image has a layer over 1 MiB (erasure-coded)" \
    bash -c "find '$D/src/blobs' -type f -size +1024k | grep -q ."
check "skopeo push through the load balancer" \
    "${SK[@]}" copy --dest-tls-verify=false --preserve-digests "oci:$D/src:v1" "docker://$LB/team/app:v1"
committed=0
for i in 1 2 3; do
    n=$(grep -c 'committed' "$SHOAL_CLUSTER_DIR/node$i.log" || true)
    ((n > 0)) && committed=$((committed + 1))
done
check "the push's blobs were committed on more than one node ($committed)" test "$committed" -ge 2
streamed=0
for i in 1 2 3; do
    n=$(curl -s --max-time 10 "http://127.0.0.1:$((SHOAL_BASE_PORT + i))/metrics" |
        awk '$1 == "shoal_uploads_streamed_total" {print $2}')
    streamed=$((streamed + ${n:-0}))
done
check "the 6 MB layer was encoded as skopeo's PATCH brought it ($streamed)" test "$streamed" -ge 1

# redirects_seen: GETs of the image's blobs on each node directly that
# answer 307 (HEAD never does).
redirects_seen()
{
    local i f n=0 code
    for i in 1 2 3; do
        for f in "$D/src"/blobs/sha256/*; do
            code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
                "http://127.0.0.1:$((SHOAL_BASE_PORT + i))/v2/team/app/blobs/sha256:$(basename "$f")") || true
            [[ $code != 307 ]] || n=$((n + 1))
        done
    done
    echo "$n"
}
# pulls MODE: skopeo from every node, podman through the load balancer.
pulls()
{
    local mode=$1 i port out
    for i in 1 2 3; do
        port=$((SHOAL_BASE_PORT + i))
        out=$D/out$i-$mode
        check "skopeo pull from node $i ($mode)" \
            "${SK[@]}" copy --src-tls-verify=false --preserve-digests "docker://127.0.0.1:$port/team/app:v1" "oci:$out:v1"
        expect_eq "blobs pulled from node $i that differ ($mode)" \
            "$(layout_diff "$D/src" "$out")" 0
    done
    if command -v podman >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        # (podman refuses a runroot path over 50 characters.)
        PM=(podman --root "$T_TMP/pm-root-${mode:0:1}" --runroot "$T_TMP/pm-run-${mode:0:1}" --storage-driver vfs)
        check "podman pull through the load balancer ($mode)" \
            "${PM[@]}" pull --tls-verify=false "$LB/team/app:v1"
        check "podman push through the load balancer ($mode)" \
            "${PM[@]}" push --tls-verify=false "$LB/team/app:v1" "$LB/team/copy-$mode:v1"
        check "podman pull of the copy from node 3 ($mode)" \
            "${PM[@]}" pull --tls-verify=false "127.0.0.1:$((SHOAL_BASE_PORT + 3))/team/copy-$mode:v1"
        "${PM[@]}" rmi -a -f >/dev/null 2>&1 || true
    fi
}

n=$(redirects_seen)
check "nodes redirect some blob GETs to serving nodes ($n of 15)" test "$n" -gt 0
pulls redirects

# Proxy mode: the same cluster restarted with --redirects false.
check "local-cluster.sh down" cluster down
export SHOAL_NODE_ARGS="--redirects false"
check "local-cluster.sh up 3 (proxy mode)" cluster up 3
track_cluster_pids
wait_for "the cluster elects a leader again" 20 \
    bash -c "bash '$ROOT/deploy/local-cluster.sh' status | grep -q ', leader (voter)$'"
n=$(redirects_seen)
expect_eq "redirects in proxy mode" "$n" 0
pulls proxy

check "local-cluster.sh down" cluster down
for f in "$SHOAL_CLUSTER_DIR"/node*.log; do
    if grep -qE 'Sanitizer|runtime error' "$f"; then
        fail "no sanitizer report in $(basename "$f")" "$(grep -E -A5 'Sanitizer|runtime error' "$f" | sed -n 1,20p)"
    fi
done
finish
